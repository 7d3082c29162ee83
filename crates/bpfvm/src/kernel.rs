//! The userspace "kernel": object tables, handles, and the one command dispatcher
//! ([`Runtime::bpf`], modelled on `__sys_bpf`). The library API, the CLI and the
//! daemon all go through it.
//!
//! Lifetimes follow the kernel's: an object lives while something holds a strong
//! reference (a handle — the library's stand-in for an fd —, a pin, an attachment, a
//! program that uses a map, a prog_array slot). Id tables hold weak references, so
//! ids of released objects simply stop resolving.

use crate::config::RuntimeConfig;
use crate::error::{BpfError, Result};
use crate::idr::Idr;
use crate::trace::TracePipe;
use bpfvm_isa::uapi::{AttachType, ProgType};
use bpfvm_isa::Insn;
use bpfvm_maps::{MapAttr, MapOps, MapType};
use bpfvm_vm::{HelperTable, VmProgram};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::SystemTime;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// BTF loaded into the runtime (`bpftool btf list`).
pub struct BtfObj {
    /// The BTF object's id (`bpftool btf show id N`).
    pub id: u32,
    /// The types.
    pub btf: bpfvm_obj::btf::Btf,
    /// The raw blob as loaded (bytes_btf in `btf show`).
    pub size: usize,
    /// The name of the object it came from.
    pub name: String,
}

/// A map in the runtime.
pub struct MapObj {
    /// The map's id (`bpftool map show id N`).
    pub id: u32,
    /// The map type's operations (the kernel's `bpf_map_ops`); reached from
    /// outside through the accessors below and [`Runtime::bpf`].
    pub(crate) ops: Arc<dyn MapOps>,
    /// The name given at creation (at most 15 characters).
    pub name: String,
    /// The BTF describing key and value, when the map was created with one.
    pub btf: Option<Arc<BtfObj>>,
    /// The key's type id in [`MapObj::btf`] (0: none).
    pub btf_key_type_id: u32,
    /// The value's type id in [`MapObj::btf`] (0: none).
    pub btf_value_type_id: u32,
    /// Made by a process without CAP_PERFMON (`!map->bypass_spec_v1`).
    pub created_unprivileged: bool,
    /// The value's kptr fields. Neither user space nor a program's map
    /// update writes them, and user space reads them as 0 (the kernel's
    /// `copy_map_value` skips them): only `bpf_kptr_xchg` stores a kernel
    /// object's address there.
    pub(crate) kptrs: Vec<bpfvm_verifier::KptrField>,
    /// The value has more special fields than BTF_FIELDS_MAX: like the
    /// kernel's map_create, the map keeps none of them (no kptr, lock or
    /// timer; btf_parse_fields' -E2BIG).
    pub(crate) fields_overflow: bool,
    /// Handles and pins (user-space references). When it drops to zero a prog_array
    /// is cleared, as the kernel does on the last uref.
    user_refs: AtomicUsize,
}

impl MapObj {
    /// Zeroes the kptr fields of `values` (one value, or per-CPU values each
    /// padded to 8 bytes).
    pub(crate) fn clear_kptrs(&self, values: &mut [u8]) {
        if self.kptrs.is_empty() {
            return;
        }
        let stride = (self.attr().value_size as usize).next_multiple_of(8).max(1);
        for v in values.chunks_mut(stride) {
            for k in &self.kptrs {
                let o = k.off as usize;
                if let Some(f) = v.get_mut(o..o + 8) {
                    f.fill(0);
                }
            }
        }
    }
    /// The objects the referenced kptr fields of the value at `key` hold
    /// (each CPU's value of a per-CPU map), to be released once an update or
    /// delete has overwritten them.
    pub(crate) fn held_kptrs(&self, key: &[u8], cpus: std::ops::Range<usize>) -> Vec<u64> {
        let mut held = Vec::new();
        if !self.kptrs.iter().any(|k| k.referenced) {
            return held;
        }
        for cpu in cpus {
            let Some(v) = self.ops.lookup(key, cpu) else {
                continue;
            };
            // A crafted BTF could place a field off its alignment: such a
            // field holds nothing a program could have stored (the verifier
            // wants kptr accesses aligned), and is not read as an atomic.
            for k in self.kptrs.iter().filter(|k| k.referenced && k.off % 8 == 0) {
                // SAFETY: the field lies inside the value (checked against
                // value_size when the fields were found), is 8-byte aligned
                // in an 8-byte aligned value, and is only ever accessed
                // atomically.
                let f = unsafe { &*(v.add(k.off as usize) as *const std::sync::atomic::AtomicU64) };
                let p = f.load(std::sync::atomic::Ordering::Acquire);
                if p != 0 && k.pointee == "bpf_cpumask" {
                    held.push(p);
                }
            }
        }
        held
    }
    /// Releases what [`held_kptrs`](Self::held_kptrs) found (the objects'
    /// destructors: only `struct bpf_cpumask` is refcounted here; tasks and
    /// cgroups are stand-ins that are never freed).
    pub(crate) fn release_kptrs(held: Vec<u64>) {
        for p in held {
            crate::helpers::cpumask::drop_ref(p);
        }
    }
    /// The map type (`enum bpf_map_type`).
    pub fn map_type(&self) -> MapType {
        self.ops.attr().map_type
    }
    /// The attributes the map was created with.
    pub fn attr(&self) -> &MapAttr {
        self.ops.attr()
    }
    /// The value a program's map pointer register holds for this map.
    pub fn prog_addr(&self) -> u64 {
        map_addr(&self.ops)
    }
    /// The map's kernel struct as programs may read it (zeroes until a
    /// program that reads it is loaded).
    pub(crate) fn kernel_region(&self) -> Option<bpfvm_maps::ValueRegion> {
        let image = self.attr().kernel_image.as_ref()?;
        Some(image.region())
    }
    /// Bytes of memory the map holds (`bytes_memlock` of `bpftool map show`).
    pub fn memory_usage(&self) -> u64 {
        self.ops.memory_usage()
    }
    /// Whether user space froze the map (`BPF_MAP_FREEZE`).
    pub fn is_frozen(&self) -> bool {
        self.ops.is_frozen()
    }
    /// Size of a value as user space reads and writes it: the value size, or
    /// for per-CPU maps every CPU's value, each rounded up to 8 bytes.
    pub fn user_value_size(&self) -> usize {
        self.ops.user_value_size()
    }
    /// Number of elements in the map (`max_entries` for arrays).
    pub fn entries(&self) -> u64 {
        self.ops.entries()
    }
    /// Where the map's value memory lives (the blocks programs reach through
    /// lookups); arrays have one block. The addresses are live: reading or
    /// writing through them races programs, as user-space mmap of a map does.
    pub fn value_regions(&self) -> Vec<crate::maps::ValueRegion> {
        self.ops.value_regions()
    }
    /// The id of the file the values live in, when a value-file provider gave
    /// one ([`crate::maps::with_value_files`]).
    pub fn value_file(&self) -> Option<u64> {
        self.ops.value_file()
    }
    /// A queue's or stack's values, oldest first: pushing them in this order
    /// into an empty map of the same kind rebuilds it. `None` for maps with keys.
    pub fn pushed_values(&self) -> Option<Vec<Vec<u8>>> {
        self.ops.pushed_values()
    }
    /// The perf event array, for `BPF_MAP_TYPE_PERF_EVENT_ARRAY` maps (user
    /// space opens a CPU's buffer and reads its records).
    pub fn perf_event_array(&self) -> Option<&crate::maps::PerfEventArray> {
        self.ops.as_perf_event_array()
    }
    fn get_uref(&self) {
        self.user_refs.fetch_add(1, Ordering::AcqRel);
    }
    fn put_uref(&self) {
        if self.user_refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(pa) = self.ops.as_prog_array() {
                pa.clear();
            }
        }
    }
}

