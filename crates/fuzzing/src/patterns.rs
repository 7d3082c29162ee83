//! Escape patterns with maps, helpers, subprograms and callbacks: the shapes
//! of the verifier escapes found against the kernel's selftests that the
//! plain soundness generator ([`crate::verifier`]) cannot build, each drawn
//! with random variations, some of which the kernel refuses.
//!
//! Three oracles judge a variant:
//! - its label: a variant the kernel's rules refuse (memory-unsafe, or
//!   refused by rule, like a NULL check against a register) must not be
//!   accepted;
//! - the checked interpreter: an accepted program runs through bpfvm's
//!   runtime (real maps and helpers, JIT off) on random packets, and a
//!   memory violation is an escape;
//! - the host kernel, where it loads programs ([`KernelWorld`]): a program
//!   bpfvm accepts and the kernel refuses is an escape (and a label the
//!   kernel contradicts is a bug in this file).
//!
//! Patterns:
//! - `MapInMap`: inner maps of two maps of maps, spilled or held in
//!   registers, then one filled back and its value read at an offset (the
//!   inner map template must follow the pointer, not the last lookup);
//! - `NullCheck`: a lookup result compared with an immediate 0, a register
//!   holding 0 or 1 (the kernel learns nothing from a register), or with
//!   another, non-NULL, value pointer;
//! - `TailCallPkt`: a packet pointer checked, then a tail call (in the
//!   program or a subprogram) into a program that shrinks the packet, then
//!   the old pointer read (a tail call invalidates packet pointers);
//! - `CallbackLoop`: a bpf_loop callback with a loop whose step may be 0;
//! - `SockRef`: a referenced sockmap lookup released directly, through a
//!   cast, or leaked on a path (a cast's NULL check does not drop the
//!   reference);
//! - `MapHelper`: helpers given map types they may not take;
//! - `RcuSection`: `bpf_rcu_read_lock`/`unlock` kfunc calls, plain, under
//!   random conditions (correlated or not), in static subprograms, around
//!   early exits and tail calls: a section may not nest, an unlock needs a
//!   lock on its path, and no path may tail-call or exit inside one.
//! - `DynptrRingbuf`: a ring buffer dynptr (`bpf_ringbuf_reserve_dynptr`)
//!   reserved, submitted or discarded, sliced (`bpf_dynptr_data`), its slice
//!   used, and its stack slot overwritten, each under random conditions: the
//!   reference must be released once on every path, a slice dies with its
//!   dynptr, and a referenced dynptr's slot may not be overwritten.
//! - `NonNullOffset`: a non-NULL value pointer moved by a variable offset
//!   (up to past 2^29) and compared with 0: the kernel walks the NULL branch
//!   when the offset may wrap the pointer to 0.

use crate::verifier::{ins, Rng};
use bpfvm::{BpfError, MapCreateAttr, MapFd, ProgFd, ProgLoadAttr, Runtime};
use bpfvm_isa::uapi::{MapType, ProgType};
use bpfvm_isa::Insn;

use bpfvm_isa::uapi::{
    BPF_MAP_TYPE_ARRAY as ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS as ARRAY_OF_MAPS,
    BPF_MAP_TYPE_PROG_ARRAY as PROG_ARRAY, BPF_MAP_TYPE_RINGBUF as RINGBUF,
    BPF_MAP_TYPE_SOCKMAP as SOCKMAP, BPF_PROG_TYPE_XDP as XDP,
};
use bpfvm_testsupport::{self as host, Fd, MapCreate, ProgLoad};

use bpfvm_isa::uapi::BPF_FUNC_LOOP as LOOP;
use bpfvm_isa::uapi::BPF_FUNC_MAP_DELETE_ELEM as DELETE;
use bpfvm_isa::uapi::BPF_FUNC_MAP_LOOKUP_ELEM as LOOKUP;
use bpfvm_isa::uapi::BPF_FUNC_MAP_UPDATE_ELEM as UPDATE;
use bpfvm_isa::uapi::BPF_FUNC_SKC_TO_TCP_SOCK as SKC_TO_TCP_SOCK;
use bpfvm_isa::uapi::BPF_FUNC_SK_RELEASE as SK_RELEASE;
use bpfvm_isa::uapi::BPF_FUNC_TAIL_CALL as TAIL_CALL;
use bpfvm_isa::uapi::BPF_FUNC_XDP_ADJUST_TAIL as XDP_ADJUST_TAIL;

/// The maps every pattern may use, by their place in [`World`]'s lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapSym {
    /// array, value 64, 4 entries
    Arr = 0,
    /// array of maps, inner arrays with 8-byte values
    Outer8 = 1,
    /// array of maps, inner arrays with 64-byte values
    Outer64 = 2,
    /// prog_array, slot 0 a program that shrinks the packet by 40 bytes
    Progs = 3,
    /// sockmap, empty
    Socks = 4,
    /// ringbuf, 4096 bytes, never consumed
    Ring = 5,
}

/// One generated program and what the kernel's rules say of it.
#[derive(Clone, Debug)]
pub struct Variant {
    pub pattern: &'static str,
    pub insns: Vec<Insn>,
    /// The kernel refuses this variant (by construction).
    pub must_refuse: bool,
    /// Safe to run in the interpreter if accepted (no loop that could be
    /// infinite).
    pub runnable: bool,
    /// What was drawn, for the report.
    pub note: String,
    /// With callbacks: the first instruction of the program and of its
    /// callback (BTF func_info, which the kernel wants for callbacks).
    pub funcs: Vec<u32>,
}

