//! SR-IOV on the test device: the PF's capability as Linux's `drivers/pci/iov.c` reads it, VFs that come and
//! go with VF Enable, their configuration space, their own requester ids for DMA and MSI-X, VF FLR, and the
//! segment routing config and MMIO to them.

use super::testutil::*;
use super::*;
use crate::bus::PciSegment;
use crate::capability::{ext_id, id};
use crate::config::{command, reg, status};
use crate::msi::MsiMessage;
use crate::msix::msix_reg;
use crate::pcie::{devcap, pcie_reg};
use crate::sriov::{sriov_reg, SUPPORTED_PAGE_SIZES};
use iommu::{Access, IdentityPort, Perms, RequestKind};

const CAP: usize = SRIOV_CAP_OFFSET;
const VF_BAR0_BASE: u64 = 0xc010_0000;
const VF_BAR2_BASE: u64 = 0x40_0010_0000;

fn vf(d: &mut TestDevice, i: u16) -> &mut dyn PciDevice {
    d.vf_mut(i).expect("VF exists")
}

fn ctrl(d: &mut TestDevice, v: u16) {
    cfg_write(d, CAP + sriov_reg::CTRL, &v.to_le_bytes());
}

fn num_vfs(d: &mut TestDevice, n: u16) {
    cfg_write(d, CAP + sriov_reg::NUM_VFS, &n.to_le_bytes());
}

/// `sriov_init` (drivers/pci/iov.c): clear Control, read TotalVFs and the page sizes, pick the smallest page,
/// size the VF BARs with VF Enable clear, read VF Device ID, Function Dependency Link, and walk NumVFs from
/// TotalVFs down to 1 reading First VF Offset and VF Stride (`compute_max_vf_buses`).
#[test]
fn pf_capability_as_linux_reads_it() {
    let (mut d, _) = device();
    assert_eq!(d.config().find_ext_capability(ext_id::SRIOV), Some(CAP));
    assert_eq!(cfg_read32(&mut d, CAP + sriov_reg::CTRL) & 0xffff, 0);
    ctrl(&mut d, 0);
    assert_eq!(
        cfg_read32(&mut d, CAP + sriov_reg::INITIAL_VFS),
        0x0004_0004
    );
    let pgsz = cfg_read32(&mut d, CAP + sriov_reg::SUP_PGSIZE);
    assert_eq!(pgsz, SUPPORTED_PAGE_SIZES);
    cfg_write(
        &mut d,
        CAP + sriov_reg::SYS_PGSIZE,
        &(pgsz & !(pgsz - 1)).to_le_bytes(),
    );
    assert_eq!(cfg_read32(&mut d, CAP + sriov_reg::SYS_PGSIZE), 1);
    // __pci_size_stdbars over the six VF BARs.
    let regs: Vec<usize> = (0..6).map(|i| CAP + sriov_reg::VF_BAR0 + 4 * i).collect();
    let orig: Vec<u32> = regs.iter().map(|&r| cfg_read32(&mut d, r)).collect();
    for &r in &regs {
        cfg_write(&mut d, r, &u32::MAX.to_le_bytes());
    }
    let sized: Vec<u32> = regs.iter().map(|&r| cfg_read32(&mut d, r)).collect();
    assert_eq!(
        sized,
        vec![0xffff_f000, 0, 0xffff_f00c, 0xffff_ffff, 0, 0],
        "VF BAR0 4 KiB 32-bit; VF BAR2 4 KiB 64-bit prefetchable"
    );
    for (&r, v) in regs.iter().zip(orig) {
        cfg_write(&mut d, r, &v.to_le_bytes());
    }
    assert_eq!(
        cfg_read32(&mut d, CAP + sriov_reg::VF_OFFSET),
        u32::from(VF_STRIDE) << 16 | u32::from(VF_OFFSET)
    );
    assert_eq!(
        cfg_read32(&mut d, CAP + 0x18) >> 16,
        u32::from(VF_DEVICE_ID)
    );
    assert_eq!(
        cfg_read32(&mut d, CAP + sriov_reg::CAP),
        0,
        "no VF migration"
    );
    assert_eq!(
        cfg_read32(&mut d, CAP + sriov_reg::FUNC_LINK) & 0xff,
        0,
        "the PF itself"
    );
    for n in (1..=TOTAL_VFS).rev() {
        num_vfs(&mut d, n);
        assert_eq!(cfg_read32(&mut d, CAP + sriov_reg::VF_OFFSET), 0x0001_0001);
    }
    num_vfs(&mut d, 0);
    assert!(d.vfs().is_empty());
    // The IOV resources Linux makes of them: per-VF size × TotalVFs. They are not BARs of the PF.
    let iov: Vec<(u8, u64, BarType, bool)> = d
        .iov_bars()
        .iter()
        .map(|b| (b.index, b.size, b.bar_type, b.prefetchable))
        .collect();
    assert_eq!(
        iov,
        vec![
            (0, 0x4000, BarType::Mem32, false),
            (2, 0x4000, BarType::Mem64, true)
        ]
    );
    assert_eq!(d.bars().len(), 2);
    assert_eq!(
        d.vf_routing().map(|r| (r.first_offset, r.stride, r.total)),
        Some((1, 1, 4))
    );
}