/// The address identifying a map inside programs (its `struct bpf_map *`).
pub(crate) fn map_addr(ops: &Arc<dyn MapOps>) -> u64 {
    match &ops.attr().kernel_image {
        Some(image) => image.addr(),
        None => Arc::as_ptr(ops) as *const () as u64,
    }
}

/// A loaded program.
pub struct ProgObj {
    /// The program's id (`bpftool prog show id N`).
    pub id: u32,
    /// The name given at load (at most 15 characters).
    pub name: String,
    /// `enum bpf_prog_type` number.
    pub prog_type: u32,
    /// `enum bpf_attach_type` number the program was loaded for.
    pub expected_attach_type: u32,
    /// The program tag (`bpftool prog show`'s `tag`), computed as the kernel does.
    pub tag: [u8; 8],
    /// The instructions as `prog dump xlated` shows them: map references carry map
    /// ids (src PSEUDO_MAP_FD / PSEUDO_MAP_VALUE, imm = id).
    pub xlated: Vec<Insn>,
    /// The program as the interpreter runs it (map references resolved).
    pub(crate) vm: Arc<VmProgram>,
    /// Native code, when the JIT compiled the program (the kernel's `jited`);
    /// runs use it. When it is `None`, `jit_error` says why.
    pub(crate) jit: Option<bpfvm_vm::JitProgram>,
    /// Why `jit` is `None`.
    pub(crate) jit_error: Option<JitUnavailable>,
    /// The maps the program refers to (`map_ids` of `bpftool prog show`).
    pub used_maps: Vec<Arc<MapObj>>,
    /// The program reads its maps' kernel structs through map pointers: its
    /// checked runs may read their images.
    pub(crate) reads_map_structs: bool,
    /// Whether the license is GPL-compatible (GPL-only helpers allowed).
    pub gpl_compatible: bool,
    /// When the program was loaded.
    pub loaded_at: SystemTime,
    /// The user that loaded it.
    pub uid: u32,
    /// The program's BTF, when it was loaded with one.
    pub btf: Option<Arc<BtfObj>>,
    /// BTF function info (`func_info` of BPF_PROG_LOAD), per subprogram.
    pub func_info: Vec<FuncInfo>,
    /// BTF line info (`line_info` of BPF_PROG_LOAD): source lines by instruction.
    pub line_info: Vec<LineInfo>,
    /// Runs counted (`run_cnt`, as with `kernel.bpf_stats_enabled`).
    pub run_cnt: AtomicU64,
    /// Time spent in runs (`run_time_ns`).
    pub run_time_ns: AtomicU64,
    /// The verifier's log at the level the loader asked for (empty at level 0).
    pub verifier_log: String,
    /// The verifier's statistics (`processed N insns ...`).
    pub verifier_stats: bpfvm_verifier::Stats,
    /// Where the program reads `task_struct`'s fields, when it calls
    /// `bpf_get_current_task(_btf)` (`task.rs`).
    pub(crate) task_layout: Option<crate::task::TaskLayout>,
    /// The slots of a BTF-typed context a test run fills from `ctx_in`
    /// (`testrun/btf_ctx.rs`); `None`: the program type's own test run.
    pub(crate) ctx_slots: Option<Vec<crate::testrun::CtxSlot>>,
}

pub use bpfvm_obj::{FuncInfo, LineInfo};

/// Why a program has no native code ([`ProgObj::jit_error`]).
#[derive(Debug, thiserror::Error)]
pub enum JitUnavailable {
    /// The runtime's JIT was off when the program was loaded
    /// ([`RuntimeConfig::jit`], [`Runtime::set_jit`]).
    #[error("the JIT was off when the program was loaded")]
    Disabled,
    /// The JIT was on and could not compile the program.
    #[error("the JIT could not compile the program")]
    Failed {
        /// What the JIT reported.
        #[source]
        source: bpfvm_vm::JitError,
    },
}

/// The native code of a JIT-compiled program ([`ProgObj::jited`]).
#[derive(Clone, Copy)]
pub struct Jited<'a>(&'a bpfvm_vm::JitProgram);

