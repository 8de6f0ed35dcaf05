//! The command queue (IHI0070 §4): fetch at CONS, execute, advance; errors stop it (§4.6, §7.1).
//!
//! Commands run synchronously when PROD is written (or the queue is enabled, or a command error is
//! acknowledged), at most one queue's worth per call: PROD and CONS are wrap+index values of the
//! queue's size, so PROD can never be more than one lap ahead and the loop always ends. A PROD with
//! bits above WR set is masked (those bits are RES0, §6.3.27; QEMU masks them the same way).

use super::regs::*;
use super::state::State;
use super::Hw;
use crate::mem::DmaMemory;

pub const CMD_PREFETCH_CONFIG: u8 = 0x01;
pub const CMD_PREFETCH_ADDR: u8 = 0x02;
pub const CMD_CFGI_STE: u8 = 0x03;
/// CFGI_STE_RANGE; CFGI_ALL is this opcode with Range = 31.
pub const CMD_CFGI_STE_RANGE: u8 = 0x04;
pub const CMD_CFGI_CD: u8 = 0x05;
pub const CMD_CFGI_CD_ALL: u8 = 0x06;
pub const CMD_TLBI_NH_ALL: u8 = 0x10;
pub const CMD_TLBI_NH_ASID: u8 = 0x11;
pub const CMD_TLBI_NH_VA: u8 = 0x12;
pub const CMD_TLBI_NH_VAA: u8 = 0x13;
pub const CMD_TLBI_EL3_ALL: u8 = 0x18;
pub const CMD_TLBI_EL3_VA: u8 = 0x1a;
pub const CMD_TLBI_EL2_ALL: u8 = 0x20;
pub const CMD_TLBI_EL2_ASID: u8 = 0x21;
pub const CMD_TLBI_EL2_VA: u8 = 0x22;
pub const CMD_TLBI_EL2_VAA: u8 = 0x23;
pub const CMD_TLBI_S12_VMALL: u8 = 0x28;
pub const CMD_TLBI_S2_IPA: u8 = 0x2a;
pub const CMD_TLBI_NSNH_ALL: u8 = 0x30;
pub const CMD_ATC_INV: u8 = 0x40;
pub const CMD_PRI_RESP: u8 = 0x41;
pub const CMD_RESUME: u8 = 0x44;
pub const CMD_STALL_TERM: u8 = 0x45;
pub const CMD_SYNC: u8 = 0x46;

const CMD_SIZE: u64 = 16;

/// The architected name of command `op`.
pub fn command_name(op: u8) -> &'static str {
    match op {
        CMD_PREFETCH_CONFIG => "CMD_PREFETCH_CONFIG",
        CMD_PREFETCH_ADDR => "CMD_PREFETCH_ADDR",
        CMD_CFGI_STE => "CMD_CFGI_STE",
        CMD_CFGI_STE_RANGE => "CMD_CFGI_STE_RANGE",
        CMD_CFGI_CD => "CMD_CFGI_CD",
        CMD_CFGI_CD_ALL => "CMD_CFGI_CD_ALL",
        CMD_TLBI_NH_ALL => "CMD_TLBI_NH_ALL",
        CMD_TLBI_NH_ASID => "CMD_TLBI_NH_ASID",
        CMD_TLBI_NH_VA => "CMD_TLBI_NH_VA",
        CMD_TLBI_NH_VAA => "CMD_TLBI_NH_VAA",
        CMD_TLBI_EL3_ALL => "CMD_TLBI_EL3_ALL",
        CMD_TLBI_EL3_VA => "CMD_TLBI_EL3_VA",
        CMD_TLBI_EL2_ALL => "CMD_TLBI_EL2_ALL",
        CMD_TLBI_EL2_ASID => "CMD_TLBI_EL2_ASID",
        CMD_TLBI_EL2_VA => "CMD_TLBI_EL2_VA",
        CMD_TLBI_EL2_VAA => "CMD_TLBI_EL2_VAA",
        CMD_TLBI_S12_VMALL => "CMD_TLBI_S12_VMALL",
        CMD_TLBI_S2_IPA => "CMD_TLBI_S2_IPA",
        CMD_TLBI_NSNH_ALL => "CMD_TLBI_NSNH_ALL",
        CMD_ATC_INV => "CMD_ATC_INV",
        CMD_PRI_RESP => "CMD_PRI_RESP",
        CMD_RESUME => "CMD_RESUME",
        CMD_STALL_TERM => "CMD_STALL_TERM",
        CMD_SYNC => "CMD_SYNC",
        _ => "UNKNOWN",
    }
}

