//! Linux 7.3's own VFIO selftests (tools/testing/selftests/vfio), run in the guest against iovmm's devices: one
//! guest test per selftest binary (the binaries come from `/opt/vfio-selftests`, an initramfs fragment built by
//! images/build-vfio-selftests.sh from Debian's linux-source-7.3; the `upstream-vfio-*` scenarios append it).
//!
//! For each binary the guest does what the upstream harness's `scripts/setup.sh` does for the device the binary
//! tests (SR-IOV off, unbind its driver, `driver_override` = vfio-pci, bind), runs the binary with the device's
//! BDF as its argument, echoes its output live (lines prefixed [`ECHO_PREFIX`] and the seconds since the
//! binary started: noise to the runner's KTAP parser, but timing in the log), and turns its kselftest TAP output
//! into subtests of the guest test, one per upstream case with the upstream name (`fixture.variant.test`):
//! `ok` is a pass, `ok ... # SKIP reason` a skip with the upstream reason (never a pass), `not ok` a failure
//! whose diagnostics are the case's output. The guest test itself
//! - fails when any case failed, when the binary's cases do not match its plan, when it died by a signal or
//!   exited non-zero with no failed case to show for it, or when it ran past its time limit;
//! - is skipped when the binary skipped as a whole (`1..0 # SKIP reason`, or exit status 4 before any case:
//!   no SR-IOV on the device, no selftest driver for it), or when every case skipped;
//! - passes otherwise. Its diagnostics say what ran where, how long it took and the counts.
//!
//! Devices: the DMA test device (the description's `iommu.test_device_bdf`) for every binary but
//! `vfio_pci_driver_test`, which drives the I/OAT engine (8086:2021, the selftests' `ioat` driver).

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::context::Context;
use super::report::{Report, Subtest, SubtestOutcome};
use super::vfio::{bind_vfio_pci, current_driver, group_path, wait_for};
use super::{ioat, sys, vfio_cdev};

/// Where the selftest binaries are in the guest.
pub const DIR: &str = "opt/vfio-selftests";
/// Prefix of the live echo of a binary's output on the console.
pub const ECHO_PREFIX: &str = "vfio-selftest: ";
/// kselftest's exit status for "skipped" (`KSFT_SKIP`).
pub const KSFT_SKIP: i32 = 4;
/// At most this many output lines of one failed case become its diagnostics (the last ones).
pub const MAX_CASE_LOG: usize = 40;
/// At most this many output lines become the diagnostics of a binary that failed as a whole (the last ones).
pub const MAX_RUN_LOG: usize = 60;

/// Which device a selftest binary drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// The DMA test device (`expect.iommu.test_device_bdf`).
    TestDevice,
    /// The I/OAT DMA engine (8086:2021): the selftests' `ioat` driver moves data with it.
    Ioat,
}

/// One upstream selftest binary.
#[derive(Clone, Copy, Debug)]
pub struct Selftest {
    /// The binary's name in [`DIR`], also the guest test's name.
    pub binary: &'static str,
    pub device: Device,
    /// Wall-clock limit for the whole binary; past it every process but PID 1 is killed and the test fails.
    /// The kselftest harness has its own per-case limits (30 s, 60 s for memcpy_storm), so this only guards
    /// against a binary that hangs outside a case.
    pub limit: Duration,
}

/// Every binary of the 7.3 selftests Makefile's TEST_GEN_PROGS (images/build-vfio-selftests.sh packs exactly
/// these and checks the Makefile agrees).
pub const SELFTESTS: &[Selftest] = &[
    Selftest {
        binary: "vfio_dma_mapping_test",
        device: Device::TestDevice,
        limit: Duration::from_secs(1800),
    },
    Selftest {
        binary: "vfio_dma_mapping_mmio_test",
        device: Device::TestDevice,
        limit: Duration::from_secs(900),
    },
    Selftest {
        binary: "vfio_iommufd_setup_test",
        device: Device::TestDevice,
        limit: Duration::from_secs(600),
    },
    Selftest {
        binary: "vfio_pci_device_test",
        device: Device::TestDevice,
        limit: Duration::from_secs(600),
    },
    Selftest {
        binary: "vfio_pci_device_init_perf_test",
        device: Device::TestDevice,
        limit: Duration::from_secs(600),
    },
    Selftest {
        binary: "vfio_pci_sriov_uapi_test",
        device: Device::TestDevice,
        limit: Duration::from_secs(900),
    },
    Selftest {
        binary: "vfio_pci_driver_test",
        device: Device::Ioat,
        limit: Duration::from_secs(2400),
    },
];

