//! Register offsets, fields and the ID register values (IHI0070 §6.2 register map, §6.3 registers).
//!
//! Page 0 holds every register this model implements; page 1 (offset 0x10000) holds the event queue's
//! PROD/CONS at 0x100A8/0x100AC, where Linux accesses them. The page 0 offsets 0xA8/0xAC alias them
//! (as QEMU does), since IHI0070 places the page 1 copies at the same offsets plus 64 KiB.

use super::config::Smmuv3Config;

/// Register page 0 (0x0..0xffff) + page 1 (0x10000..0x1ffff).
pub const SMMUV3_MMIO_SIZE: u64 = 0x20000;
/// Offset of register page 1.
pub const PAGE1: u64 = 0x10000;

pub const IDR0: u64 = 0x0;
pub const IDR1: u64 = 0x4;
pub const IDR2: u64 = 0x8;
pub const IDR3: u64 = 0xc;
pub const IDR4: u64 = 0x10;
pub const IDR5: u64 = 0x14;
pub const IIDR: u64 = 0x18;
pub const AIDR: u64 = 0x1c;
pub const CR0: u64 = 0x20;
pub const CR0ACK: u64 = 0x24;
pub const CR1: u64 = 0x28;
pub const CR2: u64 = 0x2c;
pub const STATUSR: u64 = 0x40;
pub const GBPA: u64 = 0x44;
pub const AGBPA: u64 = 0x48;
pub const IRQ_CTRL: u64 = 0x50;
pub const IRQ_CTRLACK: u64 = 0x54;
pub const GERROR: u64 = 0x60;
pub const GERRORN: u64 = 0x64;
pub const GERROR_IRQ_CFG0: u64 = 0x68;
pub const GERROR_IRQ_CFG1: u64 = 0x70;
pub const GERROR_IRQ_CFG2: u64 = 0x74;
pub const STRTAB_BASE: u64 = 0x80;
pub const STRTAB_BASE_CFG: u64 = 0x88;
pub const CMDQ_BASE: u64 = 0x90;
pub const CMDQ_PROD: u64 = 0x98;
pub const CMDQ_CONS: u64 = 0x9c;
pub const EVTQ_BASE: u64 = 0xa0;
pub const EVTQ_PROD: u64 = 0xa8;
pub const EVTQ_CONS: u64 = 0xac;
pub const EVTQ_IRQ_CFG0: u64 = 0xb0;
pub const EVTQ_IRQ_CFG1: u64 = 0xb8;
pub const EVTQ_IRQ_CFG2: u64 = 0xbc;

// IDR0 fields (§6.3.1).
pub const IDR0_S2P: u32 = 1 << 0;
pub const IDR0_S1P: u32 = 1 << 1;
pub const IDR0_TTF_AARCH64: u32 = 2 << 2;
pub const IDR0_COHACC: u32 = 1 << 4;
pub const IDR0_HTTU_SHIFT: u32 = 6;
pub const IDR0_ASID16: u32 = 1 << 12;
pub const IDR0_MSI: u32 = 1 << 13;
pub const IDR0_SEV: u32 = 1 << 14;
pub const IDR0_VMID16: u32 = 1 << 18;
pub const IDR0_CD2L: u32 = 1 << 19;
/// TTENDIAN = 0b10: little-endian translation tables only.
pub const IDR0_TTENDIAN_LE: u32 = 2 << 21;
/// STALL_MODEL = 0b01: stalling faults are not supported.
pub const IDR0_STALL_MODEL_NONE: u32 = 1 << 24;
/// TERM_MODEL = 1: terminated transactions always abort (never RAZ/WI).
pub const IDR0_TERM_MODEL: u32 = 1 << 26;
pub const IDR0_ST_LEVEL_2LVL: u32 = 1 << 27;

/// IDR1.CMDQS / EVTQS: log2 of the largest queues (64 Ki entries each). Every PROD write processes at
/// most one queue's worth of commands, so this also bounds the work one register write can cause.
pub const CMDQS: u32 = 16;
pub const EVTQS: u32 = 16;

