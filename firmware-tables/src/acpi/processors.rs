//! Processor devices with `_CPC`, and the platform-wide `\_SB._OSC` that goes with them (DSDT parts).
//!
//! ```text
//! Scope (\_SB) {
//!     Method (_OSC, 4, Serialized) {     // platform-wide OSPM capabilities (ACPI 6.5 section 6.2.11.2)
//!         CreateDWordField (Arg3, 0, CDW1)
//!         If (Arg0 == ToUUID ("0811b06e-4a27-44f9-8d60-3cbbc22e7b48")) {
//!             CreateDWordField (Arg3, 4, CDW2)
//!             If (Arg1 != One) { CDW1 |= 0x08 }            // unrecognized revision
//!             Local0 = CDW2 & 0x60                        // CPPC, CPPC2: nothing else
//!             If (CDW2 != Local0) { CDW1 |= 0x10 }        // capabilities masked
//!             CDW2 = Local0
//!         } Else { CDW1 |= 0x04 }                         // unrecognized UUID
//!         Return (Arg3)
//!     }
//!     Name (CPCP, Package (23) { 23, 3, 100, 100, 100, 100, <null>, <null>, ..., One, ..., 0, 0 })
//!     Device (C000) { Name (_HID, "ACPI0007") Name (_UID, 0) Method (_CPC) { Return (\_SB.CPCP) } }
//!     ...                                                  // one per vCPU, _UID = MADT processor UID
//! }
//! ```
//!
//! Why: Linux's amd-pstate (6.12: `amd_pstate_init`) warns "the _CPC object is not present in SBIOS or ACPI
//! disabled" on every AMD CPU it does not rule out by family, unless every online CPU has a parsed `_CPC`
//! (`acpi_cpc_valid`). With one, it reads the FADT preferred PM profile, which is Unspecified (fadt.rs), and
//! stops with an info-level "driver load is disabled". The `_CPC` describes the truth for a vCPU: one fixed
//! performance level the guest cannot change, chosen by the platform ("autonomous selection", always on).
//!
//! The `_CPC` package (ACPI 6.5 section 8.4.6.1, revision 3, 23 entries) uses the simplest encodings the
//! specification allows: Integers for the fields that may be Integers (the four performance levels, counter
//! wraparound time, autonomous selection enable, reference performance, the two frequencies), and the null
//! register `Register (SystemMemory, 0, 0, 0, 0)` for every register this VMM does not implement. Two rules
//! make the null registers acceptable:
//! - Desired Performance may be absent "when OSPM indicates support for CPPC2 in the platform-wide _OSC
//!   capabilities and the Autonomous Selection Enable register is Integer 1" (hence the `\_SB._OSC` granting
//!   CPPC2, and Autonomous Selection Enable = One). Linux 7.3 warns "Desired perf. register is mandatory..."
//!   unless exactly that holds; Debian's 6.12.118 also reads Integer 1 as "autonomous selection, always on".
//! - Optional fields that are not supported are encoded as Integer 0 or as the null register.
//!
//! The reference/delivered performance counters and the performance limited register are not marked optional
//! by the specification, but a vCPU has no such registers (KVM offers no APERF/MPERF); they are null registers
//! too. Linux parses them without complaint and only ever reads them on demand (sysfs `acpi_cppc/`), where a
//! null register reads as "not available" (-EFAULT) without a message.
//!
//! The `\_SB._OSC` acknowledges only CPPC (bit 5) and CPPC2 (bit 6): no flexible address spaces (no register
//! of ours needs them), no diverse highest performance (all vCPUs are equal), nothing unrelated. Unknown bits
//! are masked and flagged, an unknown UUID or revision is flagged, as ACPI 6.5 section 6.2.11 asks and as the
//! host bridge `_OSC` in dsdt.rs does.

use acpi_tables::aml::{Device, Method, Name, Package, Path, Return};
use acpi_tables::{Aml, AmlSink};

use super::dsdt::{encode, osc_method, Raw};

/// UUID of the platform-wide `_OSC` (ACPI 6.5 section 6.2.11.2).
pub(crate) const PLATFORM_OSC_UUID: &str = "0811B06E-4A27-44F9-8D60-3CBBC22E7B48";

