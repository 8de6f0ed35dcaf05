use super::*;
use crate::capability::ext_id;

const PF_RID: u16 = 0x18;

fn params() -> SriovParams {
    let mut vf_bars = [None; NUM_BARS];
    vf_bars[0] = Some(BarDef {
        bar_type: BarType::Mem32,
        size: 0x1000,
        prefetchable: false,
    });
    vf_bars[2] = Some(BarDef {
        bar_type: BarType::Mem64,
        size: 0x4000,
        prefetchable: true,
    });
    SriovParams {
        total_vfs: 4,
        first_offset: 1,
        stride: 1,
        vf_device_id: 0x0002,
        pf_function: 0,
        vf_bars,
    }
}

fn setup() -> (ConfigSpace, SriovCapability) {
    let mut c = crate::config::test_config();
    let cap = SriovCapability::add(&mut c, &params()).unwrap();
    (c, cap)
}

/// A guest write followed by the capability's bookkeeping, as a device's config_write does it.
fn guest_write(c: &mut ConfigSpace, cap: &SriovCapability, reg: usize, data: &[u8]) -> SriovChange {
    let before = cap.snapshot(c);
    c.write(cap.offset() + reg, data);
    cap.after_write(c, before)
}

fn write16(c: &mut ConfigSpace, cap: &SriovCapability, reg: usize, v: u16) -> SriovChange {
    guest_write(c, cap, reg, &v.to_le_bytes())
}

fn write32(c: &mut ConfigSpace, cap: &SriovCapability, reg: usize, v: u32) -> SriovChange {
    guest_write(c, cap, reg, &v.to_le_bytes())
}

#[test]
fn layout_and_read_only_fields() {
    let (mut c, cap) = setup();
    let o = cap.offset();
    assert_eq!(o, 0x100);
    assert_eq!(c.read_u32(o), 0x0001_0010, "id 0x10, version 1, last");
    assert_eq!(c.find_ext_capability(ext_id::SRIOV), Some(o));
    let expect = [
        (CAP, 0u32, 4),
        (CTRL, 0, 2),
        (STATUS, 0, 2),
        (INITIAL_VFS, 4, 2),
        (TOTAL_VFS, 4, 2),
        (NUM_VFS, 0, 2),
        (FUNC_LINK, 0, 1),
        (VF_OFFSET, 1, 2),
        (VF_STRIDE, 1, 2),
        (VF_DEVICE_ID, 2, 2),
        (SUP_PGSIZE, SUPPORTED_PAGE_SIZES, 4),
        (SYS_PGSIZE, 1, 4),
        (VF_BAR0, 0, 4),
        (VF_BAR0 + 8, 0b1100, 4),
        (VF_BAR0 + 12, 0, 4),
        (VF_MIGRATION_STATE, 0, 4),
    ];
    let read = |c: &ConfigSpace, reg: usize, len: usize| match len {
        1 => u32::from(c.read_u8(o + reg)),
        2 => u32::from(c.read_u16(o + reg)),
        _ => c.read_u32(o + reg),
    };
    for (reg, v, len) in expect {
        assert_eq!(read(&c, reg, len), v, "register {reg:#x}");
    }
    // Everything but Control, NumVFs, System Page Size and the VF BARs ignores writes.
    for reg in [
        0usize,
        CAP,
        STATUS,
        INITIAL_VFS,
        FUNC_LINK,
        VF_OFFSET,
        0x18,
        SUP_PGSIZE,
        VF_BAR0 + 4,
        VF_BAR0 + 16,
        VF_BAR0 + 20,
        VF_MIGRATION_STATE,
    ] {
        let before: Vec<u8> = (0..4).map(|i| c.read_u8(o + reg + i)).collect();
        write32(&mut c, &cap, reg, u32::MAX);
        write32(&mut c, &cap, reg, 0);
        let after: Vec<u8> = (0..4).map(|i| c.read_u8(o + reg + i)).collect();
        if ![NUM_VFS - 2, SYS_PGSIZE - 4, VF_BAR0 - 4].contains(&reg) {
            assert_eq!(before, after, "register {reg:#x}");
        }
    }
    // Control: only VF Enable, VF MSE and ARI Capable Hierarchy stick (migration and 10-bit tags absent).
    write16(&mut c, &cap, CTRL, 0xffff);
    assert_eq!(cap.control(&c), CTRL_VF_ENABLE | CTRL_VF_MSE | CTRL_ARI);
    assert!(
        cap.overlaps(o + CTRL, 2) && !cap.overlaps(o + SRIOV_CAP_LEN, 4) && !cap.overlaps(0, o)
    );
}