/// Labels and jumps for a hand-built program.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    /// (insn, label, kind): 0 jump offset, 1 call imm, 2 ld_imm64 func imm
    fix: Vec<(usize, usize, u8)>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn i(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> &mut Self {
        self.insns.push(ins(code, dst, src, off, imm));
        self
    }
    fn mov(&mut self, dst: u8, imm: i32) -> &mut Self {
        self.i(0xb7, dst, 0, 0, imm)
    }
    fn movr(&mut self, dst: u8, src: u8) -> &mut Self {
        self.i(0xbf, dst, src, 0, 0)
    }
    fn call(&mut self, helper: i32) -> &mut Self {
        self.i(0x85, 0, 0, 0, helper)
    }
    fn exit(&mut self) -> &mut Self {
        self.i(0x95, 0, 0, 0, 0)
    }
    /// `r2 = fp - 4` with `*(u32 *)(fp - 4) = key`.
    fn key(&mut self, key: i32) -> &mut Self {
        self.i(0x62, 10, 0, -4, key)
            .movr(2, 10)
            .i(0x07, 2, 0, 0, -4)
    }
    fn ld_map(&mut self, dst: u8, m: MapSym) -> &mut Self {
        self.i(0x18, dst, 1, 0, m as i32).i(0, 0, 0, 0, 0)
    }
    fn jmp(&mut self, code: u8, dst: u8, src: u8, imm: i32, l: usize) -> &mut Self {
        self.fix.push((self.insns.len(), l, 0));
        self.i(code, dst, src, 0, imm)
    }
    fn call_sub(&mut self, l: usize) -> &mut Self {
        self.fix.push((self.insns.len(), l, 1));
        self.i(0x85, 0, 1, 0, 0)
    }
    fn ld_func(&mut self, dst: u8, l: usize) -> &mut Self {
        self.fix.push((self.insns.len(), l, 2));
        self.i(0x18, dst, 4, 0, 0).i(0, 0, 0, 0, 0)
    }
    fn finish(mut self) -> Vec<Insn> {
        for (at, l, kind) in self.fix {
            let t = self.labels[l].expect("label bound") as i64;
            let rel = t - at as i64 - 1;
            match kind {
                0 => self.insns[at].off = rel as i16,
                _ => self.insns[at].imm = rel as i32,
            }
        }
        self.insns
    }
}

/// `r0 = lookup(map, key)`.
fn lookup(a: &mut Asm, m: MapSym, key: i32) {
    a.ld_map(1, m).key(key).call(LOOKUP);
}

/// Inner maps of both maps of maps, kept in registers or spilled; one of them
/// used again, its value read at an offset.
fn map_in_map(r: &mut Rng) -> Variant {
    let mut a = Asm::default();
    let out = a.label();
    let first = r.pick(&[MapSym::Outer8, MapSym::Outer64]);
    let second = if first == MapSym::Outer8 {
        MapSym::Outer64
    } else {
        MapSym::Outer8
    };
    if r.below(6) == 0 {
        // The inner map used before its NULL check (or after it).
        let check = r.below(2) == 0;
        lookup(&mut a, first, 0);
        if check {
            a.jmp(0x15, 0, 0, 0, out);
        }
        a.movr(1, 0).key(0).call(LOOKUP);
        a.jmp(0x15, 0, 0, 0, out);
        a.i(0x79, 0, 0, 0, 0);
        a.bind(out);
        a.mov(0, 2).exit();
        return Variant {
            pattern: "map_in_map",
            insns: a.finish(),
            must_refuse: !check,
            runnable: true,
            note: format!("inner map NULL-checked {check}"),
            funcs: Vec::new(),
        };
    }
    let spill = r.below(3); // 0 registers, 1 spill both, 2 spill the first only
    let pick_first = r.below(2) == 0;
    let off = r.pick(&[0i16, 0, 8, 24, 56]);
    // The first inner map: r7 or fp-16; the second: r8 or fp-24.
    lookup(&mut a, first, 0);
    a.jmp(0x15, 0, 0, 0, out);
    if spill > 0 {
        a.i(0x7b, 10, 0, -16, 0);
    } else {
        a.movr(7, 0);
    }
    lookup(&mut a, second, 0);
    a.jmp(0x15, 0, 0, 0, out);
    if spill == 1 {
        a.i(0x7b, 10, 0, -24, 0);
    } else {
        a.movr(8, 0);
    }
    match (pick_first, spill) {
        (true, 0) => a.movr(1, 7),
        (true, _) => a.i(0x79, 1, 10, -16, 0),
        (false, 1) => a.i(0x79, 1, 10, -24, 0),
        (false, _) => a.movr(1, 8),
    };
    a.key(0).call(LOOKUP);
    a.jmp(0x15, 0, 0, 0, out);
    a.i(0x79, 0, 0, off, 0);
    a.bind(out);
    a.mov(0, 2).exit();
    let used = if pick_first { first } else { second };
    let size = if used == MapSym::Outer8 { 8 } else { 64 };
    Variant {
        pattern: "map_in_map",
        insns: a.finish(),
        must_refuse: off as i64 + 8 > size,
        runnable: true,
        note: format!("first {first:?} spill {spill} use_first {pick_first} off {off}"),
        funcs: Vec::new(),
    }
}

/// A lookup's result NULL-checked against an immediate, a register, or a
/// pointer known not to be NULL; then read.
fn null_check(r: &mut Rng) -> Variant {
    let mut a = Asm::default();
    let out = a.label();
    let key = r.pick(&[0, 3, 9]); // 9 is past the end: NULL
                                  // The key stored as an immediate, or spilled from a register (a known
                                  // constant the kernel tracks).
    let spilled = r.below(2) == 0;
    let kind = r.below(7);
    if kind >= 5 {
        // r7: a checked pointer into the same map
        lookup(&mut a, MapSym::Arr, 1);
        a.jmp(0x15, 0, 0, 0, out).movr(7, 0);
    }
    if spilled {
        a.mov(1, key).i(0x63, 10, 1, -4, 0);
        a.ld_map(1, MapSym::Arr)
            .movr(2, 10)
            .i(0x07, 2, 0, 0, -4)
            .call(LOOKUP);
    } else {
        lookup(&mut a, MapSym::Arr, key);
    }
    // An array lookup with a key the verifier knows is in range cannot
    // fail: the kernel knows a zeroed key (not a 4-byte spill of 3).
    let known = key == 0;
    let use_ = a.label();
    let unchecked = match kind {
        0 => {
            a.jmp(0x15, 0, 0, 0, out);
            false
        }
        1 => {
            a.jmp(0x55, 0, 0, 0, use_).jmp(0x05, 0, 0, 0, out);
            false
        }
        2 | 3 => {
            // a register holding 0 (or 1): no NULL check for the kernel
            a.mov(3, (kind - 2) as i32);
            a.jmp(0x1d, 0, 3, 0, out);
            true
        }
        4 => true, // no check at all
        5 => {
            // equal to a non-NULL pointer: not NULL there
            a.jmp(0x1d, 0, 7, 0, use_).jmp(0x05, 0, 0, 0, out);
            false
        }
        _ => {
            // unequal to it: may still be NULL
            a.jmp(0x5d, 0, 7, 0, use_).jmp(0x05, 0, 0, 0, out);
            true
        }
    };
    a.bind(use_);
    a.i(0x79, 0, 0, 0, 0);
    a.bind(out);
    a.mov(0, 2).exit();
    Variant {
        pattern: "null_check",
        insns: a.finish(),
        must_refuse: unchecked && !known,
        runnable: true,
        note: format!("key {key} spilled {spilled} kind {kind}"),
        funcs: Vec::new(),
    }
}

