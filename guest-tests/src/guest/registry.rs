//! The table of guest tests. A scenario names tests from here (`iovmm.tests=a,b,c`); adding a test is one
//! entry in [`TESTS`] plus its module.

use super::context::Context;
use super::report::Report;
use super::vtd::nest::{
    dma as nested_dma, faults as nested_faults, invalidate, monitor, probe, replace,
};
use super::vtd::{
    cdev, copy, cycles, default_domain, dmar_up, fault, hw_info, ir, ranges, translate, two_ioas,
};
use super::{
    acpi, cpus, dmatest, ioat, kernel_dma, kmsg, memmap, msi, pci, smmuv3, tce, upstream_vfio,
    vfio_type1, vmm_end,
};

/// One guest test.
pub struct TestCase {
    pub name: &'static str,
    pub summary: &'static str,
    pub run: fn(&Context) -> Report,
}

/// Every test the guest binary knows, in the default order (interrupt tests last: vfio no-IOMMU mode taints
/// the kernel and warns, so `kernel-log` must run before them).
pub const TESTS: &[TestCase] = &[
    TestCase {
        name: "cpus",
        summary: "online CPUs and /proc/cpuinfo match the vCPU count",
        run: cpus::run,
    },
    TestCase {
        name: "memory-map",
        summary: "/sys/firmware/memmap equals the published e820 map",
        run: memmap::run,
    },
    TestCase {
        name: "acpi-tables",
        summary: "ACPI tables in sysfs have the published lengths and hashes",
        run: acpi::run,
    },
    TestCase {
        name: "pci-devices",
        summary: "PCI functions, IDs, classes and BAR assignments match",
        run: pci::run,
    },
    TestCase {
        name: "kernel-log",
        summary: "no kernel message at warning level or worse",
        run: kmsg::run,
    },
    TestCase {
        name: "kernel-dma",
        summary: "the kernel's pci_endpoint_test driver moves CRC-checked data through the DMA API (WRITE/READ/COPY, 4 KiB..1 MiB) and MSI",
        run: kernel_dma::run,
    },
    TestCase {
        name: "dmatest",
        summary: "Linux's dmatest over the I/OAT channel through each default-domain type (strict, lazy, identity where ECAP.PT): every copy verified, 0 failures",
        run: dmatest::run,
    },
    TestCase {
        name: "ioat-dma",
        summary: "the kernel's ioatdma driver binds the I/OAT engine, its probe self-test copy passes through the DMA-API domain, its MSI-X fires (remapped)",
        run: ioat::run,
    },
    TestCase {
        name: "dmar-up",
        summary: "intel-iommu brought the VT-d unit up: log and sysfs show the published base, CAP, ECAP, RMRRs",
        run: dmar_up::run,
    },
    TestCase {
        name: "vfio-cdev",
        summary: "test device via vfio-pci cdev + iommufd: bind, attach, GET_HW_INFO is VT-d with CAP/ECAP",
        run: cdev::run,
    },
    TestCase {
        name: "iova-ranges",
        summary: "IOMMU_IOAS_IOVA_RANGES equals the published ranges; maps past the aperture or in MSI fail",
        run: ranges::run,
    },
    TestCase {
        name: "dma-copy",
        summary: "device copy/fill through 4 KiB and 2 MiB mappings, every byte checked",
        run: copy::run,
    },
    TestCase {
        name: "translate-probe",
        summary: "the translate probe returns the pinned page's physical address, size and permissions",
        run: translate::run,
    },
    TestCase {
        name: "dma-fault",
        summary: "DMA to/from unmapped IOVAs faults on the device and in the guest's DMAR fault log",
        run: fault::run_fault,
    },
    TestCase {
        name: "dma-readonly",
        summary: "a read-only mapping can be read, not written (device fault, DMAR log line)",
        run: fault::run_readonly,
    },
    TestCase {
        name: "map-cycles",
        summary: "200 map/DMA/verify/unmap rounds reusing IOVAs with other buffers (invalidation)",
        run: cycles::run,
    },
    TestCase {
        name: "two-ioas",
        summary: "re-attaching the device to another IOAS switches the translation DMA uses",
        run: two_ioas::run,
    },
    TestCase {
        name: "ir-up",
        summary: "interrupt remapping on (x2APIC), IO-APIC and the device's MSI/MSI-X through it, exactly once each",
        run: ir::run,
    },
    TestCase {
        name: "vfio-type1",
        summary: "legacy VFIO (group + type1 v2 container): IOVA ranges as published, map limits, DMA through RO/RW mappings, faults",
        run: vfio_type1::run,
    },
    TestCase {
        name: "ir-kernel",
        summary: "interrupt remapping on as the kernel shows it: log, CPUs, every IO-APIC interrupt remapped (no VFIO)",
        run: ir::run_kernel,
    },
    TestCase {
        name: "hw-info",
        summary: "IOMMU_GET_HW_INFO CAP/ECAP as published, with NEST, FLTS, SLTS and the configured FL5LP/FL1GP",
        run: hw_info::run,
    },
    TestCase {
        name: "default-domain",
        summary: "the kernel's DMA domain of the test device translates with the stage ECAP implies (fault reason)",
        run: default_domain::run,
    },
    TestCase {
        name: "nested-dma",
        summary: "DMA through guest-built stage-1 tables over the IOAS: 4 KiB, 2 MiB, 1 GiB pages, A/D flags",
        run: nested_dma::run,
    },
    TestCase {
        name: "nested-probe",
        summary: "the translate probe of nested IOVAs returns the GPA our stage 1 + stage 2 imply",
        run: probe::run,
    },
    TestCase {
        name: "nested-invalidate",
        summary: "stage-1 edits + IOMMU_HWPT_INVALIDATE (leaf, all, non-leaf): DMA follows the new tables",
        run: invalidate::run,
    },
    TestCase {
        name: "nested-replace",
        summary: "replacing the attached nested HWPT (and the IOAS in between) switches DMA's tables",
        run: replace::run,
    },
    TestCase {
        name: "monitor-check",
        summary: "nested tables stay installed while the runner walks them through the VMM monitor",
        run: monitor::run,
    },
    TestCase {
        name: "nested-faults",
        summary: "stage-1 and stage-2 faults of nested DMA: device and DMAR log agree on first/second-stage reasons",
        run: nested_faults::run,
    },
    TestCase {
        name: "smmuv3-bringup",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case bringup",
        run: smmuv3::bringup,
    },
    TestCase {
        name: "smmuv3-gbpa",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case gbpa",
        run: smmuv3::gbpa,
    },
    TestCase {
        name: "smmuv3-strtab-linear",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case strtab-linear",
        run: smmuv3::strtab_linear,
    },
    TestCase {
        name: "smmuv3-strtab-2lvl",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case strtab-2lvl",
        run: smmuv3::strtab_2lvl,
    },
    TestCase {
        name: "smmuv3-bypass",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case bypass",
        run: smmuv3::bypass,
    },
    TestCase {
        name: "smmuv3-abort",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case abort",
        run: smmuv3::abort,
    },
    TestCase {
        name: "smmuv3-bad-ste",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case bad-ste",
        run: smmuv3::bad_ste,
    },
    TestCase {
        name: "smmuv3-s1-4k",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case s1-4k",
        run: smmuv3::s1_4k,
    },
    TestCase {
        name: "smmuv3-s1-granule",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case s1-granule",
        run: smmuv3::s1_granule,
    },
    TestCase {
        name: "smmuv3-s1-ssid",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case s1-ssid",
        run: smmuv3::s1_ssid,
    },
    TestCase {
        name: "smmuv3-s2",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case s2",
        run: smmuv3::s2,
    },
    TestCase {
        name: "smmuv3-nested",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case nested",
        run: smmuv3::nested,
    },
    TestCase {
        name: "smmuv3-readonly",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case readonly",
        run: smmuv3::readonly,
    },
    TestCase {
        name: "smmuv3-unmapped",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case unmapped",
        run: smmuv3::unmapped,
    },
    TestCase {
        name: "smmuv3-tlb-invalidate",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case tlb-invalidate",
        run: smmuv3::tlb_invalidate,
    },
    TestCase {
        name: "smmuv3-cfg-invalidate",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case cfg-invalidate",
        run: smmuv3::cfg_invalidate,
    },
    TestCase {
        name: "smmuv3-cmd-sync-msi",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case cmd-sync-msi",
        run: smmuv3::cmd_sync_msi,
    },
    TestCase {
        name: "smmuv3-cmd-illegal",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case cmd-illegal",
        run: smmuv3::cmd_illegal,
    },
    TestCase {
        name: "smmuv3-evtq-irq",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case evtq-irq",
        run: smmuv3::evtq_irq,
    },
    TestCase {
        name: "smmuv3-evtq-overflow",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case evtq-overflow",
        run: smmuv3::evtq_overflow,
    },
    TestCase {
        name: "smmuv3-disable-reenable",
        summary: "SMMUv3 bring-up driver over /dev/mem: suite case disable-reenable",
        run: smmuv3::disable_reenable,
    },
    TestCase {
        name: "smmuv3-monitor",
        summary: "SMMUv3 nested stream (STE/CD/4-level stage 1 under stage 2) stays installed while the runner \
                  walks it through the VMM monitor; the walk sets no AF, a real DMA does",
        run: super::smmuv3_monitor::run,
    },
    TestCase {
        name: "tce-boot-windows",
        summary: "TCE unit as booted: the TVEs hold the seed's two windows (LIOBNs, page sizes) = the published permitted ranges",
        run: tce::boot_windows,
    },
    TestCase {
        name: "tce-id",
        summary: "TCE bring-up driver over /dev/mem (hardware view): suite case id",
        run: tce::id,
    },
    TestCase {
        name: "tce-one-level-4k",
        summary: "TCE bring-up driver over /dev/mem (hardware view): suite case one-level-4k",
        run: tce::one_level_4k,
    },
    TestCase {
        name: "tce-multi-level",
        summary: "TCE bring-up driver over /dev/mem (hardware view): suite case multi-level",
        run: tce::multi_level,
    },
    TestCase {
        name: "tce-big-pages",
        summary: "TCE bring-up driver over /dev/mem (hardware view): suite case big-pages",
        run: tce::big_pages,
    },
    TestCase {
        name: "tce-readonly",
        summary: "TCE bring-up driver over /dev/mem (hardware view): suite case readonly",
        run: tce::readonly,
    },
    TestCase {
        name: "tce-kill",
        summary: "TCE bring-up driver over /dev/mem (hardware view): suite case kill",
        run: tce::kill,
    },
    TestCase {
        name: "tce-ranges",
        summary: "TCE bring-up driver over /dev/mem (hardware view): suite case ranges",
        run: tce::ranges,
    },
    TestCase {
        name: "tce-tve-validate",
        summary: "TCE bring-up driver over /dev/mem (hardware view): suite case tve-validate",
        run: tce::tve_validate,
    },
    TestCase {
        name: "tce-eeh-outside",
        summary: "TCE bring-up driver over /dev/mem (hardware view): suite case eeh-outside",
        run: tce::eeh_outside,
    },
    TestCase {
        name: "tce-eeh-invalid",
        summary: "TCE bring-up driver over /dev/mem (hardware view): suite case eeh-invalid",
        run: tce::eeh_invalid,
    },
    TestCase {
        name: "vfio_dma_mapping_test",
        summary: "Linux 7.3's VFIO selftest on the test device: map/unmap of anonymous, 2 MiB and 1 GiB hugetlb \
                  memory and the IOVA-space limits, in every IOMMU mode (each upstream case a subtest)",
        run: upstream_vfio::dma_mapping,
    },
    TestCase {
        name: "vfio_dma_mapping_mmio_test",
        summary: "Linux 7.3's VFIO selftest on the test device: IOMMU mappings of its mmapped BAR (full, partial, \
                  misaligned) in every IOMMU mode",
        run: upstream_vfio::dma_mapping_mmio,
    },
    TestCase {
        name: "vfio_iommufd_setup_test",
        summary: "Linux 7.3's VFIO selftest on the test device: cdev bind/attach/detach to iommufd and its errors",
        run: upstream_vfio::iommufd_setup,
    },
    TestCase {
        name: "vfio_pci_device_test",
        summary: "Linux 7.3's VFIO selftest on the test device: config space, BARs, MSI/MSI-X triggers, reset",
        run: upstream_vfio::pci_device,
    },
    TestCase {
        name: "vfio_pci_device_init_perf_test",
        summary: "Linux 7.3's VFIO selftest on the test device: device init timing in every IOMMU mode",
        run: upstream_vfio::pci_device_init_perf,
    },
    TestCase {
        name: "vfio_pci_sriov_uapi_test",
        summary: "Linux 7.3's VFIO selftest on the test device: VF token uAPI of a VF it creates (skips without \
                  SR-IOV)",
        run: upstream_vfio::pci_sriov_uapi,
    },
    TestCase {
        name: "vfio_pci_driver_test",
        summary: "Linux 7.3's VFIO selftest on the I/OAT engine through the selftests' ioat driver: memcpy, \
                  unmapped IOVAs, MSI, memcpy storm, in every IOMMU mode",
        run: upstream_vfio::pci_driver,
    },
    TestCase {
        name: "msi",
        summary: "the test device's MSI reaches user space through VFIO",
        run: msi::run_msi,
    },
    TestCase {
        name: "msix",
        summary: "the test device's MSI-X vector reaches user space through VFIO",
        run: msi::run_msix,
    },
    TestCase {
        name: "panic",
        summary: "crash the kernel (sysrq c): the runner checks iovmm exits 125 saying the kernel panicked",
        run: vmm_end::panic,
    },
    TestCase {
        name: "hang",
        summary: "never return: the runner checks iovmm's --timeout ends the run with 124",
        run: vmm_end::hang,
    },
];

