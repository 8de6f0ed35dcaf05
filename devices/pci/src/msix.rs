//! The MSI-X capability, its vector table and its pending bit array (PBA), both mapped through BARs.
//!
//! Vectors reset masked. A vector raised while it or the whole function is masked sets its pending bit; the
//! message goes out (and the bit clears) as soon as the vector is deliverable again, whether the unmask came
//! through the table (vector control) or the capability (function mask, enable).

use crate::bar::NUM_BARS;
use crate::capability::id;
use crate::config::ConfigSpace;
use crate::msi::{Delivery, InterruptSetupError, MsiError, MsiMessage, MsiSink};

/// Offsets inside the MSI-X capability.
pub mod msix_reg {
    pub const CONTROL: usize = 0x02;
    pub const TABLE: usize = 0x04;
    pub const PBA: usize = 0x08;
}

const CTRL_ENABLE: u16 = 1 << 15;
const CTRL_FUNCTION_MASK: u16 = 1 << 14;
/// Size of one table entry.
pub const ENTRY_SIZE: u64 = 16;
/// Guest-writable bits of each entry byte: address low (bits 1:0 reserved), address high, data, vector control
/// (only the mask bit).
const ENTRY_WRITABLE: [u8; 16] = [
    0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0,
];

/// An MSI-X capability and the table/PBA state behind it.
#[derive(Clone, Debug)]
pub struct MsixCapability {
    offset: usize,
    table_bar: u8,
    table_offset: u64,
    pba_bar: u8,
    pba_offset: u64,
    table: Vec<[u8; 16]>,
    pending: Vec<u64>,
}

impl MsixCapability {
    /// Length of the capability.
    pub const LEN: usize = 12;

    /// Adds an MSI-X capability with `vectors` (1..=2048) vectors, the table at `table_offset` in BAR
    /// `table_bar` and the PBA at `pba_offset` in BAR `pba_bar`. The BARs must already be defined and large
    /// enough; offsets must be 8-byte aligned and the two structures must not overlap.
    pub fn add(
        config: &mut ConfigSpace,
        vectors: u16,
        table_bar: u8,
        table_offset: u32,
        pba_bar: u8,
        pba_offset: u32,
    ) -> Result<Self, InterruptSetupError> {
        let mut sizes = [None; NUM_BARS];
        for (i, s) in sizes.iter_mut().enumerate() {
            *s = config.bar(i as u8).map(|b| b.size);
        }
        Self::add_in_bars(
            config,
            vectors,
            (table_bar, table_offset),
            (pba_bar, pba_offset),
            &sizes,
        )
    }

    /// As [`Self::add`], with the BAR sizes given instead of read from the configuration space: a Virtual
    /// Function's BARs are read-only zero in its own header (PCIe Base 6.0 §9.3.4.1.11) and sized by its PF's
    /// SR-IOV capability, yet its MSI-X BIR fields name them. `table` and `pba` are (BIR, offset).
    pub fn add_in_bars(
        config: &mut ConfigSpace,
        vectors: u16,
        (table_bar, table_offset): (u8, u32),
        (pba_bar, pba_offset): (u8, u32),
        bar_sizes: &[Option<u64>; NUM_BARS],
    ) -> Result<Self, InterruptSetupError> {
        if vectors == 0 || vectors > 2048 {
            return Err(InterruptSetupError::InvalidVectorCount(u32::from(vectors)));
        }
        if table_offset & 7 != 0 || pba_offset & 7 != 0 {
            return Err(InterruptSetupError::Placement(
                "offsets must be 8-byte aligned",
            ));
        }
        let table_len = u64::from(vectors) * ENTRY_SIZE;
        let pba_len = u64::from(vectors).div_ceil(64) * 8;
        let fits = |bar: u8, off: u32, len: u64| {
            bar_sizes
                .get(usize::from(bar))
                .copied()
                .flatten()
                .is_some_and(|size| u64::from(off) + len <= size)
        };
        if !fits(table_bar, table_offset, table_len) {
            return Err(InterruptSetupError::Placement("table does not fit its BAR"));
        }
        if !fits(pba_bar, pba_offset, pba_len) {
            return Err(InterruptSetupError::Placement("PBA does not fit its BAR"));
        }
        let (t, p) = (u64::from(table_offset), u64::from(pba_offset));
        if table_bar == pba_bar && t < p + pba_len && p < t + table_len {
            return Err(InterruptSetupError::Placement("table and PBA overlap"));
        }
        let offset = config.add_capability(id::MSIX, Self::LEN)?;
        config.set_u16(offset + msix_reg::CONTROL, vectors - 1);
        config.set_masks(
            offset + msix_reg::CONTROL,
            2,
            u32::from(CTRL_ENABLE | CTRL_FUNCTION_MASK),
            0,
        );
        config.set_u32(
            offset + msix_reg::TABLE,
            table_offset | u32::from(table_bar),
        );
        config.set_u32(offset + msix_reg::PBA, pba_offset | u32::from(pba_bar));
        let mut masked = [0u8; 16];
        masked[12] = 1;
        Ok(MsixCapability {
            offset,
            table_bar,
            table_offset: t,
            pba_bar,
            pba_offset: p,
            table: vec![masked; usize::from(vectors)],
            pending: vec![0; usize::from(vectors).div_ceil(64)],
        })
    }

