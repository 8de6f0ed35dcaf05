//! Guest RAM: the regions backing it and the e820 map the guest is told about.

use firmware_tables::description::{E820Entry, E820Kind};
use thiserror::Error;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::layout;

/// Errors creating guest memory.
#[derive(Debug, Error)]
pub enum MemoryError {
    #[error("memory size {0} MiB is out of range ({min}..={max} MiB)", min = layout::MIN_MEMORY_MIB, max = layout::MAX_MEMORY_MIB)]
    BadSize(u64),
    #[error("cannot map guest memory: {0}")]
    Mmap(#[from] vm_memory::mmap::FromRangesError),
}

/// The RAM regions for `memory_mib` MiB: low RAM up to the 32-bit MMIO hole, the rest from 4 GiB.
pub fn ram_regions(memory_mib: u64) -> Result<Vec<(u64, u64)>, MemoryError> {
    if !(layout::MIN_MEMORY_MIB..=layout::MAX_MEMORY_MIB).contains(&memory_mib) {
        return Err(MemoryError::BadSize(memory_mib));
    }
    let total = memory_mib << 20;
    let low = total.min(layout::MMIO32_HOLE_START);
    let mut regions = vec![(0, low)];
    if total > low {
        regions.push((layout::RAM_HIGH_START, total - low));
    }
    Ok(regions)
}

/// Creates anonymous, private mappings for the RAM regions of `memory_mib` MiB.
pub fn create_guest_memory(memory_mib: u64) -> Result<GuestMemoryMmap, MemoryError> {
    let ranges: Vec<(GuestAddress, usize)> = ram_regions(memory_mib)?
        .into_iter()
        .map(|(start, size)| (GuestAddress(start), size as usize))
        .collect();
    Ok(GuestMemoryMmap::from_ranges(&ranges)?)
}

fn entry(start: u64, end_exclusive: u64, kind: E820Kind) -> E820Entry {
    E820Entry {
        start,
        end: end_exclusive - 1,
        kind,
    }
}

/// The e820 map for `memory_mib` MiB of RAM with `reserved` ranges (inclusive `(first, last)`, e.g. VT-d RMRRs)
/// carved out of RAM and marked Reserved.
pub fn e820_map_with_reserved(
    memory_mib: u64,
    reserved: &[(u64, u64)],
) -> Result<Vec<E820Entry>, MemoryError> {
    let mut map = e820_map(memory_mib)?;
    for &(first, last) in reserved {
        let mut out = Vec::with_capacity(map.len() + 2);
        for e in map {
            if e.kind != E820Kind::Ram || last < e.start || first > e.end {
                out.push(e);
                continue;
            }
            if first > e.start {
                out.push(E820Entry {
                    start: e.start,
                    end: first - 1,
                    kind: E820Kind::Ram,
                });
            }
            if last < e.end {
                out.push(E820Entry {
                    start: last + 1,
                    end: e.end,
                    kind: E820Kind::Ram,
                });
            }
        }
        out.push(E820Entry {
            start: first,
            end: last,
            kind: E820Kind::Reserved,
        });
        out.sort_by_key(|e| e.start);
        map = out;
    }
    Ok(map)
}

/// The e820 map for `memory_mib` MiB of RAM (sorted, non-overlapping, `end` inclusive).
///
/// Below 1 MiB: conventional RAM up to the EBDA, the legacy area reserved, and the ACPI tables in their own
/// `ACPI` entry. The ECAM window is reserved as well (as firmware does; MCFG + PNP0C02 also describe it).
pub fn e820_map(memory_mib: u64) -> Result<Vec<E820Entry>, MemoryError> {
    let regions = ram_regions(memory_mib)?;
    let (_, low_size) = regions[0];
    let mut map = vec![
        entry(0, layout::EBDA_START, E820Kind::Ram),
        entry(layout::EBDA_START, layout::ACPI_START, E820Kind::Reserved),
        entry(
            layout::ACPI_START,
            layout::ACPI_START + layout::ACPI_SIZE,
            E820Kind::Acpi,
        ),
        entry(layout::HIMEM_START, low_size, E820Kind::Ram),
        entry(
            layout::PCI_ECAM_START,
            layout::PCI_ECAM_START + layout::PCI_ECAM_SIZE,
            E820Kind::Reserved,
        ),
    ];
    if let Some(&(start, size)) = regions.get(1) {
        map.push(entry(start, start + size, E820Kind::Ram));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_memory_is_one_low_region() {
        assert_eq!(ram_regions(512).unwrap(), vec![(0, 512 << 20)]);
    }

    #[test]
    fn large_memory_splits_around_the_hole() {
        let r = ram_regions(4096).unwrap();
        assert_eq!(r, vec![(0, 0xc000_0000), (0x1_0000_0000, 0x4000_0000)]);
    }

    #[test]
    fn memory_size_limits() {
        assert!(matches!(ram_regions(0), Err(MemoryError::BadSize(0))));
        assert!(ram_regions(layout::MIN_MEMORY_MIB).is_ok());
        assert!(ram_regions(layout::MAX_MEMORY_MIB + 1).is_err());
    }

    #[test]
    fn e820_is_sorted_disjoint_and_covers_ram() {
        for mib in [64, 512, 3072, 4096, 8192] {
            let map = e820_map(mib).unwrap();
            for pair in map.windows(2) {
                assert!(pair[0].end < pair[1].start, "{mib}: {pair:?}");
            }
            let ram: u64 = map
                .iter()
                .filter(|e| e.kind == E820Kind::Ram)
                .map(|e| e.end - e.start + 1)
                .sum();
            // All RAM but the legacy area [EBDA, 1 MiB) is usable.
            assert_eq!(
                ram,
                (mib << 20) - (layout::HIMEM_START - layout::EBDA_START),
                "{mib}"
            );
        }
    }

    #[test]
    fn reserved_ranges_are_carved_out_of_ram() {
        let map = e820_map_with_reserved(512, &[(0x1000_0000, 0x1000_ffff)]).unwrap();
        let kinds: Vec<(u64, u64, E820Kind)> =
            map.iter().map(|e| (e.start, e.end, e.kind)).collect();
        assert!(kinds.contains(&(0x10_0000, 0x0fff_ffff, E820Kind::Ram)));
        assert!(kinds.contains(&(0x1000_0000, 0x1000_ffff, E820Kind::Reserved)));
        assert!(kinds.contains(&(0x1001_0000, (512 << 20) - 1, E820Kind::Ram)));
        for pair in map.windows(2) {
            assert!(pair[0].end < pair[1].start, "{pair:?}");
        }
        // A reserved range outside RAM just adds an entry.
        let map = e820_map_with_reserved(512, &[(0xf000_0000, 0xf000_0fff)]).unwrap();
        assert_eq!(map.len(), e820_map(512).unwrap().len() + 1);
        assert_eq!(
            e820_map_with_reserved(512, &[]).unwrap(),
            e820_map(512).unwrap()
        );
    }

    #[test]
    fn e820_entries_at_expected_places() {
        let map = e820_map(512).unwrap();
        assert_eq!(
            map[0],
            E820Entry {
                start: 0,
                end: 0x9_fbff,
                kind: E820Kind::Ram
            }
        );
        assert_eq!(
            map[2],
            E820Entry {
                start: 0xe_0000,
                end: 0xf_ffff,
                kind: E820Kind::Acpi
            }
        );
        assert_eq!(
            map[3],
            E820Entry {
                start: 0x10_0000,
                end: (512 << 20) - 1,
                kind: E820Kind::Ram
            }
        );
        assert_eq!(map[4].start, 0xe000_0000);
        assert_eq!(map.len(), 5);
        let big = e820_map(4096).unwrap();
        assert_eq!(
            big.last().unwrap(),
            &E820Entry {
                start: 0x1_0000_0000,
                end: 0x1_3fff_ffff,
                kind: E820Kind::Ram
            }
        );
    }
}
