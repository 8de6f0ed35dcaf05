//! Cross-checks the ACPI tables with ACPICA's own tools (Debian package `acpica-tools`):
//! - `iasl -d` disassembles every table without errors or warnings, and the decoded fields are ours;
//! - `iasl` recompiles every disassembly without errors or warnings, and the data tables come back identical;
//! - the RSDP (which iasl 20200925 cannot disassemble from a binary file) is rebuilt from source by iasl's
//!   data-table compiler, which computes both checksums itself, and must equal ours byte for byte;
//! - `acpiexec` runs the host bridge `_OSC` and the platform-wide `\_SB._OSC` the way Linux calls them, and
//!   evaluates every processor's `_CPC` into what Linux's `acpi_cppc_processor_probe` accepts.
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
    // Unspecified: amd-pstate's quiet "driver load is disabled" path (src/acpi/fadt.rs).
    assert_eq!(field(&facp, "PM Profile"), Some("00"));
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
        "ToUUID (\"0811b06e-4a27-44f9-8d60-3cbbc22e7b48\")",
        "Local0 = (CDW2 & 0x60)",
        "Name (CPCP, Package (0x17)",
        "Register (SystemMemory, ",
        "Device (C000)",
        "Device (C001)",
        "Name (_HID, \"ACPI0007\" /* Processor Device */)",
        "Method (_CPC, 0, NotSerialized)",
        "Return (\\_SB.CPCP)",
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
    assert!(
        !dsdt.contains("Device (C002)"),
        "one processor per vCPU:\n{dsdt}"
    );
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

