//! The x86-64 JIT: a [`VmProgram`] becomes native code that runs on the same
//! machine state as the interpreter.
//!
//! Data flows: [`VmProgram::jit`] walks the pre-decoded instructions once
//! (`codegen`) and emits x86-64 through a small encoder (`x86`); the bytes are
//! copied into memory mapped read-write, which is then made read-execute (never
//! both). [`JitProgram::run`] builds the interpreter's `Machine` (stack frames,
//! regions, oracle, environment) and a run context the code addresses through
//! r12, and calls the code's entry thunk. Helpers, `callx` to helper ids, legacy
//! packet loads and memory checks that miss the stack leave the native code for
//! trampolines (`runtime`) that build the same [`crate::HelperCtx`] the
//! interpreter builds, so helpers, tail calls (to the target's own JIT code,
//! compiled on first use and cached in its `VmProgram`) and callbacks
//! (`call_function` runs the callback's native code) behave identically.
//!
//! Semantics follow the interpreter instruction for instruction: division and
//! modulo by zero test the divisor (no SIGFPE), `INT_MIN / -1` is handled before
//! `idiv`, shift counts are masked by the hardware exactly as RFC 9669 masks them,
//! bpf-to-bpf calls get their own 512-byte frame and the same depth limit, and
//! fuel and the executed-instruction count are kept exactly (see `codegen`).
//!
//! Why a direct emitter and not cranelift (measured on this machine, shared
//! 2-core x86-64, best of repeated runs): once the eleven BPF registers are pinned
//! to host registers a BPF instruction is one to three x86 instructions, so an
//! optimising backend has little to find, while it costs compile time on every
//! load. This emitter compiles 1,000 mixed instructions in 0.06 ms (unchecked) to
//! 0.12 ms (checked); cranelift 0.116 (a throwaway probe building the same kind of
//! 1,000-instruction function from BPF-register variables) took 1.8 ms at
//! `opt_level=none` and 4.4 ms at `speed`, 15 to 70 times longer. On the tight
//! `arith` loop cranelift's code ran in 2.03 ms, this JIT's in 2.00 ms (with fuel
//! metering; rbpf's JIT 2.34 ms), so cranelift buys no run time here. `benches/jit.rs`
//! has the JIT's side of these numbers.
//!
//! Memory checks: in checked mode every load, store and atomic first tests the
//! stack frames in use inline (two compares), then calls the interpreter's region
//! and oracle check; a violation returns the interpreter's [`VmError`] with the
//! instruction's slot index. [`JitOptions::proven`] drops the check per instruction
//! where a verifier proved the access safe.

mod arm64;
mod codegen;
mod disasm;
mod pool;
pub(crate) mod runtime;
mod x86;

pub use arm64::{Aarch64Listing, Arm64Insn};
pub use disasm::NativeInsn;

use crate::error::VmError;
use crate::interp::{RunOptions, RunResult};
use crate::program::VmProgram;
use std::sync::{Arc, OnceLock};
use thiserror::Error;

