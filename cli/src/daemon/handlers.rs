//! One function per command. Reads take no daemon lock (the runtime locks per
//! object); changes take the catalog's and the store's locks only around the
//! bookkeeping and the journal append, and are acknowledged once journaled.
//! A change that cannot be saved is undone and reported as an error.

use super::reads;
use super::store::{Entry, SavedValue, Source, Store};
use super::{lock, Catalog, Daemon, Record};
use crate::proto::{self, Command, Format, Listing, Request, Response, Target};
use crate::render;
use crate::safefs::check_pin_path;
use bpfvm::maps::{MapType, ProgramArray, RawMap};
use bpfvm::{
    BpfCmd, BpfReply, MapCreateAttr, MapObj, ObjKind, Object, Pinned, ProgObj, TestRunAttr,
};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// The longest a trace read may block.
const MAX_TRACE_WAIT_MS: u64 = 5000;

fn persist_err(e: &super::store::StoreError) -> String {
    format!("not saved: {}", render::error_chain(e))
}

/// A pin planned by a command: where, and which object of the record.
struct PlannedPin {
    kind: &'static str,
    name: String,
    path: String,
    parts: Vec<String>,
}

impl Daemon {
    /// Dispatches one request. `cancel` stops a `prog run` (the client went away).
    pub(crate) fn handle(&self, req: Request, cancel: Arc<AtomicBool>) -> Response {
        self.sync_pins();
        // The format is the client's business: replies are data, or empty. (The
        // netglue functions take one for their own callers: plain here, where
        // they print nothing; the client prints JSON's `null`.)
        let f = Format::Plain;
        let r = match req.cmd {
            Command::Ping | Command::Shutdown => Ok(Response::out(String::new())),
            Command::TraceRead { wait_ms } => Ok(self.trace_read(wait_ms)),
            Command::MapEventPipe {
                target,
                cpu,
                index,
                wait_ms,
                close,
            } => self.event_pipe(&target, cpu, index, wait_ms, close),
            Command::ProgLoad {
                file_name,
                object_hex,
                path,
                all,
                prog_type,
                pinmaps,
                prog_flags,
                unprivileged,
                kconfig,
                target_btf_hex,
            } => self.prog_load(
                &file_name,
                &object_hex,
                &path,
                all,
                prog_type,
                pinmaps,
                bpfvm::LoadOpts {
                    log_level: 1,
                    unprivileged,
                    prog_flags,
                    kconfig: kconfig_opt(kconfig.as_deref()),
                    ..Default::default()
                },
                kconfig,
                target_btf_hex.as_deref(),
            ),
            Command::ProgShow { target } => self.prog_show(target.as_ref()),
            Command::ProgDumpXlated {
                target,
                opcodes,
                linum,
                visual,
            } => self.prog_xlated(&target, opcodes, linum, visual),
            Command::ProgDumpJited {
                target,
                opcodes,
                linum,
                arch,
            } => self.prog_jited(&target, opcodes, linum, &arch),
            Command::ProgRun {
                target,
                data_in_hex,
                ctx_in_hex,
                repeat,
                timeout_ms,
                coverage,
            } => self.prog_run(
                &target,
                &data_in_hex,
                ctx_in_hex.as_deref(),
                repeat,
                timeout_ms,
                coverage,
                cancel,
            ),
            Command::ProgFetch { target } => self.prog_fetch(&target),
            Command::ProgPin { target, path } => self
                .prog_one(&target)
                .and_then(|p| self.pin_existing("prog", p.id, &path)),
            Command::MapShow { target } => self.map_show(target.as_ref()),
            Command::MapDump { target } => self
                .map_one(&target)
                .and_then(|m| reads::map_dump(&self.rt, &m))
                .map(|l| Response::listing(&l)),
            Command::MapOp { op, target, args } => self
                .map_one(&target)
                .and_then(|m| self.map_op(&m, &op, &args)),
            Command::MapCreate {
                path,
                map_type,
                key,
                value,
                entries,
                name,
                flags,
                inner_map,
            } => self.map_create(
                &path,
                &map_type,
                key,
                value,
                entries,
                &name,
                flags,
                inner_map.as_ref(),
            ),
            Command::MapPin { target, path } => self
                .map_one(&target)
                .and_then(|m| self.pin_existing("map", m.id, &path)),
            Command::MapFreeze { target } => {
                self.map_one(&target).and_then(|m| self.map_freeze(&m))
            }
            Command::NetAttach {
                target,
                dev,
                overwrite,
            } => self
                .prog_one(&target)
                .and_then(|p| self.net_attach(&p, &dev, overwrite, f)),
            Command::NetDetach { dev } => self.net_detach(&dev, f),
            Command::NetList { dev } => Ok(Response::listing(&self.net.list(dev.as_deref()))),
            Command::BtfShow { id } => reads::btf_show(&self.rt, id).map(|l| Response::listing(&l)),
            Command::BtfDump {
                id,
                prog,
                map,
                c,
                map_types,
            } => self.btf_dump(id, prog.as_ref(), map.as_ref(), c, map_types.as_deref()),
        };
        r.unwrap_or_else(Response::err)
    }

    fn trace_read(&self, wait_ms: u64) -> Response {
        let from = *lock(&self.trace_next);
        let wait = Duration::from_millis(wait_ms.min(MAX_TRACE_WAIT_MS));
        let (lines, next) = self.rt.trace_pipe().read_from(from, wait);
        {
            let mut n = lock(&self.trace_next);
            if *n < next {
                *n = next;
            }
        }
        Response::data(serde_json::json!({ "lines": lines }))
    }