/// Looks a selftest up by binary name.
pub fn find(binary: &str) -> Option<&'static Selftest> {
    SELFTESTS.iter().find(|s| s.binary == binary)
}

pub fn dma_mapping(ctx: &Context) -> Report {
    run(ctx, "vfio_dma_mapping_test")
}
pub fn dma_mapping_mmio(ctx: &Context) -> Report {
    run(ctx, "vfio_dma_mapping_mmio_test")
}
pub fn iommufd_setup(ctx: &Context) -> Report {
    run(ctx, "vfio_iommufd_setup_test")
}
pub fn pci_device(ctx: &Context) -> Report {
    run(ctx, "vfio_pci_device_test")
}
pub fn pci_device_init_perf(ctx: &Context) -> Report {
    run(ctx, "vfio_pci_device_init_perf_test")
}
pub fn pci_sriov_uapi(ctx: &Context) -> Report {
    run(ctx, "vfio_pci_sriov_uapi_test")
}
pub fn pci_driver(ctx: &Context) -> Report {
    run(ctx, "vfio_pci_driver_test")
}

// --- kselftest TAP ----------------------------------------------------------------------------------------------

/// One case a kselftest binary reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapCase {
    pub number: u32,
    pub name: String,
    pub outcome: SubtestOutcome,
    /// The binary's output between the previous result and this one (`# ...` lines and stderr).
    pub log: Vec<String>,
    /// A kselftest directive other than SKIP (`XFAIL reason`, `XPASS reason`).
    pub note: Option<String>,
}

/// What a kselftest binary printed, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TapRun {
    /// The plan `1..N`.
    pub plan: Option<u32>,
    /// `1..0 # SKIP reason`: the binary skipped as a whole.
    pub skip_all: Option<String>,
    pub cases: Vec<TapCase>,
    /// Output after the last result.
    pub trailing: Vec<String>,
}

/// Splits `name # directive` (kselftest writes `name # SKIP reason`, and `name #  message` for results without
/// a directive).
fn split_directive(tail: &str) -> (&str, Option<&str>) {
    match tail.split_once(" #") {
        Some((name, d)) => (name.trim(), Some(d.trim())),
        None => (tail.trim(), None),
    }
}

/// Parses one result line (`ok N name...` / `not ok N name...`).
fn parse_result(line: &str, next_number: u32) -> Option<(u32, String, bool, Option<String>)> {
    let (ok, tail) = if let Some(t) = line.strip_prefix("ok ") {
        (true, t)
    } else if let Some(t) = line.strip_prefix("not ok ") {
        (false, t)
    } else {
        return None;
    };
    let (body, directive) = split_directive(tail);
    let (number, name) = match body.split_once(' ') {
        Some((n, rest)) => match n.parse::<u32>() {
            Ok(n) => (n, rest.trim().trim_start_matches("- ").to_string()),
            Err(_) => (next_number, body.to_string()),
        },
        None => match body.parse::<u32>() {
            Ok(n) => (n, String::new()),
            Err(_) => (next_number, body.to_string()),
        },
    };
    Some((number, name, ok, directive.map(str::to_string)))
}