#[test]
fn vf_bars_size_like_bars_and_follow_the_system_page_size() {
    let (mut c, cap) = setup();
    // What __pci_size_stdbars does: all ones, read back the mask.
    for reg in [VF_BAR0, VF_BAR0 + 8, VF_BAR0 + 12] {
        write32(&mut c, &cap, reg, u32::MAX);
    }
    assert_eq!(c.read_u32(cap.offset() + VF_BAR0), 0xffff_f000);
    assert_eq!(c.read_u32(cap.offset() + VF_BAR0 + 8), 0xffff_c00c);
    assert_eq!(c.read_u32(cap.offset() + VF_BAR0 + 12), 0xffff_ffff);
    assert_eq!(
        cap.aperture(&c, 2)
            .map(|b| (b.size, b.bar_type, b.prefetchable)),
        Some((0x1_0000, BarType::Mem64, true))
    );
    assert_eq!(cap.apertures(&c).len(), 2);
    assert!(cap.vf_bar(&c, 1).is_none() && cap.vf_bar(&c, 6).is_none());
    // Firmware placement, then the slices of each VF.
    cap.set_vf_bar_address(&mut c, 0, 0xc000_0000).unwrap();
    cap.set_vf_bar_address(&mut c, 2, 0x40_0001_0000).unwrap();
    assert_eq!(
        cap.set_vf_bar_address(&mut c, 0, 0xc000_0800),
        Err(BarError::BadAddress {
            index: 0,
            address: 0xc000_0800,
            size: 0x1000
        })
    );
    assert!(cap.set_vf_bar_address(&mut c, 0, 1 << 32).is_err());
    assert_eq!(
        cap.set_vf_bar_address(&mut c, 1, 0),
        Err(BarError::NotImplemented(1))
    );
    let s = cap.vf_slice(&c, 2, 3).unwrap();
    assert_eq!((s.address, s.size), (0x40_0001_c000, 0x4000));
    assert_eq!(cap.vf_slice(&c, 0, 1).unwrap().address, 0xc000_1000);
    // A 64 KiB System Page Size grows every per-VF size to 64 KiB and clears the address bits below it.
    cap.set_vf_bar_address(&mut c, 0, 0xc000_3000).unwrap();
    write32(&mut c, &cap, SYS_PGSIZE, 1 << 4);
    assert_eq!(cap.page_size(&c), 0x1_0000);
    assert_eq!(cap.vf_bar_size(&c, 0), Some(0x1_0000));
    assert_eq!(cap.vf_bar(&c, 0).unwrap().address, 0xc000_0000);
    write32(&mut c, &cap, VF_BAR0, u32::MAX);
    assert_eq!(c.read_u32(cap.offset() + VF_BAR0), 0xffff_0000);
    assert_eq!(cap.aperture(&c, 2).unwrap().size, 0x4_0000);
    // Back to 4 KiB: the smaller masks return.
    write32(&mut c, &cap, SYS_PGSIZE, 1);
    write32(&mut c, &cap, VF_BAR0, u32::MAX);
    assert_eq!(c.read_u32(cap.offset() + VF_BAR0), 0xffff_f000);
    // A slice that would run past the end of the address space does not exist.
    cap.set_vf_bar_address(&mut c, 2, 0xffff_ffff_ffff_8000)
        .unwrap();
    assert_eq!(
        cap.vf_slice(&c, 2, 1).map(|b| b.address),
        Some(0xffff_ffff_ffff_c000)
    );
    assert!(cap.vf_slice(&c, 2, 2).is_none());
    assert!(cap.vf_slice(&c, 2, u16::MAX).is_none());
}

