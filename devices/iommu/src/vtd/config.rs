//! The user-facing `--iommu vtd[,aw=..][,sm=..][,nfr=..][,caching=..][,ir=..][,eim=..][,fl=..][,nest=..]
//! [,fl5=..][,fl1g=..][,rmrr=..]` option, and the CAP/ECAP registers it implies (VT-d 4.x sections 11.4.2
//! and 11.4.3).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::regs;
use crate::options::{self, impl_from_option_error, on_off};

/// The adjusted guest address widths of 3-, 4- and 5-level second-stage tables (SAGAW bits 1, 2, 3).
pub const SUPPORTED_AW: [u32; 3] = [39, 48, 57];
/// The address widths (MGAW + 1) a unit can be given: `aw=39` to `aw=57`.
pub const AW_RANGE: std::ops::RangeInclusive<u32> = 39..=57;
/// The widths first-stage (IA-32e 4- and 5-level) tables translate: a unit offers first-stage
/// translation only with one of them.
pub const FIRST_STAGE_AW: [u32; 2] = [48, 57];
const AW_EXPECTED: &str = "an address width from 39 to 57";
const NFR_EXPECTED: &str = "a number of fault records, 1 to 128";
/// CAP.MAMV: page-selective invalidations of up to 2^18 pages (1 GiB).
pub const MAMV: u32 = 18;
/// ECAP.PSS: 20-bit PASIDs (the field holds width - 1).
pub const PSS: u32 = 19;

/// A Reserved Memory Region Reporting structure: an identity-mapped range a device needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rmrr {
    pub base: u64,
    /// Inclusive.
    pub end: u64,
    /// Requester id (bus << 8 | dev << 3 | fn) of the device using it.
    pub bdf: u16,
}

impl fmt::Display for Rmrr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}-{:#x}@{}", self.base, self.end, Bdf(self.bdf))
    }
}

/// Formats a requester id as `bb:dd.f`.
pub struct Bdf(pub u16);

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}.{}", b >> 8, (b >> 3) & 0x1f, b & 7)
    }
}

/// Configuration of one VT-d remapping unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VtdConfig {
    /// Address width in bits, 39 to 57: MGAW + 1, the input addresses every translation accepts
    /// (2^aw_bits and above fault with 04h in legacy mode, 83h in scalable mode). SAGAW offers the
    /// table depths up to the first one covering it: 39 -> 3-level; 40-48 -> 3- and 4-level; 49-57 ->
    /// 3-, 4- and 5-level.
    pub aw_bits: u32,
    /// Scalable-mode translation support (ECAP.SMTS and the PASID capabilities).
    pub scalable: bool,
    /// Number of primary fault recording registers (1..=128).
    pub nfr: u16,
    /// Whether the IOTLB, context cache, PASID cache and interrupt entry cache are used (they never
    /// change results).
    pub caching: bool,
    /// Interrupt remapping (ECAP.IR). The VMM sets the DMAR INTR_REMAP flag and the IOAPIC scope from it.
    pub ir: bool,
    /// Extended interrupt mode (ECAP.EIM): x2APIC 32-bit destination ids. Needs `ir`.
    pub eim: bool,
    /// First-stage (IA-32e) translation, ECAP.FLTS (and ECAP.SRS). Needs `scalable` and `aw_bits` 48 or
    /// 57 (the input widths of 4- and 5-level first-stage tables; with both stages Linux intersects
    /// the first-stage widths with SAGAW). Default: on when `scalable` and `aw_bits` is 48 or 57.
    pub first_stage: bool,
    /// Nested translation, ECAP.NEST. Needs `first_stage` (and second-stage, which `scalable` gives).
    /// Default: on with `first_stage`.
    pub nested: bool,
    /// 5-level first-stage paging, CAP.FL5LP. Needs `first_stage` and `aw_bits == 57`. Default: on when
    /// both hold.
    pub fl5: bool,
    /// 1 GiB first-stage pages, CAP.FL1GP (advertised only with `first_stage`). Default: on.
    pub fl1g: bool,
    pub rmrrs: Vec<Rmrr>,
}

impl Default for VtdConfig {
    fn default() -> Self {
        Self {
            aw_bits: 48,
            scalable: true,
            nfr: 8,
            caching: true,
            ir: true,
            eim: true,
            first_stage: true,
            nested: true,
            fl5: false,
            fl1g: true,
            rmrrs: Vec::new(),
        }
    }
}

/// Why an option string was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum VtdConfigError {
    #[error("IOMMU option must start with `vtd` (got `{0}`)")]
    NotVtd(String),
    #[error("vtd option `{0}` needs a value (write `{0}=VALUE`)")]
    MissingValue(String),
    #[error(
        "unknown vtd option `{0}` (known: aw, sm, nfr, caching, ir, eim, fl, nest, fl5, fl1g, rmrr)"
    )]
    UnknownKey(String),
    /// A combination the architecture does not allow (or Linux cannot use).
    #[error("vtd option `{option}`: {reason}")]
    Incompatible {
        option: &'static str,
        reason: &'static str,
    },
    #[error("vtd option `eim=on` needs interrupt remapping (`ir=on`)")]
    EimWithoutIr,
    #[error("vtd option `{0}` is given twice")]
    Duplicate(String),
    #[error("invalid vtd option `{key}={value}`: expected {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("invalid vtd option `rmrr={value}`: {reason}")]
    BadRmrr { value: String, reason: String },
}

