//! The monitor's hooks: injected faults (recorded and signalled like real ones; probes and lookups
//! untouched), held invalidation-wait completions, and the fault log rate limit.

use std::time::{Duration, Instant};

use super::*;
use crate::vtd::LookupOutcome;

const FRO: u64 = regs::FRO_OFFSET;

/// Legacy unit with 0x1000 -> 0x5000 (read/write) mapped for SID.
fn legacy(opts: &str) -> Fx {
    let fx = Fx::new(opts);
    let root = fx.alloc();
    linux_bringup(&fx, root, false);
    let top = fx.alloc();
    fx.set_legacy_context(root, SID, top | 1, 2 | 1 << 8);
    fx.map(top, 4, 0x1000, 0x5000, 12, (true, true));
    fx
}

fn probe(iova: u64) -> DmaRequest {
    DmaRequest {
        source_id: u32::from(SID),
        pasid: None,
        iova,
        access: Access::Write,
        privileged: false,
        kind: RequestKind::TranslationRequest,
    }
}

#[test]
fn injected_faults_are_recorded_and_signalled_like_real_ones() {
    let fx = legacy("vtd,sm=off");
    assert_eq!(fx.out(SID, None, 0x1234, Access::Write), Ok(0x5234));
    fx.vtd.inject_fault(SID, 0x05, 2).unwrap();
    assert_eq!(fx.vtd.stats().injected_faults_pending, 2);
    // Probes, lookups and interrupt requests neither see nor consume it.
    assert!(fx.vtd.translate(&probe(0x1234)).is_ok());
    let l = fx.vtd.lookup(SID, None, 0x1234, Access::Write);
    assert!(matches!(l.outcome, LookupOutcome::Translated { .. }));
    let irq = fx.xlate(SID, None, 0xfee0_0000, Access::Write).unwrap_err();
    assert_eq!((irq.reason, irq.recorded), (0, false));
    assert_eq!(fx.vtd.stats().injected_faults_pending, 2);
    // Other sources are not affected (00:04.0 has no context entry: its own fault).
    assert_eq!(fx.out(0x20, None, 0x1234, Access::Read), Err(0x2));
    let msis_before = fx.msis().len();
    // Drain the record 00:04.0 left so the next fault raises a fresh event.
    fx.w32(FRO + 12, 1 << 31);
    // A mapped, writable page now faults: write denied, as the monitor asked.
    let f = fx.xlate(SID, None, 0x1234, Access::Read).unwrap_err();
    assert_eq!((f.reason, f.recorded, f.iova), (0x05, true, 0x1234));
    assert!(f.description.contains("injected"), "{}", f.description);
    assert!(
        f.description.starts_with("write to a page"),
        "{}",
        f.description
    );
    // The record: F, reason 5, SID, T1 = 1 (a read), the page address; FSTS.PPF with FRI; one MSI.
    let fsts = fx.r32(regs::FSTS);
    assert_ne!(fsts & regs::FSTS_PPF, 0);
    let i = u64::from(fsts >> 8 & 0xff);
    let hi = fx.r64(FRO + i * 16 + 8);
    assert_eq!(hi & regs::FRCD_F, regs::FRCD_F);
    assert_eq!((hi >> 32) as u8, 0x05);
    assert_eq!(hi as u16, SID);
    assert_ne!(hi & regs::FRCD_T1, 0);
    assert_eq!(fx.r64(FRO + i * 16), 0x1000);
    assert_eq!(fx.msis().len(), msis_before + 1);
    assert_eq!(fx.msis().last(), Some(&(0xfee0_0000, 0x31)));
    // The second one, then the real translation again.
    assert_eq!(fx.out(SID, None, 0x1000, Access::Write), Err(0x05));
    assert_eq!(fx.out(SID, None, 0x1234, Access::Write), Ok(0x5234));
    let s = fx.vtd.stats();
    assert_eq!(s.faults_injected, 2);
    assert_eq!(s.injected_faults_pending, 0);
    assert_eq!(s.faults_by_reason["0x05"], 2);
    assert_eq!(s.faults_recorded, 3);
}

#[test]
fn injection_ignores_tables_fpd_and_te() {
    // Translation disabled: DMA passes through, but an injected fault is still recorded (FECTL is
    // masked at reset: IP, no MSI).
    let fx = Fx::new("vtd");
    assert!(fx.xlate(SID, None, 0x1000, Access::Read).is_ok());
    fx.vtd.inject_fault(SID, 0x86, 1).unwrap();
    let f = fx.xlate(SID, Some(3), 0x1000, Access::Read).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0x86, true));
    let hi = fx.r64(FRO + 8);
    assert_eq!((hi >> 32) as u8, 0x86);
    assert_ne!(hi & regs::FRCD_PP, 0, "PASID recorded");
    assert_eq!(hi >> 40 & 0xf_ffff, 3);
    assert_eq!(fx.r32(regs::FECTL), regs::CTL_IM | regs::CTL_IP);
    assert!(fx.msis().is_empty());
    // A context entry with FPD set suppresses its real faults, not injected ones.
    let fx = Fx::new("vtd,sm=off");
    let root = fx.alloc();
    linux_bringup(&fx, root, false);
    fx.set_legacy_context(root, SID, 2, 2);
    let real = fx.xlate(SID, None, 0x1000, Access::Read).unwrap_err();
    assert_eq!((real.reason, real.recorded), (0x02, false));
    fx.vtd.inject_fault(SID, 0x02, 1).unwrap();
    let injected = fx.xlate(SID, None, 0x1000, Access::Read).unwrap_err();
    assert_eq!((injected.reason, injected.recorded), (0x02, true));
}