    /// `map event_pipe`: readers at the slots asked for (every CPU's own by
    /// default, as bpftool opens them), then what they collected.
    fn event_pipe(
        &self,
        target: &Target,
        cpu: Option<u32>,
        index: Option<u32>,
        wait_ms: u64,
        close: bool,
    ) -> Result<Response, String> {
        let m = self.map_one(target)?;
        let Some(pea) = m.perf_event_array() else {
            return Err("map is not a perf event array".into());
        };
        let slots: Vec<(u32, u32)> = match (cpu, index) {
            (Some(c), Some(i)) => vec![(i, c)],
            _ => {
                let n = (self.rt.ncpus() as u32).min(m.attr().max_entries);
                (0..n).map(|c| (c, c)).collect()
            }
        };
        if close {
            for &(i, _) in &slots {
                pea.close(i);
            }
            return Ok(Response::out(String::new()));
        }
        for &(i, c) in &slots {
            pea.open(i, c)
                .map_err(|e| format!("failed to open perf event: {e}"))?;
        }
        let deadline =
            std::time::Instant::now() + Duration::from_millis(wait_ms.min(MAX_TRACE_WAIT_MS));
        let mut events = Vec::new();
        loop {
            for &(i, c) in &slots {
                for r in pea.read(i) {
                    events.push(serde_json::json!({
                        "cpu": c,
                        "index": i,
                        "timestamp": r.time_ns,
                        "data": crate::proto::to_hex(&r.data),
                    }));
                }
            }
            if !events.is_empty() || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Response::data(serde_json::json!({ "events": events })))
    }

    // ---- pins ----------------------------------------------------------------

