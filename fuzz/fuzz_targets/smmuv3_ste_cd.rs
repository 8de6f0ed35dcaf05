//! SMMUv3 configuration structures from fuzz input: STEs (linear or 2-level stream table, L1
//! descriptors with fuzz-chosen SPAN), CD tables (linear, 2-level with 4K or 64K leaves), CDs and
//! stage 1 / stage 2 translation tables, with fuzz-chosen fields, stray bits and pointers that are
//! fresh structures, existing ones, or anything. Two SMMUs over two identical memories, one with
//! caching=on and one with caching=off, are brought up the way Linux does it, then fuzz-chosen
//! requests (SID, SSID, IOVA, access, privilege, ATS) are translated on both.
//!
//! Checks: no panic; every translation is well formed (covers the IOVA, aligned page and output inside
//! the OAS, permissions that allow an ordinary access) and every fault is an architected event; the
//! side-effect-free `lookup` agrees with `translate` (same translation, or same event number / abort)
//! and writes nothing; translating twice on the caching SMMU gives the same answer; caching on and off
//! give identical results, including whether the event was recorded. `dump` and `permitted_ranges`
//! must not panic either.
//!
//! Cache-correctness needs what software guarantees: a unique VMID per STE and a unique ASID per CD
//! (the harness never lets noise touch them). When a pointer is hostile (not a fresh structure) or
//! noise is XORed into a structure, the layout is "unclean" and both SMMUs get CFGI_ALL + TLBI_NSNH_ALL
//! before each request; likewise once a translation writes memory (HTTU access/dirty updates) or a
//! structure is read from the event queue.
#![no_main]

#[path = "common/smmuv3.rs"]
mod common;

use common::{check_fault, check_translation, config, read_after_write, Input, Placement, Unit};
use iommu::smmuv3::pagetable::{Granule, Stage, WalkConfig};
use iommu::smmuv3::{LookupResult, Smmuv3Config};
use iommu::{DmaRequest, RequestKind};
use libfuzzer_sys::fuzz_target;

const MEM: u64 = 2 << 20;
const CMDQ: u64 = 0x1000;
const CMDQ_LOG2: u32 = 6;
const EVTQ: u64 = 0x2000;
const EVTQ_LOG2: u32 = 4;
const QUIET: (u64, u64) = (EVTQ, EVTQ + (32 << EVTQ_LOG2));
const STRTAB: u64 = 0x4000;
/// Linear stream tables hold 2^8 STEs (16 KiB); 2-level L1 tables at most 2^8 descriptors.
const LINEAR_LOG2: u32 = 8;
const SPLIT: u32 = 8;
const POOL: u64 = 0x1_0000;
const POOL_END: u64 = 0x1c_0000;
/// Stage 1 outputs in this IPA window are mapped (or not) by stage 2 onto data pages.
const HIGH_IPA: u64 = 0x40_0000_0000;
const DATA: u64 = 0x1c_0000;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

const S1_RW: u64 = 1 << 10 | 1 << 6;
const S2_RW: u64 = 1 << 10 | 3 << 6;

/// Valid stage 2 (granule, S2SL0, S2T0SZ range) combinations at a 48-bit output size.
const S2_VALID: [(Granule, u8, u8, u8); 6] = [
    (Granule::G4K, 0, 30, 39),
    (Granule::G4K, 1, 21, 33),
    (Granule::G4K, 2, 16, 24),
    (Granule::G16K, 1, 24, 38),
    (Granule::G64K, 1, 18, 34),
    (Granule::G64K, 0, 31, 39),
];

/// A structure pointer and whether it is a fresh block the harness owns.
struct Ptr {
    addr: u64,
    own: bool,
}

/// A stream the harness set up: its SID and the SSIDs with a CD.
struct Dev {
    sid: u32,
    ssids: Vec<u32>,
}

struct Layout<'a> {
    a: &'a Unit,
    b: &'a Unit,
    cfg: Smmuv3Config,
    two_level: bool,
    next: u64,
    blocks: Vec<u64>,
    devs: Vec<Dev>,
    /// Translation regimes the harness built (for more mappings): the walk, and for a nested stage 1
    /// the stage 2 its outputs go through.
    domains: Vec<(WalkConfig, Option<WalkConfig>)>,
    iovas: Vec<u64>,
    next_vmid: u16,
    next_asid: u16,
    clean: bool,
}

