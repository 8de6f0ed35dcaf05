//! SMMUv3 register offsets and the bit layouts of its in-memory structures (Arm IHI0070, chapter 6 registers,
//! §5.2 STE, §5.4 CD, §4 commands, §7.3 event records), as the Linux 6.12 driver names them.

/// Register page 1 (the queues' PROD/CONS of the event and PRI queues live there, §6.2).
pub const PAGE1: u64 = 0x1_0000;

pub const IDR0: u64 = 0x00;
pub const IDR1: u64 = 0x04;
pub const IDR2: u64 = 0x08;
pub const IDR3: u64 = 0x0c;
pub const IDR4: u64 = 0x10;
pub const IDR5: u64 = 0x14;
pub const IIDR: u64 = 0x18;
pub const AIDR: u64 = 0x1c;
pub const CR0: u64 = 0x20;
pub const CR0ACK: u64 = 0x24;
pub const CR1: u64 = 0x28;
pub const CR2: u64 = 0x2c;
pub const GBPA: u64 = 0x44;
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
pub const EVTQ_PROD: u64 = PAGE1 + 0xa8;
pub const EVTQ_CONS: u64 = PAGE1 + 0xac;
pub const EVTQ_IRQ_CFG0: u64 = 0xb0;
pub const EVTQ_IRQ_CFG1: u64 = 0xb8;
pub const EVTQ_IRQ_CFG2: u64 = 0xbc;
pub const PRIQ_BASE: u64 = 0xc0;
pub const PRIQ_PROD: u64 = PAGE1 + 0xc8;
pub const PRIQ_CONS: u64 = PAGE1 + 0xcc;
pub const PRIQ_IRQ_CFG0: u64 = 0xd0;
pub const PRIQ_IRQ_CFG1: u64 = 0xd8;
pub const PRIQ_IRQ_CFG2: u64 = 0xdc;

/// Bits `hi..=lo` of `v`.
pub const fn field(v: u64, hi: u32, lo: u32) -> u64 {
    (v >> lo) & (u64::MAX >> (63 - (hi - lo)))
}

/// `v` placed in bits `hi..=lo` (excess bits dropped).
pub const fn prep(v: u64, hi: u32, lo: u32) -> u64 {
    (v & (u64::MAX >> (63 - (hi - lo)))) << lo
}

pub mod idr0 {
    pub const S2P: u32 = 1 << 0;
    pub const S1P: u32 = 1 << 1;
    /// TTF bits 3:2: 2 = AArch64, 3 = AArch32 and AArch64.
    pub const TTF_SHIFT: u32 = 2;
    pub const COHACC: u32 = 1 << 4;
    /// HTTU bits 7:6.
    pub const HTTU_SHIFT: u32 = 6;
    pub const HYP: u32 = 1 << 9;
    pub const ATS: u32 = 1 << 10;
    pub const ASID16: u32 = 1 << 12;
    pub const MSI: u32 = 1 << 13;
    pub const PRI: u32 = 1 << 16;
    pub const VMID16: u32 = 1 << 18;
    pub const CD2L: u32 = 1 << 19;
    /// ST_LEVEL bits 28:27: 1 = two-level stream table supported.
    pub const ST_LEVEL_SHIFT: u32 = 27;
}

pub mod idr1 {
    pub const SIDSIZE_SHIFT: u32 = 0;
    pub const SSIDSIZE_SHIFT: u32 = 6;
    pub const PRIQS_SHIFT: u32 = 11;
    pub const EVTQS_SHIFT: u32 = 16;
    pub const CMDQS_SHIFT: u32 = 21;
    pub const REL: u32 = 1 << 28;
    pub const QUEUES_PRESET: u32 = 1 << 29;
    pub const TABLES_PRESET: u32 = 1 << 30;
}

pub mod idr3 {
    pub const RIL: u32 = 1 << 10;
}

