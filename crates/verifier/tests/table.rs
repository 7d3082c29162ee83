//! The verifier table: programs (bpf_conformance assembly) with their program
//! type, privilege, and the expected verdict and error text. Where the host
//! kernel can load programs (root), each privileged case is also loaded into
//! the kernel and its verdict must agree; its error line is compared too.
//! Unprivileged cases are loaded by a forked child that has dropped root
//! (uid 65534, no capabilities), which the kernel allows only while
//! `kernel.unprivileged_bpf_disabled` is 0 (`.ci/run` sets it for the run).
//!
//! Assembly extensions (rewritten before assembling): `map:N` in an `lddw`
//! is a BPF_PSEUDO_MAP_FD reference to map id N, `mapval:N+OFF` a
//! BPF_PSEUDO_MAP_VALUE reference, `fn:SLOT` a BPF_PSEUDO_FUNC to the
//! instruction at absolute slot SLOT; `;` separates instructions.

mod common;
use bpfvm_isa::asm::assemble;
use bpfvm_isa::Insn;
use bpfvm_verifier::*;
use common::*;

const XDP: u32 = BPF_PROG_TYPE_XDP;
const SK: u32 = BPF_PROG_TYPE_SOCKET_FILTER;
const TC: u32 = BPF_PROG_TYPE_SCHED_CLS;
const RAW: u32 = BPF_PROG_TYPE_RAW_TRACEPOINT;
const KP: u32 = BPF_PROG_TYPE_KPROBE;
const SYS: u32 = BPF_PROG_TYPE_SYSCALL;
/// `BPF_PROG_TYPE_NETFILTER` (the kernel loads it only with attach type
/// BPF_NETFILTER, which this table does not pass: its cases are bpfvm's only).
const NF: u32 = 32;
/// `BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE`
const TPW: u32 = 24;

pub struct Case {
    pub name: String,
    pub prog_type: u32,
    pub privileged: bool,
    pub src: String,
    /// None: accepted; Some(text): refused with this error (the last line).
    pub expect: Option<String>,
    /// The host kernel cannot check this case (needs flags or fds we lack).
    pub no_kernel: bool,
}

fn c(name: &str, prog_type: u32, src: &str, expect: Option<&str>) -> Case {
    Case {
        name: name.into(),
        prog_type,
        privileged: true,
        src: src.into(),
        expect: expect.map(String::from),
        no_kernel: false,
    }
}
fn unpriv(name: &str, prog_type: u32, src: &str, expect: Option<&str>) -> Case {
    Case {
        privileged: false,
        ..c(name, prog_type, src, expect)
    }
}
fn nk(mut k: Case) -> Case {
    k.no_kernel = true;
    k
}

pub fn maps() -> Vec<MapDesc> {
    let m =
        |id, map_type, key_size, value_size, max_entries, map_flags, frozen, name: &str| MapDesc {
            id,
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags,
            frozen,
            name: name.into(),
            inner: None,
            // The kernel side creates these maps empty, then freezes them.
            frozen_data: frozen.then(|| vec![0u8; value_size as usize].into()),
            ..Default::default()
        };
    vec![
        m(1, BPF_MAP_TYPE_HASH, 4, 8, 16, 0, false, "hash"),
        m(2, BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, false, "array"),
        m(3, BPF_MAP_TYPE_ARRAY, 4, 48, 1, 0, false, "global"),
        m(
            4,
            BPF_MAP_TYPE_ARRAY,
            4,
            4,
            1,
            BPF_F_RDONLY_PROG,
            true,
            "rodata",
        ),
        m(5, BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, 0, false, "rb"),
        m(6, BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4, 0, false, "jmp"),
        m(7, BPF_MAP_TYPE_QUEUE, 0, 4, 8, 0, false, "queue"),
        // Two maps of maps with different templates (katran's pattern).
        MapDesc {
            inner: Some(Box::new(m(0, BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0, false, "in8"))),
            ..m(8, BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 1, 0, false, "outer8")
        },
        MapDesc {
            inner: Some(Box::new(m(0, BPF_MAP_TYPE_HASH, 4, 1, 1, 0, false, "in1"))),
            ..m(9, BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 1, 0, false, "outer1")
        },
        m(10, BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4, 0, false, "jmp2"),
        // Prog arrays made by a process without CAP_PERFMON.
        MapDesc {
            created_unprivileged: true,
            ..m(11, BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4, 0, false, "ujmp")
        },
        MapDesc {
            created_unprivileged: true,
            ..m(12, BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 8, 0, false, "ujmp2")
        },
    ]
}

/// Assembles a case's source with the map/func extensions.
pub fn build(src: &str) -> Vec<Insn> {
    let mut text = String::new();
    for part in src.split(';') {
        let mut line = part.trim().to_string();
        for (pfx, kind) in [("mapval:", 2u64), ("map:", 1), ("fn:", 4)] {
            if let Some(i) = line.find(pfx) {
                let arg = &line[i + pfx.len()..];
                let (id, off) = match arg.split_once('+') {
                    Some((a, b)) => (
                        a.trim().parse::<u64>().unwrap(),
                        b.trim().parse::<u64>().unwrap(),
                    ),
                    None => (arg.trim().parse::<u64>().unwrap(), 0),
                };
                let v = (0x7ead_0000u64 | kind << 8 | id) << 32 | off;
                line = format!("{}{:#x}", &line[..i], v);
                break;
            }
        }
        text.push_str(&line);
        text.push('\n');
    }
    let mut insns = assemble(&text).unwrap_or_else(|e| panic!("{src}: {e}"));
    let mut i = 0;
    while i < insns.len() {
        if insns[i].code == 0x18 && i + 1 < insns.len() && (insns[i + 1].imm as u32) >> 16 == 0x7ead
        {
            let hi = insns[i + 1].imm as u32;
            let kind = ((hi >> 8) & 0xff) as u8;
            let id = hi & 0xff;
            let off = insns[i].imm;
            insns[i].src_reg = kind;
            if kind == 4 {
                insns[i].imm = id as i32 - (i as i32 + 1);
                insns[i + 1].imm = 0;
            } else {
                insns[i].imm = id as i32;
                insns[i + 1].imm = off;
            }
            i += 2;
            continue;
        }
        i += 1;
    }
    insns
}

const LOOKUP_HASH: &str =
    "mov %r1, 0; stxw [%r10-4], %r1; mov %r2, %r10; add %r2, -4; lddw %r1, map:1; call 1";
const LOOKUP_ARR: &str =
    "mov %r1, 0; stxw [%r10-4], %r1; mov %r2, %r10; add %r2, -4; lddw %r1, map:2; call 1";
/// XDP: r2 = data, r3 = data_end, r4 = data + 14, branch to `out` unless 14 bytes are there.
const PKT14: &str =
    "ldxw %r2, [%r1+0]; ldxw %r3, [%r1+4]; mov %r4, %r2; add %r4, 14; jgt %r4, %r3, out";
const OUT: &str = "mov %r0, 0; exit; out: mov %r0, 1; exit";

fn j(parts: &[&str]) -> String {
    parts.join("; ")
}

