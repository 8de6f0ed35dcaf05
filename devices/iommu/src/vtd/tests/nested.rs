//! Nested translation (PGTT 011b): first-stage tables in a guest-physical space mapped by a second
//! stage at different host addresses, the nested fault reasons, accessed/dirty updates through the
//! second stage, and the invalidations a nested result depends on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::fs_util::*;
use super::*;
use crate::mem::MemError;

/// A nested domain on RID_PASID 0 (DID `did`): the second stage (a nest parent) and the first-stage
/// top table's GPA.
fn nested_domain(fx: &Fx, dir: u64, did: u16, s2_levels: u32) -> (GpaSpace<'_>, u64) {
    let gs = GpaSpace::with_levels(fx, s2_levels);
    let s1_top = gs.table();
    fx.set_pasid_entry(
        dir,
        0,
        nested_entry(gs.s2_top, gs.aw_code(), s1_top, did, (false, false)),
    );
    (gs, s1_top)
}

/// The GPA of the first-stage table holding the entry for `iova` at the level of 2^shift pages.
fn s1_table_gpa(gs: &GpaSpace, s1_top: u64, iova: u64, shift: u32) -> u64 {
    fs_slot(gs, s1_top, 4, iova, shift) & !0xfff
}

#[test]
fn first_stage_tables_live_behind_the_second_stage() {
    for opts in ["vtd", "vtd,caching=off"] {
        let sm = sm_setup(opts);
        let fx = &sm.fx;
        let (gs, s1_top) = nested_domain(&sm.fx, sm.dir, 4, 4);
        // The first-stage tables' GPAs (>= 4 GiB) are not RAM: only a walker that translates every
        // table address through the second stage finds them.
        assert!(s1_top >= GPA_BASE && gs.hpa(s1_top) < RAM);
        // 4 KiB first-stage page -> GPA 0x2_0000_5000 -> HPA 0x90_0000.
        fs_map(&gs, s1_top, 4, 0x1000, 0x2_0000_5000, 12, RW | US);
        gs.map(0x2_0000_5000, 0x90_0000, (true, true));
        let t = fx.xlate(SID, None, 0x1234, Access::Write).unwrap();
        assert_eq!(
            (t.translate(0x1234), t.page_size),
            (0x90_0234, 0x1000),
            "{opts}"
        );
        assert!(t.perms.read && t.perms.write);
        // A on every first-stage level, D on the leaf, written where the tables really are.
        for shift in [39, 30, 21] {
            assert_eq!(gs.get(fs_slot(&gs, s1_top, 4, 0x1000, shift)) & (A | D), A);
        }
        assert_eq!(gs.get(fs_slot(&gs, s1_top, 4, 0x1000, 12)) & (A | D), A | D);
        // A 2 MiB first-stage page over 4 KiB second-stage pages: 4 KiB translations.
        fs_map(&gs, s1_top, 4, 0x4000_0000, 0x2_0040_0000, 21, RW | US);
        gs.map(0x2_0040_3000, 0x91_0000, (true, true));
        let t = fx.xlate(SID, None, 0x4000_3010, Access::Read).unwrap();
        assert_eq!((t.translate(0x4000_3010), t.page_size), (0x91_0010, 0x1000));
        // A 4 KiB first-stage page inside a 2 MiB second-stage page; a 1 GiB first-stage page over a
        // 2 MiB second-stage page: the smaller size wins.
        fx.map(gs.s2_top, 4, 0x3_0000_0000, 0xa0_0000, 21, (true, true));
        fs_map(&gs, s1_top, 4, 0x2000, 0x3_0001_2000, 12, RW | US);
        let t = fx.xlate(SID, None, 0x2008, Access::Read).unwrap();
        assert_eq!((t.translate(0x2008), t.page_size), (0xa1_2008, 0x1000));
        fs_map(&gs, s1_top, 4, 0x80_0000_0000, 0x3_0000_0000, 30, RW | US);
        let t = fx.xlate(SID, None, 0x80_0001_0000, Access::Read).unwrap();
        assert_eq!(
            (t.translate(0x80_0001_0000), t.page_size),
            (0xa1_0000, 1 << 21)
        );
        let st = fx.vtd.stats();
        assert_eq!(st.faults_recorded, 0, "{opts}");
    }
}

