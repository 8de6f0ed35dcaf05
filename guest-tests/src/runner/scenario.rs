//! The scenario table: a scenario is a name, the VMM's machine options, guest command line extras and the
//! guest tests to run (in order). Adding a scenario is one entry in [`SCENARIOS`].

/// Kernel command line every scenario starts from.
pub const BASE_CMDLINE: &str = "console=ttyS0 reboot=k panic=-1";

/// One guest test scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    pub cpus: u8,
    pub memory_mib: u32,
    /// Extra machine options for `iovmm run` and `iovmm describe` (later: `--iommu vtd`, ...).
    pub vmm_args: &'static [&'static str],
    /// Extra guest kernel parameters.
    pub cmdline_extra: &'static [&'static str],
    /// Guest tests (names in `guest::registry`), in order.
    pub tests: &'static [&'static str],
}

pub const SCENARIOS: &[Scenario] = &[Scenario {
    name: "boot",
    summary: "direct Linux boot: CPUs, e820, ACPI, PCI, clean kernel log, MSI and MSI-X of the test device",
    cpus: 2,
    memory_mib: 512,
    vmm_args: &[],
    cmdline_extra: &["vfio.enable_unsafe_noiommu_mode=1"],
    tests: &[
        "cpus",
        "memory-map",
        "acpi-tables",
        "pci-devices",
        "kernel-log",
        "msi",
        "msix",
    ],
}];

/// Looks a scenario up by name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

impl Scenario {
    /// Machine options shared by `iovmm run` and `iovmm describe`.
    pub fn machine_args(&self) -> Vec<String> {
        let mut v = vec![
            "--memory".to_string(),
            self.memory_mib.to_string(),
            "--cpus".to_string(),
            self.cpus.to_string(),
        ];
        v.extend(self.vmm_args.iter().map(|s| s.to_string()));
        v
    }

    /// The guest kernel command line.
    pub fn guest_cmdline(&self) -> String {
        let mut parts = vec![
            BASE_CMDLINE.to_string(),
            format!("iovmm.scenario={}", self.name),
            format!("iovmm.tests={}", self.tests.join(",")),
        ];
        parts.extend(self.cmdline_extra.iter().map(|s| s.to_string()));
        parts.join(" ")
    }

    pub fn test_names(&self) -> Vec<String> {
        self.tests.iter().map(|s| s.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::{cmdline, registry};

    #[test]
    fn boot_scenario() {
        let s = find("boot").unwrap();
        assert_eq!((s.cpus, s.memory_mib), (2, 512));
        assert_eq!(s.machine_args(), vec!["--memory", "512", "--cpus", "2"]);
        assert_eq!(
            s.guest_cmdline(),
            "console=ttyS0 reboot=k panic=-1 iovmm.scenario=boot \
             iovmm.tests=cpus,memory-map,acpi-tables,pci-devices,kernel-log,msi,msix \
             vfio.enable_unsafe_noiommu_mode=1"
        );
        assert!(find("nope").is_none());
    }

    #[test]
    fn every_scenario_is_consistent_with_the_guest() {
        for s in SCENARIOS {
            assert_eq!(SCENARIOS.iter().filter(|o| o.name == s.name).count(), 1);
            assert!((1..=8).contains(&s.cpus), "{}", s.name);
            for t in s.tests {
                assert!(
                    registry::find(t).is_some(),
                    "{}: unknown guest test {t}",
                    s.name
                );
            }
            // The guest reads back exactly what the runner puts on the command line.
            let args = cmdline::parse(&s.guest_cmdline());
            assert_eq!(args.scenario.as_deref(), Some(s.name));
            assert_eq!(args.tests, Some(s.test_names()));
            // vfio no-IOMMU taints the kernel: kernel-log must come before the interrupt tests.
            if let Some(k) = s.tests.iter().position(|t| *t == "kernel-log") {
                for irq in ["msi", "msix"] {
                    if let Some(i) = s.tests.iter().position(|t| *t == irq) {
                        assert!(k < i, "{}: kernel-log after {irq}", s.name);
                    }
                }
            }
        }
    }
}
