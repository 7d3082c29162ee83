//! Typed program handles for embedders: one per program type that
//! `BPF_PROG_TEST_RUN` drives, each with a `run` that takes what the hook
//! gives the program (a packet, a context) and returns what it decided.
//!
//! A handle wraps a program handle ([`ProgFd`]) and checks its type when it is
//! made; runs go through the runtime's dispatcher ([`Runtime::bpf`],
//! `BPF_PROG_TEST_RUN`), one run each.
//!
//! | handle | program type | `run` |
//! |---|---|---|
//! | [`Xdp`] | `BPF_PROG_TYPE_XDP` | packet → [`XdpAction`], packet |
//! | [`SocketFilter`] | `BPF_PROG_TYPE_SOCKET_FILTER` | packet → bytes kept, packet |
//! | [`SchedClassifier`] | `BPF_PROG_TYPE_SCHED_CLS` | packet → [`TcAction`], packet |
//! | [`CgroupSkb`] | `BPF_PROG_TYPE_CGROUP_SKB` | packet → allowed or not, packet |
//! | [`RawTracepoint`] | `BPF_PROG_TYPE_RAW_TRACEPOINT` | arguments → return value |
//! | [`Syscall`] | `BPF_PROG_TYPE_SYSCALL` | context (read and written) → return value |

#![deny(missing_docs)]

use crate::env::Redirect;
use crate::error::BpfError;
use crate::kernel::{BpfCmd, BpfReply, ProgFd, Runtime};
use crate::testrun::{TestRunAttr, TestRunResult};
use bpfvm_obj::ProgType;
use thiserror::Error;

/// Errors of the program handles, each naming the program (id and name).
#[derive(Debug, Error)]
pub enum ProgramError {
    /// The handle does not fit the program's type.
    #[error("program {id} '{name}' is {found}, not {expected}")]
    WrongProgramType {
        /// The program's id.
        id: u32,
        /// The program's name.
        name: String,
        /// The program's type (`BPF_PROG_TYPE_*`, or its number when unknown).
        found: String,
        /// The type the handle runs.
        expected: &'static str,
    },
    /// `BPF_PROG_TEST_RUN` failed (bad input, or the program stopped).
    #[error("BPF_PROG_TEST_RUN of program {id} '{name}'")]
    TestRun {
        /// The program's id.
        id: u32,
        /// The program's name.
        name: String,
        /// Why the run failed.
        #[source]
        source: Box<BpfError>,
    },
    /// The dispatcher answered with a reply of the wrong kind.
    #[error("BPF_PROG_TEST_RUN of program {id}: unexpected reply")]
    UnexpectedReply {
        /// The program's id.
        id: u32,
    },
}

impl ProgramError {
    /// The errno bpf(2) would return for this failure.
    pub fn errno(&self) -> i32 {
        match self {
            ProgramError::WrongProgramType { .. } => libc::EINVAL,
            ProgramError::TestRun { source, .. } => source.errno(),
            ProgramError::UnexpectedReply { .. } => libc::EFAULT,
        }
    }
}

/// The program, checked to be of type `want`.
fn checked(prog: &ProgFd, want: ProgType) -> Result<ProgFd, ProgramError> {
    let o = prog.obj();
    if o.prog_type == want.as_u32() {
        return Ok(prog.clone());
    }
    Err(ProgramError::WrongProgramType {
        id: o.id,
        name: o.name.clone(),
        found: ProgType::from_u32(o.prog_type)
            .map(|t| t.kernel_name().to_string())
            .unwrap_or_else(|| format!("program type {}", o.prog_type)),
        expected: want.kernel_name(),
    })
}

fn test_run(rt: &Runtime, prog: &ProgFd, attr: TestRunAttr) -> Result<TestRunResult, ProgramError> {
    match rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
        prog_id: prog.id(),
        repeat: 1,
        ..attr
    })) {
        Ok(BpfReply::TestRun(r)) => Ok(r),
        Ok(_) => Err(ProgramError::UnexpectedReply { id: prog.id() }),
        Err(source) => Err(ProgramError::TestRun {
            id: prog.id(),
            name: prog.obj().name.clone(),
            source: Box::new(source),
        }),
    }
}

