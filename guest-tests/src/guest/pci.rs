//! `pci-devices`: /sys/bus/pci/devices equals the PCI functions the VMM built: same BDFs, vendor, device and
//! class, and every BAR where the VMM put it (so Linux kept the VMM's assignment), with no extra BARs.

use firmware_tables::description::{BarInfo, BarKind, PciFunctionInfo};

use super::context::{read_text, Context};
use super::memmap::parse_u64;
use super::report::Report;

/// `IORESOURCE_IO`.
pub const IORESOURCE_IO: u64 = 0x100;
/// `IORESOURCE_MEM`.
pub const IORESOURCE_MEM: u64 = 0x200;
/// `IORESOURCE_PREFETCH`.
pub const IORESOURCE_PREFETCH: u64 = 0x2000;
/// `IORESOURCE_MEM_64`.
pub const IORESOURCE_MEM_64: u64 = 0x0010_0000;

/// Number of standard BARs.
const BAR_COUNT: usize = 6;

/// One line of sysfs `resource`: start, end (inclusive), flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Resource {
    pub start: u64,
    pub end: u64,
    pub flags: u64,
}

impl Resource {
    pub fn is_empty(&self) -> bool {
        self.start == 0 && self.end == 0 && self.flags == 0
    }
}

/// What sysfs shows for one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysfsFunction {
    pub bdf: String,
    pub vendor: u16,
    pub device: u16,
    pub class: u32,
    pub resources: Vec<Resource>,
}

/// Parses sysfs `resource` (one `0x... 0x... 0x...` line per resource).
pub fn parse_resources(text: &str) -> Result<Vec<Resource>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return Err(format!("bad resource line {l:?}"));
            }
            Ok(Resource {
                start: parse_u64(f[0])?,
                end: parse_u64(f[1])?,
                flags: parse_u64(f[2])?,
            })
        })
        .collect()
}

fn kind_name(kind: BarKind) -> &'static str {
    match kind {
        BarKind::Io => "io",
        BarKind::Mem32 => "mem32",
        BarKind::Mem64 => "mem64",
    }
}

/// Checks a resource's flags against the expected BAR kind.
fn check_flags(bar: &BarInfo, res: &Resource) -> Option<String> {
    let io = res.flags & IORESOURCE_IO != 0;
    let mem = res.flags & IORESOURCE_MEM != 0;
    let is64 = res.flags & IORESOURCE_MEM_64 != 0;
    let pref = res.flags & IORESOURCE_PREFETCH != 0;
    let kind_ok = match bar.kind {
        BarKind::Io => io,
        BarKind::Mem32 => mem && !is64,
        BarKind::Mem64 => mem && is64,
    };
    if !kind_ok || (bar.kind != BarKind::Io && pref != bar.prefetchable) {
        Some(format!(
            "BAR{} flags {:#x} do not match {}{}",
            bar.index,
            res.flags,
            kind_name(bar.kind),
            if bar.prefetchable {
                " prefetchable"
            } else {
                ""
            }
        ))
    } else {
        None
    }
}

/// Compares one expected function with its sysfs view.
pub fn compare_function(exp: &PciFunctionInfo, act: &SysfsFunction) -> Vec<String> {
    let mut errs = Vec::new();
    let b = &exp.bdf;
    if act.vendor != exp.vendor_id {
        errs.push(format!(
            "{b}: vendor {:#06x} expected {:#06x}",
            act.vendor, exp.vendor_id
        ));
    }
    if act.device != exp.device_id {
        errs.push(format!(
            "{b}: device {:#06x} expected {:#06x}",
            act.device, exp.device_id
        ));
    }
    if act.class != exp.class {
        errs.push(format!(
            "{b}: class {:#08x} expected {:#08x}",
            act.class, exp.class
        ));
    }
    let mut covered = [false; BAR_COUNT];
    for bar in &exp.bars {
        let i = usize::from(bar.index);
        if i >= BAR_COUNT {
            errs.push(format!("{b}: expected BAR index {i} is out of range"));
            continue;
        }
        covered[i] = true;
        if bar.kind == BarKind::Mem64 && i + 1 < BAR_COUNT {
            covered[i + 1] = true;
        }
        let res = act.resources.get(i).copied().unwrap_or_default();
        if res.start != bar.start || res.end != bar.end {
            errs.push(format!(
                "{b}: BAR{i} is [{:#x}-{:#x}], expected [{:#x}-{:#x}]",
                res.start, res.end, bar.start, bar.end
            ));
        }
        if let Some(e) = check_flags(bar, &res) {
            errs.push(format!("{b}: {e}"));
        }
    }
    for (i, res) in act.resources.iter().take(BAR_COUNT).enumerate() {
        if !covered[i] && !res.is_empty() {
            errs.push(format!(
                "{b}: unexpected BAR{i} [{:#x}-{:#x}] flags {:#x}",
                res.start, res.end, res.flags
            ));
        }
    }
    errs
}

