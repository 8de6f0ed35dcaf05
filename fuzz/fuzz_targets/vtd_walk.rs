//! VT-d structure walks from fuzz-built tables. The input lays out root, context, (scalable) PASID
//! directory / table and second-stage page-table entries: mostly valid, with fuzz-chosen fields, stray
//! reserved bits, and pointers that may be fresh tables, existing structures (self-referencing and
//! shared tables), or addresses beyond memory. The unit is brought up like Linux does, then fuzz-chosen
//! requests (IOVA, access, PASID, requester) are translated on two identical units over identical
//! memory, one with caching=on and one with caching=off.
//!
//! Checks: no panic; every translation is well formed (covers the IOVA, naturally aligned page and
//! output, never reaches the interrupt range, and for an ordinary DMA request its permissions allow the
//! access); translating twice on the caching unit gives the same answer, and both answers equal the
//! caching=off unit's (including whether a fault was recorded).
//!
//! The caching unit may legitimately differ when two context or PASID entries share a domain id but not
//! their tables (software must not do that). So every entry gets its own DID, and when a structure
//! pointer that carries DIDs (root -> context table, context -> PASID directory, directory -> PASID
//! table) is hostile, or a raw qword lands outside a page table, the layout is "unclean" and the
//! caches are invalidated (globally, through the queue, on both units) before each request: the double
//! translation then still compares a cache fill with a cache hit. Likewise once a translation writes
//! memory (first-stage accessed/dirty flags): see the translation loop.
//!
//! Input: a configuration byte, the mode, devices, mappings, then requests. A zero byte always picks the
//! common case (present entry, fresh table, widest AW, no stray bits, a set-up device, a mapped IOVA),
//! so an input that runs out early still builds a working layout and translates through it.
#![no_main]

#[path = "common/vtd.rs"]
mod common;

use std::collections::{HashMap, HashSet};

use common::{check_translation, config, Input, Unit};
use iommu::{DmaPort, DmaRequest, RequestKind};
use libfuzzer_sys::fuzz_target;

const MEM: u64 = 2 << 20;
/// Harness pages: an 8 KiB invalidation queue, a status page, the root table; structures follow.
const QUEUE: u64 = 0x1000;
const STATUS: u64 = 0x3000;
const ROOT: u64 = 0x4000;
const FIRST: u64 = 0x5000;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// A page-table hierarchy the harness owns.
#[derive(Clone, Copy)]
struct Domain {
    top: u64,
    levels: u32,
    /// First-stage (IA-32e format: P, R/W, U/S, A, D) rather than second-stage (R, W) entries.
    first_stage: bool,
    /// For a nested first stage: the second-stage domain its table addresses and outputs go through
    /// (the harness maps its own first-stage pages there, identity).
    nest: Option<(u64, u32)>,
}

/// A structure pointer and whether it names a fresh page the harness owns (and fills).
struct Ptr {
    addr: u64,
    own: bool,
}

struct Layout<'a> {
    a: &'a Unit,
    b: &'a Unit,
    next: u64,
    /// Every structure page so far, for pointers at existing structures.
    pages: Vec<u64>,
    /// Page-table pages the harness owns: the only ones `map` writes through.
    pt_pages: HashSet<u64>,
    /// Page-table hierarchies the harness owns (second-stage, first-stage, nested first-stage).
    domains: Vec<Domain>,
    /// Context tables by root-entry address, PASID tables by directory-entry address.
    ctx_tables: HashMap<u64, u64>,
    pasid_tables: HashMap<u64, u64>,
    /// (requester, PASIDs it has entries for) of each device the input set up.
    devices: Vec<(u16, Vec<u32>)>,
    iovas: Vec<u64>,
    next_did: u16,
    clean: bool,
    max_aw: u64,
}

impl<'a> Layout<'a> {
    fn wr(&self, addr: u64, v: u64) {
        self.a.wr(addr, v);
        self.b.wr(addr, v);
    }

    fn rd(&self, addr: u64) -> u64 {
        self.a.rd(addr)
    }

    fn did(&mut self) -> u64 {
        self.next_did = self.next_did.wrapping_add(1);
        u64::from(self.next_did)
    }

