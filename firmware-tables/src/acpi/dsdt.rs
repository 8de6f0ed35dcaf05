//! DSDT: the AML namespace (ACPI 6.5 section 5.2.11.1), emitted with `acpi_tables::aml`.
//!
//! ```text
//! Scope (\_SB) {
//!     Method (_OSC, 4, Serialized) // platform-wide _OSC: acknowledges CPPC + CPPC2 only (processors.rs)
//!     Name (CPCP, Package (23))  // the _CPC every processor returns (processors.rs)
//!     Device (C000) {            // one ACPI0007 processor device per vCPU (processors.rs)
//!         _HID "ACPI0007", _UID = MADT processor UID, _CPC
//!     }
//!     ...
//!     Device (PCI0) {            // PCIe host bridge, PNP0A08 / PNP0A03
//!         _HID, _CID, _UID = segment, _SEG, _BBN, _CRS, _OSC
//!     }
//!     Device (MRES) {            // PNP0C02 motherboard resources: reserves the ECAM window
//!         _HID, _UID 0, _CRS { Memory32Fixed / QWordMemory }
//!     }
//!     Device (COM1) {            // only with a serial port: PNP0501
//!         _HID, _UID 1, _CRS { IO (Decode16), IRQNoFlags }
//!     }
//! }
//! ```
//!
//! The host bridge has no `_ADR`: ACPI 6.5 section 6.1 says a device has `_HID` or `_ADR`, not both (iasl
//! warns "Device object requires either a _HID or _ADR, but not both"), and Linux identifies the root bridge
//! by its `_HID`/`_SEG`/`_BBN`/`_CRS`, never by `_ADR`.
//!
//! `_OSC` for the host bridge (PCI Firmware Specification 3.3, section 4.5) grants every control the OS asks
//! for among the ones that spec defines: there is no firmware in this machine that could keep native
//! hotplug, PME, AER, LTR or DPC for itself, so the OS must own them all. A wrong UUID sets "unrecognized
//! UUID", a revision other than 1 sets "unrecognized revision", a request for an undefined control bit is
//! masked and flagged (as the spec requires). Linux (`drivers/acpi/pci_root.c`) then logs
//! "_OSC: OS now controls [...]" with no "platform does not support" line.

use acpi_tables::aml::{
    AddressSpace, AddressSpaceCacheable, And, Arg, CreateDWordField, Device, EISAName, Else, Equal,
    If, Local, Memory32Fixed, Method, Name, NotEqual, Or, Path, ResourceTemplate, Return, Scope,
    Store, Uuid, IO, ONE, ZERO,
};
use acpi_tables::sdt::Sdt;
use acpi_tables::{Aml, AmlSink};

use super::processors::{cpc_package, platform_osc, processor_device};
use super::{AcpiPlatform, PciHostBridge, OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// DSDT revision 2: integers are 64 bits (needed for the QWord window).
const DSDT_REVISION: u8 = 2;

/// UUID of the PCI host bridge `_OSC` (PCI Firmware Specification 3.3, section 4.5.1).
pub(crate) const PCI_OSC_UUID: &str = "33DB4D5B-1FF7-401C-9657-7441C03DD766";

/// `_OSC` control bits the platform grants (PCI Firmware 3.3 table 4-5): native PCIe hotplug (0), SHPC
/// hotplug (1), PME (2), AER (3), PCIe capability structure (4), LTR (5), DPC (7), completion timeout (8),
/// SFI (9). Bit 6 is reserved.
pub(crate) const OSC_GRANTED_CONTROLS: u32 = 0x3BF;

/// PCI config address/data ports (type 1 mechanism), consumed by the host bridge.
const PCI_CONFIG_PORTS: (u16, u16) = (0xCF8, 0xCFF);

/// Already-encoded AML, so each device can be built in its own function.
pub(crate) struct Raw(pub(crate) Vec<u8>);

impl Aml for Raw {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(&self.0);
    }
}

pub(crate) fn encode(a: &dyn Aml) -> Raw {
    let mut v = Vec::new();
    a.to_aml_bytes(&mut v);
    Raw(v)
}

/// ASL `IRQNoFlags () {irq}`: the 2-byte-form IRQ descriptor (ACPI 6.5 section 6.4.2.1): tag 0x22
/// (small item 0x04, length 2) and a 16-bit mask; edge triggered, active high, exclusive.
struct IrqNoFlags(u8);

impl Aml for IrqNoFlags {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.byte(0x22);
        sink.word(1u16 << self.0);
    }
}

