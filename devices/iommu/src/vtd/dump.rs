//! `Vtd::dump`: the whole live mapping of one source (and PASID) — what `translate()` would give for
//! every input address — with the table tree it comes from, for the monitor's `dump-tables`.
//!
//! Like [`super::Vtd::lookup`] it only reads memory: no cache is used or filled, no counter moves, no
//! accessed/dirty bit is written, no fault is recorded. The root/context/PASID resolution is the
//! translate walker's own (`translate::Session` in lookup mode); the tables are then enumerated with
//! the same entry rules as the walkers (present bits, reserved bits, page sizes, permissions
//! intersected over the levels), from the point of view of an unprivileged request:
//!
//! - `mappings`: ascending input ranges, contiguous leaves with the same page size and permissions and
//!   contiguous output coalesced. Addresses at or above the address width are left out (they fault:
//!   04h/83h), as is the interrupt window 0xFEE0_0000-0xFEEF_FFFF for requests without PASID (interrupts,
//!   not DMA). A page whose output overlaps the interrupt range is narrowed to 4 KiB pages, as
//!   translate() does, and the overlap is a fault range.
//! - `faults`: input ranges that translate() would fault because of a broken structure — an
//!   unreadable table, reserved bits, or (nested) a first-stage mapping the second stage does not
//!   back — with the architected reason. Plain not-present entries are just unmapped.
//! - Nested (PGTT 011b): the first-stage leaves are enumerated (their table addresses translated
//!   through the second stage, as the hardware does), then each leaf's guest-physical output range is
//!   walked through the second stage and split where the second stage changes; page size is the
//!   smaller of the two, permissions are intersected. A first-stage table the second stage maps
//!   read-only cannot take accessed/dirty updates: entries there with A clear fault (77h), leaves
//!   with D clear lose write permission (a write would fault 77h).
//!
//! Bounded whatever the guest writes: at most `limit` mappings, [`MAX_TABLES`] tables read,
//! [`MAX_STEPS`] entries examined and [`MAX_FAULT_RANGES`] fault ranges (`truncated` says a bound was
//! hit). In a full walk a table reached a second time (shared tables, cycles) is listed once and not
//! walked again (`revisits` counts those references; the mappings through them are not repeated).
//! Second-stage tables under a nested first stage are walked once per first-stage leaf range,
//! each read once.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::config::Hw;
use super::first_stage::{self, FsAttrs, Nesting, A, ADDR_MASK, D, PS};
use super::lookup::SecondStagePurpose;
use super::lookup::Trace;
use super::reason::FaultReason;
use super::regs;
use super::structures::{input_width, LegacyTt, Pgtt};
use super::translate::{fault, Failure, Session, SsReasons, LEGACY_SS, PT_PAGE_SHIFT, SCALABLE_SS};
use super::walk::{self, Stage, WalkConfig};
use super::Vtd;
use crate::mem::DmaMemory;
use crate::request::Perms;

/// Most tables one dump reads.
pub const MAX_TABLES: usize = 4096;
/// Most table entries one dump examines.
pub const MAX_STEPS: u64 = 1 << 22;
/// Most fault ranges one dump lists.
pub const MAX_FAULT_RANGES: usize = 256;

/// A coalesced run of a source's pages. `perms` are what an unprivileged request may do (first
/// stage: U/S, R/W, XD; second stage: R, W; nested: both intersected). No perms at all: a
/// supervisor-only first-stage page (user requests fault 81h). Nested, a write that would need a
/// dirty-flag update the second stage forbids is not allowed (it faults 77h), although translate()
/// of a read reports W.
pub use crate::mapping::Mapping;

/// Input addresses `iova..=last` fault with `reason` because of the structure at `address`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultRange {
    pub iova: u64,
    /// Inclusive.
    pub last: u64,
    pub reason: u8,
    pub description: String,
    /// The entry at fault (or the table pointer that could not be read), as the unit addresses it;
    /// for an output in the interrupt range, that output address.
    pub address: u64,
}

