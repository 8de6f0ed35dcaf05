//! Primary fault logging (VT-d 4.x section 7.2.1) and the fault event interrupt (7.3, 11.4.9.1-11.4.9.5):
//! NFR fault recording registers used round-robin, FSTS (PFO, PPF, FRI, IQE, ICE, ITE), FECTL (IM, IP) and
//! the FEDATA/FEADDR/FEUADDR message.

use std::time::Instant;

use super::config::Bdf;
use super::log_limit::Verdict;
use super::reason::FaultReason;
use super::regs;
use super::state::State;
use crate::request::{Access, DmaFault, DmaRequest};

/// An interrupt message the unit wants to send (delivered after the unit's lock is released).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Msi {
    pub address: u64,
    pub data: u32,
}

/// What a fault record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FaultInfo {
    pub sid: u16,
    pub pasid: Option<u32>,
    pub privileged: bool,
    pub write: bool,
    pub iova: u64,
    pub reason: u8,
}

pub(crate) struct FaultUnit {
    /// (low qword, high qword) of each fault recording register.
    records: Vec<[u64; 2]>,
    /// Where the next fault goes.
    next: usize,
    /// PFO, IQE, ICE, ITE (PPF is derived from the F bits).
    status: u32,
    /// FSTS.FRI: the record that made PPF go 0 -> 1.
    fri: u32,
    pub fectl: u32,
    pub fedata: u32,
    pub feaddr: u32,
    pub feuaddr: u32,
}

impl FaultUnit {
    pub fn new(nfr: u16) -> Self {
        Self {
            records: vec![[0; 2]; usize::from(nfr.max(1))],
            next: 0,
            status: 0,
            fri: 0,
            // FECTL resets with IM set (11.4.9.2).
            fectl: regs::CTL_IM,
            fedata: 0,
            feaddr: 0,
            feuaddr: 0,
        }
    }

    fn ppf(&self) -> bool {
        self.records.iter().any(|r| r[1] & regs::FRCD_F != 0)
    }

    /// FSTS; FRI is shown only while PPF is set (it is undefined otherwise).
    pub fn fsts(&self) -> u32 {
        if self.ppf() {
            self.status | regs::FSTS_PPF | self.fri << regs::FSTS_FRI_SHIFT
        } else {
            self.status
        }
    }

    fn pending(&self) -> bool {
        self.fsts() & regs::FSTS_EVENT_BITS != 0
    }

    fn msi(&self) -> Msi {
        Msi {
            address: u64::from(self.feuaddr) << 32 | u64::from(self.feaddr),
            data: self.fedata,
        }
    }

    /// A new fault-event condition: an interrupt only if no earlier condition is still pending
    /// (11.4.9.2: "...if there are no previously reported ... conditions pending").
    fn event(&mut self, was_pending: bool, out: &mut Vec<Msi>) {
        if was_pending {
            return;
        }
        self.fectl |= regs::CTL_IP;
        if self.fectl & regs::CTL_IM == 0 {
            out.push(self.msi());
            self.fectl &= !regs::CTL_IP;
        }
    }

    /// IP clears once software has serviced every pending condition.
    fn settle(&mut self) {
        if !self.pending() {
            self.fectl &= !regs::CTL_IP;
        }
    }

    /// Records a fault. Returns whether it was written to a recording register: not when PFO is set, and
    /// not when the next register is still in use (which sets PFO).
    pub fn record(&mut self, f: &FaultInfo, out: &mut Vec<Msi>) -> bool {
        if self.status & regs::FSTS_PFO != 0 {
            return false;
        }
        let was_pending = self.pending();
        let i = self.next % self.records.len();
        if self.records[i][1] & regs::FRCD_F != 0 {
            self.status |= regs::FSTS_PFO;
            self.event(was_pending, out);
            return false;
        }
        let had_ppf = self.ppf();
        let mut hi = regs::FRCD_F | u64::from(f.reason) << regs::FRCD_FR_SHIFT | u64::from(f.sid);
        if !f.write {
            hi |= regs::FRCD_T1;
        }
        if let Some(p) = f.pasid {
            hi |= regs::FRCD_PP | u64::from(p & 0xf_ffff) << regs::FRCD_PV_SHIFT;
            if f.privileged {
                hi |= regs::FRCD_PRIV;
            }
        }
        self.records[i] = [f.iova & !0xfff, hi];
        self.next = (i + 1) % self.records.len();
        if !had_ppf {
            self.fri = i as u32;
        }
        self.event(was_pending, out);
        true
    }