impl_from_option_error!(VtdConfigError);

fn bad(key: &str, value: &str, expected: &'static str) -> VtdConfigError {
    options::bad(key, value, expected).into()
}

/// Parses `[SSSS:]BB:DD.F` (hex bus and device, function 0-7); only segment 0 exists.
fn parse_bdf(s: &str) -> Result<u16, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (seg, bus, devfn) = match parts.as_slice() {
        [bus, devfn] => ("0", *bus, *devfn),
        [seg, bus, devfn] => (*seg, *bus, *devfn),
        _ => return Err(format!("`{s}` is not a PCI address like 00:05.0")),
    };
    if u16::from_str_radix(seg, 16) != Ok(0) {
        return Err(format!("`{s}`: only PCI segment 0 exists"));
    }
    let (dev, func) = devfn
        .split_once('.')
        .ok_or_else(|| format!("`{s}` is not a PCI address like 00:05.0"))?;
    let bus = u8::from_str_radix(bus, 16).map_err(|_| format!("`{s}`: bad bus number"))?;
    let dev = u8::from_str_radix(dev, 16)
        .ok()
        .filter(|d| *d < 32)
        .ok_or_else(|| format!("`{s}`: device must be 00-1f"))?;
    let func = func
        .parse::<u8>()
        .ok()
        .filter(|f| *f < 8)
        .ok_or_else(|| format!("`{s}`: function must be 0-7"))?;
    Ok(u16::from(bus) << 8 | u16::from(dev) << 3 | u16::from(func))
}

fn parse_rmrr(value: &str, aw_bits: u32) -> Result<Rmrr, VtdConfigError> {
    let err = |reason: String| VtdConfigError::BadRmrr {
        value: value.into(),
        reason,
    };
    let (range, bdf) = value
        .split_once('@')
        .ok_or_else(|| err("expected BASE-END@BB:DD.F".into()))?;
    let (base, end) = range
        .split_once('-')
        .ok_or_else(|| err("expected BASE-END@BB:DD.F".into()))?;
    let base = options::hex(base).ok_or_else(|| err(format!("`{base}` is not a hex address")))?;
    let end = options::hex(end).ok_or_else(|| err(format!("`{end}` is not a hex address")))?;
    let bdf = parse_bdf(bdf).map_err(err)?;
    let rmrr = Rmrr { base, end, bdf };
    check_rmrr(&rmrr, aw_bits).map_err(err)?;
    Ok(rmrr)
}

/// The rules an RMRR must follow (VT-d 4.x section 8.4: 4 KiB aligned, END inclusive), plus this
/// model's: inside the aperture and clear of the interrupt address range.
fn check_rmrr(r: &Rmrr, aw_bits: u32) -> Result<(), String> {
    if r.base & 0xfff != 0 {
        return Err(format!("base {:#x} is not 4 KiB aligned", r.base));
    }
    if r.end & 0xfff != 0xfff {
        return Err(format!(
            "end {:#x} is inclusive and must end a 4 KiB page (…fff)",
            r.end
        ));
    }
    if r.end < r.base {
        return Err("end is below base".into());
    }
    if aw_bits < 64 && r.end >> aw_bits != 0 {
        return Err(format!(
            "end {:#x} is beyond the {aw_bits}-bit aperture",
            r.end
        ));
    }
    if r.base <= regs::MSI_LAST && r.end >= regs::MSI_FIRST {
        return Err("overlaps the interrupt address range 0xfee00000-0xfeefffff".into());
    }
    Ok(())
}

impl FromStr for VtdConfig {
    type Err = VtdConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut items =
            options::items(s, "vtd", &["rmrr"]).ok_or_else(|| VtdConfigError::NotVtd(s.into()))?;
        let mut cfg = VtdConfig::default();
        let mut rmrr_strings = Vec::new();
        for item in items.by_ref() {
            let (key, value) = item?;
            match key {
                "aw" => {
                    cfg.aw_bits =
                        options::decimal(key, value, |aw| AW_RANGE.contains(aw), AW_EXPECTED)?
                }
                "sm" => cfg.scalable = on_off(key, value)?,
                "caching" => cfg.caching = on_off(key, value)?,
                "ir" => cfg.ir = on_off(key, value)?,
                "eim" => cfg.eim = on_off(key, value)?,
                "fl" => cfg.first_stage = on_off(key, value)?,
                "nest" => cfg.nested = on_off(key, value)?,
                "fl5" => cfg.fl5 = on_off(key, value)?,
                "fl1g" => cfg.fl1g = on_off(key, value)?,
                "nfr" => {
                    cfg.nfr = options::decimal(
                        key,
                        value,
                        |n| (1..=regs::MAX_NFR).contains(n),
                        NFR_EXPECTED,
                    )?
                }
                "rmrr" => rmrr_strings.push(value),
                _ => return Err(VtdConfigError::UnknownKey(key.into())),
            }
        }
        // `ir=off` implies `eim=off` unless `eim=on` is asked for explicitly, which is an error.
        if !cfg.ir {
            if items.given("eim") && cfg.eim {
                return Err(VtdConfigError::EimWithoutIr);
            }
            cfg.eim = false;
        }
        // First-stage defaults follow the final `sm` and `aw`, whatever the option order.
        if !items.given("fl") {
            cfg.first_stage = cfg.scalable && FIRST_STAGE_AW.contains(&cfg.aw_bits);
        }
        if !items.given("nest") {
            cfg.nested = cfg.first_stage;
        }
        if !items.given("fl5") {
            cfg.fl5 = cfg.first_stage && cfg.aw_bits == 57;
        }
        cfg.check_stages()?;
        // RMRRs are checked against the final address width, whatever the option order.
        for value in rmrr_strings {
            cfg.rmrrs.push(parse_rmrr(value, cfg.aw_bits)?);
        }
        Ok(cfg)
    }
}

