//! `dmar-up`: the guest's intel-iommu driver found the VMM's DMAR table and brought the unit up: the log has the
//! unit with the published base, CAP and ECAP, the DRHD (and every configured RMRR), the driver's final banner,
//! and no IOMMU line at warning level or worse; sysfs shows the unit with the same registers, and the test
//! device behind it.

use firmware_tables::description::IommuInfo;

use super::super::context::Context;
use super::super::kmsg::{self, KmsgRecord};
use super::super::report::Report;
use super::log::{self, UnitLine};
use super::session::{expected, full_bdf};

/// Parses a sysfs hex register file (`%llx`).
pub fn parse_sysfs_hex(text: &str) -> Result<u64, String> {
    let t = text.trim();
    u64::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16)
        .map_err(|_| format!("not a hex number: {t:?}"))
}

/// The log checks; returns the unit line that matched the expected base (for the sysfs name).
pub fn check_log(info: &IommuInfo, records: &[KmsgRecord], r: &mut Report) -> Option<UnitLine> {
    let msgs: Vec<&str> = records.iter().map(|x| x.message.as_str()).collect();
    if !msgs.contains(&log::VTD_UP) {
        r.fail(format!(
            "no {:?} line: intel_iommu_init did not finish",
            log::VTD_UP
        ));
    }
    for e in log::iommu_errors(records) {
        r.fail(format!("IOMMU error: {}", kmsg::describe(e)));
    }
    let drhd = log::drhd_prefix(info.base);
    if !msgs.iter().any(|m| m.starts_with(&drhd)) {
        r.fail(format!("no DMAR table line {drhd:?}..."));
    }
    match log::rmrr_options(&info.options) {
        Ok(rmrrs) => {
            for rm in rmrrs {
                let want = log::rmrr_line(rm.base, rm.end);
                if msgs.contains(&want.as_str()) {
                    r.diag(format!("RMRR for {} parsed: {want:?}", rm.bdf));
                } else {
                    r.fail(format!(
                        "configured RMRR for {} not in the log: {want:?}",
                        rm.bdf
                    ));
                }
            }
        }
        Err(e) => r.fail(format!("IOMMU options {:?}: {e}", info.options)),
    }
    let units: Vec<UnitLine> = msgs.iter().filter_map(|m| log::parse_unit(m)).collect();
    let Some(unit) = units.iter().find(|u| u.base == info.base).cloned() else {
        r.fail(format!(
            "no \"DMAR: dmarN: reg_base_addr {:x} ...\" line (units logged: {units:?})",
            info.base
        ));
        return None;
    };
    r.diag(format!(
        "{}: base {:#x} cap {:#x} ecap {:#x}",
        unit.name, unit.base, unit.cap, unit.ecap
    ));
    check_id_registers(info, "kernel log", unit.cap, unit.ecap, r);
    Some(unit)
}

/// Compares CAP and ECAP from `source` with the published id registers.
pub fn check_id_registers(info: &IommuInfo, source: &str, cap: u64, ecap: u64, r: &mut Report) {
    let (Some(&want_cap), Some(&want_ecap)) = (info.id_registers.first(), info.id_registers.get(1))
    else {
        r.fail(format!(
            "expected id_registers [CAP, ECAP], got {:x?}",
            info.id_registers
        ));
        return;
    };
    if cap != want_cap {
        r.fail(format!("{source}: CAP {cap:#x}, published {want_cap:#x}"));
    }
    if ecap != want_ecap {
        r.fail(format!(
            "{source}: ECAP {ecap:#x}, published {want_ecap:#x}"
        ));
    }
}

fn check_sysfs(ctx: &Context, info: &IommuInfo, name: &str, r: &mut Report) {
    let dir = format!("sys/class/iommu/{name}/intel-iommu");
    let read_hex = |f: &str| {
        ctx.read(&format!("{dir}/{f}"))
            .and_then(|t| parse_sysfs_hex(&t))
    };
    match (read_hex("cap"), read_hex("ecap")) {
        (Ok(cap), Ok(ecap)) => check_id_registers(info, &format!("/{dir}"), cap, ecap, r),
        (Err(e), _) | (_, Err(e)) => r.fail(e),
    }
    match read_hex("address") {
        Ok(a) if a == info.base => {}
        Ok(a) => r.fail(format!(
            "/{dir}/address {a:#x}, published base {:#x}",
            info.base
        )),
        Err(e) => r.fail(e),
    }
    let bdf = full_bdf(&info.test_device_bdf);
    let link = ctx.path(&format!("sys/bus/pci/devices/{bdf}/iommu"));
    match std::fs::read_link(&link) {
        Ok(t) if t.file_name().is_some_and(|n| n == name) => {}
        Ok(t) => r.fail(format!(
            "{} -> {}, expected {name}",
            link.display(),
            t.display()
        )),
        Err(e) => r.fail(format!(
            "test device {bdf} is not behind an IOMMU: {}: {e}",
            link.display()
        )),
    }
    if let Ok(t) = ctx.read(&format!("sys/bus/pci/devices/{bdf}/iommu_group/type")) {
        r.diag(format!("{bdf} default domain type {}", t.trim()));
    }
}

