//! Cross-checks the DMAR (VT-d spec chapter 8) with ACPICA's `iasl` (Debian package `acpica-tools`):
//! - the DMAR the VMM publishes for `--iommu vtd` goes through `build_acpi` as an extra table, the XSDT lists
//!   it, and `iasl -d` decodes it (and every other table) without errors or warnings into the fields we wrote;
//! - the disassembly recompiles without warnings into the same bytes;
//! - a table using every kind of structure and scope does the same.
//!
//! The tools are required: without them these tests fail (CI installs acpica-tools).

mod common;

use common::{
    assert_same_data_table, cross_check_extra_table, disassemble_table, field, fields, recompile,
    scratch_dir,
};
use firmware_tables::acpi::{build_dmar, DeviceScope, DmarConfig, Drhd, Rmrr};

/// The unit the VMM models: one INCLUDE_PCI_ALL DRHD at 0xFED9_0000 with the I/O APIC (MADT id 0) at FF:00.0,
/// interrupt remapping and platform opt-in reported (flags 0x05), and one RMRR for a device at 00:05.0. The
/// RMRR is the legacy VGA hole 0xA0000..=0xBFFFF, which the VMM's e820 map already marks reserved (the EBDA..
/// ACPI-tables range), as Linux requires of an RMRR (`arch_rmrr_sanity_check`); it stays clear of the ACPI
/// tables at 0xE0000 and of the test device 00:03.0 (an RMRR on a device makes VFIO refuse it).
fn vmm_dmar() -> DmarConfig {
    DmarConfig {
        host_address_width: 48,
        intr_remap: true,
        x2apic_opt_out: false,
        dma_ctrl_platform_opt_in: true,
        units: vec![Drhd {
            segment: 0,
            base: 0xFED9_0000,
            size_log2_pages: 0,
            include_pci_all: true,
            scopes: vec![DeviceScope::platform_ioapic(0)],
        }],
        rmrrs: vec![Rmrr {
            segment: 0,
            base: 0xA_0000,
            end_inclusive: 0xB_FFFF,
            scopes: vec![DeviceScope::Endpoint {
                bus: 0,
                dev: 5,
                func: 0,
            }],
        }],
    }
}

/// Two units (an explicit one first, then the INCLUDE_PCI_ALL one), every scope type and two RMRRs.
fn full_dmar() -> DmarConfig {
    DmarConfig {
        host_address_width: 39,
        intr_remap: true,
        x2apic_opt_out: true,
        dma_ctrl_platform_opt_in: false,
        units: vec![
            Drhd {
                segment: 0,
                base: 0xFED9_8000,
                size_log2_pages: 0,
                include_pci_all: false,
                scopes: vec![
                    DeviceScope::Endpoint {
                        bus: 0,
                        dev: 2,
                        func: 0,
                    },
                    DeviceScope::Bridge {
                        bus: 0,
                        dev: 0x1C,
                        func: 4,
                    },
                ],
            },
            Drhd {
                segment: 0,
                base: 0xFED9_0000,
                size_log2_pages: 0,
                include_pci_all: true,
                scopes: vec![
                    DeviceScope::platform_ioapic(2),
                    DeviceScope::Hpet {
                        id: 0,
                        bus: 0,
                        dev: 0x1F,
                        func: 0,
                    },
                ],
            },
        ],
        rmrrs: vec![
            Rmrr {
                segment: 0,
                base: 0xA_0000,
                end_inclusive: 0xA_FFFF,
                scopes: vec![DeviceScope::Endpoint {
                    bus: 0,
                    dev: 2,
                    func: 0,
                }],
            },
            Rmrr {
                segment: 0,
                base: 0xB_0000,
                end_inclusive: 0xB_0FFF,
                scopes: vec![
                    DeviceScope::Endpoint {
                        bus: 0,
                        dev: 5,
                        func: 1,
                    },
                    DeviceScope::Bridge {
                        bus: 0,
                        dev: 0x1C,
                        func: 4,
                    },
                ],
            },
        ],
    }
}

