//! do_check: path-by-path exploration of register and stack state.
//!
//! A path is a `State` (call frames with registers and stack, acquired
//! references) walked instruction by instruction. Conditional jumps whose
//! outcome is unknown fork the path (the other side goes on a stack of pending
//! paths); at prune points the state is compared with checkpoints already
//! proven safe there (`Verifier::subsumes`) and the path stops if one covers
//! it. Checkpoints carry a count of live descendant paths, so a checkpoint that
//! is still being explored (a loop head on the current path) is used to detect
//! loops that make no progress rather than to prune.

use crate::cfg::{check_cfg, target, Cfg};
use crate::helpers::{proto_for, Arg, Effect, Refusal, Ret};
use crate::prog::*;
use crate::reg::{reg_text, Reg, RegType, ADD_CONST};
use crate::tnum::Tnum;
use crate::{MapDesc, Refused, Stats, Verified, VerifierError, VerifierOpts};
use bpfvm_isa::consts::*;
use bpfvm_isa::disasm::{kernel_insn_line, KernelSymbols, HELPER_NAMES};
use bpfvm_isa::{Decoded, Insn, Op, Shape};
use std::collections::HashMap;

const MAX_INSNS: u64 = 1_000_000;
/// The longest program an unprivileged loader may load.
const BPF_MAXINSNS: usize = 4096;
const MAX_JMP_SEQ: usize = 8192;
const MAX_STACK: i64 = 512;
const MAX_FRAMES: usize = 8;
const MAX_VAR_OFF: i64 = 1 << 29;
const MAX_PACKET_OFF: u64 = 0xffff;
/// A safety bound on one instruction's list; eviction keeps real lists short.
const MAX_STATES_PER_INSN: usize = 4096;
/// BPF_COMPLEXITY_LIMIT_STATES: the kernel's cap for unprivileged loaders.
const UNPRIV_STATES_PER_INSN: usize = 64;
/// Bounds the verifier's memory: past it no new checkpoints are stored.
const MAX_LIVE_STATES: u32 = 32_768;
/// Instructions a path remembers since its last checkpoint (precision).
const MAX_HISTORY: usize = 8192;
/// Jump history entries since a path's checkpoint past which a prune point
/// takes a new checkpoint (the kernel's `is_state_visited`).
const MAX_JMP_HISTORY: usize = 40;
/// Completed states at one insn past which the ones that keep missing go.
const EVICT_ABOVE: usize = 64;

// Stack byte kinds (`enum bpf_stack_slot_type`).
const STACK_INVALID: u8 = 0;
const STACK_SPILL: u8 = 1;
const STACK_MISC: u8 = 2;
const STACK_ZERO: u8 = 3;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Slot {
    /// Indexed by `(-addr - 1) % 8`, as the kernel's `slot_type`.
    ty: [u8; 8],
    spill: Reg,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            ty: [STACK_INVALID; 8],
            spill: Reg::not_init(),
        }
    }
}

#[derive(Clone, Debug)]
struct Frame {
    regs: [Reg; 11],
    stack: Vec<Slot>,
    /// Instruction of the call that created this frame.
    callsite: usize,
    subprog: usize,
    /// Callback frames return to the helper call (bpf_loop) and must return 0 or 1.
    callback: bool,
    /// A callback frame: how many times the callback has run on this path
    /// (bpf_loop runs it at most R1 times: the kernel's callback_depth).
    cb_iters: u32,
}

impl Frame {
    fn slot(&self, spi: usize) -> Option<&Slot> {
        self.stack.get(spi)
    }
    fn slot_mut(&mut self, spi: usize) -> &mut Slot {
        if self.stack.len() <= spi {
            self.stack.resize(spi + 1, Slot::default());
        }
        &mut self.stack[spi]
    }
}

#[derive(Clone, Debug)]
struct State {
    frames: Vec<Frame>,
    /// Acquired references: (id, allocating instruction).
    refs: Vec<(u32, usize)>,
    /// `may_goto` fall-throughs this path took (`may_goto_depth`): the hidden
    /// loop count it stands for differs from a state's with another depth.
    may_goto_depth: u32,
    /// The spin lock held: (map id, id of the map value register it was
    /// taken through), `active_lock`.
    active_lock: Option<(u32, u32)>,
    /// Inside a `bpf_rcu_read_lock` section on this path (`active_rcu_lock`):
    /// no sleeping, tail calls, LD_ABS/IND or exit until it is unlocked.
    active_rcu_lock: bool,
    /// `bpf_preempt_disable` calls not yet matched by `bpf_preempt_enable` on
    /// this path (`active_preempt_lock`): they nest.
    active_preempt_lock: u32,
    /// Callback iterations entered on this path (`callback_unroll_depth`):
    /// a state of the next iteration is no repeat of this one's.
    cb_unroll: u32,
}

impl State {
    fn cur(&self) -> &Frame {
        self.frames.last().expect("a state always has a frame")
    }
    fn cur_mut(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("a state always has a frame")
    }
    fn reg(&self, r: u8) -> &Reg {
        &self.cur().regs[r as usize]
    }
    fn reg_mut(&mut self, r: u8) -> &mut Reg {
        &mut self.cur_mut().regs[r as usize]
    }
    fn curframe(&self) -> u8 {
        (self.frames.len() - 1) as u8
    }
    /// Every register and spilled register, in every frame.
    fn for_each_reg(&mut self, mut f: impl FnMut(&mut Reg)) {
        for fr in &mut self.frames {
            for r in fr.regs.iter_mut() {
                f(r);
            }
            for s in fr.stack.iter_mut() {
                if s.ty.contains(&STACK_SPILL) {
                    f(&mut s.spill);
                }
            }
        }
    }
}

/// A callback's first registers, the caller's state at its last entry, and
/// how many times the helper runs it at most.
type CallbackInit = (Box<[Reg; 11]>, Box<State>, u64);

struct Checkpoint {
    state: Option<State>,
    /// Live paths descending from this checkpoint.
    branches: u32,
    parent: Option<usize>,
    /// Lookups this state pruned, and lookups it failed to match.
    hit: u32,
    miss: u32,
    /// Where the state was taken, and its `fingerprint` (loop check).
    pc: usize,
    fp: u64,
    /// Instructions executed from the parent checkpoint to this one.
    seg: precise::HistList,
    /// Every scalar here and above is already precise.
    all_precise: bool,
    /// The outermost iterator loop head (a checkpoint at an iterator's
    /// `next`) this state's safety was proven against while that head was
    /// still being explored.
    loop_entry: Option<usize>,
}

/// A path that closed a `may_goto` loop against its head while the head
/// was still being explored.
struct Backedge {
    /// The checkpoint the path was found within (the head, or a state of
    /// the loop that itself depends on the head): its final precision is
    /// what the path needs.
    target: usize,
    state: State,
    history: precise::HistList,
    parent: Option<usize>,
}

struct Pending {
    state: State,
    insn: usize,
    prev: usize,
    parent: Option<usize>,
    log_pos: usize,
    /// The history the branch shares with the path that pushed it.
    history: precise::HistList,
}

type Fail = (VerifierError, Option<usize>);

fn unsafe_(reason: impl Into<String>) -> VerifierError {
    VerifierError::Unsafe {
        reason: reason.into(),
    }
}
fn invalid(reason: impl Into<String>) -> VerifierError {
    VerifierError::Invalid {
        reason: reason.into(),
    }
}
fn too_complex(reason: impl Into<String>) -> VerifierError {
    VerifierError::TooComplex {
        reason: reason.into(),
    }
}
fn call_err(reason: impl Into<String>) -> VerifierError {
    VerifierError::Call {
        reason: reason.into(),
    }
}

