//! Bring-up drivers for IOMMUs the guest kernel has no driver for (x86 guests have no SMMUv3 or TCE driver): our own
//! driver, written against the specification, run two ways from one source — in-process against the model
//! ([`host`]) and inside the guest over `/dev/mem` ([`devmem`]).

pub mod alloc;
pub mod backend;
pub mod cases;
pub mod devmem;
pub mod host;
pub mod pgtable;
pub mod ram_checks;
pub mod smmuv3;
pub mod tce;
pub mod testdev;