/// A packet pointer checked for 40 bytes, a tail call (maybe in a
/// subprogram, maybe to the empty slot), the old pointer read.
fn tail_call_pkt(r: &mut Rng) -> Variant {
    let mut a = Asm::default();
    let out = a.label();
    let sub = a.label();
    let in_sub = r.below(2) == 0;
    let slot = r.pick(&[0, 0, 1]);
    let call = r.below(4) != 0; // else no tail call at all
    let reload = r.below(3) == 0;
    let off = r.pick(&[0i16, 20, 39]);
    if call && in_sub && r.below(3) == 0 {
        // the subprogram checks, tail-calls and reads itself
        let sub = a.label();
        a.call_sub(sub).mov(0, 2).exit();
        a.bind(sub);
        let sub_at = a.insns.len() as u32;
        a.movr(6, 1);
        a.i(0x61, 7, 6, 0, 0).i(0x61, 3, 6, 4, 0);
        a.movr(4, 7).i(0x07, 4, 0, 0, 40);
        a.jmp(0x2d, 4, 3, 0, out);
        a.movr(1, 6)
            .ld_map(2, MapSym::Progs)
            .mov(3, slot)
            .call(TAIL_CALL);
        a.i(0x71, 0, 7, off, 0);
        a.bind(out);
        a.mov(0, 0).exit();
        return Variant {
            pattern: "tail_call_pkt",
            insns: a.finish(),
            // the subprogram's own pointers stay valid
            must_refuse: false,
            runnable: true,
            note: format!("inside the subprogram slot {slot} off {off}"),
            funcs: vec![0, sub_at],
        };
    }
    a.movr(6, 1);
    a.i(0x61, 7, 6, 0, 0).i(0x61, 3, 6, 4, 0);
    a.movr(4, 7).i(0x07, 4, 0, 0, 40);
    a.jmp(0x2d, 4, 3, 0, out);
    if call {
        if in_sub {
            a.movr(1, 6).call_sub(sub);
        } else {
            a.movr(1, 6)
                .ld_map(2, MapSym::Progs)
                .mov(3, slot)
                .call(TAIL_CALL);
        }
    }
    if reload {
        a.i(0x61, 7, 6, 0, 0).i(0x61, 3, 6, 4, 0);
        a.movr(4, 7).i(0x07, 4, 0, 0, 40);
        a.jmp(0x2d, 4, 3, 0, out);
    }
    a.i(0x71, 0, 7, off, 0);
    a.bind(out);
    a.mov(0, 2).exit();
    let sub_at = a.insns.len() as u32;
    if call && in_sub {
        a.bind(sub);
        a.ld_map(2, MapSym::Progs).mov(3, slot).call(TAIL_CALL);
        a.mov(0, 0).exit();
    }
    Variant {
        pattern: "tail_call_pkt",
        insns: a.finish(),
        // a tail call in the program itself does not return if it is taken
        must_refuse: call && in_sub && !reload,
        runnable: true,
        note: format!("call {call} in_sub {in_sub} slot {slot} reload {reload} off {off}"),
        // the kernel wants BTF for a subprogram with a tail call
        funcs: if call && in_sub {
            vec![0, sub_at]
        } else {
            Vec::new()
        },
    }
}

/// bpf_loop with a callback that counts in a loop of its own; step 0 never
/// ends.
fn callback_loop(r: &mut Rng) -> Variant {
    let mut a = Asm::default();
    let cb = a.label();
    if r.below(2) == 0 {
        // A counter the callback bumps, then an index into a 64-byte value:
        // bpf_loop(n) runs it at most n times (the kernel walks each count).
        let n = r.pick(&[1, 2, 4, 7, 8, 9, 100]);
        lookup(&mut a, MapSym::Arr, 0); // key 0: never NULL
        a.movr(6, 0).i(0x7a, 10, 0, -16, 0);
        a.mov(1, n)
            .ld_func(2, cb)
            .movr(3, 10)
            .i(0x07, 3, 0, 0, -16)
            .mov(4, 0);
        a.call(LOOP);
        a.i(0x79, 1, 10, -16, 0).i(0x67, 1, 0, 0, 3); // r1 = i * 8
        a.i(0x0f, 6, 1, 0, 0).i(0x79, 0, 6, 0, 0);
        a.mov(0, 2).exit();
        a.bind(cb);
        let cb_at = a.insns.len();
        a.i(0x79, 1, 2, 0, 0)
            .i(0x07, 1, 0, 0, 1)
            .i(0x7b, 2, 1, 0, 0);
        a.mov(0, 0).exit();
        return Variant {
            pattern: "callback_loop",
            insns: a.finish(),
            must_refuse: n > 7,
            runnable: true,
            note: format!("counter n {n}"),
            funcs: vec![0, cb_at as u32],
        };
    }
    let step = r.pick(&[0, 1, 3]);
    let forever = r.below(5) == 0;
    a.mov(1, r.pick(&[1, 4, 100]))
        .ld_func(2, cb)
        .mov(3, 0)
        .mov(4, 0);
    a.call(LOOP).mov(0, 2).exit();
    a.bind(cb);
    let cb_at = a.insns.len();
    let top = a.label();
    let done = a.label();
    if forever {
        a.bind(top);
        a.jmp(0x05, 0, 0, 0, top);
    } else {
        a.mov(2, 0);
        a.bind(top);
        a.jmp(0x35, 2, 0, 8, done); // if r2 >= 8 goto done
        a.i(0x07, 2, 0, 0, step);
        a.jmp(0x05, 0, 0, 0, top);
    }
    a.bind(done);
    a.mov(0, 0).exit();
    Variant {
        pattern: "callback_loop",
        insns: a.finish(),
        must_refuse: forever || step == 0,
        runnable: false,
        note: format!("forever {forever} step {step}"),
        funcs: vec![0, cb_at as u32],
    }
}

