//! The runtime's helper functions, by kernel id (`enum bpf_func_id`), with the
//! kernel's semantics and return codes. Each reaches the run's `RunEnv` through
//! the VM's helper context.

use crate::env::{Redirect, RunEnv};
use crate::kernel::{map_addr, MapObj, ProgObj};
use bpfvm_maps::{MapError, MapType};
use bpfvm_vm::{HelperCtx, HelperError, HelperOutcome, HelperTable, Leaves, Region, RegionKind};
use std::sync::Arc;

pub(crate) mod cpumask;
pub(crate) mod dynptr;
pub(crate) mod user_ringbuf;

type HResult = Result<HelperOutcome, HelperError>;

fn ret(v: i64) -> HResult {
    Ok(HelperOutcome::Return(v as u64))
}

fn err(e: i32) -> HResult {
    ret(-(e as i64))
}

fn env<'c>(ctx: &'c mut HelperCtx<'_, '_>) -> Result<&'c mut RunEnv, HelperError> {
    ctx.env::<RunEnv>()
}

/// The map a program-side map pointer designates.
fn map_arg(ctx: &mut HelperCtx<'_, '_>, addr: u64) -> Result<Arc<MapObj>, HelperError> {
    let e = env(ctx)?;
    if let Some((_, m)) = e.maps.iter().find(|(a, _)| *a == addr) {
        return Ok(m.clone());
    }
    // Maps reached through map-in-map lookups are not in the program's list.
    e.rt.map_by_addr(addr)
        .ok_or_else(|| HelperError::InvalidArgument {
            reason: format!("{addr:#x} is not a map pointer"),
        })
}

/// The key a program passed: checked readable, then borrowed in place (no copy;
/// the program cannot run while its helper does).
fn key_arg<'c>(ctx: &'c HelperCtx<'_, '_>, m: &MapObj, addr: u64) -> Result<&'c [u8], HelperError> {
    let n = m.attr().key_size as usize;
    ctx.check_read(addr, n as u64)?;
    // SAFETY: checked above (or, for verified programs, proven by the verifier).
    Ok(unsafe { std::slice::from_raw_parts(addr as *const u8, n) })
}

fn errno_of(e: &MapError) -> i32 {
    e.errno()
}

fn map_lookup_elem(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = map_arg(ctx, a[0])?;
    let cpu = env(ctx)?.cpu as usize;
    let key = key_arg(ctx, &m, a[1])?;
    let v = match m.map_type() {
        MapType::ArrayOfMaps | MapType::HashOfMaps => m.ops.lookup_inner(key).map(|i| map_addr(&i)),
        _ => m.ops.lookup(key, cpu).map(|p| p as u64),
    };
    ret(v.unwrap_or(0) as i64)
}

fn map_update_elem(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = map_arg(ctx, a[0])?;
    let cpu = env(ctx)?.cpu as usize;
    let key = key_arg(ctx, &m, a[1])?;
    let mut value = ctx.read_bytes(a[2], m.attr().value_size as usize)?;
    m.clear_kptrs(&mut value);
    let held = m.held_kptrs(key, cpu..cpu + 1);
    match m.ops.update(key, &value, a[3], cpu) {
        Ok(()) => {
            MapObj::release_kptrs(held);
            ret(0)
        }
        Err(e) => err(errno_of(&e)),
    }
}

fn map_delete_elem(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = map_arg(ctx, a[0])?;
    let cpu = env(ctx)?.cpu as usize;
    let key = key_arg(ctx, &m, a[1])?;
    let held = m.held_kptrs(key, cpu..cpu + 1);
    match m.ops.delete(key) {
        Ok(()) => {
            MapObj::release_kptrs(held);
            ret(0)
        }
        Err(e) => err(errno_of(&e)),
    }
}

fn map_push_elem(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = map_arg(ctx, a[0])?;
    let value = ctx.read_bytes(a[1], m.attr().value_size as usize)?;
    match m.ops.push(&value, a[2]) {
        Ok(()) => ret(0),
        Err(e) => err(errno_of(&e)),
    }
}