/// Looks a test up by name.
pub fn find(name: &str) -> Option<&'static TestCase> {
    TESTS.iter().find(|t| t.name == name)
}

/// The names of every registered test, in default order.
pub fn all_names() -> Vec<String> {
    TESTS.iter().map(|t| t.name.to_string()).collect()
}

/// Runs one test by name, turning an unknown name or a panic into a failed report.
pub fn run_one(name: &str, ctx: &Context) -> Report {
    let Some(tc) = find(name) else {
        return Report::failure(format!(
            "unknown test {name:?}; known: {}",
            all_names().join(",")
        ));
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (tc.run)(ctx))) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Report::failure(format!("test panicked: {msg}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn ctx() -> Context {
        Context {
            root: PathBuf::from("/nonexistent-guest-root"),
            expect: Err("no expect.json".into()),
            scenario: "boot".into(),
        }
    }

    #[test]
    fn names_are_unique_and_findable() {
        let names = all_names();
        for n in &names {
            assert_eq!(names.iter().filter(|m| *m == n).count(), 1, "{n}");
            assert_eq!(find(n).map(|t| t.name), Some(n.as_str()));
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn interrupt_tests_come_after_kernel_log() {
        let names = all_names();
        let pos = |n: &str| names.iter().position(|m| m == n).unwrap();
        assert!(pos("kernel-log") < pos("msi"));
        assert!(pos("kernel-log") < pos("msix"));
    }

    #[test]
    fn unknown_test_fails_with_diagnostic() {
        let r = run_one("bogus", &ctx());
        assert!(!r.passed());
        assert!(r.diagnostics[0].contains("unknown test \"bogus\""));
    }

    #[test]
    fn missing_expectations_fail_every_comparison_test() {
        for name in [
            "cpus",
            "memory-map",
            "acpi-tables",
            "pci-devices",
            "msi",
            "msix",
            "dmar-up",
            "vfio-cdev",
            "iova-ranges",
            "dma-copy",
            "translate-probe",
            "dma-fault",
            "dma-readonly",
            "map-cycles",
            "two-ioas",
            "ir-up",
            "hw-info",
            "default-domain",
            "nested-dma",
            "nested-probe",
            "nested-invalidate",
            "nested-replace",
            "monitor-check",
            "nested-faults",
        ] {
            let r = run_one(name, &ctx());
            assert!(!r.passed(), "{name} passed without expectations");
            assert!(
                r.diagnostics.iter().any(|d| d.contains("no expect.json")),
                "{name}: {:?}",
                r.diagnostics
            );
        }
    }
}
