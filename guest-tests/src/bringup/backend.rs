//! What a bring-up driver needs from the machine: the IOMMU's registers, a window of RAM it may use for its
//! tables and queues, and the DMA test device's BAR0 and config space. Two implementations: in-process against
//! the model ([`super::host`]) and `/dev/mem` inside the guest ([`super::devmem`]).

use iommu::smmuv3::Smmuv3Config;

/// The machine as a bring-up driver sees it.
pub trait Backend {
    /// Where this backend runs ("host model", "guest /dev/mem"), for diagnostics.
    fn name(&self) -> String;

    /// 32-bit read of the IOMMU's register at `off`.
    fn mmio_read32(&mut self, off: u64) -> u32;
    /// 64-bit read of the IOMMU's register at `off`.
    fn mmio_read64(&mut self, off: u64) -> u64;
    fn mmio_write32(&mut self, off: u64, v: u32);
    fn mmio_write64(&mut self, off: u64, v: u64);

    /// Reads physical memory inside the driver's RAM window.
    fn mem_read(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), String>;
    /// Writes physical memory inside the driver's RAM window.
    fn mem_write(&mut self, pa: u64, buf: &[u8]) -> Result<(), String>;
    /// First physical address of the RAM window the driver owns.
    fn mem_base(&self) -> u64;
    /// Size of that window in bytes.
    fn mem_size(&self) -> u64;

    /// Test device BAR0 registers (`pci::test_device::regs`).
    fn testdev_read32(&mut self, off: u64) -> u32;
    fn testdev_read64(&mut self, off: u64) -> u64;
    fn testdev_write32(&mut self, off: u64, v: u32);
    fn testdev_write64(&mut self, off: u64, v: u64);
    /// 16-bit write to the test device's config space (PASID control lives at 0x106).
    fn testdev_config_write16(&mut self, off: usize, v: u16) -> Result<(), String>;
    fn testdev_config_read16(&mut self, off: usize) -> Result<u16, String>;

    /// The StreamID the test device's DMA carries.
    fn testdev_sid(&self) -> u32 {
        0x18
    }

    /// The configuration the SMMU was built with, when the backend knows it (host: exactly; guest: parsed
    /// from the option string the VMM published). Tells the suite what to expect (caching, stages, sizes).
    fn expected_config(&self) -> Option<Smmuv3Config>;

    /// The option string the IOMMU was built with, when the backend knows it (host: the model's
    /// `option_string()`; guest: the options the VMM published). Drivers of other models than the SMMUv3
    /// parse it with their own config type (e.g. `TceConfig`).
    fn iommu_options(&self) -> Option<String> {
        None
    }

    /// The IOMMU's permitted IOVA ranges (inclusive) for `source`, when the backend can ask the model (host
    /// backends); `None` inside the guest.
    fn iommu_permitted_ranges(&self, _source: u32) -> Option<Vec<(u64, u64)>> {
        None
    }

    /// The ID registers the VMM published for this SMMU (guest: expect.json), to compare with what the
    /// driver reads. `None` when nothing was published.
    fn published_id_registers(&self) -> Option<Vec<u64>> {
        None
    }

    /// Called between polls of a register or memory word.
    fn relax(&mut self) {
        std::hint::spin_loop();
    }

    /// Little-endian u64 at `pa`.
    fn mem_read_u64(&mut self, pa: u64) -> Result<u64, String> {
        let mut b = [0u8; 8];
        self.mem_read(pa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn mem_write_u64(&mut self, pa: u64, v: u64) -> Result<(), String> {
        self.mem_write(pa, &v.to_le_bytes())
    }

    /// Little-endian u32 at `pa`.
    fn mem_read_u32(&mut self, pa: u64) -> Result<u32, String> {
        let mut b = [0u8; 4];
        self.mem_read(pa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn mem_write_u32(&mut self, pa: u64, v: u32) -> Result<(), String> {
        self.mem_write(pa, &v.to_le_bytes())
    }
}

/// Checks that `[pa, pa + len)` lies inside `[base, base + size)`; returns the offset of `pa`.
pub fn window_offset(base: u64, size: u64, pa: u64, len: usize) -> Result<usize, String> {
    let off = pa
        .checked_sub(base)
        .filter(|o| o.checked_add(len as u64).is_some_and(|end| end <= size))
        .ok_or_else(|| {
            format!("physical access {pa:#x}+{len:#x} is outside the window {base:#x}+{size:#x}")
        })?;
    usize::try_from(off).map_err(|_| format!("offset {off:#x} does not fit usize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds() {
        assert_eq!(window_offset(0x1000, 0x1000, 0x1000, 0x1000), Ok(0));
        assert_eq!(window_offset(0x1000, 0x1000, 0x1ff8, 8), Ok(0xff8));
        assert!(window_offset(0x1000, 0x1000, 0x1ff8, 9).is_err());
        assert!(window_offset(0x1000, 0x1000, 0xfff, 1).is_err());
        assert!(window_offset(0x1000, 0x1000, u64::MAX, 2).is_err());
    }
}
