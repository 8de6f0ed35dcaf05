//! The SMMUv3 bring-up suite against the in-process model, once per model configuration. Each test runs
//! every case and reports all failures together.

mod common;

use guest_tests::bringup::host::HostBackend;
use guest_tests::bringup::smmuv3::driver::Driver;
use guest_tests::bringup::smmuv3::suite::CASES;
use iommu::smmuv3::Smmuv3Config;

/// Runs the suite on a model built from `options`; returns the cases that passed and skipped.
fn run_suite(options: &str) -> (Vec<&'static str>, Vec<&'static str>) {
    let cfg: Smmuv3Config = options.parse().unwrap_or_else(|e| panic!("{options}: {e}"));
    let backend = HostBackend::new(cfg).expect("host backend");
    let d = Driver::probe(Box::new(backend)).expect("probe");
    common::run_suite(options, d, CASES)
}

#[test]
fn default_model() {
    let (passed, skipped) = run_suite("smmuv3");
    assert!(
        skipped.is_empty(),
        "every case applies to the default model: {skipped:?}"
    );
    assert_eq!(passed.len(), CASES.len());
}

#[test]
fn caching_off() {
    let (_, skipped) = run_suite("smmuv3,caching=off");
    assert!(skipped.is_empty(), "{skipped:?}");
}

#[test]
fn linear_stream_table_only() {
    let (_, skipped) = run_suite("smmuv3,strtab=linear");
    assert_eq!(skipped, vec!["strtab-2lvl"]);
}

#[test]
fn stage1_only() {
    let (passed, _) = run_suite("smmuv3,stages=s1");
    assert!(passed.contains(&"s1-4k") && !passed.contains(&"s2") && !passed.contains(&"nested"));
}

#[test]
fn stage2_only() {
    let (passed, skipped) = run_suite("smmuv3,stages=s2");
    assert!(passed.contains(&"s2") && passed.contains(&"readonly"));
    assert!(skipped.contains(&"s1-4k") && skipped.contains(&"nested"));
}

#[test]
fn no_substreams_small_oas_no_httu_no_ril() {
    let (_, skipped) = run_suite("smmuv3,ssidbits=0,oas=40,httu=0,ril=off");
    assert!(skipped.contains(&"s1-ssid"), "{skipped:?}");
}

#[test]
fn small_sid_space_caching_off() {
    run_suite("smmuv3,sidbits=8,oas=32,caching=off");
}