impl<'a> Jited<'a> {
    /// The native code: entry thunk first, then the instructions in order,
    /// then out-of-line paths (memory check slow paths, faults).
    pub fn code(&self) -> &'a [u8] {
        self.0.jited_code()
    }
    /// Size of the native code, as `bpftool prog show` reports `bytes_jited`.
    pub fn len(&self) -> usize {
        self.0.bytes_jited()
    }
    /// Whether the code is empty (it never is for a compiled program).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Per instruction slot, the offset in [`Jited::code`] where its code
    /// starts (both slots of an LD_IMM64 give the same offset).
    pub fn insn_offsets(&self) -> &'a [u32] {
        self.0.insn_offsets()
    }
    /// Where the out-of-line code starts in [`Jited::code`].
    pub fn out_of_line_offset(&self) -> usize {
        self.0.out_of_line_offset()
    }
    /// A listing: each instruction (kernel syntax) above the x86-64
    /// instructions generated for it.
    pub fn listing(&self) -> String {
        self.0.listing()
    }
    /// The native code decoded, one entry per x86-64 instruction (Intel
    /// syntax), in address order.
    pub fn disassemble(&self) -> Vec<JitedInsn> {
        self.0
            .disassemble()
            .into_iter()
            .map(|n| JitedInsn {
                offset: n.offset,
                bytes: n.bytes,
                text: n.text,
            })
            .collect()
    }
}

/// One native instruction of [`Jited::disassemble`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitedInsn {
    /// Offset in [`Jited::code`].
    pub offset: usize,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Intel syntax.
    pub text: String,
}

impl std::fmt::Debug for Jited<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jited({} bytes)", self.len())
    }
}

impl ProgObj {
    /// The program as the interpreter runs it (map references resolved to
    /// addresses). Observers of a run ([`crate::vm::Observer`]) see this
    /// program, and the programs it tail-calls, by this identity.
    pub fn vm(&self) -> &VmProgram {
        &self.vm
    }
    /// The native code, when the JIT compiled the program.
    pub fn jited(&self) -> Option<Jited<'_>> {
        self.jit.as_ref().map(Jited)
    }
    /// Whether the program runs as native code.
    pub fn is_jited(&self) -> bool {
        self.jit.is_some()
    }
    /// Size of the native code (0 when not JIT-compiled), `bytes_jited`.
    pub fn jited_len(&self) -> usize {
        self.jit.as_ref().map_or(0, |j| j.bytes_jited())
    }
    /// Why the program has no native code; `None` when it has.
    pub fn jit_error(&self) -> Option<&JitUnavailable> {
        self.jit_error.as_ref()
    }
}

/// A user-space reference to a map (the library's file descriptor).
pub struct MapFd(Arc<MapObj>);

impl MapFd {
    fn new(m: Arc<MapObj>) -> MapFd {
        m.get_uref();
        MapFd(m)
    }
    /// The map the handle refers to.
    pub fn obj(&self) -> &Arc<MapObj> {
        &self.0
    }
    /// The map's id.
    pub fn id(&self) -> u32 {
        self.0.id
    }
}

impl Clone for MapFd {
    fn clone(&self) -> Self {
        MapFd::new(self.0.clone())
    }
}

impl Drop for MapFd {
    fn drop(&mut self) {
        self.0.put_uref();
    }
}

impl std::fmt::Debug for MapFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MapFd(id {} '{}')", self.0.id, self.0.name)
    }
}

/// A user-space reference to a program.
#[derive(Clone)]
pub struct ProgFd(pub(crate) Arc<ProgObj>);

impl ProgFd {
    /// The program the handle refers to.
    pub fn obj(&self) -> &Arc<ProgObj> {
        &self.0
    }
    /// The program's id.
    pub fn id(&self) -> u32 {
        self.0.id
    }
}

impl std::fmt::Debug for ProgFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProgFd(id {} '{}')", self.0.id, self.0.name)
    }
}

/// What a pin holds.
#[derive(Clone, Debug)]
pub enum Pinned {
    /// A program.
    Prog(ProgFd),
    /// A map.
    Map(MapFd),
}

/// Object kinds, for commands that take "an object by id".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjKind {
    /// A program.
    Prog,
    /// A map.
    Map,
    /// A BTF object.
    Btf,
}

pub(crate) struct Kernel {
    pub(crate) maps: Mutex<Idr<MapObj>>,
    pub(crate) progs: Mutex<Idr<ProgObj>>,
    pub(crate) btfs: Mutex<Idr<BtfObj>>,
    /// Program-side map pointer -> map, for helpers (map pointers come from LD_IMM64
    /// and from map-in-map lookups).
    pub(crate) map_by_addr: RwLock<HashMap<u64, Weak<MapObj>>>,
    pub(crate) pins: Mutex<BTreeMap<String, Pinned>>,
    pub(crate) trace: TracePipe,
    pub(crate) ncpus: usize,
    pub(crate) helpers: RwLock<Arc<HelperTable>>,
    /// Ids of helpers registered by the embedder (the verifier checks them loosely).
    pub(crate) custom_helpers: RwLock<Vec<(u32, bpfvm_isa::helpers::Proto)>>,
    /// `net.core.bpf_jit_enable`: programs loaded while on are JIT-compiled.
    pub(crate) jit_enable: std::sync::atomic::AtomicBool,
    /// The routing tables `bpf_fib_lookup` reads (see `Runtime::set_fib`).
    pub(crate) fib: RwLock<Arc<crate::nethelpers::fib::Fib>>,
    /// `.kconfig` values for loads that give none ([`RuntimeConfig::kconfig`]).
    pub(crate) kconfig: Option<Arc<crate::kconfig::Kconfig>>,
    /// CO-RE target for loads that give none ([`RuntimeConfig::target_btf`]).
    pub(crate) target_btf: Option<crate::loader::TargetBtf>,
}

/// The runtime: the kernel's part, in-process. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Runtime {
    pub(crate) k: Arc<Kernel>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

