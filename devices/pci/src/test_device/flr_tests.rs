//! Function Level Reset of the PF: advertised, triggered only by Initiate FLR, and a real reset of everything
//! (PCIe Base 6.0 §6.6.2), including in the sequence Linux's `pci_reset_function` runs.

use super::testutil::*;
use super::*;
use crate::bus::PciSegment;
use crate::capability::id;
use crate::config::{command, reg, status};
use crate::msi::{msi_reg, MsiMessage};
use crate::msix::msix_reg;
use crate::pcie::{devcap, devctl, devsta, pcie_reg};
use iommu::{Access, IdentityPort, Perms};

fn devctl(d: &mut TestDevice) -> u16 {
    cfg_read32(d, pcie_cap(&*d) + pcie_reg::DEVCTL) as u16
}

/// The MSI-X table and PBA as the guest reads them.
fn msix_dump(d: &mut TestDevice) -> Vec<u8> {
    let mut v = vec![0u8; BAR2_SIZE as usize];
    d.bar_read(MSIX_BAR, 0, &mut v);
    v
}

/// BAR0's registers as the guest reads them.
fn regs_dump(d: &mut TestDevice) -> Vec<u32> {
    (0..DMA_REGS_END).step_by(4).map(|o| read32(d, o)).collect()
}

#[test]
fn flr_is_advertised_and_initiate_reads_zero() {
    let (mut d, _) = device();
    let pcie = pcie_cap(&d);
    assert_ne!(cfg_read32(&mut d, pcie + pcie_reg::DEVCAP) & devcap::FLR, 0);
    initiate_flr(&mut d);
    assert_eq!(devctl(&mut d) & devctl::INITIATE_FLR, 0);
    // Transactions Pending never shows: every DMA command completes inside its register write.
    enable_bme(&mut d);
    assert_eq!(run(&mut d, DMA_CMD_FILL, 0, 0x100, 0x800, 0), STATUS_DONE);
    let sta = cfg_read32(&mut d, pcie + pcie_reg::DEVSTA) as u16;
    assert_eq!(sta & devsta::TRANSACTIONS_PENDING, 0);
}

