//! The sPAPR TCE hypercall decoder and the DDW RTAS calls: fuzz-chosen opcodes and argument
//! registers (LIOBNs, IOBAs, TCE values, npages, H_PUT_TCE_INDIRECT list addresses and the list
//! contents in guest memory), RTAS query/create/remove/reset with fuzzed cells, PE resets and DMA
//! translations interleaved. Two units over two identical memories, caching on and off, run every
//! step in lockstep; the harness never writes the hypervisor's table pool (it is not partition
//! memory), so the hypercalls own every table.
//!
//! Checks: no panic; only architected statuses (H_SUCCESS, H_HARDWARE, H_FUNCTION, H_PARAMETER,
//! H_NO_MEM; RTAS 0, -1, -3) and the right number of return values; caching on and off identical
//! (statuses, H_GET_TCE values, translations, faults, lookups, EEH state, registers); the
//! permitted ranges are always exactly the enabled windows, one range each (at most two, never
//! overlapping); a reference model of the argument checks (LIOBN, IOBA alignment and bounds,
//! npages, TCE alignment / RAM / pool, list alignment and RAM) predicts every H_PARAMETER; H_GET_TCE
//! returns the last value H_PUT_TCE / H_STUFF_TCE / H_PUT_TCE_INDIRECT stored (0 for untouched
//! TCEs of a window created since); a DMA through a TCE the harness knows translates to that page
//! with its permissions (or faults INVALID_TCE / LEVEL_INVALID when unmapped); `lookup` has no side
//! effects and predicts `translate`; once frozen (eeh=freeze), every DMA fails until a PE reset.
#![no_main]

#[path = "common/tce.rs"]
mod common;

use common::{config, request, Input, Pair};
use iommu::tce::eeh::reason;
use iommu::tce::hcall::{
    H_FUNCTION, H_GET_TCE, H_PARAMETER, H_PUT_TCE, H_PUT_TCE_INDIRECT, H_STUFF_TCE, H_SUCCESS,
    MAX_INDIRECT,
};
use iommu::tce::rtas::{CREATE, QUERY, REMOVE, RESET, TCE_BUID};
use iommu::tce::WindowInfo;
use libfuzzer_sys::fuzz_target;

/// 4 MiB of guest RAM: TCE lists low, data anywhere below the pool, the pool at 3 MiB.
const RAM: u64 = 0x40_0000;
const LISTS: u64 = 0x1000;
const LIST_PAGES: u64 = 7;
const POOL: u64 = 0x30_0000;
/// A pool that straddles the end of RAM (its upper pages cannot be zeroed: H_HARDWARE paths).
const POOL_STRADDLE: u64 = 0x3f_0000;
const OPS: usize = 48;

const BUID_HI: u32 = (TCE_BUID >> 32) as u32;
const BUID_LO: u32 = TCE_BUID as u32;

/// What the harness knows was stored: (LIOBN, first index, count, value or `None` = unknown).
type Store = (u32, u64, u64, Option<u64>);

struct Harness {
    p: Pair,
    pool: (u64, u64),
    log: Vec<Store>,
    iobas: Vec<u64>,
}

impl Harness {
    fn window(&self, liobn: u64) -> Option<WindowInfo> {
        self.p
            .a
            .windows()
            .into_iter()
            .find(|w| w.enabled && u64::from(w.liobn) == liobn)
    }

    /// The reference argument check (LoPAR; KVM kvmppc_ioba_validate): the first index, or `None`
    /// for H_PARAMETER.
    fn target(&self, liobn: u64, ioba: u64, npages: u64) -> Option<(WindowInfo, u64)> {
        let w = self.window(liobn)?;
        // Only hypervisor windows take hcalls (this harness never touches the hardware view, so
        // every window is one: checked here).
        assert!(w.hypervisor, "{w:x?}");
        let page = 1u64 << w.page_shift;
        if ioba & (page - 1) != 0 || ioba < w.base {
            return None;
        }
        let first = (ioba - w.base) >> w.page_shift;
        let end = first.checked_add(npages)?;
        (end <= w.size >> w.page_shift).then_some((w, first))
    }

