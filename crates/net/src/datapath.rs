//! XDP on live interfaces: `net attach xdp PROG dev IFACE`.
//!
//! Each attachment owns a thread that reads the interface's incoming frames from an
//! AF_PACKET receive ring, runs the program on each ([`crate::xdp::run_xdp`]) and
//! acts on the verdict: `XDP_TX` sends the frame, as the program left it, back out
//! of the same interface; `XDP_REDIRECT` sends it out of the interface
//! `bpf_redirect` named or the devmap slot `bpf_redirect_map` chose; `XDP_PASS`,
//! `XDP_DROP` and `XDP_ABORTED` are counted.
//!
//! The mode is reported as [`ATTACH_MODE`] = `"generic"`, the name `bpftool net
//! list` gives the kernel's generic (skb) XDP hook, which this resembles most: the
//! program sees frames after the driver has built socket buffers, and works on any
//! interface. Unlike the kernel's hook it cannot take frames away from the host:
//! an AF_PACKET socket receives a *copy*, so the host network stack still gets
//! every frame whatever the verdict, and `XDP_DROP` only counts. `XDP_TX` and
//! `XDP_REDIRECT` add a transmission; the original still reaches the host too.
//! Needs CAP_NET_RAW (AF_PACKET sockets).

use crate::frame::{complete_l4_checksum, insert_vlan};
use crate::packet::{
    wait, EventFd, RxRing, SetupError, TxSocket, PACKET_OUTGOING, TP_STATUS_CSUMNOTREADY,
    TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID,
};
use crate::xdp::{run_xdp, XdpAction, XdpCounters, XdpStats, ETH_HLEN, XDP_MAX_FRAME};
use bpfvm::{AttachType, ProgFd, ProgType, Redirect, Runtime};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The mode `list()` reports, as `bpftool net list` names the generic XDP hook.
pub const ATTACH_MODE: &str = "generic";

/// How long the datapath thread sleeps in poll() at most; detach also wakes it
/// through an eventfd, so this only bounds how stale `ring_drops` can get.
const POLL_MS: i32 = 200;

/// Why an attach or detach failed. Every variant names the interface.
#[derive(Debug, Error)]
pub enum NetError {
    #[error("interface '{ifname}': invalid name: {reason}")]
    BadName {
        ifname: String,
        reason: &'static str,
    },
    #[error("interface '{ifname}': no such device")]
    NoDevice { ifname: String },
    #[error("interface '{ifname}': permission denied: AF_PACKET sockets need CAP_NET_RAW ({op})")]
    Permission {
        ifname: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("interface '{ifname}': {op} failed")]
    Socket {
        ifname: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("interface '{ifname}' already has xdp program id {prog_id} attached; use overwrite to replace it")]
    Busy { ifname: String, prog_id: u32 },
    #[error("interface '{ifname}' has no xdp program attached")]
    NotAttached { ifname: String },
    #[error("interface '{ifname}': program id {prog_id} has type {prog_type}, not xdp")]
    NotXdp {
        ifname: String,
        prog_id: u32,
        prog_type: u32,
    },
    #[error("interface '{ifname}': program id {prog_id} is for devmap/cpumap entries (expected_attach_type {attach_type}) and cannot attach to a device")]
    WrongAttachType {
        ifname: String,
        prog_id: u32,
        attach_type: u32,
    },
    #[error("interface '{ifname}': starting the datapath thread failed")]
    Thread {
        ifname: String,
        #[source]
        source: io::Error,
    },
}

impl NetError {
    fn setup(ifname: &str, e: SetupError) -> NetError {
        let ifname = ifname.to_string();
        match e.source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => NetError::Permission {
                ifname,
                op: e.op,
                source: e.source,
            },
            Some(libc::ENODEV) | Some(libc::ENXIO) => NetError::NoDevice { ifname },
            _ => NetError::Socket {
                ifname,
                op: e.op,
                source: e.source,
            },
        }
    }

    /// The errno the kernel's netlink/bpf path would return for this failure.
    pub fn errno(&self) -> i32 {
        match self {
            NetError::BadName { .. } => libc::EINVAL,
            NetError::NoDevice { .. } => libc::ENODEV,
            NetError::Permission { .. } => libc::EPERM,
            NetError::Socket { source, .. } | NetError::Thread { source, .. } => {
                source.raw_os_error().unwrap_or(libc::EIO)
            }
            NetError::Busy { .. } => libc::EBUSY,
            NetError::NotAttached { .. } => libc::ENOENT,
            NetError::NotXdp { .. } | NetError::WrongAttachType { .. } => libc::EINVAL,
        }
    }
}

