//! PermittedRanges algebra: random unions and subtractions keep the set sorted, disjoint and exact.
#![no_main]

use iommu::{IovaWindow, PermittedRanges};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut windows = Vec::new();
    let mut holes = Vec::new();
    for c in data.chunks_exact(17) {
        let a = u64::from_le_bytes(c[1..9].try_into().unwrap());
        let b = u64::from_le_bytes(c[9..17].try_into().unwrap());
        let w = IovaWindow {
            first: a.min(b),
            last: a.max(b),
        };
        if c[0] & 1 == 0 {
            windows.push(w)
        } else {
            holes.push(w)
        }
    }
    let mut r = PermittedRanges::from_windows(windows.iter().copied());
    for h in &holes {
        r = r.subtract(*h);
    }
    // Sorted, disjoint, non-adjacent.
    for pair in r.windows().windows(2) {
        assert!(pair[0].last < pair[1].first && pair[1].first - pair[0].last > 1);
    }
    // Exact: probe the edges of every input window and hole.
    for w in windows.iter().chain(holes.iter()) {
        for addr in [
            w.first,
            w.last,
            w.first.wrapping_sub(1),
            w.last.wrapping_add(1),
        ] {
            let expected =
                windows.iter().any(|w| w.contains(addr)) && !holes.iter().any(|h| h.contains(addr));
            assert_eq!(r.contains(addr), expected, "{addr:#x}");
        }
    }
});
