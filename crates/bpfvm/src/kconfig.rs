//! `.kconfig` externs: the values libbpf writes into an object's `.kconfig`
//! map, here taken from the emulated kernel (Linux 6.18 on x86-64) and from
//! a kernel config the user can give (`CONFIG_*=...` lines, as in
//! `/proc/config.gz`).
//!
//! Rules (libbpf's, observed): `LINUX_KERNEL_VERSION` is
//! `KERNEL_VERSION(major, minor, min(patch, 255))`; `LINUX_HAS_BPF_COOKIE` and
//! `LINUX_HAS_SYSCALL_WRAPPER` are the kernel's features (both present on
//! 6.18 x86-64); any other `LINUX_*` extern must be `__weak` (zero); a
//! `CONFIG_*` value of `y`/`n`/`m` fills a bool (1/0, `m` refused), a
//! tristate (1/0/2) or a char (the letter); a number fills an integer or a
//! char if it fits; a quoted string fills a char array, truncated to leave
//! the NUL. A strong extern without a value is an error, a weak one zero.

use std::collections::BTreeMap;

use bpfvm_obj::KcfgType;

/// The kernel configuration `.kconfig` externs read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kconfig {
    /// `(major, minor, patch)` of the kernel release.
    pub release: (u32, u32, u32),
    /// `LINUX_HAS_BPF_COOKIE`: `bpf_get_attach_cookie` exists.
    pub has_bpf_cookie: bool,
    /// `LINUX_HAS_SYSCALL_WRAPPER`: syscalls are entered through
    /// `__x64_sys_*` wrappers taking a `struct pt_regs *`.
    pub has_syscall_wrapper: bool,
    /// `CONFIG_*` name -> value as written in the config (`y`, `250`,
    /// `"(none)"`).
    pub config: BTreeMap<String, String>,
}

/// The emulated kernel's release.
pub const KERNEL_RELEASE: (u32, u32, u32) = (6, 18, 0);

