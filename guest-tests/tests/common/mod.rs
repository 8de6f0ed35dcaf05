//! What the in-process suite harnesses share: run every case of a suite on one driver and fail the test with
//! all failed cases together.

use guest_tests::bringup::cases::{run_all, Case, CaseDriver};

/// Runs `cases` on `d` (built from model options `options`); panics listing every failed case, else returns
/// the cases that passed and the ones that skipped (their reasons go to stderr).
pub fn run_suite<D: CaseDriver>(
    options: &str,
    mut d: D,
    cases: &[Case<D>],
) -> (Vec<&'static str>, Vec<&'static str>) {
    let run = run_all(&mut d, cases);
    for (name, why) in &run.skipped {
        eprintln!("{options}: {name} skipped: {why}");
    }
    assert!(
        run.failed.is_empty(),
        "{options}: {} of {} cases failed:\n{}",
        run.failed.len(),
        cases.len(),
        run.failed.join("\n")
    );
    let skipped = run.skipped_names();
    (run.passed, skipped)
}
