//! Register-level behaviour and the Linux bring-up sequence.

use super::*;
use crate::vtd::VTD_MMIO_SIZE;

#[test]
fn id_registers_and_window_edges() {
    let fx = Fx::new("vtd");
    let cfg = fx.vtd.config().clone();
    assert_eq!(fx.r32(regs::VER), 0x10);
    assert_eq!(fx.r64(regs::CAP), cfg.cap());
    assert_eq!(fx.r64(regs::ECAP), cfg.ecap());
    // Split reads agree with 64-bit reads; odd sizes and offsets work.
    let cap = fx.r64(regs::CAP);
    assert_eq!(
        u64::from(fx.r32(regs::CAP)) | u64::from(fx.r32(regs::CAP + 4)) << 32,
        cap
    );
    let mut three = [0u8; 3];
    fx.vtd.mmio_read(regs::CAP + 3, &mut three);
    assert_eq!(three, cap.to_le_bytes()[3..6]);
    // Unimplemented registers read 0; beyond the window all ones, also when straddling the end.
    assert_eq!(fx.r64(0x200), 0);
    assert_eq!(fx.r32(regs::GCMD), 0, "GCMD is write-only");
    assert_eq!(fx.r64(VTD_MMIO_SIZE), u64::MAX);
    let mut straddle = [0u8; 8];
    fx.vtd.mmio_read(VTD_MMIO_SIZE - 4, &mut straddle);
    assert_eq!(straddle, [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    let mut far = [0u8; 4];
    fx.vtd.mmio_read(u64::MAX - 1, &mut far);
    assert_eq!(far, [0xff; 4]);
    // Read-only registers ignore writes; writes beyond the window are ignored.
    fx.w64(regs::CAP, 0);
    fx.w64(regs::ECAP, 0);
    assert_eq!(fx.r64(regs::CAP), cfg.cap());
    fx.w64(VTD_MMIO_SIZE - 4, u64::MAX);
    fx.vtd.mmio_write(u64::MAX - 2, &[1, 2, 3, 4]);
    fx.vtd.mmio_write(0x20, &[]);
    // FECTL and IECTL reset with IM set.
    assert_eq!(fx.r32(regs::FECTL), regs::CTL_IM);
    assert_eq!(fx.r32(regs::IECTL), regs::CTL_IM);
}

#[test]
fn gcmd_is_a_full_state_write_with_immediate_status() {
    let fx = Fx::new("vtd,sm=off,ir=off");
    fx.w64(regs::RTADDR, 0x12_3000 | 0x3ff);
    assert_eq!(fx.r64(regs::RTADDR), 0x12_3000, "bits 9:0 reserved");
    fx.w32(regs::GCMD, regs::GCMD_SRTP);
    assert_eq!(fx.r32(regs::GSTS), regs::GSTS_RTPS);
    fx.w32(regs::GCMD, regs::GCMD_TE);
    assert_eq!(fx.r32(regs::GSTS), regs::GSTS_RTPS | regs::GSTS_TES);
    // QIE while keeping TE; then a write without TE turns translation off.
    fx.w32(regs::GCMD, regs::GCMD_TE | regs::GCMD_QIE);
    assert_eq!(
        fx.r32(regs::GSTS),
        regs::GSTS_RTPS | regs::GSTS_TES | regs::GSTS_QIES
    );
    fx.w32(regs::GCMD, regs::GCMD_QIE);
    assert_eq!(fx.r32(regs::GSTS), regs::GSTS_RTPS | regs::GSTS_QIES);
    // A byte write to the top byte keeps the persistent QIE bit (bits 31:24 hold TE/SRTP/.../QIE).
    fx.vtd.mmio_write(regs::GCMD + 3, &[0x80 | 0x04]);
    assert_eq!(
        fx.r32(regs::GSTS) & (regs::GSTS_TES | regs::GSTS_QIES),
        regs::GSTS_TES | regs::GSTS_QIES
    );
    // Commands the unit does not support leave status untouched (no RWBF, no IR, no AFL).
    fx.w32(
        regs::GCMD,
        regs::GCMD_TE | regs::GCMD_QIE | regs::GCMD_WBF | regs::GCMD_IRE,
    );
    assert_eq!(
        fx.r32(regs::GSTS),
        regs::GSTS_RTPS | regs::GSTS_TES | regs::GSTS_QIES
    );
}

#[test]
fn srtp_latches_the_root_pointer() {
    let fx = Fx::new("vtd,sm=off");
    let root = fx.alloc();
    let top = fx.alloc();
    fx.set_legacy_context(root, SID, top | 1, 2 | 1 << 8);
    fx.map(top, 4, 0x1000, 0x5000, 12, (true, true));
    let mut q = linux_bringup(&fx, root, false);
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(0x5000));
    // Writing RTADDR alone changes nothing until SRTP.
    let other = fx.alloc();
    fx.w64(regs::RTADDR, other);
    fx.sync(&mut q, &[cc_global(), iotlb_global()]);
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(0x5000));
    fx.gcmd(0, 0, regs::GCMD_SRTP);
    fx.sync(&mut q, &[cc_global(), iotlb_global()]);
    assert_eq!(
        fx.out(SID, None, 0x1000, Access::Read),
        Err(0x1),
        "empty root table"
    );
}

