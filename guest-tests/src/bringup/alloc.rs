//! A tiny physical allocator over the driver's RAM window: naturally aligned power-of-two blocks handed out
//! bottom-up, never freed one by one (a fresh bring-up resets it). Blocks are zeroed by the caller through
//! the backend, so the allocator itself is pure and unit tested.

/// Bump allocator over `[base, base + size)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageAlloc {
    base: u64,
    size: u64,
    next: u64,
}

impl PageAlloc {
    /// An allocator over `[base, base + size)`.
    pub fn new(base: u64, size: u64) -> Self {
        Self {
            base,
            size,
            next: base,
        }
    }

    /// Allocates `size` bytes aligned to `align` (both rounded up to a power of two, at least 64 bytes).
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<u64, String> {
        let size = size
            .max(64)
            .checked_next_power_of_two()
            .ok_or("size overflows")?;
        let align = align
            .max(64)
            .checked_next_power_of_two()
            .ok_or("align overflows")?;
        let start = self
            .next
            .checked_add(align - 1)
            .map(|v| v & !(align - 1))
            .ok_or("address overflows")?;
        let end = start.checked_add(size).ok_or("address overflows")?;
        if end > self.base + self.size {
            return Err(format!(
                "out of bring-up memory: {size:#x} bytes aligned {align:#x} at {start:#x} pass the window end {:#x}",
                self.base + self.size
            ));
        }
        self.next = end;
        Ok(start)
    }

    /// Forgets every allocation.
    pub fn reset(&mut self) {
        self.next = self.base;
    }

    /// Bytes handed out so far (including alignment padding).
    pub fn used(&self) -> u64 {
        self.next - self.base
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

/// Allocates and zeroes a block through `b`.
pub fn zalloc(
    b: &mut dyn super::backend::Backend,
    a: &mut PageAlloc,
    size: u64,
    align: u64,
) -> Result<u64, String> {
    let pa = a.alloc(size, align)?;
    let len = size.max(64).next_power_of_two();
    let zeros = vec![0u8; 0x1_0000];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(zeros.len() as u64);
        b.mem_write(pa + done, &zeros[..n as usize])?;
        done += n;
    }
    Ok(pa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_disjoint() {
        let mut a = PageAlloc::new(0x1000_0000, 0x10_0000);
        let x = a.alloc(0x40, 0x40).unwrap();
        let y = a.alloc(0x1000, 0x1000).unwrap();
        let z = a.alloc(0x3000, 0x1000).unwrap();
        assert_eq!(x, 0x1000_0000);
        assert_eq!(y, 0x1000_1000);
        assert_eq!(z, y + 0x1000);
        let w = a.alloc(0x40, 0x40).unwrap();
        assert_eq!(w, z + 0x4000, "sizes round up to a power of two");
        let big = a.alloc(0x1_0000, 0x1_0000).unwrap();
        assert_eq!(big % 0x1_0000, 0);
        assert!(a.alloc(0x10_0000, 0x1000).is_err());
        a.reset();
        assert_eq!(a.used(), 0);
        assert_eq!(a.alloc(1, 1).unwrap(), 0x1000_0000);
    }
}
