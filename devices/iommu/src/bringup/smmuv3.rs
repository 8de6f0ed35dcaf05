//! [`BringupTarget`] for the Arm SMMUv3 model.

use serde_json::Value;

use super::target::{
    arg, explained, narrow, no_such_call, ranges_result, register_window_target, BringupTarget,
};
use crate::request::DmaRequest;
use crate::smmuv3::{Smmuv3, SMMUV3_MMIO_SIZE};

impl BringupTarget for Smmuv3 {
    register_window_target!(Smmuv3, "smmuv3", SMMUV3_MMIO_SIZE);

    /// The model's lookup takes no privilege or request kind: it walks as for an untranslated,
    /// unprivileged transaction.
    fn explain(&self, req: &DmaRequest) -> Value {
        explained(self.lookup(req.source_id, req.pasid, req.iova, req.access))
    }

    /// - `inject_event(sid, event_id, count)` -> `[]`: [`Smmuv3::inject_event`].
    /// - `permitted_ranges(sid[, ssid])` -> `[first0, last0, ...]`: [`Smmuv3::permitted_ranges`].
    fn call(&self, name: &str, args: &[u64]) -> Result<Vec<u64>, String> {
        match name {
            "inject_event" => {
                let sid = narrow(arg(args, 0, "sid")?, "sid")?;
                let id = narrow(arg(args, 1, "event_id")?, "event_id")?;
                let count = narrow(arg(args, 2, "count")?, "count")?;
                self.inject_event(sid, id, count);
                Ok(Vec::new())
            }
            "permitted_ranges" => {
                let sid = narrow(arg(args, 0, "sid")?, "sid")?;
                let ssid = args.get(1).map(|s| narrow(*s, "ssid")).transpose()?;
                Ok(ranges_result(&self.permitted_ranges(sid, ssid)))
            }
            _ => no_such_call(self, name),
        }
    }

    fn calls(&self) -> Vec<&'static str> {
        vec!["inject_event", "permitted_ranges"]
    }
}
