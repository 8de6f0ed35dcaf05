//! An emulated PCI endpoint test function: the device side of Linux's `pci_endpoint_test` host driver
//! (`drivers/misc/pci_endpoint_test.c`), behaving as the endpoint function `pci-epf-test.c` does, so that an
//! unmodified guest kernel moves real data through its DMA API (and so through the IOMMU's default domain).
//! Identity, register block and command semantics are documented in [`regs`].

pub mod crc;
pub mod regs;

use crate::bar::{BarError, BarType};
use crate::capability::CapabilityError;
use crate::config::{ConfigSpace, HeaderType0};
use crate::device::{config_offset, PciDevice};
use crate::msi::{Delivery, InterruptSetupError, MsiCapability, MsiSink};
use crate::pcie::{add_pcie_capability, PcieDeviceType};
use iommu::{DmaAccessor, DmaError};
use regs::*;
use std::sync::Arc;
use thiserror::Error;

/// Device number the function wants on bus 0: BDF 0000:00:04.0 (requester id 0x0020).
pub const DEFAULT_DEVICE_NUMBER: u8 = 4;

/// Errors building the function (only reachable through a bug in its constant layout).
#[derive(Debug, Error)]
pub enum EpfTestError {
    #[error(transparent)]
    Bar(#[from] BarError),
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Interrupt(#[from] InterruptSetupError),
}

/// What the function did, for the VMM's diagnostics and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpfStats {
    /// Commands executed (any outcome).
    pub commands: u64,
    /// Bytes read from host memory by DMA.
    pub bytes_read: u64,
    /// Bytes written to host memory by DMA.
    pub bytes_written: u64,
    /// DMA accesses that failed (IOMMU fault, outside RAM, bus mastering off).
    pub dma_failures: u64,
    /// MSI messages sent (or latched as pending on a masked vector).
    pub irqs_sent: u64,
    /// Interrupts requested that produced no message.
    pub irqs_dropped: u64,
}

/// The endpoint test function.
pub struct EpfTest {
    config: ConfigSpace,
    msi: MsiCapability,
    sink: Arc<dyn MsiSink>,
    dma: DmaAccessor,
    bar0: Vec<u8>,
    rng: u64,
    stats: EpfStats,
}

impl std::fmt::Debug for EpfTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpfTest")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// How one transfer command ended.
enum Transfer {
    Ok,
    /// SIZE above [`MAX_TRANSFER`]: pci-epf-test's "failed to allocate address" outcome.
    TooBig,
    Failed,
}

impl EpfTest {
    /// A function whose MSIs go to `sink` and whose DMA goes through `dma` (the VMM builds it with the IOMMU
    /// port the function sits behind and source id 0x0020 for 00:04.0).
    pub fn new(sink: Arc<dyn MsiSink>, dma: DmaAccessor) -> Result<Self, EpfTestError> {
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
        let msi = MsiCapability::add(&mut config, MSI_VECTORS)?;
        add_pcie_capability(&mut config, PcieDeviceType::RootComplexIntegratedEndpoint)?;
        Ok(EpfTest {
            config,
            msi,
            sink,
            dma,
            bar0: vec![0; BAR0_SIZE as usize],
            rng: 0x9e37_79b9_7f4a_7c15,
            stats: EpfStats::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> EpfStats {
        self.stats
    }

    fn reg(&self, offset: u64) -> u32 {
        let o = offset as usize;
        match self.bar0.get(o..o + 4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }

    fn set_reg(&mut self, offset: u64, value: u32) {
        let o = offset as usize;
        if let Some(b) = self.bar0.get_mut(o..o + 4) {
            b.copy_from_slice(&value.to_le_bytes());
        }
    }

    fn reg64(&self, lo: u64, hi: u64) -> u64 {
        u64::from(self.reg(hi)) << 32 | u64::from(self.reg(lo))
    }

    /// Runs the command in [`REG_COMMAND`], as pci-epf-test's command handler does.
    fn run_command(&mut self) {
        let command = self.reg(REG_COMMAND);
        if command == 0 {
            return;
        }
        self.set_reg(REG_COMMAND, 0);
        self.set_reg(REG_STATUS, 0);
        let irq_type = self.reg(REG_IRQ_TYPE);
        if irq_type > IRQ_TYPE_MSIX {
            log::debug!("epf-test: IRQ type {irq_type} unknown, command {command:#x} ignored");
            return;
        }
        let status = match command {
            COMMAND_RAISE_INTX_IRQ | COMMAND_RAISE_MSI_IRQ | COMMAND_RAISE_MSIX_IRQ => 0,
            COMMAND_READ => match self.device_read() {
                Transfer::Ok => STATUS_READ_SUCCESS,
                Transfer::TooBig => STATUS_SRC_ADDR_INVALID | STATUS_READ_FAIL,
                Transfer::Failed => STATUS_READ_FAIL,
            },
            COMMAND_WRITE => match self.device_write() {
                Transfer::Ok => STATUS_WRITE_SUCCESS,
                Transfer::TooBig => STATUS_DST_ADDR_INVALID | STATUS_WRITE_FAIL,
                Transfer::Failed => STATUS_WRITE_FAIL,
            },
            COMMAND_COPY => match self.device_copy() {
                Transfer::Ok => STATUS_COPY_SUCCESS,
                Transfer::TooBig => STATUS_SRC_ADDR_INVALID | STATUS_COPY_FAIL,
                Transfer::Failed => STATUS_COPY_FAIL,
            },
            _ => {
                log::debug!("epf-test: invalid command {command:#x}");
                return;
            }
        };
        self.stats.commands += 1;
        // Status (with IRQ_RAISED) is visible before the interrupt, as pci-epf-test guarantees.
        self.set_reg(REG_STATUS, status | STATUS_IRQ_RAISED);
        self.raise(irq_type);
    }

    /// The transfer size, or `None` when above [`MAX_TRANSFER`].
    fn size(&self) -> Option<usize> {
        let size = self.reg(REG_SIZE);
        (size <= MAX_TRANSFER).then_some(size as usize)
    }

    /// Notes a DMA outcome; false (and a count) on failure.
    fn dma_ok(&mut self, what: &str, r: Result<(), DmaError>) -> bool {
        match r {
            Ok(()) => true,
            Err(e) => {
                log::debug!("epf-test: {what}: {e}");
                self.stats.dma_failures += 1;
                false
            }
        }
    }

    fn bus_master(&mut self, what: &str) -> bool {
        let on = self.config.bus_master_enabled();
        if !on {
            log::debug!("epf-test: {what} with bus mastering disabled");
            self.stats.dma_failures += 1;
        }
        on
    }

    /// COMMAND_READ: reads SIZE bytes at SRC and compares their checksum with CHECKSUM.
    fn device_read(&mut self) -> Transfer {
        let Some(size) = self.size() else {
            return Transfer::TooBig;
        };
        if !self.bus_master("read") {
            return Transfer::Failed;
        }
        let src = self.reg64(REG_SRC_LO, REG_SRC_HI);
        let mut buf = vec![0u8; size];
        let r = self.dma.read(src, None, &mut buf);
        if !self.dma_ok("read", r) {
            return Transfer::Failed;
        }
        self.stats.bytes_read += size as u64;
        if crc::checksum(&buf) == self.reg(REG_CHECKSUM) {
            Transfer::Ok
        } else {
            Transfer::Failed
        }
    }

    /// COMMAND_WRITE: writes SIZE fresh pseudo-random bytes at DST; CHECKSUM = their checksum.
    fn device_write(&mut self) -> Transfer {
        let Some(size) = self.size() else {
            return Transfer::TooBig;
        };
        let buf = self.random_bytes(size);
        self.set_reg(REG_CHECKSUM, crc::checksum(&buf));
        if !self.bus_master("write") {
            return Transfer::Failed;
        }
        let dst = self.reg64(REG_DST_LO, REG_DST_HI);
        let r = self.dma.write(dst, None, &buf);
        if !self.dma_ok("write", r) {
            return Transfer::Failed;
        }
        self.stats.bytes_written += size as u64;
        Transfer::Ok
    }

    /// COMMAND_COPY: reads SIZE bytes at SRC, then writes them at DST.
    fn device_copy(&mut self) -> Transfer {
        let Some(size) = self.size() else {
            return Transfer::TooBig;
        };
        if !self.bus_master("copy") {
            return Transfer::Failed;
        }
        let src = self.reg64(REG_SRC_LO, REG_SRC_HI);
        let dst = self.reg64(REG_DST_LO, REG_DST_HI);
        let mut buf = vec![0u8; size];
        let r = self.dma.read(src, None, &mut buf);
        if !self.dma_ok("copy read", r) {
            return Transfer::Failed;
        }
        self.stats.bytes_read += size as u64;
        let r = self.dma.write(dst, None, &buf);
        if !self.dma_ok("copy write", r) {
            return Transfer::Failed;
        }
        self.stats.bytes_written += size as u64;
        Transfer::Ok
    }

    /// `len` bytes from an xorshift64* stream (the endpoint's `get_random_bytes`; only freshness matters).
    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            out.extend_from_slice(&self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Raises the interrupt IRQ_TYPE/IRQ_NUMBER ask for: only MSI exists; message `IRQ_NUMBER - 1`.
    fn raise(&mut self, irq_type: u32) {
        let number = self.reg(REG_IRQ_NUMBER);
        let count = if self.msi.enabled(&self.config) {
            self.msi.allocated_vectors(&self.config)
        } else {
            0
        };
        if irq_type != IRQ_TYPE_MSI || number == 0 || number > count {
            log::debug!(
                "epf-test: cannot raise IRQ type {irq_type} number {number} ({count} MSI vectors)"
            );
            self.stats.irqs_dropped += 1;
            return;
        }
        match self.msi.trigger(&mut self.config, number - 1, &*self.sink) {
            Ok(Delivery::Sent | Delivery::Latched) => self.stats.irqs_sent += 1,
            Ok(other) => {
                log::debug!("epf-test: MSI {number}: {other:?}");
                self.stats.irqs_dropped += 1;
            }
            Err(e) => {
                log::warn!("epf-test: MSI {number}: {e}");
                self.stats.irqs_dropped += 1;
            }
        }
    }
}

impl PciDevice for EpfTest {
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
        self.config.write(o, data);
        // A write may unmask a vector or set MSI enable / BME: send what became deliverable.
        match self.msi.after_write(&mut self.config, &*self.sink) {
            Ok(n) => self.stats.irqs_sent += u64::from(n),
            Err(e) => {
                log::warn!("epf-test: pending MSI: {e}");
                self.stats.irqs_dropped += 1;
            }
        }
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        if bar != REGS_BAR {
            return;
        }
        for (i, out) in data.iter_mut().enumerate() {
            let byte = offset
                .checked_add(i as u64)
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| self.bar0.get(o));
            if let Some(&b) = byte {
                *out = b;
            }
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        if bar != REGS_BAR {
            return;
        }
        let mut touched_command = false;
        for (i, &b) in data.iter().enumerate() {
            let Some(o) = offset.checked_add(i as u64) else {
                break;
            };
            let Some(slot) = usize::try_from(o).ok().and_then(|o| self.bar0.get_mut(o)) else {
                break;
            };
            *slot = b;
            touched_command |= (REG_COMMAND..REG_COMMAND + 4).contains(&o);
        }
        if touched_command {
            self.run_command();
        }
    }
}

#[cfg(test)]
mod tests;
