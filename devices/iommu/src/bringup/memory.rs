//! The script's guest RAM (checked regions, lazily backed by anonymous mappings as the VMM's is) and the
//! interrupt sink that records the model's MSIs for `expect_msi`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::script::MemRegion;
use crate::mem::{DmaMemory, TestMemory};
use crate::request::InterruptSink;

/// The most guest RAM a script may declare, all regions together.
pub const MAX_MEMORY: u64 = 1 << 30;
/// Regions are whole 4 KiB pages.
const PAGE: u64 = 0x1000;

/// A checked, sorted list of `(base, size)` regions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    regions: Vec<(u64, u64)>,
}

impl Layout {
    /// Checks the regions: non-empty, 4 KiB aligned, not wrapping, disjoint, at most [`MAX_MEMORY`]
    /// in total.
    pub fn new(regions: &[MemRegion]) -> Result<Self, String> {
        let mut v: Vec<(u64, u64)> = Vec::with_capacity(regions.len());
        let mut total: u64 = 0;
        for (i, r) in regions.iter().enumerate() {
            let (base, size) = (r.base.0, r.size.0);
            if size == 0 {
                return Err(format!("region {i} (base {base:#x}) has size 0"));
            }
            if !base.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) {
                return Err(format!(
                    "region {i} ({base:#x}+{size:#x}): base and size must be multiples of 4 KiB"
                ));
            }
            if base.checked_add(size - 1).is_none() {
                return Err(format!(
                    "region {i} ({base:#x}+{size:#x}) wraps the address space"
                ));
            }
            total = total.saturating_add(size);
            if total > MAX_MEMORY {
                return Err(format!(
                    "{total:#x} bytes declared by region {i}; at most {MAX_MEMORY:#x} (1 GiB) in all"
                ));
            }
            v.push((base, size));
        }
        v.sort_unstable();
        for pair in v.windows(2) {
            let ((b0, s0), (b1, s1)) = (pair[0], pair[1]);
            if b1 - b0 < s0 {
                return Err(format!(
                    "regions {b0:#x}+{s0:#x} and {b1:#x}+{s1:#x} overlap"
                ));
            }
        }
        Ok(Self { regions: v })
    }

    /// Whether `[addr, addr + len)` lies inside one region (a zero length needs `addr` in or at the
    /// end of a region).
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        self.regions
            .iter()
            .any(|&(b, s)| addr >= b && addr - b <= s && len <= s - (addr - b))
    }

    /// The regions as guest memory (anonymous mappings: pages cost nothing until touched); with no
    /// region, a memory where every access fails.
    pub fn build(&self) -> Result<Arc<dyn DmaMemory>, String> {
        if self.regions.is_empty() {
            return Ok(Arc::new(TestMemory::new(0)));
        }
        let ranges: Vec<(GuestAddress, usize)> = self
            .regions
            .iter()
            .map(|&(b, s)| usize::try_from(s).map(|s| (GuestAddress(b), s)))
            .collect::<Result<_, _>>()
            .map_err(|_| "a region does not fit this host's address space".to_string())?;
        GuestMemoryMmap::<()>::from_ranges(&ranges)
            .map(|m| Arc::new(m) as Arc<dyn DmaMemory>)
            .map_err(|e| format!("cannot map guest RAM: {e}"))
    }

    pub fn describe(&self) -> String {
        if self.regions.is_empty() {
            return "no guest RAM".into();
        }
        self.regions
            .iter()
            .map(|(b, s)| format!("[{b:#x}, {:#x})", b + s))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Records every MSI the model sends, oldest first, until a step checks it.
#[derive(Debug, Default)]
pub struct MsiLog {
    pending: Mutex<VecDeque<(u64, u32)>>,
}

impl MsiLog {
    /// The oldest unchecked MSI, removed.
    pub fn pop(&self) -> Option<(u64, u32)> {
        self.lock().pop_front()
    }

    /// Every unchecked MSI, oldest first (left in place).
    pub fn pending(&self) -> Vec<(u64, u32)> {
        self.lock().iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, u32)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl InterruptSink for MsiLog {
    fn msi(&self, address: u64, data: u32) {
        self.lock().push_back((address, data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bringup::num::Num;

    fn region(base: u64, size: u64) -> MemRegion {
        MemRegion {
            base: Num(base),
            size: Num(size),
        }
    }

    #[test]
    fn layout_checks() {
        let l = Layout::new(&[region(0x10_0000, 0x1000), region(0, 0x2000)]).unwrap();
        assert!(l.contains(0, 0x2000));
        assert!(l.contains(0x1ff8, 8));
        assert!(!l.contains(0x1ffc, 8), "runs off the end");
        assert!(!l.contains(0x2000, 1), "hole");
        assert!(l.contains(0x10_0ff8, 8));
        assert!(!l.contains(u64::MAX, 2));
        assert_eq!(l.describe(), "[0x0, 0x2000), [0x100000, 0x101000)");
        let e = Layout::new(&[region(0, 0x2000), region(0x1000, 0x1000)]).unwrap_err();
        assert!(e.contains("overlap"), "{e}");
        let e = Layout::new(&[region(0, MAX_MEMORY), region(MAX_MEMORY, 0x1000)]).unwrap_err();
        assert!(e.contains("1 GiB"), "{e}");
        let e = Layout::new(&[region(0, !0xfff), region(1 << 40, 0x1000)]).unwrap_err();
        assert!(e.contains("1 GiB"), "{e}");
        assert!(Layout::new(&[region(0x800, 0x1000)])
            .unwrap_err()
            .contains("4 KiB"));
        assert!(Layout::new(&[region(0, 0)]).unwrap_err().contains("size 0"));
        let e = Layout::new(&[region(!0xfff, 0x2000)]).unwrap_err();
        assert!(e.contains("wraps"), "{e}");
    }

    #[test]
    fn built_memory_has_holes() {
        let l = Layout::new(&[region(0, 0x1000), region(0x1_0000_0000, 0x1000)]).unwrap();
        let m = l.build().unwrap();
        m.write_u64(0x1_0000_0ff8, 7).unwrap();
        assert_eq!(m.read_u64(0x1_0000_0ff8).unwrap(), 7);
        assert!(m.read_u64(0x1000).is_err());
        let none = Layout::new(&[]).unwrap().build().unwrap();
        assert!(none.read_u64(0).is_err());
    }

    #[test]
    fn msi_log_is_fifo() {
        let log = MsiLog::default();
        log.msi(0xfee0_0000, 1);
        log.msi(0xfee0_1000, 2);
        assert_eq!(log.pending(), vec![(0xfee0_0000, 1), (0xfee0_1000, 2)]);
        assert_eq!(log.pop(), Some((0xfee0_0000, 1)));
        assert_eq!(log.pop(), Some((0xfee0_1000, 2)));
        assert_eq!(log.pop(), None);
    }
}
