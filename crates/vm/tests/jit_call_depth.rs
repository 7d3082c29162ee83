//! The call-depth limit on the interpreter and the JIT when the JIT's calls do
//! not count the depth (programs without helper calls, callx or `may_goto`
//! whose call chains are bounded): chains of distinct functions up to and past
//! the limit, taken and not taken, and such a program entered by a tail call
//! from a subprogram, where its chains start deeper than at a run's start.

use bpfvm_isa::asm::assemble;
use bpfvm_vm::{
    HelperCtx, HelperError, HelperOutcome, HelperTable, JitOptions, LoadOptions, RunOptions,
    VmProgram,
};
use std::sync::Arc;

/// `call f1; exit` then f1 .. f`n`, each calling the next and adding 1 to what
/// it returns: r0 = n. With `guard`, the first call is made only when r1 == 0.
fn chain(n: usize, guard: bool) -> String {
    let mut s = String::from("mov %r0, 100\n");
    if guard {
        s.push_str("jne %r1, 0, +1\n");
    }
    s.push_str("call local f1\nexit\n");
    for k in 1..n {
        s.push_str(&format!("f{k}:\ncall local f{}\nadd %r0, 1\nexit\n", k + 1));
    }
    s.push_str(&format!("f{n}:\nmov %r0, 1\nexit\n"));
    s
}

#[derive(Default)]
struct Env {
    prog_array: Vec<Arc<VmProgram>>,
}

fn helpers() -> Arc<HelperTable> {
    let mut t = HelperTable::new();
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
    Arc::new(t)
}

fn load(src: &str, table: &Arc<HelperTable>) -> VmProgram {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    VmProgram::new(&insns, &LoadOptions::new(table.clone())).expect("loads")
}

/// r0 or the error, on the interpreter and on the JIT (checked and metered,
/// unchecked without metering).
fn outcomes(p: &VmProgram, r1: u64, env: &mut Env) -> Vec<Result<u64, String>> {
    let run = |r: Result<bpfvm_vm::RunResult, bpfvm_vm::VmError>| {
        r.map(|r| r.r0).map_err(|e| e.to_string())
    };
    let opts = || RunOptions::new().args([r1, 0, 0, 0, 0]);
    let mut out = vec![run(p.run(opts().env(&mut *env)))];
    let checked = p.jit(&JitOptions::checked()).expect("compiles");
    out.push(run(checked.run(opts().env(&mut *env))));
    // SAFETY: the programs touch no memory but their stacks.
    let fast = p
        .jit(&unsafe { JitOptions::unchecked() }.metering(false))
        .expect("compiles");
    out.push(run(fast.run(opts().env(&mut *env))));
    out
}

#[test]
fn call_chains_without_depth_counting_agree_with_the_interpreter() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let table = helpers();
    for n in 1..=10 {
        for guard in [false, true] {
            let p = load(&chain(n, guard), &table);
            for r1 in [0u64, 1] {
                let got = outcomes(&p, r1, &mut Env::default());
                let want = if guard && r1 != 0 {
                    Ok(100)
                } else if n < 8 {
                    Ok(n as u64)
                } else {
                    Err(format!("the call stack of {} frames is too deep", 9))
                };
                for g in &got {
                    match (g, &want) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "n = {n}, guard = {guard}, r1 = {r1}"),
                        (Err(a), Err(b)) => assert!(a.contains(b.as_str()), "{a}"),
                        _ => panic!("n = {n}, guard = {guard}, r1 = {r1}: {got:?}"),
                    }
                }
            }
        }
    }
}

#[test]
fn a_tail_call_from_a_subprogram_keeps_the_depth_limit() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let table = helpers();
    // main calls g (frame 2); g tail-calls the target, which runs in g's
    // frame: its chain of n functions uses frames 3 ..= n + 2.
    let caller = load(
        "call local g\nexit\ng:\nmov %r2, 0\nmov %r3, 0\ncall 12\nmov %r0, 555\nexit",
        &table,
    );
    for n in 4..=8 {
        let target = Arc::new(load(&chain(n, false), &table));
        let mut env = Env {
            prog_array: vec![target.clone()],
        };
        let got = outcomes(&caller, 0, &mut env);
        for g in &got {
            if n + 2 <= 8 {
                assert_eq!(g, &Ok(n as u64), "n = {n}: {got:?}");
            } else {
                let e = g.as_ref().expect_err("too deep");
                assert!(
                    e.contains("the call stack of 9 frames is too deep"),
                    "n = {n}: {e}"
                );
            }
        }
        // The target alone, from depth 0, is within the limit up to n = 7:
        // only the tail call's depth makes n = 7 too deep.
        if n < 8 {
            let alone = outcomes(&target, 0, &mut Env::default());
            assert!(alone.iter().all(|g| g == &Ok(n as u64)), "{alone:?}");
        }
    }
}
