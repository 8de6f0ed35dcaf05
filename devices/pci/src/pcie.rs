//! The PCI Express capability (version 2) and the power management capability, and the Function Level Reset
//! trigger (PCIe Base 6.0 §6.6.2, §7.5.3.3-4).

use crate::capability::{id, CapabilityError};
use crate::config::ConfigSpace;

/// Length of a version 2 PCI Express capability.
pub const PCIE_CAP_LEN: usize = 0x3c;
/// Length of the power management capability.
pub const PM_CAP_LEN: usize = 8;

/// Device/Port type field of the PCI Express Capabilities register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PcieDeviceType {
    Endpoint = 0x0,
    LegacyEndpoint = 0x1,
    RootPort = 0x4,
    /// A Root Complex Integrated Endpoint: sits on the root bus with no link and no root port above it.
    RootComplexIntegratedEndpoint = 0x9,
}

/// Offsets inside the PCI Express capability.
pub mod pcie_reg {
    pub const CAPS: usize = 0x02;
    pub const DEVCAP: usize = 0x04;
    pub const DEVCTL: usize = 0x08;
    pub const DEVSTA: usize = 0x0a;
    pub const DEVCAP2: usize = 0x24;
    pub const DEVCTL2: usize = 0x28;
}

/// Device Capabilities bits.
pub mod devcap {
    /// Role-Based Error Reporting (mandatory since PCIe 1.1).
    pub const ROLE_BASED_ERROR: u32 = 1 << 15;
    /// Function Level Reset Capability (§7.5.3.3): the function implements Initiate Function Level Reset.
    pub const FLR: u32 = 1 << 28;
}

/// Device Control bits.
pub mod devctl {
    /// Max_Payload_Size (bits 7:5), one of the fields an FLR preserves (§6.6.2).
    pub const MAX_PAYLOAD_SIZE: u16 = 0b111 << 5;
    /// Initiate Function Level Reset (§7.5.3.4): a write of 1 starts an FLR of a function that advertises
    /// [`super::devcap::FLR`]; the bit always reads 0.
    pub const INITIATE_FLR: u16 = 1 << 15;
}

/// Device Status bits.
pub mod devsta {
    /// Transactions Pending (§7.5.3.5): Non-Posted Requests not yet completed. Linux polls it before an FLR
    /// (`pci_wait_for_pending_transaction`).
    pub const TRANSACTIONS_PENDING: u16 = 1 << 5;
}

/// Device Capabilities 2 bits.
pub mod devcap2 {
    /// End-End TLP Prefix Supported. Linux (`pci_configure_eetlp_prefix`) only lets `pci_enable_pasid` succeed
    /// on a function with this bit (for an RCiEP or root port it needs nothing upstream).
    pub const EE_PREFIX: u32 = 1 << 21;
    /// Max End-End TLP Prefixes (bits 23:22): `01b` = one prefix (the PASID prefix).
    pub const MAX_EE_PREFIXES_1: u32 = 0b01 << 22;
}

/// DEVCAP: role-based error reporting (mandatory since PCIe 1.1); max payload 128 bytes; no FLR (a function
/// that implements it sets [`devcap::FLR`] with [`set_flr_capable`]).
const DEVCAP_VALUE: u32 = devcap::ROLE_BASED_ERROR;
/// DEVCTL writable bits: error reporting enables (3:0), relaxed ordering (4), max payload (7:5),
/// no snoop (11), max read request (14:12). Extended tags, phantom functions and aux power are absent;
/// Initiate FLR (15) is never stored: it reads 0 and the function acts on the write itself.
const DEVCTL_WRITABLE: u16 = 0x78ff;
/// DEVCTL reset value: relaxed ordering and no snoop enabled, max read request 512 bytes.
const DEVCTL_RESET: u16 = (1 << 4) | (1 << 11) | (0b010 << 12);
/// DEVSTA RW1C bits: correctable, non-fatal, fatal, unsupported request detected.
const DEVSTA_RW1C: u16 = 0x000f;

