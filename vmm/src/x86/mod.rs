//! x86-64 CPU state for direct Linux boot.

pub mod cpuid;
pub mod gdt;
pub mod lapic;
pub mod regs;
pub mod xsetbv;
