//! VT-d specifics of the VMM's IOMMU unit: interrupt remapping in front of KVM and the monitor's JSON
//! form of a lookup.

use std::sync::Arc;

use iommu::vtd::{Lookup, LookupOutcome, Structure, Vtd};
use serde_json::json;

use super::perms_string;
use crate::interrupts::InterruptRemapper;

/// The monitor's `translate` answer: every step (structure, address, index, raw entry, decoded fields and a
/// `depth`: 1 for the second-stage walks a nested lookup does for first-stage table addresses), then `result`
/// (output address of the IOVA, page, permissions, stage) or `fault` (reason, description, failing step).
/// `lookup` carries the model's full answer (A/D updates translate() would make, cached IOTLB entry).
pub fn lookup_to_json(l: &Lookup) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = l
        .steps
        .iter()
        .map(|s| {
            let (name, depth) = match s.structure {
                Structure::RootEntry => ("root entry".to_string(), 0),
                Structure::ContextEntry => ("context entry".to_string(), 0),
                Structure::PasidDirectory => ("PASID directory".to_string(), 0),
                Structure::PasidTable => ("PASID table".to_string(), 0),
                Structure::FirstStage { level } => (format!("first-stage L{level}"), 0),
                Structure::SecondStage { level, purpose, .. } => {
                    let nested = !matches!(purpose, iommu::vtd::SecondStagePurpose::Request);
                    (format!("second-stage L{level}"), u32::from(nested))
                }
            };
            json!({
                "structure": name,
                "depth": depth,
                "address": s.address,
                "index": s.index,
                "raw": s.entry,
                "decoded": s.decoded,
                "detail": s.structure,
            })
        })
        .collect();
    let (result, fault) = match &l.outcome {
        LookupOutcome::Translated { translation, stage } => (
            json!({
                "output": translation.translate(l.iova),
                "page_iova": translation.iova,
                "page_output": translation.output,
                "page_size": translation.page_size,
                "perms": perms_string(translation.perms),
                "stage": stage,
            }),
            serde_json::Value::Null,
        ),
        LookupOutcome::Fault {
            reason,
            description,
            step,
            recorded,
        } => (
            serde_json::Value::Null,
            json!({ "reason": reason, "description": description, "step": step, "recorded": recorded }),
        ),
        LookupOutcome::InterruptRange => (
            serde_json::Value::Null,
            json!({ "reason": 0, "description": "interrupt address range (not DMA)", "step": null }),
        ),
        LookupOutcome::BadSourceId => (
            serde_json::Value::Null,
            json!({ "reason": 0, "description": "not a PCI requester id", "step": null }),
        ),
    };
    json!({
        "source": l.source_id,
        "pasid": l.pasid,
        "iova": l.iova,
        "access": l.access,
        "steps": steps,
        "result": result,
        "fault": fault,
        "lookup": l,
    })
}

/// VT-d interrupt remapping in front of KVM (Intel VT-d 5.1): blocked requests were recorded by the unit.
pub(super) struct VtdRemapper(pub(super) Arc<Vtd>);

impl InterruptRemapper for VtdRemapper {
    fn remap(&self, source_id: u16, address: u64, data: u32) -> Option<(u64, u32)> {
        self.0
            .remap_msi(source_id, address, data)
            .ok()
            .map(|m| m.to_msi())
    }
}
