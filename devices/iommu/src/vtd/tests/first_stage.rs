//! First-stage translation (PGTT 001b): 4- and 5-level IA-32e tables, large pages, access rights,
//! accessed/dirty updates, canonical and reserved-bit faults, PASID-based invalidation.

use super::fs_util::*;
use super::*;
use crate::request::Perms;

/// A first-stage domain for PASID `pasid` (DID `did`): returns the PML4/PML5 address.
fn fl_domain(sm: &Sm, pasid: u32, did: u16, five_level: bool) -> u64 {
    let top = sm.fx.alloc();
    sm.fx
        .set_pasid_entry(sm.dir, pasid, fl_entry(top, did, five_level));
    top
}

#[test]
fn four_and_five_level_with_4k_2m_1g_pages() {
    for (opts, levels) in [
        ("vtd", 4u32),
        ("vtd,aw=57", 5),
        ("vtd,caching=off", 4),
        ("vtd,aw=57,caching=off", 5),
    ] {
        let sm = sm_setup(opts);
        let fx = &sm.fx;
        let top = fl_domain(&sm, 0, 1, levels == 5);
        let pasid_top = fl_domain(&sm, 9, 2, levels == 5);
        // RID_PASID 0: a 4 KiB, a 2 MiB and a 1 GiB page (user, writable).
        fs_map(fx, top, levels, 0x1000, 0x30_0000, 12, RW | US);
        fs_map(fx, top, levels, 0x4000_0000, 0x40_0000, 21, RW | US);
        fs_map(fx, top, levels, 0x80_0000_0000, 0, 30, US);
        // 5-level: an IOVA only 5-level tables reach (bit 48 set, canonical in 57 bits).
        let high = if levels == 5 {
            1u64 << 50
        } else {
            0x7f00_0000_0000
        };
        fs_map(fx, top, levels, high, 0x50_0000, 12, RW | US);
        let t = fx.xlate(SID, None, 0x1abc, Access::Write).unwrap();
        assert_eq!(
            (t.translate(0x1abc), t.page_size, t.perms),
            (
                0x30_0abc,
                0x1000,
                Perms {
                    read: true,
                    write: true,
                    exec: true
                }
            ),
            "{opts}"
        );
        let t = fx.xlate(SID, None, 0x401f_fff8, Access::Read).unwrap();
        assert_eq!(
            (t.translate(0x401f_fff8), t.page_size),
            (0x5f_fff8, 1 << 21)
        );
        let t = fx.xlate(SID, None, 0x80_3456_7890, Access::Read).unwrap();
        assert_eq!(
            (t.translate(0x80_3456_7890), t.page_size),
            (0x3456_7890, 1 << 30)
        );
        assert!(!t.perms.write, "R/W clear on the 1 GiB leaf");
        assert_eq!(fx.out(SID, None, 0x80_0000_0000, Access::Write), Err(0x85));
        assert_eq!(fx.out(SID, None, high | 0x10, Access::Read), Ok(0x50_0010));
        // PASID 9 has its own tables: nothing mapped there yet (P clear in the top-level entry).
        assert_eq!(fx.out(SID, Some(9), 0x1000, Access::Read), Err(0x71));
        fs_map(fx, pasid_top, levels, 0x1000, 0x70_0000, 12, RW | US);
        assert_eq!(fx.out(SID, Some(9), 0x1000, Access::Read), Ok(0x70_0000));
        assert_eq!(fx.r32(regs::FSTS) & regs::FSTS_PFO, 0);
    }
}

#[test]
fn linux_first_level_dma_domain() {
    // What Linux 6.12 does with FLTS+SLTS: DMA-API domains are first-level; leaves carry US|A (+D for
    // writable ones); unmap is followed by a PASID-based IOTLB flush.
    let Sm { fx, dir, mut q, .. } = sm_setup("vtd");
    let top = fx.alloc();
    fx.set_pasid_entry(dir, 0, fl_entry(top, 5, false));
    fx.sync(&mut q, &[pc_pasid(5, 0), piotlb_pasid(5, 0)]);
    fs_map(&fx, top, 4, 0xffff_f000, 0x12_3000, 12, RW | US | A | D);
    fs_map(&fx, top, 4, 0xfffe_0000, 0x45_6000, 12, US | A);
    assert_eq!(fx.out(SID, None, 0xffff_f008, Access::Write), Ok(0x12_3008));
    assert_eq!(fx.out(SID, None, 0xfffe_0000, Access::Read), Ok(0x45_6000));
    assert_eq!(fx.out(SID, None, 0xfffe_0000, Access::Write), Err(0x85));
    // Unmap + PSI (one page): the next access faults with P clear.
    fx.wr(fs_slot(&fx, top, 4, 0xffff_f000, 12), 0);
    fx.sync(&mut q, &[piotlb_page(5, 0, 0xffff_f000, 0)]);
    assert_eq!(fx.out(SID, None, 0xffff_f000, Access::Read), Err(0x71));
    let st = fx.vtd.stats();
    assert_eq!(st.invalidations["piotlb_page"], 1);
    assert_eq!(st.qi_errors, 0);
}

