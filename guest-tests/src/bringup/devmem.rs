//! Guest backend: an IOMMU's register window (the SMMUv3's by default, any base/size with
//! [`DevMem::open_iommu`]), the reserved RAM region and the test device's BAR0 mapped through `/dev/mem`
//! (O_SYNC: uncached), the test device's config space through its sysfs `config` file.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;

use iommu::smmuv3::Smmuv3Config;

use super::backend::{window_offset, Backend};

/// Where the VMM puts the SMMUv3 and how big its window is.
pub const SMMU_BASE: u64 = 0xfea0_0000;
pub const SMMU_SIZE: u64 = 0x2_0000;
/// Where the VMM puts the POWER TCE unit's hardware view (`--iommu tce`) and how big it is.
pub const TCE_BASE: u64 = 0xfeb0_0000;
pub const TCE_SIZE: u64 = 0x1000;
/// The RAM the kernel command line reserves for the driver (`memmap=16M$0x10000000`).
pub const RAM_BASE: u64 = 0x1000_0000;
pub const RAM_SIZE: u64 = 16 << 20;
/// The test device.
pub const TESTDEV_BDF: &str = "0000:00:03.0";

/// One shared mapping of physical memory.
struct Mapping {
    ptr: *mut u8,
    len: usize,
    pa: u64,
}