/// The I/O window minus the config ports: zero, one or two inclusive (min, max) ranges.
pub(crate) fn io_ranges((base, size): (u16, u16)) -> Vec<(u16, u16)> {
    if size == 0 {
        return Vec::new();
    }
    // validate() guarantees base + size <= 0x10000.
    let (lo, hi) = (u32::from(base), u32::from(base) + u32::from(size) - 1);
    let (cfg_lo, cfg_hi) = (u32::from(PCI_CONFIG_PORTS.0), u32::from(PCI_CONFIG_PORTS.1));
    let mut out = Vec::new();
    if lo < cfg_lo {
        out.push((lo as u16, hi.min(cfg_lo - 1) as u16));
    }
    if hi > cfg_hi {
        out.push((lo.max(cfg_hi + 1) as u16, hi as u16));
    }
    out
}

/// A memory window as DWordMemory when it (and its length) fit in 32 bits, QWordMemory otherwise.
fn mem_window((base, size): (u64, u64), cacheable: AddressSpaceCacheable) -> Option<Raw> {
    if size == 0 {
        return None;
    }
    let end = base + (size - 1);
    Some(match (u32::try_from(base), u32::try_from(end)) {
        (Ok(b), Ok(e)) if size <= u64::from(u32::MAX) => encode(&AddressSpace::<u32>::new_memory(
            cacheable, true, b, e, None,
        )),
        _ => encode(&AddressSpace::<u64>::new_memory(
            cacheable, true, base, end, None,
        )),
    })
}

/// `_CRS` of the host bridge: bus range, config ports, I/O and memory windows.
fn host_bridge_crs(pci: &PciHostBridge) -> Raw {
    let bus = AddressSpace::<u16>::new_bus_number(pci.bus_start.into(), pci.bus_end.into());
    let cfg_ports = IO::new(PCI_CONFIG_PORTS.0, PCI_CONFIG_PORTS.0, 1, 8);
    let io: Vec<AddressSpace<u16>> = io_ranges(pci.io)
        .into_iter()
        .map(|(min, max)| AddressSpace::<u16>::new_io(min, max, None))
        .collect();
    // The 64-bit window is marked cacheable (not prefetchable), as QEMU does; Linux ignores the difference.
    let mem: Vec<Raw> = [
        mem_window(pci.mmio32, AddressSpaceCacheable::NotCacheable),
        mem_window(pci.mmio64, AddressSpaceCacheable::Cacheable),
    ]
    .into_iter()
    .flatten()
    .collect();

    let mut children: Vec<&dyn Aml> = vec![&bus, &cfg_ports];
    children.extend(io.iter().map(|w| w as &dyn Aml));
    children.extend(mem.iter().map(|w| w as &dyn Aml));
    encode(&Name::new("_CRS".into(), &ResourceTemplate::new(children)))
}

/// The host bridge `_OSC` (see the module documentation):
///
/// ```text
/// Method (_OSC, 4, Serialized) {
///     CreateDWordField (Arg3, 0, CDW1)
///     If (Arg0 == ToUUID ("33db4d5b-...")) {
///         CreateDWordField (Arg3, 8, CDW3)
///         If (Arg1 != One) { CDW1 |= 0x08 }
///         Local0 = CDW3 & 0x3BF
///         If (CDW3 != Local0) { CDW1 |= 0x10 }
///         CDW3 = Local0
///     } Else { CDW1 |= 0x04 }
///     Return (Arg3)
/// }
/// ```
fn host_bridge_osc() -> Raw {
    osc_method(PCI_OSC_UUID, ("CDW3", 8), OSC_GRANTED_CONTROLS)
}

/// `_OSC` status bits in capabilities DWORD 1 (ACPI 6.5 section 6.2.11, table 6.16).
pub(crate) const OSC_UNRECOGNIZED_UUID: u8 = 1 << 2;
pub(crate) const OSC_UNRECOGNIZED_REVISION: u8 = 1 << 3;
pub(crate) const OSC_CAPABILITIES_MASKED: u8 = 1 << 4;

