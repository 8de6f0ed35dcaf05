//! The guest side of a bring-up suite (`crate::bringup::cases`): the guest kernel has no driver for the unit,
//! so our bring-up driver runs the suite's cases over /dev/mem, one guest test per case. This module checks
//! what expect.json publishes about the unit, turns a case into a [`Report`], and ([`suite_tests!`]) defines
//! the registry's `fn(&Context) -> Report` per case.

use firmware_tables::description::IommuInfo;

use super::context::Context;
use super::report::Report;
use crate::bringup::cases::{self, Case, CaseDriver, CaseReport, Outcome};

/// The IOMMU expect.json describes, which must be `model` published at `base` (where the driver maps the
/// unit; `unit` names it in the error, e.g. "SMMU").
pub fn published_iommu<'a>(
    ctx: &'a Context,
    model: &str,
    base: u64,
    unit: &str,
) -> Result<&'a IommuInfo, String> {
    let expect = ctx.expect.as_ref().map_err(Clone::clone)?;
    let iommu = expect.iommu.as_ref().ok_or_else(|| {
        format!("expect.json describes no IOMMU; the scenario must run with --iommu {model}")
    })?;
    if iommu.model != model {
        return Err(format!(
            "the machine's IOMMU is {:?}, not {model}",
            iommu.model
        ));
    }
    if iommu.base != base {
        return Err(format!(
            "the {unit} is published at {:#x}, the driver maps {base:#x}",
            iommu.base
        ));
    }
    Ok(iommu)
}

/// A case's report as a guest test's: its notes as diagnostics, then skip or failure.
pub fn report(r: CaseReport) -> Report {
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

/// Runs case `case` of `cases` (suite `suite`, e.g. "SMMUv3") on the driver `open` gives.
pub fn run_case<D: CaseDriver>(
    cases: &'static [Case<D>],
    suite: &str,
    case: &str,
    open: impl FnOnce() -> Result<D, String>,
) -> Report {
    let Some(c) = cases::find(cases, case) else {
        return Report::failure(format!("no {suite} suite case {case:?}"));
    };
    match open() {
        Ok(mut d) => report(cases::run_case(&mut d, c)),
        Err(e) => Report::failure(e),
    }
}

/// One `fn(&Context) -> Report` per suite case, calling `$run(ctx, name)`, for the registry; and
/// `REGISTERED`, their case names in order.
macro_rules! suite_tests {
    ($run:ident; $($f:ident => $name:literal),* $(,)?) => {
        $(
            #[doc = concat!("Suite case `", $name, "`.")]
            pub fn $f(ctx: &Context) -> Report {
                $run(ctx, $name)
            }
        )*
        /// The suite cases the registry has a test for, in suite order.
        pub const REGISTERED: &[&str] = &[$($name),*];
    };
}
pub(crate) use suite_tests;

/// A context over a root with no /dev/mem, whose expect.json describes `iommu`.
#[cfg(test)]
pub(crate) fn test_context(scenario: &str, iommu: Option<IommuInfo>) -> Context {
    use firmware_tables::description::MachineDescription;
    Context {
        root: std::path::PathBuf::from("/nonexistent-guest-root"),
        expect: Ok(MachineDescription {
            cpus: 1,
            memory_mib: 512,
            e820: vec![],
            acpi_tables: vec![],
            pci: vec![],
            iommu,
        }),
        scenario: scenario.into(),
    }
}

/// An IOMMU `model` with `options` at `base`, the test device at 00:03.0.
#[cfg(test)]
pub(crate) fn test_iommu(model: &str, options: &str, base: u64) -> IommuInfo {
    IommuInfo {
        model: model.into(),
        options: options.into(),
        base,
        id_registers: vec![],
        permitted_ranges: vec![],
        permitted_ranges_first_stage: vec![],
        test_device_bdf: "0000:00:03.0".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_iommu_must_be_the_one_mapped() {
        let ctx = test_context("x", Some(test_iommu("tce", "tce", 0x1000)));
        assert_eq!(
            published_iommu(&ctx, "tce", 0x1000, "TCE unit").map(|i| i.base),
            Ok(0x1000)
        );
        assert_eq!(
            published_iommu(&ctx, "tce", 0x2000, "TCE unit"),
            Err("the TCE unit is published at 0x1000, the driver maps 0x2000".into())
        );
        assert_eq!(
            published_iommu(&ctx, "smmuv3", 0x1000, "SMMU"),
            Err("the machine's IOMMU is \"tce\", not smmuv3".into())
        );
        let none = test_context("x", None);
        assert!(published_iommu(&none, "tce", 0x1000, "TCE unit")
            .unwrap_err()
            .ends_with("--iommu tce"));
    }

    #[test]
    fn a_case_report_becomes_a_guest_report() {
        let r = report(CaseReport {
            name: "a",
            result: Ok(Outcome::Skip("why".into())),
            notes: vec!["n".into()],
        });
        assert!(r.passed());
        assert_eq!(
            (r.skip.as_deref(), r.diagnostics.as_slice()),
            (Some("why"), &["n".to_string()][..])
        );
        let r = report(CaseReport {
            name: "a",
            result: Err("bad".into()),
            notes: vec!["n".into()],
        });
        assert!(!r.passed());
        assert_eq!(r.diagnostics, ["n", "bad"]);
        let r = report(CaseReport {
            name: "a",
            result: Ok(Outcome::Pass),
            notes: vec![],
        });
        assert!(r.passed() && r.skip.is_none() && r.diagnostics.is_empty());
    }

    /// Both suites: a guest test per case, in suite order; without /dev/mem a case fails saying why (the
    /// test device it looked for), and an unknown case fails.
    #[test]
    fn every_suite_case_is_a_guest_test_that_needs_dev_mem() {
        use crate::bringup::devmem::{SMMU_BASE, TCE_BASE};
        use crate::bringup::{smmuv3, tce};
        type RunCase = fn(&Context, &str) -> Report;
        /// Registered test names, the suite's case names, its runner, a context, and one case to run.
        type Suite<'a> = (&'a [&'a str], Vec<&'a str>, RunCase, Context, &'a str);
        let suites: [Suite; 2] = [
            (
                super::super::smmuv3::REGISTERED,
                smmuv3::suite::CASES.iter().map(|c| c.name).collect(),
                super::super::smmuv3::run_case,
                test_context("smmuv3", Some(test_iommu("smmuv3", "smmuv3", SMMU_BASE))),
                "bypass",
            ),
            (
                super::super::tce::REGISTERED,
                tce::suite::CASES.iter().map(|c| c.name).collect(),
                super::super::tce::run_case,
                test_context("tce", Some(test_iommu("tce", "tce", TCE_BASE))),
                "one-level-4k",
            ),
        ];
        for (registered, names, run, ctx, case) in suites {
            assert_eq!(registered, names.as_slice());
            let r = run(&ctx, case);
            assert!(!r.passed());
            assert!(
                r.diagnostics[0].contains("0000:00:03.0"),
                "{:?}",
                r.diagnostics
            );
            assert!(!run(&ctx, "nope").passed());
        }
    }
}
