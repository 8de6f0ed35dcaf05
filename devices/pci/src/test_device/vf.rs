//! A Virtual Function of the test device (PCIe Base 6.0 §9.3.4-5): a minimal function with the PF's BAR0 register
//! file (its PASID use governed by the PF's PASID capability), MSI-X in VF BAR2 and Function Level Reset, created in its reset state when the PF's VF
//! Enable is set and dropped when it is cleared. Its BARs are slices of the PF's VF BAR apertures; its DMA and
//! its MSI-X messages carry its own requester id. Register-level description in [`super::regs`].

use super::function::{Caps, Function};
use super::regs::*;
use super::{IrqCounters, TestDeviceError};
use crate::bar::{Bar, BarError, NUM_BARS};
use crate::config::{command, reg, ConfigSpace, HeaderType0};
use crate::device::{config_offset, PciDevice};
use crate::msi::MsiSink;
use crate::msix::MsixCapability;
use crate::pcie::{add_pcie_capability, pcie_reg, set_flr_capable, PcieDeviceType};
use iommu::DmaAccessor;
use std::sync::Arc;

use super::dma::DmaRegisters;

/// One VF.
pub struct VirtualFunction {
    f: Function,
    index: u16,
    requester_id: u16,
    /// Its BARs where the PF's VF BARs put them (VF 0's base + index × per-VF size), by VF BAR index; `None`
    /// while that VF BAR is unassigned.
    slices: [Option<Bar>; NUM_BARS],
    /// The PF's VF MSE.
    memory_enabled: bool,
}

impl std::fmt::Debug for VirtualFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualFunction")
            .field("index", &self.index)
            .field("requester_id", &format_args!("{:#06x}", self.requester_id))
            .field("slices", &self.slices)
            .field("memory_enabled", &self.memory_enabled)
            .finish_non_exhaustive()
    }
}

/// The VF configuration header and capabilities (§9.3.4.1, §9.3.5).
fn vf_config() -> Result<(ConfigSpace, Caps), TestDeviceError> {
    let mut config = ConfigSpace::new(&HeaderType0 {
        // §9.3.4.1.1-2: a VF's Vendor and Device ID read 0xFFFF; software uses its PF's.
        vendor_id: 0xffff,
        device_id: 0xffff,
        revision_id: REVISION,
        class_code: CLASS_CODE,
        subsystem_vendor_id: VENDOR_ID,
        subsystem_id: VF_DEVICE_ID,
        interrupt_pin: 0,
    });
    // §9.3.4.1.3: I/O and Memory Space Enable, Parity Error Response, SERR# Enable and Interrupt Disable are
    // RsvdP in a VF (memory decoding is the PF's VF MSE; VFs have no INTx); only Bus Master Enable is its own.
    config.set_masks(reg::COMMAND, 2, u32::from(command::BUS_MASTER), 0);
    // Cache Line Size and Interrupt Line do not apply to VFs (§9.3.4.1.7, §9.3.4.1.17): read-only zero here.
    config.set_masks(reg::CACHE_LINE_SIZE, 1, 0, 0);
    config.set_masks(reg::INTERRUPT_LINE, 1, 0, 0);
    let pcie = add_pcie_capability(&mut config, PcieDeviceType::RootComplexIntegratedEndpoint)?;
    // VFs must implement FLR (§9.3.5, a VF's PCI Express capability); every other Device Control field is RsvdP
    // in a VF (the PF's settings apply), so it reads 0 and only Initiate FLR does anything.
    set_flr_capable(&mut config, pcie);
    config.set_u16(pcie + pcie_reg::DEVCTL, 0);
    config.set_masks(pcie + pcie_reg::DEVCTL, 2, 0, 0);
    let mut sizes = [None; NUM_BARS];
    sizes[usize::from(REGS_BAR)] = Some(VF_BAR0_SIZE);
    sizes[usize::from(MSIX_BAR)] = Some(VF_BAR2_SIZE);
    let msix = MsixCapability::add_in_bars(
        &mut config,
        MSIX_VECTORS,
        (MSIX_BAR, MSIX_TABLE_OFFSET),
        (MSIX_BAR, MSIX_PBA_OFFSET),
        &sizes,
    )?;
    Ok((
        config,
        Caps {
            pcie,
            msi: None,
            msix,
            pasid: None,
        },
    ))
}

impl VirtualFunction {
    /// VF `index` in its reset state, with requester id `requester_id`, interrupts to `sink` and DMA through
    /// `dma`; its BARs do not decode until the PF places them.
    pub(crate) fn new(
        index: u16,
        requester_id: u16,
        sink: Arc<dyn MsiSink>,
        dma: DmaAccessor,
    ) -> Result<Self, TestDeviceError> {
        let (config, caps) = vf_config()?;
        Ok(VirtualFunction {
            f: Function::new(config, caps, sink, dma, VF_FEATURES),
            index,
            requester_id,
            slices: [None; NUM_BARS],
            memory_enabled: false,
        })
    }

    /// The VF number (0-based).
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Its requester id (Routing ID).
    pub fn requester_id(&self) -> u16 {
        self.requester_id
    }

    /// The interrupt counters.
    pub fn irq_counters(&self) -> IrqCounters {
        self.f.irq_counters()
    }

    /// The DMA engine's registers.
    pub fn dma_registers(&self) -> DmaRegisters {
        self.f.dma_registers()
    }

    /// Where the PF's VF BARs put this VF's BARs, whether VF MSE lets them decode, and the PF's PASID Enable
    /// (which the VF's requests follow).
    pub(crate) fn place(
        &mut self,
        slices: [Option<Bar>; NUM_BARS],
        memory_enabled: bool,
        pasid_enabled: bool,
    ) {
        self.slices = slices;
        self.memory_enabled = memory_enabled;
        self.f.shared_pasid_enable = pasid_enabled;
    }

    /// Size of this VF's BAR `bar` (0 while unassigned).
    fn bar_size(&self, bar: u8) -> u64 {
        self.slices
            .get(usize::from(bar))
            .copied()
            .flatten()
            .map_or(0, |b| b.size)
    }
}

impl PciDevice for VirtualFunction {
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
        self.f.config.write(o, data);
        if self.f.flr_requested(o, data) {
            self.f.flr();
            return;
        }
        self.f.after_config_write();
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        let size = self.bar_size(bar);
        match bar {
            REGS_BAR => self.f.regs_read(offset, data, size),
            MSIX_BAR => self.f.msix_read(bar, offset, data, size),
            _ => data.fill(0xff),
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        let size = self.bar_size(bar);
        match bar {
            REGS_BAR => self.f.regs_write(offset, data, size),
            MSIX_BAR => self.f.msix_write(bar, offset, data, size),
            _ => {}
        }
    }

    /// Its BAR slices (the header's BARs are read-only zero, §9.3.4.1.11).
    fn bars(&self) -> Vec<Bar> {
        self.slices.iter().flatten().copied().collect()
    }

    fn memory_enabled(&self) -> bool {
        self.memory_enabled
    }

    fn decode(&self, gpa: u64) -> Option<(u8, u64)> {
        if !self.memory_enabled {
            return None;
        }
        self.slices
            .iter()
            .flatten()
            .find(|b| b.address != 0 && b.contains(gpa))
            .map(|b| (b.index, gpa - b.address))
    }

    /// A VF's BARs are placed through its PF's VF BARs.
    fn set_bar_address(&mut self, index: u8, _address: u64) -> Result<(), BarError> {
        Err(BarError::NotImplemented(index))
    }

    fn os_ids(&self) -> (u16, u16) {
        (VENDOR_ID, VF_DEVICE_ID)
    }
}