fn pop_or_peek(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5], pop: bool) -> HResult {
    let m = map_arg(ctx, a[0])?;
    let n = m.attr().value_size as usize;
    ctx.check_write(a[1], n as u64)?;
    // A bloom filter's peek tests the value the program gives.
    let mut out = if m.map_type() == MapType::BloomFilter {
        ctx.read_bytes(a[1], n)?
    } else {
        vec![0u8; n]
    };
    let r = if pop {
        m.ops.pop(&mut out)
    } else {
        m.ops.peek(&mut out)
    };
    match r {
        Ok(()) => {
            ctx.write_bytes(a[1], &out)?;
            ret(0)
        }
        Err(e) => err(errno_of(&e)),
    }
}

/// `read_mem` for the printk formatters: the readable prefix of `[addr, addr+len)`.
fn read_prefix(ctx: &HelperCtx<'_, '_>, addr: u64, len: usize) -> Option<Vec<u8>> {
    ctx.read_bytes(addr, len)
        .ok()
        .or_else(|| ctx.read_cstr(addr, len).ok())
}

/// A trace line's head as it stays from one call to the next (see
/// `printk::trace_line_head`): (pid, cpu, flags, comm) and the bytes.
type TraceHead = (Option<(u32, u32, [u8; 5], [u8; 16])>, Vec<u8>);

thread_local! {
    static TRACE_HEAD: std::cell::RefCell<TraceHead> = const { std::cell::RefCell::new((None, Vec::new())) };
}

fn trace_printk(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (addr, len) = (a[0], a[1] as usize);
    ctx.check_read(addr, len as u64)?;
    let fmt: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: checked above as read_bytes checks (or proved by the
        // verifier); nothing writes program memory while the format is read.
        unsafe { std::slice::from_raw_parts(addr as *const u8, len) }
    };
    let args = [a[2], a[3], a[4]];
    // Shared, not cloned: the runtime outlives the call (a clone cost two
    // atomic operations per printk).
    let c: &HelperCtx<'_, '_> = ctx;
    let e = c.env_ref::<RunEnv>()?;
    let (comm, pid, cpu, flags, rt) = (e.comm, e.pid, e.cpu, e.trace_flags.bytes(), &e.rt);
    let comm_raw = comm;
    let comm = comm.split(|b| *b == 0).next().unwrap_or(b"");
    let mut read = |addr: u64, len: usize| read_prefix(c, addr, len);
    let r = crate::printk::with_trace_printk(fmt, args, &mut read, |msg, ret| {
        let ts = trace_clock_ns();
        TRACE_HEAD.with(|h| {
            let mut h = h.borrow_mut();
            let key = (pid, cpu, flags, comm_raw);
            if h.0 != Some(key) {
                h.1 = crate::printk::trace_line_head(comm, pid, cpu, &flags);
                h.0 = Some(key);
            }
            rt.trace_pipe()
                .push_with(|line| crate::printk::write_trace_line(line, &h.1, ts, msg));
        });
        ret
    });
    match r {
        Ok(ret_val) => ret(ret_val),
        Err(e) => err(e.errno()),
    }
}

