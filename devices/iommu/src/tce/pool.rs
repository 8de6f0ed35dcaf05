//! The hypervisor table pool: guest-physical memory the VMM reserves (e820) where the hypercall
//! interface keeps its TCE tables, handed out in 4 KiB pages (first fit, contiguous runs).

use serde::Serialize;

use super::config::POOL_PAGE;

/// A run of pool pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Block {
    pub addr: u64,
    pub pages: u64,
}

/// The allocator: one bit per page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    base: u64,
    pages: u64,
    used: Vec<u64>,
    in_use: u64,
    /// Every word of `used` below this one is full (so first fit starts here: allocating the
    /// pool page by page stays linear).
    full_below: usize,
}

impl Pool {
    /// A pool of `size` bytes at `base` (both 4 KiB multiples; the configuration checked them).
    pub fn new(base: u64, size: u64) -> Self {
        let pages = size / POOL_PAGE;
        Self {
            base,
            pages,
            used: vec![0; pages.div_ceil(64) as usize],
            in_use: 0,
            full_below: 0,
        }
    }

    fn is_used(&self, page: u64) -> bool {
        self.used
            .get((page / 64) as usize)
            .is_some_and(|w| w & (1 << (page % 64)) != 0)
    }

    fn set(&mut self, page: u64, on: bool) {
        if let Some(w) = self.used.get_mut((page / 64) as usize) {
            if on {
                *w |= 1 << (page % 64);
            } else {
                *w &= !(1 << (page % 64));
            }
        }
    }

    /// `pages` contiguous free pages, aligned to their own size (level tables are naturally aligned,
    /// as pnv's alloc_pages are); `None` when the pool cannot hold them.
    pub fn alloc(&mut self, pages: u64) -> Option<Block> {
        if pages == 0 || pages > self.pages || !pages.is_power_of_two() {
            return None;
        }
        let align_pages = pages;
        while self.used.get(self.full_below) == Some(&u64::MAX) {
            self.full_below += 1;
        }
        // Candidates are aligned in guest-physical terms; none starts below the full words.
        let misalign = (self.base / POOL_PAGE) % align_pages;
        let first_free = self.full_below as u64 * 64;
        let s0 = (align_pages - misalign) % align_pages;
        let mut start = if first_free <= s0 {
            s0
        } else {
            s0 + (first_free - s0).div_ceil(align_pages) * align_pages
        };
        while start + pages <= self.pages {
            match (start..start + pages).find(|p| self.is_used(*p)) {
                None => {
                    for p in start..start + pages {
                        self.set(p, true);
                    }
                    self.in_use += pages;
                    return Some(Block {
                        addr: self.base + start * POOL_PAGE,
                        pages,
                    });
                }
                Some(_) => start += align_pages,
            }
        }
        None
    }

    /// Returns a block; pages outside the pool or already free are ignored.
    pub fn free(&mut self, b: Block) {
        if b.addr < self.base {
            return;
        }
        let first = (b.addr - self.base) / POOL_PAGE;
        self.full_below = self.full_below.min((first / 64) as usize);
        for p in first..first.saturating_add(b.pages).min(self.pages) {
            if self.is_used(p) {
                self.set(p, false);
                self.in_use -= 1;
            }
        }
    }

    /// Whether `[addr, addr + len)` touches the pool.
    pub fn overlaps(&self, addr: u64, len: u64) -> bool {
        let end = self.base + self.pages * POOL_PAGE;
        let last = addr.saturating_add(len.saturating_sub(1));
        self.pages != 0 && len != 0 && addr < end && last >= self.base
    }

    pub fn total_pages(&self) -> u64 {
        self.pages
    }

    pub fn used_pages(&self) -> u64 {
        self.in_use
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_and_exhaustion() {
        let mut p = Pool::new(0x10_0000, 4 * POOL_PAGE);
        let a = p.alloc(1).unwrap();
        assert_eq!(a.addr, 0x10_0000);
        let b = p.alloc(2).unwrap();
        assert_eq!(b.addr, 0x10_2000, "2-page blocks are 8 KiB aligned");
        let c = p.alloc(1).unwrap();
        assert_eq!(c.addr, 0x10_1000, "first fit fills the hole");
        assert_eq!(p.used_pages(), 4);
        assert_eq!(p.alloc(1), None);
        p.free(b);
        assert_eq!(p.used_pages(), 2);
        assert_eq!(p.alloc(2), Some(b));
        p.free(Block {
            addr: 0x5000,
            pages: 9,
        });
        p.free(c);
        p.free(c);
        assert_eq!(p.used_pages(), 3);
        assert_eq!(p.alloc(3), None, "not a power of two");
        assert_eq!(p.alloc(0), None);
        assert_eq!(p.alloc(8), None);
    }

    #[test]
    fn first_fit_skips_full_words_and_refills_freed_holes() {
        // Base misaligned for 4-page blocks: 4-page candidates start at page 2 (0x10_4000).
        let mut p = Pool::new(0x10_2000, 200 * POOL_PAGE);
        let singles: Vec<Block> = (0..130).map(|_| p.alloc(1).unwrap()).collect();
        assert_eq!(singles[129].addr, 0x10_2000 + 129 * POOL_PAGE, "in order");
        let four = p.alloc(4).unwrap();
        assert_eq!(four.addr % (4 * POOL_PAGE), 0);
        assert_eq!(
            four.addr,
            0x10_2000 + 130 * POOL_PAGE,
            "the first free aligned run"
        );
        p.free(singles[129]);
        let two = p.alloc(2).unwrap();
        assert_eq!(
            two.addr,
            0x10_2000 + 134 * POOL_PAGE,
            "8 KiB aligned: not 129..131"
        );
        assert_eq!(p.alloc(1), Some(singles[129]));
        p.free(singles[3]);
        p.free(singles[70]);
        assert_eq!(p.alloc(1), Some(singles[3]), "the lowest hole first");
        assert_eq!(p.alloc(1), Some(singles[70]));
        assert_eq!(p.used_pages(), 136);
    }

    #[test]
    fn empty_pool_and_overlap() {
        let mut p = Pool::new(0, 0);
        assert_eq!(p.alloc(1), None);
        assert!(!p.overlaps(0, u64::MAX));
        let q = Pool::new(0x10_0000, 0x10_0000);
        assert!(q.overlaps(0x1f_f000, 0x1000));
        assert!(q.overlaps(0, 0x10_0001));
        assert!(!q.overlaps(0, 0x10_0000));
        assert!(!q.overlaps(0x20_0000, 0x1000));
        assert!(!q.overlaps(0x10_0000, 0));
        assert!(!q.overlaps(u64::MAX - 5, u64::MAX));
    }
}
