//! `bpfvm prog debug PROG data_in FILE [ctx_in FILE] [-x SCRIPT | dap]`: a
//! step debugger with gdb's commands. The program runs in this process on the
//! observed interpreter ([`bpfvm::Runtime::test_run_observed`]); before each
//! instruction the debugger decides whether to stop (entry, a breakpoint, the
//! end of a step), and while stopped it reads commands: from a terminal (line
//! editing, history), from a script (`-x FILE`, echoed as gdb does in batch
//! mode), or as Debug Adapter Protocol requests ([`crate::dap`]).
//!
//! Source positions come from the object's BTF line info, register types from
//! the verifier (the states it saw before each instruction), memory from the
//! run's own map of what the program may read (packet, stack, context, map
//! values).

use crate::client::print_error;
use crate::session::{same_file, Line, Session, SourceMap};
use crate::Opts;
use bpfvm::isa::disasm::{kernel_insn_line, XlatedSymbols};
use bpfvm::isa::{decode_at, Op};
use bpfvm::vm::{At, Flow, Observer, RegionKind};
use bpfvm::{ProgObj, TestRunAttr};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// What ends the wait for commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Go on (with the mode the command set).
    Resume,
    /// End the run (kill).
    Kill,
    /// Start the program again (after it ended).
    Run,
    /// Leave the debugger.
    Quit,
    /// Nothing changes: read the next command.
    Stay,
}

/// When to stop next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Entry,
    Continue,
    /// Until the source line changes (`step`); `over`: not inside calls (`next`).
    Line {
        from: Option<(u32, Line)>,
        depth: usize,
        over: bool,
    },
    /// `stepi`/`nexti` N instructions.
    Insn {
        left: u64,
        over: bool,
        depth: usize,
    },
    /// Until the current function returns.
    Finish {
        depth: usize,
    },
}

#[derive(Clone, Debug)]
pub struct Breakpoint {
    pub id: u32,
    pub spec: String,
    pub prog: u32,
    pub slots: Vec<usize>,
    /// Stops only when the line is entered (line breakpoints).
    pub on_entry: bool,
    pub hits: u64,
    /// The source line, for DAP's answer.
    pub line: Option<Line>,
}

/// Why the program stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Entry,
    Breakpoint(u32),
    Step,
    Finish,
}

/// Where the program is stopped: enough to answer commands after the
/// observer's callback returned (DAP answers from it too).
pub struct Stopped {
    pub prog: Arc<ProgObj>,
    pub slot: usize,
    pub regs: [u64; 11],
    pub depth: usize,
    pub executed: u64,
}

pub struct Debugger {
    pub session: Session,
    pub attr: TestRunAttr,
    pub srcs: HashMap<u32, SourceMap>,
    regstates: HashMap<u32, Vec<[Vec<String>; 11]>>,
    pub bps: Vec<Breakpoint>,
    next_bp: u32,
    displays: Vec<(u32, String)>,
    next_display: u32,
    pub mode: Mode,
    /// (program id, line, depth) of the previous instruction.
    prev: Option<(u32, Option<Line>, usize)>,
    values: u32,
    list_next: Option<(String, u32)>,
    /// Programs of this run by At::prog.
    run_progs: Vec<Option<Arc<ProgObj>>>,
    pub front: Front,
    /// The last stop's reason, and whether the frame changed since the stop before.
    pub last_reason: Option<Reason>,
    last_func: Option<(u32, usize)>,
}

/// Where commands come from.
pub enum Front {
    Script {
        lines: Vec<String>,
        next: usize,
    },
    Terminal {
        ed: Box<rustyline::DefaultEditor>,
        history: Option<std::path::PathBuf>,
        last: String,
    },
    Stdin,
    Dap(Box<crate::dap::Dap>),
}

impl Debugger {
    pub fn new(session: Session, attr: TestRunAttr, front: Front) -> Debugger {
        Debugger {
            session,
            attr,
            srcs: HashMap::new(),
            regstates: HashMap::new(),
            bps: Vec::new(),
            next_bp: 1,
            displays: Vec::new(),
            next_display: 1,
            mode: Mode::Entry,
            prev: None,
            values: 0,
            list_next: None,
            run_progs: Vec::new(),
            front,
            last_reason: None,
            last_func: None,
        }
    }

    pub fn main_prog(&self) -> Arc<ProgObj> {
        self.session.prog.obj().clone()
    }

    pub fn src(&mut self, p: &ProgObj) -> &SourceMap {
        self.srcs.entry(p.id).or_insert_with(|| SourceMap::new(p))
    }

    fn prog_by_id(&self, id: u32) -> Option<Arc<ProgObj>> {
        self.session
            .loaded
            .progs
            .iter()
            .map(|(_, p)| p.obj())
            .find(|p| p.id == id)
            .cloned()
    }

    /// The verifier's view of register `r` before `slot`.
    pub fn reg_state(&mut self, p: &ProgObj, slot: usize, r: usize) -> Option<String> {
        if !self.regstates.contains_key(&p.id) {
            let st = self.session.rt.verifier_reg_states(p).unwrap_or_default();
            self.regstates.insert(p.id, st);
        }
        let v = self.regstates.get(&p.id)?.get(slot)?.get(r)?;
        if v.is_empty() {
            return None;
        }
        Some(v.join(" | "))
    }

    /// The program `at.prog` of this run.
    fn prog_of(&mut self, at: &At<'_>, i: usize) -> Option<Arc<ProgObj>> {
        if let Some(Some(p)) = self.run_progs.get(i) {
            return Some(p.clone());
        }
        let p = self.session.program_by_vm(at.origin_of(i)?)?;
        if self.run_progs.len() <= i {
            self.run_progs.resize(i + 1, None);
        }
        self.run_progs[i] = Some(p.clone());
        Some(p)
    }