/// CLOCK_MONOTONIC for trace timestamps: on x86-64 with an invariant TSC,
/// read as the TSC scaled by a rate measured against CLOCK_MONOTONIC and
/// resynchronised every 1,024 reads (the error stays well under the
/// microsecond a trace line shows); the system call's vDSO path cost a tenth
/// of a `bpf_trace_printk`. Never goes backwards on a thread.
fn trace_clock_ns() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::cell::Cell;
        use std::sync::OnceLock;
        #[derive(Clone, Copy, Default)]
        struct Tsc {
            tsc0: u64,
            ns0: u64,
            /// Nanoseconds per tick, times 2^32 (0: not measured yet).
            mult: u64,
            left: u32,
            last: u64,
        }
        static INVARIANT: OnceLock<bool> = OnceLock::new();
        thread_local!(static TSC: Cell<Tsc> = Cell::new(Tsc::default()));
        // CPUID 0x80000007 EDX bit 8: the TSC runs at a constant rate in every
        // power state.
        let invariant = *INVARIANT.get_or_init(|| {
            let max = std::arch::x86_64::__cpuid(0x8000_0000).eax;
            max >= 0x8000_0007 && std::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
        });
        if invariant {
            return TSC.with(|c| {
                let mut s = c.get();
                // SAFETY: rdtsc has no preconditions.
                let t = unsafe { std::arch::x86_64::_rdtsc() };
                let ns = if s.left == 0 || s.mult == 0 || t < s.tsc0 {
                    let now = clock_ns(libc::CLOCK_MONOTONIC);
                    if s.tsc0 == 0 || t < s.tsc0 {
                        (s.tsc0, s.ns0) = (t, now);
                    } else if now.saturating_sub(s.ns0) >= 50_000 {
                        // Over at least 50 us: a rate good to a few parts in 10^4.
                        let dt = (t - s.tsc0).max(1) as u128;
                        s.mult =
                            (((now - s.ns0) as u128) << 32).checked_div(dt).unwrap_or(0) as u64;
                        (s.tsc0, s.ns0) = (t, now);
                        s.left = 1024;
                    }
                    now
                } else {
                    s.left -= 1;
                    s.ns0 + (((t - s.tsc0) as u128 * s.mult as u128) >> 32) as u64
                };
                let ns = ns.max(s.last);
                s.last = ns;
                c.set(s);
                ns
            });
        }
    }
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// `bpf_trace_vprintk(fmt, fmt_size, data, data_len)`: `bpf_trace_printk`
/// with its arguments in an array of up to 12 u64s.
fn trace_vprintk(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (data, data_len) = (a[2], a[3] as u32);
    if crate::printk::check_data_len(data_len).is_err() || (data_len > 0 && data == 0) {
        return err(libc::EINVAL);
    }
    let fmt = ctx.read_bytes(a[0], a[1] as usize)?;
    let args: Vec<u64> = if data_len > 0 {
        ctx.read_bytes(data, data_len as usize)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect()
    } else {
        Vec::new()
    };
    let t = {
        let c: &HelperCtx<'_, '_> = ctx;
        let mut read = |addr: u64, len: usize| read_prefix(c, addr, len);
        match crate::printk::format_trace_vprintk(&fmt, &args, &mut read) {
            Ok(t) => t,
            Err(e) => return err(e.errno()),
        }
    };
    let (comm, pid, cpu, flags, rt) = {
        let e = env(ctx)?;
        (e.comm, e.pid, e.cpu, e.trace_flags.bytes(), e.rt.clone())
    };
    let name = comm.split(|b| *b == 0).next().unwrap_or(b"");
    let ts = trace_clock_ns();
    TRACE_HEAD.with(|h| {
        let mut h = h.borrow_mut();
        let key = (pid, cpu, flags, comm);
        if h.0 != Some(key) {
            h.1 = crate::printk::trace_line_head(name, pid, cpu, &flags);
            h.0 = Some(key);
        }
        rt.trace_pipe()
            .push_with(|line| crate::printk::write_trace_line(line, &h.1, ts, &t.msg));
    });
    ret(t.ret)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub(crate) fn prandom() -> u32 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = Cell::new(clock_ns(libc::CLOCK_MONOTONIC) | 1));
    STATE.with(|s| {
        // xorshift64*: fast, and not meant to be cryptographic (neither is the kernel's).
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    })
}

fn tail_call(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = map_arg(ctx, a[1])?;
    let Some(pa) = m.ops.as_prog_array() else {
        return Err(HelperError::InvalidArgument {
            reason: format!("map '{}' is not a prog_array", m.name),
        });
    };
    // Where the map was made without CAP_PERFMON the kernel compares the whole
    // 64-bit index with max_entries before the call (its Spectre v1 rewrite).
    if m.created_unprivileged && a[2] >= m.attr().max_entries as u64 {
        return err(libc::ENOENT);
    }
    // A missing slot makes the call fall through, as in the kernel.
    let Some(obj) = pa.get(a[2] as u32) else {
        return err(libc::ENOENT);
    };
    match obj.downcast::<ProgObj>() {
        Ok(p) => Ok(HelperOutcome::TailCall(p.vm.clone())),
        Err(_) => err(libc::ENOENT),
    }
}

fn get_current_comm(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let size = a[1] as usize;
    ctx.check_write(a[0], size as u64)?;
    let comm = env(ctx)?.comm;
    let mut out = vec![0u8; size];
    let n = size.min(16);
    out[..n].copy_from_slice(&comm[..n]);
    if let Some(last) = out.last_mut() {
        *last = 0;
    }
    ctx.write_bytes(a[0], &out)?;
    ret(0)
}

