//! The user-facing `--iommu tce[,key=value...]` option.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::options::{self, impl_from_option_error, OptionError};

/// TCE page shifts the model can offer (4K, 64K, 2M, 16M, 256M, 1G), LoPAR "ibm,query-pe-dma-window"
/// page sizes plus the 1 GiB IODA2 one.
pub const SUPPORTED_PAGE_SHIFTS: [u8; 6] = [12, 16, 21, 24, 28, 30];
/// Largest hypervisor table pool accepted (the pool's page bitmap stays small).
pub const MAX_POOL_SIZE: u64 = 1 << 32;
/// Pool granule: tables are allocated in 4 KiB pages.
pub const POOL_PAGE: u64 = 0x1000;

/// What a bad DMA does to the PE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EehMode {
    /// The first bad DMA freezes the PE (EEH, LoPAR "Enhanced I/O Error Handling"): further DMA is
    /// blocked until a PE reset.
    #[default]
    Freeze,
    /// The fault is logged and returned, nothing freezes (QEMU's spapr_iommu behaviour).
    Report,
}

/// Configuration of one TCE unit (one PHB, one PE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TceConfig {
    /// `eeh=freeze|report` (default freeze).
    pub eeh: EehMode,
    /// TCE cache on (default) or off; results are identical for a guest that kills what it changes.
    pub caching: bool,
    /// Offered TCE page sizes: bit n set = page shift n (`pageshifts=12:16:21:24:28:30`, the
    /// default). 12 is always required (the default 32-bit window uses 4 KiB pages).
    pub page_sizes: u64,
    /// Page shift of the default 64-bit window (`page64=`, default 21 = 2 MiB); must be offered.
    pub page64_shift: u8,
    /// The hypervisor table pool `pool=BASE+SIZE` (guest-physical, 4 KiB aligned, reserved in e820 by
    /// the VMM): the hypercall interface's TCE tables live here. Size 0 (default) allocates nothing.
    pub pool_base: u64,
    pub pool_size: u64,
}

/// Bit mask of [`SUPPORTED_PAGE_SHIFTS`].
pub fn supported_mask() -> u64 {
    SUPPORTED_PAGE_SHIFTS.iter().fold(0, |m, s| m | (1u64 << s))
}

impl Default for TceConfig {
    fn default() -> Self {
        Self {
            eeh: EehMode::Freeze,
            caching: true,
            page_sizes: supported_mask(),
            page64_shift: 21,
            pool_base: 0,
            pool_size: 0,
        }
    }
}

/// Why a `tce[,...]` option string was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TceConfigError {
    #[error("`{0}` is not a tce option (expected `tce[,key=value...]`)")]
    NotTce(String),
    #[error("`{0}`: expected key=value")]
    MissingValue(String),
    #[error("`{0}` given twice")]
    Duplicate(String),
    #[error("unknown tce option `{0}` (eeh, caching, pageshifts, page64, pool)")]
    UnknownKey(String),
    #[error("{key}={value}: expected {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("page64={0} is not among the offered page shifts")]
    Page64NotOffered(u8),
    #[error("page shift 12 (4 KiB) must be offered: the default 32-bit window uses it")]
    No4K,
    #[error("pool {base:#x}+{size:#x}: base and size must be 4 KiB multiples, at most 4 GiB, not wrapping")]
    BadPool { base: u64, size: u64 },
}

impl_from_option_error!(TceConfigError);

/// One page shift `s` of `key=value`.
fn parse_shift(key: &str, value: &str, s: &str) -> Result<u8, OptionError> {
    s.parse::<u8>()
        .ok()
        .filter(|v| SUPPORTED_PAGE_SHIFTS.contains(v))
        .ok_or_else(|| options::bad(key, value, SHIFTS_EXPECTED))
}

const SHIFTS_EXPECTED: &str = "page shifts among 12, 16, 21, 24, 28, 30 (colon-separated)";

impl TceConfig {
    /// Whether the configuration is usable as is.
    pub fn validate(&self) -> Result<(), TceConfigError> {
        if self.page_sizes & (1 << 12) == 0 {
            return Err(TceConfigError::No4K);
        }
        if self.page64_shift >= 64 || self.page_sizes & (1u64 << self.page64_shift) == 0 {
            return Err(TceConfigError::Page64NotOffered(self.page64_shift));
        }
        let pool_ok = self.pool_base.is_multiple_of(POOL_PAGE)
            && self.pool_size.is_multiple_of(POOL_PAGE)
            && self.pool_size <= MAX_POOL_SIZE
            && self.pool_base.checked_add(self.pool_size).is_some();
        if !pool_ok {
            return Err(TceConfigError::BadPool {
                base: self.pool_base,
                size: self.pool_size,
            });
        }
        Ok(())
    }

    /// The nearest usable configuration: unsupported page sizes dropped, 4 KiB added, page64 falling
    /// back to the largest offered shift <= 21, a bad pool dropped.
    pub fn normalized(&self) -> Self {
        let mut c = self.clone();
        c.page_sizes = (c.page_sizes & supported_mask()) | (1 << 12);
        if c.page64_shift >= 64 || c.page_sizes & (1u64 << c.page64_shift) == 0 {
            c.page64_shift = SUPPORTED_PAGE_SHIFTS
                .iter()
                .copied()
                .filter(|s| *s <= 21 && c.page_sizes & (1u64 << s) != 0)
                .max()
                .unwrap_or(12);
        }
        if matches!(c.validate(), Err(TceConfigError::BadPool { .. })) {
            c.pool_base = 0;
            c.pool_size = 0;
        }
        c
    }

