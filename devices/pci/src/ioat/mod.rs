//! An emulated Intel I/OAT (QuickData / "Crystal Beach") DMA engine, version 3.3, as the Skylake-SP function
//! `8086:2021`: one channel processing the version 3 descriptor ring for the unmodified Linux `ioatdma` driver
//! (probe, channel reset, its memcpy self-test, dmaengine clients such as `dmatest`) and for the VFIO selftest
//! driver of `tools/testing/selftests/vfio/lib/drivers/ioat/` (`vfio_pci_driver_test`). Register map, channel
//! state machine, errors and interrupts are documented in [`regs`]; the descriptor in [`desc`].
//!
//! Descriptors run synchronously inside the MMIO write that releases them (a DMACOUNT write or RESUME), at most
//! 65535 per write and at most `1 << XFERCAP` bytes each, so one guest write costs bounded work. Every byte the
//! engine reads or writes (descriptors, data, completion write-back) goes through the function's IOMMU port
//! ([`DmaAccessor`]) and needs COMMAND.BME.

pub mod desc;
pub mod regs;

use crate::bar::{BarError, BarType};
use crate::capability::CapabilityError;
use crate::config::{ConfigSpace, HeaderType0};
use crate::device::{config_offset, PciDevice};
use crate::msi::{Delivery, InterruptSetupError, MsiCapability, MsiError, MsiSink};
use crate::msix::MsixCapability;
use crate::pcie::{add_pcie_capability, PcieDeviceType, PmCapability};
use desc::{Descriptor, Operation, DESC_ALIGN, DESC_SIZE};
use iommu::{DmaAccessor, DmaError};
use regs::*;
use std::sync::Arc;
use thiserror::Error;

/// Device number the VMM gives the function on bus 0: BDF 0000:00:06.0 (requester id 0x0030).
pub const DEFAULT_DEVICE_NUMBER: u8 = 6;

/// Errors building the function (only reachable through a bug in its constant layout).
#[derive(Debug, Error)]
pub enum IoatError {
    #[error(transparent)]
    Bar(#[from] BarError),
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Interrupt(#[from] InterruptSetupError),
}

/// What the engine did, for the VMM's diagnostics and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoatStats {
    /// DMACOUNT writes and RESUMEs that released at least one descriptor.
    pub doorbells: u64,
    /// Descriptors completed (NULL descriptors included).
    pub descriptors: u64,
    /// Bytes written to memory by COPY and FILL descriptors.
    pub bytes_copied: u64,
    /// Completion write-backs to CHANCMP.
    pub completion_writes: u64,
    /// DMA accesses that failed (IOMMU fault, outside RAM, bus mastering off).
    pub dma_failures: u64,
    /// Times the channel halted on an error.
    pub channel_errors: u64,
    /// MSI/MSI-X messages sent (including ones sent later when a masked vector was unmasked).
    pub irqs_sent: u64,
    /// Interrupts latched as pending on a masked MSI/MSI-X vector.
    pub irqs_latched: u64,
    /// Interrupts that produced no message (interrupts disabled, no vector, delivery failed).
    pub irqs_dropped: u64,
}

/// The channel's state as CHANSTS bits 2:0 report it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChannelState {
    /// Processing descriptors (only ever seen from inside a doorbell).
    Active,
    /// Idle: every released descriptor is done.
    Done,
    /// Stopped by CHANCMD SUSPEND.
    Suspended,
    /// After reset, ABORT, or an error.
    #[default]
    Halted,
    /// A chain address is loaded; the next doorbell starts at CHAINADDR.
    Armed,
}

impl ChannelState {
    /// The CHANSTS status code.
    pub fn code(self) -> u64 {
        match self {
            ChannelState::Active => CHANSTS_ACTIVE,
            ChannelState::Done => CHANSTS_DONE,
            ChannelState::Suspended => CHANSTS_SUSPENDED,
            ChannelState::Halted => CHANSTS_HALTED,
            ChannelState::Armed => CHANSTS_ARMED,
        }
    }
}

