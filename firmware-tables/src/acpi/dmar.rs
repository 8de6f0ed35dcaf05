//! DMAR: DMA Remapping Reporting table, Intel VT-d Architecture Specification chapter 8 "BIOS Considerations"
//! (section numbers below); C layout in ACPICA's `actbl1.h` (`struct acpi_table_dmar`, `acpi_dmar_*`).
//!
//! Layout (section 8.1): the 36-byte ACPI header (signature "DMAR", revision 1), Host Address Width (width - 1)
//! at offset 36, Flags at 37, 10 reserved bytes, then the remapping structures from offset 48. Section 8.2
//! requires the structures in numerical type order, so every DRHD (type 0) comes before every RMRR (type 1).
//!
//! The result is a complete, checksummed table for `AcpiPlatform::extra_tables`.
//!
//! # The I/O APIC's device scope
//! Section 8.3.1.1: an I/O APIC scope carries the APIC id of the MADT I/O APIC structure as its enumeration id,
//! and its start bus plus path are the requester id (source-id) the I/O APIC uses for its interrupt messages.
//! Linux 6.12 (`ir_parse_one_ioapic_scope`, drivers/iommu/intel/irq_remapping.c) takes the bus and the last
//! path element as that source-id and writes it into the IRTEs of I/O APIC interrupts (SVT = verify SID);
//! nothing else looks at it, and it is never matched against enumerated PCI functions.
//!
//! [`DeviceScope::platform_ioapic`] uses FF:00.0 ([`PLATFORM_IOAPIC_SOURCE_ID`]), the pseudo requester id
//! QEMU's q35 gives its IOAPIC (`Q35_PSEUDO_BUS_PLATFORM` 0xFF, `Q35_PSEUDO_DEVFN_IOAPIC` 0 in
//! hw/i386/acpi-build.c `build_dmar_q35`), i.e. what Linux guests with an emulated VT-d normally see. Real
//! Intel PCHs use a pseudo bus the same way (F0:1F.0 on current parts). A bus 0 path such as 00:1F.0 (older
//! ICH tables) is avoided on purpose: bus 0 slots are ones the VMM populates, and a PCI function there would
//! share the I/O APIC's source-id, so its MSIs would pass the source-id check of I/O APIC IRTEs. Linux numbers
//! the buses behind bridges upward from 1, so bus 0xFF would take 255 of them; this machine has none.

use acpi_tables::sdt::Sdt;

