//! The SMMUv3 device tree fragment: the same topology as `IortConfig::single_smmuv3`, in device tree
//! bindings (Linux Documentation/devicetree/bindings/iommu/arm,smmu-v3.yaml, pci/pci-iommu.txt,
//! pci/pci-msi.txt, pci/host-generic-pci.yaml):
//!
//! ```text
//! / { compatible = "iovmm,x86-smmuv3-fragment"; #address-cells = <2>; #size-cells = <2>;
//!     msi: msi-controller@fee00000 { compatible = "iovmm,x86-msi-window"; reg = <...>;
//!                                    msi-controller; #msi-cells = <1>; phandle = <1>; };
//!     smmu: iommu@<base> { compatible = "arm,smmu-v3"; reg = <base size>; #iommu-cells = <1>;
//!                          dma-coherent; msi-parent = <&msi N>; phandle = <2>; };
//!     pcie@e0000000 { compatible = "pci-host-ecam-generic"; device_type = "pci"; bus-range = <0 0xff>;
//!                     reg = <ECAM>; ranges = <MMIO32 MMIO64>; iommu-map = <0 &smmu 0 N>;
//!                     msi-map = <0 &msi 0 N>; dma-coherent; ... };
//! };
//! ```
//! N is the number of StreamIDs the root complex uses: `2^sid_bits`, at most 0x10000 (one per 16-bit
//! requester ID, mapped identity as in the IORT). Unlike the IORT's "number of IDs minus one", the `length`
//! of an `iommu-map`/`msi-map` entry is the count itself.
//!
//! The SMMU has no wired interrupts (the IORT's GSIVs are 0): its event queue, GERROR and CMD_SYNC
//! interrupts are MSIs, so there are no `interrupts`/`interrupt-names`, and `msi-parent` gives it the
//! DeviceID after the endpoints' (the IORT's single mapping). x86 has no device tree binding for its MSI
//! target, so the `msi-controller` node is this fragment's own description of the LAPIC MSI window.
//! `iommu-map-mask` is omitted: every requester ID is its own StreamID.

use vm_fdt::FdtWriter;

use super::FdtError;

/// PCIe ECAM window of the address map (segment 0, buses 0..=255).
pub const PCIE_ECAM_BASE: u64 = 0xE000_0000;
pub const PCIE_ECAM_SIZE: u64 = 0x1000_0000;
/// The 32-bit and 64-bit PCI MMIO windows (base, size), identity mapped.
pub const PCI_MMIO32: (u64, u64) = (0xC000_0000, 0x2000_0000);
pub const PCI_MMIO64: (u64, u64) = (0x40_0000_0000, 0x10_0000_0000);
/// The x86 MSI window (LAPIC).
pub const MSI_WINDOW_BASE: u64 = 0xFEE0_0000;
pub const MSI_WINDOW_SIZE: u64 = 0x10_0000;
/// Phandles of the MSI window and the SMMU.
pub const MSI_PHANDLE: u32 = 1;
pub const SMMU_PHANDLE: u32 = 2;
/// Smallest SMMUv3 register frame: register pages 0 and 1, 64 KiB each (IHI0070 §6.1).
pub const SMMUV3_MIN_SIZE: u64 = 0x2_0000;
/// Largest StreamID width (IDR1.SIDSIZE, IHI0070 §6.3.2).
const MAX_SID_BITS: u8 = 32;

/// `phys.hi` of a PCI address (pci-bus binding): 32-bit memory space and 64-bit memory space.
const PCI_SPACE_MEM32: u32 = 0x0200_0000;
const PCI_SPACE_MEM64: u32 = 0x0300_0000;

fn hi(x: u64) -> u32 {
    (x >> 32) as u32
}

fn lo(x: u64) -> u32 {
    x as u32
}

fn invalid(msg: String) -> FdtError {
    FdtError::InvalidSmmuv3(msg)
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    // Both ranges are (base, last) inclusive.
    a.0 <= b.1 && b.0 <= a.1
}

