//! IORT: I/O Remapping Table, Arm DEN 0049 ("IO Remapping Table, Platform Design Document"); C layout in
//! ACPICA's `actbl2.h` (`struct acpi_table_iort`, `acpi_iort_*`), consumer in Linux's
//! drivers/acpi/arm64/iort.c.
//!
//! Layout: the 36-byte ACPI header (signature "IORT"), Number of IORT Nodes at 36, Offset to the node array
//! at 40, 4 reserved bytes, then the nodes from offset 48. Every node starts with a 16-byte header (Type,
//! Length, Revision, Identifier, Number of ID mappings, Reference to the ID array) followed by its type's
//! fields and its array of 20-byte ID mappings. An ID mapping names its output node by that node's byte
//! offset from the start of the table; [`build_iort`] lays the nodes out (ITS groups, then SMMUv3 nodes, then
//! root complexes, the order QEMU's `build_iort` uses) and turns every [`NodeRef`] into that offset.
//!
//! # Revisions
//! The table is revision 5 (DEN 0049E.d; Linux parses RMR nodes only from revision 5 on). The node revisions
//! are the ones QEMU's virt machine publishes in its revision-5 IORT: ITS group 1, SMMUv3 4, root complex 3:
//! - SMMUv3 revision 4: the DeviceID mapping index is valid whenever not all four interrupts are wired GSIVs
//!   (Linux `iort_get_id_mapping_index`; from node revision 5 on a DEVICEID_VALID flag says so instead).
//! - Root complex revision 3: the 36-byte layout with the Memory Address Size Limit (Linux reads it from
//!   revision 1 on) followed by three bytes that are zero here (later revisions put the PASID capabilities
//!   there and a Flags word after them).
//!
//! # Node identifiers
//! The node header's Identifier (a reserved word before E.b) is written as 0, as Cloud Hypervisor and edk2's
//! SbsaQemu do: nothing in Linux reads it, and ACPICA releases without E.b support (Debian 12's iasl
//! 20200925) decode it as "Reserved" and zero it when recompiling a disassembly, so any other value would
//! not survive the `iasl` round trip the tests make.
//!
//! The result is a complete, checksummed table for `AcpiPlatform::extra_tables`.

use acpi_tables::sdt::Sdt;

use super::{AcpiError, OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// IORT revision (DEN 0049E.d).
pub(crate) const IORT_REVISION: u8 = 5;
/// Offset of the first node: 36-byte header + node count + node offset + 4 reserved bytes.
pub(crate) const IORT_HEADER_LEN: usize = 48;

/// Node types (DEN 0049 table "IORT node types"; `enum acpi_iort_node_type`).
pub(crate) const TYPE_ITS_GROUP: u8 = 0;
pub(crate) const TYPE_ROOT_COMPLEX: u8 = 2;
pub(crate) const TYPE_SMMUV3: u8 = 4;

/// Node revisions (see the module docs).
pub(crate) const ITS_GROUP_REVISION: u8 = 1;
pub(crate) const SMMUV3_REVISION: u8 = 4;
pub(crate) const ROOT_COMPLEX_REVISION: u8 = 3;

/// Node header: Type (1), Length (2), Revision (1), Identifier (4), ID mapping count (4), ID array offset (4).
pub(crate) const NODE_HEADER_LEN: usize = 16;
/// ITS group: header + Number of ITSs (4), then 4 bytes per GIC ITS identifier.
pub(crate) const ITS_GROUP_FIXED_LEN: usize = NODE_HEADER_LEN + 4;
/// SMMUv3: header + base (8), flags (4), reserved (4), VATOS (8), model (4), four GSIVs (16), proximity
/// domain (4), DeviceID mapping index (4).
pub(crate) const SMMUV3_FIXED_LEN: usize = NODE_HEADER_LEN + 52;
/// Root complex: header + memory access properties (8), ATS attribute (4), segment (4), memory address
/// size limit (1), 3 bytes zero.
pub(crate) const ROOT_COMPLEX_FIXED_LEN: usize = NODE_HEADER_LEN + 20;
/// ID mapping: input base, number of IDs (minus one), output base, output reference, flags.
pub(crate) const ID_MAPPING_LEN: usize = 20;

/// ID mapping Flags bit 0 (`ACPI_IORT_ID_SINGLE_MAPPING`).
pub(crate) const ID_SINGLE_MAPPING: u32 = 1;

/// SMMUv3 Flags (`ACPI_IORT_SMMU_V3_*`): COHACC override (bit 0), HTTU override (bits 2:1), proximity
/// domain valid (bit 3).
pub(crate) const SMMU_COHACC_OVERRIDE: u32 = 1 << 0;
pub(crate) const SMMU_HTTU_OVERRIDE_SHIFT: u32 = 1;
pub(crate) const SMMU_PXM_VALID: u32 = 1 << 3;
/// SMMUv3 Model: generic SMMUv3 (no erratum workarounds).
pub(crate) const SMMU_MODEL_GENERIC: u32 = 0;

/// Memory access properties (`struct acpi_iort_memory_access`): Cache Coherency Attribute 1 = fully coherent;
/// Memory Access Flags bit 0 CPM (coherent path to memory), bit 1 DACS (device attributes are cacheable and
/// inner shareable). CCA = 1 requires CPM = 1.
pub(crate) const CCA_COHERENT: u32 = 1;
pub(crate) const MAF_CPM: u8 = 1 << 0;
pub(crate) const MAF_DACS: u8 = 1 << 1;
/// Root complex ATS Attribute bit 0: the root complex supports ATS (`ACPI_IORT_ATS_SUPPORTED`).
pub(crate) const RC_ATS_SUPPORTED: u32 = 1;

/// SMMUv3 register frame: register pages 0 and 1, 64 KiB each, on a 64 KiB boundary (IHI0070 §6.1).
pub(crate) const SMMUV3_FRAME_LEN: u64 = 0x2_0000;
/// Largest HTTU override value (2 = access flag and dirty state); 3 is reserved.
pub const MAX_HTTU_OVERRIDE: u8 = 2;

/// The output node of an [`IdMapping`]: an index into [`IortConfig::its_groups`] or [`IortConfig::smmus`].
/// [`build_iort`] replaces it with that node's offset in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRef {
    ItsGroup(usize),
    Smmuv3(usize),
}