    // ---- source positions --------------------------------------------------

    fn line_of(&mut self, p: &ProgObj, slot: usize) -> Option<Line> {
        self.src(p).line(slot).cloned()
    }

    /// `func () at file:line` for a position.
    pub fn where_text(&mut self, p: &ProgObj, slot: usize) -> String {
        let func = self.src(p).func(slot).1.to_string();
        match self.line_of(p, slot) {
            Some(l) => format!("{func} () at {}:{}", l.file, l.line),
            None => format!("{func} () at insn {slot}"),
        }
    }

    /// The text of a source line: from the file when it can be found, else
    /// from BTF.
    pub fn line_text(&mut self, p: &ProgObj, l: &Line) -> String {
        let dir = self.session.obj_dir.clone();
        if let Some(t) = self.session.sources.line(&l.file, l.line, dir.as_deref()) {
            return t;
        }
        self.src(p).btf_text(l).unwrap_or("").to_string()
    }

    fn source_line(&mut self, p: &ProgObj, slot: usize) -> String {
        match self.line_of(p, slot) {
            Some(l) => format!("{}\t{}\n", l.line, self.line_text(p, &l)),
            None => format!("insn {slot}: {}\n", insn_text(p, slot)),
        }
    }

    // ---- stopping ----------------------------------------------------------

    /// Decides whether to stop before this instruction.
    fn should_stop(&mut self, at: &At<'_>, p: &ProgObj, line: &Option<Line>) -> Option<Reason> {
        let here = (p.id, line.clone(), at.depth);
        let entered = self.prev.as_ref() != Some(&here);
        let r = match &mut self.mode {
            Mode::Entry => Some(Reason::Entry),
            Mode::Insn { left, over, depth } => {
                if *over && at.depth > *depth {
                    None
                } else {
                    *left = left.saturating_sub(1);
                    (*left == 0).then_some(Reason::Step)
                }
            }
            Mode::Line { from, depth, over } => {
                let cur = line.clone().map(|l| (p.id, l));
                if cur.is_none() || (*over && at.depth > *depth) {
                    None
                } else if cur != *from || at.depth != *depth {
                    Some(Reason::Step)
                } else {
                    None
                }
            }
            Mode::Finish { depth } => (at.depth < *depth).then_some(Reason::Finish),
            Mode::Continue => None,
        };
        let bp = self
            .bps
            .iter_mut()
            .find(|b| b.prog == p.id && b.slots.contains(&at.slot) && (!b.on_entry || entered));
        let r = match (bp, r) {
            // A breakpoint reached while stepping reports the breakpoint.
            (Some(b), _) => {
                b.hits += 1;
                Some(Reason::Breakpoint(b.id))
            }
            (None, r) => r,
        };
        self.prev = Some(here);
        r
    }

    /// What gdb prints when the program stops.
    pub fn stop_text(&mut self, at: &At<'_>, p: &ProgObj, reason: &Reason) -> String {
        let mut out = String::new();
        let func = (p.id, self.src(p).func(at.slot).0);
        let new_func = self.last_func != Some(func);
        self.last_func = Some(func);
        match reason {
            Reason::Entry => {
                let _ = writeln!(
                    out,
                    "Program {} ({}) stopped before its first instruction.",
                    p.name,
                    bpfvm::prog_type_name(p.prog_type)
                );
                let _ = writeln!(out, "{}", self.where_text(p, at.slot));
            }
            Reason::Breakpoint(id) => {
                let _ = writeln!(out, "\nBreakpoint {id}, {}", self.where_text(p, at.slot));
            }
            Reason::Finish => {
                let _ = writeln!(
                    out,
                    "Run till exit: returned to {}",
                    self.where_text(p, at.slot)
                );
                let _ = writeln!(out, "Value returned is r0 = {}", at.regs[0] as i64);
            }
            Reason::Step => {
                if new_func {
                    let _ = writeln!(out, "{}", self.where_text(p, at.slot));
                }
            }
        }
        if matches!(self.mode, Mode::Insn { .. }) && *reason == Reason::Step {
            let _ = writeln!(out, "=> {}: {}", at.slot, insn_text(p, at.slot));
        }
        out.push_str(&self.source_line(p, at.slot));
        for (n, expr) in self.displays.clone() {
            let v = self.eval_display(&expr, at, p);
            let _ = writeln!(out, "{n}: {v}");
        }
        out
    }

    // ---- commands ----------------------------------------------------------