    /// A structure pointer: mostly a fresh page, else an existing structure, the table holding the
    /// entry itself, or an address beyond memory.
    fn pointer(&mut self, inp: &mut Input, holder: u64) -> Ptr {
        let hostile = |addr| Ptr { addr, own: false };
        match inp.u8() % 16 {
            0..=10 if self.next < MEM => {
                let addr = self.next;
                self.next += 0x1000;
                self.pages.push(addr);
                Ptr { addr, own: true }
            }
            11 if !self.pages.is_empty() => {
                let i = inp.below(self.pages.len() as u64) as usize;
                hostile(self.pages[i])
            }
            12 => hostile(holder),
            13 => hostile(1 << (20 + inp.below(37))),
            14 => hostile(inp.u64() & !0xfff),
            _ => hostile(MEM + (inp.below(0x100) << 12)),
        }
    }

    /// An AW field: mostly the widest the unit supports, sometimes narrower or invalid.
    fn aw(&self, inp: &mut Input) -> u64 {
        match inp.u8() % 8 {
            6 => u64::from(inp.u8() & 7),
            7 => 1 + inp.below(self.max_aw),
            _ => self.max_aw,
        }
    }

    /// Whether an entry is present: mostly.
    fn present(inp: &mut Input) -> u64 {
        u64::from(inp.u8() % 8 != 7)
    }

    /// A second-stage table for a context / PASID entry; a fresh one becomes a domain.
    fn ss_table(&mut self, inp: &mut Input, holder: u64, aw: u64) -> Ptr {
        let p = self.pointer(inp, holder);
        if p.own {
            self.pt_pages.insert(p.addr);
            self.domains.push(Domain {
                top: p.addr,
                levels: aw.clamp(1, 3) as u32 + 2,
                first_stage: false,
                nest: None,
            });
        }
        p
    }

    /// A root entry (or, in scalable mode, the half serving `devfn`): the context table behind it.
    fn context_table(
        &mut self,
        inp: &mut Input,
        bus: u64,
        devfn: u64,
        scalable: bool,
    ) -> Option<u64> {
        let re = ROOT + bus * 16 + if scalable && devfn >= 0x80 { 8 } else { 0 };
        if let Some(&t) = self.ctx_tables.get(&re) {
            return Some(t);
        }
        let p = self.pointer(inp, ROOT);
        let noise = inp.noise();
        if noise & !0xfff != 0 || !p.own {
            self.clean = false;
        }
        self.wr(re, (p.addr | Self::present(inp)) ^ noise);
        if !scalable {
            self.wr(re + 8, inp.noise());
        }
        p.own.then(|| {
            self.ctx_tables.insert(re, p.addr);
            p.addr
        })
    }

    fn legacy_device(&mut self, inp: &mut Input, sid: u16) {
        let (bus, devfn) = (u64::from(sid >> 8), u64::from(sid & 0xff));
        let Some(ctx) = self.context_table(inp, bus, devfn, false) else {
            return;
        };
        let ce = ctx + devfn * 16;
        let tt = match inp.u8() % 8 {
            6 => 2,
            7 => u64::from(inp.u8() & 3),
            _ => 0,
        };
        let aw = self.aw(inp);
        let slpt = self.ss_table(inp, ctx, aw).addr;
        let fpd = u64::from(inp.u8() % 4 == 3) << 1;
        let did = self.did();
        let lo = (slpt | tt << 2 | fpd | Self::present(inp)) ^ inp.noise();
        let hi = (aw | did << 8) ^ inp.noise();
        self.wr(ce, lo);
        self.wr(ce + 8, (hi & !(0xffff << 8)) | did << 8);
        self.devices.push((sid, Vec::new()));
    }

    fn scalable_device(&mut self, inp: &mut Input, sid: u16) {
        let (bus, devfn) = (u64::from(sid >> 8), u64::from(sid & 0xff));
        let Some(ctx) = self.context_table(inp, bus, devfn, true) else {
            return;
        };
        let ce = ctx + (devfn & 0x7f) * 32;
        let dir = self.pointer(inp, ctx);
        let pdts = if inp.u8() % 4 == 3 {
            u64::from(inp.u8() & 7)
        } else {
            0
        };
        let paside = inp.u8() % 4 != 3;
        let rid_pasid = match inp.u8() % 4 {
            2 => inp.u32() & 0xf_ffff,
            3 => inp.below(0x100) as u32,
            _ => 0,
        };
        let fpd = u64::from(inp.u8() % 4 == 3) << 1;
        let noise = inp.noise();
        if noise & !0xfff != 0 || !dir.own {
            self.clean = false;
        }
        let q0 = dir.addr | pdts << 9 | u64::from(paside) << 3 | fpd | Self::present(inp);
        self.wr(ce, q0 ^ noise);
        self.wr(ce + 8, u64::from(rid_pasid) ^ inp.noise());
        self.wr(ce + 16, inp.noise());
        self.wr(ce + 24, inp.noise());
        let mut pasids = vec![rid_pasid];
        if paside {
            for _ in 0..inp.below(3) {
                pasids.push(match inp.u8() % 4 {
                    3 => inp.u32() & 0xf_ffff,
                    _ => inp.below(0x100) as u32,
                });
            }
        }
        if dir.own {
            for &pasid in &pasids {
                self.pasid_entry(inp, dir.addr, pasid);
            }
        }
        self.devices.push((sid, pasids));
    }