macro_rules! handle {
    ($(#[$m:meta])* $name:ident, $ty:expr) => {
        $(#[$m])*
        #[derive(Clone)]
        pub struct $name {
            rt: Runtime,
            prog: ProgFd,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.prog)
            }
        }

        impl $name {
            /// A handle on `prog`, which must be of this handle's program type.
            pub fn new(rt: &Runtime, prog: &ProgFd) -> Result<Self, ProgramError> {
                Ok($name {
                    rt: rt.clone(),
                    prog: checked(prog, $ty)?,
                })
            }

            /// The program handle underneath.
            pub fn fd(&self) -> &ProgFd {
                &self.prog
            }

            /// The program's id.
            pub fn id(&self) -> u32 {
                self.prog.id()
            }
        }
    };
}

/// What an XDP program decided for a packet (`enum xdp_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XdpAction {
    /// `XDP_ABORTED`: dropped, with the exception tracepoint hit.
    #[doc(alias = "XDP_ABORTED")]
    Aborted,
    /// `XDP_DROP`.
    #[doc(alias = "XDP_DROP")]
    Drop,
    /// `XDP_PASS`: on to the network stack.
    #[doc(alias = "XDP_PASS")]
    Pass,
    /// `XDP_TX`: back out of the interface it came in on.
    #[doc(alias = "XDP_TX")]
    Tx,
    /// `XDP_REDIRECT`: to where `bpf_redirect`/`bpf_redirect_map` said.
    #[doc(alias = "XDP_REDIRECT")]
    Redirect,
    /// A return value that is no XDP action (the kernel treats it as aborted).
    Other(u32),
}

impl XdpAction {
    /// The action a program's return value stands for.
    pub fn from_retval(r: u32) -> XdpAction {
        match r {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            n => XdpAction::Other(n),
        }
    }
}

/// One run of an [`Xdp`] program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpRun {
    /// What the program decided.
    pub action: XdpAction,
    /// The packet as the program left it (after `bpf_xdp_adjust_head` and the like).
    pub packet: Vec<u8>,
    /// Where a redirect sends the packet.
    pub redirect: Option<Redirect>,
}

handle!(
    /// An XDP program (`BPF_PROG_TYPE_XDP`).
    ///
    /// ```
    /// use bpfvm::programs::{Xdp, XdpAction};
    /// use bpfvm::{Object, Runtime};
    ///
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/xdp_adjust.o");
    /// let obj = Object::parse("xdp_adjust.o", &std::fs::read(path)?)?;
    /// let rt = Runtime::with_cpus(1);
    /// let loaded = rt.load_object(&obj, None)?;
    /// // push_tag grows the packet by 4 bytes at the front and writes a tag there.
    /// let xdp = Xdp::new(&rt, loaded.prog("push_tag").unwrap())?;
    /// let run = xdp.run(&[0u8; 64])?;
    /// assert_eq!(run.action, XdpAction::Pass);
    /// assert_eq!(run.packet.len(), 68);
    /// assert_eq!(run.packet[..4], [0xbf, 0x0f, 0x00, 0x01]);
    /// // Too short for an Ethernet header: the test run refuses it.
    /// assert!(xdp.run(&[0u8; 4]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "BPF_PROG_TYPE_XDP")]
    Xdp,
    ProgType::Xdp
);

impl Xdp {
    /// Runs the program once on `packet` (an Ethernet frame).
    pub fn run(&self, packet: &[u8]) -> Result<XdpRun, ProgramError> {
        let r = test_run(
            &self.rt,
            &self.prog,
            TestRunAttr {
                data_in: packet.to_vec(),
                ..Default::default()
            },
        )?;
        Ok(XdpRun {
            action: XdpAction::from_retval(r.retval),
            packet: r.data_out,
            redirect: r.redirect,
        })
    }
}

/// One run of a program on a socket buffer: its return value and the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkbRun {
    /// The program's return value.
    pub retval: u32,
    /// The packet as the program left it.
    pub packet: Vec<u8>,
}

