//! How a [`Runtime`](crate::Runtime) is set up. The library reads no
//! environment variable: embedders, the CLI and the daemon build this from
//! their own options (the CLI maps `BPFVM_NO_JIT` to [`RuntimeConfig::jit`]).

use crate::kconfig::Kconfig;
use crate::loader::TargetBtf;
use bpfvm_isa::helpers::Proto;
use bpfvm_vm::{Helper, HelperCtx, HelperError, HelperOutcome};
use std::sync::Arc;

/// The settings of a new [`Runtime`](crate::Runtime), built in steps and
/// given to [`Runtime::with_config`](crate::Runtime::with_config).
///
/// ```
/// use bpfvm::{Runtime, RuntimeConfig};
///
/// // Two simulated CPUs, interpreter only.
/// let rt = Runtime::with_config(RuntimeConfig::new().cpus(2).jit(false));
/// assert_eq!(rt.ncpus(), 2);
/// assert!(!rt.jit_enabled());
/// ```
#[derive(Clone)]
pub struct RuntimeConfig {
    pub(crate) jit: bool,
    pub(crate) cpus: usize,
    pub(crate) kconfig: Option<Arc<Kconfig>>,
    pub(crate) target_btf: Option<TargetBtf>,
    pub(crate) helpers: Vec<CustomHelper>,
}

/// A helper the embedder adds ([`RuntimeConfig::helper`]).
#[derive(Clone)]
pub(crate) struct CustomHelper {
    pub(crate) id: u32,
    pub(crate) name: &'static str,
    pub(crate) proto: Proto,
    pub(crate) helper: Arc<dyn Helper>,
}

/// A helper shared between configurations (a config may be cloned and used
/// for several runtimes).
pub(crate) struct SharedHelper(pub(crate) Arc<dyn Helper>);

impl Helper for SharedHelper {
    fn call(
        &self,
        ctx: &mut HelperCtx<'_, '_>,
        args: [u64; 5],
    ) -> Result<HelperOutcome, HelperError> {
        self.0.call(ctx, args)
    }
    fn changes_run(&self) -> bool {
        self.0.changes_run()
    }
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("jit", &self.jit)
            .field("cpus", &self.cpus)
            .field("kconfig", &self.kconfig)
            .field("target_btf", &self.target_btf)
            .field(
                "helpers",
                &self
                    .helpers
                    .iter()
                    .map(|h| (h.id, h.name))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            jit: true,
            cpus: bpfvm_maps::default_ncpus(),
            kconfig: None,
            target_btf: None,
            helpers: Vec::new(),
        }
    }
}

impl RuntimeConfig {
    /// The defaults: JIT on, as many simulated CPUs as the host has, the
    /// emulated kernel's configuration, CO-RE against the host kernel's BTF.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether programs are JIT-compiled when loaded (the kernel's
    /// `net.core.bpf_jit_enable`; [`Runtime::set_jit`](crate::Runtime::set_jit)
    /// changes it later). Default: on.
    pub fn jit(mut self, on: bool) -> Self {
        self.jit = on;
        self
    }

    /// The number of simulated CPUs (per-CPU maps hold that many values; at
    /// least 1). Default: the host's.
    pub fn cpus(mut self, n: usize) -> Self {
        self.cpus = n.max(1);
        self
    }

    /// The kernel configuration `.kconfig` externs read when a load does not
    /// give one ([`LoadOpts::kconfig`](crate::LoadOpts::kconfig)). Default: the
    /// emulated kernel's ([`Kconfig::default`]).
    pub fn kconfig(mut self, kconfig: Kconfig) -> Self {
        self.kconfig = Some(Arc::new(kconfig));
        self
    }

    /// The BTF CO-RE relocations are resolved against when a load does not
    /// say ([`LoadOpts::target_btf`](crate::LoadOpts::target_btf)). Default:
    /// the host kernel's [`HOST_VMLINUX`](crate::HOST_VMLINUX) when readable,
    /// else the object's own BTF.
    pub fn target_btf(mut self, target: TargetBtf) -> Self {
        self.target_btf = Some(target);
        self
    }

    /// A helper programs may call as `id`, verified against `proto` as the
    /// kernel's helpers are against theirs (what
    /// [`Runtime::register_helper`](crate::Runtime::register_helper) does
    /// after creation). A later one with the same id replaces an earlier one.
    pub fn helper(
        mut self,
        id: u32,
        name: &'static str,
        proto: Proto,
        helper: impl Helper + 'static,
    ) -> Self {
        self.helpers.retain(|h| h.id != id);
        self.helpers.push(CustomHelper {
            id,
            name,
            proto,
            helper: Arc::new(helper),
        });
        self
    }

    /// Whether the JIT starts on.
    pub fn jit_enabled(&self) -> bool {
        self.jit
    }

    /// The number of simulated CPUs.
    pub fn ncpus(&self) -> usize {
        self.cpus
    }
}
