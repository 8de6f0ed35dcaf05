//! The user-facing `--iommu smmuv3[,key=value...]` option and the ID register values it implies.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::options::{self, choice, decimal, impl_from_option_error, on_off};

/// Output address sizes IDR5.OAS can encode (IHI0070 §6.3.6), in field order 0..=6.
pub const OAS_BITS: [u8; 7] = [32, 36, 40, 42, 44, 48, 52];

/// Configuration of one SMMUv3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Smmuv3Config {
    /// IDR1.SIDSIZE: StreamID bits, 1..=32 (default 16).
    pub sid_bits: u8,
    /// IDR1.SSIDSIZE: SubstreamID bits, 0..=20 (default 20; 0 = no substreams).
    pub ssid_bits: u8,
    /// IDR5.OAS as bits: 32|36|40|42|44|48|52 (default 48).
    pub oas_bits: u8,
    /// IDR0.S1P.
    pub stage1: bool,
    /// IDR0.S2P.
    pub stage2: bool,
    /// IDR0.ST_LEVEL = 2-level (default true).
    pub two_level_strtab: bool,
    /// IDR0.HTTU: 0 none, 1 access flag, 2 access + dirty (default 2).
    pub httu: u8,
    /// IDR3.RIL: range invalidation (default true).
    pub ril: bool,
    /// TLB and configuration cache on (default) or off; results are identical either way.
    pub caching: bool,
    /// GBPA.ABORT reset value (default false: bypass while SMMUEN=0, as QEMU).
    pub gbpa_abort: bool,
    /// Inclusive IOVA holes subtracted from permitted ranges.
    pub reserved: Vec<(u64, u64)>,
}

impl Default for Smmuv3Config {
    fn default() -> Self {
        Self {
            sid_bits: 16,
            ssid_bits: 20,
            oas_bits: 48,
            stage1: true,
            stage2: true,
            two_level_strtab: true,
            httu: 2,
            ril: true,
            caching: true,
            gbpa_abort: false,
            reserved: Vec::new(),
        }
    }
}

/// Why an `smmuv3[,...]` option string was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Smmuv3ConfigError {
    #[error("`{0}` is not an smmuv3 option (expected `smmuv3[,key=value...]`)")]
    NotSmmuv3(String),
    #[error("`{0}`: expected key=value")]
    MissingValue(String),
    #[error("`{0}` given twice")]
    Duplicate(String),
    #[error("unknown smmuv3 option `{0}` (oas, sidbits, ssidbits, stages, httu, ril, caching, strtab, gbpa, reserved)")]
    UnknownKey(String),
    #[error("{key}={value}: expected {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("at least one translation stage is needed")]
    NoStage,
}

impl_from_option_error!(Smmuv3ConfigError);

fn bad(key: &str, value: &str, expected: &'static str) -> Smmuv3ConfigError {
    options::bad(key, value, expected).into()
}

const RESERVED_EXPECTED: &str = "an inclusive hex range like 0xfee00000-0xfeefffff";
const OAS_EXPECTED: &str = "32, 36, 40, 42, 44, 48 or 52";

