//! Permitted IOVA ranges: the "window model" of the seed email.
//!
//! A [`PermittedRanges`] is a sorted set of disjoint [`IovaWindow`]s. **Both ends of a window
//! are inclusive** (`first..=last`), so the full 64-bit space is expressible (`0..=u64::MAX`) and a one-byte
//! window is `a..=a`. A MAP request is acceptable only if it lies entirely inside one window.
//!
//! [`PermittedRanges::from_windows`] (VT-d, SMMUv3: one aperture) merges adjacent windows, so its windows are
//! also non-adjacent. [`PermittedRanges::from_separate_windows`] (TCE: each DMA window has its own LIOBN and
//! table, and no mapping can cross from one to the next) keeps touching windows apart; `subtract` keeps
//! whichever shape it is given.
//!
//! VT-d and SMMUv3 build theirs as an aperture (from the address width) minus reserved holes (MSI window,
//! RMRRs); TCE builds its from the DMA windows. The same value feeds firmware tables, the monitor and guest tests.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One inclusive IOVA window `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IovaWindow {
    pub first: u64,
    pub last: u64,
}

impl IovaWindow {
    /// `first..=last`; `None` if `first > last`.
    pub fn new(first: u64, last: u64) -> Option<Self> {
        (first <= last).then_some(Self { first, last })
    }

    /// The window of `size` bytes at `base` (`None` if empty or wrapping past 2^64).
    pub fn from_base_size(base: u64, size: u64) -> Option<Self> {
        let last = base.checked_add(size.checked_sub(1)?)?;
        Some(Self { first: base, last })
    }

    /// `[0, 2^bits - 1]`: the aperture of an IOMMU implementing `bits` bits of input address (1..=64).
    pub fn aperture(bits: u32) -> Self {
        let last = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits.max(1)) - 1
        };
        Self { first: 0, last }
    }

    pub fn contains(&self, addr: u64) -> bool {
        (self.first..=self.last).contains(&addr)
    }

    /// Whether `[start, start + len)` (len > 0) lies inside this window.
    pub fn contains_range(&self, start: u64, len: u64) -> bool {
        match len.checked_sub(1).and_then(|l| start.checked_add(l)) {
            Some(end) => self.first <= start && end <= self.last,
            None => false,
        }
    }
}

impl fmt::Display for IovaWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..={:#x}", self.first, self.last)
    }
}

/// A set of permitted IOVA windows (sorted, disjoint, non-adjacent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PermittedRanges {
    windows: Vec<IovaWindow>,
}

impl PermittedRanges {
    /// No permitted IOVA at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// One window.
    pub fn single(w: IovaWindow) -> Self {
        Self { windows: vec![w] }
    }

    /// The union of `windows` (any order, overlaps and adjacency merged).
    pub fn from_windows(windows: impl IntoIterator<Item = IovaWindow>) -> Self {
        let mut v: Vec<IovaWindow> = windows.into_iter().collect();
        v.sort();
        let mut out: Vec<IovaWindow> = Vec::with_capacity(v.len());
        for w in v {
            match out.last_mut() {
                Some(prev) if prev.last == u64::MAX || w.first <= prev.last + 1 => {
                    prev.last = prev.last.max(w.last)
                }
                _ => out.push(w),
            }
        }
        Self { windows: out }
    }

    /// `windows` kept as separate ranges even when they touch (only overlapping ones are merged),
    /// sorted: for units whose windows are distinct translation contexts (TCE: one LIOBN each), so
    /// [`Self::permits`] refuses a range that crosses from one window into the next.
    pub fn from_separate_windows(windows: impl IntoIterator<Item = IovaWindow>) -> Self {
        let mut v: Vec<IovaWindow> = windows.into_iter().collect();
        v.sort();
        let mut out: Vec<IovaWindow> = Vec::with_capacity(v.len());
        for w in v {
            match out.last_mut() {
                Some(prev) if w.first <= prev.last => prev.last = prev.last.max(w.last),
                _ => out.push(w),
            }
        }
        Self { windows: out }
    }

