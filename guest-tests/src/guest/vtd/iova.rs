//! IOVA range arithmetic: comparing permitted ranges, their holes, the group's reserved regions, and picking
//! IOVAs for the tests.

use firmware_tables::description::IovaRange;

/// Formats ranges as `[0x0-0xfedfffff, 0xfef00000-0xffffffffffff]`.
pub fn show(ranges: &[IovaRange]) -> String {
    let v: Vec<String> = ranges
        .iter()
        .map(|r| format!("{:#x}-{:#x}", r.first, r.last))
        .collect();
    format!("[{}]", v.join(", "))
}

/// Sorts and merges overlapping or adjacent ranges.
pub fn merge(mut v: Vec<IovaRange>) -> Vec<IovaRange> {
    v.sort_by_key(|r| (r.first, r.last));
    let mut out: Vec<IovaRange> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(l) if r.first <= l.last.saturating_add(1) => l.last = l.last.max(r.last),
            _ => out.push(r),
        }
    }
    out
}

/// The gaps between sorted, disjoint `ranges` below the end of the last one (the reserved holes inside the
/// aperture). Gaps before the first range count; the space above the last range does not.
pub fn holes(ranges: &[IovaRange]) -> Vec<IovaRange> {
    let mut out = Vec::new();
    let mut next = 0u64;
    for r in ranges {
        if r.first > next {
            out.push(IovaRange {
                first: next,
                last: r.first - 1,
            });
        }
        match r.last.checked_add(1) {
            Some(n) => next = n,
            None => break,
        }
    }
    out
}

/// The first IOVA above the last permitted range, if the ranges do not reach the top of the 64-bit space.
pub fn first_past_aperture(ranges: &[IovaRange]) -> Option<u64> {
    ranges.last().and_then(|r| r.last.checked_add(1))
}

/// Whether `[iova, iova + len)` lies inside one range.
pub fn permits(ranges: &[IovaRange], iova: u64, len: u64) -> bool {
    let Some(last) = len.checked_sub(1).and_then(|l| iova.checked_add(l)) else {
        return false;
    };
    ranges.iter().any(|r| r.first <= iova && last <= r.last)
}

/// The highest `align`-aligned IOVA whose `len` bytes fit in the last range.
pub fn highest(ranges: &[IovaRange], len: u64, align: u64) -> Option<u64> {
    let r = ranges.last()?;
    let start = r.last.checked_sub(len.checked_sub(1)?)?;
    let iova = start & !(align - 1);
    (iova >= r.first).then_some(iova)
}

/// One line of sysfs `iommu_group/reserved_regions`: `0x00000000fee00000 0x00000000feefffff msi`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedRegion {
    pub range: IovaRange,
    pub kind: String,
}

pub fn parse_reserved_regions(text: &str) -> Result<Vec<ReservedRegion>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let num = |s: &str| {
                u64::from_str_radix(s.trim_start_matches("0x"), 16)
                    .map_err(|_| format!("bad reserved region line {l:?}"))
            };
            if w.len() != 3 {
                return Err(format!("bad reserved region line {l:?}"));
            }
            Ok(ReservedRegion {
                range: IovaRange {
                    first: num(w[0])?,
                    last: num(w[1])?,
                },
                kind: w[2].to_string(),
            })
        })
        .collect()
}

/// The reserved regions iommufd carves out of an IOAS (relaxable direct maps are not enforced).
pub fn enforced(regions: &[ReservedRegion]) -> Vec<IovaRange> {
    merge(
        regions
            .iter()
            .filter(|r| r.kind != "direct-relaxable")
            .map(|r| r.range)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: u64, last: u64) -> IovaRange {
        IovaRange { first, last }
    }

    fn vtd48() -> Vec<IovaRange> {
        vec![r(0, 0xfedf_ffff), r(0xfef0_0000, 0xffff_ffff_ffff)]
    }

    #[test]
    fn holes_of_the_vtd_48_ranges_are_the_msi_window() {
        assert_eq!(holes(&vtd48()), vec![r(0xfee0_0000, 0xfeef_ffff)]);
        assert_eq!(first_past_aperture(&vtd48()), Some(1 << 48));
        assert!(holes(&[r(0, u64::MAX)]).is_empty());
        assert_eq!(first_past_aperture(&[r(0, u64::MAX)]), None);
        assert_eq!(holes(&[r(0x1000, 0x1fff)]), vec![r(0, 0xfff)]);
    }

    #[test]
    fn merge_joins_adjacent_and_overlapping() {
        assert_eq!(
            merge(vec![r(10, 20), r(0, 4), r(5, 9), r(15, 30), r(40, 50)]),
            vec![r(0, 30), r(40, 50)]
        );
        assert_eq!(merge(vec![r(0, u64::MAX), r(5, 6)]), vec![r(0, u64::MAX)]);
    }

    #[test]
    fn permits_and_highest() {
        let v = vtd48();
        assert!(permits(&v, 0x1000_0000, 0x1000));
        assert!(!permits(&v, 0xfee0_0000, 0x1000));
        assert!(!permits(&v, 0xfedf_f000, 0x2000));
        assert!(!permits(&v, 1 << 48, 0x1000));
        assert!(!permits(&v, 0, 0));
        assert_eq!(highest(&v, 0x20_0000, 0x20_0000), Some(0xffff_ffe0_0000));
        assert_eq!(highest(&v, 0x1000, 0x1000), Some(0xffff_ffff_f000));
        assert_eq!(highest(&[r(0x1000, 0x1fff)], 0x2000, 0x1000), None);
    }

    #[test]
    fn reserved_regions_from_sysfs() {
        let text = "0x00000000000e0000 0x00000000000fffff direct-relaxable\n\
                    0x00000000fee00000 0x00000000feefffff msi\n";
        let regs = parse_reserved_regions(text).unwrap();
        assert_eq!(regs.len(), 2);
        assert_eq!(regs[1].kind, "msi");
        assert_eq!(enforced(&regs), vec![r(0xfee0_0000, 0xfeef_ffff)]);
        assert_eq!(enforced(&regs), holes(&vtd48()));
        assert!(parse_reserved_regions("0x1 0x2").is_err());
        assert_eq!(
            show(&vtd48()),
            "[0x0-0xfedfffff, 0xfef00000-0xffffffffffff]"
        );
    }
}
