//! The common start of every VT-d DMA test: the test device bound to vfio-pci, its cdev bound to a fresh
//! iommufd, attached to a fresh IOAS, BAR0 mmapped, memory and bus mastering on.
//!
//! Dropping a session closes everything (BAR mapping, device, iommufd), which detaches the device and frees
//! the IOAS and its mappings.

use std::path::PathBuf;
use std::time::Duration;

use firmware_tables::description::IommuInfo;
use pci::test_device::regs::{ID_MAGIC, REG_ID};
use vfio_bindings::bindings::vfio::VFIO_PCI_BAR0_REGION_INDEX;

use super::super::context::Context;
use super::super::dma_engine::DmaEngine;
use super::super::iommufd::Iommufd;
use super::super::vfio::{self, VfioDevice};
use super::super::vfio_cdev::{self, MappedRegion};

/// How long to wait for devtmpfs nodes.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// The expected IOMMU, or why there is none.
pub fn expected(ctx: &Context) -> Result<&IommuInfo, String> {
    let e = ctx
        .expect
        .as_ref()
        .map_err(|e| format!("no expectations: {e}"))?;
    e.iommu.as_ref().ok_or_else(|| {
        "the machine description has no IOMMU (scenario without --iommu?)".to_string()
    })
}

/// `SSSS:BB:DD.F` for a BDF given with or without the segment.
pub fn full_bdf(bdf: &str) -> String {
    if bdf.matches(':').count() == 1 {
        format!("0000:{bdf}")
    } else {
        bdf.to_string()
    }
}

/// An attached test device. Field order is drop order: BAR mapping, device (unbinds), iommufd.
pub struct Session {
    bar: MappedRegion,
    pub dev: VfioDevice,
    pub iommufd: Iommufd,
    pub bdf: String,
    pub dev_id: u32,
    /// The IOAS the device is attached to.
    pub ioas: u32,
    /// The page table the kernel attached for it (an automatic HWPT).
    pub hwpt: u32,
    /// What the setup did, for diagnostics.
    pub notes: Vec<String>,
    /// `/proc/self/pagemap` below the context root.
    pub pagemap: PathBuf,
}

impl Session {
    /// Binds, opens, attaches and maps the test device named by the expected IOMMU.
    pub fn open(ctx: &Context) -> Result<Self, String> {
        let info = expected(ctx)?;
        let bdf = full_bdf(&info.test_device_bdf);
        let sys = ctx.path("sys");
        let dev_root = ctx.path("dev");
        let dir = sys.join("bus/pci/devices").join(&bdf);
        if !dir.is_dir() {
            return Err(format!("test device {bdf} is not in {}", dir.display()));
        }
        vfio::bind_vfio_pci(&sys, &bdf)?;
        let node = vfio_cdev::cdev_path(&sys, &dev_root, &bdf)?;
        vfio::wait_for(&node, NODE_TIMEOUT)?;
        let iommu_node = dev_root.join("iommu");
        vfio::wait_for(&iommu_node, NODE_TIMEOUT)?;
        let iommufd = Iommufd::open(&iommu_node)?;
        let dev = vfio_cdev::open(&node)?;
        let dev_id = vfio_cdev::bind_iommufd(&dev, iommufd.raw_fd())?;
        let ioas = iommufd.ioas_alloc()?;
        let hwpt = vfio_cdev::attach_pt(&dev, ioas)?;
        let region = dev.region(VFIO_PCI_BAR0_REGION_INDEX)?;
        let bar = MappedRegion::map(&dev, &region)?;
        let id = bar.read32(REG_ID)?;
        if id != ID_MAGIC {
            return Err(format!(
                "BAR0 ID register reads {id:#010x}, expected {ID_MAGIC:#010x}"
            ));
        }
        let cmd = dev.enable_mem_and_bus_master()?;
        let notes = vec![format!(
            "{bdf}: vfio-pci cdev {}, iommufd dev {dev_id}, IOAS {ioas} -> HWPT {hwpt}, BAR0 {:#x} bytes mmapped, \
             command {cmd:#06x}",
            node.display(),
            region.size
        )];
        Ok(Self {
            bar,
            dev,
            iommufd,
            bdf,
            dev_id,
            ioas,
            hwpt,
            notes,
            pagemap: ctx.path("proc/self/pagemap"),
        })
    }

