//! The scenario table: a scenario is a name, the VMM's machine options, guest command line extras and the
//! guest tests to run (in order). Adding a scenario is one entry in [`SCENARIOS`].

use super::kernels::{GuestKernel, KernelVersion};

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
    /// For scenarios that end the VM on purpose: how the VMM must report it (its last test never reports).
    pub end: Option<VmmEnd>,
    /// Our kernel build or the distribution's binary kernel (of the version the run asks for).
    pub kernel: GuestKernel,
    /// The kernel versions the scenario exists for (`iovmm-runner run` refuses any other; `list --names
    /// --kernel-version V` lists only the scenarios of V).
    pub kernel_versions: &'static [KernelVersion],
    /// Initramfs fragments from the images directory appended to the guest initramfs (after the kernel's own).
    pub initrd_extra: &'static [ImageFragment],
}

/// An initramfs fragment a scenario's guest needs, built by a script in images/.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageFragment {
    /// File name in the images directory.
    pub file: &'static str,
    /// How to build it.
    pub build: &'static str,
}

/// Linux 7.3's own VFIO selftests, built statically from Debian's linux-source-7.3: `/opt/vfio-selftests/*`.
pub const VFIO_SELFTESTS: ImageFragment = ImageFragment {
    file: "vfio-selftests.cpio.gz",
    build: "images/build-vfio-selftests.sh",
};

/// Every kernel version: most scenarios test iovmm, whatever kernel drives it.
pub const ALL_KERNELS: &[KernelVersion] = &KernelVersion::ALL;

/// How a scenario's VMM run must end when the guest ends it the hard way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmmEnd {
    /// iovmm's exit status (125 reset/panic, 124 timeout).
    pub status: i32,
    /// A line iovmm must print on stderr.
    pub message: &'static str,
    /// iovmm's own `--timeout` for this scenario (seconds), when it is what ends the run.
    pub vmm_timeout_secs: Option<u64>,
}

