//! The semantics table: each program is written once and run on every engine
//! (interpreter checked, interpreter unchecked; the JIT joins by implementing
//! [`Engine`]). Expected values come from RFC 9669 and the kernel's behaviour.

use bpfvm_isa::asm::assemble;
use bpfvm_isa::consts::BPF_PSEUDO_FUNC;
use bpfvm_isa::Insn;
use bpfvm_vm::{
    HelperCtx, HelperError, HelperOutcome, HelperTable, JitOptions, LoadOptions, Region,
    RegionKind, RunOptions, RunResult, VmError, VmProgram, TAIL_CALL_LIMIT_ERR,
};
use std::sync::Arc;

/// An execution engine for loaded programs.
trait Engine {
    fn name(&self) -> &'static str;
    /// False for engines that trust the verifier (memory violation cases are skipped).
    fn checks_memory(&self) -> bool;
    fn run(&self, prog: &VmProgram, opts: RunOptions<'_>) -> Result<RunResult, VmError>;
}

struct Checked;
struct Unchecked;

impl Engine for Checked {
    fn name(&self) -> &'static str {
        "interpreter (checked)"
    }
    fn checks_memory(&self) -> bool {
        true
    }
    fn run(&self, prog: &VmProgram, opts: RunOptions<'_>) -> Result<RunResult, VmError> {
        prog.run(opts)
    }
}

impl Engine for Unchecked {
    fn name(&self) -> &'static str {
        "interpreter (unchecked)"
    }
    fn checks_memory(&self) -> bool {
        false
    }
    fn run(&self, prog: &VmProgram, opts: RunOptions<'_>) -> Result<RunResult, VmError> {
        // SAFETY: only cases that stay inside their memory run here (cases that
        // expect a memory violation are skipped for this engine).
        unsafe { prog.run_unchecked(opts) }
    }
}

struct JitChecked;
struct JitUnchecked;

impl Engine for JitChecked {
    fn name(&self) -> &'static str {
        "jit (checked)"
    }
    fn checks_memory(&self) -> bool {
        true
    }
    fn run(&self, prog: &VmProgram, opts: RunOptions<'_>) -> Result<RunResult, VmError> {
        prog.jit(&JitOptions::checked())
            .expect("jit compile")
            .run(opts)
    }
}

impl Engine for JitUnchecked {
    fn name(&self) -> &'static str {
        "jit (unchecked)"
    }
    fn checks_memory(&self) -> bool {
        false
    }
    fn run(&self, prog: &VmProgram, opts: RunOptions<'_>) -> Result<RunResult, VmError> {
        // SAFETY: as for the unchecked interpreter.
        let opts_jit = unsafe { JitOptions::unchecked() };
        prog.jit(&opts_jit).expect("jit compile").run(opts)
    }
}

/// The observed interpreter (one instruction at a time, an observer before
/// each): the observer sees exactly the instructions the run counts.
struct Observed;

impl Engine for Observed {
    fn name(&self) -> &'static str {
        "interpreter (observed)"
    }
    fn checks_memory(&self) -> bool {
        true
    }
    fn run(&self, prog: &VmProgram, opts: RunOptions<'_>) -> Result<RunResult, VmError> {
        let mut seen = 0u64;
        let r = prog.run_observed(opts, &mut |_: &bpfvm_vm::At<'_>| {
            seen += 1;
            bpfvm_vm::Flow::Continue
        })?;
        assert_eq!(seen, r.executed, "observed instructions");
        Ok(r)
    }
}

fn engines() -> Vec<Box<dyn Engine>> {
    vec![
        Box::new(Observed),
        Box::new(Checked),
        Box::new(Unchecked),
        Box::new(JitChecked),
        Box::new(JitUnchecked),
    ]
}

/// How the case's memory is presented to the program (r1 = its address, r2 = length).
#[derive(Clone, Copy, PartialEq)]
enum Mem {
    /// Writable plain memory.
    Rw,
    /// A read-only context.
    CtxRo,
    /// Packet data (BPF_LD_ABS reads it).
    Packet,
}

