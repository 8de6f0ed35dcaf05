//! Device-level tests: the unit driven through its registers and DmaPort, as the Linux driver and the
//! test device drive it, with tables built in [`TestMemory`].

mod bringup;
mod caching;
mod dump;
mod faults;
mod first_stage;
mod fs_util;
mod fuzz;
mod hooks;
mod ir;
mod legacy;
mod lookup;
mod nested;
mod qi;
mod scalable;
mod widths;

use crate::RegisterWindow;
use std::sync::{Arc, Mutex};

use super::regs;
use super::Vtd;
use crate::mem::{DmaMemory, TestMemory};
use crate::request::{
    Access, DmaFault, DmaPort, DmaRequest, InterruptSink, RequestKind, Translation,
};

/// Guest RAM of the fixtures: 16 MiB; tables are allocated from 1 MiB up.
pub(super) const RAM: u64 = 0x100_0000;
const FIRST_TABLE: u64 = 0x10_0000;
/// The DMA test device 00:03.0.
pub(super) const SID: u16 = 0x18;

/// Records every MSI.
#[derive(Default)]
pub(super) struct Sink(Mutex<Vec<(u64, u32)>>);

impl InterruptSink for Sink {
    fn msi(&self, address: u64, data: u32) {
        self.0.lock().unwrap().push((address, data));
    }
}

pub(super) struct Fx {
    pub vtd: Vtd,
    pub mem: Arc<TestMemory>,
    pub irq: Arc<Sink>,
    next_page: Mutex<u64>,
    /// The driver's copy of GCMD (persistent TE/QIE bits), like `iommu->gcmd` in Linux.
    gcmd: Mutex<u32>,
}

