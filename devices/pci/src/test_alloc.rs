//! The test binary's global allocator: the system allocator plus per-thread accounting, so that a test can
//! bound what a storm of guest accesses makes the device model allocate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    /// Bytes allocated minus bytes freed on this thread since tracking started.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK_LIVE: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// What a tracked section allocated on its thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocStats {
    /// The largest single allocation (or reallocation target).
    pub largest: usize,
    /// The highest number of bytes live at once, counted from the start of the section.
    pub peak_live: isize,
}

/// Runs `f` with accounting on for this thread and returns its result and the statistics.
pub fn track<T>(f: impl FnOnce() -> T) -> (T, AllocStats) {
    LIVE.with(|c| c.set(0));
    PEAK_LIVE.with(|c| c.set(0));
    LARGEST.with(|c| c.set(0));
    TRACKING.with(|c| c.set(true));
    let out = f();
    TRACKING.with(|c| c.set(false));
    let stats = AllocStats {
        largest: LARGEST.with(Cell::get),
        peak_live: PEAK_LIVE.with(Cell::get),
    };
    (out, stats)
}

/// Records a change of `delta` live bytes with a new block of `size` bytes (0 for a free).
fn note(size: usize, delta: isize) {
    // try_with: the thread-locals may already be gone while a thread exits; const-initialised Cells never
    // allocate, so this cannot recurse into the allocator.
    let on = TRACKING.try_with(Cell::get).unwrap_or(false);
    if !on {
        return;
    }
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
    let _ = LIVE.try_with(|live| {
        let v = live.get().saturating_add(delta);
        live.set(v);
        let _ = PEAK_LIVE.try_with(|p| p.set(p.get().max(v)));
    });
}

fn signed(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s guarantees
// hold; the accounting only touches const-initialised thread-local Cells, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), signed(layout.size()));
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), signed(layout.size()));
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(0, -signed(layout.size()));
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through here) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(
            new_size,
            signed(new_size).saturating_sub(signed(layout.size())),
        );
        // SAFETY: as for `dealloc`; `new_size` is the caller's, per `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_largest_and_peak() {
        let (len, stats) = track(|| {
            let a = vec![1u8; 1000];
            let b = vec![2u8; 5000];
            drop(b);
            let c = vec![3u8; 3000];
            a.len() + c.len()
        });
        assert_eq!(len, 4000);
        assert_eq!(stats.largest, 5000);
        assert_eq!(stats.peak_live, 6000);
        // Nothing is counted outside a tracked section.
        let _big = vec![0u8; 1 << 20];
        let ((), stats) = track(|| ());
        assert_eq!(stats.largest, 0);
    }
}
