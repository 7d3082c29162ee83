//! Loads, stores and atomics (`check_mem_access`) per pointer type, and the
//! stack's slot tracking (spills, fills, STACK_MISC / STACK_ZERO bytes).

use super::*;

impl Verifier<'_> {
    /// Checks an access of `size` bytes at `regs[ptr_reg] + off`. For reads,
    /// returns the loaded value.
    /// A load from a frozen read-only map at a constant offset reads the
    /// value the program will see: the kernel folds it into a constant.
    fn rodata_const(
        &self,
        m: &crate::MapDesc,
        reg: &Reg,
        off: i64,
        size: i32,
        write: bool,
    ) -> Option<Reg> {
        if write
            || !m.frozen
            || m.map_flags & BPF_F_RDONLY_PROG == 0
            || m.map_type != crate::BPF_MAP_TYPE_ARRAY
            || m.max_entries != 1
            || !reg.var_off.is_const()
        {
            return None;
        }
        let data = m.frozen_data.as_ref()?;
        let start = usize::try_from(off).ok()?;
        let bytes = data.get(start..start.checked_add(size as usize)?)?;
        let mut v = [0u8; 8];
        v[..bytes.len()].copy_from_slice(bytes);
        Some(Reg::konst(u64::from_le_bytes(v)))
    }

    pub(super) fn check_mem_access(
        &mut self,
        st: &mut State,
        pc: usize,
        ptr_reg: u8,
        off: i32,
        size: i32,
        access: Access,
    ) -> Result<Option<Reg>, Fail> {
        let reg = st.reg(ptr_reg).clone();
        let write = matches!(access, Access::Write(..));
        let value_is_ptr = match &access {
            Access::Write(v, _) => self.is_pointer_value(v),
            Access::Read => false,
        };
        let value_reg = match &access {
            Access::Write(_, Some(r)) => *r,
            _ => 0,
        };
        let off_total = off as i64 + reg.off as i64;
        if reg.maybe_null
            || !reg.ty.is_ptr()
            || matches!(reg.ty, RegType::MapPtr | RegType::PacketEnd | RegType::Func)
        {
            let t = reg.ty.name(reg.maybe_null);
            return self.err(unsafe_(format!("R{ptr_reg} invalid mem access '{t}'")));
        }
        // Alignment is only enforced for the stack and context (strict alignment off).
        let result = match reg.ty {
            RegType::Stack => {
                let v = self.check_stack_access(st, ptr_reg, &reg, off, size, access)?;
                self.safe_mem[pc] = true;
                return Ok(v);
            }
            RegType::MapValue => {
                let m = self.map(reg.map).unwrap_or_default();
                if write && m.map_flags & BPF_F_RDONLY_PROG != 0 {
                    return self.err(unsafe_(format!(
                        "write into map forbidden, value_size={} off={} size={size}",
                        m.value_size, off_total
                    )));
                }
                if !write && m.map_flags & BPF_F_WRONLY_PROG != 0 {
                    return self.err(unsafe_(format!(
                        "read from map forbidden, value_size={} off={} size={size}",
                        m.value_size, off_total
                    )));
                }
                if value_is_ptr {
                    return self.err(unsafe_(format!("R{value_reg} leaks addr into map")));
                }
                self.check_region(
                    ptr_reg,
                    &reg,
                    off_total,
                    size,
                    m.value_size as i64,
                    "map value",
                )?;
                self.rodata_const(&m, &reg, off_total, size, write)
            }
            RegType::MapKey => {
                if write {
                    return self.err(unsafe_(format!("R{ptr_reg} cannot write into map_key")));
                }
                let m = self.map(reg.map).unwrap_or_default();
                self.check_region(ptr_reg, &reg, off_total, size, m.key_size as i64, "map key")?;
                None
            }
            RegType::RingbufMem => {
                if value_is_ptr {
                    return self.err(unsafe_(format!("R{value_reg} leaks addr into mem")));
                }
                self.check_region(
                    ptr_reg,
                    &reg,
                    off_total,
                    size,
                    reg.mem_size as i64,
                    "memory",
                )?;
                None
            }
            RegType::Packet | RegType::PacketMeta => {
                if write
                    && !matches!(
                        self.opts.prog_type,
                        BPF_PROG_TYPE_XDP | BPF_PROG_TYPE_SCHED_CLS | BPF_PROG_TYPE_SCHED_ACT
                    )
                {
                    return self.err(unsafe_("cannot write into packet"));
                }
                if value_is_ptr {
                    return self.err(unsafe_(format!("R{value_reg} leaks addr into packet")));
                }
                if reg.smin < 0 {
                    return self.err(unsafe_(format!(
                        "R{ptr_reg} min value is negative, either use unsigned index or do a if (index >=0) check."
                    )));
                }
                if off_total < 0 || off_total + size as i64 > reg.range as i64 {
                    if self.logging() {
                        self.log.push_str(&format!(
                            "invalid access to packet, off={off_total} size={size}, R{ptr_reg}(id={},off={off_total},r={})\n",
                            reg.id, reg.range
                        ));
                    }
                    return self.err(unsafe_(format!(
                        "R{ptr_reg} offset is outside of the packet"
                    )));
                }
                None
            }
            RegType::Ctx => {
                if !reg.is_const() {
                    let t = reg.var_off.text();
                    return self.err(unsafe_(format!(
                        "variable ctx access var_off={t} disallowed"
                    )));
                }
                if value_is_ptr {
                    return self.err(unsafe_(format!("R{value_reg} leaks addr into ctx")));
                }
                if reg.off != 0 {
                    return self.err(unsafe_(format!(
                        "dereference of modified ctx ptr R{ptr_reg} off={} disallowed",
                        reg.off
                    )));
                }
                match ctx_access(
                    self.opts.prog_type,
                    self.opts.expected_attach_type,
                    off,
                    size,
                    write,
                ) {
                    None => {
                        return self.err(unsafe_(format!(
                            "invalid bpf_context access off={off} size={size}"
                        )));
                    }
                    // `skb->sk`: a socket, or NULL.
                    Some(CtxField::Ptr(RegType::SockCommon)) => {
                        let mut r = Reg::ptr(RegType::SockCommon);
                        r.maybe_null = true;
                        r.id = self.new_id();
                        Some(r)
                    }
                    Some(CtxField::Ptr(t)) => Some(Reg::ptr(t)),
                    Some(CtxField::Scalar) => None,
                }
            }
            // Kfunc results: kernel objects (never proven: probe reads).
            RegType::BtfId => return self.check_btf_access(ptr_reg, &reg, off_total, size, write),
            // Sockets: `struct bpf_sock` and friends, read only, never proven
            // (bpfvm's runs have no sockets to point at).
            t if t.is_sock() => {
                let name = t.name(false);
                if write {
                    return self.err(unsafe_(format!("R{ptr_reg} cannot write into {name}")));
                }
                if reg.smin < 0 {
                    return self.err(unsafe_(format!("R{ptr_reg} min value is negative, either use unsigned index or do a if (index >=0) check.")));
                }
                let at = off_total
                    + if reg.is_const() {
                        reg.var_off.value as i64
                    } else {
                        -1
                    };
                let ok = reg.is_const()
                    && i32::try_from(at)
                        .is_ok_and(|o| crate::maphelpers::sock_access_ok(t, o, size));
                if !ok {
                    return self.err(unsafe_(format!(
                        "R{ptr_reg} invalid {name} access off={off} size={size}"
                    )));
                }
                return Ok(Some(Reg::unknown().clone_low(size)));
            }
            RegType::Mem => {
                if write && reg.kf.flags & crate::kfuncs::KFI_RDONLY != 0 {
                    return self.err(unsafe_(format!("R{ptr_reg} cannot write into rdonly_mem")));
                }
                if value_is_ptr {
                    return self.err(unsafe_(format!("R{value_reg} leaks addr into mem")));
                }
                self.check_region(
                    ptr_reg,
                    &reg,
                    off_total,
                    size,
                    reg.mem_size as i64,
                    "memory",
                )?;
                None
            }
            _ => {
                let t = reg.ty.name(reg.maybe_null);
                return self.err(unsafe_(format!("R{ptr_reg} invalid mem access '{t}'")));
            }
        };
        self.safe_mem[pc] = true;
        if write {
            return Ok(None);
        }
        Ok(Some(match result {
            Some(p) => p,
            None => Reg::unknown().clone_low(size),
        }))
    }

    /// `check_mem_region_access` + `__check_mem_access` for sized regions:
    /// both ends of the variable part must keep the access inside.
    pub(super) fn check_region(
        &mut self,
        regno: u8,
        reg: &Reg,
        off: i64,
        size: i32,
        mem_size: i64,
        what: &str,
    ) -> Result<(), Fail> {
        let bad = |o: i64| o < 0 || o + size as i64 > mem_size || size == 0;
        let msg = |o: i64| match what {
            "map value" => {
                format!("invalid access to map value, value_size={mem_size} off={o} size={size}")
            }
            "map key" => {
                format!("invalid access to map key, key_size={mem_size} off={o} size={size}")
            }
            _ => format!("invalid access to memory, mem_size={mem_size} off={o} size={size}"),
        };
        if reg.smin < 0 && (reg.smin == i64::MIN || reg.smin + off < 0) {
            return self.err(unsafe_(format!(
                "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
            )));
        }
        if bad(reg.smin + off) {
            if self.logging() {
                self.log.push_str(&msg(reg.smin + off));
                self.log.push('\n');
            }
            return self.err(unsafe_(format!(
                "R{regno} min value is outside of the allowed memory range"
            )));
        }
        if reg.umax >= MAX_VAR_OFF as u64 {
            return self.err(unsafe_(format!(
                "R{regno} unbounded memory access, make sure to bounds check any such access"
            )));
        }
        if bad(reg.umax as i64 + off) {
            if self.logging() {
                self.log.push_str(&msg(reg.umax as i64 + off));
                self.log.push('\n');
            }
            return self.err(unsafe_(format!(
                "R{regno} max value is outside of the allowed memory range"
            )));
        }
        Ok(())
    }

    /// The frame a stack pointer points into.
    fn stack_frame(st: &State, reg: &Reg) -> usize {
        (reg.frameno as usize).min(st.frames.len() - 1)
    }

    pub(super) fn record_depth(&mut self, st: &State, frame: usize, lowest: i64) {
        let sp = st.frames[frame].subprog;
        let d = (-lowest).max(0) as u32;
        if self.stack_depth[sp] < d {
            self.stack_depth[sp] = d;
        }
    }

    fn check_stack_access(
        &mut self,
        st: &mut State,
        regno: u8,
        reg: &Reg,
        off: i32,
        size: i32,
        access: Access,
    ) -> Result<Option<Reg>, Fail> {
        let write = matches!(access, Access::Write(..));
        let kind = if write { " write to" } else { " read from" };
        let fi = Self::stack_frame(st, reg);
        if !reg.is_const() {
            return self.check_var_stack(st, fi, regno, reg, off, size, kind, &access);
        }
        let addr = off as i64 + reg.off as i64 + reg.var_off.value as i64;
        if addr < -MAX_STACK || addr + size as i64 > 0 || size <= 0 {
            return self.err(unsafe_(format!(
                "invalid{kind} stack R{regno} off={addr} size={size}"
            )));
        }
        if addr % size as i64 != 0 {
            let var = if reg.is_const() {
                (reg.var_off.value as i64).to_string()
            } else {
                reg.var_off.text()
            };
            return self.err(unsafe_(format!(
                "misaligned stack access off {var}+{}+{off} size {size}",
                reg.off
            )));
        }
        self.record_depth(st, fi, addr);
        let spi = ((-addr - 1) / 8) as usize;
        if spi < 64 {
            self.scratched_stack |= 1 << spi;
        }
        match access {
            Access::Write(val, src) => {
                self.stack_write(st, fi, addr, size, val, src)?;
                Ok(None)
            }
            Access::Read => self.stack_read(st, fi, regno, addr, size).map(Some),
        }
    }

    fn stack_write(
        &mut self,
        st: &mut State,
        fi: usize,
        addr: i64,
        size: i32,
        val: Reg,
        src_reg: Option<u8>,
    ) -> Result<(), Fail> {
        let spi = ((-addr - 1) / 8) as usize;
        let privileged = self.privileged();
        let st_reg_id = src_reg.map(|r| st.reg(r).id).unwrap_or(0);
        let links = size == 8 && addr % 8 == 0 && val.is_scalar() && !val.is_const();
        let new_id = if links && src_reg.is_some() && st_reg_id == 0 {
            self.new_id()
        } else {
            0
        };
        let mut link: Option<(u8, u32)> = None;
        let frame = &mut st.frames[fi];
        let slot = frame.slot_mut(spi);
        let first_k = ((-addr - 1) % 8) as usize; // highest k written
        let ks: Vec<usize> = (0..size as usize).map(|i| first_k - i).collect();
        let had_spill = slot.ty.contains(&STACK_SPILL);
        if had_spill && slot.spill.ty.is_ptr() && !privileged && size != 8 {
            return Err((
                unsafe_("attempt to corrupt spilled pointer on stack"),
                Some(self.cur_insn),
            ));
        }
        let aligned = addr % 8 == 0;
        if val.ty.is_ptr() {
            if size == 8 && aligned {
                slot.ty = [STACK_SPILL; 8];
                slot.spill = val;
                return Ok(());
            }
            if !privileged {
                return Err((
                    unsafe_("invalid size of register spill"),
                    Some(self.cur_insn),
                ));
            }
            // A partial pointer store is just bytes.
            if had_spill {
                for t in slot.ty.iter_mut() {
                    if *t == STACK_SPILL {
                        *t = STACK_MISC;
                    }
                }
            }
            for k in ks {
                slot.ty[k] = STACK_MISC;
            }
            return Ok(());
        }
        if aligned && (privileged || size == 8) {
            // (Partial) spill of a scalar: the bytes remember the register.
            if had_spill && size != 8 {
                for t in slot.ty.iter_mut() {
                    if *t == STACK_SPILL {
                        *t = STACK_MISC;
                    }
                }
            }
            for k in &ks {
                slot.ty[*k] = STACK_SPILL;
            }
            slot.spill = val.clone_low(size);
            // A full spill of an unknown scalar stays linked to its register.
            if size == 8 && slot.spill.is_scalar() && !slot.spill.is_const() {
                if let Some(src) = src_reg {
                    if st_reg_id == 0 {
                        let id = new_id;
                        slot.spill.id = id;
                        link = Some((src, id));
                    } else {
                        slot.spill.id = st_reg_id;
                    }
                }
            }
            if let Some((r, id)) = link {
                st.reg_mut(r).id = id;
            }
            return Ok(());
        }
        if had_spill {
            for t in slot.ty.iter_mut() {
                if *t == STACK_SPILL {
                    *t = STACK_MISC;
                }
            }
        }
        let t = if val.is_null_const() {
            STACK_ZERO
        } else {
            STACK_MISC
        };
        for k in ks {
            slot.ty[k] = t;
        }
        Ok(())
    }

    fn stack_read(
        &mut self,
        st: &mut State,
        fi: usize,
        regno: u8,
        addr: i64,
        size: i32,
    ) -> Result<Reg, Fail> {
        let spi = ((-addr - 1) / 8) as usize;
        let first_k = ((-addr - 1) % 8) as usize;
        let privileged = self.privileged();
        let frame = &st.frames[fi];
        // Below the deepest slot this frame ever wrote: the kernel words it
        // by register and offset rather than by byte.
        if !privileged && frame.slot(spi).is_none() {
            return self.err(unsafe_(format!(
                "invalid read from stack R{regno} off={addr} size={size}"
            )));
        }
        let empty = Slot::default();
        let slot = frame.slot(spi).unwrap_or(&empty);
        let ks: Vec<usize> = (0..size as usize).map(|i| first_k - i).collect();
        let all_spill = ks.iter().all(|&k| slot.ty[k] == STACK_SPILL);
        let spill_bytes = slot.ty.iter().filter(|&&t| t == STACK_SPILL).count();
        if all_spill && addr % 8 == 0 && spill_bytes == size as usize {
            return Ok(slot.spill.clone());
        }
        if ks.iter().any(|&k| slot.ty[k] == STACK_SPILL) && slot.spill.ty.is_ptr() {
            if !privileged {
                return self.err(unsafe_("invalid size of register fill"));
            }
            return Ok(Reg::unknown().clone_low(size));
        }
        let mut zero = true;
        for (i, &k) in ks.iter().enumerate() {
            match slot.ty[k] {
                STACK_ZERO => {}
                STACK_SPILL if slot.spill.is_null_const() => {}
                STACK_INVALID if !privileged => {
                    return self.err(unsafe_(format!(
                        "invalid read from stack off {addr}+{i} size {size}"
                    )));
                }
                // Iterators and dynptrs are not readable as bytes.
                kfunc::STACK_ITER | kfunc::STACK_DYNPTR => {
                    return self.err(unsafe_(format!(
                        "invalid read from stack off {addr}+{i} size {size}"
                    )));
                }
                _ => zero = false,
            }
        }
        let _ = regno;
        if zero {
            return Ok(Reg::konst(0));
        }
        Ok(Reg::unknown().clone_low(size))
    }

    #[allow(clippy::too_many_arguments)]
    fn check_var_stack(
        &mut self,
        st: &mut State,
        fi: usize,
        regno: u8,
        reg: &Reg,
        off: i32,
        size: i32,
        kind: &str,
        access: &Access,
    ) -> Result<Option<Reg>, Fail> {
        if !self.privileged() {
            return self.err(unsafe_(format!(
                "R{regno} variable stack access prohibited for !root, var_off={} off={off}",
                reg.var_off.text()
            )));
        }
        if reg.smin == i64::MIN || reg.smax >= MAX_VAR_OFF || reg.smin <= -MAX_VAR_OFF {
            return self.err(unsafe_(format!(
                "invalid unbounded variable-offset{kind} stack R{regno}"
            )));
        }
        let lo = reg.smin + reg.off as i64 + off as i64;
        let hi = reg.smax + reg.off as i64 + off as i64 + size as i64;
        if lo < -MAX_STACK || hi > 0 {
            return self.err(unsafe_(format!(
                "invalid variable-offset{kind} stack R{regno} var_off={} off={} size={size}",
                reg.var_off.text(),
                off as i64 + reg.off as i64
            )));
        }
        self.record_depth(st, fi, lo);
        let frame = &mut st.frames[fi];
        match access {
            Access::Write(val, _) => {
                if self.is_pointer_value(val) {
                    return Err((
                        unsafe_(format!("R{regno} leaks addr into stack")),
                        Some(self.cur_insn),
                    ));
                }
                // Any byte in range may be written: they all become STACK_MISC.
                for a in lo..hi {
                    let spi = ((-a - 1) / 8) as usize;
                    let k = ((-a - 1) % 8) as usize;
                    let slot = frame.slot_mut(spi);
                    if slot.ty.contains(&STACK_SPILL) {
                        for t in slot.ty.iter_mut() {
                            if *t == STACK_SPILL {
                                *t = STACK_MISC;
                            }
                        }
                    }
                    slot.ty[k] = STACK_MISC;
                }
                Ok(None)
            }
            Access::Read => Ok(Some(Reg::unknown().clone_low(size))),
        }
    }

    pub(super) fn check_atomic(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
    ) -> Result<(), Fail> {
        self.check_reg_read(st, d.src)?;
        self.check_reg_read(st, d.dst)?;
        let size = d.op.mem_size() as i32;
        let imm = d.imm32();
        let ptr = st.reg(d.dst).clone();
        if matches!(ptr.ty, RegType::Ctx | RegType::Packet | RegType::PacketMeta) {
            let t = ptr.ty.name(false);
            return self.err(unsafe_(format!(
                "BPF_ATOMIC stores into R{} {t} is not allowed",
                d.dst
            )));
        }
        if imm == BPF_CMPXCHG {
            self.check_reg_read(st, 0)?;
            if self.is_pointer_value(st.reg(0)) {
                return self.err(unsafe_("R0 leaks addr into mem"));
            }
        }
        let src = st.reg(d.src).clone();
        if self.is_pointer_value(&src) {
            return self.err(unsafe_(format!("R{} leaks addr into mem", d.src)));
        }
        // Atomics on stack slots holding pointers would corrupt them.
        let old = self.check_mem_access(st, pc, d.dst, d.off as i32, size, Access::Read)?;
        if old.as_ref().is_some_and(|r| r.ty.is_ptr()) && !self.privileged() {
            return self.err(unsafe_(format!("R{} leaks addr into mem", d.dst)));
        }
        self.check_mem_access(
            st,
            pc,
            d.dst,
            d.off as i32,
            size,
            Access::Write(Reg::unknown(), Some(d.src)),
        )?;
        let fetched = || {
            if size == 4 {
                Reg::bounded(u32::MAX as u64)
            } else {
                Reg::unknown()
            }
        };
        if imm == BPF_CMPXCHG {
            self.check_reg_write(0)?;
            *st.reg_mut(0) = fetched();
        } else if imm & BPF_FETCH != 0 {
            self.check_reg_write(d.src)?;
            *st.reg_mut(d.src) = fetched();
        }
        Ok(())
    }

    pub(super) fn check_ld_imm64(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
    ) -> Result<(), Fail> {
        self.check_reg_write(d.dst)?;
        let r = match d.src {
            0 => Reg::konst(d.imm as u64),
            BPF_PSEUDO_MAP_FD | BPF_PSEUDO_MAP_VALUE => {
                let id = d.imm32() as u32;
                let Some(m) = self.map(id) else {
                    return self.err(call_err(format!(
                        "fd {} is not pointing to valid bpf_map",
                        d.imm32()
                    )));
                };
                if d.src == BPF_PSEUDO_MAP_FD {
                    let mut r = Reg::ptr(RegType::MapPtr);
                    r.map = id;
                    r
                } else {
                    let off = d.imm_hi() as u32;
                    if m.map_type != BPF_MAP_TYPE_ARRAY || m.max_entries != 1 {
                        return self.err(call_err("map does not support direct value access"));
                    }
                    if off >= m.value_size {
                        return self.err(invalid(format!(
                            "invalid access to map value pointer, value_size={} off={off}",
                            m.value_size
                        )));
                    }
                    let mut r = Reg::ptr(RegType::MapValue);
                    r.map = id;
                    r.off = off as i32;
                    r
                }
            }
            BPF_PSEUDO_FUNC => {
                // Callbacks need BTF: the kernel checks their linkage.
                let t = target(pc, d) as u32;
                if self.opts.func_info.is_empty() {
                    return self.err(VerifierError::Invalid {
                        reason: "missing btf func_info".into(),
                    });
                }
                if self.opts.global_funcs.iter().any(|g| g.insn_idx == t) {
                    return self.err(VerifierError::Invalid {
                        reason: "callback function not static".into(),
                    });
                }
                let mut r = Reg::ptr(RegType::Func);
                r.subprog = target(pc, d) as u32;
                r
            }
            _ => {
                return self.err(VerifierError::BadInsn {
                    reason: "unrecognized bpf_ld_imm64 insn".into(),
                })
            }
        };
        *st.reg_mut(d.dst) = r;
        Ok(())
    }

    pub(super) fn check_ld_abs(&mut self, st: &mut State, d: &Decoded) -> Result<(), Fail> {
        if !matches!(
            self.opts.prog_type,
            BPF_PROG_TYPE_SOCKET_FILTER | BPF_PROG_TYPE_SCHED_CLS | BPF_PROG_TYPE_SCHED_ACT
        ) {
            return self.err(invalid(
                "BPF_LD_[ABS|IND] instructions not allowed for this program type",
            ));
        }
        if st.frames.len() > 1 {
            return self.err(unsafe_(
                "BPF_LD_[ABS|IND] instructions cannot be mixed with bpf-to-bpf calls",
            ));
        }
        if !st.refs.is_empty() {
            return self.err(VerifierError::Reference {
                reason: "BPF_LD_[ABS|IND] cannot be mixed with socket references".into(),
            });
        }
        self.check_reg_read(st, 6)?;
        if d.op.shape() == Shape::LdInd {
            self.check_reg_read(st, d.src)?;
            if st.reg(d.src).ty.is_ptr() {
                return self.err(unsafe_(format!("R{} leaks addr into packet", d.src)));
            }
        }
        if st.reg(6).ty != RegType::Ctx {
            return self.err(unsafe_(
                "at the time of BPF_LD_ABS|IND R6 != pointer to skb",
            ));
        }
        for r in 1..=5 {
            *st.reg_mut(r) = Reg::not_init();
            self.scratch_reg(r);
        }
        self.scratch_reg(0);
        let size = d.op.mem_size() as i32;
        *st.reg_mut(0) = Reg::unknown().clone_low(size);
        Ok(())
    }
}
