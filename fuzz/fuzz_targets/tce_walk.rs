//! The TCE table walker through the hardware view: fuzz-programmed TVEs (table base, levels, level
//! table size, page shift, window base and size; sane or raw, 8-byte or 4-byte-half writes),
//! fuzz-built big-endian tables (1 to 5 levels, non-leaf pointers to fresh tables, to tables already
//! in use — loops back to upper levels and to the other window's table —, outside RAM, or anything;
//! leaf TCEs with any permissions, misaligned addresses and stray bits), garbage memory and MMIO
//! writes, TCE_KILL (all, or by IOBA range), PE resets, a few hypercalls (refused on the guest's
//! windows, which are not hypervisor tables), and DMA. Two units over two identical memories,
//! caching on and off, run every step in lockstep.
//!
//! Cache discipline (what a correct guest does): every table change is followed by a TCE_KILL —
//! an IOBA range kill of just the changed page while the tables are "clean" (only fresh level
//! tables, one writer per TCE), a kill-all otherwise.
//!
//! Checks: no panic; every DMA reads at most five entries and `lookup` (no side effects: counters,
//! memory and EEH state unchanged) predicts it; caching on and off identical (translations, faults,
//! lookups, registers, EEH state); TVE_CFG.ENABLE agrees with a reference of the validation rules
//! (TVE_STATUS shows the refusal); the enabled windows never overlap and are the permitted ranges; a
//! clean mapping translates to the TCE the harness wrote; EEH: a recorded fault freezes the PE in
//! freeze mode, then every DMA fails with FROZEN until a PE reset (nothing else unfreezes).
#![no_main]

#[path = "common/tce.rs"]
mod common;

use std::collections::HashMap;

use common::{config, request, Input, Pair};
use iommu::tce::eeh::reason;
use iommu::tce::hcall::{H_GET_TCE, H_PARAMETER, H_PUT_TCE, H_STUFF_TCE};
use iommu::tce::regs::{self, TveCfg};
use iommu::tce::window::DMA64_START;
use iommu::Access;
use libfuzzer_sys::fuzz_target;

/// 1 MiB of guest RAM: level tables from 64 KiB, 4K/64K data pages from 768 KiB, a small pool at
/// the top (used only by hypercalls on windows without a table).
const RAM: u64 = 0x10_0000;
const TABLES: u64 = 0x1_0000;
const TABLES_END: u64 = 0xc_0000;
const DATA: u64 = 0xc_0000;
const POOL: u64 = 0xf_0000;
const OPS: usize = 40;

/// A window as the harness programmed it.
#[derive(Clone, Copy, Debug)]
struct Win {
    table: u64,
    levels: u8,
    table_shift: u8,
    page_shift: u8,
    base: u64,
    size: u64,
}

impl Win {
    fn entry_bits(&self) -> u32 {
        u32::from(self.table_shift) - 3
    }

    fn entries(&self) -> u64 {
        self.size >> self.page_shift
    }

    fn level_index(&self, index: u64, level: u8) -> u64 {
        let shift = u32::from(self.levels - 1 - level) * self.entry_bits();
        index.checked_shr(shift).unwrap_or(0) & ((1 << self.entry_bits()) - 1)
    }
}

struct Harness {
    p: Pair,
    offered: u64,
    next: u64,
    /// Level tables the harness allocated (fresh when allocated).
    blocks: Vec<u64>,
    wins: [Option<Win>; 2],
    /// Only fresh tables, each TCE reachable from one (window, index): range kills are exact.
    clean: bool,
    /// Leaf TCEs written while clean: (window, index) -> TCE.
    leaves: HashMap<(usize, u64), u64>,
    iovas: Vec<u64>,
    /// Windows handed to the hardware view (a TVE_CFG write reached them): they take no hcalls.
    handed: [bool; 2],
}

impl Harness {
    fn alloc(&mut self, bytes: u64) -> Option<u64> {
        let a = (self.next + bytes - 1) & !(bytes - 1);
        if a + bytes > TABLES_END {
            return None;
        }
        self.next = a + bytes;
        self.blocks.push(a);
        Some(a)
    }

