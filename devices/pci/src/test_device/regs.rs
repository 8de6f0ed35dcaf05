//! Register map of the iovmm DMA test device: the single source for the device model and the guest tests.
//!
//! # Identity
//! | field | value |
//! |---|---|
//! | vendor:device | `7e57:0001` ([`VENDOR_ID`], [`DEVICE_ID`]); subsystem the same |
//! | class | `0xff0000` (unassigned class), revision [`REVISION`] |
//! | PCIe | version 2 capability, Root Complex Integrated Endpoint (on bus 0, no root port); Function Level Reset |
//! | PCIe extended | PASID, ATS and SR-IOV (see below) |
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
//! | 0 | 32-bit memory, non-prefetchable | [`BAR0_SIZE`] (8 KiB) | the registers below |
//! | 2 (+3) | 64-bit memory, prefetchable | [`BAR2_SIZE`] (4 KiB) | MSI-X table at [`MSIX_TABLE_OFFSET`], PBA at [`MSIX_PBA_OFFSET`] |
//!
//! BAR0 is 8 KiB, two pages, so that VFIO's `vfio_dma_mapping_mmio_test` can map part of the largest mmappable
//! BAR (`map_partial_bar` needs two pages); its second page is reserved. vfio-pci mmaps both BARs (page-sized
//! and page-aligned; the MSI-X table page of BAR2 is vfio's business).
//!
//! # Extended capabilities (config space 0x100+, reached through ECAM)
//! | offset | capability | contents |
//! |---|---|---|
//! | [`PASID_CAP_OFFSET`] (0x100) | PASID (id 0x1b, version 1) | cap: max PASID width [`PASID_WIDTH`] (20), Privileged Mode Supported, no Execute; control: Enable and Privileged Mode Enable writable, reset 0 |
//! | [`ATS_CAP_OFFSET`] (0x108) | ATS (id 0x0f, version 1) | cap: invalidate queue depth 32 (encoded 0), no Page Aligned Request; control: Enable (bit 15) and STU (bits 4:0) writable, reset 0 |
//! | [`SRIOV_CAP_OFFSET`] (0x110) | SR-IOV (id 0x10, version 1), last | [`TOTAL_VFS`] VFs at First VF Offset [`VF_OFFSET`], VF Stride [`VF_STRIDE`], VF Device ID [`VF_DEVICE_ID`], VF BARs 0 and 2 (below); layout and rules in `crate::sriov` |
//!
//! The PCI Express capability's DEVCAP2 advertises End-End TLP Prefix support (one prefix), which Linux requires
//! before `pci_enable_pasid` succeeds. ATS Enable and STU are recorded only: the device keeps no translation
//! cache, so it never needs invalidating, and [`DMA_CMD_TRANSLATE`] works whether or not ATS is enabled.
//!
//! # BAR0 registers (little endian)
//! | offset | name | access | meaning |
//! |---|---|---|---|
//! | 0x000 | [`REG_ID`] | RO u32 | [`ID_MAGIC`]: the bytes `"IOVM"` |
//! | 0x004 | [`REG_VERSION`] | RO u32 | [`VERSION`]: major in bits 31:16, minor in bits 15:0 |
//! | 0x008 | [`REG_FEATURES`] | RO u32 | implemented features: [`FEATURES`] on the PF (IRQ, DMA, PASID, FLR, SR-IOV), [`VF_FEATURES`] on a VF |
//! | 0x00c | [`REG_SCRATCH`] | RW u32 | scratch, resets to 0 |
//! | 0x010 | [`REG_IRQ_DOORBELL`] | WO u32 (reads 0) | write N: raise vector N through MSI-X if enabled, else MSI if enabled, else drop it |
//! | 0x014 | [`REG_IRQ_RAISED`] | RO u32 | interrupts raised so far (doorbell writes and DMA completion interrupts) |
//! | 0x018 | [`REG_IRQ_SENT`] | RO u32 | messages sent, including ones sent later on unmask |
//! | 0x01c | [`REG_IRQ_DROPPED`] | RO u32 | raised interrupts that produced no message and no pending bit |
//! | 0x020 | [`REG_IRQ_LAST`] | RO u32 | outcome of the last raised interrupt, an `IRQ_LAST_*` code |
//! | 0x024..0x0ff | reserved | | reads 0, writes ignored |
//! | 0x100 | [`REG_DMA_SRC`] | RW u64 | source IOVA ([`DMA_CMD_COPY`]) |
//! | 0x108 | [`REG_DMA_DST`] | RW u64 | destination IOVA (copy, fill); the IOVA to probe ([`DMA_CMD_TRANSLATE`]) |
//! | 0x110 | [`REG_DMA_LEN`] | RW u64 | length in bytes (copy, fill); 0 is a valid no-op; above [`DMA_MAX_LEN`] the command fails with [`STATUS_BAD_COMMAND`] |
//! | 0x118 | [`REG_DMA_PATTERN`] | RW u64 | fill pattern: its 8 little-endian bytes repeated, byte `i` of the region = byte `i % 8` of the pattern |
//! | 0x120 | [`REG_DMA_PASID`] | RW u32 | bit 31 [`DMA_PASID_VALID`], bits 19:0 the PASID ([`DMA_PASID_MASK`]); bits 30:20 read 0 |
//! | 0x124 | [`REG_DMA_FLAGS`] | RW u32 | [`DMA_FLAG_IRQ`] (bit 0), [`DMA_FLAG_PROBE_WRITE`] (bit 1), [`DMA_FLAG_PRIVILEGED`] (bit 2); other bits read 0 |
//! | 0x128 | [`REG_DMA_CMD`] | WO u32 (reads 0) | a `DMA_CMD_*` code: runs the command to completion before the write returns |
//! | 0x12c | [`REG_DMA_STATUS`] | RO u32 | outcome of the last command, a `STATUS_*` code ([`STATUS_IDLE`] before the first) |
//! | 0x130 | [`REG_DMA_FAULT_IOVA`] | RO u64 | the first IOVA that failed ([`STATUS_FAULT`], [`STATUS_OUTSIDE_RAM`]) |
//! | 0x138 | [`REG_DMA_FAULT_REASON`] | RO u32 | the IOMMU's architected reason code ([`STATUS_FAULT`]; the VT-d fault reason); 0 otherwise |
//! | 0x13c | [`REG_DMA_FAULT_ACCESS`] | RO u32 | [`FAULT_ACCESS_READ`] (0) or [`FAULT_ACCESS_WRITE`] (1) |
//! | 0x140 | [`REG_DMA_XLATE_OUT`] | RO u64 | translate probe: output address of [`REG_DMA_DST`] |
//! | 0x148 | [`REG_DMA_XLATE_SIZE`] | RO u64 | translate probe: size of the translated page |
//! | 0x150 | [`REG_DMA_XLATE_PERMS`] | RO u32 | translate probe: [`XLATE_PERM_READ`] (bit 0), [`XLATE_PERM_WRITE`] (bit 1), [`XLATE_PERM_EXEC`] (bit 2) |
//! | 0x154 | [`REG_DMA_COMPLETIONS`] | RO u32 | commands completed, whatever their status (wraps at 2^32) |
//! | 0x158 | [`REG_DMA_BYTES`] | RO u64 | bytes the last command wrote to the destination (partial on a fault) |
//! | 0x160..0x1fff | reserved | | reads 0, writes ignored |
//!
//! Counters wrap at 2^32. An interrupt raised on a masked vector sets its pending bit (it counts neither as sent
//! nor dropped until the unmask sends it; repeated raises of a masked vector coalesce into one message). MSI and
//! MSI-X messages are memory writes: with COMMAND.BME clear they are dropped ([`IRQ_LAST_BUS_MASTER_OFF`]).
//!
//! # Function Level Reset
//! Device Capabilities advertises FLR (bit 28). A config write that sets Initiate Function Level Reset (Device
//! Control bit 15, which always reads 0) resets the function before the write returns (PCIe Base 6.0 §6.6.2):
//! its whole configuration space returns to its power-on values except Max_Payload_Size (COMMAND, BARs, STATUS
//! error bits, MSI and MSI-X enables, masks, table and PBA, PM power state, PASID and ATS control, SR-IOV
//! control, NumVFs, System Page Size and VF BARs), and so does every BAR0 register (scratch, the interrupt
//! counters, all DMA registers: STATUS reads [`STATUS_IDLE`], COMPLETIONS 0). Read-only identity and
//! capability registers are unchanged. An FLR of the PF clears VF Enable, so its VFs disappear; an FLR of a VF
//! resets only that VF. DMA commands run to completion inside the register write, so no request is ever
//! pending: Device Status Transactions Pending is always 0, and an FLR never cuts a transfer short.
//!
//! # SR-IOV (PCIe Base 6.0 §9)
//! The PF at 00:03.0 has up to [`TOTAL_VFS`] Virtual Functions, VF n (0-based) at Routing ID 00:03.(n + 1) (First
//! VF Offset [`VF_OFFSET`], VF Stride [`VF_STRIDE`]; 00:03.1..00:03.4, requester ids 0x19..0x1c), present while
//! SR-IOV Control VF Enable is set with NumVFs in 1..=TotalVFs. Each VF's DMA goes through the same IOMMU port
//! with the VF's own requester id, and its MSI-X messages carry that requester id too. VFs are found through
//! the SR-IOV capability, never by scanning, so the PF's Header Type stays single-function (Linux then keeps
//! each VF in its own IOMMU group); the machine description lists only the PF, as firmware finds it at boot.
//!
//! A VF's configuration header (§9.3.4.1): Vendor and Device ID read 0xFFFF (the OS takes `7e57` and
//! [`VF_DEVICE_ID`] from the PF); COMMAND has only Bus Master Enable (memory decoding is the PF's VF MSE);
//! revision and class as the PF; header type 0; BARs, expansion ROM, cache line size, interrupt line and pin
//! read 0; subsystem vendor `7e57`, subsystem id [`VF_DEVICE_ID`]. Capabilities: PCI Express (RCiEP, FLR; Device
//! Control fields RsvdP except Initiate FLR) and MSI-X ([`MSIX_VECTORS`] vectors, table at 0 and PBA at 0x800 of
//! VF BAR2); no MSI, PM, PASID (VFs must not have one) or ATS, no extended capabilities.
//!
//! | VF BAR | type | size per VF | contents |
//! |---|---|---|---|
//! | 0 | 32-bit memory, non-prefetchable | [`VF_BAR0_SIZE`] (4 KiB, or the System Page Size if larger) | the BAR0 registers of this map, [`VF_FEATURES`] in FEATURES |
//! | 2 (+3) | 64-bit memory, prefetchable | [`VF_BAR2_SIZE`] (4 KiB, or the System Page Size) | MSI-X table and PBA, as the PF's BAR2 |
//!
//! A VF's register file is the PF's. VFs have no PASID capability but share their PF's PASID configuration
//! (as Linux's `pci_enable_pasid` says): a VF's request carries the PASID of [`REG_DMA_PASID`] when
//! [`DMA_PASID_VALID`] is set and the PF's PASID Enable is set.
//!
//! # Access rules
//! Aligned 4-byte accesses act on one 32-bit register or one half of a 64-bit register (the low half at the
//! register's offset); aligned 8-byte accesses act as two 4-byte accesses, low one first, so a 64-bit register
//! takes either one 8-byte access or two 4-byte accesses in any order. Reads of other sizes or alignments return
//! the addressed bytes (reads have no side effects). Writes that cover only part of a 32-bit unit change the
//! scratch register's bytes and are ignored for every other register. Accesses beyond the BAR read all ones and
//! are ignored.
//!
//! # DMA engine
//! All DMA goes through the IOMMU port the VMM gives the device (requester id 0x0018, BDF 00:03.0; a VF's own
//! requester id for a VF), one
//! translation per IOMMU page, in increasing IOVA order. A write of [`REG_DMA_CMD`] runs the command
//! synchronously: when the write returns, every result register is final. Each command first zeroes
//! [`REG_DMA_FAULT_IOVA`], [`REG_DMA_FAULT_REASON`], [`REG_DMA_FAULT_ACCESS`], the `REG_DMA_XLATE_*` registers
//! and [`REG_DMA_BYTES`], then sets what it produced, increments [`REG_DMA_COMPLETIONS`] and, if
//! [`DMA_FLAG_IRQ`] is set, raises vector 0 (MSI-X if enabled, else MSI; counted like a doorbell in the
//! `REG_IRQ_*` registers) whatever the status.
//!
//! Checks, in order, before any request is issued:
//! 1. an unknown command code: [`STATUS_BAD_COMMAND`];
//! 2. copy / fill with LEN > [`DMA_MAX_LEN`] or a range running past 2^64 - 1 (SRC or DST + LEN): [`STATUS_BAD_COMMAND`];
//! 3. COMMAND.BME clear: [`STATUS_NO_BUS_MASTER`] (nothing is requested or moved);
//! 4. copy / fill with LEN 0: [`STATUS_DONE`], 0 bytes, no request.
//!
//! Commands:
//! - [`DMA_CMD_COPY`]: reads all LEN bytes at SRC into the device (read requests), then writes them at DST (write
//!   requests): overlapping ranges behave like `memmove`. If a read fails nothing is written (BYTES = 0). If a
//!   write fails at IOVA X, the bytes [DST, X) have been written — every IOMMU page before the failing one, like
//!   hardware posting writes in order — and BYTES = X - DST.
//! - [`DMA_CMD_FILL`]: writes LEN bytes of the repeated PATTERN at DST; on a failure at X, [DST, X) is written and
//!   BYTES = X - DST.
//! - [`DMA_CMD_TRANSLATE`]: one ATS-style translation request for DST (read access, or write with
//!   [`DMA_FLAG_PROBE_WRITE`]); no memory is read or written, SRC and LEN are ignored, BYTES stays 0. Success:
//!   [`STATUS_DONE`] with `XLATE_*` as the IOMMU answered (the permissions may lack the probed access if the
//!   IOMMU grants less). Refusal: [`STATUS_FAULT`] with FAULT_IOVA = DST and the reason. Translation requests
//!   are not recorded as faults by the IOMMU.
//!
//! Failures: [`STATUS_FAULT`] when the IOMMU refused a translation (FAULT_IOVA = the IOVA of the refused
//! request, FAULT_REASON its reason); [`STATUS_OUTSIDE_RAM`] when the IOMMU translated but the output is not
//! guest RAM (FAULT_IOVA = the first IOVA of the chunk that failed, FAULT_REASON 0). FAULT_ACCESS tells which
//! side failed. The device never touches memory except through its port.
//!
//! Request attributes:
//! - PASID: a request carries the PASID in [`REG_DMA_PASID`] bits 19:0 only when [`DMA_PASID_VALID`] is set
//!   **and** the guest has set Enable in the PASID capability's control register; otherwise it carries none
//!   (no error: a function whose PASID capability is disabled may not send the prefix).
//! - Privileged: [`DMA_FLAG_PRIVILEGED`] marks the translate probe's request privileged (with or without a
//!   PASID: what a privileged request without PASID means is the IOMMU model's business; PCIe only carries the
//!   bit in the PASID prefix). Copy and fill requests are always unprivileged.
//! - Memory use: copy buffers at most [`DMA_MAX_LEN`] bytes, fill at most 64 KiB, whatever the guest writes.

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
/// Size of BAR0 (two pages; the registers occupy the first).
pub const BAR0_SIZE: u64 = 0x2000;
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
/// First offset of the DMA engine's registers.
pub const DMA_REGS_START: u64 = 0x100;
/// End (exclusive) of the DMA engine's registers.
pub const DMA_REGS_END: u64 = 0x160;

