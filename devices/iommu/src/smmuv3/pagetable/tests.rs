//! Stage-1 walks over hand-built tables for every granule, the fault kinds and permissions (and the
//! helpers the other test files share).

use super::desc::{AF, AP1, AP2, AP_TABLE_NO_EL0, AP_TABLE_RO, UXN};
use super::*;
use crate::mem::{DmaMemory, TestMemory};
use crate::request::{Access, Perms};

pub(super) const MEM: usize = 0x100_0000;

pub(super) fn cfg(stage: Stage, granule: Granule, tsz: u8, ttb: u64) -> WalkConfig {
    WalkConfig {
        stage,
        ttb,
        tsz,
        granule,
        sl0: 0,
        oas_bits: 48,
        affd: false,
        ha: false,
        hd: false,
    }
}

pub(super) fn put(m: &TestMemory, table: u64, index: u64, desc: u64) {
    m.write_u64(table + index * 8, desc).unwrap();
}

pub(super) fn tbl(addr: u64) -> u64 {
    addr | 0b11
}

/// Stage-1 page / block, AF set, unprivileged RW (AP = 01).
pub(super) fn page(addr: u64) -> u64 {
    addr | 0b11 | AF | AP1
}

pub(super) fn block(addr: u64) -> u64 {
    addr | 0b01 | AF | AP1
}

pub(super) fn run(
    m: &dyn DmaMemory,
    c: &WalkConfig,
    iova: u64,
    access: Access,
    privileged: bool,
    mode: Mode,
) -> Result<WalkOutcome, WalkFault> {
    walk(m, c, iova, access, privileged, mode, &mut |a| Ok(a))
}

pub(super) fn tr(m: &dyn DmaMemory, c: &WalkConfig, iova: u64) -> Result<WalkOutcome, WalkFault> {
    run(m, c, iova, Access::Read, false, Mode::Translate)
}

pub(super) fn kinds(steps: &[WalkStep]) -> Vec<&'static str> {
    steps.iter().map(|s| s.kind).collect()
}

pub(super) fn snapshot(m: &TestMemory) -> Vec<u8> {
    let mut v = vec![0; MEM];
    m.read(0, &mut v).unwrap();
    v
}

pub(super) fn fault_kind(r: Result<WalkOutcome, WalkFault>) -> (WalkFaultKind, u8) {
    let f = r.expect_err("expected a fault");
    (f.kind, f.level)
}

#[test]
fn g4k_four_level_page() {
    let m = TestMemory::new(MEM);
    let iova = 0x0000_1234_5678_9abc;
    // Indices: L0 0x24, L1 0xd1, L2 0xb3, L3 0x189, offset 0xabc.
    put(&m, 0x1000, 0x24, tbl(0x2000));
    put(&m, 0x2000, 0xd1, tbl(0x3000));
    put(&m, 0x3000, 0xb3, tbl(0x4000));
    put(&m, 0x4000, 0x189, page(0x0012_3000));
    let c = cfg(Stage::S1, Granule::G4K, 16, 0x1000);
    let o = tr(&m, &c, iova).unwrap();
    assert_eq!((o.output, o.page_size, o.level), (0x12_3000, 0x1000, 3));
    assert_eq!(o.address(iova), 0x12_3abc);
    let rwx = Perms {
        read: true,
        write: true,
        exec: true,
    };
    assert_eq!(o.perms, rwx);
    assert_eq!(kinds(&o.steps), ["table", "table", "table", "page"]);
    let addrs: Vec<u64> = o.steps.iter().map(|s| s.desc_addr).collect();
    assert_eq!(addrs, [0x1120, 0x2688, 0x3598, 0x4c48]);
    assert_eq!(o.steps[3].index, 0x189);
    assert_eq!(o.steps[3].table, 0x4000);
    assert!(o.steps.iter().all(|s| s.desc_ipa.is_none()));
    assert_eq!(o.attrs, AF | AP1);
    assert!(!o.updated && !o.writable_clean);
}

