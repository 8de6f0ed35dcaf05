//! # VT-d translation benchmarks
//!
//! `cargo bench -p iommu --bench vtd_translate` (about 35 s). Every number is criterion's own
//! measurement of `DmaPort::translate` (or a `DmaAccessor` copy) on a [`Vtd`] brought up the way Linux's
//! intel-iommu driver does it (queued invalidation on, root table latched with SRTP, global context /
//! PASID / IOTLB invalidations through the queue, then GCMD.TE), over [`TestMemory`] (a `Mutex<Vec<u8>>`,
//! so each table read in a walk includes one uncontended lock). The requester is the DMA test device
//! 00:03.0 in domain 1; in scalable mode it uses RID_PASID 0 with a second-stage (PGTT 010b) PASID entry.
//! Before each case is timed its request is checked to translate to the expected address, and the unit's
//! counters are checked to show the path the case claims (hits, walks, misses).
//!
//! ## `translate/*`: ns per translation
//! - `iotlb_hit/{legacy,scalable}_aw48`: caching=on, the same 4 KiB page every time. After the first walk
//!   every call is a context-cache (+ PASID-cache) hit and an IOTLB hit: no table reads at all.
//! - `walk/{legacy,scalable}_aw{48,57}`: caching=off, so every call is a full lookup from the root table:
//!   legacy = root entry, context entry, then a 4-level (aw=48) or 5-level (aw=57) second-stage walk;
//!   scalable = root entry, 256-bit context entry, PASID directory entry, 512-bit PASID entry, then the
//!   walk. This is the honest "miss" cost: caching=off is a model option, and the unit with it gives the
//!   same answers (its tests check this), it just never remembers anything.
//! - `walk_2m/{legacy,scalable}_aw48`: as `walk`, with the IOVA in a 2 MiB superpage (the walk stops at
//!   level 2, one table read fewer).
//! - `iotlb_miss/scalable_aw48`: caching=on, sweeping 4096 distinct 4 KiB pages in order, four times the
//!   IOTLB's capacity (1024, oldest-first eviction), so every call misses the IOTLB and walks 4 levels,
//!   then inserts and evicts; the context and PASID caches hit. The cost of a miss in a warm unit.
//!
//! - `nested_walk/scalable_aw48` and `nested_hit/scalable_aw48`: PASID entry with PGTT 011b (nested).
//!   Stage 1 is a 4-level IA-32e table tree whose four table pages and data page are stage-2 input
//!   addresses mapped by a 4-level stage 2 with 4 KiB pages (identity, so the test can check the answer).
//!   A miss (caching=off) reads root, context, PASID directory and PASID entries, then for each of the
//!   four stage-1 levels walks stage 2 for the table's address (4 reads) and reads the stage-1 entry
//!   (1 read), then walks stage 2 for the output (4 reads): 24 page-table reads. A/D bits are preset so
//!   the walk writes nothing. `nested_hit` is the same with caching=on (an IOTLB hit).
//!
//! ## `dma_copy_4k/*`: one 4 KiB copy, reported as throughput
//! A `DmaAccessor::read` of one page-aligned 4 KiB source page into a buffer followed by a
//! `DmaAccessor::write` of it to a destination page (what the test device's DMA_CMD_COPY does): two
//! translations and two 4 KiB memory copies per iteration.
//! - `identity`: through [`IdentityPort`] (no IOMMU), the baseline.
//! - `vtd_cached`: scalable aw=48, caching=on (both translations IOTLB hits).
//! - `vtd_uncached`: scalable aw=48, caching=off (two full lookups per copy).

mod common;

use iommu::RegisterWindow;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use iommu::mem::TestMemory;
use iommu::vtd::{regs, Vtd, VtdStats};
use iommu::{Access, DmaAccessor, DmaMemory, DmaPort, DmaRequest, IdentityPort, Translation};

