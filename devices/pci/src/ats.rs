//! The PASID and ATS (Address Translation Services) PCI Express extended capabilities.
//!
//! Both are 8 bytes: the extended header, a 16-bit capability register (read-only) and a 16-bit control
//! register (guest-writable bits only). Their state lives in the configuration space; these types record where
//! and answer what the guest enabled. Layout as in the PCIe base specification and Linux's `pci_regs.h`
//! (`PCI_PASID_*`, `PCI_ATS_*`), as `drivers/pci/ats.c` reads them.

use crate::capability::{ext_id, CapabilityError};
use crate::config::ConfigSpace;

/// Length of either capability (`PCI_EXT_CAP_PASID_SIZEOF`, `PCI_EXT_CAP_ATS_SIZEOF`).
pub const EXT_CAP_LEN: usize = 8;

/// Offsets and bits inside the PASID capability.
pub mod pasid_reg {
    /// PASID Capability register (16 bits, read-only).
    pub const CAP: usize = 0x04;
    /// PASID Control register (16 bits).
    pub const CTRL: usize = 0x06;
    /// CAP: Execute Permission Supported.
    pub const CAP_EXEC: u16 = 1 << 1;
    /// CAP: Privileged Mode Supported.
    pub const CAP_PRIV: u16 = 1 << 2;
    /// CAP: Max PASID Width field (bits 12:8).
    pub const CAP_WIDTH_SHIFT: u16 = 8;
    pub const CAP_WIDTH_MASK: u16 = 0x1f << CAP_WIDTH_SHIFT;
    /// CTRL: PASID Enable.
    pub const CTRL_ENABLE: u16 = 1 << 0;
    /// CTRL: Execute Permission Enable.
    pub const CTRL_EXEC: u16 = 1 << 1;
    /// CTRL: Privileged Mode Enable.
    pub const CTRL_PRIV: u16 = 1 << 2;
}

/// Offsets and bits inside the ATS capability.
pub mod ats_reg {
    /// ATS Capability register (16 bits, read-only).
    pub const CAP: usize = 0x04;
    /// ATS Control register (16 bits).
    pub const CTRL: usize = 0x06;
    /// CAP: Invalidate Queue Depth (bits 4:0; 0 means 32).
    pub const CAP_QDEP_MASK: u16 = 0x1f;
    /// CAP: Page Aligned Request.
    pub const CAP_PAGE_ALIGNED: u16 = 1 << 5;
    /// CTRL: Smallest Translation Unit (bits 4:0), as log2(bytes) - 12.
    pub const CTRL_STU_MASK: u16 = 0x1f;
    /// CTRL: ATS Enable.
    pub const CTRL_ENABLE: u16 = 1 << 15;
}

/// The PASID extended capability (version 1).
#[derive(Clone, Copy, Debug)]
pub struct PasidCapability {
    offset: usize,
    supported: u16,
}

impl PasidCapability {
    /// Appends a PASID capability with `max_width` bits of PASID (1..=20) and the `supported` feature bits
    /// (a combination of [`pasid_reg::CAP_EXEC`] and [`pasid_reg::CAP_PRIV`]; other bits are dropped). The
    /// control register's Enable bit is writable, and each feature's enable bit only if that feature is
    /// supported (otherwise it is reserved and reads 0). Everything resets to 0 (disabled).
    pub fn add(
        config: &mut ConfigSpace,
        max_width: u8,
        supported: u16,
    ) -> Result<Self, CapabilityError> {
        let offset = config.add_ext_capability(ext_id::PASID, 1, EXT_CAP_LEN)?;
        let supported = supported & (pasid_reg::CAP_EXEC | pasid_reg::CAP_PRIV);
        let width = (u16::from(max_width.min(20)) << pasid_reg::CAP_WIDTH_SHIFT)
            & pasid_reg::CAP_WIDTH_MASK;
        config.set_u16(offset + pasid_reg::CAP, supported | width);
        config.set_u16(offset + pasid_reg::CTRL, 0);
        // CAP_EXEC/CAP_PRIV sit at the same bit positions as CTRL_EXEC/CTRL_PRIV.
        let writable = pasid_reg::CTRL_ENABLE | supported;
        config.set_masks(offset + pasid_reg::CTRL, 2, u32::from(writable), 0);
        Ok(Self { offset, supported })
    }

    /// Offset of the capability.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The control register.
    pub fn control(&self, config: &ConfigSpace) -> u16 {
        config.read_u16(self.offset + pasid_reg::CTRL)
    }

    /// PASID Enable: the function may send requests with a PASID prefix.
    pub fn enabled(&self, config: &ConfigSpace) -> bool {
        self.control(config) & pasid_reg::CTRL_ENABLE != 0
    }