/// A referenced sockmap lookup: released, leaked, or cast and then released
/// on one path or both.
fn sock_ref(r: &mut Rng) -> Variant {
    let mut a = Asm::default();
    let out = a.label();
    let kind = r.below(4);
    lookup(&mut a, MapSym::Socks, r.pick(&[0, 1]));
    a.jmp(0x15, 0, 0, 0, out).movr(6, 0);
    let must_refuse = match kind {
        0 => {
            a.movr(1, 6).call(SK_RELEASE);
            false
        }
        1 => true,
        2 => {
            // the cast's NULL branch skips the release: a leak there
            a.movr(1, 6).call(SKC_TO_TCP_SOCK);
            a.jmp(0x15, 0, 0, 0, out);
            a.movr(1, 6).call(SK_RELEASE);
            true
        }
        _ => {
            a.movr(1, 6).call(SKC_TO_TCP_SOCK);
            a.movr(1, 6).call(SK_RELEASE);
            false
        }
    };
    a.bind(out);
    a.mov(0, 2).exit();
    Variant {
        pattern: "sock_ref",
        insns: a.finish(),
        must_refuse,
        runnable: true,
        note: format!("kind {kind}"),
        funcs: Vec::new(),
    }
}

/// A map helper given a map it may or may not take.
fn map_helper(r: &mut Rng) -> Variant {
    let mut a = Asm::default();
    let m = r.pick(&[MapSym::Arr, MapSym::Progs, MapSym::Socks, MapSym::Outer64]);
    let h = r.pick(&[LOOKUP, UPDATE, DELETE, TAIL_CALL]);
    let out = a.label();
    match h {
        TAIL_CALL => {
            a.ld_map(2, m).mov(3, 1).call(TAIL_CALL);
        }
        LOOKUP => {
            lookup(&mut a, m, 0);
            // a referenced socket must be released
            if m == MapSym::Socks {
                a.jmp(0x15, 0, 0, 0, out).movr(1, 0).call(SK_RELEASE);
            }
        }
        UPDATE => {
            // a 64-byte value at fp-72 (the key is at fp-4)
            for o in 0..8 {
                a.i(0x7a, 10, 0, -72 + 8 * o, 0);
            }
            a.ld_map(1, m)
                .key(1)
                .movr(3, 10)
                .i(0x07, 3, 0, 0, -72)
                .mov(4, 0);
            a.call(UPDATE);
        }
        _ => {
            a.ld_map(1, m).key(1).call(DELETE);
        }
    }
    a.bind(out);
    a.mov(0, 2).exit();
    let ok = match (m, h) {
        (_, TAIL_CALL) => m == MapSym::Progs,
        (MapSym::Progs, _) => false,
        (MapSym::Arr, _) => true,
        (MapSym::Socks, LOOKUP | DELETE) => true,
        (MapSym::Outer64, LOOKUP) => true,
        // updates need a socket (sockmap) or a map fd (maps of maps): the
        // kernel refuses a stack buffer for both; a map of maps' delete
        // from a program is refused too
        _ => false,
    };
    Variant {
        pattern: "map_helper",
        insns: a.finish(),
        must_refuse: !ok,
        runnable: true,
        note: format!("map {m:?} helper {h}"),
        funcs: Vec::new(),
    }
}

/// Placeholders for kfunc ids in a variant's calls, bound by [`bind_maps`]
/// to bpfvm's ids or the host's vmlinux ids.
const KF_RCU_LOCK: i32 = -1;
const KF_RCU_UNLOCK: i32 = -2;

/// One step of an RCU pattern; `Some(bit)`: only where that random bit is set.
#[derive(Clone, Copy, Debug)]
enum RcuStep {
    Lock(Option<u8>),
    Unlock(Option<u8>),
    /// Return early where the bit is set.
    Exit(u8),
    TailCall,
    /// A static subprogram (it shares its caller's state) that locks or
    /// unlocks.
    SubLock,
    SubUnlock,
}

/// Lock and unlock calls on random paths: the label walks every value of
/// the two random bits (r7 = r6 & 1, r8 = r6 & 2) through the steps.
fn rcu_section(r: &mut Rng) -> Variant {
    use RcuStep::*;
    let bit = |r: &mut Rng| {
        if r.below(3) == 0 {
            None
        } else {
            Some(r.below(2) as u8)
        }
    };
    let any = |r: &mut Rng| match r.below(12) {
        0..=3 => Lock(bit(r)),
        4..=7 => Unlock(bit(r)),
        8 => Exit(r.below(2) as u8),
        9 => TailCall,
        10 => SubLock,
        _ => SubUnlock,
    };
    // Random steps are mostly wrong; half the variants are balanced
    // sections (a lock and its unlock under the same condition, in the
    // program or a subprogram, exits and tail calls outside) with at most
    // one step changed.
    let mut steps: Vec<RcuStep> = Vec::new();
    if r.below(2) == 0 {
        for _ in 0..1 + r.below(5) {
            steps.push(any(r));
        }
    } else {
        for _ in 0..1 + r.below(3) {
            if r.below(3) == 0 {
                steps.push(r.pick(&[Exit(0), Exit(1), TailCall]));
            }
            let b = bit(r);
            steps.push(if r.below(4) == 0 { SubLock } else { Lock(b) });
            steps.push(if r.below(4) == 0 && b.is_none() {
                SubUnlock
            } else {
                Unlock(b)
            });
        }
        if r.below(2) == 0 {
            let at = r.below(steps.len() as u64) as usize;
            steps[at] = any(r);
        }
    }
    // The kernel's rules, per path.
    let refused_on = |bits: [bool; 2]| -> bool {
        let mut locked = false;
        for s in &steps {
            let on = |b: &Option<u8>| b.is_none_or(|b| bits[b as usize]);
            match s {
                Lock(b) | Unlock(b) if !on(b) => {}
                Lock(_) | SubLock if locked => return true,
                Lock(_) | SubLock => locked = true,
                Unlock(_) | SubUnlock if !locked => return true,
                Unlock(_) | SubUnlock => locked = false,
                Exit(b) if bits[*b as usize] => return locked,
                Exit(_) => {}
                TailCall if locked => return true,
                TailCall => {}
            }
        }
        locked
    };
    let must_refuse = (0..4).any(|v| refused_on([v & 1 != 0, v & 2 != 0]));
    let mut a = Asm::default();
    let (sub_lock, sub_unlock) = (a.label(), a.label());
    let reg = |b: u8| 7 + b;
    a.movr(9, 1).call(bpfvm_isa::uapi::BPF_FUNC_GET_PRANDOM_U32);
    a.movr(6, 0)
        .movr(7, 6)
        .i(0x57, 7, 0, 0, 1)
        .movr(8, 6)
        .i(0x57, 8, 0, 0, 2);
    let kcall = |a: &mut Asm, id: i32| {
        a.i(0x85, 0, 2, 0, id);
    };
    for s in &steps {
        let skip = a.label();
        match *s {
            Lock(b) | Unlock(b) => {
                if let Some(b) = b {
                    a.jmp(0x15, reg(b), 0, 0, skip);
                }
                kcall(
                    &mut a,
                    if matches!(s, Lock(_)) {
                        KF_RCU_LOCK
                    } else {
                        KF_RCU_UNLOCK
                    },
                );
            }
            Exit(b) => {
                a.jmp(0x15, reg(b), 0, 0, skip);
                a.mov(0, 2).exit();
            }
            TailCall => {
                a.movr(1, 9).ld_map(2, MapSym::Progs).mov(3, 1);
                a.call(TAIL_CALL);
            }
            SubLock => {
                a.call_sub(sub_lock);
            }
            SubUnlock => {
                a.call_sub(sub_unlock);
            }
        }
        a.bind(skip);
    }
    a.mov(0, 2).exit();
    // Only called subprograms: other code after the exit is unreachable.
    for (l, id, used) in [
        (
            sub_lock,
            KF_RCU_LOCK,
            steps.iter().any(|s| matches!(s, SubLock)),
        ),
        (
            sub_unlock,
            KF_RCU_UNLOCK,
            steps.iter().any(|s| matches!(s, SubUnlock)),
        ),
    ] {
        if used {
            a.bind(l);
            kcall(&mut a, id);
            a.mov(0, 0).exit();
        }
    }
    Variant {
        pattern: "rcu_section",
        insns: a.finish(),
        must_refuse,
        runnable: true,
        note: format!("{steps:?}"),
        funcs: Vec::new(),
    }
}

