//! In-process backends: an IOMMU model over test memory laid out like the guest (the driver's RAM window at
//! the same physical address the guest reserves), and a real DMA test device whose port is the model with
//! requester id 0x18 (00:03.0). Everything runs synchronously on the calling thread. [`ModelHost`] is the
//! plumbing every model shares; [`HostModel`] is what a model adds (its registers, configuration and, for
//! units with EEH, whether the test device's PE is frozen). This file also has the SMMUv3's
//! ([`HostBackend`]); the TCE's is `super::tce::host`.

use std::sync::{Arc, Mutex};

use iommu::mem::{MemError, TestMemory};
use iommu::smmuv3::{Smmuv3, Smmuv3Config};
use iommu::{DmaAccessor, DmaMemory, DmaPort, InterruptSink, RegisterWindow};
use pci::config::{command, reg};
use pci::test_device::regs::REGS_BAR;
use pci::{PciDevice, RecordingSink, TestDevice};

use super::backend::{window_offset, Backend};

/// Where the guest reserves the driver's RAM (`memmap=16M$0x10000000`).
pub const RAM_BASE: u64 = 0x1000_0000;
pub const RAM_SIZE: u64 = 16 << 20;

/// Test memory that exists only at `[base, base + size)`.
pub struct WindowMemory {
    base: u64,
    inner: TestMemory,
    size: u64,
}

impl WindowMemory {
    pub fn new(base: u64, size: u64) -> Self {
        Self {
            base,
            inner: TestMemory::new(size as usize),
            size,
        }
    }

    fn local(&self, addr: u64, len: usize) -> Result<u64, MemError> {
        window_offset(self.base, self.size, addr, len)
            .map(|o| o as u64)
            .map_err(|_| MemError { addr, len })
    }
}

impl DmaMemory for WindowMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let o = self.local(addr, buf.len())?;
        self.inner.read(o, buf)
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        let o = self.local(addr, buf.len())?;
        self.inner.write(o, buf)
    }

    fn compare_exchange_u64(&self, addr: u64, current: u64, new: u64) -> Result<u64, MemError> {
        let o = self.local(addr, 8)?;
        self.inner
            .compare_exchange_u64(o, current, new)
            .map_err(|_| MemError { addr, len: 8 })
    }
}

/// Interrupts the model sends outside RAM (none expected: every MSI address the driver programs is RAM).
#[derive(Default)]
pub struct RecordingIrq {
    pub messages: Mutex<Vec<(u64, u32)>>,
}

impl InterruptSink for RecordingIrq {
    fn msi(&self, address: u64, data: u32) {
        match self.messages.lock() {
            Ok(mut m) => m.push((address, data)),
            Err(p) => p.into_inner().push((address, data)),
        }
    }
}

/// The test device's requester id (00:03.0): the SMMUv3 StreamID, the TCE source.
pub const TESTDEV_SOURCE: u32 = 0x18;

/// What an IOMMU model adds to [`ModelHost`].
pub trait HostModel: DmaPort + RegisterWindow + Sized + 'static {
    /// The model's configuration.
    type Config: Clone;

    /// The model over `mem`, sending interrupts outside RAM to `irq`.
    fn build(cfg: Self::Config, mem: Arc<dyn DmaMemory>, irq: Arc<dyn InterruptSink>) -> Self;
    /// `cfg` as an option string (`Backend::name`).
    fn option_string(cfg: &Self::Config) -> String;

    /// Gating hook: the unit has frozen the test device's PE (EEH). While it has, BAR0 reads all ones and
    /// its writes are dropped ([`ModelHost::drop_frozen_writes`]) — what the VMM does for a frozen PE's
    /// devices' BAR MMIO. Models without EEH never freeze.
    fn testdev_frozen(&self) -> bool {
        false
    }
    /// [`Backend::expected_config`].
    fn expected_config(_cfg: &Self::Config) -> Option<Smmuv3Config> {
        None
    }
    /// [`Backend::iommu_options`].
    fn iommu_options(_cfg: &Self::Config) -> Option<String> {
        None
    }
    /// [`Backend::iommu_permitted_ranges`].
    fn permitted_iova_ranges(&self, _source: u32) -> Option<Vec<(u64, u64)>> {
        None
    }
}

/// The model, its memory and the test device behind it.
pub struct ModelHost<M: HostModel> {
    pub model: Arc<M>,
    pub mem: Arc<WindowMemory>,
    pub irq: Arc<RecordingIrq>,
    pub dev: TestDevice,
    cfg: M::Config,
    /// Drop BAR0 writes while frozen (the VMM's behaviour, default); `false` lets them reach the device, so
    /// the suite also holds against a machine that only makes the reads all ones.
    pub drop_frozen_writes: bool,
}