#[test]
fn user_supervisor_sre_and_wpe() {
    let Sm { fx, dir, .. } = sm_setup("vtd");
    let top = fx.alloc();
    let with = |sre: bool, wpe: bool| {
        let mut e = fl_entry(top, 3, false);
        e[2] |= u64::from(sre) | u64::from(wpe) << 4;
        e
    };
    fx.set_pasid_entry(dir, 1, with(false, false));
    fx.set_pasid_entry(dir, 2, with(true, false));
    fx.set_pasid_entry(dir, 3, with(true, true));
    fs_map(&fx, top, 4, 0x1000, 0x21_000, 12, RW); // supervisor-only, writable
    fs_map(&fx, top, 4, 0x2000, 0x22_000, 12, US); // user, read-only
    fs_map(&fx, top, 4, 0x3000, 0x23_000, 12, 0); // supervisor-only, read-only
    let go = |pasid: u32, iova: u64, access: Access, privileged: bool| {
        fx.vtd
            .translate(&preq(Some(pasid), iova, access, privileged))
            .map(|t| t.translate(iova))
            .map_err(|f| f.reason)
    };
    use Access::{Read, Write};
    // User requests: supervisor pages are out of reach (81h), read-only pages not writable (85h).
    assert_eq!(go(1, 0x1000, Read, false), Err(0x81));
    assert_eq!(go(1, 0x2000, Read, false), Ok(0x22_000));
    assert_eq!(go(1, 0x2000, Write, false), Err(0x85));
    // Supervisor requests need SRE (5Dh) ...
    assert_eq!(go(1, 0x1000, Read, true), Err(0x5d));
    // ... then reach every page; read-only pages are writable unless WPE.
    for iova in [0x1000, 0x2000, 0x3000] {
        assert!(go(2, iova, Read, true).is_ok(), "{iova:#x}");
        assert!(go(2, iova, Write, true).is_ok(), "WPE=0 {iova:#x}");
    }
    assert_eq!(go(3, 0x1000, Write, true), Ok(0x21_000));
    assert_eq!(go(3, 0x2000, Write, true), Err(0x85));
    assert_eq!(go(3, 0x3000, Write, true), Err(0x85));
    assert_eq!(go(3, 0x3000, Read, true), Ok(0x23_000));
    // The reported permissions follow the requester's privilege.
    let t = fx
        .vtd
        .translate(&preq(Some(3), 0x2000, Read, true))
        .unwrap();
    assert_eq!((t.perms.read, t.perms.write), (true, false));
    let t = fx
        .vtd
        .translate(&preq(Some(2), 0x2000, Read, true))
        .unwrap();
    assert_eq!((t.perms.read, t.perms.write), (true, true));
    // A cached supervisor translation must not serve a user request (and vice versa).
    assert_eq!(go(2, 0x1000, Read, false), Err(0x81));
    // Requests without PASID are user requests (no RID_PRIV): the privilege flag is ignored.
    fx.set_pasid_entry(dir, 0, with(true, false));
    assert_eq!(
        fx.vtd
            .translate(&preq(None, 0x1000, Read, true))
            .map_err(|f| f.reason),
        Err(0x81)
    );
    // The fault record carries PASID and privilege.
    let f = fx
        .vtd
        .translate(&preq(Some(1), 0x1000, Write, true))
        .unwrap_err();
    assert!(f.recorded && f.description.contains("SRE"));
}