/// Platform-wide `_OSC` capabilities DWORD 2 bits (ACPI 6.5 table 6.13).
pub(crate) const OSC_SB_CPC_SUPPORT: u32 = 1 << 5;
pub(crate) const OSC_SB_CPCV2_SUPPORT: u32 = 1 << 6;
/// What the platform acknowledges: CPPC and CPPC revision 2, nothing else.
pub(crate) const PLATFORM_OSC_GRANTED: u32 = OSC_SB_CPC_SUPPORT | OSC_SB_CPCV2_SUPPORT;

/// `_HID` of a processor device (ACPI 6.5 section 8.4).
pub(crate) const PROCESSOR_HID: &str = "ACPI0007";

/// `_CPC` revision 3 (ACPI 6.2+) has 23 entries, NumEntries included; Linux 6.12 and 7.x insist on exactly
/// that count for revision 3.
pub(crate) const CPC_REVISION: u8 = 3;
pub(crate) const CPC_NUM_ENTRIES: u8 = 23;

/// The one performance level of a vCPU, on CPPC's abstract scale: highest = nominal = lowest nonlinear =
/// lowest. Any nonzero value would do; 100 reads as "100 % of nominal".
pub(crate) const CPC_PERFORMANCE: u32 = 100;

/// Name of the `_CPC` package every processor returns.
const CPC_PACKAGE: &str = "CPCP";

/// Index of each `_CPC` entry (ACPI 6.5 table 8.37), NumEntries and Revision included.
#[cfg(test)]
pub(crate) mod cpc {
    pub const NUM_ENTRIES: usize = 0;
    pub const REVISION: usize = 1;
    pub const HIGHEST: usize = 2;
    pub const NOMINAL: usize = 3;
    pub const LOWEST_NONLINEAR: usize = 4;
    pub const LOWEST: usize = 5;
    pub const DESIRED: usize = 7;
    pub const COUNTER_WRAPAROUND_TIME: usize = 12;
    pub const AUTONOMOUS_SELECTION_ENABLE: usize = 17;
    pub const REFERENCE_PERFORMANCE: usize = 20;
    pub const LOWEST_FREQUENCY: usize = 21;
    pub const NOMINAL_FREQUENCY: usize = 22;
}

/// ASL `Register (SystemMemory, 0, 0, 0, 0)`, the null register: a Generic Register Descriptor (ACPI 6.5
/// section 6.4.3.7: tag 0x82, length 12, address space 0 = SystemMemory, bit width, bit offset, access size,
/// 64-bit address, all zero). (`acpi_tables::aml::Register` writes length 0x12, which is not 12.)
pub(crate) struct NullRegister;

/// The encoded descriptor, without the resource template around it.
pub(crate) const NULL_REGISTER: [u8; 15] = [0x82, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

impl Aml for NullRegister {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(&NULL_REGISTER);
    }
}

/// One `_CPC` entry.
enum CpcEntry {
    Integer(u32),
    /// `ResourceTemplate () { Register (SystemMemory, 0, 0, 0, 0) }`: not implemented.
    NullRegister,
}

/// Entries 2.. of the `_CPC` package (ACPI 6.5 table 8.37), in order.
fn cpc_entries() -> [CpcEntry; CPC_NUM_ENTRIES as usize - 2] {
    use CpcEntry::{Integer, NullRegister as Null};
    [
        Integer(CPC_PERFORMANCE), // Highest Performance
        Integer(CPC_PERFORMANCE), // Nominal Performance
        Integer(CPC_PERFORMANCE), // Lowest Nonlinear Performance
        Integer(CPC_PERFORMANCE), // Lowest Performance
        Null,                     // Guaranteed Performance Register (optional)
        Null,       // Desired Performance Register (optional: CPPC2 + autonomous Integer 1)
        Null,       // Minimum Performance Register (optional)
        Null,       // Maximum Performance Register (optional)
        Null,       // Performance Reduction Tolerance Register (optional)
        Null,       // Time Window Register (optional)
        Integer(0), // Counter Wraparound Time (optional; 0: not supported)
        Null,       // Reference Performance Counter Register (none in a vCPU)
        Null,       // Delivered Performance Counter Register (none in a vCPU)
        Null,       // Performance Limited Register (none in a vCPU)
        Null,       // CPPC Enable Register (optional)
        Integer(1), // Autonomous Selection Enable: always (platform-only selection)
        Null,       // Autonomous Activity Window Register (optional)
        Null,       // Energy Performance Preference Register (optional)
        Integer(0), // Reference Performance (optional; 0: not supported)
        Integer(0), // Lowest Frequency (optional, revision 3; 0: not supported)
        Integer(0), // Nominal Frequency (optional, revision 3; 0: not supported)
    ]
}

