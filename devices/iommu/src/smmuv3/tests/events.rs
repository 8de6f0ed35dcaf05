//! Every event type with its record fields, recording rules (CD.R, RECINVSID), event queue overflow,
//! the EVTQ MSI and `inject_event`.

use super::configs::{nested_stream, s1_stream, s2_stream};
use super::*;

fn one_event(rig: &Rig) -> [u64; 4] {
    let ev = rig.events();
    assert_eq!(ev.len(), 1, "{ev:x?}");
    ev[0]
}

#[test]
fn configuration_events() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(true);
    // C_BAD_STREAMID: beyond the L1 descriptors' span (SPAN 0).
    assert_eq!(
        rig.translate(0x400, Some(3), 0, Access::Read)
            .unwrap_err()
            .reason,
        0x02
    );
    let e = one_event(&rig);
    assert_eq!(e[0], 0x02 | 1 << 11 | 3 << 12 | 0x400 << 32);
    // F_STE_FETCH: an L2 table outside RAM; FetchAddr is the STE's address.
    rig.mem
        .write_u64(STRTAB + 5 * 8, 0x7_0000_0000 | 9)
        .unwrap();
    assert_eq!(
        rig.translate(0x501, None, 0, Access::Read)
            .unwrap_err()
            .reason,
        0x03
    );
    let e = one_event(&rig);
    assert_eq!(e[0], 0x03 | 0x501 << 32);
    assert_eq!(e[3], 0x7_0000_0040);
    // C_BAD_STE.
    rig.write_ste(0x18, [ste0(0b011), 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        rig.translate(0x18, None, 0, Access::Read)
            .unwrap_err()
            .reason,
        0x04
    );
    assert_eq!(one_event(&rig)[0], 0x04 | 0x18 << 32);
    // F_CD_FETCH: S1ContextPtr outside RAM.
    rig.write_ste(0x19, [ste0(0b101) | 0x8_0000_0000, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        rig.translate(0x19, None, 0, Access::Read)
            .unwrap_err()
            .reason,
        0x09
    );
    let e = one_event(&rig);
    assert_eq!((e[0], e[3]), (0x09 | 0x19 << 32, 0x8_0000_0000));
    // C_BAD_CD (AArch32 CD), F_STREAM_DISABLED, C_BAD_SUBSTREAMID.
    let cd = rig.alloc(64 * 4);
    rig.write_words(cd, &[cd0(1) & !(1 << 41)]);
    rig.write_ste(0x1a, [ste0(0b101) | cd | 2 << 59, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        rig.translate(0x1a, Some(1), 0, Access::Read)
            .unwrap_err()
            .reason,
        0x0a
    );
    assert_eq!(one_event(&rig)[0], 0x0a | 1 << 11 | 1 << 12 | 0x1a << 32);
    assert_eq!(
        rig.translate(0x1a, None, 0, Access::Read)
            .unwrap_err()
            .reason,
        0x06
    );
    assert_eq!(one_event(&rig)[0], 0x06 | 0x1a << 32);
    assert_eq!(
        rig.translate(0x1a, Some(4), 0, Access::Read)
            .unwrap_err()
            .reason,
        0x08
    );
    assert_eq!(one_event(&rig)[0], 0x08 | 1 << 11 | 4 << 12 | 0x1a << 32);
    // Without CR2.RECINVSID, C_BAD_STREAMID is not recorded.
    rig.w32(CR2, 0);
    let f = rig.translate(0x400, None, 0, Access::Read).unwrap_err();
    assert!(!f.recorded);
    assert!(rig.events().is_empty());
    let s = rig.smmu.stats();
    assert_eq!(s.events["C_BAD_STREAMID"], 2);
    assert_eq!(s.events_suppressed, 1);
    // The EVTQ MSI went to the sink once per record.
    let n = rig
        .irq
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| **m == (EVTQ_MSI, 0x42))
        .count();
    assert_eq!(n as u64, s.events_recorded);
}

#[test]
fn translation_events_with_fields() {
    let rig = Rig::new("smmuv3,httu=0".parse().unwrap());
    rig.bringup(false);
    let (cd, root) = s1_stream(&rig, 0x18, 1);
    // F_TRANSLATION (stage 1): RnW = 0 for a write, InputAddr, no S2.
    let f = rig
        .translate(0x18, None, 0x1234_5678, Access::Write)
        .unwrap_err();
    assert_eq!((f.reason, f.recorded), (0x10, true));
    let e = one_event(&rig);
    assert_eq!(e[0], 0x10 | 0x18 << 32);
    assert_eq!(e[1], 2 << 40, "CLASS = IN, RnW = 0, S2 = 0");
    assert_eq!(e[2], 0x1234_5678);
    // F_ACCESS: AF clear without HTTU; F_PERMISSION: write to read-only; F_ADDR_SIZE: output above
    // IPS (IPS = 32 bits).
    rig.map4k(root, 0x1000, 0x5000, 3, AP_UNPRIV);
    rig.map4k(root, 0x2000, 0x6000, 3, S1_RW | AP_RO);
    rig.map4k(root, 0x3000, 0x1_0000_0000, 3, S1_RW);
    assert_eq!(
        rig.translate(0x18, None, 0x1000, Access::Read)
            .unwrap_err()
            .reason,
        0x12
    );
    assert_eq!(one_event(&rig)[1], 1 << 35 | 2 << 40, "RnW = 1");
    assert_eq!(
        rig.translate(0x18, None, 0x2000, Access::Write)
            .unwrap_err()
            .reason,
        0x13
    );
    one_event(&rig);
    rig.write_words(cd, &[cd0(1) & !(7 << 32)]);
    rig.cmd(0x5 | 0x18 << 32, 0); // CFGI_CD
    rig.sync();
    assert_eq!(
        rig.translate(0x18, None, 0x3000, Access::Read)
            .unwrap_err()
            .reason,
        0x11
    );
    one_event(&rig);
    // F_WALK_EABT: TTB0 outside RAM; FetchAddr is the descriptor address.
    rig.write_words(cd, &[cd0(1), 0x7_0000_0000]);
    rig.cmd(0x6 | 0x18 << 32, 0); // CFGI_CD_ALL
    rig.sync();
    assert_eq!(
        rig.translate(0x18, None, 0x3000, Access::Read)
            .unwrap_err()
            .reason,
        0x0b
    );
    let e = one_event(&rig);
    assert_eq!(e[3], 0x7_0000_0000);
    assert_eq!(e[2], 0x3000);
    // CD.R = 0: stage 1 faults are not recorded.
    rig.write_words(cd, &[cd0(1) & !(1 << 45), root]);
    rig.cmd(0x5 | 0x18 << 32, 0);
    rig.sync();
    let f = rig
        .translate(0x18, None, 0x9_0000, Access::Read)
        .unwrap_err();
    assert_eq!((f.reason, f.recorded), (0x10, false));
    assert!(rig.events().is_empty());
    // Stage 2: F_TRANSLATION with S2, CLASS = IN, the IPA.
    s2_stream(&rig, 0x20, 4);
    assert_eq!(
        rig.translate(0x20, None, 0xabc_d123, Access::Read)
            .unwrap_err()
            .reason,
        0x10
    );
    let e = one_event(&rig);
    assert_eq!(e[1], 1 << 35 | 1 << 39 | 2 << 40);
    assert_eq!((e[2], e[3]), (0xabc_d123, 0xabc_d000));
}

#[test]
fn nested_cd_fetch_fault_is_stage2_class_cd() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    nested_stream(&rig, 0x18, 1, 1, &[]);
    // Point S1ContextPtr at an IPA stage 2 does not map.
    let mut ste = [0u64; 8];
    for (i, w) in ste.iter_mut().enumerate() {
        *w = rig.mem.read_u64(STRTAB + 0x18 * 64 + 8 * i as u64).unwrap();
    }
    ste[0] = ste0(0b111) | 0x40_0000_0000;
    rig.write_ste(0x18, ste);
    assert_eq!(
        rig.translate(0x18, None, 0, Access::Read)
            .unwrap_err()
            .reason,
        0x10
    );
    let e = one_event(&rig);
    assert_eq!(e[1] >> 39 & 1, 1);
    assert_eq!(e[1] >> 40 & 3, 0, "CLASS = CD");
    assert_eq!(e[3], 0x40_0000_0000);
}

