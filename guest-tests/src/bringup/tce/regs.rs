//! The TCE unit's hardware view (IODA2-style PHB registers, little-endian 64-bit; iovmm's register map in the
//! TCE milestone brief) and the TCE format (Linux arch/powerpc/include/asm/tce.h: `TCE_PCI_READ` = bit 0,
//! `TCE_PCI_WRITE` = bit 1, real address in bits 63:12; entries are big-endian u64 in memory).

/// `TCE_ID`: "TCE1" in bits 31:0, number of windows in bits 39:32.
pub const TCE_ID: u64 = 0x000;
pub const ID_MAGIC: u32 = 0x5443_4531;
/// `TCE_PAGE_SIZES`: bit n set = page shift n offered.
pub const TCE_PAGE_SIZES: u64 = 0x008;
/// `TCE_PE_STATE` (ro).
pub const TCE_PE_STATE: u64 = 0x010;
pub const PE_STATE_FROZEN: u64 = 1 << 0;
pub const PE_STATE_REASON_SHIFT: u32 = 8;
pub const PE_STATE_EEH_FREEZE: u64 = 1 << 16;
/// `TCE_PE_CTRL` (wo): bit 0 = PE reset (unfreeze, clear the error log).
pub const TCE_PE_CTRL: u64 = 0x018;
pub const PE_CTRL_RESET: u64 = 1 << 0;
/// The error log (first error since the last PE reset).
pub const TCE_ERR_IOBA: u64 = 0x020;
pub const TCE_ERR_INFO: u64 = 0x028;
pub const TCE_ERR_COUNT: u64 = 0x030;
pub const ERR_INFO_WRITE: u64 = 1 << 32;
pub const ERR_INFO_VALID: u64 = 1 << 33;
/// `TCE_KILL` (wo): bit 63 kill all, else bit 62 kill `[TCE_KILL_START, TCE_KILL_END)`.
pub const TCE_KILL: u64 = 0x040;
pub const TCE_KILL_START: u64 = 0x048;
pub const TCE_KILL_END: u64 = 0x050;
pub const KILL_ALL: u64 = 1 << 63;
pub const KILL_RANGE: u64 = 1 << 62;

/// Translation validation entry `w`'s registers.
pub const TVE_BASE_OFFSET: u64 = 0x100;
pub const TVE_STRIDE: u64 = 0x40;
pub const TVE_TABLE: u64 = 0x00;
pub const TVE_CFG: u64 = 0x08;
pub const TVE_WINDOW_BASE: u64 = 0x10;
pub const TVE_WINDOW_SIZE: u64 = 0x18;
pub const TVE_LIOBN: u64 = 0x20;
pub const TVE_STATUS: u64 = 0x28;
pub const CFG_ENABLE: u64 = 1 << 0;
pub const STATUS_ENABLED: u64 = 1 << 0;
pub const STATUS_CONFIG_ERROR: u64 = 1 << 1;

/// Offset of register `reg` of TVE `w`.
pub fn tve(w: usize, reg: u64) -> u64 {
    TVE_BASE_OFFSET + TVE_STRIDE * w as u64 + reg
}

/// `TVE_CFG` for an enabled (or disabled) window: levels in bits 3:1, page shift 15:8, log2 bytes per level
/// table 23:16.
pub fn tve_cfg(enable: bool, levels: u8, page_shift: u8, table_shift: u8) -> u64 {
    u64::from(enable)
        | (u64::from(levels & 7) << 1)
        | (u64::from(page_shift) << 8)
        | (u64::from(table_shift) << 16)
}

/// TCE permission bits.
pub const TCE_READ: u64 = 1 << 0;
pub const TCE_WRITE: u64 = 1 << 1;
/// The real address bits of a TCE or a non-leaf entry.
pub const TCE_RPN_MASK: u64 = !0xfff;

/// A decoded `TCE_ERR_INFO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrInfo {
    pub reason: u8,
    pub source: u16,
    pub write: bool,
    pub valid: bool,
    /// The window the IOBA fell in (`None`: outside every window).
    pub window: Option<usize>,
}

impl ErrInfo {
    pub fn decode(v: u64) -> Self {
        let w = (v >> 40) & 3;
        Self {
            reason: v as u8,
            source: (v >> 16) as u16,
            write: v & ERR_INFO_WRITE != 0,
            valid: v & ERR_INFO_VALID != 0,
            window: (w != 0).then(|| (w - 1) as usize),
        }
    }
}

impl std::fmt::Display for ErrInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reason {:#x} source {:#06x} {} valid={} window {:?}",
            self.reason,
            self.source,
            if self.write { "write" } else { "read" },
            self.valid,
            self.window
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tve_layout() {
        assert_eq!(tve(0, TVE_TABLE), 0x100);
        assert_eq!(tve(1, TVE_CFG), 0x148);
        assert_eq!(tve(1, TVE_STATUS), 0x168);
        assert_eq!(tve_cfg(true, 3, 21, 12), 0x0c_1507);
        assert_eq!(tve_cfg(false, 1, 12, 15), 0x0f_0c02);
    }

    #[test]
    fn err_info_fields() {
        let e = ErrInfo::decode(0x0000_0203_0018_0042);
        assert_eq!(
            e,
            ErrInfo {
                reason: 0x42,
                source: 0x18,
                write: true,
                valid: true,
                window: Some(1)
            }
        );
        let e = ErrInfo::decode(0x0000_0002_0018_0001);
        assert_eq!((e.window, e.write, e.valid), (None, false, true));
    }
}
