//! The JIT's API and the places where it must behave exactly as the interpreter:
//! error values, instruction counts, region changes made by helpers, the code
//! listing, and code memory that is never writable and executable at once.

use bpfvm_isa::asm::assemble;
use bpfvm_vm::{
    HelperCtx, HelperError, HelperOutcome, HelperTable, JitError, JitOptions, LoadOptions, Region,
    RegionKind, RunOptions, VmProgram,
};
use std::sync::Arc;

fn helpers() -> Arc<HelperTable> {
    let mut t = HelperTable::new();
    // 1000: hands out a fresh 16-byte region; 1001: withdraws it; 5: returns r1.
    t.register(
        1000,
        "hand_out",
        |ctx: &mut HelperCtx<'_, '_>, _: [u64; 5]| -> Result<HelperOutcome, HelperError> {
            let buf = ctx.env::<Vec<u64>>()?;
            let p = buf.as_mut_ptr() as u64;
            ctx.register_region(Region::new(p, 16, true, RegionKind::Mem));
            Ok(HelperOutcome::Return(p))
        },
    );
    t.register(
        1001,
        "withdraw",
        |ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]| -> Result<HelperOutcome, HelperError> {
            Ok(HelperOutcome::Return(ctx.unregister_region(a[0]) as u64))
        },
    );
    t.register(5, "return_r1", |_: &mut HelperCtx<'_, '_>, a: [u64; 5]| {
        Ok(HelperOutcome::Return(a[0]))
    });
    Arc::new(t)
}

fn load(src: &str) -> VmProgram {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    VmProgram::new(&insns, &LoadOptions::new(helpers())).expect("loads")
}

/// Runs `src` on the interpreter and the checked JIT with `mem` as a region of
/// `kind` (r1 = its address, r2 = its length) and returns both outcomes as text.
fn both(src: &str, mem: &[u8], kind: RegionKind, writable: bool, fuel: Option<u64>) -> [String; 2] {
    let prog = load(src);
    let jit = prog.jit(&JitOptions::checked()).expect("compiles");
    let mut out = [String::new(), String::new()];
    for (k, slot) in out.iter_mut().enumerate() {
        let mut m = mem.to_vec();
        let mut env: Vec<u64> = vec![0; 2];
        let (p, len) = (m.as_mut_ptr() as u64, m.len() as u64);
        let mut opts = RunOptions::new()
            .args([p, len, 0, 0, 0])
            .region(Region::new(p, len, writable, kind))
            .env(&mut env);
        if let Some(f) = fuel {
            opts = opts.fuel(f);
        }
        let r = if k == 0 {
            prog.run(opts)
        } else {
            jit.run(opts)
        };
        *slot = match r {
            Ok(r) => format!("r0={:#x} executed={} mem={m:?}", r.r0, r.executed),
            // Addresses differ between the two runs' buffers; the rest must not.
            Err(e) => format!("error: {e}")
                .split(" at 0x")
                .next()
                .unwrap_or("")
                .to_string(),
        };
    }
    out
}

fn assert_same(
    src: &str,
    mem: &[u8],
    kind: RegionKind,
    writable: bool,
    fuel: Option<u64>,
) -> String {
    let [i, j] = both(src, mem, kind, writable, fuel);
    assert_eq!(i, j, "interpreter and JIT differ on:\n{src}");
    i
}

#[test]
fn errors_are_the_interpreters() {
    let cases = [
        // A read beyond the memory block, through the slow path.
        ("ldxdw %r0, [%r1+4]\nexit", "invalid access to memory"),
        // A write to a read-only context.
        ("stb [%r1], 1\nexit", "invalid write to read-only context"),
        // Below the stack frame.
        ("ldxdw %r0, [%r10-520]\nexit", "invalid stack access"),
        // Misaligned atomic.
        (
            "mov %r3, 1\nlock add [%r10-15], %r3\nexit",
            "misaligned atomic",
        ),
        // Too many frames.
        (
            "call local +1\nexit\ncall local -1\nexit",
            "9 frames is too deep",
        ),
        // callx to nothing.
        ("mov %r3, 77\ncallx %r3\nexit", "callx to 0x4d"),
    ];
    for (src, want) in cases {
        let kind = if src.starts_with("stb") {
            RegionKind::Context
        } else {
            RegionKind::Mem
        };
        let out = assert_same(
            src,
            &[1, 2, 3, 4, 5, 6, 7, 8],
            kind,
            kind == RegionKind::Mem,
            None,
        );
        assert!(out.contains(want), "{src}: {out}");
    }
}

