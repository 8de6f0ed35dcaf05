//! The SMMU's mutable state: registers, caches, counters and test hooks, behind the device's lock.

use std::collections::BTreeMap;

use super::cache::Caches;
use super::regs::*;
use super::stats::Smmuv3Stats;
use super::ste::StrtabCfg;
use super::translate::Setup;
use super::Hw;
use crate::mem::DmaMemory;

/// Software-visible register values (IHI0070 §6.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub cr0: u32,
    pub cr1: u32,
    pub cr2: u32,
    pub gbpa: u32,
    pub irq_ctrl: u32,
    pub gerror: u32,
    pub gerrorn: u32,
    pub gerror_irq_cfg0: u64,
    pub gerror_irq_cfg1: u32,
    pub gerror_irq_cfg2: u32,
    pub strtab_base: u64,
    pub strtab_base_cfg: u32,
    pub cmdq_base: u64,
    pub cmdq_prod: u32,
    pub cmdq_cons: u32,
    pub evtq_base: u64,
    pub evtq_prod: u32,
    pub evtq_cons: u32,
    pub evtq_irq_cfg0: u64,
    pub evtq_irq_cfg1: u32,
    pub evtq_irq_cfg2: u32,
}

pub struct State {
    pub regs: Regs,
    pub caches: Caches,
    pub stats: Smmuv3Stats,
    /// Armed event injections: SID -> (event number, remaining).
    pub injections: BTreeMap<u32, (u8, u32)>,
    /// MSIs for the interrupt sink, sent once the lock is released.
    pub outbox: Vec<(u64, u32)>,
}

/// Replaces the 32-bit half of `reg` at byte offset `half` (0 or 4).
fn set_half(reg: &mut u64, half: u64, val: u32) {
    if half == 0 {
        *reg = (*reg & !0xffff_ffff) | u64::from(val);
    } else {
        *reg = (*reg & 0xffff_ffff) | u64::from(val) << 32;
    }
}

fn half(reg: u64, half: u64) -> u32 {
    (reg >> (half * 8)) as u32
}

impl State {
    pub fn new(hw: &Hw) -> Self {
        Self {
            regs: Regs {
                gbpa: GBPA_RESET | if hw.cfg.gbpa_abort { GBPA_ABORT } else { 0 },
                ..Default::default()
            },
            caches: Caches::new(),
            stats: Smmuv3Stats::default(),
            injections: BTreeMap::new(),
            outbox: Vec::new(),
        }
    }

    pub fn smmuen(&self) -> bool {
        self.regs.cr0 & CR0_SMMUEN != 0
    }

    pub fn setup(&self, hw: &Hw) -> Setup {
        Setup {
            smmuen: self.smmuen(),
            gbpa_abort: self.regs.gbpa & GBPA_ABORT != 0,
            strtab: StrtabCfg::new(self.regs.strtab_base, self.regs.strtab_base_cfg, hw),
            recinvsid: self.regs.cr2 & CR2_RECINVSID != 0,
        }
    }

    /// Reads the 32-bit register at `off` (4-byte aligned, page offsets folded by the caller).
    /// Unimplemented and reserved offsets read 0.
    pub fn read32(&self, hw: &Hw, off: u64) -> u32 {
        let r = &self.regs;
        let h = off & 4;
        match off {
            IDR0 => hw.idr.idr0,
            IDR1 => hw.idr.idr1,
            IDR3 => hw.idr.idr3,
            IDR5 => hw.idr.idr5,
            IIDR => IIDR_VALUE,
            AIDR => AIDR_VALUE,
            CR0 | CR0ACK => r.cr0,
            CR1 => r.cr1,
            CR2 => r.cr2,
            GBPA => r.gbpa,
            IRQ_CTRL | IRQ_CTRLACK => r.irq_ctrl,
            GERROR => r.gerror,
            GERRORN => r.gerrorn,
            0x68 | 0x6c => half(r.gerror_irq_cfg0, h),
            GERROR_IRQ_CFG1 => r.gerror_irq_cfg1,
            GERROR_IRQ_CFG2 => r.gerror_irq_cfg2,
            0x80 | 0x84 => half(r.strtab_base, h),
            STRTAB_BASE_CFG => r.strtab_base_cfg,
            0x90 | 0x94 => half(r.cmdq_base, h),
            CMDQ_PROD => r.cmdq_prod,
            CMDQ_CONS => r.cmdq_cons,
            0xa0 | 0xa4 => half(r.evtq_base, h),
            EVTQ_PROD => r.evtq_prod,
            EVTQ_CONS => r.evtq_cons,
            0xb0 | 0xb4 => half(r.evtq_irq_cfg0, h),
            EVTQ_IRQ_CFG1 => r.evtq_irq_cfg1,
            EVTQ_IRQ_CFG2 => r.evtq_irq_cfg2,
            // IDR2, IDR4, STATUSR (not dormant), AGBPA, PRIQ (not advertised), everything else.
            _ => 0,
        }
    }

