//! The common start of every nested-translation test: on top of a [`Session`] (device bound and attached to a
//! fresh IOAS), a nest-parent HWPT over that IOAS, stage-1 table sets in IOAS-mapped buffers, nested HWPTs over
//! the parent, and attach/replace.
//!
//! Every table page is mapped into the IOAS on its own, so a test can take one table page away from stage 2
//! (IOAS unmap) without touching the others: iommufd never splits a mapping on unmap.

use firmware_tables::description::IommuInfo;

use super::super::super::dmabuf::{DmaBuffer, PAGE};
use super::super::super::hwpt::{S1Invalidation, VtdS1};
use super::super::super::iommufd::MapPerms;
use super::super::super::report::Report;
use super::super::super::vfio_cdev::attach_pt;
use super::super::session::Session;
use super::stage1::{Stage1, TableStore, ENTRIES, TABLE_BYTES};

/// IOAS IOVA of the first table set; later sets follow at [`TABLE_SET_STRIDE`].
pub const TABLE_IOVA: u64 = 0x7000_0000;
/// Pages per table set.
pub const TABLE_PAGES: usize = 32;
/// IOAS distance between table sets.
pub const TABLE_SET_STRIDE: u64 = 0x10_0000;

/// CAP.FL1GP (bit 56): first-stage 1 GiB pages.
pub const CAP_FL1GP: u64 = 1 << 56;
/// CAP.FL5LP (bit 60): first-stage 5-level paging.
pub const CAP_FL5LP: u64 = 1 << 60;
/// CAP.SLLPS 2 MiB (bit 34).
pub const CAP_SLLPS_2M: u64 = 1 << 34;
/// ECAP.NEST (bit 26), ECAP.SMTS (43), ECAP.SLTS (46), ECAP.FLTS (47).
pub const ECAP_NEST: u64 = 1 << 26;
pub const ECAP_SMTS: u64 = 1 << 43;
pub const ECAP_SLTS: u64 = 1 << 46;
pub const ECAP_FLTS: u64 = 1 << 47;

/// CAP and ECAP as published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub cap: u64,
    pub ecap: u64,
}

impl Caps {
    pub fn of(info: &IommuInfo) -> Result<Self, String> {
        match info.id_registers[..] {
            [cap, ecap, ..] => Ok(Self { cap, ecap }),
            _ => Err(format!(
                "expected id_registers [CAP, ECAP], got {:x?}",
                info.id_registers
            )),
        }
    }

    /// Stage-1 levels the tests build: 5 where the unit offers 5-level first-stage paging, else 4.
    pub fn s1_levels(self) -> u8 {
        if self.cap & CAP_FL5LP != 0 {
            5
        } else {
            4
        }
    }

    pub fn fl1g(self) -> bool {
        self.cap & CAP_FL1GP != 0
    }

    /// What nesting needs (VT-d: SMTS, NEST, FLTS, SLTS), or which bits are missing.
    pub fn check_nesting(self) -> Result<(), String> {
        let missing: Vec<&str> = [
            (ECAP_SMTS, "SMTS"),
            (ECAP_NEST, "NEST"),
            (ECAP_FLTS, "FLTS"),
            (ECAP_SLTS, "SLTS"),
        ]
        .iter()
        .filter(|(b, _)| self.ecap & b == 0)
        .map(|(_, n)| *n)
        .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the published ECAP {:#x} lacks {} (scenario without fl=on,nest=on?)",
                self.ecap,
                missing.join(", ")
            ))
        }
    }
}

/// Table pages in a DMA buffer.
pub struct BufferStore(pub DmaBuffer);

impl TableStore for BufferStore {
    fn pages(&self) -> usize {
        self.0.len() / TABLE_BYTES as usize
    }
    fn read(&self, page: usize, index: usize) -> u64 {
        self.0
            .read_u64(page * TABLE_BYTES as usize + index * 8)
            .unwrap_or(0)
    }
    fn write(&mut self, page: usize, index: usize, value: u64) {
        if index < ENTRIES {
            self.0
                .write_u64(page * TABLE_BYTES as usize + index * 8, value);
        }
    }
}

/// Stage-1 tables whose pages are mapped in the IOAS.
pub type Tables = Stage1<BufferStore>;

/// A nest parent over the session's IOAS, and the nested HWPTs built on it.
pub struct Nest<'s> {
    pub s: &'s Session,
    pub caps: Caps,
    pub parent: u32,
    /// Nested HWPTs allocated so far (destroyed by [`Nest::finish`]).
    pub nested: Vec<u32>,
    table_sets: u64,
}

impl<'s> Nest<'s> {
    /// Allocates the nest parent on the session's IOAS.
    pub fn new(s: &'s Session, info: &IommuInfo) -> Result<Self, String> {
        let caps = Caps::of(info)?;
        caps.check_nesting()?;
        let parent = s.iommufd.hwpt_alloc_nest_parent(s.dev_id, s.ioas)?;
        Ok(Self {
            s,
            caps,
            parent,
            nested: Vec::new(),
            table_sets: 0,
        })
    }

    /// A new, empty set of stage-1 tables (the unit's level count) with every page mapped in the IOAS.
    pub fn tables(&mut self) -> Result<Tables, String> {
        self.tables_with(self.caps.s1_levels())
    }