    /// Whether H_PUT_TCE etc. accept `tce` for a window with `page_shift` pages.
    fn tce_ok(&self, tce: u64, page_shift: u8) -> bool {
        if tce & 3 == 0 {
            return true;
        }
        let page = 1u64 << page_shift;
        let addr = tce & !0xfff;
        let (pb, ps) = self.pool;
        let in_pool = ps != 0 && addr < pb + ps && addr.saturating_add(page - 1) >= pb;
        addr & (page - 1) == 0 && addr < RAM && !in_pool
    }

    /// The TCE the harness expects at `index` of `liobn` (`None`: unknown).
    fn expected(&self, liobn: u32, index: u64) -> Option<u64> {
        for &(l, first, n, v) in self.log.iter().rev() {
            if l == liobn && index >= first && index - first < n {
                return v;
            }
        }
        Some(0)
    }

    fn forget(&mut self, liobn: u32) {
        self.log.retain(|s| s.0 != liobn);
    }

    fn liobn(&mut self, inp: &mut Input) -> u64 {
        match inp.u8() % 8 {
            0..=2 => 0x8000_0000,
            3..=5 => 0x8000_0001,
            6 => [0x8000_0002, 0x1_8000_0000, 0, 0x7fff_ffff][usize::from(inp.u8() & 3)],
            _ => inp.u64(),
        }
    }

    /// An IOBA for `liobn`: a TCE index of its window (edges included), a used one, or anything.
    fn ioba(&mut self, inp: &mut Input, liobn: u64) -> u64 {
        let w = self.window(liobn);
        match (inp.u8() % 8, w) {
            (0..=4, Some(w)) => {
                let entries = w.size >> w.page_shift;
                let idx = match inp.u8() % 8 {
                    0 => 0,
                    1 => entries.saturating_sub(1),
                    2 => entries,
                    3 => entries.saturating_sub(1 + inp.below(600)),
                    4 => inp.u64() % entries.max(1),
                    _ => inp.below(1024),
                };
                let off = if inp.u8() % 8 == 7 {
                    inp.below(0x1000)
                } else {
                    0
                };
                w.base.wrapping_add(idx << w.page_shift).wrapping_add(off)
            }
            (5, _) if !self.iobas.is_empty() => {
                self.iobas[inp.below(self.iobas.len() as u64) as usize]
            }
            (6, Some(w)) => w.base.wrapping_sub(1 << w.page_shift),
            _ => inp.u64(),
        }
    }

    /// A TCE value: usually a page of RAM aligned to the window's page size with R/W, or an
    /// unmapped one; sometimes misaligned, in the pool, beyond RAM, or anything (bits 11:2 noise).
    fn tce(&mut self, inp: &mut Input, liobn: u64) -> u64 {
        let shift = self.window(liobn).map_or(12, |w| w.page_shift);
        let page = 1u64 << shift;
        let perms = u64::from(inp.u8() % 4);
        let addr = match inp.u8() % 10 {
            0..=5 => (inp.u64() % (RAM / page).max(1)) * page,
            6 => self.pool.0 + inp.below(64) * 0x1000,
            7 => RAM + inp.below(16) * page,
            8 => inp.below(0x400) * 0x1000,
            _ => inp.u64(),
        };
        (addr & !0xfff) | perms | (inp.noise() & 0xffc)
    }

    fn npages(&mut self, inp: &mut Input) -> u64 {
        match inp.u8() % 8 {
            0..=4 => inp.below(24),
            5 => inp.below(600),
            6 => [0, 1, 511, 512, 513, u64::MAX][usize::from(inp.u8() % 6)],
            _ => inp.u64(),
        }
    }

    fn status(r: &[u64]) -> i64 {
        r[0] as i64
    }