impl FromStr for Smmuv3Config {
    type Err = Smmuv3ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let items = options::items(s, "smmuv3", &["reserved"])
            .ok_or_else(|| Smmuv3ConfigError::NotSmmuv3(s.into()))?;
        let mut cfg = Smmuv3Config::default();
        for item in items {
            let (key, value) = item?;
            match key {
                "oas" => {
                    cfg.oas_bits = decimal(key, value, |b| OAS_BITS.contains(b), OAS_EXPECTED)?
                }
                "sidbits" => {
                    cfg.sid_bits = decimal(key, value, |b| (1..=32).contains(b), "1 to 32")?
                }
                "ssidbits" => cfg.ssid_bits = decimal(key, value, |b| *b <= 20, "0 to 20")?,
                "stages" => {
                    (cfg.stage1, cfg.stage2) = choice(
                        key,
                        value,
                        &[
                            ("s1", (true, false)),
                            ("s2", (false, true)),
                            ("nested", (true, true)),
                        ],
                        "s1, s2 or nested",
                    )?
                }
                "httu" => cfg.httu = decimal(key, value, |h| *h <= 2, "0, 1 or 2")?,
                "ril" => cfg.ril = on_off(key, value)?,
                "caching" => cfg.caching = on_off(key, value)?,
                "strtab" => {
                    cfg.two_level_strtab = choice(
                        key,
                        value,
                        &[("linear", false), ("2lvl", true)],
                        "linear or 2lvl",
                    )?
                }
                "gbpa" => {
                    cfg.gbpa_abort = choice(
                        key,
                        value,
                        &[("bypass", false), ("abort", true)],
                        "bypass or abort",
                    )?
                }
                "reserved" => {
                    let (a, b) = value
                        .split_once('-')
                        .ok_or_else(|| bad(key, value, RESERVED_EXPECTED))?;
                    let (a, b) = options::prefixed_hex(a.trim())
                        .zip(options::prefixed_hex(b.trim()))
                        .filter(|(a, b)| a <= b)
                        .ok_or_else(|| bad(key, value, RESERVED_EXPECTED))?;
                    cfg.reserved.push((a, b));
                }
                _ => return Err(Smmuv3ConfigError::UnknownKey(key.into())),
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

impl Smmuv3Config {
    /// Checks a configuration built in code (the parser already enforces all of this).
    pub fn validate(&self) -> Result<(), Smmuv3ConfigError> {
        if !OAS_BITS.contains(&self.oas_bits) {
            return Err(bad("oas", &self.oas_bits.to_string(), OAS_EXPECTED));
        }
        if !(1..=32).contains(&self.sid_bits) {
            return Err(bad("sidbits", &self.sid_bits.to_string(), "1 to 32"));
        }
        if self.ssid_bits > 20 {
            return Err(bad("ssidbits", &self.ssid_bits.to_string(), "0 to 20"));
        }
        if self.httu > 2 {
            return Err(bad("httu", &self.httu.to_string(), "0, 1 or 2"));
        }
        if !self.stage1 && !self.stage2 {
            return Err(Smmuv3ConfigError::NoStage);
        }
        if self.reserved.iter().any(|(a, b)| a > b) {
            return Err(bad("reserved", "", RESERVED_EXPECTED));
        }
        Ok(())
    }

    /// The nearest valid configuration (what [`super::Smmuv3::new`] uses).
    pub fn normalized(&self) -> Self {
        let mut c = self.clone();
        c.oas_bits = OAS_BITS
            .iter()
            .copied()
            .rev()
            .find(|b| *b <= c.oas_bits)
            .unwrap_or(32);
        c.sid_bits = c.sid_bits.clamp(1, 32);
        c.ssid_bits = c.ssid_bits.min(20);
        c.httu = c.httu.min(2);
        if !c.stage1 && !c.stage2 {
            c.stage1 = true;
        }
        c.reserved.retain(|(a, b)| a <= b);
        c
    }

    /// IDR5.OAS field value for `oas_bits`.
    pub fn oas_field(&self) -> u32 {
        OAS_BITS
            .iter()
            .position(|b| *b == self.oas_bits)
            .unwrap_or(5) as u32
    }

    /// The canonical option string (parses back to an equal configuration).
    pub fn option_string(&self) -> String {
        let onoff = options::on_off_str;
        let stages = match (self.stage1, self.stage2) {
            (true, false) => "s1",
            (false, true) => "s2",
            _ => "nested",
        };
        let mut s = format!(
            "smmuv3,oas={},sidbits={},ssidbits={},stages={stages},httu={},ril={},caching={},strtab={},gbpa={}",
            self.oas_bits,
            self.sid_bits,
            self.ssid_bits,
            self.httu,
            onoff(self.ril),
            onoff(self.caching),
            if self.two_level_strtab { "2lvl" } else { "linear" },
            if self.gbpa_abort { "abort" } else { "bypass" },
        );
        for (a, b) in &self.reserved {
            s.push_str(&format!(",reserved={a:#x}-{b:#x}"));
        }
        s
    }
}

impl fmt::Display for Smmuv3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.option_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_round_trip() {
        let d: Smmuv3Config = "smmuv3".parse().unwrap();
        assert_eq!(d, Smmuv3Config::default());
        let c: Smmuv3Config =
            "smmuv3,oas=44,sidbits=8,ssidbits=0,stages=s2,httu=1,ril=off,caching=off,strtab=linear,gbpa=abort,reserved=0xfee00000-0xfeefffff"
                .parse()
                .unwrap();
        assert_eq!(c.oas_bits, 44);
        assert_eq!((c.stage1, c.stage2), (false, true));
        assert_eq!(c.reserved, vec![(0xfee0_0000, 0xfeef_ffff)]);
        assert!(c.gbpa_abort && !c.caching && !c.ril && !c.two_level_strtab);
        assert_eq!(c.option_string().parse::<Smmuv3Config>().unwrap(), c);
        assert_eq!(c.oas_field(), 4);
    }

    #[test]
    fn refuses_bad_options() {
        for bad in [
            "vtd",
            "smmuv3,oas=47",
            "smmuv3,sidbits=0",
            "smmuv3,sidbits=33",
            "smmuv3,ssidbits=21",
            "smmuv3,httu=3",
            "smmuv3,stages=s3",
            "smmuv3,ril=yes",
            "smmuv3,oas=48,oas=44",
            "smmuv3,foo=1",
            "smmuv3,caching",
            "smmuv3,reserved=0x2-0x1",
            "smmuv3,reserved=12-13",
        ] {
            assert!(bad.parse::<Smmuv3Config>().is_err(), "{bad}");
        }
        let e = |s: &str| s.parse::<Smmuv3Config>().unwrap_err().to_string();
        assert_eq!(e("smmuv3,ril=yes"), "ril=yes: expected `on` or `off`");
        assert_eq!(e("smmuv3,caching"), "`caching`: expected key=value");
        assert_eq!(e("smmuv3,httu=1,httu=1"), "`httu` given twice");
    }

    #[test]
    fn reserved_may_repeat() {
        let c: Smmuv3Config = "smmuv3,reserved=0x1000-0x1fff,reserved=0X3000-0x3fff"
            .parse()
            .unwrap();
        assert_eq!(c.reserved, vec![(0x1000, 0x1fff), (0x3000, 0x3fff)]);
        assert_eq!(c.option_string().parse::<Smmuv3Config>().unwrap(), c);
    }

    #[test]
    fn normalized_fixes_everything() {
        let c = Smmuv3Config {
            oas_bits: 47,
            sid_bits: 0,
            ssid_bits: 99,
            httu: 9,
            stage1: false,
            stage2: false,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let n = c.normalized();
        assert!(n.validate().is_ok());
        assert_eq!(n.oas_bits, 44);
    }
}
