//! The IOMMU in front of the PCI segment: option parsing, construction, MMIO, firmware tables, description.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use firmware_tables::acpi::{
    build_dmar, AcpiError, DeviceScope, DmarConfig, Drhd, Rmrr as DmarRmrr,
};
use firmware_tables::description::{IommuInfo, IovaRange};
use iommu::smmuv3::{Smmuv3, Smmuv3Config, SMMUV3_MMIO_SIZE};
use iommu::tce::{Tce, TceConfig, TCE_MMIO_SIZE};
use iommu::vtd::{regs as vtd_regs, Vtd, VtdConfig, VTD_MMIO_SIZE};
use iommu::{Access, DmaMemory, DmaPort, InterruptSink, Perms, RegisterWindow as _};
use thiserror::Error;

use crate::bus::{Bus, BusDevice, BusError};
use crate::interrupts::InterruptRemapper;
use crate::layout;
use crate::x86::cpuid::PagingLimits;

/// The input width of the first-stage tables Linux gives a paging domain on this unit (`compute_vasz_lg2_fs`):
/// 5-level (57) when the unit is wider than 48 bits and has CAP.FL5LP, else 4-level (48); VT-d 3.6 limits
/// software to the canonical lower half of it.
fn first_stage_width(c: &VtdConfig) -> u32 {
    if c.aw_bits > 48 && c.cap() & vtd_regs::CAP_FL5LP != 0 {
        57
    } else {
        48
    }
}

/// Most mappings `dump-tables` lists (the model also bounds the tables it visits).
const DUMP_LIMIT: usize = 4096;

/// Errors in `--iommu`.
#[derive(Debug, Error)]
pub enum IommuOptionError {
    #[error("--iommu {0}: {1}")]
    Vtd(String, String),
    #[error("--iommu {0}: {1}")]
    Smmuv3(String, String),
    #[error("--iommu {0}: {1}")]
    Tce(String, String),
    #[error("--iommu {0}: unknown IOMMU model (available: vtd, smmuv3, tce)")]
    UnknownModel(String),
}

/// A parsed `--iommu` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IommuConfig {
    Vtd(VtdConfig),
    Smmuv3(Smmuv3Config),
    Tce(TceConfig),
}

impl FromStr for IommuConfig {
    type Err = IommuOptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split(',').next().unwrap_or_default() {
            "vtd" => VtdConfig::from_str(s)
                .map(IommuConfig::Vtd)
                .map_err(|e| IommuOptionError::Vtd(s.to_string(), e.to_string())),
            "smmuv3" => Smmuv3Config::from_str(s)
                .map(IommuConfig::Smmuv3)
                .map_err(|e| IommuOptionError::Smmuv3(s.to_string(), e.to_string())),
            "tce" => TceConfig::from_str(s)
                .map(IommuConfig::Tce)
                .map_err(|e| IommuOptionError::Tce(s.to_string(), e.to_string())),
            _ => Err(IommuOptionError::UnknownModel(s.to_string())),
        }
    }
}

impl IommuConfig {
    /// The option string that recreates this configuration.
    pub fn option_string(&self) -> String {
        match self {
            IommuConfig::Vtd(c) => c.option_string(),
            IommuConfig::Smmuv3(c) => c.option_string(),
            IommuConfig::Tce(c) => c.option_string(),
        }
    }

    /// The CPU paging modes the vCPUs may show beside this IOMMU. A VT-d unit that can share CPU page tables
    /// (scalable mode with PASID and SMPWC: Linux's `intel_svm_check`) must walk every mode the CPU has, or Linux
    /// logs "SVM disabled" at error level: LA57 needs CAP.FL5LP and 1 GiB pages CAP.FL1GP. The other models
    /// never walk CPU tables.
    pub fn cpu_paging_limits(&self) -> PagingLimits {
        match self {
            IommuConfig::Vtd(c) => {
                let (cap, ecap) = (c.cap(), c.ecap());
                let svm_capable =
                    ecap & vtd_regs::ECAP_PASID != 0 && ecap & vtd_regs::ECAP_SMPWC != 0;
                PagingLimits {
                    la57: !svm_capable || cap & vtd_regs::CAP_FL5LP != 0,
                    gbpages: !svm_capable || cap & vtd_regs::CAP_FL1GP != 0,
                }
            }
            IommuConfig::Smmuv3(_) | IommuConfig::Tce(_) => PagingLimits::NONE,
        }
    }

