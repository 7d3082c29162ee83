//! Helpers of the map types whose elements are kernel objects (the verifier's
//! side is `bpfvm_verifier::maphelpers`), as they behave in a userspace
//! kernel without perf events, stacks, cgroups or tasks:
//!
//! - `bpf_perf_event_output`: appends a record to the perf event at the slot
//!   (`BPF_F_CURRENT_CPU`: the run's CPU) when a reader opened it (`map
//!   event_pipe`); `-ENOENT` when none did, as in the kernel; the packet
//!   bytes `BPF_F_CTXLEN_MASK` asks for follow the data;
//! - `bpf_perf_event_read{,_value}`: `-ENOENT` (no counters);
//! - `bpf_get_stackid`, `bpf_get_stack`: `-EFAULT` (and a cleared buffer),
//!   the kernel's answer when it cannot walk a stack (there is none to walk);
//! - `bpf_skb_under_cgroup`, `bpf_current_task_under_cgroup`: `-E2BIG` past
//!   the array, else `-EAGAIN` (an empty slot: no cgroups here);
//! - `bpf_get_local_storage`: storage of its own for the run, zeroed, as the
//!   kernel gives a test run;
//! - `bpf_get_current_task_btf`: the run's stand-in task (`task.rs`);
//! - sockets (`bpf_sk_lookup_*`, `bpf_sk_fullsock`, `bpf_tcp_sock`,
//!   `bpf_get_listener_sock`, `bpf_sk_storage_get`): none are found (NULL),
//!   `bpf_sk_release` and `bpf_sk_storage_delete` have nothing to do;
//!   `bpf_sk_select_reuseport` finds no socket (`-ENOENT`).

use crate::env::RunEnv;
use crate::kernel::MapObj;
use bpfvm_maps::MapType;
use bpfvm_vm::{HelperCtx, HelperError, HelperOutcome, HelperTable, Region, RegionKind};
use std::sync::Arc;

type HResult = Result<HelperOutcome, HelperError>;

const ENOENT: i64 = 2;
const E2BIG: i64 = 7;
const EAGAIN: i64 = 11;
const EFAULT: i64 = 14;
const EINVAL: i64 = 22;
const EOPNOTSUPP: i64 = 95;
/// `BPF_F_CURRENT_CPU`
const BPF_F_CURRENT_CPU: u64 = 0xffff_ffff;
/// `BPF_F_CTXLEN_MASK`
const BPF_F_CTXLEN_MASK: u64 = 0xfffff << 32;

fn ret(v: i64) -> HResult {
    Ok(HelperOutcome::Return(v as u64))
}

fn env<'c>(ctx: &'c mut HelperCtx<'_, '_>) -> Result<&'c mut RunEnv, HelperError> {
    ctx.env::<RunEnv>()
}

fn map_arg(ctx: &mut HelperCtx<'_, '_>, addr: u64) -> Result<Arc<MapObj>, HelperError> {
    let e = env(ctx)?;
    if let Some((_, m)) = e.maps.iter().find(|(a, _)| *a == addr) {
        return Ok(m.clone());
    }
    e.rt.map_by_addr(addr)
        .ok_or_else(|| HelperError::InvalidArgument {
            reason: format!("{addr:#x} is not a map pointer"),
        })
}

fn perf_event_output(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = map_arg(ctx, a[1])?;
    let flags = a[2];
    if flags & !(BPF_F_CURRENT_CPU | BPF_F_CTXLEN_MASK) != 0 {
        return ret(-EINVAL);
    }
    let Some(pea) = m.ops.as_perf_event_array() else {
        return ret(-EINVAL);
    };
    let cpu = env(ctx)?.cpu;
    let index = match flags & BPF_F_CURRENT_CPU {
        BPF_F_CURRENT_CPU => u64::from(cpu),
        i => i,
    };
    let mut data = ctx.read_bytes(a[3], a[4] as usize)?;
    let ctxlen = ((flags & BPF_F_CTXLEN_MASK) >> 32) as usize;
    if ctxlen > 0 {
        // skb/xdp variants: that many bytes of the packet follow the data.
        let Some(pkt) = ctx.packet() else {
            return ret(-EFAULT);
        };
        if ctxlen as u64 > pkt.end - pkt.start {
            return ret(-EFAULT);
        }
        data.extend(ctx.read_bytes(pkt.start, ctxlen)?);
    }
    let record = bpfvm_maps::PerfRecord {
        time_ns: monotonic_ns(),
        data,
    };
    match pea.output(index, cpu, record) {
        Ok(()) => ret(0),
        Err(e) => ret(-(e as i64)),
    }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn no_counter(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5], buf: bool) -> HResult {
    if buf && a[3] > 0 {
        ctx.write_bytes(a[2], &vec![0; a[3] as usize])?;
    }
    ret(-ENOENT)
}