/// `Name (CPCP, Package (23) {...})` in `\_SB`: the `_CPC` of every processor.
pub(crate) fn cpc_package() -> Raw {
    let entries: Vec<Raw> = cpc_entries()
        .iter()
        .map(|e| match e {
            CpcEntry::Integer(v) => encode(v),
            CpcEntry::NullRegister => encode(&acpi_tables::aml::ResourceTemplate::new(vec![
                &NullRegister,
            ])),
        })
        .collect();
    let mut children: Vec<&dyn Aml> = vec![&CPC_NUM_ENTRIES, &CPC_REVISION];
    children.extend(entries.iter().map(|e| e as &dyn Aml));
    encode(&Name::new(CPC_PACKAGE.into(), &Package::new(children)))
}

/// Processor device names: `C000`, `C001`, ... (hex, like QEMU's), one per `_UID`.
pub(crate) fn processor_name(uid: u8) -> String {
    format!("C{uid:03X}")
}

/// `Device (Cxxx) { Name (_HID, "ACPI0007") Name (_UID, uid) Method (_CPC) { Return (\_SB.CPCP) } }`.
///
/// `uid` is the ACPI processor UID of the vCPU's MADT Processor Local APIC structure (madt.rs), which is how
/// Linux (`acpi_processor_get_info` -> `acpi_get_phys_id`) maps the device to its CPU.
pub(crate) fn processor_device(uid: u8) -> Raw {
    let hid = Name::new("_HID".into(), &PROCESSOR_HID);
    let uid_name = Name::new("_UID".into(), &uid);
    let package = Path::new(&format!("\\_SB_.{CPC_PACKAGE}"));
    let ret = Return::new(&package);
    let cpc = Method::new("_CPC".into(), 0, false, vec![&ret]);
    encode(&Device::new(
        processor_name(uid).as_str().into(),
        vec![&hid, &uid_name, &cpc],
    ))
}

/// The platform-wide `\_SB._OSC` (see the module documentation).
pub(crate) fn platform_osc() -> Raw {
    osc_method(PLATFORM_OSC_UUID, ("CDW2", 4), PLATFORM_OSC_GRANTED)
}

#[cfg(test)]
mod tests {
    use super::super::madt::{build_madt, structures, TYPE_LOCAL_APIC};
    use super::super::test_support::sample_platform;
    use super::*;

    /// A decoded `_CPC` package element.
    #[derive(Debug, PartialEq)]
    enum Element {
        Integer(u64),
        Buffer(Vec<u8>),
    }

    /// AML PkgLength (ACPI 6.5 section 20.2.4): (length, bytes used by the encoding).
    fn pkg_length(b: &[u8]) -> (usize, usize) {
        let follow = usize::from(b[0] >> 6);
        if follow == 0 {
            return (usize::from(b[0] & 0x3F), 1);
        }
        let mut len = usize::from(b[0] & 0x0F);
        for i in 0..follow {
            len |= usize::from(b[1 + i]) << (4 + 8 * i);
        }
        (len, 1 + follow)
    }

    /// Decodes one integer constant (ZeroOp, OneOp, Byte/Word/DWord/QWordPrefix): (value, bytes used).
    fn integer(b: &[u8]) -> Option<(u64, usize)> {
        let le = |n: usize| {
            (
                b[1..=n]
                    .iter()
                    .rev()
                    .fold(0u64, |a, x| (a << 8) | u64::from(*x)),
                n + 1,
            )
        };
        match b[0] {
            0x00 => Some((0, 1)),
            0x01 => Some((1, 1)),
            0x0A => Some(le(1)),
            0x0B => Some(le(2)),
            0x0C => Some(le(4)),
            0x0E => Some(le(8)),
            _ => None,
        }
    }