/// Runs each `_OSC` call under acpiexec against DSDT.dat in `dir`; every call must return the `len`-byte buffer
/// it was given, and acpiexec must not complain.
fn execute_osc(dir: &std::path::Path, calls: &[String], len: usize) -> Vec<Vec<u8>> {
    let (ok, out) = run("acpiexec", &["-b", &calls.join(";"), "DSDT.dat"], dir);
    assert!(ok, "acpiexec failed:\n{out}");
    assert!(problems(&out).is_empty(), "acpiexec complained:\n{out}");
    let results = buffers(&out);
    assert_eq!(results.len(), calls.len(), "acpiexec output:\n{out}");
    for r in &results {
        assert_eq!(r.len(), len, "_OSC returns the buffer it was given");
    }
    results
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
    let results = execute_osc(&dir, &calls, 12);
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

const PLATFORM_UUID: &str = "6e b0 11 08 27 4a f9 44 8d 60 3c bb c2 2e 7b 48";

#[test]
fn platform_osc_acknowledges_cppc_only() {
    let t = tables();
    let dir = scratch_dir("sb-osc");
    write_tables(&t, &dir);
    const OTHER_UUID: &str = "6e b0 11 08 27 4a f9 44 8d 60 3c bb c2 2e 7b 49";
    // Linux (drivers/acpi/bus.c acpi_bus_osc_negotiate_platform_control) queries with CDW1 = 1 and every
    // feature it supports in CDW2 (Debian's 7.3 logs "OS support mask [002e7eff]"), then requests exactly what
    // the query returned. A kernel without CONFIG_ACPI_CPPC_LIB does not ask for CPPC (bits 5 and 6).
    let calls = [
        format!("execute \\_SB._OSC ({PLATFORM_UUID}) 1 2 (01 00 00 00 ff 7e 2e 00)"),
        format!("execute \\_SB._OSC ({PLATFORM_UUID}) 1 2 (00 00 00 00 60 00 00 00)"),
        format!("execute \\_SB._OSC ({PLATFORM_UUID}) 1 2 (01 00 00 00 0c 2e 22 00)"),
        format!("execute \\_SB._OSC ({PLATFORM_UUID}) 1 2 (00 00 00 00 00 00 00 00)"),
        format!("execute \\_SB._OSC ({PLATFORM_UUID}) 2 2 (00 00 00 00 60 00 00 00)"),
        format!("execute \\_SB._OSC ({OTHER_UUID}) 1 2 (00 00 00 00 60 00 00 00)"),
    ];
    let results = execute_osc(&dir, &calls, 8);
    let cdw = |i: usize| (dword(&results[i], 0), dword(&results[i], 1));
    assert_eq!(
        cdw(0),
        (0x11, 0x60),
        "query: CPPC + CPPC2 kept, the rest masked"
    );
    assert_eq!(cdw(1), (0x00, 0x60), "request: acknowledged, no error bits");
    assert_eq!(
        cdw(2),
        (0x11, 0x00),
        "query without CPPC: nothing to acknowledge"
    );
    assert_eq!(cdw(3), (0x00, 0x00), "empty request: no error bits");
    assert_eq!(cdw(4).0, 0x08, "unrecognized revision");
    assert_eq!(cdw(5).0, 0x04, "unrecognized UUID");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One element of a package acpiexec printed.
#[derive(Debug, PartialEq)]
enum Element {
    Integer(u64),
    Buffer(Vec<u8>),
}

/// The elements of the `[Package]` results acpiexec prints, one list per evaluation. Buffers longer than 16
/// bytes continue on `    0010: ...` lines.
fn packages(output: &str) -> Vec<Vec<Element>> {
    let hex_bytes = |s: &str| -> Vec<u8> {
        let data = s.split("//").next().unwrap_or("");
        let data = data.split_once(':').map_or("", |(_, d)| d);
        data.split_whitespace()
            .filter_map(|h| u8::from_str_radix(h, 16).ok().filter(|_| h.len() == 2))
            .collect()
    };
    let mut out = Vec::new();
    let mut lines = output.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(count) = line
            .split("[Package] Contains ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let mut elements = Vec::new();
        while elements.len() < count {
            let l = lines.next().expect("package ends early");
            if let Some(v) = l.split("[Integer] = ").nth(1) {
                elements.push(Element::Integer(u64::from_str_radix(v.trim(), 16).unwrap()));
            } else if let Some(rest) = l.split("[Buffer] Length ").nth(1) {
                let len =
                    usize::from_str_radix(rest.split_whitespace().next().unwrap(), 16).unwrap();
                let mut data = rest
                    .split_once('=')
                    .map_or(Vec::new(), |(_, d)| hex_bytes(d));
                while data.len() < len {
                    data.extend(hex_bytes(lines.next().expect("buffer ends early")));
                }
                elements.push(Element::Buffer(data));
            } else {
                panic!("unexpected package element line `{l}`");
            }
        }
        out.push(elements);
    }
    out
}

/// Each `_CPC`, as ACPICA evaluates it for Linux, passes the checks of `acpi_cppc_processor_probe` (Linux 6.12
/// and 7.3 drivers/acpi/cppc_acpi.c) without any of its warnings, and `cppc_get_perf_caps` can read it.
#[test]
fn every_processor_cpc_is_what_linux_accepts() {
    let t = tables();
    let dir = scratch_dir("cpc");
    write_tables(&t, &dir);
    let cpus = platform().cpus;
    let calls: Vec<String> = (0..cpus)
        .map(|i| format!("evaluate \\_SB.C{i:03X}._CPC"))
        .collect();
    let (ok, out) = run("acpiexec", &["-b", &calls.join(";"), "DSDT.dat"], &dir);
    assert!(ok, "acpiexec failed:\n{out}");
    assert!(problems(&out).is_empty(), "acpiexec complained:\n{out}");
    let cpcs = packages(&out);
    assert_eq!(cpcs.len(), usize::from(cpus), "acpiexec output:\n{out}");
    let null_register = [0x82, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x79, 0];
    for cpc in &cpcs {
        // NumEntries and Revision: revision 3 needs exactly 23 entries.
        assert_eq!(cpc.len(), 23);
        assert_eq!(cpc[0], Element::Integer(23));
        assert_eq!(cpc[1], Element::Integer(3));
        let int = |i: usize| match &cpc[i] {
            Element::Integer(v) => *v,
            Element::Buffer(_) => panic!("_CPC entry {i} is a Buffer"),
        };
        // Highest, nominal, lowest nonlinear, lowest: nonzero and ordered.
        let (high, nom, nonlin, low) = (int(2), int(3), int(4), int(5));
        assert!(
            0 < low && low <= nonlin && nonlin <= nom && nom <= high,
            "{cpc:?}"
        );
        // Every Buffer is a null SystemMemory register: no ioremap, no PCC, no flexible address space.
        for (i, e) in cpc.iter().enumerate() {
            if let Element::Buffer(b) = e {
                assert_eq!(b.as_slice(), null_register.as_slice(), "_CPC entry {i}");
            }
        }
        // Desired Performance (entry 7) absent is fine: Autonomous Selection Enable (entry 17) is Integer 1
        // and the platform _OSC acknowledges CPPC2.
        assert!(matches!(cpc[7], Element::Buffer(_)));
        assert_eq!(int(17), 1);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
