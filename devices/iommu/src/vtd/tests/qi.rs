//! Queued invalidation: descriptor widths, wait descriptors, queue errors and recovery; register-based
//! invalidation.

use super::*;

#[test]
fn wait_descriptor_status_write_and_interrupt() {
    for wide in [false, true] {
        let fx = Fx::new(if wide { "vtd" } else { "vtd,sm=off" });
        let mut q = fx.enable_qi(wide);
        let status = fx.alloc();
        // SW only.
        fx.submit(&mut q, &[wait(true, false, 0xabcd, status)]);
        assert_eq!(fx.rd(status), 0xabcd);
        assert_eq!(fx.r64(regs::IQH), q.tail);
        assert_eq!(fx.r64(regs::IQH), if wide { 32 } else { 16 });
        // IF with IECTL masked (reset value): ICS.IWC and IECTL.IP, no MSI until unmasked.
        fx.w32(regs::IEDATA, 0x55);
        fx.w32(regs::IEADDR, 0xfee0_1000);
        fx.submit(&mut q, &[wait(false, true, 0, 0)]);
        assert_eq!(fx.r32(regs::ICS), regs::ICS_IWC);
        assert_eq!(fx.r32(regs::IECTL), regs::CTL_IM | regs::CTL_IP);
        assert!(fx.msis().is_empty());
        fx.w32(regs::IECTL, 0);
        assert_eq!(fx.msis(), vec![(0xfee0_1000, 0x55)]);
        // IWC still set: another IF completion sends nothing until software clears IWC.
        fx.submit(&mut q, &[wait(false, true, 0, 0)]);
        assert_eq!(fx.msis().len(), 1);
        fx.w32(regs::ICS, regs::ICS_IWC);
        assert_eq!(fx.r32(regs::ICS), 0);
        fx.submit(&mut q, &[wait(true, true, 7, status)]);
        assert_eq!(fx.msis().len(), 2);
        assert_eq!(fx.rd(status), 7);
        // A batch that wraps around the end of the queue.
        for _ in 0..256 {
            fx.sync(&mut q, &[iotlb_global()]);
        }
        assert_eq!(fx.vtd.stats().qi_errors, 0);
    }
}

#[test]
fn iqe_on_unknown_type_stops_at_it_until_overwritten() {
    let fx = Fx::new("vtd");
    let mut q = fx.enable_qi(true);
    fx.w32(regs::FEADDR, 0xfee0_0000);
    fx.w32(regs::FEDATA, 0x22);
    fx.w32(regs::FECTL, 0);
    let status = fx.alloc();
    // cc_global, then an unknown type 0xf, then a wait descriptor.
    fx.submit(
        &mut q,
        &[cc_global(), [0xf, 0, 0, 0], wait(true, false, 2, status)],
    );
    assert_eq!(fx.r32(regs::FSTS) & regs::FSTS_IQE, regs::FSTS_IQE);
    assert_eq!(fx.r64(regs::IQERCD) & 0xf, regs::IQEI_INVALID_TYPE);
    assert_eq!(fx.r64(regs::IQH), 32, "IQH at the bad descriptor");
    assert_eq!(fx.rd(status), 0, "nothing after it ran");
    assert_eq!(fx.msis(), vec![(0xfee0_0000, 0x22)], "IQE is a fault event");
    // More tail writes do nothing while IQE is set.
    fx.w32(regs::IQT, q.tail as u32);
    assert_eq!(fx.r64(regs::IQH), 32);
    // Linux's recovery: copy the wait descriptor over the bad one, clear IQE.
    fx.wr(q.base + 32, fx.rd(q.base + 64));
    fx.wr(q.base + 40, fx.rd(q.base + 72));
    fx.w32(regs::FSTS, regs::FSTS_IQE);
    assert_eq!(fx.r32(regs::FSTS), 0);
    assert_eq!(fx.rd(status), 2, "resumed from IQH");
    assert_eq!(fx.r64(regs::IQH), q.tail);
    assert_eq!(fx.vtd.stats().qi_errors, 1);
}

#[test]
fn iqe_reasons() {
    let cases: [(&str, [u64; 4], u64); 7] = [
        // Device-TLB (no ECAP.DT) and interrupt-entry-cache (no ECAP.IR) invalidations.
        ("vtd", [3, 0, 0, 0], regs::IQEI_INVALID_TYPE),
        ("vtd,ir=off", [4, 0, 0, 0], regs::IQEI_INVALID_TYPE),
        // PASID-based descriptors need ECAP.SMTS.
        ("vtd,sm=off", [7 | 3 << 4, 0, 0, 0], regs::IQEI_INVALID_TYPE),
        // Reserved bits, reserved granularity.
        ("vtd", [1 | 1 << 4 | 1 << 6, 0, 0, 0], regs::IQEI_RESERVED),
        ("vtd", [2, 0, 0, 0], regs::IQEI_RESERVED),
        ("vtd", [5 | 1 << 7, 0, 0, 0], regs::IQEI_RESERVED),
        ("vtd", [6 | 1 << 4, 0, 0, 0], regs::IQEI_RESERVED),
    ];
    for (opts, desc, iqei) in cases {
        let fx = Fx::new(opts);
        let mut q = fx.enable_qi(!opts.contains("sm=off"));
        fx.submit(&mut q, &[desc]);
        assert_eq!(fx.r64(regs::IQERCD) & 0xf, iqei, "{opts} {desc:x?}");
        assert_eq!(fx.r64(regs::IQH), 0);
        assert_ne!(fx.r32(regs::FSTS) & regs::FSTS_IQE, 0);
    }
}