#[test]
fn vf_enable_creates_vfs_with_their_own_paths() {
    let r = sriov_rig(Arc::new(IdentityPort), 0x1_0000);
    let (mut d, vfs) = (r.dev, r.vfs);
    enable_vfs(&mut d, 3, VF_BAR0_BASE, VF_BAR2_BASE);
    let ids: Vec<(u16, u16)> = d
        .vfs()
        .iter()
        .map(|v| (v.index(), v.requester_id()))
        .collect();
    assert_eq!(ids, vec![(0, 0x19), (1, 0x1a), (2, 0x1b)]);
    assert_eq!(d.num_vfs(), 3);
    for rid in [0x19, 0x1a, 0x1b] {
        assert!(vfs.sink(rid).is_some(), "sink for {rid:#x}");
    }
    assert!(vfs.sink(0x1c).is_none());
    // BAR slices: VF n at base + n × 4 KiB, decoding while VF MSE is set.
    let v1 = d.vf(1).unwrap();
    let bars: Vec<(u8, u64, u64)> = v1
        .bars()
        .iter()
        .map(|b| (b.index, b.address, b.size))
        .collect();
    assert_eq!(
        bars,
        vec![
            (0, VF_BAR0_BASE + 0x1000, 0x1000),
            (2, VF_BAR2_BASE + 0x1000, 0x1000)
        ]
    );
    assert_eq!(v1.decode(VF_BAR0_BASE + 0x1010), Some((0, 0x10)));
    assert_eq!(v1.decode(VF_BAR0_BASE + 0x10), None, "VF 0's slice");
    assert_eq!(v1.decode(VF_BAR2_BASE + 0x1ffc), Some((2, 0xffc)));
    ctrl(&mut d, sriov_reg::CTRL_VF_ENABLE);
    assert_eq!(
        d.vf(1).unwrap().decode(VF_BAR0_BASE + 0x1010),
        None,
        "VF MSE clear"
    );
    assert!(!d.vf(1).unwrap().memory_enabled());
    // The PF's own COMMAND.MEM does not matter to the VFs.
    ctrl(&mut d, sriov_reg::CTRL_VF_ENABLE | sriov_reg::CTRL_VF_MSE);
    cfg_write(&mut d, reg::COMMAND, &0u16.to_le_bytes());
    assert!(d.vf(1).unwrap().memory_enabled());
    // Moving VF BAR0 moves every slice.
    cfg_write(
        &mut d,
        CAP + sriov_reg::VF_BAR0,
        &0xd000_0000u32.to_le_bytes(),
    );
    assert_eq!(d.vf(2).unwrap().decode(0xd000_2004), Some((0, 4)));
}

