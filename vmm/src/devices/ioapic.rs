//! A userspace I/O APIC (82093AA-style, version 0x20, 24 pins) for KVM's split irqchip.
//!
//! Each redirection table entry (RTE) turns a pin assertion into an MSI write, the way Intel chipsets do:
//! - compatibility format: address 0xFEE0_0000 | destination << 12 | destination mode << 2,
//!   data = vector | delivery mode << 8 | trigger mode << 15;
//! - remappable format (RTE bit 48 set, Intel VT-d 5.1.5.1 "I/OxAPIC Programming"): address 0xFEE0_0000 |
//!   index[14:0] << 5 | 1 << 4 (format) | index[15] << 2, data = the RTE's vector field; the interrupt
//!   remapping hardware then looks the index up in its table.
//!
//! The MSI goes to an [`IrqDelivery`] (the VMM's router: VT-d interrupt remapping when enabled, then KVM).
//! Only edge-triggered delivery is modelled faithfully: our platform has no level-triggered sources (no INTx,
//! no SCI in hardware-reduced ACPI). A level-triggered RTE is delivered once per assertion and Remote IRR
//! stays 0 (documented limitation).

use std::sync::Arc;

use crate::bus::BusDevice;

/// Number of redirection entries (pins).
pub const IOAPIC_PINS: usize = 24;
/// Version register: version 0x20 (has the EOI register), max redirection entry 23.
const IOAPIC_VERSION: u32 = 0x20 | ((IOAPIC_PINS as u32 - 1) << 16);

const REG_SELECT: u64 = 0x00;
const REG_WINDOW: u64 = 0x10;
const REG_EOI: u64 = 0x40;

const IDX_ID: u32 = 0x00;
const IDX_VERSION: u32 = 0x01;
const IDX_ARBITRATION: u32 = 0x02;
const IDX_REDTBL: u32 = 0x10;

const RTE_VECTOR: u64 = 0xff;
const RTE_DELIVERY_MODE: u64 = 0x7 << 8;
const RTE_DEST_MODE: u64 = 1 << 11;
const RTE_DELIVERY_STATUS: u64 = 1 << 12;
const RTE_REMOTE_IRR: u64 = 1 << 14;
const RTE_TRIGGER_LEVEL: u64 = 1 << 15;
const RTE_MASK: u64 = 1 << 16;
/// Remappable format (VT-d): bit 48, index[14:0] in bits 63:49, index[15] in bit 11.
const RTE_REMAPPABLE: u64 = 1 << 48;
/// Bits software may write: everything but delivery status and remote IRR (read-only).
const RTE_WRITABLE: u64 = !(RTE_DELIVERY_STATUS | RTE_REMOTE_IRR);

/// Where the IOAPIC's MSIs go. `source_id` is the IOAPIC's requester id (its DMAR device scope).
pub trait IrqDelivery: Send + Sync {
    fn deliver(&self, source_id: u16, address: u64, data: u32);
}

/// The I/O APIC.
pub struct Ioapic {
    id: u32,
    select: u32,
    rte: [u64; IOAPIC_PINS],
    source_id: u16,
    delivery: Arc<dyn IrqDelivery>,
}

impl Ioapic {
    /// An IOAPIC with all pins masked, as after reset.
    pub fn new(id: u8, source_id: u16, delivery: Arc<dyn IrqDelivery>) -> Self {
        Self {
            id: u32::from(id) << 24,
            select: 0,
            rte: [RTE_MASK; IOAPIC_PINS],
            source_id,
            delivery,
        }
    }

    /// The MSI (address, data) an RTE produces.
    pub fn rte_to_msi(rte: u64) -> (u64, u32) {
        let vector = (rte & RTE_VECTOR) as u32;
        if rte & RTE_REMAPPABLE != 0 {
            let index = ((rte >> 49) & 0x7fff) | (((rte >> 11) & 1) << 15);
            let address = 0xfee0_0000 | ((index & 0x7fff) << 5) | (1 << 4) | ((index >> 15) << 2);
            (address, vector)
        } else {
            let dest = (rte >> 56) & 0xff;
            let dest_mode = u64::from(rte & RTE_DEST_MODE != 0);
            let address = 0xfee0_0000 | (dest << 12) | (dest_mode << 2);
            let mode = ((rte & RTE_DELIVERY_MODE) >> 8) as u32;
            let level = u32::from(rte & RTE_TRIGGER_LEVEL != 0);
            (address, vector | (mode << 8) | (level << 15))
        }
    }

    /// An edge on `pin` (or an assertion of a level pin): delivers unless masked.
    pub fn assert_pin(&mut self, pin: usize) {
        let Some(&rte) = self.rte.get(pin) else {
            return;
        };
        if rte & RTE_MASK != 0 {
            return;
        }
        let (address, data) = Self::rte_to_msi(rte);
        self.delivery.deliver(self.source_id, address, data);
    }