pub fn run(ctx: &Context) -> Report {
    let info = match expected(ctx) {
        Ok(i) => i,
        Err(e) => return Report::failure(e),
    };
    let records = match kmsg::read_all(&ctx.path("dev/kmsg")) {
        Ok(v) => v,
        Err(e) => return Report::failure(e),
    };
    let mut r = Report::new();
    let name = check_log(info, &records, &mut r).map_or_else(|| "dmar0".to_string(), |u| u.name);
    check_sysfs(ctx, info, &name, &mut r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::fake_root::FakeRoot;
    use crate::guest::kmsg::parse_record;
    use firmware_tables::description::{IovaRange, MachineDescription};

    fn info() -> IommuInfo {
        IommuInfo {
            model: "vtd".into(),
            options: "vtd,aw=48,sm=on,rmrr=0x7f00000-0x7ffffff@00:05.0".into(),
            base: 0xfed9_0000,
            id_registers: vec![0xd2_008c_4066_0462, 0xf0_50da],
            permitted_ranges: vec![IovaRange {
                first: 0,
                last: 0xfedf_ffff,
            }],
            permitted_ranges_first_stage: vec![],
            test_device_bdf: "0000:00:03.0".into(),
        }
    }

    fn records(lines: &[&str]) -> Vec<KmsgRecord> {
        lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| parse_record(&format!("6,{i},{i},-;{l}")))
            .collect()
    }

    const GOOD: &[&str] = &[
        "DMAR: Host address width 48",
        "DMAR: DRHD base: 0x000000fed90000 flags: 0x1",
        "DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c40660462 ecap f050da",
        "DMAR: RMRR base: 0x00000007f00000 end: 0x00000007ffffff",
        "DMAR: Intel(R) Virtualization Technology for Directed I/O",
    ];

    #[test]
    fn good_log_passes() {
        let mut r = Report::new();
        let u = check_log(&info(), &records(GOOD), &mut r).unwrap();
        assert_eq!(u.name, "dmar0");
        assert!(r.passed(), "{:?}", r.diagnostics);
    }

    #[test]
    fn wrong_ecap_missing_rmrr_and_errors_fail() {
        let mut lines: Vec<&str> = GOOD
            .iter()
            .copied()
            .filter(|l| !l.contains("RMRR"))
            .collect();
        lines[2] = "DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c40660462 ecap f050de";
        let mut recs = records(&lines);
        recs.extend(parse_record(
            "3,99,99,-;DMAR: DRHD: handling fault status reg 2",
        ));
        let mut r = Report::new();
        check_log(&info(), &recs, &mut r);
        let d = r.diagnostics.join("\n");
        assert!(!r.passed());
        assert!(d.contains("ECAP 0xf050de, published 0xf050da"), "{d}");
        assert!(
            d.contains("configured RMRR for 00:05.0 not in the log"),
            "{d}"
        );
        assert!(
            d.contains("IOMMU error: [    0.000099] <err> DMAR: DRHD"),
            "{d}"
        );
        assert!(!d.contains("log: CAP 0x"), "{d}");
    }

    #[test]
    fn sysfs_registers_and_device_link() {
        let root = FakeRoot::new("dmar_up");
        root.write("sys/class/iommu/dmar0/intel-iommu/cap", "d2008c40660462\n");
        root.write("sys/class/iommu/dmar0/intel-iommu/ecap", "f050da\n");
        root.write("sys/class/iommu/dmar0/intel-iommu/address", "fed90000\n");
        root.mkdir("sys/bus/pci/devices/0000:00:03.0");
        std::os::unix::fs::symlink(
            "../../../class/iommu/dmar0",
            root.path().join("sys/bus/pci/devices/0000:00:03.0/iommu"),
        )
        .unwrap();
        let ctx = Context {
            root: root.path().to_path_buf(),
            expect: Ok(MachineDescription {
                cpus: 1,
                memory_mib: 64,
                e820: vec![],
                acpi_tables: vec![],
                pci: vec![],
                iommu: Some(info()),
            }),
            scenario: "vtd".into(),
        };
        let mut r = Report::new();
        check_sysfs(&ctx, &info(), "dmar0", &mut r);
        assert!(r.passed(), "{:?}", r.diagnostics);
        root.write("sys/class/iommu/dmar0/intel-iommu/cap", "d2008c40660463\n");
        let mut r = Report::new();
        check_sysfs(&ctx, &info(), "dmar0", &mut r);
        assert!(
            r.diagnostics[0].contains("CAP 0xd2008c40660463"),
            "{:?}",
            r.diagnostics
        );
        // The whole test: no kmsg in the fake root -> clean failure.
        assert!(!run(&ctx).passed());
    }

    #[test]
    fn sysfs_hex() {
        assert_eq!(parse_sysfs_hex("f050da\n").unwrap(), 0xf050da);
        assert!(parse_sysfs_hex("zz").is_err());
    }
}
