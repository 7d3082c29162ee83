//! Register state (`struct bpf_reg_state`): a type, a constant offset for
//! pointers, and for the variable part a tnum plus signed/unsigned 64- and
//! 32-bit bounds, kept consistent by [`Reg::sync_bounds`].

use crate::tnum::Tnum;

/// `enum bpf_reg_type`, restricted to what bpfvm's program types produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegType {
    #[doc(alias = "NOT_INIT")]
    NotInit,
    #[doc(alias = "SCALAR_VALUE")]
    Scalar,
    #[doc(alias = "PTR_TO_CTX")]
    Ctx,
    #[doc(alias = "CONST_PTR_TO_MAP")]
    MapPtr,
    #[doc(alias = "PTR_TO_MAP_VALUE")]
    MapValue,
    #[doc(alias = "PTR_TO_MAP_KEY")]
    MapKey,
    #[doc(alias = "PTR_TO_STACK")]
    Stack,
    #[doc(alias = "PTR_TO_PACKET")]
    Packet,
    #[doc(alias = "PTR_TO_PACKET_META")]
    PacketMeta,
    #[doc(alias = "PTR_TO_PACKET_END")]
    PacketEnd,
    /// `PTR_TO_MEM | MEM_RINGBUF`
    #[doc(alias = "PTR_TO_MEM")]
    RingbufMem,
    #[doc(alias = "PTR_TO_FUNC")]
    Func,
    /// `struct bpf_flow_keys` of a flow dissector program.
    #[doc(alias = "PTR_TO_FLOW_KEYS")]
    FlowKeys,
    /// `PTR_TO_BTF_ID`: a kernel object (`task_struct`, the kernel's
    /// context); which one and how trusted is in [`Reg::kf`].
    #[doc(alias = "PTR_TO_BTF_ID")]
    BtfId,
    /// `PTR_TO_MEM`: `mem_size` bytes (kfunc results, dynptr slices).
    #[doc(alias = "PTR_TO_MEM")]
    Mem,
    /// `PTR_TO_SOCK_COMMON`: `struct bpf_sock`'s common part (`skb->sk`).
    #[doc(alias = "PTR_TO_SOCK_COMMON")]
    SockCommon,
    /// `PTR_TO_SOCKET`: a full `struct bpf_sock`.
    #[doc(alias = "PTR_TO_SOCKET")]
    Sock,
    /// `PTR_TO_TCP_SOCK`: `struct bpf_tcp_sock`.
    #[doc(alias = "PTR_TO_TCP_SOCK")]
    TcpSock,
    /// `PTR_TO_XDP_SOCK`: `struct bpf_xdp_sock` (an xskmap element).
    #[doc(alias = "PTR_TO_XDP_SOCK")]
    XdpSock,
    /// `PTR_TO_TP_BUFFER`: a writable raw tracepoint's buffer.
    #[doc(alias = "PTR_TO_TP_BUFFER")]
    TpBuffer,
    /// `CONST_PTR_TO_DYNPTR`: a dynptr the kernel made (a
    /// `bpf_user_ringbuf_drain` callback's sample), passed to helpers that
    /// only read it; its type is in [`Reg::kf`]`.obj`, its id in `id`.
    #[doc(alias = "CONST_PTR_TO_DYNPTR")]
    ConstDynptr,
}