#[test]
fn xd_shapes_the_execute_permission() {
    let Sm { fx, dir, mut q, .. } = sm_setup("vtd");
    let top = fx.alloc();
    fx.set_pasid_entry(dir, 0, fl_entry(top, 1, false));
    fs_map(&fx, top, 4, 0x1000, 0x31_000, 12, RW | US);
    fs_map(&fx, top, 4, 0x2000, 0x32_000, 12, RW | US | XD);
    assert!(
        fx.xlate(SID, None, 0x1000, Access::Read)
            .unwrap()
            .perms
            .exec
    );
    let t = fx.xlate(SID, None, 0x2000, Access::Write).unwrap();
    assert!(t.perms.read && t.perms.write && !t.perms.exec);
    // XD in a non-leaf level counts too (once the cached translation is flushed).
    let pde = fs_slot(&fx, top, 4, 0x1000, 21);
    fx.wr(pde, fx.rd(pde) | XD);
    assert!(
        fx.xlate(SID, None, 0x1000, Access::Read)
            .unwrap()
            .perms
            .exec,
        "cached"
    );
    fx.sync(&mut q, &[piotlb_pasid(1, 0)]);
    let t = fx.xlate(SID, None, 0x1000, Access::Read).unwrap();
    assert!(t.perms.read && !t.perms.exec);
}

#[test]
fn accessed_and_dirty_flags() {
    for caching in ["on", "off"] {
        let Sm { fx, dir, mut q, .. } = sm_setup(&format!("vtd,caching={caching}"));
        let top = fx.alloc();
        fx.set_pasid_entry(dir, 0, fl_entry(top, 1, false));
        fs_map(&fx, top, 4, 0x5000, 0x35_000, 12, RW | US);
        fs_map(&fx, top, 4, 0x6000, 0x36_000, 12, US); // read-only
        fs_map(&fx, top, 4, 0x20_0000, 0x60_0000, 21, RW | US);
        let path = |iova: u64| -> Vec<u64> {
            [39u32, 30, 21, 12]
                .into_iter()
                .map(|shift| fs_slot(&fx, top, 4, iova, shift))
                .collect()
        };
        let flags =
            |iova: u64| -> Vec<u64> { path(iova).iter().map(|&a| fx.rd(a) & (A | D)).collect() };
        assert_eq!(flags(0x5000), vec![0, 0, 0, 0]);
        // A faulting write (read-only page) sets nothing, not even A on the upper levels.
        let before = flags(0x6000);
        assert_eq!(fx.out(SID, None, 0x6000, Access::Write), Err(0x85));
        assert_eq!(flags(0x6000), before, "{caching}: no flag on a fault");
        // A read sets A on every level, D nowhere.
        assert_eq!(fx.out(SID, None, 0x5000, Access::Read), Ok(0x35_000));
        assert_eq!(flags(0x5000), vec![A, A, A, A], "{caching}");
        // A write sets D in the leaf only — also after a cached read (a cached entry without D
        // cannot serve a write).
        assert_eq!(fx.out(SID, None, 0x5008, Access::Write), Ok(0x35_008));
        assert_eq!(flags(0x5000), vec![A, A, A, A | D], "{caching}");
        // Other bits are untouched.
        let leaf = path(0x5000)[3];
        assert_eq!(fx.rd(leaf), 0x35_000 | P | RW | US | A | D);
        // 2 MiB leaf: D lands in the PDE.
        assert_eq!(fx.out(SID, None, 0x20_1234, Access::Write), Ok(0x60_1234));
        let pde = fs_slot(&fx, top, 4, 0x20_0000, 21);
        assert_eq!(fx.rd(pde) & (A | D | PS), A | D | PS);
        // Software clears A/D and flushes: the next access sets them again.
        fx.wr(leaf, fx.rd(leaf) & !(A | D));
        fx.sync(&mut q, &[piotlb_page(1, 0, 0x5000, 0)]);
        assert_eq!(fx.out(SID, None, 0x5000, Access::Read), Ok(0x35_000));
        assert_eq!(fx.rd(leaf) & (A | D), A);
        // Translation requests (ATS) set the same flags; a faulting one sets none.
        let mut tr = preq(None, 0x6000, Access::Write, false);
        tr.kind = RequestKind::TranslationRequest;
        let f = fx.vtd.translate(&tr).unwrap_err();
        assert!(!f.recorded);
        assert_eq!(fx.rd(path(0x6000)[3]) & (A | D), 0);
    }
}

