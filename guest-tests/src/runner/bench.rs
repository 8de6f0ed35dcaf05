//! `iovmm-runner bench-boot`: boot timing of iovmm against plain QEMU TCG, over N runs.
//!
//! iovmm: from the VMM start marker (native: the spawn of `iovmm run`; tcg: run.sh's
//! `iovmm-testhost: vmm-start` line) to the guest's `iovmm-guest: userspace up` line and to the VMM's exit.
//! Reference: the same bzImage and initramfs (with the same /expect.json) under `qemu-system-x86_64 -accel
//! tcg` with isa-debug-exit, from QEMU's spawn. Times are host wall clock at line arrival. Absolute numbers
//! in tcg mode include nested virtualization inside TCG; compare the ratio. Nothing here asserts a time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use super::boot::{self, BootRun, Prepared};
use super::exec::{self, Sink};
use super::hostmode::{self, HostMode, HostModeChoice, HostProbe};
use super::paths::{Overrides, Setup};
use super::run::default_timeout;
use super::scenario;
use crate::guest::init::USERSPACE_UP;

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub scenario: String,
    pub host_mode: HostModeChoice,
    pub runs: u32,
    pub out: Option<PathBuf>,
    pub paths: Overrides,
    pub timeout_secs: Option<u64>,
}

/// Median, min and max of a series, in seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: Vec<f64>,
}

/// Statistics of the present samples; `None` when there are none.
pub fn stats(samples: &[Option<f64>]) -> Option<Stats> {
    let mut v: Vec<f64> = samples.iter().flatten().copied().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Stats {
        median,
        min: v[0],
        max: v[n - 1],
        samples: v,
    })
}

/// One boot's timings and exit status.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    pub to_userspace_s: Option<f64>,
    pub to_exit_s: Option<f64>,
    pub status: Option<i32>,
    pub timed_out: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    pub label: String,
    pub start_marker: String,
    pub to_userspace: Option<Stats>,
    pub to_exit: Option<Stats>,
    pub runs: Vec<Sample>,
}

