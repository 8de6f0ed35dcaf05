//! Shared by the SMMUv3 fuzz targets (included with `#[path]`, not a target itself): memory that
//! notices the SMMU's writes, an SMMU over it with register helpers, the Linux-order bring-up, the
//! command queue helpers, and the checks every translation and every fault must pass.
#![allow(dead_code)]

use iommu::RegisterWindow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use iommu::mem::TestMemory;
use iommu::smmuv3::regs::*;
use iommu::smmuv3::{Smmuv3, Smmuv3Config};
use iommu::{Access, DmaFault, DmaMemory, DmaRequest, MemError, RequestKind, Translation};

#[path = "input.rs"]
mod input;
pub use input::{CountIrq, Input};

/// Command opcodes (IHI0070 §4.1.2), as the harness issues them.
pub const CMD_CFGI_ALL: u64 = 0x04 | 31 << 32;
pub const CMD_TLBI_NSNH_ALL: u64 = 0x30;
pub const CMD_SYNC: u64 = 0x46;

/// Event numbers this model can report in `DmaFault::reason` (IHI0070 §7.3), 0 being a transaction
/// terminated without an event.
pub const ARCHITECTED_REASONS: [u32; 13] = [
    0, 0x02, 0x03, 0x04, 0x06, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x11, 0x12, 0x13,
];

/// One memory access the SMMU made: (write, address, length).
pub type Access8 = (bool, u64, u64);

/// [`TestMemory`] that counts the SMMU's writes outside a "quiet" range (the event queue, whose
/// records are expected), notices structure reads from that range (a hostile pointer into the event
/// queue: its contents then depend on the events so far), and can log every access.
pub struct Tracked {
    mem: TestMemory,
    size: u64,
    quiet: (u64, u64),
    writes: AtomicU64,
    quiet_read: AtomicBool,
    log: Mutex<Option<Vec<Access8>>>,
}

fn overlaps(addr: u64, len: u64, (lo, hi): (u64, u64)) -> bool {
    addr < hi && addr.saturating_add(len) > lo
}

impl Tracked {
    /// `size` bytes of zeroed memory; writes to `[quiet.0, quiet.1)` are not counted.
    pub fn new(size: u64, quiet: (u64, u64)) -> Self {
        Self {
            mem: TestMemory::new(size as usize),
            size,
            quiet,
            writes: AtomicU64::new(0),
            quiet_read: AtomicBool::new(false),
            log: Mutex::new(None),
        }
    }

    /// Counted writes so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Whether the SMMU ever read from the quiet range (not counting the harness).
    pub fn quiet_read(&self) -> bool {
        self.quiet_read.load(Ordering::Relaxed)
    }

    /// A harness write: neither counted nor logged; dropped outside memory.
    pub fn poke(&self, addr: u64, v: u64) {
        let _ = self.mem.write_u64(addr, v);
    }

    /// A harness read (0 outside memory).
    pub fn peek(&self, addr: u64) -> u64 {
        self.mem.read_u64(addr).unwrap_or(0)
    }

    /// A harness bulk write.
    pub fn fill(&self, addr: u64, bytes: &[u8]) {
        let _ = self.mem.write(addr, bytes);
    }

    /// The whole memory.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.size as usize];
        self.mem
            .read(0, &mut b)
            .expect("the whole memory is readable");
        b
    }

    /// Starts logging accesses (dropping any earlier log).
    pub fn start_log(&self) {
        *self.log.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
    }

    /// Stops logging and returns the log.
    pub fn take_log(&self) -> Vec<Access8> {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default()
    }

    fn note(&self, write: bool, addr: u64, len: u64) {
        if let Some(log) = self.log.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            log.push((write, addr, len));
        }
    }
}

/// Whether a logged access sequence read back something it had written outside `quiet` (an HTTU
/// update of one descriptor that another read of the same walk saw: hostile aliasing, where a
/// side-effect-free lookup legitimately sees the old value).
pub fn read_after_write(log: &[Access8], quiet: (u64, u64)) -> bool {
    let mut written: Vec<(u64, u64)> = Vec::new();
    for &(write, addr, len) in log {
        if write {
            let inside_quiet = addr >= quiet.0 && addr.saturating_add(len) <= quiet.1;
            if !inside_quiet {
                written.push((addr, len));
            }
        } else if written
            .iter()
            .any(|&(a, l)| overlaps(addr, len, (a, a.saturating_add(l))))
        {
            return true;
        }
    }
    false
}

impl DmaMemory for Tracked {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let len = buf.len() as u64;
        if overlaps(addr, len, self.quiet) {
            self.quiet_read.store(true, Ordering::Relaxed);
        }
        self.note(false, addr, len);
        self.mem.read(addr, buf)
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        let len = buf.len() as u64;
        let inside_quiet = addr >= self.quiet.0 && addr.saturating_add(len) <= self.quiet.1;
        if !inside_quiet {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        self.note(true, addr, len);
        self.mem.write(addr, buf)
    }

