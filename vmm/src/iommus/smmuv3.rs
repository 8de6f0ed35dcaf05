//! SMMUv3 specifics of the VMM's IOMMU unit: its platform configuration, its firmware tables (IORT, and a
//! device-tree fragment for `iovmm tables`), and the monitor's JSON form of a lookup.

use firmware_tables::acpi::{build_iort, AcpiError, IortConfig};
use firmware_tables::fdt::smmuv3_fdt;
use iommu::smmuv3::{
    LookupResult, Smmuv3, Smmuv3Config, Smmuv3Lookup, Step, WalkPurpose, SMMUV3_MMIO_SIZE,
};
use iommu::RegisterWindow as _;
use serde_json::json;

use super::perms_string;
use crate::layout;

/// The x86 MSI window: device writes there are interrupts, so it is never a DMA address (a hole in every
/// stream's permitted ranges, as on VT-d).
pub const MSI_WINDOW: (u64, u64) = (0xfee0_0000, 0xfeef_ffff);

/// IDR0..IDR5 offsets (IHI0070 §6.3.1-6.3.6).
const IDR_OFFSETS: [u64; 6] = [0x0, 0x4, 0x8, 0xc, 0x10, 0x14];

/// The model's configuration as this platform instantiates it: the MSI window is a reserved hole.
pub fn platform_config(c: &Smmuv3Config) -> Smmuv3Config {
    let mut c = c.clone();
    if !c.reserved.contains(&MSI_WINDOW) {
        c.reserved.push(MSI_WINDOW);
    }
    c
}

/// IORT for one SMMUv3 at [`layout::SMMUV3_START`] in front of PCI segment 0.
pub fn iort(c: &Smmuv3Config) -> Result<Vec<u8>, AcpiError> {
    build_iort(&IortConfig::single_smmuv3(layout::SMMUV3_START, c.sid_bits))
}

/// The device-tree fragment (`iommu-map`, `#iommu-cells`) an FDT platform would publish, for `iovmm tables`.
pub fn fdt(c: &Smmuv3Config) -> Result<Vec<u8>, String> {
    smmuv3_fdt(layout::SMMUV3_START, SMMUV3_MMIO_SIZE, c.sid_bits).map_err(|e| e.to_string())
}

/// IDR0..IDR5 as the guest reads them.
pub fn id_registers(s: &Smmuv3) -> Vec<u64> {
    IDR_OFFSETS
        .iter()
        .map(|&off| u64::from(s.read32(off)))
        .collect()
}

/// The monitor's `translate` answer for an SMMUv3, in the same shape as VT-d's (see
/// [`super::lookup_to_json`]): `steps` (structure, address, index, raw, decoded, depth 1 for the stage-2 walks
/// of stage-1 table and CD addresses), then `result` or `fault` (event id, name); `lookup` is the model's answer.
pub fn lookup_to_json(l: &Smmuv3Lookup) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = l.steps.iter().map(step_json).collect();
    let (result, fault) = match &l.result {
        LookupResult::Translated { translation, path } => (
            json!({
                "output": translation.translate(l.iova),
                "page_iova": translation.iova,
                "page_output": translation.output,
                "page_size": translation.page_size,
                "perms": perms_string(translation.perms),
                "stage": path,
            }),
            serde_json::Value::Null,
        ),
        LookupResult::Event {
            id, name, recorded, ..
        } => (
            serde_json::Value::Null,
            json!({ "reason": id, "description": name, "step": l.steps.len().checked_sub(1), "recorded": recorded }),
        ),
        LookupResult::Aborted { why } => (
            serde_json::Value::Null,
            json!({ "reason": 0, "description": format!("aborted: {why}"), "step": null, "recorded": false }),
        ),
    };
    json!({
        "source": l.sid,
        "pasid": l.ssid,
        "iova": l.iova,
        "access": l.access,
        "steps": steps,
        "result": result,
        "fault": fault,
        "lookup": l,
    })
}

fn step_json(s: &Step) -> serde_json::Value {
    let (structure, depth, address, index, raw, decoded) = match s {
        Step::StreamTableL1 {
            address,
            index,
            desc,
        } => (
            "stream table L1".to_string(),
            0,
            *address,
            *index,
            json!(desc),
            String::new(),
        ),
        Step::Ste {
            address,
            sid,
            words,
            decoded,
        } => (
            "STE".into(),
            0,
            *address,
            u64::from(*sid),
            json!(words),
            decoded.clone(),
        ),
        Step::CdTableL1 {
            address,
            index,
            desc,
            ..
        } => (
            "CD table L1".into(),
            0,
            *address,
            *index,
            json!(desc),
            String::new(),
        ),
        Step::Cd {
            address,
            ssid,
            words,
            decoded,
            ..
        } => (
            "CD".into(),
            0,
            *address,
            u64::from(*ssid),
            json!(words),
            decoded.clone(),
        ),
        Step::Walk {
            stage,
            purpose,
            input,
            level,
            index,
            desc_addr,
            desc,
            desc_kind,
            ..
        } => {
            let nested = !matches!(purpose, WalkPurpose::Input);
            (
                format!("stage-{stage} L{level}"),
                u32::from(nested),
                *desc_addr,
                *index,
                json!(desc),
                format!("{desc_kind} (input {input:#x})"),
            )
        }
    };
    json!({
        "structure": structure,
        "depth": depth,
        "address": address,
        "index": index,
        "raw": raw,
        "decoded": decoded,
        "detail": s,
    })
}