/// One ID mapping (DEN 0049 "ID mapping" format): inputs `input_base..=input_base + num_ids` become
/// `output_base..` of the output node's ID space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMapping {
    pub input_base: u32,
    /// The spec's "Number of IDs": the number of IDs in the range **minus one** (0 = one ID).
    pub num_ids: u32,
    pub output_base: u32,
    pub output_ref: NodeRef,
    /// Flags bit 0: the mapping has no input range and always yields `output_base` (then `num_ids` is 0).
    /// For an SMMUv3 node only the mapping of its own MSIs (`device_id_mapping_index`) is single.
    pub single_mapping: bool,
}

/// ITS group node (type 0): the GIC ITS identifiers (MADT GIC ITS structures) the group stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IortItsGroup {
    pub its_ids: Vec<u32>,
}

/// SMMUv3 node (type 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IortSmmuv3 {
    /// Base of the 128 KiB register frame: non-zero, 64 KiB aligned.
    pub base: u64,
    /// Flags bit 0 COHACC override: the SMMU's own accesses (tables, queues) are cache coherent.
    pub coherent_access: bool,
    /// Flags bits 2:1 HTTU override: 0 none (use IDR0.HTTU), 1 access flag, 2 access flag and dirty state.
    pub httu_override: u8,
    /// Proximity domain (sets Flags bit 3 when present).
    pub proximity_domain: Option<u32>,
    /// Wired interrupts (GSIVs); 0 means the interrupt is an MSI.
    pub event_gsiv: u32,
    pub pri_gsiv: u32,
    pub gerror_gsiv: u32,
    pub sync_gsiv: u32,
    /// Index into `id_mappings` of the single mapping giving the SMMU's own MSIs their DeviceID. Required when
    /// any interrupt is an MSI, and only then.
    pub device_id_mapping_index: Option<u32>,
    /// StreamID ranges to ITS DeviceIDs (for endpoint MSIs) plus the single mapping above; outputs go to ITS
    /// groups.
    pub id_mappings: Vec<IdMapping>,
}

/// PCI root complex node (type 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IortRootComplex {
    /// PCI segment (the MCFG's); each segment has one root complex.
    pub segment: u16,
    /// Memory access properties: the root complex is fully cache coherent (CCA = 1, CPM = DACS = 1).
    pub cache_coherent: bool,
    /// ATS Attribute bit 0.
    pub ats_supported: bool,
    /// Memory Address Size Limit in bits, 1..=64 (Linux treats 0 as a firmware bug).
    pub memory_address_limit: u8,
    /// Requester ID ranges to StreamIDs of SMMUv3 nodes (or directly to ITS DeviceIDs).
    pub id_mappings: Vec<IdMapping>,
}

/// What the IORT describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IortConfig {
    pub smmus: Vec<IortSmmuv3>,
    pub root_complexes: Vec<IortRootComplex>,
    pub its_groups: Vec<IortItsGroup>,
}

impl IortConfig {
    /// The VMM's platform with `--iommu smmuv3`: one ITS group (ITS id 0); one SMMUv3 at `base` whose
    /// interrupts are all MSIs, mapping its StreamIDs identity to ITS DeviceIDs and its own MSIs (single
    /// mapping, `device_id_mapping_index` 1) to the DeviceID right after them; one cache-coherent PCI root
    /// complex on segment 0 mapping RIDs identity to StreamIDs, `0..=0xffff` (fewer when `sid_bits` < 16:
    /// the first `2^sid_bits` RIDs).
    pub fn single_smmuv3(base: u64, sid_bits: u8) -> Self {
        let ids: u32 = if sid_bits >= 16 {
            0x1_0000
        } else {
            1 << sid_bits
        };
        let its = NodeRef::ItsGroup(0);
        IortConfig {
            its_groups: vec![IortItsGroup { its_ids: vec![0] }],
            smmus: vec![IortSmmuv3 {
                base,
                coherent_access: true,
                httu_override: 0,
                proximity_domain: None,
                event_gsiv: 0,
                pri_gsiv: 0,
                gerror_gsiv: 0,
                sync_gsiv: 0,
                device_id_mapping_index: Some(1),
                id_mappings: vec![
                    IdMapping {
                        input_base: 0,
                        num_ids: ids - 1,
                        output_base: 0,
                        output_ref: its,
                        single_mapping: false,
                    },
                    IdMapping {
                        input_base: 0,
                        num_ids: 0,
                        output_base: ids,
                        output_ref: its,
                        single_mapping: true,
                    },
                ],
            }],
            root_complexes: vec![IortRootComplex {
                segment: 0,
                cache_coherent: true,
                ats_supported: false,
                memory_address_limit: 64,
                id_mappings: vec![IdMapping {
                    input_base: 0,
                    num_ids: ids - 1,
                    output_base: 0,
                    output_ref: NodeRef::Smmuv3(0),
                    single_mapping: false,
                }],
            }],
        }
    }

