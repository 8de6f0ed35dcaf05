//! AArch64 VMSAv8-64 translation tables built by the driver (Arm ARM D8; the descriptor formats Linux's
//! io-pgtable-arm.c uses): stage 1 (AP/nG/AF) or stage 2 (S2AP/MemAttr/AF), 4K, 16K or 64K granule, pages and
//! blocks, read-only leaves. Tables live in the driver's RAM window; the addresses written into descriptors
//! (and into TTB fields) are the tables' physical addresses plus `addr_offset`, so stage-1 tables of a nested
//! configuration can be expressed in IPA space that stage 2 maps back onto them.

use super::alloc::{zalloc, PageAlloc};
use super::backend::Backend;

/// Translation granule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granule {
    K4,
    K16,
    K64,
}

impl Granule {
    /// log2 of the page size.
    pub fn shift(self) -> u32 {
        match self {
            Granule::K4 => 12,
            Granule::K16 => 14,
            Granule::K64 => 16,
        }
    }

    pub fn size(self) -> u64 {
        1 << self.shift()
    }

    /// Address bits each level resolves.
    pub fn bits_per_level(self) -> u32 {
        self.shift() - 3
    }

    /// CD.TG0 / STE.S2TG encoding (§5.4, §5.2: 0 = 4KB, 1 = 64KB, 2 = 16KB).
    pub fn tg(self) -> u64 {
        match self {
            Granule::K4 => 0,
            Granule::K64 => 1,
            Granule::K16 => 2,
        }
    }
}

/// Which stage's descriptor format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    S1,
    S2,
}

/// Access a leaf grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    ReadWrite,
    ReadOnly,
}

const VALID: u64 = 1 << 0;
/// Bit 1: table (levels < 3) or page (level 3); clear for a block.
const TABLE_OR_PAGE: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
/// Stage 1: AP[1] (EL0 / unprivileged access), AP[2] (read-only), nG (the entry belongs to the ASID).
const S1_AP_UNPRIV: u64 = 1 << 6;
const S1_AP_RDONLY: u64 = 1 << 7;
const S1_NG: u64 = 1 << 11;
/// Stage 2: S2AP read / write, MemAttr normal write-back.
const S2_AP_READ: u64 = 1 << 6;
const S2_AP_WRITE: u64 = 1 << 7;
const S2_MEMATTR_WB: u64 = 0xf << 2;

/// One translation table tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageTable {
    pub stage: Stage,
    pub granule: Granule,
    /// Input address size in bits.
    pub ias: u32,
    /// Physical address of the root table.
    pub root: u64,
    /// Added to a table's physical address wherever the SMMU is given its address (0 unless nested).
    pub addr_offset: u64,
    /// Level the walk starts at.
    pub start: u32,
}

impl PageTable {
    /// An empty tree (one zeroed root table).
    pub fn new(
        b: &mut dyn Backend,
        a: &mut PageAlloc,
        stage: Stage,
        granule: Granule,
        ias: u32,
        addr_offset: u64,
    ) -> Result<Self, String> {
        let mut t = PageTable {
            stage,
            granule,
            ias,
            root: 0,
            addr_offset,
            start: 0,
        };
        t.start = 4 - t.levels();
        // Stage 2 concatenates up to 16 tables at the next level instead of starting a level higher, as
        // io-pgtable-arm does (and as the Arm ARM requires for a 4K level-0 start on a small PA).
        if stage == Stage::S2
            && t.start < 3
            && ias.saturating_sub(t.level_shift(t.start + 1)) <= granule.bits_per_level() + 4
        {
            t.start += 1;
        }
        let size = t.table_size(t.start);
        let root = zalloc(b, a, size, size)?;
        Ok(PageTable { root, ..t })
    }

    /// Number of levels needed for `ias` bits (no concatenated tables).
    pub fn levels(&self) -> u32 {
        let bits = self.ias.saturating_sub(self.granule.shift());
        bits.div_ceil(self.granule.bits_per_level()).max(1)
    }

    /// The level the walk starts at (0..=3).
    pub fn start_level(&self) -> u32 {
        self.start
    }

    /// Bytes in a table at `level`: a granule, or the concatenated tables of a stage-2 start level.
    fn table_size(&self, level: u32) -> u64 {
        if level == self.start {
            let width = self.ias.saturating_sub(self.level_shift(level));
            (8u64 << width).max(self.granule.size())
        } else {
            self.granule.size()
        }
    }

    /// Lowest address bit `level` resolves.
    pub fn level_shift(&self, level: u32) -> u32 {
        self.granule.shift() + (3 - level) * self.granule.bits_per_level()
    }

    /// The address the SMMU is given for the root (TTB0 / S2TTB).
    pub fn ttb(&self) -> u64 {
        self.root + self.addr_offset
    }

    /// Table / output address field of a descriptor for this granule (bits 47:shift).
    fn out_mask(&self) -> u64 {
        ((1u64 << 48) - 1) & !(self.granule.size() - 1)
    }

