//! The arm64 listing: every instruction's text, assembled by llvm-mc, gives the
//! word the emitter wrote (skipped when llvm-mc is absent). Branches are left out
//! (their text names labels).

use bpfvm_isa::asm::assemble;
use bpfvm_vm::{JitOptions, LoadOptions, VmProgram};
use std::io::Write;
use std::process::{Command, Stdio};

const PROGRAMS: &[&str] = &[
    "mov %r0, -1\nmov32 %r1, 0x12345678\nlddw %r2, 0x1122334455667788\nlddw %r3, 0xffff0000ffff1234\n\
     add %r0, %r1\nsub32 %r2, 7\nmul %r3, %r2\ndiv %r0, %r1\nmod32 %r1, 3\nsdiv %r2, -1\nsmod %r3, %r1\n\
     lsh %r0, 3\nrsh32 %r1, %r2\narsh %r3, %r4\nand %r5, 0xff\nor32 %r6, %r7\nxor %r8, %r9\nneg %r0\nneg32 %r1\n\
     movsx864 %r2, %r3\nmovsx1632 %r4, %r5\nmovsx3264 %r6, %r7\nle16 %r0\nle32 %r1\nbe16 %r2\nbe32 %r3\nbe64 %r4\n\
     jeq %r0, 3, +1\njsgt32 %r1, %r2, +0\njset %r3, 8, +0\nexit",
    "ldxb %r0, [%r1]\nldxh %r2, [%r1+2]\nldxw %r3, [%r10-8]\nldxdw %r4, [%r10-16]\nldxsb %r5, [%r1+1]\n\
     ldxsh %r6, [%r1]\nldxsw %r7, [%r1-4000]\nstb [%r10-1], 1\nsth [%r10-2], -1\nstw [%r10-4], 7\nstdw [%r10-8], -2\n\
     stxb [%r10-1], %r1\nstxh [%r10-2], %r2\nstxw [%r10-4], %r3\nstxdw [%r10-8], %r4\n\
     lock add [%r10-8], %r1\nlock fetch or32 [%r10-4], %r2\nlock fetch and [%r10-8], %r3\nlock xor32 [%r10-4], %r4\n\
     lock xchg [%r10-8], %r5\nlock cmpxchg32 [%r10-4], %r6\nldabsw 4\nldindh %r1, 2\ncall 5\ncall local +1\nexit\nexit",
    // Linux 6.18's additions (a local call in a program with may_goto sets
    // the callee frame's count).
    "stdw [%r10-8], 0\nload_acqb %r2, [%r10-8]\nload_acqh %r3, [%r10-8]\nload_acqw %r4, [%r10-8]\n\
     load_acqdw %r5, [%r10-8]\nstore_relb [%r10-1], %r1\nstore_relh [%r10-2], %r2\nstore_relw [%r10-4], %r3\n\
     store_reldw [%r10-8], %r4\naddr_space_cast %r1, %r2, 0, 1\nmay_goto +0\ncall local +1\nexit\nmay_goto +0\nexit",
];

#[test]
fn arm64_text_assembles_to_the_emitted_words() {
    let Ok(mut child) = Command::new("llvm-mc")
        .args(["-triple=aarch64", "-mattr=+lse", "-show-encoding"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("skipping: llvm-mc not found");
        return;
    };
    let mut table = bpfvm_vm::HelperTable::new();
    table.register(
        5,
        "r1",
        |_: &mut bpfvm_vm::HelperCtx<'_, '_>, a: [u64; 5]| {
            Ok(bpfvm_vm::HelperOutcome::Return(a[0]))
        },
    );
    let table = std::sync::Arc::new(table);
    let mut want = Vec::new();
    let mut text = String::new();
    for src in PROGRAMS {
        let prog =
            VmProgram::new(&assemble(src).unwrap(), &LoadOptions::new(table.clone())).unwrap();
        // SAFETY: listings are never run.
        for opts in [JitOptions::checked(), unsafe { JitOptions::unchecked() }] {
            let l = prog.aarch64_listing(&opts);
            assert_eq!(l.code().len(), 4 * l.insns().len());
            assert!(l.listing(&prog).contains("; 0: "));
            for i in l.insns() {
                let m = i.text.split(' ').next().unwrap_or("");
                if matches!(m, "b" | "bl" | "cbz" | "cbnz" | "tbnz") || m.starts_with("b.") {
                    continue;
                }
                text.push_str(&i.text);
                text.push('\n');
                want.push((i.word, i.text.clone()));
            }
        }
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.trim().is_empty(),
        "llvm-mc refused some text:\n{stderr}"
    );
    let got: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once("encoding: [").map(|x| x.1.to_string()))
        .map(|e| {
            let b: Vec<u8> = e
                .trim_end_matches(']')
                .split(',')
                .map(|x| u8::from_str_radix(x.trim().trim_start_matches("0x"), 16).unwrap())
                .collect();
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
        .collect();
    assert!(want.len() > 200, "{} instructions checked", want.len());
    assert_eq!(got.len(), want.len());
    let bad: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|((w, _), g)| w != *g)
        .map(|((w, t), g)| format!("{t}: emitted {w:08x}, llvm-mc {g:08x}"))
        .collect();
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
}
