//! The iovmm DMA test device: identity, capabilities (MSI, MSI-X, PCIe with Function Level Reset, PM; PASID, ATS
//! and SR-IOV extended), a register file with a scratch register, an interrupt doorbell and a DMA engine that
//! reaches memory only through its IOMMU port, and up to [`regs::TOTAL_VFS`] Virtual Functions with the same
//! register file. The register map is documented in [`regs`].

pub mod dma;
mod function;
pub mod regs;
pub mod vf;

use crate::ats::{pasid_reg, AtsCapability, PasidCapability};
use crate::bar::{Bar, BarDef, BarError, BarType, NUM_BARS};
use crate::capability::CapabilityError;
use crate::config::{ConfigSpace, HeaderType0};
use crate::device::{config_offset, PciDevice};
use crate::msi::{InterruptSetupError, MsiCapability, MsiSink};
use crate::msix::MsixCapability;
use crate::pcie::{
    add_pcie_capability, devcap2, pcie_reg, set_flr_capable, PcieDeviceType, PmCapability,
};
use crate::sriov::{
    SharedPaths, SriovCapability, SriovChange, SriovError, SriovParams, VfPlatform, VfRouting,
};
use dma::DmaRegisters;
use function::{Caps, Function};
use iommu::DmaAccessor;
use regs::*;
use std::sync::Arc;
use thiserror::Error;
pub use vf::VirtualFunction;

/// Device number the VMM gives the test device on bus 0: BDF 0000:00:03.0.
pub const DEFAULT_DEVICE_NUMBER: u8 = 3;

/// Errors building the test device (only reachable through a bug in its constant layout).
#[derive(Debug, Error)]
pub enum TestDeviceError {
    #[error(transparent)]
    Bar(#[from] BarError),
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Interrupt(#[from] InterruptSetupError),
    #[error(transparent)]
    Sriov(#[from] SriovError),
    #[error("extended capability {0} landed at {1:#x}, not where the register map says")]
    Layout(&'static str, usize),
}

/// Interrupt counters, as the registers show them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqCounters {
    pub raised: u32,
    pub sent: u32,
    pub dropped: u32,
    pub last: u32,
}

/// The SR-IOV capability's constants.
fn sriov_params() -> SriovParams {
    let mut vf_bars = [None; NUM_BARS];
    vf_bars[usize::from(REGS_BAR)] = Some(BarDef {
        bar_type: BarType::Mem32,
        size: VF_BAR0_SIZE,
        prefetchable: false,
    });
    vf_bars[usize::from(MSIX_BAR)] = Some(BarDef {
        bar_type: BarType::Mem64,
        size: VF_BAR2_SIZE,
        prefetchable: true,
    });
    SriovParams {
        total_vfs: TOTAL_VFS,
        first_offset: VF_OFFSET,
        stride: VF_STRIDE,
        vf_device_id: VF_DEVICE_ID,
        pf_function: 0,
        vf_bars,
    }
}

/// The test device: the Physical Function and the VFs it has now.
pub struct TestDevice {
    f: Function,
    pm: PmCapability,
    pasid: PasidCapability,
    ats: AtsCapability,
    sriov: SriovCapability,
    /// The PF's requester id (its DMA accessor's source id); VF n's is this + First VF Offset + n × VF Stride.
    requester_id: Option<u16>,
    platform: Arc<dyn VfPlatform>,
    /// VF n at index n; empty while VF Enable is clear.
    vfs: Vec<VirtualFunction>,
}

impl std::fmt::Debug for TestDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDevice")
            .field("config", &self.f.config)
            .field("irq", &self.f.irq_counters())
            .field("dma", &self.f.dma_registers())
            .field("vfs", &self.vfs)
            .finish_non_exhaustive()
    }
}

impl TestDevice {
    /// A test device whose interrupts go to `sink` and whose DMA goes through `dma` (the VMM builds it with the
    /// IOMMU port the device sits behind and source id 0x0018). Its VFs use the same port and memory with
    /// their own requester ids, and send their messages to `sink` as well; [`Self::with_vf_platform`] gives
    /// them their own sinks.
    pub fn new(sink: Arc<dyn MsiSink>, dma: DmaAccessor) -> Result<Self, TestDeviceError> {
        let platform = Arc::new(SharedPaths {
            dma: dma.clone(),
            sink: sink.clone(),
        });
        Self::with_vf_platform(sink, dma, platform)
    }

