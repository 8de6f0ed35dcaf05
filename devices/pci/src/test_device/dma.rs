//! The test device's DMA engine: the `REG_DMA_*` registers and the copy, fill and translate commands, every
//! access issued through the device's [`DmaAccessor`]. Semantics are specified in [`super::regs`].

use super::regs::*;
use iommu::{Access, DmaAccessor, DmaError, DmaRequest, Perms, RequestKind};

/// Size of the buffer a fill writes from: a multiple of 8, so every piece starts at byte 0 of the pattern.
pub(crate) const FILL_CHUNK: usize = 64 << 10;

/// What the engine needs from the function's configuration space when a command starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaContext {
    /// COMMAND.BME: the function may issue requests.
    pub bus_master: bool,
    /// Enable in the PASID capability's control register: requests may carry a PASID.
    pub pasid_enabled: bool,
}

/// The engine's registers, as the guest sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaRegisters {
    pub src: u64,
    pub dst: u64,
    pub len: u64,
    pub pattern: u64,
    pub pasid: u32,
    pub flags: u32,
    pub status: u32,
    pub fault_iova: u64,
    pub fault_reason: u32,
    pub fault_access: u32,
    pub xlate_out: u64,
    pub xlate_size: u64,
    pub xlate_perms: u32,
    pub completions: u32,
    pub bytes: u64,
}

/// A failure: the first IOVA that failed, the reason code and the `FAULT_ACCESS_*` code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Failure {
    iova: u64,
    reason: u32,
    access: u32,
}

/// A translate probe's answer: output address, page size, `XLATE_PERM_*` bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Probe {
    output: u64,
    size: u64,
    perms: u32,
}

/// What one command produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Outcome {
    status: u32,
    bytes: u64,
    failure: Option<Failure>,
    probe: Option<Probe>,
}

impl Outcome {
    fn status(status: u32) -> Self {
        Self {
            status,
            ..Default::default()
        }
    }

    fn done(bytes: u64) -> Self {
        Self {
            status: STATUS_DONE,
            bytes,
            ..Default::default()
        }
    }

    /// A DMA access that stopped with `e`. `progress` is `(start, len)` of the range being written, so that the
    /// bytes before the failing IOVA count as written; `None` when nothing was written.
    fn failed(e: DmaError, access: Access, progress: Option<(u64, u64)>) -> Self {
        let (status, iova, reason) = match e {
            DmaError::Fault(f) => (STATUS_FAULT, f.iova, f.reason),
            DmaError::OutsideRam { iova, .. } => (STATUS_OUTSIDE_RAM, iova, 0),
            // A translation that does not cover the IOVA is an IOMMU model bug: report it as a fault without
            // an architected reason rather than moving bytes anywhere.
            DmaError::BadTranslation { iova } => (STATUS_FAULT, iova, 0),
            // Ranges are checked before any request; the accessor's own check is a backstop.
            DmaError::Wrap { .. } => return Self::status(STATUS_BAD_COMMAND),
        };
        let bytes = progress.map_or(0, |(start, len)| iova.saturating_sub(start).min(len));
        Self {
            status,
            bytes,
            failure: Some(Failure {
                iova,
                reason,
                access: access_code(access),
            }),
            probe: None,
        }
    }
}

fn access_code(access: Access) -> u32 {
    match access {
        Access::Read => FAULT_ACCESS_READ,
        Access::Write => FAULT_ACCESS_WRITE,
    }
}

fn perm_bits(p: Perms) -> u32 {
    let mut bits = 0;
    if p.read {
        bits |= XLATE_PERM_READ;
    }
    if p.write {
        bits |= XLATE_PERM_WRITE;
    }
    if p.exec {
        bits |= XLATE_PERM_EXEC;
    }
    bits
}

/// The low or high half of a 64-bit register, by the dword `offset`.
fn half(value: u64, offset: u64) -> u32 {
    if offset & 4 == 0 {
        value as u32
    } else {
        (value >> 32) as u32
    }
}

