//! The unit's translation caches (VT-d 4.x section 6.2): context cache, PASID cache and IOTLB.
//!
//! Rules this model keeps:
//! - Only successful lookups are cached: CAP.CM is 0, so not-present and erroneous entries never are
//!   (6.1), and software need not invalidate after making an entry present.
//! - Entries are tagged like the hardware's: context entries by source id (and the legacy DID), PASID
//!   entries by PASID and DID, IOTLB entries by DID, PASID (or none in legacy mode) and page. An
//!   invalidation drops every entry it names and nothing else, except where noted.
//! - IOTLB entries remember their [`Stage`]: second-stage-only ones answer the IOTLB invalidation
//!   (6.5.2.3), first-stage-only ones the PASID-based IOTLB invalidation (6.5.2.4), nested ones both:
//!   by IOVA for a PASID-based one, and — since a nested result depends on second-stage mappings whose
//!   guest-physical addresses the entry does not record — every nested entry of the DID for a
//!   domain- or page-selective IOTLB invalidation. Only combined (final) translations are cached:
//!   there is no paging-structure cache to invalidate.
//! - Pass-through results are not put in the IOTLB (the context / PASID caches already hold all they
//!   need), which keeps the PGTT-dependent IOTLB-vs-PASID-IOTLB invalidation rules trivially right.
//! - Capacity is bounded; eviction is oldest-first. Evicting is always allowed and never changes results.

use super::first_stage::FsAttrs;
use super::structures::{LegacyContext, PasidEntry, ScalableContext};
use super::walk::Stage;
use crate::bounded::Bounded;
use crate::request::Perms;

pub(crate) const CONTEXT_CAPACITY: usize = 512;
pub(crate) const PASID_CAPACITY: usize = 1024;
pub(crate) const IOTLB_CAPACITY: usize = 1024;

/// The PASID tag of IOTLB entries made for legacy-mode (PASID-less) translations.
pub(crate) const NO_PASID: u32 = u32::MAX;

/// A cached context entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CachedContext {
    Legacy(LegacyContext),
    Scalable(ScalableContext),
}

/// Whether `sid` is selected by a device-selective invalidation of `target` with function mask `fm`
/// (FM 0: no bits masked, 1: SID bit 2, 2: bits 2:1, 3: bits 2:0; VT-d 4.x 6.5.2.1).
pub(crate) fn sid_matches(sid: u16, target: u16, fm: u8) -> bool {
    let mask: u16 = match fm & 3 {
        0 => 0,
        1 => 0b100,
        2 => 0b110,
        _ => 0b111,
    };
    sid & !mask == target & !mask
}

pub(crate) struct ContextCache {
    entries: Bounded<u16, CachedContext>,
}

impl ContextCache {
    pub fn new() -> Self {
        Self {
            entries: Bounded::new(CONTEXT_CAPACITY),
        }
    }

    pub fn get(&self, sid: u16) -> Option<CachedContext> {
        self.entries.get(&sid).copied()
    }

    pub fn insert(&mut self, sid: u16, c: CachedContext) -> u64 {
        self.entries.insert(sid, c)
    }

    pub fn invalidate_all(&mut self) {
        self.entries.clear();
    }

    /// Domain-selective: legacy entries of `did`. Scalable-mode context entries carry no DID (the
    /// descriptor's DID is ignored in scalable mode, 6.5.2.1), so they are all dropped.
    pub fn invalidate_domain(&mut self, did: u16) {
        self.entries.retain(|_, c| match c {
            CachedContext::Legacy(l) => l.did != did,
            CachedContext::Scalable(_) => false,
        });
    }

