//! `BPF_PROG_TEST_RUN` with the kernel's semantics per program type: XDP (an
//! xdp_buff with 256 bytes of headroom, metadata taken from `ctx_in`, the same buffer
//! reused across `repeat` runs), socket filters and tc classifiers (an `__sk_buff`),
//! raw tracepoints (args from `ctx_in`) and syscall programs (a writable context).

use crate::env::{MapMemory, Redirect, RunEnv, XdpMd, XdpState};
use crate::error::{BpfError, Result};
use crate::kernel::{ProgObj, Runtime};
use crate::lowmem::LowBuf;
use bpfvm_vm::jit::Rerun;
use bpfvm_vm::{Observer, Region, RegionKind, RunOptions};
use std::sync::atomic::Ordering;

use bpfvm_isa::uapi::{ProgType, TestRunKind, BPF_PROG_TYPE_SCHED_ACT, BPF_PROG_TYPE_SCHED_CLS};

mod btf_ctx;
pub use bpfvm_isa::uapi::{BPF_F_TEST_SKB_CHECKSUM_COMPLETE, BPF_F_TEST_XDP_LIVE_FRAMES};
pub(crate) use btf_ctx::{ctx_slots, CtxSlot};

/// `XDP_PACKET_HEADROOM`.
pub const XDP_PACKET_HEADROOM: usize = 256;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64.
const SKB_SHARED_INFO: usize = 320;
const FRAME_SIZE: usize = 4096;
const ETH_HLEN: usize = 14;
/// Headroom of an skb test run's buffer: room for `bpf_skb_change_head`
/// and `bpf_skb_adjust_room` to grow the packet to its largest in front.
const SKB_HEADROOM: usize = 16384 + 1024;

/// `bpf_attr.test`.
#[derive(Clone, Debug, Default)]
pub struct TestRunAttr {
    /// The program to run.
    pub prog_id: u32,
    /// The packet (`data_in`).
    pub data_in: Vec<u8>,
    /// The context (`ctx_in`); `None`: the program type's default.
    pub ctx_in: Option<Vec<u8>>,
    /// Run this many times (0 counts as 1); `duration` is the mean.
    pub repeat: u32,
    /// `BPF_F_TEST_*` flags.
    pub flags: u32,
    /// The simulated CPU the run is on.
    pub cpu: u32,
}

/// The results of a test run (`bpf_attr.test` as the kernel fills it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value.
    pub retval: u32,
    /// The packet as the program left it (`data_out`).
    pub data_out: Vec<u8>,
    /// The context as the program left it (`ctx_out`).
    pub ctx_out: Vec<u8>,
    /// Mean nanoseconds per run.
    pub duration: u32,
    /// Where `bpf_redirect`/`bpf_redirect_map` sent the packet in the last run.
    pub redirect: Option<Redirect>,
}

