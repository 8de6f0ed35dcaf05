//! Cross-checks the ACPI tables with ACPICA's own tools (Debian package `acpica-tools`):
//! - `iasl -d` disassembles every table without errors or warnings, and the decoded fields are ours;
//! - `iasl` recompiles every disassembly without errors or warnings, and the data tables come back identical;
//! - the RSDP (which iasl 20200925 cannot disassemble from a binary file) is rebuilt from source by iasl's
//!   data-table compiler, which computes both checksums itself, and must equal ours byte for byte;
//! - `acpiexec` runs the host bridge `_OSC` the way Linux calls it.
//!
//! The tools are required: without them these tests fail (CI installs acpica-tools).

mod common;

use common::{
    assert_same_data_table, disassemble, disassemble_clean, field, fields, platform, problems,
    recompile, run, scratch_dir, write_tables, LIMIT, RSDP_ADDR,
};
use firmware_tables::acpi::{build_acpi, table_files, AcpiTables};

fn tables() -> AcpiTables {
    build_acpi(&platform(), RSDP_ADDR, LIMIT).expect("sample platform builds")
}

#[test]
fn every_table_disassembles_cleanly() {
    let t = tables();
    let dir = scratch_dir("disasm");
    write_tables(&t, &dir);
    let addr_of = |sig: &str| {
        t.tables
            .iter()
            .find(|x| x.signature == sig)
            .map(|x| x.address)
            .unwrap()
    };

    for (name, _) in table_files(&t) {
        if name == "RSDP.dat" {
            continue; // see rsdp_matches_iasl_data_table_compiler
        }
        disassemble_clean(&dir, &name);
    }

    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();

    let xsdt = read("XSDT.dsl");
    assert_eq!(field(&xsdt, "Signature"), Some("\"XSDT\""));
    let hex = |a: u64| format!("{a:016X}");
    assert_eq!(
        field(&xsdt, "ACPI Table Address   0"),
        Some(hex(addr_of("FACP")).as_str())
    );
    assert_eq!(
        field(&xsdt, "ACPI Table Address   1"),
        Some(hex(addr_of("APIC")).as_str())
    );
    assert_eq!(
        field(&xsdt, "ACPI Table Address   2"),
        Some(hex(addr_of("MCFG")).as_str())
    );
    assert_eq!(field(&xsdt, "ACPI Table Address   3"), None);

    let facp = read("FACP.dsl");
    assert_eq!(field(&facp, "Signature"), Some("\"FACP\""));
    assert_eq!(field(&facp, "Revision"), Some("06"));
    assert_eq!(field(&facp, "FADT Minor Revision"), Some("05"));
    assert_eq!(field(&facp, "Hardware Reduced (V5)"), Some("1"));
    assert_eq!(field(&facp, "Reset Register Supported (V2)"), Some("1"));
    assert_eq!(field(&facp, "Control Method Power Button (V1)"), Some("1"));
    assert_eq!(field(&facp, "VGA Not Present (V4)"), Some("1"));
    assert_eq!(field(&facp, "CMOS RTC Not Present (V5)"), Some("1"));
    assert_eq!(field(&facp, "8042 Present on ports 60/64 (V2)"), Some("0"));
    assert_eq!(
        field(&facp, "Space ID"),
        Some("01"),
        "reset register in system I/O"
    );
    assert_eq!(field(&facp, "Address"), Some("0000000000000064"));
    assert_eq!(field(&facp, "Value to cause reset"), Some("FE"));
    // The 64-bit DSDT address is the second "DSDT Address" line (the first is the 32-bit one, 0).
    assert_eq!(
        fields(&facp, "DSDT Address"),
        ["00000000", hex(addr_of("DSDT")).as_str()]
    );

    let apic = read("APIC.dsl");
    assert_eq!(field(&apic, "Signature"), Some("\"APIC\""));
    assert_eq!(field(&apic, "Local Apic Address"), Some("FEE00000"));
    assert_eq!(apic.matches("[Processor Local APIC]").count(), 2);
    assert_eq!(apic.matches("[I/O APIC]").count(), 1);
    assert!(apic.contains("Address : FEC00000"), "{apic}");
    assert_eq!(apic.matches("[Interrupt Source Override]").count(), 1);
    assert_eq!(field(&apic, "Interrupt Input LINT"), Some("01"));

    let mcfg = read("MCFG.dsl");
    assert_eq!(field(&mcfg, "Signature"), Some("\"MCFG\""));
    assert_eq!(field(&mcfg, "Base Address"), Some("00000000E0000000"));
    assert_eq!(field(&mcfg, "Segment Group Number"), Some("0000"));
    assert_eq!(field(&mcfg, "Start Bus Number"), Some("00"));
    assert_eq!(field(&mcfg, "End Bus Number"), Some("FF"));

    let dsdt = read("DSDT.dsl");
    for needle in [
        "DefinitionBlock (\"\", \"DSDT\", 2, \"IOVMM \", \"IOVMMTBL\", 0x00000001)",
        "Device (PCI0)",
        "Name (_HID, EisaId (\"PNP0A08\")",
        "Name (_CID, EisaId (\"PNP0A03\")",
        "WordBusNumber (ResourceProducer",
        "0x0CF8,             // Range Minimum",
        "DWordMemory (ResourceProducer",
        "QWordMemory (ResourceProducer",
        "0x0000004FFFFFFFFF, // Range Maximum",
        "Method (_OSC, 4, Serialized)",
        "ToUUID (\"33db4d5b-1ff7-401c-9657-7441c03dd766\")",
        "Name (_HID, EisaId (\"PNP0C02\")",
        "0xE0000000,         // Address Base",
        "0x10000000,         // Address Length",
        "Name (_HID, EisaId (\"PNP0501\")",
        "0x03F8,             // Range Minimum",
        "IRQNoFlags ()",
        "{4}",
    ] {
        assert!(dsdt.contains(needle), "DSDT lacks `{needle}`:\n{dsdt}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn disassembly_recompiles_without_warnings() {
    let t = tables();
    let dir = scratch_dir("recompile");
    write_tables(&t, &dir);
    for (name, bytes) in table_files(&t) {
        if name == "RSDP.dat" {
            continue;
        }
        disassemble(&dir, &name);
        let aml = recompile(&dir, &name);
        if name != "DSDT.dat" {
            assert_same_data_table(&name, &aml, bytes);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rsdp_matches_iasl_data_table_compiler() {
    let t = tables();
    let dir = scratch_dir("rsdp");
    // Fields from our layout (not decoded from our RSDP bytes); both checksums left for iasl to compute.
    let source = format!(
        "[0008] Signature : \"RSD PTR \"\n\
         [0001] Checksum : 00\n\
         [0006] Oem ID : \"IOVMM \"\n\
         [0001] Revision : 02\n\
         [0004] RSDT Address : 00000000\n\
         [0004] Length : 00000024\n\
         [0008] XSDT Address : {:016X}\n\
         [0001] Extended Checksum : 00\n\
         [0003] Reserved : 000000\n",
        t.tables[0].address
    );
    std::fs::write(dir.join("rsdp.asl"), source).unwrap();
    let (ok, out) = run("iasl", &["rsdp.asl"], &dir);
    assert!(ok, "iasl rsdp.asl failed:\n{out}");
    assert!(problems(&out).is_empty(), "iasl rsdp.asl:\n{out}");
    let theirs = std::fs::read(dir.join("rsdp.aml")).expect("rsdp.aml");
    assert_eq!(theirs, t.rsdp.bytes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `[Buffer]` results acpiexec prints, one per evaluation, as bytes.
fn buffers(output: &str) -> Vec<Vec<u8>> {
    output
        .lines()
        .filter(|l| l.contains("[Buffer] Length"))
        .map(|l| {
            let data = l.split("0000:").nth(1).unwrap_or("");
            data.split_whitespace()
                .map_while(|h| u8::from_str_radix(h, 16).ok().filter(|_| h.len() == 2))
                .collect()
        })
        .collect()
}

fn dword(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

#[test]
fn osc_grants_what_linux_asks_for() {
    let t = tables();
    let dir = scratch_dir("osc");
    write_tables(&t, &dir);
    const PCI_UUID: &str = "5b 4d db 33 f7 1f 1c 40 96 57 74 41 c0 3d d7 66";
    const OTHER_UUID: &str = "5b 4d db 33 f7 1f 1c 40 96 57 74 41 c0 3d d7 67";
    // Linux 6.12 (drivers/acpi/pci_root.c) queries with CDW1 = 1 (query), support = ExtendedConfig | ASPM |
    // ClockPM | Segments | MSI | HPX-Type3 (0x21F), control = every bit it knows (0xBF), then requests.
    let calls = [
        format!("execute \\_SB.PCI0._OSC ({PCI_UUID}) 1 3 (01 00 00 00 1f 02 00 00 bf 00 00 00)"),
        format!("execute \\_SB.PCI0._OSC ({PCI_UUID}) 1 3 (00 00 00 00 1f 02 00 00 bf 00 00 00)"),
        // Reserved control bit 6 is masked and flagged.
        format!("execute \\_SB.PCI0._OSC ({PCI_UUID}) 1 3 (00 00 00 00 1f 02 00 00 40 00 00 00)"),
        format!("execute \\_SB.PCI0._OSC ({PCI_UUID}) 2 3 (00 00 00 00 1f 02 00 00 1d 00 00 00)"),
        format!("execute \\_SB.PCI0._OSC ({OTHER_UUID}) 1 3 (00 00 00 00 1f 02 00 00 1d 00 00 00)"),
    ];
    let (ok, out) = run("acpiexec", &["-b", &calls.join(";"), "DSDT.dat"], &dir);
    assert!(ok, "acpiexec failed:\n{out}");
    assert!(problems(&out).is_empty(), "acpiexec complained:\n{out}");
    let results = buffers(&out);
    assert_eq!(results.len(), calls.len(), "acpiexec output:\n{out}");
    for r in &results {
        assert_eq!(r.len(), 12, "_OSC returns the buffer it was given");
    }
    let cdw = |i: usize| (dword(&results[i], 0), dword(&results[i], 2));
    assert_eq!(
        cdw(0),
        (0x01, 0xBF),
        "query: everything granted, no error bits"
    );
    assert_eq!(cdw(1), (0x00, 0xBF), "request: everything granted");
    assert_eq!(cdw(2), (0x10, 0x00), "undefined control bit masked");
    assert_eq!(cdw(3).0, 0x08, "unrecognized revision");
    assert_eq!(cdw(4).0, 0x04, "unrecognized UUID");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_tool_message_is_clear() {
    let dir = scratch_dir("missing");
    let r = std::panic::catch_unwind(|| run("iasl-definitely-not-installed", &[], &dir));
    let msg = r
        .err()
        .and_then(|e| e.downcast::<String>().ok())
        .expect("running a missing tool panics");
    assert!(msg.contains("apt-get install acpica-tools"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}