/// How the JIT compiles `bpf_map_lookup_elem` (helper 1) at a call site whose
/// map argument is statically one known map (see [`JitOptions::map_lookup`]).
#[derive(Clone, Copy, Debug)]
pub enum MapLookup {
    /// `BPF_MAP_TYPE_ARRAY`, inline as the kernel's `array_map_gen_lookup`:
    /// `key = *(u32 *)r2; r0 = key < max_entries ? values + key * stride : 0`.
    #[doc(alias = "array_map_gen_lookup")]
    Array {
        /// Address of element 0's value.
        values: u64,
        max_entries: u32,
        /// Distance between two values (`round_up(value_size, 8)`).
        stride: u32,
    },
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`, inline as the kernel's
    /// `percpu_array_map_gen_lookup`: element `key` of the run's CPU (see
    /// [`JitProgram::run_repeat_on_cpu`]), values laid out CPU-major within an
    /// element: `values + (key * ncpus + cpu) * stride`, NULL when
    /// `key >= max_entries` or `cpu >= ncpus`.
    PercpuArray {
        values: u64,
        max_entries: u32,
        stride: u32,
        ncpus: u32,
    },
    /// A direct call `r0 = f(obj, r2)` in place of the helper trampoline (no
    /// helper context is built; the function must not unwind).
    Call {
        f: unsafe extern "sysv64" fn(obj: u64, key: u64) -> u64,
        obj: u64,
    },
}

/// What [`JitProgram::run_repeat`] hands its `refresh` between two runs.
pub struct Rerun<'a> {
    /// The run's regions (the stack excluded) as the last run left them.
    pub regions: &'a mut Vec<crate::Region>,
    /// The run's environment ([`RunOptions::env`]).
    pub env: Option<&'a mut dyn std::any::Any>,
}

/// Objects the compiled code points into, kept alive as long as the code.
#[derive(Clone, Default)]
struct KeepAlive(Vec<Arc<dyn std::any::Any + Send + Sync>>);

impl std::fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} objects", self.0.len())
    }
}

/// How to compile.
#[derive(Clone, Debug)]
pub struct JitOptions {
    checked: bool,
    proven_safe: Option<Vec<bool>>,
    metering: bool,
    /// Map address (the LD_IMM64 value a program loads into r1) -> how to look up.
    map_lookups: Vec<(u64, MapLookup)>,
    keep: KeepAlive,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions::checked()
    }
}

impl JitOptions {
    /// Every memory access is checked at run time, as [`VmProgram::run`] does.
    pub fn checked() -> Self {
        JitOptions {
            checked: true,
            proven_safe: None,
            metering: true,
            map_lookups: Vec::new(),
            keep: KeepAlive::default(),
        }
    }

    /// No memory checks, as [`VmProgram::run_unchecked`].
    ///
    /// # Safety
    /// Programs compiled with these options may only be run on memory a verifier
    /// proved every access of the program safe for.
    pub unsafe fn unchecked() -> Self {
        JitOptions {
            checked: false,
            proven_safe: None,
            metering: true,
            map_lookups: Vec::new(),
            keep: KeepAlive::default(),
        }
    }

    /// Checked mode, except for the instructions (by slot index) marked true in
    /// `safe_mem`, whose accesses a verifier proved safe.
    ///
    /// # Safety
    /// Each marked instruction's access must be safe on every run.
    pub unsafe fn proven(safe_mem: Vec<bool>) -> Self {
        JitOptions {
            checked: true,
            proven_safe: Some(safe_mem),
            metering: true,
            map_lookups: Vec::new(),
            keep: KeepAlive::default(),
        }
    }

    /// Compiles `bpf_map_lookup_elem` on the map whose address is `map` as `how`
    /// says, instead of a call through the helper trampoline, wherever r1 is
    /// statically that map: set by an LD_IMM64 of `map` earlier in the same basic
    /// block with no other write to r1 in between. r1..r5 are preserved.
    ///
    /// # Safety
    /// `how` must return exactly what the program's helper 1 returns for that map
    /// (for [`MapLookup::Array`], the map's storage must stay at `values` while the
    /// code lives: pass the map to [`Self::keep_alive`]); and at every such call r2
    /// must point to a readable key (a verifier's proof), since the key is read
    /// without a check.
    #[doc(alias = "map_gen_lookup")]
    pub unsafe fn map_lookup(mut self, map: u64, how: MapLookup) -> Self {
        self.map_lookups.retain(|(m, _)| *m != map);
        self.map_lookups.push((map, how));
        self
    }

    /// Keeps `obj` alive as long as code compiled with these options (the maps
    /// whose memory [`Self::map_lookup`] addresses).
    pub fn keep_alive(mut self, obj: Arc<dyn std::any::Any + Send + Sync>) -> Self {
        self.keep.0.push(obj);
        self
    }

    /// The map lookups compiled specially (see [`Self::map_lookup`]).
    pub fn map_lookups(&self) -> &[(u64, MapLookup)] {
        &self.map_lookups
    }

    /// Counting executed instructions (and fuel) costs a subtraction per basic
    /// block and a test per taken jump; without it `RunResult::executed` is 0,
    /// `RunOptions::fuel` is ignored, and compare trees (compiled `switch`es)
    /// become jump tables. On by default.
    pub fn metering(mut self, on: bool) -> Self {
        self.metering = on;
        self
    }

    pub fn is_checked(&self) -> bool {
        self.checked
    }

    pub fn proven_safe(&self) -> Option<&[bool]> {
        self.proven_safe.as_deref()
    }
}

/// Why a program could not be compiled.
#[derive(Debug, Error)]
pub enum JitError {
    #[error("the JIT emits x86-64 code and this host is not x86-64")]
    UnsupportedHost,
    #[error("cannot map {len} bytes of code memory")]
    Map {
        len: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make {len} bytes of code memory executable")]
    Protect {
        len: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("proven_safe has {got} entries, the program has {slots} slots")]
    ProofLength { got: usize, slots: usize },
    #[error("internal error: a jump label was never placed")]
    Label,
}

/// Executable memory: a block of the shared pool (see [`pool`]), or for large
/// code its own mapping, mapped read-write, filled, then read-execute until
/// dropped.
struct ExecMem {
    ptr: *mut u8,
    len: usize,
    /// Own mapping's length; 0 when the code is in `block`.
    map_len: usize,
    block: Option<pool::Block>,
}

// SAFETY: the code is immutable (executed, never written) after construction.
unsafe impl Send for ExecMem {}
unsafe impl Sync for ExecMem {}

impl ExecMem {
    fn new(code: &[u8]) -> Result<ExecMem, JitError> {
        if let Some(block) = pool::alloc(code) {
            return Ok(ExecMem {
                ptr: block.rx,
                len: code.len(),
                map_len: 0,
                block: Some(block),
            });
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let map_len = code.len().max(1).div_ceil(page) * page;
        // SAFETY: an anonymous private mapping; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(JitError::Map {
                len: map_len,
                source: std::io::Error::last_os_error(),
            });
        }
        let mem = ExecMem {
            ptr: ptr.cast(),
            len: code.len(),
            map_len,
            block: None,
        };
        // SAFETY: the mapping is map_len >= code.len() bytes, writable.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), mem.ptr, code.len()) };
        // SAFETY: the mapping is ours.
        if unsafe { libc::mprotect(ptr, map_len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
            return Err(JitError::Protect {
                len: map_len,
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(mem)
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: len bytes were written and the memory stays readable until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for ExecMem {
    fn drop(&mut self) {
        match &self.block {
            Some(b) => pool::free(b),
            // SAFETY: ptr/map_len are the mapping made in new.
            None => unsafe {
                libc::munmap(self.ptr.cast(), self.map_len);
            },
        }
    }
}

/// What the generated code and the trampolines need of a program; boxed so its
/// address (embedded in the code) is stable.
pub(crate) struct ProgData {
    pub(crate) prog: VmProgram,
    /// Per entry: the native address of the function starting there, or 0.
    func_table: Box<[u64]>,
    code_base: u64,
    pub(crate) entry_chk: Vec<u32>,
    pub(crate) entry_nochk: Vec<u32>,
}

impl ProgData {
    pub(crate) fn addr(&self, off: u32) -> u64 {
        self.code_base + off as u64
    }
}

pub(crate) struct JitInner {
    pub(crate) data: Box<ProgData>,
    mem: ExecMem,
    slot_offsets: Vec<u32>,
    main_end: u32,
    pub(crate) checked: bool,
    pub(crate) opts: JitOptions,
    /// Unchecked code that never leaves the native code (no helper, callx or
    /// legacy packet load): a run needs no interpreter machine (see
    /// `runtime::run_leaf`).
    pub(crate) leaf: bool,
    /// Some(frames) when bpf-to-bpf calls do not count the depth: the most
    /// frames a run entered at depth 0 uses (see `codegen::static_frames`).
    pub(crate) frames: Option<usize>,
    /// Offset of the context-free entry, for code that never reads the run
    /// context (see `runtime::run_fast`).
    pub(crate) fast_entry: Option<u32>,
}

/// Per-program cache of JIT code for tail calls, by (checked, metering).
#[derive(Default)]
pub(crate) struct JitCache([OnceLock<Arc<JitInner>>; 4]);

impl Clone for JitCache {
    fn clone(&self) -> Self {
        JitCache::default()
    }
}

/// The JIT code of a tail call's target, compiled on first use.
pub(crate) fn cached_jit(
    prog: &VmProgram,
    checked: bool,
    metering: bool,
) -> Result<Arc<JitInner>, JitError> {
    let cell = &prog.jit_cache.0[usize::from(!checked) * 2 + usize::from(!metering)];
    if let Some(j) = cell.get() {
        return Ok(j.clone());
    }
    let opts = JitOptions {
        checked,
        proven_safe: None,
        metering,
        map_lookups: Vec::new(),
        keep: KeepAlive::default(),
    };
    let j = Arc::new(compile(prog, &opts, false)?);
    Ok(cell.get_or_init(|| j).clone())
}

/// The JIT code of a tail call's target entered at call depth `depth`: the
/// cached code, or, when its calls do not count the depth and could nest past
/// the limit from there, code that counts it (not cached: rare).
pub(crate) fn tail_call_jit(
    prog: &VmProgram,
    checked: bool,
    metering: bool,
    depth: usize,
) -> Result<Arc<JitInner>, JitError> {
    let j = cached_jit(prog, checked, metering)?;
    match j.frames {
        Some(frames) if depth + frames > bpfvm_isa::consts::MAX_CALL_FRAMES => {
            Ok(Arc::new(compile(prog, &j.opts, true)?))
        }
        _ => Ok(j),
    }
}

/// `count_depth`: calls count the depth even where the code generator could
/// prove the limit unreachable from depth 0.
fn compile(prog: &VmProgram, opts: &JitOptions, count_depth: bool) -> Result<JitInner, JitError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(JitError::UnsupportedHost);
    }
    if let Some(p) = &opts.proven_safe {
        if p.len() != prog.insns().len() {
            return Err(JitError::ProofLength {
                got: p.len(),
                slots: prog.insns().len(),
            });
        }
    }
    let n = prog.code.len();
    let mut data = Box::new(ProgData {
        prog: prog.clone(),
        func_table: vec![0u64; n].into_boxed_slice(),
        code_base: 0,
        entry_chk: Vec::new(),
        entry_nochk: Vec::new(),
    });
    let params = codegen::Params {
        checked: opts.checked,
        proven_safe: opts.proven_safe.as_deref(),
        metering: opts.metering,
        data: &*data as *const ProgData as u64,
        func_table: data.func_table.as_ptr() as u64,
        map_lookups: &opts.map_lookups,
        count_depth,
    };
    let g = codegen::generate(prog, &params);
    if g.code.is_empty() {
        return Err(JitError::Label);
    }
    let mem = ExecMem::new(&g.code)?;
    data.code_base = mem.ptr as u64;
    for e in 0..n {
        if prog.func_start[e] {
            data.func_table[e] = data.code_base + g.entry_chk[e] as u64;
        }
    }
    data.entry_chk = g.entry_chk;
    data.entry_nochk = g.entry_nochk;
    let leaf = !opts.checked
        && prog.code.iter().all(|c| {
            !matches!(
                c.op.shape(),
                bpfvm_isa::Shape::CallX | bpfvm_isa::Shape::LdAbs | bpfvm_isa::Shape::LdInd
            ) && (c.op.shape() != bpfvm_isa::Shape::Call || c.op == bpfvm_isa::Op::CallLocal)
        });
    Ok(JitInner {
        data,
        mem,
        slot_offsets: g.slot_offsets,
        main_end: g.main_end,
        checked: opts.checked,
        opts: opts.clone(),
        leaf,
        frames: g.frames,
        fast_entry: g.fast_entry,
    })
}

/// A program compiled to x86-64. Cheap to clone and share between threads.
///
/// ```
/// use bpfvm_vm::{JitOptions, LoadOptions, VmProgram};
/// let insns = bpfvm_isa::asm::assemble("ldxb %r0, [%r1+1]\nadd %r0, 40\nexit").unwrap();
/// let prog = VmProgram::new(&insns, &LoadOptions::default()).unwrap();
/// let jit = prog.jit(&JitOptions::checked()).unwrap();
/// assert_eq!(jit.run_with_memory(&mut [1, 2, 3]).unwrap().r0, 42);
/// // Out of bounds: the interpreter's error, with the instruction's index.
/// let e = jit.run_with_memory(&mut [1]).unwrap_err();
/// assert!(e.to_string().starts_with("insn 0: invalid access to memory"));
/// assert!(jit.listing().contains("; 1: r0 += 40"));
/// ```
#[derive(Clone)]
pub struct JitProgram {
    inner: Arc<JitInner>,
}

const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<JitProgram>();
};