/// Guest tests of every VT-d scenario, in order: the clean-boot checks first (`dmar-up` and `kernel-log` must see
/// the log before any vfio bind warns or any DMA fault is logged), then the iommufd/VFIO tests, faults last.
pub const VTD_TESTS: &[&str] = &[
    "dmar-up",
    "acpi-tables",
    "pci-devices",
    "kernel-log",
    "default-domain",
    "vfio-cdev",
    "iova-ranges",
    "dma-copy",
    "translate-probe",
    "map-cycles",
    "dma-fault",
    "dma-readonly",
    "two-ioas",
    "vfio-type1",
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

/// Guest tests of the nested-translation scenarios: clean boot and interrupt remapping first, then the nested
/// HWPT tests (faults last), with one second-stage-only DMA test as a baseline beside them.
pub const VTD_NESTED_TESTS: &[&str] = &[
    "dmar-up",
    "acpi-tables",
    "pci-devices",
    "kernel-log",
    "ir-up",
    "hw-info",
    "vfio-cdev",
    "iova-ranges",
    "dma-copy",
    "nested-dma",
    "nested-probe",
    "nested-invalidate",
    "nested-replace",
    "monitor-check",
    "nested-faults",
];

/// Guest tests of the first-stage scenario: the kernel's own DMA domain (first-stage tables) before anything
/// binds the device, interrupt remapping, and the second-stage iommufd tests with FLTS present. (`default-domain`
/// runs in every VT-d scenario: legacy skips it, aw=39 has no first stage and expects a second-stage reason.)
pub const VTD_FIRST_STAGE_TESTS: &[&str] = &[
    "dmar-up",
    "acpi-tables",
    "pci-devices",
    "kernel-log",
    "default-domain",
    "kernel-dma",
    "ir-up",
    "hw-info",
    "vfio-cdev",
    "iova-ranges",
    "dma-copy",
    "translate-probe",
    "map-cycles",
    "dma-fault",
    "dma-readonly",
    "two-ioas",
];

/// Guest command line of the scenarios with interrupt remapping: no `iommufd.allow_unsafe_interrupts`, so the
/// iommufd bind itself proves MSI isolation.
pub const VTD_IR_CMDLINE: &[&str] = &["intel_iommu=on,sm_on"];

/// The `--iommu` options of the nested scenarios.
pub const VTD_NESTED_OPTIONS: &str = "vtd,aw=48,sm=on,fl=on,nest=on,ir=on,eim=on";
/// The first-stage scenarios: first- and second-stage tables, no nesting.
pub const VTD_FIRST_STAGE_OPTIONS: &str = "vtd,aw=48,sm=on,fl=on,nest=off,ir=on,eim=on";
/// The scalable scenarios: second-stage tables only.
pub const VTD_SCALABLE_OPTIONS: &str = "vtd,aw=48,sm=on,fl=off,nest=off";
pub const VTD_NESTED_57_OPTIONS: &str = "vtd,aw=57,sm=on,fl=on,nest=on,fl5=on,ir=on,eim=on";

/// The RMRR the `vtd-rmrr*` scenarios give device 00:05.0 (a slot no device occupies): 1 MiB at 127 MiB.
pub const RMRR_OPTION: &str = "rmrr=0x7f00000-0x7ffffff@00:05.0";

/// Guest tests of the SMMUv3 scenarios: every case of the shared bring-up suite, in suite order
/// (`guest::smmuv3`; the x86 guest kernel has no SMMUv3 driver, so our driver runs over /dev/mem).
pub const SMMUV3_TESTS: &[&str] = &[
    "smmuv3-bringup",
    "smmuv3-gbpa",
    "smmuv3-strtab-linear",
    "smmuv3-strtab-2lvl",
    "smmuv3-bypass",
    "smmuv3-abort",
    "smmuv3-bad-ste",
    "smmuv3-s1-4k",
    "smmuv3-s1-granule",
    "smmuv3-s1-ssid",
    "smmuv3-s2",
    "smmuv3-nested",
    "smmuv3-readonly",
    "smmuv3-unmapped",
    "smmuv3-tlb-invalidate",
    "smmuv3-cfg-invalidate",
    "smmuv3-cmd-sync-msi",
    "smmuv3-cmd-illegal",
    "smmuv3-evtq-irq",
    "smmuv3-evtq-overflow",
    "smmuv3-disable-reenable",
    "smmuv3-monitor",
];

/// Guest command line of the SMMUv3 scenarios: 16 MiB of RAM at 256 MiB kept from the kernel for the bring-up
/// driver's tables, queues and DMA buffers (`crate::bringup::devmem::RAM_BASE`). Every layer passes words
/// without a shell or single-quoted, so the `$` needs no escaping.
pub const SMMUV3_CMDLINE: &[&str] = &["memmap=16M$0x10000000"];

/// Guest command line of the TCE scenarios: the SMMUv3 scenarios' reserved RAM, and no ioatdma. An x86 kernel has
/// no TCE driver, so a kernel driver's DMA meets empty TCE tables and freezes the PE (EEH) before the suite runs:
/// ioatdma's probe-time self-test would do exactly that.
pub const TCE_CMDLINE: &[&str] = &[
    "memmap=16M$0x10000000",
    "initcall_blacklist=ioat_init_module",
];

/// Guest tests of the TCE scenarios: every case of the shared TCE bring-up suite, in suite order (`guest::tce`;
/// the x86 guest kernel has no TCE driver, so our driver runs over the hardware view through /dev/mem), after
/// `tce-boot-windows`, which must see the TVEs as the VMM left them. The reserved RAM is the SMMUv3
/// scenarios' ([`SMMUV3_CMDLINE`]).
pub const TCE_TESTS: &[&str] = &[
    "tce-boot-windows",
    "tce-id",
    "tce-one-level-4k",
    "tce-multi-level",
    "tce-big-pages",
    "tce-readonly",
    "tce-kill",
    "tce-ranges",
    "tce-tve-validate",
    "tce-eeh-outside",
    "tce-eeh-invalid",
];

/// Guest tests of the `dmatest-*` scenarios: a clean boot with ioatdma's probe self-test through the DMA-API
/// domain, then Linux's dmatest through every default-domain type the unit allows.
pub const DMATEST_TESTS: &[&str] = &["dmar-up", "kernel-log", "ioat-dma", "dmatest"];

/// Guest tests of the `distro-*` scenarios: Debian's own kernels boot clean (no warning-level line) with the VT-d
/// unit and interrupt remapping up, and a driver Debian ships (ioatdma) moves data through the DMA-API domain.
/// VFIO through the legacy type1 container only: Debian builds its kernels without IOMMUFD.
pub const DISTRO_TESTS: &[&str] = &[
    "cpus",
    "memory-map",
    "acpi-tables",
    "pci-devices",
    "dmar-up",
    "kernel-log",
    "ir-kernel",
    "ioat-dma",
    "vfio-type1",
];

/// One scenario on the distribution's own kernel (Debian's, of the version the run asks for): 2 vCPUs, 512 MiB.
const fn distro(
    name: &'static str,
    summary: &'static str,
    vmm_args: &'static [&'static str],
    cmdline_extra: &'static [&'static str],
) -> Scenario {
    Scenario {
        name,
        summary,
        cpus: 2,
        memory_mib: 512,
        vmm_args,
        cmdline_extra,
        tests: DISTRO_TESTS,
        end: None,
        kernel: GuestKernel::Distro,
        kernel_versions: ALL_KERNELS,
        initrd_extra: &[],
    }
}

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
        end: None,
        kernel: GuestKernel::Built,
        kernel_versions: ALL_KERNELS,
        initrd_extra: &[],
    }
}

