//! Scalable-mode translation: scalable root/context entries, PASID directory and table, second-stage
//! (PGTT 010b) and pass-through (PGTT 100b), RID_PASID, and the scalable-mode fault reasons.

use super::*;

struct Sm {
    fx: Fx,
    root: u64,
    dir: u64,
    q: Queue,
}

fn setup(opts: &str) -> Sm {
    let fx = Fx::new(opts);
    let root = fx.alloc();
    let dir = fx.alloc();
    let q = linux_bringup(&fx, root, true);
    Sm { fx, root, dir, q }
}

/// Scalable context entry: PASID dir, PDTS 0 (128 directory entries = PASIDs 0..8191), PASIDE, P.
fn sm_ctx(dir: u64, pasid_enable: bool, rid_pasid: u32) -> [u64; 4] {
    [
        dir | u64::from(pasid_enable) << 3 | 1,
        u64::from(rid_pasid),
        0,
        0,
    ]
}

fn ss_entry(top: u64, aw_code: u64, did: u16) -> [u64; 8] {
    [
        top | 2 << 6 | aw_code << 2 | 1,
        u64::from(did),
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

fn pt_entry(did: u16) -> [u64; 8] {
    [
        4 << 6 | 2 << 2 | 1,
        u64::from(did) | 1 << 23,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

#[test]
fn rid_pasid_second_stage_and_pass_through() {
    let Sm {
        fx,
        root,
        dir,
        mut q,
    } = setup("vtd");
    let top = fx.alloc();
    fx.set_sm_context(root, SID, sm_ctx(dir, true, 0));
    fx.set_pasid_entry(dir, 0, ss_entry(top, 2, 5));
    fx.map(top, 4, 0x10_0000, 0x80_0000, 12, (true, true));
    fx.map(top, 4, 0x20_0000, 0x90_0000, 12, (true, false));
    fx.map(top, 4, 0x4000_0000, 0x40_0000, 21, (true, true));
    assert_eq!(fx.out(SID, None, 0x10_0123, Access::Write), Ok(0x80_0123));
    assert_eq!(fx.out(SID, None, 0x4012_3456, Access::Read), Ok(0x52_3456));
    // Write to a read-only page (SGN.6), read of an unmapped page (SSL.2).
    assert_eq!(fx.out(SID, None, 0x20_0000, Access::Write), Err(0x85));
    assert_eq!(fx.out(SID, None, 0x20_0000, Access::Read), Ok(0x90_0000));
    assert_eq!(fx.out(SID, None, 0x30_0000, Access::Read), Err(0x79));
    // A request with PASID 7 (no entry: directory entry 0 is present, table entry 7 is not).
    assert_eq!(fx.out(SID, Some(7), 0x10_0000, Access::Read), Err(0x59));
    fx.set_pasid_entry(dir, 7, pt_entry(6));
    assert_eq!(fx.out(SID, Some(7), 0x10_0000, Access::Read), Ok(0x10_0000));
    assert_eq!(
        fx.out(SID, Some(7), 0xfee0_0000, Access::Write),
        Err(0x87),
        "PT into the interrupt range"
    );
    // Upper devfn half (0x80-0xff) uses the upper context pointer.
    let up = 0x80;
    let top2 = fx.alloc();
    let dir2 = fx.alloc();
    fx.set_sm_context(root, up, sm_ctx(dir2, false, 3));
    fx.set_pasid_entry(dir2, 3, ss_entry(top2, 1, 9));
    fx.map(top2, 3, 0x5000, 0x7000, 12, (true, true));
    assert_eq!(
        fx.out(up, None, 0x5000, Access::Read),
        Ok(0x7000),
        "RID_PASID 3, 3 levels"
    );
    assert_eq!(fx.out(up, None, 1 << 39, Access::Read), Err(0x83));
    assert_eq!(
        fx.out(up, Some(3), 0x5000, Access::Read),
        Err(0x45),
        "PASIDE clear"
    );
    // Switch RID_PASID of SID to pass-through the way Linux does: tear down, invalidate, set up.
    fx.set_pasid_entry(dir, 0, [0; 8]);
    fx.sync(&mut q, &[pc_pasid(5, 0), iotlb_domain(5)]);
    assert_eq!(fx.out(SID, None, 0x10_0000, Access::Read), Err(0x59));
    fx.set_pasid_entry(dir, 0, pt_entry(6));
    assert_eq!(fx.out(SID, None, 0x10_0000, Access::Read), Ok(0x10_0000));
    assert_eq!(fx.out(SID, None, 1 << 48, Access::Read), Err(0x83));
}

#[test]
fn scalable_structure_faults() {
    let Sm {
        fx,
        root,
        dir,
        mut q,
    } = setup("vtd,nfr=32,fl=off,nest=off");
    let top = fx.alloc();
    fx.map(top, 4, 0, 0x5000, 12, (true, true));
    assert_eq!(
        fx.out(SID, None, 0, Access::Read),
        Err(0x39),
        "root entry LP clear"
    );
    // Root entry reserved bit.
    fx.wr(root, fx.alloc() | 3);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x3a));
    fx.wr(root, 0);
    // Context: not present, reserved (DTE without ECAP.DT), table outside RAM.
    fx.set_sm_context(root, 0x10, sm_ctx(dir, true, 0));
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x41));
    fx.set_sm_context(root, SID, [dir | 1 << 2 | 1, 0, 0, 0]);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x42));
    let bus2 = 0x200;
    fx.wr(root + 2 * 16, RAM | 1);
    assert_eq!(fx.out(bus2, None, 0, Access::Read), Err(0x40));
    fx.wr(root + 3 * 16, 0x1_0000_0000 | 1); // context table beyond RAM, inside HAW
    assert_eq!(fx.out(0x300, None, 0, Access::Read), Err(0x40));
    // PASID beyond PDTS (128 directory entries -> PASIDs below 8192), RID_PASID likewise.
    fx.set_sm_context(root, SID, sm_ctx(dir, true, 0));
    assert_eq!(fx.out(SID, Some(8192), 0, Access::Read), Err(0x46));
    assert_eq!(fx.out(SID, Some(1 << 20), 0, Access::Read), Err(0x46));
    let sid2 = 0x20;
    fx.set_sm_context(root, sid2, sm_ctx(dir, true, 8192));
    assert_eq!(fx.out(sid2, None, 0, Access::Read), Err(0x48));
    // PASID directory: not present, reserved, outside RAM.
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x51));
    fx.wr(dir, fx.alloc() | 1 << 2 | 1);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x52));
    fx.wr(dir, RAM | 1);
    assert_eq!(
        fx.out(SID, None, 0, Access::Read),
        Err(0x58),
        "PASID table outside RAM"
    );
    let dir_out = RAM;
    fx.set_sm_context(root, sid2, sm_ctx(dir_out, true, 0));
    fx.sync(&mut q, &[cc_global()]);
    assert_eq!(fx.out(sid2, None, 0, Access::Read), Err(0x50));
    fx.wr(dir, 0);
    // PASID entry: reserved, invalid PGTT (first-stage and nested are not offered on this unit), bad AW.
    fx.set_pasid_entry(
        dir,
        0,
        [top | 2 << 6 | 2 << 2 | 1 << 10 | 1, 1, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x5a));
    for pgtt in [1u64, 3, 0, 7] {
        fx.set_pasid_entry(dir, 0, [top | pgtt << 6 | 2 << 2 | 1, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x5b), "pgtt {pgtt}");
    }
    fx.set_pasid_entry(dir, 0, ss_entry(top, 3, 1));
    assert_eq!(
        fx.out(SID, None, 0, Access::Read),
        Err(0x5b),
        "57-bit AW on a 48-bit unit"
    );
    // A good entry, then second-stage faults.
    fx.set_pasid_entry(dir, 0, ss_entry(top, 2, 1));
    assert_eq!(fx.out(SID, None, 0, Access::Read), Ok(0x5000));
    fx.set_entry(top, 4, 0x1000, 12, 0x6000 | 1 << 62 | 3);
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Err(0x7a));
    fx.set_entry(top, 4, 0x100_0000_0000, 39, RAM | 3);
    assert_eq!(fx.out(SID, None, 0x100_0000_0000, Access::Read), Err(0x78));
    fx.set_entry(top, 4, 0x80_0000_0000, 30, 0x9000);
    assert_eq!(
        fx.out(SID, None, 0x80_0000_0000, Access::Write),
        Err(0x79),
        "L3 entry R=W=0"
    );
    fx.map(top, 4, 0x2000, 0x9000, 12, (false, true));
    assert_eq!(
        fx.out(SID, None, 0x2000, Access::Read),
        Err(0x86),
        "write-only page"
    );
    assert_eq!(fx.out(SID, None, 0x2000, Access::Write), Ok(0x9000));
    assert_eq!(fx.r32(regs::FSTS) & regs::FSTS_PFO, 0);
}

