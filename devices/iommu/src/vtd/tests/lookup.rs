//! `Vtd::lookup`: every step of the walk, the outcome and the step a fault is about — and no side
//! effects at all (statistics, memory, fault registers, interrupts, caches).

use super::fs_util::*;
use super::*;
use crate::vtd::{Lookup, LookupOutcome, SecondStagePurpose, Stage, Structure, VtdStats};

/// RID_PASID 0: nested (DID 3, first-stage tables behind a 4-level second stage); PASID 5:
/// first-stage only (DID 4); PASID 6: second-stage only (DID 5).
struct World<'a> {
    gs: GpaSpace<'a>,
    s1_top: u64,
    fl_top: u64,
    ss_top: u64,
}

fn world(fx: &Fx, dir: u64) -> World<'_> {
    let gs = GpaSpace::with_levels(fx, 4);
    let s1_top = gs.table();
    fx.set_pasid_entry(dir, 0, nested_entry(gs.s2_top, 2, s1_top, 3, (true, false)));
    let fl_top = fx.alloc();
    fx.set_pasid_entry(dir, 5, fl_entry(fl_top, 4, false));
    let ss_top = fx.alloc();
    fx.set_pasid_entry(dir, 6, [ss_top | 2 << 6 | 2 << 2 | 1, 5, 0, 0, 0, 0, 0, 0]);
    for i in 0..8u64 {
        let gpa = 0x2_0000_0000 + (i << 12);
        gs.map(gpa, 0x90_0000 + (i << 12), (true, i != 7));
        // Pages 0-3 user RW, 4 supervisor, 5 read-only, 6 unmapped, 7 RW over a read-only
        // second-stage page.
        let flags = match i {
            4 => RW,
            5 => US,
            _ => RW | US,
        };
        if i != 6 {
            fs_map(&gs, s1_top, 4, i << 12, gpa, 12, flags);
            fs_map(fx, fl_top, 4, i << 12, 0xa0_0000 + (i << 12), 12, flags);
            fx.map(
                ss_top,
                4,
                i << 12,
                0xb0_0000 + (i << 12),
                12,
                (true, i != 5),
            );
        }
    }
    World {
        gs,
        s1_top,
        fl_top,
        ss_top,
    }
}

/// Everything a side effect could change: counters, all of RAM, the register window, interrupts.
type Snapshot = (VtdStats, Vec<u8>, Vec<u8>, Vec<(u64, u32)>);

fn snapshot(fx: &Fx) -> Snapshot {
    let mut ram = vec![0u8; RAM as usize];
    fx.mem.read(0, &mut ram).unwrap();
    let mut regs = vec![0u8; regs::VTD_MMIO_SIZE as usize];
    fx.vtd.mmio_read(0, &mut regs);
    (fx.vtd.stats(), ram, regs, fx.msis())
}

