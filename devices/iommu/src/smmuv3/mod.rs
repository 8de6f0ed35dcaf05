//! Arm SMMUv3 model (Arm IHI0070; the Linux 6.12 arm-smmu-v3 driver is the reference user).
//!
//! One SMMU: the two 64 KiB register pages (`mmio_read`/`mmio_write`), the stream table (linear and
//! 2-level), STEs and CDs (linear and 2-level CD tables, SubstreamIDs, S1DSS), stage 1, stage 2 and
//! nested translation through the AArch64 walker in `pagetable` ([`crate::DmaPort`]), the command
//! queue (configuration and TLB invalidation, CMD_SYNC with MSI), the event queue with overflow and
//! MSI, global errors, GBPA, and a TLB plus configuration cache that `caching=off` removes without
//! changing any result.
//!
//! For the monitor, side-effect free: [`Smmuv3::lookup`], [`Smmuv3::dump`],
//! [`Smmuv3::permitted_ranges`], [`Smmuv3::stats`]; the test hook [`Smmuv3::inject_event`] does change
//! behaviour.
//!
//! Features advertised (IDR0): S1P/S2P per configuration, TTF = AArch64, COHACC, ASID16, VMID16 (with
//! stage 2), MSI, SEV, CD2L (with substreams), TTENDIAN = little-endian, HTTU per configuration,
//! STALL_MODEL = 0b01 (no stalls: CD.S / STE.S2S set are ILLEGAL, as in QEMU), TERM_MODEL = 1 (aborts),
//! ST_LEVEL per configuration. Not advertised: ATS (EATS ignored, CMD_ATC_INV accepted as a no-op),
//! PRI (no PRI queue: its registers read as zero), HYP (no EL2 stream world, TLBI_EL2_* are
//! CERROR_ILL), Secure state. AIDR reports SMMUv3.2 (range invalidation, IDR3.RIL).

mod cache;
mod cd;
mod cmdq;
pub mod config;
mod dump;
mod events;
mod evtq;
mod inject;
mod lookup;
pub mod pagetable;
mod ranges;
pub mod regs;
mod state;
mod stats;
mod ste;
mod trace;
mod translate;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

pub use config::{Smmuv3Config, Smmuv3ConfigError};
pub use dump::{DumpMapping, Smmuv3Dump, MAX_DUMP_WALKS};
pub use events::{event_name, Event, EventClass};
pub use lookup::{LookupResult, Smmuv3Lookup};
pub use regs::SMMUV3_MMIO_SIZE;
pub use stats::Smmuv3Stats;
pub use ste::SteConfig;
pub use trace::{Step, WalkPurpose};
pub use translate::Path;

use crate::mem::DmaMemory;
use crate::request::{DmaFault, DmaPort, DmaRequest, InterruptSink, RequestKind, Translation};
use pagetable::Mode;
use regs::Idr;
use state::State;
use trace::Ctx;
use translate::Failure;

/// The fixed facts of one SMMU: its configuration and ID register values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hw {
    pub cfg: Smmuv3Config,
    pub idr: Idr,
}

impl Hw {
    pub fn new(cfg: &Smmuv3Config) -> Self {
        Self {
            cfg: cfg.clone(),
            idr: Idr::new(cfg),
        }
    }
}

/// One SMMUv3.
pub struct Smmuv3 {
    hw: Hw,
    mem: Arc<dyn DmaMemory>,
    irq: Arc<dyn InterruptSink>,
    state: Mutex<State>,
}

impl Smmuv3 {
    /// An SMMU in its reset state. Out-of-range configuration values are replaced by the nearest
    /// supported ones (parse with `str::parse::<Smmuv3Config>` to refuse them instead).
    pub fn new(cfg: Smmuv3Config, mem: Arc<dyn DmaMemory>, irq: Arc<dyn InterruptSink>) -> Self {
        if let Err(e) = cfg.validate() {
            log::warn!("smmuv3: {e}; using the nearest supported configuration");
        }
        let hw = Hw::new(&cfg.normalized());
        let state = Mutex::new(State::new(&hw));
        Self {
            hw,
            mem,
            irq,
            state,
        }
    }

    pub fn config(&self) -> &Smmuv3Config {
        &self.hw.cfg
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&self, msis: Vec<(u64, u32)>) {
        for (address, data) in msis {
            self.irq.msi(address, data);
        }
    }