#[test]
fn vf_config_space() {
    let (mut d, _) = device();
    enable_vfs(&mut d, 1, VF_BAR0_BASE, VF_BAR2_BASE);
    let v = vf(&mut d, 0);
    assert_eq!(
        cfg_read32(v, 0),
        0xffff_ffff,
        "Vendor and Device ID read 0xFFFF"
    );
    assert_eq!(v.os_ids(), (VENDOR_ID, VF_DEVICE_ID));
    assert_eq!(
        cfg_read32(v, reg::REVISION_ID),
        CLASS_CODE << 8 | u32::from(REVISION)
    );
    assert_eq!(
        cfg_read32(v, reg::CACHE_LINE_SIZE),
        0,
        "header type 0, single function"
    );
    assert_eq!(
        cfg_read32(v, reg::SUBSYSTEM_VENDOR_ID),
        u32::from(VF_DEVICE_ID) << 16 | u32::from(VENDOR_ID)
    );
    // COMMAND: only Bus Master Enable; STATUS: capabilities list.
    cfg_write(v, reg::COMMAND, &0xffffu16.to_le_bytes());
    assert_eq!(
        cfg_read32(v, reg::COMMAND),
        u32::from(status::CAPABILITIES_LIST) << 16 | u32::from(command::BUS_MASTER)
    );
    // BARs, expansion ROM, cache line size, interrupt line and pin: read-only zero.
    for r in (reg::BAR0..=reg::EXPANSION_ROM)
        .step_by(4)
        .chain([reg::CACHE_LINE_SIZE, reg::INTERRUPT_LINE])
    {
        cfg_write(v, r, &u32::MAX.to_le_bytes());
        let mask = if r == reg::CACHE_LINE_SIZE {
            0x0000_00ff
        } else {
            u32::MAX
        };
        let want = if r == reg::SUBSYSTEM_VENDOR_ID {
            u32::from(VF_DEVICE_ID) << 16 | u32::from(VENDOR_ID)
        } else {
            0
        };
        assert_eq!(cfg_read32(v, r) & mask, want, "register {r:#x}");
    }
    // Capabilities: PCI Express (RCiEP, FLR, Device Control RsvdP) and MSI-X in VF BAR2; nothing else.
    let caps: Vec<u16> = v.config().capabilities().iter().map(|c| c.id).collect();
    assert_eq!(caps, vec![u16::from(id::PCI_EXPRESS), u16::from(id::MSIX)]);
    assert!(!v.has_msi());
    assert_eq!(v.msix_vectors(), MSIX_VECTORS);
    let pcie = pcie_cap(v);
    assert_eq!(cfg_read32(v, pcie) >> 16, 0x0092, "version 2, RCiEP");
    assert_ne!(cfg_read32(v, pcie + pcie_reg::DEVCAP) & devcap::FLR, 0);
    cfg_write(v, pcie + pcie_reg::DEVCTL, &0x7fffu16.to_le_bytes());
    assert_eq!(cfg_read32(v, pcie + pcie_reg::DEVCTL) & 0xffff, 0);
    let msix = v.config().find_capability(id::MSIX).unwrap();
    assert_eq!(
        cfg_read32(v, msix + msix_reg::TABLE),
        MSIX_TABLE_OFFSET | u32::from(MSIX_BAR)
    );
    assert_eq!(
        cfg_read32(v, msix + msix_reg::PBA),
        MSIX_PBA_OFFSET | u32::from(MSIX_BAR)
    );
    assert_eq!(cfg_read32(v, 0x100), 0, "no extended capabilities");
    assert!(v.set_bar_address(0, 0xc000_0000).is_err());
    // Its register file: the PF's identity, VF features.
    assert_eq!(read32(v, REG_ID), ID_MAGIC);
    assert_eq!(read32(v, REG_FEATURES), VF_FEATURES);
    let mut b = [0u8; 4];
    v.bar_read(REGS_BAR, VF_BAR0_SIZE - 2, &mut b);
    assert_eq!(b, [0, 0, 0xff, 0xff], "past the VF's BAR0");
    v.bar_read(4, 0, &mut b);
    assert_eq!(b, [0xff; 4]);
}

