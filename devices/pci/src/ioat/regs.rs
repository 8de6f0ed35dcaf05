//! Identity, BAR0 register map and PCI configuration registers of the emulated Intel I/OAT DMA engine
//! ("Crystal Beach DMA", CBDMA) version 3.3, as the Skylake-SP part `8086:2021` (`PCI_DEVICE_ID_INTEL_IOAT_SKX`)
//! presents it. Offsets and bit names are Linux's `drivers/dma/ioat/registers.h` and `hw.h` (6.12 and 7.3 are
//! identical there); the VFIO selftest driver `tools/testing/selftests/vfio/lib/drivers/ioat/` includes the same
//! two headers.
//!
//! # Identity
//! `8086:2021` revision 4, class 0x088000 ("System peripheral", as `lspci` names the Skylake-SP "CBDMA
//! Registers" functions). Linux's `ioat_pci_tbl` matches it; `is_skx_ioat()` makes the driver treat it as
//! version 3.2 (so it clears the PCI config error mirrors in `ioat_reset_hw`) and `is_xeon_cb32()` strips
//! XOR/PQ from DMACAPABILITY. The VFIO selftest driver matches only this id.
//!
//! # BAR0: 16 KiB, 64-bit, non-prefetchable
//! `IOAT_MMIO_BAR` is BAR 0. The general registers live at 0x00..0x80 and channel *n*'s at `0x80 * (n + 1)`
//! (`ioat_init_channel`: `reg_base + 0x80 * (idx + 1)`; `IOAT_CHANNEL_MMIO_SIZE`). The MSI-X table (one
//! entry per channel) is at 0x2000 and the PBA at 0x3000, in BAR0 as on the real part. Every other byte reads 0
//! and ignores writes; bytes past the BAR read all ones. Any access size works: registers are assembled from
//! (and split into) bytes, so Linux's `readq`/`writeq` and the selftest's `writeq(CHAINADDR)` behave as two
//! `readl`/`writel` would.
//!
//! General registers:
//!
//! | offset | width | name | model |
//! |---|---|---|---|
//! | 0x00 | 8 | [`REG_CHANCNT`] | RO [`CHANNELS`] (bits 4:0 valid) |
//! | 0x01 | 8 | [`REG_XFERCAP`] | RO [`XFERCAP_LOG`]: largest transfer is `1 << XFERCAP` |
//! | 0x02 | 8 | [`REG_GENCTRL`] | RW bit 0 (debug enable), no effect |
//! | 0x03 | 8 | [`REG_INTRCTRL`] | RW MASTER_INT_EN, MSIX_VECTOR_CONTROL; RO INT_STATUS, INT |
//! | 0x04 | 32 | [`REG_ATTNSTATUS`] | one bit per channel that signalled; cleared by reading it |
//! | 0x08 | 8 | [`REG_CBVER`] | RO [`VERSION`] = 0x33 |
//! | 0x0a | 16 | [`REG_PERPORTOFFSET`] | RO 0x80 (offset of channel 0) |
//! | 0x0c | 16 | [`REG_INTRDELAY`] | RW bits 13:0, stored only; COALESCE_SUPPORT (bit 15) reads 0 |
//! | 0x0e | 16 | [`REG_CSSTATUS`] | RO 0 (no degraded mode, no MMIO restriction) |
//! | 0x10 | 32 | [`REG_DMACAPABILITY`] | RO [`DMA_CAPABILITY`]: block fill only; no DCA, XOR, PQ, DWBES, DPS |
//! | 0x14 | 16 | [`REG_DCAOFFSET`] | RO 0: no DCA register block, so `ioat_dca_init` returns quietly |
//!
//! Channel registers (offsets from the channel base):
//!
//! | offset | width | name | model |
//! |---|---|---|---|
//! | 0x00 | 16 | [`CH_CHANCTRL`] | see below |
//! | 0x02 | 16 | [`CH_DMACOMP`] | RO [`DMA_COMP_V2`] |
//! | 0x04 | 8 | [`CH_CHANCMD`] | commands, read 0 (every command completes within the write) |
//! | 0x06 | 16 | [`CH_DMACOUNT`] | RW; a write is the doorbell |
//! | 0x08 | 64 | [`CH_CHANSTS`] | RO: completed descriptor address (63:6) and state (2:0) |
//! | 0x10 | 64 | [`CH_CHAINADDR`] | RW first descriptor of a chain (64-byte aligned) |
//! | 0x18 | 64 | [`CH_CHANCMP`] | RW completion write-back address (8-byte aligned) |
//! | 0x20 | 64 | [`CH_CDAR`] | RO address of the descriptor fetched last |
//! | 0x28 | 32 | [`CH_CHANERR`] | RW1C error bits ([`CHANERR_IMPLEMENTED`]) |
//! | 0x2c | 32 | [`CH_CHANERRMSK`] | RW, stored only |
//! | 0x30 | 32 | [`CH_DCACTRL`] | RW, stored only (Linux writes `IOAT_DMA_DCA_ANY_CPU`) |
//!
//! # CHANCTRL
//! Bits 2 (ERR_COMPLETION_EN), 3 (ANY_ERR_ABORT_EN), 4 (ERR_INT_EN), 5 (descriptor snoop control), 8
//! (CHANNEL_IN_USE) and 15:12 (priority) are stored. Bit 0 is the interrupt re-arm: it reads 1 while the
//! channel's interrupt is disarmed (the channel signalled and software has not re-armed it) and writing 1
//! re-arms it (the datasheet's "Interrupt Disable, W1C"; Linux writes `IOAT_CHANCTRL_RUN` after each cleanup,
//! the selftest writes `INT_REARM` before each doorbell). An interrupt the channel wants to raise while disarmed
//! is remembered and raised at the re-arm, so no completion goes unsignalled.
//!
//! # Channel states (CHANSTS bits 2:0)
//! ACTIVE (0) is never visible in CHANSTS: descriptors are processed inside the MMIO write that releases them
//! (a completion write-back of a descriptor followed by more released ones does carry ACTIVE). DONE (1),
//! SUSPENDED (2), HALTED (3) as in registers.h, and ARMED (4), the state DPDK's ioat driver
//! (`IOAT_CHANSTS_ARMED`) waits for after writing CHAINADDR to a reset channel.
//!
//! * Power-on and CHANCMD RESET: every channel register (and ATTNSTATUS, the re-arm state and any remembered
//!   interrupt) returns to 0, the state is HALTED with completed address
//!   0 (Linux `__ioat_cleanup`: "At restart of the channel, the completion address and the channel status will be
//!   0"; the selftest asserts HALTED after its reset). The PCI config error mirrors are not touched.
//! * A CHAINADDR write (either half) while HALTED without an error, SUSPENDED or DONE arms the channel: the next
//!   doorbell starts fetching at CHAINADDR with the channel's descriptor counter restarted at 0. This is how every
//!   driver starts a chain: Linux after each reset (`ioat_start_null_desc`, `__ioat_restart_chan` with
//!   `dmacount = 0`), the selftest after each SUSPEND (it writes the same small count every time), DPDK after
//!   reset.
//! * A DMACOUNT write while ARMED or DONE processes descriptors until the counter equals DMACOUNT (mod 2^16,
//!   so at most 65535 per write), following each descriptor's `next`; the channel ends DONE, or HALTED at the
//!   first error. While SUSPENDED the value is only stored; while HALTED it is ignored.
//! * SUSPEND from ARMED or DONE gives SUSPENDED; RESUME returns to where it was and, if DMACOUNT was written
//!   meanwhile, rings the doorbell; ABORT halts the channel without an error. Two or more of RESUME/ABORT/SUSPEND at once, or bits 7:6,
//!   set CHANCMD_ERR. RESET wins over everything else in the same write. START/APPEND (version 1 commands) are
//!   ignored.
//! * A halted channel with CHANERR bits set stays halted until the bits are cleared (RW1C, as Linux's `ioat_eh`
//!   does before `ioat_restart_channel`) or the channel is reset.
//!
//! # Errors
//! Each error sets its CHANERR bit and the same bit in the config mirror [`CFG_CHANERR_INT`], halts the channel
//! with CDAR pointing at the failing descriptor and CHANSTS still holding the last *completed* one (Linux's
//! `ioat_eh` relies on that to find the culprit), writes CHANSTS to CHANCMP if CHANCTRL.ERR_COMPLETION_EN and
//! raises the channel interrupt if CHANCTRL.ERR_INT_EN. Every error is fatal (ANY_ERR_ABORT_EN is stored but
//! changes nothing).
//!
//! | cause | CHANERR bit |
//! |---|---|
//! | doorbell on an armed channel whose CHAINADDR is not 64-byte aligned | [`CHANERR_CHAIN_ADDR_VALUE`] |
//! | a descriptor's `next` not 64-byte aligned (when it is followed) | [`CHANERR_NEXT_DESC_ALIGN`] |
//! | the descriptor fetch fails (IOMMU fault, not RAM, bus mastering off) | [`CHANERR_NEXT_ADDR`] |
//! | (with bus mastering off, an error completion write-back fails as well) | + [`CHANERR_COMPLETION_ADDR`] |
//! | source range wraps the 64-bit address space | [`CHANERR_SRC_ADDR`] |
//! | destination range wraps the 64-bit address space | [`CHANERR_DEST_ADDR`] |
//! | reading the source fails | [`CHANERR_READ_DATA`] |
//! | writing the destination fails | [`CHANERR_WRITE_DATA`] |
//! | unknown op, or page-break bits (no `IOAT_CAP_PAGE_BREAK`) | [`CHANERR_CONTROL`] |
//! | size 0 or above `1 << XFERCAP` (not for the NULL descriptor) | [`CHANERR_LENGTH`] |
//! | CHANCMP not 8-byte aligned, or the completion write fails | [`CHANERR_COMPLETION_ADDR`] |
//! | invalid CHANCMD value | [`CHANERR_CHANCMD`] |
//!
//! Read and write data errors are the ones Linux recovers from (`IOAT_CHANERR_RECOVER_MASK`: it aborts the
//! outstanding descriptors, resets and restarts the channel).
//!
//! # Interrupts
//! A channel signals after a descriptor with `int_en` completes and, with ERR_INT_EN, when it halts on an error
//! (subject to the CHANCTRL re-arm above). Signalling sets the channel's ATTNSTATUS bit, then:
//! * MSI-X enabled and INTRCTRL.MSIX_VECTOR_CONTROL set: MSI-X vector = channel number. MASTER_INT_EN does not
//!   gate this: the selftest driver sets only MSIX_VECTOR_CONTROL and expects its `send_msi` interrupt.
//! * otherwise, if INTRCTRL.MASTER_INT_EN: MSI-X vector 0 if MSI-X is enabled, else the MSI message if MSI is
//!   enabled (Linux's single-vector handler then reads INTRCTRL.INT_STATUS and ATTNSTATUS).
//!
//! INTRCTRL.INT_STATUS reads 1 while ATTNSTATUS is non-zero; INT is INT_STATUS and MASTER_INT_EN. No INTx pin.
//!
//! # PCI configuration registers beyond the capabilities
//! [`CFG_DMAUNCERRSTS`] and [`CFG_CHANERR_INT`] are RW1C (the latter mirrors CHANERR), the mask and severity
//! registers next to them are RW. Nothing in the model sets DMAUNCERRSTS.

