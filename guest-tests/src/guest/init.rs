//! The guest binary's main flow: console, mounts, arguments, expectations, tests, KTAP, exit.

use std::path::{Path, PathBuf};

use super::context::{load_expect, Context};
use super::report::Report;
use super::{cmdline, ktap, modules, registry, sys};

/// Timing marker the runner's bench looks for; printed before anything else.
pub const USERSPACE_UP: &str = "iovmm-guest: userspace up";

/// Runs test `name` as number `number` and returns its KTAP lines and whether it passed. `setup_errors`
/// (from mounting and reading the command line) fail this test with `# setup: ...` diagnostics, so they
/// are never lost; the runner passes them for the first test only.
pub fn run_numbered(
    ctx: &Context,
    number: usize,
    name: &str,
    setup_errors: &[String],
) -> (Vec<String>, bool) {
    let mut report = registry::run_one(name, ctx);
    if !setup_errors.is_empty() {
        let mut r = Report::new();
        r.fail_all(setup_errors.iter().map(|e| format!("setup: {e}")));
        r.diagnostics.append(&mut report.diagnostics);
        r.subtests = std::mem::take(&mut report.subtests);
        report = r;
    }
    (ktap::result_lines(number, name, &report), report.passed())
}

/// Runs the planned tests and returns the whole KTAP document and whether all passed.
pub fn run_tests(ctx: &Context, tests: &[String], setup_errors: &[String]) -> (Vec<String>, bool) {
    let mut lines = ktap::header(tests.len());
    let mut all_ok = true;
    for (i, name) in tests.iter().enumerate() {
        let errs: &[String] = if i == 0 { setup_errors } else { &[] };
        let (l, ok) = run_numbered(ctx, i + 1, name, errs);
        all_ok &= ok;
        lines.extend(l);
    }
    (lines, all_ok)
}

/// The guest's PID 1 entry point. Never returns.
pub fn main() -> ! {
    sys::ensure_console();
    sys::out(USERSPACE_UP);
    let mut setup_errors = sys::mount_all();
    if let Err(e) = sys::quiet_console() {
        setup_errors.push(e);
    }
    let (loaded, module_errors) = modules::load_all(Path::new("/"));
    if !loaded.is_empty() {
        sys::out(&format!("iovmm-guest: loaded modules {}", loaded.join(" ")));
    }
    setup_errors.extend(module_errors);
    let args = match std::fs::read_to_string("/proc/cmdline") {
        Ok(c) => cmdline::parse(&c),
        Err(e) => {
            setup_errors.push(format!("cannot read /proc/cmdline: {e}"));
            cmdline::GuestArgs::default()
        }
    };
    let scenario = args.scenario.unwrap_or_else(|| "unnamed".to_string());
    let tests = args.tests.unwrap_or_else(registry::all_names);
    let ctx = Context {
        root: PathBuf::from("/"),
        expect: load_expect(Path::new("/expect.json")),
        scenario: scenario.clone(),
    };
    sys::out(&format!(
        "iovmm-guest: scenario {scenario}, {} tests",
        tests.len()
    ));

    // Print KTAP line by line as tests finish so a hang still shows progress.
    let mut all_ok = true;
    for line in ktap::header(tests.len()) {
        sys::out(&line);
    }
    for (i, name) in tests.iter().enumerate() {
        let errs: &[String] = if i == 0 { &setup_errors } else { &[] };
        let (lines, ok) = run_numbered(&ctx, i + 1, name, errs);
        all_ok &= ok;
        for line in lines {
            sys::out(&line);
        }
    }
    if tests.is_empty() && !setup_errors.is_empty() {
        for e in &setup_errors {
            sys::out(&format!("# setup: {e}"));
        }
        all_ok = false;
    }
    let status: u8 = if all_ok { 0 } else { 1 };
    sys::out(&format!("iovmm-guest: done, exit status {status}"));
    sys::drain_console();
    if let Err(e) = sys::exit_device(status) {
        sys::out(&format!("iovmm-guest: exit device: {e}"));
    }
    sys::reboot_or_hang()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_tests_numbers_and_reports_setup_errors() {
        let ctx = Context {
            root: PathBuf::from("/nonexistent-guest-root"),
            expect: Err("missing".into()),
            scenario: "boot".into(),
        };
        let (lines, ok) = run_tests(
            &ctx,
            &["bogus".to_string(), "other".to_string()],
            &["mount proc failed".to_string()],
        );
        assert!(!ok);
        assert_eq!(lines[0], "KTAP version 1");
        assert_eq!(lines[1], "1..2");
        assert_eq!(lines[2], "# setup: mount proc failed");
        assert!(lines.contains(&"not ok 1 bogus".to_string()));
        assert_eq!(lines.last().unwrap(), "not ok 2 other");
    }
}
