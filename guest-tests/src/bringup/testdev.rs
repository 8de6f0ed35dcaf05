//! The DMA test device's engine driven through a [`Backend`] (register map: `pci::test_device::regs`).

use pci::test_device::regs::*;

use super::backend::Backend;

/// What one DMA command reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaResult {
    pub status: u32,
    pub fault_iova: u64,
    /// The IOMMU's reason (SMMUv3: the event id).
    pub fault_reason: u32,
    pub fault_access: u32,
    pub bytes: u64,
    pub xlate_out: u64,
    pub xlate_size: u64,
    pub xlate_perms: u32,
}

impl DmaResult {
    pub fn done(&self) -> bool {
        self.status == STATUS_DONE
    }

    /// `Ok` if the command completed, else an error describing the result.
    pub fn expect_done(&self, what: &str) -> Result<(), String> {
        if self.done() {
            Ok(())
        } else {
            Err(format!("{what}: {self}"))
        }
    }
}

impl std::fmt::Display for DmaResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match self.status {
            STATUS_IDLE => "idle",
            STATUS_DONE => "done",
            STATUS_FAULT => "fault",
            STATUS_OUTSIDE_RAM => "outside RAM",
            STATUS_BAD_COMMAND => "bad command",
            STATUS_NO_BUS_MASTER => "no bus master",
            _ => "?",
        };
        write!(
            f,
            "status {} ({status}), fault iova {:#x} reason {:#x} access {}, {} bytes",
            self.status,
            self.fault_iova,
            self.fault_reason,
            if self.fault_access == FAULT_ACCESS_WRITE {
                "write"
            } else {
                "read"
            },
            self.bytes
        )
    }
}

/// PASID register value for an optional PASID.
fn pasid_reg(pasid: Option<u32>) -> u32 {
    pasid.map_or(0, |p| DMA_PASID_VALID | (p & DMA_PASID_MASK))
}

fn run(
    b: &mut dyn Backend,
    cmd: u32,
    src: u64,
    dst: u64,
    len: u64,
    pasid: Option<u32>,
    flags: u32,
) -> DmaResult {
    b.testdev_write64(REG_DMA_SRC, src);
    b.testdev_write64(REG_DMA_DST, dst);
    b.testdev_write64(REG_DMA_LEN, len);
    b.testdev_write32(REG_DMA_PASID, pasid_reg(pasid));
    b.testdev_write32(REG_DMA_FLAGS, flags);
    b.testdev_write32(REG_DMA_CMD, cmd);
    DmaResult {
        status: b.testdev_read32(REG_DMA_STATUS),
        fault_iova: b.testdev_read64(REG_DMA_FAULT_IOVA),
        fault_reason: b.testdev_read32(REG_DMA_FAULT_REASON),
        fault_access: b.testdev_read32(REG_DMA_FAULT_ACCESS),
        bytes: b.testdev_read64(REG_DMA_BYTES),
        xlate_out: b.testdev_read64(REG_DMA_XLATE_OUT),
        xlate_size: b.testdev_read64(REG_DMA_XLATE_SIZE),
        xlate_perms: b.testdev_read32(REG_DMA_XLATE_PERMS),
    }
}

/// Fills `len` bytes at `dst` with `pattern`'s little-endian bytes repeated.
pub fn fill(
    b: &mut dyn Backend,
    dst: u64,
    len: u64,
    pattern: u64,
    pasid: Option<u32>,
) -> DmaResult {
    b.testdev_write64(REG_DMA_PATTERN, pattern);
    run(b, DMA_CMD_FILL, 0, dst, len, pasid, 0)
}

/// Copies `len` bytes from `src` to `dst`.
pub fn copy(b: &mut dyn Backend, src: u64, dst: u64, len: u64, pasid: Option<u32>) -> DmaResult {
    run(b, DMA_CMD_COPY, src, dst, len, pasid, 0)
}

/// One translation request for `iova` (write access with `write`).
pub fn translate(b: &mut dyn Backend, iova: u64, write: bool, pasid: Option<u32>) -> DmaResult {
    let flags = if write { DMA_FLAG_PROBE_WRITE } else { 0 };
    run(b, DMA_CMD_TRANSLATE, 0, iova, 0, pasid, flags)
}

/// Sets or clears PASID Enable in the device's PASID capability.
pub fn enable_pasid(b: &mut dyn Backend, on: bool) -> Result<(), String> {
    let off = PASID_CAP_OFFSET + pci::ats::pasid_reg::CTRL;
    let v = b.testdev_config_read16(off)?;
    let en = pci::ats::pasid_reg::CTRL_ENABLE;
    b.testdev_config_write16(off, if on { v | en } else { v & !en })?;
    let back = b.testdev_config_read16(off)?;
    if (back & en != 0) != on {
        return Err(format!(
            "PASID control at {off:#x} reads {back:#x} after writing Enable={on}"
        ));
    }
    Ok(())
}

/// The bytes a fill with `pattern` leaves at offset `i` of the region.
pub fn pattern_byte(pattern: u64, i: u64) -> u8 {
    pattern.to_le_bytes()[(i % 8) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_bytes_repeat() {
        let p = 0x0807_0605_0403_0201;
        assert_eq!(pattern_byte(p, 0), 1);
        assert_eq!(pattern_byte(p, 7), 8);
        assert_eq!(pattern_byte(p, 9), 2);
        assert_eq!(pasid_reg(Some(5)), DMA_PASID_VALID | 5);
        assert_eq!(pasid_reg(None), 0);
    }
}
