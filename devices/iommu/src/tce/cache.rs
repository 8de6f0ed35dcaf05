//! The TCE cache: valid leaf TCEs keyed by (window, TCE index), filled by DMA walks. Hardware-view
//! tables are the guest's, so a TCE changed in memory stays stale here until TCE_KILL (by IOBA range
//! or all); the hypercalls own their tables and update the cache themselves. Invalid TCEs are never
//! cached, so a newly written mapping is always seen. `caching=off` keeps it empty.

use std::collections::HashMap;

/// Most entries held; a full cache is emptied (exact either way: it only ever drops entries).
pub const CACHE_CAPACITY: usize = 4096;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TceCache {
    enabled: bool,
    map: HashMap<(usize, u64), u64>,
}

impl TceCache {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            map: HashMap::new(),
        }
    }

    pub fn get(&self, window: usize, index: u64) -> Option<u64> {
        self.map.get(&(window, index)).copied()
    }

    pub fn insert(&mut self, window: usize, index: u64, tce: u64) {
        if !self.enabled {
            return;
        }
        if self.map.len() >= CACHE_CAPACITY {
            self.map.clear();
        }
        self.map.insert((window, index), tce);
    }

    pub fn invalidate(&mut self, window: usize, index: u64) {
        self.map.remove(&(window, index));
    }

    pub fn invalidate_window(&mut self, window: usize) {
        self.map.retain(|(w, _), _| *w != window);
    }

    /// Drops the entries of `window` whose page `[iova_of(index), +page_size)` meets `[start, end)`.
    pub fn invalidate_range(
        &mut self,
        window: usize,
        iova_of: impl Fn(u64) -> u64,
        page_size: u64,
        start: u64,
        end: u64,
    ) -> usize {
        let before = self.map.len();
        self.map.retain(|(w, idx), _| {
            if *w != window {
                return true;
            }
            let first = iova_of(*idx);
            let last = first.saturating_add(page_size.saturating_sub(1));
            !(first < end && last >= start)
        });
        before - self.map.len()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_cache_holds_nothing() {
        let mut c = TceCache::new(false);
        c.insert(0, 1, 0x1003);
        assert_eq!(c.get(0, 1), None);
        assert!(c.is_empty());
    }

    #[test]
    fn range_invalidation_is_exact() {
        let mut c = TceCache::new(true);
        for i in 0..8 {
            c.insert(0, i, (0x1000 * i) | 3);
            c.insert(1, i, (0x1000 * i) | 1);
        }
        let iova_of = |i: u64| i << 12;
        // [0x2800, 0x4000): pages 2 and 3 of window 0 only.
        assert_eq!(c.invalidate_range(0, iova_of, 0x1000, 0x2800, 0x4000), 2);
        assert_eq!(c.get(0, 1), Some(0x1003));
        assert_eq!(c.get(0, 2), None);
        assert_eq!(c.get(0, 3), None);
        assert_eq!(c.get(0, 4), Some(0x4003), "end is exclusive");
        assert_eq!(c.get(1, 2), Some(0x2001), "other window untouched");
        assert_eq!(
            c.invalidate_range(0, iova_of, 0x1000, 0x5000, 0x5000),
            0,
            "empty range"
        );
        c.invalidate(1, 2);
        assert_eq!(c.get(1, 2), None);
        c.invalidate_window(1);
        assert_eq!(c.len(), 6);
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let mut c = TceCache::new(true);
        for i in 0..CACHE_CAPACITY as u64 {
            c.insert(0, i, 1);
        }
        assert_eq!(c.len(), CACHE_CAPACITY);
        c.insert(0, u64::MAX, 3);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(0, u64::MAX), Some(3));
    }
}
