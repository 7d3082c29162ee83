//! The engines. To add one: implement [`Engine`] in a module here and list it
//! in [`all`]; the harness, table and JSON need no other change (`bpfvm-jit`
//! was added that way: `bpfvm::BpfvmJit`, about sixty lines).

use crate::engine::Engine;

pub mod bpfvm;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod hostmaps;
pub mod kernel;
#[cfg(bench_llvmbpf)]
pub mod llvmbpf;
pub mod native;
pub mod rbpf;
#[cfg(bench_ubpf)]
pub mod ubpf;

/// Every engine, in the table's column order.
pub fn all() -> Vec<Box<dyn Engine>> {
    let mut v: Vec<Box<dyn Engine>> = vec![
        Box::new(bpfvm::BpfvmInterp { checked: false }),
        Box::new(bpfvm::BpfvmInterp { checked: true }),
        Box::new(bpfvm::BpfvmJit { checked: false }),
        Box::new(bpfvm::BpfvmJit { checked: true }),
        Box::new(rbpf::Rbpf { jit: false }),
        Box::new(rbpf::Rbpf { jit: true }),
    ];
    #[cfg(feature = "dpdk")]
    {
        v.push(Box::new(dpdk::Dpdk { jit: false }));
        v.push(Box::new(dpdk::Dpdk { jit: true }));
    }
    #[cfg(not(feature = "dpdk"))]
    for name in ["dpdk-interp", "dpdk-jit"] {
        v.push(Box::new(Missing {
            name,
            reason: "built without the dpdk feature (scripts/bench.sh turns it on when pkg-config finds libdpdk)",
        }));
    }
    #[cfg(bench_ubpf)]
    {
        v.push(Box::new(ubpf::Ubpf { jit: false }));
        v.push(Box::new(ubpf::Ubpf { jit: true }));
    }
    #[cfg(not(bench_ubpf))]
    for name in ["ubpf-interp", "ubpf-jit"] {
        v.push(Box::new(Missing {
            name,
            reason: PEERS_MISSING,
        }));
    }
    #[cfg(bench_llvmbpf)]
    v.push(Box::new(llvmbpf::Llvmbpf));
    #[cfg(not(bench_llvmbpf))]
    v.push(Box::new(Missing {
        name: "llvmbpf-jit",
        reason: PEERS_MISSING,
    }));
    v.push(Box::new(kernel::Kernel));
    v.push(Box::new(native::Native { novec: false }));
    v.push(Box::new(native::Native { novec: true }));
    v
}

#[cfg(any(not(bench_ubpf), not(bench_llvmbpf)))]
const PEERS_MISSING: &str = "not linked: set BPFVM_BENCH_PEERS to a directory holding the peer libraries built outside the project (benches/README.md; scripts/bench.sh says which peers it found)";

/// A column for an engine this build does not have; every cell says why.
pub struct Missing {
    pub name: &'static str,
    pub reason: &'static str,
}

impl Engine for Missing {
    fn name(&self) -> &'static str {
        self.name
    }

    fn prepare(
        &self,
        _: &crate::programs::Program,
        _: &crate::programs::Input,
    ) -> Result<Box<dyn crate::engine::Runner>, crate::engine::Skip> {
        Err(crate::engine::Skip::new(self.reason))
    }
}
