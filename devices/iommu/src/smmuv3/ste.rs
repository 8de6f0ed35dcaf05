//! Stream table entries (IHI0070 §5.2) and the stream table walk (§3.3: linear and 2-level formats).

use super::events::{C_BAD_STE, C_BAD_STREAMID, F_STE_FETCH};
use super::pagetable::{Granule, Stage, WalkConfig};
use super::regs::STRTAB_BASE_ADDR_MASK;
use super::trace::{Ctx, Step};
use super::Hw;

/// STE.Config (§5.2 Config[2:0]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SteConfig {
    /// 0b000: every transaction is terminated with an abort, no event.
    Abort,
    /// 0b100: stage 1 and stage 2 bypassed.
    Bypass,
    /// 0b101: stage 1 translates, stage 2 bypassed.
    S1,
    /// 0b110: stage 1 bypassed, stage 2 translates.
    S2,
    /// 0b111: nested.
    Nested,
}

impl SteConfig {
    pub fn s1(self) -> bool {
        matches!(self, SteConfig::S1 | SteConfig::Nested)
    }

    pub fn s2(self) -> bool {
        matches!(self, SteConfig::S2 | SteConfig::Nested)
    }
}

/// A decoded, legal STE (the fields this model uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ste {
    pub config: SteConfig,
    /// S1Fmt: 0 linear CD table, 1 2-level with 4 KiB (64-CD) leaves, 2 2-level with 64 KiB (1024-CD).
    pub s1fmt: u8,
    /// S1ContextPtr (an IPA when stage 2 is enabled).
    pub s1ctxptr: u64,
    /// S1CDMax: log2 of the number of CDs (0: one CD, no substreams).
    pub s1cdmax: u8,
    /// S1DSS: 0 terminate, 1 bypass stage 1, 2 use CD 0 — for transactions without a SubstreamID.
    pub s1dss: u8,
    pub s2vmid: u16,
    /// The stage 2 walk (when Config[1]).
    pub s2: Option<WalkConfig>,
    /// S2R: record stage 2 faults.
    pub s2r: bool,
}

pub const S1DSS_BYPASS: u8 = 1;
pub const S1DSS_SSID0: u8 = 2;

fn bits(v: u64, lo: u32, width: u32) -> u64 {
    (v >> lo) & ((1u64 << width) - 1)
}

/// A printable summary of an STE's fields.
pub fn describe(w: &[u64; 8]) -> String {
    format!(
        "V={} Config={:#05b} S1Fmt={} S1ContextPtr={:#x} S1CDMax={} S1DSS={} EATS={} STRW={} S2VMID={:#x} \
         S2T0SZ={} S2SL0={} S2TG={} S2PS={} S2AA64={} S2ENDI={} S2AFFD={} S2PTW={} S2HD={} S2HA={} S2S={} S2R={} \
         S2TTB={:#x}",
        w[0] & 1,
        bits(w[0], 1, 3),
        bits(w[0], 4, 2),
        w[0] & 0x000f_ffff_ffff_ffc0,
        bits(w[0], 59, 5),
        bits(w[1], 0, 2),
        bits(w[1], 28, 2),
        bits(w[1], 30, 2),
        bits(w[2], 0, 16),
        bits(w[2], 32, 6),
        bits(w[2], 38, 2),
        bits(w[2], 46, 2),
        bits(w[2], 48, 3),
        bits(w[2], 51, 1),
        bits(w[2], 52, 1),
        bits(w[2], 53, 1),
        bits(w[2], 54, 1),
        bits(w[2], 55, 1),
        bits(w[2], 56, 1),
        bits(w[2], 57, 1),
        bits(w[2], 58, 1),
        w[3] & 0x000f_ffff_ffff_fff0,
    )
}

/// Output size in bits of a PS/IPS field value, limited to the SMMU's OAS (§5.2 S2PS, §5.4 IPS: a
/// value above IDR5.OAS, or a reserved one, behaves as the OAS).
pub fn ps_bits(field: u64, oas_bits: u8) -> u8 {
    let bits = match field {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        6 => 52,
        _ => oas_bits,
    };
    bits.min(oas_bits)
}

