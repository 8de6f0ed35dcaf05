//! What the engine drives: any IOMMU model behind one small trait, and the factory that builds one from
//! a script's `model` option string.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::mem::DmaMemory;
use crate::ranges::PermittedRanges;
use crate::request::{DmaFault, DmaRequest, InterruptSink, Translation};
use crate::smmuv3::Smmuv3;
use crate::tce::Tce;
use crate::vtd::Vtd;

/// An IOMMU model as a bring-up script sees it: a register window, a translation port, a
/// side-effect-free explanation of a translation, and model-specific calls.
///
/// MMIO accesses reaching the target have been checked by the engine: `size` is 4 or 8, `offset` is
/// naturally aligned and `offset + size <= mmio_size()`.
pub trait BringupTarget {
    /// Short model name for reports ("vtd", "smmuv3", "tce").
    fn model(&self) -> &'static str;

    /// The canonical option string of the model as built (every default spelled out).
    fn option_string(&self) -> String;

    /// Size of the register window in bytes (0 if the model has none: every MMIO step is refused).
    fn mmio_size(&self) -> u64;

    /// A little-endian register read of `size` bytes.
    fn mmio_read(&self, offset: u64, size: u8) -> u64;

    /// A little-endian register write of the low `size` bytes of `value`.
    fn mmio_write(&self, offset: u64, size: u8, value: u64);

    /// One DMA request through the model's translation port, with all its side effects (caches, fault
    /// records, interrupts, accessed/dirty bits).
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault>;

    /// The model's side-effect-free lookup of `req` (every structure entry the walk reads and the
    /// result), printed in a report when a DMA step does not match.
    fn explain(&self, req: &DmaRequest) -> Value;

    /// A model-specific interface that is not MMIO: hypercalls and firmware calls (sPAPR `H_PUT_TCE`,
    /// RTAS `ibm,create-pe-dma-window`, ...) or test hooks (`inject_fault`). Arguments and results are
    /// the call's registers, in order: a hypercall returns `[status, ret...]`. `Err` is for a call the
    /// model does not have or cannot make sense of; an architected error status is an `Ok` value.
    fn call(&self, name: &str, args: &[u64]) -> Result<Vec<u64>, String> {
        let _ = args;
        no_such_call(self, name)
    }

