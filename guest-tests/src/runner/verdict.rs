//! Turns what happened (KTAP results, VMM exit status, timeout) into test cases, a summary line and the
//! runner's exit decision. Every planned test gets a case: a missing result is a failure that says why.
//! One more case, `vmm-exit`, checks the run itself: no timeout, and the VMM's exit status equal to the
//! status the guest's results imply (0 when nothing failed, 1 otherwise).
//!
//! A result with subtests (a guest test that ran a suite of its own, e.g. one of Linux's VFIO selftests) becomes
//! one case per subtest instead, classname `iovmm.SCENARIO.TEST`, so the suite's own cases are what JUnit shows
//! and the summary counts (a skipped upstream case is a skipped case, a failed one a failure). The test's own
//! result is a case of its own only when it failed for a reason no subtest shows (the suite binary crashed, its
//! exit status or plan disagreed, its name was not the planned one).

use super::junit::{Case, CaseOutcome, Suite};
use super::ktap::{Ktap, Status, TestResult};
use super::monitor;

/// Name of the synthetic case that checks the run itself.
pub const RUN_CASE: &str = "vmm-exit";

/// The facts of one scenario run.
#[derive(Clone, Debug, Default)]
pub struct RunFacts {
    pub scenario: String,
    /// The tests the scenario planned, in order.
    pub planned: Vec<String>,
    pub ktap: Ktap,
    /// The VMM's exit status (`None` when unknown: killed, or the test host never reported it).
    pub vmm_status: Option<i32>,
    pub timed_out: bool,
    pub timeout_secs: u64,
    /// The run could not happen at all (missing image, VMM would not start, ...).
    pub setup_error: Option<String>,
    /// `iovmm: ...` lines from the VMM, shown with a failing run case.
    pub vmm_messages: Vec<String>,
    /// The scenario has a `monitor-check`: the run must contain the runner's answer (case [`monitor::CASE`]).
    pub monitor_expected: bool,
    /// The `iovmm-monitor-check:` answers found in the output (`Err(why)` for `not ok`).
    pub monitor_results: Vec<Result<String, String>>,
    /// The scenario ends the VM on purpose: (iovmm exit status, stderr line) it must report. Its last planned
    /// test (the trigger) never reports a result, and the run case checks this ending instead.
    pub expected_end: Option<(i32, String)>,
}

/// Cases and counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub cases: Vec<Case>,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.failed == 0
    }

    /// `N passed, N failed, N skipped`.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }

    pub fn suite(&self, name: &str, time_secs: f64, system_out: Option<String>) -> Suite {
        Suite {
            name: name.to_string(),
            time_secs,
            cases: self.cases.clone(),
            system_out,
        }
    }
}

/// What the VMM's exit status means, per the `iovmm run` contract.
pub fn describe_status(code: i32) -> &'static str {
    match code {
        0 => "guest reported success",
        1 => "guest reported failure, or VMM error",
        124 => "VMM timeout",
        125 => "guest reset, panic or shutdown without reporting a status",
        2 => "VMM command line rejected",
        _ => "unexpected status",
    }
}

/// Why a planned test has no result.
fn missing_reason(f: &RunFacts) -> String {
    if let Some(e) = &f.setup_error {
        format!("not run: {e}")
    } else if f.timed_out {
        format!("no result: timed out after {} s", f.timeout_secs)
    } else if !f.ktap.found {
        "no result: the guest printed no KTAP output".to_string()
    } else {
        match f.vmm_status {
            Some(c) => format!(
                "no result: the run ended (VMM status {c}: {}) before this test reported",
                describe_status(c)
            ),
            None => "no result: the run ended before this test reported".to_string(),
        }
    }
}

