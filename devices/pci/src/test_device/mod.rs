//! The iovmm DMA test device: identity, capabilities (MSI, MSI-X, PCIe, PM; PASID and ATS extended), a register
//! file with a scratch register, an interrupt doorbell and a DMA engine that reaches memory only through its
//! IOMMU port. The register map is documented in [`regs`].

pub mod dma;
pub mod regs;

use crate::ats::{pasid_reg, AtsCapability, PasidCapability};
use crate::bar::{BarError, BarType};
use crate::capability::CapabilityError;
use crate::config::{ConfigSpace, HeaderType0};
use crate::device::{config_offset, PciDevice};
use crate::msi::{Delivery, InterruptSetupError, MsiCapability, MsiSink};
use crate::msix::MsixCapability;
use crate::pcie::{add_pcie_capability, devcap2, pcie_reg, PcieDeviceType, PmCapability};
use dma::{DmaContext, DmaEngine, DmaRegisters};
use iommu::DmaAccessor;
use regs::*;
use std::sync::Arc;
use thiserror::Error;

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

/// The test device.
pub struct TestDevice {
    config: ConfigSpace,
    pm: PmCapability,
    msi: MsiCapability,
    msix: MsixCapability,
    pasid: PasidCapability,
    ats: AtsCapability,
    sink: Arc<dyn MsiSink>,
    dma: DmaEngine,
    scratch: u32,
    irq: IrqCounters,
}

impl std::fmt::Debug for TestDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDevice")
            .field("config", &self.config)
            .field("scratch", &self.scratch)
            .field("irq", &self.irq)
            .field("dma", &self.dma.registers())
            .finish_non_exhaustive()
    }
}

impl TestDevice {
    /// A test device whose interrupts go to `sink` and whose DMA goes through `dma` (the VMM builds it with the
    /// IOMMU port the device sits behind and source id 0x0018).
    pub fn new(sink: Arc<dyn MsiSink>, dma: DmaAccessor) -> Result<Self, TestDeviceError> {
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
        Ok(TestDevice {
            config,
            pm,
            msi,
            msix,
            pasid,
            ats,
            sink,
            dma: DmaEngine::new(dma),
            scratch: 0,
            irq: IrqCounters::default(),
        })
    }

    /// The interrupt counters.
    pub fn irq_counters(&self) -> IrqCounters {
        self.irq
    }

    /// The DMA engine's registers.
    pub fn dma_registers(&self) -> DmaRegisters {
        self.dma.registers()
    }

    /// ATS Enable as the guest left it (recorded only: the device keeps no translation cache).
    pub fn ats_enabled(&self) -> bool {
        self.ats.enabled(&self.config)
    }

    /// Runs DMA command `cmd` (a [`REG_DMA_CMD`] write) and raises vector 0 if the guest asked for it.
    fn dma_command(&mut self, cmd: u32) {
        let ctx = DmaContext {
            bus_master: self.config.bus_master_enabled(),
            pasid_enabled: self.pasid.enabled(&self.config),
        };
        if self.dma.execute(cmd, ctx) {
            self.raise(0);
        }
    }

    /// Raises `vector` as the doorbell does: MSI-X if enabled, else MSI if enabled, else dropped.
    pub fn raise(&mut self, vector: u32) {
        self.irq.raised = self.irq.raised.wrapping_add(1);
        let result = if self.msix.enabled(&self.config) {
            match u16::try_from(vector) {
                Ok(v) => self.msix.trigger(&self.config, v, &*self.sink),
                Err(_) => Ok(Delivery::InvalidVector),
            }
        } else if self.msi.enabled(&self.config) {
            self.msi.trigger(&mut self.config, vector, &*self.sink)
        } else {
            Ok(Delivery::Disabled)
        };
        self.irq.last = match result {
            Ok(Delivery::Sent) => IRQ_LAST_SENT,
            Ok(Delivery::Latched) => IRQ_LAST_PENDING,
            Ok(Delivery::Disabled) => IRQ_LAST_DISABLED,
            Ok(Delivery::InvalidVector) => IRQ_LAST_INVALID_VECTOR,
            Ok(Delivery::BusMasterDisabled) => IRQ_LAST_BUS_MASTER_OFF,
            Err(e) => {
                log::warn!("test device: vector {vector}: {e}");
                IRQ_LAST_DELIVERY_ERROR
            }
        };
        match self.irq.last {
            IRQ_LAST_SENT => self.irq.sent = self.irq.sent.wrapping_add(1),
            IRQ_LAST_PENDING => {}
            _ => self.irq.dropped = self.irq.dropped.wrapping_add(1),
        }
    }

