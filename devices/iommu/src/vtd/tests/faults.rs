//! Fault recording through the registers, as Linux's dmar_fault() reads it; FPD; fault event MSI;
//! translation requests.

use super::*;
use crate::request::RequestKind;

const FRO: u64 = regs::FRO_OFFSET;

/// Legacy unit with one mapped page (0x1000 -> 0x5000, read-only) for SID in domain 1.
fn setup(opts: &str) -> (Fx, u64, u64) {
    let fx = Fx::new(opts);
    let root = fx.alloc();
    linux_bringup(&fx, root, false);
    let top = fx.alloc();
    fx.set_legacy_context(root, SID, top | 1, 2 | 1 << 8);
    fx.map(top, 4, 0x1000, 0x5000, 12, (true, false));
    (fx, root, top)
}

/// What Linux's dmar_fault() does: from FRI, read and clear records until F is clear, then clear
/// PFO|PPF|PRO. Returns (reason, sid, read?, pasid, addr) of each record.
fn linux_drain(fx: &Fx, nfr: u64) -> Vec<(u8, u16, bool, Option<u32>, u64)> {
    let mut out = Vec::new();
    let fsts = fx.r32(regs::FSTS);
    if fsts & regs::FSTS_PPF != 0 {
        let mut i = u64::from(fsts >> 8 & 0xff);
        loop {
            let hi = fx.r32(FRO + i * 16 + 12);
            if hi & (1 << 31) == 0 {
                break;
            }
            let sid_word = fx.r32(FRO + i * 16 + 8);
            let addr = fx.r64(FRO + i * 16);
            let pasid = (sid_word & 1 << 31 != 0).then_some(hi >> 8 & 0xf_ffff);
            out.push((hi as u8, sid_word as u16, hi & 1 << 30 != 0, pasid, addr));
            fx.w32(FRO + i * 16 + 12, 1 << 31);
            i = (i + 1) % nfr;
        }
    }
    fx.w32(regs::FSTS, regs::FSTS_PFO | regs::FSTS_PPF | 1 << 7);
    out
}

#[test]
fn records_as_linux_reads_them() {
    let (fx, _root, _top) = setup("vtd,sm=off,nfr=4");
    let f = fx.xlate(SID, None, 0x1234, Access::Write).unwrap_err();
    assert_eq!(f.model, "vtd");
    assert_eq!((f.reason, f.iova, f.recorded), (5, 0x1234, true));
    assert!(!f.description.is_empty());
    assert_eq!(fx.r32(regs::FSTS), regs::FSTS_PPF, "FRI 0");
    assert_eq!(fx.msis(), vec![(0xfee0_0000, 0x31)]);
    fx.xlate(SID, None, 0x9000, Access::Read).unwrap_err();
    assert_eq!(
        fx.msis().len(),
        1,
        "PPF already pending: no second interrupt"
    );
    let recs = linux_drain(&fx, 4);
    assert_eq!(
        recs,
        vec![(5, SID, false, None, 0x1000), (6, SID, true, None, 0x9000)]
    );
    assert_eq!(fx.r32(regs::FSTS), 0);
    // The next fault goes to record 2 and FRI says so.
    fx.xlate(SID, None, 0x9000, Access::Read).unwrap_err();
    assert_eq!(fx.r32(regs::FSTS), regs::FSTS_PPF | 2 << 8);
    assert_eq!(fx.msis().len(), 2);
    assert_eq!(linux_drain(&fx, 4).len(), 1);
    // The record holds the PASID of a request with PASID (RTA.2 in legacy mode).
    fx.xlate(SID, Some(0x1234), 0, Access::Read).unwrap_err();
    assert_eq!(
        linux_drain(&fx, 4),
        vec![(0x31, SID, true, Some(0x1234), 0)]
    );
    let st = fx.vtd.stats();
    assert_eq!(st.faults_recorded, 4);
    assert_eq!(st.faults_by_reason["0x06"], 2);
}