    fn put(&mut self, inp: &mut Input) {
        let liobn = self.liobn(inp);
        let ioba = self.ioba(inp, liobn);
        let tce = self.tce(inp, liobn);
        let r = self.p.hcall(H_PUT_TCE, &[liobn, ioba, tce]);
        let t = self.target(liobn, ioba, 1);
        let ok = t.is_some_and(|(w, _)| self.tce_ok(tce, w.page_shift));
        if !ok {
            assert_eq!(
                Self::status(&r),
                H_PARAMETER,
                "put {liobn:#x} {ioba:#x} {tce:#x}"
            );
            return;
        }
        let (w, index) = t.expect("checked");
        assert_ne!(
            Self::status(&r),
            H_PARAMETER,
            "put {liobn:#x} {ioba:#x} {tce:#x}"
        );
        if Self::status(&r) == H_SUCCESS {
            self.log.push((w.liobn, index, 1, Some(tce)));
            self.iobas.push(ioba);
            let g = self.p.hcall(H_GET_TCE, &[liobn, ioba]);
            assert_eq!(
                g,
                [0, tce],
                "H_GET_TCE after H_PUT_TCE {liobn:#x} {ioba:#x}"
            );
        } else if tce == 0 {
            panic!("clearing a TCE failed: {r:x?}");
        }
    }

    fn get(&mut self, inp: &mut Input) {
        let liobn = self.liobn(inp);
        let ioba = self.ioba(inp, liobn);
        let r = self.p.hcall(H_GET_TCE, &[liobn, ioba, inp.noise()]);
        match self.target(liobn, ioba, 1) {
            None => assert_eq!(r, [H_PARAMETER as u64], "get {liobn:#x} {ioba:#x}"),
            Some((w, index)) => {
                assert_eq!(Self::status(&r), H_SUCCESS, "get {liobn:#x} {ioba:#x}");
                if let Some(v) = self.expected(w.liobn, index) {
                    assert_eq!(r[1], v, "H_GET_TCE {liobn:#x} {ioba:#x} index {index:#x}");
                }
            }
        }
    }

    fn stuff(&mut self, inp: &mut Input) {
        let liobn = self.liobn(inp);
        let ioba = self.ioba(inp, liobn);
        let tce = self.tce(inp, liobn);
        let npages = self.npages(inp);
        let r = self.p.hcall(H_STUFF_TCE, &[liobn, ioba, tce, npages]);
        let t = self.target(liobn, ioba, npages);
        let ok = t.is_some_and(|(w, _)| self.tce_ok(tce, w.page_shift));
        if !ok {
            assert_eq!(
                Self::status(&r),
                H_PARAMETER,
                "stuff {liobn:#x} {ioba:#x} {tce:#x} {npages:#x}"
            );
            return;
        }
        let (w, first) = t.expect("checked");
        let stored = (Self::status(&r) == H_SUCCESS).then_some(tce);
        assert!(stored.is_some() || tce != 0, "clearing failed: {r:x?}");
        self.log.push((w.liobn, first, npages, stored));
        self.iobas.push(ioba);
    }

    fn indirect(&mut self, inp: &mut Input) {
        let liobn = self.liobn(inp);
        let ioba = self.ioba(inp, liobn);
        let npages = match inp.u8() % 4 {
            0 => self.npages(inp),
            _ => inp.below(MAX_INDIRECT + 2),
        };
        let list = match inp.u8() % 8 {
            0..=4 => LISTS + inp.below(LIST_PAGES) * 0x1000,
            5 => LISTS + inp.below(LIST_PAGES * 0x1000),
            6 => [RAM - 0x1000, RAM, POOL, u64::MAX & !0xfff][usize::from(inp.u8() & 3)],
            _ => inp.u64(),
        };
        // The list contents (big-endian TCEs), written by the guest before the call.
        let n = npages.min(MAX_INDIRECT);
        let mut tces = Vec::with_capacity(n as usize);
        if list < RAM && list & 0xfff == 0 && list < POOL {
            let same = inp.u8() % 4 == 0;
            let first = self.tce(inp, liobn);
            for i in 0..n {
                let v = if same {
                    first
                } else if inp.is_empty() {
                    (first & !0xfff).wrapping_add(i << 12) | (first & 3)
                } else {
                    self.tce(inp, liobn)
                };
                tces.push(v);
            }
            let bytes: Vec<u8> = tces.iter().flat_map(|v| v.to_be_bytes()).collect();
            self.p.fill(list, &bytes);
        }
        let r = self
            .p
            .hcall(H_PUT_TCE_INDIRECT, &[liobn, ioba, list, npages]);
        if npages == 0 {
            return;
        }
        let t = (npages <= MAX_INDIRECT)
            .then(|| self.target(liobn, ioba, npages))
            .flatten();
        let list_ok = list & 0xfff == 0 && list.checked_add(n * 8).is_some_and(|e| e <= RAM);
        let listed: Vec<u64> = if tces.is_empty() && list_ok {
            (0..n).map(|i| self.p.peek_be(list + 8 * i)).collect()
        } else {
            tces
        };
        let ok =
            list_ok && t.is_some_and(|(w, _)| listed.iter().all(|v| self.tce_ok(*v, w.page_shift)));
        if !ok {
            assert_eq!(
                Self::status(&r),
                H_PARAMETER,
                "indirect {liobn:#x} {ioba:#x} {list:#x} {npages:#x}"
            );
            return;
        }
        let (w, first) = t.expect("checked");
        if Self::status(&r) == H_SUCCESS {
            for (i, v) in listed.iter().enumerate() {
                self.log.push((w.liobn, first + i as u64, 1, Some(*v)));
            }
            // Every entry reads back.
            let last = first + npages - 1;
            let g = self
                .p
                .hcall(H_GET_TCE, &[liobn, w.base + (last << w.page_shift)]);
            assert_eq!(g, [0, listed[listed.len() - 1]]);
        } else {
            assert_ne!(Self::status(&r), H_PARAMETER);
            self.log.push((w.liobn, first, npages, None));
        }
        self.iobas.push(ioba);
    }