fn bits(v: u64, lo: u32, width: u32) -> u64 {
    (v >> lo) & ((1u64 << width) - 1)
}

/// The address range of a TLBI by address (§4.4.1): with IDR3.RIL and TG != 0, (NUM + 1) * 2^SCALE
/// granules of size TG from Address (aligned down to the granule); otherwise the one address. TTL
/// and Leaf are hints this model (no walk cache, exact page sizes) does not need.
fn tlbi_range(hw: &Hw, w0: u64, addr: u64, w1: u64) -> (u64, u64) {
    let tg = bits(w1, 10, 2);
    if !hw.cfg.ril || tg == 0 {
        return (addr, addr);
    }
    let gshift = match tg {
        1 => 12,
        2 => 14,
        _ => 16,
    };
    let num = bits(w0, 12, 5) + 1;
    let scale = bits(w0, 20, 5) as u32;
    let start = addr & !((1u64 << gshift) - 1);
    let len = num
        .checked_shl(scale + gshift)
        .filter(|l| l >> (scale + gshift) == num)
        .unwrap_or(u64::MAX);
    let last = start.saturating_add(len.saturating_sub(1));
    (start, last)
}

impl State {
    /// Runs commands from CONS to PROD while CMDQEN is set and no command error is pending.
    pub fn process_cmdq(&mut self, hw: &Hw, mem: &dyn DmaMemory) {
        if self.regs.cr0 & CR0_CMDQEN == 0 || self.cmdq_error_active() {
            return;
        }
        let log2 = q_log2(self.regs.cmdq_base, CMDQS);
        let base = self.regs.cmdq_base & Q_BASE_ADDR_MASK;
        let idx_mask = (1u32 << log2) - 1;
        let prod = q_wrap_idx(self.regs.cmdq_prod, log2);
        let err_field = self.regs.cmdq_cons & (0x7f << CMDQ_CONS_ERR_SHIFT);
        let mut cons = q_wrap_idx(self.regs.cmdq_cons, log2);
        // At most one lap: the wrap+index difference never exceeds the queue size.
        for _ in 0..=(1u64 << log2) {
            if cons == prod {
                break;
            }
            let addr = base.wrapping_add(u64::from(cons & idx_mask) * CMD_SIZE);
            let words = mem
                .read_u64(addr)
                .and_then(|a| mem.read_u64(addr.wrapping_add(8)).map(|b| (a, b)));
            let result = match words {
                Ok((w0, w1)) => self.execute(hw, mem, w0, w1),
                Err(_) => Err(CERROR_ABT),
            };
            if let Err(cerror) = result {
                self.stats.command_errors += 1;
                self.regs.cmdq_cons = cerror << CMDQ_CONS_ERR_SHIFT | cons;
                self.raise_gerror(mem, GERROR_CMDQ_ERR);
                return;
            }
            cons = q_wrap_idx(cons.wrapping_add(1), log2);
            self.regs.cmdq_cons = err_field | cons;
        }
    }

