//! XSDT: Extended System Description Table, ACPI 6.5 section 5.2.8: 64-bit pointers to every table but the
//! DSDT (which the FADT points at) and the FACS (there is none).

use acpi_tables::xsdt::XSDT;
use acpi_tables::Aml;

use super::{OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// Length of an XSDT with `entries` pointers.
pub(crate) fn xsdt_len(entries: usize) -> usize {
    36 + 8 * entries
}

/// Builds the XSDT listing `addresses` in order.
pub(crate) fn build_xsdt(addresses: &[u64]) -> Vec<u8> {
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    for a in addresses {
        xsdt.add_entry(*a);
    }
    let mut bytes = Vec::new();
    xsdt.to_aml_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::super::byte_sum;
    use super::super::test_support::le;
    use super::*;

    #[test]
    fn entries_follow_the_header() {
        let x = build_xsdt(&[0x1000, 0xDEAD_BEEF_0000, 8]);
        assert_eq!(x.len(), xsdt_len(3));
        assert_eq!(&x[0..4], b"XSDT");
        assert_eq!(le(&x, 4, 4), x.len() as u64);
        assert_eq!(le(&x, 36, 8), 0x1000);
        assert_eq!(le(&x, 44, 8), 0xDEAD_BEEF_0000);
        assert_eq!(le(&x, 52, 8), 8);
        assert_eq!(byte_sum(&x), 0);
    }
}