/// Runs `prog` `repeat` times (at least once) with everything wired: the
/// environment for helpers, the map memory oracle, checked memory. `opts` builds
/// a run's options from the environment as it is before the run (for XDP, from
/// the xdp_md the adjust helpers move); `reset` clears what one run reports
/// before the next. Returns the last run's r0 and the mean ns per run.
///
/// Both engines set the run up once and run again on it (see
/// `JitProgram::run_repeat`, `VmProgram::run_repeat`): a run that calls no
/// helper that may change the setup cannot change the regions or the
/// environment, so only after one that does are they rebuilt.
fn run_repeated(
    prog: &ProgObj,
    env: &mut RunEnv,
    repeat: u32,
    opts: impl Fn(&RunEnv) -> RunOptions<'static>,
    reset: impl Fn(&mut RunEnv),
    observer: Option<&mut dyn Observer>,
) -> Result<(u64, u32)> {
    let rt = env.rt.clone();
    let regions = std::mem::take(&mut env.value_regions);
    let oracle = MapMemory {
        regions: &regions,
        rt: &rt,
    };
    let repeat = repeat.max(1);
    let start = thread_cpu_ns();
    // With a cancel flag (a daemon serving a client), runs go in chunks with the
    // flag checked between them; each chunk is set up as a whole run is.
    let cancel = crate::cancel::current();
    let chunk = if cancel.is_some() { 1024 } else { repeat };
    let mut done = 0u32;
    let mut r = Ok(0);
    let mut observer = observer;
    // After a helper that may change the run's setup, the next run is set up
    // again (the environment, and for XDP the packet the adjust helpers moved).
    let rerun = |rr: &mut Rerun<'_>| {
        if let Some(env) = rr
            .env
            .as_deref_mut()
            .and_then(|e| e.downcast_mut::<RunEnv>())
        {
            reset(env);
            *rr.regions = opts(env).regions;
        }
    };
    while done < repeat {
        if cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            env.value_regions = regions;
            return Err(BpfError::Interrupted {
                name: prog.name.clone(),
            });
        }
        let n = chunk.min(repeat - done);
        done += n;
        r = match (&prog.jit, observer.as_deref_mut()) {
            // Observed runs (debugger, profile, coverage): the interpreter, one
            // instruction at a time.
            (_, Some(obs)) => {
                let mut r0 = Ok(0);
                for _ in 0..n {
                    reset(env);
                    let o = opts(env).oracle(&oracle).env(&mut *env);
                    r0 = prog.vm.run_observed(o, &mut *obs).map(|r| r.r0);
                    if r0.is_err() {
                        break;
                    }
                }
                r0
            }
            (Some(j), None) => {
                reset(env);
                let cpu = env.cpu;
                let o = opts(env).oracle(&oracle).env(&mut *env);
                j.run_repeat_on_cpu(o, n, cpu, rerun).map(|r| r.r0)
            }
            (None, None) => {
                reset(env);
                let cpu = env.cpu;
                let o = opts(env).oracle(&oracle).env(&mut *env);
                prog.vm.run_repeat_on_cpu(o, n, cpu, rerun).map(|r| r.r0)
            }
        };
        if r.is_err() {
            break;
        }
    }
    if r.is_err() && crate::cancel::cancelled() {
        env.value_regions = regions;
        return Err(BpfError::Interrupted {
            name: prog.name.clone(),
        });
    }
    let ns = thread_cpu_ns().saturating_sub(start) / repeat as u128;
    env.value_regions = regions;
    let r0 = r.map_err(|e| BpfError::Run {
        name: prog.name.clone(),
        source: e,
    })?;
    Ok((r0, ns.min(u32::MAX as u128) as u32))
}

/// This thread's CPU time in ns. The kernel's test run stops its timer while it
/// reschedules (bpf_test_timer_continue), so time spent descheduled is not in
/// `duration`; thread CPU time leaves it out the same way (wall-clock time on a
/// busy machine counted other processes' slices).
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

pub(crate) fn test_run(rt: &Runtime, prog: &ProgObj, a: &TestRunAttr) -> Result<TestRunResult> {
    test_run_with(rt, prog, a, None)
}

/// [`test_run`], observed by `obs` when given (see [`Runtime::test_run_observed`]).
pub(crate) fn test_run_with(
    rt: &Runtime,
    prog: &ProgObj,
    a: &TestRunAttr,
    obs: Option<&mut dyn Observer>,
) -> Result<TestRunResult> {
    let repeat = a.repeat.max(1);
    // The program type table says how each type's test run builds its context.
    let kind = ProgType::from_u32(prog.prog_type).and_then(ProgType::test_run);
    let res = match kind {
        // tp_btf, fentry, fexit, fmod_ret: their context as the BTF types it.
        _ if prog.ctx_slots.is_some() => {
            let slots = prog.ctx_slots.as_deref().unwrap_or_default();
            btf_ctx::run(rt, prog, slots, a, repeat, obs)
        }
        Some(TestRunKind::Xdp) => run_xdp(rt, prog, a, repeat, obs),
        Some(TestRunKind::Skb) => run_skb(rt, prog, a, repeat, obs),
        Some(TestRunKind::RawTracepoint) => run_ctx(rt, prog, a, repeat, false, obs),
        Some(TestRunKind::Syscall) => run_ctx(rt, prog, a, repeat, true, obs),
        None => Err(BpfError::NotSupported {
            what: format!("test run of program type {}", prog.prog_type),
        }),
    }?;
    prog.run_cnt.fetch_add(repeat as u64, Ordering::Relaxed);
    prog.run_time_ns
        .fetch_add(res.duration as u64 * repeat as u64, Ordering::Relaxed);
    Ok(res)
}

