//! Legacy-mode translation: root/context tables, 3/4/5-level walks, superpages, pass-through, faults.

use super::*;

/// A legacy-mode unit with translation on and an empty root table.
fn setup(opts: &str) -> (Fx, u64, Queue) {
    let fx = Fx::new(opts);
    let root = fx.alloc();
    let q = linux_bringup(&fx, root, false);
    (fx, root, q)
}

/// Context entry for a multi-level table: lo = SLPTPTR | P, hi = AW | DID.
fn ctx(top: u64, aw_code: u64, did: u16) -> (u64, u64) {
    (top | 1, aw_code | u64::from(did) << 8)
}

#[test]
fn walks_with_3_4_5_levels_and_superpages() {
    for (aw, aw_code, levels) in [(39u32, 1u64, 3u32), (48, 2, 4), (57, 3, 5)] {
        let (fx, root, _q) = setup(&format!("vtd,sm=off,aw={aw}"));
        let top = fx.alloc();
        let (lo, hi) = ctx(top, aw_code, 1);
        fx.set_legacy_context(root, SID, lo, hi);
        let high = (1u64 << (aw - 1)) | 0x4000; // near the top of the aperture
        fx.map(top, levels, 0x1000, 0x20_0000, 12, (true, true));
        fx.map(top, levels, high, 0x30_0000, 12, (true, false));
        fx.map(top, levels, 0x4000_0000, 0x60_0000, 21, (true, true));
        fx.map(top, levels, 0x8000_0000, 0x4000_0000, 30, (true, true));
        assert_eq!(
            fx.out(SID, None, 0x1abc, Access::Write),
            Ok(0x20_0abc),
            "aw={aw}"
        );
        assert_eq!(fx.out(SID, None, high + 8, Access::Read), Ok(0x30_0008));
        assert_eq!(
            fx.out(SID, None, high, Access::Write),
            Err(0x5),
            "read-only"
        );
        let t = fx.xlate(SID, None, 0x4012_3456, Access::Read).unwrap();
        assert_eq!(
            (t.iova, t.output, t.page_size),
            (0x4000_0000, 0x60_0000, 1 << 21)
        );
        let t = fx.xlate(SID, None, 0xbfff_ffff, Access::Write).unwrap();
        assert_eq!(
            (t.iova, t.output, t.page_size),
            (0x8000_0000, 0x4000_0000, 1 << 30)
        );
        // Beyond the address width.
        assert_eq!(fx.out(SID, None, 1 << aw, Access::Read), Err(0x4));
        assert_eq!(fx.out(SID, None, u64::MAX, Access::Read), Err(0x4));
        // Not mapped: R=W=0 is reported per access type.
        assert_eq!(fx.out(SID, None, 0x2000, Access::Read), Err(0x6));
        assert_eq!(fx.out(SID, None, 0x2000, Access::Write), Err(0x5));
    }
}

#[test]
fn smaller_agaw_on_a_wider_unit_and_unsupported_agaw() {
    let (fx, root, _q) = setup("vtd,sm=off,aw=48");
    let top = fx.alloc();
    let (lo, hi) = ctx(top, 1, 1); // a 39-bit, 3-level domain
    fx.set_legacy_context(root, SID, lo, hi);
    fx.map(top, 3, 0x7f_ffff_f000, 0x9000, 12, (true, true));
    assert_eq!(fx.out(SID, None, 0x7f_ffff_f010, Access::Read), Ok(0x9010));
    assert_eq!(
        fx.out(SID, None, 0x80_0000_0000, Access::Read),
        Err(0x4),
        "X = min(MGAW, AW)"
    );
    // AW=3 (57-bit) is not in SAGAW of a 48-bit unit: invalid context entry.
    let sid2 = 0x20;
    let (lo, hi) = ctx(top, 3, 2);
    fx.set_legacy_context(root, sid2, lo, hi);
    assert_eq!(fx.out(sid2, None, 0x1000, Access::Read), Err(0x3));
}

