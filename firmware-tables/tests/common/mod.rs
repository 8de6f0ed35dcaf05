//! Helpers shared by the ACPICA cross-checks (`tests/iasl*.rs`): the sample platform, scratch directories
//! and running `iasl`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use firmware_tables::acpi::{
    build_acpi, table_files, AcpiPlatform, AcpiTables, IoApic, PciHostBridge,
};

pub const RSDP_ADDR: u64 = 0xE_0000;
pub const LIMIT: u64 = 0x2_0000;

pub fn platform() -> AcpiPlatform {
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

/// A fresh directory under cargo's per-target scratch space.
pub fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "iasl-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

pub fn write_tables(t: &AcpiTables, dir: &Path) {
    for (name, bytes) in table_files(t) {
        std::fs::write(dir.join(name), bytes).expect("write table");
    }
}

/// Runs an ACPICA tool in `dir`; returns (success, stdout + stderr). Panics with a clear message when the
/// tool is not installed.
pub fn run(tool: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{tool}` ({e}): these tests need ACPICA's tools; install them with \
                 `apt-get install acpica-tools`"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Lines of tool output that report a problem.
pub fn problems(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            (l.contains("error") || l.contains("warning") || l.contains("incorrect"))
                // iasl's compile summary, checked separately.
                && !l.contains("compilation successful")
        })
        .collect()
}

/// Values of every `[offset] Label : value` (or decoded-flag `Label : value`) line of an iasl data-table
/// disassembly whose label is exactly `label`.
pub fn fields<'a>(dsl: &'a str, label: &str) -> Vec<&'a str> {
    dsl.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" : ")?;
            let name = left.rsplit(']').next().unwrap_or(left).trim();
            (name == label).then(|| right.split_whitespace().next().unwrap_or(""))
        })
        .collect()
}

/// The first value of `label` (see [`fields`]).
pub fn field<'a>(dsl: &'a str, label: &str) -> Option<&'a str> {
    fields(dsl, label).into_iter().next()
}

pub fn disassemble(dir: &Path, file: &str) -> String {
    let (ok, out) = run("iasl", &["-d", file], dir);
    assert!(ok, "iasl -d {file} failed:\n{out}");
    assert!(
        problems(&out).is_empty(),
        "iasl -d {file} complained:\n{out}"
    );
    let dsl = dir.join(file.replace(".dat", ".dsl"));
    std::fs::read_to_string(&dsl).unwrap_or_else(|e| panic!("{}: {e}", dsl.display()))
}

/// Compiles `name`'s disassembly (`name.dsl`, from [`disassemble`]) back to a binary with iasl, which must
/// report no errors, warnings or remarks; returns the binary.
pub fn recompile(dir: &Path, name: &str) -> Vec<u8> {
    let dsl = name.replace(".dat", ".dsl");
    let out_prefix = name.replace(".dat", "_re");
    let (ok, out) = run("iasl", &["-p", &out_prefix, &dsl], dir);
    assert!(ok, "iasl {dsl} failed:\n{out}");
    assert!(
        out.contains("0 Errors, 0 Warnings, 0 Remarks"),
        "iasl {dsl}:\n{out}"
    );
    assert!(problems(&out).is_empty(), "iasl {dsl}:\n{out}");
    std::fs::read(dir.join(format!("{out_prefix}.aml"))).expect("recompiled table")
}

/// A recompiled data table must equal the original except for the checksum (byte 9) and the compiler ID and
/// revision (bytes 28..36), which iasl replaces with its own.
pub fn assert_same_data_table(name: &str, recompiled: &[u8], original: &[u8]) {
    assert_eq!(recompiled.len(), original.len(), "{name}");
    for (i, (a, b)) in recompiled.iter().zip(original).enumerate() {
        if i != 9 && !(28..36).contains(&i) {
            assert_eq!(a, b, "{name} differs at byte {i}");
        }
    }
}

/// [`disassemble`], and iasl marked nothing in the result as incorrect or annotated (`****`).
pub fn disassemble_clean(dir: &Path, file: &str) -> String {
    let dsl = disassemble(dir, file);
    assert!(!dsl.contains("Incorrect"), "{file}:\n{dsl}");
    assert!(
        !dsl.contains("**** "),
        "{file} has iasl annotations:\n{dsl}"
    );
    dsl
}

/// Writes `bytes` as `dir/file` and returns its [`disassemble_clean`] disassembly.
#[allow(dead_code)] // each tests/iasl*.rs compiles this module; not all of them use every helper
pub fn disassemble_table(dir: &Path, file: &str, bytes: &[u8]) -> String {
    std::fs::write(dir.join(file), bytes).unwrap();
    disassemble_clean(dir, file)
}

/// The sample platform with `table` as its one extra ACPI table: `build_acpi` places it unchanged, every table
/// of the set disassembles cleanly and (but the DSDT, and the RSDP: see tests/iasl.rs) recompiles to the same
/// bytes, and the XSDT lists it as entry 3 (after FACP, APIC, MCFG). Returns the scratch directory and the
/// table's disassembly.
#[allow(dead_code)] // see disassemble_table
pub fn cross_check_extra_table(table: Vec<u8>, signature: &str) -> (PathBuf, String) {
    let mut p = platform();
    p.extra_tables = vec![table.clone()];
    let t = build_acpi(&p, RSDP_ADDR, LIMIT)
        .unwrap_or_else(|e| panic!("build_acpi refuses the {signature}: {e}"));
    let placed = t
        .tables
        .iter()
        .find(|x| x.signature == signature)
        .unwrap_or_else(|| panic!("{signature} not placed"));
    assert_eq!(placed.bytes, table, "passed through as is");

    let dir = scratch_dir(&signature.to_ascii_lowercase());
    write_tables(&t, &dir);
    for (name, bytes) in table_files(&t) {
        if name == "RSDP.dat" {
            continue; // see tests/iasl.rs
        }
        disassemble_clean(&dir, &name);
        if name != "DSDT.dat" {
            assert_same_data_table(&name, &recompile(&dir, &name), bytes);
        }
    }

    let xsdt = std::fs::read_to_string(dir.join("XSDT.dsl")).unwrap();
    let addr = format!("{:016X}", placed.address);
    assert_eq!(
        field(&xsdt, "ACPI Table Address   3"),
        Some(addr.as_str()),
        "XSDT lists the {signature} after FACP, APIC, MCFG:\n{xsdt}"
    );
    let dsl = std::fs::read_to_string(dir.join(format!("{signature}.dsl"))).unwrap();
    (dir, dsl)
}