/// Sets the low or high half of a 64-bit register, by the dword `offset`.
fn set_half(reg: &mut u64, offset: u64, value: u32) {
    *reg = if offset & 4 == 0 {
        (*reg & !0xffff_ffff) | u64::from(value)
    } else {
        (*reg & 0xffff_ffff) | u64::from(value) << 32
    };
}

/// The DMA engine.
pub struct DmaEngine {
    dma: DmaAccessor,
    regs: DmaRegisters,
}

impl DmaEngine {
    pub fn new(dma: DmaAccessor) -> Self {
        Self {
            dma,
            regs: DmaRegisters::default(),
        }
    }

    /// Function Level Reset: every register back to 0 ([`STATUS_IDLE`], no completions).
    pub fn reset(&mut self) {
        self.regs = DmaRegisters::default();
    }

    /// The registers.
    pub fn registers(&self) -> DmaRegisters {
        self.regs
    }

    /// Guest read of the 32-bit unit at dword-aligned `offset` (0 outside the engine's registers).
    pub fn read(&self, offset: u64) -> u32 {
        let r = &self.regs;
        match offset {
            REG_DMA_PASID => r.pasid,
            REG_DMA_FLAGS => r.flags,
            REG_DMA_CMD => 0,
            REG_DMA_STATUS => r.status,
            REG_DMA_FAULT_REASON => r.fault_reason,
            REG_DMA_FAULT_ACCESS => r.fault_access,
            REG_DMA_XLATE_PERMS => r.xlate_perms,
            REG_DMA_COMPLETIONS => r.completions,
            _ => match offset & !7 {
                REG_DMA_SRC => half(r.src, offset),
                REG_DMA_DST => half(r.dst, offset),
                REG_DMA_LEN => half(r.len, offset),
                REG_DMA_PATTERN => half(r.pattern, offset),
                REG_DMA_FAULT_IOVA => half(r.fault_iova, offset),
                REG_DMA_XLATE_OUT => half(r.xlate_out, offset),
                REG_DMA_XLATE_SIZE => half(r.xlate_size, offset),
                REG_DMA_BYTES => half(r.bytes, offset),
                _ => 0,
            },
        }
    }

    /// Guest write of the 32-bit unit at dword-aligned `offset`, except [`REG_DMA_CMD`] (see [`Self::execute`]).
    /// Read-only registers and offsets outside the engine ignore it.
    pub fn write(&mut self, offset: u64, value: u32) {
        let r = &mut self.regs;
        match offset {
            REG_DMA_PASID => r.pasid = value & (DMA_PASID_VALID | DMA_PASID_MASK),
            REG_DMA_FLAGS => r.flags = value & DMA_FLAGS_MASK,
            _ => match offset & !7 {
                REG_DMA_SRC => set_half(&mut r.src, offset, value),
                REG_DMA_DST => set_half(&mut r.dst, offset, value),
                REG_DMA_LEN => set_half(&mut r.len, offset, value),
                REG_DMA_PATTERN => set_half(&mut r.pattern, offset, value),
                _ => {}
            },
        }
    }

    /// Runs command `cmd` to completion and updates the result registers. Returns whether the guest asked for
    /// a completion interrupt ([`DMA_FLAG_IRQ`]).
    pub fn execute(&mut self, cmd: u32, ctx: DmaContext) -> bool {
        let out = self.run(cmd, ctx);
        let f = out.failure.unwrap_or_default();
        let p = out.probe.unwrap_or_default();
        let r = &mut self.regs;
        r.status = out.status;
        r.bytes = out.bytes;
        r.fault_iova = f.iova;
        r.fault_reason = f.reason;
        r.fault_access = f.access;
        r.xlate_out = p.output;
        r.xlate_size = p.size;
        r.xlate_perms = p.perms;
        r.completions = r.completions.wrapping_add(1);
        r.flags & DMA_FLAG_IRQ != 0
    }