/// One step of a dynptr pattern; `Some(bit)`: only where that random bit
/// is set.
#[derive(Clone, Copy, Debug)]
enum DynStep {
    /// `bpf_ringbuf_reserve_dynptr(&ring, 8, 0, fp-16)`
    Reserve(Option<u8>),
    /// `bpf_ringbuf_submit_dynptr(fp-16, 0)`
    Submit(Option<u8>),
    /// `bpf_ringbuf_discard_dynptr(fp-16, 0)`
    Discard(Option<u8>),
    /// `r9 = bpf_dynptr_data(fp-16, 0, 8)`
    Slice(Option<u8>),
    /// `if r9 != 0`: a store of `size` bytes at `off` through the slice.
    Use { off: i16, size: u8 },
    /// `*(u64 *)(fp - 16) = 0`: a store over the dynptr's slot.
    Clobber(Option<u8>),
    /// Return early where the bit is set.
    Exit(u8),
}

/// What one path knows while walking a dynptr pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SliceState {
    /// r9 is 0 (never sliced on this path): a use is dead code.
    Zero,
    /// A slice of the live dynptr, 8 bytes.
    Live,
    /// A slice of a dynptr since released: no longer a pointer.
    Stale,
}

/// A ring buffer dynptr on random paths: the label walks every value of the
/// two random bits (r7 = r6 & 1, r8 = r6 & 2) through the steps.
fn dynptr_ringbuf(r: &mut Rng) -> Variant {
    use DynStep::*;
    let bit = |r: &mut Rng| {
        if r.below(3) == 0 {
            None
        } else {
            Some(r.below(2) as u8)
        }
    };
    let use_step = |r: &mut Rng| {
        let (off, size) = r.pick(&[(0, 8), (4, 4), (0, 1), (7, 1), (8, 1), (4, 8), (-1, 1)]);
        Use { off, size }
    };
    let any = |r: &mut Rng| match r.below(14) {
        0..=2 => Reserve(bit(r)),
        3..=4 => Submit(bit(r)),
        5..=6 => Discard(bit(r)),
        7..=8 => Slice(bit(r)),
        9..=11 => use_step(r),
        12 => Clobber(bit(r)),
        _ => Exit(r.below(2) as u8),
    };
    // Half the variants are right by construction (reserve, slice, use,
    // release, under one condition) with at most one step changed.
    let mut steps: Vec<DynStep> = Vec::new();
    if r.below(2) == 0 {
        for _ in 0..1 + r.below(6) {
            steps.push(any(r));
        }
    } else {
        for _ in 0..1 + r.below(2) {
            let b = bit(r);
            steps.push(Reserve(b));
            if r.below(2) == 0 {
                steps.push(Slice(b));
                steps.push(Use { off: 0, size: 8 });
            }
            steps.push(if r.below(2) == 0 {
                Submit(b)
            } else {
                Discard(b)
            });
            if r.below(3) == 0 {
                steps.push(use_step(r));
            }
        }
        if r.below(2) == 0 {
            let at = r.below(steps.len() as u64) as usize;
            steps[at] = any(r);
        }
    }
    // The kernel's rules, per path: (dynptr live, slice state).
    let refused_on = |bits: [bool; 2]| -> bool {
        let (mut live, mut slice) = (false, SliceState::Zero);
        for s in &steps {
            let on = |b: &Option<u8>| b.is_none_or(|b| bits[b as usize]);
            match s {
                Reserve(b) | Submit(b) | Discard(b) | Slice(b) | Clobber(b) if !on(b) => {}
                // Reserving over a referenced dynptr would lose it.
                Reserve(_) if live => return true,
                Reserve(_) => live = true,
                Submit(_) | Discard(_) | Slice(_) if !live => return true,
                Submit(_) | Discard(_) => {
                    live = false;
                    if slice == SliceState::Live {
                        slice = SliceState::Stale;
                    }
                }
                Slice(_) => slice = SliceState::Live,
                Use { off, size } => match slice {
                    SliceState::Zero => {}
                    SliceState::Stale => return true,
                    SliceState::Live if *off < 0 || *off as i32 + *size as i32 > 8 => return true,
                    SliceState::Live => {}
                },
                Clobber(_) if live => return true,
                Clobber(_) => {}
                Exit(b) if bits[*b as usize] => return live,
                Exit(_) => {}
            }
        }
        live
    };
    let must_refuse = (0..4).any(|v| refused_on([v & 1 != 0, v & 2 != 0]));
    let mut a = Asm::default();
    let reg = |b: u8| 7 + b;
    a.call(bpfvm_isa::uapi::BPF_FUNC_GET_PRANDOM_U32);
    a.movr(6, 0)
        .movr(7, 6)
        .i(0x57, 7, 0, 0, 1)
        .movr(8, 6)
        .i(0x57, 8, 0, 0, 2)
        .mov(9, 0);
    let dynptr_arg = |a: &mut Asm, r: u8| {
        a.movr(r, 10).i(0x07, r, 0, 0, -16);
    };
    for s in &steps {
        let skip = a.label();
        let cond = match *s {
            Reserve(b) | Submit(b) | Discard(b) | Slice(b) | Clobber(b) => b,
            Use { .. } | Exit(_) => None,
        };
        if let Some(b) = cond {
            a.jmp(0x15, reg(b), 0, 0, skip);
        }
        match *s {
            Reserve(_) => {
                a.ld_map(1, MapSym::Ring).mov(2, 8).mov(3, 0);
                dynptr_arg(&mut a, 4);
                a.call(bpfvm_isa::uapi::BPF_FUNC_RINGBUF_RESERVE_DYNPTR);
            }
            Submit(_) | Discard(_) => {
                dynptr_arg(&mut a, 1);
                a.mov(2, 0).call(if matches!(s, Submit(_)) {
                    bpfvm_isa::uapi::BPF_FUNC_RINGBUF_SUBMIT_DYNPTR
                } else {
                    bpfvm_isa::uapi::BPF_FUNC_RINGBUF_DISCARD_DYNPTR
                });
            }
            Slice(_) => {
                dynptr_arg(&mut a, 1);
                a.mov(2, 0)
                    .mov(3, 8)
                    .call(bpfvm_isa::uapi::BPF_FUNC_DYNPTR_DATA)
                    .movr(9, 0);
            }
            Use { off, size } => {
                let code = match size {
                    1 => 0x72,
                    4 => 0x62,
                    _ => 0x7a,
                };
                a.jmp(0x15, 9, 0, 0, skip);
                a.i(code, 9, 0, off, 1);
            }
            Clobber(_) => {
                a.i(0x7a, 10, 0, -16, 0);
            }
            Exit(b) => {
                a.jmp(0x15, reg(b), 0, 0, skip);
                a.mov(0, 2).exit();
            }
        }
        a.bind(skip);
    }
    a.mov(0, 2).exit();
    Variant {
        pattern: "dynptr_ringbuf",
        insns: a.finish(),
        must_refuse,
        runnable: true,
        note: format!("{steps:?}"),
        funcs: Vec::new(),
    }
}