    /// A new, empty set of `levels`-level stage-1 tables.
    pub fn tables_with(&mut self, levels: u8) -> Result<Tables, String> {
        let base = TABLE_IOVA + self.table_sets * TABLE_SET_STRIDE;
        let buf = DmaBuffer::new(TABLE_PAGES * PAGE as usize, PAGE as usize)?;
        for p in 0..TABLE_PAGES as u64 {
            self.s.iommufd.map(
                self.s.ioas,
                buf.va() + p * PAGE,
                PAGE,
                base + p * PAGE,
                MapPerms::RW,
            )?;
        }
        self.table_sets += 1;
        Stage1::new(BufferStore(buf), base, levels)
    }

    /// Maps all of `buf` RW at IOAS IOVA `iova` (a nest parent refuses read-only mappings).
    pub fn map(&self, buf: &DmaBuffer, iova: u64) -> Result<(), String> {
        self.s
            .iommufd
            .map(self.s.ioas, buf.va(), buf.len() as u64, iova, MapPerms::RW)
    }

    /// A nested HWPT whose stage 1 is `tables`.
    pub fn alloc_nested(&mut self, tables: &Tables) -> Result<u32, String> {
        let h = self.s.iommufd.hwpt_alloc_vtd_s1(
            self.s.dev_id,
            self.parent,
            VtdS1 {
                flags: 0,
                pgtbl_addr: tables.root(),
                addr_width: tables.addr_width(),
            },
        )?;
        self.nested.push(h);
        Ok(h)
    }

    /// Attaches (or replaces the attachment of) the device to HWPT or IOAS `pt`. A HWPT is attached as is;
    /// an IOAS gets a kernel-chosen HWPT.
    pub fn attach(&self, pt: u32) -> Result<(), String> {
        let got = attach_pt(&self.s.dev, pt)?;
        if pt != self.s.ioas && got != pt {
            return Err(format!("attached to {got}, asked for HWPT {pt}"));
        }
        Ok(())
    }

    /// Allocates a nested HWPT for `tables` and attaches the device to it.
    pub fn attach_tables(&mut self, tables: &Tables) -> Result<u32, String> {
        let h = self.alloc_nested(tables)?;
        self.attach(h)?;
        Ok(h)
    }

    /// `IOMMU_HWPT_INVALIDATE` of nested HWPT `hwpt`.
    pub fn invalidate(&self, hwpt: u32, what: &[S1Invalidation]) -> Result<(), String> {
        self.s
            .iommufd
            .hwpt_invalidate_vtd_s1(hwpt, what)
            .map(|_| ())
    }

    /// Attaches the device back to the IOAS and destroys the nested HWPTs and the parent; failures are
    /// recorded (a HWPT that cannot be destroyed is still in use).
    pub fn finish(self, r: &mut Report) {
        if let Err(e) = self.attach(self.s.ioas) {
            r.fail(format!("re-attaching the IOAS: {e}"));
        }
        for h in self.nested.iter().rev() {
            if let Err(e) = self.s.iommufd.destroy(*h) {
                r.fail(format!("destroying nested HWPT: {e}"));
            }
        }
        if let Err(e) = self.s.iommufd.destroy(self.parent) {
            r.fail(format!("destroying the nest parent: {e}"));
        }
    }

    /// Notes for diagnostics.
    pub fn describe(&self, tables: &Tables) -> String {
        format!(
            "nest parent HWPT {} on IOAS {}; {}-level stage-1 tables at IOAS {:#x} (addr_width {}), \
             {} table pages used",
            self.parent,
            self.s.ioas,
            tables.levels(),
            tables.root(),
            tables.addr_width(),
            tables.used_pages()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(cap: u64, ecap: u64) -> IommuInfo {
        IommuInfo {
            model: "vtd".into(),
            options: "vtd".into(),
            base: 0xfed9_0000,
            id_registers: vec![cap, ecap],
            permitted_ranges: vec![],
            permitted_ranges_first_stage: vec![],
            test_device_bdf: "0000:00:03.0".into(),
        }
    }

    #[test]
    fn caps_pick_levels_and_check_nesting() {
        let all = ECAP_SMTS | ECAP_NEST | ECAP_FLTS | ECAP_SLTS;
        let c = Caps::of(&info(CAP_FL5LP | CAP_FL1GP, all)).unwrap();
        assert_eq!(c.s1_levels(), 5);
        assert!(c.fl1g());
        assert!(c.check_nesting().is_ok());
        let c = Caps::of(&info(0, ECAP_SMTS | ECAP_SLTS)).unwrap();
        assert_eq!(c.s1_levels(), 4);
        assert!(!c.fl1g());
        let e = c.check_nesting().unwrap_err();
        assert!(e.contains("lacks NEST, FLTS"), "{e}");
        assert!(Caps::of(&IommuInfo {
            id_registers: vec![1],
            ..info(0, 0)
        })
        .is_err());
    }

    #[test]
    fn buffer_store_reads_and_writes_entries() {
        let mut s = BufferStore(DmaBuffer::new(2 * PAGE as usize, PAGE as usize).unwrap());
        assert_eq!(s.pages(), 2);
        s.write(1, 511, 0xabc);
        assert_eq!(s.read(1, 511), 0xabc);
        assert_eq!(s.0.read_u64(2 * 4096 - 8), Some(0xabc));
        // Out of range: ignored / zero.
        s.write(1, 512, 1);
        s.write(2, 0, 1);
        assert_eq!(s.read(2, 0), 0);
        let t = Stage1::new(s, TABLE_IOVA, 4).unwrap();
        assert_eq!(t.root(), TABLE_IOVA);
    }
}