#[test]
fn lookups_have_no_side_effects() {
    let Sm { fx, dir, .. } = sm_setup("vtd");
    let w = world(&fx, dir);
    // Warm the caches and the fault log a little.
    assert!(fx.xlate(SID, None, 0x1000, Access::Read).is_ok());
    assert!(fx.xlate(SID, Some(6), 0x1000, Access::Read).is_ok());
    assert_eq!(fx.out(SID, Some(5), 0x6000, Access::Read), Err(0x71));
    let before = snapshot(&fx);
    assert!(before.0.iotlb_entries > 0 && before.0.faults_recorded == 1);
    let mut outcomes = Vec::new();
    for pasid in [None, Some(5), Some(6), Some(9), Some(8192)] {
        for page in 0..9u64 {
            for access in [Access::Read, Access::Write] {
                for privileged in [false, true] {
                    let mut req = preq(pasid, page << 12 | 0x10, access, privileged);
                    outcomes.push(fx.vtd.lookup_request(&req));
                    req.kind = RequestKind::TranslationRequest;
                    outcomes.push(fx.vtd.lookup_request(&req));
                }
            }
        }
    }
    for iova in [0x8000_0000_0000, 0xfee0_0000, u64::MAX] {
        outcomes.push(fx.vtd.lookup(SID, None, iova, Access::Write));
    }
    outcomes.push(fx.vtd.lookup_request(&DmaRequest {
        source_id: 0x1_0000,
        ..preq(None, 0, Access::Read, false)
    }));
    outcomes.push(fx.vtd.lookup(0x20, None, 0, Access::Read)); // no context entry
                                                               // The lookups saw successes with A/D updates pending, recorded and unrecorded faults...
    let ok = |l: &&Lookup| matches!(l.outcome, LookupOutcome::Translated { .. });
    assert!(outcomes.iter().filter(ok).count() > 20);
    assert!(outcomes.iter().any(|l| !l.ad_updates.is_empty()));
    let fault_codes: std::collections::BTreeSet<u8> = outcomes
        .iter()
        .filter_map(|l| match l.outcome {
            LookupOutcome::Fault { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    for code in [0x41u8, 0x46, 0x59, 0x5d, 0x71, 0x80, 0x81, 0x85, 0x79] {
        assert!(fault_codes.contains(&code), "{code:#x} in {fault_codes:x?}");
    }
    assert!(outcomes
        .iter()
        .any(|l| matches!(l.outcome, LookupOutcome::InterruptRange)));
    assert!(outcomes
        .iter()
        .any(|l| matches!(l.outcome, LookupOutcome::BadSourceId)));
    // ... and changed nothing at all.
    let after = snapshot(&fx);
    assert_eq!(after.0, before.0, "statistics (and cache occupancy)");
    assert!(after.1 == before.1, "guest memory");
    assert_eq!(after.2, before.2, "registers, fault records included");
    assert_eq!(after.3, before.3, "interrupts");
    // A stale IOTLB entry survives a lookup, which reports both the tables and the cached entry.
    assert_eq!(fx.out(SID, Some(5), 0x1000, Access::Read), Ok(0xa0_1000));
    fs_map(&fx, w.fl_top, 4, 0x1000, 0xc1_0000, 12, RW | US | A);
    let l = fx.vtd.lookup(SID, Some(5), 0x1000, Access::Read);
    match l.outcome {
        LookupOutcome::Translated { translation, .. } => {
            assert_eq!(translation.output, 0xc1_0000)
        }
        ref o => panic!("{o:?}"),
    }
    assert_eq!(
        l.iotlb.map(|t| t.output),
        Some(0xa0_1000),
        "the stale entry"
    );
    assert_eq!(fx.out(SID, Some(5), 0x1000, Access::Read), Ok(0xa0_1000));
    // A lookup of a never-translated page does not fill the IOTLB: translate then misses.
    let misses = fx.vtd.stats().iotlb_misses;
    let _ = fx.vtd.lookup(SID, Some(6), 0x2000, Access::Read);
    assert!(fx.xlate(SID, Some(6), 0x2000, Access::Read).is_ok());
    assert_eq!(fx.vtd.stats().iotlb_misses, misses + 1);
    let _ = (w.gs, w.s1_top, w.ss_top);
}

#[test]
fn lookup_steps_nested() {
    let Sm { fx, root, dir, .. } = sm_setup("vtd");
    let w = world(&fx, dir);
    let l = fx.vtd.lookup(SID, None, 0x1234, Access::Write);
    let kinds: Vec<Structure> = l.steps.iter().map(|s| s.structure).collect();
    // Root, context, PASID directory and table; then per first-stage level the second-stage walk of
    // that table's GPA (4 levels) and the first-stage entry; then the output's second-stage walk.
    assert_eq!(l.steps.len(), 4 + 4 * 5 + 4, "{kinds:#?}");
    assert_eq!(
        &kinds[..4],
        &[
            Structure::RootEntry,
            Structure::ContextEntry,
            Structure::PasidDirectory,
            Structure::PasidTable
        ]
    );
    assert_eq!((l.steps[0].address, l.steps[0].index), (root, 0));
    assert_eq!(l.steps[0].entry.len(), 2);
    assert_eq!(l.steps[1].index, u64::from(SID));
    assert_eq!(l.steps[1].entry.len(), 4);
    assert_eq!(l.steps[3].entry.len(), 8);
    assert!(
        l.steps[3].decoded.contains("nested"),
        "{}",
        l.steps[3].decoded
    );
    let mut table_gpa = w.s1_top;
    for (n, level) in [4u32, 3, 2, 1].into_iter().enumerate() {
        let base = 4 + n * 5;
        let index = (0x1234u64 >> (12 + 9 * (level - 1))) & 0x1ff;
        let entry_gpa = table_gpa + index * 8;
        for (k, s2_level) in [4u32, 3, 2, 1].into_iter().enumerate() {
            assert_eq!(
                kinds[base + k],
                Structure::SecondStage {
                    level: s2_level,
                    input: entry_gpa,
                    purpose: SecondStagePurpose::FirstStageTable(level)
                }
            );
        }
        let fs = &l.steps[base + 4];
        assert_eq!(fs.structure, Structure::FirstStage { level });
        assert_eq!((fs.address, fs.index), (w.gs.hpa(entry_gpa), index));
        assert_eq!(fs.entry, vec![w.gs.get(entry_gpa)]);
        table_gpa = fs.entry[0] & 0x000f_ffff_ffff_f000;
    }
    assert_eq!(
        kinds[24],
        Structure::SecondStage {
            level: 4,
            input: 0x2_0000_1234,
            purpose: SecondStagePurpose::FirstStageOutput
        }
    );
    match &l.outcome {
        LookupOutcome::Translated { translation, stage } => {
            assert_eq!(translation.translate(0x1234), 0x90_1234);
            assert_eq!(*stage, Some(Stage::Nested));
        }
        o => panic!("{o:?}"),
    }
    // translate() would set A on the four first-stage entries and D on the leaf.
    let bits: Vec<u64> = l.ad_updates.iter().map(|u| u.bits).collect();
    assert_eq!(bits, vec![A, A, A, A | D]);
    assert_eq!(l.ad_updates[3].address, l.steps[23].address);
    // It does, exactly there.
    assert!(fx.xlate(SID, None, 0x1234, Access::Write).is_ok());
    for u in &l.ad_updates {
        assert_eq!(fx.rd(u.address), u.old | u.bits);
    }
    // The JSON form the monitor will serve.
    let j = serde_json::to_value(&l).unwrap();
    assert_eq!(j["outcome"]["result"], "translated");
    assert_eq!(j["outcome"]["stage"], "nested");
    assert_eq!(j["steps"][0]["structure"]["kind"], "root-entry");
    assert_eq!(j["steps"][4]["structure"]["kind"], "second-stage");
    assert_eq!(
        j["steps"][4]["structure"]["purpose"]["first-stage-table"],
        4
    );
    assert_eq!(j["steps"][8]["structure"]["kind"], "first-stage");
    assert_eq!(j["steps"][24]["structure"]["purpose"], "first-stage-output");
    assert_eq!(j["ad_updates"].as_array().unwrap().len(), 4);
}

#[test]
fn lookup_steps_first_stage_second_stage_legacy_and_disabled() {
    let Sm { fx, dir, .. } = sm_setup("vtd");
    let w = world(&fx, dir);
    let l = fx.vtd.lookup(SID, Some(5), 0x3008, Access::Read);
    let kinds: Vec<Structure> = l.steps.iter().map(|s| s.structure).collect();
    assert_eq!(
        &kinds[4..],
        &[4u32, 3, 2, 1].map(|level| Structure::FirstStage { level })
    );
    assert_eq!(l.steps[2].index, 0, "PASID 5 >> 6");
    assert_eq!(l.steps[3].index, 5, "PASID 5 & 0x3f");
    assert_eq!(l.steps[4].address, w.fl_top);
    assert!(
        l.steps[7].decoded.contains("RW U"),
        "{}",
        l.steps[7].decoded
    );
    let l = fx.vtd.lookup(SID, Some(6), 0x3008, Access::Read);
    let kinds: Vec<Structure> = l.steps.iter().map(|s| s.structure).collect();
    assert_eq!(
        &kinds[4..],
        &[4u32, 3, 2, 1].map(|level| Structure::SecondStage {
            level,
            input: 0x3008,
            purpose: SecondStagePurpose::Request
        })
    );
    assert_eq!(l.steps[4].address, w.ss_top);
    assert!(l.ad_updates.is_empty(), "no second-stage A/D (no SLADS)");
    // Legacy mode: root, context, second-stage levels.
    let fx = Fx::new("vtd,sm=off");
    let lroot = fx.alloc();
    linux_bringup(&fx, lroot, false);
    let top = fx.alloc();
    fx.set_legacy_context(lroot, SID, top | 1, 2 | 1 << 8);
    fx.map(top, 4, 0x5000, 0x7000, 12, (true, true));
    let l = fx.vtd.lookup(SID, None, 0x5000, Access::Write);
    assert_eq!(l.steps.len(), 6);
    assert_eq!(l.steps[1].entry, vec![top | 1, 2 | 1 << 8]);
    assert!(
        l.steps[1].decoded.contains("DID=1"),
        "{}",
        l.steps[1].decoded
    );
    assert!(matches!(
        l.outcome,
        LookupOutcome::Translated { translation, stage: Some(Stage::Second) } if translation.output == 0x7000
    ));
    // Translation disabled: identity, nothing read.
    let off = Fx::new("vtd");
    let l = off.vtd.lookup(SID, Some(3), 0x1234_5678, Access::Read);
    assert!(l.steps.is_empty());
    assert!(matches!(
        l.outcome,
        LookupOutcome::Translated { translation, stage: None } if translation.translate(0x1234_5678) == 0x1234_5678
    ));
}

#[test]
fn lookup_names_the_step_a_fault_is_about() {
    let Sm { fx, dir, .. } = sm_setup("vtd,caching=off");
    let w = world(&fx, dir);
    let fault = |l: &Lookup| match &l.outcome {
        LookupOutcome::Fault {
            reason,
            step,
            recorded,
            description,
        } => (*reason, *step, *recorded, description.clone()),
        o => panic!("{o:?}"),
    };
    // First-stage PTE not present: the level-1 first-stage step (after its second-stage walk).
    let l = fx.vtd.lookup(SID, None, 0x6000, Access::Read);
    let (reason, step, recorded, _) = fault(&l);
    assert_eq!(
        (reason, step, recorded),
        (0x71, Some(l.steps.len() - 1), true)
    );
    assert_eq!(
        l.steps[step.unwrap()].structure,
        Structure::FirstStage { level: 1 }
    );
    // U/S: the leaf; the request's privilege decides.
    let l = fx.vtd.lookup(SID, Some(5), 0x4000, Access::Read);
    let (reason, step, ..) = fault(&l);
    assert_eq!((reason, step), (0x81, Some(7)));
    // Second stage: the output's page is read-only there.
    let l = fx.vtd.lookup(SID, None, 0x7000, Access::Write);
    let (reason, step, _, description) = fault(&l);
    assert_eq!(reason, 0x85);
    assert!(description.contains("second-stage"), "{description}");
    assert!(matches!(
        l.steps[step.unwrap()].structure,
        Structure::SecondStage {
            level: 1,
            purpose: SecondStagePurpose::FirstStageOutput,
            ..
        }
    ));
    // A second-stage hole under a first-stage table: the not-present second-stage entry.
    let pt_gpa = fs_slot(&w.gs, w.s1_top, 4, 0, 21);
    let pt_gpa = w.gs.get(pt_gpa) & 0x000f_ffff_ffff_f000;
    w.gs.map(pt_gpa, 0, (false, false));
    let l = fx.vtd.lookup(SID, None, 0x1000, Access::Read);
    let (reason, step, ..) = fault(&l);
    assert_eq!(reason, 0x79);
    let s = &l.steps[step.unwrap()];
    assert_eq!(s.entry[0] & 3, 0);
    assert!(matches!(
        s.structure,
        Structure::SecondStage {
            purpose: SecondStagePurpose::FirstStageTable(1),
            ..
        }
    ));
    // Not caused by an entry: no step. SRE clear for a supervisor request: the PASID entry.
    let l = fx.vtd.lookup(SID, Some(5), 0x8000_0000_0000, Access::Read);
    assert_eq!(fault(&l).0, 0x80);
    assert_eq!(fault(&l).1, None);
    let l = fx
        .vtd
        .lookup_request(&preq(Some(5), 0x1000, Access::Read, true));
    let (reason, step, ..) = fault(&l);
    assert_eq!((reason, step), (0x5d, Some(3)));
    // FPD suppresses recording; translation requests are never recorded.
    let mut e = fl_entry(w.fl_top, 4, false);
    e[0] |= 2;
    fx.set_pasid_entry(dir, 7, e);
    let l = fx.vtd.lookup(SID, Some(7), 0x6000, Access::Read);
    assert!(!fault(&l).2, "FPD");
    let mut req = preq(Some(5), 0x6000, Access::Read, false);
    req.kind = RequestKind::TranslationRequest;
    assert!(!fault(&fx.vtd.lookup_request(&req)).2);
    assert!(fault(&fx.vtd.lookup(SID, Some(5), 0x6000, Access::Read)).2);
}

#[test]
fn lookup_agrees_with_translate() {
    for opts in ["vtd,caching=off", "vtd"] {
        let Sm { fx, dir, .. } = sm_setup(opts);
        let _w = world(&fx, dir);
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let pasid = [None, Some(5), Some(6), Some(7), Some(9000)][(rnd() % 5) as usize];
            let iova = match rnd() % 4 {
                0 => rnd(),
                _ => rnd() % 0xa000,
            };
            let access = if rnd() % 2 == 0 {
                Access::Read
            } else {
                Access::Write
            };
            let req = preq(pasid, iova, access, rnd() % 3 == 0);
            let l = fx.vtd.lookup_request(&req);
            let t = fx.vtd.translate(&req);
            match (&l.outcome, &t) {
                (LookupOutcome::Translated { translation, .. }, Ok(t)) => {
                    assert_eq!(translation, t, "{req:x?}")
                }
                (
                    LookupOutcome::Fault {
                        reason,
                        description,
                        recorded,
                        ..
                    },
                    Err(f),
                ) => {
                    assert_eq!(u32::from(*reason), f.reason, "{req:x?}");
                    assert_eq!(description, &f.description);
                    // Recording can be refused by a full log; otherwise lookup predicted it.
                    assert!(*recorded || !f.recorded, "{req:x?}");
                }
                (LookupOutcome::InterruptRange, Err(f)) => assert_eq!(f.reason, 0),
                (o, r) => panic!("{opts}: lookup {o:?} vs translate {r:?} for {req:x?}"),
            }
            // Keep the fault log from filling up.
            fx.w32(regs::FSTS, regs::FSTS_PFO);
            for i in 0..8 {
                fx.w32(regs::FRO_OFFSET + i * 16 + 12, 1 << 31);
            }
        }
    }
}
