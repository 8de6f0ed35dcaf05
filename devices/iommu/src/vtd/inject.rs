//! Test hooks for the monitor: injected DMA faults and held invalidation-wait completions.
//!
//! - [`Vtd::inject_fault`]: the next `count` untranslated DMA requests from a source fail with a given
//!   DMA-remapping reason, recorded and reported exactly like a real fault of that reason (fault
//!   record, FSTS, fault event MSI, log line), whatever the tables say. The returned
//!   [`crate::DmaFault`] says it was injected. Translation requests (ATS-style probes), interrupt
//!   requests and [`Vtd::lookup`] are not affected and do not consume it.
//! - [`Vtd::hold_invalidation_completion`]: invalidation-wait descriptors processed while a hold is
//!   active still run (the queue advances, IQH moves past them), but their status write and completion
//!   interrupt wait until the hold expires. The model has no thread of its own: held waits complete,
//!   in order, at the first register access (`mmio_read` / `mmio_write`) or [`Vtd::poll`] after the
//!   deadline.
//!
//! How Linux 6.12 reacts to a held wait (drivers/iommu/intel/dmar.c, `qi_submit_sync`): it appends a
//! wait descriptor with a status write to every submission and spins on the status word with
//! interrupts disabled and the queue's raw spinlock held, reading FSTS on every iteration
//! (`qi_check_fault`: IQE, ITE and ICE end or restart the wait). There is **no timeout**: the CPU
//! spins until the status write lands — here, at its next FSTS read after the deadline, so holds end
//! on time. A long hold stalls that CPU, and every other CPU that needs the queue spins on the lock:
//! expect soft-lockup / RCU-stall warnings after tens of seconds. (The register-based interface's
//! `IOMMU_WAIT_OP` does time out, after DMAR_OPERATION_TIMEOUT = 10 s of TSC cycles, with a panic, but
//! the hold does not apply to it.) Keep holds to milliseconds.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::reason::FaultReason;
use super::state::State;
use super::Vtd;
use crate::mem::DmaMemory;

/// Most wait descriptors held at once; beyond that they complete at once (a guest can submit waits
/// much faster than a hold expires).
pub(crate) const MAX_HELD_WAITS: usize = 4096;
/// The longest hold: a longer request is shortened to this (no guest survives an hour-long one anyway).
pub const MAX_HOLD: Duration = Duration::from_secs(3600);

/// An armed fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Injection {
    pub reason: FaultReason,
    pub remaining: u32,
}

/// A wait descriptor whose completion is held: its status write (address, data) and whether it asks
/// for the completion interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeldWait {
    pub status: Option<(u64, u32)>,
    pub interrupt: bool,
}

/// Fault injections and the completion hold.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    /// Armed injections by source id.
    pub injections: BTreeMap<u16, Injection>,
    /// The hold's deadline, while one is set.
    pub hold_until: Option<Instant>,
    pub held: VecDeque<HeldWait>,
}

impl Hooks {
    /// Faults still to inject, over all sources.
    pub fn injections_pending(&self) -> u64 {
        self.injections
            .values()
            .map(|i| u64::from(i.remaining))
            .sum()
    }
}

impl State {
    /// Consumes one injected fault for `sid`, if one is armed.
    pub(crate) fn take_injection(&mut self, sid: u16) -> Option<FaultReason> {
        let inj = self.hooks.injections.get_mut(&sid)?;
        let reason = inj.reason;
        inj.remaining = inj.remaining.saturating_sub(1);
        if inj.remaining == 0 {
            self.hooks.injections.remove(&sid);
        }
        Some(reason)
    }

    /// Holds a wait descriptor's completion if a hold is active at `now` (and there is room).
    pub(crate) fn hold_wait(&mut self, w: HeldWait, now: Instant) -> bool {
        let active = self.hooks.hold_until.is_some_and(|t| now < t);
        if !active || self.hooks.held.len() >= MAX_HELD_WAITS {
            return false;
        }
        self.hooks.held.push_back(w);
        self.stats.waits_held += 1;
        true
    }

    /// Once the hold has expired at `now`: completes every held wait in order and ends the hold.
    pub(crate) fn release_held(&mut self, mem: &dyn DmaMemory, now: Instant) {
        match self.hooks.hold_until {
            Some(t) if now >= t => {}
            _ => return,
        }
        self.hooks.hold_until = None;
        while let Some(w) = self.hooks.held.pop_front() {
            self.complete_wait(mem, w.status, w.interrupt);
        }
    }
}

