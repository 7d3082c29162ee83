//! `struct bpf_cpumask` objects and the cpumask kfuncs (`bpf_cpumask_*`).
//!
//! A mask is allocated by `bpf_cpumask_create` and lives until its last
//! reference is released; references move into maps with `bpf_kptr_xchg`
//! and out again, so a mask outlives the run that made it. Each lives in a
//! process-wide table keyed by the address the program holds: every kfunc
//! looks its pointer argument up there before touching it, so a pointer the
//! verifier could not vouch for at run time (a kptr field user space wrote
//! through a map update, say) is an error, never a wild access.
//!
//! The layout is the kernel's (`cpumask_t cpumask; refcount_t usage;`), with
//! `NR_CPUS` = 8192 bits as Debian builds it, so field reads of a program
//! compiled against vmlinux.h see the bits where it expects them. The CPUs
//! are the runtime's (`nr_cpu_ids`): masks hold bits for CPUs 0..ncpus.

use crate::env::RunEnv;
use bpfvm_vm::{HelperCtx, HelperError, HelperOutcome};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

type HResult = Result<HelperOutcome, HelperError>;

const WORDS: usize = 8192 / 64;

/// `struct bpf_cpumask`
#[repr(C)]
struct BpfCpumask {
    bits: [u64; WORDS],
    usage: u32,
}

/// Live masks by address. Boxes do not move, so the address stays valid
/// while the entry is here.
fn masks() -> &'static Mutex<HashMap<u64, Box<BpfCpumask>>> {
    static M: OnceLock<Mutex<HashMap<u64, Box<BpfCpumask>>>> = OnceLock::new();
    M.get_or_init(|| Mutex::new(HashMap::new()))
}

fn ret(v: u64) -> HResult {
    Ok(HelperOutcome::Return(v))
}

fn nr_cpu_ids(c: &HelperCtx<'_, '_>) -> u32 {
    c.env_ref::<RunEnv>()
        .map_or(1, |e| e.rt.ncpus().clamp(1, WORDS * 64) as u32)
}

fn not_a_mask(addr: u64) -> HelperError {
    HelperError::InvalidArgument {
        reason: format!("{addr:#x} is not a cpumask bpfvm allocated"),
    }
}

/// Runs `f` on the masks behind `addrs` (read) and `dst` (written).
fn with<R>(
    dst: Option<u64>,
    srcs: &[u64],
    f: impl FnOnce(Option<&mut [u64; WORDS]>, &[[u64; WORDS]]) -> R,
) -> Result<R, HelperError> {
    let mut t = masks().lock().unwrap_or_else(|e| e.into_inner());
    let mut copies = Vec::with_capacity(srcs.len());
    for a in srcs {
        copies.push(t.get(a).ok_or_else(|| not_a_mask(*a))?.bits);
    }
    let d = match dst {
        Some(a) => Some(&mut t.get_mut(&a).ok_or_else(|| not_a_mask(a))?.bits),
        None => None,
    };
    Ok(f(d, &copies))
}

fn bit(m: &[u64; WORDS], cpu: u32) -> bool {
    m[(cpu / 64) as usize] >> (cpu % 64) & 1 == 1
}

fn first_set(m: &[u64; WORDS], n: u32, want: bool) -> u32 {
    (0..n).find(|&c| bit(m, c) == want).unwrap_or(n)
}

/// A CPU of the mask picked at random (the kernel spreads picks across
/// calls), or `n` when the mask has none.
fn any(m: &[u64; WORDS], n: u32) -> u32 {
    let set: Vec<u32> = (0..n).filter(|&c| bit(m, c)).collect();
    if set.is_empty() {
        return n;
    }
    set[super::prandom() as usize % set.len()]
}

pub(crate) fn create(_: &mut HelperCtx<'_, '_>, _: [u64; 5]) -> HResult {
    let m = Box::new(BpfCpumask {
        bits: [0; WORDS],
        usage: 1,
    });
    let addr = &*m as *const BpfCpumask as u64;
    masks()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(addr, m);
    ret(addr)
}

pub(crate) fn acquire(_: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let mut t = masks().lock().unwrap_or_else(|e| e.into_inner());
    let m = t.get_mut(&a[0]).ok_or_else(|| not_a_mask(a[0]))?;
    m.usage = m.usage.saturating_add(1);
    ret(a[0])
}

/// Drops one reference to the mask at `addr` (a map update or delete
/// overwrote the kptr field holding it, as the kernel's
/// `bpf_obj_free_fields` runs its destructor). An address that is no mask
/// (user space wrote the field) is left alone.
pub(crate) fn drop_ref(addr: u64) {
    let mut t = masks().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = t.get_mut(&addr) {
        m.usage = m.usage.saturating_sub(1);
        if m.usage == 0 {
            t.remove(&addr);
        }
    }
}

/// How many masks are alive (tests count leaks with it).
#[doc(hidden)]
pub fn live_masks() -> usize {
    masks().lock().unwrap_or_else(|e| e.into_inner()).len()
}

pub(crate) fn release(_: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let mut t = masks().lock().unwrap_or_else(|e| e.into_inner());
    let m = t.get_mut(&a[0]).ok_or_else(|| not_a_mask(a[0]))?;
    m.usage -= 1;
    if m.usage == 0 {
        t.remove(&a[0]);
    }
    ret(0)
}

