//! The unit's mutable state: the two windows, the table pool, the TCE cache, the EEH state, the
//! kill range registers and the counters.

use super::cache::TceCache;
use super::config::TceConfig;
use super::eeh::EehState;
use super::pool::Pool;
use super::stats::TceStats;
use super::window::{Window, DEFAULT_DMA32, DEFAULT_DMA64_SIZE, DMA64_START, LIOBNS, MAX_WINDOWS};
use crate::mem::DmaMemory;

pub(super) struct State {
    pub windows: [Window; MAX_WINDOWS],
    pub pool: Pool,
    pub cache: TceCache,
    pub eeh: EehState,
    pub stats: TceStats,
    pub kill_start: u64,
    pub kill_end: u64,
}

impl State {
    pub fn new(cfg: &TceConfig, mem: &dyn DmaMemory) -> Self {
        let mut st = Self {
            windows: [Window::empty(LIOBNS[0]), Window::empty(LIOBNS[1])],
            pool: Pool::new(cfg.pool_base, cfg.pool_size),
            cache: TceCache::new(cfg.caching),
            eeh: EehState::default(),
            stats: TceStats::default(),
            kill_start: 0,
            kill_end: 0,
        };
        st.restore_defaults(cfg, mem);
        st
    }

    /// Removes every window and re-creates the two default ones with empty tables (LoPAR
    /// "ibm,reset-pe-dma-window"; QEMU spapr_phb_dma_reset). The EEH state is not touched.
    pub fn restore_defaults(&mut self, cfg: &TceConfig, mem: &dyn DmaMemory) {
        for w in 0..MAX_WINDOWS {
            self.remove_window(w);
        }
        let (b32, s32, p32) = DEFAULT_DMA32;
        self.windows[0] = Window::hypervisor(LIOBNS[0], b32, s32, p32);
        self.windows[1] =
            Window::hypervisor(LIOBNS[1], DMA64_START, DEFAULT_DMA64_SIZE, cfg.page64_shift);
        for w in 0..MAX_WINDOWS {
            // With an empty pool the top level is allocated on the first H_PUT_TCE instead.
            let _ = self.alloc_top(w, mem);
        }
    }

    /// Allocates (zeroed) the top-level table of hypervisor window `w` from the pool if it has none.
    pub fn alloc_top(&mut self, w: usize, mem: &dyn DmaMemory) -> bool {
        let Some(win) = self.windows.get_mut(w) else {
            return false;
        };
        if win.table.is_some() {
            return true;
        }
        let pages = 1u64 << u32::from(win.table_shift.clamp(12, 30)).saturating_sub(12);
        let Some(block) = self.pool.alloc(pages) else {
            return false;
        };
        let zero = vec![0u8; 0x1000];
        let zeroed = (0..pages).all(|p| mem.write(block.addr + p * 0x1000, &zero).is_ok());
        if !zeroed {
            self.pool.free(block);
            return false;
        }
        win.table = Some(block.addr);
        win.owned.push(block);
        true
    }

    /// Disables window `w`, returns its pool tables and drops its cached TCEs (the LIOBN stays).
    pub fn remove_window(&mut self, w: usize) {
        let Some(win) = self.windows.get_mut(w) else {
            return;
        };
        for b in win.owned.drain(..) {
            self.pool.free(b);
        }
        *win = Window::empty(win.liobn);
        self.cache.invalidate_window(w);
    }

    /// Frees the pool tables of window `w` (its table pointer was reprogrammed).
    pub fn release_tables(&mut self, w: usize) {
        if let Some(win) = self.windows.get_mut(w) {
            for b in win.owned.drain(..) {
                self.pool.free(b);
            }
            win.lower.clear();
        }
    }

    /// Hands window `w` to the hardware view (a TVE_CFG write): it takes no more hypercalls. Its
    /// pool blocks stay its own while its TVE can still point at them.
    pub fn hand_to_hardware_view(&mut self, w: usize) {
        if let Some(win) = self.windows.get_mut(w) {
            win.hypervisor = false;
            win.lower.clear();
        }
    }

    /// Drops the cached TCEs of the enabled hardware-view windows (after a hypercall wrote a
    /// hypervisor table such a window may read through a guest-chosen pointer).
    pub fn drop_hardware_view_caches(&mut self) {
        for (w, win) in self.windows.iter().enumerate() {
            if win.enabled && !win.hypervisor {
                self.cache.invalidate_window(w);
            }
        }
    }

    /// The enabled window containing `iova`.
    pub fn window_for(&self, iova: u64) -> Option<usize> {
        self.windows.iter().position(|w| w.contains(iova))
    }

    /// The enabled window named by `liobn`.
    pub fn window_by_liobn(&self, liobn: u64) -> Option<usize> {
        self.windows
            .iter()
            .position(|w| w.enabled && u64::from(w.liobn) == liobn)
    }

    pub fn enabled_count(&self) -> usize {
        self.windows.iter().filter(|w| w.enabled).count()
    }

    /// The counters with the gauges filled in.
    pub fn snapshot_stats(&self) -> TceStats {
        let mut s = self.stats.clone();
        s.cache_entries = self.cache.len() as u64;
        s.pool_pages = self.pool.total_pages();
        s.pool_pages_used = self.pool.used_pages();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::TestMemory;

    #[test]
    fn defaults_allocate_top_levels_from_the_pool() {
        let mem = TestMemory::new(0x20_0000);
        let cfg: TceConfig = "tce,pool=0x100000+0x4000".parse().unwrap();
        let mut st = State::new(&cfg, &mem);
        assert_eq!(st.windows[0].table, Some(0x10_0000));
        assert_eq!(st.windows[1].table, Some(0x10_1000));
        assert_eq!(st.pool.used_pages(), 2);
        assert_eq!(st.window_for(0x3fff_ffff), Some(0));
        assert_eq!(st.window_for(0x4000_0000), None);
        assert_eq!(st.window_for(0x8001fffffffffff), Some(1));
        assert_eq!(st.window_by_liobn(0x8000_0001), Some(1));
        assert_eq!(st.window_by_liobn(0x1_8000_0001), None);
        st.remove_window(1);
        assert_eq!(st.pool.used_pages(), 1);
        assert_eq!(st.window_by_liobn(0x8000_0001), None);
        assert_eq!(st.enabled_count(), 1);
        st.restore_defaults(&cfg, &mem);
        assert_eq!(st.enabled_count(), 2);
        assert_eq!(st.pool.used_pages(), 2);
    }

    #[test]
    fn an_empty_pool_leaves_tables_lazy() {
        let mem = TestMemory::new(0x1000);
        let st = State::new(&TceConfig::default(), &mem);
        assert_eq!(st.windows[0].table, None);
        assert_eq!(st.enabled_count(), 2);
        // A pool outside RAM cannot be zeroed: nothing is allocated.
        let cfg: TceConfig = "tce,pool=0x100000+0x4000".parse().unwrap();
        let st = State::new(&cfg, &mem);
        assert_eq!((st.windows[1].table, st.pool.used_pages()), (None, 0));
    }
}