/// The run case of a scenario that ends the VM on purpose: iovmm's status and message must say how.
fn end_case(f: &RunFacts, status: i32, message: &str, classname: &str) -> Case {
    let mut problems = Vec::new();
    if let Some(e) = &f.setup_error {
        problems.push(e.clone());
    }
    if f.timed_out {
        problems.push(format!(
            "the runner timed out after {} s (iovmm did not end the run)",
            f.timeout_secs
        ));
    }
    match f.vmm_status {
        Some(c) if c == status => {}
        Some(c) => problems.push(format!(
            "VMM exit status {c} ({}), expected {status}",
            describe_status(c)
        )),
        None => problems.push("VMM exit status unknown".to_string()),
    }
    if !f.vmm_messages.iter().any(|m| m.contains(message)) {
        problems.push(format!(
            "iovmm did not say {message:?} (it said: {})",
            f.vmm_messages.join(" | ")
        ));
    }
    let outcome = if problems.is_empty() {
        CaseOutcome::Pass
    } else {
        CaseOutcome::Fail {
            message: problems.join("; "),
            details: f.vmm_messages.join("\n"),
        }
    };
    Case {
        name: RUN_CASE.to_string(),
        classname: classname.to_string(),
        outcome,
    }
}

fn run_case(f: &RunFacts, guest_failed: bool, classname: &str) -> Case {
    let mut problems = Vec::new();
    if let Some(e) = &f.setup_error {
        problems.push(e.clone());
    }
    if f.timed_out {
        problems.push(format!("timed out after {} s", f.timeout_secs));
    }
    if f.setup_error.is_none() && !f.ktap.found {
        problems.push("no KTAP output".to_string());
    }
    if f.ktap.found {
        if let Some(p) = f.ktap.plan {
            if p as usize != f.planned.len() {
                problems.push(format!(
                    "guest planned {p} tests, the scenario {}",
                    f.planned.len()
                ));
            }
        } else {
            problems.push("KTAP output has no plan line".to_string());
        }
        if f.ktap.restarted {
            problems.push("the guest started its tests twice (reboot?)".to_string());
        }
    }
    let expected = if guest_failed { 1 } else { 0 };
    match f.vmm_status {
        Some(c) if c == expected => {}
        Some(c) => problems.push(format!(
            "VMM exit status {c} ({}), expected {expected}",
            describe_status(c)
        )),
        None if f.setup_error.is_none() && !f.timed_out => {
            problems.push("VMM exit status unknown".to_string())
        }
        None => {}
    }
    let outcome = if problems.is_empty() {
        CaseOutcome::Pass
    } else {
        let mut details = problems.join("\n");
        for m in &f.vmm_messages {
            details.push('\n');
            details.push_str(m);
        }
        CaseOutcome::Fail {
            message: problems[0].clone(),
            details,
        }
    };
    Case {
        name: RUN_CASE.to_string(),
        classname: classname.to_string(),
        outcome,
    }
}