#[test]
fn system_page_size_takes_one_supported_size() {
    let (mut c, cap) = setup();
    for bad in [0u32, 3, 1 << 2, 1 << 11, 1 << 31, u32::MAX, 0x553] {
        write32(&mut c, &cap, SYS_PGSIZE, bad);
        assert_eq!(c.read_u32(cap.offset() + SYS_PGSIZE), 1, "{bad:#x} ignored");
    }
    for bit in [0u32, 1, 4, 6, 8, 10] {
        write32(&mut c, &cap, SYS_PGSIZE, 1 << bit);
        assert_eq!(cap.page_size(&c), 0x1000 << bit);
    }
    // A byte write that leaves two bits set is ignored too.
    write32(&mut c, &cap, SYS_PGSIZE, 1);
    guest_write(&mut c, &cap, SYS_PGSIZE + 1, &[0x04]);
    assert_eq!(c.read_u32(cap.offset() + SYS_PGSIZE), 1);
}

#[test]
fn enable_disable_and_read_only_while_enabled() {
    let (mut c, cap) = setup();
    assert_eq!(cap.active_vfs(&c), 0);
    write16(&mut c, &cap, NUM_VFS, 3);
    assert_eq!(cap.num_vfs(&c), 3);
    assert_eq!(cap.active_vfs(&c), 0, "VF Enable clear");
    assert_eq!(
        write16(&mut c, &cap, CTRL, CTRL_VF_ENABLE | CTRL_VF_MSE),
        SriovChange::Enabled
    );
    assert_eq!(cap.active_vfs(&c), 3);
    assert!(cap.vf_enabled(&c) && cap.vf_memory_enabled(&c));
    // NumVFs and System Page Size are read-only while VF Enable is set; VF MSE may change.
    assert_eq!(write16(&mut c, &cap, NUM_VFS, 1), SriovChange::Unchanged);
    write32(&mut c, &cap, SYS_PGSIZE, 2);
    assert_eq!((cap.num_vfs(&c), cap.page_size(&c)), (3, 0x1000));
    assert_eq!(
        write16(&mut c, &cap, CTRL, CTRL_VF_ENABLE),
        SriovChange::Unchanged
    );
    assert!(!cap.vf_memory_enabled(&c));
    assert_eq!(cap.active_vfs(&c), 3);
    assert_eq!(write16(&mut c, &cap, CTRL, 0), SriovChange::Disabled);
    assert_eq!(cap.active_vfs(&c), 0);
    // Once disabled, NumVFs takes writes again.
    write16(&mut c, &cap, NUM_VFS, 0);
    assert_eq!(cap.num_vfs(&c), 0);
    // VF Enable with NumVFs 0, or above TotalVFs, makes no VFs (the bit still reads back set).
    for n in [0u16, 5, u16::MAX] {
        write16(&mut c, &cap, NUM_VFS, n);
        assert_eq!(
            write16(&mut c, &cap, CTRL, CTRL_VF_ENABLE),
            SriovChange::Enabled
        );
        assert!(cap.vf_enabled(&c));
        assert_eq!(cap.active_vfs(&c), 0, "NumVFs {n}");
        write16(&mut c, &cap, CTRL, 0);
    }
    // The Linux sequence of compute_max_vf_buses: NumVFs total..1, reading offset and stride each time.
    for n in (1..=4u16).rev() {
        write16(&mut c, &cap, NUM_VFS, n);
        let r = cap.routing(&c);
        assert_eq!((r.first_offset, r.stride, r.total), (1, 1, 4));
    }
}