#[test]
fn linux_bringup_legacy_and_scalable() {
    for scalable in [false, true] {
        let fx = Fx::new(if scalable { "vtd" } else { "vtd,sm=off" });
        let root = fx.alloc();
        let q = linux_bringup(&fx, root, scalable);
        assert!(q.wide == scalable, "256-bit descriptors follow ECAP.SMTS");
        assert_eq!(fx.r64(regs::IQA) & regs::IQA_DW != 0, scalable);
        let st = fx.vtd.stats();
        assert_eq!(st.invalidations["context_global"], 1);
        assert_eq!(st.invalidations["iotlb_global"], 1);
        assert_eq!(
            st.invalidations.get("pasid_cache_global").copied(),
            scalable.then_some(1)
        );
        assert_eq!(st.invalidations["wait"], if scalable { 3 } else { 2 });
        assert_eq!(st.qi_errors, 0);
        assert!(fx.msis().is_empty());
        // With the empty root table every DMA faults with "root entry not present".
        let reason = if scalable { 0x39 } else { 0x1 };
        assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Err(reason));
        assert_eq!(fx.msis(), vec![(0xfee0_0000, 0x31)], "fault event MSI");
    }
}

#[test]
fn translation_disabled_is_identity() {
    let fx = Fx::new("vtd");
    let t = fx.xlate(SID, None, 0x1234_5678, Access::Write).unwrap();
    assert_eq!(t.translate(0x1234_5678), 0x1234_5678);
    assert!(t.perms.read && t.perms.write);
    let hi = fx.xlate(SID, None, u64::MAX, Access::Read).unwrap();
    assert_eq!(hi.translate(u64::MAX), u64::MAX);
    // The interrupt range is never DMA (not recorded, no fault event).
    let f = fx.xlate(SID, None, 0xfee0_0000, Access::Write).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0, false));
    assert_eq!(fx.r32(regs::FSTS), 0);
    // A requester id that is not a BDF.
    let mut r = fx.req(SID, None, 0, Access::Read);
    r.source_id = 0x1_0000;
    assert!(!fx.vtd.translate(&r).unwrap_err().recorded);
}

#[test]
fn permitted_ranges_per_width_and_rmrr() {
    use crate::ranges::IovaWindow;
    let w = |a, b| IovaWindow::new(a, b).unwrap();
    let fx = Fx::new("vtd,aw=48");
    assert_eq!(
        fx.vtd.permitted_ranges(SID).windows(),
        &[w(0, 0xfedf_ffff), w(0xfef0_0000, 0xffff_ffff_ffff)]
    );
    let fx = Fx::new("vtd,aw=39");
    assert_eq!(
        fx.vtd.permitted_ranges(SID).windows(),
        &[w(0, 0xfedf_ffff), w(0xfef0_0000, 0x7f_ffff_ffff)]
    );
    let fx = Fx::new("vtd,aw=57");
    assert_eq!(
        fx.vtd.permitted_ranges(SID).windows(),
        &[w(0, 0xfedf_ffff), w(0xfef0_0000, 0x1ff_ffff_ffff_ffff)]
    );
    let fx = Fx::new("vtd,rmrr=0xa0000-0xbffff@00:05.0");
    assert_eq!(
        fx.vtd.permitted_ranges(0x28).windows(),
        &[
            w(0, 0x9_ffff),
            w(0xc_0000, 0xfedf_ffff),
            w(0xfef0_0000, 0xffff_ffff_ffff)
        ]
    );
    assert_eq!(
        fx.vtd.permitted_ranges(SID).windows().len(),
        2,
        "other devices keep it"
    );
}

#[test]
fn vtd_is_send_and_sync_and_a_dma_port() {
    fn check<T: Send + Sync + DmaPort>() {}
    check::<Vtd>();
    let fx = Fx::new("vtd");
    let port: Arc<dyn DmaPort> = Arc::new(Vtd::new(
        fx.vtd.config().clone(),
        fx.mem.clone(),
        fx.irq.clone(),
    ));
    let t = port
        .translate(&DmaRequest::new(u32::from(SID), 0x1000, Access::Read))
        .unwrap();
    assert_eq!(t.translate(0x1000), 0x1000, "translation disabled at reset");
}