/// Compares the expected functions with what sysfs lists.
pub fn compare(expected: &[PciFunctionInfo], actual: &[SysfsFunction]) -> Vec<String> {
    let mut errs = Vec::new();
    for e in expected {
        match actual.iter().find(|a| a.bdf == e.bdf) {
            None => errs.push(format!("missing PCI function {}", e.bdf)),
            Some(a) => errs.extend(compare_function(e, a)),
        }
    }
    for a in actual {
        if !expected.iter().any(|e| e.bdf == a.bdf) {
            errs.push(format!(
                "unexpected PCI function {} ({:04x}:{:04x} class {:06x})",
                a.bdf, a.vendor, a.device, a.class
            ));
        }
    }
    errs
}

/// Reads one function directory (`/sys/bus/pci/devices/BDF`).
pub fn read_function(dir: &std::path::Path, bdf: &str) -> Result<SysfsFunction, String> {
    let num = |f: &str| -> Result<u64, String> {
        let p = dir.join(f);
        parse_u64(&read_text(&p)?).map_err(|e| format!("{}: {e}", p.display()))
    };
    Ok(SysfsFunction {
        bdf: bdf.to_string(),
        vendor: num("vendor")? as u16,
        device: num("device")? as u16,
        class: num("class")? as u32,
        resources: parse_resources(&read_text(&dir.join("resource"))?)?,
    })
}

/// Reads every function below `devices` (normally /sys/bus/pci/devices), sorted by BDF.
pub fn read_all(devices: &std::path::Path) -> Result<Vec<SysfsFunction>, String> {
    let rd = std::fs::read_dir(devices)
        .map_err(|e| format!("cannot read {}: {e}", devices.display()))?;
    let mut out = Vec::new();
    for ent in rd.filter_map(|e| e.ok()) {
        let bdf = ent.file_name().to_string_lossy().into_owned();
        out.push(read_function(&ent.path(), &bdf)?);
    }
    out.sort_by(|a, b| a.bdf.cmp(&b.bdf));
    Ok(out)
}

