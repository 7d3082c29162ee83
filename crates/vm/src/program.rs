//! Loading: instruction slots, decoded once through the opcode table, become a
//! compact array the interpreter dispatches on without looking at encodings again.
//!
//! Each entry is 16 bytes: the table row ([`Op`]), registers, a 32-bit field that
//! holds the memory offset, the absolute index of a jump or call target, or the
//! index of a resolved helper, and the immediate sign-extended to 64 bits (the
//! whole constant for LD_IMM64, which becomes one entry). Everything the loop must
//! trust (targets in range, r10 never written, no falling off the end) is checked
//! here, once.

use crate::error::LoadError;
use crate::helpers::{Helper, HelperTable};
use bpfvm_isa::consts::{BPF_PSEUDO_FUNC, BPF_REG_FP};
use bpfvm_isa::uapi::BPF_FUNC_TAIL_CALL;
use bpfvm_isa::{decode_program, Insn, Op, Shape};
use std::sync::Arc;

/// Programs larger than this are refused (the kernel's BPF_COMPLEXITY_LIMIT_INSNS).
pub const MAX_PROG_SLOTS: usize = 1_000_000;

/// The value a `BPF_PSEUDO_FUNC` LD_IMM64 puts in its register: this base plus the
/// function's instruction index (entry index, LD_IMM64 counted once). Helpers pass
/// it back to [`crate::HelperCtx::call_function`]; `callx` accepts it too.
pub const FUNC_ADDR_BASE: u64 = 0xffff_b7f0_0000_0000;

/// One pre-decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct VInsn {
    pub(crate) op: Op,
    pub(crate) dst: u8,
    pub(crate) src: u8,
    /// What the loop dispatches on: `op as u8`, or a [`fused`] code when this
    /// instruction and the next one run as one.
    pub(crate) code: u8,
    /// Memory offset (sign-extended), jump/call target (entry index), or helper index.
    pub(crate) off: i32,
    /// Immediate, sign-extended; the 64-bit constant for LD_IMM64; the helper id for calls.
    pub(crate) imm: i64,
}

const _: () = assert!(std::mem::size_of::<VInsn>() == 16);

/// Load-time options.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Helpers the program may call; `call N` with an id not in the table is refused.
    pub helpers: Arc<HelperTable>,
}

impl LoadOptions {
    pub fn new(helpers: Arc<HelperTable>) -> Self {
        LoadOptions { helpers }
    }
}

/// A program ready to run: decoded, checked, helpers resolved. Cheap to share
/// (`Arc<VmProgram>`) between threads; runs do not mutate it.
pub struct VmProgram {
    pub(crate) code: Box<[VInsn]>,
    /// Entry index -> slot index, for error messages.
    pub(crate) slot_of: Box<[u32]>,
    /// True for entries where a function starts (entry 0, call and PSEUDO_FUNC targets).
    pub(crate) func_start: Box<[bool]>,
    /// Helpers of the `call` instructions, in the order `VInsn::off` indexes.
    pub(crate) helpers: Box<[(i64, Arc<dyn Helper>)]>,
    pub(crate) table: Arc<HelperTable>,
    insns: Box<[Insn]>,
    /// JIT code for tail calls into this program, compiled on first use.
    pub(crate) jit_cache: crate::jit::JitCache,
    /// Bytes at the top of the entry frame a run starts zeroed (see
    /// [`entry_frame_bytes`]).
    pub(crate) entry_zero: usize,
    /// `bpf_map_lookup_elem` on known maps done by the interpreter itself (see
    /// [`VmProgram::with_map_lookups`]), and what those lookups point into.
    pub(crate) map_lookups: Arc<[(u64, crate::jit::MapLookup)]>,
    map_keep: Vec<Arc<dyn std::any::Any + Send + Sync>>,
    /// Compare trees the interpreter runs as one table lookup (see
    /// [`switch_tables`]), sorted by root entry.
    pub(crate) switches: Arc<[Switch]>,
}

/// How much of the top of its stack frame a program can read: the deepest
/// constant offset below r10 any load, store or atomic uses, or the whole
/// 512-byte frame when r10 itself is copied anywhere (a stack pointer that
/// escapes to a register, a helper or memory) or the program tail-calls (the
/// callee shares the frame). Runs zero only this much of the entry frame:
/// zeroing all of it cost more than short programs run.
fn entry_frame_bytes(code: &[VInsn]) -> usize {
    let frame = bpfvm_isa::consts::MAX_BPF_STACK;
    let mut depth = 0usize;
    for c in code {
        let base = match c.op.shape() {
            Shape::Ldx => c.src,
            Shape::St | Shape::Stx | Shape::Atomic => c.dst,
            _ => 11,
        };
        let escapes = match c.op.shape() {
            Shape::Ldx => false,
            Shape::Stx | Shape::Atomic => c.src == 10,
            Shape::St => false,
            Shape::Call => c.op == Op::Call && c.imm == i64::from(BPF_FUNC_TAIL_CALL),
            _ => c.src == 10 || c.dst == 10,
        };
        if escapes {
            return frame;
        }
        if base == 10 {
            if c.off >= 0 {
                return frame;
            }
            depth = depth.max((-(c.off as i64)) as usize);
        }
    }
    depth.min(frame)
}