    /// Writes the 32-bit register at `off`. Read-only and unimplemented registers ignore writes;
    /// registers the spec makes read-only while a unit is enabled ignore writes then (§6.3.23-6.3.27:
    /// STRTAB_BASE(_CFG) while SMMUEN, CMDQ_BASE/CONS while CMDQEN, EVTQ_BASE/PROD while EVTQEN).
    pub fn write32(&mut self, hw: &Hw, mem: &dyn DmaMemory, off: u64, val: u32) {
        let h = off & 4;
        let r = &mut self.regs;
        let smmuen = r.cr0 & CR0_SMMUEN != 0;
        let cmdqen = r.cr0 & CR0_CMDQEN != 0;
        let evtqen = r.cr0 & CR0_EVTQEN != 0;
        match off {
            CR0 => {
                let was_cmdqen = cmdqen;
                // CR0ACK follows at once (the update is complete before the next access).
                r.cr0 = val & CR0_MASK;
                if !was_cmdqen && r.cr0 & CR0_CMDQEN != 0 {
                    self.process_cmdq(hw, mem);
                }
            }
            CR1 => r.cr1 = val & CR1_MASK,
            CR2 => r.cr2 = val & CR2_MASK,
            // Fields change only with Update = 1 (as QEMU); the update completes at once, so Update
            // reads 0.
            GBPA if val & GBPA_UPDATE != 0 => r.gbpa = val & GBPA_FIELDS,
            IRQ_CTRL => r.irq_ctrl = val & IRQ_CTRL_MASK,
            GERRORN => {
                let was_err = (r.gerror ^ r.gerrorn) & GERROR_CMDQ_ERR != 0;
                r.gerrorn = val & GERROR_MASK;
                let now_err = (r.gerror ^ r.gerrorn) & GERROR_CMDQ_ERR != 0;
                if was_err && !now_err {
                    // Acknowledged: command processing resumes at CONS (§4.6.1 / §7.1).
                    self.process_cmdq(hw, mem);
                }
            }
            0x68 | 0x6c => set_half(&mut r.gerror_irq_cfg0, h, val),
            GERROR_IRQ_CFG1 => r.gerror_irq_cfg1 = val,
            GERROR_IRQ_CFG2 => r.gerror_irq_cfg2 = val & 0x3f,
            0x80 | 0x84 if !smmuen => {
                set_half(&mut r.strtab_base, h, val);
                r.strtab_base &= STRTAB_BASE_ADDR_MASK | STRTAB_BASE_RA;
            }
            STRTAB_BASE_CFG if !smmuen => r.strtab_base_cfg = val & STRTAB_BASE_CFG_MASK,
            0x90 | 0x94 if !cmdqen => {
                set_half(&mut r.cmdq_base, h, val);
                r.cmdq_base &= Q_BASE_MASK;
            }
            CMDQ_PROD => {
                // Bits above WR are RES0 (§6.3.27): only the index and wrap bits of the current size.
                let log2 = q_log2(r.cmdq_base, CMDQS);
                r.cmdq_prod = q_wrap_idx(val, log2);
                self.process_cmdq(hw, mem);
            }
            CMDQ_CONS if !cmdqen => {
                let log2 = q_log2(r.cmdq_base, CMDQS);
                r.cmdq_cons = (val & (0x7f << CMDQ_CONS_ERR_SHIFT)) | q_wrap_idx(val, log2);
            }
            0xa0 | 0xa4 if !evtqen => {
                set_half(&mut r.evtq_base, h, val);
                r.evtq_base &= Q_BASE_MASK;
            }
            EVTQ_PROD if !evtqen => {
                let log2 = q_log2(r.evtq_base, EVTQS);
                r.evtq_prod = (val & Q_OVF) | q_wrap_idx(val, log2);
            }
            EVTQ_CONS => {
                let log2 = q_log2(r.evtq_base, EVTQS);
                r.evtq_cons = (val & Q_OVF) | q_wrap_idx(val, log2);
            }
            0xb0 | 0xb4 => set_half(&mut r.evtq_irq_cfg0, h, val),
            EVTQ_IRQ_CFG1 => r.evtq_irq_cfg1 = val,
            EVTQ_IRQ_CFG2 => r.evtq_irq_cfg2 = val & 0x3f,
            _ => {}
        }
    }

    /// Sends an MSI of the SMMU's own (GERROR, EVTQ, CMD_SYNC): a 32-bit write of `data` to
    /// `address` — into guest RAM when it is RAM (Linux's CMD_SYNC "MSI polling" points it at the
    /// command itself), otherwise to the interrupt sink once the lock is released. Address 0 sends
    /// nothing (§6.3.19: no MSI configured).
    pub fn send_msi(&mut self, mem: &dyn DmaMemory, address: u64, data: u32) {
        let address = address & MSI_ADDR_MASK;
        if address == 0 {
            return;
        }
        if mem.write_u32(address, data).is_ok() {
            self.stats.msi_memory_writes += 1;
        } else {
            self.stats.msis += 1;
            self.outbox.push((address, data));
        }
    }

    /// Activates the global error `bit` (§7.5: toggles GERROR so that it differs from GERRORN) unless
    /// it is already active, and signals it with the GERROR MSI when enabled.
    pub fn raise_gerror(&mut self, mem: &dyn DmaMemory, bit: u32) {
        if (self.regs.gerror ^ self.regs.gerrorn) & bit != 0 {
            return;
        }
        self.regs.gerror ^= bit;
        self.stats.gerrors += 1;
        if self.regs.irq_ctrl & IRQ_CTRL_GERROR_IRQEN != 0 {
            self.send_msi(mem, self.regs.gerror_irq_cfg0, self.regs.gerror_irq_cfg1);
        }
    }

    /// Whether a command queue error is waiting for its acknowledgement.
    pub fn cmdq_error_active(&self) -> bool {
        (self.regs.gerror ^ self.regs.gerrorn) & GERROR_CMDQ_ERR != 0
    }

    /// Refreshes the entry counts and pending injections in the counters.
    pub fn snapshot_stats(&self) -> Smmuv3Stats {
        let mut s = self.stats.clone();
        s.tlb_entries = self.caches.tlb_len() as u64;
        s.ste_cache_entries = self.caches.ste_len() as u64;
        s.cd_cache_entries = self.caches.cd_len() as u64;
        s.injected_pending = self.injections.values().map(|(_, n)| u64::from(*n)).sum();
        s
    }
}