    /// A pin path as given by the user: bpffs-style, or the file under `STATE/fs/`.
    fn pin_name(&self, p: &str) -> String {
        let root = self.state.path().join("fs");
        let root = root.to_string_lossy();
        match p.strip_prefix(root.as_ref()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                format!("/{}", rest.trim_start_matches('/'))
            }
            _ => p.to_string(),
        }
    }

    /// Checks a pin path (lexically, as the kernel: under /sys/fs/bpf, no `..`)
    /// and that nothing is pinned or planted there.
    fn plan_pin(&self, kind: &'static str, name: &str, path: &str) -> Result<PlannedPin, String> {
        let (norm, parts) = check_pin_path(&self.pin_name(path)).map_err(|e| e.to_string())?;
        if self.rt.pinned(&norm).is_ok() || self.fs.exists(&parts) {
            return Err(format!("can't pin the object ({norm}): File exists"));
        }
        Ok(PlannedPin {
            kind,
            name: name.to_string(),
            path: norm,
            parts,
        })
    }

    /// Makes the pins' files and pins the objects; on failure undoes the ones
    /// made. Returns the directories made, for [`Daemon::undo_pins`].
    fn make_pins(&self, pins: &[(PlannedPin, Pinned)]) -> Result<Vec<String>, String> {
        let mut dirs = Vec::new();
        for (i, (p, obj)) in pins.iter().enumerate() {
            let (what, id) = match obj {
                Pinned::Prog(x) => ("prog", x.id()),
                Pinned::Map(x) => ("map", x.id()),
            };
            let made = self
                .fs
                .create(&p.parts, &format!("bpfvm {what} id {id}\n"))
                .map_err(|e| {
                    let exists = matches!(&e, crate::safefs::SafeFsError::Io { source, .. }
                        if source.kind() == std::io::ErrorKind::AlreadyExists);
                    if exists {
                        format!("can't pin the object ({}): File exists", p.path)
                    } else {
                        format!(
                            "can't pin the object ({}): {}",
                            p.path,
                            render::error_chain(&e)
                        )
                    }
                })
                .and_then(|made| {
                    dirs.extend(made);
                    self.rt.pin(&p.path, obj.clone()).map_err(|e| {
                        self.fs.remove(&p.parts);
                        format!(
                            "can't pin the object ({}): {}",
                            p.path,
                            render::error_chain(&e)
                        )
                    })
                });
            if let Err(e) = made {
                self.undo_pins(&pins[..i], &dirs);
                return Err(e);
            }
        }
        Ok(dirs)
    }

    /// Removes pins made by [`Daemon::make_pins`], and the directories it made.
    fn undo_pins(&self, pins: &[(PlannedPin, Pinned)], dirs: &[String]) {
        for (p, _) in pins {
            let _ = self.rt.unpin(&p.path);
            self.fs.remove(&p.parts);
        }
        self.fs.remove_dirs_made(dirs);
    }

    /// `prog pin` / `map pin`: a second pin of a live object.
    fn pin_existing(&self, kind: &'static str, id: u32, path: &str) -> Result<Response, String> {
        let cat = lock(&self.cat);
        let (record, name) = if kind == "prog" {
            cat.prog_ref(id)
        } else {
            cat.map_ref(id)
        }
        .ok_or_else(|| format!("get by id ({id}): No such file or directory"))?;
        let obj = if kind == "prog" {
            match self.rt.bpf(BpfCmd::ProgGetFdById { id }) {
                Ok(BpfReply::Prog(fd)) => Pinned::Prog(fd),
                _ => return Err(format!("get by id ({id}): No such file or directory")),
            }
        } else {
            match self.rt.bpf(BpfCmd::MapGetFdById { id }) {
                Ok(BpfReply::Map(fd)) => Pinned::Map(fd),
                _ => return Err(format!("get map by id ({id}): No such file or directory")),
            }
        };
        let plan = self.plan_pin(kind, &name, path)?;
        let entry = Entry::Pin {
            record,
            kind: kind.into(),
            name,
            path: plan.path.clone(),
        };
        let pins = [(plan, obj)];
        let mut store = lock(&self.store);
        let dirs = self.make_pins(&pins)?;
        if let Err(e) = store.append(&[entry]) {
            self.undo_pins(&pins, &dirs);
            return Err(persist_err(&e));
        }
        self.after_change(&cat, &mut store);
        Ok(Response::out(String::new()))
    }

    /// After a journaled change: compact when the journal has grown enough.
    fn after_change(&self, cat: &Catalog, store: &mut Store) {
        if store.wants_compaction() {
            if let Err(e) = self.compact(cat, store) {
                eprintln!("warning: {}", render::error_chain(&e));
            }
        }
    }

    // ---- object lookup -------------------------------------------------------

    fn progs_matching(&self, t: &Target) -> Result<Vec<Arc<ProgObj>>, String> {
        let all = || self.rt.progs();
        let v: Vec<Arc<ProgObj>> = match t {
            Target::Id(id) => {
                return self
                    .rt
                    .prog_by_id(*id)
                    .map(|p| vec![p])
                    .map_err(|_| format!("get by id ({id}): No such file or directory"))
            }
            Target::Name(n) => all()
                .into_iter()
                .filter(|p| name_matches(&p.name, n))
                .collect(),
            Target::Tag(tag) => all()
                .into_iter()
                .filter(|p| bpfvm::tag::tag_hex(&p.tag).eq_ignore_ascii_case(tag))
                .collect(),
            Target::Pinned(path) => {
                let name = self.pin_name(path);
                return match self.rt.pinned(&name) {
                    Ok(Pinned::Prog(p)) => Ok(vec![p.obj().clone()]),
                    Ok(Pinned::Map(_)) => {
                        Err(format!("incorrect object type: map pinned at {name}"))
                    }
                    Err(_) => Err(format!("bpf obj get ({name}): No such file or directory")),
                };
            }
        };
        if v.is_empty() {
            return Err(format!("no program matches {t}"));
        }
        Ok(v)
    }

    fn prog_one(&self, t: &Target) -> Result<Arc<ProgObj>, String> {
        let mut v = self.progs_matching(t)?;
        if v.len() > 1 {
            return Err(format!("{} programs match {t}; name one by id", v.len()));
        }
        Ok(v.remove(0))
    }

    fn maps_matching(&self, t: &Target) -> Result<Vec<Arc<MapObj>>, String> {
        let v: Vec<Arc<MapObj>> = match t {
            Target::Id(id) => {
                return self
                    .rt
                    .map_by_id(*id)
                    .map(|m| vec![m])
                    .map_err(|_| format!("get map by id ({id}): No such file or directory"))
            }
            Target::Name(n) => self
                .rt
                .maps()
                .into_iter()
                .filter(|m| name_matches(&m.name, n))
                .collect(),
            Target::Tag(_) => return Err("maps have no tag: use id, name or pinned".into()),
            Target::Pinned(path) => {
                let name = self.pin_name(path);
                return match self.rt.pinned(&name) {
                    Ok(Pinned::Map(m)) => Ok(vec![m.obj().clone()]),
                    Ok(Pinned::Prog(_)) => {
                        Err(format!("incorrect object type: program pinned at {name}"))
                    }
                    Err(_) => Err(format!("bpf obj get ({name}): No such file or directory")),
                };
            }
        };
        if v.is_empty() {
            return Err(format!("no map matches {t}"));
        }
        Ok(v)
    }

    fn map_one(&self, t: &Target) -> Result<Arc<MapObj>, String> {
        let mut v = self.maps_matching(t)?;
        if v.len() > 1 {
            return Err(format!("{} maps match {t}; name one by id", v.len()));
        }
        Ok(v.remove(0))
    }

    /// `value id N` / `value pinned P` for prog arrays and maps of maps.
    fn resolve_value_target(&self, t: &Target) -> Result<u32, String> {
        if let Ok(p) = self.prog_one(t) {
            return Ok(p.id);
        }
        self.map_one(t).map(|m| m.id)
    }

    // ---- reads ---------------------------------------------------------------

    fn btf_dump(
        &self,
        id: Option<u32>,
        prog: Option<&Target>,
        map: Option<&Target>,
        c: bool,
        map_types: Option<&str>,
    ) -> Result<Response, String> {
        // bpftool shows only a map's key and value types unless `all`.
        let mut roots = None;
        let btf = if let Some(id) = id {
            self.rt
                .btf_by_id(id)
                .map_err(|_| format!("get btf by id ({id}): No such file or directory"))?
        } else if let Some(t) = prog {
            let p = self.prog_one(t)?;
            p.btf
                .clone()
                .ok_or_else(|| format!("program {} has no BTF", p.id))?
        } else if let Some(t) = map {
            let m = self.map_one(t)?;
            let a = m.attr();
            let (k, v) = (a.btf_key_type_id, a.btf_value_type_id);
            roots = match map_types.unwrap_or("kv") {
                "key" => Some(vec![k]),
                "value" => Some(vec![v]),
                "all" => None,
                _ => Some(vec![k, v]),
            };
            m.btf.clone().ok_or_else(|| {
                "can't get BTF object by id (0): No such file or directory".to_string()
            })?
        } else {
            return Err("expected 'id', 'prog' or 'map'".into());
        };
        Ok(Response::listing(&reads::btf_dump(&btf.btf, roots, c)))
    }

    /// `prog dump xlated`: the listing as data (`visual`: the client draws it).
    fn prog_xlated(
        &self,
        target: &Target,
        opcodes: bool,
        linum: bool,
        visual: bool,
    ) -> Result<Response, String> {
        let p = self.prog_one(target)?;
        Ok(Response::listing(&reads::xlated(
            &p, opcodes, linum, visual,
        )))
    }

    fn prog_jited(
        &self,
        target: &Target,
        opcodes: bool,
        linum: bool,
        arch: &str,
    ) -> Result<Response, String> {
        let p = self.prog_one(target)?;
        reads::jited(&p, arch, opcodes, linum).map(|l| Response::listing(&l))
    }

    fn prog_show(&self, t: Option<&Target>) -> Result<Response, String> {
        let (progs, single) = match t {
            Some(t) => {
                let v = self.progs_matching(t)?;
                let single = v.len() == 1;
                (v, single)
            }
            None => (self.rt.progs(), false),
        };
        let items: Vec<bpfvm::ProgInfo> = progs
            .iter()
            .filter_map(|p| {
                match self.rt.bpf(BpfCmd::ObjGetInfoById {
                    kind: ObjKind::Prog,
                    id: p.id,
                }) {
                    Ok(BpfReply::ProgInfo(i)) => Some(i),
                    _ => None,
                }
            })
            .collect();
        Ok(Response::listing(&Listing::Progs { single, items }))
    }

    fn map_show(&self, t: Option<&Target>) -> Result<Response, String> {
        let (maps, single) = match t {
            Some(t) => {
                let v = self.maps_matching(t)?;
                let single = v.len() == 1;
                (v, single)
            }
            None => (self.rt.maps(), false),
        };
        let items: Vec<bpfvm::MapInfo> = maps
            .iter()
            .filter_map(|m| {
                match self.rt.bpf(BpfCmd::ObjGetInfoById {
                    kind: ObjKind::Map,
                    id: m.id,
                }) {
                    Ok(BpfReply::MapInfo(i)) => Some(i),
                    _ => None,
                }
            })
            .collect();
        Ok(Response::listing(&Listing::Maps { single, items }))
    }

    // ---- changes ---------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn prog_load(
        &self,
        file_name: &str,
        object_hex: &str,
        path: &str,
        all: bool,
        prog_type: Option<String>,
        pinmaps: Option<String>,
        mut load_opts: bpfvm::LoadOpts,
        kconfig: Option<String>,
        target_btf_hex: Option<&str>,
    ) -> Result<Response, String> {
        let bytes = proto::from_hex(object_hex).map_err(|e| e.to_string())?;
        let target_btf = match target_btf_hex {
            Some(h) => Some(proto::from_hex(h).map_err(|e| e.to_string())?),
            None => None,
        };
        if let Some(raw) = &target_btf {
            load_opts.target_btf = Some(target_btf_opt(raw)?);
        }
        let obj = parse_object(file_name, &bytes, prog_type.as_deref())?;
        // bpftool: `load` needs a program; `loadall` of an object with only
        // maps creates them (and pins them under `pinmaps`), pinning no program.
        if obj.programs.is_empty() && !all {
            return Err("object file doesn't contain any bpf program".into());
        }
        // Pin paths are checked before anything is loaded.
        let base = self.pin_name(path);
        check_pin_path(&base).map_err(|e| e.to_string())?;
        if let Some(dir) = &pinmaps {
            check_pin_path(&self.pin_name(dir)).map_err(|e| e.to_string())?;
        }
        let (loaded, made) = self
            .values
            .with_files(|| self.rt.load_object_with(&obj, None, &load_opts));
        let mut files = super::values::FilesGuard::new(&self.values, made);
        let loaded = loaded
            .map_err(|e| format!("failed to load object file: {}", render::load_error(&e)))?;
        let map_files = files.assign(
            loaded
                .maps
                .iter()
                .map(|(n, m)| (n.as_str(), m.obj().as_ref())),
        );
        let mut cat = lock(&self.cat);
        let mut planned: Vec<(PlannedPin, Pinned)> = Vec::new();
        let mut push = |p: PlannedPin, o: Pinned| -> Result<(), String> {
            if planned.iter().any(|(q, _)| q.path == p.path) {
                return Err(format!("can't pin the object ({}): File exists", p.path));
            }
            planned.push((p, o));
            Ok(())
        };
        if all {
            for (name, fd) in &loaded.progs {
                let p = format!("{}/{}", base.trim_end_matches('/'), name);
                push(self.plan_pin("prog", name, &p)?, Pinned::Prog(fd.clone()))?;
            }
        } else if let Some((name, fd)) = loaded.progs.first() {
            push(
                self.plan_pin("prog", name, &base)?,
                Pinned::Prog(fd.clone()),
            )?;
        }
        if let Some(dir) = &pinmaps {
            let dir = self.pin_name(dir);
            for (name, fd) in &loaded.maps {
                let p = format!("{}/{}", dir.trim_end_matches('/'), name.replace('.', "_"));
                push(self.plan_pin("map", name, &p)?, Pinned::Map(fd.clone()))?;
            }
        }
        let id = cat.next_record;
        cat.next_record += 1;
        let stored = format!("obj-{id}.o");
        let mut store = lock(&self.store);
        store
            .put_object(&stored, &bytes)
            .map_err(|e| persist_err(&e))?;
        let stored_btf = format!("obj-{id}.btf");
        if let Some(raw) = &target_btf {
            if let Err(e) = store.put_object(&stored_btf, raw) {
                store.remove_object(&stored);
                return Err(persist_err(&e));
            }
        }
        let source = Source::Object {
            file_name: file_name.to_string(),
            stored: stored.clone(),
            prog_type,
            prog_flags: load_opts.prog_flags,
            unprivileged: load_opts.unprivileged,
            kconfig,
            target_btf: target_btf.is_some().then_some(stored_btf),
        };
        let dirs = match self.make_pins(&planned) {
            Ok(d) => d,
            Err(e) => {
                for f in source.stored_files() {
                    store.remove_object(&f);
                }
                return Err(e);
            }
        };
        let mut entries = vec![Entry::Record {
            id,
            source: source.clone(),
        }];
        for (map, file) in &map_files {
            entries.push(Entry::ValueFile {
                record: id,
                map: map.clone(),
                file: file.clone(),
            });
        }
        for (p, _) in &planned {
            entries.push(Entry::Pin {
                record: id,
                kind: p.kind.into(),
                name: p.name.clone(),
                path: p.path.clone(),
            });
        }
        if let Err(e) = store.append(&entries) {
            self.undo_pins(&planned, &dirs);
            for f in source.stored_files() {
                store.remove_object(&f);
            }
            return Err(persist_err(&e));
        }
        cat.records.push(Record {
            id,
            source,
            progs: loaded
                .progs
                .iter()
                .map(|(n, p)| (n.clone(), Arc::downgrade(p.obj())))
                .collect(),
            maps: loaded
                .maps
                .iter()
                .map(|(n, m)| (n.clone(), Arc::downgrade(m.obj())))
                .collect(),
            files: map_files,
        });
        files.keep();
        drop(loaded);
        self.after_change(&cat, &mut store);
        Ok(Response::out(String::new()))
    }

    #[allow(clippy::too_many_arguments)]
    fn map_create(
        &self,
        path: &str,
        map_type: &str,
        key: u32,
        value: u32,
        entries: u32,
        name: &str,
        flags: u32,
        inner_map: Option<&Target>,
    ) -> Result<Response, String> {
        let mt =
            MapType::from_name(map_type).ok_or_else(|| format!("invalid map type: {map_type}"))?;
        let inner = inner_map.map(|t| self.map_one(t)).transpose()?;
        let plan = self.plan_pin("map", name, path)?;
        let attr = MapCreateAttr {
            map_type: mt,
            key_size: key,
            value_size: value,
            max_entries: entries,
            map_flags: flags,
            name: name.to_string(),
            inner_map_id: inner.as_ref().map(|m| m.id),
            ..MapCreateAttr::default()
        };
        let (r, made) = self
            .values
            .with_files(|| self.rt.bpf(BpfCmd::MapCreate(attr)));
        let mut files = super::values::FilesGuard::new(&self.values, made);
        let fd = match r {
            Ok(BpfReply::Map(fd)) => fd,
            Ok(_) => return Err("map create failed: unexpected reply".into()),
            Err(e) => return Err(format!("map create failed: {}", render::error_chain(&e))),
        };
        let map_files = files.assign([(name, fd.obj().as_ref())]);
        let mut cat = lock(&self.cat);
        let id = cat.next_record;
        cat.next_record += 1;
        // The kernel uses the template only for map-in-map types.
        let inner = inner
            .filter(|_| matches!(mt, MapType::ArrayOfMaps | MapType::HashOfMaps))
            .map(|m| {
                let a = m.attr();
                super::store::InnerMap {
                    map_type: a.map_type as u32,
                    key: a.key_size,
                    value: a.value_size,
                    entries: a.max_entries,
                    flags: a.map_flags,
                }
            });
        let source = Source::Map {
            map_type: mt as u32,
            key,
            value,
            entries,
            flags,
            name: name.to_string(),
            inner,
        };
        let entry_pin = Entry::Pin {
            record: id,
            kind: "map".into(),
            name: name.to_string(),
            path: plan.path.clone(),
        };
        let weak = Arc::downgrade(fd.obj());
        let pins = [(plan, Pinned::Map(fd))];
        let mut store = lock(&self.store);
        let dirs = self.make_pins(&pins)?;
        let rec = Entry::Record {
            id,
            source: source.clone(),
        };
        let mut entries = vec![rec];
        for (map, file) in &map_files {
            entries.push(Entry::ValueFile {
                record: id,
                map: map.clone(),
                file: file.clone(),
            });
        }
        entries.push(entry_pin);
        if let Err(e) = store.append(&entries) {
            self.undo_pins(&pins, &dirs);
            return Err(persist_err(&e));
        }
        cat.records.push(Record {
            id,
            source,
            progs: Vec::new(),
            maps: vec![(name.to_string(), weak)],
            files: map_files,
        });
        files.keep();
        self.after_change(&cat, &mut store);
        Ok(Response::out(String::new()))
    }

    fn map_op(&self, m: &MapObj, op: &str, args: &[String]) -> Result<Response, String> {
        let reply = |r: &reads::MapOpResult| match &r.listing {
            Some(l) if r.not_found => Response::listing_failed(l, 254),
            Some(l) => Response::listing(l),
            None => Response::out(String::new()),
        };
        if op != "update" && op != "delete" && op != "pop" {
            return reads::map_op(&self.rt, m, op, args, |t| self.resolve_value_target(t))
                .map(|r| reply(&r));
        }
        // The store's lock is held from the change to its journal entry, so that a
        // snapshot never falls between them.
        let mut cat = lock(&self.cat);
        let mut store = lock(&self.store);
        let r = reads::map_op(&self.rt, m, op, args, |t| self.resolve_value_target(t))?;
        let resp = reply(&r);
        let Some(change) = r.change else {
            return Ok(resp);
        };
        let Some((record, map)) = cat.map_ref(m.id) else {
            // A map no record made (an inner map created by a program's loader):
            // nothing brings it back after a restart, so nothing to journal.
            return Ok(resp);
        };
        let file = cat
            .records
            .iter()
            .find(|r| r.id == record)
            .and_then(|r| r.file_of(&map));
        if let Some(file) = file {
            // The change is in the file already: on disk before the reply.
            if !store.sync {
                return Ok(resp);
            }
            return match self.values.sync(file) {
                Ok(()) => Ok(resp),
                Err(e) => {
                    self.undo(m, &change);
                    Err(format!("not saved: {file}: {e}"))
                }
            };
        }
        let entry = match (&change.value, change.key.is_empty()) {
            (Some(v), true) => Entry::MapPush {
                record,
                map,
                value: proto::to_hex(v),
            },
            (Some(v), false) => {
                let value = if m.map_type() == MapType::ProgArray || m.map_type().is_map_in_map() {
                    self.saved_value(&cat, m, &change.key)
                } else {
                    Some(SavedValue::Hex(proto::to_hex(v)))
                };
                match value {
                    Some(value) => Entry::MapSet {
                        record,
                        map,
                        key: proto::to_hex(&change.key),
                        value,
                    },
                    None => {
                        self.undo(m, &change);
                        return Err(
                            "not saved: the referenced object has no record to restore it from"
                                .into(),
                        );
                    }
                }
            }
            (None, _) => Entry::MapDelete {
                record,
                map,
                key: proto::to_hex(&change.key),
            },
        };
        if let Err(e) = store.append(&[entry]) {
            self.undo(m, &change);
            return Err(persist_err(&e));
        }
        if m.map_type() == MapType::ProgArray || m.map_type().is_map_in_map() {
            // A replaced reference may have been the last thing holding a record.
            self.gc(&mut cat, &mut store);
        }
        self.after_change(&cat, &mut store);
        Ok(resp)
    }

    /// Puts a map entry back as it was before `change`.
    fn undo(&self, m: &MapObj, change: &reads::MapChange) {
        let r = match (&change.old, change.key.is_empty()) {
            // A pop: the value goes back (on top of a stack as it was; at a
            // queue's tail, the nearest a queue allows).
            (Some(old), true) if change.value.is_none() => self.rt.bpf(BpfCmd::MapUpdateElem {
                map_id: m.id,
                key: Vec::new(),
                value: old.clone(),
                flags: 0,
            }),
            (_, true) => self.rt.bpf(BpfCmd::MapLookupAndDeleteElem {
                map_id: m.id,
                key: None,
                flags: 0,
            }),
            (Some(old), false) => self.rt.bpf(BpfCmd::MapUpdateElem {
                map_id: m.id,
                key: change.key.clone(),
                value: old.clone(),
                flags: 0,
            }),
            (None, false) => self.rt.bpf(BpfCmd::MapDeleteElem {
                map_id: m.id,
                key: change.key.clone(),
            }),
        };
        if let Err(e) = r {
            eprintln!(
                "warning: map {}: an unsaved change could not be undone: {}",
                m.id,
                render::error_chain(&e)
            );
        }
    }

    fn map_freeze(&self, m: &MapObj) -> Result<Response, String> {
        let cat = lock(&self.cat);
        let mut store = lock(&self.store);
        if let Some((record, map)) = cat.map_ref(m.id) {
            // Journaled first: a freeze cannot be undone. Should the freeze then
            // fail, replaying it fails the same way.
            store
                .append(&[Entry::MapFreeze { record, map }])
                .map_err(|e| persist_err(&e))?;
        }
        self.rt
            .bpf(BpfCmd::MapFreeze { map_id: m.id })
            .map(|_| Response::out(String::new()))
            .map_err(|e| format!("failed to freeze map: {}", render::errno_text(&e)))
    }

    fn net_attach(
        &self,
        p: &ProgObj,
        dev: &str,
        overwrite: bool,
        f: Format,
    ) -> Result<Response, String> {
        let mut cat = lock(&self.cat);
        let (record, prog) = cat
            .prog_ref(p.id)
            .ok_or_else(|| format!("get by id ({}): No such file or directory", p.id))?;
        let mut store = lock(&self.store);
        let before = self
            .net
            .attachments()
            .into_iter()
            .find(|(d, _)| d == dev)
            .map(|(_, id)| id);
        let r = self.net.attach(&self.rt, p, dev, overwrite, f)?;
        if let Err(e) = store.append(&[Entry::Attach {
            dev: dev.to_string(),
            record,
            prog,
        }]) {
            // Back to what was attached before.
            let _ = self.net.detach(dev, f);
            if let Some(old) = before.and_then(|id| self.rt.prog_by_id(id).ok()) {
                let _ = self.net.attach(&self.rt, &old, dev, true, f);
            }
            return Err(persist_err(&e));
        }
        self.gc(&mut cat, &mut store);
        Ok(r)
    }

    fn net_detach(&self, dev: &str, f: Format) -> Result<Response, String> {
        let mut cat = lock(&self.cat);
        let mut store = lock(&self.store);
        let before = self
            .net
            .attachments()
            .into_iter()
            .find(|(d, _)| d == dev)
            .map(|(_, id)| id);
        let r = self.net.detach(dev, f)?;
        if let Some(id) = before {
            if let Err(e) = store.append(&[Entry::Detach {
                dev: dev.to_string(),
            }]) {
                if let Ok(p) = self.rt.prog_by_id(id) {
                    let _ = self.net.attach(&self.rt, &p, dev, true, f);
                }
                return Err(persist_err(&e));
            }
        }
        self.gc(&mut cat, &mut store);
        Ok(r)
    }

    #[allow(clippy::too_many_arguments)]
    fn prog_run(
        &self,
        t: &Target,
        data_hex: &str,
        ctx_hex: Option<&str>,
        repeat: u32,
        timeout_ms: Option<u64>,
        coverage: bool,
        cancel: Arc<AtomicBool>,
    ) -> Result<Response, String> {
        let p = self.prog_one(t)?;
        let data_in = proto::from_hex(data_hex).map_err(|e| e.to_string())?;
        let ctx_in = match ctx_hex {
            Some(h) => Some(proto::from_hex(h).map_err(|e| e.to_string())?),
            None => None,
        };
        let attr = TestRunAttr {
            prog_id: p.id,
            data_in,
            ctx_in,
            repeat,
            ..TestRunAttr::default()
        };
        // The time limit: a timer thread sets the same flag the transport sets
        // when the client goes away.
        let done = Arc::new(AtomicBool::new(false));
        if let Some(ms) = timeout_ms {
            let (flag, done) = (cancel.clone(), done.clone());
            std::thread::spawn(move || {
                let end = std::time::Instant::now() + Duration::from_millis(ms);
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let now = std::time::Instant::now();
                    if now >= end {
                        flag.store(true, std::sync::atomic::Ordering::Relaxed);
                        return;
                    }
                    std::thread::sleep((end - now).min(Duration::from_millis(50)));
                }
            });
        }
        let mut counts = None;
        let r = {
            let _g = bpfvm::set_cancel_flag(cancel);
            if coverage {
                // `prog run ... coverage`: the observed interpreter counts
                // instructions and branches; the client maps them to lines.
                let mut c = crate::counts::Counts::for_programs(&p, &self.rt.progs());
                let r = self
                    .rt
                    .test_run_observed(&attr, &mut c)
                    .map(BpfReply::TestRun);
                counts = Some(c.to_json());
                r
            } else {
                self.rt.bpf(BpfCmd::ProgTestRun(attr))
            }
        };
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        // What the run wrote into maps is saved before the reply (even if the
        // run stopped early: what it changed is changed).
        self.save_run_effects(&p)?;
        match r {
            Ok(BpfReply::TestRun(r)) => Ok(Response::data(serde_json::json!({
                "retval": r.retval,
                "duration": r.duration,
                "data_out_hex": proto::to_hex(&r.data_out),
                "ctx_out_hex": proto::to_hex(&r.ctx_out),
                "coverage": counts,
            }))),
            Ok(_) => Err("failed to run program: unexpected reply".into()),
            Err(bpfvm::BpfError::Interrupted { .. }) => Err(match timeout_ms {
                Some(ms) => format!(
                    "failed to run program: Interrupted system call (stopped after the {ms} ms timeout)"
                ),
                None => "failed to run program: Interrupted system call".into(),
            }),
            Err(e) => Err(format!(
                "failed to run program: {}",
                render::error_chain(&e)
            )),
        }
    }
}