    /// A table pointer: a fresh table of `bytes`, or (unclean) an existing table, a window's top
    /// table (a loop), outside RAM, the last page of RAM, or anything.
    fn pointer(&mut self, inp: &mut Input, bytes: u64) -> u64 {
        let hostile = match inp.u8() % 16 {
            12 if !self.blocks.is_empty() => {
                Some(self.blocks[inp.below(self.blocks.len() as u64) as usize])
            }
            13 => self.wins[usize::from(inp.u8() & 1)].map(|w| w.table),
            14 => Some([RAM, RAM - 0x1000, 0x4000_0000, !0xfff][usize::from(inp.u8() & 3)]),
            15 => Some(inp.u64() & !0xfff),
            _ => None,
        };
        match hostile.or_else(|| self.alloc(bytes)) {
            Some(a) if hostile.is_none() => a,
            Some(a) => {
                self.clean = false;
                a
            }
            None => {
                self.clean = false;
                TABLES
            }
        }
    }

    /// Programs TVE `w` (disable, TABLE, BASE, SIZE, CFG) and checks ENABLE against the rules.
    fn program(&mut self, inp: &mut Input) {
        let w = usize::from(inp.u8() & 1);
        let raw = inp.u8() % 8 == 7;
        let (table, levels, table_shift, page_shift, base, size, enable) = if raw {
            self.clean = false;
            (
                inp.u64(),
                inp.u8() & 7,
                inp.u8() % 34,
                [12, 16, 21, 24, 28, 30, 13, 64, 0][inp.below(9) as usize],
                inp.u64() & !0xfff,
                1u64.checked_shl(u32::from(inp.u8() % 66)).unwrap_or(0) ^ inp.noise(),
                inp.u8() % 8 != 0,
            )
        } else {
            let levels = 1 + inp.u8() % 5;
            let table_shift = 12 + inp.u8() % 2;
            let shifts: Vec<u8> = (12..=30u8)
                .filter(|s| self.offered & (1u64 << s) != 0)
                .collect();
            let page_shift = shifts[inp.below(shifts.len() as u64) as usize];
            let cap = u32::from(levels) * u32::from(table_shift - 3);
            let max_bits = cap.min(63 - u32::from(page_shift));
            // Index bits: usually within the table's reach, sometimes one more (refused).
            let bits = (inp.u8() as u32 % (max_bits + 2)).min(63 - u32::from(page_shift));
            let size = 1u64 << (u32::from(page_shift) + bits);
            let base = match inp.u8() % 8 {
                0..=2 => 0,
                3 | 4 => DMA64_START,
                5 => (inp.u64() % 64).wrapping_mul(size),
                6 => self.wins[1 - w].map_or(0, |o| o.base.wrapping_add(o.size / 2)) & !(size - 1),
                _ => inp.u64() & !((1u64 << page_shift) - 1),
            };
            let table = self.pointer(inp, 1 << table_shift);
            (table, levels, table_shift, page_shift, base, size, true)
        };
        let cfg = TveCfg {
            enable,
            levels,
            page_shift,
            table_shift,
        }
        .encode();
        let off = regs::TVE_BASE_OFFSET + regs::TVE_STRIDE * w as u64;
        let halves = inp.u8() % 4 == 3;
        let write = |p: &Pair, reg: u64, v: u64| {
            if halves {
                // The high half first (TVE_CFG's reserved high half ignores 4-byte writes, so the
                // order only matters for the other registers' read-back merge).
                p.w32(off + reg + 4, (v >> 32) as u32);
                p.w32(off + reg, v as u32);
            } else {
                p.w64(off + reg, v);
            }
        };
        write(&self.p, regs::TVE_CFG, 0);
        self.handed[w] = true;
        write(&self.p, regs::TVE_TABLE, table);
        write(&self.p, regs::TVE_BASE, base);
        write(&self.p, regs::TVE_SIZE, size);
        // The window's cached TCEs are gone (TVE_CFG writes drop them); its old leaves too.
        self.leaves.retain(|k, _| k.0 != w);
        self.wins[w] = None;
        write(&self.p, regs::TVE_CFG, cfg);
        assert_eq!(self.p.r64(off + regs::TVE_TABLE), table);
        assert_eq!(self.p.r64(off + regs::TVE_BASE), base);
        assert_eq!(self.p.r64(off + regs::TVE_SIZE), size);

        // The reference validation (the register table of the TCE brief).
        let other = self.p.a.windows()[1 - w];
        let page = 1u64.checked_shl(u32::from(page_shift)).unwrap_or(0);
        let bytes = 1u64 << table_shift.min(63);
        let last = base.checked_add(size.wrapping_sub(1));
        let valid = page_shift < 64
            && self.offered & (1u64 << page_shift) != 0
            && (1..=5).contains(&levels)
            && (12..=30).contains(&table_shift)
            && table & 0xfff == 0
            && table.checked_add(bytes).is_some_and(|e| e <= RAM)
            && base & (page - 1) == 0
            && size.is_power_of_two()
            && size >= page
            && last.is_some()
            && size.trailing_zeros() - u32::from(page_shift)
                <= u32::from(levels) * (u32::from(table_shift) - 3)
            && !(other.enabled
                && last.is_some_and(|l| other.base <= l && base <= other.base + (other.size - 1)));
        let status = self.p.r64(off + regs::TVE_STATUS);
        assert_eq!(
            status & 1 != 0,
            enable && valid,
            "TVE {w}: table {table:#x} levels {levels} tshift {table_shift} page {page_shift} base {base:#x} size {size:#x} -> {status:#x}"
        );
        assert_eq!(status & 2 != 0, enable && !valid, "{status:#x}");
        if enable && valid {
            self.wins[w] = Some(Win {
                table,
                levels,
                table_shift,
                page_shift,
                base,
                size,
            });
        }
        // A stale clean TCE of another window sharing this table would escape a range kill.
        if self.wins[0].is_some_and(|a| self.wins[1].is_some_and(|b| a.table == b.table)) {
            self.clean = false;
        }
    }

