//! RSDP: Root System Description Pointer, ACPI 6.5 section 5.2.5.3 (revision 2, XSDT only).

use acpi_tables::rsdp::Rsdp;
use acpi_tables::Aml;

use super::OEM_ID;

/// Size of a revision-2 RSDP.
pub(crate) const RSDP_LEN: usize = 36;

/// Builds the RSDP pointing at the XSDT at `xsdt_addr`. The RSDT address stays 0.
pub(crate) fn build_rsdp(xsdt_addr: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    Rsdp::new(OEM_ID, xsdt_addr).to_aml_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::super::byte_sum;
    use super::super::test_support::le;
    use super::*;

    #[test]
    fn layout_and_both_checksums() {
        let r = build_rsdp(0xE_0030);
        assert_eq!(r.len(), RSDP_LEN);
        // Table 5.3: signature (8), checksum over the first 20 bytes (1), OEM ID (6), revision (1),
        // RSDT address (4), length (4), XSDT address (8), extended checksum over all 36 bytes (1), reserved (3).
        assert_eq!(&r[0..8], b"RSD PTR ");
        assert_eq!(byte_sum(&r[0..20]), 0, "ACPI 1.0 checksum");
        assert_eq!(byte_sum(&r), 0, "extended checksum");
        assert_eq!(&r[9..15], b"IOVMM ");
        assert_eq!(r[15], 2, "revision");
        assert_eq!(le(&r, 16, 4), 0, "no RSDT");
        assert_eq!(le(&r, 20, 4), 36);
        assert_eq!(le(&r, 24, 8), 0xE_0030);
    }
}