    fn index(&self, iova: u64, level: u32) -> u64 {
        let width = if level == self.start_level() {
            self.ias - self.level_shift(level)
        } else {
            self.granule.bits_per_level()
        };
        (iova >> self.level_shift(level)) & ((1u64 << width) - 1)
    }

    /// Leaf descriptor for `out` at `level`.
    pub fn leaf(&self, out: u64, level: u32, perm: Perm) -> u64 {
        let kind = if level == 3 { TABLE_OR_PAGE } else { 0 };
        let attrs = match self.stage {
            Stage::S1 => {
                S1_AP_UNPRIV
                    | S1_NG
                    | if perm == Perm::ReadOnly {
                        S1_AP_RDONLY
                    } else {
                        0
                    }
            }
            Stage::S2 => {
                S2_MEMATTR_WB
                    | S2_AP_READ
                    | if perm == Perm::ReadWrite {
                        S2_AP_WRITE
                    } else {
                        0
                    }
            }
        };
        VALID | kind | attrs | SH_INNER | AF | (out & self.out_mask())
    }

    /// The level whose block (or page) size is `size`.
    fn level_for(&self, size: u64) -> Result<u32, String> {
        (self.start_level().max(1)..=3)
            .find(|&l| 1u64 << self.level_shift(l) == size)
            .ok_or_else(|| {
                format!(
                    "{size:#x} is not a page or block size of a {:?} granule",
                    self.granule
                )
            })
    }

    /// Physical address of the descriptor slot mapping `iova` at the level of `size`, creating tables on
    /// the way. Fails if a block already covers it.
    pub fn slot(
        &self,
        b: &mut dyn Backend,
        a: &mut PageAlloc,
        iova: u64,
        size: u64,
    ) -> Result<(u64, u32), String> {
        let target = self.level_for(size)?;
        if iova >> self.ias != 0 {
            return Err(format!(
                "IOVA {iova:#x} is beyond the {}-bit input range",
                self.ias
            ));
        }
        let mut table = self.root;
        let mut level = self.start_level();
        loop {
            let slot = table + 8 * self.index(iova, level);
            if level == target {
                return Ok((slot, level));
            }
            let d = b.mem_read_u64(slot)?;
            table = if d & VALID == 0 {
                let t = zalloc(b, a, self.table_size(level + 1), self.granule.size())?;
                b.mem_write_u64(
                    slot,
                    VALID | TABLE_OR_PAGE | ((t + self.addr_offset) & self.out_mask()),
                )?;
                t
            } else if d & TABLE_OR_PAGE == 0 {
                return Err(format!(
                    "IOVA {iova:#x}: a level-{level} block is in the way"
                ));
            } else {
                (d & self.out_mask()) - self.addr_offset
            };
            level += 1;
        }
    }

    /// Maps `[iova, iova + size)` to `out` with one page or block of `size`.
    pub fn map(
        &self,
        b: &mut dyn Backend,
        a: &mut PageAlloc,
        iova: u64,
        out: u64,
        size: u64,
        perm: Perm,
    ) -> Result<u64, String> {
        if !iova.is_multiple_of(size) || !out.is_multiple_of(size) {
            return Err(format!(
                "map {iova:#x} -> {out:#x}: not aligned to {size:#x}"
            ));
        }
        let (slot, level) = self.slot(b, a, iova, size)?;
        b.mem_write_u64(slot, self.leaf(out, level, perm))?;
        Ok(slot)
    }