    /// Ranges firmware must reserve in e820 for this IOMMU (VT-d RMRRs), inclusive.
    pub fn reserved_ranges(&self) -> Vec<(u64, u64)> {
        match self {
            IommuConfig::Vtd(c) => c.rmrrs.iter().map(|r| (r.base, r.end)).collect(),
            IommuConfig::Smmuv3(_) => Vec::new(),
            IommuConfig::Tce(c) => tce::reserved(c),
        }
    }

    /// Firmware tables describing this IOMMU.
    pub fn acpi_tables(&self) -> Result<Vec<Vec<u8>>, AcpiError> {
        match self {
            IommuConfig::Vtd(c) => {
                let dmar = DmarConfig {
                    host_address_width: c.aw_bits as u8,
                    intr_remap: c.ir,
                    x2apic_opt_out: false,
                    dma_ctrl_platform_opt_in: false,
                    units: vec![Drhd {
                        segment: 0,
                        base: layout::VTD_START,
                        size_log2_pages: 0,
                        include_pci_all: true,
                        scopes: vec![DeviceScope::platform_ioapic(0)],
                    }],
                    rmrrs: c
                        .rmrrs
                        .iter()
                        .map(|r| DmarRmrr {
                            segment: 0,
                            base: r.base,
                            end_inclusive: r.end,
                            scopes: vec![DeviceScope::Endpoint {
                                bus: (r.bdf >> 8) as u8,
                                dev: ((r.bdf >> 3) & 0x1f) as u8,
                                func: (r.bdf & 7) as u8,
                            }],
                        })
                        .collect(),
                };
                Ok(vec![build_dmar(&dmar)?])
            }
            IommuConfig::Smmuv3(c) => Ok(vec![smmuv3::iort(c)?]),
            // A PAPR platform describes TCE windows in its device tree, not ACPI (`extra_files`).
            IommuConfig::Tce(_) => Ok(Vec::new()),
        }
    }

    /// Firmware blobs that are not ACPI tables, for `iovmm tables` (name, bytes).
    pub fn extra_files(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        match self {
            IommuConfig::Vtd(_) => Ok(Vec::new()),
            IommuConfig::Smmuv3(c) => Ok(vec![("smmuv3.dtb".into(), smmuv3::fdt(c)?)]),
            IommuConfig::Tce(c) => Ok(vec![("tce.dtb".into(), tce::fdt(c)?)]),
        }
    }
}

/// A live IOMMU unit.
#[derive(Clone)]
pub enum IommuUnit {
    Vtd(Arc<Vtd>),
    Smmuv3(Arc<Smmuv3>),
    Tce(Arc<Tce>),
}

impl IommuUnit {
    pub fn new(config: &IommuConfig, mem: Arc<dyn DmaMemory>, irq: Arc<dyn InterruptSink>) -> Self {
        match config {
            IommuConfig::Vtd(c) => IommuUnit::Vtd(Arc::new(Vtd::new(c.clone(), mem, irq))),
            IommuConfig::Smmuv3(c) => {
                IommuUnit::Smmuv3(Arc::new(Smmuv3::new(smmuv3::platform_config(c), mem, irq)))
            }
            IommuConfig::Tce(c) => {
                IommuUnit::Tce(Arc::new(Tce::new(tce::platform_config(c), mem, irq)))
            }
        }
    }

