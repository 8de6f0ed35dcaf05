//! Which guest kernel a scenario boots: one of the two kernel versions the project knows, built by us from
//! Debian's source packages with our fragment, or the distribution's own binary kernel of that version
//! (images/build-kernel.sh, images/build-distro.sh).

use std::fmt;
use std::path::{Path, PathBuf};

/// The kernel versions images/ builds and fetches (images/lib.sh `KERNEL_VERSIONS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum KernelVersion {
    /// Linux 6.12 LTS (Debian 12).
    #[default]
    #[value(name = "6.12")]
    V6_12,
    /// Linux 7.3 (Debian 13 trixie-backports).
    #[value(name = "7.3")]
    V7_3,
}

impl KernelVersion {
    pub const ALL: [KernelVersion; 2] = [KernelVersion::V6_12, KernelVersion::V7_3];

    pub fn as_str(self) -> &'static str {
        match self {
            KernelVersion::V6_12 => "6.12",
            KernelVersion::V7_3 => "7.3",
        }
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a scenario's kernel comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestKernel {
    /// Our build (allnoconfig + images/guest-kernel.fragment, everything built in): `IMAGES/bzImage-V`.
    Built,
    /// Debian's binary kernel as shipped: `IMAGES/distro-V/vmlinuz`, with the modules the tests need appended
    /// to the guest initramfs (`IMAGES/distro-V/modules.cpio.gz`).
    Distro,
}

/// The files of one guest kernel inside the images directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelFiles {
    pub kernel: PathBuf,
    /// An initramfs fragment appended to the guest initramfs (a distribution kernel's modules).
    pub initrd_extra: Option<PathBuf>,
}

impl GuestKernel {
    pub fn files(self, images: &Path, version: KernelVersion) -> KernelFiles {
        match self {
            GuestKernel::Built => KernelFiles {
                kernel: images.join(format!("bzImage-{version}")),
                initrd_extra: None,
            },
            GuestKernel::Distro => {
                let dir = images.join(format!("distro-{version}"));
                KernelFiles {
                    kernel: dir.join("vmlinuz"),
                    initrd_extra: Some(dir.join("modules.cpio.gz")),
                }
            }
        }
    }

    /// How to build the files when they are missing.
    pub fn build_hint(self, version: KernelVersion) -> String {
        match self {
            GuestKernel::Built => format!("images/build-kernel.sh {version}"),
            GuestKernel::Distro => format!("images/build-distro.sh {version}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn names_match_the_image_scripts() {
        let names: Vec<String> = KernelVersion::value_variants()
            .iter()
            .map(|v| v.to_possible_value().unwrap().get_name().to_string())
            .collect();
        assert_eq!(names, ["6.12", "7.3"]);
        for v in KernelVersion::ALL {
            assert_eq!(v.to_possible_value().unwrap().get_name(), v.as_str());
        }
        assert_eq!(KernelVersion::default(), KernelVersion::V6_12);
        // images/lib.sh knows the same versions.
        let lib =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/lib.sh"))
                .unwrap();
        assert!(lib.contains("KERNEL_VERSIONS=(6.12 7.3)"), "images/lib.sh");
    }

    #[test]
    fn files_per_kind() {
        let img = Path::new("/img");
        assert_eq!(
            GuestKernel::Built.files(img, KernelVersion::V7_3),
            KernelFiles {
                kernel: "/img/bzImage-7.3".into(),
                initrd_extra: None
            }
        );
        let d = GuestKernel::Distro.files(img, KernelVersion::V6_12);
        assert_eq!(d.kernel, PathBuf::from("/img/distro-6.12/vmlinuz"));
        assert_eq!(
            d.initrd_extra,
            Some(PathBuf::from("/img/distro-6.12/modules.cpio.gz"))
        );
        assert!(GuestKernel::Distro
            .build_hint(KernelVersion::V7_3)
            .contains("build-distro.sh 7.3"));
    }
}
