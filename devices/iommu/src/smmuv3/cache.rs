//! The SMMU's caches (IHI0070 §16.2 "Caching"): a configuration cache (STEs by StreamID, CDs by
//! StreamID and CD index) and a TLB of final translations.
//!
//! Rules this model keeps:
//! - Only successful results are cached: an invalid or ILLEGAL STE/CD and every fault are looked up
//!   again next time (§16.2: "structures that cause an error are not cached"), so software never needs
//!   to invalidate after making an entry valid.
//! - TLB entries are tagged like the hardware's (§16.2.1): VMID (STE.S2VMID when stage 2 is implemented,
//!   which also tags stage 1-only streams; 0 otherwise), ASID (stage 1 and nested entries), and the kind
//!   (stage 1 only, stage 2 only, nested = combined). All entries are treated as non-global (nG):
//!   never sharing an entry across ASIDs is always correct, and Linux maps everything nG anyway.
//! - Only final translations are cached (no walk cache), so the Leaf and TTL hints of TLBI commands
//!   never matter. A nested entry does not record which stage 2 pages it used: TLBI_S2_IPA drops every
//!   nested entry of the VMID (over-invalidation is always permitted).
//! - An entry filled by a read never answers a write (the write may need a dirty-state update by HTTU);
//!   an entry whose permissions refuse an access is a miss (the walk reports the fault).
//! - Capacity is bounded; eviction is oldest-first. Evicting never changes results.

use super::cd::Cd;
use super::ste::Ste;
use crate::bounded::Bounded;
use crate::request::{Access, Perms};

pub const STE_CAPACITY: usize = 1024;
pub const CD_CAPACITY: usize = 1024;
pub const TLB_CAPACITY: usize = 4096;

/// The page sizes (log2) any granule's leaves can have: 4K (4K, 2M, 1G), 16K (16K, 32M, 64G), 64K
/// (64K, 512M, 4T).
const SHIFTS: [u8; 9] = [12, 14, 16, 21, 25, 29, 30, 36, 42];

/// What a TLB entry translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlbKind {
    S1,
    S2,
    Nested,
}

/// A TLB tag: VMID, ASID (0 for stage 2-only entries) and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlbTag {
    pub vmid: u16,
    pub asid: u16,
    pub kind: TlbKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TlbKey {
    tag: TlbTag,
    privileged: bool,
    page: u64,
    shift: u8,
}

/// A cached final translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// Output address of the page.
    pub output: u64,
    pub perms: Perms,
    /// Filled by a write (so it may answer writes).
    pub by_write: bool,
}

/// The configuration cache and the TLB.
pub struct Caches {
    ste: Bounded<u32, Ste>,
    /// (SID, CD index) -> CD, and whether the STE had no substreams (S1CDMax = 0: CFGI_CD's SSID is
    /// then ignored).
    cd: Bounded<(u32, u32), (Cd, bool)>,
    tlb: Bounded<TlbKey, TlbEntry>,
    /// Bit n set: the TLB may hold pages of size 2^n. A superset (evictions do not clear bits; every
    /// invalidation recomputes it exactly), so a lookup probes only the page sizes in use instead of all
    /// nine (a miss with 4 KiB pages costs one hash probe, not nine).
    tlb_shifts: u64,
}

impl Default for Caches {
    fn default() -> Self {
        Self::new()
    }
}

impl Caches {
    pub fn new() -> Self {
        Self {
            ste: Bounded::new(STE_CAPACITY),
            cd: Bounded::new(CD_CAPACITY),
            tlb: Bounded::new(TLB_CAPACITY),
            tlb_shifts: 0,
        }
    }

    pub fn ste(&self, sid: u32) -> Option<&Ste> {
        self.ste.get(&sid)
    }

    pub fn insert_ste(&mut self, sid: u32, ste: Ste) {
        self.ste.insert(sid, ste);
    }

    pub fn cd(&self, sid: u32, index: u32) -> Option<&Cd> {
        self.cd.get(&(sid, index)).map(|(cd, _)| cd)
    }

    pub fn insert_cd(&mut self, sid: u32, index: u32, cd: Cd, single: bool) {
        self.cd.insert((sid, index), (cd, single));
    }