/// Symbols for the log. The kernel prints the map's (or value's) kernel
/// address for map references; we print a stand-in address of the same shape
/// derived from the map id, so lines line up with kernel logs.
struct LogSyms;
impl KernelSymbols for LogSyms {
    fn imm64_text(&self, _pc: usize, d: &Decoded) -> Option<String> {
        let id = d.imm32() as u32 as u64;
        match d.src {
            BPF_PSEUDO_MAP_FD => Some(format!("{:#x}", 0xffff_8881_0000_0000u64 + id * 0x400)),
            BPF_PSEUDO_MAP_VALUE => Some(format!(
                "{:#x}",
                0xffff_c900_0000_0000u64 + id * 0x10_0000 + d.imm_hi() as u32 as u64
            )),
            _ => None,
        }
    }
}

pub struct Verifier<'a> {
    insns: &'a [Insn],
    maps: &'a dyn Fn(u32) -> Option<MapDesc>,
    map_cache: HashMap<u32, Option<MapDesc>>,
    opts: &'a VerifierOpts,
    cfg: Option<Cfg>,
    log: String,
    /// Log position right after the last instruction line, and that line's length.
    insn_line_end: usize,
    insn_line_len: usize,
    prev_linfo: Option<usize>,
    /// Which registers / stack slots the current instruction touched.
    scratched_regs: u32,
    scratched_stack: u64,
    checkpoints: Vec<Checkpoint>,
    /// `may_goto` loops closed against a head still being explored, per
    /// head: the path that closed it (state, history, parent checkpoint).
    /// When the head is done its final precision is carried back along each
    /// (the kernel's deferred precision along back-edges).
    backedges: HashMap<usize, Vec<Backedge>>,
    /// Completed checkpoints per instruction (the ones pruning compares with).
    explored: HashMap<usize, Vec<usize>>,
    /// Every checkpoint per instruction, completed or not.
    all_states: HashMap<usize, Vec<usize>>,
    /// Checkpoints still being explored, by instruction and fingerprint:
    /// loop detection looks up exact repeats here instead of scanning.
    in_progress: HashMap<(usize, u64), Vec<usize>>,
    /// How many checkpoints at each instruction are still being explored.
    in_progress_at: HashMap<usize, u32>,
    pending: Vec<Pending>,
    next_id: u32,
    stats: Stats,
    live_states: u32,
    insns_since_ckpt: u64,
    jmps_since_ckpt: u64,
    safe_mem: Vec<bool>,
    /// A load through a map pointer read the map type's kernel struct.
    reads_map_structs: bool,
    stack_depth: Vec<u32>,
    /// Register states per slot (`VerifierOpts::record_regs`).
    insn_regs: Vec<[Vec<String>; 11]>,
    /// For the error report: the instruction being checked.
    cur_insn: usize,
    /// A callback frame's argument registers, by the helper call's instruction.
    /// (and the caller's state when it was last entered, for widening; and
    /// how many times the helper runs it at most).
    callback_init: HashMap<usize, CallbackInit>,
    /// Entries of subprograms called back by helpers: iterations there
    /// converge against checkpoints still being explored.
    callback_entries: std::collections::HashSet<usize>,
    /// Global functions called so far (subprogram indices, in call order),
    /// each verified on its own after the main program.
    global_called: Vec<usize>,
    /// The global function being verified on its own, if any.
    in_global: Option<usize>,
    started: std::time::Instant,
    /// Instructions this path executed since its last checkpoint.
    history: precise::HistList,
    /// The current path's checkpoint, and the instruction being checked's
    /// history entry and frame depth (for branches pushed while checking it).
    cur_parent: Option<usize>,
    cur_hist: Option<precise::Hist>,
    cur_depth: usize,
    /// Per instruction, what every path must agree on (`insn_aux_data`).
    insn_aux: Vec<alu::InsnAux>,
    /// Unprivileged masking depends on exact scalar bounds: pruning then
    /// compares scalars exactly (`env->explore_alu_limits`).
    explore_alu_limits: bool,
    /// Instructions some path reached.
    visited: Vec<bool>,
    /// Per tail call instruction: the prog array it saw, and whether another
    /// one reached it on some path (`map_ptr_state` poisoning), and whether
    /// one of them was created unprivileged.
    tail_call_maps: HashMap<usize, (u32, bool, bool)>,
    /// bpf_fastcall spill/fill patterns (their slots may not count).
    fastcall: fastcall::Fastcall,
}

impl<'a> Verifier<'a> {
    pub fn new(
        insns: &'a [Insn],
        maps: &'a dyn Fn(u32) -> Option<MapDesc>,
        opts: &'a VerifierOpts,
    ) -> Self {
        Verifier {
            insns,
            maps,
            map_cache: HashMap::new(),
            opts,
            cfg: None,
            log: String::new(),
            insn_line_end: usize::MAX,
            insn_line_len: 0,
            prev_linfo: None,
            scratched_regs: 0,
            scratched_stack: 0,
            checkpoints: Vec::new(),
            backedges: HashMap::new(),
            explored: HashMap::new(),
            all_states: HashMap::new(),
            in_progress: HashMap::new(),
            in_progress_at: HashMap::new(),
            pending: Vec::new(),
            next_id: 0,
            stats: Stats::default(),
            live_states: 0,
            insns_since_ckpt: 0,
            jmps_since_ckpt: 0,
            safe_mem: vec![false; insns.len()],
            reads_map_structs: false,
            insn_regs: if opts.record_regs {
                vec![Default::default(); insns.len()]
            } else {
                Vec::new()
            },
            stack_depth: Vec::new(),
            cur_insn: 0,
            callback_init: HashMap::new(),
            callback_entries: Default::default(),
            global_called: Vec::new(),
            in_global: None,
            started: std::time::Instant::now(),
            history: None,
            cur_parent: None,
            cur_hist: None,
            cur_depth: 1,
            insn_aux: vec![alu::InsnAux::default(); insns.len()],
            explore_alu_limits: false,
            visited: vec![false; insns.len()],
            fastcall: Default::default(),
            tail_call_maps: HashMap::new(),
        }
    }

    /// The trace (levels 1 and 2) is being written.
    fn logging(&self) -> bool {
        self.opts.log_level & 3 != 0 && self.log.len() < self.opts.log_size
    }

    fn map(&mut self, id: u32) -> Option<MapDesc> {
        if let Some(m) = self.map_cache.get(&id) {
            return m.clone();
        }
        let m = (self.maps)(id);
        self.map_cache.insert(id, m.clone());
        m
    }

    fn new_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn privileged(&self) -> bool {
        self.opts.privileged
    }

    pub fn run(mut self) -> Result<Verified, Refused> {
        match self.run_inner() {
            Ok(()) => {
                let stats = self.stats;
                self.finish_log();
                Ok(Verified {
                    log: self.log,
                    stats,
                    safe_mem: self.safe_mem,
                    reads_map_structs: self.reads_map_structs,
                    insn_regs: std::mem::take(&mut self.insn_regs),
                    stack_depth: self.stack_depth,
                    visited: self.visited,
                })
            }
            Err((error, insn)) => {
                if self.opts.log_level > 0 {
                    self.log.push_str(error.reason());
                    self.log.push('\n');
                }
                let stats = self.stats;
                self.finish_stats_line();
                Err(Refused {
                    log: self.log,
                    insn,
                    error,
                    stats,
                })
            }
        }
    }