    /// The page 0 register a naturally aligned 32-bit access at `offset` reaches, if any: page 1
    /// only holds EVTQ_PROD/CONS (0x100A8/0x100AC).
    fn reg_offset(offset: u64) -> Option<u64> {
        match offset {
            o if o < regs::PAGE1 => Some(o),
            o if o == regs::PAGE1 + regs::EVTQ_PROD || o == regs::PAGE1 + regs::EVTQ_CONS => {
                Some(o - regs::PAGE1)
            }
            _ => None,
        }
    }

    /// The 32-bit halves of an access: `(offset, byte position)` pairs, or none for an access that is
    /// not 4 or 8 bytes, not naturally aligned, or outside the window.
    fn halves(offset: u64, len: usize) -> Vec<(u64, usize)> {
        let ok = matches!(len, 4 | 8)
            && offset.is_multiple_of(len as u64)
            && offset
                .checked_add(len as u64)
                .is_some_and(|e| e <= SMMUV3_MMIO_SIZE);
        if !ok {
            return Vec::new();
        }
        (0..len / 4)
            .map(|i| (offset + 4 * i as u64, 4 * i))
            .collect()
    }

    /// Reads `data.len()` bytes at `offset`. Never panics: 4- and 8-byte naturally aligned accesses
    /// read registers (an 8-byte one as two 32-bit halves, low first); anything else reads 0. Reads
    /// have no side effects.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let halves = Self::halves(offset, data.len());
        if halves.is_empty() {
            return;
        }
        let st = self.lock();
        for (off, pos) in halves {
            let v = Self::reg_offset(off).map_or(0, |r| st.read32(&self.hw, r));
            data[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Writes `data` at `offset`. Never panics: 4- and 8-byte naturally aligned accesses write
    /// registers (an 8-byte one as two 32-bit halves, low first); anything else is ignored.
    pub fn mmio_write(&self, offset: u64, data: &[u8]) {
        let halves = Self::halves(offset, data.len());
        if halves.is_empty() {
            return;
        }
        let msis = {
            let mut st = self.lock();
            for (off, pos) in halves {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                if let Some(r) = Self::reg_offset(off) {
                    st.write32(&self.hw, self.mem.as_ref(), r, u32::from_le_bytes(b));
                }
            }
            std::mem::take(&mut st.outbox)
        };
        self.deliver(msis);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Smmuv3Stats {
        self.lock().snapshot_stats()
    }

    fn fault(iova: u64, f: &Failure, recorded: bool) -> DmaFault {
        DmaFault {
            model: "smmuv3".into(),
            reason: u32::from(f.id()),
            description: f.describe(),
            iova,
            recorded,
        }
    }
}

impl DmaPort for Smmuv3 {
    /// Translates a transaction from StreamID `req.source_id` (SubstreamID `req.pasid`). A failed
    /// untranslated request raises its event (recorded in the event queue as the configuration says);
    /// translation requests never record. `DmaFault.reason` is the event number, or 0 for a
    /// transaction terminated without an event (STE abort, GBPA abort).
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        let mem = self.mem.as_ref();
        let (result, msis) = {
            let mut guard = self.lock();
            let st = &mut *guard;
            st.stats.translations += 1;
            let outcome = match st.take_injection(req.source_id) {
                Some(id) => {
                    st.stats.events_injected += 1;
                    let ctx = Ctx::new(mem, &self.hw, Mode::Translate, req);
                    Err(Failure::event(ctx.event(id), true))
                }
                None => {
                    let setup = st.setup(&self.hw);
                    let mut ctx = Ctx::new(mem, &self.hw, Mode::Translate, req);
                    let caches = self.hw.cfg.caching.then_some(&mut st.caches);
                    translate::translate(&mut ctx, &setup, caches, Some(&mut st.stats))
                }
            };
            let result = match outcome {
                Ok(done) => Ok(done.translation),
                Err(f) => {
                    let mut recorded = false;
                    match &f {
                        Failure::Event { event, record } => {
                            st.stats.event(event.name);
                            if !*record {
                                st.stats.events_suppressed += 1;
                            } else if req.kind == RequestKind::Untranslated {
                                recorded = st.record_event(mem, event);
                            }
                        }
                        Failure::Abort { .. } => st.stats.aborts += 1,
                    }
                    Err(Self::fault(req.iova, &f, recorded))
                }
            };
            (result, std::mem::take(&mut st.outbox))
        };
        self.deliver(msis);
        result
    }
}
