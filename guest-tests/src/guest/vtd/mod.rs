//! Guest tests of the VT-d milestone: the guest's own intel-iommu driver, iommufd and the VFIO device cdev drive
//! the test device's DMA through the VMM's VT-d model.
//!
//! Every DMA test opens its own [`session::Session`] (bind, attach a fresh IOAS, map BAR0) and closes it at the
//! end, so tests are independent and can run in any order. Faults are checked twice: the device's own report
//! (status, IOVA, access, reason) and the line the guest driver logs from the fault event interrupt.

pub mod cdev;
pub mod common;
pub mod copy;
pub mod cycles;
pub mod default_domain;
pub mod dmar_up;
pub mod fault;
pub mod hw_info;
pub mod iova;
pub mod ir;
pub mod log;
pub mod nest;
pub mod ranges;
pub mod session;
pub mod translate;
pub mod two_ioas;
