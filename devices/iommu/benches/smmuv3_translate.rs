//! # SMMUv3 translation benchmarks
//!
//! `cargo bench -p iommu --bench smmuv3_translate` (about 30 s with the defaults below; pass
//! `-- --measurement-time 3` for steadier numbers). Every number is criterion's own measurement of
//! `DmaPort::translate` on an [`Smmuv3`] brought up the way Linux's arm-smmu-v3 driver does it
//! (`arm_smmu_device_reset` order: stream table, command queue, CMDQEN, CFGI_ALL + TLBI_NSNH_ALL +
//! CMD_SYNC with MSI polling, event queue, SMMUEN), over [`TestMemory`] (a `Mutex<Vec<u8>>`, so each
//! descriptor read includes one uncontended lock). The STEs and CDs are written in memory and made
//! visible with CMD_CFGI_STE / CMD_CFGI_CD + CMD_SYNC, as Linux does. Before each case is timed its
//! request is checked to translate to the expected address, and afterwards the SMMU's counters are
//! checked to show the path the case claims (TLB hits, walks).
//!
//! Tables: the 4K granule with 48-bit inputs (stage 1 T0SZ = 16, stage 2 S2T0SZ = 16 / S2SL0 = 2), so
//! both stages walk four levels (L0..L3) for a 4 KiB page; leaves have AF set, so no HTTU write happens.
//!
//! ## `translate/*`: ns per translation
//! - `tlb_hit/{s1,s2}`: caching=on, the same 4 KiB page every time: an STE cache hit, (S1) a CD cache
//!   hit, and a TLB hit; no table reads at all.
//! - `tlb_miss/{s1_4k,s2_4k,s1_2m}`: caching=on, sweeping 8192 distinct pages (2M blocks for `s1_2m`)
//!   in order, twice the TLB's capacity (4096, oldest-first eviction), so every call misses the TLB
//!   and walks (4 descriptor reads; 3 for the 2M block), then inserts and evicts; the STE and CD caches
//!   hit. The cost of a miss in a warm SMMU.
//! - `nested_miss`: the same sweep with STE.Config = nested: stage 1 is a 4-level table whose four
//!   table addresses are IPAs, each translated by a 4-level stage 2 walk (identity, 4 KiB pages), then
//!   the output IPA is walked by stage 2 again: 5 x 4 = 20 stage 2 reads + 4 stage 1 reads = 24 reads.
//! - `nested_hit`: the nested stream, the same page every time (a TLB hit of the combined entry).
//! - `nocache/s1_4k`: caching=off, the same page every time: every call reads the STE (8 dwords), the
//!   CD (8 dwords) and walks 4 levels. This is the full cost of a translation from scratch (the
//!   caching=off SMMU gives the same answers; the model's tests check it).

mod common;

use iommu::RegisterWindow;
use std::sync::Arc;

use common::Counters;
use criterion::{criterion_group, criterion_main, Criterion};
use iommu::mem::TestMemory;
use iommu::smmuv3::regs::*;
use iommu::smmuv3::Smmuv3;
use iommu::{Access, DmaMemory, DmaPort, DmaRequest, Translation};

/// 32 MiB of guest RAM: queues and the stream table low, tables from 1 MiB, data pages from 24 MiB.
const RAM: u64 = 0x200_0000;
const STRTAB: u64 = 0x1_0000;
const CMDQ: u64 = 0x2_0000;
const CMDQ_LOG2: u32 = 8;
const EVTQ: u64 = 0x3_0000;
const EVTQ_LOG2: u32 = 7;
const CD_TABLE: u64 = 0x4_0000;
const FIRST_TABLE: u64 = 0x10_0000;
const DATA: u64 = 0x180_0000;
/// Stream IDs: stage 1 (the test device 00:03.0), stage 2, nested.
const SID_S1: u32 = 0x18;
const SID_S2: u32 = 0x20;
const SID_NESTED: u32 = 0x28;
const IOVA_4K: u64 = 0x12_3456_7000;
const IOVA_SWEEP: u64 = 0x40_0000_0000;
const SWEEP: u64 = 8192;

