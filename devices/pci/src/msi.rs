//! MSI delivery interface and the MSI capability (64-bit address, per-vector masking, 1..=32 vectors).
//!
//! A function signals an interrupt by writing `data` to `address`; here that write is handed to an [`MsiSink`]
//! (the VMM implements it with `KVM_SIGNAL_MSI`; an IOMMU's interrupt remapping can sit in front of it). An MSI is
//! a memory write, so nothing is sent while COMMAND.BME is clear.

use crate::capability::{id, CapabilityError};
use crate::config::ConfigSpace;
use std::sync::Mutex;
use thiserror::Error;

/// One message-signalled interrupt: a 32-bit write of `data` to `address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiMessage {
    pub address: u64,
    pub data: u32,
}

/// Errors of interrupt delivery, returned by an [`MsiSink`].
#[derive(Debug, Error)]
pub enum MsiError {
    /// The platform failed to inject the message (e.g. the KVM ioctl failed).
    #[error("MSI delivery failed: {0}")]
    Delivery(String),
    /// The message was blocked (e.g. an interrupt remapping fault).
    #[error("MSI blocked: {0}")]
    Blocked(String),
}

/// Where a function's MSI/MSI-X messages go.
pub trait MsiSink: Send + Sync {
    fn send(&self, msg: MsiMessage) -> Result<(), MsiError>;
}

/// A sink that records every message; for tests and for tools that want to observe interrupts.
#[derive(Debug, Default)]
pub struct RecordingSink {
    messages: Mutex<Vec<MsiMessage>>,
}

impl RecordingSink {
    /// Takes the messages received so far.
    pub fn take(&self) -> Vec<MsiMessage> {
        match self.messages.lock() {
            Ok(mut m) => std::mem::take(&mut *m),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

impl MsiSink for RecordingSink {
    fn send(&self, msg: MsiMessage) -> Result<(), MsiError> {
        match self.messages.lock() {
            Ok(mut m) => m.push(msg),
            Err(p) => p.into_inner().push(msg),
        }
        Ok(())
    }
}

/// What happened to one interrupt a function raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The message was handed to the sink.
    Sent,
    /// The vector is masked: its pending bit is set and the message goes out when it is unmasked.
    Latched,
    /// The capability is not enabled.
    Disabled,
    /// The vector is not allocated/implemented.
    InvalidVector,
    /// COMMAND.BME is clear, so the function may not write the message.
    BusMasterDisabled,
}

/// Errors building MSI or MSI-X capabilities.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InterruptSetupError {
    #[error("invalid vector count {0}")]
    InvalidVectorCount(u32),
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error("invalid MSI-X table/PBA placement: {0}")]
    Placement(&'static str),
}

/// Offsets inside the MSI capability (64-bit layout with per-vector masking).
pub mod msi_reg {
    pub const CONTROL: usize = 0x02;
    pub const ADDRESS_LO: usize = 0x04;
    pub const ADDRESS_HI: usize = 0x08;
    pub const DATA: usize = 0x0c;
    pub const MASK: usize = 0x10;
    pub const PENDING: usize = 0x14;
}

const CTRL_ENABLE: u16 = 1 << 0;
const CTRL_64BIT: u16 = 1 << 7;
const CTRL_PER_VECTOR_MASK: u16 = 1 << 8;

/// The MSI capability of one function. Its state lives in the configuration space; this records where.
#[derive(Clone, Copy, Debug)]
pub struct MsiCapability {
    offset: usize,
    /// log2 of the number of vectors the function can use (Multiple Message Capable).
    log2_capable: u8,
}

impl MsiCapability {
    /// Length of the capability.
    pub const LEN: usize = 0x18;

    /// Adds an MSI capability offering `vectors` (a power of two, 1..=32) vectors.
    pub fn add(config: &mut ConfigSpace, vectors: u32) -> Result<Self, InterruptSetupError> {
        if !vectors.is_power_of_two() || vectors > 32 {
            return Err(InterruptSetupError::InvalidVectorCount(vectors));
        }
        let log2_capable = vectors.trailing_zeros() as u8;
        let offset = config.add_capability(id::MSI, Self::LEN)?;
        let control = CTRL_64BIT | CTRL_PER_VECTOR_MASK | u16::from(log2_capable) << 1;
        config.set_u16(offset + msi_reg::CONTROL, control);
        // Enable and Multiple Message Enable are writable.
        config.set_masks(offset + msi_reg::CONTROL, 2, 0x0071, 0);
        config.set_masks(offset + msi_reg::ADDRESS_LO, 4, 0xffff_fffc, 0);
        config.set_masks(offset + msi_reg::ADDRESS_HI, 4, 0xffff_ffff, 0);
        config.set_masks(offset + msi_reg::DATA, 2, 0xffff, 0);
        let mask_bits = if vectors == 32 {
            u32::MAX
        } else {
            (1 << vectors) - 1
        };
        config.set_masks(offset + msi_reg::MASK, 4, mask_bits, 0);
        Ok(MsiCapability {
            offset,
            log2_capable,
        })
    }