    fn pasid_entry(&mut self, inp: &mut Input, dir: u64, pasid: u32) {
        let de = dir + u64::from(pasid >> 6) * 8;
        let table = match self.pasid_tables.get(&de) {
            Some(&t) => t,
            None => {
                let p = self.pointer(inp, dir);
                let noise = inp.noise();
                if noise & !0xfff != 0 || !p.own {
                    self.clean = false;
                }
                let fpd = u64::from(inp.u8() % 8 == 7) << 1;
                self.wr(de, (p.addr | fpd | Self::present(inp)) ^ noise);
                if !p.own {
                    return;
                }
                self.pasid_tables.insert(de, p.addr);
                p.addr
            }
        };
        let pe = table + u64::from(pasid & 0x3f) * 64;
        // Second stage, pass-through, first stage, nested, or any value.
        let pgtt = match inp.u8() % 8 {
            4 => 1,
            5 => 3,
            6 => 4,
            7 => u64::from(inp.u8() & 7),
            _ => 2,
        };
        let aw = self.aw(inp);
        let ss = self.ss_table(inp, table, aw);
        let fpd = u64::from(inp.u8() % 4 == 3) << 1;
        let did = self.did();
        let q0 = ss.addr | pgtt << 6 | aw << 2 | fpd | Self::present(inp);
        self.wr(pe, q0 ^ inp.noise());
        // PWSNP / PGSNP (b23, b24) are valid fields; the DID is always the harness's.
        let q1 = (did | u64::from(inp.u8() & 3) << 23) ^ inp.noise();
        self.wr(pe + 8, (q1 & !0xffff) | did);
        let q2 = if pgtt == 1 || pgtt == 3 {
            // FLPM: 5-level on a 57-bit unit (as Linux picks it), else 4-level; sometimes the other.
            let five = (self.max_aw == 3) != (inp.u8() % 4 == 3);
            let flpm = if inp.u8() % 8 == 7 {
                u64::from(inp.u8() & 3)
            } else {
                u64::from(five)
            };
            let sre = u64::from(inp.u8() % 4 != 3);
            let wpe = u64::from(inp.u8() % 4 == 3) << 4;
            let fs = self.pointer(inp, table);
            if fs.own {
                self.pt_pages.insert(fs.addr);
                let nest = (pgtt == 3 && ss.own).then(|| (ss.addr, aw.clamp(1, 3) as u32 + 2));
                if let Some(n) = nest {
                    self.map_in(None, n, false, fs.addr, 12, fs.addr | 3);
                }
                self.domains.push(Domain {
                    top: fs.addr,
                    levels: if flpm == 1 { 5 } else { 4 },
                    first_stage: true,
                    nest,
                });
            }
            fs.addr | flpm << 2 | wpe | sre
        } else {
            0
        };
        self.wr(pe + 16, q2 ^ inp.noise());
        for i in 3..8 {
            self.wr(pe + 8 * i, inp.noise());
        }
    }

