//! A 4 KiB PCI Express configuration space with per-byte write masks.
//!
//! Every byte has two masks: `writable` (ordinary read/write bits) and `w1c` (bits the guest clears by writing 1).
//! Bits in neither mask are read-only for the guest. Device-side code changes any bit with the `set_*` methods,
//! which bypass the masks. The type 0 header is laid out by [`ConfigSpace::new`]; BARs live in `bar.rs` and the
//! capability list builder in `capability.rs`.
//!
//! Accesses of any length at any offset are accepted: bytes outside the 4 KiB space read as all ones and writes
//! to them are ignored, so no guest access can panic.

/// Size of a PCI Express function's configuration space.
pub const CONFIG_SPACE_SIZE: usize = 4096;
/// Size of the conventional (CF8/CFC reachable) part of the configuration space.
pub const LEGACY_CONFIG_SIZE: usize = 256;

/// Offsets of the type 0 header registers.
pub mod reg {
    pub const VENDOR_ID: usize = 0x00;
    pub const DEVICE_ID: usize = 0x02;
    pub const COMMAND: usize = 0x04;
    pub const STATUS: usize = 0x06;
    pub const REVISION_ID: usize = 0x08;
    /// Programming interface (0x09), subclass (0x0a), base class (0x0b).
    pub const CLASS_CODE: usize = 0x09;
    pub const CACHE_LINE_SIZE: usize = 0x0c;
    pub const LATENCY_TIMER: usize = 0x0d;
    pub const HEADER_TYPE: usize = 0x0e;
    pub const BAR0: usize = 0x10;
    pub const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
    pub const SUBSYSTEM_ID: usize = 0x2e;
    pub const EXPANSION_ROM: usize = 0x30;
    pub const CAPABILITIES_POINTER: usize = 0x34;
    pub const INTERRUPT_LINE: usize = 0x3c;
    pub const INTERRUPT_PIN: usize = 0x3d;
}

/// COMMAND register bits.
pub mod command {
    pub const IO_SPACE: u16 = 1 << 0;
    pub const MEMORY_SPACE: u16 = 1 << 1;
    pub const BUS_MASTER: u16 = 1 << 2;
    pub const PARITY_ERROR_RESPONSE: u16 = 1 << 6;
    pub const SERR_ENABLE: u16 = 1 << 8;
    pub const INTX_DISABLE: u16 = 1 << 10;
}

/// STATUS register bits.
pub mod status {
    pub const INTERRUPT_STATUS: u16 = 1 << 3;
    pub const CAPABILITIES_LIST: u16 = 1 << 4;
    pub const MASTER_DATA_PARITY_ERROR: u16 = 1 << 8;
    pub const SIGNALED_TARGET_ABORT: u16 = 1 << 11;
    pub const RECEIVED_TARGET_ABORT: u16 = 1 << 12;
    pub const RECEIVED_MASTER_ABORT: u16 = 1 << 13;
    pub const SIGNALED_SYSTEM_ERROR: u16 = 1 << 14;
    pub const DETECTED_PARITY_ERROR: u16 = 1 << 15;
    /// All error bits, which are RW1C.
    pub const RW1C: u16 = MASTER_DATA_PARITY_ERROR
        | SIGNALED_TARGET_ABORT
        | RECEIVED_TARGET_ABORT
        | RECEIVED_MASTER_ABORT
        | SIGNALED_SYSTEM_ERROR
        | DETECTED_PARITY_ERROR;
}

/// Guest-writable COMMAND bits of a memory-only function (no I/O BARs, so IO_SPACE is hardwired to 0).
const COMMAND_WRITABLE: u16 = command::MEMORY_SPACE
    | command::BUS_MASTER
    | command::PARITY_ERROR_RESPONSE
    | command::SERR_ENABLE
    | command::INTX_DISABLE;