/// 16 MiB of guest RAM; tables are allocated from 1 MiB, data pages live from 8 MiB.
const RAM: u64 = 0x100_0000;
const FIRST_TABLE: u64 = 0x10_0000;
const DATA: u64 = 0x80_0000;
/// The DMA test device 00:03.0.
const SID: u16 = 0x18;
const DID: u64 = 1;
/// IOVAs the cases use (inside a 39-bit aperture, so every width maps them the same way).
const IOVA_4K: u64 = 0x12_3456_7000;
const IOVA_2M: u64 = 0x20_0040_0000;
const IOVA_SWEEP: u64 = 0x40_0000_0000;
const SWEEP_PAGES: u64 = 4096;

/// A unit over its own memory, brought up like Linux, with one device mapped.
struct Bench {
    vtd: Arc<Vtd>,
    mem: Arc<TestMemory>,
    next_page: u64,
    /// Second-stage top-level table of domain 1.
    top: u64,
    levels: u32,
}

impl Bench {
    fn new(opts: &str) -> Self {
        let mem = Arc::new(TestMemory::new(RAM as usize));
        let cfg = opts.parse().expect("bench option string");
        let vtd = Arc::new(Vtd::new(cfg, mem.clone(), Arc::new(common::NoIrq)));
        let mut b = Self {
            vtd,
            mem,
            next_page: FIRST_TABLE,
            top: 0,
            levels: 0,
        };
        b.bring_up();
        b
    }

    fn alloc(&mut self) -> u64 {
        let page = self.next_page;
        self.next_page += 0x1000;
        assert!(self.next_page <= DATA, "table area exhausted");
        page
    }

    fn wr(&self, addr: u64, v: u64) {
        self.mem.write_u64(addr, v).expect("bench RAM");
    }

    fn rd(&self, addr: u64) -> u64 {
        self.mem.read_u64(addr).expect("bench RAM")
    }

    fn w32(&self, off: u64, v: u32) {
        self.vtd.write32(off, v);
    }

    fn w64(&self, off: u64, v: u64) {
        self.vtd.write64(off, v);
    }

    fn r32(&self, off: u64) -> u32 {
        self.vtd.read32(off)
    }

    fn r64(&self, off: u64) -> u64 {
        self.vtd.read64(off)
    }

