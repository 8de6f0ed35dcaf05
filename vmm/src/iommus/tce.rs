//! POWER TCE specifics of the VMM's IOMMU unit: the hypervisor table pool reserved in e820, the PHB device tree for `iovmm tables`, and the monitor's JSON form of a lookup.

use std::sync::Arc;

use firmware_tables::fdt::{tce_fdt, RtasDdwTokens, TceFdtConfig, TceFdtWindow};
use iommu::tce::rtas::{CREATE, QUERY, REMOVE, RESET, RTAS_CALLS, TCE_BUID};
use iommu::tce::{LookupOutcome, Tce, TceConfig, TceLookup};
use serde_json::json;

use super::perms_string;

/// The hypervisor table pool when `--iommu tce` does not give `pool=`: 32 MiB at 128 MiB, reserved in e820. It
/// sits well above the kernel's boot footprint and below the initrd, which goes to the top of low RAM.
pub const DEFAULT_POOL: (u64, u64) = (0x0800_0000, 0x0200_0000);

/// The model's configuration as this platform instantiates it: a pool of hypervisor memory for the
/// hypercall interface's tables unless the option gave one.
pub fn platform_config(c: &TceConfig) -> TceConfig {
    let mut c = c.clone();
    if c.pool_size == 0 {
        (c.pool_base, c.pool_size) = DEFAULT_POOL;
    }
    c
}

/// The pool as an inclusive e820 reservation.
pub fn reserved(c: &TceConfig) -> Vec<(u64, u64)> {
    let c = platform_config(c);
    vec![(c.pool_base, c.pool_base + c.pool_size - 1)]
}

fn token(name: &str) -> u32 {
    RTAS_CALLS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, t)| *t)
}

/// The PHB's device tree as a PAPR guest would see it, built from the model's own windows and RTAS tokens.
pub fn fdt(c: &TceConfig) -> Result<Vec<u8>, String> {
    let model = Tce::new(
        platform_config(c),
        Arc::new(iommu::mem::TestMemory::new(0)),
        Arc::new(NoIrq),
    );
    let windows = model
        .windows()
        .into_iter()
        .filter(|w| w.enabled)
        .map(|w| TceFdtWindow {
            liobn: w.liobn,
            bus_offset: w.base,
            size: w.size,
            page_shift: w.page_shift,
        })
        .collect();
    let cfg = TceFdtConfig {
        buid: TCE_BUID,
        windows,
        rtas: RtasDdwTokens {
            query: token(QUERY),
            create: token(CREATE),
            remove: token(REMOVE),
            reset: token(RESET),
        },
    };
    tce_fdt(&cfg).map_err(|e| e.to_string())
}

struct NoIrq;

impl iommu::InterruptSink for NoIrq {
    fn msi(&self, _address: u64, _data: u32) {}
}

/// The monitor's `translate` answer for TCE, in the same shape as VT-d's (see [`super::lookup_to_json`]):
/// `steps` are the TCE table levels read (top level first, the last one the leaf TCE), then `result` or
/// `fault` (the EEH reason code); `lookup` is the model's answer (window, LIOBN, TCE index, cached TCE).
pub fn lookup_to_json(l: &TceLookup) -> serde_json::Value {
    let depth = l.levels.len();
    let steps: Vec<serde_json::Value> = l
        .levels
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let leaf = i + 1 == depth && l.tce == Some(r.entry);
            let rw = format!(
                "{}{}",
                if r.entry & 1 != 0 { 'R' } else { '-' },
                if r.entry & 2 != 0 { 'W' } else { '-' }
            );
            json!({
                "structure": if leaf { "TCE".to_string() } else { format!("TCE table L{}", r.level) },
                "depth": 0,
                "address": r.address,
                "index": r.index,
                "raw": r.entry,
                "decoded": if leaf {
                    format!("{rw} page {:#x}", r.entry & !0xfff)
                } else {
                    format!("{rw} next level {:#x}", r.entry & !0xfff)
                },
                "detail": r,
            })
        })
        .collect();
    let (result, fault) = match &l.outcome {
        LookupOutcome::Translation { translation } => (
            json!({
                "output": translation.translate(l.iova),
                "page_iova": translation.iova,
                "page_output": translation.output,
                "page_size": translation.page_size,
                "perms": perms_string(translation.perms),
                "stage": l.window.as_ref().map(|w| format!("window {} (LIOBN {:#x})", w.index, w.liobn)),
            }),
            serde_json::Value::Null,
        ),
        LookupOutcome::Fault {
            reason,
            name,
            description,
        } => (
            serde_json::Value::Null,
            json!({
                "reason": reason,
                "description": format!("{name}: {description}"),
                "step": depth.checked_sub(1),
                "recorded": true,
            }),
        ),
    };
    json!({
        "source": l.source_id,
        "pasid": null,
        "iova": l.iova,
        "access": l.access,
        "steps": steps,
        "result": result,
        "fault": fault,
        "lookup": l,
    })
}
