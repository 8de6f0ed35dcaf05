//! Every STE configuration, linear and 2-level stream and CD tables, stage 1 / stage 2 / nested at
//! 4K pages and 2M blocks, 16K and 64K granules, and the permitted ranges each gives.

use super::*;
use crate::ranges::IovaWindow;
use crate::smmuv3::{LookupResult, Path};

/// A stage 1 stream: CD at a fresh address, 4K tables, returns (cd address, root).
pub fn s1_stream(rig: &Rig, sid: u32, asid: u16) -> (u64, u64) {
    let cd = rig.alloc(64);
    let root = rig.alloc(0x1000);
    rig.write_words(cd, &[cd0(asid), root]);
    rig.write_ste(sid, [ste0(0b101) | cd, 0, 0, 0, 0, 0, 0, 0]);
    (cd, root)
}

/// A stage 2 stream with VMID `vmid`: returns the stage 2 root.
pub fn s2_stream(rig: &Rig, sid: u32, vmid: u16) -> u64 {
    let root = rig.alloc(0x1000);
    rig.write_ste(sid, [ste0(0b110), 0, ste2_s2(vmid), root, 0, 0, 0, 0]);
    root
}

#[test]
fn stage1_linear_and_two_level_stream_tables() {
    for two_level in [false, true] {
        let rig = Rig::new(Smmuv3Config::default());
        rig.bringup(two_level);
        let (_, root) = s1_stream(&rig, 0x18, 1);
        rig.map4k(root, 0x1000_0000, 0x8000_0000, 3, S1_RW);
        rig.map4k(root, 0x4000_0000, 0x9000_0000, 2, S1_RW);
        let t = rig
            .translate(0x18, None, 0x1000_0123, Access::Write)
            .unwrap();
        assert_eq!(
            (t.iova, t.output, t.page_size),
            (0x1000_0000, 0x8000_0000, 0x1000)
        );
        let t = rig
            .translate(0x18, None, 0x401f_f000, Access::Read)
            .unwrap();
        assert_eq!(
            (t.iova, t.output, t.page_size),
            (0x4000_0000, 0x9000_0000, 0x20_0000)
        );
        assert!(t.perms.read && t.perms.write);
        assert!(rig
            .translate(0x18, None, 0x2000_0000, Access::Read)
            .is_err());
        if two_level {
            // A SID under an L1 descriptor nobody filled: SPAN = 0 -> C_BAD_STREAMID.
            let f = rig.translate(0x300, None, 0, Access::Read).unwrap_err();
            assert_eq!(f.reason, 0x02);
        }
    }
}

#[test]
fn bypass_abort_and_invalid_configs() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(true);
    rig.write_ste(1, [ste0(0b100), 0, 0, 0, 0, 0, 0, 0]);
    rig.write_ste(2, [ste0(0b000), 0, 0, 0, 0, 0, 0, 0]);
    rig.write_ste(3, [0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(rig.pa(1, None, 0xabc_d000, Access::Write), 0xabc_d000);
    let f = rig.translate(2, None, 0x1000, Access::Read).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0, false), "abort: no event");
    let f = rig.translate(3, None, 0x1000, Access::Read).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0x04, true), "V = 0: C_BAD_STE");
    // A substream on a bypass stream is C_BAD_SUBSTREAMID.
    assert_eq!(
        rig.translate(1, Some(1), 0, Access::Read)
            .unwrap_err()
            .reason,
        0x08
    );
    assert_eq!(
        rig.smmu.permitted_ranges(1, None).windows(),
        &[IovaWindow::aperture(48)]
    );
    assert!(rig.smmu.permitted_ranges(2, None).windows().is_empty());
    assert!(rig.smmu.permitted_ranges(3, None).windows().is_empty());
    // ILLEGAL stage 2 fields: AArch32 tables, big-endian, stall, reserved granule.
    for bad in [
        ste2_s2(1) & !(1 << 51),
        ste2_s2(1) | 1 << 52,
        ste2_s2(1) | 1 << 57,
        ste2_s2(1) | 3 << 46,
        ste2_s2(1) & !(0x3f << 32) | 8 << 32,
    ] {
        rig.write_ste(4, [ste0(0b110), 0, bad, 0x1000, 0, 0, 0, 0]);
        rig.cmd(0x3, 0); // CFGI_STE sid 0 (not 4): nothing was cached for 4 anyway.
        assert_eq!(
            rig.translate(4, None, 0, Access::Read).unwrap_err().reason,
            0x04,
            "{bad:#x}"
        );
    }
}