    /// The entry for `iova` under `tag` that may answer `access`.
    pub fn tlb_lookup(
        &self,
        tag: TlbTag,
        privileged: bool,
        iova: u64,
        access: Access,
    ) -> Option<(u64, u8, TlbEntry)> {
        let present = self.tlb_shifts;
        SHIFTS
            .iter()
            .filter(|&&s| present & (1 << s) != 0)
            .find_map(|&shift| {
                let key = TlbKey {
                    tag,
                    privileged,
                    page: iova >> shift,
                    shift,
                };
                let e = self.tlb.get(&key)?;
                let usable = e.perms.allows(access) && (access == Access::Read || e.by_write);
                usable.then_some((key.page << shift, shift, *e))
            })
    }

    pub fn tlb_insert(&mut self, tag: TlbTag, privileged: bool, iova: u64, shift: u8, e: TlbEntry) {
        if !SHIFTS.contains(&shift) {
            return;
        }
        let key = TlbKey {
            tag,
            privileged,
            page: iova >> shift,
            shift,
        };
        self.tlb.insert(key, e);
        self.tlb_shifts |= 1 << shift;
    }

    pub fn ste_len(&self) -> usize {
        self.ste.len()
    }

    pub fn cd_len(&self) -> usize {
        self.cd.len()
    }

    pub fn tlb_len(&self) -> usize {
        self.tlb.len()
    }

    // ---- configuration invalidation (§4.3) ----

    /// CMD_CFGI_STE / CFGI_STE_RANGE / CFGI_ALL: the STEs of SIDs in `first..=last` and every CD
    /// cached under them (a CD is only reachable through its STE).
    pub fn inval_ste_range(&mut self, first: u32, last: u32) -> u64 {
        let r = first..=last;
        self.ste.retain(|sid, _| !r.contains(sid)) + self.cd.retain(|(sid, _), _| !r.contains(sid))
    }

    /// CMD_CFGI_CD: CD `ssid` of `sid` (every CD of `sid` cached while its STE had S1CDMax = 0).
    pub fn inval_cd(&mut self, sid: u32, ssid: u32) -> u64 {
        self.cd
            .retain(|(s, i), (_, single)| !(*s == sid && (*i == ssid || *single)))
    }

    /// CMD_CFGI_CD_ALL: every CD of `sid`.
    pub fn inval_cd_all(&mut self, sid: u32) -> u64 {
        self.cd.retain(|(s, _), _| *s != sid)
    }

    pub fn inval_config_all(&mut self) -> u64 {
        self.ste.clear() + self.cd.clear()
    }

    // ---- TLB invalidation (§4.4) ----

    fn tlb_retain(&mut self, mut drop: impl FnMut(&TlbKey) -> bool) -> u64 {
        let mut shifts = 0u64;
        let dropped = self.tlb.retain(|k, _| {
            let keep = !drop(k);
            if keep {
                shifts |= 1 << k.shift;
            }
            keep
        });
        self.tlb_shifts = shifts;
        dropped
    }

    /// CMD_TLBI_NH_ALL: stage 1 and nested entries of `vmid`.
    pub fn tlbi_nh_all(&mut self, vmid: u16) -> u64 {
        self.tlb_retain(|k| k.tag.vmid == vmid && k.tag.kind != TlbKind::S2)
    }

    /// CMD_TLBI_NH_ASID.
    pub fn tlbi_nh_asid(&mut self, vmid: u16, asid: u16) -> u64 {
        self.tlb_retain(|k| k.tag.vmid == vmid && k.tag.kind != TlbKind::S2 && k.tag.asid == asid)
    }

    /// CMD_TLBI_NH_VA (`asid` Some) / NH_VAA (None): stage 1 and nested entries overlapping
    /// `first..=last`.
    pub fn tlbi_nh_va(&mut self, vmid: u16, asid: Option<u16>, first: u64, last: u64) -> u64 {
        self.tlb_retain(|k| {
            k.tag.vmid == vmid
                && k.tag.kind != TlbKind::S2
                && asid.is_none_or(|a| a == k.tag.asid)
                && overlaps(k, first, last)
        })
    }

