//! `BPF_PROG_TEST_RUN` with the kernel's semantics per program type: XDP (an
//! xdp_buff with 256 bytes of headroom, metadata taken from `ctx_in`, the same buffer
//! reused across `repeat` runs), socket filters and tc classifiers (an `__sk_buff`),
//! raw tracepoints (args from `ctx_in`) and syscall programs (a writable context).

use crate::env::{MapMemory, Redirect, RunEnv, XdpMd, XdpState};
use crate::error::{BpfError, Result};
use crate::kernel::{ProgObj, Runtime};
use crate::lowmem::LowBuf;
use bpfvm_vm::{Region, RegionKind, RunOptions, RunResult};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// `BPF_F_TEST_XDP_LIVE_FRAMES`: the frame arrived on a live interface (the
/// datapath sets it); the run then looks like the kernel's XDP hook, e.g. in the
/// trace pipe's context flags (`..s2.`, softirq) instead of a test run's (`b..11`).
pub const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

pub const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
pub const BPF_PROG_TYPE_SCHED_ACT: u32 = 4;
pub const BPF_PROG_TYPE_XDP: u32 = 6;
pub const BPF_PROG_TYPE_CGROUP_SKB: u32 = 8;
pub const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
pub const BPF_PROG_TYPE_SYSCALL: u32 = 31;

/// `XDP_PACKET_HEADROOM`.
pub const XDP_PACKET_HEADROOM: usize = 256;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64.
const SKB_SHARED_INFO: usize = 320;
const FRAME_SIZE: usize = 4096;
const ETH_HLEN: usize = 14;

