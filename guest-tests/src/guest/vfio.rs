//! Just enough VFIO to drive the test device from user space: bind it to vfio-pci, open the group and a
//! container (no-IOMMU mode, or the type1 IOMMU backend), get the device fd, access config space and BARs
//! through the regions, and route MSI / MSI-X vectors to eventfds.
//!
//! Structures and constants come from `vfio-bindings`; the ioctl request numbers (C macros, which bindgen
//! does not translate) are declared with vmm-sys-util's `ioctl_io_nr!`.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vfio_bindings::bindings::vfio::{
    vfio_group_status, vfio_irq_info, vfio_irq_set, vfio_region_info, VFIO_TYPE1v2_IOMMU,
    VFIO_API_VERSION, VFIO_BASE, VFIO_GROUP_FLAGS_VIABLE, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_NOIOMMU_IOMMU,
    VFIO_PCI_CONFIG_REGION_INDEX, VFIO_TYPE,
};
use vmm_sys_util::ioctl::{
    ioctl, ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_ref, ioctl_with_val,
};
use vmm_sys_util::ioctl_io_nr;

ioctl_io_nr!(VFIO_GET_API_VERSION, VFIO_TYPE as u32, VFIO_BASE);
ioctl_io_nr!(VFIO_CHECK_EXTENSION, VFIO_TYPE as u32, VFIO_BASE + 1);
ioctl_io_nr!(VFIO_SET_IOMMU, VFIO_TYPE as u32, VFIO_BASE + 2);
ioctl_io_nr!(VFIO_GROUP_GET_STATUS, VFIO_TYPE as u32, VFIO_BASE + 3);
ioctl_io_nr!(VFIO_GROUP_SET_CONTAINER, VFIO_TYPE as u32, VFIO_BASE + 4);
ioctl_io_nr!(VFIO_GROUP_GET_DEVICE_FD, VFIO_TYPE as u32, VFIO_BASE + 6);
ioctl_io_nr!(VFIO_DEVICE_GET_REGION_INFO, VFIO_TYPE as u32, VFIO_BASE + 8);
ioctl_io_nr!(VFIO_DEVICE_GET_IRQ_INFO, VFIO_TYPE as u32, VFIO_BASE + 9);
ioctl_io_nr!(VFIO_DEVICE_SET_IRQS, VFIO_TYPE as u32, VFIO_BASE + 10);

/// PCI command register offset and bits.
pub const PCI_COMMAND: u64 = 0x04;
pub const PCI_COMMAND_MEMORY: u16 = 0x2;
pub const PCI_COMMAND_MASTER: u16 = 0x4;

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Binds `bdf` to vfio-pci through driver_override + drivers_probe. `sys` is the sysfs root (`/sys`).
pub fn bind_vfio_pci(sys: &Path, bdf: &str) -> Result<(), String> {
    let dev = sys.join("bus/pci/devices").join(bdf);
    let write = |p: PathBuf, v: &str| -> Result<(), String> {
        std::fs::write(&p, v).map_err(|e| format!("write {v:?} to {}: {e}", p.display()))
    };
    if current_driver(&dev).as_deref() == Some("vfio-pci") {
        return Ok(());
    }
    write(dev.join("driver_override"), "vfio-pci")?;
    if dev.join("driver").exists() {
        write(dev.join("driver/unbind"), bdf)?;
    }
    write(sys.join("bus/pci/drivers_probe"), bdf)?;
    match current_driver(&dev) {
        Some(d) if d == "vfio-pci" => Ok(()),
        Some(d) => Err(format!("{bdf} is bound to {d}, not vfio-pci")),
        None => Err(format!(
            "{bdf} has no driver after drivers_probe (is vfio-pci built in, and is there an IOMMU or \
             vfio no-IOMMU mode?)"
        )),
    }
}

/// Name of the driver bound to the device directory, if any.
pub fn current_driver(dev: &Path) -> Option<String> {
    let link = std::fs::read_link(dev.join("driver")).ok()?;
    link.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// The device's IOMMU group number (the `iommu_group` link's target).
fn iommu_group(sys: &Path, bdf: &str) -> Result<String, String> {
    let link = sys.join("bus/pci/devices").join(bdf).join("iommu_group");
    let target =
        std::fs::read_link(&link).map_err(|e| format!("cannot read {}: {e}", link.display()))?;
    target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("bad iommu_group link {}", target.display()))
}

