//! Firmware tables iovmm publishes to its guests: ACPI (on `acpi_tables`) and device trees (on `vm-fdt`),
//! plus the machine description both the VMM and the guest tests use.

pub mod acpi;
pub mod description;
pub mod fdt;