/// One channel's registers and engine state; `Default` is the power-on / reset state.
#[derive(Clone, Copy, Debug, Default)]
struct Channel {
    state: ChannelState,
    /// Suspended before the armed chain started: RESUME arms it again.
    suspended_armed: bool,
    /// DMACOUNT was written while suspended: RESUME rings the doorbell.
    doorbell_pending: bool,
    /// CHANCTRL bits in [`CHANCTRL_STORED`].
    chanctrl: u16,
    /// The channel signalled and software has not re-armed it (reads as CHANCTRL bit 0).
    irq_disarmed: bool,
    /// The channel wanted to signal while disarmed: signal at the re-arm.
    irq_pending: bool,
    dmacount: u16,
    /// Descriptors completed since the chain started (mod 2^16), compared with DMACOUNT.
    completed: u16,
    /// Address of the next descriptor to fetch, and whether it came from CHAINADDR (not a `next` field).
    fetch: u64,
    fetch_from_chainaddr: bool,
    /// Address of the last completed descriptor (CHANSTS bits 63:6).
    completed_addr: u64,
    chainaddr: u64,
    chancmp: u64,
    cdar: u64,
    chanerr: u32,
    chanerrmsk: u32,
    dcactrl: u32,
}

/// Which register a BAR0 byte belongs to: (offset of its first byte, width in bytes).
fn register_at(o: u64) -> Option<(u64, u64)> {
    const GENERAL: [(u64, u64); 11] = [
        (REG_CHANCNT, 1),
        (REG_XFERCAP, 1),
        (REG_GENCTRL, 1),
        (REG_INTRCTRL, 1),
        (REG_ATTNSTATUS, 4),
        (REG_CBVER, 1),
        (REG_PERPORTOFFSET, 2),
        (REG_INTRDELAY, 2),
        (REG_CSSTATUS, 2),
        (REG_DMACAPABILITY, 4),
        (REG_DCAOFFSET, 2),
    ];
    const CHANNEL: [(u64, u64); 11] = [
        (CH_CHANCTRL, 2),
        (CH_DMACOMP, 2),
        (CH_CHANCMD, 1),
        (CH_DMACOUNT, 2),
        (CH_CHANSTS, 8),
        (CH_CHAINADDR, 8),
        (CH_CHANCMP, 8),
        (CH_CDAR, 8),
        (CH_CHANERR, 4),
        (CH_CHANERRMSK, 4),
        (CH_DCACTRL, 4),
    ];
    let channels_end = CHANNEL_BASE + CHANNEL_MMIO_SIZE * u64::from(CHANNELS);
    let (table, base) = if o < CHANNEL_BASE {
        (&GENERAL, 0)
    } else if o < channels_end {
        // Every channel has the same layout; this model has one (CHANNELS), at CHANNEL_BASE.
        (&CHANNEL, o - (o - CHANNEL_BASE) % CHANNEL_MMIO_SIZE)
    } else {
        return None;
    };
    table
        .iter()
        .map(|&(r, w)| (base + r, w))
        .find(|&(r, w)| (r..r + w).contains(&o))
}

/// Why a DMA access did not happen.
enum DmaFailure {
    BusMasterOff,
    Dma(DmaError),
}

impl std::fmt::Display for DmaFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DmaFailure::BusMasterOff => f.write_str("bus mastering disabled"),
            DmaFailure::Dma(e) => write!(f, "{e}"),
        }
    }
}

fn dma_read(dma: &DmaAccessor, bme: bool, iova: u64, buf: &mut [u8]) -> Result<(), DmaFailure> {
    if !bme {
        return Err(DmaFailure::BusMasterOff);
    }
    dma.read(iova, None, buf).map_err(DmaFailure::Dma)
}

fn dma_write(dma: &DmaAccessor, bme: bool, iova: u64, buf: &[u8]) -> Result<(), DmaFailure> {
    if !bme {
        return Err(DmaFailure::BusMasterOff);
    }
    dma.write(iova, None, buf).map_err(DmaFailure::Dma)
}

/// The I/OAT DMA function.
pub struct Ioat {
    config: ConfigSpace,
    pm: PmCapability,
    msi: MsiCapability,
    msix: MsixCapability,
    sink: Arc<dyn MsiSink>,
    dma: DmaAccessor,
    genctrl: u8,
    /// INTRCTRL bits in [`INTRCTRL_WRITABLE`].
    intrctrl: u8,
    attnstatus: u32,
    intrdelay: u16,
    chan: Channel,
    /// Staging buffer for one transfer (`MAX_TRANSFER` bytes), allocated once.
    buf: Vec<u8>,
    stats: IoatStats,
}