#[test]
fn inject_fault_refuses_unknown_and_interrupt_reasons() {
    let fx = legacy("vtd,sm=off");
    for bad in [0x00u8, 0x0d, 0x27, 0x7c, 0x99, 0xff] {
        let e = fx.vtd.inject_fault(SID, bad, 1).unwrap_err();
        assert!(e.contains("unknown") && e.contains("0x06"), "{bad:#x}: {e}");
    }
    let e = fx.vtd.inject_fault(SID, 0x22, 1).unwrap_err();
    assert!(e.contains("interrupt-remapping"), "{e}");
    assert_eq!(fx.vtd.stats().injected_faults_pending, 0);
    // Re-arming replaces; count 0 disarms.
    fx.vtd.inject_fault(SID, 0x06, 5).unwrap();
    fx.vtd.inject_fault(SID, 0x0c, 1).unwrap();
    assert_eq!(fx.vtd.stats().injected_faults_pending, 1);
    fx.vtd.inject_fault(SID, 0x0c, 0).unwrap();
    assert_eq!(fx.vtd.stats().injected_faults_pending, 0);
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(0x5000));
}

#[test]
fn held_wait_completes_at_the_first_register_access_after_the_deadline() {
    let fx = Fx::new("vtd");
    let root = fx.alloc();
    let mut q = linux_bringup(&fx, root, true);
    fx.w32(regs::IEDATA, 0x44);
    fx.w32(regs::IEADDR, 0xfee0_2000);
    fx.w32(regs::IECTL, 0);
    let status = fx.alloc();
    let hold = Duration::from_millis(40);
    let start = Instant::now();
    fx.vtd.hold_invalidation_completion(hold);
    fx.submit(&mut q, &[iotlb_global(), wait(true, true, 2, status)]);
    // The queue ran (IQH moved past the wait) but the wait has not completed.
    assert_eq!(fx.r64(regs::IQH), q.tail);
    if start.elapsed() < hold {
        assert_eq!(fx.rd(status), 0, "status write held");
        assert_eq!(fx.r32(regs::ICS), 0, "IWC held");
        assert!(fx.msis().is_empty());
        let s = fx.vtd.stats();
        assert_eq!((s.waits_held, s.waits_held_pending), (1, 1));
    }
    // Linux spins reading FSTS; once the hold has expired, that read completes the wait.
    let mut spins = 0u64;
    while fx.rd(status) != 2 {
        assert_eq!(fx.r32(regs::FSTS) & regs::FSTS_IQE, 0);
        spins += 1;
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "wait never completed"
        );
        std::thread::yield_now();
    }
    assert!(start.elapsed() >= hold, "completed early");
    assert!(spins > 0);
    assert_eq!(fx.r32(regs::ICS), regs::ICS_IWC);
    assert_eq!(fx.msis(), vec![(0xfee0_2000, 0x44)]);
    let s = fx.vtd.stats();
    assert_eq!((s.waits_held, s.waits_held_pending), (1, 0));
    // Hold over: waits complete at once again.
    fx.sync(&mut q, &[iotlb_global()]);
    assert_eq!(fx.vtd.stats().waits_held, 1);
}

#[test]
fn zero_hold_releases_at_once_and_poll_completes() {
    let fx = Fx::new("vtd");
    let root = fx.alloc();
    let mut q = linux_bringup(&fx, root, true);
    let (a, b) = (fx.alloc(), fx.alloc());
    fx.vtd
        .hold_invalidation_completion(Duration::from_secs(3600 * 24));
    fx.submit(&mut q, &[wait(true, false, 7, a), wait(true, false, 8, b)]);
    assert_eq!((fx.rd(a), fx.rd(b)), (0, 0));
    fx.vtd.poll();
    assert_eq!(fx.rd(a), 0, "poll before the deadline does nothing");
    fx.vtd.hold_invalidation_completion(Duration::ZERO);
    assert_eq!((fx.rd(a), fx.rd(b)), (7, 8));
    assert_eq!(fx.vtd.stats().waits_held_pending, 0);
    // A short hold, released by poll() without any register access.
    fx.vtd
        .hold_invalidation_completion(Duration::from_millis(5));
    fx.submit(&mut q, &[wait(true, false, 9, a)]);
    std::thread::sleep(Duration::from_millis(10));
    fx.vtd.poll();
    assert_eq!(fx.rd(a), 9);
}

#[test]
fn fault_log_is_rate_limited_but_counters_are_exact() {
    // An empty root table: every request faults (01h). 128 records, so none is dropped.
    let fx = Fx::new("vtd,sm=off,nfr=128");
    let root = fx.alloc();
    linux_bringup(&fx, root, false);
    let start = Instant::now();
    for i in 0..100u64 {
        assert_eq!(fx.out(SID, None, i << 12, Access::Read), Err(0x01));
    }
    let secs = start.elapsed().as_secs();
    let s = fx.vtd.stats();
    assert_eq!(s.faults_recorded, 100);
    assert_eq!(s.faults_by_reason["0x01"], 100);
    assert_eq!(s.fault_log_lines + s.fault_log_suppressed, 100);
    assert!(s.fault_log_lines >= 64, "the first 64 are logged");
    assert!(
        s.fault_log_lines <= 64 + secs + 1,
        "then one a second: {} lines in {secs} s",
        s.fault_log_lines
    );
}