/// Entries of a map that `ProgFetch` hands over with a program (plain value
/// maps only; prog arrays go as slots).
const MAX_FETCHED_ENTRIES: usize = 1 << 16;

impl Daemon {
    /// `ProgFetch` (`prog debug`, `profile`, `replay`, `run ... coverage` on a
    /// daemon program): the object it was loaded from, its name in it, its
    /// maps' entries and its prog arrays' slots by program name, so the client
    /// can run a faithful copy.
    fn prog_fetch(&self, t: &Target) -> Result<Response, String> {
        let p = self.prog_one(t)?;
        let not_from_object = || format!("program {} was not loaded from an object file", p.id);
        let (source, progs, maps) = {
            let cat = lock(&self.cat);
            let rec = cat
                .records
                .iter()
                .find(|r| {
                    r.progs
                        .iter()
                        .any(|(_, w)| w.upgrade().is_some_and(|x| x.id == p.id))
                })
                .ok_or_else(not_from_object)?;
            (rec.source.clone(), rec.progs.clone(), rec.maps.clone())
        };
        let Source::Object {
            file_name,
            stored,
            prog_type,
            kconfig,
            target_btf,
            ..
        } = &source
        else {
            return Err(not_from_object());
        };
        let bytes = lock(&self.store)
            .read_object(stored, super::persist::MAX_OBJECT)
            .map_err(|e| render::error_chain(&e))?;
        // The client's copy is loaded as this one was: the same CO-RE target
        // and kernel config.
        let target_btf_hex = match target_btf {
            Some(f) => Some(proto::to_hex(
                &lock(&self.store)
                    .read_object(f, super::persist::MAX_OBJECT)
                    .map_err(|e| render::error_chain(&e))?,
            )),
            None => None,
        };
        let name = progs
            .iter()
            .find(|(_, w)| w.upgrade().is_some_and(|x| x.id == p.id))
            .map(|(n, _)| n.clone());
        let mut out_maps = Vec::new();
        for (n, w) in &maps {
            let Some(m) = w.upgrade() else { continue };
            if m.map_type() == MapType::ProgArray {
                let mut slots: Vec<(u32, String)> = Vec::new();
                for k in 0..m.attr().max_entries {
                    let Ok(BpfReply::Bytes(v)) = self.rt.bpf(BpfCmd::MapLookupElem {
                        map_id: m.id,
                        key: k.to_le_bytes().to_vec(),
                        flags: 0,
                    }) else {
                        continue;
                    };
                    let Some(id) = v
                        .get(..4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    else {
                        continue;
                    };
                    if let Some((pn, _)) = progs
                        .iter()
                        .find(|(_, w)| w.upgrade().is_some_and(|x| x.id == id))
                    {
                        slots.push((k, pn.clone()));
                    }
                }
                out_maps.push(serde_json::json!({ "name": n, "prog_slots": slots }));
                continue;
            }
            let plain = matches!(
                m.map_type(),
                MapType::Hash
                    | MapType::Array
                    | MapType::PercpuHash
                    | MapType::PercpuArray
                    | MapType::LruHash
                    | MapType::LruPercpuHash
                    | MapType::LpmTrie
            );
            if !plain || m.is_frozen() {
                continue;
            }
            let mut entries = Vec::new();
            if let Ok(map) = RawMap::from_id(&self.rt, m.id) {
                for (k, v) in map.iter().map_while(Result::ok) {
                    if entries.len() >= MAX_FETCHED_ENTRIES {
                        break;
                    }
                    entries.push((proto::to_hex(&k), proto::to_hex(&v)));
                }
            }
            out_maps.push(serde_json::json!({ "name": n, "entries": entries }));
        }
        Ok(Response::data(serde_json::json!({
            "file_name": file_name,
            "object_hex": proto::to_hex(&bytes),
            "prog_type": prog_type,
            "prog": name,
            "maps": out_maps,
            "kconfig": kconfig,
            "target_btf_hex": target_btf_hex,
        })))
    }
}

/// Maps with more entries than this are not saved after each run (a clean
/// `daemon stop` saves them).
const MAX_RUN_SAVED_ENTRIES: usize = 4096;

impl Daemon {
    /// The maps a run of `p` can change: its own and those of the programs it
    /// can tail-call (through its prog arrays, transitively).
    fn reachable_maps(&self, p: &ProgObj) -> Vec<Arc<MapObj>> {
        let mut maps: Vec<Arc<MapObj>> = Vec::new();
        let mut progs: Vec<u32> = vec![p.id];
        let mut queue: Vec<Arc<MapObj>> = p.used_maps.clone();
        while let Some(m) = queue.pop() {
            if maps.iter().any(|x| x.id == m.id) {
                continue;
            }
            if let Ok(slots) = RawMap::from_id(&self.rt, m.id).and_then(ProgramArray::try_from) {
                for (_, id) in slots.iter().map_while(Result::ok) {
                    if !progs.contains(&id) {
                        if let Ok(t) = self.rt.prog_by_id(id) {
                            progs.push(id);
                            queue.extend(t.used_maps.iter().cloned());
                        }
                    }
                }
            }
            maps.push(m);
        }
        maps
    }