    fn garbage_hcall(&mut self, inp: &mut Input) {
        let op = match inp.u8() % 4 {
            0 => inp.u64(),
            1 => u64::from(inp.u16()),
            _ => [0x4, 0x18, 0x1c, 0x20, 0x138, 0x13c, 0x13d, 0x140][usize::from(inp.u8() & 7)],
        };
        let n = usize::from(inp.u8() % 7);
        let args: Vec<u64> = (0..n).map(|_| inp.u64()).collect();
        let r = self.p.hcall(op, &args);
        if op != H_GET_TCE && Self::status(&r) != H_PARAMETER && Self::status(&r) != H_FUNCTION {
            // Fuzz-chosen registers stored something (or, failing with H_NO_MEM / H_HARDWARE
            // part way through a stuff or a list, part of it): forget both windows.
            self.log.push((0x8000_0000, 0, u64::MAX, None));
            self.log.push((0x8000_0001, 0, u64::MAX, None));
        }
    }

    fn rtas(&mut self, inp: &mut Input) {
        let before = self.p.a.windows();
        let enabled = before.iter().filter(|w| w.enabled).count() as u32;
        let cfg_addr = inp.u32();
        let (hi, lo) = if inp.u8() % 8 == 7 {
            (inp.u32(), inp.u32())
        } else {
            (BUID_HI, BUID_LO)
        };
        match inp.u8() % 6 {
            0 => {
                let r = self.p.rtas(QUERY, &[cfg_addr, hi, lo]);
                if r[0] == 0 {
                    assert_eq!(r[1], 2 - enabled, "windows available");
                }
            }
            1 | 2 => {
                let page_shift = match inp.u8() % 4 {
                    0 => inp.u32(),
                    _ => [12, 16, 21, 24, 28, 30, 13, 64][usize::from(inp.u8() & 7)],
                };
                let window_shift = match inp.u8() % 4 {
                    0 => inp.u32(),
                    _ => page_shift.wrapping_add(inp.below(50) as u32),
                };
                let mut args = vec![cfg_addr, hi, lo, page_shift, window_shift];
                if inp.u8() % 16 == 15 {
                    args.truncate(usize::from(inp.u8() % 6));
                }
                let r = self.p.rtas(CREATE, &args);
                if r[0] == 0 {
                    let liobn = r[1];
                    let base = u64::from(r[2]) << 32 | u64::from(r[3]);
                    let w = self
                        .window(u64::from(liobn))
                        .expect("a created window is enabled");
                    assert_eq!(
                        (w.base, w.size, u32::from(w.page_shift)),
                        (base, 1u64 << window_shift, page_shift)
                    );
                    assert!(!before.iter().any(|b| b.enabled && b.liobn == liobn));
                    self.forget(liobn);
                }
            }
            3 | 4 => {
                let liobn = match inp.u8() % 4 {
                    0 => inp.u32(),
                    _ => 0x8000_0000 | (inp.u32() & 1),
                };
                let mut args = vec![liobn];
                if inp.u8() % 16 == 15 {
                    args.push(inp.u32());
                }
                let was = self.window(u64::from(liobn)).is_some() && args.len() == 1;
                let r = self.p.rtas(REMOVE, &args);
                assert_eq!(r[0] == 0, was, "remove {args:x?}");
                if was {
                    assert!(self.window(u64::from(liobn)).is_none());
                    self.forget(liobn);
                }
            }
            _ => {
                let r = self.p.rtas(RESET, &[cfg_addr, hi, lo]);
                if r[0] == 0 {
                    self.log.clear();
                    assert_eq!(self.p.a.windows().iter().filter(|w| w.enabled).count(), 2);
                }
            }
        }
    }

