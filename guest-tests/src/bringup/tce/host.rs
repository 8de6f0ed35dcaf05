//! In-process backend for the TCE suite: the TCE model in [`ModelHost`] (its RAM window at the address the
//! guest reserves, a real DMA test device whose port is the model with source id 0x18 (00:03.0), as under
//! `--iommu tce`).
//!
//! EEH: while the model says the PE is frozen (`Tce::is_frozen()`), the test device's BAR0 reads return all
//! ones and its writes are dropped — the same thing the VMM does for the frozen PE's devices' BAR MMIO — so
//! the suite sees the same machine here as in the guest.

use std::sync::Arc;

use iommu::tce::{Tce, TceConfig};
use iommu::{DmaMemory, InterruptSink};

pub use super::super::host::TESTDEV_SOURCE;
use super::super::host::{HostModel, ModelHost};

/// The TCE model's host backend.
pub type TceHostBackend = ModelHost<Tce>;

/// The TCE unit: its PE freezes (EEH), its options and permitted ranges are the model's.
impl HostModel for Tce {
    type Config = TceConfig;

    fn build(cfg: TceConfig, mem: Arc<dyn DmaMemory>, irq: Arc<dyn InterruptSink>) -> Self {
        Tce::new(cfg, mem, irq)
    }

    fn option_string(cfg: &TceConfig) -> String {
        cfg.option_string()
    }

    fn testdev_frozen(&self) -> bool {
        self.is_frozen()
    }

    fn iommu_options(cfg: &TceConfig) -> Option<String> {
        Some(cfg.option_string())
    }

    fn permitted_iova_ranges(&self, source: u32) -> Option<Vec<(u64, u64)>> {
        Some(
            self.permitted_ranges(source)
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
    use crate::bringup::backend::Backend;
    use pci::test_device::regs::{ID_MAGIC, REG_ID, REG_SCRATCH};

    #[test]
    fn bar0_answers_until_the_pe_freezes() {
        let mut b = TceHostBackend::new(TceConfig::default()).unwrap();
        assert_eq!(b.testdev_read32(REG_ID), ID_MAGIC);
        b.testdev_write32(REG_SCRATCH, 0x5a5a);
        assert_eq!(b.testdev_read32(REG_SCRATCH), 0x5a5a);
        // A DMA outside both default windows freezes the PE.
        super::super::super::testdev::fill(&mut b, 0x1_0000_0000, 8, 0, None);
        assert!(b.model.is_frozen());
        assert_eq!(b.testdev_read32(REG_ID), u32::MAX);
        assert_eq!(b.testdev_read64(REG_ID), u64::MAX);
        b.testdev_write32(REG_SCRATCH, 0x1111);
        b.model.reset_pe();
        assert_eq!(
            b.testdev_read32(REG_SCRATCH),
            0x5a5a,
            "the write while frozen was dropped"
        );
    }
}