/// An `_OSC` method for one UUID (ACPI 6.5 section 6.2.11) that grants exactly `granted` of the capabilities the OS
/// passes in the DWORD named `dword` at byte `offset` of Arg3: an unknown revision sets "unrecognized revision",
/// masked bits set "capabilities masked", another UUID sets "unrecognized UUID"; Arg3 comes back.
pub(crate) fn osc_method(uuid: &str, (dword, offset): (&str, u8), granted: u32) -> Raw {
    let cdw1 = Path::new("CDW1");
    let cdw = Path::new(dword);
    let create_cdw1 = CreateDWordField::new(&cdw1, &Arg(3), &ZERO);
    let create_cdw = CreateDWordField::new(&cdw, &Arg(3), &offset);
    let uuid = Uuid::new(uuid);
    let is_ours = Equal::new(&Arg(0), &uuid);

    let bad_revision = NotEqual::new(&Arg(1), &ONE);
    let flag_revision = Or::new(&cdw1, &cdw1, &OSC_UNRECOGNIZED_REVISION);
    let if_bad_revision = If::new(&bad_revision, vec![&flag_revision]);

    let grant = And::new(&Local(0), &cdw, &granted);
    let masked = NotEqual::new(&cdw, &Local(0));
    let flag_masked = Or::new(&cdw1, &cdw1, &OSC_CAPABILITIES_MASKED);
    let if_masked = If::new(&masked, vec![&flag_masked]);
    let store_granted = Store::new(&cdw, &Local(0));

    let if_ours = If::new(
        &is_ours,
        vec![
            &create_cdw,
            &if_bad_revision,
            &grant,
            &if_masked,
            &store_granted,
        ],
    );
    let flag_uuid = Or::new(&cdw1, &cdw1, &OSC_UNRECOGNIZED_UUID);
    let else_uuid = Else::new(vec![&flag_uuid]);
    let ret = Return::new(&Arg(3));
    encode(&Method::new(
        "_OSC".into(),
        4,
        true,
        vec![&create_cdw1, &if_ours, &else_uuid, &ret],
    ))
}

/// `Device (PCI0)`.
fn host_bridge(pci: &PciHostBridge) -> Raw {
    let hid = Name::new("_HID".into(), &EISAName::new("PNP0A08"));
    let cid = Name::new("_CID".into(), &EISAName::new("PNP0A03"));
    let uid = Name::new("_UID".into(), &pci.segment);
    let seg = Name::new("_SEG".into(), &pci.segment);
    let bbn = Name::new("_BBN".into(), &pci.bus_start);
    let crs = host_bridge_crs(pci);
    let osc = host_bridge_osc();
    encode(&Device::new(
        "PCI0".into(),
        vec![&hid, &cid, &uid, &seg, &bbn, &crs, &osc],
    ))
}

/// `Device (MRES)`: PNP0C02 reserving the ECAM window, so Linux trusts MCFG
/// (`arch/x86/pci/mmconfig-shared.c`: "ECAM ... reserved as ACPI motherboard resource").
fn motherboard_resources(pci: &PciHostBridge) -> Raw {
    let (start, len) = pci.ecam_window();
    let hid = Name::new("_HID".into(), &EISAName::new("PNP0C02"));
    let uid = Name::new("_UID".into(), &ZERO);
    let window = match (u32::try_from(start), u32::try_from(len)) {
        (Ok(s), Ok(l)) if u64::from(s) + u64::from(l) <= 1 << 32 => {
            encode(&Memory32Fixed::new(true, s, l))
        }
        _ => encode(&AddressSpace::<u64>::new_memory(
            AddressSpaceCacheable::NotCacheable,
            true,
            start,
            start + (len - 1),
            None,
        )),
    };
    let crs = Name::new("_CRS".into(), &ResourceTemplate::new(vec![&window]));
    encode(&Device::new("MRES".into(), vec![&hid, &uid, &crs]))
}

/// `Device (COM1)`: a 16550 at `port` on ISA `irq`.
fn com1(port: u16, irq: u8) -> Raw {
    let hid = Name::new("_HID".into(), &EISAName::new("PNP0501"));
    let uid = Name::new("_UID".into(), &ONE);
    let io = IO::new(port, port, 0, 8);
    let irq = IrqNoFlags(irq);
    let crs = Name::new("_CRS".into(), &ResourceTemplate::new(vec![&io, &irq]));
    encode(&Device::new("COM1".into(), vec![&hid, &uid, &crs]))
}

