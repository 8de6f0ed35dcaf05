//! What the test device's Physical Function and its Virtual Functions share: a configuration space with MSI-X
//! (and, on the PF, MSI and PASID), the BAR0 register file (identity, scratch, interrupt doorbell and counters,
//! DMA engine), the MSI-X table BAR, and the Function Level Reset that returns all of it to its power-on state.

use super::dma::{DmaContext, DmaEngine, DmaRegisters};
use super::regs::*;
use super::IrqCounters;
use crate::ats::PasidCapability;
use crate::config::ConfigSpace;
use crate::msi::{Delivery, MsiCapability, MsiError, MsiSink};
use crate::msix::MsixCapability;
use crate::pcie::{devctl, initiates_flr, pcie_reg};
use std::sync::Arc;

/// One function's state.
pub(crate) struct Function {
    pub(crate) config: ConfigSpace,
    /// Offset of the PCI Express capability.
    pcie: usize,
    msi: Option<MsiCapability>,
    msix: MsixCapability,
    pasid: Option<PasidCapability>,
    /// For a VF, which has no PASID capability: PASID Enable of its PF, whose PASID configuration VFs share
    /// (Linux's `pci_enable_pasid`: "VFs must not implement the PASID Capability").
    pub(crate) shared_pasid_enable: bool,
    sink: Arc<dyn MsiSink>,
    dma: DmaEngine,
    scratch: u32,
    irq: IrqCounters,
    /// Value of [`REG_FEATURES`].
    features: u32,
    /// The power-on configuration space and MSI-X table/PBA, which an FLR restores.
    power_on: Box<(ConfigSpace, MsixCapability)>,
}

/// The capabilities a [`Function`] drives, where its constructor put them.
pub(crate) struct Caps {
    pub pcie: usize,
    pub msi: Option<MsiCapability>,
    pub msix: MsixCapability,
    pub pasid: Option<PasidCapability>,
}

impl Function {
    /// A function in its power-on state: `config` as built, every register zero.
    pub(crate) fn new(
        config: ConfigSpace,
        caps: Caps,
        sink: Arc<dyn MsiSink>,
        dma: iommu::DmaAccessor,
        features: u32,
    ) -> Self {
        let power_on = Box::new((config.clone(), caps.msix.clone()));
        Function {
            config,
            pcie: caps.pcie,
            msi: caps.msi,
            msix: caps.msix,
            pasid: caps.pasid,
            shared_pasid_enable: false,
            sink,
            dma: DmaEngine::new(dma),
            scratch: 0,
            irq: IrqCounters::default(),
            features,
            power_on,
        }
    }

    pub(crate) fn irq_counters(&self) -> IrqCounters {
        self.irq
    }

    pub(crate) fn dma_registers(&self) -> DmaRegisters {
        self.dma.registers()
    }

    /// Whether a guest config write of `data` at `offset` initiates an FLR (the function advertises FLR).
    pub(crate) fn flr_requested(&self, offset: usize, data: &[u8]) -> bool {
        initiates_flr(self.pcie, offset, data)
    }

    /// Function Level Reset (PCIe Base 6.0 §6.6.2): every register returns to its power-on value except
    /// Max_Payload_Size in Device Control, which an FLR preserves; Initiate FLR reads 0. The header (COMMAND
    /// with BME and MEM, BARs, STATUS error bits, interrupt line), MSI and MSI-X (enables, masks, table, PBA),
    /// PM, PASID and ATS control all reset; so do scratch, the interrupt counters and every DMA register.
    /// The engine runs commands to completion inside the register write, so no request is ever in flight
    /// (Transactions Pending stays 0) and the reset completes before the config write returns.
    pub(crate) fn flr(&mut self) {
        let at = self.pcie + pcie_reg::DEVCTL;
        let mps = self.config.read_u16(at) & devctl::MAX_PAYLOAD_SIZE;
        let (config, msix) = &*self.power_on;
        self.config = config.clone();
        self.msix = msix.clone();
        let ctl = self.config.read_u16(at) & !devctl::MAX_PAYLOAD_SIZE;
        self.config.set_u16(at, ctl | mps);
        self.dma.reset();
        self.scratch = 0;
        self.irq = IrqCounters::default();
    }