#[derive(Clone, Copy)]
enum Expect {
    R0(u64),
    /// Refused at load; the message contains this.
    Load(&'static str),
    /// Stopped while running; the message contains this.
    Run(&'static str),
    /// Stopped by a memory check (checked engines only); the message contains this.
    Violation(&'static str),
}

#[derive(Clone, Copy)]
enum Setup {
    None,
    /// The prog array (helper 12) holds the program itself at index 0.
    TailSelf,
    /// The prog array holds this program at index 0.
    TailTo(&'static str),
    Fuel(u64),
}

struct Case {
    name: &'static str,
    asm: &'static str,
    mem: &'static [u8],
    kind: Mem,
    setup: Setup,
    expect: Expect,
}

const fn case(name: &'static str, asm: &'static str, expect: Expect) -> Case {
    Case {
        name,
        asm,
        mem: &[],
        kind: Mem::Rw,
        setup: Setup::None,
        expect,
    }
}

const fn with_mem(mut c: Case, mem: &'static [u8], kind: Mem) -> Case {
    c.mem = mem;
    c.kind = kind;
    c
}

const fn with_setup(mut c: Case, setup: Setup) -> Case {
    c.setup = setup;
    c
}

use Expect::{Load, Run, Violation, R0};

const MEM8: &[u8] = &[0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88];
const PKT: &[u8] = &[0x12, 0x34, 0x56, 0x78];
const ZERO16: &[u8] = &[0; 16];

fn cases() -> Vec<Case> {
    vec![
        // ---- division and modulo by zero ----
        case("div64 by zero reg is 0", "mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit", R0(0)),
        case("div64 by zero imm is 0", "mov %r0, 7\ndiv %r0, 0\nexit", R0(0)),
        case(
            "div32 by zero is 0, upper half cleared",
            "lddw %r0, 0x100000007\nmov %r1, 0\ndiv32 %r0, %r1\nexit",
            R0(0),
        ),
        case("mod64 by zero leaves dst", "mov %r0, 7\nmov %r1, 0\nmod %r0, %r1\nexit", R0(7)),
        case(
            "mod32 by zero keeps low half, zero-extends",
            "lddw %r0, 0x100000007\nmov %r1, 0\nmod32 %r0, %r1\nexit",
            R0(7),
        ),
        case(
            "div64 imm is sign-extended then unsigned",
            "mov %r0, 5\ndiv %r0, -1\nexit",
            R0(0),
        ),
        case(
            "div32 imm is 32-bit unsigned",
            "mov32 %r0, -2\ndiv32 %r0, -1\nexit",
            R0(0),
        ),
        case(
            "sdiv64 INT_MIN / -1 wraps",
            "lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit",
            R0(0x8000_0000_0000_0000),
        ),
        case(
            "smod64 INT_MIN % -1 is 0",
            "lddw %r0, 0x8000000000000000\nmov %r1, -1\nsmod %r0, %r1\nexit",
            R0(0),
        ),
        case(
            "sdiv32 INT_MIN / -1 wraps",
            "mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit",
            R0(0x8000_0000),
        ),
        case("smod takes the dividend's sign", "mov %r0, -7\nsmod %r0, 2\nexit", R0(-1i64 as u64)),
        case("sdiv by zero is 0", "mov %r0, -7\nsdiv %r0, 0\nexit", R0(0)),
        case("smod by zero leaves dst", "mov %r0, -7\nsmod %r0, 0\nexit", R0(-7i64 as u64)),
        case(
            "smod32 by zero zero-extends",
            "mov %r0, -7\nsmod32 %r0, 0\nexit",
            R0(0xffff_fff9),
        ),
        // ---- shifts ----
        case("lsh64 count masked by 63", "mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit", R0(2)),
        case("lsh32 count masked by 31", "mov %r0, 1\nmov %r1, 33\nlsh32 %r0, %r1\nexit", R0(2)),
        case(
            "rsh32 works on the low half",
            "lddw %r0, 0xffffffff00000010\nrsh32 %r0, 4\nexit",
            R0(1),
        ),
        case(
            "arsh32 sign bit is bit 31, result zero-extended",
            "mov32 %r0, 0x80000000\narsh32 %r0, 4\nexit",
            R0(0xf800_0000),
        ),
        case("arsh64", "mov %r0, -16\narsh %r0, 2\nexit", R0(-4i64 as u64)),
        // ---- ALU32 zero extension, moves, sign extension ----
        case("mov32 zero-extends", "mov %r0, -1\nmov32 %r0, %r0\nexit", R0(0xffff_ffff)),
        case("mov64 imm sign-extends", "mov %r0, -1\nexit", R0(u64::MAX)),
        case("mov32 imm zero-extends", "mov32 %r0, -1\nexit", R0(0xffff_ffff)),
        case(
            "add32 wraps and zero-extends",
            "lddw %r0, 0x1ffffffff\nadd32 %r0, 1\nexit",
            R0(0),
        ),
        case("neg32", "mov %r0, 1\nneg32 %r0\nexit", R0(0xffff_ffff)),
        case("neg64", "mov %r0, 1\nneg %r0\nexit", R0(u64::MAX)),
        case("movsx8 to 64", "mov %r1, 0x80\nmovsx864 %r0, %r1\nexit", R0(-128i64 as u64)),
        case(
            "movsx16 to 32 zero-extends",
            "mov %r1, 0x8000\nmovsx1632 %r0, %r1\nexit",
            R0(0xffff_8000),
        ),
        case(
            "movsx32 to 64",
            "mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1\nexit",
            R0(0xffff_ffff_8000_0000),
        ),
        case("lddw loads 64 bits", "lddw %r0, 0x123456789abcdef0\nexit", R0(0x1234_5678_9abc_def0)),
        // ---- byte swaps ----
        case("be16 truncates and swaps", "mov %r0, 0x11223344\nbe16 %r0\nexit", R0(0x4433)),
        case("be32", "mov %r0, 0x11223344\nbe32 %r0\nexit", R0(0x4433_2211)),
        case(
            "be64",
            "lddw %r0, 0x0102030405060708\nbe64 %r0\nexit",
            R0(0x0807_0605_0403_0201),
        ),
        case("le16 truncates", "mov %r0, 0x11223344\nle16 %r0\nexit", R0(0x3344)),
        case("le32 truncates", "lddw %r0, 0x1122334455667788\nle32 %r0\nexit", R0(0x5566_7788)),
        case("bswap16", "mov %r0, 0x1234\nbswap16 %r0\nexit", R0(0x3412)),
        case(
            "bswap64",
            "lddw %r0, 0x0102030405060708\nbswap64 %r0\nexit",
            R0(0x0807_0605_0403_0201),
        ),
        // ---- sign-extending loads ----
        with_mem(
            case("ldxsb sign-extends", "ldxsb %r0, [%r1]\nexit", R0(-127i64 as u64)),
            MEM8,
            Mem::Rw,
        ),
        with_mem(
            case("ldxsh sign-extends", "ldxsh %r0, [%r1+2]\nexit", R0(0xffff_ffff_ffff_8483)),
            MEM8,
            Mem::Rw,
        ),
        with_mem(
            case("ldxsw sign-extends", "ldxsw %r0, [%r1+4]\nexit", R0(0xffff_ffff_8887_8685)),
            MEM8,
            Mem::Rw,
        ),
        with_mem(
            case("ldxw zero-extends", "ldxw %r0, [%r1+4]\nexit", R0(0x8887_8685)),
            MEM8,
            Mem::Rw,
        ),
        // ---- jumps ----
        case(
            "jeq32 compares the low half only",
            "lddw %r1, 0x100000000\nmov %r0, 1\njeq32 %r1, 0, +1\nmov %r0, 2\nexit",
            R0(1),
        ),
        case(
            "jsgt32 is signed on 32 bits",
            "mov32 %r1, 0xffffffff\nmov %r0, 1\njsgt32 %r1, 0, +1\nmov %r0, 2\nexit",
            R0(2),
        ),
        case(
            "jset32 ignores the high half",
            "lddw %r1, 0x100000000\nmov %r0, 1\njset32 %r1, -1, +1\nmov %r0, 2\nexit",
            R0(2),
        ),
        case(
            "jgt imm is sign-extended then unsigned",
            "mov %r1, 5\nmov %r0, 1\njgt %r1, -1, +1\nmov %r0, 2\nexit",
            R0(2),
        ),
        case(
            "jsgt is signed on 64 bits",
            "mov %r1, -1\nmov %r0, 1\njsgt %r1, -2, +1\nmov %r0, 2\nexit",
            R0(1),
        ),
        case(
            "jlt32 unsigned",
            "mov32 %r1, 0xfffffffe\nmov32 %r2, 0xffffffff\nmov %r0, 1\njlt32 %r1, %r2, +1\nmov %r0, 2\nexit",
            R0(1),
        ),
        case(
            "ja32 (gotol)",
            "mov %r0, 1\nja32 +1\nmov %r0, 2\nexit",
            R0(1),
        ),
        case(
            "backward loop",
            "mov %r0, 0\nmov %r1, 0\nL: add %r0, %r1\nadd %r1, 1\njlt %r1, 10, L\nexit",
            R0(45),
        ),
        // ---- pairs the loader fuses (mov + alu, add + branch) ----
        case(
            "mov then alu on the moved register",
            "mov %r2, 5\nmov %r3, %r2\nmul %r3, %r2\nmov %r0, %r3\nexit",
            R0(25),
        ),
        case(
            "mov then alu reading the same register",
            "mov %r1, 3\nmov %r2, %r1\nadd %r2, %r2\nmov %r0, %r2\nexit",
            R0(6),
        ),
        case(
            "jump into the second half of a pair",
            "mov %r0, 10\nmov %r2, 1\njeq %r2, 1, +1\nmov %r0, %r2\nadd %r0, 7\nexit",
            R0(17),
        ),
        case(
            "fallthrough into a pair",
            "mov %r0, 10\nmov %r2, 1\njeq %r2, 2, +1\nmov %r0, %r2\nadd %r0, 7\nexit",
            R0(8),
        ),
        case(
            "mov then mod by zero keeps the moved value",
            "mov %r1, 7\nmov %r2, 0\nmov %r3, %r1\nmod %r3, %r2\nmov %r0, %r3\nexit",
            R0(7),
        ),
        case(
            "mov then div by zero is 0",
            "mov %r1, 7\nmov %r3, %r1\ndiv %r3, 0\nmov %r0, %r3\nexit",
            R0(0),
        ),
        case(
            "add then compare with a register",
            "mov %r0, 0\nmov %r2, 5\nL: add %r0, 1\njlt %r0, %r2, L\nexit",
            R0(5),
        ),
        case(
            "add then signed compare",
            "mov %r0, -5\nL: add %r0, 1\njslt %r0, 0, L\nexit",
            R0(0),
        ),
        case(
            "add then goto",
            "mov %r0, 0\nL: jge %r0, 3, +2\nadd %r0, 1\nja L\nexit",
            R0(3),
        ),
        case(
            "mov then arsh",
            "mov %r1, -64\nmov %r0, %r1\narsh %r0, 3\nexit",
            R0(-8i64 as u64),
        ),
        // ---- bpf-to-bpf calls ----
        case(
            "call local passes r1-r5, preserves r6-r9",
            "mov %r6, 6\nmov %r1, 1\nmov %r5, 5\ncall local f\nadd %r0, %r6\nexit\n\
             f: mov %r0, %r1\nadd %r0, %r5\nmov %r6, 100\nexit",
            R0(12),
        ),
        case(
            "each frame has its own stack",
            "stdw [%r10-8], 1\ncall local f\nldxdw %r0, [%r10-8]\nexit\n\
             f: stdw [%r10-8], 2\nexit",
            R0(1),
        ),
        case(
            "callee writes through a pointer to the caller's stack",
            "stdw [%r10-8], 1\nmov %r1, %r10\nadd %r1, -8\ncall local f\nldxdw %r0, [%r10-8]\nexit\n\
             f: stdw [%r1], 42\nexit",
            R0(42),
        ),
        case(
            "r10 is restored after a call",
            "mov %r6, %r10\ncall local f\nmov %r0, %r10\nsub %r0, %r6\nexit\nf: exit",
            R0(0),
        ),
        case(
            "8 frames are allowed",
            "mov %r1, 7\ncall local f\nmov %r0, 1\nexit\n\
             f: sub %r1, 1\njeq %r1, 0, +1\ncall local f\nexit",
            R0(1),
        ),
        case(
            "9 frames are too deep",
            "mov %r1, 8\ncall local f\nmov %r0, 1\nexit\n\
             f: sub %r1, 1\njeq %r1, 0, +1\ncall local f\nexit",
            Run("the call stack of 9 frames is too deep"),
        ),
        case(
            "callx with a helper id calls the helper",
            "mov %r1, 33\nmov %r2, 5\ncall %r2\nexit",
            R0(33),
        ),
        case(
            "callx to an unknown id fails",
            "mov %r2, 777\ncall %r2\nexit",
            Run("not a helper id"),
        ),
        // ---- memory violations (checked engines) ----
        case(
            "stack underflow",
            "stdw [%r10-520], 1\nmov %r0, 0\nexit",
            Violation("insn 0: invalid stack access: write of 8 bytes"),
        ),
        case(
            "stack overflow above r10",
            "ldxdw %r0, [%r10]\nexit",
            Violation("invalid stack access: read of 8 bytes"),
        ),
        case(
            "stack access in frame 0 straddling r10",
            "ldxdw %r0, [%r10-4]\nexit",
            Violation("invalid stack access"),
        ),
        with_mem(
            case(
                "reading beyond mem",
                "ldxb %r0, [%r1+8]\nexit",
                Violation("invalid access to memory: read of 1 bytes"),
            ),
            MEM8,
            Mem::Rw,
        ),
        with_mem(
            case(
                "dword straddling the end of mem",
                "ldxdw %r0, [%r1+4]\nexit",
                Violation("insn 0: invalid access to memory"),
            ),
            MEM8,
            Mem::Rw,
        ),
        with_mem(
            case(
                "writing to a read-only context",
                "mov %r0, 0\nstb [%r1], 1\nexit",
                Violation("insn 1: invalid write to read-only context: write of 1 bytes"),
            ),
            MEM8,
            Mem::CtxRo,
        ),
        with_mem(
            case("reading a read-only context is fine", "ldxb %r0, [%r1+7]\nexit", R0(0x88)),
            MEM8,
            Mem::CtxRo,
        ),
        with_mem(
            case(
                "packet out of bounds",
                "ldxw %r0, [%r1+2]\nexit",
                Violation("invalid access to packet"),
            ),
            PKT,
            Mem::Packet,
        ),
        case(
            "wild pointer",
            "mov %r1, 0x1000\nldxdw %r0, [%r1]\nexit",
            Violation("invalid mem access: read of 8 bytes at 0x1000"),
        ),
        case(
            "null store",
            "mov %r1, 0\nstw [%r1], 1\nexit",
            Violation("invalid mem access: write of 4 bytes at 0x0"),
        ),
        case(
            "callee frame is gone after return",
            "call local f\nldxdw %r0, [%r0]\nexit\nf: mov %r0, %r10\nadd %r0, -8\nexit",
            Violation("invalid stack access"),
        ),
        // ---- atomics ----
        case(
            "fetch add returns the old value in src",
            "stdw [%r10-8], 10\nmov %r1, 5\nlock fetch add [%r10-8], %r1\nldxdw %r0, [%r10-8]\nmul %r0, 100\nadd %r0, %r1\nexit",
            R0(1510),
        ),
        case(
            "add32 without fetch leaves src",
            "stw [%r10-4], 10\nmov %r1, 5\nlock add32 [%r10-4], %r1\nldxw %r0, [%r10-4]\nadd %r0, %r1\nexit",
            R0(20),
        ),
        case(
            "fetch or32 zero-extends the old value",
            "stw [%r10-4], -1\nmov %r1, -1\nlock fetch or32 [%r10-4], %r1\nmov %r0, %r1\nexit",
            R0(0xffff_ffff),
        ),
        case(
            "fetch and, xor",
            "stdw [%r10-8], 0xff\nmov %r1, 0x0f\nlock fetch and [%r10-8], %r1\nmov %r2, 0xf0\nlock xor [%r10-8], %r2\nldxdw %r0, [%r10-8]\nexit",
            R0(0xff),
        ),
        case(
            "xchg",
            "stdw [%r10-8], 7\nmov %r1, 9\nlock xchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\nmul %r0, 10\nadd %r0, %r1\nexit",
            R0(97),
        ),
        case(
            "cmpxchg success stores src, r0 = old",
            "stdw [%r10-8], 7\nmov %r0, 7\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\nldxdw %r2, [%r10-8]\nmul %r0, 10\nadd %r0, %r2\nexit",
            R0(79),
        ),
        case(
            "cmpxchg failure leaves memory, r0 = old",
            "stdw [%r10-8], 7\nmov %r0, 8\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\nldxdw %r2, [%r10-8]\nmul %r0, 10\nadd %r0, %r2\nexit",
            R0(77),
        ),
        case(
            "cmpxchg32 compares the low half of r0",
            "stw [%r10-4], 7\nlddw %r0, 0x100000007\nmov %r1, 9\nlock cmpxchg32 [%r10-4], %r1\nldxw %r0, [%r10-4]\nexit",
            R0(9),
        ),
        case(
            "misaligned atomic",
            "mov %r1, 1\nlock add [%r10-12], %r1\nmov %r0, 0\nexit",
            Run("misaligned atomic access of 8 bytes"),
        ),
        // ---- load-acquire, store-release (Linux 6.15+) ----
        with_mem(
            case(
                "load_acquire zero-extends every size",
                "load_acqb %r2, [%r1+0]\nload_acqh %r3, [%r1+2]\nload_acqw %r4, [%r1+4]\nload_acqdw %r5, [%r1+0]\nmov %r0, %r2\nadd %r0, %r3\nadd %r0, %r4\nxor %r0, %r5\nexit",
                R0((0x81 + 0x8483 + 0x8887_8685u64) ^ 0x8887_8685_8483_8281),
            ),
            MEM8,
            Mem::Rw,
        ),
        case(
            "store_release writes the low bytes",
            "stdw [%r10-8], 0\nlddw %r1, 0x1122334455667788\nstore_relb [%r10-8], %r1\nstore_relh [%r10-6], %r1\nstore_relw [%r10-4], %r1\nldxdw %r0, [%r10-8]\nstore_reldw [%r10-16], %r1\nldxdw %r2, [%r10-16]\nxor %r0, %r2\nexit",
            R0(0x5566_7788_7788_0088 ^ 0x1122_3344_5566_7788),
        ),
        case(
            "misaligned load_acquire",
            "stdw [%r10-8], 0\nload_acqw %r0, [%r10-6]\nexit",
            Run("misaligned atomic access of 4 bytes"),
        ),
        case(
            "misaligned store_release",
            "mov %r1, 1\nstore_relh [%r10-3], %r1\nmov %r0, 0\nexit",
            Run("misaligned atomic access of 2 bytes"),
        ),
        // ---- addr_space_cast (no arena maps: the 32-bit arena offset) ----
        case(
            "addr_space_cast to the kernel space keeps the low half",
            "lddw %r2, 0x1234567800000010\naddr_space_cast %r0, %r2, 0, 1\nexit",
            R0(0x10),
        ),
        case(
            "addr_space_cast to the user space keeps the low half",
            "lddw %r2, 0xffffffff80000000\naddr_space_cast %r0, %r2, 1, 0\nexit",
            R0(0x8000_0000),
        ),
        // ---- may_goto: falls through BPF_MAX_LOOPS (8M) times per frame, then jumps ----
        case("may_goto falls through", "mov %r0, 2\nmay_goto +1\nmov %r0, 1\nexit", R0(1)),
        case(
            "may_goto bounds a loop at BPF_MAX_LOOPS",
            "mov %r0, 0\nloop:\nadd %r0, 1\nmay_goto out\nja loop\nout:\nexit",
            R0(8 * 1024 * 1024 + 1),
        ),
        case(
            "a jump back to the function's first insn does not reset the count",
            "add %r0, 1\nmay_goto +1\nja -3\nexit",
            R0(8 * 1024 * 1024 + 1),
        ),
        case(
            "each call has its own may_goto count",
            "call local sub\nmov %r6, %r0\ncall local sub\nadd %r6, %r0\nmov %r0, 0\nloop:\nadd %r0, 1\nmay_goto +1\nja loop\nlsh %r0, 32\nadd %r0, %r6\nexit\nsub:\nmov %r0, 0\nsl:\nadd %r0, 1\nmay_goto +1\nja sl\nexit",
            R0(((8u64 * 1024 * 1024 + 1) << 32) + 2 * (8 * 1024 * 1024 + 1)),
        ),
        // ---- legacy packet loads ----
        with_mem(
            case("ldabsh is big-endian", "ldabsh 1\nexit", R0(0x3456)),
            PKT,
            Mem::Packet,
        ),
        with_mem(
            case("ldindb", "mov %r6, 1\nldindb %r6, 2\nexit", R0(0x78)),
            PKT,
            Mem::Packet,
        ),
        with_mem(
            case(
                "ldabs out of range ends the program with 0",
                "mov %r0, 5\nldabsw 2\nmov %r0, 99\nexit",
                R0(0),
            ),
            PKT,
            Mem::Packet,
        ),
        case("ldabs without a packet", "ldabsb 0\nexit", Run("without a packet")),
        // ---- tail calls ----
        with_setup(
            with_mem(
                case(
                    "tail call continues in the target with r1 = ctx",
                    "mov %r6, 1\nmov %r2, 0\nmov %r3, 0\ncall 12\nmov %r0, 99\nexit",
                    R0(0x8483_8281 + 1000),
                ),
                MEM8,
                Mem::Rw,
            ),
            Setup::TailTo("ldxw %r0, [%r1]\nadd %r0, 1000\nexit"),
        ),
        with_setup(
            with_mem(
                case(
                    "33 tail calls then the 34th fails",
                    "mov %r6, %r1\nldxdw %r0, [%r6]\nadd %r0, 1\nstxdw [%r6], %r0\n\
                     mov %r2, 0\nmov %r3, 0\ncall 12\n\
                     mov %r7, %r0\nldxdw %r0, [%r6]\nlsh %r0, 32\nadd %r0, %r7\nexit",
                    R0((34u64 << 32).wrapping_add(TAIL_CALL_LIMIT_ERR)),
                ),
                ZERO16,
                Mem::Rw,
            ),
            Setup::TailSelf,
        ),
        case(
            "tail call to an empty slot returns -ENOENT",
            "mov %r2, 0\nmov %r3, 3\ncall 12\nexit",
            R0(-2i64 as u64),
        ),
        // ---- callbacks (bpf_loop) ----
        case(
            "bpf_loop runs the callback with the caller's stack reachable",
            "stdw [%r10-8], 0\nmov %r1, 10\nlddw %r2, 0x7fffffff00000007\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 0\n\
             call 181\nldxdw %r0, [%r10-8]\nexit\n\
             ldxdw %r0, [%r2]\nadd %r0, %r1\nstxdw [%r2], %r0\nmov %r0, 0\nexit",
            R0(45),
        ),
        case(
            "bpf_loop callback returning 1 stops the loop",
            "mov %r1, 10\nlddw %r2, 0x7fffffff00000005\nmov %r3, 0\nmov %r4, 0\ncall 181\nexit\n\
             mov %r0, 0\njne %r1, 3, +1\nmov %r0, 1\nexit",
            R0(4),
        ),
        case(
            "bpf_loop with a forged callback",
            "mov %r1, 1\nmov %r2, 12345\nmov %r3, 0\nmov %r4, 0\ncall 181\nexit",
            Run("callback target 0x3039 is not the start of a function"),
        ),
        case(
            "callbacks count as frames",
            "mov %r1, 1\nlddw %r2, 0x7fffffff00000005\nmov %r3, 0\nmov %r4, 0\ncall 181\nexit\n\
             mov %r1, 7\ncall local +0\nsub %r1, 1\njeq %r1, 0, +1\ncall local -3\nexit",
            Run("the call stack of 9 frames is too deep"),
        ),
        case(
            "callx to a BPF_PSEUDO_FUNC value is a local call",
            "lddw %r2, 0x7fffffff00000003\ncall %r2\nexit\nmov %r0, 17\nexit",
            R0(17),
        ),
        // ---- helpers and memory ----
        case(
            "a helper hands out a region the program may use",
            "call 1000\nstdw [%r0+8], 5\nldxdw %r0, [%r0+8]\nexit",
            R0(5),
        ),
        case(
            "beyond a helper's region",
            "call 1000\nldxdw %r0, [%r0+16]\nexit",
            Violation("invalid access to memory"),
        ),
        with_mem(
            case("helper reads program memory", "call 1001\nexit", R0(0x81 + 0x82 + 0x83)),
            &[0x81, 0x82, 0x83],
            Mem::Rw,
        ),
        with_mem(
            case(
                "helper refuses memory beyond mem",
                "add %r2, 1\ncall 1001\nexit",
                Violation("insn 1: helper 1001 failed: invalid read of 4 bytes"),
            ),
            &[0x81, 0x82, 0x83],
            Mem::Rw,
        ),
        // ---- fuel ----
        with_setup(
            case("fuel bounds an infinite loop", "mov %r0, 0\nja -1\nexit", Run("out of fuel")),
            Setup::Fuel(1000),
        ),
        // ---- load-time checks ----
        case("writing r10", "mov %r10, 1\nexit", Load("insn 0: frame pointer is read only")),
        case(
            "fetch into r10",
            "lock fetch add [%r10-8], %r10\nexit",
            Load("insn 0: frame pointer is read only"),
        ),
        case("jump out of range", "ja +5\nexit", Load("insn 0: jump out of range")),
        case(
            "jump into the middle of lddw",
            "ja +1\nlddw %r0, 1\nexit",
            Load("the middle of a BPF_LD_IMM64"),
        ),
        case("falling off the end", "mov %r0, 0", Load("fall off the end")),
        case(
            "conditional jump last",
            "mov %r0, 0\njeq %r0, 0, -2",
            Load("insn 1: last insn is not an exit or jmp"),
        ),
        case("unknown helper", "call 999\nexit", Load("insn 0: invalid func unknown#999")),
        case("call local out of range", "call local +7\nexit", Load("insn 0: call to insn 8 out of range")),
        case(
            "kfunc calls",
            "call kfunc 5\nexit",
            Load("kernel function calls"),
        ),
    ]
}

/// Marks LD_IMM64 constants `0x7fffffff_XXXXXXXX` as BPF_PSEUDO_FUNC with relative
/// target XXXXXXXX (the assembler has no syntax for them).
fn pseudo_funcs(insns: &mut [Insn]) {
    for k in 0..insns.len().saturating_sub(1) {
        if insns[k].code == 0x18 && insns[k + 1].imm == 0x7fff_ffff {
            insns[k].src_reg = BPF_PSEUDO_FUNC;
            insns[k + 1].imm = 0;
        }
    }
}

/// The runtime environment the test helpers use.
#[derive(Default)]
struct Env {
    prog_array: Vec<Arc<VmProgram>>,
    buf: Vec<u64>,
}

fn helpers() -> Arc<HelperTable> {
    let mut t = HelperTable::new();
    t.register(5, "return_r1", |_: &mut HelperCtx<'_, '_>, a: [u64; 5]| {
        Ok(HelperOutcome::Return(a[0]))
    });
    t.register(
        12,
        "bpf_tail_call",
        |ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]| -> Result<HelperOutcome, HelperError> {
            let env = ctx.env::<Env>()?;
            Ok(match env.prog_array.get(a[2] as usize) {
                Some(p) => HelperOutcome::TailCall(p.clone()),
                None => HelperOutcome::Return(-2i64 as u64),
            })
        },
    );
    t.register(
        181,
        "bpf_loop",
        |ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]| -> Result<HelperOutcome, HelperError> {
            let mut n = 0;
            while n < a[0] {
                let ret = ctx.call_function(a[1], [n, a[2], 0, 0, 0])?;
                n += 1;
                if ret == 1 {
                    break;
                }
            }
            Ok(HelperOutcome::Return(n))
        },
    );
    t.register(
        1000,
        "hand_out_buffer",
        |ctx: &mut HelperCtx<'_, '_>, _: [u64; 5]| -> Result<HelperOutcome, HelperError> {
            let env = ctx.env::<Env>()?;
            env.buf = vec![0u64; 2];
            let p = env.buf.as_mut_ptr() as u64;
            ctx.register_region(Region::new(p, 16, true, RegionKind::Mem));
            Ok(HelperOutcome::Return(p))
        },
    );
    t.register(
        1001,
        "sum_bytes",
        |ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]| -> Result<HelperOutcome, HelperError> {
            let bytes = ctx.read_bytes(a[0], a[1] as usize)?;
            Ok(HelperOutcome::Return(bytes.iter().map(|b| *b as u64).sum()))
        },
    );
    Arc::new(t)
}

fn load(asm: &str, table: &Arc<HelperTable>) -> Result<VmProgram, bpfvm_vm::LoadError> {
    let mut insns = assemble(asm).unwrap_or_else(|e| panic!("assembling {asm:?}: {e}"));
    pseudo_funcs(&mut insns);
    VmProgram::new(&insns, &LoadOptions::new(table.clone()))
}

fn run_case(engine: &dyn Engine, c: &Case, table: &Arc<HelperTable>) -> Result<(), String> {
    if matches!(c.expect, Violation(_)) && !engine.checks_memory() {
        return Ok(());
    }
    let prog = match (load(c.asm, table), c.expect) {
        (Ok(p), Load(want)) => {
            return Err(format!(
                "loaded, expected a load error containing {want:?}: {p:?}"
            ))
        }
        (Ok(p), _) => Arc::new(p),
        (Err(e), Load(want)) if e.to_string().contains(want) => return Ok(()),
        (Err(e), _) => return Err(format!("load error: {e}")),
    };
    let mut env = Env::default();
    match c.setup {
        Setup::TailSelf => env.prog_array.push(prog.clone()),
        Setup::TailTo(asm) => env
            .prog_array
            .push(Arc::new(load(asm, table).map_err(|e| e.to_string())?)),
        Setup::None | Setup::Fuel(_) => {}
    }
    let mut mem = c.mem.to_vec();
    let (ptr, len) = (mem.as_mut_ptr() as u64, mem.len() as u64);
    let mut opts = RunOptions::new().args([ptr, len, 0, 0, 0]);
    opts = match c.kind {
        Mem::Rw => opts.region(Region::new(ptr, len, true, RegionKind::Mem)),
        Mem::CtxRo => opts.region(Region::new(ptr, len, false, RegionKind::Context)),
        Mem::Packet => opts.packet(ptr, ptr + len),
    };
    if let Setup::Fuel(f) = c.setup {
        opts = opts.fuel(f);
    }
    let res = engine.run(&prog, opts.env(&mut env));
    match (res, c.expect) {
        (Ok(r), R0(want)) if r.r0 == want => Ok(()),
        (Ok(r), _) => Err(format!("r0 = {:#x}", r.r0)),
        (Err(e), Run(want) | Violation(want)) => {
            let msg = error_chain(&e);
            if msg.contains(want) {
                Ok(())
            } else {
                Err(format!("error {msg:?}, expected one containing {want:?}"))
            }
        }
        (Err(e), _) => Err(format!("run error: {}", error_chain(&e))),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s = format!("{s}: {c}");
        cur = c.source();
    }
    s
}

#[test]
fn semantics_table_on_every_engine() {
    let table = helpers();
    let mut failures = Vec::new();
    let cases = cases();
    for engine in engines() {
        for c in &cases {
            if let Err(why) = run_case(engine.as_ref(), c, &table) {
                failures.push(format!("[{}] {}: {why}", engine.name(), c.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn executed_instructions_are_counted_exactly() {
    let prog = load(
        "mov %r0, 0\nL: add %r0, 1\njlt %r0, 10, L\ncall local f\nexit\nf: exit",
        &helpers(),
    )
    .unwrap();
    let r = prog.run(RunOptions::new()).unwrap();
    // 1 + 10 * 2 + call + callee exit + exit
    assert_eq!((r.r0, r.executed), (10, 24));
    let j = prog.jit(&JitOptions::checked()).unwrap();
    let r = j.run(RunOptions::new()).unwrap();
    assert_eq!((r.r0, r.executed), (10, 24), "jit");
}

#[test]
fn atomics_are_atomic_across_threads() {
    // Four threads add 1 and 2 (64-bit and 32-bit) 10000 times each to shared memory.
    let prog = Arc::new(
        load(
            "mov %r2, 0\nmov %r3, 1\nmov %r4, 2\n\
             L: lock add [%r1], %r3\nlock add32 [%r1+8], %r4\nadd %r2, 1\njlt %r2, 10000, L\nexit",
            &helpers(),
        )
        .unwrap(),
    );
    let shared = Arc::new([
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
    ]);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (prog, shared) = (prog.clone(), shared.clone());
            std::thread::spawn(move || {
                let p = shared.as_ptr() as u64;
                prog.run(RunOptions::new().arg1(p).region(Region::new(
                    p,
                    16,
                    true,
                    RegionKind::MapValue,
                )))
                .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let v0 = shared[0].load(std::sync::atomic::Ordering::SeqCst);
    let v1 = shared[1].load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!((v0, v1 as u32), (40000, 80000));
}

#[test]
fn memory_oracle_is_asked_last() {
    struct Oracle(u64);
    impl bpfvm_vm::MemoryOracle for Oracle {
        fn check(&self, addr: u64, len: usize, _write: bool) -> bool {
            addr >= self.0 && addr + len as u64 <= self.0 + 8
        }
        fn describe(&self, addr: u64) -> Option<RegionKind> {
            (addr >= self.0 && addr <= self.0 + 8).then_some(RegionKind::MapValue)
        }
    }
    let mut value = [7u8; 8];
    let o = Oracle(value.as_mut_ptr() as u64);
    let prog = load("ldxdw %r0, [%r1]\nstdw [%r1], 1\nexit", &helpers()).unwrap();
    let r = prog.run(RunOptions::new().arg1(o.0).oracle(&o)).unwrap();
    assert_eq!(r.r0, 0x0707_0707_0707_0707);
    assert_eq!(value[0], 1);
    let prog = load("ldxdw %r0, [%r1+4]\nexit", &helpers()).unwrap();
    let e = prog
        .run(RunOptions::new().arg1(o.0).oracle(&o))
        .unwrap_err();
    assert!(e.to_string().contains("invalid access to map value"), "{e}");
}
