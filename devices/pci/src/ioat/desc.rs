//! The 64-byte I/OAT version 3 DMA descriptor (`struct ioat_dma_descriptor` in Linux's
//! `drivers/dma/ioat/hw.h`, the same layout the VFIO selftest driver builds) and what a channel makes of it.
//!
//! | bytes | field | meaning |
//! |---|---|---|
//! | 0..4 | `size` | transfer size in bytes |
//! | 4..8 | `ctl` | control: bit 0 `int_en`, 1 `src_snoop_dis`, 2 `dest_snoop_dis`, 3 `compl_write`, 4 `fence`, 5 `null`, 6 `src_brk`, 7 `dest_brk`, 8 `bundle`, 9 `dest_dca`, 10 `hint`, 31:24 `op` |
//! | 8..16 | `src_addr` | source IOVA (COPY) or the 64-bit pattern (FILL) |
//! | 16..24 | `dst_addr` | destination IOVA |
//! | 24..32 | `next` | IOVA of the next descriptor (64-byte aligned) |
//! | 32..64 | | reserved / page-break addresses / software data (`user1`, `user2`): ignored |
//!
//! Ops: [`OP_COPY`] (0x00; with `null` set it moves nothing, Linux's `ioat_start_null_desc` and
//! `ioat_prep_interrupt_lock`) and [`OP_FILL`] (0x01, the block fill of `IOAT_CAP_FILL_BLOCK`: the 8-byte pattern
//! in `src_addr` repeated over the destination, as DPDK's ioat driver issues it). XOR (0x87/0x88), PQ
//! (0x89..0x8b, 0xa0/0xa1) and anything else are descriptor control errors: DMACAPABILITY offers no RAID.
//!
//! Snoop, bundle, DCA and hint bits do not change what a coherent, synchronous model does and are ignored;
//! `fence` is honoured trivially (every descriptor completes before the next starts). The page-break bits need
//! `IOAT_CAP_PAGE_BREAK`, which is not offered, so they are control errors rather than silently wrong copies.

use super::regs::{CHANERR_CONTROL, CHANERR_LENGTH, MAX_TRANSFER};

/// `IOAT_DESC_SZ`.
pub const DESC_SIZE: usize = 64;
/// Descriptors (and CHAINADDR) must be 64-byte aligned.
pub const DESC_ALIGN: u64 = 64;

/// `IOAT_OP_COPY`.
pub const OP_COPY: u8 = 0x00;
/// `IOAT_OP_FILL` (block fill).
pub const OP_FILL: u8 = 0x01;
/// `IOAT_OP_XOR` (not offered).
pub const OP_XOR: u8 = 0x87;
/// `IOAT_OP_PQ` (not offered).
pub const OP_PQ: u8 = 0x89;

pub const CTL_INT_EN: u32 = 1 << 0;
pub const CTL_SRC_SNOOP_DIS: u32 = 1 << 1;
pub const CTL_DEST_SNOOP_DIS: u32 = 1 << 2;
pub const CTL_COMPL_WRITE: u32 = 1 << 3;
pub const CTL_FENCE: u32 = 1 << 4;
pub const CTL_NULL: u32 = 1 << 5;
pub const CTL_SRC_BRK: u32 = 1 << 6;
pub const CTL_DEST_BRK: u32 = 1 << 7;
pub const CTL_BUNDLE: u32 = 1 << 8;
pub const CTL_DEST_DCA: u32 = 1 << 9;
pub const CTL_HINT: u32 = 1 << 10;
pub const CTL_OP_SHIFT: u32 = 24;

/// The fields of a descriptor the channel uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    pub size: u32,
    pub ctl: u32,
    pub src: u64,
    pub dst: u64,
    pub next: u64,
}

/// What one descriptor asks the channel to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A NULL descriptor: no data moves (completion write and interrupt still happen).
    Null,
    /// Copy `len` bytes from `src` to `dst`.
    Copy { src: u64, dst: u64, len: u32 },
    /// Write `len` bytes of the repeated little-endian `pattern` at `dst`.
    Fill { pattern: u64, dst: u64, len: u32 },
}

fn le32(b: &[u8; DESC_SIZE], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8; DESC_SIZE], at: usize) -> u64 {
    u64::from(le32(b, at)) | u64::from(le32(b, at + 4)) << 32
}

impl Descriptor {
    /// Decodes the 64 bytes fetched from the descriptor's address.
    pub fn parse(b: &[u8; DESC_SIZE]) -> Self {
        Descriptor {
            size: le32(b, 0),
            ctl: le32(b, 4),
            src: le64(b, 8),
            dst: le64(b, 16),
            next: le64(b, 24),
        }
    }

    /// The 64 bytes of this descriptor (reserved fields zero), for tests and drivers.
    pub fn to_bytes(&self) -> [u8; DESC_SIZE] {
        let mut b = [0u8; DESC_SIZE];
        b[0..4].copy_from_slice(&self.size.to_le_bytes());
        b[4..8].copy_from_slice(&self.ctl.to_le_bytes());
        b[8..16].copy_from_slice(&self.src.to_le_bytes());
        b[16..24].copy_from_slice(&self.dst.to_le_bytes());
        b[24..32].copy_from_slice(&self.next.to_le_bytes());
        b
    }