// VMSAv8-64 descriptor bits.
const TABLE: u64 = 0b11;
const PAGE: u64 = 0b11;
const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
/// Stage 1 AP[1]: EL0 read/write.
const S1_RW: u64 = AF | 1 << 6;
/// Stage 2 S2AP = read/write.
const S2_RW: u64 = AF | 3 << 6;

/// An SMMU over its own memory, brought up like Linux.
struct Bench {
    smmu: Smmuv3,
    mem: Arc<TestMemory>,
    next_table: u64,
}

impl Bench {
    fn new(caching: bool) -> Self {
        let mem = Arc::new(TestMemory::new(RAM as usize));
        let cfg = format!(
            "smmuv3,strtab=linear,caching={}",
            if caching { "on" } else { "off" }
        )
        .parse()
        .expect("bench option string");
        let smmu = Smmuv3::new(cfg, mem.clone(), Arc::new(common::NoIrq));
        let b = Self {
            smmu,
            mem,
            next_table: FIRST_TABLE,
        };
        b.bring_up();
        b
    }

    fn alloc(&mut self) -> u64 {
        let t = self.next_table;
        self.next_table += 0x1000;
        assert!(self.next_table <= DATA, "table area exhausted");
        t
    }

    fn wr(&self, addr: u64, v: u64) {
        self.mem.write_u64(addr, v).expect("bench RAM");
    }

    fn rd(&self, addr: u64) -> u64 {
        self.mem.read_u64(addr).expect("bench RAM")
    }

    fn r32(&self, off: u64) -> u32 {
        self.smmu.read32(off)
    }

    fn w32(&self, off: u64, v: u32) {
        self.smmu.write32(off, v);
    }

    fn w64(&self, off: u64, v: u64) {
        self.smmu.write64(off, v);
    }

    /// Queues one command at PROD and publishes it.
    fn cmd(&self, w0: u64, w1: u64) {
        let prod = self.r32(CMDQ_PROD);
        let slot = CMDQ + u64::from(prod & ((1 << CMDQ_LOG2) - 1)) * 16;
        self.wr(slot, w0);
        self.wr(slot + 8, w1);
        self.w32(CMDQ_PROD, (prod + 1) & ((2 << CMDQ_LOG2) - 1));
    }

    /// CMD_SYNC with MSI polling (CS = SIG_IRQ, MSIAddr = its own slot, MSIData 0), as Linux does.
    fn sync(&self) {
        let prod = self.r32(CMDQ_PROD);
        let slot = CMDQ + u64::from(prod & ((1 << CMDQ_LOG2) - 1)) * 16;
        self.cmd(0x46 | 1 << 12, slot);
        assert_eq!(self.rd(slot) & 0xffff_ffff, 0, "CMD_SYNC completed");
        assert_eq!(self.r32(CMDQ_CONS), self.r32(CMDQ_PROD), "queue drained");
    }

