//! # POWER TCE translation and hypercall benchmarks
//!
//! `cargo bench -p iommu --bench tce_translate` (pass `-- --measurement-time 3` for steadier
//! numbers). Every number is criterion's own measurement on a [`Tce`] over [`TestMemory`] (a
//! `Mutex<Vec<u8>>`, so each table read includes one uncontended lock). Before each case is timed its
//! request is checked to translate to the expected page, and afterwards the unit's counters are
//! checked to show the path the case claims (TCE cache hits, walks, hypercall successes).
//!
//! ## `translate/*`: ns per `DmaPort::translate`
//! - `cache_hit`: caching=on, the same 4 KiB page every time through a 1-level table programmed
//!   through the hardware view (TVE): a TCE cache hit, no table read.
//! - `miss_1level`: the hardware view, a 1-level table of 8192 TCEs (64 KiB level table), sweeping
//!   all 8192 pages in order: twice the TCE cache's capacity (4096; a full cache starts over), so
//!   every call misses and reads one big-endian entry.
//! - `miss_3level`: the same sweep through a 3-level table of 4 KiB level tables (3 reads per call).
//! - `ddw_2m/{miss,hit}`: the default 64-bit window (2^45 bytes at 0x800000000000000, 2 MiB pages,
//!   a 3-level table of 4 KiB levels in the hypervisor's pool) filled with H_PUT_TCE: the 8192-page
//!   sweep (every call walks 3 levels) and the same page every time (a hit).
//! - `nocache/ddw_2m`: caching=off, the same 2 MiB page every time: every call walks 3 levels.
//!
//! ## `hcall/*`: ns per hypercall
//! - `put_tce`: H_PUT_TCE into the default 32-bit window (2 levels of 4 KiB), cycling over 8192
//!   already-allocated TCEs (argument checks, TCE check, a 2-level walk, one write, cache update).
//! - `put_tce_indirect_512`: H_PUT_TCE_INDIRECT of a 512-entry list (one page), cycling over 16
//!   list-sized ranges of the same window: all 512 TCEs checked, then written.

mod common;

use iommu::RegisterWindow;
use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;

use common::Counters;
use criterion::{criterion_group, criterion_main, Criterion};
use iommu::mem::TestMemory;
use iommu::tce::hcall::{H_GET_TCE, H_PUT_TCE, H_PUT_TCE_INDIRECT};
use iommu::tce::regs::{self, TveCfg};
use iommu::tce::window::{DMA64_START, LIOBNS};
use iommu::tce::{Tce, TceStats};
use iommu::{Access, DmaMemory, DmaPort, DmaRequest, Translation};

/// 32 MiB of guest RAM: hardware-view tables from 1 MiB, the TCE list at 15 MiB, the hypervisor's
/// pool at 16 MiB (4 MiB), data pages from 24 MiB (2 MiB aligned).
const RAM: u64 = 0x200_0000;
const FIRST_TABLE: u64 = 0x10_0000;
const LIST: u64 = 0xf0_0000;
const POOL: u64 = 0x100_0000;
const POOL_SIZE: u64 = 0x40_0000;
const DATA: u64 = 0x180_0000;
const SWEEP: u64 = 8192;
/// The hardware-view window: 8192 4 KiB pages at 1 GiB (window 0 reprogrammed).
const HW_BASE: u64 = 0x4000_0000;

const TCE_RW: u64 = 3;

struct Bench {
    tce: Tce,
    mem: Arc<TestMemory>,
    next_table: u64,
}

impl Bench {
    fn new(caching: bool) -> Self {
        let mem = Arc::new(TestMemory::new(RAM as usize));
        let cfg = format!(
            "tce,caching={},pool={POOL:#x}+{POOL_SIZE:#x}",
            if caching { "on" } else { "off" }
        )
        .parse()
        .expect("bench option string");
        let tce = Tce::new(cfg, mem.clone(), Arc::new(common::NoIrq));
        Self {
            tce,
            mem,
            next_table: FIRST_TABLE,
        }
    }

    fn alloc(&mut self, bytes: u64) -> u64 {
        let t = (self.next_table + bytes - 1) & !(bytes - 1);
        self.next_table = t + bytes;
        assert!(self.next_table <= LIST, "table area exhausted");
        t
    }

