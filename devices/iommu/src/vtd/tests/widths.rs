//! Address widths between the table depths (`aw=40..=56`): MGAW below the AGAW of the tables, every
//! translation faulting inputs at or above 2^aw (04h legacy, 83h scalable), and the permitted ranges.

use super::fs_util::*;
use super::*;
use crate::ranges::IovaWindow;
use crate::vtd::LookupOutcome;

fn w(first: u64, last: u64) -> IovaWindow {
    IovaWindow { first, last }
}

#[test]
fn legacy_45_bit_unit_with_4_level_tables() {
    let fx = Fx::new("vtd,aw=45,sm=off");
    let root = fx.alloc();
    linux_bringup(&fx, root, false);
    assert_eq!(
        (fx.r64(regs::CAP) >> 8) & 0x1f,
        0x6,
        "SAGAW: 3- and 4-level"
    );
    assert_eq!((fx.r64(regs::CAP) >> 16) & 0x3f, 44, "MGAW");
    // AW=2 (48-bit, 4-level) as Linux programs it: addresses stop at 2^45.
    let top = fx.alloc();
    fx.set_legacy_context(root, SID, top | 1, 2 | 1 << 8);
    let last_page = (1u64 << 45) - 0x1000;
    fx.map(top, 4, last_page, 0x7000, 12, (true, true));
    fx.map(top, 4, 1 << 45, 0x8000, 12, (true, true)); // in the table, beyond MGAW
    assert_eq!(
        fx.out(SID, None, last_page + 0xfff, Access::Write),
        Ok(0x7fff)
    );
    assert_eq!(fx.out(SID, None, 1 << 45, Access::Read), Err(0x04));
    assert_eq!(fx.out(SID, None, 1 << 47, Access::Read), Err(0x04));
    assert_eq!(fx.out(SID, None, u64::MAX, Access::Write), Err(0x04));
    let l = fx.vtd.lookup(SID, None, 1 << 45, Access::Read);
    assert!(matches!(
        l.outcome,
        LookupOutcome::Fault { reason: 0x04, .. }
    ));
    // AW=1 (39-bit, 3-level) is in SAGAW too; AW=3 (5-level) is not: invalid context entry.
    let sid2 = SID + 1;
    let top3 = fx.alloc();
    fx.set_legacy_context(root, sid2, top3 | 1, 1 | 2 << 8);
    fx.map(top3, 3, 0x1000, 0x9000, 12, (true, false));
    assert_eq!(fx.out(sid2, None, 0x1000, Access::Read), Ok(0x9000));
    assert_eq!(fx.out(sid2, None, 1 << 39, Access::Read), Err(0x04));
    let sid3 = SID + 2;
    fx.set_legacy_context(root, sid3, fx.alloc() | 1, 3 | 3 << 8);
    assert_eq!(fx.out(sid3, None, 0, Access::Read), Err(0x03));
    // Pass-through (TT=10) is bounded by MGAW as well.
    let sid4 = SID + 3;
    fx.set_legacy_context(root, sid4, 2 << 2 | 1, 2 | 4 << 8);
    assert_eq!(
        fx.out(sid4, None, (1 << 45) - 1, Access::Write),
        Ok((1 << 45) - 1)
    );
    assert_eq!(fx.out(sid4, None, 1 << 45, Access::Write), Err(0x04));
}

#[test]
fn scalable_units_between_the_table_depths() {
    for (aw, aw_code, levels) in [(45u32, 2u64, 4u32), (50, 3, 5), (40, 2, 4), (56, 3, 5)] {
        let Sm { fx, dir, .. } = sm_setup(&format!("vtd,aw={aw}"));
        let top = fx.alloc();
        fx.set_pasid_entry(
            dir,
            0,
            [top | 2 << 6 | aw_code << 2 | 1, 1, 0, 0, 0, 0, 0, 0],
        );
        let last_page = (1u64 << aw) - 0x1000;
        fx.map(top, levels, last_page, 0x7000, 12, (true, true));
        fx.map(top, levels, 0x4000, 0x8000, 12, (true, false));
        assert_eq!(
            fx.out(SID, None, last_page + 8, Access::Write),
            Ok(0x7008),
            "aw={aw}"
        );
        assert_eq!(fx.out(SID, None, 0x4010, Access::Read), Ok(0x8010));
        assert_eq!(
            fx.out(SID, None, 1 << aw, Access::Read),
            Err(0x83),
            "aw={aw}"
        );
        assert_eq!(fx.out(SID, None, u64::MAX, Access::Read), Err(0x83));
        let l = fx.vtd.lookup(SID, None, 1 << aw, Access::Write);
        assert!(
            matches!(l.outcome, LookupOutcome::Fault { reason: 0x83, .. }),
            "{:?}",
            l.outcome
        );
        // Pass-through PASID entry: the same bound.
        fx.set_pasid_entry(dir, 7, [4 << 6 | 1, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            fx.out(SID, Some(7), (1 << aw) - 1, Access::Read),
            Ok((1 << aw) - 1)
        );
        assert_eq!(fx.out(SID, Some(7), 1 << aw, Access::Read), Err(0x83));
        // No first stage at these widths: PGTT 001b is an unsupported type (5Bh).
        fx.set_pasid_entry(dir, 8, fl_entry(fx.alloc(), 3, false));
        assert_eq!(fx.out(SID, Some(8), 0, Access::Read), Err(0x5b));
        assert_eq!(fx.r64(regs::ECAP) & regs::ECAP_FLTS, 0);
    }
}

#[test]
fn permitted_ranges_follow_the_width() {
    let ranges = |opts: &str| {
        let fx = Fx::new(opts);
        fx.vtd.permitted_ranges(SID).windows().to_vec()
    };
    // The seed's example: a 45-bit IOMMU.
    assert_eq!(
        ranges("vtd,aw=45"),
        vec![w(0, 0xfedf_ffff), w(0xfef0_0000, 0x1fff_ffff_ffff)]
    );
    assert_eq!(
        ranges("vtd,aw=45,sm=off,rmrr=0x100000-0x1fffff@00:03.0"),
        vec![
            w(0, 0xf_ffff),
            w(0x20_0000, 0xfedf_ffff),
            w(0xfef0_0000, 0x1fff_ffff_ffff)
        ]
    );
    for aw in [40u32, 47, 49, 52, 56] {
        let r = ranges(&format!("vtd,aw={aw}"));
        assert_eq!(r.last().map(|w| w.last), Some((1u64 << aw) - 1), "aw={aw}");
    }
    // The table-depth widths are unchanged.
    assert_eq!(ranges("vtd,aw=39").last().unwrap().last, (1 << 39) - 1);
    assert_eq!(ranges("vtd").last().unwrap().last, (1 << 48) - 1);
    assert_eq!(ranges("vtd,aw=57").last().unwrap().last, (1 << 57) - 1);
    // First-stage address spaces do not exist at 45 bits.
    let fx = Fx::new("vtd,aw=45");
    assert!(fx
        .vtd
        .permitted_ranges_first_stage(SID, 48)
        .windows()
        .is_empty());
}