use super::{AcpiError, OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// DMAR revision (section 8.1, table "DMA Remapping Reporting Structure": Revision = 1).
pub(crate) const DMAR_REVISION: u8 = 1;
/// Offset of the first remapping structure (36-byte header + width + flags + 10 reserved).
pub(crate) const DMAR_HEADER_LEN: usize = 48;

/// DMAR Flags (section 8.1).
pub(crate) const FLAG_INTR_REMAP: u8 = 1 << 0;
pub(crate) const FLAG_X2APIC_OPT_OUT: u8 = 1 << 1;
pub(crate) const FLAG_DMA_CTRL_PLATFORM_OPT_IN: u8 = 1 << 2;

/// Remapping structure types (section 8.2).
pub(crate) const TYPE_DRHD: u16 = 0;
pub(crate) const TYPE_RMRR: u16 = 1;
/// Fixed parts of the structures (sections 8.3 and 8.4).
pub(crate) const DRHD_LEN: usize = 16;
pub(crate) const RMRR_LEN: usize = 24;
/// DRHD Flags bit 0 (section 8.3).
pub(crate) const DRHD_INCLUDE_PCI_ALL: u8 = 1;

/// Device scope entry types (section 8.3.1).
pub(crate) const SCOPE_ENDPOINT: u8 = 1;
pub(crate) const SCOPE_BRIDGE: u8 = 2;
pub(crate) const SCOPE_IOAPIC: u8 = 3;
pub(crate) const SCOPE_HPET: u8 = 4;
/// A scope with a one-element path: 6-byte header + one (device, function) pair.
pub(crate) const SCOPE_LEN: usize = 8;

/// Smallest host address width Linux accepts: it rejects a stored width (`width - 1`) below
/// `PAGE_SHIFT - 1` = 11 (parse_dmar_table, drivers/iommu/intel/dmar.c).
pub const MIN_HOST_ADDRESS_WIDTH: u8 = 12;
/// The DRHD Size field holds N in bits 3:0 (register set = 2^N 4 KiB pages); bits 7:4 are reserved.
pub const MAX_DRHD_SIZE_LOG2_PAGES: u8 = 15;

/// Source-id (bus << 8 | devfn) of [`DeviceScope::platform_ioapic`]: FF:00.0 (see the module docs).
pub const PLATFORM_IOAPIC_SOURCE_ID: u16 = 0xFF00;

/// What the DMAR reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmarConfig {
    /// Host address width in bits (DMA physical addressability); the table stores `width - 1`.
    pub host_address_width: u8,
    /// Flags bit 0 INTR_REMAP: the platform supports interrupt remapping.
    pub intr_remap: bool,
    /// Flags bit 1 X2APIC_OPT_OUT: firmware asks the OS not to enable x2APIC (only meaningful with
    /// `intr_remap`).
    pub x2apic_opt_out: bool,
    /// Flags bit 2 DMA_CTRL_PLATFORM_OPT_IN: firmware made sure no device could DMA outside the RMRRs before
    /// handing over, and asks the OS to keep DMA protected (Linux `dmar_platform_optin`, which can force the
    /// IOMMU on for external-facing ports; ACPICA 2020 still calls the bit X2APIC_MODE).
    pub dma_ctrl_platform_opt_in: bool,
    /// Remapping hardware units, in table order.
    pub units: Vec<Drhd>,
    /// Reserved memory regions, emitted after all units.
    pub rmrrs: Vec<Rmrr>,
}

/// DMA Remapping Hardware Unit Definition (DRHD, section 8.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drhd {
    /// PCI segment the unit serves.
    pub segment: u16,
    /// Register Base Address: non-zero, 4 KiB aligned.
    pub base: u64,
    /// The register set is `2^size_log2_pages` 4 KiB pages (0 = 4 KiB).
    pub size_log2_pages: u8,
    /// INCLUDE_PCI_ALL: the unit covers every device of the segment not listed under another unit. Such a
    /// unit must be the last of its segment, and its scopes may only name I/O APICs and HPETs.
    pub include_pci_all: bool,
    pub scopes: Vec<DeviceScope>,
}

/// One device scope entry with a single-element path (section 8.3.1). `dev` is 0..=31, `func` 0..=7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceScope {
    /// A PCI endpoint at bus:dev.func.
    Endpoint { bus: u8, dev: u8, func: u8 },
    /// A PCI-PCI bridge at bus:dev.func and everything below it.
    Bridge { bus: u8, dev: u8, func: u8 },
    /// An I/O APIC: `id` is its MADT APIC id, bus:dev.func its source-id (section 8.3.1.1).
    IoApic { id: u8, bus: u8, dev: u8, func: u8 },
    /// An MSI-capable HPET block: `id` is its HPET number, bus:dev.func its source-id (section 8.3.1.2).
    Hpet { id: u8, bus: u8, dev: u8, func: u8 },
}

impl DeviceScope {
    /// The scope of this platform's I/O APIC with MADT id `id`, at source-id FF:00.0 (see the module docs).
    pub const fn platform_ioapic(id: u8) -> Self {
        DeviceScope::IoApic {
            id,
            bus: (PLATFORM_IOAPIC_SOURCE_ID >> 8) as u8,
            dev: ((PLATFORM_IOAPIC_SOURCE_ID >> 3) & 0x1F) as u8,
            func: (PLATFORM_IOAPIC_SOURCE_ID & 7) as u8,
        }
    }

