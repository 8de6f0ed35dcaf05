//! The machine description: what the VMM publishes to a guest (e820 map, ACPI tables, PCI functions, vCPUs).
//!
//! `iovmm describe` prints it as JSON; the guest-tests runner hands it to the guest as `/expect.json`, and the
//! guest compares it with what Linux actually sees (`/sys/firmware/memmap`, `/sys/firmware/acpi/tables`,
//! `/sys/bus/pci/devices`). One type on both sides keeps the two from drifting apart.

use serde::{Deserialize, Serialize};

/// Kind of an e820 entry, named as Linux shows it in `/sys/firmware/memmap/N/type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum E820Kind {
    /// `E820_TYPE_RAM` (1): "System RAM".
    Ram,
    /// `E820_TYPE_RESERVED` (2): "Reserved".
    Reserved,
    /// `E820_TYPE_ACPI` (3): "ACPI Tables".
    Acpi,
}

impl E820Kind {
    /// The e820 type number (boot_params `e820_entry.type`).
    pub fn e820_type(self) -> u32 {
        match self {
            E820Kind::Ram => 1,
            E820Kind::Reserved => 2,
            E820Kind::Acpi => 3,
        }
    }

    /// The string Linux prints for this type in `/sys/firmware/memmap/N/type`.
    pub fn linux_name(self) -> &'static str {
        match self {
            E820Kind::Ram => "System RAM",
            E820Kind::Reserved => "Reserved",
            E820Kind::Acpi => "ACPI Tables",
        }
    }
}

/// One e820 entry. `end` is inclusive, as in `/sys/firmware/memmap/N/end`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct E820Entry {
    pub start: u64,
    pub end: u64,
    pub kind: E820Kind,
}

/// One ACPI table as published: its signature, total length and a 64-bit FNV-1a hash of all its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcpiTableInfo {
    pub signature: String,
    pub length: u32,
    pub fnv1a64: u64,
}

/// Kind of a PCI BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BarKind {
    Io,
    Mem32,
    Mem64,
}

/// One implemented BAR and the address the VMM assigned to it. `end` is inclusive, as in sysfs `resource`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarInfo {
    pub index: u8,
    pub kind: BarKind,
    pub prefetchable: bool,
    pub start: u64,
    pub end: u64,
}

/// One PCI function as the VMM built it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciFunctionInfo {
    /// `SSSS:BB:DD.F`, lower-case hex, as the directory names in `/sys/bus/pci/devices`.
    pub bdf: String,
    pub vendor_id: u16,
    pub device_id: u16,
    /// 24-bit class code (base class, subclass, programming interface), as sysfs `class` shows it.
    pub class: u32,
    pub bars: Vec<BarInfo>,
    /// The function offers an MSI capability.
    pub msi: bool,
    /// The function offers an MSI-X capability, with this many vectors (0 = no MSI-X).
    pub msix_vectors: u16,
}

/// One inclusive IOVA window `first..=last` (the same convention as `iommu::IovaWindow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IovaRange {
    pub first: u64,
    pub last: u64,
}

/// The IOMMU a guest was given, as the guest can observe it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IommuInfo {
    /// "vtd", "smmuv3" or "tce".
    pub model: String,
    /// The full option string it was configured with (e.g. "vtd,aw=48,sm=on").
    pub options: String,
    /// Register base address.
    pub base: u64,
    /// Model identification registers (VT-d: CAP and ECAP; others: their ID registers), in register order.
    pub id_registers: Vec<u64>,
    /// Permitted IOVA ranges for the test device (BDF `test_device_bdf`), sorted.
    pub permitted_ranges: Vec<IovaRange>,
    /// VT-d with first-stage translation: the permitted ranges when the device's domain uses first-stage tables
    /// (the canonical lower half of the input width Linux gives such domains, minus the same holes); empty for
    /// units without a first stage and the other models.
    #[serde(default)]
    pub permitted_ranges_first_stage: Vec<IovaRange>,
    /// The BDF of the DMA test device behind this IOMMU.
    pub test_device_bdf: String,
}

/// Everything the VMM publishes to one guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineDescription {
    pub cpus: u8,
    pub memory_mib: u64,
    pub e820: Vec<E820Entry>,
    pub acpi_tables: Vec<AcpiTableInfo>,
    pub pci: Vec<PciFunctionInfo>,
    /// The IOMMU, if the machine has one.
    #[serde(default)]
    pub iommu: Option<IommuInfo>,
}

/// 64-bit FNV-1a over `bytes`: a small, dependency-free hash both sides compute.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_vectors() {
        // Reference values of the FNV-1a 64-bit test suite.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn description_round_trips_through_json() {
        let d = MachineDescription {
            cpus: 2,
            memory_mib: 512,
            e820: vec![E820Entry {
                start: 0,
                end: 0x9_ffff,
                kind: E820Kind::Ram,
            }],
            acpi_tables: vec![AcpiTableInfo {
                signature: "APIC".into(),
                length: 100,
                fnv1a64: 7,
            }],
            pci: vec![],
            iommu: None,
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            serde_json::from_str::<MachineDescription>(&json).unwrap(),
            d
        );
    }

    #[test]
    fn e820_names_match_linux() {
        assert_eq!(E820Kind::Ram.linux_name(), "System RAM");
        assert_eq!(E820Kind::Acpi.e820_type(), 3);
    }
}
