//! The hypervisor's own TCE tables: those of windows the defaults or ibm,create-pe-dma-window made
//! ([`Window::hypervisor`]), written only by the hypercalls and allocated lazily from the pool.
//!
//! The pool is guest-physical memory, so a hostile guest can rewrite these tables behind the
//! hypervisor's back. The hypercalls therefore never follow a pointer read from them: the shape of
//! each tree lives on the host side ([`Window::table`] for the top level, [`Window::lower`] for
//! the lower levels by (level, TCE index prefix)), and only leaf entries are read or written in
//! guest memory. The non-leaf entries the hypervisor writes (next level | R | W, big-endian) are
//! there for the DMA walker ([`super::table::walk`]), which reads the tables like hardware does.
//!
//! Work is bounded by the pool: storing one TCE touches at most one level table per level; [`stuff`] goes
//! one leaf table at a time (one write per leaf table), skips every span with no leaf table when
//! clearing (whole missing subtrees at once, found in [`Window::lower`]) and allocates a leaf table
//! for every span it fills, so it never does more steps than the pool has pages plus one, whatever
//! npages is and whatever the guest wrote into the pool.

use super::pool::{Block, Pool};
use super::table::{read_entry, write_entry, TCE_READ, TCE_WRITE};
use super::window::{Window, MAX_LEVELS};
use crate::mem::DmaMemory;

/// Why a hypervisor table write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutError {
    /// The pool has no room for a level table (H_NO_MEM).
    NoMem,
    /// Pool memory cannot be read or written (a pool configured past the end of RAM; H_HARDWARE).
    Hardware,
}

/// A zeroed level table of `1 << table_shift` bytes from the pool.
fn alloc_level(mem: &dyn DmaMemory, pool: &mut Pool, table_shift: u32) -> Result<Block, PutError> {
    let pages = 1u64 << table_shift.saturating_sub(12).min(18);
    let block = pool.alloc(pages).ok_or(PutError::NoMem)?;
    let zero = vec![0u8; 0x1000];
    for p in 0..pages {
        if mem.write(block.addr + p * 0x1000, &zero).is_err() {
            pool.free(block);
            return Err(PutError::Hardware);
        }
    }
    Ok(block)
}

/// The walk parameters: (levels, index bits per level).
fn shape(win: &Window) -> (u8, u32) {
    let g = win.geometry();
    (g.levels.clamp(1, MAX_LEVELS), g.entry_bits)
}

/// The prefix of `index` that names its level-`level` table (0 for the top level).
fn prefix(index: u64, level: u8, levels: u8, bits: u32) -> u64 {
    index
        .checked_shr(u32::from(levels.saturating_sub(level)) * bits)
        .unwrap_or(0)
}

/// Index of `index` inside its level-`level` table.
fn slot(index: u64, level: u8, levels: u8, bits: u32) -> u64 {
    super::table::level_index(index, level, levels, bits)
}

/// The leaf table holding TCE `index`, if allocated.
fn leaf_table(win: &Window, index: u64) -> Option<u64> {
    let (levels, bits) = shape(win);
    if levels == 1 {
        return win.table;
    }
    let leaf = levels - 1;
    win.lower
        .get(&(leaf, prefix(index, leaf, levels, bits)))
        .copied()
}

/// The leaf table holding TCE `index`, allocating the top level and missing lower levels (each
/// linked into its parent, whose address the host knows, with R | W).
fn ensure_leaf(
    win: &mut Window,
    pool: &mut Pool,
    mem: &dyn DmaMemory,
    index: u64,
) -> Result<u64, PutError> {
    let (levels, bits) = shape(win);
    let table_shift = bits + 3;
    let mut table = match win.table {
        Some(t) => t,
        None => {
            let b = alloc_level(mem, pool, table_shift)?;
            win.owned.push(b);
            win.table = Some(b.addr);
            b.addr
        }
    };
    for level in 1..levels {
        let key = (level, prefix(index, level, levels, bits));
        if let Some(&t) = win.lower.get(&key) {
            table = t;
            continue;
        }
        let b = alloc_level(mem, pool, table_shift)?;
        let parent = table + slot(index, level - 1, levels, bits) * 8;
        if !write_entry(mem, parent, b.addr | TCE_READ | TCE_WRITE) {
            pool.free(b);
            return Err(PutError::Hardware);
        }
        win.owned.push(b);
        win.lower.insert(key, b.addr);
        table = b.addr;
    }
    Ok(table)
}

/// TCE `index` (0 when its leaf table was never allocated).
pub fn get(win: &Window, mem: &dyn DmaMemory, index: u64) -> Result<u64, PutError> {
    let (levels, bits) = shape(win);
    match leaf_table(win, index) {
        None => Ok(0),
        Some(t) => {
            read_entry(mem, t + slot(index, levels - 1, levels, bits) * 8).ok_or(PutError::Hardware)
        }
    }
}

