//! The shape every bring-up suite shares: named cases over a driver, run one at a time from the state the
//! driver defines ([`CaseDriver::start_case`]), each ending in pass, skip or failure plus the notes it left;
//! and running a whole case list, collecting the failures (the in-process harnesses).

use super::backend::Backend;

/// How a case ended when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Skip(String),
}

/// One named case of a suite over driver `D`.
pub struct Case<D> {
    pub name: &'static str,
    pub summary: &'static str,
    pub run: fn(&mut D) -> Result<Outcome, String>,
}

/// The result of [`run_case`]: outcome or failure, plus the notes the case left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseReport {
    pub name: &'static str,
    pub result: Result<Outcome, String>,
    pub notes: Vec<String>,
}

/// What [`run_case`] needs of a bring-up driver.
pub trait CaseDriver {
    /// The machine the driver programs.
    fn backend(&mut self) -> &mut dyn Backend;
    /// The notes a case leaves for its report.
    fn notes(&mut self) -> &mut Vec<String>;
    /// Brings the unit to the state every case starts from.
    fn start_case(&mut self) -> Result<(), String>;
    /// Checks (and repairs) what a case left behind; may turn `result` into a failure.
    fn finish_case(&mut self, result: Result<Outcome, String>) -> Result<Outcome, String>;
}

/// Runs `case` from [`CaseDriver::start_case`], then lets the driver check what it left.
pub fn run_case<D: CaseDriver>(d: &mut D, case: &Case<D>) -> CaseReport {
    d.notes().clear();
    let result = d.start_case().and_then(|()| (case.run)(d));
    let result = d.finish_case(result);
    CaseReport {
        name: case.name,
        result,
        notes: std::mem::take(d.notes()),
    }
}

/// Looks case `name` up in `cases`.
pub fn find<D>(cases: &'static [Case<D>], name: &str) -> Option<&'static Case<D>> {
    cases.iter().find(|c| c.name == name)
}

/// What running a whole case list found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuiteRun {
    pub passed: Vec<&'static str>,
    /// Skipped cases with the reason.
    pub skipped: Vec<(&'static str, String)>,
    /// `name: error (notes: [...])`, one per failed case.
    pub failed: Vec<String>,
}

impl SuiteRun {
    /// The names of the skipped cases.
    pub fn skipped_names(&self) -> Vec<&'static str> {
        self.skipped.iter().map(|(n, _)| *n).collect()
    }
}

/// Runs every case of `cases` on `d`, in order, collecting the outcomes.
pub fn run_all<D: CaseDriver>(d: &mut D, cases: &[Case<D>]) -> SuiteRun {
    let mut run = SuiteRun::default();
    for case in cases {
        let r = run_case(d, case);
        match r.result {
            Ok(Outcome::Pass) => run.passed.push(case.name),
            Ok(Outcome::Skip(why)) => run.skipped.push((case.name, why)),
            Err(e) => run
                .failed
                .push(format!("{}: {e} (notes: {:?})", case.name, r.notes)),
        }
    }
    run
}

