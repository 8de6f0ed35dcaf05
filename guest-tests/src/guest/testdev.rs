//! The iovmm DMA test device as the guest sees it: how to recognise it, check its identity register and make
//! it raise interrupts. The register map is owned by devices/pci (`pci::test_device::regs`).

use firmware_tables::description::{MachineDescription, PciFunctionInfo};
pub use pci::test_device::regs::{DEVICE_ID, VENDOR_ID};
use pci::test_device::regs::{
    ID_MAGIC, IRQ_LAST_SENT, REG_ID, REG_IRQ_DOORBELL, REG_IRQ_DROPPED, REG_IRQ_LAST,
    REG_IRQ_RAISED, REG_IRQ_SENT,
};

use super::vfio::{Region, VfioDevice};

/// True when `f` is the test device.
pub fn is_test_device(f: &PciFunctionInfo) -> bool {
    f.vendor_id == VENDOR_ID && f.device_id == DEVICE_ID
}

/// The test device in the machine description, if the VMM built one.
pub fn find(expect: &MachineDescription) -> Option<&PciFunctionInfo> {
    expect.pci.iter().find(|f| is_test_device(f))
}

/// The device's interrupt counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqCounters {
    pub raised: u32,
    pub sent: u32,
    pub dropped: u32,
    pub last: u32,
}

impl IrqCounters {
    /// Checks that `rings` doorbells since `before` each sent one message.
    pub fn check_since(&self, before: &IrqCounters, rings: u32) -> Vec<String> {
        let mut errs = Vec::new();
        let d = |a: u32, b: u32| a.wrapping_sub(b);
        if d(self.raised, before.raised) != rings {
            errs.push(format!(
                "device counted {} doorbells, expected {rings}",
                d(self.raised, before.raised)
            ));
        }
        if d(self.sent, before.sent) != rings {
            errs.push(format!(
                "device sent {} messages, expected {rings}",
                d(self.sent, before.sent)
            ));
        }
        if d(self.dropped, before.dropped) != 0 {
            errs.push(format!(
                "device dropped {} doorbells (last outcome {})",
                d(self.dropped, before.dropped),
                self.last
            ));
        }
        if rings > 0 && self.last != IRQ_LAST_SENT {
            errs.push(format!(
                "last doorbell outcome {}, expected {IRQ_LAST_SENT} (sent)",
                self.last
            ));
        }
        errs
    }
}

/// Checks the identity register through BAR0.
pub fn check_id(dev: &VfioDevice, bar0: &Region) -> Result<(), String> {
    let id = dev.read32(bar0, REG_ID)?;
    if id != ID_MAGIC {
        return Err(format!(
            "BAR0 ID register reads {id:#010x}, expected {ID_MAGIC:#010x}"
        ));
    }
    Ok(())
}

/// Reads the interrupt counters through BAR0.
pub fn counters(dev: &VfioDevice, bar0: &Region) -> Result<IrqCounters, String> {
    Ok(IrqCounters {
        raised: dev.read32(bar0, REG_IRQ_RAISED)?,
        sent: dev.read32(bar0, REG_IRQ_SENT)?,
        dropped: dev.read32(bar0, REG_IRQ_DROPPED)?,
        last: dev.read32(bar0, REG_IRQ_LAST)?,
    })
}

/// Asks the device to raise interrupt vector `vector` (through MSI-X if enabled, else MSI).
pub fn ring_doorbell(dev: &VfioDevice, bar0: &Region, vector: u32) -> Result<(), String> {
    dev.write32(bar0, REG_IRQ_DOORBELL, vector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_must_show_every_ring_sent() {
        let before = IrqCounters {
            raised: u32::MAX,
            sent: 10,
            dropped: 2,
            last: 0,
        };
        let good = IrqCounters {
            raised: 2,
            sent: 13,
            dropped: 2,
            last: IRQ_LAST_SENT,
        };
        assert!(good.check_since(&before, 3).is_empty());
        let bad = IrqCounters {
            raised: 2,
            sent: 11,
            dropped: 4,
            last: 5,
        };
        let errs = bad.check_since(&before, 3);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("sent 1 messages"));
        assert!(errs[1].contains("dropped 2"));
    }

    #[test]
    fn recognises_the_test_device() {
        let f = PciFunctionInfo {
            bdf: "0000:00:01.0".into(),
            vendor_id: VENDOR_ID,
            device_id: DEVICE_ID,
            class: 0xff0000,
            bars: vec![],
            msi: true,
            msix_vectors: 4,
        };
        assert!(is_test_device(&f));
        let other = PciFunctionInfo {
            vendor_id: 0x8086,
            ..f.clone()
        };
        assert!(!is_test_device(&other));
        let d = MachineDescription {
            cpus: 1,
            memory_mib: 1,
            e820: vec![],
            acpi_tables: vec![],
            pci: vec![other, f.clone()],
            iommu: None,
        };
        assert_eq!(find(&d), Some(&f));
    }
}
