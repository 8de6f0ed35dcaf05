//! The intel-iommu driver's kernel log lines (6.12, drivers/iommu/intel/dmar.c; `pr_fmt` is "DMAR: "):
//!
//! - `DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c40660462 ecap f050da` (alloc_iommu)
//! - `DMAR: DRHD base: 0x000000fed90000 flags: 0x1` and `DMAR: RMRR base: %#016Lx end: %#016Lx` (table walk)
//! - `DMAR: Intel(R) Virtualization Technology for Directed I/O` (end of a successful intel_iommu_init)
//! - `DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x10000000 [fault reason 0x05] ...`
//!   (dmar_fault_do_one; "DMA Read" when the record's T bit is 1; `[DMA Read PASID 0x5]` with a PASID;
//!   the address is the fault record's page address, bits 11:0 clear). Linux 7.x names the device with its
//!   PCI segment, `[0000:00:03.0]`; both forms are parsed, and the segment must be the unit's (0).

use super::super::kmsg::{KmsgRecord, WORST_ALLOWED_BELOW};

/// Printed last by a successful intel_iommu_init.
pub const VTD_UP: &str = "DMAR: Intel(R) Virtualization Technology for Directed I/O";

/// One DMA-remapping fault the driver logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultLine {
    pub write: bool,
    /// The PCI segment, when the kernel prints one (7.x); 0 otherwise.
    pub segment: u16,
    pub pasid: Option<u32>,
    pub bus: u8,
    pub dev: u8,
    pub func: u8,
    pub addr: u64,
    pub reason: u8,
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()
}

/// Parses `bb:dd.f`.
pub fn parse_bdf_short(s: &str) -> Option<(u8, u8, u8)> {
    let (bus, rest) = s.split_once(':')?;
    let (dev, func) = rest.split_once('.')?;
    Some((
        u8::from_str_radix(bus, 16).ok()?,
        u8::from_str_radix(dev, 16).ok()?,
        u8::from_str_radix(func, 16).ok()?,
    ))
}

/// Parses the device of a fault line: `bb:dd.f` (6.12) or `ssss:bb:dd.f` (7.x).
pub fn parse_fault_bdf(s: &str) -> Option<(u16, u8, u8, u8)> {
    match s.split_once(':') {
        Some((seg, rest)) if seg.len() == 4 && rest.contains(':') => {
            let (bus, dev, func) = parse_bdf_short(rest)?;
            Some((u16::from_str_radix(seg, 16).ok()?, bus, dev, func))
        }
        _ => {
            let (bus, dev, func) = parse_bdf_short(s)?;
            Some((0, bus, dev, func))
        }
    }
}

/// Parses a DMA-remapping fault line (with or without the `DMAR: ` prefix).
pub fn parse_fault(msg: &str) -> Option<FaultLine> {
    let m = msg.trim();
    let m = m.strip_prefix("DMAR: ").unwrap_or(m);
    let rest = m.strip_prefix('[')?;
    let (kind, rest) = rest.split_once(']')?;
    let (dir, pasid) = if let Some(d) = kind.strip_suffix(" NO_PASID") {
        (d, None)
    } else {
        let (d, p) = kind.split_once(" PASID ")?;
        (d, Some(u32::try_from(hex(p)?).ok()?))
    };
    let write = match dir {
        "DMA Write" => true,
        "DMA Read" => false,
        _ => return None,
    };
    let rest = rest.trim_start().strip_prefix("Request device [")?;
    let (bdf, rest) = rest.split_once(']')?;
    let (segment, bus, dev, func) = parse_fault_bdf(bdf)?;
    let rest = rest.trim_start().strip_prefix("fault addr ")?;
    let (addr, rest) = rest.split_once(' ')?;
    let rest = rest.trim_start().strip_prefix("[fault reason ")?;
    let (reason, _) = rest.split_once(']')?;
    Some(FaultLine {
        write,
        segment,
        pasid,
        bus,
        dev,
        func,
        addr: hex(addr)?,
        reason: u8::try_from(hex(reason)?).ok()?,
    })
}

