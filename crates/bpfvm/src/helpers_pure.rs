//! Helper semantics that are pure functions of their inputs: checksums, string
//! comparison, the packing of ids, jiffies, and the IP address forms `%pI4`/`%pI6`
//! print. The runtime's helper table reads the arguments out of program memory and
//! calls these; they never touch memory themselves.
//!
//! Each behaviour was checked against Linux 6.18 on x86-64 (cases in
//! `tests/data/pure/`): notably `bpf_csum_diff` there takes any sizes (not only
//! multiples of 4), has no size limit, never fails, and returns the sum folded to
//! 16 bits; `bpf_strncmp` returns -1, 0 or 1.

/// `CONFIG_HZ` of the reference kernel (the host's `/proc/config.gz`: `CONFIG_HZ=250`).
pub const CONFIG_HZ: u64 = 250;
/// Nanoseconds per jiffy (`TICK_NSEC`), 4 ms at 250 Hz.
pub const TICK_NSEC: u64 = (1_000_000_000 + CONFIG_HZ / 2) / CONFIG_HZ;
/// The value jiffies starts from at boot, chosen by the kernel so that the 32-bit
/// counter wraps five minutes after boot: `(u32)(-300 * HZ)`.
pub const INITIAL_JIFFIES: u64 = (-300i64 * CONFIG_HZ as i64) as u32 as u64;

/// `bpf_jiffies64()` for a clock that has run `ns_since_boot` nanoseconds.
///
/// On the host, jiffies trail `bpf_ktime_get_ns()` by a fraction of a second (the
/// tick starts after the clock), so a live kernel's value is this minus a small,
/// boot-dependent number of ticks (61 ticks on the machine measured).
#[doc(alias = "bpf_jiffies64")]
pub fn jiffies64_at(ns_since_boot: u64) -> u64 {
    INITIAL_JIFFIES + ns_since_boot / TICK_NSEC
}

/// `bpf_get_current_pid_tgid()`: the thread group id (what userspace calls the
/// pid) in the upper half, the thread id in the lower.
#[doc(alias = "bpf_get_current_pid_tgid")]
pub fn pid_tgid(tgid: u32, pid: u32) -> u64 {
    (u64::from(tgid) << 32) | u64::from(pid)
}

/// `bpf_get_current_uid_gid()`: gid in the upper half, uid in the lower.
#[doc(alias = "bpf_get_current_uid_gid")]
pub fn uid_gid(uid: u32, gid: u32) -> u64 {
    (u64::from(gid) << 32) | u64::from(uid)
}

