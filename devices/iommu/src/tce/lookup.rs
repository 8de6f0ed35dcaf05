//! Resolving an IOBA: window selection, the TCE (from the cache or a table walk) and its checks.
//! [`resolve`] is pure; the DMA path and [`super::Tce::lookup`] both use it.

use serde::Serialize;

use super::eeh::reason;
use super::state::State;
use super::table::{self, valid, LevelRead, WalkEnd, TCE_ADDR_MASK, TCE_READ, TCE_WRITE};
use super::window::{Window, WindowInfo};
use crate::mem::DmaMemory;
use crate::request::{Access, Perms, Translation};

/// What resolving one IOBA found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Resolution {
    pub window: Option<usize>,
    pub index: Option<u64>,
    pub reads: Vec<LevelRead>,
    pub end: Option<WalkEnd>,
    /// The TCE cache's copy, when it had one (then used instead of memory).
    pub cached: Option<u64>,
    /// Whether the table was walked.
    pub walked: bool,
    /// The translation, or the [`reason`] code.
    pub outcome: Result<Translation, u8>,
}

/// Checks a leaf TCE for `access` through window `w` at TCE `index`.
pub(super) fn leaf_outcome(
    w: &Window,
    index: u64,
    tce: u64,
    access: Access,
) -> Result<Translation, u8> {
    if !valid(tce) {
        return Err(reason::INVALID_TCE);
    }
    let page = w.page_size();
    let output = tce & TCE_ADDR_MASK;
    if page == 0 || output & (page - 1) != 0 {
        return Err(reason::MISALIGNED_TCE);
    }
    let perms = Perms {
        read: tce & TCE_READ != 0,
        write: tce & TCE_WRITE != 0,
        exec: false,
    };
    if !perms.allows(access) {
        return Err(reason::PERMISSION);
    }
    Ok(Translation {
        iova: w.iova_of(index),
        output,
        page_size: page,
        perms,
    })
}

/// The reason a walk that did not reach a leaf fails with.
fn end_reason(end: WalkEnd) -> u8 {
    match end {
        WalkEnd::Leaf { .. } | WalkEnd::NoTable => reason::INVALID_TCE,
        WalkEnd::LevelInvalid { .. } => reason::LEVEL_INVALID,
        WalkEnd::OutsideRam { .. } => reason::TABLE_OUTSIDE_RAM,
    }
}

/// Resolves `iova` for `access`. With `always_walk` the table is walked even on a cache hit (for
/// the monitor); the outcome is the cache's whenever it has the TCE, as for a DMA.
pub(super) fn resolve(
    st: &State,
    mem: &dyn DmaMemory,
    iova: u64,
    access: Access,
    always_walk: bool,
) -> Resolution {
    let mut r = Resolution {
        window: None,
        index: None,
        reads: Vec::new(),
        end: None,
        cached: None,
        walked: false,
        outcome: Err(reason::NO_WINDOW),
    };
    let Some(wi) = st.window_for(iova) else {
        return r;
    };
    let w = &st.windows[wi];
    let index = w.index(iova);
    r.window = Some(wi);
    r.index = Some(index);
    r.cached = st.cache.get(wi, index);
    if r.cached.is_none() || always_walk {
        let (reads, end) = table::walk(mem, w.geometry(), index);
        r.reads = reads;
        r.end = Some(end);
        r.walked = true;
    }
    r.outcome = match (r.cached, r.end) {
        (Some(tce), _) => leaf_outcome(w, index, tce, access),
        (None, Some(WalkEnd::Leaf { tce })) => leaf_outcome(w, index, tce, access),
        (None, Some(end)) => Err(end_reason(end)),
        (None, None) => Err(reason::INVALID_TCE),
    };
    r
}

/// The outcome of a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LookupOutcome {
    Translation {
        translation: Translation,
    },
    Fault {
        reason: u8,
        name: String,
        description: String,
    },
}

impl LookupOutcome {
    pub(super) fn from_result(r: Result<Translation, u8>) -> Self {
        match r {
            Ok(translation) => Self::Translation { translation },
            Err(code) => Self::Fault {
                reason: code,
                name: reason::name(code).into(),
                description: reason::describe(code).into(),
            },
        }
    }
}

/// A side-effect-free explanation of one DMA: the window, every table entry the walk reads, the
/// TCE and the result a DMA would get now (a frozen PE blocks everything).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TceLookup {
    pub source_id: u32,
    pub iova: u64,
    pub access: Access,
    /// The PE is frozen: a DMA would fail with FROZEN whatever the tables say.
    pub frozen: bool,
    pub window: Option<WindowInfo>,
    pub tce_index: Option<u64>,
    /// Table entries read, top level first (the last is the leaf TCE of a complete walk).
    pub levels: Vec<LevelRead>,
    pub walk_end: Option<WalkEnd>,
    /// The leaf TCE in memory.
    pub tce: Option<u64>,
    /// The TCE cache's copy (used by a DMA instead of memory; differs from `tce` when stale).
    pub cached: Option<u64>,
    pub outcome: LookupOutcome,
}

pub(super) fn lookup(
    st: &State,
    mem: &dyn DmaMemory,
    source_id: u32,
    iova: u64,
    access: Access,
) -> TceLookup {
    let r = resolve(st, mem, iova, access, true);
    let frozen = st.eeh.frozen;
    TceLookup {
        source_id,
        iova,
        access,
        frozen,
        window: r.window.map(|w| st.windows[w].info(w)),
        tce_index: r.index,
        tce: match r.end {
            Some(WalkEnd::Leaf { tce }) => Some(tce),
            _ => None,
        },
        levels: r.reads,
        walk_end: r.end,
        cached: r.cached,
        outcome: LookupOutcome::from_result(if frozen {
            Err(reason::FROZEN)
        } else {
            r.outcome
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_checks() {
        let w = Window::hypervisor(1, 0x1000_0000, 1 << 30, 21);
        let t = leaf_outcome(&w, 3, 0x4020_0000 | TCE_READ, Access::Read).unwrap();
        assert_eq!(t.iova, 0x1060_0000);
        assert_eq!(t.output, 0x4020_0000);
        assert_eq!(t.page_size, 0x20_0000);
        assert!(t.perms.read && !t.perms.write);
        assert_eq!(
            leaf_outcome(&w, 3, 0x4020_0000 | TCE_READ, Access::Write),
            Err(reason::PERMISSION)
        );
        assert_eq!(
            leaf_outcome(&w, 3, 0x4020_1000 | TCE_READ, Access::Read),
            Err(reason::MISALIGNED_TCE)
        );
        assert_eq!(
            leaf_outcome(&w, 3, 0x4020_0000, Access::Read),
            Err(reason::INVALID_TCE)
        );
        // Bits 11:2 are ignored.
        assert!(leaf_outcome(&w, 3, 0x4020_0ffe, Access::Write).is_ok());
        assert_eq!(end_reason(WalkEnd::NoTable), reason::INVALID_TCE);
    }
}
