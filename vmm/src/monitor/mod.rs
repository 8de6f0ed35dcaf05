//! The VMM monitor: JSON lines on a Unix socket (`iovmm run --monitor PATH`), and the `iovmm debug` client.

pub mod client;
pub mod commands;
pub mod protocol;
pub mod server;

pub use commands::MonitorTarget;
pub use protocol::{Request, Response};
