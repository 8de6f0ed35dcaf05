//! The side-effect-free lookup (DESIGN.md "lookup"): the walk `translate()` would do for a request,
//! with every structure it reads, and the result or fault, changing nothing.
//!
//! It is the same walker as [`crate::DmaPort::translate`] (`translate::Session`), run in lookup mode:
//! no cache is consulted or filled, no counter moves, no accessed/dirty bit is written (the ones translate
//! would set are listed instead) and no fault is recorded. Only memory is read.

use serde::Serialize;

use super::reason::FaultReason;
use super::regs;
use super::translate::{Failure, Session};
use super::walk::Stage;
use super::Vtd;
use crate::request::{Access, DmaRequest, RequestKind, Translation};

/// Why the second stage is walked: labels lookup steps and selects the nested fault reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecondStagePurpose {
    /// The request's own address (second-stage-only translation, legacy or PGTT 010b).
    Request,
    /// Nested: the first-stage table of this level, whose guest-physical address is the input.
    FirstStageTable(u32),
    /// Nested: the first stage's output address.
    FirstStageOutput,
}

/// Which structure a step read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Structure {
    /// Root-table entry (legacy 128-bit or scalable-mode lower/upper pair), indexed by bus.
    RootEntry,
    /// Context entry (legacy 128-bit or scalable-mode 256-bit), indexed by devfn.
    ContextEntry,
    /// Scalable-mode PASID directory entry, indexed by PASID bits 19:6.
    PasidDirectory,
    /// Scalable-mode PASID table entry (512-bit), indexed by PASID bits 5:0.
    PasidTable,
    /// A first-stage (IA-32e) paging entry; level 5/4 = PML5E/PML4E ... 1 = PTE.
    FirstStage { level: u32 },
    /// A second-stage paging entry. `input` is the address being translated: the request's IOVA, or in
    /// nested translation a first-stage table's or the first-stage output's guest-physical address.
    SecondStage {
        level: u32,
        input: u64,
        purpose: SecondStagePurpose,
    },
}

/// One structure entry the walk read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LookupStep {
    pub structure: Structure,
    /// Guest-physical (host-physical for the unit) address of the entry.
    pub address: u64,
    /// Index of the entry in its table.
    pub index: u64,
    /// The raw entry, little-endian qwords (1, 2, 4 or 8); empty when it could not be read.
    pub entry: Vec<u64>,
    /// Its fields, decoded.
    pub decoded: String,
}

/// An accessed/dirty update: `translate()` sets `bits` in the qword at `address` (atomically, only if
/// it still holds `old`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AdUpdate {
    pub address: u64,
    pub old: u64,
    pub bits: u64,
}

/// What the request comes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum LookupOutcome {
    /// Remapped (`stage` None: pass-through, or translation disabled).
    Translated {
        translation: Translation,
        stage: Option<Stage>,
    },
    /// An architected fault. `step` is the step whose entry caused it (None when no entry did, e.g. a
    /// non-canonical address); `recorded` whether translate() would record it (not when an FPD bit
    /// covers it, nor for translation requests).
    Fault {
        reason: u8,
        description: String,
        step: Option<usize>,
        recorded: bool,
    },
    /// A request without PASID to 0xFEEx_xxxx: an interrupt, never DMA.
    InterruptRange,
    /// The source id is not a PCI requester id.
    BadSourceId,
}

/// A lookup's full answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lookup {
    pub source_id: u32,
    pub pasid: Option<u32>,
    pub iova: u64,
    pub access: Access,
    pub privileged: bool,
    /// Every entry read, in order (a nested walk interleaves each first-stage table's second-stage
    /// walk before the first-stage entry it locates).
    pub steps: Vec<LookupStep>,
    pub outcome: LookupOutcome,
    /// The accessed/dirty bits translate() would set on success.
    pub ad_updates: Vec<AdUpdate>,
    /// An IOTLB entry translate() would use before walking (possibly stale: invalidation is software's
    /// job), as a translation of this IOVA.
    pub iotlb: Option<Translation>,
}

