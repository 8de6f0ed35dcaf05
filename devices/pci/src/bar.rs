//! Memory BARs of a type 0 header: definition, sizing through the write masks, and decoding of the address
//! the guest (or the build-time allocator) programmed.
//!
//! Sizing needs no special case: the address bits below the BAR size are read-only zero, so writing all ones
//! and reading back yields the size mask, and writing the old value back restores the address.

use crate::config::{reg, ConfigSpace};
use thiserror::Error;

/// Number of BAR slots in a type 0 header.
pub const NUM_BARS: usize = 6;

/// Memory BAR types. (No device in this crate implements I/O BARs.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarType {
    /// A 32-bit memory BAR (one register).
    Mem32,
    /// A 64-bit memory BAR (this register and the next hold the low and high dwords).
    Mem64,
}

/// Errors of BAR definition and placement.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BarError {
    #[error("BAR index {0} out of range")]
    InvalidIndex(u8),
    #[error("BAR {index}: size {size:#x} is not a power of two of at least 16 bytes")]
    InvalidSize { index: u8, size: u64 },
    #[error("BAR {index}: size {size:#x} too large for a 32-bit BAR")]
    TooLargeFor32Bit { index: u8, size: u64 },
    #[error("BAR {0}: a 64-bit BAR needs two register slots")]
    NoRoomFor64Bit(u8),
    #[error("BAR {0}: register slot already used")]
    SlotInUse(u8),
    #[error("BAR {0} is not implemented")]
    NotImplemented(u8),
    #[error(
        "BAR {index}: address {address:#x} is not aligned to the size {size:#x} or out of range"
    )]
    BadAddress { index: u8, address: u64, size: u64 },
}

/// The static definition of one BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarDef {
    pub bar_type: BarType,
    pub size: u64,
    pub prefetchable: bool,
}

/// A BAR as currently programmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    pub index: u8,
    pub bar_type: BarType,
    pub prefetchable: bool,
    /// The base address currently in the register(s) (0 = unassigned).
    pub address: u64,
    pub size: u64,
}

impl Bar {
    /// Whether `gpa` falls inside this BAR (no overflow even for addresses near the top of the space).
    pub fn contains(&self, gpa: u64) -> bool {
        gpa.checked_sub(self.address).is_some_and(|o| o < self.size)
    }
}

fn bar_reg(index: usize) -> usize {
    reg::BAR0 + 4 * index
}

impl ConfigSpace {
    /// Defines memory BAR `index` (a 64-bit BAR also occupies `index + 1`). The address starts as 0.
    pub fn add_bar(
        &mut self,
        index: u8,
        bar_type: BarType,
        size: u64,
        prefetchable: bool,
    ) -> Result<(), BarError> {
        let i = usize::from(index);
        if i >= NUM_BARS {
            return Err(BarError::InvalidIndex(index));
        }
        if !size.is_power_of_two() || size < 16 {
            return Err(BarError::InvalidSize { index, size });
        }
        if self.bar_slot_used(i) {
            return Err(BarError::SlotInUse(index));
        }
        let mask = !(size - 1);
        match bar_type {
            BarType::Mem32 => {
                if size > 1 << 31 {
                    return Err(BarError::TooLargeFor32Bit { index, size });
                }
                let flags = if prefetchable { 1 << 3 } else { 0 };
                self.set_u32(bar_reg(i), flags);
                self.set_masks(bar_reg(i), 4, (mask as u32) & !0xf, 0);
            }
            BarType::Mem64 => {
                if i + 1 >= NUM_BARS {
                    return Err(BarError::NoRoomFor64Bit(index));
                }
                if self.bar_slot_used(i + 1) {
                    return Err(BarError::SlotInUse(index + 1));
                }
                let flags = 0b100 | if prefetchable { 1 << 3 } else { 0 };
                self.set_u32(bar_reg(i), flags);
                self.set_u32(bar_reg(i + 1), 0);
                self.set_masks(bar_reg(i), 4, (mask as u32) & !0xf, 0);
                self.set_masks(bar_reg(i + 1), 4, (mask >> 32) as u32, 0);
            }
        }
        self.bars[i] = Some(BarDef {
            bar_type,
            size,
            prefetchable,
        });
        Ok(())
    }