    /// `arm_smmu_device_reset`: the stream table (linear, 256 STEs), the queues, CMDQEN, global
    /// invalidation, EVTQEN, SMMUEN.
    fn bring_up(&self) {
        self.w32(CR0, 0);
        self.w32(CR1, 0xd75);
        self.w32(CR2, 0b110);
        self.w64(STRTAB_BASE, STRTAB | STRTAB_BASE_RA);
        self.w32(STRTAB_BASE_CFG, 8);
        self.w64(CMDQ_BASE, CMDQ | 1 << 62 | u64::from(CMDQ_LOG2));
        self.w32(CMDQ_PROD, 0);
        self.w32(CMDQ_CONS, 0);
        self.w64(EVTQ_BASE, EVTQ | 1 << 62 | u64::from(EVTQ_LOG2));
        self.w32(PAGE1 + EVTQ_PROD, 0);
        self.w32(PAGE1 + EVTQ_CONS, 0);
        self.w32(CR0, CR0_CMDQEN);
        self.cmd(0x04 | 31 << 32, 31); // CFGI_ALL
        self.cmd(0x30, 0); // TLBI_NSNH_ALL
        self.sync();
        self.w32(CR0, CR0_CMDQEN | CR0_EVTQEN);
        self.w32(CR0, CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
        assert_eq!(
            self.r32(CR0ACK),
            CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN,
            "SMMU enabled"
        );
    }

    /// Writes `sid`'s STE and makes it visible (CFGI_STE + CMD_SYNC).
    fn ste(&self, sid: u32, w: [u64; 4]) {
        let a = STRTAB + u64::from(sid) * 64;
        for (i, v) in w.iter().enumerate() {
            self.wr(a + 8 * i as u64, *v);
        }
        self.cmd(0x03 | u64::from(sid) << 32, 1);
        self.sync();
    }

    /// A fresh 4-level stage 1 table, its CD (ASID = `sid`) in the CD table slot `sid` and the STE.
    /// `s2_root`: nested over that stage 2 (VMID = `sid`).
    fn s1_stream(&mut self, sid: u32, s2_root: Option<u64>) -> u64 {
        let root = self.alloc();
        let cd = CD_TABLE + u64::from(sid) * 64;
        // CD: T0SZ 16, TG0 4K, EPD1, V, IPS 48 bits, AA64, R, A, ASID.
        let cd0 =
            16 | 1 << 30 | 1 << 31 | 5 << 32 | 1 << 41 | 1 << 45 | 1 << 46 | u64::from(sid) << 48;
        self.wr(cd, cd0);
        self.wr(cd + 8, root);
        self.wr(cd + 24, 0x0404_ff44);
        let (config, w2, w3) = match s2_root {
            None => (0b101, u64::from(sid), 0),
            Some(r) => (0b111, s2_ste2(sid), r),
        };
        self.ste(sid, [1 | config << 1 | cd, 0, w2, w3]);
        self.cmd(0x05 | u64::from(sid) << 32, 1); // CFGI_CD (SSID 0, leaf)
        self.sync();
        root
    }

    /// A fresh 4-level stage 2 table and an STE.Config = stage 2 stream.
    fn s2_stream(&mut self, sid: u32) -> u64 {
        let root = self.alloc();
        self.ste(sid, [1 | 0b110 << 1, 0, s2_ste2(sid), root]);
        root
    }

    /// Maps `iova` -> `pa` with a leaf of 2^`shift` bytes (12: page, 21: block) and `attrs` in the
    /// 4-level table at `root`, allocating tables.
    fn map(&mut self, root: u64, iova: u64, pa: u64, shift: u32, attrs: u64) {
        let mut table = root;
        for level in 0..4u32 {
            let lshift = 39 - 9 * level;
            let slot = table + ((iova >> lshift) & 0x1ff) * 8;
            if lshift == shift {
                let kind = if shift == 12 { PAGE } else { BLOCK };
                self.wr(slot, pa | kind | attrs);
                return;
            }
            let d = self.rd(slot);
            table = if d & 3 == TABLE {
                d & 0x0000_ffff_ffff_f000
            } else {
                let t = self.alloc();
                self.wr(slot, t | TABLE);
                t
            };
        }
        panic!("no level with 2^{shift}-byte leaves");
    }

    fn translate(&self, sid: u32, iova: u64) -> Translation {
        self.smmu
            .translate(&DmaRequest::new(sid, iova, Access::Read))
            .expect("bench mapping translates")
    }

    fn counters(&self) -> Counters {
        let s = self.smmu.stats();
        Counters {
            translations: s.translations,
            walks: s.walks,
            hits: s.tlb_hits,
        }
    }
}

/// STE dword 2 for stage 2: VMID, S2T0SZ 16, S2SL0 2 (start at level 0), 4K, S2PS 48 bits, AA64, S2R.
fn s2_ste2(vmid: u32) -> u64 {
    u64::from(vmid) | 16 << 32 | 2 << 38 | 5 << 48 | 1 << 51 | 1 << 58
}

/// Times `translate(sid, iova)` for the same IOVA every call; checks the counters show hits only
/// (`hit`) or a walk per call.
fn same_page(c: &mut Criterion, name: &str, b: &Bench, sid: u32, iova: u64, hit: bool) {
    common::same_page(c, name, || b.translate(sid, iova), || b.counters(), hit);
}

/// Times translations sweeping `SWEEP` leaves of 2^`shift` bytes from IOVA_SWEEP in order (twice the
/// TLB capacity: every call misses); checks every call walked.
fn sweep(c: &mut Criterion, name: &str, b: &Bench, sid: u32, shift: u32) {
    // From leaf 1: map_sweep's checks just put leaves 0 and SWEEP - 1 in the TLB.
    let translate = |n: u64| b.translate(sid, IOVA_SWEEP + (n << shift));
    common::sweep(c, name, 1, SWEEP, translate, || b.counters());
}

/// Maps the sweep's leaves (all onto DATA) and checks the first and last translate.
fn map_sweep(b: &mut Bench, root: u64, sid: u32, shift: u32, attrs: u64) {
    for n in 0..SWEEP {
        b.map(root, IOVA_SWEEP + (n << shift), DATA, shift, attrs);
    }
    for n in [0, SWEEP - 1] {
        let t = b.translate(sid, IOVA_SWEEP + (n << shift) + 0x10);
        assert_eq!((t.output, t.page_size), (DATA, 1 << shift));
    }
}

fn bench_translate(c: &mut Criterion) {
    // Stage 1 and stage 2 streams, caching on: one page for the hit cases, the sweeps for the misses.
    let mut b = Bench::new(true);
    let s1 = b.s1_stream(SID_S1, None);
    let s2 = b.s2_stream(SID_S2);
    b.map(s1, IOVA_4K, DATA, 12, S1_RW);
    b.map(s2, IOVA_4K, DATA + 0x1000, 12, S2_RW);
    assert_eq!(
        b.translate(SID_S1, IOVA_4K + 0x10)
            .translate(IOVA_4K + 0x10),
        DATA + 0x10
    );
    assert_eq!(
        b.translate(SID_S2, IOVA_4K + 0x10)
            .translate(IOVA_4K + 0x10),
        DATA + 0x1010
    );
    same_page(c, "translate/tlb_hit/s1", &b, SID_S1, IOVA_4K, true);
    same_page(c, "translate/tlb_hit/s2", &b, SID_S2, IOVA_4K, true);
    map_sweep(&mut b, s1, SID_S1, 12, S1_RW);
    sweep(c, "translate/tlb_miss/s1_4k", &b, SID_S1, 12);
    map_sweep(&mut b, s2, SID_S2, 12, S2_RW);
    sweep(c, "translate/tlb_miss/s2_4k", &b, SID_S2, 12);

    // 2M blocks: a separate stage 1 stream (its sweep overlaps the 4K one's IOVAs).
    let s1_2m = b.s1_stream(SID_S1 + 1, None);
    map_sweep(&mut b, s1_2m, SID_S1 + 1, 21, S1_RW);
    sweep(c, "translate/tlb_miss/s1_2m", &b, SID_S1 + 1, 21);

    // Nested: stage 2 identity over all RAM with 4 KiB pages (every stage 1 table read is a 4-level
    // stage 2 walk), stage 1 over it.
    let mut n = Bench::new(true);
    let s2_root = n.s2_stream(SID_S2);
    let s1_root = n.s1_stream(SID_NESTED, Some(s2_root));
    n.map(s1_root, IOVA_4K, DATA, 12, S1_RW);
    // The sweep's stage 1 leaves (output IPA = DATA); stage 2 then maps all RAM, tables included.
    for i in 0..SWEEP {
        n.map(s1_root, IOVA_SWEEP + (i << 12), DATA, 12, S1_RW);
    }
    let mut pa = 0;
    while pa < RAM {
        n.map(s2_root, pa, pa, 12, S2_RW);
        pa += 0x1000;
    }
    for iova in [IOVA_4K, IOVA_SWEEP, IOVA_SWEEP + ((SWEEP - 1) << 12)] {
        let t = n.translate(SID_NESTED, iova + 0x10);
        assert_eq!(
            (t.translate(iova + 0x10), t.page_size),
            (DATA + 0x10, 0x1000)
        );
    }
    sweep(c, "translate/nested_miss", &n, SID_NESTED, 12);
    same_page(c, "translate/nested_hit", &n, SID_NESTED, IOVA_4K, true);

    // Caching off: the full lookup every time.
    let mut o = Bench::new(false);
    let s1 = o.s1_stream(SID_S1, None);
    o.map(s1, IOVA_4K, DATA, 12, S1_RW);
    assert_eq!(
        o.translate(SID_S1, IOVA_4K + 0x10)
            .translate(IOVA_4K + 0x10),
        DATA + 0x10
    );
    same_page(c, "translate/nocache/s1_4k", &o, SID_S1, IOVA_4K, false);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_translate
}
criterion_main!(benches);