impl VtdConfig {
    /// Checks a configuration built in code (the parser already enforces all of this).
    pub fn validate(&self) -> Result<(), VtdConfigError> {
        if !AW_RANGE.contains(&self.aw_bits) {
            return Err(bad("aw", &self.aw_bits.to_string(), AW_EXPECTED));
        }
        if !(1..=regs::MAX_NFR).contains(&self.nfr) {
            return Err(bad("nfr", &self.nfr.to_string(), NFR_EXPECTED));
        }
        if self.eim && !self.ir {
            return Err(VtdConfigError::EimWithoutIr);
        }
        self.check_stages()?;
        for r in &self.rmrrs {
            check_rmrr(r, self.aw_bits).map_err(|reason| VtdConfigError::BadRmrr {
                value: r.to_string(),
                reason,
            })?;
        }
        Ok(())
    }

    /// The configuration with out-of-range values replaced by the nearest supported ones, so that
    /// [`super::Vtd::new`] never fails.
    pub(crate) fn normalized(mut self) -> Self {
        self.aw_bits = self.aw_bits.clamp(*AW_RANGE.start(), *AW_RANGE.end());
        self.nfr = self.nfr.clamp(1, regs::MAX_NFR);
        self.eim &= self.ir;
        self.first_stage = self.flts();
        self.nested = self.nest();
        self.fl5 = self.fl5lp();
        let aw = self.aw_bits;
        self.rmrrs.retain(|r| check_rmrr(r, aw).is_ok());
        self
    }

    /// The first-stage / nesting combinations the spec forbids (VT-d 4.x 11.4.2-11.4.3: FLTS, NEST and
    /// PASID support exist only with SMTS; NEST needs FLTS and SLTS; FL5LP describes 5-level
    /// first-stage tables, whose 57-bit addresses need a 57-bit MGAW) or that Linux cannot use (FLTS and
    /// SLTS together with a SAGAW lacking 4-level tables: the unit is ignored).
    fn check_stages(&self) -> Result<(), VtdConfigError> {
        let err = |option, reason| Err(VtdConfigError::Incompatible { option, reason });
        if self.first_stage && !self.scalable {
            return err(
                "fl=on",
                "first-stage translation needs scalable mode (sm=on)",
            );
        }
        if self.first_stage && !FIRST_STAGE_AW.contains(&self.aw_bits) {
            return err(
                "fl=on",
                "needs aw=48 or aw=57 (the input widths of 4- and 5-level first-stage tables)",
            );
        }
        if self.nested && !self.scalable {
            return err("nest=on", "nested translation needs scalable mode (sm=on)");
        }
        if self.nested && !self.first_stage {
            return err(
                "nest=on",
                "nested translation needs first-stage translation (fl=on)",
            );
        }
        if self.fl5 && !self.first_stage {
            return err(
                "fl5=on",
                "5-level first-stage paging needs first-stage translation (fl=on)",
            );
        }
        if self.fl5 && self.aw_bits != 57 {
            return err("fl5=on", "5-level first-stage paging needs aw=57");
        }
        Ok(())
    }

    /// ECAP.FLTS as advertised (only in a combination the spec allows, even for an unchecked config).
    fn flts(&self) -> bool {
        self.first_stage && self.scalable && FIRST_STAGE_AW.contains(&self.aw_bits)
    }

    /// ECAP.NEST as advertised (needs FLTS and SLTS).
    fn nest(&self) -> bool {
        self.nested && self.flts()
    }

    /// CAP.FL5LP as advertised.
    fn fl5lp(&self) -> bool {
        self.fl5 && self.flts() && self.aw_bits == 57
    }