#[test]
fn overflow_sets_pfo_and_drops_until_cleared() {
    let (fx, _root, _top) = setup("vtd,sm=off,nfr=2");
    for i in 0..2u64 {
        assert!(
            fx.xlate(SID, None, 0x10_0000 * (i + 1), Access::Read)
                .unwrap_err()
                .recorded
        );
    }
    let f = fx.xlate(SID, None, 0x30_0000, Access::Read).unwrap_err();
    assert!(!f.recorded, "both registers full");
    assert_eq!(f.reason, 6, "the device still sees the reason");
    assert_eq!(fx.r32(regs::FSTS) & (regs::FSTS_PFO | regs::FSTS_PPF), 3);
    assert_eq!(fx.vtd.stats().faults_dropped, 1);
    // Dropped faults do not overwrite the records.
    assert_eq!(fx.r64(FRO), 0x10_0000);
    assert_eq!(fx.r64(FRO + 16), 0x20_0000);
    let recs = linux_drain(&fx, 2);
    assert_eq!(recs.len(), 2);
    assert_eq!(fx.r32(regs::FSTS), 0, "PFO cleared, PPF follows the F bits");
    assert!(
        fx.xlate(SID, None, 0x40_0000, Access::Read)
            .unwrap_err()
            .recorded
    );
}

#[test]
fn masked_fault_event_is_sent_on_unmask() {
    let (fx, _root, _top) = setup("vtd,sm=off");
    fx.w32(regs::FECTL, regs::CTL_IM);
    fx.xlate(SID, None, 0x9000, Access::Read).unwrap_err();
    assert!(fx.msis().is_empty());
    assert_eq!(fx.r32(regs::FECTL), regs::CTL_IM | regs::CTL_IP);
    fx.w32(regs::FEDATA, 0x44);
    fx.w32(regs::FECTL, 0);
    assert_eq!(fx.msis(), vec![(0xfee0_0000, 0x44)]);
    assert_eq!(fx.r32(regs::FECTL), 0);
}

#[test]
fn fpd_suppresses_recording_but_not_the_fault() {
    let (fx, root, top) = setup("vtd,sm=off");
    let sid2 = 0x20;
    fx.set_legacy_context(root, sid2, top | 2 | 1, 2 | 1 << 8);
    let f = fx.xlate(sid2, None, 0x1000, Access::Write).unwrap_err();
    assert_eq!((f.reason, f.recorded), (5, false));
    assert_eq!(fx.out(sid2, None, 0x1000, Access::Read), Ok(0x5000));
    // FPD in a not-present context entry counts too (evaluated irrespective of P).
    let sid3 = 0x28;
    fx.set_legacy_context(root, sid3, 2, 0);
    let f = fx.xlate(sid3, None, 0, Access::Read).unwrap_err();
    assert_eq!((f.reason, f.recorded), (2, false));
    // Faults found before any FPD is known are always recorded.
    let f = fx.xlate(0x100, None, 0, Access::Read).unwrap_err();
    assert_eq!((f.reason, f.recorded), (1, true));
    assert_eq!(fx.vtd.stats().faults_suppressed, 2);
    assert_eq!(fx.msis().len(), 1);

    // Scalable: Linux's "blocked" PASID entry (P=0, FPD=1) suppresses the PASID-entry fault.
    let fx = Fx::new("vtd");
    let root = fx.alloc();
    linux_bringup(&fx, root, true);
    let dir = fx.alloc();
    fx.set_sm_context(root, SID, [dir | 1, 0, 0, 0]);
    fx.set_pasid_entry(dir, 0, [2, 0, 0, 0, 0, 0, 0, 0]);
    let f = fx.xlate(SID, None, 0, Access::Read).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0x59, false));
    // FPD in the PASID directory entry covers everything below it.
    fx.wr(dir, fx.rd(dir) | 2);
    fx.set_pasid_entry(dir, 0, [2 << 6 | 2 << 2 | 1, 1, 0, 0, 0, 0, 0, 0]);
    let f = fx.xlate(SID, None, 0x1000, Access::Write).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0x79, false));
    assert_eq!(fx.r32(regs::FSTS), 0);
}

#[test]
fn translation_requests_are_answered_not_recorded() {
    let (fx, _root, _top) = setup("vtd,sm=off");
    let mut req = fx.req(SID, None, 0x1000, Access::Read);
    req.kind = RequestKind::TranslationRequest;
    let t = fx.vtd.translate(&req).unwrap();
    assert_eq!(t.translate(0x1008), 0x5008);
    assert!(t.perms.read && !t.perms.write);
    req.access = Access::Write;
    let f = fx.vtd.translate(&req).unwrap_err();
    assert_eq!((f.reason, f.recorded), (5, false));
    req.iova = 0x9000;
    assert!(!fx.vtd.translate(&req).unwrap_err().recorded);
    assert_eq!(fx.r32(regs::FSTS), 0);
    assert!(fx.msis().is_empty());
}