/// What a successful attach did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachInfo {
    pub ifname: String,
    pub ifindex: u32,
    pub prog_id: u32,
    /// Always [`ATTACH_MODE`].
    pub mode: &'static str,
    /// The program an `overwrite` attach replaced.
    pub replaced: Option<u32>,
}

/// One attached interface, as `net list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub ifname: String,
    pub ifindex: u32,
    pub prog_id: u32,
    /// Always [`ATTACH_MODE`].
    pub mode: &'static str,
    /// Counters since the program was attached (an overwrite starts them afresh).
    pub stats: XdpStats,
    /// Set when the datapath thread has stopped on its own (the interface went
    /// away): why. Such an attachment is gone from the next `list()`.
    pub stopped: Option<String>,
}

/// The program and counters the thread uses; swapped whole by an overwrite.
struct Current {
    prog: ProgFd,
    counters: Arc<XdpCounters>,
}

struct Shared {
    current: RwLock<Current>,
    stop: AtomicBool,
    stopped: Mutex<Option<String>>,
}

struct Slot {
    ifindex: u32,
    shared: Arc<Shared>,
    wake: Arc<EventFd>,
    worker: Option<JoinHandle<()>>,
}

impl Slot {
    fn snapshot(&self, ifname: &str) -> Attachment {
        let cur = self
            .shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner());
        Attachment {
            ifname: ifname.to_string(),
            ifindex: self.ifindex,
            prog_id: cur.prog.id(),
            mode: ATTACH_MODE,
            stats: cur.counters.snapshot(),
            stopped: self
                .shared
                .stopped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// The thread is serving frames (it has not stopped on its own).
    fn is_running(&self) -> bool {
        self.worker.as_ref().is_some_and(|w| !w.is_finished())
            && self
                .shared
                .stopped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
    }

    /// Stops the thread and waits for it; the program reference goes with `self`.
    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.wake.signal();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Joining also guarantees the thread's program reference is gone.
        self.stop();
    }
}

/// The XDP hooks of live interfaces. Shared and thread-safe; dropping it detaches
/// everything.
pub struct Datapath {
    rt: Runtime,
    slots: Mutex<BTreeMap<String, Slot>>,
}

fn check_name(ifname: &str) -> Result<CString, NetError> {
    let bad = |reason| NetError::BadName {
        ifname: ifname.to_string(),
        reason,
    };
    if ifname.is_empty() {
        return Err(bad("empty"));
    }
    if ifname.len() >= libc::IFNAMSIZ {
        return Err(bad("longer than 15 bytes"));
    }
    if ifname.contains(['/', ':']) || ifname.chars().any(|c| c.is_whitespace() || c == '\0') {
        return Err(bad("contains '/', ':', whitespace or NUL"));
    }
    CString::new(ifname).map_err(|_| bad("contains NUL"))
}

/// The interface's index in the calling thread's network namespace.
pub fn ifindex_of(ifname: &str) -> Result<u32, NetError> {
    let c = check_name(ifname)?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(NetError::NoDevice {
            ifname: ifname.to_string(),
        });
    }
    Ok(idx)
}

impl Datapath {
    pub fn new(rt: Runtime) -> Datapath {
        Datapath {
            rt,
            slots: Mutex::new(BTreeMap::new()),
        }
    }

