//! Stage-1 (VT-d first-stage, IA-32e format) page tables built by guest user space for a nested HWPT.
//!
//! The tables live in pages of one buffer that is mapped into the parent's IOAS, so every address stored in an
//! entry (the next table, the leaf's output) is an IOAS IOVA: a stage-2 input address. [`Stage1`] allocates
//! table pages from the start of that buffer, fills entries, finds the slot of any entry for later edits, and
//! walks the tables in software (the reference the device's translation is checked against).
//!
//! Entry format (VT-d 3.x section 9.7, the IA-32e 4- and 5-level formats): bit 0 P, 1 R/W, 2 U/S, 5 A, 6 D
//! (leaves), 7 PS (PDPTE: 1 GiB, PDE: 2 MiB; reserved in PML5E/PML4E), bits 51:12 the address. Level 5 is the
//! PML5, level 1 the page table.

use std::fmt;

/// Present.
pub const FS_P: u64 = 1 << 0;
/// Writable.
pub const FS_RW: u64 = 1 << 1;
/// User (requests without PASID are user requests: every level needs it).
pub const FS_US: u64 = 1 << 2;
/// Accessed (set by the IOMMU).
pub const FS_A: u64 = 1 << 5;
/// Dirty (set by the IOMMU in a leaf on a write).
pub const FS_D: u64 = 1 << 6;
/// Page size: the entry is a leaf at level 2 (2 MiB) or 3 (1 GiB).
pub const FS_PS: u64 = 1 << 7;
/// Address bits 51:12.
pub const FS_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Bytes in a table page, entries per table.
pub const TABLE_BYTES: u64 = 4096;
pub const ENTRIES: usize = 512;

/// Page sizes a leaf can map.
pub const SIZE_4K: u64 = 1 << 12;
pub const SIZE_2M: u64 = 1 << 21;
pub const SIZE_1G: u64 = 1 << 30;

/// The page size a leaf at `level` maps (level 1: 4 KiB, 2: 2 MiB, 3: 1 GiB).
pub fn level_size(level: u8) -> u64 {
    1u64 << (12 + 9 * (u32::from(level) - 1))
}

/// The leaf level for a page size.
pub fn leaf_level(size: u64) -> Option<u8> {
    match size {
        SIZE_4K => Some(1),
        SIZE_2M => Some(2),
        SIZE_1G => Some(3),
        _ => None,
    }
}

/// The index `iova` selects in a table at `level`.
pub fn index(iova: u64, level: u8) -> usize {
    ((iova >> (12 + 9 * (u32::from(level) - 1))) & 0x1ff) as usize
}

/// Backing memory of the table pages: `pages()` pages of 512 entries each.
pub trait TableStore {
    fn pages(&self) -> usize;
    fn read(&self, page: usize, index: usize) -> u64;
    fn write(&mut self, page: usize, index: usize, value: u64);
}

/// Table pages in a vector (host unit tests).
#[derive(Clone, Debug, Default)]
pub struct VecStore(pub Vec<[u64; ENTRIES]>);

impl VecStore {
    pub fn new(pages: usize) -> Self {
        Self(vec![[0; ENTRIES]; pages])
    }
}

impl TableStore for VecStore {
    fn pages(&self) -> usize {
        self.0.len()
    }
    fn read(&self, page: usize, index: usize) -> u64 {
        self.0
            .get(page)
            .and_then(|p| p.get(index))
            .copied()
            .unwrap_or(0)
    }
    fn write(&mut self, page: usize, index: usize, value: u64) {
        if let Some(e) = self.0.get_mut(page).and_then(|p| p.get_mut(index)) {
            *e = value;
        }
    }
}

/// Where one entry lives: table page and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub page: usize,
    pub index: usize,
}

/// Access rights of a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafFlags {
    pub write: bool,
    /// U/S: clear it to provoke a user/supervisor fault.
    pub user: bool,
}

impl LeafFlags {
    pub const RW: LeafFlags = LeafFlags {
        write: true,
        user: true,
    };
    pub const RO: LeafFlags = LeafFlags {
        write: false,
        user: true,
    };

    fn bits(self) -> u64 {
        FS_P | if self.write { FS_RW } else { 0 } | if self.user { FS_US } else { 0 }
    }
}

/// One entry the software walk read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    pub level: u8,
    pub slot: Slot,
    pub raw: u64,
}

/// A successful software walk: the stage-1 output (an IOAS IOVA), the leaf's size and rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub output: u64,
    pub size: u64,
    pub write: bool,
    pub user: bool,
}