#[test]
fn numvfs_and_bad_enables() {
    let (mut d, _) = device();
    // VF Enable with NumVFs 0 or above TotalVFs: VF Enable reads back set, no VF exists.
    for n in [0u16, TOTAL_VFS + 1, u16::MAX] {
        num_vfs(&mut d, n);
        ctrl(&mut d, sriov_reg::CTRL_VF_ENABLE | sriov_reg::CTRL_VF_MSE);
        assert_eq!(cfg_read32(&mut d, CAP + sriov_reg::CTRL) & 1, 1);
        assert!(d.vfs().is_empty(), "NumVFs {n}");
        // NumVFs is frozen while enabled: a valid value written now does not create VFs either.
        num_vfs(&mut d, 2);
        assert_eq!(
            cfg_read32(&mut d, CAP + sriov_reg::NUM_VFS) & 0xffff,
            u32::from(n)
        );
        assert!(d.vfs().is_empty());
        ctrl(&mut d, 0);
    }
    enable_vfs(&mut d, 2, VF_BAR0_BASE, VF_BAR2_BASE);
    assert_eq!(d.vfs().len(), 2);
    // NumVFs and System Page Size cannot change under existing VFs; setting VF Enable again changes nothing.
    num_vfs(&mut d, 4);
    cfg_write(&mut d, CAP + sriov_reg::SYS_PGSIZE, &2u32.to_le_bytes());
    ctrl(&mut d, sriov_reg::CTRL_VF_ENABLE | sriov_reg::CTRL_VF_MSE);
    assert_eq!(d.vfs().len(), 2);
    assert_eq!(cfg_read32(&mut d, CAP + sriov_reg::SYS_PGSIZE), 1);
    // The ARI Capable Hierarchy bit sticks and moves nothing (offset and stride are constant).
    ctrl(&mut d, 0x19);
    assert_eq!(cfg_read32(&mut d, CAP + sriov_reg::VF_OFFSET), 0x0001_0001);
    assert_eq!(d.vfs().len(), 2);
}

#[test]
fn disable_destroys_vfs_and_enable_makes_fresh_ones() {
    let (mut d, _) = device();
    enable_vfs(&mut d, 2, VF_BAR0_BASE, VF_BAR2_BASE);
    write32(vf(&mut d, 1), REG_SCRATCH, 0x55);
    enable_bme(vf(&mut d, 1));
    assert_eq!(read32(vf(&mut d, 1), REG_SCRATCH), 0x55);
    ctrl(&mut d, 0);
    assert!(d.vfs().is_empty() && d.vf(0).is_none() && d.vf_mut(0).is_none());
    ctrl(&mut d, sriov_reg::CTRL_VF_ENABLE | sriov_reg::CTRL_VF_MSE);
    let v = vf(&mut d, 1);
    assert_eq!(read32(v, REG_SCRATCH), 0);
    assert!(!v.config().bus_master_enabled());
    assert_eq!(v.config().command(), 0);
}

/// Every request a VF makes reaches the IOMMU port with the VF's requester id; the PF keeps its own.
#[test]
fn vf_dma_carries_the_vf_requester_id() {
    let port = Arc::new(PagePort::default().map(0x1000, 0x1000, Perms::RW).map(
        0x2000,
        0x2000,
        Perms::RW,
    ));
    let r = sriov_rig(port.clone(), 0x1_0000);
    let (mut d, mem) = (r.dev, r.mem);
    iommu::DmaMemory::write(&*mem, 0x1000, &noise(0x100, 9)).unwrap();
    enable_vfs(&mut d, 3, VF_BAR0_BASE, VF_BAR2_BASE);
    let v = vf(&mut d, 1);
    enable_bme(v);
    write32(v, REG_DMA_PASID, DMA_PASID_VALID | 7);
    assert_eq!(run(v, DMA_CMD_COPY, 0x1000, 0x2000, 0x100, 0), STATUS_DONE);
    assert_eq!(run(v, DMA_CMD_TRANSLATE, 0, 0x1000, 0, 0), STATUS_DONE);
    let reqs = port.take();
    assert_eq!(reqs.len(), 3);
    // The VF's own requester id; no PASID while the PF's PASID capability is disabled.
    assert!(
        reqs.iter()
            .all(|r| r.source_id == 0x1a && r.pasid.is_none()),
        "{reqs:?}"
    );
    assert_eq!(
        reqs.iter().map(|r| (r.access, r.kind)).collect::<Vec<_>>(),
        vec![
            (Access::Read, RequestKind::Untranslated),
            (Access::Write, RequestKind::Untranslated),
            (Access::Read, RequestKind::TranslationRequest)
        ]
    );
    // VFs share the PF's PASID configuration: with the PF's PASID Enable set, the VF's requests carry one.
    cfg_write(&mut d, PASID_CAP_OFFSET + 6, &1u16.to_le_bytes());
    assert_eq!(
        run(vf(&mut d, 1), DMA_CMD_FILL, 0, 0x2800, 8, 0),
        STATUS_DONE
    );
    assert!(port
        .take()
        .iter()
        .all(|r| r.source_id == 0x1a && r.pasid == Some(7)));
    let mut copied = [0u8; 0x100];
    iommu::DmaMemory::read(&*mem, 0x2000, &mut copied).unwrap();
    assert_eq!(copied.to_vec(), noise(0x100, 9));
    // A VF with bus mastering off issues nothing.
    assert_eq!(
        run(vf(&mut d, 2), DMA_CMD_FILL, 0, 0x2000, 8, 0),
        STATUS_NO_BUS_MASTER
    );
    assert!(port.take().is_empty());
    // The PF: its own id (and its PASID).
    enable_bme(&mut d);
    write32(&mut d, REG_DMA_PASID, DMA_PASID_VALID | 7);
    assert_eq!(run(&mut d, DMA_CMD_FILL, 0, 0x2000, 8, 0), STATUS_DONE);
    assert!(port
        .take()
        .iter()
        .all(|r| r.source_id == 0x18 && r.pasid == Some(7)));
    assert_eq!(d.vfs()[1].dma_registers().completions, 3);
}

