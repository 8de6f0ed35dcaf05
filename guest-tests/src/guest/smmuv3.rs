//! SMMUv3 tests: the guest kernel has no SMMUv3 driver, so our bring-up driver (`crate::bringup::smmuv3`)
//! drives the VMM's SMMU over /dev/mem and runs the shared suite's cases, one guest test per case.

use iommu::smmuv3::Smmuv3Config;

use super::bringup_suite::{self, published_iommu, suite_tests};
use super::context::Context;
use super::report::Report;
use crate::bringup::devmem::{DevMem, SMMU_BASE};
use crate::bringup::smmuv3::driver::Driver;
use crate::bringup::smmuv3::suite::CASES;

/// The guest test name of suite case `case`.
pub fn test_name(case: &str) -> String {
    format!("smmuv3-{case}")
}

/// What expect.json says about the SMMU: its configuration and published ID registers.
pub(crate) fn expectations(ctx: &Context) -> Result<(Smmuv3Config, Vec<u64>), String> {
    let iommu = published_iommu(ctx, "smmuv3", SMMU_BASE, "SMMU")?;
    let cfg = iommu
        .options
        .parse::<Smmuv3Config>()
        .map_err(|e| format!("published options {:?}: {e}", iommu.options))?;
    Ok((cfg, iommu.id_registers.clone()))
}

/// The driver over /dev/mem with the published configuration and ID registers.
fn open(ctx: &Context) -> Result<Driver, String> {
    let (cfg, idr) = expectations(ctx)?;
    let published = (!idr.is_empty()).then_some(idr);
    let backend = DevMem::open(&ctx.root, Some(cfg), published)?;
    Driver::probe(Box::new(backend)).map_err(|e| format!("probe: {e}"))
}

/// Runs suite case `case` on the SMMU through /dev/mem.
pub fn run_case(ctx: &Context, case: &str) -> Report {
    bringup_suite::run_case(CASES, "SMMUv3", case, || open(ctx))
}

suite_tests! {
    run_case;
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
    use crate::guest::bringup_suite::{test_context, test_iommu};

    #[test]
    fn expectations_come_from_the_published_iommu() {
        let ctx = |options| test_context("smmuv3", Some(test_iommu("smmuv3", options, SMMU_BASE)));
        let (cfg, _) = expectations(&ctx("smmuv3,caching=off")).unwrap();
        assert!(!cfg.caching);
        assert!(expectations(&ctx("smmuv3,bogus=1")).is_err());
        let e = expectations(&test_context("smmuv3", None)).unwrap_err();
        assert!(e.contains("no IOMMU"), "{e}");
        let vtd = test_context("smmuv3", Some(test_iommu("vtd", "vtd", SMMU_BASE)));
        assert!(expectations(&vtd).unwrap_err().contains("not smmuv3"));
        let moved = test_context("smmuv3", Some(test_iommu("smmuv3", "smmuv3", 0x1000)));
        assert!(expectations(&moved).is_err());
    }
}