    /// (type, enumeration id, bus, dev, func) as stored in the entry.
    fn fields(&self) -> (u8, u8, u8, u8, u8) {
        match *self {
            DeviceScope::Endpoint { bus, dev, func } => (SCOPE_ENDPOINT, 0, bus, dev, func),
            DeviceScope::Bridge { bus, dev, func } => (SCOPE_BRIDGE, 0, bus, dev, func),
            DeviceScope::IoApic { id, bus, dev, func } => (SCOPE_IOAPIC, id, bus, dev, func),
            DeviceScope::Hpet { id, bus, dev, func } => (SCOPE_HPET, id, bus, dev, func),
        }
    }

    /// The requester id the scope names: bus << 8 | dev << 3 | func.
    pub fn source_id(&self) -> u16 {
        let (_, _, bus, dev, func) = self.fields();
        (u16::from(bus) << 8) | (u16::from(dev & 0x1F) << 3) | u16::from(func & 7)
    }

    fn is_pci(&self) -> bool {
        matches!(
            self,
            DeviceScope::Endpoint { .. } | DeviceScope::Bridge { .. }
        )
    }

    /// Device Scope structure (section 8.3.1): type, length, 2 reserved bytes (recent revisions make byte 2
    /// a flags field; 0 here), enumeration id, start bus, then the path as (device, function).
    fn bytes(&self) -> [u8; SCOPE_LEN] {
        let (kind, id, bus, dev, func) = self.fields();
        [kind, SCOPE_LEN as u8, 0, 0, id, bus, dev, func]
    }
}

/// Reserved Memory Region Reporting structure (RMRR, section 8.4). The range must also be e820 reserved (or
/// NVS) memory, or Linux calls the firmware broken (`arch_rmrr_sanity_check`); that is the VMM's part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rmrr {
    pub segment: u16,
    /// First byte, 4 KiB aligned.
    pub base: u64,
    /// Last byte (the spec's "Reserved Memory Region Limit Address"); `end_inclusive + 1` is 4 KiB aligned.
    pub end_inclusive: u64,
    /// The devices that use the region: one or more PCI endpoints or bridges.
    pub scopes: Vec<DeviceScope>,
}

fn invalid(msg: String) -> AcpiError {
    AcpiError::InvalidDmar(msg)
}

fn check_scope(where_: &str, s: &DeviceScope) -> Result<(), AcpiError> {
    let (_, _, bus, dev, func) = s.fields();
    if dev > 31 || func > 7 {
        return Err(invalid(format!(
            "{where_}: device scope {bus:02x}:{dev:02x}.{func} is not a PCI device/function \
             (device 0..=31, function 0..=7)"
        )));
    }
    Ok(())
}

/// Structure length as the u16 Length field, or an error when the scopes make it too long.
fn structure_len(where_: &str, fixed: usize, scopes: usize) -> Result<u16, AcpiError> {
    scopes
        .checked_mul(SCOPE_LEN)
        .and_then(|s| s.checked_add(fixed))
        .and_then(|l| u16::try_from(l).ok())
        .ok_or_else(|| invalid(format!("{where_}: {scopes} device scopes do not fit")))
}

impl DmarConfig {
    /// The flags byte at offset 37.
    fn flags(&self) -> u8 {
        let mut f = 0;
        if self.intr_remap {
            f |= FLAG_INTR_REMAP;
        }
        if self.x2apic_opt_out {
            f |= FLAG_X2APIC_OPT_OUT;
        }
        if self.dma_ctrl_platform_opt_in {
            f |= FLAG_DMA_CTRL_PLATFORM_OPT_IN;
        }
        f
    }