    /// The canonical option string (every default spelled out); parses back to `self`.
    pub fn option_string(&self) -> String {
        let shifts: Vec<String> = (0..64u8)
            .filter(|s| self.page_sizes & (1u64 << s) != 0)
            .map(|s| s.to_string())
            .collect();
        format!(
            "tce,eeh={},caching={},pageshifts={},page64={},pool={:#x}+{:#x}",
            match self.eeh {
                EehMode::Freeze => "freeze",
                EehMode::Report => "report",
            },
            if self.caching { "on" } else { "off" },
            shifts.join(":"),
            self.page64_shift,
            self.pool_base,
            self.pool_size
        )
    }
}

impl FromStr for TceConfig {
    type Err = TceConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let items =
            options::items(s, "tce", &[]).ok_or_else(|| TceConfigError::NotTce(s.into()))?;
        let mut cfg = TceConfig::default();
        for item in items {
            let (key, value) = item?;
            match key {
                "eeh" => {
                    cfg.eeh = options::choice(
                        key,
                        value,
                        &[("freeze", EehMode::Freeze), ("report", EehMode::Report)],
                        "freeze or report",
                    )?
                }
                "caching" => cfg.caching = options::on_off(key, value)?,
                "pageshifts" => {
                    let mut mask = 0u64;
                    for part in value.split(':') {
                        mask |= 1u64 << parse_shift(key, value, part)?;
                    }
                    cfg.page_sizes = mask;
                }
                "page64" => cfg.page64_shift = parse_shift(key, value, value)?,
                "pool" => {
                    let (b, z) = value
                        .split_once('+')
                        .and_then(|(b, z)| {
                            let num = |s: &str| options::hex_or_decimal(s.trim());
                            Some((num(b)?, num(z)?))
                        })
                        .ok_or_else(|| {
                            options::bad(key, value, "BASE+SIZE, e.g. 0x10000000+0x1000000")
                        })?;
                    cfg.pool_base = b;
                    cfg.pool_size = z;
                }
                _ => return Err(TceConfigError::UnknownKey(key.into())),
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

impl fmt::Display for TceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.option_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_round_trip() {
        let c: TceConfig = "tce".parse().unwrap();
        assert_eq!(c, TceConfig::default());
        assert_eq!(
            c.option_string(),
            "tce,eeh=freeze,caching=on,pageshifts=12:16:21:24:28:30,page64=21,pool=0x0+0x0"
        );
        assert_eq!(c.page_sizes, 0x5121_1000);
        let d: TceConfig =
            "tce,eeh=report,caching=off,pageshifts=12:16,page64=16,pool=0x10000000+0x100000"
                .parse()
                .unwrap();
        assert_eq!(d.eeh, EehMode::Report);
        assert!(!d.caching);
        assert_eq!(d.page_sizes, (1 << 12) | (1 << 16));
        assert_eq!((d.pool_base, d.pool_size), (0x1000_0000, 0x10_0000));
        assert_eq!(d.option_string().parse::<TceConfig>().unwrap(), d);
        assert_eq!(d.to_string(), d.option_string());
    }

    #[test]
    fn refusals() {
        let e = |s: &str| s.parse::<TceConfig>().unwrap_err();
        assert!(matches!(e("vtd"), TceConfigError::NotTce(_)));
        assert!(matches!(e("tce,eeh"), TceConfigError::MissingValue(_)));
        assert!(matches!(
            e("tce,eeh=freeze,eeh=report"),
            TceConfigError::Duplicate(_)
        ));
        assert!(matches!(e("tce,levels=3"), TceConfigError::UnknownKey(_)));
        assert!(matches!(e("tce,eeh=melt"), TceConfigError::BadValue { .. }));
        assert!(matches!(
            e("tce,page64=13"),
            TceConfigError::BadValue { .. }
        ));
        assert!(matches!(
            e("tce,pageshifts=12:99"),
            TceConfigError::BadValue { .. }
        ));
        assert_eq!(e("tce,pageshifts=16:21"), TceConfigError::No4K);
        assert_eq!(
            e("tce,pageshifts=12:16,page64=21"),
            TceConfigError::Page64NotOffered(21)
        );
        assert!(matches!(
            e("tce,pool=0x1001+0x1000"),
            TceConfigError::BadPool { .. }
        ));
        assert!(matches!(
            e("tce,pool=0x0+0x200000000"),
            TceConfigError::BadPool { .. }
        ));
        assert!(matches!(
            e("tce,pool=0xfffffffffffff000+0x2000"),
            TceConfigError::BadPool { .. }
        ));
        assert!(matches!(e("tce,pool=zz"), TceConfigError::BadValue { .. }));
    }

    #[test]
    fn normalized_fixes_everything() {
        let c = TceConfig {
            page_sizes: 1 << 16 | 1 << 13,
            page64_shift: 77,
            pool_base: 3,
            pool_size: 5,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let n = c.normalized();
        assert_eq!(n.validate(), Ok(()));
        assert_eq!(n.page_sizes, 1 << 12 | 1 << 16);
        assert_eq!(n.page64_shift, 16);
        assert_eq!((n.pool_base, n.pool_size), (0, 0));
    }
}
