//! Cross-checks the IORT (Arm DEN 0049) with ACPICA's `iasl` (Debian package `acpica-tools`):
//! - the IORT the VMM publishes for `--iommu smmuv3` goes through `build_acpi` as an extra table, the XSDT
//!   lists it, and `iasl -d` decodes it without errors or warnings into the nodes and mappings we wrote;
//! - the disassembly recompiles without errors or warnings into the same bytes;
//! - a table with several nodes of each kind and every optional field does the same.
//!
//! Without `iasl` they fail, like the DMAR cross-check (CI installs acpica-tools).

mod common;

use common::{
    assert_same_data_table, cross_check_extra_table, disassemble_table, field, fields, recompile,
    scratch_dir,
};
use firmware_tables::acpi::{
    build_iort, IdMapping, IortConfig, IortItsGroup, IortRootComplex, NodeRef,
};

const SMMU_BASE: u64 = 0xFEA0_0000;

#[test]
fn vmm_iort_is_listed_and_decodes() {
    let iort = build_iort(&IortConfig::single_smmuv3(SMMU_BASE, 16)).expect("VMM IORT builds");
    let (dir, dsl) = cross_check_extra_table(iort, "IORT");
    assert_eq!(field(&dsl, "Signature"), Some("\"IORT\""));
    assert_eq!(field(&dsl, "Oem ID"), Some("\"IOVMM"));
    assert_eq!(field(&dsl, "Oem Table ID"), Some("\"IOVMMTBL\""));
    assert_eq!(field(&dsl, "Node Count"), Some("00000003"));
    assert_eq!(field(&dsl, "Node Offset"), Some("00000030"));
    // The table's revision, then the ITS group's, the SMMUv3's and the root complex's.
    assert_eq!(fields(&dsl, "Revision"), ["05", "01", "04", "03"]);
    assert_eq!(fields(&dsl, "Type"), ["00", "04", "02"], "{dsl}");
    assert_eq!(fields(&dsl, "Length"), ["0018", "006C", "0038"]);
    assert_eq!(
        fields(&dsl, "Mapping Count"),
        ["00000000", "00000002", "00000001"]
    );
    assert_eq!(
        fields(&dsl, "Mapping Offset"),
        ["00000000", "00000044", "00000024"]
    );

    // ITS group: one ITS, id 0.
    assert_eq!(field(&dsl, "ItsCount"), Some("00000001"));
    assert_eq!(field(&dsl, "Identifiers"), Some("00000000"));

    // SMMUv3 at the platform base, cache coherent, all interrupts MSIs, own DeviceID via mapping 1.
    assert_eq!(field(&dsl, "Base Address"), Some("00000000FEA00000"));
    assert_eq!(field(&dsl, "COHACC Override"), Some("1"));
    assert_eq!(field(&dsl, "HTTU Override"), Some("0"));
    assert_eq!(field(&dsl, "Proximity Domain Valid"), Some("0"));
    assert_eq!(field(&dsl, "Model"), Some("00000000"));
    for gsiv in ["Event GSIV", "PRI GSIV", "GERR GSIV", "Sync GSIV"] {
        assert_eq!(field(&dsl, gsiv), Some("00000000"), "{gsiv}");
    }
    assert_eq!(field(&dsl, "Device ID Mapping Index"), Some("00000001"));

    // Root complex: coherent (CCA, CPM, DACS), no ATS, segment 0, 64-bit DMA.
    assert_eq!(field(&dsl, "Cache Coherency"), Some("00000001"));
    assert_eq!(field(&dsl, "Coherency"), Some("1"));
    assert_eq!(field(&dsl, "Device Attribute"), Some("1"));
    assert_eq!(field(&dsl, "ATS Attribute"), Some("00000000"));
    assert_eq!(field(&dsl, "PCI Segment Number"), Some("00000000"));
    assert_eq!(field(&dsl, "Memory Size Limit"), Some("40"));

    // SMMUv3: StreamIDs 0..=0xFFFF -> ITS DeviceIDs, its own MSIs -> DeviceID 0x10000 (single mapping);
    // root complex: RIDs 0..=0xFFFF -> StreamIDs of the SMMUv3 at 0x48. The ITS group is at 0x30.
    assert_eq!(
        fields(&dsl, "Input base"),
        ["00000000", "00000000", "00000000"]
    );
    assert_eq!(
        fields(&dsl, "ID Count"),
        ["0000FFFF", "00000000", "0000FFFF"]
    );
    assert_eq!(
        fields(&dsl, "Output Base"),
        ["00000000", "00010000", "00000000"]
    );
    assert_eq!(
        fields(&dsl, "Output Reference"),
        ["00000030", "00000030", "00000048"]
    );
    assert_eq!(fields(&dsl, "Single Mapping"), ["0", "1", "0"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two ITS groups, two SMMUv3s (one MSI-based, one with wired GSIVs, HTTU override and a proximity domain)
/// and two root complexes (one mapping part of its RIDs straight to an ITS group).
fn full_iort() -> IortConfig {
    let mut c = IortConfig::single_smmuv3(SMMU_BASE, 16);
    c.its_groups.push(IortItsGroup {
        its_ids: vec![1, 2],
    });
    let mut wired = c.smmus[0].clone();
    wired.base = 0x10_0000_0000;
    wired.coherent_access = false;
    wired.httu_override = 1;
    wired.proximity_domain = Some(3);
    (
        wired.event_gsiv,
        wired.pri_gsiv,
        wired.gerror_gsiv,
        wired.sync_gsiv,
    ) = (74, 75, 77, 76);
    wired.device_id_mapping_index = None;
    wired.id_mappings = vec![IdMapping {
        input_base: 0,
        num_ids: 0xFF,
        output_base: 0x2_0000,
        output_ref: NodeRef::ItsGroup(1),
        single_mapping: false,
    }];
    c.smmus.push(wired);
    c.root_complexes.push(IortRootComplex {
        segment: 1,
        cache_coherent: false,
        ats_supported: true,
        memory_address_limit: 48,
        id_mappings: vec![
            IdMapping {
                input_base: 0,
                num_ids: 0xFF,
                output_base: 0,
                output_ref: NodeRef::Smmuv3(1),
                single_mapping: false,
            },
            IdMapping {
                input_base: 0x100,
                num_ids: 0xFEFF,
                output_base: 0x3_0100,
                output_ref: NodeRef::ItsGroup(1),
                single_mapping: false,
            },
        ],
    });
    c
}

#[test]
fn every_node_kind_and_option_decodes_and_recompiles() {
    let bytes = build_iort(&full_iort()).expect("full IORT builds");
    let dir = scratch_dir("iort-full");
    let dsl = disassemble_table(&dir, "IORT.dat", &bytes);

    assert_eq!(field(&dsl, "Node Count"), Some("00000006"));
    assert_eq!(fields(&dsl, "Type"), ["00", "00", "04", "04", "02", "02"]);
    // Offsets: ITS groups at 0x30 (24 bytes) and 0x48 (28), SMMUv3s at 0x64 (108) and 0xD0 (88), root
    // complexes at 0x128 (56) and 0x160 (76).
    assert_eq!(
        fields(&dsl, "Length"),
        ["0018", "001C", "006C", "0058", "0038", "004C"]
    );
    assert_eq!(fields(&dsl, "ItsCount"), ["00000001", "00000002"]);
    assert_eq!(
        fields(&dsl, "Identifiers"),
        ["00000000", "00000001", "00000002"]
    );
    assert_eq!(
        fields(&dsl, "Base Address"),
        ["00000000FEA00000", "0000001000000000"]
    );
    assert_eq!(fields(&dsl, "COHACC Override"), ["1", "0"]);
    assert_eq!(fields(&dsl, "HTTU Override"), ["0", "1"]);
    assert_eq!(fields(&dsl, "Proximity Domain Valid"), ["0", "1"]);
    assert_eq!(fields(&dsl, "Proximity Domain"), ["00000000", "00000003"]);
    assert_eq!(fields(&dsl, "Event GSIV"), ["00000000", "0000004A"]);
    assert_eq!(fields(&dsl, "PRI GSIV"), ["00000000", "0000004B"]);
    assert_eq!(fields(&dsl, "GERR GSIV"), ["00000000", "0000004D"]);
    assert_eq!(fields(&dsl, "Sync GSIV"), ["00000000", "0000004C"]);
    assert_eq!(
        fields(&dsl, "Device ID Mapping Index"),
        ["00000001", "00000000"]
    );
    assert_eq!(fields(&dsl, "Cache Coherency"), ["00000001", "00000000"]);
    assert_eq!(fields(&dsl, "ATS Attribute"), ["00000000", "00000001"]);
    assert_eq!(fields(&dsl, "PCI Segment Number"), ["00000000", "00000001"]);
    assert_eq!(fields(&dsl, "Memory Size Limit"), ["40", "30"]);
    assert_eq!(
        fields(&dsl, "Input base"),
        ["00000000", "00000000", "00000000", "00000000", "00000000", "00000100"]
    );
    assert_eq!(
        fields(&dsl, "ID Count"),
        ["0000FFFF", "00000000", "000000FF", "0000FFFF", "000000FF", "0000FEFF"]
    );
    assert_eq!(
        fields(&dsl, "Output Base"),
        ["00000000", "00010000", "00020000", "00000000", "00000000", "00030100"]
    );
    assert_eq!(
        fields(&dsl, "Output Reference"),
        ["00000030", "00000030", "00000048", "00000064", "000000D0", "00000048"]
    );

    assert_same_data_table("IORT.dat", &recompile(&dir, "IORT.dat"), &bytes);
    let _ = std::fs::remove_dir_all(&dir);
}
