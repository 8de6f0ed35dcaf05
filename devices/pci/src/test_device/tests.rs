use super::testutil::*;
use super::*;
use crate::capability::{ext_id, id};
use crate::config::{command, reg, CONFIG_SPACE_SIZE, LEGACY_CONFIG_SIZE};
use crate::msi::{msi_reg, MsiError, MsiMessage};
use crate::msix::msix_reg;
use iommu::mem::TestMemory;
use iommu::IdentityPort;

#[test]
fn identity_header() {
    let (d, _) = device();
    let c = d.config();
    assert_eq!((c.vendor_id(), c.device_id()), (VENDOR_ID, DEVICE_ID));
    assert_eq!(c.class_code(), CLASS_CODE);
    assert_eq!(c.read_u8(reg::HEADER_TYPE), 0);
    assert_eq!(c.read_u8(reg::INTERRUPT_PIN), 0);
    assert_eq!(c.read_u16(reg::SUBSYSTEM_VENDOR_ID), VENDOR_ID);
    assert_eq!(d.msix_vectors(), MSIX_VECTORS);
    assert!(d.has_msi());
    let bars = d.bars();
    assert_eq!(bars.len(), 2);
    assert_eq!(
        (bars[0].index, bars[0].bar_type, bars[0].size),
        (0, BarType::Mem32, BAR0_SIZE)
    );
    assert_eq!(
        (bars[1].index, bars[1].bar_type, bars[1].size),
        (2, BarType::Mem64, BAR2_SIZE)
    );
}

#[test]
fn capability_list_is_well_formed() {
    let (d, _) = device();
    let caps = d.config().capabilities();
    let ids: Vec<u16> = caps.iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        vec![
            u16::from(id::POWER_MANAGEMENT),
            u16::from(id::MSI),
            u16::from(id::PCI_EXPRESS),
            u16::from(id::MSIX)
        ]
    );
    let mut seen = std::collections::HashSet::new();
    for c in &caps {
        assert_eq!(c.offset % 4, 0);
        assert!(c.offset >= 0x40 && c.offset < LEGACY_CONFIG_SIZE);
        assert!(seen.insert(c.offset), "no cycles");
    }
    // Capabilities do not overlap: each ends before the next starts.
    for w in caps.windows(2) {
        assert!(w[0].offset < w[1].offset);
    }
    let pcie = d.config().find_capability(id::PCI_EXPRESS).unwrap();
    assert_eq!(d.config().read_u16(pcie + 2) >> 4 & 0xf, 0x9, "RCiEP");
}

#[test]
fn identity_registers_and_scratch() {
    let (mut d, _) = device();
    assert_eq!(read32(&mut d, REG_ID), ID_MAGIC);
    let mut id = [0u8; 4];
    d.bar_read(REGS_BAR, REG_ID, &mut id);
    assert_eq!(&id, b"IOVM");
    assert_eq!(read32(&mut d, REG_VERSION), VERSION);
    assert_eq!(
        read32(&mut d, REG_FEATURES),
        FEATURE_IRQ | FEATURE_DMA | FEATURE_PASID | FEATURE_FLR | FEATURE_SRIOV
    );
    write32(&mut d, REG_ID, 0);
    assert_eq!(read32(&mut d, REG_ID), ID_MAGIC, "read-only");
    write32(&mut d, REG_SCRATCH, 0x1234_5678);
    assert_eq!(read32(&mut d, REG_SCRATCH), 0x1234_5678);
    // Partial writes merge into scratch.
    d.bar_write(REGS_BAR, REG_SCRATCH + 1, &[0xab]);
    d.bar_write(REGS_BAR, REG_SCRATCH + 2, &[0xcd, 0xef]);
    assert_eq!(read32(&mut d, REG_SCRATCH), 0xefcd_ab78);
    let mut h = [0u8; 2];
    d.bar_read(REGS_BAR, REG_SCRATCH + 1, &mut h);
    assert_eq!(h, [0xab, 0xcd]);
    // An 8-byte write at 0x008 writes FEATURES (ignored) and SCRATCH.
    d.bar_write(
        REGS_BAR,
        REG_FEATURES,
        &0x5555_aaaa_0000_0000u64.to_le_bytes(),
    );
    assert_eq!(read32(&mut d, REG_SCRATCH), 0x5555_aaaa);
    // Reserved registers read 0; beyond the BAR reads all ones.
    assert_eq!(read32(&mut d, 0x80), 0);
    assert_eq!(read32(&mut d, DMA_REGS_START), 0);
    assert_eq!(read32(&mut d, BAR0_SIZE - 2) >> 16, 0xffff);
    assert_eq!(read32(&mut d, u64::MAX - 1), 0xffff_ffff);
    let mut b = [0u8; 4];
    d.bar_read(4, 0, &mut b);
    assert_eq!(b, [0xff; 4]);
}