    fn finish_stats_line(&mut self) {
        if self.opts.log_level > 0 {
            let s = self.stats;
            self.log.push_str(&format!(
                "processed {} insns (limit {MAX_INSNS}) max_states_per_insn {} total_states {} peak_states {} mark_read {}\n",
                s.processed, s.max_states_per_insn, s.total_states, s.peak_states, s.mark_read
            ));
        }
    }

    fn finish_log(&mut self) {
        // Level 1 keeps the trace only for refused programs.
        if self.opts.log_level & 3 == 1 {
            self.log.clear();
        }
        if self.opts.log_level & 4 != 0 {
            let us = self.started.elapsed().as_micros();
            self.log.push_str(&format!("verification time {us} usec\n"));
            let depths: Vec<String> = self
                .stack_depth
                .iter()
                .map(|d| d.div_ceil(8) * 8)
                .map(|d| d.to_string())
                .collect();
            self.log
                .push_str(&format!("stack depth {}\n", depths.join("+")));
        }
        self.finish_stats_line();
    }

    /// `check_attach_btf_id`'s first rules: a syscall program is always
    /// sleepable, and only some types may be (`can_be_sleepable`).
    fn check_sleepable(&self) -> Result<(), Fail> {
        use bpfvm_isa::uapi::{
            BPF_LSM_CGROUP, BPF_MODIFY_RETURN, BPF_PROG_TYPE_LSM, BPF_PROG_TYPE_STRUCT_OPS,
            BPF_PROG_TYPE_SYSCALL, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT,
            BPF_TRACE_ITER,
        };
        let sleepable = self.opts.prog_flags & kfunc::BPF_F_SLEEPABLE != 0;
        let (t, a) = (self.opts.prog_type, self.opts.expected_attach_type);
        if t == BPF_PROG_TYPE_SYSCALL {
            if sleepable {
                return Ok(());
            }
            return Err((invalid("Syscall programs can only be sleepable"), None));
        }
        let can = match t {
            BPF_PROG_TYPE_TRACING => matches!(
                a,
                BPF_TRACE_FENTRY | BPF_TRACE_FEXIT | BPF_MODIFY_RETURN | BPF_TRACE_ITER
            ),
            BPF_PROG_TYPE_LSM => a != BPF_LSM_CGROUP,
            _ => t == BPF_PROG_TYPE_KPROBE || t == BPF_PROG_TYPE_STRUCT_OPS,
        };
        if sleepable && !can {
            return Err((
                invalid("Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable"),
                None,
            ));
        }
        Ok(())
    }

    fn run_inner(&mut self) -> Result<(), Fail> {
        // BPF_PROG_LOAD takes at most BPF_MAXINSNS instructions from a loader
        // without CAP_BPF (E2BIG, before the verifier runs: no log).
        if !self.privileged() && self.insns.len() > BPF_MAXINSNS {
            return Err((
                too_complex(format!(
                    "program of {} insns is over BPF_MAXINSNS ({BPF_MAXINSNS}) for an unprivileged loader",
                    self.insns.len()
                )),
                None,
            ));
        }
        self.check_sleepable()?;
        // add_kfunc_call: a kfunc call anywhere, reachable or not, needs a
        // GPL-compatible license.
        let kfunc_call = self
            .insns
            .iter()
            .any(|i| i.code == 0x85 && i.src_reg == BPF_PSEUDO_KFUNC_CALL);
        if kfunc_call && self.privileged() && !self.opts.gpl_compatible {
            return Err((
                invalid("cannot call kernel function from non-GPL compatible program"),
                None,
            ));
        }
        let cfg = check_cfg(self.insns, self.privileged())?;
        if self.opts.func_info.is_empty() {
            check_abnormal_return(&cfg)
                .map_err(|reason| (VerifierError::Invalid { reason }, None))?;
        }
        self.stack_depth = vec![0; cfg.subprogs.len()];
        if self.opts.log_level & 2 != 0 {
            for (i, s) in cfg.subprogs.iter().enumerate() {
                self.log.push_str(&format!("func#{i} @{s}\n"));
            }
            self.log.push_str("Live regs before insn:\n");
            for (pc, d) in cfg.dec.iter().enumerate() {
                let Some(d) = d else { continue };
                let live: String = (0..10)
                    .map(|r| {
                        if cfg.live_in[pc] & (1 << r) != 0 {
                            char::from(b'0' + r as u8)
                        } else {
                            '.'
                        }
                    })
                    .collect();
                self.log.push_str(&format!(
                    "{pc:7}: {live} {}\n",
                    kernel_insn_line(d, pc, &LogSyms)
                ));
            }
        }
        self.fastcall = fastcall::Fastcall::find(self.insns, &cfg);
        self.cfg = Some(cfg);
        self.do_check()?;
        self.check_global_funcs()?;
        self.fastcall_stack_depth();
        self.check_max_stack_depth()?;
        self.check_tail_call_maps()?;
        Ok(())
    }

    fn cfg(&self) -> &Cfg {
        self.cfg.as_ref().expect("cfg ran")
    }

    fn dec(&self, pc: usize) -> Decoded {
        self.cfg().dec[pc].expect("paths only reach instruction starts")
    }

    // ---------------------------------------------------------------- log

    fn map_info(&mut self, id: u32) -> (String, u32, u32) {
        match self.map(id) {
            Some(m) => (m.name, m.key_size, m.value_size),
            None => (String::new(), 0, 0),
        }
    }

    fn reg_str(&mut self, r: &Reg, frame: u8) -> String {
        let mut cache: HashMap<u32, (String, u32, u32)> = HashMap::new();
        let mut ids = Vec::new();
        if matches!(r.ty, RegType::MapPtr | RegType::MapValue | RegType::MapKey) {
            ids.push(r.map);
        }
        for id in ids {
            let info = self.map_info(id);
            cache.insert(id, info);
        }
        reg_text(r, frame, &|id| cache.get(&id).cloned().unwrap_or_default())
    }

    fn slot_str(&mut self, s: &Slot, frame: u8) -> String {
        let mut out = String::new();
        let has_spill = s.ty.contains(&STACK_SPILL);
        for &t in &s.ty {
            match t {
                STACK_INVALID => out.push('?'),
                STACK_MISC => out.push('m'),
                STACK_ZERO => out.push('0'),
                _ => {}
            }
        }
        if has_spill {
            out.push_str(&self.reg_str(&s.spill, frame));
        }
        out
    }

    /// `print_verifier_state`: registers (all, or those the instruction touched),
    /// stack slots, references.
    fn state_str(&mut self, st: &State, all: bool) -> String {
        let frameno = st.curframe();
        let f = st.cur().clone();
        let mut out = String::new();
        if frameno > 0 {
            out.push_str(&format!(" frame{frameno}:"));
        }
        for (i, r) in f.regs.iter().enumerate() {
            if !r.is_init() || (!all && self.scratched_regs & (1 << i) == 0) {
                continue;
            }
            let t = self.reg_str(r, frameno);
            out.push_str(&format!(" R{i}={t}"));
        }
        for (spi, s) in f.stack.iter().enumerate() {
            let scratched = |v: &Self, i: usize| i < 64 && v.scratched_stack & (1 << i) != 0;
            if s.ty[0] == kfunc::STACK_DYNPTR {
                // A dynptr prints once, at its first (higher) slot.
                let first = s.spill.kf.flags & crate::kfuncs::KFI_FIRST_SLOT != 0;
                if !first
                    || !(all || scratched(self, spi) || scratched(self, spi.saturating_sub(1)))
                {
                    continue;
                }
                let mut fields = Vec::new();
                if s.spill.id != 0 {
                    fields.push(format!("id={}", s.spill.id));
                }
                if s.spill.ref_obj_id != 0 {
                    fields.push(format!("ref_id={}", s.spill.ref_obj_id));
                }
                out.push_str(&format!(
                    " fp-{}=dynptr_{}({})",
                    (spi + 1) * 8,
                    bpfvm_isa::helpers::dynptr_type_str(s.spill.kf.obj),
                    fields.join(",")
                ));
                continue;
            }
            if s.ty.iter().all(|&t| t == STACK_INVALID) || (!all && !scratched(self, spi)) {
                continue;
            }
            let t = self.slot_str(s, frameno);
            out.push_str(&format!(" fp-{}={t}", (spi + 1) * 8));
        }
        if !st.refs.is_empty() {
            let ids: Vec<String> = st.refs.iter().map(|r| r.0.to_string()).collect();
            out.push_str(&format!(" refs={}", ids.join(",")));
        }
        out
    }

