//! One guest boot in either host mode: prepare the inputs, run, and time the markers.

use std::path::PathBuf;
use std::time::Duration;

use firmware_tables::description::MachineDescription;

use super::exec::{Captured, Sink};
use super::hostmode::HostMode;
use super::paths::{elf_is_dynamic, Setup};
use super::scenario::Scenario;
use super::{expect, monitor, native, tcg};
use crate::guest::init::USERSPACE_UP;

/// The output of one boot plus where the VMM started and ended (relative to the child's spawn).
#[derive(Clone, Debug)]
pub struct BootRun {
    pub captured: Captured,
    /// The VMM's exit status; `None` when unknown (timeout, test host never reported).
    pub vmm_status: Option<i32>,
    pub vmm_start: Option<Duration>,
    pub vmm_end: Option<Duration>,
}

impl BootRun {
    /// VMM start to the guest's `iovmm-guest: userspace up`.
    pub fn to_userspace(&self) -> Option<Duration> {
        let start = self.vmm_start?;
        Some(self.captured.first(USERSPACE_UP)?.saturating_sub(start))
    }

    /// VMM start to VMM exit.
    pub fn to_exit(&self) -> Option<Duration> {
        Some(self.vmm_end?.saturating_sub(self.vmm_start?))
    }

    /// The VMM's own `iovmm: ...` messages.
    pub fn vmm_messages(&self) -> Vec<String> {
        self.captured
            .lines
            .iter()
            .filter(|l| l.text.contains("iovmm: "))
            .map(|l| l.text.trim_end_matches('\r').to_string())
            .collect()
    }
}

/// A scenario ready to boot: its expectations and the guest initrd that carries them.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub scenario: Scenario,
    pub cmdline: String,
    pub description: MachineDescription,
    pub guest_initrd: PathBuf,
}

/// Runs `iovmm describe` and writes the guest initrd with `/expect.json` into the work directory.
pub fn prepare(setup: &Setup, sc: &Scenario) -> Result<Prepared, String> {
    let mut inputs = vec![setup.iovmm.as_path(), &setup.kernel, &setup.initrd];
    inputs.extend(setup.initrd_extra.iter().map(|p| p.as_path()));
    setup.check(&inputs)?;
    let (json, description) = expect::describe(&setup.iovmm, &sc.machine_args())?;
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let mut base = read(&setup.initrd)?;
    for extra in &setup.initrd_extra {
        base = super::cpio::concat_archives(&base, &read(extra)?);
    }
    std::fs::create_dir_all(&setup.work)
        .map_err(|e| format!("cannot create {}: {e}", setup.work.display()))?;
    let guest_initrd = setup.work.join(format!("{}-initrd.img", sc.name));
    std::fs::write(&guest_initrd, expect::guest_initrd(&base, json.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", guest_initrd.display()))?;
    Ok(Prepared {
        scenario: *sc,
        cmdline: sc.guest_cmdline(),
        description,
        guest_initrd,
    })
}

/// The `--timeout` handed to iovmm: a little less than ours, so the VMM reports its own timeout (124).
pub fn vmm_timeout(total: Duration) -> u64 {
    let t = total.as_secs();
    t.saturating_sub((t / 4).min(60)).max(1)
}

/// Boots the prepared scenario in `mode` with an overall wall-clock `timeout`.
pub fn boot(
    setup: &Setup,
    p: &Prepared,
    mode: HostMode,
    timeout: Duration,
    sink: &mut Sink<'_>,
) -> Result<BootRun, String> {
    let machine = p.scenario.machine_args();
    let inner = match p.scenario.end.and_then(|e| e.vmm_timeout_secs) {
        Some(t) => t.min(vmm_timeout(timeout)),
        None => vmm_timeout(timeout),
    };
    match mode {
        HostMode::Native => {
            let mut args = native::vmm_run_args(
                &setup.kernel.display().to_string(),
                &p.guest_initrd.display().to_string(),
                &p.cmdline,
                &machine,
                inner,
            );
            if !p.scenario.wants_monitor() {
                return native::run(&setup.iovmm, &args, timeout, sink);
            }
            let socket = setup.work.join(format!("{}-monitor.sock", p.scenario.name));
            let _ = std::fs::remove_file(&socket);
            args.extend(["--monitor".to_string(), socket.display().to_string()]);
            native::run_watched(&setup.iovmm, &args, timeout, sink, &mut |line| {
                monitor::answer(&setup.iovmm, &socket, line)
            })
        }
        HostMode::Tcg => {
            setup.check(&[&setup.testhost_kernel, &setup.testhost_initrd])?;
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            };
            let iovmm = read(&setup.iovmm)?;
            if elf_is_dynamic(&iovmm) {
                return Err(format!(
                    "{} is dynamically linked; the test host needs a static build \
                     (RUSTFLAGS='-C target-feature=+crt-static' ... --target x86_64-unknown-linux-gnu)",
                    setup.iovmm.display()
                ));
            }
            let args = native::vmm_run_args(
                tcg::HOST_KERNEL,
                tcg::HOST_INITRD,
                &p.cmdline,
                &machine,
                inner,
            );
            let script = if p.scenario.wants_monitor() {
                tcg::run_script_with_monitor(&args)
            } else {
                tcg::run_script(&args)
            };
            let archive = tcg::scenario_archive(
                &script,
                &iovmm,
                &read(&setup.kernel)?,
                &read(&p.guest_initrd)?,
            );
            let initrd = setup
                .work
                .join(format!("{}-testhost-initrd.img", p.scenario.name));
            tcg::write_testhost_initrd(&setup.testhost_initrd, &archive, &initrd)?;
            tcg::run(
                &setup.qemu,
                &setup.testhost_kernel,
                &initrd,
                tcg::testhost_memory_mib(p.scenario.memory_mib),
                timeout,
                sink,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::exec::Line;

    fn line(at_ms: u64, text: &str) -> Line {
        Line {
            at: Duration::from_millis(at_ms),
            stderr: false,
            text: text.into(),
        }
    }

    #[test]
    fn marker_timing() {
        let r = BootRun {
            captured: Captured {
                lines: vec![
                    line(100, "iovmm-testhost: vmm-start"),
                    line(900, "iovmm-guest: userspace up\r"),
                    line(950, "iovmm: guest exit status 0"),
                ],
                code: Some(0),
                timed_out: false,
                elapsed: Duration::from_secs(2),
            },
            vmm_status: Some(0),
            vmm_start: Some(Duration::from_millis(100)),
            vmm_end: Some(Duration::from_millis(1100)),
        };
        assert_eq!(r.to_userspace(), Some(Duration::from_millis(800)));
        assert_eq!(r.to_exit(), Some(Duration::from_millis(1000)));
        assert_eq!(r.vmm_messages(), vec!["iovmm: guest exit status 0"]);
        let no_start = BootRun {
            vmm_start: None,
            ..r
        };
        assert_eq!(no_start.to_userspace(), None);
    }

    #[test]
    fn inner_timeout_leaves_headroom() {
        assert_eq!(vmm_timeout(Duration::from_secs(600)), 540);
        assert_eq!(vmm_timeout(Duration::from_secs(100)), 75);
        assert_eq!(vmm_timeout(Duration::from_secs(1)), 1);
    }
}
