//! [`BringupTarget`] for the Intel VT-d model.

use std::sync::Arc;

use serde_json::Value;

use super::target::{from_le, hexify, le_bytes, BringupTarget};
use crate::mem::DmaMemory;
use crate::request::{DmaFault, DmaPort, DmaRequest, InterruptSink, Translation};
use crate::vtd::{Vtd, VtdConfig, VTD_MMIO_SIZE};

pub(super) fn build(
    option: &str,
    mem: Arc<dyn DmaMemory>,
    irq: Arc<dyn InterruptSink>,
) -> Result<Box<dyn BringupTarget>, String> {
    let cfg: VtdConfig = option.parse().map_err(|e| format!("{e}"))?;
    Ok(Box::new(Vtd::new(cfg, mem, irq)))
}

fn arg(args: &[u64], i: usize, name: &str) -> Result<u64, String> {
    args.get(i)
        .copied()
        .ok_or_else(|| format!("argument {i} ({name}) missing"))
}

fn narrow<T: TryFrom<u64>>(v: u64, name: &str) -> Result<T, String> {
    T::try_from(v).map_err(|_| format!("{name} {v:#x} is out of range"))
}

impl BringupTarget for Vtd {
    fn model(&self) -> &'static str {
        "vtd"
    }

    fn option_string(&self) -> String {
        self.config().option_string()
    }

    fn mmio_size(&self) -> u64 {
        VTD_MMIO_SIZE
    }

    fn mmio_read(&self, offset: u64, size: u8) -> u64 {
        let mut b = vec![0u8; usize::from(size.min(8))];
        Vtd::mmio_read(self, offset, &mut b);
        from_le(&b)
    }

    fn mmio_write(&self, offset: u64, size: u8, value: u64) {
        Vtd::mmio_write(self, offset, &le_bytes(value, size));
    }

    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        DmaPort::translate(self, req)
    }

    fn explain(&self, req: &DmaRequest) -> Value {
        serde_json::to_value(self.lookup_request(req))
            .map(hexify)
            .unwrap_or_else(|e| Value::String(format!("lookup not serializable: {e}")))
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
                Ok(self
                    .permitted_ranges(sid)
                    .windows()
                    .iter()
                    .flat_map(|w| [w.first, w.last])
                    .collect())
            }
            _ => Err(format!(
                "model `vtd` has no call `{name}` (its calls: {})",
                self.calls().join(", ")
            )),
        }
    }

    fn calls(&self) -> Vec<&'static str> {
        vec!["inject_fault", "permitted_ranges"]
    }
}