    /// Offset of the capability in configuration space.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of vectors.
    pub fn vectors(&self) -> u16 {
        self.table.len() as u16
    }

    /// Whether a config access of `len` bytes at `offset` touches this capability.
    pub fn overlaps(&self, offset: usize, len: usize) -> bool {
        offset < self.offset + Self::LEN && offset.saturating_add(len) > self.offset
    }

    fn control(&self, config: &ConfigSpace) -> u16 {
        config.read_u16(self.offset + msix_reg::CONTROL)
    }

    /// MSI-X Enable.
    pub fn enabled(&self, config: &ConfigSpace) -> bool {
        self.control(config) & CTRL_ENABLE != 0
    }

    /// Function Mask.
    pub fn function_masked(&self, config: &ConfigSpace) -> bool {
        self.control(config) & CTRL_FUNCTION_MASK != 0
    }

    /// Per-vector mask bit (true for vectors that do not exist).
    pub fn vector_masked(&self, vector: u16) -> bool {
        self.table
            .get(usize::from(vector))
            .is_none_or(|e| e[12] & 1 != 0)
    }

    /// Pending bit of `vector`.
    pub fn is_pending(&self, vector: u16) -> bool {
        let v = usize::from(vector);
        self.pending
            .get(v / 64)
            .is_some_and(|w| w & (1 << (v % 64)) != 0)
    }

    fn set_pending(&mut self, vector: u16, on: bool) {
        let v = usize::from(vector);
        if let Some(w) = self.pending.get_mut(v / 64) {
            if on {
                *w |= 1 << (v % 64);
            } else {
                *w &= !(1 << (v % 64));
            }
        }
    }

    /// The message programmed in table entry `vector`.
    pub fn message(&self, vector: u16) -> Option<MsiMessage> {
        let e = self.table.get(usize::from(vector))?;
        let lo = u64::from(u32::from_le_bytes([e[0], e[1], e[2], e[3]]));
        let hi = u64::from(u32::from_le_bytes([e[4], e[5], e[6], e[7]]));
        Some(MsiMessage {
            address: hi << 32 | lo,
            data: u32::from_le_bytes([e[8], e[9], e[10], e[11]]),
        })
    }

    /// Raises `vector`: sends it, latches it as pending if masked, or reports why it went nowhere.
    pub fn trigger(
        &mut self,
        config: &ConfigSpace,
        vector: u16,
        sink: &dyn MsiSink,
    ) -> Result<Delivery, MsiError> {
        if !self.enabled(config) {
            return Ok(Delivery::Disabled);
        }
        if !config.bus_master_enabled() {
            return Ok(Delivery::BusMasterDisabled);
        }
        let Some(msg) = self.message(vector) else {
            return Ok(Delivery::InvalidVector);
        };
        if self.function_masked(config) || self.vector_masked(vector) {
            self.set_pending(vector, true);
            return Ok(Delivery::Latched);
        }
        sink.send(msg)?;
        Ok(Delivery::Sent)
    }