    /// The translation port for devices behind this unit.
    pub fn port(&self) -> Arc<dyn DmaPort> {
        match self {
            IommuUnit::Vtd(v) => v.clone(),
            IommuUnit::Smmuv3(s) => s.clone(),
            IommuUnit::Tce(t) => t.clone(),
        }
    }

    /// The unit's interrupt remapping, if it has one.
    pub fn remapper(&self) -> Option<Arc<dyn InterruptRemapper>> {
        match self {
            IommuUnit::Vtd(v) if v.config().ir => Some(Arc::new(VtdRemapper(v.clone()))),
            IommuUnit::Vtd(_) | IommuUnit::Smmuv3(_) | IommuUnit::Tce(_) => None,
        }
    }

    /// Registers the unit's MMIO window.
    pub fn attach(&self, mmio_bus: &mut Bus) -> Result<(), BusError> {
        match self {
            IommuUnit::Vtd(v) => mmio_bus.insert(
                Arc::new(Mutex::new(RegisterWindow(v.clone()))),
                layout::VTD_START,
                VTD_MMIO_SIZE,
            ),
            IommuUnit::Smmuv3(s) => mmio_bus.insert(
                Arc::new(Mutex::new(RegisterWindow(s.clone()))),
                layout::SMMUV3_START,
                SMMUV3_MMIO_SIZE,
            ),
            IommuUnit::Tce(t) => mmio_bus.insert(
                Arc::new(Mutex::new(RegisterWindow(t.clone()))),
                layout::TCE_START,
                TCE_MMIO_SIZE,
            ),
        }
    }

    /// Permitted IOVA windows for a source.
    pub fn permitted_ranges(&self, source_id: u16) -> iommu::PermittedRanges {
        match self {
            IommuUnit::Vtd(v) => v.permitted_ranges(source_id),
            IommuUnit::Smmuv3(s) => s.permitted_ranges(u32::from(source_id), None),
            IommuUnit::Tce(t) => t.permitted_ranges(u32::from(source_id)),
        }
    }

    /// The unit's counters as JSON.
    pub fn stats_json(&self) -> Result<serde_json::Value, String> {
        match self {
            IommuUnit::Vtd(v) => serde_json::to_value(v.stats()).map_err(|e| e.to_string()),
            IommuUnit::Smmuv3(s) => serde_json::to_value(s.stats()).map_err(|e| e.to_string()),
            IommuUnit::Tce(t) => {
                let mut j = serde_json::to_value(t.stats()).map_err(|e| e.to_string())?;
                j["eeh"] = serde_json::to_value(t.eeh_state()).map_err(|e| e.to_string())?;
                Ok(j)
            }
        }
    }

    /// Side-effect-free walk for one IOVA, as JSON (see [`lookup_to_json`]).
    pub fn lookup_json(
        &self,
        source_id: u16,
        pasid: Option<u32>,
        iova: u64,
        write: bool,
    ) -> Result<serde_json::Value, String> {
        let access = if write { Access::Write } else { Access::Read };
        match self {
            IommuUnit::Vtd(v) => Ok(lookup_to_json(&v.lookup(source_id, pasid, iova, access))),
            IommuUnit::Smmuv3(s) => Ok(smmuv3::lookup_to_json(&s.lookup(
                u32::from(source_id),
                pasid,
                iova,
                access,
            ))),
            IommuUnit::Tce(t) => {
                if pasid.is_some() {
                    return Err("TCE requests carry no PASID".into());
                }
                Ok(tce::lookup_to_json(&t.lookup(
                    u32::from(source_id),
                    iova,
                    access,
                )))
            }
        }
    }