pub fn cases() -> Vec<Case> {
    let mut v = vec![
        // ---- accepted: basics
        c("ret0", XDP, "mov %r0, 0; exit", None),
        c("ret_imm32", XDP, "mov32 %r0, 2; exit", None),
        c("lddw", XDP, "lddw %r0, 0x123456789; exit", None),
        c("alu_chain", XDP, "mov %r0, 1; add %r0, 2; mul %r0, 3; sub %r0, 1; div %r0, 2; mod %r0, 3; or %r0, 8; and %r0, 15; xor %r0, 1; lsh %r0, 2; rsh %r0, 1; arsh %r0, 1; neg %r0; exit", None),
        c("alu32_chain", XDP, "mov32 %r0, 1; add32 %r0, 2; mul32 %r0, 3; sub32 %r0, 1; div32 %r0, 2; mod32 %r0, 3; or32 %r0, 8; and32 %r0, 15; xor32 %r0, 1; lsh32 %r0, 2; rsh32 %r0, 1; arsh32 %r0, 1; neg32 %r0; exit", None),
        c("div_by_maybe_zero_reg", XDP, "ldxw %r2, [%r1+12]; mov %r0, 100; div %r0, %r2; exit", None),
        c("mod_by_maybe_zero_reg", XDP, "ldxw %r2, [%r1+12]; mov %r0, 100; mod %r0, %r2; exit", None),
        c("div32_by_maybe_zero_reg", XDP, "ldxw %r2, [%r1+12]; mov32 %r0, 7; div32 %r0, %r2; exit", None),
        c("sdiv_smod", XDP, "ldxw %r2, [%r1+12]; mov %r0, -100; sdiv %r0, %r2; smod %r0, %r2; exit", None),
        c("stack_rw_dw", XDP, "mov %r1, 5; stxdw [%r10-8], %r1; ldxdw %r0, [%r10-8]; exit", None),
        c("stack_st_w", XDP, "stw [%r10-4], 7; ldxw %r0, [%r10-4]; exit", None),
        c("stack_byte", XDP, "stb [%r10-1], 1; ldxb %r0, [%r10-1]; exit", None),
        c("stack_bottom", XDP, "stdw [%r10-512], 1; ldxdw %r0, [%r10-512]; exit", None),
        c("stack_uninit_read_privileged", XDP, "ldxdw %r0, [%r10-8]; exit", None),
        c("spill_fill_ctx", XDP, "stxdw [%r10-8], %r1; ldxdw %r2, [%r10-8]; ldxw %r0, [%r2+12]; exit", None),
        c("spill_fill_scalar_bounds", XDP, "ldxw %r2, [%r1+12]; and %r2, 3; stxdw [%r10-16], %r2; ldxdw %r3, [%r10-16]; mov %r0, 0; exit", None),
        c("pkt_checked_jgt", XDP, &j(&[PKT14, "ldxb %r0, [%r2+13]", OUT]), None),
        c("pkt_checked_jlt", XDP, "ldxw %r2, [%r1+0]; ldxw %r3, [%r1+4]; mov %r4, %r2; add %r4, 14; jlt %r3, %r4, out; ldxh %r0, [%r2+12]; mov %r0, 0; exit; out: mov %r0, 1; exit", None),
        c("pkt_checked_jge", XDP, "ldxw %r2, [%r1+0]; ldxw %r3, [%r1+4]; mov %r4, %r2; add %r4, 14; jge %r4, %r3, out; ldxw %r0, [%r2+8]; mov %r0, 0; exit; out: mov %r0, 1; exit", None),
        c("pkt_checked_jle", XDP, "ldxw %r2, [%r1+0]; ldxw %r3, [%r1+4]; mov %r4, %r2; add %r4, 8; jle %r4, %r3, ok; mov %r0, 1; exit; ok: ldxdw %r0, [%r2+0]; exit", None),
        c("pkt_write", XDP, &j(&[PKT14, "stb [%r2+0], 1", OUT]), None),
        c("pkt_read_via_copy", XDP, &j(&[PKT14, "ldxw %r0, [%r4-4]", OUT]), None),
        c("pkt_meta_checked", XDP, "ldxw %r2, [%r1+8]; ldxw %r3, [%r1+0]; mov %r4, %r2; add %r4, 4; jgt %r4, %r3, out; ldxw %r0, [%r2+0]; mov %r0, 0; exit; out: mov %r0, 1; exit", None),
        c("pkt_var_offset_checked", XDP, "ldxw %r2, [%r1+0]; ldxw %r3, [%r1+4]; ldxw %r5, [%r1+12]; and %r5, 0xff; add %r2, %r5; mov %r4, %r2; add %r4, 4; jgt %r4, %r3, out; ldxw %r0, [%r2+0]; mov %r0, 0; exit; out: mov %r0, 1; exit", None),
        c("pkt_two_checks", XDP, &j(&[PKT14, "mov %r5, %r2; add %r5, 34; jgt %r5, %r3, out; ldxw %r0, [%r2+30]", OUT]), None),
        c("map_lookup_null_checked", XDP, &j(&[LOOKUP_HASH, "jeq %r0, 0, out; ldxdw %r0, [%r0+0]", OUT]), None),
        c("map_lookup_jne_checked", XDP, &j(&[LOOKUP_HASH, "jne %r0, 0, ok; mov %r0, 0; exit; ok: ldxdw %r0, [%r0+0]; exit"]), None),
        c("map_lookup_copy_checked", XDP, &j(&[LOOKUP_HASH, "mov %r6, %r0; jeq %r6, 0, out; ldxdw %r0, [%r0+0]", OUT]), None),
        c("array_const_key_nonnull", XDP, &j(&[LOOKUP_ARR, "ldxdw %r0, [%r0+0]; exit"]), None),
        c("map_update", XDP, "mov %r1, 0; stxw [%r10-4], %r1; stdw [%r10-16], 5; mov %r2, %r10; add %r2, -4; mov %r3, %r10; add %r3, -16; mov %r4, 0; lddw %r1, map:1; call 2; exit", None),
        c("map_delete", XDP, "stw [%r10-4], 1; mov %r2, %r10; add %r2, -4; lddw %r1, map:1; call 3; exit", None),
        c("map_value_write", XDP, &j(&[LOOKUP_HASH, "jeq %r0, 0, out; stdw [%r0+0], 1", OUT]), None),
        // A non-NULL pointer whose variable offset may reach 2^29 may wrap to
        // 0 (`reg_not_null`): the NULL branch is walked, and refused here.
        c("nonnull_large_var_off_walks_null_branch", XDP, &j(&[LOOKUP_ARR, "ldxw %r2, [%r0+0]; and %r2, 0x3fffffff; add %r0, %r2; jeq %r0, 0, bad; mov %r0, 0; exit; bad: ldxdw %r0, [%r9+0]; exit"]), Some("R9 !read_ok")),
        c("nonnull_small_var_off_skips_null_branch", XDP, &j(&[LOOKUP_ARR, "ldxw %r2, [%r0+0]; and %r2, 0xffff; add %r0, %r2; jeq %r0, 0, bad; mov %r0, 0; exit; bad: ldxdw %r0, [%r9+0]; exit"]), None),
        c("map_value_index_masked", XDP, &j(&["mov %r6, %r1", LOOKUP_ARR, "ldxw %r2, [%r6+12]; and %r2, 7; add %r0, %r2; ldxb %r0, [%r0+0]; exit"]), None),
        c("map_value_index_checked", XDP, &j(&["mov %r6, %r1", LOOKUP_ARR, "ldxw %r2, [%r6+12]; jgt %r2, 4, out; add %r0, %r2; ldxw %r0, [%r0+0]", OUT]), None),
        c("map_value_signed_checked", XDP, &j(&["mov %r6, %r1", LOOKUP_ARR, "ldxw %r2, [%r6+12]; lsh %r2, 32; arsh %r2, 32; jslt %r2, 0, out; jsgt %r2, 7, out; add %r0, %r2; ldxb %r0, [%r0+0]", OUT]), None),
        c("global_read", XDP, "lddw %r1, mapval:3+8; ldxdw %r0, [%r1+0]; exit", None),
        c("global_write", XDP, "lddw %r1, mapval:3+0; stdw [%r1+40], 1; mov %r0, 0; exit", None),
        c("rodata_read", XDP, "lddw %r1, mapval:4+0; ldxw %r0, [%r1+0]; exit", None),
        // Precision: a value that decides an access only after it was
        // combined (ALU), spilled and filled, or linked by id must keep the
        // join point from pruning the path where it is out of range.
        c("precise_through_alu", SK, "ldxw %r3, [%r1+0]; mov %r2, 16; mov %r7, 0; mov %r8, 0; jeq %r7, 1, +0; mov %r9, 0; jeq %r8, 1, +0; mov %r7, 1; mov %r8, 1; mov %r9, 1; jgt %r3, 10, +1; mov %r2, 0; mov %r5, -8; add %r5, %r2; mov %r6, %r10; add %r6, %r5; stb [%r6-1], 0; mov %r0, 0; exit", Some("invalid write to stack R6 off=7 size=1")),
        c("precise_through_spill", SK, "ldxw %r3, [%r1+0]; mov %r2, 16; mov %r7, 0; mov %r8, 0; jeq %r7, 1, +0; mov %r9, 0; jeq %r8, 1, +0; mov %r7, 1; mov %r8, 1; mov %r9, 1; jgt %r3, 10, +1; mov %r2, 0; stxdw [%r10-16], %r2; mov %r2, 0; ldxdw %r5, [%r10-16]; add %r5, -8; mov %r6, %r10; add %r6, %r5; stb [%r6-1], 0; mov %r0, 0; exit", Some("invalid write to stack R6 off=7 size=1")),
        c("precise_loop_sum_ok", SK, "mov %r6, 0; mov %r7, 0; l: ldxw %r2, [%r1+0]; add %r6, %r2; add %r7, 1; jlt %r7, 64, l; mov %r0, %r6; exit", None),
        // A frozen read-only value is a known constant (0 here): it can index the stack.
        c("rodata_const_index", XDP, "lddw %r1, mapval:4+0; ldxw %r2, [%r1+0]; mov %r3, %r10; add %r3, -8; add %r3, %r2; stb [%r3+0], 0; mov %r0, 0; exit", None),
        c("rodata_const_branch", XDP, "lddw %r1, mapval:4+0; ldxw %r2, [%r1+0]; jeq %r2, 0, +1; ldxw %r0, [%r2+0]; mov %r0, 0; exit", None),
        c("rwdata_not_const", XDP, "lddw %r1, mapval:3+0; ldxw %r2, [%r1+0]; mov %r3, %r10; add %r3, -8; add %r3, %r2; stb [%r3+0], 0; mov %r0, 0; exit", Some("invalid unbounded variable-offset write to stack R3")),
        c("ringbuf_submit", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; call 131; jeq %r0, 0, out; stdw [%r0+8], 1; mov %r1, %r0; mov %r2, 0; call 132; out: mov %r0, 0; exit", None),
        c("ringbuf_discard", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; call 131; jeq %r0, 0, out; mov %r1, %r0; mov %r2, 0; call 133; out: mov %r0, 0; exit", None),
        c("ringbuf_output", XDP, "stdw [%r10-8], 1; lddw %r1, map:5; mov %r2, %r10; add %r2, -8; mov %r3, 8; mov %r4, 0; call 130; exit", None),
        c("ringbuf_query", XDP, "lddw %r1, map:5; mov %r2, 0; call 134; exit", None),
        c("trace_printk", XDP, "stdw [%r10-8], 0x41; mov %r1, %r10; add %r1, -8; mov %r2, 8; call 6; exit", None),
        c("ktime", XDP, "call 5; exit", None),
        c("prandom", XDP, "call 7; exit", None),
        c("smp_id", XDP, "call 8; exit", None),
        c("jiffies", XDP, "call 118; exit", None),
        c("boot_ns", XDP, "call 125; exit", None),
        c("coarse_ns", XDP, "call 160; exit", None),
        c("numa_node", XDP, "call 42; exit", None),
        c("tail_call", XDP, "lddw %r2, map:6; mov %r3, 0; call 12; mov %r0, 0; exit", None),
        c("redirect", XDP, "mov %r1, 1; mov %r2, 0; call 23; exit", None),
        c("csum_diff", XDP, "stdw [%r10-8], 0; mov %r1, %r10; add %r1, -8; mov %r2, 8; mov %r3, 0; mov %r4, 0; mov %r5, 0; call 28; exit", None),
        c("xdp_adjust_head_reload", XDP, "mov %r6, %r1; mov %r2, -14; call 44; ldxw %r2, [%r6+0]; ldxw %r3, [%r6+4]; mov %r4, %r2; add %r4, 1; jgt %r4, %r3, out; ldxb %r0, [%r2+0]; mov %r0, 0; exit; out: mov %r0, 1; exit", None),
        c("xdp_adjust_tail", XDP, "mov %r2, -4; call 65; mov %r0, 2; exit", None),
        c("queue_push", XDP, "stw [%r10-4], 5; lddw %r1, map:7; mov %r2, %r10; add %r2, -4; mov %r3, 0; call 87; exit", None),
        c("queue_pop", XDP, "lddw %r1, map:7; mov %r2, %r10; add %r2, -4; call 88; exit", None),
        c("queue_peek", XDP, "lddw %r1, map:7; mov %r2, %r10; add %r2, -4; call 89; exit", None),
        c("strncmp_rodata", XDP, "stdw [%r10-8], 0x61; mov %r1, %r10; add %r1, -8; mov %r2, 8; lddw %r3, mapval:4+0; call 182; exit", None),
        c("bpf_to_bpf", XDP, "mov %r1, 1; call local f; exit; f: mov %r0, %r1; exit", None),
        c("subprog_stack", XDP, "call local f; exit; f: stdw [%r10-8], 1; ldxdw %r0, [%r10-8]; exit", None),
        c("subprog_reads_caller_stack", XDP, "stdw [%r10-8], 3; mov %r1, %r10; add %r1, -8; call local f; exit; f: ldxdw %r0, [%r1+0]; exit", None),
        c("subprog_writes_caller_stack", XDP, "mov %r1, %r10; add %r1, -8; call local f; ldxdw %r0, [%r10-8]; exit; f: stdw [%r1+0], 4; mov %r0, 0; exit", None),
        c("subprog_3_deep", XDP, "call local a; exit; a: call local b; exit; b: call local d; exit; d: mov %r0, 0; exit", None),
        c("subprog_callee_saved", XDP, "mov %r6, 7; call local f; mov %r0, %r6; exit; f: mov %r0, 0; exit", None),
        c("loop_10", XDP, "mov %r0, 0; mov %r1, 0; l: add %r0, %r1; add %r1, 1; jlt %r1, 10, l; exit", None),
        c("loop_1000", XDP, "mov %r0, 0; mov %r1, 0; l: add %r0, 1; add %r1, 1; jlt %r1, 1000, l; exit", None),
        c("loop_pkt_bytes", XDP, "ldxw %r2, [%r1+0]; ldxw %r3, [%r1+4]; mov %r0, 0; mov %r5, 0; l: mov %r4, %r2; add %r4, 1; jgt %r4, %r3, done; ldxb %r6, [%r2+0]; add %r0, %r6; mov %r2, %r4; add %r5, 1; jlt %r5, 16, l; done: exit", None),
        c("jset", XDP, "ldxw %r2, [%r1+12]; jset %r2, 1, out; mov %r0, 0; exit; out: mov %r0, 1; exit", None),
        c("jmp32", XDP, "ldxw %r2, [%r1+12]; jgt32 %r2, 5, out; mov %r0, 0; exit; out: mov %r0, 1; exit", None),
        c("jsgt", XDP, "ldxw %r2, [%r1+12]; jsgt %r2, 5, out; mov %r0, 0; exit; out: mov %r0, 1; exit", None),
        c("dead_branch_uninit", XDP, "mov %r0, 0; jeq %r0, 0, +1; ldxdw %r0, [%r5+0]; exit", None),
        c("xdp_ctx_fields", XDP, "ldxw %r0, [%r1+12]; ldxw %r2, [%r1+16]; add %r0, %r2; exit", None),
        c("atomic_add_stack", XDP, "stdw [%r10-8], 0; mov %r1, 1; lock add [%r10-8], %r1; ldxdw %r0, [%r10-8]; exit", None),
        c("atomic_fetch_add_map", XDP, &j(&[LOOKUP_ARR, "mov %r1, 1; lock fetch add [%r0+0], %r1; mov %r0, %r1; exit"]), None),
        c("atomic_cmpxchg_map", XDP, &j(&[LOOKUP_ARR, "mov %r1, %r0; mov %r0, 0; mov %r2, 1; lock cmpxchg [%r1+0], %r2; exit"]), None),
        c("atomic_xchg32_map", XDP, &j(&[LOOKUP_ARR, "mov %r1, 1; lock xchg32 [%r0+0], %r1; mov %r0, %r1; exit"]), None),
        c("bswap_be16", XDP, "ldxw %r0, [%r1+12]; be16 %r0; exit", None),
        c("bswap_le32", XDP, "ldxw %r0, [%r1+12]; le32 %r0; exit", None),
        c("movsx", XDP, "ldxw %r2, [%r1+12]; movsx864 %r0, %r2; movsx1632 %r0, %r2; exit", None),
        c("ldsx", XDP, &j(&[LOOKUP_ARR, "ldxsb %r1, [%r0+0]; ldxsh %r2, [%r0+2]; ldxsw %r0, [%r0+4]; exit"]), None),
        c("gotol", XDP, "ja32 +1; exit; mov %r0, 0; ja -3", None),
        c("raw_tp_args", RAW, "ldxdw %r0, [%r1+8]; exit", None),
        c("raw_tp_arg_u32", RAW, "ldxw %r0, [%r1+16]; exit", None),
        c("kprobe_regs", KP, "ldxdw %r0, [%r1+80]; exit", None),
        // A writable raw tracepoint's buffer (PTR_TO_TP_BUFFER): constant,
        // non-negative offsets only.
        c("tp_buffer_variable_offset", TPW, "ldxdw %r6, [%r1+0]; call 7; and %r0, 7; add %r6, %r0; stdw [%r6+0], 1; mov %r0, 0; exit", Some("R6 invalid variable buffer offset: off=0, var_off=(0x0; 0x7)")),
        c("tp_buffer_negative_offset", TPW, "ldxdw %r6, [%r1+0]; add %r6, 8; stdw [%r6-16], 1; mov %r0, 0; exit", Some("R6 invalid tracepoint buffer access: off=-8, size=8")),
        // struct bpf_nf_ctx: state and skb are trusted BTF pointers.
        nk(c("netfilter_state_returned", NF, "ldxdw %r0, [%r1+0]; exit", Some("At program exit the register R0 is not a known value (trusted_ptr_)"))),
        nk(c("netfilter_skb_write", NF, "ldxdw %r1, [%r1+8]; stw [%r1+0], 0; mov %r0, 1; exit", Some("only read is supported (R1 is trusted_ptr_)"))),
        nk(c("netfilter_skb_compared", NF, "ldxdw %r2, [%r1+8]; mov %r0, 0; jeq %r2, 0, out; mov %r0, 1; out: exit", None)),
        // bpf_copy_from_user_task may sleep: a kprobe is offered it but may
        // not call it (BPF_F_SLEEPABLE programs may).
        c(
            "copy_from_user_task_not_sleepable",
            KP,
            "mov %r1, %r10; add %r1, -8; mov %r2, 8; mov %r3, 0; mov %r4, 0; mov %r5, 0; call 191; mov %r0, 0; exit",
            Some("helper call might sleep in a non-sleepable prog"),
        ),
        c("kprobe_pid_tgid", KP, "call 14; exit", None),
        c("kprobe_uid_gid", KP, "call 15; exit", None),
        c("kprobe_comm", KP, "mov %r1, %r10; add %r1, -16; mov %r2, 16; call 16; mov %r0, 0; exit", None),
        c("kprobe_probe_read_kernel", KP, "mov %r1, %r10; add %r1, -8; mov %r2, 8; mov %r3, 0; call 113; mov %r0, 0; exit", None),
        c("kprobe_probe_read_user_str", KP, "mov %r1, %r10; add %r1, -8; mov %r2, 8; mov %r3, 0; call 114; mov %r0, 0; exit", None),
        c("sk_len", SK, "ldxw %r0, [%r1+0]; exit", None),
        c("sk_cb_write", SK, "stw [%r1+48], 1; mov %r0, 0; exit", None),
        c("sk_narrow_protocol", SK, "ldxh %r0, [%r1+16]; exit", None),
        c("sk_ld_abs", SK, "mov %r6, %r1; ldabsb 12; exit", None),
        c("sk_ld_ind", SK, "mov %r6, %r1; mov %r7, 2; ldindh %r7, 10; exit", None),
        c("sk_load_bytes", SK, "mov %r2, 0; mov %r3, %r10; add %r3, -8; mov %r4, 8; call 26; mov %r0, 0; exit", None),
        c("tc_mark_write", TC, "stw [%r1+8], 1; mov %r0, 0; exit", None),
        c("tc_pkt_checked", TC, "ldxw %r2, [%r1+76]; ldxw %r3, [%r1+80]; mov %r4, %r2; add %r4, 14; jgt %r4, %r3, out; ldxb %r0, [%r2+12]; mov %r0, 0; exit; out: mov %r0, 0; exit", None),
        c("tc_priority_write", TC, "stw [%r1+32], 3; mov %r0, 0; exit", None),
        nk(c("bpf_loop_cb", XDP, "mov %r1, 10; lddw %r2, fn:8; mov %r3, 0; mov %r4, 0; call 181; mov %r0, 0; exit; mov %r0, 0; exit", None)), // the kernel wants BTF func_info for callbacks
        nk(c("bpf_loop_ctx_counter", XDP, "stdw [%r10-8], 0; mov %r1, 10; lddw %r2, fn:10; mov %r3, %r10; add %r3, -8; mov %r4, 0; call 181; ldxdw %r0, [%r10-8]; exit; ldxdw %r3, [%r2+0]; add %r3, 1; stxdw [%r2+0], %r3; mov %r0, 0; exit", None)),
        c("join_paths", XDP, "ldxw %r2, [%r1+12]; mov %r0, 0; jeq %r2, 1, a; mov %r0, 1; a: jeq %r2, 2, b; add %r0, 1; b: exit", None),
        c("ptr_sub_pkt", XDP, "ldxw %r2, [%r1+0]; ldxw %r3, [%r1+4]; sub %r3, %r2; mov %r0, %r3; exit", None),
        c("mov32_ptr_privileged", XDP, "mov32 %r0, %r10; exit", None),
        c("stack_var_offset_in_range", XDP, "ldxw %r2, [%r1+12]; and %r2, 7; mov %r3, %r10; add %r3, -16; add %r3, %r2; stb [%r3+0], 1; mov %r0, 0; exit", None),
        c("map_value_var_helper_size", XDP, &j(&["mov %r6, %r1", LOOKUP_ARR, "mov %r1, %r0; ldxw %r2, [%r6+12]; and %r2, 7; add %r2, 1; call 6; exit"]), None),
        // An inner map spilled, then another map of maps looked up: the
        // filled pointer keeps its own template (value_size 8, not 1).
        c("map_in_map_templates_kept_apart", XDP, &j(&["stw [%r10-4], 0; mov %r2, %r10; add %r2, -4; lddw %r1, map:8; call 1; jeq %r0, 0, out; stxdw [%r10-16], %r0",
            "mov %r2, %r10; add %r2, -4; lddw %r1, map:9; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, %r10; add %r2, -4; call 1; jeq %r0, 0, out; ldxb %r3, [%r0+0]",
            "ldxdw %r1, [%r10-16]; mov %r2, %r10; add %r2, -4; call 1; jeq %r0, 0, out; ldxdw %r0, [%r0+0]", OUT]), None),
        c("map_in_map_inner_value_size", XDP, &j(&["stw [%r10-4], 0; mov %r2, %r10; add %r2, -4; lddw %r1, map:9; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, %r10; add %r2, -4; call 1; jeq %r0, 0, out; ldxh %r0, [%r0+0]", OUT]), Some("R0 min value is outside of the allowed memory range")),
        // `<<= 32; s>>= 32` sign-extends the low half: its signed range survives.
        c("sign_extend_keeps_s32_range", XDP, &j(&["mov %r6, %r1", LOOKUP_ARR, "jeq %r0, 0, out; ldxw %r2, [%r6+12]; and %r2, 7; sub %r2, 4; lsh %r2, 32; arsh %r2, 32; jslt %r2, 0, out; add %r0, %r2; ldxb %r0, [%r0+4]", OUT]), None),
        // The JIT rounds each frame up to 16 bytes: 488+8 fits in 512.
        c("stack_frames_round_to_16", XDP, "stdw [%r10-488], 0; call local f; exit; f: stdw [%r10-8], 0; mov %r0, 0; exit", None),
        // bpf_fastcall: a spill/fill pair around bpf_get_smp_processor_id, which
        // the kernel inlines, does not count in the function's stack.
        c("fastcall_spill_not_counted", XDP, "stdw [%r10-512], 42; call local f; exit; f: stxdw [%r10-8], %r1; call 8; ldxdw %r1, [%r10-8]; exit", None),
        // `r1 = r0; r1 += 1`: bounds learnt on r0 reach r1, moved by 1.
        c("linked_add_const", XDP, &j(&[LOOKUP_ARR, "jeq %r0, 0, out; mov %r6, %r0; call 5; mov %r1, %r0; add %r1, 1; jgt %r0, 6, out; add %r6, %r1; ldxb %r0, [%r6+0]", OUT]), None),
        // bpf_sk_lookup_tcp's tuple may be in the packet (`pkt_access`).
        c("sk_lookup_tuple_in_packet", TC, "ldxw %r2, [%r1+76]; ldxw %r3, [%r1+80]; mov %r0, %r2; add %r0, 64; jgt %r0, %r3, out; mov %r3, 36; mov %r4, 0; mov %r5, 0; call 84; jeq %r0, 0, out; mov %r1, %r0; call 86; out: mov %r0, 0; exit", None),
        // ---- refused: control flow
        c("no_exit", XDP, "mov %r0, 0", Some("last insn is not an exit or jmp")),
        c("unreachable", XDP, "mov %r0, 0; exit; mov %r0, 1; exit", Some("unreachable insn 2")),
        c("jump_out_of_range", XDP, "ja +5; exit", Some("jump out of range from insn 0 to 6")),
        c("jump_before_start", XDP, "ja -5; exit", Some("jump out of range from insn 0 to -4")),
        c("jump_into_ldimm64", XDP, "ja +1; lddw %r0, 1; exit", Some("unreachable insn 1")),
        c("fall_off_cond", XDP, "mov %r0, 0; jeq %r0, 0, -2", Some("last insn is not an exit or jmp")),
        c("infinite_loop", XDP, "l: mov %r0, 0; ja l", Some("infinite loop detected at insn 0")),
        c("loop_never_ends", XDP, "mov %r0, 0; l: add %r0, 1; jne %r0, 0, l; exit", Some("BPF program is too large. Processed 1000001 insn")),
        unpriv("back_edge_unpriv", SK, "mov %r0, 0; l: add %r0, 1; jlt %r0, 10, l; exit", Some("back-edge from insn 2 to 1")),
        c("callx", XDP, "mov %r1, 0; call %r1; exit", Some("unknown opcode 8d")),
        // ---- refused: registers
        c("uninit_reg", XDP, "mov %r0, %r2; exit", Some("R2 !read_ok")),
        c("uninit_r0_exit", XDP, "exit", Some("R0 !read_ok")),
        c("write_fp", XDP, "mov %r10, 0; exit", Some("frame pointer is read only")),
        c("uninit_helper_arg", XDP, "lddw %r1, map:1; call 1; exit", Some("R2 !read_ok")),
        c("helper_ctx_as_map", XDP, "call 1; exit", Some("R1 type=ctx expected=map_ptr")),
        c("div_by_zero_imm", XDP, "mov %r0, 1; div %r0, 0; exit", Some("div by zero")),
        c("mod_by_zero_imm", XDP, "mov %r0, 1; mod32 %r0, 0; exit", Some("div by zero")),
        c("shift_too_far", XDP, "mov %r0, 1; lsh %r0, 64; exit", Some("invalid shift 64")),
        c("shift32_too_far", XDP, "mov %r0, 1; rsh32 %r0, 32; exit", Some("invalid shift 32")),
        // ---- refused: packet
        c("pkt_no_check", XDP, "ldxw %r2, [%r1+0]; ldxb %r0, [%r2+12]; exit", Some("R2 offset is outside of the packet")),
        c("pkt_off_by_one", XDP, &j(&[PKT14, "ldxh %r0, [%r2+13]", OUT]), Some("R2 offset is outside of the packet")),
        c("pkt_negative_off", XDP, &j(&[PKT14, "ldxb %r0, [%r2-1]", OUT]), Some("R2 offset is outside of the packet")),
        c("pkt_wrong_branch", XDP, "ldxw %r2, [%r1+0]; ldxw %r3, [%r1+4]; mov %r4, %r2; add %r4, 14; jgt %r4, %r3, out; mov %r0, 0; exit; out: ldxb %r0, [%r2+0]; exit", Some("R2 offset is outside of the packet")),
        c("pkt_var_unchecked", XDP, "ldxw %r2, [%r1+0]; ldxw %r3, [%r1+4]; mov %r4, %r2; add %r4, 14; jgt %r4, %r3, out; ldxw %r5, [%r1+12]; and %r5, 7; add %r2, %r5; ldxb %r0, [%r2+0]; mov %r0, 0; exit; out: mov %r0, 1; exit", Some("R2 offset is outside of the packet")),
        c("pkt_meta_vs_moved_data", XDP, "ldxw %r2, [%r1+8]; ldxw %r3, [%r1+0]; add %r3, 20; mov %r4, %r2; add %r4, 1; jgt %r4, %r3, out; ldxb %r0, [%r2+0]; mov %r0, 0; exit; out: mov %r0, 1; exit", Some("R2 offset is outside of the packet")),
        c("pkt_end_deref", XDP, "ldxw %r2, [%r1+4]; ldxb %r0, [%r2+0]; exit", Some("R2 invalid mem access 'pkt_end'")),
        c("pkt_end_arith", XDP, "ldxw %r3, [%r1+4]; add %r3, 1; mov %r0, 0; exit", Some("R3 pointer arithmetic on pkt_end prohibited")),
        c("pkt_after_adjust_head", XDP, &j(&["mov %r6, %r1", PKT14, "mov %r7, %r2; mov %r1, %r6; mov %r2, 0; call 44; ldxb %r0, [%r7+0]", OUT]), Some("R7 invalid mem access 'scalar'")),
        c("pkt_write_socket_filter", SK, "ldxw %r2, [%r1+76]; mov %r0, 0; exit", Some("invalid bpf_context access off=76 size=4")),
        // ---- refused: maps
        c("null_deref", XDP, &j(&[LOOKUP_HASH, "ldxdw %r0, [%r0+0]; exit"]), Some("R0 invalid mem access 'map_value_or_null'")),
        c("null_deref_wrong_branch", XDP, &j(&[LOOKUP_HASH, "jne %r0, 0, out; ldxdw %r0, [%r0+0]; exit; out: mov %r0, 0; exit"]), Some("R0 invalid mem access 'scalar'")),
        c("array_key_oob", XDP, "stw [%r10-4], 4; mov %r2, %r10; add %r2, -4; lddw %r1, map:2; call 1; ldxdw %r0, [%r0+0]; exit", Some("R0 invalid mem access 'map_value_or_null'")),
        c("map_value_oob_const", XDP, &j(&[LOOKUP_ARR, "ldxdw %r0, [%r0+8]; exit"]), Some("R0 min value is outside of the allowed memory range")),
        c("map_value_oob_partial", XDP, &j(&[LOOKUP_ARR, "ldxw %r0, [%r0+6]; exit"]), Some("R0 min value is outside of the allowed memory range")),
        c("map_value_index_unbounded", XDP, &j(&["mov %r6, %r1", LOOKUP_ARR, "ldxw %r2, [%r6+12]; add %r0, %r2; ldxb %r0, [%r0+0]; exit"]), Some("R0 unbounded memory access, make sure to bounds check any such access")),
        c("map_value_index_too_big", XDP, &j(&["mov %r6, %r1", LOOKUP_ARR, "ldxw %r2, [%r6+12]; and %r2, 15; add %r0, %r2; ldxb %r0, [%r0+0]; exit"]), Some("R0 max value is outside of the allowed memory range")),
        c("map_value_index_off_by_one", XDP, &j(&["mov %r6, %r1", LOOKUP_ARR, "ldxw %r2, [%r6+12]; jgt %r2, 5, out; add %r0, %r2; ldxw %r0, [%r0+0]", OUT]), Some("R0 max value is outside of the allowed memory range")),
        c("map_value_index_negative", XDP, &j(&["mov %r6, %r1", LOOKUP_ARR, "ldxw %r2, [%r6+12]; and %r2, 7; sub %r2, 4; add %r0, %r2; ldxb %r0, [%r0+0]; exit"]), Some("R0 min value is negative, either use unsigned index or do a if (index >=0) check.")),
        c("rodata_write", XDP, "lddw %r1, mapval:4+0; stw [%r1+0], 1; mov %r0, 0; exit", Some("write into map forbidden, value_size=4 off=0 size=4")),
        c("global_oob", XDP, "lddw %r1, mapval:3+44; ldxdw %r0, [%r1+0]; exit", Some("R1 min value is outside of the allowed memory range")),
        c("mapval_direct_too_far", XDP, "lddw %r1, mapval:3+48; mov %r0, 0; exit", Some("invalid access to map value pointer, value_size=48 off=48")),
        nk(c("map_ptr_deref", XDP, "lddw %r1, map:1; ldxdw %r0, [%r1+0]; exit", Some("bpfvm does not model reads of struct bpf_htab (R1 off=0 size=8) yet"))), // the kernel reads struct bpf_map fields through BTF
        c("map_ptr_arith", XDP, "lddw %r1, map:1; add %r1, 8; mov %r0, 0; exit", Some("R1 pointer arithmetic on map_ptr prohibited")),
        c("nullable_arith", XDP, &j(&[LOOKUP_HASH, "add %r0, 8; mov %r0, 0; exit"]), Some("R0 pointer arithmetic on map_value_or_null prohibited, null-check it first")),
        nk(c("bad_map_id", XDP, "lddw %r1, map:99; mov %r0, 0; exit", Some("fd 99 is not pointing to valid bpf_map"))),
        c("lookup_ringbuf", XDP, &j(&["stw [%r10-4], 0; mov %r2, %r10; add %r2, -4; lddw %r1, map:5; call 1; mov %r0, 0; exit"]), Some("invalid zero-sized read")),
        // A tail call in the program itself does not come back if taken, so
        // packet pointers stay; one in a subprogram needs BTF (and drops the
        // callers' packet pointers: see the fuzzing crate's patterns).
        c("tail_call_main_keeps_pkt", XDP, "mov %r6, %r1; ldxw %r7, [%r6+0]; ldxw %r3, [%r6+4]; mov %r4, %r7; add %r4, 8; jgt %r4, %r3, out; mov %r1, %r6; lddw %r2, map:6; mov %r3, 0; call 12; ldxb %r0, [%r7+7]; out: mov %r0, 0; exit", None),
        c("tail_call_subprog_without_btf", XDP, "call local f; exit; f: lddw %r2, map:6; mov %r3, 0; call 12; mov %r0, 0; exit", Some("tail_call is not allowed in subprogs without BTF")),
        c("ld_abs_subprog_without_btf", SK, "mov %r6, %r1; call local f; exit; f: ldabsb 12; exit", Some("LD_ABS is not allowed in subprogs without BTF")),
        // Unprivileged, one prog_array per tail call (the fixups mask the
        // index with that map's size).
        // Maps made by root (bypass_spec_v1): the kernel needs no index mask.
        unpriv("tail_call_two_maps_unpriv", SK, "ldxw %r6, [%r1+8]; jne %r6, 0, a; lddw %r2, map:6; ja b; a: lddw %r2, map:10; b: mov %r3, 0; call 12; mov %r0, 0; exit", None),
        unpriv("tail_call_two_unpriv_maps_unpriv", SK, "ldxw %r6, [%r1+8]; jne %r6, 0, a; lddw %r2, map:11; ja b; a: lddw %r2, map:12; b: mov %r3, 0; call 12; mov %r0, 0; exit", Some("tail_call abusing map_ptr")),
        unpriv("tail_call_one_unpriv_map_unpriv", SK, "ldxw %r6, [%r1+8]; jne %r6, 0, a; lddw %r2, map:6; ja b; a: lddw %r2, map:11; b: mov %r3, 0; call 12; mov %r0, 0; exit", Some("tail_call abusing map_ptr")),
        c("tail_call_two_unpriv_maps_priv", SK, "ldxw %r6, [%r1+8]; jne %r6, 0, a; lddw %r2, map:11; ja b; a: lddw %r2, map:12; b: mov %r3, 0; call 12; mov %r0, 0; exit", Some("tail_call abusing map_ptr")),
        unpriv("tail_call_same_unpriv_map_unpriv", SK, "ldxw %r6, [%r1+8]; jne %r6, 0, a; lddw %r2, map:11; ja b; a: lddw %r2, map:11; b: mov %r3, 0; call 12; mov %r0, 0; exit", None),
        unpriv("tail_call_same_map_unpriv", SK, "ldxw %r6, [%r1+8]; jne %r6, 0, a; lddw %r2, map:6; ja b; a: lddw %r2, map:6; b: mov %r3, 0; call 12; mov %r0, 0; exit", None),
        c("tail_call_wrong_map", XDP, "lddw %r2, map:1; mov %r3, 0; call 12; mov %r0, 0; exit", Some("expected prog array map for tail call")),
        // ---- refused: helper arguments
        c("lookup_scalar_map", XDP, "mov %r1, 0; mov %r2, %r10; add %r2, -4; stw [%r10-4], 0; call 1; exit", Some("R1 type=scalar expected=map_ptr")),
        c("lookup_scalar_key", XDP, "lddw %r1, map:1; mov %r2, 0; call 1; exit", Some("R2 type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_")),
        c("lookup_key_stack_oob", XDP, "stw [%r10-4], 0; mov %r2, %r10; add %r2, -2; lddw %r1, map:1; call 1; mov %r0, 0; exit", Some("invalid read from stack R2 off=-2 size=4")),
        c("update_value_too_small", XDP, "stw [%r10-4], 0; mov %r2, %r10; add %r2, -4; mov %r3, %r10; add %r3, -4; mov %r4, 0; lddw %r1, map:1; call 2; exit", Some("invalid read from stack R3 off=-4 size=8")),
        c("unknown_helper", XDP, "call 9999; exit", Some("invalid func unknown#9999")),
        c("helper_wrong_prog_type", XDP, "mov %r2, 0; mov %r3, %r10; add %r3, -8; mov %r4, 8; call 26; exit", Some("program of this type cannot use helper bpf_skb_load_bytes#26")),
        c("probe_read_in_xdp", XDP, "mov %r1, %r10; add %r1, -8; mov %r2, 8; mov %r3, 0; call 4; exit", Some("program of this type cannot use helper bpf_probe_read#4")),
        c("probe_read_kernel_in_xdp", XDP, "mov %r1, %r10; add %r1, -8; mov %r2, 8; mov %r3, 0; call 113; exit", None),
        c("printk_zero_size", XDP, "stdw [%r10-8], 0; mov %r1, %r10; add %r1, -8; mov %r2, 0; call 6; exit", Some("R2 invalid zero-sized read: u64=[0,0]")),
        c("printk_scalar_fmt", XDP, "mov %r1, 0; mov %r2, 8; call 6; exit", Some("R1 type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_")),
        c("output_unbounded_size", XDP, "mov %r6, %r1; stdw [%r10-8], 0; ldxw %r3, [%r6+12]; lddw %r1, map:5; mov %r2, %r10; add %r2, -8; mov %r4, 0; call 130; exit", Some("R3 unbounded memory access, use 'var &= const' or 'if (var < const)'")),
        c("output_size_too_big", XDP, "mov %r6, %r1; stdw [%r10-8], 0; ldxw %r3, [%r6+12]; and %r3, 15; lddw %r1, map:5; mov %r2, %r10; add %r2, -8; mov %r4, 0; call 130; exit", Some("invalid read from stack R2 off=-8 size=15")),
        c("tail_call_ctx_not_ctx", XDP, "mov %r1, 0; lddw %r2, map:6; mov %r3, 0; call 12; mov %r0, 0; exit", Some("R1 type=scalar expected=ctx")),
        c("adjust_head_modified_ctx", XDP, "add %r1, 4; mov %r2, 0; call 44; exit", Some("dereference of modified ctx ptr R1 off=4 disallowed")),
        // ---- refused: references
        c("ringbuf_leak", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; call 131; jeq %r0, 0, out; out: mov %r0, 0; exit", Some("BPF_EXIT instruction in main prog would lead to reference leak")),
        c("ringbuf_submit_unchecked", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; call 131; mov %r1, %r0; mov %r2, 0; call 132; mov %r0, 0; exit", Some("R1 type=ringbuf_mem_or_null expected=ringbuf_mem")),
        c("ringbuf_double_submit", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; call 131; jeq %r0, 0, out; mov %r6, %r0; mov %r1, %r6; mov %r2, 0; call 132; mov %r1, %r6; mov %r2, 0; call 132; out: mov %r0, 0; exit", Some("R1 type=scalar expected=ringbuf_mem")),
        c("ringbuf_size_not_const", XDP, "ldxw %r2, [%r1+12]; lddw %r1, map:5; mov %r3, 0; call 131; mov %r0, 0; exit", Some("R2 is not a known constant'")),
        c("ringbuf_write_past_end", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; call 131; jeq %r0, 0, out; stdw [%r0+16], 1; mov %r1, %r0; mov %r2, 0; call 133; out: mov %r0, 0; exit", Some("R0 min value is outside of the allowed memory range")),
        c("dynptr_ringbuf_discard", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", None),
        c("dynptr_ringbuf_leak", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r0, 0; exit", Some("BPF_EXIT instruction in main prog would lead to reference leak")),
        c("dynptr_ringbuf_overwrite", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; stdw [%r10-8], 0; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", Some("cannot overwrite referenced dynptr")),
        c("dynptr_ringbuf_partial_write", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; stw [%r10-12], 0; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", Some("cannot overwrite referenced dynptr")),
        c("dynptr_misaligned", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -12; call 198; mov %r0, 0; exit", Some("Dynptr has to be an uninitialized dynptr")),
        c("dynptr_release_twice", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", Some("arg 1 is an unacquired reference")),
        c("dynptr_slice_ok", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, 8; call 203; jeq %r0, 0, drop; stdw [%r0+0], 1; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 199; mov %r0, 0; exit; drop: mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", None),
        c("dynptr_slice_after_submit", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, 8; call 203; jeq %r0, 0, drop; mov %r6, %r0; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 199; stdw [%r6+0], 1; mov %r0, 0; exit; drop: mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", Some("R6 invalid mem access 'scalar'")),
        c("dynptr_slice_past_end", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, 8; call 203; jeq %r0, 0, drop; stdw [%r0+8], 1; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 199; mov %r0, 0; exit; drop: mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", Some("R0 min value is outside of the allowed memory range")),
        c("dynptr_slice_unchecked", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, 8; call 203; stdw [%r0+0], 1; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", Some("R0 invalid mem access 'mem_or_null'")),
        c("dynptr_from_mem_stack", XDP, "stdw [%r10-24], 0; mov %r1, %r10; add %r1, -24; mov %r2, 8; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; mov %r0, 0; exit", Some("Unsupported reg type fp for bpf_dynptr_from_mem data")),
        c("dynptr_from_mem_rodata", XDP, "stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:4; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, 4; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; out: mov %r0, 0; exit", Some("write into map forbidden, value_size=4 off=0 size=4")),
        c("dynptr_local_ok", XDP, "stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, 48; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, 8; call 203; jeq %r0, 0, out; stdw [%r0+0], 1; out: mov %r0, 0; exit", None),
        c("dynptr_local_overwrite", XDP, "stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, 48; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; stdw [%r10-8], 0; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, 8; call 203; out: mov %r0, 0; exit", Some("Expected an initialized dynptr as arg #0")),
        c("dynptr_local_spill_over", XDP, "stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, 48; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; stxdw [%r10-16], %r10; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, 8; call 203; out: mov %r0, 0; exit", Some("Expected an initialized dynptr as arg #0")),
        c("dynptr_local_submit", XDP, "stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, 48; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 199; out: mov %r0, 0; exit", Some("arg 1 is an unacquired reference")),
        c("dynptr_local_reinit_slice", XDP, "stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, 48; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, 8; call 203; jeq %r0, 0, out; mov %r6, %r0; stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out2; mov %r1, %r0; mov %r2, 48; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; stdw [%r6+0], 1; out2: mov %r0, 0; exit; out: mov %r0, 0; exit", Some("R6 invalid mem access 'scalar'")),
        c("dynptr_local_var_write", XDP, "mov %r6, %r1; stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, 48; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; ldxw %r7, [%r6+12]; and %r7, 8; mov %r8, %r10; add %r8, -16; add %r8, %r7; stb [%r8+0], 0; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, 8; call 203; out: mov %r0, 0; exit", Some("Expected an initialized dynptr as arg #0")),
        c("dynptr_local_var_read", XDP, "mov %r6, %r1; stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, 48; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; ldxw %r7, [%r6+12]; and %r7, 8; mov %r8, %r10; add %r8, -16; add %r8, %r7; ldxb %r0, [%r8+0]; out: mov %r0, 0; exit", Some("invalid read from stack R8 var_off (0x0; 0x8)+0 size 1")),
        c("dynptr_local_direct_read", XDP, "stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out; mov %r1, %r0; mov %r2, 48; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; ldxw %r0, [%r10-16]; out: mov %r0, 0; exit", Some("invalid read from stack off -16+0 size 4")),
        c("dynptr_read_into_itself", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -32; mov %r2, 32; mov %r3, %r10; add %r3, -16; mov %r4, 0; mov %r5, 0; call 201; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", Some("potential write to dynptr at off=-16 disallowed")),
        c("dynptr_read_ok", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -32; mov %r2, 16; mov %r3, %r10; add %r3, -16; mov %r4, 0; mov %r5, 0; call 201; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", None),
        c("dynptr_type_confusion", XDP, "mov %r6, %r1; ldxw %r7, [%r6+12]; stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out; mov %r8, %r0; jeq %r7, 0, local; lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; ja merge; local: mov %r1, %r8; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 197; merge: mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; out: mov %r0, 0; exit", Some("arg 1 is an unacquired reference")),
        c("dynptr_global_map_value", XDP, "stw [%r10-24], 0; mov %r2, %r10; add %r2, -24; lddw %r1, map:3; call 1; jeq %r0, 0, out; mov %r4, %r0; lddw %r1, map:5; mov %r2, 16; mov %r3, 0; call 198; out: mov %r0, 0; exit", Some("R4 type=map_value expected=fp, dynptr_ptr")),
        c("dynptr_var_off_new", XDP, "mov %r6, %r1; ldxw %r7, [%r6+12]; and %r7, 8; lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -24; add %r4, %r7; call 198; mov %r0, 0; exit", Some("Dynptr has to be an uninitialized dynptr")),
        c("dynptr_var_off_release", XDP, "mov %r6, %r1; lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; ldxw %r7, [%r6+12]; and %r7, 8; mov %r1, %r10; add %r1, -16; add %r1, %r7; mov %r2, 0; call 200; mov %r0, 0; exit", Some("arg 1 is an unacquired reference")),
        c("dynptr_positive_off", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, 8; call 198; mov %r0, 0; exit", Some("Dynptr has to be an uninitialized dynptr")),
        c("dynptr_deepest", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -512; call 198; mov %r1, %r10; add %r1, -512; mov %r2, 0; call 200; mov %r0, 0; exit", None),
        c("dynptr_too_deep", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -520; call 198; mov %r0, 0; exit", Some("invalid write to stack R4 off=-520 size=8")),
        c("dynptr_read_var_len", XDP, "mov %r6, %r1; lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; ldxw %r2, [%r6+12]; and %r2, 15; mov %r1, %r10; add %r1, -32; mov %r3, %r10; add %r3, -16; mov %r4, 0; mov %r5, 0; call 201; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", None),
        c("dynptr_read_too_long", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -40; mov %r2, 32; mov %r3, %r10; add %r3, -16; mov %r4, 0; mov %r5, 0; call 201; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", Some("potential write to dynptr at off=-16 disallowed")),
        c("dynptr_data_zero_len", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, 0; call 203; jeq %r0, 0, drop; ldxb %r1, [%r0+0]; drop: mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", Some("R0 min value is outside of the allowed memory range")),
        c("dynptr_write_uninit_src", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r1, %r10; add %r1, -16; mov %r2, 0; mov %r3, %r10; add %r3, -32; mov %r4, 8; mov %r5, 0; call 202; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", None),
        c("dynptr_data_var_len", XDP, "mov %r6, %r1; lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; ldxw %r3, [%r6+12]; and %r3, 15; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 203; mov %r1, %r10; add %r1, -16; mov %r2, 0; call 200; mov %r0, 0; exit", Some("R3 is not a known constant'")),
        unpriv("dynptr_unpriv", SK, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; mov %r4, %r10; add %r4, -16; call 198; mov %r0, 0; exit", Some("program of this type cannot use helper bpf_ringbuf_reserve_dynptr#198")),
        c("ringbuf_submit_offset", XDP, "lddw %r1, map:5; mov %r2, 16; mov %r3, 0; call 131; jeq %r0, 0, out; mov %r1, %r0; add %r1, 8; mov %r2, 0; call 132; out: mov %r0, 0; exit", Some("R1 must have zero offset when passed to release func or trusted arg to kfunc")),
        c("ringbuf_tail_call_leak", XDP, "mov %r6, %r1; lddw %r1, map:5; mov %r2, 16; mov %r3, 0; call 131; jeq %r0, 0, out; mov %r7, %r0; mov %r1, %r6; lddw %r2, map:6; mov %r3, 0; call 12; mov %r1, %r7; mov %r2, 0; call 133; out: mov %r0, 0; exit", Some("tail_call would lead to reference leak")),
        // ---- refused: stack
        c("stack_oob_below", XDP, "stdw [%r10-520], 1; mov %r0, 0; exit", Some("invalid write to stack R10 off=-520 size=8")),
        c("stack_oob_above", XDP, "stdw [%r10+0], 1; mov %r0, 0; exit", Some("invalid write to stack R10 off=0 size=8")),
        c("stack_read_oob", XDP, "ldxdw %r0, [%r10-520]; exit", Some("invalid read from stack R10 off=-520 size=8")),
        c("stack_var_oob", XDP, "ldxw %r2, [%r1+12]; and %r2, 1023; mov %r3, %r10; add %r3, -600; add %r3, %r2; stb [%r3+0], 0; mov %r0, 0; exit", Some("invalid variable-offset write to stack R3 var_off=(0x0; 0x3ff) off=-600 size=1")),
        c("stack_misaligned", XDP, "stw [%r10-6], 1; mov %r0, 0; exit", Some("misaligned stack access off 0+0+-6 size 4")),
        unpriv("stack_uninit_read_unpriv", SK, "ldxdw %r0, [%r10-8]; exit", Some("invalid read from stack R10 off=-8 size=8")),
        unpriv("stack_indirect_uninit_unpriv", SK, "mov %r2, %r10; add %r2, -4; lddw %r1, map:1; call 1; mov %r0, 0; exit", Some("invalid read from stack R2 off=-4 size=4")),
        // ---- refused: calls
        c("calls_too_deep", XDP, "call local a; exit; a: call local b; exit; b: call local c1; exit; c1: call local d; exit; d: call local e; exit; e: call local f; exit; f: call local g; exit; g: call local h; exit; h: mov %r0, 0; exit", Some("the call stack of 9 frames is too deep")),
        c("combined_stack_too_large", XDP, "stdw [%r10-512], 0; call local f; exit; f: stdw [%r10-64], 0; mov %r0, 0; exit", Some("combined stack size of 2 calls is 576. Too large")),
        // ...unless another instruction touches its slot.
        c("fastcall_slot_used_elsewhere", XDP, "stdw [%r10-512], 42; call local f; exit; f: stxdw [%r10-8], %r1; call 8; ldxdw %r1, [%r10-8]; ldxdw %r2, [%r10-8]; exit", Some("combined stack size of 2 calls is 528. Too large")),
        // ...or the call is not one the kernel inlines.
        c("fastcall_not_inlined", XDP, "stdw [%r10-512], 42; call local f; exit; f: stxdw [%r10-8], %r1; call 7; ldxdw %r1, [%r10-8]; exit", Some("combined stack size of 2 calls is 528. Too large")),
        c("linked_add_const_past_end", XDP, &j(&[LOOKUP_ARR, "jeq %r0, 0, out; mov %r6, %r0; call 5; mov %r1, %r0; add %r1, 1; jgt %r0, 7, out; add %r6, %r1; ldxb %r0, [%r6+0]", OUT]), Some("R6 max value is outside of the allowed memory range")),
        // Two paths reach `M` with r1 = r0+1 and r0+100: not the same state.
        c("linked_add_const_other_offset", XDP, &j(&[LOOKUP_ARR, "jeq %r0, 0, out; mov %r6, %r0; call 5; mov %r7, %r0; call 5; mov %r1, %r0; jgt %r7, 5, l; add %r1, 1; ja m; l: add %r1, 100; ja +0; m: jgt %r0, 6, out; add %r6, %r1; ldxb %r0, [%r6+0]", OUT]), Some("R6 min value is outside of the allowed memory range")),
        c("sk_lookup_tuple_past_packet", TC, "ldxw %r2, [%r1+76]; ldxw %r3, [%r1+80]; mov %r0, %r2; add %r0, 32; jgt %r0, %r3, out; mov %r3, 36; mov %r4, 0; mov %r5, 0; call 84; jeq %r0, 0, out; mov %r1, %r0; call 86; out: mov %r0, 0; exit", Some("R2 offset is outside of the packet")),
        // div32 of two constants is not folded: the whole register is unknown.
        c("div32_const_unknown", XDP, "mov %r0, 0; div32 %r0, 63; mov %r5, %r10; add %r5, -64; add %r5, %r0; mov %r0, 0; exit", Some("math between fp pointer and register with unbounded min value is not allowed")),
        c("return_callee_stack", XDP, "call local f; mov %r0, 0; exit; f: mov %r0, %r10; exit", Some("cannot return stack pointer to the caller")),
        nk(c("callback_bad_return", XDP, "mov %r1, 10; lddw %r2, fn:8; mov %r3, 0; mov %r4, 0; call 181; mov %r0, 0; exit; mov %r0, 2; exit", Some("At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]"))),
        // ---- refused: context
        c("xdp_ctx_write", XDP, "stw [%r1+0], 1; mov %r0, 0; exit", Some("invalid bpf_context access off=0 size=4")),
        c("xdp_ctx_past_end", XDP, "ldxw %r0, [%r1+24]; exit", Some("invalid bpf_context access off=24 size=4")),
        c("xdp_ctx_narrow", XDP, "ldxb %r0, [%r1+12]; exit", Some("invalid bpf_context access off=12 size=1")),
        c("xdp_ctx_dw", XDP, "ldxdw %r0, [%r1+0]; exit", Some("invalid bpf_context access off=0 size=8")),
        c("xdp_egress_ifindex", XDP, "ldxw %r0, [%r1+20]; exit", Some("invalid bpf_context access off=20 size=4")),
        c("ctx_modified", XDP, "add %r1, 4; ldxw %r0, [%r1+0]; exit", Some("dereference of modified ctx ptr R1 off=4 disallowed")),
        c("sk_len_write", SK, "stw [%r1+0], 1; mov %r0, 0; exit", Some("invalid bpf_context access off=0 size=4")),
        c("sk_data_read", SK, "ldxw %r0, [%r1+76]; exit", Some("invalid bpf_context access off=76 size=4")),
        c("raw_tp_write", RAW, "stdw [%r1+0], 1; mov %r0, 0; exit", Some("invalid bpf_context access off=0 size=8")),
        c("raw_tp_past_end", RAW, "ldxdw %r0, [%r1+96]; exit", Some("invalid bpf_context access off=96 size=8")),
        c("kprobe_write", KP, "stdw [%r1+0], 1; mov %r0, 0; exit", Some("invalid bpf_context access off=0 size=8")),
        c("tc_len_write", TC, "stw [%r1+0], 1; mov %r0, 0; exit", Some("invalid bpf_context access off=0 size=4")),
        c("ld_abs_xdp", XDP, "mov %r6, %r1; ldabsb 12; exit", Some("BPF_LD_[ABS|IND] instructions not allowed for this program type")),
        c("atomic_ctx", XDP, "mov %r2, 1; lock add [%r1+0], %r2; mov %r0, 0; exit", Some("BPF_ATOMIC stores into R1 ctx is not allowed")),
        // ---- refused: pointers
        c("scalar_deref", XDP, "mov %r2, 0; ldxw %r0, [%r2+0]; exit", Some("R2 invalid mem access 'scalar'")),
        c("ptr_and", XDP, "and %r1, 1; mov %r0, 0; exit", Some("R1 bitwise operator &= on pointer prohibited")),
        c("ptr_mul", XDP, "mov %r2, %r10; mul %r2, 2; mov %r0, 0; exit", Some("R2 pointer arithmetic with *= operator prohibited")),
        c("ptr_add32", XDP, "mov %r2, %r10; add32 %r2, 1; mov %r0, 0; exit", Some("R2 32-bit pointer arithmetic prohibited")),
        c("ptr_add_ptr", XDP, "mov %r2, %r10; add %r2, %r1; mov %r0, 0; exit", Some("R2 pointer += pointer prohibited")),
        unpriv("bpf_to_bpf_unpriv", SK, "call local f; exit; f: mov %r0, 0; exit", Some("loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN")),
        unpriv("ret_ptr_unpriv", SK, "mov %r0, %r10; exit", Some("R0 leaks addr as return value")),
        unpriv("ptr_cmp_unpriv", SK, "mov %r0, 0; jeq %r1, %r10, +0; exit", Some("R10 pointer comparison prohibited")),
        unpriv("ptr_sub_unpriv", SK, "mov %r0, %r10; sub %r0, %r1; mov %r0, 0; exit", Some("R0 pointer -= pointer prohibited")),
        unpriv("mov32_ptr_unpriv", SK, "mov32 %r0, %r10; exit", Some("R10 partial copy of pointer")),
        unpriv("leak_stack_ptr_into_map_unpriv", SK, "mov %r1, 0; stxw [%r10-4], %r1; mov %r2, %r10; add %r2, -4; lddw %r1, map:2; call 1; jeq %r0, 0, +1; stxdw [%r0+0], %r10; mov %r0, 0; exit", Some("R10 leaks addr into map")),
        unpriv("leak_ctx_ptr_into_map_unpriv", SK, "mov %r6, %r1; mov %r1, 0; stxw [%r10-4], %r1; mov %r2, %r10; add %r2, -4; lddw %r1, map:2; call 1; jeq %r0, 0, +1; stxdw [%r0+0], %r6; mov %r0, 0; exit", Some("R6 leaks addr into map")),
        unpriv("map_scalar_store_unpriv", SK, "mov %r1, 0; stxw [%r10-4], %r1; mov %r2, %r10; add %r2, -4; lddw %r1, map:2; call 1; jeq %r0, 0, +2; mov %r1, 7; stxdw [%r0+0], %r1; mov %r0, 0; exit", None),
        unpriv("spill_fill_ptr_unpriv", SK, "stxdw [%r10-8], %r10; ldxdw %r2, [%r10-8]; mov %r0, 0; exit", None),
        unpriv("spill_partial_fill_ptr_unpriv", SK, "stxdw [%r10-8], %r10; ldxw %r0, [%r10-8]; exit", Some("invalid size of register fill")),
        unpriv("stack_var_offset_write_unpriv", SK, "ldxw %r2, [%r1+0]; and %r2, 7; mov %r3, %r10; add %r3, -16; add %r3, %r2; stb [%r3+0], 0; mov %r0, 0; exit", Some("R3 variable stack access prohibited for !root, var_off=(0x0; 0x7) off=-16")),
        unpriv("map_value_var_offset_unpriv", SK, "mov %r1, 0; stxw [%r10-4], %r1; mov %r2, %r10; add %r2, -4; lddw %r1, map:3; call 1; jeq %r0, 0, +4; ldxb %r1, [%r0+0]; and %r1, 15; add %r0, %r1; ldxb %r1, [%r0+0]; mov %r0, 0; exit", None),
        unpriv("map_value_const_offset_unpriv", SK, "mov %r1, 0; stxw [%r10-4], %r1; mov %r2, %r10; add %r2, -4; lddw %r1, map:3; call 1; jeq %r0, 0, +2; add %r0, 8; ldxdw %r1, [%r0+0]; mov %r0, 0; exit", None),
        unpriv("null_check_allowed_unpriv", SK, "mov %r1, 0; stxw [%r10-4], %r1; mov %r2, %r10; add %r2, -4; lddw %r1, map:1; call 1; jne %r0, 0, +1; exit; mov %r0, 0; exit", None),
        unpriv("ptr_cmp_imm_unpriv", SK, "mov %r0, 0; jeq %r10, 5, +0; exit", Some("R10 pointer comparison prohibited")),
        unpriv("prandom_unpriv", SK, "call 7; mov %r0, 0; exit", None),
        unpriv("ktime_unpriv", SK, "call 5; mov %r0, 0; exit", None),
        unpriv("trace_printk_unpriv", SK, "mov %r1, 0; stxdw [%r10-8], %r1; mov %r1, %r10; add %r1, -8; mov %r2, 8; call 6; mov %r0, 0; exit", Some("program of this type cannot use helper bpf_trace_printk#6")),
        unpriv("mapval_return_unpriv", SK, "lddw %r0, mapval:3+0; exit", Some("R0 leaks addr as return value")),
        unpriv("mapval_read_unpriv", SK, "lddw %r1, mapval:3+8; ldxdw %r0, [%r1+0]; exit", None),
        unpriv("ptr_neg_unpriv", SK, "mov %r0, %r10; neg %r0; mov %r0, 0; exit", Some("R0 pointer arithmetic prohibited")),
        unpriv("ld_abs_unpriv", SK, "mov %r6, %r1; ldabsb 12; exit", None),
        unpriv("stack_partial_uninit_unpriv", SK, "stw [%r10-8], 1; ldxdw %r0, [%r10-8]; exit", Some("invalid read from stack off -8+4 size 8")),
        unpriv("xadd_stack_unpriv", SK, "stdw [%r10-8], 0; mov %r1, 1; lock add [%r10-8], %r1; mov %r0, 0; exit", None),
        unpriv("ctx_ptr_return_unpriv", SK, "mov %r0, %r1; exit", Some("R0 leaks addr as return value")),
        unpriv("spill_map_value_unpriv", SK, "mov %r1, 0; stxw [%r10-4], %r1; mov %r2, %r10; add %r2, -4; lddw %r1, map:2; call 1; jeq %r0, 0, +3; stxdw [%r10-16], %r0; ldxdw %r1, [%r10-16]; ldxdw %r0, [%r1+0]; mov %r0, 0; exit", None),
        unpriv("stack_ptr_add_scalar_const_unpriv", SK, "mov %r2, %r10; mov %r3, -8; add %r2, %r3; stdw [%r2+0], 1; mov %r0, 0; exit", None),
        unpriv("ptr_to_helper_scalar_arg_unpriv", SK, "mov %r1, %r10; call 7; mov %r0, 0; exit", None),
        unpriv("ctx_field_write_cb_unpriv", SK, "stw [%r1+48], 1; mov %r0, 0; exit", None),
        unpriv("ctx_write_ptr_unpriv", SK, "stxw [%r1+48], %r10; mov %r0, 0; exit", Some("R10 leaks addr into ctx")),
        // ---- Linux 6.18's additions: may_goto, load-acquire/store-release, addr_space_cast ----
        c("may_goto_forward", XDP, "mov %r0, 0; may_goto +1; mov %r0, 1; exit", None),
        unpriv("may_goto_forward_unpriv", SK, "mov %r0, 0; may_goto +1; mov %r0, 1; exit", None),
        c("may_goto_loop", XDP, "mov %r0, 0; loop: add %r0, 1; may_goto +1; ja loop; mov %r0, 0; exit", None),
        c("may_goto_loop_counter_returned", XDP, "mov %r6, 0; loop: may_goto out; add %r6, 1; ja loop; out: mov %r0, %r6; exit", None),
        // The index is precise from the first exit on: no widening, the loop
        // is walked until the index leaves the stack.
        c("may_goto_loop_precise_index", XDP, "mov %r6, 0; stdw [%r10-8], 0; loop: may_goto out; add %r6, 1; ja loop; out: mov %r2, %r10; add %r2, -8; add %r2, %r6; ldxb %r0, [%r2+0]; exit", Some("invalid read from stack R2 off=0 size=1")),
        // A may_goto loop summing into r0, then a second one indexing the
        // stack: the second loop's convergence must not make the first
        // loop's sum precise (the sum is widened, the first loop converges;
        // the kernel's deferred precision along back-edges).
        c("may_goto_two_loops_sum_widened", XDP, "call 7; mov %r6, %r0; mov %r7, 0; jgt %r6, 999999, out; l1: mov %r2, %r6; may_goto l2; add32 %r7, %r2; mov %r6, %r2; add %r6, 1; jlt %r2, 999999, l1; l2: stdw [%r10-8], 0; call 7; mov %r1, %r0; and %r1, 7; l3: jge %r1, 8, out; mov %r2, %r10; add %r2, -8; add %r2, %r1; ldxb %r3, [%r2+0]; add32 %r7, %r3; may_goto out; add %r1, 1; ja l3; out: mov %r0, %r7; exit", None),
        c("may_goto_infinite", XDP, "mov %r0, 0; may_goto -2; exit", Some("infinite loop detected at insn 1")),
        unpriv("may_goto_loop_unpriv", SK, "mov %r0, 0; loop: add %r0, 1; may_goto +1; ja loop; mov %r0, 0; exit", Some("back-edge from insn 3 to 1")),
        c("load_acquire_stack", XDP, "mov %r1, 5; stxdw [%r10-8], %r1; load_acqdw %r0, [%r10-8]; load_acqb %r2, [%r10-8]; add %r0, %r2; exit", None),
        c("store_release_stack", XDP, "mov %r1, 5; store_relw [%r10-8], %r1; store_relb [%r10-1], %r1; ldxw %r0, [%r10-8]; exit", None),
        c("load_acquire_map", XDP, &j(&[LOOKUP_ARR, "load_acqw %r0, [%r0+4]; exit"]), None),
        c("store_release_map", XDP, &j(&[LOOKUP_ARR, "mov %r1, 1; store_reldw [%r0+0], %r1; mov %r0, 0; exit"]), None),
        c("load_acquire_misaligned", XDP, "stdw [%r10-8], 0; load_acqw %r0, [%r10-6]; exit", Some("misaligned stack access off 0+0+-6 size 4")),
        c("store_release_misaligned_map", XDP, &j(&[LOOKUP_ARR, "mov %r1, 1; store_relh [%r0+1], %r1; mov %r0, 0; exit"]), Some("misaligned value access off 0+0+1 size 2")),
        c("load_acquire_ctx", XDP, "load_acqw %r0, [%r1+0]; exit", Some("BPF_ATOMIC loads from R1 ctx is not allowed")),
        c("store_release_ctx", SK, "mov %r2, 1; store_relw [%r1+48], %r2; mov %r0, 0; exit", Some("BPF_ATOMIC stores into R1 ctx is not allowed")),
        c("load_acquire_uninit", XDP, "load_acqdw %r0, [%r10-8]; exit", None),
        unpriv("load_acquire_uninit_unpriv", SK, "load_acqdw %r0, [%r10-8]; mov %r0, 0; exit", Some("invalid read from stack R10 off=-8 size=8")),
        unpriv("load_acquire_unpriv", SK, "stdw [%r10-8], 0; load_acqdw %r0, [%r10-8]; store_reldw [%r10-16], %r0; exit", None),
        c("addr_space_cast_no_arena", XDP, "mov %r2, 5; addr_space_cast %r1, %r2, 0, 1; mov %r0, 0; exit", Some("addr_space_cast insn can only be used in a program that has an associated arena")),
        nk(c("syscall_any_ctx", SYS, "ldxdw %r0, [%r1+96]; exit", None)),
        nk(c("syscall_ctx_write", SYS, "stdw [%r1+8], 1; mov %r0, 0; exit", None)),
    ];
    // XDP context matrix: every offset and size.
    for off in (0..28).step_by(2) {
        for (sz, mn) in [(1, "ldxb"), (2, "ldxh"), (4, "ldxw"), (8, "ldxdw")] {
            if off % sz != 0 {
                continue;
            }
            let ok = sz == 4 && off < 20;
            let expect = (!ok).then(|| format!("invalid bpf_context access off={off} size={sz}"));
            v.push(Case {
                name: format!("xdp_ctx_{off}_{sz}"),
                prog_type: XDP,
                privileged: true,
                src: format!("{mn} %r0, [%r1+{off}]; mov %r0, 0; exit"),
                expect,
                no_kernel: false,
            });
        }
    }
    // Stack offsets around the ends.
    for off in [-520i32, -516, -512, -508, -16, -8, -4, 0, 4] {
        let ok = (-512..=-4).contains(&off);
        let expect = (!ok).then(|| format!("invalid write to stack R10 off={off} size=4"));
        v.push(Case {
            name: format!("stack_w_{off}"),
            prog_type: XDP,
            privileged: true,
            src: format!("stw [%r10{off:+}], 1; mov %r0, 0; exit"),
            expect,
            no_kernel: false,
        });
    }
    // Packet checks of each length against each access.
    for check in [1, 2, 4, 8] {
        for (sz, mn) in [(1, "ldxb"), (2, "ldxh"), (4, "ldxw"), (8, "ldxdw")] {
            let ok = sz <= check;
            v.push(Case {
                name: format!("pkt_check{check}_read{sz}"),
                prog_type: XDP,
                privileged: true,
                src: format!("ldxw %r2, [%r1+0]; ldxw %r3, [%r1+4]; mov %r4, %r2; add %r4, {check}; jgt %r4, %r3, out; {mn} %r0, [%r2+0]; mov %r0, 0; exit; out: mov %r0, 1; exit"),
                expect: (!ok).then(|| "R2 offset is outside of the packet".to_string()),
                no_kernel: false,
            });
        }
    }
    v
}

#[test]
fn table() {
    let maps = maps();
    let lookup = |id: u32| maps.iter().find(|m| m.id == id).cloned();
    let cases = cases();
    let mut failures = Vec::new();
    let (mut kchecked, mut kagree, mut kwording, mut krefused, mut kerrno) = (0, 0, 0, 0, 0);
    let (mut l2_total, mut l2_same, mut l1_total, mut l1_same) = (0, 0, 0, 0);
    let mut wording_diffs = Vec::new();
    let kernel = is_root() && std::env::var("BPFVM_VERIFIER_NO_KERNEL").is_err();
    if !kernel {
        eprintln!("skipping kernel comparison: not root (or BPFVM_VERIFIER_NO_KERNEL set)");
    }
    let unpriv_live = kernel && unprivileged_bpf_enabled();
    if kernel && !unpriv_live {
        eprintln!(
            "unprivileged cases not checked against the kernel: kernel.unprivileged_bpf_disabled is not 0 \
             (as root: sysctl kernel.unprivileged_bpf_disabled=0, then restore it)"
        );
    }
    let mut unpriv_checked = 0;
    for k in &cases {
        let insns = build(&k.src);
        // Callbacks need BTF func_info (each subprogram's start).
        let func_info = if k.src.contains("fn:") {
            std::iter::once((0, "main".to_string()))
                .chain(
                    insns
                        .iter()
                        .enumerate()
                        .filter(|(_, x)| x.code == 0x18 && x.src_reg == 4)
                        .map(|(i, x)| ((i as i64 + 1 + x.imm as i64) as u32, format!("cb{i}"))),
                )
                .collect()
        } else {
            Vec::new()
        };
        let opts = VerifierOpts {
            prog_type: k.prog_type,
            privileged: k.privileged,
            log_level: 1,
            func_info,
            // As libbpf loads them: a syscall program is always sleepable.
            prog_flags: if k.prog_type == SYS { 1 << 4 } else { 0 },
            ..Default::default()
        };
        let r = verify(&insns, &lookup, &opts);
        match (&k.expect, &r) {
            (None, Ok(_)) => {}
            (Some(want), Err(e)) if e.error.reason() == want => {}
            (None, Err(e)) => failures.push(format!(
                "{}: expected accept, got `{}`\n{}",
                k.name, e.error, e.log
            )),
            (Some(want), Err(e)) => {
                failures.push(format!("{}: expected `{want}`, got `{}`", k.name, e.error))
            }
            (Some(want), Ok(_)) => {
                failures.push(format!("{}: expected `{want}`, accepted", k.name))
            }
        }
        if kernel && !k.no_kernel && (k.privileged || unpriv_live) {
            // Log fidelity: our level-1 and level-2 logs against the kernel's.
            for level in [1u32, 2] {
                if !k.privileged {
                    break;
                }
                let Some(kr) = kernel_load(&insns, &maps, k.prog_type, level) else {
                    continue;
                };
                if kr.errno == libc::ENOSPC {
                    continue;
                }
                let o = VerifierOpts {
                    log_level: level,
                    ..opts.clone()
                };
                let ours = match verify(&insns, &lookup, &o) {
                    Ok(v) => v.log,
                    Err(e) => e.log,
                };
                if std::env::var("BPFVM_VERIFIER_RAW").is_ok() {
                    eprintln!("RAW {} {level}\n{}", k.name, kr.log);
                }
                let (a, b) = (normalise(&kr.log), normalise(&ours));
                let same = lcs(&a, &b);
                if std::env::var("BPFVM_VERIFIER_DIFF").is_ok() && same < a.len().max(b.len()) {
                    eprintln!(
                        "== {} level {level}\n-- kernel\n{}\n-- ours\n{}",
                        k.name,
                        a.join("\n"),
                        b.join("\n")
                    );
                }
                if level == 1 {
                    l1_total += a.len().max(b.len());
                    l1_same += same;
                } else {
                    l2_total += a.len().max(b.len());
                    l2_same += same;
                }
            }
            if let Some(kr) = kernel_load_as(&insns, &maps, k.prog_type, 1, !k.privileged) {
                kchecked += 1;
                if !k.privileged {
                    unpriv_checked += 1;
                }
                if kr.accepted == r.is_ok() {
                    kagree += 1;
                } else {
                    failures.push(format!(
                        "{}: kernel {} (`{}`), we {}",
                        k.name,
                        if kr.accepted { "accepted" } else { "refused" },
                        kr.error_line(),
                        match &r {
                            Ok(_) => "accepted".to_string(),
                            Err(e) => format!("refused: {}", e.error),
                        }
                    ));
                }
                if let Err(e) = &r {
                    if !kr.accepted {
                        krefused += 1;
                        if kr.errno == e.error.errno() {
                            kerrno += 1;
                        } else {
                            wording_diffs.push(format!(
                                "{}: errno kernel {} ours {} ({})",
                                k.name,
                                kr.errno,
                                e.error.errno(),
                                e.error
                            ));
                        }
                        if kr.error_line() == e.error.reason() {
                            kwording += 1;
                        } else {
                            wording_diffs.push(format!(
                                "{}: kernel `{}` / ours `{}`",
                                k.name,
                                kr.error_line(),
                                e.error
                            ));
                        }
                    }
                }
            }
        }
    }
    for w in &wording_diffs {
        eprintln!("wording: {w}");
    }
    eprintln!(
        "table: {} cases; kernel checked {kchecked} ({unpriv_checked} as an unprivileged process), verdicts agree {kagree}; error wording identical {kwording} of {krefused} refused by both, errno identical {kerrno}",
        cases.len()
    );
    eprintln!("log lines identical to the kernel's: level 1 {l1_same}/{l1_total}, level 2 {l2_same}/{l2_total}");
    assert!(cases.len() >= 150, "table has {} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A sleeping helper (bpf_copy_from_user_task) in a sleepable program, with
/// the task a BTF pointer: accepted; inside a program that takes the RCU read
/// lock: refused. Not checked against the kernel: its sleepable kprobes must
/// be uprobes, which this table cannot attach.
#[test]
fn sleepable_helper() {
    const BPF_F_SLEEPABLE: u32 = 1 << 4;
    let call = "call 158; mov %r4, %r0; mov %r1, %r10; add %r1, -8; mov %r2, 8; mov %r3, 0; mov %r5, 0; call 191; mov %r0, 0; exit";
    let opts = VerifierOpts {
        prog_type: KP,
        prog_flags: BPF_F_SLEEPABLE,
        ..Default::default()
    };
    let none = |_: u32| None;
    let r = verify(&build(call), &none, &opts);
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.log));
    let plain = VerifierOpts {
        prog_flags: 0,
        ..opts.clone()
    };
    let e = verify(&build(call), &none, &plain).expect_err("not sleepable");
    assert_eq!(
        e.error.reason(),
        "helper call might sleep in a non-sleepable prog"
    );
    let rcu = bpfvm_verifier::kfuncs::btf_id("bpf_rcu_read_lock").expect("bpf_rcu_read_lock");
    let mut insns = build(call);
    insns.insert(0, Insn::new(0x85, 0, 2, 0, rcu));
    let e = verify(&insns, &none, &opts).expect_err("rcu section");
    assert_eq!(
        e.error.reason(),
        "sleepable helper bpf_copy_from_user_task#191 in rcu_read_lock region"
    );
    // bpf_get_stack may sleep only in a sleepable kprobe (it faults user
    // stacks in there), so only there is it refused inside the section.
    let unlock =
        bpfvm_verifier::kfuncs::btf_id("bpf_rcu_read_unlock").expect("bpf_rcu_read_unlock");
    let get_stack = "mov %r6, %r1; mov %r1, %r6; mov %r2, %r10; add %r2, -64; mov %r3, 64; mov %r4, 0; call 67; mov %r0, 0; exit";
    let mut insns = build(get_stack);
    insns.insert(1, Insn::new(0x85, 0, 2, 0, rcu));
    let n = insns.len();
    insns.insert(n - 2, Insn::new(0x85, 0, 2, 0, unlock));
    let e = verify(&insns, &none, &opts).expect_err("get_stack in a sleepable kprobe's section");
    assert_eq!(
        e.error.reason(),
        "sleepable helper bpf_get_stack#67 in rcu_read_lock region"
    );
    let r = verify(&insns, &none, &plain);
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.log));
    let r = verify(&build(get_stack), &none, &opts);
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.log));
}