impl Layout<'_> {
    fn wr(&self, addr: u64, v: u64) {
        self.a.mem.poke(addr, v);
        self.b.mem.poke(addr, v);
    }

    fn rd(&self, addr: u64) -> u64 {
        self.a.mem.peek(addr)
    }

    fn alloc(&mut self, size: u64) -> Option<u64> {
        let size = size.max(8);
        let a = (self.next + size - 1) & !(size - 1);
        if a + size > POOL_END {
            return None;
        }
        self.next = a + size;
        self.blocks.push(a);
        Some(a)
    }

    /// Usually a fresh block of `size` (aligned to it); sometimes an existing block, a harness
    /// structure, or anything (unclean).
    fn pointer(&mut self, inp: &mut Input, size: u64) -> Ptr {
        let hostile = match inp.u8() % 16 {
            13 if !self.blocks.is_empty() => {
                Some(self.blocks[inp.below(self.blocks.len() as u64) as usize])
            }
            14 => Some([STRTAB, CMDQ, EVTQ, DATA][usize::from(inp.u8() & 3)]),
            15 => Some(inp.u64() & ADDR),
            _ => None,
        };
        match hostile {
            Some(addr) => {
                self.clean = false;
                Ptr { addr, own: false }
            }
            None => match self.alloc(size) {
                Some(addr) => Ptr { addr, own: true },
                None => {
                    self.clean = false;
                    Ptr {
                        addr: DATA,
                        own: false,
                    }
                }
            },
        }
    }

    /// Fuzz bits to XOR into a structure word, restricted to `mask`; any makes the layout unclean.
    fn noise(&mut self, inp: &mut Input, mask: u64) -> u64 {
        let n = inp.noise() & mask;
        if n != 0 {
            self.clean = false;
        }
        n
    }

    /// The address of `sid`'s STE, creating its level 2 table in the 2-level format.
    fn ste_addr(&mut self, inp: &mut Input, sid: u32) -> Option<u64> {
        if !self.two_level {
            return Some(STRTAB + u64::from(sid) * 64);
        }
        let l1 = STRTAB + u64::from(sid >> SPLIT) * 8;
        let d = self.rd(l1);
        if d != 0 {
            return Some((d & 0x000f_ffff_ffff_ffc0) + u64::from(sid & ((1 << SPLIT) - 1)) * 64);
        }
        // SPAN = SPLIT + 1 (the whole level 2 table) usually; sometimes too small, 0, or anything.
        let span = match inp.u8() % 16 {
            13 => u64::from(inp.u8() & 0x1f),
            14 => 0,
            15 => 1,
            _ => u64::from(SPLIT + 1),
        };
        let p = self.pointer(inp, 64 << SPLIT);
        let noise = self.noise(inp, !0x1f);
        self.wr(l1, (p.addr | span) ^ noise);
        p.own
            .then(|| p.addr + u64::from(sid & ((1 << SPLIT) - 1)) * 64)
    }

    /// A stage 2 regime with its tables: the first 2 MiB identity-mapped.
    fn stage2(&mut self, inp: &mut Input) -> (WalkConfig, Ptr, u64) {
        let (granule, sl0, tsz, s2tg) = if inp.u8() % 16 == 15 {
            let tg = inp.u8() & 3;
            (
                Granule::from_s2tg(tg).unwrap_or(Granule::G4K),
                inp.u8() & 3,
                inp.u8() & 0x3f,
                u64::from(tg),
            )
        } else {
            let (g, sl0, lo, hi) = S2_VALID[inp.below(S2_VALID.len() as u64) as usize];
            let tg = match g {
                Granule::G4K => 0,
                Granule::G64K => 1,
                Granule::G16K => 2,
            };
            (g, sl0, lo + inp.u8() % (hi - lo + 1), tg)
        };
        let flags = inp.u8();
        let httu = self.cfg.httu;
        let ha = httu >= 1 && flags & 1 != 0;
        let mut wc = WalkConfig {
            stage: Stage::S2,
            ttb: 0,
            tsz,
            granule,
            sl0,
            oas_bits: self.cfg.oas_bits.min(48),
            affd: flags & 4 != 0,
            ha,
            hd: ha && httu >= 2 && flags & 2 != 0,
        };
        let root_size = match wc.validate() {
            Ok(start) => {
                (8u64 << (wc.input_bits() - granule.level_shift(start))).max(granule.page_size())
            }
            Err(_) => granule.page_size(),
        };
        let root = self.pointer(inp, root_size);
        wc.ttb = root.addr;
        if root.own && wc.validate().is_ok() {
            // Identity over [0, MEM): level 2 blocks (level 3 pages when the walk starts there).
            let leaf_level = wc.validate().unwrap_or(2).max(2);
            let size = 1u64 << granule.level_shift(leaf_level);
            let mut pa = 0;
            while pa < MEM {
                self.map_in(None, &wc, pa, pa, leaf_level, S2_RW);
                pa += size;
            }
        }
        let w2_fields = u64::from(tsz) << 32
            | u64::from(sl0) << 38
            | s2tg << 46
            | 5 << 48
            | 1 << 51
            | u64::from(wc.affd) << 53
            | u64::from(flags & 2 != 0) << 55
            | u64::from(flags & 1 != 0) << 56;
        (wc, root, w2_fields)
    }

    /// Writes the leaf `pa | attrs` for `iova` at `leaf_level` of `wc`'s tables, allocating tables
    /// (with `inp`: fuzz-chosen, possibly hostile, pointers and table bits).
    fn map_in(
        &mut self,
        mut inp: Option<&mut Input>,
        wc: &WalkConfig,
        iova: u64,
        pa: u64,
        leaf_level: u8,
        attrs: u64,
    ) {
        let Ok(start) = wc.validate() else {
            return;
        };
        let g = wc.granule;
        let ias = wc.input_bits();
        let leaf_level = leaf_level.clamp(start, 3);
        if !g.block_allowed(leaf_level, false) && leaf_level != 3 {
            return;
        }
        let mut table = wc.ttb;
        for level in start..=3 {
            let shift = g.level_shift(level);
            let bits = if level == start {
                ias - shift
            } else {
                g.stride()
            };
            let slot = table + ((iova >> shift) & ((1u64 << bits) - 1)) * 8;
            if level == leaf_level {
                let kind = if level == 3 { 0b11 } else { 0b01 };
                let out = pa & ADDR & !((1u64 << shift) - 1);
                self.wr(slot, out | kind | attrs);
                self.iovas.push(iova);
                return;
            }
            let d = self.rd(slot);
            if d & 3 == 3 {
                let next = d & 0x0000_ffff_ffff_f000 & !(g.page_size() - 1);
                if !self.blocks.contains(&next) {
                    return;
                }
                table = next;
                continue;
            }
            let (p, extra) = match inp.as_deref_mut() {
                Some(inp) => {
                    let p = self.pointer(inp, g.page_size());
                    let bits = if wc.stage == Stage::S1 && inp.u8() % 8 == 7 {
                        u64::from(inp.u8() & 0x1f) << 59
                    } else {
                        0
                    };
                    (p, bits)
                }
                None => match self.alloc(g.page_size()) {
                    Some(addr) => (Ptr { addr, own: true }, 0),
                    None => return,
                },
            };
            self.wr(slot, p.addr | 0b11 | extra);
            if !p.own {
                return;
            }
            table = p.addr;
        }
    }

    fn leaf_attrs(inp: &mut Input, stage: Stage) -> u64 {
        let base = if stage == Stage::S1 { S1_RW } else { S2_RW };
        match inp.u8() % 8 {
            5 => base & !(1 << 10),
            6 => match stage {
                Stage::S1 => base | 1 << 51 | 1 << 7,
                Stage::S2 => (base & !(1 << 7)) | 1 << 51,
            },
            7 => (u64::from(inp.u16()) & 0xffc) | u64::from(inp.u16() & 0xfffc) << 48,
            _ => base,
        }
    }

    /// One more mapping in a harness domain.
    fn map(&mut self, inp: &mut Input) {
        if self.domains.is_empty() {
            return;
        }
        let (wc, nest) = self.domains[inp.below(self.domains.len() as u64) as usize];
        let level = match inp.u8() % 8 {
            0 => 1,
            1 | 2 => 2,
            _ => 3,
        };
        let limit = 1u64
            .checked_shl(wc.input_bits())
            .unwrap_or(0)
            .wrapping_sub(1);
        let iova = match inp.u8() % 4 {
            0 => inp.u64() & limit,
            1 if !self.iovas.is_empty() => {
                self.iovas[inp.below(self.iovas.len() as u64) as usize]
                    .wrapping_add(u64::from(inp.u16()) << 12)
                    & limit
            }
            _ => (u64::from(inp.u32()) << 12) & limit,
        };
        let out = match (inp.u8() % 4, nest.is_some()) {
            (0, _) => inp.u64(),
            (1, true) => HIGH_IPA + (u64::from(inp.u16()) << 12),
            _ => DATA + (u64::from(inp.u16()) << 12) % (MEM - DATA),
        };
        let attrs = Self::leaf_attrs(inp, wc.stage);
        self.map_in(Some(inp), &wc, iova, out, level, attrs);
        if let Some(s2) = nest {
            if out >= HIGH_IPA && inp.u8() % 4 != 3 {
                let pa = DATA + (out & 0xf_f000) % (MEM - DATA);
                self.map_in(None, &s2, out, pa, 3, S2_RW);
            }
        }
    }

    /// A CD with its stage 1 tables (and, nested, the stage 2 its outputs go through).
    fn cd(&mut self, inp: &mut Input, addr: u64, s2: Option<WalkConfig>) {
        let (tg0, granule) = match inp.u8() % 8 {
            5 => (2, Granule::G16K),
            6 => (1, Granule::G64K),
            7 => (3, Granule::G4K),
            _ => (0, Granule::G4K),
        };
        let t0sz = match inp.u8() % 8 {
            0 => 25,
            1 => 33,
            2 => inp.u8() & 0x3f,
            3 => 16 + inp.u8() % 24,
            _ => 16,
        };
        let flags = inp.u8();
        let httu = self.cfg.httu;
        let ha = httu >= 1 && flags & 1 != 0;
        let ips = if flags & 0x80 != 0 {
            u64::from(inp.u8() & 7)
        } else {
            5
        };
        let mut wc = WalkConfig {
            stage: Stage::S1,
            ttb: 0,
            tsz: t0sz,
            granule,
            sl0: 0,
            oas_bits: [32, 36, 40, 42, 44, 48, 52, self.cfg.oas_bits][ips as usize]
                .min(self.cfg.oas_bits),
            affd: flags & 4 != 0,
            ha,
            hd: ha && httu >= 2 && flags & 2 != 0,
        };
        let root_size = granule.page_size();
        let root = self.pointer(inp, root_size);
        wc.ttb = root.addr;
        if root.own && wc.validate().is_ok() {
            self.domains.push((wc, s2));
            for _ in 0..1 + inp.below(3) {
                self.map(inp);
            }
        }
        self.next_asid += 1;
        let asid = u64::from(self.next_asid);
        // TTB1 disabled (EPD1) usually; sometimes enabled over the same tables.
        let epd1 = u64::from(inp.u8() % 8 != 7);
        let w0 = u64::from(t0sz)
            | tg0 << 6
            | u64::from(inp.u8() % 16 == 15) << 14
            | 16 << 16
            | 2 << 22
            | epd1 << 30
            | u64::from(inp.u8() % 16 != 15) << 31
            | ips << 32
            | u64::from(wc.affd) << 35
            | u64::from(inp.u8() % 16 != 15) << 41
            | u64::from(flags & 2 != 0) << 42
            | u64::from(flags & 1 != 0) << 43
            | u64::from(flags & 0x10 == 0) << 45
            | 1 << 46
            | asid << 48;
        let n0 = self.noise(inp, 0x0000_ffff_ffff_ffff);
        self.wr(addr, w0 ^ n0);
        self.wr(addr + 8, root.addr);
        self.wr(addr + 16, root.addr);
        self.wr(addr + 24, 0x0404_ff44);
        for i in 4..8 {
            let n = self.noise(inp, u64::MAX);
            self.wr(addr + 8 * i, n);
        }
    }

    /// An STE for `sid` and its CD table, CDs and tables.
    fn device(&mut self, inp: &mut Input, sid: u32) {
        let Some(ste) = self.ste_addr(inp, sid) else {
            return;
        };
        let config = match inp.u8() % 16 {
            0 => 0b000,
            1 => 0b100,
            2..=5 => 0b101,
            6..=8 => 0b110,
            9 => u64::from(inp.u8() & 7),
            _ => 0b111,
        };
        let valid = u64::from(inp.u8() % 16 != 15);
        self.next_vmid += 1;
        let vmid = u64::from(self.next_vmid);
        let mut w = [0u64; 8];
        w[0] = valid | config << 1;
        w[2] = vmid | 1 << 51 | u64::from(inp.u8() % 8 != 7) << 58;
        let mut s2 = None;
        if config & 0b010 != 0 && self.cfg.stage2 {
            let (wc, root, fields) = self.stage2(inp);
            w[2] |= fields;
            w[3] = root.addr;
            if root.own && wc.validate().is_ok() {
                s2 = Some(wc);
                if config == 0b110 {
                    self.domains.push((wc, None));
                    for _ in 0..inp.below(3) {
                        self.map(inp);
                    }
                }
            }
        }
        let mut ssids = Vec::new();
        if config & 0b001 != 0 && self.cfg.stage1 {
            let max = u64::from(self.cfg.ssid_bits.min(12));
            let cdmax = if max == 0 || inp.u8() % 2 == 0 {
                0
            } else {
                1 + inp.below(max)
            };
            // S1Fmt: linear, 2-level with 4K (64-CD) or 64K (1024-CD) leaves.
            let fmt = if cdmax > 6 || (cdmax > 0 && inp.u8() % 4 == 3) {
                1 + u64::from(inp.u8() % 4 == 3)
            } else {
                0
            };
            let s1dss = u64::from(inp.u8() % 3);
            let split = [0, 6, 10][fmt as usize];
            let table_size = if fmt == 0 {
                64u64 << cdmax
            } else {
                8u64 << cdmax.saturating_sub(split)
            };
            let table = self.pointer(inp, table_size.max(64));
            w[0] |= fmt << 4 | table.addr | cdmax << 59;
            w[1] = s1dss;
            let mut picks = vec![0u32];
            for _ in 0..inp.below(4) {
                picks.push((inp.u32() as u64 % (1u64 << cdmax)) as u32);
            }
            picks.sort_unstable();
            picks.dedup();
            for ssid in picks {
                if !table.own {
                    break;
                }
                let idx = u64::from(ssid);
                let cd_addr = if fmt == 0 {
                    Some(table.addr + idx * 64)
                } else {
                    let l1 = table.addr + (idx >> split) * 8;
                    let d = self.rd(l1);
                    if d & 1 != 0 {
                        Some((d & ADDR) + (idx & ((1 << split) - 1)) * 64)
                    } else {
                        let leaf = self.pointer(inp, 64 << split);
                        let v = u64::from(inp.u8() % 16 != 15);
                        self.wr(l1, leaf.addr | v);
                        leaf.own
                            .then(|| leaf.addr + (idx & ((1 << split) - 1)) * 64)
                    }
                };
                if let Some(a) = cd_addr {
                    self.cd(inp, a, s2);
                    ssids.push(ssid);
                }
            }
        }
        let noise_mask = !0xffff_u64;
        for (i, v) in w.iter().enumerate() {
            let n = self.noise(inp, if i == 2 { noise_mask } else { u64::MAX });
            self.wr(ste + 8 * i as u64, v ^ n);
        }
        self.devs.push(Dev { sid, ssids });
    }

    fn request(&self, inp: &mut Input) -> DmaRequest {
        let flags = inp.u8();
        let dev = if self.devs.is_empty() {
            None
        } else {
            Some(&self.devs[inp.below(self.devs.len() as u64) as usize])
        };
        let sid = match (flags & 7, dev) {
            (6, _) => inp.u32(),
            (7, _) | (_, None) => u32::from(inp.u16()),
            (_, Some(d)) => d.sid,
        };
        let ssid = match ((flags >> 3) & 3, dev) {
            (2, Some(d)) if !d.ssids.is_empty() => {
                Some(d.ssids[inp.below(d.ssids.len() as u64) as usize])
            }
            (3, _) => Some(inp.u32() >> (inp.u8() % 32)),
            _ => None,
        };
        let iova = match inp.u8() % 8 {
            5 => inp.u64(),
            6 => (u64::MAX >> [16, 25, 33, 0][usize::from(inp.u8() & 3)])
                .wrapping_add(u64::from(inp.u8()))
                .wrapping_sub(0x80),
            _ if !self.iovas.is_empty() => self.iovas[inp.below(self.iovas.len() as u64) as usize]
                .wrapping_add(u64::from(inp.u16() & 0xfff)),
            _ => u64::from(inp.u32()) << 12,
        };
        common::request(sid, ssid, iova, flags)
    }
}

