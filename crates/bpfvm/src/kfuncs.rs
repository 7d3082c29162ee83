//! Kfuncs at run time, and bpfvm's kernel BTF.
//!
//! The verifier's table (`bpfvm_verifier::kfuncs`) declares every kfunc
//! bpfvm implements with its C prototype; [`kernel_btf`] turns those
//! declarations into BTF (`FUNC`s and their `FUNC_PROTO`s), whose type ids
//! are the BTF ids kfunc calls carry (`BPF_PSEUDO_KFUNC_CALL`, imm = id), as
//! a kernel's calls carry vmlinux BTF ids. The loader resolves an object's
//! extern functions by name ([`resolve`]); the VM runs a kfunc call as a call
//! of the helper with id [`KFUNC_HELPER_BASE`] + BTF id, registered here.
//!
//! What each kfunc does in userspace:
//! - iterators over numbers and bits: as the kernel's (state in the
//!   program's stack; bit words of more than one u64 kept in a table here
//!   until `destroy`);
//! - `bpf_cast_to_kern_ctx`, `bpf_rdonly_cast`: return their argument (the
//!   context bpfvm gives runs is its UAPI view, so reads of kernel-only
//!   fields through the result are verified but not backed);
//! - tasks, cgroups, cpumasks, keys: bpfvm has none, so lookups return NULL
//!   (which the verifier already makes programs handle);
//! - dynptrs (`helpers::dynptr`): over the packet, slices point into it;
//! - XDP metadata: `-EOPNOTSUPP`, the kernel's answer for a program not
//!   bound to a device (every test run);
//! - kfuncs needing a kernel subsystem bpfvm lacks (conntrack) are refused
//!   at load, naming the kfunc, in the programs that call them only.

use crate::helpers::dynptr;
use bpfvm_isa::helpers::{BPF_DYNPTR_TYPE_SKB, BPF_DYNPTR_TYPE_XDP};
use bpfvm_obj::btf::{
    Btf, BtfArray, BtfMember, BtfParam, BtfType, BtfTypeData, BTF_INT_BOOL, BTF_INT_SIGNED,
};
use bpfvm_verifier::kfuncs::{self as table, BtfDecl};
use bpfvm_vm::{HelperCtx, HelperError, HelperOutcome, HelperTable};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Helper id a kfunc with BTF id N runs as: `KFUNC_HELPER_BASE + N`.
pub const KFUNC_HELPER_BASE: u32 = 0x4000_0000;
/// Helper id of a poisoned call (a `__weak` kfunc bpfvm lacks, which the
/// verifier proved unreachable).
pub const POISON_HELPER: u32 = KFUNC_HELPER_BASE - 1;

const EINVAL: i64 = -22;
const E2BIG: i64 = -7;
const EFAULT: i64 = -14;
const EOPNOTSUPP: i64 = -95;
/// `BITS_ITER_NR_WORDS_MAX`
const BITS_ITER_NR_WORDS_MAX: u64 = 511;

/// The BTF id of kfunc `name`, or why bpfvm cannot provide it.
pub fn resolve(name: &str) -> Result<i32, String> {
    if let Some(id) = table::btf_id(name) {
        return Ok(id);
    }
    if let Some((_, what)) = table::UNAVAILABLE.iter().find(|(n, _)| *n == name) {
        return Err(format!(
            "kfunc needs {what}, a kernel subsystem bpfvm does not have"
        ));
    }
    Err("kfunc not found in bpfvm's kernel BTF".into())
}

/// What `LD_IMM64` of a kfunc's address gives (`bpf_ksym_exists`): a
/// non-zero stand-in address.
pub fn kfunc_addr(btf_id: i32) -> u64 {
    0xffff_ffff_c000_0000 | (btf_id as u32 as u64) << 4
}

/// bpfvm's kernel BTF: the kfuncs' prototypes.
pub fn kernel_btf() -> &'static Btf {
    static B: OnceLock<Btf> = OnceLock::new();
    B.get_or_init(|| {
        let mut b = Btf::new();
        for d in table::btf_decls() {
            let t = match d {
                BtfDecl::Int {
                    name,
                    size,
                    signed,
                    is_bool,
                } => BtfType {
                    name_off: b.add_string(name),
                    kind_flag: false,
                    size_or_type: u32::from(*size),
                    func_linkage: 0,
                    data: BtfTypeData::Int {
                        encoding: if *is_bool {
                            BTF_INT_BOOL
                        } else if *signed {
                            BTF_INT_SIGNED
                        } else {
                            0
                        },
                        offset: 0,
                        bits: size * 8,
                    },
                },
                BtfDecl::Ptr(to) => plain(0, *to, BtfTypeData::Ptr),
                BtfDecl::Array {
                    elem,
                    index,
                    nelems,
                } => plain(
                    0,
                    0,
                    BtfTypeData::Array(BtfArray {
                        elem_type: *elem,
                        index_type: *index,
                        nelems: *nelems,
                    }),
                ),
                BtfDecl::Struct { name, size, opaque } => {
                    let name_off = b.add_string(name);
                    match opaque {
                        Some(arr) => {
                            let m = BtfMember {
                                name_off: b.add_string("__opaque"),
                                type_id: *arr,
                                bits_offset: 0,
                                bitfield_size: 0,
                            };
                            plain(name_off, *size, BtfTypeData::Struct(vec![m]))
                        }
                        None => plain(name_off, 0, BtfTypeData::Fwd),
                    }
                }
                BtfDecl::FuncProto { ret, params } => {
                    let ps = params
                        .iter()
                        .map(|(n, t)| BtfParam {
                            name_off: b.add_string(n),
                            type_id: *t,
                        })
                        .collect();
                    plain(0, *ret, BtfTypeData::FuncProto(ps))
                }
                BtfDecl::Func { name, proto } => BtfType {
                    func_linkage: 1,
                    ..plain(b.add_string(name), *proto, BtfTypeData::Func)
                },
            };
            b.add_type(t);
        }
        b
    })
}

