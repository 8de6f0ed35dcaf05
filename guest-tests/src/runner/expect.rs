//! Expectations: `iovmm describe <machine options>` gives the machine description; it travels to the guest as
//! `/expect.json` in a small cpio archive appended to the guest initramfs.

use std::path::Path;
use std::process::Command;

use firmware_tables::description::MachineDescription;

use super::cpio::{concat_archives, CpioWriter};

/// Path of the expectations inside the guest.
pub const EXPECT_NAME: &str = "expect.json";

/// Runs `iovmm describe` and returns its JSON text, checked to parse as a `MachineDescription`.
pub fn describe(
    iovmm: &Path,
    machine_args: &[String],
) -> Result<(String, MachineDescription), String> {
    let out = Command::new(iovmm)
        .arg("describe")
        .args(machine_args)
        .output()
        .map_err(|e| format!("cannot run {} describe: {e}", iovmm.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} describe failed ({}): {}",
            iovmm.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| "iovmm describe printed non-UTF-8 output".to_string())?;
    let desc = parse_description(&text)?;
    Ok((text, desc))
}

/// Parses the machine description JSON.
pub fn parse_description(text: &str) -> Result<MachineDescription, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("iovmm describe output is not a MachineDescription: {e}"))
}

/// A newc archive holding only `/expect.json`.
pub fn expect_archive(json: &[u8]) -> Vec<u8> {
    let mut w = CpioWriter::new();
    w.file(EXPECT_NAME, 0o644, json);
    w.finish()
}

/// The guest initramfs with the expectations appended.
pub fn guest_initrd(base: &[u8], json: &[u8]) -> Vec<u8> {
    concat_archives(base, &expect_archive(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_holds_expect_json() {
        let a = expect_archive(b"{\"cpus\":2}");
        let s = String::from_utf8_lossy(&a);
        assert!(s.starts_with("070701"));
        assert!(s.contains("expect.json\0"));
        assert!(s.contains("{\"cpus\":2}"));
        assert!(s.contains("TRAILER!!!"));
        let all = guest_initrd(&[0x1f, 0x8b, 8], b"{}");
        assert_eq!(&all[..3], &[0x1f, 0x8b, 8]);
        assert!(all.ends_with(&expect_archive(b"{}")));
    }

    #[test]
    fn description_must_parse() {
        assert!(parse_description("{}").is_err());
        let d =
            parse_description(r#"{"cpus":2,"memory_mib":512,"e820":[],"acpi_tables":[],"pci":[]}"#)
                .unwrap();
        assert_eq!(d.cpus, 2);
    }

    #[test]
    fn describe_reports_a_missing_binary() {
        let e = describe(Path::new("/nonexistent/iovmm"), &[]).unwrap_err();
        assert!(e.contains("cannot run"), "{e}");
    }

    #[test]
    fn describe_runs_the_command() {
        // A stand-in VMM: a shell script that prints a description.
        let dir = std::env::temp_dir().join(format!("guest-tests-describe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("iovmm");
        std::fs::write(
            &script,
            "#!/bin/sh\n[ \"$1 $2 $3\" = \"describe --memory 64\" ] || exit 7\n\
             echo '{\"cpus\":1,\"memory_mib\":64,\"e820\":[],\"acpi_tables\":[],\"pci\":[]}'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (text, d) = describe(&script, &["--memory".into(), "64".into()]).unwrap();
        assert_eq!(d.memory_mib, 64);
        assert!(text.contains("\"cpus\":1"));
        let err = describe(&script, &["--cpus".into()]).unwrap_err();
        assert!(err.contains("describe failed"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
