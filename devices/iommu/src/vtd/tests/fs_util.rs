//! Fixtures for first-stage and nested tests: IA-32e table building (in host-physical memory, or in a
//! guest-physical space behind a second stage), Linux-like PASID entries and PASID-based descriptors.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::*;

pub(super) const P: u64 = 1;
pub(super) const RW: u64 = 1 << 1;
pub(super) const US: u64 = 1 << 2;
pub(super) const A: u64 = 1 << 5;
pub(super) const D: u64 = 1 << 6;
pub(super) const PS: u64 = 1 << 7;
pub(super) const XD: u64 = 1 << 63;
/// Non-leaf entries as Linux writes them for first-level domains (present, writable, user, accessed)
/// minus A, so tests see the unit set it.
pub(super) const TABLE: u64 = P | RW | US;

/// Where first-stage tables live, as first-stage entries address them.
pub(super) trait Space {
    /// A zeroed 4 KiB page for a table.
    fn table(&self) -> u64;
    fn get(&self, addr: u64) -> u64;
    fn set(&self, addr: u64, v: u64);
}

impl Space for Fx {
    fn table(&self) -> u64 {
        self.alloc()
    }
    fn get(&self, addr: u64) -> u64 {
        self.rd(addr)
    }
    fn set(&self, addr: u64, v: u64) {
        self.wr(addr, v)
    }
}

/// The address of the first-stage entry for `iova` at the level of 2^shift-byte pages, allocating
/// intermediate tables (`TABLE` flags) on the way.
pub(super) fn fs_slot(s: &impl Space, top: u64, levels: u32, iova: u64, shift: u32) -> u64 {
    let mut table = top;
    for level in (1..=levels).rev() {
        let lshift = 12 + 9 * (level - 1);
        let slot = table + ((iova >> lshift) & 0x1ff) * 8;
        if lshift == shift {
            return slot;
        }
        let e = s.get(slot);
        table = if e & P == 0 {
            let t = s.table();
            s.set(slot, t | TABLE);
            t
        } else {
            e & 0x000f_ffff_ffff_f000
        };
    }
    panic!("no level with 2^{shift}-byte pages");
}

/// Maps `iova` to `pa` with a 2^shift-byte first-stage leaf carrying `flags` (P is added; PS too
/// for large pages).
pub(super) fn fs_map(
    s: &impl Space,
    top: u64,
    levels: u32,
    iova: u64,
    pa: u64,
    shift: u32,
    flags: u64,
) {
    let slot = fs_slot(s, top, levels, iova, shift);
    s.set(slot, pa | flags | P | if shift > 12 { PS } else { 0 });
}

/// A scalable-mode unit brought up the Linux way, with SID's context entry pointing at `dir`
/// (PASIDs 0..8192, PASIDE set, RID_PASID 0).
pub(super) struct Sm {
    pub fx: Fx,
    pub root: u64,
    pub dir: u64,
    pub q: Queue,
}

pub(super) fn sm_setup(opts: &str) -> Sm {
    let fx = Fx::new(opts);
    let root = fx.alloc();
    let dir = fx.alloc();
    let q = linux_bringup(&fx, root, true);
    fx.set_sm_context(root, SID, [dir | 1 << 3 | 1, 0, 0, 0]);
    Sm { fx, root, dir, q }
}

/// intel_pasid_setup_first_level: FSPTPTR, FLPM, DID, AW = 2 (the unit's AGAW), PWSNP, PGTT 001b.
pub(super) fn fl_entry(fsptptr: u64, did: u16, five_level: bool) -> [u64; 8] {
    [
        1 << 6 | 2 << 2 | 1,
        u64::from(did) | 1 << 23,
        fsptptr | u64::from(five_level) << 2,
        0,
        0,
        0,
        0,
        0,
    ]
}

