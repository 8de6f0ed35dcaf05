//! The SMMUv3 translation-table walker (`smmuv3::pagetable::walk`) on its own: fuzz-chosen
//! `WalkConfig` fields (stage, granule, TxSZ, SL0, output size, AFFD, HA, HD; mostly valid
//! combinations), a table chain built for one IOVA with fuzz-chosen descriptors (table pointers that are
//! fresh pages, existing pages or anything, leaves at any level with any attributes), fuzz bytes tiled
//! over the low memory, and a `table_xlate` hook that is the identity, a fuzz-chosen offset, or a real
//! stage 2 walk (nesting by closure).
//!
//! Checks: no panic; Lookup never writes memory and is deterministic; Translate and Lookup agree
//! exactly when Translate wrote nothing, and up to `updated` when its HTTU update was not read back by
//! the same walk; a successful walk is well formed (page size of its level, aligned output inside the
//! output size, at most four descriptors, permissions that allow the access); translating again after
//! an update changes nothing further.
//!
//! Input: config bytes, the tile, the chain, then walks (IOVA choice, access, privilege).
#![no_main]

#[path = "common/smmuv3.rs"]
mod common;

use common::{read_after_write, Input, Tracked};
use iommu::smmuv3::pagetable::{
    walk, Granule, Mode, Stage, WalkConfig, WalkFault, WalkFaultKind, WalkOutcome,
};
use iommu::Access;
use libfuzzer_sys::fuzz_target;

const MEM: u64 = 2 << 20;
const TILED: u64 = 128 << 10;
/// The stage 2 used as `table_xlate`: 4K granule, 39-bit IPA, start level 1, identity over the
/// first 2 MiB (one block), tables here.
const NEST_L1: u64 = 0x1e_0000;
const NEST_L2: u64 = 0x1e_1000;
const NO_QUIET: (u64, u64) = (0, 0);

/// Valid (granule, SL0, TxSZ range) combinations of stage 2 (Arm ARM AArch64.S2InconsistentSL).
const S2_VALID: [(Granule, u8, u8, u8); 9] = [
    (Granule::G4K, 0, 30, 39),
    (Granule::G4K, 1, 21, 33),
    (Granule::G4K, 2, 16, 24),
    (Granule::G16K, 0, 35, 39),
    (Granule::G16K, 1, 24, 38),
    (Granule::G16K, 2, 16, 27),
    (Granule::G64K, 0, 31, 39),
    (Granule::G64K, 1, 18, 34),
    (Granule::G64K, 2, 12, 21),
];

fn granule(b: u8) -> Granule {
    [Granule::G4K, Granule::G4K, Granule::G16K, Granule::G64K][usize::from(b & 3)]
}

fn walk_config(inp: &mut Input) -> WalkConfig {
    let sel = inp.u8();
    let stage = if sel & 1 != 0 { Stage::S2 } else { Stage::S1 };
    let (granule, sl0, tsz) = if sel & 0x70 == 0x70 {
        // Anything (mostly invalid).
        (granule(inp.u8()), inp.u8() % 5, inp.u8() % 70)
    } else if stage == Stage::S2 {
        let (g, sl0, lo, hi) = S2_VALID[inp.below(S2_VALID.len() as u64) as usize];
        (g, sl0, lo + (inp.u8() % (hi - lo + 1)))
    } else {
        (granule(inp.u8()), 0, 16 + inp.u8() % 24)
    };
    let oas_bits = match inp.u8() % 8 {
        0 => 52,
        1 => 40,
        2 => 32,
        3 => inp.u8(),
        _ => 48,
    };
    let flags = inp.u8();
    WalkConfig {
        stage,
        ttb: 0,
        tsz,
        granule,
        sl0,
        oas_bits,
        affd: flags & 1 != 0,
        ha: flags & 2 != 0,
        hd: flags & 6 == 6,
    }
}

/// Bump allocator of naturally aligned blocks above the tiled range.
struct Alloc {
    next: u64,
    pages: Vec<u64>,
}

impl Alloc {
    fn take(&mut self, size: u64) -> Option<u64> {
        let a = self.next.checked_add(size - 1)? & !(size - 1);
        (a + size <= NEST_L1).then(|| {
            self.next = a + size;
            self.pages.push(a);
            a
        })
    }

    /// A table pointer: usually a fresh block of `size`, sometimes an existing page, the tiled range,
    /// or anything.
    fn pointer(&mut self, inp: &mut Input, size: u64) -> u64 {
        match inp.u8() % 16 {
            13 if !self.pages.is_empty() => self.pages[inp.below(self.pages.len() as u64) as usize],
            14 => (u64::from(inp.u32()) % TILED) & !0xfff,
            15 => inp.u64() & 0x000f_ffff_ffff_f000,
            _ => self.take(size).unwrap_or(0),
        }
    }
}

