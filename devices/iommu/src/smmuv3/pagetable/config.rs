//! One stage's translation regime and its validity rules: granule encodings (IHI0070 §5.4 CD.TG0/TG1,
//! §5.2 STE.S2TG), input-size limits (§5.4 CD.T0SZ, §5.2 STE.S2T0SZ) and the stage-2 starting level
//! (§5.2 STE.S2SL0, which defers to the Arm ARM's VTCR_EL2.SL0 rules: AArch64.S2StartLevel,
//! AArch64.S2InvalidSL and AArch64.S2InconsistentSL).

use serde::Serialize;
use thiserror::Error;

use super::Stage;

/// Smallest TxSZ the model accepts (48-bit input: IDR5.VAX = 0, no LPA2), IHI0070 §5.4 CD.T0SZ.
pub const MIN_TSZ: u8 = 16;
/// Largest TxSZ the model accepts: 39 while SMMU_IDR3.STT == 0 (IHI0070 §5.4 CD.T0SZ, §5.2 S2T0SZ).
pub const MAX_TSZ: u8 = 39;
/// Smallest S2T0SZ with the 64K granule (52-bit IPA, FEAT_LPA): IHI0070 §5.2 STE.S2T0SZ "otherwise
/// MAX(12, 64 - IAS)"; the caller applies the IAS bound.
const MIN_S2_TSZ_64K: u8 = 12;

/// Translation granule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Granule {
    G4K,
    G16K,
    G64K,
}

impl Granule {
    /// CD.TG0 encoding: 0b00 4K, 0b01 64K, 0b10 16K, 0b11 reserved.
    pub fn from_tg0(tg0: u8) -> Option<Granule> {
        match tg0 {
            0 => Some(Granule::G4K),
            1 => Some(Granule::G64K),
            2 => Some(Granule::G16K),
            _ => None,
        }
    }

    /// CD.TG1 encoding: 0b00 reserved, 0b01 16K, 0b10 4K, 0b11 64K.
    pub fn from_tg1(tg1: u8) -> Option<Granule> {
        match tg1 {
            1 => Some(Granule::G16K),
            2 => Some(Granule::G4K),
            3 => Some(Granule::G64K),
            _ => None,
        }
    }

    /// STE.S2TG encoding: the same as CD.TG0.
    pub fn from_s2tg(s2tg: u8) -> Option<Granule> {
        Self::from_tg0(s2tg)
    }

    /// log2 of the page size: 12, 14 or 16.
    pub fn page_shift(self) -> u32 {
        match self {
            Granule::G4K => 12,
            Granule::G16K => 14,
            Granule::G64K => 16,
        }
    }

    pub fn page_size(self) -> u64 {
        1 << self.page_shift()
    }

    /// Input bits one full table resolves (8-byte descriptors): 9, 11 or 13.
    pub fn stride(self) -> u32 {
        self.page_shift() - 3
    }

    /// log2 of the region one entry at `level` (0..=3) maps: 4K 39/30/21/12, 16K 47/36/25/14,
    /// 64K 55/42/29/16.
    pub fn level_shift(self, level: u8) -> u32 {
        self.page_shift() + self.stride() * 3u32.saturating_sub(u32::from(level))
    }

    /// Whether a block descriptor is allowed at `level` (Arm ARM AArch64.BlockDescSupported without
    /// DS/D128): 4K at levels 1 and 2, 16K at level 2, 64K at level 2 and, with 52-bit PAs (FEAT_LPA),
    /// level 1.
    pub fn block_allowed(self, level: u8, lpa: bool) -> bool {
        match self {
            Granule::G4K => level == 1 || level == 2,
            Granule::G16K => level == 2,
            Granule::G64K => level == 2 || (level == 1 && lpa),
        }
    }
}

