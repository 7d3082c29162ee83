//! `bpf_user_ringbuf_drain(map, callback, ctx, flags)` (helper 209): the
//! program's side of a `BPF_MAP_TYPE_USER_RINGBUF`. Each committed sample is
//! handed to the callback as a local dynptr over the sample (the kernel's
//! `bpf_dynptr_kern`, here in memory of the helper's that only the dynptr
//! helpers reach), with `ctx`; the callback's 1 stops the drain after that
//! sample. Returns the number of samples the callback got, or `-EINVAL` for
//! unknown flags, `-EBUSY` when another drain of the ring runs, and the
//! ring's own `-EINVAL`/`-E2BIG` (see `bpfvm_maps::UserRingBuf::drain`).
//!
//! While the callback runs, the sample and the dynptr are the only memory of
//! the ring the run may touch (checked mode): both are withdrawn when it
//! returns, so a slice kept past its sample faults there.

use super::dynptr::{store, Dynptr};
use super::{err, interrupted, ret, HResult};
use bpfvm_isa::helpers::BPF_DYNPTR_TYPE_LOCAL;
use bpfvm_maps::{UserRingBuf, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
use bpfvm_vm::{HelperCtx, HelperError, HelperTable, Region, RegionKind};
use std::ops::ControlFlow;

fn drain(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (map, callback, cb_ctx, flags) = (a[0], a[1], a[2], a[3]);
    if flags & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
        return err(libc::EINVAL);
    }
    let m = super::map_arg(ctx, map)?;
    let Some(ring) = m.ops.as_any().downcast_ref::<UserRingBuf>() else {
        return Err(HelperError::InvalidArgument {
            reason: format!("map '{}' is not a user_ringbuf", m.name),
        });
    };
    // Where the callback's `struct bpf_dynptr *` points: 16 bytes, 8-aligned.
    let mut slot = Box::new([0u64; 2]);
    let dynptr = slot.as_mut_ptr() as u64;
    ctx.register_region(Region::new(dynptr, 16, true, RegionKind::Mem));
    let mut failure: Option<HelperError> = None;
    let n = ring.drain(flags, &mut |sample, len| {
        if crate::cancel::cancelled() {
            failure = Some(interrupted());
            return ControlFlow::Break(());
        }
        let at = sample as u64;
        ctx.register_region(Region::new(at, u64::from(len), true, RegionKind::Mem));
        let r = store(ctx, dynptr, Dynptr::new(at, BPF_DYNPTR_TYPE_LOCAL, len)).and_then(|()| {
            ctx.call_function(callback, [dynptr, cb_ctx, 0, 0, 0])
                .map_err(Into::into)
        });
        ctx.unregister_region(at);
        match r {
            Ok(0) => ControlFlow::Continue(()),
            Ok(_) => ControlFlow::Break(()),
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    ctx.unregister_region(dynptr);
    drop(slot);
    if let Some(e) = failure {
        return Err(e);
    }
    ret(n)
}

/// Registers helper 209.
pub(crate) fn register(t: &mut HelperTable) {
    let id = bpfvm_isa::uapi::BPF_FUNC_USER_RINGBUF_DRAIN as u32;
    t.register(id, super::named(id), drain);
}
