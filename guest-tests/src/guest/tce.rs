//! POWER TCE tests: the x86 guest kernel has no TCE driver, so our bring-up driver (`crate::bringup::tce`)
//! drives the VMM's TCE unit through its hardware view over /dev/mem and runs the shared suite's cases, one
//! guest test per case. The test device's BAR0 is read through /dev/mem too, so a frozen PE shows as all ones.

use iommu::tce::TceConfig;

use super::bringup_suite::{self, published_iommu, suite_tests};
use super::context::Context;
use super::report::Report;
use crate::bringup::devmem::{DevMem, TCE_BASE, TCE_SIZE};
use crate::bringup::tce::driver::Driver;
use crate::bringup::tce::suite::{self, CASES};

/// The guest test name of suite case `case`.
pub fn test_name(case: &str) -> String {
    format!("tce-{case}")
}

/// What expect.json says about the TCE unit: its option string (validated) and base.
fn expectations(ctx: &Context) -> Result<String, String> {
    let iommu = published_iommu(ctx, "tce", TCE_BASE, "TCE unit")?;
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
    bringup_suite::run_case(CASES, "TCE", case, || open(ctx))
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

suite_tests! {
    run_case;
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
    use crate::guest::bringup_suite::{test_context, test_iommu};

    #[test]
    fn expectations_come_from_the_published_iommu() {
        let ctx = |options| test_context("tce", Some(test_iommu("tce", options, TCE_BASE)));
        let opts = expectations(&ctx("tce,caching=off")).unwrap();
        assert!(!opts.parse::<TceConfig>().unwrap().caching);
        assert!(expectations(&ctx("tce,bogus=1")).is_err());
        let e = expectations(&test_context("tce", None)).unwrap_err();
        assert!(e.contains("no IOMMU"), "{e}");
        let smmu = test_context("tce", Some(test_iommu("smmuv3", "smmuv3", TCE_BASE)));
        assert!(expectations(&smmu).unwrap_err().contains("not tce"));
        let moved = test_context("tce", Some(test_iommu("tce", "tce", 0xfea0_0000)));
        assert!(expectations(&moved).is_err());
    }
}
