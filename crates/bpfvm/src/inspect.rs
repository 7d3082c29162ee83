//! Looking inside runs, for debuggers, profiles and coverage: test runs on the
//! observed interpreter ([`Runtime::test_run_observed`]) and the verifier's
//! register states per instruction ([`Runtime::verifier_reg_states`]).

use crate::error::Result;
use crate::kernel::{ProgObj, Runtime};
use crate::testrun::{TestRunAttr, TestRunResult};
use bpfvm_vm::Observer;

impl Runtime {
    /// `BPF_PROG_TEST_RUN` of `attr.prog_id` as [`crate::BpfCmd::ProgTestRun`]
    /// does it (same context, packet, helpers, maps, result), but on the
    /// interpreter one instruction at a time, calling `observer` before each,
    /// whether or not the program has native code.
    pub fn test_run_observed(
        &self,
        attr: &TestRunAttr,
        observer: &mut dyn Observer,
    ) -> Result<TestRunResult> {
        let p = self.prog_by_id(attr.prog_id)?;
        crate::testrun::test_run_with(self, &p, attr, Some(observer))
    }

    /// What the verifier knew of each register before each instruction slot of
    /// `prog` (r0..r10; the distinct states of the paths it walked, as its log
    /// writes them, e.g. `pkt(r=42)`). The program is verified again for this.
    pub fn verifier_reg_states(&self, prog: &ProgObj) -> Result<Vec<[Vec<String>; 11]>> {
        crate::prog::reg_states(self, prog)
    }
}
