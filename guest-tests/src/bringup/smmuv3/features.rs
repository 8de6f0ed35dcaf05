//! What the ID registers advertise (arm_smmu_device_hw_probe), decoded once per bring-up.

use super::super::backend::Backend;
use super::regs::*;

/// Decoded IDR0/1/3/5.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub idr: [u32; 6],
    pub s1: bool,
    pub s2: bool,
    pub two_level_strtab: bool,
    pub cd2l: bool,
    pub msi: bool,
    pub pri: bool,
    pub ats: bool,
    pub hyp: bool,
    pub httu: u8,
    pub asid16: bool,
    pub vmid16: bool,
    /// IDR0.TTF: 2 = AArch64, 3 = both.
    pub ttf: u8,
    pub sid_bits: u32,
    pub ssid_bits: u32,
    pub cmdq_log2: u32,
    pub evtq_log2: u32,
    pub priq_log2: u32,
    pub ril: bool,
    pub oas_bits: u8,
    pub gran4k: bool,
    pub gran16k: bool,
    pub gran64k: bool,
}

impl Features {
    /// Decodes register values IDR0..=IDR5.
    pub fn decode(idr: [u32; 6]) -> Result<Features, String> {
        let [i0, i1, _i2, i3, _i4, i5] = idr;
        let f = |v: u32, shift: u32, bits: u32| (v >> shift) & ((1 << bits) - 1);
        let oas_bits = idr5::oas_bits(i5 & idr5::OAS_MASK)
            .ok_or_else(|| format!("IDR5.OAS {} is reserved", i5 & idr5::OAS_MASK))?;
        let feat = Features {
            idr,
            s1: i0 & idr0::S1P != 0,
            s2: i0 & idr0::S2P != 0,
            two_level_strtab: f(i0, idr0::ST_LEVEL_SHIFT, 2) == 1,
            cd2l: i0 & idr0::CD2L != 0,
            msi: i0 & idr0::MSI != 0,
            pri: i0 & idr0::PRI != 0,
            ats: i0 & idr0::ATS != 0,
            hyp: i0 & idr0::HYP != 0,
            httu: f(i0, idr0::HTTU_SHIFT, 2) as u8,
            asid16: i0 & idr0::ASID16 != 0,
            vmid16: i0 & idr0::VMID16 != 0,
            ttf: f(i0, idr0::TTF_SHIFT, 2) as u8,
            sid_bits: f(i1, idr1::SIDSIZE_SHIFT, 6),
            ssid_bits: f(i1, idr1::SSIDSIZE_SHIFT, 5),
            cmdq_log2: f(i1, idr1::CMDQS_SHIFT, 5),
            evtq_log2: f(i1, idr1::EVTQS_SHIFT, 5),
            priq_log2: f(i1, idr1::PRIQS_SHIFT, 5),
            ril: i3 & idr3::RIL != 0,
            oas_bits,
            gran4k: i5 & idr5::GRAN4K != 0,
            gran16k: i5 & idr5::GRAN16K != 0,
            gran64k: i5 & idr5::GRAN64K != 0,
        };
        // Linux refuses these (arm_smmu_device_hw_probe).
        if !feat.s1 && !feat.s2 {
            return Err("IDR0: neither stage 1 nor stage 2 implemented".into());
        }
        if feat.ttf & 2 == 0 {
            return Err(format!("IDR0.TTF {} lacks AArch64 tables", feat.ttf));
        }
        if i1 & (idr1::TABLES_PRESET | idr1::QUEUES_PRESET | idr1::REL) != 0 {
            return Err(format!(
                "IDR1 {i1:#x}: embedded implementation (preset tables/queues) not supported"
            ));
        }
        if feat.cmdq_log2 < 5 {
            return Err(format!(
                "IDR1.CMDQS {} is below Linux's minimum 5",
                feat.cmdq_log2
            ));
        }
        if feat.sid_bits > 32 || feat.ssid_bits > 20 {
            return Err(format!(
                "IDR1 SIDSIZE {} / SSIDSIZE {} out of range",
                feat.sid_bits, feat.ssid_bits
            ));
        }
        if !(feat.gran4k || feat.gran16k || feat.gran64k) {
            return Err("IDR5: no translation granule".into());
        }
        Ok(feat)
    }

    /// Reads and decodes the ID registers.
    pub fn read(b: &mut dyn Backend) -> Result<Features, String> {
        let mut idr = [0u32; 6];
        for (i, v) in idr.iter_mut().enumerate() {
            *v = b.mmio_read32(IDR0 + 4 * i as u64);
        }
        Self::decode(idr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_typical_smmu() {
        let i0 = idr0::S1P
            | idr0::S2P
            | (2 << idr0::TTF_SHIFT)
            | (1 << idr0::ST_LEVEL_SHIFT)
            | idr0::MSI
            | (2 << idr0::HTTU_SHIFT)
            | idr0::CD2L;
        let i1 = 16
            | (20 << idr1::SSIDSIZE_SHIFT)
            | (19 << idr1::EVTQS_SHIFT)
            | (19 << idr1::CMDQS_SHIFT);
        let i5 = 5 | idr5::GRAN4K | idr5::GRAN64K;
        let f = Features::decode([i0, i1, 0, idr3::RIL, 0, i5]).unwrap();
        assert!(f.s1 && f.s2 && f.two_level_strtab && f.msi && f.cd2l && f.ril);
        assert_eq!(
            (f.sid_bits, f.ssid_bits, f.cmdq_log2, f.evtq_log2),
            (16, 20, 19, 19)
        );
        assert_eq!((f.oas_bits, f.httu), (48, 2));
        assert!(f.gran4k && f.gran64k && !f.gran16k);
        assert!(Features::decode([0, i1, 0, 0, 0, i5]).is_err(), "no stages");
        assert!(
            Features::decode([i0, i1, 0, 0, 0, 7]).is_err(),
            "reserved OAS"
        );
        assert!(Features::decode([i0, i1 | idr1::QUEUES_PRESET, 0, 0, 0, i5]).is_err());
    }
}