    /// Adds the registers of `st`'s current frame to what slot `pc` saw.
    fn record_regs(&mut self, st: &State, pc: usize) {
        let frameno = st.curframe();
        for (i, r) in st.cur().regs.iter().enumerate() {
            if !r.is_init() {
                continue;
            }
            let seen = &self.insn_regs[pc][i];
            if seen.len() >= crate::MAX_RECORDED {
                continue;
            }
            let t = self.reg_str(r, frameno);
            let seen = &mut self.insn_regs[pc][i];
            if !seen.contains(&t) {
                seen.push(t);
            }
        }
    }

    /// `print_insn_state`: the touched state after an instruction, on the
    /// instruction's line when nothing was logged since, else on its own line.
    fn print_insn_state(&mut self, st: &State, next_insn: usize) {
        if self.scratched_regs == 0 && self.scratched_stack == 0 {
            return;
        }
        let s = self.state_str(st, false);
        self.scratched_regs = 0;
        self.scratched_stack = 0;
        if s.is_empty() {
            return;
        }
        if self.insn_line_end == self.log.len() {
            self.log.pop();
            let len = self.insn_line_len;
            let col = 38.max((len + 5).div_ceil(8) * 8 - 2);
            for _ in len..col {
                self.log.push(' ');
            }
            self.log.push(';');
        } else {
            self.log.push_str(&format!("{next_insn}:"));
        }
        self.log.push_str(&s);
        self.log.push('\n');
    }

    fn print_linfo(&mut self, pc: usize) {
        let li = &self.opts.line_info;
        if li.is_empty() {
            return;
        }
        let idx = li.partition_point(|l| l.insn_idx as usize <= pc);
        if idx == 0 {
            return;
        }
        let i = idx - 1;
        if self.prev_linfo == Some(i) {
            return;
        }
        // Records that only move the column do not repeat the line.
        if let Some(p) = self.prev_linfo {
            if li[p].file == li[i].file && li[p].line_num == li[i].line_num {
                self.prev_linfo = Some(i);
                return;
            }
        }
        self.prev_linfo = Some(i);
        let l = &li[i];
        let file = l.file.rsplit('/').next().unwrap_or(&l.file);
        let text = format!("; {} @ {}:{}\n", l.line.trim_start(), file, l.line_num);
        self.log.push_str(&text);
    }

    fn print_insn(&mut self, pc: usize, d: &Decoded) {
        self.print_linfo(pc);
        let line = format!("{pc}: {}", kernel_insn_line(d, pc, &LogSyms));
        self.insn_line_len = line.len();
        self.log.push_str(&line);
        self.log.push('\n');
        self.insn_line_end = self.log.len();
    }

    fn scratch_reg(&mut self, r: u8) {
        self.scratched_regs |= 1 << r;
    }

    // ---------------------------------------------------------------- main loop

    fn initial_state(&self) -> State {
        let mut regs: [Reg; 11] = std::array::from_fn(|_| Reg::not_init());
        regs[1] = Reg::ptr(RegType::Ctx);
        regs[10] = Reg::ptr(RegType::Stack);
        State {
            frames: vec![Frame {
                regs,
                stack: Vec::new(),
                callsite: usize::MAX,
                subprog: 0,
                callback: false,
                cb_iters: 0,
            }],
            refs: Vec::new(),
            may_goto_depth: 0,
            active_lock: None,
            active_rcu_lock: false,
            active_preempt_lock: 0,
            cb_unroll: 0,
        }
    }

    fn do_check(&mut self) -> Result<(), Fail> {
        let st = self.initial_state();
        self.do_check_from(0, st)
    }

    /// Explores every path from `entry` in state `st` (the main program, or
    /// a global function verified on its own).
    fn do_check_from(&mut self, entry: usize, mut st: State) -> Result<(), Fail> {
        if self.logging() {
            self.scratched_regs = 0x7fe;
            self.print_insn_state(&st.clone(), entry);
        }
        // The root checkpoint: parent of everything.
        self.checkpoints.push(Checkpoint {
            state: None,
            branches: 1,
            parent: None,
            hit: 0,
            miss: 0,
            pc: entry,
            fp: 0,
            seg: None,
            all_precise: false,
            loop_entry: None,
        });
        let mut parent = Some(self.checkpoints.len() - 1);
        let mut pc = entry;
        let mut prev = entry;
        let mut from_branch: Option<usize> = None;
        loop {
            // Paths end at exit (None) or continue at a new pc.
            let outcome = self.walk(&mut st, &mut pc, &mut prev, &mut parent, &mut from_branch)?;
            debug_assert!(outcome.is_none());
            // This path is done: release its checkpoint chain.
            self.path_done(parent);
            let Some(p) = self.pending.pop() else { break };
            if self.opts.log_level & 3 == 1 {
                self.log.truncate(p.log_pos);
                if !self.log.is_empty() && !self.log.ends_with('\n') {
                    self.log.push('\n');
                }
                self.insn_line_end = usize::MAX;
            }
            st = p.state;
            pc = p.insn;
            prev = p.prev;
            parent = p.parent;
            self.history = p.history;
            from_branch = Some(prev);
        }
        Ok(())
    }

    fn path_done(&mut self, mut cp: Option<usize>) {
        while let Some(i) = cp {
            let c = &mut self.checkpoints[i];
            c.branches = c.branches.saturating_sub(1);
            if c.branches > 0 {
                break;
            }
            if self.backedges.contains_key(&i) {
                self.close_backedges(i);
            }
            let c = &mut self.checkpoints[i];
            cp = c.parent;
            let le = c.loop_entry;
            let (has_state, pc, fp) = (c.state.is_some(), c.pc, c.fp);
            if let (Some(p), Some(le)) = (cp, le) {
                self.note_loop_entry(Some(p), le);
            }
            // Every path below is safe: the state may now prune others.
            if has_state {
                self.explored.entry(pc).or_default().push(i);
                if let Some(n) = self.in_progress_at.get_mut(&pc) {
                    *n = n.saturating_sub(1);
                }
                if let Some(v) = self.in_progress.get_mut(&(pc, fp)) {
                    v.retain(|&x| x != i);
                }
            }
        }
    }