handle!(
    /// A socket filter (`BPF_PROG_TYPE_SOCKET_FILTER`): its return value is how
    /// many bytes of the packet the socket keeps (0 drops it).
    ///
    /// ```
    /// use bpfvm::programs::SocketFilter;
    /// use bpfvm::{Object, Runtime};
    ///
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/skb.o");
    /// let obj = Object::parse("skb.o", &std::fs::read(path)?)?;
    /// let rt = Runtime::with_cpus(1);
    /// let loaded = rt.load_object(&obj, None)?;
    /// let filter = SocketFilter::new(&rt, loaded.prog("sock_filter").unwrap())?;
    /// // IPv4 packets are kept whole (skb->len: a socket filter's packet starts
    /// // past the Ethernet header, 46 of these 60 bytes), others cut to 14 bytes.
    /// let mut ipv4 = vec![0u8; 60];
    /// ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    /// ipv4[14] = 0x45;
    /// assert_eq!(filter.run(&ipv4)?.retval, 46);
    /// let mut arp = vec![0u8; 60];
    /// arp[12..14].copy_from_slice(&[0x08, 0x06]);
    /// assert_eq!(filter.run(&arp)?.retval, 14);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "BPF_PROG_TYPE_SOCKET_FILTER")]
    SocketFilter,
    ProgType::SocketFilter
);

impl SocketFilter {
    /// Runs the program once on `packet` (an Ethernet frame).
    pub fn run(&self, packet: &[u8]) -> Result<SkbRun, ProgramError> {
        skb_run(&self.rt, &self.prog, packet)
    }
}

fn skb_run(rt: &Runtime, prog: &ProgFd, packet: &[u8]) -> Result<SkbRun, ProgramError> {
    let r = test_run(
        rt,
        prog,
        TestRunAttr {
            data_in: packet.to_vec(),
            ..Default::default()
        },
    )?;
    Ok(SkbRun {
        retval: r.retval,
        packet: r.data_out,
    })
}

/// What a tc program decided for a packet (`TC_ACT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcAction {
    /// `TC_ACT_UNSPEC` (-1): the qdisc's default.
    #[doc(alias = "TC_ACT_UNSPEC")]
    Unspec,
    /// `TC_ACT_OK`: pass.
    #[doc(alias = "TC_ACT_OK")]
    Ok,
    /// `TC_ACT_RECLASSIFY`.
    #[doc(alias = "TC_ACT_RECLASSIFY")]
    Reclassify,
    /// `TC_ACT_SHOT`: drop.
    #[doc(alias = "TC_ACT_SHOT")]
    Shot,
    /// `TC_ACT_PIPE`.
    #[doc(alias = "TC_ACT_PIPE")]
    Pipe,
    /// `TC_ACT_STOLEN`.
    #[doc(alias = "TC_ACT_STOLEN")]
    Stolen,
    /// `TC_ACT_QUEUED`.
    #[doc(alias = "TC_ACT_QUEUED")]
    Queued,
    /// `TC_ACT_REPEAT`.
    #[doc(alias = "TC_ACT_REPEAT")]
    Repeat,
    /// `TC_ACT_REDIRECT`: to where `bpf_redirect` said.
    #[doc(alias = "TC_ACT_REDIRECT")]
    Redirect,
    /// `TC_ACT_TRAP`.
    #[doc(alias = "TC_ACT_TRAP")]
    Trap,
    /// Any other return value.
    Other(i32),
}

impl TcAction {
    /// The action a program's return value stands for.
    pub fn from_retval(r: u32) -> TcAction {
        match r as i32 {
            -1 => TcAction::Unspec,
            0 => TcAction::Ok,
            1 => TcAction::Reclassify,
            2 => TcAction::Shot,
            3 => TcAction::Pipe,
            4 => TcAction::Stolen,
            5 => TcAction::Queued,
            6 => TcAction::Repeat,
            7 => TcAction::Redirect,
            8 => TcAction::Trap,
            n => TcAction::Other(n),
        }
    }
}

/// One run of a [`SchedClassifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcRun {
    /// What the program decided.
    pub action: TcAction,
    /// The packet as the program left it.
    pub packet: Vec<u8>,
    /// Where a redirect sends the packet.
    pub redirect: Option<Redirect>,
}