    /// Sends every pending vector that is deliverable now; returns how many were sent.
    fn flush_pending(&mut self, config: &ConfigSpace, sink: &dyn MsiSink) -> Result<u32, MsiError> {
        if !self.enabled(config) || self.function_masked(config) || !config.bus_master_enabled() {
            return Ok(0);
        }
        let mut sent = 0;
        for v in 0..self.vectors() {
            if self.is_pending(v) && !self.vector_masked(v) {
                self.set_pending(v, false);
                if let Some(msg) = self.message(v) {
                    sink.send(msg)?;
                    sent += 1;
                }
            }
        }
        Ok(sent)
    }

    /// Call after every guest config write that overlaps the capability (enable / function mask changes).
    pub fn after_config_write(
        &mut self,
        config: &ConfigSpace,
        sink: &dyn MsiSink,
    ) -> Result<u32, MsiError> {
        self.flush_pending(config, sink)
    }

    fn table_index(&self, bar: u8, offset: u64) -> Option<(usize, usize)> {
        if bar != self.table_bar {
            return None;
        }
        let rel = offset.checked_sub(self.table_offset)?;
        let entry = usize::try_from(rel / ENTRY_SIZE).ok()?;
        (entry < self.table.len()).then_some((entry, (rel % ENTRY_SIZE) as usize))
    }

    fn pba_byte(&self, bar: u8, offset: u64) -> Option<u8> {
        if bar != self.pba_bar {
            return None;
        }
        let rel = usize::try_from(offset.checked_sub(self.pba_offset)?).ok()?;
        let word = self.pending.get(rel / 8)?;
        Some((word >> (8 * (rel % 8))) as u8)
    }

    /// Whether byte `offset` of BAR `bar` belongs to the table or the PBA.
    pub fn owns(&self, bar: u8, offset: u64) -> bool {
        self.table_index(bar, offset).is_some() || self.pba_byte(bar, offset).is_some()
    }

    /// Guest read of table/PBA bytes; bytes of this BAR outside both structures read as 0.
    pub fn bar_read(&self, bar: u8, offset: u64, data: &mut [u8]) {
        for (i, out) in data.iter_mut().enumerate() {
            let Some(o) = offset.checked_add(i as u64) else {
                *out = 0xff;
                continue;
            };
            *out = if let Some((e, b)) = self.table_index(bar, o) {
                self.table[e][b]
            } else {
                self.pba_byte(bar, o).unwrap_or(0)
            };
        }
    }