/// `bpf_cpumask_{set,clear}_cpu` and their `test_and_` forms: whether the
/// bit was set. CPUs past `nr_cpu_ids` are ignored, as `cpu_valid` does.
fn set_bit(c: &HelperCtx<'_, '_>, a: [u64; 5], set: bool) -> Result<bool, HelperError> {
    let (cpu, n) = (a[0] as u32, nr_cpu_ids(c));
    with(Some(a[1]), &[], |d, _| {
        let Some(d) = d else { return false };
        if cpu >= n {
            return false;
        }
        let was = bit(d, cpu);
        let w = &mut d[(cpu / 64) as usize];
        if set {
            *w |= 1 << (cpu % 64);
        } else {
            *w &= !(1 << (cpu % 64));
        }
        was
    })
}

/// `dst = f(src1, src2)` word by word; whether `dst` has any bit set.
fn combine(a: [u64; 5], f: impl Fn(u64, u64) -> u64) -> Result<bool, HelperError> {
    with(Some(a[0]), &[a[1], a[2]], |d, s| {
        let Some(d) = d else { return false };
        for i in 0..WORDS {
            d[i] = f(s[0][i], s[1][i]);
        }
        d.iter().any(|w| *w != 0)
    })
}

/// The cpumask kfuncs, by name.
pub(crate) fn op(name: &str) -> Option<fn(&mut HelperCtx<'_, '_>, [u64; 5]) -> HResult> {
    Some(match name {
        "bpf_cpumask_create" => create,
        "bpf_cpumask_acquire" => acquire,
        "bpf_cpumask_release" => release,
        "bpf_cpumask_first" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0]], |_, s| first_set(&s[0], n, true))?.into())
        },
        "bpf_cpumask_first_zero" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0]], |_, s| first_set(&s[0], n, false))?.into())
        },
        "bpf_cpumask_first_and" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0], a[1]], |_, s| {
                (0..n)
                    .find(|&b| bit(&s[0], b) && bit(&s[1], b))
                    .unwrap_or(n)
            })?
            .into())
        },
        "bpf_cpumask_set_cpu" => |c, a| {
            set_bit(c, a, true)?;
            ret(0)
        },
        "bpf_cpumask_clear_cpu" => |c, a| {
            set_bit(c, a, false)?;
            ret(0)
        },
        "bpf_cpumask_test_cpu" => |c, a| {
            let (cpu, n) = (a[0] as u32, nr_cpu_ids(c));
            ret(with(None, &[a[1]], |_, s| cpu < n && bit(&s[0], cpu))?.into())
        },
        "bpf_cpumask_test_and_set_cpu" => |c, a| ret(set_bit(c, a, true)?.into()),
        "bpf_cpumask_test_and_clear_cpu" => |c, a| ret(set_bit(c, a, false)?.into()),
        "bpf_cpumask_setall" => |c, a| {
            let n = nr_cpu_ids(c);
            with(Some(a[0]), &[], |d, _| {
                if let Some(d) = d {
                    for cpu in 0..n {
                        d[(cpu / 64) as usize] |= 1 << (cpu % 64);
                    }
                }
            })?;
            ret(0)
        },
        "bpf_cpumask_clear" => |_, a| {
            with(Some(a[0]), &[], |d, _| {
                if let Some(d) = d {
                    *d = [0; WORDS];
                }
            })?;
            ret(0)
        },
        "bpf_cpumask_and" => |_, a| ret(combine(a, |x, y| x & y)?.into()),
        "bpf_cpumask_or" => |_, a| {
            combine(a, |x, y| x | y)?;
            ret(0)
        },
        "bpf_cpumask_xor" => |_, a| {
            combine(a, |x, y| x ^ y)?;
            ret(0)
        },
        "bpf_cpumask_equal" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0], a[1]], |_, s| {
                (0..n).all(|b| bit(&s[0], b) == bit(&s[1], b))
            })?
            .into())
        },
        "bpf_cpumask_intersects" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0], a[1]], |_, s| {
                (0..n).any(|b| bit(&s[0], b) && bit(&s[1], b))
            })?
            .into())
        },
        "bpf_cpumask_subset" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0], a[1]], |_, s| {
                (0..n).all(|b| !bit(&s[0], b) || bit(&s[1], b))
            })?
            .into())
        },
        "bpf_cpumask_empty" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0]], |_, s| (0..n).all(|b| !bit(&s[0], b)))?.into())
        },
        "bpf_cpumask_full" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0]], |_, s| (0..n).all(|b| bit(&s[0], b)))?.into())
        },
        "bpf_cpumask_copy" => |_, a| {
            with(Some(a[0]), &[a[1]], |d, s| {
                if let Some(d) = d {
                    *d = s[0];
                }
            })?;
            ret(0)
        },
        "bpf_cpumask_any_distribute" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0]], |_, s| any(&s[0], n))?.into())
        },
        "bpf_cpumask_any_and_distribute" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0], a[1]], |_, s| {
                let mut both = [0u64; WORDS];
                for i in 0..WORDS {
                    both[i] = s[0][i] & s[1][i];
                }
                any(&both, n)
            })?
            .into())
        },
        "bpf_cpumask_weight" => |c, a| {
            let n = nr_cpu_ids(c);
            ret(with(None, &[a[0]], |_, s| {
                (0..n).filter(|&b| bit(&s[0], b)).count() as u32
            })?
            .into())
        },
        _ => return None,
    })
}