/// Leaf attribute bits: usually a read/write, accessed leaf of the stage, sometimes fuzz-chosen.
fn leaf_attrs(inp: &mut Input, stage: Stage) -> u64 {
    const AF: u64 = 1 << 10;
    let base = match stage {
        Stage::S1 => AF | 1 << 6,
        Stage::S2 => AF | 3 << 6,
    };
    match inp.u8() % 8 {
        5 => base & !AF,
        // DBM, writable-clean (S1: AP[2] set; S2: S2AP[1] clear).
        6 => match stage {
            Stage::S1 => base | 1 << 51 | 1 << 7,
            Stage::S2 => (base & !(1 << 7)) | 1 << 51,
        },
        7 => (u64::from(inp.u16()) & 0xffc) | u64::from(inp.u16() & 0xfffc) << 48,
        _ => base,
    }
}

/// Builds the chain for `iova` from `cfg.ttb`: a table descriptor per level down to a fuzz-chosen
/// leaf level, pointers and attributes fuzz-chosen.
fn build_chain(mem: &Tracked, alloc: &mut Alloc, inp: &mut Input, cfg: &WalkConfig, iova: u64) {
    let Ok(start) = cfg.validate() else {
        return;
    };
    let g = cfg.granule;
    let ias = cfg.input_bits();
    let leaf_level = match inp.u8() % 8 {
        0 => 1,
        1 | 2 => 2,
        _ => 3,
    }
    .max(start);
    let mut table = cfg.ttb;
    for level in start..=3 {
        let shift = g.level_shift(level);
        let bits = if level == start {
            ias - shift
        } else {
            g.stride()
        };
        let slot = table.wrapping_add(((iova >> shift) & ((1u64 << bits) - 1)) * 8);
        if level == leaf_level {
            let out = match inp.u8() % 4 {
                0 => inp.u64(),
                1 => u64::from(inp.u32()) % MEM,
                _ => u64::from(inp.u32()) << 12,
            } & 0x0000_ffff_ffff_ffff
                & !((1u64 << shift) - 1);
            let kind = if level == 3 { 0b11 } else { 0b01 };
            mem.poke(slot, out | kind | leaf_attrs(inp, cfg.stage));
            return;
        }
        let next = alloc.pointer(inp, g.page_size());
        let table_bits = if cfg.stage == Stage::S1 && inp.u8() % 8 == 7 {
            u64::from(inp.u8() & 0x1f) << 59
        } else {
            0
        };
        let d = if inp.u8() % 16 == 15 {
            inp.u64()
        } else {
            next | 0b11 | table_bits
        };
        mem.poke(slot, d);
        table = next;
    }
}

/// The `table_xlate` hook: identity, an offset, a failing range, or the nesting stage 2.
#[derive(Clone, Copy)]
enum Xlate {
    Identity,
    Offset(u64),
    FailAbove(u64),
    Nested(WalkConfig),
}

fn run(
    mem: &Tracked,
    cfg: &WalkConfig,
    xlate: Xlate,
    iova: u64,
    access: Access,
    privileged: bool,
    mode: Mode,
) -> Result<WalkOutcome, WalkFault> {
    let mut hook = |ipa: u64| -> Result<u64, WalkFault> {
        match xlate {
            Xlate::Identity => Ok(ipa),
            Xlate::Offset(k) => Ok(ipa.wrapping_add(k)),
            Xlate::FailAbove(limit) if ipa >= limit => Err(WalkFault {
                kind: WalkFaultKind::Translation,
                stage: Stage::S2,
                level: 3,
                steps: Vec::new(),
                ipa: Some(ipa),
                class: iommu::smmuv3::pagetable::FaultClass::IN,
                fetch_addr: None,
            }),
            Xlate::FailAbove(_) => Ok(ipa),
            Xlate::Nested(s2) => walk(mem, &s2, ipa, Access::Read, false, mode, &mut |a| Ok(a))
                .map(|o| o.address(ipa)),
        }
    };
    walk(mem, cfg, iova, access, privileged, mode, &mut hook)
}