    /// Whether register slot `i` is used by a BAR (as its low or, for 64-bit BARs, high dword).
    fn bar_slot_used(&self, i: usize) -> bool {
        self.bars.get(i).is_some_and(|b| b.is_some())
            || (i > 0
                && self
                    .bars
                    .get(i - 1)
                    .copied()
                    .flatten()
                    .is_some_and(|b| b.bar_type == BarType::Mem64))
    }

    /// BAR `index` as currently programmed, if implemented.
    pub fn bar(&self, index: u8) -> Option<Bar> {
        let i = usize::from(index);
        let def = self.bars.get(i).copied().flatten()?;
        let low = u64::from(self.read_u32(bar_reg(i)) & !0xf);
        let address = match def.bar_type {
            BarType::Mem32 => low,
            BarType::Mem64 => low | u64::from(self.read_u32(bar_reg(i + 1))) << 32,
        };
        Some(Bar {
            index,
            bar_type: def.bar_type,
            prefetchable: def.prefetchable,
            address,
            size: def.size,
        })
    }

    /// All implemented BARs in index order.
    pub fn bars(&self) -> Vec<Bar> {
        (0..NUM_BARS as u8).filter_map(|i| self.bar(i)).collect()
    }

    /// Device/firmware-side placement of BAR `index` at `address` (must be size aligned and fit the BAR type).
    pub fn set_bar_address(&mut self, index: u8, address: u64) -> Result<(), BarError> {
        let i = usize::from(index);
        let def = self
            .bars
            .get(i)
            .copied()
            .flatten()
            .ok_or(BarError::NotImplemented(index))?;
        let bad = BarError::BadAddress {
            index,
            address,
            size: def.size,
        };
        if address & (def.size - 1) != 0 {
            return Err(bad);
        }
        let flags = self.read_u32(bar_reg(i)) & 0xf;
        match def.bar_type {
            BarType::Mem32 => {
                let a = u32::try_from(address).map_err(|_| bad)?;
                self.set_u32(bar_reg(i), a | flags);
            }
            BarType::Mem64 => {
                self.set_u32(bar_reg(i), address as u32 | flags);
                self.set_u32(bar_reg(i + 1), (address >> 32) as u32);
            }
        }
        Ok(())
    }