    /// CMD_TLBI_S2_IPA: stage 2-only entries overlapping the IPA range, and every nested entry of
    /// `vmid` (they do not record their IPAs).
    pub fn tlbi_s2_ipa(&mut self, vmid: u16, first: u64, last: u64) -> u64 {
        self.tlb_retain(|k| {
            k.tag.vmid == vmid
                && (k.tag.kind == TlbKind::Nested
                    || (k.tag.kind == TlbKind::S2 && overlaps(k, first, last)))
        })
    }

    /// CMD_TLBI_S12_VMALL: every entry of `vmid`.
    pub fn tlbi_s12_vmall(&mut self, vmid: u16) -> u64 {
        self.tlb_retain(|k| k.tag.vmid == vmid)
    }

    /// CMD_TLBI_NSNH_ALL: everything.
    pub fn tlbi_all(&mut self) -> u64 {
        self.tlb_shifts = 0;
        self.tlb.clear()
    }
}

fn overlaps(k: &TlbKey, first: u64, last: u64) -> bool {
    let start = k.page << k.shift;
    let end = start | ((1u64 << k.shift) - 1);
    start <= last && first <= end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(vmid: u16, asid: u16, kind: TlbKind) -> TlbTag {
        TlbTag { vmid, asid, kind }
    }

    fn entry(output: u64, by_write: bool) -> TlbEntry {
        TlbEntry {
            output,
            perms: Perms::RW,
            by_write,
        }
    }

    #[test]
    fn lookup_respects_tags_sizes_and_write_fills() {
        let mut c = Caches::new();
        let t = tag(1, 2, TlbKind::S1);
        c.tlb_insert(t, false, 0x20_0000, 21, entry(0x4000_0000, false));
        let (base, shift, e) = c.tlb_lookup(t, false, 0x2f_f123, Access::Read).unwrap();
        assert_eq!((base, shift, e.output), (0x20_0000, 21, 0x4000_0000));
        assert!(
            c.tlb_lookup(t, false, 0x20_0000, Access::Write).is_none(),
            "read fill"
        );
        assert!(c.tlb_lookup(t, true, 0x20_0000, Access::Read).is_none());
        assert!(c
            .tlb_lookup(tag(1, 3, TlbKind::S1), false, 0x20_0000, Access::Read)
            .is_none());
        c.tlb_insert(t, false, 0x20_0000, 21, entry(0x4000_0000, true));
        assert!(c.tlb_lookup(t, false, 0x20_0000, Access::Write).is_some());
    }

    #[test]
    fn tlbi_scopes() {
        let mut c = Caches::new();
        let s1 = tag(1, 2, TlbKind::S1);
        let s1b = tag(1, 3, TlbKind::S1);
        let s2 = tag(1, 0, TlbKind::S2);
        let n = tag(1, 2, TlbKind::Nested);
        let other = tag(2, 2, TlbKind::S1);
        let fill = |c: &mut Caches| {
            for t in [s1, s1b, s2, n, other] {
                c.tlb_insert(t, false, 0x1000, 12, entry(0x9000, true));
            }
        };
        fill(&mut c);
        assert_eq!(c.tlbi_nh_asid(1, 2), 2);
        assert_eq!(c.tlb_len(), 3);
        c.tlbi_all();
        fill(&mut c);
        assert_eq!(c.tlbi_nh_va(1, None, 0x1fff, 0x1fff), 3);
        assert_eq!(c.tlbi_nh_va(1, None, 0x2000, 0x3000), 0);
        c.tlbi_all();
        fill(&mut c);
        assert_eq!(c.tlbi_s2_ipa(1, 0x5000, 0x5fff), 1, "nested only");
        assert_eq!(c.tlbi_s2_ipa(1, 0x1000, 0x1000), 1, "the S2 entry");
        assert_eq!(c.tlbi_nh_all(1), 2);
        assert_eq!(c.tlbi_s12_vmall(2), 1);
        assert_eq!(c.tlb_len(), 0);
    }

    #[test]
    fn bounded_eviction() {
        let mut c = Caches::new();
        let t = tag(0, 0, TlbKind::S2);
        for i in 0..(TLB_CAPACITY as u64 + 10) {
            c.tlb_insert(t, false, i << 12, 12, entry(0, false));
        }
        assert_eq!(c.tlb_len(), TLB_CAPACITY);
        assert!(
            c.tlb_lookup(t, false, 0, Access::Read).is_none(),
            "oldest evicted"
        );
    }
}