    /// Privileged Mode Enable (only settable when supported).
    pub fn privileged_enabled(&self, config: &ConfigSpace) -> bool {
        self.control(config) & pasid_reg::CTRL_PRIV & self.supported != 0
    }
}

/// The ATS extended capability (version 1).
#[derive(Clone, Copy, Debug)]
pub struct AtsCapability {
    offset: usize,
}

impl AtsCapability {
    /// Appends an ATS capability with invalidate queue depth `queue_depth` (1..=32; 32 is encoded as 0) and
    /// no Page Aligned Request (the function may ask for any address). Control: Enable and STU writable.
    pub fn add(config: &mut ConfigSpace, queue_depth: u8) -> Result<Self, CapabilityError> {
        let offset = config.add_ext_capability(ext_id::ATS, 1, EXT_CAP_LEN)?;
        let qdep = u16::from(queue_depth.clamp(1, 32)) & ats_reg::CAP_QDEP_MASK;
        config.set_u16(offset + ats_reg::CAP, qdep);
        config.set_u16(offset + ats_reg::CTRL, 0);
        let writable = ats_reg::CTRL_ENABLE | ats_reg::CTRL_STU_MASK;
        config.set_masks(offset + ats_reg::CTRL, 2, u32::from(writable), 0);
        Ok(Self { offset })
    }

    /// Offset of the capability.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// ATS Enable.
    pub fn enabled(&self, config: &ConfigSpace) -> bool {
        config.read_u16(self.offset + ats_reg::CTRL) & ats_reg::CTRL_ENABLE != 0
    }

    /// The Smallest Translation Unit the guest programmed, in bytes (4 KiB << STU).
    pub fn stu_bytes(&self, config: &ConfigSpace) -> u64 {
        let stu = config.read_u16(self.offset + ats_reg::CTRL) & ats_reg::CTRL_STU_MASK;
        4096u64 << stu
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::CapabilityInfo;

    fn cfg() -> ConfigSpace {
        crate::config::test_config()
    }

    #[test]
    fn pasid_capability_fields_and_masks() {
        let mut c = cfg();
        let p = PasidCapability::add(&mut c, 20, pasid_reg::CAP_PRIV | 0x8001).unwrap();
        assert_eq!(p.offset(), 0x100);
        assert_eq!(c.read_u32(0x100) & 0xf_ffff, 0x1_001b, "id 0x1b, version 1");
        assert_eq!(c.read_u16(0x104), 0x1404, "width 20, privileged, no exec");
        c.write(0x104, &[0xff, 0xff]);
        assert_eq!(
            c.read_u16(0x104),
            0x1404,
            "capability register is read-only"
        );
        assert!(!p.enabled(&c));
        c.write(0x106, &[0xff, 0xff]);
        assert_eq!(
            c.read_u16(0x106),
            0x0005,
            "enable + privileged; exec reserved"
        );
        assert!(p.enabled(&c) && p.privileged_enabled(&c));
        c.write(0x106, &[0x02, 0x00]);
        assert!(!p.enabled(&c) && !p.privileged_enabled(&c));
        // Widths above 20 are clamped.
        let mut c = cfg();
        PasidCapability::add(&mut c, 31, pasid_reg::CAP_EXEC).unwrap();
        assert_eq!(c.read_u16(0x104), 0x1402);
        c.write(0x106, &[0xff, 0xff]);
        assert_eq!(c.read_u16(0x106), 0x0003);
    }

    #[test]
    fn ats_capability_fields_and_masks() {
        let mut c = cfg();
        let a = AtsCapability::add(&mut c, 32).unwrap();
        assert_eq!(
            c.ext_capabilities(),
            vec![CapabilityInfo {
                id: ext_id::ATS,
                version: 1,
                offset: 0x100
            }]
        );
        assert_eq!(
            c.read_u16(0x104),
            0,
            "queue depth 32 encodes as 0, not page aligned"
        );
        c.write(0x104, &[0xff, 0xff]);
        assert_eq!(c.read_u16(0x104), 0);
        assert!(!a.enabled(&c));
        assert_eq!(a.stu_bytes(&c), 4096);
        // What Linux's pci_enable_ats(dev, 12) writes: Enable | STU(0).
        c.write(0x106, &0x8000u16.to_le_bytes());
        assert!(a.enabled(&c));
        c.write(0x106, &[0xff, 0xff]);
        assert_eq!(c.read_u16(0x106), 0x801f, "reserved bits 14:5 read 0");
        assert_eq!(a.stu_bytes(&c), 4096 << 31);
        let mut c = cfg();
        AtsCapability::add(&mut c, 4).unwrap();
        assert_eq!(c.read_u16(0x104), 4);
    }
}