    fn validate(&self) -> Result<(), AcpiError> {
        if self.its_groups.is_empty() && self.smmus.is_empty() && self.root_complexes.is_empty() {
            return Err(invalid("an IORT needs at least one node".into()));
        }
        for (i, g) in self.its_groups.iter().enumerate() {
            let at = format!("ITS group {i}");
            if g.its_ids.is_empty() {
                return Err(invalid(format!("{at}: needs at least one ITS identifier")));
            }
            node_len(&at, ITS_GROUP_FIXED_LEN, g.its_ids.len(), 4)?;
        }

        let mut frames: Vec<(u64, u64)> = Vec::new();
        for (i, s) in self.smmus.iter().enumerate() {
            let at = format!("SMMUv3 {i}");
            if s.base == 0 || !s.base.is_multiple_of(0x1_0000) {
                return Err(invalid(format!(
                    "{at}: base {:#x} must be non-zero and 64 KiB aligned",
                    s.base
                )));
            }
            let last = s
                .base
                .checked_add(SMMUV3_FRAME_LEN - 1)
                .ok_or_else(|| invalid(format!("{at}: register frame overflows")))?;
            if let Some(j) = frames.iter().position(|&(b, e)| s.base <= e && b <= last) {
                return Err(invalid(format!(
                    "{at}: register frame {:#x}..={last:#x} overlaps SMMUv3 {j}",
                    s.base
                )));
            }
            frames.push((s.base, last));
            if s.httu_override > MAX_HTTU_OVERRIDE {
                return Err(invalid(format!(
                    "{at}: HTTU override {} is reserved (0..={MAX_HTTU_OVERRIDE})",
                    s.httu_override
                )));
            }
            let gsivs = [s.event_gsiv, s.pri_gsiv, s.gerror_gsiv, s.sync_gsiv];
            let uses_msi = gsivs.contains(&0);
            match (uses_msi, s.device_id_mapping_index) {
                (true, None) => {
                    return Err(invalid(format!(
                        "{at}: an MSI-based interrupt (GSIV 0) needs a DeviceID mapping index"
                    )))
                }
                (false, Some(_)) => {
                    return Err(invalid(format!(
                    "{at}: all interrupts are wired GSIVs, so there is no DeviceID mapping index"
                )))
                }
                _ => {}
            }
            let special = s.device_id_mapping_index.map(|x| x as usize);
            if let Some(x) = special {
                let m = s.id_mappings.get(x).ok_or_else(|| {
                    invalid(format!(
                        "{at}: DeviceID mapping index {x} is outside its {} ID mappings",
                        s.id_mappings.len()
                    ))
                })?;
                if !m.single_mapping || !matches!(m.output_ref, NodeRef::ItsGroup(_)) {
                    return Err(invalid(format!(
                        "{at}: the DeviceID mapping (index {x}) must be a single mapping to an ITS group"
                    )));
                }
            }
            for (k, m) in s.id_mappings.iter().enumerate() {
                let mat = format!("{at} mapping {k}");
                if !matches!(m.output_ref, NodeRef::ItsGroup(_)) {
                    return Err(invalid(format!("{mat}: an SMMUv3 maps only to ITS groups")));
                }
                if m.single_mapping && Some(k) != special {
                    return Err(invalid(format!(
                        "{mat}: only the DeviceID mapping of an SMMUv3 may be a single mapping"
                    )));
                }
                self.check_mapping(&mat, m)?;
            }
            check_overlaps(&at, &s.id_mappings, special)?;
            node_len(&at, SMMUV3_FIXED_LEN, s.id_mappings.len(), ID_MAPPING_LEN)?;
        }

        for (i, r) in self.root_complexes.iter().enumerate() {
            let at = format!("root complex {i}");
            // Linux iort_match_node_callback: one root complex per PCI segment.
            if let Some(j) = self.root_complexes[..i]
                .iter()
                .position(|o| o.segment == r.segment)
            {
                return Err(invalid(format!(
                    "{at}: segment {} already has root complex {j}",
                    r.segment
                )));
            }
            if !(1..=64).contains(&r.memory_address_limit) {
                return Err(invalid(format!(
                    "{at}: memory address size limit {} is outside 1..=64",
                    r.memory_address_limit
                )));
            }
            for (k, m) in r.id_mappings.iter().enumerate() {
                self.check_mapping(&format!("{at} mapping {k}"), m)?;
            }
            check_overlaps(&at, &r.id_mappings, None)?;
            node_len(
                &at,
                ROOT_COMPLEX_FIXED_LEN,
                r.id_mappings.len(),
                ID_MAPPING_LEN,
            )?;
        }
        Ok(())
    }