/// Adds a version 2 PCI Express capability of the given type. Link, slot and root registers are all zero
/// (an integrated endpoint has none).
pub fn add_pcie_capability(
    config: &mut ConfigSpace,
    device_type: PcieDeviceType,
) -> Result<usize, CapabilityError> {
    let off = config.add_capability(id::PCI_EXPRESS, PCIE_CAP_LEN)?;
    config.set_u16(off + pcie_reg::CAPS, 0x2 | (device_type as u16) << 4);
    config.set_u32(off + pcie_reg::DEVCAP, DEVCAP_VALUE);
    config.set_u16(off + pcie_reg::DEVCTL, DEVCTL_RESET);
    config.set_masks(off + pcie_reg::DEVCTL, 2, u32::from(DEVCTL_WRITABLE), 0);
    config.set_masks(off + pcie_reg::DEVSTA, 2, 0, u32::from(DEVSTA_RW1C));
    Ok(off)
}

/// Advertises Function Level Reset in the PCI Express capability at `pcie` (Device Capabilities bit 28).
pub fn set_flr_capable(config: &mut ConfigSpace, pcie: usize) {
    let v = config.read_u32(pcie + pcie_reg::DEVCAP) | devcap::FLR;
    config.set_u32(pcie + pcie_reg::DEVCAP, v);
}

/// Whether a guest config write of `data` at byte `offset` sets Initiate Function Level Reset in the Device
/// Control register of the PCI Express capability at `pcie` (bit 15 = bit 7 of the register's second byte).
/// Works for any write width and alignment; other bits of the write do not matter.
pub fn initiates_flr(pcie: usize, offset: usize, data: &[u8]) -> bool {
    let target = pcie + pcie_reg::DEVCTL + 1;
    target
        .checked_sub(offset)
        .and_then(|i| data.get(i))
        .is_some_and(|b| b & (devctl::INITIATE_FLR >> 8) as u8 != 0)
}

/// The power management capability: D0 and D3hot only, No_Soft_Reset set (state is kept across D3hot), no PME.
#[derive(Clone, Copy, Debug)]
pub struct PmCapability {
    offset: usize,
}

impl PmCapability {
    /// Offset of PMCSR inside the capability.
    pub const PMCSR: usize = 4;
    const NO_SOFT_RESET: u16 = 1 << 3;

    pub fn add(config: &mut ConfigSpace) -> Result<Self, CapabilityError> {
        let offset = config.add_capability(id::POWER_MANAGEMENT, PM_CAP_LEN)?;
        // PMC: version 3 (PCI PM 1.2), no D1/D2, no PME.
        config.set_u16(offset + 2, 0x0003);
        config.set_u16(offset + Self::PMCSR, Self::NO_SOFT_RESET);
        config.set_masks(offset + Self::PMCSR, 2, 0x3, 0);
        Ok(PmCapability { offset })
    }

    /// Offset of the capability.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Current power state (0 = D0, 3 = D3hot).
    pub fn power_state(&self, config: &ConfigSpace) -> u8 {
        (config.read_u16(self.offset + Self::PMCSR) & 3) as u8
    }

