//! The packet helpers of tc and XDP programs and the task helpers beside them
//! (`nethelpers`), as a table {name, program, input packet, expected}: every
//! case runs on the interpreter and on the JIT and must give the retval and
//! output packet recorded in `data/net_helpers.golden`; as root, every case
//! also runs through the host kernel's BPF_PROG_TEST_RUN and must agree with
//! the same line (cases where bpfvm differs on purpose say why and are run on
//! bpfvm only). `BPFVM_BLESS=1` (as root) rewrites the golden file from the
//! kernel's results.
//!
//! The programs return the helper's r0 in the low 16 bits (an errno shows as
//! 0xffea for -EINVAL) and, where a case looks at the `__sk_buff` after the
//! call, a field of it in the high 16 bits.

use bpfvm::isa::{asm::assemble, Insn};
use bpfvm::vm::{At, Flow};
use bpfvm::{BpfCmd, BpfReply, ProgLoadAttr, Runtime, TestRunAttr};
use std::collections::BTreeMap;
use std::path::PathBuf;

const TC: u32 = 3;
const XDP: u32 = 6;

// `struct __sk_buff` offsets.
const LEN: u32 = 0;
const PROTOCOL: u32 = 16;
const VLAN_PRESENT: u32 = 20;
const VLAN_TCI: u32 = 24;
const VLAN_PROTO: u32 = 28;
const HASH: u32 = 68;

struct Case {
    name: String,
    prog_type: u32,
    asm: String,
    packet: Vec<u8>,
    /// Why bpfvm's result is not compared with the kernel's.
    differs: Option<&'static str>,
    /// BPF_PROG_TEST_RUN's `repeat` (the kernel runs the program again on
    /// the same sk_buff, so packet changes add up).
    repeat: u32,
    /// `ctx_in` (then `ctx_out` is compared too).
    ctx_in: Option<Vec<u8>>,
    /// BPF_PROG_TEST_RUN's flags.
    flags: u32,
}

// ---- packets ----

fn ip_checksum(h: &[u8]) -> u16 {
    let mut s = 0u32;
    for c in h.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn eth(proto: u16) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    p.extend_from_slice(&proto.to_be_bytes());
    p
}