/// Records steps (lookup mode) or nothing (translate mode, at no cost).
pub(crate) struct Trace {
    steps: Option<Vec<LookupStep>>,
    blamed: Option<usize>,
}

impl Trace {
    pub fn off() -> Self {
        Self {
            steps: None,
            blamed: None,
        }
    }

    pub fn on() -> Self {
        Self {
            steps: Some(Vec::new()),
            blamed: None,
        }
    }

    /// Records a step; `f` runs only when recording.
    pub fn step(&mut self, f: impl FnOnce() -> LookupStep) {
        if let Some(v) = &mut self.steps {
            v.push(f());
        }
    }

    /// Records an entry that could not be read, and blames it.
    pub fn unreadable(&mut self, structure: Structure, address: u64, index: u64) {
        self.step(|| LookupStep {
            structure,
            address,
            index,
            entry: Vec::new(),
            decoded: "not readable (outside guest RAM)".into(),
        });
        self.blame();
    }

    /// Marks the latest step as the one the coming fault is about.
    pub fn blame(&mut self) {
        if let Some(v) = &self.steps {
            self.blamed = v.len().checked_sub(1);
        }
    }

    fn finish(self) -> (Vec<LookupStep>, Option<usize>) {
        (self.steps.unwrap_or_default(), self.blamed)
    }

    #[cfg(test)]
    pub fn finish_for_tests(self) -> (Vec<LookupStep>, Option<usize>) {
        self.finish()
    }
}

/// A step for an entry that was read.
pub(crate) fn step(
    structure: Structure,
    address: u64,
    index: u64,
    entry: &[u64],
    decoded: String,
) -> LookupStep {
    LookupStep {
        structure,
        address,
        index,
        entry: entry.to_vec(),
        decoded,
    }
}

fn flag(v: u64, bit: u32, name: &str) -> String {
    if v >> bit & 1 != 0 {
        format!(" {name}")
    } else {
        String::new()
    }
}

fn present(v: u64) -> &'static str {
    if v & 1 != 0 {
        "P"
    } else {
        "not present"
    }
}

/// Decoders for the lookup's `decoded` strings: raw fields, whatever the entry's validity.
pub(crate) mod decode {
    use super::{flag, present};

    pub fn legacy_root(lo: u64) -> String {
        format!("{} context table {:#x}", present(lo), lo & !0xfff)
    }

    pub fn scalable_root(lo: u64, hi: u64, upper: bool) -> String {
        let (name, half) = if upper { ("upper", hi) } else { ("lower", lo) };
        format!(
            "{name} half used: {} context table {:#x}",
            present(half),
            half & !0xfff
        )
    }

    pub fn legacy_context(lo: u64, hi: u64) -> String {
        format!(
            "{}{} TT={} AW={} DID={} SLPTPTR={:#x}",
            present(lo),
            flag(lo, 1, "FPD"),
            (lo >> 2) & 3,
            hi & 7,
            (hi >> 8) & 0xffff,
            lo & !0xfff
        )
    }

    pub fn scalable_context(q: &[u64; 4]) -> String {
        format!(
            "{}{}{}{}{} PDTS={} PASID dir {:#x} RID_PASID={:#x}",
            present(q[0]),
            flag(q[0], 1, "FPD"),
            flag(q[0], 2, "DTE"),
            flag(q[0], 3, "PASIDE"),
            flag(q[0], 4, "PRE"),
            (q[0] >> 9) & 7,
            q[0] & !0xfff,
            q[1] & 0xf_ffff
        )
    }

    pub fn pasid_dir(e: u64) -> String {
        format!(
            "{}{} PASID table {:#x}",
            present(e),
            flag(e, 1, "FPD"),
            e & !0xfff
        )
    }

    pub fn pasid_entry(q: &[u64; 8]) -> String {
        let pgtt = match (q[0] >> 6) & 7 {
            1 => "first-stage",
            2 => "second-stage",
            3 => "nested",
            4 => "pass-through",
            _ => "reserved",
        };
        format!(
            "{}{} PGTT={} ({pgtt}) AW={} DID={} SLPTPTR={:#x}{}{}{} FLPM={} FSPTPTR={:#x}",
            present(q[0]),
            flag(q[0], 1, "FPD"),
            (q[0] >> 6) & 7,
            (q[0] >> 2) & 7,
            q[1] & 0xffff,
            q[0] & !0xfff,
            flag(q[0], 9, "SSADE"),
            flag(q[2], 0, "SRE"),
            flag(q[2], 4, "WPE"),
            (q[2] >> 2) & 3,
            q[2] & !0xfff
        )
    }

