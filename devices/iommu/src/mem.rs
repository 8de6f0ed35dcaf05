//! Guest-physical memory as IOMMU models and DMA engines see it.

use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, VolatileMemory};

/// An access that guest memory could not satisfy (outside RAM, or straddling a hole).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("guest-physical access {addr:#x}+{len:#x} is outside guest RAM")]
pub struct MemError {
    pub addr: u64,
    pub len: usize,
}

/// Guest-physical memory: byte-exact reads and writes that fail outside RAM.
pub trait DmaMemory: Send + Sync {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;
    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError>;

    /// Little-endian 64-bit read (table entries).
    fn read_u64(&self, addr: u64) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Little-endian 64-bit write.
    fn write_u64(&self, addr: u64, value: u64) -> Result<(), MemError> {
        self.write(addr, &value.to_le_bytes())
    }

    /// Little-endian 32-bit write (status words).
    fn write_u32(&self, addr: u64, value: u32) -> Result<(), MemError> {
        self.write(addr, &value.to_le_bytes())
    }

    /// Replaces the little-endian qword at `addr` with `new` if it still holds `current`, like a locked
    /// `cmpxchg` (how IOMMUs set accessed/dirty bits in page-table entries). Returns the value found
    /// (equal to `current` on success). The default is a read then a conditional write: atomic only
    /// against this memory's other users if they are serialized with the caller.
    fn compare_exchange_u64(&self, addr: u64, current: u64, new: u64) -> Result<u64, MemError> {
        let found = self.read_u64(addr)?;
        if found == current {
            self.write_u64(addr, new)?;
        }
        Ok(found)
    }
}

impl DmaMemory for GuestMemoryMmap {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let err = MemError {
            addr,
            len: buf.len(),
        };
        addr.checked_add(buf.len() as u64).ok_or(err)?;
        self.read_slice(buf, GuestAddress(addr)).map_err(|_| err)
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        let err = MemError {
            addr,
            len: buf.len(),
        };
        addr.checked_add(buf.len() as u64).ok_or(err)?;
        self.write_slice(buf, GuestAddress(addr)).map_err(|_| err)
    }

    /// A real atomic compare-exchange on the guest's RAM (naturally aligned qwords only, as page-table
    /// entries always are), so a vCPU writing the same entry concurrently is never overwritten.
    fn compare_exchange_u64(&self, addr: u64, current: u64, new: u64) -> Result<u64, MemError> {
        let err = MemError { addr, len: 8 };
        if !addr.is_multiple_of(8) {
            return Err(err);
        }
        let slice = self.get_slice(GuestAddress(addr), 8).map_err(|_| err)?;
        let atomic = slice
            .get_atomic_ref::<std::sync::atomic::AtomicU64>(0)
            .map_err(|_| err)?;
        // Guest memory is little-endian; the atomic works in host order.
        let found = match atomic.compare_exchange(
            current.to_le(),
            new.to_le(),
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
        ) {
            Ok(v) | Err(v) => v,
        };
        Ok(u64::from_le(found))
    }
}

/// Flat test memory `[0, size)`, for unit tests, fuzz targets and benchmarks.
pub struct TestMemory {
    bytes: std::sync::Mutex<Vec<u8>>,
}

impl TestMemory {
    pub fn new(size: usize) -> Self {
        Self {
            bytes: std::sync::Mutex::new(vec![0; size]),
        }
    }

    fn range(
        &self,
        addr: u64,
        len: usize,
        total: usize,
    ) -> Result<std::ops::Range<usize>, MemError> {
        let err = MemError { addr, len };
        let start = usize::try_from(addr).map_err(|_| err)?;
        let end = start.checked_add(len).filter(|&e| e <= total).ok_or(err)?;
        Ok(start..end)
    }
}

impl DmaMemory for TestMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.range(addr, buf.len(), bytes.len())?;
        buf.copy_from_slice(&bytes[r]);
        Ok(())
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.range(addr, buf.len(), bytes.len())?;
        bytes[r].copy_from_slice(buf);
        Ok(())
    }

    /// Atomic: the whole exchange happens under the memory's lock.
    fn compare_exchange_u64(&self, addr: u64, current: u64, new: u64) -> Result<u64, MemError> {
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.range(addr, 8, bytes.len())?;
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[r.clone()]);
        let found = u64::from_le_bytes(b);
        if found == current {
            bytes[r].copy_from_slice(&new.to_le_bytes());
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_memory_bounds() {
        let m = TestMemory::new(0x2000);
        m.write_u64(0x1ff8, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(m.read_u64(0x1ff8).unwrap(), 0x1122_3344_5566_7788);
        assert_eq!(
            m.read_u64(0x1ffc),
            Err(MemError {
                addr: 0x1ffc,
                len: 8
            })
        );
        assert!(m.read_u64(u64::MAX - 3).is_err());
        assert!(m.write(u64::MAX, &[1, 2]).is_err());
    }

    #[test]
    fn guest_memory_mmap_bounds_and_holes() {
        let m = GuestMemoryMmap::<()>::from_ranges(&[
            (GuestAddress(0), 0x1000),
            (GuestAddress(0x3000), 0x1000),
        ])
        .unwrap();
        m.write_u64(0x3000, 7).unwrap();
        assert_eq!(m.read_u64(0x3000).unwrap(), 7);
        assert!(m.read_u64(0x1000).is_err(), "hole");
        assert!(m.read_u64(0xffc).is_err(), "straddles into the hole");
        assert!(m.read_u64(u64::MAX - 1).is_err());
    }

    #[test]
    fn compare_exchange() {
        let t = TestMemory::new(0x1000);
        let g = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        for m in [&t as &dyn DmaMemory, &g as &dyn DmaMemory] {
            m.write_u64(0x10, 0x1001).unwrap();
            assert_eq!(
                m.compare_exchange_u64(0x10, 0x1001, 0x1021).unwrap(),
                0x1001
            );
            assert_eq!(m.read_u64(0x10).unwrap(), 0x1021);
            // A stale expectation changes nothing and reports what is there.
            assert_eq!(
                m.compare_exchange_u64(0x10, 0x1001, 0x1061).unwrap(),
                0x1021
            );
            assert_eq!(m.read_u64(0x10).unwrap(), 0x1021);
            assert!(m.compare_exchange_u64(0x1000, 0, 1).is_err());
            assert!(m.compare_exchange_u64(u64::MAX - 3, 0, 1).is_err());
        }
        // The default (non-overridden) implementation behaves the same.
        struct Plain(TestMemory);
        impl DmaMemory for Plain {
            fn read(&self, a: u64, b: &mut [u8]) -> Result<(), MemError> {
                self.0.read(a, b)
            }
            fn write(&self, a: u64, b: &[u8]) -> Result<(), MemError> {
                self.0.write(a, b)
            }
        }
        let p = Plain(TestMemory::new(0x100));
        p.write_u64(8, 5).unwrap();
        assert_eq!(p.compare_exchange_u64(8, 5, 7).unwrap(), 5);
        assert_eq!(p.compare_exchange_u64(8, 5, 9).unwrap(), 7);
        assert_eq!(p.read_u64(8).unwrap(), 7);
    }
}