    /// Every live mapping of a source, as JSON (with Graphviz dot of the table tree when asked).
    pub fn dump_json(
        &self,
        source_id: u16,
        pasid: Option<u32>,
        dot: bool,
    ) -> Result<serde_json::Value, String> {
        match self {
            IommuUnit::Vtd(v) => {
                let d = v.dump(source_id, pasid, DUMP_LIMIT);
                let mut j = serde_json::to_value(&d).map_err(|e| e.to_string())?;
                if dot {
                    j["dot"] = iommu::vtd::dump_dot(&d).into();
                }
                Ok(j)
            }
            IommuUnit::Smmuv3(s) => {
                if dot {
                    return Err("dot output is VT-d only; SMMUv3 dumps are JSON".into());
                }
                serde_json::to_value(s.dump(u32::from(source_id), pasid, DUMP_LIMIT))
                    .map_err(|e| e.to_string())
            }
            IommuUnit::Tce(t) => {
                if dot {
                    return Err("dot output is VT-d only; TCE dumps are JSON".into());
                }
                // One PE for the whole PHB: every source sees the same windows.
                serde_json::to_value(t.dump(DUMP_LIMIT)).map_err(|e| e.to_string())
            }
        }
    }

    /// Makes the next `count` translations of `source_id` fail with `reason`.
    pub fn inject_fault(&self, source_id: u16, reason: u32, count: u32) -> Result<(), String> {
        match self {
            IommuUnit::Vtd(v) => {
                let reason = u8::try_from(reason)
                    .map_err(|_| format!("VT-d fault reasons are 8-bit, not {reason:#x}"))?;
                v.inject_fault(source_id, reason, count)
            }
            IommuUnit::Smmuv3(s) => {
                let event = u8::try_from(reason)
                    .map_err(|_| format!("SMMUv3 event ids are 8-bit, not {reason:#x}"))?;
                s.inject_event(u32::from(source_id), event, count);
                Ok(())
            }
            IommuUnit::Tce(_) => Err(
                "inject-fault is not implemented for TCE; a DMA outside the windows \
                 or through an invalid TCE freezes the PE"
                    .into(),
            ),
        }
    }

    /// Holds invalidation-wait completion for `duration` (driver timeout paths).
    pub fn hold_invalidations(&self, duration: std::time::Duration) -> Result<(), String> {
        match self {
            IommuUnit::Vtd(v) => {
                v.hold_invalidation_completion(duration);
                Ok(())
            }
            IommuUnit::Smmuv3(_) | IommuUnit::Tce(_) => {
                Err("hold_invalidations is VT-d only".into())
            }
        }
    }

    /// What the guest can observe of this unit, for the machine description.
    pub fn info(&self, test_device_bdf: u16) -> IommuInfo {
        match self {
            IommuUnit::Vtd(v) => {
                let c = v.config();
                IommuInfo {
                    model: "vtd".into(),
                    options: c.option_string(),
                    base: layout::VTD_START,
                    id_registers: vec![c.cap(), c.ecap()],
                    permitted_ranges: ranges_info(&v.permitted_ranges(test_device_bdf)),
                    permitted_ranges_first_stage: ranges_info(
                        &v.permitted_ranges_first_stage(test_device_bdf, first_stage_width(c)),
                    ),
                    test_device_bdf: bdf_string(test_device_bdf),
                }
            }
            IommuUnit::Smmuv3(s) => IommuInfo {
                model: "smmuv3".into(),
                options: s.config().option_string(),
                base: layout::SMMUV3_START,
                id_registers: smmuv3::id_registers(s),
                permitted_ranges: ranges_info(
                    &s.permitted_ranges(u32::from(test_device_bdf), None),
                ),
                permitted_ranges_first_stage: Vec::new(),
                test_device_bdf: bdf_string(test_device_bdf),
            },
            IommuUnit::Tce(t) => {
                IommuInfo {
                    model: "tce".into(),
                    options: t.config().option_string(),
                    base: layout::TCE_START,
                    // TCE_ID and TCE_PAGE_SIZES.
                    id_registers: vec![t.read64(0), t.read64(8)],
                    permitted_ranges: ranges_info(&t.permitted_ranges(u32::from(test_device_bdf))),
                    permitted_ranges_first_stage: Vec::new(),
                    test_device_bdf: bdf_string(test_device_bdf),
                }
            }
        }
    }

