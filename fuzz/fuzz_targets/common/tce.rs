//! Shared by the TCE fuzz targets (included with `#[path]`, not a target itself): memory that counts
//! the unit's reads and writes, a pair of units (caching on and off) over two identical memories
//! driven in lockstep, and the checks every hypercall, RTAS call, DMA and lookup must pass.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use iommu::mem::TestMemory;
use iommu::tce::eeh::reason;
use iommu::tce::hcall::{H_FUNCTION, H_HARDWARE, H_NO_MEM, H_PARAMETER, H_SUCCESS};
use iommu::tce::rtas::{RTAS_HARDWARE_ERROR, RTAS_PARAMETER_ERROR, RTAS_SUCCESS};
use iommu::tce::{regs, EehMode, LookupOutcome, Tce, TceConfig};
use iommu::{
    Access, DmaFault, DmaMemory, DmaPort, DmaRequest, IovaWindow, MemError, PermittedRanges,
    RequestKind, Translation,
};

#[path = "input.rs"]
mod input;
pub use input::{CountIrq, Input};

/// Deepest table walk (pnv POWERNV_IOMMU_MAX_LEVELS): a DMA reads at most this many entries.
pub const MAX_LEVELS: u64 = 5;

/// [`TestMemory`] that counts the unit's reads and writes (the harness's own accesses are not
/// counted).
pub struct Counted {
    mem: TestMemory,
    size: u64,
    reads: AtomicU64,
    writes: AtomicU64,
}

impl Counted {
    pub fn new(size: u64) -> Self {
        Self {
            mem: TestMemory::new(size as usize),
            size,
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// A harness write (dropped outside memory).
    pub fn fill(&self, addr: u64, bytes: &[u8]) {
        let _ = self.mem.write(addr, bytes);
    }

    /// A harness read of a big-endian entry (0 outside memory).
    pub fn peek_be(&self, addr: u64) -> u64 {
        let mut b = [0u8; 8];
        match self.mem.read(addr, &mut b) {
            Ok(()) => u64::from_be_bytes(b),
            Err(_) => 0,
        }
    }
}

impl DmaMemory for Counted {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.mem.read(addr, buf)
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.mem.write(addr, buf)
    }
}

/// The architected hypercall statuses the model may return (LoPAR; Linux hvcall.h).
pub const HCALL_STATUSES: [i64; 5] = [H_SUCCESS, H_HARDWARE, H_FUNCTION, H_PARAMETER, H_NO_MEM];
/// The RTAS statuses of the DDW calls (LoPAR: 0 success, -1 hardware error, -3 parameter error).
pub const RTAS_STATUSES: [i32; 3] = [RTAS_SUCCESS, RTAS_HARDWARE_ERROR, RTAS_PARAMETER_ERROR];

/// A configuration from one byte and a pool size (in 4 KiB pages, at `pool_base`), parsed from the
/// user-facing option string: EEH mode, offered page sizes (4K always), page64.
pub fn config(b: u8, pool_base: u64, pool_pages: u64, caching: bool) -> TceConfig {
    const EXTRA: [&str; 4] = ["16:21:24:28:30", "21", "16:24", "21:30"];
    let extra = EXTRA[usize::from((b >> 1) & 3)];
    let offered: Vec<&str> = extra.split(':').collect();
    let page64 = if b & 0x08 != 0 {
        "12"
    } else {
        offered[usize::from(b >> 4) % offered.len()]
    };
    let s = format!(
        "tce,eeh={},caching={},pageshifts=12:{extra},page64={page64},pool={pool_base:#x}+{:#x}",
        if b & 1 != 0 { "report" } else { "freeze" },
        if caching { "on" } else { "off" },
        pool_pages * 0x1000,
    );
    s.parse().expect("harness option strings always parse")
}

/// Two units over two memories with identical contents: `a` caches TCEs, `b` does not. Every
/// operation goes to both and must give the same answer.
pub struct Pair {
    pub a: Tce,
    pub b: Tce,
    pub ma: Arc<Counted>,
    pub mb: Arc<Counted>,
    pub eeh: EehMode,
    /// The EEH state the harness expects: frozen, and errors recorded since the last PE reset.
    pub frozen: bool,
    pub errors: u64,
}

impl Pair {
    pub fn new(cfg: &TceConfig, mem_size: u64) -> Self {
        let ma = Arc::new(Counted::new(mem_size));
        let mb = Arc::new(Counted::new(mem_size));
        let on = TceConfig {
            caching: true,
            ..cfg.clone()
        };
        let off = TceConfig {
            caching: false,
            ..cfg.clone()
        };
        let a = Tce::new(on, ma.clone(), Arc::new(CountIrq::default()));
        let b = Tce::new(off, mb.clone(), Arc::new(CountIrq::default()));
        let p = Self {
            a,
            b,
            ma,
            mb,
            eeh: cfg.eeh,
            frozen: false,
            errors: 0,
        };
        p.check_ranges();
        p
    }