/// Stores `value` into TCEs `first..first + n` (the caller checked the range is in the window),
/// one leaf table at a time. Stops at the first failure; the TCEs before it are written.
pub fn stuff(
    win: &mut Window,
    pool: &mut Pool,
    mem: &dyn DmaMemory,
    first: u64,
    n: u64,
    value: u64,
) -> Result<(), PutError> {
    let (levels, bits) = shape(win);
    let span = 1u64.checked_shl(bits).unwrap_or(u64::MAX);
    let end = first.saturating_add(n);
    let fill = value.to_be_bytes().repeat(span.min(512) as usize);
    let mut i = first;
    while i < end {
        // The span of TCEs in the leaf table of `i`.
        let leaf_no = i.checked_shr(bits).unwrap_or(0);
        let span_end = leaf_no
            .checked_add(1)
            .and_then(|l| l.checked_mul(span))
            .map_or(end, |e| e.min(end));
        let table = if value == 0 {
            match leaf_table(win, i) {
                Some(t) => t,
                None => {
                    // Nothing to clear up to the next allocated leaf table.
                    i = next_leaf(win, leaf_no, levels, bits).map_or(end, |s| s.clamp(i, end));
                    continue;
                }
            }
        } else {
            ensure_leaf(win, pool, mem, i)?
        };
        let mut at = table + (i & (span - 1)) * 8;
        let mut left = span_end - i;
        while left > 0 {
            let k = left.min(512);
            if mem.write(at, &fill[..(k * 8) as usize]).is_err() {
                return Err(PutError::Hardware);
            }
            at += k * 8;
            left -= k;
        }
        i = span_end;
    }
    Ok(())
}

