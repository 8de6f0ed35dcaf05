//! In-memory translation structures: root, context (legacy 128-bit and scalable 256-bit), PASID directory
//! and PASID table entries (VT-d 4.x sections 9.1-9.6), decoded with their reserved-bit checks.
//!
//! Decoders see raw qwords and never touch memory. FPD is reported even for a non-present entry because
//! the spec evaluates it irrespective of P (9.3, 9.4, 9.5, 9.6).

use super::config::{aw_code_width, Hw};

/// Why an entry could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bad {
    NotPresent {
        fpd: bool,
    },
    /// A reserved bit is set in a present entry.
    Reserved {
        fpd: bool,
    },
    /// Present, reserved bits clear, but programmed with a value the hardware does not support.
    Invalid {
        fpd: bool,
    },
}

fn ptr(v: u64) -> u64 {
    v & !0xfff
}

/// Legacy root entry (9.1): returns the context-table pointer.
pub(crate) fn legacy_root(lo: u64, hi: u64, hw: &Hw) -> Result<u64, Bad> {
    if lo & 1 == 0 {
        return Err(Bad::NotPresent { fpd: false });
    }
    if lo & 0xffe != 0 || lo & hw.above_haw() != 0 || hi != 0 {
        return Err(Bad::Reserved { fpd: false });
    }
    Ok(ptr(lo))
}

/// Scalable-mode root entry (9.2): the lower half serves devfn 0x00-0x7f, the upper 0x80-0xff.
pub(crate) fn scalable_root(lo: u64, hi: u64, devfn: u8, hw: &Hw) -> Result<u64, Bad> {
    let half = if devfn < 0x80 { lo } else { hi };
    if half & 1 == 0 {
        return Err(Bad::NotPresent { fpd: false });
    }
    if half & 0xffe != 0 || half & hw.above_haw() != 0 {
        return Err(Bad::Reserved { fpd: false });
    }
    Ok(ptr(half))
}

/// Legacy context-entry translation type (TT, 9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegacyTt {
    /// TT=00: untranslated requests walk the second-stage table.
    MultiLevel,
    /// TT=10: untranslated requests pass through (needs ECAP.PT).
    PassThrough,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LegacyContext {
    pub fpd: bool,
    pub tt: LegacyTt,
    pub aw_code: u64,
    pub did: u16,
    pub slptptr: u64,
}

