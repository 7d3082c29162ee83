//! Counting what runs: an [`Observer`] for observed test runs that counts,
//! per program and instruction slot, how often each instruction ran, which
//! way each conditional jump went, and how many instructions ran under each
//! stack of BPF-to-BPF calls. The profile and coverage reports are made from
//! it.

use crate::session::{Session, SourceMap};
use bpfvm::isa::{decode_at, Op, Shape};
use bpfvm::vm::{At, Flow, Observer, VmProgram};
use bpfvm::ProgObj;
use std::collections::HashMap;
use std::sync::Arc;

/// Counts for one program.
pub struct ProgCounts {
    pub prog: Arc<ProgObj>,
    pub src: SourceMap,
    /// Per slot: times the instruction ran.
    pub insn: Vec<u64>,
    /// Per slot of a conditional jump: times it jumped, and fell through.
    pub taken: Vec<u64>,
    pub fallen: Vec<u64>,
}

impl ProgCounts {
    fn new(prog: Arc<ProgObj>) -> ProgCounts {
        let n = prog.xlated.len();
        ProgCounts {
            src: SourceMap::new(&prog),
            prog,
            insn: vec![0; n],
            taken: vec![0; n],
            fallen: vec![0; n],
        }
    }

    /// Slots of conditional jumps, with their target slot.
    pub fn cond_jumps(&self) -> Vec<(usize, usize)> {
        let x = &self.prog.xlated;
        let mut out = Vec::new();
        let mut pc = 0;
        while pc < x.len() {
            let Ok(d) = decode_at(x, pc) else {
                pc += 1;
                continue;
            };
            if matches!(d.op.shape(), Shape::JmpK | Shape::JmpX) {
                out.push((pc, (pc as i64 + 1 + d.off as i64) as usize));
            }
            pc += d.slots();
        }
        out
    }
}

/// A conditional jump seen, whose outcome the next instruction tells.
struct Pending {
    prog: usize,
    slot: usize,
    target: usize,
    depth: usize,
}

/// The observer. Programs are matched with the session's by identity.
pub struct Counts {
    pub progs: Vec<ProgCounts>,
    /// Instructions run, per stack of (program, function index) frames,
    /// outermost first.
    pub stacks: HashMap<Vec<(u16, u16)>, u64>,
    /// The session's programs: (their VM program, index in `progs` once seen).
    known: Vec<(*const VmProgram, Arc<ProgObj>, Option<usize>)>,
    /// This run's program indices (At::prog) -> index in `progs`.
    run_map: Vec<Option<usize>>,
    pending: Option<Pending>,
    /// Runs observed.
    pub runs: u64,
    /// Instructions observed.
    pub total: u64,
}

impl Counts {
    pub fn new(s: &Session) -> Counts {
        let all: Vec<Arc<ProgObj>> = s
            .loaded
            .progs
            .iter()
            .map(|(_, p)| p.obj().clone())
            .collect();
        Counts::for_programs(s.prog.obj(), &all)
    }

    /// Counts for runs of `main`, which may tail-call any of `all`.
    pub fn for_programs(main: &Arc<ProgObj>, all: &[Arc<ProgObj>]) -> Counts {
        let mut known: Vec<(*const VmProgram, Arc<ProgObj>, Option<usize>)> = all
            .iter()
            .map(|p| (std::ptr::from_ref(p.vm()), p.clone(), None))
            .collect();
        if !known.iter().any(|k| Arc::ptr_eq(&k.1, main)) {
            known.push((std::ptr::from_ref(main.vm()), main.clone(), None));
        }
        let mut c = Counts {
            progs: Vec::new(),
            stacks: HashMap::new(),
            known,
            run_map: Vec::new(),
            pending: None,
            runs: 0,
            total: 0,
        };
        // The program under test first, even if it never runs.
        if let Some(k) = c.known.iter().position(|k| Arc::ptr_eq(&k.1, main)) {
            c.progs.push(ProgCounts::new(c.known[k].1.clone()));
            c.known[k].2 = Some(0);
        }
        c
    }

