//! Cache invalidation (VT-d 4.x section 6.5): the register interface (CCMD_REG, IOTLB_REG/IVA_REG) and the
//! queued interface (IQA/IQH/IQT, ICS, IECTL/IEDATA/IEADDR/IEUADDR, IQERCD; descriptors in 6.5.2).
//!
//! The queue is processed synchronously when IQT is written (and when QI is enabled or an IQE is cleared):
//! every descriptor from IQH up to IQT runs before the register write returns. A bad descriptor stops the
//! queue with FSTS.IQE set, IQERCD.IQEI saying why and IQH left pointing at it (6.5.2.10); clearing IQE
//! resumes from there. While the monitor holds completions (`inject.rs`), wait descriptors still run
//! but their status write and interrupt are deferred until the hold expires.

use std::time::Instant;

use super::cache::am_range;
use super::fault::Msi;
use super::inject::HeldWait;
use super::regs;
use super::state::State;
use crate::mem::DmaMemory;

/// Descriptor types (6.5.2).
const DESC_CONTEXT: u64 = 1;
const DESC_IOTLB: u64 = 2;
const DESC_DEVTLB: u64 = 3;
const DESC_IEC: u64 = 4;
const DESC_WAIT: u64 = 5;
const DESC_PIOTLB: u64 = 6;
const DESC_PASID_CACHE: u64 = 7;
const DESC_PDEVTLB: u64 = 8;

/// The largest address mask of a page-selective PASID-based IOTLB invalidation: 2^52 pages of 4 KiB, the
/// whole 64-bit space (Linux's MAX_AGAW_PFN_WIDTH). CAP.MAMV limits only the IOTLB invalidation.
const PIOTLB_MAX_AM: u32 = 52;

/// Invalidation-queue registers.
pub(crate) struct QiRegs {
    pub iqa: u64,
    /// Byte offset of the next descriptor to fetch.
    pub iqh: u64,
    pub iqt: u64,
    pub ics: u32,
    pub iectl: u32,
    pub iedata: u32,
    pub ieaddr: u32,
    pub ieuaddr: u32,
    pub iqercd: u64,
}

impl QiRegs {
    pub fn new() -> Self {
        Self {
            iqa: 0,
            iqh: 0,
            iqt: 0,
            ics: 0,
            // IECTL resets with IM set (11.4.9.7).
            iectl: regs::CTL_IM,
            iedata: 0,
            ieaddr: 0,
            ieuaddr: 0,
            iqercd: 0,
        }
    }

    fn msi(&self) -> Msi {
        Msi {
            address: u64::from(self.ieuaddr) << 32 | u64::from(self.ieaddr),
            data: self.iedata,
        }
    }
}

/// An invalid descriptor: the IQEI value to report.
type Iqei = u64;

impl State {
    /// Context-cache invalidation; `gran` 1 global, 2 domain, 3 device. False for granularity 0.
    pub(crate) fn invalidate_context(&mut self, gran: u64, did: u16, sid: u16, fm: u8) -> bool {
        let cc = &mut self.caches.context;
        match gran {
            1 => cc.invalidate_all(),
            2 => cc.invalidate_domain(did),
            3 => cc.invalidate_device(sid, fm),
            _ => return false,
        }
        let kind = ["", "context_global", "context_domain", "context_device"][gran as usize];
        self.stats.invalidation(kind);
        true
    }

    /// IOTLB invalidation; `gran` 1 global, 2 domain, 3 page (falls back to domain when AM > MAMV).
    /// Returns the granularity performed (0: invalid request).
    pub(crate) fn invalidate_iotlb(&mut self, gran: u64, did: u16, addr: u64, am: u32) -> u64 {
        let t = &mut self.caches.iotlb;
        let done = match gran {
            1 => {
                t.invalidate_all();
                1
            }
            3 if am <= self.hw.mamv => {
                let (first, last) = am_range(addr, am);
                t.invalidate_range(did, first, last);
                3
            }
            2 | 3 => {
                t.invalidate_domain(did);
                2
            }
            _ => 0,
        };
        if done != 0 {
            let kind = ["", "iotlb_global", "iotlb_domain", "iotlb_page"][done as usize];
            self.stats.invalidation(kind);
        }
        done
    }