#[test]
fn vf_msix_goes_to_its_own_sink() {
    let r = sriov_rig(Arc::new(IdentityPort), 0x1_0000);
    let (mut d, pf_sink, vfs) = (r.dev, r.sink, r.vfs);
    enable_vfs(&mut d, 2, VF_BAR0_BASE, VF_BAR2_BASE);
    let v = vf(&mut d, 1);
    enable_bme(v);
    let msix = v.config().find_capability(id::MSIX).unwrap();
    cfg_write(v, msix + msix_reg::CONTROL, &0x8000u16.to_le_bytes());
    v.bar_write(MSIX_BAR, 32, &0xfee0_3000u64.to_le_bytes());
    v.bar_write(MSIX_BAR, 40, &0x63u32.to_le_bytes());
    v.bar_write(MSIX_BAR, 44, &0u32.to_le_bytes());
    write32(v, REG_IRQ_DOORBELL, 2);
    assert_eq!(read32(v, REG_IRQ_LAST), IRQ_LAST_SENT);
    // A DMA completion interrupt goes out on vector 0, masked: pending in the VF's PBA.
    assert_eq!(run(v, DMA_CMD_FILL, 0, 0x100, 8, DMA_FLAG_IRQ), STATUS_DONE);
    let mut pba = [0u8; 8];
    v.bar_read(MSIX_BAR, u64::from(MSIX_PBA_OFFSET), &mut pba);
    assert_eq!(u64::from_le_bytes(pba), 1);
    assert_eq!(
        vfs.sink(0x1a).unwrap().take(),
        vec![MsiMessage {
            address: 0xfee0_3000,
            data: 0x63
        }]
    );
    assert!(vfs.sink(0x19).unwrap().take().is_empty());
    assert!(pf_sink.take().is_empty());
    assert_eq!(
        d.vfs()[1].irq_counters(),
        IrqCounters {
            raised: 2,
            sent: 1,
            dropped: 0,
            last: IRQ_LAST_PENDING
        }
    );
    // No MSI on a VF: with MSI-X off the doorbell is dropped.
    let v0 = vf(&mut d, 0);
    enable_bme(v0);
    write32(v0, REG_IRQ_DOORBELL, 0);
    assert_eq!(read32(v0, REG_IRQ_LAST), IRQ_LAST_DISABLED);
}

