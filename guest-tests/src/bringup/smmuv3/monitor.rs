//! The SMMUv3 side of the live monitor check: a **nested** stream for the test device (STE Config 0b111, a CD
//! table and 4-level 4K stage-1 tables addressed by IPA, stage 2 mapping the driver's RAM window at
//! [`IPA_BASE`]), whose one stage-1 leaf has AF=0 while the CD enables hardware access-flag updates (CD.HA,
//! IHI0070 §5.4 and §3.13: a real translation sets AF). The guest prints the walk it expects and waits while the
//! runner asks the VMM's monitor for the same walk; afterwards [`Nested::check_unchanged`] proves the monitor's
//! lookup wrote nothing (every byte the driver owns is as before, AF still 0) and [`Nested::dma_sets_af`] that a
//! real DMA through the same IOVA works and does set AF, and nothing else.

use super::super::alloc::zalloc;
use super::super::pgtable::{Granule, PageTable, Perm, Stage};
use super::super::testdev::{self, pattern_byte};
use super::driver::{cd_for, ste_nested, Driver};
use super::regs::{cd, ste, strtab};

/// IPA at which stage 2 maps the driver's RAM window (2 MiB blocks).
pub const IPA_BASE: u64 = 0x4000_0000;
/// The IOVA the monitor walks: a non-zero index at every stage-1 level.
pub const IOVA_PAGE: u64 = 0x5ab4_c3d5_e000;
/// Offset of the checked address inside the page.
pub const OFFSET: u64 = 0x2a8;
/// The SubstreamID used when the SMMU has substreams.
pub const SSID: u32 = 5;
/// log2 of the CD table's entries when substreams are used.
const CD_BITS: u32 = 3;
/// ASID and VMID of the stream.
const ASID: u16 = 0x4d;
const VMID: u16 = 0x4e;
/// The access flag of a VMSAv8-64 descriptor (bit 10).
pub const AF: u64 = 1 << 10;
const PAGE: u64 = 0x1000;
/// What the DMA after the walk writes.
const PATTERN: u64 = 0x6d6f_6e69_746f_7233;

/// A nested stream as installed, with everything the check needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nested {
    pub sid: u32,
    /// The SubstreamID the stream is walked with (`None`: the SMMU has no substreams, S1CDMax 0).
    pub ssid: Option<u32>,
    /// The IOVA to walk.
    pub iova: u64,
    /// The IPA stage 1 maps it to, and the PA stage 2 maps that to (what the walk must output).
    pub ipa: u64,
    pub output: u64,
    /// Stage-1 levels the walk reads.
    pub levels: u32,
    /// Whether the CD enables hardware AF updates (the leaf then has AF=0).
    pub hardware_af: bool,
    /// Physical address and value of the stage-1 leaf descriptor.
    pub leaf_pa: u64,
    pub leaf: u64,
    /// Named structures of the walk: (what, physical address, bytes).
    pub named: Vec<(String, u64, u64)>,
    /// The page behind the IOVA.
    pub target: u64,
    /// `[base, base + len)`: everything the driver has written (tables, queues, buffers).
    pub region: (u64, u64),
}

/// The IPS / PS the driver programs (at most 48 bits: no 52-bit tables here).
fn out_bits(d: &Driver) -> u8 {
    d.feat.oas_bits.min(48)
}

