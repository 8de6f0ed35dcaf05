//! The outcome of one guest test: pass, fail or skip, plus diagnostics, and for a test that runs a suite of its
//! own (Linux's VFIO selftests) the suite's cases as subtests.

/// What one test found. A test starts passing and fails as soon as it records a failure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Diagnostic lines, printed as `# ...` before the result line.
    pub diagnostics: Vec<String>,
    /// At least one check failed.
    pub failed: bool,
    /// The test did not run, for this reason.
    pub skip: Option<String>,
    /// Cases of a suite the test ran (printed as a nested KTAP block before the test's own result). The test
    /// decides its own outcome from them: a failed subtest must also fail the test.
    pub subtests: Vec<Subtest>,
}

/// One case of a suite a guest test ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subtest {
    pub name: String,
    pub outcome: SubtestOutcome,
    /// Printed as `# ...` before the subtest's result line.
    pub diagnostics: Vec<String>,
}

/// How one subtest ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubtestOutcome {
    Pass,
    Fail,
    /// Skipped, for this reason.
    Skip(String),
}

impl Report {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an informational diagnostic.
    pub fn diag(&mut self, msg: impl Into<String>) {
        self.diagnostics.push(msg.into());
    }

    /// Records a failed check with its explanation.
    pub fn fail(&mut self, msg: impl Into<String>) {
        self.failed = true;
        self.diagnostics.push(msg.into());
    }

    /// Records every message as a failure.
    pub fn fail_all<I: IntoIterator<Item = String>>(&mut self, msgs: I) {
        for m in msgs {
            self.fail(m);
        }
    }

    /// Marks the test as skipped.
    pub fn skip(&mut self, reason: impl Into<String>) {
        self.skip = Some(reason.into());
    }

    /// A report that failed with one message.
    pub fn failure(msg: impl Into<String>) -> Self {
        let mut r = Self::new();
        r.fail(msg);
        r
    }

    pub fn passed(&self) -> bool {
        !self.failed
    }

    /// Counts of the subtests: (passed, failed, skipped).
    pub fn subtest_counts(&self) -> (usize, usize, usize) {
        let count =
            |f: fn(&SubtestOutcome) -> bool| self.subtests.iter().filter(|s| f(&s.outcome)).count();
        (
            count(|o| *o == SubtestOutcome::Pass),
            count(|o| *o == SubtestOutcome::Fail),
            count(|o| matches!(o, SubtestOutcome::Skip(_))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_marks_failed_and_keeps_message() {
        let mut r = Report::new();
        assert!(r.passed());
        r.diag("info");
        assert!(r.passed());
        r.fail("broken");
        assert!(!r.passed());
        assert_eq!(r.diagnostics, vec!["info", "broken"]);
    }

    #[test]
    fn subtest_counts() {
        let mut r = Report::new();
        for (name, outcome) in [
            ("a", SubtestOutcome::Pass),
            ("b", SubtestOutcome::Skip("why".into())),
            ("c", SubtestOutcome::Fail),
            ("d", SubtestOutcome::Skip("why".into())),
        ] {
            r.subtests.push(Subtest {
                name: name.into(),
                outcome,
                diagnostics: vec![],
            });
        }
        assert_eq!(r.subtest_counts(), (1, 1, 2));
        // Subtests alone do not fail the test: the test decides.
        assert!(r.passed());
    }

    #[test]
    fn fail_all_records_each() {
        let mut r = Report::new();
        r.fail_all(vec!["a".to_string(), "b".to_string()]);
        assert!(r.failed);
        assert_eq!(r.diagnostics.len(), 2);
    }
}
