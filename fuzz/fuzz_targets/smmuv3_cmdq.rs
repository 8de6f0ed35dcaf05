//! The SMMUv3 command queue against a hostile driver: an SMMU brought up like Linux does it (stream
//! table, event queue and a command queue of fuzz-chosen size in memory) with a few streams set up
//! (stage 1, stage 2, nested, bypass, abort), then its command queue filled with fuzz-chosen commands
//! (architected opcodes with fuzz-chosen fields, CMD_SYNC with any completion signal and MSI address,
//! raw words) while PROD is written with fuzz values, and CONS, GERRORN and CR0 with garbage; DMA
//! translations are interleaved.
//!
//! Checks, after every step: no panic or hang (one PROD write runs at most one queue's worth); PROD and
//! CONS hold only index + wrap bits of the queue size (and CONS the ERR field); GERROR and GERRORN hold
//! only architected bits; CR0ACK follows CR0; a write that makes an enabled queue without a pending
//! error consume, with PROD at most one lap ahead, drains it; a new command error leaves CONS.ERR =
//! CERROR_ILL or CERROR_ABT with GERROR.CMDQ_ERR active. Translations are well formed or architected
//! events, and exactly the set-up mappings while no command wrote memory (CMD_SYNC MSIs may scribble
//! anywhere).
//! Finally Linux-style recovery (disable, CONS = PROD, acknowledge GERROR, re-enable, rewrite the
//! structures, CFGI_ALL + TLBI_NSNH_ALL + CMD_SYNC, SMMUEN) must bring every mapping back.
#![no_main]

#[path = "common/smmuv3.rs"]
mod common;

use common::{check_fault, check_registers, check_translation, config, Input, Placement, Unit};
use iommu::smmuv3::regs::*;
use iommu::RequestKind;
use libfuzzer_sys::fuzz_target;

const MEM: u64 = 4 << 20;
const STRTAB: u64 = 0x4000;
const POOL: u64 = 0x2_0000;
/// The event queue and, right after it, up to 2^16 commands (1 MiB): the range whose writes are
/// expected.
const EVTQ: u64 = 0xf_f000;
const EVTQ_LOG2: u32 = 4;
const CMDQ: u64 = 0x10_0000;
const QUIET: (u64, u64) = (EVTQ, CMDQ + (16 << 16));
const DATA: u64 = 0x30_0000;
const IOVA: u64 = 0x12_3456_7000;

const S1_RW: u64 = 1 << 10 | 1 << 6;
const S2_RW: u64 = 1 << 10 | 3 << 6;

/// Opcodes worth generating: every architected one this model knows, and a few it refuses.
const OPS: [u8; 26] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x18, 0x1a, 0x20, 0x21, 0x22, 0x23,
    0x28, 0x2a, 0x30, 0x40, 0x41, 0x44, 0x45, 0x46, 0x46, 0x46,
];

/// The streams the harness sets up and what their IOVA must translate to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Maps(u64),
    /// Maps IOVA and, identity, the first 4 MiB (the stage 2 table nested streams share).
    MapsLowIdentity(u64),
    Bypass,
    Abort,
    BadSte,
}

struct Streams {
    list: Vec<(u32, Expect)>,
    writes: Vec<(u64, u64)>,
}

impl Streams {
    fn wr(&mut self, addr: u64, v: u64) {
        self.writes.push((addr, v));
    }

    /// Writes every structure word again (after a CMD_SYNC MSI may have hit one).
    fn rewrite(&self, u: &Unit) {
        for &(a, v) in &self.writes {
            u.mem.poke(a, v);
        }
    }

    /// A 4-level 4K table from `root` mapping IOVA -> `pa` with `attrs` (tables from `next`).
    fn map4k(&mut self, next: &mut u64, root: u64, iova: u64, pa: u64, attrs: u64) {
        let mut table = root;
        for level in 0..3 {
            let slot = table + ((iova >> (39 - 9 * level)) & 0x1ff) * 8;
            let existing = self.writes.iter().rev().find(|(a, _)| *a == slot);
            table = match existing {
                Some(&(_, d)) if d & 0b11 == 0b11 => d & 0x0000_ffff_ffff_f000,
                _ => {
                    let t = *next;
                    *next += 0x1000;
                    self.wr(slot, t | 0b11);
                    t
                }
            };
        }
        self.wr(table + ((iova >> 12) & 0x1ff) * 8, pa | 0b11 | attrs);
    }
}