fn plain(name_off: u32, size_or_type: u32, data: BtfTypeData) -> BtfType {
    BtfType {
        name_off,
        kind_flag: false,
        size_or_type,
        func_linkage: 0,
        data,
    }
}

type HResult = Result<HelperOutcome, HelperError>;

fn ret(v: i64) -> HResult {
    Ok(HelperOutcome::Return(v as u64))
}

fn u32_at(c: &HelperCtx<'_, '_>, addr: u64) -> Result<u32, HelperError> {
    let b = c.read_bytes(addr, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(c: &HelperCtx<'_, '_>, addr: u64) -> Result<u64, HelperError> {
    let b = c.read_bytes(addr, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(&b);
    Ok(u64::from_le_bytes(a))
}

/// Bit words of `bpf_iter_bits` iterators over more than one u64, by the
/// handle their iterator holds (the kernel allocates them).
fn bit_words() -> &'static Mutex<HashMap<u64, Vec<u64>>> {
    static W: OnceLock<Mutex<HashMap<u64, Vec<u64>>>> = OnceLock::new();
    W.get_or_init(|| Mutex::new(HashMap::new()))
}

fn next_handle() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

// struct bpf_iter_num: { int cur; int end; }
fn iter_num_new(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (it, start, end) = (a[0], a[1] as i32, a[2] as i32);
    let (cur, e, r) = if start > end {
        (0, 0, EINVAL)
    } else if i64::from(end) - i64::from(start) > bpfvm_isa::consts::BPF_MAX_LOOPS as i64 {
        (0, 0, E2BIG)
    } else {
        (start.wrapping_sub(1), end, 0)
    };
    let mut b = cur.to_le_bytes().to_vec();
    b.extend_from_slice(&e.to_le_bytes());
    c.write_bytes(it, &b)?;
    ret(r)
}

fn iter_num_next(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let it = a[0];
    let cur = u32_at(c, it)? as i32;
    let end = u32_at(c, it + 4)? as i32;
    if i64::from(cur) + 1 >= i64::from(end) {
        c.write_bytes(it, &[0; 8])?;
        return ret(0);
    }
    c.write_bytes(it, &(cur + 1).to_le_bytes())?;
    ret(it as i64)
}

fn iter_num_destroy(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    c.write_bytes(a[0], &[0; 8])?;
    ret(0)
}

// struct bpf_iter_bits: { u64 bits_copy or handle; u32 nr_bits; int bit; }
fn iter_bits_new(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (it, ptr, nr_words) = (a[0], a[1], a[2] as u32 as u64);
    let mut init = [0u8; 16];
    init[12..16].copy_from_slice(&(-1i32).to_le_bytes());
    c.write_bytes(it, &init)?;
    if ptr == 0 || nr_words == 0 {
        return ret(EINVAL);
    }
    if nr_words > BITS_ITER_NR_WORDS_MAX {
        return ret(E2BIG);
    }
    // bpf_probe_read_kernel: what the program may not read faults.
    let Ok(bytes) = c.read_bytes(ptr, (nr_words * 8) as usize) else {
        return ret(EFAULT);
    };
    let words: Vec<u64> = bytes
        .chunks(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
        .collect();
    let first = if nr_words == 1 {
        words[0]
    } else {
        let h = next_handle();
        bit_words()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(h, words);
        h
    };
    c.write_bytes(it, &first.to_le_bytes())?;
    c.write_bytes(it + 8, &((nr_words * 64) as u32).to_le_bytes())?;
    ret(0)
}

fn iter_bits_next(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let it = a[0];
    let first = u64_at(c, it)?;
    let nr_bits = u32_at(c, it + 8)?;
    let bit = u32_at(c, it + 12)? as i32;
    if nr_bits == 0 {
        return ret(0);
    }
    let found = {
        let table = bit_words().lock().unwrap_or_else(|e| e.into_inner());
        let words: Vec<u64> = if nr_bits == 64 {
            vec![first]
        } else {
            table.get(&first).cloned().unwrap_or_default()
        };
        let from = (bit + 1).max(0) as u32;
        (from..nr_bits).find(|&b| {
            words
                .get((b / 64) as usize)
                .is_some_and(|w| w >> (b % 64) & 1 == 1)
        })
    };
    match found {
        Some(b) => {
            c.write_bytes(it + 12, &(b as i32).to_le_bytes())?;
            ret((it + 12) as i64)
        }
        None => {
            c.write_bytes(it + 8, &0u32.to_le_bytes())?;
            ret(0)
        }
    }
}

fn iter_bits_destroy(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let it = a[0];
    let first = u64_at(c, it)?;
    let nr_bits = u32_at(c, it + 8)?;
    if nr_bits > 64 {
        bit_words()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&first);
    }
    ret(0)
}

fn zero(_: &mut HelperCtx<'_, '_>, _: [u64; 5]) -> HResult {
    ret(0)
}

fn first_arg(_: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    ret(a[0] as i64)
}

fn not_bound(_: &mut HelperCtx<'_, '_>, _: [u64; 5]) -> HResult {
    ret(EOPNOTSUPP)
}

fn poisoned(_: &mut HelperCtx<'_, '_>, _: [u64; 5]) -> HResult {
    Err(HelperError::InvalidArgument {
        reason: "call of a kfunc that was not resolved".into(),
    })
}

/// `t` with every kfunc added (as helper `KFUNC_HELPER_BASE + BTF id`), and
/// the helpers of the map types bpfvm added with them.
pub fn with_kfuncs(mut t: HelperTable) -> HelperTable {
    register(&mut t);
    crate::maphelpers::register(&mut t);
    t
}

/// Registers every kfunc (as helper `KFUNC_HELPER_BASE + BTF id`).
pub fn register(t: &mut HelperTable) {
    type F = fn(&mut HelperCtx<'_, '_>, [u64; 5]) -> HResult;
    let imp = |name: &str| -> F {
        match name {
            "bpf_iter_num_new" => iter_num_new,
            "bpf_iter_num_next" => iter_num_next,
            "bpf_iter_num_destroy" => iter_num_destroy,
            "bpf_iter_bits_new" => iter_bits_new,
            "bpf_iter_bits_next" => iter_bits_next,
            "bpf_iter_bits_destroy" => iter_bits_destroy,
            "bpf_cast_to_kern_ctx"
            | "bpf_rdonly_cast"
            | "bpf_task_acquire"
            | "bpf_cgroup_acquire" => first_arg,
            n if n.starts_with("bpf_cpumask_") => {
                crate::helpers::cpumask::op(n).unwrap_or(poisoned)
            }
            "bpf_dynptr_from_xdp" => |c, a| dynptr::from_packet(c, a, BPF_DYNPTR_TYPE_XDP),
            "bpf_dynptr_from_skb" => |c, a| dynptr::from_packet(c, a, BPF_DYNPTR_TYPE_SKB),
            "bpf_dynptr_slice" => |c, a| dynptr::slice(c, a, false),
            "bpf_dynptr_slice_rdwr" => |c, a| dynptr::slice(c, a, true),
            "bpf_dynptr_adjust" => dynptr::adjust,
            "bpf_dynptr_is_null" => dynptr::is_null,
            "bpf_dynptr_is_rdonly" => dynptr::is_rdonly,
            "bpf_dynptr_size" => dynptr::size,
            "bpf_dynptr_clone" => dynptr::clone,
            n if n.starts_with("bpf_xdp_metadata_") => not_bound,
            // Lookups of tasks, cgroups, keys, cpumasks find none; releases
            // and the rest have nothing to do.
            _ => zero,
        }
    };
    for k in table::KFUNCS {
        if let Some(id) = table::btf_id(k.name) {
            t.register(KFUNC_HELPER_BASE + id as u32, k.name, imp(k.name));
        }
    }
    t.register(POISON_HELPER, "unresolved_kfunc", poisoned);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_btf_names_every_kfunc_at_its_id() {
        let b = kernel_btf();
        let bytes = b.to_bytes();
        let parsed = Btf::parse(&bytes).expect("bpfvm's kernel BTF parses");
        for k in table::KFUNCS {
            let id = table::btf_id(k.name).unwrap() as u32;
            assert_eq!(parsed.name(id), k.name);
            let f = parsed.type_by_id(id).unwrap();
            let proto = parsed.type_by_id(f.size_or_type).unwrap();
            match &proto.data {
                BtfTypeData::FuncProto(p) => assert_eq!(p.len(), k.params.len(), "{}", k.name),
                other => panic!("{}: {other:?}", k.name),
            }
        }
        assert_eq!(
            resolve("bpf_iter_num_new"),
            Ok(table::btf_id("bpf_iter_num_new").unwrap())
        );
        assert!(resolve("bpf_skb_ct_lookup")
            .unwrap_err()
            .contains("conntrack"));
        assert!(resolve("no_such_kfunc").is_err());
    }
}