pub mod idr5 {
    pub const OAS_MASK: u32 = 7;
    pub const GRAN4K: u32 = 1 << 4;
    pub const GRAN16K: u32 = 1 << 5;
    pub const GRAN64K: u32 = 1 << 6;

    /// IDR5.OAS encoding as a number of bits (§6.3.6).
    pub fn oas_bits(enc: u32) -> Option<u8> {
        match enc {
            0 => Some(32),
            1 => Some(36),
            2 => Some(40),
            3 => Some(42),
            4 => Some(44),
            5 => Some(48),
            6 => Some(52),
            _ => None,
        }
    }

    /// The encoding of `bits` as IDR5.OAS / CD.IPS / STE.S2PS use it.
    pub fn encode_bits(bits: u8) -> u64 {
        match bits {
            0..=32 => 0,
            33..=36 => 1,
            37..=40 => 2,
            41..=42 => 3,
            43..=44 => 4,
            45..=48 => 5,
            _ => 6,
        }
    }
}

pub mod cr0 {
    pub const SMMUEN: u32 = 1 << 0;
    pub const PRIQEN: u32 = 1 << 1;
    pub const EVTQEN: u32 = 1 << 2;
    pub const CMDQEN: u32 = 1 << 3;
    pub const ATSCHK: u32 = 1 << 4;
}

pub mod cr1 {
    /// Inner shareable, write-back tables and queues, as Linux programs them.
    pub const LINUX_DEFAULT: u32 = (3 << 10) | (1 << 8) | (1 << 6) | (3 << 4) | (1 << 2) | 1;
}

pub mod cr2 {
    pub const E2H: u32 = 1 << 0;
    pub const RECINVSID: u32 = 1 << 1;
    pub const PTM: u32 = 1 << 2;
}

pub mod gbpa {
    pub const ABORT: u32 = 1 << 20;
    pub const UPDATE: u32 = 1 << 31;
}

pub mod irq_ctrl {
    pub const GERROR_IRQEN: u32 = 1 << 0;
    pub const PRIQ_IRQEN: u32 = 1 << 1;
    pub const EVTQ_IRQEN: u32 = 1 << 2;
}

pub mod gerror {
    pub const CMDQ_ERR: u32 = 1 << 0;
    pub const EVTQ_ABT_ERR: u32 = 1 << 2;
    pub const PRIQ_ABT_ERR: u32 = 1 << 3;
    pub const MSI_CMDQ_ABT_ERR: u32 = 1 << 4;
    pub const MSI_EVTQ_ABT_ERR: u32 = 1 << 5;
    pub const MSI_PRIQ_ABT_ERR: u32 = 1 << 6;
    pub const MSI_GERROR_ABT_ERR: u32 = 1 << 7;
    pub const SFM_ERR: u32 = 1 << 8;
    /// Every defined error bit.
    pub const ERR_MASK: u32 = 0x1fd;
}

pub mod strtab {
    /// STRTAB_BASE_CFG.FMT (bits 17:16).
    pub const FMT_LINEAR: u32 = 0;
    pub const FMT_2LVL: u32 = 1;
    pub const FMT_SHIFT: u32 = 16;
    pub const SPLIT_SHIFT: u32 = 6;
    /// STRTAB_BASE.RA.
    pub const BASE_RA: u64 = 1 << 62;
    /// Bytes per STE.
    pub const STE_SIZE: u64 = 64;
    /// Linux's split: one level-2 table per PCI bus.
    pub const SPLIT: u32 = 8;
}

/// Queue registers: BASE.ADDR bits 51:5, LOG2SIZE 4:0, RA/WA bit 62; PROD/CONS index + wrap bit.
pub mod q {
    pub const BASE_RWA: u64 = 1 << 62;
    pub const BASE_ADDR_MASK: u64 = 0x000f_ffff_ffff_ffe0;
    /// EVTQ_PROD.OVFLG / EVTQ_CONS.OVACKFLG.
    pub const OVF: u32 = 1 << 31;
    /// CMDQ_CONS.ERR (bits 30:24).
    pub const CONS_ERR_SHIFT: u32 = 24;
    pub const CONS_ERR_MASK: u32 = 0x7f << CONS_ERR_SHIFT;
    pub const CERROR_NONE: u32 = 0;
    pub const CERROR_ILL: u32 = 1;
    pub const CERROR_ABT: u32 = 2;
    pub const CERROR_ATC_INV_SYNC: u32 = 3;
    /// Bytes per command / event record.
    pub const CMD_SIZE: u64 = 16;
    pub const EVT_SIZE: u64 = 32;
}