    /// Runs one command. `at` is None when the program is not running.
    pub fn command(&mut self, line: &str, at: Option<&At<'_>>) -> (Action, String) {
        let line = line.trim();
        let (word, rest) = match line.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (line, ""),
        };
        // `p/x r1`, `x/16xb $pkt`: the format sticks to the command word.
        let (word, fmt) = match word.split_once('/') {
            Some((w, f)) => (w, f),
            None => (word, ""),
        };
        let word = complete(word, COMMANDS);
        let cur = at.and_then(|a| self.prog_of(a, a.prog).map(|p| (a, p)));
        let running = cur.is_some();
        let need = || (Action::Stay, "The program is not being run.\n".to_string());
        match word {
            "" => (Action::Stay, String::new()),
            "help" | "h" => (Action::Stay, HELP.to_string()),
            "break" | "b" | "br" | "tbreak" => {
                (Action::Stay, self.add_breakpoint(rest, cur.as_ref()))
            }
            "delete" | "d" => (Action::Stay, self.delete(rest)),
            "run" | "r" | "start" => {
                if running {
                    if self.last_reason == Some(Reason::Entry) {
                        self.mode = Mode::Continue;
                        return (Action::Resume, String::new());
                    }
                    return (
                        Action::Stay,
                        "The program is already running; use 'continue' (or 'kill' and 'run').\n"
                            .into(),
                    );
                }
                (Action::Run, String::new())
            }
            "continue" | "c" | "cont" => {
                if !running {
                    return need();
                }
                self.mode = Mode::Continue;
                (Action::Resume, "Continuing.\n".into())
            }
            "step" | "s" | "next" | "n" => {
                let Some((a, p)) = cur else { return need() };
                let from = self.line_of(&p, a.slot).map(|l| (p.id, l));
                self.mode = Mode::Line {
                    from,
                    depth: a.depth,
                    over: word.starts_with('n'),
                };
                (Action::Resume, String::new())
            }
            "stepi" | "si" | "nexti" | "ni" => {
                let Some((a, _)) = cur else { return need() };
                let n = rest.parse().unwrap_or(1u64).max(1);
                self.mode = Mode::Insn {
                    left: n,
                    over: word.starts_with('n'),
                    depth: a.depth,
                };
                (Action::Resume, String::new())
            }
            "finish" | "fin" => {
                let Some((a, p)) = cur else { return need() };
                if a.depth == 0 {
                    return (
                        Action::Stay,
                        format!(
                            "\"finish\" not meaningful in the outermost frame ({}).\n",
                            self.src(&p).func(a.slot).1
                        ),
                    );
                }
                self.mode = Mode::Finish { depth: a.depth };
                (
                    Action::Resume,
                    format!("Run till exit from #0  {}\n", self.where_text(&p, a.slot)),
                )
            }
            "kill" | "k" => {
                if !running {
                    return need();
                }
                (Action::Kill, "[program killed]\n".into())
            }
            "quit" | "q" | "exit" => (Action::Quit, String::new()),
            "info" | "i" => (Action::Stay, self.info(rest, cur.as_ref())),
            "print" | "p" | "output" | "call" => {
                let Some((a, p)) = cur else { return need() };
                match eval(rest, a) {
                    Ok(v) => {
                        self.values += 1;
                        let t = match rest.trim().trim_start_matches('$') {
                            r if reg_index(r).is_some() => {
                                self.reg_state(&p, a.slot, reg_index(r).unwrap_or(0))
                            }
                            _ => None,
                        };
                        let mut s = format!("${} = {}", self.values, fmt_value(v, fmt));
                        if let Some(t) = t {
                            let _ = write!(s, "  [{t}]");
                        }
                        s.push('\n');
                        (Action::Stay, s)
                    }
                    Err(e) => (Action::Stay, format!("{e}\n")),
                }
            }
            "x" => {
                let Some((a, p)) = cur else { return need() };
                let stack_fp = a.regs[10];
                match examine(fmt, rest, a, stack_fp) {
                    Ok(s) => {
                        let _ = &p;
                        (Action::Stay, s)
                    }
                    Err(e) => (Action::Stay, format!("{e}\n")),
                }
            }
            "display" => {
                if rest.is_empty() {
                    let mut s = String::new();
                    if let Some((a, p)) = cur {
                        for (n, e) in self.displays.clone() {
                            let v = self.eval_display(&e, a, &p);
                            let _ = writeln!(s, "{n}: {v}");
                        }
                    }
                    return (Action::Stay, s);
                }
                let expr = if fmt.is_empty() {
                    rest.to_string()
                } else {
                    format!("/{fmt} {rest}")
                };
                let n = self.next_display;
                self.next_display += 1;
                self.displays.push((n, expr.clone()));
                let s = match cur {
                    Some((a, p)) => format!("{n}: {}\n", self.eval_display(&expr, a, &p)),
                    None => String::new(),
                };
                (Action::Stay, s)
            }
            "undisplay" => {
                match rest.parse::<u32>() {
                    Ok(n) => self.displays.retain(|d| d.0 != n),
                    Err(_) => self.displays.clear(),
                }
                (Action::Stay, String::new())
            }
            "bt" | "backtrace" | "where" => {
                let Some((a, p)) = cur else {
                    return (Action::Stay, "No stack.\n".into());
                };
                (Action::Stay, self.backtrace(a, &p))
            }
            "list" | "l" => (Action::Stay, self.list(rest, cur.as_ref())),
            "map" => (Action::Stay, self.map_cmd(rest)),
            "directory" | "dir" => {
                self.session
                    .sources
                    .dirs
                    .push(crate::client::absolute(std::path::Path::new(rest)));
                (
                    Action::Stay,
                    format!("Source directories searched: {rest}\n"),
                )
            }
            other => (
                Action::Stay,
                format!("Undefined command: \"{other}\".  Try \"help\".\n"),
            ),
        }
    }

    fn eval_display(&mut self, expr: &str, at: &At<'_>, _p: &ProgObj) -> String {
        if let Some(rest) = expr.strip_prefix('/') {
            let (fmt, e) = rest.split_once(' ').unwrap_or((rest, ""));
            if fmt.ends_with(['b', 'h', 'w', 'g'])
                || fmt.chars().next().is_some_and(|c| c.is_ascii_digit())
            {
                return match examine(fmt, e, at, at.regs[10]) {
                    Ok(s) => format!("x/{fmt} {e}\n{}", s.trim_end()),
                    Err(err) => err,
                };
            }
            return match eval(e, at) {
                Ok(v) => format!("/{fmt} {e} = {}", fmt_value(v, fmt)),
                Err(err) => err,
            };
        }
        match eval(expr, at) {
            Ok(v) => format!("{expr} = {}", fmt_value(v, "")),
            Err(err) => err,
        }
    }

    /// `break FILE:LINE | LINE | FUNCTION | *INSN`: the message gdb prints.
    pub fn add_breakpoint(&mut self, spec: &str, cur: Option<&(&At<'_>, Arc<ProgObj>)>) -> String {
        match self.try_add_breakpoint(spec, cur) {
            Ok(id) => {
                let b = self.bps.iter().find(|b| b.id == id).cloned();
                let Some(b) = b else { return String::new() };
                let at = match &b.line {
                    Some(l) => format!("file {}, line {}", l.file, l.line),
                    None => format!("insn {}", b.slots[0]),
                };
                format!("Breakpoint {id} at insn {}: {at}.\n", b.slots[0])
            }
            Err(e) => e,
        }
    }

    /// Sets a breakpoint; its number, or gdb's message why not.
    pub fn try_add_breakpoint(
        &mut self,
        spec: &str,
        cur: Option<&(&At<'_>, Arc<ProgObj>)>,
    ) -> Result<u32, String> {
        let spec = spec.trim();
        let main = self.main_prog();
        let cur_prog = cur.map(|c| c.1.clone()).unwrap_or(main.clone());
        let progs: Vec<Arc<ProgObj>> = std::iter::once(cur_prog.clone())
            .chain(
                self.session
                    .loaded
                    .progs
                    .iter()
                    .map(|(_, p)| p.obj().clone())
                    .filter(|p| p.id != cur_prog.id),
            )
            .collect();
        let (prog, slots, on_entry, line) = if spec.is_empty() {
            let Some((a, p)) = cur else {
                return Err("No default breakpoint location now.\n".into());
            };
            (p.clone(), vec![a.slot], false, None)
        } else if let Some(n) = spec.strip_prefix('*') {
            match parse_num(n) {
                Some(n) if (n as usize) < cur_prog.xlated.len() => {
                    let l = self.line_of(&cur_prog, n as usize);
                    (cur_prog.clone(), vec![n as usize], false, l)
                }
                _ => return Err(format!("No instruction {n} in {}.\n", cur_prog.name)),
            }
        } else {
            let (file, num) = match spec.rsplit_once(':') {
                Some((f, l)) => (Some(f), l.parse::<u32>().ok()),
                None => (None, spec.parse::<u32>().ok()),
            };
            if let Some(num) = num {
                // As gdb: a line without code moves to the next one with code.
                let found = (num..num + 10).find_map(|n| {
                    progs.iter().find_map(|p| {
                        let v = self.src(p).line_starts(file, n);
                        (!v.is_empty()).then(|| (p.clone(), v))
                    })
                });
                match found {
                    Some((p, v)) => {
                        let l = self.line_of(&p, v[0]);
                        (p, v, true, l)
                    }
                    None => return Err(format!("No line {spec} with code in the program.\n")),
                }
            } else {
                let found = progs.iter().find_map(|p| {
                    let f = self.src(p).funcs.iter().find(|f| f.1 == spec).map(|f| f.0);
                    f.map(|s| (p.clone(), s))
                });
                match found {
                    Some((p, s)) => {
                        let l = self.line_of(&p, s);
                        (p, vec![s], false, l)
                    }
                    None => return Err(format!("Function \"{spec}\" not defined.\n")),
                }
            }
        };
        let id = self.next_bp;
        self.next_bp += 1;
        self.bps.push(Breakpoint {
            id,
            spec: spec.to_string(),
            prog: prog.id,
            slots,
            on_entry,
            hits: 0,
            line,
        });
        Ok(id)
    }

    fn delete(&mut self, rest: &str) -> String {
        if rest.is_empty() {
            self.bps.clear();
            return String::new();
        }
        for w in rest.split_whitespace() {
            match w.parse::<u32>() {
                Ok(n) if self.bps.iter().any(|b| b.id == n) => self.bps.retain(|b| b.id != n),
                _ => return format!("No breakpoint number {w}.\n"),
            }
        }
        String::new()
    }

    fn info(&mut self, rest: &str, cur: Option<&(&At<'_>, Arc<ProgObj>)>) -> String {
        let (what, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let what = complete(what, INFO);
        match what {
            "registers" | "r" | "reg" | "all-registers" => {
                let Some((a, p)) = cur else {
                    return "The program has no registers now.\n".into();
                };
                self.registers(a, p, args)
            }
            "breakpoints" | "b" | "break" => {
                if self.bps.is_empty() {
                    return "No breakpoints.\n".into();
                }
                let mut s = String::from("Num     Type           What\n");
                for b in self.bps.clone() {
                    let prog = self.prog_by_id(b.prog);
                    let w = match prog {
                        Some(p) => self.where_text(&p, b.slots[0]),
                        None => b.spec.clone(),
                    };
                    let _ = writeln!(s, "{:<7} breakpoint     insn {} in {w}", b.id, b.slots[0]);
                    if b.hits > 0 {
                        let _ = writeln!(
                            s,
                            "\tbreakpoint already hit {} time{}",
                            b.hits,
                            if b.hits == 1 { "" } else { "s" }
                        );
                    }
                }
                s
            }
            "maps" => self.info_maps(),
            "line" => {
                let Some((a, p)) = cur else {
                    return "No line number information available.\n".into();
                };
                match self.line_of(p, a.slot) {
                    Some(l) => format!(
                        "Line {} of \"{}\" is at insn {} of {}.\n",
                        l.line, l.file, a.slot, p.name
                    ),
                    None => format!(
                        "No line number information available for insn {}.\n",
                        a.slot
                    ),
                }
            }
            "frame" => {
                let Some((a, p)) = cur else {
                    return "No stack.\n".into();
                };
                format!(
                    "Stack level 0, frame at r10 = {:#x}:\n insn {} in {}\n",
                    a.regs[10],
                    a.slot,
                    self.where_text(p, a.slot)
                )
            }
            "display" => {
                let mut s = String::new();
                for (n, e) in &self.displays {
                    let _ = writeln!(s, "{n}:   y  {e}");
                }
                s
            }
            _ => "info registers | breakpoints | maps | line | frame | display\n".into(),
        }
    }

    /// `info registers`: gdb's three columns, then the verifier's type.
    pub fn registers(&mut self, a: &At<'_>, p: &ProgObj, which: &str) -> String {
        let mut s = String::new();
        let list: Vec<usize> = if which.trim().is_empty() {
            (0..11).collect()
        } else {
            which
                .split_whitespace()
                .filter_map(|w| reg_index(w.trim_start_matches('$')))
                .collect()
        };
        for r in list {
            let v = a.regs[r];
            let ty = self.reg_state(p, a.slot, r);
            let _ = write!(
                s,
                "{:<15}{:<19}{:<21}",
                format!("r{r}"),
                format!("{v:#x}"),
                v as i64
            );
            if let Some(t) = ty {
                let _ = write!(s, "R{r}={t}");
            }
            while s.ends_with(' ') {
                s.pop();
            }
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "{:<15}{:<19}{}",
            "pc",
            format!("{:#x}", a.slot),
            self.where_text(p, a.slot)
        );
        s
    }

    pub fn backtrace(&mut self, a: &At<'_>, p: &ProgObj) -> String {
        let mut s = String::new();
        let mut n = 0;
        let _ = writeln!(s, "#{n}  {}", self.where_text(p, a.slot));
        for cs in a.callers.iter().rev() {
            n += 1;
            let Some(cp) = self.prog_of(a, cs.prog) else {
                continue;
            };
            let _ = writeln!(
                s,
                "#{n}  insn {} in {}",
                cs.slot,
                self.where_text(&cp, cs.slot)
            );
        }
        for (tp, tslot) in a.tail_calls.iter().rev() {
            n += 1;
            let Some(cp) = self.prog_of(a, *tp) else {
                continue;
            };
            let _ = writeln!(
                s,
                "#{n}  insn {tslot} in {} [tail call to {}]",
                self.where_text(&cp, *tslot),
                p.name
            );
        }
        s
    }

    fn list(&mut self, rest: &str, cur: Option<&(&At<'_>, Arc<ProgObj>)>) -> String {
        let main = self.main_prog();
        let p = cur.map(|c| c.1.clone()).unwrap_or(main);
        let rest = rest.trim();
        let (file, center) = if rest.is_empty() {
            if let Some((f, l)) = self.list_next.take() {
                (f, l + 5)
            } else if let Some((a, p)) = cur {
                match self.line_of(p, a.slot) {
                    Some(l) => (l.file, l.line),
                    None => return "No line number information.\n".into(),
                }
            } else {
                let s = self.src(&p).funcs.first().map(|f| f.0).unwrap_or(0);
                match self.line_of(&p, s) {
                    Some(l) => (l.file, l.line),
                    None => return "No line number information.\n".into(),
                }
            }
        } else if let Some(n) = rest
            .rsplit_once(':')
            .and_then(|(f, l)| l.parse::<u32>().ok().map(|l| (f, l)))
        {
            let file = self
                .src(&p)
                .files()
                .into_iter()
                .find(|f| same_file(f, n.0))
                .unwrap_or_else(|| n.0.to_string());
            (file, n.1)
        } else if let Ok(n) = rest.parse::<u32>() {
            let f = self.src(&p).files().into_iter().next().unwrap_or_default();
            (f, n)
        } else {
            let slot = self.src(&p).funcs.iter().find(|f| f.1 == rest).map(|f| f.0);
            match slot.and_then(|s| self.line_of(&p, s)) {
                Some(l) => (l.file, l.line),
                None => return format!("Function \"{rest}\" not defined.\n"),
            }
        };
        let dir = self.session.obj_dir.clone();
        let total = self.session.sources.line_count(&file, dir.as_deref());
        let lo = center.saturating_sub(5).max(1);
        let hi = match total {
            Some(t) => (lo + 9).min(t as u32),
            None => lo + 9,
        };
        let mut s = String::new();
        for n in lo..=hi {
            let l = Line {
                file: file.clone(),
                line: n,
            };
            let t = self.line_text(&p, &l);
            if total.is_none() && t.is_empty() {
                continue;
            }
            let _ = writeln!(s, "{n}\t{t}");
        }
        if s.is_empty() {
            let _ = writeln!(
                s,
                "No source for {file} (give its directory with 'directory DIR')."
            );
        }
        self.list_next = Some((file, hi + 5));
        s
    }

    fn info_maps(&self) -> String {
        let mut s = String::new();
        for (name, m) in &self.session.loaded.maps {
            let a = m.obj().attr();
            let _ = writeln!(
                s,
                "{}: {}  name {}  key {}B  value {}B  max_entries {}",
                m.id(),
                m.obj().map_type().name(),
                name,
                a.key_size,
                a.value_size,
                a.max_entries
            );
        }
        if s.is_empty() {
            s.push_str("The program uses no maps.\n");
        }
        s
    }

    /// `map lookup NAME key BYTES` / `map dump NAME`, in bpftool's words.
    fn map_cmd(&self, rest: &str) -> String {
        let words: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
        let (Some(op), Some(name)) = (words.first(), words.get(1)) else {
            return "map { lookup NAME key BYTES | dump NAME }\n".into();
        };
        let m = self
            .session
            .loaded
            .maps
            .iter()
            .find(|(n, m)| n == name || m.obj().name == *name || m.id().to_string() == *name)
            .map(|(_, m)| m.obj().clone());
        let Some(m) = m else {
            return format!("No map named {name} (see 'info maps').\n");
        };
        let rt = &self.session.rt;
        let r = match op.as_str() {
            "dump" => crate::render::map_dump(rt, &m, crate::proto::Format::Plain),
            "lookup" => crate::render::map_op(
                rt,
                &m,
                crate::proto::Format::Plain,
                "lookup",
                &words[2..],
                |_| Err("map references are not supported here".to_string()),
            )
            .map(|(r, _)| r),
            other => Err(format!("unknown map command '{other}' (lookup or dump)")),
        };
        match r {
            Ok(resp) => {
                let mut s = resp.stdout;
                if let Some(e) = resp.error {
                    let _ = writeln!(s, "Error: {e}");
                }
                s
            }
            Err(e) => format!("Error: {e}\n"),
        }
    }

    /// Where the program is, for the command loop.
    pub fn stopped(&mut self, at: &At<'_>) -> Option<Stopped> {
        let p = self.prog_of(at, at.prog)?;
        Some(Stopped {
            prog: p,
            slot: at.slot,
            regs: *at.regs,
            depth: at.depth,
            executed: at.executed,
        })
    }

    /// Reads and runs commands until one resumes, kills or quits.
    fn wait(&mut self, at: Option<&At<'_>>) -> Action {
        loop {
            let Some(line) = self.read_command() else {
                return Action::Quit;
            };
            let (a, out) = self.command(&line, at);
            print!("{out}");
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            if a != Action::Stay {
                return a;
            }
        }
    }

    fn read_command(&mut self) -> Option<String> {
        match &mut self.front {
            Front::Script { lines, next } => {
                let l = lines.get(*next)?.clone();
                *next += 1;
                println!("(bpfvm) {l}");
                Some(l)
            }
            Front::Terminal { ed, history, last } => match ed.readline("(bpfvm) ") {
                Ok(l) => {
                    if l.trim().is_empty() {
                        return Some(last.clone());
                    }
                    let _ = ed.add_history_entry(l.as_str());
                    if let Some(h) = history {
                        let _ = ed.append_history(h);
                    }
                    *last = l.clone();
                    Some(l)
                }
                Err(rustyline::error::ReadlineError::Interrupted) => Some(String::new()),
                Err(_) => None,
            },
            Front::Stdin => {
                let mut l = String::new();
                match std::io::stdin().read_line(&mut l) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => Some(l.trim_end().to_string()),
                }
            }
            Front::Dap(_) => None,
        }
    }

    /// One run of the program under the debugger. Returns what to do next.
    pub fn run_once(&mut self) -> Result<(Action, Option<bpfvm::TestRunResult>, String), String> {
        self.prev = None;
        self.last_func = None;
        self.run_progs.clear();
        let rt = self.session.rt.clone();
        let attr = self.attr.clone();
        let mut obs = Obs {
            d: self,
            ended: None,
        };
        let r = rt.test_run_observed(&attr, &mut obs);
        let ended = obs.ended;
        match r {
            Ok(res) => Ok((Action::Stay, Some(res), String::new())),
            Err(e) => {
                let a = ended.unwrap_or(Action::Stay);
                let msg = crate::render::error_chain(&e);
                if matches!(a, Action::Kill | Action::Quit) {
                    Ok((a, None, String::new()))
                } else {
                    Ok((
                        Action::Stay,
                        None,
                        format!("The program stopped with an error: {msg}\n"),
                    ))
                }
            }
        }
    }
}

/// The observer of a debugged run.
struct Obs<'d> {
    d: &'d mut Debugger,
    /// Set when a command ended the run.
    ended: Option<Action>,
}

impl Observer for Obs<'_> {
    fn before(&mut self, at: &At<'_>) -> Flow {
        let d = &mut *self.d;
        let Some(p) = d.prog_of(at, at.prog) else {
            return Flow::Continue;
        };
        let line = d.line_of(&p, at.slot);
        let Some(reason) = d.should_stop(at, &p, &line) else {
            return Flow::Continue;
        };
        d.last_reason = Some(reason.clone());
        let action = if let Front::Dap(_) = d.front {
            crate::dap::stopped(d, at, &p, &reason)
        } else {
            let text = d.stop_text(at, &p, &reason);
            print!("{text}");
            d.wait(Some(at))
        };
        match action {
            Action::Resume | Action::Stay => Flow::Continue,
            Action::Run => Flow::Continue,
            Action::Kill | Action::Quit => {
                self.ended = Some(action);
                Flow::Stop
            }
        }
    }
}

/// Command words, for gdb's unique-prefix matching (`inf` is `info`).
const COMMANDS: &[&str] = &[
    "backtrace",
    "break",
    "continue",
    "delete",
    "directory",
    "display",
    "finish",
    "help",
    "info",
    "kill",
    "list",
    "map",
    "next",
    "nexti",
    "print",
    "quit",
    "run",
    "start",
    "step",
    "stepi",
    "undisplay",
    "where",
];
const INFO: &[&str] = &[
    "breakpoints",
    "display",
    "frame",
    "line",
    "maps",
    "registers",
];

/// `w` itself if it is a command or alias, else the one command it begins.
fn complete<'a>(w: &'a str, words: &[&'a str]) -> &'a str {
    if w.is_empty() || words.contains(&w) {
        return w;
    }
    let mut m = words.iter().filter(|c| c.starts_with(w));
    match (m.next(), m.next()) {
        (Some(c), None) => c,
        _ => w,
    }
}

// ---- expressions -------------------------------------------------------------

pub fn reg_index(w: &str) -> Option<usize> {
    let w = w.trim().to_ascii_lowercase();
    let n = w.strip_prefix('r')?.parse::<usize>().ok()?;
    (n <= 10).then_some(n)
}

fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok();
    }
    if let Some(n) = s.strip_prefix('-') {
        return n.parse::<u64>().ok().map(|v| v.wrapping_neg());
    }
    s.parse().ok()
}