impl Nested {
    /// Installs the nested stream for the test device on a brought-up SMMU (no DMA, no translation yet).
    pub fn install(d: &mut Driver) -> Result<Nested, String> {
        if !(d.feat.s1 && d.feat.s2) {
            return Err("nesting needs both stages (IDR0.S1P and S2P)".into());
        }
        let sid = d.b.testdev_sid();
        let base = d.b.mem_base();
        let size = d.b.mem_size();
        let off = IPA_BASE.wrapping_sub(base);
        // Stage 2: the whole window at IPA_BASE, read/write, AF already set (no S2HA).
        let bits = out_bits(d);
        let s2 = PageTable::new(
            &mut *d.b,
            &mut d.alloc,
            Stage::S2,
            Granule::K4,
            u32::from(bits),
            0,
        )?;
        let mut o = 0;
        while o < size {
            s2.map(
                &mut *d.b,
                &mut d.alloc,
                IPA_BASE + o,
                base + o,
                2 << 20,
                Perm::ReadWrite,
            )?;
            o += 2 << 20;
        }
        // Stage 1 (48-bit input: 4 levels from L0) and the CD table, both given to the SMMU as IPAs.
        let s1 = PageTable::new(&mut *d.b, &mut d.alloc, Stage::S1, Granule::K4, 48, off)?;
        let ssid = (d.feat.ssid_bits > 0).then_some(SSID);
        let cd_bits = if ssid.is_some() {
            CD_BITS.min(d.feat.ssid_bits)
        } else {
            0
        };
        let ssid = ssid.map(|s| s & ((1 << cd_bits) - 1));
        let mut cdt = d.new_cd_table(cd_bits, false, off)?;
        let target = zalloc(&mut *d.b, &mut d.alloc, PAGE, PAGE)?;
        let leaf_pa = s1.map(
            &mut *d.b,
            &mut d.alloc,
            IOVA_PAGE,
            target + off,
            PAGE,
            Perm::ReadWrite,
        )?;
        // HTTU (IDR0.HTTU >= 1): CD.HA on and the leaf's AF clear, so a real translation must set it.
        let hardware_af = d.feat.httu >= 1;
        let mut words = cd_for(&s1, ASID, out_bits(d));
        if hardware_af {
            words[0] |= cd::HA;
            let leaf = d.b.mem_read_u64(leaf_pa)? & !AF;
            d.b.mem_write_u64(leaf_pa, leaf)?;
        }
        let cd_pa = d.write_cd(&mut cdt, ssid.unwrap_or(0), &words)?;
        let ste_pa = d.ste_addr(sid)?;
        d.install_ste(
            sid,
            &ste_nested(&cdt, ste::S1DSS_TERMINATE, &s2, VMID, out_bits(d)),
            true,
        )?;
        // The driver's own answer: stage 1 to an IPA, stage 2 to the PA.
        let iova = IOVA_PAGE + OFFSET;
        let ipa = s1
            .walk(&mut *d.b, iova)?
            .ok_or_else(|| format!("stage 1 does not map {iova:#x}"))?;
        let output = s2
            .walk(&mut *d.b, ipa)?
            .ok_or_else(|| format!("stage 2 does not map IPA {ipa:#x}"))?;
        if output != target + OFFSET {
            return Err(format!(
                "the tables map {iova:#x} to {output:#x} (IPA {ipa:#x}), the buffer is at {:#x}",
                target + OFFSET
            ));
        }
        let mut named = vec![
            ("STE".to_string(), ste_pa, strtab::STE_SIZE),
            ("CD".to_string(), cd_pa, cd::SIZE),
            (
                "stage-1 L0".into(),
                s1.root + 8 * ((IOVA_PAGE >> s1.level_shift(0)) & 0x1ff),
                8,
            ),
        ];
        for (level, size) in [(1u32, 1u64 << 30), (2, 2 << 20)] {
            let (pa, l) = s1.slot(&mut *d.b, &mut d.alloc, IOVA_PAGE, size)?;
            if l != level {
                return Err(format!("stage-1 slot for {size:#x} is at L{l}"));
            }
            named.push((format!("stage-1 L{level}"), pa, 8));
        }
        named.push(("stage-1 L3 (leaf)".into(), leaf_pa, 8));
        let leaf = d.b.mem_read_u64(leaf_pa)?;
        Ok(Nested {
            sid,
            ssid,
            iova,
            ipa,
            output,
            levels: s1.levels(),
            hardware_af,
            leaf_pa,
            leaf,
            named,
            target,
            region: (base, d.alloc.used()),
        })
    }

    /// Every byte the driver has written so far.
    pub fn snapshot(&self, d: &mut Driver) -> Result<Vec<u8>, String> {
        let mut v = vec![0u8; self.region.1 as usize];
        d.b.mem_read(self.region.0, &mut v)?;
        Ok(v)
    }