pub const IDR3_RIL: u32 = 1 << 10;
pub const IDR5_GRAN4K: u32 = 1 << 4;
pub const IDR5_GRAN16K: u32 = 1 << 5;
pub const IDR5_GRAN64K: u32 = 1 << 6;

/// IIDR: implementer 0 (no JEP106 code: not a real Arm part, so no erratum workarounds match), rest 0.
pub const IIDR_VALUE: u32 = 0;
/// AIDR: SMMUv3.2 (ArchMajorRev 0 = v3, ArchMinorRev 2): range invalidation (RIL) is a v3.2 feature.
pub const AIDR_VALUE: u32 = 0x02;

// CR0 (§6.3.9).
pub const CR0_SMMUEN: u32 = 1 << 0;
pub const CR0_PRIQEN: u32 = 1 << 1;
pub const CR0_EVTQEN: u32 = 1 << 2;
pub const CR0_CMDQEN: u32 = 1 << 3;
pub const CR0_ATSCHK: u32 = 1 << 4;
pub const CR0_VMW: u32 = 7 << 6;
/// CR0 bits this model keeps (PRIQEN is RES0 without PRI).
pub const CR0_MASK: u32 = CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN | CR0_ATSCHK | CR0_VMW;

pub const CR1_MASK: u32 = 0xfff;
/// CR2: E2H (RES0 without IDR0.HYP), RECINVSID, PTM.
pub const CR2_RECINVSID: u32 = 1 << 1;
pub const CR2_MASK: u32 = 0b110;

// GBPA (§6.3.14).
pub const GBPA_UPDATE: u32 = 1 << 31;
pub const GBPA_ABORT: u32 = 1 << 20;
/// Writable GBPA fields: ABORT, INSTCFG[19:18], PRIVCFG[17:16], SHCFG[13:12], ALLOCCFG[11:8], MTCFG[4],
/// MEMATTR[3:0].
pub const GBPA_FIELDS: u32 = 0x001f_3f1f;
/// SHCFG reset value 0b01 (use incoming).
pub const GBPA_RESET: u32 = 1 << 12;

// IRQ_CTRL (§6.3.16).
pub const IRQ_CTRL_GERROR_IRQEN: u32 = 1 << 0;
pub const IRQ_CTRL_EVTQ_IRQEN: u32 = 1 << 2;
pub const IRQ_CTRL_MASK: u32 = IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_EVTQ_IRQEN;

// GERROR (§6.3.18).
pub const GERROR_CMDQ_ERR: u32 = 1 << 0;
pub const GERROR_EVTQ_ABT_ERR: u32 = 1 << 2;
pub const GERROR_MSI_CMDQ_ABT_ERR: u32 = 1 << 4;
pub const GERROR_MSI_EVTQ_ABT_ERR: u32 = 1 << 5;
pub const GERROR_MSI_GERROR_ABT_ERR: u32 = 1 << 7;
pub const GERROR_SFM_ERR: u32 = 1 << 8;
/// The GERROR bits this model can raise (and GERRORN can acknowledge).
pub const GERROR_MASK: u32 = 0x1fd;

/// MSI address fields of the *_IRQ_CFG0 registers: ADDR[51:2].
pub const MSI_ADDR_MASK: u64 = 0x000f_ffff_ffff_fffc;

// STRTAB_BASE / _CFG (§6.3.23, §6.3.24).
pub const STRTAB_BASE_ADDR_MASK: u64 = 0x000f_ffff_ffff_ffc0;
pub const STRTAB_BASE_RA: u64 = 1 << 62;
pub const STRTAB_BASE_CFG_MASK: u32 = 0x0003_07ff;

// Queue bases (§6.3.25): RA[62], ADDR[51:5], LOG2SIZE[4:0].
pub const Q_BASE_ADDR_MASK: u64 = 0x000f_ffff_ffff_ffe0;
pub const Q_BASE_MASK: u64 = Q_BASE_ADDR_MASK | (1 << 62) | 0x1f;
/// Queue overflow flag (EVTQ_PROD.OVFLG / EVTQ_CONS.OVACKFLG).
pub const Q_OVF: u32 = 1 << 31;
/// CMDQ_CONS.ERR[30:24].
pub const CMDQ_CONS_ERR_SHIFT: u32 = 24;
pub const CERROR_NONE: u32 = 0;
pub const CERROR_ILL: u32 = 1;
pub const CERROR_ABT: u32 = 2;

