//! `iovmm-runner peer SCENARIO --peer qemu-kvm`: the scenario's guest (same kernel, initramfs, expectations and
//! command line) under a reference VMM on the *same* KVM: QEMU with `-accel kvm`, natively or inside the TCG test
//! host (its `testhost-qemu.cpio.gz` add-on). It answers "is it iovmm or the world?" for anything a guest kernel
//! does differently under iovmm: a behaviour QEMU/KVM shares in the same test host is the host's.
//!
//! The peer machine is the closest QEMU has: q35, `-cpu host`, the scenario's vCPUs and memory, isa-debug-exit at
//! 0xf4, and for VT-d scenarios `intel-iommu` (interrupt remapping with a split irqchip, caching mode as Linux
//! needs, scalable mode and the address width where the scenario asks). QEMU has no iovmm test device, so the
//! guest runs only the tests that make sense on any machine ([`PEER_TESTS`]); the report is what the guest kernel
//! did: whether it reached userspace, whether it panicked, its warning-level lines, its KTAP results.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::cpio::{concat_archives, CpioWriter};
use super::exec::{self, Captured, Sink};
use super::hostmode::{self, HostMode, HostModeChoice, HostProbe};
use super::ktap;
use super::paths::{Overrides, Setup};
use super::run::default_timeout;
use super::scenario::{self, Scenario};
use super::tcg;
use crate::guest::init::USERSPACE_UP;

/// The reference VMMs the runner knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// QEMU with KVM (Debian's qemu-system-x86).
    #[value(name = "qemu-kvm")]
    QemuKvm,
}

/// The guest tests a peer machine can run (no iovmm devices, a different ACPI/PCI layout).
pub const PEER_TESTS: &[&str] = &["cpus", "kernel-log"];

/// The test-host add-on with QEMU (images/build-testhost-qemu.sh).
pub const TESTHOST_QEMU: &str = "testhost-qemu.cpio.gz";
/// QEMU inside the test host.
pub const HOST_QEMU: &str = "/usr/bin/qemu-system-x86_64";

#[derive(Clone, Debug)]
pub struct PeerOptions {
    pub scenario: String,
    pub peer: Peer,
    pub host_mode: HostModeChoice,
    pub paths: Overrides,
    pub timeout_secs: Option<u64>,
}

/// The guest command line of a peer run: the scenario's, with only [`PEER_TESTS`].
pub fn peer_cmdline(sc: &Scenario) -> String {
    let mut parts = vec![
        scenario::BASE_CMDLINE.to_string(),
        format!("iovmm.scenario={}-peer", sc.name),
        format!("iovmm.tests={}", PEER_TESTS.join(",")),
    ];
    parts.extend(sc.cmdline_extra.iter().map(|s| s.to_string()));
    parts.join(" ")
}