#[test]
fn doorbell_without_interrupts_is_dropped() {
    let (mut d, sink) = device();
    enable_bme(&mut d);
    write32(&mut d, REG_IRQ_DOORBELL, 0);
    assert_eq!(read32(&mut d, REG_IRQ_DOORBELL), 0);
    assert_eq!(read32(&mut d, REG_IRQ_RAISED), 1);
    assert_eq!(read32(&mut d, REG_IRQ_DROPPED), 1);
    assert_eq!(read32(&mut d, REG_IRQ_SENT), 0);
    assert_eq!(read32(&mut d, REG_IRQ_LAST), IRQ_LAST_DISABLED);
    // A partial write to the doorbell does nothing.
    d.bar_write(REGS_BAR, REG_IRQ_DOORBELL, &[0]);
    assert_eq!(read32(&mut d, REG_IRQ_RAISED), 1);
    assert!(sink.take().is_empty());
}

#[test]
fn doorbell_through_msi() {
    let (mut d, sink) = device();
    enable_bme(&mut d);
    let msi = enable_msi(&mut d, 2);
    write32(&mut d, REG_IRQ_DOORBELL, 3);
    assert_eq!(
        sink.take(),
        vec![MsiMessage {
            address: 0xfee0_0000,
            data: 0x33
        }]
    );
    assert_eq!(read32(&mut d, REG_IRQ_LAST), IRQ_LAST_SENT);
    write32(&mut d, REG_IRQ_DOORBELL, 4);
    assert_eq!(read32(&mut d, REG_IRQ_LAST), IRQ_LAST_INVALID_VECTOR);
    // Mask vector 1, raise it, unmask through config space: delivered on unmask.
    cfg_write(&mut d, msi + msi_reg::MASK, &[0b10, 0, 0, 0]);
    write32(&mut d, REG_IRQ_DOORBELL, 1);
    assert_eq!(read32(&mut d, REG_IRQ_LAST), IRQ_LAST_PENDING);
    assert!(sink.take().is_empty());
    let mut p = [0u8; 4];
    d.config_read((msi + msi_reg::PENDING) / 4, 0, &mut p);
    assert_eq!(u32::from_le_bytes(p), 0b10);
    cfg_write(&mut d, msi + msi_reg::MASK, &[0, 0, 0, 0]);
    assert_eq!(
        sink.take(),
        vec![MsiMessage {
            address: 0xfee0_0000,
            data: 0x31
        }]
    );
    let c = d.irq_counters();
    assert_eq!((c.raised, c.sent, c.dropped), (3, 2, 1));
    // Bus mastering off: dropped.
    cfg_write(&mut d, reg::COMMAND, &command::MEMORY_SPACE.to_le_bytes());
    write32(&mut d, REG_IRQ_DOORBELL, 0);
    assert_eq!(read32(&mut d, REG_IRQ_LAST), IRQ_LAST_BUS_MASTER_OFF);
    assert!(sink.take().is_empty());
}

