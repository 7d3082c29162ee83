//! The runtime's helper functions, by kernel id (`enum bpf_func_id`), with the
//! kernel's semantics and return codes. Each reaches the run's [`RunEnv`] through
//! the VM's helper context.

use crate::env::{Redirect, RunEnv};
use crate::kernel::{map_addr, MapObj, ProgObj};
use bpfvm_maps::{MapError, MapType};
use bpfvm_vm::{HelperCtx, HelperError, HelperOutcome, HelperTable, Region, RegionKind};
use std::sync::Arc;

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
    let value = ctx.read_bytes(a[2], m.attr().value_size as usize)?;
    match m.ops.update(key, &value, a[3], cpu) {
        Ok(()) => ret(0),
        Err(e) => err(errno_of(&e)),
    }
}

fn map_delete_elem(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = map_arg(ctx, a[0])?;
    let key = key_arg(ctx, &m, a[1])?;
    match m.ops.delete(key) {
        Ok(()) => ret(0),
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

fn trace_printk(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let fmt = ctx.read_bytes(a[0], a[1] as usize)?;
    let args = [a[2], a[3], a[4]];
    let t = {
        let c: &HelperCtx<'_, '_> = ctx;
        let mut read = |addr: u64, len: usize| read_prefix(c, addr, len);
        match crate::printk::format_trace_printk(&fmt, args, &mut read) {
            Ok(t) => t,
            Err(e) => return err(e.errno()),
        }
    };
    let e = env(ctx)?;
    let comm = e.comm.split(|b| *b == 0).next().unwrap_or(b"").to_vec();
    let flags = e.trace_flags.render();
    let line = crate::printk::trace_line_bytes(
        &comm,
        e.pid,
        e.cpu,
        &flags,
        clock_ns(libc::CLOCK_MONOTONIC),
        &t.msg,
    );
    e.rt.trace_pipe()
        .push(String::from_utf8_lossy(&line).into_owned());
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

fn prandom() -> u32 {
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

fn redirect(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    // Flags other than BPF_F_INGRESS are refused with XDP_ABORTED in the kernel.
    if a[1] & !1 != 0 {
        return ret(0);
    }
    env(ctx)?.redirect = Some(Redirect::Ifindex {
        ifindex: a[0] as u32,
        flags: a[1],
    });
    ret(4) // XDP_REDIRECT / TC_ACT_REDIRECT(7) differs; XDP is the common user here
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

fn ringbuf_query(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = ringbuf_of(ctx, a[0])?;
    ret(m.ops.as_ringbuf().map_or(0, |r| r.query(a[1])) as i64)
}

fn bpf_loop(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    const BPF_MAX_LOOPS: u64 = 1 << 23;
    if a[3] != 0 {
        return err(libc::EINVAL);
    }
    if a[0] > BPF_MAX_LOOPS {
        return err(libc::E2BIG);
    }
    let mut i = 0;
    while i < a[0] {
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

/// Every helper the runtime provides, by kernel id.
pub fn kernel_helpers() -> HelperTable {
    let mut t = HelperTable::new();
    t.register(1, "bpf_map_lookup_elem", map_lookup_elem)
        .register(2, "bpf_map_update_elem", map_update_elem)
        .register(3, "bpf_map_delete_elem", map_delete_elem)
        .register(4, "bpf_probe_read", |c: &mut HelperCtx<'_, '_>, a| {
            probe_read(c, a, false)
        })
        .register(5, "bpf_ktime_get_ns", |_: &mut HelperCtx<'_, '_>, _| {
            ret(clock_ns(libc::CLOCK_MONOTONIC) as i64)
        })
        .register(6, "bpf_trace_printk", trace_printk)
        .register(7, "bpf_get_prandom_u32", |_: &mut HelperCtx<'_, '_>, _| {
            ret(prandom() as i64)
        })
        .register(
            8,
            "bpf_get_smp_processor_id",
            |c: &mut HelperCtx<'_, '_>, _| ret(env(c)?.cpu as i64),
        )
        .register(12, "bpf_tail_call", tail_call)
        .register(
            14,
            "bpf_get_current_pid_tgid",
            |c: &mut HelperCtx<'_, '_>, _| {
                let e = env(c)?;
                ret(crate::helpers_pure::pid_tgid(e.tgid, e.pid) as i64)
            },
        )
        .register(
            15,
            "bpf_get_current_uid_gid",
            |_: &mut HelperCtx<'_, '_>, _| {
                // SAFETY: getuid/getgid have no preconditions.
                let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
                ret(crate::helpers_pure::uid_gid(uid, gid) as i64)
            },
        )
        .register(16, "bpf_get_current_comm", get_current_comm)
        .register(23, "bpf_redirect", redirect)
        .register(26, "bpf_skb_load_bytes", skb_load_bytes)
        .register(28, "bpf_csum_diff", csum_diff)
        .register(
            42,
            "bpf_get_numa_node_id",
            |_: &mut HelperCtx<'_, '_>, _| ret(0),
        )
        .register(44, "bpf_xdp_adjust_head", |c: &mut HelperCtx<'_, '_>, a| {
            xdp_adjust(c, a, b'h')
        })
        .register(45, "bpf_probe_read_str", |c: &mut HelperCtx<'_, '_>, a| {
            probe_read(c, a, true)
        })
        .register(51, "bpf_redirect_map", redirect_map)
        .register(54, "bpf_xdp_adjust_meta", |c: &mut HelperCtx<'_, '_>, a| {
            xdp_adjust(c, a, b'm')
        })
        .register(65, "bpf_xdp_adjust_tail", |c: &mut HelperCtx<'_, '_>, a| {
            xdp_adjust(c, a, b't')
        })
        .register(87, "bpf_map_push_elem", map_push_elem)
        .register(88, "bpf_map_pop_elem", |c: &mut HelperCtx<'_, '_>, a| {
            pop_or_peek(c, a, true)
        })
        .register(89, "bpf_map_peek_elem", |c: &mut HelperCtx<'_, '_>, a| {
            pop_or_peek(c, a, false)
        })
        .register(
            112,
            "bpf_probe_read_user",
            |c: &mut HelperCtx<'_, '_>, a| probe_read(c, a, false),
        )
        .register(
            113,
            "bpf_probe_read_kernel",
            |c: &mut HelperCtx<'_, '_>, a| probe_read(c, a, false),
        )
        .register(
            114,
            "bpf_probe_read_user_str",
            |c: &mut HelperCtx<'_, '_>, a| probe_read(c, a, true),
        )
        .register(
            115,
            "bpf_probe_read_kernel_str",
            |c: &mut HelperCtx<'_, '_>, a| probe_read(c, a, true),
        )
        .register(118, "bpf_jiffies64", |_: &mut HelperCtx<'_, '_>, _| {
            ret(crate::helpers_pure::jiffies64_at(clock_ns(libc::CLOCK_MONOTONIC)) as i64)
        })
        .register(
            125,
            "bpf_ktime_get_boot_ns",
            |_: &mut HelperCtx<'_, '_>, _| ret(clock_ns(libc::CLOCK_BOOTTIME) as i64),
        )
        .register(130, "bpf_ringbuf_output", ringbuf_output)
        .register(131, "bpf_ringbuf_reserve", ringbuf_reserve)
        .register(132, "bpf_ringbuf_submit", |c: &mut HelperCtx<'_, '_>, a| {
            ringbuf_commit(c, a, false)
        })
        .register(
            133,
            "bpf_ringbuf_discard",
            |c: &mut HelperCtx<'_, '_>, a| ringbuf_commit(c, a, true),
        )
        .register(134, "bpf_ringbuf_query", ringbuf_query)
        .register(
            160,
            "bpf_ktime_get_coarse_ns",
            |_: &mut HelperCtx<'_, '_>, _| ret(clock_ns(libc::CLOCK_MONOTONIC_COARSE) as i64),
        )
        .register(164, "bpf_for_each_map_elem", for_each_map_elem)
        .register(165, "bpf_snprintf", snprintf)
        .register(181, "bpf_loop", bpf_loop)
        .register(182, "bpf_strncmp", strncmp);
    t
}
