//! A small x86-64 encoder: exactly the instruction forms the code generator uses,
//! with labels and rel32 fixups. Forward jumps are rel32 so one pass suffices;
//! backward jumps to a bound label within reach are rel8.

pub(crate) const RAX: u8 = 0;
pub(crate) const RCX: u8 = 1;
pub(crate) const RDX: u8 = 2;
pub(crate) const RBX: u8 = 3;
pub(crate) const RSP: u8 = 4;
pub(crate) const RBP: u8 = 5;
pub(crate) const RSI: u8 = 6;
pub(crate) const RDI: u8 = 7;
pub(crate) const R8: u8 = 8;
pub(crate) const R9: u8 = 9;
pub(crate) const R10: u8 = 10;
pub(crate) const R11: u8 = 11;
pub(crate) const R12: u8 = 12;
pub(crate) const R13: u8 = 13;
pub(crate) const R14: u8 = 14;
pub(crate) const R15: u8 = 15;

/// Condition codes (the low nibble of `Jcc`).
pub(crate) mod cc {
    pub(crate) const B: u8 = 0x2;
    pub(crate) const AE: u8 = 0x3;
    pub(crate) const E: u8 = 0x4;
    pub(crate) const NE: u8 = 0x5;
    pub(crate) const BE: u8 = 0x6;
    pub(crate) const A: u8 = 0x7;
    pub(crate) const S: u8 = 0x8;
    pub(crate) const L: u8 = 0xc;
    pub(crate) const GE: u8 = 0xd;
    pub(crate) const LE: u8 = 0xe;
    pub(crate) const G: u8 = 0xf;
}

/// `/digit` extensions of the group-1 ALU opcodes (0x81/0x83).
pub(crate) mod alu {
    pub(crate) const ADD: u8 = 0;
    pub(crate) const OR: u8 = 1;
    pub(crate) const AND: u8 = 4;
    pub(crate) const SUB: u8 = 5;
    pub(crate) const XOR: u8 = 6;
    pub(crate) const CMP: u8 = 7;
}

/// `/digit` extensions of the shift group (0xC1/0xD3).
pub(crate) mod shift {
    pub(crate) const SHL: u8 = 4;
    pub(crate) const SHR: u8 = 5;
    pub(crate) const SAR: u8 = 7;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(u32);

/// Operand size of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Size {
    B,
    H,
    W,
    Dw,
}

impl Size {
    pub(crate) fn from_bytes(n: usize) -> Size {
        match n {
            1 => Size::B,
            2 => Size::H,
            4 => Size::W,
            _ => Size::Dw,
        }
    }
}

#[derive(Default)]
pub(crate) struct Asm {
    pub(crate) buf: Vec<u8>,
    labels: Vec<Option<u32>>,
    fixups: Vec<(u32, Label)>,
}

fn fits_i8(v: i64) -> bool {
    v >= i8::MIN as i64 && v <= i8::MAX as i64
}

pub(crate) fn fits_i32(v: i64) -> bool {
    v >= i32::MIN as i64 && v <= i32::MAX as i64
}

impl Asm {
    /// An assembler sized for about `insns` BPF instructions (no regrowth of
    /// the buffers on a typical program: part of a small compile's fixed cost).
    pub(crate) fn for_insns(insns: usize) -> Asm {
        Asm {
            buf: Vec::with_capacity(insns * 12 + 512),
            labels: Vec::with_capacity(insns * 2 + 16),
            fixups: Vec::with_capacity(insns + 16),
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() as u32 - 1)
    }

    pub(crate) fn bind(&mut self, l: Label) {
        self.labels[l.0 as usize] = Some(self.buf.len() as u32);
    }

    pub(crate) fn offset_of(&self, l: Label) -> Option<u32> {
        self.labels[l.0 as usize]
    }

    /// Patches every rel32 against its label; None if a label was never bound.
    pub(crate) fn finish(mut self) -> Option<Vec<u8>> {
        for &(at, l) in &self.fixups {
            let target = self.labels[l.0 as usize]? as i64;
            let rel = (target - (at as i64 + 4)) as i32;
            self.buf[at as usize..at as usize + 4].copy_from_slice(&rel.to_le_bytes());
        }
        self.fixups.clear();
        Some(self.buf)
    }

    fn b(&mut self, x: u8) {
        self.buf.push(x);
    }

    fn d(&mut self, x: u32) {
        self.buf.extend_from_slice(&x.to_le_bytes());
    }