#[test]
fn doorbell_prefers_msix_and_pending_is_delivered_on_unmask() {
    let (mut d, sink) = device();
    enable_bme(&mut d);
    enable_msi(&mut d, 0);
    let msix = d.config().find_capability(id::MSIX).unwrap();
    cfg_write(&mut d, msix + msix_reg::CONTROL, &0xc000u16.to_le_bytes());
    let t = u64::from(MSIX_TABLE_OFFSET);
    d.bar_write(MSIX_BAR, t + 16, &0xfee0_1000u64.to_le_bytes());
    d.bar_write(MSIX_BAR, t + 24, &0x51u32.to_le_bytes());
    d.bar_write(MSIX_BAR, t + 28, &0u32.to_le_bytes());
    // Function masked: latched.
    write32(&mut d, REG_IRQ_DOORBELL, 1);
    assert_eq!(read32(&mut d, REG_IRQ_LAST), IRQ_LAST_PENDING);
    let mut pba = [0u8; 8];
    d.bar_read(MSIX_BAR, u64::from(MSIX_PBA_OFFSET), &mut pba);
    assert_eq!(u64::from_le_bytes(pba), 0b10);
    assert!(sink.take().is_empty());
    cfg_write(&mut d, msix + msix_reg::CONTROL, &0x8000u16.to_le_bytes());
    assert_eq!(
        sink.take(),
        vec![MsiMessage {
            address: 0xfee0_1000,
            data: 0x51
        }]
    );
    d.bar_read(MSIX_BAR, u64::from(MSIX_PBA_OFFSET), &mut pba);
    assert_eq!(u64::from_le_bytes(pba), 0);
    // Vector 0 is still masked in its entry: latched, then delivered when the entry is unmasked.
    d.bar_write(MSIX_BAR, t, &0xfee0_2000u64.to_le_bytes());
    d.bar_write(MSIX_BAR, t + 8, &0x50u32.to_le_bytes());
    write32(&mut d, REG_IRQ_DOORBELL, 0);
    assert!(sink.take().is_empty());
    d.bar_write(MSIX_BAR, t + 12, &0u32.to_le_bytes());
    assert_eq!(
        sink.take(),
        vec![MsiMessage {
            address: 0xfee0_2000,
            data: 0x50
        }]
    );
    write32(&mut d, REG_IRQ_DOORBELL, 0x1_0000);
    assert_eq!(read32(&mut d, REG_IRQ_LAST), IRQ_LAST_INVALID_VECTOR);
    let c = d.irq_counters();
    assert_eq!((c.raised, c.sent, c.dropped), (3, 2, 1));
    // BAR2 beyond its size reads all ones.
    let mut b = [0u8; 4];
    d.bar_read(MSIX_BAR, BAR2_SIZE - 2, &mut b);
    assert_eq!(b, [0, 0, 0xff, 0xff]);
}

struct FailingSink;

impl MsiSink for FailingSink {
    fn send(&self, _msg: MsiMessage) -> Result<(), MsiError> {
        Err(MsiError::Blocked("test".into()))
    }
}

#[test]
fn sink_errors_count_as_dropped() {
    let dma = DmaAccessor::new(Arc::new(IdentityPort), Arc::new(TestMemory::new(0)), 0x18);
    let mut d = TestDevice::new(Arc::new(FailingSink), dma).unwrap();
    enable_bme(&mut d);
    enable_msi(&mut d, 0);
    write32(&mut d, REG_IRQ_DOORBELL, 0);
    assert_eq!(read32(&mut d, REG_IRQ_LAST), IRQ_LAST_DELIVERY_ERROR);
    assert_eq!(read32(&mut d, REG_IRQ_DROPPED), 1);
    assert_eq!(read32(&mut d, REG_IRQ_SENT), 0);
}

#[test]
fn power_state_write_semantics() {
    let (mut d, _) = device();
    let pm = d.config().find_capability(id::POWER_MANAGEMENT).unwrap();
    cfg_write(&mut d, pm + 4, &[3, 0]);
    assert_eq!(d.config().read_u8(pm + 4) & 3, 3);
    cfg_write(&mut d, pm + 4, &[2, 0]);
    assert_eq!(d.config().read_u8(pm + 4) & 3, 3, "D2 unsupported");
    cfg_write(&mut d, pm + 4, &[0, 0]);
    assert_eq!(d.config().read_u8(pm + 4) & 3, 0);
    // Writes past the config space are ignored.
    d.config_write(CONFIG_SPACE_SIZE / 4, 0, &[1, 2, 3, 4]);
    d.config_write(usize::MAX, 3, &[1]);
}