fn redirect_map(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = map_arg(ctx, a[0])?;
    let key = a[1] as u32;
    // The low two bits of flags are the action returned when the lookup fails.
    let fallback = (a[2] & 3) as i64;
    // BPF_F_BROADCAST / BPF_F_EXCLUDE_INGRESS (devmaps only): every entry,
    // found or not; other bits abort.
    const BROADCAST: u64 = 1 << 3;
    const EXCLUDE_INGRESS: u64 = 1 << 4;
    let devmap = matches!(m.map_type(), MapType::Devmap | MapType::DevmapHash);
    let allowed = 3 | if devmap {
        BROADCAST | EXCLUDE_INGRESS
    } else {
        0
    };
    if a[2] & !allowed != 0 {
        return ret(0);
    }
    let ifindex = match m.map_type() {
        MapType::Devmap | MapType::DevmapHash if a[2] & BROADCAST != 0 => None,
        MapType::Devmap | MapType::DevmapHash => match m.ops.devmap_entry(key) {
            Some(v) => Some(v.ifindex),
            None => return ret(fallback),
        },
        MapType::Cpumap => match m.ops.cpumap_entry(key) {
            Some(_) => None,
            None => return ret(fallback),
        },
        _ => return ret(fallback),
    };
    env(ctx)?.redirect = Some(Redirect::Map {
        map_id: m.id,
        key,
        ifindex,
    });
    ret(4)
}

fn csum_diff(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let from = if a[1] > 0 {
        ctx.read_bytes(a[0], a[1] as usize)?
    } else {
        Vec::new()
    };
    let to = if a[3] > 0 {
        ctx.read_bytes(a[2], a[3] as usize)?
    } else {
        Vec::new()
    };
    ret(crate::helpers_pure::csum_diff(&from, &to, a[4] as u32) as i64)
}

/// Moves `xdp_md->data` (head) or `data_meta` (meta) or `data_end` (tail) by delta
/// within the frame, as bpf_xdp_adjust_{head,meta,tail} do.
fn xdp_adjust(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5], which: u8) -> HResult {
    let delta = a[1] as i32 as i64;
    let e = env(ctx)?;
    let Some(x) = e.xdp.as_ref() else {
        return err(libc::EOPNOTSUPP);
    };
    // SAFETY: ctx points at the run's xdp_md, alive for the whole run.
    let md = unsafe { &mut *x.ctx };
    let (hard_start, frame_end) = (x.hard_start as i64, x.frame_end as i64);
    let (data, end, meta) = (md.data as i64, md.data_end as i64, md.data_meta as i64);
    // Linux 6.18 lets metadata grow past the old 32-byte limit (observed: a
    // repeated 8-byte bpf_xdp_adjust_meta stops only at the xdp_frame, 216
    // bytes into 256 of headroom); the length still has to fit skb's u8.
    const XDP_META_MAX: i64 = 255;
    const ETH_HLEN: i64 = 14;
    // The kernel keeps room for struct xdp_frame (40 bytes) at the start of the frame.
    const XDP_FRAME_SZ: i64 = 40;
    match which {
        b'h' => {
            let nd = data + delta;
            let meta_len = data - meta;
            if nd < hard_start + XDP_FRAME_SZ + meta_len || nd > end - ETH_HLEN {
                return err(libc::EINVAL);
            }
            md.data = nd as u32;
            md.data_meta = (nd - meta_len) as u32;
        }
        b'm' => {
            let nm = meta + delta;
            if nm < hard_start + XDP_FRAME_SZ
                || nm > data
                || data - nm > XDP_META_MAX
                || (data - nm) % 4 != 0
            {
                return err(if nm > data {
                    libc::EINVAL
                } else {
                    libc::EACCES
                });
            }
            md.data_meta = nm as u32;
        }
        _ => {
            let ne = end + delta;
            if ne > frame_end || ne < data + ETH_HLEN {
                return err(libc::EINVAL);
            }
            if delta > 0 {
                // Grown tail bytes are zeroed, as the kernel does.
                // SAFETY: end..ne lies inside the frame buffer (checked above).
                unsafe { std::ptr::write_bytes(end as *mut u8, 0, delta as usize) };
            }
            md.data_end = ne as u32;
        }
    }
    let (d, de, dm) = (md.data as u64, md.data_end as u64, md.data_meta as u64);
    ctx.set_region(Region::new(d, de - d, true, RegionKind::Packet));
    ctx.set_region(Region::new(dm, d - dm, true, RegionKind::PacketMeta));
    ret(0)
}

