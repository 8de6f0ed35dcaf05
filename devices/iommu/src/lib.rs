//! IOMMU models and the types they share.
//!
//! Every device touches guest memory in exactly one way: through the [`DmaPort`] of the IOMMU it sits
//! behind (or [`IdentityPort`] when none). Models read their in-memory structures through [`DmaMemory`],
//! whose accesses fail — never panic — outside guest RAM.

mod bounded;
pub mod bringup;
pub mod dma;
mod mapping;
pub mod mem;
mod options;
pub mod ranges;
pub mod registers;
pub mod request;
pub mod smmuv3;
pub mod tce;
pub mod vtd;

pub use dma::{DmaAccessor, DmaError};
pub use mem::{DmaMemory, MemError};
pub use ranges::{IovaWindow, PermittedRanges};
pub use registers::RegisterWindow;
pub use request::{
    Access, DmaFault, DmaPort, DmaRequest, IdentityPort, InterruptSink, Perms, RequestKind,
    Translation,
};
