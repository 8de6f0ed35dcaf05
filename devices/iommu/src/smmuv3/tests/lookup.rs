//! `lookup` is side-effect free and reports every step; `dump` lists the mappings.

use super::configs::{nested_stream, s1_stream};
use super::*;
use crate::smmuv3::{LookupResult, Step, WalkPurpose};

/// Everything a lookup must not change: RAM, every register, counters.
fn snapshot(rig: &Rig) -> (Vec<u8>, Vec<u32>, String) {
    let mut ram = vec![0u8; MEM_SIZE];
    rig.mem.read(0, &mut ram).unwrap();
    let regs: Vec<u32> = (0..0x100u64)
        .step_by(4)
        .chain([PAGE1 + EVTQ_PROD, PAGE1 + EVTQ_CONS])
        .map(|o| rig.r32(o))
        .collect();
    let stats = serde_json::to_string(&rig.smmu.stats()).unwrap();
    (ram, regs, stats)
}

#[test]
fn lookup_changes_nothing_and_shows_every_step() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(true);
    let (s1root, _) = nested_stream(&rig, 0x18, 2, 4, &[(0x8000_0000, 0x9000_0000)]);
    // AF clear with HTTU on: translate() would set it; lookup must not.
    rig.map4k(s1root, 0x1000, 0x8000_0000, 3, AP_UNPRIV);
    let ctxptr = rig.mem.read_u64(rig.ste_addr(0x18)).unwrap() & 0xffff_ffff_ffc0;
    rig.mem.write_u64(ctxptr, cd0(4) | 1 << 43).unwrap(); // CD.HA
    let cd = rig.alloc(64);
    rig.write_words(cd, &[cd0(5) | 1 << 43, rig.alloc(0x1000)]); // HA
    rig.write_ste(0x19, [ste0(0b101) | cd, 0, 0, 0, 0, 0, 0, 0]);
    let _ = rig.translate(0x19, None, 0x9000, Access::Read); // warm the configuration cache
    let before = snapshot(&rig);
    let l = rig.smmu.lookup(0x18, None, 0x1000, Access::Write);
    let f = rig.smmu.lookup(0x19, None, 0x5000, Access::Read);
    let bad = rig.smmu.lookup(0x7777, None, 0, Access::Read);
    let _ = rig.smmu.dump(0x18, None, 100);
    let _ = rig.smmu.permitted_ranges(0x18, None);
    let after = snapshot(&rig);
    assert!(before.0 == after.0, "RAM changed");
    assert_eq!(
        (&before.1, &before.2),
        (&after.1, &after.2),
        "registers / stats changed"
    );
    // The nested walk: STE (via the L1 descriptor), CD, stage 2 walks of each stage 1 table
    // interleaved with the stage 1 descriptors, then stage 2 of the output.
    assert!(matches!(l.steps[0], Step::StreamTableL1 { index: 0, .. }));
    assert!(matches!(l.steps[1], Step::Ste { sid: 0x18, .. }));
    assert!(l
        .steps
        .iter()
        .any(|s| matches!(s, Step::Cd { ipa: Some(_), .. })));
    let purposes: Vec<(u8, WalkPurpose)> = l
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Walk { stage, purpose, .. } => Some((*stage, *purpose)),
            _ => None,
        })
        .collect();
    assert!(purposes.contains(&(2, WalkPurpose::CdFetch)));
    assert!(purposes.contains(&(2, WalkPurpose::S1Table)));
    assert_eq!(
        purposes
            .iter()
            .filter(|p| **p == (1, WalkPurpose::Input))
            .count(),
        4
    );
    assert_eq!(purposes.last(), Some(&(2, WalkPurpose::S1Output)));
    match &l.result {
        LookupResult::Translated { translation, .. } => {
            assert_eq!(translation.output, 0x9000_0000)
        }
        r => panic!("{r:?}"),
    }
    // The fault it would raise, with its record.
    match &f.result {
        LookupResult::Event {
            id,
            name,
            recorded,
            record,
            ..
        } => {
            assert_eq!((*id, *name, *recorded), (0x10, "F_TRANSLATION", true));
            assert_eq!(record[2], 0x5000);
        }
        r => panic!("{r:?}"),
    }
    assert!(matches!(bad.result, LookupResult::Event { id: 0x02, .. }));
    let json = serde_json::to_value(&l).unwrap();
    assert_eq!(json["result"]["result"], "translated");
    // translate() then does set AF.
    rig.pa(0x18, None, 0x1000, Access::Read);
    assert!(before.0 != snapshot(&rig).0, "translate() sets AF");
}

#[test]
fn dump_lists_coalesced_mappings() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    let (_, root) = s1_stream(&rig, 0x18, 1);
    for p in 0..4u64 {
        rig.map4k(root, 0x1000 + p * 0x1000, 0x10_0000 + p * 0x1000, 3, S1_RW);
    }
    rig.map4k(root, 0x8000, 0x20_0000, 3, S1_RW | AP_RO);
    rig.map4k(root, 0x4000_0000, 0x8000_0000, 2, S1_RW);
    rig.map4k(root, 0x7f_0000_0000, 0x1000, 3, S1_RW);
    let d = rig.smmu.dump(0x18, None, 100);
    let got: Vec<(u64, u64, u64, u64, bool)> = d
        .mappings
        .iter()
        .map(|m| (m.iova, m.last, m.output, m.page_size, m.perms.write))
        .collect();
    assert_eq!(
        got,
        vec![
            (0x1000, 0x4fff, 0x10_0000, 0x1000, true),
            (0x8000, 0x8fff, 0x20_0000, 0x1000, false),
            (0x4000_0000, 0x401f_ffff, 0x8000_0000, 0x20_0000, true),
            (0x7f_0000_0000, 0x7f_0000_0fff, 0x1000, 0x1000, true),
        ]
    );
    assert!(!d.truncated);
    // One walk per descriptor of the (few) tables present, not per page of the 2^48 space.
    assert!(d.walks < 4096, "skips empty regions: {}", d.walks);
    assert_eq!(rig.smmu.dump(0x18, None, 2).mappings.len(), 2);
    assert!(rig.smmu.dump(0x18, None, 2).truncated);
    // A stream whose configuration is broken.
    let d = rig.smmu.dump(0x99, None, 10);
    assert_eq!(d.config_error.as_deref(), Some("C_BAD_STE"));
    assert!(serde_json::to_string(&d).is_ok());
}