    /// A guest CPU write to both memories.
    pub fn fill(&self, addr: u64, bytes: &[u8]) {
        self.ma.fill(addr, bytes);
        self.mb.fill(addr, bytes);
    }

    pub fn poke_be(&self, addr: u64, v: u64) {
        self.fill(addr, &v.to_be_bytes());
    }

    pub fn peek_be(&self, addr: u64) -> u64 {
        self.ma.peek_be(addr)
    }

    /// One hypercall on both; the statuses must be architected and the answers identical.
    pub fn hcall(&self, op: u64, args: &[u64]) -> Vec<u64> {
        let ra = self.a.hcall(op, args);
        let rb = self.b.hcall(op, args);
        assert_eq!(ra, rb, "hcall {op:#x} {args:x?}: caching on vs off");
        let status = ra.first().copied().map(|s| s as i64);
        assert!(
            status.is_some_and(|s| HCALL_STATUSES.contains(&s)),
            "hcall {op:#x} {args:x?} -> {ra:x?}: not an architected status"
        );
        let want_len = match (status, op) {
            (Some(0), iommu::tce::hcall::H_GET_TCE) => 2,
            _ => 1,
        };
        assert_eq!(ra.len(), want_len, "hcall {op:#x} {args:x?} -> {ra:x?}");
        if status != Some(H_SUCCESS) {
            assert!(
                iommu::tce::hcall::hcall_name(op).is_some() || status == Some(H_FUNCTION),
                "unknown opcode {op:#x} -> {ra:x?}"
            );
        }
        if iommu::tce::hcall::hcall_name(op).is_none() {
            assert_eq!(status, Some(H_FUNCTION), "unknown opcode {op:#x}");
        }
        self.check_ranges();
        ra
    }

    /// One RTAS call on both; statuses architected, answers identical.
    pub fn rtas(&self, name: &str, args: &[u32]) -> Vec<u32> {
        let ra = self.a.rtas(name, args);
        let rb = self.b.rtas(name, args);
        assert_eq!(ra, rb, "rtas {name} {args:x?}: caching on vs off");
        let status = ra.first().copied().map(|s| s as i32);
        assert!(
            status.is_some_and(|s| RTAS_STATUSES.contains(&s)),
            "rtas {name} {args:x?} -> {ra:x?}: not an architected status"
        );
        let outputs = match (status, name) {
            (Some(0), iommu::tce::rtas::QUERY) => 5,
            (Some(0), iommu::tce::rtas::CREATE) => 3,
            _ => 0,
        };
        assert_eq!(ra.len(), 1 + outputs, "rtas {name} {args:x?} -> {ra:x?}");
        self.check_ranges();
        ra
    }

    pub fn w64(&self, off: u64, v: u64) {
        self.a.mmio_write(off, &v.to_le_bytes());
        self.b.mmio_write(off, &v.to_le_bytes());
    }

    pub fn w32(&self, off: u64, v: u32) {
        self.a.mmio_write(off, &v.to_le_bytes());
        self.b.mmio_write(off, &v.to_le_bytes());
    }

    /// An MMIO write of any size (garbage included).
    pub fn wraw(&self, off: u64, data: &[u8]) {
        self.a.mmio_write(off, data);
        self.b.mmio_write(off, data);
    }

    /// A 64-bit register read; both units must agree.
    pub fn r64(&self, off: u64) -> u64 {
        let mut x = [0u8; 8];
        let mut y = [0u8; 8];
        self.a.mmio_read(off, &mut x);
        self.b.mmio_read(off, &mut y);
        assert_eq!(x, y, "register {off:#x}: caching on vs off");
        u64::from_le_bytes(x)
    }