/// The SMMUv3 model's host backend.
pub type HostBackend = ModelHost<Smmuv3>;

impl<M: HostModel> ModelHost<M> {
    /// A model configured with `cfg`, and a test device with memory decoding and bus mastering on.
    pub fn new(cfg: M::Config) -> Result<Self, String> {
        let mem = Arc::new(WindowMemory::new(RAM_BASE, RAM_SIZE));
        let irq = Arc::new(RecordingIrq::default());
        let model = Arc::new(M::build(cfg.clone(), mem.clone(), irq.clone()));
        let dma = DmaAccessor::new(model.clone(), mem.clone(), TESTDEV_SOURCE);
        let mut dev = TestDevice::new(Arc::new(RecordingSink::default()), dma)
            .map_err(|e| format!("test device: {e}"))?;
        let cmd = command::MEMORY_SPACE | command::BUS_MASTER;
        dev.config_write(reg::COMMAND / 4, reg::COMMAND % 4, &cmd.to_le_bytes());
        Ok(Self {
            model,
            mem,
            irq,
            dev,
            cfg,
            drop_frozen_writes: true,
        })
    }

    /// Reads BAR0 like the VMM does: all ones while the PE is frozen.
    fn bar0_read(&mut self, off: u64, data: &mut [u8]) {
        if self.model.testdev_frozen() {
            data.fill(0xff);
        } else {
            self.dev.bar_read(REGS_BAR, off, data);
        }
    }

    /// Writes BAR0 like the VMM does: dropped while the PE is frozen.
    fn bar0_write(&mut self, off: u64, data: &[u8]) {
        if !(self.drop_frozen_writes && self.model.testdev_frozen()) {
            self.dev.bar_write(REGS_BAR, off, data);
        }
    }
}

impl<M: HostModel> Backend for ModelHost<M> {
    fn name(&self) -> String {
        format!("host model ({})", M::option_string(&self.cfg))
    }

    fn mmio_read32(&mut self, off: u64) -> u32 {
        self.model.read32(off)
    }

    fn mmio_read64(&mut self, off: u64) -> u64 {
        self.model.read64(off)
    }

    fn mmio_write32(&mut self, off: u64, v: u32) {
        self.model.write32(off, v);
    }

    fn mmio_write64(&mut self, off: u64, v: u64) {
        self.model.write64(off, v);
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

    fn expected_config(&self) -> Option<Smmuv3Config> {
        M::expected_config(&self.cfg)
    }

    fn iommu_options(&self) -> Option<String> {
        M::iommu_options(&self.cfg)
    }

    fn iommu_permitted_ranges(&self, source: u32) -> Option<Vec<(u64, u64)>> {
        self.model.permitted_iova_ranges(source)
    }
}

/// The SMMUv3: no EEH, its exact configuration is what the suite expects.
impl HostModel for Smmuv3 {
    type Config = Smmuv3Config;

    fn build(cfg: Smmuv3Config, mem: Arc<dyn DmaMemory>, irq: Arc<dyn InterruptSink>) -> Self {
        Smmuv3::new(cfg, mem, irq)
    }

    fn option_string(cfg: &Smmuv3Config) -> String {
        cfg.option_string()
    }

    fn expected_config(cfg: &Smmuv3Config) -> Option<Smmuv3Config> {
        Some(cfg.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_memory_exists_only_in_the_window() {
        let m = WindowMemory::new(RAM_BASE, 0x2000);
        m.write_u64(RAM_BASE + 0x1ff8, 7).unwrap();
        assert_eq!(m.read_u64(RAM_BASE + 0x1ff8).unwrap(), 7);
        assert!(m.read_u64(RAM_BASE + 0x1ffc).is_err());
        assert!(m.read_u64(0).is_err());
        assert!(m.write_u32(RAM_BASE - 4, 1).is_err());
    }

    #[test]
    fn test_device_answers_through_bar0() {
        let mut b = HostBackend::new(Smmuv3Config::default()).unwrap();
        assert_eq!(
            b.testdev_read32(pci::test_device::regs::REG_ID),
            pci::test_device::regs::ID_MAGIC
        );
        b.testdev_write32(pci::test_device::regs::REG_SCRATCH, 0x5a5a);
        assert_eq!(
            b.testdev_read32(pci::test_device::regs::REG_SCRATCH),
            0x5a5a
        );
    }
}