    /// A test device whose VFs get their DMA accessor and MSI sink from `platform` when VF Enable creates them.
    pub fn with_vf_platform(
        sink: Arc<dyn MsiSink>,
        dma: DmaAccessor,
        platform: Arc<dyn VfPlatform>,
    ) -> Result<Self, TestDeviceError> {
        let mut config = ConfigSpace::new(&HeaderType0 {
            vendor_id: VENDOR_ID,
            device_id: DEVICE_ID,
            revision_id: REVISION,
            class_code: CLASS_CODE,
            subsystem_vendor_id: VENDOR_ID,
            subsystem_id: DEVICE_ID,
            interrupt_pin: 0,
        });
        config.add_bar(REGS_BAR, BarType::Mem32, BAR0_SIZE, false)?;
        config.add_bar(MSIX_BAR, BarType::Mem64, BAR2_SIZE, true)?;
        let pm = PmCapability::add(&mut config)?;
        let msi = MsiCapability::add(&mut config, MSI_VECTORS)?;
        let pcie = add_pcie_capability(&mut config, PcieDeviceType::RootComplexIntegratedEndpoint)?;
        // The PASID prefix is an End-End TLP prefix: Linux enables PASID only on functions that support them.
        config.set_u32(
            pcie + pcie_reg::DEVCAP2,
            devcap2::EE_PREFIX | devcap2::MAX_EE_PREFIXES_1,
        );
        set_flr_capable(&mut config, pcie);
        let msix = MsixCapability::add(
            &mut config,
            MSIX_VECTORS,
            MSIX_BAR,
            MSIX_TABLE_OFFSET,
            MSIX_BAR,
            MSIX_PBA_OFFSET,
        )?;
        let pasid = PasidCapability::add(&mut config, PASID_WIDTH, pasid_reg::CAP_PRIV)?;
        if pasid.offset() != PASID_CAP_OFFSET {
            return Err(TestDeviceError::Layout("PASID", pasid.offset()));
        }
        let ats = AtsCapability::add(&mut config, 32)?;
        if ats.offset() != ATS_CAP_OFFSET {
            return Err(TestDeviceError::Layout("ATS", ats.offset()));
        }
        let sriov = SriovCapability::add(&mut config, &sriov_params())?;
        if sriov.offset() != SRIOV_CAP_OFFSET {
            return Err(TestDeviceError::Layout("SR-IOV", sriov.offset()));
        }
        let requester_id = u16::try_from(dma.source_id).ok();
        let caps = Caps {
            pcie,
            msi: Some(msi),
            msix,
            pasid: Some(pasid),
        };
        Ok(TestDevice {
            f: Function::new(config, caps, sink, dma, FEATURES),
            pm,
            pasid,
            ats,
            sriov,
            requester_id,
            platform,
            vfs: Vec::new(),
        })
    }

    /// The interrupt counters.
    pub fn irq_counters(&self) -> IrqCounters {
        self.f.irq_counters()
    }

    /// The DMA engine's registers.
    pub fn dma_registers(&self) -> DmaRegisters {
        self.f.dma_registers()
    }

    /// ATS Enable as the guest left it (recorded only: the device keeps no translation cache).
    pub fn ats_enabled(&self) -> bool {
        self.ats.enabled(&self.f.config)
    }

    /// Raises `vector` as the doorbell does: MSI-X if enabled, else MSI if enabled, else dropped.
    pub fn raise(&mut self, vector: u32) {
        self.f.raise(vector);
    }

    /// The SR-IOV capability.
    pub fn sriov(&self) -> &SriovCapability {
        &self.sriov
    }

    /// The VFs that exist now (VF n at index n).
    pub fn vfs(&self) -> &[VirtualFunction] {
        &self.vfs
    }

    /// Function Level Reset of the PF: its state returns to power-on (see [`Function::flr`]); VF Enable is
    /// cleared with the rest of the SR-IOV capability, so every VF disappears.
    fn flr(&mut self) {
        self.vfs.clear();
        self.f.flr();
    }

