//! Intel VT-d DMA-remapping hardware model (Intel VT-d architecture specification 4.x/5.0).
//!
//! One remapping unit: the register window (`mmio_read`/`mmio_write`), legacy and scalable-mode
//! translation with second-stage tables and pass-through ([`crate::DmaPort`]), interrupt remapping
//! ([`Vtd::remap_msi`]), primary fault logging with the fault event MSI, register-based and queued
//! invalidation, and the IOTLB / context / PASID / interrupt entry caches.
//!
//! Translation: second-stage (legacy, PGTT 010b), first-stage IA-32e 4/5-level (PGTT 001b), nested
//! (PGTT 011b) and pass-through, with accessed/dirty updates for the first stage. Address widths 39 to
//! 57 bits (MGAW; SAGAW offers the table depths up to the covering one).
//!
//! For the monitor, all side-effect free unless noted: [`Vtd::lookup`] (one request's walk),
//! [`Vtd::dump`] / [`dump_dot`] (a source's whole mapping and table tree), [`Vtd::permitted_ranges`],
//! [`Vtd::stats`]; and the test hooks [`Vtd::inject_fault`] and
//! [`Vtd::hold_invalidation_completion`] (which do change behaviour). Per-fault log lines are
//! rate-limited (`log_limit.rs`).
//!
//! Not modelled yet (structured to slot in): posted interrupts (CAP.PI=0),
//! device-TLB / ATS (ECAP.DT=0), page requests (ECAP.PRS=0), advanced fault logging, PMRs.

mod cache;
mod config;
mod dump;
mod dump_dot;
mod fault;
mod first_stage;
mod inject;
mod invalidation;
mod ir;
mod ir_irte;
mod log_limit;
mod lookup;
mod mmio;
mod reason;
pub mod regs;
mod state;
mod stats;
mod structures;
mod translate;
mod walk;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

pub use config::{Bdf, Rmrr, VtdConfig, VtdConfigError};
pub use dump::{Dump, FaultRange, Mapping, TableNode, MAX_FAULT_RANGES, MAX_STEPS, MAX_TABLES};
pub use dump_dot::dump_dot;
pub use inject::MAX_HOLD;
pub use ir::RemappedMsi;
pub use lookup::{AdUpdate, Lookup, LookupOutcome, LookupStep, SecondStagePurpose, Structure};
pub use reason::FaultReason;
pub use regs::VTD_MMIO_SIZE;
pub use stats::VtdStats;
pub use walk::Stage;

use crate::mem::DmaMemory;
use crate::ranges::{IovaWindow, PermittedRanges};
use crate::request::{DmaFault, DmaPort, DmaRequest, InterruptSink, Translation};
use config::Hw;
use fault::Msi;
use state::State;

/// One VT-d remapping unit.
pub struct Vtd {
    cfg: VtdConfig,
    mem: Arc<dyn DmaMemory>,
    irq: Arc<dyn InterruptSink>,
    state: Mutex<State>,
}

impl Vtd {
    /// A unit in its reset state. Out-of-range configuration values are replaced by the nearest
    /// supported ones (parse with `str::parse::<VtdConfig>` or call [`VtdConfig::validate`] to refuse
    /// them instead).
    pub fn new(cfg: VtdConfig, mem: Arc<dyn DmaMemory>, irq: Arc<dyn InterruptSink>) -> Self {
        if let Err(e) = cfg.validate() {
            log::warn!("vtd: {e}; using the nearest supported configuration");
        }
        let cfg = cfg.normalized();
        let hw = Hw::new(&cfg);
        Self {
            cfg,
            mem,
            irq,
            state: Mutex::new(State::new(hw)),
        }
    }