    pub fn second_stage(e: u64, level: u32) -> String {
        if e & 3 == 0 {
            return "not present (R=W=0)".into();
        }
        let ps = level > 1 && e >> 7 & 1 != 0;
        format!(
            "{}{}{}{} {} {:#x}",
            if e & 1 != 0 { "R" } else { "-" },
            if e & 2 != 0 { "W" } else { "-" },
            if ps { " PS" } else { "" },
            flag(e, 11, "SNP"),
            if level == 1 || ps { "page" } else { "table" },
            e & 0x000f_ffff_ffff_f000
        )
    }

    pub fn first_stage(e: u64, level: u32) -> String {
        if e & 1 == 0 {
            return "not present".into();
        }
        let ps = level > 1 && e >> 7 & 1 != 0;
        format!(
            "P {} {}{}{}{}{} {} {:#x}",
            if e & 2 != 0 { "RW" } else { "RO" },
            if e & 4 != 0 { "U" } else { "S" },
            flag(e, 5, "A"),
            flag(e, 6, "D"),
            if ps { " PS" } else { "" },
            flag(e, 63, "XD"),
            if level == 1 || ps { "page" } else { "table" },
            e & 0x000f_ffff_ffff_f000
        )
    }
}

impl Vtd {
    /// The walk `translate()` would do for an untranslated, unprivileged request — see
    /// [`Vtd::lookup_request`].
    pub fn lookup(&self, source_id: u16, pasid: Option<u32>, iova: u64, access: Access) -> Lookup {
        self.lookup_request(&DmaRequest {
            source_id: u32::from(source_id),
            pasid,
            iova,
            access,
            privileged: false,
            kind: RequestKind::Untranslated,
        })
    }

    /// Walks the unit's structures for `req` as `translate()` would, changing nothing: no cache lookup
    /// or fill (the IOTLB entry translate would use is reported apart), no statistics, no
    /// accessed/dirty update (listed instead), no fault record or interrupt.
    pub fn lookup_request(&self, req: &DmaRequest) -> Lookup {
        let st = self.lock();
        let mut lookup = Lookup {
            source_id: req.source_id,
            pasid: req.pasid,
            iova: req.iova,
            access: req.access,
            privileged: req.privileged,
            steps: Vec::new(),
            outcome: LookupOutcome::BadSourceId,
            ad_updates: Vec::new(),
            iotlb: None,
        };
        let Ok(sid) = u16::try_from(req.source_id) else {
            return lookup;
        };
        let mut s = Session::lookup(self.mem.as_ref(), st.hw);
        let result = s.remap(st.root, st.gsts & regs::GSTS_TES != 0, sid, req);
        lookup.iotlb = s.tag.and_then(|(did, pasid)| {
            st.caches
                .iotlb
                .lookup(did, pasid, req.iova)
                .map(|(k, e)| Translation {
                    iova: k.page << k.shift,
                    output: e.output,
                    page_size: 1 << k.shift,
                    perms: e.perms,
                })
        });
        lookup.ad_updates = std::mem::take(&mut s.ad);
        let (steps, blamed) = s.trace.finish();
        lookup.steps = steps;
        lookup.outcome = match result {
            Ok(r) => LookupOutcome::Translated {
                translation: r.translation,
                stage: r.stage,
            },
            Err(Failure::InterruptRange) => LookupOutcome::InterruptRange,
            Err(Failure::Fault { reason, fpd, at }) => LookupOutcome::Fault {
                reason: reason.code(),
                description: Failure::describe(reason, at),
                step: blamed,
                recorded: req.kind == RequestKind::Untranslated
                    && !(fpd && FaultReason::qualified(reason)),
            },
        };
        lookup
    }
}