/// The no-IOMMU group device for `bdf`: `/dev/vfio/noiommu-N` where N is the device's iommu_group.
pub fn noiommu_group_path(sys: &Path, dev_root: &Path, bdf: &str) -> Result<PathBuf, String> {
    Ok(dev_root
        .join("vfio")
        .join(format!("noiommu-{}", iommu_group(sys, bdf)?)))
}

/// The group device of `bdf` behind a real IOMMU: `/dev/vfio/N`.
pub fn group_path(sys: &Path, dev_root: &Path, bdf: &str) -> Result<PathBuf, String> {
    Ok(dev_root.join("vfio").join(iommu_group(sys, bdf)?))
}

/// Waits until `path` exists (devtmpfs creates nodes asynchronously).
pub fn wait_for(path: &Path, timeout: Duration) -> Result<(), String> {
    let t0 = Instant::now();
    while !path.exists() {
        if t0.elapsed() > timeout {
            return Err(format!(
                "{} did not appear within {timeout:?}",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// An opened VFIO device, with whatever must stay open for its lifetime (group and container in the legacy
/// flow; nothing for a cdev, see `vfio_cdev`).
pub struct VfioDevice {
    /// The container and the group (legacy flow), kept open for the device's lifetime; empty for a cdev.
    keep: Vec<File>,
    device: File,
}

/// One region as VFIO reports it.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub index: u32,
    pub size: u64,
    pub offset: u64,
    pub flags: u32,
}

/// `vfio_irq_set` with one eventfd as its data.
#[repr(C)]
struct IrqSetOne {
    hdr: vfio_irq_set,
    fd: i32,
}

impl VfioDevice {
    /// Opens container (`dev_root/vfio/vfio`) and group, selects the no-IOMMU backend, gets the device fd.
    pub fn open(dev_root: &Path, group_path: &Path, bdf: &str) -> Result<Self, String> {
        Self::open_backend(
            dev_root,
            group_path,
            bdf,
            VFIO_NOIOMMU_IOMMU,
            "VFIO container lacks VFIO_NOIOMMU_IOMMU (vfio.enable_unsafe_noiommu_mode=1?)",
        )
    }

    /// Opens container and group with the type1 (v2) IOMMU backend, the legacy VFIO API in front of the real
    /// IOMMU (what kernels without iommufd offer), and gets the device fd. [`Self::container`] maps DMA.
    pub fn open_type1(dev_root: &Path, group_path: &Path, bdf: &str) -> Result<Self, String> {
        Self::open_backend(
            dev_root,
            group_path,
            bdf,
            VFIO_TYPE1v2_IOMMU,
            "VFIO container lacks VFIO_TYPE1v2_IOMMU (vfio_iommu_type1 not loaded?)",
        )
    }

    /// The container of a device opened through a group.
    pub fn container(&self) -> Option<&File> {
        self.keep.first()
    }

    fn open_backend(
        dev_root: &Path,
        group_path: &Path,
        bdf: &str,
        backend: u32,
        missing: &str,
    ) -> Result<Self, String> {
        let rw = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .map_err(|e| format!("cannot open {}: {e}", p.display()))
        };
        let container = rw(&dev_root.join("vfio/vfio"))?;
        // SAFETY: VFIO_GET_API_VERSION takes no argument; `container` is a valid open fd.
        let v = unsafe { ioctl(&container, VFIO_GET_API_VERSION()) };
        if v != VFIO_API_VERSION as i32 {
            return Err(format!("VFIO API version {v}, expected {VFIO_API_VERSION}"));
        }
        // SAFETY: VFIO_CHECK_EXTENSION takes an integer argument by value.
        let ext = unsafe { ioctl_with_val(&container, VFIO_CHECK_EXTENSION(), backend.into()) };
        if ext <= 0 {
            return Err(missing.to_string());
        }
        let group = rw(group_path)?;
        let mut status = vfio_group_status {
            argsz: std::mem::size_of::<vfio_group_status>() as u32,
            flags: 0,
        };
        // SAFETY: `status` is a properly sized vfio_group_status the kernel fills in.
        if unsafe { ioctl_with_mut_ref(&group, VFIO_GROUP_GET_STATUS(), &mut status) } < 0 {
            return Err(os_err("VFIO_GROUP_GET_STATUS"));
        }
        if status.flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(format!("VFIO group {} is not viable", group_path.display()));
        }
        let cfd: i32 = container.as_raw_fd();
        // SAFETY: the argument is a pointer to an int holding the container fd, valid for the call.
        if unsafe { ioctl_with_ref(&group, VFIO_GROUP_SET_CONTAINER(), &cfd) } < 0 {
            return Err(os_err("VFIO_GROUP_SET_CONTAINER"));
        }
        // SAFETY: VFIO_SET_IOMMU takes the IOMMU type by value.
        if unsafe { ioctl_with_val(&container, VFIO_SET_IOMMU(), backend.into()) } < 0 {
            return Err(os_err(&format!("VFIO_SET_IOMMU({backend})")));
        }
        let name = CString::new(bdf).map_err(|_| format!("bad BDF {bdf:?}"))?;
        // SAFETY: the argument is a NUL-terminated device name valid for the call.
        let fd = unsafe { ioctl_with_ptr(&group, VFIO_GROUP_GET_DEVICE_FD(), name.as_ptr()) };
        if fd < 0 {
            return Err(os_err("VFIO_GROUP_GET_DEVICE_FD"));
        }
        // SAFETY: the kernel just returned `fd` as a new file descriptor that nothing else owns.
        let device = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(Self::from_parts(vec![container, group], device))
    }

    /// A device from its fd and the files that must outlive it.
    pub fn from_parts(keep: Vec<File>, device: File) -> Self {
        Self { keep, device }
    }

    /// The device fd.
    pub fn file(&self) -> &File {
        &self.device
    }

    /// VFIO_DEVICE_GET_REGION_INFO for `index`.
    pub fn region(&self, index: u32) -> Result<Region, String> {
        let mut info = vfio_region_info {
            argsz: std::mem::size_of::<vfio_region_info>() as u32,
            index,
            ..Default::default()
        };
        // SAFETY: `info` is a properly sized vfio_region_info the kernel fills in.
        if unsafe { ioctl_with_mut_ref(&self.device, VFIO_DEVICE_GET_REGION_INFO(), &mut info) } < 0
        {
            return Err(os_err(&format!("VFIO_DEVICE_GET_REGION_INFO({index})")));
        }
        Ok(Region {
            index,
            size: info.size,
            offset: info.offset,
            flags: info.flags,
        })
    }

    /// Number of vectors VFIO offers for IRQ `index`.
    pub fn irq_count(&self, index: u32) -> Result<u32, String> {
        let mut info = vfio_irq_info {
            argsz: std::mem::size_of::<vfio_irq_info>() as u32,
            index,
            ..Default::default()
        };
        // SAFETY: `info` is a properly sized vfio_irq_info the kernel fills in.
        if unsafe { ioctl_with_mut_ref(&self.device, VFIO_DEVICE_GET_IRQ_INFO(), &mut info) } < 0 {
            return Err(os_err(&format!("VFIO_DEVICE_GET_IRQ_INFO({index})")));
        }
        Ok(info.count)
    }

    fn check_range(region: &Region, offset: u64, len: u64) -> Result<(), String> {
        if offset.checked_add(len).is_none_or(|end| end > region.size) {
            return Err(format!(
                "access at {offset:#x}+{len} outside region {} (size {:#x})",
                region.index, region.size
            ));
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset` in `region`.
    pub fn read(&self, region: &Region, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        Self::check_range(region, offset, buf.len() as u64)?;
        self.device
            .read_exact_at(buf, region.offset + offset)
            .map_err(|e| format!("read region {} at {offset:#x}: {e}", region.index))
    }

    /// Writes `buf` at `offset` in `region`.
    pub fn write(&self, region: &Region, offset: u64, buf: &[u8]) -> Result<(), String> {
        Self::check_range(region, offset, buf.len() as u64)?;
        self.device
            .write_all_at(buf, region.offset + offset)
            .map_err(|e| format!("write region {} at {offset:#x}: {e}", region.index))
    }

    pub fn read32(&self, region: &Region, offset: u64) -> Result<u32, String> {
        let mut b = [0u8; 4];
        self.read(region, offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn write32(&self, region: &Region, offset: u64, v: u32) -> Result<(), String> {
        self.write(region, offset, &v.to_le_bytes())
    }

    /// Sets Memory Space and Bus Master in the command register through the config region.
    pub fn enable_mem_and_bus_master(&self) -> Result<u16, String> {
        let cfg = self.region(VFIO_PCI_CONFIG_REGION_INDEX)?;
        let mut b = [0u8; 2];
        self.read(&cfg, PCI_COMMAND, &mut b)?;
        let cmd = u16::from_le_bytes(b) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
        self.write(&cfg, PCI_COMMAND, &cmd.to_le_bytes())?;
        self.read(&cfg, PCI_COMMAND, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Routes vector 0 of IRQ `index` (MSI or MSI-X) to `eventfd`.
    pub fn set_irq_eventfd(&self, index: u32, eventfd: &OwnedFd) -> Result<(), String> {
        let set = IrqSetOne {
            hdr: vfio_irq_set {
                argsz: std::mem::size_of::<IrqSetOne>() as u32,
                flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                index,
                start: 0,
                count: 1,
                ..Default::default()
            },
            fd: eventfd.as_raw_fd(),
        };
        // SAFETY: `set` is a vfio_irq_set header followed by exactly `count` (1) eventfd, argsz covers both.
        if unsafe { ioctl_with_ref(&self.device, VFIO_DEVICE_SET_IRQS(), &set) } < 0 {
            return Err(os_err(&format!(
                "VFIO_DEVICE_SET_IRQS(index {index}, eventfd)"
            )));
        }
        Ok(())
    }

    /// Tears down all vectors of IRQ `index`.
    pub fn disable_irqs(&self, index: u32) -> Result<(), String> {
        let set = vfio_irq_set {
            argsz: std::mem::size_of::<vfio_irq_set>() as u32,
            flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            start: 0,
            count: 0,
            ..Default::default()
        };
        // SAFETY: a header-only vfio_irq_set (count 0, DATA_NONE) with argsz = its size.
        if unsafe { ioctl_with_ref(&self.device, VFIO_DEVICE_SET_IRQS(), &set) } < 0 {
            return Err(os_err(&format!(
                "VFIO_DEVICE_SET_IRQS(index {index}, disable)"
            )));
        }
        Ok(())
    }
}

/// A non-blocking eventfd.
pub fn eventfd() -> Result<OwnedFd, String> {
    // SAFETY: eventfd takes no pointers and returns a new fd or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(os_err("eventfd"));
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits up to `timeout` for the eventfd to become readable and returns its counter (0 on timeout).
pub fn wait_eventfd(fd: &OwnedFd, timeout: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `pfd` is one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll eventfd: {e}"));
        }
        if rc == 0 {
            return Ok(0);
        }
        let mut v: u64 = 0;
        // SAFETY: reads exactly 8 bytes into `v`, which is 8 bytes long.
        let n = unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        if n == 8 {
            return Ok(v);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(format!("read eventfd: {e}"));
        }
        if left.is_zero() {
            return Ok(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::fake_root::FakeRoot;

    #[test]
    fn ioctl_numbers_match_linux_uapi() {
        // _IO(';', 100 + n) from include/uapi/linux/vfio.h.
        assert_eq!(VFIO_GET_API_VERSION(), 0x3b64);
        assert_eq!(VFIO_SET_IOMMU(), 0x3b66);
        assert_eq!(VFIO_GROUP_GET_DEVICE_FD(), 0x3b6a);
        assert_eq!(VFIO_DEVICE_SET_IRQS(), 0x3b6e);
        assert_eq!(std::mem::size_of::<IrqSetOne>(), 24);
    }

    #[test]
    fn group_path_from_iommu_group_link() {
        let root = FakeRoot::new("vfio_group");
        root.mkdir("sys/kernel/iommu_groups/3");
        root.mkdir("sys/bus/pci/devices/0000:00:01.0");
        std::os::unix::fs::symlink(
            "../../../kernel/iommu_groups/3",
            root.path()
                .join("sys/bus/pci/devices/0000:00:01.0/iommu_group"),
        )
        .unwrap();
        let p = noiommu_group_path(&root.path().join("sys"), Path::new("/dev"), "0000:00:01.0")
            .unwrap();
        assert_eq!(p, PathBuf::from("/dev/vfio/noiommu-3"));
        assert!(
            noiommu_group_path(&root.path().join("sys"), Path::new("/dev"), "0000:00:02.0")
                .is_err()
        );
    }

    #[test]
    fn eventfd_wait_returns_count_or_zero_on_timeout() {
        let fd = eventfd().unwrap();
        assert_eq!(wait_eventfd(&fd, Duration::from_millis(10)).unwrap(), 0);
        let one: u64 = 2;
        // SAFETY: writes 8 bytes from a u64 to our own eventfd.
        let n = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        assert_eq!(n, 8);
        assert_eq!(wait_eventfd(&fd, Duration::from_millis(100)).unwrap(), 2);
    }

    #[test]
    fn region_bounds_are_checked() {
        let r = Region {
            index: 0,
            size: 0x1000,
            offset: 0,
            flags: 0,
        };
        assert!(VfioDevice::check_range(&r, 0xffc, 4).is_ok());
        assert!(VfioDevice::check_range(&r, 0xffd, 4).is_err());
        assert!(VfioDevice::check_range(&r, u64::MAX, 4).is_err());
    }
}
