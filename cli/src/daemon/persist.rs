//! Between the runtime and the store: replaying saved entries into a fresh
//! runtime at start, and writing the live state as a snapshot.

use super::store::{Entry, Loaded, SavedValue, SnapshotWriter, Source, Store, StoreError};
use super::{Catalog, Daemon, Record};
use crate::proto::{self, Format};
use crate::render;
use bpfvm::maps::{MapType, RawMap};
use bpfvm::{BpfCmd, BpfReply, MapCreateAttr, MapFd, MapObj, Pinned, ProgFd};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The largest object file kept in the store (an object travels hex-encoded in
/// one frame, so nothing bigger can have been loaded).
pub const MAX_OBJECT: u64 = (proto::MAX_MESSAGE as u64) / 2;

/// A record's programs and maps by their names in the object.
type Objects = (Vec<(String, ProgFd)>, Vec<(String, MapFd)>);

/// A record being replayed: its objects, held until the replay ends.
struct Live {
    source: Source,
    progs: Vec<(String, ProgFd)>,
    maps: Vec<(String, MapFd)>,
    /// (map, value file) made for it now.
    files: Vec<(String, String)>,
}

impl Live {
    fn map(&self, name: &str) -> Option<&MapFd> {
        self.maps.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }
}

/// Map types whose entries are saved by key (arrays go as one raw block; queues
/// and stacks as their values in push order; ring buffers are not saved).
pub(crate) fn saved_by_key(t: MapType) -> bool {
    !matches!(
        t,
        MapType::Array
            | MapType::PercpuArray
            | MapType::Queue
            | MapType::Stack
            | MapType::Ringbuf
            | MapType::UserRingbuf
    )
}

pub(crate) fn is_fd_map(t: MapType) -> bool {
    t == MapType::ProgArray || t.is_map_in_map()
}

/// An array map's value memory as saved: its length, the (offset, length) of
/// the pages that are not all zero, and their bytes. Zero pages are skipped
/// unread-into-memory, so a huge mostly-empty array (a big `.bss`) costs nothing.
type ArrayImage = (u64, Vec<(u64, u64)>, Vec<u8>);

fn array_image(m: &MapObj) -> Option<ArrayImage> {
    const PAGE: usize = 4096;
    let regions = m.value_regions();
    let r = regions.first()?;
    let len = r.stride.checked_mul(r.count)?;
    let mut segments: Vec<(u64, u64)> = Vec::new();
    let mut blob = Vec::new();
    let mut page = [0u8; PAGE];
    let mut off = 0usize;
    while off < len {
        let n = PAGE.min(len - off);
        // SAFETY: [off, off+n) lies within the map's live value memory (8-byte
        // aligned, `n` a multiple of 8 since strides are). Programs may write it
        // meanwhile, as they may race a user-space lookup in the kernel; words
        // are read through relaxed atomics.
        unsafe {
            for (i, w) in page[..n].chunks_exact_mut(8).enumerate() {
                let a = std::sync::atomic::AtomicU64::from_ptr(r.base.add(off + i * 8).cast());
                w.copy_from_slice(&a.load(std::sync::atomic::Ordering::Relaxed).to_ne_bytes());
            }
        }
        if page[..n].iter().any(|&b| b != 0) {
            match segments.last_mut() {
                Some((o, l)) if *o + *l == off as u64 => *l += n as u64,
                _ => segments.push((off as u64, n as u64)),
            }
            blob.extend_from_slice(&page[..n]);
        }
        off += n;
    }
    Some((len as u64, segments, blob))
}

/// Puts back an array map's saved bytes: `len` bytes in all, of which the
/// `segments` (offset, length; the rest is zero) are in `blob`.
fn set_array_bytes(
    m: &MapObj,
    len: u64,
    segments: &[(u64, u64)],
    blob: &[u8],
) -> Result<(), String> {
    let regions = m.value_regions();
    let r = regions.first().ok_or("the map has no value memory")?;
    let have = (r.stride * r.count) as u64;
    if len != have {
        return Err(format!(
            "saved contents are {len} bytes, the map has {have} (was the CPU count different?)"
        ));
    }
    let mut at = 0usize;
    for &(off, n) in segments {
        let (o, n) = (off as usize, n as usize);
        let end = o.checked_add(n).filter(|&e| e as u64 <= have);
        let src = blob.get(at..at + n);
        let (Some(_), Some(src), true) = (end, src, o % 8 == 0 && n % 8 == 0) else {
            return Err(format!("a saved segment ({off}, {n}) is out of bounds"));
        };
        // SAFETY: as in array_bytes; [o, o+n) lies within the value memory and is
        // 8-byte aligned (checked above).
        unsafe {
            for (i, chunk) in src.chunks_exact(8).enumerate() {
                let a = std::sync::atomic::AtomicU64::from_ptr(r.base.add(o + i * 8).cast());
                let mut w = [0u8; 8];
                w.copy_from_slice(chunk);
                a.store(u64::from_ne_bytes(w), std::sync::atomic::Ordering::Relaxed);
            }
        }
        at += n;
    }
    Ok(())
}

impl Daemon {
    /// Re-creates what `entries` describe: records loaded again, map contents put
    /// back, pins whose file still exists re-made, attachments re-attached.
    /// Problems with one record or entry are logged and the rest goes on; the
    /// store itself was already checked when read.
    pub(crate) fn restore(&self, entries: Vec<Loaded>) -> Result<(), String> {
        let mut live: BTreeMap<u64, Live> = BTreeMap::new();
        let mut pins: BTreeMap<String, (u64, String, String)> = BTreeMap::new();
        let mut attach: BTreeMap<String, (u64, String)> = BTreeMap::new();
        let mut next_record = 0u64;
        let n = entries.len();
        // Maps whose values are in a file: the file has every value (written by
        // clients and programs alike), so their entries are not replayed; the
        // file is copied into the new map's file at the end.
        let file_backed: std::collections::BTreeSet<(u64, String)> = entries
            .iter()
            .filter_map(|l| match &l.entry {
                Entry::ValueFile { record, map, .. } => Some((*record, map.clone())),
                _ => None,
            })
            .collect();
        let skip = |record: &u64, map: &String| file_backed.contains(&(*record, map.clone()));
        let mut old_files: BTreeMap<(u64, String), String> = BTreeMap::new();
        let mut failed: BTreeMap<u64, Vec<Loaded>> = BTreeMap::new();
        let mut store = super::lock(&self.store);
        for l in entries {
            if let Some(r) = l.entry.record() {
                if let Entry::Drop { .. } = l.entry {
                    failed.remove(&r);
                } else if let Some(v) = failed.get_mut(&r) {
                    // A record that could not be made again: kept as saved.
                    v.push(l);
                    continue;
                }
            }
            let Loaded { entry, blob } = l;
            let warn = |what: &str| eprintln!("warning: restoring {what}");
            match entry {
                Entry::Header { .. } => {}
                Entry::Record { id, source } => {
                    next_record = next_record.max(id + 1);
                    let saved = Loaded {
                        entry: Entry::Record {
                            id,
                            source: source.clone(),
                        },
                        blob: Vec::new(),
                    };
                    let (r, made) = self.values.with_files(|| self.recreate(&store, &source));
                    let mut guard = super::values::FilesGuard::new(&self.values, made);
                    match r {
                        Ok((progs, maps)) => {
                            let files = guard
                                .assign(maps.iter().map(|(n, m)| (n.as_str(), m.obj().as_ref())));
                            guard.keep();
                            live.insert(
                                id,
                                Live {
                                    source,
                                    progs,
                                    maps,
                                    files,
                                },
                            );
                        }
                        Err(e) => {
                            eprintln!(
                                "warning: record {id} ({}) could not be made again: {e}; it is kept as saved (with its files and pins) and tried again at the next start",
                                match &source {
                                    Source::Object { file_name, .. } => file_name.clone(),
                                    Source::Map { name, .. } => format!("map {name}"),
                                }
                            );
                            failed.insert(id, vec![saved]);
                        }
                    }
                }
                Entry::Drop { record } => {
                    if let Some(l) = live.remove(&record) {
                        self.values.remove(l.files.into_iter().map(|(_, f)| f));
                    }
                    old_files.retain(|(r, _), _| *r != record);
                }
                Entry::ValueFile { record, map, file } => {
                    old_files.insert((record, map), file);
                }
                Entry::Pin {
                    record,
                    kind,
                    name,
                    path,
                } => {
                    pins.insert(path, (record, kind, name));
                }
                Entry::Unpin { path } => {
                    pins.remove(&path);
                }
                Entry::MapSet { record, map, .. } if skip(&record, &map) => {}
                Entry::MapDelete { record, map, .. } if skip(&record, &map) => {}
                Entry::MapArray { record, map, .. } if skip(&record, &map) => {}
                Entry::MapSet {
                    record,
                    map,
                    key,
                    value,
                } => {
                    let Some(m) = live.get(&record).and_then(|l| l.map(&map)) else {
                        continue;
                    };
                    let value = match &value {
                        SavedValue::Hex(h) => proto::from_hex(h).ok(),
                        SavedValue::Prog { record, name } => live
                            .get(record)
                            .and_then(|l| l.progs.iter().find(|(n, _)| n == name))
                            .map(|(_, p)| p.id().to_le_bytes().to_vec()),
                        SavedValue::Map { record, name } => live
                            .get(record)
                            .and_then(|l| l.map(name))
                            .map(|m| m.id().to_le_bytes().to_vec()),
                    };
                    let (Ok(key), Some(value)) = (proto::from_hex(&key), value) else {
                        warn(&format!("map {map} of record {record}: an entry refers to an object that was not restored"));
                        continue;
                    };
                    if let Err(e) = self.rt.bpf(BpfCmd::MapUpdateElem {
                        map_id: m.id(),
                        key,
                        value,
                        flags: 0,
                    }) {
                        warn(&format!("map {map}: {}", render::error_chain(&e)));
                    }
                }
                Entry::MapContents { record, map, .. } if skip(&record, &map) => {}
                Entry::MapContents {
                    record,
                    map,
                    entries,
                } => {
                    let Some(m) = live.get(&record).and_then(|l| l.map(&map)) else {
                        continue;
                    };
                    // What the map holds now goes, then the saved entries come in.
                    let keys: Vec<Vec<u8>> = RawMap::from_id(&self.rt, m.id())
                        .map(|map| map.keys().map_while(Result::ok).collect())
                        .unwrap_or_default();
                    for k in keys {
                        let _ = self.rt.bpf(BpfCmd::MapDeleteElem {
                            map_id: m.id(),
                            key: k,
                        });
                    }
                    for (k, v) in entries {
                        let (Ok(key), SavedValue::Hex(v)) = (proto::from_hex(&k), &v) else {
                            continue;
                        };
                        let Ok(value) = proto::from_hex(v) else {
                            continue;
                        };
                        if let Err(e) = self.rt.bpf(BpfCmd::MapUpdateElem {
                            map_id: m.id(),
                            key,
                            value,
                            flags: 0,
                        }) {
                            warn(&format!("map {map}: {}", render::error_chain(&e)));
                        }
                    }
                }
                Entry::MapDelete { record, map, key } => {
                    if let (Some(m), Ok(key)) = (
                        live.get(&record).and_then(|l| l.map(&map)),
                        proto::from_hex(&key),
                    ) {
                        // No key: a pop from a queue or a stack.
                        let _ = if key.is_empty() {
                            self.rt.bpf(BpfCmd::MapLookupAndDeleteElem {
                                map_id: m.id(),
                                key: None,
                                flags: 0,
                            })
                        } else {
                            self.rt.bpf(BpfCmd::MapDeleteElem {
                                map_id: m.id(),
                                key,
                            })
                        };
                    }
                }
                Entry::MapPush { record, map, value } => {
                    if let (Some(m), Ok(value)) = (
                        live.get(&record).and_then(|l| l.map(&map)),
                        proto::from_hex(&value),
                    ) {
                        let _ = self.rt.bpf(BpfCmd::MapUpdateElem {
                            map_id: m.id(),
                            key: Vec::new(),
                            value,
                            flags: 0,
                        });
                    }
                }
                Entry::MapPop { record, map } => {
                    if let Some(m) = live.get(&record).and_then(|l| l.map(&map)) {
                        let _ = self.rt.bpf(BpfCmd::MapLookupAndDeleteElem {
                            map_id: m.id(),
                            key: None,
                            flags: 0,
                        });
                    }
                }
                Entry::MapFreeze { record, map } => {
                    if let Some(m) = live.get(&record).and_then(|l| l.map(&map)) {
                        if !m.obj().is_frozen() {
                            let _ = self.rt.bpf(BpfCmd::MapFreeze { map_id: m.id() });
                        }
                    }
                }
                Entry::MapArray {
                    record,
                    map,
                    len,
                    segments,
                } => {
                    if let Some(m) = live.get(&record).and_then(|l| l.map(&map)) {
                        if let Err(e) = set_array_bytes(m.obj(), len, &segments, &blob) {
                            warn(&format!("map {map} of record {record}: {e}"));
                        }
                    }
                }
                Entry::Attach { dev, record, prog } => {
                    attach.insert(dev, (record, prog));
                }
                Entry::Detach { dev } => {
                    attach.remove(&dev);
                }
            }
        }
        // The values of file-backed maps: the old file's contents into the new
        // file, the new file journaled, then the old one removed.
        let mut moved = Vec::new();
        let mut now_in = Vec::new();
        for ((record, map), old) in &old_files {
            let Some(new) = live
                .get(record)
                .and_then(|l| l.files.iter().find(|(m, _)| m == map))
                .map(|(_, f)| f.clone())
            else {
                continue;
            };
            match self.values.copy(old, &new) {
                Ok(_) => {}
                Err(e) => eprintln!(
                    "warning: map {map} of record {record}: values not restored from {}: {e}",
                    self.values.dir.path().join(old).display()
                ),
            }
            now_in.push(Entry::ValueFile {
                record: *record,
                map: map.clone(),
                file: new,
            });
            moved.push(old.clone());
        }
        if !now_in.is_empty() {
            if let Err(e) = store.append(&now_in) {
                return Err(format!(
                    "cannot record where restored map values live: {}",
                    render::error_chain(&e)
                ));
            }
            self.values.remove(moved);
        }
        drop(store);
        // Pins whose file is still there (a file removed while the daemon was down
        // is an unpin, as `rm` on bpffs).
        let mut restored = 0usize;
        for (path, (record, kind, name)) in &pins {
            let Ok((norm, parts)) = crate::safefs::check_pin_path(path) else {
                continue;
            };
            if !self.fs.is_pin_file(&parts) {
                continue;
            }
            let obj = live.get(record).and_then(|l| {
                if kind == "prog" {
                    l.progs
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, p)| Pinned::Prog(p.clone()))
                } else {
                    l.map(name).map(|m| Pinned::Map(m.clone()))
                }
            });
            match obj {
                Some(o) => match self.rt.pin(&norm, o) {
                    Ok(()) => restored += 1,
                    Err(e) => eprintln!("warning: pin {path}: {}", render::error_chain(&e)),
                },
                None => eprintln!("warning: pin {path}: its object was not restored"),
            }
        }
        for (dev, (record, prog)) in &attach {
            let p = live
                .get(record)
                .and_then(|l| l.progs.iter().find(|(n, _)| n == prog));
            match p {
                Some((_, p)) => {
                    if let Err(e) = self.net.attach(&self.rt, p.obj(), dev, true, Format::Plain) {
                        eprintln!("warning: XDP attachment on {dev} not restored: {e}");
                    }
                }
                None => eprintln!("warning: XDP attachment on {dev}: its program was not restored"),
            }
        }
        let mut cat = super::lock(&self.cat);
        cat.next_record = next_record;
        cat.failed = failed;
        for (id, l) in live {
            cat.records.push(Record {
                id,
                source: l.source,
                progs: l
                    .progs
                    .iter()
                    .map(|(n, p)| (n.clone(), Arc::downgrade(p.obj())))
                    .collect(),
                maps: l
                    .maps
                    .iter()
                    .map(|(n, m)| (n.clone(), Arc::downgrade(m.obj())))
                    .collect(),
                files: l.files.clone(),
            });
            // `l`'s handles drop here: what no pin, attachment or reference
            // holds goes.
        }
        let mut store = super::lock(&self.store);
        self.gc(&mut cat, &mut store);
        let failed_entries = cat.failed.values().flatten().map(|l| &l.entry);
        let keep: Vec<String> = cat
            .records
            .iter()
            .map(|r| &r.source)
            .chain(failed_entries.clone().filter_map(|e| match e {
                Entry::Record { source, .. } => Some(source),
                _ => None,
            }))
            .flat_map(|s| s.stored_files())
            .collect();
        for stray in store.stray_objects(&keep) {
            store.remove_object(&stray);
        }
        // Value files of nothing (left by a crash between making and journaling).
        let keep: Vec<String> = cat
            .records
            .iter()
            .flat_map(|r| r.files.iter().map(|(_, f)| f.clone()))
            .chain(failed_entries.filter_map(|e| match e {
                Entry::ValueFile { file, .. } => Some(file.clone()),
                _ => None,
            }))
            .collect();
        self.values.remove(self.values.strays(&keep));
        if n > 0 {
            eprintln!(
                "restored {} records, {restored} pins, {} attachments from {n} saved entries",
                cat.records.len(),
                attach.len()
            );
        }
        Ok(())
    }

    fn recreate(&self, store: &Store, source: &Source) -> Result<Objects, String> {
        match source {
            Source::Object {
                file_name,
                stored,
                prog_type,
                prog_flags,
                unprivileged,
                kconfig,
                target_btf,
            } => {
                let bytes = store
                    .read_object(stored, MAX_OBJECT)
                    .map_err(|e| render::error_chain(&e))?;
                let obj = super::handlers::parse_object(file_name, &bytes, prog_type.as_deref())?;
                let target_btf = match target_btf {
                    Some(f) => {
                        let raw = store
                            .read_object(f, MAX_OBJECT)
                            .map_err(|e| render::error_chain(&e))?;
                        Some(super::handlers::target_btf_opt(&raw)?)
                    }
                    None => None,
                };
                let opts = bpfvm::LoadOpts {
                    prog_flags: *prog_flags,
                    unprivileged: *unprivileged,
                    kconfig: super::handlers::kconfig_opt(kconfig.as_deref()),
                    target_btf,
                    ..Default::default()
                };
                let loaded = self
                    .rt
                    .load_object_with(&obj, None, &opts)
                    .map_err(|e| render::error_chain(&e))?;
                Ok((loaded.progs.clone(), loaded.maps.clone()))
            }
            Source::Map {
                map_type,
                key,
                value,
                entries,
                flags,
                name,
                inner,
            } => {
                // A template made again from its definition, held only for
                // the outer map's creation (as a loader closes its fd).
                let template = match inner {
                    Some(i) => match self.rt.bpf(BpfCmd::MapCreate(MapCreateAttr {
                        map_type: stored_map_type(i.map_type)?,
                        key_size: i.key,
                        value_size: i.value,
                        max_entries: i.entries,
                        map_flags: i.flags,
                        ..MapCreateAttr::default()
                    })) {
                        Ok(BpfReply::Map(fd)) => Some(fd),
                        Ok(_) => return Err("unexpected reply".into()),
                        Err(e) => return Err(format!("inner map: {}", render::error_chain(&e))),
                    },
                    None => None,
                };
                let attr = MapCreateAttr {
                    map_type: stored_map_type(*map_type)?,
                    key_size: *key,
                    value_size: *value,
                    max_entries: *entries,
                    map_flags: *flags,
                    name: name.clone(),
                    inner_map_id: template.as_ref().map(|t| t.id()),
                    ..MapCreateAttr::default()
                };
                match self.rt.bpf(BpfCmd::MapCreate(attr)) {
                    Ok(BpfReply::Map(fd)) => Ok((Vec::new(), vec![(name.clone(), fd)])),
                    Ok(_) => Err("unexpected reply".into()),
                    Err(e) => Err(render::error_chain(&e)),
                }
            }
        }
    }

    /// Writes the live state as a new snapshot (see [`Store::compact`]).
    pub(crate) fn compact(&self, cat: &Catalog, store: &mut Store) -> Result<(), StoreError> {
        store.compact(|w| self.write_snapshot(cat, w))
    }

    fn write_snapshot(&self, cat: &Catalog, w: &mut SnapshotWriter) -> std::io::Result<()> {
        let live: Vec<&Record> = cat.records.iter().filter(|r| r.alive()).collect();
        // Records first: map entries may refer to another record's objects.
        for r in &live {
            w.entry(&Entry::Record {
                id: r.id,
                source: r.source.clone(),
            })?;
        }
        for r in &live {
            for (name, m) in &r.maps {
                let Some(m) = m.upgrade() else { continue };
                match r.file_of(name) {
                    // The file holds the values: the snapshot only names it.
                    Some(file) => {
                        w.entry(&Entry::ValueFile {
                            record: r.id,
                            map: name.clone(),
                            file: file.to_string(),
                        })?;
                        if m.is_frozen() {
                            w.entry(&Entry::MapFreeze {
                                record: r.id,
                                map: name.clone(),
                            })?;
                        }
                    }
                    None => self.write_map(cat, r.id, name, &m, w)?,
                }
            }
        }
        for (path, obj) in self.rt.pins() {
            let found = match &obj {
                Pinned::Prog(p) => cat.prog_ref(p.id()).map(|r| (r, "prog")),
                Pinned::Map(m) => cat.map_ref(m.id()).map(|r| (r, "map")),
            };
            if let Some(((record, name), kind)) = found {
                w.entry(&Entry::Pin {
                    record,
                    kind: kind.into(),
                    name,
                    path,
                })?;
            }
        }
        for (dev, prog_id) in self.net.attachments() {
            if let Some((record, prog)) = cat.prog_ref(prog_id) {
                w.entry(&Entry::Attach { dev, record, prog })?;
            }
        }
        for l in cat.failed.values().flatten() {
            w.loaded(l)?;
        }
        Ok(())
    }

    fn write_map(
        &self,
        cat: &Catalog,
        record: u64,
        name: &str,
        m: &MapObj,
        w: &mut SnapshotWriter,
    ) -> std::io::Result<()> {
        let t = m.map_type();
        if matches!(t, MapType::Array | MapType::PercpuArray) {
            if let Some((len, segments, blob)) = array_image(m) {
                w.array(record, name, len, segments, &blob)?;
            }
        } else if let Some(values) = m.pushed_values() {
            // Queues and stacks: pushed again in order at a restart.
            for v in values {
                w.entry(&Entry::MapPush {
                    record,
                    map: name.to_string(),
                    value: proto::to_hex(&v),
                })?;
            }
        } else if saved_by_key(t) {
            let map = RawMap::from_id(&self.rt, m.id).ok();
            for next in map.iter().flat_map(|map| map.keys().map_while(Result::ok)) {
                if let Some(value) = self.saved_value(cat, m, &next) {
                    w.entry(&Entry::MapSet {
                        record,
                        map: name.to_string(),
                        key: proto::to_hex(&next),
                        value,
                    })?;
                }
            }
        }
        if m.is_frozen() {
            w.entry(&Entry::MapFreeze {
                record,
                map: name.to_string(),
            })?;
        }
        Ok(())
    }

    /// The value at `key` as saved: bytes, or a reference for fd maps.
    pub(crate) fn saved_value(&self, cat: &Catalog, m: &MapObj, key: &[u8]) -> Option<SavedValue> {
        let v = match self.rt.bpf(BpfCmd::MapLookupElem {
            map_id: m.id,
            key: key.to_vec(),
            flags: 0,
        }) {
            Ok(BpfReply::Bytes(v)) => v,
            _ => return None,
        };
        if is_fd_map(m.map_type()) {
            let id = u32::from_le_bytes(v.get(..4)?.try_into().ok()?);
            if m.map_type() == MapType::ProgArray {
                let (record, name) = cat.prog_ref(id)?;
                Some(SavedValue::Prog { record, name })
            } else {
                let (record, name) = cat.map_ref(id)?;
                Some(SavedValue::Map { record, name })
            }
        } else {
            Some(SavedValue::Hex(proto::to_hex(&v)))
        }
    }
}

/// A map type as the store records it (the kernel's number).
fn stored_map_type(t: u32) -> Result<bpfvm::maps::MapType, String> {
    bpfvm::maps::MapType::from_u32(t).ok_or_else(|| format!("unknown map type {t}"))
}