    /// SAGAW (bit 1 = 39-bit 3-level, bit 2 = 48-bit 4-level, bit 3 = 57-bit 5-level): every table
    /// depth up to the first one whose width covers `aw_bits` — 39 -> 0x2, 40..=48 -> 0x6,
    /// 49..=57 -> 0xe. A width between two AGAWs is MGAW below AGAW, as on many real units (e.g.
    /// MGAW 39 with 4-level tables): the tables are deeper than the addresses need, and the address
    /// check uses MGAW.
    pub fn sagaw(&self) -> u64 {
        let cover = SUPPORTED_AW
            .into_iter()
            .find(|w| *w >= self.aw_bits)
            .unwrap_or(SUPPORTED_AW[2]);
        SUPPORTED_AW
            .iter()
            .enumerate()
            .filter(|(_, w)| **w <= cover)
            .fold(0, |acc, (i, _)| acc | 1 << (i + 1))
    }

    /// The Capability Register.
    ///
    /// ND=6 (65536 domains, so every 16-bit DID is valid), CM=0 (not-present entries are never cached),
    /// RWBF=0, PLMR/PHMR=0, ESRTPS=0 and ESIRTPS=0 (the driver performs the global invalidations after
    /// SRTP and SIRTP, which exercises them), PI=0, PSI with MAMV=18, SLLPS 2 MiB + 1 GiB, NFR/FRO per
    /// [`regs::FRO_OFFSET`]. With first-stage translation: FL5LP (`fl5=on`). In scalable mode FL1GP (`fl1g=on`),
    /// also when the unit has no first stage: FL1GP says which page sizes first-stage walks could map, and
    /// Linux's `intel_svm_check` requires it of every unit with PASID and SMPWC before it accepts a CPU with
    /// 1 GiB pages, FLTS or not (it logs "SVM disabled, incompatible 1GB page capability" at error level
    /// otherwise). Without FLTS nothing walks first-stage tables, so the bit changes nothing else; the VMM keeps
    /// the CPU's 1 GiB pages (and the guest's 1 GiB hugetlb pages) in second-stage-only configurations.
    pub fn cap(&self) -> u64 {
        let fl1gp = if self.scalable && self.fl1g {
            regs::CAP_FL1GP
        } else {
            0
        };
        let fl5lp = if self.fl5lp() { regs::CAP_FL5LP } else { 0 };
        6 << regs::CAP_ND_SHIFT
            | self.sagaw() << regs::CAP_SAGAW_SHIFT
            | u64::from(self.aw_bits.clamp(*AW_RANGE.start(), *AW_RANGE.end()) - 1)
                << regs::CAP_MGAW_SHIFT
            | (regs::FRO_OFFSET / 16) << regs::CAP_FRO_SHIFT
            | regs::CAP_SLLPS_2M
            | regs::CAP_SLLPS_1G
            | regs::CAP_PSI
            | u64::from(self.nfr.clamp(1, regs::MAX_NFR) - 1) << regs::CAP_NFR_SHIFT
            | u64::from(MAMV) << regs::CAP_MAMV_SHIFT
            | fl1gp
            | fl5lp
    }

    /// The Extended Capability Register.
    ///
    /// Always: C=1 (page walks are coherent: the driver need not flush CPU caches), QI=1, PT=1, SC=1
    /// (the SNP bit of leaf entries is accepted), IRO. DT=0, PRS=0, ERS=0, EAFS=0, SLADS=0 (device-TLB,
    /// page requests, execute requests, extended-accessed and second-stage A/D flags are not modelled).
    /// With `sm=on`: SMTS, SLTS, PASID with PSS=19 (20-bit PASIDs), SMPWC, RPS (RID_PASID honoured).
    /// With `fl=on`: FLTS and SRS (supervisor requests, the PASID entry's SRE/WPE); with `nest=on`: NEST.
    /// With `ir=on`: IR (interrupt remapping; no posted interrupts, CAP.PI=0); with `eim=on` also EIM.
    pub fn ecap(&self) -> u64 {
        let base = regs::ECAP_C
            | regs::ECAP_QI
            | regs::ECAP_PT
            | regs::ECAP_SC
            | (regs::IRO_OFFSET / 16) << regs::ECAP_IRO_SHIFT
            | if self.ir {
                regs::ECAP_IR | regs::MHMV << regs::ECAP_MHMV_SHIFT
            } else {
                0
            }
            | if self.ir && self.eim {
                regs::ECAP_EIM
            } else {
                0
            };
        if self.scalable {
            base | regs::ECAP_SMTS
                | regs::ECAP_SLTS
                | regs::ECAP_PASID
                | u64::from(PSS) << regs::ECAP_PSS_SHIFT
                | regs::ECAP_SMPWC
                | regs::ECAP_RPS
                | if self.flts() {
                    regs::ECAP_FLTS | regs::ECAP_SRS
                } else {
                    0
                }
                | if self.nest() { regs::ECAP_NEST } else { 0 }
        } else {
            base
        }
    }

    /// The canonical option string (parses back to an equal configuration).
    pub fn option_string(&self) -> String {
        let onoff = options::on_off_str;
        let mut s = format!(
            "vtd,aw={},sm={},nfr={},caching={}",
            self.aw_bits,
            onoff(self.scalable),
            self.nfr,
            onoff(self.caching)
        );
        s.push_str(&format!(",ir={},eim={}", onoff(self.ir), onoff(self.eim)));
        s.push_str(&format!(
            ",fl={},nest={},fl5={},fl1g={}",
            onoff(self.first_stage),
            onoff(self.nested),
            onoff(self.fl5),
            onoff(self.fl1g)
        ));
        for r in &self.rmrrs {
            s.push_str(&format!(",rmrr={r}"));
        }
        s
    }
}