/// The identity of a type 0 function, written into its header at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderType0 {
    pub vendor_id: u16,
    pub device_id: u16,
    pub revision_id: u8,
    /// 24-bit class code: base class << 16 | subclass << 8 | programming interface.
    pub class_code: u32,
    pub subsystem_vendor_id: u16,
    pub subsystem_id: u16,
    /// Interrupt pin (0 = none, 1..=4 = INTA#..INTD#).
    pub interrupt_pin: u8,
}

/// A function's configuration space: contents plus per-byte guest write masks.
#[derive(Clone)]
pub struct ConfigSpace {
    pub(crate) bytes: Box<[u8; CONFIG_SPACE_SIZE]>,
    pub(crate) writable: Box<[u8; CONFIG_SPACE_SIZE]>,
    pub(crate) w1c: Box<[u8; CONFIG_SPACE_SIZE]>,
    pub(crate) bars: [Option<crate::bar::BarDef>; crate::bar::NUM_BARS],
    pub(crate) caps: crate::capability::CapState,
}

impl std::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSpace")
            .field("vendor_id", &self.read_u16(reg::VENDOR_ID))
            .field("device_id", &self.read_u16(reg::DEVICE_ID))
            .field("bars", &self.bars)
            .finish_non_exhaustive()
    }
}

impl ConfigSpace {
    /// A type 0 header with the given identity, no BARs, no capabilities and decoding disabled.
    pub fn new(header: &HeaderType0) -> Self {
        let mut c = ConfigSpace {
            bytes: Box::new([0; CONFIG_SPACE_SIZE]),
            writable: Box::new([0; CONFIG_SPACE_SIZE]),
            w1c: Box::new([0; CONFIG_SPACE_SIZE]),
            bars: [None; crate::bar::NUM_BARS],
            caps: crate::capability::CapState::default(),
        };
        c.set_u16(reg::VENDOR_ID, header.vendor_id);
        c.set_u16(reg::DEVICE_ID, header.device_id);
        c.set_u8(reg::REVISION_ID, header.revision_id);
        c.set_u8(reg::CLASS_CODE, header.class_code as u8);
        c.set_u8(reg::CLASS_CODE + 1, (header.class_code >> 8) as u8);
        c.set_u8(reg::CLASS_CODE + 2, (header.class_code >> 16) as u8);
        c.set_u8(reg::HEADER_TYPE, 0);
        c.set_u16(reg::SUBSYSTEM_VENDOR_ID, header.subsystem_vendor_id);
        c.set_u16(reg::SUBSYSTEM_ID, header.subsystem_id);
        c.set_u8(reg::INTERRUPT_PIN, header.interrupt_pin);
        c.set_masks(reg::COMMAND, 2, u32::from(COMMAND_WRITABLE), 0);
        c.set_masks(reg::STATUS, 2, 0, u32::from(status::RW1C));
        // Cache line size is a plain read/write byte; latency timer is hardwired to 0 on PCIe.
        c.set_masks(reg::CACHE_LINE_SIZE, 1, 0xff, 0);
        // Interrupt line is a firmware/OS scratch byte.
        c.set_masks(reg::INTERRUPT_LINE, 1, 0xff, 0);
        c
    }

    /// Guest read of `data.len()` bytes at `offset`; bytes outside the space read as 0xff.
    pub fn read(&self, offset: usize, data: &mut [u8]) {
        for (i, out) in data.iter_mut().enumerate() {
            *out = offset
                .checked_add(i)
                .and_then(|o| self.bytes.get(o))
                .copied()
                .unwrap_or(0xff);
        }
    }

