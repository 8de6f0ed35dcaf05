//! Native host mode: run `iovmm run` directly on this machine's /dev/kvm.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::boot::BootRun;
use super::exec::{self, Sink};

/// Arguments of `iovmm run` for one guest.
pub fn vmm_run_args(
    kernel: &str,
    initrd: &str,
    cmdline: &str,
    machine_args: &[String],
    vmm_timeout_secs: u64,
) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "run".into(),
        "--kernel".into(),
        kernel.into(),
        "--initrd".into(),
        initrd.into(),
        "--cmdline".into(),
        cmdline.into(),
    ];
    v.extend(machine_args.iter().cloned());
    v.push("--timeout".into());
    v.push(vmm_timeout_secs.to_string());
    v
}

/// Runs the VMM and returns its output; the VMM start marker is the spawn itself.
pub fn run(
    iovmm: &Path,
    args: &[String],
    timeout: Duration,
    sink: &mut Sink<'_>,
) -> Result<BootRun, String> {
    run_watched(iovmm, args, timeout, sink, &mut |_| None)
}

/// [`run`] with a watcher of the console lines (see [`exec::run_watched`]).
pub fn run_watched(
    iovmm: &Path,
    args: &[String],
    timeout: Duration,
    sink: &mut Sink<'_>,
    watch: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<BootRun, String> {
    let mut cmd = Command::new(iovmm);
    cmd.args(args);
    let captured = exec::run_watched(cmd, timeout, sink, watch)?;
    let end = captured.elapsed;
    Ok(BootRun {
        vmm_status: if captured.timed_out {
            None
        } else {
            captured.code
        },
        vmm_start: Some(Duration::ZERO),
        vmm_end: Some(end),
        captured,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_args_follow_the_cli_contract() {
        let a = vmm_run_args(
            "/k",
            "/i",
            "console=ttyS0 x=y",
            &["--memory".into(), "512".into(), "--cpus".into(), "2".into()],
            90,
        );
        assert_eq!(
            a,
            vec![
                "run",
                "--kernel",
                "/k",
                "--initrd",
                "/i",
                "--cmdline",
                "console=ttyS0 x=y",
                "--memory",
                "512",
                "--cpus",
                "2",
                "--timeout",
                "90"
            ]
        );
    }

    #[test]
    fn status_comes_from_the_process() {
        let r = run(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "echo 'iovmm-guest: userspace up'; exit 1".into(),
            ],
            Duration::from_secs(10),
            &mut Sink {
                echo: false,
                log: None,
            },
        )
        .unwrap();
        assert_eq!(r.vmm_status, Some(1));
        assert!(r.to_userspace().is_some());
        assert!(r.to_exit().is_some());
    }
}