    /// Call after a guest config write with the power state read before it: writes of the unsupported D1/D2
    /// states are discarded as the PM specification requires.
    pub fn after_write(&self, config: &mut ConfigSpace, previous_state: u8) {
        let s = self.power_state(config);
        if s == 1 || s == 2 {
            let v = config.read_u16(self.offset + Self::PMCSR) & !3;
            config.set_u16(self.offset + Self::PMCSR, v | u16::from(previous_state & 3));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ConfigSpace {
        crate::config::test_config()
    }

    #[test]
    fn pcie_capability_fields() {
        let mut c = cfg();
        let off =
            add_pcie_capability(&mut c, PcieDeviceType::RootComplexIntegratedEndpoint).unwrap();
        assert_eq!(c.read_u8(off), id::PCI_EXPRESS);
        assert_eq!(c.read_u16(off + 2), 0x0092, "version 2, type RCiEP");
        c.write(off + pcie_reg::CAPS, &[0xff, 0xff]);
        c.write(off + pcie_reg::DEVCAP, &[0xff; 4]);
        assert_eq!(c.read_u16(off + 2), 0x0092);
        assert_eq!(c.read_u32(off + pcie_reg::DEVCAP), DEVCAP_VALUE);
        c.write(off + pcie_reg::DEVCTL, &[0xff, 0xff]);
        assert_eq!(c.read_u16(off + pcie_reg::DEVCTL), DEVCTL_WRITABLE);
        c.set_u16(off + pcie_reg::DEVSTA, 0x0023);
        c.write(off + pcie_reg::DEVSTA, &[0x01, 0]);
        assert_eq!(c.read_u16(off + pcie_reg::DEVSTA), 0x0022);
        // Link/slot/root registers are reserved zero.
        c.write(off + 0x0c, &[0xff; 0x30]);
        let mut rest = [0u8; 0x18];
        c.read(off + 0x0c, &mut rest);
        assert_eq!(rest, [0; 0x18]);
    }

    #[test]
    fn flr_capability_and_trigger() {
        let mut c = cfg();
        let off =
            add_pcie_capability(&mut c, PcieDeviceType::RootComplexIntegratedEndpoint).unwrap();
        assert_eq!(c.read_u32(off + pcie_reg::DEVCAP) & devcap::FLR, 0);
        set_flr_capable(&mut c, off);
        assert_eq!(
            c.read_u32(off + pcie_reg::DEVCAP),
            devcap::FLR | devcap::ROLE_BASED_ERROR
        );
        // Initiate FLR is never stored.
        c.write(off + pcie_reg::DEVCTL, &0xffffu16.to_le_bytes());
        assert_eq!(c.read_u16(off + pcie_reg::DEVCTL) & devctl::INITIATE_FLR, 0);
        let ctl = off + pcie_reg::DEVCTL;
        assert!(initiates_flr(off, ctl, &0x8000u16.to_le_bytes()));
        assert!(initiates_flr(off, ctl + 1, &[0x80]));
        assert!(initiates_flr(off, ctl, &0x0000_8000u32.to_le_bytes()));
        assert!(initiates_flr(off, ctl - 1, &[0, 0, 0x80]));
        assert!(!initiates_flr(off, ctl, &0x7fffu16.to_le_bytes()));
        assert!(!initiates_flr(off, ctl, &[0x80]));
        assert!(!initiates_flr(off, ctl + 2, &[0xff, 0xff]));
        assert!(!initiates_flr(off, ctl + 1, &[]));
        assert!(!initiates_flr(off, usize::MAX, &[0xff; 4]));
    }

    #[test]
    fn pm_capability_d3hot_and_rejects_d1() {
        let mut c = cfg();
        let pm = PmCapability::add(&mut c).unwrap();
        assert_eq!(c.read_u16(pm.offset() + 2) & 7, 3);
        let pmcsr = pm.offset() + PmCapability::PMCSR;
        c.write(pmcsr, &[3, 0]);
        pm.after_write(&mut c, 0);
        assert_eq!(pm.power_state(&c), 3);
        assert_ne!(c.read_u16(pmcsr) & PmCapability::NO_SOFT_RESET, 0);
        c.write(pmcsr, &[1, 0]);
        pm.after_write(&mut c, 3);
        assert_eq!(pm.power_state(&c), 3, "D1 is unsupported: write discarded");
        c.write(pmcsr, &[0xfc, 0xff]);
        pm.after_write(&mut c, 3);
        assert_eq!(c.read_u16(pmcsr), PmCapability::NO_SOFT_RESET);
    }
}