/// The names that appear more than once in `cases` (each once).
pub fn duplicate_names<D>(cases: &[Case<D>]) -> Vec<&'static str> {
    let mut dup: Vec<&'static str> = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        if cases[..i].iter().any(|o| o.name == c.name) && !dup.contains(&c.name) {
            dup.push(c.name);
        }
    }
    dup
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bringup::host::HostBackend;

    /// A driver over the host backend that counts how it was used.
    struct Counting {
        b: HostBackend,
        notes: Vec<String>,
        starts: u32,
        fail_start: bool,
        /// `finish_case` fails a case that did not fail itself.
        dirty: bool,
    }

    impl CaseDriver for Counting {
        fn backend(&mut self) -> &mut dyn Backend {
            &mut self.b
        }
        fn notes(&mut self) -> &mut Vec<String> {
            &mut self.notes
        }
        fn start_case(&mut self) -> Result<(), String> {
            self.starts += 1;
            if self.fail_start {
                return Err("start".into());
            }
            Ok(())
        }
        fn finish_case(&mut self, result: Result<Outcome, String>) -> Result<Outcome, String> {
            if self.dirty {
                result.and(Err("left dirty".into()))
            } else {
                result
            }
        }
    }

    fn pass(d: &mut Counting) -> Result<Outcome, String> {
        d.notes.push("ran".into());
        Ok(Outcome::Pass)
    }
    fn skip(_: &mut Counting) -> Result<Outcome, String> {
        Ok(Outcome::Skip("not here".into()))
    }
    fn fail(d: &mut Counting) -> Result<Outcome, String> {
        d.notes.push("before".into());
        Err("broken".into())
    }

    const CASES: &[Case<Counting>] = &[
        Case {
            name: "pass",
            summary: "passes",
            run: pass,
        },
        Case {
            name: "skip",
            summary: "skips",
            run: skip,
        },
        Case {
            name: "fail",
            summary: "fails",
            run: fail,
        },
    ];

    fn driver() -> Counting {
        Counting {
            b: HostBackend::new(Default::default()).unwrap(),
            notes: vec!["stale".into()],
            starts: 0,
            fail_start: false,
            dirty: false,
        }
    }

    #[test]
    fn a_case_starts_fresh_and_keeps_its_notes() {
        let mut d = driver();
        let r = run_case(&mut d, &CASES[0]);
        assert_eq!(r.result, Ok(Outcome::Pass));
        assert_eq!(r.notes, ["ran"]);
        assert!(d.notes.is_empty());
        assert_eq!(d.starts, 1);
    }

    #[test]
    fn a_failed_start_skips_the_case_and_finish_can_fail_it() {
        let mut d = driver();
        d.fail_start = true;
        let r = run_case(&mut d, &CASES[0]);
        assert_eq!(r.result, Err("start".into()));
        assert!(r.notes.is_empty(), "the case did not run: {:?}", r.notes);
        d.fail_start = false;
        d.dirty = true;
        assert_eq!(run_case(&mut d, &CASES[0]).result, Err("left dirty".into()));
        // The case's own failure is kept.
        assert_eq!(run_case(&mut d, &CASES[2]).result, Err("broken".into()));
    }

    #[test]
    fn run_all_collects_every_outcome() {
        let mut d = driver();
        let run = run_all(&mut d, CASES);
        assert_eq!(run.passed, ["pass"]);
        assert_eq!(run.skipped, [("skip", "not here".to_string())]);
        assert_eq!(run.skipped_names(), ["skip"]);
        assert_eq!(run.failed, [r#"fail: broken (notes: ["before"])"#]);
        assert_eq!(d.starts, 3);
    }

    /// Both bring-up suites: unique names, each found by [`find`] with its own summary.
    #[test]
    fn suite_case_names_are_unique_and_findable() {
        fn check<D>(cases: &'static [Case<D>]) {
            assert!(duplicate_names(cases).is_empty());
            for c in cases {
                assert_eq!(find(cases, c.name).map(|f| f.summary), Some(c.summary));
            }
            assert!(find(cases, "nope").is_none());
        }
        check(crate::bringup::smmuv3::suite::CASES);
        check(crate::bringup::tce::suite::CASES);
    }

    #[test]
    fn names_are_checked() {
        assert!(duplicate_names(CASES).is_empty());
        assert_eq!(find(CASES, "skip").map(|c| c.summary), Some("skips"));
        assert!(find(CASES, "nope").is_none());
        const TWICE: &[Case<Counting>] = &[
            Case {
                name: "a",
                summary: "",
                run: pass,
            },
            Case {
                name: "a",
                summary: "",
                run: skip,
            },
        ];
        assert_eq!(duplicate_names(TWICE), ["a"]);
    }
}