/// Dirties every piece of state a guest can reach, then checks that one FLR puts all of it back.
#[test]
fn flr_returns_everything_to_power_on() {
    let (mut fresh, _) = device();
    let power_on_config = config_dump(&mut fresh);
    let power_on_msix = msix_dump(&mut fresh);
    let power_on_regs = regs_dump(&mut fresh);
    let Rig {
        mut dev, sink, mem, ..
    } = rig(Arc::new(IdentityPort), 0x1_0000);
    let d = &mut dev;
    let pcie = pcie_cap(&*d);
    // Header: BARs placed, MEM | BME, cache line, interrupt line, an error bit in STATUS.
    d.set_bar_address(REGS_BAR, 0xc000_0000).unwrap();
    d.set_bar_address(MSIX_BAR, 0x40_0000_0000).unwrap();
    enable_bme(d);
    cfg_write(d, reg::CACHE_LINE_SIZE, &[0x10]);
    cfg_write(d, reg::INTERRUPT_LINE, &[0x0b]);
    d.config_mut()
        .set_status_bits(status::RECEIVED_MASTER_ABORT);
    // MSI enabled with vector 1 masked and pending.
    let msi = enable_msi(d, 2);
    cfg_write(d, msi + msi_reg::MASK, &[0b10, 0, 0, 0]);
    d.raise(1);
    assert_eq!(cfg_read32(d, msi + msi_reg::PENDING), 0b10);
    // MSI-X enabled, function-masked, entry 0 programmed and pending (it wins over MSI).
    let msix = d.config().find_capability(id::MSIX).unwrap();
    cfg_write(d, msix + msix_reg::CONTROL, &0xc000u16.to_le_bytes());
    d.bar_write(MSIX_BAR, 0, &0xfee0_1000u64.to_le_bytes());
    d.bar_write(MSIX_BAR, 8, &0x41u32.to_le_bytes());
    d.bar_write(MSIX_BAR, 12, &0u32.to_le_bytes());
    write32(d, REG_IRQ_DOORBELL, 0);
    assert_eq!(read32(d, REG_IRQ_LAST), IRQ_LAST_PENDING);
    // Device Control: error reporting enables, Max_Payload_Size 256 bytes; a Device Status error bit.
    let ctl = 0x000f | 0b001 << 5 | 0b101 << 12;
    cfg_write(d, pcie + pcie_reg::DEVCTL, &(ctl as u16).to_le_bytes());
    d.config_mut().set_u16(pcie + pcie_reg::DEVSTA, 0x0004);
    // PASID and ATS enabled.
    cfg_write(d, PASID_CAP_OFFSET + 6, &1u16.to_le_bytes());
    cfg_write(d, ATS_CAP_OFFSET + 6, &0x8000u16.to_le_bytes());
    // Registers: scratch, counters, a DMA command run, every DMA register programmed.
    write32(d, REG_SCRATCH, 0x1234_5678);
    write64(d, REG_DMA_PATTERN, 0x0102_0304_0506_0708);
    write32(d, REG_DMA_PASID, DMA_PASID_VALID | 5);
    assert_eq!(run(d, DMA_CMD_FILL, 0x10, 0x200, 0x100, 0), STATUS_DONE);
    assert_eq!(
        run(d, DMA_CMD_COPY, 0x10, 0x2_0000, 0x100, DMA_FLAG_IRQ),
        STATUS_OUTSIDE_RAM
    );
    // SR-IOV: two VFs enabled, VF BARs placed, System Page Size 8 KiB (set before VF Enable).
    cfg_write(d, SRIOV_CAP_OFFSET + 0x20, &2u32.to_le_bytes());
    enable_vfs(d, 2, 0xc010_0000, 0x40_0010_0000);
    assert_eq!(d.vfs().len(), 2);
    // PM: D3hot.
    let pm = d.config().find_capability(id::POWER_MANAGEMENT).unwrap();
    cfg_write(d, pm + 4, &[3, 0]);
    assert_ne!(config_dump(d), power_on_config);
    assert!(sink.take().is_empty());
    let ram = {
        let mut v = vec![0u8; 0x1_0000];
        iommu::DmaMemory::read(&*mem, 0, &mut v).unwrap();
        v
    };

    initiate_flr(d);

    // Configuration space: power-on values everywhere but Max_Payload_Size.
    let mut after = config_dump(d);
    let mps_at = pcie + pcie_reg::DEVCTL;
    assert_eq!(
        after[mps_at] & 0xe0,
        0b001 << 5,
        "Max_Payload_Size survives FLR"
    );
    after[mps_at] = (after[mps_at] & !0xe0) | (power_on_config[mps_at] & 0xe0);
    for (o, (a, b)) in after.iter().zip(&power_on_config).enumerate() {
        assert_eq!(a, b, "config byte {o:#x}");
    }
    assert!(d.vfs().is_empty(), "VF Enable cleared: the VFs are gone");
    assert_eq!(
        d.bars().iter().map(|b| b.address).collect::<Vec<_>>(),
        [0, 0]
    );
    // MSI-X table masked and zero, PBA clear; BAR0 registers and the engine's state all zero.
    assert_eq!(msix_dump(d), power_on_msix);
    assert_eq!(regs_dump(d), power_on_regs);
    assert_eq!(d.irq_counters(), IrqCounters::default());
    assert_eq!(d.dma_registers(), dma::DmaRegisters::default());
    // The reset sent nothing and touched no memory.
    assert!(sink.take().is_empty());
    let mut now = vec![0u8; 0x1_0000];
    iommu::DmaMemory::read(&*mem, 0, &mut now).unwrap();
    assert!(now == ram);
    // The function behaves as new: interrupts off, bus mastering off.
    write32(d, REG_IRQ_DOORBELL, 0);
    assert_eq!(read32(d, REG_IRQ_LAST), IRQ_LAST_DISABLED);
    assert_eq!(run(d, DMA_CMD_FILL, 0, 0x100, 8, 0), STATUS_NO_BUS_MASTER);
    // Re-enabling MSI-X and unmasking entry 0 brings no stale message: the pending bit died with the reset.
    enable_bme(d);
    cfg_write(d, msix + msix_reg::CONTROL, &0x8000u16.to_le_bytes());
    d.bar_write(MSIX_BAR, 12, &0u32.to_le_bytes());
    assert!(sink.take().is_empty());
}