#[test]
fn five_level_first_stage_over_five_level_second_stage() {
    let sm = sm_setup("vtd,aw=57");
    let gs = GpaSpace::with_levels(&sm.fx, 5);
    let s1_top = gs.table();
    let mut e = nested_entry(gs.s2_top, gs.aw_code(), s1_top, 2, (false, false));
    e[2] |= 1 << 2; // FLPM 01b
    sm.fx.set_pasid_entry(sm.dir, 0, e);
    let iova = 1u64 << 52 | 0x7000;
    fs_map(&gs, s1_top, 5, iova, 0x1_0000_0000_0000, 12, RW | US);
    gs.map(0x1_0000_0000_0000, 0x92_0000, (true, true));
    assert_eq!(
        sm.fx.out(SID, None, iova | 0x44, Access::Read),
        Ok(0x92_0044)
    );
    assert_eq!(sm.fx.out(SID, None, 1 << 56, Access::Read), Err(0x80));
}

#[test]
fn a_read_only_second_stage_mapping_of_a_table_blocks_ad_updates() {
    for opts in ["vtd", "vtd,caching=off"] {
        let Sm { fx, dir, mut q, .. } = sm_setup(opts);
        let (gs, s1_top) = nested_domain(&fx, dir, 4, 4);
        fs_map(&gs, s1_top, 4, 0x1000, 0x2_0000_0000, 12, RW | US);
        gs.map(0x2_0000_0000, 0x90_0000, (true, true));
        let pt = s1_table_gpa(&gs, s1_top, 0x1000, 12);
        gs.map(pt, gs.hpa(pt), (true, false));
        let snapshot = |gs: &GpaSpace| -> Vec<u64> {
            [39u32, 30, 21, 12]
                .iter()
                .map(|&s| gs.get(fs_slot(gs, s1_top, 4, 0x1000, s)))
                .collect()
        };
        let before = snapshot(&gs);
        // The PTE's A flag needs setting but its page is read-only in the second stage: 77h, and no
        // flag is set anywhere (not even in the writable upper levels).
        let f = fx.xlate(SID, None, 0x1000, Access::Read).unwrap_err();
        assert_eq!(f.reason, 0x77, "{opts}");
        assert!(
            f.description.contains("first-stage level 1"),
            "{}",
            f.description
        );
        assert_eq!(snapshot(&gs), before);
        // With A already set (as Linux writes its entries) a read needs no update ...
        let pte = fs_slot(&gs, s1_top, 4, 0x1000, 12);
        gs.set(pte, gs.get(pte) | A);
        assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(0x90_0000));
        // ... but a write needs D: 77h again; with D set too it goes through.
        assert_eq!(fx.out(SID, None, 0x1000, Access::Write), Err(0x77));
        gs.set(pte, gs.get(pte) | D);
        assert_eq!(fx.out(SID, None, 0x1000, Access::Write), Ok(0x90_0000));
        // No read permission on a first-stage table (after the second-stage invalidation software
        // owes): 75h for the top one, 76h below.
        gs.map(pt, gs.hpa(pt), (false, true));
        fx.sync(&mut q, &[iotlb_page(4, pt, 0)]);
        assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Err(0x76));
        gs.map(pt, gs.hpa(pt), (true, true));
        gs.map(s1_top, gs.hpa(s1_top), (false, true));
        fx.sync(&mut q, &[iotlb_domain(4)]);
        let f = fx.xlate(SID, None, 0x1000, Access::Read).unwrap_err();
        assert_eq!(f.reason, 0x75, "{opts}");
    }
}

