//! [`BringupTarget`] for the Intel VT-d model.

use serde_json::Value;

use super::target::{
    arg, explained, narrow, no_such_call, ranges_result, register_window_target, BringupTarget,
};
use crate::request::DmaRequest;
use crate::vtd::{Vtd, VTD_MMIO_SIZE};

impl BringupTarget for Vtd {
    register_window_target!(Vtd, "vtd", VTD_MMIO_SIZE);

    fn explain(&self, req: &DmaRequest) -> Value {
        explained(self.lookup_request(req))
    }

    /// - `inject_fault(source_id, reason, count)` -> `[]`: [`Vtd::inject_fault`].
    /// - `permitted_ranges(source_id)` -> `[first0, last0, first1, last1, ...]`: [`Vtd::permitted_ranges`].
    fn call(&self, name: &str, args: &[u64]) -> Result<Vec<u64>, String> {
        match name {
            "inject_fault" => {
                let sid = narrow(arg(args, 0, "source_id")?, "source_id")?;
                let reason = narrow(arg(args, 1, "reason")?, "reason")?;
                let count = narrow(arg(args, 2, "count")?, "count")?;
                self.inject_fault(sid, reason, count)?;
                Ok(Vec::new())
            }
            "permitted_ranges" => {
                let sid = narrow(arg(args, 0, "source_id")?, "source_id")?;
                Ok(ranges_result(&self.permitted_ranges(sid)))
            }
            _ => no_such_call(self, name),
        }
    }

    fn calls(&self) -> Vec<&'static str> {
        vec!["inject_fault", "permitted_ranges"]
    }
}