/// Legacy context entry (9.3): lo = P b0, FPD b1, TT b3:2, rsvd b11:4, SLPTPTR b63:12;
/// hi = AW b2:0, AVAIL b6:3 (ignored), rsvd b7, DID b23:8, rsvd b63:24.
pub(crate) fn legacy_context(lo: u64, hi: u64, hw: &Hw) -> Result<LegacyContext, Bad> {
    let fpd = lo & 2 != 0;
    if lo & 1 == 0 {
        return Err(Bad::NotPresent { fpd });
    }
    let tt = (lo >> 2) & 3;
    if lo & 0xff0 != 0 || hi & 0xffff_ffff_ff00_0080 != 0 {
        return Err(Bad::Reserved { fpd });
    }
    // SLPTPTR is only an address for TT=00 (it is ignored for pass-through).
    if tt == 0 && lo & hw.above_haw() != 0 {
        return Err(Bad::Reserved { fpd });
    }
    let aw_code = hi & 7;
    // TT=01 needs ECAP.DT, TT=10 needs ECAP.PT, TT=11 is reserved: all "invalid context entry".
    let tt = match tt {
        0 => LegacyTt::MultiLevel,
        2 if hw.pt => LegacyTt::PassThrough,
        _ => return Err(Bad::Invalid { fpd }),
    };
    if !hw.aw_supported(aw_code) {
        return Err(Bad::Invalid { fpd });
    }
    Ok(LegacyContext {
        fpd,
        tt,
        aw_code,
        did: ((hi >> 8) & 0xffff) as u16,
        slptptr: ptr(lo),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScalableContext {
    pub fpd: bool,
    pub pasid_enable: bool,
    /// Number of PASID directory entries: 2^(PDTS + 7).
    pub dir_entries: u32,
    pub pasid_dir: u64,
    pub rid_pasid: u32,
}

/// Scalable-mode context entry (9.4, 256 bits): qw0 = P b0, FPD b1, DTE b2, PASIDE b3, PRE b4, rsvd b8:5,
/// PDTS b11:9, PASIDDIRPTR b63:12; qw1 = RID_PASID b19:0, RID_PRIV b20, rsvd b63:21; qw2/qw3 rsvd.
/// DTE needs ECAP.DT, PRE needs ECAP.PRS and RID_PRIV needs ECAP.RPRIVS (not offered): otherwise reserved.
pub(crate) fn scalable_context(q: [u64; 4], hw: &Hw) -> Result<ScalableContext, Bad> {
    let fpd = q[0] & 2 != 0;
    if q[0] & 1 == 0 {
        return Err(Bad::NotPresent { fpd });
    }
    let mut rsvd0 = 0x1e0 | hw.above_haw();
    if !hw.dt {
        rsvd0 |= 1 << 2;
    }
    if !hw.prs {
        rsvd0 |= 1 << 4;
    }
    // RID_PRIV (b20) needs ECAP.RPRIVS, which is not offered.
    let mut rsvd1 = !0xf_ffffu64;
    if !hw.rps {
        rsvd1 |= 0xf_ffff;
    }
    if q[0] & rsvd0 != 0 || q[1] & rsvd1 != 0 || q[2] != 0 || q[3] != 0 {
        return Err(Bad::Reserved { fpd });
    }
    Ok(ScalableContext {
        fpd,
        pasid_enable: q[0] & (1 << 3) != 0,
        dir_entries: 1 << (((q[0] >> 9) & 7) + 7),
        pasid_dir: ptr(q[0]),
        rid_pasid: (q[1] & 0xf_ffff) as u32,
    })
}

/// Scalable-mode PASID directory entry (9.5, 64 bits): P b0, FPD b1, rsvd b11:2, SMPTBLPTR b63:12.
/// Returns (FPD, PASID table pointer).
pub(crate) fn pasid_dir_entry(e: u64, hw: &Hw) -> Result<(bool, u64), Bad> {
    let fpd = e & 2 != 0;
    if e & 1 == 0 {
        return Err(Bad::NotPresent { fpd });
    }
    if e & (0xffc | hw.above_haw()) != 0 {
        return Err(Bad::Reserved { fpd });
    }
    Ok((fpd, ptr(e)))
}

/// PASID-granular translation type (PGTT, 9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pgtt {
    /// 001b: first-stage only (needs ECAP.FLTS).
    FirstStage,
    /// 010b: second-stage only.
    SecondStage,
    /// 011b: nested, first stage over second stage (needs ECAP.NEST).
    Nested,
    /// 100b: pass-through.
    PassThrough,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PasidEntry {
    pub fpd: bool,
    pub pgtt: Pgtt,
    /// Second-stage AW (PGTT 010b/011b; ignored for 001b/100b).
    pub aw_code: u64,
    pub did: u16,
    pub slptptr: u64,
    /// First-stage table pointer (PGTT 001b: host-physical; 011b: a second-stage input address).
    pub fsptptr: u64,
    /// First-stage paging levels: 4, or 5 when FLPM = 01b.
    pub fs_levels: u32,
    /// SRE: requests with supervisor privilege are allowed.
    pub sre: bool,
    /// WPE: supervisor writes honour the first-stage R/W bits.
    pub wpe: bool,
}

/// Scalable-mode PASID table entry (9.6, 512 bits):
/// - qw0 = P b0, FPD b1, AW b4:2, SLEE b5 (reserved: no ECAP.ERS), PGTT b8:6, SLADE b9 (reserved
///   without ECAP.SLADS), rsvd b11:10, SLPTPTR b63:12 (bits above HAW reserved for PGTT 010b/011b);
/// - qw1 = DID b15:0, rsvd b22:16, PWSNP b23, PGSNP b24, memory-type fields b63:25 (ignored: no
///   ECAP.MTS);
/// - qw2 = SRE b0 (reserved without ECAP.SRS), ERE b1 (reserved: no ECAP.ERS), FLPM b3:2, WPE b4,
///   rsvd b6:5, EAFE b7 (reserved: no ECAP.EAFS), rsvd b11:8, FSPTPTR b63:12 (bits above HAW
///   reserved). The first-stage fields are only checked for PGTT 001b/011b: the spec has the
///   hardware ignore them otherwise;
/// - qw3-qw7 reserved.
///
/// Reserved bits give SPT.3 (5Ah); a PGTT, AW (second stage) or FLPM the unit does not support
/// gives SPT.4 (5Bh): PGTT 000b and 101b-111b, 001b without FLTS, 011b without NEST, FLPM 01b without
/// FL5LP, FLPM 1xb. AW is not checked for PGTT 001b (Linux writes the unit's AGAW there anyway).
pub(crate) fn pasid_entry(q: [u64; 8], hw: &Hw) -> Result<PasidEntry, Bad> {
    let fpd = q[0] & 2 != 0;
    if q[0] & 1 == 0 {
        return Err(Bad::NotPresent { fpd });
    }
    let pgtt = (q[0] >> 6) & 7;
    let first_stage = pgtt == 1 || pgtt == 3;
    let mut rsvd0 = 0xc00 | 1 << 5;
    if !hw.slads {
        rsvd0 |= 1 << 9;
    }
    if pgtt == 2 || pgtt == 3 {
        rsvd0 |= hw.above_haw();
    }
    let mut rsvd2 = 0;
    if first_stage {
        rsvd2 = 1 << 1 | 0x3 << 5 | 1 << 7 | 0xf00 | hw.above_haw();
        if !hw.srs {
            rsvd2 |= 1;
        }
    }
    if q[0] & rsvd0 != 0
        || q[1] & 0x7f_0000 != 0
        || q[2] & rsvd2 != 0
        || q[3..].iter().any(|&w| w != 0)
    {
        return Err(Bad::Reserved { fpd });
    }
    let aw_code = (q[0] >> 2) & 7;
    let flpm = (q[2] >> 2) & 3;
    let fs_levels = match flpm {
        0 => 4,
        1 if hw.fl5lp => 5,
        _ if first_stage => return Err(Bad::Invalid { fpd }),
        _ => 4,
    };
    let pgtt = match pgtt {
        1 if hw.flts => Pgtt::FirstStage,
        2 if hw.slts && hw.aw_supported(aw_code) => Pgtt::SecondStage,
        3 if hw.nest && hw.aw_supported(aw_code) => Pgtt::Nested,
        4 if hw.pt => Pgtt::PassThrough,
        _ => return Err(Bad::Invalid { fpd }),
    };
    Ok(PasidEntry {
        fpd,
        pgtt,
        aw_code,
        did: (q[1] & 0xffff) as u16,
        slptptr: ptr(q[0]),
        fsptptr: ptr(q[2]),
        fs_levels,
        sre: first_stage && q[2] & 1 != 0,
        wpe: first_stage && q[2] & (1 << 4) != 0,
    })
}

/// Paging levels for an AW code (1 -> 3, 2 -> 4, 3 -> 5).
pub(crate) fn levels(aw_code: u64) -> u32 {
    aw_code.min(3) as u32 + 2
}

/// Input-address width the AW code gives, limited by MGAW.
pub(crate) fn input_width(aw_code: u64, hw: &Hw) -> u32 {
    aw_code_width(aw_code).min(hw.aw_bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtd::config::VtdConfig;

    fn hw(sm: bool, aw: u32) -> Hw {
        Hw::new(&VtdConfig {
            aw_bits: aw,
            scalable: sm,
            first_stage: sm && aw >= 48,
            nested: sm && aw >= 48,
            fl5: sm && aw == 57,
            ..Default::default()
        })
    }

    #[test]
    fn legacy_root_and_context() {
        let h = hw(false, 48);
        assert_eq!(legacy_root(0x5001, 0, &h), Ok(0x5000));
        assert_eq!(
            legacy_root(0x5000, 0, &h),
            Err(Bad::NotPresent { fpd: false })
        );
        assert_eq!(
            legacy_root(0x5003, 0, &h),
            Err(Bad::Reserved { fpd: false })
        );
        assert_eq!(
            legacy_root(0x5001, 1, &h),
            Err(Bad::Reserved { fpd: false })
        );
        assert_eq!(
            legacy_root(1 << 48 | 1, 0, &h),
            Err(Bad::Reserved { fpd: false })
        );

        let ok = legacy_context(0x7001, 2 | 5 << 8, &h).unwrap();
        assert_eq!(
            ok,
            LegacyContext {
                fpd: false,
                tt: LegacyTt::MultiLevel,
                aw_code: 2,
                did: 5,
                slptptr: 0x7000
            }
        );
        assert_eq!(
            legacy_context(0x7002, 2, &h),
            Err(Bad::NotPresent { fpd: true })
        );
        assert_eq!(
            legacy_context(0x7001 | 1 << 4, 2, &h),
            Err(Bad::Reserved { fpd: false })
        );
        assert_eq!(
            legacy_context(0x7001, 2 | 1 << 7, &h),
            Err(Bad::Reserved { fpd: false })
        );
        assert_eq!(
            legacy_context(0x7001, 2 | 1 << 24, &h),
            Err(Bad::Reserved { fpd: false })
        );
        // AVAIL bits are ignored.
        assert!(legacy_context(0x7001, 2 | 0x78, &h).is_ok());
        // TT=01 without DT, TT=11, AW=3 (57-bit) on a 48-bit unit, AW=0: invalid.
        for (lo, hi) in [(0x7005, 2), (0x700d, 2), (0x7001, 3), (0x7001, 0)] {
            assert_eq!(
                legacy_context(lo, hi, &h),
                Err(Bad::Invalid { fpd: false }),
                "{lo:#x} {hi:#x}"
            );
        }
        let pt = legacy_context(0x9, 2, &h).unwrap();
        assert_eq!(pt.tt, LegacyTt::PassThrough);
        // AW=1 (39-bit) is in SAGAW of a 48-bit unit.
        assert_eq!(legacy_context(0x7001, 1, &h).unwrap().aw_code, 1);
    }

    #[test]
    fn scalable_context_and_pasid_structures() {
        let h = hw(true, 48);
        assert_eq!(scalable_root(0x3001, 0x4001, 0x7f, &h), Ok(0x3000));
        assert_eq!(scalable_root(0x3001, 0x4001, 0x80, &h), Ok(0x4000));
        assert_eq!(
            scalable_root(0x3001, 0x4000, 0x80, &h),
            Err(Bad::NotPresent { fpd: false })
        );
        let c = scalable_context([0x8000 | 1 << 9 | 1 << 3 | 1, 7, 0, 0], &h).unwrap();
        assert_eq!(c.dir_entries, 256);
        assert_eq!(
            (c.pasid_dir, c.rid_pasid, c.pasid_enable),
            (0x8000, 7, true)
        );
        // DTE (no ECAP.DT), PRE (no PRS), RID_PRIV, bits 8:5, qw2: reserved.
        for q in [
            [0x8005, 0, 0, 0],
            [0x8011, 0, 0, 0],
            [0x8001, 1 << 20, 0, 0],
            [0x8021, 0, 0, 0],
            [0x8001, 0, 1, 0],
        ] {
            assert_eq!(
                scalable_context(q, &h),
                Err(Bad::Reserved { fpd: false }),
                "{q:x?}"
            );
        }
        assert_eq!(pasid_dir_entry(0x9001, &h), Ok((false, 0x9000)));
        assert_eq!(
            pasid_dir_entry(0x9002, &h),
            Err(Bad::NotPresent { fpd: true })
        );
        assert_eq!(
            pasid_dir_entry(0x9005, &h),
            Err(Bad::Reserved { fpd: false })
        );

        let ss = [0xa000 | 2 << 6 | 2 << 2 | 1, 9, 0, 0, 0, 0, 0, 0];
        let e = pasid_entry(ss, &h).unwrap();
        assert_eq!(
            (e.pgtt, e.did, e.slptptr, e.aw_code),
            (Pgtt::SecondStage, 9, 0xa000, 2)
        );
        let pt = [4 << 6 | 1, 3 | 1 << 23 | 1 << 24, 0, 0, 0, 0, 0, 0];
        assert_eq!(pasid_entry(pt, &h).unwrap().pgtt, Pgtt::PassThrough);
        // Linux's "blocked" entry: P clear, FPD set.
        let blocked = [2, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(pasid_entry(blocked, &h), Err(Bad::NotPresent { fpd: true }));
        for pgtt in [0u64, 5, 6, 7] {
            let q = [pgtt << 6 | 2 << 2 | 1, 0, 0, 0, 0, 0, 0, 0];
            assert_eq!(
                pasid_entry(q, &h),
                Err(Bad::Invalid { fpd: false }),
                "pgtt {pgtt}"
            );
        }
        let bad_aw = [2 << 6 | 3 << 2 | 1, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(pasid_entry(bad_aw, &h), Err(Bad::Invalid { fpd: false }));
        for q in [
            [2 << 6 | 2 << 2 | 1 | 1 << 10, 0, 0, 0, 0, 0, 0, 0],
            [2 << 6 | 2 << 2 | 1 | 1 << 9, 0, 0, 0, 0, 0, 0, 0],
            [2 << 6 | 2 << 2 | 1, 1 << 16, 0, 0, 0, 0, 0, 0],
            [2 << 6 | 2 << 2 | 1 | 1 << 50, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(
                pasid_entry(q, &h),
                Err(Bad::Reserved { fpd: false }),
                "{q:x?}"
            );
        }
        // qw3-qw7 are reserved whatever the PGTT.
        let mut q = ss;
        q[5] = 1;
        assert_eq!(pasid_entry(q, &h), Err(Bad::Reserved { fpd: false }));
        // First-stage fields are ignored for PGTT 010b.
        let mut q = ss;
        q[2] = 1 << 1 | 1 << 7 | 3 << 2;
        assert!(pasid_entry(q, &h).is_ok());
        assert_eq!((levels(1), levels(2), levels(3)), (3, 4, 5));
        assert_eq!(input_width(3, &hw(true, 57)), 57);
        assert_eq!(input_width(2, &hw(true, 39)), 39);
    }

    #[test]
    fn first_stage_and_nested_pasid_entries() {
        let h = hw(true, 48);
        // Linux's intel_pasid_setup_first_level: FSPTPTR, DID, AW = the unit's AGAW, PWSNP, PGTT 001b.
        let fl = [1 << 6 | 2 << 2 | 1, 7 | 1 << 23, 0x5000, 0, 0, 0, 0, 0];
        let e = pasid_entry(fl, &h).unwrap();
        assert_eq!(
            (e.pgtt, e.fsptptr, e.fs_levels, e.did, e.sre, e.wpe),
            (Pgtt::FirstStage, 0x5000, 4, 7, false, false)
        );
        // AW and SLPTPTR are ignored for first-stage only (even values that would be wrong).
        let mut q = fl;
        q[0] = 1 << 48 | 0x3000 | 1 << 6 | 7 << 2 | 1;
        assert_eq!(pasid_entry(q, &h).unwrap().pgtt, Pgtt::FirstStage);
        // Linux's intel_pasid_setup_nested: FSPTPTR (a GPA), SRE|WPE, SLPTPTR, AW, PGTT 011b.
        let nested = [
            0x9000 | 3 << 6 | 2 << 2 | 1,
            9,
            0x4000 | 1 | 1 << 4,
            0,
            0,
            0,
            0,
            0,
        ];
        let e = pasid_entry(nested, &h).unwrap();
        assert_eq!(
            (e.pgtt, e.slptptr, e.fsptptr, e.aw_code, e.sre, e.wpe),
            (Pgtt::Nested, 0x9000, 0x4000, 2, true, true)
        );
        // Nested checks the second-stage AW and SLPTPTR like PGTT 010b.
        let mut q = nested;
        q[0] = 0x9000 | 3 << 6 | 3 << 2 | 1;
        assert_eq!(pasid_entry(q, &h), Err(Bad::Invalid { fpd: false }));
        q[0] = 1 << 50 | 0x9000 | 3 << 6 | 2 << 2 | 1;
        assert_eq!(pasid_entry(q, &h), Err(Bad::Reserved { fpd: false }));
        // qw2 reserved bits: ERE, 6:5, EAFE (no EAFS), 11:8, FSPTPTR above HAW.
        for bits in [1u64 << 1, 1 << 5, 1 << 6, 1 << 7, 1 << 8, 1 << 11, 1 << 48] {
            let mut q = fl;
            q[2] |= bits;
            assert_eq!(
                pasid_entry(q, &h),
                Err(Bad::Reserved { fpd: false }),
                "{bits:#x}"
            );
        }
        // FLPM: 01b needs FL5LP (not on a 48-bit unit), 1xb is not a mode.
        for flpm in [1u64, 2, 3] {
            let mut q = fl;
            q[2] |= flpm << 2;
            assert_eq!(
                pasid_entry(q, &h),
                Err(Bad::Invalid { fpd: false }),
                "flpm {flpm}"
            );
        }
        let h57 = hw(true, 57);
        let mut q = fl;
        q[2] |= 1 << 2;
        assert_eq!(pasid_entry(q, &h57).unwrap().fs_levels, 5);
        // Without FLTS / NEST / SRS.
        let no_fl = Hw::new(&VtdConfig {
            first_stage: false,
            nested: false,
            ..Default::default()
        });
        assert_eq!(pasid_entry(fl, &no_fl), Err(Bad::Invalid { fpd: false }));
        let mut q = nested;
        q[2] = 0x4000;
        assert_eq!(pasid_entry(q, &no_fl), Err(Bad::Invalid { fpd: false }));
        let no_nest = Hw::new(&VtdConfig {
            nested: false,
            ..Default::default()
        });
        assert_eq!(pasid_entry(q, &no_nest), Err(Bad::Invalid { fpd: false }));
        let mut q = fl;
        q[2] |= 1;
        assert_eq!(
            pasid_entry(q, &no_fl),
            Err(Bad::Reserved { fpd: false }),
            "SRE without SRS"
        );
    }
}