#[test]
fn pass_through() {
    let (fx, root, _q) = setup("vtd,sm=off");
    fx.set_legacy_context(root, SID, 2 << 2 | 1, 2 | 7 << 8);
    let t = fx.xlate(SID, None, 0x1234_5678, Access::Write).unwrap();
    assert_eq!(t.translate(0x1234_5678), 0x1234_5678);
    assert_eq!(t.page_size, 1 << 30);
    // A page overlapping the interrupt range shrinks to 4 KiB, so no access can run into it.
    let t = fx.xlate(SID, None, 0xfed0_0000, Access::Write).unwrap();
    assert_eq!((t.iova, t.page_size), (0xfed0_0000, 0x1000));
    assert_eq!(fx.out(SID, None, 1 << 48, Access::Read), Err(0x4));
}

#[test]
fn structure_faults() {
    let (fx, root, mut q) = setup("vtd,sm=off,nfr=16");
    let top = fx.alloc();
    fx.map(top, 4, 0, 0x5000, 12, (true, true));
    // Root entry not present.
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x1));
    // Context entry not present (root present).
    fx.set_legacy_context(root, 0x10, top | 1, 2 | 1 << 8);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x2));
    // Reserved bits: root entry (bit 1), context entry (lo bit 4, hi bit 7).
    fx.set_legacy_context(root, SID, top | 1 | 1 << 4, 2 | 1 << 8);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0xb));
    fx.set_legacy_context(root, SID, top | 1, 2 | 1 << 7);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0xb));
    // TT=01 (device-TLB) without ECAP.DT and TT=11: invalid context entry.
    fx.set_legacy_context(root, SID, top | 1 << 2 | 1, 2 | 1 << 8);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x3));
    fx.set_legacy_context(root, SID, top | 3 << 2 | 1, 2 | 1 << 8);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x3));
    // SLPTPTR outside RAM: the top-level table cannot be read (LCT.4 -> 0x3).
    fx.set_legacy_context(root, SID, RAM | 1, 2 | 1 << 8);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x3));
    // A lower-level table outside RAM: 0x7. (The present context entry changes: invalidate it.)
    fx.set_legacy_context(root, SID, top | 1, 2 | 1 << 8);
    fx.sync(&mut q, &[cc_device(1, SID)]);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Ok(0x5000));
    fx.set_entry(top, 4, 0x100_0000_0000, 39, RAM | 3);
    assert_eq!(fx.out(SID, None, 0x100_0000_0000, Access::Read), Err(0x7));
    // Reserved bit in a PTE (bit 62), and PS in an SL-PML4E.
    fx.set_entry(top, 4, 0x1000, 12, 0x6000 | 1 << 62 | 3);
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Err(0xc));
    fx.set_entry(top, 4, 0x180_0000_0000, 39, 0x83);
    assert_eq!(fx.out(SID, None, 0x180_0000_0000, Access::Read), Err(0xc));
    // Context table outside RAM (0x9), root entry reserved (0xa).
    let bus1 = 0x100;
    fx.wr(root + 16, RAM | 1);
    assert_eq!(fx.out(bus1, None, 0, Access::Read), Err(0x9));
    fx.wr(root + 16, fx.alloc() | 3);
    assert_eq!(fx.out(bus1, None, 0, Access::Read), Err(0xa));
    // Translated address in the interrupt range (LGN.4 -> 0xe).
    fx.map(top, 4, 0x2000, 0xfee0_0000, 12, (true, true));
    assert_eq!(fx.out(SID, None, 0x2000, Access::Write), Err(0xe));
    // A request with PASID in legacy mode (RTA.2).
    assert_eq!(fx.out(SID, Some(1), 0, Access::Read), Err(0x31));
    assert_eq!(fx.r32(regs::FSTS) & regs::FSTS_PFO, 0, "all recorded");
}

#[test]
fn root_table_outside_ram_and_bad_ttm() {
    let (fx, _root, _q) = setup("vtd,sm=off");
    fx.w64(regs::RTADDR, RAM);
    fx.gcmd(0, 0, regs::GCMD_SRTP);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x8));
    // TTM 01 (scalable) on a unit without SMTS, and the reserved TTM 10.
    fx.w64(regs::RTADDR, fx.alloc() | 1 << 10);
    fx.gcmd(0, 0, regs::GCMD_SRTP);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x30));
    fx.w64(regs::RTADDR, fx.alloc() | 2 << 10);
    fx.gcmd(0, 0, regs::GCMD_SRTP);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x30));
}