fn streams(u: &Unit) -> Streams {
    let cfg = u.smmu.config().clone();
    let mut s = Streams {
        list: Vec::new(),
        writes: Vec::new(),
    };
    let mut next = POOL;
    let mut page = || {
        let p = next;
        next += 0x1000;
        p
    };
    // Stage 2: 4K, S2T0SZ 16, SL0 2 (4 levels), S2PS 48, AA64, S2R; identity for the first 4 MiB
    // (where the nested stage 1 tables live) plus IOVA -> DATA.
    let ste2 = |vmid: u64| vmid | 16 << 32 | 2 << 38 | 5 << 48 | 1 << 51 | 1 << 58;
    let cd0 =
        |asid: u64| 16 | 1 << 30 | 1 << 31 | 5 << 32 | 1 << 41 | 1 << 45 | 1 << 46 | asid << 48;
    let s2_root = page();
    let s1_root = page();
    let cd = page();
    let nested_root = page();
    let nested_cd = page();
    let mut tables = POOL + 0x10_000;
    // Stage 2 identity over [0, 4 MiB) with 2M blocks: L0 -> L1 -> L2 table, then blocks.
    {
        let (l1, l2) = (tables, tables + 0x1000);
        tables += 0x2000;
        s.wr(s2_root, l1 | 0b11);
        s.wr(l1, l2 | 0b11);
        s.wr(l2, S2_RW | 0b01);
        s.wr(l2 + 8, 0x20_0000 | S2_RW | 0b01);
    }
    s.map4k(&mut tables, s2_root, IOVA, DATA, S2_RW);
    s.map4k(&mut tables, s1_root, IOVA, DATA + 0x1000, S1_RW);
    s.map4k(&mut tables, nested_root, IOVA, IOVA, S1_RW);
    s.wr(cd, cd0(1));
    s.wr(cd + 8, s1_root);
    s.wr(nested_cd, cd0(2));
    s.wr(nested_cd + 8, nested_root);
    let ste = |sid: u64| STRTAB + sid * 64;
    if cfg.stage1 {
        s.wr(ste(0x18), 1 | 0b101 << 1 | cd);
        s.wr(ste(0x18) + 16, 3 | 1 << 51);
        s.list.push((0x18, Expect::Maps(DATA + 0x1000)));
    }
    if cfg.stage2 {
        s.wr(ste(0x20), 1 | 0b110 << 1);
        s.wr(ste(0x20) + 16, ste2(4));
        s.wr(ste(0x20) + 24, s2_root);
        s.list.push((0x20, Expect::MapsLowIdentity(DATA)));
    }
    if cfg.stage1 && cfg.stage2 {
        // Nested: stage 1 maps IOVA -> IPA IOVA, stage 2 IPA IOVA -> DATA.
        s.wr(ste(0x28), 1 | 0b111 << 1 | nested_cd);
        s.wr(ste(0x28) + 16, ste2(5));
        s.wr(ste(0x28) + 24, s2_root);
        s.list.push((0x28, Expect::Maps(DATA)));
    } else {
        // A stage the SMMU lacks: C_BAD_STE.
        s.wr(ste(0x28), 1 | 0b111 << 1 | nested_cd);
        s.list.push((0x28, Expect::BadSte));
    }
    s.wr(ste(0x30), 1 | 0b100 << 1);
    s.list.push((0x30, Expect::Bypass));
    s.wr(ste(0x38), 1);
    s.list.push((0x38, Expect::Abort));
    s
}

/// A command: an architected opcode with fuzz-chosen fields, or raw words.
fn command(inp: &mut Input, slot: u64) -> (u64, u64) {
    let sel = inp.u8();
    if sel % 16 == 15 {
        return (inp.u64(), inp.u64());
    }
    let op = u64::from(OPS[usize::from(sel >> 3) % OPS.len()]);
    let fields = match inp.u8() % 4 {
        0 => 0,
        1 => u64::from(inp.u16()) << 32 | u64::from(inp.u8() & 0x3) << 12,
        _ => inp.u64() & !0xff,
    };
    let w1 = if op == 0x46 {
        // CMD_SYNC MSIAddr: none, Linux's MSI polling on its own slot, the interrupt window, or
        // anything (possibly a structure).
        match inp.u8() % 8 {
            0 | 1 => 0,
            2..=4 => slot,
            5 => 0xfee0_0000 | u64::from(inp.u16()) << 2,
            _ => inp.u64(),
        }
    } else {
        match inp.u8() % 4 {
            0 => 0,
            1 => IOVA | u64::from(inp.u16() & 0xfff),
            _ => inp.u64(),
        }
    };
    (op | fields, w1)
}