    /// The name of the descriptor at `pa`, if it is one of the walk's.
    fn name_of(&self, pa: u64) -> String {
        self.named
            .iter()
            .find(|(_, a, len)| pa >= *a && pa < *a + len)
            .map_or_else(|| "driver memory".to_string(), |(n, _, _)| n.clone())
    }

    /// Fails unless `now` is byte-identical to `before` (both [`Nested::snapshot`]s, which cover the STE, the
    /// CD, both stages' tables and so the leaf's AF), naming the changed 8-byte words, the walk's own first.
    pub fn check_unchanged(&self, before: &[u8], now: &[u8]) -> Result<(), String> {
        let mut diffs = Vec::new();
        for (i, (a, b)) in before.chunks(8).zip(now.chunks(8)).enumerate() {
            if a != b {
                let pa = self.region.0 + 8 * i as u64;
                let w = |x: &[u8]| {
                    let mut v = [0u8; 8];
                    v[..x.len()].copy_from_slice(x);
                    u64::from_le_bytes(v)
                };
                diffs.push(format!(
                    "{} at {pa:#x}: {:#x} -> {:#x}",
                    self.name_of(pa & !7),
                    w(a),
                    w(b)
                ));
            }
        }
        if before.len() != now.len() {
            diffs.push(format!("{} bytes -> {} bytes", before.len(), now.len()));
        }
        // The walk's own structures first: they are what a lookup with side effects would touch.
        diffs.sort_by_key(|d| d.starts_with("driver memory"));
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} word(s) of the driver's memory changed: {}",
                diffs.len(),
                diffs.into_iter().take(8).collect::<Vec<_>>().join("; ")
            ))
        }
    }

    /// A real DMA through the IOVA: the data lands behind it, and the leaf gains AF (when hardware AF is on)
    /// and nothing else.
    pub fn dma_sets_af(&self, d: &mut Driver) -> Result<String, String> {
        if self.ssid.is_some() {
            testdev::enable_pasid(&mut *d.b, true)?;
        }
        let len = PAGE - OFFSET;
        let r = testdev::fill(&mut *d.b, self.iova, len, PATTERN, self.ssid);
        if self.ssid.is_some() {
            testdev::enable_pasid(&mut *d.b, false)?;
        }
        r.expect_done("fill through the checked IOVA")?;
        let mut got = vec![0u8; len as usize];
        d.b.mem_read(self.output, &mut got)?;
        if let Some(i) = (0..len).find(|&i| got[i as usize] != pattern_byte(PATTERN, i)) {
            return Err(format!(
                "byte {i:#x} behind the checked IOVA (PA {:#x}) is {:#x}, the fill wrote {:#x}",
                self.output + i,
                got[i as usize],
                pattern_byte(PATTERN, i)
            ));
        }
        let leaf = d.b.mem_read_u64(self.leaf_pa)?;
        let want = if self.hardware_af {
            self.leaf | AF
        } else {
            self.leaf
        };
        if leaf != want {
            return Err(format!(
                "stage-1 leaf at {:#x} is {leaf:#x} after the DMA, expected {want:#x} (was {:#x})",
                self.leaf_pa, self.leaf
            ));
        }
        Ok(format!(
            "DMA through {:#x} wrote {len:#x} bytes at PA {:#x}; stage-1 leaf {:#x} -> {leaf:#x}{}",
            self.iova,
            self.output,
            self.leaf,
            if self.hardware_af {
                " (AF set by the SMMU)"
            } else {
                " (no HTTU: AF was already set)"
            }
        ))
    }

    /// One line for people: the stream and what the walk must find.
    pub fn describe(&self) -> String {
        format!(
            "nested stream: SID {:#x} SSID {} IOVA {:#x} -> IPA {:#x} -> PA {:#x}, {} stage-1 levels; leaf {:#x} at {:#x} ({}); {}",
            self.sid,
            self.ssid.map_or("none".to_string(), |s| s.to_string()),
            self.iova,
            self.ipa,
            self.output,
            self.levels,
            self.leaf,
            self.leaf_pa,
            if self.hardware_af { "AF=0, CD.HA=1" } else { "AF=1, no HTTU" },
            self.named
                .iter()
                .map(|(n, a, _)| format!("{n} @ {a:#x}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bringup::host::HostBackend;
    use crate::bringup::smmuv3::driver::Options;
    use iommu::smmuv3::{Smmuv3Config, Step};
    use iommu::Access;

    fn driver(cfg: Smmuv3Config) -> (Driver, std::sync::Arc<iommu::smmuv3::Smmuv3>) {
        let b = HostBackend::new(cfg).unwrap();
        let smmu = b.model.clone();
        let mut d = Driver::probe(Box::new(b)).unwrap();
        d.bring_up(Options::default()).unwrap();
        (d, smmu)
    }

    /// Against the model: its side-effect-free lookup finds the driver's answer in 4 stage-1 steps and
    /// leaves every byte alone; the real DMA then sets AF. With caches on and off, with and without
    /// substreams, with and without HTTU.
    #[test]
    fn lookup_is_side_effect_free_and_dma_sets_af() {
        for opts in [
            "smmuv3",
            "smmuv3,caching=off",
            "smmuv3,ssidbits=0",
            "smmuv3,httu=0",
        ] {
            let (mut d, smmu) = driver(opts.parse().unwrap());
            let n = Nested::install(&mut d).unwrap();
            assert_eq!(n.levels, 4, "{opts}");
            assert_eq!(n.ssid.is_some(), !opts.contains("ssidbits=0"), "{opts}");
            assert_eq!(n.hardware_af, !opts.contains("httu=0"), "{opts}");
            assert_eq!(n.leaf & AF == 0, n.hardware_af, "{opts}");
            assert_eq!(n.output, n.target + OFFSET);
            assert_eq!(n.ipa, n.target + OFFSET + IPA_BASE - d.b.mem_base());
            let before = n.snapshot(&mut d).unwrap();
            let l = smmu.lookup(n.sid, n.ssid, n.iova, Access::Read);
            let s1_steps = l
                .steps
                .iter()
                .filter(|s| matches!(s, Step::Walk { stage: 1, .. }))
                .count();
            assert_eq!(s1_steps, 4, "{opts}: {:?}", l.steps);
            match &l.result {
                iommu::smmuv3::LookupResult::Translated { translation, .. } => {
                    assert_eq!(translation.translate(n.iova), n.output, "{opts}")
                }
                other => panic!("{opts}: {other:?}"),
            }
            n.check_unchanged(&before, &n.snapshot(&mut d).unwrap())
                .unwrap();
            let said = n.dma_sets_af(&mut d).unwrap();
            assert!(said.contains(&format!("{:#x}", n.output)), "{said}");
            // The DMA changed the buffer and (with HTTU) the leaf: the check names the leaf.
            let e = n
                .check_unchanged(&before, &n.snapshot(&mut d).unwrap())
                .unwrap_err();
            assert!(e.contains("driver memory at"), "{e}");
            assert_eq!(
                e.contains("stage-1 L3 (leaf)"),
                n.hardware_af,
                "{opts}: {e}"
            );
            assert!(d.read_events().unwrap().is_empty(), "{opts}");
        }
    }

    #[test]
    fn describes_the_walk() {
        let (mut d, _) = driver(Smmuv3Config::default());
        let n = Nested::install(&mut d).unwrap();
        let s = n.describe();
        assert!(s.contains("SID 0x18 SSID 5 IOVA 0x5ab4c3d5e2a8"), "{s}");
        assert!(s.contains("STE @ ") && s.contains("stage-1 L2 @ "), "{s}");
        assert_eq!(n.named.len(), 6);
        assert_eq!(n.name_of(n.named[0].1 + 0x38), "STE");
        assert_eq!(n.name_of(n.leaf_pa), "stage-1 L3 (leaf)");
    }
}