/// The value of `key=` in an `--iommu` option string.
fn option<'a>(options: &'a str, key: &str) -> Option<&'a str> {
    options
        .split(',')
        .filter_map(|o| o.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// QEMU's `intel-iommu` device for a VT-d scenario's options (QEMU 7.2 property names), or `None` when the
/// scenario has no VT-d unit. QEMU's unit has no nesting and no first stage: the closest is its second stage.
pub fn intel_iommu_device(sc: &Scenario) -> Option<String> {
    let i = sc.vmm_args.iter().position(|a| *a == "--iommu")?;
    let opts = sc.vmm_args.get(i + 1)?;
    if !opts.starts_with("vtd") {
        return None;
    }
    let mut dev = vec!["intel-iommu".to_string(), "caching-mode=on".to_string()];
    let ir = option(opts, "ir") != Some("off");
    dev.push(format!("intremap={}", if ir { "on" } else { "off" }));
    if ir {
        let eim = option(opts, "eim") != Some("off");
        dev.push(format!("eim={}", if eim { "on" } else { "off" }));
    }
    if option(opts, "sm") != Some("off") {
        dev.push("x-scalable-mode=on".into());
    }
    // QEMU offers 39 and 48 bits.
    let aw = if option(opts, "aw") == Some("39") {
        39
    } else {
        48
    };
    dev.push(format!("aw-bits={aw}"));
    Some(dev.join(","))
}

/// QEMU's arguments for the peer boot of `sc` with `kernel`, `initrd` and `cmdline`.
pub fn qemu_args(sc: &Scenario, kernel: &str, initrd: &str, cmdline: &str) -> Vec<String> {
    let iommu = intel_iommu_device(sc);
    let machine = if iommu.is_some() {
        "q35,kernel-irqchip=split"
    } else {
        "q35"
    };
    let mut v: Vec<String> = [
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-M",
        machine,
        "-smp",
        &sc.cpus.to_string(),
        "-m",
        &sc.memory_mib.to_string(),
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        kernel,
        "-initrd",
        initrd,
        "-append",
        cmdline,
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(dev) = iommu {
        v.extend(["-device".to_string(), dev]);
    }
    v
}

/// The test host's run.sh for a peer boot.
pub fn run_script(args: &[String]) -> String {
    let cmd: Vec<String> = std::iter::once(HOST_QEMU.to_string())
        .chain(args.iter().map(|a| tcg::shell_quote(a)))
        .collect();
    format!(
        "#!/bin/sh\n\
         # Generated by iovmm-runner peer: the scenario's guest under QEMU/KVM inside the TCG test host.\n\
         echo '{start}'\n\
         {} 2>{err}\n\
         status=$?\n\
         cat {err}\n\
         echo \"{exit}$status\"\n\
         exit 0\n",
        cmd.join(" "),
        start = tcg::VMM_START,
        err = tcg::HOST_STDERR,
        exit = tcg::VMM_EXIT,
    )
}

/// What the peer's guest did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerReport {
    pub reached_userspace: bool,
    /// The guest kernel's panic line, if it panicked.
    pub panic: Option<String>,
    /// Kernel lines that report a warning or worse on the console (`WARNING:`, `XSAVE`, `BUG:`, `Oops`), and the
    /// `kernel-log` test's list of warning-level records.
    pub warnings: Vec<String>,
    /// `name: ok|not ok|skip` for each KTAP result.
    pub results: Vec<String>,
}

/// Reads the peer's console.
pub fn report<'a>(lines: impl Iterator<Item = &'a str> + Clone) -> PeerReport {
    let clean: Vec<String> = lines.clone().map(ktap::normalize).collect();
    let mut r = PeerReport {
        reached_userspace: clean.iter().any(|l| l.contains(USERSPACE_UP)),
        panic: clean
            .iter()
            .find(|l| l.contains("Kernel panic - not syncing"))
            .cloned(),
        ..Default::default()
    };
    for l in &clean {
        let console_warning = ["WARNING:", "XSAVE", "BUG:", "Oops"]
            .iter()
            .any(|k| l.contains(k));
        // kernel-log's diagnostics list each offending record as "# [time] <level> message".
        let logged = l.starts_with("# [") && (l.contains("<warn>") || l.contains("<err>"));
        if console_warning || logged {
            r.warnings.push(l.clone());
        }
    }
    let parsed = ktap::parse(lines);
    r.results = parsed
        .results
        .iter()
        .map(|t| format!("{}: {:?}", t.name, t.status))
        .collect();
    r
}

fn say(log: &mut Option<std::fs::File>, msg: &str) {
    println!("iovmm-runner: {msg}");
    if let Some(l) = log.as_mut() {
        let _ = writeln!(l, "iovmm-runner: {msg}");
    }
}

/// Boots the peer and returns its console.
fn boot(
    setup: &Setup,
    sc: &Scenario,
    guest_initrd: &Path,
    mode: HostMode,
    timeout: Duration,
    sink: &mut Sink<'_>,
) -> Result<Captured, String> {
    let cmdline = peer_cmdline(sc);
    match mode {
        HostMode::Native => {
            let args = qemu_args(
                sc,
                &setup.kernel.display().to_string(),
                &guest_initrd.display().to_string(),
                &cmdline,
            );
            let mut cmd = Command::new(&setup.qemu);
            cmd.args(args);
            exec::run(cmd, timeout, sink)
        }
        HostMode::Tcg => {
            let qemu_addon = setup.testhost_initrd.with_file_name(TESTHOST_QEMU);
            setup.check(&[&setup.testhost_kernel, &setup.testhost_initrd, &qemu_addon])?;
            let read = |p: &Path| {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            };
            let args = qemu_args(sc, tcg::HOST_KERNEL, tcg::HOST_INITRD, &cmdline);
            let mut w = CpioWriter::new();
            w.dir(tcg::SCENARIO_DIR, 0o755)
                .file("scenario/run.sh", 0o755, run_script(&args).as_bytes())
                .file(tcg::HOST_KERNEL, 0o644, &read(&setup.kernel)?)
                .file(tcg::HOST_INITRD, 0o644, &read(guest_initrd)?);
            let archive = concat_archives(&read(&qemu_addon)?, &w.finish());
            let initrd = setup
                .work
                .join(format!("{}-peer-testhost-initrd.img", sc.name));
            tcg::write_testhost_initrd(&setup.testhost_initrd, &archive, &initrd)?;
            let mut cmd = Command::new(&setup.qemu);
            cmd.args(tcg::qemu_args(
                &setup.testhost_kernel,
                &initrd,
                tcg::testhost_memory_mib(sc.memory_mib),
            ));
            exec::run(cmd, timeout, sink)
        }
    }
}