    /// These windows minus the hole `first..=last`.
    pub fn subtract(&self, hole: IovaWindow) -> Self {
        let mut out = Vec::with_capacity(self.windows.len() + 1);
        for w in &self.windows {
            if hole.last < w.first || hole.first > w.last {
                out.push(*w);
                continue;
            }
            if hole.first > w.first {
                out.push(IovaWindow {
                    first: w.first,
                    last: hole.first - 1,
                });
            }
            if hole.last < w.last {
                out.push(IovaWindow {
                    first: hole.last + 1,
                    last: w.last,
                });
            }
        }
        Self { windows: out }
    }

    pub fn windows(&self) -> &[IovaWindow] {
        &self.windows
    }

    /// Whether `[start, start + len)` fits inside one window (what a MAP must satisfy).
    pub fn permits(&self, start: u64, len: u64) -> bool {
        self.windows.iter().any(|w| w.contains_range(start, len))
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.windows.iter().any(|w| w.contains(addr))
    }
}

impl fmt::Display for PermittedRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.windows.iter().map(ToString::to_string).collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(first: u64, last: u64) -> IovaWindow {
        IovaWindow::new(first, last).unwrap()
    }

    /// Asserts both edges of every window: the ends are permitted, one past them is not.
    fn assert_edges(r: &PermittedRanges) {
        for win in r.windows() {
            assert!(r.contains(win.first) && r.contains(win.last), "{win}");
            if win.first > 0 {
                assert!(!r.contains(win.first - 1), "{win}");
            }
            if win.last < u64::MAX {
                assert!(!r.contains(win.last + 1), "{win}");
            }
        }
    }

    #[test]
    fn seed_45_bit_iommu() {
        // "if your IOMMU only implements say, 45 bits of IOVA, then you'd have 0..0x1fffffffffff"
        let r = PermittedRanges::single(IovaWindow::aperture(45));
        assert_eq!(r.windows(), &[w(0, 0x1fff_ffff_ffff)]);
        assert_edges(&r);
        assert!(r.permits(0x1fff_ffff_f000, 0x1000));
        assert!(!r.permits(0x1fff_ffff_f000, 0x1001));
    }

    #[test]
    fn seed_power_windows_exact_numbers() {
        // The email's numbers: 0x00000000..0x3fffffff and 0x800000000000000..0x8001fffffffffff.
        let r = PermittedRanges::from_windows([
            IovaWindow::from_base_size(0x800000000000000, 1 << 45).unwrap(),
            IovaWindow::from_base_size(0, 1 << 30).unwrap(),
        ]);
        assert_eq!(
            r.windows(),
            &[
                w(0x00000000, 0x3fffffff),
                w(0x800000000000000, 0x8001fffffffffff)
            ]
        );
        assert_edges(&r);
        assert!(
            !r.permits(0x3fff_f000, 0x2000),
            "MAP across the end of the 32-bit window"
        );
    }

    #[test]
    fn seed_full_64_bit_with_hole() {
        // Hole written 0xaaaa000..0xbbbb0000 in the email: start read as 0xaaaa0000, end exclusive.
        let hole = IovaWindow::new(0xaaaa_0000, 0xbbbb_0000 - 1).unwrap();
        let r = PermittedRanges::single(IovaWindow::aperture(64)).subtract(hole);
        assert_eq!(
            r.windows(),
            &[w(0, 0xaaa9ffff), w(0xbbbb0000, 0xffffffffffffffff)]
        );
        assert_edges(&r);
        assert!(r.contains(u64::MAX));
        assert!(!r.contains(0xaaaa_0000) && !r.contains(0xbbba_ffff));
    }

    #[test]
    fn subtract_edges_and_merging() {
        let full = PermittedRanges::single(w(0, 0xffff));
        assert_eq!(full.subtract(w(0, 0xff)).windows(), &[w(0x100, 0xffff)]);
        assert_eq!(
            full.subtract(w(0xff00, u64::MAX)).windows(),
            &[w(0, 0xfeff)]
        );
        assert_eq!(full.subtract(w(0, u64::MAX)), PermittedRanges::empty());
        assert_eq!(full.subtract(w(0x1_0000, 0x2_0000)), full);
        let merged = PermittedRanges::from_windows([w(0, 9), w(10, 20), w(15, 30), w(40, 50)]);
        assert_eq!(merged.windows(), &[w(0, 30), w(40, 50)]);
        let all = PermittedRanges::from_windows([w(0, u64::MAX), w(5, 6)]);
        assert_eq!(all.windows(), &[w(0, u64::MAX)]);
    }

    #[test]
    fn separate_windows_stay_apart_when_they_touch() {
        // Two TCE windows that touch: 2^59 bytes at 0 and 2^30 bytes at 0x800000000000000.
        let lo = IovaWindow::from_base_size(0, 1 << 59).unwrap();
        let hi = IovaWindow::from_base_size(0x800000000000000, 1 << 30).unwrap();
        let r = PermittedRanges::from_separate_windows([hi, lo]);
        assert_eq!(r.windows(), &[lo, hi], "two ranges, sorted");
        assert_edges_inside(&r);
        assert!(r.permits(0x7ff_ffff_ffff_f000, 0x1000));
        assert!(r.permits(0x800000000000000, 0x1000));
        assert!(
            !r.permits(0x7ff_ffff_ffff_f000, 0x2000),
            "a mapping across the boundary crosses windows"
        );
        assert!(r.contains(0x7ff_ffff_ffff_ffff) && r.contains(0x800000000000000));
        // The merging constructor (VT-d / SMMUv3) still joins them.
        let merged = PermittedRanges::from_windows([hi, lo]);
        assert_eq!(merged.windows(), &[w(0, 0x800_0000_3fff_ffff)]);
        assert!(merged.permits(0x7ff_ffff_ffff_f000, 0x2000));
        // Overlaps still merge; disjoint windows are the same either way; subtract keeps them apart.
        assert_eq!(
            PermittedRanges::from_separate_windows([w(0, 10), w(5, 20), w(21, 30)]).windows(),
            &[w(0, 20), w(21, 30)]
        );
        let seed = [w(0, 0x3fffffff), w(0x800000000000000, 0x8001fffffffffff)];
        assert_eq!(
            PermittedRanges::from_separate_windows(seed),
            PermittedRanges::from_windows(seed)
        );
        assert_eq!(
            r.subtract(w(0, 0xfff)).windows(),
            &[w(0x1000, 0x7ff_ffff_ffff_ffff), hi]
        );
        assert_eq!(
            PermittedRanges::from_separate_windows([w(0, u64::MAX), w(5, 6)]).windows(),
            &[w(0, u64::MAX)]
        );
    }

    /// Every window's ends are permitted.
    fn assert_edges_inside(r: &PermittedRanges) {
        for win in r.windows() {
            assert!(r.contains(win.first) && r.contains(win.last), "{win}");
        }
    }

    #[test]
    fn windows_reject_bad_input() {
        assert_eq!(IovaWindow::new(2, 1), None);
        assert_eq!(IovaWindow::from_base_size(1, 0), None);
        assert_eq!(IovaWindow::from_base_size(u64::MAX, 2), None);
        assert_eq!(IovaWindow::aperture(64), w(0, u64::MAX));
        assert!(!w(0, 10).contains_range(5, 0));
        assert!(!w(0, u64::MAX).contains_range(u64::MAX, 2));
    }

    #[test]
    fn vtd_like_aperture_minus_msi_window() {
        // What Linux's IOMMU_IOAS_IOVA_RANGES reports for VT-d with a 48-bit aperture.
        let r =
            PermittedRanges::single(IovaWindow::aperture(48)).subtract(w(0xfee0_0000, 0xfeef_ffff));
        assert_eq!(
            r.windows(),
            &[w(0, 0xfedf_ffff), w(0xfef0_0000, 0xffff_ffff_ffff)]
        );
        assert_eq!(
            r.to_string(),
            "[0x0..=0xfedfffff, 0xfef00000..=0xffffffffffff]"
        );
    }
}
