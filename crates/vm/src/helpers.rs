//! Helper functions (`call N`): the calling convention and the table.
//!
//! A helper gets r1..r5 and a [`HelperCtx`] through which it checks and touches the
//! program's memory, reaches the runtime's environment (maps, trace output, the XDP
//! buffer), registers memory it hands out, runs callbacks of the current program
//! (`bpf_loop`) and asks for a tail call. The runtime fills a [`HelperTable`];
//! [`crate::VmProgram::new`] resolves every `call N` against it once, so unknown
//! ids are refused at load and a call costs one indirect jump at run time.

use crate::error::{Access, HelperError, VmError};
use crate::interp::Machine;
use crate::memory::{Region, RegionKind};
use crate::program::VmProgram;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a helper tells the VM to do next.
pub enum HelperOutcome {
    /// Put the value in r0 and go on with the next instruction.
    Return(u64),
    /// `bpf_tail_call`: continue in this program, from its first instruction, with
    /// r1 = the helper's first argument and the current stack frame. After
    /// [`bpfvm_isa::consts::MAX_TAIL_CALL_CNT`] tail calls in a run the VM refuses
    /// further ones as the kernel does: r0 = [`TAIL_CALL_LIMIT_ERR`] and execution goes
    /// on after the call.
    #[doc(alias = "bpf_tail_call")]
    TailCall(Arc<VmProgram>),
}

/// r0 after a tail call refused because the run already made
/// [`bpfvm_isa::consts::MAX_TAIL_CALL_CNT`] of them (`-E2BIG`).
pub const TAIL_CALL_LIMIT_ERR: u64 = (-7i64) as u64;

/// A helper function: five arguments in, an outcome out.
pub trait Helper: Send + Sync {
    fn call(
        &self,
        ctx: &mut HelperCtx<'_, '_>,
        args: [u64; 5],
    ) -> Result<HelperOutcome, HelperError>;

    /// Whether a call may change what a run is set up from: its regions or the
    /// environment the embedder builds them from (a packet moved by an adjust
    /// helper, a redirect). After such a call a repeated JIT run is set up
    /// afresh (`JitProgram::run_repeat`); after the others it is simply
    /// re-entered. True unless the helper is registered with [`Leaves`].
    fn changes_run(&self) -> bool {
        true
    }
}

/// A helper that reads the run and its environment but changes neither
/// (tracing, clocks, random numbers): wrap it in this to register it, and
/// repeated runs that call it keep their setup (see [`Helper::changes_run`]).
pub struct Leaves<F>(pub F);

impl<F> Helper for Leaves<F>
where
    F: Fn(&mut HelperCtx<'_, '_>, [u64; 5]) -> Result<HelperOutcome, HelperError> + Send + Sync,
{
    fn call(
        &self,
        ctx: &mut HelperCtx<'_, '_>,
        args: [u64; 5],
    ) -> Result<HelperOutcome, HelperError> {
        (self.0)(ctx, args)
    }

    fn changes_run(&self) -> bool {
        false
    }
}

impl<F> Helper for F
where
    F: Fn(&mut HelperCtx<'_, '_>, [u64; 5]) -> Result<HelperOutcome, HelperError> + Send + Sync,
{
    fn call(
        &self,
        ctx: &mut HelperCtx<'_, '_>,
        args: [u64; 5],
    ) -> Result<HelperOutcome, HelperError> {
        self(ctx, args)
    }
}

/// One registered helper.
#[derive(Clone)]
pub struct HelperEntry {
    pub id: u32,
    pub name: &'static str,
    pub helper: Arc<dyn Helper>,
}

/// Helper ids (the kernel's `BPF_FUNC_*` numbers) to helpers.
#[derive(Clone, Default)]
pub struct HelperTable {
    entries: BTreeMap<u32, HelperEntry>,
}

impl std::fmt::Debug for HelperTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries.values().map(|e| (e.id, e.name)))
            .finish()
    }
}

