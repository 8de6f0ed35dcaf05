//! Register map of the iovmm DMA test device: the single source for the device model and the guest tests.
//!
//! # Identity
//! | field | value |
//! |---|---|
//! | vendor:device | `7e57:0001` ([`VENDOR_ID`], [`DEVICE_ID`]); subsystem the same |
//! | class | `0xff0000` (unassigned class), revision [`REVISION`] |
//! | PCIe | version 2 capability, Root Complex Integrated Endpoint (on bus 0, no root port) |
//! | interrupts | MSI (64-bit, per-vector mask, [`MSI_VECTORS`] vectors), MSI-X ([`MSIX_VECTORS`] vectors); no INTx (pin 0) |
//! | power | PM capability: D0 and D3hot, No_Soft_Reset (state survives D3hot) |
//!
//! Vendor 0x7e57 appears neither in pci.ids (hwdata 0.368 / pci.ids 2023.04.11) nor anywhere in the Linux 6.12
//! sources (`pci_ids.h`, driver ID tables, quirks), and no Linux driver matches class 0xff0000 for any vendor,
//! so no driver binds the device until the guest hands it to `vfio-pci` (`driver_override` or `new_id`).
//!
//! # BARs
//! | BAR | type | size | contents |
//! |---|---|---|---|
//! | 0 | 32-bit memory, non-prefetchable | [`BAR0_SIZE`] (4 KiB) | the registers below |
//! | 2 (+3) | 64-bit memory, prefetchable | [`BAR2_SIZE`] (4 KiB) | MSI-X table at [`MSIX_TABLE_OFFSET`], PBA at [`MSIX_PBA_OFFSET`] |
//!
//! # BAR0 registers (all 32 bits, little endian)
//! | offset | name | access | meaning |
//! |---|---|---|---|
//! | 0x000 | [`REG_ID`] | RO | [`ID_MAGIC`]: the bytes `"IOVM"` |
//! | 0x004 | [`REG_VERSION`] | RO | [`VERSION`]: major in bits 31:16, minor in bits 15:0 |
//! | 0x008 | [`REG_FEATURES`] | RO | implemented features, [`FEATURE_IRQ`] now; later milestones add bits |
//! | 0x00c | [`REG_SCRATCH`] | RW | scratch, resets to 0 |
//! | 0x010 | [`REG_IRQ_DOORBELL`] | WO (reads 0) | write N: raise vector N through MSI-X if enabled, else MSI if enabled, else drop it |
//! | 0x014 | [`REG_IRQ_RAISED`] | RO | doorbell writes so far |
//! | 0x018 | [`REG_IRQ_SENT`] | RO | messages sent, including ones sent later on unmask |
//! | 0x01c | [`REG_IRQ_DROPPED`] | RO | doorbells that produced no message and no pending bit |
//! | 0x020 | [`REG_IRQ_LAST`] | RO | outcome of the last doorbell, an `IRQ_LAST_*` code |
//! | 0x024..0x0ff | reserved | | reads 0, writes ignored |
//! | 0x100..0xfff | reserved for the DMA engine | | reads 0, writes ignored (see below) |
//!
//! Counters wrap at 2^32. A doorbell on a masked vector sets its pending bit (it counts neither as sent nor
//! dropped until the unmask sends it; repeated doorbells on a masked vector coalesce into one message). MSI and
//! MSI-X messages are memory writes: with COMMAND.BME clear they are dropped ([`IRQ_LAST_BUS_MASTER_OFF`]).
//!
//! # Access rules
//! Aligned 4-byte accesses act on one register; aligned 8-byte accesses act as two 4-byte accesses, low one
//! first. Reads of other sizes or alignments return the addressed bytes (reads have no side effects). Writes that
//! cover only part of a register change the scratch register's bytes and are ignored for every other register.
//! Accesses beyond the BAR read all ones and are ignored.
//!
//! # Next milestone (not implemented yet)
//! 0x100..0xfff is kept free for the DMA engine: copy LEN bytes IOVA to IOVA, fill with a pattern, the
//! ATS-style translate probe, an optional PASID per operation, and a status register reporting done / fault with
//! the faulting IOVA and kind, completion raising an MSI; the ATS and PASID extended capabilities arrive with it
//! (the extended capability list at 0x100 of config space is empty today). A feature bit in [`REG_FEATURES`]
//! will announce each of them.

