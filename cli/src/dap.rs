//! `bpfvm prog debug ... dap`: the debugger served over the Debug Adapter
//! Protocol on stdin/stdout (each message a `Content-Length: N` header, a
//! blank line, N bytes of JSON), so VS Code and other DAP clients can set
//! breakpoints in the C source and step through the program. One thread (the
//! program), frames from BPF-to-BPF calls, scopes Registers (with the
//! verifier's types), Packet and Stack; `evaluate` runs the gdb-style
//! commands of [`crate::debug`] (`x/16xb $pkt`, `p r1`, `map dump NAME`).

use crate::debug::{Action, Debugger, Mode, Reason};
use bpfvm::vm::{At, RegionKind};
use bpfvm::ProgObj;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};

/// Variable references of the scopes (frame 0 only: other frames' registers
/// are not kept by the machine).
const REF_REGS: i64 = 1;
const REF_PACKET: i64 = 2;
const REF_STACK: i64 = 3;

pub struct Dap {
    input: Box<dyn BufRead>,
    output: Box<dyn Write>,
    seq: i64,
    stop_on_entry: bool,
    disconnected: bool,
}

impl Dap {
    pub fn stdio() -> Dap {
        Dap::new(
            Box::new(BufReader::new(std::io::stdin())),
            Box::new(std::io::stdout()),
        )
    }

    pub fn new(input: Box<dyn BufRead>, output: Box<dyn Write>) -> Dap {
        Dap {
            input,
            output,
            seq: 1,
            stop_on_entry: false,
            disconnected: false,
        }
    }

