//! Counters for the monitor's `stats` and for tests.

use std::collections::BTreeMap;

use serde::Serialize;

/// A snapshot of the SMMU's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Smmuv3Stats {
    /// Translations requested (any outcome).
    pub translations: u64,
    pub tlb_hits: u64,
    pub tlb_misses: u64,
    pub ste_cache_hits: u64,
    pub ste_cache_misses: u64,
    pub cd_cache_hits: u64,
    pub cd_cache_misses: u64,
    /// Translation table walks (TLB misses that reached the walker; a nested walk counts once).
    pub walks: u64,
    /// Entries held now.
    pub tlb_entries: u64,
    pub ste_cache_entries: u64,
    pub cd_cache_entries: u64,
    /// Events raised, keyed by name ("F_TRANSLATION"), recorded or not.
    pub events: BTreeMap<String, u64>,
    /// Events written to the event queue.
    pub events_recorded: u64,
    /// Events not recorded because CD.R / STE.S2R / CR2.RECINVSID said so.
    pub events_suppressed: u64,
    /// Events lost: event queue disabled, full (overflow), or its memory not writable.
    pub events_lost: u64,
    /// Transactions terminated without an event (STE abort, GBPA abort).
    pub aborts: u64,
    /// Commands executed (including CMD_SYNC), and by name.
    pub commands: u64,
    pub commands_by_name: BTreeMap<String, u64>,
    pub cmd_syncs: u64,
    /// Command errors (CERROR_ILL / CERROR_ABT).
    pub command_errors: u64,
    /// GERROR bits raised (each activation of an error).
    pub gerrors: u64,
    /// MSIs sent to the interrupt sink, and MSI writes that landed in guest RAM.
    pub msis: u64,
    pub msi_memory_writes: u64,
    /// Events delivered by `inject_event`, and injections still armed.
    pub events_injected: u64,
    pub injected_pending: u64,
}

impl Smmuv3Stats {
    pub(crate) fn event(&mut self, name: &str) {
        *self.events.entry(name.to_string()).or_default() += 1;
    }

    pub(crate) fn command(&mut self, name: &str) {
        self.commands += 1;
        *self.commands_by_name.entry(name.to_string()).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_json() {
        let mut s = Smmuv3Stats::default();
        s.event("F_TRANSLATION");
        s.event("F_TRANSLATION");
        s.command("CMD_SYNC");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["events"]["F_TRANSLATION"], 2);
        assert_eq!(json["commands_by_name"]["CMD_SYNC"], 1);
        assert_eq!(json["commands"], 1);
    }
}