/// Vendor: Intel.
pub const VENDOR_ID: u16 = 0x8086;
/// `PCI_DEVICE_ID_INTEL_IOAT_SKX`.
pub const DEVICE_ID: u16 = 0x2021;
/// Revision of the Skylake-SP CBDMA functions.
pub const REVISION: u8 = 0x04;
/// Base class 0x08 (generic system peripheral), subclass 0x80 (other).
pub const CLASS_CODE: u32 = 0x08_8000;

/// `IOAT_MMIO_BAR`.
pub const REGS_BAR: u8 = 0;
/// BAR0 size: general + channel registers, MSI-X table and PBA.
pub const BAR0_SIZE: u64 = 0x4000;
/// MSI-X table offset in BAR0.
pub const MSIX_TABLE_OFFSET: u32 = 0x2000;
/// MSI-X PBA offset in BAR0.
pub const MSIX_PBA_OFFSET: u32 = 0x3000;
/// MSI vectors offered (one: see the EPF test function for why a single vector suits VT-d without MHMV).
pub const MSI_VECTORS: u32 = 1;

/// DMA channels (CHANCNT). Linux wants one MSI-X vector per channel (`pci_enable_msix_exact`).
pub const CHANNELS: u8 = 1;
/// log2 of the largest transfer one descriptor may move: 4 KiB, the smallest value the specification allows
/// (SPDK rejects XFERCAP < 12). Linux splits copies at this size; the selftest uses `1 << XFERCAP` as its chunk.
/// It also bounds the work of one doorbell to 65535 * 4 KiB.
pub const XFERCAP_LOG: u8 = 12;
/// Largest transfer size, `1 << XFERCAP`.
pub const MAX_TRANSFER: u32 = 1 << XFERCAP_LOG;
/// `IOAT_VER_3_3`.
pub const VERSION: u8 = 0x33;