    fn validate(&self) -> Result<(), AcpiError> {
        let w = self.host_address_width;
        if !(MIN_HOST_ADDRESS_WIDTH..=64).contains(&w) {
            return Err(invalid(format!(
                "host address width {w} is outside {MIN_HOST_ADDRESS_WIDTH}..=64"
            )));
        }
        if self.units.is_empty() {
            // Linux: "No DRHD structure found in DMAR table".
            return Err(invalid("a DMAR needs at least one DRHD".into()));
        }
        let mut windows: Vec<(u64, u64)> = Vec::new();
        for (i, u) in self.units.iter().enumerate() {
            let at = format!("DRHD {i}");
            if u.base == 0 || u.base & 0xFFF != 0 {
                return Err(invalid(format!(
                    "{at}: register base {:#x} must be non-zero and 4 KiB aligned",
                    u.base
                )));
            }
            if u.size_log2_pages > MAX_DRHD_SIZE_LOG2_PAGES {
                return Err(invalid(format!(
                    "{at}: size 2^{} pages does not fit the 4-bit Size field",
                    u.size_log2_pages
                )));
            }
            let last = u
                .base
                .checked_add((0x1000u64 << u.size_log2_pages) - 1)
                .ok_or_else(|| invalid(format!("{at}: register set overflows")))?;
            if let Some(j) = windows.iter().position(|&(s, e)| u.base <= e && s <= last) {
                return Err(invalid(format!(
                    "{at}: register set {:#x}..={last:#x} overlaps DRHD {j}",
                    u.base
                )));
            }
            windows.push((u.base, last));
            if u.include_pci_all {
                // Section 8.3: an INCLUDE_PCI_ALL unit is enumerated after every other unit of its segment
                // (which also makes it the only one).
                if let Some(j) = self.units[i + 1..]
                    .iter()
                    .position(|o| o.segment == u.segment)
                {
                    return Err(invalid(format!(
                        "{at}: the INCLUDE_PCI_ALL unit of segment {} must be its last unit, \
                         but DRHD {} follows",
                        u.segment,
                        i + 1 + j
                    )));
                }
                // Section 8.3: its Device Scope may only enumerate I/O APICs and HPETs.
                if u.scopes.iter().any(DeviceScope::is_pci) {
                    return Err(invalid(format!(
                        "{at}: an INCLUDE_PCI_ALL unit lists only I/O APIC and HPET scopes"
                    )));
                }
            }
            for s in &u.scopes {
                check_scope(&at, s)?;
            }
            structure_len(&at, DRHD_LEN, u.scopes.len())?;
        }

        // Each I/O APIC and HPET is under exactly one unit (sections 8.3.1.1, 8.3.1.2).
        let mut seen: Vec<(u8, u8)> = Vec::new();
        for s in self.units.iter().flat_map(|u| &u.scopes) {
            let (kind, id, ..) = s.fields();
            if !s.is_pci() {
                if seen.contains(&(kind, id)) {
                    return Err(invalid(format!(
                        "{} {id} is reported more than once",
                        if kind == SCOPE_IOAPIC {
                            "I/O APIC"
                        } else {
                            "HPET"
                        }
                    )));
                }
                seen.push((kind, id));
            }
        }

        for (i, r) in self.rmrrs.iter().enumerate() {
            let at = format!("RMRR {i}");
            // Section 8.4 and Linux rmrr_sanity_check: base and limit + 1 page aligned, non-empty.
            if r.base & 0xFFF != 0 || r.end_inclusive & 0xFFF != 0xFFF || r.end_inclusive < r.base {
                return Err(invalid(format!(
                    "{at}: {:#x}..={:#x} is not a page-aligned range",
                    r.base, r.end_inclusive
                )));
            }
            // Section 8.4: the devices must be under some unit of that segment; one or more of them.
            if !self.units.iter().any(|u| u.segment == r.segment) {
                return Err(invalid(format!(
                    "{at}: no DRHD serves segment {}",
                    r.segment
                )));
            }
            if r.scopes.is_empty() {
                return Err(invalid(format!("{at}: needs at least one device scope")));
            }
            if !r.scopes.iter().all(DeviceScope::is_pci) {
                return Err(invalid(format!(
                    "{at}: only PCI endpoint and bridge scopes can use a reserved region"
                )));
            }
            for s in &r.scopes {
                check_scope(&at, s)?;
            }
            structure_len(&at, RMRR_LEN, r.scopes.len())?;
        }
        Ok(())
    }
}