/// DMA source IOVA (u64).
pub const REG_DMA_SRC: u64 = 0x100;
/// DMA destination IOVA / IOVA to probe (u64).
pub const REG_DMA_DST: u64 = 0x108;
/// DMA length in bytes (u64).
pub const REG_DMA_LEN: u64 = 0x110;
/// Fill pattern (u64).
pub const REG_DMA_PATTERN: u64 = 0x118;
/// PASID of the requests: [`DMA_PASID_VALID`] | PASID (u32).
pub const REG_DMA_PASID: u64 = 0x120;
/// `DMA_FLAG_*` bits (u32).
pub const REG_DMA_FLAGS: u64 = 0x124;
/// Command register: write a `DMA_CMD_*` code (u32, write-only).
pub const REG_DMA_CMD: u64 = 0x128;
/// Outcome of the last command, a `STATUS_*` code (u32).
pub const REG_DMA_STATUS: u64 = 0x12c;
/// First IOVA that failed (u64).
pub const REG_DMA_FAULT_IOVA: u64 = 0x130;
/// The IOMMU's reason code for the failure (u32).
pub const REG_DMA_FAULT_REASON: u64 = 0x138;
/// Access that failed: [`FAULT_ACCESS_READ`] or [`FAULT_ACCESS_WRITE`] (u32).
pub const REG_DMA_FAULT_ACCESS: u64 = 0x13c;
/// Translate probe: output address of [`REG_DMA_DST`] (u64).
pub const REG_DMA_XLATE_OUT: u64 = 0x140;
/// Translate probe: page size (u64).
pub const REG_DMA_XLATE_SIZE: u64 = 0x148;
/// Translate probe: `XLATE_PERM_*` bits (u32).
pub const REG_DMA_XLATE_PERMS: u64 = 0x150;
/// Commands completed, any status (u32).
pub const REG_DMA_COMPLETIONS: u64 = 0x154;
/// Bytes written by the last command (u64).
pub const REG_DMA_BYTES: u64 = 0x158;

