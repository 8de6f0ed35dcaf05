//! Device tree blobs iovmm publishes alongside its ACPI tables, written with `vm-fdt`.
//!
//! [`smmuv3_fdt`] describes the SMMUv3 of `--iommu smmuv3` and the PCIe host bridge behind it as a small
//! stand-alone tree (the x86 guest itself boots from ACPI; the fragment documents the same topology as the
//! IORT for device-tree consumers and tools). Later IOMMU models add their own trees here.
//!
//! [`tce_fdt`] describes the POWER TCE unit's PHB of `--iommu tce` as a PAPR guest sees it: `ibm,dma-window`,
//! the DDW properties and the `/rtas` tokens they name.

mod smmuv3;
mod tce;
#[cfg(test)]
pub(crate) mod test_reader;

pub use smmuv3::{
    smmuv3_fdt, MSI_PHANDLE, MSI_WINDOW_BASE, MSI_WINDOW_SIZE, PCIE_ECAM_BASE, PCIE_ECAM_SIZE,
    PCI_MMIO32, PCI_MMIO64, SMMUV3_MIN_SIZE, SMMU_PHANDLE,
};
pub use tce::{
    tce_fdt, RtasDdwTokens, TceFdtConfig, TceFdtWindow, DEFAULT_BUID, DMA64_START,
    RTAS_CREATE_PE_DMA_WINDOW, RTAS_QUERY_PE_DMA_WINDOW, RTAS_REMOVE_PE_DMA_WINDOW,
    RTAS_RESET_PE_DMA_WINDOW,
};

/// Why a device tree could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FdtError {
    /// `vm-fdt` refused a node or property (bad name, duplicate phandle, size limits).
    #[error("device tree writer: {0}")]
    Writer(#[from] vm_fdt::Error),
    /// The SMMUv3 parameters do not describe a valid register frame or StreamID space.
    #[error("invalid SMMUv3 device tree: {0}")]
    InvalidSmmuv3(String),
    /// The TCE PHB's windows or RTAS tokens are inconsistent.
    #[error("invalid TCE device tree: {0}")]
    InvalidTce(String),
}