impl Fx {
    pub fn new(opts: &str) -> Self {
        let mem = Arc::new(TestMemory::new(RAM as usize));
        let irq = Arc::new(Sink::default());
        let cfg = opts.parse().expect("test option string");
        Self {
            vtd: Vtd::new(cfg, mem.clone(), irq.clone()),
            mem,
            irq,
            next_page: Mutex::new(FIRST_TABLE),
            gcmd: Mutex::new(0),
        }
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

    /// Sets or clears persistent GCMD bits and issues one-shot `cmd` bits, as Linux does.
    pub fn gcmd(&self, set: u32, clear: u32, cmd: u32) {
        let mut g = self.gcmd.lock().unwrap();
        *g = (*g | set) & !clear;
        self.w32(regs::GCMD, *g | cmd);
    }

    pub fn msis(&self) -> Vec<(u64, u32)> {
        self.irq.0.lock().unwrap().clone()
    }

    /// A zeroed 4 KiB page.
    pub fn alloc(&self) -> u64 {
        let mut n = self.next_page.lock().unwrap();
        let page = *n;
        *n += 0x1000;
        assert!(*n <= RAM, "test RAM exhausted");
        page
    }

    pub fn rd(&self, addr: u64) -> u64 {
        self.mem.read_u64(addr).unwrap()
    }

    pub fn wr(&self, addr: u64, v: u64) {
        self.mem.write_u64(addr, v).unwrap()
    }

    pub fn req(&self, sid: u16, pasid: Option<u32>, iova: u64, access: Access) -> DmaRequest {
        DmaRequest {
            source_id: u32::from(sid),
            pasid,
            iova,
            access,
            privileged: false,
            kind: RequestKind::Untranslated,
        }
    }

    pub fn xlate(
        &self,
        sid: u16,
        pasid: Option<u32>,
        iova: u64,
        access: Access,
    ) -> Result<Translation, DmaFault> {
        self.vtd.translate(&self.req(sid, pasid, iova, access))
    }

    /// The output address for `iova`, or the fault reason.
    pub fn out(&self, sid: u16, pasid: Option<u32>, iova: u64, access: Access) -> Result<u64, u32> {
        self.xlate(sid, pasid, iova, access)
            .map(|t| t.translate(iova))
            .map_err(|f| f.reason)
    }

    // ---- Page tables ----

    /// Maps `iova` to `pa` with a leaf of 2^shift bytes in the `levels`-level table at `top`,
    /// allocating intermediate tables (R+W) as needed.
    pub fn map(
        &self,
        top: u64,
        levels: u32,
        iova: u64,
        pa: u64,
        shift: u32,
        (read, write): (bool, bool),
    ) {
        let leaf = u64::from(read) | u64::from(write) << 1 | if shift > 12 { 1 << 7 } else { 0 };
        self.set_entry(top, levels, iova, shift, pa | leaf);
    }

    /// Writes a raw entry at the level whose pages are 2^shift bytes.
    pub fn set_entry(&self, top: u64, levels: u32, iova: u64, shift: u32, value: u64) {
        let mut table = top;
        for level in (1..=levels).rev() {
            let lshift = 12 + 9 * (level - 1);
            let slot = table + ((iova >> lshift) & 0x1ff) * 8;
            if lshift == shift {
                self.wr(slot, value);
                return;
            }
            let e = self.rd(slot);
            table = if e & 3 == 0 {
                let t = self.alloc();
                self.wr(slot, t | 3);
                t
            } else {
                e & 0x000f_ffff_ffff_f000
            };
        }
        panic!("no level with 2^{shift}-byte pages");
    }

    // ---- Legacy root / context tables ----

    pub fn set_legacy_context(&self, root: u64, sid: u16, lo: u64, hi: u64) {
        let re = root + u64::from(sid >> 8) * 16;
        let mut ctp = self.rd(re);
        if ctp & 1 == 0 {
            ctp = self.alloc() | 1;
            self.wr(re, ctp);
        }
        let ce = (ctp & !0xfff) + u64::from(sid & 0xff) * 16;
        self.wr(ce, lo);
        self.wr(ce + 8, hi);
    }

    // ---- Scalable-mode tables ----

    pub fn set_sm_context(&self, root: u64, sid: u16, q: [u64; 4]) {
        let devfn = sid & 0xff;
        let re = root + u64::from(sid >> 8) * 16 + if devfn >= 0x80 { 8 } else { 0 };
        let mut ctp = self.rd(re);
        if ctp & 1 == 0 {
            ctp = self.alloc() | 1;
            self.wr(re, ctp);
        }
        let ce = (ctp & !0xfff) + u64::from(devfn & 0x7f) * 32;
        for (i, v) in q.iter().enumerate() {
            self.wr(ce + 8 * i as u64, *v);
        }
    }

    pub fn set_pasid_entry(&self, dir: u64, pasid: u32, q: [u64; 8]) {
        let de = dir + u64::from(pasid >> 6) * 8;
        let mut table = self.rd(de);
        if table & 1 == 0 {
            table = self.alloc() | 1;
            self.wr(de, table);
        }
        let pe = (table & !0xfff) + u64::from(pasid & 0x3f) * 64;
        for (i, v) in q.iter().enumerate() {
            self.wr(pe + 8 * i as u64, *v);
        }
    }

    // ---- Queued invalidation ----

    /// Enables QI the way Linux's __dmar_enable_qi does: IQT <- 0, IQA <- base | DW | QS, GCMD.QIE.
    pub fn enable_qi(&self, wide: bool) -> Queue {
        let base = self.alloc();
        self.alloc(); // an 8 KiB queue when wide (QS=1), like Linux
        self.w32(regs::IQT, 0);
        let qs = u64::from(wide);
        self.w64(regs::IQA, base | if wide { regs::IQA_DW } else { 0 } | qs);
        self.gcmd(regs::GCMD_QIE, 0, 0);
        assert_ne!(
            self.r32(regs::GSTS) & regs::GSTS_QIES,
            0,
            "QIES follows at once"
        );
        Queue {
            base,
            wide,
            tail: 0,
            status: self.alloc(),
        }
    }

    /// Writes descriptors at the tail and moves IQT past them (one 32-bit IQT write, like Linux).
    pub fn submit(&self, q: &mut Queue, descs: &[[u64; 4]]) {
        let size = if q.wide { 32 } else { 16 };
        let bytes = 0x1000u64 << u64::from(q.wide);
        for d in descs {
            for (i, v) in d.iter().take(size as usize / 8).enumerate() {
                self.wr(q.base + q.tail + 8 * i as u64, *v);
            }
            q.tail = (q.tail + size) % bytes;
        }
        self.w32(regs::IQT, q.tail as u32);
    }

    /// Submits `descs` followed by a wait descriptor with a status write, and checks it completed.
    pub fn sync(&self, q: &mut Queue, descs: &[[u64; 4]]) {
        self.wr(q.status, 0);
        let mut all = descs.to_vec();
        all.push(wait(true, false, 2, q.status));
        self.submit(q, &all);
        assert_eq!(
            self.rd(q.status) & 0xffff_ffff,
            2,
            "wait descriptor status write"
        );
        assert_eq!(self.r64(regs::IQH), q.tail, "queue drained");
    }
}

pub(super) struct Queue {
    pub base: u64,
    pub wide: bool,
    pub tail: u64,
    pub status: u64,
}

// ---- Descriptors (VT-d 4.x 6.5.2) ----

pub(super) fn cc_global() -> [u64; 4] {
    [1 | 1 << 4, 0, 0, 0]
}

pub(super) fn cc_device(did: u16, sid: u16) -> [u64; 4] {
    [
        1 | 3 << 4 | u64::from(did) << 16 | u64::from(sid) << 32,
        0,
        0,
        0,
    ]
}

pub(super) fn iotlb_global() -> [u64; 4] {
    [2 | 1 << 4, 0, 0, 0]
}

pub(super) fn iotlb_domain(did: u16) -> [u64; 4] {
    [2 | 2 << 4 | u64::from(did) << 16, 0, 0, 0]
}

pub(super) fn iotlb_page(did: u16, addr: u64, am: u64) -> [u64; 4] {
    [2 | 3 << 4 | u64::from(did) << 16, addr | am, 0, 0]
}

pub(super) fn pc_global() -> [u64; 4] {
    [7 | 3 << 4, 0, 0, 0]
}

pub(super) fn pc_pasid(did: u16, pasid: u32) -> [u64; 4] {
    [
        7 | 1 << 4 | u64::from(did) << 16 | u64::from(pasid) << 32,
        0,
        0,
        0,
    ]
}

pub(super) fn wait(sw: bool, irq: bool, data: u32, addr: u64) -> [u64; 4] {
    [
        5 | u64::from(irq) << 4 | u64::from(sw) << 5 | u64::from(data) << 32,
        addr,
        0,
        0,
    ]
}

/// Linux's bring-up of one unit (intel_iommu_init -> init_dmars): QI, root table, global invalidations,
/// fault interrupt, then translation. Returns the queue.
pub(super) fn linux_bringup(fx: &Fx, root: u64, scalable: bool) -> Queue {
    // Early detection and fault draining.
    assert_eq!(fx.r32(regs::VER), 0x10);
    assert_eq!(fx.r32(regs::GSTS), 0);
    assert_eq!(fx.r32(regs::FSTS) & regs::FSTS_PPF, 0);
    let smts = fx.r64(regs::ECAP) & regs::ECAP_SMTS != 0;
    let mut q = fx.enable_qi(smts);
    // RTADDR (TTM 01 for scalable) and SRTP; RTPS is set when the write returns.
    fx.w64(regs::RTADDR, root | if scalable { 1 << 10 } else { 0 });
    fx.gcmd(0, 0, regs::GCMD_SRTP);
    assert_ne!(fx.r32(regs::GSTS) & regs::GSTS_RTPS, 0);
    // Global context-cache, PASID-cache (scalable) and IOTLB invalidations (CAP.ESRTPS is 0).
    fx.sync(&mut q, &[cc_global()]);
    if scalable {
        fx.sync(&mut q, &[pc_global()]);
    }
    fx.sync(&mut q, &[iotlb_global()]);
    // Fault event MSI, unmasked.
    fx.w32(regs::FEDATA, 0x31);
    fx.w32(regs::FEADDR, 0xfee0_0000);
    fx.w32(regs::FEUADDR, 0);
    fx.w32(regs::FECTL, 0);
    // Translation on.
    fx.gcmd(regs::GCMD_TE, 0, 0);
    assert_ne!(fx.r32(regs::GSTS) & regs::GSTS_TES, 0);
    q
}
