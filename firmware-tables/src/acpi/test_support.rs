//! The representative platform the unit tests build tables for (the x86-64 address map of the brief).

use super::{AcpiPlatform, IoApic, PciHostBridge};

pub(crate) const RSDP_ADDR: u64 = 0xE_0000;
pub(crate) const LIMIT: u64 = 0x2_0000;

pub(crate) fn sample_platform() -> AcpiPlatform {
    AcpiPlatform {
        cpus: 2,
        lapic_address: 0xFEE0_0000,
        ioapic: IoApic {
            id: 0,
            address: 0xFEC0_0000,
            gsi_base: 0,
        },
        pci: PciHostBridge {
            segment: 0,
            ecam_base: 0xE000_0000,
            bus_start: 0,
            bus_end: 255,
            mmio32: (0xC000_0000, 0x2000_0000),
            mmio64: (0x40_0000_0000, 0x10_0000_0000),
            io: (0x1000, 0xF000),
        },
        serial_com1: Some((0x3F8, 4)),
        reset: Some((0x64, 0xFE)),
        extra_tables: Vec::new(),
    }
}

/// Little-endian integer of `N` bytes at `off`.
pub(crate) fn le(bytes: &[u8], off: usize, n: usize) -> u64 {
    bytes[off..off + n]
        .iter()
        .rev()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}
