//! The outcome of one guest test: pass, fail or skip, plus diagnostics.

/// What one test found. A test starts passing and fails as soon as it records a failure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Diagnostic lines, printed as `# ...` before the result line.
    pub diagnostics: Vec<String>,
    /// At least one check failed.
    pub failed: bool,
    /// The test did not run, for this reason.
    pub skip: Option<String>,
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
    fn fail_all_records_each() {
        let mut r = Report::new();
        r.fail_all(vec!["a".to_string(), "b".to_string()]);
        assert!(r.failed);
        assert_eq!(r.diagnostics.len(), 2);
    }
}