#[test]
fn first_and_second_stage_faults_are_told_apart() {
    let sm = sm_setup("vtd,caching=off");
    let fx = &sm.fx;
    let (gs, s1_top) = nested_domain(&sm.fx, sm.dir, 4, 4);
    fs_map(&gs, s1_top, 4, 0x1000, 0x2_0000_0000, 12, RW | US | A | D);
    gs.map(0x2_0000_0000, 0x90_0000, (true, true));
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(0x90_0000));
    let fault = |iova: u64, access: Access| fx.xlate(SID, None, iova, access).unwrap_err();
    // First stage: P clear in the PTE.
    let f = fault(0x3000, Access::Read);
    assert_eq!(f.reason, 0x71);
    assert!(
        f.description.contains("first-stage level 1"),
        "{}",
        f.description
    );
    // Second stage: the first-stage PT's GPA is not mapped any more.
    let pt = s1_table_gpa(&gs, s1_top, 0x1000, 12);
    let s2_pte = {
        // The second-stage leaf for `pt`.
        let mut table = gs.s2_top;
        for level in [4u32, 3, 2] {
            let e = fx.rd(table + ((pt >> (12 + 9 * (level - 1))) & 0x1ff) * 8);
            table = e & 0x000f_ffff_ffff_f000;
        }
        table + ((pt >> 12) & 0x1ff) * 8
    };
    let saved = fx.rd(s2_pte);
    fx.wr(s2_pte, 0);
    let f = fault(0x1000, Access::Read);
    assert_eq!(f.reason, 0x79);
    assert!(
        f.description.contains("second-stage level 1")
            && f.description.contains("first-stage level-1 table"),
        "{}",
        f.description
    );
    // A reserved bit in that second-stage entry.
    fx.wr(s2_pte, saved | 1 << 62);
    assert_eq!(fault(0x1000, Access::Read).reason, 0x7a);
    fx.wr(s2_pte, saved);
    // Second stage of the output: not mapped (79h), read-only (85h on write), write-only (86h).
    fs_map(&gs, s1_top, 4, 0x5000, 0x2_0000_8000, 12, RW | US | A | D);
    let f = fault(0x5000, Access::Read);
    assert_eq!(f.reason, 0x79);
    assert!(
        f.description.contains("first-stage output"),
        "{}",
        f.description
    );
    gs.map(0x2_0000_8000, 0x93_0000, (true, false));
    assert_eq!(fx.out(SID, None, 0x5000, Access::Read), Ok(0x93_0000));
    let f = fault(0x5000, Access::Write);
    assert_eq!(f.reason, 0x85);
    assert!(f.description.contains("second-stage"), "{}", f.description);
    gs.map(0x2_0000_8000, 0x93_0000, (false, true));
    assert_eq!(fault(0x5000, Access::Read).reason, 0x86);
    // Whereas a first-stage write denial says first-stage.
    fs_map(&gs, s1_top, 4, 0x6000, 0x2_0000_0000, 12, US | A);
    let f = fault(0x6000, Access::Write);
    assert_eq!(f.reason, 0x85);
    assert!(f.description.contains("first-stage"), "{}", f.description);
    // The second-stage top table (SLPTPTR) outside RAM: 7Bh; a lower one: 78h.
    let mut e = nested_entry(RAM, 2, s1_top, 4, (false, false));
    fx.set_pasid_entry(sm.dir, 1, e);
    assert_eq!(fx.out(SID, Some(1), 0x1000, Access::Read), Err(0x7b));
    // FSPTPTR 28 GiB: second-stage L4 entry 0 exists; its L3 entry 28 names a table outside RAM.
    e[0] = gs.s2_top | 3 << 6 | 2 << 2 | 1;
    e[2] = 0x7_0000_0000;
    let l3 = fx.rd(gs.s2_top) & 0x000f_ffff_ffff_f000;
    fx.wr(l3 + 8 * 28, RAM | 3);
    fx.set_pasid_entry(sm.dir, 1, e);
    assert_eq!(fx.out(SID, Some(1), 0x1000, Access::Read), Err(0x78));
}

#[test]
fn addresses_beyond_the_second_stage_width() {
    // A 39-bit (3-level) nest parent: GPAs from 2^39 up are beyond it (but still below HAW 48, so not
    // reserved bits in the first-stage entries).
    let sm = sm_setup("vtd,caching=off");
    let fx = &sm.fx;
    let (gs, s1_top) = nested_domain(&sm.fx, sm.dir, 4, 3);
    fs_map(&gs, s1_top, 4, 0x1000, 0x2_0000_0000, 12, RW | US | A | D);
    gs.map(0x2_0000_0000, 0x90_0000, (true, true));
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(0x90_0000));
    // The first-stage output beyond: 84h.
    fs_map(&gs, s1_top, 4, 0x2000, 1 << 40, 12, RW | US | A | D);
    let f = fx.xlate(SID, None, 0x2000, Access::Read).unwrap_err();
    assert_eq!(f.reason, 0x84);
    assert!(
        f.description.contains("first-stage output"),
        "{}",
        f.description
    );
    // A first-stage table beyond: 74h (the PDPT entry for 1 GiB..2 GiB points at 2^40).
    let pdpt = s1_table_gpa(&gs, s1_top, 0x1000, 30);
    gs.set(pdpt + 8, 1 << 40 | TABLE | A);
    assert_eq!(fx.out(SID, None, 0x4000_0000, Access::Read), Err(0x74));
    // FSPTPTR itself beyond.
    fx.set_pasid_entry(
        sm.dir,
        2,
        nested_entry(gs.s2_top, 1, 1 << 41, 4, (false, false)),
    );
    assert_eq!(fx.out(SID, Some(2), 0x1000, Access::Read), Err(0x74));
}