/// Largest LEN a copy or fill accepts: 16 MiB.
pub const DMA_MAX_LEN: u64 = 16 << 20;

/// [`REG_DMA_CMD`]: copy LEN bytes from SRC to DST.
pub const DMA_CMD_COPY: u32 = 1;
/// [`REG_DMA_CMD`]: fill LEN bytes at DST with PATTERN.
pub const DMA_CMD_FILL: u32 = 2;
/// [`REG_DMA_CMD`]: ATS-style translation request for DST.
pub const DMA_CMD_TRANSLATE: u32 = 3;

/// [`REG_DMA_FLAGS`]: raise vector 0 when the command completes.
pub const DMA_FLAG_IRQ: u32 = 1 << 0;
/// [`REG_DMA_FLAGS`]: the translate probe asks for write access (else read).
pub const DMA_FLAG_PROBE_WRITE: u32 = 1 << 1;
/// [`REG_DMA_FLAGS`]: the translate probe's request is privileged.
pub const DMA_FLAG_PRIVILEGED: u32 = 1 << 2;
/// [`REG_DMA_FLAGS`]: every defined flag.
pub const DMA_FLAGS_MASK: u32 = DMA_FLAG_IRQ | DMA_FLAG_PROBE_WRITE | DMA_FLAG_PRIVILEGED;