fn check_translations(u: &Unit, s: &Streams, exact: bool, inp: &mut Input) {
    let oas = u.oas_bits();
    let smmuen = u.r32(CR0) & CR0_SMMUEN != 0;
    for &(sid, expect) in &s.list {
        let flags = inp.u8();
        let iova = if flags & 0x10 != 0 {
            inp.u64()
        } else {
            IOVA | u64::from(inp.u16() & 0xfff)
        };
        let req = common::request(sid, None, iova, flags & 0xe0);
        let r = u.translate(&req);
        match &r {
            Ok(t) => check_translation(&req, t, oas),
            Err(f) => check_fault(&req, f),
        }
        if !exact || req.kind != RequestKind::Untranslated {
            continue;
        }
        let mapped = iova & !0xfff == IOVA;
        let out = r.as_ref().map(|t| t.translate(iova)).map_err(|f| f.reason);
        let want: Result<u64, u32> = match (smmuen, expect) {
            (false, _) | (true, Expect::Bypass) if iova >> oas == 0 => Ok(iova),
            (false, _) | (true, Expect::Bypass) => Err(0),
            (true, Expect::Abort) => Err(0),
            (true, Expect::BadSte) => Err(0x04),
            (true, Expect::Maps(pa) | Expect::MapsLowIdentity(pa)) if mapped => {
                Ok(pa | (iova & 0xfff))
            }
            (true, Expect::MapsLowIdentity(_)) if iova < 4 << 20 => Ok(iova),
            // Unmapped in a 48-bit table: beyond it or not present, F_TRANSLATION either way.
            (true, Expect::Maps(_) | Expect::MapsLowIdentity(_)) => Err(0x10),
        };
        assert_eq!(out, want, "SID {sid:#x} {req:x?}: {r:x?}");
    }
}

