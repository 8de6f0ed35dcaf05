//! The guest's `/dev/iommu`: IOAS objects, mappings, permitted IOVA ranges and the VT-d hardware info.
//!
//! Calls go through `iommufd-ioctls` (`IommuFd`: IOAS alloc, map, unmap, destroy, GET_HW_INFO) with the structs
//! of `iommufd-bindings`. Not covered by `iommufd-ioctls` 0.4 and declared here: the `IOMMU_IOAS_IOVA_RANGES`
//! request number (the struct comes from `iommufd-bindings`), and the VT-d flavour of GET_HW_INFO (the crate's
//! `device_hw_info` knows only SMMUv3; we pass an `iommu_hw_info_vtd` buffer to its raw `get_hw_info`).

use std::fs::{File, OpenOptions};
use std::path::Path;

use iommufd_bindings::iommufd::{
    iommu_hw_info, iommu_hw_info_type_IOMMU_HW_INFO_TYPE_INTEL_VTD, iommu_hw_info_vtd,
    iommu_ioas_alloc, iommu_ioas_iova_ranges, iommu_ioas_map, iommu_ioas_unmap, iommu_iova_range,
    iommufd_ioas_map_flags_IOMMU_IOAS_MAP_FIXED_IOVA,
    iommufd_ioas_map_flags_IOMMU_IOAS_MAP_READABLE,
    iommufd_ioas_map_flags_IOMMU_IOAS_MAP_WRITEABLE, IOMMUFD_CMD_IOAS_IOVA_RANGES, IOMMUFD_TYPE,
};
use iommufd_ioctls::IommuFd;
use vmm_sys_util::ioctl::ioctl_with_mut_ref;
use vmm_sys_util::ioctl_io_nr;

use firmware_tables::description::IovaRange;

ioctl_io_nr!(
    IOMMU_IOAS_IOVA_RANGES,
    IOMMUFD_TYPE as u32,
    IOMMUFD_CMD_IOAS_IOVA_RANGES
);

/// `IOMMU_HW_INFO_TYPE_INTEL_VTD`.
pub const HW_INFO_TYPE_VTD: u32 = iommu_hw_info_type_IOMMU_HW_INFO_TYPE_INTEL_VTD;

/// Access rights of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapPerms {
    pub read: bool,
    pub write: bool,
}

impl MapPerms {
    pub const RW: MapPerms = MapPerms {
        read: true,
        write: true,
    };
    pub const RO: MapPerms = MapPerms {
        read: true,
        write: false,
    };

    /// `IOMMU_IOAS_MAP` flags for a mapping at a fixed IOVA.
    pub fn map_flags(self) -> u32 {
        let mut f = iommufd_ioas_map_flags_IOMMU_IOAS_MAP_FIXED_IOVA;
        if self.read {
            f |= iommufd_ioas_map_flags_IOMMU_IOAS_MAP_READABLE;
        }
        if self.write {
            f |= iommufd_ioas_map_flags_IOMMU_IOAS_MAP_WRITEABLE;
        }
        f
    }
}

/// What `IOMMU_GET_HW_INFO` reported for a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VtdHwInfo {
    pub data_type: u32,
    pub flags: u32,
    pub cap: u64,
    pub ecap: u64,
}

/// An open `/dev/iommu`.
pub struct Iommufd {
    /// Shared with the HWPT calls in `super::hwpt`.
    pub(super) fd: IommuFd,
}

impl Iommufd {
    /// Opens the iommufd node (`/dev/iommu` in the guest).
    pub fn open(path: &Path) -> Result<Self, String> {
        let f: File = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(Self {
            fd: IommuFd::new_from_fd(f),
        })
    }