impl RegType {
    /// The kernel's `reg_type_str` base names.
    pub fn name(self, maybe_null: bool) -> String {
        let base = match self {
            RegType::NotInit => "?",
            RegType::Scalar => "scalar",
            RegType::Ctx => "ctx",
            RegType::MapPtr => "map_ptr",
            RegType::MapValue => "map_value",
            RegType::MapKey => "map_key",
            RegType::Stack => "fp",
            RegType::Packet => "pkt",
            RegType::PacketMeta => "pkt_meta",
            RegType::PacketEnd => "pkt_end",
            RegType::RingbufMem => "ringbuf_mem",
            RegType::Func => "func",
            RegType::FlowKeys => "flow_keys",
            RegType::BtfId => "ptr_",
            RegType::Mem => "mem",
            RegType::SockCommon => "sock_common",
            RegType::Sock => "sock",
            RegType::TcpSock => "tcp_sock",
            RegType::XdpSock => "xdp_sock",
            RegType::TpBuffer => "tp_buffer",
            RegType::ConstDynptr => "dynptr_ptr",
        };
        if maybe_null && self == RegType::BtfId {
            "ptr_or_null_".to_string()
        } else if maybe_null {
            format!("{base}_or_null")
        } else {
            base.to_string()
        }
    }
    pub fn is_pkt(self) -> bool {
        matches!(self, RegType::Packet | RegType::PacketMeta)
    }
    pub fn is_ptr(self) -> bool {
        !matches!(self, RegType::NotInit | RegType::Scalar)
    }
    /// `type_is_sk_pointer`
    pub fn is_sock(self) -> bool {
        matches!(
            self,
            RegType::SockCommon | RegType::Sock | RegType::TcpSock | RegType::XdpSock
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reg {
    pub ty: RegType,
    /// `PTR_MAYBE_NULL`
    pub maybe_null: bool,
    /// Fixed offset of a pointer.
    pub off: i32,
    pub var_off: Tnum,
    pub smin: i64,
    pub smax: i64,
    pub umin: u64,
    pub umax: u64,
    pub s32_min: i32,
    pub s32_max: i32,
    pub u32_min: u32,
    pub u32_max: u32,
    /// Links copies: of a nullable pointer (to mark them all after a NULL
    /// check), of a packet pointer (to share a learned range), of a scalar
    /// (to share learned bounds).
    pub id: u32,
    /// The acquired reference this pointer is (ringbuf records).
    pub ref_obj_id: u32,
    /// Map id for map_ptr / map_value / map_key.
    pub map: u32,
    /// Packet range proven by a comparison with data_end.
    pub range: i32,
    /// Size of the memory behind a ringbuf record.
    pub mem_size: u32,
    /// Frame a stack pointer points into.
    pub frameno: u8,
    /// Subprogram entry of a PTR_TO_FUNC.
    pub subprog: u32,
    /// A scalar whose exact bounds some safety decision depended on: pruning
    /// compares it; an imprecise scalar matches any scalar.
    pub precise: bool,
    /// Kfunc-related type information: the object of a `PTR_TO_BTF_ID`,
    /// or the iterator / dynptr a special stack slot holds.
    pub kf: crate::kfuncs::KfInfo,
    /// For a `PTR_TO_BTF_ID` into the kernel's types (a BTF-typed context's
    /// argument, or a pointer loaded through one): the struct's type id in
    /// [`crate::BtfCtx::types`]; 0 otherwise.
    pub btf_id: u32,
    /// A slice of a dynptr (`PTR_TO_MEM`): that dynptr's id, so that the
    /// slice goes when the dynptr is overwritten or released.
    pub dynptr_id: u32,
}

impl Default for Reg {
    fn default() -> Self {
        Reg::not_init()
    }
}

/// In a scalar's `id`: the scalar is its linked register plus the constant in
/// its `off` (`rX = rY; rX += K`), the kernel's BPF_ADD_CONST.
pub const ADD_CONST: u32 = 1 << 31;

impl Reg {
    /// A packet pointer, or a dynptr slice of the packet: invalid once a
    /// helper may have changed the packet (`clear_all_pkt_pointers`).
    pub fn points_into_packet(&self) -> bool {
        matches!(
            self.ty,
            RegType::Packet | RegType::PacketMeta | RegType::PacketEnd
        ) || (self.ty == RegType::Mem && self.kf.flags & crate::kfuncs::KFI_PKT_SLICE != 0)
    }

    pub fn not_init() -> Reg {
        let mut r = Reg::unknown();
        r.ty = RegType::NotInit;
        r
    }

    /// `__mark_reg_unknown`: a scalar with no knowledge.
    pub fn unknown() -> Reg {
        Reg {
            ty: RegType::Scalar,
            maybe_null: false,
            off: 0,
            var_off: Tnum::UNKNOWN,
            smin: i64::MIN,
            smax: i64::MAX,
            umin: 0,
            umax: u64::MAX,
            s32_min: i32::MIN,
            s32_max: i32::MAX,
            u32_min: 0,
            u32_max: u32::MAX,
            id: 0,
            ref_obj_id: 0,
            map: 0,
            range: 0,
            mem_size: 0,
            frameno: 0,
            subprog: 0,
            precise: false,
            kf: crate::kfuncs::KfInfo::NONE,
            btf_id: 0,
            dynptr_id: 0,
        }
    }

    pub fn konst(v: u64) -> Reg {
        let mut r = Reg::unknown();
        r.set_const(v);
        r
    }

    /// A pointer of type `ty` with a zero offset and a known-zero variable part.
    pub fn ptr(ty: RegType) -> Reg {
        let mut r = Reg::konst(0);
        r.ty = ty;
        r
    }

    pub fn set_const(&mut self, v: u64) {
        self.var_off = Tnum::konst(v);
        self.smin = v as i64;
        self.smax = v as i64;
        self.umin = v;
        self.umax = v;
        self.s32_min = v as i32;
        self.s32_max = v as i32;
        self.u32_min = v as u32;
        self.u32_max = v as u32;
    }

    /// A scalar whose value is unknown beyond `[0, max]`.
    pub fn bounded(max: u64) -> Reg {
        let mut r = Reg::unknown();
        r.umin = 0;
        r.umax = max;
        r.var_off = Tnum::range(0, max);
        r.sync_bounds();
        r
    }

    pub fn is_const(&self) -> bool {
        self.var_off.is_const()
    }
    /// A scalar's link id without [`ADD_CONST`]: scalars with the same base
    /// id are linked (equal, or equal plus their `off`).
    pub fn base_id(&self) -> u32 {
        self.id & !ADD_CONST
    }
    /// Unlinks a scalar (`clear_scalar_id`).
    pub fn clear_scalar_id(&mut self) {
        self.id = 0;
        self.off = 0;
    }
    pub fn is_init(&self) -> bool {
        self.ty != RegType::NotInit
    }
    pub fn is_scalar(&self) -> bool {
        self.ty == RegType::Scalar
    }
    pub fn is_null_const(&self) -> bool {
        self.ty == RegType::Scalar && self.is_const() && self.var_off.value == 0
    }

    /// Forget the variable part's bounds (keep type, offsets, ids).
    pub fn mark_var_unknown(&mut self) {
        let k = Reg::unknown();
        self.var_off = k.var_off;
        self.smin = k.smin;
        self.smax = k.smax;
        self.umin = k.umin;
        self.umax = k.umax;
        self.s32_min = k.s32_min;
        self.s32_max = k.s32_max;
        self.u32_min = k.u32_min;
        self.u32_max = k.u32_max;
    }

    fn bounds_from_tnum(&mut self) {
        let v = self.var_off;
        // 64-bit
        let (tmin, tmax) = (v.min(), v.max());
        self.umin = self.umin.max(tmin);
        self.umax = self.umax.min(tmax);
        let sign = 1u64 << 63;
        let s_lo = (v.value | (v.mask & sign)) as i64;
        let s_hi = (v.value | (v.mask & !sign)) as i64;
        self.smin = self.smin.max(s_lo);
        self.smax = self.smax.min(s_hi);
        // 32-bit
        let s = v.subreg();
        self.u32_min = self.u32_min.max(s.min() as u32);
        self.u32_max = self.u32_max.min(s.max() as u32);
        let sign32 = 1u64 << 31;
        let s32_lo = (s.value | (s.mask & sign32)) as u32 as i32;
        let s32_hi = (s.value | (s.mask & !sign32 & 0xffff_ffff)) as u32 as i32;
        self.s32_min = self.s32_min.max(s32_lo);
        self.s32_max = self.s32_max.min(s32_hi);
    }

    /// `__reg32_deduce_bounds`: the 32-bit ranges from the 64-bit ones and
    /// from each other.
    fn deduce32(&mut self) {
        // Upper halves equal: the low halves of the u64 range are a range.
        if self.umin >> 32 == self.umax >> 32 {
            self.u32_min = self.u32_min.max(self.umin as u32);
            self.u32_max = self.u32_max.min(self.umax as u32);
            if (self.umin as i32) <= (self.umax as i32) {
                self.s32_min = self.s32_min.max(self.umin as i32);
                self.s32_max = self.s32_max.min(self.umax as i32);
            }
        }
        if self.smin >> 32 == self.smax >> 32 {
            if (self.smin as u32) <= (self.smax as u32) {
                self.u32_min = self.u32_min.max(self.smin as u32);
                self.u32_max = self.u32_max.min(self.smax as u32);
            }
            if (self.smin as i32) <= (self.smax as i32) {
                self.s32_min = self.s32_min.max(self.smin as i32);
                self.s32_max = self.s32_max.min(self.smax as i32);
            }
        }
        // Upper halves two consecutive numbers, the low halves going from
        // negative to positive: still one s32 range (e.g. s64 [-1, 1]).
        let consecutive = |lo: u64, hi: u64| {
            ((lo >> 32) as u32).wrapping_add(1) == (hi >> 32) as u32
                && (lo as i32) < 0
                && (hi as i32) >= 0
        };
        if consecutive(self.umin, self.umax) {
            self.s32_min = self.s32_min.max(self.umin as i32);
            self.s32_max = self.s32_max.min(self.umax as i32);
        }
        if consecutive(self.smin as u64, self.smax as u64) {
            self.s32_min = self.s32_min.max(self.smin as i32);
            self.s32_max = self.s32_max.min(self.smax as i32);
        }
        // A u32 range on one side of the sign bit is an s32 range.
        if (self.u32_min as i32) <= (self.u32_max as i32) {
            self.s32_min = self.s32_min.max(self.u32_min as i32);
            self.s32_max = self.s32_max.min(self.u32_max as i32);
        }
        if (self.s32_min as u32) <= (self.s32_max as u32) {
            self.u32_min = self.u32_min.max(self.s32_min as u32);
            self.u32_max = self.u32_max.min(self.s32_max as u32);
        } else if self.u32_max < self.s32_min as u32 {
            // The s32 range crosses the sign bit and the u32 range meets
            // only its non-negative part ...
            self.s32_min = self.u32_min as i32;
            self.u32_max = self.u32_max.min(self.s32_max as u32);
        } else if (self.s32_max as u32) < self.u32_min {
            // ... or only its negative part.
            self.s32_max = self.u32_max as i32;
            self.u32_min = self.u32_min.max(self.s32_min as u32);
        }
    }

    /// `__reg64_deduce_bounds`: signed and unsigned 64-bit ranges.
    fn deduce64(&mut self) {
        if (self.umin as i64) <= (self.umax as i64) {
            self.smin = self.smin.max(self.umin as i64);
            self.smax = self.smax.min(self.umax as i64);
        }
        if (self.smin as u64) <= (self.smax as u64) {
            self.umin = self.umin.max(self.smin as u64);
            self.umax = self.umax.min(self.smax as u64);
        } else if self.umax < self.smin as u64 {
            // The s64 range crosses the sign bit; the u64 range meets only
            // its non-negative part (it cannot stand for two ranges) ...
            self.smin = self.umin as i64;
            self.umax = self.umax.min(self.smax as u64);
        } else if (self.smax as u64) < self.umin {
            // ... or only its negative part.
            self.smax = self.umax as i64;
            self.umin = self.umin.max(self.smin as u64);
        }
    }

    /// `__reg_deduce_mixed_bounds`: 64-bit ranges from the 32-bit ones.
    fn deduce_mixed(&mut self) {
        let lo = |v: u64| v & !0xffff_ffff;
        let new_umin = lo(self.umin) | self.u32_min as u64;
        let new_umax = lo(self.umax) | self.u32_max as u64;
        self.umin = self.umin.max(new_umin);
        self.umax = self.umax.min(new_umax);
        let new_smin = (lo(self.smin as u64) | self.u32_min as u64) as i64;
        let new_smax = (lo(self.smax as u64) | self.u32_max as u64) as i64;
        self.smin = self.smin.max(new_smin);
        self.smax = self.smax.min(new_smax);
        // Within [S32_MIN, S32_MAX] with a non-negative low half, the upper
        // half cannot be all ones: the s32 range is the whole range.
        if self.s32_min >= 0 && self.smin >= i32::MIN as i64 && self.smax <= i32::MAX as i64 {
            self.smin = self.s32_min as i64;
            self.smax = self.s32_max as i64;
            self.umin = self.s32_min as u64;
            self.umax = self.s32_max as u64;
            self.var_off = self
                .var_off
                .intersect(Tnum::range(self.smin as u64, self.smax as u64));
        }
    }

    /// `__reg_bound_offset`: the tnum from the unsigned ranges.
    fn tnum_from_bounds(&mut self) {
        if self.umin <= self.umax {
            self.var_off = self.var_off.intersect(Tnum::range(self.umin, self.umax));
        }
        if self.u32_min <= self.u32_max {
            let sub = self
                .var_off
                .subreg()
                .intersect(Tnum::range(self.u32_min as u64, self.u32_max as u64));
            self.var_off = self.var_off.with_subreg(sub);
        }
    }

    /// `reg_bounds_sync`: make tnum and the four ranges agree, in the
    /// kernel's order (three rounds of deduction, as Linux 6.17+).
    pub fn sync_bounds(&mut self) {
        self.bounds_from_tnum();
        for _ in 0..3 {
            self.deduce32();
            self.deduce64();
            self.deduce_mixed();
        }
        self.tnum_from_bounds();
        self.bounds_from_tnum();
        if self.is_const() && !self.is_empty() {
            let v = self.var_off.value;
            self.set_const(v);
        }
    }

    /// Bounds that contain no value: the branch that produced them is dead.
    pub fn is_empty(&self) -> bool {
        self.umin > self.umax
            || self.smin > self.smax
            || self.u32_min > self.u32_max
            || self.s32_min > self.s32_max
            || (self.var_off.value & self.var_off.mask) != 0
    }

    /// Keep only the low 32 bits (the result of any ALU32 op), zero-extended.
    pub fn zext32(&mut self) {
        self.var_off = self.var_off.subreg();
        if self.u32_min <= self.u32_max {
            self.umin = self.u32_min as u64;
            self.umax = self.u32_max as u64;
        } else {
            self.umin = 0;
            self.umax = u32::MAX as u64;
        }
        self.smin = self.umin as i64;
        self.smax = self.umax as i64;
        self.sync_bounds();
    }

    /// Rebuilds the 32-bit bounds from scratch after a 64-bit operation.
    pub fn reset32(&mut self) {
        self.s32_min = i32::MIN;
        self.s32_max = i32::MAX;
        self.u32_min = 0;
        self.u32_max = u32::MAX;
    }

    /// Reset the 64-bit bounds, keeping the tnum.
    pub fn reset64(&mut self) {
        self.smin = i64::MIN;
        self.smax = i64::MAX;
        self.umin = 0;
        self.umax = u64::MAX;
    }

    /// Every value `other` may hold, `self` may hold (for state pruning).
    pub fn range_contains(&self, o: &Reg) -> bool {
        self.smin <= o.smin
            && self.smax >= o.smax
            && self.umin <= o.umin
            && self.umax >= o.umax
            && self.s32_min <= o.s32_min
            && self.s32_max >= o.s32_max
            && self.u32_min <= o.u32_min
            && self.u32_max >= o.u32_max
            && self.var_off.contains(o.var_off)
    }
}

/// `verbose_snum`: small magnitudes in decimal, others in hex.
pub fn snum(v: i64) -> String {
    if (-32768..=32767).contains(&v) {
        v.to_string()
    } else {
        format!("{:#x}", v as u64)
    }
}

pub fn unum(v: u64) -> String {
    if v <= 32767 {
        v.to_string()
    } else {
        format!("{v:#x}")
    }
}

fn print_ranges(r: &Reg, out: &mut Vec<String>) {
    let items: [(&str, u64, bool); 8] = [
        ("smin", r.smin as u64, r.smin == i64::MIN),
        ("smax", r.smax as u64, r.smax == i64::MAX),
        ("umin", r.umin, r.umin == 0),
        ("umax", r.umax, r.umax == u64::MAX),
        ("smin32", r.s32_min as i64 as u64, r.s32_min == i32::MIN),
        ("smax32", r.s32_max as i64 as u64, r.s32_max == i32::MAX),
        ("umin32", r.u32_min as u64, r.u32_min == 0),
        ("umax32", r.u32_max as u64, r.u32_max == u32::MAX),
    ];
    let mut omit: [bool; 8] = std::array::from_fn(|i| items[i].2);
    for i in 0..8 {
        if omit[i] {
            continue;
        }
        let (name, val, _) = items[i];
        let neg1 = name.starts_with('s') && (val as i64) < 0;
        let mut s = format!("{name}=");
        let mut j = i + 2;
        while j < 8 {
            let (n2, v2, _) = items[j];
            let neg2 = n2.starts_with('s') && (v2 as i64) < 0;
            if !omit[j] && v2 == val && neg1 == neg2 {
                omit[j] = true;
                s.push_str(n2);
                s.push('=');
            }
            j += 2;
        }
        // 32-bit bounds outside the decimal range print as 32-bit hex.
        let is32 = name.ends_with("32");
        if name.starts_with('s') {
            let v = val as i64;
            if is32 && !(-32768..=32767).contains(&v) {
                s.push_str(&format!("{:#x}", v as u32));
            } else {
                s.push_str(&snum(v));
            }
        } else {
            s.push_str(&unum(val));
        }
        out.push(s);
    }
}

/// The kernel's register text (`print_reg_state`), e.g. `scalar(smin=0,...)`,
/// `fp-8`, `map_value(map=m,ks=4,vs=8,off=4)`, `pkt(r=14)`.
pub fn reg_text(r: &Reg, cur_frame: u8, map_info: &dyn Fn(u32) -> (String, u32, u32)) -> String {
    if r.ty == RegType::Scalar && r.is_const() {
        return snum(r.var_off.value as i64);
    }
    let mut s = if r.ty == RegType::BtfId {
        crate::kfuncs::btf_ptr_name(r)
    } else {
        r.ty.name(r.maybe_null)
    };
    if r.ty == RegType::Stack {
        if r.frameno != cur_frame {
            s.push_str(&format!("[{}]", r.frameno));
        }
        if r.is_const() {
            s.push_str(&snum((r.var_off.value as i64).wrapping_add(r.off as i64)));
            return s;
        }
    }
    let mut f = Vec::new();
    if r.id & ADD_CONST != 0 {
        f.push(format!("id={}{:+}", r.base_id(), r.off));
    } else if r.id != 0 {
        f.push(format!("id={}", r.id));
    }
    if r.ref_obj_id != 0 {
        f.push(format!("ref_obj_id={}", r.ref_obj_id));
    }
    if matches!(r.ty, RegType::MapPtr | RegType::MapValue | RegType::MapKey) {
        let (name, ks, vs) = map_info(r.map);
        if !name.is_empty() {
            f.push(format!("map={name}"));
        }
        f.push(format!("ks={ks},vs={vs}"));
    }
    if r.ty != RegType::Scalar && r.off != 0 {
        f.push(format!("off={}", r.off));
    }
    if r.ty.is_pkt() {
        // AT_PKT_END / BEYOND_PKT_END print as unsigned.
        f.push(format!(
            "r={}",
            if r.range < 0 {
                unum(r.range as i64 as u64)
            } else {
                r.range.to_string()
            }
        ));
    }
    if matches!(r.ty, RegType::RingbufMem | RegType::Mem) {
        f.push(format!("sz={}", r.mem_size));
    }
    if r.ty == RegType::ConstDynptr {
        f.push(format!(
            "type={}",
            bpfvm_isa::helpers::dynptr_type_str(r.kf.obj)
        ));
    }
    if r.is_const() {
        if r.var_off.value != 0 {
            f.push(format!("imm={}", snum(r.var_off.value as i64)));
        }
    } else {
        print_ranges(r, &mut f);
        if !r.var_off.is_unknown() {
            f.push(format!("var_off={}", r.var_off.text()));
        }
    }
    format!("{s}({})", f.join(","))
}
