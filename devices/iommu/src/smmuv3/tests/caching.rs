//! Cache behaviour: each invalidation drops exactly what it names (a cached translation survives an
//! unrelated one), and caching on and off give identical results.

use super::configs::{nested_stream, s1_stream, s2_stream};
use super::*;

/// Three streams: A (S1, ASID 1), B (S1, ASID 2), C (S2, VMID 5), each mapping page 0x1000 -> `pa`.
fn three(rig: &Rig, pa: u64) -> (u64, u64, u64) {
    let (_, a) = s1_stream(rig, 0xa, 1);
    let (_, b) = s1_stream(rig, 0xb, 2);
    let c = s2_stream(rig, 0xc, 5);
    for r in [a, b] {
        rig.map4k(r, 0x1000, pa, 3, S1_RW);
    }
    rig.map4k(c, 0x1000, pa, 3, S2_RW);
    (a, b, c)
}

fn remap(rig: &Rig, roots: &[u64], pa: u64, s2: bool) {
    for &r in roots {
        rig.map4k(r, 0x1000, pa, 3, if s2 { S2_RW } else { S1_RW });
    }
}

#[test]
fn tlb_invalidations_drop_exactly_their_scope() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    let (a, b, c) = three(&rig, 0x10_0000);
    let all = |rig: &Rig| [0xa, 0xb, 0xc].map(|sid| rig.pa(sid, None, 0x1000, Access::Read) >> 20);
    assert_eq!(all(&rig), [1, 1, 1]);
    // Change every table without invalidating: the TLB still answers.
    remap(&rig, &[a, b], 0x20_0000, false);
    remap(&rig, &[c], 0x20_0000, true);
    assert_eq!(all(&rig), [1, 1, 1]);
    // TLBI_NH_ASID for ASID 1 (VMID 0): only A.
    rig.cmd(0x11 | 1 << 48, 0);
    rig.sync();
    assert_eq!(all(&rig), [2, 1, 1]);
    // TLBI_NH_VA of another page, and TLBI_S2_IPA of another VMID: nothing.
    rig.cmd(0x12 | 2 << 48, 0x5000);
    rig.cmd(0x2a | 6 << 32, 0x1000);
    rig.sync();
    assert_eq!(all(&rig), [2, 1, 1]);
    // TLBI_NH_VA of B's page; TLBI_S2_IPA of C's page in VMID 5.
    rig.cmd(0x12 | 2 << 48, 0x1000);
    rig.cmd(0x2a | 5 << 32, 0x1000);
    rig.sync();
    assert_eq!(all(&rig), [2, 2, 2]);
    // TLBI_NH_ALL (VMID 0) leaves stage 2 entries; TLBI_S12_VMALL takes them.
    remap(&rig, &[a, b], 0x30_0000, false);
    remap(&rig, &[c], 0x30_0000, true);
    rig.cmd(0x10, 0);
    rig.sync();
    assert_eq!(all(&rig), [3, 3, 2]);
    rig.cmd(0x28 | 5 << 32, 0);
    rig.sync();
    assert_eq!(all(&rig), [3, 3, 3]);
    // TLBI_NSNH_ALL takes everything; TLBI_NH_VAA every ASID at an address.
    remap(&rig, &[a, b], 0x40_0000, false);
    rig.cmd(0x13, 0x1000);
    rig.sync();
    assert_eq!(all(&rig), [4, 4, 3]);
    let s = rig.smmu.stats();
    assert!(s.tlb_hits > 0 && s.tlb_misses > 0);
}

#[test]
fn range_invalidation_covers_exactly_its_range() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    let (_, root) = s1_stream(&rig, 0x18, 1);
    for p in 0..8u64 {
        rig.map4k(
            root,
            0x10_0000 + p * 0x1000,
            0x100_0000 + p * 0x1000,
            3,
            S1_RW,
        );
        rig.pa(0x18, None, 0x10_0000 + p * 0x1000, Access::Read);
        rig.map4k(
            root,
            0x10_0000 + p * 0x1000,
            0x200_0000 + p * 0x1000,
            3,
            S1_RW,
        );
    }
    // TG = 4K, NUM = 1, SCALE = 1: (1 + 1) * 2^1 = 4 pages from 0x102000.
    rig.cmd(0x12 | 1 << 12 | 1 << 20 | 1 << 48, 0x10_2000 | 1 << 10);
    rig.sync();
    let got: Vec<u64> = (0..8u64)
        .map(|p| rig.pa(0x18, None, 0x10_0000 + p * 0x1000, Access::Read) >> 24)
        .collect();
    assert_eq!(got, [1, 1, 2, 2, 2, 2, 1, 1]);
}