    /// Loop head `head` is done: its precision is final. Each path that
    /// closed a loop against it gets the head's precise registers marked and
    /// followed back up its own checkpoints (which may mark more in the head,
    /// hence the repetition until nothing changes).
    fn close_backedges(&mut self, head: usize) {
        let Some(edges) = self.backedges.remove(&head) else {
            return;
        };
        let saved = (self.history.take(), self.cur_parent);
        let mut targets: Vec<usize> = edges.iter().map(|e| e.target).collect();
        targets.push(head);
        targets.sort_unstable();
        targets.dedup();
        let marks = |v: &Self| {
            let mut n = 0usize;
            for &t in &targets {
                if let Some(s) = v.checkpoints[t].state.as_ref() {
                    for f in &s.frames {
                        n += f.regs.iter().filter(|r| r.precise).count();
                        n += f.stack.iter().filter(|s| s.spill.precise).count();
                    }
                }
            }
            n
        };
        let mut edges = edges;
        loop {
            let before = marks(self);
            for e in edges.iter_mut() {
                self.history = e.history.clone();
                self.cur_parent = e.parent;
                if self.checkpoints[e.target].state.is_some() {
                    self.propagate_precision(&mut e.state, e.target);
                } else {
                    // The state was dropped: keep everything on the path.
                    self.mark_all_precise(&mut e.state);
                }
            }
            if marks(self) == before {
                break;
            }
        }
        (self.history, self.cur_parent) = saved;
    }

    /// `update_loop_entry`: checkpoint `cp` depends on iterator loop head
    /// `head`; the outermost head (the oldest checkpoint) wins.
    fn note_loop_entry(&mut self, cp: Option<usize>, head: usize) {
        let Some(c) = cp else { return };
        if c == head {
            return;
        }
        let cur = &mut self.checkpoints[c].loop_entry;
        if cur.is_none_or(|le| head < le) {
            *cur = Some(head);
        }
    }

    fn push_branch(
        &mut self,
        st: State,
        insn: usize,
        prev: usize,
        parent: Option<usize>,
    ) -> Result<(), Fail> {
        if let Some(p) = parent {
            self.checkpoints[p].branches += 1;
        }
        // The branch has executed everything this path has, the current
        // instruction included.
        let mut history = self.history.clone();
        if let Some(mut h) = self.cur_hist {
            h.frame_change = st.frames.len() != self.cur_depth;
            let mark = self.hist_mark(&h);
            precise::hist_push(&mut history, h, mark);
        }
        self.pending.push(Pending {
            state: st,
            insn,
            prev,
            parent,
            log_pos: self.log.len(),
            history,
        });
        if self.pending.len() > MAX_JMP_SEQ {
            return Err((
                VerifierError::TooComplex {
                    reason: format!(
                        "The sequence of {} jumps is too complex.",
                        self.pending.len()
                    ),
                },
                Some(insn),
            ));
        }
        Ok(())
    }

    /// Walks one path until it exits or is pruned. Returns Ok(None) at the end.
    fn walk(
        &mut self,
        st: &mut State,
        pc: &mut usize,
        prev: &mut usize,
        parent: &mut Option<usize>,
        from_branch: &mut Option<usize>,
    ) -> Result<Option<()>, Fail> {
        let mut do_print_state = from_branch.is_some();
        loop {
            self.cur_insn = *pc;
            if *pc >= self.insns.len() {
                return Err((
                    unsafe_(format!(
                        "invalid insn idx {} insn_cnt {}",
                        *pc,
                        self.insns.len()
                    )),
                    Some(*prev),
                ));
            }
            self.stats.processed += 1;
            self.visited[*pc] = true;
            if self.stats.processed > self.opts.complexity_limit {
                return Err((
                    VerifierError::TooComplex {
                        reason: format!(
                            "BPF program is too large. Processed {} insn",
                            self.stats.processed
                        ),
                    },
                    Some(*pc),
                ));
            }
            self.insns_since_ckpt += 1;
            if self.cfg().prune_point[*pc] || self.is_iter_next(*pc) {
                match self.is_state_visited(st, *pc, parent)? {
                    Visit::Pruned(old) | Visit::LoopDone(old) => {
                        let looped = matches!(old, Some(ci) if self.checkpoints[ci].branches > 0
                            && self.dec(*pc).op == Op::MayGoto);
                        if let (true, Some(ci)) = (looped, old) {
                            // Every scalar is within the head's (RANGE_WITHIN),
                            // so the head's safety covers this path; the
                            // head's precision is carried back here now and
                            // again once it is final. Until then the states
                            // of this iteration prune exact repeats only.
                            self.cur_parent = *parent;
                            self.note_loop_entry(*parent, ci);
                            self.propagate_precision(st, ci);
                            self.backedges.entry(ci).or_default().push(Backedge {
                                target: ci,
                                state: st.clone(),
                                history: self.history.clone(),
                                parent: *parent,
                            });
                        } else if let Some(ci) = old {
                            self.cur_parent = *parent;
                            if self.checkpoints[ci].branches > 0 {
                                // Covered by a state still being explored: its
                                // precision is not final, so this path's values
                                // are all kept (see `is_state_visited`).
                                self.mark_all_precise(st);
                            } else {
                                self.propagate_precision(st, ci);
                                // An exact repeat of a state whose loop head
                                // is still explored: that state's precision
                                // is final only with the head's, so this path
                                // is carried along when the head is done.
                                let le = self.checkpoints[ci].loop_entry;
                                if let Some(le) = le.filter(|&h| self.checkpoints[h].branches > 0) {
                                    self.note_loop_entry(*parent, le);
                                    self.backedges.entry(le).or_default().push(Backedge {
                                        target: ci,
                                        state: st.clone(),
                                        history: self.history.clone(),
                                        parent: *parent,
                                    });
                                }
                            }
                        }
                        if self.logging() {
                            if do_print_state && self.opts.log_level >= 2 {
                                self.log
                                    .push_str(&format!("\nfrom {} to {}: safe\n", *prev, *pc));
                            } else {
                                self.log.push_str(&format!("{}: safe\n", *pc));
                            }
                        }
                        return Ok(None);
                    }
                    Visit::Continue => {}
                }
            }
            if self.logging() {
                if self.opts.log_level >= 2 && do_print_state {
                    let s = self.state_str(st, true);
                    self.log
                        .push_str(&format!("\nfrom {} to {}:{s}\n", *prev, *pc));
                    self.log.push_str(&format!("{}:{s}\n", *pc));
                    self.scratched_regs = 0;
                    self.scratched_stack = 0;
                }
                do_print_state = false;
                let d = self.dec(*pc);
                self.print_insn(*pc, &d);
            }
            let d = self.dec(*pc);
            if self.opts.record_regs {
                self.record_regs(st, *pc);
            }
            self.cur_parent = *parent;
            self.cur_depth = st.frames.len();
            let mut hist = self.hist_before(st, *pc, &d);
            self.cur_hist = Some(hist);
            let next = self.step(st, *pc, &d, parent)?;
            hist.frame_change = st.frames.len() != self.cur_depth;
            if self.logging() && !matches!(next, Next::Exit | Next::Dead) {
                let snapshot = st.clone();
                let np = match next {
                    Next::Go(n) => n,
                    Next::Exit | Next::Dead => *pc,
                };
                self.print_insn_state(&snapshot, np);
            }
            match next {
                Next::Go(n) => {
                    let mark = self.hist_mark(&hist);
                    precise::hist_push(&mut self.history, hist, mark);
                    if precise::hist_len(&self.history) > MAX_HISTORY {
                        // A long stretch without checkpoints: stop keeping
                        // it and make everything precise instead.
                        self.cur_parent = *parent;
                        self.mark_all_precise(st);
                        self.history = None;
                    }
                    *prev = *pc;
                    *pc = n;
                }
                Next::Dead => return Ok(None),
                Next::Exit => {
                    // Returning from a bpf-to-bpf call continues in the caller.
                    if st.frames.len() > 1 {
                        hist.frame_change = true;
                        let mark = self.hist_mark(&hist);
                        precise::hist_push(&mut self.history, hist, mark);
                        let ret = self.return_from_call(st, *pc, *parent)?;
                        *prev = *pc;
                        *pc = ret;
                        continue;
                    }
                    return Ok(None);
                }
            }
        }
    }