impl Clone for VmProgram {
    fn clone(&self) -> Self {
        VmProgram {
            code: self.code.clone(),
            slot_of: self.slot_of.clone(),
            func_start: self.func_start.clone(),
            helpers: self.helpers.clone(),
            table: self.table.clone(),
            insns: self.insns.clone(),
            jit_cache: Default::default(),
            entry_zero: self.entry_zero,
            map_lookups: self.map_lookups.clone(),
            map_keep: self.map_keep.clone(),
            switches: self.switches.clone(),
        }
    }
}

// Programs are shared between threads (prog arrays, several CPUs running one program).
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<VmProgram>();
};

impl std::fmt::Debug for VmProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmProgram")
            .field("slots", &self.insns.len())
            .field("entries", &self.code.len())
            .field(
                "helpers",
                &self.helpers.iter().map(|h| h.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl VmProgram {
    /// Decodes and checks `insns`. See [`LoadError`] for what is refused.
    pub fn new(insns: &[Insn], opts: &LoadOptions) -> Result<VmProgram, LoadError> {
        if insns.is_empty() {
            return Err(LoadError::Empty);
        }
        if insns.len() > MAX_PROG_SLOTS {
            return Err(LoadError::TooLarge {
                slots: insns.len(),
                limit: MAX_PROG_SLOTS,
            });
        }
        let decoded = decode_program(insns)?;
        // Slot -> entry; the second slot of an LD_IMM64 maps to None.
        let mut entry_of: Vec<Option<u32>> = vec![None; insns.len()];
        for (e, (slot, _)) in decoded.iter().enumerate() {
            entry_of[*slot] = Some(e as u32);
        }
        let n_slots = insns.len() as i64;
        // A relative target (`pc + 1 + delta` in slots) as an entry index.
        let resolve = |pc: usize, delta: i64| -> Result<u32, (i64, bool)> {
            let t = pc as i64 + 1 + delta;
            if t < 0 || t >= n_slots {
                return Err((t, false));
            }
            entry_of[t as usize].ok_or((t, true))
        };

        let mut code = Vec::with_capacity(decoded.len());
        let mut slot_of = Vec::with_capacity(decoded.len());
        let mut func_start = vec![false; decoded.len()];
        func_start[0] = true;
        let mut helpers: Vec<(i64, Arc<dyn Helper>)> = Vec::new();
        for &(pc, d) in &decoded {
            let shape = d.op.shape();
            let fetch_writes_src = shape == Shape::Atomic && (d.imm & 1) == 1 && d.imm != 0xf1;
            if (d.op.writes_dst() && d.dst == BPF_REG_FP)
                || (fetch_writes_src && d.src == BPF_REG_FP)
            {
                return Err(LoadError::FramePointerWrite { pc });
            }
            let mut v = VInsn {
                op: d.op,
                dst: d.dst,
                src: d.src,
                code: d.op as u8,
                off: d.off as i32,
                imm: d.imm,
            };
            match shape {
                Shape::JmpK | Shape::JmpX | Shape::Ja | Shape::Ja32 | Shape::MayGoto => {
                    let delta = if shape == Shape::Ja32 {
                        d.imm
                    } else {
                        d.off as i64
                    };
                    v.off = match resolve(pc, delta) {
                        Ok(e) => e as i32,
                        Err((target, false)) => {
                            return Err(LoadError::JumpOutOfRange { pc, target })
                        }
                        Err((t, true)) => {
                            return Err(LoadError::JumpIntoLdImm64 {
                                pc,
                                target: t as usize,
                            })
                        }
                    };
                }
                Shape::Call => match d.op {
                    Op::CallLocal => {
                        let e = match resolve(pc, d.imm) {
                            Ok(e) => e,
                            Err((target, false)) => {
                                return Err(LoadError::CallOutOfRange { pc, target })
                            }
                            Err((t, true)) => {
                                return Err(LoadError::CallIntoLdImm64 {
                                    pc,
                                    target: t as usize,
                                })
                            }
                        };
                        func_start[e as usize] = true;
                        v.off = e as i32;
                    }
                    Op::CallKfunc => return Err(LoadError::KfuncCall { pc, id: d.imm }),
                    _ => {
                        let entry = u32::try_from(d.imm)
                            .ok()
                            .and_then(|id| opts.helpers.get(id))
                            .ok_or(LoadError::UnknownHelper { pc, id: d.imm })?;
                        v.off = helpers.len() as i32;
                        helpers.push((d.imm, entry.helper.clone()));
                    }
                },
                Shape::LdImm64 if d.src == BPF_PSEUDO_FUNC => {
                    // The constant's low word is a relative target, as for calls.
                    let e = resolve(pc, d.imm as i32 as i64)
                        .map_err(|(target, _)| LoadError::FuncOutOfRange { pc, target })?;
                    func_start[e as usize] = true;
                    v.imm = (FUNC_ADDR_BASE + e as u64) as i64;
                }
                _ => {}
            }
            code.push(v);
            slot_of.push(pc as u32);
        }
        let last = code.last().expect("non-empty");
        if !matches!(last.op, Op::Exit | Op::Ja | Op::Ja32) {
            return Err(LoadError::FallOffEnd {
                pc: *slot_of.last().expect("non-empty") as usize,
            });
        }
        fuse(&mut code);
        let entry_zero = entry_frame_bytes(&code);
        let switches = switch_tables(&mut code);
        Ok(VmProgram {
            entry_zero,
            switches,
            map_lookups: Arc::new([]),
            map_keep: Vec::new(),
            code: code.into_boxed_slice(),
            slot_of: slot_of.into_boxed_slice(),
            func_start: func_start.into_boxed_slice(),
            helpers: helpers.into_boxed_slice(),
            table: opts.helpers.clone(),
            insns: insns.into(),
            jit_cache: Default::default(),
        })
    }

    /// Lets the interpreter do `bpf_map_lookup_elem` (helper 1) itself, without
    /// the helper call, where r1 is one of the maps `lookups` lists (by the
    /// address programs load), as [`crate::JitOptions::map_lookup`] compiles
    /// them: arrays computed in place (per-CPU ones for the CPU given to
    /// `run_repeat_on_cpu`, else CPU 0), other maps through the given function.
    /// `keep` holds what the lookups point into.
    ///
    /// # Safety
    /// As for [`crate::JitOptions::map_lookup`]: each lookup must return what
    /// the program's helper 1 returns for that map, and at every `call 1` with
    /// r1 one of those maps r2 must point to a readable key (a verifier's proof).
    pub unsafe fn with_map_lookups(
        mut self,
        lookups: Vec<(u64, crate::jit::MapLookup)>,
        keep: Vec<Arc<dyn std::any::Any + Send + Sync>>,
    ) -> Self {
        if !lookups.is_empty() {
            for v in self.code.iter_mut() {
                // A plain `call 1` (never inside a superinstruction).
                if v.op == Op::Call && v.imm == 1 && v.code == Op::Call as u8 {
                    v.code = fused::MAP_LOOKUP;
                }
            }
        }
        self.map_lookups = lookups.into();
        self.map_keep = keep;
        self
    }

    /// Drops the interpreter's checked-mode memory check on the loads and stores
    /// (by slot index) marked true in `safe_mem`, as [`crate::JitOptions::proven`]
    /// does for native code: a verified program run by the runtime then checks
    /// only what the verifier could not prove. Instructions inside a
    /// superinstruction keep their check.
    ///
    /// # Safety
    /// Each marked instruction's access must be safe on every run of this program.
    pub unsafe fn with_proven_mem(mut self, safe_mem: &[bool]) -> Self {
        for (e, v) in self.code.iter_mut().enumerate() {
            let slot = self.slot_of.get(e).map_or(e, |s| *s as usize);
            // Only instructions that dispatch on their own code: a fused head or
            // member keeps its code (the head's handler runs the members).
            if v.code == v.op as u8 && safe_mem.get(slot).copied().unwrap_or(false) {
                if let Some(c) = fused::proven(v.op) {
                    v.code = c;
                }
            }
        }
        self
    }

    /// The instruction slots the program was loaded from.
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// Number of instructions (an LD_IMM64 counts once).
    pub fn len(&self) -> usize {
        self.code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.code.is_empty()
    }

    /// The helper table the program was loaded against.
    pub fn helper_table(&self) -> &Arc<HelperTable> {
        &self.table
    }

    /// Ids of the helpers the program calls, in program order.
    pub fn helper_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.helpers.iter().map(|h| h.0)
    }

    /// The entry index of a function, from a `BPF_PSEUDO_FUNC` value.
    pub(crate) fn func_entry(&self, value: u64) -> Option<usize> {
        let e = usize::try_from(value.checked_sub(FUNC_ADDR_BASE)?).ok()?;
        (*self.func_start.get(e)?).then_some(e)
    }

    /// Where the compare tree rooted at entry `root` leads when its register
    /// holds `v`: (leaf entry, tree instructions executed on the way), if `root`
    /// has a table and `v` is in it.
    #[inline(always)]
    pub(crate) fn switch_leaf(&self, root: usize, v: u64) -> Option<(u32, u32)> {
        let k = self
            .switches
            .binary_search_by_key(&root, |s| s.root as usize)
            .ok()?;
        // SAFETY: k is an index binary_search found.
        let sw = unsafe { self.switches.get_unchecked(k) };
        sw.leaves.get(usize::try_from(v).ok()?).copied()
    }

    /// Slot index of entry `e` (for error messages).
    #[inline]
    pub(crate) fn slot(&self, e: usize) -> usize {
        self.slot_of.get(e).map_or(e, |s| *s as usize)
    }
}

/// Codes for pairs of instructions the loop runs as one (superinstructions). They
/// follow the opcode table's codes (`Op as u8`) in the dispatch byte. The second
/// instruction stays in place, unchanged: the fused handler reads its operands
/// from there and skips it, so counting and error positions are unaffected.
pub(crate) mod fused {
    use bpfvm_isa::Op;

    macro_rules! codes {
        ($base:expr; $($name:ident),* $(,)?) => {
            codes!(@ $base; $($name),*);
        };
        (@ $n:expr; $name:ident $(, $rest:ident)*) => {
            pub(crate) const $name: u8 = $n;
            codes!(@ $n + 1; $($rest),*);
        };
        (@ $n:expr;) => {
            pub(crate) const END: u8 = $n;
        };
    }

    // `mov dst, src` + `op dst, operand` (same dst): dst = src op operand; MOV32_*
    // for `w` moves and ops. The head's `off` (unused by moves) holds the register
    // an X operand reads, the mov's source when the op names dst itself.
    // `add dst, imm` + `if dst cond operand goto` / `goto`; the head's `off` is 0
    // for a 32-bit add (the sum is truncated), else -1.
    // RSH_AND_K: `rsh dst, k` + `and dst, mask` (a bit field's extraction).
    // LDX_IDX_*: `mov d, a` + `add d, b` + `ldx v, [d + off]`: a load through a
    // computed address (`off` of the head as for MOV_ADD_X).
    // PROVEN_*: a load or store a verifier proved in bounds
    // ([`crate::VmProgram::with_proven_mem`]): no check even in checked mode.
    // Only the plain forms that reach packets, contexts and map values most often
    // have one (the dispatch byte has room for no more; for the same reason
    // `mov` + arithmetic shift by a register, rare in compiled code, is no pair).
    // MAP_LOOKUP: `call 1` (bpf_map_lookup_elem) in a program with lookups the
    // interpreter does itself ([`crate::VmProgram::with_map_lookups`]): done in
    // the handler when r1 is one of those maps, else the helper call.
    // SWITCH: the root of a compare tree with a table ([`super::switch_tables`]):
    // one lookup of the register's value finds the leaf, else the root's own
    // compare runs.
    codes!(bpfvm_isa::OP_COUNT as u8;
        MOV_ADD_K, MOV_ADD_X, MOV_SUB_K, MOV_SUB_X, MOV_MUL_K, MOV_MUL_X,
        MOV_DIV_K, MOV_DIV_X, MOV_MOD_K, MOV_MOD_X, MOV_OR_K, MOV_OR_X,
        MOV_AND_K, MOV_AND_X, MOV_XOR_K, MOV_XOR_X, MOV_LSH_K, MOV_LSH_X,
        MOV_RSH_K, MOV_RSH_X, MOV_ARSH_K,
        MOV32_ADD_K, MOV32_ADD_X, MOV32_SUB_K, MOV32_SUB_X, MOV32_MUL_K, MOV32_MUL_X,
        MOV32_DIV_K, MOV32_DIV_X, MOV32_MOD_K, MOV32_MOD_X, MOV32_OR_K, MOV32_OR_X,
        MOV32_AND_K, MOV32_AND_X, MOV32_XOR_K, MOV32_XOR_X, MOV32_LSH_K, MOV32_LSH_X,
        MOV32_RSH_K, MOV32_RSH_X, MOV32_ARSH_K,
        ADD_JEQ_K, ADD_JEQ_X, ADD_JNE_K, ADD_JNE_X, ADD_JGT_K, ADD_JGT_X,
        ADD_JGE_K, ADD_JGE_X, ADD_JLT_K, ADD_JLT_X, ADD_JLE_K, ADD_JLE_X,
        ADD_JSGT_K, ADD_JSGT_X, ADD_JSGE_K, ADD_JSGE_X, ADD_JSLT_K, ADD_JSLT_X,
        ADD_JSLE_K, ADD_JSLE_X, ADD_JSET_K, ADD_JSET_X, ADD_JA,
        RSH_AND_K,
        LDX_IDX_B, LDX_IDX_H, LDX_IDX_W, LDX_IDX_DW,
        PROVEN_LDX_B, PROVEN_LDX_H, PROVEN_LDX_W, PROVEN_LDX_DW,
        PROVEN_STX_B, PROVEN_STX_H, PROVEN_STX_W, PROVEN_STX_DW,
        MAP_LOOKUP, SWITCH,
    );

    /// The PROVEN_* code for a plain load or store, if it has one.
    pub(crate) fn proven(op: Op) -> Option<u8> {
        use Op::*;
        Some(match op {
            LdxB => PROVEN_LDX_B,
            LdxH => PROVEN_LDX_H,
            LdxW => PROVEN_LDX_W,
            LdxDw => PROVEN_LDX_DW,
            StxB => PROVEN_STX_B,
            StxH => PROVEN_STX_H,
            StxW => PROVEN_STX_W,
            StxDw => PROVEN_STX_DW,
            _ => return None,
        })
    }

    const _: () = assert!(END as usize <= 255);

    /// The fused code for `a` followed by `b`, if there is one (operands are
    /// checked by the caller).
    pub(crate) fn pair(a: Op, b: Op) -> Option<u8> {
        use Op::*;
        Some(match (a, b) {
            (Mov64X, Add64K) => MOV_ADD_K,
            (Mov64X, Add64X) => MOV_ADD_X,
            (Mov64X, Sub64K) => MOV_SUB_K,
            (Mov64X, Sub64X) => MOV_SUB_X,
            (Mov64X, Mul64K) => MOV_MUL_K,
            (Mov64X, Mul64X) => MOV_MUL_X,
            (Mov64X, Div64K) => MOV_DIV_K,
            (Mov64X, Div64X) => MOV_DIV_X,
            (Mov64X, Mod64K) => MOV_MOD_K,
            (Mov64X, Mod64X) => MOV_MOD_X,
            (Mov64X, Or64K) => MOV_OR_K,
            (Mov64X, Or64X) => MOV_OR_X,
            (Mov64X, And64K) => MOV_AND_K,
            (Mov64X, And64X) => MOV_AND_X,
            (Mov64X, Xor64K) => MOV_XOR_K,
            (Mov64X, Xor64X) => MOV_XOR_X,
            (Mov64X, Lsh64K) => MOV_LSH_K,
            (Mov64X, Lsh64X) => MOV_LSH_X,
            (Mov64X, Rsh64K) => MOV_RSH_K,
            (Mov64X, Rsh64X) => MOV_RSH_X,
            (Mov64X, Arsh64K) => MOV_ARSH_K,
            (Mov32X, Add32K) => MOV32_ADD_K,
            (Mov32X, Add32X) => MOV32_ADD_X,
            (Mov32X, Sub32K) => MOV32_SUB_K,
            (Mov32X, Sub32X) => MOV32_SUB_X,
            (Mov32X, Mul32K) => MOV32_MUL_K,
            (Mov32X, Mul32X) => MOV32_MUL_X,
            (Mov32X, Div32K) => MOV32_DIV_K,
            (Mov32X, Div32X) => MOV32_DIV_X,
            (Mov32X, Mod32K) => MOV32_MOD_K,
            (Mov32X, Mod32X) => MOV32_MOD_X,
            (Mov32X, Or32K) => MOV32_OR_K,
            (Mov32X, Or32X) => MOV32_OR_X,
            (Mov32X, And32K) => MOV32_AND_K,
            (Mov32X, And32X) => MOV32_AND_X,
            (Mov32X, Xor32K) => MOV32_XOR_K,
            (Mov32X, Xor32X) => MOV32_XOR_X,
            (Mov32X, Lsh32K) => MOV32_LSH_K,
            (Mov32X, Lsh32X) => MOV32_LSH_X,
            (Mov32X, Rsh32K) => MOV32_RSH_K,
            (Mov32X, Rsh32X) => MOV32_RSH_X,
            (Mov32X, Arsh32K) => MOV32_ARSH_K,
            (Add64K, JeqK) => ADD_JEQ_K,
            (Add64K, JeqX) => ADD_JEQ_X,
            (Add64K, JneK) => ADD_JNE_K,
            (Add64K, JneX) => ADD_JNE_X,
            (Add64K, JgtK) => ADD_JGT_K,
            (Add64K, JgtX) => ADD_JGT_X,
            (Add64K, JgeK) => ADD_JGE_K,
            (Add64K, JgeX) => ADD_JGE_X,
            (Add64K, JltK) => ADD_JLT_K,
            (Add64K, JltX) => ADD_JLT_X,
            (Add64K, JleK) => ADD_JLE_K,
            (Add64K, JleX) => ADD_JLE_X,
            (Add64K, JsgtK) => ADD_JSGT_K,
            (Add64K, JsgtX) => ADD_JSGT_X,
            (Add64K, JsgeK) => ADD_JSGE_K,
            (Add64K, JsgeX) => ADD_JSGE_X,
            (Add64K, JsltK) => ADD_JSLT_K,
            (Add64K, JsltX) => ADD_JSLT_X,
            (Add64K, JsleK) => ADD_JSLE_K,
            (Add64K, JsleX) => ADD_JSLE_X,
            (Add64K, JsetK) => ADD_JSET_K,
            (Add64K, JsetX) => ADD_JSET_X,
            (Add64K, Ja) => ADD_JA,
            (Add32K, JeqK) => ADD_JEQ_K,
            (Add32K, JeqX) => ADD_JEQ_X,
            (Add32K, JneK) => ADD_JNE_K,
            (Add32K, JneX) => ADD_JNE_X,
            (Add32K, JgtK) => ADD_JGT_K,
            (Add32K, JgtX) => ADD_JGT_X,
            (Add32K, JgeK) => ADD_JGE_K,
            (Add32K, JgeX) => ADD_JGE_X,
            (Add32K, JltK) => ADD_JLT_K,
            (Add32K, JltX) => ADD_JLT_X,
            (Add32K, JleK) => ADD_JLE_K,
            (Add32K, JleX) => ADD_JLE_X,
            (Add32K, JsgtK) => ADD_JSGT_K,
            (Add32K, JsgtX) => ADD_JSGT_X,
            (Add32K, JsgeK) => ADD_JSGE_K,
            (Add32K, JsgeX) => ADD_JSGE_X,
            (Add32K, JsltK) => ADD_JSLT_K,
            (Add32K, JsltX) => ADD_JSLT_X,
            (Add32K, JsleK) => ADD_JSLE_K,
            (Add32K, JsleX) => ADD_JSLE_X,
            (Add32K, JsetK) => ADD_JSET_K,
            (Add32K, JsetX) => ADD_JSET_X,
            (Add32K, Ja) => ADD_JA,
            (Rsh64K, And64K) => RSH_AND_K,
            _ => return None,
        })
    }
}

/// The fused code of the pair at `k`, if it is one. `leader[e]` is true where
/// control can arrive other than from `e - 1` (jump and call targets): a fused
/// group never contains a leader after its head, so it always runs whole.
fn pair_at(code: &[VInsn], leader: &[bool], k: usize) -> Option<u8> {
    let (a, b) = (code.get(k)?, code.get(k + 1)?);
    if leader[k + 1] {
        return None;
    }
    let operands_ok = match a.op {
        Op::Mov64X | Op::Mov32X => b.dst == a.dst,
        // The compare reads the sum; an X operand is read after the add.
        Op::Add64K | Op::Add32K => b.op == Op::Ja || b.dst == a.dst,
        Op::Rsh64K => b.dst == a.dst,
        _ => false,
    };
    fused::pair(a.op, b.op).filter(|_| operands_ok)
}

/// The fused code of `mov d, a` + `add d, b` + `ldx v, [d + off]` at `k`.
fn indexed_load_at(code: &[VInsn], leader: &[bool], k: usize) -> Option<u8> {
    let (a, b, l) = (code.get(k)?, code.get(k + 1)?, code.get(k + 2)?);
    if leader[k + 1] || leader[k + 2] {
        return None;
    }
    if a.op != Op::Mov64X || b.op != Op::Add64X || b.dst != a.dst || l.src != a.dst {
        return None;
    }
    Some(match l.op {
        Op::LdxB => fused::LDX_IDX_B,
        Op::LdxH => fused::LDX_IDX_H,
        Op::LdxW => fused::LDX_IDX_W,
        Op::LdxDw => fused::LDX_IDX_DW,
        _ => return None,
    })
}

/// Entries where control arrives other than by falling through: jump targets,
/// function starts, and the return points after calls.
fn leaders(code: &[VInsn]) -> Vec<bool> {
    let mut leader = vec![false; code.len() + 1];
    leader[0] = true;
    for (e, v) in code.iter().enumerate() {
        match v.op.shape() {
            Shape::JmpK | Shape::JmpX | Shape::Ja | Shape::Ja32 | Shape::MayGoto => {
                leader[v.off as usize] = true;
            }
            Shape::Call => {
                if v.op == Op::CallLocal {
                    leader[v.off as usize] = true;
                }
                leader[e + 1] = true;
            }
            // BPF_PSEUDO_FUNC values become call targets (callx, callbacks).
            Shape::LdImm64 if v.src == BPF_PSEUDO_FUNC => {
                if let Some(t) = v.imm.checked_sub(FUNC_ADDR_BASE as i64) {
                    if let Some(l) = leader.get_mut(t as usize) {
                        *l = true;
                    }
                }
            }
            _ => {}
        }
    }
    leader
}

/// The register an X operand `b.src` reads after `mov a.dst, a.src`: the mov's
/// source when the operand is the moved register.
fn operand_after_mov(a: &VInsn, b: &VInsn) -> i32 {
    if b.src == a.dst {
        a.src as i32
    } else {
        b.src as i32
    }
}

/// A compare tree (what clang makes of a `switch` before v4's `gotox`) run as
/// one table lookup: for each value `v` of the tree's register up to
/// `leaves.len() - 1`, the first non-tree instruction the compares lead to and
/// how many tree instructions they execute, so that counting and fuel stay
/// exact.
pub(crate) struct Switch {
    pub(crate) root: u32,
    pub(crate) leaves: Box<[(u32, u32)]>,
}

/// Values a tree is tabulated for: `0..=SWITCH_MAX` at most.
const SWITCH_MAX: u64 = 255;
/// A tree gets a table when its tabulated values reach at least this many
/// leaves: a shorter tree is a few predictable compares, cheaper than the lookup.
const SWITCH_MIN_LEAVES: usize = 8;
/// Longest chain of tree instructions followed for one value.
pub(crate) const SWITCH_DEPTH: u32 = 64;
/// Most nodes of one tree looked at.
const SWITCH_NODES: usize = 1024;

/// Whether `c` is an inner node of a compare tree on register `x`: a
/// conditional jump on `x` against an immediate, or `ja`. Such nodes only read
/// `x` and cannot fail.
pub(crate) fn tree_node(c: &VInsn, x: u8) -> bool {
    match c.op.shape() {
        Shape::Ja | Shape::Ja32 => true,
        Shape::JmpK => c.dst == x,
        _ => false,
    }
}

/// Whether the K-form conditional jump `op` is taken with `dst` = `a` (the
/// interpreter's semantics: 64-bit compares, or the low halves for JMP32).
pub(crate) fn jmp_k_taken(op: Op, a: u64, imm: i64) -> bool {
    use Op::*;
    let b = imm as u64;
    let (a32, b32) = (a as u32, b as u32);
    match op {
        JeqK => a == b,
        JneK => a != b,
        JgtK => a > b,
        JgeK => a >= b,
        JltK => a < b,
        JleK => a <= b,
        JsetK => a & b != 0,
        JsgtK => (a as i64) > imm,
        JsgeK => (a as i64) >= imm,
        JsltK => (a as i64) < imm,
        JsleK => (a as i64) <= imm,
        Jeq32K => a32 == b32,
        Jne32K => a32 != b32,
        Jgt32K => a32 > b32,
        Jge32K => a32 >= b32,
        Jlt32K => a32 < b32,
        Jle32K => a32 <= b32,
        Jset32K => a32 & b32 != 0,
        Jsgt32K => (a32 as i32) > b32 as i32,
        Jsge32K => (a32 as i32) >= b32 as i32,
        Jslt32K => (a32 as i32) < b32 as i32,
        Jsle32K => (a32 as i32) <= b32 as i32,
        // Not a K-form conditional jump: never a tree node.
        _ => false,
    }
}

/// Where the tree at `e` on register `x` leads when `x` holds `v`, and how many
/// tree instructions run on the way; None past [`SWITCH_DEPTH`] (or a loop).
fn walk(code: &[VInsn], e: usize, x: u8, v: u64) -> Option<(u32, u32)> {
    let mut i = e;
    for n in 0..SWITCH_DEPTH {
        let c = code.get(i)?;
        if !tree_node(c, x) {
            return Some((i as u32, n));
        }
        i = if c.op.shape() != Shape::JmpK || jmp_k_taken(c.op, v, c.imm) {
            c.off as usize
        } else {
            i + 1
        };
    }
    None
}

/// Marks the roots of the compare trees worth a table (see [`compare_trees`])
/// [`fused::SWITCH`]. The tree's other instructions keep their codes, so a
/// jump into the middle of a tree runs it compare by compare as before.
fn switch_tables(code: &mut [VInsn]) -> Arc<[Switch]> {
    let out = compare_trees(code);
    for sw in &out {
        code[sw.root as usize].code = fused::SWITCH;
    }
    out.into()
}

/// The compare trees worth a table, by root entry: both the interpreter
/// ([`fused::SWITCH`]) and the JIT (jump and value tables) dispatch on these.
/// A root is a compare that dispatches on its own code (not inside a
/// superinstruction); each instruction belongs to one tree at most.
pub(crate) fn compare_trees(code: &[VInsn]) -> Vec<Switch> {
    let n = code.len();
    let mut out = Vec::new();
    let mut covered = vec![false; n];
    // Per instruction: the root of the last tree that reached it.
    let mut seen = vec![usize::MAX; n];
    for e in 0..n {
        let c = code[e];
        if covered[e] || c.op.shape() != Shape::JmpK || c.code != c.op as u8 {
            continue;
        }
        let x = c.dst;
        // The tree's nodes, found structurally; each belongs to one tree only.
        let mut nodes = vec![e];
        seen[e] = e;
        let mut k = 0;
        while k < nodes.len() && nodes.len() < SWITCH_NODES {
            let i = nodes[k];
            k += 1;
            let next = [i + 1, code[i].off as usize];
            let succ: &[usize] = if code[i].op.shape() == Shape::JmpK {
                &next
            } else {
                &next[1..]
            };
            for &s in succ {
                if s < n && seen[s] != e && tree_node(&code[s], x) {
                    seen[s] = e;
                    nodes.push(s);
                }
            }
        }
        for &i in &nodes {
            covered[i] = true;
        }
        let compares = nodes
            .iter()
            .filter(|&&i| code[i].op.shape() == Shape::JmpK)
            .count();
        if compares + 1 < SWITCH_MIN_LEAVES {
            continue;
        }
        // A compare against k changes its outcome only at k or k + 1: with the
        // whole tree found, values past its largest constant in range all
        // take the same path as that constant + 1, and need no entries of
        // their own (they run the tree compare by compare).
        let top = if k == nodes.len() {
            nodes
                .iter()
                .map(|&i| &code[i])
                .filter(|c| c.op.shape() == Shape::JmpK)
                .map(|c| {
                    if c.op.is_32bit() {
                        c.imm as u32 as u64
                    } else {
                        c.imm as u64
                    }
                })
                .filter(|&k| k <= SWITCH_MAX)
                .max()
                .map_or(0, |k| (k + 1).min(SWITCH_MAX))
        } else {
            SWITCH_MAX
        };
        let Some(leaves) = (0..=top)
            .map(|v| walk(code, e, x, v))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let mut distinct: Vec<u32> = leaves.iter().map(|l| l.0).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < SWITCH_MIN_LEAVES {
            continue;
        }
        out.push(Switch {
            root: e as u32,
            leaves: leaves.into_boxed_slice(),
        });
    }
    out
}

/// Marks superinstructions: indexed loads and pairs. The instructions after the
/// first stay in place unchanged, so error positions and counting are
/// unaffected; a fused group never starts inside another and never spans a
/// leader (see [`leaders`]). (Runs of ALU instructions on one register, once
/// run by one handler with a `match` per instruction, were slower than one
/// dispatch each: that `match` is one indirect branch shared by every run,
/// which predicts worse than the handlers' own; prime/v2 took twice as long.)
fn fuse(code: &mut [VInsn]) {
    let leader = leaders(code);
    let mut k = 0;
    while k < code.len() {
        if let Some(c) = indexed_load_at(code, &leader, k) {
            code[k].off = operand_after_mov(&code[k], &code[k + 1]);
            code[k].code = c;
            k += 3;
            continue;
        }
        if let Some(c) = pair_at(code, &leader, k) {
            code[k].off = match code[k].op {
                Op::Mov64X | Op::Mov32X => operand_after_mov(&code[k], &code[k + 1]),
                // The handler masks the sum with `off << 32 | 0xffff_ffff`.
                Op::Add32K => 0,
                Op::Add64K => -1,
                _ => code[k].off,
            };
            code[k].code = c;
            k += 2;
        } else {
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_isa::asm::assemble;

    fn codes(src: &str) -> Vec<u8> {
        let p = VmProgram::new(&assemble(src).unwrap(), &LoadOptions::default()).unwrap();
        p.code.iter().map(|v| v.code).collect()
    }

    #[test]
    fn pairs_are_fused_once() {
        let c = codes("mov %r3, %r2\nmul %r3, %r2\nadd %r1, 1\njlt %r1, 9, -4\nexit");
        assert_eq!(c[0], fused::MOV_MUL_X);
        assert_eq!(c[1], Op::Mul64X as u8);
        assert_eq!(c[2], fused::ADD_JLT_K);
        assert_eq!(c[3], Op::JltK as u8);
    }

    #[test]
    fn bit_field_extraction_is_one_pair() {
        let src = "lddw %r3, 0xfedcba9876543210\nrsh %r3, 36\nand %r3, 0x3f\nmov %r0, %r3\nexit";
        let p = VmProgram::new(&assemble(src).unwrap(), &LoadOptions::default()).unwrap();
        assert_eq!(p.code[1].code, fused::RSH_AND_K);
        // The `and` of another register is no pair.
        assert_eq!(codes("rsh %r3, 4\nand %r2, 15\nexit")[0], Op::Rsh64K as u8);
        let r0 = p.run(crate::RunOptions::new()).unwrap().r0;
        assert_eq!(r0, (0xfedc_ba98_7654_3210u64 >> 36) & 0x3f);
    }

    #[test]
    fn operand_hazards() {
        // `add r3, r3` after `mov r3, r2` reads the moved value (r2); a compare of
        // another register than the one added to is not a pair.
        let p = VmProgram::new(
            &assemble("mov %r3, %r2\nadd %r3, %r3\nadd %r1, 1\njlt %r2, 9, -4\nexit").unwrap(),
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(p.code[0].code, fused::MOV_ADD_X);
        assert_eq!(p.code[0].off, 2);
        assert!(p.code[2..].iter().all(|v| v.code < fused::MOV_ADD_K));
    }

    #[test]
    fn groups_never_span_a_jump_target() {
        // The loop enters at the second add: no run may start before it.
        let c = codes(
            "mov %r0, 0\nadd %r0, 1\nadd %r0, 2\nadd %r0, 3\nadd %r1, 1\njlt %r1, 9, -5\nexit",
        );
        assert_eq!(c[0], Op::Mov64K as u8);
        assert_eq!(c[4], fused::ADD_JLT_K);
        let c = codes("mov %r3, %r2\nja +0\nexit");
        assert_eq!(c[0], Op::Mov64X as u8);
        let c = codes("mov %r3, %r2\njeq %r1, 0, +0\nmul %r3, 3\nexit");
        assert_eq!(c[2], Op::Mul64K as u8);
    }

    #[test]
    fn indexed_loads() {
        let c = codes("mov %r5, %r1\nadd %r5, %r2\nldxb %r5, [%r5]\nexit");
        assert_eq!(c[0], fused::LDX_IDX_B);
        // The load must use the computed address.
        let c = codes("mov %r5, %r1\nadd %r5, %r2\nldxb %r5, [%r1]\nexit");
        assert_eq!(c[0], fused::MOV_ADD_X);
    }
}