/// [`REG_DMA_PASID`]: the PASID field is valid.
pub const DMA_PASID_VALID: u32 = 1 << 31;
/// [`REG_DMA_PASID`]: the PASID field (20 bits).
pub const DMA_PASID_MASK: u32 = 0x000f_ffff;

/// [`REG_DMA_STATUS`]: no command yet.
pub const STATUS_IDLE: u32 = 0;
/// [`REG_DMA_STATUS`]: the command completed.
pub const STATUS_DONE: u32 = 1;
/// [`REG_DMA_STATUS`]: the IOMMU refused a translation.
pub const STATUS_FAULT: u32 = 2;
/// [`REG_DMA_STATUS`]: a translated address is not guest RAM.
pub const STATUS_OUTSIDE_RAM: u32 = 3;
/// [`REG_DMA_STATUS`]: unknown command, LEN above [`DMA_MAX_LEN`] or a range wrapping past 2^64 - 1.
pub const STATUS_BAD_COMMAND: u32 = 4;
/// [`REG_DMA_STATUS`]: COMMAND.BME is clear; nothing was requested.
pub const STATUS_NO_BUS_MASTER: u32 = 5;

/// [`REG_DMA_FAULT_ACCESS`]: a read failed.
pub const FAULT_ACCESS_READ: u32 = 0;
/// [`REG_DMA_FAULT_ACCESS`]: a write failed.
pub const FAULT_ACCESS_WRITE: u32 = 1;