#[test]
fn bad_tail_base_and_width() {
    // IQT beyond the queue (QS=0: 4 KiB).
    let fx = Fx::new("vtd,sm=off");
    fx.enable_qi(false);
    fx.w32(regs::IQT, 0x1000);
    assert_eq!(fx.r64(regs::IQERCD) & 0xf, regs::IQEI_TAIL_INVALID);
    // IQT not 256-bit aligned with DW=1.
    let fx = Fx::new("vtd");
    fx.enable_qi(true);
    fx.w32(regs::IQT, 0x10);
    assert_eq!(fx.r64(regs::IQERCD) & 0xf, regs::IQEI_TAIL_MISALIGNED);
    // DW=1 on a unit without SMTS.
    let fx = Fx::new("vtd,sm=off");
    fx.w64(regs::IQA, fx.alloc() | regs::IQA_DW);
    fx.gcmd(regs::GCMD_QIE, 0, 0);
    fx.w32(regs::IQT, 0x20);
    assert_eq!(fx.r64(regs::IQERCD) & 0xf, regs::IQEI_INVALID_WIDTH);
    // Queue base outside RAM: fetch error, IQH stays.
    let fx = Fx::new("vtd,sm=off");
    fx.w64(regs::IQA, RAM);
    fx.gcmd(regs::GCMD_QIE, 0, 0);
    fx.w32(regs::IQT, 0x10);
    assert_eq!(fx.r64(regs::IQERCD) & 0xf, regs::IQEI_FETCH_ERROR);
    assert_eq!(fx.r64(regs::IQH), 0);
    // Queue at the very top of the address space: no overflow.
    let fx = Fx::new("vtd,sm=off");
    fx.w64(regs::IQA, !0xfff | 7);
    fx.gcmd(regs::GCMD_QIE, 0, 0);
    fx.w32(regs::IQT, 0x7fff0);
    assert_eq!(fx.r64(regs::IQERCD) & 0xf, regs::IQEI_FETCH_ERROR);
}

#[test]
fn qi_disabled_queues_nothing_until_enabled() {
    let fx = Fx::new("vtd,sm=off");
    let base = fx.alloc();
    let status = fx.alloc();
    fx.wr(base, wait(true, false, 9, status)[0]);
    fx.wr(base + 8, status);
    fx.w64(regs::IQA, base);
    fx.w32(regs::IQT, 0x10);
    assert_eq!(fx.rd(status), 0, "QIE clear");
    fx.gcmd(regs::GCMD_QIE, 0, 0);
    assert_eq!(fx.rd(status), 9, "enabling QI fetches from offset 0");
    fx.gcmd(0, regs::GCMD_QIE, 0);
    assert_eq!(fx.r32(regs::GSTS) & regs::GSTS_QIES, 0);
}

#[test]
fn register_based_invalidation() {
    let fx = Fx::new("vtd,sm=off");
    // CCMD: global (CIRG 1), as one 64-bit write; ICC clears and CAIG reports the granularity.
    fx.w64(regs::CCMD, regs::CCMD_ICC | 1 << regs::CCMD_CIRG_SHIFT);
    let v = fx.r64(regs::CCMD);
    assert_eq!(v & regs::CCMD_ICC, 0);
    assert_eq!(v >> regs::CCMD_CAIG_SHIFT & 3, 1);
    // Device-selective as two 32-bit writes, low half first.
    let cmd = regs::CCMD_ICC | 3 << regs::CCMD_CIRG_SHIFT | u64::from(SID) << 16 | 5;
    fx.w32(regs::CCMD, cmd as u32);
    fx.w32(regs::CCMD + 4, (cmd >> 32) as u32);
    assert_eq!(fx.r64(regs::CCMD) >> regs::CCMD_CAIG_SHIFT & 3, 3);
    // CIRG 0 is invalid: CAIG 0.
    fx.w64(regs::CCMD, regs::CCMD_ICC);
    assert_eq!(fx.r64(regs::CCMD) >> regs::CCMD_CAIG_SHIFT & 3, 0);
    // IOTLB at IRO: page-selective with AM within MAMV, and beyond it (falls back to domain).
    fx.w64(regs::IVA, 0x40_0000 | 9);
    fx.w64(
        regs::IOTLB,
        regs::IOTLB_IVT | 3 << regs::IOTLB_IIRG_SHIFT | 1 << 32,
    );
    let v = fx.r64(regs::IOTLB);
    assert_eq!(v & regs::IOTLB_IVT, 0);
    assert_eq!(v >> regs::IOTLB_IAIG_SHIFT & 3, 3);
    fx.w64(regs::IVA, 19);
    fx.w64(
        regs::IOTLB,
        regs::IOTLB_IVT | 3 << regs::IOTLB_IIRG_SHIFT | 1 << 32,
    );
    assert_eq!(fx.r64(regs::IOTLB) >> regs::IOTLB_IAIG_SHIFT & 3, 2);
    let st = fx.vtd.stats();
    assert_eq!(st.invalidations["context_global"], 1);
    assert_eq!(st.invalidations["context_device"], 1);
    assert_eq!(st.invalidations["iotlb_page"], 1);
    assert_eq!(st.invalidations["iotlb_domain"], 1);
}
