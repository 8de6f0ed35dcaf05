//! Robustness: every configuration value and extreme address, and random descriptor bytes.

use super::tests::run;
use super::*;
use crate::mem::{DmaMemory, TestMemory};
use crate::request::Access;

#[test]
fn invalid_configs_and_extreme_values_never_panic() {
    let m = TestMemory::new(0x1_0000);
    for x in 0..0x1000u64 {
        m.write_u64(x * 8, x.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
            .unwrap();
    }
    let iovas = [
        0,
        1,
        0xfff,
        1 << 39,
        1 << 47,
        1 << 48,
        1 << 52,
        1 << 63,
        u64::MAX,
        u64::MAX - 0xfff,
    ];
    let ttbs = [0, 0x1000, 0xfff8, u64::MAX, u64::MAX - 7, 1 << 52, 1 << 63];
    for stage in [Stage::S1, Stage::S2] {
        for granule in [Granule::G4K, Granule::G16K, Granule::G64K] {
            for tsz in (0..=255u8)
                .step_by(3)
                .chain([11, 12, 16, 39, 40, 64, 65, 255])
            {
                for sl0 in [0, 1, 2, 3, 255] {
                    for oas_bits in [0, 32, 48, 52, 64, 255] {
                        for &ttb in &ttbs {
                            let c = WalkConfig {
                                stage,
                                ttb,
                                tsz,
                                granule,
                                sl0,
                                oas_bits,
                                affd: true,
                                ha: true,
                                hd: true,
                            };
                            let valid = c.validate().is_ok();
                            for &iova in &iovas {
                                match run(&m, &c, iova, Access::Write, true, Mode::Lookup) {
                                    Ok(o) => {
                                        assert!(valid);
                                        assert!(
                                            o.page_size.is_power_of_two()
                                                && o.output % o.page_size == 0
                                        );
                                    }
                                    Err(f) => {
                                        assert!(f.level <= 3 && f.steps.len() <= 4);
                                        if !valid {
                                            assert_eq!(
                                                (f.kind, f.level),
                                                (WalkFaultKind::Translation, 0)
                                            );
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// xorshift64*: a small deterministic PRNG.
struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_descriptors_never_panic() {
    const SIZE: u64 = 0x4_0000;
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let m = TestMemory::new(SIZE as usize);
    let mut outcomes = 0;
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..3000 {
        if round % 50 == 0 {
            // Fresh random memory, biased toward valid descriptors pointing inside it.
            for i in 0..SIZE / 8 {
                let r = rng.next();
                let addr = ((r >> 20) % SIZE) & !0xfff;
                let d = match r % 4 {
                    0 => r,
                    // Random attributes/AF, a table/page or block, an address inside the memory.
                    _ => (r & 0xfff8_0000_0000_0ffc) | addr | 1 | ((r >> 8) & 2),
                };
                m.write_u64(i * 8, d).unwrap();
            }
        }
        let r = rng.next();
        let granule = [Granule::G4K, Granule::G16K, Granule::G64K][(r % 3) as usize];
        let stage = if r & 8 != 0 { Stage::S1 } else { Stage::S2 };
        let c = WalkConfig {
            stage,
            ttb: (rng.next() % SIZE) & !0xfff,
            tsz: (16 + (r >> 8) % 24) as u8,
            granule,
            sl0: ((r >> 16) % 3) as u8,
            oas_bits: [32, 40, 48, 52][((r >> 20) % 4) as usize],
            affd: r & (1 << 24) != 0,
            ha: r & (1 << 25) != 0,
            hd: r & (1 << 26) != 0,
        };
        // Mostly inside the configured input range, sometimes anywhere.
        let iova = if r & (1 << 37) != 0 {
            rng.next() >> ((r >> 28) % 40)
        } else {
            rng.next() >> (64 - c.input_bits()).min(63)
        };
        let access = if r & (1 << 34) != 0 {
            Access::Write
        } else {
            Access::Read
        };
        let mode = if r & (1 << 35) != 0 {
            Mode::Lookup
        } else {
            Mode::Translate
        };
        let before = (mode == Mode::Lookup).then(|| {
            let mut v = vec![0; SIZE as usize];
            m.read(0, &mut v).unwrap();
            v
        });
        match run(&m, &c, iova, access, r & (1 << 36) != 0, mode) {
            Ok(o) => {
                outcomes += 1;
                assert!(o.page_size.is_power_of_two() && o.output % o.page_size == 0);
                assert!(o.output >> c.oas_bits == 0);
                assert!(o.perms.allows(access));
                assert_eq!(o.steps.last().map(|s| s.level), Some(o.level));
            }
            Err(f) => {
                assert!(f.level <= 3 && f.steps.len() <= 4);
                seen.insert(format!("{:?}", f.kind));
            }
        }
        if let Some(before) = before {
            let mut after = vec![0; SIZE as usize];
            m.read(0, &mut after).unwrap();
            assert!(before == after, "Lookup wrote memory");
        }
    }
    assert!(outcomes >= 50, "only {outcomes} random walks succeeded");
    let all = [
        "AccessFlag",
        "AddressSize",
        "ExternalAbort",
        "Permission",
        "Translation",
    ];
    assert_eq!(seen.iter().map(String::as_str).collect::<Vec<_>>(), all);
}