    /// Maps an IOVA in a domain, allocating (or, fuzz permitting, mis-pointing) intermediate tables.
    fn map(&mut self, inp: &mut Input) {
        if self.domains.is_empty() {
            return;
        }
        let d = self.domains[inp.below(self.domains.len() as u64) as usize];
        let shift = [12u32, 12, 21, 30][usize::from(inp.u8() & 3)];
        let iova = match inp.u8() % 4 {
            3 => inp.u64(),
            1 if !self.iovas.is_empty() => {
                let near = self.iovas[inp.below(self.iovas.len() as u64) as usize];
                near.wrapping_add(u64::from(inp.u16()) << 12)
            }
            2 => u64::from(inp.u16()) << 21,
            _ => u64::from(inp.u32()) << 12,
        } & !((1u64 << shift) - 1);
        let output = match inp.u8() % 4 {
            0 => u64::from(inp.u32()) % MEM,
            1 => 0xfee0_0000 + (inp.below(0x100) << 12),
            2 => inp.u64() & ADDR,
            _ => u64::from(inp.u32()) << 12,
        } & !((1u64 << shift) - 1);
        // Second stage: R b0, W b1. First stage: P b0, R/W b1, U/S b2, A b5, D b6.
        let flags = match (inp.u8() % 4 == 3, d.first_stage) {
            (true, false) => u64::from(inp.u8() & 3),
            (true, true) => u64::from(inp.u8() & 0x67),
            (false, false) => 3,
            (false, true) => 7,
        };
        let ps = if shift > 12 { 1 << 7 } else { 0 };
        let leaf = (output | ps | flags) ^ inp.noise();
        let top = (d.top, d.levels);
        self.map_in(Some(inp), top, d.first_stage, iova, shift, leaf);
        if let Some(n) = d.nest {
            if inp.u8() % 4 != 3 {
                // The output (its first 4 KiB) through the second stage too.
                self.map_in(None, n, false, output, 12, output | 3);
            }
        }
    }

    /// Writes `leaf` for `iova` at the level with 2^shift-byte pages of the table at `top`. Missing
    /// tables are fresh pages, or with `inp` fuzz-chosen (possibly hostile) pointers; a harness page
    /// added to a nested first-stage domain is mapped (identity) in its second stage.
    fn map_in(
        &mut self,
        mut inp: Option<&mut Input>,
        (top, levels): (u64, u32),
        first_stage: bool,
        iova: u64,
        shift: u32,
        leaf: u64,
    ) {
        let nest = self
            .domains
            .iter()
            .find(|d| d.top == top && d.first_stage == first_stage)
            .and_then(|d| d.nest);
        let present = if first_stage { 1 } else { 3 };
        let mut table = top;
        for level in (1..=levels).rev() {
            let lshift = 12 + 9 * (level - 1);
            let slot = table + ((iova >> lshift) & 0x1ff) * 8;
            if lshift == shift {
                self.wr(slot, leaf);
                self.iovas.push(iova);
                return;
            }
            let e = self.rd(slot);
            if e & present != 0 {
                if !self.pt_pages.contains(&(e & ADDR)) {
                    return;
                }
                table = e & ADDR;
                continue;
            }
            let full = if first_stage { 7 } else { 3 };
            let (p, entry) = match inp.as_deref_mut() {
                Some(inp) => {
                    let p = self.pointer(inp, table);
                    let flags = if inp.u8() % 8 == 7 {
                        u64::from(inp.u8()) & full
                    } else {
                        full
                    };
                    let entry = (p.addr | flags) ^ inp.noise();
                    (p, entry)
                }
                None if self.next < MEM => {
                    let addr = self.next;
                    self.next += 0x1000;
                    self.pages.push(addr);
                    (Ptr { addr, own: true }, addr | full)
                }
                None => return,
            };
            self.wr(slot, entry);
            if !p.own {
                return;
            }
            self.pt_pages.insert(p.addr);
            if let Some(n) = nest {
                self.map_in(None, n, false, p.addr, 12, p.addr | 3);
            }
            table = p.addr;
        }
    }

    /// A raw qword in any structure page (outside a page table it can forge a DID: unclean).
    fn poke(&mut self, inp: &mut Input) {
        let page = self.pages[inp.below(self.pages.len() as u64) as usize];
        if !self.pt_pages.contains(&page) {
            self.clean = false;
        }
        self.wr(page + (inp.below(512) << 3), inp.u64());
    }

