//! SMMUv3 tests: the guest kernel has no SMMUv3 driver, so our bring-up driver (`crate::bringup::smmuv3`)
//! drives the VMM's SMMU over /dev/mem and runs the shared suite's cases, one guest test per case.

use iommu::smmuv3::Smmuv3Config;

use super::context::Context;
use super::report::Report;
use crate::bringup::devmem::DevMem;
use crate::bringup::smmuv3::driver::Driver;
use crate::bringup::smmuv3::suite::{self, Outcome};

/// The guest test name of suite case `case`.
pub fn test_name(case: &str) -> String {
    format!("smmuv3-{case}")
}

/// What expect.json says about the SMMU: its configuration and published ID registers.
pub(crate) fn expectations(ctx: &Context) -> Result<(Smmuv3Config, Vec<u64>), String> {
    let expect = ctx.expect.as_ref().map_err(Clone::clone)?;
    let iommu = expect
        .iommu
        .as_ref()
        .ok_or("expect.json describes no IOMMU; the scenario must run with --iommu smmuv3")?;
    if iommu.model != "smmuv3" {
        return Err(format!(
            "the machine's IOMMU is {:?}, not smmuv3",
            iommu.model
        ));
    }
    if iommu.base != crate::bringup::devmem::SMMU_BASE {
        return Err(format!(
            "the SMMU is published at {:#x}, the driver maps {:#x}",
            iommu.base,
            crate::bringup::devmem::SMMU_BASE
        ));
    }
    let cfg = iommu
        .options
        .parse::<Smmuv3Config>()
        .map_err(|e| format!("published options {:?}: {e}", iommu.options))?;
    Ok((cfg, iommu.id_registers.clone()))
}

/// Runs suite case `case` on the SMMU through /dev/mem.
pub fn run_case(ctx: &Context, case: &str) -> Report {
    let Some(c) = suite::find(case) else {
        return Report::failure(format!("no SMMUv3 suite case {case:?}"));
    };
    let (cfg, idr) = match expectations(ctx) {
        Ok(v) => v,
        Err(e) => return Report::failure(e),
    };
    let published = (!idr.is_empty()).then_some(idr);
    let backend = match DevMem::open(&ctx.root, Some(cfg), published) {
        Ok(b) => b,
        Err(e) => return Report::failure(e),
    };
    let mut d = match Driver::probe(Box::new(backend)) {
        Ok(d) => d,
        Err(e) => return Report::failure(format!("probe: {e}")),
    };
    let r = suite::run_case(&mut d, c);
    let mut report = Report::new();
    for n in r.notes {
        report.diag(n);
    }
    match r.result {
        Ok(Outcome::Pass) => {}
        Ok(Outcome::Skip(why)) => report.skip(why),
        Err(e) => report.fail(e),
    }
    report
}

/// One `fn(&Context) -> Report` per suite case, for the registry.
macro_rules! cases {
    ($($f:ident => $name:literal),* $(,)?) => {
        $(
            #[doc = concat!("Suite case `", $name, "`.")]
            pub fn $f(ctx: &Context) -> Report {
                run_case(ctx, $name)
            }
        )*
        /// The suite cases the registry has a test for, in suite order.
        pub const REGISTERED: &[&str] = &[$($name),*];
    };
}

cases! {
    bringup => "bringup",
    gbpa => "gbpa",
    strtab_linear => "strtab-linear",
    strtab_2lvl => "strtab-2lvl",
    bypass => "bypass",
    abort => "abort",
    bad_ste => "bad-ste",
    s1_4k => "s1-4k",
    s1_granule => "s1-granule",
    s1_ssid => "s1-ssid",
    s2 => "s2",
    nested => "nested",
    readonly => "readonly",
    unmapped => "unmapped",
    tlb_invalidate => "tlb-invalidate",
    cfg_invalidate => "cfg-invalidate",
    cmd_sync_msi => "cmd-sync-msi",
    cmd_illegal => "cmd-illegal",
    evtq_irq => "evtq-irq",
    evtq_overflow => "evtq-overflow",
    disable_reenable => "disable-reenable",
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_tables::description::{IommuInfo, MachineDescription};
    use std::path::PathBuf;

    fn ctx(iommu: Option<IommuInfo>) -> Context {
        Context {
            root: PathBuf::from("/nonexistent-guest-root"),
            expect: Ok(MachineDescription {
                cpus: 1,
                memory_mib: 512,
                e820: vec![],
                acpi_tables: vec![],
                pci: vec![],
                iommu,
            }),
            scenario: "smmuv3".into(),
        }
    }

    fn smmu(options: &str) -> IommuInfo {
        IommuInfo {
            model: "smmuv3".into(),
            options: options.into(),
            base: 0xfea0_0000,
            id_registers: vec![],
            permitted_ranges: vec![],
            test_device_bdf: "0000:00:03.0".into(),
        }
    }

    #[test]
    fn every_suite_case_has_a_guest_test() {
        let names: Vec<&str> = suite::CASES.iter().map(|c| c.name).collect();
        assert_eq!(REGISTERED, names.as_slice());
    }

    #[test]
    fn expectations_come_from_the_published_iommu() {
        let (cfg, _) = expectations(&ctx(Some(smmu("smmuv3,caching=off")))).unwrap();
        assert!(!cfg.caching);
        let e = expectations(&ctx(None)).unwrap_err();
        assert!(e.contains("no IOMMU"), "{e}");
        let mut vtd = smmu("vtd");
        vtd.model = "vtd".into();
        assert!(expectations(&ctx(Some(vtd)))
            .unwrap_err()
            .contains("not smmuv3"));
        let mut moved = smmu("smmuv3");
        moved.base = 0x1000;
        assert!(expectations(&ctx(Some(moved))).is_err());
    }

    #[test]
    fn without_dev_mem_a_case_fails_with_the_reason() {
        let r = run_case(&ctx(Some(smmu("smmuv3"))), "bypass");
        assert!(!r.passed());
        assert!(
            r.diagnostics[0].contains("0000:00:03.0"),
            "{:?}",
            r.diagnostics
        );
        assert!(!run_case(&ctx(Some(smmu("smmuv3"))), "nope").passed());
    }
}
