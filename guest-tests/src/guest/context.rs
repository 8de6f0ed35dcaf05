//! What every guest test gets: the filesystem root to read from and the expected machine description.

use std::path::{Path, PathBuf};

use firmware_tables::description::MachineDescription;

/// Shared input of the guest tests.
#[derive(Clone, Debug)]
pub struct Context {
    /// Root below which `/proc`, `/sys` and `/dev` are read (`/` in the guest; a fake tree in unit tests).
    pub root: PathBuf,
    /// The machine description from `/expect.json`, or why it could not be loaded.
    pub expect: Result<MachineDescription, String>,
    /// Scenario name from the command line.
    pub scenario: String,
}

impl Context {
    /// A path inside the guest, e.g. `ctx.path("sys/firmware/memmap")`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Reads a file below the root as text.
    pub fn read(&self, rel: &str) -> Result<String, String> {
        read_text(&self.path(rel))
    }
}

/// Reads a text file, with the path in the error.
pub fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Loads and parses an expectation file.
pub fn load_expect(path: &Path) -> Result<MachineDescription, String> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::fake_root::FakeRoot;

    #[test]
    fn path_joins_below_root() {
        let ctx = Context {
            root: PathBuf::from("/tmp/x"),
            expect: Err("none".into()),
            scenario: "boot".into(),
        };
        assert_eq!(
            ctx.path("/proc/cmdline"),
            PathBuf::from("/tmp/x/proc/cmdline")
        );
    }

    #[test]
    fn load_expect_reports_parse_errors() {
        let root = FakeRoot::new("load_expect");
        root.write("expect.json", "{not json");
        let err = load_expect(&root.path().join("expect.json")).unwrap_err();
        assert!(err.contains("cannot parse"), "{err}");
        let err = load_expect(&root.path().join("missing.json")).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn load_expect_reads_description() {
        let root = FakeRoot::new("load_expect_ok");
        root.write(
            "expect.json",
            r#"{"cpus":2,"memory_mib":512,"e820":[],"acpi_tables":[],"pci":[]}"#,
        );
        let d = load_expect(&root.path().join("expect.json")).unwrap();
        assert_eq!(d.cpus, 2);
        assert_eq!(d.memory_mib, 512);
    }
}