#[test]
fn vf_flr_resets_only_that_vf() {
    let (mut d, _) = device();
    enable_vfs(&mut d, 2, VF_BAR0_BASE, VF_BAR2_BASE);
    write32(&mut d, REG_SCRATCH, 1);
    for i in 0..2 {
        let v = vf(&mut d, i);
        enable_bme(v);
        write32(v, REG_SCRATCH, 0x10 + u32::from(i));
        let msix = v.config().find_capability(id::MSIX).unwrap();
        cfg_write(v, msix + msix_reg::CONTROL, &0x8000u16.to_le_bytes());
        v.bar_write(MSIX_BAR, 0, &0xfee0_0000u64.to_le_bytes());
        assert_eq!(run(v, DMA_CMD_FILL, 0, 0x100, 8, 0), STATUS_DONE);
    }
    let (mut fresh, _) = device();
    enable_vfs(&mut fresh, 1, VF_BAR0_BASE, VF_BAR2_BASE);
    let power_on = config_dump(vf(&mut fresh, 0));
    let v0 = vf(&mut d, 0);
    initiate_flr(v0);
    assert_eq!(config_dump(v0), power_on);
    assert_eq!(read32(v0, REG_SCRATCH), 0);
    assert_eq!(read32(v0, REG_DMA_COMPLETIONS), 0);
    let mut e = [0u8; 16];
    v0.bar_read(MSIX_BAR, 0, &mut e);
    assert_eq!(e, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    assert!(
        v0.memory_enabled(),
        "decoding is the PF's VF MSE, untouched"
    );
    // VF 1 and the PF are untouched.
    let v1 = vf(&mut d, 1);
    assert_eq!(read32(v1, REG_SCRATCH), 0x11);
    assert!(v1.config().bus_master_enabled());
    assert_eq!(read32(&mut d, REG_SCRATCH), 1);
    assert_eq!(d.vfs().len(), 2);
    // The PF's FLR takes the VFs away and resets the SR-IOV capability.
    initiate_flr(&mut d);
    assert!(d.vfs().is_empty());
    assert_eq!(cfg_read32(&mut d, CAP + sriov_reg::CTRL) & 0xffff, 0);
    assert_eq!(cfg_read32(&mut d, CAP + sriov_reg::NUM_VFS) & 0xffff, 0);
    assert!(d.iov_bars().iter().all(|b| b.address == 0));
}

/// With a 64 KiB System Page Size every VF BAR is 64 KiB per VF (§9.3.3.13): the slices and what the VF
/// decodes follow.
#[test]
fn vf_bars_follow_the_system_page_size() {
    let (mut d, _) = device();
    cfg_write(
        &mut d,
        CAP + sriov_reg::SYS_PGSIZE,
        &(1u32 << 4).to_le_bytes(),
    );
    enable_vfs(&mut d, 2, 0xc100_0000, 0x40_0100_0000);
    let v1 = vf(&mut d, 1);
    let bars: Vec<(u64, u64)> = v1.bars().iter().map(|b| (b.address, b.size)).collect();
    assert_eq!(
        bars,
        vec![(0xc101_0000, 0x1_0000), (0x40_0101_0000, 0x1_0000)]
    );
    assert_eq!(v1.decode(0xc101_fffc), Some((0, 0xfffc)));
    let mut b = [0u8; 4];
    v1.bar_read(REGS_BAR, 0xfffc, &mut b);
    assert_eq!(b, [0; 4], "reserved inside the bigger BAR");
    assert_eq!(d.iov_bars()[0].size, 0x4_0000);
}

/// The segment finds VFs at 00:03.1.. while they exist, routes MMIO to their slices, and lists them.
#[test]
fn vfs_on_the_segment() {
    let mut s = PciSegment::new();
    s.add_device(3, Box::new(device().0)).unwrap();
    s.allocate_bars((0xc000_0000, 0x2000_0000), (0x40_0000_0000, 0x10_0000_0000))
        .unwrap();
    let ecam = |f: u64, r: usize| 3u64 << 15 | f << 12 | r as u64;
    let read = |s: &mut PciSegment, f: u64, r: usize| {
        let mut b = [0u8; 4];
        s.ecam_read(ecam(f, r), &mut b);
        u32::from_le_bytes(b)
    };
    // Boot: the PF only, its VF BAR apertures placed after every BAR, VF functions absent.
    let boot = s.describe();
    assert_eq!(
        boot.iter().map(|f| f.bdf.as_str()).collect::<Vec<_>>(),
        vec!["0000:00:00.0", "0000:00:03.0"]
    );
    assert_eq!(boot[1].bars.len(), 2, "VF BARs are not BARs");
    let iov = s.device(3).unwrap().iov_bars();
    let (a0, a2) = (iov[0].address, iov[1].address);
    assert_eq!((a0, a2), (0xc000_2000 + 0x2000, 0x40_0000_1000 + 0x3000));
    for f in 1..8 {
        assert_eq!(read(&mut s, f, 0x08), u32::MAX, "00:03.{f}");
    }
    // Linux's sriov_enable: NumVFs, then VF Enable | VF MSE.
    s.ecam_write(ecam(0, CAP + sriov_reg::NUM_VFS), &2u16.to_le_bytes());
    let c = sriov_reg::CTRL_VF_ENABLE | sriov_reg::CTRL_VF_MSE;
    s.ecam_write(ecam(0, CAP + sriov_reg::CTRL), &c.to_le_bytes());
    for f in [1, 2] {
        assert_eq!(read(&mut s, f, 0), u32::MAX, "VF Vendor/Device ID");
        assert_eq!(read(&mut s, f, 0x08), CLASS_CODE << 8 | u32::from(REVISION));
        assert_eq!(
            read(&mut s, f, 0x04),
            u32::from(status::CAPABILITIES_LIST) << 16
        );
    }
    assert_eq!(read(&mut s, 3, 0x08), u32::MAX, "NumVFs 2: no VF 2");
    // CF8 reaches them too.
    s.pio_write(0, &(0x8000_0000u32 | 3 << 11 | 2 << 8 | 0x08).to_le_bytes());
    let mut b = [0u8; 4];
    s.pio_read(4, &mut b);
    assert_eq!(u32::from_le_bytes(b), CLASS_CODE << 8 | u32::from(REVISION));
    // MMIO: each VF's slice of each aperture, the PF's BARs unchanged.
    let mmio32 = |s: &mut PciSegment, gpa: u64| {
        let mut b = [0u8; 4];
        s.mmio_read(gpa, &mut b).then(|| u32::from_le_bytes(b))
    };
    assert!(s.mmio_write(a0 + 0x1000 + REG_SCRATCH, &0x77u32.to_le_bytes()));
    assert_eq!(mmio32(&mut s, a0 + 0x1000 + REG_SCRATCH), Some(0x77));
    assert_eq!(
        mmio32(&mut s, a0 + REG_SCRATCH),
        Some(0),
        "VF 0's own scratch"
    );
    assert_eq!(mmio32(&mut s, a0 + REG_FEATURES), Some(VF_FEATURES));
    assert_eq!(mmio32(&mut s, a0 + 0x2000), None, "no VF 2");
    assert_eq!(
        mmio32(&mut s, a2 + 0x1000 + 12),
        Some(1),
        "VF 1's MSI-X vector 0: masked"
    );
    assert_eq!(mmio32(&mut s, 0xc000_0000 + REG_FEATURES), Some(FEATURES));
    // The description now lists the VFs as Linux shows them.
    let now = s.describe();
    let vfs: Vec<(String, u16, u16, Vec<u64>)> = now
        .iter()
        .filter(|f| f.device_id == VF_DEVICE_ID)
        .map(|f| {
            (
                f.bdf.clone(),
                f.vendor_id,
                f.msix_vectors,
                f.bars.iter().map(|b| b.start).collect(),
            )
        })
        .collect();
    assert_eq!(
        vfs,
        vec![
            ("0000:00:03.1".into(), VENDOR_ID, MSIX_VECTORS, vec![a0, a2]),
            (
                "0000:00:03.2".into(),
                VENDOR_ID,
                MSIX_VECTORS,
                vec![a0 + 0x1000, a2 + 0x1000]
            ),
        ]
    );
    // VF MSE off: no VF decodes; VF Enable off: the functions are gone.
    s.ecam_write(ecam(0, CAP + sriov_reg::CTRL), &1u16.to_le_bytes());
    assert_eq!(mmio32(&mut s, a0 + REG_ID), None);
    s.ecam_write(ecam(0, CAP + sriov_reg::CTRL), &0u16.to_le_bytes());
    assert_eq!(read(&mut s, 1, 0x08), u32::MAX);
    assert_eq!(s.describe(), boot);
    // Writes to absent VFs go nowhere and create nothing.
    s.ecam_write(ecam(1, 0x04), &[0xff; 4]);
    s.ecam_write(ecam(1, 0x70), &[0xff; 4]);
    assert_eq!(s.describe(), boot);
}
