//! POWER TCE IOMMU model: one PHB with one PE and at most two DMA windows, seen two ways.
//!
//! - The **sPAPR (PAPR/LoPAR) hypervisor interface**: [`Tce::hcall`] (H_PUT_TCE, H_GET_TCE,
//!   H_STUFF_TCE, H_PUT_TCE_INDIRECT; [`hcall`]) and [`Tce::rtas`] (the DDW calls
//!   ibm,query/create/remove/reset-pe-dma-window; [`rtas`]). The hypervisor keeps the windows' TCE
//!   tables in a table pool it owns ([`TceConfig::pool_base`]), multi-level with 4 KiB levels,
//!   allocated lazily, their shape kept on the host side ([`hvtable`]). Hypercalls take only
//!   these hypervisor windows: a window reprogrammed through the hardware view (any TVE_CFG
//!   write) has a guest table and its LIOBN gets H_PARAMETER ([`hcall`]).
//! - The **hardware view** (IODA2-style): a 4 KiB register window ([`regs`]) with one TVE per
//!   window (table base, levels, level table size, page size, bus offset, size), a TCE kill
//!   register and the PE's EEH state.
//!
//! Default windows (the seed): LIOBN 0x80000000, 1 GiB at 0 with 4 KiB pages, and LIOBN
//! 0x80000001, 2^45 bytes at 0x800000000000000 with 2 MiB pages (`page64=`), so
//! [`Tce::permitted_ranges`] is `[0x0..=0x3fffffff, 0x800000000000000..=0x8001fffffffffff]`
//! (one range per window, even for windows that touch: a mapping cannot cross LIOBNs).
//!
//! DMA ([`crate::DmaPort`]): the IOBA selects the window; the TCE comes from the TCE cache or a
//! bounded walk of big-endian tables (at most 5 levels); a bad DMA freezes the PE or, with
//! `eeh=report`, is only reported ([`eeh`]). `DmaFault.model` is "tce" and `.reason` one of
//! [`eeh::reason`]. [`Tce::lookup`], [`Tce::dump`], [`Tce::stats`] and
//! [`Tce::permitted_ranges`] have no side effects.

mod cache;
pub mod config;
mod dump;
pub mod eeh;
pub mod hcall;
mod hvtable;
mod lookup;
mod mmio;
mod pool;
pub mod regs;
pub mod rtas;
mod state;
mod stats;
pub mod table;
pub mod window;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

pub use cache::CACHE_CAPACITY;
pub use config::{EehMode, TceConfig, TceConfigError};
pub use dump::{DumpMapping, TceDump, WindowDump, MAX_DUMP_READS};
pub use eeh::{reason, EehState, ErrorLog};
pub use lookup::{LookupOutcome, TceLookup};
pub use regs::TCE_MMIO_SIZE;
pub use stats::TceStats;
pub use window::WindowInfo;

use crate::mem::DmaMemory;
use crate::ranges::PermittedRanges;
use crate::request::{
    Access, DmaFault, DmaPort, DmaRequest, InterruptSink, RequestKind, Translation,
};
use eeh::ErrorLog as Log;
use state::State;

/// One TCE unit (PHB + PE).
pub struct Tce {
    cfg: TceConfig,
    mem: Arc<dyn DmaMemory>,
    /// Kept for a future error interrupt; the model raises none today (EEH is polled).
    #[allow(dead_code)]
    irq: Arc<dyn InterruptSink>,
    state: Mutex<State>,
}

impl Tce {
    /// A unit with the default windows. Out-of-range configuration values are replaced by the
    /// nearest supported ones (parse with `str::parse::<TceConfig>` to refuse them instead).
    pub fn new(cfg: TceConfig, mem: Arc<dyn DmaMemory>, irq: Arc<dyn InterruptSink>) -> Self {
        if let Err(e) = cfg.validate() {
            log::warn!("tce: {e}; using the nearest supported configuration");
        }
        let cfg = cfg.normalized();
        let state = Mutex::new(State::new(&cfg, mem.as_ref()));
        Self {
            cfg,
            mem,
            irq,
            state,
        }
    }