#[test]
fn non_canonical_and_reserved_and_unreadable() {
    let Sm { fx, dir, .. } = sm_setup("vtd,fl1g=off");
    let top = fx.alloc();
    fx.set_pasid_entry(dir, 0, fl_entry(top, 1, false));
    fs_map(&fx, top, 4, 0x1000, 0x31_000, 12, RW | US);
    // Canonical in 48 bits: bits 63:47 equal.
    assert_eq!(fx.out(SID, None, 0x8000_0000_0000, Access::Read), Err(0x80));
    assert_eq!(
        fx.out(SID, None, 0x1_0000_0000_1000, Access::Read),
        Err(0x80)
    );
    let f = fx
        .xlate(SID, None, 0x8000_0000_0000, Access::Read)
        .unwrap_err();
    assert!(f.description.contains("canonical"));
    // The upper canonical half is walked (PML4 index 256: not present).
    assert_eq!(
        fx.out(SID, None, 0xffff_8000_0000_0000, Access::Read),
        Err(0x71)
    );
    // PS in a PML4E; PS in a PDPE without FL1GP; a leaf address above HAW (48).
    fx.wr(top + 8 * 8, fx.alloc() | TABLE | PS);
    assert_eq!(fx.out(SID, None, 8 << 39, Access::Read), Err(0x72));
    fs_map(&fx, top, 4, 0x4000_0000, 0x4000_0000, 30, US);
    assert_eq!(fx.out(SID, None, 0x4000_0000, Access::Read), Err(0x72));
    fs_map(&fx, top, 4, 0x2000, 1 << 48, 12, US);
    let f = fx.xlate(SID, None, 0x2000, Access::Read).unwrap_err();
    assert_eq!(f.reason, 0x72);
    assert!(
        f.description.contains("first-stage level 1"),
        "{}",
        f.description
    );
    // A misaligned 2 MiB leaf (bit 13 set; bit 12 is PAT and allowed).
    fs_map(&fx, top, 4, 0x60_0000, 0x80_2000, 21, US);
    assert_eq!(fx.out(SID, None, 0x60_0000, Access::Read), Err(0x72));
    fs_map(&fx, top, 4, 0x80_0000, 0x80_1000, 21, US);
    assert_eq!(fx.out(SID, None, 0x80_0000, Access::Read), Ok(0x80_0000));
    // A lower table outside RAM (70h); the top table outside RAM (73h).
    let pdpt = fs_slot(&fx, top, 4, 0x1000, 30);
    fx.wr(pdpt + 8 * 5, RAM | TABLE);
    assert_eq!(fx.out(SID, None, 5 << 30, Access::Read), Err(0x70));
    fx.set_pasid_entry(dir, 7, fl_entry(RAM, 1, false));
    assert_eq!(fx.out(SID, Some(7), 0x1000, Access::Read), Err(0x73));
    // 5-level canonical check on a 57-bit unit.
    let sm = sm_setup("vtd,aw=57");
    let top5 = sm.fx.alloc();
    sm.fx.set_pasid_entry(sm.dir, 0, fl_entry(top5, 1, true));
    assert_eq!(sm.fx.out(SID, None, 1 << 56, Access::Read), Err(0x80));
    assert_eq!(sm.fx.out(SID, None, 1 << 55, Access::Read), Err(0x71));
}

#[test]
fn first_stage_pasid_entry_checks() {
    // Without caches, so that each rewritten PASID entry is read again.
    let Sm { fx, dir, .. } = sm_setup("vtd,caching=off");
    let top = fx.alloc();
    fs_map(&fx, top, 4, 0, 0x31_000, 12, RW | US);
    let set = |e: [u64; 8]| fx.set_pasid_entry(dir, 4, e);
    let go = || fx.out(SID, Some(4), 0, Access::Read);
    set(fl_entry(top, 1, false));
    assert_eq!(go(), Ok(0x31_000));
    // FLPM 01b (5-level) without FL5LP, FLPM 10b: invalid (5Bh).
    set(fl_entry(top, 1, true));
    assert_eq!(go(), Err(0x5b));
    let mut e = fl_entry(top, 1, false);
    e[2] |= 2 << 2;
    set(e);
    assert_eq!(go(), Err(0x5b));
    // ERE (no ECAP.ERS), EAFE (no ECAP.EAFS), FSPTPTR above HAW, qw3: reserved (5Ah).
    for (qw, bits) in [(2usize, 1u64 << 1), (2, 1 << 7), (2, 1 << 50), (3, 1)] {
        let mut e = fl_entry(top, 1, false);
        e[qw] |= bits;
        set(e);
        assert_eq!(go(), Err(0x5a), "qw{qw} {bits:#x}");
    }
    // PASIDs beyond the directory (PDTS 0: 8192 PASIDs) or PSS.
    assert_eq!(fx.out(SID, Some(8192), 0, Access::Read), Err(0x46));
    assert_eq!(fx.out(SID, Some(1 << 20), 0, Access::Read), Err(0x46));
    // Without FLTS, PGTT 001b is invalid; without SRS, SRE is reserved.
    let sm = sm_setup("vtd,fl=off,nest=off,caching=off");
    let top = sm.fx.alloc();
    sm.fx.set_pasid_entry(sm.dir, 0, fl_entry(top, 1, false));
    assert_eq!(sm.fx.out(SID, None, 0, Access::Read), Err(0x5b));
    let mut e = fl_entry(top, 1, false);
    e[2] |= 1;
    sm.fx.set_pasid_entry(sm.dir, 0, e);
    assert_eq!(sm.fx.out(SID, None, 0, Access::Read), Err(0x5a));
}