    /// CCMD_REG with ICC set (11.4.7): run it, report CAIG, clear ICC.
    pub(crate) fn run_ccmd(&mut self) {
        let v = self.ccmd;
        let cirg = (v >> regs::CCMD_CIRG_SHIFT) & 3;
        let did = (v & 0xffff) as u16;
        let sid = ((v >> regs::CCMD_SID_SHIFT) & 0xffff) as u16;
        let fm = ((v >> regs::CCMD_FM_SHIFT) & 3) as u8;
        let caig = if self.invalidate_context(cirg, did, sid, fm) {
            cirg
        } else {
            0
        };
        self.ccmd =
            (v & !(regs::CCMD_ICC | 3 << regs::CCMD_CAIG_SHIFT)) | caig << regs::CCMD_CAIG_SHIFT;
    }

    /// IOTLB_REG with IVT set (11.4.8.1): run it with IVA, report IAIG, clear IVT.
    pub(crate) fn run_iotlb_reg(&mut self) {
        let v = self.iotlb_reg;
        let iirg = (v >> regs::IOTLB_IIRG_SHIFT) & 3;
        let did = ((v >> regs::IOTLB_DID_SHIFT) & 0xffff) as u16;
        let am = (self.iva & regs::IVA_AM_MASK) as u32;
        let iaig = self.invalidate_iotlb(iirg, did, self.iva & !0xfff, am);
        self.iotlb_reg =
            (v & !(regs::IOTLB_IVT | 3 << regs::IOTLB_IAIG_SHIFT)) | iaig << regs::IOTLB_IAIG_SHIFT;
    }

    /// Completes an invalidation-wait descriptor: the status write (SW: `status` = (address, data)),
    /// then the completion interrupt (IF).
    pub(crate) fn complete_wait(
        &mut self,
        mem: &dyn DmaMemory,
        status: Option<(u64, u32)>,
        interrupt: bool,
    ) {
        if let Some((addr, data)) = status {
            if mem.write_u32(addr, data).is_err() {
                log::debug!("vtd: wait descriptor status address {addr:#x} is not RAM");
            }
        }
        if interrupt {
            self.wait_interrupt();
        }
    }

    /// An invalidation-wait descriptor with IF set: set ICS.IWC and send the completion interrupt, unless
    /// a previous completion is still unserviced (IWC already set).
    fn wait_interrupt(&mut self) {
        let qi = &mut self.qi;
        if qi.ics & regs::ICS_IWC != 0 {
            return;
        }
        qi.ics |= regs::ICS_IWC;
        qi.iectl |= regs::CTL_IP;
        if qi.iectl & regs::CTL_IM == 0 {
            self.outbox.push(qi.msi());
            qi.iectl &= !regs::CTL_IP;
        }
    }

    /// ICS write: IWC is write-1-to-clear; clearing it also clears IECTL.IP.
    pub(crate) fn write_ics(&mut self, v: u32) {
        if v & regs::ICS_IWC != 0 {
            self.qi.ics &= !regs::ICS_IWC;
            self.qi.iectl &= !regs::CTL_IP;
        }
    }

    /// IECTL write: only IM is writable; unmasking with IP set sends the pending interrupt.
    pub(crate) fn write_iectl(&mut self, v: u32) {
        let qi = &mut self.qi;
        qi.iectl = (qi.iectl & regs::CTL_IP) | (v & regs::CTL_IM);
        if qi.iectl & regs::CTL_IM == 0 && qi.iectl & regs::CTL_IP != 0 {
            self.outbox.push(qi.msi());
            qi.iectl &= !regs::CTL_IP;
        }
    }

    fn queue_error(&mut self, iqei: Iqei) {
        self.qi.iqercd = (self.qi.iqercd & !0xf) | iqei;
        self.stats.qi_errors += 1;
        self.fault.raise(regs::FSTS_IQE, &mut self.outbox);
    }