/// A value: `rN`, `$rN`, `$pc`, `$fp`, `$pkt`, `$pkt_end`, `$ctx`, `$meta`,
/// numbers, and sums/differences of those.
pub fn eval(expr: &str, at: &At<'_>) -> Result<u64, String> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Err("Argument required (expression to compute).".into());
    }
    let mut total: u64 = 0;
    let mut sign = 1i8;
    let mut term = String::new();
    let apply = |term: &str, sign: i8, total: &mut u64| -> Result<(), String> {
        let v = atom(term.trim(), at)?;
        *total = if sign > 0 {
            total.wrapping_add(v)
        } else {
            total.wrapping_sub(v)
        };
        Ok(())
    };
    for c in expr.chars() {
        if (c == '+' || c == '-') && !term.trim().is_empty() {
            apply(&term, sign, &mut total)?;
            term.clear();
            sign = if c == '+' { 1 } else { -1 };
        } else {
            term.push(c);
        }
    }
    apply(&term, sign, &mut total)?;
    Ok(total)
}

fn region(at: &At<'_>, kind: RegionKind) -> Option<(u64, u64)> {
    at.regions()
        .iter()
        .find(|r| r.kind == kind)
        .map(|r| (r.start, r.end))
}

fn atom(t: &str, at: &At<'_>) -> Result<u64, String> {
    let w = t.trim_start_matches('$');
    if let Some(r) = reg_index(w) {
        return Ok(at.regs[r]);
    }
    let v = match w {
        "pc" => Some(at.slot as u64),
        "fp" | "sp" => Some(at.regs[10]),
        "pkt" | "data" => region(at, RegionKind::Packet).map(|r| r.0),
        "pkt_end" | "data_end" => region(at, RegionKind::Packet).map(|r| r.1),
        "meta" | "data_meta" => region(at, RegionKind::PacketMeta).map(|r| r.0),
        "ctx" => region(at, RegionKind::Context).map(|r| r.0),
        _ => None,
    };
    if let Some(v) = v {
        return Ok(v);
    }
    if t.starts_with('$') {
        return Err(format!(
            "No symbol \"{w}\" in this run ($pkt, $pkt_end, $meta, $ctx, $fp, $pc, $rN)."
        ));
    }
    parse_num(t).ok_or_else(|| format!("No symbol \"{t}\" in current context."))
}

