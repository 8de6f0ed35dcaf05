//! System plumbing for PID 1: console, mounts, printk level, the exit device and reboot.

use std::ffi::CString;
use std::io::Write;

/// I/O port of the iovmm exit device (QEMU: `isa-debug-exit,iobase=0xf4`).
pub const EXIT_PORT: u16 = 0xf4;

/// Writes one line to stdout, ignoring errors (PID 1 must never panic on a console write).
pub fn out(line: &str) {
    let mut so = std::io::stdout().lock();
    let _ = writeln!(so, "{line}");
    let _ = so.flush();
}

/// Makes sure fds 0, 1 and 2 are open on the console. The kernel opens /dev/console for init only when the
/// initramfs has that node; otherwise mount devtmpfs and open it from there.
pub fn ensure_console() {
    // SAFETY: F_GETFD on a plain integer fd only queries flags; no memory is passed.
    let ok = unsafe { libc::fcntl(1, libc::F_GETFD) } >= 0;
    if ok {
        return;
    }
    let _ = mount("devtmpfs", "/dev", "devtmpfs");
    let Ok(path) = CString::new("/dev/console") else {
        return;
    };
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    if fd < 0 {
        return;
    }
    for target in 0..3 {
        if fd != target {
            // SAFETY: dup2 on fds we own; failure leaves the target closed, which we tolerate.
            unsafe { libc::dup2(fd, target) };
        }
    }
    if fd > 2 {
        // SAFETY: `fd` is ours and no longer needed after being duplicated onto 0..2.
        unsafe { libc::close(fd) };
    }
}

/// Mounts `fstype` at `target` (created if needed). EBUSY (already mounted) counts as success.
pub fn mount(source: &str, target: &str, fstype: &str) -> Result<(), String> {
    let _ = std::fs::create_dir_all(target);
    let (Ok(src), Ok(tgt), Ok(fst)) = (
        CString::new(source),
        CString::new(target),
        CString::new(fstype),
    ) else {
        return Err(format!("bad mount arguments for {target}"));
    };
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; data is NULL.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fst.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EBUSY) {
        Ok(())
    } else {
        Err(format!("mount {fstype} on {target}: {err}"))
    }
}

/// Mounts proc, sysfs and devtmpfs. Returns the errors (reported later as diagnostics).
pub fn mount_all() -> Vec<String> {
    [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
    ]
    .iter()
    .filter_map(|(s, t, f)| mount(s, t, f).err())
    .collect()
}

/// Waits (at most [`DRAIN_LIMIT`]) until everything written to the console has left the UART. The tty layer
/// returns from `write` once the bytes are queued and the 8250 drains them by interrupt, so without this the exit
/// device can stop the machine while the last lines (the end of the KTAP output) are still queued.
pub fn drain_console() {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("drain".into())
        .spawn(move || {
            // SAFETY: tcdrain takes an fd and no pointers; on a non-tty fd it fails with ENOTTY (ignored).
            unsafe {
                libc::tcdrain(1);
                libc::tcdrain(2);
            }
            let _ = tx.send(());
        });
    if spawned.is_ok() {
        // A console that never drains must not keep the machine running: give up after the limit.
        let _ = rx.recv_timeout(DRAIN_LIMIT);
    }
}

/// Longest wait for the console to drain.
pub const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Lowers the console log level so kernel messages don't interleave with KTAP (they stay in /dev/kmsg).
pub fn quiet_console() -> Result<(), String> {
    std::fs::write("/proc/sys/kernel/printk", "1\n")
        .map_err(|e| format!("cannot lower console loglevel: {e}"))
}

/// Writes `status` to the exit device with an 8-bit `out`. Under iovmm (or QEMU's isa-debug-exit) this does
/// not return. Needs CONFIG_X86_IOPL_IOPERM; without it, falls back to /dev/port (CONFIG_DEVPORT).
pub fn exit_device(status: u8) -> Result<(), String> {
    // SAFETY: ioperm only changes this process's I/O permission bitmap for one port.
    let rc = unsafe { libc::ioperm(libc::c_ulong::from(EXIT_PORT), 1, 1) };
    if rc != 0 {
        let ioperm_err = std::io::Error::last_os_error();
        return exit_via_dev_port(status)
            .map_err(|e| format!("ioperm({EXIT_PORT:#x}): {ioperm_err}; {e}"));
    }
    // SAFETY: ioperm above granted access to EXIT_PORT, so `out` does not fault; the instruction touches
    // no memory and only the registers named here.
    unsafe {
        std::arch::asm!(
            "out dx, al",
            in("dx") EXIT_PORT,
            in("al") status,
            options(nomem, nostack, preserves_flags)
        );
    }
    Ok(())
}

/// Writes one byte at offset EXIT_PORT of /dev/port (the kernel does the `outb`).
fn exit_via_dev_port(status: u8) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/port")
        .map_err(|e| format!("/dev/port: {e}"))?;
    f.write_all_at(&[status], u64::from(EXIT_PORT))
        .map_err(|e| format!("/dev/port write: {e}"))
}

/// Last resort when the exit device did not stop the machine: restart (the VMM reports a reset), or hang.
pub fn reboot_or_hang() -> ! {
    // SAFETY: sync and reboot take no pointers; as PID 1 with CAP_SYS_BOOT this restarts the machine.
    unsafe {
        libc::sync();
        libc::reboot(libc::LINUX_REBOOT_CMD_RESTART);
    }
    out("iovmm-guest: reboot failed; halting");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
