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

/// Guest tests of every VT-d scenario, in order: the clean-boot checks first (`dmar-up` and `kernel-log` must see
/// the log before any vfio bind warns or any DMA fault is logged), then the iommufd/VFIO tests, faults last.
pub const VTD_TESTS: &[&str] = &[
    "dmar-up",
    "acpi-tables",
    "pci-devices",
    "kernel-log",
    "vfio-cdev",
    "iova-ranges",
    "dma-copy",
    "translate-probe",
    "map-cycles",
    "dma-fault",
    "dma-readonly",
    "two-ioas",
];

/// The RMRR scenario: the DMAR table, e820 and the test device's ranges with an RMRR on another device.
pub const VTD_RMRR_TESTS: &[&str] = &[
    "dmar-up",
    "memory-map",
    "acpi-tables",
    "kernel-log",
    "vfio-cdev",
    "iova-ranges",
    "dma-copy",
];

/// Guest command line of the legacy-mode VT-d scenarios: the driver on, scalable mode off, and iommufd binding
/// without interrupt remapping (the VT-d model has none yet).
pub const VTD_LEGACY_CMDLINE: &[&str] =
    &["intel_iommu=on,sm_off", "iommufd.allow_unsafe_interrupts=1"];
/// Guest command line of the scalable-mode VT-d scenarios.
pub const VTD_SCALABLE_CMDLINE: &[&str] =
    &["intel_iommu=on,sm_on", "iommufd.allow_unsafe_interrupts=1"];

/// The RMRR the `vtd-rmrr*` scenarios give device 00:05.0 (a slot no device occupies): 1 MiB at 127 MiB.
pub const RMRR_OPTION: &str = "rmrr=0x7f00000-0x7ffffff@00:05.0";

/// One VT-d scenario: 2 vCPUs, 512 MiB.
const fn vtd(
    name: &'static str,
    summary: &'static str,
    vmm_args: &'static [&'static str],
    cmdline_extra: &'static [&'static str],
    tests: &'static [&'static str],
) -> Scenario {
    Scenario {
        name,
        summary,
        cpus: 2,
        memory_mib: 512,
        vmm_args,
        cmdline_extra,
        tests,
    }
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
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
    },
    vtd(
        "vtd-legacy",
        "VT-d legacy mode (48-bit): guest intel-iommu + iommufd + VFIO cdev drive the test device's DMA",
        &["--iommu", "vtd,aw=48,sm=off"],
        VTD_LEGACY_CMDLINE,
        VTD_TESTS,
    ),
    vtd(
        "vtd-legacy-nocache",
        "vtd-legacy with the model's translation caches off (results must not change)",
        &["--iommu", "vtd,aw=48,sm=off,caching=off"],
        VTD_LEGACY_CMDLINE,
        VTD_TESTS,
    ),
    vtd(
        "vtd-scalable",
        "VT-d scalable mode, second-stage tables (48-bit): intel-iommu + iommufd + VFIO cdev DMA",
        &["--iommu", "vtd,aw=48,sm=on"],
        VTD_SCALABLE_CMDLINE,
        VTD_TESTS,
    ),
    vtd(
        "vtd-scalable-nocache",
        "vtd-scalable with the model's translation caches off (results must not change)",
        &["--iommu", "vtd,aw=48,sm=on,caching=off"],
        VTD_SCALABLE_CMDLINE,
        VTD_TESTS,
    ),
    vtd(
        "vtd-aw39",
        "VT-d scalable mode with a 39-bit (3-level) address width: the aperture and DMA near its top",
        &["--iommu", "vtd,aw=39,sm=on"],
        VTD_SCALABLE_CMDLINE,
        VTD_TESTS,
    ),
    vtd(
        "vtd-aw39-nocache",
        "vtd-aw39 with the model's translation caches off",
        &["--iommu", "vtd,aw=39,sm=on,caching=off"],
        VTD_SCALABLE_CMDLINE,
        VTD_TESTS,
    ),
    vtd(
        "vtd-rmrr",
        "VT-d with an RMRR for another device (00:05.0): DMAR parses, e820 reserves it, the test device's \
         ranges are unchanged and IOVAs inside the RMRR stay mappable for it",
        &["--iommu", "vtd,aw=48,sm=on,rmrr=0x7f00000-0x7ffffff@00:05.0"],
        VTD_SCALABLE_CMDLINE,
        VTD_RMRR_TESTS,
    ),
    vtd(
        "vtd-rmrr-nocache",
        "vtd-rmrr with the model's translation caches off",
        &["--iommu", "vtd,aw=48,sm=on,rmrr=0x7f00000-0x7ffffff@00:05.0,caching=off"],
        VTD_SCALABLE_CMDLINE,
        VTD_RMRR_TESTS,
    ),
];

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

/// Tests that bind the test device to vfio-pci (the bind logs warnings).
pub const BINDING_TESTS: &[&str] = &[
    "msi",
    "msix",
    "vfio-cdev",
    "iova-ranges",
    "dma-copy",
    "translate-probe",
    "map-cycles",
    "dma-fault",
    "dma-readonly",
    "two-ioas",
];

/// Tests that provoke DMA faults (the driver logs them at error level).
pub const FAULTING_TESTS: &[&str] = &["dma-fault", "dma-readonly", "two-ioas"];

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
    fn vtd_scenarios() {
        let s = find("vtd-scalable").unwrap();
        assert_eq!(
            s.machine_args(),
            vec![
                "--memory",
                "512",
                "--cpus",
                "2",
                "--iommu",
                "vtd,aw=48,sm=on"
            ]
        );
        let c = s.guest_cmdline();
        assert!(
            c.ends_with(" intel_iommu=on,sm_on iommufd.allow_unsafe_interrupts=1"),
            "{c}"
        );
        assert!(!c.contains("noiommu"), "{c}");
        assert!(find("vtd-legacy")
            .unwrap()
            .guest_cmdline()
            .contains(" intel_iommu=on,sm_off "));
        // Every VT-d configuration also runs with the model's caches off, with the same tests.
        for s in SCENARIOS
            .iter()
            .filter(|s| s.name.starts_with("vtd-") && !s.name.ends_with("-nocache"))
        {
            let n = find(&format!("{}-nocache", s.name))
                .unwrap_or_else(|| panic!("{} has no -nocache twin", s.name));
            let opt = |sc: &Scenario| sc.vmm_args[1].to_string();
            assert_eq!(opt(n), format!("{},caching=off", opt(s)), "{}", s.name);
            assert_eq!(
                (n.tests, n.cmdline_extra),
                (s.tests, s.cmdline_extra),
                "{}",
                s.name
            );
        }
        assert!(find("vtd-rmrr").unwrap().vmm_args[1].ends_with(RMRR_OPTION));
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
            // vfio no-IOMMU taints the kernel and an iommufd bind without interrupt remapping warns:
            // kernel-log must come before every test that binds the device. dmar-up must see the log before
            // any DMA fault is logged.
            let pos = |name: &str| s.tests.iter().position(|t| *t == name);
            for (first, then) in [("kernel-log", BINDING_TESTS), ("dmar-up", FAULTING_TESTS)] {
                if let Some(k) = pos(first) {
                    for t in then {
                        if let Some(i) = pos(t) {
                            assert!(k < i, "{}: {first} after {t}", s.name);
                        }
                    }
                }
            }
            // A VT-d scenario hands its machine options to describe too, so expect.json has the IOMMU.
            if s.vmm_args.contains(&"--iommu") {
                assert!(
                    s.machine_args().iter().any(|a| a == "--iommu"),
                    "{}",
                    s.name
                );
            }
        }
    }
}