#[test]
fn stage2_only_4k_and_2m() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    let root = s2_stream(&rig, 0x20, 7);
    rig.map4k(root, 0x5000, 0x7000, 3, S2_RW);
    rig.map4k(root, 0x60_0000, 0x20_0000, 2, AF | S2_R);
    assert_eq!(rig.pa(0x20, None, 0x5abc, Access::Write), 0x7abc);
    let t = rig.translate(0x20, None, 0x61_2345, Access::Read).unwrap();
    assert_eq!(
        (t.output, t.page_size, t.perms.write),
        (0x20_0000, 0x20_0000, false)
    );
    let f = rig
        .translate(0x20, None, 0x61_2345, Access::Write)
        .unwrap_err();
    assert_eq!(f.reason, 0x13);
    assert_eq!(
        rig.smmu.permitted_ranges(0x20, None).windows(),
        &[IovaWindow::aperture(48)]
    );
}

/// Identity stage 2 over RAM (2M blocks) plus `extra` (ipa, pa) 4K pages.
pub fn nested_stream(
    rig: &Rig,
    sid: u32,
    vmid: u16,
    asid: u16,
    extra: &[(u64, u64)],
) -> (u64, u64) {
    let s2root = rig.alloc(0x1000);
    for a in (0..MEM_SIZE as u64).step_by(0x20_0000) {
        rig.map4k(s2root, a, a, 2, S2_RW);
    }
    for &(ipa, pa) in extra {
        rig.map4k(s2root, ipa, pa, 3, S2_RW);
    }
    let cd = rig.alloc(64);
    let s1root = rig.alloc(0x1000);
    rig.write_words(cd, &[cd0(asid), s1root]);
    rig.write_ste(
        sid,
        [ste0(0b111) | cd, 0, ste2_s2(vmid), s2root, 0, 0, 0, 0],
    );
    (s1root, s2root)
}

#[test]
fn nested_translation_and_stage2_faults_on_stage1_tables() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(true);
    let (s1root, s2root) = nested_stream(&rig, 0x18, 3, 9, &[(0x8000_0000, 0xa000_0000)]);
    rig.map4k(s1root, 0x1000, 0x8000_0000, 3, S1_RW);
    let t = rig.translate(0x18, None, 0x1234, Access::Write).unwrap();
    assert_eq!((t.output, t.page_size), (0xa000_0000, 0x1000));
    match rig.smmu.lookup(0x18, None, 0x1234, Access::Read).result {
        LookupResult::Translated { path, .. } => assert_eq!(path, Path::Nested),
        r => panic!("{r:?}"),
    }
    // A stage 1 output stage 2 does not map: S2 fault, CLASS = IN, IPA = the output.
    rig.map4k(s1root, 0x2000, 0x9000_0000, 3, S1_RW);
    let f = rig.translate(0x18, None, 0x2000, Access::Read).unwrap_err();
    assert_eq!(f.reason, 0x10);
    let ev = rig.events();
    let last = ev.last().unwrap();
    assert_eq!(last[1] >> 39 & 1, 1, "S2");
    assert_eq!(last[1] >> 40 & 3, 2, "CLASS = IN");
    assert_eq!(last[3], 0x9000_0000, "IPA");
    // Unmap the stage 2 block holding the stage 1 root table: CLASS = TT.
    let l0 = rig.mem.read_u64(s2root).unwrap() & 0xffff_ffff_f000;
    let l1 = rig.mem.read_u64(l0).unwrap() & 0xffff_ffff_f000;
    let blk = s1root >> 21;
    rig.mem.write_u64(l1 + blk * 8, 0).unwrap();
    rig.cmd(0x28 | 3 << 32, 0); // TLBI_S12_VMALL vmid 3
    rig.sync();
    let f = rig.translate(0x18, None, 0x1234, Access::Read).unwrap_err();
    assert_eq!(f.reason, 0x10);
    let ev = rig.events();
    let last = ev.last().unwrap();
    assert_eq!(last[1] >> 39 & 1, 1);
    assert_eq!(last[1] >> 40 & 3, 1, "CLASS = TT");
    assert_eq!(last[3], s1root & !0xfff, "IPA of the S1 table entry");
}

