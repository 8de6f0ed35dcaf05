//! ACPI tables for direct-boot x86-64 Linux guests, built on the `acpi_tables` crate.
//!
//! [`build_acpi`] turns an [`AcpiPlatform`] (what the VMM emulates) into an RSDP plus the XSDT, FADT, DSDT,
//! MADT, MCFG and any extra tables (the DMAR from [`build_dmar`], IORT, ...), laid out back to back at guest
//! physical addresses. The VMM copies [`AcpiTables::all`] into guest memory and points Linux at the RSDP.
//!
//! The platform is "hardware-reduced" ACPI (ACPI 6.5 section 4.1): no PM timer, no fixed-feature registers, no
//! SCI, no FACS. Linux on x86 then bypasses the legacy PIC and PIT and uses the IOAPIC and LAPIC timer.

mod dmar;
mod dsdt;
mod fadt;
mod iort;
mod layout;
mod madt;
mod mcfg;
mod platform;
mod processors;
mod rsdp;
mod xsdt;

#[cfg(test)]
mod test_support;

pub use dmar::{
    build_dmar, DeviceScope, DmarConfig, Drhd, Rmrr, MAX_DRHD_SIZE_LOG2_PAGES,
    MIN_HOST_ADDRESS_WIDTH, PLATFORM_IOAPIC_SOURCE_ID,
};
pub use iort::{
    build_iort, IdMapping, IortConfig, IortItsGroup, IortRootComplex, IortSmmuv3, NodeRef,
    MAX_HTTU_OVERRIDE,
};
pub use layout::{build_acpi, table_files, AcpiTable, AcpiTables};
pub use platform::{AcpiPlatform, IoApic, PciHostBridge};

/// OEM ID in every table header and the RSDP (6 bytes, space padded).
pub const OEM_ID: [u8; 6] = *b"IOVMM ";
/// OEM table ID in every table header (8 bytes).
pub const OEM_TABLE_ID: [u8; 8] = *b"IOVMMTBL";
/// OEM revision in every table header.
pub const OEM_REVISION: u32 = 1;

/// Why the ACPI tables could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AcpiError {
    /// The RSDP must sit on a 16-byte boundary (ACPI 6.5 section 5.2.5.1).
    #[error("RSDP address {0:#x} is not 16-byte aligned")]
    RsdpMisaligned(u64),
    /// The tables need more room than the caller allowed.
    #[error("ACPI tables need {needed:#x} bytes but only {limit:#x} are available")]
    DoesNotFit { needed: u64, limit: u64 },
    /// An address computation overflowed the 64-bit address space.
    #[error("ACPI table layout overflows the address space")]
    AddressOverflow,
    /// The platform description is inconsistent.
    #[error("invalid ACPI platform: {0}")]
    InvalidPlatform(String),
    /// An entry of `extra_tables` is not a well-formed ACPI table.
    #[error("extra table {index} is malformed: {reason}")]
    BadExtraTable { index: usize, reason: String },
    /// A DMAR description breaks a rule of the VT-d specification (chapter 8) or one Linux enforces.
    #[error("invalid DMAR: {0}")]
    InvalidDmar(String),
    /// An IORT description breaks a rule of Arm DEN 0049 or one Linux enforces.
    #[error("invalid IORT: {0}")]
    InvalidIort(String),
}

#[cfg(test)]
/// The byte that makes `bytes` sum to zero (mod 256) once added.
pub(crate) fn checksum_byte(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(byte_sum(bytes))
}

/// Sum of all bytes mod 256; a valid ACPI table sums to 0.
pub fn byte_sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b))
}