    /// TCE_KILL all on both (the caching-off unit has nothing to kill).
    pub fn kill_all(&self) {
        self.w64(regs::TCE_KILL, regs::KILL_ALL);
    }

    /// TCE_KILL of the IOBAs [start, end).
    pub fn kill_range(&self, start: u64, end: u64) {
        self.w64(regs::TCE_KILL_START, start);
        self.w64(regs::TCE_KILL_END, end);
        self.w64(regs::TCE_KILL, regs::KILL_RANGE);
    }

    /// PE reset: by register or by the API; unfreezes and clears the log.
    pub fn reset_pe(&mut self, by_register: bool) {
        if by_register {
            self.w64(regs::TCE_PE_CTRL, regs::PE_CTRL_RESET);
        } else {
            self.a.reset_pe();
            self.b.reset_pe();
        }
        self.frozen = false;
        self.errors = 0;
        self.check_eeh();
    }

    /// The enabled windows and the published ranges: at most two, never overlapping, and the
    /// permitted ranges are exactly those windows, one range each (the same on both units and for
    /// any source).
    pub fn check_ranges(&self) {
        for t in [&self.a, &self.b] {
            let ws: Vec<IovaWindow> = t
                .windows()
                .iter()
                .filter(|w| w.enabled)
                .map(|w| {
                    IovaWindow::from_base_size(w.base, w.size)
                        .unwrap_or_else(|| panic!("enabled window {w:x?} is not a range"))
                })
                .collect();
            assert!(ws.len() <= 2, "{ws:x?}");
            if let [x, y] = ws[..] {
                assert!(
                    x.last < y.first || y.last < x.first,
                    "overlapping windows {x} {y}"
                );
            }
            let liobns: Vec<u32> = t.windows().iter().map(|w| w.liobn).collect();
            assert!(liobns.len() <= 2 && (liobns.len() < 2 || liobns[0] != liobns[1]));
            let r = t.permitted_ranges(0x18);
            // One range per window, even when two touch (a mapping cannot cross LIOBNs).
            assert_eq!(
                r,
                PermittedRanges::from_separate_windows(ws.iter().copied())
            );
            assert_eq!(r.windows().len(), ws.len(), "{ws:x?} -> {r}");
            assert_eq!(r, t.permitted_ranges(0x20), "one PE: every source alike");
        }
        assert_eq!(self.a.permitted_ranges(0), self.b.permitted_ranges(0));
        assert_eq!(self.a.windows(), self.b.windows());
    }

    /// EEH state: identical on both units, as the harness expects, and as the registers show it.
    pub fn check_eeh(&self) {
        let (ea, eb) = (self.a.eeh_state(), self.b.eeh_state());
        assert_eq!(ea, eb, "EEH state: caching on vs off");
        assert_eq!(ea.frozen, self.frozen, "frozen {ea:x?}");
        assert_eq!(self.a.is_frozen(), self.frozen);
        assert_eq!(ea.errors, self.errors, "errors since reset {ea:x?}");
        if self.eeh == EehMode::Report {
            assert!(!ea.frozen);
        }
        let state = self.r64(regs::TCE_PE_STATE);
        assert_eq!(state & 1 != 0, self.frozen, "TCE_PE_STATE {state:#x}");
        assert_eq!(state >> 16 & 1 != 0, self.eeh == EehMode::Freeze);
        if self.frozen {
            assert_eq!((state >> 8) & 0xff, u64::from(ea.freeze_reason));
            assert!(ea.freeze_reason != 0 && ea.freeze_reason != reason::FROZEN);
        }
        assert_eq!(self.r64(regs::TCE_ERR_COUNT), ea.errors);
        let info = self.r64(regs::TCE_ERR_INFO);
        assert_eq!(info >> 33 & 1 != 0, ea.first_error.is_some(), "{info:#x}");
        assert_eq!(ea.first_error.is_some(), ea.errors != 0);
        if let Some(l) = ea.first_error {
            assert_eq!(self.r64(regs::TCE_ERR_IOBA), l.iova);
            assert_eq!(info & 0xff, u64::from(l.reason));
        }
    }