#[test]
fn cd_tables_linear_and_two_level_with_substreams() {
    for s1fmt in [0u64, 1, 2] {
        let rig = Rig::new(Smmuv3Config::default());
        rig.bringup(true);
        let cdmax = 12u64; // 4096 CDs
        let ctx = if s1fmt == 0 {
            rig.alloc(64 << cdmax)
        } else {
            rig.alloc(0x1000)
        };
        let cd_for = |ssid: u64| -> u64 {
            match s1fmt {
                0 => ctx + ssid * 64,
                _ => {
                    let split = if s1fmt == 1 { 6 } else { 10 };
                    let l1 = ctx + (ssid >> split) * 8;
                    let mut d = rig.mem.read_u64(l1).unwrap();
                    if d & 1 == 0 {
                        d = rig.alloc(64 << split) | 1;
                        rig.mem.write_u64(l1, d).unwrap();
                    }
                    (d & !0xfff) + (ssid & ((1 << split) - 1)) * 64
                }
            }
        };
        let mut roots = Vec::new();
        for ssid in [0u64, 5, 1000, 4095] {
            let root = rig.alloc(0x1000);
            rig.write_words(cd_for(ssid), &[cd0(100 + ssid as u16), root]);
            rig.map4k(root, 0x1000, 0x10_0000 * (ssid + 1), 3, S1_RW);
            roots.push(root);
        }
        // S1DSS = SSID0: untagged traffic uses CD 0, SSID 0 itself is then refused.
        let s1dss = 2u64;
        rig.write_ste(
            0x18,
            [
                ste0(0b101) | s1fmt << 4 | ctx | cdmax << 59,
                s1dss,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
        );
        assert_eq!(rig.pa(0x18, None, 0x1000, Access::Read), 0x10_0000);
        for ssid in [5u32, 1000, 4095] {
            let pa = rig.pa(0x18, Some(ssid), 0x1000, Access::Read);
            assert_eq!(
                pa,
                0x10_0000 * (u64::from(ssid) + 1),
                "fmt {s1fmt} ssid {ssid}"
            );
        }
        assert_eq!(
            rig.translate(0x18, Some(0), 0x1000, Access::Read)
                .unwrap_err()
                .reason,
            0x08
        );
        assert_eq!(
            rig.translate(0x18, Some(4096), 0x1000, Access::Read)
                .unwrap_err()
                .reason,
            0x08
        );
        // A CD nobody wrote (V = 0): C_BAD_CD; an L1CD with V = 0: C_BAD_SUBSTREAMID.
        let f = rig
            .translate(0x18, Some(6), 0x1000, Access::Read)
            .unwrap_err();
        assert_eq!(f.reason, 0x0a);
        if s1fmt != 0 {
            assert_eq!(
                rig.translate(0x18, Some(3000), 0x1000, Access::Read)
                    .unwrap_err()
                    .reason,
                0x08
            );
        }
        // S1DSS = bypass and terminate for untagged traffic.
        for (dss, expect) in [(1u64, Ok(0x1000)), (0, Err(0x06))] {
            rig.write_ste(
                0x19,
                [
                    ste0(0b101) | s1fmt << 4 | ctx | cdmax << 59,
                    dss,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ],
            );
            rig.cmd(0x3 | 0x19 << 32, 0);
            rig.sync();
            let r = rig.translate(0x19, None, 0x1000, Access::Read);
            assert_eq!(r.map(|t| t.translate(0x1000)).map_err(|f| f.reason), expect);
        }
    }
}

#[test]
fn granules_16k_and_64k() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    // 16K: T0SZ = 28 (36-bit input) starts at level 2; TG0 = 0b10.
    let root16 = rig.alloc(0x4000);
    rig.map_gran(root16, (14, 36, 2), 0x1234_4000, 0x7654_0000, S1_RW);
    let cd = rig.alloc(64);
    rig.write_words(cd, &[cd0(1) & !0xff | 28 | 2 << 6, root16]);
    rig.write_ste(0x10, [ste0(0b101) | cd, 0, 0, 0, 0, 0, 0, 0]);
    let t = rig
        .translate(0x10, None, 0x1234_5678, Access::Read)
        .unwrap();
    assert_eq!((t.output, t.page_size), (0x7654_0000, 0x4000));
    // 64K stage 2: S2T0SZ = 22 (42-bit), SL0 = 1 (level 2), S2TG = 0b01.
    let root64 = rig.alloc(0x1_0000);
    rig.map_gran(root64, (16, 42, 2), 0x3_0001_0000, 0x5_0000_0000, S2_RW);
    let dw2 = 7u64 | 22 << 32 | 1 << 38 | 1 << 46 | 5 << 48 | 1 << 51 | 1 << 58;
    rig.write_ste(0x11, [ste0(0b110), 0, dw2, root64, 0, 0, 0, 0]);
    let t = rig
        .translate(0x11, None, 0x3_0001_abcd, Access::Write)
        .unwrap();
    assert_eq!((t.output, t.page_size), (0x5_0000_0000, 0x1_0000));
    assert_eq!(
        rig.smmu.permitted_ranges(0x11, None).windows(),
        &[IovaWindow::aperture(42)]
    );
    assert_eq!(
        rig.smmu.permitted_ranges(0x10, None).windows(),
        &[IovaWindow::aperture(36)]
    );
}

