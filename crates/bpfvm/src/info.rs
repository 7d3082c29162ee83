//! `BPF_OBJ_GET_INFO_BY_FD`: what `bpftool prog show` / `map show` / `btf show` print,
//! under bpftool's JSON field names.

use crate::kernel::{BtfObj, MapObj, ProgObj};
use serde::{Deserialize, Serialize};
use std::time::UNIX_EPOCH;

/// What `bpftool prog show` prints of a program.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProgInfo {
    /// The program's id.
    pub id: u32,
    /// The program type, by bpftool's name (`xdp`, `socket_filter`, ...).
    #[serde(rename = "type")]
    pub prog_type: String,
    /// The program's name.
    pub name: String,
    /// The program tag, 16 hex digits.
    pub tag: String,
    /// Whether the license is GPL-compatible.
    pub gpl_compatible: bool,
    /// Seconds since the epoch.
    pub loaded_at: u64,
    /// The user that loaded the program.
    pub uid: u32,
    /// Whether the program outlived its loader's references (always false here).
    pub orphaned: bool,
    /// Size of the translated instructions in bytes.
    pub bytes_xlated: u32,
    /// Whether the program runs as native code.
    pub jited: bool,
    /// Size of the native code in bytes (0 when not JIT-compiled).
    pub bytes_jited: u32,
    /// Memory charged for the program, in whole pages.
    pub bytes_memlock: u32,
    /// Ids of the maps the program uses.
    pub map_ids: Vec<u32>,
    /// The program's BTF, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub btf_id: Option<u32>,
    /// Runs counted.
    pub run_cnt: u64,
    /// Time spent in runs, in nanoseconds.
    pub run_time_ns: u64,
}

/// What `bpftool map show` prints of a map.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MapInfo {
    /// The map's id.
    pub id: u32,
    /// The map type, by bpftool's name (`hash`, `array`, ...).
    #[serde(rename = "type")]
    pub map_type: String,
    /// The map's name.
    pub name: String,
    /// `map_flags` at creation.
    pub flags: u32,
    /// Key size in bytes.
    pub bytes_key: u32,
    /// Value size in bytes.
    pub bytes_value: u32,
    /// Maximum number of elements.
    pub max_entries: u32,
    /// Memory the map holds, in bytes.
    pub bytes_memlock: u64,
    /// Whether user space froze the map.
    pub frozen: bool,
    /// The map's BTF, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub btf_id: Option<u32>,
}

/// What `bpftool btf show` prints of a BTF object.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BtfInfo {
    /// The BTF object's id.
    pub id: u32,
    /// Size of the raw BTF in bytes.
    pub size: usize,
    /// The name of the object it came from.
    pub name: String,
}

/// bpftool's program type names, by `enum bpf_prog_type`.
pub fn prog_type_name(t: u32) -> String {
    bpfvm_obj::ProgType::from_u32(t)
        .map(|p| p.name().to_string())
        .unwrap_or_else(|| format!("type {t}"))
}

pub fn prog_info(p: &ProgObj) -> ProgInfo {
    let bytes_xlated = (p.xlated.len() * 8) as u32;
    ProgInfo {
        id: p.id,
        prog_type: prog_type_name(p.prog_type),
        name: p.name.clone(),
        tag: crate::tag::tag_hex(&p.tag),
        gpl_compatible: p.gpl_compatible,
        loaded_at: p
            .loaded_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        uid: p.uid,
        orphaned: false,
        bytes_xlated,
        jited: p.jit.is_some(),
        bytes_jited: p.jit.as_ref().map_or(0, |j| j.bytes_jited() as u32),
        // The kernel charges whole pages for the program image.
        bytes_memlock: bytes_xlated.next_multiple_of(4096).max(4096),
        map_ids: p.used_maps.iter().map(|m| m.id).collect(),
        btf_id: p.btf.as_ref().map(|b| b.id),
        run_cnt: p.run_cnt.load(std::sync::atomic::Ordering::Relaxed),
        run_time_ns: p.run_time_ns.load(std::sync::atomic::Ordering::Relaxed),
    }
}

pub fn map_info(m: &MapObj) -> MapInfo {
    let a = m.attr();
    MapInfo {
        id: m.id,
        map_type: a.map_type.name().to_string(),
        name: m.name.clone(),
        flags: a.map_flags,
        bytes_key: a.key_size,
        bytes_value: a.value_size,
        max_entries: a.max_entries,
        bytes_memlock: m.ops.memory_usage(),
        frozen: m.ops.is_frozen(),
        btf_id: m.btf.as_ref().map(|b| b.id),
    }
}

pub fn btf_info(b: &BtfObj) -> BtfInfo {
    BtfInfo {
        id: b.id,
        size: b.size,
        name: b.name.clone(),
    }
}
