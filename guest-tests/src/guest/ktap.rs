//! KTAP v1 output: `KTAP version 1`, the plan `1..N`, then per test its diagnostics as `# ...` lines followed
//! by `ok N name`, `not ok N name` or `ok N name # SKIP reason`.

use super::report::Report;

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

/// The diagnostics and result line of test number `number` (1-based).
pub fn result_lines(number: usize, name: &str, report: &Report) -> Vec<String> {
    let mut lines: Vec<String> = report
        .diagnostics
        .iter()
        .flat_map(|d| diagnostic_lines(d))
        .collect();
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
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("a b#c"), "a_b_c");
        assert_eq!(sanitize_name(""), "unnamed");
    }

    #[test]
    fn diagnostics_drop_control_characters() {
        assert_eq!(diagnostic_lines("a\r\u{1b}b"), vec!["# ab"]);
    }
}
