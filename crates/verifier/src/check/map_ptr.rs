//! Maps as the program sees them beyond keys and values: loads and stores
//! through a map pointer (`check_ptr_to_map_access`), which program types may
//! use maps holding a spin lock or a timer (`check_map_prog_compatibility`),
//! the value fields loads and stores must not touch, and `bpf_spin_lock` /
//! `bpf_spin_unlock` (`process_spin_lock`).
//!
//! The kernel lets privileged programs read a map's `struct bpf_map` (as the
//! map type's own struct, `struct bpf_array`, `struct bpf_htab`, ...) through
//! its BTF. bpfvm does the same through the target kernel's types
//! ([`VerifierOpts::kernel_types`]); the runtime lays a stand-in of that
//! struct out behind each map pointer. Without the kernel's types such reads
//! are refused with bpfvm's own message.

use super::*;

/// The struct the kernel's map type is (`map_btf_id`), as the log names it.
pub fn map_struct(map_type: u32) -> &'static str {
    match map_type {
        // array, prog_array, perf_event_array, percpu_array, cgroup_array,
        // array_of_maps
        2 | 3 | 4 | 6 | 8 | 12 => "bpf_array",
        // hash, percpu_hash, lru_hash, lru_percpu_hash, hash_of_maps
        1 | 5 | 9 | 10 | 13 => "bpf_htab",
        7 => "bpf_stack_map",
        11 => "lpm_trie",
        14 | 25 => "bpf_dtab",
        16 => "bpf_cpu_map",
        22 | 23 => "bpf_queue_stack",
        27 => "bpf_ringbuf_map",
        30 => "bpf_bloom_filter",
        _ => "bpf_map",
    }
}

impl Verifier<'_> {
    pub(super) fn check_map_ptr_mem(
        &mut self,
        regno: u8,
        reg: &Reg,
        off: i32,
        size: i32,
        write: bool,
    ) -> Result<Option<Reg>, Fail> {
        let m = self.map(reg.map).unwrap_or_default();
        let tname = map_struct(m.map_type);
        if !self.privileged() {
            return self.err(VerifierError::Perm {
                reason: format!(
                    "'struct {tname}' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN"
                ),
            });
        }
        let off = off as i64 + reg.off as i64;
        if off < 0 {
            return self.err(unsafe_(format!(
                "R{regno} is {tname} invalid negative access: off={off}"
            )));
        }
        if write {
            return self.err(unsafe_(format!("only read from {tname} is supported")));
        }
        // The map type's struct, walked as the kernel walks it
        // (`btf_struct_access` from a plain, untagged pointer).
        if let Some(id) = self.kernel_types().and_then(|t| t.struct_id(tname)) {
            let mut typed = Reg::ptr(RegType::BtfId);
            typed.btf_id = id;
            let in_rcu = self.opts.prog_flags & BPF_F_SLEEPABLE == 0;
            let r = self.check_btf_struct_load(regno, &typed, off, size, false, in_rcu)?;
            self.reads_map_structs = true;
            return Ok(r);
        }
        self.err(unsafe_(format!(
            "bpfvm does not model reads of struct {tname} (R{regno} off={off} size={size}) yet"
        )))
    }
}

/// `is_tracing_prog_type`
fn is_tracing(prog_type: u32) -> bool {
    matches!(
        prog_type,
        BPF_PROG_TYPE_KPROBE
            | BPF_PROG_TYPE_TRACEPOINT
            | BPF_PROG_TYPE_PERF_EVENT
            | BPF_PROG_TYPE_RAW_TRACEPOINT
            | BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE
    )
}

