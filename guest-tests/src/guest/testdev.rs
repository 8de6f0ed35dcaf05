//! The iovmm DMA test device as the guest sees it: how to recognise it and how to make it raise an interrupt.
//! The register map is owned by devices/pci (`pci::test_device::regs`).

use firmware_tables::description::{MachineDescription, PciFunctionInfo};

use super::vfio::{Region, VfioDevice};

// PLACEHOLDER until devices/pci publishes test_device/regs.rs.
pub const VENDOR_ID: u16 = 0x1de5;
pub const DEVICE_ID: u16 = 0x0001;
const REG_DOORBELL: u64 = 0x0;

/// True when `f` is the test device.
pub fn is_test_device(f: &PciFunctionInfo) -> bool {
    f.vendor_id == VENDOR_ID && f.device_id == DEVICE_ID
}

/// The test device in the machine description, if the VMM built one.
pub fn find(expect: &MachineDescription) -> Option<&PciFunctionInfo> {
    expect.pci.iter().find(|f| is_test_device(f))
}

/// Asks the device to raise interrupt vector `vector` (MSI or MSI-X, whichever is enabled).
pub fn ring_doorbell(dev: &VfioDevice, bar0: &Region, vector: u32) -> Result<(), String> {
    dev.write32(bar0, REG_DOORBELL, vector)
}