    /// The next message, or None at the end of the input (or a framing error).
    fn read(&mut self) -> Option<Value> {
        let mut len = None;
        loop {
            let mut line = String::new();
            if self.input.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end();
            if line.is_empty() {
                if len.is_some() {
                    break;
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("Content-Length:") {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let len = len?;
        if len > 16 << 20 {
            return None;
        }
        let mut body = vec![0u8; len];
        self.input.read_exact(&mut body).ok()?;
        serde_json::from_slice(&body).ok()
    }

    fn send(&mut self, mut v: Value) {
        v["seq"] = json!(self.seq);
        self.seq += 1;
        let body = v.to_string();
        let _ = write!(self.output, "Content-Length: {}\r\n\r\n{body}", body.len());
        let _ = self.output.flush();
    }

    fn respond(&mut self, req: &Value, body: Value) {
        self.send(json!({
            "type": "response",
            "request_seq": req["seq"],
            "success": true,
            "command": req["command"],
            "body": body,
        }));
    }

    fn fail(&mut self, req: &Value, msg: &str) {
        self.send(json!({
            "type": "response",
            "request_seq": req["seq"],
            "success": false,
            "command": req["command"],
            "message": msg,
        }));
    }

    fn event(&mut self, event: &str, body: Value) {
        self.send(json!({ "type": "event", "event": event, "body": body }));
    }
}

fn dap(d: &mut Debugger) -> &mut Dap {
    match &mut d.front {
        crate::debug::Front::Dap(x) => x,
        _ => unreachable!("the DAP front end serves only DAP sessions"),
    }
}

/// Requests that need no running program. Returns false for requests it does
/// not know.
fn common(d: &mut Debugger, req: &Value) -> bool {
    let cmd = req["command"].as_str().unwrap_or("");
    let args = &req["arguments"];
    match cmd {
        "initialize" => {
            dap(d).respond(
                req,
                json!({
                    "supportsConfigurationDoneRequest": true,
                    "supportsEvaluateForHovers": true,
                    "supportsFunctionBreakpoints": true,
                    "supportsSteppingGranularity": true,
                    "supportsTerminateRequest": true,
                }),
            );
            dap(d).event("initialized", json!({}));
        }
        "launch" | "attach" => {
            dap(d).stop_on_entry = args["stopOnEntry"].as_bool().unwrap_or(false);
            dap(d).respond(req, json!({}));
        }
        "setBreakpoints" => {
            let path = args["source"]["path"]
                .as_str()
                .or(args["source"]["name"].as_str())
                .unwrap_or("")
                .to_string();
            let tag = format!("dap:{path}");
            // Setting a source's breakpoints replaces the ones it had.
            d.bps.retain(|b| !b.spec.starts_with(&tag));
            let mut out = Vec::new();
            for b in args["breakpoints"].as_array().into_iter().flatten() {
                let line = b["line"].as_u64().unwrap_or(0);
                match d.try_add_breakpoint(&format!("{path}:{line}"), None) {
                    Ok(id) => {
                        let mut at = line;
                        if let Some(bp) = d.bps.iter_mut().find(|x| x.id == id) {
                            bp.spec = format!("{tag}:{line}");
                            // Moved to the next line with code, as gdb does.
                            at = bp.line.as_ref().map_or(line, |l| l.line as u64);
                        }
                        out.push(json!({ "id": id, "verified": true, "line": at }));
                    }
                    Err(e) => out.push(json!({
                        "verified": false, "line": line, "message": e.trim_end(),
                    })),
                }
            }
            dap(d).respond(req, json!({ "breakpoints": out }));
        }
        "setFunctionBreakpoints" => {
            d.bps.retain(|b| !b.spec.starts_with("dapfn:"));
            let mut out = Vec::new();
            for b in args["breakpoints"].as_array().into_iter().flatten() {
                let name = b["name"].as_str().unwrap_or("");
                match d.try_add_breakpoint(name, None) {
                    Ok(id) => {
                        if let Some(bp) = d.bps.iter_mut().find(|x| x.id == id) {
                            bp.spec = format!("dapfn:{name}");
                        }
                        out.push(json!({ "id": id, "verified": true }));
                    }
                    Err(e) => out.push(json!({ "verified": false, "message": e.trim_end() })),
                }
            }
            dap(d).respond(req, json!({ "breakpoints": out }));
        }
        "setExceptionBreakpoints" => dap(d).respond(req, json!({})),
        "threads" => {
            let name = d.main_prog().name.clone();
            dap(d).respond(req, json!({ "threads": [{ "id": 1, "name": name }] }));
        }
        "source" => {
            let path = args["source"]["path"].as_str().unwrap_or("");
            match std::fs::read_to_string(path) {
                Ok(t) => dap(d).respond(req, json!({ "content": t })),
                Err(e) => dap(d).fail(req, &format!("cannot read {path}: {e}")),
            }
        }
        _ => return false,
    }
    true
}

/// Serves a whole session: configuration, the run, requests after it.
pub fn serve(d: &mut Debugger) -> i32 {
    // Configuration: until configurationDone.
    loop {
        let Some(req) = dap(d).read() else { return 0 };
        let cmd = req["command"].as_str().unwrap_or("").to_string();
        if cmd == "configurationDone" {
            dap(d).respond(&req, json!({}));
            break;
        }
        if cmd == "disconnect" || cmd == "terminate" {
            dap(d).respond(&req, json!({}));
            return 0;
        }
        if !common(d, &req) {
            dap(d).fail(
                &req,
                &format!("'{cmd}' is not possible before configurationDone"),
            );
        }
    }
    d.mode = if dap(d).stop_on_entry {
        Mode::Entry
    } else {
        Mode::Continue
    };
    let prog = d.main_prog();
    match d.run_once() {
        Ok((_, Some(r), _)) => {
            let text = crate::debug::exit_text(&prog, &r);
            dap(d).event(
                "output",
                json!({ "category": "console", "output": format!("{text}\n") }),
            );
            dap(d).event("exited", json!({ "exitCode": r.retval }));
        }
        Ok((_, None, msg)) => {
            let msg = if msg.is_empty() {
                "[program killed]\n".to_string()
            } else {
                msg
            };
            dap(d).event("output", json!({ "category": "stderr", "output": msg }));
            dap(d).event("exited", json!({ "exitCode": 1 }));
        }
        Err(e) => {
            dap(d).event("output", json!({ "category": "stderr", "output": e }));
        }
    }
    dap(d).event("terminated", json!({}));
    if dap(d).disconnected {
        return 0;
    }
    // After the run: answer until the client disconnects.
    while let Some(req) = dap(d).read() {
        let cmd = req["command"].as_str().unwrap_or("").to_string();
        if cmd == "disconnect" || cmd == "terminate" {
            dap(d).respond(&req, json!({}));
            return 0;
        }
        if !common(d, &req) {
            dap(d).fail(&req, "the program has exited");
        }
    }
    0
}

/// Called by the observer when the program stops: reports it, then answers
/// requests until one resumes the program.
pub fn stopped(d: &mut Debugger, at: &At<'_>, p: &ProgObj, reason: &Reason) -> Action {
    let (why, bp) = match reason {
        Reason::Entry => ("entry", None),
        Reason::Breakpoint(id) => ("breakpoint", Some(*id)),
        Reason::Step | Reason::Finish => ("step", None),
    };
    let mut body = json!({ "reason": why, "threadId": 1, "allThreadsStopped": true });
    if let Some(id) = bp {
        body["hitBreakpointIds"] = json!([id]);
    }
    dap(d).event("stopped", body);
    loop {
        let Some(req) = dap(d).read() else {
            dap(d).disconnected = true;
            return Action::Kill;
        };
        let cmd = req["command"].as_str().unwrap_or("").to_string();
        let args = req["arguments"].clone();
        match cmd.as_str() {
            "stackTrace" => {
                let frames = stack_frames(d, at, p);
                let n = frames.len();
                dap(d).respond(&req, json!({ "stackFrames": frames, "totalFrames": n }));
            }
            "scopes" => {
                let frame = args["frameId"].as_i64().unwrap_or(0);
                let scopes = if frame == 0 {
                    json!([
                        { "name": "Registers", "variablesReference": REF_REGS, "expensive": false },
                        { "name": "Packet", "variablesReference": REF_PACKET, "expensive": false },
                        { "name": "Stack", "variablesReference": REF_STACK, "expensive": false },
                    ])
                } else {
                    json!([])
                };
                dap(d).respond(&req, json!({ "scopes": scopes }));
            }
            "variables" => {
                let vars = variables(d, at, p, args["variablesReference"].as_i64().unwrap_or(0));
                dap(d).respond(&req, json!({ "variables": vars }));
            }
            "evaluate" => {
                let expr = args["expression"].as_str().unwrap_or("").to_string();
                // A bare register or symbol reads as `print`.
                let line = if crate::debug::eval(&expr, at).is_ok() && !expr.contains(' ') {
                    format!("print/x {expr}")
                } else {
                    expr.clone()
                };
                let (a, out) = d.command(&line, Some(at));
                if a == Action::Stay {
                    let result = out
                        .trim_end()
                        .split_once(" = ")
                        .filter(|_| line.starts_with("print"))
                        .map_or(out.trim_end().to_string(), |(_, v)| v.to_string());
                    dap(d).respond(&req, json!({ "result": result, "variablesReference": 0 }));
                } else {
                    dap(d).fail(
                        &req,
                        "use the debugger's step and continue buttons to run the program",
                    );
                }
            }
            "continue" => {
                d.mode = Mode::Continue;
                dap(d).respond(&req, json!({ "allThreadsContinued": true }));
                return Action::Resume;
            }
            "next" | "stepIn" => {
                let instruction = args["granularity"].as_str() == Some("instruction");
                let from = d
                    .srcs
                    .get(&p.id)
                    .and_then(|s| s.line(at.slot).cloned())
                    .map(|l| (p.id, l));
                d.mode = if instruction {
                    Mode::Insn {
                        left: 1,
                        over: cmd == "next",
                        depth: at.depth,
                    }
                } else {
                    Mode::Line {
                        from,
                        depth: at.depth,
                        over: cmd == "next",
                    }
                };
                dap(d).respond(&req, json!({}));
                return Action::Resume;
            }
            "stepOut" => {
                d.mode = if at.depth == 0 {
                    Mode::Continue
                } else {
                    Mode::Finish { depth: at.depth }
                };
                dap(d).respond(&req, json!({}));
                return Action::Resume;
            }
            "pause" => dap(d).respond(&req, json!({})),
            "disconnect" | "terminate" => {
                dap(d).respond(&req, json!({}));
                dap(d).disconnected = true;
                return Action::Kill;
            }
            _ => {
                if !common(d, &req) {
                    dap(d).fail(&req, &format!("'{cmd}' is not supported"));
                }
            }
        }
    }
}

fn source_json(d: &mut Debugger, file: &str) -> Value {
    let dir = d.session.obj_dir.clone();
    let path = d
        .session
        .sources
        .locate(file, dir.as_deref())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string());
    let name = file.rsplit('/').next().unwrap_or(file).to_string();
    json!({ "name": name, "path": path })
}

fn frame_json(d: &mut Debugger, id: usize, p: &ProgObj, slot: usize) -> Value {
    let func = d.src(p).func(slot).1.to_string();
    let line = d.src(p).line(slot).cloned();
    let mut f = json!({
        "id": id,
        "name": func,
        "line": line.as_ref().map_or(0, |l| l.line),
        "column": 1,
        "instructionPointerReference": slot.to_string(),
    });
    if let Some(l) = line {
        f["source"] = source_json(d, &l.file);
    }
    f
}

fn stack_frames(d: &mut Debugger, at: &At<'_>, p: &ProgObj) -> Vec<Value> {
    let mut out = vec![frame_json(d, 0, p, at.slot)];
    for (k, cs) in at.callers.iter().rev().enumerate() {
        let Some(origin) = at.origin_of(cs.prog) else {
            continue;
        };
        let Some(cp) = d.session.program_by_vm(origin) else {
            continue;
        };
        out.push(frame_json(d, k + 1, &cp, cs.slot));
    }
    out
}

fn variables(d: &mut Debugger, at: &At<'_>, p: &ProgObj, r: i64) -> Vec<Value> {
    let mut out = Vec::new();
    match r {
        REF_REGS => {
            for i in 0..11 {
                let v = at.regs[i];
                let ty = d.reg_state(p, at.slot, i);
                let value = match &ty {
                    Some(t) => format!("{v:#x} ({}) {t}", v as i64),
                    None => format!("{v:#x} ({})", v as i64),
                };
                out.push(json!({
                    "name": format!("r{i}"),
                    "value": value,
                    "type": ty.unwrap_or_default(),
                    "variablesReference": 0,
                }));
            }
        }
        REF_PACKET => {
            if let Some(pk) = at.regions().iter().find(|x| x.kind == RegionKind::Packet) {
                let len = (pk.end - pk.start) as usize;
                if let Some(bytes) = at.read(pk.start, len) {
                    for (i, row) in bytes.chunks(16).enumerate() {
                        let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
                        out.push(json!({
                            "name": format!("{:04x}", i * 16),
                            "value": hex.join(" "),
                            "variablesReference": 0,
                        }));
                    }
                }
            }
        }
        REF_STACK => {
            let fp = at.regs[10];
            for k in 1..=64u64 {
                let a = fp - 8 * k;
                if let Some(b) = at.read(a, 8) {
                    let v = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                    out.push(json!({
                        "name": format!("fp-{}", 8 * k),
                        "value": format!("{v:#018x}"),
                        "variablesReference": 0,
                    }));
                }
            }
        }
        _ => {}
    }
    out
}