    // ---------------------------------------------------------------- pruning

    /// Live registers of each frame of `st` when its current frame is at `pc`.
    fn live_masks(&self, st: &State, pc: usize) -> Vec<u16> {
        let live = &self.cfg().live_in;
        let n = st.frames.len();
        (0..n)
            .map(|i| {
                let at = if i + 1 == n {
                    pc
                } else {
                    st.frames[i + 1].callsite + 1
                };
                live.get(at).copied().unwrap_or(0x7ff)
            })
            .collect()
    }

    /// Whether the kernel's jump history would record this instruction:
    /// a jump target or the return point of a call (a prune point here), a
    /// stack slot load or store, a jump that refined linked registers.
    fn hist_mark(&self, h: &precise::Hist) -> bool {
        self.cfg().prune_point[h.pc as usize] || h.slot.is_some() || h.linked != 0
    }

    fn is_state_visited(
        &mut self,
        st: &State,
        pc: usize,
        parent: &mut Option<usize>,
    ) -> Result<Visit, Fail> {
        let live = self.live_masks(st, pc);
        let callback_entry = self.callback_entries.contains(&pc);
        let fp = fingerprint(st);
        let loose = self.precision_on();
        let exact = self.explore_alu_limits;
        let n_here = self.all_states.get(&pc).map_or(0, Vec::len);
        self.stats.max_states_per_insn = self.stats.max_states_per_insn.max(n_here as u32);
        // A helper bounds callback iterations: a covered re-entry is done.
        if callback_entry {
            for &ci in self.all_states.get(&pc).into_iter().flatten() {
                let c = &self.checkpoints[ci];
                if let Some(old) = c.state.as_ref() {
                    // Only a later iteration's entry: a loop back to the
                    // entry inside one iteration is the body's own loop.
                    if c.branches > 0
                        && old.cb_unroll != st.cb_unroll
                        && subsumes(old, st, &live, false, exact)
                    {
                        return Ok(Visit::Pruned(None));
                    }
                }
            }
        }
        // `may_goto`: a state covered (every value within the old one's
        // bounds, precise or not: `RANGE_WITHIN`) by one still being explored
        // here at another may_goto depth ends its loop; the kernel does the
        // same. The old state's precision is not final while it is explored,
        // so the path marks all its scalars precise (the kernel propagates
        // the head's final precision along such back-edges instead).
        let is_may_goto = self.dec(pc).op == Op::MayGoto;
        if is_may_goto {
            for &ci in self.all_states.get(&pc).into_iter().flatten().rev() {
                let c = &self.checkpoints[ci];
                if let Some(old) = c.state.as_ref() {
                    if c.branches > 0
                        && old.may_goto_depth != st.may_goto_depth
                        && subsumes(old, st, &live, false, exact)
                    {
                        return Ok(Visit::LoopDone(Some(ci)));
                    }
                }
            }
        }
        // An open-coded iterator's `next`: a state within one seen here
        // before, even one still being explored, ends the loop (the kernel
        // skips the infinite-loop check there).
        let iter_next = self.is_iter_next(pc);
        if iter_next {
            if let Some(ci) = self.iter_next_converged(st, pc, &live) {
                self.note_loop_entry(*parent, ci);
                return Ok(Visit::Pruned(Some(ci)));
            }
        }
        // An exact repeat of a state still being explored is a loop without
        // progress.
        // A callback's next iteration is no repeat of the previous one
        // (their unroll depths differ), but a loop without progress inside
        // one iteration is.
        let repeat =
            self.in_progress
                .get(&(pc, fp))
                .filter(|_| !iter_next)
                .and_then(|v| {
                    v.iter().copied().find(|&ci| {
                        self.checkpoints[ci].state.as_ref().is_some_and(|old| {
                            old.cb_unroll == st.cb_unroll && states_exact(old, st)
                        })
                    })
                });
        if let Some(ci) = repeat {
            if self.logging() {
                let old = self.checkpoints[ci]
                    .state
                    .clone()
                    .unwrap_or_else(|| st.clone());
                let cur = self.state_str(st, true);
                let olds = self.state_str(&old, true);
                self.log.push_str(&format!(
                    "infinite loop detected at insn {pc}\ncur state:{cur}\nold state:{olds}\n"
                ));
            }
            return Err((
                VerifierError::Cfg {
                    reason: format!("infinite loop detected at insn {pc}"),
                },
                Some(pc),
            ));
        }
        // Newest first: recent states are the likeliest to cover this one.
        if let Some(done) = self.explored.get_mut(&pc) {
            let long = done.len() > EVICT_ABOVE;
            let mut evict = false;
            for &ci in done.iter().rev() {
                // A state proven only up to an iterator loop still being
                // explored prunes exact repeats only (the kernel's loop_entry).
                let in_loop = self.checkpoints[ci]
                    .loop_entry
                    .is_some_and(|le| self.checkpoints[le].branches > 0);
                let c = &mut self.checkpoints[ci];
                let Some(old) = c.state.as_ref() else {
                    continue;
                };
                let covered = if in_loop {
                    states_exact(old, st)
                } else {
                    subsumes(old, st, &live, loose, exact)
                };
                if covered {
                    c.hit += 1;
                    return Ok(Visit::Pruned(Some(ci)));
                }
                // A long list costs every arrival a scan: states that keep
                // missing are dropped, as the kernel does.
                c.miss += 1;
                if long && c.miss > 3 * c.hit + 3 {
                    c.state = None;
                    evict = true;
                }
            }
            if evict {
                let cps = &self.checkpoints;
                let before = done.len();
                done.retain(|&ci| cps[ci].state.is_some());
                self.live_states -= (before - done.len()) as u32;
            }
        }
        // Checkpoints are taken every few jumps; inside a loop (a state at
        // this insn is still being explored) far more rarely, because each
        // iteration differs and would only grow the list.
        let looping = self.in_progress_at.get(&pc).copied().unwrap_or(0) > 0;
        // A path whose jump history has grown long since its checkpoint gets
        // a new one even in a loop, as in the kernel ("avoid accumulating
        // infinitely long jmp history"): branches popped inside a long loop
        // then leave checkpoints the ones after them are pruned against.
        let force = precise::hist_marks(&self.history) > MAX_JMP_HISTORY;
        let add_new_state = callback_entry
            || is_may_goto
            || iter_next
            || force
            || (self.jmps_since_ckpt >= 2 && self.insns_since_ckpt >= 8)
                && !(looping && self.jmps_since_ckpt < 20 && self.insns_since_ckpt < 100);
        // Unprivileged programs get a hard cap per instruction, as in the kernel.
        let cap = if self.privileged() {
            MAX_STATES_PER_INSN
        } else {
            UNPRIV_STATES_PER_INSN
        };
        if add_new_state && n_here < cap && self.live_states < MAX_LIVE_STATES {
            let idx = self.checkpoints.len();
            self.checkpoints.push(Checkpoint {
                state: Some(st.clone()),
                branches: 1,
                parent: *parent,
                hit: 0,
                miss: 0,
                pc,
                fp,
                seg: std::mem::take(&mut self.history),
                all_precise: false,
                loop_entry: None,
            });
            // The path now lives under the new checkpoint instead of its parent.
            *parent = Some(idx);
            self.all_states.entry(pc).or_default().push(idx);
            self.in_progress.entry((pc, fp)).or_default().push(idx);
            *self.in_progress_at.entry(pc).or_default() += 1;
            self.stats.total_states += 1;
            self.live_states += 1;
            self.stats.peak_states = self.stats.peak_states.max(self.live_states);
            self.insns_since_ckpt = 0;
            self.jmps_since_ckpt = 0;
        }
        Ok(Visit::Continue)
    }