    /// Maps a range with pages of `page` bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn map_range(
        &self,
        b: &mut dyn Backend,
        a: &mut PageAlloc,
        iova: u64,
        out: u64,
        len: u64,
        page: u64,
        perm: Perm,
    ) -> Result<(), String> {
        let mut off = 0;
        while off < len {
            self.map(b, a, iova + off, out + off, page, perm)?;
            off += page;
        }
        Ok(())
    }

    /// Software walk: the output address of `iova`, if mapped (for checking the driver's own tables).
    pub fn walk(&self, b: &mut dyn Backend, iova: u64) -> Result<Option<u64>, String> {
        let mut table = self.root;
        for level in self.start_level()..=3 {
            let d = b.mem_read_u64(table + 8 * self.index(iova, level))?;
            if d & VALID == 0 {
                return Ok(None);
            }
            let shift = self.level_shift(level);
            if level == 3 || d & TABLE_OR_PAGE == 0 {
                return Ok(Some(
                    (d & self.out_mask() & !((1u64 << shift) - 1)) | (iova & ((1u64 << shift) - 1)),
                ));
            }
            table = (d & self.out_mask()) - self.addr_offset;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bringup::host::HostBackend;

    fn pt(b: &mut HostBackend, a: &mut PageAlloc, g: Granule, ias: u32) -> PageTable {
        PageTable::new(b, a, Stage::S1, g, ias, 0).unwrap()
    }

    #[test]
    fn levels_and_shifts() {
        let mut b = HostBackend::new(Default::default()).unwrap();
        let mut a = PageAlloc::new(b.mem_base(), b.mem_size());
        let t = pt(&mut b, &mut a, Granule::K4, 48);
        assert_eq!((t.levels(), t.start_level()), (4, 0));
        assert_eq!(t.level_shift(2), 21);
        let t = pt(&mut b, &mut a, Granule::K4, 39);
        assert_eq!(t.start_level(), 1);
        let t = pt(&mut b, &mut a, Granule::K64, 48);
        assert_eq!((t.start_level(), t.level_shift(2)), (1, 29));
        let t = pt(&mut b, &mut a, Granule::K16, 48);
        assert_eq!((t.start_level(), t.level_shift(2)), (0, 25));
        let t = pt(&mut b, &mut a, Granule::K4, 32);
        assert_eq!(t.start_level(), 1);
        // Stage 2: 40 bits start at level 1 with two concatenated tables; 48 bits at level 0.
        let base = b.mem_base();
        let t = PageTable::new(&mut b, &mut a, Stage::S2, Granule::K4, 40, 0).unwrap();
        assert_eq!(t.start_level(), 1);
        assert_eq!(t.root % 0x2000, 0);
        t.map(
            &mut b,
            &mut a,
            0xff_8000_0000,
            base,
            0x1000,
            Perm::ReadWrite,
        )
        .unwrap();
        assert_eq!(t.walk(&mut b, 0xff_8000_0010).unwrap(), Some(base + 0x10));
        let t = PageTable::new(&mut b, &mut a, Stage::S2, Granule::K4, 48, 0).unwrap();
        assert_eq!(t.start_level(), 0);
    }

    #[test]
    fn map_and_walk_pages_and_blocks() {
        let mut b = HostBackend::new(Default::default()).unwrap();
        let base = b.mem_base();
        let mut a = PageAlloc::new(base, b.mem_size());
        for g in [Granule::K4, Granule::K16, Granule::K64] {
            let t = pt(&mut b, &mut a, g, 48);
            let page = g.size();
            t.map(&mut b, &mut a, 0x1234 * page, base, page, Perm::ReadWrite)
                .unwrap();
            assert_eq!(t.walk(&mut b, 0x1234 * page + 5).unwrap(), Some(base + 5));
            assert_eq!(t.walk(&mut b, 0x1235 * page).unwrap(), None);
            let block = 1u64 << t.level_shift(2);
            t.map(&mut b, &mut a, 8 * block, 0, block, Perm::ReadOnly)
                .unwrap();
            assert_eq!(t.walk(&mut b, 8 * block + 0x777).unwrap(), Some(0x777));
            assert!(t
                .map(&mut b, &mut a, 8 * block + page, 0, page, Perm::ReadOnly)
                .is_err());
            assert!(t
                .map(&mut b, &mut a, page / 2, 0, page, Perm::ReadOnly)
                .is_err());
            assert!(t
                .map(&mut b, &mut a, 0, 0, 3 * page, Perm::ReadOnly)
                .is_err());
        }
    }

    #[test]
    fn descriptor_bits() {
        let mut b = HostBackend::new(Default::default()).unwrap();
        let mut a = PageAlloc::new(b.mem_base(), b.mem_size());
        let s1 = pt(&mut b, &mut a, Granule::K4, 48);
        // Page: valid, page, AP[1], SH inner, AF, nG; read-only adds AP[2].
        assert_eq!(
            s1.leaf(0x1234_5000, 3, Perm::ReadWrite),
            0x1234_5000 | 0b11 | 1 << 6 | 3 << 8 | 1 << 10 | 1 << 11
        );
        assert_eq!(s1.leaf(0x20_0000, 2, Perm::ReadOnly) & 0b11, 0b01, "block");
        assert_ne!(s1.leaf(0x20_0000, 2, Perm::ReadOnly) & 1 << 7, 0);
        let s2 = PageTable::new(&mut b, &mut a, Stage::S2, Granule::K4, 40, 0).unwrap();
        let d = s2.leaf(0x5000, 3, Perm::ReadOnly);
        assert_eq!(d & (3 << 6), 1 << 6, "S2AP read only");
        assert_eq!(d & (0xf << 2), 0xf << 2);
    }

    #[test]
    fn nested_offsets_apply_to_table_pointers() {
        let mut b = HostBackend::new(Default::default()).unwrap();
        let mut a = PageAlloc::new(b.mem_base(), b.mem_size());
        let off = 0x40_0000_0000 - b.mem_base();
        let t = PageTable::new(&mut b, &mut a, Stage::S1, Granule::K4, 48, off).unwrap();
        assert_eq!(t.ttb(), 0x40_0000_0000 + (t.root - b.mem_base()));
        t.map(&mut b, &mut a, 0x1000, 0x9000, 0x1000, Perm::ReadWrite)
            .unwrap();
        let l0 = b.mem_read_u64(t.root).unwrap();
        assert!(l0 & 0xffff_ffff_f000 >= 0x40_0000_0000, "{l0:#x}");
        assert_eq!(t.walk(&mut b, 0x1010).unwrap(), Some(0x9010));
    }
}
