//! Identity and BAR0 register block of the emulated PCI endpoint test function, as defined by Linux 6.12's
//! endpoint side `drivers/pci/endpoint/functions/pci-epf-test.c` (`struct pci_epf_test_reg`, packed) and read by
//! the host driver `drivers/misc/pci_endpoint_test.c`.
//!
//! # Identity
//! The function claims to be the endpoint test function of a TI DRA74x (`104c:b500`, class 0xff0000 as
//! pci-epf-test's header). `pci_endpoint_test`'s id table maps that id to `default_data`: register block in
//! BAR0, 4 KiB buffer alignment, MSI interrupts, which is exactly what this model offers. No other Linux driver
//! matches `104c:b500`.
//!
//! # BAR0 (4 KiB, 32-bit memory): plain memory with a command doorbell
//! As on the real endpoint (where BAR0 is endpoint RAM that pci-epf-test polls), every byte of BAR0 is readable
//! and writable storage. A write that leaves a non-zero value in [`REG_COMMAND`] runs that command before the
//! write returns, then clears COMMAND to 0 (as pci-epf-test's handler does).
//!
//! | offset | name | meaning |
//! |---|---|---|
//! | 0x00 | [`REG_MAGIC`] | scratch (the host's BAR test writes and reads it back) |
//! | 0x04 | [`REG_COMMAND`] | one `COMMAND_*` bit |
//! | 0x08 | [`REG_STATUS`] | `STATUS_*` bits, cleared when a command starts |
//! | 0x0c / 0x10 | [`REG_SRC_LO`] / [`REG_SRC_HI`] | source IOVA (COMMAND_READ, COMMAND_COPY) |
//! | 0x14 / 0x18 | [`REG_DST_LO`] / [`REG_DST_HI`] | destination IOVA (COMMAND_WRITE, COMMAND_COPY) |
//! | 0x1c | [`REG_SIZE`] | transfer size in bytes; above [`MAX_TRANSFER`] the command fails with `*_ADDR_INVALID` |
//! | 0x20 | [`REG_CHECKSUM`] | `crc32_le(~0, data, size)`: host-written for READ, device-written for WRITE |
//! | 0x24 | [`REG_IRQ_TYPE`] | [`IRQ_TYPE_INTX`], [`IRQ_TYPE_MSI`], [`IRQ_TYPE_MSIX`]; above MSIX commands are ignored |
//! | 0x28 | [`REG_IRQ_NUMBER`] | 1-based MSI message number to raise |
//! | 0x2c | [`REG_FLAGS`] | [`FLAG_USE_DMA`]: accepted (this function always moves data by DMA) |
//!
//! Direction naming is the endpoint's: COMMAND_READ = the device reads host memory at SRC and checks CHECKSUM
//! (the host's `PCITEST_WRITE`); COMMAND_WRITE = the device writes fresh pseudo-random data to DST and stores its
//! CHECKSUM (the host's `PCITEST_READ`); COMMAND_COPY = SRC to DST (the whole source is read before writing).
//!
//! Interrupts: STATUS_IRQ_RAISED is set after every READ/WRITE/COPY/RAISE_* command, then MSI message
//! `IRQ_NUMBER - 1` is sent if IRQ_TYPE is MSI and `1 <= IRQ_NUMBER <= allocated vectors`. The function has no
//! INTx pin and no MSI-X capability, so those types set STATUS_IRQ_RAISED but send nothing (pci-epf-test's
//! "invalid IRQ number" path). DMA needs COMMAND.BME; every access goes through the function's IOMMU port.

/// Vendor: Texas Instruments.
pub const VENDOR_ID: u16 = 0x104c;
/// Device: DRA74x (`PCI_DEVICE_ID_TI_DRA74x`).
pub const DEVICE_ID: u16 = 0xb500;
/// `PCI_CLASS_OTHERS` base class, as pci-epf-test's header.
pub const CLASS_CODE: u32 = 0xff_0000;
pub const REVISION: u8 = 0;
/// MSI vectors offered. The host driver asks for 1..=32 but only ever raises message 1; with several, Linux
/// wants a block of interrupt-remapping entries under one handle mask, which VT-d units with ECAP.MHMV = 0 (as
/// iovmm's) refuse with "DMAR-IR: Requested mask 2 exceeds the max invalidation handle mask value 0" (an error
/// in the boot log). One vector works with and without interrupt remapping.
pub const MSI_VECTORS: u32 = 1;

/// BAR holding the register block.
pub const REGS_BAR: u8 = 0;
pub const BAR0_SIZE: u64 = 0x1000;

pub const REG_MAGIC: u64 = 0x00;
pub const REG_COMMAND: u64 = 0x04;
pub const REG_STATUS: u64 = 0x08;
pub const REG_SRC_LO: u64 = 0x0c;
pub const REG_SRC_HI: u64 = 0x10;
pub const REG_DST_LO: u64 = 0x14;
pub const REG_DST_HI: u64 = 0x18;
pub const REG_SIZE: u64 = 0x1c;
pub const REG_CHECKSUM: u64 = 0x20;
pub const REG_IRQ_TYPE: u64 = 0x24;
pub const REG_IRQ_NUMBER: u64 = 0x28;
pub const REG_FLAGS: u64 = 0x2c;

pub const IRQ_TYPE_INTX: u32 = 0;
pub const IRQ_TYPE_MSI: u32 = 1;
pub const IRQ_TYPE_MSIX: u32 = 2;

pub const COMMAND_RAISE_INTX_IRQ: u32 = 1 << 0;
pub const COMMAND_RAISE_MSI_IRQ: u32 = 1 << 1;
pub const COMMAND_RAISE_MSIX_IRQ: u32 = 1 << 2;
pub const COMMAND_READ: u32 = 1 << 3;
pub const COMMAND_WRITE: u32 = 1 << 4;
pub const COMMAND_COPY: u32 = 1 << 5;

pub const STATUS_READ_SUCCESS: u32 = 1 << 0;
pub const STATUS_READ_FAIL: u32 = 1 << 1;
pub const STATUS_WRITE_SUCCESS: u32 = 1 << 2;
pub const STATUS_WRITE_FAIL: u32 = 1 << 3;
pub const STATUS_COPY_SUCCESS: u32 = 1 << 4;
pub const STATUS_COPY_FAIL: u32 = 1 << 5;
pub const STATUS_IRQ_RAISED: u32 = 1 << 6;
pub const STATUS_SRC_ADDR_INVALID: u32 = 1 << 7;
pub const STATUS_DST_ADDR_INVALID: u32 = 1 << 8;

pub const FLAG_USE_DMA: u32 = 1 << 0;

/// Largest transfer the function accepts (the host driver's ioctls use far less).
pub const MAX_TRANSFER: u32 = 16 << 20;