/// Guest tests of the `upstream-vfio-*` scenarios: Linux 7.3's own VFIO selftests, one guest test per binary
/// (`guest::upstream_vfio`), each case of a binary reported as a subtest. The device tests run on the DMA test
/// device, `vfio_pci_driver_test` on the I/OAT engine (the selftests' ioat driver matches 8086:2021); the SR-IOV
/// test, which creates and removes a VF, last of the test device's.
pub const UPSTREAM_VFIO_TESTS: &[&str] = &[
    "vfio_dma_mapping_test",
    "vfio_dma_mapping_mmio_test",
    "vfio_iommufd_setup_test",
    "vfio_pci_device_test",
    "vfio_pci_device_init_perf_test",
    "vfio_pci_sriov_uapi_test",
    "vfio_pci_driver_test",
];

/// Guest memory of the `upstream-vfio-*` scenarios: vfio_pci_driver_test maps a 1 GiB buffer per case, and
/// vfio_dma_mapping_test's hugetlb variants need a 1 GiB page reserved at boot.
pub const UPSTREAM_VFIO_MEMORY_MIB: u32 = 4096;

/// What the selftests need on the guest command line besides the IOMMU: huge pages for
/// vfio_dma_mapping_test's `anonymous_hugetlb_1gb` / `_2mb` variants (one page at a time: each case unmaps its
/// page before the next), and vfio-pci's SR-IOV support for vfio_pci_sriov_uapi_test. Interrupt remapping is
/// on in every `upstream-vfio-*` configuration, so VFIO binds without `allow_unsafe_interrupts`.
macro_rules! upstream_vfio_cmdline {
    ($mode:literal) => {
        &[
            $mode,
            "hugepagesz=1G",
            "hugepages=1",
            "hugepagesz=2M",
            "hugepages=16",
            "vfio_pci.enable_sriov=1",
        ]
    };
}
/// Legacy mode (`sm=off`).
pub const UPSTREAM_VFIO_LEGACY_CMDLINE: &[&str] = upstream_vfio_cmdline!("intel_iommu=on,sm_off");
/// Scalable mode.
pub const UPSTREAM_VFIO_SCALABLE_CMDLINE: &[&str] = upstream_vfio_cmdline!("intel_iommu=on,sm_on");