    /// Guest write of `data` at `offset`, honouring the read-only, read/write and RW1C masks.
    /// Bytes outside the space are ignored.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        for (i, &v) in data.iter().enumerate() {
            let Some(o) = offset.checked_add(i).filter(|&o| o < CONFIG_SPACE_SIZE) else {
                continue;
            };
            let rw = self.writable[o];
            let w1c = self.w1c[o];
            let old = self.bytes[o];
            self.bytes[o] = ((old & !rw) | (v & rw)) & !(v & w1c);
        }
    }

    /// Sets the guest write masks of `len` (1..=4) bytes at `offset`, little endian.
    /// A bit set in both masks is treated as RW1C. Out-of-range bytes are ignored.
    pub fn set_masks(&mut self, offset: usize, len: usize, writable: u32, w1c: u32) {
        for i in 0..len.min(4) {
            if let Some(o) = offset.checked_add(i).filter(|&o| o < CONFIG_SPACE_SIZE) {
                let c = (w1c >> (8 * i)) as u8;
                self.w1c[o] = c;
                self.writable[o] = (writable >> (8 * i)) as u8 & !c;
            }
        }
    }

    /// Device-side read of one byte (0xff outside the space).
    pub fn read_u8(&self, offset: usize) -> u8 {
        self.bytes.get(offset).copied().unwrap_or(0xff)
    }

    /// Device-side read of a little-endian u16 (all ones outside the space).
    pub fn read_u16(&self, offset: usize) -> u16 {
        let mut b = [0u8; 2];
        self.read(offset, &mut b);
        u16::from_le_bytes(b)
    }

    /// Device-side read of a little-endian u32 (all ones outside the space).
    pub fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read(offset, &mut b);
        u32::from_le_bytes(b)
    }

    /// Device-side write of `data` at `offset`, ignoring the guest masks. Out-of-range bytes are ignored.
    pub fn set_bytes(&mut self, offset: usize, data: &[u8]) {
        for (i, &v) in data.iter().enumerate() {
            if let Some(b) = offset.checked_add(i).and_then(|o| self.bytes.get_mut(o)) {
                *b = v;
            }
        }
    }

    /// Device-side write of one byte.
    pub fn set_u8(&mut self, offset: usize, value: u8) {
        self.set_bytes(offset, &[value]);
    }

    /// Device-side write of a little-endian u16.
    pub fn set_u16(&mut self, offset: usize, value: u16) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    /// Device-side write of a little-endian u32.
    pub fn set_u32(&mut self, offset: usize, value: u32) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    /// Vendor ID.
    pub fn vendor_id(&self) -> u16 {
        self.read_u16(reg::VENDOR_ID)
    }

    /// Device ID.
    pub fn device_id(&self) -> u16 {
        self.read_u16(reg::DEVICE_ID)
    }

    /// 24-bit class code.
    pub fn class_code(&self) -> u32 {
        self.read_u32(reg::REVISION_ID) >> 8
    }

    /// The COMMAND register.
    pub fn command(&self) -> u16 {
        self.read_u16(reg::COMMAND)
    }

    /// COMMAND.MEM: the function decodes its memory BARs.
    pub fn memory_enabled(&self) -> bool {
        self.command() & command::MEMORY_SPACE != 0
    }

    /// COMMAND.BME: the function may issue DMA and MSI writes.
    pub fn bus_master_enabled(&self) -> bool {
        self.command() & command::BUS_MASTER != 0
    }

    /// Device-side: sets COMMAND bits (as firmware would), bypassing the guest mask.
    pub fn set_command_bits(&mut self, bits: u16) {
        let c = self.command() | bits;
        self.set_u16(reg::COMMAND, c);
    }

    /// The STATUS register.
    pub fn status(&self) -> u16 {
        self.read_u16(reg::STATUS)
    }

    /// Device-side: sets STATUS bits (e.g. an error the function detected); the guest clears RW1C ones.
    pub fn set_status_bits(&mut self, bits: u16) {
        let s = self.status() | bits;
        self.set_u16(reg::STATUS, s);
    }
}