/// `BPF_MAP_CREATE` attributes.
#[derive(Clone, Debug, Default)]
pub struct MapCreateAttr {
    /// `enum bpf_map_type`.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of elements.
    pub max_entries: u32,
    /// `BPF_F_*` map flags (`BPF_F_NO_PREALLOC`, `BPF_F_RDONLY_PROG`, ...).
    pub map_flags: u32,
    /// The map's name (at most 15 characters of `[A-Za-z0-9_.]`).
    pub name: String,
    /// NUMA node (accepted, not used).
    pub numa_node: u32,
    /// Template map for map-in-map types (the kernel's inner_map_fd).
    pub inner_map_id: Option<u32>,
    /// The BTF object describing key and value.
    pub btf_id: Option<u32>,
    /// The key's type id in that BTF.
    pub btf_key_type_id: u32,
    /// The value's type id in that BTF.
    pub btf_value_type_id: u32,
    /// `map_extra` (a bloom filter's number of hash functions).
    pub map_extra: u64,
    /// The creator lacks CAP_PERFMON: tail calls mixing this map with
    /// another at one call site are refused (`tail_call abusing map_ptr`).
    pub unprivileged: bool,
}

/// `BPF_PROG_LOAD` attributes. Map references in `insns` are LD_IMM64 with src
/// `BPF_PSEUDO_MAP_FD` (imm = map id) or `BPF_PSEUDO_MAP_VALUE` (imm = map id,
/// second imm = offset into the value), ids standing in for the kernel's fds.
#[derive(Clone, Debug, Default)]
pub struct ProgLoadAttr {
    /// `enum bpf_prog_type`.
    pub prog_type: ProgType,
    /// `enum bpf_attach_type` the program is loaded for (the kernel's 0,
    /// `BPF_CGROUP_INET_INGRESS`, when the type takes none).
    pub expected_attach_type: AttachType,
    /// The instructions.
    pub insns: Vec<Insn>,
    /// The license (`GPL` and compatible ones allow GPL-only helpers).
    pub license: String,
    /// The program's name (at most 15 characters of `[A-Za-z0-9_.]`).
    pub name: String,
    /// The BTF object `func_info` and `line_info` refer to.
    pub btf_id: Option<u32>,
    /// Function info: the BTF type of each subprogram.
    pub func_info: Vec<FuncInfo>,
    /// Line info: source lines by instruction.
    pub line_info: Vec<LineInfo>,
    /// Verifier log level (`log_level` of BPF_PROG_LOAD: 0, 1 or 2).
    pub log_level: u32,
    /// Apply the kernel's rules for loaders without CAP_BPF/CAP_PERFMON.
    pub unprivileged: bool,
    /// `BPF_F_STRICT_ALIGNMENT`, `BPF_F_ANY_ALIGNMENT`, `BPF_F_SLEEPABLE`, ...
    pub prog_flags: u32,
    /// A tracing or LSM program's context, typed by its attach target
    /// (the kernel's `attach_btf_id`), as the object loader resolved it.
    pub btf_ctx: Option<Arc<bpfvm_verifier::BtfCtx>>,
    /// The target kernel's types (the object loader's CO-RE target): loads
    /// through map pointers read the map type's kernel struct through them.
    /// `None`: `btf_ctx`'s, if any.
    pub kernel_types: Option<Arc<dyn bpfvm_verifier::KernelTypes>>,
    /// The kernel BTF that kfunc calls' and `BPF_PSEUDO_BTF_ID` immediates
    /// index, when they are not bpfvm's own ids: the object loader links
    /// kfuncs against its CO-RE target (by default the host's
    /// `/sys/kernel/btf/vmlinux`) as libbpf does, so the program's tag is the
    /// one that kernel gives. Each id is bound by name to the kfunc bpfvm
    /// implements, after the tag is taken (as the kernel binds ids to
    /// addresses after it). `None`: [`kernel_btf`](crate::kfuncs::kernel_btf)'s ids.
    pub vmlinux_btf: Option<Arc<bpfvm_obj::Btf>>,
    /// The kernel BTF the object loader relocated or typed the program
    /// against (its CO-RE target, when it used one): the layouts of the
    /// kernel structs the program reads through helpers' and kfuncs'
    /// pointers, as the kernel's own BTF gives them to its verifier (the
    /// sizes reads are bounded by, the stand-in task's fields). `None`: the
    /// program's own BTF.
    pub core_target: Option<Arc<bpfvm_obj::Btf>>,
}