#[test]
fn only_initiate_flr_resets() {
    let (mut d, _) = device();
    let pcie = pcie_cap(&d);
    let ctl = pcie + pcie_reg::DEVCTL;
    let dirty = |d: &mut TestDevice| write32(d, REG_SCRATCH, 0xdead_beef);
    let was_reset = |d: &mut TestDevice| read32(d, REG_SCRATCH) == 0;
    // Writes that do not set bit 15 of Device Control leave the function alone, whatever their width.
    dirty(&mut d);
    for (off, data) in [
        (ctl, &0x7fffu16.to_le_bytes()[..]),
        (ctl, &[0xff][..]),
        (ctl - 4, &0x8000_8000u32.to_le_bytes()[..]),
        (ctl + 2, &0xffffu16.to_le_bytes()[..]),
        (pcie + pcie_reg::DEVCAP2, &[0xff; 4][..]),
        (ctl + 1 - 0x40, &[0x80][..]),
    ] {
        cfg_write(&mut d, off, data);
        assert!(!was_reset(&mut d), "write at {off:#x}");
    }
    // A byte write to the high byte, a word write, a dword write covering Device Status: each resets.
    for (off, data) in [
        (ctl + 1, &[0x80][..]),
        (ctl, &0x8000u16.to_le_bytes()[..]),
        (ctl, &0xffff_8000u32.to_le_bytes()[..]),
    ] {
        dirty(&mut d);
        cfg_write(&mut d, off, data);
        assert!(was_reset(&mut d), "write at {off:#x}");
        assert_eq!(devctl(&mut d) & devctl::INITIATE_FLR, 0);
    }
    // The dword write cleared Device Status error bits on its way (they were zero anyway after the reset),
    // and the write's other Device Control bits went with the reset too, Max_Payload_Size aside.
    assert_eq!(devctl(&mut d) & 0x000f, 0);
}

/// An FLR between programming a transfer and starting it, and after a transfer that faulted: nothing of the
/// old transfer survives, and no request reaches the IOMMU.
#[test]
fn flr_around_dma() {
    let port = Arc::new(PagePort::default().map(0x1000, 0x1000, Perms::RW));
    let Rig { mut dev, mem, .. } = rig(port.clone(), 0x1_0000);
    let d = &mut dev;
    iommu::DmaMemory::write(&*mem, 0x1000, &noise(0x1000, 3)).unwrap();
    enable_bme(d);
    // A copy that faults on its write half: the fault registers say so.
    assert_eq!(run(d, DMA_CMD_COPY, 0x1000, 0x5000, 0x100, 0), STATUS_FAULT);
    assert_eq!(read64(d, REG_DMA_FAULT_IOVA), 0x5000);
    assert!(!port.take().is_empty());
    initiate_flr(d);
    assert_eq!(read32(d, REG_DMA_STATUS), STATUS_IDLE);
    assert_eq!(read64(d, REG_DMA_FAULT_IOVA), 0);
    assert_eq!(read32(d, REG_DMA_FAULT_REASON), 0);
    // Program a copy, reset before the command: BME and the registers are gone, so nothing is requested.
    enable_bme(d);
    write64(d, REG_DMA_SRC, 0x1000);
    write64(d, REG_DMA_DST, 0x1800);
    write64(d, REG_DMA_LEN, 0x400);
    initiate_flr(d);
    write32(d, REG_DMA_CMD, DMA_CMD_COPY);
    assert_eq!(read32(d, REG_DMA_STATUS), STATUS_NO_BUS_MASTER);
    enable_bme(d);
    write32(d, REG_DMA_CMD, DMA_CMD_COPY);
    assert_eq!(read32(d, REG_DMA_STATUS), STATUS_DONE);
    assert_eq!(read64(d, REG_DMA_BYTES), 0, "LEN reset to 0");
    assert!(port.take().is_empty(), "no request after the reset");
    assert_eq!(
        read32(d, REG_DMA_COMPLETIONS),
        2,
        "both commands since the reset"
    );
    // The engine works after a reset: the same copy, programmed again.
    assert_eq!(run(d, DMA_CMD_COPY, 0x1000, 0x1800, 0x400, 0), STATUS_DONE);
    let reqs = port.take();
    assert!(reqs.iter().all(|r| r.source_id == 0x18));
    assert!(reqs.iter().any(|r| r.access == Access::Write));
}

fn cf8(dev: u32, reg: usize) -> u32 {
    0x8000_0000 | dev << 11 | (reg as u32 & 0xfc)
}

fn seg_read32(s: &mut PciSegment, dev: u32, reg: usize) -> u32 {
    let mut b = [0u8; 4];
    s.ecam_read(u64::from(dev) << 15 | reg as u64, &mut b);
    u32::from_le_bytes(b)
}

fn seg_write(s: &mut PciSegment, dev: u32, reg: usize, data: &[u8]) {
    s.ecam_write(u64::from(dev) << 15 | reg as u64, data);
}