fn check_outcome(cfg: &WalkConfig, o: &WalkOutcome, iova: u64, access: Access) {
    assert!(o.level <= 3, "{o:x?}");
    assert_eq!(
        o.page_size,
        1u64 << cfg.granule.level_shift(o.level),
        "{o:x?}"
    );
    assert_eq!(o.output & (o.page_size - 1), 0, "unaligned output {o:x?}");
    assert_eq!(
        o.output.checked_shr(u32::from(cfg.oas_bits)).unwrap_or(0),
        0,
        "output beyond {} bits: {o:x?}",
        cfg.oas_bits
    );
    assert!(!o.steps.is_empty() && o.steps.len() <= 4, "{o:x?}");
    assert_eq!(o.steps.last().map(|s| s.level), Some(o.level));
    assert!(o.perms.allows(access), "{access:?} on {o:x?}");
    assert_eq!(o.address(iova) & !(o.page_size - 1), o.output);
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mem = Tracked::new(MEM, NO_QUIET);
    let tile_len = usize::from(inp.u16() % 2049);
    let tile = inp.bytes(tile_len);
    if !tile.is_empty() {
        let mut fill = Vec::with_capacity(2 * TILED as usize);
        fill.extend_from_slice(tile);
        while fill.len() < TILED as usize {
            fill.extend_from_within(..);
        }
        fill.truncate(TILED as usize);
        mem.fill(0, &fill);
    }
    let mut cfg = walk_config(&mut inp);
    let mut alloc = Alloc {
        next: TILED,
        pages: Vec::new(),
    };
    // Root: concatenated stage 2 tables need the whole (up to 16-table) block, aligned to its size.
    let root_size = match cfg.validate() {
        Ok(start) => {
            let bits = cfg.input_bits() - cfg.granule.level_shift(start);
            (8u64 << bits).max(cfg.granule.page_size())
        }
        Err(_) => cfg.granule.page_size(),
    };
    cfg.ttb = match inp.u8() % 16 {
        14 => (u64::from(inp.u32()) % TILED) & !0xfff,
        15 => inp.u64() & 0x000f_ffff_ffff_f000,
        _ => alloc.take(root_size).unwrap_or(0),
    };

    let mut iovas = Vec::new();
    let limit = 1u64
        .checked_shl(cfg.input_bits())
        .unwrap_or(0)
        .wrapping_sub(1);
    for _ in 0..1 + inp.below(4) {
        let iova = match inp.u8() % 4 {
            0 => inp.u64(),
            1 if !iovas.is_empty() => {
                let near: u64 = iovas[inp.below(iovas.len() as u64) as usize];
                near ^ (u64::from(inp.u16()) << 12)
            }
            _ => inp.u64() & limit,
        };
        build_chain(&mem, &mut alloc, &mut inp, &cfg, iova);
        iovas.push(iova);
    }

    let xlate = match inp.u8() % 8 {
        0 => Xlate::Offset(inp.u64()),
        1 => Xlate::FailAbove(u64::from(inp.u32())),
        2 | 3 => {
            // Stage 2 identity over [0, 2 MiB): L1[0] -> L2, L2[0] = 2 MiB block (AF clear
            // sometimes, for HTTU).
            let flags = inp.u8();
            let af = if flags & 1 != 0 { 0 } else { 1 << 10 };
            mem.poke(NEST_L1, NEST_L2 | 0b11);
            mem.poke(NEST_L2, af | 3 << 6 | 0b01);
            Xlate::Nested(WalkConfig {
                stage: Stage::S2,
                ttb: NEST_L1,
                tsz: 25,
                granule: Granule::G4K,
                sl0: 1,
                oas_bits: 48,
                affd: flags & 2 != 0,
                ha: flags & 4 != 0,
                hd: flags & 12 == 12,
            })
        }
        _ => Xlate::Identity,
    };

    let mut n = 0;
    while n < 64 && (n < 4 || !inp.is_empty()) {
        n += 1;
        let flags = inp.u8();
        let iova = match flags & 3 {
            0 => inp.u64(),
            _ => iovas[inp.below(iovas.len() as u64) as usize] ^ u64::from(inp.u16() & 0xfff),
        };
        let access = if flags & 4 != 0 {
            Access::Write
        } else {
            Access::Read
        };
        let privileged = flags & 8 != 0;

        let before = mem.writes();
        let look = run(&mem, &cfg, xlate, iova, access, privileged, Mode::Lookup);
        assert_eq!(mem.writes(), before, "Lookup wrote memory for {iova:#x}");
        let again = run(&mem, &cfg, xlate, iova, access, privileged, Mode::Lookup);
        assert_eq!(look, again, "Lookup is not deterministic");
        if let Ok(o) = &look {
            check_outcome(&cfg, o, iova, access);
            assert!(!o.updated, "Lookup says it updated {o:x?}");
        }

        mem.start_log();
        let tr = run(&mem, &cfg, xlate, iova, access, privileged, Mode::Translate);
        let log = mem.take_log();
        if let Ok(o) = &tr {
            check_outcome(&cfg, o, iova, access);
        }
        let wrote = mem.writes() != before;
        if !wrote {
            assert_eq!(
                look, tr,
                "Lookup and Translate differ for {iova:#x} ({cfg:x?})"
            );
            continue;
        }
        if read_after_write(&log, NO_QUIET) {
            // Hostile aliasing: an update this walk made was read back by it (a stage 2 descriptor
            // that is also a stage 1 one, say). Nothing more to compare.
            continue;
        }
        let normalized = tr.clone().map(|mut o| {
            o.updated = false;
            o
        });
        assert_eq!(
            look, normalized,
            "Lookup and Translate (with HTTU update) differ for {iova:#x} ({cfg:x?})"
        );
        // The update is made: the same walk again needs none (unless it changed what the hook or
        // an earlier level reads, which the log above rules out) and gives the same answer.
        let w2 = mem.writes();
        let tr2 = run(&mem, &cfg, xlate, iova, access, privileged, Mode::Translate);
        if let (Ok(a), Ok(b)) = (&tr, &tr2) {
            if mem.writes() == w2 {
                assert!(!b.updated);
                assert_eq!(
                    (a.output, a.page_size, a.perms, a.level),
                    (b.output, b.page_size, b.perms, b.level)
                );
            }
        }
    }
});
