//! A program to look inside, in this process: `prog debug`, `prog profile`,
//! `prog replay` and `prog run ... coverage` run programs here, not in the
//! daemon, so that an observer can follow every instruction. The program comes
//! from an object file (`OBJ [prog NAME]`) or from the daemon (`id N`, `name`,
//! `tag`, `pinned`: its object, map contents and prog array slots are fetched
//! and loaded into a runtime of this process).
//!
//! Also here: the source view of a program (line info, function names, source
//! files) that the debugger, the profile and coverage share.

use crate::client;
use crate::proto::{self, Command, Target};
use crate::Opts;
use bpfvm::maps::ProgramArray;
use bpfvm::{LoadedObject, ProgFd, ProgObj, Runtime};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the program comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgSource {
    Daemon(Target),
    Object { path: String, prog: Option<String> },
}

/// Parses `id N | name NAME | tag TAG | pinned PATH | OBJ [prog NAME]`.
pub fn parse_source(args: &[String], i: &mut usize) -> Result<ProgSource, String> {
    let Some(w) = args.get(*i) else {
        return Err("expected PROG: id, name, tag, pinned or an object file".into());
    };
    if matches!(w.as_str(), "id" | "name" | "tag" | "pinned") {
        return crate::parse_target(args, i, "PROG").map(ProgSource::Daemon);
    }
    let path = w.clone();
    *i += 1;
    let mut prog = None;
    if args.get(*i).map(String::as_str) == Some("prog") {
        prog = Some(
            args.get(*i + 1)
                .ok_or("expected a program name after 'prog'")?
                .clone(),
        );
        *i += 2;
    }
    Ok(ProgSource::Object { path, prog })
}

/// A program loaded in this process, with the rest of its object.
pub struct Session {
    pub rt: Runtime,
    pub loaded: LoadedObject,
    pub prog: ProgFd,
    /// Where the object file is (a fetched one: where the daemon was given it),
    /// for finding source files.
    pub obj_dir: Option<PathBuf>,
    pub sources: SourceFiles,
}

