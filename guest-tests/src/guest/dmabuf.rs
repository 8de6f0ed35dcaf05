//! Page-aligned anonymous memory for DMA through iommufd, and its guest-physical address via
//! `/proc/self/pagemap` (PFNs are visible to root, which PID 1 is).

use std::os::unix::fs::FileExt;
use std::path::Path;

/// Small page size.
pub const PAGE: u64 = 4096;
/// 2 MiB (a second-stage large page).
pub const HUGE_2M: u64 = 2 << 20;

/// pagemap entry: page present.
pub const PM_PRESENT: u64 = 1 << 63;
/// pagemap entry: PFN bits 54:0.
pub const PM_PFN_MASK: u64 = (1 << 55) - 1;

/// Decodes one pagemap entry into a PFN; `None` if the page is not present or the PFN is hidden (0).
pub fn pagemap_pfn(entry: u64) -> Option<u64> {
    if entry & PM_PRESENT == 0 {
        return None;
    }
    let pfn = entry & PM_PFN_MASK;
    (pfn != 0).then_some(pfn)
}

/// An anonymous private mapping of `len` bytes whose start is aligned to `align`, zero filled and touched.
pub struct DmaBuffer {
    /// Start of the whole mapping (for munmap).
    base: *mut u8,
    map_len: usize,
    /// The aligned buffer inside it.
    ptr: *mut u8,
    len: usize,
}

impl DmaBuffer {
    /// Allocates `len` bytes (a multiple of [`PAGE`]) aligned to `align` (a power of two >= [`PAGE`]).
    pub fn new(len: usize, align: usize) -> Result<Self, String> {
        if len == 0
            || !(len as u64).is_multiple_of(PAGE)
            || !align.is_power_of_two()
            || (align as u64) < PAGE
        {
            return Err(format!(
                "bad DMA buffer request: len {len:#x}, align {align:#x}"
            ));
        }
        let map_len = len
            .checked_add(align - PAGE as usize)
            .ok_or_else(|| format!("DMA buffer too large: {len:#x}"))?;
        // SAFETY: a fresh anonymous private mapping; the kernel picks the address. Nothing aliases it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!(
                "mmap {map_len:#x} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        let base = p.cast::<u8>();
        let skip = (align - (base as usize) % align) % align;
        // SAFETY: skip < align and skip + len <= map_len, so the result stays inside the mapping.
        let ptr = unsafe { base.add(skip) };
        // Ask for a transparent huge page where the kernel has them (harmless otherwise), then touch every page
        // so it is populated before the kernel pins it.
        // SAFETY: advice on a range inside our own mapping; failure is ignored.
        unsafe { libc::madvise(ptr.cast(), len, libc::MADV_HUGEPAGE) };
        let mut b = Self {
            base,
            map_len,
            ptr,
            len,
        };
        b.as_mut_slice().fill(0);
        Ok(b)
    }

