//! The result of a run: every top-level step with its outcome, and the first mismatch in full.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// One top-level step that ran.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepReport {
    /// Index in the script's `steps` array (0-based, as `jq '.steps[N]'` counts).
    pub index: usize,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub passed: bool,
    /// What happened, in one line ("GSTS & 0x80000000 = 0x80000000 after 1 read").
    pub summary: String,
}

/// The first step whose result differed from the script's expectation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failure {
    /// Path of the step: `steps[7]`, or `steps[3].steps[1] (iteration 2 of 4)` inside a repeat.
    pub at: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub expected: String,
    pub actual: String,
    /// For DMA steps: the model's side-effect-free lookup of the request (the walk that produced the
    /// actual result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub walk: Option<Value>,
}

/// A whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub name: String,
    pub description: String,
    /// The model's canonical option string, as built.
    pub model: String,
    pub passed: bool,
    /// Top-level steps that ran, in order; the last one failed if `failure` is set.
    pub steps: Vec<StepReport>,
    /// Top-level steps after the failure that did not run.
    pub not_run: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// MSIs the model sent that no `expect_msi` checked (address, data).
    pub unchecked_msis: Vec<(String, String)>,
}

impl Report {
    /// Whether every step matched.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bring-up script `{}` on {}", self.name, self.model)?;
        if !self.description.is_empty() {
            writeln!(f, "{}", indent(self.description.trim(), "  "))?;
        }
        for s in &self.steps {
            let mark = if s.passed { "ok  " } else { "FAIL" };
            writeln!(f, "{mark} steps[{}] {}: {}", s.index, s.kind, s.summary)?;
            if let Some(n) = &s.note {
                writeln!(f, "       # {n}")?;
            }
        }
        if let Some(fl) = &self.failure {
            writeln!(f)?;
            writeln!(f, "FAILED at {} ({})", fl.at, fl.kind)?;
            if let Some(n) = &fl.note {
                writeln!(f, "  note:     {n}")?;
            }
            writeln!(f, "  expected: {}", fl.expected)?;
            writeln!(f, "  actual:   {}", fl.actual)?;
            if let Some(w) = &fl.walk {
                writeln!(
                    f,
                    "  walk (the model's side-effect-free lookup of this request):"
                )?;
                let text = serde_json::to_string_pretty(w).unwrap_or_else(|e| e.to_string());
                writeln!(f, "{}", indent(&text, "    "))?;
            }
        }
        if !self.unchecked_msis.is_empty() {
            let list: Vec<String> = self
                .unchecked_msis
                .iter()
                .map(|(a, d)| format!("{a}/{d}"))
                .collect();
            writeln!(
                f,
                "MSIs not checked by any step (address/data): {}",
                list.join(" ")
            )?;
        }
        let ran = self.steps.len();
        let passed = self.steps.iter().filter(|s| s.passed).count();
        if self.passed() {
            write!(f, "PASSED: {passed} of {ran} steps")
        } else {
            write!(
                f,
                "FAILED: {passed} of {} steps passed, {} not run",
                ran + self.not_run,
                self.not_run
            )
        }
    }
}
