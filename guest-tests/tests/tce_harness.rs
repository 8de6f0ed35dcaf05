//! The TCE bring-up suite against the in-process model (the host backend emulates the VMM's "BAR reads all
//! ones while the PE is frozen"), once per model configuration. Each test runs every case and reports all
//! failures together.

mod common;

use guest_tests::bringup::backend::Backend;
use guest_tests::bringup::tce::driver::Driver;
use guest_tests::bringup::tce::host::TceHostBackend;
use guest_tests::bringup::tce::suite::{check_boot_windows, CASES, SEED_WINDOWS};
use iommu::tce::TceConfig;

/// Runs the suite on a model built from `options`; returns the cases that passed and skipped.
fn run_suite(options: &str) -> (Vec<&'static str>, Vec<&'static str>) {
    run_suite_with(options, true)
}

fn run_suite_with(
    options: &str,
    drop_frozen_writes: bool,
) -> (Vec<&'static str>, Vec<&'static str>) {
    let cfg: TceConfig = options.parse().unwrap_or_else(|e| panic!("{options}: {e}"));
    let mut backend = TceHostBackend::new(cfg).expect("host backend");
    backend.drop_frozen_writes = drop_frozen_writes;
    let d = Driver::probe(Box::new(backend)).expect("probe");
    common::run_suite(options, d, CASES)
}

#[test]
fn default_model_freezes() {
    let (passed, skipped) = run_suite("tce");
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(passed.len(), CASES.len());
}

#[test]
fn caching_off() {
    let (passed, skipped) = run_suite("tce,caching=off");
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(passed.len(), CASES.len());
}

#[test]
fn explicit_freeze_caching_on() {
    run_suite("tce,eeh=freeze,caching=on");
}

/// Report mode (QEMU's behaviour): the same bad DMAs fault on the device and are logged, nothing freezes,
/// BAR0 stays readable.
#[test]
fn report_mode_nothing_freezes() {
    let (passed, _) = run_suite("tce,eeh=report");
    assert_eq!(passed.len(), CASES.len());
    run_suite("tce,eeh=report,caching=off");
}

/// A machine that lets BAR writes reach a frozen device (only the reads are all ones): the unit itself
/// blocks the DMA they start.
#[test]
fn frozen_writes_reaching_the_device_are_blocked_by_the_unit() {
    let (passed, _) = run_suite_with("tce", false);
    assert_eq!(passed.len(), CASES.len());
}

/// Only 4K pages offered: the big-page case skips, TVE validation uses an unoffered size.
#[test]
fn only_4k_pages() {
    let (_, skipped) = run_suite("tce,pageshifts=12,page64=12");
    assert_eq!(skipped, ["big-pages"]);
}

/// The unit comes up with the seed's windows, and they are the permitted ranges: 0..=0x3fffffff and
/// 0x800000000000000..=0x8001fffffffffff.
#[test]
fn boot_windows_are_the_seed() {
    for options in ["tce", "tce,page64=16", "tce,eeh=report,caching=off"] {
        let backend = TceHostBackend::new(options.parse().unwrap()).unwrap();
        let model: Vec<(u64, u64)> = backend.iommu_permitted_ranges(0x18).unwrap();
        assert_eq!(
            model,
            [
                (0, 0x3fff_ffff),
                (0x0800_0000_0000_0000, 0x0800_1fff_ffff_ffff)
            ],
            "{options}"
        );
        let mut d = Driver::probe(Box::new(backend)).unwrap();
        let notes = check_boot_windows(&mut d, Some(model.clone()))
            .unwrap_or_else(|e| panic!("{options}: {e}"));
        assert!(notes.iter().any(|n| n.contains("published")), "{notes:?}");
        // A wrong publication is noticed.
        let wrong = vec![(0, 0x3fff_ffff)];
        assert!(check_boot_windows(&mut d, Some(wrong)).is_err());
    }
    assert_eq!(SEED_WINDOWS[1].2, 1 << 45);
}
