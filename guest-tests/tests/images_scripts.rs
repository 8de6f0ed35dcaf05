//! The images/ scripts' contract for bad input and the fragment's per-version lines, run for real with bash.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn bash(script: &str, args: &[&str], cache: &Path) -> std::process::Output {
    Command::new("bash")
        .arg(repo().join(script))
        .args(args)
        .env("IOVMM_CACHE", cache)
        .output()
        .unwrap()
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iovmm-images-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn an_unknown_kernel_version_is_one_error_line_and_builds_nothing() {
    let cache = scratch("unknown");
    for script in ["images/build-kernel.sh", "images/build-distro.sh"] {
        let out = bash(script, &["6.13"], &cache);
        assert_eq!(out.status.code(), Some(1), "{script}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.lines().collect::<Vec<_>>(),
            ["[images] error: unknown kernel version '6.13' (known: 6.12 7.3)"],
            "{script}"
        );
    }
    // Nothing was created in the cache.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn the_vfio_selftests_script_takes_no_version_and_builds_nothing_on_bad_input() {
    let cache = scratch("vfio-selftests");
    let out = bash("images/build-vfio-selftests.sh", &["6.12"], &cache);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        ["[images] error: vfio-selftests: no arguments expected (the selftests are Linux 7.3's)"]
    );
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn build_all_builds_the_vfio_selftests_only_with_7_3() {
    let script = std::fs::read_to_string(repo().join("images/build-all.sh")).unwrap();
    let call = script
        .lines()
        .position(|l| l.contains("build-vfio-selftests.sh"))
        .expect("build-all.sh calls build-vfio-selftests.sh");
    let guard = script.lines().nth(call - 1).unwrap();
    assert!(guard.contains("7.3") && guard.contains("all"), "{guard}");
}

#[test]
fn fragment_lines_with_a_version_count_only_for_it() {
    let dir = scratch("fragment");
    let frag = dir.join("f");
    std::fs::write(
        &frag,
        "# 6.12: CONFIG_COMMENT=y stays a comment\nCONFIG_A=y\n6.12: CONFIG_OLD=y\n7.3: CONFIG_NEW=y\n# CONFIG_B is not set\n",
    )
    .unwrap();
    let lib = repo().join("images/lib.sh");
    let run = |v: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {} && fragment_for {v} {}",
                lib.display(),
                frag.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        run("6.12"),
        "# 6.12: CONFIG_COMMENT=y stays a comment\nCONFIG_A=y\nCONFIG_OLD=y\n# CONFIG_B is not set\n"
    );
    assert_eq!(
        run("7.3"),
        "# 6.12: CONFIG_COMMENT=y stays a comment\nCONFIG_A=y\nCONFIG_NEW=y\n# CONFIG_B is not set\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_fragment_applies_to_every_known_version() {
    // Every versioned line of the real fragment names a version images/ knows.
    let text = std::fs::read_to_string(repo().join("images/guest-kernel.fragment")).unwrap();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        if let Some((v, rest)) = line.split_once(": ") {
            assert!(["6.12", "7.3"].contains(&v), "{line}");
            assert!(
                rest.starts_with("CONFIG_") || rest.starts_with("# CONFIG_"),
                "{line}"
            );
        } else {
            assert!(line.starts_with("CONFIG_"), "{line}");
        }
    }
}