    fn window(&self, inp: &mut Input) -> Option<(usize, Win)> {
        let w = usize::from(inp.u8() & 1);
        self.wins[w]
            .map(|x| (w, x))
            .or_else(|| self.wins[1 - w].map(|x| (1 - w, x)))
    }

    fn index(inp: &mut Input, win: &Win) -> u64 {
        let n = win.entries();
        match inp.u8() % 4 {
            0 => inp.below(64) % n,
            1 => n - 1 - inp.below(64) % n,
            2 => inp.u64() % n,
            _ => (inp.below(8) << win.entry_bits()) % n,
        }
    }

    /// Writes TCE `index` of a window through its tables (creating missing levels), then kills.
    fn map(&mut self, inp: &mut Input) {
        let Some((w, win)) = self.window(inp) else {
            return;
        };
        let index = Self::index(inp, &win);
        let mut table = win.table;
        let bytes = 1u64 << win.table_shift;
        for level in 0..win.levels {
            let addr = table.wrapping_add(win.level_index(index, level) * 8);
            if addr.checked_add(8).is_none_or(|e| e > RAM) {
                self.p.kill_all();
                return;
            }
            let entry = self.p.peek_be(addr);
            if level + 1 == win.levels {
                let page = 1u64 << win.page_shift;
                let out = match inp.u8() % 8 {
                    0..=4 if page <= 0x1_0000 => DATA + (inp.below(16) * page) % (RAM - DATA),
                    0..=5 => (inp.u64() & 0x000f_ffff_ffff_ffff) & !(page - 1),
                    6 => inp.u64() & !0xfff,
                    _ => 0,
                };
                let tce = out | u64::from(inp.u8() % 4) | (inp.noise() & 0xffc);
                self.p.poke_be(addr, tce);
                if self.clean {
                    self.leaves.insert((w, index), tce);
                    let iova = win.base + (index << win.page_shift);
                    let off = inp.u64() & (page - 1);
                    match (iova + off).checked_add(1) {
                        Some(end) => self.p.kill_range(iova + off, end),
                        // The last byte of the address space: no exclusive end can name it.
                        None => self.p.kill_all(),
                    }
                } else {
                    self.p.kill_all();
                }
                self.iovas.push(win.base + (index << win.page_shift));
                return;
            }
            if entry & 3 != 0 && inp.u8() % 16 != 15 {
                table = entry & !0xfff;
                continue;
            }
            // A new lower level (or, unclean, a replaced one).
            if entry & 3 != 0 {
                self.clean = false;
            }
            let next = self.pointer(inp, bytes);
            let perms = [3, 1, 2, 0][usize::from(inp.u8() % 8).min(3)];
            if perms == 0 {
                self.clean = false;
            }
            self.p.poke_be(addr, next | perms | (inp.noise() & 0xffc));
            table = next;
        }
    }