#[test]
fn a_legacy_root_table_on_a_scalable_unit() {
    // Linux with intel_iommu=sm_off on SMTS hardware: TTM 00, 256-bit queue descriptors.
    let fx = Fx::new("vtd");
    let root = fx.alloc();
    let q = linux_bringup(&fx, root, false);
    assert!(q.wide);
    let top = fx.alloc();
    fx.set_legacy_context(root, SID, top | 1, 2 | 1 << 8);
    fx.map(top, 4, 0x1000, 0x3000, 12, (true, true));
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(0x3000));
    assert_eq!(fx.out(SID, Some(0), 0x1000, Access::Read), Err(0x31));
}

#[test]
fn scalable_root_table_outside_ram_and_pasid_iotlb_descriptors() {
    let Sm {
        fx,
        root,
        dir,
        mut q,
    } = setup("vtd");
    let top = fx.alloc();
    fx.set_sm_context(root, SID, sm_ctx(dir, true, 0));
    fx.set_pasid_entry(dir, 0, ss_entry(top, 2, 4));
    fx.map(top, 4, 0, 0x3000, 12, (true, true));
    assert_eq!(fx.out(SID, None, 0, Access::Read), Ok(0x3000));
    // PASID-based IOTLB and PASID-cache descriptors run on the 256-bit queue.
    let piotlb_all = [6 | 2 << 4 | 4 << 16, 0, 0, 0];
    let piotlb_page = [6 | 3 << 4 | 4 << 16, 0x2000 | 1, 0, 0];
    fx.sync(&mut q, &[piotlb_all, piotlb_page, pc_global()]);
    let st = fx.vtd.stats();
    assert_eq!(st.invalidations["piotlb_pasid"], 1);
    assert_eq!(st.invalidations["piotlb_page"], 1);
    assert_eq!(st.qi_errors, 0);
    // A scalable root table outside RAM.
    fx.w64(regs::RTADDR, RAM | 1 << 10);
    fx.gcmd(0, 0, regs::GCMD_SRTP);
    fx.sync(&mut q, &[cc_global(), pc_global(), iotlb_global()]);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x38));
}
