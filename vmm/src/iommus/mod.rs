//! The IOMMU in front of the PCI segment: option parsing, construction, MMIO, firmware tables, description.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use firmware_tables::acpi::{
    build_dmar, AcpiError, DeviceScope, DmarConfig, Drhd, Rmrr as DmarRmrr,
};
use firmware_tables::description::{IommuInfo, IovaRange};
use iommu::vtd::{Vtd, VtdConfig, VTD_MMIO_SIZE};
use iommu::{Access, DmaMemory, DmaPort, InterruptSink, Perms};
use thiserror::Error;

use crate::bus::{Bus, BusError};
use crate::interrupts::InterruptRemapper;
use crate::layout;

/// Most mappings `dump-tables` lists (the model also bounds the tables it visits).
const DUMP_LIMIT: usize = 4096;

/// Errors in `--iommu`.
#[derive(Debug, Error)]
pub enum IommuOptionError {
    #[error("--iommu {0}: {1}")]
    Vtd(String, String),
    #[error("--iommu {0}: unknown IOMMU model (available: vtd)")]
    UnknownModel(String),
}

/// A parsed `--iommu` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IommuConfig {
    Vtd(VtdConfig),
}

impl FromStr for IommuConfig {
    type Err = IommuOptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split(',').next().unwrap_or_default() {
            "vtd" => VtdConfig::from_str(s)
                .map(IommuConfig::Vtd)
                .map_err(|e| IommuOptionError::Vtd(s.to_string(), e.to_string())),
            _ => Err(IommuOptionError::UnknownModel(s.to_string())),
        }
    }
}

impl IommuConfig {
    /// The option string that recreates this configuration.
    pub fn option_string(&self) -> String {
        match self {
            IommuConfig::Vtd(c) => c.option_string(),
        }
    }

    /// Ranges firmware must reserve in e820 for this IOMMU (VT-d RMRRs), inclusive.
    pub fn reserved_ranges(&self) -> Vec<(u64, u64)> {
        match self {
            IommuConfig::Vtd(c) => c.rmrrs.iter().map(|r| (r.base, r.end)).collect(),
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
        }
    }
}

/// A live IOMMU unit.
#[derive(Clone)]
pub enum IommuUnit {
    Vtd(Arc<Vtd>),
}

impl IommuUnit {
    pub fn new(config: &IommuConfig, mem: Arc<dyn DmaMemory>, irq: Arc<dyn InterruptSink>) -> Self {
        match config {
            IommuConfig::Vtd(c) => IommuUnit::Vtd(Arc::new(Vtd::new(c.clone(), mem, irq))),
        }
    }

    /// The translation port for devices behind this unit.
    pub fn port(&self) -> Arc<dyn DmaPort> {
        match self {
            IommuUnit::Vtd(v) => v.clone(),
        }
    }

    /// The unit's interrupt remapping, if it has one.
    pub fn remapper(&self) -> Option<Arc<dyn InterruptRemapper>> {
        match self {
            IommuUnit::Vtd(v) if v.config().ir => Some(Arc::new(VtdRemapper(v.clone()))),
            IommuUnit::Vtd(_) => None,
        }
    }

    /// Registers the unit's MMIO window.
    pub fn attach(&self, mmio_bus: &mut Bus) -> Result<(), BusError> {
        match self {
            IommuUnit::Vtd(v) => mmio_bus.insert(
                Arc::new(Mutex::new(VtdMmio(v.clone()))),
                layout::VTD_START,
                VTD_MMIO_SIZE,
            ),
        }
    }

    /// Permitted IOVA windows for a source.
    pub fn permitted_ranges(&self, source_id: u16) -> iommu::PermittedRanges {
        match self {
            IommuUnit::Vtd(v) => v.permitted_ranges(source_id),
        }
    }

    /// The unit's counters as JSON.
    pub fn stats_json(&self) -> Result<serde_json::Value, String> {
        match self {
            IommuUnit::Vtd(v) => serde_json::to_value(v.stats()).map_err(|e| e.to_string()),
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
        }
    }

    /// Makes the next `count` translations of `source_id` fail with `reason`.
    pub fn inject_fault(&self, source_id: u16, reason: u32, count: u32) -> Result<(), String> {
        let reason = u8::try_from(reason)
            .map_err(|_| format!("VT-d fault reasons are 8-bit, not {reason:#x}"))?;
        match self {
            IommuUnit::Vtd(v) => v.inject_fault(source_id, reason, count),
        }
    }

    /// Holds invalidation-wait completion for `duration` (driver timeout paths).
    pub fn hold_invalidations(&self, duration: std::time::Duration) {
        match self {
            IommuUnit::Vtd(v) => v.hold_invalidation_completion(duration),
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
                    permitted_ranges: v
                        .permitted_ranges(test_device_bdf)
                        .windows()
                        .iter()
                        .map(|w| IovaRange {
                            first: w.first,
                            last: w.last,
                        })
                        .collect(),
                    test_device_bdf: format!(
                        "0000:{:02x}:{:02x}.{}",
                        test_device_bdf >> 8,
                        (test_device_bdf >> 3) & 0x1f,
                        test_device_bdf & 7
                    ),
                }
            }
        }
    }
}

mod vtd;

pub use vtd::lookup_to_json;
use vtd::{VtdMmio, VtdRemapper};

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
}