fn ringbuf_of(ctx: &mut HelperCtx<'_, '_>, addr: u64) -> Result<Arc<MapObj>, HelperError> {
    let m = map_arg(ctx, addr)?;
    if m.ops.as_ringbuf().is_none() {
        return Err(HelperError::InvalidArgument {
            reason: format!("map '{}' is not a ringbuf", m.name),
        });
    }
    Ok(m)
}

fn ringbuf_output(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = ringbuf_of(ctx, a[0])?;
    let data = ctx.read_bytes(a[1], a[2] as usize)?;
    match m.ops.as_ringbuf().map(|r| r.output(&data, a[3])) {
        Some(Ok(())) => ret(0),
        Some(Err(e)) => err(errno_of(&e)),
        None => err(libc::EINVAL),
    }
}

fn ringbuf_reserve(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = ringbuf_of(ctx, a[0])?;
    let Some(p) = m.ops.as_ringbuf().and_then(|r| r.reserve(a[1], a[2])) else {
        return ret(0);
    };
    ctx.register_region(Region::new(p as u64, a[1], true, RegionKind::Mem));
    env(ctx)?.reservations.push((p as u64, m));
    ret(p as i64)
}

fn ringbuf_commit(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5], discard: bool) -> HResult {
    let e = env(ctx)?;
    let Some(i) = e.reservations.iter().position(|(p, _)| *p == a[0]) else {
        return Err(HelperError::InvalidArgument {
            reason: format!("{:#x} is not a reserved ring buffer record", a[0]),
        });
    };
    let (p, m) = e.reservations.swap_remove(i);
    ctx.unregister_region(p);
    if let Some(rb) = m.ops.as_ringbuf() {
        let r = if discard {
            rb.discard(p as *mut u8, a[1])
        } else {
            rb.submit(p as *mut u8, a[1])
        };
        if let Err(e) = r {
            return err(errno_of(&e));
        }
    }
    ret(0)
}

/// `bpf_kptr_xchg(field, new)`: swaps the pointer in a map value's kptr
/// field atomically and gives back the old one (its reference moves to the
/// caller, `new`'s into the map).
fn kptr_xchg(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let field = a[0];
    ctx.check_write(field, 8)?;
    if !field.is_multiple_of(8) {
        return Err(HelperError::InvalidArgument {
            reason: format!("kptr field {field:#x} is not 8-byte aligned"),
        });
    }
    // SAFETY: checked writable above (or proven a map value's kptr field by
    // the verifier), and aligned; other CPUs' programs swap it atomically too.
    let cell = unsafe { &*(field as *const std::sync::atomic::AtomicU64) };
    ret(cell.swap(a[1], std::sync::atomic::Ordering::AcqRel) as i64)
}

fn ringbuf_query(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = ringbuf_of(ctx, a[0])?;
    ret(m.ops.as_ringbuf().map_or(0, |r| r.query(a[1])) as i64)
}

/// What a callback helper returns once the run is cancelled: it ends the program.
pub(crate) fn interrupted() -> HelperError {
    HelperError::Other("the run was interrupted".into())
}

fn bpf_loop(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    use bpfvm_isa::consts::BPF_MAX_LOOPS;
    if a[3] != 0 {
        return err(libc::EINVAL);
    }
    if a[0] > BPF_MAX_LOOPS {
        return err(libc::E2BIG);
    }
    let mut i = 0;
    while i < a[0] {
        if crate::cancel::cancelled() {
            return Err(interrupted());
        }
        let r = ctx.call_function(a[1], [i, a[2], 0, 0, 0])?;
        i += 1;
        if r != 0 {
            break;
        }
    }
    ret(i as i64)
}

