//! Pcap replay: every frame of a capture through an XDP program, verdicts counted,
//! and optionally the frames that leave the hook (`XDP_PASS`, `XDP_TX`,
//! `XDP_REDIRECT`, as the program left them) written to a new capture. Needs no
//! privileges and no interface: a way to exercise XDP programs in CI.

use crate::pcap::{PcapError, PcapReader, PcapRecord, PcapWriter, LINKTYPE_ETHERNET};
use crate::xdp::{run_xdp, RunError, XdpAction, XdpCounters, XdpStats};
use bpfvm::{ProgFd, Redirect, Runtime};
use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("cannot open capture '{path}'")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("capture '{path}'")]
    Pcap {
        path: PathBuf,
        #[source]
        source: PcapError,
    },
    #[error("capture '{path}' has link type {linktype}, not Ethernet (1)")]
    LinkType { path: PathBuf, linktype: u32 },
    #[error("cannot write output capture '{path}'")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How to replay. Runs are on simulated CPU 0, like the golden kernel runs
/// (`taskset -c 0`).
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Write the frames that leave the hook to this pcap file.
    pub output: Option<PathBuf>,
    /// `xdp_md.ingress_ifindex` the program sees; 1 (loopback), as in the kernel's
    /// test run.
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    /// Keep one [`FrameResult`] per frame in the summary.
    pub keep_results: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            output: None,
            ingress_ifindex: 1,
            rx_queue_index: 0,
            keep_results: true,
        }
    }
}

/// The fate of one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameResult {
    /// Record number in the capture, from 0.
    pub index: u64,
    pub len_in: usize,
    /// None when the frame was not run (see `error`).
    pub action: Option<XdpAction>,
    pub len_out: usize,
    pub redirect: Option<Redirect>,
    /// Why the frame was not run, or how the program failed.
    pub error: Option<String>,
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub stats: XdpStats,
    /// Frames written to the output capture.
    pub written: u64,
    /// Wall time of the whole replay, nanoseconds.
    pub elapsed_ns: u64,
    /// Per frame, when [`ReplayOptions::keep_results`].
    pub results: Vec<FrameResult>,
}

/// Replays the capture at `path` through `prog`.
pub fn replay_pcap(
    rt: &Runtime,
    prog: &ProgFd,
    path: impl AsRef<Path>,
    opts: &ReplayOptions,
) -> Result<Summary, ReplayError> {
    let path = path.as_ref();
    let f = File::open(path).map_err(|source| ReplayError::Open {
        path: path.into(),
        source,
    })?;
    let pcap_err = |source| ReplayError::Pcap {
        path: path.into(),
        source,
    };
    let reader = PcapReader::new(BufReader::new(f)).map_err(pcap_err)?;
    if reader.linktype != LINKTYPE_ETHERNET {
        return Err(ReplayError::LinkType {
            path: path.into(),
            linktype: reader.linktype,
        });
    }
    replay_records(rt, prog, reader.map(|r| r.map_err(pcap_err)), opts)
}

/// Replays frames from any source (pcap records, files of raw frames).
pub fn replay_records(
    rt: &Runtime,
    prog: &ProgFd,
    records: impl IntoIterator<Item = Result<PcapRecord, ReplayError>>,
    opts: &ReplayOptions,
) -> Result<Summary, ReplayError> {
    let mut out = match &opts.output {
        Some(p) => {
            let write_err = |source| ReplayError::Write {
                path: p.clone(),
                source,
            };
            let f = File::create(p).map_err(write_err)?;
            Some((
                p.clone(),
                PcapWriter::new(BufWriter::new(f), LINKTYPE_ETHERNET, 65535).map_err(write_err)?,
            ))
        }
        None => None,
    };
    let counters = XdpCounters::default();
    let mut summary = Summary::default();
    let start = Instant::now();
    for (index, rec) in records.into_iter().enumerate() {
        let rec = rec?;
        let len_in = rec.data.len();
        XdpCounters::add(&counters.rx_frames, 1);
        XdpCounters::add(&counters.rx_bytes, len_in as u64);
        let mut result = FrameResult {
            index: index as u64,
            len_in,
            action: None,
            len_out: 0,
            redirect: None,
            error: None,
        };
        let t0 = Instant::now();
        let res = if (rec.orig_len as usize) > len_in {
            // XDP sees whole frames; a capture cut short cannot be run faithfully.
            Err((
                false,
                format!(
                    "frame cut short by the capture ({len_in} of {} bytes)",
                    rec.orig_len
                ),
            ))
        } else {
            run_xdp(
                rt,
                prog,
                rec.data,
                opts.ingress_ifindex,
                opts.rx_queue_index,
                0,
            )
            .map_err(|e| match &e {
                // The program ran and faulted: an exception, like XDP_ABORTED.
                RunError::Program { source, .. } => (true, format!("{e}: {source}")),
                _ => (false, e.to_string()),
            })
        };
        XdpCounters::add(&counters.run_ns, t0.elapsed().as_nanos() as u64);
        match res {
            Ok(o) => {
                counters.count(o.action);
                XdpCounters::add(&counters.prog_ns, o.prog_ns as u64);
                result.action = Some(o.action);
                result.len_out = o.frame.len();
                result.redirect = o.redirect;
                if matches!(
                    o.action,
                    XdpAction::Pass | XdpAction::Tx | XdpAction::Redirect
                ) {
                    if let Some((p, w)) = &mut out {
                        w.write(rec.ts_sec, rec.ts_nsec, &o.frame)
                            .map_err(|source| ReplayError::Write {
                                path: p.clone(),
                                source,
                            })?;
                        summary.written += 1;
                    }
                }
            }
            Err((ran, msg)) => {
                if ran {
                    XdpCounters::add(&counters.run_errors, 1);
                    counters.count(XdpAction::Aborted);
                    result.action = Some(XdpAction::Aborted);
                } else {
                    XdpCounters::add(&counters.skipped, 1);
                }
                result.error = Some(msg);
            }
        }
        if opts.keep_results {
            summary.results.push(result);
        }
    }
    if let Some((p, w)) = &mut out {
        w.flush().map_err(|source| ReplayError::Write {
            path: p.clone(),
            source,
        })?;
    }
    summary.elapsed_ns = start.elapsed().as_nanos() as u64;
    summary.stats = counters.snapshot();
    Ok(summary)
}