    /// VF Enable was set: creates the NumVFs VFs in their reset state (none if NumVFs is 0 or above
    /// TotalVFs), each with its own requester id, DMA accessor and MSI sink.
    fn create_vfs(&mut self) {
        self.vfs.clear();
        let count = self.sriov.active_vfs(&self.f.config);
        let routing = self.sriov.routing(&self.f.config);
        if count == 0 {
            log::debug!(
                "test device: VF Enable with NumVFs {} (TotalVFs {TOTAL_VFS}): no VFs",
                self.sriov.num_vfs(&self.f.config)
            );
            return;
        }
        let Some(pf) = self.requester_id else {
            log::warn!("test device: no 16-bit requester id, so no VFs");
            return;
        };
        for index in 0..count {
            // Routing IDs grow with the index: the first that does not fit ends the list.
            let Some(rid) = routing.routing_id(pf, index) else {
                log::warn!("test device: VF {index} has no Routing ID below 0x10000");
                break;
            };
            let vf = VirtualFunction::new(
                index,
                rid,
                self.platform.msi_sink(rid),
                self.platform.dma(rid),
            );
            match vf {
                Ok(v) => self.vfs.push(v),
                Err(e) => {
                    log::warn!("test device: VF {index}: {e}");
                    break;
                }
            }
        }
    }

    /// Tells every VF where its BARs are (its slices of the VF BAR apertures), whether VF MSE is set, and
    /// whether the PF's PASID Enable lets it send PASIDs.
    fn place_vfs(&mut self) {
        let config = &self.f.config;
        let mse = self.sriov.vf_memory_enabled(config);
        let pasid = self.pasid.enabled(config);
        for vf in &mut self.vfs {
            let mut slices = [None; NUM_BARS];
            for (i, s) in slices.iter_mut().enumerate() {
                *s = self
                    .sriov
                    .vf_bar(config, i as u8)
                    .filter(|b| b.address != 0)
                    .and_then(|_| self.sriov.vf_slice(config, i as u8, vf.index()));
            }
            vf.place(slices, mse, pasid);
        }
    }
}

impl PciDevice for TestDevice {
    fn config(&self) -> &ConfigSpace {
        &self.f.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.f.config
    }

    fn config_write(&mut self, reg: usize, offset: usize, data: &[u8]) {
        let Some(o) = config_offset(reg, offset) else {
            return;
        };
        let power_state = self.pm.power_state(&self.f.config);
        let sriov_before = self.sriov.snapshot(&self.f.config);
        self.f.config.write(o, data);
        if self.f.flr_requested(o, data) {
            self.flr();
            return;
        }
        self.pm.after_write(&mut self.f.config, power_state);
        match self.sriov.after_write(&mut self.f.config, sriov_before) {
            SriovChange::Enabled => self.create_vfs(),
            SriovChange::Disabled => self.vfs.clear(),
            SriovChange::Unchanged => {}
        }
        self.place_vfs();
        self.f.after_config_write();
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        match bar {
            REGS_BAR => self.f.regs_read(offset, data, BAR0_SIZE),
            MSIX_BAR => self.f.msix_read(bar, offset, data, BAR2_SIZE),
            _ => data.fill(0xff),
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        match bar {
            REGS_BAR => self.f.regs_write(offset, data, BAR0_SIZE),
            MSIX_BAR => self.f.msix_write(bar, offset, data, BAR2_SIZE),
            _ => {}
        }
    }

    fn vf_routing(&self) -> Option<VfRouting> {
        Some(self.sriov.routing(&self.f.config))
    }

    fn num_vfs(&self) -> u16 {
        u16::try_from(self.vfs.len()).unwrap_or(u16::MAX)
    }

    fn vf(&self, index: u16) -> Option<&dyn PciDevice> {
        self.vfs
            .get(usize::from(index))
            .map(|v| v as &dyn PciDevice)
    }

    fn vf_mut(&mut self, index: u16) -> Option<&mut dyn PciDevice> {
        self.vfs
            .get_mut(usize::from(index))
            .map(|v| v as &mut dyn PciDevice)
    }

    fn iov_bars(&self) -> Vec<Bar> {
        self.sriov.apertures(&self.f.config)
    }

    fn set_iov_bar_address(&mut self, index: u8, address: u64) -> Result<(), BarError> {
        self.sriov
            .set_vf_bar_address(&mut self.f.config, index, address)?;
        self.place_vfs();
        Ok(())
    }
}

#[cfg(test)]
mod dma_tests;
#[cfg(test)]
mod flr_tests;
#[cfg(test)]
mod sriov_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