    fn request(&self, inp: &mut Input) -> DmaRequest {
        let flags = inp.u8();
        let dev = if self.devices.is_empty() {
            None
        } else {
            Some(&self.devices[inp.below(self.devices.len() as u64) as usize])
        };
        let source_id = match (flags & 7, dev) {
            (6, _) => inp.u32(),
            (7, _) | (_, None) => u32::from(inp.u16()),
            (_, Some((sid, _))) => u32::from(*sid),
        };
        let pasid = match ((flags >> 3) & 3, dev) {
            (2, Some((_, p))) if !p.is_empty() => Some(p[inp.below(p.len() as u64) as usize]),
            (3, _) => Some(inp.u32() >> (inp.u8() % 32)),
            _ => None,
        };
        let iova = match inp.u8() % 8 {
            5 => inp.u64(),
            6 => {
                let w = [39u32, 48, 57, 64][usize::from(inp.u8() & 3)];
                (u64::MAX >> (64 - w))
                    .wrapping_add(u64::from(inp.u8()))
                    .wrapping_sub(0x80)
            }
            7 => 0xfee0_0000 + (u64::from(inp.u16()) << 4),
            _ if !self.iovas.is_empty() => {
                let base = self.iovas[inp.below(self.iovas.len() as u64) as usize];
                let offset = if inp.u8() % 4 == 3 {
                    u64::from(inp.u32() >> 11)
                } else {
                    u64::from(inp.u16() & 0xfff)
                };
                base.wrapping_add(offset)
            }
            _ => u64::from(inp.u32()) << 12,
        };
        common::request(source_id, pasid, iova, flags)
    }
}

/// Global context-cache, PASID-cache (SMTS) and IOTLB invalidation, waited on with a status write.
fn invalidate_all(u: &Unit, token: u64) {
    let mut d = vec![[1 | 1 << 4, 0]];
    if u.smts() {
        d.push([7 | 3 << 4, 0]);
    }
    d.push([2 | 1 << 4, 0]);
    d.push([5 | 1 << 5 | token << 32, STATUS]);
    u.submit(&d);
    assert_eq!(u.rd(STATUS) & 0xffff_ffff, token, "wait descriptor ran");
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mut cfg = config(inp.u8(), "");
    cfg.caching = true;
    let a = Unit::new(cfg.clone(), MEM);
    cfg.caching = false;
    let b = Unit::new(cfg, MEM);
    let scalable = a.smts() && inp.bool();
    for u in [&a, &b] {
        u.bring_up(QUEUE, ROOT, scalable);
    }

    let mut l = Layout {
        a: &a,
        b: &b,
        next: FIRST,
        pages: vec![ROOT],
        pt_pages: HashSet::new(),
        domains: Vec::new(),
        ctx_tables: HashMap::new(),
        pasid_tables: HashMap::new(),
        devices: Vec::new(),
        iovas: Vec::new(),
        next_did: 0,
        clean: true,
        max_aw: a.max_aw_code(),
    };
    for _ in 0..1 + inp.below(4) {
        let sid = match inp.u8() % 4 {
            0 => 0x18,
            1 => u16::from(inp.u8()),
            2 => 0x80 | inp.u16() & !0x80,
            _ => inp.u16(),
        };
        if scalable {
            l.scalable_device(&mut inp, sid);
        } else {
            l.legacy_device(&mut inp, sid);
        }
    }
    for _ in 0..1 + inp.below(48) {
        if inp.u8() % 8 == 7 {
            l.poke(&mut inp);
        } else {
            l.map(&mut inp);
        }
    }

    let mut n = 0u64;
    // At least a few requests, even when the layout used up the input (zeros then pick the
    // common case: a set-up device, no PASID, a mapped IOVA).
    while n < 256 && (n < 4 || !inp.is_empty()) {
        n += 1;
        let req = l.request(&mut inp);
        if !l.clean {
            // Same queue traffic on both units keeps their memory identical.
            invalidate_all(&a, n);
            invalidate_all(&b, n);
        }
        let writes = (a.mem.writes(), b.mem.writes());
        let a1 = a.vtd.translate(&req);
        let a2 = a.vtd.translate(&req);
        let b1 = b.vtd.translate(&req);
        let b2 = b.vtd.translate(&req);
        for t in [&a1, &a2, &b1, &b2].into_iter().flatten() {
            check_translation(&req, t);
            if req.kind == RequestKind::Untranslated {
                assert!(t.perms.allows(req.access), "{req:x?} -> {t:x?}");
            }
        }
        // Identical memory, and caches that either agree with it or were just emptied.
        assert_eq!(
            a1, b1,
            "caching on/off differ for {req:x?} (clean {})",
            l.clean
        );
        if (a.mem.writes(), b.mem.writes()) != writes {
            // The units wrote memory (first-stage accessed/dirty flags). A flag written into an entry
            // that is also a cached structure (hostile aliasing) may legitimately leave the caching
            // unit's second answer, or its memory, behind the other's: compare no further then.
            // Otherwise go on, emptying the caches before each request.
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