#[test]
fn event_queue_overflow_and_acknowledge() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    s1_stream(&rig, 0x18, 1);
    let size = 1u32 << EVTQ_LOG2;
    for i in 0..size + 8 {
        let _ = rig.translate(0x18, None, u64::from(i) << 12, Access::Read);
    }
    let prod = rig.r32(PAGE1 + EVTQ_PROD);
    assert_eq!(prod & Q_OVF, Q_OVF, "OVFLG toggled");
    assert_eq!(prod & ((2 << EVTQ_LOG2) - 1), size, "full: one lap ahead");
    let s = rig.smmu.stats();
    assert_eq!((s.events_recorded, s.events_lost), (u64::from(size), 8));
    // Consume and acknowledge (OVACKFLG = OVFLG): new events are recorded, no new toggle.
    let ev = rig.events();
    assert_eq!(ev.len() as u32, size);
    assert_eq!(ev[3][2], 3 << 12, "records in order");
    let _ = rig.translate(0x18, None, 0x7777_0000, Access::Read);
    assert_eq!(rig.r32(PAGE1 + EVTQ_PROD) & Q_OVF, Q_OVF);
    assert_eq!(rig.events().len(), 1);
    // EVTQEN off: events are discarded.
    rig.cr0(CR0_CMDQEN | CR0_SMMUEN);
    let f = rig.translate(0x18, None, 0x1000, Access::Read).unwrap_err();
    assert!(!f.recorded);
}