/// PASID 3 (DID 7) and PASID 4 (DID 8) each map 16 pages at IOVA 0 to 0x40_0000 + i pages.
fn sixteen_fs_pages(opts: &str) -> (Sm, u64, u64) {
    let sm = sm_setup(opts);
    let (t3, t4) = (sm.fx.alloc(), sm.fx.alloc());
    sm.fx.set_pasid_entry(sm.dir, 3, fl_entry(t3, 7, false));
    sm.fx.set_pasid_entry(sm.dir, 4, fl_entry(t4, 8, false));
    for i in 0..16u64 {
        for t in [t3, t4] {
            fs_map(&sm.fx, t, 4, i << 12, 0x40_0000 + (i << 12), 12, RW | US);
        }
    }
    for i in 0..16u64 {
        for p in [3, 4] {
            assert_eq!(
                sm.fx.out(SID, Some(p), i << 12, Access::Read),
                Ok(0x40_0000 + (i << 12))
            );
        }
    }
    (sm, t3, t4)
}

#[test]
fn pasid_iotlb_page_selective_drops_exactly_the_covered_range() {
    for caching in [true, false] {
        let opts = if caching { "vtd" } else { "vtd,caching=off" };
        let (mut sm, t3, t4) = sixteen_fs_pages(opts);
        // Remap everything silently: cached translations stay stale until invalidated.
        for i in 0..16u64 {
            for t in [t3, t4] {
                fs_map(
                    &sm.fx,
                    t,
                    4,
                    i << 12,
                    0x80_0000 + (i << 12),
                    12,
                    RW | US | A,
                );
            }
        }
        // AM=2 at 0x4000: pages 4..=7 of (DID 7, PASID 3). The same range for PASID 4 under the
        // wrong DID, an IOTLB (second-stage) domain invalidation and a PASID-cache invalidation
        // cover none of the first-stage translations.
        let fx = &sm.fx;
        fx.sync(
            &mut sm.q,
            &[
                piotlb_page(7, 3, 0x4000, 2),
                piotlb_page(7, 4, 0x4000, 2),
                iotlb_domain(7),
                iotlb_domain(8),
            ],
        );
        for i in 0..16u64 {
            let fresh = Ok(0x80_0000 + (i << 12));
            let stale = Ok(0x40_0000 + (i << 12));
            let want3 = if !caching || (4..8).contains(&i) {
                fresh
            } else {
                stale
            };
            let want4 = if !caching { fresh } else { stale };
            assert_eq!(
                fx.out(SID, Some(3), i << 12, Access::Read),
                want3,
                "{opts} p3 {i}"
            );
            assert_eq!(
                fx.out(SID, Some(4), i << 12, Access::Read),
                want4,
                "{opts} p4 {i}"
            );
        }
        // All-in-PASID drops the rest of PASID 3 only.
        fx.sync(&mut sm.q, &[piotlb_pasid(7, 3)]);
        for i in 0..16u64 {
            assert_eq!(
                fx.out(SID, Some(3), i << 12, Access::Read),
                Ok(0x80_0000 + (i << 12))
            );
        }
        // AM up to 52 covers everything; the global IOTLB invalidation too.
        fx.sync(&mut sm.q, &[piotlb_page(8, 4, 0, 52)]);
        assert_eq!(fx.out(SID, Some(4), 0xf000, Access::Read), Ok(0x80_f000));
        let st = fx.vtd.stats();
        assert_eq!(st.qi_errors, 0);
        if caching {
            assert!(st.iotlb_hits > 0);
        } else {
            assert_eq!((st.iotlb_hits, st.iotlb_entries), (0, 0));
        }
    }
}

