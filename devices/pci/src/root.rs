//! The host bridge at 00:00.0.
//!
//! Identity: Red Hat 0x1b36:0x0008, "QEMU PCIe Host bridge" in pci.ids, the id QEMU documents for generic PCIe
//! host bridges (docs/specs/pci-ids.rst). No Linux 6.12 driver or quirk matches it (checked against the 6.12
//! sources), so Linux treats it as a plain class 0x0600 host bridge. It has no BARs and no capabilities.

use crate::config::{ConfigSpace, HeaderType0};
use crate::device::PciDevice;

/// Host bridge vendor ID.
pub const HOST_BRIDGE_VENDOR_ID: u16 = 0x1b36;
/// Host bridge device ID.
pub const HOST_BRIDGE_DEVICE_ID: u16 = 0x0008;
/// Class code: bridge, host bridge.
pub const HOST_BRIDGE_CLASS: u32 = 0x06_0000;

/// The root complex's host bridge function.
#[derive(Debug)]
pub struct HostBridge {
    config: ConfigSpace,
}

impl HostBridge {
    pub fn new() -> Self {
        HostBridge {
            config: ConfigSpace::new(&HeaderType0 {
                vendor_id: HOST_BRIDGE_VENDOR_ID,
                device_id: HOST_BRIDGE_DEVICE_ID,
                revision_id: 0,
                class_code: HOST_BRIDGE_CLASS,
                subsystem_vendor_id: HOST_BRIDGE_VENDOR_ID,
                subsystem_id: HOST_BRIDGE_DEVICE_ID,
                interrupt_pin: 0,
            }),
        }
    }
}

impl Default for HostBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl PciDevice for HostBridge {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    fn bar_read(&mut self, _bar: u8, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }

    fn bar_write(&mut self, _bar: u8, _offset: u64, _data: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_no_resources() {
        let mut hb = HostBridge::new();
        let mut d = [0u8; 4];
        hb.config_read(0, 0, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x0008_1b36);
        hb.config_read(2, 0, &mut d);
        assert_eq!(u32::from_le_bytes(d) >> 8, 0x06_0000);
        assert!(hb.bars().is_empty());
        assert!(!hb.has_msi());
        assert_eq!(hb.msix_vectors(), 0);
        hb.config_read(1024, 0, &mut d);
        assert_eq!(d, [0xff; 4]);
    }
}