    /// The counts for the wire (the daemon counts `prog run ... coverage`).
    pub fn to_json(&self) -> serde_json::Value {
        let progs: Vec<serde_json::Value> = self
            .progs
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.prog.name, "insn": p.insn, "taken": p.taken, "fallen": p.fallen,
                })
            })
            .collect();
        serde_json::json!({ "runs": self.runs, "instructions": self.total, "progs": progs })
    }

    /// Counts made elsewhere ([`Counts::to_json`]) for the session's copy of
    /// the same programs (matched by name).
    pub fn from_json(s: &Session, v: &serde_json::Value) -> Result<Counts, String> {
        let mut c = Counts::new(s);
        c.progs.clear();
        let nums = |x: &serde_json::Value| -> Vec<u64> {
            x.as_array()
                .map(|a| a.iter().map(|n| n.as_u64().unwrap_or(0)).collect())
                .unwrap_or_default()
        };
        for p in v["progs"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or("");
            let Some(k) = c.known.iter().position(|k| k.1.name == name) else {
                return Err(format!(
                    "the daemon counted program '{name}', which the object does not have"
                ));
            };
            let mut pc = ProgCounts::new(c.known[k].1.clone());
            let (insn, taken, fallen) = (nums(&p["insn"]), nums(&p["taken"]), nums(&p["fallen"]));
            if insn.len() != pc.insn.len()
                || taken.len() != pc.insn.len()
                || fallen.len() != pc.insn.len()
            {
                return Err(format!(
                    "the daemon's counts for '{name}' do not fit its instructions"
                ));
            }
            (pc.insn, pc.taken, pc.fallen) = (insn, taken, fallen);
            c.progs.push(pc);
        }
        c.runs = v["runs"].as_u64().unwrap_or(0);
        c.total = v["instructions"].as_u64().unwrap_or(0);
        Ok(c)
    }

    /// The counts of program `i` of this run.
    fn index(&mut self, at: &At<'_>, i: usize) -> Option<usize> {
        if let Some(Some(x)) = self.run_map.get(i) {
            return Some(*x);
        }
        let origin = at.origin_of(i)?;
        let k = self.known.iter().position(|k| k.0 == origin)?;
        let idx = match self.known[k].2 {
            Some(x) => x,
            None => {
                self.progs.push(ProgCounts::new(self.known[k].1.clone()));
                let x = self.progs.len() - 1;
                self.known[k].2 = Some(x);
                x
            }
        };
        if self.run_map.len() <= i {
            self.run_map.resize(i + 1, None);
        }
        self.run_map[i] = Some(idx);
        Some(idx)
    }
}

impl Observer for Counts {
    fn before(&mut self, at: &At<'_>) -> Flow {
        if at.executed == 0 && at.depth == 0 && at.prog == 0 {
            // A new run: program indices start again.
            self.run_map.clear();
            self.pending = None;
            self.runs += 1;
        }
        let Some(p) = self.index(at, at.prog) else {
            return Flow::Continue;
        };
        self.total += 1;
        if let Some(j) = self.pending.take() {
            if j.prog == p && j.depth == at.depth {
                let c = &mut self.progs[p];
                if at.slot == j.target {
                    c.taken[j.slot] += 1;
                } else if at.slot == j.slot + 1 {
                    c.fallen[j.slot] += 1;
                }
            }
        }
        let c = &mut self.progs[p];
        if let Some(n) = c.insn.get_mut(at.slot) {
            *n += 1;
        }
        if let Ok(d) = decode_at(c.prog.xlated.as_slice(), at.slot) {
            if matches!(d.op.shape(), Shape::JmpK | Shape::JmpX) && d.op != Op::Ja {
                self.pending = Some(Pending {
                    prog: p,
                    slot: at.slot,
                    target: (at.slot as i64 + 1 + d.off as i64) as usize,
                    depth: at.depth,
                });
            }
        }
        // The stack of functions, outermost first.
        let mut stack: Vec<(u16, u16)> = Vec::with_capacity(at.depth + 1);
        let callers = at.callers.clone();
        for cs in &callers {
            if let Some(cp) = self.index(at, cs.prog) {
                let f = self.progs[cp].src.func(cs.slot).0;
                stack.push((cp as u16, f as u16));
            }
        }
        let f = self.progs[p].src.func(at.slot).0;
        stack.push((p as u16, f as u16));
        *self.stacks.entry(stack).or_insert(0) += 1;
        Flow::Continue
    }
}