/// Builds the device tree described in the module docs for an SMMUv3 register frame at `base` of `size`
/// bytes (64 KiB aligned, at least [`SMMUV3_MIN_SIZE`], clear of the ECAM and MSI windows) with
/// `sid_bits` (0..=32) StreamID bits.
pub fn smmuv3_fdt(base: u64, size: u64, sid_bits: u8) -> Result<Vec<u8>, FdtError> {
    if base == 0 || !base.is_multiple_of(0x1_0000) {
        return Err(invalid(format!(
            "base {base:#x} must be non-zero and 64 KiB aligned"
        )));
    }
    if size < SMMUV3_MIN_SIZE || !size.is_multiple_of(0x1_0000) {
        return Err(invalid(format!(
            "size {size:#x} must be a multiple of 64 KiB and at least {SMMUV3_MIN_SIZE:#x}"
        )));
    }
    let last = base
        .checked_add(size - 1)
        .ok_or_else(|| invalid(format!("{base:#x} + {size:#x} overflows")))?;
    for (what, b, s) in [
        ("the PCIe ECAM window", PCIE_ECAM_BASE, PCIE_ECAM_SIZE),
        ("the MSI window", MSI_WINDOW_BASE, MSI_WINDOW_SIZE),
        ("the 32-bit PCI MMIO window", PCI_MMIO32.0, PCI_MMIO32.1),
        ("the 64-bit PCI MMIO window", PCI_MMIO64.0, PCI_MMIO64.1),
    ] {
        if overlaps((base, last), (b, b + s - 1)) {
            return Err(invalid(format!(
                "register frame {base:#x}..={last:#x} overlaps {what}"
            )));
        }
    }
    if sid_bits > MAX_SID_BITS {
        return Err(invalid(format!(
            "{sid_bits} StreamID bits is more than {MAX_SID_BITS}"
        )));
    }
    // StreamIDs the root complex uses: one per requester ID, as far as the SMMU has them.
    let streams: u32 = if sid_bits >= 16 {
        0x1_0000
    } else {
        1 << sid_bits
    };

    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "iovmm,x86-smmuv3-fragment")?;
    fdt.property_string("model", "iovmm x86-64 SMMUv3 fragment")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;

    let msi = fdt.begin_node(&format!("msi-controller@{MSI_WINDOW_BASE:x}"))?;
    fdt.property_string("compatible", "iovmm,x86-msi-window")?;
    fdt.property_array_u64("reg", &[MSI_WINDOW_BASE, MSI_WINDOW_SIZE])?;
    fdt.property_null("msi-controller")?;
    // One cell: the DeviceID (pci-msi.txt msi-specifier), as for a GIC ITS.
    fdt.property_u32("#msi-cells", 1)?;
    fdt.property_phandle(MSI_PHANDLE)?;
    fdt.end_node(msi)?;

    let smmu = fdt.begin_node(&format!("iommu@{base:x}"))?;
    fdt.property_string("compatible", "arm,smmu-v3")?;
    fdt.property_array_u64("reg", &[base, size])?;
    fdt.property_u32("#iommu-cells", 1)?;
    fdt.property_null("dma-coherent")?;
    fdt.property_array_u32("msi-parent", &[MSI_PHANDLE, streams])?;
    fdt.property_phandle(SMMU_PHANDLE)?;
    fdt.end_node(smmu)?;

    let pcie = fdt.begin_node(&format!("pcie@{PCIE_ECAM_BASE:x}"))?;
    fdt.property_string("compatible", "pci-host-ecam-generic")?;
    fdt.property_string("device_type", "pci")?;
    fdt.property_array_u64("reg", &[PCIE_ECAM_BASE, PCIE_ECAM_SIZE])?;
    fdt.property_array_u32("bus-range", &[0, 0xFF])?;
    fdt.property_u32("linux,pci-domain", 0)?;
    fdt.property_u32("#address-cells", 3)?;
    fdt.property_u32("#size-cells", 2)?;
    let mut ranges = Vec::new();
    for (space, (b, s)) in [(PCI_SPACE_MEM32, PCI_MMIO32), (PCI_SPACE_MEM64, PCI_MMIO64)] {
        // (phys.hi, pci address), cpu address, size.
        ranges.extend_from_slice(&[space, hi(b), lo(b), hi(b), lo(b), hi(s), lo(s)]);
    }
    fdt.property_array_u32("ranges", &ranges)?;
    // (rid-base, iommu, iommu-base, length): RID r -> StreamID r.
    fdt.property_array_u32("iommu-map", &[0, SMMU_PHANDLE, 0, streams])?;
    // (rid-base, msi-controller, msi-base, length): RID r -> DeviceID r, as the IORT's SMMU -> ITS range.
    fdt.property_array_u32("msi-map", &[0, MSI_PHANDLE, 0, streams])?;
    fdt.property_null("dma-coherent")?;
    fdt.end_node(pcie)?;

    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

