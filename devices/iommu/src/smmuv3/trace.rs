//! The context one translation (or side-effect-free lookup) runs in, and the steps it records.

use serde::Serialize;

use super::events::{Event, EventClass};
use super::pagetable::{Mode, WalkStep};
use super::Hw;
use crate::mem::DmaMemory;
use crate::request::{Access, DmaRequest};

/// Which address a stage's walk translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WalkPurpose {
    /// The request's input address (stage 1, or stage 2 without stage 1).
    Input,
    /// Stage 2 translation of a CD or L1CD address (nested / stage 1 over stage 2).
    CdFetch,
    /// Stage 2 translation of a stage 1 table address.
    S1Table,
    /// Stage 2 translation of the stage 1 output address.
    S1Output,
}

/// One structure read during a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Step {
    /// A 2-level stream table's L1 descriptor (SPAN, L2Ptr).
    StreamTableL1 { address: u64, index: u64, desc: u64 },
    /// The STE: its address, raw doublewords and decoded fields.
    Ste {
        address: u64,
        sid: u32,
        words: [u64; 8],
        decoded: String,
    },
    /// A 2-level CD table's L1 descriptor; `ipa` is the address before stage 2 when nested.
    CdTableL1 {
        address: u64,
        ipa: Option<u64>,
        index: u64,
        desc: u64,
    },
    /// The CD.
    Cd {
        address: u64,
        ipa: Option<u64>,
        ssid: u32,
        words: [u64; 8],
        decoded: String,
    },
    /// One translation table descriptor of a stage's walk.
    Walk {
        stage: u8,
        purpose: WalkPurpose,
        /// The address this walk translates.
        input: u64,
        level: u8,
        table: u64,
        index: u64,
        desc_addr: u64,
        desc_ipa: Option<u64>,
        desc: u64,
        desc_kind: &'static str,
    },
}

/// The request being translated, its mode and the step log.
pub struct Ctx<'a> {
    pub mem: &'a dyn DmaMemory,
    pub hw: &'a Hw,
    pub mode: Mode,
    pub sid: u32,
    pub ssid: Option<u32>,
    pub iova: u64,
    pub access: Access,
    pub privileged: bool,
    /// Steps, recorded only in lookup mode.
    pub steps: Vec<Step>,
    /// After a walk fault: the size of the input region the faulting descriptor covers (what a dump
    /// can skip).
    pub skip: Option<u64>,
}

impl<'a> Ctx<'a> {
    pub fn new(mem: &'a dyn DmaMemory, hw: &'a Hw, mode: Mode, req: &DmaRequest) -> Self {
        Self {
            mem,
            hw,
            mode,
            sid: req.source_id,
            ssid: req.pasid,
            iova: req.iova,
            access: req.access,
            privileged: req.privileged,
            steps: Vec::new(),
            skip: None,
        }
    }

    pub fn lookup(&self) -> bool {
        self.mode == Mode::Lookup
    }

    pub fn push(&mut self, step: Step) {
        if self.lookup() {
            self.steps.push(step);
        }
    }

    pub fn push_walk(&mut self, stage: u8, purpose: WalkPurpose, input: u64, steps: &[WalkStep]) {
        if !self.lookup() {
            return;
        }
        for s in steps {
            self.steps.push(Step::Walk {
                stage,
                purpose,
                input,
                level: s.level,
                table: s.table,
                index: s.index,
                desc_addr: s.desc_addr,
                desc_ipa: s.desc_ipa,
                desc: s.desc,
                desc_kind: s.kind,
            });
        }
    }

    /// An event of type `id` for this request, with the request's own fields filled in.
    pub fn event(&self, id: u8) -> Event {
        let mut e = Event::new(id, self.sid, self.ssid);
        e.input_addr = self.iova;
        e.read = self.access == Access::Read;
        e.privileged = self.privileged;
        e.class = EventClass::In;
        e
    }
}