impl std::fmt::Debug for Ioat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ioat")
            .field("config", &self.config)
            .field("intrctrl", &self.intrctrl)
            .field("channel", &self.chan)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Ioat {
    /// A function whose interrupts go to `sink` and whose DMA goes through `dma` (the VMM builds it with the
    /// IOMMU port the function sits behind and source id 0x0030 for 00:06.0).
    pub fn new(sink: Arc<dyn MsiSink>, dma: DmaAccessor) -> Result<Self, IoatError> {
        let mut config = ConfigSpace::new(&HeaderType0 {
            vendor_id: VENDOR_ID,
            device_id: DEVICE_ID,
            revision_id: REVISION,
            class_code: CLASS_CODE,
            subsystem_vendor_id: VENDOR_ID,
            subsystem_id: DEVICE_ID,
            interrupt_pin: 0,
        });
        config.add_bar(REGS_BAR, BarType::Mem64, BAR0_SIZE, false)?;
        let msix = MsixCapability::add(
            &mut config,
            u16::from(CHANNELS),
            REGS_BAR,
            MSIX_TABLE_OFFSET,
            REGS_BAR,
            MSIX_PBA_OFFSET,
        )?;
        add_pcie_capability(&mut config, PcieDeviceType::RootComplexIntegratedEndpoint)?;
        let pm = PmCapability::add(&mut config)?;
        let msi = MsiCapability::add(&mut config, MSI_VECTORS)?;
        // The DMA cluster and channel error registers in extended configuration space (no extended capability
        // list: 0x100 reads 0).
        config.set_masks(CFG_DMAUNCERRSTS, 4, 0, u32::MAX);
        config.set_masks(CFG_DMAUNCERRMSK, 4, u32::MAX, 0);
        config.set_masks(CFG_DMAUNCERRSEV, 4, u32::MAX, 0);
        config.set_masks(CFG_CHANERR_INT, 4, 0, CHANERR_IMPLEMENTED);
        config.set_masks(CFG_CHANERRMSK_INT, 4, CHANERR_IMPLEMENTED, 0);
        config.set_masks(CFG_CHANERRSEV_INT, 4, CHANERR_IMPLEMENTED, 0);
        Ok(Ioat {
            config,
            pm,
            msi,
            msix,
            sink,
            dma,
            genctrl: 0,
            intrctrl: 0,
            attnstatus: 0,
            intrdelay: 0,
            chan: Channel::default(),
            buf: vec![0; MAX_TRANSFER as usize],
            stats: IoatStats::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> IoatStats {
        self.stats
    }

    /// The channel's state.
    pub fn channel_state(&self) -> ChannelState {
        self.chan.state
    }

    /// CHANSTS: last completed descriptor address and state.
    fn chansts(&self) -> u64 {
        (self.chan.completed_addr & CHANSTS_COMPLETED_DESCRIPTOR_ADDR) | self.chan.state.code()
    }

    fn chanctrl(&self) -> u16 {
        self.chan.chanctrl | u16::from(self.chan.irq_disarmed)
    }

    fn intrctrl_value(&self) -> u8 {
        let mut v = self.intrctrl;
        if self.attnstatus != 0 {
            v |= INTRCTRL_INT_STATUS;
            if v & INTRCTRL_MASTER_INT_EN != 0 {
                v |= INTRCTRL_INT;
            }
        }
        v
    }

    /// The value of the register starting at BAR0 offset `base` (no side effects).
    fn reg_value(&self, base: u64) -> u64 {
        match base {
            REG_CHANCNT => u64::from(CHANNELS),
            REG_XFERCAP => u64::from(XFERCAP_LOG),
            REG_GENCTRL => u64::from(self.genctrl),
            REG_INTRCTRL => u64::from(self.intrctrl_value()),
            REG_ATTNSTATUS => u64::from(self.attnstatus),
            REG_CBVER => u64::from(VERSION),
            REG_PERPORTOFFSET => CHANNEL_BASE,
            REG_INTRDELAY => u64::from(self.intrdelay),
            REG_DMACAPABILITY => u64::from(DMA_CAPABILITY),
            b if b >= CHANNEL_BASE => match (b - CHANNEL_BASE) % CHANNEL_MMIO_SIZE {
                CH_CHANCTRL => u64::from(self.chanctrl()),
                CH_DMACOMP => u64::from(DMA_COMP_V2),
                CH_DMACOUNT => u64::from(self.chan.dmacount),
                CH_CHANSTS => self.chansts(),
                CH_CHAINADDR => self.chan.chainaddr,
                CH_CHANCMP => self.chan.chancmp,
                CH_CDAR => self.chan.cdar,
                CH_CHANERR => u64::from(self.chan.chanerr),
                CH_CHANERRMSK => u64::from(self.chan.chanerrmsk),
                CH_DCACTRL => u64::from(self.chan.dcactrl),
                // CHANCMD: commands complete within the write.
                _ => 0,
            },
            // CSSTATUS, DCAOFFSET.
            _ => 0,
        }
    }

    /// A guest write of the bytes `mask` selects of `value` to the register starting at `base` (`value` holds
    /// the register's old content in the other bytes).
    fn reg_write(&mut self, base: u64, value: u64, mask: u64) {
        match base {
            REG_GENCTRL => self.genctrl = value as u8 & GENCTRL_DEBUG_EN,
            REG_INTRCTRL => self.intrctrl = value as u8 & INTRCTRL_WRITABLE,
            REG_INTRDELAY => self.intrdelay = value as u16 & INTRDELAY_MASK,
            b if b >= CHANNEL_BASE => match (b - CHANNEL_BASE) % CHANNEL_MMIO_SIZE {
                CH_CHANCTRL => {
                    let m = CHANCTRL_STORED & mask as u16;
                    self.chan.chanctrl = (self.chan.chanctrl & !m) | (value as u16 & m);
                    if mask & 1 != 0 && value & u64::from(CHANCTRL_INT_REARM) != 0 {
                        self.rearm();
                    }
                }
                CH_CHANCMD => self.command(value as u8),
                CH_DMACOUNT => {
                    self.chan.dmacount = value as u16;
                    self.doorbell();
                }
                CH_CHAINADDR => {
                    self.chan.chainaddr = value;
                    self.arm();
                }
                CH_CHANCMP => self.chan.chancmp = value,
                CH_CHANERR => self.chan.chanerr &= !(value & mask) as u32,
                CH_CHANERRMSK => self.chan.chanerrmsk = value as u32,
                CH_DCACTRL => self.chan.dcactrl = value as u32,
                // DMACOMP, CHANSTS, CDAR are read-only.
                _ => {}
            },
            // Read-only general registers.
            _ => {}
        }
    }

    /// A CHAINADDR write: a channel that is not running loads the chain and waits for the doorbell.
    fn arm(&mut self) {
        let idle = match self.chan.state {
            ChannelState::Done | ChannelState::Suspended | ChannelState::Armed => true,
            ChannelState::Halted => self.chan.chanerr == 0,
            ChannelState::Active => false,
        };
        if idle {
            self.chan.state = ChannelState::Armed;
            self.chan.suspended_armed = false;
            self.chan.doorbell_pending = false;
            self.chan.completed = 0;
        }
    }

    /// A DMACOUNT write.
    fn doorbell(&mut self) {
        match self.chan.state {
            ChannelState::Armed => {
                if self.chan.dmacount != self.chan.completed {
                    self.chan.fetch = self.chan.chainaddr;
                    self.chan.fetch_from_chainaddr = true;
                    self.run();
                }
            }
            ChannelState::Done => self.run(),
            ChannelState::Suspended => self.chan.doorbell_pending = true,
            // Halted: ignored until reset / re-armed.
            ChannelState::Halted | ChannelState::Active => {}
        }
    }

    fn command(&mut self, cmd: u8) {
        if cmd & CHANCMD_RESET != 0 {
            self.reset_channel();
            return;
        }
        let ops = cmd & (CHANCMD_RESUME | CHANCMD_ABORT | CHANCMD_SUSPEND);
        if cmd & 0xc0 != 0 || ops.count_ones() > 1 {
            log::debug!("ioat: invalid CHANCMD {cmd:#x}");
            self.halt(CHANERR_CHANCMD);
            return;
        }
        match ops {
            CHANCMD_SUSPEND => match self.chan.state {
                ChannelState::Armed | ChannelState::Active | ChannelState::Done => {
                    self.chan.suspended_armed = self.chan.state == ChannelState::Armed;
                    self.chan.doorbell_pending = false;
                    self.chan.state = ChannelState::Suspended;
                }
                ChannelState::Suspended | ChannelState::Halted => {}
            },
            CHANCMD_RESUME if self.chan.state == ChannelState::Suspended => {
                self.chan.state = if self.chan.suspended_armed {
                    ChannelState::Armed
                } else {
                    ChannelState::Done
                };
                self.chan.suspended_armed = false;
                if std::mem::take(&mut self.chan.doorbell_pending) {
                    self.doorbell();
                }
            }
            // Halted without an error: a CHAINADDR write arms the channel again.
            CHANCMD_ABORT => {
                self.chan.state = ChannelState::Halted;
                self.chan.suspended_armed = false;
                self.chan.doorbell_pending = false;
            }
            // RESUME of a channel that is not suspended, START / APPEND (version 1 doorbells) and 0.
            _ => {}
        }
    }

    /// CHANCMD RESET: the channel returns to its power-on state.
    fn reset_channel(&mut self) {
        self.chan = Channel::default();
        self.attnstatus = 0;
    }

    /// Processes the released descriptors: DMACOUNT minus the completed count (at most 65535).
    fn run(&mut self) {
        let n = self.chan.dmacount.wrapping_sub(self.chan.completed);
        if n == 0 {
            return;
        }
        self.stats.doorbells += 1;
        self.chan.state = ChannelState::Active;
        for i in 0..n {
            if let Err(err) = self.step(i + 1 == n) {
                self.halt(err);
                return;
            }
        }
        self.chan.state = ChannelState::Done;
    }

    /// Fetches, executes and completes one descriptor; `last` when it is the last one released. On error,
    /// the CHANERR bit (the descriptor is not completed).
    fn step(&mut self, last: bool) -> Result<(), u32> {
        let addr = self.chan.fetch;
        self.chan.cdar = addr;
        if !addr.is_multiple_of(DESC_ALIGN) {
            return Err(if self.chan.fetch_from_chainaddr {
                CHANERR_CHAIN_ADDR_VALUE
            } else {
                CHANERR_NEXT_DESC_ALIGN
            });
        }
        let mut raw = [0u8; DESC_SIZE];
        let bme = self.config.bus_master_enabled();
        if let Err(e) = dma_read(&self.dma, bme, addr, &mut raw) {
            self.dma_failed("descriptor fetch", addr, &e);
            return Err(CHANERR_NEXT_ADDR);
        }
        let d = Descriptor::parse(&raw);
        match d.operation()? {
            Operation::Null => {}
            Operation::Copy { src, dst, len } => self.copy(src, dst, len)?,
            Operation::Fill { pattern, dst, len } => self.fill(pattern, dst, len)?,
        }
        self.chan.completed = self.chan.completed.wrapping_add(1);
        self.chan.completed_addr = addr;
        self.chan.fetch = d.next;
        self.chan.fetch_from_chainaddr = false;
        self.stats.descriptors += 1;
        // A completion written for the last released descriptor says DONE, earlier ones ACTIVE.
        self.chan.state = if last {
            ChannelState::Done
        } else {
            ChannelState::Active
        };
        if d.compl_write() {
            self.write_completion()?;
        }
        if d.int_en() {
            self.channel_interrupt();
        }
        Ok(())
    }

    /// The first `len` bytes of the staging buffer (`len` <= `MAX_TRANSFER`, checked by the descriptor).
    fn staging(&mut self, len: u32) -> Result<&mut [u8], u32> {
        let n = usize::try_from(len).map_err(|_| CHANERR_LENGTH)?;
        self.buf.get_mut(..n).ok_or(CHANERR_LENGTH)
    }

    fn copy(&mut self, src: u64, dst: u64, len: u32) -> Result<(), u32> {
        let span = u64::from(len).saturating_sub(1);
        if src.checked_add(span).is_none() {
            return Err(CHANERR_SRC_ADDR);
        }
        if dst.checked_add(span).is_none() {
            return Err(CHANERR_DEST_ADDR);
        }
        let bme = self.config.bus_master_enabled();
        let Some(buf) = self.buf.get_mut(..len as usize) else {
            return Err(CHANERR_LENGTH);
        };
        if let Err(e) = dma_read(&self.dma, bme, src, buf) {
            self.dma_failed("source read", src, &e);
            return Err(CHANERR_READ_DATA);
        }
        self.write_data(dst, len)
    }

    fn fill(&mut self, pattern: u64, dst: u64, len: u32) -> Result<(), u32> {
        if dst.checked_add(u64::from(len).saturating_sub(1)).is_none() {
            return Err(CHANERR_DEST_ADDR);
        }
        let bytes = pattern.to_le_bytes();
        for (i, b) in self.staging(len)?.iter_mut().enumerate() {
            *b = bytes[i % 8];
        }
        self.write_data(dst, len)
    }

    /// Writes the first `len` staged bytes at `dst`.
    fn write_data(&mut self, dst: u64, len: u32) -> Result<(), u32> {
        let bme = self.config.bus_master_enabled();
        let Some(buf) = self.buf.get(..len as usize) else {
            return Err(CHANERR_LENGTH);
        };
        if let Err(e) = dma_write(&self.dma, bme, dst, buf) {
            self.dma_failed("destination write", dst, &e);
            return Err(CHANERR_WRITE_DATA);
        }
        self.stats.bytes_copied += u64::from(len);
        Ok(())
    }

    /// Writes CHANSTS to CHANCMP.
    fn write_completion(&mut self) -> Result<(), u32> {
        let addr = self.chan.chancmp;
        if !addr.is_multiple_of(8) {
            log::debug!("ioat: CHANCMP {addr:#x} is not 8-byte aligned");
            return Err(CHANERR_COMPLETION_ADDR);
        }
        let bme = self.config.bus_master_enabled();
        let value = self.chansts().to_le_bytes();
        if let Err(e) = dma_write(&self.dma, bme, addr, &value) {
            self.dma_failed("completion write", addr, &e);
            return Err(CHANERR_COMPLETION_ADDR);
        }
        self.stats.completion_writes += 1;
        Ok(())
    }

    fn dma_failed(&mut self, what: &str, iova: u64, e: &DmaFailure) {
        log::debug!("ioat: {what} at {iova:#x}: {e}");
        self.stats.dma_failures += 1;
    }

    fn set_error(&mut self, err: u32) {
        self.chan.chanerr |= err;
        let mirror = self.config.read_u32(CFG_CHANERR_INT) | err;
        self.config.set_u32(CFG_CHANERR_INT, mirror);
    }

    /// Halts the channel on error `err`: CHANERR and its config mirror, the error completion write-back and the
    /// error interrupt as CHANCTRL asks.
    fn halt(&mut self, err: u32) {
        log::debug!(
            "ioat: channel halted, CHANERR {err:#x} at descriptor {:#x}",
            self.chan.cdar
        );
        self.set_error(err);
        self.chan.state = ChannelState::Halted;
        self.chan.suspended_armed = false;
        self.stats.channel_errors += 1;
        if self.chan.chanctrl & CHANCTRL_ERR_COMPLETION_EN != 0 {
            if let Err(e) = self.write_completion() {
                self.set_error(e);
            }
        }
        if self.chan.chanctrl & CHANCTRL_ERR_INT_EN != 0 {
            self.channel_interrupt();
        }
    }

    /// CHANCTRL.INT_REARM written as 1: the channel may signal again (and does now if it wanted to).
    fn rearm(&mut self) {
        self.chan.irq_disarmed = false;
        if self.chan.irq_pending {
            self.chan.irq_pending = false;
            self.channel_interrupt();
        }
    }

    /// The channel signals: once per re-arm, through ATTNSTATUS and the interrupt INTRCTRL selects.
    fn channel_interrupt(&mut self) {
        if self.chan.irq_disarmed {
            self.chan.irq_pending = true;
            return;
        }
        self.chan.irq_disarmed = true;
        // Channel 0's attention bit; with MSI-X per-vector control, its vector is the channel number.
        self.attnstatus |= 1;
        let master = self.intrctrl & INTRCTRL_MASTER_INT_EN != 0;
        let result = if self.msix.enabled(&self.config) {
            if self.intrctrl & INTRCTRL_MSIX_VECTOR_CONTROL != 0 || master {
                Some(self.msix.trigger(&self.config, 0, &*self.sink))
            } else {
                None
            }
        } else if master && self.msi.enabled(&self.config) {
            Some(self.msi.trigger(&mut self.config, 0, &*self.sink))
        } else {
            None
        };
        match result {
            Some(Ok(Delivery::Sent)) => self.stats.irqs_sent += 1,
            Some(Ok(Delivery::Latched)) => self.stats.irqs_latched += 1,
            Some(Ok(other)) => {
                log::debug!("ioat: channel interrupt: {other:?}");
                self.stats.irqs_dropped += 1;
            }
            Some(Err(e)) => {
                log::warn!("ioat: channel interrupt: {e}");
                self.stats.irqs_dropped += 1;
            }
            None => {
                log::debug!("ioat: channel interrupt with interrupts disabled");
                self.stats.irqs_dropped += 1;
            }
        }
    }

    /// Counts messages sent later (on unmask or enable), or logs why they failed.
    fn count_deferred(&mut self, r: Result<u32, MsiError>) {
        match r {
            Ok(n) => self.stats.irqs_sent += u64::from(n),
            Err(e) => {
                log::warn!("ioat: pending vector: {e}");
                self.stats.irqs_dropped += 1;
            }
        }
    }

    fn regs_read(&mut self, offset: u64, data: &mut [u8]) {
        let mut read_attn = false;
        for (i, out) in data.iter_mut().enumerate() {
            let Some(o) = offset.checked_add(i as u64).filter(|&o| o < BAR0_SIZE) else {
                *out = 0xff;
                continue;
            };
            if self.msix.owns(REGS_BAR, o) {
                self.msix.bar_read(REGS_BAR, o, std::slice::from_mut(out));
                continue;
            }
            *out = match register_at(o) {
                Some((base, _)) => {
                    read_attn |= base == REG_ATTNSTATUS;
                    (self.reg_value(base) >> (8 * (o - base))) as u8
                }
                None => 0,
            };
        }
        // ATTNSTATUS clears when read (Linux's single-vector handler reads it once per interrupt).
        if read_attn {
            self.attnstatus = 0;
        }
    }

    fn regs_write(&mut self, offset: u64, data: &[u8]) {
        let mut i = 0;
        while i < data.len() {
            let Some(o) = offset.checked_add(i as u64).filter(|&o| o < BAR0_SIZE) else {
                return;
            };
            if self.msix.owns(REGS_BAR, o) {
                let mut j = i + 1;
                while j < data.len()
                    && offset
                        .checked_add(j as u64)
                        .is_some_and(|oj| self.msix.owns(REGS_BAR, oj))
                {
                    j += 1;
                }
                let r = self.msix.bar_write(
                    &self.config,
                    REGS_BAR,
                    o,
                    data.get(i..j).unwrap_or_default(),
                    &*self.sink,
                );
                self.count_deferred(r);
                i = j;
                continue;
            }
            let Some((base, width)) = register_at(o) else {
                i += 1;
                continue;
            };
            // Merge the bytes of this access that fall in the register, then apply the write once.
            let mut value = self.reg_value(base);
            let mut mask = 0u64;
            while let Some((&b, oj)) = data
                .get(i)
                .zip(offset.checked_add(i as u64))
                .filter(|&(_, oj)| oj < base + width)
            {
                let shift = 8 * (oj - base);
                value = (value & !(0xff << shift)) | (u64::from(b) << shift);
                mask |= 0xff << shift;
                i += 1;
            }
            self.reg_write(base, value, mask);
        }
    }
}

impl PciDevice for Ioat {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    fn config_write(&mut self, reg: usize, offset: usize, data: &[u8]) {
        let Some(o) = config_offset(reg, offset) else {
            return;
        };
        let power_state = self.pm.power_state(&self.config);
        self.config.write(o, data);
        self.pm.after_write(&mut self.config, power_state);
        // A write may set MSI/MSI-X enable, clear the function mask, unmask an MSI vector or set BME: send what
        // became deliverable.
        let r = self.msi.after_write(&mut self.config, &*self.sink);
        self.count_deferred(r);
        let r = self.msix.after_config_write(&self.config, &*self.sink);
        self.count_deferred(r);
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        if bar == REGS_BAR {
            self.regs_read(offset, data);
        } else {
            data.fill(0xff);
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        if bar == REGS_BAR {
            self.regs_write(offset, data);
        }
    }
}

#[cfg(test)]
mod tests;