    /// intel_iommu_init -> init_dmars: QI, root table + SRTP, global invalidations through the queue
    /// (waited on with a status write), then translation enable. Also builds the device's context (and
    /// PASID) entries and an empty second-stage table at the unit's widest AGAW.
    fn bring_up(&mut self) {
        let cap = self.r64(regs::CAP);
        let ecap = self.r64(regs::ECAP);
        let scalable = ecap & regs::ECAP_SMTS != 0;
        let mgaw = ((cap >> regs::CAP_MGAW_SHIFT) & 0x3f) + 1;
        let aw_code = (mgaw - 30) / 9;
        self.levels = aw_code as u32 + 2;

        // Queued invalidation (__dmar_enable_qi): 256-bit descriptors in an 8 KiB queue when SMTS.
        let queue = self.alloc();
        self.alloc();
        let status = self.alloc();
        self.w32(regs::IQT, 0);
        let iqa = if scalable {
            queue | regs::IQA_DW | 1
        } else {
            queue
        };
        self.w64(regs::IQA, iqa);
        self.w32(regs::GCMD, regs::GCMD_QIE);

        // Root table with this device's context entry.
        let root = self.alloc();
        let ctx_table = self.alloc();
        self.top = self.alloc();
        self.wr(root + u64::from(SID >> 8) * 16, ctx_table | 1);
        let devfn = u64::from(SID & 0xff);
        if scalable {
            let dir = self.alloc();
            let pasid_table = self.alloc();
            // P, PASIDE clear, PDTS 0 (128 directory entries), RID_PASID 0.
            self.wr(ctx_table + (devfn & 0x7f) * 32, dir | 1);
            self.wr(dir, pasid_table | 1);
            // PASID 0: P, AW, PGTT 010b (second stage), DID.
            self.wr(pasid_table, self.top | 2 << 6 | aw_code << 2 | 1);
            self.wr(pasid_table + 8, DID);
        } else {
            self.wr(ctx_table + devfn * 16, self.top | 1);
            self.wr(ctx_table + devfn * 16 + 8, aw_code | DID << 8);
        }
        let ttm = if scalable { regs::TTM_SCALABLE } else { 0 };
        self.w64(regs::RTADDR, root | ttm << regs::RTADDR_TTM_SHIFT);
        self.w32(regs::GCMD, regs::GCMD_QIE | regs::GCMD_SRTP);

        // Global context-cache, PASID-cache (scalable) and IOTLB invalidation, then a wait descriptor.
        let mut descs: Vec<[u64; 2]> = vec![[1 | 1 << 4, 0]];
        if scalable {
            descs.push([7 | 3 << 4, 0]);
        }
        descs.push([2 | 1 << 4, 0]);
        descs.push([5 | 1 << 5 | 0x5a << 32, status]);
        let size = if scalable { 32 } else { 16 };
        let mut tail = 0u64;
        for d in &descs {
            self.wr(queue + tail, d[0]);
            self.wr(queue + tail + 8, d[1]);
            tail += size;
        }
        self.w32(regs::IQT, tail as u32);
        assert_eq!(self.rd(status), 0x5a, "invalidation wait completed");
        assert_eq!(self.r64(regs::IQH), tail, "queue drained");

        self.w32(regs::GCMD, regs::GCMD_QIE | regs::GCMD_TE);
        assert_ne!(
            self.r32(regs::GSTS) & regs::GSTS_TES,
            0,
            "translation enabled"
        );
    }