#[test]
fn config_invalidations() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(true);
    let (cd, root) = s1_stream(&rig, 0x18, 1);
    rig.map4k(root, 0x1000, 0x5000, 3, S1_RW);
    s1_stream(&rig, 0x19, 2);
    assert!(rig.translate(0x18, None, 0x1000, Access::Read).is_ok());
    let _ = rig.translate(0x19, None, 0x1000, Access::Read);
    // The STE becomes abort: cached until CFGI_STE of that SID (another SID's does nothing).
    rig.write_ste(0x18, [ste0(0b000), 0, 0, 0, 0, 0, 0, 0]);
    rig.cmd(0x3 | 0x19 << 32, 0);
    rig.sync();
    assert!(rig.translate(0x18, None, 0x1000, Access::Read).is_ok());
    rig.cmd(0x3 | 0x18 << 32, 1);
    rig.sync();
    assert!(rig.translate(0x18, None, 0x1000, Access::Read).is_err());
    // CFGI_STE_RANGE: 2^(Range + 1) SIDs, aligned: Range = 2 from 0x10 is 0x10..=0x17.
    rig.write_ste(0x18, [ste0(0b101) | cd, 0, 0, 0, 0, 0, 0, 0]);
    rig.cmd(0x4 | 0x10 << 32, 2);
    rig.sync();
    assert!(
        rig.translate(0x18, None, 0x1000, Access::Read).is_err(),
        "0x10..=0x17 only"
    );
    rig.cmd(0x4 | 0x1a << 32, 2);
    rig.sync();
    assert!(rig.translate(0x18, None, 0x1000, Access::Read).is_ok());
    // The CD changes ASID: CFGI_CD of another SSID keeps the old one, CFGI_CD of it drops it.
    // (S1CDMax = 0: the CD's SSID is ignored, so the old one is dropped by any CFGI_CD of the SID.)
    rig.write_words(cd, &[cd0(1) | 1]); // T0SZ 16 -> 17: 47-bit range (memory view)
    rig.cmd(0x5 | 0x19 << 32, 0);
    rig.sync();
    assert_eq!(
        rig.smmu.permitted_ranges(0x18, None).windows()[0].last,
        (1 << 47) - 1
    );
    let before = rig.smmu.stats().cd_cache_hits;
    rig.pa(0x18, None, 0x1000, Access::Read);
    assert_eq!(rig.smmu.stats().cd_cache_hits, before + 1, "still cached");
    rig.cmd(0x5 | 0x18 << 32 | 9 << 12, 0);
    rig.sync();
    rig.pa(0x18, None, 0x1000, Access::Read);
    let s = rig.smmu.stats();
    assert_eq!(s.cd_cache_hits, before + 1, "refetched");
    assert!(s.ste_cache_entries >= 1 && s.cd_cache_entries >= 1);
}

/// One scripted session: tables, translations, faults, proper invalidations, table changes.
fn session(caching: bool) -> (Vec<String>, Vec<u8>, Vec<[u64; 4]>) {
    let cfg = Smmuv3Config {
        caching,
        ..Default::default()
    };
    let rig = Rig::new(cfg);
    rig.bringup(true);
    let (a, b, c) = three(&rig, 0x10_0000);
    let (s1n, _) = nested_stream(&rig, 0xd, 7, 3, &[(0x8000_0000, 0x9000_0000)]);
    rig.map4k(s1n, 0x1000, 0x8000_0000, 3, S1_RW);
    rig.map4k(a, 0x20_0000, 0x40_0000, 2, S1_RW);
    // Writable-clean (DBM + read-only) and AF-clear pages: HTTU updates them on the first walk.
    rig.map4k(a, 0x3000, 0x70_0000, 3, S1_RW | AP_RO | 1 << 51);
    rig.map4k(b, 0x3000, 0x71_0000, 3, AP_UNPRIV);
    let mut log = Vec::new();
    let run = |rig: &Rig, log: &mut Vec<String>| {
        for sid in [0xa, 0xb, 0xc, 0xd, 0xe] {
            for iova in [0x1000u64, 0x1ff8, 0x2000, 0x3000, 0x20_1000, 0x3f_f000] {
                for access in [Access::Read, Access::Write, Access::Read] {
                    log.push(format!("{:?}", rig.translate(sid, None, iova, access)));
                }
            }
        }
    };
    run(&rig, &mut log);
    remap(&rig, &[a, b], 0x50_0000, false);
    remap(&rig, &[c], 0x60_0000, true);
    rig.map4k(s1n, 0x1000, 0x8000_0000, 3, S1_RW | AP_RO);
    rig.cmd(0x11 | 1 << 48, 0);
    rig.cmd(0x12 | 2 << 48, 0x1000);
    rig.cmd(0x2a | 5 << 32, 0x1000);
    rig.cmd(0x11 | 7 << 32 | 3 << 48, 0);
    rig.sync();
    run(&rig, &mut log);
    rig.write_ste(0xb, [ste0(0b100), 0, 0, 0, 0, 0, 0, 0]);
    rig.cmd(0x3 | 0xb << 32, 1);
    rig.sync();
    run(&rig, &mut log);
    let mut ram = vec![0u8; MEM_SIZE];
    rig.mem.read(0, &mut ram).unwrap();
    let events = rig.events();
    (log, ram, events)
}

#[test]
fn caching_on_and_off_are_identical() {
    let on = session(true);
    let off = session(false);
    assert_eq!(on.0, off.0, "translation results");
    assert_eq!(on.2, off.2, "event records");
    assert!(on.1 == off.1, "guest memory (access/dirty updates, queues)");
    assert!(on.0.iter().any(|r| r.starts_with("Ok")) && on.0.iter().any(|r| r.starts_with("Err")));
}