    /// Sets IQE, ICE or ITE.
    pub fn raise(&mut self, bit: u32, out: &mut Vec<Msi>) {
        let was_pending = self.pending();
        let new = self.status & bit == 0;
        self.status |= bit;
        if new {
            self.event(was_pending, out);
        }
    }

    pub fn has(&self, bit: u32) -> bool {
        self.status & bit != 0
    }

    /// FSTS write: PFO, IQE, ICE, ITE are write-1-to-clear.
    pub fn write_fsts(&mut self, v: u32) {
        self.status &= !(v & regs::FSTS_W1C);
        self.settle();
    }

    /// FECTL write: only IM is writable; unmasking with IP set sends the pending interrupt.
    pub fn write_fectl(&mut self, v: u32, out: &mut Vec<Msi>) {
        self.fectl = (self.fectl & regs::CTL_IP) | (v & regs::CTL_IM);
        if self.fectl & regs::CTL_IM == 0 && self.fectl & regs::CTL_IP != 0 {
            out.push(self.msi());
            self.fectl &= !regs::CTL_IP;
        }
    }

    /// Qword `half` (0 low, 1 high) of record `index`.
    pub fn read_record(&self, index: usize, half: usize) -> u64 {
        self.records.get(index).map_or(0, |r| r[half.min(1)])
    }

    /// A write to the high qword of a record: F is write-1-to-clear, everything else read-only.
    pub fn write_record_hi(&mut self, index: usize, v: u64) {
        if v & regs::FRCD_F == 0 {
            return;
        }
        if let Some(r) = self.records.get_mut(index) {
            r[1] &= !regs::FRCD_F;
        }
        self.settle();
    }

    pub fn nfr(&self) -> usize {
        self.records.len()
    }
}

impl State {
    /// Writes a fault's host log line (built only if it is written), rate-limited: see
    /// [`super::log_limit`].
    pub(crate) fn log_fault(&mut self, line: impl FnOnce() -> String) {
        let verdict = self.fault_log.check(Instant::now());
        if verdict == Verdict::Suppress {
            self.stats.fault_log_suppressed += 1;
            return;
        }
        self.stats.fault_log_lines += 1;
        log::warn!("{}{}", line(), verdict.suffix());
    }