/// Parses a kselftest binary's combined stdout/stderr.
pub fn parse_tap<S: AsRef<str>>(lines: &[S]) -> TapRun {
    let mut run = TapRun::default();
    let mut log: Vec<String> = Vec::new();
    for raw in lines {
        let line = raw.as_ref().trim_end_matches(['\r', '\n']);
        if line.starts_with("TAP version ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("1..") {
            let (count, directive) = split_directive(rest);
            if let Ok(n) = count.parse::<u32>() {
                if run.plan.is_none() {
                    run.plan = Some(n);
                }
                if let Some(reason) = directive.and_then(skip_reason) {
                    run.skip_all = Some(reason);
                }
                continue;
            }
        }
        let next = run.cases.len() as u32 + 1;
        let Some((number, name, ok, directive)) = parse_result(line, next) else {
            if !line.trim().is_empty() {
                log.push(line.to_string());
            }
            continue;
        };
        let upper = directive.as_deref().unwrap_or("").to_ascii_uppercase();
        let (outcome, note) = if let Some(reason) = directive.as_deref().and_then(skip_reason) {
            (SubtestOutcome::Skip(reason), None)
        } else if !ok {
            (SubtestOutcome::Fail, None)
        } else if upper.starts_with("XFAIL") || upper.starts_with("XPASS") {
            // The harness counts both as passed (`__test_passed`); say which it was.
            (SubtestOutcome::Pass, directive.clone())
        } else {
            (SubtestOutcome::Pass, None)
        };
        let mut log = std::mem::take(&mut log);
        // `not ok N name #  message`: the message is the failure's first word.
        if !ok {
            if let Some(d) = directive.filter(|d| !d.is_empty()) {
                log.push(d);
            }
        }
        run.cases.push(TapCase {
            number,
            name,
            outcome,
            log,
            note,
        });
    }
    run.trailing = log;
    run
}

/// The reason of a `SKIP` directive (`SKIP`, `SKIP reason`, any case), `None` for other directives.
fn skip_reason(directive: &str) -> Option<String> {
    let upper = directive.to_ascii_uppercase();
    if !upper.starts_with("SKIP") {
        return None;
    }
    let reason = directive[4..].trim();
    Some(if reason.is_empty() {
        "skipped (no reason given)".to_string()
    } else {
        reason.to_string()
    })
}

// --- Running a binary -------------------------------------------------------------------------------------------

/// How a binary ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Killed by us past its limit.
    TimedOut,
}

impl Exit {
    /// From a `waitpid` status.
    fn from_wait_status(status: i32) -> Self {
        if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(-1)
        }
    }

    fn describe(&self) -> String {
        match self {
            Exit::Code(c) => format!("exit status {c}"),
            Exit::Signal(s) => format!("killed by signal {s}"),
            Exit::TimedOut => "killed: past its time limit".to_string(),
        }
    }
}

/// A finished binary: everything it printed (stdout and stderr, in order) and how it ended.
#[derive(Clone, Debug)]
pub struct Output {
    pub lines: Vec<String>,
    pub exit: Exit,
    pub elapsed: Duration,
}

/// Starts `program args` in a process group of its own with stdin on /dev/null and stdout and stderr on `out`.
///
/// By hand (fork + execv) rather than with `std::process::Command`: a static binary cannot use posix_spawn
/// there, and std's fork path needs an AF_UNIX socket pair, which our guest kernels (CONFIG_NET without
/// CONFIG_UNIX) do not have.
fn spawn(program: &Path, args: &[String], out: &OwnedFd) -> Result<libc::pid_t, String> {
    let c = |s: &[u8]| {
        CString::new(s).map_err(|_| format!("NUL in argument {:?}", String::from_utf8_lossy(s)))
    };
    let prog = c(program.as_os_str().as_bytes())?;
    let mut argv_c = vec![prog.clone()];
    for a in args {
        argv_c.push(c(a.as_bytes())?);
    }
    let mut argv: Vec<*const libc::c_char> = argv_c.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let devnull =
        std::fs::File::open("/dev/null").map_err(|e| format!("cannot open /dev/null: {e}"))?;
    let (null_fd, out_fd) = (devnull.as_raw_fd(), out.as_raw_fd());
    // SAFETY: fork() duplicates this process; the child only makes async-signal-safe calls (setpgid, dup2,
    // execv, _exit) on fds and pointers prepared above, which stay valid in the child's copy of our memory.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above; `argv` is a NULL-terminated array of NUL-terminated strings.
        unsafe {
            libc::setpgid(0, 0);
            libc::dup2(null_fd, 0);
            libc::dup2(out_fd, 1);
            libc::dup2(out_fd, 2);
            libc::execv(prog.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    Ok(pid)
}

/// Waits for child `pid`; its `waitpid` status.
fn wait(pid: libc::pid_t) -> Result<i32, String> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local integer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(status);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waitpid({pid}): {err}"));
        }
    }
}