/// intel_pasid_setup_nested: SLPTPTR + AW of the parent, FSPTPTR (a GPA), SRE/WPE, DID, PGTT 011b.
pub(super) fn nested_entry(
    slptptr: u64,
    aw_code: u64,
    fsptptr: u64,
    did: u16,
    (sre, wpe): (bool, bool),
) -> [u64; 8] {
    [
        slptptr | 3 << 6 | aw_code << 2 | 1,
        u64::from(did) | 1 << 23,
        fsptptr | u64::from(sre) | u64::from(wpe) << 4,
        0,
        0,
        0,
        0,
        0,
    ]
}

/// PASID-based IOTLB invalidation, all in PASID (6.5.2.4, granularity 2).
pub(super) fn piotlb_pasid(did: u16, pasid: u32) -> [u64; 4] {
    [
        6 | 2 << 4 | u64::from(did) << 16 | u64::from(pasid) << 32,
        0,
        0,
        0,
    ]
}

/// PASID-based IOTLB invalidation, page-selective within PASID (granularity 3).
pub(super) fn piotlb_page(did: u16, pasid: u32, addr: u64, am: u64) -> [u64; 4] {
    [
        6 | 3 << 4 | u64::from(did) << 16 | u64::from(pasid) << 32,
        addr | am,
        0,
        0,
    ]
}

/// A request with PASID and privilege.
pub(super) fn preq(pasid: Option<u32>, iova: u64, access: Access, privileged: bool) -> DmaRequest {
    DmaRequest {
        source_id: u32::from(SID),
        pasid,
        iova,
        access,
        privileged,
        kind: RequestKind::Untranslated,
    }
}

/// A guest-physical address space behind a second-stage table (a nest parent): pages handed out at
/// GPAs far from where they really are (beyond the 16 MiB of test RAM), so a walker that forgets to
/// translate a first-stage table address reads outside RAM.
pub(super) struct GpaSpace<'a> {
    pub fx: &'a Fx,
    /// Top of the second-stage table (host-physical).
    pub s2_top: u64,
    /// Its levels: 3 (AW 1, 39-bit), 4 (AW 2) or 5 (AW 3).
    pub levels: u32,
    map: RefCell<BTreeMap<u64, u64>>,
    next_gpa: RefCell<u64>,
}

/// Where GpaSpace hands out pages (4 GiB + 1 MiB, inside a 48-bit width).
pub(super) const GPA_BASE: u64 = 0x1_0010_0000;

impl<'a> GpaSpace<'a> {
    pub fn with_levels(fx: &'a Fx, levels: u32) -> Self {
        Self {
            fx,
            s2_top: fx.alloc(),
            levels,
            map: RefCell::new(BTreeMap::new()),
            next_gpa: RefCell::new(GPA_BASE),
        }
    }

    /// Maps `gpa` to `hpa` in the second stage (4 KiB, with the given R/W).
    pub fn map(&self, gpa: u64, hpa: u64, rw: (bool, bool)) {
        self.fx.map(self.s2_top, self.levels, gpa, hpa, 12, rw);
        self.map.borrow_mut().insert(gpa & !0xfff, hpa & !0xfff);
    }

    /// A fresh host page, mapped R/W at a fresh GPA; returns (gpa, hpa).
    pub fn page(&self) -> (u64, u64) {
        let hpa = self.fx.alloc();
        let gpa = {
            let mut n = self.next_gpa.borrow_mut();
            let g = *n;
            *n += 0x1000;
            g
        };
        self.map(gpa, hpa, (true, true));
        (gpa, hpa)
    }

    /// The AW code of this second stage, for the PASID entry.
    pub fn aw_code(&self) -> u64 {
        u64::from(self.levels) - 2
    }

    /// The host address behind `gpa` (as the test mapped it).
    pub fn hpa(&self, gpa: u64) -> u64 {
        let m = self.map.borrow();
        m.get(&(gpa & !0xfff)).expect("GPA mapped by the test") | (gpa & 0xfff)
    }
}

impl Space for GpaSpace<'_> {
    fn table(&self) -> u64 {
        self.page().0
    }
    fn get(&self, gpa: u64) -> u64 {
        self.fx.rd(self.hpa(gpa))
    }
    fn set(&self, gpa: u64, v: u64) {
        self.fx.wr(self.hpa(gpa), v)
    }
}