    /// One DMA on both units. Before it, `lookup` (twice, on both) must have no side effects and
    /// predict the result; then translate: identical results, well formed, at most five table reads,
    /// and the EEH rules (a recorded fault freezes in freeze mode; while frozen everything fails).
    pub fn dma(&mut self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        let (sa, sb) = (self.a.stats(), self.b.stats());
        let (wa, wb) = (self.ma.writes(), self.mb.writes());
        let la = self.a.lookup(req.source_id, req.iova, req.access);
        let lb = self.b.lookup(req.source_id, req.iova, req.access);
        assert_eq!(la, self.a.lookup(req.source_id, req.iova, req.access));
        assert_eq!(self.a.stats(), sa, "lookup changed the counters");
        assert_eq!(self.b.stats(), sb, "lookup changed the counters");
        assert_eq!(
            (self.ma.writes(), self.mb.writes()),
            (wa, wb),
            "lookup wrote memory"
        );
        assert!(lb.cached.is_none(), "caching=off has a cached TCE {lb:x?}");
        assert!(la.levels.len() as u64 <= MAX_LEVELS, "{la:x?}");
        assert_eq!(
            la.outcome, lb.outcome,
            "lookup: caching on vs off {la:x?} {lb:x?}"
        );
        assert_eq!(la.frozen, self.frozen);

        let reads = self.mb.reads();
        let ra = self.a.translate(req);
        let rb = self.b.translate(req);
        assert!(
            self.mb.reads() - reads <= MAX_LEVELS,
            "{} reads for one DMA",
            self.mb.reads() - reads
        );
        assert_eq!(ra, rb, "translate {req:x?}: caching on vs off");
        match (&ra, &la.outcome) {
            (Ok(t), LookupOutcome::Translation { translation }) => {
                assert_eq!(t, translation, "lookup vs translate {req:x?}")
            }
            (Err(f), LookupOutcome::Fault { reason, .. }) => {
                assert_eq!(f.reason, u32::from(*reason), "lookup vs translate {req:x?}")
            }
            (r, o) => panic!("lookup {o:x?} vs translate {r:x?} for {req:x?}"),
        }
        match &ra {
            Ok(t) => {
                assert!(!self.frozen, "a frozen PE translated {req:x?} -> {t:x?}");
                check_translation(req, t);
            }
            Err(f) => {
                assert_eq!(f.model, "tce");
                assert_eq!(f.iova, req.iova);
                let code = u8::try_from(f.reason).unwrap_or(0);
                assert!(
                    (reason::NO_WINDOW..=reason::FROZEN).contains(&code),
                    "reason {f:?}"
                );
                if self.frozen {
                    assert_eq!(code, reason::FROZEN, "frozen PE: {f:?}");
                    assert!(!f.recorded);
                } else {
                    assert_ne!(code, reason::FROZEN);
                    assert_eq!(f.recorded, req.kind == RequestKind::Untranslated);
                    if f.recorded {
                        self.errors = self.errors.saturating_add(1);
                        if self.eeh == EehMode::Freeze {
                            self.frozen = true;
                        }
                    }
                }
            }
        }
        self.check_eeh();
        ra
    }
}

/// What every successful translation must satisfy, whatever the tables held.
pub fn check_translation(req: &DmaRequest, t: &Translation) {
    assert!(t.page_size.is_power_of_two(), "{t:x?}");
    assert!(t.page_size >= 0x1000, "{t:x?}");
    assert!(t.covers(req.iova), "{t:x?} does not cover {req:x?}");
    assert_eq!(t.iova & (t.page_size - 1), 0, "unaligned page {t:x?}");
    assert_eq!(t.output & (t.page_size - 1), 0, "unaligned output {t:x?}");
    assert!(t.perms.allows(req.access), "{req:x?} -> {t:x?}");
    assert!(!t.perms.exec);
}

/// A request for `iova`: read or write, usually untranslated, any source.
pub fn request(inp: &mut Input, iova: u64) -> DmaRequest {
    let f = inp.u8();
    let mut req = DmaRequest::new(
        [0x18, 0x20, 0, 0xffff][usize::from(f & 3)],
        iova,
        if f & 4 != 0 {
            Access::Write
        } else {
            Access::Read
        },
    );
    if f & 0x38 == 0x38 {
        req.kind = RequestKind::TranslationRequest;
    }
    req
}