/// One `upstream-vfio-*` scenario: Linux 7.3's VFIO selftests on our 7.3 kernel, 2 vCPUs, 4 GiB.
const fn upstream_vfio(
    name: &'static str,
    summary: &'static str,
    vmm_args: &'static [&'static str],
    cmdline_extra: &'static [&'static str],
) -> Scenario {
    Scenario {
        name,
        summary,
        cpus: 2,
        memory_mib: UPSTREAM_VFIO_MEMORY_MIB,
        vmm_args,
        cmdline_extra,
        tests: UPSTREAM_VFIO_TESTS,
        end: None,
        kernel: GuestKernel::Built,
        kernel_versions: &[KernelVersion::V7_3],
        initrd_extra: &[VFIO_SELFTESTS],
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
            "kernel-dma",
            "msi",
            "msix",
        ],
        end: None,
        kernel: GuestKernel::Built,
        kernel_versions: ALL_KERNELS,
        initrd_extra: &[],
    },
    Scenario {
        name: "guest-panic",
        summary: "the guest kernel panics (sysrq c): iovmm ends the run with status 125 and says it panicked",
        cpus: 1,
        memory_mib: 256,
        vmm_args: &[],
        cmdline_extra: &[],
        tests: &["cpus", "panic"],
        end: Some(VmmEnd { status: 125, message: "iovmm: guest kernel panicked", vmm_timeout_secs: None }),
        kernel: GuestKernel::Built,
        kernel_versions: ALL_KERNELS,
        initrd_extra: &[],
    },
    Scenario {
        name: "guest-hang",
        summary: "the guest hangs: iovmm's --timeout ends the run with status 124",
        cpus: 1,
        memory_mib: 256,
        vmm_args: &[],
        cmdline_extra: &[],
        tests: &["cpus", "hang"],
        end: Some(VmmEnd { status: 124, message: "iovmm: timeout", vmm_timeout_secs: Some(20) }),
        kernel: GuestKernel::Built,
        kernel_versions: ALL_KERNELS,
        initrd_extra: &[],
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
        "VT-d scalable mode with second-stage tables only (no FLTS: every domain Linux makes, its DMA-API domain \
         and iommufd's, is second-stage): intel-iommu + iommufd + VFIO cdev DMA",
        &["--iommu", VTD_SCALABLE_OPTIONS],
        VTD_SCALABLE_CMDLINE,
        VTD_TESTS,
    ),
    vtd(
        "vtd-scalable-nocache",
        "vtd-scalable with the model's translation caches off (results must not change)",
        &["--iommu", "vtd,aw=48,sm=on,fl=off,nest=off,caching=off"],
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
    vtd(
        "vtd-nested",
        "VT-d nesting (48-bit, 4-level stage 1) with interrupt remapping: guest-built stage-1 tables over an \
         iommufd nest parent, DMA/probe/invalidate/replace/faults, the VMM monitor's walk of them",
        &["--iommu", VTD_NESTED_OPTIONS],
        VTD_IR_CMDLINE,
        VTD_NESTED_TESTS,
    ),
    vtd(
        "vtd-nested-nocache",
        "vtd-nested with the model's translation caches off",
        &["--iommu", "vtd,aw=48,sm=on,fl=on,nest=on,ir=on,eim=on,caching=off"],
        VTD_IR_CMDLINE,
        VTD_NESTED_TESTS,
    ),
    vtd(
        "vtd-nested-57",
        "vtd-nested with a 57-bit unit and 5-level stage-1 tables (addr_width 57)",
        &["--iommu", VTD_NESTED_57_OPTIONS],
        VTD_IR_CMDLINE,
        VTD_NESTED_TESTS,
    ),
    vtd(
        "vtd-nested-57-nocache",
        "vtd-nested-57 with the model's translation caches off",
        &[
            "--iommu",
            "vtd,aw=57,sm=on,fl=on,nest=on,fl5=on,ir=on,eim=on,caching=off",
        ],
        VTD_IR_CMDLINE,
        VTD_NESTED_TESTS,
    ),
    vtd(
        "vtd-first-stage",
        "VT-d with first- and second-stage tables, no nesting, and interrupt remapping: the kernel's DMA domain \
         is first-stage (observable through a fault), the iommufd tests pass on whichever stage the kernel picks",
        &["--iommu", VTD_FIRST_STAGE_OPTIONS],
        VTD_IR_CMDLINE,
        VTD_FIRST_STAGE_TESTS,
    ),
    vtd(
        "vtd-first-stage-nocache",
        "vtd-first-stage with the model's translation caches off",
        &["--iommu", "vtd,aw=48,sm=on,fl=on,nest=off,ir=on,eim=on,caching=off"],
        VTD_IR_CMDLINE,
        VTD_FIRST_STAGE_TESTS,
    ),
    vtd(
        "smmuv3",
        "Arm SMMUv3 (default options) driven by our bring-up driver over /dev/mem: stream tables, CDs, S1/S2/\
         nested DMA, faults and events, invalidation, command errors, event-queue overflow",
        &["--iommu", "smmuv3"],
        SMMUV3_CMDLINE,
        SMMUV3_TESTS,
    ),
    vtd(
        "smmuv3-nocache",
        "smmuv3 with the model's TLB and configuration cache off (stale-entry checks flip accordingly)",
        &["--iommu", "smmuv3,caching=off"],
        SMMUV3_CMDLINE,
        SMMUV3_TESTS,
    ),
    vtd(
        "tce",
        "POWER TCE unit (default options: the seed's windows, EEH freeze) driven through its hardware view by our \
         bring-up driver over /dev/mem: 1-level/multi-level tables, 4K/64K/2M pages, TCE kill, permitted ranges, \
         TVE validation, EEH freeze with BAR0 all ones and PE reset",
        &["--iommu", "tce"],
        TCE_CMDLINE,
        TCE_TESTS,
    ),
    vtd(
        "tce-nocache",
        "tce with the model's TCE cache off (stale-entry checks flip accordingly)",
        &["--iommu", "tce,caching=off"],
        TCE_CMDLINE,
        TCE_TESTS,
    ),
    vtd(
        "dmatest-legacy",
        "Linux's dmatest over the I/OAT engine behind VT-d legacy mode, through strict, lazy and identity \
         default domains",
        &["--iommu", "vtd,aw=48,sm=off"],
        &["intel_iommu=on,sm_off"],
        DMATEST_TESTS,
    ),
    vtd(
        "dmatest-scalable",
        "dmatest through VT-d scalable-mode second-stage domains (strict, lazy) and pass-through",
        &["--iommu", VTD_SCALABLE_OPTIONS],
        &["intel_iommu=on,sm_on"],
        DMATEST_TESTS,
    ),
    vtd(
        "dmatest-first-stage",
        "dmatest through VT-d first-stage DMA-API domains (strict, lazy) and pass-through",
        &["--iommu", VTD_FIRST_STAGE_OPTIONS],
        &["intel_iommu=on,sm_on"],
        DMATEST_TESTS,
    ),
    distro(
        "distro-legacy",
        "Debian's own kernel on VT-d legacy mode with interrupt remapping: clean log, DMAR and IR up, ioatdma's \
         self-test DMA through the DMA-API domain",
        &["--iommu", "vtd,aw=48,sm=off,ir=on,eim=on"],
        &["intel_iommu=on,sm_off"],
    ),
    distro(
        "distro-scalable",
        "Debian's own kernel on VT-d scalable mode, second-stage tables only: clean log, DMAR and IR up, ioatdma DMA",
        &["--iommu", "vtd,aw=48,sm=on,fl=off,nest=off,ir=on,eim=on"],
        &["intel_iommu=on,sm_on"],
    ),
    distro(
        "distro-first-stage",
        "Debian's own kernel on VT-d scalable mode with first-stage tables (its DMA-API domain is first-stage): \
         clean log, DMAR and IR up, ioatdma DMA",
        &["--iommu", VTD_FIRST_STAGE_OPTIONS],
        &["intel_iommu=on,sm_on"],
    ),
    upstream_vfio(
        "upstream-vfio-legacy",
        "Linux 7.3's own VFIO selftests (every IOMMU mode: type1, type1v2, iommufd compat, iommufd) on VT-d \
         legacy mode: DMA mapping, MMIO mapping, cdev setup, device, init perf, SR-IOV uAPI; the I/OAT driver test",
        &["--iommu", "vtd,aw=48,sm=off"],
        UPSTREAM_VFIO_LEGACY_CMDLINE,
    ),
    upstream_vfio(
        "upstream-vfio-legacy-nocache",
        "upstream-vfio-legacy with the model's translation caches off",
        &["--iommu", "vtd,aw=48,sm=off,caching=off"],
        UPSTREAM_VFIO_LEGACY_CMDLINE,
    ),
    upstream_vfio(
        "upstream-vfio-scalable",
        "Linux 7.3's own VFIO selftests on VT-d scalable mode, second-stage tables only",
        &["--iommu", VTD_SCALABLE_OPTIONS],
        UPSTREAM_VFIO_SCALABLE_CMDLINE,
    ),
    upstream_vfio(
        "upstream-vfio-scalable-nocache",
        "upstream-vfio-scalable with the model's translation caches off",
        &["--iommu", "vtd,aw=48,sm=on,fl=off,nest=off,caching=off"],
        UPSTREAM_VFIO_SCALABLE_CMDLINE,
    ),
    upstream_vfio(
        "upstream-vfio-first-stage",
        "Linux 7.3's own VFIO selftests on VT-d scalable mode with first- and second-stage tables, no nesting, \
         interrupt remapping (7.3's iommufd domains are first-stage)",
        &["--iommu", VTD_FIRST_STAGE_OPTIONS],
        UPSTREAM_VFIO_SCALABLE_CMDLINE,
    ),
    upstream_vfio(
        "upstream-vfio-first-stage-nocache",
        "upstream-vfio-first-stage with the model's translation caches off",
        &["--iommu", "vtd,aw=48,sm=on,fl=on,nest=off,ir=on,eim=on,caching=off"],
        UPSTREAM_VFIO_SCALABLE_CMDLINE,
    ),
    upstream_vfio(
        "upstream-vfio-nested",
        "Linux 7.3's own VFIO selftests on VT-d with nesting and interrupt remapping (the full default unit)",
        &["--iommu", VTD_NESTED_OPTIONS],
        UPSTREAM_VFIO_SCALABLE_CMDLINE,
    ),
    upstream_vfio(
        "upstream-vfio-nested-nocache",
        "upstream-vfio-nested with the model's translation caches off",
        &["--iommu", "vtd,aw=48,sm=on,fl=on,nest=on,ir=on,eim=on,caching=off"],
        UPSTREAM_VFIO_SCALABLE_CMDLINE,
    ),
    upstream_vfio(
        "upstream-vfio-aw39",
        "Linux 7.3's own VFIO selftests on VT-d scalable mode with a 39-bit (3-level) address width: the map \
         limit tests at the top of a smaller aperture",
        &["--iommu", "vtd,aw=39,sm=on"],
        UPSTREAM_VFIO_SCALABLE_CMDLINE,
    ),
    upstream_vfio(
        "upstream-vfio-aw39-nocache",
        "upstream-vfio-aw39 with the model's translation caches off",
        &["--iommu", "vtd,aw=39,sm=on,caching=off"],
        UPSTREAM_VFIO_SCALABLE_CMDLINE,
    ),
];