#[test]
fn extended_capability_chain() {
    let (mut d, _) = device();
    // Walk as Linux's pci_find_next_ext_capability does, through guest config reads.
    let mut found = Vec::new();
    let mut pos = 0x100usize;
    while pos != 0 {
        assert!(
            (0x100..CONFIG_SPACE_SIZE).contains(&pos) && pos.is_multiple_of(4),
            "{pos:#x}"
        );
        assert!(found.len() < 8, "the list must terminate");
        let h = cfg_read32(&mut d, pos);
        assert_ne!(h, 0);
        found.push((h & 0xffff, (h >> 16) & 0xf, pos));
        pos = (h >> 20) as usize;
    }
    assert_eq!(
        found,
        vec![
            (u32::from(ext_id::PASID), 1, PASID_CAP_OFFSET),
            (u32::from(ext_id::ATS), 1, ATS_CAP_OFFSET),
            (u32::from(ext_id::SRIOV), 1, SRIOV_CAP_OFFSET)
        ]
    );
    assert_eq!(d.config().find_ext_capability(ext_id::PASID), Some(0x100));
    assert_eq!(d.config().find_ext_capability(ext_id::ATS), Some(0x108));
    assert_eq!(d.config().find_ext_capability(ext_id::SRIOV), Some(0x110));
    // Nothing after the last capability.
    for off in (SRIOV_CAP_OFFSET + crate::sriov::SRIOV_CAP_LEN..0x200).step_by(4) {
        assert_eq!(cfg_read32(&mut d, off), 0, "{off:#x}");
    }
    // Headers and capability registers are read-only.
    cfg_write(&mut d, PASID_CAP_OFFSET, &[0; 4]);
    cfg_write(&mut d, ATS_CAP_OFFSET, &[0xff; 4]);
    cfg_write(&mut d, SRIOV_CAP_OFFSET, &[0; 4]);
    assert_eq!(d.config().ext_capabilities().len(), 3);
    let pasid_cap = |d: &mut TestDevice| cfg_read32(d, PASID_CAP_OFFSET + 4);
    // PASID: width 20 (bits 12:8), privileged mode supported (bit 2), no execute (bit 1); control 0.
    assert_eq!(pasid_cap(&mut d), 0x0000_1404);
    cfg_write(&mut d, PASID_CAP_OFFSET + 4, &[0xff, 0xff]);
    assert_eq!(pasid_cap(&mut d), 0x0000_1404);
    // What pci_enable_pasid writes: Enable | the supported features. Exec is reserved.
    cfg_write(&mut d, PASID_CAP_OFFSET + 6, &0xffffu16.to_le_bytes());
    assert_eq!(pasid_cap(&mut d) >> 16, 0x0005);
    cfg_write(&mut d, PASID_CAP_OFFSET + 6, &0u16.to_le_bytes());
    assert_eq!(pasid_cap(&mut d) >> 16, 0);
    // ATS: queue depth 32 (0), not page aligned; pci_enable_ats(dev, 12) writes Enable | STU 0.
    assert_eq!(cfg_read32(&mut d, ATS_CAP_OFFSET + 4), 0);
    assert!(!d.ats_enabled());
    cfg_write(&mut d, ATS_CAP_OFFSET + 6, &0x8000u16.to_le_bytes());
    assert!(d.ats_enabled());
    cfg_write(&mut d, ATS_CAP_OFFSET + 4, &u32::MAX.to_le_bytes());
    assert_eq!(cfg_read32(&mut d, ATS_CAP_OFFSET + 4), 0x801f_0000);
    // DEVCAP2 advertises End-End TLP prefixes (needed by pci_enable_pasid), read-only.
    let pcie = d.config().find_capability(id::PCI_EXPRESS).unwrap();
    let devcap2 = pcie + crate::pcie::pcie_reg::DEVCAP2;
    cfg_write(&mut d, devcap2, &[0; 4]);
    assert_eq!(cfg_read32(&mut d, devcap2), 0x0060_0000);
    // The legacy (CF8) window cannot see extended space; bytes past 4 KiB read all ones.
    let mut b = [0u8; 4];
    d.config_read(CONFIG_SPACE_SIZE / 4, 0, &mut b);
    assert_eq!(b, [0xff; 4]);
}