    /// Attaches `prog` to the XDP hook of `ifname` (in the calling thread's network
    /// namespace). Fails if the interface already has a program, unless
    /// `overwrite`; then the new program takes over the running thread between two
    /// frames, with fresh counters.
    #[doc(alias = "XDP_FLAGS_SKB_MODE")]
    pub fn attach(
        &self,
        ifname: &str,
        prog: ProgFd,
        overwrite: bool,
    ) -> Result<AttachInfo, NetError> {
        let ifindex = ifindex_of(ifname)?;
        let o = prog.obj();
        if o.prog_type != ProgType::Xdp.as_u32() {
            return Err(NetError::NotXdp {
                ifname: ifname.into(),
                prog_id: o.id,
                prog_type: o.prog_type,
            });
        }
        // Programs for devmap and cpumap entries: the kernel refuses to attach
        // them to a device.
        if matches!(
            AttachType::from_u32(o.expected_attach_type),
            Some(AttachType::XdpDevmap | AttachType::XdpCpumap)
        ) {
            return Err(NetError::WrongAttachType {
                ifname: ifname.into(),
                prog_id: o.id,
                attach_type: o.expected_attach_type,
            });
        }
        let prog_id = prog.id();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(ifname) {
            if slot.is_running() && slot.ifindex == ifindex {
                let mut cur = slot
                    .shared
                    .current
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                if !overwrite {
                    return Err(NetError::Busy {
                        ifname: ifname.into(),
                        prog_id: cur.prog.id(),
                    });
                }
                let old = std::mem::replace(
                    &mut *cur,
                    Current {
                        prog,
                        counters: Arc::default(),
                    },
                );
                return Ok(AttachInfo {
                    ifname: ifname.into(),
                    ifindex,
                    prog_id,
                    mode: ATTACH_MODE,
                    replaced: Some(old.prog.id()),
                });
            }
        }
        // A stale slot (thread gone, or the name now means another device) goes.
        if let Some(mut old) = slots.remove(ifname) {
            old.stop();
        }
        let ring = RxRing::open(ifindex).map_err(|e| NetError::setup(ifname, e))?;
        let tx = TxSocket::open().map_err(|e| NetError::setup(ifname, e))?;
        let wake = Arc::new(EventFd::new().map_err(|source| NetError::Socket {
            ifname: ifname.into(),
            op: "eventfd",
            source,
        })?);
        let shared = Arc::new(Shared {
            current: RwLock::new(Current {
                prog,
                counters: Arc::default(),
            }),
            stop: AtomicBool::new(false),
            stopped: Mutex::new(None),
        });
        let worker = Worker {
            rt: self.rt.clone(),
            ifname: ifname.to_string(),
            ifindex,
            ring,
            tx,
            wake: wake.clone(),
            shared: shared.clone(),
            last_error: None,
        };
        let handle = std::thread::Builder::new()
            .name(format!("xdp-{ifname}"))
            .spawn(move || worker.run())
            .map_err(|source| NetError::Thread {
                ifname: ifname.into(),
                source,
            })?;
        slots.insert(
            ifname.to_string(),
            Slot {
                ifindex,
                shared,
                wake,
                worker: Some(handle),
            },
        );
        Ok(AttachInfo {
            ifname: ifname.into(),
            ifindex,
            prog_id,
            mode: ATTACH_MODE,
            replaced: None,
        })
    }

    /// Detaches the program from `ifname`: the thread stops (within one frame) and
    /// the program reference is released. Returns the final counters. (bpftool
    /// succeeds silently on an interface without a program; callers that mimic it
    /// ignore [`NetError::NotAttached`].)
    pub fn detach(&self, ifname: &str) -> Result<Attachment, NetError> {
        let mut slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(ifname)
            .ok_or_else(|| NetError::NotAttached {
                ifname: ifname.to_string(),
            })?;
        slot.stop();
        Ok(slot.snapshot(ifname))
    }

    /// Every attachment, by ifindex. Attachments whose thread stopped on its own are
    /// reported once more (with `stopped` set) and then forgotten.
    pub fn list(&self) -> Vec<Attachment> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Attachment> = slots.iter().map(|(n, s)| s.snapshot(n)).collect();
        slots.retain(|_, s| s.is_running());
        out.sort_by(|a, b| {
            a.ifindex
                .cmp(&b.ifindex)
                .then_with(|| a.ifname.cmp(&b.ifname))
        });
        out
    }

    /// The attachment on `ifname`, if any.
    pub fn get(&self, ifname: &str) -> Option<Attachment> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.get(ifname).map(|s| s.snapshot(ifname))
    }

    /// The runtime programs run in.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }
}

impl Drop for Datapath {
    fn drop(&mut self) {
        let slots = std::mem::take(&mut *self.slots.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, mut s) in slots {
            s.stop();
        }
    }
}

/// The per-interface thread.
struct Worker {
    rt: Runtime,
    ifname: String,
    ifindex: u32,
    ring: RxRing,
    tx: TxSocket,
    wake: Arc<EventFd>,
    shared: Arc<Shared>,
    /// The last socket error seen (ENETDOWN), for the stop reason.
    last_error: Option<String>,
}

/// Frames handled between two looks at the stop flag.
const BATCH: usize = 64;

impl Worker {
    fn run(mut self) {
        let why = self.serve();
        if let Some(why) = why {
            *self
                .shared
                .stopped
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(why);
        }
    }

