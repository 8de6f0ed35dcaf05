//! iommufd hardware page tables (HWPT) for nesting: a nest parent over an IOAS, a VT-d stage-1 (nested) HWPT
//! over the parent, and user-driven stage-1 cache invalidation.
//!
//! The structs (`iommu_hwpt_alloc`, `iommu_hwpt_vtd_s1`, `iommu_hwpt_invalidate`,
//! `iommu_hwpt_vtd_s1_invalidate`) and the flag/type constants come from `iommufd-bindings` 0.2, the calls from
//! `iommufd-ioctls` 0.4 (`alloc_iommu_hwpt`, `invalidate_hwpt`); nothing is hand-written here. The sizes the
//! 6.12 kernel expects are checked in the tests below.

use iommufd_bindings::iommufd::{
    iommu_hwpt_alloc, iommu_hwpt_data_type_IOMMU_HWPT_DATA_NONE,
    iommu_hwpt_data_type_IOMMU_HWPT_DATA_VTD_S1, iommu_hwpt_invalidate,
    iommu_hwpt_invalidate_data_type_IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, iommu_hwpt_vtd_s1,
    iommu_hwpt_vtd_s1_invalidate, iommu_hwpt_vtd_s1_invalidate_flags_IOMMU_VTD_INV_FLAGS_LEAF,
    iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_NEST_PARENT,
};

use super::iommufd::Iommufd;

/// `IOMMU_VTD_INV_FLAGS_LEAF`: only leaf entries changed (paging-structure caches may be kept).
pub const INV_FLAGS_LEAF: u32 = iommu_hwpt_vtd_s1_invalidate_flags_IOMMU_VTD_INV_FLAGS_LEAF;

/// What a VT-d stage-1 HWPT is built from (`struct iommu_hwpt_vtd_s1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VtdS1 {
    /// `IOMMU_VTD_S1_*` flags (SRE, EAFE, WPE); 0 for user-only requests.
    pub flags: u64,
    /// Top-level stage-1 table, a stage-2 input address (IOAS IOVA).
    pub pgtbl_addr: u64,
    /// 48 (4-level) or 57 (5-level).
    pub addr_width: u32,
}

/// One stage-1 invalidation request (`struct iommu_hwpt_vtd_s1_invalidate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S1Invalidation {
    /// First 4 KiB page (stage-1 input address).
    pub addr: u64,
    /// 4 KiB pages; `u64::MAX` with `addr` 0 means everything.
    pub npages: u64,
    pub flags: u32,
}

impl S1Invalidation {
    /// Everything cached for the HWPT.
    pub const ALL: S1Invalidation = S1Invalidation {
        addr: 0,
        npages: u64::MAX,
        flags: 0,
    };

    /// `npages` pages at `addr`, leaf entries only.
    pub fn leaves(addr: u64, npages: u64) -> Self {
        Self {
            addr,
            npages,
            flags: INV_FLAGS_LEAF,
        }
    }

    fn raw(self) -> iommu_hwpt_vtd_s1_invalidate {
        iommu_hwpt_vtd_s1_invalidate {
            addr: self.addr,
            npages: self.npages,
            flags: self.flags,
            __reserved: 0,
        }
    }
}

impl Iommufd {
    fn hwpt_alloc(&self, a: &mut iommu_hwpt_alloc, what: &str) -> Result<u32, String> {
        self.fd
            .alloc_iommu_hwpt(a)
            .map_err(|e| format!("IOMMU_HWPT_ALLOC ({what}): {e}"))?;
        Ok(a.out_hwpt_id)
    }

    /// `IOMMU_HWPT_ALLOC` with `IOMMU_HWPT_ALLOC_NEST_PARENT`: a kernel-managed (second-stage) HWPT holding
    /// the mappings of `ioas`, usable as a nesting parent for device `dev_id`.
    pub fn hwpt_alloc_nest_parent(&self, dev_id: u32, ioas: u32) -> Result<u32, String> {
        let mut a = iommu_hwpt_alloc {
            size: std::mem::size_of::<iommu_hwpt_alloc>() as u32,
            flags: iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_NEST_PARENT,
            dev_id,
            pt_id: ioas,
            data_type: iommu_hwpt_data_type_IOMMU_HWPT_DATA_NONE,
            ..Default::default()
        };
        self.hwpt_alloc(&mut a, &format!("nest parent on IOAS {ioas}"))
    }

