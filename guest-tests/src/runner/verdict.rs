//! Turns what happened (KTAP results, VMM exit status, timeout) into test cases, a summary line and the
//! runner's exit decision. Every planned test gets a case: a missing result is a failure that says why.
//! One more case, `vmm-exit`, checks the run itself: no timeout, and the VMM's exit status equal to the
//! status the guest's results imply (0 when nothing failed, 1 otherwise).

use super::junit::{Case, CaseOutcome, Suite};
use super::ktap::{Ktap, Status};
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
        let case = match f.ktap.result(number) {
            Some(r) => {
                let outcome = match &r.status {
                    Status::Pass => CaseOutcome::Pass,
                    Status::Skip(reason) => CaseOutcome::Skip {
                        message: reason.clone(),
                    },
                    Status::Fail => {
                        guest_failed = true;
                        CaseOutcome::Fail {
                            message: r
                                .diagnostics
                                .first()
                                .cloned()
                                .unwrap_or_else(|| "failed (no diagnostics)".to_string()),
                            details: r.diagnostics.join("\n"),
                        }
                    }
                };
                let mut outcome = outcome;
                if let Some(p) = planned {
                    if *p != r.name {
                        outcome = CaseOutcome::Fail {
                            message: format!("result {number} is {:?}, planned {p:?}", r.name),
                            details: r.diagnostics.join("\n"),
                        };
                    }
                }
                Case {
                    name: r.name.clone(),
                    classname: classname.clone(),
                    outcome,
                }
            }
            None => {
                let name = planned.cloned().unwrap_or_else(|| format!("test-{number}"));
                let reason = missing_reason(f);
                Case {
                    name,
                    classname: classname.clone(),
                    outcome: CaseOutcome::Fail {
                        message: reason.clone(),
                        details: reason,
                    },
                }
            }
        };
        cases.push(case);
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
