//! In-process backend for the TCE suite: the TCE model over test memory laid out like the guest (the driver's
//! RAM window at the address the guest reserves), and a real DMA test device whose port is the model with
//! source id 0x18 (00:03.0), as under `--iommu tce`.
//!
//! EEH: while the model says the PE is frozen (`Tce::is_frozen()`), the test device's BAR0 reads return all
//! ones and its writes are dropped — the same thing the VMM does for the frozen PE's devices' BAR MMIO — so
//! the suite sees the same machine here as in the guest.

use std::sync::Arc;

use iommu::tce::{Tce, TceConfig};
use iommu::{DmaAccessor, DmaMemory};
use pci::config::{command, reg};
use pci::test_device::regs::REGS_BAR;
use pci::{PciDevice, RecordingSink, TestDevice};

use super::super::backend::Backend;
use super::super::host::{RecordingIrq, WindowMemory, RAM_BASE, RAM_SIZE};

/// The test device's requester id (00:03.0).
pub const TESTDEV_SOURCE: u32 = 0x18;

/// The model, its memory and the test device behind it.
pub struct TceHostBackend {
    pub tce: Arc<Tce>,
    pub mem: Arc<WindowMemory>,
    pub irq: Arc<RecordingIrq>,
    pub dev: TestDevice,
    cfg: TceConfig,
    /// Drop BAR0 writes while frozen (the VMM's behaviour, default); `false` lets them reach the device, so
    /// the suite also holds against a machine that only makes the reads all ones.
    pub drop_frozen_writes: bool,
}

impl TceHostBackend {
    /// A model configured with `cfg`, and a test device with memory decoding and bus mastering on.
    pub fn new(cfg: TceConfig) -> Result<Self, String> {
        let mem = Arc::new(WindowMemory::new(RAM_BASE, RAM_SIZE));
        let irq = Arc::new(RecordingIrq::default());
        let tce = Arc::new(Tce::new(cfg.clone(), mem.clone(), irq.clone()));
        let dma = DmaAccessor::new(tce.clone(), mem.clone(), TESTDEV_SOURCE);
        let mut dev = TestDevice::new(Arc::new(RecordingSink::default()), dma)
            .map_err(|e| format!("test device: {e}"))?;
        let cmd = command::MEMORY_SPACE | command::BUS_MASTER;
        dev.config_write(reg::COMMAND / 4, reg::COMMAND % 4, &cmd.to_le_bytes());
        Ok(Self {
            tce,
            mem,
            irq,
            dev,
            cfg,
            drop_frozen_writes: true,
        })
    }

    /// Reads BAR0 like the VMM does: all ones while the PE is frozen.
    fn bar0_read(&mut self, off: u64, data: &mut [u8]) {
        if self.tce.is_frozen() {
            data.fill(0xff);
        } else {
            self.dev.bar_read(REGS_BAR, off, data);
        }
    }

    /// Writes BAR0 like the VMM does: dropped while the PE is frozen.
    fn bar0_write(&mut self, off: u64, data: &[u8]) {
        if !(self.drop_frozen_writes && self.tce.is_frozen()) {
            self.dev.bar_write(REGS_BAR, off, data);
        }
    }
}

impl Backend for TceHostBackend {
    fn name(&self) -> String {
        format!("host model ({})", self.cfg.option_string())
    }

    fn mmio_read32(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.tce.mmio_read(off, &mut b);
        u32::from_le_bytes(b)
    }

    fn mmio_read64(&mut self, off: u64) -> u64 {
        let mut b = [0u8; 8];
        self.tce.mmio_read(off, &mut b);
        u64::from_le_bytes(b)
    }

    fn mmio_write32(&mut self, off: u64, v: u32) {
        self.tce.mmio_write(off, &v.to_le_bytes());
    }

    fn mmio_write64(&mut self, off: u64, v: u64) {
        self.tce.mmio_write(off, &v.to_le_bytes());
    }

    fn mem_read(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), String> {
        self.mem.read(pa, buf).map_err(|e| e.to_string())
    }

    fn mem_write(&mut self, pa: u64, buf: &[u8]) -> Result<(), String> {
        self.mem.write(pa, buf).map_err(|e| e.to_string())
    }

    fn mem_base(&self) -> u64 {
        RAM_BASE
    }

    fn mem_size(&self) -> u64 {
        RAM_SIZE
    }

    fn testdev_read32(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.bar0_read(off, &mut b);
        u32::from_le_bytes(b)
    }

    fn testdev_read64(&mut self, off: u64) -> u64 {
        let mut b = [0u8; 8];
        self.bar0_read(off, &mut b);
        u64::from_le_bytes(b)
    }

    fn testdev_write32(&mut self, off: u64, v: u32) {
        self.bar0_write(off, &v.to_le_bytes());
    }

    fn testdev_write64(&mut self, off: u64, v: u64) {
        self.bar0_write(off, &v.to_le_bytes());
    }

    fn testdev_config_write16(&mut self, off: usize, v: u16) -> Result<(), String> {
        if off % 4 > 2 {
            return Err(format!("config write at {off:#x} crosses a dword"));
        }
        self.dev.config_write(off / 4, off % 4, &v.to_le_bytes());
        Ok(())
    }

    fn testdev_config_read16(&mut self, off: usize) -> Result<u16, String> {
        let mut b = [0u8; 2];
        self.dev.config_read(off / 4, off % 4, &mut b);
        Ok(u16::from_le_bytes(b))
    }

    fn testdev_sid(&self) -> u32 {
        TESTDEV_SOURCE
    }

    fn expected_config(&self) -> Option<iommu::smmuv3::Smmuv3Config> {
        None
    }

    fn iommu_options(&self) -> Option<String> {
        Some(self.cfg.option_string())
    }

    fn iommu_permitted_ranges(&self, source: u32) -> Option<Vec<(u64, u64)>> {
        Some(
            self.tce
                .permitted_ranges(source)
                .windows()
                .iter()
                .map(|w| (w.first, w.last))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pci::test_device::regs::{ID_MAGIC, REG_ID, REG_SCRATCH};

    #[test]
    fn bar0_answers_until_the_pe_freezes() {
        let mut b = TceHostBackend::new(TceConfig::default()).unwrap();
        assert_eq!(b.testdev_read32(REG_ID), ID_MAGIC);
        b.testdev_write32(REG_SCRATCH, 0x5a5a);
        assert_eq!(b.testdev_read32(REG_SCRATCH), 0x5a5a);
        // A DMA outside both default windows freezes the PE.
        super::super::super::testdev::fill(&mut b, 0x1_0000_0000, 8, 0, None);
        assert!(b.tce.is_frozen());
        assert_eq!(b.testdev_read32(REG_ID), u32::MAX);
        assert_eq!(b.testdev_read64(REG_ID), u64::MAX);
        b.testdev_write32(REG_SCRATCH, 0x1111);
        b.tce.reset_pe();
        assert_eq!(
            b.testdev_read32(REG_SCRATCH),
            0x5a5a,
            "the write while frozen was dropped"
        );
    }
}