    fn compare_exchange_u64(&self, addr: u64, current: u64, new: u64) -> Result<u64, MemError> {
        self.note(false, addr, 8);
        let found = self.mem.compare_exchange_u64(addr, current, new)?;
        if found == current {
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.note(true, addr, 8);
        }
        Ok(found)
    }
}

/// A configuration from two bytes: stages, OAS, HTTU, RIL, stream table format, SID and SSID sizes;
/// `caching` as given. Parsed from the user-facing option string.
pub fn config(b: u8, c: u8, caching: bool) -> Smmuv3Config {
    let s = format!(
        "smmuv3,stages={},oas={},httu={},ril={},strtab={},sidbits={},ssidbits={},caching={}",
        ["nested", "nested", "s1", "s2"][usize::from(b & 3)],
        [48, 44, 40, 52][usize::from((b >> 2) & 3)],
        [2, 0, 1, 2][usize::from((b >> 4) & 3)],
        if b & 0x40 != 0 { "off" } else { "on" },
        if b & 0x80 != 0 { "linear" } else { "2lvl" },
        [16, 8, 12, 32][usize::from(c & 3)],
        [20, 0, 6, 12][usize::from((c >> 2) & 3)],
        if caching { "on" } else { "off" },
    );
    s.parse().expect("harness option strings always parse")
}

/// Where the harness puts the SMMU's queues and stream table.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    pub strtab: u64,
    /// STRTAB_BASE_CFG as written.
    pub strtab_cfg: u32,
    pub cmdq: u64,
    pub cmdq_log2: u32,
    pub evtq: u64,
    pub evtq_log2: u32,
    /// EVTQEN set at bring-up.
    pub evtq_on: bool,
}

/// The interrupt addresses the harness programs (outside RAM: they reach the interrupt sink).
pub const GERROR_MSI: u64 = 0xfee0_1000;
pub const EVTQ_MSI: u64 = 0xfee0_2000;

/// An SMMU over its own tracked memory.
pub struct Unit {
    pub smmu: Smmuv3,
    pub mem: Arc<Tracked>,
    pub irq: Arc<CountIrq>,
}

impl Unit {
    pub fn new(cfg: Smmuv3Config, mem_size: u64, quiet: (u64, u64)) -> Self {
        let mem = Arc::new(Tracked::new(mem_size, quiet));
        let irq = Arc::new(CountIrq::default());
        let smmu = Smmuv3::new(cfg, mem.clone(), irq.clone());
        Self { smmu, mem, irq }
    }

    pub fn r32(&self, off: u64) -> u32 {
        self.smmu.read32(off)
    }

    pub fn r64(&self, off: u64) -> u64 {
        self.smmu.read64(off)
    }

    pub fn w32(&self, off: u64, v: u32) {
        self.smmu.write32(off, v);
    }

    pub fn w64(&self, off: u64, v: u64) {
        self.smmu.write64(off, v);
    }

    /// The output size the SMMU reports (IDR5.OAS), in bits.
    pub fn oas_bits(&self) -> u32 {
        [32, 36, 40, 42, 44, 48, 52][(self.r32(IDR5) & 7).min(6) as usize]
    }

    /// Linux's `arm_smmu_device_reset` order: disable, CR1/CR2, stream table, command queue, CMDQEN,
    /// CFGI_ALL + TLBI_NSNH_ALL + CMD_SYNC, event queue + EVTQEN, interrupts, SMMUEN.
    pub fn bring_up(&self, p: &Placement) {
        self.w32(CR0, 0);
        self.w32(CR1, 0xd75);
        self.w32(CR2, 0b110);
        self.w64(STRTAB_BASE, p.strtab | STRTAB_BASE_RA);
        self.w32(STRTAB_BASE_CFG, p.strtab_cfg);
        self.w64(CMDQ_BASE, p.cmdq | 1 << 62 | u64::from(p.cmdq_log2));
        self.w32(CMDQ_PROD, 0);
        self.w32(CMDQ_CONS, 0);
        self.w64(EVTQ_BASE, p.evtq | 1 << 62 | u64::from(p.evtq_log2));
        self.w32(PAGE1 + EVTQ_PROD, 0);
        self.w32(PAGE1 + EVTQ_CONS, 0);
        self.w32(CR0, CR0_CMDQEN);
        self.invalidate_all();
        let evtq = if p.evtq_on { CR0_EVTQEN } else { 0 };
        self.w32(CR0, CR0_CMDQEN | evtq);
        self.w64(GERROR_IRQ_CFG0, GERROR_MSI);
        self.w32(GERROR_IRQ_CFG1, 0x41);
        self.w64(EVTQ_IRQ_CFG0, EVTQ_MSI);
        self.w32(EVTQ_IRQ_CFG1, 0x42);
        self.w32(IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_EVTQ_IRQEN);
        self.w32(CR0, CR0_CMDQEN | evtq | CR0_SMMUEN);
        assert_eq!(self.r32(CR0ACK), CR0_CMDQEN | evtq | CR0_SMMUEN);
    }