    /// The raw fd, for `VFIO_DEVICE_BIND_IOMMUFD`.
    pub fn raw_fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }

    /// `IOMMU_IOAS_ALLOC`: a new, empty IOAS.
    pub fn ioas_alloc(&self) -> Result<u32, String> {
        let mut a = iommu_ioas_alloc {
            size: std::mem::size_of::<iommu_ioas_alloc>() as u32,
            flags: 0,
            out_ioas_id: 0,
        };
        self.fd
            .alloc_iommu_ioas(&mut a)
            .map_err(|e| format!("IOMMU_IOAS_ALLOC: {e}"))?;
        Ok(a.out_ioas_id)
    }

    /// `IOMMU_DESTROY`.
    pub fn destroy(&self, id: u32) -> Result<(), String> {
        self.fd
            .destroy_iommu_object(id)
            .map_err(|e| format!("IOMMU_DESTROY({id}): {e}"))
    }

    /// `IOMMU_IOAS_MAP` of `len` bytes of this process at `va` to `iova` (FIXED_IOVA).
    ///
    /// The kernel pins the pages; the caller keeps the memory mapped until the matching unmap.
    pub fn map(
        &self,
        ioas: u32,
        va: u64,
        len: u64,
        iova: u64,
        perms: MapPerms,
    ) -> Result<(), String> {
        let m = iommu_ioas_map {
            size: std::mem::size_of::<iommu_ioas_map>() as u32,
            flags: perms.map_flags(),
            ioas_id: ioas,
            __reserved: 0,
            user_va: va,
            length: len,
            iova,
        };
        self.fd
            .map_iommu_ioas(&m)
            .map_err(|e| format!("IOMMU_IOAS_MAP(ioas {ioas}, iova {iova:#x}, len {len:#x}): {e}"))
    }

    /// `IOMMU_IOAS_UNMAP`; returns the number of bytes the kernel unmapped.
    pub fn unmap(&self, ioas: u32, iova: u64, len: u64) -> Result<u64, String> {
        let mut u = iommu_ioas_unmap {
            size: std::mem::size_of::<iommu_ioas_unmap>() as u32,
            ioas_id: ioas,
            iova,
            length: len,
        };
        self.fd
            .unmap_iommu_ioas(&mut u)
            .map_err(|e| format!("IOMMU_IOAS_UNMAP(ioas {ioas}, iova {iova:#x}): {e}"))?;
        Ok(u.length)
    }

    /// `IOMMU_IOAS_IOVA_RANGES`: the IOVA ranges `ioas` permits now, and the required IOVA alignment.
    pub fn iova_ranges(&self, ioas: u32) -> Result<(Vec<IovaRange>, u64), String> {
        let mut cap = 8usize;
        // The kernel returns -EMSGSIZE with the needed count when the array is too small; two rounds suffice
        // unless the ranges change in between, so a few rounds bound the loop.
        for _ in 0..4 {
            let mut buf = vec![iommu_iova_range::default(); cap];
            let mut q = iommu_ioas_iova_ranges {
                size: std::mem::size_of::<iommu_ioas_iova_ranges>() as u32,
                ioas_id: ioas,
                num_iovas: cap as u32,
                __reserved: 0,
                allowed_iovas: buf.as_mut_ptr() as u64,
                out_iova_alignment: 0,
            };
            // SAFETY: `q` is a valid iommu_ioas_iova_ranges whose allowed_iovas points at `buf`, which holds
            // `num_iovas` iommu_iova_range entries and outlives the call; the kernel writes at most that many.
            let rc = unsafe { ioctl_with_mut_ref(&self.fd, IOMMU_IOAS_IOVA_RANGES(), &mut q) };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EMSGSIZE) && q.num_iovas as usize > cap {
                    cap = q.num_iovas as usize;
                    continue;
                }
                return Err(format!("IOMMU_IOAS_IOVA_RANGES(ioas {ioas}): {e}"));
            }
            let n = (q.num_iovas as usize).min(cap);
            let ranges = buf[..n]
                .iter()
                .map(|r| IovaRange {
                    first: r.start,
                    last: r.last,
                })
                .collect();
            return Ok((ranges, q.out_iova_alignment));
        }
        Err(format!(
            "IOMMU_IOAS_IOVA_RANGES(ioas {ioas}): range count kept changing"
        ))
    }

    /// `IOMMU_GET_HW_INFO` for bound device `dev_id`, with room for the VT-d data.
    pub fn hw_info_vtd(&self, dev_id: u32) -> Result<VtdHwInfo, String> {
        let mut vtd = iommu_hw_info_vtd::default();
        let mut info = iommu_hw_info {
            size: std::mem::size_of::<iommu_hw_info>() as u32,
            dev_id,
            data_len: std::mem::size_of::<iommu_hw_info_vtd>() as u32,
            data_uptr: &mut vtd as *mut iommu_hw_info_vtd as u64,
            ..Default::default()
        };
        self.fd
            .get_hw_info(&mut info)
            .map_err(|e| format!("IOMMU_GET_HW_INFO(dev {dev_id}): {e}"))?;
        // SAFETY: both union members are one u32; the kernel wrote out_data_type.
        let data_type = unsafe { info.__bindgen_anon_1.out_data_type };
        Ok(VtdHwInfo {
            data_type,
            flags: vtd.flags,
            cap: vtd.cap_reg,
            ecap: vtd.ecap_reg,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_match_linux_uapi() {
        // _IO(';', 0x84) from include/uapi/linux/iommufd.h (6.12).
        assert_eq!(IOMMU_IOAS_IOVA_RANGES(), 0x3b84);
        assert_eq!(HW_INFO_TYPE_VTD, 1);
    }

    #[test]
    fn struct_sizes_match_linux_uapi() {
        // 6.12: iommu_ioas_iova_ranges 32, iommu_iova_range 16, iommu_ioas_map 40, iommu_hw_info 40,
        // iommu_hw_info_vtd 24.
        assert_eq!(std::mem::size_of::<iommu_ioas_iova_ranges>(), 32);
        assert_eq!(std::mem::size_of::<iommu_iova_range>(), 16);
        assert_eq!(std::mem::size_of::<iommu_ioas_map>(), 40);
        assert_eq!(std::mem::size_of::<iommu_hw_info>(), 40);
        assert_eq!(std::mem::size_of::<iommu_hw_info_vtd>(), 24);
    }

    #[test]
    fn map_flags() {
        // FIXED_IOVA 1, WRITEABLE 2, READABLE 4.
        assert_eq!(MapPerms::RW.map_flags(), 7);
        assert_eq!(MapPerms::RO.map_flags(), 5);
    }

    #[test]
    fn open_reports_missing_node() {
        let e = Iommufd::open(Path::new("/nonexistent/dev/iommu"))
            .err()
            .unwrap();
        assert!(e.contains("cannot open /nonexistent/dev/iommu"), "{e}");
    }
}