    fn rel32(&mut self, l: Label) {
        self.fixups.push((self.buf.len() as u32, l));
        self.d(0);
    }

    /// REX prefix; `force` for byte operations on sil/dil/spl/bpl.
    fn rex(&mut self, w: bool, reg: u8, base: u8, force: bool) {
        let r = 0x40 | ((w as u8) << 3) | (((reg >> 3) & 1) << 2) | ((base >> 3) & 1);
        if r != 0x40 || force {
            self.b(r);
        }
    }

    /// `op reg, rm` with a register `rm` (ModRM mod = 11).
    fn rr(&mut self, pfx: &[u8], w: bool, byte: bool, op: &[u8], reg: u8, rm: u8) {
        self.buf.extend_from_slice(pfx);
        let force = byte && ((4..8).contains(&reg) || (4..8).contains(&rm));
        self.rex(w, reg, rm, force);
        self.buf.extend_from_slice(op);
        self.b(0xc0 | ((reg & 7) << 3) | (rm & 7));
    }

    /// `op reg, [base + disp]`.
    // The fields of one encoding; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn rm(&mut self, pfx: &[u8], w: bool, byte: bool, op: &[u8], reg: u8, base: u8, disp: i32) {
        self.rmx(pfx, w, byte, op, reg, base, None, disp);
    }

    /// `op reg, [base + index + disp]` (scale 1; `index` is never rsp, which
    /// no BPF register lives in).
    #[allow(clippy::too_many_arguments)]
    fn rmx(
        &mut self,
        pfx: &[u8],
        w: bool,
        byte: bool,
        op: &[u8],
        reg: u8,
        base: u8,
        index: Option<u8>,
        disp: i32,
    ) {
        self.buf.extend_from_slice(pfx);
        let force = byte && (4..8).contains(&reg);
        let x = index.map_or(0, |i| (i >> 3) & 1);
        let rex = 0x40 | ((w as u8) << 3) | (((reg >> 3) & 1) << 2) | (x << 1) | ((base >> 3) & 1);
        if rex != 0x40 || force {
            self.b(rex);
        }
        self.buf.extend_from_slice(op);
        let md = if disp == 0 && base & 7 != 5 {
            0
        } else if fits_i8(disp as i64) {
            1
        } else {
            2
        };
        match index {
            None => {
                self.b((md << 6) | ((reg & 7) << 3) | (base & 7));
                if base & 7 == 4 {
                    self.b(0x24);
                }
            }
            Some(i) => {
                debug_assert_ne!(i, RSP, "rsp cannot be an index");
                self.b((md << 6) | ((reg & 7) << 3) | 4);
                self.b(((i & 7) << 3) | (base & 7));
            }
        }
        match md {
            1 => self.b(disp as i8 as u8),
            2 => self.d(disp as u32),
            _ => {}
        }
    }

    // ---- moves ----

    pub(crate) fn mov_rr(&mut self, w: bool, dst: u8, src: u8) {
        self.rr(&[], w, false, &[0x89], src, dst);
    }

    /// `mov dst, imm` choosing the shortest form for the 64-bit value.
    pub(crate) fn mov_ri(&mut self, dst: u8, imm: u64) {
        if imm <= u32::MAX as u64 {
            self.mov_ri32(dst, imm as u32);
        } else if fits_i32(imm as i64) {
            self.rr(&[], true, false, &[0xc7], 0, dst);
            self.d(imm as u32);
        } else {
            self.rex(true, 0, dst, false);
            self.b(0xb8 + (dst & 7));
            self.buf.extend_from_slice(&imm.to_le_bytes());
        }
    }

    /// `mov dst32, imm32` (zero-extends).
    pub(crate) fn mov_ri32(&mut self, dst: u8, imm: u32) {
        self.rex(false, 0, dst, false);
        self.b(0xb8 + (dst & 7));
        self.d(imm);
    }

    /// `mov dst, imm64` always 10 bytes (addresses).
    pub(crate) fn mov_ri64(&mut self, dst: u8, imm: u64) {
        self.rex(true, 0, dst, false);
        self.b(0xb8 + (dst & 7));
        self.buf.extend_from_slice(&imm.to_le_bytes());
    }

    pub(crate) fn load(&mut self, size: Size, sign: bool, dst: u8, base: u8, disp: i32) {
        self.load_x(size, sign, dst, base, None, disp);
    }

    /// A zero- or sign-extending load from `[base + index + disp]`.
    pub(crate) fn load_x(
        &mut self,
        size: Size,
        sign: bool,
        dst: u8,
        base: u8,
        index: Option<u8>,
        disp: i32,
    ) {
        let (w, op): (bool, &[u8]) = match (size, sign) {
            (Size::B, false) => (false, &[0x0f, 0xb6]),
            (Size::H, false) => (false, &[0x0f, 0xb7]),
            (Size::W, false) => (false, &[0x8b]),
            (Size::Dw, _) => (true, &[0x8b]),
            (Size::B, true) => (true, &[0x0f, 0xbe]),
            (Size::H, true) => (true, &[0x0f, 0xbf]),
            (Size::W, true) => (true, &[0x63]),
        };
        self.rmx(&[], w, false, op, dst, base, index, disp);
    }

    pub(crate) fn store(&mut self, size: Size, src: u8, base: u8, disp: i32) {
        match size {
            Size::B => self.rm(&[], false, true, &[0x88], src, base, disp),
            Size::H => self.rm(&[0x66], false, false, &[0x89], src, base, disp),
            Size::W => self.rm(&[], false, false, &[0x89], src, base, disp),
            Size::Dw => self.rm(&[], true, false, &[0x89], src, base, disp),
        }
    }

    pub(crate) fn store_imm(&mut self, size: Size, imm: i32, base: u8, disp: i32) {
        self.store_imm_x(size, imm, base, None, disp);
    }

    /// A store of `src` to `[base + index + disp]`.
    pub(crate) fn store_x(&mut self, size: Size, src: u8, base: u8, index: Option<u8>, disp: i32) {
        match size {
            Size::B => self.rmx(&[], false, true, &[0x88], src, base, index, disp),
            Size::H => self.rmx(&[0x66], false, false, &[0x89], src, base, index, disp),
            Size::W => self.rmx(&[], false, false, &[0x89], src, base, index, disp),
            Size::Dw => self.rmx(&[], true, false, &[0x89], src, base, index, disp),
        }
    }

    /// A store of `imm` (sign-extended for 64 bits) to `[base + index + disp]`.
    pub(crate) fn store_imm_x(
        &mut self,
        size: Size,
        imm: i32,
        base: u8,
        index: Option<u8>,
        disp: i32,
    ) {
        match size {
            Size::B => {
                self.rmx(&[], false, false, &[0xc6], 0, base, index, disp);
                self.b(imm as u8);
            }
            Size::H => {
                self.rmx(&[0x66], false, false, &[0xc7], 0, base, index, disp);
                self.buf.extend_from_slice(&(imm as u16).to_le_bytes());
            }
            Size::W | Size::Dw => {
                self.rmx(&[], size == Size::Dw, false, &[0xc7], 0, base, index, disp);
                self.d(imm as u32);
            }
        }
    }

    /// `mov dword [base + disp], imm32`.
    pub(crate) fn store_imm32(&mut self, base: u8, disp: i32, imm: u32) {
        self.store_imm(Size::W, imm as i32, base, disp);
    }

    pub(crate) fn lea(&mut self, dst: u8, base: u8, disp: i32) {
        self.rm(&[], true, false, &[0x8d], dst, base, disp);
    }

    /// `lea dst, [base + index + disp]`: a three-operand add.
    pub(crate) fn lea_x(&mut self, dst: u8, base: u8, index: u8, disp: i32) {
        self.rmx(&[], true, false, &[0x8d], dst, base, Some(index), disp);
    }

    /// `lea dst, [base + index * (1 << scale) + disp]` (32-bit when `!w`, which
    /// zero-extends). `index` is never rsp.
    pub(crate) fn lea_scaled(
        &mut self,
        w: bool,
        dst: u8,
        base: u8,
        index: u8,
        scale: u8,
        disp: i32,
    ) {
        let rex = 0x40
            | ((w as u8) << 3)
            | (((dst >> 3) & 1) << 2)
            | (((index >> 3) & 1) << 1)
            | ((base >> 3) & 1);
        if rex != 0x40 {
            self.b(rex);
        }
        self.b(0x8d);
        let md = if disp == 0 && base & 7 != 5 {
            0
        } else if fits_i8(disp as i64) {
            1
        } else {
            2
        };
        self.b((md << 6) | ((dst & 7) << 3) | 4);
        self.b((scale << 6) | ((index & 7) << 3) | (base & 7));
        match md {
            1 => self.b(disp as i8 as u8),
            2 => self.d(disp as u32),
            _ => {}
        }
    }

    /// `movzx dst32, src16` / `movzx dst32, src8`.
    pub(crate) fn movzx(&mut self, size: Size, dst: u8, src: u8) {
        match size {
            Size::B => self.rr(&[], false, true, &[0x0f, 0xb6], dst, src),
            _ => self.rr(&[], false, false, &[0x0f, 0xb7], dst, src),
        }
    }

    /// `movsx dst, src` from 8/16/32 bits to 32 (`w` false) or 64 bits.
    pub(crate) fn movsx(&mut self, w: bool, size: Size, dst: u8, src: u8) {
        match size {
            Size::B => self.rr(&[], w, true, &[0x0f, 0xbe], dst, src),
            Size::H => self.rr(&[], w, false, &[0x0f, 0xbf], dst, src),
            _ => self.rr(&[], true, false, &[0x63], dst, src),
        }
    }

    // ---- arithmetic ----

    /// Two-register ALU op (`opcode` is the `rm, reg` form: 0x01 add, 0x29 sub,
    /// 0x21 and, 0x09 or, 0x31 xor, 0x39 cmp, 0x85 test).
    pub(crate) fn alu_rr(&mut self, w: bool, opcode: u8, dst: u8, src: u8) {
        self.rr(&[], w, false, &[opcode], src, dst);
    }

    pub(crate) fn alu_ri(&mut self, w: bool, ext: u8, dst: u8, imm: i32) {
        if fits_i8(imm as i64) {
            self.rr(&[], w, false, &[0x83], ext, dst);
            self.b(imm as u8);
        } else {
            self.rr(&[], w, false, &[0x81], ext, dst);
            self.d(imm as u32);
        }
    }

    /// `op reg, [base + disp]` with the `reg, rm` opcode (0x0b or, 0x23 and,
    /// 0x33 xor, 0x3b cmp).
    pub(crate) fn alu_rm(&mut self, w: bool, opcode: u8, reg: u8, base: u8, disp: i32) {
        self.rm(&[], w, false, &[opcode], reg, base, disp);
    }

    pub(crate) fn test_ri(&mut self, w: bool, dst: u8, imm: i32) {
        self.rr(&[], w, false, &[0xf7], 0, dst);
        self.d(imm as u32);
    }

    /// `imul dst, [base + disp]`.
    pub(crate) fn imul_rm(&mut self, w: bool, dst: u8, base: u8, disp: i32) {
        self.rm(&[], w, false, &[0x0f, 0xaf], dst, base, disp);
    }

    pub(crate) fn imul_rr(&mut self, w: bool, dst: u8, src: u8) {
        self.rr(&[], w, false, &[0x0f, 0xaf], dst, src);
    }

    pub(crate) fn imul_ri(&mut self, w: bool, dst: u8, imm: i32) {
        self.rr(&[], w, false, &[0x69], dst, dst);
        self.d(imm as u32);
    }

    pub(crate) fn shift_ri(&mut self, w: bool, ext: u8, dst: u8, imm: u8) {
        self.rr(&[], w, false, &[0xc1], ext, dst);
        self.b(imm);
    }

    pub(crate) fn shift_cl(&mut self, w: bool, ext: u8, dst: u8) {
        self.rr(&[], w, false, &[0xd3], ext, dst);
    }

    /// BMI2 `shlx`/`shrx`/`sarx dst, src, count`: any count register, flags
    /// untouched, the count masked to the operand width as `shl reg, cl` masks it.
    pub(crate) fn shiftx(&mut self, w: bool, ext: u8, dst: u8, src: u8, count: u8) {
        let pp = match ext {
            shift::SHL => 0b01,
            shift::SAR => 0b10,
            _ => 0b11,
        };
        self.b(0xc4);
        // Inverted R, X, B; map 0F38.
        self.b((((!dst >> 3) & 1) << 7) | (1 << 6) | (((!src >> 3) & 1) << 5) | 0b00010);
        self.b(((w as u8) << 7) | ((!count & 15) << 3) | pp);
        self.b(0xf7);
        self.b(0xc0 | ((dst & 7) << 3) | (src & 7));
    }

    pub(crate) fn neg(&mut self, w: bool, dst: u8) {
        self.rr(&[], w, false, &[0xf7], 3, dst);
    }

    /// `div`/`idiv` by a register (rdx:rax or edx:eax).
    /// `mul src` (64-bit): rdx:rax = rax * src, unsigned.
    pub(crate) fn mul_r(&mut self, src: u8) {
        self.rr(&[], true, false, &[0xf7], 4, src);
    }

    pub(crate) fn div(&mut self, w: bool, signed: bool, src: u8) {
        self.rr(&[], w, false, &[0xf7], if signed { 7 } else { 6 }, src);
    }

    /// `cqo` (64) / `cdq` (32).
    pub(crate) fn sign_extend_rax(&mut self, w: bool) {
        if w {
            self.b(0x48);
        }
        self.b(0x99);
    }

    pub(crate) fn bswap(&mut self, w: bool, r: u8) {
        self.rex(w, 0, r, false);
        self.b(0x0f);
        self.b(0xc8 + (r & 7));
    }

    /// `ror r16, 8`: swaps the two low bytes.
    pub(crate) fn ror16_8(&mut self, r: u8) {
        self.rr(&[0x66], false, false, &[0xc1], 1, r);
        self.b(8);
    }

    // ---- atomics ----

    /// `lock op [base + disp], src` (0x01 add, 0x09 or, 0x21 and, 0x31 xor).
    pub(crate) fn lock_alu(&mut self, w: bool, opcode: u8, src: u8, base: u8, disp: i32) {
        self.rm(&[0xf0], w, false, &[opcode], src, base, disp);
    }

    pub(crate) fn lock_xadd(&mut self, w: bool, src: u8, base: u8, disp: i32) {
        self.rm(&[0xf0], w, false, &[0x0f, 0xc1], src, base, disp);
    }

    /// `xchg [base + disp], src` (locked by the processor).
    pub(crate) fn xchg(&mut self, w: bool, src: u8, base: u8, disp: i32) {
        self.rm(&[], w, false, &[0x87], src, base, disp);
    }

    pub(crate) fn lock_cmpxchg(&mut self, w: bool, src: u8, base: u8, disp: i32) {
        self.rm(&[0xf0], w, false, &[0x0f, 0xb1], src, base, disp);
    }

    // ---- memory operands of the run context ----

    /// `cmp dword [base + disp], imm8`.
    pub(crate) fn cmp_m32_i8(&mut self, base: u8, disp: i32, imm: i8) {
        self.rm(&[], false, false, &[0x83], alu::CMP, base, disp);
        self.b(imm as u8);
    }

    /// `inc`/`dec dword [base + disp]`.
    pub(crate) fn incdec_m32(&mut self, dec: bool, base: u8, disp: i32) {
        self.rm(&[], false, false, &[0xff], dec as u8, base, disp);
    }

    // ---- control flow ----

    /// The rel8 of a two-byte jump to `l` if `l` is already bound (a backward
    /// jump) and close enough; forward jumps stay rel32 so one pass suffices.
    fn short_rel(&self, l: Label) -> Option<u8> {
        let target = self.labels[l.0 as usize]? as i64;
        let rel = target - (self.buf.len() as i64 + 2);
        fits_i8(rel).then_some(rel as i8 as u8)
    }

    pub(crate) fn jmp(&mut self, l: Label) {
        if let Some(r) = self.short_rel(l) {
            self.b(0xeb);
            self.b(r);
            return;
        }
        self.b(0xe9);
        self.rel32(l);
    }

    pub(crate) fn jcc(&mut self, cond: u8, l: Label) {
        if let Some(r) = self.short_rel(l) {
            self.b(0x70 | cond);
            self.b(r);
            return;
        }
        self.b(0x0f);
        self.b(0x80 | cond);
        self.rel32(l);
    }

    /// `lea r11, [rip + table]; mov dst, [r11 + index*8]`: a 64-bit value from
    /// a table of [`Asm::data64`]s.
    pub(crate) fn load_table(&mut self, table: Label, index: u8, dst: u8) {
        debug_assert_ne!(index, RSP, "rsp cannot be an index");
        self.b(0x4c);
        self.b(0x8d);
        self.b(0x1d);
        self.rel32(table);
        self.b(0x49 | ((dst >> 3) & 1) << 2 | ((index >> 3) & 1) << 1);
        self.b(0x8b);
        self.b(0x04 | ((dst & 7) << 3));
        self.b(0xc0 | ((index & 7) << 3) | 3);
    }

    /// Eight bytes of data (little-endian).
    pub(crate) fn data64(&mut self, v: u64) {
        self.d(v as u32);
        self.d((v >> 32) as u32);
    }

    /// `cmov<cc> dst, src` (64-bit).
    pub(crate) fn cmov(&mut self, cond: u8, dst: u8, src: u8) {
        self.rr(&[], true, false, &[0x0f, 0x40 | cond], dst, src);
    }

    /// Multi-byte NOPs up to the next multiple of `to` (loop heads: a loop body
    /// that starts on a fetch-block boundary decodes in fewer blocks).
    pub(crate) fn align(&mut self, to: usize) {
        const NOPS: [&[u8]; 9] = [
            &[0x90],
            &[0x66, 0x90],
            &[0x0f, 0x1f, 0x00],
            &[0x0f, 0x1f, 0x40, 0x00],
            &[0x0f, 0x1f, 0x44, 0x00, 0x00],
            &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
            &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
            &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
            &[0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
        ];
        let mut pad = (to - self.buf.len() % to) % to;
        while pad > 0 {
            let n = pad.min(NOPS.len());
            self.buf.extend_from_slice(NOPS[n - 1]);
            pad -= n;
        }
    }

    pub(crate) fn call(&mut self, l: Label) {
        self.b(0xe8);
        self.rel32(l);
    }

    pub(crate) fn call_r(&mut self, r: u8) {
        self.rr(&[], false, false, &[0xff], 2, r);
    }

    /// `jmp qword [base + disp]`.
    pub(crate) fn jmp_m(&mut self, base: u8, disp: i32) {
        self.rm(&[], false, false, &[0xff], 4, base, disp);
    }

    pub(crate) fn ret(&mut self) {
        self.b(0xc3);
    }

    pub(crate) fn push(&mut self, r: u8) {
        self.rex(false, 0, r, false);
        self.b(0x50 + (r & 7));
    }

    pub(crate) fn pop(&mut self, r: u8) {
        self.rex(false, 0, r, false);
        self.b(0x58 + (r & 7));
    }

    pub(crate) fn ud2(&mut self) {
        self.b(0x0f);
        self.b(0x0b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes with `f` and decodes the bytes back with iced-x86: one instruction,
    /// all bytes consumed, this text.
    fn check(want: &str, f: impl FnOnce(&mut Asm)) {
        let mut a = Asm::default();
        f(&mut a);
        let bytes = a.finish().expect("no labels");
        let insns = crate::jit::disasm::decode(&bytes, 0);
        assert_eq!(insns.len(), 1, "{want}: {insns:?}");
        assert_eq!(insns[0].text, want, "{bytes:02x?}");
    }

    #[test]
    fn encodings_round_trip_through_a_decoder() {
        // Bases that need a SIB byte (rsp, r12) or a displacement (rbp, r13).
        check("mov rax, [r12]", |a| a.load(Size::Dw, false, RAX, R12, 0));
        check("mov r9, [r13]", |a| a.load(Size::Dw, false, R9, R13, 0));
        check("mov rsi, [rbp-0x200]", |a| {
            a.load(Size::Dw, false, RSI, RBP, -512)
        });
        check("movzx edi, byte ptr [rsp+8]", |a| {
            a.load(Size::B, false, RDI, RSP, 8)
        });
        check("movsx r15, word ptr [rdx-2]", |a| {
            a.load(Size::H, true, R15, RDX, -2)
        });
        check("movsxd rbx, [r8+0x1000]", |a| {
            a.load(Size::W, true, RBX, R8, 0x1000)
        });
        // Byte stores from sil/dil need a REX prefix.
        check("mov [r11], sil", |a| a.store(Size::B, RSI, R11, 0));
        check("mov [rax+1], dil", |a| a.store(Size::B, RDI, RAX, 1));
        check("mov [rcx], r14w", |a| a.store(Size::H, R14, RCX, 0));
        check("mov qword ptr [r11], 0xffffffffffffffff", |a| {
            a.store_imm(Size::Dw, -1, R11, 0)
        });
        check("mov word ptr [rbp-2], 0x1234", |a| {
            a.store_imm(Size::H, 0x1234, RBP, -2)
        });
        check("mov rdx, 0x1122334455667788", |a| {
            a.mov_ri(RDX, 0x1122_3344_5566_7788)
        });
        check("mov r8, 0xffffffffffffff85", |a| {
            a.mov_ri(R8, -123i64 as u64)
        });
        check("mov r13d, 0x80000000", |a| a.mov_ri(R13, 0x8000_0000));
        check("imul r14d, 0x7b", |a| a.imul_ri(false, R14, 123));
        check("shl r15, cl", |a| a.shift_cl(true, shift::SHL, R15));
        check("sar ebx, 0x1f", |a| a.shift_ri(false, shift::SAR, RBX, 31));
        check("movsx esi, dil", |a| a.movsx(false, Size::B, RSI, RDI));
        check("movzx eax, si", |a| a.movzx(Size::H, RAX, RSI));
        check("bswap r13d", |a| a.bswap(false, R13));
        check("ror r8w, 8", |a| a.ror16_8(R8));
        check("lock cmpxchg [r11], r10d", |a| {
            a.lock_cmpxchg(false, R10, R11, 0)
        });
        check("lock xadd [r11], r10", |a| a.lock_xadd(true, R10, R11, 0));
        check("xchg [r11], r10", |a| a.xchg(true, R10, R11, 0));
        check("lock or [r11], rdi", |a| {
            a.lock_alu(true, 0x09, RDI, R11, 0)
        });
        check("cmp dword ptr [r12+8], 2", |a| a.cmp_m32_i8(R12, 8, 2));
        check("jmp qword ptr [r12+0x18]", |a| a.jmp_m(R12, 0x18));
        check("call r11", |a| a.call_r(R11));
        check("idiv r11", |a| a.div(true, true, R11));
        check("push r13", |a| a.push(R13));
        // Indexed operands: r12/r13 bases, r8..r15 indices.
        check("movzx ebx, byte ptr [rdi+rdx]", |a| {
            a.load_x(Size::B, false, RBX, RDI, Some(RDX), 0)
        });
        check("mov r15, [r13+r14-8]", |a| {
            a.load_x(Size::Dw, false, R15, R13, Some(R14), -8)
        });
        check("movsx rax, word ptr [r12+r8+0x100]", |a| {
            a.load_x(Size::H, true, RAX, R12, Some(R8), 0x100)
        });
        check("lea rax, [rcx+r8]", |a| a.lea_x(RAX, RCX, R8, 0));
        check("mov [rcx+r8], bl", |a| {
            a.store_x(Size::B, RBX, RCX, Some(R8), 0)
        });
        check("mov [rbp+rbx-8], sil", |a| {
            a.store_x(Size::B, RSI, RBP, Some(RBX), -8)
        });
        check("mov [r13+rdi+4], r15w", |a| {
            a.store_x(Size::H, R15, R13, Some(RDI), 4)
        });
        check("mov qword ptr [r14+rax], 0xfffffffffffffffe", |a| {
            a.store_imm_x(Size::Dw, -2, R14, Some(RAX), 0)
        });
        check("mov byte ptr [rdi+rsi+1], 0x7f", |a| {
            a.store_imm_x(Size::B, 127, RDI, Some(RSI), 1)
        });
        check("lea r9, [rbp+rbx]", |a| a.lea_x(R9, RBP, RBX, 0));
        check("shrx r13, rbx, rax", |a| {
            a.shiftx(true, shift::SHR, R13, RBX, RAX)
        });
        check("shlx eax, r15d, r14d", |a| {
            a.shiftx(false, shift::SHL, RAX, R15, R14)
        });
        check("sarx rdi, rdi, rcx", |a| {
            a.shiftx(true, shift::SAR, RDI, RDI, RCX)
        });
    }

    #[test]
    fn backward_jumps_are_short_and_alignment_pads_with_nops() {
        let mut a = Asm::default();
        let top = a.label();
        a.bind(top);
        a.ret();
        a.jcc(cc::NE, top);
        a.jmp(top);
        a.align(16);
        assert_eq!(a.pos(), 16);
        let bytes = a.finish().expect("bound");
        let insns = crate::jit::disasm::decode(&bytes, 0);
        assert_eq!(insns[1].text, "jne short 0");
        assert_eq!(insns[2].text, "jmp short 0");
        assert_eq!(&bytes[1..5], &[0x75, 0xfd, 0xeb, 0xfb]);
        // `66 90` decodes as its alias.
        let nop = |t: &str| t.starts_with("nop") || t == "xchg ax, ax";
        assert!(insns[3..].iter().all(|i| nop(&i.text)), "{insns:?}");
    }
}