fn under_cgroup(ctx: &mut HelperCtx<'_, '_>, map: u64, index: u64) -> HResult {
    let m = map_arg(ctx, map)?;
    if m.map_type() != MapType::CgroupArray {
        return ret(-EINVAL);
    }
    if index >= u64::from(m.attr().max_entries) {
        return ret(-E2BIG);
    }
    ret(-EAGAIN)
}

fn get_local_storage(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let m = map_arg(ctx, a[0])?;
    let size = (m.attr().value_size as usize).div_ceil(8);
    let e = env(ctx)?;
    let addr = m.prog_addr();
    let base = match e.local_storage.iter().find(|(a, _)| *a == addr) {
        Some((_, s)) => s.as_ptr() as u64,
        None => {
            let s = vec![0u64; size.max(1)].into_boxed_slice();
            let p = s.as_ptr() as u64;
            e.local_storage.push((addr, s));
            p
        }
    };
    ctx.register_region(Region::new(
        base,
        m.attr().value_size as u64,
        true,
        RegionKind::MapValue,
    ));
    ret(base as i64)
}

/// Registers the helpers above.
pub fn register(t: &mut HelperTable) {
    t.register(
        22,
        "bpf_perf_event_read",
        |c: &mut HelperCtx<'_, '_>, a: [u64; 5]| no_counter(c, a, false),
    )
    .register(25, "bpf_perf_event_output", perf_event_output)
    .register(27, "bpf_get_stackid", |_: &mut HelperCtx<'_, '_>, _| {
        ret(-EFAULT)
    })
    .register(
        67,
        "bpf_get_stack",
        |c: &mut HelperCtx<'_, '_>, a: [u64; 5]| {
            // No stack to copy: the kernel clears the buffer and says -EFAULT.
            if a[2] > 0 {
                c.write_bytes(a[1], &vec![0; a[2] as usize])?;
            }
            ret(-EFAULT)
        },
    )
    .register(
        33,
        "bpf_skb_under_cgroup",
        |c: &mut HelperCtx<'_, '_>, a: [u64; 5]| under_cgroup(c, a[1], a[2]),
    )
    .register(
        37,
        "bpf_current_task_under_cgroup",
        |c: &mut HelperCtx<'_, '_>, a: [u64; 5]| under_cgroup(c, a[0], a[1]),
    )
    .register(
        55,
        "bpf_perf_event_read_value",
        |c: &mut HelperCtx<'_, '_>, a: [u64; 5]| no_counter(c, a, true),
    )
    .register(81, "bpf_get_local_storage", get_local_storage)
    .register(
        158,
        "bpf_get_current_task_btf",
        crate::task::get_current_task,
    )
    .register(148, "bpf_copy_from_user", copy_from_user_fault)
    .register(191, "bpf_copy_from_user_task", copy_from_user_fault);
    let null = |_: &mut HelperCtx<'_, '_>, _: [u64; 5]| ret(0);
    for (id, name) in [
        (84, "bpf_sk_lookup_tcp"),
        (85, "bpf_sk_lookup_udp"),
        (86, "bpf_sk_release"),
        (95, "bpf_sk_fullsock"),
        (96, "bpf_tcp_sock"),
        (98, "bpf_get_listener_sock"),
        (99, "bpf_skc_lookup_tcp"),
        (107, "bpf_sk_storage_get"),
        (108, "bpf_sk_storage_delete"),
        (136, "bpf_skc_to_tcp6_sock"),
        (137, "bpf_skc_to_tcp_sock"),
        (138, "bpf_skc_to_tcp_timewait_sock"),
        (139, "bpf_skc_to_tcp_request_sock"),
        (140, "bpf_skc_to_udp6_sock"),
        (178, "bpf_skc_to_unix_sock"),
    ] {
        t.register(id, name, null);
    }
    t.register(
        82,
        "bpf_sk_select_reuseport",
        |_: &mut HelperCtx<'_, '_>, _: [u64; 5]| ret(-ENOENT),
    );
    // No socket in any slot: redirects drop (SK_DROP), updates find no
    // socket to insert.
    for (id, name) in [
        (52, "bpf_sk_redirect_map"),
        (60, "bpf_msg_redirect_map"),
        (71, "bpf_msg_redirect_hash"),
        (72, "bpf_sk_redirect_hash"),
    ] {
        t.register(id, name, null);
    }
    for (id, name) in [(53, "bpf_sock_map_update"), (70, "bpf_sock_hash_update")] {
        t.register(id, name, |_: &mut HelperCtx<'_, '_>, _: [u64; 5]| {
            ret(-EOPNOTSUPP)
        });
    }
}

/// `bpf_copy_from_user` and `bpf_copy_from_user_task`: bpfvm has no user
/// address space to copy from, so every copy faults; the kernel clears the
/// buffer when its copy faults.
fn copy_from_user_fault(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    if a[1] > 0 {
        c.write_bytes(a[0], &vec![0; a[1] as usize])?;
    }
    ret(-EFAULT)
}
