//! The walk itself (Arm ARM D8.2 "Translation process", pseudocode AArch64.S1Walk / AArch64.S2Walk;
//! IHI0070 §3.4 address sizes, §3.13 HTTU, §7.3 fault types).
//!
//! Per level: index the table with the input address, put the entry's address through `table_xlate`,
//! read it, decode it. A leaf is then checked in the Arm ARM's order: output address size, Access
//! flag, permissions; only a walk that succeeds updates the descriptor (AF and dirty state in one
//! compare-exchange), and a lost race re-evaluates the entry's new value at the same level.

use super::config::WalkConfig;
use super::desc::{self, Hierarchical, AF, AP2, ATTR_MASK, TABLE_OR_PAGE, VALID};
use super::{FaultClass, Mode, Stage, WalkFault, WalkFaultKind, WalkOutcome, WalkStep};
use crate::mem::DmaMemory;
use crate::request::Access;

/// How many times one walk re-evaluates a leaf whose HTTU compare-exchange lost a race before giving
/// up with an ExternalAbort (the update "is attempted but fails", IHI0070 §5.4 CD.IR0).
pub const MAX_HTTU_RETRIES: u32 = 8;

/// Walks one stage for `iova`.
///
/// `table_xlate` translates each descriptor *read address* (and nothing else): for a nested stage 1
/// it runs the stage-2 walk on the IPA and returns the PA, or the stage-2 fault, which is returned as
/// is with class TT. Non-nested walks pass `&mut |a| Ok(a)`.
///
/// An invalid configuration (see [`WalkConfig::validate`], which the caller is expected to have
/// checked) yields a Translation fault at level 0.
pub fn walk(
    mem: &dyn DmaMemory,
    cfg: &WalkConfig,
    iova: u64,
    access: Access,
    privileged: bool,
    mode: Mode,
    table_xlate: &mut dyn FnMut(u64) -> Result<u64, WalkFault>,
) -> Result<WalkOutcome, WalkFault> {
    let mut w = Walker {
        cfg,
        iova,
        steps: Vec::new(),
    };
    let Ok(start) = cfg.validate() else {
        return Err(w.fault(WalkFaultKind::Translation, 0, None));
    };
    let ias = cfg.input_bits();
    // Input beyond the region TxSZ covers (IHI0070 §3.4.1; the caller has selected TTB0/TTB1).
    if iova.checked_shr(ias).unwrap_or(0) != 0 {
        return Err(w.fault(WalkFaultKind::Translation, start, None));
    }
    if w.beyond_output(cfg.ttb) {
        return Err(w.fault(WalkFaultKind::AddressSize, start, None));
    }
    let granule = cfg.granule;
    let dirty = cfg.ha && cfg.hd;
    let mut hier = Hierarchical::default();
    let mut table = cfg.ttb;
    let mut level = start;
    let mut retries = 0;
    // A descriptor value found by a lost HTTU compare-exchange, to re-evaluate instead of reading.
    let mut raced: Option<(u64, u64)> = None;
    loop {
        let shift = granule.level_shift(level);
        // The start level resolves ias - shift bits (up to stride + 4 with concatenated stage-2
        // tables); every other level a full table.
        let bits = if level == start {
            ias - shift
        } else {
            granule.stride()
        };
        let index = (iova >> shift) & ((1u64 << bits) - 1);
        let Some(ipa) = table.checked_add(index * 8) else {
            return Err(w.fault(WalkFaultKind::ExternalAbort, level, None));
        };
        let (pa, d) = match raced.take() {
            Some(found) => found,
            None => {
                let pa = table_xlate(ipa).map_err(|mut f| {
                    f.class = FaultClass::TT;
                    f
                })?;
                let Ok(d) = mem.read_u64(pa) else {
                    return Err(w.fault(WalkFaultKind::ExternalAbort, level, Some(pa)));
                };
                (pa, d)
            }
        };
        let kind = if d & VALID == 0 {
            "invalid"
        } else if level == 3 {
            // Level 3: 0b11 is a page, 0b01 is reserved (invalid).
            if d & TABLE_OR_PAGE != 0 {
                "page"
            } else {
                "invalid"
            }
        } else if d & TABLE_OR_PAGE != 0 {
            "table"
        } else if granule.block_allowed(level, cfg.lpa()) {
            "block"
        } else {
            "invalid"
        };
        w.steps.push(WalkStep {
            level,
            table,
            index,
            desc_addr: pa,
            desc_ipa: (ipa != pa).then_some(ipa),
            desc: d,
            kind,
        });
        match kind {
            "invalid" => return Err(w.fault(WalkFaultKind::Translation, level, None)),
            "table" => {
                let next = desc::output_address(d, granule, granule.page_shift());
                if w.beyond_output(next) {
                    return Err(w.fault(WalkFaultKind::AddressSize, level, None));
                }
                if cfg.stage == Stage::S1 {
                    hier.add(d);
                }
                table = next;
                level += 1;
                continue;
            }
            _ => {}
        }

        // Leaf (block or page).
        let output = desc::output_address(d, granule, shift);
        if w.beyond_output(output) {
            return Err(w.fault(WalkFaultKind::AddressSize, level, None));
        }
        let af_clear = d & AF == 0;
        // AF = 0 without hardware update: a fault unless AFFD says AF is always 1 (IHI0070 §5.4
        // CD.AFFD, §5.2 STE.S2AFFD; AFFD is ignored when HA = 1).
        if af_clear && !cfg.ha && !cfg.affd {
            return Err(w.fault(WalkFaultKind::AccessFlag, level, None));
        }
        let perms_of = |v: u64| match cfg.stage {
            Stage::S1 => desc::stage1(v, privileged, hier),
            Stage::S2 => desc::stage2(v, privileged),
        };
        let (allowed, make_dirty) = desc::allows(perms_of(d), access, dirty);
        if !allowed {
            return Err(w.fault(WalkFaultKind::Permission, level, None));
        }
        let mut new = d;
        if af_clear && cfg.ha {
            new |= AF;
        }
        if make_dirty {
            // Stage 1 dirty = AP[2] clear; stage 2 dirty = S2AP[1] set (Arm ARM D8.4.6).
            new = match cfg.stage {
                Stage::S1 => new & !AP2,
                Stage::S2 => new | AP2,
            };
        }
        let mut updated = false;
        if new != d && mode == Mode::Translate {
            let Ok(found) = mem.compare_exchange_u64(pa, d, new) else {
                return Err(w.fault(WalkFaultKind::ExternalAbort, level, Some(pa)));
            };
            if found != d {
                // Someone changed the entry since we read it: decide again on what is there now.
                retries += 1;
                if retries > MAX_HTTU_RETRIES {
                    return Err(w.fault(WalkFaultKind::ExternalAbort, level, Some(pa)));
                }
                w.steps.pop();
                raced = Some((pa, found));
                continue;
            }
            updated = true;
        }
        let effective = perms_of(new);
        return Ok(WalkOutcome {
            output,
            page_size: 1u64 << shift,
            perms: effective.perms,
            level,
            steps: w.steps,
            attrs: new & ATTR_MASK,
            writable_clean: dirty && effective.writable_clean,
            updated,
        });
    }
}

struct Walker<'a> {
    cfg: &'a WalkConfig,
    iova: u64,
    steps: Vec<WalkStep>,
}

impl Walker<'_> {
    /// Whether an output (table or leaf) address has bits at or above the effective output size.
    fn beyond_output(&self, addr: u64) -> bool {
        addr.checked_shr(u32::from(self.cfg.oas_bits)).unwrap_or(0) != 0
    }

    fn fault(&mut self, kind: WalkFaultKind, level: u8, fetch_addr: Option<u64>) -> WalkFault {
        WalkFault {
            kind,
            stage: self.cfg.stage,
            level,
            steps: std::mem::take(&mut self.steps),
            ipa: (self.cfg.stage == Stage::S2).then_some(self.iova),
            class: FaultClass::IN,
            fetch_addr,
        }
    }
}
