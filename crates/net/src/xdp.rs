//! One XDP run on one frame: the `xdp_md` the program sees, the verdict it returns
//! (`enum xdp_action`), the frame as it left it, and where a redirect goes. Shared
//! by the live datapath and pcap replay, so both judge frames the same way.

use bpfvm::{BpfCmd, BpfError, BpfReply, ProgFd, Redirect, Runtime, TestRunAttr, XdpMd};
use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

/// `XDP_ABORTED`: the program failed; the frame is dropped (trace_xdp_exception).
pub const XDP_ABORTED: u32 = 0;
/// `XDP_DROP`.
pub const XDP_DROP: u32 = 1;
/// `XDP_PASS`: the frame goes on to the host's network stack.
pub const XDP_PASS: u32 = 2;
/// `XDP_TX`: the frame goes back out of the interface it came in on.
pub const XDP_TX: u32 = 3;
/// `XDP_REDIRECT`: the frame goes to the target `bpf_redirect*` chose.
pub const XDP_REDIRECT: u32 = 4;

/// Ethernet header length, the smallest frame an XDP run accepts.
pub const ETH_HLEN: usize = 14;
/// The largest frame one XDP run takes: a 4096-byte frame minus the 256 bytes of
/// `XDP_PACKET_HEADROOM` and the 320-byte `skb_shared_info` tailroom (x86-64), as in
/// the kernel's test run.
pub const XDP_MAX_FRAME: usize = 4096 - bpfvm::XDP_PACKET_HEADROOM - 320;

/// A program's return value read as `enum xdp_action`.
#[doc(alias = "xdp_action")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XdpAction {
    #[doc(alias = "XDP_ABORTED")]
    Aborted,
    #[doc(alias = "XDP_DROP")]
    Drop,
    #[doc(alias = "XDP_PASS")]
    Pass,
    #[doc(alias = "XDP_TX")]
    Tx,
    #[doc(alias = "XDP_REDIRECT")]
    Redirect,
    /// A value outside the enum. The kernel warns (bpf_warn_invalid_xdp_action) and
    /// treats it as `XDP_ABORTED`: the frame is dropped.
    Invalid(u32),
}

impl XdpAction {
    pub fn from_retval(v: u32) -> XdpAction {
        match v {
            XDP_ABORTED => XdpAction::Aborted,
            XDP_DROP => XdpAction::Drop,
            XDP_PASS => XdpAction::Pass,
            XDP_TX => XdpAction::Tx,
            XDP_REDIRECT => XdpAction::Redirect,
            other => XdpAction::Invalid(other),
        }
    }

    /// The name as the kernel spells it (`XDP_PASS`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            XdpAction::Aborted => "XDP_ABORTED",
            XdpAction::Drop => "XDP_DROP",
            XdpAction::Pass => "XDP_PASS",
            XdpAction::Tx => "XDP_TX",
            XdpAction::Redirect => "XDP_REDIRECT",
            XdpAction::Invalid(_) => "XDP_INVALID",
        }
    }
}

/// What one run of the program made of one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpOutcome {
    pub action: XdpAction,
    /// The frame from `data` to `data_end` as the program left it (metadata the
    /// program pushed with bpf_xdp_adjust_meta is not part of it).
    pub frame: Vec<u8>,
    /// Metadata bytes in front of the frame (`data - data_meta`).
    pub meta_len: usize,
    /// Set when the program called `bpf_redirect`/`bpf_redirect_map`.
    pub redirect: Option<Redirect>,
    /// Time inside the program (the test run's `duration`), nanoseconds.
    pub prog_ns: u32,
}

/// A frame that could not be run.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(
        "frame of {len} bytes is outside the {ETH_HLEN}..={XDP_MAX_FRAME} bytes an xdp run takes"
    )]
    FrameSize { len: usize },
    #[error("program id {prog_id} failed on the frame")]
    Program {
        prog_id: u32,
        #[source]
        source: BpfError,
    },
    #[error("program id {prog_id}: the runtime answered a test run with something else")]
    UnexpectedReply { prog_id: u32 },
}

