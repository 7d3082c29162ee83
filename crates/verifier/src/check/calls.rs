//! Calls: helper calls against their prototypes (`check_helper_call`),
//! bpf-to-bpf calls with their own frames, callbacks (bpf_loop,
//! for_each_map_elem), exits, references, and the combined stack limit.

use super::jumps::mark_null;
use super::kfunc::BPF_F_SLEEPABLE;
use super::*;

const MAX_VAR_SIZE: u64 = 1 << 29;
use bpfvm_isa::uapi::{
    BPF_FUNC_DYNPTR_FROM_MEM, BPF_FUNC_DYNPTR_WRITE, BPF_FUNC_SPIN_LOCK, BPF_FUNC_SPIN_UNLOCK,
    BPF_FUNC_USER_RINGBUF_DRAIN,
};
/// bpf_loop counts up to this are verified iteration by iteration.
const CB_BRUTE_FORCE: u64 = 32;
const MEM_TYPES: &str =
    "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_";
const KEY_TYPES: &str = MEM_TYPES;

fn helper_name(id: i32) -> String {
    usize::try_from(id)
        .ok()
        .and_then(|i| HELPER_NAMES.get(i))
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The verifier's id for the inner map template of map of maps `outer`
/// (map ids the runtime hands out stay below 2^31).
fn inner_map_id(outer: u32) -> u32 {
    outer | 1 << 31
}

#[derive(Default)]
struct Meta {
    map: Option<MapDesc>,
    map_reg: u32,
    /// The helper being called.
    func_id: i32,
    /// Register number of a pointer argument waiting for its size.
    mem_reg: Option<(u8, bool, bool)>,
    release: Option<u32>,
    /// The helper's `pkt_access`: packet pointers may stand for memory.
    pkt_access: bool,
    alloc_size: u64,
    /// The largest size the last size argument may have (`msize_max_value`).
    msize_max: u64,
    func: Option<u32>,
    key_reg: Option<Reg>,
    /// The reference of a socket argument (what a pointer cast keeps).
    ref_obj_id: u32,
    /// The initialised dynptr argument.
    dynptr: Option<super::dynptr::DynInfo>,
    /// It is released by the call.
    release_dynptr: bool,
    /// `bpf_kptr_xchg`'s field.
    kptr: Option<crate::KptrField>,
}

impl Verifier<'_> {
    /// Returns the callback entry when the helper calls back into the program.
    pub(super) fn check_helper_call(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
        parent: &mut Option<usize>,
    ) -> Result<Option<usize>, Fail> {
        let id = d.imm32();
        let name = helper_name(id);
        if st.active_lock.is_some() && id != BPF_FUNC_SPIN_UNLOCK {
            return self.err(invalid(
                "function calls are not allowed while holding a lock",
            ));
        }
        // Helpers the embedder registered come with their own prototypes.
        let custom = self
            .opts
            .extra_helpers
            .iter()
            .find(|(x, _)| *x == id)
            .map(|(_, p)| *p);
        let p = match custom {
            Some(p) => p,
            None => match proto_for(
                id,
                self.opts.prog_type,
                self.opts.expected_attach_type,
                self.privileged(),
            ) {
                // The registry says whether the type may call it; the map,
                // socket and kernel-object helpers have their prototypes in
                // maphelpers (per program type).
                Ok(p) => crate::maphelpers::proto(id, self.opts.prog_type, self.privileged())
                    .unwrap_or(p),
                Err(Refusal::Unmodelled)
                    if crate::maphelpers::proto(id, self.opts.prog_type, self.privileged())
                        .is_some() =>
                {
                    crate::maphelpers::proto(id, self.opts.prog_type, self.privileged())
                        .expect("checked")
                }
                Err(Refusal::Invalid) => {
                    return self.err(invalid(format!("invalid func {name}#{id}")))
                }
                Err(Refusal::NotForType) => {
                    return self.err(invalid(format!(
                        "program of this type cannot use helper {name}#{id}"
                    )))
                }
                Err(Refusal::Unmodelled) => {
                    return self.err(invalid(format!(
                        "helper {name}#{id} is not supported by bpfvm's verifier yet"
                    )))
                }
            },
        };
        if p.gpl_only && !self.opts.gpl_compatible {
            return self.err(call_err(
                "cannot call GPL-restricted function from non-GPL compatible program",
            ));
        }
        if crate::maphelpers::might_sleep(
            id,
            self.opts.prog_type,
            self.opts.prog_flags & BPF_F_SLEEPABLE != 0,
        ) {
            if self.opts.prog_flags & BPF_F_SLEEPABLE == 0 {
                return self.err(invalid("helper call might sleep in a non-sleepable prog"));
            }
            if st.active_rcu_lock {
                return self.err(invalid(format!(
                    "sleepable helper {name}#{id} in rcu_read_lock region"
                )));
            }
            if st.active_preempt_lock > 0 {
                return self.err(invalid(format!(
                    "sleepable helper {name}#{id} in non-preemptible region"
                )));
            }
        }
        let mut meta = Meta {
            func_id: id,
            pkt_access: p.pkt_access,
            ..Meta::default()
        };
        for (i, arg) in p.args.iter().enumerate() {
            if *arg == Arg::DontCare {
                continue;
            }
            self.check_func_arg(st, (i + 1) as u8, *arg, &mut meta)?;
        }
        // Map and helper must go together.
        if let Some(m) = &meta.map {
            let compat = crate::maphelpers::map_func_compat(
                m.map_type,
                id,
                &name,
                self.opts.prog_type,
                self.opts.expected_attach_type,
            );
            if let Err(msg) = compat {
                let note = crate::maphelpers::map_func_note(
                    m.map_type,
                    id,
                    self.opts.prog_type,
                    self.opts.expected_attach_type,
                );
                if let (Some(n), true) = (note, self.logging()) {
                    self.log.push_str(n);
                    self.log.push('\n');
                }
                if id == 12 {
                    return self.err(invalid("expected prog array map for tail call"));
                }
                return self.err(invalid(msg));
            }
        }
        if crate::maphelpers::never_null(id) && !st.reg(2).is_null_const() {
            return self.err(invalid(
                "get_local_storage() doesn't support non-zero flags",
            ));
        }
        if p.effect == Effect::TailCall {
            if let Some(m) = &meta.map {
                let e = self
                    .tail_call_maps
                    .entry(pc)
                    .or_insert((m.id, false, false));
                e.1 |= e.0 != m.id;
                e.2 |= m.created_unprivileged;
            }
        }
        if p.effect == Effect::TailCall && st.active_lock.is_some() {
            return self.err(invalid(
                "tail_call cannot be used inside bpf_spin_lock-ed region",
            ));
        }
        if p.effect == Effect::TailCall && st.active_rcu_lock {
            return self.err(invalid(
                "tail_call cannot be used inside bpf_rcu_read_lock-ed region",
            ));
        }
        if p.effect == Effect::TailCall && st.active_preempt_lock > 0 {
            return self.err(invalid(
                "tail_call cannot be used inside bpf_preempt_disable-ed region",
            ));
        }
        if p.effect == Effect::TailCall && !st.refs.is_empty() {
            return self.err(VerifierError::Reference {
                reason: "tail_call would lead to reference leak".into(),
            });
        }
        if let (true, Some(d)) = (meta.release_dynptr, meta.dynptr) {
            self.release_dynptr(st, d);
        }
        if id == BPF_FUNC_DYNPTR_FROM_MEM && st.reg(1).ty != RegType::MapValue {
            let t = crate::kfuncs::reg_type_str(st.reg(1));
            return self.err(unsafe_(format!(
                "Unsupported reg type {t} for bpf_dynptr_from_mem data"
            )));
        }
        // Writing through an skb dynptr may move the packet.
        let writes_skb = id == BPF_FUNC_DYNPTR_WRITE
            && meta
                .dynptr
                .is_some_and(|d| d.kind == bpfvm_isa::helpers::BPF_DYNPTR_TYPE_SKB);
        if let Some(rid) = meta.release {
            self.release_ref(st, rid);
        }
        // A tail call from a subprogram may run a program that changes the
        // packet and then return to the subprogram's callers: their packet
        // pointers go (the kernel's, since 6.13). The subprogram's own stay,
        // and a tail call in the program itself does not return if taken.
        let tail_in_sub = p.effect == Effect::TailCall && st.frames.len() > 1;
        if p.effect == Effect::ChangesPkt || tail_in_sub || writes_skb {
            let privileged = self.privileged();
            let keep = if tail_in_sub {
                st.frames.len() - 1
            } else {
                usize::MAX
            };
            let clear = |r: &mut Reg| {
                if r.points_into_packet() {
                    *r = if privileged {
                        Reg::unknown()
                    } else {
                        Reg::not_init()
                    };
                }
            };
            for (i, fr) in st.frames.iter_mut().enumerate() {
                if i == keep {
                    continue;
                }
                fr.regs.iter_mut().for_each(clear);
                for sl in fr.stack.iter_mut() {
                    if sl.ty.contains(&STACK_SPILL) {
                        clear(&mut sl.spill);
                    }
                }
            }
        }
        // Callbacks: run the callback body as a new frame now; the state
        // after zero iterations goes on the pending stack.
        let cb = if p.effect == Effect::Callback {
            Some(self.callback_frame(st, pc, id, &meta)?)
        } else {
            None
        };
        // bpf_loop runs the callback at most R1 times: a small known count
        // is walked iteration by iteration, as the kernel does.
        let cb_limit = if cb.is_some() && id == 181 {
            let n = st.reg(1).umax.min(u32::MAX as u64);
            if n <= CB_BRUTE_FORCE {
                self.mark_precise(st, 1 << 1);
            }
            n
        } else {
            u64::MAX
        };
        for r in 1..=5u8 {
            *st.reg_mut(r) = Reg::not_init();
            self.scratch_reg(r);
        }
        self.scratch_reg(0);
        let r0 = match p.ret {
            // bpf_get_stack and the *_str readers return at most the size
            // they were given, or a negative errno (do_refine_retval_range).
            Ret::Integer if matches!(id, 45 | 67 | 114 | 115 | 141) => {
                let mut r = Reg::unknown();
                r.smin = -4095;
                r.smax = meta.msize_max.min(i64::MAX as u64) as i64;
                r.s32_min = -4095;
                r.s32_max = meta.msize_max.min(i32::MAX as u64) as i32;
                r.sync_bounds();
                r
            }
            // bpf_get_current_task_btf: a trusted task_struct.
            Ret::Integer if id == 158 => super::kfunc::current_task_btf(),
            Ret::Integer => Reg::unknown(),
            Ret::Void => Reg::not_init(),
            // Socket maps give the socket, referenced; xskmap its AF_XDP socket.
            Ret::MapValueOrNull
                if meta.map.as_ref().is_some_and(|m| {
                    matches!(
                        m.map_type,
                        crate::maphelpers::BPF_MAP_TYPE_SOCKMAP
                            | crate::maphelpers::BPF_MAP_TYPE_SOCKHASH
                    )
                }) =>
            {
                self.acquired_or_null(st, pc, Reg::ptr(RegType::Sock))
            }
            Ret::MapValueOrNull
                if meta
                    .map
                    .as_ref()
                    .is_some_and(|m| m.map_type == crate::maphelpers::BPF_MAP_TYPE_XSKMAP) =>
            {
                let mut r = Reg::ptr(RegType::XdpSock);
                r.maybe_null = true;
                r.id = self.new_id();
                r
            }
            Ret::SockOrNull(k) => {
                let mut r = Reg::ptr(match k {
                    crate::helpers::SockKind::SockCommon => RegType::SockCommon,
                    crate::helpers::SockKind::Sock => RegType::Sock,
                    crate::helpers::SockKind::TcpSock => RegType::TcpSock,
                    crate::helpers::SockKind::BtfId => RegType::BtfId,
                });
                if let Some(o) = crate::maphelpers::skc_to_obj(id) {
                    r.kf = crate::kfuncs::KfInfo::object(o, 0);
                }
                r.maybe_null = true;
                r.id = self.new_id();
                if crate::maphelpers::acquires(id) {
                    let rid = self.new_id();
                    r.id = rid;
                    r.ref_obj_id = rid;
                    st.refs.push((rid, pc));
                } else if crate::maphelpers::is_ptr_cast(id) {
                    r.ref_obj_id = meta.ref_obj_id;
                }
                r
            }
            Ret::MapValueOrNull if meta.map.as_ref().is_some_and(|m| m.inner.is_some()) => {
                let mut inner = meta
                    .map
                    .as_ref()
                    .and_then(|m| m.inner.clone())
                    .map(|b| *b)
                    .unwrap_or_default();
                // Each map of maps has its own template: key it by the outer
                // map, so registers (and pruning) never mix two templates.
                inner.id = inner_map_id(meta.map_reg);
                let mut r = Reg::ptr(RegType::MapPtr);
                r.map = inner.id;
                r.maybe_null = true;
                r.id = self.new_id();
                self.map_cache.insert(inner.id, Some(inner));
                r
            }
            Ret::MapValueOrNull => {
                let m = meta.map.clone().unwrap_or_default();
                let mut r = Reg::ptr(RegType::MapValue);
                r.map = m.id;
                let const_key = meta
                    .key_reg
                    .as_ref()
                    .and_then(|k| self.const_stack_key(st, k, m.key_size));
                let in_range = matches!(m.map_type, BPF_MAP_TYPE_ARRAY | BPF_MAP_TYPE_PERCPU_ARRAY)
                    && const_key.is_some_and(|k| k < m.max_entries as u64);
                if in_range {
                    // The key's value made the result non-NULL.
                    if let Some(k) = meta.key_reg.clone() {
                        self.mark_key_precise(st, &k);
                    }
                }
                // A value known not NULL still gets an id when it holds a
                // spin lock: the id names the lock.
                if !in_range || m.spin_lock_off.is_some() {
                    r.id = self.new_id();
                }
                // bpf_get_local_storage gives the storage itself.
                r.maybe_null = !in_range && !crate::maphelpers::never_null(id);
                r
            }
            // bpf_dynptr_data: the dynptr's memory, tied to the dynptr (and
            // to its reference, for a ring buffer record).
            Ret::DynptrMemOrNull => {
                let d = meta.dynptr.unwrap_or_default();
                let mut r = Reg::ptr(RegType::Mem);
                r.maybe_null = true;
                r.mem_size = meta.alloc_size.min(u32::MAX as u64) as u32;
                r.id = self.new_id();
                r.dynptr_id = d.id;
                r.ref_obj_id = d.ref_obj_id;
                r
            }
            // bpf_kptr_xchg: the field's old object, referenced.
            Ret::KptrOrNull => {
                let field = meta.kptr.clone().unwrap_or_default();
                let mut r = Reg::ptr(RegType::BtfId);
                if let Some(o) = crate::kfuncs::Obj::from_name(&field.pointee) {
                    r.kf = crate::kfuncs::KfInfo::object(o, 0);
                }
                self.acquired_or_null(st, pc, r)
            }
            Ret::RingbufMemOrNull => {
                let mut r = Reg::ptr(RegType::RingbufMem);
                // The kernel spends one id on the reference state and one on
                // the register; both print as the second.
                self.new_id();
                let id = self.new_id();
                r.maybe_null = true;
                r.id = id;
                r.ref_obj_id = id;
                r.mem_size = meta.alloc_size as u32;
                st.refs.push((id, pc));
                r
            }
        };
        *st.reg_mut(0) = r0;
        if let Some(frame) = cb {
            // Zero iterations: continue after the call.
            let after = st.clone();
            self.push_branch(after, pc + 1, pc, *parent)?;
            // One iteration: the callback frame on top of the caller's.
            let entry = self.cfg().subprogs[frame.subprog];
            self.callback_init.insert(
                pc,
                (Box::new(frame.regs.clone()), Box::new(st.clone()), cb_limit),
            );
            self.callback_entries.insert(entry);
            st.frames.push(frame);
            return Ok(Some(entry));
        }
        Ok(None)
    }

    /// R0 of an acquiring helper (`is_acquire_function`): `r`, maybe NULL,
    /// holding a new reference. The kernel spends one id on the register and
    /// one on the reference state; both print as the second.
    fn acquired_or_null(&mut self, st: &mut State, pc: usize, mut r: Reg) -> Reg {
        r.maybe_null = true;
        self.new_id();
        let rid = self.new_id();
        r.id = rid;
        r.ref_obj_id = rid;
        st.refs.push((rid, pc));
        r
    }

    /// `do_misc_fixups`: a tail call whose map differs between paths cannot
    /// get its index masked against one map's size. The mask is needed only
    /// where a map came from a process without CAP_PERFMON; whoever loads the
    /// program, the maps' creators decide, as in the kernel.
    pub(super) fn check_tail_call_maps(&self) -> Result<(), Fail> {
        let mut poisoned: Vec<usize> = self
            .tail_call_maps
            .iter()
            .filter(|(_, v)| v.1 && v.2)
            .map(|(pc, _)| *pc)
            .collect();
        poisoned.sort_unstable();
        match poisoned.first() {
            Some(&pc) => Err((invalid("tail_call abusing map_ptr"), Some(pc))),
            None => Ok(()),
        }
    }

    /// The key at a constant stack address, if its bytes are known.
    fn const_stack_key(&self, st: &State, key: &Reg, key_size: u32) -> Option<u64> {
        if key.ty != RegType::Stack || !key.is_const() || !(1..=8).contains(&key_size) {
            return None;
        }
        let addr = key.off as i64 + key.var_off.value as i64;
        if !(-MAX_STACK..0).contains(&addr) {
            return None;
        }
        let fr = &st.frames[Self::stack_frame_of(st, key)];
        let spi = ((-addr - 1) / 8) as usize;
        let slot = fr.stack.get(spi)?;
        let first_k = ((-addr - 1) % 8) as usize;
        if first_k + 1 < key_size as usize {
            return None;
        }
        let ks: Vec<usize> = (0..key_size as usize).map(|i| first_k - i).collect();
        if ks.iter().all(|&k| slot.ty[k] == STACK_ZERO) {
            return Some(0);
        }
        let spilled = slot.ty.iter().filter(|&&t| t == STACK_SPILL).count();
        if addr % 8 == 0
            && spilled == key_size as usize
            && ks.iter().all(|&k| slot.ty[k] == STACK_SPILL)
            && slot.spill.is_scalar()
            && slot.spill.is_const()
        {
            return Some(slot.spill.var_off.value);
        }
        None
    }

    pub(super) fn stack_frame_of(st: &State, reg: &Reg) -> usize {
        (reg.frameno as usize).min(st.frames.len() - 1)
    }

    pub(super) fn type_err<T>(&self, regno: u8, r: &Reg, expected: &str) -> Result<T, Fail> {
        let t = r.ty.name(r.maybe_null);
        self.err(call_err(format!("R{regno} type={t} expected={expected}")))
    }

    fn check_func_arg(
        &mut self,
        st: &mut State,
        regno: u8,
        arg: Arg,
        meta: &mut Meta,
    ) -> Result<(), Fail> {
        self.check_reg_read(st, regno)?;
        let r = st.reg(regno).clone();
        if !matches!(arg, Arg::DontCare | Arg::Anything)
            && r.ty.is_pkt()
            && !may_access_pkt(self.opts.prog_type, false, Some(meta.pkt_access))
        {
            return self.err(unsafe_("helper access to the packet is not allowed"));
        }
        match arg {
            Arg::DontCare => {}
            Arg::Anything => {
                if self.is_pointer_value(&r) {
                    return self.err(unsafe_(format!("R{regno} leaks addr into helper function")));
                }
            }
            Arg::FixedMem { size, uninit } => {
                if r.maybe_null
                    || !matches!(
                        r.ty,
                        RegType::Stack
                            | RegType::Packet
                            | RegType::PacketMeta
                            | RegType::MapKey
                            | RegType::MapValue
                            | RegType::RingbufMem
                    )
                {
                    return self.type_err(regno, &r, MEM_TYPES);
                }
                if !uninit {
                    // MEM_WRITE without MEM_UNINIT: the helper reads the value
                    // first, so it must be initialised (checked as a direct read).
                    self.check_fixed_mem_init(st, regno, &r, size)?;
                    self.check_helper_mem(st, regno, size as i64, false)?;
                }
                self.check_helper_mem(st, regno, size as i64, true)?;
                self.check_arg_alignment(&r, size)?;
            }
            Arg::BtfId { obj: want } => {
                // btf_ptr_types: a plain, trusted or RCU pointer; never an
                // untrusted one.
                if r.ty == RegType::BtfId && r.kf.flags & crate::kfuncs::KFI_UNTRUSTED != 0 {
                    return self.err(call_err(format!(
                        "R{regno} type={} expected=ptr_, trusted_ptr_, rcu_ptr_",
                        crate::kfuncs::reg_type_str(&r)
                    )));
                }
                if r.ty != RegType::BtfId || r.maybe_null {
                    return self.type_err(regno, &r, "ptr_, trusted_ptr_, rcu_ptr_");
                }
                let name = crate::kfuncs::Obj::from_u8(r.kf.obj).map_or("?", |o| o.name());
                if name != want {
                    return self.err(call_err(format!(
                        "R{regno} is of type {name} but {want} is expected"
                    )));
                }
            }
            Arg::SpinLock => {
                if r.ty != RegType::MapValue || r.maybe_null {
                    return self.type_err(regno, &r, "map_value, ptr_");
                }
                let lock = meta.func_id == BPF_FUNC_SPIN_LOCK;
                self.process_spin_lock(st, regno, &r, lock)?;
            }
            Arg::CtxOrNull if r.is_null_const() => {
                self.mark_precise(st, 1 << regno);
            }
            Arg::CtxOrNull => {
                if r.ty != RegType::Ctx {
                    return self.type_err(regno, &r, "ctx");
                }
                self.check_ctx_ptr_off(regno, &r)?;
            }
            Arg::MapPtr => {
                // An inner map before its NULL check is no map.
                if r.ty != RegType::MapPtr || r.maybe_null {
                    return self.type_err(regno, &r, "map_ptr");
                }
                meta.map = self.map(r.map);
                meta.map_reg = r.map;
            }
            // resolve_map_arg_type: a socket map's value is a socket.
            Arg::MapValue
                if meta.map.as_ref().is_some_and(|m| {
                    matches!(
                        m.map_type,
                        crate::maphelpers::BPF_MAP_TYPE_SOCKMAP
                            | crate::maphelpers::BPF_MAP_TYPE_SOCKHASH
                    )
                }) =>
            {
                return self.check_func_arg(
                    st,
                    regno,
                    Arg::BtfIdSockCommon { release: false },
                    meta,
                );
            }
            Arg::MapKey | Arg::MapValue | Arg::MapValueUninit => {
                let Some(m) = meta.map.clone() else {
                    let what = if arg == Arg::MapKey { "key" } else { "value" };
                    return self.err(call_err(format!("invalid map_ptr to access map->{what}")));
                };
                if !matches!(
                    r.ty,
                    RegType::Stack
                        | RegType::Packet
                        | RegType::PacketMeta
                        | RegType::MapKey
                        | RegType::MapValue
                ) || r.maybe_null
                {
                    return self.type_err(regno, &r, KEY_TYPES);
                }
                let (size, write) = match arg {
                    Arg::MapKey => (m.key_size, false),
                    Arg::MapValue => (m.value_size, false),
                    _ => (m.value_size, true),
                };
                if arg == Arg::MapKey {
                    meta.key_reg = Some(r.clone());
                }
                self.check_helper_mem(st, regno, size as i64, write)?;
            }
            Arg::Mem { nullable } | Arg::UninitMem { nullable } => {
                let write = matches!(arg, Arg::UninitMem { .. });
                if nullable && r.is_null_const() {
                    meta.mem_reg = Some((regno, write, true));
                    return Ok(());
                }
                if !r.ty.is_ptr()
                    || r.maybe_null
                    || !matches!(
                        r.ty,
                        RegType::Stack
                            | RegType::Packet
                            | RegType::PacketMeta
                            | RegType::MapKey
                            | RegType::MapValue
                            | RegType::RingbufMem
                            | RegType::Mem
                    )
                {
                    return self.type_err(regno, &r, MEM_TYPES);
                }
                meta.mem_reg = Some((regno, write, false));
            }
            Arg::ConstSize | Arg::ConstSizeOrZero => {
                let zero_ok = arg == Arg::ConstSizeOrZero;
                if !r.is_scalar() {
                    return self.type_err(regno, &r, "scalar");
                }
                meta.msize_max = r.umax;
                self.mark_precise(st, 1 << regno);
                if r.smin < 0 {
                    return self.err(call_err(format!(
                        "R{regno} min value is negative, either use unsigned or 'var &= const'"
                    )));
                }
                if r.umin == 0 && !zero_ok {
                    return self.err(call_err(format!(
                        "R{regno} invalid zero-sized read: u64=[{},{}]",
                        r.umin, r.umax
                    )));
                }
                if r.umax >= MAX_VAR_SIZE {
                    return self.err(call_err(format!("R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'")));
                }
                if let Some((mreg, write, was_null)) = meta.mem_reg.take() {
                    if was_null {
                        if r.umax != 0 {
                            let t = st.reg(mreg).ty.name(false);
                            return self
                                .err(call_err(format!("R{mreg} type={t} expected={MEM_TYPES}")));
                        }
                    } else if r.umax > 0 {
                        self.check_helper_mem(st, mreg, r.umax as i64, write)?;
                    } else if st.reg(mreg).ty == RegType::Stack {
                        self.check_zero_sized_stack(st, mreg, write)?;
                    }
                }
            }
            Arg::AllocSize => {
                if !r.is_scalar() || !r.is_const() {
                    return self.err(call_err(format!("R{regno} is not a known constant'")));
                }
                self.mark_precise(st, 1 << regno);
                meta.alloc_size = r.var_off.value;
            }
            Arg::Ctx => {
                if r.ty != RegType::Ctx {
                    return self.type_err(regno, &r, "ctx");
                }
                self.check_ctx_ptr_off(regno, &r)?;
            }
            Arg::RingbufMemRelease => {
                if r.ty != RegType::RingbufMem || r.maybe_null {
                    return self.type_err(regno, &r, "ringbuf_mem");
                }
                if r.off != 0 || !r.is_const() || r.var_off.value != 0 {
                    return self.err(VerifierError::Reference { reason: format!("R{regno} must have zero offset when passed to release func or trusted arg to kfunc") });
                }
                if r.ref_obj_id == 0 || !st.refs.iter().any(|x| x.0 == r.ref_obj_id) {
                    return self.err(VerifierError::Reference {
                        reason: format!(
                            "R{regno} must be referenced when passed to release function"
                        ),
                    });
                }
                meta.release = Some(r.ref_obj_id);
            }
            Arg::DynptrUninit { kind } => {
                if !matches!(r.ty, RegType::Stack | RegType::ConstDynptr) {
                    return self.type_err(regno, &r, "fp, dynptr_ptr");
                }
                self.check_const_dynptr_off(regno, &r, false)?;
                let pc = self.cur_insn;
                self.process_dynptr(
                    st,
                    pc,
                    regno,
                    super::dynptr::DynArg::Uninit { kind, clone_ref: 0 },
                )?;
            }
            Arg::Dynptr { kind, release } => {
                if !matches!(r.ty, RegType::Stack | RegType::ConstDynptr) {
                    return self.type_err(regno, &r, "fp, dynptr_ptr");
                }
                self.check_const_dynptr_off(regno, &r, release)?;
                if release && r.ty == RegType::ConstDynptr {
                    return self.err(invalid("cannot release unowned const bpf_dynptr"));
                }
                if release {
                    self.check_dynptr_release(st, regno)?;
                }
                let pc = self.cur_insn;
                meta.dynptr =
                    self.process_dynptr(st, pc, regno, super::dynptr::DynArg::Init { kind })?;
                meta.release_dynptr = release;
            }
            Arg::Func => {
                if r.ty != RegType::Func {
                    return self.type_err(regno, &r, "func");
                }
                meta.func = Some(r.subprog);
            }
            Arg::SockCommon => {
                if !r.ty.is_sock() || r.maybe_null {
                    return self.type_err(regno, &r, "sock_common, sock, tcp_sock, xdp_sock");
                }
                meta.ref_obj_id = r.ref_obj_id;
            }
            Arg::BtfIdSockCommon { release } => {
                let btf_sock = r.ty == RegType::BtfId
                    && crate::kfuncs::Obj::from_u8(r.kf.obj).is_some_and(|o| o.is_sock());
                if !(r.ty.is_sock() || btf_sock) || r.maybe_null {
                    return self.type_err(
                        regno,
                        &r,
                        "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_",
                    );
                }
                meta.ref_obj_id = r.ref_obj_id;
                if release {
                    if r.ref_obj_id == 0 || !st.refs.iter().any(|x| x.0 == r.ref_obj_id) {
                        return self.err(VerifierError::Reference {
                            reason: format!(
                                "R{regno} must be referenced when passed to release function"
                            ),
                        });
                    }
                    meta.release = Some(r.ref_obj_id);
                }
            }
            Arg::KptrXchgDest => {
                if r.ty != RegType::MapValue || r.maybe_null {
                    return self.type_err(regno, &r, "map_value, ptr_");
                }
                let m = self.map(r.map).unwrap_or_default();
                if !m.has_btf {
                    return self.err(invalid(format!(
                        "map '{}' has to have BTF in order to use bpf_kptr_xchg",
                        m.name
                    )));
                }
                if !r.var_off.is_const() {
                    return self.err(invalid(format!(
                        "R{regno} doesn't have constant offset. kptr has to be at the constant offset"
                    )));
                }
                if m.kptrs.is_empty() {
                    return self.err(invalid(format!("R{regno} has no valid kptr")));
                }
                let at = i64::from(r.off) + r.var_off.value as i64;
                let Some(field) = m.kptrs.iter().find(|f| i64::from(f.off) == at) else {
                    return self.err(unsafe_(format!("off={at} doesn't point to kptr")));
                };
                if !field.referenced {
                    return self.err(unsafe_(format!("off={at} kptr isn't referenced kptr")));
                }
                meta.kptr = Some(field.clone());
            }
            Arg::KptrXchgValue => {
                if r.is_null_const() {
                    return Ok(());
                }
                if r.maybe_null {
                    return self.err(unsafe_(format!(
                        "Possibly NULL pointer passed to helper arg{regno}"
                    )));
                }
                let field = meta.kptr.clone().unwrap_or_default();
                // map_kptr_match_type: a trusted or RCU pointer to exactly the
                // field's type (no walk to a first member: the field holds a
                // reference), at offset 0.
                let want = crate::kfuncs::Obj::from_name(&field.pointee);
                let matches = r.ty == RegType::BtfId
                    && r.kf.flags & crate::kfuncs::KFI_UNTRUSTED == 0
                    && want.is_some()
                    && crate::kfuncs::Obj::from_u8(r.kf.obj) == want
                    && r.off == 0;
                if r.ty == RegType::BtfId && !r.var_off.is_const() {
                    return self.err(unsafe_(format!(
                        "variable ptr_ access var_off={} disallowed",
                        r.var_off.text()
                    )));
                }
                if !matches {
                    let have = if r.ty == RegType::BtfId {
                        crate::kfuncs::btf_ptr_name(&r)
                    } else {
                        r.ty.name(r.maybe_null)
                    };
                    return self.err(unsafe_(format!(
                        "invalid kptr access, R{regno} type={have} expected=ptr_{}",
                        field.pointee
                    )));
                }
                if r.ref_obj_id == 0 {
                    return self.err(VerifierError::Reference {
                        reason: format!(
                            "R{regno} must be referenced when passed to release function"
                        ),
                    });
                }
                // The reference moves into the map.
                meta.release = Some(r.ref_obj_id);
            }
            Arg::MapValueOrNull => {
                if r.is_null_const() {
                    return Ok(());
                }
                let Some(m) = meta.map.clone() else {
                    return self.err(call_err("invalid map_ptr to access map->value"));
                };
                if !matches!(
                    r.ty,
                    RegType::Stack
                        | RegType::Packet
                        | RegType::PacketMeta
                        | RegType::MapKey
                        | RegType::MapValue
                ) || r.maybe_null
                {
                    return self.type_err(regno, &r, KEY_TYPES);
                }
                self.check_helper_mem(st, regno, m.value_size as i64, false)?;
            }
            Arg::StackOrNull => {
                if !(r.is_null_const() || r.ty == RegType::Stack) {
                    return self.type_err(regno, &r, "fp");
                }
            }
            Arg::ConstStr => {
                let m = if r.ty == RegType::MapValue && !r.maybe_null {
                    self.map(r.map)
                } else {
                    None
                };
                let Some(m) = m else {
                    return self.type_err(regno, &r, "map_value");
                };
                if m.map_flags & BPF_F_RDONLY_PROG == 0 || !m.frozen {
                    return self.err(call_err(format!(
                        "R{regno} does not point to a readonly map'"
                    )));
                }
                if !r.is_const() {
                    return self.err(call_err(format!("R{regno} is not a constant address'")));
                }
                let off = r.off as i64 + r.var_off.value as i64;
                if off < 0 || off >= m.value_size as i64 {
                    return self.err(call_err(format!(
                        "invalid access to map value, value_size={} off={off} size=1",
                        m.value_size
                    )));
                }
            }
        }
        Ok(())
    }

    /// A fixed-size in/out argument on the stack must be initialised: every
    /// byte written before, whatever the loader's privileges.
    fn check_fixed_mem_init(&self, st: &State, regno: u8, r: &Reg, size: u32) -> Result<(), Fail> {
        if r.ty != RegType::Stack || !r.is_const() {
            return Ok(());
        }
        let lo = r.off as i64 + r.var_off.value as i64;
        let fr = &st.frames[Self::stack_frame_of(st, r)];
        for i in 0..size as i64 {
            let a = lo + i;
            if !(-MAX_STACK..0).contains(&a) {
                return Ok(());
            }
            let t = fr
                .slot(((-a - 1) / 8) as usize)
                .map_or(STACK_INVALID, |s| s.ty[((-a - 1) % 8) as usize]);
            if t == STACK_INVALID {
                return self.err(unsafe_(format!(
                    "invalid read from stack R{regno} off {lo}+{i} size {size}"
                )));
            }
        }
        Ok(())
    }

    /// `check_ptr_alignment` with strict alignment, for `MEM_ALIGNED` arguments.
    fn check_arg_alignment(&self, r: &Reg, size: u32) -> Result<(), Fail> {
        if size <= 1 {
            return Ok(());
        }
        let tn = if r.var_off.mask == 0 {
            if r.var_off.value <= u16::MAX as u64 {
                r.var_off.value.to_string()
            } else {
                format!("{:#x}", r.var_off.value)
            }
        } else {
            r.var_off.text()
        };
        let (ip_align, desc) = match r.ty {
            RegType::Packet | RegType::PacketMeta => (2, "packet "),
            RegType::MapKey => (0, "key "),
            RegType::MapValue => (0, "value "),
            RegType::Stack => (0, "stack "),
            _ => (0, ""),
        };
        let at = r.var_off.add(Tnum::konst((ip_align + r.off as i64) as u64));
        if (at.value | at.mask) & (size as u64 - 1) != 0 {
            let msg = if ip_align != 0 {
                format!(
                    "misaligned packet access off {ip_align}+{tn}+{}+0 size {size}",
                    r.off
                )
            } else {
                format!("misaligned {desc}access off {tn}+{}+0 size {size}", r.off)
            };
            return self.err(unsafe_(msg));
        }
        Ok(())
    }

    /// `check_helper_mem_access`: a helper reads or writes `size` bytes at R`regno`.
    pub(super) fn check_helper_mem(
        &mut self,
        st: &mut State,
        regno: u8,
        size: i64,
        write: bool,
    ) -> Result<(), Fail> {
        let r = st.reg(regno).clone();
        let size32 = size.min(i32::MAX as i64) as i32;
        let off_total = r.off as i64;
        match r.ty {
            RegType::Stack => {
                let fi = Self::stack_frame_of(st, &r);
                let (lo, hi) = if r.is_const() {
                    let a = off_total + r.var_off.value as i64;
                    (a, a)
                } else {
                    if !self.privileged() {
                        return self.err(unsafe_(format!(
                            "R{regno} variable stack access prohibited for !root"
                        )));
                    }
                    if r.smin == i64::MIN || r.smax >= MAX_VAR_OFF {
                        return self.err(unsafe_(format!(
                            "R{regno} unbounded indirect variable offset stack access"
                        )));
                    }
                    (off_total + r.smin, off_total + r.smax)
                };
                let kind = if write { "write to" } else { "read from" };
                if size == 0 {
                    return self.err(unsafe_("invalid zero-sized read"));
                }
                if lo < -MAX_STACK || hi + size > 0 || size < 0 {
                    if r.is_const() {
                        return self.err(invalid(format!(
                            "invalid {kind} stack R{regno} off={lo} size={size}"
                        )));
                    }
                    return self.err(invalid(format!(
                        "invalid variable-offset {kind} stack R{regno} var_off={} off={off_total} size={size}",
                        r.var_off.text()
                    )));
                }
                self.record_depth(st, fi, lo);
                let privileged = self.privileged();
                let frame = &mut st.frames[fi];
                // Nothing was ever written that deep: worded by register, as
                // the kernel does.
                if !write
                    && !privileged
                    && r.is_const()
                    && ((-lo - 1) / 8) as usize >= frame.stack.len()
                {
                    return Err((
                        unsafe_(format!(
                            "invalid read from stack R{regno} off={lo} size={size}"
                        )),
                        Some(self.cur_insn),
                    ));
                }
                for a in lo..hi + size {
                    let spi = ((-a - 1) / 8) as usize;
                    let k = ((-a - 1) % 8) as usize;
                    if write && spi < 64 {
                        self.scratched_stack |= 1 << spi;
                    }
                    let slot = frame.slot_mut(spi);
                    let t = slot.ty[k];
                    // A dynptr or iterator lives in these bytes: no helper
                    // may overwrite or read its insides.
                    if write && (t == super::kfunc::STACK_DYNPTR || t == super::kfunc::STACK_ITER) {
                        return Err((
                            if t == super::kfunc::STACK_DYNPTR {
                                unsafe_(format!("potential write to dynptr at off={a} disallowed"))
                            } else {
                                invalid(format!(
                                    "invalid write to stack R{regno} off={lo} size={size}"
                                ))
                            },
                            Some(self.cur_insn),
                        ));
                    }
                    if write {
                        if slot.ty.contains(&STACK_SPILL) && !(slot.spill.is_scalar() || privileged)
                        {
                            return Err((
                                unsafe_(format!(
                                    "invalid write to stack R{regno} off={lo} size={size}"
                                )),
                                Some(self.cur_insn),
                            ));
                        }
                        if slot.ty.contains(&STACK_SPILL) {
                            for x in slot.ty.iter_mut() {
                                if *x == STACK_SPILL {
                                    *x = STACK_MISC;
                                }
                            }
                        }
                        slot.ty[k] = STACK_MISC;
                        continue;
                    }
                    let ok = match t {
                        STACK_MISC | STACK_ZERO => true,
                        STACK_SPILL => slot.spill.is_scalar() || privileged,
                        STACK_INVALID => privileged,
                        // Dynptr and iterator slots are never plain memory.
                        _ => false,
                    };
                    if !ok {
                        let base = if r.is_const() { lo } else { off_total };
                        return Err((
                            unsafe_(format!("invalid indirect read from stack R{regno} off {base}+{} size {size}", a - lo)),
                            Some(self.cur_insn),
                        ));
                    }
                }
                Ok(())
            }
            RegType::MapValue => {
                let m = self.map(r.map).unwrap_or_default();
                if write && m.map_flags & BPF_F_RDONLY_PROG != 0 {
                    return self.err(unsafe_(format!(
                        "write into map forbidden, value_size={} off={off_total} size={size}",
                        m.value_size
                    )));
                }
                if !write && m.map_flags & BPF_F_WRONLY_PROG != 0 {
                    return self.err(unsafe_(format!(
                        "read from map forbidden, value_size={} off={off_total} size={size}",
                        m.value_size
                    )));
                }
                self.check_region(
                    regno,
                    &r,
                    off_total,
                    size32,
                    m.value_size as i64,
                    "map value",
                )?;
                self.check_map_value_fields(&m, &r, off_total, size, None)
                    .map(drop)
            }
            RegType::MapKey => {
                let m = self.map(r.map).unwrap_or_default();
                self.check_region(regno, &r, off_total, size32, m.key_size as i64, "map key")
            }
            RegType::RingbufMem => {
                self.check_region(regno, &r, off_total, size32, r.mem_size as i64, "memory")
            }
            RegType::Mem => {
                if write && r.kf.flags & crate::kfuncs::KFI_RDONLY != 0 {
                    return self.type_err(regno, &r, MEM_TYPES);
                }
                self.check_region(regno, &r, off_total, size32, r.mem_size as i64, "memory")
            }
            RegType::Packet | RegType::PacketMeta => {
                if write && !may_access_pkt(self.opts.prog_type, true, None) {
                    return self.err(unsafe_("cannot write into packet"));
                }
                if r.smin < 0 {
                    return self.err(unsafe_(format!("R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")));
                }
                if off_total < 0 || off_total + size > r.range as i64 {
                    if self.logging() {
                        self.log.push_str(&format!(
                            "invalid access to packet, off={off_total} size={size}, R{regno}(id={},off={off_total},r={})\n",
                            r.id, r.range
                        ));
                    }
                    return self.err(unsafe_(format!("R{regno} offset is outside of the packet")));
                }
                Ok(())
            }
            _ => self.type_err(regno, &r, MEM_TYPES),
        }
    }

    fn callback_frame(
        &mut self,
        st: &State,
        pc: usize,
        id: i32,
        meta: &Meta,
    ) -> Result<Frame, Fail> {
        if st.frames.len() >= MAX_FRAMES {
            return self.err(too_complex(format!(
                "the call stack of {} frames is too deep",
                st.frames.len() + 1
            )));
        }
        let Some(entry) = meta.func else {
            return self.err(call_err("callback function not static"));
        };
        let cfg = self.cfg();
        let sp = cfg
            .subprogs
            .iter()
            .position(|&s| s == entry as usize)
            .unwrap_or(0);
        let mut regs: [Reg; 11] = std::array::from_fn(|_| Reg::not_init());
        if id == 181 {
            regs[1] = Reg::bounded(u32::MAX as u64);
            regs[2] = st.reg(3).clone();
        } else if id == BPF_FUNC_USER_RINGBUF_DRAIN {
            // set_user_ringbuf_callback_state: (const struct bpf_dynptr *
            // over the sample, a local one with an id of its own; ctx).
            let mut d = Reg::ptr(RegType::ConstDynptr);
            d.kf.obj = bpfvm_isa::helpers::BPF_DYNPTR_TYPE_LOCAL;
            d.kf.flags = crate::kfuncs::KFI_FIRST_SLOT;
            d.id = self.new_id();
            regs[1] = d;
            regs[2] = st.reg(3).clone();
        } else {
            let m = meta.map.clone().unwrap_or_default();
            let mut mp = Reg::ptr(RegType::MapPtr);
            mp.map = m.id;
            regs[1] = mp;
            let mut k = Reg::ptr(RegType::MapKey);
            k.map = m.id;
            regs[2] = k;
            let mut v = Reg::ptr(RegType::MapValue);
            v.map = m.id;
            regs[3] = v;
            regs[4] = st.reg(3).clone();
        }
        let mut fp = Reg::ptr(RegType::Stack);
        fp.frameno = st.frames.len() as u8;
        regs[10] = fp;
        Ok(Frame {
            regs,
            stack: Vec::new(),
            callsite: pc,
            subprog: sp,
            callback: true,
            cb_iters: 1,
        })
    }

    pub(super) fn check_local_call(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
    ) -> Result<Next, Fail> {
        if !self.privileged() && self.opts.prog_type != BPF_PROG_TYPE_SOCKET_FILTER {
            // Unprivileged programs may call subprograms too; nothing to refuse here.
        }
        if st.frames.len() >= MAX_FRAMES {
            return self.err(too_complex(format!(
                "the call stack of {} frames is too deep",
                st.frames.len() + 1
            )));
        }
        let tgt = target(pc, d) as usize;
        let sp = self.cfg().subprog_of[tgt];
        if let Some(g) = self.global_func(sp) {
            return self.call_global(st, pc, sp, g);
        }
        let mut regs: [Reg; 11] = std::array::from_fn(|_| Reg::not_init());
        regs[1..=5].clone_from_slice(&st.cur().regs[1..=5]);
        let mut fp = Reg::ptr(RegType::Stack);
        fp.frameno = st.frames.len() as u8;
        regs[10] = fp;
        // The arguments move to the callee; the caller's copies are clobbered.
        for r in 1..=5u8 {
            *st.reg_mut(r) = Reg::not_init();
        }
        if self.logging() {
            let s = self.state_str(st, true);
            self.log.push_str(&format!("caller:\n{s}\n"));
        }
        st.frames.push(Frame {
            regs,
            stack: Vec::new(),
            callsite: pc,
            subprog: sp,
            callback: false,
            cb_iters: 0,
        });
        if self.logging() {
            let s = self.state_str(st, true);
            self.log.push_str(&format!("callee:\n{s}\n"));
            self.scratched_regs = 0x7ff;
        }
        Ok(Next::Go(tgt))
    }

    /// The global function subprogram `sp` is, if it is one.
    fn global_func(&self, sp: usize) -> Option<crate::GlobalFunc> {
        let entry = *self.cfg().subprogs.get(sp)?;
        if sp == 0 {
            return None;
        }
        self.opts
            .global_funcs
            .iter()
            .find(|g| g.insn_idx as usize == entry)
            .cloned()
    }

    /// A call of a global function: the arguments must fit its prototype
    /// (`btf_check_subprog_call`); the function itself is verified on its
    /// own, so the caller goes on with R0 unknown.
    fn call_global(
        &mut self,
        st: &mut State,
        pc: usize,
        sp: usize,
        g: crate::GlobalFunc,
    ) -> Result<Next, Fail> {
        // Only global functions: a static one is verified in the caller's
        // state, preemption count included.
        if st.active_preempt_lock > 0 {
            return self.err(invalid(
                "global function calls are not allowed with preemption disabled,\n\
                 use static function instead",
            ));
        }
        if st.active_rcu_lock && self.subprog_might_sleep(sp) {
            return self.err(invalid(
                "global functions that may sleep are not allowed in non-sleepable context,\n\
                 i.e., in a RCU/IRQ/preempt-disabled section, or in\n\
                 a non-sleepable BPF program context",
            ));
        }
        let invalid_args = format!("Caller passes invalid args into func#{sp} ('{}')", g.name);
        let args = match &g.args {
            Ok(a) => a.clone(),
            Err(why) => {
                if self.logging() {
                    self.log.push_str(why);
                    self.log.push('\n');
                }
                return self.err(invalid(invalid_args));
            }
        };
        for (i, a) in args.iter().enumerate() {
            let regno = (i + 1) as u8;
            let r = st.reg(regno).clone();
            let bad = match a {
                crate::GlobalArg::Scalar => {
                    (!r.is_scalar()).then(|| format!("R{regno} is not a scalar"))
                }
                crate::GlobalArg::Ctx => (r.ty != RegType::Ctx || r.off != 0 || !r.is_const())
                    .then(|| format!("arg#{i} expects pointer to ctx")),
                crate::GlobalArg::Trusted { obj, nullable } => {
                    let trusted = r.ty == RegType::BtfId
                        && r.kf.obj == *obj
                        && (r.ref_obj_id != 0 || r.kf.flags & crate::kfuncs::KFI_TRUSTED != 0);
                    if *nullable && r.is_null_const() {
                        None
                    } else if r.ty != RegType::BtfId || (r.maybe_null && !*nullable) {
                        // `check_reg_type`: the type without the struct's name.
                        let t = if r.ty == RegType::BtfId {
                            crate::kfuncs::btf_ptr_name(&Reg {
                                kf: crate::kfuncs::KfInfo { obj: 0, ..r.kf },
                                ..r.clone()
                            })
                        } else {
                            r.ty.name(r.maybe_null)
                        };
                        Some(format!(
                            "R{regno} type={t} expected=ptr_, trusted_ptr_, rcu_ptr_"
                        ))
                    } else if !trusted {
                        Some(format!(
                            "R{regno} is not a trusted pointer of the right type"
                        ))
                    } else {
                        None
                    }
                }
                crate::GlobalArg::Mem { size, nullable } => {
                    if *nullable && r.is_null_const() {
                        None
                    } else if r.ty == RegType::Ctx {
                        // check_mem_reg on the context reads and writes its fields.
                        let off = r.off + r.var_off.value as i32;
                        let ok = [false, true].iter().all(|&w| {
                            crate::prog::ctx_access(&crate::prog::CtxAccess {
                                prog_type: self.opts.prog_type,
                                attach: self.opts.expected_attach_type,
                                off,
                                size: *size as i32,
                                write: w,
                                ldsx: false,
                                privileged: self.privileged(),
                            })
                            .is_some()
                        });
                        (!ok).then(|| format!("invalid bpf_context access off={off} size={size}"))
                    } else {
                        let mut tmp = st.clone();
                        if r.maybe_null && *nullable {
                            tmp.reg_mut(regno).maybe_null = false;
                        }
                        let chk = self
                            .check_helper_mem(&mut tmp, regno, *size as i64, false)
                            .and_then(|_| {
                                self.check_helper_mem(&mut tmp, regno, *size as i64, true)
                            });
                        match chk {
                            Ok(()) if r.maybe_null && !*nullable => Some(format!(
                                "R{regno} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem",
                                r.ty.name(true)
                            )),
                            Ok(()) => {
                                *st = tmp;
                                None
                            }
                            Err((e, _)) => Some(e.reason().to_string()),
                        }
                    }
                }
            };
            if let Some(msg) = bad {
                if self.logging() {
                    self.log.push_str(&msg);
                    self.log.push('\n');
                }
                return self.err(invalid(invalid_args));
            }
        }
        if !self.global_called.contains(&sp) {
            self.global_called.push(sp);
        }
        // A global function that may change the packet (a helper that does,
        // or a tail call, anywhere below it) leaves no packet pointer valid.
        if self.subprog_changes_pkt(sp) {
            let privileged = self.privileged();
            st.for_each_reg(|r| {
                if r.points_into_packet() {
                    *r = if privileged {
                        Reg::unknown()
                    } else {
                        Reg::not_init()
                    };
                }
            });
        }
        if self.logging() && self.opts.log_level & 2 != 0 {
            self.log.push_str(&format!(
                "Func#{sp} ('{}') is global and assumed valid.\n",
                g.name
            ));
        }
        for r in 1..=5u8 {
            *st.reg_mut(r) = Reg::not_init();
            self.scratch_reg(r);
        }
        *st.reg_mut(0) = Reg::unknown();
        self.scratch_reg(0);
        Ok(Next::Go(pc + 1))
    }

    /// `changes_pkt_data` of a subprogram: it, or a function it calls, calls
    /// a helper that changes the packet or makes a tail call.
    fn subprog_changes_pkt(&self, sp: usize) -> bool {
        self.subprog_calls_any(sp, |d| {
            d.op == Op::Call
                && crate::helpers::proto(d.imm32())
                    .is_some_and(|p| matches!(p.effect, Effect::ChangesPkt | Effect::TailCall))
        })
    }

    /// Some call in subprogram `sp`, or in a subprogram it calls (directly or
    /// not), satisfies `pred`.
    pub(super) fn subprog_calls_any(&self, sp: usize, pred: impl Fn(&Decoded) -> bool) -> bool {
        let cfg = self.cfg();
        let mut seen = vec![false; cfg.subprogs.len()];
        let mut todo = vec![sp];
        while let Some(s) = todo.pop() {
            if std::mem::replace(&mut seen[s], true) {
                continue;
            }
            let start = cfg.subprogs[s];
            let end = cfg.subprogs.get(s + 1).copied().unwrap_or(cfg.dec.len());
            for pc in start..end {
                let Some(d) = cfg.dec[pc] else { continue };
                if d.op == Op::CallLocal {
                    todo.push(cfg.subprog_of[target(pc, &d) as usize]);
                } else if matches!(d.op, Op::Call | Op::CallKfunc) && pred(&d) {
                    return true;
                }
            }
        }
        false
    }

    /// `do_check_subprogs`: every global function a verified path called,
    /// from its entry, with its arguments as its prototype types them.
    pub(super) fn check_global_funcs(&mut self) -> Result<(), Fail> {
        let mut next = 0;
        while let Some(&sp) = self.global_called.get(next) {
            next += 1;
            let Some(g) = self.global_func(sp) else {
                continue;
            };
            let Ok(args) = g.args.clone() else {
                continue;
            };
            if self.logging() {
                self.log
                    .push_str(&format!("Validating {}() func#{sp}...\n", g.name));
            }
            let mut regs: [Reg; 11] = std::array::from_fn(|_| Reg::not_init());
            for (i, a) in args.iter().enumerate().take(5) {
                regs[i + 1] = match a {
                    crate::GlobalArg::Scalar => Reg::unknown(),
                    crate::GlobalArg::Ctx => Reg::ptr(RegType::Ctx),
                    crate::GlobalArg::Trusted { obj, nullable } => {
                        let mut r = Reg::ptr(RegType::BtfId);
                        r.kf.obj = *obj;
                        r.kf.flags = crate::kfuncs::KFI_TRUSTED;
                        if *nullable {
                            r.maybe_null = true;
                            r.id = self.new_id();
                        }
                        r
                    }
                    crate::GlobalArg::Mem { size, nullable } => {
                        let mut r = Reg::ptr(RegType::Mem);
                        r.mem_size = *size;
                        if *nullable {
                            r.maybe_null = true;
                            r.id = self.new_id();
                        }
                        r
                    }
                };
            }
            regs[10] = Reg::ptr(RegType::Stack);
            let st = State {
                frames: vec![Frame {
                    regs,
                    stack: Vec::new(),
                    callsite: usize::MAX,
                    subprog: sp,
                    callback: false,
                    cb_iters: 0,
                }],
                refs: Vec::new(),
                cb_unroll: 0,
                may_goto_depth: 0,
                active_lock: None,
                active_rcu_lock: false,
                active_preempt_lock: 0,
            };
            let entry = self.cfg().subprogs[sp];
            self.in_global = Some(sp);
            let r = self.do_check_from(entry, st);
            self.in_global = None;
            r?;
        }
        Ok(())
    }

    pub(super) fn check_exit(&mut self, st: &mut State) -> Result<(), Fail> {
        if st.frames.len() == 1 && st.active_lock.is_some() {
            return self.err(invalid("bpf_spin_unlock is missing"));
        }
        if st.frames.len() == 1 && st.active_rcu_lock {
            return self.err(invalid(
                "BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region",
            ));
        }
        if st.frames.len() == 1 && st.active_preempt_lock > 0 {
            let n = st.active_preempt_lock;
            return self.err(invalid(format!(
                "{n} bpf_preempt_enable{} missing",
                if n == 1 { " is" } else { "(s) are" }
            )));
        }
        // A global function verified on its own returns a scalar (only those
        // that return an integer or enum are called: see globalfn.rs).
        if st.frames.len() == 1 && self.in_global.and_then(|sp| self.global_func(sp)).is_some() {
            self.check_reg_read(st, 0)?;
            let r0 = st.reg(0).clone();
            if !r0.is_scalar() {
                return self.err(invalid(format!(
                    "At subprogram exit the register R0 is not a scalar value ({})",
                    r0.ty.name(r0.maybe_null)
                )));
            }
            if !st.refs.is_empty() {
                return self.err(VerifierError::Reference {
                    reason: "BPF_EXIT instruction in main prog would lead to reference leak".into(),
                });
            }
            return Ok(());
        }
        let frame = st.cur().clone();
        // A static subprogram may leave R0 unset (clang drops an unused return
        // value): only a caller that reads it is refused (`prepare_func_exit`).
        if st.frames.len() == 1 || frame.callback {
            self.check_reg_read(st, 0)?;
        }
        let r0 = st.reg(0).clone();
        if st.frames.len() > 1 {
            if frame.callback {
                if r0.is_scalar() {
                    self.mark_precise(st, 1);
                }
                if !r0.is_scalar() {
                    return self.err(unsafe_("R0 not a scalar value"));
                }
                if r0.smin < 0 || r0.smax > 1 {
                    return self.err(invalid(format!(
                        "At callback return the register R0 has{} should have been in [0, 1]",
                        super::ctx::scalar_bounds_text(&r0)
                    )));
                }
            } else if r0.ty == RegType::Stack && r0.frameno as usize == st.frames.len() - 1 {
                return self.err(invalid("cannot return stack pointer to the caller"));
            }
            return Ok(());
        }
        if !st.refs.is_empty() {
            if self.logging() {
                for &(id, at) in &st.refs {
                    self.log
                        .push_str(&format!("Unreleased reference id={id} alloc_insn={at}\n"));
                }
            }
            return self.err(VerifierError::Reference {
                reason: "BPF_EXIT instruction in main prog would lead to reference leak".into(),
            });
        }
        if self.is_pointer_value(&r0) {
            return self.err(unsafe_("R0 leaks addr as return value"));
        }
        self.check_return_code(st)
    }

    /// Pops a frame at a subprogram's exit; returns where the caller goes on.
    ///
    /// A callback's next iteration starts from the caller's state now; when
    /// bpf_loop runs it at most CB_BRUTE_FORCE times, the iterations are not
    /// widened (each is verified with its own values, as the kernel does).
    pub(super) fn return_from_call(
        &mut self,
        st: &mut State,
        pc: usize,
        parent: Option<usize>,
    ) -> Result<usize, Fail> {
        let callee = st.frames.pop().expect("more than one frame");
        let depth = st.frames.len();
        if self.logging() {
            let mut tmp = st.clone();
            tmp.frames.push(callee.clone());
            let s = self.state_str(&tmp, true);
            self.log.push_str(&format!("returning from callee:\n{s}\n"));
        }
        // Nothing may keep pointing into the popped frame.
        let privileged = self.privileged();
        st.for_each_reg(|r| {
            if r.ty == RegType::Stack && r.frameno as usize >= depth {
                *r = if privileged {
                    Reg::unknown()
                } else {
                    Reg::not_init()
                };
            }
        });
        let ret = callee.callsite + 1;
        if callee.callback {
            // Another iteration may follow: the callback runs again from its entry
            // with fresh arguments over the caller state as it is now.
            let mut again = st.clone();
            let mut f = callee.clone();
            let entry = self.cfg().subprogs[f.subprog];
            f.stack.clear();
            let init = self.callback_init.get(&callee.callsite).cloned();
            if let Some((regs, prev, limit)) = init.filter(|i| (f.cb_iters as u64) < i.2) {
                f.regs = (*regs).clone();
                f.cb_iters += 1;
                // widen_imprecise_scalars: what this iteration changed in its
                // callers (counters through the context pointer) and nothing
                // relied on becomes unknown, so iterations converge; what it
                // left alone stays. A few iterations are walked one by one.
                if limit > CB_BRUTE_FORCE {
                    super::kfunc::widen_imprecise(&prev, &mut again);
                }
                self.callback_init
                    .insert(callee.callsite, (regs, Box::new(again.clone()), limit));
                again.frames.push(f);
                again.cb_unroll = again.cb_unroll.wrapping_add(1);
                self.push_branch(again, entry, pc, parent)?;
            }
            // The caller's R0 is the helper's result; R1-R5 were clobbered.
            *st.reg_mut(0) = Reg::unknown();
        } else {
            *st.reg_mut(0) = callee.regs[0].clone();
        }
        for r in 1..=5u8 {
            *st.reg_mut(r) = Reg::not_init();
        }
        self.scratched_regs |= 1;
        if self.logging() {
            let s = self.state_str(st, true);
            self.log.push_str(&format!("to caller at {ret}:\n{s}\n"));
            if self.opts.log_level & 2 != 0 {
                self.log.push_str(&format!("\nfrom {pc} to {ret}:{s}\n"));
            }
            self.scratched_regs = 0;
            self.scratched_stack = 0;
        }
        let _ = mark_null;
        Ok(ret)
    }

    /// `check_max_stack_depth`: frames of a call chain share 512 bytes, each
    /// rounded up to 16 (the JIT's granularity; the host kernel JITs).
    pub(super) fn check_max_stack_depth(&mut self) -> Result<(), Fail> {
        let cfg = self.cfg();
        let n = cfg.subprogs.len();
        let mut callees: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
        for (pc, d) in cfg.dec.iter().enumerate() {
            if let Some(d) = d {
                if d.op == Op::CallLocal {
                    let t = target(pc, d) as usize;
                    callees[cfg.subprog_of[pc]].push((cfg.subprog_of[t], pc));
                }
            }
        }
        let frame = |d: u32| (d as usize).div_ceil(16) * 16;
        // Depth-first over call chains (the call graph is acyclic after check_cfg
        // unless the program recurses, which exploration already bounds).
        let mut stack: Vec<(usize, usize, usize)> = vec![(0, frame(self.stack_depth[0]), 1)];
        let mut seen = 0usize;
        while let Some((sp, total, calls)) = stack.pop() {
            seen += 1;
            if seen > 100_000 {
                break;
            }
            // The kernel counts the callee's frame before its stack.
            if calls > MAX_FRAMES {
                return Err((
                    too_complex(format!(
                        "the call stack of {} frames is too deep !",
                        calls - 1
                    )),
                    None,
                ));
            }
            if total > MAX_STACK as usize {
                return Err((
                    call_err(format!(
                        "combined stack size of {calls} calls is {total}. Too large"
                    )),
                    None,
                ));
            }
            for &(c, _) in &callees[sp] {
                stack.push((c, total + frame(self.stack_depth[c]), calls + 1));
            }
        }
        Ok(())
    }
}