    /// Turns a translation failure into the fault the device sees, recording it unless it is a
    /// translation request or suppressed by FPD.
    pub(crate) fn report(
        &mut self,
        req: &DmaRequest,
        sid: u16,
        reason: FaultReason,
        fpd: bool,
        translation_request: bool,
        injected: bool,
    ) -> DmaFault {
        let code = reason.code();
        self.stats.fault(code);
        let recorded = if translation_request {
            false
        } else if fpd && reason.qualified() {
            self.stats.faults_suppressed += 1;
            false
        } else {
            let info = FaultInfo {
                sid,
                pasid: req.pasid,
                privileged: req.privileged,
                write: req.access == Access::Write,
                iova: req.iova,
                reason: code,
            };
            let ok = self.fault.record(&info, &mut self.outbox);
            if ok {
                self.stats.faults_recorded += 1;
                self.log_fault(|| {
                    let pasid = req.pasid.map_or("-".to_string(), |p| format!("{p:#x}"));
                    let access = match req.access {
                        Access::Read => "read",
                        Access::Write => "write",
                    };
                    format!(
                        "vtd: DMA fault reason {code:#04x} ({}) source {} pasid {pasid} iova {:#x} \
                         ({access}){}",
                        reason.description(),
                        Bdf(sid),
                        req.iova,
                        if injected { " [injected]" } else { "" }
                    )
                });
            } else {
                self.stats.faults_dropped += 1;
            }
            ok
        };
        let description = if injected {
            format!("{} (injected by the monitor)", reason.description())
        } else {
            reason.description().into()
        };
        DmaFault {
            model: "vtd".into(),
            reason: u32::from(code),
            description,
            iova: req.iova,
            recorded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(reason: u8) -> FaultInfo {
        FaultInfo {
            sid: 0x18,
            pasid: None,
            privileged: false,
            write: true,
            iova: 0x1234_5678,
            reason,
        }
    }

    fn unmasked(nfr: u16) -> FaultUnit {
        let mut u = FaultUnit::new(nfr);
        u.feaddr = 0xfee0_0000;
        u.fedata = 0x41;
        let mut out = Vec::new();
        u.write_fectl(0, &mut out);
        assert!(out.is_empty());
        u
    }

    #[test]
    fn record_layout_and_single_interrupt() {
        let mut u = unmasked(4);
        let mut out = Vec::new();
        assert!(u.record(&info(5), &mut out));
        assert_eq!(
            out,
            vec![Msi {
                address: 0xfee0_0000,
                data: 0x41
            }]
        );
        assert_eq!(u.read_record(0, 0), 0x1234_5000);
        assert_eq!(u.read_record(0, 1), regs::FRCD_F | 5 << 32 | 0x18);
        assert_eq!(u.fsts(), regs::FSTS_PPF);
        // A second fault while PPF is pending: recorded, no new interrupt.
        let mut read = info(6);
        read.write = false;
        read.pasid = Some(0x2a);
        read.privileged = true;
        assert!(u.record(&read, &mut out));
        assert_eq!(out.len(), 1);
        let hi = u.read_record(1, 1);
        assert_eq!(hi >> 32 & 0xff, 6);
        assert_ne!(hi & regs::FRCD_T1, 0, "T1=1 for reads");
        assert_eq!(hi >> 40 & 0xf_ffff, 0x2a);
        assert_ne!(hi & (regs::FRCD_PP | regs::FRCD_PRIV), 0);
    }

    #[test]
    fn overflow_sets_pfo_and_drops() {
        let mut u = unmasked(2);
        let mut out = Vec::new();
        assert!(u.record(&info(1), &mut out));
        assert!(u.record(&info(2), &mut out));
        assert!(!u.record(&info(3), &mut out), "both registers busy");
        assert_eq!(u.fsts() & regs::FSTS_PFO, regs::FSTS_PFO);
        // Clearing F does not resume recording while PFO is set.
        u.write_record_hi(0, regs::FRCD_F);
        assert!(!u.record(&info(4), &mut out));
        u.write_fsts(regs::FSTS_PFO);
        assert_eq!(u.fsts() & regs::FSTS_PFO, 0);
        assert!(u.record(&info(5), &mut out), "index 0 is free again");
        assert_eq!(u.read_record(0, 1) >> 32 & 0xff, 5);
        assert_eq!(
            out.len(),
            1,
            "no new interrupt while conditions stayed pending"
        );
        // Clear all: PPF goes, a new fault interrupts again and FRI names its register.
        u.write_record_hi(0, regs::FRCD_F);
        u.write_record_hi(1, regs::FRCD_F);
        assert_eq!(u.fsts() & regs::FSTS_EVENT_BITS, 0);
        assert!(u.record(&info(6), &mut out));
        assert_eq!(out.len(), 2);
        assert_eq!(u.fsts() >> 8 & 0xff, 1);
    }

    #[test]
    fn masked_interrupt_is_pending_until_unmasked() {
        let mut u = FaultUnit::new(4);
        let mut out = Vec::new();
        assert!(u.record(&info(5), &mut out));
        assert!(out.is_empty(), "IM set at reset");
        assert_eq!(u.fectl, regs::CTL_IM | regs::CTL_IP);
        u.write_fectl(0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(u.fectl, 0);
        // Masked again, then serviced before unmasking: IP clears, nothing is sent.
        u.write_fectl(regs::CTL_IM, &mut out);
        u.write_record_hi(0, regs::FRCD_F);
        assert!(u.record(&info(5), &mut out));
        assert_eq!(u.fectl & regs::CTL_IP, regs::CTL_IP);
        u.write_record_hi(1, regs::FRCD_F);
        assert_eq!(u.fectl & regs::CTL_IP, 0);
        u.write_fectl(0, &mut out);
        assert_eq!(out.len(), 1);
        // IQE is a fault event too.
        u.raise(regs::FSTS_IQE, &mut out);
        assert_eq!(out.len(), 2);
        assert!(u.has(regs::FSTS_IQE));
        u.write_fsts(regs::FSTS_IQE);
        assert!(!u.has(regs::FSTS_IQE));
    }
}
