//! Context descriptors (IHI0070 §5.4) and the CD table walk (§3.4: linear and 2-level, S1Fmt).

use super::events::{EventClass, C_BAD_CD, C_BAD_SUBSTREAMID, F_CD_FETCH};
use super::pagetable::{Granule, Stage, WalkConfig};
use super::ste::{ps_bits, Ste};
use super::trace::{Ctx, Step};
use super::translate::{s2_translate, Failure};
use super::Hw;

/// A decoded, legal CD (the fields this model uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cd {
    pub asid: u16,
    /// The TTB0 walk, unless EPD0.
    pub ttb0: Option<WalkConfig>,
    /// The TTB1 walk, unless EPD1.
    pub ttb1: Option<WalkConfig>,
    /// T0SZ / T1SZ (the input ranges, even when a walk is disabled).
    pub t0sz: u8,
    pub t1sz: u8,
    /// R: record stage 1 faults.
    pub record: bool,
}

fn bits(v: u64, lo: u32, width: u32) -> u64 {
    (v >> lo) & ((1u64 << width) - 1)
}

/// A printable summary of a CD's fields.
pub fn describe(w: &[u64; 8]) -> String {
    format!(
        "V={} T0SZ={} TG0={} EPD0={} ENDI={} T1SZ={} TG1={} EPD1={} IPS={} AFFD={} TBI={} AA64={} HD={} HA={} \
         S={} R={} A={} ASET={} ASID={:#x} TTB0={:#x} TTB1={:#x} MAIR={:#x}",
        bits(w[0], 31, 1),
        bits(w[0], 0, 6),
        bits(w[0], 6, 2),
        bits(w[0], 14, 1),
        bits(w[0], 15, 1),
        bits(w[0], 16, 6),
        bits(w[0], 22, 2),
        bits(w[0], 30, 1),
        bits(w[0], 32, 3),
        bits(w[0], 35, 1),
        bits(w[0], 38, 2),
        bits(w[0], 41, 1),
        bits(w[0], 42, 1),
        bits(w[0], 43, 1),
        bits(w[0], 44, 1),
        bits(w[0], 45, 1),
        bits(w[0], 46, 1),
        bits(w[0], 47, 1),
        bits(w[0], 48, 16),
        w[1] & 0x000f_ffff_ffff_fff0,
        w[2] & 0x000f_ffff_ffff_fff0,
        w[3],
    )
}

/// Decodes `w` (§5.4). `Err(())` is C_BAD_CD: V clear, AA64 = 0 (AArch64 tables only), ENDI = 1
/// (little-endian tables only), S = 1 (no stall model; as QEMU), or an enabled TTBx whose TGx is
/// reserved or whose TxSZ/granule combination the walker refuses. IPS above the OAS behaves as the
/// OAS; HA/HD count only as far as IDR0.HTTU allows (HD needs HA). ASET, A, MAIR, TBI and the
/// cacheability fields do not change translation here.
pub fn decode(w: &[u64; 8], hw: &Hw) -> Result<Cd, ()> {
    let w0 = w[0];
    if bits(w0, 31, 1) == 0 || bits(w0, 41, 1) == 0 || bits(w0, 15, 1) != 0 || bits(w0, 44, 1) != 0
    {
        return Err(());
    }
    let oas = ps_bits(bits(w0, 32, 3), hw.cfg.oas_bits);
    let ha = hw.cfg.httu >= 1 && bits(w0, 43, 1) != 0;
    let hd = ha && hw.cfg.httu >= 2 && bits(w0, 42, 1) != 0;
    let affd = bits(w0, 35, 1) != 0;
    let make = |ttb: u64, tsz: u64, granule: Option<Granule>| -> Result<WalkConfig, ()> {
        let wc = WalkConfig {
            stage: Stage::S1,
            ttb: ttb & 0x000f_ffff_ffff_fff0,
            tsz: tsz as u8,
            granule: granule.ok_or(())?,
            sl0: 0,
            oas_bits: oas,
            affd,
            ha,
            hd,
        };
        wc.validate().map_err(|_| ())?;
        Ok(wc)
    };
    let ttb0 = if bits(w0, 14, 1) == 0 {
        Some(make(
            w[1],
            bits(w0, 0, 6),
            Granule::from_tg0(bits(w0, 6, 2) as u8),
        )?)
    } else {
        None
    };
    let ttb1 = if bits(w0, 30, 1) == 0 {
        Some(make(
            w[2],
            bits(w0, 16, 6),
            Granule::from_tg1(bits(w0, 22, 2) as u8),
        )?)
    } else {
        None
    };
    Ok(Cd {
        asid: bits(w0, 48, 16) as u16,
        ttb0,
        ttb1,
        t0sz: bits(w0, 0, 6) as u8,
        t1sz: bits(w0, 16, 6) as u8,
        record: bits(w0, 45, 1) != 0,
    })
}

