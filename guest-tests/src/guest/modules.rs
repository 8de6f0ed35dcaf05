//! Kernel modules a distribution kernel needs for the tests (VFIO, ioatdma): the initramfs carries them in
//! `/lib/modules/` with `/lib/modules/load.list` naming them in dependency order (images/build-distro.sh), and the
//! guest loads them with `finit_module(2)` before any test runs. Our own kernels build everything in and carry no
//! list.

use std::os::fd::AsRawFd;
use std::path::Path;

/// The list of modules to load, one file name per line, dependencies first.
pub const LOAD_LIST: &str = "lib/modules/load.list";

/// Loads every module `root/lib/modules/load.list` names; returns the names loaded and one error per module
/// that failed. A missing list is no error (nothing to load). A module already present (built in or loaded)
/// counts as loaded.
pub fn load_all(root: &Path) -> (Vec<String>, Vec<String>) {
    let Ok(list) = std::fs::read_to_string(root.join(LOAD_LIST)) else {
        return (Vec::new(), Vec::new());
    };
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = root.join("lib/modules").join(name);
        match load(&path) {
            Ok(()) => loaded.push(name.to_string()),
            Err(e) => errors.push(format!("cannot load module {}: {e}", path.display())),
        }
    }
    (loaded, errors)
}

/// `finit_module(fd, "", 0)` on the file at `path`.
fn load(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    let params = c"";
    // SAFETY: finit_module reads the module from the open fd and the NUL-terminated (empty) parameter string,
    // both valid for the duration of the call; it writes no user memory.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EEXIST) {
        return Ok(());
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_list_loads_nothing() {
        let (loaded, errors) = load_all(Path::new("/nonexistent-guest-root"));
        assert!(loaded.is_empty() && errors.is_empty());
    }

    #[test]
    fn a_bad_module_is_one_error() {
        let dir = std::env::temp_dir().join(format!("iovmm-modules-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("lib/modules")).unwrap();
        std::fs::write(dir.join(LOAD_LIST), "missing.ko\n\n").unwrap();
        let (loaded, errors) = load_all(&dir);
        assert!(loaded.is_empty());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("missing.ko"), "{errors:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
