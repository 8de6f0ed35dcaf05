//! `memory-map`: /sys/firmware/memmap/*/{start,end,type} equals the e820 map the VMM published, exactly.
//!
//! Linux fills /sys/firmware/memmap from the firmware (boot_params) e820 table before it changes anything, so
//! it is the VMM's map after Linux's sanitizing (sorting, merging adjacent entries of one type).

use firmware_tables::description::E820Entry;

use super::context::{read_text, Context};
use super::report::Report;

/// One /sys/firmware/memmap/N directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemmapEntry {
    pub start: u64,
    /// Inclusive.
    pub end: u64,
    pub kind: String,
}

/// Parses a sysfs number such as `0x9fbff` (or decimal).
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    };
    r.map_err(|_| format!("bad number {t:?}"))
}

fn describe(start: u64, end: u64, kind: &str) -> String {
    format!("[{start:#x}-{end:#x}] {kind}")
}

/// Compares the two maps (each sorted by start here); returns one message per difference.
pub fn compare(expected: &[E820Entry], actual: &[MemmapEntry]) -> Vec<String> {
    let mut exp: Vec<(u64, u64, &str)> = expected
        .iter()
        .map(|e| (e.start, e.end, e.kind.linux_name()))
        .collect();
    exp.sort();
    let mut act: Vec<(u64, u64, &str)> = actual
        .iter()
        .map(|e| (e.start, e.end, e.kind.as_str()))
        .collect();
    act.sort();

    let mut errs = Vec::new();
    for e in &exp {
        if !act.contains(e) {
            errs.push(format!("missing {}", describe(e.0, e.1, e.2)));
        }
    }
    for a in &act {
        if !exp.contains(a) {
            errs.push(format!("unexpected {}", describe(a.0, a.1, a.2)));
        }
    }
    errs
}

/// Reads every entry below `dir` (normally /sys/firmware/memmap).
pub fn read_memmap(dir: &std::path::Path) -> Result<Vec<MemmapEntry>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let p = ent.path();
        let start = parse_u64(&read_text(&p.join("start"))?)
            .map_err(|e| format!("{}/start: {e}", p.display()))?;
        let end = parse_u64(&read_text(&p.join("end"))?)
            .map_err(|e| format!("{}/end: {e}", p.display()))?;
        let kind = read_text(&p.join("type"))?.trim().to_string();
        out.push(MemmapEntry { start, end, kind });
    }
    out.sort_by_key(|e| (e.start, e.end));
    Ok(out)
}

pub fn run(ctx: &Context) -> Report {
    let expect = match &ctx.expect {
        Ok(e) => e,
        Err(e) => return Report::failure(format!("no expectations: {e}")),
    };
    let actual = match read_memmap(&ctx.path("sys/firmware/memmap")) {
        Ok(a) => a,
        Err(e) => return Report::failure(e),
    };
    let mut r = Report::new();
    let errs = compare(&expect.e820, &actual);
    if !errs.is_empty() {
        for a in &actual {
            r.diag(format!("guest: {}", describe(a.start, a.end, &a.kind)));
        }
        r.fail_all(errs);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::fake_root::FakeRoot;
    use firmware_tables::description::{E820Kind, MachineDescription};

    fn e(start: u64, end: u64, kind: E820Kind) -> E820Entry {
        E820Entry { start, end, kind }
    }

    fn m(start: u64, end: u64, kind: &str) -> MemmapEntry {
        MemmapEntry {
            start,
            end,
            kind: kind.into(),
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0x9fbff\n"), Ok(0x9fbff));
        assert_eq!(parse_u64("42"), Ok(42));
        assert!(parse_u64("0xzz").is_err());
    }

    #[test]
    fn equal_maps_in_any_order() {
        let exp = vec![
            e(0, 0x9ffff, E820Kind::Ram),
            e(0xe0000, 0xfffff, E820Kind::Acpi),
        ];
        let act = vec![
            m(0xe0000, 0xfffff, "ACPI Tables"),
            m(0, 0x9ffff, "System RAM"),
        ];
        assert!(compare(&exp, &act).is_empty());
    }

    #[test]
    fn mismatches_are_reported() {
        let exp = vec![
            e(0, 0x9ffff, E820Kind::Ram),
            e(0xe0000, 0xfffff, E820Kind::Acpi),
        ];
        let act = vec![m(0, 0x9fbff, "System RAM"), m(0xe0000, 0xfffff, "Reserved")];
        let errs = compare(&exp, &act);
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs.contains(&"missing [0x0-0x9ffff] System RAM".to_string()));
        assert!(errs.contains(&"unexpected [0xe0000-0xfffff] Reserved".to_string()));
    }

    #[test]
    fn run_reads_fake_sysfs() {
        let root = FakeRoot::new("memmap");
        for (i, (s, en, t)) in [
            ("0x0", "0x9ffff", "System RAM"),
            ("0x100000", "0x1fffffff", "System RAM"),
        ]
        .iter()
        .enumerate()
        {
            root.write(&format!("sys/firmware/memmap/{i}/start"), format!("{s}\n"));
            root.write(&format!("sys/firmware/memmap/{i}/end"), format!("{en}\n"));
            root.write(&format!("sys/firmware/memmap/{i}/type"), format!("{t}\n"));
        }
        let mut desc = MachineDescription {
            cpus: 1,
            memory_mib: 512,
            e820: vec![
                e(0, 0x9ffff, E820Kind::Ram),
                e(0x100000, 0x1fff_ffff, E820Kind::Ram),
            ],
            acpi_tables: vec![],
            pci: vec![],
            iommu: None,
        };
        let mut ctx = Context {
            root: root.path().to_path_buf(),
            expect: Ok(desc.clone()),
            scenario: "boot".into(),
        };
        assert!(run(&ctx).passed());
        desc.e820.push(e(0xe0000, 0xfffff, E820Kind::Acpi));
        ctx.expect = Ok(desc);
        let r = run(&ctx);
        assert!(!r.passed());
        assert!(r
            .diagnostics
            .iter()
            .any(|d| d == "missing [0xe0000-0xfffff] ACPI Tables"));
    }

    #[test]
    fn missing_sysfs_fails() {
        let root = FakeRoot::new("memmap_missing");
        let ctx = Context {
            root: root.path().to_path_buf(),
            expect: Err("x".into()),
            scenario: "boot".into(),
        };
        assert!(!run(&ctx).passed());
    }
}