fn fmt_value(v: u64, fmt: &str) -> String {
    match fmt.chars().last() {
        Some('x') => format!("{v:#x}"),
        Some('u') => format!("{v}"),
        Some('t') => format!("{v:b}"),
        Some('o') => format!("{v:#o}"),
        Some('c') => format!("{} '{}'", v as u8, (v as u8).escape_ascii()),
        _ => format!("{}", v as i64),
    }
}

/// A name for an address: `<pkt+14>`, `<fp-8>`, `<ctx+4>`.
fn addr_label(at: &At<'_>, addr: u64, fp: u64) -> String {
    let (lo, hi) = at.stack();
    if addr >= lo && addr < hi {
        return format!("<fp-{}>", fp.wrapping_sub(addr) as i64);
    }
    for r in at.regions() {
        if addr >= r.start && addr < r.end.max(r.start + 1) {
            let name = match r.kind {
                RegionKind::Packet => "pkt",
                RegionKind::PacketMeta => "meta",
                RegionKind::Context => "ctx",
                RegionKind::MapValue => "map_value",
                _ => "mem",
            };
            return format!("<{name}+{}>", addr - r.start);
        }
    }
    String::new()
}

/// `x/NFU ADDR`: N units of U (b, h, w, g) in format F (x, d, u, c).
pub fn examine(fmt: &str, expr: &str, at: &At<'_>, fp: u64) -> Result<String, String> {
    let digits: String = fmt.chars().take_while(|c| c.is_ascii_digit()).collect();
    let count: usize = if digits.is_empty() {
        1
    } else {
        digits.parse().map_err(|_| "bad count")?
    };
    let mut f = 'x';
    let mut unit = 1usize;
    for c in fmt[digits.len()..].chars() {
        match c {
            'b' => unit = 1,
            'h' => unit = 2,
            'w' => unit = 4,
            'g' => unit = 8,
            'x' | 'd' | 'u' | 'c' => f = c,
            _ => return Err(format!("Undefined output format \"{c}\".")),
        }
    }
    if count > 4096 {
        return Err("at most 4096 units at a time".into());
    }
    let addr = eval(expr, at)?;
    let len = count * unit;
    let Some(bytes) = at.read(addr, len) else {
        return Err(format!(
            "Cannot access memory at address {addr:#x} ({len} bytes are not all readable by the program)"
        ));
    };
    let per_line = match unit {
        1 => 8,
        2 => 8,
        4 => 4,
        _ => 2,
    };
    let mut s = String::new();
    for (i, chunk) in bytes.chunks(unit).enumerate() {
        if i % per_line == 0 {
            if i > 0 {
                s.push('\n');
            }
            let a = addr + (i * unit) as u64;
            match addr_label(at, a, fp) {
                l if l.is_empty() => {
                    let _ = write!(s, "{a:#x}:");
                }
                l => {
                    let _ = write!(s, "{a:#x} {l}:");
                }
            }
        }
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        let v = u64::from_le_bytes(b);
        let text = match f {
            'd' => {
                let shift = 64 - 8 * unit as u32;
                format!("{}", ((v << shift) as i64) >> shift)
            }
            'u' => format!("{v}"),
            'c' => format!("{} '{}'", v as u8, (v as u8).escape_ascii()),
            _ => format!("{:#0w$x}", v, w = 2 + 2 * unit),
        };
        let _ = write!(s, "\t{text}");
    }
    s.push('\n');
    Ok(s)
}

