//! Helper prototypes (`struct bpf_func_proto`) and which program types may
//! call which helper: read from the helper registry in bpfvm-isa
//! ([`bpfvm_isa::helpers`]), which the disassemblers and the runtime read too.

pub use bpfvm_isa::helpers::{
    helper, Arg, Cap, Effect, HelperDef, Proto, Ret, SockKind, HELPER_NAMES,
};

/// The prototype of helper `id` (its first row), if the verifier models it.
pub fn proto(id: i32) -> Option<Proto> {
    helper(id as i64, u32::MAX).and_then(|d| d.proto)
}

/// Why a helper call is refused before its arguments are looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a helper id at all (`invalid func`).
    Invalid,
    /// The program type (or attach type, or the loader's capabilities) does
    /// not offer it (`program of this type cannot use helper`).
    NotForType,
    /// The kernel offers it here, but bpfvm's verifier does not know its
    /// argument types yet.
    Unmodelled,
}

/// The prototype a program of `prog_type` calling helper `id` is checked
/// against (`get_func_proto`).
pub fn proto_for(id: i32, prog_type: u32, attach: u32, privileged: bool) -> Result<Proto, Refusal> {
    let Some(d) = helper(id as i64, prog_type) else {
        return Err(Refusal::Invalid);
    };
    if !d.allows(prog_type, attach) || (!privileged && d.cap != Cap::None) {
        return Err(Refusal::NotForType);
    }
    d.proto.ok_or(Refusal::Unmodelled)
}
