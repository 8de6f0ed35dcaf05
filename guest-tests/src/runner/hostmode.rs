//! Host mode: `native` runs iovmm directly on /dev/kvm; `tcg` boots the TCG test host (QEMU with nested SVM)
//! and runs iovmm inside it. Native needs real hardware virtualization: /dev/kvm, a vmx or svm CPU flag, and
//! not the software PVM backend (kvm_pvm), which cannot run Linux guests.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostMode {
    Native,
    Tcg,
}

impl fmt::Display for HostMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostMode::Native => "native",
            HostMode::Tcg => "tcg",
        })
    }
}

/// The `--host-mode` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HostModeChoice {
    Auto,
    Native,
    Tcg,
}

/// What auto-detection looks at.
#[derive(Clone, Debug, Default)]
pub struct HostProbe {
    pub dev_kvm: bool,
    pub cpuinfo: String,
    pub kvm_pvm_loaded: bool,
}

impl HostProbe {
    /// Reads this machine's facts.
    pub fn read() -> Self {
        Self {
            dev_kvm: std::path::Path::new("/dev/kvm").exists(),
            cpuinfo: std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
            kvm_pvm_loaded: std::path::Path::new("/sys/module/kvm_pvm").exists(),
        }
    }
}

/// True when a `flags` line of /proc/cpuinfo has `vmx` or `svm`.
pub fn has_hw_virt(cpuinfo: &str) -> bool {
    cpuinfo.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim() == "flags" && v.split_whitespace().any(|f| f == "vmx" || f == "svm")
        })
    })
}

/// Auto-detection: the mode and why.
pub fn detect(p: &HostProbe) -> (HostMode, String) {
    if !p.dev_kvm {
        (HostMode::Tcg, "no /dev/kvm".into())
    } else if p.kvm_pvm_loaded {
        (HostMode::Tcg, "kvm_pvm loaded".into())
    } else if !has_hw_virt(&p.cpuinfo) {
        (HostMode::Tcg, "no vmx/svm cpu flag".into())
    } else {
        (
            HostMode::Native,
            "/dev/kvm with hardware virtualization".into(),
        )
    }
}

/// Applies the user's choice; returns the mode and the line to print (`host mode: tcg (auto: ...)`).
pub fn resolve(choice: HostModeChoice, p: &HostProbe) -> (HostMode, String) {
    let (mode, why) = match choice {
        HostModeChoice::Auto => {
            let (m, why) = detect(p);
            (m, format!("auto: {why}"))
        }
        HostModeChoice::Native => (HostMode::Native, "forced by --host-mode".to_string()),
        HostModeChoice::Tcg => (HostMode::Tcg, "forced by --host-mode".to_string()),
    };
    (mode, format!("host mode: {mode} ({why})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(dev_kvm: bool, flags: &str, pvm: bool) -> HostProbe {
        HostProbe {
            dev_kvm,
            cpuinfo: format!("processor\t: 0\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\nflags\t\t: fpu {flags}\n"),
            kvm_pvm_loaded: pvm,
        }
    }

    #[test]
    fn native_only_with_real_hardware_virtualization() {
        assert_eq!(detect(&probe(true, "vmx", false)).0, HostMode::Native);
        assert_eq!(detect(&probe(true, "svm npt", false)).0, HostMode::Native);
        assert_eq!(
            detect(&probe(true, "", false)),
            (HostMode::Tcg, "no vmx/svm cpu flag".into())
        );
        assert_eq!(
            detect(&probe(true, "vmx", true)),
            (HostMode::Tcg, "kvm_pvm loaded".into())
        );
        assert_eq!(
            detect(&probe(false, "vmx", false)),
            (HostMode::Tcg, "no /dev/kvm".into())
        );
    }

    #[test]
    fn flag_must_be_a_whole_word_on_a_flags_line() {
        assert!(!has_hw_virt("flags : vmxe svmx\n"));
        assert!(!has_hw_virt("model name : svm vmx\n"));
        assert!(has_hw_virt("flags\t: a vmx b\n"));
    }

    #[test]
    fn resolve_prints_reason() {
        let p = probe(true, "", true);
        assert_eq!(
            resolve(HostModeChoice::Auto, &p),
            (
                HostMode::Tcg,
                "host mode: tcg (auto: kvm_pvm loaded)".into()
            )
        );
        assert_eq!(
            resolve(HostModeChoice::Native, &p),
            (
                HostMode::Native,
                "host mode: native (forced by --host-mode)".into()
            )
        );
    }
}
