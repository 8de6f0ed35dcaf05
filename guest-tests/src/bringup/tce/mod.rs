//! POWER TCE unit (IODA2-style hardware view) bring-up driver, its shared test suite and the in-process
//! backend that runs the suite against the model.

pub mod driver;
pub mod host;
pub mod regs;
pub mod suite;