/// The commands of the dispatcher, after `enum bpf_cmd`.
#[derive(Clone, Debug)]
pub enum BpfCmd {
    /// `BPF_MAP_CREATE`: replies [`BpfReply::Map`].
    MapCreate(MapCreateAttr),
    /// `BPF_MAP_LOOKUP_ELEM`: replies [`BpfReply::Bytes`] with the value.
    MapLookupElem {
        /// The map.
        map_id: u32,
        /// The key.
        key: Vec<u8>,
        /// `BPF_F_LOCK` or 0.
        flags: u64,
    },
    /// `BPF_MAP_UPDATE_ELEM`.
    MapUpdateElem {
        /// The map.
        map_id: u32,
        /// The key.
        key: Vec<u8>,
        /// The value (for prog_array and maps of maps, a 4-byte program or map id).
        value: Vec<u8>,
        /// `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`, `BPF_F_LOCK`.
        flags: u64,
    },
    /// `BPF_MAP_DELETE_ELEM`.
    MapDeleteElem {
        /// The map.
        map_id: u32,
        /// The key.
        key: Vec<u8>,
    },
    /// `BPF_MAP_GET_NEXT_KEY`: replies [`BpfReply::Bytes`] with the next key.
    MapGetNextKey {
        /// The map.
        map_id: u32,
        /// The key to start after; `None`: the first key.
        key: Option<Vec<u8>>,
    },
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (queues and stacks: pop).
    MapLookupAndDeleteElem {
        /// The map.
        map_id: u32,
        /// The key (`None` for queues and stacks).
        key: Option<Vec<u8>>,
        /// `BPF_F_LOCK` or 0.
        flags: u64,
    },
    /// `BPF_MAP_FREEZE`.
    MapFreeze {
        /// The map.
        map_id: u32,
    },
    /// A user-space producer's reservation of a `size`-byte sample in a
    /// `BPF_MAP_TYPE_USER_RINGBUF` (what libbpf's `user_ring_buffer__reserve`
    /// does in the mmap-ed ring; bpf(2) has no command for it): replies
    /// [`BpfReply::Sample`] with the sample's position. `E2BIG`: it can never
    /// fit; `ENOSPC`: not until programs drain more.
    UserRingbufReserve {
        /// The map.
        map_id: u32,
        /// The sample's size in bytes.
        size: u32,
    },
    /// Commits the sample reserved at `pos`, its first bytes set to `data`
    /// (libbpf's `user_ring_buffer__submit`, or `__discard` when `discard`).
    UserRingbufCommit {
        /// The map.
        map_id: u32,
        /// The position [`BpfCmd::UserRingbufReserve`] replied.
        pos: u64,
        /// The sample's bytes (at most its size).
        data: Vec<u8>,
        /// Discard the sample instead: drains skip it.
        discard: bool,
    },
    /// `BPF_PROG_LOAD`: replies [`BpfReply::Prog`].
    ProgLoad(ProgLoadAttr),
    /// `BPF_PROG_TEST_RUN`: replies [`BpfReply::TestRun`].
    ProgTestRun(crate::testrun::TestRunAttr),
    /// `BPF_OBJ_PIN`.
    ObjPin {
        /// The pin path.
        path: String,
        /// What to pin.
        kind: ObjKind,
        /// Its id.
        id: u32,
    },
    /// `BPF_OBJ_GET`: replies [`BpfReply::Pinned`].
    ObjGet {
        /// The pin path.
        path: String,
    },
    /// `BPF_PROG_GET_NEXT_ID`: replies [`BpfReply::Id`].
    ProgGetNextId {
        /// The id to start after (0: the first).
        start_id: u32,
    },
    /// `BPF_MAP_GET_NEXT_ID`: replies [`BpfReply::Id`].
    MapGetNextId {
        /// The id to start after (0: the first).
        start_id: u32,
    },
    /// `BPF_BTF_GET_NEXT_ID`: replies [`BpfReply::Id`].
    BtfGetNextId {
        /// The id to start after (0: the first).
        start_id: u32,
    },
    /// `BPF_PROG_GET_FD_BY_ID`: replies [`BpfReply::Prog`].
    ProgGetFdById {
        /// The program's id.
        id: u32,
    },
    /// `BPF_MAP_GET_FD_BY_ID`: replies [`BpfReply::Map`].
    MapGetFdById {
        /// The map's id.
        id: u32,
    },
    /// `BPF_OBJ_GET_INFO_BY_FD`: replies [`BpfReply::ProgInfo`], [`BpfReply::MapInfo`] or [`BpfReply::BtfInfo`].
    ObjGetInfoById {
        /// What the id names.
        kind: ObjKind,
        /// The id.
        id: u32,
    },
}

/// Replies of the dispatcher.
#[derive(Debug)]
pub enum BpfReply {
    /// Done, nothing to return.
    Ok,
    /// A new handle on a map.
    Map(MapFd),
    /// A new handle on a program.
    Prog(ProgFd),
    /// A value or key.
    Bytes(Vec<u8>),
    /// An id.
    Id(u32),
    /// The pinned object.
    Pinned(Pinned),
    /// The result of a test run.
    TestRun(crate::testrun::TestRunResult),
    /// A program's info.
    ProgInfo(crate::info::ProgInfo),
    /// A map's info.
    MapInfo(crate::info::MapInfo),
    /// A BTF object's info.
    BtfInfo(crate::info::BtfInfo),
    /// The position of a user ring buffer sample just reserved.
    Sample(u64),
}

impl Runtime {
    /// A runtime with the default configuration ([`RuntimeConfig::new`]).
    pub fn new() -> Runtime {
        Runtime::with_config(RuntimeConfig::new())
    }

    /// A runtime that simulates `ncpus` CPUs (per-CPU maps hold that many
    /// values), otherwise configured by default.
    pub fn with_cpus(ncpus: usize) -> Runtime {
        Runtime::with_config(RuntimeConfig::new().cpus(ncpus))
    }

    /// A runtime set up as `cfg` says.
    pub fn with_config(cfg: RuntimeConfig) -> Runtime {
        let ncpus = cfg.cpus.max(1);
        let helpers = cfg.helpers;
        let rt = Runtime {
            k: Arc::new(Kernel {
                maps: Mutex::new(Idr::new()),
                progs: Mutex::new(Idr::new()),
                btfs: Mutex::new(Idr::new()),
                map_by_addr: RwLock::new(HashMap::new()),
                pins: Mutex::new(BTreeMap::new()),
                trace: TracePipe::default(),
                ncpus,
                helpers: RwLock::new(Arc::new(crate::kfuncs::with_kfuncs(
                    crate::helpers::kernel_helpers(),
                ))),
                custom_helpers: RwLock::new(Vec::new()),
                jit_enable: std::sync::atomic::AtomicBool::new(cfg.jit),
                fib: RwLock::new(Arc::default()),
                kconfig: cfg.kconfig,
                target_btf: cfg.target_btf,
            }),
        };
        for h in helpers {
            rt.register_helper(h.id, h.name, h.proto, crate::config::SharedHelper(h.helper));
        }
        rt
    }

    /// The number of simulated CPUs.
    pub fn ncpus(&self) -> usize {
        self.k.ncpus
    }

    /// Turns the JIT on or off for programs loaded afterwards (the kernel's
    /// `bpf_jit_enable`; it starts as [`RuntimeConfig::jit`] says).
    pub fn set_jit(&self, on: bool) {
        self.k.jit_enable.store(on, Ordering::Relaxed);
    }

    /// Whether programs loaded now are JIT-compiled.
    pub fn jit_enabled(&self) -> bool {
        self.k.jit_enable.load(Ordering::Relaxed)
    }

