//! Stage-2 walks: SL0 variants, concatenated start tables, S2AP/XN, S2 faults and HTTU.

use super::desc::{AF, AP_TABLE_NO_EL0, AP_TABLE_RO, DBM, PXN, UXN};
use super::tests::{cfg, fault_kind, kinds, put, run, snapshot, tbl, tr, MEM};
use super::*;
use crate::mem::{DmaMemory, TestMemory};
use crate::request::{Access, Perms};

const S2AP_RW: u64 = 0b11 << 6;

fn s2(granule: Granule, tsz: u8, sl0: u8, ttb: u64) -> WalkConfig {
    WalkConfig {
        sl0,
        ..cfg(Stage::S2, granule, tsz, ttb)
    }
}

fn page(addr: u64) -> u64 {
    addr | 0b11 | AF | S2AP_RW
}

fn block(addr: u64) -> u64 {
    addr | 0b01 | AF | S2AP_RW
}

#[test]
fn g4k_sl0_1_two_concatenated_level1_tables() {
    let m = TestMemory::new(MEM);
    // 40-bit IPA from level 1: 1024 entries (two 4K tables). 0xab_c123_4567: L1 0x2af, L2 9, L3 0x34.
    let c = s2(Granule::G4K, 24, 1, 0x2000);
    assert_eq!(c.validate(), Ok(1));
    let ipa = 0xab_c123_4567;
    put(&m, 0x2000, 0x2af, tbl(0x5000));
    put(&m, 0x5000, 9, tbl(0x6000));
    put(&m, 0x6000, 0x34, page(0x77_7000));
    let o = tr(&m, &c, ipa).unwrap();
    assert_eq!((o.address(ipa), o.level), (0x77_7567, 3));
    assert_eq!(
        (o.perms.read, o.perms.write, o.perms.exec),
        (true, true, true)
    );
    assert_eq!((o.steps[0].index, o.steps[0].desc_addr), (0x2af, 0x3578));
    // 1 GiB block at level 1 in the second concatenated table.
    put(&m, 0x2000, 0x2af, block(0x1_c000_0000));
    assert_eq!(tr(&m, &c, ipa).unwrap().address(ipa), 0x1_c123_4567);
}

#[test]
fn g4k_sl0_0_sixteen_concatenated_level2_tables() {
    let m = TestMemory::new(MEM);
    // 34-bit IPA from level 2: 8192 entries (16 tables). 0x3_ffff_f123: L2 0x1fff, L3 0x1ff.
    let c = s2(Granule::G4K, 30, 0, 0x1_0000);
    assert_eq!(c.validate(), Ok(2));
    let ipa = 0x3_ffff_f123;
    put(&m, 0x1_0000, 0x1fff, tbl(0x3_0000));
    put(&m, 0x3_0000, 0x1ff, page(0x9000));
    let o = tr(&m, &c, ipa).unwrap();
    assert_eq!(o.address(ipa), 0x9123);
    assert_eq!((o.steps[0].index, o.steps[0].desc_addr), (0x1fff, 0x1_fff8));
    // One more input bit would need 32 tables: inconsistent.
    assert!(s2(Granule::G4K, 29, 0, 0x1_0000).validate().is_err());
    // Beyond the 34-bit input: Translation fault at the start level, with the IPA.
    let f = tr(&m, &c, 1 << 34).unwrap_err();
    assert_eq!(
        (f.kind, f.level, f.ipa, f.stage),
        (WalkFaultKind::Translation, 2, Some(1 << 34), Stage::S2)
    );
}

#[test]
fn g4k_sl0_2_four_levels() {
    let m = TestMemory::new(MEM);
    let c = s2(Granule::G4K, 16, 2, 0x1000);
    assert_eq!(c.validate(), Ok(0));
    let ipa = 0x0000_1234_5678_9abc; // L0 0x24, L1 0xd1, L2 0xb3, L3 0x189
    put(&m, 0x1000, 0x24, tbl(0x2000));
    put(&m, 0x2000, 0xd1, tbl(0x3000));
    put(&m, 0x3000, 0xb3, tbl(0x4000));
    put(&m, 0x4000, 0x189, page(0x1_2345_6000));
    let o = tr(&m, &c, ipa).unwrap();
    assert_eq!(o.address(ipa), 0x1_2345_6abc);
    assert_eq!(kinds(&o.steps), ["table", "table", "table", "page"]);
}