/// What `DMAR: dmarN: reg_base_addr B ver M:m cap C ecap E` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitLine {
    pub name: String,
    pub base: u64,
    pub cap: u64,
    pub ecap: u64,
}

pub fn parse_unit(msg: &str) -> Option<UnitLine> {
    let m = msg.trim().strip_prefix("DMAR: ")?;
    let (name, rest) = m.split_once(": reg_base_addr ")?;
    let w: Vec<&str> = rest.split_whitespace().collect();
    if w.len() != 7 || w[1] != "ver" || w[3] != "cap" || w[5] != "ecap" {
        return None;
    }
    Some(UnitLine {
        name: name.to_string(),
        base: hex(w[0])?,
        cap: hex(w[4])?,
        ecap: hex(w[6])?,
    })
}

/// The line the DMAR table walk prints for an RMRR `[base, end]` (end inclusive).
pub fn rmrr_line(base: u64, end: u64) -> String {
    format!("DMAR: RMRR base: {base:#016x} end: {end:#016x}")
}

/// The line the DMAR table walk prints for a DRHD at `base` (flags follow).
pub fn drhd_prefix(base: u64) -> String {
    format!("DMAR: DRHD base: {base:#016x} flags: ")
}

/// Whether a message comes from the VT-d / IOMMU code.
pub fn is_iommu_message(msg: &str) -> bool {
    let l = msg.to_ascii_lowercase();
    ["dmar", "drhd", "vt-d", "iommu", "rmrr"]
        .iter()
        .any(|k| l.contains(k))
}

/// IOMMU messages at warning level or worse.
pub fn iommu_errors(records: &[KmsgRecord]) -> Vec<&KmsgRecord> {
    records
        .iter()
        .filter(|r| r.level <= WORST_ALLOWED_BELOW && is_iommu_message(&r.message))
        .collect()
}

/// One `rmrr=BASE-END@BDF` item of an IOMMU option string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RmrrOption {
    pub base: u64,
    pub end: u64,
    pub bdf: String,
}

/// The RMRRs in an option string like `vtd,aw=48,rmrr=0x1000-0x1fff@00:05.0`.
pub fn rmrr_options(options: &str) -> Result<Vec<RmrrOption>, String> {
    options
        .split(',')
        .filter_map(|o| o.strip_prefix("rmrr="))
        .map(|v| {
            let (range, bdf) = v
                .split_once('@')
                .ok_or_else(|| format!("rmrr={v}: no @BDF"))?;
            let (b, e) = range
                .split_once('-')
                .ok_or_else(|| format!("rmrr={v}: no BASE-END"))?;
            Ok(RmrrOption {
                base: hex(b).ok_or_else(|| format!("rmrr={v}: bad base"))?,
                end: hex(e).ok_or_else(|| format!("rmrr={v}: bad end"))?,
                bdf: bdf.to_string(),
            })
        })
        .collect()
}