// General registers.
pub const REG_CHANCNT: u64 = 0x00;
pub const REG_XFERCAP: u64 = 0x01;
pub const REG_GENCTRL: u64 = 0x02;
pub const REG_INTRCTRL: u64 = 0x03;
pub const REG_ATTNSTATUS: u64 = 0x04;
pub const REG_CBVER: u64 = 0x08;
pub const REG_PERPORTOFFSET: u64 = 0x0a;
pub const REG_INTRDELAY: u64 = 0x0c;
pub const REG_CSSTATUS: u64 = 0x0e;
pub const REG_DMACAPABILITY: u64 = 0x10;
pub const REG_DCAOFFSET: u64 = 0x14;

/// `IOAT_GENCTRL_DEBUG_EN`.
pub const GENCTRL_DEBUG_EN: u8 = 0x01;

/// `IOAT_INTRCTRL_MASTER_INT_EN`.
pub const INTRCTRL_MASTER_INT_EN: u8 = 0x01;
/// `IOAT_INTRCTRL_INT_STATUS`: ATTNSTATUS is non-zero.
pub const INTRCTRL_INT_STATUS: u8 = 0x02;
/// `IOAT_INTRCTRL_INT`: INT_STATUS and MASTER_INT_EN.
pub const INTRCTRL_INT: u8 = 0x04;
/// `IOAT_INTRCTRL_MSIX_VECTOR_CONTROL`: one MSI-X vector per channel.
pub const INTRCTRL_MSIX_VECTOR_CONTROL: u8 = 0x08;
/// INTRCTRL bits software may write.
pub const INTRCTRL_WRITABLE: u8 = INTRCTRL_MASTER_INT_EN | INTRCTRL_MSIX_VECTOR_CONTROL;