    fn be(&self, addr: u64, v: u64) {
        self.mem.write(addr, &v.to_be_bytes()).expect("bench RAM");
    }

    fn rbe(&self, addr: u64) -> u64 {
        let mut b = [0u8; 8];
        self.mem.read(addr, &mut b).expect("bench RAM");
        u64::from_be_bytes(b)
    }

    fn w64(&self, off: u64, v: u64) {
        self.tce.write64(off, v);
    }

    fn r64(&self, off: u64) -> u64 {
        self.tce.read64(off)
    }

    /// Programs TVE 0 (disable, table, base, size, enable) with 4 KiB pages; returns the top table.
    fn hw_window(&mut self, levels: u8, table_shift: u8, size: u64) -> u64 {
        let top = self.alloc(1 << table_shift);
        let off = regs::TVE_BASE_OFFSET;
        self.w64(off + regs::TVE_CFG, 0);
        self.w64(off + regs::TVE_TABLE, top);
        self.w64(off + regs::TVE_BASE, HW_BASE);
        self.w64(off + regs::TVE_SIZE, size);
        let cfg = TveCfg {
            enable: true,
            levels,
            page_shift: 12,
            table_shift,
        };
        self.w64(off + regs::TVE_CFG, cfg.encode());
        assert_eq!(self.r64(off + regs::TVE_STATUS), regs::STATUS_ENABLED);
        top
    }

    /// Writes TCE `index` of a hardware-view table (allocating lower levels).
    fn hw_map(&mut self, top: u64, levels: u8, table_shift: u8, index: u64, tce: u64) {
        let bits = u32::from(table_shift) - 3;
        let mut table = top;
        for level in 0..levels {
            let shift = u32::from(levels - 1 - level) * bits;
            let slot = table + ((index >> shift) & ((1 << bits) - 1)) * 8;
            if level + 1 == levels {
                self.be(slot, tce);
                return;
            }
            let e = self.rbe(slot);
            table = if e & TCE_RW != 0 {
                e & !0xfff
            } else {
                let t = self.alloc(1 << table_shift);
                self.be(slot, t | TCE_RW);
                t
            };
        }
    }

    fn translate(&self, iova: u64) -> Translation {
        self.tce
            .translate(&DmaRequest::new(0x18, iova, Access::Read))
            .expect("bench mapping translates")
    }

    fn hcall(&self, op: u64, args: &[u64]) -> Vec<u64> {
        self.tce.hcall(op, args)
    }

    fn stats(&self) -> TceStats {
        self.tce.stats()
    }

    fn counters(&self) -> Counters {
        let s = self.stats();
        Counters {
            translations: s.translations,
            walks: s.walks,
            hits: s.cache_hits,
        }
    }
}

/// Times `translate(iova)` for the same IOVA every call; checks hits only (`hit`) or a walk per call.
fn same_page(c: &mut Criterion, name: &str, b: &Bench, iova: u64, hit: bool) {
    common::same_page(c, name, || b.translate(iova), || b.counters(), hit);
}

/// Times translations sweeping `SWEEP` pages of 2^`shift` bytes from `base` in order; checks every
/// call walked.
fn sweep(c: &mut Criterion, name: &str, b: &Bench, base: u64, shift: u32) {
    // An empty TCE cache first (TCE_KILL all): earlier checks and cases left pages in it.
    b.w64(regs::TCE_KILL, regs::KILL_ALL);
    let translate = |n: u64| b.translate(base + (n << shift));
    common::sweep(c, name, 0, SWEEP, translate, || b.counters());
}

/// A hardware-view window of `SWEEP` 4 KiB pages, each mapped to its own data page; checks the ends.
fn hw_sweep_unit(levels: u8, table_shift: u8) -> Bench {
    let mut b = Bench::new(true);
    let top = b.hw_window(levels, table_shift, SWEEP << 12);
    for n in 0..SWEEP {
        b.hw_map(top, levels, table_shift, n, (DATA + (n << 12)) | TCE_RW);
    }
    for n in [0, SWEEP - 1] {
        let t = b.translate(HW_BASE + (n << 12) + 0x10);
        assert_eq!((t.output, t.page_size), (DATA + (n << 12), 0x1000));
    }
    b
}