#[test]
fn inject_event() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    let (_, root) = s1_stream(&rig, 0x18, 1);
    rig.map4k(root, 0x1000, 0x2000, 3, S1_RW);
    rig.smmu.inject_event(0x18, 0x13, 2);
    rig.smmu.inject_event(0x18, 0x99, 5); // not an event this model raises: ignored
    assert_eq!(rig.smmu.stats().injected_pending, 2);
    for _ in 0..2 {
        let f = rig
            .translate(0x18, Some(7), 0x1abc, Access::Write)
            .unwrap_err();
        assert_eq!((f.reason, f.recorded), (0x13, true));
    }
    let ev = rig.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0][0], 0x13 | 1 << 11 | 7 << 12 | 0x18 << 32);
    assert_eq!(ev[0][2], 0x1abc);
    // Lookup neither sees nor consumes injections; other streams are unaffected.
    rig.smmu.inject_event(0x18, 0x10, 1);
    assert!(matches!(
        rig.smmu.lookup(0x18, None, 0x1000, Access::Read).result,
        crate::smmuv3::LookupResult::Translated { .. }
    ));
    assert!(rig.translate(0x19, None, 0x1000, Access::Read).is_err());
    assert_eq!(
        rig.translate(0x18, None, 0x1000, Access::Read)
            .unwrap_err()
            .reason,
        0x10
    );
    assert_eq!(rig.pa(0x18, None, 0x1000, Access::Read), 0x2000);
    let s = rig.smmu.stats();
    assert_eq!((s.events_injected, s.injected_pending), (3, 0));
    rig.smmu.inject_event(0x18, 0x10, 4);
    rig.smmu.inject_event(0x18, 0x10, 0);
    assert_eq!(rig.smmu.stats().injected_pending, 0);
}