    /// The trace pipe bpf_trace_printk writes to.
    pub fn trace_pipe(&self) -> &TracePipe {
        &self.k.trace
    }

    /// Registers (or replaces) a helper available to programs loaded afterwards.
    /// The verifier checks every call of it against `proto` (what each argument
    /// register must hold, what R0 holds after it), as it checks the kernel's
    /// helpers against theirs; any program type may call it.
    pub fn register_helper(
        &self,
        id: u32,
        name: &'static str,
        proto: bpfvm_isa::helpers::Proto,
        helper: impl bpfvm_vm::Helper + 'static,
    ) {
        let mut h = self.k.helpers.write().unwrap_or_else(|e| e.into_inner());
        let mut t = (**h).clone();
        t.register(id, name, helper);
        *h = Arc::new(t);
        let mut custom = self
            .k
            .custom_helpers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        custom.retain(|(x, _)| *x != id);
        custom.push((id, proto));
    }

    /// The one command dispatcher.
    pub fn bpf(&self, cmd: BpfCmd) -> Result<BpfReply> {
        match cmd {
            BpfCmd::MapCreate(attr) => self.map_create(&attr).map(BpfReply::Map),
            BpfCmd::MapLookupElem { map_id, key, flags } => {
                let m = self.map_by_id(map_id)?;
                let mut out = vec![0u8; m.ops.user_value_size()];
                m.ops.lookup_user(&key, &mut out, flags)?;
                m.clear_kptrs(&mut out);
                Ok(BpfReply::Bytes(out))
            }
            BpfCmd::MapUpdateElem {
                map_id,
                key,
                value,
                flags,
            } => {
                let m = self.map_by_id(map_id)?;
                self.map_update(&m, &key, &value, flags)?;
                Ok(BpfReply::Ok)
            }
            BpfCmd::MapDeleteElem { map_id, key } => {
                let m = self.map_by_id(map_id)?;
                let percpu = m.attr().map_type.is_percpu();
                let held = m.held_kptrs(&key, 0..if percpu { self.k.ncpus } else { 1 });
                m.ops.delete_user(&key)?;
                MapObj::release_kptrs(held);
                Ok(BpfReply::Ok)
            }
            BpfCmd::MapGetNextKey { map_id, key } => {
                let m = self.map_by_id(map_id)?;
                let mut next = vec![0u8; m.attr().key_size as usize];
                m.ops.get_next_key(key.as_deref(), &mut next)?;
                Ok(BpfReply::Bytes(next))
            }
            BpfCmd::MapLookupAndDeleteElem { map_id, key, flags } => {
                let m = self.map_by_id(map_id)?;
                let mut out = vec![0u8; m.ops.user_value_size()];
                m.ops.lookup_and_delete(key.as_deref(), &mut out, flags)?;
                Ok(BpfReply::Bytes(out))
            }
            BpfCmd::MapFreeze { map_id } => {
                self.map_by_id(map_id)?.ops.freeze()?;
                Ok(BpfReply::Ok)
            }
            BpfCmd::UserRingbufReserve { map_id, size } => {
                let m = self.map_by_id(map_id)?;
                Ok(BpfReply::Sample(user_ringbuf(&m)?.reserve(size)?))
            }
            BpfCmd::UserRingbufCommit {
                map_id,
                pos,
                data,
                discard,
            } => {
                let m = self.map_by_id(map_id)?;
                user_ringbuf(&m)?.commit(pos, &data, discard)?;
                Ok(BpfReply::Ok)
            }
            BpfCmd::ProgLoad(attr) => self.prog_load(attr).map(BpfReply::Prog),
            BpfCmd::ProgTestRun(attr) => {
                let p = self.prog_by_id(attr.prog_id)?;
                crate::testrun::test_run(self, &p, &attr).map(BpfReply::TestRun)
            }
            BpfCmd::ObjPin { path, kind, id } => {
                let obj = match kind {
                    ObjKind::Prog => Pinned::Prog(ProgFd(self.prog_by_id(id)?)),
                    ObjKind::Map => Pinned::Map(MapFd::new(self.map_by_id(id)?)),
                    ObjKind::Btf => {
                        return Err(BpfError::NotSupported {
                            what: "pinning BTF".into(),
                        })
                    }
                };
                self.pin(&path, obj)?;
                Ok(BpfReply::Ok)
            }
            BpfCmd::ObjGet { path } => self.pinned(&path).map(BpfReply::Pinned),
            BpfCmd::ProgGetNextId { start_id } => lock(&self.k.progs)
                .next_after(start_id)
                .map(|(id, _)| BpfReply::Id(id))
                .ok_or(BpfError::NoSuchObject {
                    kind: "next program",
                    id: start_id,
                }),
            BpfCmd::MapGetNextId { start_id } => lock(&self.k.maps)
                .next_after(start_id)
                .map(|(id, _)| BpfReply::Id(id))
                .ok_or(BpfError::NoSuchObject {
                    kind: "next map",
                    id: start_id,
                }),
            BpfCmd::BtfGetNextId { start_id } => lock(&self.k.btfs)
                .next_after(start_id)
                .map(|(id, _)| BpfReply::Id(id))
                .ok_or(BpfError::NoSuchObject {
                    kind: "next btf",
                    id: start_id,
                }),
            BpfCmd::ProgGetFdById { id } => Ok(BpfReply::Prog(ProgFd(self.prog_by_id(id)?))),
            BpfCmd::MapGetFdById { id } => Ok(BpfReply::Map(MapFd::new(self.map_by_id(id)?))),
            BpfCmd::ObjGetInfoById { kind, id } => match kind {
                ObjKind::Prog => Ok(BpfReply::ProgInfo(crate::info::prog_info(
                    &*self.prog_by_id(id)?,
                ))),
                ObjKind::Map => Ok(BpfReply::MapInfo(crate::info::map_info(
                    &*self.map_by_id(id)?,
                ))),
                ObjKind::Btf => Ok(BpfReply::BtfInfo(crate::info::btf_info(
                    &*self.btf_by_id(id)?,
                ))),
            },
        }
    }