impl Vtd {
    /// Makes the next `count` untranslated DMA requests from `source_id` fail with fault `reason` (an
    /// architected DMA-remapping code this model knows: [`FaultReason::from_code`]; not the
    /// interrupt-remapping codes 20h-26h). Each is recorded and signalled like a real fault of that
    /// reason — regardless of the tables, of FPD bits and of GSTS.TES (a fault record is always
    /// attempted; a full log sets PFO as usual) — and the returned fault's description says
    /// "injected". Replaces an injection already armed for the source; `count` 0 disarms it.
    /// Translation requests, interrupt requests and [`Vtd::lookup`] neither see nor consume it.
    pub fn inject_fault(&self, source_id: u16, reason: u8, count: u32) -> Result<(), String> {
        let r = FaultReason::from_code(reason).ok_or_else(|| {
            let known: Vec<String> = FaultReason::ALL
                .iter()
                .filter(|r| !r.is_interrupt())
                .map(|r| format!("{:#04x}", r.code()))
                .collect();
            format!(
                "unknown VT-d fault reason {reason:#04x} (known DMA-remapping reasons: {})",
                known.join(" ")
            )
        })?;
        if r.is_interrupt() {
            return Err(format!(
                "fault reason {reason:#04x} is an interrupt-remapping reason; DMA faults use 0x01-0x0e \
                 (legacy) and 0x30-0x87 (scalable mode)"
            ));
        }
        let mut st = self.lock();
        if count == 0 {
            st.hooks.injections.remove(&source_id);
        } else {
            st.hooks.injections.insert(
                source_id,
                Injection {
                    reason: r,
                    remaining: count,
                },
            );
        }
        Ok(())
    }

    /// Holds the completion (status write, interrupt) of invalidation-wait descriptors processed from
    /// now until `duration` has passed (at most [`MAX_HOLD`]; a new call replaces the deadline, and a
    /// zero duration releases held waits at once). Held waits complete at the first register access
    /// after the deadline, or at [`Vtd::poll`]. See the module notes for what a long hold does to
    /// Linux.
    pub fn hold_invalidation_completion(&self, duration: Duration) {
        let now = Instant::now();
        let d = duration.min(MAX_HOLD);
        {
            let mut st = self.lock();
            st.hooks.hold_until = Some(now.checked_add(d).unwrap_or(now));
        }
        self.poll();
    }

    /// Completes held invalidation waits whose hold has expired (what any register access also does).
    /// A VMM may call it periodically; it is never needed for correctness with a polling driver.
    pub fn poll(&self) {
        let msis = {
            let mut st = self.lock();
            st.release_held(self.mem.as_ref(), Instant::now());
            std::mem::take(&mut st.outbox)
        };
        self.deliver(msis);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::TestMemory;
    use crate::vtd::config::{Hw, VtdConfig};

    #[test]
    fn held_waits_complete_in_order_after_the_deadline() {
        let mem = TestMemory::new(0x10000);
        let mut st = State::new(Hw::new(&VtdConfig::default()));
        let t0 = Instant::now();
        let w = |addr: u64, data: u32| HeldWait {
            status: Some((addr, data)),
            interrupt: false,
        };
        // No hold: nothing is held.
        assert!(!st.hold_wait(w(0x100, 1), t0));
        st.hooks.hold_until = Some(t0 + Duration::from_millis(50));
        // Two waits on the same status word: the later data must win.
        assert!(st.hold_wait(w(0x100, 1), t0));
        assert!(st.hold_wait(w(0x100, 2), t0 + Duration::from_millis(10)));
        assert!(st.hold_wait(w(0x200, 3), t0 + Duration::from_millis(49)));
        assert!(
            !st.hold_wait(w(0x300, 4), t0 + Duration::from_millis(50)),
            "expired"
        );
        assert_eq!(st.stats.waits_held, 3);
        st.release_held(&mem, t0 + Duration::from_millis(49));
        assert_eq!(mem.read_u64(0x100).unwrap(), 0, "still held");
        assert_eq!(st.hooks.held.len(), 3);
        st.release_held(&mem, t0 + Duration::from_millis(50));
        assert_eq!(mem.read_u64(0x100).unwrap(), 2);
        assert_eq!(mem.read_u64(0x200).unwrap(), 3);
        assert!(st.hooks.held.is_empty() && st.hooks.hold_until.is_none());
        // The queue is bounded.
        st.hooks.hold_until = Some(t0 + Duration::from_secs(1));
        for i in 0..MAX_HELD_WAITS {
            assert!(st.hold_wait(w(0x400, i as u32), t0));
        }
        assert!(!st.hold_wait(w(0x400, 0), t0));
    }

    #[test]
    fn injections_count_down_per_source() {
        let mut st = State::new(Hw::new(&VtdConfig::default()));
        st.hooks.injections.insert(
            0x18,
            Injection {
                reason: FaultReason::ReadDenied,
                remaining: 2,
            },
        );
        assert_eq!(st.hooks.injections_pending(), 2);
        assert_eq!(st.take_injection(0x20), None);
        assert_eq!(st.take_injection(0x18), Some(FaultReason::ReadDenied));
        assert_eq!(st.take_injection(0x18), Some(FaultReason::ReadDenied));
        assert_eq!(st.take_injection(0x18), None);
        assert_eq!(st.hooks.injections_pending(), 0);
    }
}