handle!(
    /// A tc classifier (`BPF_PROG_TYPE_SCHED_CLS`, `SEC("tc")`).
    ///
    /// ```
    /// use bpfvm::programs::{SchedClassifier, TcAction};
    /// use bpfvm::{Object, Runtime};
    ///
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/skb.o");
    /// let obj = Object::parse("skb.o", &std::fs::read(path)?)?;
    /// let rt = Runtime::with_cpus(1);
    /// let loaded = rt.load_object(&obj, None)?;
    /// let tc = SchedClassifier::new(&rt, loaded.prog("tc_classify").unwrap())?;
    /// // IPv6 is dropped, the rest passes.
    /// let mut frame = vec![0u8; 60];
    /// frame[12..14].copy_from_slice(&[0x86, 0xdd]);
    /// frame[14] = 0x60;
    /// assert_eq!(tc.run(&frame)?.action, TcAction::Shot);
    /// frame[12..14].copy_from_slice(&[0x08, 0x06]);
    /// assert_eq!(tc.run(&frame)?.action, TcAction::Ok);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "BPF_PROG_TYPE_SCHED_CLS")]
    SchedClassifier,
    ProgType::SchedCls
);

impl SchedClassifier {
    /// Runs the program once on `packet` (an Ethernet frame).
    pub fn run(&self, packet: &[u8]) -> Result<TcRun, ProgramError> {
        let r = test_run(
            &self.rt,
            &self.prog,
            TestRunAttr {
                data_in: packet.to_vec(),
                ..Default::default()
            },
        )?;
        Ok(TcRun {
            action: TcAction::from_retval(r.retval),
            packet: r.data_out,
            redirect: r.redirect,
        })
    }
}

handle!(
    /// A cgroup socket buffer program (`BPF_PROG_TYPE_CGROUP_SKB`): bit 0 of
    /// its return value allows the packet (see [`SkbRun::allowed`]).
    ///
    /// ```
    /// use bpfvm::isa::asm::assemble;
    /// use bpfvm::programs::CgroupSkb;
    /// use bpfvm::{ProgLoadAttr, ProgType, Runtime};
    ///
    /// let rt = Runtime::with_cpus(1);
    /// // Allow packets longer than 60 bytes (skb->len is at offset 0).
    /// let insns = assemble("ldxw %r2, [%r1]\nmov %r0, 1\njgt %r2, 60, out\nmov %r0, 0\nout:\nexit")?;
    /// let prog = rt.load_program(ProgLoadAttr {
    ///     prog_type: ProgType::CgroupSkb,
    ///     insns,
    ///     license: "GPL".into(),
    ///     name: "long_only".into(),
    ///     ..Default::default()
    /// })?;
    /// let skb = CgroupSkb::new(&rt, &prog)?;
    /// assert!(skb.run(&[0u8; 100])?.allowed());
    /// assert!(!skb.run(&[0u8; 40])?.allowed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "BPF_PROG_TYPE_CGROUP_SKB")]
    CgroupSkb,
    ProgType::CgroupSkb
);

impl CgroupSkb {
    /// Runs the program once on `packet` (an Ethernet frame).
    pub fn run(&self, packet: &[u8]) -> Result<SkbRun, ProgramError> {
        skb_run(&self.rt, &self.prog, packet)
    }
}

impl SkbRun {
    /// For a [`CgroupSkb`] program: whether the packet may go (bit 0 of the
    /// return value).
    pub fn allowed(&self) -> bool {
        self.retval & 1 == 1
    }
}

handle!(
    /// A raw tracepoint program (`BPF_PROG_TYPE_RAW_TRACEPOINT`): its context is
    /// the tracepoint's arguments, one `u64` each.
    ///
    /// ```
    /// use bpfvm::isa::asm::assemble;
    /// use bpfvm::programs::RawTracepoint;
    /// use bpfvm::{ProgLoadAttr, ProgType, Runtime};
    ///
    /// let rt = Runtime::with_cpus(1);
    /// // Returns args[0] * args[1].
    /// let insns = assemble("ldxdw %r0, [%r1]\nldxdw %r2, [%r1+8]\nmul %r0, %r2\nexit")?;
    /// let prog = rt.load_program(ProgLoadAttr {
    ///     prog_type: ProgType::RawTracepoint,
    ///     insns,
    ///     license: "GPL".into(),
    ///     name: "mul".into(),
    ///     ..Default::default()
    /// })?;
    /// assert_eq!(RawTracepoint::new(&rt, &prog)?.run(&[6, 7])?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "BPF_PROG_TYPE_RAW_TRACEPOINT")]
    RawTracepoint,
    ProgType::RawTracepoint
);

