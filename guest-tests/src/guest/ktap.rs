//! KTAP v1 output: `KTAP version 1`, the plan `1..N`, then per test its diagnostics as `# ...` lines followed
//! by `ok N name`, `not ok N name` or `ok N name # SKIP reason`. A test with subtests (a suite it ran, e.g. one
//! of Linux's VFIO selftests) prints them first as a nested KTAP document indented by [`SUBTEST_INDENT`]:
//!
//! ```text
//!     KTAP version 1
//!     # Subtest: vfio_pci_device_test
//!     1..2
//!     ok 1 vfio_pci_device_test.config_space_read_write
//!     ok 2 vfio_pci_device_test.reset # SKIP Device does not support reset
//! # vfio_pci_device_test: ...
//! ok 3 vfio_pci_device_test
//! ```

use super::report::{Report, Subtest, SubtestOutcome};

/// Indentation of a nested (subtest) KTAP block.
pub const SUBTEST_INDENT: &str = "    ";

/// The header lines for a run of `count` tests.
pub fn header(count: usize) -> Vec<String> {
    vec!["KTAP version 1".to_string(), format!("1..{count}")]
}

/// Makes a message safe for one KTAP field: no line breaks, no `#` that would start a directive.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// A test name: KTAP names must not contain whitespace or `#`.
pub fn sanitize_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '#' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if n.is_empty() {
        "unnamed".to_string()
    } else {
        n
    }
}

/// Diagnostic lines for `msg`: one `# ` line per line of the message (control characters dropped).
pub fn diagnostic_lines(msg: &str) -> Vec<String> {
    msg.split('\n')
        .map(|l| {
            let clean: String = l
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect();
            format!("# {}", clean.trim_end())
        })
        .collect()
}

/// The nested KTAP block of a test's subtests (empty when it has none), every line indented.
pub fn subtest_lines(name: &str, subtests: &[Subtest]) -> Vec<String> {
    if subtests.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![
        "KTAP version 1".to_string(),
        format!("# Subtest: {}", sanitize_name(name)),
        format!("1..{}", subtests.len()),
    ];
    for (i, s) in subtests.iter().enumerate() {
        lines.extend(s.diagnostics.iter().flat_map(|d| diagnostic_lines(d)));
        let n = i + 1;
        let sub = sanitize_name(&s.name);
        lines.push(match &s.outcome {
            SubtestOutcome::Pass => format!("ok {n} {sub}"),
            SubtestOutcome::Fail => format!("not ok {n} {sub}"),
            SubtestOutcome::Skip(reason) => format!("ok {n} {sub} # SKIP {}", one_line(reason)),
        });
    }
    lines
        .into_iter()
        .map(|l| format!("{SUBTEST_INDENT}{l}"))
        .collect()
}

/// The lines of test number `number` (1-based): its subtests' nested block, its diagnostics, its result line.
pub fn result_lines(number: usize, name: &str, report: &Report) -> Vec<String> {
    let mut lines = subtest_lines(name, &report.subtests);
    lines.extend(report.diagnostics.iter().flat_map(|d| diagnostic_lines(d)));
    let name = sanitize_name(name);
    let line = if let Some(reason) = &report.skip {
        // A skipped test that also recorded a failure is reported as a failure: never hide one.
        if report.failed {
            format!("not ok {number} {name}")
        } else {
            format!("ok {number} {name} # SKIP {}", one_line(reason))
        }
    } else if report.failed {
        format!("not ok {number} {name}")
    } else {
        format!("ok {number} {name}")
    };
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_version_and_plan() {
        assert_eq!(header(3), vec!["KTAP version 1", "1..3"]);
    }

    #[test]
    fn passing_failing_and_skipped_results() {
        let ok = Report::new();
        assert_eq!(result_lines(1, "cpus", &ok), vec!["ok 1 cpus"]);

        let mut bad = Report::new();
        bad.fail("expected 2 cpus\ngot 1");
        assert_eq!(
            result_lines(2, "cpus", &bad),
            vec!["# expected 2 cpus", "# got 1", "not ok 2 cpus"]
        );

        let mut skip = Report::new();
        skip.skip("no test\ndevice");
        assert_eq!(
            result_lines(3, "msi", &skip),
            vec!["ok 3 msi # SKIP no test device"]
        );
    }

    #[test]
    fn skip_with_failure_is_not_ok() {
        let mut r = Report::new();
        r.fail("x");
        r.skip("y");
        assert_eq!(result_lines(1, "t", &r).last().unwrap(), "not ok 1 t");
    }

    #[test]
    fn subtests_are_a_nested_block_before_the_result() {
        let mut r = Report::new();
        r.subtests = vec![
            Subtest {
                name: "suite.a".into(),
                outcome: SubtestOutcome::Pass,
                diagnostics: vec![],
            },
            Subtest {
                name: "suite.b".into(),
                outcome: SubtestOutcome::Skip("no reset\n".into()),
                diagnostics: vec![],
            },
            Subtest {
                name: "suite c".into(),
                outcome: SubtestOutcome::Fail,
                diagnostics: vec!["assertion\nfailed".into()],
            },
        ];
        r.fail("1 of 3 cases failed");
        assert_eq!(
            result_lines(4, "suite", &r),
            vec![
                "    KTAP version 1",
                "    # Subtest: suite",
                "    1..3",
                "    ok 1 suite.a",
                "    ok 2 suite.b # SKIP no reset",
                "    # assertion",
                "    # failed",
                "    not ok 3 suite_c",
                "# 1 of 3 cases failed",
                "not ok 4 suite",
            ]
        );
        assert!(subtest_lines("x", &[]).is_empty());
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("a b#c"), "a_b_c");
        assert_eq!(sanitize_name(""), "unnamed");
    }

    #[test]
    fn diagnostics_drop_control_characters() {
        assert_eq!(diagnostic_lines("a\r\u{1b}b"), vec!["# ab"]);
    }
}
