//! Interrupt remapping (VT-d 4.x chapter 5, section 5.1): the IRTA register and the SIRTP/IRE/CFI commands,
//! the interrupt entry cache and its invalidation (6.5.2.7), and the remapping of one interrupt request
//! (5.1.4) with its fault conditions (5.1.4.1), recorded in the primary fault log.
//!
//! Model decisions:
//! - Requests are classified by [`decode_request`]: compatibility format passes through only while
//!   GSTS.CFIS is set and IRTA.EIME (as latched) is clear, else fault 25h; remappable format is looked up
//!   in the table latched by the last SIRTP.
//! - With IRES clear every interrupt passes through unchanged (decoded as compatibility format).
//! - Posted interrupts are not supported (CAP.PI=0): IRTE.IM=1 is a reserved-field fault (24h).
//! - CAP.ESIRTPS=0: SIRTP does not flush the interrupt entry cache; software issues the global IEC
//!   invalidation (Linux does). Only present, well-formed entries are cached (raw, so that EIME is
//!   applied at use). `caching=off` disables the cache.
//! - A fault record for an interrupt request holds the interrupt index in FI bits 63:48 (bits 47:12
//!   clear), the requester id in SID, T=0 (interrupt requests are writes), no PASID.
//! - The unit's own interrupts (fault events, invalidation completion) are not subject to remapping.

use std::collections::HashMap;

use super::config::Bdf;
use super::fault::FaultInfo;
use super::ir_irte::{decode_irte, decode_request, IrteBad, Request};
use super::reason::FaultReason;
use super::regs;
use super::state::State;
use crate::mem::DmaMemory;
use crate::request::DmaFault;

pub use super::ir_irte::RemappedMsi;

/// Most IRTEs the interrupt entry cache holds (eviction is always allowed and never changes results).
pub(crate) const IEC_CAPACITY: usize = 1024;
/// Bytes per IRTE.
const IRTE_SIZE: u64 = 16;

/// Interrupt-remapping registers and the interrupt entry cache.
pub(crate) struct IrState {
    /// IRTA_REG as last written (bits software can set).
    pub irta: u64,
    /// The table the last SIRTP latched: base, number of entries, EIME.
    table: u64,
    entries: u32,
    eime: bool,
    /// Interrupt entry cache: index -> raw IRTE (low, high qword).
    cache: HashMap<u16, [u64; 2]>,
}

impl IrState {
    pub fn new() -> Self {
        Self {
            irta: 0,
            table: 0,
            entries: 2,
            eime: false,
            cache: HashMap::new(),
        }
    }

    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    fn cache_insert(&mut self, index: u16, raw: [u64; 2]) {
        if self.cache.len() >= IEC_CAPACITY && !self.cache.contains_key(&index) {
            if let Some(victim) = self.cache.keys().next().copied() {
                self.cache.remove(&victim);
            }
        }
        self.cache.insert(index, raw);
    }
}

/// Why a remappable request failed, and whether the IRTE's FPD covers it.
type IrFailure = (FaultReason, bool);

impl State {
    /// IRTA_REG; reserved (reads 0) without ECAP.IR.
    pub(crate) fn read_irta(&self) -> u64 {
        if self.hw.ir {
            self.ir.irta
        } else {
            0
        }
    }

    /// IRTA_REG write: IRTA (bits above HAW not implemented), EIME (RsvdZ without ECAP.EIM), S.
    pub(crate) fn write_irta(&mut self, val: u64, mask: u64) {
        if !self.hw.ir {
            return;
        }
        let haw = (1u64 << self.hw.aw_bits.min(63)) - 1;
        let eime = if self.hw.eim { regs::IRTA_EIME } else { 0 };
        let writable = (regs::IRTA_BASE_MASK & haw) | eime | regs::IRTA_S_MASK;
        self.ir.irta = ((self.ir.irta & !mask) | (val & mask)) & writable;
    }

    /// The interrupt-remapping bits of a (full-state) GCMD write: SIRTP latches IRTA (GSTS.IRTPS), IRE
    /// enables remapping (GSTS.IRES), CFI lets compatibility-format interrupts through (GSTS.CFIS).
    /// Status follows at once. Ignored without ECAP.IR.
    pub(crate) fn ir_command(&mut self, v: u32) {
        if !self.hw.ir {
            return;
        }
        if v & regs::GCMD_SIRTP != 0 {
            let irta = self.ir.irta;
            self.ir.table = irta & regs::IRTA_BASE_MASK;
            self.ir.entries = 2 << (irta & regs::IRTA_S_MASK);
            self.ir.eime = irta & regs::IRTA_EIME != 0;
            self.gsts |= regs::GSTS_IRTPS;
        }
        for (cmd, status) in [
            (regs::GCMD_IRE, regs::GSTS_IRES),
            (regs::GCMD_CFI, regs::GSTS_CFIS),
        ] {
            if v & cmd != 0 {
                self.gsts |= status;
            } else {
                self.gsts &= !status;
            }
        }
    }

    /// Interrupt entry cache invalidation (6.5.2.7): global, or index-selective for the 2^`im` entries of
    /// the naturally aligned block containing `index`.
    pub(crate) fn invalidate_iec(&mut self, global: bool, index: u16, im: u32) {
        if global {
            self.ir.cache.clear();
            self.stats.invalidation("iec_global");
        } else {
            let size = 1u32 << im.min(16);
            let first = u32::from(index) & !(size - 1);
            let last = first + (size - 1);
            self.ir
                .cache
                .retain(|i, _| !(first..=last).contains(&u32::from(*i)));
            self.stats.invalidation("iec_index");
        }
    }