/// Vendor ID of the test device.
pub const VENDOR_ID: u16 = 0x7e57;
/// Device ID of the test device.
pub const DEVICE_ID: u16 = 0x0001;
/// Revision ID.
pub const REVISION: u8 = 0x01;
/// Class code: unassigned class.
pub const CLASS_CODE: u32 = 0xff_0000;

/// Number of MSI vectors offered (Multiple Message Capable = 2).
pub const MSI_VECTORS: u32 = 4;
/// Number of MSI-X vectors.
pub const MSIX_VECTORS: u16 = 4;

/// BAR index of the register file.
pub const REGS_BAR: u8 = 0;
/// Size of BAR0.
pub const BAR0_SIZE: u64 = 0x1000;
/// BAR index holding the MSI-X table and PBA (a 64-bit BAR, so BAR3 is its high half).
pub const MSIX_BAR: u8 = 2;
/// Size of BAR2.
pub const BAR2_SIZE: u64 = 0x1000;
/// Offset of the MSI-X table in BAR2.
pub const MSIX_TABLE_OFFSET: u32 = 0x000;
/// Offset of the MSI-X pending bit array in BAR2.
pub const MSIX_PBA_OFFSET: u32 = 0x800;

/// ID register.
pub const REG_ID: u64 = 0x000;
/// Version register.
pub const REG_VERSION: u64 = 0x004;
/// Feature bits.
pub const REG_FEATURES: u64 = 0x008;
/// Scratch register.
pub const REG_SCRATCH: u64 = 0x00c;
/// Interrupt doorbell.
pub const REG_IRQ_DOORBELL: u64 = 0x010;
/// Doorbell writes counter.
pub const REG_IRQ_RAISED: u64 = 0x014;
/// Sent messages counter.
pub const REG_IRQ_SENT: u64 = 0x018;
/// Dropped doorbells counter.
pub const REG_IRQ_DROPPED: u64 = 0x01c;
/// Outcome of the last doorbell.
pub const REG_IRQ_LAST: u64 = 0x020;
/// First offset reserved for the DMA engine of the next milestone.
pub const DMA_REGS_START: u64 = 0x100;

/// Value of [`REG_ID`]: the bytes "IOVM" in memory order.
pub const ID_MAGIC: u32 = u32::from_le_bytes(*b"IOVM");
/// Value of [`REG_VERSION`]: 1.0.
pub const VERSION: u32 = 0x0001_0000;
/// Feature bit: interrupt doorbell and counters.
pub const FEATURE_IRQ: u32 = 1 << 0;

/// [`REG_IRQ_LAST`]: no doorbell yet.
pub const IRQ_LAST_NONE: u32 = 0;
/// [`REG_IRQ_LAST`]: message sent.
pub const IRQ_LAST_SENT: u32 = 1;
/// [`REG_IRQ_LAST`]: vector masked, pending bit set.
pub const IRQ_LAST_PENDING: u32 = 2;
/// [`REG_IRQ_LAST`]: neither MSI-X nor MSI enabled: dropped.
pub const IRQ_LAST_DISABLED: u32 = 3;
/// [`REG_IRQ_LAST`]: vector not implemented/allocated: dropped.
pub const IRQ_LAST_INVALID_VECTOR: u32 = 4;
/// [`REG_IRQ_LAST`]: COMMAND.BME clear: dropped.
pub const IRQ_LAST_BUS_MASTER_OFF: u32 = 5;
/// [`REG_IRQ_LAST`]: the platform refused the message (delivery error): dropped.
pub const IRQ_LAST_DELIVERY_ERROR: u32 = 6;
