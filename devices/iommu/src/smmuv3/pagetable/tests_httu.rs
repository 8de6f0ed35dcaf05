//! Stage-1 HTTU (Access flag, dirty state, races), Lookup mode and nesting through `table_xlate`.

use super::desc::{AF, AP2, DBM};
use super::tests::{block, cfg, fault_kind, page, put, run, snapshot, tbl, tr, MEM};
use super::*;
use crate::mem::{DmaMemory, MemError, TestMemory};
use crate::request::Access;

#[test]
fn access_flag_update_vs_affd_vs_fault() {
    let m = TestMemory::new(MEM);
    let mut c = cfg(Stage::S1, Granule::G4K, 25, 0x1000);
    let leaf = block(0x4000_0000) & !AF;
    put(&m, 0x1000, 1, leaf);
    let iova = 0x4000_0000;
    // Neither HA nor AFFD: Access flag fault, memory untouched.
    assert_eq!(fault_kind(tr(&m, &c, iova)), (WalkFaultKind::AccessFlag, 1));
    assert_eq!(m.read_u64(0x1008).unwrap(), leaf);
    // The Access flag fault takes priority over a Permission fault (write to a read-only page).
    put(&m, 0x1000, 1, leaf | AP2);
    assert_eq!(
        fault_kind(run(&m, &c, iova, Access::Write, false, Mode::Translate)),
        (WalkFaultKind::AccessFlag, 1)
    );
    put(&m, 0x1000, 1, leaf);
    // AFFD: proceed as if AF were 1, nothing written.
    c.affd = true;
    let o = tr(&m, &c, iova).unwrap();
    assert!(!o.updated);
    assert_eq!(m.read_u64(0x1008).unwrap(), leaf);
    // HA: AF set in memory (AFFD ignored), once.
    c.ha = true;
    let before = snapshot(&m);
    let o = run(&m, &c, iova, Access::Read, false, Mode::Lookup).unwrap();
    assert!(!o.updated && o.attrs & AF != 0);
    assert_eq!(snapshot(&m), before, "Lookup never writes");
    let o = tr(&m, &c, iova).unwrap();
    assert!(o.updated);
    assert_eq!(o.steps[0].desc, leaf, "steps show the descriptor as read");
    assert_eq!(m.read_u64(0x1008).unwrap(), leaf | AF);
    assert!(!tr(&m, &c, iova).unwrap().updated);
    // HA does not update on a faulting access.
    c.ha = true;
    put(&m, 0x1000, 1, leaf | AP2);
    assert_eq!(
        fault_kind(run(&m, &c, iova, Access::Write, false, Mode::Translate)),
        (WalkFaultKind::Permission, 1)
    );
    assert_eq!(m.read_u64(0x1008).unwrap(), leaf | AP2);
}

#[test]
fn dirty_state_update_stage1() {
    let m = TestMemory::new(MEM);
    let mut c = cfg(Stage::S1, Granule::G4K, 25, 0x1000);
    c.ha = true;
    c.hd = true;
    let clean = block(0) | AP2 | DBM; // writable-clean, AF set
    put(&m, 0x1000, 0, clean);
    let rd = tr(&m, &c, 0).unwrap();
    assert_eq!(
        (rd.perms.read, rd.perms.write, rd.writable_clean, rd.updated),
        (true, false, true, false)
    );
    let before = snapshot(&m);
    let lk = run(&m, &c, 0, Access::Write, false, Mode::Lookup).unwrap();
    assert_eq!(
        (lk.perms.write, lk.writable_clean, lk.updated),
        (true, false, false)
    );
    assert_eq!(snapshot(&m), before);
    let wr = run(&m, &c, 0, Access::Write, false, Mode::Translate).unwrap();
    assert_eq!(
        (wr.perms.write, wr.writable_clean, wr.updated),
        (true, false, true)
    );
    assert_eq!(m.read_u64(0x1000).unwrap(), clean & !AP2);
    // AF and dirty in one update.
    put(&m, 0x1000, 0, clean & !AF);
    run(&m, &c, 0, Access::Write, false, Mode::Translate).unwrap();
    assert_eq!(m.read_u64(0x1000).unwrap(), (clean | AF) & !AP2);
    // HD without HA behaves as no HTTU; without DBM, or with HD off, a read-only page faults.
    for (ha, hd, dbm) in [(false, true, DBM), (true, false, DBM), (true, true, 0)] {
        c.ha = ha;
        c.hd = hd;
        put(&m, 0x1000, 0, (clean & !DBM) | dbm);
        let f = run(&m, &c, 0, Access::Write, false, Mode::Translate).unwrap_err();
        assert_eq!(f.kind, WalkFaultKind::Permission);
        assert_eq!(m.read_u64(0x1000).unwrap(), (clean & !DBM) | dbm);
    }
}