    /// Decodes `Name (CPCP, Package (n) {...})` as cpc_package() writes it.
    fn decode_cpc(name: &[u8]) -> Vec<Element> {
        assert_eq!(&name[..5], b"\x08CPCP", "NameOp CPCP");
        assert_eq!(name[5], 0x12, "PackageOp");
        let (len, used) = pkg_length(&name[6..]);
        assert_eq!(6 + len, name.len(), "PkgLength covers the package exactly");
        let body = &name[6 + used..];
        let count = usize::from(body[0]);
        let mut out = Vec::new();
        let mut at = 1;
        while at < body.len() {
            if let Some((v, n)) = integer(&body[at..]) {
                out.push(Element::Integer(v));
                at += n;
            } else {
                assert_eq!(body[at], 0x11, "BufferOp at {at}");
                let (len, used) = pkg_length(&body[at + 1..]);
                let end = at + 1 + len;
                let (size, n) = integer(&body[at + 1 + used..]).expect("buffer size");
                let data = body[at + 1 + used + n..end].to_vec();
                assert_eq!(data.len() as u64, size);
                out.push(Element::Buffer(data));
                at = end;
            }
        }
        assert_eq!(out.len(), count, "element count");
        out
    }

    fn cpc() -> Vec<Element> {
        decode_cpc(&cpc_package().0)
    }

    /// `struct cpc_reg` (Linux include/acpi/cppc_acpi.h) over a Buffer element: the Generic Register
    /// Descriptor fields (space_id, bit_width, bit_offset, access_width, address).
    fn cpc_reg(b: &[u8]) -> (u8, u8, u8, u8, u64) {
        let addr = b[7..15]
            .iter()
            .rev()
            .fold(0u64, |a, x| (a << 8) | u64::from(*x));
        (b[3], b[4], b[5], b[6], addr)
    }

    /// Linux's `IS_NULL_REG` / `CPC_SUPPORTED` for one element.
    fn supported(e: &Element) -> bool {
        match e {
            Element::Integer(v) => *v != 0,
            Element::Buffer(b) => cpc_reg(b) != (0, 0, 0, 0, 0),
        }
    }

    #[test]
    fn null_register_is_a_generic_register_descriptor() {
        // Tag 0x82 (large item 0x02), length 12 (ACPI 6.5 section 6.4.3.7), SystemMemory, all zero.
        assert_eq!(NULL_REGISTER.len(), 3 + 12);
        let mut v = Vec::new();
        NullRegister.to_aml_bytes(&mut v);
        assert_eq!(v, NULL_REGISTER);
        assert_eq!(u16::from_le_bytes([v[1], v[2]]), 12);
    }

    #[test]
    fn cpc_is_revision_3_with_23_entries() {
        let e = cpc();
        assert_eq!(e.len(), 23);
        assert_eq!(e[cpc::NUM_ENTRIES], Element::Integer(23));
        assert_eq!(e[cpc::REVISION], Element::Integer(3));
    }