    /// Device-selective: every entry of the selected source ids (the DID is not compared: in scalable
    /// mode the hardware ignores it, and in legacy mode it must equal the entry's anyway).
    pub fn invalidate_device(&mut self, sid: u16, fm: u8) {
        self.entries.retain(|s, _| !sid_matches(*s, sid, fm));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

pub(crate) struct PasidCache {
    /// (source id, PASID) -> entry; the entry's DID tags it for invalidation.
    entries: Bounded<(u16, u32), PasidEntry>,
}

impl PasidCache {
    pub fn new() -> Self {
        Self {
            entries: Bounded::new(PASID_CAPACITY),
        }
    }

    pub fn get(&self, sid: u16, pasid: u32) -> Option<PasidEntry> {
        self.entries.get(&(sid, pasid)).copied()
    }

    pub fn insert(&mut self, sid: u16, pasid: u32, e: PasidEntry) -> u64 {
        self.entries.insert((sid, pasid), e)
    }

    pub fn invalidate_all(&mut self) {
        self.entries.clear();
    }

    pub fn invalidate_domain(&mut self, did: u16) {
        self.entries.retain(|_, e| e.did != did);
    }

    pub fn invalidate_pasid(&mut self, did: u16, pasid: u32) {
        self.entries
            .retain(|(_, p), e| !(e.did == did && *p == pasid));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IotlbKey {
    pub did: u16,
    /// PASID, or [`NO_PASID`] for legacy-mode translations.
    pub pasid: u32,
    pub shift: u32,
    pub page: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IotlbEntry {
    pub output: u64,
    /// Second-stage permissions (all set for first-stage-only entries).
    pub perms: Perms,
    pub stage: Stage,
    /// First-stage and nested entries: what the first stage grants (checked per request privilege).
    pub fs: Option<FsAttrs>,
}

/// An IOTLB invalidation's address range: 2^AM pages from `addr` aligned down (VT-d 4.x 6.5.2.3).
pub(crate) fn am_range(addr: u64, am: u32) -> (u64, u64) {
    let bits = (12 + am).min(64);
    if bits >= 64 {
        return (0, u64::MAX);
    }
    let size = 1u64 << bits;
    let first = addr & !(size - 1);
    (first, first + (size - 1))
}

pub(crate) struct Iotlb {
    entries: Bounded<IotlbKey, IotlbEntry>,
}

impl Iotlb {
    pub fn new() -> Self {
        Self {
            entries: Bounded::new(IOTLB_CAPACITY),
        }
    }

    /// The entry covering `iova` (any page size).
    pub fn lookup(&self, did: u16, pasid: u32, iova: u64) -> Option<(IotlbKey, IotlbEntry)> {
        [12u32, 21, 30].into_iter().find_map(|shift| {
            let key = IotlbKey {
                did,
                pasid,
                shift,
                page: iova >> shift,
            };
            self.entries.get(&key).map(|e| (key, *e))
        })
    }

    pub fn insert(&mut self, key: IotlbKey, e: IotlbEntry) -> u64 {
        self.entries.insert(key, e)
    }

    fn overlaps(k: &IotlbKey, first: u64, last: u64) -> bool {
        let start = k.page << k.shift;
        let end = start + ((1u64 << k.shift) - 1);
        start <= last && first <= end
    }

    /// Global IOTLB invalidation: everything.
    pub fn invalidate_all(&mut self) -> u64 {
        self.entries.clear()
    }

    /// Domain-selective IOTLB invalidation (IOTLB descriptor / register): second-stage and nested
    /// mappings of `did` for every PASID (and legacy ones).
    pub fn invalidate_domain(&mut self, did: u16) -> u64 {
        self.entries
            .retain(|k, e| !(k.did == did && e.stage != Stage::First))
    }

    /// Page-selective IOTLB invalidation: second-stage mappings of `did` overlapping the range (a
    /// second-stage input range), and every nested mapping of `did` (its second-stage input is not
    /// recorded, so any of them may depend on the range).
    pub fn invalidate_range(&mut self, did: u16, first: u64, last: u64) -> u64 {
        self.entries.retain(|k, e| {
            !(k.did == did
                && match e.stage {
                    Stage::Second => Self::overlaps(k, first, last),
                    Stage::Nested => true,
                    Stage::First => false,
                })
        })
    }

    /// PASID-based IOTLB invalidation (non-global, all in PASID): first-stage and nested mappings of
    /// (DID, PASID).
    pub fn invalidate_pasid(&mut self, did: u16, pasid: u32) -> u64 {
        self.entries
            .retain(|k, e| !(k.did == did && k.pasid == pasid && e.stage != Stage::Second))
    }

    /// PASID-based IOTLB page-selective invalidation within a PASID: first-stage and nested mappings
    /// overlapping the (first-stage input) range.
    pub fn invalidate_pasid_range(&mut self, did: u16, pasid: u32, first: u64, last: u64) -> u64 {
        self.entries.retain(|k, e| {
            !(k.did == did
                && k.pasid == pasid
                && e.stage != Stage::Second
                && Self::overlaps(k, first, last))
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// All of a unit's caches.
pub(crate) struct Caches {
    pub context: ContextCache,
    pub pasid: PasidCache,
    pub iotlb: Iotlb,
}

impl Caches {
    pub fn new() -> Self {
        Self {
            context: ContextCache::new(),
            pasid: PasidCache::new(),
            iotlb: Iotlb::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stage: Stage) -> IotlbEntry {
        IotlbEntry {
            output: 0,
            perms: Perms::RW,
            stage,
            fs: None,
        }
    }

    fn key(did: u16, shift: u32, iova: u64) -> IotlbKey {
        IotlbKey {
            did,
            pasid: NO_PASID,
            shift,
            page: iova >> shift,
        }
    }

    #[test]
    fn page_selective_drops_exactly_the_covered_range() {
        let mut t = Iotlb::new();
        for page in 0..16u64 {
            t.insert(key(1, 12, page << 12), entry(Stage::Second));
            t.insert(key(2, 12, page << 12), entry(Stage::Second));
        }
        t.insert(key(1, 21, 0x20_0000), entry(Stage::Second));
        // AM=2: pages 4..=7 of domain 1 (address 0x5000 is aligned down to 0x4000).
        let (first, last) = am_range(0x5000, 2);
        assert_eq!((first, last), (0x4000, 0x7fff));
        assert_eq!(t.invalidate_range(1, first, last), 4);
        for page in 0..16u64 {
            let hit = t.lookup(1, NO_PASID, page << 12).is_some();
            assert_eq!(hit, !(4..8).contains(&page), "page {page}");
            assert!(t.lookup(2, NO_PASID, page << 12).is_some());
        }
        // A 2 MiB entry is dropped by any overlapping page invalidation.
        assert!(t.lookup(1, NO_PASID, 0x2f_f000).is_some());
        assert_eq!(t.invalidate_range(1, 0x3f_f000, 0x3f_ffff), 1);
        assert!(t.lookup(1, NO_PASID, 0x2f_f000).is_none());
        assert_eq!(t.invalidate_domain(2), 16);
        assert_eq!(t.len(), 12);
        assert_eq!(am_range(0x1234_5000, 60), (0, u64::MAX));
    }

    #[test]
    fn stage_selects_the_invalidation_kind() {
        let mut t = Iotlb::new();
        let k = IotlbKey {
            did: 3,
            pasid: 7,
            shift: 12,
            page: 1,
        };
        t.insert(k, entry(Stage::First));
        assert_eq!(
            t.invalidate_domain(3),
            0,
            "IOTLB DSI keeps first-stage entries"
        );
        assert_eq!(t.invalidate_pasid(3, 8), 0);
        assert_eq!(t.invalidate_pasid_range(3, 7, 0x1000, 0x1fff), 1);
        t.insert(k, entry(Stage::Second));
        assert_eq!(
            t.invalidate_pasid(3, 7),
            0,
            "PASID-IOTLB keeps second-stage entries"
        );
        assert_eq!(t.invalidate_all(), 1);
    }

    #[test]
    fn nested_entries_answer_both_kinds() {
        let mut t = Iotlb::new();
        let k = |pasid, page| IotlbKey {
            did: 3,
            pasid,
            shift: 12,
            page,
        };
        let fill = |t: &mut Iotlb| {
            t.insert(k(7, 1), entry(Stage::Nested));
            t.insert(k(7, 2), entry(Stage::Nested));
            t.insert(k(8, 0x100), entry(Stage::Nested));
            t.insert(k(7, 3), entry(Stage::First));
            t.insert(k(7, 4), entry(Stage::Second));
        };
        fill(&mut t);
        // A page-selective IOTLB invalidation anywhere in DID 3 drops every nested entry of it (their
        // second-stage inputs are unknown), the matching second-stage one, and no first-stage one.
        assert_eq!(t.invalidate_range(3, 0x4000, 0x4fff), 4);
        assert_eq!(t.len(), 1);
        assert!(t.lookup(3, 7, 0x3000).is_some());
        assert_eq!(t.invalidate_range(4, 0, u64::MAX), 0, "another DID");
        t.invalidate_all();
        fill(&mut t);
        assert_eq!(t.invalidate_domain(3), 4, "DSI: nested + second-stage");
        t.invalidate_all();
        fill(&mut t);
        // PASID-based page-selective: by first-stage input address, nested and first-stage alike.
        assert_eq!(t.invalidate_pasid_range(3, 7, 0x2000, 0x3fff), 2);
        assert!(t.lookup(3, 7, 0x1000).is_some() && t.lookup(3, 8, 0x10_0000).is_some());
        assert_eq!(t.invalidate_pasid(3, 7), 1);
        assert_eq!(
            t.len(),
            2,
            "PASID 8's nested entry and the second-stage one"
        );
    }

    #[test]
    fn capacity_is_bounded_and_evictions_counted() {
        let mut t = Iotlb::new();
        let mut evicted = 0;
        for page in 0..(IOTLB_CAPACITY as u64 + 10) {
            evicted += t.insert(key(1, 12, page << 12), entry(Stage::Second));
        }
        assert_eq!(evicted, 10);
        assert_eq!(t.len(), IOTLB_CAPACITY);
        assert!(t.lookup(1, NO_PASID, 0).is_none(), "oldest evicted");
        // Insert/invalidate churn keeps the order queue bounded.
        for i in 0..10_000u64 {
            t.insert(key(9, 12, i << 12), entry(Stage::Second));
            t.invalidate_domain(9);
        }
        assert!(t.entries.queued() <= 2 * IOTLB_CAPACITY + 1);
    }

    #[test]
    fn function_mask() {
        assert!(sid_matches(0x18, 0x18, 0));
        assert!(!sid_matches(0x1c, 0x18, 0));
        assert!(sid_matches(0x1c, 0x18, 1));
        assert!(!sid_matches(0x1a, 0x18, 1));
        assert!(sid_matches(0x1f, 0x18, 3));
        assert!(!sid_matches(0x20, 0x18, 3));
    }
}