impl Mapping {
    fn new(mem: &File, pa: u64, len: u64) -> Result<Mapping, String> {
        let len_us = usize::try_from(len).map_err(|_| format!("length {len:#x} too large"))?;
        let off = libc::off_t::try_from(pa).map_err(|_| format!("address {pa:#x} too large"))?;
        // SAFETY: mmap of a file descriptor we own with a null hint: the kernel picks an unused range; the
        // result is checked before use and unmapped in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len_us,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                mem.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "mmap /dev/mem {pa:#x}+{len:#x}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len: len_us,
            pa,
        })
    }

    /// Pointer to `size` bytes at offset `off`, if they lie inside and are naturally aligned.
    fn at(&self, off: u64, size: usize) -> Option<*mut u8> {
        let o = usize::try_from(off).ok()?;
        if o.checked_add(size)? > self.len || !o.is_multiple_of(size) {
            return None;
        }
        // SAFETY: `o + size <= len`, so the result stays inside the mapping.
        Some(unsafe { self.ptr.add(o) })
    }

    fn read32(&self, off: u64) -> u32 {
        match self.at(off, 4) {
            // SAFETY: in bounds and 4-byte aligned (checked by `at`); the mapping lives as long as self.
            Some(p) => unsafe { std::ptr::read_volatile(p.cast::<u32>()) },
            None => u32::MAX,
        }
    }

    fn read64(&self, off: u64) -> u64 {
        match self.at(off, 8) {
            // SAFETY: in bounds and 8-byte aligned (checked by `at`).
            Some(p) => unsafe { std::ptr::read_volatile(p.cast::<u64>()) },
            None => u64::MAX,
        }
    }

    fn write32(&self, off: u64, v: u32) {
        if let Some(p) = self.at(off, 4) {
            // SAFETY: in bounds and 4-byte aligned (checked by `at`).
            unsafe { std::ptr::write_volatile(p.cast::<u32>(), v) }
        }
    }

    fn write64(&self, off: u64, v: u64) {
        if let Some(p) = self.at(off, 8) {
            // SAFETY: in bounds and 8-byte aligned (checked by `at`).
            unsafe { std::ptr::write_volatile(p.cast::<u64>(), v) }
        }
    }

    fn read8(&self, off: u64) -> u8 {
        match self.at(off, 1) {
            // SAFETY: in bounds (checked by `at`).
            Some(p) => unsafe { std::ptr::read_volatile(p) },
            None => u8::MAX,
        }
    }

    fn write8(&self, off: u64, v: u8) {
        if let Some(p) = self.at(off, 1) {
            // SAFETY: in bounds (checked by `at`).
            unsafe { std::ptr::write_volatile(p, v) }
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing uses the mapping after drop.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// The guest backend.
pub struct DevMem {
    /// The IOMMU's register window.
    smmu: Mapping,
    ram: Mapping,
    bar0: Mapping,
    config: File,
    expected: Option<Smmuv3Config>,
    published: Option<Vec<u64>>,
    options: Option<String>,
}

/// The first line of a sysfs `resource` file: BAR0's start and end.
pub fn parse_bar0(resource: &str) -> Result<(u64, u64), String> {
    let line = resource.lines().next().ok_or("empty resource file")?;
    let mut it = line.split_whitespace().map(|w| {
        u64::from_str_radix(w.trim_start_matches("0x"), 16)
            .map_err(|e| format!("resource {w:?}: {e}"))
    });
    let (Some(start), Some(end)) = (it.next(), it.next()) else {
        return Err(format!("resource line {line:?} lacks start and end"));
    };
    let (start, end) = (start?, end?);
    if start == 0 || end <= start {
        return Err(format!("BAR0 is not assigned: {line:?}"));
    }
    Ok((start, end))
}

impl DevMem {
    /// Opens everything below `root` (`/` in the guest) with the SMMUv3's register window. `expected` /
    /// `published` come from expect.json.
    pub fn open(
        root: &std::path::Path,
        expected: Option<Smmuv3Config>,
        published: Option<Vec<u64>>,
    ) -> Result<DevMem, String> {
        let mut d = Self::open_iommu(root, SMMU_BASE, SMMU_SIZE)?;
        d.expected = expected;
        d.published = published;
        Ok(d)
    }

    /// The option string the VMM published for the IOMMU (expect.json), returned by
    /// [`Backend::iommu_options`].
    pub fn with_options(mut self, options: String) -> Self {
        self.options = Some(options);
        self
    }

    /// Opens everything below `root` (`/` in the guest) with the IOMMU register window `[base, base + size)`.
    pub fn open_iommu(root: &std::path::Path, base: u64, size: u64) -> Result<DevMem, String> {
        let dev_dir: PathBuf = root.join("sys/bus/pci/devices").join(TESTDEV_BDF);
        let resource = std::fs::read_to_string(dev_dir.join("resource"))
            .map_err(|e| format!("{}: {e}", dev_dir.join("resource").display()))?;
        let (bar0, bar0_end) = parse_bar0(&resource)?;
        let config = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dev_dir.join("config"))
            .map_err(|e| format!("{}: {e}", dev_dir.join("config").display()))?;
        // COMMAND: memory decoding and bus mastering (no driver is bound to the test device).
        let mut cmd = [0u8; 2];
        config
            .read_exact_at(&mut cmd, 4)
            .map_err(|e| format!("read COMMAND: {e}"))?;
        let v = u16::from_le_bytes(cmd) | 0x6;
        config
            .write_all_at(&v.to_le_bytes(), 4)
            .map_err(|e| format!("write COMMAND: {e}"))?;
        let mem = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_SYNC)
            .open(root.join("dev/mem"))
            .map_err(|e| format!("/dev/mem: {e}"))?;
        Ok(DevMem {
            smmu: Mapping::new(&mem, base, size)?,
            ram: Mapping::new(&mem, RAM_BASE, RAM_SIZE)?,
            bar0: Mapping::new(&mem, bar0, (bar0_end - bar0 + 1).max(0x1000))?,
            config,
            expected: None,
            published: None,
            options: None,
        })
    }
}

impl Backend for DevMem {
    fn name(&self) -> String {
        format!(
            "guest /dev/mem (IOMMU {:#x}, RAM {:#x}, BAR0 {:#x})",
            self.smmu.pa, self.ram.pa, self.bar0.pa
        )
    }

    fn mmio_read32(&mut self, off: u64) -> u32 {
        self.smmu.read32(off)
    }