/// Whether the option string selects scalable mode (the default) or legacy (`sm=off`).
pub fn scalable_mode(options: &str) -> bool {
    !options.split(',').any(|o| o == "sm=off")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::kmsg::parse_record;

    #[test]
    fn parses_fault_lines_in_the_6_12_format() {
        // The format strings of dmar_fault_do_one, filled as the kernel would.
        let l = format!(
            "DMAR: [{} NO_PASID] Request device [{:02x}:{:02x}.{}] fault addr 0x{:x} [fault reason 0x{:02x}] {}",
            "DMA Write", 0, 3, 0, 0x1234_5000u64, 5, "PTE Write access is not set"
        );
        assert_eq!(
            parse_fault(&l),
            Some(FaultLine {
                write: true,
                segment: 0,
                pasid: None,
                bus: 0,
                dev: 3,
                func: 0,
                addr: 0x1234_5000,
                reason: 5
            })
        );
        let l = "[DMA Read PASID 0x1f] Request device [0a:1f.7] fault addr 0xffff000 [fault reason 0x79] \
                 SM: Read/Write permission error in second-level paging entry";
        let f = parse_fault(l).unwrap();
        assert!(!f.write);
        assert_eq!(f.pasid, Some(0x1f));
        assert_eq!((f.bus, f.dev, f.func), (0x0a, 0x1f, 7));
        assert_eq!((f.addr, f.reason), (0xffff000, 0x79));
        assert!(parse_fault(
            "DMAR: [INTR-REMAP] Request device [00:03.0] fault index 0x4 [fault reason 0x25] x"
        )
        .is_none());
        assert!(parse_fault("DMAR: DRHD: handling fault status reg 2").is_none());
    }

    #[test]
    fn parses_fault_lines_in_the_7_x_format() {
        // 7.x: "[%04x:%02x:%02x.%d]" with iommu->segment first.
        let l = format!(
            "DMAR: [{} NO_PASID] Request device [{:04x}:{:02x}:{:02x}.{}] fault addr 0x{:x} [fault reason 0x{:02x}] {}",
            "DMA Read", 0, 0, 3, 0, 0x5010_0000u64, 0x79, "SM: Read/Write permission error in second-level paging entry"
        );
        let f = parse_fault(&l).unwrap();
        assert_eq!((f.segment, f.bus, f.dev, f.func), (0, 0, 3, 0));
        assert_eq!((f.write, f.addr, f.reason), (false, 0x5010_0000, 0x79));
        let f = parse_fault("[DMA Write PASID 0x5] Request device [0002:0a:1f.7] fault addr 0x1000 [fault reason 0x71] x")
            .unwrap();
        assert_eq!(
            (f.segment, f.bus, f.dev, f.func, f.pasid),
            (2, 0x0a, 0x1f, 7, Some(5))
        );
        assert_eq!(parse_fault_bdf("00:03.0"), Some((0, 0, 3, 0)));
        assert_eq!(parse_fault_bdf("0000:00:03.0"), Some((0, 0, 3, 0)));
        assert_eq!(parse_fault_bdf("000:00:03.0"), None);
    }

    #[test]
    fn parses_the_unit_line() {
        let u = parse_unit(
            "DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c40660462 ecap f050da",
        )
        .unwrap();
        assert_eq!(
            u,
            UnitLine {
                name: "dmar0".into(),
                base: 0xfed9_0000,
                cap: 0xd2_008c_4066_0462,
                ecap: 0xf0_50da
            }
        );
        assert!(parse_unit("DMAR: dmar0: Using Queued invalidation").is_none());
    }

    #[test]
    fn table_lines_match_the_kernel_format() {
        // %#016Lx: "0x" counts in the width of 16.
        assert_eq!(
            rmrr_line(0xe0000, 0xfffff),
            "DMAR: RMRR base: 0x000000000e0000 end: 0x000000000fffff"
        );
        assert_eq!(
            drhd_prefix(0xfed90000),
            "DMAR: DRHD base: 0x000000fed90000 flags: "
        );
    }

    #[test]
    fn picks_iommu_errors() {
        let recs: Vec<_> = [
            "3,1,1,-;DMAR: [Firmware Bug]: No firmware reserved region can cover this RMRR",
            "6,2,2,-;DMAR: Host address width 48",
            "3,3,3,-;ata1: failed",
            "4,4,4,-;vfio-pci 0000:00:03.0: MSI interrupts are not secure (iommu)",
        ]
        .iter()
        .filter_map(|s| parse_record(s))
        .collect();
        let bad: Vec<u64> = iommu_errors(&recs).iter().map(|r| r.seq).collect();
        assert_eq!(bad, vec![1, 4]);
    }

    #[test]
    fn parses_rmrr_options_and_mode() {
        let o = "vtd,aw=48,sm=on,rmrr=0x7f00000-0x7ffffff@00:05.0";
        assert_eq!(
            rmrr_options(o).unwrap(),
            vec![RmrrOption {
                base: 0x7f0_0000,
                end: 0x7ff_ffff,
                bdf: "00:05.0".into()
            }]
        );
        assert!(rmrr_options("vtd").unwrap().is_empty());
        assert!(rmrr_options("vtd,rmrr=1-2").is_err());
        assert!(scalable_mode(o));
        assert!(scalable_mode("vtd"));
        assert!(!scalable_mode("vtd,aw=48,sm=off"));
        assert_eq!(parse_bdf_short("00:03.0"), Some((0, 3, 0)));
    }
}
