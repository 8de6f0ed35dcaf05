//! TCE tables in guest memory: the bounded walker (DMA, lookup, dump) and the entry accessors.
//! The hypercalls write the hypervisor's own tables through [`super::hvtable`].
//!
//! Format (arch/powerpc/include/asm/tce.h, powernv pci-ioda-tce.c): every entry is a big-endian
//! u64. A leaf TCE holds the real page address in bits 63:12, TCE_PCI_WRITE (bit 1) and TCE_PCI_READ
//! (bit 0); bits 11:2 are ignored. A level table has 2^k entries (`entry_bits` = k); a non-leaf
//! entry is the next level's address (bits 63:12) | R | W and is valid if either bit is set. The
//! TCE index is split most-significant level first, as pnv_tce() does: level `l` of `n` (0 = top)
//! uses index bits [(n-1-l)k, (n-l)k).

use serde::Serialize;

use super::window::{Geometry, MAX_LEVELS};
use crate::mem::DmaMemory;

/// TCE_PCI_READ: the device may read the page (DMA to the device).
pub const TCE_READ: u64 = 0x1;
/// TCE_PCI_WRITE: the device may write the page.
pub const TCE_WRITE: u64 = 0x2;
/// Address bits of a TCE or a non-leaf entry.
pub const TCE_ADDR_MASK: u64 = !0xfff;

/// Whether an entry grants any access (a TCE with neither bit is not mapped).
pub fn valid(entry: u64) -> bool {
    entry & (TCE_READ | TCE_WRITE) != 0
}

/// One table entry the walk read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LevelRead {
    /// 0 = top level; the last read of a complete walk is the leaf TCE.
    pub level: u8,
    /// The level table's base.
    pub table: u64,
    /// Index into it.
    pub index: u64,
    /// Guest-physical address of the entry.
    pub address: u64,
    /// Its raw value (big-endian in memory, shown as a number).
    pub entry: u64,
}

/// How a walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum WalkEnd {
    /// The leaf TCE (valid or not) was read.
    Leaf { tce: u64 },
    /// The window has no table yet (hypervisor tables are allocated on the first H_PUT_TCE).
    NoTable,
    /// A non-leaf entry at `level` has neither R nor W: nothing below is mapped.
    LevelInvalid { level: u8 },
    /// The entry at `address` (`level`) is not in guest RAM: a bad table pointer.
    OutsideRam { level: u8, address: u64 },
}

/// Index into the level-`level` table (0 = top) of a walk with `levels` levels.
pub fn level_index(index: u64, level: u8, levels: u8, entry_bits: u32) -> u64 {
    let shift = u32::from(levels.saturating_sub(1).saturating_sub(level)) * entry_bits;
    let mask = 1u64.checked_shl(entry_bits).map_or(u64::MAX, |m| m - 1);
    index.checked_shr(shift).unwrap_or(0) & mask
}

/// Reads the big-endian entry at `addr`.
pub fn read_entry(mem: &dyn DmaMemory, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    mem.read(addr, &mut b).ok()?;
    Some(u64::from_be_bytes(b))
}

/// Writes the big-endian entry at `addr`.
pub fn write_entry(mem: &dyn DmaMemory, addr: u64, v: u64) -> bool {
    mem.write(addr, &v.to_be_bytes()).is_ok()
}

/// Address of entry `idx` of the table at `table` (`None` if it wraps).
fn entry_addr(table: u64, idx: u64) -> Option<u64> {
    table.checked_add(idx.checked_mul(8)?)
}