#[test]
fn second_stage_invalidation_drops_dependent_nested_entries() {
    for caching in [true, false] {
        let opts = if caching { "vtd" } else { "vtd,caching=off" };
        let Sm { fx, dir, mut q, .. } = sm_setup(opts);
        let (data_gpa, hpa1, hpa2, hpa3) = (0x2_0000_7000u64, 0x90_0000, 0x91_0000, 0x92_0000);
        let (gs, s1_top) = nested_domain(&fx, dir, 6, 4);
        fs_map(&gs, s1_top, 4, 0x1000, data_gpa, 12, RW | US);
        gs.map(data_gpa, hpa1, (true, true));
        // A first-stage-only domain with the same DID on PASID 1 (its entries must survive
        // second-stage invalidations).
        let fl_top = fx.alloc();
        fx.set_pasid_entry(dir, 1, fl_entry(fl_top, 6, false));
        fs_map(&fx, fl_top, 4, 0x1000, 0x50_0000, 12, RW | US);
        assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(hpa1));
        assert_eq!(fx.out(SID, Some(1), 0x1000, Access::Read), Ok(0x50_0000));
        // Change the second-stage PTE behind the nested result, and the first-stage-only PTE.
        gs.map(data_gpa, hpa2, (true, true));
        fs_map(&fx, fl_top, 4, 0x1000, 0x51_0000, 12, RW | US);
        let stale_or = |fresh: u64, stale: u64| Ok(if caching { stale } else { fresh });
        assert_eq!(
            fx.out(SID, None, 0x1000, Access::Read),
            stale_or(hpa2, hpa1)
        );
        // A second-stage (IOTLB) page-selective invalidation of another DID changes nothing; of this
        // DID at the *GPA* it drops the nested result, but not the first-stage-only one.
        fx.sync(&mut q, &[iotlb_page(5, data_gpa, 0)]);
        assert_eq!(
            fx.out(SID, None, 0x1000, Access::Read),
            stale_or(hpa2, hpa1)
        );
        fx.sync(&mut q, &[iotlb_page(6, data_gpa, 0)]);
        assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(hpa2));
        assert_eq!(
            fx.out(SID, Some(1), 0x1000, Access::Read),
            stale_or(0x51_0000, 0x50_0000)
        );
        // Domain-selective works too, through the queue and through the register interface.
        gs.map(data_gpa, hpa3, (true, true));
        assert_eq!(
            fx.out(SID, None, 0x1000, Access::Read),
            stale_or(hpa3, hpa2)
        );
        fx.sync(&mut q, &[iotlb_domain(6)]);
        assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(hpa3));
        gs.map(data_gpa, hpa1, (true, true));
        fx.w64(regs::IVA, 0);
        fx.w64(
            regs::IOTLB,
            regs::IOTLB_IVT | 2 << regs::IOTLB_IIRG_SHIFT | 6 << regs::IOTLB_DID_SHIFT,
        );
        assert_eq!(fx.r64(regs::IOTLB) & regs::IOTLB_IVT, 0);
        assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(hpa1));
        // A PASID-based invalidation by IOVA drops nested entries as well.
        gs.map(data_gpa, hpa2, (true, true));
        fx.sync(&mut q, &[piotlb_page(6, 0, 0x1000, 0)]);
        assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(hpa2));
    }
}
/// A Linux-like nested + first-stage workload with correct invalidations (PASID-based by IOVA for
/// first-stage changes, IOTLB by GPA for second-stage ones). Returns every observable outcome.
fn workload(opts: &str) -> Vec<String> {
    let Sm { fx, dir, mut q, .. } = sm_setup(opts);
    let (gs, s1_top) = nested_domain(&fx, dir, 3, 4);
    let fl_top = fx.alloc();
    fx.set_pasid_entry(dir, 5, fl_entry(fl_top, 4, false));
    // 32 data GPAs, second-stage mapped to 32 host pages.
    let gpa = |i: u64| 0x2_0000_0000 + (i << 12);
    for i in 0..32 {
        gs.map(gpa(i), 0x80_0000 + (i << 12), (true, true));
    }
    let mut r = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for step in 0..800 {
        let page = r.below(32);
        match r.below(8) {
            0..=3 => {
                let access = if r.below(2) == 0 {
                    Access::Read
                } else {
                    Access::Write
                };
                let pasid = if r.below(2) == 0 { None } else { Some(5) };
                let iova = page << 12 | r.below(0x1000) & !7;
                let res = fx
                    .vtd
                    .translate(&preq(pasid, iova, access, false))
                    .map(|t| (t.translate(iova), t.page_size, t.perms))
                    .map_err(|f| f.reason);
                out.push(format!("{step}: {pasid:?} {iova:#x} {access:?} {res:x?}"));
            }
            4 => {
                // (Re)map a first-stage page in both domains, with a random R/W; flush by IOVA.
                let flags = US | if r.below(3) == 0 { 0 } else { RW };
                let target = r.below(32);
                fs_map(&gs, s1_top, 4, page << 12, gpa(target), 12, flags);
                fs_map(
                    &fx,
                    fl_top,
                    4,
                    page << 12,
                    0x80_0000 + (target << 12),
                    12,
                    flags,
                );
                fx.sync(
                    &mut q,
                    &[
                        piotlb_page(3, 0, page << 12, 0),
                        piotlb_page(4, 5, page << 12, 0),
                    ],
                );
            }
            5 => {
                // Unmap a naturally aligned block of first-stage pages; page-selective flush with AM.
                let am = r.below(3);
                let first = page & !((1 << am) - 1);
                for p in first..first + (1 << am) {
                    let slot = fs_slot(&gs, s1_top, 4, p << 12, 12);
                    gs.set(slot, 0);
                    fx.wr(fs_slot(&fx, fl_top, 4, p << 12, 12), 0);
                }
                fx.sync(
                    &mut q,
                    &[
                        piotlb_page(3, 0, first << 12, am),
                        piotlb_page(4, 5, first << 12, am),
                    ],
                );
            }
            6 => {
                // Change a second-stage mapping (host page or R/W); IOTLB flush at the GPA.
                let rw = (true, r.below(4) != 0);
                gs.map(gpa(page), 0x80_0000 + (r.below(64) << 12), rw);
                fx.sync(&mut q, &[iotlb_page(3, gpa(page), 0)]);
            }
            _ => {
                // Drain the fault log so recording never overflows differently.
                for i in 0..8 {
                    fx.w32(regs::FRO_OFFSET + i * 16 + 12, 1 << 31);
                }
                fx.w32(regs::FSTS, regs::FSTS_PFO);
            }
        }
    }
    out
}