    /// The live map with this id.
    pub fn map_by_id(&self, id: u32) -> Result<Arc<MapObj>> {
        lock(&self.k.maps)
            .get(id)
            .ok_or(BpfError::NoSuchObject { kind: "map", id })
    }

    /// The live program with this id.
    pub fn prog_by_id(&self, id: u32) -> Result<Arc<ProgObj>> {
        lock(&self.k.progs).get(id).ok_or(BpfError::NoSuchObject {
            kind: "program",
            id,
        })
    }

    /// The live BTF object with this id.
    pub fn btf_by_id(&self, id: u32) -> Result<Arc<BtfObj>> {
        lock(&self.k.btfs)
            .get(id)
            .ok_or(BpfError::NoSuchObject { kind: "btf", id })
    }

    /// Every live program, by id.
    pub fn progs(&self) -> Vec<Arc<ProgObj>> {
        let t = lock(&self.k.progs);
        let mut out = Vec::new();
        let mut id = 0;
        while let Some((next, p)) = t.next_after(id) {
            out.push(p);
            id = next;
        }
        out
    }

    /// Every live map, by id.
    pub fn maps(&self) -> Vec<Arc<MapObj>> {
        let t = lock(&self.k.maps);
        let mut out = Vec::new();
        let mut id = 0;
        while let Some((next, m)) = t.next_after(id) {
            out.push(m);
            id = next;
        }
        out
    }