    /// The device's DMA engine.
    pub fn engine(&self) -> DmaEngine<'_> {
        DmaEngine { bar: &self.bar }
    }

    /// `(bus, device, function)` of the test device.
    pub fn bdf_parts(&self) -> Option<(u8, u8, u8)> {
        let short = self.bdf.split_once(':').map(|(_, s)| s)?;
        super::log::parse_bdf_short(short)
    }

    /// Which tables the domain the kernel attached uses ([`domain_stage`]).
    pub fn attached_stage(&self, unmapped: u64) -> Result<Stage, String> {
        domain_stage(&self.engine(), unmapped)
    }
}

/// Which tables the device's current domain uses, asked of the hardware rather than assumed from the kernel
/// version (Linux 6.12 gives iommufd second-stage domains, 7.x first-stage ones where the unit has them): a
/// translation request for `unmapped`, an IOVA nothing maps, is refused with a first-stage not-present reason on
/// first-stage tables and a second-stage or legacy one otherwise. Translation requests are not recorded as faults.
pub fn domain_stage(engine: &DmaEngine<'_>, unmapped: u64) -> Result<Stage, String> {
    let (x, o) = engine.translate(unmapped, false)?;
    if x.status != pci::test_device::regs::STATUS_FAULT {
        return Err(format!(
            "translation request for unmapped IOVA {unmapped:#x}: status {}, expected a refusal",
            x.status
        ));
    }
    stage_of_reason(o.fault_reason).ok_or_else(|| {
        format!(
            "translation request for unmapped IOVA {unmapped:#x} refused with reason {:#x}, \
             neither a first- nor a second-stage not-present reason",
            o.fault_reason
        )
    })
}

/// The translation tables of a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    First,
    Second,
}

impl Stage {
    /// The ranges the VMM published for a domain of this stage.
    pub fn published(self, info: &IommuInfo) -> &[firmware_tables::description::IovaRange] {
        match self {
            Stage::First => &info.permitted_ranges_first_stage,
            Stage::Second => &info.permitted_ranges,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stage::First => "first-stage",
            Stage::Second => "second-stage",
        }
    }
}

/// The stage a not-present refusal names (VT-d 7.1.3 / 7.2.3): 0x71 first stage; 0x79 second stage (scalable);
/// legacy mode's 0x2-0x6 are second-stage by construction.
pub fn stage_of_reason(reason: u32) -> Option<Stage> {
    match reason {
        0x71 => Some(Stage::First),
        0x79 | 0x2..=0x6 => Some(Stage::Second),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn stage_from_the_refusal_reason() {
        assert_eq!(stage_of_reason(0x71), Some(Stage::First));
        assert_eq!(stage_of_reason(0x79), Some(Stage::Second));
        assert_eq!(stage_of_reason(0x5), Some(Stage::Second));
        assert_eq!(stage_of_reason(0x85), None);
    }

    #[test]
    fn bdf_gets_a_segment() {
        assert_eq!(full_bdf("00:03.0"), "0000:00:03.0");
        assert_eq!(full_bdf("0000:00:03.0"), "0000:00:03.0");
    }

    #[test]
    fn open_fails_cleanly_without_an_iommu() {
        let ctx = Context {
            root: PathBuf::from("/nonexistent-guest-root"),
            expect: Err("no expect.json".into()),
            scenario: "vtd".into(),
        };
        let e = Session::open(&ctx).err().unwrap();
        assert!(e.contains("no expect.json"), "{e}");
    }
}