impl Verifier<'_> {
    /// `check_map_prog_compatibility`, when a program refers to a map.
    pub(super) fn check_map_prog_compat(&self, m: &MapDesc) -> Result<(), Fail> {
        let t = self.opts.prog_type;
        if m.spin_lock_off.is_some() {
            if t == BPF_PROG_TYPE_SOCKET_FILTER {
                return self.err(invalid("socket filter progs cannot use bpf_spin_lock yet"));
            }
            if is_tracing(t) {
                return self.err(invalid("tracing progs cannot use bpf_spin_lock yet"));
            }
        }
        if m.timer_off.is_some() && is_tracing(t) {
            return self.err(invalid("tracing progs cannot use bpf_timer yet"));
        }
        Ok(())
    }

    /// `in_rcu_cs`: inside an RCU read-side section, explicit (or a spin
    /// lock) or implicit (a program that cannot sleep runs in one).
    pub(super) fn in_rcu_cs(&self, st: &State) -> bool {
        st.active_rcu_lock
            || st.active_lock.is_some()
            || self.opts.prog_flags & BPF_F_SLEEPABLE == 0
    }

    /// A load, store or helper access of `[off, off + size)` (plus the
    /// register's variable part) in a map value must stay clear of its spin
    /// lock and timer.
    /// `direct`: a load or store by the program (the access, and whether it is
    /// atomic), else a helper's access. A direct access of a kptr field gives
    /// the loaded value (`Some`).
    pub(super) fn check_map_value_fields(
        &mut self,
        m: &MapDesc,
        reg: &Reg,
        off: i64,
        size: i64,
        direct: Option<(&Access, bool, bool)>,
    ) -> Result<Option<Reg>, Fail> {
        let lo = reg.smin.saturating_add(off);
        let hi = (reg.umax.min(i64::MAX as u64) as i64).saturating_add(off + size);
        if let Some(field) = m
            .kptrs
            .iter()
            .find(|f| lo < f.off as i64 + 8 && (f.off as i64) < hi)
        {
            let (k, referenced) = (field.off, field.referenced);
            let Some((access, atomic, in_rcu)) = direct else {
                return self.err(unsafe_("kptr cannot be accessed indirectly by helper"));
            };
            if !reg.var_off.is_const() {
                return self.err(unsafe_("kptr access cannot have variable offset"));
            }
            let at = off + reg.var_off.value as i64;
            if at != k as i64 {
                return self.err(unsafe_(format!(
                    "kptr access misaligned expected={k} off={at}"
                )));
            }
            if size != 8 {
                return self.err(unsafe_("kptr access size must be BPF_DW"));
            }
            if atomic {
                return self.err(unsafe_(
                    "kptr in map can only be accessed using BPF_MEM instruction mode",
                ));
            }
            return match access {
                Access::Write(..) if referenced => {
                    self.err(unsafe_("store to referenced kptr disallowed"))
                }
                Access::Write(v, None) if !v.is_null_const() => self.err(unsafe_(format!(
                    "BPF_ST imm must be 0 when storing to kptr at off={k}"
                ))),
                // Only NULL: bpfvm has no kernel objects of the field's type.
                Access::Write(v, Some(r)) if !v.is_null_const() => self.err(unsafe_(format!(
                    "invalid kptr access, R{r} type={}",
                    v.ty.name(v.maybe_null)
                ))),
                Access::Write(..) => Ok(None),
                Access::Read => {
                    // A nullable pointer to the field's object: RCU-protected
                    // where the object is freed only after a grace period and
                    // the load is inside an RCU section (`btf_ld_kptr_type`),
                    // else untrusted.
                    let obj = crate::kfuncs::Obj::from_name(&field.pointee);
                    let rcu_safe = referenced
                        && obj.is_some_and(|o| {
                            matches!(
                                o,
                                crate::kfuncs::Obj::BpfCpumask
                                    | crate::kfuncs::Obj::Task
                                    | crate::kfuncs::Obj::Cgroup
                            )
                        });
                    let mut r = Reg::ptr(RegType::BtfId);
                    let flags = if rcu_safe && in_rcu {
                        crate::kfuncs::KFI_RCU
                    } else {
                        crate::kfuncs::KFI_UNTRUSTED
                    };
                    r.kf = match obj {
                        Some(o) => crate::kfuncs::KfInfo::object(o, flags),
                        None => crate::kfuncs::KfInfo {
                            flags,
                            ..Default::default()
                        },
                    };
                    r.maybe_null = true;
                    r.id = self.new_id();
                    Ok(Some(r))
                }
            };
        }
        let fields = [
            (m.spin_lock_off, 4, "bpf_spin_lock"),
            (m.timer_off, 16, "bpf_timer"),
        ];
        for (at, len, name) in fields {
            let Some(p) = at else { continue };
            let p = p as i64;
            if reg.smin.saturating_add(off) < p + len
                && p < (reg.umax.min(i64::MAX as u64) as i64).saturating_add(off + size)
            {
                return self.err(unsafe_(format!(
                    "{name} cannot be accessed directly by load/store"
                )));
            }
        }
        Ok(None)
    }

    /// The maps whose values hold a spin lock, among the map values a NULL
    /// check of `id` resolves.
    pub(super) fn spin_lock_maps(&mut self, st: &State, id: u32) -> Vec<u32> {
        let mut ids = Vec::new();
        for f in &st.frames {
            for r in f.regs.iter().chain(f.stack.iter().map(|s| &s.spill)) {
                if r.ty == RegType::MapValue && r.id == id && !ids.contains(&r.map) {
                    ids.push(r.map);
                }
            }
        }
        ids.retain(|m| self.map(*m).is_some_and(|d| d.spin_lock_off.is_some()));
        ids
    }

    /// `process_spin_lock`: R`regno` must point at the map value's lock;
    /// taking a lock needs none held, releasing needs this one.
    pub(super) fn process_spin_lock(
        &mut self,
        st: &mut State,
        regno: u8,
        r: &Reg,
        lock: bool,
    ) -> Result<(), Fail> {
        if !r.is_const() {
            return self.err(invalid(format!(
                "R{regno} doesn't have constant offset. bpf_spin_lock has to be at the constant offset"
            )));
        }
        let m = self.map(r.map).unwrap_or_default();
        if !m.has_btf {
            return self.err(invalid(format!(
                "map '{}' has to have BTF in order to use bpf_spin_lock",
                m.name
            )));
        }
        let Some(at) = m.spin_lock_off else {
            return self.err(invalid(format!(
                "map '{}' has no valid bpf_spin_lock",
                m.name
            )));
        };
        let off = r.var_off.value as i64 + r.off as i64;
        if off != at as i64 {
            return self.err(invalid(format!(
                "off {off} doesn't point to 'struct bpf_spin_lock' that is at {at}"
            )));
        }
        if lock {
            if st.active_lock.is_some() {
                return self.err(invalid("Locking two bpf_spin_locks are not allowed"));
            }
            st.active_lock = Some((r.map, r.id));
        } else {
            match st.active_lock {
                None => return self.err(invalid("bpf_spin_unlock without taking a lock")),
                Some(l) if l != (r.map, r.id) => {
                    return self.err(invalid("bpf_spin_unlock of different lock"))
                }
                Some(_) => st.active_lock = None,
            }
        }
        Ok(())
    }
}