    /// Executes one command; `Err(CERROR_ILL)` for an unknown or unsupported opcode or an illegal
    /// field value.
    fn execute(&mut self, hw: &Hw, mem: &dyn DmaMemory, w0: u64, w1: u64) -> Result<(), u32> {
        let op = (w0 & 0xff) as u8;
        let sid = bits(w0, 32, 32) as u32;
        let ssid = bits(w0, 12, 20) as u32;
        let vmid = bits(w0, 32, 16) as u16;
        let asid = bits(w0, 48, 16) as u16;
        let c = &mut self.caches;
        match op {
            CMD_PREFETCH_CONFIG | CMD_PREFETCH_ADDR | CMD_ATC_INV => {}
            CMD_CFGI_STE => {
                c.inval_ste_range(sid, sid);
            }
            CMD_CFGI_STE_RANGE => {
                let range = bits(w1, 0, 5) as u32;
                if range == 31 {
                    c.inval_config_all();
                } else {
                    let span = 2u64 << range;
                    let first = u64::from(sid) & !(span - 1);
                    let last = (first + span - 1).min(u64::from(u32::MAX));
                    c.inval_ste_range(first as u32, last as u32);
                }
            }
            CMD_CFGI_CD => {
                if !hw.cfg.stage1 {
                    return Err(CERROR_ILL);
                }
                c.inval_cd(sid, ssid);
            }
            CMD_CFGI_CD_ALL => {
                if !hw.cfg.stage1 {
                    return Err(CERROR_ILL);
                }
                c.inval_cd_all(sid);
            }
            CMD_TLBI_NH_ALL | CMD_TLBI_NH_ASID | CMD_TLBI_NH_VA | CMD_TLBI_NH_VAA => {
                if !hw.cfg.stage1 {
                    return Err(CERROR_ILL);
                }
                match op {
                    CMD_TLBI_NH_ALL => c.tlbi_nh_all(vmid),
                    CMD_TLBI_NH_ASID => c.tlbi_nh_asid(vmid, asid),
                    _ => {
                        let addr = w1 & !0xfff;
                        let (first, last) = tlbi_range(hw, w0, addr, w1);
                        let a = (op == CMD_TLBI_NH_VA).then_some(asid);
                        c.tlbi_nh_va(vmid, a, first, last)
                    }
                };
            }
            CMD_TLBI_S12_VMALL | CMD_TLBI_S2_IPA => {
                if !hw.cfg.stage2 {
                    return Err(CERROR_ILL);
                }
                if op == CMD_TLBI_S12_VMALL {
                    c.tlbi_s12_vmall(vmid);
                } else {
                    let addr = w1 & 0x000f_ffff_ffff_f000;
                    let (first, last) = tlbi_range(hw, w0, addr, w1);
                    c.tlbi_s2_ipa(vmid, first, last);
                }
            }
            CMD_TLBI_NSNH_ALL => {
                c.tlbi_all();
            }
            CMD_SYNC => {
                self.stats.cmd_syncs += 1;
                match bits(w0, 12, 2) {
                    // CS = SIG_NONE / SIG_SEV: completion is visible through CONS (no WFE model).
                    0 | 2 => {}
                    // CS = SIG_IRQ: the MSI, when IDR0.MSI and MSIAddr != 0 (§4.7.3).
                    1 => self.send_msi(mem, w1 & MSI_ADDR_MASK, bits(w0, 32, 32) as u32),
                    _ => return Err(CERROR_ILL),
                }
            }
            // No HYP (EL2), no Secure state, no PRI, no stalls: these do not exist here.
            _ => return Err(CERROR_ILL),
        }
        self.stats.command(command_name(op));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smmuv3::Smmuv3Config;

    #[test]
    fn range_decoding() {
        let hw = Hw::new(&Smmuv3Config::default());
        // TG = 4K, NUM = 3, SCALE = 1: 8 pages.
        let w0 = 3 << 12 | 1 << 20;
        let w1 = 1 << 10;
        assert_eq!(tlbi_range(&hw, w0, 0x10_0000, w1), (0x10_0000, 0x10_7fff));
        assert_eq!(tlbi_range(&hw, 0, 0x10_0000, 0), (0x10_0000, 0x10_0000));
        // Huge values saturate instead of overflowing.
        let (s, l) = tlbi_range(&hw, 31 << 12 | 31 << 20, !0xffff, 3 << 10);
        assert_eq!(l, u64::MAX);
        assert!(s <= l);
        let noril = Hw::new(&Smmuv3Config {
            ril: false,
            ..Default::default()
        });
        assert_eq!(
            tlbi_range(&noril, w0, 0x10_0000, w1),
            (0x10_0000, 0x10_0000)
        );
        assert_eq!(command_name(CMD_SYNC), "CMD_SYNC");
        assert_eq!(command_name(0x77), "UNKNOWN");
    }
}