    fn mmio_read64(&mut self, off: u64) -> u64 {
        self.smmu.read64(off)
    }

    fn mmio_write32(&mut self, off: u64, v: u32) {
        self.smmu.write32(off, v);
    }

    fn mmio_write64(&mut self, off: u64, v: u64) {
        self.smmu.write64(off, v);
    }

    fn mem_read(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), String> {
        let start = window_offset(RAM_BASE, RAM_SIZE, pa, buf.len())? as u64;
        let mut i = 0usize;
        while i < buf.len() {
            let o = start + i as u64;
            if o.is_multiple_of(8) && buf.len() - i >= 8 {
                buf[i..i + 8].copy_from_slice(&self.ram.read64(o).to_le_bytes());
                i += 8;
            } else {
                buf[i] = self.ram.read8(o);
                i += 1;
            }
        }
        Ok(())
    }

    fn mem_write(&mut self, pa: u64, buf: &[u8]) -> Result<(), String> {
        let start = window_offset(RAM_BASE, RAM_SIZE, pa, buf.len())? as u64;
        let mut i = 0usize;
        while i < buf.len() {
            let o = start + i as u64;
            if o.is_multiple_of(8) && buf.len() - i >= 8 {
                let mut w = [0u8; 8];
                w.copy_from_slice(&buf[i..i + 8]);
                self.ram.write64(o, u64::from_le_bytes(w));
                i += 8;
            } else {
                self.ram.write8(o, buf[i]);
                i += 1;
            }
        }
        Ok(())
    }

    fn mem_base(&self) -> u64 {
        RAM_BASE
    }

    fn mem_size(&self) -> u64 {
        RAM_SIZE
    }

    fn testdev_read32(&mut self, off: u64) -> u32 {
        self.bar0.read32(off)
    }

    fn testdev_read64(&mut self, off: u64) -> u64 {
        self.bar0.read64(off)
    }

    fn testdev_write32(&mut self, off: u64, v: u32) {
        self.bar0.write32(off, v);
    }

    fn testdev_write64(&mut self, off: u64, v: u64) {
        self.bar0.write64(off, v);
    }

    fn testdev_config_write16(&mut self, off: usize, v: u16) -> Result<(), String> {
        self.config
            .write_all_at(&v.to_le_bytes(), off as u64)
            .map_err(|e| format!("config write at {off:#x}: {e}"))
    }

    fn testdev_config_read16(&mut self, off: usize) -> Result<u16, String> {
        let mut b = [0u8; 2];
        self.config
            .read_exact_at(&mut b, off as u64)
            .map_err(|e| format!("config read at {off:#x}: {e}"))?;
        Ok(u16::from_le_bytes(b))
    }

    fn expected_config(&self) -> Option<Smmuv3Config> {
        self.expected.clone()
    }

    fn published_id_registers(&self) -> Option<Vec<u64>> {
        self.published.clone()
    }

    fn iommu_options(&self) -> Option<String> {
        self.options.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bar0_from_sysfs_resource() {
        let r = "0x00000000c0001000 0x00000000c0001fff 0x0000000000040200\n0x0 0x0 0x0\n";
        assert_eq!(parse_bar0(r), Ok((0xc000_1000, 0xc000_1fff)));
        assert!(parse_bar0("0x0000000000000000 0x0000000000000000 0x0\n").is_err());
        assert!(parse_bar0("").is_err());
        assert!(parse_bar0("zz 0x1").is_err());
    }

    #[test]
    fn open_reports_a_missing_device() {
        let err = DevMem::open(std::path::Path::new("/nonexistent-guest-root"), None, None)
            .err()
            .unwrap();
        assert!(err.contains("0000:00:03.0/resource"), "{err}");
        let err = DevMem::open_iommu(
            std::path::Path::new("/nonexistent-guest-root"),
            TCE_BASE,
            TCE_SIZE,
        )
        .err()
        .unwrap();
        assert!(err.contains("0000:00:03.0/resource"), "{err}");
    }
}