/// [`REG_DMA_XLATE_PERMS`]: read permitted.
pub const XLATE_PERM_READ: u32 = 1 << 0;
/// [`REG_DMA_XLATE_PERMS`]: write permitted.
pub const XLATE_PERM_WRITE: u32 = 1 << 1;
/// [`REG_DMA_XLATE_PERMS`]: execute permitted.
pub const XLATE_PERM_EXEC: u32 = 1 << 2;

/// Config-space offset of the PASID extended capability.
pub const PASID_CAP_OFFSET: usize = 0x100;
/// Config-space offset of the ATS extended capability.
pub const ATS_CAP_OFFSET: usize = 0x108;
/// Config-space offset of the SR-IOV extended capability.
pub const SRIOV_CAP_OFFSET: usize = 0x110;

/// SR-IOV TotalVFs (and InitialVFs).
pub const TOTAL_VFS: u16 = 4;
/// SR-IOV First VF Offset: VF 0 is function 1 of the PF's device.
pub const VF_OFFSET: u16 = 1;
/// SR-IOV VF Stride.
pub const VF_STRIDE: u16 = 1;
/// SR-IOV VF Device ID (also each VF's subsystem id).
pub const VF_DEVICE_ID: u16 = 0x0002;
/// Size of VF BAR0 per VF at 4 KiB System Page Size: the register file.
pub const VF_BAR0_SIZE: u64 = 0x1000;
/// Size of VF BAR2 per VF at 4 KiB System Page Size: the MSI-X table and PBA.
pub const VF_BAR2_SIZE: u64 = 0x1000;
/// Max PASID width advertised by the PASID capability.
pub const PASID_WIDTH: u8 = 20;

