//! Tests that end the VM the hard way, so the runner can check how the VMM reports it:
//! `panic` crashes the kernel (sysrq `c`; with `panic=-1 reboot=k` the guest resets, and iovmm must exit with
//! 125 and say "guest kernel panicked"), `hang` never returns (iovmm's `--timeout` must end it with 124).
//! Neither reports a KTAP result: the runner judges the VMM's exit instead.

use super::context::Context;
use super::report::Report;

/// Crashes the guest kernel.
pub fn panic(_ctx: &Context) -> Report {
    // The console must carry the banner: the kernel prints it at emergency level anyway.
    match std::fs::write("/proc/sysrq-trigger", b"c") {
        // Not reached when the crash happens.
        Ok(()) => Report::failure("sysrq 'c' returned without crashing the kernel"),
        Err(e) => Report::failure(format!("cannot write /proc/sysrq-trigger: {e}")),
    }
}

/// Never returns (PID 1 sleeping forever keeps the guest alive and idle).
pub fn hang(_ctx: &Context) -> Report {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