/// `IOAT_INTRDELAY_MASK`.
pub const INTRDELAY_MASK: u16 = 0x3fff;

/// `IOAT_CAP_FILL_BLOCK`.
pub const CAP_FILL_BLOCK: u32 = 0x0000_0040;
/// `IOAT_CAP_DCA` (not offered).
pub const CAP_DCA: u32 = 0x0000_0010;
/// `IOAT_CAP_XOR` (not offered).
pub const CAP_XOR: u32 = 0x0000_0100;
/// `IOAT_CAP_PQ` (not offered).
pub const CAP_PQ: u32 = 0x0000_0200;
/// What DMACAPABILITY reports: memcpy (always present) and block fill, nothing that needs DCA or RAID support.
pub const DMA_CAPABILITY: u32 = CAP_FILL_BLOCK;

/// Channel *n*'s registers start at `CHANNEL_BASE * (n + 1)`.
pub const CHANNEL_BASE: u64 = 0x80;
/// `IOAT_CHANNEL_MMIO_SIZE`.
pub const CHANNEL_MMIO_SIZE: u64 = 0x80;

// Channel registers (offsets from the channel base).
pub const CH_CHANCTRL: u64 = 0x00;
pub const CH_DMACOMP: u64 = 0x02;
pub const CH_CHANCMD: u64 = 0x04;
pub const CH_DMACOUNT: u64 = 0x06;
pub const CH_CHANSTS: u64 = 0x08;
pub const CH_CHAINADDR: u64 = 0x10;
pub const CH_CHANCMP: u64 = 0x18;
pub const CH_CDAR: u64 = 0x20;
pub const CH_CHANERR: u64 = 0x28;
pub const CH_CHANERRMSK: u64 = 0x2c;
pub const CH_DCACTRL: u64 = 0x30;

/// `IOAT_DMA_COMP_V2`: the version 2 register layout (CHANCMD at 0x04, CHAINADDR at 0x10).
pub const DMA_COMP_V2: u16 = 0x0002;

/// `IOAT_CHANCTRL_INT_REARM` (reads 1 while the interrupt is disarmed).
pub const CHANCTRL_INT_REARM: u16 = 0x0001;
/// `IOAT_CHANCTRL_ERR_COMPLETION_EN`: write CHANSTS to CHANCMP when the channel halts on an error.
pub const CHANCTRL_ERR_COMPLETION_EN: u16 = 0x0004;
/// `IOAT_CHANCTRL_ANY_ERR_ABORT_EN`.
pub const CHANCTRL_ANY_ERR_ABORT_EN: u16 = 0x0008;
/// `IOAT_CHANCTRL_ERR_INT_EN`: interrupt when the channel halts on an error.
pub const CHANCTRL_ERR_INT_EN: u16 = 0x0010;
/// `IOAT_CHANCTRL_DESCRIPTOR_ADDR_SNOOP_CONTROL`.
pub const CHANCTRL_DESC_SNOOP_CONTROL: u16 = 0x0020;
/// `IOAT_CHANCTRL_CHANNEL_IN_USE`.
pub const CHANCTRL_CHANNEL_IN_USE: u16 = 0x0100;
/// `IOAT_CHANCTRL_CHANNEL_PRIORITY_MASK`.
pub const CHANCTRL_PRIORITY_MASK: u16 = 0xf000;
/// `IOAT_CHANCTRL_RUN`, what Linux writes.
pub const CHANCTRL_RUN: u16 = CHANCTRL_INT_REARM
    | CHANCTRL_ERR_INT_EN
    | CHANCTRL_ERR_COMPLETION_EN
    | CHANCTRL_ANY_ERR_ABORT_EN;
