//! Helpers shared by the test files.
#![allow(dead_code)]

use std::sync::Arc;

use bpfvm_maps::*;

pub fn mk(t: MapType, key: u32, value: u32, max: u32) -> Arc<dyn MapOps> {
    mk_flags(t, key, value, max, 0)
}

pub fn mk_flags(t: MapType, key: u32, value: u32, max: u32, flags: u32) -> Arc<dyn MapOps> {
    create_map(&MapAttr::new(t, key, value, max).with_flags(flags), 2)
        .unwrap_or_else(|e| panic!("create {t}: {e}"))
}

pub fn create_err(attr: MapAttr) -> i32 {
    match create_map(&attr, 2) {
        Ok(_) => panic!("create {:?} unexpectedly succeeded", attr),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e.errno()
        }
    }
}

pub fn k32(k: u32) -> [u8; 4] {
    k.to_ne_bytes()
}

pub fn v64(v: u64) -> [u8; 8] {
    v.to_ne_bytes()
}

pub fn read_u64(p: *mut u8) -> u64 {
    // SAFETY: tests only pass pointers from lookup, 8-byte aligned values of >= 8 bytes.
    unsafe { (p as *const u64).read_volatile() }
}

pub fn errno<T: std::fmt::Debug>(r: Result<T, MapError>) -> i32 {
    r.expect_err("expected an error").errno()
}

/// All keys in get_next_key order.
pub fn keys(m: &dyn MapOps) -> Vec<Vec<u8>> {
    let ks = m.attr().key_size as usize;
    let mut out = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    loop {
        let mut next = vec![0u8; ks];
        match m.get_next_key(cur.as_deref(), &mut next) {
            Ok(()) => {
                assert!(
                    out.len() <= m.attr().max_entries as usize,
                    "get_next_key loops"
                );
                out.push(next.clone());
                cur = Some(next);
            }
            Err(e) => {
                assert_eq!(e.errno(), ENOENT, "{e}");
                return out;
            }
        }
    }
}
