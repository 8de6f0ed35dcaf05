//! [`BringupTarget`] for the POWER TCE model: MMIO is the hardware view; the sPAPR interface is
//! reached through `call`.

use serde_json::Value;

use super::target::{
    explained, narrow, no_such_call, ranges_result, register_window_target, BringupTarget,
};
use crate::request::DmaRequest;
use crate::tce::hcall::HCALLS;
use crate::tce::rtas::RTAS_CALLS;
use crate::tce::{Tce, TCE_MMIO_SIZE};

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
    register_window_target!(Tce, "tce", TCE_MMIO_SIZE);

    fn explain(&self, req: &DmaRequest) -> Value {
        hexify_tce(explained(self.lookup(req.source_id, req.iova, req.access)))
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
                let source = narrow(args.first().copied().unwrap_or(0), "source")?;
                Ok(ranges_result(&self.permitted_ranges(source)))
            }
            _ => no_such_call(self, name),
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
