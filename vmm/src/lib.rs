//! iovmm's VMM: KVM VM and vCPUs, guest memory, direct Linux boot, buses, legacy devices, CLI.

pub mod boot;
pub mod bus;
pub mod cli;
pub mod devices;
pub mod interrupts;
pub mod iommus;
pub mod layout;
pub mod logger;
pub mod memory;
pub mod monitor;
pub mod platform;
pub mod vcpu;
pub mod vm;
pub mod x86;
