//! What the VMM tells the ACPI builder about the machine, and the sanity checks on it.

use super::AcpiError;

/// One PCI host bridge (PCI segment group) with its ECAM window and resource windows.
///
/// A window of size 0 is left out of `_CRS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciHostBridge {
    /// PCI segment group number (`_SEG`, MCFG segment).
    pub segment: u16,
    /// ECAM base address as MCFG states it: the address bus 0 of this segment would have, even when
    /// `bus_start > 0` (PCI Firmware Specification 3.3, section 4.1.2). Bus `n` lives at
    /// `ecam_base + (n << 20)`.
    pub ecam_base: u64,
    /// First bus decoded by the bridge (`_BBN`).
    pub bus_start: u8,
    /// Last bus decoded by the bridge.
    pub bus_end: u8,
    /// 32-bit MMIO window: (base, size). Must end at or below 4 GiB.
    pub mmio32: (u64, u64),
    /// 64-bit MMIO window: (base, size).
    pub mmio64: (u64, u64),
    /// I/O port window: (base, size). The config ports 0xCF8..=0xCFF are cut out of it.
    pub io: (u16, u16),
}

impl PciHostBridge {
    /// The part of the ECAM space that belongs to `bus_start..=bus_end`: (start, length).
    pub fn ecam_window(&self) -> (u64, u64) {
        let start = self
            .ecam_base
            .saturating_add(u64::from(self.bus_start) << 20);
        let len = (u64::from(self.bus_end) - u64::from(self.bus_start) + 1) << 20;
        (start, len)
    }
}

/// The I/O APIC (one, for now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    /// MMIO base address of its register window.
    pub address: u32,
    /// First global system interrupt it serves.
    pub gsi_base: u32,
}

/// The machine the ACPI tables describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiPlatform {
    /// Number of vCPUs. Processor UIDs and LAPIC ids are `0..cpus`, all enabled.
    pub cpus: u8,
    /// Local APIC base address (0xFEE0_0000 on x86).
    pub lapic_address: u32,
    pub ioapic: IoApic,
    pub pci: PciHostBridge,
    /// A 16550 at (port, ISA IRQ), described as PNP0501 in the DSDT.
    pub serial_com1: Option<(u16, u8)>,
    /// FADT RESET_REG: writing `value` to I/O `port` resets the machine.
    pub reset: Option<(u16, u8)>,
    /// Already-built tables (DMAR, IORT, SSDT, ...) placed after the standard ones and listed in the XSDT as is.
    pub extra_tables: Vec<Vec<u8>>,
}

fn invalid(msg: String) -> AcpiError {
    AcpiError::InvalidPlatform(msg)
}

/// Checks a memory window (base, size) and returns its inclusive end, or `None` when the size is 0.
fn mem_window_end(
    name: &str,
    (base, size): (u64, u64),
    max_end: u64,
) -> Result<Option<u64>, AcpiError> {
    if size == 0 {
        return Ok(None);
    }
    let end = base
        .checked_add(size - 1)
        .filter(|end| *end <= max_end)
        .ok_or_else(|| invalid(format!("{name} window {base:#x}+{size:#x} is out of range")))?;
    Ok(Some(end))
}

impl AcpiPlatform {
    /// Rejects descriptions the tables cannot express (or that would describe a broken machine).
    pub(crate) fn validate(&self) -> Result<(), AcpiError> {
        if self.cpus == 0 {
            return Err(invalid("at least one CPU is needed".into()));
        }
        let pci = &self.pci;
        if pci.bus_start > pci.bus_end {
            return Err(invalid(format!(
                "PCI bus range {:#x}..={:#x} is empty",
                pci.bus_start, pci.bus_end
            )));
        }
        // The ECAM window for the last bus must be addressable.
        pci.ecam_base
            .checked_add((u64::from(pci.bus_end) + 1) << 20)
            .ok_or_else(|| invalid(format!("ECAM base {:#x} overflows", pci.ecam_base)))?;
        // DWordMemory lengths are 32-bit, so a 32-bit window cannot cover all 4 GiB.
        mem_window_end("mmio32", pci.mmio32, u64::from(u32::MAX))?;
        if pci.mmio32.1 > u64::from(u32::MAX) {
            return Err(invalid("mmio32 window is too large".into()));
        }
        mem_window_end("mmio64", pci.mmio64, u64::MAX)?;
        let (io_base, io_size) = pci.io;
        if u32::from(io_base) + u32::from(io_size) > 0x1_0000 {
            return Err(invalid(format!(
                "I/O window {io_base:#x}+{io_size:#x} exceeds the 64 KiB port space"
            )));
        }
        if let Some((port, irq)) = self.serial_com1 {
            if irq >= 16 {
                return Err(invalid(format!("COM1 IRQ {irq} is not an ISA IRQ")));
            }
            if port > 0xFFF8 {
                return Err(invalid(format!("COM1 port {port:#x} out of range")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::sample_platform;
    use super::*;

    #[test]
    fn sample_platform_is_valid() {
        assert_eq!(sample_platform().validate(), Ok(()));
    }

    #[test]
    fn ecam_window_covers_bus_range() {
        let mut p = sample_platform().pci;
        assert_eq!(p.ecam_window(), (0xE000_0000, 0x1000_0000));
        p.bus_start = 0x10;
        p.bus_end = 0x1F;
        assert_eq!(p.ecam_window(), (0xE100_0000, 0x100_0000));
    }

    #[test]
    fn rejects_inconsistent_platforms() {
        let cases: &[fn(&mut AcpiPlatform)] = &[
            |p| p.cpus = 0,
            |p| {
                p.pci.bus_start = 5;
                p.pci.bus_end = 4
            },
            |p| p.pci.ecam_base = u64::MAX - 0xFFFF,
            |p| p.pci.mmio32 = (0xF000_0000, 0x2000_0000),
            |p| p.pci.mmio32 = (0, 0x1_0000_0000),
            |p| p.pci.mmio64 = (u64::MAX, 2),
            |p| p.pci.io = (0xF000, 0x1001),
            |p| p.serial_com1 = Some((0x3F8, 16)),
        ];
        for (i, mutate) in cases.iter().enumerate() {
            let mut p = sample_platform();
            mutate(&mut p);
            assert!(
                matches!(p.validate(), Err(AcpiError::InvalidPlatform(_))),
                "case {i} was accepted"
            );
        }
    }

    #[test]
    fn zero_sized_windows_are_allowed() {
        let mut p = sample_platform();
        p.pci.mmio64 = (0, 0);
        p.pci.io = (0, 0);
        assert_eq!(p.validate(), Ok(()));
    }
}
