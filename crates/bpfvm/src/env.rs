//! What one program run carries besides the VM's registers: the runtime (for maps
//! and the trace pipe), the simulated CPU, the XDP buffer the adjust helpers move,
//! the redirect target a program chose, and ring buffer records it has reserved.

use crate::kernel::{MapObj, Runtime};
use bpfvm_maps::ValueRegion;
use bpfvm_vm::MemoryOracle;
use std::sync::Arc;

/// `struct xdp_md` as user space and programs see it (six u32 fields).
#[doc(alias = "xdp_md")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpMd {
    /// Offset of the packet's first byte.
    pub data: u32,
    /// Offset just past the packet's last byte.
    pub data_end: u32,
    /// Offset of the metadata in front of the packet (equal to `data` when there is none).
    pub data_meta: u32,
    /// The interface the packet arrived on.
    pub ingress_ifindex: u32,
    /// The receive queue it arrived on.
    pub rx_queue_index: u32,
    /// The interface a devmap program sends it to (0 elsewhere).
    pub egress_ifindex: u32,
}

/// The XDP buffer of a run: `hard_start .. frame_end` is the whole frame memory;
/// the packet and metadata pointers live in the `xdp_md` the program reads.
pub struct XdpState {
    pub ctx: *mut XdpMd,
    pub hard_start: u64,
    /// End of the memory the packet may grow into (frame size minus the kernel's
    /// skb_shared_info tailroom).
    pub frame_end: u64,
}

/// Where `bpf_redirect` / `bpf_redirect_map` sent the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `bpf_redirect(ifindex, flags)`.
    Ifindex {
        /// The target interface.
        ifindex: u32,
        /// The helper's flags (`BPF_F_INGRESS`).
        flags: u64,
    },
    /// `bpf_redirect_map(map, key, flags)`.
    Map {
        /// The devmap, cpumap or xskmap.
        map_id: u32,
        /// The key in it.
        key: u32,
        /// The interface the devmap entry names, when it names one.
        ifindex: Option<u32>,
    },
}

pub struct RunEnv {
    pub rt: Runtime,
    pub cpu: u32,
    pub xdp: Option<XdpState>,
    /// The sk_buff of an skb test run, which the packet-changing helpers
    /// (`bpf_skb_change_tail`, `bpf_skb_vlan_push`, ...) grow and move.
    pub skb: Option<crate::nethelpers::SkbState>,
    pub redirect: Option<Redirect>,
    /// Ring buffer records reserved and not yet submitted or discarded.
    pub reservations: Vec<(u64, Arc<MapObj>)>,
    pub comm: [u8; 16],
    pub pid: u32,
    pub tgid: u32,
    /// Value memory of the maps the program uses (checked mode).
    pub value_regions: Vec<ValueRegion>,
    /// The program's maps by their program-side address, so helpers resolve them
    /// without the runtime-wide table.
    pub maps: Vec<(u64, Arc<MapObj>)>,
    /// The context flags column of trace pipe lines this run writes.
    pub trace_flags: crate::printk::TraceFlags,
    /// Spin locks (`struct bpf_spin_lock` words) taken and not yet released:
    /// a run that stops holding one (a fault, out of fuel) must not leave it
    /// held for the next.
    pub locks: Vec<u64>,
    /// Storage `bpf_get_local_storage` gave this run, by map address (a
    /// test run gets storage of its own, zeroed, as in the kernel).
    pub local_storage: Vec<(u64, Box<[u64]>)>,
    /// Where the program expects `task_struct`'s fields (`task.rs`).
    pub task_layout: Option<crate::task::TaskLayout>,
    /// The stand-in task `bpf_get_current_task(_btf)` gave this run.
    pub task: Option<Box<[u64]>>,
}

impl Drop for RunEnv {
    fn drop(&mut self) {
        for &addr in &self.locks {
            // SAFETY: the address was a 4-byte aligned lock word inside a map
            // value when it was taken, and the program's maps outlive the run.
            unsafe { &*(addr as *const std::sync::atomic::AtomicU32) }
                .store(0, std::sync::atomic::Ordering::Release);
        }
    }
}

impl RunEnv {
    pub fn new(rt: &Runtime, prog: &crate::kernel::ProgObj, cpu: u32) -> RunEnv {
        let (comm, pid) = thread_identity();
        RunEnv {
            rt: rt.clone(),
            cpu,
            xdp: None,
            skb: None,
            redirect: None,
            reservations: Vec::new(),
            comm,
            pid,
            tgid: std::process::id(),
            value_regions: prog
                .used_maps
                .iter()
                .flat_map(|m| {
                    // Map images only for a program that reads them: every
                    // checked access scans this list.
                    let image = m.kernel_region().filter(|_| prog.reads_map_structs);
                    m.ops.value_regions().into_iter().chain(image)
                })
                .collect(),
            maps: prog
                .used_maps
                .iter()
                .map(|m| (m.prog_addr(), m.clone()))
                .collect(),
            trace_flags: crate::printk::TraceFlags::PROG_TEST_RUN,
            locks: Vec::new(),
            local_storage: Vec::new(),
            task_layout: prog.task_layout,
            task: None,
        }
    }
}

/// The calling thread's comm and thread id, read once per thread (a run happens
/// per packet on the datapath; /proc is too slow for that).
fn thread_identity() -> ([u8; 16], u32) {
    thread_local!(static ID: ([u8; 16], u32) = {
        let mut comm = [0u8; 16];
        let name = std::fs::read_to_string("/proc/thread-self/comm")
            .map(|s| s.trim_end().to_string())
            .unwrap_or_else(|_| "bpfvm".into());
        let n = name.len().min(15);
        comm[..n].copy_from_slice(&name.as_bytes()[..n]);
        // SAFETY: gettid has no preconditions.
        (comm, unsafe { libc::gettid() } as u32)
    });
    ID.with(|id| *id)
}

/// Checked-mode oracle for map value memory: the program's maps first, then every
/// map of the runtime (inner maps reached through map-in-map lookups).
pub struct MapMemory<'a> {
    pub regions: &'a [ValueRegion],
    pub rt: &'a Runtime,
}

fn region_allows(r: &ValueRegion, addr: u64, len: usize, write: bool) -> bool {
    r.contains(addr as usize, len) && (!write || r.writable_by_prog)
}

impl MemoryOracle for MapMemory<'_> {
    fn check(&self, addr: u64, len: usize, write: bool) -> bool {
        if self
            .regions
            .iter()
            .any(|r| region_allows(r, addr, len, write))
        {
            return true;
        }
        self.rt
            .maps()
            .iter()
            .flat_map(|m| m.ops.value_regions().into_iter().chain(m.kernel_region()))
            .any(|r| region_allows(&r, addr, len, write))
    }
}
