//! `BPF_OBJ_GET_INFO_BY_FD`: what `bpftool prog show` / `map show` / `btf show` print,
//! under bpftool's JSON field names.

use crate::kernel::{BtfObj, MapObj, ProgObj};
use serde::{Deserialize, Serialize};
use std::time::UNIX_EPOCH;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProgInfo {
    pub id: u32,
    #[serde(rename = "type")]
    pub prog_type: String,
    pub name: String,
    pub tag: String,
    pub gpl_compatible: bool,
    /// Seconds since the epoch.
    pub loaded_at: u64,
    pub uid: u32,
    pub orphaned: bool,
    pub bytes_xlated: u32,
    pub jited: bool,
    pub bytes_jited: u32,
    pub bytes_memlock: u32,
    pub map_ids: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub btf_id: Option<u32>,
    pub run_cnt: u64,
    pub run_time_ns: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MapInfo {
    pub id: u32,
    #[serde(rename = "type")]
    pub map_type: String,
    pub name: String,
    pub flags: u32,
    pub bytes_key: u32,
    pub bytes_value: u32,
    pub max_entries: u32,
    pub bytes_memlock: u64,
    pub frozen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub btf_id: Option<u32>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BtfInfo {
    pub id: u32,
    pub size: usize,
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