#[test]
fn fuel_and_counts_match_exactly() {
    let loops = "mov %r0, 0\nmov %r1, 0\nL: add %r0, %r1\njeq %r1, 3, +2\nadd %r1, 1\nja L\n\
                 call local +1\nexit\nmov %r2, 5\nM: sub %r2, 1\njne %r2, 0, M\nexit";
    let full = assert_same(loops, &[], RegionKind::Mem, true, None);
    assert!(full.contains("executed="), "{full}");
    // Every fuel limit around the program's length gives the same outcome and
    // count. (Only the position differs: the interpreter names the jump, the JIT
    // the instruction it jumps to.)
    for fuel in 0..40 {
        let [i, j] = both(loops, &[], RegionKind::Mem, true, Some(fuel));
        let strip = |s: &str| {
            s.split_once(": out of fuel")
                .map_or(s.to_string(), |x| x.1.to_string())
        };
        assert_eq!(strip(&i), strip(&j), "fuel {fuel}");
    }
}

#[test]
fn region_changes_by_helpers_are_seen() {
    // Fill the write cache with the helper's region, withdraw it, write again.
    let src = "call 1000\nmov %r6, %r0\nstdw [%r6], 7\nldxdw %r7, [%r6]\nmov %r1, %r6\n\
               call 1001\nstdw [%r6+8], 9\nexit";
    let out = assert_same(src, &[], RegionKind::Mem, true, None);
    assert!(out.contains("insn 6: invalid"), "{out}");
    // A read of a read-only region fills the read cache only.
    let src = "ldxb %r0, [%r1]\nstb [%r1+1], 5\nexit";
    let out = assert_same(src, &[1, 2, 3], RegionKind::Context, false, None);
    assert!(out.contains("read-only"), "{out}");
}

#[test]
fn callx_helper_and_packet_loads() {
    let out = assert_same(
        "mov %r1, 42\nmov %r3, 5\ncallx %r3\nexit",
        &[],
        RegionKind::Mem,
        true,
        None,
    );
    assert!(out.starts_with("r0=0x2a"), "{out}");
    // An out-of-range BPF_LD_ABS in a subprogram ends the whole run with r0 = 0.
    let src = "mov %r6, %r1\nmov %r0, 9\ncall local +1\nexit\nldabsw 2\nldabsh 100\nexit";
    let out = assert_same(src, &[1, 2, 3, 4, 5, 6], RegionKind::Packet, true, None);
    assert!(out.starts_with("r0=0x0"), "{out}");
    let out = assert_same(
        "ldabsw 1\nexit",
        &[1, 2, 3, 4, 5, 6],
        RegionKind::Packet,
        true,
        None,
    );
    assert!(out.starts_with("r0=0x2030405"), "{out}");
}

#[test]
fn listing_maps_instructions_to_native_code() {
    let prog = load("mov %r0, 1\nlddw %r1, 0x1122334455667788\nadd %r0, %r1\nexit");
    let jit = prog.jit(&JitOptions::checked()).unwrap();
    assert_eq!(jit.bytes_jited(), jit.jited_code().len());
    let offs = jit.insn_offsets();
    assert_eq!(offs.len(), 5);
    assert_eq!(offs[1], offs[2], "both slots of lddw map to one offset");
    assert!(offs.windows(2).all(|w| w[0] <= w[1]));
    let text = jit.listing();
    assert!(text.contains("; 1: r1 = 0x1122334455667788"), "{text}");
    assert!(text.contains("mov rdi, 0x1122334455667788"), "{text}");
    assert!(text.contains("add rax, rdi"), "{text}");
    let insns = jit.disassemble();
    let total: usize = insns.iter().map(|i| i.bytes.len()).sum();
    assert_eq!(total, jit.bytes_jited());
}

