//! POWER TCE tests: the x86 guest kernel has no TCE driver, so our bring-up driver (`crate::bringup::tce`)
//! drives the VMM's TCE unit through its hardware view over /dev/mem and runs the shared suite's cases, one
//! guest test per case. The test device's BAR0 is read through /dev/mem too, so a frozen PE shows as all ones.

use iommu::tce::TceConfig;

use super::context::Context;
use super::report::Report;
use crate::bringup::devmem::{DevMem, TCE_BASE, TCE_SIZE};
use crate::bringup::tce::driver::Driver;
use crate::bringup::tce::suite::{self, Outcome};

/// The guest test name of suite case `case`.
pub fn test_name(case: &str) -> String {
    format!("tce-{case}")
}

/// What expect.json says about the TCE unit: its option string (validated) and base.
fn expectations(ctx: &Context) -> Result<String, String> {
    let expect = ctx.expect.as_ref().map_err(Clone::clone)?;
    let iommu = expect
        .iommu
        .as_ref()
        .ok_or("expect.json describes no IOMMU; the scenario must run with --iommu tce")?;
    if iommu.model != "tce" {
        return Err(format!("the machine's IOMMU is {:?}, not tce", iommu.model));
    }
    if iommu.base != TCE_BASE {
        return Err(format!(
            "the TCE unit is published at {:#x}, the driver maps {TCE_BASE:#x}",
            iommu.base
        ));
    }
    iommu
        .options
        .parse::<TceConfig>()
        .map_err(|e| format!("published options {:?}: {e}", iommu.options))?;
    Ok(iommu.options.clone())
}

/// The driver over /dev/mem with the published options.
fn open(ctx: &Context) -> Result<Driver, String> {
    let options = expectations(ctx)?;
    let backend = DevMem::open_iommu(&ctx.root, TCE_BASE, TCE_SIZE)?.with_options(options);
    Driver::probe(Box::new(backend)).map_err(|e| format!("probe: {e}"))
}

/// Runs suite case `case` on the TCE unit through /dev/mem.
pub fn run_case(ctx: &Context, case: &str) -> Report {
    let Some(c) = suite::find(case) else {
        return Report::failure(format!("no TCE suite case {case:?}"));
    };
    let mut d = match open(ctx) {
        Ok(d) => d,
        Err(e) => return Report::failure(e),
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

/// `tce-boot-windows`: before any case reprograms the TVEs, they hold the seed's two windows and equal the
/// permitted ranges the VMM published (expect.json). Must run first in the scenario.
pub fn boot_windows(ctx: &Context) -> Report {
    let published = match ctx.expect.as_ref() {
        Ok(e) => e.iommu.as_ref().map(|i| {
            i.permitted_ranges
                .iter()
                .map(|r| (r.first, r.last))
                .collect()
        }),
        Err(e) => return Report::failure(e.clone()),
    };
    let mut d = match open(ctx) {
        Ok(d) => d,
        Err(e) => return Report::failure(e),
    };
    let mut report = Report::new();
    match suite::check_boot_windows(&mut d, published) {
        Ok(notes) => notes.into_iter().for_each(|n| report.diag(n)),
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
    id => "id",
    one_level_4k => "one-level-4k",
    multi_level => "multi-level",
    big_pages => "big-pages",
    readonly => "readonly",
    kill => "kill",
    ranges => "ranges",
    tve_validate => "tve-validate",
    eeh_outside => "eeh-outside",
    eeh_invalid => "eeh-invalid",
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
            scenario: "tce".into(),
        }
    }

    fn tce(options: &str) -> IommuInfo {
        IommuInfo {
            model: "tce".into(),
            options: options.into(),
            base: TCE_BASE,
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
        let opts = expectations(&ctx(Some(tce("tce,caching=off")))).unwrap();
        assert!(!opts.parse::<TceConfig>().unwrap().caching);
        let e = expectations(&ctx(None)).unwrap_err();
        assert!(e.contains("no IOMMU"), "{e}");
        let mut smmu = tce("smmuv3");
        smmu.model = "smmuv3".into();
        assert!(expectations(&ctx(Some(smmu)))
            .unwrap_err()
            .contains("not tce"));
        let mut moved = tce("tce");
        moved.base = 0xfea0_0000;
        assert!(expectations(&ctx(Some(moved))).is_err());
        assert!(expectations(&ctx(Some(tce("tce,bogus=1")))).is_err());
    }

    #[test]
    fn without_dev_mem_a_case_fails_with_the_reason() {
        let r = run_case(&ctx(Some(tce("tce"))), "one-level-4k");
        assert!(!r.passed());
        assert!(
            r.diagnostics[0].contains("0000:00:03.0"),
            "{:?}",
            r.diagnostics
        );
        assert!(!run_case(&ctx(Some(tce("tce"))), "nope").passed());
    }
}
