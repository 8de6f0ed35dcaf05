//! The second-stage page-table walker (VT-d 4.x sections 3.7 and 9.8): 3, 4 or 5 levels of 512 x 8-byte
//! entries, 2 MiB / 1 GiB leaves where CAP.SLLPS allows, R/W intersected across levels.
//!
//! Bounded: at most [`MAX_LEVELS`] memory reads per walk whatever the tables contain (tables pointing at
//! themselves included), every read through [`DmaMemory`] so tables outside RAM fail cleanly. The walk
//! records each entry in a [`Trace`] (lookup mode) and blames the entry a fault is about.

use super::lookup::{self, decode, SecondStagePurpose, Structure, Trace};
use crate::mem::DmaMemory;
use crate::request::Perms;

/// Which translation a result comes from: first-stage only (PGTT 001b), second-stage only (legacy
/// mode, PGTT 010b) or nested (PGTT 011b, first stage over second stage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    First,
    Second,
    Nested,
}

/// The deepest table this model walks (5-level, 57-bit).
pub const MAX_LEVELS: u32 = 5;

/// What the walker needs to know about the tables and the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WalkConfig {
    /// Top-level table address.
    pub root: u64,
    /// 3, 4 or 5.
    pub levels: u32,
    /// Host address width: entry address bits 51:haw are reserved.
    pub haw: u32,
    pub large_2m: bool,
    pub large_1g: bool,
    /// ECAP.SC: bit 11 (SNP) is a valid field rather than reserved.
    pub snoop: bool,
}

/// A leaf: the naturally aligned page containing the input address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Leaf {
    pub page_shift: u32,
    pub output: u64,
    /// Permissions intersected over every level.
    pub perms: Perms,
}

impl Leaf {
    /// The output address of `input`, which this leaf maps.
    pub fn translate(&self, input: u64) -> u64 {
        self.output | (input & ((1u64 << self.page_shift) - 1))
    }
}

/// Why a walk stopped. `level` counts from the top (levels) down to 1 (4 KiB leaves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WalkFault {
    /// The entry could not be read; `top` if it was in the table named by the context/PASID entry.
    Access { level: u32, top: bool },
    /// R and W both clear.
    NotPresent { level: u32, perms: Perms },
    /// A reserved bit is set in a present entry.
    Reserved { level: u32 },
}

impl WalkFault {
    pub fn level(&self) -> u32 {
        match *self {
            WalkFault::Access { level, .. }
            | WalkFault::NotPresent { level, .. }
            | WalkFault::Reserved { level } => level,
        }
    }
}

/// Reserved bits of a second-stage entry at `level` (VT-d 4.x section 9.8, figures for SL-PML5E .. SL-PTE).
/// Bits 10:8 (A/D), 6:2 (X, EMT, IPAT without ECAP.SLEE/MTS), 61:52 and 63 are ignored; bit 62 and
/// address bits 51:HAW are reserved; bit 11 is reserved unless ECAP.SC; bit 7 (PS) is reserved in
/// SL-PML5E/SL-PML4E and in SL-PDPE/SL-PDE when the page size is not supported; a large leaf reserves
/// the address bits below its size.
pub(super) fn reserved_mask(cfg: &WalkConfig, level: u32, leaf_shift: Option<u32>) -> u64 {
    let haw = cfg.haw.min(52);
    let mut m = ((1u64 << 52) - 1) & !((1u64 << haw) - 1);
    m |= 1 << 62;
    if !cfg.snoop {
        m |= 1 << 11;
    }
    if level >= 4 {
        m |= 1 << 7;
    }
    if let Some(shift) = leaf_shift {
        if shift > 12 {
            m |= ((1u64 << shift) - 1) & !0xfff;
        }
    }
    m
}

/// Walks the second-stage table for `iova` (untraced). The caller checks the address width first.
#[cfg(test)]
pub(crate) fn walk(mem: &dyn DmaMemory, cfg: &WalkConfig, iova: u64) -> Result<Leaf, WalkFault> {
    walk_traced(
        mem,
        cfg,
        iova,
        &mut Trace::off(),
        SecondStagePurpose::Request,
    )
}