/// An instruction as `prog dump xlated` prints it.
pub fn insn_text(p: &ProgObj, slot: usize) -> String {
    match decode_at(&p.xlated, slot) {
        Ok(d) => kernel_insn_line(&d, slot, &XlatedSymbols),
        Err(_) => "(not an instruction start)".into(),
    }
}

/// True if the instruction at `slot` is a call.
pub fn is_call(p: &ProgObj, slot: usize) -> bool {
    decode_at(&p.xlated, slot).is_ok_and(|d| matches!(d.op, Op::Call | Op::CallLocal))
}

const HELP: &str = "Commands (gdb's):
  break FILE:LINE | LINE | FUNCTION | *INSN   set a breakpoint (b)
  delete [N]            delete breakpoints      info breakpoints
  run / continue        start / go on (r, c)    kill, quit (q)
  step / next           one source line, into / over calls (s, n)
  stepi / nexti [N]     one instruction (si, ni)
  finish                until the current function returns
  info registers [rN]   registers, with the verifier's type of each (i r)
  print[/x] EXPR        rN, $pc, $fp, $pkt, $pkt_end, $ctx, numbers, + and - (p)
  x/NFU ADDR            memory: N units (b h w g) as F (x d u c), e.g. x/16xb $pkt
  display[/F] EXPR      print at every stop     undisplay [N]
  bt                    call stack, across BPF-to-BPF calls and tail calls
  list [LINE|FUNC]      source lines            info line, info frame
  info maps             the program's maps
  map lookup NAME key BYTES | map dump NAME
  directory DIR         where to look for source files
