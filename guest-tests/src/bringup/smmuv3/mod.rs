//! Arm SMMUv3 (IHI0070) bring-up driver and its shared test suite.

pub mod commands;
pub mod driver;
pub mod events;
pub mod features;
pub mod monitor;
pub mod regs;
pub mod suite;