/// Value of [`REG_ID`]: the bytes "IOVM" in memory order.
pub const ID_MAGIC: u32 = u32::from_le_bytes(*b"IOVM");
/// Value of [`REG_VERSION`]: 1.2 (1.0 plus the DMA engine and the PASID/ATS capabilities in 1.1; FLR, SR-IOV
/// and the 8 KiB BAR0 in 1.2).
pub const VERSION: u32 = 0x0001_0002;
/// Feature bit: interrupt doorbell and counters.
pub const FEATURE_IRQ: u32 = 1 << 0;
/// Feature bit: the DMA engine (copy, fill, translate probe) at [`DMA_REGS_START`].
pub const FEATURE_DMA: u32 = 1 << 1;
/// Feature bit: the PASID capability, and [`REG_DMA_PASID`] honoured when it is enabled.
pub const FEATURE_PASID: u32 = 1 << 2;
/// Feature bit: Function Level Reset.
pub const FEATURE_FLR: u32 = 1 << 3;
/// Feature bit: the SR-IOV capability (PF only).
pub const FEATURE_SRIOV: u32 = 1 << 4;
/// Feature bit: this function is a Virtual Function.
pub const FEATURE_VF: u32 = 1 << 5;
/// Value of [`REG_FEATURES`] on the PF.
pub const FEATURES: u32 = FEATURE_IRQ | FEATURE_DMA | FEATURE_PASID | FEATURE_FLR | FEATURE_SRIOV;
/// Value of [`REG_FEATURES`] on a VF (PASID through the PF's capability).
pub const VF_FEATURES: u32 = FEATURE_IRQ | FEATURE_DMA | FEATURE_PASID | FEATURE_FLR | FEATURE_VF;

/// [`REG_IRQ_LAST`]: no interrupt raised yet.
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