/// One translation table read by the dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableNode {
    /// Where the unit reads it (for nested first-stage tables, after second-stage translation).
    pub address: u64,
    /// Nested first-stage tables: the guest-physical address the first-stage entries hold.
    pub guest_address: Option<u64>,
    /// [`Stage::First`] or [`Stage::Second`].
    pub stage: Stage,
    /// 5/4 = top of 5-/4-level tables ... 1 = 4 KiB leaves.
    pub level: u32,
    /// Entries with P set (first stage) or R or W set (second stage).
    pub present_entries: u32,
    /// Addresses (as `address`) of the next-level tables its walked entries point to, each once.
    pub children: Vec<u64>,
    /// Leaf entries walked in it, and the input range they cover (IOVA; guest-physical for the
    /// second stage under a nested first stage).
    pub leaves: u32,
    pub first_input: Option<u64>,
    pub last_input: Option<u64>,
}

/// A source's whole mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dump {
    pub source_id: u16,
    /// The PASID asked for (None: requests without PASID).
    pub pasid: Option<u32>,
    /// Scalable mode: the PASID-table entry used (the PASID, or the context entry's RID_PASID).
    pub pasid_entry: Option<u32>,
    /// "legacy second-stage", "legacy pass-through", "second-stage", "first-stage", "nested",
    /// "pass-through", "translation disabled", or "blocked: WHY (fault 0xNN)".
    pub mode: String,
    /// The domain id of the context / PASID entry.
    pub did: Option<u16>,
    pub mappings: Vec<Mapping>,
    pub faults: Vec<FaultRange>,
    /// Every table read, in walk order; the first of each stage is its top.
    pub tables: Vec<TableNode>,
    /// A bound was hit: mappings, faults or tables are incomplete.
    pub truncated: bool,
    /// References to tables already listed that were not walked again.
    pub revisits: u32,
}

fn fault_range(reason: FaultReason, iova: u64, last: u64, address: u64) -> FaultRange {
    FaultRange {
        iova,
        last,
        reason: reason.code(),
        description: reason.description().into(),
        address,
    }
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u32) -> u64 {
    let unused = 64 - bits.clamp(1, 64);
    (((v << unused) as i64) >> unused) as u64
}

/// `[0, 2^bits - 1]`'s last address.
fn width_last(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Where second-stage leaves go.
#[derive(Clone, Copy)]
enum Target {
    /// Second-stage-only: the input is the IOVA.
    Direct,
    /// Under a nested first-stage leaf: input `gpa_base` is IOVA `iova_base`.
    Nested {
        iova_base: u64,
        gpa_base: u64,
        fs_shift: u32,
        fs_perms: Perms,
    },
}

/// How a second-stage walk behaves.
struct SsWalk<'r> {
    reasons: &'r SsReasons,
    cfg: WalkConfig,
    target: Target,
    /// Walk a table reached again (nested ranges) instead of counting a revisit.
    rewalk: bool,
    /// Report not-present entries in the range as faults (nested: the first stage maps them).
    holes: bool,
}

/// The first stage being enumerated.
struct FsWalk {
    levels: u32,
    wpe: bool,
    large_1g: bool,
    haw: u32,
    nest: Option<Nesting>,
}

struct Dumper<'a> {
    mem: &'a dyn DmaMemory,
    hw: Hw,
    limit: usize,
    /// Requests carry a PASID: no interrupt window on the input side.
    with_pasid: bool,
    /// The reason for an output in the interrupt range.
    interrupt: FaultReason,
    out: Dump,
    index: HashMap<(Stage, u64), usize>,
    entries: Vec<Box<[u64; 512]>>,
    /// Per table: whether the unit may set accessed/dirty flags in it (nested: second-stage W).
    writable: Vec<bool>,
    steps: u64,
    stop: bool,
}

/// Result of opening a table.
enum Opened {
    New(usize),
    Seen(usize),
    Unreadable,
    Budget,
}

impl<'a> Dumper<'a> {
    fn truncate(&mut self) {
        self.out.truncated = true;
        self.stop = true;
    }

    /// Counts `n` steps; false (and stop) once the budget is spent.
    fn step(&mut self, n: u64) -> bool {
        self.steps += n;
        if self.steps > MAX_STEPS {
            self.truncate();
        }
        !self.stop
    }