/// The values of the read-only identification registers for one configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idr {
    pub idr0: u32,
    pub idr1: u32,
    pub idr3: u32,
    pub idr5: u32,
}

impl Idr {
    pub fn new(cfg: &Smmuv3Config) -> Self {
        let mut idr0 = IDR0_TTF_AARCH64
            | IDR0_COHACC
            | IDR0_ASID16
            | IDR0_MSI
            | IDR0_SEV
            | IDR0_TTENDIAN_LE
            | IDR0_STALL_MODEL_NONE
            | IDR0_TERM_MODEL
            | (u32::from(cfg.httu.min(2)) << IDR0_HTTU_SHIFT);
        if cfg.stage1 {
            idr0 |= IDR0_S1P;
            if cfg.ssid_bits > 0 {
                idr0 |= IDR0_CD2L;
            }
        }
        if cfg.stage2 {
            idr0 |= IDR0_S2P | IDR0_VMID16;
        }
        if cfg.two_level_strtab {
            idr0 |= IDR0_ST_LEVEL_2LVL;
        }
        let idr1 = (CMDQS << 21)
            | (EVTQS << 16)
            | (u32::from(cfg.ssid_bits.min(20)) << 6)
            | u32::from(cfg.sid_bits.min(32));
        let idr3 = if cfg.ril { IDR3_RIL } else { 0 };
        let idr5 = IDR5_GRAN4K | IDR5_GRAN16K | IDR5_GRAN64K | cfg.oas_field();
        Self {
            idr0,
            idr1,
            idr3,
            idr5,
        }
    }
}

/// A queue's effective log2 size: LOG2SIZE from its base register, at most `max` (IHI0070 §6.3.25:
/// values above the IDR1 maximum behave as the maximum).
pub fn q_log2(base: u64, max: u32) -> u32 {
    ((base & 0x1f) as u32).min(max)
}

/// Index + wrap bits of a PROD/CONS value for a queue of 2^log2 entries.
pub fn q_wrap_idx(v: u32, log2: u32) -> u32 {
    v & ((2u32 << log2) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idr_follows_config() {
        let d = Idr::new(&Smmuv3Config::default());
        assert_eq!(d.idr0 & 3, 3, "S1P and S2P");
        assert_eq!((d.idr0 >> 2) & 3, 2, "AArch64 tables");
        assert_eq!((d.idr0 >> 6) & 3, 2, "HTTU access+dirty");
        assert_eq!((d.idr0 >> 27) & 3, 1, "2-level stream table");
        assert_eq!((d.idr0 >> 24) & 3, 1, "no stall");
        assert_eq!(d.idr1 & 0x3f, 16);
        assert_eq!((d.idr1 >> 6) & 0x1f, 20);
        assert_eq!((d.idr1 >> 21) & 0x1f, CMDQS);
        assert_eq!(d.idr3 & IDR3_RIL, IDR3_RIL);
        assert_eq!(d.idr5 & 7, 5, "48-bit OAS");
        let s2: Smmuv3Config = "smmuv3,stages=s2,strtab=linear,httu=0,ril=off,oas=40"
            .parse()
            .unwrap();
        let i = Idr::new(&s2);
        assert_eq!(i.idr0 & 3, 1);
        assert_eq!(i.idr0 & (IDR0_ST_LEVEL_2LVL | IDR0_CD2L | (3 << 6)), 0);
        assert_eq!(i.idr3, 0);
        assert_eq!(i.idr5 & 7, 2);
    }

    #[test]
    fn queue_helpers() {
        assert_eq!(q_log2(0x1000 | 31, CMDQS), CMDQS);
        assert_eq!(q_log2(0x1000 | 3, CMDQS), 3);
        assert_eq!(q_wrap_idx(0xffff_ffff, 3), 0xf);
    }
}