";

// ---- the command --------------------------------------------------------------

/// `prog debug PROG data_in FILE [ctx_in FILE] [-x SCRIPT | dap]`.
pub fn main(opts: &Opts, args: &[String]) -> i32 {
    let mut i = 0;
    let src = match crate::session::parse_source(args, &mut i) {
        Ok(s) => s,
        Err(e) => return print_error(opts, &e),
    };
    let (mut data_in, mut ctx_in, mut script, mut dap) = (None, None, None, false);
    while let Some(w) = args.get(i) {
        match w.as_str() {
            "dap" => {
                dap = true;
                i += 1;
                continue;
            }
            "data_in" | "ctx_in" | "-x" | "script" => {}
            other => return print_error(opts, &format!("unexpected argument '{other}'")),
        }
        let Some(v) = args.get(i + 1) else {
            return print_error(opts, &format!("expected a value after '{w}'"));
        };
        match w.as_str() {
            "data_in" => data_in = Some(v.clone()),
            "ctx_in" => ctx_in = Some(v.clone()),
            _ => script = Some(v.clone()),
        }
        i += 2;
    }
    let session = match Session::open(opts, &src) {
        Ok(s) => s,
        Err(e) => return print_error(opts, &e),
    };
    let attr = match crate::prog::test_attr(&session, data_in.as_deref(), ctx_in.as_deref()) {
        Ok(a) => a,
        Err(e) => return print_error(opts, &e),
    };
    let front = if dap {
        Front::Dap(Box::new(crate::dap::Dap::stdio()))
    } else if let Some(path) = &script {
        match std::fs::read_to_string(path) {
            Ok(t) => Front::Script {
                lines: t
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect(),
                next: 0,
            },
            Err(e) => return print_error(opts, &format!("failed to read script {path}: {e}")),
        }
    } else if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let mut ed = match rustyline::DefaultEditor::new() {
            Ok(e) => e,
            Err(e) => return print_error(opts, &format!("cannot set up the terminal: {e}")),
        };
        let history = std::env::var_os("HOME")
            .map(|h| std::path::PathBuf::from(h).join(".bpfvm_debug_history"));
        if let Some(h) = &history {
            let _ = ed.load_history(h);
        }
        Front::Terminal {
            ed: Box::new(ed),
            history,
            last: String::new(),
        }
    } else {
        Front::Stdin
    };
    let mut d = Debugger::new(session, attr, front);
    if let Front::Dap(_) = d.front {
        return crate::dap::serve(&mut d);
    }
    loop {
        d.mode = Mode::Entry;
        let (a, res, msg) = match d.run_once() {
            Ok(v) => v,
            Err(e) => return print_error(opts, &e),
        };
        if res.is_none() && d.prev.is_none() && !msg.is_empty() {
            // Refused before its first instruction (bad data_in or ctx_in).
            let m = msg
                .trim_end()
                .trim_start_matches("The program stopped with an error: ");
            return print_error(opts, &format!("cannot run the program: {m}"));
        }
        print!("{msg}");
        if a == Action::Quit {
            return 0;
        }
        if let Some(r) = res {
            println!("{}", exit_text(&d.main_prog(), &r));
        }
        match d.wait(None) {
            Action::Run => continue,
            _ => return 0,
        }
    }
}

/// `[program exited with return value 2 (XDP_PASS)]`, and what became of the packet.
pub fn exit_text(p: &ProgObj, r: &bpfvm::TestRunResult) -> String {
    let name = crate::prog::verdict_name(p.prog_type, r.retval);
    let mut s = format!("[program exited with return value {}", r.retval);
    if let Some(n) = name {
        let _ = write!(s, " ({n})");
    }
    s.push(']');
    if !r.data_out.is_empty() {
        let _ = write!(s, "\ndata_out: {} bytes", r.data_out.len());
    }
    s
}