/// Runs `program args` with stdout and stderr on one pipe, handing each line to `echo` (with the time since the
/// start) as it arrives. Past `limit` the binary is killed: as PID 1 (the guest) every other process, since the
/// kselftest harness puts each case in a process group of its own; elsewhere the binary's own group.
pub fn run_binary(
    program: &Path,
    args: &[String],
    limit: Duration,
    echo: &mut dyn FnMut(Duration, &str),
) -> Result<Output, String> {
    let (reader, writer) = std::io::pipe()
        .map_err(|e| format!("cannot create a pipe for {}: {e}", program.display()))?;
    let start = Instant::now();
    let pid = spawn(program, args, &OwnedFd::from(writer))
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    // (The write end was dropped above: only the child holds it now, so the reader sees the end.)
    let (tx, rx) = mpsc::channel::<String>();
    let thread = std::thread::Builder::new()
        .name("selftest-output".into())
        .spawn(move || {
            let mut r = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        if tx
                            .send(line.trim_end_matches(['\n', '\r']).to_string())
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the output reader: {e}"))?;
    let mut lines = Vec::new();
    let mut timed_out = false;
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(line) => {
                echo(start.elapsed(), &line);
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if start.elapsed() >= limit {
                    timed_out = true;
                    kill_everything_but_us(pid);
                    break;
                }
            }
        }
    }
    let status = wait(pid)?;
    if timed_out {
        // Whatever the killed processes still had in the pipe.
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            echo(start.elapsed(), &line);
            lines.push(line);
        }
    } else {
        let _ = thread.join();
    }
    let elapsed = start.elapsed();
    reap_orphans();
    Ok(Output {
        lines,
        exit: if timed_out {
            Exit::TimedOut
        } else {
            Exit::from_wait_status(status)
        },
        elapsed,
    })
}

