//! PCI emulation for iovmm: configuration space with write masks, BARs, MSI and MSI-X, the PCI Express and
//! power management capabilities, Function Level Reset, the PASID, ATS and SR-IOV extended capabilities, the
//! host bridge, the segment (CF8/CFC, ECAM, BAR-routed MMIO, firmware-style BAR assignment, multi-function
//! devices, Virtual Functions that come and go), the DMA test device (a PF with VFs) and the PCI endpoint
//! test function (for the guest kernel's `pci_endpoint_test` driver). No KVM dependency:
//! the VMM drives [`PciSegment`] from its exit handlers and implements [`MsiSink`].
//!
//! Every guest-reachable path tolerates any access size and offset: out-of-range reads return all ones and
//! out-of-range writes are ignored.

pub mod ats;
pub mod bar;
pub mod bus;
pub mod capability;
pub mod config;
pub mod device;
pub mod epf_test;
pub mod ioat;
pub mod msi;
pub mod msix;
pub mod pcie;
pub mod root;
pub mod sriov;
pub mod test_device;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod test_alloc;

pub use bar::{Bar, BarError, BarType};
pub use bus::{PciSegment, SegmentError, CONFIG_ADDRESS_PORT, CONFIG_PORT_COUNT, ECAM_SIZE};
pub use config::{ConfigSpace, HeaderType0};
pub use device::PciDevice;
pub use epf_test::EpfTest;
pub use msi::{Delivery, MsiError, MsiMessage, MsiSink, RecordingSink};
pub use root::HostBridge;
pub use test_device::TestDevice;
