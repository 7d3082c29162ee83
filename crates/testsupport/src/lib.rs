//! bpfvm-testsupport — internal dependency, tests only.
//!
//! What bpfvm's tests, fuzzers and benchmarks share when they ask the host
//! kernel for its verdict: the `bpf(2)` commands they issue (program load with
//! the verifier log, map create/update/lookup/freeze, test run, pin and get),
//! whether the host kernel can be asked at all (so that such tests skip with a
//! reason instead of failing when not root), and the masking that makes a
//! kernel's `xlated` dump or verifier log comparable with bpfvm's.
//!
//! Not part of bpfvm's API and never published.

pub mod mask;
pub mod sys;

pub use mask::{error_line, is_live_regs_line, mask_xlated, normalise_log};
pub use sys::{
    bpftool_unavailable, btf_load, host_kernel_unavailable, is_root, map_create, map_freeze,
    map_lookup, map_update, obj_get, obj_pin, prog_load, sys_bpf, test_run,
    unprivileged_bpf_enabled, Attr, Fd, LoadError, Loaded, MapCreate, ProgLoad, TestRun,
    TestRunOut,
};
