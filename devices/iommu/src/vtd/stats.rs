//! Counters for the monitor's `stats` and for tests.

use std::collections::BTreeMap;

use serde::Serialize;

/// A snapshot of a unit's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VtdStats {
    /// Translations requested (any outcome).
    pub translations: u64,
    pub iotlb_hits: u64,
    pub iotlb_misses: u64,
    pub iotlb_evictions: u64,
    /// Entries held now.
    pub iotlb_entries: u64,
    pub context_cache_entries: u64,
    pub pasid_cache_entries: u64,
    pub context_cache_hits: u64,
    pub context_cache_misses: u64,
    pub pasid_cache_hits: u64,
    pub pasid_cache_misses: u64,
    /// Page-table walks (IOTLB misses): second-stage, first-stage or nested (a nested walk, with its
    /// second-stage walks of the first-stage tables, counts once).
    pub walks: u64,
    /// Every fault returned, keyed by reason code ("0x06").
    pub faults_by_reason: BTreeMap<String, u64>,
    /// Faults written to a fault recording register.
    pub faults_recorded: u64,
    /// Faults not recorded because an FPD bit was set.
    pub faults_suppressed: u64,
    /// Faults not recorded because the recording registers were full (PFO).
    pub faults_dropped: u64,
    /// Invalidations by kind ("iotlb_page", "context_global", "wait", ...).
    pub invalidations: BTreeMap<String, u64>,
    /// Queued-invalidation descriptors executed.
    pub qi_descriptors: u64,
    /// Invalidation queue errors (IQE).
    pub qi_errors: u64,
    /// Interrupt requests remapped through an IRTE.
    pub interrupts_remapped: u64,
    /// Interrupt requests passed through unchanged (IRES clear, or compatibility format with CFIS).
    pub interrupts_passed_through: u64,
    pub iec_hits: u64,
    pub iec_misses: u64,
    /// Interrupt entry cache entries held now.
    pub iec_entries: u64,
    /// Faults delivered by [`super::Vtd::inject_fault`] (also counted in `faults_by_reason` and, when
    /// recorded, `faults_recorded`).
    pub faults_injected: u64,
    /// Injected faults still armed, over all sources.
    pub injected_faults_pending: u64,
    /// Invalidation-wait descriptors whose completion a hold delayed
    /// ([`super::Vtd::hold_invalidation_completion`]).
    pub waits_held: u64,
    /// Of those, the ones still waiting for the hold to expire.
    pub waits_held_pending: u64,
    /// Fault log lines written (DMA and interrupt-remapping faults).
    pub fault_log_lines: u64,
    /// Recorded faults whose log line the rate limit suppressed.
    pub fault_log_suppressed: u64,
}

impl VtdStats {
    pub(crate) fn fault(&mut self, code: u8) {
        *self
            .faults_by_reason
            .entry(format!("{code:#04x}"))
            .or_default() += 1;
    }

    pub(crate) fn invalidation(&mut self, kind: &str) {
        *self.invalidations.entry(kind.to_string()).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_json() {
        let mut s = VtdStats::default();
        s.fault(6);
        s.fault(6);
        s.fault(0x79);
        s.invalidation("iotlb_page");
        assert_eq!(s.faults_by_reason["0x06"], 2);
        assert_eq!(s.faults_by_reason["0x79"], 1);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["invalidations"]["iotlb_page"], 1);
        assert_eq!(json["faults_by_reason"]["0x06"], 2);
    }
}