/// CHANCTRL bits stored as written (bit 0 is the re-arm strobe; COMPL_DCA_EN reads 0 without DCA).
pub const CHANCTRL_STORED: u16 = CHANCTRL_ERR_COMPLETION_EN
    | CHANCTRL_ANY_ERR_ABORT_EN
    | CHANCTRL_ERR_INT_EN
    | CHANCTRL_DESC_SNOOP_CONTROL
    | CHANCTRL_CHANNEL_IN_USE
    | CHANCTRL_PRIORITY_MASK;

/// `IOAT_CHANCMD_RESET`.
pub const CHANCMD_RESET: u8 = 0x20;
/// `IOAT_CHANCMD_RESUME`.
pub const CHANCMD_RESUME: u8 = 0x10;
/// `IOAT_CHANCMD_ABORT`.
pub const CHANCMD_ABORT: u8 = 0x08;
/// `IOAT_CHANCMD_SUSPEND`.
pub const CHANCMD_SUSPEND: u8 = 0x04;
/// `IOAT_CHANCMD_APPEND` (version 1; ignored).
pub const CHANCMD_APPEND: u8 = 0x02;
/// `IOAT_CHANCMD_START` (version 1; ignored).
pub const CHANCMD_START: u8 = 0x01;

/// `IOAT_CHANSTS_COMPLETED_DESCRIPTOR_ADDR`.
pub const CHANSTS_COMPLETED_DESCRIPTOR_ADDR: u64 = !0x3f;
/// `IOAT_CHANSTS_STATUS`.
pub const CHANSTS_STATUS: u64 = 0x7;
pub const CHANSTS_ACTIVE: u64 = 0x0;
pub const CHANSTS_DONE: u64 = 0x1;
pub const CHANSTS_SUSPENDED: u64 = 0x2;
pub const CHANSTS_HALTED: u64 = 0x3;
/// DPDK's `IOAT_CHANSTS_ARMED`: a chain address is loaded, the next doorbell starts it.
pub const CHANSTS_ARMED: u64 = 0x4;

pub const CHANERR_SRC_ADDR: u32 = 0x0001;
pub const CHANERR_DEST_ADDR: u32 = 0x0002;
pub const CHANERR_NEXT_ADDR: u32 = 0x0004;
pub const CHANERR_NEXT_DESC_ALIGN: u32 = 0x0008;
pub const CHANERR_CHAIN_ADDR_VALUE: u32 = 0x0010;
pub const CHANERR_CHANCMD: u32 = 0x0020;
pub const CHANERR_READ_DATA: u32 = 0x0100;
pub const CHANERR_WRITE_DATA: u32 = 0x0200;
pub const CHANERR_CONTROL: u32 = 0x0400;
pub const CHANERR_LENGTH: u32 = 0x0800;
pub const CHANERR_COMPLETION_ADDR: u32 = 0x1000;
/// Every CHANERR bit registers.h defines (bits 18:0); the RW1C bits of CHANERR and CHANERR_INT.
pub const CHANERR_IMPLEMENTED: u32 = 0x0007_ffff;

/// `IOAT_PCI_DMAUNCERRSTS_OFFSET`: DMA cluster uncorrectable error status (RW1C).
pub const CFG_DMAUNCERRSTS: usize = 0x148;
/// DMA cluster uncorrectable error mask (RW).
pub const CFG_DMAUNCERRMSK: usize = 0x14c;
/// DMA cluster uncorrectable error severity (RW).
pub const CFG_DMAUNCERRSEV: usize = 0x150;
/// `IOAT_PCI_CHANERR_INT_OFFSET`: the channel error mirror (RW1C).
pub const CFG_CHANERR_INT: usize = 0x180;
/// `IOAT_PCI_CHANERRMASK_INT_OFFSET` (RW).
pub const CFG_CHANERRMSK_INT: usize = 0x184;
/// Channel error severity (RW).
pub const CFG_CHANERRSEV_INT: usize = 0x188;

/// The BAR0 offset of channel `n`'s register `reg`.
pub const fn channel_reg(n: u8, reg: u64) -> u64 {
    CHANNEL_BASE * (n as u64 + 1) + reg
}