/// Looks a scenario up by name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// The scenarios that exist for kernel `version`, in table order.
pub fn for_kernel(version: KernelVersion) -> impl Iterator<Item = &'static Scenario> {
    SCENARIOS.iter().filter(move |s| s.applies_to(version))
}

impl Scenario {
    /// Whether the scenario exists for kernel `version`.
    pub fn applies_to(&self, version: KernelVersion) -> bool {
        self.kernel_versions.contains(&version)
    }

    /// Why the scenario cannot run on kernel `version`, or `None` when it can.
    pub fn refusal(&self, version: KernelVersion) -> Option<String> {
        if self.applies_to(version) {
            return None;
        }
        let versions: Vec<&str> = self.kernel_versions.iter().map(|v| v.as_str()).collect();
        Some(format!(
            "scenario {} runs only on Linux {} (its tests are that kernel's), not on {version}; \
             use --kernel-version {}",
            self.name,
            versions.join(" or "),
            versions.first().copied().unwrap_or("?")
        ))
    }

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

    /// Whether the VMM runs with its monitor socket and the runner answers the guest's `monitor-check` line.
    pub fn wants_monitor(&self) -> bool {
        self.tests.iter().any(|t| MONITOR_TESTS.contains(t))
    }
}

/// The guest tests that ask the runner to walk their tables through the VMM monitor (VT-d, SMMUv3).
pub const MONITOR_TESTS: &[&str] = &["monitor-check", "smmuv3-monitor"];