    /// The output node exists, and the input and output ranges stay inside the 32-bit ID space.
    fn check_mapping(&self, at: &str, m: &IdMapping) -> Result<(), AcpiError> {
        let exists = match m.output_ref {
            NodeRef::ItsGroup(i) => i < self.its_groups.len(),
            NodeRef::Smmuv3(i) => i < self.smmus.len(),
        };
        if !exists {
            return Err(invalid(format!(
                "{at}: output reference {:?} names no node",
                m.output_ref
            )));
        }
        if m.single_mapping {
            if m.num_ids != 0 {
                return Err(invalid(format!(
                    "{at}: a single mapping maps one ID (number of IDs 0, not {})",
                    m.num_ids
                )));
            }
        } else if m.input_base.checked_add(m.num_ids).is_none()
            || m.output_base.checked_add(m.num_ids).is_none()
        {
            return Err(invalid(format!(
                "{at}: {:#x} IDs from input {:#x} / output {:#x} overflow the 32-bit ID space",
                u64::from(m.num_ids) + 1,
                m.input_base,
                m.output_base
            )));
        }
        Ok(())
    }

    /// Byte offset of every node, in table order: ITS groups, SMMUv3 nodes, root complexes.
    fn layout(&self) -> Result<Layout, AcpiError> {
        let mut off = IORT_HEADER_LEN;
        let mut place = |len: usize| -> Result<u32, AcpiError> {
            let at = u32::try_from(off).map_err(|_| invalid("the table exceeds 4 GiB".into()))?;
            off += len;
            Ok(at)
        };
        let mut l = Layout::default();
        for g in &self.its_groups {
            l.its_groups
                .push(place(ITS_GROUP_FIXED_LEN + 4 * g.its_ids.len())?);
        }
        for s in &self.smmus {
            l.smmus.push(place(
                SMMUV3_FIXED_LEN + ID_MAPPING_LEN * s.id_mappings.len(),
            )?);
        }
        for r in &self.root_complexes {
            l.root_complexes.push(place(
                ROOT_COMPLEX_FIXED_LEN + ID_MAPPING_LEN * r.id_mappings.len(),
            )?);
        }
        u32::try_from(off).map_err(|_| invalid("the table exceeds 4 GiB".into()))?;
        Ok(l)
    }
}

/// Node offsets computed by [`IortConfig::layout`].
#[derive(Default)]
struct Layout {
    its_groups: Vec<u32>,
    smmus: Vec<u32>,
    root_complexes: Vec<u32>,
}

impl Layout {
    fn offset(&self, r: NodeRef) -> Result<u32, AcpiError> {
        let found = match r {
            NodeRef::ItsGroup(i) => self.its_groups.get(i),
            NodeRef::Smmuv3(i) => self.smmus.get(i),
        };
        found
            .copied()
            .ok_or_else(|| invalid(format!("output reference {r:?} names no node")))
    }
}

fn invalid(msg: String) -> AcpiError {
    AcpiError::InvalidIort(msg)
}

/// Node length as the u16 Length field, or an error when the node's arrays make it too long.
fn node_len(at: &str, fixed: usize, entries: usize, entry_len: usize) -> Result<u16, AcpiError> {
    entries
        .checked_mul(entry_len)
        .and_then(|s| s.checked_add(fixed))
        .and_then(|l| u16::try_from(l).ok())
        .ok_or_else(|| invalid(format!("{at}: {entries} array entries do not fit the node")))
}

/// No two range mappings of one node (the single DeviceID mapping aside) share an input ID: Linux
/// (`iort_id_map`) reports that as a firmware bug and keeps only one of them.
fn check_overlaps(at: &str, maps: &[IdMapping], special: Option<usize>) -> Result<(), AcpiError> {
    let ranges: Vec<(usize, u64, u64)> = maps
        .iter()
        .enumerate()
        .filter(|(k, m)| !m.single_mapping && Some(*k) != special)
        .map(|(k, m)| {
            let b = u64::from(m.input_base);
            (k, b, b + u64::from(m.num_ids))
        })
        .collect();
    for (n, &(k, b, e)) in ranges.iter().enumerate() {
        if let Some(&(j, ..)) = ranges[..n].iter().find(|&&(_, ob, oe)| b <= oe && ob <= e) {
            return Err(invalid(format!(
                "{at}: mapping {k} (inputs {b:#x}..={e:#x}) overlaps mapping {j}"
            )));
        }
    }
    Ok(())
}

/// The 16-byte node header. The Identifier is 0 (see the module docs).
fn node_header(kind: u8, len: u16, revision: u8, mappings: usize, fixed: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(usize::from(len));
    h.push(kind);
    h.extend_from_slice(&len.to_le_bytes());
    h.push(revision);
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&(mappings as u32).to_le_bytes());
    // Reference to the ID array: 0 when there is none (as Linux's iort_node_map_id expects).
    let array = if mappings == 0 { 0 } else { fixed as u32 };
    h.extend_from_slice(&array.to_le_bytes());
    h
}

fn mapping_bytes(out: &mut Vec<u8>, m: &IdMapping, layout: &Layout) -> Result<(), AcpiError> {
    out.extend_from_slice(&m.input_base.to_le_bytes());
    out.extend_from_slice(&m.num_ids.to_le_bytes());
    out.extend_from_slice(&m.output_base.to_le_bytes());
    out.extend_from_slice(&layout.offset(m.output_ref)?.to_le_bytes());
    let flags = if m.single_mapping {
        ID_SINGLE_MAPPING
    } else {
        0
    };
    out.extend_from_slice(&flags.to_le_bytes());
    Ok(())
}