/// The hardware parameters the model consults, decoded once from CAP/ECAP so that behaviour always
/// matches what the registers advertise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hw {
    pub cap: u64,
    pub ecap: u64,
    /// MGAW (= host address width of this model).
    pub aw_bits: u32,
    pub sagaw: u64,
    pub nfr: u16,
    pub caching: bool,
    pub large_2m: bool,
    pub large_1g: bool,
    pub snoop: bool,
    pub pt: bool,
    pub dt: bool,
    pub ir: bool,
    pub eim: bool,
    pub prs: bool,
    pub smts: bool,
    pub slts: bool,
    pub flts: bool,
    pub nest: bool,
    /// CAP.FL1GP: 1 GiB first-stage pages.
    pub fl1gp: bool,
    /// CAP.FL5LP: 5-level first-stage paging.
    pub fl5lp: bool,
    /// ECAP.SRS: supervisor requests (PASID entry SRE).
    pub srs: bool,
    pub slads: bool,
    pub rps: bool,
    pub mamv: u32,
}

impl Hw {
    pub fn new(cfg: &VtdConfig) -> Self {
        let cap = cfg.cap();
        let ecap = cfg.ecap();
        let has = |reg: u64, bit: u64| reg & bit != 0;
        Self {
            cap,
            ecap,
            aw_bits: ((cap >> regs::CAP_MGAW_SHIFT) & 0x3f) as u32 + 1,
            sagaw: (cap >> regs::CAP_SAGAW_SHIFT) & 0x1f,
            nfr: ((cap >> regs::CAP_NFR_SHIFT) & 0xff) as u16 + 1,
            caching: cfg.caching,
            large_2m: has(cap, regs::CAP_SLLPS_2M),
            large_1g: has(cap, regs::CAP_SLLPS_1G),
            snoop: has(ecap, regs::ECAP_SC),
            pt: has(ecap, regs::ECAP_PT),
            dt: has(ecap, regs::ECAP_DT),
            ir: has(ecap, regs::ECAP_IR),
            eim: has(ecap, regs::ECAP_EIM),
            prs: has(ecap, regs::ECAP_PRS),
            smts: has(ecap, regs::ECAP_SMTS),
            slts: has(ecap, regs::ECAP_SLTS),
            flts: has(ecap, regs::ECAP_FLTS),
            nest: has(ecap, regs::ECAP_NEST),
            fl1gp: has(cap, regs::CAP_FL1GP),
            fl5lp: has(cap, regs::CAP_FL5LP),
            srs: has(ecap, regs::ECAP_SRS),
            slads: has(ecap, regs::ECAP_SLADS),
            rps: has(ecap, regs::ECAP_RPS),
            mamv: ((cap >> regs::CAP_MAMV_SHIFT) & 0x3f) as u32,
        }
    }

    /// Whether an AW field value (1 = 39-bit, 2 = 48-bit, 3 = 57-bit) is in SAGAW.
    pub fn aw_supported(&self, aw_code: u64) -> bool {
        aw_code < 5 && self.sagaw & (1 << aw_code) != 0
    }

    /// Bits 63:HAW of a table pointer, which must be zero.
    pub fn above_haw(&self) -> u64 {
        !((1u64 << self.aw_bits.min(63)) - 1)
    }
}