fn for_each_map_elem(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    if a[3] != 0 {
        return err(libc::EINVAL);
    }
    let m = map_arg(ctx, a[0])?;
    let cpu = env(ctx)?.cpu as usize;
    let ksize = m.attr().key_size as usize;
    // The callback gets (map, &key, &value, ctx); keys are copied to a buffer the
    // program may read, values are passed in place as the kernel does.
    let mut keybuf = vec![0u8; ksize.max(8)];
    let kaddr = keybuf.as_mut_ptr() as u64;
    ctx.register_region(Region::new(kaddr, ksize as u64, false, RegionKind::Mem));
    let mut failure: Option<HelperError> = None;
    let n = {
        let mut cb = |key: &[u8], val: *mut u8| {
            if crate::cancel::cancelled() {
                failure = Some(interrupted());
                return std::ops::ControlFlow::Break(());
            }
            // SAFETY: keybuf outlives the walk and holds at least key.len() bytes.
            unsafe { std::ptr::copy_nonoverlapping(key.as_ptr(), kaddr as *mut u8, key.len()) };
            match ctx.call_function(a[1], [a[0], kaddr, val as u64, a[2], 0]) {
                Ok(0) => std::ops::ControlFlow::Continue(()),
                Ok(_) => std::ops::ControlFlow::Break(()),
                Err(e) => {
                    failure = Some(e.into());
                    std::ops::ControlFlow::Break(())
                }
            }
        };
        m.ops.for_each(cpu, &mut cb)
    };
    ctx.unregister_region(kaddr);
    drop(keybuf);
    if let Some(e) = failure {
        return Err(e);
    }
    match n {
        Ok(n) => ret(n as i64),
        Err(e) => err(errno_of(&e)),
    }
}

fn snprintf(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (out, out_size, fmt_addr, data, data_len) = (a[0], a[1] as u32, a[2], a[3], a[4] as u32);
    if crate::printk::check_data_len(data_len).is_err() {
        return err(libc::EINVAL);
    }
    let mut fmt = ctx.read_cstr(fmt_addr, 4096)?;
    fmt.push(0);
    let args: Vec<u64> = if data_len > 0 {
        ctx.read_bytes(data, data_len as usize)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect()
    } else {
        Vec::new()
    };
    let r = {
        let c: &HelperCtx<'_, '_> = ctx;
        let mut read = |addr: u64, len: usize| read_prefix(c, addr, len);
        match crate::printk::format_bpf_snprintf(&fmt, &args, out_size, &mut read) {
            Ok(r) => r,
            Err(e) => return err(e.errno()),
        }
    };
    if !r.out.is_empty() {
        ctx.write_bytes(out, &r.out)?;
    }
    ret(r.ret)
}

fn strncmp(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let s1 = ctx.read_bytes(a[0], a[1] as usize)?;
    let s2 = ctx.read_cstr(a[2], 4096)?;
    ret(crate::helpers_pure::strncmp(&s1, a[1] as u32, &s2))
}

fn probe_read(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5], string: bool) -> HResult {
    let (dst, size, src) = (a[0], a[1] as usize, a[2]);
    ctx.check_write(dst, size as u64)?;
    // Only memory the program may read is readable; anything else faults, and the
    // helper zeroes the destination and returns -EFAULT as the kernel does.
    let data = if string {
        ctx.read_cstr(src, size.saturating_sub(1)).map(|mut s| {
            s.push(0);
            s
        })
    } else {
        ctx.read_bytes(src, size)
    };
    match data {
        Ok(d) => {
            ctx.write_bytes(dst, &d)?;
            ret(if string { d.len() as i64 } else { 0 })
        }
        Err(_) => {
            ctx.write_bytes(dst, &vec![0u8; size])?;
            err(libc::EFAULT)
        }
    }
}

/// `bpf_skb_load_bytes(skb, offset, to, len)`: copy from the packet.
fn skb_load_bytes(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (off, to, len) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64);
    ctx.check_write(to, len)?;
    let Some(pkt) = ctx.packet() else {
        return err(libc::EFAULT);
    };
    if len == 0 || off.checked_add(len).is_none_or(|e| e > pkt.len()) {
        ctx.write_bytes(to, &vec![0u8; len as usize])?;
        return err(libc::EFAULT);
    }
    let data = ctx.read_bytes(pkt.start + off, len as usize)?;
    ctx.write_bytes(to, &data)?;
    ret(0)
}