/// Builds the DMAR described by `cfg` after checking it (see the field docs for the rules). The bytes are a
/// complete table with the crate's OEM ids and a valid checksum.
pub fn build_dmar(cfg: &DmarConfig) -> Result<Vec<u8>, AcpiError> {
    cfg.validate()?;
    let mut dmar = Sdt::new(
        *b"DMAR",
        DMAR_HEADER_LEN as u32,
        DMAR_REVISION,
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
    );
    dmar.write_u8(36, cfg.host_address_width - 1);
    dmar.write_u8(37, cfg.flags());

    for (i, u) in cfg.units.iter().enumerate() {
        // Section 8.3: type, length, flags, size, segment, register base, device scopes.
        let len = structure_len(&format!("DRHD {i}"), DRHD_LEN, u.scopes.len())?;
        let mut s = Vec::with_capacity(usize::from(len));
        s.extend_from_slice(&TYPE_DRHD.to_le_bytes());
        s.extend_from_slice(&len.to_le_bytes());
        s.push(if u.include_pci_all {
            DRHD_INCLUDE_PCI_ALL
        } else {
            0
        });
        s.push(u.size_log2_pages);
        s.extend_from_slice(&u.segment.to_le_bytes());
        s.extend_from_slice(&u.base.to_le_bytes());
        s.extend(u.scopes.iter().flat_map(DeviceScope::bytes));
        dmar.append_slice(&s);
    }
    for (i, r) in cfg.rmrrs.iter().enumerate() {
        // Section 8.4: type, length, reserved, segment, base, limit, device scopes.
        let len = structure_len(&format!("RMRR {i}"), RMRR_LEN, r.scopes.len())?;
        let mut s = Vec::with_capacity(usize::from(len));
        s.extend_from_slice(&TYPE_RMRR.to_le_bytes());
        s.extend_from_slice(&len.to_le_bytes());
        s.extend_from_slice(&0u16.to_le_bytes());
        s.extend_from_slice(&r.segment.to_le_bytes());
        s.extend_from_slice(&r.base.to_le_bytes());
        s.extend_from_slice(&r.end_inclusive.to_le_bytes());
        s.extend(r.scopes.iter().flat_map(DeviceScope::bytes));
        dmar.append_slice(&s);
    }
    Ok(dmar.as_slice().to_vec())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{le, sample_platform, LIMIT, RSDP_ADDR};
    use super::super::{build_acpi, byte_sum};
    use super::*;

    /// The table the VMM builds for `--iommu vtd,rmrr=0xA0000-0xBFFFF@00:05.0` with interrupt remapping.
    fn sample() -> DmarConfig {
        DmarConfig {
            host_address_width: 48,
            intr_remap: true,
            x2apic_opt_out: false,
            dma_ctrl_platform_opt_in: false,
            units: vec![Drhd {
                segment: 0,
                base: 0xFED9_0000,
                size_log2_pages: 0,
                include_pci_all: true,
                scopes: vec![DeviceScope::platform_ioapic(0)],
            }],
            rmrrs: vec![Rmrr {
                segment: 0,
                base: 0xA_0000,
                end_inclusive: 0xB_FFFF,
                scopes: vec![DeviceScope::Endpoint {
                    bus: 0,
                    dev: 5,
                    func: 0,
                }],
            }],
        }
    }

    /// The remapping structures after the 48-byte header: (type, bytes).
    fn structures(t: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        let mut off = DMAR_HEADER_LEN;
        while off < t.len() {
            let kind = le(t, off, 2) as u16;
            let len = le(t, off + 2, 2) as usize;
            assert!(len >= 4 && off + len <= t.len(), "bad structure at {off}");
            out.push((kind, &t[off..off + len]));
            off += len;
        }
        out
    }

    fn err(cfg: &DmarConfig) -> String {
        match build_dmar(cfg) {
            Err(AcpiError::InvalidDmar(m)) => m,
            other => panic!("expected InvalidDmar, got {other:?}"),
        }
    }

    #[test]
    fn header_fields() {
        let t = build_dmar(&sample()).unwrap();
        // ACPI 6.5 section 5.2.6 header; VT-d section 8.1 fields.
        assert_eq!(&t[0..4], b"DMAR");
        assert_eq!(le(&t, 4, 4), t.len() as u64);
        assert_eq!(t[8], 1, "revision");
        assert_eq!(&t[10..16], b"IOVMM ");
        assert_eq!(&t[16..24], b"IOVMMTBL");
        assert_eq!(le(&t, 24, 4), u64::from(OEM_REVISION));
        assert_eq!(t[36], 47, "host address width - 1");
        assert_eq!(t[37], FLAG_INTR_REMAP);
        assert_eq!(&t[38..48], &[0; 10], "reserved");
        assert_eq!(byte_sum(&t), 0);
        // One DRHD with one scope, one RMRR with one scope.
        assert_eq!(t.len(), 48 + (16 + 8) + (24 + 8));
    }

    #[test]
    fn flags_map_to_their_bits() {
        for (intr, x2, optin, want) in [
            (false, false, false, 0u8),
            (true, false, false, 1),
            (true, true, false, 3),
            (false, false, true, 4),
            (true, true, true, 7),
        ] {
            let mut c = sample();
            c.intr_remap = intr;
            c.x2apic_opt_out = x2;
            c.dma_ctrl_platform_opt_in = optin;
            let t = build_dmar(&c).unwrap();
            assert_eq!(t[37], want);
            assert_eq!(byte_sum(&t), 0);
        }
    }

    #[test]
    fn drhd_at_spec_offsets() {
        let mut c = sample();
        c.units[0].segment = 0;
        c.units[0].size_log2_pages = 2;
        c.units[0].scopes.push(DeviceScope::Hpet {
            id: 0,
            bus: 0,
            dev: 0x1F,
            func: 0,
        });
        let t = build_dmar(&c).unwrap();
        let s = structures(&t);
        assert_eq!(s[0].0, TYPE_DRHD);
        let d = s[0].1;
        // Section 8.3: Type 0 (2), Length (2), Flags (1), Size (1), Segment (2), Register Base (8), scopes.
        assert_eq!(le(d, 2, 2) as usize, 16 + 2 * 8);
        assert_eq!(d[4], DRHD_INCLUDE_PCI_ALL);
        assert_eq!(d[5], 2, "2^2 pages");
        assert_eq!(le(d, 6, 2), 0);
        assert_eq!(le(d, 8, 8), 0xFED9_0000);
        // Section 8.3.1: Type, Length, Reserved (2), Enumeration ID, Start Bus, Path (dev, fn).
        assert_eq!(&d[16..24], &[SCOPE_IOAPIC, 8, 0, 0, 0, 0xFF, 0, 0]);
        assert_eq!(&d[24..32], &[SCOPE_HPET, 8, 0, 0, 0, 0, 0x1F, 0]);
    }

    #[test]
    fn rmrr_follows_the_units_at_spec_offsets() {
        let mut c = sample();
        c.rmrrs[0].scopes.push(DeviceScope::Bridge {
            bus: 0,
            dev: 0x1C,
            func: 4,
        });
        let t = build_dmar(&c).unwrap();
        let s = structures(&t);
        // Section 8.2: structures in type order.
        assert_eq!(s.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 1]);
        let r = s[1].1;
        // Section 8.4: Type 1 (2), Length (2), Reserved (2), Segment (2), Base (8), Limit (8), scopes.
        assert_eq!(le(r, 2, 2) as usize, 24 + 2 * 8);
        assert_eq!(le(r, 4, 2), 0);
        assert_eq!(le(r, 6, 2), 0);
        assert_eq!(le(r, 8, 8), 0xA_0000);
        assert_eq!(le(r, 16, 8), 0xB_FFFF);
        assert_eq!(&r[24..32], &[SCOPE_ENDPOINT, 8, 0, 0, 0, 0, 5, 0]);
        assert_eq!(&r[32..40], &[SCOPE_BRIDGE, 8, 0, 0, 0, 0, 0x1C, 4]);
    }

    #[test]
    fn several_units_and_segments() {
        let mut c = sample();
        c.units = vec![
            Drhd {
                segment: 0,
                base: 0xFED9_1000,
                size_log2_pages: 0,
                include_pci_all: false,
                scopes: vec![DeviceScope::Endpoint {
                    bus: 0,
                    dev: 2,
                    func: 0,
                }],
            },
            Drhd {
                segment: 1,
                base: 0xFED9_2000,
                size_log2_pages: 0,
                include_pci_all: true,
                scopes: vec![],
            },
            c.units[0].clone(),
        ];
        let t = build_dmar(&c).unwrap();
        let s = structures(&t);
        assert_eq!(s.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 0, 0, 1]);
        assert_eq!(s[0].1[4], 0);
        assert_eq!(le(s[1].1, 6, 2), 1, "segment 1");
        assert_eq!(s[1].1.len(), 16, "no scopes");
        assert_eq!(le(s[2].1, 8, 8), 0xFED9_0000);
        assert_eq!(byte_sum(&t), 0);
    }

    #[test]
    fn platform_ioapic_scope_is_ff_00_0() {
        let s = DeviceScope::platform_ioapic(7);
        assert_eq!(
            s,
            DeviceScope::IoApic {
                id: 7,
                bus: 0xFF,
                dev: 0,
                func: 0
            }
        );
        assert_eq!(s.source_id(), PLATFORM_IOAPIC_SOURCE_ID);
        let e = DeviceScope::Endpoint {
            bus: 0,
            dev: 3,
            func: 0,
        };
        assert_eq!(e.source_id(), 0x0018, "the test device 00:03.0");
    }

    #[test]
    fn rejects_bad_configs() {
        type Mutation = fn(&mut DmarConfig);
        let cases: &[(&str, Mutation)] = &[
            ("width", |c| c.host_address_width = 11),
            ("width", |c| c.host_address_width = 65),
            ("at least one DRHD", |c| c.units.clear()),
            ("non-zero", |c| c.units[0].base = 0),
            ("4 KiB aligned", |c| c.units[0].base = 0xFED9_0800),
            ("Size field", |c| c.units[0].size_log2_pages = 16),
            ("overflows", |c| {
                c.units[0].base = !0xFFFu64;
                c.units[0].size_log2_pages = 1
            }),
            ("overlaps", |c| {
                let mut other = c.units[0].clone();
                other.segment = 1;
                other.scopes.clear();
                other.base = 0xFED8_F000;
                other.size_log2_pages = 1;
                c.units.push(other)
            }),
            ("must be its last unit", |c| {
                let mut other = c.units[0].clone();
                other.include_pci_all = false;
                other.scopes.clear();
                other.base = 0xFED9_1000;
                c.units.push(other)
            }),
            ("must be its last unit", |c| {
                let mut other = c.units[0].clone();
                other.scopes.clear();
                other.base = 0xFED9_1000;
                c.units.push(other)
            }),
            ("only I/O APIC and HPET", |c| {
                c.units[0].scopes.push(DeviceScope::Endpoint {
                    bus: 0,
                    dev: 3,
                    func: 0,
                })
            }),
            ("device 0..=31", |c| {
                c.units[0].scopes[0] = DeviceScope::IoApic {
                    id: 0,
                    bus: 0,
                    dev: 32,
                    func: 0,
                }
            }),
            ("function 0..=7", |c| {
                c.rmrrs[0].scopes[0] = DeviceScope::Endpoint {
                    bus: 0,
                    dev: 5,
                    func: 8,
                }
            }),
            ("more than once", |c| {
                c.units[0].scopes.push(DeviceScope::platform_ioapic(0))
            }),
            ("more than once", |c| {
                let hpet = DeviceScope::Hpet {
                    id: 1,
                    bus: 0,
                    dev: 0x1F,
                    func: 0,
                };
                c.units[0].scopes.extend([hpet, hpet])
            }),
            ("page-aligned", |c| c.rmrrs[0].base = 0xA_0800),
            ("page-aligned", |c| c.rmrrs[0].end_inclusive = 0xB_FFFE),
            ("page-aligned", |c| c.rmrrs[0].end_inclusive = 0xC_0000),
            ("page-aligned", |c| {
                c.rmrrs[0].base = 0xB_0000;
                c.rmrrs[0].end_inclusive = 0xA_FFFF
            }),
            ("no DRHD serves segment", |c| c.rmrrs[0].segment = 1),
            ("at least one device scope", |c| c.rmrrs[0].scopes.clear()),
            ("only PCI endpoint and bridge", |c| {
                c.rmrrs[0].scopes.push(DeviceScope::platform_ioapic(1))
            }),
            ("do not fit", |c| {
                c.rmrrs[0].scopes = vec![
                    DeviceScope::Endpoint {
                        bus: 1,
                        dev: 0,
                        func: 0
                    };
                    8189
                ]
            }),
        ];
        for (want, mutate) in cases {
            let mut c = sample();
            mutate(&mut c);
            let msg = err(&c);
            assert!(msg.contains(want), "expected `{want}` in `{msg}`");
        }
    }

    #[test]
    fn boundary_configs_are_accepted() {
        let mut c = sample();
        c.host_address_width = 12;
        c.units[0].size_log2_pages = 15;
        // The largest RMRR whose length fits the u16 field: 24 + 8188 * 8 = 65528 (one more scope is 65536).
        c.rmrrs[0].scopes = vec![
            DeviceScope::Endpoint {
                bus: 1,
                dev: 0,
                func: 0
            };
            8188
        ];
        // A one-page RMRR ending at the top of the address space.
        c.rmrrs.push(Rmrr {
            segment: 0,
            base: !0xFFFu64,
            end_inclusive: u64::MAX,
            scopes: c.rmrrs[0].scopes[..1].to_vec(),
        });
        let t = build_dmar(&c).unwrap();
        assert_eq!(t[36], 11);
        let s = structures(&t);
        assert_eq!(s[1].1.len(), 65528);
        assert_eq!(le(s[2].1, 16, 8), u64::MAX);
        assert_eq!(byte_sum(&t), 0);
    }

    #[test]
    fn passes_through_build_acpi_and_is_listed() {
        let dmar = build_dmar(&sample()).unwrap();
        let mut p = sample_platform();
        p.extra_tables = vec![dmar.clone()];
        let t = build_acpi(&p, RSDP_ADDR, LIMIT).unwrap();
        let listed = t.tables.iter().find(|x| x.signature == "DMAR").unwrap();
        assert_eq!(listed.bytes, dmar);
        let xsdt = &t.tables[0].bytes;
        let entries: Vec<u64> = (36..xsdt.len())
            .step_by(8)
            .map(|o| le(xsdt, o, 8))
            .collect();
        assert!(entries.contains(&listed.address), "{entries:x?}");
    }
}