/// Stream table entry (§5.2): dword 0..3 fields.
pub mod ste {
    pub const V: u64 = 1 << 0;
    pub const CFG_SHIFT: u32 = 1;
    pub const CFG_ABORT: u64 = 0;
    pub const CFG_BYPASS: u64 = 4;
    pub const CFG_S1: u64 = 5;
    pub const CFG_S2: u64 = 6;
    pub const CFG_NESTED: u64 = 7;
    /// S1Fmt bits 5:4: 0 linear CD table, 1 two-level with 4 KiB leaves, 2 two-level with 64 KiB leaves.
    pub const S1FMT_SHIFT: u32 = 4;
    pub const S1FMT_LINEAR: u64 = 0;
    pub const S1FMT_4K_L2: u64 = 1;
    pub const S1CTXPTR_MASK: u64 = 0x000f_ffff_ffff_ffc0;
    pub const S1CDMAX_SHIFT: u32 = 59;
    /// Dword 1: S1DSS bits 1:0.
    pub const S1DSS_TERMINATE: u64 = 0;
    pub const S1DSS_BYPASS: u64 = 1;
    pub const S1DSS_SSID0: u64 = 2;
    /// Dword 1: S1CIR/S1COR write-back, S1CSH inner shareable.
    pub const S1_CACHE_WB: u64 = (1 << 2) | (1 << 4) | (3 << 6);
    /// Dword 1: STRW bits 31:30 (0 = NS-EL1).
    pub const STRW_SHIFT: u32 = 30;
    /// Dword 1: SHCFG bits 45:44 (1 = use incoming).
    pub const SHCFG_INCOMING: u64 = 1 << 44;
    /// Dword 2: S2VMID bits 15:0, VTCR bits 50:32.
    pub const VTCR_SHIFT: u32 = 32;
    pub const S2AA64: u64 = 1 << 51;
    pub const S2ENDI: u64 = 1 << 52;
    pub const S2AFFD: u64 = 1 << 53;
    pub const S2PTW: u64 = 1 << 54;
    pub const S2R: u64 = 1 << 58;
    /// Dword 3: S2TTB bits 51:4.
    pub const S2TTB_MASK: u64 = 0x000f_ffff_ffff_fff0;
}

/// Context descriptor (§5.4).
pub mod cd {
    pub const T0SZ_SHIFT: u32 = 0;
    pub const TG0_SHIFT: u32 = 6;
    /// IRGN0/ORGN0 write-back (bits 9:8, 11:10), SH0 inner shareable (13:12).
    pub const WALK_WB: u64 = (1 << 8) | (1 << 10) | (3 << 12);
    pub const EPD1: u64 = 1 << 30;
    pub const V: u64 = 1 << 31;
    pub const IPS_SHIFT: u32 = 32;
    pub const AA64: u64 = 1 << 41;
    pub const HD: u64 = 1 << 42;
    pub const HA: u64 = 1 << 43;
    pub const R: u64 = 1 << 45;
    pub const A: u64 = 1 << 46;
    pub const ASET: u64 = 1 << 47;
    pub const ASID_SHIFT: u32 = 48;
    pub const TTB_MASK: u64 = 0x000f_ffff_ffff_fff0;
    /// Bytes per CD.
    pub const SIZE: u64 = 64;
    /// Level-1 CD descriptor: V bit 0, L2Ptr bits 51:12.
    pub const L1_V: u64 = 1;
    pub const L1_PTR_MASK: u64 = 0x000f_ffff_ffff_f000;
    /// CDs per level-2 table with S1Fmt = 4 KiB leaves.
    pub const L2_ENTRIES: u32 = 64;
}

