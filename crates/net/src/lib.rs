//! bpfvm-net — the XDP datapath of bpfvm (internal dependency; the CLI's `net`
//! commands and the daemon use it, applications go through `bpfvm`).
//!
//! Data flows one way for both of its entry points:
//!
//! - **Live interfaces** ([`Datapath`]): per attached interface a thread reads
//!   incoming frames from an AF_PACKET `PACKET_RX_RING` ([`packet`]), restores what
//!   was on the wire ([`frame`]: VLAN tag, offloaded checksum), runs the program
//!   through the runtime's `BPF_PROG_TEST_RUN` ([`xdp::run_xdp`]) and acts on the
//!   verdict: `XDP_TX` and `XDP_REDIRECT` transmit with an AF_PACKET send, the rest
//!   are counted. Reported mode: `generic` ([`ATTACH_MODE`]). AF_PACKET receives
//!   copies, so the host stack still sees every frame whatever the verdict.
//! - **Pcap replay** ([`replay_pcap`]): frames from a capture file ([`pcap`])
//!   through the same run, verdicts counted, surviving frames optionally written to
//!   a new capture. No privileges needed. [`CaptureFile`] reads pcap and pcapng.

pub mod datapath;
pub mod frame;
pub mod packet;
pub mod pcap;
pub mod pcapng;
pub mod replay;
pub mod xdp;

pub use datapath::{ifindex_of, AttachInfo, Attachment, Datapath, NetError, ATTACH_MODE};
pub use pcap::{PcapError, PcapReader, PcapRecord, PcapWriter, LINKTYPE_ETHERNET};
pub use pcapng::{CaptureFile, PcapngReader};
pub use replay::{replay_pcap, replay_records, FrameResult, ReplayError, ReplayOptions, Summary};
pub use xdp::{
    run_xdp, RunError, XdpAction, XdpCounters, XdpOutcome, XdpStats, XDP_ABORTED, XDP_DROP,
    XDP_MAX_FRAME, XDP_PASS, XDP_REDIRECT, XDP_TX,
};

// The datapath is shared between threads (the daemon's clients, its own workers).
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Datapath>();
};
