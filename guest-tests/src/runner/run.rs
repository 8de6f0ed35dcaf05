//! `iovmm-runner run SCENARIO`: boot the scenario's guest, parse its KTAP, write JUnit, print the summary.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::boot::{self, BootRun};
use super::exec::Sink;
use super::hostmode::{self, HostMode, HostModeChoice, HostProbe};
use super::junit;
use super::ktap;
use super::monitor;
use super::paths::{Overrides, Setup};
use super::scenario::{self, Scenario};
use super::verdict::{self, RunFacts};

/// Default overall time limit per host mode.
pub fn default_timeout(mode: HostMode) -> Duration {
    match mode {
        HostMode::Native => Duration::from_secs(300),
        HostMode::Tcg => Duration::from_secs(900),
    }
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub scenario: String,
    pub host_mode: HostModeChoice,
    pub paths: Overrides,
    pub junit: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
}

/// Prints a runner message on stderr (and the log).
fn say(log: &mut Option<std::fs::File>, msg: &str) {
    eprintln!("iovmm-runner: {msg}");
    if let Some(l) = log.as_mut() {
        let _ = writeln!(l, "iovmm-runner: {msg}");
    }
}

/// Builds the facts for the verdict from a boot (or its failure).
pub fn facts_from(sc: &Scenario, boot: &Result<BootRun, String>, timeout: Duration) -> RunFacts {
    let mut f = RunFacts {
        scenario: sc.name.to_string(),
        planned: sc.test_names(),
        timeout_secs: timeout.as_secs(),
        monitor_expected: sc.wants_monitor(),
        expected_end: sc.end.map(|e| (e.status, e.message.to_string())),
        ..Default::default()
    };
    match boot {
        Ok(b) => {
            f.ktap = ktap::parse(b.captured.texts());
            f.monitor_results = monitor::results(b.captured.texts());
            f.vmm_status = b.vmm_status;
            f.timed_out = b.captured.timed_out;
            f.vmm_messages = b.vmm_messages();
        }
        Err(e) => f.setup_error = Some(e.clone()),
    }
    f
}

/// A case's name as the runner prints it: a subtest (classname `iovmm.SCENARIO.TEST`) as `TEST: NAME`.
pub fn display_name(scenario: &str, c: &junit::Case) -> String {
    let top = format!("iovmm.{scenario}");
    match c
        .classname
        .strip_prefix(&top)
        .and_then(|r| r.strip_prefix('.'))
    {
        Some(parent) => format!("{parent}: {}", c.name),
        None => c.name.clone(),
    }
}

/// Boots of a scenario when the TCG test host itself crashes (see [`testhost_crashed`]).
const TESTHOST_ATTEMPTS: u32 = 2;

/// Whether the TCG test host's own kernel (Debian's `+deb12-amd64`, not our `-iovmm` guest) oopsed or panicked
/// before reporting iovmm's exit status.
pub fn testhost_crashed<'a>(lines: impl Iterator<Item = &'a str> + Clone) -> bool {
    let reported = lines
        .clone()
        .any(|l| l.contains("iovmm-testhost: vmm-exit="));
    let host_oops = lines.clone().any(|l| {
        (l.contains("Oops") || l.contains("Kernel panic") || l.contains("BUG:"))
            && !l.contains("-iovmm")
    }) && lines.clone().any(|l| l.contains("+deb12-amd64"));
    host_oops && !reported
}

