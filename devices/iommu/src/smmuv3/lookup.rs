//! The side-effect-free lookup: the walk `translate()` would do for one transaction, with every
//! structure read (L1STD, STE, L1CD, CD, each descriptor of each stage) and the result or the event
//! it would raise. Same pipeline as `translate()`, in lookup mode: no cache used or filled, no
//! counter, no access/dirty update, no event, no injection consumed. Only memory is read.

use serde::Serialize;

use super::events::{event_name, Event};
use super::pagetable::Mode;
use super::trace::{Ctx, Step};
use super::translate::{self, Failure, Path};
use super::Smmuv3;
use crate::request::{Access, DmaRequest, RequestKind, Translation};

/// What the transaction comes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum LookupResult {
    Translated {
        translation: Translation,
        path: Path,
    },
    /// The event it raises; `recorded`: whether translate() would write it to the queue (the
    /// configuration's record bits and the queue's state allowing).
    Event {
        id: u8,
        name: &'static str,
        recorded: bool,
        event: Box<Event>,
        record: [u64; 4],
    },
    /// Terminated without an event.
    Aborted { why: &'static str },
}

/// One transaction's walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Smmuv3Lookup {
    pub sid: u32,
    pub ssid: Option<u32>,
    pub iova: u64,
    pub access: Access,
    pub smmuen: bool,
    pub steps: Vec<Step>,
    pub result: LookupResult,
}

impl Smmuv3 {
    /// The walk an untranslated, unprivileged transaction would take, changing nothing.
    pub fn lookup(&self, sid: u32, ssid: Option<u32>, iova: u64, access: Access) -> Smmuv3Lookup {
        let req = DmaRequest {
            source_id: sid,
            pasid: ssid,
            iova,
            access,
            privileged: false,
            kind: RequestKind::Untranslated,
        };
        let st = self.lock();
        let setup = st.setup(&self.hw);
        let evtq_on = st.smmuen() && st.regs.cr0 & super::regs::CR0_EVTQEN != 0;
        drop(st);
        let mut ctx = Ctx::new(self.mem.as_ref(), &self.hw, Mode::Lookup, &req);
        let r = translate::translate(&mut ctx, &setup, None, None);
        let result = match r {
            Ok(d) => LookupResult::Translated {
                translation: d.translation,
                path: d.path,
            },
            Err(Failure::Event { event, record }) => LookupResult::Event {
                id: event.id,
                name: event_name(event.id),
                recorded: record && evtq_on,
                record: event.encode(),
                event,
            },
            Err(Failure::Abort { why }) => LookupResult::Aborted { why },
        };
        Smmuv3Lookup {
            sid,
            ssid,
            iova,
            access,
            smmuen: setup.smmuen,
            steps: ctx.steps,
            result,
        }
    }
}