/// One variant of a random pattern.
pub fn variant(r: &mut Rng) -> Variant {
    match r.below(9) {
        0 => map_in_map(r),
        1 => null_check(r),
        2 => tail_call_pkt(r),
        3 => callback_loop(r),
        4 => sock_ref(r),
        5 => rcu_section(r),
        6 => dynptr_ringbuf(r),
        7 => nonnull_offset(r),
        _ => map_helper(r),
    }
}

/// A value pointer known non-NULL, moved by a variable offset, then compared
/// with 0; the branch where it is 0 reads an uninitialised register. The
/// kernel skips that branch only while the offset stays inside
/// (-2^29, 2^29) (`reg_not_null`: a larger one may wrap the pointer to 0).
fn nonnull_offset(r: &mut Rng) -> Variant {
    const MAX_VAR_OFF: i64 = 1 << 29;
    let mut a = Asm::default();
    let bad = a.label();
    let done = a.label();
    let mask = r.pick(&[0xffi64, 0xffff, 0x1fff_ffff, 0x2000_0000, 0x3fff_ffff]);
    let shift = r.pick(&[0i64, 0, 0x100, 0x1000_0000]);
    lookup(&mut a, MapSym::Arr, 0);
    a.i(0x61, 2, 0, 0, 0).i(0x57, 2, 0, 0, mask as i32);
    if shift != 0 {
        a.i(0x17, 2, 0, 0, shift as i32);
    }
    a.i(0x0f, 0, 2, 0, 0);
    let jne = r.below(2) == 0;
    if jne {
        a.jmp(0x55, 0, 0, 0, done).jmp(0x05, 0, 0, 0, bad);
    } else {
        a.jmp(0x15, 0, 0, 0, bad);
    }
    a.bind(done);
    a.mov(0, 2).exit();
    a.bind(bad);
    a.i(0x79, 0, 9, 0, 0).exit();
    let (smin, smax) = (-shift, mask - shift);
    Variant {
        pattern: "nonnull_offset",
        insns: a.finish(),
        must_refuse: smin <= -MAX_VAR_OFF || smax >= MAX_VAR_OFF,
        runnable: true,
        note: format!("offset in [{smin}, {smax}], jne {jne}"),
        funcs: Vec::new(),
    }
}

/// The kfunc ids [`bind_maps`] puts in place of the placeholders: bpfvm's
/// own (its kfunc table) or the host kernel's (vmlinux BTF).
#[derive(Clone, Copy, Debug)]
pub struct KfuncIds {
    pub rcu_read_lock: i32,
    pub rcu_read_unlock: i32,
}

impl KfuncIds {
    /// bpfvm's ids.
    pub fn bpfvm() -> KfuncIds {
        let id = |n: &str| bpfvm::kfuncs::resolve(n).expect("bpfvm has the RCU kfuncs");
        KfuncIds {
            rcu_read_lock: id("bpf_rcu_read_lock"),
            rcu_read_unlock: id("bpf_rcu_read_unlock"),
        }
    }

    /// The host kernel's ids, from its vmlinux BTF.
    pub fn host() -> Result<KfuncIds, String> {
        let raw = std::fs::read(bpfvm::HOST_VMLINUX)
            .map_err(|e| format!("{}: {e}", bpfvm::HOST_VMLINUX))?;
        let btf = bpfvm::btf::Btf::parse(&raw).map_err(|e| format!("vmlinux BTF: {e}"))?;
        let id = |n: &str| {
            btf.find_by_name_kind(n, bpfvm::btf::BtfKind::Func)
                .map(|i| i as i32)
                .ok_or_else(|| format!("{n} is not in the host's vmlinux BTF"))
        };
        Ok(KfuncIds {
            rcu_read_lock: id("bpf_rcu_read_lock")?,
            rcu_read_unlock: id("bpf_rcu_read_unlock")?,
        })
    }
}

