//! Shared by the VT-d fuzz targets (included with `#[path]`, not a target itself): an input reader, a
//! unit over test memory with register helpers, the Linux-style bring-up and the checks every
//! translation must pass.
#![allow(dead_code)]

use iommu::RegisterWindow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use iommu::mem::TestMemory;
use iommu::vtd::{regs, Vtd, VtdConfig};
use iommu::{Access, DmaMemory, DmaRequest, MemError, RequestKind, Translation};

#[path = "input.rs"]
mod input;
pub use input::{CountIrq, Input};

/// A configuration from one byte: aw (39/48/57), sm, caching, nfr 1..=16, plus `extra` options
/// (dropped if the model refuses the combination). Parsed from the user-facing option string, so every
/// other option keeps the default the model derives from these.
pub fn config(b: u8, extra: &str) -> VtdConfig {
    let base = format!(
        "vtd,aw={},sm={},caching={},nfr={}",
        [39, 48, 57, 48][usize::from(b & 3)],
        if b & 4 != 0 { "on" } else { "off" },
        if b & 8 != 0 { "on" } else { "off" },
        u16::from(b >> 4) + 1
    );
    let with_extra = if extra.is_empty() {
        base.clone()
    } else {
        format!("{base},{extra}")
    };
    with_extra
        .parse()
        .or_else(|_| base.parse())
        .expect("aw/sm/caching/nfr alone always parse")
}

/// [`TestMemory`] that counts the writes made to it (to notice the unit writing memory: wait
/// descriptor status words, accessed/dirty flags).
pub struct Tracked {
    mem: TestMemory,
    pub writes: AtomicU64,
    size: u64,
}

impl Tracked {
    pub fn new(size: u64) -> Self {
        Self {
            mem: TestMemory::new(size as usize),
            writes: AtomicU64::new(0),
            size,
        }
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// The whole memory.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.size as usize];
        self.mem
            .read(0, &mut b)
            .expect("the whole memory is readable");
        b
    }
}

impl DmaMemory for Tracked {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.mem.read(addr, buf)
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.mem.write(addr, buf)
    }

    fn compare_exchange_u64(&self, addr: u64, current: u64, new: u64) -> Result<u64, MemError> {
        let found = self.mem.compare_exchange_u64(addr, current, new)?;
        if found == current {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(found)
    }
}

/// A VT-d unit over its own test memory.
pub struct Unit {
    pub vtd: Vtd,
    pub mem: Arc<Tracked>,
}

impl Unit {
    pub fn new(cfg: VtdConfig, mem_size: u64) -> Self {
        let mem = Arc::new(Tracked::new(mem_size));
        let vtd = Vtd::new(cfg, mem.clone(), Arc::new(CountIrq::default()));
        Self { vtd, mem }
    }

    pub fn r32(&self, off: u64) -> u32 {
        self.vtd.read32(off)
    }

    pub fn r64(&self, off: u64) -> u64 {
        self.vtd.read64(off)
    }

    pub fn w32(&self, off: u64, v: u32) {
        self.vtd.write32(off, v);
    }

    pub fn w64(&self, off: u64, v: u64) {
        self.vtd.write64(off, v);
    }

    pub fn wr(&self, addr: u64, v: u64) {
        // Harness writes outside memory are simply dropped (the address was fuzz-chosen).
        let _ = self.mem.write_u64(addr, v);
    }

    pub fn rd(&self, addr: u64) -> u64 {
        self.mem.read_u64(addr).unwrap_or(0)
    }

    pub fn smts(&self) -> bool {
        self.r64(regs::ECAP) & regs::ECAP_SMTS != 0
    }

    /// The widest AW code the unit supports (1: 39-bit, 2: 48-bit, 3: 57-bit).
    pub fn max_aw_code(&self) -> u64 {
        let mgaw = ((self.r64(regs::CAP) >> regs::CAP_MGAW_SHIFT) & 0x3f) + 1;
        (mgaw.saturating_sub(30) / 9).clamp(1, 3)
    }

    pub fn gsts(&self) -> u32 {
        self.r32(regs::GSTS)
    }