#[cfg(test)]
mod tests {
    use super::super::test_reader::{parse, Node};
    use super::*;

    const BASE: u64 = 0xFEA0_0000;

    fn reg(n: &Node) -> Vec<u64> {
        n.cells("reg")
            .chunks(2)
            .map(|c| (u64::from(c[0]) << 32) | u64::from(c[1]))
            .collect()
    }

    #[test]
    fn root_declares_two_cell_addresses() {
        let t = parse(&smmuv3_fdt(BASE, 0x2_0000, 16).unwrap());
        assert_eq!(t.name, "");
        assert_eq!(t.strings("compatible"), ["iovmm,x86-smmuv3-fragment"]);
        assert_eq!(t.cells("#address-cells"), [2]);
        assert_eq!(t.cells("#size-cells"), [2]);
        let names: Vec<&str> = t.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["msi-controller@fee00000", "iommu@fea00000", "pcie@e0000000"]
        );
    }

    #[test]
    fn smmu_node() {
        let t = parse(&smmuv3_fdt(BASE, 0x2_0000, 16).unwrap());
        let s = t.child("iommu@fea00000").expect("iommu node");
        assert_eq!(s.strings("compatible"), ["arm,smmu-v3"]);
        assert_eq!(reg(s), [BASE, 0x2_0000]);
        assert_eq!(s.cells("#iommu-cells"), [1]);
        assert_eq!(s.prop("dma-coherent"), Some(&[][..]));
        assert!(s.prop("interrupts").is_none() && s.prop("interrupt-names").is_none());
        // msi-parent = <&msi DeviceID>, the DeviceID after the 0x10000 endpoint ones.
        let mp = s.cells("msi-parent");
        assert_eq!(mp, [MSI_PHANDLE, 0x1_0000]);
        let msi = t.by_phandle(mp[0]).expect("msi-parent resolves");
        assert!(msi.prop("msi-controller").is_some());
        assert_eq!(
            msi.cells("#msi-cells"),
            [1],
            "one specifier cell follows the phandle"
        );
        assert_eq!(reg(msi), [MSI_WINDOW_BASE, MSI_WINDOW_SIZE]);
    }

    #[test]
    fn pcie_host_maps_every_rid_to_its_streamid() {
        let t = parse(&smmuv3_fdt(BASE, 0x2_0000, 16).unwrap());
        let p = t.child("pcie@e0000000").expect("pcie node");
        assert_eq!(p.strings("compatible"), ["pci-host-ecam-generic"]);
        assert_eq!(p.strings("device_type"), ["pci"]);
        assert_eq!(reg(p), [0xE000_0000, 0x1000_0000]);
        assert_eq!(p.cells("bus-range"), [0, 0xFF]);
        assert_eq!(p.cells("#address-cells"), [3]);
        assert_eq!(p.cells("#size-cells"), [2]);
        assert_eq!(
            p.cells("ranges"),
            [
                0x0200_0000,
                0,
                0xC000_0000,
                0,
                0xC000_0000,
                0,
                0x2000_0000, //
                0x0300_0000,
                0x40,
                0,
                0x40,
                0,
                0x10,
                0
            ]
        );
        let map = p.cells("iommu-map");
        assert_eq!(map, [0, SMMU_PHANDLE, 0, 0x1_0000]);
        let smmu = t.by_phandle(map[1]).expect("iommu-map phandle resolves");
        assert_eq!(smmu.name, "iommu@fea00000");
        assert_eq!(
            smmu.cells("#iommu-cells"),
            [1],
            "one specifier cell: the StreamID"
        );
        assert!(p.prop("iommu-map-mask").is_none());
        let msi_map = p.cells("msi-map");
        assert_eq!(msi_map, [0, MSI_PHANDLE, 0, 0x1_0000]);
        assert!(t
            .by_phandle(msi_map[1])
            .unwrap()
            .prop("msi-controller")
            .is_some());
    }

    #[test]
    fn phandles_are_unique_and_all_references_resolve() {
        let t = parse(&smmuv3_fdt(BASE, 0x2_0000, 16).unwrap());
        let mut handles: Vec<u32> = t
            .children
            .iter()
            .filter(|c| c.prop("phandle").is_some())
            .map(|c| c.cells("phandle")[0])
            .collect();
        handles.sort_unstable();
        assert_eq!(handles, [MSI_PHANDLE, SMMU_PHANDLE]);
        let p = t.child("pcie@e0000000").unwrap();
        let s = t.child("iommu@fea00000").unwrap();
        for r in [
            p.cells("iommu-map")[1],
            p.cells("msi-map")[1],
            s.cells("msi-parent")[0],
        ] {
            assert!(t.by_phandle(r).is_some(), "phandle {r} dangles");
        }
    }

    #[test]
    fn sid_bits_and_size_shape_the_tree() {
        let t = parse(&smmuv3_fdt(0x1_0000_0000, 0x4_0000, 8).unwrap());
        let s = t
            .child("iommu@100000000")
            .expect("unit address follows the base");
        assert_eq!(reg(s), [0x1_0000_0000, 0x4_0000]);
        assert_eq!(s.cells("msi-parent"), [MSI_PHANDLE, 0x100]);
        let p = t.child("pcie@e0000000").unwrap();
        assert_eq!(p.cells("iommu-map"), [0, SMMU_PHANDLE, 0, 0x100]);
        assert_eq!(p.cells("msi-map"), [0, MSI_PHANDLE, 0, 0x100]);
        for bits in [16, 20, 32] {
            let t = parse(&smmuv3_fdt(BASE, 0x2_0000, bits).unwrap());
            let p = t.child("pcie@e0000000").unwrap();
            assert_eq!(p.cells("iommu-map")[3], 0x1_0000, "{bits} bits");
        }
        let t = parse(&smmuv3_fdt(BASE, 0x2_0000, 0).unwrap());
        assert_eq!(t.child("pcie@e0000000").unwrap().cells("iommu-map")[3], 1);
    }

    #[test]
    fn rejects_bad_parameters() {
        for (base, size, bits, want) in [
            (0, 0x2_0000, 16, "64 KiB aligned"),
            (BASE + 0x1000, 0x2_0000, 16, "64 KiB aligned"),
            (BASE, 0x1_0000, 16, "at least"),
            (BASE, 0x2_1000, 16, "multiple of 64 KiB"),
            (0xFFFF_FFFF_FFFF_0000, 0x2_0000, 16, "overflows"),
            (0xEFFF_0000, 0x2_0000, 16, "ECAM"),
            (0xFEDF_0000, 0x2_0000, 16, "MSI window"),
            (0xC000_0000, 0x2_0000, 16, "32-bit PCI MMIO"),
            (0x4F_FFFF_0000, 0x2_0000, 16, "64-bit PCI MMIO"),
            (BASE, 0x2_0000, 33, "more than 32"),
        ] {
            match smmuv3_fdt(base, size, bits) {
                Err(FdtError::InvalidSmmuv3(m)) => {
                    assert!(m.contains(want), "expected `{want}` in `{m}`")
                }
                other => panic!("{base:#x}/{size:#x}/{bits}: expected an error, got {other:?}"),
            }
        }
    }
}
