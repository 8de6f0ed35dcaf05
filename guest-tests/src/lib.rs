//! iovmm guest tests.
//!
//! Two halves share this crate:
//! - [`guest`]: the static `iovmm-guest` binary's logic. It runs as PID 1 inside the guest, compares what Linux
//!   sees with the machine description the VMM published (`/expect.json`), and prints KTAP v1 on the console.
//! - [`runner`]: the host-side `iovmm-runner`. It picks a host mode (native KVM or the TCG test host), boots
//!   the guest through `iovmm run`, parses the KTAP output and writes JUnit XML.
//!
//! The comparison logic is made of pure functions over strings and structs so it is unit tested on the host.

pub mod bringup;
pub mod guest;
pub mod runner;
