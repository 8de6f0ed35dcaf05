//! [`BringupTarget`] for the POWER TCE model: MMIO is the hardware view; the sPAPR interface is
//! reached through `call`.

use std::sync::Arc;

use serde_json::Value;

use super::target::{from_le, hexify, le_bytes, BringupTarget};
use crate::mem::DmaMemory;
use crate::request::{DmaFault, DmaPort, DmaRequest, InterruptSink, Translation};
use crate::tce::hcall::HCALLS;
use crate::tce::rtas::RTAS_CALLS;
use crate::tce::{Tce, TceConfig, TCE_MMIO_SIZE};

pub(super) fn build(
    option: &str,
    mem: Arc<dyn DmaMemory>,
    irq: Arc<dyn InterruptSink>,
) -> Result<Box<dyn BringupTarget>, String> {
    let cfg: TceConfig = option.parse().map_err(|e| format!("{e}"))?;
    Ok(Box::new(Tce::new(cfg, mem, irq)))
}

/// Keys of a TCE lookup shown in hex beyond the common ones.
const TCE_HEX_KEYS: [&str; 5] = ["tce", "cached", "liobn", "size", "tce_index"];

fn hexify_tce(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let v = match (TCE_HEX_KEYS.contains(&k.as_str()), v) {
                        (true, Value::Number(n)) => match n.as_u64() {
                            Some(u) => Value::String(format!("{u:#x}")),
                            None => Value::Number(n),
                        },
                        (_, other) => hexify_tce(other),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(hexify_tce).collect()),
        other => other,
    }
}

impl BringupTarget for Tce {
    fn model(&self) -> &'static str {
        "tce"
    }

    fn option_string(&self) -> String {
        self.config().option_string()
    }

    fn mmio_size(&self) -> u64 {
        TCE_MMIO_SIZE
    }

    fn mmio_read(&self, offset: u64, size: u8) -> u64 {
        let mut b = vec![0u8; usize::from(size.min(8))];
        Tce::mmio_read(self, offset, &mut b);
        from_le(&b)
    }

    fn mmio_write(&self, offset: u64, size: u8, value: u64) {
        Tce::mmio_write(self, offset, &le_bytes(value, size));
    }

    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        DmaPort::translate(self, req)
    }

    fn explain(&self, req: &DmaRequest) -> Value {
        serde_json::to_value(self.lookup(req.source_id, req.iova, req.access))
            .map(|v| hexify_tce(hexify(v)))
            .unwrap_or_else(|e| Value::String(format!("lookup not serializable: {e}")))
    }

    /// - `H_PUT_TCE`, `H_GET_TCE`, `H_STUFF_TCE`, `H_PUT_TCE_INDIRECT` (args: the registers from
    ///   r4) -> `[status, ret...]`, negative statuses as 64-bit two's complement ([`Tce::hcall`]).
    /// - `ibm,query-pe-dma-window`, `ibm,create-pe-dma-window`, `ibm,remove-pe-dma-window`,
    ///   `ibm,reset-pe-dma-window` (args: 32-bit cells) -> `[status, outputs...]`, each a 32-bit
    ///   cell (-3 = 0xfffffffd) ([`Tce::rtas`]).
    /// - `hcall(opcode, args...)` -> `[status, ret...]`: any opcode (unknown ones: H_FUNCTION).
    /// - `reset_pe()` -> `[]`; `is_frozen()` -> `[0|1]`; `permitted_ranges(source)` -> `[first0,
    ///   last0, ...]`.
    fn call(&self, name: &str, args: &[u64]) -> Result<Vec<u64>, String> {
        if let Some((op, _)) = HCALLS.iter().find(|(_, n)| *n == name) {
            return Ok(self.hcall(*op, args));
        }
        if RTAS_CALLS.iter().any(|(n, _)| *n == name) {
            let cells = args
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    u32::try_from(*a).map_err(|_| {
                        format!("RTAS argument {i} ({a:#x}) does not fit a 32-bit cell")
                    })
                })
                .collect::<Result<Vec<u32>, String>>()?;
            return Ok(self.rtas(name, &cells).into_iter().map(u64::from).collect());
        }
        match name {
            "hcall" => {
                let (op, regs) = args.split_first().ok_or("hcall needs an opcode")?;
                Ok(self.hcall(*op, regs))
            }
            "reset_pe" => {
                self.reset_pe();
                Ok(Vec::new())
            }
            "is_frozen" => Ok(vec![u64::from(self.is_frozen())]),
            "permitted_ranges" => {
                let source = args.first().copied().unwrap_or(0);
                let source = u32::try_from(source)
                    .map_err(|_| format!("source {source:#x} is out of range"))?;
                Ok(self
                    .permitted_ranges(source)
                    .windows()
                    .iter()
                    .flat_map(|w| [w.first, w.last])
                    .collect())
            }
            _ => Err(format!(
                "model `tce` has no call `{name}` (its calls: {})",
                self.calls().join(", ")
            )),
        }
    }

    fn calls(&self) -> Vec<&'static str> {
        HCALLS
            .iter()
            .map(|(_, n)| *n)
            .chain(RTAS_CALLS.iter().map(|(n, _)| *n))
            .chain(["hcall", "reset_pe", "is_frozen", "permitted_ranges"])
            .collect()
    }
}