    fn read_register(&self) -> u32 {
        match self.select {
            IDX_ID => self.id,
            IDX_VERSION => IOAPIC_VERSION,
            IDX_ARBITRATION => self.id,
            i if (IDX_REDTBL..IDX_REDTBL + 2 * IOAPIC_PINS as u32).contains(&i) => {
                let rte = self.rte[((i - IDX_REDTBL) / 2) as usize];
                if i % 2 == 0 {
                    rte as u32
                } else {
                    (rte >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    fn write_register(&mut self, value: u32) {
        match self.select {
            IDX_ID => self.id = value & 0x0f00_0000,
            i if (IDX_REDTBL..IDX_REDTBL + 2 * IOAPIC_PINS as u32).contains(&i) => {
                let slot = &mut self.rte[((i - IDX_REDTBL) / 2) as usize];
                let old = *slot;
                let new = if i % 2 == 0 {
                    (old & !0xffff_ffff) | u64::from(value)
                } else {
                    (old & 0xffff_ffff) | (u64::from(value) << 32)
                };
                // Polarity (bit 13) is stored but has no effect: pins are pulsed by devices, not driven.
                *slot = (new & RTE_WRITABLE) | (old & !RTE_WRITABLE);
            }
            _ => {}
        }
    }
}

impl BusDevice for Ioapic {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match offset {
            REG_SELECT => self.select,
            REG_WINDOW => self.read_register(),
            _ => 0,
        };
        // Registers are 32-bit; narrower reads see the low bytes, wider ones are padded with zeros.
        let bytes = u64::from(value).to_le_bytes();
        let n = data.len().min(8);
        data[..n].copy_from_slice(&bytes[..n]);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut b = [0u8; 4];
        let n = data.len().min(4);
        b[..n].copy_from_slice(&data[..n]);
        let value = u32::from_le_bytes(b);
        match offset {
            REG_SELECT => self.select = value & 0xff,
            REG_WINDOW => self.write_register(value),
            // EOI register: clears Remote IRR for the vector; we never set it (edge model).
            REG_EOI => {}
            _ => {}
        }
    }
}

/// One IOAPIC input, as a vm-superio interrupt trigger (edge: each trigger is one assertion).
pub struct IoapicPin {
    pub ioapic: Arc<std::sync::Mutex<Ioapic>>,
    pub pin: usize,
}

impl vm_superio::Trigger for IoapicPin {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        crate::bus::lock(&self.ioapic).assert_pin(self.pin);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u16, u64, u32)>>);

    impl IrqDelivery for Recorder {
        fn deliver(&self, source_id: u16, address: u64, data: u32) {
            self.0.lock().unwrap().push((source_id, address, data));
        }
    }

    fn write_reg(io: &mut Ioapic, index: u32, value: u32) {
        io.write(REG_SELECT, &index.to_le_bytes());
        io.write(REG_WINDOW, &value.to_le_bytes());
    }

    fn read_reg(io: &mut Ioapic, index: u32) -> u32 {
        io.write(REG_SELECT, &index.to_le_bytes());
        let mut b = [0u8; 4];
        io.read(REG_WINDOW, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn identification_registers() {
        let mut io = Ioapic::new(0, 0xff00, Arc::new(Recorder::default()));
        assert_eq!(read_reg(&mut io, IDX_VERSION), 0x0017_0020);
        write_reg(&mut io, IDX_ID, 0x0300_0000);
        assert_eq!(read_reg(&mut io, IDX_ID), 0x0300_0000);
        assert_eq!(
            read_reg(&mut io, 0x10),
            RTE_MASK as u32,
            "pins start masked"
        );
    }

    #[test]
    fn compatibility_rte_delivers_msi_when_unmasked() {
        let rec = Arc::new(Recorder::default());
        let mut io = Ioapic::new(0, 0xff00, rec.clone());
        io.assert_pin(4);
        assert!(rec.0.lock().unwrap().is_empty(), "masked");
        // Pin 4: vector 0x24, fixed, physical destination 1, edge.
        write_reg(&mut io, IDX_REDTBL + 9, 0x0100_0000);
        write_reg(&mut io, IDX_REDTBL + 8, 0x24);
        io.assert_pin(4);
        assert_eq!(
            rec.0.lock().unwrap().as_slice(),
            &[(0xff00, 0xfee0_1000, 0x24)]
        );
        io.assert_pin(99);
        assert_eq!(rec.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn remappable_rte_encodes_the_index() {
        // Index 0x8005: bits 14:0 = 5 in RTE 63:49, bit 15 in RTE bit 11; vector field 0x31.
        let rte = (5u64 << 49) | RTE_REMAPPABLE | (1 << 11) | 0x31;
        let (address, data) = Ioapic::rte_to_msi(rte);
        assert_eq!(address, 0xfee0_0000 | (5 << 5) | (1 << 4) | (1 << 2));
        assert_eq!(data, 0x31);
    }

    #[test]
    fn level_and_logical_encoding_and_read_only_bits() {
        let rte = (0x0fu64 << 56) | RTE_DEST_MODE | RTE_TRIGGER_LEVEL | (1 << 8) | 0x40;
        assert_eq!(
            Ioapic::rte_to_msi(rte),
            (0xfee0_f000 | (1 << 2), 0x40 | (1 << 8) | (1 << 15))
        );
        let mut io = Ioapic::new(0, 0xff00, Arc::new(Recorder::default()));
        write_reg(&mut io, IDX_REDTBL, 0xffff_ffff);
        let lo = read_reg(&mut io, IDX_REDTBL);
        assert_eq!(lo & (RTE_DELIVERY_STATUS | RTE_REMOTE_IRR) as u32, 0);
    }

    #[test]
    fn odd_accesses_are_harmless() {
        let mut io = Ioapic::new(0, 0xff00, Arc::new(Recorder::default()));
        let mut b = [0u8; 8];
        io.read(0x7, &mut b);
        io.write(0x10, &[]);
        io.write(REG_SELECT, &[0xff]);
        io.read(REG_WINDOW, &mut b[..1]);
        assert_eq!(b[0], 0);
    }
}
