//! VFIO device cdev (`/dev/vfio/devices/vfioN`) bound to an iommufd, and BAR access through a region mmap.
//!
//! Structures come from `vfio-bindings`; the request numbers (C macros) are declared with `ioctl_io_nr!`.
//! `vfio-bindings` 0.7 follows a newer uAPI than the guest's 6.12: its `vfio_device_bind_iommufd` has a trailing
//! `token_uuid_ptr` (6.12: 16 bytes) and `vfio_device_attach_iommufd_pt` a trailing `pasid` (6.12: 12 bytes).
//! We pass the 6.12 sizes in `argsz`, which both kernels accept (they read `minsz` and ignore the rest).

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use vfio_bindings::bindings::vfio::{
    vfio_device_attach_iommufd_pt, vfio_device_bind_iommufd, VFIO_BASE, VFIO_REGION_INFO_FLAG_MMAP,
    VFIO_TYPE,
};
use vmm_sys_util::ioctl::ioctl_with_mut_ref;
use vmm_sys_util::ioctl_io_nr;

use super::vfio::{Region, VfioDevice};

ioctl_io_nr!(VFIO_DEVICE_BIND_IOMMUFD, VFIO_TYPE as u32, VFIO_BASE + 18);
ioctl_io_nr!(
    VFIO_DEVICE_ATTACH_IOMMUFD_PT,
    VFIO_TYPE as u32,
    VFIO_BASE + 19
);

/// `argsz` of VFIO_DEVICE_BIND_IOMMUFD in 6.12 (`offsetofend(out_devid)`).
pub const BIND_ARGSZ: u32 = 16;
/// `argsz` of VFIO_DEVICE_ATTACH_IOMMUFD_PT in 6.12 (`offsetofend(pt_id)`).
pub const ATTACH_ARGSZ: u32 = 12;

/// Picks the `vfioN` name among the entries of `/sys/bus/pci/devices/BDF/vfio-dev/`.
pub fn pick_cdev_name<I: IntoIterator<Item = String>>(entries: I) -> Option<String> {
    entries.into_iter().find(|n| {
        n.strip_prefix("vfio")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The cdev node for `bdf`: `dev_root/vfio/devices/vfioN`, N from `sys/bus/pci/devices/BDF/vfio-dev/`.
pub fn cdev_path(sys: &Path, dev_root: &Path, bdf: &str) -> Result<PathBuf, String> {
    let dir = sys.join("bus/pci/devices").join(bdf).join("vfio-dev");
    let rd = std::fs::read_dir(&dir).map_err(|e| {
        format!(
            "cannot list {}: {e} (no VFIO device cdev: CONFIG_VFIO_DEVICE_CDEV, or no IOMMU group?)",
            dir.display()
        )
    })?;
    let names = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned());
    let name =
        pick_cdev_name(names).ok_or_else(|| format!("no vfioN entry in {}", dir.display()))?;
    Ok(dev_root.join("vfio/devices").join(name))
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Opens a VFIO device cdev (not usable until bound to an iommufd).
pub fn open(path: &Path) -> Result<VfioDevice, String> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    Ok(VfioDevice::from_parts(Vec::new(), f))
}

/// VFIO_DEVICE_BIND_IOMMUFD: binds the device to `iommufd` and returns its iommufd device id.
pub fn bind_iommufd(dev: &VfioDevice, iommufd: i32) -> Result<u32, String> {
    let mut b = vfio_device_bind_iommufd {
        argsz: BIND_ARGSZ,
        flags: 0,
        iommufd,
        out_devid: 0,
        ..Default::default()
    };
    // SAFETY: `b` is a vfio_device_bind_iommufd at least `argsz` bytes long; the kernel reads argsz bytes and
    // writes out_devid, both inside the struct, which outlives the call.
    if unsafe { ioctl_with_mut_ref(dev.file(), VFIO_DEVICE_BIND_IOMMUFD(), &mut b) } < 0 {
        return Err(os_err(
            "VFIO_DEVICE_BIND_IOMMUFD (EPERM without MSI isolation: iommufd.allow_unsafe_interrupts=1?)",
        ));
    }
    Ok(b.out_devid)
}

/// VFIO_DEVICE_ATTACH_IOMMUFD_PT: attaches (or re-attaches) the bound device to IOAS or HWPT `pt_id`; returns
/// the id of the page table actually attached (an IOAS gets an automatic HWPT).
pub fn attach_pt(dev: &VfioDevice, pt_id: u32) -> Result<u32, String> {
    let mut a = vfio_device_attach_iommufd_pt {
        argsz: ATTACH_ARGSZ,
        flags: 0,
        pt_id,
        pasid: 0,
    };
    // SAFETY: `a` is a vfio_device_attach_iommufd_pt at least `argsz` bytes long; the kernel writes pt_id
    // inside it. It outlives the call.
    if unsafe { ioctl_with_mut_ref(dev.file(), VFIO_DEVICE_ATTACH_IOMMUFD_PT(), &mut a) } < 0 {
        return Err(os_err(&format!("VFIO_DEVICE_ATTACH_IOMMUFD_PT({pt_id})")));
    }
    Ok(a.pt_id)
}

/// A device region mapped into this process (a BAR through VFIO), accessed with volatile loads and stores.
pub struct MappedRegion {
    ptr: *mut u8,
    len: usize,
}

impl MappedRegion {
    /// Maps all of `region` of `dev` (it must advertise VFIO_REGION_INFO_FLAG_MMAP).
    pub fn map(dev: &VfioDevice, region: &Region) -> Result<Self, String> {
        if region.flags & VFIO_REGION_INFO_FLAG_MMAP == 0 {
            return Err(format!(
                "region {} cannot be mmapped (flags {:#x})",
                region.index, region.flags
            ));
        }
        let len = usize::try_from(region.size)
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| format!("region {} has size {:#x}", region.index, region.size))?;
        Self::map_file(dev.file(), region.offset, len)
            .map_err(|e| format!("region {}: {e}", region.index))
    }

    /// Maps `len` bytes of `file` at `offset` shared and writable (a VFIO region, or a sysfs `resourceN`).
    pub fn map_file(file: &std::fs::File, offset: u64, len: usize) -> Result<Self, String> {
        if len == 0 {
            return Err("cannot map 0 bytes".into());
        }
        let off =
            libc::off_t::try_from(offset).map_err(|_| format!("offset {offset:#x} too large"))?;
        // SAFETY: a fresh shared mapping of the fd at `offset`; the kernel picks the address and validates
        // offset/length. Nothing else aliases it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err(&format!("mmap {len:#x} bytes at {offset:#x}")));
        }
        Ok(Self { ptr: p.cast(), len })
    }

    fn check(&self, off: u64, width: usize) -> Result<usize, String> {
        let o = usize::try_from(off).map_err(|_| format!("offset {off:#x}"))?;
        if o % width != 0 || o.checked_add(width).is_none_or(|e| e > self.len) {
            return Err(format!(
                "{width}-byte access at {off:#x} outside/unaligned in a {:#x}-byte BAR",
                self.len
            ));
        }
        Ok(o)
    }

    pub fn read32(&self, off: u64) -> Result<u32, String> {
        let o = self.check(off, 4)?;
        // SAFETY: `o` is 4-aligned and o+4 <= len, inside the live mapping.
        Ok(unsafe { std::ptr::read_volatile(self.ptr.add(o).cast::<u32>()) })
    }

    pub fn write32(&self, off: u64, v: u32) -> Result<(), String> {
        let o = self.check(off, 4)?;
        // SAFETY: `o` is 4-aligned and o+4 <= len, inside the live mapping.
        unsafe { std::ptr::write_volatile(self.ptr.add(o).cast::<u32>(), v) };
        Ok(())
    }

    pub fn read64(&self, off: u64) -> Result<u64, String> {
        let o = self.check(off, 8)?;
        // SAFETY: `o` is 8-aligned and o+8 <= len, inside the live mapping.
        Ok(unsafe { std::ptr::read_volatile(self.ptr.add(o).cast::<u64>()) })
    }

    pub fn write64(&self, off: u64, v: u64) -> Result<(), String> {
        let o = self.check(off, 8)?;
        // SAFETY: `o` is 8-aligned and o+8 <= len, inside the live mapping.
        unsafe { std::ptr::write_volatile(self.ptr.add(o).cast::<u64>(), v) };
        Ok(())
    }
}