/// The first TCE index of the first allocated leaf table after leaf table `leaf_no`.
fn next_leaf(win: &Window, leaf_no: u64, levels: u8, bits: u32) -> Option<u64> {
    if levels == 1 {
        return None;
    }
    let leaf = levels - 1;
    let after = leaf_no.checked_add(1)?;
    let (&(_, p), _) = win.lower.range((leaf, after)..=(leaf, u64::MAX)).next()?;
    p.checked_shl(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::mem::{MemError, TestMemory};
    use crate::tce::table::{walk, WalkEnd};

    /// Test memory that counts writes.
    struct Counting(TestMemory, AtomicU64);

    impl DmaMemory for Counting {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
            self.0.read(addr, buf)
        }
        fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.write(addr, buf)
        }
    }

    /// One TCE (a zero `value` never allocates: an absent level reads as 0).
    fn put(
        win: &mut Window,
        pool: &mut Pool,
        mem: &dyn DmaMemory,
        index: u64,
        value: u64,
    ) -> Result<(), PutError> {
        stuff(win, pool, mem, index, 1, value)
    }

    fn hv(size: u64) -> Window {
        Window::hypervisor(0x8000_0000, 0, size, 12)
    }

    #[test]
    fn put_allocates_levels_lazily_from_the_pool() {
        let m = TestMemory::new(0x20000);
        let mut pool = Pool::new(0x10000, 0x4000);
        // 27 index bits: 3 levels of 9.
        let mut w = hv(1 << 39);
        assert_eq!(w.levels, 3);
        // A zero write into nothing allocates nothing.
        assert_eq!(put(&mut w, &mut pool, &m, 5, 0), Ok(()));
        assert_eq!((w.table, pool.used_pages()), (None, 0));
        assert_eq!(put(&mut w, &mut pool, &m, 0x4_0201, 0x5003), Ok(()));
        assert_eq!(w.table, Some(0x10000));
        assert_eq!(pool.used_pages(), 3);
        assert_eq!(w.owned.len(), 3);
        assert_eq!(w.lower.len(), 2);
        let (reads, end) = walk(&m, w.geometry(), 0x4_0201);
        assert_eq!(end, WalkEnd::Leaf { tce: 0x5003 });
        assert_eq!(reads[0].entry, 0x11003, "non-leaf = next level | R | W");
        assert_eq!(get(&w, &m, 0x4_0201), Ok(0x5003));
        assert_eq!(get(&w, &m, 0x8_0000), Ok(0), "never allocated");
        // Same lower tables for a neighbour.
        assert_eq!(put(&mut w, &mut pool, &m, 0x4_0202, 0x6001), Ok(()));
        assert_eq!(put(&mut w, &mut pool, &m, 0x4_0201, 0), Ok(()));
        assert_eq!(get(&w, &m, 0x4_0201), Ok(0));
        assert_eq!(pool.used_pages(), 3);
        // A new mid level and leaf table need two pages; only one is left.
        assert_eq!(
            put(&mut w, &mut pool, &m, 0x8_0000, 0x7001),
            Err(PutError::NoMem)
        );
        assert_eq!(
            pool.used_pages(),
            4,
            "the mid level stays allocated and linked"
        );
        // A pool past the end of RAM cannot be zeroed.
        let mut far = Pool::new(0x7000_0000, 0x1000);
        let mut w2 = hv(1 << 21);
        assert_eq!(
            put(&mut w2, &mut far, &m, 1, 0x5003),
            Err(PutError::Hardware)
        );
        assert_eq!(far.used_pages(), 0);
    }

    #[test]
    fn pointers_in_guest_memory_are_never_followed() {
        let m = Counting(TestMemory::new(0x20000), AtomicU64::new(0));
        let mut pool = Pool::new(0x10000, 0x4000);
        let mut w = hv(1 << 30); // 2 levels
        put(&mut w, &mut pool, &m, 0x200, 0x8003).unwrap();
        let (top, leaf) = (w.table.unwrap(), w.lower[&(1, 1)]);
        // The guest rewrites the top level: every entry points back at the top table (a loop), and
        // a leaf TCE at the leaf table.
        for i in 0..512 {
            write_entry(&m, top + i * 8, top | 3);
        }
        // The hypercalls still use the host's shape: the leaf of index 0x200 is where it was.
        assert_eq!(get(&w, &m, 0x200), Ok(0x8003));
        assert_eq!(get(&w, &m, 0x400), Ok(0), "no leaf table for top entry 2");
        put(&mut w, &mut pool, &m, 0x201, 0x9003).unwrap();
        assert_eq!(read_entry(&m, leaf + 8), Some(0x9003));
        // Clearing everything only visits the one leaf table.
        let writes_before = m.1.load(Ordering::Relaxed);
        stuff(&mut w, &mut pool, &m, 0, 1 << 18, 0).unwrap();
        assert_eq!(
            m.1.load(Ordering::Relaxed) - writes_before,
            1,
            "one write for one leaf table"
        );
        assert_eq!(get(&w, &m, 0x201), Ok(0));
        assert_eq!(
            read_entry(&m, top + 8),
            Some(top | 3),
            "the guest's scribble stays"
        );
    }

    #[test]
    fn stuff_goes_a_leaf_table_at_a_time() {
        let m = TestMemory::new(0x40000);
        let mut pool = Pool::new(0x10000, 0x8000);
        let mut w = hv(1 << 30); // 2 levels, 2^18 TCEs
                                 // Three leaf tables' worth, starting mid-table: top + 3 leaves.
        stuff(&mut w, &mut pool, &m, 0x1f0, 0x400, 0x8001).unwrap();
        assert_eq!(pool.used_pages(), 4);
        for i in [0x1f0, 0x200, 0x3ff, 0x5ef] {
            assert_eq!(get(&w, &m, i), Ok(0x8001), "{i:#x}");
        }
        assert_eq!(get(&w, &m, 0x1ef), Ok(0));
        assert_eq!(get(&w, &m, 0x5f0), Ok(0));
        // Clearing skips to the allocated leaves; a partial clear keeps the rest.
        stuff(&mut w, &mut pool, &m, 0, 0x201, 0).unwrap();
        assert_eq!(get(&w, &m, 0x200), Ok(0));
        assert_eq!(get(&w, &m, 0x201), Ok(0x8001));
        // Filling the whole window (2^18 TCEs) runs out of pool pages after 4 more leaf tables:
        // H_NO_MEM, with the TCEs before the failure written.
        assert_eq!(
            stuff(&mut w, &mut pool, &m, 0, 1 << 18, 0x9001),
            Err(PutError::NoMem)
        );
        assert_eq!(pool.used_pages(), 8);
        assert_eq!(get(&w, &m, 0), Ok(0x9001));
        assert_eq!(get(&w, &m, 7 * 512 - 1), Ok(0x9001));
        assert_eq!(get(&w, &m, 7 * 512), Ok(0));
        // One level: the top table is the leaf.
        let mut one = hv(1 << 21);
        stuff(&mut one, &mut pool, &m, 0, 0, 0x9001).unwrap();
        assert_eq!(one.table, None, "nothing to do for 0 TCEs");
        let mut big = Pool::new(0x30000, 0x1000);
        stuff(&mut one, &mut big, &m, 3, 509, 0x9001).unwrap();
        assert_eq!((get(&one, &m, 2), get(&one, &m, 511)), (Ok(0), Ok(0x9001)));
    }
}