pub fn run(ctx: &Context) -> Report {
    let expect = match &ctx.expect {
        Ok(e) => e,
        Err(e) => return Report::failure(format!("no expectations: {e}")),
    };
    let actual = match read_all(&ctx.path("sys/bus/pci/devices")) {
        Ok(a) => a,
        Err(e) => return Report::failure(e),
    };
    let mut r = Report::new();
    for a in &actual {
        r.diag(format!(
            "{} {:04x}:{:04x} class {:06x}",
            a.bdf, a.vendor, a.device, a.class
        ));
    }
    r.fail_all(compare(&expect.pci, &actual));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::fake_root::FakeRoot;
    use firmware_tables::description::MachineDescription;

    fn test_dev() -> PciFunctionInfo {
        PciFunctionInfo {
            bdf: "0000:00:01.0".into(),
            vendor_id: 0x1b36,
            device_id: 0x00ff,
            class: 0xff0000,
            bars: vec![BarInfo {
                index: 0,
                kind: BarKind::Mem64,
                prefetchable: false,
                start: 0x40_0000_0000,
                end: 0x40_0000_0fff,
            }],
            msi: true,
            msix_vectors: 4,
        }
    }

    fn host_bridge() -> PciFunctionInfo {
        PciFunctionInfo {
            bdf: "0000:00:00.0".into(),
            vendor_id: 0x8086,
            device_id: 0x0d57,
            class: 0x060000,
            bars: vec![],
            msi: false,
            msix_vectors: 0,
        }
    }

    const ZERO: &str = "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";

    fn resource_text(lines: &[&str]) -> String {
        let mut s: String = lines.concat();
        for _ in lines.len()..7 {
            s.push_str(ZERO);
        }
        s
    }

    fn sysfs_test_dev(bar0: &str) -> SysfsFunction {
        SysfsFunction {
            bdf: "0000:00:01.0".into(),
            vendor: 0x1b36,
            device: 0x00ff,
            class: 0xff0000,
            resources: parse_resources(&resource_text(&[bar0])).unwrap(),
        }
    }

    #[test]
    fn resources_parse() {
        let r = parse_resources(&resource_text(&[
            "0x0000004000000000 0x0000004000000fff 0x0000000000140204\n",
        ]))
        .unwrap();
        assert_eq!(r.len(), 7);
        assert_eq!(r[0].start, 0x40_0000_0000);
        assert_eq!(r[0].end, 0x40_0000_0fff);
        assert!(r[1].is_empty());
        assert!(parse_resources("0x1 0x2\n").is_err());
    }

    #[test]
    fn matching_function_passes() {
        let a = sysfs_test_dev("0x0000004000000000 0x0000004000000fff 0x0000000000140204\n");
        assert!(compare_function(&test_dev(), &a).is_empty());
    }

    #[test]
    fn moved_bar_and_wrong_kind_fail() {
        let a = sysfs_test_dev("0x00000000c0000000 0x00000000c0000fff 0x0000000000040200\n");
        let errs = compare_function(&test_dev(), &a);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("BAR0 is [0xc0000000-0xc0000fff]"));
        assert!(errs[1].contains("do not match mem64"));
    }

    #[test]
    fn unexpected_bar_fails() {
        let mut a = sysfs_test_dev("0x0000004000000000 0x0000004000000fff 0x0000000000140204\n");
        a.resources[2] = Resource {
            start: 0xc000_0000,
            end: 0xc000_00ff,
            flags: 0x200,
        };
        let errs = compare_function(&test_dev(), &a);
        assert_eq!(
            errs,
            vec!["0000:00:01.0: unexpected BAR2 [0xc0000000-0xc00000ff] flags 0x200"]
        );
    }

    #[test]
    fn id_mismatch_and_missing_and_extra_functions() {
        let mut a = sysfs_test_dev("0x0000004000000000 0x0000004000000fff 0x0000000000140204\n");
        a.device = 0x1234;
        let extra = SysfsFunction {
            bdf: "0000:00:02.0".into(),
            vendor: 1,
            device: 2,
            class: 3,
            resources: vec![],
        };
        let errs = compare(&[host_bridge(), test_dev()], &[a, extra]);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0], "missing PCI function 0000:00:00.0");
        assert!(errs[1].contains("device 0x1234 expected 0x00ff"));
        assert!(errs[2].starts_with("unexpected PCI function 0000:00:02.0"));
    }

    #[test]
    fn run_on_fake_sysfs() {
        let root = FakeRoot::new("pci");
        let d = "sys/bus/pci/devices/0000:00:00.0";
        root.write(&format!("{d}/vendor"), "0x8086\n");
        root.write(&format!("{d}/device"), "0x0d57\n");
        root.write(&format!("{d}/class"), "0x060000\n");
        root.write(&format!("{d}/resource"), resource_text(&[]));
        let ctx = Context {
            root: root.path().to_path_buf(),
            expect: Ok(MachineDescription {
                cpus: 1,
                memory_mib: 64,
                e820: vec![],
                acpi_tables: vec![],
                pci: vec![host_bridge()],
                iommu: None,
            }),
            scenario: "boot".into(),
        };
        let r = run(&ctx);
        assert!(r.passed(), "{r:?}");
        let ctx = Context {
            expect: Ok(MachineDescription {
                cpus: 1,
                memory_mib: 64,
                e820: vec![],
                acpi_tables: vec![],
                pci: vec![host_bridge(), test_dev()],
                iommu: None,
            }),
            ..ctx
        };
        let r = run(&ctx);
        assert!(!r.passed());
        assert!(r
            .diagnostics
            .contains(&"missing PCI function 0000:00:01.0".to_string()));
    }
}