/// Why the software walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// The entry at `level` is not present.
    NotPresent { level: u8 },
    /// A table address points outside the table buffer (not built by us).
    Foreign { level: u8, address: u64 },
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalkError::NotPresent { level } => write!(f, "level-{level} entry not present"),
            WalkError::Foreign { level, address } => write!(
                f,
                "level-{level} entry points at {address:#x}, outside the table buffer"
            ),
        }
    }
}

/// A software walk: the entries read, and the leaf or where it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    pub steps: Vec<WalkStep>,
    pub result: Result<Leaf, WalkError>,
}

/// Stage-1 tables of `levels` (4 or 5) levels in the pages of `store`; page `i` is at IOAS IOVA
/// `base_iova + i * 4096`, page 0 is the top-level table.
pub struct Stage1<S: TableStore> {
    store: S,
    base_iova: u64,
    levels: u8,
    used: usize,
}

impl<S: TableStore> Stage1<S> {
    /// Starts empty tables: the top-level page is cleared, nothing else is touched until allocated.
    pub fn new(mut store: S, base_iova: u64, levels: u8) -> Result<Self, String> {
        if levels != 4 && levels != 5 {
            return Err(format!("stage-1 tables have 4 or 5 levels, not {levels}"));
        }
        if !base_iova.is_multiple_of(TABLE_BYTES) || store.pages() == 0 {
            return Err(format!(
                "bad table buffer: IOVA {base_iova:#x}, {} pages",
                store.pages()
            ));
        }
        for i in 0..ENTRIES {
            store.write(0, i, 0);
        }
        Ok(Self {
            store,
            base_iova,
            levels,
            used: 1,
        })
    }

    pub fn levels(&self) -> u8 {
        self.levels
    }

    /// The `addr_width` of IOMMU_HWPT_ALLOC's VT-d stage-1 data: 48 (4-level) or 57 (5-level).
    pub fn addr_width(&self) -> u32 {
        if self.levels == 5 {
            57
        } else {
            48
        }
    }

    /// IOAS IOVA of the top-level table (`pgtbl_addr`).
    pub fn root(&self) -> u64 {
        self.base_iova
    }

    /// IOAS IOVA of table page `page`.
    pub fn table_iova(&self, page: usize) -> u64 {
        self.base_iova + page as u64 * TABLE_BYTES
    }