/// Input address width of an AW field value: 30 + 9 * code (39, 48, 57).
pub(crate) fn aw_code_width(aw_code: u64) -> u32 {
    30 + 9 * (aw_code.min(4) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<VtdConfig, VtdConfigError> {
        s.parse()
    }

    #[test]
    fn defaults_and_full_string() {
        assert_eq!(parse("vtd").unwrap(), VtdConfig::default());
        let c = parse("vtd,aw=57,sm=off,nfr=16,caching=off,rmrr=0xa0000-0xbffff@00:05.0").unwrap();
        assert_eq!(c.aw_bits, 57);
        assert!(!c.scalable && !c.caching);
        assert_eq!(c.nfr, 16);
        assert_eq!(
            c.rmrrs,
            vec![Rmrr {
                base: 0xa0000,
                end: 0xbffff,
                bdf: 0x28
            }]
        );
        assert_eq!(parse(&c.option_string()).unwrap(), c);
        assert_eq!(
            c.option_string(),
            "vtd,aw=57,sm=off,nfr=16,caching=off,ir=on,eim=on,fl=off,nest=off,fl5=off,fl1g=on,\
             rmrr=0xa0000-0xbffff@00:05.0"
        );
        let two = parse("vtd,rmrr=1000-1fff@0000:01:1f.7,rmrr=0x3000-0x3fff@02:00.0").unwrap();
        assert_eq!(two.rmrrs[0].bdf, 0x01ff);
        assert_eq!(two.rmrrs[1].bdf, 0x0200);
    }

    #[test]
    fn interrupt_remapping_options() {
        let d = VtdConfig::default();
        assert!(d.ir && d.eim, "on by default");
        let no_eim = parse("vtd,eim=off").unwrap();
        assert!(no_eim.ir && !no_eim.eim);
        // ir=off implies eim=off, in any order; eim=on without ir is refused.
        for s in ["vtd,ir=off", "vtd,ir=off,eim=off", "vtd,eim=off,ir=off"] {
            let c = parse(s).unwrap();
            assert!(!c.ir && !c.eim, "{s}");
            assert_eq!(parse(&c.option_string()).unwrap(), c);
            assert!(c.option_string().contains(",ir=off,eim=off"));
        }
        for s in ["vtd,ir=off,eim=on", "vtd,eim=on,ir=off"] {
            assert_eq!(parse(s), Err(VtdConfigError::EimWithoutIr), "{s}");
        }
        assert!(matches!(
            parse("vtd,ir=1"),
            Err(VtdConfigError::BadValue { .. })
        ));
        assert!(
            matches!(parse("vtd,eim=on,eim=on"), Err(VtdConfigError::Duplicate(k)) if k == "eim")
        );
        let code_built = VtdConfig {
            ir: false,
            ..Default::default()
        };
        assert_eq!(code_built.validate(), Err(VtdConfigError::EimWithoutIr));
        let n = code_built.normalized();
        assert!(!n.eim && n.validate().is_ok());
        // ECAP.IR / ECAP.EIM follow the options; Hw sees them.
        let ecap = |s: &str| parse(s).unwrap().ecap();
        assert_eq!(ecap("vtd") & (regs::ECAP_IR | regs::ECAP_EIM), 0x18);
        assert_eq!(ecap("vtd,eim=off") & (regs::ECAP_IR | regs::ECAP_EIM), 0x08);
        assert_eq!(ecap("vtd,ir=off") & (regs::ECAP_IR | regs::ECAP_EIM), 0);
        let hw = Hw::new(&no_eim);
        assert!(hw.ir && !hw.eim);
        assert_eq!(
            d.cap() & (regs::CAP_ESIRTPS | regs::CAP_ESRTPS),
            0,
            "the driver must issue the global invalidations itself"
        );
    }

    #[test]
    fn errors_are_specific() {
        assert!(matches!(parse("smmuv3"), Err(VtdConfigError::NotVtd(_))));
        assert!(matches!(parse("vtdx"), Err(VtdConfigError::NotVtd(_))));
        assert!(matches!(parse("vtd,aw"), Err(VtdConfigError::MissingValue(k)) if k == "aw"));
        assert!(matches!(parse("vtd,foo=1"), Err(VtdConfigError::UnknownKey(k)) if k == "foo"));
        assert!(matches!(parse("vtd,aw=48,aw=39"), Err(VtdConfigError::Duplicate(k)) if k == "aw"));
        for bad_value in [
            "vtd,aw=38",
            "vtd,aw=58",
            "vtd,aw=0x30",
            "vtd,aw=",
            "vtd,sm=yes",
            "vtd,nfr=0",
            "vtd,nfr=129",
            "vtd,caching=1",
        ] {
            assert!(
                matches!(parse(bad_value), Err(VtdConfigError::BadValue { .. })),
                "{bad_value}"
            );
        }
        let msg = parse("vtd,aw=64").unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid vtd option `aw=64`: expected an address width from 39 to 57"
        );
        for bad_rmrr in [
            "vtd,rmrr=0x1000-0x1fff",
            "vtd,rmrr=0x1000@00:05.0",
            "vtd,rmrr=0x1001-0x1fff@00:05.0",
            "vtd,rmrr=0x1000-0x2000@00:05.0",
            "vtd,rmrr=0x2000-0x1fff@00:05.0",
            "vtd,rmrr=0xfee00000-0xfee00fff@00:05.0",
            "vtd,rmrr=0x1000-0x1fff@00:20.0",
            "vtd,rmrr=0x1000-0x1fff@00:05.8",
            "vtd,rmrr=0x1000-0x1fff@0001:00:05.0",
            "vtd,rmrr=zz-0x1fff@00:05.0",
            "vtd,aw=39,rmrr=0x8000000000-0x8000000fff@00:05.0",
        ] {
            assert!(
                matches!(parse(bad_rmrr), Err(VtdConfigError::BadRmrr { .. })),
                "{bad_rmrr}"
            );
        }
        // The width check uses the final aw, whatever the order.
        assert!(parse("vtd,rmrr=0x8000000000-0x8000000fff@00:05.0,aw=39").is_err());
        assert!(parse("vtd,rmrr=0x8000000000-0x8000000fff@00:05.0,aw=48").is_ok());
    }

    #[test]
    fn any_width_from_39_to_57() {
        for aw in 39u32..=57 {
            let c = parse(&format!("vtd,aw={aw}")).unwrap();
            assert_eq!(c.aw_bits, aw);
            assert_eq!(parse(&c.option_string()).unwrap(), c, "aw={aw} round trip");
            let cap = c.cap();
            assert_eq!((cap >> 16) & 0x3f, u64::from(aw - 1), "MGAW aw={aw}");
            let sagaw = match aw {
                39 => 0x2,
                40..=48 => 0x6,
                _ => 0xe,
            };
            assert_eq!((cap >> 8) & 0x1f, sagaw, "SAGAW aw={aw}");
            let hw = Hw::new(&c);
            assert_eq!((hw.aw_bits, hw.sagaw), (aw, sagaw));
            // First-stage translation only at its own widths; by default there.
            let fl = aw == 48 || aw == 57;
            assert_eq!(
                (c.first_stage, c.nested, hw.flts, hw.nest),
                (fl, fl, fl, fl)
            );
            assert_eq!(c.fl5, aw == 57);
            assert_eq!(parse(&format!("vtd,aw={aw},fl=on")).is_ok(), fl);
            assert_eq!(parse(&format!("vtd,nest=on,aw={aw}")).is_ok(), fl);
            assert!(parse(&format!("vtd,aw={aw},fl=off")).is_ok());
            assert!(parse(&format!("vtd,aw={aw},sm=off")).is_ok());
        }
        // The seed's example: a 45-bit unit.
        let c = parse("vtd,aw=45").unwrap();
        assert_eq!(
            c.option_string(),
            "vtd,aw=45,sm=on,nfr=8,caching=on,ir=on,eim=on,fl=off,nest=off,fl5=off,fl1g=on"
        );
        match parse("vtd,aw=45,fl=on") {
            Err(VtdConfigError::Incompatible { option, reason }) => {
                assert_eq!(option, "fl=on");
                assert!(reason.contains("aw=48 or aw=57"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // RMRRs are checked against the exact width.
        assert!(parse("vtd,aw=45,rmrr=0x1fffffff0000-0x1fffffffffff@00:05.0").is_ok());
        assert!(matches!(
            parse("vtd,aw=45,rmrr=0x1fffffff0000-0x200000000fff@00:05.0"),
            Err(VtdConfigError::BadRmrr { .. })
        ));
    }

    #[test]
    fn cap_ecap_per_width_and_mode() {
        for (aw, sagaw) in [(39u32, 0x2u64), (48, 0x6), (57, 0xe)] {
            for sm in [false, true] {
                let c = VtdConfig {
                    aw_bits: aw,
                    scalable: sm,
                    ir: false,
                    eim: false,
                    first_stage: false,
                    nested: false,
                    ..Default::default()
                };
                let cap = c.cap();
                assert_eq!((cap >> 8) & 0x1f, sagaw, "SAGAW aw={aw}");
                assert_eq!((cap >> 16) & 0x3f, u64::from(aw - 1), "MGAW");
                assert_eq!(cap & 7, 6, "ND");
                assert_eq!((cap >> 24) & 0x3ff, 0x40, "FRO");
                assert_eq!((cap >> 40) & 0xff, 7, "NFR-1");
                assert_eq!((cap >> 48) & 0x3f, 18, "MAMV");
                assert_eq!((cap >> 34) & 0xf, 0b11, "SLLPS");
                assert_ne!(cap & regs::CAP_PSI, 0);
                assert_eq!(cap & (regs::CAP_CM | regs::CAP_RWBF | regs::CAP_ESRTPS), 0);
                let ecap = c.ecap();
                assert_eq!((ecap >> 8) & 0x3ff, 0x30, "IRO");
                assert_eq!(
                    ecap & (regs::ECAP_C | regs::ECAP_QI | regs::ECAP_PT | regs::ECAP_SC),
                    0xc3
                );
                assert_eq!(
                    ecap & (regs::ECAP_DT | regs::ECAP_IR | regs::ECAP_EIM | regs::ECAP_NEST),
                    0
                );
                assert_eq!(ecap & (regs::ECAP_FLTS | regs::ECAP_SRS), 0);
                assert_eq!(cap & regs::CAP_FL5LP, 0);
                // FL1GP with scalable mode, first stage or not (fl1g=on is the default).
                assert_eq!(cap & regs::CAP_FL1GP != 0, sm, "FL1GP aw={aw} sm={sm}");
                let sm_bits = regs::ECAP_SMTS | regs::ECAP_SLTS | regs::ECAP_PASID;
                assert_eq!(ecap & sm_bits == sm_bits, sm);
                assert_eq!((ecap >> 35) & 0x1f, if sm { 19 } else { 0 }, "PSS");
            }
        }
        let d = VtdConfig::default();
        assert_eq!(d.cap(), 0x0112_078c_402f_0606, "with FL1GP");
        assert_eq!(
            d.ecap(),
            0x0003_c998_84f0_30db,
            "with IR, EIM, FLTS, SRS and NEST"
        );
    }

    #[test]
    fn first_stage_options_and_their_registers() {
        let d = VtdConfig::default();
        assert!(d.first_stage && d.nested && d.fl1g && !d.fl5);
        assert_eq!(parse("vtd").unwrap(), d);
        let bits = |c: &VtdConfig| {
            let (cap, ecap) = (c.cap(), c.ecap());
            (
                ecap & regs::ECAP_FLTS != 0,
                ecap & regs::ECAP_NEST != 0,
                cap & regs::CAP_FL5LP != 0,
                cap & regs::CAP_FL1GP != 0,
                ecap & regs::ECAP_SRS != 0,
            )
        };
        assert_eq!(bits(&d), (true, true, false, true, true));
        // Defaults follow sm and aw, in any option order.
        for (s, want) in [
            ("vtd,aw=57", (true, true, true, true, true)),
            ("vtd,fl1g=off,aw=57", (true, true, true, false, true)),
            ("vtd,aw=39", (false, false, false, true, false)),
            ("vtd,sm=off", (false, false, false, false, false)),
            ("vtd,nest=off", (true, false, false, true, true)),
            ("vtd,fl=off", (false, false, false, true, false)),
            ("vtd,aw=57,fl5=off", (true, true, false, true, true)),
            ("vtd,fl5=on,aw=57", (true, true, true, true, true)),
            ("vtd,fl=off,nest=off", (false, false, false, true, false)),
            ("vtd,fl=off,fl1g=off", (false, false, false, false, false)),
        ] {
            let c = parse(s).unwrap();
            assert_eq!(bits(&c), want, "{s}");
            assert_eq!(parse(&c.option_string()).unwrap(), c, "{s} round trip");
            assert_eq!(c.validate(), Ok(()), "{s}");
            assert_eq!(Hw::new(&c).flts, want.0);
            assert_eq!(Hw::new(&c).nest, want.1);
            assert_eq!(Hw::new(&c).fl5lp, want.2);
            assert_eq!(Hw::new(&c).fl1gp, want.3);
            assert_eq!(Hw::new(&c).srs, want.4);
            // FLTS with SLTS: SAGAW always includes 4-level tables (Linux intersects the two).
            if want.0 {
                assert_ne!(c.sagaw() & 0b100, 0, "{s}");
            }
        }
        for (s, option) in [
            ("vtd,sm=off,fl=on", "fl=on"),
            ("vtd,fl=on,sm=off", "fl=on"),
            ("vtd,aw=39,fl=on", "fl=on"),
            ("vtd,sm=off,nest=on", "nest=on"),
            ("vtd,fl=off,nest=on", "nest=on"),
            ("vtd,fl5=on", "fl5=on"),
            ("vtd,aw=48,fl5=on", "fl5=on"),
            ("vtd,aw=57,fl=off,nest=off,fl5=on", "fl5=on"),
        ] {
            match parse(s) {
                Err(VtdConfigError::Incompatible { option: o, reason }) => {
                    assert_eq!(o, option, "{s}");
                    assert!(!reason.is_empty());
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        assert_eq!(
            parse("vtd,fl5=on").unwrap_err().to_string(),
            "vtd option `fl5=on`: 5-level first-stage paging needs aw=57"
        );
        assert!(matches!(
            parse("vtd,fl=yes"),
            Err(VtdConfigError::BadValue { .. })
        ));
        // A configuration built in code: validate() refuses, the registers stay consistent anyway,
        // normalized() repairs.
        let odd = VtdConfig {
            aw_bits: 39,
            fl5: true,
            ..Default::default()
        };
        assert!(matches!(
            odd.validate(),
            Err(VtdConfigError::Incompatible { .. })
        ));
        assert_eq!(bits(&odd), (false, false, false, true, false));
        let n = odd.normalized();
        assert!(!n.first_stage && !n.nested && !n.fl5);
        assert_eq!(n.validate(), Ok(()));
    }

    #[test]
    fn normalized_never_fails() {
        let c = VtdConfig {
            aw_bits: 12,
            nfr: 0,
            rmrrs: vec![Rmrr {
                base: 0x1001,
                end: 0,
                bdf: 0,
            }],
            ..Default::default()
        }
        .normalized();
        assert_eq!((c.aw_bits, c.nfr), (39, 1));
        assert!(!c.first_stage && !c.nested, "no first stage below 48 bits");
        assert!(c.rmrrs.is_empty());
        assert!(c.validate().is_ok());
        let big = VtdConfig {
            aw_bits: 99,
            nfr: 999,
            ..Default::default()
        }
        .normalized();
        assert_eq!((big.aw_bits, big.nfr), (57, 128));
        // In-between widths are kept; a first stage they cannot have is dropped.
        let odd = VtdConfig {
            aw_bits: 45,
            ..Default::default()
        };
        assert!(matches!(
            odd.validate(),
            Err(VtdConfigError::Incompatible {
                option: "fl=on",
                ..
            })
        ));
        let n = odd.normalized();
        assert_eq!(n.aw_bits, 45);
        assert!(!n.first_stage && !n.nested && n.validate().is_ok());
        // cap() of an unchecked configuration does not underflow.
        let zero = VtdConfig {
            aw_bits: 0,
            ..Default::default()
        };
        assert_eq!((zero.cap() >> 16) & 0x3f, 38);
    }
}