impl HelperTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) helper `id`.
    pub fn register(
        &mut self,
        id: u32,
        name: &'static str,
        helper: impl Helper + 'static,
    ) -> &mut Self {
        self.entries.insert(
            id,
            HelperEntry {
                id,
                name,
                helper: Arc::new(helper),
            },
        );
        self
    }

    pub fn get(&self, id: u32) -> Option<&HelperEntry> {
        self.entries.get(&id)
    }

    /// The helper's name, e.g. `bpf_map_lookup_elem`.
    pub fn name(&self, id: u32) -> Option<&'static str> {
        self.entries.get(&id).map(|e| e.name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &HelperEntry> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What a helper sees of the running program.
pub struct HelperCtx<'a, 'r> {
    pub(crate) m: &'a mut Machine<'r>,
    pub(crate) prog: &'a VmProgram,
    pub(crate) pc: usize,
}

impl HelperCtx<'_, '_> {
    /// The slot index of the `call` instruction.
    pub fn pc(&self) -> usize {
        self.pc
    }

    /// The program that made the call (after tail calls, the current one).
    pub fn program(&self) -> &VmProgram {
        self.prog
    }

    /// True in checked mode; in unchecked mode the memory checks below always pass
    /// (the verifier has proved the arguments).
    pub fn checked(&self) -> bool {
        self.m.checked
    }

    /// Tail calls made so far in this run.
    pub fn tail_calls(&self) -> u32 {
        self.m.tail_calls
    }

    /// The environment the runtime passed to the run, as `T`.
    pub fn env<T: Any>(&mut self) -> Result<&mut T, HelperError> {
        self.m
            .env
            .as_deref_mut()
            .and_then(|e| e.downcast_mut::<T>())
            .ok_or(HelperError::WrongEnv {
                expected: std::any::type_name::<T>(),
            })
    }

    /// [`Self::env`] shared: a helper can hold it while it reads program memory.
    pub fn env_ref<T: Any>(&self) -> Result<&T, HelperError> {
        self.m
            .env
            .as_deref()
            .and_then(|e| e.downcast_ref::<T>())
            .ok_or(HelperError::WrongEnv {
                expected: std::any::type_name::<T>(),
            })
    }

    /// The environment, untyped (None if the run has none).
    pub fn env_any(&mut self) -> Option<&mut dyn Any> {
        self.m.env.as_deref_mut()
    }

    fn check(&self, addr: u64, len: u64, access: Access) -> Result<(), HelperError> {
        if !self.m.checked || len == 0 || self.m.mem.ok(addr, len, access != Access::Read) {
            Ok(())
        } else {
            Err(HelperError::InvalidMemory { addr, len, access })
        }
    }

    /// Checks that the program may let a helper read `len` bytes at `addr`.
    pub fn check_read(&self, addr: u64, len: u64) -> Result<(), HelperError> {
        self.check(addr, len, Access::Read)
    }

    /// Checks that the program may let a helper write `len` bytes at `addr`.
    pub fn check_write(&self, addr: u64, len: u64) -> Result<(), HelperError> {
        self.check(addr, len, Access::Write)
    }

    /// Copies `len` bytes of program memory at `addr` (checked in checked mode).
    pub fn read_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, HelperError> {
        self.check_read(addr, len as u64)?;
        let mut v = vec![0u8; len];
        if len > 0 {
            // SAFETY: the range was checked against the run's regions (checked mode),
            // or the verifier proved it (unchecked mode, the caller's promise).
            unsafe { std::ptr::copy(addr as *const u8, v.as_mut_ptr(), len) };
        }
        Ok(v)
    }

    /// Copies `data` into program memory at `addr` (checked in checked mode).
    pub fn write_bytes(&self, addr: u64, data: &[u8]) -> Result<(), HelperError> {
        self.check_write(addr, data.len() as u64)?;
        if !data.is_empty() {
            // SAFETY: as in read_bytes.
            unsafe { std::ptr::copy(data.as_ptr(), addr as *mut u8, data.len()) };
        }
        Ok(())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (for `bpf_trace_printk`
    /// formats and the like); stops at the first byte the program may not read.
    pub fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, HelperError> {
        let mut out = Vec::new();
        for k in 0..max as u64 {
            let a = addr.wrapping_add(k);
            self.check_read(a, 1)?;
            // SAFETY: checked above (or proved by the verifier).
            let b = unsafe { *(a as *const u8) };
            if b == 0 {
                break;
            }
            out.push(b);
        }
        Ok(out)
    }

    /// Lets the program access `region` from now on (a map value, a ring buffer
    /// record handed out by this helper).
    pub fn register_region(&mut self, region: Region) {
        self.m.mem.regions.push(region);
    }

    /// Withdraws the region that starts at `start` (a submitted ring buffer record).
    /// Returns false if there was none.
    pub fn unregister_region(&mut self, start: u64) -> bool {
        let regions = &mut self.m.mem.regions;
        match regions.iter().rposition(|r| r.start == start) {
            Some(i) => {
                regions.remove(i);
                true
            }
            None => false,
        }
    }

    /// The run's regions (the stack excluded).
    pub fn regions(&self) -> &[Region] {
        &self.m.mem.regions
    }

    /// Replaces the region of `kind` (e.g. the packet after `bpf_xdp_adjust_head`);
    /// adds it if there was none.
    pub fn set_region(&mut self, region: Region) {
        let regions = &mut self.m.mem.regions;
        match regions.iter_mut().find(|r| r.kind == region.kind) {
            Some(r) => *r = region,
            None => regions.push(region),
        }
    }

    /// The current packet region, if the run has one.
    pub fn packet(&self) -> Option<Region> {
        self.m
            .mem
            .regions
            .iter()
            .find(|r| r.kind == RegionKind::Packet)
            .copied()
    }

    /// Runs a function of the current program (a callback given to the helper as a
    /// `BPF_PSEUDO_FUNC` value, see [`crate::FUNC_ADDR_BASE`]) in a new frame with
    /// r1..r5 = `args`, and returns its r0.
    #[doc(alias = "bpf_loop")]
    pub fn call_function(&mut self, target: u64, args: [u64; 5]) -> Result<u64, VmError> {
        let entry = self
            .prog
            .func_entry(target)
            .ok_or(VmError::BadCallback { target })?;
        crate::interp::call_function(self.m, self.prog, entry, args, self.pc)
    }
}