#[test]
fn code_memory_is_read_execute_only() {
    let prog = load("mov %r0, 3\nexit");
    let jit = prog.jit(&JitOptions::checked()).unwrap();
    assert_eq!(jit.run(RunOptions::new()).unwrap().r0, 3);
    let addr = jit.jited_code().as_ptr() as u64;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps
        .lines()
        .find(|l| {
            let range = l.split(' ').next().unwrap_or("");
            let mut it = range
                .split('-')
                .map(|x| u64::from_str_radix(x, 16).unwrap_or(0));
            let (lo, hi) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            lo <= addr && addr < hi
        })
        .expect("code mapping listed");
    assert!(line.split(' ').nth(1).unwrap().starts_with("r-x"), "{line}");
}

#[test]
fn proofs_drop_checks_per_instruction() {
    let prog = load("ldxdw %r0, [%r1]\nldxdw %r0, [%r1+8]\nexit");
    let checked = prog.jit(&JitOptions::checked()).unwrap();
    // SAFETY: the first load is inside the 16-byte buffer every run below passes.
    let proven = prog
        .jit(&unsafe { JitOptions::proven(vec![true, false, false]) })
        .unwrap();
    // SAFETY: as above, for both loads.
    let none = prog.jit(&unsafe { JitOptions::unchecked() }).unwrap();
    assert!(none.bytes_jited() < proven.bytes_jited());
    assert!(proven.bytes_jited() < checked.bytes_jited());
    let mut buf = [7u8; 16];
    assert_eq!(
        proven.run_with_memory(&mut buf).unwrap().r0,
        0x0707_0707_0707_0707
    );
    // The second load is still checked.
    let mut short = [7u8; 12];
    let e = proven.run_with_memory(&mut short).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("insn 1: invalid access to memory"),
        "{e}"
    );
    // Accesses through r10 inside the frame need no check at all.
    let stack = load("stdw [%r10-8], 1\nldxdw %r0, [%r10-8]\nexit");
    assert_eq!(
        stack.jit(&JitOptions::checked()).unwrap().bytes_jited(),
        // SAFETY: compiled only to compare sizes.
        stack
            .jit(&unsafe { JitOptions::unchecked() })
            .unwrap()
            .bytes_jited()
    );
    // SAFETY: refused before anything runs.
    let bad = prog.jit(&unsafe { JitOptions::proven(vec![true]) });
    assert!(matches!(
        bad,
        Err(JitError::ProofLength { got: 1, slots: 3 })
    ));
}

#[test]
fn atomics_are_atomic_across_threads_on_the_jit() {
    let prog = load(
        "mov %r2, 0\nmov %r3, 1\n\
         L: mov %r4, 2\nmov %r5, 1\nlock add [%r1], %r3\nlock fetch add32 [%r1+8], %r4\n\
         lock fetch or [%r1+16], %r5\nadd %r2, 1\njlt %r2, 10000, L\nexit",
    );
    let jit = prog.jit(&JitOptions::checked()).unwrap();
    let shared = Arc::new([
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
    ]);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (jit, shared) = (jit.clone(), shared.clone());
            std::thread::spawn(move || {
                let p = shared.as_ptr() as u64;
                jit.run(RunOptions::new().arg1(p).region(Region::new(
                    p,
                    24,
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
    let v: Vec<u64> = shared
        .iter()
        .map(|a| a.load(std::sync::atomic::Ordering::SeqCst))
        .collect();
    assert_eq!((v[0], v[1] as u32, v[2]), (40000, 80000, 1));
}

#[test]
fn metering_can_be_switched_off() {
    let prog = load("mov %r0, 0\nL: add %r0, 1\njlt %r0, 100, L\nexit");
    let on = prog.jit(&JitOptions::checked()).unwrap();
    let off = prog.jit(&JitOptions::checked().metering(false)).unwrap();
    assert!(off.bytes_jited() < on.bytes_jited());
    let r = on.run(RunOptions::new()).unwrap();
    assert_eq!((r.r0, r.executed), (100, 202));
    assert_eq!(prog.run(RunOptions::new()).unwrap().executed, 202);
    assert!(on.run(RunOptions::new().fuel(50)).is_err());
    let r = off.run(RunOptions::new().fuel(50)).unwrap();
    assert_eq!((r.r0, r.executed), (100, 0));
}