/// UDP 1234 -> 5678 with 8 bytes of payload and its checksum over the
/// IPv4 pseudo header.
fn udp(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let payload = b"bpfvm!\x00\x01";
    let len = 8 + payload.len() as u16;
    let mut u = Vec::new();
    u.extend_from_slice(&1234u16.to_be_bytes());
    u.extend_from_slice(&5678u16.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&u);
    let c = ip_checksum(&pseudo);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

fn ipv4_tos(tos: u8) -> Vec<u8> {
    let (src, dst) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let l4 = udp(src, dst);
    let mut h = vec![0x45, tos];
    h.extend_from_slice(&(20 + l4.len() as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 17, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = ip_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut p = eth(0x0800);
    p.extend(h);
    p.extend(l4);
    p
}

fn ipv4() -> Vec<u8> {
    ipv4_tos(0)
}

fn ipv6_tc(tclass: u8) -> Vec<u8> {
    let mut p = eth(0x86dd);
    let l4 = udp([0; 4], [0; 4]);
    p.extend_from_slice(&[0x60 | (tclass >> 4), tclass << 4, 0, 0]);
    p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    p.extend_from_slice(&[17, 64]);
    p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend(l4);
    p
}

/// `ipv4()` behind vlan tags (outermost first).
fn tagged(tags: &[(u16, u16)]) -> Vec<u8> {
    let inner = ipv4();
    let mut p = inner[..12].to_vec();
    for (tpid, tci) in tags {
        p.extend_from_slice(&tpid.to_be_bytes());
        p.extend_from_slice(&tci.to_be_bytes());
    }
    p.extend_from_slice(&inner[12..]);
    p
}

/// A frame of a local experimental EtherType (nothing on the host takes it).
fn other() -> Vec<u8> {
    let mut p = eth(0x88b5);
    p.extend((0..40u8).map(|i| i.wrapping_mul(7)));
    p
}

// ---- programs ----

/// What a program returns after the helper call (r7 = the helper's r0, r6 =
/// the context).
#[derive(Clone, Copy)]
enum Epi {
    /// r0 as it is.
    Ret,
    /// r0's low 16 bits, a u32 field of the __sk_buff in the high 16.
    Field(u32),
    /// r0's low 16 bits, the packet's byte `k` read through a fresh
    /// `data`/`data_end` pair in the high 16 (0xff00 past the end).
    Byte(u32),
}

fn epilogue(e: Epi) -> String {
    match e {
        Epi::Ret => "mov %r0, %r7\nexit\n".into(),
        Epi::Field(off) => format!(
            "and %r7, 0xffff\nldxw %r2, [%r6+{off}]\nlsh %r2, 16\nor %r7, %r2\nmov %r0, %r7\nexit\n"
        ),
        Epi::Byte(k) => format!(
            "and %r7, 0xffff
             ldxw %r2, [%r6+76]
             ldxw %r3, [%r6+80]
             mov %r4, %r2
             add %r4, {}
             jgt %r4, %r3, past
             ldxb %r2, [%r2+{k}]
             lsh %r2, 16
             or %r7, %r2
             mov %r0, %r7
             exit
             past:
             or %r7, 0xff000000
             mov %r0, %r7
             exit\n",
            k + 1
        ),
    }
}

/// `setup` sets r2..r5 (r6 holds the context), then `call helper`.
fn call(setup: &str, helper: u32, e: Epi) -> String {
    format!(
        "mov %r6, %r1\n{setup}\nmov %r1, %r6\ncall {helper}\nmov %r7, %r0\n{}",
        epilogue(e)
    )
}

/// `call helper` with r1 and r2 set (helpers without a context argument).
fn call12(helper: u32, r1: i64, r2: i64) -> String {
    format!("mov %r1, {r1}\nmov %r2, {r2}\ncall {helper}\nexit")
}

fn args(a: &[i64]) -> String {
    a.iter()
        .enumerate()
        .map(|(i, v)| {
            if *v > i32::MAX as i64 || *v < i32::MIN as i64 {
                format!("lddw %r{}, {:#x}\n", i + 2, v)
            } else {
                format!("mov %r{}, {}\n", i + 2, v)
            }
        })
        .collect()
}

fn case(name: &str, prog_type: u32, asm: String, packet: Vec<u8>) -> Case {
    Case {
        name: name.into(),
        prog_type,
        asm,
        packet,
        differs: None,
        repeat: 1,
        ctx_in: None,
        flags: 0,
    }
}

fn tc(name: &str, helper: u32, a: &[i64], e: Epi, packet: Vec<u8>) -> Case {
    case(name, TC, call(&args(a), helper, e), packet)
}

/// Native-order u16 of a checksum field as programs load it.
fn field16(p: &[u8], off: usize) -> i64 {
    u16::from_ne_bytes([p[off], p[off + 1]]) as i64
}

fn ne32(b: [u8; 4]) -> i64 {
    u32::from_ne_bytes(b) as i64
}

const EINVAL_ON_LOAD: &str = "";

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let p4 = ipv4();
    let udp_csum_off = 14 + 20 + 6;
    // ---- bpf_l3_csum_replace (10) / bpf_l4_csum_replace (11) ----
    let old_ip = ne32([10, 0, 0, 1]);
    let new_ip = ne32([192, 168, 1, 77]);
    // Rewrite the source address and fix both checksums as a NAT does.
    let nat = |l4flags: i64| {
        format!(
            "mov %r6, %r1
             stw [%r10-4], {new_ip:#x}
             mov %r1, %r6
             mov %r2, 26
             mov %r3, %r10
             add %r3, -4
             mov %r4, 4
             mov %r5, 0
             call 9
             mov %r1, %r6
             mov %r2, 24
             lddw %r3, {old_ip:#x}
             lddw %r4, {new_ip:#x}
             mov %r5, 4
             call 10
             mov %r7, %r0
             mov %r1, %r6
             mov %r2, {udp_csum_off}
             lddw %r3, {old_ip:#x}
             lddw %r4, {new_ip:#x}
             mov %r5, {}
             call 11
             lsh %r7, 16
             or %r0, %r7
             exit\n",
            4 | l4flags
        )
    };
    v.push(case("l3_l4_csum_nat_pseudo", TC, nat(0x10), p4.clone()));
    v.push(case("l3_l4_csum_nat_mangled0", TC, nat(0x30), p4.clone()));
    v.push(case("l3_l4_csum_nat_ipv6_flag", TC, nat(0x90), p4.clone()));
    let ttl = u16::from_ne_bytes([64, 17]) as i64;
    let ttl2 = u16::from_ne_bytes([63, 17]) as i64;
    v.push(tc(
        "l3_csum_size2",
        10,
        &[24, ttl, ttl2, 2],
        Epi::Byte(25),
        p4.clone(),
    ));
    v.push(tc(
        "l3_csum_size0_diff",
        10,
        &[24, 0, 0x1234_5678, 0],
        Epi::Byte(24),
        p4.clone(),
    ));
    v.push(tc(
        "l3_csum_size0_from_nonzero",
        10,
        &[24, 1, 2, 0],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l3_csum_size3",
        10,
        &[24, 1, 2, 3],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l3_csum_size8",
        10,
        &[24, 1, 2, 8],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l3_csum_bad_flag",
        10,
        &[24, 1, 2, 0x14],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l3_csum_odd_offset",
        10,
        &[25, 1, 2, 4],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l3_csum_offset_past_0xffff",
        10,
        &[0x10000, 1, 2, 4],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l3_csum_offset_at_end",
        10,
        &[p4.len() as i64 - 2, 1, 2, 4],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l3_csum_offset_past_end",
        10,
        &[p4.len() as i64, 1, 2, 4],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l3_csum_bad_size_bad_offset",
        10,
        &[p4.len() as i64, 1, 2, 3],
        Epi::Ret,
        p4.clone(),
    ));
    let port = u16::from_ne_bytes([0x04, 0xd2]) as i64;
    let port2 = u16::from_ne_bytes([0x1f, 0x90]) as i64;
    v.push(tc(
        "l4_csum_size2_port",
        11,
        &[udp_csum_off, port, port2, 2],
        Epi::Byte(41),
        p4.clone(),
    ));
    v.push(tc(
        "l4_csum_size0_pseudo",
        11,
        &[udp_csum_off, 0, 0x0102_0304, 0x10],
        Epi::Byte(40),
        p4.clone(),
    ));
    v.push(tc(
        "l4_csum_size0_from_nonzero",
        11,
        &[udp_csum_off, 5, 1, 0],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l4_csum_bad_flag",
        11,
        &[udp_csum_off, 1, 2, 0x104],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l4_csum_size1",
        11,
        &[udp_csum_off, 1, 2, 1],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l4_csum_odd_offset",
        11,
        &[41, 1, 2, 4],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "l4_csum_past_end",
        11,
        &[p4.len() as i64 - 1, 1, 2, 4],
        Epi::Ret,
        p4.clone(),
    ));
    // A zero UDP checksum (none) stays zero with BPF_F_MARK_MANGLED_0 ...
    let mut nocsum = p4.clone();
    nocsum[40..42].fill(0);
    v.push(tc(
        "l4_csum_mangled0_keeps_zero",
        11,
        &[udp_csum_off, 0, 0x77, 0x24],
        Epi::Byte(40),
        nocsum.clone(),
    ));
    // ... unless BPF_F_MARK_ENFORCE, and a result of 0 becomes 0xffff.
    v.push(tc(
        "l4_csum_mangled0_enforce",
        11,
        &[udp_csum_off, 0, 0x77, 0x64],
        Epi::Byte(40),
        nocsum.clone(),
    ));
    let s = field16(&p4, 40);
    v.push(tc(
        "l4_csum_result0_plain",
        11,
        &[udp_csum_off, 0, s, 4],
        Epi::Byte(40),
        p4.clone(),
    ));
    v.push(tc(
        "l4_csum_result0_mangled",
        11,
        &[udp_csum_off, 0, s, 0x24],
        Epi::Byte(40),
        p4.clone(),
    ));

    // ---- bpf_skb_store_bytes (9) ----
    let store = |off: i64, flags: i64, e: Epi| {
        call(
            &format!(
                "stw [%r10-4], 0x11223344\n{}mov %r3, %r10\nadd %r3, -4\n",
                args(&[off, 0, 4, flags]).replace("mov %r3, 0\n", "")
            ),
            9,
            e,
        )
    };
    v.push(case(
        "store_bytes_recompute_csum",
        TC,
        store(30, 1, Epi::Byte(30)),
        p4.clone(),
    ));
    v.push(case(
        "store_bytes_at_end",
        TC,
        store(p4.len() as i64 - 4, 0, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "store_bytes_past_end",
        TC,
        store(p4.len() as i64 - 3, 0, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "store_bytes_offset_int_max",
        TC,
        store(0x8000_0000, 0, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "store_bytes_bad_flags",
        TC,
        store(0, 4, Epi::Ret),
        p4.clone(),
    ));
    // BPF_F_INVALIDATE_HASH after a recalculated hash: ctx->hash reads 0.
    v.push(case(
        "store_bytes_invalidate_hash",
        TC,
        format!(
            "mov %r6, %r1\ncall 34\nmov %r1, %r6\n{}",
            store(30, 2, Epi::Field(HASH)).replacen("mov %r6, %r1\n", "", 1)
        ),
        p4.clone(),
    ));

    // ---- bpf_skb_pull_data (39) ----
    let n = p4.len() as i64;
    v.push(tc("pull_data_0", 39, &[0], Epi::Field(LEN), p4.clone()));
    v.push(tc("pull_data_len", 39, &[n], Epi::Byte(0), p4.clone()));
    v.push(tc("pull_data_past_len", 39, &[n + 1], Epi::Ret, p4.clone()));
    v.push(tc(
        "pull_data_huge",
        39,
        &[0x7fff_ffff],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "pull_data_u32_max",
        39,
        &[0xffff_ffff],
        Epi::Ret,
        p4.clone(),
    ));

    // ---- bpf_skb_change_tail (38) ----
    v.push(tc(
        "change_tail_grow",
        38,
        &[n + 10, 0],
        Epi::Field(LEN),
        p4.clone(),
    ));
    v.push(tc(
        "change_tail_grow_read_tail",
        38,
        &[n + 10, 0],
        Epi::Byte(n as u32 + 5),
        p4.clone(),
    ));
    v.push(tc(
        "change_tail_trim",
        38,
        &[40, 0],
        Epi::Field(LEN),
        p4.clone(),
    ));
    v.push(tc(
        "change_tail_to_network_header",
        38,
        &[14, 0],
        Epi::Field(LEN),
        p4.clone(),
    ));
    v.push(tc(
        "change_tail_below_network_header",
        38,
        &[13, 0],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc("change_tail_flags", 38, &[n, 1], Epi::Ret, p4.clone()));
    v.push(tc(
        "change_tail_max",
        38,
        &[16064, 0],
        Epi::Field(LEN),
        p4.clone(),
    ));
    v.push(tc(
        "change_tail_past_max",
        38,
        &[16065, 0],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "change_tail_same",
        38,
        &[n, 0],
        Epi::Field(LEN),
        other(),
    ));

    // ---- bpf_skb_change_head (43) ----
    v.push(tc(
        "change_head_14",
        43,
        &[14, 0],
        Epi::Field(LEN),
        p4.clone(),
    ));
    v.push(tc(
        "change_head_read_new_head",
        43,
        &[14, 0],
        Epi::Byte(14),
        p4.clone(),
    ));
    v.push(tc(
        "change_head_0",
        43,
        &[0, 0],
        Epi::Field(LEN),
        p4.clone(),
    ));
    v.push(tc("change_head_flags", 43, &[4, 2], Epi::Ret, p4.clone()));
    v.push(tc(
        "change_head_wraps",
        43,
        &[0xffff_ffff, 0],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "change_head_to_max",
        43,
        &[16064 - n, 0],
        Epi::Field(LEN),
        p4.clone(),
    ));
    v.push(tc(
        "change_head_past_max",
        43,
        &[16065 - n, 0],
        Epi::Ret,
        p4.clone(),
    ));
    // The network header stays: change_tail may then not cut into it.
    v.push(case(
        "change_head_then_tail_min",
        TC,
        format!(
            "mov %r6, %r1\nmov %r2, 8\nmov %r3, 0\ncall 43\nmov %r1, %r6\n{}",
            call(&args(&[21, 0]), 38, Epi::Field(LEN)).replacen("mov %r6, %r1\n", "", 1)
        ),
        p4.clone(),
    ));

    // ---- bpf_skb_adjust_room (50) ----
    let adj = |d: i64, mode: i64, flags: i64| args(&[d, mode, flags]);
    v.push(case(
        "adjust_room_mac_grow",
        TC,
        call(&adj(8, 1, 0), 50, Epi::Field(LEN)),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_net_grow",
        TC,
        call(&adj(8, 0, 0), 50, Epi::Field(LEN)),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_mac_shrink",
        TC,
        call(&adj(-8, 1, 0), 50, Epi::Field(LEN)),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_net_shrink",
        TC,
        call(&adj(-8, 0, 0), 50, Epi::Field(LEN)),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_net_shrink_ipv6",
        TC,
        call(&adj(-8, 0, 0), 50, Epi::Field(LEN)),
        ipv6_tc(0),
    ));
    v.push(case(
        "adjust_room_shrink_too_much",
        TC,
        call(&adj(-17, 0, 0), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_shrink_to_min",
        TC,
        call(&adj(-16, 1, 0), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_zero",
        TC,
        call(&adj(0, 0, 0), 50, Epi::Field(LEN)),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_too_big",
        TC,
        call(&adj(0x1000, 0, 0), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_bad_mode",
        TC,
        call(&adj(8, 2, 0), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_bad_flag",
        TC,
        call(&adj(8, 0, 0x200), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_not_ip",
        TC,
        call(&adj(8, 0, 0), 50, Epi::Ret),
        other(),
    ));
    v.push(case(
        "adjust_room_encap_ipip_udp",
        TC,
        call(&adj(28, 1, 0x12), 50, Epi::Field(PROTOCOL)),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_encap_4in6",
        TC,
        call(&adj(40, 1, 0x4), 50, Epi::Field(PROTOCOL)),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_encap_6in4_gre",
        TC,
        call(&adj(24, 1, 0xa), 50, Epi::Field(PROTOCOL)),
        ipv6_tc(0),
    ));
    v.push(case(
        "adjust_room_encap_both_l3",
        TC,
        call(&adj(28, 1, 0x6), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_encap_gre_and_udp",
        TC,
        call(&adj(28, 1, 0x1a), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_encap_l2_eth_short",
        TC,
        call(&adj(42, 1, 0x52 | (10 << 56)), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_encap_l2_eth",
        TC,
        call(&adj(42, 1, 0x52 | (14 << 56)), 50, Epi::Field(LEN)),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_encap_l2_longer_than_room",
        TC,
        call(&adj(8, 1, 0x2 | (14 << 56)), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_grow_with_decap",
        TC,
        call(&adj(8, 1, 0x80), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_decap_6_from_4",
        TC,
        call(&adj(-20, 1, 0x100), 50, Epi::Field(PROTOCOL)),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_decap_both",
        TC,
        call(&adj(-8, 1, 0x180), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_shrink_encap_flag",
        TC,
        call(&adj(-8, 1, 0x2), 50, Epi::Ret),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_encap_twice",
        TC,
        format!(
            "mov %r6, %r1\n{}mov %r1, %r6\ncall 50\n{}",
            adj(20, 1, 0x2),
            call(&adj(20, 1, 0x2), 50, Epi::Ret).replacen("mov %r6, %r1\n", "", 1)
        ),
        p4.clone(),
    ));
    v.push(case(
        "adjust_room_encap_then_change_tail",
        TC,
        format!(
            "mov %r6, %r1\n{}mov %r1, %r6\ncall 50\n{}",
            adj(20, 1, 0x2),
            call(&args(&[100, 0]), 38, Epi::Ret).replacen("mov %r6, %r1\n", "", 1)
        ),
        p4.clone(),
    ));

    // ---- bpf_skb_vlan_push (18) / bpf_skb_vlan_pop (19) ----
    let q = 0x0081i64; // htons(ETH_P_8021Q)
    let ad = 0xa888i64; // htons(ETH_P_8021AD)
    for (f, fname) in [
        (VLAN_PRESENT, "present"),
        (VLAN_TCI, "tci"),
        (VLAN_PROTO, "proto"),
        (LEN, "len"),
    ] {
        v.push(tc(
            &format!("vlan_push_{fname}"),
            18,
            &[q, 0x1064],
            Epi::Field(f),
            p4.clone(),
        ));
    }
    v.push(tc(
        "vlan_push_8021ad",
        18,
        &[ad, 7],
        Epi::Field(VLAN_PROTO),
        p4.clone(),
    ));
    v.push(tc(
        "vlan_push_other_proto",
        18,
        &[0x0008, 7],
        Epi::Field(VLAN_PROTO),
        p4.clone(),
    ));
    let push2 = |f: u32| {
        format!(
            "mov %r6, %r1\nmov %r2, {ad}\nmov %r3, 100\ncall 18\n{}",
            call(&args(&[q, 200]), 18, Epi::Field(f)).replacen("mov %r6, %r1\n", "", 1)
        )
    };
    v.push(case("vlan_push_twice_tci", TC, push2(VLAN_TCI), p4.clone()));
    v.push(case(
        "vlan_push_twice_protocol",
        TC,
        push2(PROTOCOL),
        p4.clone(),
    ));
    v.push(case("vlan_push_twice_len", TC, push2(LEN), p4.clone()));
    v.push(tc(
        "vlan_pop_untagged",
        19,
        &[],
        Epi::Field(LEN),
        p4.clone(),
    ));
    let t1 = tagged(&[(0x8100, 0x0064)]);
    v.push(tc(
        "vlan_pop_tagged_len",
        19,
        &[],
        Epi::Field(LEN),
        t1.clone(),
    ));
    v.push(tc(
        "vlan_pop_tagged_protocol",
        19,
        &[],
        Epi::Field(PROTOCOL),
        t1.clone(),
    ));
    v.push(tc(
        "vlan_pop_tagged_present",
        19,
        &[],
        Epi::Field(VLAN_PRESENT),
        t1.clone(),
    ));
    let qinq = tagged(&[(0x88a8, 0x0005), (0x8100, 0x0064)]);
    v.push(tc(
        "vlan_pop_qinq_tci",
        19,
        &[],
        Epi::Field(VLAN_TCI),
        qinq.clone(),
    ));
    v.push(tc(
        "vlan_pop_qinq_proto",
        19,
        &[],
        Epi::Field(VLAN_PROTO),
        qinq.clone(),
    ));
    v.push(tc(
        "vlan_pop_qinq_protocol",
        19,
        &[],
        Epi::Field(PROTOCOL),
        qinq.clone(),
    ));
    // A tag frame cut after the TPID: nothing to pop.
    let mut short = eth(0x8100);
    short.extend_from_slice(&[0, 0x64, 0x08]);
    v.push(tc("vlan_pop_short", 19, &[], Epi::Field(LEN), short));
    v.push(case(
        "vlan_push_then_pop",
        TC,
        format!(
            "mov %r6, %r1\nmov %r2, {q}\nmov %r3, 9\ncall 18\n{}",
            call("", 19, Epi::Field(VLAN_PRESENT)).replacen("mov %r6, %r1\n", "", 1)
        ),
        p4.clone(),
    ));

    // ---- bpf_skb_ecn_set_ce (97) ----
    for (tos, name) in [
        (0u8, "not_ect"),
        (1, "ect1"),
        (2, "ect0"),
        (3, "ce"),
        (0xb8 | 2, "ef_ect0"),
    ] {
        v.push(tc(
            &format!("ecn_ipv4_{name}"),
            97,
            &[],
            Epi::Byte(15),
            ipv4_tos(tos),
        ));
    }
    for (tc_, name) in [(0u8, "not_ect"), (1, "ect1"), (2, "ect0"), (3, "ce")] {
        v.push(tc(
            &format!("ecn_ipv6_{name}"),
            97,
            &[],
            Epi::Byte(15),
            ipv6_tc(tc_),
        ));
    }
    v.push(tc("ecn_other", 97, &[], Epi::Ret, other()));
    v.push(tc("ecn_vlan_tagged_ect0", 97, &[], Epi::Byte(19), {
        let mut t = tagged(&[(0x8100, 0x0064)]);
        t[19] = 2;
        t
    }));
    v.push(tc(
        "probe_ingress_ifindex",
        97,
        &[],
        Epi::Field(36),
        other(),
    ));
    v.push(tc("probe_ifindex", 97, &[], Epi::Field(40), other()));
    v.push(tc("probe_pkt_type", 97, &[], Epi::Field(4), other()));
    v.push(tc("probe_wire_len", 97, &[], Epi::Field(160), other()));
    v.push(tc("probe_gso_segs", 97, &[], Epi::Field(164), other()));
    let mut bcast = other();
    bcast[..6].fill(0xff);
    v.push(tc(
        "probe_pkt_type_broadcast",
        97,
        &[],
        Epi::Field(4),
        bcast,
    ));
    let mut mcast = other();
    mcast[0] = 0x01;
    v.push(tc(
        "probe_pkt_type_multicast",
        97,
        &[],
        Epi::Field(4),
        mcast,
    ));
    let mut host = other();
    host[..6].fill(0);
    v.push(tc("probe_pkt_type_host", 97, &[], Epi::Field(4), host));
    // A context in: the fields user space may set, read back and returned.
    let ctx = |f: &[(usize, u32)]| {
        let mut c = vec![0u8; 192];
        for &(o, val) in f {
            c[o..o + 4].copy_from_slice(&val.to_le_bytes());
        }
        c
    };
    let with_ctx = |mut c: Case, x: Vec<u8>| {
        c.ctx_in = Some(x);
        c
    };
    let full = ctx(&[
        (8, 7),
        (32, 3),
        (36, 1),
        (40, 1),
        (48, 11),
        (64, 15),
        (160, 200),
        (164, 2),
        (176, 100),
    ]);
    for (f, name) in [
        (8, "mark"),
        (32, "priority"),
        (36, "ingress_ifindex"),
        (40, "ifindex"),
        (48, "cb0"),
        (160, "wire_len"),
        (164, "gso_segs"),
        (176, "gso_size"),
        (0, "len"),
    ] {
        v.push(with_ctx(
            tc(&format!("ctx_in_{name}"), 97, &[], Epi::Field(f), other()),
            full.clone(),
        ));
    }
    // Writes to the context the kernel keeps, and one it does not hand back.
    v.push(with_ctx(
        case(
            "ctx_out_after_writes",
            TC,
            "stw [%r1+8], 99\nstw [%r1+32], 5\nstw [%r1+52], 77\nstw [%r1+44], 6\nmov %r0, 0\nexit"
                .into(),
            other(),
        ),
        full.clone(),
    ));
    v.push(with_ctx(
        tc("ctx_in_vlan_tci_set", 97, &[], Epi::Ret, other()),
        ctx(&[(24, 5)]),
    ));
    v.push(with_ctx(
        tc("ctx_in_len_set", 97, &[], Epi::Ret, other()),
        ctx(&[(0, 5)]),
    ));
    v.push(with_ctx(
        tc("ctx_in_wire_len_short", 97, &[], Epi::Ret, other()),
        ctx(&[(160, 20)]),
    ));
    v.push(with_ctx(
        tc("ctx_in_wire_len_huge", 97, &[], Epi::Ret, other()),
        ctx(&[(160, 70000)]),
    ));
    v.push(with_ctx(
        tc("ctx_in_gso_segs_huge", 97, &[], Epi::Ret, other()),
        ctx(&[(164, 70000)]),
    ));
    v.push(with_ctx(
        tc("ctx_in_ifindex_missing", 97, &[], Epi::Ret, other()),
        ctx(&[(40, 0x7fff_0000)]),
    ));
    v.push(with_ctx(
        tc("ctx_in_short", 97, &[], Epi::Field(8), other()),
        ctx(&[(8, 9)])[..12].to_vec(),
    ));
    // After vlan_push the protocol is still IPv4 (the tag is offloaded).
    v.push(case(
        "ecn_after_vlan_push",
        TC,
        format!(
            "mov %r6, %r1\nmov %r2, {q}\nmov %r3, 9\ncall 18\n{}",
            call("", 97, Epi::Byte(15)).replacen("mov %r6, %r1\n", "", 1)
        ),
        ipv4_tos(2),
    ));

    // ---- bpf_get_hash_recalc (34), bpf_set_hash_invalid (41) ----
    // The value is bpfvm's own: the programs only test that it is non-zero,
    // stable and what ctx->hash then reads.
    let hash_prog = "mov %r6, %r1
         call 34
         mov %r7, %r0
         mov %r1, %r6
         call 34
         mov %r8, %r0
         ldxw %r9, [%r6+68]
         mov %r0, 0
         jeq %r7, 0, +1
         or %r0, 1
         jne %r7, %r8, +1
         or %r0, 2
         jne %r7, %r9, +1
         or %r0, 4
         exit"
        .to_string();
    v.push(case("hash_recalc_ipv4", TC, hash_prog.clone(), p4.clone()));
    v.push(case("hash_recalc_ipv6", TC, hash_prog.clone(), ipv6_tc(0)));
    v.push(case("hash_recalc_other", TC, hash_prog, other()));
    v.push(case(
        "hash_invalid_clears_ctx_hash",
        TC,
        "mov %r6, %r1\ncall 34\nmov %r1, %r6\ncall 41\nmov %r7, %r0\nldxw %r0, [%r6+68]\nlsh %r0, 16\nor %r0, %r7\nexit"
            .into(),
        p4.clone(),
    ));
    v.push(tc(
        "hash_initially_zero",
        41,
        &[],
        Epi::Field(HASH),
        p4.clone(),
    ));

    // ---- bpf_clone_redirect (13) ----
    // Copies go to `lo` with an EtherType nothing on the host takes.
    v.push(tc(
        "clone_redirect_lo_egress",
        13,
        &[1, 0],
        Epi::Field(LEN),
        other(),
    ));
    v.push(tc(
        "clone_redirect_lo_ingress",
        13,
        &[1, 1],
        Epi::Ret,
        other(),
    ));
    v.push(tc(
        "clone_redirect_no_dev",
        13,
        &[0x7fff_0000, 0],
        Epi::Ret,
        other(),
    ));
    v.push(tc(
        "clone_redirect_ifindex0",
        13,
        &[0, 0],
        Epi::Ret,
        other(),
    ));
    v.push(tc(
        "clone_redirect_bad_flags",
        13,
        &[1, 2],
        Epi::Ret,
        other(),
    ));
    v.push(tc(
        "clone_redirect_internal_flag",
        13,
        &[1, 1 << 16],
        Epi::Ret,
        other(),
    ));

    // ---- XDP: bpf_xdp_get_buff_len (188), load (189), store (190) ----
    let xload = |off: i64, len: i64| {
        format!(
            "mov %r6, %r1
             mov %r2, {off}
             mov %r3, %r10
             add %r3, -16
             mov %r4, {len}
             call 189
             jne %r0, 0, +2
             ldxw %r0, [%r10-16]
             exit
             exit"
        )
    };
    let xstore = |off: i64, len: i64| {
        format!(
            "mov %r6, %r1
             stdw [%r10-16], 0x55667788
             mov %r2, {off}
             mov %r3, %r10
             add %r3, -16
             mov %r4, {len}
             call 190
             exit"
        )
    };
    v.push(case("xdp_load_bytes_head", XDP, xload(0, 8), p4.clone()));
    v.push(case(
        "xdp_load_bytes_tail",
        XDP,
        xload(n - 8, 8),
        p4.clone(),
    ));
    v.push(case(
        "xdp_load_bytes_past_end",
        XDP,
        xload(n - 7, 8),
        p4.clone(),
    ));
    v.push(case(
        "xdp_load_bytes_offset_0x10000",
        XDP,
        xload(0x10000, 8),
        p4.clone(),
    ));
    v.push(case(
        "xdp_load_bytes_offset_0xffff",
        XDP,
        xload(0xffff, 8),
        p4.clone(),
    ));
    v.push(case("xdp_store_bytes_mid", XDP, xstore(20, 4), p4.clone()));
    v.push(case(
        "xdp_store_bytes_end",
        XDP,
        xstore(n - 8, 8),
        p4.clone(),
    ));
    v.push(case(
        "xdp_store_bytes_past_end",
        XDP,
        xstore(n - 2, 4),
        p4.clone(),
    ));
    v.push(case(
        "xdp_store_bytes_offset_0x10000",
        XDP,
        xstore(0x10000, 4),
        p4.clone(),
    ));
    v.push(case(
        "xdp_get_buff_len",
        XDP,
        "call 188\nexit".into(),
        p4.clone(),
    ));
    v.push(case(
        "xdp_get_buff_len_after_adjust_tail",
        XDP,
        "mov %r6, %r1\nmov %r2, -6\ncall 65\nmov %r1, %r6\ncall 188\nexit".into(),
        p4.clone(),
    ));
    v.push(case(
        "xdp_get_buff_len_after_adjust_head",
        XDP,
        "mov %r6, %r1\nmov %r2, -20\ncall 44\nmov %r1, %r6\ncall 188\nexit".into(),
        p4.clone(),
    ));

    // ---- bpf_get_current_task (35), bpf_get_ns_current_pid_tgid (120) ----
    v.push(case(
        "current_task_nonzero",
        XDP,
        "call 35\nmov %r1, %r0\nmov %r0, 0\njeq %r1, 0, +1\nmov %r0, 1\nexit".into(),
        p4.clone(),
    ));
    // The task is bpfvm's stand-in (task.rs): a probe read of it works.
    v.push(case(
        "current_task_probe_read",
        XDP,
        "call 35
         mov %r3, %r0
         mov %r1, %r10
         add %r1, -8
         mov %r2, 8
         call 113
         exit"
            .into(),
        p4.clone(),
    ));
    let (dev, ino) = pidns();
    // SAFETY: gettid/getpid have no preconditions.
    let (tid, pid) = unsafe { (libc::gettid() as i64, libc::getpid() as i64) };
    let ns = |dev: i64, ino: i64, size: i64| {
        format!(
            "stdw [%r10-16], -1
             stdw [%r10-8], -1
             lddw %r1, {dev:#x}
             lddw %r2, {ino:#x}
             mov %r3, %r10
             add %r3, -16
             mov %r4, {size}
             call 120
             and %r0, 0xffff
             ldxw %r1, [%r10-16]
             ldxw %r2, [%r10-12]
             ldxb %r3, [%r10-8]
             jne %r1, {tid}, +1
             or %r0, 0x10000
             jne %r2, {pid}, +1
             or %r0, 0x20000
             jne %r1, 0, +1
             or %r0, 0x40000
             jne %r3, 255, +1
             or %r0, 0x80000
             exit"
        )
    };
    v.push(case("ns_pid_tgid_own_ns", XDP, ns(dev, ino, 8), p4.clone()));
    v.push(case(
        "ns_pid_tgid_wrong_ino",
        XDP,
        ns(dev, ino + 1, 8),
        p4.clone(),
    ));
    v.push(case(
        "ns_pid_tgid_wrong_dev",
        XDP,
        ns(dev + 1, ino, 8),
        p4.clone(),
    ));
    v.push(case(
        "ns_pid_tgid_dev_past_u32",
        XDP,
        ns(dev | (1 << 32), ino, 8),
        p4.clone(),
    ));
    v.push(case(
        "ns_pid_tgid_size_12",
        XDP,
        ns(dev, ino, 12),
        p4.clone(),
    ));

    // ---- bpf_skb_change_proto (31) ----
    let v6 = 0xdd86i64; // htons(ETH_P_IPV6)
    let v4 = 0x0008i64; // htons(ETH_P_IP)
    v.push(tc(
        "change_proto_4_to_6",
        31,
        &[v6, 0],
        Epi::Field(PROTOCOL),
        p4.clone(),
    ));
    v.push(tc(
        "change_proto_4_to_6_len",
        31,
        &[v6, 0],
        Epi::Field(LEN),
        p4.clone(),
    ));
    v.push(tc(
        "change_proto_6_to_4",
        31,
        &[v4, 0],
        Epi::Field(PROTOCOL),
        ipv6_tc(0),
    ));
    v.push(tc(
        "change_proto_6_to_4_len",
        31,
        &[v4, 0],
        Epi::Field(LEN),
        ipv6_tc(0),
    ));
    v.push(tc(
        "change_proto_4_to_4",
        31,
        &[v4, 0],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "change_proto_6_to_6",
        31,
        &[v6, 0],
        Epi::Ret,
        ipv6_tc(0),
    ));
    v.push(tc("change_proto_other", 31, &[v6, 0], Epi::Ret, other()));
    v.push(tc("change_proto_flags", 31, &[v6, 1], Epi::Ret, p4.clone()));
    v.push(tc(
        "change_proto_host_order",
        31,
        &[0x86dd, 0],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(case(
        "change_proto_clears_hash",
        TC,
        format!(
            "mov %r6, %r1\ncall 34\n{}",
            call(&args(&[v6, 0]), 31, Epi::Field(HASH)).replacen("mov %r6, %r1\n", "", 1)
        ),
        p4.clone(),
    ));
    // Back and forth: the packet is the same length again.
    v.push(case(
        "change_proto_4_6_4",
        TC,
        format!(
            "mov %r6, %r1\nmov %r2, {v6}\nmov %r3, 0\ncall 31\n{}",
            call(&args(&[v4, 0]), 31, Epi::Field(LEN)).replacen("mov %r6, %r1\n", "", 1)
        ),
        p4.clone(),
    ));

    // ---- other skb program types: the packet starts at the network header ----
    const CGROUP_SKB: u32 = 8;
    const LWT_IN: u32 = 10;
    const LWT_XMIT: u32 = 12;
    let ty = |mut c: Case, t: u32| {
        c.prog_type = t;
        c
    };
    v.push(ty(
        tc(
            "lwt_xmit_change_tail",
            38,
            &[30, 0],
            Epi::Field(LEN),
            p4.clone(),
        ),
        LWT_XMIT,
    ));
    v.push(ty(
        tc(
            "lwt_xmit_change_tail_below_min",
            38,
            &[0, 0],
            Epi::Ret,
            p4.clone(),
        ),
        LWT_XMIT,
    ));
    v.push(ty(
        tc(
            "lwt_xmit_change_head",
            43,
            &[14, 0],
            Epi::Field(LEN),
            p4.clone(),
        ),
        LWT_XMIT,
    ));
    v.push(ty(
        case(
            "lwt_xmit_store_bytes",
            TC,
            store(0, 0, Epi::Ret),
            p4.clone(),
        ),
        LWT_XMIT,
    ));
    v.push(ty(
        tc(
            "lwt_xmit_l3_csum",
            10,
            &[10, ttl, ttl2, 2],
            Epi::Ret,
            p4.clone(),
        ),
        LWT_XMIT,
    ));
    v.push(ty(
        tc("lwt_in_pull_data", 39, &[20], Epi::Field(LEN), p4.clone()),
        LWT_IN,
    ));
    v.push(ty(
        case(
            "cgroup_skb_ecn",
            TC,
            "call 97\nand %r0, 1\nexit".into(),
            ipv4_tos(2),
        ),
        CGROUP_SKB,
    ));
    v.push(ty(
        case(
            "cgroup_skb_ecn_not_ect",
            TC,
            "call 97\nand %r0, 1\nexit".into(),
            ipv4_tos(0),
        ),
        CGROUP_SKB,
    ));

    // ---- BPF_F_TEST_SKB_CHECKSUM_COMPLETE, bpf_csum_update (40), bpf_csum_level (135) ----
    let complete = |mut c: Case| {
        c.flags = 4;
        c
    };
    v.push(complete(case(
        "complete_untouched",
        TC,
        "mov %r0, 0\nexit".into(),
        p4.clone(),
    )));
    v.push(complete(case(
        "complete_direct_write",
        TC,
        "mov %r0, 0
         ldxw %r2, [%r1+76]
         ldxw %r3, [%r1+80]
         mov %r4, %r2
         add %r4, 40
         jgt %r4, %r3, +1
         stb [%r2+39], 0x77
         exit"
            .into(),
        p4.clone(),
    )));
    for off in [30i64, 31, 44, 45] {
        v.push(complete(case(
            &format!("complete_store_recompute_{off}"),
            TC,
            store(off, 1, Epi::Ret),
            p4.clone(),
        )));
        v.push(complete(case(
            &format!("complete_store_plain_{off}"),
            TC,
            store(off, 0, Epi::Ret),
            p4.clone(),
        )));
    }
    v.push(complete(case(
        "complete_nat_pseudo",
        TC,
        nat(0x10),
        p4.clone(),
    )));
    v.push(complete(case(
        "complete_nat_no_pseudo",
        TC,
        nat(0),
        p4.clone(),
    )));
    // A direct write made good with bpf_csum_diff + bpf_csum_update (the sum
    // it returns is the program's result).
    let direct_fix = |off: u32| {
        format!(
            "mov %r6, %r1
             ldxw %r2, [%r6+76]
             ldxw %r3, [%r6+80]
             mov %r4, %r2
             add %r4, {end}
             jgt %r4, %r3, out
             ldxw %r1, [%r2+{off}]
             stxw [%r10-8], %r1
             stw [%r2+{off}], 0x5a5a1234
             stw [%r10-4], 0x5a5a1234
             mov %r1, %r10
             add %r1, -8
             mov %r2, 4
             mov %r3, %r10
             add %r3, -4
             mov %r4, 4
             mov %r5, 0
             call 28
             mov %r2, %r0
             mov %r1, %r6
             call 40
             exit
             out:
             mov %r0, 1
             exit",
            end = off + 4
        )
    };
    v.push(complete(case(
        "complete_csum_update_fix",
        TC,
        direct_fix(44),
        p4.clone(),
    )));
    v.push(case(
        "csum_update_not_complete",
        TC,
        direct_fix(44),
        p4.clone(),
    ));
    v.push(complete(tc(
        "complete_csum_update_unbalanced",
        40,
        &[0x1234],
        Epi::Ret,
        p4.clone(),
    )));
    v.push(complete(tc(
        "complete_change_tail_grow",
        38,
        &[n + 6, 0],
        Epi::Ret,
        p4.clone(),
    )));
    v.push(complete(tc(
        "complete_change_tail_trim",
        38,
        &[n - 6, 0],
        Epi::Ret,
        p4.clone(),
    )));
    v.push(complete(case(
        "complete_change_tail_then_update",
        TC,
        format!(
            "mov %r6, %r1\nmov %r2, {}\nmov %r3, 0\ncall 38\n{}",
            n + 2,
            call(&args(&[5]), 40, Epi::Ret).replacen("mov %r6, %r1\n", "", 1)
        ),
        p4.clone(),
    )));
    v.push(complete(case(
        "complete_adjust_room_net_shrink",
        TC,
        call(&adj(-8, 0, 0), 50, Epi::Ret),
        p4.clone(),
    )));
    v.push(complete(case(
        "complete_adjust_room_mac_grow",
        TC,
        call(&adj(8, 1, 0), 50, Epi::Ret),
        p4.clone(),
    )));
    v.push(complete(tc(
        "complete_change_proto_6_to_4",
        31,
        &[v4, 0],
        Epi::Ret,
        ipv6_tc(0),
    )));
    v.push(complete(tc(
        "complete_change_proto_4_to_6",
        31,
        &[v6, 0],
        Epi::Ret,
        p4.clone(),
    )));
    v.push(complete(tc(
        "complete_vlan_pop_tagged",
        19,
        &[],
        Epi::Ret,
        tagged(&[(0x8100, 0x0064)]),
    )));
    v.push(complete(tc(
        "complete_vlan_pop_qinq",
        19,
        &[],
        Epi::Ret,
        tagged(&[(0x88a8, 5), (0x8100, 0x0064)]),
    )));
    v.push(complete(case(
        "complete_vlan_push_twice",
        TC,
        push2(LEN),
        p4.clone(),
    )));
    v.push(complete(tc(
        "complete_ecn_ipv4",
        97,
        &[],
        Epi::Ret,
        ipv4_tos(2),
    )));
    v.push(complete(tc(
        "complete_ecn_ipv6",
        97,
        &[],
        Epi::Ret,
        ipv6_tc(2),
    )));
    v.push(complete(tc(
        "complete_l3_csum",
        10,
        &[24, ttl, ttl2, 2],
        Epi::Ret,
        p4.clone(),
    )));
    let mut c = case("flags_unknown", TC, "mov %r0, 0\nexit".into(), p4.clone());
    c.flags = 8;
    v.push(c);
    // csum_level: levels applied in turn, then BPF_CSUM_LEVEL_QUERY.
    let levels = |ls: &[i64]| {
        let mut t = String::from("mov %r6, %r1\n");
        for l in ls {
            t.push_str(&format!("mov %r1, %r6\nmov %r2, {l}\ncall 135\n"));
        }
        t.push_str("mov %r1, %r6\nmov %r2, 0\ncall 135\nexit");
        t
    };
    for (name, ls) in [
        ("query", &[][..]),
        ("inc", &[1][..]),
        ("inc_inc", &[1, 1][..]),
        ("inc_x5", &[1, 1, 1, 1, 1][..]),
        ("dec_none", &[2][..]),
        ("inc_dec", &[1, 2][..]),
        ("inc_inc_dec", &[1, 1, 2][..]),
        ("inc_reset", &[1, 1, 3][..]),
    ] {
        v.push(case(
            &format!("csum_level_{name}"),
            TC,
            levels(ls),
            p4.clone(),
        ));
    }
    v.push(complete(case(
        "complete_csum_level_inc",
        TC,
        levels(&[1]),
        p4.clone(),
    )));
    v.push(tc("csum_level_bad", 135, &[4], Epi::Ret, p4.clone()));
    let level_then_adjust = |flags: i64| {
        format!(
            "mov %r6, %r1\nmov %r2, 1\ncall 135\nmov %r1, %r6\n{}call 50\nmov %r1, %r6\nmov %r2, 0\ncall 135\nexit",
            adj(8, 1, flags)
        )
    };
    v.push(case(
        "csum_level_adjust_room_resets",
        TC,
        level_then_adjust(0),
        p4.clone(),
    ));
    v.push(case(
        "csum_level_adjust_room_no_reset",
        TC,
        level_then_adjust(0x20),
        p4.clone(),
    ));

    // ---- bpf_redirect (23), bpf_redirect_peer (155), bpf_redirect_neigh (152) ----
    v.push(case("tc_redirect", TC, call12(23, 1, 0), p4.clone()));
    v.push(case(
        "tc_redirect_ingress",
        TC,
        call12(23, 1, 1),
        p4.clone(),
    ));
    v.push(case(
        "tc_redirect_bad_flag",
        TC,
        call12(23, 1, 2),
        p4.clone(),
    ));
    v.push(case(
        "tc_redirect_internal_flag",
        TC,
        call12(23, 1, 1 << 16),
        p4.clone(),
    ));
    v.push(case(
        "xdp_redirect",
        XDP,
        "mov %r1, 1\nmov %r2, 0\ncall 23\nexit".into(),
        p4.clone(),
    ));
    v.push(case(
        "xdp_redirect_ingress_flag",
        XDP,
        "mov %r1, 1\nmov %r2, 1\ncall 23\nexit".into(),
        p4.clone(),
    ));
    v.push(case("redirect_peer", TC, call12(155, 1, 0), p4.clone()));
    v.push(case(
        "redirect_peer_flags",
        TC,
        call12(155, 1, 1),
        p4.clone(),
    ));
    let neigh = |plen: i64, flags: i64| {
        format!(
            "stdw [%r10-24], 0
             stdw [%r10-16], 0
             stw [%r10-8], 0
             mov %r1, 1
             mov %r2, %r10
             add %r2, -24
             mov %r3, {plen}
             mov %r4, {flags}
             call 152
             exit"
        )
    };
    v.push(case(
        "redirect_neigh_null",
        TC,
        "mov %r1, 1\nmov %r2, 0\nmov %r3, 0\nmov %r4, 0\ncall 152\nexit".into(),
        p4.clone(),
    ));
    v.push(case("redirect_neigh_params", TC, neigh(20, 0), p4.clone()));
    v.push(case(
        "redirect_neigh_short_params",
        TC,
        neigh(8, 0),
        p4.clone(),
    ));
    v.push(case("redirect_neigh_flags", TC, neigh(20, 1), p4.clone()));

    // ---- smaller skb and task helpers ----
    v.push(tc("change_type_host", 32, &[0], Epi::Field(4), p4.clone()));
    v.push(tc(
        "change_type_broadcast",
        32,
        &[1],
        Epi::Field(4),
        p4.clone(),
    ));
    v.push(tc("change_type_loopback", 32, &[5], Epi::Ret, p4.clone()));
    v.push(tc(
        "set_hash",
        48,
        &[0x1234_5678],
        Epi::Field(HASH),
        p4.clone(),
    ));
    v.push(case(
        "set_hash_then_recalc",
        TC,
        "mov %r6, %r1\nmov %r2, 77\ncall 48\nmov %r1, %r6\ncall 34\nexit".into(),
        p4.clone(),
    ));
    let rel = |off: i64, len: i64, start: i64| {
        format!(
            "mov %r6, %r1
             stdw [%r10-8], -1
             mov %r2, {off}
             mov %r3, %r10
             add %r3, -8
             mov %r4, {len}
             mov %r5, {start}
             call 68
             and %r0, 0xffff
             ldxw %r1, [%r10-8]
             and %r1, 0xffff
             lsh %r1, 16
             or %r0, %r1
             exit"
        )
    };
    v.push(case("load_rel_mac", TC, rel(12, 4, 0), p4.clone()));
    v.push(case("load_rel_net", TC, rel(12, 4, 1), p4.clone()));
    v.push(case(
        "load_rel_net_end",
        TC,
        rel(n - 14 - 4, 4, 1),
        p4.clone(),
    ));
    v.push(case(
        "load_rel_net_past_end",
        TC,
        rel(n - 14 - 3, 4, 1),
        p4.clone(),
    ));
    v.push(case("load_rel_bad_start", TC, rel(0, 4, 2), p4.clone()));
    v.push(case(
        "load_rel_offset_0x10000",
        TC,
        rel(0x10000, 4, 0),
        p4.clone(),
    ));
    v.push(ty(
        case("load_rel_socket_filter_mac", TC, rel(12, 4, 0), p4.clone()),
        1,
    ));
    v.push(ty(
        case("load_rel_socket_filter_net", TC, rel(0, 4, 1), p4.clone()),
        1,
    ));
    let mtu = |ifindex: i64, mtu_in: i64, diff: i64, flags: i64, xdp: bool| {
        case(
            &format!(
                "{}_check_mtu_{ifindex}_{mtu_in}_{diff}_{flags}",
                if xdp { "xdp" } else { "tc" }
            ),
            if xdp { XDP } else { TC },
            format!(
                "mov %r6, %r1
                 stw [%r10-4], {mtu_in}
                 mov %r2, {ifindex}
                 mov %r3, %r10
                 add %r3, -4
                 mov %r4, {diff}
                 mov %r5, {flags}
                 call 163
                 and %r0, 0xffff
                 ldxw %r1, [%r10-4]
                 lsh %r1, 16
                 or %r0, %r1
                 exit"
            ),
            p4.clone(),
        )
    };
    for xdp in [false, true] {
        v.push(mtu(0, 0, 0, 0, xdp));
        v.push(mtu(1, 0, 0, 0, xdp));
        v.push(mtu(0, 65536, 0, 0, xdp));
        v.push(mtu(0, 65537, 0, 0, xdp));
        v.push(mtu(0, 0, 65536, 0, xdp));
        v.push(mtu(0, 0, -100, 0, xdp));
        v.push(mtu(0x7fff_0000, 0, 0, 0, xdp));
        v.push(mtu(0, 0, 0, 1, xdp));
        v.push(mtu(0, 0, 0, 2, xdp));
        v.push(mtu(0, 100, 0, 1, xdp));
        v.push(mtu(0x7fff_0000, 100, 0, 0, xdp));
    }
    let tstamp = |t: i64, kind: i64| {
        format!("mov %r6, %r1\nmov %r2, {t}\nmov %r3, {kind}\ncall 192\nldxdw %r1, [%r6+152]\nlsh %r1, 16\nand %r0, 0xffff\nor %r0, %r1\nexit")
    };
    v.push(case(
        "set_tstamp_realtime",
        TC,
        tstamp(12345, 0),
        p4.clone(),
    ));
    v.push(case("set_tstamp_mono", TC, tstamp(777, 1), p4.clone()));
    v.push(tc(
        "set_tstamp_tai_zero",
        192,
        &[0, 2],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "set_tstamp_realtime_zero",
        192,
        &[0, 0],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc(
        "set_tstamp_bad_type",
        192,
        &[5, 3],
        Epi::Ret,
        p4.clone(),
    ));
    v.push(tc("set_tstamp_not_ip", 192, &[5, 0], Epi::Ret, other()));
    v.push(case(
        "set_tstamp_type_field",
        TC,
        "mov %r6, %r1\nmov %r2, 99\nmov %r3, 2\ncall 192\nldxb %r0, [%r6+180]\nexit".into(),
        p4.clone(),
    ));
    v.push(case(
        "tai_ns_nonzero",
        XDP,
        "call 208\nmov %r1, %r0\nmov %r0, 0\njeq %r1, 0, +1\nmov %r0, 1\nexit".into(),
        p4.clone(),
    ));
    let cg = |helper: u32, arg: Option<i64>| {
        let set = arg.map_or(String::new(), |a| {
            format!("mov %r{}, {a}\n", if helper == 83 { 2 } else { 1 })
        });
        format!("{set}call {helper}\nexit")
    };
    v.push(case("current_cgroup_id", XDP, cg(80, None), p4.clone()));
    for l in [0i64, 1, 2] {
        v.push(case(
            &format!("current_ancestor_cgroup_id_{l}"),
            XDP,
            cg(123, Some(l)),
            p4.clone(),
        ));
        v.push(case(
            &format!("skb_ancestor_cgroup_id_{l}"),
            TC,
            cg(83, Some(l)),
            p4.clone(),
        ));
    }
    v.push(case("skb_cgroup_id", TC, cg(79, None), p4.clone()));
    v.push(case(
        "get_cgroup_classid",
        TC,
        "call 17\nexit".into(),
        p4.clone(),
    ));
    v.push(case(
        "skb_cgroup_classid",
        TC,
        "call 151\nexit".into(),
        p4.clone(),
    ));
    v.push(case(
        "get_route_realm",
        TC,
        "call 24\nexit".into(),
        p4.clone(),
    ));
    let tun = |helper: u32, size: i64, flags: i64| {
        format!(
            "mov %r6, %r1
             stdw [%r10-48], -1
             stdw [%r10-40], -1
             stdw [%r10-32], -1
             stdw [%r10-24], -1
             stdw [%r10-16], -1
             stdw [%r10-8], -1
             mov %r2, %r10
             add %r2, -48
             mov %r3, {size}
             mov %r4, {flags}
             call {helper}
             and %r0, 0xffff
             ldxdw %r1, [%r10-48]
             jne %r1, 0, +1
             or %r0, 0x10000
             ldxdw %r1, [%r10-8]
             jne %r1, -1, +1
             or %r0, 0x20000
             exit"
        )
    };
    v.push(case("get_tunnel_key", TC, tun(20, 44, 0), p4.clone()));
    v.push(case("get_tunnel_key_flags", TC, tun(20, 44, 4), p4.clone()));
    v.push(case("get_tunnel_opt", TC, tun(29, 40, 0), p4.clone()));

    v.push(case(
        "socket_cookie_stable",
        TC,
        "mov %r6, %r1
         call 46
         mov %r7, %r0
         mov %r1, %r6
         call 46
         mov %r8, %r0
         mov %r0, 0
         jeq %r7, 0, +2
         jne %r7, %r8, +1
         mov %r0, 1
         exit"
            .into(),
        p4.clone(),
    ));
    v.push(case("socket_uid", TC, "call 47\nexit".into(), p4.clone()));
    v.push(case(
        "socket_uid_socket_filter",
        1,
        "call 47\nexit".into(),
        p4.clone(),
    ));
    let xfrm = |index: i64, size: i64, flags: i64| {
        format!(
            "stdw [%r10-48], -1
             stdw [%r10-40], -1
             stdw [%r10-32], -1
             stdw [%r10-24], -1
             stdw [%r10-16], -1
             stdw [%r10-8], -1
             mov %r2, {index}
             mov %r3, %r10
             add %r3, -48
             mov %r4, {size}
             mov %r5, {flags}
             call 66
             and %r0, 0xffff
             ldxdw %r1, [%r10-48]
             jne %r1, 0, +1
             or %r0, 0x10000
             ldxdw %r1, [%r10-8]
             jne %r1, -1, +1
             or %r0, 0x20000
             exit"
        )
    };
    v.push(case("xfrm_state_none", TC, xfrm(0, 32, 0), p4.clone()));
    v.push(case("xfrm_state_bad_flags", TC, xfrm(0, 32, 1), p4.clone()));

    // ---- repeated runs: the kernel runs the program again on the same skb ----
    let grow2 = "mov %r6, %r1
         ldxw %r2, [%r6+0]
         add %r2, 2
         mov %r3, 0
         call 38
         ldxw %r0, [%r6+0]
         exit"
        .to_string();
    let mut c = case("repeat_change_tail_adds_up", TC, grow2, p4.clone());
    c.repeat = 5;
    v.push(c);
    let mut c = tc(
        "repeat_vlan_push_stacks",
        18,
        &[q, 3],
        Epi::Field(LEN),
        p4.clone(),
    );
    c.repeat = 3;
    v.push(c);
    let mut c = tc(
        "repeat_adjust_room_grows",
        50,
        &[4, 1, 0],
        Epi::Field(LEN),
        p4.clone(),
    );
    c.repeat = 4;
    v.push(c);
    let mut c = tc("repeat_change_head", 43, &[2, 0], Epi::Byte(0), p4.clone());
    c.repeat = 3;
    v.push(c);
    let mut c = case("repeat_xdp_store_bytes", XDP, xstore(20, 4), p4.clone());
    c.repeat = 3;
    v.push(c);
    let _ = EINVAL_ON_LOAD;
    v
}

fn pidns() -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/proc/self/ns/pid").expect("stat /proc/self/ns/pid");
    (m.dev() as i64, m.ino() as i64)
}

// ---- engines ----

#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    retval: u32,
    data_out: Vec<u8>,
    ctx_out: Vec<u8>,
    /// The test run itself failed with this errno.
    errno: Option<i32>,
}

fn insns(c: &Case) -> Vec<Insn> {
    assemble(&c.asm).unwrap_or_else(|e| panic!("{}: {e}\n{}", c.name, c.asm))
}

/// Runs `c` on `rt`; `observed` runs it instruction by instruction under an
/// observer, which makes the interpreter check every memory access against
/// the run's regions (the packet region the helpers move included).
fn run_bpfvm(rt: &Runtime, c: &Case, observed: bool) -> Result<Outcome, String> {
    let p = rt
        .load_program(ProgLoadAttr {
            prog_type: bpfvm::ProgType::from_u32(c.prog_type).expect("a program type"),
            insns: insns(c),
            license: "GPL".into(),
            name: "net".into(),
            ..Default::default()
        })
        .map_err(|e| format!("load: {e}"))?;
    if rt.jit_enabled() {
        // The JIT engine really is the JIT (no silent fallback).
        match rt.bpf(BpfCmd::ObjGetInfoById {
            kind: bpfvm::ObjKind::Prog,
            id: p.id(),
        }) {
            Ok(BpfReply::ProgInfo(i)) if i.jited && i.bytes_jited > 0 => {}
            other => return Err(format!("not JIT-compiled: {other:?}")),
        }
    }
    let attr = TestRunAttr {
        prog_id: p.id(),
        data_in: c.packet.clone(),
        ctx_in: c.ctx_in.clone(),
        repeat: c.repeat,
        flags: c.flags,
        ..Default::default()
    };
    let failed = |errno| Outcome {
        retval: 0,
        data_out: Vec::new(),
        ctx_out: Vec::new(),
        errno: Some(errno),
    };
    let r = if observed {
        let mut go = |_: &At<'_>| Flow::Continue;
        match rt.test_run_observed(&attr, &mut go) {
            Ok(r) => r,
            Err(
                e @ (bpfvm::BpfError::Invalid(_)
                | bpfvm::BpfError::NoDevice { .. }
                | bpfvm::BpfError::BadChecksum { .. }),
            ) => return Ok(failed(e.errno())),
            Err(e) => return Err(format!("observed test run: {e}")),
        }
    } else {
        match rt.bpf(BpfCmd::ProgTestRun(attr)) {
            Ok(BpfReply::TestRun(r)) => r,
            Err(
                e @ (bpfvm::BpfError::Invalid(_)
                | bpfvm::BpfError::NoDevice { .. }
                | bpfvm::BpfError::BadChecksum { .. }),
            ) => return Ok(failed(e.errno())),
            other => return Err(format!("test run: {other:?}")),
        }
    };
    Ok(Outcome {
        retval: r.retval,
        data_out: r.data_out,
        ctx_out: r.ctx_out,
        errno: None,
    })
}

fn run_kernel(c: &Case) -> Result<Outcome, String> {
    use bpfvm_testsupport::{self as host, ProgLoad, TestRun};
    let insns = insns(c);
    let load = ProgLoad {
        prog_type: c.prog_type,
        insns: &insns,
        log_level: 1,
        log_size: 1 << 16,
        ..ProgLoad::default()
    };
    let prog = host::prog_load(&load).map_err(|e| {
        format!(
            "kernel load: {}: {}",
            std::io::Error::from_raw_os_error(e.errno),
            e.log
        )
    })?;
    let fd = prog.fd.ok_or("kernel load gave no fd")?;
    let mut run = TestRun {
        data_in: c.packet.clone(),
        data_out_size: 1 << 16,
        ctx_in: c.ctx_in.clone().unwrap_or_default(),
        ctx_out_size: if c.ctx_in.is_some() { 256 } else { 0 },
        repeat: c.repeat,
        flags: c.flags,
    };
    match host::test_run(&fd, &mut run) {
        Ok(out) => Ok(Outcome {
            retval: out.retval,
            data_out: out.data_out,
            ctx_out: out.ctx_out,
            errno: None,
        }),
        Err(e) => Ok(Outcome {
            retval: 0,
            data_out: Vec::new(),
            ctx_out: Vec::new(),
            errno: Some(e.raw_os_error().unwrap_or(0)),
        }),
    }
}

/// The host kernel runs programs for this process (root with a BPF kernel).
fn kernel_available() -> bool {
    let c = case("probe", XDP, "mov %r0, 2\nexit".into(), ipv4());
    run_kernel(&c).is_ok()
}

// ---- golden file ----

fn golden_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file)
}

fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ *x as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A result as one golden line's fields: the retval and the packet (long
/// packets as their length and FNV-1a hash).
fn render(o: &Outcome) -> String {
    if let Some(e) = o.errno {
        return format!("test-run-errno {e}");
    }
    let ctx = if o.ctx_out.is_empty() {
        String::new()
    } else {
        format!(
            " ctx={}",
            o.ctx_out
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    };
    let data = if o.data_out.len() > 128 {
        format!("len{}:fnv{:016x}", o.data_out.len(), fnv64(&o.data_out))
    } else {
        o.data_out.iter().map(|b| format!("{b:02x}")).collect()
    };
    format!("{:#010x} {data}{ctx}", o.retval)
}

fn read_golden(file: &str) -> BTreeMap<String, String> {
    std::fs::read_to_string(golden_path(file))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs `cases` on the interpreter, the checked interpreter and the JIT
/// (runtimes prepared by `prepare`) and compares them with the golden file
/// `golden` and with `kernel`'s results (one per case, when the kernel ran).
fn compare(
    what: &str,
    cases: &[Case],
    golden: &str,
    kernel: Option<Vec<Result<Outcome, String>>>,
    prepare: impl Fn(&Runtime),
) {
    if kernel.is_none() {
        eprintln!("{what}: the host kernel does not run BPF programs for this process (not root?); comparing with the golden file only");
    }
    let bless = std::env::var_os("BPFVM_BLESS").is_some();
    let old = read_golden(golden);
    let interp = Runtime::with_cpus(1);
    interp.set_jit(false);
    let jit = Runtime::with_cpus(1);
    jit.set_jit(true);
    prepare(&interp);
    prepare(&jit);
    let mut fresh = BTreeMap::new();
    let mut failures = Vec::new();
    let mut agreed = 0;
    for (i, c) in cases.iter().enumerate() {
        let a = run_bpfvm(&interp, c, false);
        let b = run_bpfvm(&jit, c, false);
        match run_bpfvm(&interp, c, true) {
            Ok(o) if Ok(&o) == a.as_ref() => {}
            Ok(o) => failures.push(format!(
                "{}: checked interpreter {} != interpreter {:?}",
                c.name,
                render(&o),
                a.as_ref().map(render)
            )),
            Err(e) => failures.push(format!("{}: checked interpreter: {e}", c.name)),
        }
        let a = match a {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{}: interpreter: {e}", c.name));
                continue;
            }
        };
        match b {
            Ok(b) if b == a => {}
            Ok(b) => failures.push(format!(
                "{}: JIT {} != interpreter {}",
                c.name,
                render(&b),
                render(&a)
            )),
            Err(e) => failures.push(format!("{}: JIT: {e}", c.name)),
        }
        let mine = render(&a);
        let mut want = old.get(&c.name).cloned();
        match (&kernel, c.differs) {
            (Some(k), None) => match &k[i] {
                Ok(k) => {
                    let k = render(k);
                    if bless {
                        want = Some(k.clone());
                    } else if want.as_deref() != Some(k.as_str()) {
                        failures.push(format!(
                            "{}: kernel gives {k}, golden file says {want:?}",
                            c.name
                        ));
                    }
                    if k == mine {
                        agreed += 1;
                    }
                }
                Err(e) => failures.push(format!("{}: {e}", c.name)),
            },
            (_, Some(_)) if bless => want = Some(mine.clone()),
            _ => {}
        }
        match &want {
            Some(w) if *w == mine => {}
            Some(w) => failures.push(format!("{}: bpfvm gives {mine}, expected {w}", c.name)),
            None => failures.push(format!(
                "{}: not in the golden file (bless as root)",
                c.name
            )),
        }
        if let Some(w) = want {
            fresh.insert(c.name.clone(), w);
        }
    }
    if bless && kernel.is_some() {
        let mut text = String::from(
            "# name retval data_out: BPF_PROG_TEST_RUN on Linux 6.18 (bpfvm's own result for\n\
             # cases marked as differing in net_helpers.rs). Rewrite with BPFVM_BLESS=1 as root.\n",
        );
        for c in cases {
            if let Some(w) = fresh.get(&c.name) {
                text.push_str(&format!("{} {w}\n", c.name));
            }
        }
        std::fs::write(golden_path(golden), text).expect("write golden file");
    }
    eprintln!(
        "{what}: {} cases, {} equal to the kernel{}",
        cases.len(),
        agreed,
        if kernel.is_some() {
            ""
        } else {
            " (kernel not run)"
        }
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn net_helpers_match_the_kernel() {
    let cases = cases();
    let kernel = kernel_available().then(|| {
        cases
            .iter()
            .map(|c| {
                if c.differs.is_some() {
                    Err("not run".to_string())
                } else {
                    run_kernel(c)
                }
            })
            .collect()
    });
    compare("net_helpers", &cases, "net_helpers.golden", kernel, |_| {});
}

// ---- bpf_fib_lookup (69) ----

use bpfvm::nethelpers::fib::{Fib, FibDevice, FibNeighbor, FibRoute, RouteType};
use std::net::IpAddr;

/// One routing setup for both sides: the `ip` commands that make it in a
/// private network namespace for the kernel, and the same tables for bpfvm.
struct Net {
    script: String,
    routes: Vec<FibRoute>,
    neighbors: Vec<FibNeighbor>,
}

const A0_MAC: [u8; 6] = [2, 0, 0, 0, 0x0a, 0];
const B0_MAC: [u8; 6] = [2, 0, 0, 0, 0x0b, 0];

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// Interface indexes in the namespace: lo 1, then the veth pairs as the
/// kernel numbers them (found by name at run time).
struct Ifx {
    a0: u32,
    a1: u32,
    b0: u32,
}

fn net(ifx: &Ifx) -> Net {
    let mut script = String::from(
        "set -e
         ip link set lo up
         ip link add a0 address 02:00:00:00:0a:00 type veth peer name a1 address 02:00:00:00:0a:01
         ip link add b0 address 02:00:00:00:0b:00 mtu 1400 type veth peer name b1 address 02:00:00:00:0b:01 mtu 1400
         for d in a0 a1 b0 b1; do ip link set $d up; done
         ip addr add 10.1.0.1/24 dev a0
         ip addr add 10.2.0.1/24 dev b0
         ip -6 addr add fd01::1/64 dev a0 nodad
         ip -6 addr add fd02::1/64 dev b0 nodad
         echo 1 > /proc/sys/net/ipv4/conf/all/forwarding
         echo 0 > /proc/sys/net/ipv4/conf/a1/forwarding
         echo 1 > /proc/sys/net/ipv6/conf/all/forwarding
         echo 0 > /proc/sys/net/ipv6/conf/a1/forwarding
",
    );
    let mut routes = Vec::new();
    let mut route = |cmd: &str,
                     table,
                     dst: &str,
                     len,
                     kind,
                     gw: Option<&str>,
                     dev,
                     metric,
                     src: Option<&str>,
                     mtu| {
        script.push_str(cmd);
        script.push('\n');
        routes.push(FibRoute {
            table,
            dst: ip(dst),
            prefix_len: len,
            kind,
            gateway: gw.map(ip),
            ifindex: dev,
            metric,
            prefsrc: src.map(ip),
            mtu,
        });
    };
    use RouteType::*;
    let (a0, b0) = (ifx.a0, ifx.b0);
    route(
        "ip route add 10.9.0.0/16 via 10.1.0.254",
        254,
        "10.9.0.0",
        16,
        Unicast,
        Some("10.1.0.254"),
        a0,
        0,
        None,
        0,
    );
    route(
        "ip route add 10.8.0.0/16 via 10.2.0.254",
        254,
        "10.8.0.0",
        16,
        Unicast,
        Some("10.2.0.254"),
        b0,
        0,
        None,
        0,
    );
    // An MTU metric counts for forwarding only when locked.
    route(
        "ip route add 10.7.0.0/16 via 10.1.0.254 mtu 1300",
        254,
        "10.7.0.0",
        16,
        Unicast,
        Some("10.1.0.254"),
        a0,
        0,
        None,
        0,
    );
    route(
        "ip route add 10.6.0.0/16 via 10.1.0.254 mtu lock 1300",
        254,
        "10.6.0.0",
        16,
        Unicast,
        Some("10.1.0.254"),
        a0,
        0,
        None,
        1300,
    );
    route(
        "ip route add blackhole 10.66.0.0/16",
        254,
        "10.66.0.0",
        16,
        Blackhole,
        None,
        0,
        0,
        None,
        0,
    );
    route(
        "ip route add unreachable 10.67.0.0/16",
        254,
        "10.67.0.0",
        16,
        Unreachable,
        None,
        0,
        0,
        None,
        0,
    );
    route(
        "ip route add prohibit 10.68.0.0/16",
        254,
        "10.68.0.0",
        16,
        Prohibit,
        None,
        0,
        0,
        None,
        0,
    );
    route(
        "ip route add 10.9.5.0/24 via 10.2.0.254 metric 10",
        254,
        "10.9.5.0",
        24,
        Unicast,
        Some("10.2.0.254"),
        b0,
        10,
        None,
        0,
    );
    route(
        "ip route add 10.9.5.0/24 via 10.1.0.254 metric 5",
        254,
        "10.9.5.0",
        24,
        Unicast,
        Some("10.1.0.254"),
        a0,
        5,
        None,
        0,
    );
    route(
        "ip route add 10.50.0.0/16 via 10.1.0.254 table 100",
        100,
        "10.50.0.0",
        16,
        Unicast,
        Some("10.1.0.254"),
        a0,
        0,
        None,
        0,
    );
    route(
        "ip route add 10.60.0.0/16 via 10.2.0.254 src 10.2.0.1",
        254,
        "10.60.0.0",
        16,
        Unicast,
        Some("10.2.0.254"),
        b0,
        0,
        Some("10.2.0.1"),
        0,
    );
    route(
        "ip route add default via 10.2.0.253",
        254,
        "0.0.0.0",
        0,
        Unicast,
        Some("10.2.0.253"),
        b0,
        0,
        None,
        0,
    );
    route(
        "ip -6 route add fd09::/64 via fd01::fe metric 1024",
        254,
        "fd09::",
        64,
        Unicast,
        Some("fd01::fe"),
        a0,
        1024,
        None,
        0,
    );
    route(
        "ip -6 route add fd08::/64 via fd02::fe metric 1024",
        254,
        "fd08::",
        64,
        Unicast,
        Some("fd02::fe"),
        b0,
        1024,
        None,
        0,
    );
    route(
        "ip -6 route add blackhole fd66::/64 metric 1024",
        254,
        "fd66::",
        64,
        Blackhole,
        None,
        0,
        1024,
        None,
        0,
    );
    route(
        "ip -6 route add unreachable fd67::/64 metric 1024",
        254,
        "fd67::",
        64,
        Unreachable,
        None,
        0,
        1024,
        None,
        0,
    );
    route(
        "ip -6 route add prohibit fd68::/64 metric 1024",
        254,
        "fd68::",
        64,
        Prohibit,
        None,
        0,
        1024,
        None,
        0,
    );
    // The loopback's local routes (the kernel makes them for 127.0.0.1/8).
    routes.push(FibRoute {
        table: 255,
        dst: ip("127.0.0.0"),
        prefix_len: 8,
        kind: Local,
        gateway: None,
        ifindex: 1,
        metric: 0,
        prefsrc: None,
        mtu: 0,
    });
    let mut neighbors = Vec::new();
    for (addr, mac, dev, name) in [
        ("10.1.0.254", [2, 0xaa, 0, 0, 0, 1], a0, "a0"),
        ("10.2.0.253", [2, 0xaa, 0, 0, 0, 2], b0, "b0"),
        ("10.1.0.77", [2, 0xaa, 0, 0, 0, 3], a0, "a0"),
        ("fd01::fe", [2, 0xaa, 0, 0, 0, 4], a0, "a0"),
    ] {
        script.push_str(&format!(
            "ip neigh add {addr} lladdr {} dev {name} nud permanent\n",
            mac.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        ));
        neighbors.push(FibNeighbor {
            ifindex: dev,
            addr: ip(addr),
            mac,
        });
    }
    Net {
        script,
        routes,
        neighbors,
    }
}

fn fib_tables(ifx: &Ifx) -> Fib {
    let n = net(ifx);
    let dev = |ifindex, mac, mtu, fwd, addrs: Vec<(IpAddr, u8)>| FibDevice {
        ifindex,
        mac,
        mtu,
        forwarding: fwd,
        forwarding6: fwd,
        addrs,
    };
    let lo = dev(1, [0; 6], 65536, true, Vec::new());
    let a0 = dev(
        ifx.a0,
        A0_MAC,
        1500,
        true,
        vec![(ip("10.1.0.1"), 24), (ip("fd01::1"), 64)],
    );
    let a1 = dev(ifx.a1, [2, 0, 0, 0, 0x0a, 1], 1500, false, Vec::new());
    let b0 = dev(
        ifx.b0,
        B0_MAC,
        1400,
        true,
        vec![(ip("10.2.0.1"), 24), (ip("fd02::1"), 64)],
    );
    let mut f = Fib {
        devices: vec![lo, a0, a1, b0],
        routes: Vec::new(),
        neighbors: n.neighbors,
    }
    .with_device_routes();
    f.routes.extend(n.routes);
    f
}

/// `struct bpf_fib_lookup` as a program fills it in.
#[derive(Clone, Copy, Default)]
struct Params {
    family: u8,
    proto: u8,
    tot_len: u16,
    ifindex: u32,
    src: [u8; 16],
    dst: [u8; 16],
    tbid: u32,
}

fn v4(s: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    if let IpAddr::V4(a) = ip(s) {
        b[..4].copy_from_slice(&a.octets());
    }
    b
}

fn v6(s: &str) -> [u8; 16] {
    match ip(s) {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => [0; 16],
    }
}

impl Params {
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0] = self.family;
        b[1] = self.proto;
        b[2..4].copy_from_slice(&1234u16.to_be_bytes());
        b[4..6].copy_from_slice(&80u16.to_be_bytes());
        b[6..8].copy_from_slice(&self.tot_len.to_ne_bytes());
        b[8..12].copy_from_slice(&self.ifindex.to_ne_bytes());
        b[16..32].copy_from_slice(&self.src);
        b[32..48].copy_from_slice(&self.dst);
        b[48..52].copy_from_slice(&self.tbid.to_ne_bytes());
        // Recognisable MACs: the lookup overwrites them only with a neighbour.
        b[52..64].fill(0xee);
        b
    }
}

/// Fills the params on the stack, calls bpf_fib_lookup(ctx, &p, plen,
/// flags), copies the params into the packet at 0 and returns r0.
fn fib_prog(p: &Params, plen: u32, flags: u32, xdp: bool) -> String {
    let b = p.bytes();
    let mut s = String::from("mov %r6, %r1\n");
    for (i, c) in b.chunks(8).enumerate() {
        let v = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        s.push_str(&format!(
            "lddw %r1, {v:#x}\nstxdw [%r10{:+}], %r1\n",
            i as i64 * 8 - 64
        ));
    }
    s.push_str(&format!(
        "mov %r1, %r6
         mov %r2, %r10
         add %r2, -64
         mov %r3, {plen}
         mov %r4, {flags}
         call 69
         mov %r7, %r0
         mov %r1, %r6
         mov %r2, 0
         mov %r3, %r10
         add %r3, -64
         mov %r4, 64
         mov %r5, 0
         call {}
         mov %r0, %r7
         exit",
        if xdp { 190 } else { 9 }
    ));
    s
}

fn fib_cases(ifx: &Ifx) -> Vec<Case> {
    let pkt = |n: usize| {
        let mut p = eth(0x88b5);
        p.resize(n, 0x5a);
        p
    };
    let four = |dst: &str, ifindex: u32| Params {
        family: libc::AF_INET as u8,
        proto: 17,
        ifindex,
        src: v4("10.1.0.9"),
        dst: v4(dst),
        ..Default::default()
    };
    let six = |dst: &str, ifindex: u32| Params {
        family: libc::AF_INET6 as u8,
        proto: 17,
        ifindex,
        src: v6("fd01::9"),
        dst: v6(dst),
        ..Default::default()
    };
    let (a0, a1, b0) = (ifx.a0, ifx.a1, ifx.b0);
    const DIRECT: u32 = 1;
    const OUTPUT: u32 = 2;
    const SKIP_NEIGH: u32 = 4;
    const TBID: u32 = 8;
    const SRC: u32 = 16;
    const MARK: u32 = 32;
    let mut v = Vec::new();
    let mut x = |name: &str, p: Params, flags: u32| {
        v.push(case(
            &format!("xdp_{name}"),
            XDP,
            fib_prog(&p, 64, flags, true),
            pkt(100),
        ));
    };
    x("v4_via_gateway", four("10.9.1.1", a0), 0);
    x("v4_lowest_metric", four("10.9.5.3", a0), 0);
    x("v4_no_neigh", four("10.8.1.1", a0), 0);
    x("v4_skip_neigh", four("10.8.1.1", a0), SKIP_NEIGH);
    x("v4_blackhole", four("10.66.1.1", a0), 0);
    x("v4_unreachable", four("10.67.1.1", a0), 0);
    x("v4_prohibit", four("10.68.1.1", a0), 0);
    x("v4_local_address", four("10.1.0.1", a0), 0);
    x("v4_local_address_direct", four("10.1.0.1", a0), DIRECT);
    x("v4_loopback", four("127.0.0.5", a0), 0);
    x("v4_connected_neigh", four("10.1.0.77", a0), 0);
    x("v4_connected_no_neigh", four("10.1.0.78", a0), 0);
    x("v4_broadcast", four("10.1.0.255", a0), 0);
    x(
        "v4_route_mtu_ok",
        Params {
            tot_len: 1300,
            ..four("10.7.1.1", a0)
        },
        0,
    );
    x(
        "v4_route_mtu_exceeded",
        Params {
            tot_len: 1301,
            ..four("10.7.1.1", a0)
        },
        0,
    );
    x(
        "v4_locked_mtu_ok",
        Params {
            tot_len: 1300,
            ..four("10.6.1.1", a0)
        },
        0,
    );
    x(
        "v4_locked_mtu_exceeded",
        Params {
            tot_len: 1301,
            ..four("10.6.1.1", a0)
        },
        0,
    );
    x(
        "v4_table_local",
        Params {
            tbid: 255,
            ..four("10.1.0.1", a0)
        },
        DIRECT | TBID,
    );
    x(
        "v4_table_main_local_addr",
        Params {
            tbid: 254,
            ..four("10.1.0.1", a0)
        },
        DIRECT | TBID,
    );
    x("v4_default_route", four("8.8.8.8", a0), 0);
    x(
        "v4_dev_mtu_exceeded",
        Params {
            tot_len: 1450,
            ..four("8.8.8.8", a0)
        },
        0,
    );
    x(
        "v4_table_100",
        Params {
            tbid: 100,
            ..four("10.50.1.1", a0)
        },
        DIRECT | TBID,
    );
    x(
        "v4_table_missing",
        Params {
            tbid: 101,
            ..four("10.50.1.1", a0)
        },
        DIRECT | TBID,
    );
    x("v4_direct_main", four("10.50.1.1", a0), DIRECT);
    x(
        "v4_tbid_without_direct",
        Params {
            tbid: 100,
            ..four("10.50.1.1", a0)
        },
        TBID,
    );
    x("v4_output_other_dev", four("10.9.1.1", b0), OUTPUT);
    x("v4_output_same_dev", four("10.9.1.1", a0), OUTPUT);
    x("v4_forwarding_off", four("10.9.1.1", a1), 0);
    x("v4_forwarding_off_output", four("10.9.1.1", a1), OUTPUT);
    x("v4_no_device", four("10.9.1.1", 999), 0);
    x("v4_src", four("10.9.1.1", a0), SRC);
    x("v4_src_prefsrc", four("10.60.1.1", a0), SRC | SKIP_NEIGH);
    x("v4_mark_ignored", four("10.9.1.1", a0), MARK);
    x(
        "bad_family",
        Params {
            family: 3,
            ..four("10.9.1.1", a0)
        },
        0,
    );
    x("bad_flags", four("10.9.1.1", a0), 64);
    x("v6_via_gateway", six("fd09::1", a0), 0);
    x("v6_no_neigh", six("fd08::1", a0), 0);
    x("v6_skip_neigh", six("fd08::1", a0), SKIP_NEIGH);
    x("v6_blackhole", six("fd66::1", a0), 0);
    x("v6_unreachable", six("fd67::1", a0), 0);
    x("v6_prohibit", six("fd68::1", a0), 0);
    x("v6_link_local_dst", six("fe80::1", a0), 0);
    x("v6_local_address", six("fd01::1", a0), 0);
    x("v6_no_route", six("fd05::1", a0), 0);
    x("v6_forwarding_off", six("fd09::1", a1), 0);
    x("v6_src", six("fd09::1", a0), SRC);
    x(
        "v6_mtu_ok",
        Params {
            tot_len: 1500,
            ..six("fd09::1", a0)
        },
        0,
    );
    x(
        "v6_mtu_exceeded",
        Params {
            tot_len: 1501,
            ..six("fd09::1", a0)
        },
        0,
    );
    x("v6_no_device", six("fd09::1", 999), 0);
    v.push(case(
        "xdp_plen_short",
        XDP,
        fib_prog(&four("10.9.1.1", a0), 32, 0, true),
        pkt(100),
    ));
    // tc: the MTU is checked only with tot_len, else the packet against the device.
    let mut t = |name: &str, p: Params, flags: u32, n: usize| {
        v.push(case(
            &format!("tc_{name}"),
            TC,
            fib_prog(&p, 64, flags, false),
            pkt(n),
        ));
    };
    t("v4_via_gateway", four("10.9.1.1", a0), 0, 100);
    t("v4_dev_mtu_packet_fits", four("8.8.8.8", a0), 0, 1418);
    t("v4_dev_mtu_packet_too_big", four("8.8.8.8", a0), 0, 1419);
    t(
        "v4_tot_len_exceeded",
        Params {
            tot_len: 1450,
            ..four("8.8.8.8", a0)
        },
        0,
        100,
    );
    t("v4_no_neigh", four("10.8.1.1", a0), 0, 100);
    t("v6_via_gateway", six("fd09::1", a0), 0, 100);
    v
}

/// Runs `f` on a thread in a network namespace of its own, set up by
/// `script` (`sh -c`); the namespace and its devices go with the thread.
fn in_netns<T: Send + 'static>(
    script: impl FnOnce(&Ifx) -> String + Send + 'static,
    f: impl FnOnce(&Ifx) -> T + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error()));
        }
        // The veths' indexes come from the kernel: make them first, then ask.
        let make = "ip link add a0 address 02:00:00:00:0a:00 type veth peer name a1 address 02:00:00:00:0a:01
             ip link add b0 address 02:00:00:00:0b:00 mtu 1400 type veth peer name b1 address 02:00:00:00:0b:01 mtu 1400";
        let sh = |s: &str| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(s)
                .output()
                .map_err(|e| format!("sh: {e}"))
                .and_then(|o| {
                    if o.status.success() {
                        Ok(())
                    } else {
                        Err(format!("setup failed: {}", String::from_utf8_lossy(&o.stderr)))
                    }
                })
        };
        sh(make)?;
        let idx = |n: &str| {
            let c = std::ffi::CString::new(n).unwrap_or_default();
            // SAFETY: a NUL-terminated name.
            unsafe { libc::if_nametoindex(c.as_ptr()) }
        };
        let ifx = Ifx {
            a0: idx("a0"),
            a1: idx("a1"),
            b0: idx("b0"),
        };
        let full = script(&ifx);
        // The devices exist already: run the script without their creation.
        let rest: String = full
            .lines()
            .filter(|l| !l.trim_start().starts_with("ip link add"))
            .map(|l| format!("{l}\n"))
            .collect();
        sh(&rest)?;
        Ok(f(&ifx))
    })
    .join()
    .map_err(|_| "the netns thread panicked".to_string())?
}

#[test]
fn fib_lookup_matches_the_kernel() {
    let kernel = if kernel_available() {
        match in_netns(
            |ifx| net(ifx).script,
            |ifx| {
                let cases = fib_cases(ifx);
                let results: Vec<_> = cases.iter().map(run_kernel).collect();
                (ifx.a0, ifx.a1, ifx.b0, results)
            },
        ) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("fib_lookup: no network namespace for the kernel's side ({e})");
                None
            }
        }
    } else {
        None
    };
    // Without the kernel, the indexes a fresh namespace gives the veths.
    let ifx = match &kernel {
        Some((a0, a1, b0, _)) => Ifx {
            a0: *a0,
            a1: *a1,
            b0: *b0,
        },
        None => Ifx {
            a0: 3,
            a1: 2,
            b0: 5,
        },
    };
    let cases = fib_cases(&ifx);
    let fib = fib_tables(&ifx);
    compare(
        "fib_lookup",
        &cases,
        "net_fib.golden",
        kernel.map(|k| k.3),
        move |rt| rt.set_fib(fib.clone()),
    );
}