/// `bpf_attr.test`.
#[derive(Clone, Debug, Default)]
pub struct TestRunAttr {
    pub prog_id: u32,
    pub data_in: Vec<u8>,
    pub ctx_in: Option<Vec<u8>>,
    /// Run this many times (0 counts as 1); `duration` is the mean.
    pub repeat: u32,
    pub flags: u32,
    /// The simulated CPU the run is on.
    pub cpu: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestRunResult {
    pub retval: u32,
    pub data_out: Vec<u8>,
    pub ctx_out: Vec<u8>,
    /// Mean nanoseconds per run.
    pub duration: u32,
    /// Where `bpf_redirect`/`bpf_redirect_map` sent the packet in the last run.
    pub redirect: Option<Redirect>,
}

/// Runs `prog` once with everything wired: the environment for helpers, the map
/// memory oracle, checked memory.
pub(crate) fn run_once(
    rt: &Runtime,
    prog: &ProgObj,
    env: &mut RunEnv,
    opts: RunOptions<'_>,
) -> Result<RunResult> {
    let regions = std::mem::take(&mut env.value_regions);
    let oracle = MapMemory {
        regions: &regions,
        rt,
    };
    let opts = opts.oracle(&oracle).env(env);
    let r = match &prog.jit {
        Some(j) => j.run(opts),
        None => prog.vm.run(opts),
    };
    env.value_regions = regions;
    r.map_err(|e| BpfError::Run {
        name: prog.name.clone(),
        source: e,
    })
}

pub(crate) fn test_run(rt: &Runtime, prog: &ProgObj, a: &TestRunAttr) -> Result<TestRunResult> {
    let repeat = a.repeat.max(1);
    let res = match prog.prog_type {
        BPF_PROG_TYPE_XDP => run_xdp(rt, prog, a, repeat),
        BPF_PROG_TYPE_SOCKET_FILTER
        | BPF_PROG_TYPE_SCHED_CLS
        | BPF_PROG_TYPE_SCHED_ACT
        | BPF_PROG_TYPE_CGROUP_SKB => run_skb(rt, prog, a, repeat),
        BPF_PROG_TYPE_RAW_TRACEPOINT => run_ctx(rt, prog, a, repeat, false),
        BPF_PROG_TYPE_SYSCALL => run_ctx(rt, prog, a, repeat, true),
        t => Err(BpfError::NotSupported {
            what: format!("test run of program type {t}"),
        }),
    }?;
    prog.run_cnt.fetch_add(repeat as u64, Ordering::Relaxed);
    prog.run_time_ns
        .fetch_add(res.duration as u64 * repeat as u64, Ordering::Relaxed);
    Ok(res)
}

fn timed(repeat: u32, mut f: impl FnMut() -> Result<u64>) -> Result<(u64, u32)> {
    let start = Instant::now();
    let mut r0 = 0;
    for _ in 0..repeat {
        r0 = f()?;
    }
    let ns = start.elapsed().as_nanos() / repeat as u128;
    Ok((r0, ns.min(u32::MAX as u128) as u32))
}

fn run_xdp(rt: &Runtime, prog: &ProgObj, a: &TestRunAttr, repeat: u32) -> Result<TestRunResult> {
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
            ingress_ifindex: md_in.ingress_ifindex,
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
        let (r0, duration) = timed(repeat, || {
            env.redirect = None;
            // SAFETY: md_ptr points at the live boxed xdp_md; helpers update it in place.
            let m = unsafe { *md_ptr };
            let opts = RunOptions::new()
                .context(md_ptr as u64, std::mem::size_of::<XdpMd>() as u64, false)
                .packet(m.data as u64, m.data_end as u64)
                .region(Region::new(
                    m.data_meta as u64,
                    (m.data - m.data_meta) as u64,
                    true,
                    RegionKind::PacketMeta,
                ));
            run_once(rt, prog, &mut env, opts).map(|r| r.r0)
        })?;
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

/// `struct __sk_buff` offsets used by test runs (include/uapi/linux/bpf.h).
mod skb {
    pub const SIZE: usize = 192;
    pub const LEN: usize = 0;
    pub const PKT_TYPE: usize = 4;
    pub const PROTOCOL: usize = 16;
    pub const INGRESS_IFINDEX: usize = 36;
    pub const IFINDEX: usize = 40;
    pub const DATA: usize = 76;
    pub const DATA_END: usize = 80;
    pub const DATA_META: usize = 140;
    pub const WIRE_LEN: usize = 160;
    pub const GSO_SEGS: usize = 164;
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn run_skb(rt: &Runtime, prog: &ProgObj, a: &TestRunAttr, repeat: u32) -> Result<TestRunResult> {
    if a.data_in.len() < ETH_HLEN {
        return Err(BpfError::Invalid(format!(
            "skb test run needs at least {ETH_HLEN} bytes of data_in"
        )));
    }
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
    let mut buf = LowBuf::new(XDP_PACKET_HEADROOM + a.data_in.len() + SKB_SHARED_INFO)
        .map_err(|e| BpfError::Invalid(e.to_string()))?;
    let base = buf.addr() + XDP_PACKET_HEADROOM as u64;
    buf.as_mut_slice()[XDP_PACKET_HEADROOM..XDP_PACKET_HEADROOM + a.data_in.len()]
        .copy_from_slice(&a.data_in);
    let data = if l2 { base } else { base + ETH_HLEN as u64 };
    let end = base + a.data_in.len() as u64;
    let mut ctx = vec![0u8; skb::SIZE];
    if let Some(c) = &a.ctx_in {
        let n = c.len().min(skb::SIZE);
        ctx[..n].copy_from_slice(&c[..n]);
    }
    put32(&mut ctx, skb::LEN, (end - data) as u32);
    put32(&mut ctx, skb::PKT_TYPE, 0);
    let proto = u16::from_be_bytes([a.data_in[12], a.data_in[13]]);
    // skb->protocol holds the EtherType in network byte order.
    put32(
        &mut ctx,
        skb::PROTOCOL,
        u16::from_ne_bytes(proto.to_be_bytes()) as u32,
    );
    put32(&mut ctx, skb::INGRESS_IFINDEX, 1);
    put32(&mut ctx, skb::IFINDEX, 1);
    put32(&mut ctx, skb::DATA, data as u32);
    put32(&mut ctx, skb::DATA_END, end as u32);
    put32(&mut ctx, skb::DATA_META, data as u32);
    put32(&mut ctx, skb::WIRE_LEN, a.data_in.len() as u32);
    put32(&mut ctx, skb::GSO_SEGS, 1);
    let mut env = RunEnv::new(rt, prog, a.cpu);
    let ctx_ptr = ctx.as_mut_ptr() as u64;
    let (r0, duration) = timed(repeat, || {
        let opts = RunOptions::new()
            .context(ctx_ptr, skb::SIZE as u64, true)
            .packet(data, end);
        run_once(rt, prog, &mut env, opts).map(|r| r.r0)
    })?;
    let mut data_out =
        buf.as_slice()[XDP_PACKET_HEADROOM..XDP_PACKET_HEADROOM + a.data_in.len()].to_vec();
    if !l2 {
        // The MAC header is not part of a socket filter's packet; the kernel hands
        // back zeroes in its place.
        data_out[..ETH_HLEN].fill(0);
    }
    Ok(TestRunResult {
        retval: r0 as u32,
        data_out,
        ctx_out: if a.ctx_in.is_some() { ctx } else { Vec::new() },
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
    let (r0, duration) = timed(repeat, || {
        let opts = RunOptions::new().context(ptr, len as u64, writable);
        run_once(rt, prog, &mut env, opts).map(|r| r.r0)
    })?;
    ctx.truncate(len);
    Ok(TestRunResult {
        retval: r0 as u32,
        data_out: Vec::new(),
        ctx_out: if writable { ctx } else { Vec::new() },
        duration,
        redirect: None,
    })
}
