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

fn example_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../devices/iommu/bringup")
        .join(name)
}

#[test]
fn bringup_replays_an_example_script() {
    let out = iovmm(&[
        "bringup",
        example_script("smmuv3-s1.json").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("PASSED"), "{stdout}");
}

#[test]
fn bringup_reports_the_first_mismatch_with_exit_status_1() {
    // The same script expecting a different output for its first stage-1 DMA (the one whose note names the
    // STE -> CD -> L0..L3 walk): the report names that step and prints the model's walk.
    let text = std::fs::read_to_string(example_script("smmuv3-s1.json")).unwrap();
    let mut script: serde_json::Value = serde_json::from_str(&text).unwrap();
    let steps = script["steps"].as_array_mut().unwrap();
    let (i, step) = steps
        .iter_mut()
        .enumerate()
        .find(|(_, s)| s["dma"]["expect"]["output"] == "0x800678")
        .expect("the example translates 0x12345678 through stage 1");
    step["dma"]["expect"]["output"] = serde_json::json!("0xdead678");
    let path = tmp("bad-bringup.json", script.to_string().as_bytes());
    let out = iovmm(&["bringup", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("FAILED at steps[{i}]")),
        "{stdout}"
    );
    assert!(stdout.contains("0xdead678"), "{stdout}");
    // The walk: the STE, the CD and the four stage-1 levels the model visited.
    for needle in ["ste", "cd", "0x800678"] {
        assert!(
            stdout.to_lowercase().contains(needle),
            "{needle} missing: {stdout}"
        );
    }
}

#[test]
fn bringup_rejects_a_bad_script_in_one_line() {
    let path = tmp(
        "garbage-bringup.json",
        b"{\"model\": \"vtd\", \"steps\": [{\"warp\": 9}]}",
    );
    let out = iovmm(&["bringup", path.to_str().unwrap()]);
    assert_one_error_line(&out, "bring-up script");
    assert_eq!(out.status.code(), Some(1));
}

/// The seed email's POWER example is the TCE default: `iovmm debug ranges --iommu tce` prints its two windows.
#[test]
fn debug_ranges_prints_the_seed_tce_windows() {
    let out = iovmm(&["debug", "ranges", "--iommu", "tce"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let windows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        windows,
        vec![
            vec!["0x0", "..=", "0x3fffffff"],
            vec!["0x800000000000000", "..=", "0x8001fffffffffff"],
        ],
        "{stdout}"
    );
}
