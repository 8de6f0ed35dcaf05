//! Host side: `iovmm-runner` boots a scenario's guest (natively or in the TCG test host), parses the KTAP the
//! guest prints, and reports (summary line, JUnit XML, boot timing).

pub mod bench;
pub mod boot;
pub mod cpio;
pub mod exec;
pub mod expect;
pub mod hostmode;
pub mod junit;
pub mod kernels;
pub mod ktap;
pub mod monitor;
pub mod native;
pub mod paths;
pub mod peer;
pub mod run;
pub mod scenario;
pub mod tcg;
pub mod verdict;