#[test]
fn g16k_sl0_1_eight_concatenated_tables() {
    let m = TestMemory::new(MEM);
    // 39-bit IPA from level 2: 14 index bits. 0x7f_1234_5678: L2 0x3f89, L3 0xd1, offset 0x1678.
    let c = s2(Granule::G16K, 25, 1, 0x2_0000);
    assert_eq!(c.validate(), Ok(2));
    let ipa = 0x7f_1234_5678;
    put(&m, 0x2_0000, 0x3f89, tbl(0x4_0000));
    put(&m, 0x4_0000, 0xd1, page(0x8_8000));
    let o = tr(&m, &c, ipa).unwrap();
    assert_eq!((o.address(ipa), o.page_size), (0x8_9678, 0x4000));
    assert_eq!(o.steps[0].desc_addr, 0x3_fc48);
    // 32 MiB block at the (concatenated) start level.
    put(&m, 0x2_0000, 0x3f89, block(0x6000_0000));
    assert_eq!(tr(&m, &c, ipa).unwrap().address(ipa), 0x6034_5678);
}

#[test]
fn g64k_sl0_variants() {
    let m = TestMemory::new(MEM);
    // SL0 2: level 1 start, 48-bit IPA. 0xabcd_1234_5678: L1 0x2a, L2 0x1e68.
    let c = s2(Granule::G64K, 16, 2, 0x1_0000);
    assert_eq!(c.validate(), Ok(1));
    let ipa = 0xabcd_1234_5678;
    put(&m, 0x1_0000, 0x2a, tbl(0x2_0000));
    put(&m, 0x2_0000, 0x1e68, block(0x2000_0000));
    let o = tr(&m, &c, ipa).unwrap();
    assert_eq!(
        (o.address(ipa), o.page_size, o.level),
        (0x3234_5678, 1 << 29, 2)
    );
    // SL0 0: level 3 start, 29-bit IPA: a single level. 0x1234_5678: L3 0x1234.
    let c = s2(Granule::G64K, 35, 0, 0x4_0000);
    assert_eq!(c.validate(), Ok(3));
    put(&m, 0x4_0000, 0x1234, page(0xab_0000));
    let o = tr(&m, &c, 0x1234_5678).unwrap();
    assert_eq!((o.address(0x1234_5678), o.steps.len()), (0xab_5678, 1));
    // A block at level 3 does not exist: 0b01 there is reserved.
    put(&m, 0x4_0000, 0x1234, block(0xab_0000));
    assert_eq!(
        fault_kind(tr(&m, &c, 0x1234_5678)),
        (WalkFaultKind::Translation, 3)
    );
}

#[test]
fn s2ap_matrix_and_xn() {
    let m = TestMemory::new(MEM);
    let c = s2(Granule::G4K, 25, 1, 0x1000);
    for s2ap in 0..4u64 {
        put(&m, 0x1000, 0, (s2ap << 6) | AF | 0b01);
        for (access, bit) in [(Access::Read, 1), (Access::Write, 2)] {
            for privileged in [false, true] {
                let r = run(&m, &c, 0x10, access, privileged, Mode::Translate);
                match r {
                    Ok(o) => {
                        assert!(s2ap & bit != 0, "S2AP {s2ap:#b} {access:?}");
                        assert_eq!(
                            (o.perms.read, o.perms.write),
                            (s2ap & 1 != 0, s2ap & 2 != 0)
                        );
                    }
                    Err(f) => {
                        assert_eq!(s2ap & bit, 0, "S2AP {s2ap:#b} {access:?}");
                        assert_eq!(
                            (f.kind, f.level, f.ipa),
                            (WalkFaultKind::Permission, 1, Some(0x10))
                        );
                    }
                }
            }
        }
    }
    let exec = |xn: u64, privileged| {
        put(&m, 0x1000, 0, block(0) | xn);
        run(&m, &c, 0, Access::Read, privileged, Mode::Translate)
            .unwrap()
            .perms
            .exec
    };
    assert!(exec(0, true) && exec(0, false));
    assert!(!exec(UXN, true) && !exec(UXN, false));
    assert!(!exec(PXN, true) && exec(PXN, false));
    assert!(exec(UXN | PXN, true) && !exec(UXN | PXN, false));
}