/// Decodes `w` (§5.2). `Err(())` is C_BAD_STE: V clear, a reserved Config, a stage the SMMU lacks, or
/// an ILLEGAL field combination:
/// - stage 1: S1Fmt = 3, or 2-level without IDR0.CD2L; S1CDMax above IDR1.SSIDSIZE; S1DSS = 3 with
///   substreams; STRW other than NS-EL1 (IDR0.HYP = 0, so EL2 stream worlds do not exist);
/// - stage 2: S2AA64 = 0 (IDR0.TTF = AArch64 only), S2ENDI = 1 (IDR0.TTENDIAN = little-endian only),
///   S2S = 1 (IDR0.STALL_MODEL = 0b01, no stalls; QEMU refuses it too), a reserved S2TG, or an
///   S2T0SZ/S2SL0/granule combination the walker refuses.
///
/// EATS is ignored (IDR0.ATS = 0); S2HA/S2HD count only as far as IDR0.HTTU allows.
pub fn decode(w: &[u64; 8], hw: &Hw) -> Result<Ste, ()> {
    if w[0] & 1 == 0 {
        return Err(());
    }
    let config = match bits(w[0], 1, 3) {
        0b000 => SteConfig::Abort,
        0b100 => SteConfig::Bypass,
        0b101 => SteConfig::S1,
        0b110 => SteConfig::S2,
        0b111 => SteConfig::Nested,
        _ => return Err(()),
    };
    let mut ste = Ste {
        config,
        s1fmt: bits(w[0], 4, 2) as u8,
        s1ctxptr: w[0] & 0x000f_ffff_ffff_ffc0,
        s1cdmax: bits(w[0], 59, 5) as u8,
        s1dss: bits(w[1], 0, 2) as u8,
        s2vmid: bits(w[2], 0, 16) as u16,
        s2: None,
        s2r: bits(w[2], 58, 1) != 0,
    };
    if matches!(config, SteConfig::Abort | SteConfig::Bypass) {
        return Ok(ste);
    }
    if (config.s1() && !hw.cfg.stage1) || (config.s2() && !hw.cfg.stage2) {
        return Err(());
    }
    if config.s1() {
        if ste.s1cdmax > hw.cfg.ssid_bits {
            return Err(());
        }
        if ste.s1cdmax > 0 {
            if ste.s1fmt == 3 || (ste.s1fmt != 0 && hw.idr.idr0 & super::regs::IDR0_CD2L == 0) {
                return Err(());
            }
            if ste.s1dss == 3 {
                return Err(());
            }
        }
        if bits(w[1], 30, 2) != 0 {
            return Err(());
        }
    }
    if config.s2() {
        let aa64 = bits(w[2], 51, 1) != 0;
        let endi = bits(w[2], 52, 1) != 0;
        let stall = bits(w[2], 57, 1) != 0;
        if !aa64 || endi || stall {
            return Err(());
        }
        let granule = Granule::from_s2tg(bits(w[2], 46, 2) as u8).ok_or(())?;
        let ha = hw.cfg.httu >= 1 && bits(w[2], 56, 1) != 0;
        let wc = WalkConfig {
            stage: Stage::S2,
            ttb: w[3] & 0x000f_ffff_ffff_fff0,
            tsz: bits(w[2], 32, 6) as u8,
            granule,
            sl0: bits(w[2], 38, 2) as u8,
            oas_bits: ps_bits(bits(w[2], 48, 3), hw.cfg.oas_bits),
            affd: bits(w[2], 53, 1) != 0,
            ha,
            hd: ha && hw.cfg.httu >= 2 && bits(w[2], 55, 1) != 0,
        };
        wc.validate().map_err(|_| ())?;
        ste.s2 = Some(wc);
    }
    Ok(ste)
}

/// The stream table format registers as the walk uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrtabCfg {
    pub base: u64,
    /// STRTAB_BASE_CFG.FMT == 2-level (only honoured when IDR0.ST_LEVEL offers it; otherwise the
    /// table is read as linear).
    pub two_level: bool,
    pub split: u32,
    pub log2size: u32,
}

impl StrtabCfg {
    pub fn new(base: u64, cfg: u32, hw: &Hw) -> Self {
        let fmt = (cfg >> 16) & 3;
        // SPLIT: 6, 8 or 10 are architected (§6.3.24); other values behave as the nearest below (min 6).
        let split = match (cfg >> 6) & 0x1f {
            s if s >= 10 => 10,
            s if s >= 8 => 8,
            _ => 6,
        };
        Self {
            base: base & STRTAB_BASE_ADDR_MASK,
            two_level: fmt == 1 && hw.cfg.two_level_strtab,
            split,
            // LOG2SIZE above IDR1.SIDSIZE behaves as SIDSIZE.
            log2size: (cfg & 0x3f).min(u32::from(hw.cfg.sid_bits)),
        }
    }
}

/// Reads the STE for `sid` (§3.3.1 linear, §3.3.2 2-level with L1STD.SPAN). Errors are event numbers:
/// C_BAD_STREAMID (SID beyond LOG2SIZE, an L1 descriptor with SPAN = 0 or too small a span, or a
/// SPAN above SPLIT + 1), F_STE_FETCH (the L1 descriptor or the STE is not readable RAM; `fetch` set),
/// C_BAD_STE (see [`decode`]).
pub fn fetch(ctx: &mut Ctx, st: StrtabCfg, sid: u32) -> Result<Ste, SteError> {
    if st.log2size < 32 && u64::from(sid) >> st.log2size != 0 {
        return Err(SteError::new(C_BAD_STREAMID, None));
    }
    let addr = if st.two_level {
        let l1_index = u64::from(sid) >> st.split;
        let l1_addr = st.base.wrapping_add(l1_index * 8);
        let desc = ctx
            .mem
            .read_u64(l1_addr)
            .map_err(|_| SteError::new(F_STE_FETCH, Some(l1_addr)))?;
        ctx.push(Step::StreamTableL1 {
            address: l1_addr,
            index: l1_index,
            desc,
        });
        let span = (desc & 0x1f) as u32;
        let l2_index = u64::from(sid) & ((1u64 << st.split) - 1);
        if span == 0 || span > st.split + 1 || l2_index >> (span - 1) != 0 {
            return Err(SteError::new(C_BAD_STREAMID, None));
        }
        (desc & 0x000f_ffff_ffff_ffc0).wrapping_add(l2_index * 64)
    } else {
        st.base.wrapping_add(u64::from(sid) * 64)
    };
    let mut w = [0u64; 8];
    for (i, word) in w.iter_mut().enumerate() {
        *word = ctx
            .mem
            .read_u64(addr.wrapping_add(i as u64 * 8))
            .map_err(|_| SteError::new(F_STE_FETCH, Some(addr)))?;
    }
    ctx.push(Step::Ste {
        address: addr,
        sid,
        words: w,
        decoded: describe(&w),
    });
    decode(&w, ctx.hw).map_err(|()| SteError::new(C_BAD_STE, None))
}

/// Why no STE could be used: the event number and, for F_STE_FETCH, the address that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SteError {
    pub id: u8,
    pub fetch: Option<u64>,
}

impl SteError {
    fn new(id: u8, fetch: Option<u64>) -> Self {
        Self { id, fetch }
    }
}