    /// Offset of the capability in configuration space.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether a config access of `len` bytes at `offset` touches this capability.
    pub fn overlaps(&self, offset: usize, len: usize) -> bool {
        offset < self.offset + Self::LEN && offset.saturating_add(len) > self.offset
    }

    fn control(&self, config: &ConfigSpace) -> u16 {
        config.read_u16(self.offset + msi_reg::CONTROL)
    }

    /// MSI Enable.
    pub fn enabled(&self, config: &ConfigSpace) -> bool {
        self.control(config) & CTRL_ENABLE != 0
    }

    /// Number of vectors software allocated (Multiple Message Enable, limited to what the function offers:
    /// a larger value is undefined by the specification and treated as the maximum).
    pub fn allocated_vectors(&self, config: &ConfigSpace) -> u32 {
        let mme = ((self.control(config) >> 4) & 7) as u8;
        1 << mme.min(self.log2_capable)
    }

    /// Whether `vector` is masked.
    pub fn is_masked(&self, config: &ConfigSpace, vector: u32) -> bool {
        vector < 32 && config.read_u32(self.offset + msi_reg::MASK) & (1 << vector) != 0
    }

    /// The pending bits.
    pub fn pending(&self, config: &ConfigSpace) -> u32 {
        config.read_u32(self.offset + msi_reg::PENDING)
    }

    /// The message for `vector`: the low log2(allocated) bits of the data carry the vector number.
    pub fn message(&self, config: &ConfigSpace, vector: u32) -> Option<MsiMessage> {
        let n = self.allocated_vectors(config);
        if vector >= n {
            return None;
        }
        let lo = u64::from(config.read_u32(self.offset + msi_reg::ADDRESS_LO));
        let hi = u64::from(config.read_u32(self.offset + msi_reg::ADDRESS_HI));
        let data = u32::from(config.read_u16(self.offset + msi_reg::DATA));
        Some(MsiMessage {
            address: hi << 32 | lo,
            data: (data & !(n - 1)) | vector,
        })
    }

    /// Raises `vector`: sends it, latches it as pending if masked, or reports why it went nowhere.
    pub fn trigger(
        &self,
        config: &mut ConfigSpace,
        vector: u32,
        sink: &dyn MsiSink,
    ) -> Result<Delivery, MsiError> {
        if !self.enabled(config) {
            return Ok(Delivery::Disabled);
        }
        if !config.bus_master_enabled() {
            return Ok(Delivery::BusMasterDisabled);
        }
        let Some(msg) = self.message(config, vector) else {
            return Ok(Delivery::InvalidVector);
        };
        if self.is_masked(config, vector) {
            let p = self.pending(config) | 1 << vector;
            config.set_u32(self.offset + msi_reg::PENDING, p);
            return Ok(Delivery::Latched);
        }
        sink.send(msg)?;
        Ok(Delivery::Sent)
    }