impl Default for Kconfig {
    /// The emulated kernel: Linux 6.18.0 on x86-64, with the options bpfvm
    /// itself behaves by (`CONFIG_HZ` is the tick `bpf_jiffies64` counts).
    fn default() -> Self {
        let hz = crate::helpers_pure::CONFIG_HZ.to_string();
        let config = [
            ("CONFIG_64BIT", "y"),
            ("CONFIG_X86_64", "y"),
            ("CONFIG_SMP", "y"),
            ("CONFIG_NR_CPUS", "8192"),
            ("CONFIG_HZ", hz.as_str()),
            ("CONFIG_NET", "y"),
            ("CONFIG_BPF", "y"),
            ("CONFIG_BPF_SYSCALL", "y"),
            ("CONFIG_BPF_JIT", "y"),
            ("CONFIG_XDP_SOCKETS", "y"),
            ("CONFIG_DEFAULT_HOSTNAME", "\"(none)\""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Kconfig {
            release: KERNEL_RELEASE,
            has_bpf_cookie: true,
            has_syscall_wrapper: true,
            config,
        }
    }
}

impl Kconfig {
    /// The emulated kernel with its `CONFIG_*` values replaced by those of a
    /// kernel config file's text (`CONFIG_X=value` lines; comments and other
    /// lines are skipped, as libbpf skips them).
    pub fn with_config_text(text: &str) -> Kconfig {
        let mut k = Kconfig {
            config: BTreeMap::new(),
            ..Kconfig::default()
        };
        for line in text.lines() {
            let line = line.trim();
            if !line.starts_with("CONFIG_") {
                continue;
            }
            if let Some((name, value)) = line.split_once('=') {
                k.config.insert(name.to_string(), value.to_string());
            }
        }
        k
    }

    /// `LINUX_KERNEL_VERSION`.
    pub fn kernel_version(&self) -> u32 {
        let (a, b, c) = self.release;
        (a << 16) + (b.min(255) << 8) + c.min(255)
    }

    /// Writes the value of extern `name` (of C type `ty`, `size` bytes) into
    /// `out`. `Ok(false)`: the kernel has no value for it (zero stays).
    pub fn value(&self, name: &str, ty: KcfgType, out: &mut [u8]) -> Result<bool, String> {
        if let Some(rest) = name.strip_prefix("LINUX_") {
            let v = match rest {
                "KERNEL_VERSION" => u64::from(self.kernel_version()),
                "HAS_BPF_COOKIE" => u64::from(self.has_bpf_cookie),
                "HAS_SYSCALL_WRAPPER" => u64::from(self.has_syscall_wrapper),
                _ => return Ok(false),
            };
            set_num(ty, v, out)?;
            return Ok(true);
        }
        let Some(raw) = self.config.get(name) else {
            return Ok(false);
        };
        let raw = raw.trim();
        match raw {
            "y" | "n" | "m" => set_tri(ty, raw.as_bytes()[0], out)?,
            _ if raw.starts_with('"') => {
                let s = raw
                    .strip_prefix('"')
                    .and_then(|r| r.strip_suffix('"'))
                    .ok_or_else(|| format!("invalid string config '{raw}'"))?;
                set_str(ty, s, out)?
            }
            _ => {
                let v = parse_num(raw).ok_or_else(|| format!("invalid value '{raw}'"))?;
                set_num(ty, v, out)?
            }
        }
        Ok(true)
    }

    /// Whether `name` is a `.kconfig` extern libbpf knows how to fill at all
    /// (`CONFIG_*` and the `LINUX_*` it computes).
    pub fn recognized(name: &str) -> bool {
        name.starts_with("CONFIG_")
            || matches!(
                name,
                "LINUX_KERNEL_VERSION" | "LINUX_HAS_BPF_COOKIE" | "LINUX_HAS_SYSCALL_WRAPPER"
            )
    }
}

/// strtoull(..., 0): decimal, `0x` hex or `0` octal; `-N` wraps.
fn parse_num(s: &str) -> Option<u64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse().ok()?
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

fn type_name(ty: KcfgType) -> &'static str {
    match ty {
        KcfgType::Bool => "bool",
        KcfgType::Tristate => "tristate",
        KcfgType::Char => "char",
        KcfgType::Int { .. } => "int",
        KcfgType::CharArray { .. } => "char array",
    }
}

fn set_tri(ty: KcfgType, c: u8, out: &mut [u8]) -> Result<(), String> {
    let v = match (ty, c) {
        (KcfgType::Bool, b'm') => return Err("value 'm' is not valid for a bool".into()),
        (KcfgType::Bool | KcfgType::Tristate, b'y') => 1,
        (KcfgType::Bool | KcfgType::Tristate, b'n') => 0,
        (KcfgType::Tristate, b'm') => 2,
        (KcfgType::Char, c) => c,
        _ => {
            return Err(format!(
                "value '{}' is not valid for a {}",
                c as char,
                type_name(ty)
            ))
        }
    };
    out.fill(0);
    if let Some(b) = out.first_mut() {
        *b = v;
    }
    Ok(())
}

fn set_str(ty: KcfgType, s: &str, out: &mut [u8]) -> Result<(), String> {
    let KcfgType::CharArray { .. } = ty else {
        return Err(format!("a string is not valid for a {}", type_name(ty)));
    };
    out.fill(0);
    let n = s.len().min(out.len().saturating_sub(1));
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    Ok(())
}

fn set_num(ty: KcfgType, v: u64, out: &mut [u8]) -> Result<(), String> {
    let v = match ty {
        KcfgType::Bool => u64::from(v != 0),
        KcfgType::Int { .. } | KcfgType::Char | KcfgType::Tristate => v,
        KcfgType::CharArray { .. } => {
            return Err("a number is not valid for a char array".into());
        }
    };
    if out.len() < 8 && v >> (out.len() * 8) != 0 {
        return Err(format!("value {v:#x} does not fit in {} bytes", out.len()));
    }
    let b = v.to_le_bytes();
    let n = out.len().min(8);
    out[..n].copy_from_slice(&b[..n]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_libbpf_writes_them() {
        let k = Kconfig::default();
        let mut b = [0u8; 4];
        let int4 = KcfgType::Int {
            size: 4,
            signed: true,
        };
        assert!(k.value("LINUX_KERNEL_VERSION", int4, &mut b).unwrap());
        assert_eq!(u32::from_le_bytes(b), 0x061200);
        assert!(k.value("CONFIG_HZ", int4, &mut b).unwrap());
        assert_eq!(u32::from_le_bytes(b), 250);
        assert!(k
            .value("CONFIG_BPF_SYSCALL", KcfgType::Tristate, &mut b)
            .unwrap());
        assert_eq!(u32::from_le_bytes(b), 1);
        let mut one = [9u8; 1];
        assert!(k
            .value(
                "CONFIG_DEFAULT_HOSTNAME",
                KcfgType::CharArray { len: 1 },
                &mut one
            )
            .unwrap());
        assert_eq!(one, [0]);
        let mut s = [0u8; 8];
        k.value(
            "CONFIG_DEFAULT_HOSTNAME",
            KcfgType::CharArray { len: 8 },
            &mut s,
        )
        .unwrap();
        assert_eq!(&s, b"(none)\0\0");
        assert!(!k.value("CONFIG_NOPE", int4, &mut b).unwrap());
        assert!(!k.value("LINUX_NOPE", int4, &mut b).unwrap());
        let k = Kconfig::with_config_text("# CONFIG_A is not set\nCONFIG_B=m\nCONFIG_C=0x10\n");
        assert!(!k.value("CONFIG_A", KcfgType::Bool, &mut one).unwrap());
        assert!(k.value("CONFIG_B", KcfgType::Bool, &mut one).is_err());
        assert!(k.value("CONFIG_B", KcfgType::Tristate, &mut b).unwrap());
        assert_eq!(b[0], 2);
        assert!(k.value("CONFIG_C", KcfgType::Char, &mut one).unwrap());
        assert_eq!(one, [16]);
        let big = Kconfig::with_config_text("CONFIG_C=256\n");
        assert!(big.value("CONFIG_C", KcfgType::Char, &mut one).is_err());
    }
}