/// Walks the table for TCE `index`: at most [`MAX_LEVELS`] reads, no writes.
pub fn walk(mem: &dyn DmaMemory, geo: Geometry, index: u64) -> (Vec<LevelRead>, WalkEnd) {
    let mut reads = Vec::new();
    let Some(mut table) = geo.table else {
        return (reads, WalkEnd::NoTable);
    };
    let levels = geo.levels.clamp(1, MAX_LEVELS);
    for level in 0..levels {
        let idx = level_index(index, level, levels, geo.entry_bits);
        let Some(address) = entry_addr(table, idx) else {
            return (
                reads,
                WalkEnd::OutsideRam {
                    level,
                    address: table,
                },
            );
        };
        let Some(entry) = read_entry(mem, address) else {
            return (reads, WalkEnd::OutsideRam { level, address });
        };
        reads.push(LevelRead {
            level,
            table,
            index: idx,
            address,
            entry,
        });
        if level + 1 == levels {
            return (reads, WalkEnd::Leaf { tce: entry });
        }
        if !valid(entry) {
            return (reads, WalkEnd::LevelInvalid { level });
        }
        table = entry & TCE_ADDR_MASK;
    }
    (reads, WalkEnd::NoTable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::TestMemory;

    fn geo(table: u64, levels: u8, entry_bits: u32) -> Geometry {
        Geometry {
            table: Some(table),
            levels,
            entry_bits,
        }
    }

    #[test]
    fn index_split_most_significant_first() {
        // 3 levels of 9 bits: index 0x1_2345 = top 0x0, mid 0x91, leaf 0x145.
        assert_eq!(level_index(0x1_2345, 0, 3, 9), 0);
        assert_eq!(level_index(0x1_2345, 1, 3, 9), 0x91);
        assert_eq!(level_index(0x1_2345, 2, 3, 9), 0x145);
        assert_eq!(
            level_index(u64::MAX, 0, 5, 27),
            0,
            "shift 108: no index bits up there"
        );
        assert_eq!(level_index(u64::MAX, 2, 5, 27), 1023, "bits 63:54");
        assert_eq!(level_index(u64::MAX, 3, 5, 27), (1 << 27) - 1);
        assert_eq!(level_index(7, 0, 1, 64), 7);
    }

    #[test]
    fn single_level_walk_is_big_endian() {
        let m = TestMemory::new(0x10000);
        m.write(0x1000 + 3 * 8, &0x4000_0003u64.to_be_bytes())
            .unwrap();
        let (reads, end) = walk(&m, geo(0x1000, 1, 9), 3);
        assert_eq!(end, WalkEnd::Leaf { tce: 0x4000_0003 });
        assert_eq!(
            reads,
            [LevelRead {
                level: 0,
                table: 0x1000,
                index: 3,
                address: 0x1018,
                entry: 0x4000_0003
            }]
        );
    }

    #[test]
    fn multi_level_walk_and_bad_pointers() {
        let m = TestMemory::new(0x10000);
        // Two levels of 9 bits; index 0x201 = top 1, leaf 1.
        write_entry(&m, 0x1000 + 8, 0x2000 | TCE_READ);
        write_entry(&m, 0x2000 + 8, 0x9000 | TCE_READ | TCE_WRITE);
        let (reads, end) = walk(&m, geo(0x1000, 2, 9), 0x201);
        assert_eq!(end, WalkEnd::Leaf { tce: 0x9003 });
        assert_eq!(reads.len(), 2);
        assert_eq!(reads[1].table, 0x2000);
        // Invalid non-leaf.
        let (reads, end) = walk(&m, geo(0x1000, 2, 9), 0x401);
        assert_eq!(end, WalkEnd::LevelInvalid { level: 0 });
        assert_eq!(reads.len(), 1);
        // A pointer outside RAM.
        write_entry(&m, 0x1000 + 16, 0x7777_0000 | TCE_WRITE);
        let (_, end) = walk(&m, geo(0x1000, 2, 9), 0x401);
        assert_eq!(
            end,
            WalkEnd::OutsideRam {
                level: 1,
                address: 0x7777_0008
            }
        );
        // A top table at the very end of the address space.
        let (reads, end) = walk(&m, geo(!0xfff, 1, 27), (1 << 27) - 1);
        assert!(reads.is_empty());
        assert!(matches!(end, WalkEnd::OutsideRam { level: 0, .. }));
        // No table.
        let g = Geometry {
            table: None,
            levels: 2,
            entry_bits: 9,
        };
        assert_eq!(walk(&m, g, 0).1, WalkEnd::NoTable);
    }

    #[test]
    fn walk_is_bounded_by_five_levels_even_for_garbage() {
        let m = TestMemory::new(0x10000);
        // Every entry of the page points back at the page itself.
        for i in 0..512 {
            write_entry(&m, 0x1000 + i * 8, 0x1000 | TCE_READ);
        }
        let (reads, end) = walk(&m, geo(0x1000, 200, 9), 5);
        assert_eq!(reads.len(), 5);
        assert_eq!(end, WalkEnd::Leaf { tce: 0x1001 });
    }
}