/// Index + wrap mask of a queue of 2^log2 entries.
fn wrap_mask(log2: u32) -> u32 {
    (2u32 << log2) - 1
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let (c0, c1, c2) = (inp.u8(), inp.u8(), inp.u8());
    // A linear stream table of 256 STEs, and a 48-bit OAS (the 4-level stage 2 needs PAMax >= 44).
    let mut cfg = config((c0 | 0x80) & !0x0c, c1, c2 & 1 != 0);
    cfg.two_level_strtab = false;
    let u = Unit::new(cfg, MEM, QUIET);
    // LOG2SIZE: small queues usually; sometimes the largest, or a value above it (behaves as it).
    let base_log2 = match c2 >> 5 {
        0..=4 => u32::from(c2 >> 1 & 0xf) % 11,
        5 => 1,
        6 => CMDQS,
        _ => 31,
    };
    let log2 = base_log2.min(CMDQS);
    let place = Placement {
        strtab: STRTAB,
        strtab_cfg: 8,
        cmdq: CMDQ,
        cmdq_log2: base_log2,
        evtq: EVTQ,
        evtq_log2: EVTQ_LOG2,
        evtq_on: true,
    };
    u.bring_up(&place);
    let s = streams(&u);
    s.rewrite(&u);
    u.invalidate_all();
    let writes0 = u.mem.writes();
    let mut inp2 = Input::new(&[]);
    check_translations(&u, &s, true, &mut inp2);

    // The queue's slots: fuzz commands from CONS on.
    let cons0 = u.r32(CMDQ_CONS) & wrap_mask(log2);
    let entries = 1u64 << log2;
    let fill = u64::from(inp.u8()).min(entries);
    for i in 0..fill {
        let slot = CMDQ + ((u64::from(cons0) + i) % entries) * 16;
        let (w0, w1) = command(&mut inp, slot);
        u.mem.poke(slot, w0);
        u.mem.poke(slot + 8, w1);
    }

    let mask = wrap_mask(log2);
    let mut steps = 0;
    while !inp.is_empty() && steps < 256 {
        steps += 1;
        let cons_before = u.r32(CMDQ_CONS);
        let errors_before = u.smmu.stats().command_errors;
        let op = inp.u8() % 16;
        let cmdq_err = |u: &Unit| (u.r32(GERROR) ^ u.r32(GERRORN)) & GERROR_CMDQ_ERR != 0;
        let cmdqen = |u: &Unit| u.r32(CR0) & CR0_CMDQEN != 0;
        let (en_before, err_before) = (cmdqen(&u), cmdq_err(&u));
        let mut prod_written = matches!(op, 0..=6);
        match op {
            0..=5 => {
                let v = match inp.u8() % 4 {
                    0 => inp.u32(),
                    _ => cons_before.wrapping_add(inp.below(u64::from(mask) + 2) as u32),
                };
                u.w32(CMDQ_PROD, v);
            }
            6 => u.w64(CMDQ_PROD, inp.u64()),
            7 => u.w32(CMDQ_CONS, inp.u32()),
            8 => {
                // Acknowledge (GERRORN = GERROR), as Linux does, or garbage.
                let v = if inp.bool() { u.r32(GERROR) } else { inp.u32() };
                u.w32(GERRORN, v);
            }
            9 => {
                let v = match inp.u8() % 4 {
                    0 => inp.u32(),
                    1 => CR0_EVTQEN | CR0_SMMUEN,
                    _ => CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN,
                };
                u.w32(CR0, v);
            }
            10 | 11 => {
                let idx = inp.below(entries.min(0x1_0000));
                let slot = CMDQ + idx * 16;
                let (w0, w1) = command(&mut inp, slot);
                u.mem.poke(slot, w0);
                u.mem.poke(slot + 8, w1);
            }
            12 => {
                // Garbage into PROD, CONS, GERROR (read-only) or GERRORN.
                let off = [CMDQ_PROD, CMDQ_CONS, GERROR, GERRORN][usize::from(inp.u8() & 3)];
                prod_written = off == CMDQ_PROD;
                u.w32(off, inp.u32());
            }
            _ => {
                let exact = u.mem.writes() == writes0;
                check_translations(&u, &s, exact, &mut inp);
            }
        }
        check_registers(&u);
        let (prod, cons) = (u.r32(CMDQ_PROD), u.r32(CMDQ_CONS));
        assert_eq!(prod & !mask, 0, "PROD {prod:#x} (log2 {log2})");
        assert_eq!(
            cons & !mask & !(0x7f << 24),
            0,
            "CONS {cons:#x} (log2 {log2})"
        );
        let err_active = cmdq_err(&u);
        // Writes that make the SMMU consume commands: PROD, CR0 setting CMDQEN, GERRORN acknowledging
        // a command error.
        let consumes = prod_written || (!en_before && cmdqen(&u)) || (err_before && !err_active);
        if u.smmu.stats().command_errors > errors_before {
            let err = cons >> 24 & 0x7f;
            assert!(
                err == CERROR_ILL || err == CERROR_ABT,
                "CONS.ERR {err} after a command error"
            );
            assert!(err_active, "command error without GERROR.CMDQ_ERR");
        }
        // A PROD at most one lap ahead of CONS is consumed to the end (more than a lap ahead is
        // software's error: the SMMU consumes one lap and stops).
        let behind = prod.wrapping_sub(cons_before & mask) & mask;
        if consumes && u.r32(CR0) & CR0_CMDQEN != 0 && !err_active && behind <= 1 << log2 {
            assert_eq!(
                cons & mask,
                prod,
                "enabled queue without error not drained (CONS was {cons_before:#x})"
            );
        }
    }

    // Recovery, as a driver would after a reset: queue off, CONS = PROD, errors acknowledged,
    // queue on, structures rewritten and invalidated, SMMU on.
    u.w32(CR0, 0);
    u.w32(CMDQ_CONS, u.r32(CMDQ_PROD));
    u.w32(GERRORN, u.r32(GERROR));
    u.w32(CR0, CR0_CMDQEN | CR0_EVTQEN);
    s.rewrite(&u);
    u.invalidate_all();
    u.w32(CR0, CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    check_registers(&u);
    assert_eq!((u.r32(GERROR) ^ u.r32(GERRORN)) & GERROR_CMDQ_ERR, 0);
    check_translations(&u, &s, true, &mut Input::new(&[]));
});
