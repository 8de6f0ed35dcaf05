//! Where the runner finds its inputs: the repository root, the images, the VMM, QEMU.

use std::path::{Path, PathBuf};

use super::kernels::KernelVersion;
use super::scenario::Scenario;

/// Image file names in the images directory (built by the scripts in images/; the guest kernels' names are
/// [`GuestKernel::files`]).
pub const GUEST_INITRAMFS: &str = "guest-initramfs.cpio.gz";
pub const TESTHOST_KERNEL: &str = "testhost-vmlinuz";
pub const TESTHOST_INITRAMFS: &str = "testhost-base.cpio.gz";
/// The static VMM, relative to the repository root.
pub const IOVMM_REL: &str = "target/x86_64-unknown-linux-gnu/release/iovmm";

/// The repository root: the nearest ancestor of the working directory holding both `Cargo.toml` and
/// `guest-tests/`, else the workspace this binary was built from.
pub fn repo_root() -> PathBuf {
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if dir.join("Cargo.toml").is_file() && dir.join("guest-tests").is_dir() {
                return dir.to_path_buf();
            }
        }
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Every input of a run, resolved.
#[derive(Clone, Debug)]
pub struct Setup {
    pub root: PathBuf,
    pub iovmm: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Appended to `initrd` in this order: the guest kernel's own fragment (a distribution kernel's modules),
    /// then the scenario's (e.g. Linux 7.3's VFIO selftests).
    pub initrd_extra: Vec<PathBuf>,
    /// The guest kernel version the run asked for.
    pub kernel_version: KernelVersion,
    /// How to build the guest kernel files if they are missing.
    pub kernel_hint: String,
    /// How to build each of the scenario's own initramfs fragments: (file, command).
    pub extra_hints: Vec<(PathBuf, String)>,
    pub testhost_kernel: PathBuf,
    pub testhost_initrd: PathBuf,
    pub qemu: PathBuf,
    /// Scratch directory for generated archives (removed afterwards).
    pub work: PathBuf,
}

/// Command-line overrides.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub images: Option<PathBuf>,
    pub iovmm: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub qemu: Option<PathBuf>,
    /// The guest kernel version (of our build, or of the distribution's kernel for `distro-*` scenarios).
    pub kernel_version: KernelVersion,
}

impl Setup {
    /// Resolves every input for scenario `sc` (its kernel kind and its initramfs fragments).
    pub fn resolve(o: &Overrides, sc: &Scenario) -> Self {
        let root = repo_root();
        let images = o
            .images
            .clone()
            .unwrap_or_else(|| root.join("build/images"));
        let kind = sc.kernel;
        let files = kind.files(&images, o.kernel_version);
        let extra_hints: Vec<(PathBuf, String)> = sc
            .initrd_extra
            .iter()
            .map(|f| (images.join(f.file), f.build.to_string()))
            .collect();
        let mut initrd_extra: Vec<PathBuf> = files.initrd_extra.into_iter().collect();
        initrd_extra.extend(extra_hints.iter().map(|(p, _)| p.clone()));
        Self {
            iovmm: o.iovmm.clone().unwrap_or_else(|| root.join(IOVMM_REL)),
            kernel: o.kernel.clone().unwrap_or(files.kernel),
            initrd: o
                .initrd
                .clone()
                .unwrap_or_else(|| images.join(GUEST_INITRAMFS)),
            initrd_extra,
            kernel_version: o.kernel_version,
            kernel_hint: kind.build_hint(o.kernel_version),
            extra_hints,
            testhost_kernel: images.join(TESTHOST_KERNEL),
            testhost_initrd: images.join(TESTHOST_INITRAMFS),
            qemu: o
                .qemu
                .clone()
                .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64")),
            work: std::env::temp_dir().join(format!("iovmm-runner-{}", std::process::id())),
            root,
        }
    }

    /// Checks that the named files exist; the error lists every missing one and how to build it.
    pub fn check(&self, files: &[&Path]) -> Result<(), String> {
        let missing: Vec<String> = files
            .iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let extras: String = self
            .extra_hints
            .iter()
            .filter(|(p, _)| files.contains(&p.as_path()) && !p.is_file())
            .map(|(p, cmd)| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                format!("; {name} with `{cmd}`")
            })
            .collect();
        Err(format!(
            "missing {} (build the images with the scripts in images/: the guest kernel with `{}`{extras}; the \
             VMM with `RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p vmm \
             --target x86_64-unknown-linux-gnu`)",
            missing.join(", "),
            self.kernel_hint
        ))
    }
}