    pub fn config(&self) -> &VtdConfig {
        &self.cfg
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends the interrupts a locked operation queued, after the lock is released.
    fn deliver(&self, msis: Vec<Msi>) {
        for m in msis {
            self.irq.msi(m.address, m.data);
        }
    }

    /// Completes held invalidation waits whose hold has expired (see [`Vtd::hold_invalidation_completion`]).
    fn release_expired(&self, st: &mut State) {
        if st.hooks.hold_until.is_some() {
            st.release_held(self.mem.as_ref(), std::time::Instant::now());
        }
    }

    /// Reads `data.len()` bytes at `offset`. Never panics: unimplemented registers read 0, bytes beyond
    /// the window read 0xff. Reads have no side effects, except that an access after a completion
    /// hold expired first completes the held invalidation waits.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) {
        let mut st = self.lock();
        self.release_expired(&mut st);
        let mut cached: Option<(u64, u64)> = None;
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = match offset.checked_add(i as u64) {
                Some(off) if off < VTD_MMIO_SIZE => {
                    let q = off & !7;
                    let value = match cached {
                        Some((cq, v)) if cq == q => v,
                        _ => {
                            let v = st.read_qword(q);
                            cached = Some((q, v));
                            v
                        }
                    };
                    (value >> ((off & 7) * 8)) as u8
                }
                _ => 0xff,
            };
        }
        let msis = std::mem::take(&mut st.outbox);
        drop(st);
        self.deliver(msis);
    }

    /// Writes `data` at `offset`. Never panics: bytes beyond the window and to read-only or
    /// unimplemented registers are ignored.
    pub fn mmio_write(&self, offset: u64, data: &[u8]) {
        let msis = {
            let mut st = self.lock();
            self.release_expired(&mut st);
            // Group the bytes by naturally aligned qword.
            let mut i = 0usize;
            while i < data.len() {
                let Some(off) = offset.checked_add(i as u64) else {
                    break;
                };
                if off >= VTD_MMIO_SIZE {
                    break;
                }
                let q = off & !7;
                let (mut val, mut mask) = (0u64, 0u64);
                while i < data.len() {
                    let Some(o) = offset.checked_add(i as u64) else {
                        break;
                    };
                    if o & !7 != q {
                        break;
                    }
                    let shift = (o & 7) * 8;
                    val |= u64::from(data[i]) << shift;
                    mask |= 0xff << shift;
                    i += 1;
                }
                st.write_qword(self.mem.as_ref(), q, val, mask);
            }
            std::mem::take(&mut st.outbox)
        };
        self.deliver(msis);
    }

    /// The IOVA windows a mapping for `source_id` may use, as Linux's IOMMU_IOAS_IOVA_RANGES reports
    /// them: the aperture [0, 2^W - 1], minus the interrupt range 0xfee00000-0xfeefffff, minus the
    /// RMRRs of that device. W is the width of the domains Linux builds: min(MGAW, its AGAW), the AGAW
    /// being the widest in SAGAW — intersected with the first-stage widths (4-level, + 5-level with
    /// FL5LP) when both stages exist, so `aw=57,fl5=off` gives 48 (iommu.c `__iommu_calculate_sagaw`).
    /// This is the second-stage (IOAS) view; see [`Vtd::permitted_ranges_first_stage`] for
    /// first-stage and nested address spaces.
    pub fn permitted_ranges(&self, source_id: u16) -> PermittedRanges {
        let hw = Hw::new(&self.cfg);
        let mut sagaw = hw.sagaw;
        if hw.flts && hw.slts {
            sagaw &= 0b100 | if hw.fl5lp { 0b1000 } else { 0 };
        }
        let agaw_bits = (0..5u32)
            .rev()
            .find(|b| sagaw & (1 << b) != 0)
            .map_or(self.cfg.aw_bits, |b| 30 + 9 * b);
        let bits = agaw_bits.min(self.cfg.aw_bits);
        self.minus_holes(
            source_id,
            PermittedRanges::single(IovaWindow::aperture(bits)),
        )
    }

    /// The IOVA windows of a first-stage or nested address space with `addr_width`-bit input (48 for
    /// 4-level, 57 for 5-level tables, as iommufd's VTD_S1 `addr_width`): the canonical lower half
    /// [0, 2^(addr_width-1) - 1] that Linux gives first-stage domains (the hardware would also
    /// translate the upper canonical half), minus the interrupt range and the device's RMRRs. Empty
    /// when the unit cannot walk such tables (no ECAP.FLTS, or 57 without CAP.FL5LP).
    pub fn permitted_ranges_first_stage(&self, source_id: u16, addr_width: u32) -> PermittedRanges {
        let hw = Hw::new(&self.cfg);
        let supported = hw.flts && (addr_width == 48 || (addr_width == 57 && hw.fl5lp));
        if !supported {
            return PermittedRanges::empty();
        }
        let lower_half = IovaWindow::aperture(addr_width - 1);
        self.minus_holes(source_id, PermittedRanges::single(lower_half))
    }

    /// `windows` minus the interrupt range and the RMRRs of `source_id`.
    fn minus_holes(&self, source_id: u16, windows: PermittedRanges) -> PermittedRanges {
        let msi = IovaWindow {
            first: regs::MSI_FIRST,
            last: regs::MSI_LAST,
        };
        self.cfg
            .rmrrs
            .iter()
            .filter(|r| r.bdf == source_id)
            .filter_map(|r| IovaWindow::new(r.base, r.end))
            .fold(windows.subtract(msi), |acc, hole| acc.subtract(hole))
    }

    /// A snapshot of the unit's counters.
    pub fn stats(&self) -> VtdStats {
        let st = self.lock();
        let mut s = st.stats.clone();
        s.iotlb_entries = st.caches.iotlb.len() as u64;
        s.context_cache_entries = st.caches.context.len() as u64;
        s.pasid_cache_entries = st.caches.pasid.len() as u64;
        s.iec_entries = st.ir.cache_len() as u64;
        s.injected_faults_pending = st.hooks.injections_pending();
        s.waits_held_pending = st.hooks.held.len() as u64;
        s
    }

    /// Interrupt remapping of one interrupt request (a DWORD write to 0xFEEx_xxxx) from requester
    /// `source_id` (PCI BDF; the I/OxAPIC's is its DMAR device scope), VT-d 4.x section 5.1.4.
    ///
    /// - `Ok`: the interrupt to deliver ([`RemappedMsi::to_msi`] gives the message for KVM). With
    ///   GSTS.IRES clear, and for compatibility-format requests while GSTS.CFIS is set (and IRTA.EIME
    ///   clear), the request passes through unchanged.
    /// - `Err`: the request is blocked; `reason` is the architected code 0x20-0x26 (recorded in the fault
    ///   log unless the IRTE's FPD suppresses it, `recorded` says which; `iova` is the request's
    ///   address), or 0 (never recorded) when `address` is not an interrupt address.
    ///
    /// The unit's own interrupts (fault events, invalidation completion) are not subject to remapping:
    /// they go straight to the [`InterruptSink`], and must not be passed here.
    pub fn remap_msi(
        &self,
        source_id: u16,
        address: u64,
        data: u32,
    ) -> Result<RemappedMsi, DmaFault> {
        let (result, msis) = {
            let mut st = self.lock();
            let r = st.remap_interrupt(self.mem.as_ref(), source_id, address, data);
            (r, std::mem::take(&mut st.outbox))
        };
        self.deliver(msis);
        result
    }
}

impl DmaPort for Vtd {
    /// Remaps a request from requester `req.source_id` (the PCI BDF). Failed untranslated requests are
    /// recorded as the spec says (unless FPD); translation requests never are.
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        let (result, msis) = {
            let mut st = self.lock();
            let r = st.dma(self.mem.as_ref(), req);
            (r, std::mem::take(&mut st.outbox))
        };
        self.deliver(msis);
        result
    }
}