    fn open(&mut self, stage: Stage, address: u64, level: u32, guest: Option<u64>) -> Opened {
        if let Some(&i) = self.index.get(&(stage, address)) {
            return Opened::Seen(i);
        }
        if self.index.len() >= MAX_TABLES {
            self.truncate();
            return Opened::Budget;
        }
        let mut raw = vec![0u8; 4096];
        if self.mem.read(address, &mut raw).is_err() {
            return Opened::Unreadable;
        }
        let mut e = Box::new([0u64; 512]);
        for (i, q) in e.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
            *q = u64::from_le_bytes(b);
        }
        let present = e
            .iter()
            .filter(|&&v| match stage {
                Stage::Second => v & 3 != 0,
                _ => v & 1 != 0,
            })
            .count() as u32;
        let i = self.out.tables.len();
        self.out.tables.push(TableNode {
            address,
            guest_address: guest,
            stage,
            level,
            present_entries: present,
            children: Vec::new(),
            leaves: 0,
            first_input: None,
            last_input: None,
        });
        self.entries.push(e);
        self.writable.push(true);
        self.index.insert((stage, address), i);
        Opened::New(i)
    }

    fn leaf_seen(&mut self, node: usize, first: u64, last: u64) {
        let t = &mut self.out.tables[node];
        t.leaves += 1;
        t.first_input = Some(t.first_input.map_or(first, |f| f.min(first)));
        t.last_input = Some(t.last_input.map_or(last, |l| l.max(last)));
    }

    // ---- Output ----

    fn add_mapping(&mut self, m: Mapping) {
        if self.stop {
            return;
        }
        if self.out.mappings.last_mut().is_some_and(|p| p.absorb(&m)) {
            return;
        }
        if self.out.mappings.len() >= self.limit {
            self.truncate();
            return;
        }
        self.out.mappings.push(m);
    }

    fn add_fault(&mut self, f: FaultRange) {
        if self.stop {
            return;
        }
        if let Some(p) = self.out.faults.last_mut() {
            if p.reason == f.reason && p.last.checked_add(1) == Some(f.iova) {
                p.last = f.last;
                return;
            }
        }
        if self.out.faults.len() >= MAX_FAULT_RANGES {
            self.out.truncated = true;
            return;
        }
        self.out.faults.push(f);
    }

    /// The parts of input range `[iova, last]` a request reaches: without PASID, the interrupt window
    /// is not DMA.
    fn input_pieces(&self, iova: u64, last: u64) -> Vec<(u64, u64)> {
        if self.with_pasid || last < regs::MSI_FIRST || iova > regs::MSI_LAST {
            return vec![(iova, last)];
        }
        let mut v = Vec::with_capacity(2);
        if iova < regs::MSI_FIRST {
            v.push((iova, regs::MSI_FIRST - 1));
        }
        if last > regs::MSI_LAST {
            v.push((regs::MSI_LAST + 1, last));
        }
        v
    }

    fn emit(&mut self, iova: u64, last: u64, output: u64, page_size: u64, perms: Perms) {
        for (a, b) in self.input_pieces(iova, last) {
            self.add_mapping(Mapping {
                iova: a,
                last: b,
                output: output + (a - iova),
                page_size,
                perms,
            });
        }
    }

    fn emit_fault(&mut self, iova: u64, last: u64, reason: FaultReason, address: u64) {
        for (a, b) in self.input_pieces(iova, last) {
            self.add_fault(fault_range(reason, a, b, address));
        }
    }

    /// Input `[iova, last]` -> `output..` in pages of `page_size`, with translate()'s interrupt-range
    /// rule: a page overlapping the range is used as 4 KiB pages, and the overlap faults.
    fn push_range(&mut self, iova: u64, last: u64, output: u64, page_size: u64, perms: Perms) {
        let out_last = output + (last - iova);
        if out_last < regs::MSI_FIRST || output > regs::MSI_LAST {
            return self.emit(iova, last, output, page_size, perms);
        }
        let mask = page_size - 1;
        let narrow_first = (regs::MSI_FIRST & !mask).max(output);
        let narrow_last = (regs::MSI_LAST | mask).min(out_last);
        let at = |o: u64| iova + (o - output);
        if narrow_first > output {
            self.emit(iova, at(narrow_first - 1), output, page_size, perms);
        }
        if regs::MSI_FIRST > narrow_first {
            self.emit(
                at(narrow_first),
                at(regs::MSI_FIRST - 1),
                narrow_first,
                0x1000,
                perms,
            );
        }
        let (f, l) = (regs::MSI_FIRST.max(output), regs::MSI_LAST.min(out_last));
        self.emit_fault(at(f), at(l), self.interrupt, f);
        if narrow_last > regs::MSI_LAST {
            self.emit(
                at(regs::MSI_LAST + 1),
                at(narrow_last),
                regs::MSI_LAST + 1,
                0x1000,
                perms,
            );
        }
        if out_last > narrow_last {
            self.emit(at(narrow_last + 1), last, narrow_last + 1, page_size, perms);
        }
    }

    // ---- Second stage ----

    /// Maps a second-stage input range to the IOVA range it serves.
    fn ss_iova(w: &SsWalk, input: u64) -> u64 {
        match w.target {
            Target::Direct => input,
            Target::Nested {
                iova_base,
                gpa_base,
                ..
            } => iova_base + (input - gpa_base),
        }
    }

    /// The second-stage tables for inputs `[lo, hi]`, from the top.
    fn ss_top(&mut self, w: &SsWalk, lo: u64, hi: u64) {
        let levels = w.cfg.levels.clamp(1, walk::MAX_LEVELS);
        let root = w.cfg.root & !0xfff;
        match self.open(Stage::Second, root, levels, None) {
            Opened::New(i) | Opened::Seen(i) => {
                let perms = Perms {
                    read: true,
                    write: true,
                    exec: false,
                };
                self.ss_walk(w, i, levels, 0, lo, hi, perms);
            }
            Opened::Unreadable => {
                let (a, b) = (Self::ss_iova(w, lo), Self::ss_iova(w, hi));
                self.emit_fault(a, b, w.reasons.top_access, root);
            }
            Opened::Budget => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ss_walk(
        &mut self,
        w: &SsWalk,
        node: usize,
        level: u32,
        base: u64,
        lo: u64,
        hi: u64,
        perms: Perms,
    ) {
        let shift = 12 + 9 * (level - 1);
        let span_last = base + ((512u64 << shift) - 1);
        if lo > span_last || hi < base {
            return;
        }
        let first_index = (lo.max(base) - base) >> shift;
        let last_index = (hi.min(span_last) - base) >> shift;
        let table = self.out.tables[node].address;
        for i in first_index..=last_index {
            if !self.step(1) {
                return;
            }
            let e = self.entries[node][i as usize];
            let input = base + (i << shift);
            let (first, last) = (input.max(lo), (input + ((1u64 << shift) - 1)).min(hi));
            let entry = table + i * 8;
            if e & 3 == 0 {
                if w.holes {
                    let (a, b) = (Self::ss_iova(w, first), Self::ss_iova(w, last));
                    self.emit_fault(a, b, w.reasons.not_present_read, entry);
                }
                continue;
            }
            let p = Perms {
                read: perms.read && e & 1 != 0,
                write: perms.write && e & 2 != 0,
                exec: false,
            };
            let ps = e & (1 << 7) != 0;
            let is_leaf = level == 1
                || (ps && ((level == 2 && w.cfg.large_2m) || (level == 3 && w.cfg.large_1g)));
            if (ps && level > 1 && !is_leaf)
                || e & walk::reserved_mask(&w.cfg, level, is_leaf.then_some(shift)) != 0
            {
                let (a, b) = (Self::ss_iova(w, first), Self::ss_iova(w, last));
                self.emit_fault(a, b, w.reasons.reserved, entry);
                continue;
            }
            let addr = e & 0x000f_ffff_ffff_f000;
            if is_leaf {
                self.leaf_seen(node, first, last);
                let out = (addr & !((1u64 << shift) - 1)) + (first - input);
                self.ss_leaf(w, first, last, out, shift, p);
                continue;
            }
            match self.open(Stage::Second, addr, level - 1, None) {
                Opened::New(c) => {
                    self.out.tables[node].children.push(addr);
                    self.ss_walk(w, c, level - 1, input, first, last, p);
                }
                Opened::Seen(c) => {
                    self.out.tables[node].children.push(addr);
                    if w.rewalk {
                        self.ss_walk(w, c, level - 1, input, first, last, p);
                    } else {
                        self.out.revisits += 1;
                    }
                }
                Opened::Unreadable => {
                    let (a, b) = (Self::ss_iova(w, first), Self::ss_iova(w, last));
                    self.emit_fault(a, b, w.reasons.access, entry);
                }
                Opened::Budget => return,
            }
        }
    }

    /// A second-stage leaf covering inputs `[first, last]` at `out`.
    fn ss_leaf(&mut self, w: &SsWalk, first: u64, last: u64, out: u64, shift: u32, p: Perms) {
        match w.target {
            Target::Direct => self.push_range(first, last, out, 1 << shift, p),
            Target::Nested {
                fs_shift, fs_perms, ..
            } => {
                // Second-stage execute permission is not modelled (no ECAP.SLEE): reads allow it.
                let s2 = Perms { exec: p.read, ..p };
                let a = Self::ss_iova(w, first);
                let page = 1u64 << shift.min(fs_shift);
                self.push_range(a, a + (last - first), out, page, fs_perms.intersect(s2));
            }
        }
    }

    // ---- First stage ----

    /// Reads the first-stage table at `table` (through the second stage when nested, noting whether
    /// the unit may write its accessed/dirty flags there); on failure records the fault for the input
    /// `ranges` it serves, blamed on `entry`.
    fn fs_open(
        &mut self,
        f: &FsWalk,
        table: u64,
        level: u32,
        ranges: &[(u64, u64)],
        entry: u64,
    ) -> Opened {
        let top = level == f.levels;
        let fail = |d: &mut Self, reason: FaultReason| {
            for &(first, last) in ranges {
                d.emit_fault(first, last, reason, entry);
            }
            Opened::Unreadable
        };
        let (host, guest, writable) = match &f.nest {
            None => (table, None, true),
            Some(n) => {
                if !self.step(u64::from(n.s2.levels)) {
                    return Opened::Budget;
                }
                let purpose = SecondStagePurpose::FirstStageTable(level);
                match n.translate(self.mem, table, purpose, &mut Trace::off()) {
                    Err((reason, _)) => return fail(self, reason),
                    Ok(leaf) if !leaf.perms.read => {
                        let reason = if top {
                            FaultReason::SmNestedFsTopReadDenied
                        } else {
                            FaultReason::SmNestedFsReadDenied
                        };
                        return fail(self, reason);
                    }
                    Ok(leaf) => (leaf.translate(table), Some(table), leaf.perms.write),
                }
            }
        };
        let opened = self.open(Stage::First, host, level, guest);
        match opened {
            Opened::New(i) => self.writable[i] = writable,
            Opened::Unreadable => {
                let reason = if top {
                    FaultReason::SmFsTopAccess
                } else {
                    FaultReason::SmFsAccess
                };
                return fail(self, reason);
            }
            _ => {}
        }
        opened
    }

    fn fs_walk(&mut self, f: &FsWalk, node: usize, level: u32, base: u64, attrs: FsAttrs) {
        let shift = 12 + 9 * (level - 1);
        let size_m1 = (1u64 << shift) - 1;
        let table = self.out.tables[node].address;
        for i in 0..512u64 {
            if !self.step(1) {
                return;
            }
            let e = self.entries[node][i as usize];
            if e & 1 == 0 {
                continue;
            }
            let input = if level == f.levels {
                sign_extend(i << shift, 12 + 9 * f.levels)
            } else {
                base + (i << shift)
            };
            let last = input + size_m1;
            let entry = table + i * 8;
            let ps = e & PS != 0;
            let is_leaf = level == 1 || (ps && (level == 2 || (level == 3 && f.large_1g)));
            if (ps && level > 1 && !is_leaf)
                || e & first_stage::reserved_mask(level, is_leaf.then_some(shift), f.haw) != 0
            {
                self.emit_fault(input, last, FaultReason::SmFsReserved, entry);
                continue;
            }
            let a = FsAttrs {
                write: attrs.write && e & 2 != 0,
                user: attrs.user && e & 4 != 0,
                exec: attrs.exec && e >> 63 == 0,
                dirty: false,
            };
            let next = e & ADDR_MASK;
            // Nested: setting A (and D for writes) in this table needs second-stage write
            // permission on it (77h). A user request to a supervisor page faults (81h) first.
            let ad_blocked = !self.writable[node];
            if ad_blocked && e & A == 0 && (!is_leaf || a.user) {
                self.emit_fault(input, last, FaultReason::SmNestedFsWriteDenied, entry);
                continue;
            }
            if is_leaf {
                self.leaf_seen(node, input, last);
                let output = next & !size_m1;
                let mut perms = first_stage::effective_perms(a, false, f.wpe);
                if ad_blocked && e & D == 0 {
                    perms.write = false;
                }
                match &f.nest {
                    None => self.push_range(input, last, output, size_m1 + 1, perms),
                    Some(n) => self.nested_output(n, input, last, output, shift, perms),
                }
                continue;
            }
            match self.fs_open(f, next, level - 1, &[(input, last)], entry) {
                Opened::New(c) => {
                    let child = self.out.tables[c].address;
                    self.out.tables[node].children.push(child);
                    self.fs_walk(f, c, level - 1, input, a);
                }
                Opened::Seen(c) => {
                    let child = self.out.tables[c].address;
                    self.out.tables[node].children.push(child);
                    self.out.revisits += 1;
                }
                Opened::Unreadable => {}
                Opened::Budget => return,
            }
        }
    }

    /// A nested first-stage leaf: IOVAs `[iova, last]` -> guest-physical `gpa..`, through the
    /// second stage.
    fn nested_output(
        &mut self,
        n: &Nesting,
        iova: u64,
        last: u64,
        gpa: u64,
        fs_shift: u32,
        fs_perms: Perms,
    ) {
        let limit = width_last(n.width);
        let gpa_last = gpa + (last - iova);
        if gpa > limit {
            return self.emit_fault(iova, last, FaultReason::SmNestedOutputBeyondAw, gpa);
        }
        if gpa_last > limit {
            let beyond = iova + (limit + 1 - gpa);
            self.emit_fault(beyond, last, FaultReason::SmNestedOutputBeyondAw, limit + 1);
        }
        let w = SsWalk {
            reasons: &SCALABLE_SS,
            cfg: n.s2,
            target: Target::Nested {
                iova_base: iova,
                gpa_base: gpa,
                fs_shift,
                fs_perms,
            },
            rewalk: true,
            holes: true,
        };
        self.ss_top(&w, gpa, gpa_last.min(limit));
    }
}

impl Vtd {
    /// Every live mapping of requests from `source_id` (with `pasid`, or without), at most `limit`
    /// mappings: see the module notes. Changes nothing; safe on any table contents.
    pub fn dump(&self, source_id: u16, pasid: Option<u32>, limit: usize) -> Dump {
        let st = self.lock();
        let (hw, root, enabled) = (st.hw, st.root, st.gsts & regs::GSTS_TES != 0);
        let mut d = Dumper {
            mem: self.mem.as_ref(),
            hw,
            limit,
            with_pasid: pasid.is_some(),
            interrupt: FaultReason::SmInterruptAddress,
            out: Dump {
                source_id,
                pasid,
                pasid_entry: None,
                mode: String::new(),
                did: None,
                mappings: Vec::new(),
                faults: Vec::new(),
                tables: Vec::new(),
                truncated: false,
                revisits: 0,
            },
            index: HashMap::new(),
            entries: Vec::new(),
            writable: Vec::new(),
            steps: 0,
            stop: false,
        };
        drop(st);
        if let Err(f) = d.resolve(root, enabled, source_id, pasid) {
            d.out.mappings.clear();
            d.out.faults.clear();
            d.out.mode = match f {
                Failure::Fault { reason, at, .. } => format!(
                    "blocked: {} (fault {:#04x})",
                    Failure::describe(reason, at),
                    reason.code()
                ),
                Failure::InterruptRange => "blocked: interrupt range".into(),
            };
        }
        for t in &mut d.out.tables {
            let mut seen = HashSet::new();
            t.children.retain(|c| seen.insert(*c));
        }
        d.out
    }
}

impl Dumper<'_> {
    /// Resolves root, context and PASID entries like translate(), then enumerates.
    fn resolve(
        &mut self,
        root: u64,
        enabled: bool,
        sid: u16,
        pasid: Option<u32>,
    ) -> Result<(), Failure> {
        let rw = Perms::RW;
        if !enabled {
            // Translation disabled: everything passes through untouched (no interrupt-range check).
            self.out.mode = "translation disabled".into();
            for (a, b) in self.input_pieces(0, u64::MAX) {
                self.add_mapping(Mapping {
                    iova: a,
                    last: b,
                    output: a,
                    page_size: 1 << 63,
                    perms: rw,
                });
            }
            return Ok(());
        }
        let mut s = Session::lookup(self.mem, self.hw);
        match (root >> regs::RTADDR_TTM_SHIFT) & 3 {
            regs::TTM_LEGACY if pasid.is_some() => {
                Err(fault(FaultReason::TtmLegacyWithPasid, false))
            }
            regs::TTM_LEGACY => {
                let ctx = s.legacy_context(root, sid)?;
                self.interrupt = FaultReason::InterruptAddress;
                self.out.did = Some(ctx.did);
                let width = input_width(ctx.aw_code, &self.hw);
                match ctx.tt {
                    LegacyTt::PassThrough => {
                        self.out.mode = "legacy pass-through".into();
                        self.push_range(0, width_last(width), 0, 1 << PT_PAGE_SHIFT, rw);
                    }
                    LegacyTt::MultiLevel => {
                        self.out.mode = "legacy second-stage".into();
                        let w = SsWalk {
                            reasons: &LEGACY_SS,
                            cfg: s.second_stage_config(ctx.slptptr, ctx.aw_code),
                            target: Target::Direct,
                            rewalk: false,
                            holes: false,
                        };
                        self.ss_top(&w, 0, width_last(width));
                    }
                }
                Ok(())
            }
            regs::TTM_SCALABLE if self.hw.smts => {
                let ctx = s.scalable_context(root, sid)?;
                let p = s.select_pasid(&ctx, pasid)?;
                self.out.pasid_entry = Some(p);
                let pe = s.pasid_entry(sid, &ctx, p)?;
                self.out.did = Some(pe.did);
                match pe.pgtt {
                    Pgtt::PassThrough => {
                        self.out.mode = "pass-through".into();
                        let last = width_last(self.hw.aw_bits);
                        self.push_range(0, last, 0, 1 << PT_PAGE_SHIFT, rw);
                    }
                    Pgtt::SecondStage => {
                        self.out.mode = "second-stage".into();
                        let w = SsWalk {
                            reasons: &SCALABLE_SS,
                            cfg: s.second_stage_config(pe.slptptr, pe.aw_code),
                            target: Target::Direct,
                            rewalk: false,
                            holes: false,
                        };
                        self.ss_top(&w, 0, width_last(input_width(pe.aw_code, &self.hw)));
                    }
                    Pgtt::FirstStage | Pgtt::Nested => {
                        let nested = pe.pgtt == Pgtt::Nested;
                        self.out.mode = if nested { "nested" } else { "first-stage" }.into();
                        let f = FsWalk {
                            levels: if pe.fs_levels >= 5 { 5 } else { 4 },
                            wpe: pe.wpe,
                            large_1g: self.hw.fl1gp,
                            haw: self.hw.aw_bits,
                            nest: nested.then(|| Nesting {
                                s2: s.second_stage_config(pe.slptptr, pe.aw_code),
                                width: input_width(pe.aw_code, &self.hw),
                            }),
                        };
                        let top = f.levels;
                        // The canonical halves of the input space.
                        let half = 1u64 << (12 + 9 * top - 1);
                        let halves = [(0, half - 1), (half.wrapping_neg(), u64::MAX)];
                        let fs_root = pe.fsptptr & ADDR_MASK;
                        if let Opened::New(i) | Opened::Seen(i) =
                            self.fs_open(&f, fs_root, top, &halves, fs_root)
                        {
                            let attrs = FsAttrs {
                                write: true,
                                user: true,
                                exec: true,
                                dirty: false,
                            };
                            self.fs_walk(&f, i, top, 0, attrs);
                        }
                    }
                }
                Ok(())
            }
            _ => Err(fault(FaultReason::InvalidTtm, false)),
        }
    }
}