    // ---------------------------------------------------------------- registers

    fn check_reg_read(&mut self, st: &State, r: u8) -> Result<(), Fail> {
        self.scratch_reg(r);
        if !st.reg(r).is_init() {
            return Err((unsafe_(format!("R{r} !read_ok")), Some(self.cur_insn)));
        }
        Ok(())
    }

    fn check_reg_write(&mut self, r: u8) -> Result<(), Fail> {
        self.scratch_reg(r);
        if r == BPF_REG_FP {
            return Err((unsafe_("frame pointer is read only"), Some(self.cur_insn)));
        }
        Ok(())
    }

    fn err<T>(&self, e: VerifierError) -> Result<T, Fail> {
        Err((e, Some(self.cur_insn)))
    }

    /// Is this register a pointer the program must not leak (unprivileged)?
    fn is_pointer_value(&self, r: &Reg) -> bool {
        !self.privileged() && r.ty.is_ptr()
    }

    // ---------------------------------------------------------------- one instruction

    fn step(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
        parent: &mut Option<usize>,
    ) -> Result<Next, Fail> {
        let next = pc + d.slots();
        match d.op.shape() {
            Shape::AluK | Shape::AluX | Shape::Neg | Shape::End | Shape::MovSx => {
                self.check_alu(st, d)?;
                Ok(Next::Go(next))
            }
            Shape::LdImm64 => {
                self.check_ld_imm64(st, pc, d)?;
                Ok(Next::Go(next))
            }
            Shape::LdAbs | Shape::LdInd => {
                self.check_ld_abs(st, d, *parent)?;
                Ok(Next::Go(next))
            }
            Shape::Ldx => {
                self.check_reg_read(st, d.src)?;
                self.check_reg_write(d.dst)?;
                let size = d.op.mem_size() as i32;
                let sx = d.op.code() & 0xe0 == BPF_MEMSX;
                let src_ty = st.reg(d.src).ty;
                let val = self.check_mem_access(st, pc, d.src, d.off as i32, size, Access::Read)?;
                self.save_aux_ptr_type(src_ty)?;
                let mut v = val.unwrap_or_else(Reg::unknown);
                if sx && v.is_scalar() {
                    v = sign_extend_load(&v, size);
                }
                *st.reg_mut(d.dst) = v;
                Ok(Next::Go(next))
            }
            Shape::St | Shape::Stx => {
                self.check_reg_read(st, d.dst)?;
                let val = if d.op.shape() == Shape::Stx {
                    self.check_reg_read(st, d.src)?;
                    st.reg(d.src).clone()
                } else {
                    Reg::konst(d.imm as u64)
                };
                let src = (d.op.shape() == Shape::Stx).then_some(d.src);
                let dst_ty = st.reg(d.dst).ty;
                self.check_mem_access(
                    st,
                    pc,
                    d.dst,
                    d.off as i32,
                    d.op.mem_size() as i32,
                    Access::Write(val, src),
                )?;
                self.save_aux_ptr_type(dst_ty)?;
                Ok(Next::Go(next))
            }
            Shape::Atomic => {
                self.check_atomic(st, pc, d)?;
                Ok(Next::Go(next))
            }
            Shape::LoadAcq => {
                self.check_load_acquire(st, pc, d)?;
                Ok(Next::Go(next))
            }
            Shape::StoreRel => {
                self.check_store_release(st, pc, d)?;
                Ok(Next::Go(next))
            }
            // bpfvm has no arena maps, so no program has an associated arena.
            Shape::AsCast => self.err(invalid(
                "addr_space_cast insn can only be used in a program that has an associated arena",
            )),
            Shape::MayGoto => {
                self.jmps_since_ckpt += 1;
                self.check_may_goto(st, pc, d, *parent)
            }
            Shape::Ja | Shape::Ja32 => {
                self.jmps_since_ckpt += 1;
                Ok(Next::Go(target(pc, d) as usize))
            }
            Shape::JmpK | Shape::JmpX => {
                self.jmps_since_ckpt += 1;
                self.check_cond_jmp(st, pc, d, parent)
            }
            Shape::Call => {
                self.jmps_since_ckpt += 1;
                match d.op {
                    Op::CallLocal => self.check_local_call(st, pc, d),
                    Op::CallKfunc => self.check_kfunc_call(st, pc, d, parent),
                    _ => match self.check_helper_call(st, pc, d, parent)? {
                        Some(entry) => Ok(Next::Go(entry)),
                        None => Ok(Next::Go(next)),
                    },
                }
            }
            Shape::CallX => self.err(VerifierError::BadInsn {
                reason: format!("unknown opcode {:02x}", d.op.code()),
            }),
            Shape::Exit => {
                self.jmps_since_ckpt += 1;
                self.check_exit(st)?;
                Ok(Next::Exit)
            }
        }
    }
}

enum Visit {
    /// Covered by a completed checkpoint (whose precision the path inherits).
    Pruned(Option<usize>),
    /// A `may_goto` loop converged: covered by its own head, still being
    /// explored, at another `may_goto_depth`.
    LoopDone(Option<usize>),
    Continue,
}

enum Next {
    Go(usize),
    Exit,
    /// The path cannot happen (no value satisfies the branch taken).
    Dead,
}

#[derive(Clone, Debug)]
enum Access {
    Read,
    /// The value stored, and the register it came from.
    Write(Reg, Option<u8>),
}

fn sign_extend_load(v: &Reg, size: i32) -> Reg {
    if v.is_const() {
        let bits = 64 - size * 8;
        let x = ((v.var_off.value << bits) as i64) >> bits;
        return Reg::konst(x as u64);
    }
    let mut r = Reg::unknown();
    let half = 1i64 << (size * 8 - 1);
    r.smin = -half;
    r.smax = half - 1;
    r.sync_bounds();
    r
}

/// Every concrete state `cur` describes is described by `old` (which was
/// proven safe), so exploring `cur` further is pointless.
fn subsumes(old: &State, cur: &State, live: &[u16], loose: bool, exact: bool) -> bool {
    if old.frames.len() != cur.frames.len() || old.refs.len() != cur.refs.len() {
        return false;
    }
    let mut idmap = IdMap::default();
    for (a, b) in old.refs.iter().zip(&cur.refs) {
        if !idmap.check(a.0, b.0) {
            return false;
        }
    }
    match (old.active_lock, cur.active_lock) {
        (None, None) => {}
        (Some((om, oid)), Some((cm, cid)))
            if om == cm && (oid == 0) == (cid == 0) && idmap.check(oid, cid) => {}
        _ => return false,
    }
    if old.active_rcu_lock != cur.active_rcu_lock
        || old.active_preempt_lock != cur.active_preempt_lock
    {
        return false;
    }
    for (fi, (fo, fc)) in old.frames.iter().zip(&cur.frames).enumerate() {
        if fo.callsite != fc.callsite || fo.callback != fc.callback {
            return false;
        }
        // A state with fewer callback iterations left covers no state with
        // more.
        if fo.cb_iters > fc.cb_iters {
            return false;
        }
        let mask = live.get(fi).copied().unwrap_or(0x7ff);
        for (ri, (ro, rc)) in fo.regs.iter().zip(&fc.regs).enumerate() {
            // A register no path reads before writing cannot matter.
            if mask & (1 << ri) == 0 {
                continue;
            }
            if !regsafe(ro, rc, &mut idmap, loose, exact) {
                return false;
            }
        }
        for (spi, so) in fo.stack.iter().enumerate() {
            let empty = Slot::default();
            let sc = fc.stack.get(spi).unwrap_or(&empty);
            if !slot_safe(so, sc, &mut idmap, loose, exact) {
                return false;
            }
        }
    }
    true
}