    /// Counts messages sent later (on unmask), or logs why they failed.
    fn count_deferred(&mut self, r: Result<u32, crate::msi::MsiError>) {
        match r {
            Ok(n) => self.irq.sent = self.irq.sent.wrapping_add(n),
            Err(e) => {
                log::warn!("test device: pending vector: {e}");
                self.irq.dropped = self.irq.dropped.wrapping_add(1);
            }
        }
    }

    fn reg_read(&self, offset: u64) -> u32 {
        match offset {
            REG_ID => ID_MAGIC,
            REG_VERSION => VERSION,
            REG_FEATURES => FEATURES,
            REG_SCRATCH => self.scratch,
            REG_IRQ_RAISED => self.irq.raised,
            REG_IRQ_SENT => self.irq.sent,
            REG_IRQ_DROPPED => self.irq.dropped,
            REG_IRQ_LAST => self.irq.last,
            DMA_REGS_START..DMA_REGS_END => self.dma.read(offset),
            _ => 0,
        }
    }

    fn reg_write(&mut self, offset: u64, value: u32) {
        match offset {
            REG_SCRATCH => self.scratch = value,
            REG_IRQ_DOORBELL => self.raise(value),
            REG_DMA_CMD => self.dma_command(value),
            DMA_REGS_START..DMA_REGS_END => self.dma.write(offset, value),
            _ => {}
        }
    }

    fn regs_read(&self, offset: u64, data: &mut [u8]) {
        for (i, out) in data.iter_mut().enumerate() {
            *out = match offset.checked_add(i as u64).filter(|&o| o < BAR0_SIZE) {
                Some(o) => self.reg_read(o & !3).to_le_bytes()[(o & 3) as usize],
                None => 0xff,
            };
        }
    }

    fn regs_write(&mut self, offset: u64, data: &[u8]) {
        let mut pos = 0usize;
        while pos < data.len() {
            let Some(o) = offset.checked_add(pos as u64).filter(|&o| o < BAR0_SIZE) else {
                return;
            };
            let in_reg = (o & 3) as usize;
            let n = (4 - in_reg).min(data.len() - pos);
            let chunk = &data[pos..pos + n];
            let reg = o & !3;
            if n == 4 {
                let v = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                self.reg_write(reg, v);
            } else if reg == REG_SCRATCH {
                let mut b = self.scratch.to_le_bytes();
                b[in_reg..in_reg + n].copy_from_slice(chunk);
                self.scratch = u32::from_le_bytes(b);
            }
            pos += n;
        }
    }
}

impl PciDevice for TestDevice {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    fn config_write(&mut self, reg: usize, offset: usize, data: &[u8]) {
        let Some(o) = config_offset(reg, offset) else {
            return;
        };
        let power_state = self.pm.power_state(&self.config);
        self.config.write(o, data);
        self.pm.after_write(&mut self.config, power_state);
        // Any write may unmask a vector, set MSI/MSI-X enable, clear the function mask or set BME: send what
        // became deliverable.
        let r = self.msi.after_write(&mut self.config, &*self.sink);
        self.count_deferred(r);
        let r = self.msix.after_config_write(&self.config, &*self.sink);
        self.count_deferred(r);
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        match bar {
            REGS_BAR => self.regs_read(offset, data),
            MSIX_BAR if offset < BAR2_SIZE => {
                self.msix.bar_read(bar, offset, data);
                // Bytes past the end of the BAR read all ones.
                let valid = usize::try_from(BAR2_SIZE - offset).unwrap_or(usize::MAX);
                if let Some(tail) = data.get_mut(valid..) {
                    tail.fill(0xff);
                }
            }
            _ => data.fill(0xff),
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        match bar {
            REGS_BAR => self.regs_write(offset, data),
            MSIX_BAR if offset < BAR2_SIZE => {
                let r = self
                    .msix
                    .bar_write(&self.config, bar, offset, data, &*self.sink);
                self.count_deferred(r);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod dma_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