#[test]
fn pasid_iotlb_descriptor_errors() {
    // AM beyond 52, an address not aligned to 2^AM pages, granularities 0/1: invalid descriptors.
    for bad in [
        piotlb_page(1, 0, 0, 53),
        piotlb_page(1, 0, 0x1000, 1),
        piotlb_page(1, 0, 0x10_0000, 9),
        [6 | 1 << 4, 0, 0, 0],
        [6, 0, 0, 0],
    ] {
        let Sm { fx, mut q, .. } = sm_setup("vtd");
        let head = q.tail;
        fx.submit(&mut q, &[bad]);
        assert_ne!(fx.r32(regs::FSTS) & regs::FSTS_IQE, 0, "{bad:x?}");
        assert_eq!(fx.r64(regs::IQERCD) & 0xf, regs::IQEI_RESERVED, "{bad:x?}");
        assert_eq!(fx.r64(regs::IQH), head, "IQH stays on the bad descriptor");
    }
    // The largest aligned ones are fine.
    let Sm { fx, mut q, .. } = sm_setup("vtd");
    fx.sync(
        &mut q,
        &[piotlb_page(1, 0, 0, 52), piotlb_page(1, 0, 0x20_0000, 9)],
    );
    assert_eq!(fx.r32(regs::FSTS) & regs::FSTS_IQE, 0);
}

#[test]
fn pasid_cache_invalidation_switches_first_stage_tables() {
    let Sm { fx, dir, mut q, .. } = sm_setup("vtd");
    let (a, b) = (fx.alloc(), fx.alloc());
    fs_map(&fx, a, 4, 0, 0xa000, 12, RW | US);
    fs_map(&fx, b, 4, 0, 0xb000, 12, RW | US);
    fx.set_pasid_entry(dir, 5, fl_entry(a, 1, false));
    assert_eq!(fx.out(SID, Some(5), 0, Access::Read), Ok(0xa000));
    // Linux's teardown/setup: new entry, PASID-cache then PASID-IOTLB invalidation.
    fx.set_pasid_entry(dir, 5, fl_entry(b, 2, false));
    assert_eq!(fx.out(SID, Some(5), 0, Access::Read), Ok(0xa000), "stale");
    fx.sync(&mut q, &[pc_pasid(1, 5), piotlb_pasid(1, 5)]);
    assert_eq!(fx.out(SID, Some(5), 0, Access::Read), Ok(0xb000));
}

#[test]
fn first_stage_permitted_ranges() {
    let fx = Fx::new("vtd,rmrr=0x100000-0x1fffff@00:03.0");
    let r = fx.vtd.permitted_ranges_first_stage(SID, 48);
    assert_eq!(
        r.to_string(),
        "[0x0..=0xfffff, 0x200000..=0xfedfffff, 0xfef00000..=0x7fffffffffff]"
    );
    assert!(fx
        .vtd
        .permitted_ranges_first_stage(SID, 57)
        .windows()
        .is_empty());
    assert!(fx
        .vtd
        .permitted_ranges_first_stage(SID, 39)
        .windows()
        .is_empty());
    let fx57 = Fx::new("vtd,aw=57");
    let r = fx57.vtd.permitted_ranges_first_stage(SID, 57);
    assert_eq!(r.windows().last().unwrap().last, (1 << 56) - 1);
    let nofl = Fx::new("vtd,fl=off,nest=off");
    assert!(nofl
        .vtd
        .permitted_ranges_first_stage(SID, 48)
        .windows()
        .is_empty());
    // The second-stage (IOAS) view: the width of Linux's domains, which first-stage support narrows
    // when SAGAW has widths the first stage lacks (57-bit without FL5LP).
    let last = |opts: &str| {
        let fx = Fx::new(opts);
        let r = fx.vtd.permitted_ranges(SID);
        r.windows().last().unwrap().last
    };
    assert_eq!(last("vtd,aw=57"), (1 << 57) - 1);
    assert_eq!(last("vtd,aw=57,fl5=off"), (1 << 48) - 1);
    assert_eq!(last("vtd,aw=57,fl=off,nest=off"), (1 << 57) - 1);
    assert_eq!(last("vtd"), (1 << 48) - 1);
    assert_eq!(last("vtd,aw=39"), (1 << 39) - 1);
    assert_eq!(last("vtd,aw=57,sm=off"), (1 << 57) - 1);
}