impl RawTracepoint {
    /// Runs the program once with these tracepoint arguments; returns its
    /// return value (the low 32 bits, as `BPF_PROG_TEST_RUN` reports it).
    pub fn run(&self, args: &[u64]) -> Result<u32, ProgramError> {
        let ctx = args.iter().flat_map(|a| a.to_ne_bytes()).collect();
        let r = test_run(
            &self.rt,
            &self.prog,
            TestRunAttr {
                ctx_in: Some(ctx),
                ..Default::default()
            },
        )?;
        Ok(r.retval)
    }
}

handle!(
    /// A syscall program (`BPF_PROG_TYPE_SYSCALL`): its context is a buffer the
    /// caller passes and the program may write.
    ///
    /// ```
    /// use bpfvm::isa::asm::assemble;
    /// use bpfvm::programs::Syscall;
    /// use bpfvm::{ProgLoadAttr, ProgType, Runtime};
    ///
    /// let rt = Runtime::with_cpus(1);
    /// // ctx[1] = ctx[0] + 1; returns ctx[0].
    /// let insns = assemble("ldxw %r0, [%r1]\nmov %r2, %r0\nadd %r2, 1\nstxw [%r1+4], %r2\nexit")?;
    /// let prog = rt.load_program(ProgLoadAttr {
    ///     prog_type: ProgType::Syscall,
    ///     // Syscall programs are always sleepable (the kernel refuses them otherwise).
    ///     prog_flags: bpfvm::BPF_F_SLEEPABLE,
    ///     insns,
    ///     license: "GPL".into(),
    ///     name: "bump".into(),
    ///     ..Default::default()
    /// })?;
    /// let mut ctx = [41u32.to_ne_bytes(), [0; 4]].concat();
    /// assert_eq!(Syscall::new(&rt, &prog)?.run(&mut ctx)?, 41);
    /// assert_eq!(ctx[4..], 42u32.to_ne_bytes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "BPF_PROG_TYPE_SYSCALL")]
    Syscall,
    ProgType::Syscall
);

impl Syscall {
    /// Runs the program once on `ctx`, which receives what the program wrote;
    /// returns its return value.
    pub fn run(&self, ctx: &mut [u8]) -> Result<u32, ProgramError> {
        let r = test_run(
            &self.rt,
            &self.prog,
            TestRunAttr {
                ctx_in: Some(ctx.to_vec()),
                ..Default::default()
            },
        )?;
        let n = r.ctx_out.len().min(ctx.len());
        ctx[..n].copy_from_slice(&r.ctx_out[..n]);
        Ok(r.retval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProgLoadAttr;

    #[test]
    fn handles_check_the_program_type() {
        let rt = Runtime::with_cpus(1);
        let prog = rt
            .load_program(ProgLoadAttr {
                prog_type: ProgType::Syscall,
                prog_flags: bpfvm_isa::uapi::BPF_F_SLEEPABLE,
                insns: bpfvm_isa::asm::assemble("mov %r0, 0\nexit").unwrap(),
                license: "GPL".into(),
                name: "sys".into(),
                ..Default::default()
            })
            .unwrap();
        let e = Xdp::new(&rt, &prog).unwrap_err().to_string();
        assert!(
            e.ends_with("'sys' is BPF_PROG_TYPE_SYSCALL, not BPF_PROG_TYPE_XDP"),
            "{e}"
        );
        assert!(Syscall::new(&rt, &prog).is_ok());
        // A run the test-run path refuses is a typed error naming the program.
        let e = Syscall::new(&rt, &prog).unwrap().run(&mut []).err();
        if let Some(e) = e {
            assert!(e.to_string().contains("'sys'"), "{e}");
        }
    }

    #[test]
    fn actions_from_return_values() {
        assert_eq!(XdpAction::from_retval(2), XdpAction::Pass);
        assert_eq!(XdpAction::from_retval(9), XdpAction::Other(9));
        assert_eq!(TcAction::from_retval(u32::MAX), TcAction::Unspec);
        assert_eq!(TcAction::from_retval(2), TcAction::Shot);
    }
}
