//! The interface every PCI function on a segment implements.

use crate::bar::{Bar, BarError};
use crate::capability::id;
use crate::config::ConfigSpace;
use crate::msix::msix_reg;
use crate::sriov::VfRouting;

/// A PCI function as the segment sees it.
///
/// Config accesses arrive as a dword index `reg` (0..1024) plus a byte `offset` in that dword, with 1..=4 bytes of
/// data that never cross the dword (the segment splits wider or unaligned accesses). BAR accesses carry the BAR
/// index (the low register of a 64-bit BAR) and the offset inside it; the segment only routes accesses whose first
/// byte falls inside a decoded BAR, but implementations must tolerate any offset and length.
pub trait PciDevice: Send {
    /// The function's configuration space.
    fn config(&self) -> &ConfigSpace;

    /// Mutable configuration space, for the segment's firmware-style setup (BAR placement, COMMAND).
    fn config_mut(&mut self) -> &mut ConfigSpace;

    /// Guest config read.
    fn config_read(&mut self, reg: usize, offset: usize, data: &mut [u8]) {
        match config_offset(reg, offset) {
            Some(o) => self.config().read(o, data),
            None => data.fill(0xff),
        }
    }

    /// Guest config write. Devices with capabilities that react to writes (MSI, MSI-X, PM) override this.
    fn config_write(&mut self, reg: usize, offset: usize, data: &[u8]) {
        if let Some(o) = config_offset(reg, offset) {
            self.config_mut().write(o, data);
        }
    }

    /// Guest read of `data.len()` bytes at `offset` in BAR `bar`.
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]);

    /// Guest write of `data` at `offset` in BAR `bar`.
    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]);

    /// The implemented BARs with their current addresses.
    fn bars(&self) -> Vec<Bar> {
        self.config().bars()
    }

    /// COMMAND.MEM.
    fn memory_enabled(&self) -> bool {
        self.config().memory_enabled()
    }

    /// The BAR decoding `gpa` (if memory decode is on) and the offset in it.
    fn decode(&self, gpa: u64) -> Option<(u8, u64)> {
        self.config().decode(gpa)
    }

    /// Firmware-style placement of a BAR.
    fn set_bar_address(&mut self, index: u8, address: u64) -> Result<(), BarError> {
        self.config_mut().set_bar_address(index, address)
    }

    /// Whether the function has an MSI capability.
    fn has_msi(&self) -> bool {
        self.config().find_capability(id::MSI).is_some()
    }

    /// Vendor and Device ID as the operating system reports them. A Virtual Function reads 0xFFFF in both
    /// (PCIe Base 6.0 §9.3.4.1.1-2); Linux takes its PF's Vendor ID and the VF Device ID of the PF's SR-IOV
    /// capability instead (`pci_iov_scan_device`).
    fn os_ids(&self) -> (u16, u16) {
        (self.config().vendor_id(), self.config().device_id())
    }

    /// SR-IOV: where this Physical Function's VFs sit relative to its own Routing ID (`None` without an
    /// SR-IOV capability).
    fn vf_routing(&self) -> Option<VfRouting> {
        None
    }

    /// SR-IOV: how many VFs exist now. They come and go with VF Enable; VF `i` answers at Routing ID
    /// PF + First VF Offset + `i` × VF Stride.
    fn num_vfs(&self) -> u16 {
        0
    }

    /// SR-IOV: VF `index`, if it exists.
    fn vf(&self, _index: u16) -> Option<&dyn PciDevice> {
        None
    }

    /// SR-IOV: VF `index`, mutably.
    fn vf_mut(&mut self, _index: u16) -> Option<&mut dyn PciDevice> {
        None
    }

    /// SR-IOV: the VF BAR apertures (per-VF size × TotalVFs, base = VF 0's BAR), which firmware places like
    /// BARs. They are not BARs of this function: they decode only for its VFs.
    fn iov_bars(&self) -> Vec<Bar> {
        Vec::new()
    }

    /// Firmware-style placement of VF BAR `index`'s aperture.
    fn set_iov_bar_address(&mut self, index: u8, _address: u64) -> Result<(), BarError> {
        Err(BarError::NotImplemented(index))
    }

    /// Number of MSI-X vectors (0 without an MSI-X capability).
    fn msix_vectors(&self) -> u16 {
        self.config().find_capability(id::MSIX).map_or(0, |o| {
            (self.config().read_u16(o + msix_reg::CONTROL) & 0x7ff) + 1
        })
    }
}

/// The byte offset of (`reg`, `offset`), if it lies inside the 4 KiB space.
pub fn config_offset(reg: usize, offset: usize) -> Option<usize> {
    reg.checked_mul(4)?
        .checked_add(offset)
        .filter(|&o| o < crate::config::CONFIG_SPACE_SIZE)
}