    /// A map's entries, or `None` past [`MAX_RUN_SAVED_ENTRIES`].
    fn small_contents(&self, m: &MapObj) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut contents = Vec::new();
        let map = RawMap::from_id(&self.rt, m.id).ok()?;
        for entry in map.iter().map_while(Result::ok) {
            if contents.len() >= MAX_RUN_SAVED_ENTRIES {
                return None;
            }
            contents.push(entry);
        }
        Some(contents)
    }

    /// Journals the contents of the maps a run may have changed (see
    /// [`Daemon::reachable_maps`]) that are addressed by key (array values are
    /// in files already), up to [`MAX_RUN_SAVED_ENTRIES`] entries each, when they
    /// differ from what was last saved: the run is acknowledged once its
    /// changes would survive a crash.
    fn save_run_effects(&self, p: &ProgObj) -> Result<(), String> {
        use std::hash::{Hash, Hasher};
        let maps = self.reachable_maps(p);
        let cat = lock(&self.cat);
        let mut store = lock(&self.store);
        let mut entries = Vec::new();
        let mut hashes = Vec::new();
        for m in &maps {
            let t = m.map_type();
            if !super::persist::saved_by_key(t) || super::persist::is_fd_map(t) {
                continue;
            }
            let Some((record, name)) = cat.map_ref(m.id) else {
                continue;
            };
            let rec = cat.records.iter().find(|r| r.id == record);
            if rec.is_some_and(|r| r.file_of(&name).is_some()) {
                continue;
            }
            let Some(contents) = self.small_contents(m) else {
                continue;
            };
            let mut h = std::collections::hash_map::DefaultHasher::new();
            contents.hash(&mut h);
            let h = h.finish();
            if lock(&self.run_saved).get(&m.id) == Some(&h) {
                continue;
            }
            hashes.push((m.id, h));
            entries.push(Entry::MapContents {
                record,
                map: name,
                entries: contents
                    .iter()
                    .map(|(k, v)| (proto::to_hex(k), SavedValue::Hex(proto::to_hex(v))))
                    .collect(),
            });
        }
        if entries.is_empty() {
            return Ok(());
        }
        store.append(&entries).map_err(|e| {
            format!(
                "the run's changes to maps are not saved: {}",
                render::error_chain(&e)
            )
        })?;
        lock(&self.run_saved).extend(hashes);
        self.after_change(&cat, &mut store);
        Ok(())
    }
}