/// Command opcodes (§4).
pub mod op {
    pub const PREFETCH_CFG: u8 = 0x01;
    pub const CFGI_STE: u8 = 0x03;
    pub const CFGI_ALL: u8 = 0x04;
    pub const CFGI_CD: u8 = 0x05;
    pub const CFGI_CD_ALL: u8 = 0x06;
    pub const TLBI_NH_ALL: u8 = 0x10;
    pub const TLBI_NH_ASID: u8 = 0x11;
    pub const TLBI_NH_VA: u8 = 0x12;
    pub const TLBI_EL2_ALL: u8 = 0x20;
    pub const TLBI_S12_VMALL: u8 = 0x28;
    pub const TLBI_S2_IPA: u8 = 0x2a;
    pub const TLBI_NSNH_ALL: u8 = 0x30;
    pub const CMD_SYNC: u8 = 0x46;
}

/// Event ids (§7.3).
pub mod evt {
    pub const F_UUT: u8 = 0x01;
    pub const C_BAD_STREAMID: u8 = 0x02;
    pub const F_STE_FETCH: u8 = 0x03;
    pub const C_BAD_STE: u8 = 0x04;
    pub const F_STREAM_DISABLED: u8 = 0x06;
    pub const C_BAD_SUBSTREAMID: u8 = 0x08;
    pub const F_CD_FETCH: u8 = 0x09;
    pub const C_BAD_CD: u8 = 0x0a;
    pub const F_WALK_EABT: u8 = 0x0b;
    pub const F_TRANSLATION: u8 = 0x10;
    pub const F_ADDR_SIZE: u8 = 0x11;
    pub const F_ACCESS: u8 = 0x12;
    pub const F_PERMISSION: u8 = 0x13;
    pub const F_TLB_CONFLICT: u8 = 0x20;
    pub const F_CFG_CONFLICT: u8 = 0x21;

    /// The event's name as IHI0070 §7.3 spells it.
    pub fn name(id: u8) -> &'static str {
        match id {
            F_UUT => "F_UUT",
            C_BAD_STREAMID => "C_BAD_STREAMID",
            F_STE_FETCH => "F_STE_FETCH",
            C_BAD_STE => "C_BAD_STE",
            0x05 => "F_BAD_ATS_TREQ",
            F_STREAM_DISABLED => "F_STREAM_DISABLED",
            0x07 => "F_TRANSL_FORBIDDEN",
            C_BAD_SUBSTREAMID => "C_BAD_SUBSTREAMID",
            F_CD_FETCH => "F_CD_FETCH",
            C_BAD_CD => "C_BAD_CD",
            F_WALK_EABT => "F_WALK_EABT",
            F_TRANSLATION => "F_TRANSLATION",
            F_ADDR_SIZE => "F_ADDR_SIZE",
            F_ACCESS => "F_ACCESS",
            F_PERMISSION => "F_PERMISSION",
            F_TLB_CONFLICT => "F_TLB_CONFLICT",
            F_CFG_CONFLICT => "F_CFG_CONFLICT",
            0x24 => "E_PAGE_REQUEST",
            0x25 => "F_VMS_FETCH",
            _ => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_and_prep_round_trip() {
        assert_eq!(field(0xabcd_0000, 31, 16), 0xabcd);
        assert_eq!(prep(0x1ff, 7, 0), 0xff);
        assert_eq!(prep(3, 45, 44), 3 << 44);
        assert_eq!(field(u64::MAX, 63, 0), u64::MAX);
    }

    #[test]
    fn oas_encoding_round_trips() {
        for bits in [32u8, 36, 40, 42, 44, 48, 52] {
            assert_eq!(idr5::oas_bits(idr5::encode_bits(bits) as u32), Some(bits));
        }
        assert_eq!(idr5::oas_bits(7), None);
    }
}