    /// Names of the calls [`BringupTarget::call`] accepts, for error messages.
    fn calls(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

/// The models a script can name, by the first item of its option string.
pub const MODELS: [&str; 3] = ["vtd", "smmuv3", "tce"];

/// Builds the model named by `option` (`"vtd,sm=off"`, ...) over `mem`, its own interrupts going to
/// `irq`. `Err` carries the model parser's message.
pub fn build_target(
    option: &str,
    mem: Arc<dyn DmaMemory>,
    irq: Arc<dyn InterruptSink>,
) -> Result<Box<dyn BringupTarget>, String> {
    let head = option.split(',').next().unwrap_or_default();
    match head {
        "vtd" => build(option, |cfg| Vtd::new(cfg, mem, irq)),
        "smmuv3" => build(option, |cfg| Smmuv3::new(cfg, mem, irq)),
        "tce" => build(option, |cfg| Tce::new(cfg, mem, irq)),
        _ => Err(format!(
            "unknown model `{head}` (known: {})",
            MODELS.join(", ")
        )),
    }
}

/// Parses `option` with the model's configuration parser (its message on refusal) and builds the model.
fn build<C, T>(option: &str, new: impl FnOnce(C) -> T) -> Result<Box<dyn BringupTarget>, String>
where
    C: FromStr,
    C::Err: fmt::Display,
    T: BringupTarget + 'static,
{
    let cfg: C = option.parse().map_err(|e| format!("{e}"))?;
    Ok(Box::new(new(cfg)))
}

/// The [`BringupTarget`] methods every model implements the same way, for use inside its `impl`:
/// `model`, `option_string` (the model's `config().option_string()`), `mmio_size`, `mmio_read` and
/// `mmio_write` (its [`RegisterWindow`](crate::RegisterWindow) sized accesses) and `translate` (its [`DmaPort`](crate::DmaPort)).
macro_rules! register_window_target {
    ($model:ty, $name:literal, $mmio_size:expr) => {
        fn model(&self) -> &'static str {
            $name
        }

        fn option_string(&self) -> String {
            self.config().option_string()
        }

        fn mmio_size(&self) -> u64 {
            $mmio_size
        }

        fn mmio_read(&self, offset: u64, size: u8) -> u64 {
            $crate::registers::RegisterWindow::read_sized(self, offset, size)
        }

        fn mmio_write(&self, offset: u64, size: u8, value: u64) {
            $crate::registers::RegisterWindow::write_sized(self, offset, size, value);
        }

        fn translate(
            &self,
            req: &$crate::request::DmaRequest,
        ) -> Result<$crate::request::Translation, $crate::request::DmaFault> {
            $crate::request::DmaPort::translate(self, req)
        }
    };
}
pub(super) use register_window_target;

/// The refusal of a call `target` does not have, naming the ones it has.
pub(super) fn no_such_call<T: BringupTarget + ?Sized>(
    target: &T,
    name: &str,
) -> Result<Vec<u64>, String> {
    Err(format!(
        "model `{}` has no call `{name}` (its calls: {})",
        target.model(),
        target.calls().join(", ")
    ))
}

/// Argument `i` (called `name` in the error) of a call.
pub(super) fn arg(args: &[u64], i: usize, name: &str) -> Result<u64, String> {
    args.get(i)
        .copied()
        .ok_or_else(|| format!("argument {i} ({name}) missing"))
}

/// `v` as a narrower integer, or an error naming it.
pub(super) fn narrow<T: TryFrom<u64>>(v: u64, name: &str) -> Result<T, String> {
    T::try_from(v).map_err(|_| format!("{name} {v:#x} is out of range"))
}

/// Permitted ranges as a call's result: `[first0, last0, first1, last1, ...]`.
pub(super) fn ranges_result(ranges: &PermittedRanges) -> Vec<u64> {
    ranges
        .windows()
        .iter()
        .flat_map(|w| [w.first, w.last])
        .collect()
}

/// A model's lookup as an explanation: serialized, with address-like values in hex ([`hexify`]).
pub(super) fn explained(lookup: impl Serialize) -> Value {
    serde_json::to_value(lookup)
        .map(hexify)
        .unwrap_or_else(|e| Value::String(format!("lookup not serializable: {e}")))
}

/// Keys whose integer values are addresses, entries or sizes: shown as hex strings in explanations
/// (VT-d lookup keys, then SMMUv3 lookup keys).
const HEX_KEYS: [&str; 21] = [
    "address",
    "iova",
    "output",
    "entry",
    "input",
    "page_size",
    "old",
    "bits",
    "first",
    "last",
    "base",
    "value",
    "words",
    "desc",
    "desc_addr",
    "desc_ipa",
    "ipa",
    "table",
    "record",
    "input_addr",
    "fetch_addr",
];

/// Rewrites the integers under address-like keys (see `HEX_KEYS`) of a serialized lookup as `0x...`
/// strings, recursively (arrays under such a key too), so a walk reads like the spec's tables.
pub fn hexify(v: Value) -> Value {
    fn hex_all(v: Value) -> Value {
        match v {
            Value::Number(n) => match n.as_u64() {
                Some(u) => Value::String(format!("{u:#x}")),
                None => Value::Number(n),
            },
            Value::Array(a) => Value::Array(a.into_iter().map(hex_all).collect()),
            Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, hex_all(v))).collect())
            }
            other => other,
        }
    }
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let v = if HEX_KEYS.contains(&k.as_str()) {
                        match v {
                            Value::Number(_) | Value::Array(_) => hex_all(v),
                            other => hexify(other),
                        }
                    } else {
                        hexify(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(hexify).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hexify_rewrites_address_like_keys_only() {
        let v = json!({
            "iova": 4096, "level": 4, "reason": 5,
            "steps": [{"address": 16, "index": 3, "entry": [1, 255], "decoded": "P"}],
            "outcome": {"translation": {"iova": 0, "output": 8192, "page_size": 4096, "perms": {"read": true}}},
            "pasid": null
        });
        let h = hexify(v);
        assert_eq!(h["iova"], "0x1000");
        assert_eq!(h["level"], 4);
        assert_eq!(h["reason"], 5);
        assert_eq!(h["steps"][0]["address"], "0x10");
        assert_eq!(h["steps"][0]["index"], 3);
        assert_eq!(h["steps"][0]["entry"], json!(["0x1", "0xff"]));
        assert_eq!(h["outcome"]["translation"]["output"], "0x2000");
        assert_eq!(h["outcome"]["translation"]["perms"]["read"], true);
        assert!(h["pasid"].is_null());
    }

    #[test]
    fn unknown_models_are_refused() {
        let mem: Arc<dyn DmaMemory> = Arc::new(crate::mem::TestMemory::new(0x1000));
        let irq: Arc<dyn InterruptSink> = Arc::new(super::super::memory::MsiLog::default());
        let e = build_target("amd-vi", mem.clone(), irq.clone())
            .err()
            .unwrap();
        assert!(
            e.contains("unknown model `amd-vi`") && e.contains("vtd"),
            "{e}"
        );
        let e = build_target("vtd,aw=12", mem, irq).err().unwrap();
        assert!(e.contains("aw"), "{e}");
    }
}