    /// Linux's bring-up (intel_iommu_init -> init_dmars): QI with the queue at `queue` (256-bit
    /// descriptors in 8 KiB when ECAP.SMTS), RTADDR + SRTP, then TE. Returns the queue tail (0).
    pub fn bring_up(&self, queue: u64, root: u64, scalable: bool) -> u64 {
        let wide = self.smts();
        self.w32(regs::IQT, 0);
        let iqa = if wide {
            queue | regs::IQA_DW | 1
        } else {
            queue
        };
        self.w64(regs::IQA, iqa);
        self.w32(regs::GCMD, regs::GCMD_QIE);
        let ttm = if scalable { regs::TTM_SCALABLE } else { 0 };
        self.w64(regs::RTADDR, root | ttm << regs::RTADDR_TTM_SHIFT);
        self.w32(regs::GCMD, regs::GCMD_QIE | regs::GCMD_SRTP);
        self.w32(regs::FEADDR, 0xfee0_0000);
        self.w32(regs::FEDATA, 0x30);
        self.w32(regs::FECTL, 0);
        self.w32(regs::GCMD, regs::GCMD_QIE | regs::GCMD_TE);
        0
    }

    /// Submits `descs` (qw0, qw1; qw2/qw3 zero when 256-bit) at the current tail of the queue IQA
    /// names, with the width IQA selects, and moves IQT past them with one 32-bit write.
    pub fn submit(&self, descs: &[[u64; 2]]) {
        let iqa = self.r64(regs::IQA);
        let size = if iqa & regs::IQA_DW != 0 { 32 } else { 16 };
        let bytes = 0x1000u64 << (iqa & regs::IQA_QS_MASK);
        let base = iqa & regs::IQA_BASE_MASK;
        let mut tail = self.r64(regs::IQT) & regs::IQ_OFFSET_MASK;
        for d in descs {
            let slot = base.wrapping_add(tail % bytes);
            self.wr(slot, d[0]);
            self.wr(slot.wrapping_add(8), d[1]);
            if size == 32 {
                self.wr(slot.wrapping_add(16), 0);
                self.wr(slot.wrapping_add(24), 0);
            }
            tail = (tail + size) % bytes;
        }
        self.w32(regs::IQT, tail as u32);
    }
}

/// Registers worth hitting often (both halves of the 64-bit ones are reached with +4).
pub const HOT: [u64; 24] = [
    regs::GCMD,
    regs::RTADDR,
    regs::CCMD,
    regs::FSTS,
    regs::FECTL,
    regs::FEDATA,
    regs::FEADDR,
    regs::FEUADDR,
    regs::IQH,
    regs::IQT,
    regs::IQA,
    regs::ICS,
    regs::IECTL,
    regs::IEDATA,
    regs::IEADDR,
    regs::IEUADDR,
    regs::IQERCD,
    regs::IVA,
    regs::IOTLB,
    regs::FRO_OFFSET,
    regs::FRO_OFFSET + 8,
    regs::FRO_OFFSET + 16 + 8,
    regs::FRO_OFFSET + 7 * 16 + 8,
    regs::FRO_OFFSET + 127 * 16 + 8,
];

/// What every successful translation must satisfy, whatever the tables held.
pub fn check_translation(req: &DmaRequest, t: &Translation) {
    assert!(
        t.page_size.is_power_of_two(),
        "page size {:#x} for {req:?}",
        t.page_size
    );
    assert!(t.covers(req.iova), "{t:x?} does not cover {req:x?}");
    assert_eq!(t.iova & (t.page_size - 1), 0, "unaligned page {t:x?}");
    assert_eq!(t.output & (t.page_size - 1), 0, "unaligned output {t:x?}");
    // Pages are whole: the last byte's output address does not wrap.
    assert!(t.output.checked_add(t.page_size - 1).is_some(), "{t:x?}");
    if t.page_size != 1 << 63 {
        // Remapped (not translation-disabled) pages never reach the interrupt range: a page that
        // would overlap it is narrowed to the 4 KiB page actually used, or refused.
        let last = t.output + (t.page_size - 1);
        assert!(
            last < regs::MSI_FIRST || t.output > regs::MSI_LAST,
            "{req:x?} -> {t:x?} overlaps the interrupt range"
        );
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