/// The sequence of Linux's `pci_reset_function` / `pci_try_reset_function` (drivers/pci/pci.c), which
/// vfio-pci runs when it opens the device and on VFIO_DEVICE_RESET: save the header, COMMAND = INTx disable,
/// `pcie_flr` (Transactions Pending, Initiate FLR, then `pci_dev_wait` polling COMMAND for something other
/// than all ones), restore the header with BARs before COMMAND, restore MSI-X. The device works afterwards.
#[test]
fn linux_reset_function_sequence() {
    let sink = Arc::new(crate::msi::RecordingSink::default());
    let mut s = PciSegment::new();
    s.add_device(
        3,
        Box::new(TestDevice::new(sink.clone(), identity_dma()).unwrap()),
    )
    .unwrap();
    s.allocate_bars((0xc000_0000, 0x2000_0000), (0x40_0000_0000, 0x10_0000_0000))
        .unwrap();
    let (pcie, msix) = {
        let c = s.device(3).unwrap().config();
        (
            c.find_capability(id::PCI_EXPRESS).unwrap(),
            c.find_capability(id::MSIX).unwrap(),
        )
    };
    // The driver's state: MEM | BME, MSI-X with vector 1 programmed, scratch.
    let cmd = command::MEMORY_SPACE | command::BUS_MASTER;
    seg_write(&mut s, 3, reg::COMMAND, &cmd.to_le_bytes());
    seg_write(
        &mut s,
        3,
        msix + msix_reg::CONTROL,
        &0x8000u16.to_le_bytes(),
    );
    let (bar0, table) = (0xc000_0000u64, 0x40_0000_0000u64);
    s.mmio_write(table + 16, &0xfee0_0000u64.to_le_bytes());
    s.mmio_write(table + 24, &0x42u32.to_le_bytes());
    s.mmio_write(table + 28, &0u32.to_le_bytes());
    s.mmio_write(bar0 + REG_SCRATCH, &7u32.to_le_bytes());
    // pci_save_state: dwords 0..15 and the PCIe capability; then the disable.
    let saved: Vec<u32> = (0..16).map(|i| seg_read32(&mut s, 3, i * 4)).collect();
    let saved_devctl = seg_read32(&mut s, 3, pcie + pcie_reg::DEVCTL) as u16;
    seg_write(
        &mut s,
        3,
        reg::COMMAND,
        &command::INTX_DISABLE.to_le_bytes(),
    );
    // pcie_flr: Transactions Pending clear at once, then Initiate FLR through a read-modify-write.
    let sta = seg_read32(&mut s, 3, pcie + pcie_reg::DEVSTA) as u16;
    assert_eq!(sta & devsta::TRANSACTIONS_PENDING, 0);
    let ctl = seg_read32(&mut s, 3, pcie + pcie_reg::DEVCTL) as u16 | devctl::INITIATE_FLR;
    seg_write(&mut s, 3, pcie + pcie_reg::DEVCTL, &ctl.to_le_bytes());
    // pci_dev_wait: COMMAND/STATUS readable at once (also through CF8), Vendor ID valid.
    assert_ne!(seg_read32(&mut s, 3, reg::COMMAND), u32::MAX);
    s.pio_write(0, &cf8(3, 0).to_le_bytes());
    let mut id = [0u8; 4];
    s.pio_read(4, &mut id);
    assert_eq!(u32::from_le_bytes(id), 0x0001_7e57);
    // The reset happened: the BARs are unassigned, so BAR0 does not decode.
    assert!(!s.mmio_read(bar0, &mut [0u8; 4]));
    // pci_restore_state: PCIe capability, then dwords 15..0 when they differ (BARs before COMMAND), then
    // MSI-X (table entries from the driver's descriptors, then enable).
    seg_write(
        &mut s,
        3,
        pcie + pcie_reg::DEVCTL,
        &saved_devctl.to_le_bytes(),
    );
    for i in (0..16).rev() {
        if seg_read32(&mut s, 3, i * 4) != saved[i] {
            seg_write(&mut s, 3, i * 4, &saved[i].to_le_bytes());
        }
    }
    s.mmio_write(table + 16, &0xfee0_0000u64.to_le_bytes());
    s.mmio_write(table + 24, &0x42u32.to_le_bytes());
    s.mmio_write(table + 28, &0u32.to_le_bytes());
    seg_write(
        &mut s,
        3,
        msix + msix_reg::CONTROL,
        &0x8000u16.to_le_bytes(),
    );
    // The device works again, with fresh registers.
    let mut b = [0u8; 4];
    assert!(s.mmio_read(bar0 + REG_ID, &mut b));
    assert_eq!(u32::from_le_bytes(b), ID_MAGIC);
    assert!(s.mmio_read(bar0 + REG_SCRATCH, &mut b));
    assert_eq!(u32::from_le_bytes(b), 0);
    assert!(s.mmio_write(bar0 + REG_IRQ_DOORBELL, &1u32.to_le_bytes()));
    assert_eq!(
        sink.take(),
        vec![MsiMessage {
            address: 0xfee0_0000,
            data: 0x42
        }]
    );
    assert_eq!(
        seg_read32(&mut s, 3, pcie + pcie_reg::DEVCTL) as u16,
        saved_devctl
    );
}