fn bench_translate(c: &mut Criterion) {
    let b1 = hw_sweep_unit(1, 16);
    same_page(c, "translate/cache_hit", &b1, HW_BASE + 0x5000, true);
    sweep(c, "translate/miss_1level", &b1, HW_BASE, 12);
    let b3 = hw_sweep_unit(3, 12);
    sweep(c, "translate/miss_3level", &b3, HW_BASE, 12);

    // The default 64-bit window, filled by H_PUT_TCE (2 MiB pages: every TCE maps one of four data
    // pages, 2 MiB aligned).
    let d = Bench::new(true);
    let l1 = u64::from(LIOBNS[1]);
    for n in 0..SWEEP {
        let tce = (DATA + ((n % 4) << 21)) | TCE_RW;
        assert_eq!(d.hcall(H_PUT_TCE, &[l1, DMA64_START + (n << 21), tce]), [0]);
    }
    let t = d.translate(DMA64_START + ((SWEEP - 1) << 21) + 0x10);
    assert_eq!((t.output, t.page_size), (DATA + (3 << 21), 0x20_0000));
    sweep(c, "translate/ddw_2m/miss", &d, DMA64_START, 21);
    same_page(c, "translate/ddw_2m/hit", &d, DMA64_START + (5 << 21), true);

    let o = Bench::new(false);
    assert_eq!(o.hcall(H_PUT_TCE, &[l1, DMA64_START, DATA | TCE_RW]), [0]);
    let t = o.translate(DMA64_START + 0x1234);
    assert_eq!(t.translate(DMA64_START + 0x1234), DATA + 0x1234);
    same_page(c, "translate/nocache/ddw_2m", &o, DMA64_START, false);
}

/// A read/write TCE for one of the 2048 data pages (H_PUT_TCE refuses pages outside RAM).
fn data_4k(n: u64) -> u64 {
    (DATA + ((n % 2048) << 12)) | TCE_RW
}

fn bench_hcall(c: &mut Criterion) {
    let b = Bench::new(true);
    let l0 = u64::from(LIOBNS[0]);
    // Allocate the lower levels first: the timed calls only overwrite.
    for n in 0..SWEEP {
        assert_eq!(b.hcall(H_PUT_TCE, &[l0, n << 12, data_4k(n)]), [0]);
    }
    assert_eq!(b.hcall(H_GET_TCE, &[l0, 7 << 12]), [0, data_4k(7)]);
    let i = Cell::new(0u64);
    let before = b.stats();
    c.bench_function("hcall/put_tce", |bn| {
        bn.iter(|| {
            let n = i.get();
            i.set((n + 1) % SWEEP);
            black_box(b.hcall(H_PUT_TCE, &[l0, n << 12, data_4k(n)]))
        })
    });
    let after = b.stats();
    assert_eq!(
        after.hcall_failures, before.hcall_failures,
        "every put succeeded"
    );
    assert_eq!(
        after.pool_pages_used, before.pool_pages_used,
        "nothing allocated"
    );

    // One page of 512 big-endian TCEs.
    let list: Vec<u8> = (0..512u64)
        .flat_map(|n| ((DATA + (n << 12)) | TCE_RW).to_be_bytes())
        .collect();
    b.mem.write(LIST, &list).expect("bench RAM");
    assert_eq!(
        b.hcall(H_PUT_TCE_INDIRECT, &[l0, 512 << 12, LIST, 512]),
        [0]
    );
    assert_eq!(
        b.hcall(H_GET_TCE, &[l0, 1023 << 12]),
        [0, (DATA + (511 << 12)) | TCE_RW]
    );
    let i = Cell::new(0u64);
    let before = b.stats();
    c.bench_function("hcall/put_tce_indirect_512", |bn| {
        bn.iter(|| {
            let n = i.get();
            i.set((n + 1) % (SWEEP / 512));
            black_box(b.hcall(H_PUT_TCE_INDIRECT, &[l0, (n * 512) << 12, LIST, 512]))
        })
    });
    let after = b.stats();
    assert_eq!(
        after.hcall_failures, before.hcall_failures,
        "every list succeeded"
    );
    assert_eq!(
        after.pool_pages_used, before.pool_pages_used,
        "nothing allocated"
    );
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_translate, bench_hcall
}
criterion_main!(benches);