/// Runs the peer; returns the process exit code (0 when the peer ran to its end, whatever its guest did).
pub fn peer(o: &PeerOptions) -> i32 {
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
    let log_path = setup.root.join(format!(
        "build/logs/{}-{}-peer-{mode}.log",
        sc.name, setup.kernel_version
    ));
    if let Some(dir) = log_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut log = std::fs::File::create(&log_path).ok();
    say(
        &mut log,
        &format!(
            "peer {:?} for scenario {}: kernel {} ({}), tests {}; log {}",
            o.peer,
            sc.name,
            setup.kernel_version,
            setup.kernel.display(),
            PEER_TESTS.join(","),
            log_path.display()
        ),
    );
    let captured = super::boot::prepare(&setup, sc).and_then(|p| {
        let mut sink = Sink {
            echo: true,
            log: log.as_mut().map(|f| f as &mut dyn Write),
        };
        boot(&setup, sc, &p.guest_initrd, mode, timeout, &mut sink)
    });
    let _ = std::fs::remove_dir_all(&setup.work);
    let captured = match captured {
        Ok(c) => c,
        Err(e) => {
            say(&mut log, &format!("error: {e}"));
            return 1;
        }
    };
    let r = report(captured.texts());
    say(
        &mut log,
        &format!(
            "peer guest: reached userspace: {}; panicked: {}",
            if r.reached_userspace { "yes" } else { "no" },
            r.panic.as_deref().unwrap_or("no")
        ),
    );
    for w in &r.warnings {
        say(&mut log, &format!("peer guest warning: {w}"));
    }
    for t in &r.results {
        say(&mut log, &format!("peer guest test {t}"));
    }
    if captured.timed_out {
        say(&mut log, &format!("TIMEOUT after {} s", timeout.as_secs()));
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtd_scenarios_get_intel_iommu() {
        let dev = intel_iommu_device(scenario::find("vtd-legacy").unwrap()).unwrap();
        assert_eq!(
            dev,
            "intel-iommu,caching-mode=on,intremap=on,eim=on,aw-bits=48"
        );
        let dev = intel_iommu_device(scenario::find("vtd-aw39").unwrap()).unwrap();
        assert!(
            dev.contains("x-scalable-mode=on") && dev.ends_with("aw-bits=39"),
            "{dev}"
        );
        assert_eq!(intel_iommu_device(scenario::find("boot").unwrap()), None);
        assert_eq!(intel_iommu_device(scenario::find("smmuv3").unwrap()), None);
        let args = qemu_args(scenario::find("distro-legacy").unwrap(), "/k", "/i", "c");
        let w = |a: &str| args.iter().position(|x| x == a).unwrap();
        assert_eq!(args[w("-M") + 1], "q35,kernel-irqchip=split");
        assert_eq!(args[w("-accel") + 1], "kvm");
        assert!(args.iter().any(|a| a.starts_with("intel-iommu,")));
    }

    #[test]
    fn peer_command_line_keeps_the_scenario_extras() {
        let sc = scenario::find("distro-legacy").unwrap();
        let c = peer_cmdline(sc);
        assert!(c.starts_with("console=ttyS0 reboot=k panic=-1 iovmm.scenario=distro-legacy-peer"));
        assert!(c.contains(" iovmm.tests=cpus,kernel-log "), "{c}");
        assert!(c.ends_with(" intel_iommu=on,sm_off"), "{c}");
    }

    #[test]
    fn report_finds_the_panic_and_warnings() {
        let lines = [
            "[    0.5] XSAVE consistency problem: size 2696 != kernel_size 576",
            "[    0.5] WARNING: arch/x86/kernel/fpu/xstate.c:639 at fpu__init_system_xstate+0x4fd/0xc20",
            "[    0.6] Kernel panic - not syncing: Attempted to kill the idle task!\r",
        ];
        let r = report(lines.iter().copied());
        assert!(!r.reached_userspace);
        assert!(r
            .panic
            .as_deref()
            .unwrap()
            .contains("Attempted to kill the idle task"));
        assert_eq!(r.warnings.len(), 2);
        let ok = [
            "iovmm-guest: userspace up",
            "KTAP version 1",
            "1..2",
            "ok 1 cpus",
            "# [    7.6] <warn> amd_pstate: the _CPC object is not present in SBIOS or ACPI disabled",
            "not ok 2 kernel-log",
        ];
        let r = report(ok.iter().copied());
        assert!(r.reached_userspace && r.panic.is_none());
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.results.len(), 2);
    }

    #[test]
    fn script_reports_and_never_fails_the_host() {
        let s = run_script(&["-accel".into(), "kvm".into()]);
        assert!(s.contains("/usr/bin/qemu-system-x86_64 '-accel' 'kvm' 2>/scenario/iovmm.stderr\n"));
        assert!(s.ends_with("exit 0\n"));
    }
}