/// One's complement sum of `buf` as little-endian 32-bit words (a short tail is
/// zero-padded), added to `sum`: x86-64's `csum_partial`. The result is 0 only when
/// `sum` and every byte are 0.
pub fn csum_partial(buf: &[u8], sum: u32) -> u32 {
    let mut acc = u64::from(sum);
    let mut chunks = buf.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        // Fold early so that any length fits the accumulator.
        if acc >> 63 != 0 {
            acc = (acc & 0xffff_ffff) + (acc >> 32);
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 4];
        w[..rest.len()].copy_from_slice(rest);
        acc += u64::from(u32::from_le_bytes(w));
    }
    while acc >> 32 != 0 {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// 32-bit one's complement addition (`csum_add`).
pub fn csum_add(a: u32, b: u32) -> u32 {
    let (r, carry) = a.overflowing_add(b);
    r.wrapping_add(u32::from(carry))
}

/// 32-bit one's complement subtraction (`csum_sub`).
pub fn csum_sub(a: u32, b: u32) -> u32 {
    csum_add(a, !b)
}

/// Folds a 32-bit sum to 16 bits with end-around carry (`csum_from32to16`); not
/// complemented.
pub fn csum_from32to16(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// `bpf_csum_diff(from, from_size, to, to_size, seed)` as Linux 6.18 computes it:
/// the checksum difference of replacing `from` by `to`, on top of `seed`, folded to
/// 16 bits. Empty `from` pushes `to` onto `seed`; empty `to` pulls `from` off it.
#[doc(alias = "bpf_csum_diff")]
pub fn csum_diff(from: &[u8], to: &[u8], seed: u32) -> u64 {
    let r = match (from.is_empty(), to.is_empty()) {
        (false, false) => csum_sub(csum_partial(to, seed), csum_partial(from, 0)),
        (true, false) => csum_partial(to, seed),
        (false, true) => !csum_partial(from, !seed),
        (true, true) => seed,
    };
    u64::from(csum_from32to16(r))
}

/// `bpf_strncmp(s1, s1_sz, s2)`: the kernel's `strncmp(s1, s2, s1_sz)` — bytes
/// compared unsigned, stopping at a difference, at a NUL in both, or after `s1_sz`
/// bytes — returning -1, 0 or 1 (not the byte difference). Bytes past the end of
/// either slice read as NUL.
#[doc(alias = "bpf_strncmp")]
pub fn strncmp(s1: &[u8], s1_sz: u32, s2: &[u8]) -> i64 {
    for k in 0..s1_sz as usize {
        let a = s1.get(k).copied().unwrap_or(0);
        let b = s2.get(k).copied().unwrap_or(0);
        if a != b {
            return if a < b { -1 } else { 1 };
        }
        if a == 0 {
            break;
        }
    }
    0
}

/// `bpf_strtol` / `bpf_strtoul` (`signed`): parses the start of `buf` in base
/// `flags & 0x1f` (0: by prefix, `0x` hexadecimal, `0` octal, else decimal;
/// or 8, 10, 16) after leading white space and a `-`, reading at most 63
/// characters. Returns the characters consumed and the value, or a negative
/// errno: `-EINVAL` (bad flags or base, nothing to parse, a negative number
/// for strtoul) or `-ERANGE` (overflow).
#[doc(alias = "bpf_strtol")]
#[doc(alias = "bpf_strtoul")]
pub fn strtox(buf: &[u8], flags: u64, signed: bool) -> Result<(i64, u64), i64> {
    const EINVAL: i64 = 22;
    const ERANGE: i64 = 34;
    let mut base = (flags & 0x1f) as u32;
    if buf.is_empty() || !matches!(base, 0 | 8 | 10 | 16) || flags & !0x1f != 0 {
        return Err(-EINVAL);
    }
    // The kernel's isspace: \t \n \v \f \r, space, and Latin-1 NBSP.
    let space = |c: u8| matches!(c, b' ' | 9..=13 | 0xa0);
    let mut i = buf.iter().take_while(|c| space(**c)).count();
    let negative = buf.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    if i == buf.len() {
        return Err(-EINVAL);
    }
    let consumed_before = i;
    // The rest is copied into a 64-byte string: at most 63 characters, and a
    // NUL ends it.
    let rest = &buf[i..buf.len().min(i + 63)];
    let rest = &rest[..rest.iter().position(|c| *c == 0).unwrap_or(rest.len())];
    let at = |k: usize| rest.get(k).copied().unwrap_or(0);
    let mut k = 0;
    if base == 0 {
        base = if at(0) == b'0' {
            if at(1).eq_ignore_ascii_case(&b'x') && at(2).is_ascii_hexdigit() {
                16
            } else {
                8
            }
        } else {
            10
        };
    }
    if base == 16 && at(0) == b'0' && at(1).eq_ignore_ascii_case(&b'x') {
        k = 2;
    }
    let start = k;
    let mut value: u64 = 0;
    let mut overflow = false;
    while let Some(d) = (at(k) as char).to_digit(16).filter(|d| *d < base) {
        if k >= rest.len() {
            break;
        }
        match value
            .checked_mul(base as u64)
            .and_then(|v| v.checked_add(d as u64))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
        k += 1;
    }
    if overflow {
        return Err(-ERANGE);
    }
    if k == start {
        return Err(-EINVAL);
    }
    let consumed = (consumed_before + k) as i64;
    if !signed {
        if negative {
            return Err(-EINVAL);
        }
        return Ok((consumed, value));
    }
    let v = if negative {
        if value > 1 << 63 {
            return Err(-ERANGE);
        }
        (value as i64).wrapping_neg()
    } else {
        if value > i64::MAX as u64 {
            return Err(-ERANGE);
        }
        value as i64
    };
    Ok((consumed, v as u64))
}

/// An IPv4 address as `%pI4` prints it (`192.168.1.254`), or as `%pi4`
/// (`192.168.001.254`, every byte in three digits) when `leading_zeros`.
pub fn ipv4_fmt(addr: &[u8; 4], leading_zeros: bool) -> String {
    let parts: Vec<String> = addr
        .iter()
        .map(|b| {
            if leading_zeros {
                format!("{b:03}")
            } else {
                b.to_string()
            }
        })
        .collect();
    parts.join(".")
}

/// An IPv6 address as `%pI6` prints it — all eight groups of four lowercase hex
/// digits, colon separated, never compressed — or as `%pi6` (the 32 digits with no
/// colons) when `colons` is false. Through the BPF helpers `%pI6c` prints the same
/// full form: the kernel drops the `c`.
pub fn ipv6_fmt(addr: &[u8; 16], colons: bool) -> String {
    let groups: Vec<String> = addr
        .chunks_exact(2)
        .map(|g| format!("{:02x}{:02x}", g[0], g[1]))
        .collect();
    groups.join(if colons { ":" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_jiffies_at_250_hz() {
        assert_eq!(INITIAL_JIFFIES, 4_294_892_296);
        assert_eq!(TICK_NSEC, 4_000_000);
        assert_eq!(jiffies64_at(1_000_000_000), INITIAL_JIFFIES + 250);
    }

    #[test]
    fn csum_partial_zero_only_for_zero_input() {
        assert_eq!(csum_partial(&[0; 12], 0), 0);
        assert_eq!(csum_partial(&[0xff; 8], 0), 0xffff_ffff);
        assert_eq!(csum_partial(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 0), 1);
    }

    #[test]
    fn strtox_reads_like_the_kernel() {
        assert_eq!(strtox(b"  -42x", 0, true), Ok((5, (-42i64) as u64)));
        assert_eq!(strtox(b"0x1f", 0, true), Ok((4, 31)));
        assert_eq!(strtox(b"0x1f", 16, false), Ok((4, 31)));
        assert_eq!(strtox(b"017", 0, false), Ok((3, 15)));
        assert_eq!(strtox(b"0x", 0, false), Ok((1, 0)));
        assert_eq!(strtox(b"-1", 0, false), Err(-22));
        assert_eq!(strtox(b"   ", 10, true), Err(-22));
        assert_eq!(strtox(b"12", 7, true), Err(-22));
        assert_eq!(strtox(b"12", 10 | 0x20, true), Err(-22));
        assert_eq!(strtox(b"18446744073709551616", 10, false), Err(-34));
        assert_eq!(strtox(b"9223372036854775808", 10, true), Err(-34));
        assert_eq!(
            strtox(b"-9223372036854775808", 10, true),
            Ok((20, i64::MIN as u64))
        );
        assert_eq!(strtox(b"12\x0034", 10, true), Ok((2, 12)));
    }

    #[test]
    fn long_buffers_do_not_overflow() {
        let buf = vec![0xffu8; 1 << 20];
        assert_eq!(csum_partial(&buf, 0xffff_ffff), 0xffff_ffff);
    }
}