#[test]
fn g4k_three_level_page_and_blocks() {
    let m = TestMemory::new(MEM);
    let c = cfg(Stage::S1, Granule::G4K, 25, 0x1000);
    assert_eq!(c.validate(), Ok(1));
    // 0x45_6789_abcd: L1 0x115, L2 0x13c, L3 0x9a, offset 0xbcd.
    let iova = 0x45_6789_abcd;
    put(&m, 0x1000, 0x115, tbl(0x2000));
    put(&m, 0x2000, 0x13c, tbl(0x3000));
    put(&m, 0x3000, 0x9a, page(0x7000));
    let o = tr(&m, &c, iova).unwrap();
    assert_eq!((o.address(iova), o.level, o.steps.len()), (0x7bcd, 3, 3));
    // 2 MiB block at level 2 (nT/RES0 bits below the block are ignored).
    put(&m, 0x2000, 0x13c, block(0x20_0000) | 0x1_f000);
    let o = tr(&m, &c, iova).unwrap();
    assert_eq!((o.output, o.page_size, o.level), (0x20_0000, 0x20_0000, 2));
    assert_eq!(o.address(iova), 0x29_abcd);
    assert_eq!(kinds(&o.steps), ["table", "block"]);
    // 1 GiB block at level 1.
    put(&m, 0x1000, 0x115, block(0x4000_0000));
    let o = tr(&m, &c, iova).unwrap();
    assert_eq!(
        (o.address(iova), o.page_size, o.level),
        (0x6789_abcd, 1 << 30, 1)
    );
}

#[test]
fn g4k_level0_block_and_level3_reserved_are_translation_faults() {
    let m = TestMemory::new(MEM);
    let c = cfg(Stage::S1, Granule::G4K, 16, 0x1000);
    put(&m, 0x1000, 0, block(0));
    let f = tr(&m, &c, 0x1000).unwrap_err();
    assert_eq!(
        (f.kind, f.level, kinds(&f.steps)),
        (WalkFaultKind::Translation, 0, vec!["invalid"])
    );
    put(&m, 0x1000, 0, tbl(0x2000));
    put(&m, 0x2000, 0, tbl(0x3000));
    put(&m, 0x3000, 0, tbl(0x4000));
    put(&m, 0x4000, 1, page(0x5000) & !0b10);
    assert_eq!(
        fault_kind(tr(&m, &c, 0x1000)),
        (WalkFaultKind::Translation, 3)
    );
    // Invalid (bit 0 clear) at each level.
    for (level, table) in [(3u8, 0x4000u64), (2, 0x3000), (1, 0x2000), (0, 0x1000)] {
        put(&m, table, 0, 0xffff_ffff_ffff_fffe);
        let f = tr(&m, &c, 0).unwrap_err();
        assert_eq!((f.kind, f.level), (WalkFaultKind::Translation, level));
        assert_eq!(f.steps.len(), usize::from(level) + 1);
        assert_eq!(
            (f.stage, f.class, f.ipa, f.fetch_addr),
            (Stage::S1, FaultClass::IN, None, None)
        );
    }
}

#[test]
fn g16k_four_level_and_l2_block() {
    let m = TestMemory::new(MEM);
    let c = cfg(Stage::S1, Granule::G16K, 16, 0x4000);
    assert_eq!(c.validate(), Ok(0));
    // 0x8000_1234_5678: L0 1 (one index bit), L1 0, L2 9, L3 0xd1, offset 0x1678.
    let iova = 0x8000_1234_5678;
    put(&m, 0x4000, 1, tbl(0x8000));
    put(&m, 0x8000, 0, tbl(0xc000));
    put(&m, 0xc000, 9, tbl(0x1_0000));
    put(&m, 0x1_0000, 0xd1, page(0x12_4000));
    let o = tr(&m, &c, iova).unwrap();
    assert_eq!(
        (o.address(iova), o.page_size, o.level),
        (0x12_5678, 0x4000, 3)
    );
    assert_eq!(o.steps[0].desc_addr, 0x4008);
    assert_eq!(o.steps[3].desc_addr, 0x1_0000 + 0xd1 * 8);
    // 32 MiB block at level 2.
    put(&m, 0xc000, 9, block(0x4000_0000));
    let o = tr(&m, &c, iova).unwrap();
    assert_eq!(
        (o.address(iova), o.page_size, o.level),
        (0x4034_5678, 1 << 25, 2)
    );
    // No level-1 block with 16K (without DS).
    put(&m, 0x8000, 0, block(0x10_0000_0000));
    assert_eq!(
        fault_kind(tr(&m, &c, iova)),
        (WalkFaultKind::Translation, 1)
    );
}