    /// `IOMMU_HWPT_ALLOC` of a user-managed VT-d stage-1 HWPT nested on `parent`.
    pub fn hwpt_alloc_vtd_s1(&self, dev_id: u32, parent: u32, s1: VtdS1) -> Result<u32, String> {
        let data = iommu_hwpt_vtd_s1 {
            flags: s1.flags,
            pgtbl_addr: s1.pgtbl_addr,
            addr_width: s1.addr_width,
            __reserved: 0,
        };
        let mut a = iommu_hwpt_alloc {
            size: std::mem::size_of::<iommu_hwpt_alloc>() as u32,
            flags: 0,
            dev_id,
            pt_id: parent,
            data_type: iommu_hwpt_data_type_IOMMU_HWPT_DATA_VTD_S1,
            data_len: std::mem::size_of::<iommu_hwpt_vtd_s1>() as u32,
            data_uptr: &data as *const iommu_hwpt_vtd_s1 as u64,
            ..Default::default()
        };
        // `data` lives until after the call: the kernel copies it during the ioctl.
        self.hwpt_alloc(
            &mut a,
            &format!(
                "VT-d stage 1 on HWPT {parent}, pgtbl {:#x}, addr_width {}",
                s1.pgtbl_addr, s1.addr_width
            ),
        )
    }

    /// `IOMMU_HWPT_INVALIDATE` of a VT-d stage-1 HWPT; returns how many entries the kernel processed.
    pub fn hwpt_invalidate_vtd_s1(
        &self,
        hwpt: u32,
        entries: &[S1Invalidation],
    ) -> Result<u32, String> {
        let raw: Vec<iommu_hwpt_vtd_s1_invalidate> = entries.iter().map(|e| e.raw()).collect();
        let mut inv = iommu_hwpt_invalidate {
            size: std::mem::size_of::<iommu_hwpt_invalidate>() as u32,
            hwpt_id: hwpt,
            data_uptr: raw.as_ptr() as u64,
            data_type: iommu_hwpt_invalidate_data_type_IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
            entry_len: std::mem::size_of::<iommu_hwpt_vtd_s1_invalidate>() as u32,
            entry_num: raw.len() as u32,
            __reserved: 0,
        };
        let r = self.fd.invalidate_hwpt(&mut inv);
        match r {
            Ok(()) if inv.entry_num as usize == entries.len() => Ok(inv.entry_num),
            Ok(()) => Err(format!(
                "IOMMU_HWPT_INVALIDATE(HWPT {hwpt}): processed {} of {} entries",
                inv.entry_num,
                entries.len()
            )),
            Err(e) => Err(format!(
                "IOMMU_HWPT_INVALIDATE(HWPT {hwpt}, {entries:?}): {e} ({} processed)",
                inv.entry_num
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_sizes_match_6_12() {
        // include/uapi/linux/iommufd.h (6.12): iommu_hwpt_alloc 48 bytes (with fault_id), iommu_hwpt_vtd_s1 24,
        // iommu_hwpt_invalidate 32, iommu_hwpt_vtd_s1_invalidate 24.
        assert_eq!(std::mem::size_of::<iommu_hwpt_alloc>(), 48);
        assert_eq!(std::mem::size_of::<iommu_hwpt_vtd_s1>(), 24);
        assert_eq!(std::mem::size_of::<iommu_hwpt_invalidate>(), 32);
        assert_eq!(std::mem::size_of::<iommu_hwpt_vtd_s1_invalidate>(), 24);
        assert_eq!(
            std::mem::offset_of!(iommu_hwpt_vtd_s1, addr_width),
            16,
            "pgtbl_addr is a u64 after the u64 flags"
        );
    }

    #[test]
    fn constants_match_6_12() {
        assert_eq!(iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_NEST_PARENT, 1);
        assert_eq!(iommu_hwpt_data_type_IOMMU_HWPT_DATA_VTD_S1, 1);
        assert_eq!(
            iommu_hwpt_invalidate_data_type_IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
            0
        );
        assert_eq!(INV_FLAGS_LEAF, 1);
    }

    #[test]
    fn invalidation_entries() {
        assert_eq!(S1Invalidation::ALL.raw().npages, u64::MAX);
        let l = S1Invalidation::leaves(0x1000, 2).raw();
        assert_eq!((l.addr, l.npages, l.flags, l.__reserved), (0x1000, 2, 1, 0));
    }
}