    fn run(&self, cmd: u32, ctx: DmaContext) -> Outcome {
        let r = &self.regs;
        if !matches!(cmd, DMA_CMD_COPY | DMA_CMD_FILL | DMA_CMD_TRANSLATE) {
            return Outcome::status(STATUS_BAD_COMMAND);
        }
        if cmd != DMA_CMD_TRANSLATE {
            let wraps = |start: u64| r.len > 0 && start.checked_add(r.len - 1).is_none();
            if r.len > DMA_MAX_LEN || wraps(r.dst) || (cmd == DMA_CMD_COPY && wraps(r.src)) {
                return Outcome::status(STATUS_BAD_COMMAND);
            }
        }
        if !ctx.bus_master {
            return Outcome::status(STATUS_NO_BUS_MASTER);
        }
        let pasid = (ctx.pasid_enabled && r.pasid & DMA_PASID_VALID != 0)
            .then_some(r.pasid & DMA_PASID_MASK);
        match cmd {
            DMA_CMD_COPY => self.copy(pasid),
            DMA_CMD_FILL => self.fill(pasid),
            _ => self.translate(pasid),
        }
    }

    /// Reads the whole source, then writes it (memmove-like).
    fn copy(&self, pasid: Option<u32>) -> Outcome {
        let r = &self.regs;
        // LEN <= DMA_MAX_LEN was checked, so this bounds the allocation.
        let Ok(len) = usize::try_from(r.len.min(DMA_MAX_LEN)) else {
            return Outcome::status(STATUS_BAD_COMMAND);
        };
        if len == 0 {
            return Outcome::done(0);
        }
        let mut buf = vec![0u8; len];
        if let Err(e) = self.dma.read(r.src, pasid, &mut buf) {
            return Outcome::failed(e, Access::Read, None);
        }
        match self.dma.write(r.dst, pasid, &buf) {
            Ok(()) => Outcome::done(r.len),
            Err(e) => Outcome::failed(e, Access::Write, Some((r.dst, r.len))),
        }
    }

    /// Writes the pattern in pieces of at most [`FILL_CHUNK`] bytes, in IOVA order.
    fn fill(&self, pasid: Option<u32>) -> Outcome {
        let r = &self.regs;
        let pattern = r.pattern.to_le_bytes();
        let piece = usize::try_from(r.len).map_or(FILL_CHUNK, |l| l.min(FILL_CHUNK));
        let buf: Vec<u8> = (0..piece).map(|i| pattern[i % 8]).collect();
        let mut done = 0u64;
        while done < r.len {
            let n = usize::try_from(r.len - done).map_or(buf.len(), |n| n.min(buf.len()));
            if let Err(e) = self.dma.write(r.dst.wrapping_add(done), pasid, &buf[..n]) {
                return Outcome::failed(e, Access::Write, Some((r.dst, r.len)));
            }
            done += n as u64;
        }
        Outcome::done(r.len)
    }

    /// One ATS-style translation request for DST; no memory access.
    fn translate(&self, pasid: Option<u32>) -> Outcome {
        let r = &self.regs;
        let access = if r.flags & DMA_FLAG_PROBE_WRITE != 0 {
            Access::Write
        } else {
            Access::Read
        };
        let req = DmaRequest {
            source_id: self.dma.source_id,
            pasid,
            iova: r.dst,
            access,
            privileged: r.flags & DMA_FLAG_PRIVILEGED != 0,
            kind: RequestKind::TranslationRequest,
        };
        match self.dma.port.translate(&req) {
            Ok(t) => Outcome {
                status: STATUS_DONE,
                probe: Some(Probe {
                    // Wrapping: a model bug must not panic the VMM.
                    output: t.output.wrapping_add(r.dst.wrapping_sub(t.iova)),
                    size: t.page_size,
                    perms: perm_bits(t.perms),
                }),
                ..Default::default()
            },
            Err(f) => Outcome {
                status: STATUS_FAULT,
                failure: Some(Failure {
                    iova: r.dst,
                    reason: f.reason,
                    access: access_code(access),
                }),
                ..Default::default()
            },
        }
    }
}