    /// Remaps one interrupt request from requester `sid` (5.1.4). Faults are recorded (unless the IRTE's
    /// FPD covers them) and returned.
    pub(crate) fn remap_interrupt(
        &mut self,
        mem: &dyn DmaMemory,
        sid: u16,
        address: u64,
        data: u32,
    ) -> Result<RemappedMsi, DmaFault> {
        let request = decode_request(address, data);
        if request == Request::NotInterrupt {
            return Err(DmaFault {
                model: "vtd".into(),
                reason: 0,
                description: "not an interrupt address (0xFEEx_xxxx)".into(),
                iova: address,
                recorded: false,
            });
        }
        let compat_allowed = self.gsts & regs::GSTS_CFIS != 0 && !self.ir.eime;
        let result = match request {
            _ if self.gsts & regs::GSTS_IRES == 0 => Ok(None),
            Request::Compat if compat_allowed => Ok(None),
            Request::Compat | Request::NotInterrupt => {
                Err((FaultReason::IrCompatBlocked, false, 0))
            }
            Request::Remappable { index, reserved } => self
                .remap_index(mem, sid, index, reserved)
                .map(Some)
                .map_err(|(reason, fpd)| (reason, fpd, index)),
        };
        match result {
            Ok(Some(msi)) => {
                self.stats.interrupts_remapped += 1;
                log::trace!(
                    "vtd: interrupt {address:#x}/{data:#x} from {} -> {msi:?}",
                    Bdf(sid)
                );
                Ok(msi)
            }
            Ok(None) => {
                self.stats.interrupts_passed_through += 1;
                Ok(RemappedMsi::from_compat(address, data))
            }
            Err((reason, fpd, index)) => {
                Err(self.report_interrupt_fault(sid, reason, fpd, index, address, data))
            }
        }
    }

    /// A remappable request: bounds, IRTE fetch (interrupt entry cache first), decode, source check.
    fn remap_index(
        &mut self,
        mem: &dyn DmaMemory,
        sid: u16,
        index: u32,
        reserved: bool,
    ) -> Result<RemappedMsi, IrFailure> {
        if reserved {
            return Err((FaultReason::IrRequestReserved, false));
        }
        if index >= self.ir.entries {
            return Err((FaultReason::IrIndexBeyondSize, false));
        }
        // The table has at most 65536 entries, so the index fits 16 bits from here on.
        let key = index as u16;
        let cached = if self.hw.caching {
            let c = self.ir.cache.get(&key).copied();
            if c.is_some() {
                self.stats.iec_hits += 1;
            } else {
                self.stats.iec_misses += 1;
            }
            c
        } else {
            None
        };
        let [lo, hi] = match cached {
            Some(raw) => raw,
            None => self.read_irte(mem, index)?,
        };
        let irte = decode_irte(lo, hi, self.ir.eime).map_err(|b| match b {
            IrteBad::NotPresent { fpd } => (FaultReason::IrEntryNotPresent, fpd),
            IrteBad::Reserved { fpd } => (FaultReason::IrEntryReserved, fpd),
        })?;
        if cached.is_none() && self.hw.caching {
            self.ir.cache_insert(key, [lo, hi]);
        }
        if !irte.source.allows(sid) {
            return Err((FaultReason::IrSourceId, irte.fpd));
        }
        Ok(irte.msi)
    }

    /// Reads IRTE `index` of the latched table: 21h if it lies above HAW, 23h if it is not readable.
    fn read_irte(&self, mem: &dyn DmaMemory, index: u32) -> Result<[u64; 2], IrFailure> {
        let addr = self.ir.table + u64::from(index) * IRTE_SIZE;
        if (addr + (IRTE_SIZE - 1)) >> self.hw.aw_bits.min(63) != 0 {
            return Err((FaultReason::IrIndexBeyondSize, false));
        }
        let access = (FaultReason::IrTableAccess, false);
        let lo = mem.read_u64(addr).map_err(|_| access)?;
        let hi = mem.read_u64(addr + 8).map_err(|_| access)?;
        Ok([lo, hi])
    }

    /// Records an interrupt-remapping fault (unless FPD suppresses a qualified one) and returns it.
    fn report_interrupt_fault(
        &mut self,
        sid: u16,
        reason: FaultReason,
        fpd: bool,
        index: u32,
        address: u64,
        data: u32,
    ) -> DmaFault {
        let code = reason.code();
        self.stats.fault(code);
        let recorded = if fpd && reason.qualified() {
            self.stats.faults_suppressed += 1;
            false
        } else {
            let info = FaultInfo {
                sid,
                pasid: None,
                privileged: false,
                // T=0: interrupt requests are writes (T is defined for DMA faults only).
                write: true,
                // FI bits 63:48: the interrupt index (its low 16 bits when handle + subhandle overflows).
                iova: u64::from(index & 0xffff) << 48,
                reason: code,
            };
            let ok = self.fault.record(&info, &mut self.outbox);
            if ok {
                self.stats.faults_recorded += 1;
                self.log_fault(|| {
                    format!(
                        "vtd: interrupt remapping fault reason {code:#04x} ({}) source {} index \
                         {index:#x} address {address:#x} data {data:#x}",
                        reason.description(),
                        Bdf(sid)
                    )
                });
            } else {
                self.stats.faults_dropped += 1;
            }
            ok
        };
        DmaFault {
            model: "vtd".into(),
            reason: u32::from(code),
            description: reason.description().into(),
            iova: address,
            recorded,
        }
    }
}