/// Builds the DSDT (the platform must have passed `validate`).
pub(crate) fn build_dsdt(p: &AcpiPlatform) -> Vec<u8> {
    let osc = platform_osc();
    let cpc = cpc_package();
    let cpus: Vec<Raw> = (0..p.cpus).map(processor_device).collect();
    let pci0 = host_bridge(&p.pci);
    let mres = motherboard_resources(&p.pci);
    let com = p.serial_com1.map(|(port, irq)| com1(port, irq));
    let mut devices: Vec<&dyn Aml> = vec![&osc, &cpc];
    devices.extend(cpus.iter().map(|c| c as &dyn Aml));
    devices.extend([&pci0 as &dyn Aml, &mres]);
    if let Some(c) = &com {
        devices.push(c);
    }
    let sb = Scope::new("\\_SB_".into(), devices);

    let mut dsdt = Sdt::new(
        *b"DSDT",
        36,
        DSDT_REVISION,
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
    );
    let mut aml = Vec::new();
    sb.to_aml_bytes(&mut aml);
    dsdt.append_slice(&aml);
    dsdt.as_slice().to_vec()
}

#[cfg(test)]
mod tests {
    use super::super::byte_sum;
    use super::super::test_support::{le, sample_platform};
    use super::*;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// Little-endian EISA id encoding (ACPI 6.5 section 19.3.4, EISAID macro).
    fn eisa(id: &str) -> [u8; 4] {
        let b = id.as_bytes();
        let v = (u32::from(b[0] - 0x40) << 26)
            | (u32::from(b[1] - 0x40) << 21)
            | (u32::from(b[2] - 0x40) << 16)
            | u32::from_str_radix(&id[3..], 16).unwrap();
        v.to_be_bytes()
    }

    #[test]
    fn io_window_excludes_config_ports() {
        assert_eq!(io_ranges((0x1000, 0xF000)), vec![(0x1000, 0xFFFF)]);
        assert_eq!(io_ranges((0, 0)), vec![]);
        assert_eq!(io_ranges((0x0, 0xFFFF)), vec![(0, 0xCF7), (0xD00, 0xFFFE)]);
        assert_eq!(io_ranges((0xCF8, 8)), vec![]);
        assert_eq!(io_ranges((0xCFC, 0x104)), vec![(0xD00, 0xDFF)]);
        assert_eq!(io_ranges((0xC00, 0xFC)), vec![(0xC00, 0xCF7)]);
        assert_eq!(io_ranges((0x100, 0x10)), vec![(0x100, 0x10F)]);
    }

    #[test]
    fn header_and_checksum() {
        let d = build_dsdt(&sample_platform());
        assert_eq!(&d[0..4], b"DSDT");
        assert_eq!(le(&d, 4, 4), d.len() as u64);
        assert_eq!(d[8], DSDT_REVISION);
        assert_eq!(byte_sum(&d), 0);
        // The body is a single Scope (opcode 0x10) for \_SB_.
        assert_eq!(d[36], 0x10);
        assert!(find(&d, b"\\_SB_").is_some());
    }

