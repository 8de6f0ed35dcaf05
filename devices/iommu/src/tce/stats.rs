//! Counters for the monitor's `stats` and for tests.

use std::collections::BTreeMap;

use serde::Serialize;

/// A snapshot of the unit's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TceStats {
    /// DMA translations requested (any outcome).
    pub translations: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Table walks (cache misses that reached memory).
    pub walks: u64,
    /// Entries held now.
    pub cache_entries: u64,
    /// Faults by reason name ("PERMISSION"), including DMAs blocked while frozen ("FROZEN").
    pub faults: BTreeMap<String, u64>,
    /// Times the PE froze.
    pub freezes: u64,
    /// PE resets (register or `reset_pe`).
    pub pe_resets: u64,
    /// Hypercalls by name ("H_PUT_TCE"; unknown opcodes as "unknown"), and those not returning H_SUCCESS.
    pub hcalls: BTreeMap<String, u64>,
    pub hcall_failures: u64,
    /// RTAS calls by name, and those not returning 0.
    pub rtas_calls: BTreeMap<String, u64>,
    pub rtas_failures: u64,
    /// TCE_KILL writes: whole cache, by range; and entries they dropped.
    pub kills_all: u64,
    pub kills_range: u64,
    pub killed_entries: u64,
    /// TVE_CFG enables refused.
    pub tve_refused: u64,
    /// Hypervisor table pool: pages in all, pages in use.
    pub pool_pages: u64,
    pub pool_pages_used: u64,
}

impl TceStats {
    pub(crate) fn fault(&mut self, name: &str) {
        *self.faults.entry(name.to_string()).or_default() += 1;
    }

    pub(crate) fn hcall(&mut self, name: &str, ok: bool) {
        *self.hcalls.entry(name.to_string()).or_default() += 1;
        if !ok {
            self.hcall_failures += 1;
        }
    }

    pub(crate) fn rtas(&mut self, name: &str, ok: bool) {
        *self.rtas_calls.entry(name.to_string()).or_default() += 1;
        if !ok {
            self.rtas_failures += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_by_name() {
        let mut s = TceStats::default();
        s.fault("PERMISSION");
        s.fault("PERMISSION");
        s.hcall("H_PUT_TCE", true);
        s.hcall("H_PUT_TCE", false);
        s.rtas("ibm,remove-pe-dma-window", false);
        assert_eq!(s.faults["PERMISSION"], 2);
        assert_eq!((s.hcalls["H_PUT_TCE"], s.hcall_failures), (2, 1));
        assert_eq!(s.rtas_failures, 1);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["hcalls"]["H_PUT_TCE"], 2);
    }
}
