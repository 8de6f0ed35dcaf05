//! Shared by every fuzz target (included with `#[path]` from the per-model helpers): the input reader
//! and an interrupt sink that only counts.
#![allow(dead_code)]

use iommu::InterruptSink;

/// Reads fuzz input front to back; past the end everything reads as zero.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }

    fn le(&mut self, n: usize) -> u64 {
        let mut b = [0u8; 8];
        let src = self.bytes(n);
        b[..src.len()].copy_from_slice(src);
        u64::from_le_bytes(b)
    }

    pub fn u8(&mut self) -> u8 {
        self.le(1) as u8
    }

    pub fn u16(&mut self) -> u16 {
        self.le(2) as u16
    }

    pub fn u32(&mut self) -> u32 {
        self.le(4) as u32
    }

    pub fn u64(&mut self) -> u64 {
        self.le(8)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    /// A value in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        u64::from(self.u16()) % n
    }

    /// Usually 0 (always once the input is used up); sometimes (one byte in eight) fuzz-chosen bits:
    /// for sprinkling reserved bits.
    pub fn noise(&mut self) -> u64 {
        if self.u8() & 7 == 7 {
            self.u64()
        } else {
            0
        }
    }
}

/// Interrupts the unit sends: only counted (they must never panic or block).
#[derive(Default)]
pub struct CountIrq(pub std::sync::atomic::AtomicU64);

impl InterruptSink for CountIrq {
    fn msi(&self, _address: u64, _data: u32) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
