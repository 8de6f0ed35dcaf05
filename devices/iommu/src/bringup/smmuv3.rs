//! [`BringupTarget`] for the Arm SMMUv3 model.

use std::sync::Arc;

use serde_json::Value;

use super::target::{from_le, hexify, le_bytes, BringupTarget};
use crate::mem::DmaMemory;
use crate::request::{DmaFault, DmaPort, DmaRequest, InterruptSink, Translation};
use crate::smmuv3::{Smmuv3, Smmuv3Config, SMMUV3_MMIO_SIZE};

pub(super) fn build(
    option: &str,
    mem: Arc<dyn DmaMemory>,
    irq: Arc<dyn InterruptSink>,
) -> Result<Box<dyn BringupTarget>, String> {
    let cfg: Smmuv3Config = option.parse().map_err(|e| format!("{e}"))?;
    Ok(Box::new(Smmuv3::new(cfg, mem, irq)))
}

fn arg(args: &[u64], i: usize, name: &str) -> Result<u64, String> {
    args.get(i)
        .copied()
        .ok_or_else(|| format!("argument {i} ({name}) missing"))
}

fn narrow<T: TryFrom<u64>>(v: u64, name: &str) -> Result<T, String> {
    T::try_from(v).map_err(|_| format!("{name} {v:#x} is out of range"))
}

impl BringupTarget for Smmuv3 {
    fn model(&self) -> &'static str {
        "smmuv3"
    }

    fn option_string(&self) -> String {
        self.config().option_string()
    }

    fn mmio_size(&self) -> u64 {
        SMMUV3_MMIO_SIZE
    }

    fn mmio_read(&self, offset: u64, size: u8) -> u64 {
        let mut b = vec![0u8; usize::from(size.min(8))];
        Smmuv3::mmio_read(self, offset, &mut b);
        from_le(&b)
    }

    fn mmio_write(&self, offset: u64, size: u8, value: u64) {
        Smmuv3::mmio_write(self, offset, &le_bytes(value, size));
    }

    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        DmaPort::translate(self, req)
    }

    /// The model's lookup takes no privilege or request kind: it walks as for an untranslated,
    /// unprivileged transaction.
    fn explain(&self, req: &DmaRequest) -> Value {
        serde_json::to_value(self.lookup(req.source_id, req.pasid, req.iova, req.access))
            .map(hexify)
            .unwrap_or_else(|e| Value::String(format!("lookup not serializable: {e}")))
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
                Ok(self
                    .permitted_ranges(sid, ssid)
                    .windows()
                    .iter()
                    .flat_map(|w| [w.first, w.last])
                    .collect())
            }
            _ => Err(format!(
                "model `smmuv3` has no call `{name}` (its calls: {})",
                self.calls().join(", ")
            )),
        }
    }

    fn calls(&self) -> Vec<&'static str> {
        vec!["inject_event", "permitted_ranges"]
    }
}
