//! `acpi-tables`: every published table except RSDP and XSDT is in /sys/firmware/acpi/tables with the same
//! length and FNV-1a-64 hash.

use firmware_tables::description::{fnv1a64, AcpiTableInfo};

use super::context::Context;
use super::report::Report;

/// Tables Linux does not expose under /sys/firmware/acpi/tables.
const NOT_IN_SYSFS: &[&str] = &["RSDP", "XSDT", "RSDT"];

/// The sysfs file names for the expected tables, in order: `SIG` for a signature that occurs once, `SIG1`,
/// `SIG2`, ... when it occurs more than once (as drivers/acpi/sysfs.c names them).
pub fn sysfs_names(expected: &[AcpiTableInfo]) -> Vec<(String, &AcpiTableInfo)> {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut out = Vec::new();
    for t in expected
        .iter()
        .filter(|t| !NOT_IN_SYSFS.contains(&t.signature.as_str()))
    {
        let total = expected
            .iter()
            .filter(|o| o.signature == t.signature)
            .count();
        let idx = match seen.iter_mut().find(|(s, _)| *s == t.signature) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((&t.signature, 1));
                1
            }
        };
        let name = if total > 1 {
            format!("{}{idx}", t.signature)
        } else {
            t.signature.clone()
        };
        out.push((name, t));
    }
    out
}

/// Compares each expected table with the bytes `read(name)` returns; returns one message per problem.
pub fn compare<F>(expected: &[AcpiTableInfo], mut read: F) -> Vec<String>
where
    F: FnMut(&str) -> Result<Vec<u8>, String>,
{
    let mut errs = Vec::new();
    for (name, t) in sysfs_names(expected) {
        match read(&name) {
            Err(e) => errs.push(format!("table {name}: {e}")),
            Ok(bytes) => {
                if bytes.len() as u64 != u64::from(t.length) {
                    errs.push(format!(
                        "table {name}: length {} expected {}",
                        bytes.len(),
                        t.length
                    ));
                }
                let h = fnv1a64(&bytes);
                if h != t.fnv1a64 {
                    errs.push(format!(
                        "table {name}: fnv1a64 {h:#018x} expected {:#018x}",
                        t.fnv1a64
                    ));
                }
            }
        }
    }
    errs
}

pub fn run(ctx: &Context) -> Report {
    let expect = match &ctx.expect {
        Ok(e) => e,
        Err(e) => return Report::failure(format!("no expectations: {e}")),
    };
    let dir = ctx.path("sys/firmware/acpi/tables");
    let mut r = Report::new();
    if expect.acpi_tables.is_empty() {
        r.fail("the machine description lists no ACPI tables");
        return r;
    }
    let errs = compare(&expect.acpi_tables, |name| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    });
    if !errs.is_empty() {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            r.diag(format!("guest tables: {}", names.join(" ")));
        }
    }
    r.fail_all(errs);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::fake_root::FakeRoot;
    use firmware_tables::description::MachineDescription;

    fn info(sig: &str, bytes: &[u8]) -> AcpiTableInfo {
        AcpiTableInfo {
            signature: sig.into(),
            length: bytes.len() as u32,
            fnv1a64: fnv1a64(bytes),
        }
    }

    #[test]
    fn names_skip_root_tables_and_number_duplicates() {
        let tables = vec![
            info("RSDP", b"r"),
            info("XSDT", b"x"),
            info("FACP", b"f"),
            info("SSDT", b"1"),
            info("SSDT", b"2"),
        ];
        let names: Vec<String> = sysfs_names(&tables).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["FACP", "SSDT1", "SSDT2"]);
    }

    #[test]
    fn compare_detects_length_and_hash_mismatch() {
        let tables = vec![
            info("APIC", b"abcd"),
            info("MCFG", b"mcfg"),
            info("DSDT", b"d"),
        ];
        let errs = compare(&tables, |name| match name {
            "APIC" => Ok(b"abcd".to_vec()),
            "MCFG" => Ok(b"mcfX".to_vec()),
            _ => Err("cannot read".into()),
        });
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("table MCFG: fnv1a64"));
        assert!(errs[1].starts_with("table DSDT: cannot read"));

        let errs = compare(&[info("APIC", b"abcd")], |_| Ok(b"abcde".to_vec()));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("length 5 expected 4"));
    }

    #[test]
    fn run_on_fake_sysfs() {
        let root = FakeRoot::new("acpi");
        root.write("sys/firmware/acpi/tables/APIC", b"madt bytes");
        root.write("sys/firmware/acpi/tables/DSDT", b"dsdt bytes");
        let desc = MachineDescription {
            cpus: 1,
            memory_mib: 64,
            e820: vec![],
            acpi_tables: vec![
                info("RSDP", b"not in sysfs"),
                info("APIC", b"madt bytes"),
                info("DSDT", b"dsdt bytes"),
            ],
            pci: vec![],
            iommu: None,
        };
        let mut ctx = Context {
            root: root.path().to_path_buf(),
            expect: Ok(desc.clone()),
            scenario: "boot".into(),
        };
        assert!(run(&ctx).passed(), "{:?}", run(&ctx));
        let mut bad = desc;
        bad.acpi_tables.push(info("MCFG", b"x"));
        ctx.expect = Ok(bad);
        let r = run(&ctx);
        assert!(!r.passed());
        assert!(r.diagnostics.iter().any(|d| d.starts_with("table MCFG")));
        assert!(r.diagnostics.iter().any(|d| d == "guest tables: APIC DSDT"));
    }
}