/// Memory whose compare-exchange first lets a "vCPU" rewrite the entry, `races` times.
struct Racy {
    inner: TestMemory,
    races: std::sync::Mutex<u32>,
    to: u64,
}

impl DmaMemory for Racy {
    fn read(&self, a: u64, b: &mut [u8]) -> Result<(), MemError> {
        self.inner.read(a, b)
    }
    fn write(&self, a: u64, b: &[u8]) -> Result<(), MemError> {
        self.inner.write(a, b)
    }
    fn compare_exchange_u64(&self, a: u64, cur: u64, new: u64) -> Result<u64, MemError> {
        let mut n = self.races.lock().unwrap();
        if *n > 0 {
            *n -= 1;
            let v = self.inner.read_u64(a)?;
            // Toggle a software bit (or install `to`) so the expected value is stale.
            self.inner
                .write_u64(a, if self.to != 0 { self.to } else { v ^ (1 << 55) })?;
        }
        self.inner.compare_exchange_u64(a, cur, new)
    }
}

#[test]
fn httu_race_retries_then_gives_up() {
    let mut c = cfg(Stage::S1, Granule::G4K, 25, 0x1000);
    c.ha = true;
    let leaf = block(0) & !AF;
    let racy = |races, to| {
        let m = Racy {
            inner: TestMemory::new(0x4000),
            races: std::sync::Mutex::new(races),
            to,
        };
        put(&m.inner, 0x1000, 0, leaf);
        m
    };
    let m = racy(2, 0);
    let o = tr(&m, &c, 0).unwrap();
    assert!(o.updated);
    assert_eq!(o.steps.len(), 1);
    assert_eq!(m.inner.read_u64(0x1000).unwrap(), leaf | AF);
    let m = racy(MAX_HTTU_RETRIES + 1, 0);
    let f = tr(&m, &c, 0).unwrap_err();
    assert_eq!(
        (f.kind, f.fetch_addr),
        (WalkFaultKind::ExternalAbort, Some(0x1000))
    );
    // The entry was invalidated under us: decided again, a Translation fault.
    let m = racy(1, 0x2000);
    assert_eq!(fault_kind(tr(&m, &c, 0)), (WalkFaultKind::Translation, 1));
}

#[test]
fn nested_table_reads_go_through_table_xlate() {
    const OFF: u64 = 0x80_0000;
    let m = TestMemory::new(MEM);
    let c = cfg(Stage::S1, Granule::G4K, 25, 0x1000);
    // Tables live at IPA + OFF; the leaf's output is an IPA, not translated by the walker.
    put(&m, 0x1000 + OFF, 0, tbl(0x2000));
    put(&m, 0x2000 + OFF, 1, tbl(0x3000));
    put(&m, 0x3000 + OFF, 2, page(0x5000));
    let iova = (1 << 21) | (2 << 12) | 0x10;
    let mut seen = Vec::new();
    let o = walk(
        &m,
        &c,
        iova,
        Access::Read,
        false,
        Mode::Translate,
        &mut |ipa| {
            seen.push(ipa);
            Ok(ipa + OFF)
        },
    )
    .unwrap();
    assert_eq!(seen, [0x1000, 0x2008, 0x3010]);
    assert_eq!(o.address(iova), 0x5010);
    let got: Vec<(u64, Option<u64>)> = o.steps.iter().map(|s| (s.desc_addr, s.desc_ipa)).collect();
    assert_eq!(
        got,
        [
            (0x1000 + OFF, Some(0x1000)),
            (0x2008 + OFF, Some(0x2008)),
            (0x3010 + OFF, Some(0x3010))
        ]
    );
    // A stage-2 fault on the second table read comes back as is, with class TT.
    let s2 = WalkFault {
        kind: WalkFaultKind::Permission,
        stage: Stage::S2,
        level: 2,
        steps: vec![],
        ipa: Some(0x2008),
        class: FaultClass::IN,
        fetch_addr: None,
    };
    let mut calls = 0;
    let f = walk(
        &m,
        &c,
        iova,
        Access::Write,
        false,
        Mode::Translate,
        &mut |ipa| {
            calls += 1;
            if ipa == 0x2008 {
                Err(s2.clone())
            } else {
                Ok(ipa + OFF)
            }
        },
    )
    .unwrap_err();
    assert_eq!(calls, 2);
    assert_eq!(
        f,
        WalkFault {
            class: FaultClass::TT,
            ..s2
        }
    );
}