impl Drop for MappedRegion {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `map`; no reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::fake_root::FakeRoot;

    #[test]
    fn request_numbers_and_sizes_match_linux_uapi() {
        // _IO(';', 100 + 18/19) from include/uapi/linux/vfio.h.
        assert_eq!(VFIO_DEVICE_BIND_IOMMUFD(), 0x3b76);
        assert_eq!(VFIO_DEVICE_ATTACH_IOMMUFD_PT(), 0x3b77);
        assert_eq!(
            std::mem::offset_of!(vfio_device_bind_iommufd, out_devid) + 4,
            BIND_ARGSZ as usize
        );
        assert_eq!(
            std::mem::offset_of!(vfio_device_attach_iommufd_pt, pt_id) + 4,
            ATTACH_ARGSZ as usize
        );
    }

    #[test]
    fn picks_the_vfio_entry() {
        let v = |a: &[&str]| pick_cdev_name(a.iter().map(|s| s.to_string()));
        assert_eq!(v(&["power", "vfio3"]), Some("vfio3".into()));
        assert_eq!(v(&["vfio", "vfiox", "uevent"]), None);
    }

    #[test]
    fn cdev_path_from_sysfs() {
        let root = FakeRoot::new("cdev_path");
        root.mkdir("sys/bus/pci/devices/0000:00:03.0/vfio-dev/vfio0");
        let p = cdev_path(
            &root.path().join("sys"),
            &root.path().join("dev"),
            "0000:00:03.0",
        )
        .unwrap();
        assert_eq!(p, root.path().join("dev/vfio/devices/vfio0"));
        let e = cdev_path(
            &root.path().join("sys"),
            &root.path().join("dev"),
            "0000:00:04.0",
        )
        .unwrap_err();
        assert!(e.contains("cannot list"), "{e}");
    }

    #[test]
    fn open_reports_missing_node() {
        let e = open(Path::new("/nonexistent/vfio0")).err().unwrap();
        assert!(e.contains("cannot open"), "{e}");
    }
}