    #[test]
    fn host_bridge_identity_and_windows() {
        let d = build_dsdt(&sample_platform());
        for name in [
            b"PCI0", b"_HID", b"_CID", b"_SEG", b"_BBN", b"_CRS", b"_OSC", b"MRES",
        ] {
            assert!(
                find(&d, name).is_some(),
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        assert!(
            find(&d, b"_ADR").is_none(),
            "_HID and _ADR must not both be present"
        );
        assert!(find(&d, &eisa("PNP0A08")).is_some());
        assert!(find(&d, &eisa("PNP0A03")).is_some());
        assert!(find(&d, &eisa("PNP0C02")).is_some());
        // WordBusNumber 0..=255 (section 6.4.3.5.3): tag 0x88, length 13, type 2 (bus), flags, type flags 0,
        // granularity 0, min 0, max 0xFF, translation 0, length 0x100.
        let bus = [0x88, 13, 0, 2, 0x0C, 0, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 1];
        assert!(find(&d, &bus).is_some());
        // IO (Decode16, 0xCF8, 0xCF8, 1, 8) (section 6.4.2.5).
        assert!(find(&d, &[0x47, 1, 0xF8, 0x0C, 0xF8, 0x0C, 1, 8]).is_some());
        // WordIO 0x1000..=0xFFFF: min, max, translation 0, length 0xF000.
        assert!(find(&d, &[0x00, 0x10, 0xFF, 0xFF, 0, 0, 0x00, 0xF0]).is_some());
        // DWordMemory min 0xC0000000, max 0xDFFFFFFF.
        let mut dword = 0xC000_0000u32.to_le_bytes().to_vec();
        dword.extend_from_slice(&0xDFFF_FFFFu32.to_le_bytes());
        assert!(find(&d, &dword).is_some());
        // QWordMemory min 0x40_0000_0000, max 0x4F_FFFF_FFFF.
        let mut qword = 0x40_0000_0000u64.to_le_bytes().to_vec();
        qword.extend_from_slice(&0x4F_FFFF_FFFFu64.to_le_bytes());
        assert!(find(&d, &qword).is_some());
        // Memory32Fixed (ReadWrite, 0xE0000000, 0x10000000) in MRES (section 6.4.3.4).
        let mut fixed = vec![0x86, 9, 0, 1];
        fixed.extend_from_slice(&0xE000_0000u32.to_le_bytes());
        fixed.extend_from_slice(&0x1000_0000u32.to_le_bytes());
        assert!(find(&d, &fixed).is_some());
    }

    #[test]
    fn osc_checks_the_pci_uuid() {
        let d = build_dsdt(&sample_platform());
        // ToUUID byte order: first three fields little-endian, the rest as written.
        let uuid = [
            0x5B, 0x4D, 0xDB, 0x33, 0xF7, 0x1F, 0x1C, 0x40, 0x96, 0x57, 0x74, 0x41, 0xC0, 0x3D,
            0xD7, 0x66,
        ];
        assert!(find(&d, &uuid).is_some());
        // The granted-controls mask is a word constant (0x0B prefix).
        assert!(find(&d, &[0x0B, 0xBF, 0x03]).is_some());
        // Method flags: 4 arguments, serialized (the host bridge's _OSC, not \_SB._OSC before it).
        let pci0 = find(&d, b"PCI0").unwrap();
        let osc = pci0 + find(&d[pci0..], b"_OSC").unwrap();
        assert_eq!(d[osc + 4], 4 | 1 << 3);
        assert!(
            find(&d[..pci0], b"_OSC").is_some(),
            "\\_SB._OSC comes first"
        );
    }

    #[test]
    fn sb_scope_holds_platform_osc_cpc_and_processors() {
        let mut p = sample_platform();
        p.cpus = 3;
        let d = build_dsdt(&p);
        for name in [b"CPCP", b"C000", b"C001", b"C002", b"_CPC"] {
            assert!(
                find(&d, name).is_some(),
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        assert!(find(&d, b"C003").is_none());
        assert_eq!(d.windows(8).filter(|w| w == b"ACPI0007").count(), 3);
        // Everything stays inside the one Scope (\_SB_) and the checksum holds.
        assert_eq!(d[36], 0x10);
        assert_eq!(byte_sum(&d), 0);
    }

    #[test]
    fn com1_only_when_present() {
        let mut p = sample_platform();
        let d = build_dsdt(&p);
        assert!(find(&d, &eisa("PNP0501")).is_some());
        // IO (Decode16, 0x3F8, 0x3F8, 0, 8) then IRQNoFlags () {4}.
        assert!(find(&d, &[0x47, 1, 0xF8, 3, 0xF8, 3, 0, 8, 0x22, 0x10, 0x00]).is_some());
        p.serial_com1 = None;
        let d = build_dsdt(&p);
        assert!(find(&d, &eisa("PNP0501")).is_none());
        assert!(find(&d, b"COM1").is_none());
        assert_eq!(byte_sum(&d), 0);
    }

    #[test]
    fn full_4g_window_uses_qword() {
        let w = mem_window((0, 0x1_0000_0000), AddressSpaceCacheable::Cacheable).unwrap();
        // QWord address space descriptor (section 6.4.3.5.1): tag 0x8A; length field at the end.
        assert_eq!(w.0[0], 0x8A);
        assert_eq!(le(&w.0, w.0.len() - 8, 8), 0x1_0000_0000);
        let w = mem_window((0xC000_0000, 0x1000), AddressSpaceCacheable::NotCacheable).unwrap();
        assert_eq!(w.0[0], 0x87, "DWord descriptor below 4 GiB");
        assert!(mem_window((0x1000, 0), AddressSpaceCacheable::NotCacheable).is_none());
    }

    #[test]
    fn ecam_above_4g_is_reserved_with_qword() {
        let mut p = sample_platform();
        p.pci.ecam_base = 0x10_0000_0000;
        let d = build_dsdt(&p);
        let mut qword = 0x10_0000_0000u64.to_le_bytes().to_vec();
        qword.extend_from_slice(&0x10_0FFF_FFFFu64.to_le_bytes());
        assert!(find(&d, &qword).is_some());
    }
}
