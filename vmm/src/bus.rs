//! Address-range dispatch for port I/O and MMIO exits.
//!
//! Devices are registered for a `[base, base + len)` range and receive accesses as an offset into it.
//! The bus is built before the vCPUs start and is read-only afterwards, so lookups need no lock;
//! each device has its own mutex.

use std::sync::{Arc, Mutex};

use thiserror::Error;

/// A device on a bus: sees accesses relative to the start of its range.
pub trait BusDevice: Send {
    /// Fill `data` for a read of `data.len()` bytes at `offset`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Handle a write of `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// Errors building a bus.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BusError {
    #[error("range {base:#x}+{len:#x} overlaps an existing device")]
    Overlap { base: u64, len: u64 },
    #[error("empty or wrapping range {base:#x}+{len:#x}")]
    BadRange { base: u64, len: u64 },
}

struct BusRange {
    base: u64,
    len: u64,
    device: Arc<Mutex<dyn BusDevice>>,
}

/// A set of non-overlapping device ranges.
#[derive(Default)]
pub struct Bus {
    ranges: Vec<BusRange>,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `device` for `[base, base + len)`.
    pub fn insert(
        &mut self,
        device: Arc<Mutex<dyn BusDevice>>,
        base: u64,
        len: u64,
    ) -> Result<(), BusError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(BusError::BadRange { base, len })?;
        let pos = self.ranges.partition_point(|r| r.base < base);
        let overlaps_prev = pos > 0 && self.ranges[pos - 1].base + self.ranges[pos - 1].len > base;
        let overlaps_next = self.ranges.get(pos).is_some_and(|r| r.base < end);
        if overlaps_prev || overlaps_next {
            return Err(BusError::Overlap { base, len });
        }
        self.ranges.insert(pos, BusRange { base, len, device });
        Ok(())
    }

    /// The device covering the whole access `[addr, addr + size)` and the offset of `addr` in its range.
    fn resolve(&self, addr: u64, size: usize) -> Option<(&Arc<Mutex<dyn BusDevice>>, u64)> {
        let pos = self.ranges.partition_point(|r| r.base <= addr);
        let r = self.ranges.get(pos.checked_sub(1)?)?;
        let offset = addr - r.base;
        (offset.checked_add(size as u64)? <= r.len).then_some((&r.device, offset))
    }

    /// Dispatches a read; returns false if no device covers the access.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.resolve(addr, data.len()) {
            Some((dev, offset)) => {
                lock(dev).read(offset, data);
                true
            }
            None => false,
        }
    }

    /// Dispatches a write; returns false if no device covers the access.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.resolve(addr, data.len()) {
            Some((dev, offset)) => {
                lock(dev).write(offset, data);
                true
            }
            None => false,
        }
    }
}

/// Locks a device, recovering from a poisoned lock: a device that panicked mid-access on another vCPU has
/// already ended the VM's usefulness, but this vCPU must not panic in turn.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        writes: Vec<(u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.writes.push((offset, data.to_vec()));
        }
    }

    #[test]
    fn dispatches_by_offset() {
        let dev = Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::new();
        bus.insert(dev.clone(), 0x3f8, 8).unwrap();
        let mut b = [0u8; 1];
        assert!(bus.read(0x3fd, &mut b));
        assert_eq!(b[0], 5);
        assert!(bus.write(0x3f8, &[0x41]));
        assert_eq!(dev.lock().unwrap().writes, vec![(0, vec![0x41])]);
    }

    #[test]
    fn misses_and_straddles_are_unassigned() {
        let mut bus = Bus::new();
        bus.insert(Arc::new(Mutex::new(Recorder::default())), 0x1000, 0x10)
            .unwrap();
        let mut b = [0u8; 4];
        assert!(!bus.read(0xfff, &mut b[..1]));
        assert!(!bus.read(0x1010, &mut b[..1]));
        assert!(!bus.read(0x100e, &mut b), "access straddling the end");
        assert!(bus.read(0x100c, &mut b));
        assert!(!bus.write(u64::MAX, &b));
    }

    #[test]
    fn rejects_overlaps_and_bad_ranges() {
        let mut bus = Bus::new();
        let d = || Arc::new(Mutex::new(Recorder::default())) as Arc<Mutex<dyn BusDevice>>;
        bus.insert(d(), 0x100, 0x100).unwrap();
        assert_eq!(
            bus.insert(d(), 0x1ff, 1),
            Err(BusError::Overlap {
                base: 0x1ff,
                len: 1
            })
        );
        assert_eq!(
            bus.insert(d(), 0x80, 0x81),
            Err(BusError::Overlap {
                base: 0x80,
                len: 0x81
            })
        );
        assert!(bus.insert(d(), 0x80, 0x80).is_ok());
        assert!(bus.insert(d(), 0x200, 0x10).is_ok());
        assert_eq!(
            bus.insert(d(), 0x300, 0),
            Err(BusError::BadRange {
                base: 0x300,
                len: 0
            })
        );
        assert!(bus.insert(d(), u64::MAX, 2).is_err());
    }
}