#[test]
fn g64k_two_and_three_level() {
    let m = TestMemory::new(MEM);
    // Two levels: tsz 22 (42-bit), start at level 2. 0x123_4567_89ab: L2 0x91a, L3 0x567.
    let c = cfg(Stage::S1, Granule::G64K, 22, 0x1_0000);
    assert_eq!(c.validate(), Ok(2));
    let iova = 0x123_4567_89ab;
    put(&m, 0x1_0000, 0x91a, tbl(0x2_0000));
    put(&m, 0x2_0000, 0x567, page(0x30_0000));
    let o = tr(&m, &c, iova).unwrap();
    assert_eq!(
        (o.address(iova), o.page_size, o.level),
        (0x30_89ab, 0x1_0000, 3)
    );
    let addrs: Vec<u64> = o.steps.iter().map(|s| s.desc_addr).collect();
    assert_eq!(addrs, [0x1_48d0, 0x2_2b38]);
    // 512 MiB block at level 2.
    put(&m, 0x1_0000, 0x91a, block(0x2000_0000));
    let o = tr(&m, &c, iova).unwrap();
    assert_eq!((o.address(iova), o.page_size), (0x2567_89ab, 1 << 29));

    // Three levels: tsz 16, start at level 1. 0xabcd_1234_5678: L1 0x2a, L2 0x1e68, L3 0x1234.
    let c = cfg(Stage::S1, Granule::G64K, 16, 0x4_0000);
    let iova = 0xabcd_1234_5678;
    put(&m, 0x4_0000, 0x2a, tbl(0x5_0000));
    put(&m, 0x5_0000, 0x1e68, tbl(0x6_0000));
    put(&m, 0x6_0000, 0x1234, page(0xab_0000));
    let o = tr(&m, &c, iova).unwrap();
    assert_eq!((o.address(iova), o.level), (0xab_5678, 3));
    assert_eq!(kinds(&o.steps), ["table", "table", "page"]);
    // Level-1 (4 TiB) blocks only with 52-bit output (FEAT_LPA); OA[51:48] from bits 15:12.
    put(&m, 0x4_0000, 0x2a, block(0x0400_0000_0000) | 0x3000);
    assert_eq!(
        fault_kind(tr(&m, &c, iova)),
        (WalkFaultKind::Translation, 1)
    );
    let lpa = WalkConfig { oas_bits: 52, ..c };
    let o = tr(&m, &lpa, iova).unwrap();
    assert_eq!(
        (o.output, o.page_size, o.level),
        (0x0003_0400_0000_0000, 1 << 42, 1)
    );
    assert_eq!(o.address(iova), 0x0003_07cd_1234_5678);
    // The same OA[51:48] bits with a 48-bit output size: Address size fault.
    put(&m, 0x6_0000, 0x1234, page(0xab_0000) | 0x1000);
    put(&m, 0x4_0000, 0x2a, tbl(0x5_0000));
    assert_eq!(
        fault_kind(tr(&m, &c, iova)),
        (WalkFaultKind::AddressSize, 3)
    );
    assert_eq!(tr(&m, &lpa, iova).unwrap().output, 0x0001_0000_00ab_0000);
}

#[test]
fn input_beyond_tsz_is_a_translation_fault_at_the_start_level() {
    let m = TestMemory::new(MEM);
    put(&m, 0x1000, 0, block(0));
    let c = cfg(Stage::S1, Granule::G4K, 25, 0x1000);
    for iova in [1 << 39, 1 << 63, u64::MAX, 0x80_0000_0000] {
        let f = tr(&m, &c, iova).unwrap_err();
        assert_eq!(
            (f.kind, f.level, f.steps.len()),
            (WalkFaultKind::Translation, 1, 0)
        );
    }
    assert!(tr(&m, &c, (1 << 39) - 1).is_err()); // index 511: empty entry
    assert_eq!(tr(&m, &c, 0x3fff_ffff).unwrap().page_size, 1 << 30);
}

#[test]
fn address_size_faults() {
    let m = TestMemory::new(MEM);
    let mut c = cfg(Stage::S1, Granule::G4K, 25, 0x1000);
    c.oas_bits = 40;
    // Next-level table beyond 40 bits: fault at the table descriptor's level.
    put(&m, 0x1000, 0, tbl(0x100_0000_0000));
    let f = tr(&m, &c, 0).unwrap_err();
    assert_eq!(
        (f.kind, f.level, f.steps.len()),
        (WalkFaultKind::AddressSize, 1, 1)
    );
    // Leaf beyond 40 bits.
    put(&m, 0x1000, 0, block(0x80_0000_0000 << 1));
    assert_eq!(fault_kind(tr(&m, &c, 0)), (WalkFaultKind::AddressSize, 1));
    put(&m, 0x1000, 0, block(0xc0_0000_0000));
    assert_eq!(tr(&m, &c, 0).unwrap().output, 0xc0_0000_0000);
    // TTB beyond the output size: fault before any read.
    c.ttb = 1 << 40;
    let f = tr(&m, &c, 0).unwrap_err();
    assert_eq!(
        (f.kind, f.level, f.steps.len()),
        (WalkFaultKind::AddressSize, 1, 0)
    );
}

