//! The mutable state of one unit, behind the device's lock. The register file, translation, fault logging
//! and invalidation each add their methods in their own module.

use super::cache::Caches;
use super::config::Hw;
use super::fault::{FaultUnit, Msi};
use super::inject::Hooks;
use super::invalidation::QiRegs;
use super::ir::IrState;
use super::log_limit::LogLimiter;
use super::stats::VtdStats;

pub(crate) struct State {
    pub hw: Hw,
    /// GSTS: TES, RTPS, QIES, IRES, IRTPS, CFIS.
    pub gsts: u32,
    /// RTADDR_REG as last written.
    pub rtaddr: u64,
    /// RTADDR latched by the last SRTP: the root table (and TTM) translation uses.
    pub root: u64,
    pub ccmd: u64,
    pub iotlb_reg: u64,
    pub iva: u64,
    pub fault: FaultUnit,
    pub qi: QiRegs,
    /// Interrupt remapping: IRTA, the latched table, the interrupt entry cache.
    pub ir: IrState,
    pub caches: Caches,
    pub stats: VtdStats,
    /// Interrupts to send once the lock is released.
    pub outbox: Vec<Msi>,
    /// The monitor's fault injections and completion hold.
    pub hooks: Hooks,
    /// Rate limit of the per-fault log lines.
    pub fault_log: LogLimiter,
}

impl State {
    pub fn new(hw: Hw) -> Self {
        Self {
            hw,
            gsts: 0,
            rtaddr: 0,
            root: 0,
            ccmd: 0,
            iotlb_reg: 0,
            iva: 0,
            fault: FaultUnit::new(hw.nfr),
            qi: QiRegs::new(),
            ir: IrState::new(),
            caches: Caches::new(),
            stats: VtdStats::default(),
            outbox: Vec::new(),
            hooks: Hooks::default(),
            fault_log: LogLimiter::default(),
        }
    }
}