    /// After a guest config write (that did not reset the function): any write may unmask a vector, set
    /// MSI/MSI-X enable, clear the function mask or set BME, so send what became deliverable.
    pub(crate) fn after_config_write(&mut self) {
        if let Some(msi) = self.msi {
            let r = msi.after_write(&mut self.config, &*self.sink);
            self.count_deferred(r);
        }
        let r = self.msix.after_config_write(&self.config, &*self.sink);
        self.count_deferred(r);
    }

    /// Raises `vector` as the doorbell does: MSI-X if enabled, else MSI if enabled, else dropped.
    pub(crate) fn raise(&mut self, vector: u32) {
        self.irq.raised = self.irq.raised.wrapping_add(1);
        let result = if self.msix.enabled(&self.config) {
            match u16::try_from(vector) {
                Ok(v) => self.msix.trigger(&self.config, v, &*self.sink),
                Err(_) => Ok(Delivery::InvalidVector),
            }
        } else if let Some(msi) = self.msi.filter(|m| m.enabled(&self.config)) {
            msi.trigger(&mut self.config, vector, &*self.sink)
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
    fn count_deferred(&mut self, r: Result<u32, MsiError>) {
        match r {
            Ok(n) => self.irq.sent = self.irq.sent.wrapping_add(n),
            Err(e) => {
                log::warn!("test device: pending vector: {e}");
                self.irq.dropped = self.irq.dropped.wrapping_add(1);
            }
        }
    }

    /// Runs DMA command `cmd` (a [`REG_DMA_CMD`] write) and raises vector 0 if the guest asked for it.
    fn dma_command(&mut self, cmd: u32) {
        let ctx = DmaContext {
            bus_master: self.config.bus_master_enabled(),
            pasid_enabled: match self.pasid {
                Some(p) => p.enabled(&self.config),
                None => self.shared_pasid_enable,
            },
        };
        if self.dma.execute(cmd, ctx) {
            self.raise(0);
        }
    }

    fn reg_read(&self, offset: u64) -> u32 {
        match offset {
            REG_ID => ID_MAGIC,
            REG_VERSION => VERSION,
            REG_FEATURES => self.features,
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

    /// Guest read of the register BAR, `size` bytes long: bytes past it read all ones.
    pub(crate) fn regs_read(&self, offset: u64, data: &mut [u8], size: u64) {
        for (i, out) in data.iter_mut().enumerate() {
            *out = match offset.checked_add(i as u64).filter(|&o| o < size) {
                Some(o) => self.reg_read(o & !3).to_le_bytes()[(o & 3) as usize],
                None => 0xff,
            };
        }
    }

    /// Guest write to the register BAR, `size` bytes long: bytes past it are ignored.
    pub(crate) fn regs_write(&mut self, offset: u64, data: &[u8], size: u64) {
        let mut pos = 0usize;
        while pos < data.len() {
            let Some(o) = offset.checked_add(pos as u64).filter(|&o| o < size) else {
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

    /// Guest read of the MSI-X BAR `bar`, `size` bytes long: bytes past it read all ones.
    pub(crate) fn msix_read(&self, bar: u8, offset: u64, data: &mut [u8], size: u64) {
        if offset >= size {
            data.fill(0xff);
            return;
        }
        self.msix.bar_read(bar, offset, data);
        let valid = usize::try_from(size - offset).unwrap_or(usize::MAX);
        if let Some(tail) = data.get_mut(valid..) {
            tail.fill(0xff);
        }
    }

    /// Guest write to the MSI-X BAR `bar`, `size` bytes long (the table; the PBA is read-only).
    pub(crate) fn msix_write(&mut self, bar: u8, offset: u64, data: &[u8], size: u64) {
        if offset >= size {
            return;
        }
        let r = self
            .msix
            .bar_write(&self.config, bar, offset, data, &*self.sink);
        self.count_deferred(r);
    }
}