impl std::fmt::Debug for JitProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitProgram")
            .field("slots", &self.inner.slot_offsets.len())
            .field("bytes_jited", &self.bytes_jited())
            .field("checked", &self.inner.checked)
            .finish()
    }
}

// SAFETY: ProgData holds a VmProgram (Send + Sync) and addresses of immutable
// memory; the code memory is immutable after construction.
unsafe impl Send for JitInner {}
unsafe impl Sync for JitInner {}

impl VmProgram {
    /// Compiles the program to x86-64 code.
    pub fn jit(&self, opts: &JitOptions) -> Result<JitProgram, JitError> {
        Ok(JitProgram {
            inner: Arc::new(compile(self, opts, false)?),
        })
    }
}

impl JitProgram {
    /// Runs the program: checked or unchecked as it was compiled (see
    /// [`JitOptions`]; the unsafe constructors of unchecked options carry the
    /// caller's promise).
    // Inlined where it is called: r1..r5 go from the caller's values to the
    // code without a copy through memory (see runtime::run_fast).
    #[inline]
    pub fn run(&self, opts: RunOptions<'_>) -> Result<RunResult, VmError> {
        // Short programs: what a run costs beside the code matters.
        if let Some(entry) = self.inner.fast_entry {
            return Ok(runtime::run_fast(&self.inner, entry, &opts.args, 1));
        }
        runtime::run(&self.inner, opts, 1, 0, &mut |_| {})
    }

