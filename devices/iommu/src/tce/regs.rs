//! The hardware view's register map (an IODA2-style PHB reduced to what bring-up needs): 64-bit
//! little-endian registers in a 4 KiB window; 4-byte accesses reach either half.
//!
//! | off | name | access | meaning |
//! |---|---|---|---|
//! | 0x000 | TCE_ID | ro | 0x5443_4531 ("TCE1") in bits 31:0, number of windows (2) in bits 39:32 |
//! | 0x008 | TCE_PAGE_SIZES | ro | bit n set = page shift n offered |
//! | 0x010 | TCE_PE_STATE | ro | bit 0 FROZEN, bits 15:8 freeze reason, bit 16 EEH mode (1 = freeze) |
//! | 0x018 | TCE_PE_CTRL | wo | bit 0 = PE reset (unfreeze, clear the error log) |
//! | 0x020 | TCE_ERR_IOBA | ro | IOBA of the first error since the last reset |
//! | 0x028 | TCE_ERR_INFO | ro | 7:0 reason, 31:16 source id, 32 write, 33 valid, 41:40 window+1 |
//! | 0x030 | TCE_ERR_COUNT | ro | errors since reset (saturating) |
//! | 0x040 | TCE_KILL | wo | bit 63 kill all; else bit 62 kill [TCE_KILL_START, TCE_KILL_END) |
//! | 0x048 | TCE_KILL_START | rw | |
//! | 0x050 | TCE_KILL_END | rw | exclusive |
//! | 0x100 + 0x40*w | TVE_TABLE | rw | top-level table base, 4 KiB aligned |
//! | +0x08 | TVE_CFG | rw | 0 ENABLE, 3:1 levels, 15:8 page shift, 23:16 log2(bytes per level table) |
//! | +0x10 | TVE_BASE | rw | window bus offset |
//! | +0x18 | TVE_SIZE | rw | window size |
//! | +0x20 | TVE_LIOBN | ro | the window's LIOBN |
//! | +0x28 | TVE_STATUS | ro | 0 enabled, 1 config error, 15:8 error code ([`tve_error`]) |
//!
//! 4-byte writes: a write to one half of a read/write register replaces that half and keeps the
//! other (as read back); of a write-only register, the other half is 0. **Exception: TVE_CFG's high
//! half (bits 63:32) is reserved, and a 4-byte write to it alone is ignored**
//! ([`ignores_half_write`]): it does not rewrite the low half (which holds ENABLE), so it neither
//! re-runs the enable validation nor clears TVE_STATUS's error after a refused enable. Only a write
//! that reaches bits 31:0 (8 bytes, or the low half) is a TVE_CFG write.

/// Size of the register window.
pub const TCE_MMIO_SIZE: u64 = 0x1000;

pub const TCE_ID: u64 = 0x000;
pub const TCE_PAGE_SIZES: u64 = 0x008;
pub const TCE_PE_STATE: u64 = 0x010;
pub const TCE_PE_CTRL: u64 = 0x018;
pub const TCE_ERR_IOBA: u64 = 0x020;
pub const TCE_ERR_INFO: u64 = 0x028;
pub const TCE_ERR_COUNT: u64 = 0x030;
pub const TCE_KILL: u64 = 0x040;
pub const TCE_KILL_START: u64 = 0x048;
pub const TCE_KILL_END: u64 = 0x050;
/// First TVE; window `w`'s registers start at `TVE_BASE_OFFSET + TVE_STRIDE * w`.
pub const TVE_BASE_OFFSET: u64 = 0x100;
pub const TVE_STRIDE: u64 = 0x40;
pub const TVE_TABLE: u64 = 0x00;
pub const TVE_CFG: u64 = 0x08;
pub const TVE_BASE: u64 = 0x10;
pub const TVE_SIZE: u64 = 0x18;
pub const TVE_LIOBN: u64 = 0x20;
pub const TVE_STATUS: u64 = 0x28;

/// "TCE1".
pub const ID_MAGIC: u64 = 0x5443_4531;
/// TCE_PE_CTRL bit 0: PE reset.
pub const PE_CTRL_RESET: u64 = 1;
/// TCE_KILL bit 63: invalidate the whole TCE cache.
pub const KILL_ALL: u64 = 1 << 63;
/// TCE_KILL bit 62: invalidate the TCEs of IOBAs in [TCE_KILL_START, TCE_KILL_END).
pub const KILL_RANGE: u64 = 1 << 62;
/// TVE_CFG bit 0.
pub const CFG_ENABLE: u64 = 1;
/// TVE_STATUS bits.
pub const STATUS_ENABLED: u64 = 1;
pub const STATUS_ERROR: u64 = 1 << 1;