#[test]
fn routing_ids() {
    let r = VfRouting {
        first_offset: 1,
        stride: 1,
        total: 4,
    };
    assert_eq!(r.all_routing_ids(PF_RID), vec![0x19, 0x1a, 0x1b, 0x1c]);
    assert_eq!(r.index_of(PF_RID, 0x19, 4), Some(0));
    assert_eq!(r.index_of(PF_RID, 0x1c, 4), Some(3));
    assert_eq!(r.index_of(PF_RID, 0x1c, 3), None, "VF 3 does not exist");
    assert_eq!(r.index_of(PF_RID, 0x18, 4), None, "the PF is no VF");
    assert_eq!(r.index_of(PF_RID, 0, 4), None);
    let wide = VfRouting {
        first_offset: 0x28,
        stride: 8,
        total: 3,
    };
    assert_eq!(wide.all_routing_ids(PF_RID), vec![0x40, 0x48, 0x50]);
    assert_eq!(wide.index_of(PF_RID, 0x48, 3), Some(1));
    assert_eq!(wide.index_of(PF_RID, 0x49, 3), None);
    let single = VfRouting {
        first_offset: 2,
        stride: 0,
        total: 1,
    };
    assert_eq!(single.index_of(PF_RID, 0x1a, 1), Some(0));
    assert_eq!(single.index_of(PF_RID, 0x1b, 1), None);
    // Routing IDs past 0xffff do not exist.
    let top = VfRouting {
        first_offset: 1,
        stride: 0x100,
        total: 4,
    };
    assert_eq!(top.all_routing_ids(0xfd00), vec![0xfd01, 0xfe01, 0xff01]);
    assert_eq!(top.routing_id(0xfd00, 3), None);
    assert_eq!(top.index_of(0xfd00, 0xffff, u16::MAX), None);
}

#[test]
fn construction_errors() {
    let mut c = crate::config::test_config();
    let p = params();
    assert_eq!(
        SriovCapability::add(&mut c, &SriovParams { total_vfs: 0, ..p }).err(),
        Some(SriovError::NoVfs)
    );
    for (first_offset, stride) in [(0, 1), (1, 0)] {
        assert_eq!(
            SriovCapability::add(
                &mut c,
                &SriovParams {
                    first_offset,
                    stride,
                    ..p
                }
            )
            .err(),
            Some(SriovError::BadRouting)
        );
    }
    let mut bad = p;
    bad.vf_bars[3] = bad.vf_bars[0];
    assert_eq!(
        SriovCapability::add(&mut c, &bad).err(),
        Some(SriovError::Bar(BarError::SlotInUse(3)))
    );
    let mut bad = p;
    bad.vf_bars[5] = bad.vf_bars[2];
    assert_eq!(
        SriovCapability::add(&mut c, &bad).err(),
        Some(SriovError::Bar(BarError::NoRoomFor64Bit(5)))
    );
    let mut bad = p;
    bad.vf_bars[0] = Some(BarDef {
        bar_type: BarType::Mem32,
        size: 0x1800,
        prefetchable: false,
    });
    assert!(matches!(
        SriovCapability::add(&mut c, &bad),
        Err(SriovError::Bar(BarError::InvalidSize { .. }))
    ));
    assert!(
        c.ext_capabilities().is_empty(),
        "failed adds leave no trace"
    );
}

/// Any write sequence to the capability leaves it in a state PCIe allows: read-only fields intact, one
/// supported page size, NumVFs frozen while enabled.
#[test]
fn random_writes_keep_the_rules() {
    let (mut c, cap) = setup();
    let o = cap.offset();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let reg = (x % SRIOV_CAP_LEN as u64) as usize;
        let len = [1usize, 2, 4][(x >> 8) as usize % 3];
        let data = (x >> 16).to_le_bytes();
        let enabled = cap.vf_enabled(&c);
        let (n, page) = (cap.num_vfs(&c), cap.page_size(&c));
        let change = guest_write(&mut c, &cap, reg, &data[..len]);
        if enabled {
            assert_eq!((cap.num_vfs(&c), cap.page_size(&c)), (n, page));
        }
        assert_eq!(
            change == SriovChange::Unchanged,
            enabled == cap.vf_enabled(&c)
        );
        let p = c.read_u32(o + SYS_PGSIZE);
        assert!(p.count_ones() == 1 && p & SUPPORTED_PAGE_SIZES != 0);
        assert_eq!(c.read_u16(o + TOTAL_VFS), 4);
        assert_eq!(c.read_u32(o + SUP_PGSIZE), SUPPORTED_PAGE_SIZES);
        assert_eq!(
            cap.control(&c) & !(CTRL_VF_ENABLE | CTRL_VF_MSE | CTRL_ARI),
            0
        );
        assert!(cap.active_vfs(&c) <= 4);
        let b0 = cap.vf_bar(&c, 0).unwrap();
        assert_eq!(b0.address % b0.size, 0);
    }
}