/// Replaces the map symbols of LD_IMM64 (src 1) with `ids` (bpfvm ids or
/// kernel fds), and the kfunc placeholders of kfunc calls with `kf`.
pub fn bind_maps(p: &[Insn], ids: &[u32], kf: &KfuncIds) -> Vec<Insn> {
    let mut v = p.to_vec();
    for x in v.iter_mut() {
        if x.code == 0x18 && x.src_reg == 1 {
            x.imm = ids[x.imm as usize] as i32;
        }
        if x.code == 0x85 && x.src_reg == 2 {
            x.imm = match x.imm {
                KF_RCU_LOCK => kf.rcu_read_lock,
                KF_RCU_UNLOCK => kf.rcu_read_unlock,
                other => other,
            };
        }
    }
    v
}

/// The tail-call target: shrinks the packet by 40 bytes, returns XDP_PASS.
fn shrink_prog() -> Vec<Insn> {
    let mut a = Asm::default();
    a.mov(2, -40).call(XDP_ADJUST_TAIL).mov(0, 2).exit();
    a.finish()
}

/// BTF for programs with callbacks: `int`, a prototype, and two static
/// functions (type ids 3 and 4) named `main` and `cb`.
pub fn btf_blob() -> Vec<u8> {
    let strings = b"\0int\0main\0cb\0";
    let words: [u32; 13] = [
        1,
        1 << 24,
        4,
        (1 << 24) | 32, // [1] INT int, 4 bytes, signed
        0,
        13 << 24,
        1, // [2] FUNC_PROTO int (void)
        5,
        12 << 24,
        2, // [3] FUNC main, static
        10,
        12 << 24,
        2, // [4] FUNC cb, static
    ];
    let types: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut b = Vec::new();
    b.extend(0xeb9fu16.to_le_bytes());
    b.extend([1u8, 0]);
    for w in [
        24u32,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.len() as u32,
    ] {
        b.extend(w.to_le_bytes());
    }
    b.extend(types);
    b.extend(strings);
    b
}

/// bpfvm's side: a runtime (interpreter, checked) with the maps made.
pub struct World {
    pub rt: Runtime,
    btf: std::sync::Arc<bpfvm::BtfObj>,
    maps: Vec<MapFd>,
    _keep: Vec<MapFd>,
    _target: ProgFd,
}

fn array(value: u32, entries: u32) -> MapCreateAttr {
    MapCreateAttr {
        map_type: MapType::Array,
        key_size: 4,
        value_size: value,
        max_entries: entries,
        name: "a".into(),
        ..Default::default()
    }
}

impl World {
    pub fn new() -> Result<World, BpfError> {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(false);
        let arr = rt.create_map(&array(64, 4))?;
        let zero = 0u32.to_le_bytes();
        let mut keep = Vec::new();
        let mut outer = |size: u32| -> Result<MapFd, BpfError> {
            let inner = rt.create_map(&array(size, 1))?;
            let o = rt.create_map(&MapCreateAttr {
                map_type: MapType::ArrayOfMaps,
                key_size: 4,
                value_size: 4,
                max_entries: 1,
                inner_map_id: Some(inner.id()),
                name: "o".into(),
                ..Default::default()
            })?;
            rt.map_update_elem(&o, &zero, &inner.id().to_le_bytes(), 0)?;
            keep.push(inner);
            Ok(o)
        };
        let o8 = outer(8)?;
        let o64 = outer(64)?;
        let progs = rt.create_map(&MapCreateAttr {
            map_type: MapType::ProgArray,
            key_size: 4,
            value_size: 4,
            max_entries: 2,
            name: "p".into(),
            ..Default::default()
        })?;
        let socks = rt.create_map(&MapCreateAttr {
            map_type: MapType::Sockmap,
            key_size: 4,
            value_size: 4,
            max_entries: 2,
            name: "s".into(),
            ..Default::default()
        })?;
        let ring = rt.create_map(&MapCreateAttr {
            map_type: MapType::Ringbuf,
            max_entries: 4096,
            name: "r".into(),
            ..Default::default()
        })?;
        let target = rt.load_program(ProgLoadAttr {
            prog_type: ProgType::Xdp,
            insns: shrink_prog(),
            license: "GPL".into(),
            name: "shrink".into(),
            ..Default::default()
        })?;
        rt.map_update_elem(&progs, &zero, &target.id().to_le_bytes(), 0)?;
        let btf = rt.btf_load(&btf_blob(), "patterns")?;
        Ok(World {
            rt,
            btf,
            maps: vec![arr, o8, o64, progs, socks, ring],
            _keep: keep,
            _target: target,
        })
    }

    pub fn ids(&self) -> Vec<u32> {
        self.maps.iter().map(|m| m.id()).collect()
    }

    /// Verifies a variant (Err: the verifier's message).
    pub fn load(&self, v: &Variant) -> Result<ProgFd, String> {
        self.rt
            .load_program(ProgLoadAttr {
                prog_type: ProgType::Xdp,
                insns: bind_maps(&v.insns, &self.ids(), &KfuncIds::bpfvm()),
                license: "GPL".into(),
                name: v.pattern.into(),
                btf_id: (!v.funcs.is_empty()).then_some(self.btf.id),
                func_info: v
                    .funcs
                    .iter()
                    .enumerate()
                    .map(|(i, &at)| bpfvm::FuncInfo {
                        insn_off: at * 8,
                        insn_idx: at,
                        type_id: 3 + i as u32,
                    })
                    .collect(),
                ..Default::default()
            })
            .map_err(|e| match &e {
                BpfError::Verifier { source, .. } => source.error.to_string(),
                _ => e.to_string(),
            })
    }

    /// Runs an accepted program on random packets (40 to 120 bytes, random
    /// array values); the first run-time failure, if any.
    pub fn run(&self, p: &ProgFd, r: &mut Rng) -> Option<String> {
        for _ in 0..3 {
            let len = 40 + r.below(81) as usize;
            let pkt: Vec<u8> = (0..len).map(|_| r.next_u64() as u8).collect();
            let k = (r.below(4) as u32).to_le_bytes();
            let val: Vec<u8> = (0..64).map(|_| r.next_u64() as u8).collect();
            let _ = self.rt.map_update_elem(&self.maps[0], &k, &val, 0);
            if let Err(e) = self.rt.run_packet(p, &pkt) {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(x) = src {
                    s.push_str(": ");
                    s.push_str(&x.to_string());
                    src = x.source();
                }
                return Some(s);
            }
        }
        None
    }
}