/// Walks the second-stage table for `input`, recording each entry read in `trace` (labelled with
/// `purpose`). The caller checks the address width first.
pub(crate) fn walk_traced(
    mem: &dyn DmaMemory,
    cfg: &WalkConfig,
    input: u64,
    trace: &mut Trace,
    purpose: SecondStagePurpose,
) -> Result<Leaf, WalkFault> {
    let levels = cfg.levels.clamp(1, MAX_LEVELS);
    let mut table = cfg.root & !0xfff;
    let mut perms = Perms {
        read: true,
        write: true,
        exec: false,
    };
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let index = (input >> shift) & 0x1ff;
        let address = table + index * 8;
        let structure = Structure::SecondStage {
            level,
            input,
            purpose,
        };
        let Ok(entry) = mem.read_u64(address) else {
            trace.unreadable(structure, address, index);
            return Err(WalkFault::Access {
                level,
                top: level == levels,
            });
        };
        trace.step(|| {
            lookup::step(
                structure,
                address,
                index,
                &[entry],
                decode::second_stage(entry, level),
            )
        });
        perms.read &= entry & 1 != 0;
        perms.write &= entry & 2 != 0;
        if entry & 3 == 0 {
            trace.blame();
            return Err(WalkFault::NotPresent { level, perms });
        }
        let ps = entry & (1 << 7) != 0;
        let is_leaf =
            level == 1 || (ps && ((level == 2 && cfg.large_2m) || (level == 3 && cfg.large_1g)));
        let leaf_shift = is_leaf.then_some(shift);
        // PS set where that page size is not supported is reserved too.
        if (ps && level > 1 && !is_leaf) || entry & reserved_mask(cfg, level, leaf_shift) != 0 {
            trace.blame();
            return Err(WalkFault::Reserved { level });
        }
        let addr = entry & 0x000f_ffff_ffff_f000;
        if is_leaf {
            return Ok(Leaf {
                page_shift: shift,
                output: addr & !((1u64 << shift) - 1),
                perms,
            });
        }
        table = addr;
    }
    // Unreachable: level 1 is always a leaf.
    Err(WalkFault::Reserved { level: 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::TestMemory;

    fn cfg(root: u64, levels: u32) -> WalkConfig {
        WalkConfig {
            root,
            levels,
            haw: 48,
            large_2m: true,
            large_1g: true,
            snoop: true,
        }
    }

    #[test]
    fn four_level_4k_2m_1g() {
        let m = TestMemory::new(0x10_0000);
        // L4 @0x1000 -> L3 @0x2000 -> L2 @0x3000 -> L1 @0x4000
        m.write_u64(0x1000, 0x2003).unwrap();
        m.write_u64(0x2000, 0x3003).unwrap();
        m.write_u64(0x3000, 0x4003).unwrap();
        m.write_u64(0x4000 + 5 * 8, 0x8_1000 | 1 | 1 << 11).unwrap(); // read-only + SNP
        let leaf = walk(&m, &cfg(0x1000, 4), 0x5123).unwrap();
        assert_eq!(leaf.page_shift, 12);
        assert_eq!(leaf.output, 0x8_1000);
        assert!(leaf.perms.read && !leaf.perms.write);
        // 2 MiB leaf at L2 index 1, 1 GiB leaf at L3 index 1.
        m.write_u64(0x3008, 0x4000_0000 | 0x83).unwrap();
        let l2 = walk(&m, &cfg(0x1000, 4), 0x2f_f0f0).unwrap();
        assert_eq!((l2.page_shift, l2.output), (21, 0x4000_0000));
        m.write_u64(0x2008, 0x8000_0000 | 0x83).unwrap();
        let l3 = walk(&m, &cfg(0x1000, 4), 0x7fff_ffff).unwrap();
        assert_eq!((l3.page_shift, l3.output), (30, 0x8000_0000));
        // Misaligned large-page address: reserved.
        m.write_u64(0x3010, 0x4010_0000 | 0x83).unwrap();
        assert_eq!(
            walk(&m, &cfg(0x1000, 4), 0x40_0000),
            Err(WalkFault::Reserved { level: 2 })
        );
    }

    #[test]
    fn faults_and_permissions() {
        let m = TestMemory::new(0x10_0000);
        m.write_u64(0x1000, 0x2001).unwrap(); // L3 (top of 3 levels) read-only
        m.write_u64(0x2000, 0x3003).unwrap();
        m.write_u64(0x3000, 0x9003).unwrap();
        let leaf = walk(&m, &cfg(0x1000, 3), 0x0).unwrap();
        assert!(leaf.perms.read && !leaf.perms.write, "W clear at the top");
        assert_eq!(
            walk(&m, &cfg(0x1000, 3), 0x1000),
            Err(WalkFault::NotPresent {
                level: 1,
                perms: Perms {
                    read: false,
                    write: false,
                    exec: false
                }
            })
        );
        assert_eq!(
            walk(&m, &cfg(0x20_0000, 3), 0),
            Err(WalkFault::Access {
                level: 3,
                top: true
            })
        );
        m.write_u64(0x3008, 0xfff_0000_0003).unwrap(); // leaf outside RAM is fine for the walker
        assert!(walk(&m, &cfg(0x1000, 3), 0x1000).is_ok());
        m.write_u64(0x2008, 0x30_0003).unwrap(); // next table outside RAM
        assert_eq!(
            walk(&m, &cfg(0x1000, 3), 0x20_0000),
            Err(WalkFault::Access {
                level: 1,
                top: false
            })
        );
        // Address above HAW 48, bit 62, PS at L4.
        m.write_u64(0x3010, 1 << 48 | 0x3).unwrap();
        assert_eq!(
            walk(&m, &cfg(0x1000, 3), 0x2000),
            Err(WalkFault::Reserved { level: 1 })
        );
        m.write_u64(0x3018, 1 << 62 | 0x3).unwrap();
        assert_eq!(
            walk(&m, &cfg(0x1000, 3), 0x3000),
            Err(WalkFault::Reserved { level: 1 })
        );
        let mut c4 = cfg(0x5000, 4);
        m.write_u64(0x5000, 0x1083).unwrap();
        assert_eq!(walk(&m, &c4, 0), Err(WalkFault::Reserved { level: 4 }));
        // PS at L3 without 1 GiB support, SNP without SC.
        c4.large_1g = false;
        m.write_u64(0x5000, 0x6003).unwrap();
        m.write_u64(0x6000, 0x83).unwrap();
        assert_eq!(walk(&m, &c4, 0), Err(WalkFault::Reserved { level: 3 }));
        let mut nosc = cfg(0x1000, 3);
        nosc.snoop = false;
        m.write_u64(0x3000, 0x9003 | 1 << 11).unwrap();
        assert_eq!(walk(&m, &nosc, 0), Err(WalkFault::Reserved { level: 1 }));
    }

    #[test]
    fn traced_walk_records_every_entry_and_blames_the_bad_one() {
        let m = TestMemory::new(0x10_0000);
        // L3 @0x1000 -> L2 @0x2000, whose index 1 is a 2 MiB leaf.
        m.write_u64(0x1000, 0x2003).unwrap();
        m.write_u64(0x2008, 0x4000_0083).unwrap();
        let mut t = Trace::on();
        let leaf = walk_traced(
            &m,
            &cfg(0x1000, 3),
            0x2a_b123,
            &mut t,
            SecondStagePurpose::FirstStageOutput,
        )
        .unwrap();
        assert_eq!(leaf.translate(0x2a_b123), 0x400a_b123);
        let (steps, blamed) = t.finish_for_tests();
        assert_eq!(blamed, None);
        let got: Vec<(u64, u64, u64)> = steps
            .iter()
            .map(|s| (s.address, s.index, s.entry[0]))
            .collect();
        assert_eq!(got, vec![(0x1000, 0, 0x2003), (0x2008, 1, 0x4000_0083)]);
        assert_eq!(
            steps[1].structure,
            Structure::SecondStage {
                level: 2,
                input: 0x2a_b123,
                purpose: SecondStagePurpose::FirstStageOutput
            }
        );
        assert!(steps[1].decoded.contains("PS") && steps[1].decoded.contains("0x40000000"));
        // A not-present entry and an unreadable table are blamed.
        let mut t = Trace::on();
        assert!(walk_traced(
            &m,
            &cfg(0x1000, 3),
            0x40_0000,
            &mut t,
            SecondStagePurpose::Request
        )
        .is_err());
        let (steps, blamed) = t.finish_for_tests();
        assert_eq!((steps.len(), blamed), (2, Some(1)));
        let mut t = Trace::on();
        assert!(walk_traced(
            &m,
            &cfg(0x20_0000, 3),
            0,
            &mut t,
            SecondStagePurpose::Request
        )
        .is_err());
        let (steps, blamed) = t.finish_for_tests();
        assert_eq!((steps.len(), blamed), (1, Some(0)));
        assert!(steps[0].entry.is_empty());
    }

    #[test]
    fn self_referencing_tables_are_bounded() {
        let m = TestMemory::new(0x2000);
        // Every entry points back at the same table: the walk ends at level 1 with a "leaf".
        for i in 0..512u64 {
            m.write_u64(0x1000 + i * 8, 0x1003).unwrap();
        }
        let leaf = walk(&m, &cfg(0x1000, 5), u64::MAX >> 7).unwrap();
        assert_eq!((leaf.page_shift, leaf.output), (12, 0x1000));
    }
}