/// The event number (0 for an abort) a lookup result stands for, or the translation.
fn lookup_outcome(r: &LookupResult) -> Result<iommu::Translation, u32> {
    match r {
        LookupResult::Translated { translation, .. } => Ok(*translation),
        LookupResult::Event { id, .. } => Err(u32::from(*id)),
        LookupResult::Aborted { .. } => Err(0),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let (c0, c1) = (inp.u8(), inp.u8());
    let a = Unit::new(config(c0, c1, true), MEM, QUIET);
    let b = Unit::new(config(c0, c1, false), MEM, QUIET);
    let cfg = a.smmu.config().clone();
    let two_level = cfg.two_level_strtab && inp.u8() % 4 != 3;
    let sid_bits = u32::from(cfg.sid_bits);
    let strtab_cfg = if two_level {
        1 << 16 | SPLIT << 6 | sid_bits.min(SPLIT + 8)
    } else {
        sid_bits.min(LINEAR_LOG2)
    };
    let place = Placement {
        strtab: STRTAB,
        strtab_cfg,
        cmdq: CMDQ,
        cmdq_log2: CMDQ_LOG2,
        evtq: EVTQ,
        evtq_log2: EVTQ_LOG2,
        evtq_on: inp.u8() % 4 != 3,
    };
    for u in [&a, &b] {
        u.bring_up(&place);
    }
    let oas = a.oas_bits();
    let sid_limit = 1u64 << (strtab_cfg & 0x3f);

    let mut l = Layout {
        a: &a,
        b: &b,
        cfg,
        two_level,
        next: POOL,
        blocks: Vec::new(),
        devs: Vec::new(),
        domains: Vec::new(),
        iovas: Vec::new(),
        next_vmid: 0,
        next_asid: 0,
        clean: true,
    };
    for _ in 0..1 + inp.below(4) {
        let sid = match inp.u8() % 4 {
            0 => 0x18,
            1 => u32::from(inp.u8()),
            _ => (u64::from(inp.u16()) % sid_limit) as u32,
        };
        if l.devs.iter().any(|d| d.sid == sid) {
            continue;
        }
        l.device(&mut inp, sid);
    }
    for _ in 0..inp.below(16) {
        l.map(&mut inp);
    }

    let dump = inp.u8() == 0xdd;
    let mut n = 0u64;
    while n < 128 && (n < 4 || !inp.is_empty()) {
        n += 1;
        let req = l.request(&mut inp);
        if !l.clean || a.mem.quiet_read() || b.mem.quiet_read() {
            l.clean = false;
            a.invalidate_all();
            b.invalidate_all();
        }
        if n % 8 == 0 {
            a.drain_events();
            b.drain_events();
        }
        let writes = (a.mem.writes(), b.mem.writes());
        let comparable = req.kind == RequestKind::Untranslated && !req.privileged;
        let look = a
            .smmu
            .lookup(req.source_id, req.pasid, req.iova, req.access);
        assert_eq!(a.mem.writes(), writes.0, "lookup wrote memory");

        b.mem.start_log();
        let b1 = b.translate(&req);
        let log = b.mem.take_log();
        let a1 = a.translate(&req);
        let a2 = a.translate(&req);
        let b2 = b.translate(&req);
        for r in [&a1, &a2, &b1, &b2] {
            match r {
                Ok(t) => check_translation(&req, t, oas),
                Err(f) => check_fault(&req, f),
            }
        }
        assert_eq!(
            a1, b1,
            "caching on/off differ for {req:x?} (clean {})",
            l.clean
        );

        // Lookup vs translate: the same answer, unless the translation's own HTTU update was read
        // back by the same walk (hostile aliasing: the lookup saw the old descriptor).
        if comparable && !read_after_write(&log, QUIET) {
            let want = b1.as_ref().map(|t| *t).map_err(|f| f.reason);
            assert_eq!(
                lookup_outcome(&look.result),
                want,
                "lookup and translate differ for {req:x?}"
            );
        }
        if n == 1 && dump {
            // Up to 2^16 walks: only now and then.
            let _ = a.smmu.dump(req.source_id, req.pasid, 8);
            let _ = a.smmu.permitted_ranges(req.source_id, req.pasid);
        }

        if (a.mem.writes(), b.mem.writes()) != writes {
            // HTTU wrote memory. A flag written into a descriptor that is also a cached structure
            // may legitimately leave the caching SMMU behind: compare no further then, and empty the
            // caches before each later request.
            l.clean = false;
            if a2 != b2 || a.mem.snapshot() != b.mem.snapshot() {
                return;
            }
            continue;
        }
        match (&a1, &a2) {
            (Ok(x), Ok(y)) => assert_eq!(x, y, "cached translation differs for {req:x?}"),
            (Err(x), Err(y)) => assert_eq!(
                (x.reason, x.iova),
                (y.reason, y.iova),
                "cached fault differs for {req:x?}"
            ),
            _ => panic!("translating twice: {a1:x?} then {a2:x?} for {req:x?}"),
        }
        assert_eq!(a2, b2, "caching on/off differ (2nd) for {req:x?}");
    }
});