    /// Call after every guest config write that overlaps the capability: sends the pending vectors that are
    /// now unmasked (if MSI is enabled and bus mastering allowed) and returns how many were sent.
    pub fn after_write(
        &self,
        config: &mut ConfigSpace,
        sink: &dyn MsiSink,
    ) -> Result<u32, MsiError> {
        if !self.enabled(config) || !config.bus_master_enabled() {
            return Ok(0);
        }
        let mut sent = 0;
        for v in 0..self.allocated_vectors(config) {
            if self.pending(config) & (1 << v) == 0 || self.is_masked(config, v) {
                continue;
            }
            let p = self.pending(config) & !(1 << v);
            config.set_u32(self.offset + msi_reg::PENDING, p);
            if let Some(msg) = self.message(config, v) {
                sink.send(msg)?;
                sent += 1;
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{command, HeaderType0};

    fn setup(vectors: u32) -> (ConfigSpace, MsiCapability) {
        let mut c = ConfigSpace::new(&HeaderType0 {
            vendor_id: 1,
            device_id: 2,
            revision_id: 0,
            class_code: 0,
            subsystem_vendor_id: 0,
            subsystem_id: 0,
            interrupt_pin: 0,
        });
        let m = MsiCapability::add(&mut c, vectors).unwrap();
        (c, m)
    }

    fn program(c: &mut ConfigSpace, m: &MsiCapability, mme: u16, enable: bool) {
        let o = m.offset();
        c.write(o + msi_reg::ADDRESS_LO, &0xfee0_1003u32.to_le_bytes());
        c.write(o + msi_reg::ADDRESS_HI, &0u32.to_le_bytes());
        c.write(o + msi_reg::DATA, &0x4025u16.to_le_bytes());
        let ctl = mme << 4 | u16::from(enable);
        c.write(o + msi_reg::CONTROL, &ctl.to_le_bytes());
        c.write(
            0x04,
            &(command::MEMORY_SPACE | command::BUS_MASTER).to_le_bytes(),
        );
    }

    #[test]
    fn control_register_semantics() {
        let (mut c, m) = setup(4);
        let o = m.offset();
        assert_eq!(
            c.read_u16(o + msi_reg::CONTROL),
            0x0184,
            "PVM, 64-bit, MMC=2"
        );
        c.write(o + msi_reg::CONTROL, &[0xff, 0xff]);
        assert_eq!(
            c.read_u16(o + msi_reg::CONTROL),
            0x01f5,
            "RO bits keep their value"
        );
        // MME 7 is beyond MMC 2: treated as 4 vectors.
        assert_eq!(m.allocated_vectors(&c), 4);
        c.write(o + msi_reg::ADDRESS_LO, &[0xff; 4]);
        assert_eq!(c.read_u32(o + msi_reg::ADDRESS_LO), 0xffff_fffc);
        c.write(o + msi_reg::DATA, &[0xff; 4]);
        assert_eq!(
            c.read_u32(o + msi_reg::DATA),
            0xffff,
            "no extended message data"
        );
        c.write(o + msi_reg::MASK, &[0xff; 4]);
        assert_eq!(
            c.read_u32(o + msi_reg::MASK),
            0xf,
            "mask bits only for capable vectors"
        );
        c.write(o + msi_reg::PENDING, &[0xff; 4]);
        assert_eq!(m.pending(&c), 0, "pending is read-only");
        assert!(MsiCapability::add(&mut c, 3).is_err());
        assert!(MsiCapability::add(&mut c, 64).is_err());
    }

    #[test]
    fn delivery_uses_address_and_vector_in_data() {
        let (mut c, m) = setup(4);
        let sink = RecordingSink::default();
        assert_eq!(m.trigger(&mut c, 0, &sink).unwrap(), Delivery::Disabled);
        program(&mut c, &m, 1, true);
        assert_eq!(m.trigger(&mut c, 1, &sink).unwrap(), Delivery::Sent);
        assert_eq!(
            m.trigger(&mut c, 2, &sink).unwrap(),
            Delivery::InvalidVector,
            "only 2 allocated"
        );
        let msgs = sink.take();
        assert_eq!(
            msgs,
            vec![MsiMessage {
                address: 0xfee0_1000,
                data: 0x4025
            }]
        );
        // With 1 vector allocated the data is used verbatim.
        program(&mut c, &m, 0, true);
        m.trigger(&mut c, 0, &sink).unwrap();
        assert_eq!(sink.take()[0].data, 0x4025);
        // A 64-bit address.
        c.write(m.offset() + msi_reg::ADDRESS_HI, &1u32.to_le_bytes());
        m.trigger(&mut c, 0, &sink).unwrap();
        assert_eq!(sink.take()[0].address, 0x1_fee0_1000);
    }

    #[test]
    fn bus_master_gates_delivery() {
        let (mut c, m) = setup(1);
        let sink = RecordingSink::default();
        program(&mut c, &m, 0, true);
        c.write(0x04, &command::MEMORY_SPACE.to_le_bytes());
        assert_eq!(
            m.trigger(&mut c, 0, &sink).unwrap(),
            Delivery::BusMasterDisabled
        );
        assert!(sink.take().is_empty());
    }

    #[test]
    fn masked_vector_latches_and_fires_on_unmask() {
        let (mut c, m) = setup(2);
        let sink = RecordingSink::default();
        program(&mut c, &m, 1, true);
        let mask = m.offset() + msi_reg::MASK;
        c.write(mask, &[0b10, 0, 0, 0]);
        assert_eq!(m.after_write(&mut c, &sink).unwrap(), 0);
        assert_eq!(m.trigger(&mut c, 1, &sink).unwrap(), Delivery::Latched);
        assert_eq!(m.trigger(&mut c, 0, &sink).unwrap(), Delivery::Sent);
        assert_eq!(m.pending(&c), 0b10);
        assert_eq!(sink.take().len(), 1);
        c.write(mask, &[0, 0, 0, 0]);
        assert_eq!(m.after_write(&mut c, &sink).unwrap(), 1);
        assert_eq!(m.pending(&c), 0);
        assert_eq!(
            sink.take(),
            vec![MsiMessage {
                address: 0xfee0_1000,
                data: 0x4025
            }]
        );
        assert_eq!(
            m.after_write(&mut c, &sink).unwrap(),
            0,
            "delivered only once"
        );
    }

    #[test]
    fn overlap_detection() {
        let (_c, m) = setup(1);
        let o = m.offset();
        assert!(m.overlaps(o, 1));
        assert!(m.overlaps(o - 2, 4));
        assert!(m.overlaps(o + MsiCapability::LEN - 1, 4));
        assert!(!m.overlaps(o + MsiCapability::LEN, 4));
        assert!(!m.overlaps(o - 4, 4));
        assert!(!m.overlaps(usize::MAX, 4));
    }
}
