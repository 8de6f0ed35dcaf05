//! A model's register window as its users see it: byte accesses (what a bus hands over) and the sized
//! little-endian accesses drivers, tests, benches and bring-up scripts make. One definition for all of them.

/// The register window of an IOMMU model. Implementations never panic: offsets or sizes the model does not
/// implement read as zero (or all ones, as the model documents) and writes to them are ignored.
pub trait RegisterWindow: Send + Sync {
    /// Reads `data.len()` bytes at `offset`.
    fn mmio_read(&self, offset: u64, data: &mut [u8]);

    /// Writes `data` at `offset`.
    fn mmio_write(&self, offset: u64, data: &[u8]);

    /// A little-endian read of `size` bytes (at most 8).
    fn read_sized(&self, offset: u64, size: u8) -> u64 {
        let mut b = [0u8; 8];
        let b = &mut b[..usize::from(size.min(8))];
        self.mmio_read(offset, b);
        from_le(b)
    }

    /// A little-endian write of the low `size` bytes (at most 8) of `value`.
    fn write_sized(&self, offset: u64, size: u8, value: u64) {
        self.mmio_write(offset, &value.to_le_bytes()[..usize::from(size.min(8))]);
    }

    fn read32(&self, offset: u64) -> u32 {
        self.read_sized(offset, 4) as u32
    }

    fn read64(&self, offset: u64) -> u64 {
        self.read_sized(offset, 8)
    }

    fn write32(&self, offset: u64, value: u32) {
        self.write_sized(offset, 4, u64::from(value));
    }

    fn write64(&self, offset: u64, value: u64) {
        self.write_sized(offset, 8, value);
    }
}

/// The value of up to 8 little-endian bytes (bytes beyond 8 are ignored).
pub(crate) fn from_le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .enumerate()
        .fold(0, |acc, (i, b)| acc | u64::from(*b) << (8 * i))
}

/// Implements [`RegisterWindow`] for models with inherent `mmio_read(&self, u64, &mut [u8])` and
/// `mmio_write(&self, u64, &[u8])`.
macro_rules! register_window {
    ($($model:ty),*) => {$(
        impl $crate::registers::RegisterWindow for $model {
            fn mmio_read(&self, offset: u64, data: &mut [u8]) {
                <$model>::mmio_read(self, offset, data);
            }
            fn mmio_write(&self, offset: u64, data: &[u8]) {
                <$model>::mmio_write(self, offset, data);
            }
        }
    )*};
}

register_window!(crate::vtd::Vtd, crate::smmuv3::Smmuv3, crate::tce::Tce);

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// 16 bytes of registers that record every access.
    #[derive(Default)]
    struct Regs(Mutex<[u8; 16]>);

    impl RegisterWindow for Regs {
        fn mmio_read(&self, offset: u64, data: &mut [u8]) {
            let r = self.0.lock().unwrap();
            for (i, b) in data.iter_mut().enumerate() {
                *b = r.get(offset as usize + i).copied().unwrap_or(0xff);
            }
        }
        fn mmio_write(&self, offset: u64, data: &[u8]) {
            let mut r = self.0.lock().unwrap();
            for (i, b) in data.iter().enumerate() {
                if let Some(slot) = r.get_mut(offset as usize + i) {
                    *slot = *b;
                }
            }
        }
    }

    #[test]
    fn from_le_reads_up_to_eight_bytes() {
        assert_eq!(from_le(&[0x88, 0x77, 0x66, 0x55]), 0x5566_7788);
        assert_eq!(from_le(&u64::MAX.to_le_bytes()), u64::MAX);
        assert_eq!(from_le(&[1; 12]), 0x0101_0101_0101_0101);
    }

    #[test]
    fn sized_accesses_are_little_endian() {
        let r = Regs::default();
        r.write64(0, 0x0807_0605_0403_0201);
        assert_eq!(r.0.lock().unwrap()[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(r.read32(4), 0x0807_0605);
        assert_eq!(r.read_sized(1, 2), 0x0302);
        r.write32(8, 0xdead_beef);
        assert_eq!(r.read64(8), 0xdead_beef);
        r.write_sized(12, 200, u64::MAX);
        assert_eq!(r.read_sized(12, 200), u64::MAX, "sizes above 8 are 8");
        assert_eq!(
            r.read64(12),
            u64::MAX,
            "beyond the window reads all ones here"
        );
    }
}