    /// Everything Linux 6.12 and 7.3 `acpi_cppc_processor_probe` check, and what `cppc_get_perf_caps` needs.
    #[test]
    fn cpc_passes_linux_probe() {
        let e = cpc();
        for (i, el) in e.iter().enumerate() {
            if let Element::Buffer(b) = el {
                // A resource template with one Generic Register Descriptor and the end tag.
                assert_eq!(b.len(), 17, "entry {i}");
                assert_eq!(&b[..15], &NULL_REGISTER, "entry {i}");
                assert_eq!(&b[15..], &[0x79, 0], "entry {i}: end tag");
                // SystemMemory with address 0: no ioremap, no flexible-address-space _OSC bit needed.
                assert_eq!(cpc_reg(b).0, 0, "entry {i}: SystemMemory");
                assert_eq!(cpc_reg(b).4, 0, "entry {i}: address 0");
            }
        }
        // The four performance levels are Integers, nonzero and ordered.
        let int = |i: usize| match e[i] {
            Element::Integer(v) => v,
            Element::Buffer(_) => panic!("entry {i} is a Buffer"),
        };
        let (high, nom, nonlin, low) = (
            int(cpc::HIGHEST),
            int(cpc::NOMINAL),
            int(cpc::LOWEST_NONLINEAR),
            int(cpc::LOWEST),
        );
        assert!(0 < low && low <= nonlin && nonlin <= nom && nom <= high);
        // 7.x: "Desired perf. register is mandatory if CPPC v2 is not supported or autonomous selection is
        // disabled" unless Desired is supported or (CPPC2 acked and Autonomous Selection Enable supported).
        assert!(!supported(&e[cpc::DESIRED]));
        assert_eq!(e[cpc::AUTONOMOUS_SELECTION_ENABLE], Element::Integer(1));
        assert_ne!(PLATFORM_OSC_GRANTED & OSC_SB_CPCV2_SUPPORT, 0);
        // Optional Integer fields: 0 means "not supported".
        for i in [
            cpc::COUNTER_WRAPAROUND_TIME,
            cpc::REFERENCE_PERFORMANCE,
            cpc::LOWEST_FREQUENCY,
            cpc::NOMINAL_FREQUENCY,
        ] {
            assert_eq!(e[i], Element::Integer(0), "entry {i}");
        }
    }

    #[test]
    fn platform_osc_grants_cppc_only() {
        assert_eq!(PLATFORM_OSC_GRANTED, 0x60);
        let osc = platform_osc().0;
        // ToUUID byte order: first three fields little-endian, the rest as written.
        let uuid = [
            0x6E, 0xB0, 0x11, 0x08, 0x27, 0x4A, 0xF9, 0x44, 0x8D, 0x60, 0x3C, 0xBB, 0xC2, 0x2E,
            0x7B, 0x48,
        ];
        assert!(osc.windows(16).any(|w| w == uuid));
        // `And (CDW2, 0x60, Local0)`: AndOp, name CDW2, byte constant 0x60, Local0.
        assert!(osc
            .windows(8)
            .any(|w| w == [0x7B, b'C', b'D', b'W', b'2', 0x0A, 0x60, 0x60]));
        // 4 arguments, serialized.
        assert_eq!(osc[0], 0x14, "MethodOp");
        let name = osc.windows(4).position(|w| w == b"_OSC").unwrap();
        assert_eq!(osc[name + 4], 4 | 1 << 3);
    }

    #[test]
    fn processor_device_identity() {
        let d = processor_device(5).0;
        assert_eq!(&d[..2], &[0x5B, 0x82], "DeviceOp");
        let find = |n: &[u8]| d.windows(n.len()).position(|w| w == n);
        assert!(find(b"C005").is_some());
        assert!(
            find(b"\x08_HID\x0DACPI0007\x00").is_some(),
            "_HID is the string ACPI0007"
        );
        assert!(find(b"\x08_UID\x0A\x05").is_some(), "_UID 5");
        // Method (_CPC, 0, NotSerialized) { Return (\_SB.CPCP) }
        assert!(find(b"_CPC\x00\xA4\\\x2E_SB_CPCP").is_some());
        assert_eq!(processor_name(0), "C000");
        assert_eq!(processor_name(255), "C0FF");
    }

    /// Linux maps a processor device to its CPU by `_UID` == MADT Processor Local APIC "ACPI Processor UID"
    /// (`map_lapic_id`); every vCPU needs a `_CPC` for `acpi_cpc_valid()`.
    #[test]
    fn processor_uids_are_the_madt_uids() {
        for cpus in [1u8, 2, 8] {
            let mut p = sample_platform();
            p.cpus = cpus;
            let madt = build_madt(&p);
            let uids: Vec<u8> = structures(&madt)
                .into_iter()
                .filter(|(t, _)| *t == TYPE_LOCAL_APIC)
                .map(|(_, s)| s[2])
                .collect();
            assert_eq!(uids.len(), usize::from(cpus));
            let dsdt = super::super::dsdt::build_dsdt(&p);
            for uid in 0..=u8::MAX {
                let dev = processor_device(uid).0;
                let present = dsdt.windows(dev.len()).any(|w| w == dev.as_slice());
                assert_eq!(present, uids.contains(&uid), "cpus {cpus}, uid {uid}");
            }
        }
    }
}