    /// Resolves a program-side map pointer.
    pub(crate) fn map_by_addr(&self, addr: u64) -> Option<Arc<MapObj>> {
        self.k
            .map_by_addr
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&addr)
            .and_then(Weak::upgrade)
    }

    /// `BPF_BTF_LOAD`: a raw BTF blob (types and strings), for programs
    /// loaded with `btf_id` and `func_info`. The object lives while the
    /// returned handle or a program using it does.
    pub fn btf_load(&self, bytes: &[u8], name: &str) -> Result<Arc<BtfObj>> {
        let btf = bpfvm_obj::btf::Btf::parse(bytes)
            .map_err(|e| BpfError::Invalid(format!("BTF: {e}")))?;
        self.load_btf(btf, bytes.len(), name)
    }

    pub(crate) fn load_btf(
        &self,
        btf: bpfvm_obj::btf::Btf,
        size: usize,
        name: &str,
    ) -> Result<Arc<BtfObj>> {
        let mut t = lock(&self.k.btfs);
        let id = t.alloc().ok_or(BpfError::NoIds { kind: "btf" })?;
        let b = Arc::new(BtfObj {
            id,
            btf,
            size,
            name: name.to_string(),
        });
        t.set(id, &b);
        Ok(b)
    }

    fn map_create(&self, a: &MapCreateAttr) -> Result<MapFd> {
        let map_type = a.map_type;
        let inner = match a.inner_map_id {
            Some(id) => Some(self.map_by_id(id)?.ops.clone()),
            None => None,
        };
        let btf = match a.btf_id {
            Some(id) => Some(self.btf_by_id(id)?),
            None => None,
        };
        let spin_lock_off = btf
            .as_ref()
            .and_then(|b| crate::loader::spin_lock_offset(&b.btf, a.btf_value_type_id));
        let attr = MapAttr {
            map_type,
            key_size: a.key_size,
            value_size: a.value_size,
            max_entries: a.max_entries,
            map_flags: a.map_flags,
            name: a.name.clone(),
            numa_node: a.numa_node,
            inner,
            btf_key_type_id: a.btf_key_type_id,
            btf_value_type_id: a.btf_value_type_id,
            spin_lock_off,
            map_extra: a.map_extra,
            kernel_image: Some(bpfvm_maps::KernelImage::new()),
        };
        let ops = bpfvm_maps::create_map(&attr, self.k.ncpus)?;
        let mut kptrs: Vec<bpfvm_verifier::KptrField> = btf
            .as_ref()
            .map(|b| crate::loader::kptr_fields(&b.btf, a.btf_value_type_id))
            .unwrap_or_default();
        kptrs.retain(|f| f.off + 8 <= a.value_size);
        const BTF_FIELDS_MAX: usize = 11;
        let timer = btf
            .as_ref()
            .and_then(|b| crate::loader::timer_offset(&b.btf, a.btf_value_type_id));
        let fields_overflow =
            kptrs.len() + usize::from(spin_lock_off.is_some()) + usize::from(timer.is_some())
                > BTF_FIELDS_MAX;
        if fields_overflow {
            kptrs.clear();
        }
        let mut t = lock(&self.k.maps);
        let id = t.alloc().ok_or(BpfError::NoIds { kind: "map" })?;
        let m = Arc::new(MapObj {
            id,
            ops,
            name: a.name.clone(),
            btf,
            btf_key_type_id: a.btf_key_type_id,
            btf_value_type_id: a.btf_value_type_id,
            created_unprivileged: a.unprivileged,
            kptrs,
            fields_overflow,
            user_refs: AtomicUsize::new(0),
        });
        t.set(id, &m);
        drop(t);
        let mut by_addr = self
            .k
            .map_by_addr
            .write()
            .unwrap_or_else(|e| e.into_inner());
        by_addr.retain(|_, w| w.strong_count() > 0);
        by_addr.insert(m.prog_addr(), Arc::downgrade(&m));
        Ok(MapFd::new(m))
    }

    /// User-space update: fd-holding maps (prog_array, map-in-map) take an id.
    pub(crate) fn map_update(
        &self,
        m: &MapObj,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<()> {
        match m.map_type() {
            MapType::ProgArray | MapType::ArrayOfMaps | MapType::HashOfMaps => {
                let id = u32::from_le_bytes(
                    value
                        .get(..4)
                        .and_then(|v| v.try_into().ok())
                        .ok_or_else(|| BpfError::Invalid("value must be a 4-byte id".into()))?,
                );
                let obj = if m.map_type() == MapType::ProgArray {
                    let p = self.prog_by_id(id)?;
                    bpfvm_maps::FdObject::Prog(p)
                } else {
                    bpfvm_maps::FdObject::Map(self.map_by_id(id)?.ops.clone())
                };
                m.ops.update_fd(key, id, obj, flags)?;
            }
            _ if !m.kptrs.is_empty() => {
                let mut v = value.to_vec();
                m.clear_kptrs(&mut v);
                let percpu = m.attr().map_type.is_percpu();
                let held = m.held_kptrs(key, 0..if percpu { self.k.ncpus } else { 1 });
                m.ops.update_user(key, &v, flags)?;
                MapObj::release_kptrs(held);
            }
            _ => m.ops.update_user(key, value, flags)?,
        }
        Ok(())
    }

    /// Creates a map (`BPF_MAP_CREATE`).
    pub fn create_map(&self, attr: &MapCreateAttr) -> Result<MapFd> {
        self.map_create(attr)
    }

    /// Loads a program from instructions (`BPF_PROG_LOAD`).
    pub fn load_program(&self, attr: ProgLoadAttr) -> Result<ProgFd> {
        self.prog_load(attr)
    }

    fn prog_load(&self, a: ProgLoadAttr) -> Result<ProgFd> {
        crate::prog::load(self, a)
    }

    pub(crate) fn register_prog(
        &self,
        build: impl FnOnce(u32) -> Result<ProgObj>,
    ) -> Result<ProgFd> {
        let id = lock(&self.k.progs)
            .alloc()
            .ok_or(BpfError::NoIds { kind: "program" })?;
        match build(id) {
            Ok(p) => {
                let p = Arc::new(p);
                lock(&self.k.progs).set(id, &p);
                Ok(ProgFd(p))
            }
            Err(e) => {
                lock(&self.k.progs).release(id);
                Err(e)
            }
        }
    }

    /// Pins an object at `path` (`BPF_OBJ_PIN`).
    pub fn pin(&self, path: &str, obj: Pinned) -> Result<()> {
        let path = normalize_pin_path(path)?;
        let mut pins = lock(&self.k.pins);
        if pins.contains_key(&path) {
            return Err(BpfError::Pin {
                path,
                reason: "file exists",
            });
        }
        pins.insert(path, obj);
        Ok(())
    }

    /// The object pinned at `path` (`BPF_OBJ_GET`).
    pub fn pinned(&self, path: &str) -> Result<Pinned> {
        let path = normalize_pin_path(path)?;
        lock(&self.k.pins).get(&path).cloned().ok_or(BpfError::Pin {
            path,
            reason: "no such file or directory",
        })
    }

    /// Removes a pin (`rm /sys/fs/bpf/...`). The object goes if nothing else holds it.
    pub fn unpin(&self, path: &str) -> Result<Pinned> {
        let path = normalize_pin_path(path)?;
        lock(&self.k.pins).remove(&path).ok_or(BpfError::Pin {
            path,
            reason: "no such file or directory",
        })
    }

    /// All pins, by path.
    pub fn pins(&self) -> Vec<(String, Pinned)> {
        lock(&self.k.pins)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Pin paths are absolute, without `.`/`..` components or empty names.
fn normalize_pin_path(path: &str) -> Result<String> {
    if !path.starts_with('/') {
        return Err(BpfError::Pin {
            path: path.into(),
            reason: "pin paths must be absolute",
        });
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(BpfError::Pin {
            path: path.into(),
            reason: "invalid pin path",
        });
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Conveniences over the dispatcher for library users.
impl Runtime {
    /// Runs a packet program (XDP, socket filter, tc) once on `data`.
    pub fn run_packet(&self, prog: &ProgFd, data: &[u8]) -> Result<crate::TestRunResult> {
        self.test_run_attr(crate::TestRunAttr {
            prog_id: prog.id(),
            data_in: data.to_vec(),
            repeat: 1,
            ..Default::default()
        })
    }

    /// Runs a context program (raw tracepoint, syscall) once on `ctx`.
    pub fn run_context(&self, prog: &ProgFd, ctx: &[u8]) -> Result<crate::TestRunResult> {
        self.test_run_attr(crate::TestRunAttr {
            prog_id: prog.id(),
            ctx_in: Some(ctx.to_vec()),
            repeat: 1,
            ..Default::default()
        })
    }

    fn test_run_attr(&self, attr: crate::TestRunAttr) -> Result<crate::TestRunResult> {
        match self.bpf(BpfCmd::ProgTestRun(attr))? {
            BpfReply::TestRun(r) => Ok(r),
            other => Err(BpfError::Invalid(format!("unexpected reply {other:?}"))),
        }
    }

    /// `BPF_MAP_LOOKUP_ELEM` (per-CPU maps: every CPU's value, each padded to 8 bytes).
    pub fn map_lookup(&self, map: &MapFd, key: &[u8]) -> Result<Vec<u8>> {
        match self.bpf(BpfCmd::MapLookupElem {
            map_id: map.id(),
            key: key.to_vec(),
            flags: 0,
        })? {
            BpfReply::Bytes(v) => Ok(v),
            other => Err(BpfError::Invalid(format!("unexpected reply {other:?}"))),
        }
    }

    /// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST`/`BPF_F_LOCK` flags.
    pub fn map_update_elem(&self, map: &MapFd, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
        self.bpf(BpfCmd::MapUpdateElem {
            map_id: map.id(),
            key: key.to_vec(),
            value: value.to_vec(),
            flags,
        })
        .map(|_| ())
    }
}

/// The user ring buffer `m` is, or `EINVAL` (as libbpf's
/// `user_ring_buffer__new` answers for another map type).
fn user_ringbuf(m: &MapObj) -> Result<&bpfvm_maps::UserRingBuf> {
    m.ops
        .as_any()
        .downcast_ref::<bpfvm_maps::UserRingBuf>()
        .ok_or_else(|| {
            BpfError::Map(bpfvm_maps::MapError::Invalid {
                map: m.ops.label(),
                reason: "not a user_ringbuf map".into(),
            })
        })
}
