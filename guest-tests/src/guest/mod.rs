//! Guest side: the tests `iovmm-guest` runs as PID 1 and the plumbing around them.
//!
//! Every check reads the guest's own view (procfs, sysfs, /dev/kmsg, VFIO) below a [`context::Context`] root
//! so the same code runs on a fake tree in unit tests.

pub mod acpi;
pub mod bringup_suite;
pub mod cmdline;
pub mod context;
pub mod cpus;
pub mod dma_engine;
pub mod dmabuf;
pub mod dmatest;
pub mod hwpt;
pub mod init;
pub mod ioat;
pub mod iommufd;
pub mod kernel_dma;
pub mod kmsg;
pub mod ktap;
pub mod memmap;
pub mod modules;
pub mod msi;
pub mod pci;
pub mod registry;
pub mod report;
pub mod smmuv3;
pub mod smmuv3_monitor;
pub mod sys;
pub mod tce;
pub mod testdev;
pub mod upstream_vfio;
pub mod vfio;
pub mod vfio_cdev;
pub mod vfio_type1;
pub mod vmm_end;
pub mod vtd;

#[cfg(test)]
pub(crate) mod fake_root;