#[test]
fn external_abort_outside_ram() {
    let m = TestMemory::new(MEM);
    let c = cfg(Stage::S1, Granule::G4K, 25, 0x1000);
    // A table descriptor pointing outside RAM: the next level's read fails.
    put(&m, 0x1000, 0, tbl(0xf_0000_0000));
    let f = tr(&m, &c, 0x20_3000).unwrap_err();
    assert_eq!((f.kind, f.level), (WalkFaultKind::ExternalAbort, 2));
    assert_eq!(f.fetch_addr, Some(0xf_0000_0008));
    assert_eq!(kinds(&f.steps), ["table"]);
    // The TTB itself outside RAM.
    let c = cfg(Stage::S1, Granule::G4K, 25, 0xff_ffff_f000);
    let f = tr(&m, &c, 1 << 30).unwrap_err();
    assert_eq!(
        (f.kind, f.level, f.fetch_addr),
        (WalkFaultKind::ExternalAbort, 1, Some(0xff_ffff_f008))
    );
}

#[test]
fn stage1_ap_matrix_through_walks() {
    let m = TestMemory::new(MEM);
    let c = cfg(Stage::S1, Granule::G4K, 25, 0x1000);
    // AP[2:1] -> (priv read, priv write, unpriv read, unpriv write).
    for (ap, expect) in [
        (0b00u64, [true, true, false, false]),
        (0b01, [true, true, true, true]),
        (0b10, [true, false, false, false]),
        (0b11, [true, false, true, false]),
    ] {
        put(&m, 0x1000, 0, (ap << 6) | AF | 0b01);
        let mut got = [false; 4];
        for (i, (privileged, access)) in [
            (true, Access::Read),
            (true, Access::Write),
            (false, Access::Read),
            (false, Access::Write),
        ]
        .into_iter()
        .enumerate()
        {
            let r = run(&m, &c, 0x1234, access, privileged, Mode::Translate);
            got[i] = match r {
                Ok(_) => true,
                Err(f) => {
                    assert_eq!((f.kind, f.level), (WalkFaultKind::Permission, 1));
                    false
                }
            };
        }
        assert_eq!(got, expect, "AP {ap:#04b}");
    }
    // Execute permission is recorded: UXN denies unprivileged execute.
    put(&m, 0x1000, 0, block(0) | UXN);
    assert!(!tr(&m, &c, 0).unwrap().perms.exec);
    put(&m, 0x1000, 0, block(0) | AP2);
    assert!(tr(&m, &c, 0).unwrap().perms.exec);
}

#[test]
fn ap_table_restricts_lower_levels() {
    let m = TestMemory::new(MEM);
    let c = cfg(Stage::S1, Granule::G4K, 25, 0x1000);
    put(&m, 0x1000, 0, tbl(0x2000) | AP_TABLE_RO);
    put(&m, 0x2000, 0, tbl(0x3000));
    put(&m, 0x3000, 0, page(0x9000));
    let w = |privileged, access| run(&m, &c, 0, access, privileged, Mode::Translate);
    assert!(!w(false, Access::Read).unwrap().perms.write);
    assert_eq!(
        fault_kind(w(false, Access::Write)),
        (WalkFaultKind::Permission, 3)
    );
    assert_eq!(
        fault_kind(w(true, Access::Write)),
        (WalkFaultKind::Permission, 3)
    );
    // APTable[0] at level 2: no unprivileged access below, privileged keeps RW.
    put(&m, 0x1000, 0, tbl(0x2000));
    put(&m, 0x2000, 0, tbl(0x3000) | AP_TABLE_NO_EL0);
    assert_eq!(
        fault_kind(w(false, Access::Read)),
        (WalkFaultKind::Permission, 3)
    );
    let p = w(true, Access::Write).unwrap().perms;
    assert_eq!((p.read, p.write), (true, true));
}