/// A blank type-0 configuration space (vendor 1, device 2) for unit tests of capability and BAR code.
#[cfg(test)]
pub(crate) fn test_config() -> ConfigSpace {
    ConfigSpace::new(&HeaderType0 {
        vendor_id: 1,
        device_id: 2,
        revision_id: 0,
        class_code: 0,
        subsystem_vendor_id: 0,
        subsystem_id: 0,
        interrupt_pin: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> HeaderType0 {
        HeaderType0 {
            vendor_id: 0x1234,
            device_id: 0x5678,
            revision_id: 2,
            class_code: 0xff_0000,
            subsystem_vendor_id: 0x1234,
            subsystem_id: 0x9abc,
            interrupt_pin: 0,
        }
    }

    #[test]
    fn identity_is_read_only() {
        let mut c = ConfigSpace::new(&header());
        c.write(0, &[0xff; 4]);
        c.write(reg::REVISION_ID, &[0; 4]);
        c.write(reg::SUBSYSTEM_VENDOR_ID, &[0; 4]);
        c.write(reg::INTERRUPT_PIN, &[3]);
        assert_eq!(c.read_u32(0), 0x5678_1234);
        assert_eq!(c.class_code(), 0xff_0000);
        assert_eq!(c.read_u8(reg::REVISION_ID), 2);
        assert_eq!(c.read_u32(reg::SUBSYSTEM_VENDOR_ID), 0x9abc_1234);
        assert_eq!(c.read_u8(reg::INTERRUPT_PIN), 0);
    }

    #[test]
    fn command_only_writable_bits_stick() {
        let mut c = ConfigSpace::new(&header());
        c.write(reg::COMMAND, &[0xff, 0xff]);
        assert_eq!(c.command(), COMMAND_WRITABLE);
        assert!(c.memory_enabled());
        assert!(c.bus_master_enabled());
        assert_eq!(c.command() & command::IO_SPACE, 0);
        c.write(reg::COMMAND, &[0, 0]);
        assert_eq!(c.command(), 0);
    }

    #[test]
    fn status_error_bits_are_rw1c_and_others_read_only() {
        let mut c = ConfigSpace::new(&header());
        c.set_status_bits(status::RECEIVED_MASTER_ABORT | status::DETECTED_PARITY_ERROR);
        // Writing zeros changes nothing.
        c.write(reg::STATUS, &[0, 0]);
        assert_eq!(
            c.status(),
            status::RECEIVED_MASTER_ABORT | status::DETECTED_PARITY_ERROR
        );
        // Writing 1 to one bit clears only that bit; RO bits cannot be set.
        c.write(
            reg::STATUS,
            &(status::RECEIVED_MASTER_ABORT | status::INTERRUPT_STATUS | status::CAPABILITIES_LIST)
                .to_le_bytes(),
        );
        assert_eq!(c.status(), status::DETECTED_PARITY_ERROR);
        // A 4-byte write at COMMAND clears status bits with the high half and sets command with the low half.
        c.write(reg::COMMAND, &0x8000_0002u32.to_le_bytes());
        assert_eq!(c.status(), 0);
        assert!(c.memory_enabled());
    }

    #[test]
    fn rw_byte_and_out_of_range_accesses() {
        let mut c = ConfigSpace::new(&header());
        c.write(reg::INTERRUPT_LINE, &[0x0b]);
        assert_eq!(c.read_u8(reg::INTERRUPT_LINE), 0x0b);
        c.write(reg::LATENCY_TIMER, &[0x40]);
        assert_eq!(c.read_u8(reg::LATENCY_TIMER), 0);
        let mut d = [0u8; 4];
        c.read(CONFIG_SPACE_SIZE - 2, &mut d);
        assert_eq!(d, [0, 0, 0xff, 0xff]);
        c.read(usize::MAX, &mut d);
        assert_eq!(d, [0xff; 4]);
        c.write(usize::MAX - 1, &[1, 2, 3, 4]);
        c.write(CONFIG_SPACE_SIZE, &[1]);
        assert_eq!(c.read_u32(0), 0x5678_1234);
    }

    #[test]
    fn masks_bit_in_both_is_rw1c() {
        let mut c = ConfigSpace::new(&header());
        c.set_masks(0x40, 1, 0x0f, 0x01);
        c.set_u8(0x40, 0x01);
        c.write(0x40, &[0x0f]);
        // Bit 0 cleared (RW1C), bits 1..3 set (RW).
        assert_eq!(c.read_u8(0x40), 0x0e);
    }
}
