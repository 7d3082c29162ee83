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
        let atomic = matches!(
            self.dec(pc).op.shape(),
            Shape::Atomic | Shape::LoadAcq | Shape::StoreRel
        );
        self.check_ptr_alignment(&reg, off, size, atomic)?;
        if reg.ty == RegType::MapPtr && !reg.maybe_null {
            return self.check_map_ptr_mem(ptr_reg, &reg, off, size, write);
        }
        if reg.maybe_null
            || !reg.ty.is_ptr()
            || matches!(reg.ty, RegType::MapPtr | RegType::PacketEnd | RegType::Func)
        {
            let t = reg.ty.name(reg.maybe_null);
            return self.err(unsafe_(format!("R{ptr_reg} invalid mem access '{t}'")));
        }
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
                let in_rcu = self.in_rcu_cs(st);
                if let Some(kptr) = self.check_map_value_fields(
                    &m,
                    &reg,
                    off_total,
                    size as i64,
                    Some((&access, atomic, in_rcu)),
                )? {
                    return Ok(Some(kptr));
                }
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
                if write && !may_access_pkt(self.opts.prog_type, true, None) {
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
                if value_is_ptr {
                    return self.err(unsafe_(format!("R{value_reg} leaks addr into ctx")));
                }
                let ldsx = self.cfg().dec[pc].is_some_and(|d| d.op.code() & 0xe0 == BPF_MEMSX);
                self.check_ctx_mem(ptr_reg, &reg, off, size, write, ldsx)?
            }
            RegType::FlowKeys => {
                if value_is_ptr {
                    return self.err(unsafe_(format!("R{value_reg} leaks addr into flow keys")));
                }
                self.check_flow_keys(&reg, off, size)?;
                None
            }
            // Kfunc results: kernel objects (never proven: probe reads).
            RegType::BtfId => {
                let in_rcu = self.in_rcu_cs(st);
                return self.check_btf_access(ptr_reg, &reg, off_total, size, write, in_rcu);
            }
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
            // `check_tp_buffer_access`: any constant offset from 0 up; the
            // kernel checks the furthest one against the tracepoint's buffer
            // when the program is attached. bpfvm has no writable
            // tracepoints to attach to, so it refuses what the kernel leaves
            // to the attach.
            RegType::TpBuffer => {
                if off_total < 0 {
                    return self.err(unsafe_(format!(
                        "R{ptr_reg} invalid tracepoint buffer access: off={off_total}, size={size}"
                    )));
                }
                if !reg.is_const() || reg.var_off.value != 0 {
                    return self.err(unsafe_(format!(
                        "R{ptr_reg} invalid variable buffer offset: off={off_total}, var_off={}",
                        reg.var_off.text()
                    )));
                }
                return self.err(unsafe_(format!(
                    "bpfvm does not model the tracepoint buffer (R{ptr_reg} off={off_total} size={size}) yet"
                )));
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

    /// `check_ptr_alignment`: the stack is always strict (spill tracking
    /// relies on it), atomics are strict (`strict_once`), everything else
    /// only under BPF_F_STRICT_ALIGNMENT; packet offsets count NET_IP_ALIGN.
    pub(super) fn check_ptr_alignment(
        &mut self,
        reg: &Reg,
        off: i32,
        size: i32,
        strict_once: bool,
    ) -> Result<(), Fail> {
        let flags = self.opts.prog_flags;
        let mut strict = (flags & BPF_F_STRICT_ALIGNMENT != 0 && flags & BPF_F_ANY_ALIGNMENT == 0)
            || strict_once;
        let desc = match reg.ty {
            RegType::Packet | RegType::PacketMeta => "packet ",
            RegType::MapKey => "key ",
            RegType::MapValue => "value ",
            RegType::Ctx => "context ",
            RegType::Stack => {
                strict = true;
                "stack "
            }
            _ => "",
        };
        if !strict || size <= 1 {
            return Ok(());
        }
        let ip_align = if reg.ty.is_pkt() { 2 } else { 0 };
        let total = reg
            .var_off
            .add(Tnum::konst((ip_align + reg.off as i64 + off as i64) as u64));
        if (total.value | total.mask) & (size as u64 - 1) == 0 {
            return Ok(());
        }
        let var = if reg.var_off.is_const() {
            (reg.var_off.value as i64).to_string()
        } else {
            reg.var_off.text()
        };
        let at = if reg.ty.is_pkt() {
            format!("{ip_align}+{var}")
        } else {
            var
        };
        self.err(unsafe_(format!(
            "misaligned {desc}access off {at}+{}+{off} size {size}",
            reg.off
        )))
    }

    /// `save_aux_ptr_type`: a load or store instruction uses one kind of
    /// pointer on every path when either kind is the context (the kernel
    /// rewrites context accesses per instruction).
    pub(super) fn save_aux_ptr_type(&mut self, ty: RegType) -> Result<(), Fail> {
        let pc = self.cur_insn;
        match self.insn_aux[pc].ptr_type {
            None => self.insn_aux[pc].ptr_type = Some(ty),
            Some(prev) if prev != ty && (prev == RegType::Ctx || ty == RegType::Ctx) => {
                return Err((
                    invalid("same insn cannot be used with different pointers"),
                    Some(pc),
                ));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// A helper's zero-sized stack argument still has to point into the
    /// stack (`check_stack_access_within_bounds` with size 0).
    pub(super) fn check_zero_sized_stack(
        &mut self,
        st: &State,
        regno: u8,
        write: bool,
    ) -> Result<(), Fail> {
        let r = st.reg(regno).clone();
        let kind = if write { " write to" } else { " read from" };
        let off = r.off as i64;
        let (lo, hi) = if r.is_const() {
            let a = off + r.var_off.value as i64;
            (a, a)
        } else {
            if r.smax >= MAX_VAR_OFF || r.smin <= -MAX_VAR_OFF {
                return self.err(unsafe_(format!(
                    "invalid unbounded variable-offset{kind} stack R{regno}"
                )));
            }
            (r.smin + off, r.smax + off)
        };
        if lo < -MAX_STACK || hi > 0 {
            if r.is_const() {
                return self.err(unsafe_(format!(
                    "invalid{kind} stack R{regno} off={off} size=0"
                )));
            }
            return self.err(unsafe_(format!(
                "invalid variable-offset{kind} stack R{regno} var_off={} off={off} size=0",
                r.var_off.text()
            )));
        }
        if !r.is_const() && !self.privileged() {
            return self.err(unsafe_(format!(
                "R{regno} variable offset stack access prohibited for !root, var_off={}",
                r.var_off.text()
            )));
        }
        Ok(())
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

    pub(super) fn check_stack_access(
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
        self.record_depth(st, fi, addr);
        self.fastcall_contract(st.frames[fi].subprog, addr);
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

    /// `check_stack_write_fixed_off`: an aligned 8-byte store of a pointer,
    /// or (privileged) an 8-byte-aligned store of a scalar, is a spill the
    /// slot remembers; anything else leaves STACK_MISC / STACK_ZERO bytes.
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
        let d = self.dec(self.cur_insn);
        let is_st = d.op.shape() == Shape::St;
        // Atomics write memory without a register value.
        let reg = if matches!(d.op.shape(), Shape::Stx | Shape::StoreRel) {
            Some(val)
        } else {
            None
        };
        let cur_frame = st.frames.len() - 1;
        let first_k = ((-addr - 1) % 8) as usize; // highest k written
        let ks: Vec<usize> = (0..size as usize).map(|i| first_k - i).collect();
        {
            let slot = st.frames[fi].slot_mut(spi);
            if !privileged && slot.ty[7] == STACK_SPILL && !slot.spill.is_scalar() && size != 8 {
                return self.err(unsafe_("attempt to corrupt spilled pointer on stack"));
            }
        }
        // A write into a dynptr ends it (both of its slots).
        self.destroy_dynptr(st, fi, spi)?;
        let aligned = addr % 8 == 0;
        let spill = match &reg {
            Some(v) if aligned && v.is_scalar() && privileged => {
                let mut v = v.clone();
                // The copy on the stack is linked to its register when it
                // holds the whole value.
                let fits = 64 - v.umax.leading_zeros() <= 8 * size as u32;
                if fits && v.id == 0 && !v.is_const() {
                    if let Some(r) = src_reg {
                        let id = self.new_id();
                        st.reg_mut(r).id = id;
                        v.id = id;
                    }
                }
                if !fits {
                    v.id = 0;
                }
                Some(v)
            }
            None if aligned && is_st && privileged => Some(Reg::konst(d.imm as u64)),
            Some(v) if v.ty.is_ptr() => {
                if size != 8 {
                    return self.err(unsafe_("invalid size of register spill"));
                }
                if fi != cur_frame && v.ty == RegType::Stack {
                    return self.err(invalid(
                        "cannot spill pointers to stack into stack frame of the caller",
                    ));
                }
                Some(v.clone())
            }
            _ => None,
        };
        let slot = st.frames[fi].slot_mut(spi);
        if let Some(v) = spill {
            // `save_register_state`: the written bytes hold the spill; the
            // rest of the slot keeps only what a byte-wise read may use.
            slot.spill = v;
            for (k, t) in slot.ty.iter_mut().enumerate() {
                if k >= 8 - size as usize {
                    *t = STACK_SPILL;
                } else if *t != STACK_ZERO && *t != STACK_INVALID {
                    *t = STACK_MISC;
                }
            }
            return Ok(());
        }
        // A plain data store destroys any spill (or iterator) in the slot.
        if slot.ty[7] == STACK_SPILL || slot.ty[0] == kfunc::STACK_ITER {
            for t in slot.ty.iter_mut() {
                if *t != STACK_INVALID {
                    *t = STACK_MISC;
                }
            }
        }
        slot.spill = Reg::not_init();
        let zero = match &reg {
            Some(v) => v.is_null_const(),
            None => is_st && d.imm == 0,
        };
        let t = if zero { STACK_ZERO } else { STACK_MISC };
        for k in ks {
            slot.ty[k] = t;
        }
        if zero {
            // STACK_ZERO stands for the register's value: keep it exact.
            if let Some(r) = src_reg.filter(|_| reg.is_some()) {
                self.mark_precise(st, 1 << r);
            }
        }
        Ok(())
    }

    /// `check_stack_read_fixed_off`.
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
        let slot = frame.slot(spi).unwrap_or(&empty).clone();
        let ks: Vec<usize> = (0..size as usize).map(|i| first_k - i).collect();
        let byte_check = |this: &Self| -> Result<(usize, usize), Fail> {
            let (mut spill_cnt, mut zero_cnt) = (0, 0);
            for (i, &k) in ks.iter().enumerate() {
                match slot.ty[k] {
                    STACK_SPILL => spill_cnt += 1,
                    STACK_ZERO => zero_cnt += 1,
                    STACK_MISC => {}
                    // Iterators and dynptrs are not readable as bytes.
                    kfunc::STACK_ITER | kfunc::STACK_DYNPTR => {
                        return this.err(unsafe_(format!(
                            "invalid read from stack off {addr}+{i} size {size}"
                        )))
                    }
                    _ if privileged => {}
                    _ => {
                        return this.err(unsafe_(format!(
                            "invalid read from stack off {addr}+{i} size {size}"
                        )))
                    }
                }
            }
            Ok((spill_cnt, zero_cnt))
        };
        if slot.ty[7] == STACK_SPILL {
            let spill_size = 1 + slot.ty[..7]
                .iter()
                .rev()
                .take_while(|&&t| t == STACK_SPILL)
                .count();
            if size == 8 && spill_size == 8 {
                return Ok(slot.spill.clone());
            }
            if !slot.spill.is_scalar() {
                return self.err(unsafe_("invalid size of register fill"));
            }
            if size as usize <= spill_size && addr % 8 == 0 {
                // A narrowing fill of the spilled value's low bytes.
                let width = 64 - slot.spill.umax.leading_zeros();
                let mut v = slot.spill.clone_low(size);
                v.id = if width <= 8 * size as u32 {
                    slot.spill.id
                } else {
                    0
                };
                return Ok(v);
            }
            let (spill_cnt, zero_cnt) = byte_check(self)?;
            if (spill_cnt == size as usize && slot.spill.is_null_const())
                || zero_cnt == size as usize
            {
                return Ok(Reg::konst(0));
            }
            return Ok(Reg::unknown().clone_low(size));
        }
        let (_, zero_cnt) = byte_check(self)?;
        if zero_cnt == size as usize {
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
        if matches!(access, Access::Write(..)) {
            // Every slot the write may touch loses its dynptr.
            for a in lo..hi {
                self.destroy_dynptr(st, fi, ((-a - 1) / 8) as usize)?;
            }
        }
        self.record_depth(st, fi, lo);
        self.fastcall_contract(st.frames[fi].subprog, lo);
        let frame = &mut st.frames[fi];
        match access {
            Access::Write(val, _) => {
                if self.is_pointer_value(val) {
                    return Err((
                        unsafe_(format!("R{regno} leaks addr into stack")),
                        Some(self.cur_insn),
                    ));
                }
                // Any byte in range may be written: they all become STACK_MISC,
                // but a zero written where zero is kept stays zero (a zero
                // byte, a spilled constant 0).
                let writing_zero = val.is_const() && val.var_off.value == 0;
                let mut zero_used = false;
                for a in lo..hi {
                    let spi = ((-a - 1) / 8) as usize;
                    let k = ((-a - 1) % 8) as usize;
                    let slot = frame.slot_mut(spi);
                    let t = slot.ty[k];
                    if writing_zero
                        && t == STACK_SPILL
                        && slot.spill.is_scalar()
                        && slot.spill.is_const()
                        && slot.spill.var_off.value == 0
                    {
                        zero_used = true;
                        continue;
                    }
                    if slot.ty.contains(&STACK_SPILL) {
                        for t in slot.ty.iter_mut() {
                            if *t == STACK_SPILL {
                                *t = STACK_MISC;
                            }
                        }
                    }
                    slot.ty[k] = if writing_zero && t == STACK_ZERO {
                        zero_used = true;
                        STACK_ZERO
                    } else {
                        STACK_MISC
                    };
                }
                if let (true, Access::Write(_, Some(r))) = (zero_used, access) {
                    self.mark_precise(st, 1 << *r);
                }
                Ok(None)
            }
            Access::Read => {
                // Any byte may be read: none may belong to a dynptr or an
                // iterator (check_stack_range_initialized).
                for a in lo..hi {
                    let t = frame
                        .slot(((-a - 1) / 8) as usize)
                        .map_or(STACK_INVALID, |s| s.ty[((-a - 1) % 8) as usize]);
                    if t == kfunc::STACK_DYNPTR || t == kfunc::STACK_ITER {
                        return Err((
                            unsafe_(format!(
                                "invalid read from stack R{regno} var_off {}+{} size {size}",
                                reg.var_off.text(),
                                a - lo
                            )),
                            Some(self.cur_insn),
                        ));
                    }
                }
                Ok(Some(Reg::unknown().clone_low(size)))
            }
        }
    }

    /// `check_atomic_load`: a load (`check_load_mem`, alignment strict), then
    /// the pointer types atomics may not use.
    pub(super) fn check_load_acquire(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
    ) -> Result<(), Fail> {
        self.check_reg_read(st, d.src)?;
        self.check_reg_write(d.dst)?;
        let size = d.op.mem_size() as i32;
        let src_ty = st.reg(d.src).ty;
        let val = self.check_mem_access(st, pc, d.src, d.off as i32, size, Access::Read)?;
        self.save_aux_ptr_type(src_ty)?;
        if matches!(src_ty, RegType::Ctx | RegType::Packet | RegType::PacketMeta) {
            return self.err(unsafe_(format!(
                "BPF_ATOMIC loads from R{} {} is not allowed",
                d.src,
                src_ty.name(false)
            )));
        }
        *st.reg_mut(d.dst) = val.unwrap_or_else(Reg::unknown);
        Ok(())
    }

    /// `check_atomic_store`: a store (`check_store_reg`, alignment strict),
    /// then the pointer types atomics may not use.
    pub(super) fn check_store_release(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
    ) -> Result<(), Fail> {
        self.check_reg_read(st, d.src)?;
        self.check_reg_read(st, d.dst)?;
        let val = st.reg(d.src).clone();
        let dst_ty = st.reg(d.dst).ty;
        self.check_mem_access(
            st,
            pc,
            d.dst,
            d.off as i32,
            d.op.mem_size() as i32,
            Access::Write(val, Some(d.src)),
        )?;
        self.save_aux_ptr_type(dst_ty)?;
        if matches!(dst_ty, RegType::Ctx | RegType::Packet | RegType::PacketMeta) {
            return self.err(unsafe_(format!(
                "BPF_ATOMIC stores into R{} {} is not allowed",
                d.dst,
                dst_ty.name(false)
            )));
        }
        Ok(())
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
        if matches!(ptr.ty, RegType::Ctx | RegType::Packet | RegType::PacketMeta) {
            let t = ptr.ty.name(false);
            return self.err(unsafe_(format!(
                "BPF_ATOMIC stores into R{} {t} is not allowed",
                d.dst
            )));
        }
        // Atomics on stack slots holding pointers would leak them.
        let old = self.check_mem_access(st, pc, d.dst, d.off as i32, size, Access::Read)?;
        if old.as_ref().is_some_and(|r| r.ty.is_ptr()) && !self.privileged() {
            let addr = d.off as i64 + ptr.off as i64 + ptr.var_off.value as i64;
            return self.err(unsafe_(format!("leaking pointer from stack off {addr}")));
        }
        self.check_mem_access(
            st,
            pc,
            d.dst,
            d.off as i32,
            size,
            Access::Write(Reg::unknown(), Some(d.src)),
        )?;
        // The fetched value is what the read gave (a fill of the slot's
        // spilled register), as the kernel reads into the load register.
        let fetched = || {
            old.clone().unwrap_or_else(|| {
                if size == 4 {
                    Reg::bounded(u32::MAX as u64)
                } else {
                    Reg::unknown()
                }
            })
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
                self.check_map_prog_compat(&m)?;
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

    pub(super) fn check_ld_abs(
        &mut self,
        st: &mut State,
        d: &Decoded,
        parent: Option<usize>,
    ) -> Result<(), Fail> {
        if !matches!(
            self.opts.prog_type,
            BPF_PROG_TYPE_SOCKET_FILTER | BPF_PROG_TYPE_SCHED_CLS | BPF_PROG_TYPE_SCHED_ACT
        ) {
            return self.err(invalid(
                "BPF_LD_[ABS|IND] instructions not allowed for this program type",
            ));
        }
        if !st.refs.is_empty() {
            return self.err(VerifierError::Reference {
                reason: "BPF_LD_[ABS|IND] cannot be mixed with socket references".into(),
            });
        }
        if st.active_lock.is_some() {
            return self.err(invalid(
                "BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region",
            ));
        }
        if st.active_rcu_lock {
            return self.err(invalid(
                "BPF_LD_[ABS|IND] cannot be used inside bpf_rcu_read_lock-ed region",
            ));
        }
        if st.active_preempt_lock > 0 {
            return self.err(invalid(
                "BPF_LD_[ABS|IND] cannot be used inside bpf_preempt_disable-ed region",
            ));
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
        if st.frames.len() > 1 {
            let entry = self.cfg().subprogs[st.cur().subprog] as u32;
            if self.opts.func_non_scalar_return.contains(&entry) {
                return self.err(invalid(
                    "LD_ABS is only allowed in functions that return 'int'.",
                ));
            }
            // A load past the packet ends the function with r0 = 0: in a
            // subprogram that is a return to the caller, a path of its own.
            let pc = self.cur_insn;
            let mut gone = st.clone();
            *gone.reg_mut(0) = Reg::konst(0);
            let ret = self.return_from_call(&mut gone, pc, parent)?;
            self.push_branch(gone, ret, pc, parent)?;
        }
        Ok(())
    }
}

// `BPF_PROG_LOAD` flags that decide alignment checking.
use bpfvm_isa::uapi::{BPF_F_ANY_ALIGNMENT, BPF_F_STRICT_ALIGNMENT};