/// A configuration the walker refuses: the caller raises C_BAD_CD (stage 1) or C_BAD_STE (stage 2).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq, Serialize)]
pub enum ConfigError {
    #[error("output size {0} bits is outside 32..=52")]
    OutputSize(u8),
    #[error("TxSZ {tsz} is outside {min}..={max}")]
    InputSize { tsz: u8, min: u8, max: u8 },
    #[error("S2SL0 {sl0} is reserved with the {granule:?} granule")]
    ReservedSl0 { granule: Granule, sl0: u8 },
    #[error("S2SL0 {sl0} with the {granule:?} granule needs a PA size of at least {needs} bits")]
    Sl0NeedsLargerPa {
        granule: Granule,
        sl0: u8,
        needs: u8,
    },
    #[error("S2T0SZ {tsz} is inconsistent with S2SL0 {sl0} and the {granule:?} granule")]
    Sl0Inconsistent { granule: Granule, sl0: u8, tsz: u8 },
}

/// One stage's translation regime, decoded from a CD (stage 1) or an STE (stage 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WalkConfig {
    pub stage: Stage,
    /// Table base (an IPA for a nested stage 1, a PA otherwise), already masked/aligned per spec.
    pub ttb: u64,
    /// T0SZ/T1SZ or S2T0SZ: the input range is 2^(64 - tsz).
    pub tsz: u8,
    pub granule: Granule,
    /// S2SL0 (stage 2 only).
    pub sl0: u8,
    /// Effective output size: CD.IPS / STE.S2PS capped by SMMU_IDR5.OAS.
    pub oas_bits: u8,
    /// Access-flag fault disable (CD.AFFD / STE.S2AFFD); ignored when `ha`.
    pub affd: bool,
    /// Hardware Access-flag update (already ANDed with IDR0.HTTU).
    pub ha: bool,
    /// Hardware dirty-state update (already ANDed with IDR0.HTTU); only with `ha` (HA=0, HD=1 behaves
    /// as both 0: IHI0070 §5.2 STE.S2HA, §5.4 CD.HA).
    pub hd: bool,
}

impl WalkConfig {
    /// Input address bits: 64 - tsz (0 if tsz > 64).
    pub fn input_bits(&self) -> u32 {
        64u32.saturating_sub(u32::from(self.tsz))
    }

    /// Whether descriptors carry OA[51:48] (64K granule with 52-bit output, FEAT_LPA).
    pub fn lpa(&self) -> bool {
        self.granule == Granule::G64K && self.oas_bits >= 52
    }

    /// Checks the configuration and returns the starting level. `oas_bits` stands in for PAMax in the
    /// stage-2 SL0 rules (exact when S2PS >= OAS, as Linux programs it); see [`Self::validate_with_pa_max`].
    pub fn validate(&self) -> Result<u8, ConfigError> {
        self.validate_with_pa_max(self.oas_bits)
    }

    /// Checks the configuration against an SMMU whose OAS (the Arm ARM's PAMax) is `pa_max_bits` and
    /// returns the starting level.
    pub fn validate_with_pa_max(&self, pa_max_bits: u8) -> Result<u8, ConfigError> {
        if !(32..=52).contains(&self.oas_bits) {
            return Err(ConfigError::OutputSize(self.oas_bits));
        }
        let min = match (self.stage, self.granule) {
            (Stage::S2, Granule::G64K) => MIN_S2_TSZ_64K,
            _ => MIN_TSZ,
        };
        if !(min..=MAX_TSZ).contains(&self.tsz) {
            return Err(ConfigError::InputSize {
                tsz: self.tsz,
                min,
                max: MAX_TSZ,
            });
        }
        let ias = self.input_bits();
        let (pg, stride) = (self.granule.page_shift(), self.granule.stride());
        match self.stage {
            // Enough levels to resolve ias - pg bits, `stride` per level (Arm ARM AArch64.S1StartLevel).
            Stage::S1 => {
                let levels = (ias - pg).div_ceil(stride);
                Ok(4u32.saturating_sub(levels) as u8)
            }
            Stage::S2 => {
                let start = self.s2_start_level(pa_max_bits)?;
                // AArch64.S2InconsistentSL: the start level must resolve at least one input bit, and
                // at most one full table plus 16 concatenated tables' worth (4 more bits).
                let below = u32::from(3 - start) * stride;
                let min_ias = below + pg + 1;
                let max_ias = min_ias + (stride - 1) + 4;
                if !(min_ias..=max_ias).contains(&ias) {
                    return Err(ConfigError::Sl0Inconsistent {
                        granule: self.granule,
                        sl0: self.sl0,
                        tsz: self.tsz,
                    });
                }
                Ok(start)
            }
        }
    }