/// `bpf_strtol` / `bpf_strtoul(buf, buf_len, flags, res)`: `*res` is zeroed
/// first and set only on success.
fn strtox(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5], signed: bool) -> HResult {
    let buf = ctx.read_bytes(a[0], a[1] as usize)?;
    ctx.check_write(a[3], 8)?;
    ctx.write_bytes(a[3], &[0; 8])?;
    match crate::helpers_pure::strtox(&buf, a[2], signed) {
        Ok((n, v)) => {
            ctx.write_bytes(a[3], &v.to_le_bytes())?;
            ret(n)
        }
        Err(e) => ret(e),
    }
}

/// `bpf_spin_lock` / `bpf_spin_unlock`: the 4-byte lock word in a map value.
/// The verifier proved it is the value's `struct bpf_spin_lock`, that no
/// helper runs while it is held and that the program releases it.
fn spin_lock(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5], lock: bool) -> HResult {
    use std::sync::atomic::{AtomicU32, Ordering};
    let addr = a[0];
    ctx.check_write(addr, 4)?;
    if !addr.is_multiple_of(4) {
        return Err(HelperError::InvalidArgument {
            reason: format!("spin lock at {addr:#x} is not 4-byte aligned"),
        });
    }
    // SAFETY: 4 writable, aligned bytes of a map value (checked above, or
    // proven by the verifier for unchecked runs).
    let word = unsafe { &*(addr as *const AtomicU32) };
    let e = env(ctx)?;
    if lock {
        while word
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        e.locks.push(addr);
    } else {
        e.locks.retain(|x| *x != addr);
        word.store(0, Ordering::Release);
    }
    ret(0)
}

/// The registry's name for helper `id` (bpfvm_isa::helpers).
fn named(id: u32) -> &'static str {
    bpfvm_isa::helpers::helper_name(id as i64).unwrap_or("unknown")
}

/// Every helper the runtime provides, by kernel id; the helpers the verifier
/// has prototypes for and the runtime does not implement stop the run with
/// [`HelperError::Unimplemented`] when called.
pub fn kernel_helpers() -> HelperTable {
    let mut t = implemented_helpers();
    for d in bpfvm_isa::helpers::HELPERS {
        if d.proto.is_some() && t.get(d.id).is_none() {
            let name = d.name;
            t.register(d.id, name, move |_: &mut HelperCtx<'_, '_>, _: [u64; 5]| {
                Err(HelperError::Unimplemented { name })
            });
        }
    }
    t
}