/// bpftool's name match: the kernel keeps 15 characters of a name.
fn name_matches(obj_name: &str, wanted: &str) -> bool {
    obj_name == wanted || (wanted.len() > 15 && wanted.get(..15) == Some(obj_name))
}

/// Parses an object and applies `type TYPE` to every program.
pub fn parse_object(
    file_name: &str,
    bytes: &[u8],
    prog_type: Option<&str>,
) -> Result<Object, String> {
    let mut obj = Object::parse(file_name, bytes).map_err(|e| render::error_chain(&e))?;
    if let Some(t) = prog_type {
        let (pt, attach) = if let Some(pt) = bpfvm::ProgType::from_name(t) {
            (pt, None)
        } else if let Some(def) = bpfvm::section_def(t) {
            (def.prog_type, def.expected_attach_type)
        } else {
            return Err(format!("unknown program type '{t}'"));
        };
        for p in &mut obj.programs {
            p.prog_type = pt;
            if attach.is_some() {
                p.expected_attach_type = attach;
            }
        }
    }
    Ok(obj)
}

/// The kernel configuration a load was given, if any.
/// The CO-RE target of a load from raw BTF bytes (`btf PATH`, already
/// checked by the client; checked again here, as every input is).
pub(crate) fn target_btf_opt(raw: &[u8]) -> Result<bpfvm::TargetBtf, String> {
    bpfvm::btf::Btf::parse(raw)
        .map(|b| bpfvm::TargetBtf::Btf(Arc::new(b)))
        .map_err(|e| format!("target btf: {}", render::error_chain(&e)))
}

pub(crate) fn kconfig_opt(text: Option<&str>) -> Option<Arc<bpfvm::Kconfig>> {
    text.map(|t| Arc::new(bpfvm::Kconfig::with_config_text(t)))
}
