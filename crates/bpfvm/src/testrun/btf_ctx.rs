//! `prog run ctx_in` for programs whose context the kernel's BTF types:
//! tracing programs attached to a raw tracepoint (`tp_btf`), or as
//! `fentry`, `fexit` or `fmod_ret` to a function.
//!
//! The context is the attach target's arguments, one u64 slot each (and the
//! return value after them for `fexit` and `fmod_ret`), as for a raw
//! tracepoint, whose test run takes `ctx_in` as that array. `ctx_in` gives
//! the first slots, 8 bytes each (the rest are 0); it is read only, as the
//! kernel's context is.
//!
//! A slot typed as a pointer to a kernel struct is never taken from
//! `ctx_in`: the program may load through it, and it must load from memory
//! bpfvm owns. Such a slot holds a stand-in object instead, zeroed, of the
//! struct's size in the kernel's BTF, read only; where the argument may be
//! NULL (`__nullable`), a 0 in `ctx_in` gives NULL. Scalars and `void *`
//! or integer pointers (which the verifier lets a program only pass around,
//! not load through) are taken as given.
//!
//! This goes beyond the kernel: its test run of a tracing program ignores
//! `ctx_in` and calls the kernel's own test functions (`bpf_fentry_test1`
//! ...), which run an fentry or fexit program only when it is attached to
//! them; it refuses `tp_btf` programs. bpfvm runs the program itself, on the
//! context given.

use super::{run_repeated, TestRunAttr, TestRunResult};
use crate::env::RunEnv;
use crate::error::{BpfError, Result};
use crate::kernel::{ProgObj, Runtime};
use bpfvm_isa::uapi::{AttachType, ProgType};
use bpfvm_vm::{Observer, Region, RegionKind, RunOptions};

/// Largest stand-in object (a struct the BTF says is bigger is cut to this).
const MAX_OBJECT: u32 = 1 << 20;

/// What one context slot holds in a test run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CtxSlot {
    /// A value taken from `ctx_in`.
    Value,
    /// A pointer to a kernel struct of `size` bytes: a stand-in object.
    Object { size: u32, nullable: bool },
    /// Not readable by the program (past the arguments).
    Unreadable,
}

/// The slots of a BTF-typed context, with struct sizes from `btf` (the
/// kernel BTF the context was typed with); `None` for programs a test run
/// does not give a BTF-typed context to.
pub(crate) fn ctx_slots(
    prog_type: ProgType,
    attach: AttachType,
    ctx: Option<&bpfvm_verifier::BtfCtx>,
    btf: Option<&bpfvm_obj::Btf>,
) -> Option<Vec<CtxSlot>> {
    use bpfvm_verifier::BtfCtxArg;
    let runnable = prog_type == ProgType::Tracing
        && matches!(
            attach,
            AttachType::TraceRawTp
                | AttachType::TraceFentry
                | AttachType::TraceFexit
                | AttachType::ModifyReturn
        );
    let ctx = ctx.filter(|_| runnable)?;
    Some(
        ctx.args
            .iter()
            .map(|a| match a {
                BtfCtxArg::Scalar | BtfCtxArg::ScalarPtr => CtxSlot::Value,
                BtfCtxArg::Ptr {
                    type_id, nullable, ..
                } => CtxSlot::Object {
                    size: btf
                        .and_then(|b| b.resolve_size(*type_id).ok())
                        .unwrap_or(0)
                        .clamp(8, MAX_OBJECT),
                    nullable: *nullable,
                },
                BtfCtxArg::Refused(_) => CtxSlot::Unreadable,
            })
            .collect(),
    )
}

/// A test run of `prog` (whose context slots are `slots`) on `a.ctx_in`.
pub(super) fn run(
    rt: &Runtime,
    prog: &ProgObj,
    slots: &[CtxSlot],
    a: &TestRunAttr,
    repeat: u32,
    obs: Option<&mut dyn Observer>,
) -> Result<TestRunResult> {
    if !a.data_in.is_empty() {
        return Err(BpfError::Invalid(
            "this program type takes no data_in, only ctx_in".into(),
        ));
    }
    let given = a.ctx_in.clone().unwrap_or_default();
    let readable = slots
        .iter()
        .rposition(|s| *s != CtxSlot::Unreadable)
        .map_or(0, |i| i + 1);
    if !given.len().is_multiple_of(8) || given.len() > readable * 8 {
        return Err(BpfError::Invalid(format!(
            "ctx_in is {} bytes; the attach target's context is {readable} u64 slots, ctx_in gives the first ones (a multiple of 8 bytes)",
            given.len()
        )));
    }
    // Kept alive for the run: the stand-in objects the pointer slots hold.
    let mut objects: Vec<Box<[u64]>> = Vec::new();
    let mut ctx = vec![0u64; slots.len().max(1)];
    for (i, slot) in slots.iter().enumerate() {
        let v = given
            .get(i * 8..i * 8 + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
        ctx[i] = match *slot {
            CtxSlot::Value => v,
            CtxSlot::Object { nullable: true, .. } if v == 0 => 0,
            CtxSlot::Object { size, .. } => {
                let o = vec![0u64; (size as usize).div_ceil(8)].into_boxed_slice();
                let p = o.as_ptr() as u64;
                objects.push(o);
                p
            }
            CtxSlot::Unreadable => 0,
        };
    }
    let ptr = ctx.as_ptr() as u64;
    let len = (ctx.len() * 8) as u64;
    let regions: Vec<Region> = objects
        .iter()
        .map(|o| {
            Region::new(
                o.as_ptr() as u64,
                (o.len() * 8) as u64,
                false,
                RegionKind::Mem,
            )
        })
        .collect();
    let mut env = RunEnv::new(rt, prog, a.cpu);
    let opts = |_: &RunEnv| {
        regions
            .iter()
            .fold(RunOptions::new().context(ptr, len, false), |o, r| {
                o.region(*r)
            })
    };
    let (r0, duration) = run_repeated(prog, &mut env, repeat, opts, |_| {}, obs)?;
    drop(objects);
    Ok(TestRunResult {
        retval: r0 as u32,
        data_out: Vec::new(),
        ctx_out: Vec::new(),
        duration,
        redirect: None,
    })
}