    /// The buffer's address in this process (`user_va` for IOMMU_IOAS_MAP).
    pub fn va(&self) -> u64 {
        self.ptr as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is inside our live mapping, initialised (zero filled at creation), and only
        // borrowed through `self`. The device may write it by DMA; tests read it only after the DMA command
        // has completed (the device runs commands synchronously within the MMIO write).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, with the unique borrow of `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Re-reads the buffer with volatile loads (after a DMA that wrote it behind the compiler's back).
    pub fn snapshot(&self) -> Vec<u8> {
        (0..self.len)
            // SAFETY: every index is inside the live mapping.
            .map(|i| unsafe { std::ptr::read_volatile(self.ptr.add(i)) })
            .collect()
    }

    /// The aligned u64 at byte `off`, read with a volatile load (the IOMMU may have written it, e.g. an
    /// accessed/dirty flag in a page-table entry); `None` when outside or unaligned.
    pub fn read_u64(&self, off: usize) -> Option<u64> {
        if !off.is_multiple_of(8) || off.checked_add(8)? > self.len {
            return None;
        }
        // SAFETY: `off` is 8-aligned (the buffer is page aligned) and off+8 <= len: inside the live mapping.
        Some(unsafe { std::ptr::read_volatile(self.ptr.add(off).cast::<u64>()) })
    }

    /// Stores `v` at byte `off` with a volatile store; false when outside or unaligned.
    pub fn write_u64(&mut self, off: usize, v: u64) -> bool {
        if !off.is_multiple_of(8) || off.checked_add(8).is_none_or(|e| e > self.len) {
            return false;
        }
        // SAFETY: as in `read_u64`, with the unique borrow of `self`.
        unsafe { std::ptr::write_volatile(self.ptr.add(off).cast::<u64>(), v) };
        true
    }

    /// Guest-physical address of byte `offset`, from `pagemap` (`/proc/self/pagemap` in the guest).
    pub fn phys_addr(&self, pagemap: &Path, offset: usize) -> Result<u64, String> {
        if offset >= self.len {
            return Err(format!("offset {offset:#x} outside the buffer"));
        }
        let va = self.va() + offset as u64;
        let f = std::fs::File::open(pagemap)
            .map_err(|e| format!("cannot open {}: {e}", pagemap.display()))?;
        let mut e = [0u8; 8];
        f.read_exact_at(&mut e, (va / PAGE) * 8)
            .map_err(|err| format!("read {} at va {va:#x}: {err}", pagemap.display()))?;
        let entry = u64::from_le_bytes(e);
        let pfn = pagemap_pfn(entry).ok_or_else(|| {
            format!("pagemap entry {entry:#x} for va {va:#x} has no PFN (not present or not root?)")
        })?;
        Ok(pfn * PAGE + va % PAGE)
    }

    /// Whether the buffer is physically contiguous (every page follows the previous one).
    pub fn phys_contiguous(&self, pagemap: &Path) -> Result<bool, String> {
        let first = self.phys_addr(pagemap, 0)?;
        for off in (PAGE as usize..self.len).step_by(PAGE as usize) {
            if self.phys_addr(pagemap, off)? != first + off as u64 {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no borrow outlives `self`.
        unsafe { libc::munmap(self.base.cast(), self.map_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pagemap_entries() {
        assert_eq!(pagemap_pfn(PM_PRESENT | 0x1234), Some(0x1234));
        assert_eq!(pagemap_pfn(0x1234), None);
        // Present but PFN hidden (non-root readers see 0).
        assert_eq!(pagemap_pfn(PM_PRESENT), None);
        // Flag bits above 54 are not part of the PFN.
        assert_eq!(pagemap_pfn(PM_PRESENT | (1 << 55) | 7), Some(7));
    }

    #[test]
    fn buffers_are_aligned_zeroed_and_writable() {
        for align in [PAGE as usize, HUGE_2M as usize] {
            let mut b = DmaBuffer::new(2 * PAGE as usize, align).unwrap();
            assert_eq!(b.va() % align as u64, 0);
            assert_eq!(b.len(), 8192);
            assert!(b.as_slice().iter().all(|&x| x == 0));
            b.as_mut_slice()[4097] = 0xa5;
            assert_eq!(b.snapshot()[4097], 0xa5);
        }
        let mut b = DmaBuffer::new(PAGE as usize, PAGE as usize).unwrap();
        assert!(b.write_u64(8, 0x1122_3344_5566_7788));
        assert_eq!(b.read_u64(8), Some(0x1122_3344_5566_7788));
        assert_eq!(b.as_slice()[8], 0x88);
        assert_eq!(b.read_u64(4), None);
        assert_eq!(b.read_u64(PAGE as usize - 8), Some(0));
        assert_eq!(b.read_u64(PAGE as usize), None);
        assert!(!b.write_u64(PAGE as usize, 1));
        assert!(!b.write_u64(usize::MAX - 3, 1));
        assert!(DmaBuffer::new(100, 4096).is_err());
        assert!(DmaBuffer::new(4096, 3000).is_err());
        assert!(DmaBuffer::new(0, 4096).is_err());
    }

    #[test]
    fn phys_addr_reads_pagemap() {
        let b = DmaBuffer::new(PAGE as usize, PAGE as usize).unwrap();
        // A fake pagemap: entry for the buffer's page says PFN 0x42.
        let dir = std::env::temp_dir().join(format!("guest-tests-pagemap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pm = dir.join("pagemap");
        let f = std::fs::File::create(&pm).unwrap();
        f.write_all_at(&(PM_PRESENT | 0x42).to_le_bytes(), (b.va() / PAGE) * 8)
            .unwrap();
        assert_eq!(b.phys_addr(&pm, 0x10).unwrap(), 0x42 * PAGE + 0x10);
        assert!(b.phys_addr(&pm, PAGE as usize).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