    /// The op field (bits 31:24 of `ctl`).
    pub fn op(&self) -> u8 {
        (self.ctl >> CTL_OP_SHIFT) as u8
    }

    pub fn int_en(&self) -> bool {
        self.ctl & CTL_INT_EN != 0
    }

    pub fn compl_write(&self) -> bool {
        self.ctl & CTL_COMPL_WRITE != 0
    }

    pub fn fence(&self) -> bool {
        self.ctl & CTL_FENCE != 0
    }

    pub fn null(&self) -> bool {
        self.ctl & CTL_NULL != 0
    }

    /// Validates the descriptor: the operation, or the CHANERR bit the channel reports.
    pub fn operation(&self) -> Result<Operation, u32> {
        let op = self.op();
        if op != OP_COPY && op != OP_FILL {
            return Err(CHANERR_CONTROL);
        }
        if op == OP_COPY && self.null() {
            // Linux sets size 1 (`NULL_DESC_BUFFER_SIZE`, a version 3.0 erratum); a NULL descriptor moves
            // nothing, whatever its size and addresses.
            return Ok(Operation::Null);
        }
        if self.ctl & (CTL_SRC_BRK | CTL_DEST_BRK) != 0 {
            return Err(CHANERR_CONTROL);
        }
        if self.size == 0 || self.size > MAX_TRANSFER {
            return Err(CHANERR_LENGTH);
        }
        Ok(if op == OP_COPY {
            Operation::Copy {
                src: self.src,
                dst: self.dst,
                len: self.size,
            }
        } else {
            Operation::Fill {
                pattern: self.src,
                dst: self.dst,
                len: self.size,
            }
        })
    }
}

/// The control word of a descriptor with op `op` and flags `flags` (`CTL_*`).
pub const fn ctl(op: u8, flags: u32) -> u32 {
    (op as u32) << CTL_OP_SHIFT | flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_struct_ioat_dma_descriptor() {
        let d = Descriptor {
            size: 0x1122_3344,
            ctl: ctl(OP_COPY, CTL_INT_EN | CTL_COMPL_WRITE),
            src: 0x0102_0304_0506_0708,
            dst: 0x1112_1314_1516_1718,
            next: 0x2122_2324_2526_2740,
        };
        let b = d.to_bytes();
        assert_eq!(&b[0..4], &[0x44, 0x33, 0x22, 0x11]);
        assert_eq!(b[4], 0x09, "int_en | compl_write");
        assert_eq!(b[7], OP_COPY);
        assert_eq!(b[8], 0x08);
        assert_eq!(b[16], 0x18);
        assert_eq!(b[24], 0x40);
        assert!(b[32..].iter().all(|&x| x == 0));
        assert_eq!(Descriptor::parse(&b), d);
        assert!(d.int_en() && d.compl_write() && !d.fence() && !d.null());
    }

    #[test]
    fn operations_and_errors() {
        let mut d = Descriptor {
            size: 8,
            ctl: ctl(OP_COPY, 0),
            src: 1,
            dst: 2,
            next: 0,
        };
        assert_eq!(
            d.operation(),
            Ok(Operation::Copy {
                src: 1,
                dst: 2,
                len: 8
            })
        );
        d.size = 0;
        assert_eq!(d.operation(), Err(CHANERR_LENGTH));
        d.size = MAX_TRANSFER;
        assert!(d.operation().is_ok());
        d.size = MAX_TRANSFER + 1;
        assert_eq!(d.operation(), Err(CHANERR_LENGTH));
        // NULL: size and addresses do not matter.
        d.ctl = ctl(OP_COPY, CTL_NULL | CTL_INT_EN);
        d.size = 0;
        assert_eq!(d.operation(), Ok(Operation::Null));
        d.size = u32::MAX;
        assert_eq!(d.operation(), Ok(Operation::Null));
        d.ctl = ctl(OP_FILL, 0);
        d.size = 16;
        assert_eq!(
            d.operation(),
            Ok(Operation::Fill {
                pattern: 1,
                dst: 2,
                len: 16
            })
        );
        for op in [OP_XOR, OP_PQ, 0x02, 0xff] {
            d.ctl = ctl(op, 0);
            assert_eq!(d.operation(), Err(CHANERR_CONTROL), "op {op:#x}");
        }
        d.ctl = ctl(OP_COPY, CTL_SRC_BRK);
        assert_eq!(d.operation(), Err(CHANERR_CONTROL));
        d.ctl = ctl(OP_COPY, CTL_DEST_BRK);
        assert_eq!(d.operation(), Err(CHANERR_CONTROL));
        // Ignored hint bits.
        d.ctl = ctl(
            OP_COPY,
            CTL_SRC_SNOOP_DIS
                | CTL_DEST_SNOOP_DIS
                | CTL_FENCE
                | CTL_BUNDLE
                | CTL_DEST_DCA
                | CTL_HINT,
        );
        assert!(d.operation().is_ok());
    }
}