    pub fn config(&self) -> &TceConfig {
        &self.cfg
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a 4- or 8-byte naturally aligned access at `offset` is inside the window.
    fn access_ok(offset: u64, len: usize) -> bool {
        matches!(len, 4 | 8)
            && offset.is_multiple_of(len as u64)
            && offset
                .checked_add(len as u64)
                .is_some_and(|e| e <= TCE_MMIO_SIZE)
    }

    /// Reads `data.len()` bytes at `offset`. Never panics: 8-byte accesses read a register, 4-byte
    /// ones either half; anything else reads 0. No side effects.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if !Self::access_ok(offset, data.len()) {
            return;
        }
        let v = mmio::read64(&self.lock(), &self.cfg, offset & !7);
        let bytes = v.to_le_bytes();
        let pos = (offset & 4) as usize;
        let len = data.len();
        data.copy_from_slice(&bytes[pos..pos + len]);
    }

    /// Writes `data` at `offset`. Never panics: 8-byte accesses write a register; a 4-byte access
    /// replaces one half of a read/write register (of a write-only one: the other half is 0),
    /// except that the reserved high half of TVE_CFG ignores 4-byte writes
    /// ([`regs::ignores_half_write`]); anything else is ignored.
    pub fn mmio_write(&self, offset: u64, data: &[u8]) {
        if !Self::access_ok(offset, data.len()) {
            return;
        }
        let reg = offset & !7;
        let high = offset & 4 != 0;
        if data.len() == 4 && regs::ignores_half_write(regs::decode(reg, window::MAX_WINDOWS), high)
        {
            return;
        }
        let mut st = self.lock();
        let value = if data.len() == 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(data);
            u64::from_le_bytes(b)
        } else {
            let mut b = [0u8; 4];
            b.copy_from_slice(data);
            let half = u64::from(u32::from_le_bytes(b));
            let write_only = matches!(reg, regs::TCE_PE_CTRL | regs::TCE_KILL);
            let cur = if write_only {
                0
            } else {
                mmio::read64(&st, &self.cfg, reg)
            };
            if offset & 4 == 0 {
                (cur & !0xffff_ffff) | half
            } else {
                (cur & 0xffff_ffff) | half << 32
            }
        };
        mmio::write64(&mut st, &self.cfg, self.mem.as_ref(), reg, value);
    }

    /// The enabled windows, inclusive, one range per window (the same for every source: one PE).
    pub fn permitted_ranges(&self, source: u32) -> PermittedRanges {
        let _ = source;
        let st = self.lock();
        // Each window is its own range, even when two touch: a mapping cannot cross LIOBNs.
        PermittedRanges::from_separate_windows(st.windows.iter().filter_map(window::Window::range))
    }

    /// The windows (enabled or not), for firmware tables and the monitor.
    pub fn windows(&self) -> Vec<WindowInfo> {
        let st = self.lock();
        st.windows
            .iter()
            .enumerate()
            .map(|(i, w)| w.info(i))
            .collect()
    }

    /// Explains a DMA of `source` at `iova` without side effects.
    pub fn lookup(&self, source: u32, iova: u64, access: Access) -> TceLookup {
        lookup::lookup(&self.lock(), self.mem.as_ref(), source, iova, access)
    }

    /// The windows and up to `limit` valid TCEs (over all windows).
    pub fn dump(&self, limit: usize) -> TceDump {
        dump::dump(&self.lock(), self.mem.as_ref(), limit)
    }

    pub fn stats(&self) -> TceStats {
        self.lock().snapshot_stats()
    }

    /// Whether the PE is frozen (the VMM then returns all ones for the PE's BAR reads and drops
    /// its BAR writes).
    pub fn is_frozen(&self) -> bool {
        self.lock().eeh.frozen
    }

    /// The PE's EEH state (freeze, first error, count).
    pub fn eeh_state(&self) -> EehState {
        self.lock().eeh
    }

    /// PE reset (as TCE_PE_CTRL bit 0): unfreezes, clears the error log and the TCE cache. The
    /// windows and their tables stay.
    pub fn reset_pe(&self) {
        mmio::reset_pe(&mut self.lock());
    }

    /// One hypercall: `opcode` (H_PUT_TCE = 0x20, ...) with the guest's argument registers;
    /// returns `[status, ret...]` (see [`hcall`] for the codes).
    pub fn hcall(&self, opcode: u64, args: &[u64]) -> Vec<u64> {
        hcall::dispatch(&mut self.lock(), self.mem.as_ref(), opcode, args)
    }

    /// One RTAS call by name ("ibm,create-pe-dma-window", ...); returns `[status, outputs...]`
    /// (see [`rtas`] for the codes).
    pub fn rtas(&self, name: &str, args: &[u32]) -> Vec<u32> {
        rtas::dispatch(&mut self.lock(), &self.cfg, self.mem.as_ref(), name, args)
    }

    fn fault(iova: u64, code: u8, recorded: bool) -> DmaFault {
        DmaFault {
            model: "tce".into(),
            reason: u32::from(code),
            description: eeh::reason::describe(code).into(),
            iova,
            recorded,
        }
    }
}

impl DmaPort for Tce {
    /// Translates a DMA of `req.source_id` (any BDF: one PE). A failed untranslated request is an
    /// error of the PE: logged, counted, and in `eeh=freeze` mode it freezes the PE; while frozen
    /// every request fails with FROZEN. Translation requests record nothing.
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        let mut st = self.lock();
        st.stats.translations += 1;
        if st.eeh.frozen {
            st.stats.fault(eeh::reason::name(eeh::reason::FROZEN));
            return Err(Self::fault(req.iova, eeh::reason::FROZEN, false));
        }
        let r = lookup::resolve(&st, self.mem.as_ref(), req.iova, req.access, false);
        if let (Some(w), Some(i)) = (r.window, r.index) {
            if r.cached.is_some() {
                st.stats.cache_hits += 1;
            } else {
                st.stats.cache_misses += 1;
            }
            if r.walked {
                st.stats.walks += 1;
            }
            if let (Ok(_), None, Some(table::WalkEnd::Leaf { tce })) = (&r.outcome, r.cached, r.end)
            {
                st.cache.insert(w, i, tce);
            }
        }
        match r.outcome {
            Ok(t) => Ok(t),
            Err(code) => {
                st.stats.fault(eeh::reason::name(code));
                let recorded = req.kind == RequestKind::Untranslated;
                if recorded {
                    let log = Log {
                        iova: req.iova,
                        reason: code,
                        source_id: req.source_id,
                        write: req.access == Access::Write,
                        window: r.window,
                    };
                    if st.eeh.record(self.cfg.eeh, log) {
                        st.stats.freezes += 1;
                        log::warn!(
                            "tce: PE frozen: {} at IOBA {:#x}",
                            eeh::reason::name(code),
                            req.iova
                        );
                    }
                }
                Err(Self::fault(req.iova, code, recorded))
            }
        }
    }
}