    /// Returns why the thread stopped on its own, or None on detach.
    fn serve(&mut self) -> Option<String> {
        loop {
            if self.shared.stop.load(Ordering::Acquire) {
                return None;
            }
            let mut handled = 0;
            while handled < BATCH {
                if !self.one_frame() {
                    break;
                }
                handled += 1;
            }
            if handled == BATCH {
                continue;
            }
            let ready = match wait(&self.ring, &self.wake, POLL_MS) {
                Ok(r) => r,
                Err(e) => return Some(format!("poll on '{}' failed: {e}", self.ifname)),
            };
            let drops = self.ring.take_drops();
            if drops > 0 {
                let cur = self
                    .shared
                    .current
                    .read()
                    .unwrap_or_else(|e| e.into_inner());
                XdpCounters::add(&cur.counters.ring_drops, drops);
            }
            if ready.error {
                // ENETDOWN: the link went down (frames resume when it comes back) or
                // the device is being unregistered. Clear it so poll() stops
                // reporting it; the note explains a later disappearance.
                if let Some(e) = self.ring.take_error() {
                    self.last_error = Some(e.to_string());
                }
            }
            if !ready.frames {
                // Unregistering a device first brings it down (the error above) and
                // then resets the socket's bound ifindex without another wakeup, so
                // look at it whenever the ring is idle.
                match self.ring.bound_ifindex() {
                    Ok(i) if i == self.ifindex as i32 => {}
                    _ => {
                        return Some(match self.last_error.take() {
                            Some(e) => format!("interface '{}' went away ({e})", self.ifname),
                            None => format!("interface '{}' went away", self.ifname),
                        })
                    }
                }
                if ready.error {
                    // Avoid spinning should the error condition persist.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    /// Handles the next frame of the ring; false when the ring is empty.
    fn one_frame(&mut self) -> bool {
        let Some(f) = self.ring.next_frame() else {
            return false;
        };
        if f.pkttype == PACKET_OUTGOING {
            return true;
        }
        let truncated = f.wire_len > f.data.len();
        let mut frame = if f.status & TP_STATUS_VLAN_VALID != 0 {
            let tpid = if f.status & TP_STATUS_VLAN_TPID_VALID != 0 {
                f.vlan_tpid
            } else {
                0x8100
            };
            insert_vlan(f.data, tpid, f.vlan_tci)
        } else {
            f.data.to_vec()
        };
        let csum_partial = f.status & TP_STATUS_CSUMNOTREADY != 0;
        // The slot goes back to the kernel now: the frame is copied.
        drop(f);
        if csum_partial {
            complete_l4_checksum(&mut frame);
        }
        let (prog, counters) = {
            let cur = self
                .shared
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner());
            (cur.prog.clone(), cur.counters.clone())
        };
        XdpCounters::add(&counters.rx_frames, 1);
        XdpCounters::add(&counters.rx_bytes, frame.len() as u64);
        if truncated || !(ETH_HLEN..=XDP_MAX_FRAME).contains(&frame.len()) {
            XdpCounters::add(&counters.skipped, 1);
            return true;
        }
        let t0 = Instant::now();
        // The CPU this thread is on, as the kernel runs XDP on the CPU of the
        // receive softirq; the queue is unknown to AF_PACKET: 0.
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() }.max(0) as u32 % self.rt.ncpus() as u32;
        let res = run_xdp(&self.rt, &prog, frame, self.ifindex, 0, cpu);
        XdpCounters::add(&counters.run_ns, t0.elapsed().as_nanos() as u64);
        let out = match res {
            Ok(o) => o,
            Err(_) => {
                // A faulting program is an exception: counted, frame dropped.
                XdpCounters::add(&counters.run_errors, 1);
                counters.count(XdpAction::Aborted);
                return true;
            }
        };
        counters.count(out.action);
        XdpCounters::add(&counters.prog_ns, out.prog_ns as u64);
        match out.action {
            XdpAction::Tx if self.tx.send(self.ifindex, &out.frame).is_err() => {
                XdpCounters::add(&counters.tx_errors, 1);
            }
            XdpAction::Redirect => {
                let target = match out.redirect {
                    Some(Redirect::Ifindex { ifindex, flags: 0 }) => Some(ifindex),
                    Some(Redirect::Map {
                        ifindex: Some(ifindex),
                        ..
                    }) => Some(ifindex),
                    // A cpumap hands the frame to the host stack on another CPU: the
                    // host already has its copy.
                    Some(Redirect::Map { ifindex: None, .. }) => return true,
                    // BPF_F_INGRESS, or XDP_REDIRECT without a helper call: the
                    // kernel's xdp_do_redirect fails and drops.
                    _ => None,
                };
                let sent = target.is_some_and(|i| self.tx.send(i, &out.frame).is_ok());
                if !sent {
                    XdpCounters::add(&counters.redirect_errors, 1);
                }
            }
            _ => {}
        }
        true
    }
}
