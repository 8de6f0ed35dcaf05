//! Bad input on the command line: one clear error line on stderr, a non-zero exit, never a panic.
//! None of these reach KVM, so they run on any machine.

use std::path::PathBuf;
use std::process::{Command, Output};

fn iovmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iovmm"))
        .args(args)
        .output()
        .expect("run iovmm")
}

fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("iovmm-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Asserts a failed run with exactly one stderr line containing `needle`.
fn assert_one_error_line(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line expected, got: {stderr}"
    );
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn missing_kernel() {
    let out = iovmm(&["run", "--kernel", "/nonexistent/bzImage"]);
    assert_one_error_line(&out, "cannot open /nonexistent/bzImage");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn corrupt_kernel() {
    let k = tmp("corrupt", &[0x42; 4096]);
    let out = iovmm(&["run", "--kernel", k.to_str().unwrap()]);
    assert_one_error_line(&out, "not a bzImage");
}

#[test]
fn old_boot_protocol() {
    // setup header at 0x1f1: setup_sects=4, 'HdrS' at 0x202, version 2.06 at 0x206, loadflags bit 0 at 0x211.
    let mut img = vec![0u8; 8192];
    img[0x1f1] = 4;
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x206..0x208].copy_from_slice(&0x0206u16.to_le_bytes());
    img[0x211] = 1;
    let k = tmp("old", &img);
    let out = iovmm(&["run", "--kernel", k.to_str().unwrap()]);
    assert_one_error_line(&out, "boot protocol 2.06 is too old");
}

#[test]
fn missing_initrd() {
    let out = iovmm(&[
        "run",
        "--kernel",
        "/nonexistent/bz",
        "--initrd",
        "/nonexistent/rd",
    ]);
    assert_one_error_line(&out, "cannot open /nonexistent/bz");
}

#[test]
fn unknown_option() {
    let out = iovmm(&["run", "--kernel", "x", "--bogus"]);
    assert_one_error_line(&out, "unexpected argument '--bogus'");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_machine_sizes() {
    assert_one_error_line(
        &iovmm(&["describe", "--memory", "1"]),
        "memory size 1 MiB is out of range",
    );
    assert_one_error_line(&iovmm(&["describe", "--cpus", "9"]), "vCPUs");
    assert_one_error_line(&iovmm(&["describe", "--cpus", "0"]), "vCPUs");
}

#[test]
fn bad_timeout() {
    let out = iovmm(&["run", "--kernel", "/nonexistent", "--timeout=-1"]);
    assert_one_error_line(&out, "--timeout must be a positive number");
}

#[test]
fn debug_ranges_without_a_guest() {
    // The seed's 45-bit IOMMU, as VT-d publishes it: the aperture minus the MSI window.
    let out = iovmm(&["debug", "ranges", "--iommu", "vtd,aw=45"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(
        lines[1..],
        ["0x0 ..= 0xfedfffff", "0xfef00000 ..= 0x1fffffffffff"],
        "{text}"
    );
    let json = iovmm(&["debug", "ranges", "--iommu", "vtd,aw=39", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["windows"][1]["last"], 0x7f_ffff_ffffu64);
}

#[test]
fn debug_needs_a_monitor() {
    let out = iovmm(&["debug", "stats", "--monitor", "/nonexistent/iovmm.sock"]);
    assert_one_error_line(&out, "cannot connect to monitor");
}
