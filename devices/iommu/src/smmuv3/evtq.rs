//! The event queue (IHI0070 §7.2, §7.4): records written at PROD, overflow, and its MSI.

use super::events::Event;
use super::regs::*;
use super::state::State;
use crate::mem::DmaMemory;

/// Event queue entries are 32 bytes.
const EVT_SIZE: u64 = 32;

impl State {
    /// Writes `ev` to the event queue. Events exist only while SMMUEN and EVTQEN are set (§7.2:
    /// otherwise they are discarded). A full queue (PROD one lap ahead of CONS) loses the event and
    /// toggles EVTQ_PROD.OVFLG so that it differs from EVTQ_CONS.OVACKFLG — once per overflow, until
    /// software acknowledges by copying OVFLG into OVACKFLG (§7.4). A queue whose memory cannot be
    /// written loses the event and raises GERROR.EVTQ_ABT_ERR (§7.5). Each written record signals the
    /// EVTQ MSI when IRQ_CTRL.EVENTQ_IRQEN is set. Returns whether the record was written.
    pub fn record_event(&mut self, mem: &dyn DmaMemory, ev: &Event) -> bool {
        let r = &self.regs;
        if r.cr0 & CR0_SMMUEN == 0 || r.cr0 & CR0_EVTQEN == 0 {
            self.stats.events_lost += 1;
            return false;
        }
        let log2 = q_log2(r.evtq_base, EVTQS);
        let base = r.evtq_base & Q_BASE_ADDR_MASK;
        let prod = q_wrap_idx(r.evtq_prod, log2);
        let cons = q_wrap_idx(r.evtq_cons, log2);
        let idx_mask = (1u32 << log2) - 1;
        let full = prod != cons && (prod & idx_mask) == (cons & idx_mask);
        if full {
            if (r.evtq_prod ^ r.evtq_cons) & Q_OVF == 0 {
                self.regs.evtq_prod ^= Q_OVF;
            }
            self.stats.events_lost += 1;
            return false;
        }
        let addr = base.wrapping_add(u64::from(prod & idx_mask) * EVT_SIZE);
        let mut bytes = [0u8; 32];
        for (i, dw) in ev.encode().iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&dw.to_le_bytes());
        }
        if mem.write(addr, &bytes).is_err() {
            self.stats.events_lost += 1;
            self.raise_gerror(mem, GERROR_EVTQ_ABT_ERR);
            return false;
        }
        let next = q_wrap_idx(prod.wrapping_add(1), log2);
        self.regs.evtq_prod = (self.regs.evtq_prod & Q_OVF) | next;
        self.stats.events_recorded += 1;
        if self.regs.irq_ctrl & IRQ_CTRL_EVTQ_IRQEN != 0 {
            self.send_msi(mem, self.regs.evtq_irq_cfg0, self.regs.evtq_irq_cfg1);
        }
        true
    }
}