    /// Table pages in use.
    pub fn used_pages(&self) -> usize {
        self.used
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    fn page_of(&self, address: u64) -> Option<usize> {
        let off = address.checked_sub(self.base_iova)?;
        let page = usize::try_from(off / TABLE_BYTES).ok()?;
        (off.is_multiple_of(TABLE_BYTES) && page < self.used).then_some(page)
    }

    fn alloc(&mut self) -> Result<usize, String> {
        if self.used >= self.store.pages() {
            return Err(format!(
                "stage-1 table buffer full ({} pages)",
                self.store.pages()
            ));
        }
        let p = self.used;
        for i in 0..ENTRIES {
            self.store.write(p, i, 0);
        }
        self.used += 1;
        Ok(p)
    }

    /// Maps the stage-1 page of `size` at `iova` to IOAS IOVA `output`, creating tables on the way.
    pub fn map(
        &mut self,
        iova: u64,
        output: u64,
        size: u64,
        flags: LeafFlags,
    ) -> Result<(), String> {
        let leaf = leaf_level(size).ok_or_else(|| format!("no stage-1 leaf of {size:#x} bytes"))?;
        if !iova.is_multiple_of(size) || !output.is_multiple_of(size) {
            return Err(format!(
                "stage-1 {size:#x} page {iova:#x} -> {output:#x} is not aligned"
            ));
        }
        if output & !FS_ADDR_MASK & !(size - 1) != 0 {
            return Err(format!("output {output:#x} beyond 52 bits"));
        }
        let mut page = 0usize;
        for level in (leaf + 1..=self.levels).rev() {
            let i = index(iova, level);
            let e = self.store.read(page, i);
            page = if e & FS_P == 0 {
                let t = self.alloc()?;
                self.store
                    .write(page, i, self.table_iova(t) | FS_P | FS_RW | FS_US);
                t
            } else if e & FS_PS != 0 && level <= 3 {
                return Err(format!("{iova:#x}: a level-{level} leaf is already there"));
            } else {
                self.page_of(e & FS_ADDR_MASK).ok_or_else(|| {
                    format!("{iova:#x}: level-{level} entry {e:#x} is not one of our tables")
                })?
            };
        }
        let i = index(iova, leaf);
        if self.store.read(page, i) & FS_P != 0 {
            return Err(format!("{iova:#x}: already mapped at level {leaf}"));
        }
        let ps = if leaf > 1 { FS_PS } else { 0 };
        self.store.write(page, i, output | flags.bits() | ps);
        Ok(())
    }

    /// The slot of the entry at `level` on the way to `iova`, if the tables above it exist.
    pub fn slot(&self, iova: u64, level: u8) -> Option<Slot> {
        let mut page = 0usize;
        for l in (level + 1..=self.levels).rev() {
            let e = self.store.read(page, index(iova, l));
            if e & FS_P == 0 || (e & FS_PS != 0 && l <= 3) {
                return None;
            }
            page = self.page_of(e & FS_ADDR_MASK)?;
        }
        Some(Slot {
            page,
            index: index(iova, level),
        })
    }

    pub fn read(&self, slot: Slot) -> u64 {
        self.store.read(slot.page, slot.index)
    }

    pub fn write(&mut self, slot: Slot, value: u64) {
        self.store.write(slot.page, slot.index, value)
    }

    /// Walks the tables for `iova` as the IOMMU would (first stage only: outputs are IOAS IOVAs).
    pub fn walk(&self, iova: u64) -> Walk {
        let mut steps = Vec::new();
        let mut page = 0usize;
        let mut write = true;
        let mut user = true;
        for level in (1..=self.levels).rev() {
            let slot = Slot {
                page,
                index: index(iova, level),
            };
            let raw = self.store.read(page, slot.index);
            steps.push(WalkStep { level, slot, raw });
            if raw & FS_P == 0 {
                return Walk {
                    steps,
                    result: Err(WalkError::NotPresent { level }),
                };
            }
            write &= raw & FS_RW != 0;
            user &= raw & FS_US != 0;
            let addr = raw & FS_ADDR_MASK;
            if level == 1 || (raw & FS_PS != 0 && level <= 3) {
                let size = level_size(level);
                return Walk {
                    steps,
                    result: Ok(Leaf {
                        output: (addr & !(size - 1)) | (iova & (size - 1)),
                        size,
                        write,
                        user,
                    }),
                };
            }
            match self.page_of(addr) {
                Some(p) => page = p,
                None => {
                    return Walk {
                        steps,
                        result: Err(WalkError::Foreign {
                            level,
                            address: addr,
                        }),
                    }
                }
            }
        }
        Walk {
            steps,
            result: Err(WalkError::NotPresent { level: 1 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x7000_0000;

    fn tables(levels: u8) -> Stage1<VecStore> {
        Stage1::new(VecStore::new(16), BASE, levels).unwrap()
    }

    #[test]
    fn indices_and_sizes() {
        let iova = 0x0123_4567_8000u64;
        assert_eq!(index(iova, 1), (iova >> 12) as usize & 511);
        assert_eq!(index(iova, 4), (iova >> 39) as usize & 511);
        assert_eq!(index(1 << 48, 5), 1);
        assert_eq!(level_size(1), SIZE_4K);
        assert_eq!(level_size(2), SIZE_2M);
        assert_eq!(level_size(3), SIZE_1G);
        assert_eq!(leaf_level(SIZE_2M), Some(2));
        assert_eq!(leaf_level(0x3000), None);
    }

    #[test]
    fn four_level_4k_map_builds_a_chain_and_walks() {
        let mut t = tables(4);
        t.map(0x1_0000_3000, 0x7100_5000, SIZE_4K, LeafFlags::RW)
            .unwrap();
        // Root + PDPT + PD + PT.
        assert_eq!(t.used_pages(), 4);
        let w = t.walk(0x1_0000_3abc);
        assert_eq!(w.steps.len(), 4);
        assert_eq!(
            w.steps.iter().map(|s| s.level).collect::<Vec<_>>(),
            vec![4, 3, 2, 1]
        );
        // Non-leaf entries point at our pages, with P|RW|US and nothing else.
        assert_eq!(w.steps[0].raw, (BASE + 0x1000) | FS_P | FS_RW | FS_US);
        assert_eq!(w.steps[0].slot, Slot { page: 0, index: 0 });
        assert_eq!(w.steps[1].slot.index, 4); // 0x1_0000_0000 >> 30
        assert_eq!(
            w.result,
            Ok(Leaf {
                output: 0x7100_5abc,
                size: SIZE_4K,
                write: true,
                user: true
            })
        );
        // A neighbour shares the tables.
        t.map(0x1_0000_4000, 0x7100_6000, SIZE_4K, LeafFlags::RO)
            .unwrap();
        assert_eq!(t.used_pages(), 4);
        let l = t.walk(0x1_0000_4010).result.unwrap();
        assert_eq!((l.output, l.write), (0x7100_6010, false));
        // Double map and an unmapped neighbour.
        assert!(t
            .map(0x1_0000_3000, 0x7100_5000, SIZE_4K, LeafFlags::RW)
            .is_err());
        assert_eq!(
            t.walk(0x1_0000_5000).result,
            Err(WalkError::NotPresent { level: 1 })
        );
        assert_eq!(
            t.walk(0x2_0000_0000).result,
            Err(WalkError::NotPresent { level: 3 })
        );
    }

    #[test]
    fn large_leaves_set_ps_and_stop_early() {
        let mut t = tables(4);
        t.map(0x1_0020_0000, 0x7200_0000, SIZE_2M, LeafFlags::RW)
            .unwrap();
        t.map(0x1_4000_0000, 0x80_0000_0000, SIZE_1G, LeafFlags::RW)
            .unwrap();
        let w = t.walk(0x1_0021_2345);
        assert_eq!(w.steps.len(), 3);
        assert_ne!(w.steps[2].raw & FS_PS, 0);
        assert_eq!(w.result.unwrap().output, 0x7201_2345);
        assert_eq!(w.result.unwrap().size, SIZE_2M);
        let w = t.walk(0x1_7fff_f008);
        assert_eq!(w.steps.len(), 2);
        assert_eq!(
            w.result.unwrap(),
            Leaf {
                output: 0x80_3fff_f008,
                size: SIZE_1G,
                write: true,
                user: true
            }
        );
        // Nothing can be mapped below a leaf, and misaligned pages are refused.
        assert!(t
            .map(0x1_4000_1000, 0x7100_0000, SIZE_4K, LeafFlags::RW)
            .is_err());
        assert!(t
            .map(0x1_0060_0000, 0x7210_0000, SIZE_2M, LeafFlags::RW)
            .is_err());
        assert!(t.map(0x1_0000_0000, 0x1000, 0x3000, LeafFlags::RW).is_err());
    }

    #[test]
    fn five_levels_add_a_pml5() {
        let mut t = tables(5);
        assert_eq!(t.addr_width(), 57);
        t.map(0x1_0000_0000, 0x7100_0000, SIZE_4K, LeafFlags::RW)
            .unwrap();
        assert_eq!(t.used_pages(), 5);
        let w = t.walk(0x1_0000_0000);
        assert_eq!(
            w.steps.iter().map(|s| s.level).collect::<Vec<_>>(),
            vec![5, 4, 3, 2, 1]
        );
        assert!(Stage1::new(VecStore::new(1), BASE, 3).is_err());
        assert!(Stage1::new(VecStore::new(1), BASE + 8, 4).is_err());
    }

    #[test]
    fn slots_allow_edits_that_the_walk_sees() {
        let mut t = tables(4);
        t.map(0x1_0000_0000, 0x7100_0000, SIZE_4K, LeafFlags::RW)
            .unwrap();
        let s = t.slot(0x1_0000_0000, 1).unwrap();
        assert_eq!(t.read(s) & FS_ADDR_MASK, 0x7100_0000);
        t.write(s, 0x7100_1000 | FS_P | FS_RW | FS_US);
        assert_eq!(t.walk(0x1_0000_0010).result.unwrap().output, 0x7100_1010);
        t.write(s, 0);
        assert_eq!(
            t.walk(0x1_0000_0000).result,
            Err(WalkError::NotPresent { level: 1 })
        );
        // U/S clear anywhere makes the leaf supervisor-only.
        let top = t.slot(0x1_0000_0000, 4).unwrap();
        t.write(s, 0x7100_1000 | FS_P | FS_RW | FS_US);
        let v = t.read(top);
        t.write(top, v & !FS_US);
        assert!(!t.walk(0x1_0000_0000).result.unwrap().user);
        assert!(t.slot(0x9_0000_0000, 1).is_none());
        // A table pointer that is not ours stops the walk.
        t.write(top, 0x1234_5000 | FS_P);
        assert_eq!(
            t.walk(0x1_0000_0000).result,
            Err(WalkError::Foreign {
                level: 4,
                address: 0x1234_5000
            })
        );
    }

    #[test]
    fn the_buffer_runs_out_cleanly() {
        let mut t = Stage1::new(VecStore::new(3), BASE, 4).unwrap();
        let e = t.map(0x1000, 0x2000, SIZE_4K, LeafFlags::RW).unwrap_err();
        assert!(e.contains("full"), "{e}");
    }
}