    /// Guest write to table bytes (PBA and other bytes ignored). A vector unmasked by the write whose pending bit
    /// is set is delivered if the function allows it; returns how many messages were sent.
    pub fn bar_write(
        &mut self,
        config: &ConfigSpace,
        bar: u8,
        offset: u64,
        data: &[u8],
        sink: &dyn MsiSink,
    ) -> Result<u32, MsiError> {
        let mut touched = false;
        for (i, &v) in data.iter().enumerate() {
            let Some(o) = offset.checked_add(i as u64) else {
                continue;
            };
            if let Some((e, b)) = self.table_index(bar, o) {
                let m = ENTRY_WRITABLE[b];
                let entry = &mut self.table[e];
                entry[b] = (entry[b] & !m) | (v & m);
                touched = true;
            }
        }
        if touched {
            self.flush_pending(config, sink)
        } else {
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar::BarType;
    use crate::config::{command, HeaderType0};
    use crate::msi::RecordingSink;

    const PBA: u32 = 0x800;

    fn setup(vectors: u16) -> (ConfigSpace, MsixCapability) {
        let mut c = ConfigSpace::new(&HeaderType0 {
            vendor_id: 1,
            device_id: 2,
            revision_id: 0,
            class_code: 0,
            subsystem_vendor_id: 0,
            subsystem_id: 0,
            interrupt_pin: 0,
        });
        c.add_bar(2, BarType::Mem64, 0x1000, true).unwrap();
        let m = MsixCapability::add(&mut c, vectors, 2, 0, 2, PBA).unwrap();
        (c, m)
    }

    fn set_control(c: &mut ConfigSpace, m: &MsixCapability, ctl: u16) {
        c.write(m.offset() + msix_reg::CONTROL, &ctl.to_le_bytes());
    }

    fn program(
        m: &mut MsixCapability,
        c: &ConfigSpace,
        v: u16,
        addr: u64,
        data: u32,
        sink: &dyn MsiSink,
    ) {
        let base = u64::from(v) * ENTRY_SIZE;
        // A qword write of the address, then data, as Linux does with separate dword writes.
        m.bar_write(c, 2, base, &addr.to_le_bytes(), sink).unwrap();
        m.bar_write(c, 2, base + 8, &data.to_le_bytes(), sink)
            .unwrap();
    }

    fn unmask(m: &mut MsixCapability, c: &ConfigSpace, v: u16, sink: &dyn MsiSink) -> u32 {
        m.bar_write(
            c,
            2,
            u64::from(v) * ENTRY_SIZE + 12,
            &0u32.to_le_bytes(),
            sink,
        )
        .unwrap()
    }

    fn pba_word(m: &MsixCapability) -> u64 {
        let mut b = [0u8; 8];
        m.bar_read(2, u64::from(PBA), &mut b);
        u64::from_le_bytes(b)
    }

    #[test]
    fn capability_registers() {
        let (mut c, m) = setup(4);
        let o = m.offset();
        assert_eq!(c.read_u16(o + msix_reg::CONTROL), 3);
        assert_eq!(c.read_u32(o + msix_reg::TABLE), 2);
        assert_eq!(c.read_u32(o + msix_reg::PBA), PBA | 2);
        c.write(o + msix_reg::CONTROL, &[0xff, 0xff]);
        assert_eq!(c.read_u16(o + msix_reg::CONTROL), 0xc003);
        c.write(o + msix_reg::TABLE, &[0xff; 8]);
        assert_eq!(c.read_u32(o + msix_reg::TABLE), 2);
        assert_eq!(c.read_u32(o + msix_reg::PBA), PBA | 2);
    }

    #[test]
    fn placement_errors() {
        let (mut c, _) = setup(4);
        assert!(matches!(
            MsixCapability::add(&mut c, 4, 2, 4, 2, PBA),
            Err(InterruptSetupError::Placement(_))
        ));
        assert!(matches!(
            MsixCapability::add(&mut c, 4, 0, 0, 2, PBA),
            Err(InterruptSetupError::Placement(_))
        ));
        assert!(matches!(
            MsixCapability::add(&mut c, 4, 2, 0, 2, 0x38),
            Err(InterruptSetupError::Placement(_))
        ));
        assert!(matches!(
            MsixCapability::add(&mut c, 257, 2, 0, 2, PBA),
            Err(InterruptSetupError::Placement(_))
        ));
        assert!(matches!(
            MsixCapability::add(&mut c, 0, 2, 0, 2, PBA),
            Err(InterruptSetupError::InvalidVectorCount(0))
        ));
    }

    #[test]
    fn table_reset_state_and_masks() {
        let (c, mut m) = setup(4);
        let sink = RecordingSink::default();
        let mut e = [0u8; 16];
        m.bar_read(2, 16, &mut e);
        assert_eq!(e, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        m.bar_write(&c, 2, 16, &[0xff; 16], &sink).unwrap();
        m.bar_read(2, 16, &mut e);
        assert_eq!(
            e,
            [0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0]
        );
        // PBA is read-only.
        m.bar_write(&c, 2, u64::from(PBA), &[0xff; 8], &sink)
            .unwrap();
        assert_eq!(pba_word(&m), 0);
        // Bytes past the table and PBA read as zero; offsets near u64::MAX do not panic.
        let mut b = [0xaa; 4];
        m.bar_read(2, 0x400, &mut b);
        assert_eq!(b, [0; 4]);
        m.bar_read(2, u64::MAX - 1, &mut b);
        assert_eq!(&b[2..], &[0xff, 0xff]);
        assert!(m.owns(2, 0x3f) && m.owns(2, u64::from(PBA)) && !m.owns(2, 0x40) && !m.owns(0, 0));
    }

    #[test]
    fn delivery_pending_and_unmask() {
        let (mut c, mut m) = setup(4);
        let sink = RecordingSink::default();
        c.write(
            0x04,
            &(command::MEMORY_SPACE | command::BUS_MASTER).to_le_bytes(),
        );
        assert_eq!(m.trigger(&c, 0, &sink).unwrap(), Delivery::Disabled);
        set_control(&mut c, &m, CTRL_ENABLE);
        program(&mut m, &c, 1, 0xfee0_0000, 0x41, &sink);
        program(&mut m, &c, 3, 0xfee0_2000, 0x43, &sink);
        // Vectors reset masked: raising latches the pending bit.
        assert_eq!(m.trigger(&c, 1, &sink).unwrap(), Delivery::Latched);
        assert_eq!(pba_word(&m), 0b10);
        assert!(sink.take().is_empty());
        // Unmasking delivers it and clears the bit.
        assert_eq!(unmask(&mut m, &c, 1, &sink), 1);
        assert_eq!(
            sink.take(),
            vec![MsiMessage {
                address: 0xfee0_0000,
                data: 0x41
            }]
        );
        assert_eq!(pba_word(&m), 0);
        assert_eq!(m.trigger(&c, 1, &sink).unwrap(), Delivery::Sent);
        assert_eq!(sink.take().len(), 1);
        assert_eq!(m.trigger(&c, 4, &sink).unwrap(), Delivery::InvalidVector);
        // Function mask: latched, delivered when the function mask clears.
        unmask(&mut m, &c, 3, &sink);
        set_control(&mut c, &m, CTRL_ENABLE | CTRL_FUNCTION_MASK);
        assert_eq!(m.after_config_write(&c, &sink).unwrap(), 0);
        assert_eq!(m.trigger(&c, 3, &sink).unwrap(), Delivery::Latched);
        assert_eq!(m.trigger(&c, 3, &sink).unwrap(), Delivery::Latched);
        assert_eq!(pba_word(&m), 0b1000);
        set_control(&mut c, &m, CTRL_ENABLE);
        assert_eq!(
            m.after_config_write(&c, &sink).unwrap(),
            1,
            "coalesced into one message"
        );
        assert_eq!(
            sink.take(),
            vec![MsiMessage {
                address: 0xfee0_2000,
                data: 0x43
            }]
        );
        // Bus mastering off: nothing goes out.
        c.write(0x04, &command::MEMORY_SPACE.to_le_bytes());
        assert_eq!(
            m.trigger(&c, 3, &sink).unwrap(),
            Delivery::BusMasterDisabled
        );
        assert!(sink.take().is_empty());
    }

    #[test]
    fn pba_spans_multiple_words() {
        let mut c = ConfigSpace::new(&HeaderType0 {
            vendor_id: 1,
            device_id: 2,
            revision_id: 0,
            class_code: 0,
            subsystem_vendor_id: 0,
            subsystem_id: 0,
            interrupt_pin: 0,
        });
        c.add_bar(0, BarType::Mem32, 0x2000, false).unwrap();
        let mut m = MsixCapability::add(&mut c, 70, 0, 0, 0, 0x1000).unwrap();
        let sink = RecordingSink::default();
        c.write(0x04, &command::BUS_MASTER.to_le_bytes());
        c.write(m.offset() + msix_reg::CONTROL, &CTRL_ENABLE.to_le_bytes());
        assert_eq!(m.trigger(&c, 69, &sink).unwrap(), Delivery::Latched);
        let mut b = [0u8; 1];
        m.bar_read(0, 0x1000 + 8, &mut b);
        assert_eq!(b[0], 1 << 5);
        assert!(m.is_pending(69));
    }
}