/// The case for the runner's walk of the guest's tables through the VMM monitor.
fn monitor_case(f: &RunFacts, classname: &str) -> Case {
    let failures: Vec<&String> = f
        .monitor_results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    let outcome = if f.monitor_results.is_empty() {
        let why = format!(
            "no \"{}\" line: the guest never printed its monitor-check request, or nobody answered it ({})",
            monitor::RESULT,
            missing_reason(f)
        );
        CaseOutcome::Fail {
            message: why.clone(),
            details: why,
        }
    } else if let Some(first) = failures.first() {
        CaseOutcome::Fail {
            message: (*first).clone(),
            details: failures
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    } else {
        CaseOutcome::Pass
    };
    Case {
        name: monitor::CASE.to_string(),
        classname: classname.to_string(),
        outcome,
    }
}

/// The case outcome a result's own status gives (a failure's message is its first diagnostic).
fn status_outcome(r: &TestResult) -> CaseOutcome {
    match &r.status {
        Status::Pass => CaseOutcome::Pass,
        Status::Skip(reason) => CaseOutcome::Skip {
            message: reason.clone(),
        },
        Status::Fail => CaseOutcome::Fail {
            message: r
                .diagnostics
                .first()
                .cloned()
                .unwrap_or_else(|| "failed (no diagnostics)".to_string()),
            details: r.diagnostics.join("\n"),
        },
    }
}

/// The cases of one result: itself when it has no subtests, else one case per subtest (recursively, classname
/// extended by the result's name), plus itself when it failed and no subtest failure explains it, when its nested
/// block is inconsistent (no plan, or a plan its results do not match), or when `forced` (a failure of the
/// result itself, e.g. not the planned test) says so.
fn result_cases(r: &TestResult, classname: &str, forced: Option<CaseOutcome>) -> Vec<Case> {
    let outcome = status_outcome(r);
    if r.subtests.is_empty() {
        return vec![Case {
            name: r.name.clone(),
            classname: classname.to_string(),
            outcome: forced.unwrap_or(outcome),
        }];
    }
    let inner = format!("{classname}.{}", r.name);
    let mut out: Vec<Case> = r
        .subtests
        .iter()
        .flat_map(|s| result_cases(s, &inner, None))
        .collect();
    let is_fail = |c: &CaseOutcome| matches!(c, CaseOutcome::Fail { .. });
    let sub_failed = out.iter().any(|c| is_fail(&c.outcome));
    let structural = match r.subtest_plan {
        Some(p) if p as usize == r.subtests.len() => None,
        Some(p) => Some(format!(
            "its subtests planned 1..{p}, {} reported",
            r.subtests.len()
        )),
        None => Some("its subtest block has no plan line".to_string()),
    };
    let own = match (forced, structural, outcome) {
        (Some(f), _, _) => Some(f),
        (None, Some(why), CaseOutcome::Fail { message, details }) => Some(CaseOutcome::Fail {
            message: format!("{message}; {why}"),
            details,
        }),
        (None, Some(why), _) => Some(CaseOutcome::Fail {
            message: why.clone(),
            details: why,
        }),
        (None, None, o @ CaseOutcome::Fail { .. }) if !sub_failed => Some(o),
        (None, None, _) => None,
    };
    if let Some(outcome) = own {
        out.push(Case {
            name: r.name.clone(),
            classname: classname.to_string(),
            outcome,
        });
    }
    out
}

/// Judges one run.
pub fn judge(f: &RunFacts) -> Verdict {
    let classname = format!("iovmm.{}", f.scenario);
    let mut cases = Vec::new();
    let mut guest_failed = false;
    let mut count = f.planned.len().max(f.ktap.results.len());
    if f.expected_end.is_some() && f.ktap.results.len() < f.planned.len() {
        count = f.planned.len() - 1; // the trigger test ends the VM before it can report
    }
    for i in 0..count {
        let number = (i + 1) as u32;
        let planned = f.planned.get(i);
        match f.ktap.result(number) {
            Some(r) => {
                if r.status == Status::Fail {
                    guest_failed = true;
                }
                let misnamed = planned
                    .filter(|p| **p != r.name)
                    .map(|p| CaseOutcome::Fail {
                        message: format!("result {number} is {:?}, planned {p:?}", r.name),
                        details: r.diagnostics.join("\n"),
                    });
                cases.extend(result_cases(r, &classname, misnamed));
            }
            None => {
                let name = planned.cloned().unwrap_or_else(|| format!("test-{number}"));
                let reason = missing_reason(f);
                cases.push(Case {
                    name,
                    classname: classname.clone(),
                    outcome: CaseOutcome::Fail {
                        message: reason.clone(),
                        details: reason,
                    },
                });
            }
        }
    }
    if f.monitor_expected {
        cases.push(monitor_case(f, &classname));
    }
    cases.push(match &f.expected_end {
        Some((status, message)) => end_case(f, *status, message, &classname),
        None => run_case(f, guest_failed, &classname),
    });
    let failed = cases
        .iter()
        .filter(|c| matches!(c.outcome, CaseOutcome::Fail { .. }))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, CaseOutcome::Skip { .. }))
        .count();
    Verdict {
        passed: cases.len() - failed - skipped,
        failed,
        skipped,
        cases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::ktap;

    fn facts(lines: &[&str], status: Option<i32>) -> RunFacts {
        RunFacts {
            scenario: "boot".into(),
            planned: vec!["cpus".into(), "memory-map".into(), "msi".into()],
            ktap: ktap::parse(lines),
            vmm_status: status,
            timed_out: false,
            timeout_secs: 60,
            setup_error: None,
            vmm_messages: vec![],
            monitor_expected: false,
            monitor_results: vec![],
            expected_end: None,
        }
    }

    #[test]
    fn monitor_case_needs_an_ok_answer() {
        let lines = [
            "KTAP version 1",
            "1..3",
            "ok 1 cpus",
            "ok 2 memory-map",
            "ok 3 msi",
        ];
        let mut f = facts(&lines, Some(0));
        f.monitor_expected = true;
        let v = judge(&f);
        assert_eq!((v.passed, v.failed), (4, 1));
        let c = &v.cases[3];
        assert_eq!(c.name, "monitor-walk");
        assert!(
            matches!(&c.outcome, CaseOutcome::Fail { message, .. } if message.contains("never printed")),
            "{c:?}"
        );
        f.monitor_results = vec![Ok("0x1 -> 0x2".into())];
        let v = judge(&f);
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.cases.len(), 5);
        f.monitor_results
            .push(Err("output 0x3, expected 0x2".into()));
        let v = judge(&f);
        assert!(
            matches!(&v.cases[3].outcome, CaseOutcome::Fail { message, .. } if message == "output 0x3, expected 0x2")
        );
        // The VMM status expectation is the guest's alone.
        assert_eq!(v.cases[4].outcome, CaseOutcome::Pass);
        f.monitor_expected = false;
        assert_eq!(judge(&f).cases.len(), 4);
    }

    /// A run of two guest tests, the first with the nested block of an upstream selftest binary.
    fn nested_facts(inner: &[&str], outer_status: &str, second: &str) -> RunFacts {
        let mut lines = vec!["KTAP version 1", "1..2"];
        lines.extend_from_slice(inner);
        lines.push(outer_status);
        lines.push(second);
        RunFacts {
            scenario: "upstream-vfio-legacy".into(),
            planned: vec!["vfio_pci_device_test".into(), "vfio_pci_driver_test".into()],
            ktap: ktap::parse(&lines),
            vmm_status: Some(
                if outer_status.starts_with("not ok") || second.starts_with("not ok") {
                    1
                } else {
                    0
                },
            ),
            timeout_secs: 60,
            ..Default::default()
        }
    }

    const DEVICE_TEST_BLOCK: &[&str] = &[
        "    KTAP version 1",
        "    # Subtest: vfio_pci_device_test",
        "    1..3",
        "    ok 1 vfio_pci_device_test.config_space_read_write",
        "    ok 2 vfio_pci_device_test.reset # SKIP Device does not support reset",
        "    ok 3 vfio_pci_irq_test.msi.enable_trigger_disable",
    ];

    #[test]
    fn upstream_cases_are_the_cases() {
        let f = nested_facts(
            DEVICE_TEST_BLOCK,
            "ok 1 vfio_pci_device_test",
            "ok 2 vfio_pci_driver_test # SKIP No driver found for device 0000:00:06.0",
        );
        let v = judge(&f);
        assert!(v.ok(), "{v:?}");
        // Three upstream cases, the skipped binary, the run case: a skipped upstream case is a skip.
        assert_eq!(v.summary(), "3 passed, 0 failed, 2 skipped");
        let names: Vec<(&str, &str)> = v
            .cases
            .iter()
            .map(|c| (c.classname.as_str(), c.name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                (
                    "iovmm.upstream-vfio-legacy.vfio_pci_device_test",
                    "vfio_pci_device_test.config_space_read_write"
                ),
                (
                    "iovmm.upstream-vfio-legacy.vfio_pci_device_test",
                    "vfio_pci_device_test.reset"
                ),
                (
                    "iovmm.upstream-vfio-legacy.vfio_pci_device_test",
                    "vfio_pci_irq_test.msi.enable_trigger_disable"
                ),
                ("iovmm.upstream-vfio-legacy", "vfio_pci_driver_test"),
                ("iovmm.upstream-vfio-legacy", RUN_CASE),
            ]
        );
        assert_eq!(
            v.cases[1].outcome,
            CaseOutcome::Skip {
                message: "Device does not support reset".into()
            }
        );
    }

    #[test]
    fn a_failed_upstream_case_fails_the_scenario() {
        let mut block = DEVICE_TEST_BLOCK[..5].to_vec();
        block.push("    # vfio_pci_device.c:60: Assertion failure");
        block.push("    not ok 3 vfio_pci_irq_test.msi.enable_trigger_disable");
        let f = nested_facts(
            &block,
            "not ok 1 vfio_pci_device_test",
            "ok 2 vfio_pci_driver_test",
        );
        let v = judge(&f);
        assert!(!v.ok());
        // config_space_read_write, the driver test and the run case pass.
        assert_eq!(v.summary(), "3 passed, 1 failed, 1 skipped");
        let failed: Vec<&Case> = v
            .cases
            .iter()
            .filter(|c| matches!(c.outcome, CaseOutcome::Fail { .. }))
            .collect();
        // The failed upstream case, with its output; the binary's own failure adds no case of its own.
        assert_eq!(failed.len(), 1);
        assert_eq!(
            failed[0].name,
            "vfio_pci_irq_test.msi.enable_trigger_disable"
        );
        assert!(
            matches!(&failed[0].outcome, CaseOutcome::Fail { message, .. } if message.contains("Assertion failure"))
        );
        // The guest's status 1 agrees with the failed test.
        assert_eq!(v.cases.last().unwrap().outcome, CaseOutcome::Pass);
    }

    #[test]
    fn a_binary_failure_no_case_shows_is_a_case() {
        // Every case passed, yet the binary failed (e.g. exited 1 after its cases): the test's own result says
        // so and becomes a failed case.
        let f = nested_facts(
            &["    1..1", "    ok 1 vfio_cdev.bind"],
            "not ok 1 vfio_pci_device_test",
            "ok 2 vfio_pci_driver_test",
        );
        let mut f = f;
        f.ktap.results[0].diagnostics =
            vec!["vfio_pci_device_test: exit status 1 with 0 failed cases".into()];
        let v = judge(&f);
        assert!(!v.ok());
        let own = v
            .cases
            .iter()
            .find(|c| c.name == "vfio_pci_device_test")
            .unwrap();
        assert!(
            matches!(&own.outcome, CaseOutcome::Fail { message, .. } if message.contains("exit status 1"))
        );
        // A nested plan its results do not match fails too, even when the guest said ok.
        let f = nested_facts(
            &["    1..3", "    ok 1 vfio_cdev.bind"],
            "ok 1 vfio_pci_device_test",
            "ok 2 vfio_pci_driver_test",
        );
        let v = judge(&f);
        assert!(!v.ok());
        let own = v
            .cases
            .iter()
            .find(|c| c.name == "vfio_pci_device_test")
            .unwrap();
        assert!(
            matches!(&own.outcome, CaseOutcome::Fail { message, .. } if message.contains("planned 1..3, 1 reported"))
        );
        // As does a test that is not the planned one, subtests or not.
        let f = nested_facts(
            &["    1..1", "    ok 1 vfio_cdev.bind"],
            "ok 1 vfio_iommufd_setup_test",
            "ok 2 vfio_pci_driver_test",
        );
        let v = judge(&f);
        assert!(!v.ok());
        assert!(v.cases.iter().any(|c| c.name == "vfio_iommufd_setup_test"
            && matches!(&c.outcome, CaseOutcome::Fail { message, .. } if message.contains("planned \"vfio_pci_device_test\""))));
    }

    #[test]
    fn all_passing_run() {
        let v = judge(&facts(
            &[
                "KTAP version 1",
                "1..3",
                "ok 1 cpus",
                "ok 2 memory-map",
                "ok 3 msi # SKIP no device",
            ],
            Some(0),
        ));
        assert!(v.ok());
        assert_eq!(v.summary(), "3 passed, 0 failed, 1 skipped");
        assert_eq!(v.cases.last().unwrap().name, RUN_CASE);
    }

    #[test]
    fn failing_test_with_consistent_status() {
        let v = judge(&facts(
            &[
                "KTAP version 1",
                "1..3",
                "ok 1 cpus",
                "# missing e820",
                "not ok 2 memory-map",
                "ok 3 msi",
            ],
            Some(1),
        ));
        assert!(!v.ok());
        assert_eq!((v.passed, v.failed), (3, 1));
        assert_eq!(
            v.cases[1].outcome,
            CaseOutcome::Fail {
                message: "missing e820".into(),
                details: "missing e820".into()
            }
        );
        assert_eq!(v.cases[3].outcome, CaseOutcome::Pass);
    }

    #[test]
    fn missing_results_and_bad_status() {
        let v = judge(&facts(&["KTAP version 1", "1..3", "ok 1 cpus"], Some(125)));
        assert_eq!((v.passed, v.failed), (1, 3));
        match &v.cases[2].outcome {
            CaseOutcome::Fail { message, .. } => {
                assert!(message.contains("VMM status 125"), "{message}")
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(v.cases[2].name, "msi");
    }

    #[test]
    fn passing_tests_but_nonzero_status_fail_the_run() {
        let v = judge(&facts(
            &[
                "KTAP version 1",
                "1..3",
                "ok 1 cpus",
                "ok 2 memory-map",
                "ok 3 msi",
            ],
            Some(1),
        ));
        assert!(!v.ok());
        assert_eq!(v.failed, 1);
        assert!(
            matches!(&v.cases[3].outcome, CaseOutcome::Fail { message, .. } if message.contains("expected 0"))
        );
    }

    #[test]
    fn no_ktap_and_timeout() {
        let mut f = facts(&["Booting the kernel"], None);
        f.timed_out = true;
        let v = judge(&f);
        assert_eq!(v.passed, 0);
        assert_eq!(v.failed, 4);
        match &v.cases[0].outcome {
            CaseOutcome::Fail { message, .. } => assert!(message.contains("timed out after 60 s")),
            o => panic!("{o:?}"),
        }
        let v = judge(&facts(&["nothing"], Some(0)));
        assert!(!v.ok());
        assert!(
            matches!(&v.cases[3].outcome, CaseOutcome::Fail { message, .. } if message == "no KTAP output")
        );
    }

    #[test]
    fn plan_and_name_mismatch() {
        let v = judge(&facts(
            &[
                "KTAP version 1",
                "1..2",
                "ok 1 cpus",
                "ok 2 other",
                "ok 3 msi",
            ],
            Some(0),
        ));
        assert!(
            matches!(&v.cases[1].outcome, CaseOutcome::Fail { message, .. } if message.contains("planned \"memory-map\""))
        );
        assert!(
            matches!(&v.cases[3].outcome, CaseOutcome::Fail { message, .. } if message.contains("guest planned 2"))
        );
    }

    #[test]
    fn setup_error_fails_everything() {
        let mut f = facts(&[], None);
        f.setup_error = Some("missing bzImage".into());
        let v = judge(&f);
        assert_eq!(v.failed, 4);
        assert!(
            matches!(&v.cases[0].outcome, CaseOutcome::Fail { message, .. } if message == "not run: missing bzImage")
        );
    }

    fn ended(status: Option<i32>, messages: &[&str]) -> RunFacts {
        let mut ktap = crate::runner::ktap::parse(["KTAP version 1", "1..2", "ok 1 cpus"]);
        ktap.found = true;
        RunFacts {
            scenario: "guest-panic".into(),
            planned: vec!["cpus".into(), "panic".into()],
            ktap,
            vmm_status: status,
            vmm_messages: messages.iter().map(|m| m.to_string()).collect(),
            expected_end: Some((125, "iovmm: guest kernel panicked".into())),
            ..Default::default()
        }
    }

    #[test]
    fn expected_end_passes_only_with_the_right_status_and_message() {
        let v = judge(&ended(Some(125), &["iovmm: guest kernel panicked"]));
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.cases.len(), 2, "cpus + run case, no case for the trigger");
        assert!(!judge(&ended(Some(0), &["iovmm: guest kernel panicked"])).ok());
        assert!(!judge(&ended(Some(125), &["iovmm: guest reset (i8042 reset)"])).ok());
        assert!(!judge(&ended(None, &[])).ok());
    }
}