    /// Whether the unit blocks MMIO to the devices behind it (a frozen TCE PE: EEH loads return all ones
    /// and stores are dropped; LoPAR "EEH" / IODA2 freeze).
    pub fn mmio_blocked(&self) -> bool {
        match self {
            IommuUnit::Tce(t) => t.is_frozen(),
            IommuUnit::Vtd(_) | IommuUnit::Smmuv3(_) => false,
        }
    }
}

mod smmuv3;
mod tce;
mod vtd;

pub use tce::DEFAULT_POOL as TCE_DEFAULT_POOL;
pub use vtd::lookup_to_json;
use vtd::VtdRemapper;

/// An IOMMU's register window on the MMIO bus.
struct RegisterWindow<T: iommu::RegisterWindow>(Arc<T>);

impl<T: iommu::RegisterWindow> BusDevice for RegisterWindow<T> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        self.0.mmio_read(offset, data);
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        self.0.mmio_write(offset, data);
    }
}

fn ranges_info(r: &iommu::PermittedRanges) -> Vec<IovaRange> {
    r.windows()
        .iter()
        .map(|w| IovaRange {
            first: w.first,
            last: w.last,
        })
        .collect()
}

fn bdf_string(bdf: u16) -> String {
    format!(
        "0000:{:02x}:{:02x}.{}",
        bdf >> 8,
        (bdf >> 3) & 0x1f,
        bdf & 7
    )
}