#[test]
fn vmm_dmar_is_listed_and_decodes() {
    let dmar = build_dmar(&vmm_dmar()).expect("VMM DMAR builds");
    let (dir, dsl) = cross_check_extra_table(dmar, "DMAR");
    assert_eq!(field(&dsl, "Signature"), Some("\"DMAR\""));
    assert_eq!(field(&dsl, "Revision"), Some("01"));
    assert_eq!(field(&dsl, "Oem ID"), Some("\"IOVMM"));
    assert_eq!(field(&dsl, "Oem Table ID"), Some("\"IOVMMTBL\""));
    assert_eq!(field(&dsl, "Host Address Width"), Some("2F"), "48 - 1");
    // DMAR flags (INTR_REMAP | DMA_CTRL_PLATFORM_OPT_IN), then the DRHD's (INCLUDE_PCI_ALL).
    assert_eq!(fields(&dsl, "Flags"), ["05", "01"]);
    assert_eq!(
        fields(&dsl, "Subtable Type"),
        ["0000", "0001"],
        "one DRHD, then one RMRR:\n{dsl}"
    );
    assert!(dsl.contains("[Hardware Unit Definition]"), "{dsl}");
    assert!(dsl.contains("[Reserved Memory Region]"), "{dsl}");
    assert_eq!(field(&dsl, "PCI Segment Number"), Some("0000"));
    assert_eq!(
        field(&dsl, "Register Base Address"),
        Some("00000000FED90000")
    );
    assert_eq!(fields(&dsl, "Device Scope Type"), ["03", "01"]);
    assert!(dsl.contains("[IOAPIC Device]"), "{dsl}");
    // The I/O APIC scope: MADT id 0 at FF:00.0; the RMRR's endpoint at 00:05.0.
    assert_eq!(fields(&dsl, "Enumeration ID"), ["00", "00"]);
    assert_eq!(fields(&dsl, "PCI Bus Number"), ["FF", "00"]);
    assert_eq!(fields(&dsl, "PCI Path"), ["00,00", "05,00"]);
    assert_eq!(field(&dsl, "Base Address"), Some("00000000000A0000"));
    assert_eq!(field(&dsl, "End Address (limit)"), Some("00000000000BFFFF"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_structure_and_scope_kind_decodes_and_recompiles() {
    let bytes = build_dmar(&full_dmar()).expect("full DMAR builds");
    let dir = scratch_dir("dmar-full");
    let dsl = disassemble_table(&dir, "DMAR.dat", &bytes);

    assert_eq!(field(&dsl, "Host Address Width"), Some("26"), "39 - 1");
    assert_eq!(fields(&dsl, "Flags"), ["03", "00", "01"]);
    assert_eq!(
        fields(&dsl, "Subtable Type"),
        ["0000", "0000", "0001", "0001"]
    );
    assert_eq!(
        fields(&dsl, "Register Base Address"),
        ["00000000FED98000", "00000000FED90000"]
    );
    assert_eq!(
        fields(&dsl, "Device Scope Type"),
        ["01", "02", "03", "04", "01", "01", "02"]
    );
    for kind in [
        "[PCI Endpoint Device]",
        "[PCI Bridge Device]",
        "[IOAPIC Device]",
        "[Message-capable HPET Device]",
    ] {
        assert!(dsl.contains(kind), "no {kind}:\n{dsl}");
    }
    assert_eq!(
        fields(&dsl, "Enumeration ID"),
        ["00", "00", "02", "00", "00", "00", "00"]
    );
    assert_eq!(
        fields(&dsl, "PCI Bus Number"),
        ["00", "00", "FF", "00", "00", "00", "00"]
    );
    assert_eq!(
        fields(&dsl, "PCI Path"),
        ["02,00", "1C,04", "00,00", "1F,00", "02,00", "05,01", "1C,04"]
    );
    assert_eq!(
        fields(&dsl, "Base Address"),
        ["00000000000A0000", "00000000000B0000"]
    );
    assert_eq!(
        fields(&dsl, "End Address (limit)"),
        ["00000000000AFFFF", "00000000000B0FFF"]
    );

    assert_same_data_table("DMAR.dat", &recompile(&dir, "DMAR.dat"), &bytes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The value iasl decodes for the field at byte `offset` of the table, whatever it calls the field.
fn value_at(dsl: &str, offset: usize) -> Option<&str> {
    let tag = format!("[{offset:03X}h {offset:04}");
    dsl.lines()
        .find(|l| l.trim_start().starts_with(&tag))
        .and_then(|l| l.split_once(" : "))
        .and_then(|(_, v)| v.split_whitespace().next())
}

/// DRHD byte 5 is "Size" (2^N 4 KiB pages of registers) in current VT-d revisions and in Linux 6.12's
/// actbl1.h; iasl 20200925 still calls it "Reserved". It decodes the table without complaint, but its
/// data-table compiler warns about a non-zero reserved field, so a unit with a multi-page register set is
/// only disassembled, not recompiled.
#[test]
fn multi_page_register_set_decodes() {
    let mut cfg = full_dmar();
    cfg.units[0].size_log2_pages = 3;
    let bytes = build_dmar(&cfg).expect("builds");
    let dir = scratch_dir("dmar-size");
    let dsl = disassemble_table(&dir, "DMAR.dat", &bytes);
    // First DRHD at 48: Flags at 52, Size at 53 (section 8.3).
    assert_eq!(value_at(&dsl, 52), Some("00"), "{dsl}");
    assert_eq!(value_at(&dsl, 53), Some("03"), "{dsl}");
    assert_eq!(value_at(&dsl, 56), Some("00000000FED98000"), "{dsl}");
    let _ = std::fs::remove_dir_all(&dir);
}