/// The `ctx_in` of a test run: no metadata, the frame's length, the receiving
/// interface and queue.
fn xdp_md_bytes(len: usize, ingress_ifindex: u32, rx_queue_index: u32) -> Vec<u8> {
    let md = XdpMd {
        data: 0,
        data_end: len as u32,
        data_meta: 0,
        ingress_ifindex,
        rx_queue_index,
        egress_ifindex: 0,
    };
    let mut out = Vec::with_capacity(24);
    for v in [
        md.data,
        md.data_end,
        md.data_meta,
        md.ingress_ifindex,
        md.rx_queue_index,
        md.egress_ifindex,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Runs `prog` on `frame` once, through the runtime's `BPF_PROG_TEST_RUN`, on the
/// simulated CPU `cpu` (what `bpf_get_smp_processor_id` and per-CPU maps see).
pub fn run_xdp(
    rt: &Runtime,
    prog: &ProgFd,
    frame: Vec<u8>,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    cpu: u32,
) -> Result<XdpOutcome, RunError> {
    let len = frame.len();
    if !(ETH_HLEN..=XDP_MAX_FRAME).contains(&len) {
        return Err(RunError::FrameSize { len });
    }
    let prog_id = prog.id();
    let reply = rt
        .bpf(BpfCmd::ProgTestRun(TestRunAttr {
            prog_id,
            data_in: frame,
            ctx_in: Some(xdp_md_bytes(len, ingress_ifindex, rx_queue_index)),
            repeat: 1,
            cpu,
            flags: bpfvm::BPF_F_TEST_XDP_LIVE_FRAMES,
        }))
        .map_err(|source| RunError::Program { prog_id, source })?;
    let BpfReply::TestRun(res) = reply else {
        return Err(RunError::UnexpectedReply { prog_id });
    };
    // ctx_out.data is the metadata length: data_out starts at data_meta.
    let meta_len = res
        .ctx_out
        .get(0..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b| u32::from_le_bytes(b) as usize)
        .min(res.data_out.len());
    let mut out = res.data_out;
    out.drain(..meta_len);
    Ok(XdpOutcome {
        action: XdpAction::from_retval(res.retval),
        frame: out,
        meta_len,
        redirect: res.redirect,
        prog_ns: res.duration,
    })
}

/// Counters of one attachment (or one replay), updated by the datapath thread
/// and read at any time.
#[derive(Debug, Default)]
pub struct XdpCounters {
    pub rx_frames: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub aborted: AtomicU64,
    pub drop: AtomicU64,
    pub pass: AtomicU64,
    pub tx: AtomicU64,
    pub redirect: AtomicU64,
    pub invalid: AtomicU64,
    pub run_errors: AtomicU64,
    pub skipped: AtomicU64,
    pub tx_errors: AtomicU64,
    pub redirect_errors: AtomicU64,
    pub ring_drops: AtomicU64,
    pub run_ns: AtomicU64,
    pub prog_ns: AtomicU64,
}

/// A snapshot of [`XdpCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpStats {
    /// Frames received from the interface (every frame, run or not).
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Verdicts, one per run.
    pub aborted: u64,
    pub drop: u64,
    pub pass: u64,
    pub tx: u64,
    pub redirect: u64,
    /// Return values outside `enum xdp_action` (dropped, as the kernel does).
    pub invalid: u64,
    /// Runs the VM stopped with an error (counted as `XDP_ABORTED` too).
    pub run_errors: u64,
    /// Frames not run: shorter than an Ethernet header or longer than
    /// [`XDP_MAX_FRAME`] (the host stack still gets them).
    pub skipped: u64,
    /// `XDP_TX` frames the interface refused to send.
    pub tx_errors: u64,
    /// `XDP_REDIRECT` frames that found no usable target or failed to send.
    pub redirect_errors: u64,
    /// Frames the kernel dropped because the receive ring was full.
    pub ring_drops: u64,
    /// Time spent per run in total (the test run's setup included), nanoseconds.
    pub run_ns: u64,
    /// Of that, time inside the program itself, nanoseconds.
    pub prog_ns: u64,
}

impl XdpCounters {
    pub fn count(&self, action: XdpAction) {
        let c = match action {
            XdpAction::Aborted => &self.aborted,
            XdpAction::Drop => &self.drop,
            XdpAction::Pass => &self.pass,
            XdpAction::Tx => &self.tx,
            XdpAction::Redirect => &self.redirect,
            XdpAction::Invalid(_) => &self.invalid,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> XdpStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        XdpStats {
            rx_frames: g(&self.rx_frames),
            rx_bytes: g(&self.rx_bytes),
            aborted: g(&self.aborted),
            drop: g(&self.drop),
            pass: g(&self.pass),
            tx: g(&self.tx),
            redirect: g(&self.redirect),
            invalid: g(&self.invalid),
            run_errors: g(&self.run_errors),
            skipped: g(&self.skipped),
            tx_errors: g(&self.tx_errors),
            redirect_errors: g(&self.redirect_errors),
            ring_drops: g(&self.ring_drops),
            run_ns: g(&self.run_ns),
            prog_ns: g(&self.prog_ns),
        }
    }
}

impl XdpStats {
    /// Program runs that ended in a verdict (errors included, as aborted).
    pub fn runs(&self) -> u64 {
        self.aborted + self.drop + self.pass + self.tx + self.redirect + self.invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for v in 0..5 {
            let a = XdpAction::from_retval(v);
            assert!(!matches!(a, XdpAction::Invalid(_)));
        }
        assert_eq!(XdpAction::from_retval(7), XdpAction::Invalid(7));
        assert_eq!(XdpAction::from_retval(XDP_TX).name(), "XDP_TX");
    }

    #[test]
    fn md_bytes_layout() {
        let b = xdp_md_bytes(60, 3, 1);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[4..8], &60u32.to_le_bytes());
        assert_eq!(&b[12..16], &3u32.to_le_bytes());
        assert_eq!(&b[16..20], &1u32.to_le_bytes());
    }
}