/// TVE_STATUS bits 15:8: why the last TVE_CFG write with ENABLE was refused.
pub mod tve_error {
    /// The page shift is not offered (TCE_PAGE_SIZES).
    pub const PAGE_SIZE: u8 = 1;
    /// Levels not in 1..=5.
    pub const LEVELS: u8 = 2;
    /// log2(bytes per level table) not in 12..=30.
    pub const TABLE_SIZE: u8 = 3;
    /// Table base not 4 KiB aligned, or the top-level table not in RAM.
    pub const TABLE_BASE: u8 = 4;
    /// Window bus offset not aligned to the page size.
    pub const WINDOW_BASE: u8 = 5;
    /// Window size not a power of two >= the page size, or base + size wraps.
    pub const WINDOW_SIZE: u8 = 6;
    /// The window has more TCEs than `levels` tables of this size can index.
    pub const INDEX_BITS: u8 = 7;
    /// The window overlaps the other enabled window.
    pub const OVERLAP: u8 = 8;

    /// Short name of a code.
    pub fn name(code: u8) -> &'static str {
        match code {
            0 => "none",
            PAGE_SIZE => "page size not offered",
            LEVELS => "levels not 1..=5",
            TABLE_SIZE => "level table size not 4 KiB..1 GiB",
            TABLE_BASE => "table base misaligned or outside RAM",
            WINDOW_BASE => "window base not page aligned",
            WINDOW_SIZE => "window size not a power of two >= page, or wraps",
            INDEX_BITS => "window larger than the table can index",
            OVERLAP => "overlaps the other window",
            _ => "unknown",
        }
    }
}

/// TVE_CFG fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TveCfg {
    pub enable: bool,
    pub levels: u8,
    pub page_shift: u8,
    pub table_shift: u8,
}

impl TveCfg {
    pub fn decode(v: u64) -> Self {
        Self {
            enable: v & CFG_ENABLE != 0,
            levels: ((v >> 1) & 7) as u8,
            page_shift: ((v >> 8) & 0xff) as u8,
            table_shift: ((v >> 16) & 0xff) as u8,
        }
    }

    pub fn encode(self) -> u64 {
        u64::from(self.enable)
            | u64::from(self.levels & 7) << 1
            | u64::from(self.page_shift) << 8
            | u64::from(self.table_shift) << 16
    }
}

/// Which register an (8-byte aligned) offset names: a global one, or a TVE register of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    Global(u64),
    Tve { window: usize, reg: u64 },
    None,
}

/// Decodes the 8-byte-aligned `offset` for a unit with `windows` TVEs.
pub fn decode(offset: u64, windows: usize) -> Reg {
    match offset {
        TCE_ID | TCE_PAGE_SIZES | TCE_PE_STATE | TCE_PE_CTRL | TCE_ERR_IOBA | TCE_ERR_INFO
        | TCE_ERR_COUNT | TCE_KILL | TCE_KILL_START | TCE_KILL_END => Reg::Global(offset),
        o if o >= TVE_BASE_OFFSET => {
            let rel = o - TVE_BASE_OFFSET;
            let window = (rel / TVE_STRIDE) as usize;
            let reg = rel % TVE_STRIDE;
            if window < windows && reg <= TVE_STATUS {
                Reg::Tve { window, reg }
            } else {
                Reg::None
            }
        }
        _ => Reg::None,
    }
}

/// Whether a 4-byte write to the `high` (bits 63:32) or low half of `reg` is ignored: only the
/// reserved high half of TVE_CFG (module docs).
pub fn ignores_half_write(reg: Reg, high: bool) -> bool {
    high && matches!(reg, Reg::Tve { reg: TVE_CFG, .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfg_round_trip() {
        let c = TveCfg {
            enable: true,
            levels: 3,
            page_shift: 21,
            table_shift: 12,
        };
        assert_eq!(c.encode(), 0x0c_1507);
        assert_eq!(TveCfg::decode(c.encode()), c);
        // Reserved bits are dropped.
        assert_eq!(TveCfg::decode(0xffff_ffff_ff00_0000), TveCfg::default());
    }

    #[test]
    fn offsets_decode() {
        assert_eq!(decode(0x40, 2), Reg::Global(TCE_KILL));
        assert_eq!(decode(0x38, 2), Reg::None);
        assert_eq!(decode(0x100, 2), Reg::Tve { window: 0, reg: 0 });
        assert_eq!(
            decode(0x168, 2),
            Reg::Tve {
                window: 1,
                reg: TVE_STATUS
            }
        );
        assert_eq!(decode(0x130, 2), Reg::None, "past TVE_STATUS");
        assert_eq!(decode(0x180, 2), Reg::None, "a third window");
        assert_eq!(decode(!7, 2), Reg::None);
        let cfg1 = decode(0x148, 2);
        assert!(ignores_half_write(cfg1, true));
        assert!(!ignores_half_write(cfg1, false));
        assert!(
            !ignores_half_write(decode(0x158, 2), true),
            "TVE_SIZE's high half is real"
        );
        assert!(!ignores_half_write(decode(TCE_KILL, 2), true));
        assert_eq!(
            tve_error::name(tve_error::OVERLAP),
            "overlaps the other window"
        );
    }
}