    /// Queues one command at PROD of the queue CMDQ_BASE names and publishes it.
    pub fn cmd(&self, w0: u64, w1: u64) {
        let base = self.r64(CMDQ_BASE);
        let log2 = ((base & 0x1f) as u32).min(CMDQS);
        let prod = self.r32(CMDQ_PROD);
        let slot = (base & Q_BASE_ADDR_MASK) + u64::from(prod & ((1 << log2) - 1)) * 16;
        self.mem.poke(slot, w0);
        self.mem.poke(slot + 8, w1);
        self.w32(CMDQ_PROD, (prod + 1) & ((2 << log2) - 1));
    }

    /// CFGI_ALL, TLBI_NSNH_ALL and a CMD_SYNC (CS = SIG_NONE: no MSI write); asserts the queue drained.
    pub fn invalidate_all(&self) {
        self.cmd(CMD_CFGI_ALL, 31);
        self.cmd(CMD_TLBI_NSNH_ALL, 0);
        self.cmd(CMD_SYNC, 0);
        assert_eq!(
            self.r32(CMDQ_CONS),
            self.r32(CMDQ_PROD),
            "invalidation commands drained (GERROR {:#x})",
            self.r32(GERROR)
        );
    }

    /// Consumes every event record (CONS = PROD, overflow acknowledged).
    pub fn drain_events(&self) {
        let prod = self.r32(PAGE1 + EVTQ_PROD);
        self.w32(PAGE1 + EVTQ_CONS, prod);
    }

    pub fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        iommu::DmaPort::translate(&self.smmu, req)
    }
}

/// What every successful translation must satisfy, whatever the tables held.
pub fn check_translation(req: &DmaRequest, t: &Translation, oas_bits: u32) {
    assert!(
        t.page_size.is_power_of_two(),
        "page size {:#x} for {req:x?}",
        t.page_size
    );
    assert!(t.covers(req.iova), "{t:x?} does not cover {req:x?}");
    assert_eq!(t.iova & (t.page_size - 1), 0, "unaligned page {t:x?}");
    assert_eq!(t.output & (t.page_size - 1), 0, "unaligned output {t:x?}");
    let last = t.output.checked_add(t.page_size - 1);
    assert!(
        last.is_some_and(|l| l >> oas_bits == 0),
        "{req:x?} -> {t:x?} beyond the {oas_bits}-bit OAS"
    );
    if req.kind == RequestKind::Untranslated {
        assert!(t.perms.allows(req.access), "{req:x?} -> {t:x?}");
    }
}

/// What every fault must satisfy: the model's name, the request's address, an architected event.
pub fn check_fault(req: &DmaRequest, f: &DmaFault) {
    assert_eq!(f.model, "smmuv3");
    assert_eq!(f.iova, req.iova, "{f:?} for {req:x?}");
    assert!(
        ARCHITECTED_REASONS.contains(&f.reason),
        "unarchitected reason {:#x} for {req:x?}",
        f.reason
    );
    if req.kind == RequestKind::TranslationRequest || f.reason == 0 {
        assert!(!f.recorded, "{f:?} recorded for {req:x?}");
    }
}

/// A request from fuzz-chosen flag bits: 0x20 write, 0x40 privileged, 0x80 ATS translation request.
pub fn request(source_id: u32, pasid: Option<u32>, iova: u64, flags: u8) -> DmaRequest {
    DmaRequest {
        source_id,
        pasid,
        iova,
        access: if flags & 0x20 != 0 {
            Access::Write
        } else {
            Access::Read
        },
        privileged: flags & 0x40 != 0,
        kind: if flags & 0x80 != 0 {
            RequestKind::TranslationRequest
        } else {
            RequestKind::Untranslated
        },
    }
}

/// The GERROR / GERRORN / CR0 invariants that hold whatever software wrote.
pub fn check_registers(u: &Unit) {
    let (gerror, gerrorn) = (u.r32(GERROR), u.r32(GERRORN));
    assert_eq!(gerror & !GERROR_MASK, 0, "GERROR {gerror:#x}");
    assert_eq!(gerrorn & !GERROR_MASK, 0, "GERRORN {gerrorn:#x}");
    assert_eq!(u.r32(CR0ACK), u.r32(CR0), "CR0ACK follows CR0");
    assert_eq!(u.r32(CR0) & !CR0_MASK, 0);
    assert_eq!(u.r32(IRQ_CTRLACK), u.r32(IRQ_CTRL));
}