    fn dma(&mut self, inp: &mut Input) {
        let iova = match inp.u8() % 4 {
            0 => inp.u64(),
            _ => {
                let liobn = self.liobn(inp);
                self.ioba(inp, liobn) | inp.below(0x1000)
            }
        };
        let req = request(inp, iova);
        let frozen = self.p.frozen;
        let r = self.p.dma(&req);
        if frozen {
            return;
        }
        // A TCE the harness knows decides the outcome.
        let Some(w) = self
            .p
            .a
            .windows()
            .into_iter()
            .find(|w| w.enabled && iova >= w.base && iova - w.base < w.size)
        else {
            assert_eq!(r.map_err(|f| f.reason), Err(u32::from(reason::NO_WINDOW)));
            return;
        };
        let index = (iova - w.base) >> w.page_shift;
        let Some(tce) = self.expected(w.liobn, index) else {
            return;
        };
        let allowed = match req.access {
            iommu::Access::Read => tce & 1 != 0,
            _ => tce & 2 != 0,
        };
        match r {
            Ok(t) => {
                assert!(allowed, "{req:x?} through TCE {tce:#x} -> {t:x?}");
                assert_eq!(t.output, tce & !0xfff, "{req:x?} through TCE {tce:#x}");
                assert_eq!(t.page_size, 1 << w.page_shift);
            }
            Err(f) => {
                let want: &[u8] = if tce & 3 == 0 {
                    &[reason::INVALID_TCE, reason::LEVEL_INVALID]
                } else {
                    &[reason::PERMISSION]
                };
                assert!(
                    !allowed && want.contains(&(f.reason as u8)),
                    "{req:x?} through TCE {tce:#x} -> {f:?}"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let c = inp.u8();
    let pool = match inp.u8() % 8 {
        0 => (POOL, 0),
        1 => (POOL_STRADDLE, 32),
        2 => (POOL, 2),
        _ => (POOL, 1 + inp.below(32)),
    };
    let cfg = config(c, pool.0, pool.1, true);
    let mut h = Harness {
        p: Pair::new(&cfg, RAM),
        pool: (pool.0, pool.1 * 0x1000),
        log: Vec::new(),
        iobas: Vec::new(),
    };
    h.p.check_eeh();
    for _ in 0..OPS {
        if inp.is_empty() {
            break;
        }
        match inp.u8() % 16 {
            0..=3 => h.put(&mut inp),
            4 | 5 => h.get(&mut inp),
            6 => h.stuff(&mut inp),
            7 | 8 => h.indirect(&mut inp),
            9 => h.garbage_hcall(&mut inp),
            10 | 11 => h.rtas(&mut inp),
            12..=14 => h.dma(&mut inp),
            _ => {
                let by_register = inp.bool();
                h.p.reset_pe(by_register);
            }
        }
    }
    // The same stats on both, but for the cache counters; dump works.
    let (sa, sb) = (h.p.a.stats(), h.p.b.stats());
    assert_eq!(
        (sa.hcalls, sa.hcall_failures),
        (sb.hcalls, sb.hcall_failures)
    );
    assert_eq!((sa.rtas_calls, sa.faults), (sb.rtas_calls, sb.faults));
    assert_eq!(sb.cache_entries, 0);
    assert_eq!(h.p.a.dump(64).windows, h.p.b.dump(64).windows);
});