/// A cheap hash of every frame's registers: equal states have equal
/// fingerprints (it reads a subset of the fields `states_exact` compares).
fn fingerprint(st: &State) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut mix = |v: u64| {
        h = (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    };
    for f in &st.frames {
        mix(f.callsite as u64);
        for r in &f.regs {
            mix(r.ty as u64 | (r.maybe_null as u64) << 8 | (r.off as u32 as u64) << 32);
            mix(r.var_off.value);
            mix(r.var_off.mask);
            mix(r.smin as u64 ^ r.umax.rotate_left(17));
        }
    }
    h
}

fn states_exact(old: &State, cur: &State) -> bool {
    if old.frames.len() != cur.frames.len()
        || old.refs != cur.refs
        || old.may_goto_depth != cur.may_goto_depth
        || old.active_lock != cur.active_lock
        || old.active_rcu_lock != cur.active_rcu_lock
        || old.active_preempt_lock != cur.active_preempt_lock
    {
        return false;
    }
    // Precision marks say how much a value mattered, not what it is.
    let reg_eq = |a: &Reg, b: &Reg| {
        if a.precise == b.precise {
            a == b
        } else {
            let mut x = a.clone();
            x.precise = b.precise;
            x == *b
        }
    };
    let slot_eq = |a: &Slot, b: &Slot| a.ty == b.ty && reg_eq(&a.spill, &b.spill);
    old.frames.iter().zip(&cur.frames).all(|(a, b)| {
        a.callsite == b.callsite && a.regs.iter().zip(&b.regs).all(|(x, y)| reg_eq(x, y)) && {
            let n = a.stack.len().max(b.stack.len());
            let e = Slot::default();
            (0..n).all(|i| slot_eq(a.stack.get(i).unwrap_or(&e), b.stack.get(i).unwrap_or(&e)))
        }
    })
}

#[derive(Default)]
struct IdMap {
    fwd: HashMap<u32, u32>,
    back: HashMap<u32, u32>,
}

impl IdMap {
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 {
            return true;
        }
        if cur == 0 {
            return false;
        }
        match (self.fwd.get(&old), self.back.get(&cur)) {
            (None, None) => {
                self.fwd.insert(old, cur);
                self.back.insert(cur, old);
                true
            }
            (Some(&c), Some(&o)) => c == cur && o == old,
            _ => false,
        }
    }
}

/// `check_scalar_ids`: the ids map consistently, and so do the base ids of
/// copies plus a constant.
fn scalar_ids_safe(old: &Reg, cur: &Reg, idmap: &mut IdMap) -> bool {
    idmap.check(old.id, cur.id)
        && (old.id & ADD_CONST == 0 || idmap.check(old.base_id(), cur.base_id()))
}

fn regsafe(old: &Reg, cur: &Reg, idmap: &mut IdMap, loose: bool, exact: bool) -> bool {
    if old.ty == RegType::NotInit {
        return true;
    }
    if cur.ty != old.ty || cur.maybe_null != old.maybe_null {
        return false;
    }
    match old.ty {
        // An imprecise scalar's value never decided anything on the paths
        // explored from the old state: any scalar will do.
        RegType::Scalar if exact => {
            let bounds = |r: &Reg| {
                (
                    r.var_off, r.smin, r.smax, r.umin, r.umax, r.s32_min, r.s32_max, r.u32_min,
                    r.u32_max,
                )
            };
            bounds(old) == bounds(cur) && old.off == cur.off && scalar_ids_safe(old, cur, idmap)
        }
        RegType::Scalar if loose && !old.precise => true,
        RegType::Scalar => {
            // Linked the same way, by the same constant.
            let (of, cf) = (old.id & ADD_CONST != 0, cur.id & ADD_CONST != 0);
            if (of && !cf) || (old.id != 0 && !of && cf) || (of && old.off != cur.off) {
                return false;
            }
            old.range_contains(cur) && scalar_ids_safe(old, cur, idmap)
        }
        _ => {
            old.off == cur.off
                && old.map == cur.map
                && old.frameno == cur.frameno
                && old.mem_size == cur.mem_size
                && old.dynptr_id == cur.dynptr_id
                && old.subprog == cur.subprog
                && old.kf.same_kind(&cur.kf)
                && (old.range == cur.range || (old.range >= 0 && old.range <= cur.range))
                && old.range_contains(cur)
                && idmap.check(old.id, cur.id)
                && idmap.check(old.ref_obj_id, cur.ref_obj_id)
        }
    }
}

fn slot_safe(old: &Slot, cur: &Slot, idmap: &mut IdMap, loose: bool, exact: bool) -> bool {
    let special = |s: &Slot| s.ty[0] == kfunc::STACK_ITER || s.ty[0] == kfunc::STACK_DYNPTR;
    if special(old) || special(cur) {
        return special(old) && kfunc::special_slot_safe(old, cur, idmap);
    }
    let old_spill = old.ty.contains(&STACK_SPILL);
    if old_spill {
        // The same bytes must hold a covered spill.
        for k in 0..8 {
            if (old.ty[k] == STACK_SPILL) != (cur.ty[k] == STACK_SPILL) {
                return false;
            }
        }
        if !regsafe(&old.spill, &cur.spill, idmap, loose, exact) {
            return false;
        }
    }
    for k in 0..8 {
        let ok = match old.ty[k] {
            STACK_INVALID | STACK_SPILL => true,
            STACK_MISC => match cur.ty[k] {
                STACK_MISC | STACK_ZERO => true,
                STACK_SPILL => cur.spill.is_scalar(),
                _ => false,
            },
            _ => cur.ty[k] == STACK_ZERO || (cur.ty[k] == STACK_SPILL && cur.spill.is_null_const()),
        };
        if !ok {
            return false;
        }
    }
    true
}

mod alu;
pub mod btf_ctx;
mod calls;
mod ctx;
mod dynptr;
mod fastcall;
mod jumps;
mod kfunc;
pub mod map_ptr;
mod mem;
mod precise;

/// Without BTF the kernel refuses subprograms that may leave the program
/// abnormally (LD_ABS/LD_IND, tail calls): their exits need the BTF
/// prototype.
fn check_abnormal_return(cfg: &Cfg) -> Result<(), String> {
    for (pc, d) in cfg.dec.iter().enumerate() {
        let Some(d) = d else { continue };
        if cfg.subprog_of[pc] == 0 {
            continue;
        }
        if matches!(d.op.shape(), Shape::LdAbs | Shape::LdInd) {
            return Err("LD_ABS is not allowed in subprogs without BTF".into());
        }
        if d.op == Op::Call && d.src == 0 && d.imm32() == 12 {
            return Err("tail_call is not allowed in subprogs without BTF".into());
        }
    }
    Ok(())
}