    /// STE.S2SL0 -> starting level (Arm ARM AArch64.S2StartLevel / AArch64.S2InvalidSL, no DS, no
    /// small-translation-table extension).
    fn s2_start_level(&self, pa_max_bits: u8) -> Result<u8, ConfigError> {
        let reserved = ConfigError::ReservedSl0 {
            granule: self.granule,
            sl0: self.sl0,
        };
        let needs = |bits: u8, level: u8| {
            if pa_max_bits < bits {
                Err(ConfigError::Sl0NeedsLargerPa {
                    granule: self.granule,
                    sl0: self.sl0,
                    needs: bits,
                })
            } else {
                Ok(level)
            }
        };
        match (self.granule, self.sl0) {
            (Granule::G4K, 0) => Ok(2),
            (Granule::G4K, 1) => Ok(1),
            (Granule::G4K, 2) => needs(44, 0),
            // 4K SL0 = 3 (level 3) needs FEAT_TTST; 16K SL0 = 3 (level 0) needs DS.
            (Granule::G16K, 0) | (Granule::G64K, 0) => Ok(3),
            (Granule::G16K, 1) | (Granule::G64K, 1) => Ok(2),
            (Granule::G16K, 2) => needs(42, 1),
            (Granule::G64K, 2) => needs(44, 1),
            _ => Err(reserved),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s1(granule: Granule, tsz: u8) -> WalkConfig {
        WalkConfig {
            stage: Stage::S1,
            ttb: 0,
            tsz,
            granule,
            sl0: 0,
            oas_bits: 48,
            affd: false,
            ha: false,
            hd: false,
        }
    }

    fn s2(granule: Granule, tsz: u8, sl0: u8) -> WalkConfig {
        WalkConfig {
            stage: Stage::S2,
            sl0,
            ..s1(granule, tsz)
        }
    }

    #[test]
    fn granule_encodings() {
        assert_eq!(Granule::from_tg0(0), Some(Granule::G4K));
        assert_eq!(Granule::from_tg0(1), Some(Granule::G64K));
        assert_eq!(Granule::from_tg0(2), Some(Granule::G16K));
        assert_eq!(Granule::from_tg0(3), None);
        assert_eq!(Granule::from_tg1(0), None);
        assert_eq!(Granule::from_tg1(1), Some(Granule::G16K));
        assert_eq!(Granule::from_tg1(2), Some(Granule::G4K));
        assert_eq!(Granule::from_tg1(3), Some(Granule::G64K));
        assert_eq!(Granule::from_s2tg(1), Some(Granule::G64K));
        assert_eq!(Granule::from_s2tg(0xff), None);
        assert_eq!(Granule::G4K.level_shift(0), 39);
        assert_eq!(Granule::G16K.level_shift(0), 47);
        assert_eq!(Granule::G64K.level_shift(1), 42);
        assert_eq!(Granule::G64K.level_shift(3), 16);
    }

    #[test]
    fn stage1_start_levels() {
        use Granule::*;
        for (g, tsz, level) in [
            (G4K, 16, 0),
            (G4K, 24, 0),
            (G4K, 25, 1),
            (G4K, 33, 1),
            (G4K, 34, 2),
            (G4K, 39, 2),
            (G16K, 16, 0),
            (G16K, 17, 1),
            (G16K, 27, 1),
            (G16K, 28, 2),
            (G16K, 38, 2),
            (G16K, 39, 3),
            (G64K, 16, 1),
            (G64K, 21, 1),
            (G64K, 22, 2),
            (G64K, 34, 2),
            (G64K, 35, 3),
            (G64K, 39, 3),
        ] {
            assert_eq!(s1(g, tsz).validate(), Ok(level), "{g:?} tsz {tsz}");
        }
    }

    #[test]
    fn stage1_rejects_out_of_range_tsz_and_oas() {
        for tsz in [0, 12, 15, 40, 48, 63, 64, 200, 255] {
            assert_eq!(
                s1(Granule::G4K, tsz).validate(),
                Err(ConfigError::InputSize {
                    tsz,
                    min: 16,
                    max: 39
                })
            );
        }
        // No VAX: 64K stage 1 is 48-bit too.
        assert!(s1(Granule::G64K, 12).validate().is_err());
        for oas in [0, 31, 53, 255] {
            let c = WalkConfig {
                oas_bits: oas,
                ..s1(Granule::G4K, 25)
            };
            assert_eq!(c.validate(), Err(ConfigError::OutputSize(oas)));
        }
    }

    #[test]
    fn stage2_sl0_and_concatenation() {
        use Granule::*;
        // (granule, sl0, tsz range accepted, start level)
        for (g, sl0, lo, hi, level) in [
            (G4K, 0, 30, 39, 2),  // ias 25..=34: L2, up to 16 tables at 34
            (G4K, 1, 21, 33, 1),  // ias 31..=43
            (G4K, 2, 16, 24, 0),  // ias 40..=48
            (G16K, 0, 35, 39, 3), // ias 25..=29
            (G16K, 1, 24, 38, 2), // ias 26..=40
            (G16K, 2, 16, 27, 1), // ias 37..=48
            (G64K, 0, 31, 39, 3), // ias 25..=33
            (G64K, 1, 18, 34, 2), // ias 30..=46
            (G64K, 2, 12, 21, 1), // ias 43..=52
        ] {
            for tsz in 0..=70u8 {
                let mut c = s2(g, tsz, sl0);
                c.oas_bits = 52;
                let ok = (lo..=hi).contains(&tsz);
                assert_eq!(
                    c.validate().ok(),
                    ok.then_some(level),
                    "{g:?} sl0 {sl0} tsz {tsz}"
                );
            }
        }
    }

    #[test]
    fn stage2_reserved_sl0_and_pa_max() {
        use Granule::*;
        for g in [G4K, G16K, G64K] {
            for sl0 in [3, 4, 0xff] {
                assert_eq!(
                    s2(g, 25, sl0).validate(),
                    Err(ConfigError::ReservedSl0 { granule: g, sl0 })
                );
            }
        }
        // Level-0 (4K) / level-1 (16K, 64K) starts need PAMax >= 44 / 42 / 44.
        let c = WalkConfig {
            oas_bits: 40,
            ..s2(G4K, 16, 2)
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::Sl0NeedsLargerPa {
                granule: G4K,
                sl0: 2,
                needs: 44
            })
        );
        assert_eq!(c.validate_with_pa_max(48), Ok(0));
        let c = WalkConfig {
            oas_bits: 42,
            ..s2(G16K, 20, 2)
        };
        assert_eq!(c.validate(), Ok(1));
        let c = WalkConfig {
            oas_bits: 42,
            ..s2(G64K, 20, 2)
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Sl0NeedsLargerPa { needs: 44, .. })
        ));
        // 64K stage 2 goes down to tsz 12 (52-bit IPA); 4K/16K do not.
        assert_eq!(s2(G64K, 12, 2).validate(), Ok(1));
        assert!(s2(G4K, 12, 2).validate().is_err());
        assert!(s2(G64K, 11, 2).validate().is_err());
    }
}