#[test]
fn permitted_ranges_ttb1_and_reserved_holes() {
    let cfg = Smmuv3Config {
        reserved: vec![(0xfee0_0000, 0xfeef_ffff)],
        ..Default::default()
    };
    let rig = Rig::new(cfg);
    // SMMUEN = 0, GBPA bypass: the OAS aperture minus the hole.
    assert_eq!(
        rig.smmu.permitted_ranges(0x18, None).windows(),
        &[
            IovaWindow::new(0, 0xfedf_ffff).unwrap(),
            IovaWindow::new(0xfef0_0000, (1 << 48) - 1).unwrap()
        ]
    );
    rig.bringup(false);
    let cd = rig.alloc(64);
    // TTB0 39-bit and TTB1 39-bit (EPD1 clear, T1SZ = 25, TG1 = 4K = 0b10).
    let w0 = (cd0(1) & !(1 << 30) & !0x3f) | 25 | 25 << 16 | 2 << 22;
    rig.write_words(cd, &[w0, rig.alloc(0x1000), rig.alloc(0x1000)]);
    rig.write_ste(0x18, [ste0(0b101) | cd, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        rig.smmu.permitted_ranges(0x18, None).windows(),
        &[
            IovaWindow::new(0, 0xfedf_ffff).unwrap(),
            IovaWindow::new(0xfef0_0000, (1 << 39) - 1).unwrap(),
            IovaWindow::new(!0u64 << 39, u64::MAX).unwrap()
        ]
    );
    // A TTB1 address translates through TTB1's table.
    let ttb1 = rig.mem.read_u64(cd + 16).unwrap();
    let va = 0xffff_ff80_0000_1000u64;
    rig.map_gran(ttb1, (12, 39, 1), va & ((1 << 39) - 1), 0x4000, S1_RW);
    assert_eq!(rig.pa(0x18, None, va | 0x10, Access::Read), 0x4010);
    // Between the ranges: stage 1 translation fault.
    assert_eq!(
        rig.translate(0x18, None, 1 << 40, Access::Read)
            .unwrap_err()
            .reason,
        0x10
    );
}

/// Regression (fuzz `smmuv3_ste_cd`): a CD whose disabled range has TxSZ = 0 (a 64-bit range) made the
/// TTB0/TTB1 range selection shift by 64. Any TxSZ must give an architected answer: with both walks
/// disabled every address is a stage 1 translation fault (EPDx, §5.4).
#[test]
fn cd_with_zero_txsz_and_disabled_walks_faults() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    let cd = rig.alloc(64);
    for (t0sz, t1sz) in [(0u64, 0u64), (0, 25), (16, 0)] {
        // EPD0 (bit 14) and EPD1 (bit 30) set: neither range may walk.
        let w0 = (cd0(1) & !0x3f & !(0x3f << 16)) | t0sz | t1sz << 16 | 1 << 14 | 1 << 30;
        rig.write_words(cd, &[w0, 0, 0]);
        rig.write_ste(0x18, [ste0(0b101) | cd, 0, 0, 0, 0, 0, 0, 0]);
        rig.cmd(0x4, 31); // CFGI_ALL
        rig.sync();
        for iova in [0, 0x1234_5000, 1 << 63, u64::MAX] {
            let e = rig.translate(0x18, None, iova, Access::Read).unwrap_err();
            assert_eq!(e.reason, 0x10, "T0SZ {t0sz} T1SZ {t1sz} IOVA {iova:#x}");
            let l = rig.smmu.lookup(0x18, None, iova, Access::Read);
            assert!(
                matches!(l.result, LookupResult::Event { id: 0x10, .. }),
                "{l:?}"
            );
        }
    }
}