/// `rwx` with dashes for missing permissions.
pub(crate) fn perms_string(p: Perms) -> String {
    format!(
        "{}{}{}",
        if p.read { 'r' } else { '-' },
        if p.write { 'w' } else { '-' },
        if p.exec { 'x' } else { '-' }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_models() {
        assert!(matches!(
            "vtd".parse::<IommuConfig>(),
            Ok(IommuConfig::Vtd(_))
        ));
        assert!(
            matches!("vtd,aw=39,sm=off".parse::<IommuConfig>(), Ok(IommuConfig::Vtd(c)) if c.aw_bits == 39 && !c.scalable)
        );
        let e = "smmuv9".parse::<IommuConfig>().unwrap_err();
        assert!(e.to_string().contains("unknown IOMMU model"), "{e}");
        assert!("vtd,aw=58".parse::<IommuConfig>().is_err());
    }

    #[test]
    fn dmar_flags_follow_interrupt_remapping() {
        for (opts, flags) in [("vtd,ir=on", 1u8), ("vtd,ir=off", 0)] {
            let c: IommuConfig = opts.parse().unwrap();
            assert_eq!(c.acpi_tables().unwrap()[0][37] & 1, flags, "{opts}");
        }
    }

    #[test]
    fn dmar_is_built_and_rmrrs_reserved() {
        let c: IommuConfig = "vtd,aw=48,rmrr=0x1000000-0x100ffff@00:05.0"
            .parse()
            .unwrap();
        assert_eq!(c.reserved_ranges(), vec![(0x100_0000, 0x100_ffff)]);
        let tables = c.acpi_tables().unwrap();
        assert_eq!(&tables[0][..4], b"DMAR");
        assert_eq!(tables[0][36], 47, "host address width - 1");
    }

    #[test]
    fn smmuv3_publishes_iort_and_a_device_tree() {
        let c: IommuConfig = "smmuv3,sidbits=16".parse().unwrap();
        assert!(c.reserved_ranges().is_empty());
        let tables = c.acpi_tables().unwrap();
        assert_eq!(tables.len(), 1);
        assert_eq!(&tables[0][..4], b"IORT");
        let files = c.extra_files().unwrap();
        assert_eq!(files[0].0, "smmuv3.dtb");
        assert_eq!(&files[0].1[..4], &[0xd0, 0x0d, 0xfe, 0xed], "FDT magic");
        assert!("smmuv3,oas=47".parse::<IommuConfig>().is_err());
    }

    #[test]
    fn smmuv3_unit_sits_at_its_window_with_the_msi_hole() {
        let c: IommuConfig = "smmuv3,oas=44".parse().unwrap();
        let unit = IommuUnit::new(
            &c,
            Arc::new(iommu::mem::TestMemory::new(0)),
            Arc::new(NoIrq),
        );
        let info = unit.info(0x18);
        assert_eq!(info.model, "smmuv3");
        assert_eq!(info.base, layout::SMMUV3_START);
        assert_eq!(info.id_registers.len(), 6);
        // IDR5.OAS (bits 2:0) = 0b100 for 44 bits (IHI0070 §6.3.6).
        assert_eq!(info.id_registers[5] & 7, 4);
        let r: Vec<(u64, u64)> = info
            .permitted_ranges
            .iter()
            .map(|w| (w.first, w.last))
            .collect();
        assert_eq!(
            r,
            vec![(0, 0xfedf_ffff), (0xfef0_0000, (1u64 << 44) - 1)],
            "SMMUEN=0 with GBPA bypass: the output range minus the MSI window"
        );
        assert!(unit.remapper().is_none());
        assert!(unit.hold_invalidations(std::time::Duration::ZERO).is_err());
        unit.inject_fault(0x18, 0x10, 1).unwrap();
        assert!(unit.inject_fault(0x18, 0x100, 1).is_err());
    }

    /// The TCE device tree says what the model does: its windows, its RTAS tokens, its DDW extensions.
    /// (Decoded with dtc, which CI installs; a missing dtc fails like the iasl cross-checks.)
    #[test]
    fn tce_device_tree_matches_the_model() {
        let c: IommuConfig = "tce".parse().unwrap();
        let files = c.extra_files().unwrap();
        let dir = std::env::temp_dir().join(format!("iovmm-tce-dt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dtb = dir.join("tce.dtb");
        std::fs::write(&dtb, &files[0].1).unwrap();
        let out = std::process::Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts"])
            .arg(&dtb)
            .output()
            .expect("dtc is not installed: apt-get install device-tree-compiler");
        assert!(out.status.success());
        let dts = String::from_utf8_lossy(&out.stdout);
        let IommuUnit::Tce(t) = IommuUnit::new(
            &c,
            Arc::new(iommu::mem::TestMemory::new(0)),
            Arc::new(NoIrq),
        ) else {
            panic!("not TCE")
        };
        let mut cells = Vec::new();
        for w in t.windows().iter().filter(|w| w.enabled) {
            // dtc prints each cell as hex with at least two digits.
            cells.push(format!("{:#04x}", w.liobn));
            for v in [w.base, w.size] {
                cells.push(format!("{:#04x}", v >> 32));
                cells.push(format!("{:#04x}", v & 0xffff_ffff));
            }
        }
        let want = format!("ibm,dma-window = <{}>;", cells.join(" "));
        assert!(dts.contains(&want), "{want} not in {dts}");
        let token = |name: &str| {
            iommu::tce::rtas::RTAS_CALLS
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1
        };
        assert!(dts.contains(&format!(
            "ibm,ddw-applicable = <{:#x} {:#x} {:#x}>;",
            token("ibm,query-pe-dma-window"),
            token("ibm,create-pe-dma-window"),
            token("ibm,remove-pe-dma-window")
        )));
        let ext: Vec<String> = iommu::tce::rtas::DDW_EXTENSIONS
            .iter()
            .map(|v| format!("{v:#04x}"))
            .collect();
        let want = format!("ibm,ddw-extensions = <{}>;", ext.join(" "));
        assert!(dts.contains(&want), "{want} not in {dts}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    struct NoIrq;
    impl InterruptSink for NoIrq {
        fn msi(&self, _address: u64, _data: u32) {}
    }
}