impl Series {
    pub fn new(label: &str, start_marker: &str, runs: Vec<Sample>) -> Self {
        let up: Vec<Option<f64>> = runs.iter().map(|r| r.to_userspace_s).collect();
        let ex: Vec<Option<f64>> = runs.iter().map(|r| r.to_exit_s).collect();
        Self {
            label: label.to_string(),
            start_marker: start_marker.to_string(),
            to_userspace: stats(&up),
            to_exit: stats(&ex),
            runs,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ratio {
    pub to_userspace: Option<f64>,
    pub to_exit: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    pub scenario: String,
    pub host_mode: String,
    pub host_mode_reason: String,
    pub runs: u32,
    pub iovmm: Series,
    pub qemu_tcg: Series,
    /// iovmm median / QEMU TCG median.
    pub ratio_iovmm_over_qemu: Ratio,
    pub note: String,
}

fn ratio(a: &Option<Stats>, b: &Option<Stats>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
        _ => None,
    }
}

impl BenchReport {
    pub fn new(
        scenario: &str,
        mode_line: &str,
        mode: HostMode,
        runs: u32,
        iovmm: Series,
        qemu: Series,
    ) -> Self {
        let ratio_iovmm_over_qemu = Ratio {
            to_userspace: ratio(&iovmm.to_userspace, &qemu.to_userspace),
            to_exit: ratio(&iovmm.to_exit, &qemu.to_exit),
        };
        let note = match mode {
            HostMode::Tcg => "iovmm ran inside the TCG test host (nested SVM under QEMU TCG); the reference is \
                             QEMU TCG directly on this host. Compare ratios from the same run, not absolute times."
                .to_string(),
            HostMode::Native => "iovmm ran on this host's /dev/kvm; the reference is QEMU TCG on this host.".to_string(),
        };
        Self {
            scenario: scenario.to_string(),
            host_mode: mode.to_string(),
            host_mode_reason: mode_line.to_string(),
            runs,
            iovmm,
            qemu_tcg: qemu,
            ratio_iovmm_over_qemu,
            note,
        }
    }

    /// A readable table.
    pub fn table(&self) -> String {
        let f = |s: &Option<Stats>| match s {
            Some(s) => format!(
                "{:>9.3} {:>9.3} {:>9.3} {:>4}",
                s.median,
                s.min,
                s.max,
                s.samples.len()
            ),
            None => format!("{:>9} {:>9} {:>9} {:>4}", "-", "-", "-", 0),
        };
        let r = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}x"));
        let mut t = String::new();
        t.push_str(&format!(
            "boot timing: scenario {}, {} runs, {}\n",
            self.scenario, self.runs, self.host_mode_reason
        ));
        t.push_str(&format!(
            "{:<34} {:>9} {:>9} {:>9} {:>4}\n",
            "seconds", "median", "min", "max", "n"
        ));
        for (label, s) in [
            (
                format!("{} -> userspace", self.iovmm.label),
                &self.iovmm.to_userspace,
            ),
            (format!("{} -> exit", self.iovmm.label), &self.iovmm.to_exit),
            (
                format!("{} -> userspace", self.qemu_tcg.label),
                &self.qemu_tcg.to_userspace,
            ),
            (
                format!("{} -> exit", self.qemu_tcg.label),
                &self.qemu_tcg.to_exit,
            ),
        ] {
            t.push_str(&format!("{label:<34} {}\n", f(s)));
        }
        t.push_str(&format!(
            "ratio iovmm/qemu (median): userspace {}, exit {}\n",
            r(self.ratio_iovmm_over_qemu.to_userspace),
            r(self.ratio_iovmm_over_qemu.to_exit)
        ));
        t.push_str(&format!("note: {}\n", self.note));
        t
    }
}

/// QEMU's arguments for the reference boot of the same guest.
pub fn reference_qemu_args(
    kernel: &Path,
    initrd: &Path,
    cmdline: &str,
    cpus: u8,
    memory_mib: u32,
) -> Vec<String> {
    [
        "-accel",
        "tcg",
        "-M",
        "q35",
        "-cpu",
        "max",
        "-m",
        &memory_mib.to_string(),
        "-smp",
        &cpus.to_string(),
        "-kernel",
        &kernel.display().to_string(),
        "-initrd",
        &initrd.display().to_string(),
        "-append",
        cmdline,
        "-nographic",
        "-no-reboot",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The guest status behind QEMU's isa-debug-exit code `(status << 1) | 1`.
pub fn debug_exit_status(code: i32) -> Option<i32> {
    (code & 1 == 1).then_some(code >> 1)
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

fn sample_from_boot(b: &BootRun) -> Sample {
    Sample {
        to_userspace_s: secs(b.to_userspace()),
        to_exit_s: secs(b.to_exit()),
        status: b.vmm_status,
        timed_out: b.captured.timed_out,
    }
}

fn reference_run(
    setup: &Setup,
    p: &Prepared,
    timeout: Duration,
    sink: &mut Sink<'_>,
) -> Result<Sample, String> {
    let mut cmd = Command::new(&setup.qemu);
    cmd.args(reference_qemu_args(
        &setup.kernel,
        &p.guest_initrd,
        &p.cmdline,
        p.scenario.cpus,
        p.scenario.memory_mib,
    ));
    let c = exec::run(cmd, timeout, sink)?;
    Ok(Sample {
        to_userspace_s: secs(c.first(USERSPACE_UP)),
        to_exit_s: (!c.timed_out).then_some(c.elapsed.as_secs_f64()),
        status: c.code.and_then(debug_exit_status),
        timed_out: c.timed_out,
    })
}

fn show(label: &str, i: u32, n: u32, s: &Sample) {
    let f = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3} s"));
    println!(
        "{label} run {}/{n}: userspace {}, exit {}, status {}{}",
        i + 1,
        f(s.to_userspace_s),
        f(s.to_exit_s),
        s.status.map_or("-".to_string(), |c| c.to_string()),
        if s.timed_out { " (TIMEOUT)" } else { "" }
    );
}

/// Runs the benchmark; returns the process exit code.
pub fn bench(o: &BenchOptions) -> i32 {
    let Some(sc) = scenario::find(&o.scenario) else {
        eprintln!("iovmm-runner: error: unknown scenario {:?}", o.scenario);
        return 2;
    };
    if let Some(why) = sc.refusal(o.paths.kernel_version) {
        eprintln!("iovmm-runner: error: {why}");
        return 2;
    }
    let (mode, mode_line) = hostmode::resolve(o.host_mode, &HostProbe::read());
    println!("{mode_line}");
    let setup = Setup::resolve(&o.paths, sc);
    let timeout = o
        .timeout_secs
        .map(Duration::from_secs)
        .unwrap_or_else(|| default_timeout(mode));
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| setup.root.join("build/bench/boot-timing.json"));
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let log_path = out.with_extension("log");
    let mut log = std::fs::File::create(&log_path).ok();
    let p = match boot::prepare(&setup, sc) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("iovmm-runner: error: {e}");
            let _ = std::fs::remove_dir_all(&setup.work);
            return 1;
        }
    };
    let runs = o.runs.max(1);
    let label = format!("iovmm ({mode})");
    let mut iovmm_runs = Vec::new();
    for i in 0..runs {
        let mut sink = Sink {
            echo: false,
            log: log.as_mut().map(|f| f as &mut dyn Write),
        };
        let s = match boot::boot(&setup, &p, mode, timeout, &mut sink) {
            Ok(b) => sample_from_boot(&b),
            Err(e) => {
                eprintln!("iovmm-runner: error: {e}");
                Sample::default()
            }
        };
        show(&label, i, runs, &s);
        iovmm_runs.push(s);
    }
    let mut qemu_runs = Vec::new();
    for i in 0..runs {
        let mut sink = Sink {
            echo: false,
            log: log.as_mut().map(|f| f as &mut dyn Write),
        };
        let s = reference_run(&setup, &p, timeout, &mut sink).unwrap_or_else(|e| {
            eprintln!("iovmm-runner: error: {e}");
            Sample::default()
        });
        show("qemu tcg", i, runs, &s);
        qemu_runs.push(s);
    }
    let _ = std::fs::remove_dir_all(&setup.work);
    let start_marker = match mode {
        HostMode::Native => "spawn of iovmm run".to_string(),
        HostMode::Tcg => super::tcg::VMM_START.to_string(),
    };
    let report = BenchReport::new(
        sc.name,
        &mode_line,
        mode,
        runs,
        Series::new(&label, &start_marker, iovmm_runs),
        Series::new("qemu tcg", "spawn of qemu-system-x86_64", qemu_runs),
    );
    let table = report.table();
    print!("{table}");
    let json =
        serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    let txt = out.with_extension("txt");
    for (path, body) in [(&out, json), (&txt, table)] {
        if let Err(e) = std::fs::write(path, body) {
            eprintln!("iovmm-runner: error: cannot write {}: {e}", path.display());
            return 1;
        }
    }
    println!(
        "results: {} and {} (log {})",
        out.display(),
        txt.display(),
        log_path.display()
    );
    let complete = report.iovmm.to_exit.is_some() && report.qemu_tcg.to_exit.is_some();
    if complete {
        0
    } else {
        eprintln!("iovmm-runner: error: some series have no timings (see the log)");
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_median_min_max() {
        let s = stats(&[Some(3.0), None, Some(1.0), Some(2.0)]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = stats(&[Some(4.0), Some(1.0)]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(stats(&[None]).is_none());
    }

    #[test]
    fn debug_exit_codes() {
        assert_eq!(debug_exit_status(1), Some(0));
        assert_eq!(debug_exit_status(3), Some(1));
        assert_eq!(debug_exit_status(0), None);
    }

    #[test]
    fn reference_command() {
        let a = reference_qemu_args(
            Path::new("/bz"),
            Path::new("/rd"),
            "console=ttyS0 x",
            2,
            512,
        );
        assert_eq!(
            a.join(" "),
            "-accel tcg -M q35 -cpu max -m 512 -smp 2 -kernel /bz -initrd /rd -append console=ttyS0 x \
             -nographic -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4"
        );
    }

    #[test]
    fn report_ratio_and_table() {
        let s = |u: f64, e: f64| Sample {
            to_userspace_s: Some(u),
            to_exit_s: Some(e),
            status: Some(0),
            timed_out: false,
        };
        let iovmm = Series::new("iovmm (tcg)", "m", vec![s(4.0, 8.0), s(6.0, 10.0)]);
        let qemu = Series::new("qemu tcg", "spawn", vec![s(2.0, 4.0), s(3.0, 5.0)]);
        let r = BenchReport::new(
            "boot",
            "host mode: tcg (auto: kvm_pvm loaded)",
            HostMode::Tcg,
            2,
            iovmm,
            qemu,
        );
        assert_eq!(r.ratio_iovmm_over_qemu.to_userspace, Some(2.0));
        assert_eq!(r.ratio_iovmm_over_qemu.to_exit, Some(2.0));
        let t = r.table();
        assert!(t.contains("iovmm (tcg) -> userspace"));
        assert!(t.contains("ratio iovmm/qemu (median): userspace 2.00x, exit 2.00x"));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["iovmm"]["to_exit"]["median"], 9.0);
        assert_eq!(j["host_mode"], "tcg");
    }

    #[test]
    fn missing_series_have_no_ratio() {
        let iovmm = Series::new("iovmm (tcg)", "m", vec![Sample::default()]);
        let qemu = Series::new("qemu tcg", "spawn", vec![]);
        let r = BenchReport::new("boot", "x", HostMode::Native, 1, iovmm, qemu);
        assert_eq!(r.ratio_iovmm_over_qemu.to_exit, None);
        assert!(r
            .table()
            .contains("ratio iovmm/qemu (median): userspace -, exit -"));
    }
}