/// Runs one scenario; returns the process exit code (0 = everything passed).
pub fn run(opts: &RunOptions) -> i32 {
    let Some(sc) = scenario::find(&opts.scenario) else {
        eprintln!(
            "iovmm-runner: error: unknown scenario {:?}; known: {}",
            opts.scenario,
            scenario::SCENARIOS
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return 2;
    };
    if let Some(why) = sc.refusal(opts.paths.kernel_version) {
        eprintln!("iovmm-runner: error: {why}");
        return 2;
    }
    let (mode, mode_line) = hostmode::resolve(opts.host_mode, &HostProbe::read());
    println!("{mode_line}");
    let setup = Setup::resolve(&opts.paths, sc);
    let timeout = opts
        .timeout_secs
        .map(Duration::from_secs)
        .unwrap_or_else(|| default_timeout(mode));
    let log_path = opts.log.clone().unwrap_or_else(|| {
        setup.root.join(format!(
            "build/logs/{}-{}-{mode}.log",
            sc.name, setup.kernel_version
        ))
    });
    if let Some(dir) = log_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut log = std::fs::File::create(&log_path).ok();
    if log.is_none() {
        eprintln!(
            "iovmm-runner: warning: cannot write log {}",
            log_path.display()
        );
    }
    if let Some(l) = log.as_mut() {
        let _ = writeln!(l, "{mode_line}");
    }
    say(
        &mut log,
        &format!(
            "scenario {}: kernel {} ({}), {} vCPUs, {} MiB, tests {}; timeout {} s; log {}",
            sc.name,
            setup.kernel_version,
            setup.kernel.display(),
            sc.cpus,
            sc.memory_mib,
            sc.tests.join(","),
            timeout.as_secs(),
            log_path.display()
        ),
    );

    let t0 = Instant::now();
    let mut attempt = 1;
    let result = loop {
        let result = boot::prepare(&setup, sc).and_then(|p| {
            let mut sink = Sink {
                echo: true,
                log: log.as_mut().map(|f| f as &mut dyn Write),
            };
            boot::boot(&setup, &p, mode, timeout, &mut sink)
        });
        // The TCG test host's own kernel can crash under QEMU TCG (seen: an int3 oops in kvm_amd while the host
        // kernel live-patched a static branch on the other vCPU). That is the test infrastructure failing, not
        // iovmm or the guest: say so and boot the scenario once more. The retry must pass on its own.
        let crashed = matches!(&result, Ok(b) if mode == HostMode::Tcg && testhost_crashed(b.captured.texts()));
        if crashed && attempt < TESTHOST_ATTEMPTS {
            say(&mut log, "the TCG test host's kernel crashed (infrastructure, not iovmm); retrying the scenario once");
            attempt += 1;
            continue;
        }
        break result;
    };
    let _ = std::fs::remove_dir_all(&setup.work);
    let elapsed = t0.elapsed();
    if let Err(e) = &result {
        say(&mut log, &format!("error: {e}"));
    }
    if let Ok(b) = &result {
        if b.captured.timed_out {
            say(
                &mut log,
                &format!("TIMEOUT after {} s; killed", timeout.as_secs()),
            );
        }
    }

    let facts = facts_from(sc, &result, timeout);
    let v = verdict::judge(&facts);
    for c in &v.cases {
        let tag = match &c.outcome {
            junit::CaseOutcome::Pass => "PASS".to_string(),
            junit::CaseOutcome::Skip { message } => format!("SKIP ({message})"),
            junit::CaseOutcome::Fail { message, .. } => format!("FAIL ({message})"),
        };
        say(&mut log, &format!("{:<12} {tag}", display_name(sc.name, c)));
    }
    if let Some(path) = &opts.junit {
        let suite = v.suite(
            sc.name,
            elapsed.as_secs_f64(),
            Some(format!("{mode_line}\nlog: {}", log_path.display())),
        );
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(path, junit::render(&[suite])) {
            Ok(()) => say(&mut log, &format!("JUnit written to {}", path.display())),
            Err(e) => say(
                &mut log,
                &format!("error: cannot write {}: {e}", path.display()),
            ),
        }
    }
    let summary = v.summary();
    if let Some(l) = log.as_mut() {
        let _ = writeln!(l, "{summary}");
    }
    println!("{summary}");
    if v.ok() {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::exec::{Captured, Line};

    #[test]
    fn facts_from_a_boot() {
        let sc = scenario::find("boot").unwrap();
        let lines = [
            "KTAP version 1",
            "1..8",
            "ok 1 cpus",
            "iovmm: guest exit status 1",
        ];
        let b = BootRun {
            captured: Captured {
                lines: lines
                    .iter()
                    .map(|t| Line {
                        at: Duration::ZERO,
                        stderr: false,
                        text: t.to_string(),
                    })
                    .collect(),
                code: Some(1),
                timed_out: false,
                elapsed: Duration::from_secs(1),
            },
            vmm_status: Some(1),
            vmm_start: Some(Duration::ZERO),
            vmm_end: Some(Duration::from_secs(1)),
        };
        let f = facts_from(sc, &Ok(b), Duration::from_secs(30));
        assert_eq!(f.ktap.results.len(), 1);
        assert_eq!(f.vmm_status, Some(1));
        assert_eq!(f.vmm_messages, vec!["iovmm: guest exit status 1"]);
        let v = verdict::judge(&f);
        assert_eq!(v.passed, 1);
        assert_eq!(v.failed, 8); // seven missing results + the run case (status 1 but nothing failed)

        let f = facts_from(sc, &Err("missing bzImage".into()), Duration::from_secs(30));
        assert_eq!(f.setup_error.as_deref(), Some("missing bzImage"));
    }

    #[test]
    fn unknown_scenario_is_a_usage_error() {
        let o = RunOptions {
            scenario: "no-such".into(),
            host_mode: HostModeChoice::Tcg,
            paths: Overrides::default(),
            junit: None,
            log: None,
            timeout_secs: None,
        };
        assert_eq!(run(&o), 2);
    }

    #[test]
    fn subtest_cases_are_printed_under_their_test() {
        let case = |classname: &str| junit::Case {
            name: "vfio_pci_device_test.reset".into(),
            classname: classname.into(),
            outcome: junit::CaseOutcome::Pass,
        };
        assert_eq!(
            display_name("s", &case("iovmm.s.vfio_pci_device_test")),
            "vfio_pci_device_test: vfio_pci_device_test.reset"
        );
        assert_eq!(
            display_name("s", &case("iovmm.s")),
            "vfio_pci_device_test.reset"
        );
    }

    #[test]
    fn a_scenario_of_another_kernel_is_refused() {
        let o = RunOptions {
            scenario: "upstream-vfio-legacy".into(),
            host_mode: HostModeChoice::Tcg,
            paths: Overrides::default(), // 6.12
            junit: None,
            log: None,
            timeout_secs: None,
        };
        assert_eq!(run(&o), 2);
        let why = scenario::find("upstream-vfio-legacy")
            .unwrap()
            .refusal(crate::runner::kernels::KernelVersion::V6_12)
            .unwrap();
        assert_eq!(
            why,
            "scenario upstream-vfio-legacy runs only on Linux 7.3 (its tests are that kernel's), not on 6.12; \
             use --kernel-version 7.3"
        );
    }

    #[test]
    fn test_host_crash_is_recognised() {
        let crash = [
            "iovmm-testhost: vmm-start",
            "[    4.8] Oops: int3: 0000 [#2] PREEMPT SMP NOPTI",
            "[    4.8] CPU: 1 UID: 0 PID: 148 Comm: vcpu0 Tainted: G D 6.12.117+deb12-amd64 #1",
        ];
        assert!(testhost_crashed(crash.iter().copied()));
        // A guest panic is the guest's business (its kernel is -iovmm), and a reported exit is not a crash.
        let guest = [
            "[ 1.0] Kernel panic - not syncing: VFS",
            "[ 1.0] CPU: 0 PID: 1 6.12.117-iovmm #1",
        ];
        assert!(!testhost_crashed(guest.iter().copied()));
        let reported = [crash[1], crash[2], "iovmm-testhost: vmm-exit=0"];
        assert!(!testhost_crashed(reported.iter().copied()));
    }
}