    /// Runs the program `repeat` times (0 counts as 1) and returns the last run's
    /// result; the first error ends the loop. The machine (stack, regions, run
    /// context) is set up once and the code re-entered, as the kernel's test run
    /// with `repeat` reuses its buffer. Each run starts with r1..r5 = `opts.args`,
    /// fuel and the tail-call count reset; the stack is not cleared between runs
    /// (the kernel's holds garbage too). Only helpers can change the regions or
    /// the environment, so after a run that called one (or a callback, or a tail
    /// call), `refresh` gets both to put them as a fresh run would see them.
    ///
    /// ```
    /// use bpfvm_vm::{JitOptions, LoadOptions, Region, RegionKind, RunOptions, VmProgram};
    /// let insns = bpfvm_isa::asm::assemble("ldxdw %r0, [%r1]\nadd %r0, 1\nstxdw [%r1], %r0\nexit").unwrap();
    /// let prog = VmProgram::new(&insns, &LoadOptions::default()).unwrap();
    /// let jit = prog.jit(&JitOptions::checked()).unwrap();
    /// let mut counter = [0u8; 8];
    /// let p = counter.as_mut_ptr() as u64;
    /// let opts = RunOptions::new().arg1(p).region(Region::new(p, 8, true, RegionKind::Mem));
    /// assert_eq!(jit.run_repeat(opts, 1000, |_| {}).unwrap().r0, 1000);
    /// ```
    pub fn run_repeat(
        &self,
        opts: RunOptions<'_>,
        repeat: u32,
        refresh: impl FnMut(&mut Rerun<'_>),
    ) -> Result<RunResult, VmError> {
        self.run_repeat_on_cpu(opts, repeat, 0, refresh)
    }

    /// [`Self::run_repeat`] on the simulated CPU `cpu`: what inline per-CPU map
    /// lookups ([`MapLookup::PercpuArray`]) index by (the helpers see the CPU
    /// through the run's environment).
    pub fn run_repeat_on_cpu(
        &self,
        opts: RunOptions<'_>,
        repeat: u32,
        cpu: u32,
        mut refresh: impl FnMut(&mut Rerun<'_>),
    ) -> Result<RunResult, VmError> {
        runtime::run(&self.inner, opts, repeat, cpu, &mut refresh)
    }

    /// Convenience as [`VmProgram::run_with_memory`]: r1 = `mem`, r2 = its length,
    /// `mem` writable.
    pub fn run_with_memory(&self, mem: &mut [u8]) -> Result<RunResult, VmError> {
        let len = mem.len() as u64;
        self.run(
            RunOptions::new()
                .args([mem.as_mut_ptr() as u64, len, 0, 0, 0])
                .region(crate::Region::from_mut_slice(mem, crate::RegionKind::Mem)),
        )
    }

    /// The program this code was compiled from.
    pub fn program(&self) -> &VmProgram {
        &self.inner.data.prog
    }

    pub fn options(&self) -> &JitOptions {
        &self.inner.opts
    }

    /// The native code (entry thunk first, then the instructions in order, then
    /// out-of-line paths).
    pub fn jited_code(&self) -> &[u8] {
        self.inner.mem.bytes()
    }

    /// Size of the native code, as `bpftool prog show` reports `bytes_jited`.
    pub fn bytes_jited(&self) -> usize {
        self.inner.mem.len
    }

    /// Per instruction slot, the offset in [`Self::jited_code`] where its code
    /// starts (both slots of an LD_IMM64 give the same offset). The code of slot
    /// `k` runs up to the next greater offset.
    pub fn insn_offsets(&self) -> &[u32] {
        &self.inner.slot_offsets
    }

    /// Where the out-of-line code (memory check slow paths, faults) starts.
    pub fn out_of_line_offset(&self) -> usize {
        self.inner.main_end as usize
    }

    /// The native code decoded, one entry per x86 instruction, Intel syntax.
    pub fn disassemble(&self) -> Vec<NativeInsn> {
        disasm::decode(self.jited_code(), self.inner.data.code_base)
    }

    /// A listing: each BPF instruction (kernel syntax) above the native
    /// instructions generated for it.
    pub fn listing(&self) -> String {
        disasm::listing(self)
    }
}

#[cfg(test)]
mod tests {
    //! The code generator's rewrites (compare trees to value tables, fused
    //! address arithmetic) against the interpreter, on programs built to
    //! contain them.
    use super::JitOptions;
    use crate::{LoadOptions, RunOptions, VmProgram};
    use bpfvm_isa::asm::assemble;

    /// A small deterministic generator (xorshift64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A random compare tree on r1: inner nodes compare r1 with a constant
    /// (every condition, 32 and 64 bits, some `ja` in between), each leaf sets
    /// r0 to its own number and exits.
    fn tree(rng: &mut Rng, depth: u32, out: &mut String, labels: &mut u32, leaves: &mut u32) {
        const OPS: [&str; 11] = [
            "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset",
        ];
        if depth == 0 || rng.below(16) == 0 {
            *leaves += 1;
            out.push_str(&format!("mov %r0, {leaves}\nexit\n"));
            return;
        }
        if rng.below(6) == 0 {
            *labels += 1;
            out.push_str(&format!("ja L{labels}\nL{labels}:\n"));
        }
        let op = OPS[rng.below(OPS.len() as u64) as usize];
        let w = if rng.below(3) == 0 { "32" } else { "" };
        let k = rng.below(340) as i64 - 20;
        *labels += 1;
        let l = *labels;
        out.push_str(&format!("{op}{w} %r1, {k}, L{l}\n"));
        tree(rng, depth - 1, out, labels, leaves);
        out.push_str(&format!("L{l}:\n"));
        tree(rng, depth - 1, out, labels, leaves);
    }

    fn run(p: &VmProgram, jit: &super::JitProgram, r1: u64) -> (u64, u64) {
        let interp = p
            .run(RunOptions::new().args([r1, 0, 0, 0, 0]))
            .expect("interpreter runs")
            .r0;
        let native = jit
            .run(RunOptions::new().args([r1, 0, 0, 0, 0]))
            .expect("jit runs")
            .r0;
        (interp, native)
    }

    /// Trees whose leaves do not all set one register to a constant stay
    /// conditional jumps (no indirect jump: see `codegen::value_switches`),
    /// and agree with the interpreter, which tabulates them.
    #[test]
    fn compare_trees_stay_compares_and_agree_with_the_interpreter() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut tabulated = 0;
        for _ in 0..60 {
            let (mut src, mut labels, mut leaves) = (String::new(), 0, 0);
            tree(&mut rng, 8, &mut src, &mut labels, &mut leaves);
            let insns = assemble(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
            tabulated += u32::from(!p.switches.is_empty());
            let jit = p
                .jit(&JitOptions::checked().metering(false))
                .expect("compiles");
            let indirect = jit.disassemble().into_iter().find(|i| {
                i.text.starts_with("jmp") && !i.text.contains("0x") && !i.text.contains("ptr")
            });
            assert!(indirect.is_none(), "{indirect:?}\n{src}");
            let mut values: Vec<u64> = (-40i64..360).map(|v| v as u64).collect();
            for base in [1u64 << 31, 1 << 32, u64::MAX - 300] {
                values.extend((0..400).map(|v| base.wrapping_add(v)));
            }
            for r1 in values {
                let (want, got) = run(&p, &jit, r1);
                assert_eq!(got, want, "r1 = {r1:#x}\n{src}");
            }
        }
        // The interpreter's tables are what the JIT's agreement is checked on.
        assert!(
            tabulated > 10,
            "only {tabulated} of 60 trees were tabulated"
        );
    }

    /// A random compare tree on r1 whose leaves set r0 to a constant (64-bit,
    /// 32-bit or LD_IMM64; now and then after one more compare, now and then
    /// not at all) and go on at one join: a `switch` returning constants.
    fn value_tree(rng: &mut Rng, depth: u32, out: &mut String, labels: &mut u32, leaves: &mut u32) {
        if depth == 0 || rng.below(16) == 0 {
            *leaves += 1;
            let k = rng.next();
            match rng.below(8) {
                0 => out.push_str(&format!("mov32 %r0, {}\n", k as i32)),
                1 => out.push_str(&format!("mov %r0, {}\n", k as i32)),
                2 => out.push_str(&format!(
                    "lddw %r0, {k:#x}\njeq %r1, {}, END\nmov %r0, 7\n",
                    k % 300
                )),
                3 if rng.below(16) == 0 => {}
                _ => out.push_str(&format!("lddw %r0, {k:#x}\n")),
            }
            out.push_str("ja END\n");
            return;
        }
        let op = ["jeq", "jgt", "jsgt", "jle", "jslt", "jset"][rng.below(6) as usize];
        let w = if rng.below(3) == 0 { "32" } else { "" };
        let k = rng.below(80) as i64 - 4;
        *labels += 1;
        let l = *labels;
        out.push_str(&format!("{op}{w} %r1, {k}, V{l}\n"));
        value_tree(rng, depth - 1, out, labels, leaves);
        out.push_str(&format!("V{l}:\n"));
        value_tree(rng, depth - 1, out, labels, leaves);
    }

    #[test]
    fn constant_switches_become_value_tables_and_agree_with_the_interpreter() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut tables = 0;
        for _ in 0..60 {
            let (mut src, mut labels, mut leaves) = (String::from("mov %r0, 5\n"), 0, 0);
            value_tree(&mut rng, 7, &mut src, &mut labels, &mut leaves);
            src.push_str("END:\nadd %r0, %r1\nexit\n");
            let insns = assemble(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
            let jit = p
                .jit(&JitOptions::checked().metering(false))
                .expect("compiles");
            tables += jit
                .disassemble()
                .iter()
                .any(|i| i.text.contains("*8]") && !i.text.starts_with("jmp"))
                as u32;
            let mut values: Vec<u64> = (-40i64..360).map(|v| v as u64).collect();
            for base in [1u64 << 31, 1 << 32, u64::MAX - 300] {
                values.extend((0..400).map(|v| base.wrapping_add(v)));
            }
            for r1 in values {
                let (want, got) = run(&p, &jit, r1);
                assert_eq!(got, want, "r1 = {r1:#x}\n{src}");
            }
        }
        assert!(tables > 10, "only {tables} of 60 trees became value tables");
    }

    #[test]
    fn if_converted_branches_agree_with_the_interpreter() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        const OPS: [&str; 10] = [
            "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jset",
        ];
        // Mostly what converts (moves, multiply[-add]s by 3/5/9), some that
        // does not.
        const ALU: [&str; 10] = [
            "mov", "mov32", "mov", "mul", "mul", "mul32", "add", "xor", "lsh", "arsh",
        ];
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut converted = 0;
        for _ in 0..200 {
            // if c goto T; S (1..=4 plain ALU); [goto T; dead;] T: mix; exit
            let mut src = String::from("mov %r0, %r1\nmov %r4, %r3\n");
            let op = OPS[rng.below(OPS.len() as u64) as usize];
            let w = if rng.below(3) == 0 { "32" } else { "" };
            let rhs = if rng.below(2) == 0 {
                "%r2".to_string()
            } else {
                (rng.below(40) as i64 - 20).to_string()
            };
            src.push_str(&format!("{op}{w} %r1, {rhs}, T\n"));
            for _ in 0..=rng.below(4) {
                let alu = ALU[rng.below(ALU.len() as u64) as usize];
                let d = ["%r0", "%r1", "%r2", "%r4"][rng.below(4) as usize];
                let s = match alu {
                    "lsh" | "rsh" | "arsh" => rng.below(64).to_string(),
                    "mul" | "mul32" if rng.below(4) != 0 => {
                        [3, 5, 9][rng.below(3) as usize].to_string()
                    }
                    _ if rng.below(2) == 0 => ["%r1", "%r2", "%r3"][rng.below(3) as usize].into(),
                    _ => (rng.below(1000) as i64 - 500).to_string(),
                };
                src.push_str(&format!("{alu} {d}, {s}\n"));
                if alu.starts_with("mul") && rng.below(2) == 0 {
                    let add = if alu == "mul32" { "add32" } else { "add" };
                    src.push_str(&format!("{add} {d}, {}\n", rng.below(100)));
                }
            }
            if rng.below(2) == 0 {
                src.push_str("ja T\nmov %r0, 77\nexit\n");
            }
            src.push_str("T:\nxor %r0, %r1\nadd %r0, %r2\nxor %r0, %r4\nexit\n");
            let insns = assemble(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
            let jit = p
                .jit(&JitOptions::checked().metering(false))
                .expect("compiles");
            converted += jit.disassemble().iter().any(|i| i.text.starts_with("cmov")) as u32;
            for _ in 0..50 {
                // Small values of either sign, so both ways of the jump run.
                let r2 = match rng.below(2) {
                    0 => rng.below(48).wrapping_sub(24),
                    _ => rng.next(),
                };
                let args = [
                    rng.below(48).wrapping_sub(24),
                    r2,
                    rng.next(),
                    rng.next(),
                    0,
                ];
                let interp = p.run(RunOptions::new().args(args)).expect("runs").r0;
                let native = jit.run(RunOptions::new().args(args)).expect("runs").r0;
                assert_eq!(native, interp, "args {args:x?}\n{src}");
            }
        }
        assert!(
            converted > 30,
            "only {converted} of 200 branches if-converted"
        );
    }

    #[test]
    fn divisions_of_zero_extended_values_agree_with_the_interpreter() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        // Zero-extended (mov32, the v2 shift idiom, and with a positive mask)
        // or not (the plain argument): 64-bit div/mod either way.
        let src = "
            mov32 %r3, %r1
            mov %r4, %r2
            lsh %r4, 32
            rsh %r4, 32
            mov %r5, %r3
            mod %r5, %r4
            mov %r0, %r5
            mov %r5, %r3
            div %r5, %r4
            add %r0, %r5
            mov %r6, %r1
            and %r6, 0x7fffffff
            mov %r7, %r2
            mod %r7, %r6
            add %r0, %r7
            mov %r8, %r2
            div %r8, %r4
            xor %r0, %r8
            exit";
        let insns = assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
        let jit = p
            .jit(&JitOptions::checked().metering(false))
            .expect("compiles");
        // A 32-bit divide (eax..edi, r8d..r15d): the divisor register as is,
        // or r11d where it is rax or rdx.
        assert!(jit.disassemble().iter().any(|i| i
            .text
            .strip_prefix("div ")
            .is_some_and(|r| r.starts_with('e') || r.ends_with('d'))));
        let mut rng = Rng(0x0bad_cafe_f00d_d00d);
        for k in 0..4000u64 {
            let pick = |rng: &mut Rng| match rng.below(4) {
                0 => rng.below(3),
                1 => rng.next() | 0xffff_ffff,
                2 => rng.next() & 0xffff_ffff,
                _ => rng.next(),
            };
            let (r1, r2) = (pick(&mut rng), pick(&mut rng));
            let args = [r1, r2, 0, 0, 0];
            let interp = p.run(RunOptions::new().args(args)).expect("runs").r0;
            let native = jit.run(RunOptions::new().args(args)).expect("runs").r0;
            assert_eq!(native, interp, "{k}: r1 = {r1:#x}, r2 = {r2:#x}");
        }
    }

    /// Code that never reads the run context gets the context-free entry
    /// (`runtime::run_fast`): nothing after the full entry thunk names r12,
    /// and runs agree with the interpreter, once and repeated. Code that
    /// calls out, faults, counts fuel or has may_goto does not get it.
    #[test]
    fn context_free_entry_only_where_the_code_never_reads_the_context() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        let fast = [
            // A loop with a division by a register (its divisor-0 path is
            // out of line), stack slots and a bpf-to-bpf call.
            "mov %r0, 0
             mov %r3, 10
             stxdw [%r10-8], %r3
             L1:
             ldxdw %r5, [%r10-8]
             add %r5, %r3
             stxdw [%r10-8], %r5
             mov %r4, %r1
             div %r4, %r2
             add %r0, %r4
             sub %r3, 1
             jne %r3, 0, L1
             ldxdw %r5, [%r10-8]
             add %r0, %r5
             mov %r6, %r0
             call local +2
             add %r0, %r6
             exit
             mov %r0, %r1
             mul %r0, 3
             exit",
            // Straight-line code with a 64-bit constant and a modulo by one.
            "lddw %r3, 0x9e3779b97f4a7c15
             mov %r0, %r1
             xor %r0, %r2
             mul %r0, %r3
             mov %r4, %r0
             rsh %r4, 29
             xor %r0, %r4
             mod %r0, 1000003
             exit",
        ];
        // SAFETY: the programs touch only their stack.
        let unchecked = || unsafe { JitOptions::unchecked() }.metering(false);
        for src in fast {
            let insns = assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
            let jit = p.jit(&unchecked()).expect("compiles");
            assert!(jit.inner.fast_entry.is_some(), "{src}");
            let body = jit.insn_offsets()[0] as usize;
            for i in jit.disassemble() {
                assert!(
                    i.offset < body || !i.text.contains("r12"),
                    "{src}: {:#x} {}",
                    i.offset,
                    i.text
                );
            }
            for (r1, r2) in [(7u64, 3u64), (1 << 40, 0), (u64::MAX, 5), (12345, 1)] {
                let args = [r1, r2, 0, 0, 0];
                let want = p.run(RunOptions::new().args(args)).expect("runs").r0;
                let got = jit.run(RunOptions::new().args(args)).expect("runs");
                assert_eq!(got.r0, want, "{src}: r1 = {r1:#x}, r2 = {r2:#x}");
                let again = jit
                    .run_repeat(RunOptions::new().args(args), 3, |_| {})
                    .expect("runs");
                assert_eq!(again.r0, want, "{src}: repeated");
            }
        }
        let slow = [
            // A helper call, may_goto, an atomic (its alignment is checked).
            (unchecked(), "mov %r1, 1\ncall 5\nexit"),
            (
                unchecked(),
                "mov %r1, 1\nstxdw [%r10-8], %r1\nlock add [%r10-8], %r1\nmov %r0, 0\nexit",
            ),
            (unchecked(), "mov %r0, 0\nmay_goto +1\nadd %r0, 1\nexit"),
            // Checked mode, metering.
            (JitOptions::checked().metering(false), "mov %r0, 1\nexit"),
            (unchecked().metering(true), "mov %r0, 1\nexit"),
        ];
        let mut helpers = crate::HelperTable::new();
        helpers.register(
            5,
            "bpf_ktime_get_ns",
            |_: &mut crate::HelperCtx<'_, '_>, _| Ok(crate::HelperOutcome::Return(7)),
        );
        let helpers = LoadOptions::new(std::sync::Arc::new(helpers));
        for (opts, src) in slow {
            let insns = assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let p = VmProgram::new(&insns, &helpers).expect("loads");
            let jit = p.jit(&opts).expect("compiles");
            assert!(jit.inner.fast_entry.is_none(), "{src}");
        }
    }