    /// Maps `iova` to `pa` with a read/write leaf of 2^shift bytes, allocating tables as needed.
    fn map(&mut self, iova: u64, pa: u64, shift: u32) {
        let mut table = self.top;
        for level in (1..=self.levels).rev() {
            let lshift = 12 + 9 * (level - 1);
            let slot = table + ((iova >> lshift) & 0x1ff) * 8;
            if lshift == shift {
                let ps = if shift > 12 { 1 << 7 } else { 0 };
                self.wr(slot, pa | ps | 3);
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

    /// Turns PASID 0 of the device into a nested entry (PGTT 011b) whose 4-level stage-1 tree maps
    /// `iova` to `data` with 4 KiB pages; every stage-1 table page and the data page are mapped 1:1 by
    /// stage 2 (the existing second-stage tree). Scalable mode only.
    fn make_nested(&mut self, iova: u64, data: u64) {
        // Stage-1 entry bits (IA-32e): P, R/W, U/S, A, D (preset so translate writes nothing).
        const FS_LEAF: u64 = 1 | 1 << 1 | 1 << 2 | 1 << 5 | 1 << 6;
        const FS_TABLE: u64 = 1 | 1 << 1 | 1 << 2 | 1 << 5;
        let tables: Vec<u64> = (0..4).map(|_| self.alloc()).collect();
        for (i, &t) in tables.iter().enumerate() {
            let level = 4 - i as u32;
            let slot = t + ((iova >> (12 + 9 * (level - 1))) & 0x1ff) * 8;
            let entry = if level == 1 {
                data | FS_LEAF
            } else {
                tables[i + 1] | FS_TABLE
            };
            self.wr(slot, entry);
            self.map(t, t, 12);
        }
        self.map(data, data, 12);
        // Rewrite the PASID entry (VT-d 9.6): qw0 SLPTPTR | PGTT 011b | AW | P, qw1 DID, qw2 FSPTPTR
        // (FLPM 00b: 4-level first stage).
        let root = self.r64(regs::RTADDR) & !0xfff;
        let ctx_table = self.rd(root + u64::from(SID >> 8) * 16) & !0xfff;
        let dir = self.rd(ctx_table + u64::from(SID & 0x7f) * 32) & !0xfff;
        let pasid_table = self.rd(dir) & !0xfff;
        let aw_code = u64::from(self.levels - 2);
        self.wr(pasid_table, self.top | 3 << 6 | aw_code << 2 | 1);
        self.wr(pasid_table + 8, DID);
        self.wr(pasid_table + 16, tables[0]);
    }

    fn translate(&self, iova: u64) -> Translation {
        self.vtd
            .translate(&DmaRequest::new(u32::from(SID), iova, Access::Read))
            .expect("bench mapping translates")
    }

    fn stats(&self) -> VtdStats {
        self.vtd.stats()
    }
}

fn opts(scalable: bool, aw: u32, caching: bool) -> String {
    format!(
        "vtd,aw={aw},sm={},caching={}",
        if scalable { "on" } else { "off" },
        if caching { "on" } else { "off" }
    )
}

fn mode(scalable: bool) -> &'static str {
    if scalable {
        "scalable"
    } else {
        "legacy"
    }
}

/// A unit with IOVA_4K mapped to a 4 KiB data page; checks the translation.
fn one_page(scalable: bool, aw: u32, caching: bool) -> Bench {
    let mut b = Bench::new(&opts(scalable, aw, caching));
    b.map(IOVA_4K, DATA, 12);
    let t = b.translate(IOVA_4K + 0x10);
    assert_eq!(
        (t.translate(IOVA_4K + 0x10), t.page_size),
        (DATA + 0x10, 0x1000)
    );
    b
}

fn bench_translate(c: &mut Criterion) {
    let mut g = c.benchmark_group("translate");

    for scalable in [false, true] {
        let b = one_page(scalable, 48, true);
        let before = b.stats();
        g.bench_function(format!("iotlb_hit/{}_aw48", mode(scalable)), |bn| {
            bn.iter(|| black_box(b.translate(black_box(IOVA_4K))))
        });
        let after = b.stats();
        assert_eq!(after.walks, before.walks, "hits never walk");
        // (Nothing ran when a filter on the command line skipped this case.)
        if after.translations > before.translations {
            assert!(after.iotlb_hits > before.iotlb_hits);
        }
    }

    for aw in [48, 57] {
        for scalable in [false, true] {
            let b = one_page(scalable, aw, false);
            let before = b.stats();
            g.bench_function(format!("walk/{}_aw{aw}", mode(scalable)), |bn| {
                bn.iter(|| black_box(b.translate(black_box(IOVA_4K))))
            });
            let after = b.stats();
            let calls = after.translations - before.translations;
            assert_eq!(after.walks - before.walks, calls, "every call walks");
        }
    }

    for scalable in [false, true] {
        let mut b = Bench::new(&opts(scalable, 48, false));
        b.map(IOVA_2M, DATA, 21);
        let t = b.translate(IOVA_2M + 0x1234);
        assert_eq!((t.output, t.page_size), (DATA, 0x20_0000));
        let before = b.stats();
        g.bench_function(format!("walk_2m/{}_aw48", mode(scalable)), |bn| {
            bn.iter(|| black_box(b.translate(black_box(IOVA_2M + 0x1234))))
        });
        let after = b.stats();
        assert_eq!(
            after.walks - before.walks,
            after.translations - before.translations
        );
    }

    for caching in [false, true] {
        let mut b = Bench::new(&format!("{},fl=on,nest=on", opts(true, 48, caching)));
        b.make_nested(IOVA_4K, DATA);
        let t = b.translate(IOVA_4K + 0x10);
        assert_eq!(
            (t.translate(IOVA_4K + 0x10), t.page_size),
            (DATA + 0x10, 0x1000)
        );
        let before = b.stats();
        let name = if caching {
            "nested_hit/scalable_aw48"
        } else {
            "nested_walk/scalable_aw48"
        };
        g.bench_function(name, |bn| {
            bn.iter(|| black_box(b.translate(black_box(IOVA_4K))))
        });
        let after = b.stats();
        let calls = after.translations - before.translations;
        if caching {
            assert_eq!(after.walks, before.walks, "nested hits never walk");
        } else {
            assert_eq!(after.walks - before.walks, calls, "every call walks");
        }
    }

    {
        let mut b = Bench::new(&opts(true, 48, true));
        for i in 0..SWEEP_PAGES {
            b.map(IOVA_SWEEP + (i << 12), DATA + ((i % 256) << 12), 12);
        }
        // Two laps to warm up: from then on every page was evicted before it comes round again.
        for i in 0..2 * SWEEP_PAGES {
            b.translate(IOVA_SWEEP + ((i % SWEEP_PAGES) << 12));
        }
        let before = b.stats();
        let mut i = 0u64;
        g.bench_function("iotlb_miss/scalable_aw48", |bn| {
            bn.iter(|| {
                let iova = IOVA_SWEEP + (i << 12);
                i = (i + 1) % SWEEP_PAGES;
                black_box(b.translate(black_box(iova)))
            })
        });
        let after = b.stats();
        assert_eq!(after.iotlb_hits, before.iotlb_hits, "the sweep never hits");
        assert_eq!(
            after.walks - before.walks,
            after.translations - before.translations
        );
        if after.translations > before.translations {
            assert!(after.iotlb_evictions > before.iotlb_evictions);
            assert!(after.context_cache_hits > before.context_cache_hits);
        }
    }

    g.finish();
}

/// Copies one 4 KiB page from IOVA_4K to IOVA_4K + 4 KiB through `dma`, checking it once.
fn copy_case(c: &mut Criterion, name: &str, dma: DmaAccessor, src_iova: u64, src_gpa: u64) {
    let dst_iova = src_iova + 0x1000;
    let pattern: Vec<u8> = (0..0x1000u32).map(|i| (i * 7) as u8).collect();
    dma.mem.write(src_gpa, &pattern).expect("bench RAM");
    let mut buf = vec![0u8; 0x1000];
    let copy = |buf: &mut [u8]| {
        dma.read(src_iova, None, buf).expect("source readable");
        dma.write(dst_iova, None, buf)
            .expect("destination writable");
    };
    copy(&mut buf);
    let mut check = vec![0u8; 0x1000];
    dma.mem
        .read(src_gpa + 0x1000, &mut check)
        .expect("bench RAM");
    assert_eq!(check, pattern, "{name}: the copy landed");

    let mut g = c.benchmark_group("dma_copy_4k");
    g.throughput(Throughput::Bytes(0x1000));
    g.bench_function(name, |bn| bn.iter(|| copy(black_box(&mut buf))));
    g.finish();
}

fn bench_copy(c: &mut Criterion) {
    let mem = Arc::new(TestMemory::new(RAM as usize));
    copy_case(
        c,
        "identity",
        DmaAccessor::new(Arc::new(IdentityPort), mem, u32::from(SID)),
        DATA,
        DATA,
    );
    for caching in [true, false] {
        let mut b = Bench::new(&opts(true, 48, caching));
        b.map(IOVA_4K, DATA, 12);
        b.map(IOVA_4K + 0x1000, DATA + 0x1000, 12);
        let dma = DmaAccessor::new(b.vtd.clone(), b.mem.clone(), u32::from(SID));
        let before = b.stats();
        let name = if caching {
            "vtd_cached"
        } else {
            "vtd_uncached"
        };
        copy_case(c, name, dma, IOVA_4K, DATA);
        let after = b.stats();
        let calls = after.translations - before.translations;
        if caching {
            assert!(after.iotlb_hits - before.iotlb_hits >= calls - 2);
        } else {
            assert_eq!(after.walks - before.walks, calls);
        }
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_translate, bench_copy
}
criterion_main!(benches);