    /// DMA at a mapped IOVA, a window edge, or anywhere.
    fn dma(&mut self, inp: &mut Input) {
        let iova = match (inp.u8() % 8, self.window(inp)) {
            (0..=3, _) if !self.iovas.is_empty() => self.iovas
                [inp.below(self.iovas.len() as u64) as usize]
                .wrapping_add(inp.below(0x1000)),
            (4, Some((_, w))) => w.base,
            (5, Some((_, w))) => w.base.wrapping_add(w.size).wrapping_sub(1),
            (6, Some((_, w))) => w.base.wrapping_add(w.size),
            (7, Some((_, w))) => w.base.wrapping_sub(1),
            _ => inp.u64(),
        };
        let req = request(inp, iova);
        let frozen = self.p.frozen;
        let r = self.p.dma(&req);
        if frozen || !self.clean {
            return;
        }
        // A clean mapping translates to what the harness wrote (once unclean, scribbles, aliases
        // and hypercalls may have changed any TCE).
        for (w, win) in self.wins.iter().enumerate() {
            let Some(win) = win else { continue };
            if iova < win.base || iova - win.base >= win.size {
                continue;
            }
            let index = (iova - win.base) >> win.page_shift;
            let Some(&tce) = self.leaves.get(&(w, index)) else {
                continue;
            };
            let page = 1u64 << win.page_shift;
            let allowed = match req.access {
                Access::Read => tce & 1 != 0,
                _ => tce & 2 != 0,
            };
            let want = if tce & 3 == 0 {
                Err(reason::INVALID_TCE)
            } else if tce & !0xfff & (page - 1) != 0 {
                Err(reason::MISALIGNED_TCE)
            } else if !allowed {
                Err(reason::PERMISSION)
            } else {
                Ok(tce & !0xfff)
            };
            assert_eq!(
                r.as_ref().map(|t| t.output).map_err(|f| f.reason as u8),
                want,
                "{req:x?} through TCE {tce:#x}"
            );
        }
    }

    /// A guest write of garbage into the tables, then a kill-all.
    fn scribble(&mut self, inp: &mut Input) {
        self.clean = false;
        let addr = match inp.u8() % 4 {
            0 if !self.blocks.is_empty() => {
                self.blocks[inp.below(self.blocks.len() as u64) as usize] + inp.below(0x1000) * 8
            }
            1 => self.wins[usize::from(inp.u8() & 1)]
                .map_or(TABLES, |w| w.table)
                .wrapping_add(inp.below(512) * 8),
            _ => inp.u64() % RAM,
        };
        let v = match inp.u8() % 4 {
            0 => inp.u64(),
            1 => (TABLES + inp.below(0xb0) * 0x1000) | 3,
            2 => (inp.u64() & !0xfff) | 1,
            _ => 0,
        };
        self.p.poke_be(addr, v);
        self.p.kill_all();
    }