    #[test]
    fn fused_address_arithmetic_agrees_with_the_interpreter() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        // Stack slots at r10-16 and r10-8; loads through `d = a; d += b/k;
        // d = *(d + off)` (fused into one indexed load when unchecked, a lea and
        // a load when checked) and the lea-only form where d stays live.
        let src = "
            lddw %r6, 0x8877665544332211
            stxdw [%r10-16], %r6
            lddw %r6, 0xfffefdfcfbfaf9f8
            stxdw [%r10-8], %r6
            mov %r4, -16
            mov %r3, %r10
            add %r3, %r4
            ldxdw %r3, [%r3+8]
            mov %r0, %r3
            mov %r5, %r10
            add %r5, -16
            ldxb %r5, [%r5+3]
            add %r0, %r5
            mov %r7, %r10
            add %r7, -8
            ldxh %r7, [%r7-6]
            xor %r0, %r7
            mov %r8, %r4
            add %r8, %r10
            ldxw %r8, [%r8+12]
            add %r0, %r8
            mov %r9, %r10
            add %r9, %r4
            ldxdw %r2, [%r9+0]
            add %r0, %r2
            add %r9, 1
            add %r0, %r9
            sub %r0, %r10
            mov %r3, %r10
            add %r3, %r4
            stxdw [%r3+8], %r6
            add %r0, %r3
            sub %r0, %r10
            mov %r5, %r10
            add %r5, %r4
            stb [%r5+1], 0x5a
            mov %r5, 0
            ldxdw %r5, [%r10-16]
            add %r0, %r5
            exit";
        let insns = assemble(src).expect("assembles");
        let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
        let want = p.run(RunOptions::new()).expect("runs").r0;
        let unchecked = unsafe { JitOptions::unchecked() };
        for opts in [
            JitOptions::checked(),
            JitOptions::checked().metering(false),
            unchecked.clone(),
            unchecked.metering(false),
        ] {
            let jit = p.jit(&opts).expect("compiles");
            assert_eq!(
                jit.run(RunOptions::new()).expect("runs").r0,
                want,
                "{opts:?}"
            );
            let text: Vec<String> = jit.disassemble().into_iter().map(|i| i.text).collect();
            let fused_load = text.iter().any(|t| t == "mov rdx, [rbp+rcx+8]");
            assert_eq!(fused_load, !opts.is_checked(), "{text:?}");
            // A store through a dead sum is fused; through a live one it is not.
            let fused_store = text.iter().any(|t| t == "mov byte ptr [rbp+rcx+1], 0x5a");
            assert_eq!(fused_store, !opts.is_checked(), "{text:?}");
            assert!(
                !text.iter().any(|t| t == "mov [rbp+rcx+8], rbx"),
                "{text:?}"
            );
            assert!(text.iter().any(|t| t == "lea r15, [rbp+rcx]"), "{text:?}");
        }
    }

    #[test]
    fn divisions_by_registers_agree_with_the_interpreter_with_and_without_metering() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        // Every division and modulo, with dst and src in rax and rdx (the
        // registers `div` uses) and elsewhere, divisors 0 and -1 included; all
        // registers are folded into r0 so a clobbered one shows.
        let values: [i64; 6] = [0, -1, 7, -9, i64::MIN, 0x1_0000_0003];
        let unchecked = unsafe { JitOptions::unchecked() };
        for op in ["div", "mod", "sdiv", "smod"] {
            for w in ["", "32"] {
                for (dst, src) in [(0, 3), (3, 0), (3, 4), (1, 3), (0, 0), (3, 3)] {
                    for (x, y) in values
                        .iter()
                        .flat_map(|x| values.iter().map(move |y| (*x, *y)))
                    {
                        let src_text = format!(
                            "lddw %r0, 0x1111\nlddw %r3, 0x3333\nlddw %r4, 0x4444\nlddw %r1, 0x5555\n\
                             lddw %r{dst}, {x:#x}\nlddw %r{src}, {y:#x}\n{op}{w} %r{dst}, %r{src}\n\
                             mov %r6, %r{dst}\nadd %r0, %r1\nadd %r0, %r3\nxor %r0, %r4\n\
                             lsh %r6, 1\nxor %r0, %r6\nexit"
                        );
                        let insns =
                            assemble(&src_text).unwrap_or_else(|e| panic!("{src_text}: {e}"));
                        let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
                        let want = p.run(RunOptions::new()).expect("runs").r0;
                        for opts in [unchecked.clone(), unchecked.clone().metering(false)] {
                            let jit = p.jit(&opts).expect("compiles");
                            let got = jit.run(RunOptions::new()).expect("runs").r0;
                            assert_eq!(got, want, "{opts:?}\n{src_text}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn local_calls_keep_r6_to_r9_whatever_the_callee_writes() {
        // main sets r6..r9, calls f (writes r6 and r8, calls g), g writes r7 and
        // r9 and calls the leaf h (writes only r0..r5); after each call the
        // caller's r6..r9 must be its own. All registers are folded into r0.
        let src = "
            mov %r6, 6\nmov %r7, 7\nmov %r8, 8\nmov %r9, 9
            call local f
            mov %r0, %r6\nlsh %r0, 8\nadd %r0, %r7\nlsh %r0, 8\nadd %r0, %r8
            lsh %r0, 8\nadd %r0, %r9\nlsh %r0, 8\nadd %r0, %r1
            exit
            f:
            mov %r6, 60\nmov %r8, 80\ncall local g\nadd %r6, %r8\nmov %r1, %r6
            add %r1, %r0\nexit
            g:
            mov %r7, 70\nmov %r9, 90\ncall local h\nadd %r7, %r9\nmov %r0, %r7\nexit
            h:
            mov %r0, 1\nmov %r1, 2\nmov %r5, 3\nexit";
        let insns = assemble(src).expect("assembles");
        let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
        let want = p.run(RunOptions::new()).expect("runs").r0;
        assert_eq!(want, 0x06_0708_0900 + 300);
        let unchecked = unsafe { JitOptions::unchecked() };
        for opts in [
            JitOptions::checked(),
            JitOptions::checked().metering(false),
            unchecked.clone(),
            unchecked.metering(false),
        ] {
            let jit = p.jit(&opts).expect("compiles");
            assert_eq!(
                jit.run(RunOptions::new()).expect("runs").r0,
                want,
                "{opts:?}"
            );
        }
    }

    #[test]
    fn division_magic_numbers_are_exact() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut ds: Vec<u64> = (3..2000)
            .chain([u32::MAX as u64, u64::MAX, u64::MAX - 1])
            .collect();
        ds.extend((0..3000).map(|_| rng.next() >> rng.below(64)));
        for d in ds.into_iter().filter(|d| *d > 1 && !d.is_power_of_two()) {
            let (m, s, add) = super::codegen::udiv_magic(d);
            let mut ns: Vec<u64> = vec![
                0,
                1,
                d - 1,
                d,
                d + 1,
                u64::MAX,
                u64::MAX - 1,
                u32::MAX as u64,
            ];
            ns.extend((0..40).map(|_| rng.next() >> rng.below(64)));
            for n in ns {
                let hi = ((n as u128 * m as u128) >> 64) as u64;
                let q = if add {
                    (((n - hi) >> 1) + hi) >> s
                } else {
                    hi >> s
                };
                assert_eq!(q, n / d, "{n} / {d}");
            }
        }
    }

    #[test]
    fn divisions_by_constants_agree_with_the_interpreter() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        let mut rng = Rng(0x5eed);
        let divisors: [i64; 14] = [
            1,
            2,
            3,
            7,
            10,
            16,
            641,
            1 << 30,
            0x7fff_ffff,
            -1,
            -7,
            -16,
            0x1_0000,
            1000,
        ];
        let unchecked = unsafe { JitOptions::unchecked() };
        for op in ["div", "mod"] {
            for w in ["", "32"] {
                for d in divisors {
                    // r0 and r3 (rax, rdx: what `mul` uses) live after the
                    // division, or dead (overwritten before any read).
                    for (dst, dead) in [0u8, 3, 4, 6]
                        .into_iter()
                        .flat_map(|r| [(r, false), (r, true)])
                    {
                        let x = rng.next();
                        let kill = if dead { "mov %r0, 5\nmov %r3, 9\n" } else { "" };
                        let src = format!(
                            "lddw %r0, 0x1111\nlddw %r3, 0x3333\nlddw %r4, 0x4444\nlddw %r6, 0x6666\n\
                             lddw %r{dst}, {x:#x}\n{op}{w} %r{dst}, {d}\nmov %r7, %r{dst}\n{kill}\
                             add %r0, %r3\nxor %r0, %r4\nadd %r0, %r6\nlsh %r7, 1\nxor %r0, %r7\nexit"
                        );
                        let insns = assemble(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
                        let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
                        let want = p.run(RunOptions::new()).expect("runs").r0;
                        for opts in [JitOptions::checked(), unchecked.clone().metering(false)] {
                            let jit = p.jit(&opts).expect("compiles");
                            let got = jit.run(RunOptions::new()).expect("runs").r0;
                            assert_eq!(got, want, "{opts:?}\n{src}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn multiplies_and_zero_compares_agree_with_the_interpreter() {
        let unchecked = unsafe { JitOptions::unchecked() };
        for k in [0i64, 1, 2, 3, 5, 8, 9, 10, -1, -3, 1 << 20, -(1 << 30)] {
            for w in ["", "32"] {
                for x in [
                    0u64,
                    1,
                    0xffff_ffff,
                    0x8000_0000_0000_0001,
                    0x1234_5678_9abc_def0,
                ] {
                    let src = format!(
                        "lddw %r6, {x:#x}\nmul{w} %r6, {k}\nmov %r0, %r6\njeq{w} %r6, 0, +1\nadd %r0, 1\n\
                         mov %r1, 0\njsgt %r6, 0, +1\nadd %r0, 2\nexit"
                    );
                    let insns = assemble(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
                    let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
                    let want = p.run(RunOptions::new()).expect("runs").r0;
                    let jit = p.jit(&unchecked.clone().metering(false)).expect("compiles");
                    assert_eq!(jit.run(RunOptions::new()).expect("runs").r0, want, "{src}");
                }
            }
        }
    }

    #[test]
    fn fused_bit_tests_and_multiply_adds_agree_with_the_interpreter() {
        let unchecked = unsafe { JitOptions::unchecked() };
        let mut rng = Rng(77);
        for k in [1i64, 6, 0x80, 0x7fff_ffff, -1, -8, 0x100] {
            for m in [3i64, 5, 9] {
                for w in ["", "32"] {
                    // d dead after the jump (fused), and d live (not fused).
                    for tail in ["mov %r7, 5", "mov %r7, %r7\nmov %r0, %r7"] {
                        let x = rng.next();
                        let src = format!(
                            "lddw %r6, {x:#x}\nmov %r0, 0\nmov %r7, %r6\nand %r7, {k}\njeq %r7, 0, +1\n\
                             add %r0, 1\nmov %r8, %r6\nand %r8, {k}\njne %r8, 0, +1\nadd %r0, 2\n\
                             mov %r9, %r6\nmul{w} %r9, {m}\nadd{w} %r9, {k}\n{tail}\nlsh %r0, 8\n\
                             xor %r0, %r9\nexit"
                        );
                        let insns = assemble(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
                        let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
                        let want = p.run(RunOptions::new()).expect("runs").r0;
                        for opts in [JitOptions::checked(), unchecked.clone().metering(false)] {
                            let jit = p.jit(&opts).expect("compiles");
                            let got = jit.run(RunOptions::new()).expect("runs");
                            assert_eq!(got.r0, want, "{src}");
                            if opts.is_checked() {
                                let e = p.run(RunOptions::new()).expect("runs").executed;
                                assert_eq!(got.executed, e, "{src}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn extension_idioms_agree_with_the_interpreter() {
        let unchecked = unsafe { JitOptions::unchecked() };
        for x in [
            0u64,
            0xffff_ffff,
            0x8000_0000,
            0x1234_5678_9abc_def0,
            u64::MAX,
        ] {
            let src = format!(
                "lddw %r6, {x:#x}\nmov %r7, %r6\nlsh %r7, 32\nrsh %r7, 32\nmov %r8, %r6\n\
                 lsh %r8, 32\narsh %r8, 32\nmov %r9, %r6\nlsh %r9, 32\nrsh %r9, 31\n\
                 lsh %r6, 32\nrsh %r6, 32\nmov %r0, %r7\nxor %r0, %r8\nadd %r0, %r9\n\
                 lsh %r0, 1\nadd %r0, %r6\nexit"
            );
            let insns = assemble(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
            let want = p.run(RunOptions::new()).expect("runs").r0;
            for opts in [JitOptions::checked(), unchecked.clone().metering(false)] {
                let jit = p.jit(&opts).expect("compiles");
                assert_eq!(jit.run(RunOptions::new()).expect("runs").r0, want, "{src}");
                let text: Vec<String> = jit.disassemble().into_iter().map(|i| i.text).collect();
                assert!(text.iter().any(|t| t == "mov r13d, ebx"), "{text:?}");
                assert!(text.iter().any(|t| t == "movsxd r14, ebx"), "{text:?}");
            }
        }
    }

    /// A stand-in map for the lookup tests: helper 1 computes what the inline
    /// code must (values + key * 16 for key < 4, else 0) and marks that it ran.
    fn lookup_program(src: &str) -> (VmProgram, Box<[u64; 8]>) {
        use crate::{HelperOutcome, HelperTable};
        use std::sync::Arc;
        let values = Box::new([0u64; 8]);
        let base = values.as_ptr() as u64;
        let mut t = HelperTable::new();
        t.register(
            1,
            "bpf_map_lookup_elem",
            move |ctx: &mut crate::HelperCtx<'_, '_>, a: [u64; 5]| {
                let key = u32::from_le_bytes(ctx.read_bytes(a[1], 4)?.try_into().unwrap_or([0; 4]));
                // Bit 0 tells the helper ran (the inline path never sets it).
                let r = if a[0] != MAP || key >= 4 {
                    1
                } else {
                    base + key as u64 * 16 + 1
                };
                Ok(HelperOutcome::Return(r))
            },
        );
        let insns = assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let p = VmProgram::new(&insns, &LoadOptions::new(Arc::new(t))).expect("loads");
        (p, values)
    }

    const MAP: u64 = 0x5000_0000;

    fn lookup_opts(values: u64) -> JitOptions {
        // SAFETY: the test programs' keys are on their stack.
        unsafe {
            JitOptions::checked().map_lookup(
                MAP,
                super::MapLookup::Array {
                    values,
                    max_entries: 4,
                    stride: 16,
                },
            )
        }
    }

    #[test]
    fn array_lookups_inline_only_where_r1_is_known() {
        let run = |src: &str, key: u64| {
            let (p, values) = lookup_program(src);
            let jit = p
                .jit(&lookup_opts(values.as_ptr() as u64))
                .expect("compiles");
            let helper = p.jit(&JitOptions::checked()).expect("compiles");
            let args = [key, 0, 0, 0, 0];
            let got = jit.run(RunOptions::new().args(args)).expect("runs").r0;
            let want = helper.run(RunOptions::new().args(args)).expect("runs").r0;
            (got, want, values.as_ptr() as u64)
        };
        // r1 set in the same block: inline, and the same pointers (or NULL) as the
        // helper gives, r1..r5 kept.
        let known = "stxw [%r10-4], %r1\nmov %r3, 32\nlddw %r1, 0x50000000\nmov %r2, %r10\n\
                     add %r2, -4\ncall 1\nadd %r0, %r3\nexit";
        for key in [0u64, 3, 4, 5, 1 << 31, u32::MAX as u64] {
            let (got, want, base) = run(known, key);
            assert_eq!(got | 1, want, "key {key}");
            let expect = if key < 4 { base + key * 16 } else { 0 };
            assert_eq!(got, expect + 32, "key {key}: inline");
        }
        // A jump lands between the LD_IMM64 and the call: r1 may be anything there.
        let joined = "stxw [%r10-4], %r1\nlddw %r1, 0x50000000\njeq %r2, 1, +1\n\
                      mov %r2, %r10\nmov %r2, %r10\nadd %r2, -4\ncall 1\nexit";
        // r1 rewritten after the LD_IMM64.
        let rewritten = "stxw [%r10-4], %r1\nlddw %r1, 0x50000000\nadd %r1, 0\n\
                         mov %r2, %r10\nadd %r2, -4\ncall 1\nexit";
        // Another map.
        let other = "stxw [%r10-4], %r1\nlddw %r1, 0x60000000\n\
                     mov %r2, %r10\nadd %r2, -4\ncall 1\nexit";
        for src in [joined, rewritten, other] {
            for key in [1u64, 7] {
                let (got, want, _) = run(src, key);
                assert_eq!(got, want, "{src}");
                assert_eq!(got & 1, 1, "the helper ran: {src}");
            }
        }
    }

    #[test]
    fn percpu_array_lookups_inline_index_by_the_run_s_cpu() {
        // Key from r1; the pointer found minus the base, or -1 for NULL.
        let src = "stxw [%r10-4], %r1\nlddw %r1, 0x50000000\nmov %r2, %r10\n\
                   add %r2, -4\ncall 1\njne %r0, 0, +2\nmov %r0, -1\nexit\nexit";
        let (p, _values) = lookup_program(src);
        let base = 0x7000_0000u64;
        // SAFETY: the key is on the stack; the values are never dereferenced.
        let opts = unsafe {
            JitOptions::checked().map_lookup(
                MAP,
                super::MapLookup::PercpuArray {
                    values: base,
                    max_entries: 4,
                    stride: 24,
                    ncpus: 3,
                },
            )
        };
        let jit = p.jit(&opts).expect("compiles");
        for cpu in 0..4u32 {
            for key in [0u64, 1, 3, 4, 1 << 32 | 1] {
                let r = jit
                    .run_repeat_on_cpu(RunOptions::new().arg1(key), 1, cpu, |_| {})
                    .expect("runs")
                    .r0;
                let k = key as u32 as u64;
                let want = if k < 4 && cpu < 3 {
                    base + (k * 3 + cpu as u64) * 24
                } else {
                    u64::MAX
                };
                assert_eq!(r, want, "key {key:#x} cpu {cpu}");
            }
        }
    }

    #[test]
    fn repeat_refreshes_only_after_helper_calls() {
        // Counts its runs in the memory r1 points to; calls helper 1 when the
        // count is odd.
        let src = "ldxdw %r6, [%r1]\nadd %r6, 1\nstxdw [%r1], %r6\nmov %r0, %r6\n\
                   jset %r6, 1, +1\nexit\nstxw [%r10-4], %r6\nlddw %r1, 0x60000000\n\
                   mov %r2, %r10\nadd %r2, -4\ncall 1\nmov %r0, %r6\nexit";
        let (p, values) = lookup_program(src);
        let jit = p
            .jit(&lookup_opts(values.as_ptr() as u64))
            .expect("compiles");
        let mut count = [0u8; 8];
        let at = count.as_mut_ptr() as u64;
        let mut refreshes = 0;
        let opts = RunOptions::new().arg1(at).region(crate::Region::new(
            at,
            8,
            true,
            crate::RegionKind::Mem,
        ));
        let r = jit
            .run_repeat(opts, 10, |rr| {
                assert_eq!(rr.regions.len(), 1);
                refreshes += 1;
            })
            .expect("runs");
        assert_eq!(r.r0, 10);
        assert_eq!(u64::from_le_bytes(count), 10);
        // Runs 1, 3, 5, 7, 9 called the helper; the last one is not followed by a run.
        assert_eq!(refreshes, 5);
    }
}