impl Session {
    pub fn open(opts: &Opts, src: &ProgSource) -> Result<Session, String> {
        let rt = Runtime::with_config(crate::runtime_config());
        match src {
            ProgSource::Object { path, prog } => {
                let bytes = std::fs::read(path)
                    .map_err(|e| format!("failed to open object file {path}: {e}"))?;
                let obj = crate::daemon::parse_object(path, &bytes, None)?;
                let loaded = rt.load_object(&obj, None).map_err(|e| {
                    format!("failed to load {path}: {}", crate::render::load_error(&e))
                })?;
                let pick = match prog {
                    Some(n) => loaded.prog(n).cloned().ok_or_else(|| {
                        let names: Vec<&str> =
                            loaded.progs.iter().map(|(n, _)| n.as_str()).collect();
                        format!("{path}: no program '{n}' (it has: {})", names.join(", "))
                    })?,
                    None => match loaded.progs.as_slice() {
                        [(_, p)] => p.clone(),
                        [] => return Err(format!("{path}: the object has no programs")),
                        more => {
                            let names: Vec<&str> = more.iter().map(|(n, _)| n.as_str()).collect();
                            return Err(format!(
                                "{path} has {} programs ({}): choose one with 'prog NAME'",
                                more.len(),
                                names.join(", ")
                            ));
                        }
                    },
                };
                let obj_dir = Path::new(path).parent().map(client::absolute);
                Ok(Session {
                    rt,
                    loaded,
                    prog: pick,
                    obj_dir,
                    sources: SourceFiles::default(),
                })
            }
            ProgSource::Daemon(t) => {
                let resp = client::call(opts, Command::ProgFetch { target: t.clone() })?;
                if !resp.ok {
                    return Err(resp.error.unwrap_or_else(|| "the daemon refused".into()));
                }
                let d = resp.data.unwrap_or_default();
                let s = |k: &str| d.get(k).and_then(|v| v.as_str()).map(str::to_string);
                let file_name = s("file_name").unwrap_or_default();
                let bytes = proto::from_hex(&s("object_hex").unwrap_or_default())
                    .map_err(|e| e.to_string())?;
                let obj =
                    crate::daemon::parse_object(&file_name, &bytes, s("prog_type").as_deref())?;
                let target_btf = match s("target_btf_hex") {
                    Some(h) => Some(crate::daemon::target_btf_opt(
                        &proto::from_hex(&h).map_err(|e| e.to_string())?,
                    )?),
                    None => None,
                };
                let load = bpfvm::LoadOpts {
                    kconfig: crate::daemon::kconfig_opt(s("kconfig").as_deref()),
                    target_btf,
                    ..Default::default()
                };
                let loaded = rt.load_object_with(&obj, None, &load).map_err(|e| {
                    format!(
                        "failed to load {file_name}: {}",
                        crate::render::load_error(&e)
                    )
                })?;
                let name = s("prog").unwrap_or_default();
                let prog = loaded
                    .prog(&name)
                    .cloned()
                    .ok_or_else(|| format!("the daemon's object has no program '{name}'"))?;
                for m in d
                    .get("maps")
                    .and_then(|m| m.as_array())
                    .into_iter()
                    .flatten()
                {
                    let mname = m.get("name").and_then(|v| v.as_str()).unwrap_or("");
                    let Some(fd) = loaded.map(mname) else {
                        continue;
                    };
                    for e in m
                        .get("entries")
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten()
                    {
                        let hex = |i: usize| {
                            e.get(i)
                                .and_then(|v| v.as_str())
                                .and_then(|h| proto::from_hex(h).ok())
                        };
                        if let (Some(k), Some(v)) = (hex(0), hex(1)) {
                            let _ = rt.map_update_elem(fd, &k, &v, 0);
                        }
                    }
                    if let (Some(slots), Ok(pa)) = (
                        m.get("prog_slots").and_then(|v| v.as_array()),
                        ProgramArray::new(&rt, fd),
                    ) {
                        for i in 0..pa.len() {
                            let _ = pa.clear_index(i);
                        }
                        for sl in slots {
                            let key = sl.get(0).and_then(|v| v.as_u64()).unwrap_or(0) as u32;
                            let pn = sl.get(1).and_then(|v| v.as_str()).unwrap_or("");
                            if let Some(p) = loaded.prog(pn) {
                                let _ = pa.set(key, p, 0);
                            }
                        }
                    }
                }
                let obj_dir = Path::new(&file_name).parent().map(client::absolute);
                Ok(Session {
                    rt,
                    loaded,
                    prog,
                    obj_dir,
                    sources: SourceFiles::default(),
                })
            }
        }
    }

    /// The object's programs, for matching tail-called ones.
    pub fn program_by_vm(&self, vm: *const bpfvm::vm::VmProgram) -> Option<Arc<ProgObj>> {
        self.loaded
            .progs
            .iter()
            .map(|(_, p)| p.obj())
            .find(|p| std::ptr::eq(p.vm(), vm))
            .cloned()
    }
}

/// A source position.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Line {
    pub file: String,
    pub line: u32,
}

/// Line info and functions of one program, by slot.
pub struct SourceMap {
    /// (first slot, line, the line's text from BTF), sorted by slot.
    pub records: Vec<(usize, Line, String)>,
    /// (first slot, name), sorted.
    pub funcs: Vec<(usize, String)>,
    pub slots: usize,
}