/// Builds the IORT described by `cfg` after checking it (see the field docs for the rules). The bytes are a
/// complete table with the crate's OEM ids and a valid checksum.
pub fn build_iort(cfg: &IortConfig) -> Result<Vec<u8>, AcpiError> {
    cfg.validate()?;
    let layout = cfg.layout()?;
    let nodes = cfg.its_groups.len() + cfg.smmus.len() + cfg.root_complexes.len();
    let mut iort = Sdt::new(
        *b"IORT",
        IORT_HEADER_LEN as u32,
        IORT_REVISION,
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
    );
    iort.write_u32(36, nodes as u32);
    iort.write_u32(40, IORT_HEADER_LEN as u32);

    for (i, g) in cfg.its_groups.iter().enumerate() {
        let len = node_len(
            &format!("ITS group {i}"),
            ITS_GROUP_FIXED_LEN,
            g.its_ids.len(),
            4,
        )?;
        let mut n = node_header(TYPE_ITS_GROUP, len, ITS_GROUP_REVISION, 0, 0);
        n.extend_from_slice(&(g.its_ids.len() as u32).to_le_bytes());
        for id in &g.its_ids {
            n.extend_from_slice(&id.to_le_bytes());
        }
        iort.append_slice(&n);
    }

    for (i, s) in cfg.smmus.iter().enumerate() {
        let len = node_len(
            &format!("SMMUv3 {i}"),
            SMMUV3_FIXED_LEN,
            s.id_mappings.len(),
            ID_MAPPING_LEN,
        )?;
        let mut flags = u32::from(s.httu_override) << SMMU_HTTU_OVERRIDE_SHIFT;
        if s.coherent_access {
            flags |= SMMU_COHACC_OVERRIDE;
        }
        if s.proximity_domain.is_some() {
            flags |= SMMU_PXM_VALID;
        }
        let mut n = node_header(
            TYPE_SMMUV3,
            len,
            SMMUV3_REVISION,
            s.id_mappings.len(),
            SMMUV3_FIXED_LEN,
        );
        n.extend_from_slice(&s.base.to_le_bytes());
        n.extend_from_slice(&flags.to_le_bytes());
        n.extend_from_slice(&0u32.to_le_bytes()); // reserved
        n.extend_from_slice(&0u64.to_le_bytes()); // VATOS address: no VATOS interface
        n.extend_from_slice(&SMMU_MODEL_GENERIC.to_le_bytes());
        for gsiv in [s.event_gsiv, s.pri_gsiv, s.gerror_gsiv, s.sync_gsiv] {
            n.extend_from_slice(&gsiv.to_le_bytes());
        }
        n.extend_from_slice(&s.proximity_domain.unwrap_or(0).to_le_bytes());
        n.extend_from_slice(&s.device_id_mapping_index.unwrap_or(0).to_le_bytes());
        for m in &s.id_mappings {
            mapping_bytes(&mut n, m, &layout)?;
        }
        iort.append_slice(&n);
    }

    for (i, r) in cfg.root_complexes.iter().enumerate() {
        let len = node_len(
            &format!("root complex {i}"),
            ROOT_COMPLEX_FIXED_LEN,
            r.id_mappings.len(),
            ID_MAPPING_LEN,
        )?;
        let mut n = node_header(
            TYPE_ROOT_COMPLEX,
            len,
            ROOT_COMPLEX_REVISION,
            r.id_mappings.len(),
            ROOT_COMPLEX_FIXED_LEN,
        );
        // Memory access properties: CCA (4), allocation hints (1), reserved (2), memory access flags (1).
        let (cca, maf) = if r.cache_coherent {
            (CCA_COHERENT, MAF_CPM | MAF_DACS)
        } else {
            (0, 0)
        };
        n.extend_from_slice(&cca.to_le_bytes());
        n.extend_from_slice(&[0, 0, 0, maf]);
        let ats = if r.ats_supported { RC_ATS_SUPPORTED } else { 0 };
        n.extend_from_slice(&ats.to_le_bytes());
        n.extend_from_slice(&u32::from(r.segment).to_le_bytes());
        n.extend_from_slice(&[r.memory_address_limit, 0, 0, 0]);
        for m in &r.id_mappings {
            mapping_bytes(&mut n, m, &layout)?;
        }
        iort.append_slice(&n);
    }
    Ok(iort.as_slice().to_vec())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{le, sample_platform, LIMIT, RSDP_ADDR};
    use super::super::{build_acpi, byte_sum};
    use super::*;

    const BASE: u64 = 0xFEA0_0000;

    /// (offset, type, bytes) of every node, walking the Length fields from the node array offset.
    fn nodes(t: &[u8]) -> Vec<(usize, u8, &[u8])> {
        let count = le(t, 36, 4) as usize;
        let mut off = le(t, 40, 4) as usize;
        let mut out = Vec::new();
        for _ in 0..count {
            let len = le(t, off + 1, 2) as usize;
            assert!(
                len >= NODE_HEADER_LEN && off + len <= t.len(),
                "bad node at {off}"
            );
            out.push((off, t[off], &t[off..off + len]));
            off += len;
        }
        assert_eq!(off, t.len(), "nodes fill the table exactly");
        out
    }

    /// The (input base, number of IDs, output base, output reference, flags) of every ID mapping of a node.
    fn mappings(node: &[u8]) -> Vec<[u64; 5]> {
        let count = le(node, 8, 4) as usize;
        let at = le(node, 12, 4) as usize;
        (0..count)
            .map(|k| {
                let o = at + k * ID_MAPPING_LEN;
                [0, 4, 8, 12, 16].map(|f| le(node, o + f, 4))
            })
            .collect()
    }

    fn err(cfg: &IortConfig) -> String {
        match build_iort(cfg) {
            Err(AcpiError::InvalidIort(m)) => m,
            other => panic!("expected InvalidIort, got {other:?}"),
        }
    }

    #[test]
    fn header_fields() {
        let t = build_iort(&IortConfig::single_smmuv3(BASE, 16)).unwrap();
        assert_eq!(&t[0..4], b"IORT");
        assert_eq!(le(&t, 4, 4), t.len() as u64);
        assert_eq!(t[8], 5, "revision (E.d)");
        assert_eq!(&t[10..16], b"IOVMM ");
        assert_eq!(&t[16..24], b"IOVMMTBL");
        assert_eq!(le(&t, 24, 4), u64::from(OEM_REVISION));
        assert_eq!(le(&t, 36, 4), 3, "node count");
        assert_eq!(le(&t, 40, 4), 48, "node array offset");
        assert_eq!(le(&t, 44, 4), 0, "reserved");
        assert_eq!(byte_sum(&t), 0, "checksum");
        // ITS group with one ITS, SMMUv3 with two mappings, root complex with one.
        assert_eq!(t.len(), 48 + (20 + 4) + (68 + 2 * 20) + (36 + 20));
    }

    #[test]
    fn single_smmuv3_node_headers() {
        let t = build_iort(&IortConfig::single_smmuv3(BASE, 16)).unwrap();
        let n = nodes(&t);
        let kinds: Vec<u8> = n.iter().map(|x| x.1).collect();
        assert_eq!(kinds, [TYPE_ITS_GROUP, TYPE_SMMUV3, TYPE_ROOT_COMPLEX]);
        let offsets: Vec<usize> = n.iter().map(|x| x.0).collect();
        assert_eq!(offsets, [48, 72, 180]);
        let revisions: Vec<u8> = n.iter().map(|x| x.2[3]).collect();
        assert_eq!(revisions, [1, 4, 3]);
        for (_, _, b) in &n {
            assert_eq!(le(b, 4, 4), 0, "identifier");
        }
        // Mapping count and array offset: none for the ITS group, right after the fixed part otherwise.
        let [its, smmu, rc] = [n[0].2, n[1].2, n[2].2];
        assert_eq!((le(its, 8, 4), le(its, 12, 4)), (0, 0));
        assert_eq!((le(smmu, 8, 4), le(smmu, 12, 4)), (2, 68));
        assert_eq!((le(rc, 8, 4), le(rc, 12, 4)), (1, 36));
        // ITS group: one ITS, id 0.
        assert_eq!(le(its, 16, 4), 1);
        assert_eq!(le(its, 20, 4), 0);
    }

    #[test]
    fn single_smmuv3_fields_and_mappings() {
        let t = build_iort(&IortConfig::single_smmuv3(BASE, 16)).unwrap();
        let n = nodes(&t);
        let (its_off, smmu_off) = (n[0].0 as u64, n[1].0 as u64);
        let smmu = n[1].2;
        assert_eq!(le(smmu, 16, 8), BASE);
        assert_eq!(le(smmu, 24, 4), u64::from(SMMU_COHACC_OVERRIDE), "flags");
        assert_eq!(le(smmu, 28, 4), 0, "reserved");
        assert_eq!(le(smmu, 32, 8), 0, "VATOS");
        assert_eq!(le(smmu, 40, 4), 0, "generic model");
        for gsiv in [44, 48, 52, 56] {
            assert_eq!(le(smmu, gsiv, 4), 0, "MSI-based interrupts");
        }
        assert_eq!(le(smmu, 60, 4), 0, "proximity domain");
        assert_eq!(le(smmu, 64, 4), 1, "DeviceID mapping index");
        assert_eq!(
            mappings(smmu),
            [
                [0, 0xFFFF, 0, its_off, 0],
                [0, 0, 0x1_0000, its_off, u64::from(ID_SINGLE_MAPPING)]
            ]
        );

        let rc = n[2].2;
        assert_eq!(le(rc, 16, 4), 1, "CCA");
        assert_eq!(rc[20], 0, "allocation hints");
        assert_eq!(le(rc, 21, 2), 0);
        assert_eq!(rc[23], MAF_CPM | MAF_DACS);
        assert_eq!(le(rc, 24, 4), 0, "ATS");
        assert_eq!(le(rc, 28, 4), 0, "segment");
        assert_eq!(rc[32], 64, "memory address size limit");
        assert_eq!(&rc[33..36], &[0, 0, 0]);
        assert_eq!(mappings(rc), [[0, 0xFFFF, 0, smmu_off, 0]]);
    }

    #[test]
    fn every_reference_is_a_node_of_the_right_type() {
        let t = build_iort(&IortConfig::single_smmuv3(BASE, 16)).unwrap();
        let n = nodes(&t);
        let type_at = |off: u64| n.iter().find(|x| x.0 as u64 == off).map(|x| x.1);
        for (_, kind, b) in &n {
            for m in mappings(b) {
                let target = type_at(m[3]).expect("reference is a node offset");
                match *kind {
                    TYPE_SMMUV3 => assert_eq!(target, TYPE_ITS_GROUP),
                    TYPE_ROOT_COMPLEX => assert_eq!(target, TYPE_SMMUV3),
                    k => panic!("node type {k} has mappings"),
                }
            }
        }
    }

    #[test]
    fn fewer_stream_ids_shrink_the_ranges() {
        let c = IortConfig::single_smmuv3(BASE, 8);
        let t = build_iort(&c).unwrap();
        let n = nodes(&t);
        assert_eq!(mappings(n[1].2)[0][1], 0xFF);
        assert_eq!(
            mappings(n[1].2)[1][2],
            0x100,
            "own DeviceID after the streams"
        );
        assert_eq!(mappings(n[2].2)[0][1], 0xFF);
        for bits in [16, 20, 32] {
            let c = IortConfig::single_smmuv3(BASE, bits);
            assert_eq!(c.root_complexes[0].id_mappings[0].num_ids, 0xFFFF);
        }
    }

    /// Two ITS groups, two SMMUs, two root complexes: offsets follow the lengths, references follow the
    /// indices, and every optional field lands in its place.
    #[test]
    fn several_nodes_and_options() {
        let mut c = IortConfig::single_smmuv3(BASE, 16);
        c.its_groups.push(IortItsGroup {
            its_ids: vec![1, 2, 3],
        });
        let mut s2 = c.smmus[0].clone();
        s2.base = 0x1_0000_0000;
        s2.coherent_access = false;
        s2.httu_override = 2;
        s2.proximity_domain = Some(7);
        s2.event_gsiv = 40;
        s2.pri_gsiv = 41;
        s2.gerror_gsiv = 42;
        s2.sync_gsiv = 43;
        s2.device_id_mapping_index = None;
        s2.id_mappings = vec![IdMapping {
            input_base: 0,
            num_ids: 0xFF,
            output_base: 0x2_0000,
            output_ref: NodeRef::ItsGroup(1),
            single_mapping: false,
        }];
        c.smmus.push(s2);
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
                    num_ids: 0xFF,
                    output_base: 0x3_0000,
                    output_ref: NodeRef::ItsGroup(1),
                    single_mapping: false,
                },
            ],
        });
        let t = build_iort(&c).unwrap();
        assert_eq!(byte_sum(&t), 0);
        let n = nodes(&t);
        let kinds: Vec<u8> = n.iter().map(|x| x.1).collect();
        assert_eq!(kinds, [0, 0, 4, 4, 2, 2]);
        let off: Vec<u64> = n.iter().map(|x| x.0 as u64).collect();
        assert_eq!(off[1], off[0] + 24);
        assert_eq!(off[2], off[1] + 20 + 12);
        assert_eq!(off[3], off[2] + 68 + 40);
        assert_eq!(off[4], off[3] + 68 + 20);
        assert_eq!(off[5], off[4] + 36 + 20);

        let its2 = n[1].2;
        assert_eq!(le(its2, 16, 4), 3);
        assert_eq!([20, 24, 28].map(|o| le(its2, o, 4)), [1, 2, 3]);

        let s2 = n[3].2;
        assert_eq!(le(s2, 16, 8), 0x1_0000_0000);
        assert_eq!(
            le(s2, 24, 4),
            (2 << 1) | (1 << 3),
            "HTTU 2, PXM valid, no COHACC"
        );
        assert_eq!([44, 48, 52, 56].map(|o| le(s2, o, 4)), [40, 41, 42, 43]);
        assert_eq!(le(s2, 60, 4), 7);
        assert_eq!(le(s2, 64, 4), 0, "no DeviceID mapping index");
        assert_eq!(mappings(s2), [[0, 0xFF, 0x2_0000, off[1], 0]]);

        let rc2 = n[5].2;
        assert_eq!(le(rc2, 16, 4), 0, "not coherent");
        assert_eq!(rc2[23], 0);
        assert_eq!(le(rc2, 24, 4), 1, "ATS");
        assert_eq!(le(rc2, 28, 4), 1, "segment");
        assert_eq!(rc2[32], 48);
        assert_eq!(
            mappings(rc2),
            [[0, 0xFF, 0, off[3], 0], [0x100, 0xFF, 0x3_0000, off[1], 0]]
        );
    }

    #[test]
    fn its_and_root_complex_without_smmu() {
        let mut c = IortConfig::single_smmuv3(BASE, 16);
        c.smmus.clear();
        let m = &mut c.root_complexes[0].id_mappings[0];
        m.output_ref = NodeRef::ItsGroup(0);
        let t = build_iort(&c).unwrap();
        let n = nodes(&t);
        assert_eq!(n.len(), 2);
        assert_eq!(mappings(n[1].2), [[0, 0xFFFF, 0, 48, 0]]);
    }

    #[test]
    fn rejects_bad_configs() {
        type Mutation = fn(&mut IortConfig);
        let cases: &[(&str, Mutation)] = &[
            ("at least one node", |c| {
                c.its_groups.clear();
                c.smmus.clear();
                c.root_complexes.clear()
            }),
            ("at least one ITS identifier", |c| {
                c.its_groups[0].its_ids.clear()
            }),
            ("64 KiB aligned", |c| c.smmus[0].base = 0),
            ("64 KiB aligned", |c| c.smmus[0].base = BASE + 0x1000),
            ("overflows", |c| c.smmus[0].base = 0xFFFF_FFFF_FFFF_0000),
            ("overlaps SMMUv3 0", |c| {
                let mut s = c.smmus[0].clone();
                s.base = BASE + 0x1_0000;
                c.smmus.push(s)
            }),
            ("HTTU override 3", |c| c.smmus[0].httu_override = 3),
            ("needs a DeviceID mapping index", |c| {
                c.smmus[0].device_id_mapping_index = None
            }),
            ("no DeviceID mapping index", |c| {
                let s = &mut c.smmus[0];
                (s.event_gsiv, s.pri_gsiv, s.gerror_gsiv, s.sync_gsiv) = (1, 2, 3, 4)
            }),
            ("outside its 2 ID mappings", |c| {
                c.smmus[0].device_id_mapping_index = Some(2)
            }),
            ("single mapping to an ITS group", |c| {
                c.smmus[0].device_id_mapping_index = Some(0)
            }),
            ("only the DeviceID mapping", |c| {
                c.smmus[0].id_mappings[0].single_mapping = true;
                c.smmus[0].id_mappings[0].num_ids = 0
            }),
            ("maps only to ITS groups", |c| {
                c.smmus[0].id_mappings[0].output_ref = NodeRef::Smmuv3(0)
            }),
            ("names no node", |c| {
                c.smmus[0].id_mappings[1].output_ref = NodeRef::ItsGroup(1)
            }),
            ("names no node", |c| {
                c.root_complexes[0].id_mappings[0].output_ref = NodeRef::Smmuv3(1)
            }),
            ("maps one ID", |c| c.smmus[0].id_mappings[1].num_ids = 1),
            ("overflow the 32-bit ID space", |c| {
                c.root_complexes[0].id_mappings[0].input_base = 0xFFFF_0001
            }),
            ("overflow the 32-bit ID space", |c| {
                c.root_complexes[0].id_mappings[0].output_base = 0xFFFF_FFFF
            }),
            ("overlaps mapping 0", |c| {
                let mut m = c.root_complexes[0].id_mappings[0];
                m.input_base = 0xFFFF;
                m.num_ids = 0;
                c.root_complexes[0].id_mappings.push(m)
            }),
            ("segment 0 already has", |c| {
                let mut r = c.root_complexes[0].clone();
                r.id_mappings.clear();
                c.root_complexes.push(r)
            }),
            ("outside 1..=64", |c| {
                c.root_complexes[0].memory_address_limit = 0
            }),
            ("outside 1..=64", |c| {
                c.root_complexes[0].memory_address_limit = 65
            }),
            ("do not fit", |c| {
                let m = c.root_complexes[0].id_mappings[0];
                c.root_complexes[0].id_mappings = (0..3275u32)
                    .map(|k| IdMapping {
                        input_base: k,
                        num_ids: 0,
                        ..m
                    })
                    .collect()
            }),
        ];
        for (want, mutate) in cases {
            let mut c = IortConfig::single_smmuv3(BASE, 16);
            mutate(&mut c);
            let msg = err(&c);
            assert!(msg.contains(want), "expected `{want}` in `{msg}`");
        }
    }

    #[test]
    fn boundary_configs_are_accepted() {
        let mut c = IortConfig::single_smmuv3(0xFFFF_FFFF_FFFE_0000, 16);
        // The largest root complex whose length fits the u16 field: 36 + 3274 * 20 = 65516 (one more mapping
        // is 65536).
        let m = c.root_complexes[0].id_mappings[0];
        c.root_complexes[0].id_mappings = (0..3274u32)
            .map(|k| IdMapping {
                input_base: k,
                num_ids: 0,
                ..m
            })
            .collect();
        // A range ending exactly at the top of the ID space.
        c.root_complexes[0].id_mappings[3273] = IdMapping {
            input_base: 0xFFFF_0000,
            num_ids: 0xFFFF,
            output_base: 0xFFFF_0000,
            ..m
        };
        c.root_complexes[0].memory_address_limit = 1;
        let t = build_iort(&c).unwrap();
        let n = nodes(&t);
        assert_eq!(n[2].2.len(), 65516);
        assert_eq!(le(n[1].2, 16, 8), 0xFFFF_FFFF_FFFE_0000);
        assert_eq!(byte_sum(&t), 0);
    }

    #[test]
    fn passes_through_build_acpi_and_is_listed() {
        let iort = build_iort(&IortConfig::single_smmuv3(BASE, 16)).unwrap();
        let mut p = sample_platform();
        p.extra_tables = vec![iort.clone()];
        let t = build_acpi(&p, RSDP_ADDR, LIMIT).unwrap();
        let listed = t.tables.iter().find(|x| x.signature == "IORT").unwrap();
        assert_eq!(listed.bytes, iort);
        let xsdt = &t.tables[0].bytes;
        let entries: Vec<u64> = (36..xsdt.len())
            .step_by(8)
            .map(|o| le(xsdt, o, 8))
            .collect();
        assert!(entries.contains(&listed.address), "{entries:x?}");
    }
}