#[test]
fn caching_off_gives_the_same_results() {
    let on = workload("vtd");
    let off = workload("vtd,caching=off");
    assert!(on.len() > 300);
    assert!(on.iter().any(|l| l.contains("Ok(")) && on.iter().any(|l| l.contains("Err(")));
    assert_eq!(on, off);
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Test memory that counts reads: every walk must stay bounded whatever the tables hold.
struct Counting {
    mem: TestMemory,
    reads: AtomicU64,
}

impl DmaMemory for Counting {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.mem.read(addr, buf)
    }
    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.mem.write(addr, buf)
    }
    fn compare_exchange_u64(&self, addr: u64, current: u64, new: u64) -> Result<u64, MemError> {
        self.mem.compare_exchange_u64(addr, current, new)
    }
}

/// The most reads one translation may do: root (2 qwords) + context (4) + PASID directory (1) +
/// PASID entry (8), then 5 first-stage levels each after a 5-level second-stage walk, then the
/// output's 5-level second-stage walk.
const MAX_READS: u64 = 15 + 5 * (5 + 1) + 5;

#[test]
fn random_nested_tables_stress() {
    const REGION: u64 = 0x10_000;
    const PAGES: u64 = 64;
    let mut r = XorShift(0x2545_f491_4f6c_dd1d);
    let units: Vec<(Vtd, Arc<Counting>)> = ["vtd,aw=57", "vtd,aw=57,caching=off"]
        .iter()
        .map(|opts| {
            let mem = Arc::new(Counting {
                mem: TestMemory::new(0x10_0000),
                reads: AtomicU64::new(0),
            });
            let vtd = Vtd::new(
                opts.parse().unwrap(),
                mem.clone(),
                Arc::new(Sink::default()),
            );
            (vtd, mem)
        })
        .collect();
    let wr = |addr: u64, v: u64| {
        for (_, m) in &units {
            m.mem.write_u64(addr, v).unwrap();
        }
    };
    // Fixed structures: root 0x1000 -> context table 0x2000 -> PASID directory 0x3000 -> PASID
    // tables 0x4000 (PASIDs 0-63) and 0x5000 (64-127).
    wr(0x1000, 0x2000 | 1);
    wr(0x2000 + u64::from(SID) * 32, 0x3000 | 1 << 3 | 1);
    wr(0x3000, 0x4000 | 1);
    wr(0x3008, 0x5000 | 1);
    let page = |r: &mut XorShift| REGION + (r.below(PAGES) << 12);
    for pasid in 0..70u64 {
        let pgtt = [1u64, 3, 3, 3, 1, 2, 4, 0][r.below(8) as usize];
        let q0 = page(&mut r) | pgtt << 6 | (1 + r.below(3)) << 2 | 1;
        let q1 = r.below(8);
        let q2 = page(&mut r) | r.below(2) << 2 | r.below(2) | r.below(2) << 4;
        let base = if pasid < 64 { 0x4000 } else { 0x5000 } + (pasid & 0x3f) * 64;
        wr(base, q0);
        wr(base + 8, q1);
        wr(base + 16, q2);
    }
    // The region: mostly plausible entries (present, writable, user; sometimes PS or XD; addresses
    // in the region), some garbage.
    for i in 0..PAGES * 512 {
        let v = match r.below(8) {
            0 => r.next(),
            1 => 0,
            _ => {
                page(&mut r)
                    | 0x7
                    | if r.below(6) == 0 { 1 << 7 } else { 0 }
                    | if r.below(8) == 0 { 1 << 63 } else { 0 }
                    | r.below(4) << 5
            }
        };
        wr(REGION + i * 8, v);
    }
    for (vtd, _) in &units {
        vtd.mmio_write(regs::RTADDR, &(0x1000u64 | 1 << 10).to_le_bytes());
        vtd.mmio_write(regs::GCMD, &regs::GCMD_SRTP.to_le_bytes());
        vtd.mmio_write(regs::GCMD, &regs::GCMD_TE.to_le_bytes());
    }
    let start = Instant::now();
    let (mut ok, mut reasons) = (0, std::collections::BTreeSet::new());
    for _ in 0..20_000 {
        let pasid = match r.below(4) {
            0 => None,
            _ => Some(r.below(72) as u32),
        };
        // Small IOVAs (which hit the region's entries), large ones, sign-extended ones.
        let iova = match r.below(3) {
            0 => r.below(1 << 30),
            1 => r.next() >> 8,
            _ => (((r.next() << 7) as i64) >> 7) as u64,
        };
        let req = DmaRequest {
            source_id: u32::from(SID),
            pasid,
            iova,
            access: if r.below(2) == 0 {
                Access::Read
            } else {
                Access::Write
            },
            privileged: r.below(3) == 0,
            kind: RequestKind::Untranslated,
        };
        let mut results = Vec::new();
        for (vtd, mem) in &units {
            let before = mem.reads.load(Ordering::Relaxed);
            let res = vtd
                .translate(&req)
                .map(|t| (t.translate(iova), t.page_size, t.perms))
                .map_err(|f| f.reason);
            let reads = mem.reads.load(Ordering::Relaxed) - before;
            assert!(reads <= MAX_READS, "{reads} reads for {req:x?}");
            results.push(res);
        }
        assert_eq!(results[0], results[1], "caching on/off differ for {req:x?}");
        match results[0] {
            Ok(_) => ok += 1,
            Err(reason) => {
                reasons.insert(reason);
            }
        }
        // Keep recording faults (the log is not what this test is about).
        for (vtd, _) in &units {
            vtd.mmio_write(regs::FSTS, &regs::FSTS_PFO.to_le_bytes());
            for i in 0..8u64 {
                vtd.mmio_write(regs::FRO_OFFSET + i * 16 + 12, &(1u32 << 31).to_le_bytes());
            }
        }
    }
    assert!(start.elapsed() < Duration::from_secs(60), "bounded time");
    assert!(ok > 100, "some translations succeed ({ok})");
    for reason in [0x71, 0x72, 0x80, 0x79] {
        assert!(reasons.contains(&reason), "{reason:#x} seen: {reasons:x?}");
    }
}