impl SourceMap {
    pub fn new(p: &ProgObj) -> SourceMap {
        let mut records: Vec<(usize, Line, String)> = p
            .line_info
            .iter()
            .map(|l| {
                (
                    l.insn_idx as usize,
                    Line {
                        file: l.file_name.clone(),
                        line: l.line_num,
                    },
                    l.line.clone(),
                )
            })
            .collect();
        records.sort_by_key(|r| r.0);
        let mut funcs: Vec<(usize, String)> = p
            .func_info
            .iter()
            .map(|f| {
                let name = p
                    .btf
                    .as_ref()
                    .map(|b| b.btf.name(f.type_id).to_string())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| format!("func@{}", f.insn_idx));
                (f.insn_idx as usize, name)
            })
            .collect();
        if funcs.is_empty() {
            funcs.push((0, p.name.clone()));
        }
        funcs.sort_by_key(|f| f.0);
        SourceMap {
            records,
            funcs,
            slots: p.xlated.len(),
        }
    }

    /// The record covering `slot`.
    pub fn record(&self, slot: usize) -> Option<&(usize, Line, String)> {
        let i = self.records.partition_point(|r| r.0 <= slot);
        self.records.get(i.checked_sub(1)?)
    }

    pub fn line(&self, slot: usize) -> Option<&Line> {
        self.record(slot).map(|r| &r.1)
    }

    /// Index and name of the function `slot` is in.
    pub fn func(&self, slot: usize) -> (usize, &str) {
        let i = self
            .funcs
            .partition_point(|f| f.0 <= slot)
            .saturating_sub(1);
        (i, self.funcs.get(i).map_or("?", |f| f.1.as_str()))
    }

    /// Slots where a line record of `file:line` starts (`file` matched by its
    /// end, so `xdp.c` finds `src/xdp.c`).
    pub fn line_starts(&self, file: Option<&str>, line: u32) -> Vec<usize> {
        self.records
            .iter()
            .filter(|r| r.1.line == line && file.is_none_or(|f| same_file(&r.1.file, f)))
            .map(|r| r.0)
            .collect()
    }

    /// The text of a line as BTF has it, if a record carries it.
    pub fn btf_text(&self, l: &Line) -> Option<&str> {
        self.records
            .iter()
            .find(|r| &r.1 == l)
            .map(|r| r.2.as_str())
    }

    /// Distinct files, in order of first appearance.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for r in &self.records {
            if !v.contains(&r.1.file) {
                v.push(r.1.file.clone());
            }
        }
        v
    }
}

/// True if `path` (as line info has it) names `wanted` (a path or its tail).
pub fn same_file(path: &str, wanted: &str) -> bool {
    let p = path.trim_start_matches("./");
    let w = wanted.trim_start_matches("./");
    p == w || p.ends_with(&format!("/{w}")) || w.ends_with(&format!("/{p}"))
}

/// Source files read from disk, found next to the object or the current
/// directory (objects built with `-ffile-prefix-map=$PWD=.` name them
/// relative to the build directory).
#[derive(Default)]
pub struct SourceFiles {
    cache: HashMap<String, Option<(PathBuf, Vec<String>)>>,
    /// Directories to search (gdb's `directory`), besides the defaults.
    pub dirs: Vec<PathBuf>,
}

impl SourceFiles {
    /// Where `file` is on disk, if it can be found.
    pub fn locate(&mut self, file: &str, obj_dir: Option<&Path>) -> Option<PathBuf> {
        self.load(file, obj_dir).map(|(p, _)| p.clone())
    }

    /// Line `n` (from 1) of `file`.
    pub fn line(&mut self, file: &str, n: u32, obj_dir: Option<&Path>) -> Option<String> {
        let (_, lines) = self.load(file, obj_dir)?;
        lines.get((n as usize).checked_sub(1)?).cloned()
    }

    pub fn line_count(&mut self, file: &str, obj_dir: Option<&Path>) -> Option<usize> {
        self.load(file, obj_dir).map(|(_, l)| l.len())
    }

    fn load(&mut self, file: &str, obj_dir: Option<&Path>) -> Option<&(PathBuf, Vec<String>)> {
        if !self.cache.contains_key(file) {
            let mut cands: Vec<PathBuf> = Vec::new();
            let f = Path::new(file);
            if f.is_absolute() {
                cands.push(f.to_path_buf());
            } else {
                for d in &self.dirs {
                    cands.push(d.join(f));
                }
                cands.push(client::absolute(f));
                // The object in DIR/obj/x.o, built in DIR: try the object's
                // directory and its ancestors.
                let mut d = obj_dir.map(Path::to_path_buf);
                while let Some(dir) = d {
                    cands.push(dir.join(f));
                    d = dir.parent().map(Path::to_path_buf);
                }
            }
            let found = cands.into_iter().find_map(|p| {
                let text = std::fs::read_to_string(&p).ok()?;
                let p = std::fs::canonicalize(&p).unwrap_or(p);
                Some((p, text.lines().map(str::to_string).collect()))
            });
            self.cache.insert(file.to_string(), found);
        }
        self.cache.get(file).and_then(|o| o.as_ref())
    }
}