/// True when `elf` asks for a dynamic loader (has a PT_INTERP program header), i.e. is not static.
pub fn elf_is_dynamic(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let phoff = elf
        .get(0x20..0x28)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0) as usize;
    let (Some(phentsize), Some(phnum)) = (u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        let o = phoff.saturating_add(i * usize::from(phentsize));
        elf.get(o..o + 4)
            .is_some_and(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == PT_INTERP)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_workspace() {
        let r = repo_root();
        assert!(r.join("guest-tests").is_dir(), "{}", r.display());
    }

    fn scenario(name: &str) -> &'static Scenario {
        crate::runner::scenario::find(name).unwrap()
    }

    #[test]
    fn defaults_under_root() {
        let s = Setup::resolve(&Overrides::default(), scenario("boot"));
        assert!(s.kernel.ends_with("build/images/bzImage-6.12"));
        assert!(s.initrd_extra.is_empty());
        let seven = Overrides {
            kernel_version: KernelVersion::V7_3,
            ..Default::default()
        };
        let s = Setup::resolve(&seven, scenario("distro-legacy"));
        assert!(s.kernel.ends_with("build/images/distro-7.3/vmlinuz"));
        assert_eq!(s.initrd_extra.len(), 1);
        assert!(s.initrd_extra[0].ends_with("build/images/distro-7.3/modules.cpio.gz"));
        assert!(s.iovmm.ends_with(IOVMM_REL));
        // A scenario's own fragments come after the kernel's.
        let s = Setup::resolve(&seven, scenario("upstream-vfio-legacy"));
        assert!(s.kernel.ends_with("build/images/bzImage-7.3"));
        assert_eq!(s.initrd_extra.len(), 1);
        assert!(s.initrd_extra[0].ends_with("build/images/vfio-selftests.cpio.gz"));
        let o = Overrides {
            images: Some("/img".into()),
            kernel: Some("/k".into()),
            ..Default::default()
        };
        let s = Setup::resolve(&o, scenario("boot"));
        assert_eq!(s.kernel, PathBuf::from("/k"));
        assert_eq!(s.initrd, PathBuf::from("/img/guest-initramfs.cpio.gz"));
        assert_eq!(s.testhost_kernel, PathBuf::from("/img/testhost-vmlinuz"));
    }

    #[test]
    fn check_lists_missing_files() {
        let s = Setup::resolve(&Overrides::default(), scenario("distro-legacy"));
        let err = s
            .check(&[Path::new("/nonexistent/a"), Path::new("/nonexistent/b")])
            .unwrap_err();
        assert!(err.contains("/nonexistent/a, /nonexistent/b"), "{err}");
        assert!(err.contains("images/build-distro.sh 6.12"), "{err}");
        assert!(!err.contains("build-vfio-selftests"), "{err}");
        // A missing scenario fragment names its build script.
        let o = Overrides {
            images: Some("/nonexistent-images".into()),
            kernel_version: KernelVersion::V7_3,
            ..Default::default()
        };
        let s = Setup::resolve(&o, scenario("upstream-vfio-nested"));
        let extra = s.initrd_extra[0].clone();
        let err = s.check(&[&s.kernel, &extra]).unwrap_err();
        assert!(
            err.contains("/nonexistent-images/vfio-selftests.cpio.gz"),
            "{err}"
        );
        assert!(err.contains("images/build-kernel.sh 7.3"), "{err}");
        assert!(
            err.contains("vfio-selftests.cpio.gz with `images/build-vfio-selftests.sh`"),
            "{err}"
        );
    }

    /// A minimal ELF64 header with one program header of type `p_type`.
    fn elf_with_phdr(p_type: u32) -> Vec<u8> {
        let mut e = vec![0u8; 64 + 56];
        e[..4].copy_from_slice(b"\x7fELF");
        e[4] = 2; // ELFCLASS64
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        e[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        e[64..68].copy_from_slice(&p_type.to_le_bytes());
        e
    }

    #[test]
    fn dynamic_elf_detection() {
        assert!(elf_is_dynamic(&elf_with_phdr(3)));
        assert!(!elf_is_dynamic(&elf_with_phdr(1)));
        let mut truncated = elf_with_phdr(3);
        truncated.truncate(66);
        assert!(!elf_is_dynamic(&truncated));
        assert!(!elf_is_dynamic(b"#!/bin/sh"));
    }
}