    /// The BAR decoding `gpa` and the offset inside it, if COMMAND.MEM is set. BARs at address 0 (unassigned)
    /// never decode.
    pub fn decode(&self, gpa: u64) -> Option<(u8, u64)> {
        if !self.memory_enabled() {
            return None;
        }
        (0..NUM_BARS as u8)
            .filter_map(|i| self.bar(i))
            .find(|b| b.address != 0 && b.contains(gpa))
            .map(|b| (b.index, gpa - b.address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::command;

    fn cfg() -> ConfigSpace {
        crate::config::test_config()
    }

    fn guest_write_u32(c: &mut ConfigSpace, off: usize, v: u32) {
        c.write(off, &v.to_le_bytes());
    }

    #[test]
    fn sizing_32bit_bar() {
        let mut c = cfg();
        c.add_bar(0, BarType::Mem32, 0x1000, false).unwrap();
        c.set_bar_address(0, 0xc000_0000).unwrap();
        let old = c.read_u32(reg::BAR0);
        assert_eq!(old, 0xc000_0000);
        guest_write_u32(&mut c, reg::BAR0, 0xffff_ffff);
        assert_eq!(c.read_u32(reg::BAR0), 0xffff_f000);
        guest_write_u32(&mut c, reg::BAR0, old);
        assert_eq!(c.bar(0).unwrap().address, 0xc000_0000);
    }

    #[test]
    fn sizing_64bit_prefetchable_bar() {
        let mut c = cfg();
        c.add_bar(2, BarType::Mem64, 0x2_0000_0000, true).unwrap();
        c.set_bar_address(2, 0x40_0000_0000).unwrap();
        let lo = c.read_u32(reg::BAR0 + 8);
        let hi = c.read_u32(reg::BAR0 + 12);
        assert_eq!(
            lo, 0b1100,
            "64-bit, prefetchable flags; low address bits zero"
        );
        assert_eq!(hi, 0x40);
        guest_write_u32(&mut c, reg::BAR0 + 8, 0xffff_ffff);
        guest_write_u32(&mut c, reg::BAR0 + 12, 0xffff_ffff);
        // 8 GiB: no low address bits writable, high dword mask ~1.
        assert_eq!(c.read_u32(reg::BAR0 + 8), 0b1100);
        assert_eq!(c.read_u32(reg::BAR0 + 12), 0xffff_fffe);
        guest_write_u32(&mut c, reg::BAR0 + 8, lo);
        guest_write_u32(&mut c, reg::BAR0 + 12, hi);
        let b = c.bar(2).unwrap();
        assert_eq!(
            (b.address, b.size, b.prefetchable),
            (0x40_0000_0000, 0x2_0000_0000, true)
        );
    }

    #[test]
    fn small_64bit_bar_size_mask() {
        let mut c = cfg();
        c.add_bar(0, BarType::Mem64, 0x4000, false).unwrap();
        guest_write_u32(&mut c, reg::BAR0, 0xffff_ffff);
        guest_write_u32(&mut c, reg::BAR0 + 4, 0xffff_ffff);
        assert_eq!(c.read_u32(reg::BAR0), 0xffff_c004);
        assert_eq!(c.read_u32(reg::BAR0 + 4), 0xffff_ffff);
        assert_eq!(c.bar(0).unwrap().address, 0xffff_ffff_ffff_c000);
        // Unimplemented BAR slots read 0 and ignore writes.
        guest_write_u32(&mut c, reg::BAR0 + 8, 0xffff_ffff);
        assert_eq!(c.read_u32(reg::BAR0 + 8), 0);
    }

    #[test]
    fn definition_errors() {
        let mut c = cfg();
        assert_eq!(
            c.add_bar(6, BarType::Mem32, 0x1000, false),
            Err(BarError::InvalidIndex(6))
        );
        assert!(matches!(
            c.add_bar(0, BarType::Mem32, 0x1001, false),
            Err(BarError::InvalidSize { .. })
        ));
        assert!(matches!(
            c.add_bar(0, BarType::Mem32, 8, false),
            Err(BarError::InvalidSize { .. })
        ));
        assert!(matches!(
            c.add_bar(0, BarType::Mem32, 1 << 32, false),
            Err(BarError::TooLargeFor32Bit { .. })
        ));
        assert_eq!(
            c.add_bar(5, BarType::Mem64, 0x1000, false),
            Err(BarError::NoRoomFor64Bit(5))
        );
        c.add_bar(0, BarType::Mem64, 0x1000, false).unwrap();
        assert_eq!(
            c.add_bar(1, BarType::Mem32, 0x1000, false),
            Err(BarError::SlotInUse(1))
        );
        c.add_bar(2, BarType::Mem32, 0x1000, false).unwrap();
        assert_eq!(
            c.add_bar(1, BarType::Mem64, 0x1000, false),
            Err(BarError::SlotInUse(1))
        );
        assert!(matches!(
            c.set_bar_address(2, 0x1_0000_0000),
            Err(BarError::BadAddress { .. })
        ));
        assert!(matches!(
            c.set_bar_address(2, 0x800),
            Err(BarError::BadAddress { .. })
        ));
        assert_eq!(c.set_bar_address(3, 0), Err(BarError::NotImplemented(3)));
    }

    #[test]
    fn decode_follows_guest_moves_and_command_mem() {
        let mut c = cfg();
        c.add_bar(0, BarType::Mem32, 0x1000, false).unwrap();
        c.add_bar(2, BarType::Mem64, 0x4000, false).unwrap();
        c.set_bar_address(0, 0xc000_0000).unwrap();
        c.set_bar_address(2, 0x40_0000_0000).unwrap();
        assert_eq!(c.decode(0xc000_0010), None, "MEM decode off");
        c.set_command_bits(command::MEMORY_SPACE);
        assert_eq!(c.decode(0xc000_0010), Some((0, 0x10)));
        assert_eq!(c.decode(0x40_0000_3fff), Some((2, 0x3fff)));
        assert_eq!(c.decode(0x40_0000_4000), None);
        guest_write_u32(&mut c, reg::BAR0, 0xd000_0000);
        assert_eq!(c.decode(0xc000_0010), None);
        assert_eq!(c.decode(0xd000_0ffc), Some((0, 0xffc)));
        guest_write_u32(&mut c, reg::BAR0, 0);
        assert_eq!(c.decode(0), None, "unassigned BAR never decodes");
    }
}