    /// Any MMIO access (size, offset, value); then a kill-all and the windows as the unit says.
    fn mmio(&mut self, inp: &mut Input) {
        self.clean = false;
        let off = match inp.u8() % 4 {
            0 => u64::from(inp.u16()),
            1 => regs::TVE_BASE_OFFSET + inp.below(0x90),
            _ => inp.below(0x60),
        };
        let len = [8, 4, 4, 8, 1, 2, 3, 16][usize::from(inp.u8() & 7)];
        let v = inp.bytes(len).to_vec();
        let mut data = vec![0u8; len];
        data[..v.len()].copy_from_slice(&v);
        if off & !7 == regs::TCE_PE_CTRL && data.first().is_some_and(|b| b & 1 != 0) {
            // A PE reset, as the harness expects it.
            let ok = matches!(len, 4 | 8) && off % len as u64 == 0;
            if ok && off == regs::TCE_PE_CTRL {
                self.p.wraw(off, &data);
                self.p.frozen = false;
                self.p.errors = 0;
            }
        } else {
            let mut b = vec![0u8; len];
            self.p.a.mmio_read(off, &mut b);
            self.p.wraw(off, &data);
            // A write that reaches TVE_CFG bits 31:0 (8 bytes, or the low half) hands the window
            // to the hardware view; the reserved high half alone is ignored.
            for w in 0..2 {
                let cfg = regs::TVE_BASE_OFFSET + regs::TVE_STRIDE * w as u64 + regs::TVE_CFG;
                if off == cfg && matches!(len, 4 | 8) {
                    self.handed[w] = true;
                }
            }
        }
        self.p.kill_all();
        for (w, slot) in self.p.a.windows().iter().enumerate() {
            if !slot.enabled {
                self.wins[w] = None;
                self.leaves.retain(|k, _| k.0 != w);
            }
        }
        self.p.check_eeh();
    }

    /// A hypercall on either window: refused (H_PARAMETER) on a window the guest programmed; on a
    /// default window still the hypervisor's, it writes the pool (any npages: the work is bounded
    /// by the pool). Then a kill-all.
    fn hcall(&mut self, inp: &mut Input) {
        let liobn = 0x8000_0000 | u64::from(inp.u8() & 1);
        let ioba = match self.window(inp) {
            Some((_, w)) if inp.u8() % 4 != 0 => w.base + (Self::index(inp, &w) << w.page_shift),
            _ => inp.u64(),
        };
        let tce = match inp.u8() % 4 {
            0 => 0,
            1 => DATA | 3,
            _ => inp.u64(),
        };
        let npages = match inp.u8() % 4 {
            0 => inp.u64(),
            1 => 1u64 << inp.below(46),
            _ => inp.below(64),
        };
        let r = match inp.u8() % 3 {
            0 => self.p.hcall(H_PUT_TCE, &[liobn, ioba, tce]),
            1 => self.p.hcall(H_GET_TCE, &[liobn, ioba]),
            _ => self.p.hcall(H_STUFF_TCE, &[liobn, ioba, tce, npages]),
        };
        // Only hypervisor windows take hcalls: one the guest programmed through the hardware view
        // (its table is the guest's) is refused with H_PARAMETER, whatever the arguments.
        let w = (liobn & 1) as usize;
        let info = self.p.a.windows()[w];
        assert_eq!(info.hypervisor, !self.handed[w], "window {w}: {info:x?}");
        if self.handed[w] {
            assert_eq!(r, [H_PARAMETER as u64], "hcall on hardware-view window {w}");
        }
        self.clean = false;
        self.p.kill_all();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let c = inp.u8();
    let pool = if inp.u8() % 4 == 3 { 16 } else { 0 };
    let cfg = config(c, POOL, pool, true);
    let mut h = Harness {
        p: Pair::new(&cfg, RAM),
        offered: cfg.page_sizes,
        next: TABLES,
        blocks: Vec::new(),
        wins: [None, None],
        clean: true,
        leaves: HashMap::new(),
        iovas: Vec::new(),
        handed: [false; 2],
    };
    h.p.check_eeh();
    for _ in 0..OPS {
        if inp.is_empty() {
            break;
        }
        match inp.u8() % 16 {
            0..=2 => h.program(&mut inp),
            3..=6 => h.map(&mut inp),
            7..=10 => h.dma(&mut inp),
            11 => h.scribble(&mut inp),
            12 => h.mmio(&mut inp),
            13 => h.hcall(&mut inp),
            14 => {
                let by_register = inp.bool();
                h.p.reset_pe(by_register);
            }
            _ => {
                if inp.bool() {
                    h.p.kill_all();
                } else {
                    let (s, e) = (inp.u64(), inp.u64());
                    h.p.kill_range(s, e);
                }
            }
        }
    }
    let _ = h.p.a.dump(8);
});