/// Tests that bind the test device to vfio-pci (the bind logs warnings), or unbind a driver (ioatdma's remove path
/// logs at error level).
pub const BINDING_TESTS: &[&str] = &[
    "dmatest",
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
    "ir-up",
    "hw-info",
    "default-domain",
    "nested-dma",
    "nested-probe",
    "nested-invalidate",
    "nested-replace",
    "monitor-check",
    "nested-faults",
    "vfio-type1",
    "vfio_dma_mapping_test",
    "vfio_dma_mapping_mmio_test",
    "vfio_iommufd_setup_test",
    "vfio_pci_device_test",
    "vfio_pci_device_init_perf_test",
    "vfio_pci_sriov_uapi_test",
    "vfio_pci_driver_test",
];

/// Tests that provoke DMA faults (the driver logs them at error level).
pub const FAULTING_TESTS: &[&str] = &[
    "dma-fault",
    "dma-readonly",
    "two-ioas",
    "default-domain",
    "nested-dma",
    "nested-probe",
    "nested-replace",
    "nested-faults",
    "vfio-type1",
    "vfio_pci_driver_test",
];

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
             iovmm.tests=cpus,memory-map,acpi-tables,pci-devices,kernel-log,kernel-dma,msi,msix \
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
                "vtd,aw=48,sm=on,fl=off,nest=off"
            ]
        );
        let c = s.guest_cmdline();
        assert!(
            c.ends_with(" intel_iommu=on,sm_on iommufd.allow_unsafe_interrupts=1"),
            "{c}"
        );
        // The kernel's own DMA domain is probed before anything binds the device.
        let pos = |n: &str| s.tests.iter().position(|t| *t == n).unwrap();
        assert!(pos("kernel-log") < pos("default-domain"));
        assert!(pos("default-domain") < pos("vfio-cdev"));
        assert!(!c.contains("noiommu"), "{c}");
        assert!(find("vtd-legacy")
            .unwrap()
            .guest_cmdline()
            .contains(" intel_iommu=on,sm_off "));
        // Every VT-d configuration (ours and the upstream selftests') also runs with the model's caches off,
        // with the same tests, command line, memory and kernels.
        for s in SCENARIOS.iter().filter(|s| {
            (s.name.starts_with("vtd-") || s.name.starts_with("upstream-vfio-"))
                && !s.name.ends_with("-nocache")
        }) {
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
            assert_eq!(
                (n.memory_mib, n.cpus, n.kernel_versions, n.initrd_extra),
                (s.memory_mib, s.cpus, s.kernel_versions, s.initrd_extra),
                "{}",
                s.name
            );
        }
        assert!(find("vtd-rmrr").unwrap().vmm_args[1].ends_with(RMRR_OPTION));
    }

    #[test]
    fn nested_and_first_stage_scenarios() {
        for name in ["vtd-nested", "vtd-nested-57", "vtd-first-stage"] {
            let s = find(name).unwrap();
            let c = s.guest_cmdline();
            // Interrupt remapping: the iommufd bind must work without the escape hatch.
            assert!(!c.contains("allow_unsafe_interrupts"), "{c}");
            assert!(c.ends_with(" intel_iommu=on,sm_on"), "{c}");
            assert!(s.cpus > 1, "x2APIC remapping wants several vCPUs");
            let opt = s.vmm_args[1];
            let nest = if name == "vtd-first-stage" {
                "nest=off"
            } else {
                "nest=on"
            };
            for o in ["sm=on", "fl=on", nest, "ir=on", "eim=on"] {
                assert!(opt.split(',').any(|x| x == o), "{name}: {opt} lacks {o}");
            }
            assert!(s.tests.contains(&"ir-up") && s.tests.contains(&"hw-info"));
        }
        assert!(find("vtd-nested-57").unwrap().vmm_args[1].contains("aw=57,"));
        assert!(find("vtd-nested-57").unwrap().vmm_args[1].contains(",fl5=on"));
        assert!(find("vtd-nested").unwrap().wants_monitor());
        assert!(!find("vtd-first-stage").unwrap().wants_monitor());
        assert!(!find("vtd-scalable").unwrap().wants_monitor());
        // The kernel's DMA domain is probed before anything binds the device.
        let fs = find("vtd-first-stage").unwrap().tests;
        let pos = |n: &str| fs.iter().position(|t| *t == n).unwrap();
        assert!(pos("default-domain") < pos("ir-up"));
        // The kernel's own DMA user runs on a clean log, before anything binds the test device.
        assert!(pos("kernel-log") < pos("kernel-dma"));
        assert!(pos("kernel-dma") < pos("vfio-cdev"));
        assert!(pos("default-domain") < pos("vfio-cdev"));
    }

    #[test]
    fn upstream_vfio_scenarios() {
        // The names are a contract (CI and the issue refer to them).
        let names: Vec<&str> = SCENARIOS
            .iter()
            .filter(|s| s.name.starts_with("upstream-vfio-"))
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            [
                "upstream-vfio-legacy",
                "upstream-vfio-legacy-nocache",
                "upstream-vfio-scalable",
                "upstream-vfio-scalable-nocache",
                "upstream-vfio-first-stage",
                "upstream-vfio-first-stage-nocache",
                "upstream-vfio-nested",
                "upstream-vfio-nested-nocache",
                "upstream-vfio-aw39",
                "upstream-vfio-aw39-nocache",
            ]
        );
        let options = |n: &str| find(n).unwrap().vmm_args[1];
        assert_eq!(options("upstream-vfio-legacy"), "vtd,aw=48,sm=off");
        assert_eq!(
            options("upstream-vfio-scalable"),
            "vtd,aw=48,sm=on,fl=off,nest=off"
        );
        assert_eq!(
            options("upstream-vfio-first-stage"),
            "vtd,aw=48,sm=on,fl=on,nest=off,ir=on,eim=on"
        );
        assert_eq!(
            options("upstream-vfio-nested"),
            "vtd,aw=48,sm=on,fl=on,nest=on,ir=on,eim=on"
        );
        assert_eq!(options("upstream-vfio-aw39"), "vtd,aw=39,sm=on");
        for name in names {
            let s = find(name).unwrap();
            // Linux 7.3's selftests: only on 7.3, with the binaries appended to the guest initramfs.
            assert_eq!(s.kernel_versions, [KernelVersion::V7_3], "{name}");
            assert!(!s.applies_to(KernelVersion::V6_12));
            assert!(s
                .refusal(KernelVersion::V6_12)
                .unwrap()
                .contains("only on Linux 7.3"));
            assert_eq!(s.refusal(KernelVersion::V7_3), None);
            assert_eq!(s.initrd_extra, [VFIO_SELFTESTS], "{name}");
            assert_eq!(s.kernel, GuestKernel::Built);
            // Every upstream binary, each a guest test of the same name.
            let mut want: Vec<&str> = crate::guest::upstream_vfio::SELFTESTS
                .iter()
                .map(|t| t.binary)
                .collect();
            let mut got = s.tests.to_vec();
            want.sort();
            got.sort();
            assert_eq!(got, want, "{name}");
            assert_eq!(s.tests.last(), Some(&"vfio_pci_driver_test"));
            // Memory for the 1 GiB buffers and the 1 GiB huge page, reserved on the command line.
            assert!(s.memory_mib >= 4096);
            let c = s.guest_cmdline();
            for w in [
                "hugepagesz=1G",
                "hugepages=1",
                "hugepagesz=2M",
                "vfio_pci.enable_sriov=1",
            ] {
                assert!(c.split(' ').any(|x| x == w), "{name}: {c}");
            }
            let sm = if s.vmm_args[1].contains("sm=off") {
                "intel_iommu=on,sm_off"
            } else {
                "intel_iommu=on,sm_on"
            };
            assert!(c.split(' ').any(|x| x == sm), "{name}: {c}");
            // Interrupt remapping is on (the VT-d default), so VFIO needs no escape hatch.
            assert!(!c.contains("allow_unsafe_interrupts"), "{c}");
            assert!(!s.vmm_args[1].contains("ir=off"));
        }
        // Scenario lists per kernel: 6.12 has none of them, 7.3 has every scenario.
        assert!(for_kernel(KernelVersion::V6_12).all(|s| !s.name.starts_with("upstream-vfio-")));
        assert_eq!(
            for_kernel(KernelVersion::V6_12).count(),
            SCENARIOS.len() - 10
        );
        assert_eq!(for_kernel(KernelVersion::V7_3).count(), SCENARIOS.len());
    }

    /// A bring-up scenario over /dev/mem (`model`) and its `-nocache` twin: the IOMMU option, RAM reserved
    /// with `memmap=` inside the guest's RAM, and the same tests and command line with caching off.
    fn bringup_scenarios(model: &str) -> (&'static Scenario, &'static Scenario) {
        let s = find(model).unwrap();
        assert_eq!(s.machine_args()[4..], ["--iommu", model]);
        assert!(s.guest_cmdline().contains(" memmap=16M$0x10000000"));
        // The reserved region lies inside the guest's RAM.
        assert!(
            u64::from(s.memory_mib) << 20
                >= crate::bringup::devmem::RAM_BASE + crate::bringup::devmem::RAM_SIZE
        );
        let n = find(&format!("{model}-nocache")).unwrap();
        assert_eq!(n.vmm_args[1], format!("{model},caching=off"));
        assert_eq!((n.tests, n.cmdline_extra), (s.tests, s.cmdline_extra));
        (s, n)
    }

    #[test]
    fn smmuv3_scenarios() {
        let (s, n) = bringup_scenarios("smmuv3");
        // Every suite case runs, in suite order, then the monitor's walk of a nested stream.
        let mut want: Vec<String> = crate::bringup::smmuv3::suite::CASES
            .iter()
            .map(|c| crate::guest::smmuv3::test_name(c.name))
            .collect();
        want.push("smmuv3-monitor".into());
        assert_eq!(s.test_names(), want);
        assert!(s.wants_monitor() && n.wants_monitor());
    }

    #[test]
    fn tce_scenarios() {
        let (s, _) = bringup_scenarios("tce");
        // The boot state first, then every suite case in suite order.
        let mut want = vec!["tce-boot-windows".to_string()];
        want.extend(
            crate::bringup::tce::suite::CASES
                .iter()
                .map(|c| crate::guest::tce::test_name(c.name)),
        );
        assert_eq!(s.test_names(), want);
        for name in ["tce", "tce-nocache"] {
            let opts = find(name).unwrap().vmm_args[1];
            opts.parse::<iommu::tce::TceConfig>()
                .unwrap_or_else(|e| panic!("{name}: {opts}: {e}"));
        }
    }

    /// The `$` of `memmap=16M$0x10000000` must reach iovmm's --cmdline intact through the test host's run.sh.
    #[test]
    fn memmap_dollar_survives_the_test_host_shell() {
        let s = find("smmuv3").unwrap();
        let cmdline = s.guest_cmdline();
        let args = vec!["run".to_string(), "--cmdline".to_string(), cmdline.clone()];
        // stderr's path starts with iovmm's: replace it first.
        let script = crate::runner::tcg::run_script(&args)
            .replace(crate::runner::tcg::HOST_STDERR, "/dev/null")
            .replace(crate::runner::tcg::HOST_IOVMM, "printf '%s\\n'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.lines().any(|l| l == cmdline), "{text}");
        assert!(text.contains("memmap=16M$0x10000000"), "{text}");
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