/// SIGKILL for every process but PID 1 when we are PID 1 (the guest's init: the only other processes are the
/// selftest's), else for the process group of `pid`.
fn kill_everything_but_us(pid: libc::pid_t) {
    // SAFETY: getpid and kill take plain integers; kill(-1, ..) from PID 1 signals every process except PID 1.
    unsafe {
        if libc::getpid() == 1 {
            libc::kill(-1, libc::SIGKILL);
        } else {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// As PID 1, collects the exit status of orphans the selftest left (reparented to init), without blocking.
fn reap_orphans() {
    // SAFETY: getpid takes no arguments.
    if unsafe { libc::getpid() } != 1 {
        return;
    }
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local integer; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

// --- Device setup (scripts/setup.sh) ----------------------------------------------------------------------------

/// The BDF of the device `device` in the machine description.
pub fn device_bdf(ctx: &Context, device: Device) -> Result<String, String> {
    match device {
        Device::TestDevice => {
            let expect = ctx
                .expect
                .as_ref()
                .map_err(|e| format!("no expectations: {e}"))?;
            let iommu = expect
                .iommu
                .as_ref()
                .ok_or("the description has no IOMMU (the selftests need one)")?;
            Ok(iommu.test_device_bdf.clone())
        }
        Device::Ioat => ioat::find(ctx),
    }
}

/// What the upstream `scripts/setup.sh` does for `bdf`: SR-IOV off, unbind the current driver, driver_override
/// vfio-pci and bind; then waits for the VFIO group and cdev nodes. Returns what it did, for the diagnostics.
pub fn prepare_device(ctx: &Context, bdf: &str) -> Result<Vec<String>, String> {
    let sys = ctx.path("sys");
    let dev = sys.join("bus/pci/devices").join(bdf);
    if !dev.is_dir() {
        return Err(format!("no PCI function {bdf} in sysfs"));
    }
    let mut notes = Vec::new();
    let numvfs = dev.join("sriov_numvfs");
    if let Ok(n) = std::fs::read_to_string(&numvfs) {
        if n.trim() != "0" {
            std::fs::write(&numvfs, "0")
                .map_err(|e| format!("cannot write 0 to {}: {e}", numvfs.display()))?;
            notes.push(format!("sriov_numvfs {} -> 0", n.trim()));
        }
    }
    let before = current_driver(&dev);
    bind_vfio_pci(&sys, bdf)?;
    notes.push(match before.as_deref() {
        Some("vfio-pci") => "already bound to vfio-pci".to_string(),
        Some(d) => format!("unbound from {d}, bound to vfio-pci"),
        None => "bound to vfio-pci".to_string(),
    });
    let dev_root = ctx.path("dev");
    let nodes = [
        group_path(&sys, &dev_root, bdf)?,
        vfio_cdev::cdev_path(&sys, &dev_root, bdf)?,
    ];
    for node in &nodes {
        wait_for(node, Duration::from_secs(10))?;
    }
    Ok(notes)
}

/// The huge pages the kernel has (size in KiB, count), for the diagnostics.
fn hugepages(ctx: &Context) -> Vec<(u64, u64)> {
    let Ok(entries) = std::fs::read_dir(ctx.path("sys/kernel/mm/hugepages")) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, u64)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kib = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let n = std::fs::read_to_string(e.path().join("nr_hugepages")).ok()?;
            Some((kib, n.trim().parse().ok()?))
        })
        .collect();
    out.sort();
    out
}

// --- The guest test ---------------------------------------------------------------------------------------------

/// The last `n` of `lines`, with a note of how many were left out.
fn last_lines(lines: &[String], n: usize) -> Vec<String> {
    if lines.len() <= n {
        return lines.to_vec();
    }
    let mut out = vec![format!(
        "... ({} earlier lines in the log)",
        lines.len() - n
    )];
    out.extend_from_slice(&lines[lines.len() - n..]);
    out
}

/// Turns a finished binary into the guest test's report (see the module documentation for the rules).
pub fn judge(binary: &str, bdf: &str, out: &Output) -> Report {
    let tap = parse_tap(&out.lines);
    let mut r = Report::new();
    r.subtests = tap
        .cases
        .iter()
        .map(|c| {
            let mut diagnostics = Vec::new();
            if let Some(note) = &c.note {
                diagnostics.push(format!("kselftest directive: {note}"));
            }
            if c.outcome == SubtestOutcome::Fail {
                diagnostics.extend(last_lines(&c.log, MAX_CASE_LOG));
            }
            Subtest {
                name: c.name.clone(),
                outcome: c.outcome.clone(),
                diagnostics,
            }
        })
        .collect();
    let (passed, failed, skipped) = r.subtest_counts();
    r.diag(format!(
        "{binary} {bdf}: {} after {:.1} s; {} cases: {passed} passed, {failed} failed, {skipped} skipped",
        out.exit.describe(),
        out.elapsed.as_secs_f64(),
        tap.cases.len()
    ));
    let whole_output = || last_lines(&out.lines, MAX_RUN_LOG);
    if tap.cases.is_empty() {
        let skipped_whole = tap.skip_all.clone().or_else(|| {
            (out.exit == Exit::Code(KSFT_SKIP)).then(|| {
                tap.trailing
                    .iter()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .cloned()
                    .unwrap_or_else(|| "exit status 4 (KSFT_SKIP), no reason printed".to_string())
            })
        });
        match skipped_whole {
            Some(reason) if matches!(out.exit, Exit::Code(0) | Exit::Code(KSFT_SKIP)) => {
                // Everything the binary said about it (e.g. its usage text) stays in the log.
                r.skip(reason);
            }
            _ => {
                r.fail(format!(
                    "{binary} reported no case ({})",
                    out.exit.describe()
                ));
                r.fail_all(whole_output());
            }
        }
        return r;
    }
    if failed > 0 {
        let names: Vec<&str> = r
            .subtests
            .iter()
            .filter(|s| s.outcome == SubtestOutcome::Fail)
            .map(|s| s.name.as_str())
            .collect();
        r.fail(format!("failed: {}", names.join(", ")));
    }
    if let Some(plan) = tap.plan {
        if plan as usize != tap.cases.len() {
            r.fail(format!(
                "{binary} planned {plan} cases and reported {}",
                tap.cases.len()
            ));
        }
    } else {
        r.fail(format!("{binary} printed no plan line"));
    }
    match out.exit {
        Exit::Code(0) => {}
        Exit::Code(c) if failed > 0 && c == 1 => {}
        _ => {
            r.fail(format!(
                "{binary}: {} with {failed} failed cases",
                out.exit.describe()
            ));
            r.fail_all(whole_output());
        }
    }
    if !r.failed && passed == 0 && skipped > 0 {
        r.skip(format!("all {skipped} cases skipped"));
    }
    r
}

/// Runs one selftest binary against its device and reports its cases.
pub fn run(ctx: &Context, binary: &str) -> Report {
    let Some(test) = find(binary) else {
        return Report::failure(format!("{binary} is not a known VFIO selftest"));
    };
    let program = ctx.path(DIR).join(binary);
    if !program.is_file() {
        return Report::failure(format!(
            "{} missing: the scenario's guest initramfs lacks vfio-selftests.cpio.gz \
             (images/build-vfio-selftests.sh)",
            program.display()
        ));
    }
    let bdf = match device_bdf(ctx, test.device) {
        Ok(b) => b,
        Err(e) => return Report::failure(e),
    };
    let notes = match prepare_device(ctx, &bdf) {
        Ok(n) => n,
        Err(e) => return Report::failure(format!("setting {bdf} up for VFIO: {e}")),
    };
    let mut setup = format!("{bdf}: {}", notes.join(", "));
    let pages = hugepages(ctx);
    if !pages.is_empty() {
        let list: Vec<String> = pages
            .iter()
            .map(|(kib, n)| format!("{n} x {} MiB", kib / 1024))
            .collect();
        setup.push_str(&format!("; huge pages {}", list.join(", ")));
    }
    if let Ok(v) = std::fs::read_to_string(ctx.path(DIR).join("VERSION")) {
        setup.push_str(&format!("; built from {}", v.trim()));
    }
    sys::out(&format!("{ECHO_PREFIX}{binary}: {setup}"));
    let mut echo = |t: Duration, line: &str| {
        sys::out(&format!("{ECHO_PREFIX}[{:8.3}] {line}", t.as_secs_f64()));
    };
    let out = match run_binary(&program, std::slice::from_ref(&bdf), test.limit, &mut echo) {
        Ok(o) => o,
        Err(e) => return Report::failure(e),
    };
    let mut r = judge(binary, &bdf, &out);
    r.diagnostics.insert(0, setup);
    if out.exit == Exit::TimedOut {
        r.fail(format!(
            "{binary} ran past its limit of {} s and was killed",
            test.limit.as_secs()
        ));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    fn output(text: &str, exit: Exit) -> Output {
        Output {
            lines: lines(text),
            exit,
            elapsed: Duration::from_millis(1500),
        }
    }

    /// What a kselftest-harness binary prints (shape of 7.3's vfio_pci_device_test with a failure added).
    const HARNESS_RUN: &str = "\
TAP version 13
1..4
# Starting 4 tests from 2 test cases.
#  RUN           vfio_pci_device_test.config_space_read_write ...
Vendor: 1b36, Device: 0005
#            OK  vfio_pci_device_test.config_space_read_write
ok 1 vfio_pci_device_test.config_space_read_write
#  RUN           vfio_pci_device_test.reset ...
#      SKIP      Device does not support reset

#            OK  vfio_pci_device_test.reset
ok 2 vfio_pci_device_test.reset # SKIP Device does not support reset

#  RUN           vfio_pci_irq_test.msi.enable_trigger_disable ...
vfio_pci_device.c:60: Assertion failure
  ioctl(device->fd, VFIO_DEVICE_SET_IRQS, irq) failed: Invalid argument
# vfio_pci_irq_test.msi.enable_trigger_disable: Test terminated by assertion
#          FAIL  vfio_pci_irq_test.msi.enable_trigger_disable
not ok 3 vfio_pci_irq_test.msi.enable_trigger_disable
ok 4 vfio_pci_irq_test.msix.enable_trigger_disable # XFAIL known
# FAILED: 3 / 4 tests passed.
# Totals: pass:2 fail:1 xfail:1 xpass:0 skip:1 error:0
";

    #[test]
    fn harness_output_becomes_cases() {
        let tap = parse_tap(&lines(HARNESS_RUN));
        assert_eq!(tap.plan, Some(4));
        assert_eq!(tap.skip_all, None);
        let got: Vec<(u32, &str, &SubtestOutcome)> = tap
            .cases
            .iter()
            .map(|c| (c.number, c.name.as_str(), &c.outcome))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    1,
                    "vfio_pci_device_test.config_space_read_write",
                    &SubtestOutcome::Pass
                ),
                (
                    2,
                    "vfio_pci_device_test.reset",
                    &SubtestOutcome::Skip("Device does not support reset".into())
                ),
                (
                    3,
                    "vfio_pci_irq_test.msi.enable_trigger_disable",
                    &SubtestOutcome::Fail
                ),
                (
                    4,
                    "vfio_pci_irq_test.msix.enable_trigger_disable",
                    &SubtestOutcome::Pass
                ),
            ]
        );
        assert!(tap.cases[2]
            .log
            .iter()
            .any(|l| l.contains("VFIO_DEVICE_SET_IRQS") && l.contains("Invalid argument")));
        assert_eq!(tap.cases[3].note.as_deref(), Some("XFAIL known"));
        assert!(tap.trailing.iter().any(|l| l.starts_with("# Totals:")));
    }

    #[test]
    fn a_failed_case_fails_the_test_and_keeps_its_output() {
        let r = judge(
            "vfio_pci_device_test",
            "0000:00:03.0",
            &output(HARNESS_RUN, Exit::Code(1)),
        );
        assert!(!r.passed());
        assert_eq!(r.skip, None);
        assert_eq!(r.subtest_counts(), (2, 1, 1));
        assert!(r.diagnostics[0]
            .contains("exit status 1 after 1.5 s; 4 cases: 2 passed, 1 failed, 1 skipped"));
        assert!(r
            .diagnostics
            .iter()
            .any(|d| d == "failed: vfio_pci_irq_test.msi.enable_trigger_disable"));
        let failed = &r.subtests[2];
        assert!(failed
            .diagnostics
            .iter()
            .any(|d| d.contains("Assertion failure")));
        // A skip is reported as a skip with the upstream reason, never as a pass; a pass carries no output.
        assert_eq!(
            r.subtests[1].outcome,
            SubtestOutcome::Skip("Device does not support reset".into())
        );
        assert!(r.subtests[0].diagnostics.is_empty());
        assert_eq!(
            r.subtests[3].diagnostics,
            vec!["kselftest directive: XFAIL known"]
        );
    }

    #[test]
    fn passes_and_skips_pass_the_test() {
        let text = "TAP version 13\n1..2\nok 1 a.b\nok 2 a.c # SKIP BAR too small (size=0x1000)\n";
        let r = judge("t", "0000:00:03.0", &output(text, Exit::Code(0)));
        assert!(r.passed());
        assert_eq!(r.skip, None);
        assert_eq!(r.subtest_counts(), (1, 0, 1));
        // Every case skipped: the test is a skip, not a pass.
        let text = "TAP version 13\n1..1\nok 1 a.c # SKIP no\n";
        let r = judge("t", "0000:00:03.0", &output(text, Exit::Code(0)));
        assert!(r.passed());
        assert_eq!(r.skip.as_deref(), Some("all 1 cases skipped"));
    }

    #[test]
    fn a_binary_that_skips_as_a_whole_is_a_skip_with_its_reason() {
        // ksft_exit_skip() before any case (vfio_pci_sriov_uapi_test on a PF without SR-IOV).
        let text = "1..0 # SKIP SR-IOV may not be supported by the PF: 0000:00:03.0\n";
        let r = judge(
            "vfio_pci_sriov_uapi_test",
            "0000:00:03.0",
            &output(text, Exit::Code(4)),
        );
        assert!(r.passed());
        assert_eq!(
            r.skip.as_deref(),
            Some("SR-IOV may not be supported by the PF: 0000:00:03.0")
        );
        assert!(r.subtests.is_empty());
        // Exit status 4 with only a message (vfio_pci_driver_test without a selftest driver for the device).
        let text = "No driver found for device 0000:00:06.0\n";
        let r = judge(
            "vfio_pci_driver_test",
            "0000:00:06.0",
            &output(text, Exit::Code(4)),
        );
        assert_eq!(
            r.skip.as_deref(),
            Some("No driver found for device 0000:00:06.0")
        );
    }

    #[test]
    fn crashes_and_inconsistencies_fail() {
        // No case and a failing status.
        let r = judge("t", "b", &output("Segmentation fault\n", Exit::Signal(11)));
        assert!(!r.passed());
        assert!(r
            .diagnostics
            .iter()
            .any(|d| d.contains("reported no case (killed by signal 11)")));
        assert!(r.diagnostics.iter().any(|d| d == "Segmentation fault"));
        // Fewer cases than planned (the binary died half-way), even with a clean status.
        let r = judge("t", "b", &output("1..3\nok 1 a\n", Exit::Code(0)));
        assert!(!r.passed());
        assert!(r
            .diagnostics
            .iter()
            .any(|d| d.contains("planned 3 cases and reported 1")));
        // A non-zero status with every case passing.
        let r = judge("t", "b", &output("1..1\nok 1 a\n", Exit::Code(1)));
        assert!(!r.passed());
        // Killed past the limit.
        let r = judge("t", "b", &output("1..1\nok 1 a\n", Exit::TimedOut));
        assert!(!r.passed());
        // A skip-all line with a failing status is no skip.
        let r = judge("t", "b", &output("1..0 # SKIP x\n", Exit::Code(1)));
        assert!(!r.passed() && r.skip.is_none());
    }

    #[test]
    fn run_binary_collects_both_streams_in_order_and_the_status() {
        let mut seen = Vec::new();
        let out = run_binary(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "echo one; echo two >&2; printf 'no newline'; exit 3".into(),
            ],
            Duration::from_secs(20),
            &mut |_, l| seen.push(l.to_string()),
        )
        .unwrap();
        assert_eq!(out.lines, vec!["one", "two", "no newline"]);
        assert_eq!(seen, out.lines);
        assert_eq!(out.exit, Exit::Code(3));
    }

    #[test]
    fn run_binary_kills_past_the_limit() {
        let t0 = Instant::now();
        let out = run_binary(
            Path::new("/bin/sh"),
            &["-c".into(), "echo start; sleep 30; echo never".into()],
            Duration::from_millis(500),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(out.exit, Exit::TimedOut);
        assert_eq!(out.lines, vec!["start"]);
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn every_selftest_is_a_guest_test_and_the_build_script_packs_them() {
        for t in SELFTESTS {
            assert!(
                crate::guest::registry::find(t.binary).is_some(),
                "{} is not a guest test",
                t.binary
            );
        }
        // images/build-vfio-selftests.sh packs exactly these binaries.
        let script = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/build-vfio-selftests.sh"),
        )
        .unwrap();
        let list = script
            .split_once("BINARIES=(\n")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(l, _)| l)
            .expect("BINARIES=( ... ) in the build script");
        let mut packed: Vec<&str> = list.split_whitespace().collect();
        packed.sort();
        let mut ours: Vec<&str> = SELFTESTS.iter().map(|t| t.binary).collect();
        ours.sort();
        assert_eq!(packed, ours);
        assert_eq!(
            SELFTESTS
                .iter()
                .filter(|t| t.device == Device::Ioat)
                .count(),
            1
        );
        assert_eq!(find("vfio_pci_driver_test").unwrap().device, Device::Ioat);
    }

    #[test]
    fn a_missing_binary_fails_with_the_build_hint() {
        let ctx = Context {
            root: PathBuf::from("/nonexistent-guest-root"),
            expect: Err("no expect.json".into()),
            scenario: "upstream-vfio-legacy".into(),
        };
        let r = run(&ctx, "vfio_pci_device_test");
        assert!(!r.passed());
        assert!(r.diagnostics[0].contains("/opt/vfio-selftests/vfio_pci_device_test missing"));
        assert!(
            r.diagnostics[0].contains("build-vfio-selftests.sh"),
            "{:?}",
            r.diagnostics
        );
    }
}
