//! MCFG: PCI Express memory-mapped configuration space base address table (PCI Firmware Specification 3.3,
//! section 4.1.2). One allocation per host bridge.

use acpi_tables::mcfg::MCFG;
use acpi_tables::Aml;

use super::{PciHostBridge, OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// Builds the MCFG for one host bridge.
pub(crate) fn build_mcfg(pci: &PciHostBridge) -> Vec<u8> {
    let mut mcfg = MCFG::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    mcfg.add_ecam(pci.ecam_base, pci.segment, pci.bus_start, pci.bus_end);
    let mut bytes = Vec::new();
    mcfg.to_aml_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::super::byte_sum;
    use super::super::test_support::{le, sample_platform};
    use super::*;

    #[test]
    fn decodes_to_the_ecam_window() {
        let mut pci = sample_platform().pci;
        pci.segment = 3;
        pci.bus_start = 0x10;
        pci.bus_end = 0x7F;
        let m = build_mcfg(&pci);
        // 36-byte header, 8 reserved bytes, then 16-byte allocation structures (PCI FW 3.3 table 4-3):
        // base address (8), segment (2), start bus (1), end bus (1), reserved (4).
        assert_eq!(&m[0..4], b"MCFG");
        assert_eq!(m.len(), 36 + 8 + 16);
        assert_eq!(le(&m, 4, 4), m.len() as u64);
        assert_eq!(le(&m, 44, 8), 0xE000_0000);
        assert_eq!(le(&m, 52, 2), 3);
        assert_eq!(m[54], 0x10);
        assert_eq!(m[55], 0x7F);
        assert_eq!(byte_sum(&m), 0);
    }
}