fn run_xdp(
    rt: &Runtime,
    prog: &ProgObj,
    a: &TestRunAttr,
    repeat: u32,
    obs: Option<&mut dyn Observer>,
) -> Result<TestRunResult> {
    // Programs for devmap and cpumap entries run after a redirect, on a frame
    // the kernel's test run cannot make: it refuses them (EINVAL).
    let devmap = bpfvm_obj::AttachType::XdpDevmap as u32;
    let cpumap = bpfvm_obj::AttachType::XdpCpumap as u32;
    if prog.expected_attach_type == devmap || prog.expected_attach_type == cpumap {
        return Err(BpfError::Invalid(format!(
            "xdp test run of program '{}': programs for {} entries cannot be test-run",
            prog.name,
            if prog.expected_attach_type == devmap {
                "devmap"
            } else {
                "cpumap"
            }
        )));
    }
    let max = FRAME_SIZE - XDP_PACKET_HEADROOM - SKB_SHARED_INFO;
    if a.data_in.len() < ETH_HLEN || a.data_in.len() > max {
        return Err(BpfError::Invalid(format!(
            "xdp test run needs {ETH_HLEN} to {max} bytes of data_in, got {}",
            a.data_in.len()
        )));
    }
    let mut md_in = XdpMd::default();
    if let Some(c) = &a.ctx_in {
        if c.len() != std::mem::size_of::<XdpMd>() {
            return Err(BpfError::Invalid(format!(
                "ctx_in must be a {}-byte xdp_md",
                std::mem::size_of::<XdpMd>()
            )));
        }
        let f = |i: usize| u32::from_le_bytes(c[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4]));
        md_in = XdpMd {
            data: f(0),
            data_end: f(1),
            data_meta: f(2),
            ingress_ifindex: f(3),
            rx_queue_index: f(4),
            egress_ifindex: f(5),
        };
        // As the kernel: data_meta must be 0, data is the metadata length, data_end the size.
        if md_in.data_meta != 0
            || md_in.data as usize > a.data_in.len()
            || md_in.data_end as usize != a.data_in.len()
            || md_in.egress_ifindex != 0
        {
            return Err(BpfError::Invalid(
                "xdp_md in ctx_in is inconsistent with data_in".into(),
            ));
        }
    }
    let meta_len = md_in.data as usize;
    crate::lowmem::with_low_buf(FRAME_SIZE, |buf: &mut LowBuf| -> Result<TestRunResult> {
        let base = buf.addr();
        let start = XDP_PACKET_HEADROOM - meta_len;
        buf.as_mut_slice()[start..start + a.data_in.len()].copy_from_slice(&a.data_in);
        let mut md = Box::new(XdpMd {
            data: (base + XDP_PACKET_HEADROOM as u64) as u32,
            data_end: (base + (start + a.data_in.len()) as u64) as u32,
            data_meta: (base + start as u64) as u32,
            // Without a device in ctx_in the kernel runs the program on the
            // loopback device's first queue (ifindex 1).
            ingress_ifindex: if md_in.ingress_ifindex == 0 {
                1
            } else {
                md_in.ingress_ifindex
            },
            rx_queue_index: md_in.rx_queue_index,
            egress_ifindex: 0,
        });
        let md_ptr: *mut XdpMd = &mut *md;
        let mut env = RunEnv::new(rt, prog, a.cpu);
        if a.flags & BPF_F_TEST_XDP_LIVE_FRAMES != 0 {
            env.trace_flags = crate::printk::TraceFlags::XDP_SOFTIRQ;
        }
        env.xdp = Some(XdpState {
            ctx: md_ptr,
            hard_start: base,
            frame_end: base + (FRAME_SIZE - SKB_SHARED_INFO) as u64,
        });
        let xdp_opts = |_: &RunEnv| {
            // SAFETY: md_ptr points at the live boxed xdp_md; helpers update it in place.
            let m = unsafe { *md_ptr };
            RunOptions::new()
                .context(md_ptr as u64, std::mem::size_of::<XdpMd>() as u64, false)
                .packet(m.data as u64, m.data_end as u64)
                .region(Region::new(
                    m.data_meta as u64,
                    (m.data - m.data_meta) as u64,
                    true,
                    RegionKind::PacketMeta,
                ))
        };
        let (r0, duration) = run_repeated(
            prog,
            &mut env,
            repeat,
            xdp_opts,
            |env| env.redirect = None,
            obs,
        )?;
        // SAFETY: as above.
        let m = unsafe { *md_ptr };
        let (from, to) = (
            (m.data_meta as u64 - base) as usize,
            (m.data_end as u64 - base) as usize,
        );
        let data_out = buf.as_slice()[from..to].to_vec();
        let mut ctx_out = Vec::new();
        if a.ctx_in.is_some() {
            let out = XdpMd {
                data: m.data - m.data_meta,
                data_end: m.data_end - m.data_meta,
                data_meta: 0,
                ingress_ifindex: md_in.ingress_ifindex,
                ..m
            };
            for v in [
                out.data,
                out.data_end,
                out.data_meta,
                out.ingress_ifindex,
                out.rx_queue_index,
                out.egress_ifindex,
            ] {
                ctx_out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(TestRunResult {
            retval: r0 as u32,
            data_out,
            ctx_out,
            duration,
            redirect: env.redirect.take(),
        })
    })
    .map_err(|e| BpfError::Invalid(e.to_string()))?
}

/// `struct __sk_buff` offsets used by test runs (include/uapi/linux/bpf.h);
/// the fields the helpers change are set by `nethelpers::SkbState::sync`.
mod skb {
    pub const SIZE: usize = 192;
    pub const PKT_TYPE: usize = 4;
    pub const IFINDEX: usize = 40;
    pub const WIRE_LEN: usize = 160;
    pub const GSO_SEGS: usize = 164;
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// The `__sk_buff` of a test run's `ctx_in` and `ctx_out`, as the kernel's
/// `convert___skb_to_skb` and `convert_skb_to___skb` treat it.
mod skbctx {
    use crate::error::{BpfError, Result};

    /// The fields user space may set (and gets back): mark, priority,
    /// ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs, gso_size,
    /// hwtstamp.
    pub const FIELDS: [(usize, usize, &str); 10] = [
        (8, 12, "mark"),
        (32, 36, "priority"),
        (36, 40, "ingress_ifindex"),
        (40, 44, "ifindex"),
        (48, 68, "cb"),
        (152, 160, "tstamp"),
        (160, 164, "wire_len"),
        (164, 168, "gso_segs"),
        (176, 180, "gso_size"),
        (184, 192, "hwtstamp"),
    ];

    pub fn u32_at(c: &[u8], o: usize) -> u32 {
        c.get(o..o + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// -EINVAL for a byte set outside the fields user space may set.
    pub fn check(c: &[u8]) -> Result<()> {
        let allowed = |i: usize| FIELDS.iter().any(|&(a, b, _)| (a..b).contains(&i));
        match c.iter().enumerate().find(|&(i, b)| *b != 0 && !allowed(i)) {
            Some((i, _)) => Err(BpfError::Invalid(format!(
                "ctx_in sets byte {i} of the __sk_buff, which a test run does not take"
            ))),
            None => Ok(()),
        }
    }

    /// The kernel's ctx_out: the fields of `FIELDS` from the context as the
    /// run left it, zero elsewhere.
    pub fn out(ctx: &[u8]) -> Vec<u8> {
        let mut o = vec![0u8; ctx.len()];
        for &(a, b, _) in &FIELDS {
            o[a..b].copy_from_slice(&ctx[a..b]);
        }
        o
    }

    /// The device a test run's skb comes in on: loopback (1), or the
    /// interface `ctx_in` names; its MAC and broadcast addresses.
    pub fn device(ifindex: u32) -> Result<(u32, [u8; 6], [u8; 6])> {
        if ifindex <= 1 {
            return Ok((1, [0; 6], [0; 6]));
        }
        let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: name has IF_NAMESIZE bytes as if_indextoname requires.
        if unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null() {
            return Err(BpfError::NoDevice { ifindex });
        }
        // SAFETY: if_indextoname wrote a NUL-terminated name.
        let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy();
        let mac = |f: &str| {
            let mut m = [0u8; 6];
            if let Ok(t) = std::fs::read_to_string(format!("/sys/class/net/{name}/{f}")) {
                for (k, x) in t.trim().split(':').take(6).enumerate() {
                    m[k] = u8::from_str_radix(x, 16).unwrap_or(0);
                }
            }
            m
        };
        Ok((ifindex, mac("address"), mac("broadcast")))
    }

    /// `eth_type_trans`: the packet type for the destination MAC on a
    /// device with these addresses, and the protocol.
    pub fn eth_type_trans(frame: &[u8], mac: [u8; 6], bcast: [u8; 6]) -> (u32, u16) {
        let dst = &frame[..6];
        let pkt_type = if dst[0] & 1 != 0 {
            if dst == bcast {
                1 // PACKET_BROADCAST
            } else {
                2 // PACKET_MULTICAST
            }
        } else if dst != mac {
            3 // PACKET_OTHERHOST
        } else {
            0 // PACKET_HOST
        };
        let proto = u16::from_be_bytes([frame[12], frame[13]]);
        let proto = if proto >= 0x600 {
            proto
        } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
            0x0001 // ETH_P_802_3
        } else {
            0x0004 // ETH_P_802_2
        };
        (pkt_type, proto)
    }
}

fn run_skb(
    rt: &Runtime,
    prog: &ProgObj,
    a: &TestRunAttr,
    repeat: u32,
    obs: Option<&mut dyn Observer>,
) -> Result<TestRunResult> {
    if a.data_in.len() < ETH_HLEN {
        return Err(BpfError::Invalid(format!(
            "skb test run needs at least {ETH_HLEN} bytes of data_in"
        )));
    }
    if a.flags & !BPF_F_TEST_SKB_CHECKSUM_COMPLETE != 0 {
        return Err(BpfError::Invalid(format!(
            "skb test run flags {:#x}: only BPF_F_TEST_SKB_CHECKSUM_COMPLETE is known",
            a.flags
        )));
    }
    let ctx_in = a.ctx_in.as_deref();
    let (ifindex, dev_mac, dev_bcast) =
        skbctx::device(ctx_in.map_or(0, |c| skbctx::u32_at(c, skb::IFINDEX)))?;
    // The kernel's skb test run refuses an IPv4/IPv6 frame whose network header is
    // cut short (it pulls the header in before running the program).
    let ethertype = u16::from_be_bytes([a.data_in[12], a.data_in[13]]);
    let l3 = a.data_in.len() - ETH_HLEN;
    if (ethertype == 0x0800 && l3 < 20) || (ethertype == 0x86dd && l3 < 40) {
        return Err(BpfError::Invalid(format!(
            "skb test run: the {} header is cut short ({l3} bytes after the Ethernet header)",
            if ethertype == 0x0800 { "IPv4" } else { "IPv6" }
        )));
    }
    // tc and cgroup programs see the frame from the MAC header; socket filters from the
    // network header, as the kernel's test run sets them up.
    let l2 = matches!(
        prog.prog_type,
        BPF_PROG_TYPE_SCHED_CLS | BPF_PROG_TYPE_SCHED_ACT
    );
    // Room in front and behind for the largest skb the packet-changing
    // helpers make (they refuse to grow past BPF_SKB_MAX_LEN), so that the
    // packet never has to move to another buffer during a run.
    let head = SKB_HEADROOM;
    let room = a.data_in.len().max(crate::nethelpers::SKB_MAX_LEN as usize);
    let mut buf =
        LowBuf::new(head + room + SKB_SHARED_INFO).map_err(|e| BpfError::Invalid(e.to_string()))?;
    let base = buf.addr() + head as u64;
    buf.as_mut_slice()[head..head + a.data_in.len()].copy_from_slice(&a.data_in);
    let data = if l2 { base } else { base + ETH_HLEN as u64 };
    let end = base + a.data_in.len() as u64;
    let mut ctx = vec![0u8; skb::SIZE];
    let (pkt_type, proto) = skbctx::eth_type_trans(&a.data_in, dev_mac, dev_bcast);
    let skb_len = (end - data) as u32;
    if let Some(c) = ctx_in {
        skbctx::check(c)?;
        let n = c.len().min(skb::SIZE);
        ctx[..n].copy_from_slice(&c[..n]);
        // wire_len: the skb's length unless given, never less than it.
        let wire_len = skbctx::u32_at(&ctx, skb::WIRE_LEN);
        if wire_len == 0 {
            put32(&mut ctx, skb::WIRE_LEN, skb_len);
        } else if wire_len < skb_len || wire_len > 65536 {
            return Err(BpfError::Invalid(format!(
                "ctx_in wire_len {wire_len} is below the packet's {skb_len} bytes or above 65536"
            )));
        }
        let segs = skbctx::u32_at(&ctx, skb::GSO_SEGS);
        if segs > 65535 {
            return Err(BpfError::Invalid(format!(
                "ctx_in gso_segs {segs} is above GSO_MAX_SEGS (65535)"
            )));
        }
    }
    // Without ctx_in the kernel leaves wire_len, gso_segs and
    // ingress_ifindex (skb_iif) at 0.
    put32(&mut ctx, skb::PKT_TYPE, pkt_type);
    put32(&mut ctx, skb::IFINDEX, ifindex);
    let mut env = RunEnv::new(rt, prog, a.cpu);
    let ctx_ptr = ctx.as_mut_ptr() as u64;
    let state = crate::nethelpers::SkbState {
        ctx: ctx.as_mut_ptr(),
        head: buf.addr(),
        buf_end: buf.addr() + (head + room) as u64,
        data,
        len: (end - data) as u32,
        mac: base,
        network: base + ETH_HLEN as u64,
        transport: None,
        protocol: proto,
        vlan: None,
        hash: None,
        encapsulation: false,
        summed: crate::nethelpers::Summed::None,
        csum_seen: 0,
        pkt_type,
        tstamp: None,
        sk_cookie: None,
    };
    let mut state = state;
    if a.flags & BPF_F_TEST_SKB_CHECKSUM_COMPLETE != 0 {
        state.summed = crate::nethelpers::Summed::Complete(state.network_csum());
    }
    // len, protocol (network byte order), data, data_end, data_meta, the
    // vlan fields and hash, as the kernel computes them from the skb.
    state.sync();
    env.skb = Some(state);
    let skb_opts = |e: &RunEnv| {
        let (d, de) = e
            .skb
            .as_ref()
            .map_or((data, end), |s| (s.data, s.data + s.len as u64));
        RunOptions::new()
            .context(ctx_ptr, skb::SIZE as u64, true)
            .packet(d, de)
            // LD_ABS/IND at SKF_LL_OFF read from the MAC header, wherever
            // the packet helpers moved it.
            .mac_header(e.skb.as_ref().map_or(base, |s| s.mac))
    };
    let (r0, duration) = run_repeated(prog, &mut env, repeat, skb_opts, |_| {}, obs)?;
    let (d, len) = env
        .skb
        .as_ref()
        .map_or((data, end - data), |s| (s.data, s.len as u64));
    if a.flags & BPF_F_TEST_SKB_CHECKSUM_COMPLETE != 0 {
        if let Some(s) = &env.skb {
            // skb->csum as the helpers left it, whatever ip_summed became.
            let csum = match s.summed {
                crate::nethelpers::Summed::Complete(c) => c,
                _ => s.csum_seen,
            };
            let fold = |c: u32| !crate::helpers_pure::csum_from32to16(c);
            let want = s.network_csum();
            if fold(csum) != fold(want) {
                return Err(BpfError::BadChecksum {
                    name: prog.name.clone(),
                    csum: fold(csum),
                    want: fold(want),
                });
            }
        }
    }
    let from = (d - buf.addr()) as usize;
    let mut data_out = Vec::with_capacity(len as usize + ETH_HLEN);
    if !l2 {
        // The MAC header is not part of a socket filter's packet; the kernel
        // pushes zeroes in its place.
        data_out.resize(ETH_HLEN, 0);
    }
    data_out.extend_from_slice(&buf.as_slice()[from..from + len as usize]);
    env.skb = None;
    Ok(TestRunResult {
        retval: r0 as u32,
        data_out,
        ctx_out: if a.ctx_in.is_some() {
            skbctx::out(&ctx)
        } else {
            Vec::new()
        },
        duration,
        redirect: env.redirect.take(),
    })
}

fn run_ctx(
    rt: &Runtime,
    prog: &ProgObj,
    a: &TestRunAttr,
    repeat: u32,
    writable: bool,
    obs: Option<&mut dyn Observer>,
) -> Result<TestRunResult> {
    if !a.data_in.is_empty() {
        return Err(BpfError::Invalid(
            "this program type takes no data_in, only ctx_in".into(),
        ));
    }
    let mut ctx = a.ctx_in.clone().unwrap_or_default();
    // Keep the buffer 8-byte aligned and non-empty so r1 is a valid pointer.
    let len = ctx.len();
    ctx.resize(len.max(8).next_multiple_of(8), 0);
    let ptr = ctx.as_mut_ptr() as u64;
    let mut env = RunEnv::new(rt, prog, a.cpu);
    let ctx_opts = |_: &RunEnv| RunOptions::new().context(ptr, len as u64, writable);
    let (r0, duration) = run_repeated(prog, &mut env, repeat, ctx_opts, |_| {}, obs)?;
    ctx.truncate(len);
    Ok(TestRunResult {
        retval: r0 as u32,
        data_out: Vec::new(),
        ctx_out: if writable { ctx } else { Vec::new() },
        duration,
        redirect: None,
    })
}

#[cfg(test)]
mod tests {
    //! The JIT's inline array lookups and the repeat fast path against the
    //! interpreter's helper calls.
    use crate::kernel::{BpfCmd, BpfReply, MapCreateAttr, ProgLoadAttr, Runtime};
    use crate::testrun::TestRunAttr;

    use bpfvm_isa::uapi::{ProgType, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH};

    /// An XDP program: key = the u32 at byte 14 of the packet; `v =
    /// bpf_map_lookup_elem(map, &key)`; NULL returns 7, else `*v += 1`, return
    /// `XDP_PASS`.
    fn counter_prog(map_id: u32) -> Vec<bpfvm_isa::Insn> {
        let mut insns = bpfvm_isa::asm::assemble(
            "ldxw %r2, [%r1]
             ldxw %r3, [%r1+4]
             mov %r4, %r2
             add %r4, 18
             jgt %r4, %r3, +15
             ldxw %r5, [%r2+14]
             stxw [%r10-4], %r5
             lddw %r1, 0
             mov %r2, %r10
             add %r2, -4
             call 1
             jeq %r0, 0, +5
             ldxdw %r1, [%r0]
             add %r1, 1
             stxdw [%r0], %r1
             mov %r0, 2
             exit
             mov %r0, 7
             exit
             mov %r0, 1
             exit",
        )
        .expect("assemble");
        // The LD_IMM64 becomes a map reference (BPF_PSEUDO_MAP_FD with the id).
        insns[7].src_reg = 1;
        insns[7].imm = map_id as i32;
        insns
    }

    fn packet(key: u32) -> Vec<u8> {
        let mut p = vec![0u8; 60];
        p[14..18].copy_from_slice(&key.to_le_bytes());
        p
    }

    /// A runtime with one map of `map_type` and the counter program on it.
    fn setup(jit: bool, map_type: u32, max_entries: u32) -> (Runtime, u32, u32) {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(jit);
        let m = rt
            .create_map(&MapCreateAttr {
                map_type: bpfvm_maps::MapType::from_u32(map_type).expect("a map type"),
                key_size: 4,
                value_size: 8,
                max_entries,
                name: "counters".into(),
                ..Default::default()
            })
            .expect("create map");
        let p = rt
            .load_program(ProgLoadAttr {
                prog_type: ProgType::Xdp,
                insns: counter_prog(m.id()),
                license: "GPL".into(),
                name: "count".into(),
                ..Default::default()
            })
            .expect("load");
        let (mid, pid) = (m.id(), p.id());
        // The runtime frees what nothing holds: keep the objects for the test.
        std::mem::forget(m);
        std::mem::forget(p);
        (rt, mid, pid)
    }

    fn run(rt: &Runtime, prog_id: u32, key: u32, repeat: u32) -> u32 {
        match rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
            prog_id,
            data_in: packet(key),
            repeat,
            ..Default::default()
        })) {
            Ok(BpfReply::TestRun(r)) => r.retval,
            other => panic!("test run failed: {other:?}"),
        }
    }

    fn value(rt: &Runtime, map_id: u32, key: u32) -> Option<u64> {
        match rt.bpf(BpfCmd::MapLookupElem {
            map_id,
            key: key.to_le_bytes().to_vec(),
            flags: 0,
        }) {
            Ok(BpfReply::Bytes(v)) => Some(u64::from_le_bytes(v[..8].try_into().unwrap())),
            _ => None,
        }
    }

    #[test]
    fn inlined_array_lookups_match_the_helper() {
        let (jit, jmap, jprog) = setup(true, BPF_MAP_TYPE_ARRAY, 5);
        let (interp, imap, iprog) = setup(false, BPF_MAP_TYPE_ARRAY, 5);
        let listing = jit
            .prog_by_id(jprog)
            .ok()
            .and_then(|p| p.jit.as_ref().map(|j| j.listing()))
            .expect("the runtime JIT-compiled the program");
        // The lookup is inline: no call at all in the program's code.
        let body = listing.split("; 11:").nth(1).unwrap_or("");
        let call_insn = body.split("; 12:").next().unwrap_or("");
        // Past the instruction's own line (`call bpf_map_lookup_elem#1`).
        let call_insn = call_insn.split_once('\n').map_or("", |(_, native)| native);
        assert!(
            call_insn.contains("cmp") && !call_insn.contains("call"),
            "{listing}"
        );
        // In range (first, middle, last), out of range (max_entries, huge, the
        // sign bit of a 32-bit key).
        for key in [0u32, 2, 4, 5, 6, 1 << 31, u32::MAX] {
            let a = run(&jit, jprog, key, 1);
            let b = run(&interp, iprog, key, 1);
            assert_eq!(a, b, "key {key}");
            assert_eq!(a, if key < 5 { 2 } else { 7 }, "key {key}");
        }
        for key in 0..5 {
            assert_eq!(value(&jit, jmap, key), value(&interp, imap, key));
            let hits = u64::from(key % 2 == 0);
            assert_eq!(value(&jit, jmap, key), Some(hits), "key {key}");
        }
    }

    #[test]
    fn direct_hash_lookups_match_the_helper() {
        let (jit, jmap, jprog) = setup(true, BPF_MAP_TYPE_HASH, 8);
        let (interp, imap, iprog) = setup(false, BPF_MAP_TYPE_HASH, 8);
        for (rt, map) in [(&jit, jmap), (&interp, imap)] {
            for key in [3u32, 1000] {
                rt.bpf(BpfCmd::MapUpdateElem {
                    map_id: map,
                    key: key.to_le_bytes().to_vec(),
                    value: 40u64.to_le_bytes().to_vec(),
                    flags: 0,
                })
                .expect("update");
            }
        }
        for key in [3u32, 4, 1000, u32::MAX] {
            assert_eq!(run(&jit, jprog, key, 3), run(&interp, iprog, key, 3));
        }
        for key in [3u32, 4, 1000] {
            assert_eq!(value(&jit, jmap, key), value(&interp, imap, key));
        }
        assert_eq!(value(&jit, jmap, 1000), Some(43));
    }

    #[test]
    fn repeated_runs_update_the_map_every_time() {
        for jit in [true, false] {
            let (rt, map, prog) = setup(jit, BPF_MAP_TYPE_ARRAY, 4);
            assert_eq!(run(&rt, prog, 3, 1000), 2);
            assert_eq!(run(&rt, prog, 3, 0), 2, "repeat 0 runs once");
            assert_eq!(value(&rt, map, 3), Some(1001), "jit {jit}");
            assert_eq!(value(&rt, map, 0), Some(0));
        }
    }
}