    /// Runs descriptors from IQH to IQT. Does nothing while QI is disabled or an IQE is pending.
    pub(crate) fn process_queue(&mut self, mem: &dyn DmaMemory) {
        if self.gsts & regs::GSTS_QIES == 0 || self.fault.has(regs::FSTS_IQE) {
            return;
        }
        let iqa = self.qi.iqa;
        let wide = iqa & regs::IQA_DW != 0;
        let size: u64 = if wide { 32 } else { 16 };
        let queue_bytes = 0x1000u64 << (iqa & regs::IQA_QS_MASK);
        let tail = self.qi.iqt & regs::IQ_OFFSET_MASK;
        // IQH is ours; keep it inside the queue and on a descriptor boundary even if IQA changed.
        let mut head = (self.qi.iqh % queue_bytes) & !(size - 1);
        if head == tail {
            return;
        }
        if wide && !self.hw.smts {
            // 256-bit descriptors need ECAP.SMTS.
            return self.queue_error(regs::IQEI_INVALID_WIDTH);
        }
        if wide && tail & 0x10 != 0 {
            return self.queue_error(regs::IQEI_TAIL_MISALIGNED);
        }
        if tail >= queue_bytes {
            return self.queue_error(regs::IQEI_TAIL_INVALID);
        }
        let base = iqa & regs::IQA_BASE_MASK;
        let mut budget = queue_bytes / size;
        while head != tail && budget > 0 {
            budget -= 1;
            let mut raw = [0u8; 32];
            let fetched = base
                .checked_add(head)
                .map(|addr| mem.read(addr, &mut raw[..size as usize]));
            self.qi.iqh = head;
            if !matches!(fetched, Some(Ok(()))) {
                return self.queue_error(regs::IQEI_FETCH_ERROR);
            }
            let q = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
                u64::from_le_bytes(b)
            };
            let desc = [q(0), q(1), q(2), q(3)];
            if let Err(iqei) = self.execute(mem, desc) {
                log::debug!(
                    "vtd: invalidation queue error {iqei} at IQH {head:#x}: {:#x} {:#x}",
                    desc[0],
                    desc[1]
                );
                return self.queue_error(iqei);
            }
            self.stats.qi_descriptors += 1;
            head = (head + size) % queue_bytes;
            self.qi.iqh = head;
        }
    }

    /// Executes one descriptor (qw2/qw3 of 256-bit descriptors are not interpreted by any type this
    /// model implements and are ignored).
    fn execute(&mut self, mem: &dyn DmaMemory, d: [u64; 4]) -> Result<(), Iqei> {
        let ty = (d[0] & 0xf) | ((d[0] >> 9) & 7) << 4;
        let gran = (d[0] >> 4) & 3;
        let did = ((d[0] >> 16) & 0xffff) as u16;
        let check = |rsvd0: u64, rsvd1: u64| -> Result<(), Iqei> {
            if d[0] & rsvd0 != 0 || d[1] & rsvd1 != 0 {
                Err(regs::IQEI_RESERVED)
            } else {
                Ok(())
            }
        };
        match ty {
            DESC_CONTEXT => {
                // 6.5.2.1: G b5:4, DID b31:16, SID b47:32, FM b49:48.
                check(0xfffc_0000_0000_f1c0, !0)?;
                let sid = ((d[0] >> 32) & 0xffff) as u16;
                let fm = ((d[0] >> 48) & 3) as u8;
                if !self.invalidate_context(gran, did, sid, fm) {
                    return Err(regs::IQEI_RESERVED);
                }
            }
            DESC_IOTLB => {
                // 6.5.2.3: G b5:4, DW b6, DR b7, DID b31:16; qw1 ADDR b63:12, IH b6, AM b5:0.
                check(0xffff_ffff_0000_f100, 0xf80)?;
                let am = (d[1] & 0x3f) as u32;
                if self.invalidate_iotlb(gran, did, d[1] & !0xfff, am) == 0 {
                    return Err(regs::IQEI_RESERVED);
                }
            }
            DESC_DEVTLB | DESC_PDEVTLB => {
                // Device-TLB invalidations need ECAP.DT; with DT they would complete at once (no ATC).
                if !self.hw.dt {
                    return Err(regs::IQEI_INVALID_TYPE);
                }
                self.stats.invalidation("devtlb");
            }
            DESC_IEC => {
                // 6.5.2.7 (needs ECAP.IR): G b4 (0 global, 1 index-selective), IM b31:27, IIDX b47:32.
                if !self.hw.ir {
                    return Err(regs::IQEI_INVALID_TYPE);
                }
                check(0xffff_0000_07ff_f1e0, !0)?;
                let index = ((d[0] >> 32) & 0xffff) as u16;
                self.invalidate_iec(d[0] & (1 << 4) == 0, index, ((d[0] >> 27) & 0x1f) as u32);
            }
            DESC_WAIT => {
                // 6.5.2.8: IF b4, SW b5, FN b6, PD b7 (reserved: no ECAP.PDS), status data b63:32;
                // qw1 status address b63:2.
                check(0xffff_f180, 3)?;
                let status = (d[0] & (1 << 5) != 0).then_some((d[1] & !3, (d[0] >> 32) as u32));
                let interrupt = d[0] & (1 << 4) != 0;
                let held = self.hooks.hold_until.is_some()
                    && self.hold_wait(HeldWait { status, interrupt }, Instant::now());
                if !held {
                    self.complete_wait(mem, status, interrupt);
                }
                // FN (fence) orders nothing here: every descriptor completes before the next one.
                self.stats.invalidation("wait");
            }
            DESC_PIOTLB if self.hw.smts => {
                // 6.5.2.4: G b5:4 (2 all-in-PASID, 3 page), DID b31:16, PASID b51:32; qw1 as IOTLB.
                check(0xfff0_0000_0000_f1c0, 0xf80)?;
                let pasid = ((d[0] >> 32) & 0xf_ffff) as u32;
                let t = &mut self.caches.iotlb;
                match gran {
                    2 => {
                        t.invalidate_pasid(did, pasid);
                        self.stats.invalidation("piotlb_pasid");
                    }
                    3 => {
                        // Page-selective-within-PASID: 2^AM pages at ADDR, AM up to 52 (the whole
                        // 64-bit first-stage input space); ADDR must be aligned to the size. A larger
                        // AM or a misaligned ADDR makes the descriptor invalid.
                        let (addr, am) = (d[1] & !0xfff, (d[1] & 0x3f) as u32);
                        let below = 1u64.checked_shl(12 + am).map_or(u64::MAX, |size| size - 1);
                        if am > PIOTLB_MAX_AM || addr & below != 0 {
                            return Err(regs::IQEI_RESERVED);
                        }
                        let (first, last) = am_range(addr, am);
                        t.invalidate_pasid_range(did, pasid, first, last);
                        self.stats.invalidation("piotlb_page");
                    }
                    _ => return Err(regs::IQEI_RESERVED),
                }
            }
            DESC_PASID_CACHE if self.hw.smts => {
                // 6.5.2.2: G b5:4 (0 domain, 1 PASID, 3 global), DID b31:16, PASID b51:32.
                check(0xfff0_0000_0000_f1c0, !0)?;
                let pasid = ((d[0] >> 32) & 0xf_ffff) as u32;
                let pc = &mut self.caches.pasid;
                let kind = match gran {
                    0 => {
                        pc.invalidate_domain(did);
                        "pasid_cache_domain"
                    }
                    1 => {
                        pc.invalidate_pasid(did, pasid);
                        "pasid_cache_pasid"
                    }
                    3 => {
                        pc.invalidate_all();
                        "pasid_cache_global"
                    }
                    _ => return Err(regs::IQEI_RESERVED),
                };
                self.stats.invalidation(kind);
            }
            _ => return Err(regs::IQEI_INVALID_TYPE),
        }
        Ok(())
    }
}