/// Which CD a request uses, before any table is read (§3.4.2, STE.S1DSS, STE.S1CDMax).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CdSelect {
    /// CD number `n`.
    Index(u32),
    /// No SubstreamID and S1DSS = bypass: stage 1 is skipped.
    BypassS1,
    /// No SubstreamID and S1DSS = terminate: F_STREAM_DISABLED.
    Terminate,
    /// C_BAD_SUBSTREAMID.
    BadSsid,
}

/// Chooses the CD for a request with `ssid` under `ste`. A SubstreamID with S1CDMax = 0, beyond
/// 2^S1CDMax or IDR1.SSIDSIZE, or 0 when S1DSS = 0b10 reserves CD 0 for untagged traffic, is
/// C_BAD_SUBSTREAMID.
pub fn select(ste: &Ste, ssid: Option<u32>, hw: &Hw) -> CdSelect {
    match ssid {
        Some(s) => {
            let too_big = |b: u8| b < 32 && s >> b != 0;
            let reserved0 = ste.s1dss == super::ste::S1DSS_SSID0 && s == 0;
            if ste.s1cdmax == 0 || too_big(ste.s1cdmax) || too_big(hw.cfg.ssid_bits) || reserved0 {
                CdSelect::BadSsid
            } else {
                CdSelect::Index(s)
            }
        }
        None if ste.s1cdmax == 0 => CdSelect::Index(0),
        None => match ste.s1dss {
            super::ste::S1DSS_BYPASS => CdSelect::BypassS1,
            super::ste::S1DSS_SSID0 => CdSelect::Index(0),
            // S1DSS_TERMINATE (and the ILLEGAL 0b11, refused when the STE was decoded).
            _ => CdSelect::Terminate,
        },
    }
}

/// Reads and decodes CD `index` of `ste`'s table. With stage 2 enabled the table addresses are IPAs,
/// translated through stage 2 (a fault there is a stage 2 event with CLASS = CD).
pub fn fetch(ctx: &mut Ctx, ste: &Ste, index: u32) -> Result<Cd, Failure> {
    let s2 = ste.s2;
    let s2r = ste.s2r;
    let to_pa = |ctx: &mut Ctx, ipa: u64| -> Result<(u64, Option<u64>), Failure> {
        match &s2 {
            Some(cfg) => {
                let pa = s2_translate(ctx, cfg, ipa, EventClass::Cd, s2r)?;
                Ok((pa, Some(ipa)))
            }
            None => Ok((ipa, None)),
        }
    };
    let fetch_fault = |ctx: &Ctx, addr: u64| {
        let mut e = ctx.event(F_CD_FETCH);
        e.fetch_addr = Some(addr);
        Failure::event(e, true)
    };
    let idx = u64::from(index);
    let cd_ipa = if ste.s1cdmax == 0 || ste.s1fmt == 0 {
        ste.s1ctxptr.wrapping_add(idx * 64)
    } else {
        let split = if ste.s1fmt == 1 { 6 } else { 10 };
        let l1_index = idx >> split;
        let (l1_pa, l1_ipa) = to_pa(ctx, ste.s1ctxptr.wrapping_add(l1_index * 8))?;
        let desc = ctx
            .mem
            .read_u64(l1_pa)
            .map_err(|_| fetch_fault(ctx, l1_pa))?;
        ctx.push(Step::CdTableL1 {
            address: l1_pa,
            ipa: l1_ipa,
            index: l1_index,
            desc,
        });
        if desc & 1 == 0 {
            return Err(Failure::event(ctx.event(C_BAD_SUBSTREAMID), true));
        }
        (desc & 0x000f_ffff_ffff_f000).wrapping_add((idx & ((1 << split) - 1)) * 64)
    };
    let (cd_pa, ipa) = to_pa(ctx, cd_ipa)?;
    let mut w = [0u64; 8];
    for (i, word) in w.iter_mut().enumerate() {
        *word = ctx
            .mem
            .read_u64(cd_pa.wrapping_add(i as u64 * 8))
            .map_err(|_| fetch_fault(ctx, cd_pa))?;
    }
    ctx.push(Step::Cd {
        address: cd_pa,
        ipa,
        ssid: index,
        words: w,
        decoded: describe(&w),
    });
    decode(&w, ctx.hw).map_err(|()| Failure::event(ctx.event(C_BAD_CD), true))
}