/// The helpers the runtime implements.
pub fn implemented_helpers() -> HelperTable {
    let mut t = HelperTable::new();
    // `Leaves`: the helper changes neither the packet nor the regions a run
    // is set up with, so a repeated test run is not set up again after it
    // (lookups, clocks, tracing, random numbers).
    t.register(1, named(1), Leaves(map_lookup_elem))
        .register(2, named(2), map_update_elem)
        .register(3, named(3), map_delete_elem)
        .register(4, named(4), |c: &mut HelperCtx<'_, '_>, a| {
            probe_read(c, a, false)
        })
        .register(
            5,
            named(5),
            Leaves(|_: &mut HelperCtx<'_, '_>, _| ret(clock_ns(libc::CLOCK_MONOTONIC) as i64)),
        )
        .register(6, named(6), Leaves(trace_printk))
        .register(
            7,
            named(7),
            Leaves(|_: &mut HelperCtx<'_, '_>, _| ret(prandom() as i64)),
        )
        .register(
            8,
            named(8),
            Leaves(|c: &mut HelperCtx<'_, '_>, _| ret(env(c)?.cpu as i64)),
        )
        .register(12, named(12), tail_call)
        .register(14, named(14), |c: &mut HelperCtx<'_, '_>, _| {
            let e = env(c)?;
            ret(crate::helpers_pure::pid_tgid(e.tgid, e.pid) as i64)
        })
        .register(15, named(15), |_: &mut HelperCtx<'_, '_>, _| {
            // SAFETY: getuid/getgid have no preconditions.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            ret(crate::helpers_pure::uid_gid(uid, gid) as i64)
        })
        .register(16, named(16), get_current_comm)
        .register(26, named(26), skb_load_bytes)
        .register(28, named(28), csum_diff)
        .register(42, named(42), |_: &mut HelperCtx<'_, '_>, _| ret(0))
        .register(44, named(44), |c: &mut HelperCtx<'_, '_>, a| {
            xdp_adjust(c, a, b'h')
        })
        .register(45, named(45), |c: &mut HelperCtx<'_, '_>, a| {
            probe_read(c, a, true)
        })
        .register(51, named(51), redirect_map)
        .register(54, named(54), |c: &mut HelperCtx<'_, '_>, a| {
            xdp_adjust(c, a, b'm')
        })
        .register(65, named(65), |c: &mut HelperCtx<'_, '_>, a| {
            xdp_adjust(c, a, b't')
        })
        .register(87, named(87), map_push_elem)
        .register(88, named(88), |c: &mut HelperCtx<'_, '_>, a| {
            pop_or_peek(c, a, true)
        })
        .register(89, named(89), |c: &mut HelperCtx<'_, '_>, a| {
            pop_or_peek(c, a, false)
        })
        .register(112, named(112), |c: &mut HelperCtx<'_, '_>, a| {
            probe_read(c, a, false)
        })
        .register(113, named(113), |c: &mut HelperCtx<'_, '_>, a| {
            probe_read(c, a, false)
        })
        .register(114, named(114), |c: &mut HelperCtx<'_, '_>, a| {
            probe_read(c, a, true)
        })
        .register(115, named(115), |c: &mut HelperCtx<'_, '_>, a| {
            probe_read(c, a, true)
        })
        .register(93, named(93), |c: &mut HelperCtx<'_, '_>, a| {
            spin_lock(c, a, true)
        })
        .register(94, named(94), |c: &mut HelperCtx<'_, '_>, a| {
            spin_lock(c, a, false)
        })
        .register(105, named(105), |c: &mut HelperCtx<'_, '_>, a| {
            strtox(c, a, true)
        })
        .register(106, named(106), |c: &mut HelperCtx<'_, '_>, a| {
            strtox(c, a, false)
        })
        .register(118, named(118), |_: &mut HelperCtx<'_, '_>, _| {
            ret(crate::helpers_pure::jiffies64_at(clock_ns(libc::CLOCK_MONOTONIC)) as i64)
        })
        .register(125, named(125), |_: &mut HelperCtx<'_, '_>, _| {
            ret(clock_ns(libc::CLOCK_BOOTTIME) as i64)
        })
        .register(130, named(130), ringbuf_output)
        .register(131, named(131), ringbuf_reserve)
        .register(132, named(132), |c: &mut HelperCtx<'_, '_>, a| {
            ringbuf_commit(c, a, false)
        })
        .register(133, named(133), |c: &mut HelperCtx<'_, '_>, a| {
            ringbuf_commit(c, a, true)
        })
        .register(134, named(134), ringbuf_query)
        .register(160, named(160), |_: &mut HelperCtx<'_, '_>, _| {
            ret(clock_ns(libc::CLOCK_MONOTONIC_COARSE) as i64)
        })
        .register(164, named(164), for_each_map_elem)
        .register(165, named(165), snprintf)
        .register(177, named(177), Leaves(trace_vprintk))
        .register(181, named(181), bpf_loop)
        .register(182, named(182), strncmp)
        .register(194, named(194), kptr_xchg);
    dynptr::register(&mut t);
    user_ringbuf::register(&mut t);
    crate::nethelpers::register(&mut t);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry and the runtime agree: every implemented helper has a
    /// row with a prototype (so the verifier checks its calls) under the name
    /// the runtime registers it with.
    #[test]
    fn implementations_match_the_registry() {
        let t = implemented_helpers();
        assert!(t.len() > 30);
        for e in t.iter() {
            let row = bpfvm_isa::helpers::helper(e.id as i64, u32::MAX)
                .unwrap_or_else(|| panic!("helper {} has no registry row", e.id));
            assert_eq!(row.name, e.name, "helper {}", e.id);
            assert!(
                bpfvm_isa::helpers::HELPERS
                    .iter()
                    .any(|d| d.id == e.id && d.proto.is_some()),
                "{} is implemented but the verifier has no prototype for it",
                e.name
            );
        }
        // Every helper with a prototype can at least be loaded.
        let all = kernel_helpers();
        for d in bpfvm_isa::helpers::HELPERS {
            if d.proto.is_some() {
                assert!(all.get(d.id).is_some(), "{}", d.name);
            }
        }
    }
}