/// The host kernel's side: the same maps, made with bpf(2).
pub struct KernelWorld {
    fds: Vec<u32>,
    kfuncs: KfuncIds,
    btf_fd: u32,
    _keep: Vec<Fd>,
}

fn k_map(map_type: u32, value: u32, entries: u32, inner: Option<&Fd>) -> Result<Fd, String> {
    host::map_create(&MapCreate {
        map_type,
        key_size: 4,
        value_size: value,
        max_entries: entries,
        inner_map_fd: inner.map_or(0, |f| f.raw() as u32),
        ..MapCreate::default()
    })
    .map_err(|e| format!("map create {map_type}: {e}"))
}

fn k_update(map: &Fd, key: u32, value: u32) -> Result<(), String> {
    host::map_update(map, &key.to_le_bytes(), &value.to_le_bytes(), 0)
        .map_err(|e| format!("map update: {e}"))
}

/// Loads an XDP program in the host kernel: its fd, or the last line of the
/// verifier's log.
fn k_load(p: &[Insn], btf_fd: u32, funcs: &[u32]) -> Result<Fd, String> {
    let fi: Vec<u32> = funcs
        .iter()
        .enumerate()
        .flat_map(|(i, &at)| [at, 3 + i as u32])
        .collect();
    let load = ProgLoad {
        prog_type: XDP,
        insns: p,
        log_level: 1,
        log_size: 1 << 16,
        prog_btf_fd: btf_fd,
        func_info: &fi,
        ..ProgLoad::default()
    };
    match host::prog_load(&load) {
        Ok(l) => l.fd.ok_or_else(|| "the load gave no fd".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

impl KernelWorld {
    /// The maps in the host kernel, or why it cannot make them (not root, no
    /// BPF).
    pub fn new() -> Result<KernelWorld, String> {
        let mut keep = Vec::new();
        let arr = k_map(ARRAY, 64, 4, None)?;
        let mut outer = |size: u32| -> Result<Fd, String> {
            let inner = k_map(ARRAY, size, 1, None)?;
            let o = k_map(ARRAY_OF_MAPS, 4, 1, Some(&inner))?;
            k_update(&o, 0, inner.raw() as u32)?;
            keep.push(inner);
            Ok(o)
        };
        let o8 = outer(8)?;
        let o64 = outer(64)?;
        let progs = k_map(PROG_ARRAY, 4, 2, None)?;
        let socks = k_map(SOCKMAP, 4, 2, None)?;
        let ring = host::map_create(&MapCreate {
            map_type: RINGBUF,
            max_entries: 4096,
            ..MapCreate::default()
        })
        .map_err(|e| format!("ringbuf create: {e}"))?;
        let target = k_load(&shrink_prog(), 0, &[])?;
        let btf = host::btf_load(&btf_blob()).map_err(|e| format!("BTF load: {e}"))?;
        let btf_fd = btf.raw() as u32;
        keep.push(btf);
        k_update(&progs, 0, target.raw() as u32)?;
        keep.push(target);
        let fds = [arr, o8, o64, progs, socks, ring];
        let raw = fds.iter().map(|f| f.raw() as u32).collect();
        keep.extend(fds);
        Ok(KernelWorld {
            fds: raw,
            kfuncs: KfuncIds::host()?,
            btf_fd,
            _keep: keep,
        })
    }

    /// The kernel's verdict: Ok, or its message.
    pub fn verdict(&self, v: &Variant) -> Result<(), String> {
        k_load(
            &bind_maps(&v.insns, &self.fds, &self.kfuncs),
            self.btf_fd,
            &v.funcs,
        )
        .map(drop)
    }
}

/// What a batch of variants showed.
#[derive(Debug, Default)]
pub struct PatternReport {
    pub tried: u64,
    pub accepted: u64,
    pub run: u64,
    /// Accepted although the label (or the kernel) refuses, or faulted.
    pub escapes: Vec<String>,
    /// The kernel disagreed with a label (a bug in the pattern).
    pub label_errors: Vec<String>,
    /// bpfvm refused, the kernel accepted.
    pub false_refusals: Vec<String>,
    /// Per pattern: (tried, accepted, labelled must-refuse).
    pub per_pattern: std::collections::BTreeMap<&'static str, (u64, u64, u64)>,
}

/// Draws, verifies and (if accepted and runnable) runs one variant; with a
/// kernel, compares verdicts.
pub fn round(r: &mut Rng, w: &World, k: Option<&KernelWorld>, rep: &mut PatternReport) {
    let v = variant(r);
    rep.tried += 1;
    let e = rep.per_pattern.entry(v.pattern).or_default();
    e.0 += 1;
    e.2 += v.must_refuse as u64;
    let ours = w.load(&v);
    let listing = || bpfvm_isa::asm::disassemble_conformance(&v.insns);
    if let Some(k) = k {
        let theirs = k.verdict(&v);
        if theirs.is_ok() == v.must_refuse {
            rep.label_errors.push(format!(
                "{} {}: label must_refuse={} but kernel {:?}\n{}",
                v.pattern,
                v.note,
                v.must_refuse,
                theirs,
                listing()
            ));
        }
        match (&ours, &theirs) {
            (Ok(_), Err(m)) => rep.escapes.push(format!(
                "{} {}: bpfvm accepts, kernel refuses: {m}\n{}",
                v.pattern,
                v.note,
                listing()
            )),
            (Err(m), Ok(())) => rep.false_refusals.push(format!(
                "{} {}: bpfvm refuses ({m}), kernel accepts",
                v.pattern, v.note
            )),
            _ => {}
        }
    }
    let Ok(p) = ours else { return };
    rep.accepted += 1;
    rep.per_pattern.get_mut(v.pattern).unwrap().1 += 1;
    if v.must_refuse {
        rep.escapes.push(format!(
            "{} {}: accepted, but the kernel's rules refuse it\n{}",
            v.pattern,
            v.note,
            listing()
        ));
    }
    if v.runnable {
        rep.run += 1;
        if let Some(f) = w.run(&p, r) {
            rep.escapes.push(format!(
                "{} {}: verified program failed at run time: {f}\n{}",
                v.pattern,
                v.note,
                listing()
            ));
        }
    }
}
