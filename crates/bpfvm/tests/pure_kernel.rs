//! Pure helper semantics against values Linux 6.18 returned for the same inputs
//! (captured from XDP programs run with BPF_PROG_TEST_RUN; see
//! `data/pure/README.md`). They run without the kernel.

use bpfvm::helpers_pure::{
    csum_add, csum_diff, csum_from32to16, csum_partial, csum_sub, ipv4_fmt, ipv6_fmt, jiffies64_at,
    pid_tgid, strncmp, uid_gid, CONFIG_HZ, INITIAL_JIFFIES,
};

const CSUM_CASES: &str = include_str!("data/pure/csum_diff_cases.txt");
const STRNCMP_CASES: &str = include_str!("data/pure/strncmp_cases.txt");
const IDS_JIFFIES: &str = include_str!("data/pure/ids_jiffies.txt");

fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|k| u8::from_str_radix(&s[k..k + 2], 16).expect("hex"))
        .collect()
}

fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).expect("hex number"),
        None => s.parse().expect("number"),
    }
}

fn data_lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
}

#[test]
fn csum_diff_matches_the_kernel() {
    let mut n = 0;
    let mut odd_sizes = 0;
    for f in data_lines(CSUM_CASES) {
        let (from, to) = (unhex(f[0]), unhex(f[1]));
        let seed = num(f[2]) as u32;
        let want: u64 = f[3].parse().expect("ret");
        assert_eq!(
            csum_diff(&from, &to, seed),
            want,
            "from {} bytes, to {} bytes, seed {seed:#x}",
            from.len(),
            to.len()
        );
        odd_sizes += usize::from((from.len() | to.len()) & 3 != 0);
        n += 1;
    }
    assert!(n >= 120, "cases: {n}");
    // The captured cases cover sizes that are not multiples of 4, which 6.18 accepts.
    assert!(odd_sizes >= 10, "odd-size cases: {odd_sizes}");
}

#[test]
fn csum_diff_is_a_checksum_difference() {
    // Replacing 4 bytes of a buffer: folding old-sum + diff gives the new sum.
    let old = [
        0x45u8, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    let mut new = old;
    new[12..16].copy_from_slice(&[192, 168, 7, 9]);
    let d = csum_diff(&old[12..16], &new[12..16], 0) as u32;
    let via_diff = csum_from32to16(csum_add(csum_partial(&old, 0), d));
    assert_eq!(via_diff, csum_from32to16(csum_partial(&new, 0)));
    assert_eq!(csum_sub(csum_add(7, 5), 5), 7);
}

#[test]
fn strncmp_matches_the_kernel() {
    let mut n = 0;
    for f in data_lines(STRNCMP_CASES) {
        let s1 = unhex(f[0]);
        let sz: u32 = f[1].parse().expect("size");
        let mut s2 = unhex(f[2]);
        s2.push(0);
        let want: i64 = f[3].parse().expect("ret");
        assert_eq!(
            strncmp(&s1, sz, &s2),
            want,
            "s1 {:?} n {sz} s2 {:?}",
            s1,
            s2
        );
        n += 1;
    }
    assert!(n >= 40);
}

#[test]
fn ids_and_jiffies_match_the_kernel() {
    let mut seen = 0;
    for f in data_lines(IDS_JIFFIES) {
        match f[0] {
            "pid_tgid" => assert_eq!(pid_tgid(num(f[1]) as u32, num(f[2]) as u32), num(f[3])),
            "uid_gid" => assert_eq!(uid_gid(num(f[1]) as u32, num(f[2]) as u32), num(f[3])),
            "jiffies" => {
                let (ns, j) = (num(f[1]), num(f[2]));
                let ours = jiffies64_at(ns);
                // Same base and rate; the kernel's tick starts a little after its clock.
                assert!(ours >= j && ours - j < CONFIG_HZ, "ours {ours}, kernel {j}");
                assert!(j > INITIAL_JIFFIES);
            }
            other => panic!("unknown line {other}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 3);
}

#[test]
fn ip_forms_as_the_kernel_prints_them() {
    // From the trace_printk capture: %pI4, %pi4, %pI6, %pi6.
    assert_eq!(ipv4_fmt(&[192, 168, 1, 254], false), "192.168.1.254");
    assert_eq!(ipv4_fmt(&[192, 168, 1, 254], true), "192.168.001.254");
    let a6 = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29,
    ];
    assert_eq!(
        ipv6_fmt(&a6, true),
        "2001:0db8:0000:0000:0000:ff00:0042:8329"
    );
    assert_eq!(ipv6_fmt(&a6, false), "20010db8000000000000ff0000428329");
}