#[test]
fn stage2_tables_have_no_aptable() {
    let m = TestMemory::new(MEM);
    let c = s2(Granule::G4K, 25, 1, 0x1000);
    put(&m, 0x1000, 0, tbl(0x2000) | AP_TABLE_RO | AP_TABLE_NO_EL0);
    put(&m, 0x2000, 0, block(0));
    let o = run(&m, &c, 0, Access::Write, false, Mode::Translate).unwrap();
    assert_eq!(
        o.perms,
        Perms {
            read: true,
            write: true,
            exec: true
        }
    );
}

#[test]
fn stage2_access_flag_and_dirty() {
    let m = TestMemory::new(MEM);
    let mut c = s2(Granule::G4K, 25, 1, 0x1000);
    let clean = (block(0) & !AF & !(0b10 << 6)) | DBM; // S2AP = 01 (read), DBM, AF = 0
    put(&m, 0x1000, 0, clean);
    let f = tr(&m, &c, 0).unwrap_err();
    assert_eq!(
        (f.kind, f.level, f.ipa, f.class),
        (WalkFaultKind::AccessFlag, 1, Some(0), FaultClass::IN)
    );
    c.affd = true;
    assert!(!tr(&m, &c, 0).unwrap().updated);
    assert_eq!(
        fault_kind(run(&m, &c, 0, Access::Write, false, Mode::Translate)),
        (WalkFaultKind::Permission, 1)
    );
    c.ha = true;
    c.hd = true;
    let before = snapshot(&m);
    let lk = run(&m, &c, 0, Access::Write, false, Mode::Lookup).unwrap();
    assert_eq!(
        (lk.perms.write, lk.updated, lk.attrs & (AF | 0b11 << 6)),
        (true, false, AF | 0b11 << 6)
    );
    assert_eq!(snapshot(&m), before);
    let rd = tr(&m, &c, 0).unwrap();
    assert_eq!(
        (rd.perms.write, rd.writable_clean, rd.updated),
        (false, true, true)
    );
    assert_eq!(m.read_u64(0x1000).unwrap(), clean | AF);
    let wr = run(&m, &c, 0, Access::Write, false, Mode::Translate).unwrap();
    assert_eq!(
        (wr.perms.write, wr.writable_clean, wr.updated),
        (true, false, true)
    );
    assert_eq!(m.read_u64(0x1000).unwrap(), clean | AF | (0b10 << 6));
}

#[test]
fn stage2_address_size_and_abort_carry_the_ipa() {
    let m = TestMemory::new(MEM);
    let mut c = s2(Granule::G4K, 24, 1, 0x2000);
    c.oas_bits = 36;
    put(&m, 0x2000, 1, block(0x10_0000_0000));
    let f = tr(&m, &c, 1 << 30).unwrap_err();
    assert_eq!(
        (f.kind, f.level, f.ipa),
        (WalkFaultKind::AddressSize, 1, Some(1 << 30))
    );
    put(&m, 0x2000, 2, tbl(0xf_ffff_0000));
    let f = tr(&m, &c, 2 << 30).unwrap_err();
    assert_eq!(
        (f.kind, f.level, f.ipa, f.fetch_addr),
        (
            WalkFaultKind::ExternalAbort,
            2,
            Some(2 << 30),
            Some(0xf_ffff_0000)
        )
    );
}
