//! The Single Root I/O Virtualization (SR-IOV) extended capability of a Physical Function (PCIe Base 6.0 §9.3.3,
//! ID 0x0010, version 1), the routing of its Virtual Functions, and what a platform gives each VF.
//!
//! Layout (§9.3.3; Linux `pci_regs.h` `PCI_SRIOV_*`, as `drivers/pci/iov.c` reads it), 0x40 bytes:
//!
//! | offset | register | this implementation |
//! |---|---|---|
//! | 0x00 | extended header | |
//! | 0x04 | SR-IOV Capabilities | 0: no VF Migration, ARI Capable Hierarchy not preserved, no VF 10-Bit Tags |
//! | 0x08 | SR-IOV Control (16) | VF Enable (0), VF MSE (3), ARI Capable Hierarchy (4) RW; VF Migration Enable / Interrupt Enable (1, 2) and VF 10-Bit Tag Requester Enable (5) RsvdP (their capabilities are absent) |
//! | 0x0a | SR-IOV Status (16) | VF Migration Status: always 0 (no migration) |
//! | 0x0c | InitialVFs | = TotalVFs (required without VF Migration, §9.3.3.6) |
//! | 0x0e | TotalVFs | |
//! | 0x10 | NumVFs | RW while VF Enable is clear; read-only while it is set (§9.3.3.7 leaves writes then undefined) |
//! | 0x12 | Function Dependency Link (8) | the PF's own function number: no dependencies |
//! | 0x14 | First VF Offset | constant (it may depend on NumVFs and ARI Capable Hierarchy; here it does not) |
//! | 0x16 | VF Stride | constant |
//! | 0x1a | VF Device ID | |
//! | 0x1c | Supported Page Sizes | [`SUPPORTED_PAGE_SIZES`]: 4 KB, 8 KB, 64 KB, 256 KB, 1 MB, 4 MB, the sizes every PF must support (§9.3.3.12) |
//! | 0x20 | System Page Size | one bit of Supported Page Sizes, reset 1 (4 KB); a write of anything else is ignored (§9.3.3.13 leaves it undefined); read-only while VF Enable is set |
//! | 0x24..0x3b | VF BAR0..5 | sized like BARs, per VF: max(VF BAR size, System Page Size) (§9.3.3.13-14); VF n's BAR at base + n × size |
//! | 0x3c | VF Migration State Array Offset | 0 |
//!
//! VFs exist while VF Enable is set and 1 <= NumVFs <= TotalVFs (NumVFs above TotalVFs is undefined in §9.3.3.7;
//! here it makes none). VF `n` (0-based) has Routing ID PF + First VF Offset + n × VF Stride (§9.3.3.10-11). A
//! VF's BARs decode only while VF MSE is set (§9.3.3.3.4), whatever the PF's own COMMAND.MEM says.

use crate::bar::{Bar, BarDef, BarError, BarType, NUM_BARS};
use crate::capability::{ext_id, CapabilityError};
use crate::config::ConfigSpace;
use crate::msi::MsiSink;
use iommu::DmaAccessor;
use std::sync::Arc;
use thiserror::Error;

/// Length of the capability (`PCI_EXT_CAP_SRIOV_SIZEOF`).
pub const SRIOV_CAP_LEN: usize = 0x40;
/// Supported Page Sizes: bit n = 2^(n+12) bytes. 4 KB, 8 KB, 64 KB, 256 KB, 1 MB and 4 MB.
pub const SUPPORTED_PAGE_SIZES: u32 = 0x553;

/// Offsets and bits inside the SR-IOV capability.
pub mod sriov_reg {
    pub const CAP: usize = 0x04;
    pub const CTRL: usize = 0x08;
    pub const STATUS: usize = 0x0a;
    pub const INITIAL_VFS: usize = 0x0c;
    pub const TOTAL_VFS: usize = 0x0e;
    pub const NUM_VFS: usize = 0x10;
    pub const FUNC_LINK: usize = 0x12;
    pub const VF_OFFSET: usize = 0x14;
    pub const VF_STRIDE: usize = 0x16;
    pub const VF_DEVICE_ID: usize = 0x1a;
    /// Supported Page Sizes (`PCI_SRIOV_SUP_PGSIZE`).
    pub const SUP_PGSIZE: usize = 0x1c;
    /// System Page Size (`PCI_SRIOV_SYS_PGSIZE`).
    pub const SYS_PGSIZE: usize = 0x20;
    /// VF BAR0; VF BAR n at `VF_BAR0 + 4 * n`.
    pub const VF_BAR0: usize = 0x24;
    pub const VF_MIGRATION_STATE: usize = 0x3c;
    /// CTRL: VF Enable.
    pub const CTRL_VF_ENABLE: u16 = 1 << 0;
    /// CTRL: VF Migration Enable.
    pub const CTRL_VF_MIGRATION: u16 = 1 << 1;
    /// CTRL: VF Migration Interrupt Enable.
    pub const CTRL_VF_MIGRATION_INT: u16 = 1 << 2;
    /// CTRL: VF Memory Space Enable.
    pub const CTRL_VF_MSE: u16 = 1 << 3;
    /// CTRL: ARI Capable Hierarchy.
    pub const CTRL_ARI: u16 = 1 << 4;
    /// CTRL: VF 10-Bit Tag Requester Enable.
    pub const CTRL_VF_10BIT_TAG: u16 = 1 << 5;
}

use sriov_reg::*;

/// Guest-writable SR-IOV Control bits.
const CTRL_WRITABLE: u16 = CTRL_VF_ENABLE | CTRL_VF_MSE | CTRL_ARI;

/// Errors building an SR-IOV capability (reachable only through a bad constant layout).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SriovError {
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error("VF {0}")]
    Bar(#[from] BarError),
    #[error("TotalVFs must be at least 1")]
    NoVfs,
    #[error(
        "First VF Offset must be nonzero, and VF Stride too when TotalVFs > 1 (Linux's sriov_init)"
    )]
    BadRouting,
}

/// Where a PF's VFs sit: VF `n` at Routing ID PF + `first_offset` + n × `stride`, for n < `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfRouting {
    pub first_offset: u16,
    pub stride: u16,
    /// TotalVFs: how many VFs the PF can have.
    pub total: u16,
}

impl VfRouting {
    /// Routing ID of VF `index` of the PF at Routing ID `pf`, if it fits in 16 bits.
    pub fn routing_id(&self, pf: u16, index: u16) -> Option<u16> {
        let rid = u32::from(pf)
            + u32::from(self.first_offset)
            + u32::from(self.stride) * u32::from(index);
        u16::try_from(rid).ok()
    }

    /// The index of the VF at Routing ID `rid` among the first `count` VFs of the PF at `pf`.
    pub fn index_of(&self, pf: u16, rid: u16, count: u16) -> Option<u16> {
        let rel = u32::from(rid).checked_sub(u32::from(pf) + u32::from(self.first_offset))?;
        let index = match self.stride {
            0 => (rel == 0).then_some(0)?,
            s if rel % u32::from(s) == 0 => rel / u32::from(s),
            _ => return None,
        };
        u16::try_from(index).ok().filter(|&i| i < count)
    }

    /// Routing IDs of all `total` VFs the PF at `pf` could ever have (those that fit in 16 bits).
    pub fn all_routing_ids(&self, pf: u16) -> Vec<u16> {
        (0..self.total)
            .map_while(|i| self.routing_id(pf, i))
            .collect()
    }
}

/// The constant part of an SR-IOV capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SriovParams {
    pub total_vfs: u16,
    pub first_offset: u16,
    pub stride: u16,
    pub vf_device_id: u16,
    /// The PF's own function number, for Function Dependency Link (no dependencies).
    pub pf_function: u8,
    /// VF BARs by index: type, size per VF at the smallest System Page Size, prefetchable.
    pub vf_bars: [Option<BarDef>; NUM_BARS],
}

/// Control state before a guest write, for [`SriovCapability::after_write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SriovSnapshot {
    ctrl: u16,
    num_vfs: u16,
    page_size: u32,
}

/// What a guest write did to the VFs' existence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SriovChange {
    /// VF Enable went from 0 to 1: [`SriovCapability::active_vfs`] VFs now exist, in their reset state.
    Enabled,
    /// VF Enable went from 1 to 0: every VF is gone.
    Disabled,
    Unchanged,
}

/// An SR-IOV capability: its state lives in the configuration space; this records where and the VF BARs.
#[derive(Clone, Copy, Debug)]
pub struct SriovCapability {
    offset: usize,
    total: u16,
    vf_bars: [Option<BarDef>; NUM_BARS],
}

fn vf_bar_reg(offset: usize, index: usize) -> usize {
    offset + VF_BAR0 + 4 * index
}

impl SriovCapability {
    /// Appends an SR-IOV capability: VFs disabled, NumVFs 0, System Page Size 4 KB, VF BARs unassigned.
    pub fn add(config: &mut ConfigSpace, p: &SriovParams) -> Result<Self, SriovError> {
        if p.total_vfs == 0 {
            return Err(SriovError::NoVfs);
        }
        if p.first_offset == 0 || (p.total_vfs > 1 && p.stride == 0) {
            return Err(SriovError::BadRouting);
        }
        check_vf_bars(&p.vf_bars)?;
        let offset = config.add_ext_capability(ext_id::SRIOV, 1, SRIOV_CAP_LEN)?;
        config.set_masks(offset + CTRL, 2, u32::from(CTRL_WRITABLE), 0);
        config.set_u16(offset + INITIAL_VFS, p.total_vfs);
        config.set_u16(offset + TOTAL_VFS, p.total_vfs);
        config.set_masks(offset + NUM_VFS, 2, 0xffff, 0);
        config.set_u8(offset + FUNC_LINK, p.pf_function);
        config.set_u16(offset + VF_OFFSET, p.first_offset);
        config.set_u16(offset + VF_STRIDE, p.stride);
        config.set_u16(offset + VF_DEVICE_ID, p.vf_device_id);
        config.set_u32(offset + SUP_PGSIZE, SUPPORTED_PAGE_SIZES);
        config.set_u32(offset + SYS_PGSIZE, 1);
        // Any value sticks for a moment; after_write keeps only single supported page sizes.
        config.set_masks(offset + SYS_PGSIZE, 4, u32::MAX, 0);
        let cap = SriovCapability {
            offset,
            total: p.total_vfs,
            vf_bars: p.vf_bars,
        };
        for (i, def) in p.vf_bars.iter().enumerate() {
            if let Some(def) = def {
                let flags = match def.bar_type {
                    BarType::Mem32 => 0,
                    BarType::Mem64 => 0b100,
                } | if def.prefetchable { 1 << 3 } else { 0 };
                config.set_u32(vf_bar_reg(offset, i), flags);
            }
        }
        cap.apply_page_size(config);
        Ok(cap)
    }

    /// Offset of the capability.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// TotalVFs.
    pub fn total_vfs(&self) -> u16 {
        self.total
    }

    /// Whether a config access of `len` bytes at `offset` touches this capability.
    pub fn overlaps(&self, offset: usize, len: usize) -> bool {
        offset < self.offset + SRIOV_CAP_LEN && offset.saturating_add(len) > self.offset
    }

    /// SR-IOV Control.
    pub fn control(&self, config: &ConfigSpace) -> u16 {
        config.read_u16(self.offset + CTRL)
    }

    /// VF Enable.
    pub fn vf_enabled(&self, config: &ConfigSpace) -> bool {
        self.control(config) & CTRL_VF_ENABLE != 0
    }

    /// VF MSE: the VFs' BARs decode.
    pub fn vf_memory_enabled(&self, config: &ConfigSpace) -> bool {
        self.control(config) & CTRL_VF_MSE != 0
    }

    /// NumVFs as programmed.
    pub fn num_vfs(&self, config: &ConfigSpace) -> u16 {
        config.read_u16(self.offset + NUM_VFS)
    }

    /// How many VFs exist: NumVFs while VF Enable is set and NumVFs is in 1..=TotalVFs, else 0.
    pub fn active_vfs(&self, config: &ConfigSpace) -> u16 {
        let n = self.num_vfs(config);
        if self.vf_enabled(config) && (1..=self.total).contains(&n) {
            n
        } else {
            0
        }
    }

    /// First VF Offset, VF Stride and TotalVFs as the registers give them.
    pub fn routing(&self, config: &ConfigSpace) -> VfRouting {
        VfRouting {
            first_offset: config.read_u16(self.offset + VF_OFFSET),
            stride: config.read_u16(self.offset + VF_STRIDE),
            total: self.total,
        }
    }

    /// The System Page Size in bytes.
    pub fn page_size(&self, config: &ConfigSpace) -> u64 {
        let v = config.read_u32(self.offset + SYS_PGSIZE);
        // Only single supported bits are ever kept (and bit 10 is the largest), so this cannot overflow.
        if v.count_ones() == 1 && v & SUPPORTED_PAGE_SIZES != 0 {
            0x1000 << v.trailing_zeros()
        } else {
            0x1000
        }
    }

    /// Per-VF size of VF BAR `index` (the low register of a 64-bit one): max(its size, System Page Size).
    pub fn vf_bar_size(&self, config: &ConfigSpace, index: u8) -> Option<u64> {
        let def = self.vf_bars.get(usize::from(index)).copied().flatten()?;
        Some(def.size.max(self.page_size(config)))
    }

    /// VF BAR `index` as programmed: its base (VF 0's BAR) and per-VF size.
    pub fn vf_bar(&self, config: &ConfigSpace, index: u8) -> Option<Bar> {
        let i = usize::from(index);
        let def = self.vf_bars.get(i).copied().flatten()?;
        let low = u64::from(config.read_u32(vf_bar_reg(self.offset, i)) & !0xf);
        let address = match def.bar_type {
            BarType::Mem32 => low,
            BarType::Mem64 => {
                low | u64::from(config.read_u32(vf_bar_reg(self.offset, i + 1))) << 32
            }
        };
        Some(Bar {
            index,
            bar_type: def.bar_type,
            prefetchable: def.prefetchable,
            address,
            size: self.vf_bar_size(config, index)?,
        })
    }

    /// The space VF BAR `index` needs for all TotalVFs (per-VF size × TotalVFs), as Linux sizes the PF's IOV
    /// resource (`sriov_init`) and firmware allocates it.
    pub fn aperture(&self, config: &ConfigSpace, index: u8) -> Option<Bar> {
        let b = self.vf_bar(config, index)?;
        Some(Bar {
            size: b.size.checked_mul(u64::from(self.total))?,
            ..b
        })
    }

    /// Every implemented VF BAR's aperture, in index order.
    pub fn apertures(&self, config: &ConfigSpace) -> Vec<Bar> {
        (0..NUM_BARS as u8)
            .filter_map(|i| self.aperture(config, i))
            .collect()
    }

    /// Firmware-side placement of VF BAR `index` at `address` (aligned to the per-VF size).
    pub fn set_vf_bar_address(
        &self,
        config: &mut ConfigSpace,
        index: u8,
        address: u64,
    ) -> Result<(), BarError> {
        let i = usize::from(index);
        let def = self
            .vf_bars
            .get(i)
            .copied()
            .flatten()
            .ok_or(BarError::NotImplemented(index))?;
        let size = self
            .vf_bar_size(config, index)
            .ok_or(BarError::NotImplemented(index))?;
        let bad = BarError::BadAddress {
            index,
            address,
            size,
        };
        if address & (size - 1) != 0 {
            return Err(bad);
        }
        let reg = vf_bar_reg(self.offset, i);
        let flags = config.read_u32(reg) & 0xf;
        match def.bar_type {
            BarType::Mem32 => {
                let a = u32::try_from(address).map_err(|_| bad)?;
                config.set_u32(reg, a | flags);
            }
            BarType::Mem64 => {
                config.set_u32(reg, address as u32 | flags);
                config.set_u32(reg + 4, (address >> 32) as u32);
            }
        }
        Ok(())
    }

    /// VF `vf`'s BAR `index`: VF 0's base + `vf` × per-VF size. `None` when the BAR is not implemented or the
    /// slice would run past the end of the address space.
    pub fn vf_slice(&self, config: &ConfigSpace, index: u8, vf: u16) -> Option<Bar> {
        let b = self.vf_bar(config, index)?;
        let address = b.size.checked_mul(u64::from(vf))?.checked_add(b.address)?;
        address.checked_add(b.size - 1)?;
        Some(Bar { address, ..b })
    }

    /// The control state before a guest write.
    pub fn snapshot(&self, config: &ConfigSpace) -> SriovSnapshot {
        SriovSnapshot {
            ctrl: self.control(config),
            num_vfs: self.num_vfs(config),
            page_size: config.read_u32(self.offset + SYS_PGSIZE),
        }
    }

    /// Call after every guest config write with the snapshot taken before it: keeps NumVFs and System Page Size
    /// read-only while VF Enable is set, drops System Page Size writes that are not one supported size (and
    /// resizes the VF BARs for one that is), and says whether VFs came or went.
    pub fn after_write(&self, config: &mut ConfigSpace, before: SriovSnapshot) -> SriovChange {
        let was_enabled = before.ctrl & CTRL_VF_ENABLE != 0;
        let page = config.read_u32(self.offset + SYS_PGSIZE);
        if was_enabled {
            config.set_u16(self.offset + NUM_VFS, before.num_vfs);
            config.set_u32(self.offset + SYS_PGSIZE, before.page_size);
        } else if page != before.page_size {
            if page.count_ones() == 1 && page & SUPPORTED_PAGE_SIZES != 0 {
                self.apply_page_size(config);
            } else {
                config.set_u32(self.offset + SYS_PGSIZE, before.page_size);
            }
        }
        match (was_enabled, self.vf_enabled(config)) {
            (false, true) => SriovChange::Enabled,
            (true, false) => SriovChange::Disabled,
            _ => SriovChange::Unchanged,
        }
    }

    /// Sets each VF BAR's sizing mask for the current per-VF size and clears the address bits below it.
    fn apply_page_size(&self, config: &mut ConfigSpace) {
        for (i, def) in self.vf_bars.iter().enumerate() {
            let (Some(def), Some(size)) = (def, self.vf_bar_size(config, i as u8)) else {
                continue;
            };
            let mask = !(size - 1);
            let reg = vf_bar_reg(self.offset, i);
            let low = config.read_u32(reg);
            config.set_u32(reg, low & ((mask as u32) | 0xf));
            config.set_masks(reg, 4, (mask as u32) & !0xf, 0);
            if def.bar_type == BarType::Mem64 {
                let high = config.read_u32(reg + 4);
                config.set_u32(reg + 4, high & (mask >> 32) as u32);
                config.set_masks(reg + 4, 4, (mask >> 32) as u32, 0);
            }
        }
    }
}

/// The same rules as [`ConfigSpace::add_bar`], for a whole set of VF BARs.
fn check_vf_bars(bars: &[Option<BarDef>; NUM_BARS]) -> Result<(), BarError> {
    for (i, def) in bars.iter().enumerate() {
        let Some(def) = def else { continue };
        let index = i as u8;
        if !def.size.is_power_of_two() || def.size < 16 {
            return Err(BarError::InvalidSize {
                index,
                size: def.size,
            });
        }
        if def.bar_type == BarType::Mem64 {
            match bars.get(i + 1) {
                None => return Err(BarError::NoRoomFor64Bit(index)),
                Some(Some(_)) => return Err(BarError::SlotInUse(index + 1)),
                Some(None) => {}
            }
        }
        // A 32-bit VF BAR must hold its largest per-VF size (4 MB pages) below 4 GiB.
        if def.bar_type == BarType::Mem32 && def.size > 1 << 31 {
            return Err(BarError::TooLargeFor32Bit {
                index,
                size: def.size,
            });
        }
    }
    Ok(())
}

/// What the platform gives each Virtual Function when VF Enable brings it into existence: its DMA path (the
/// PF's IOMMU port with the VF's own requester id, so that every VF has its own IOMMU context) and its MSI sink
/// (interrupt remapping checks the VF's requester id).
pub trait VfPlatform: Send + Sync {
    /// The DMA accessor of the VF with this requester id.
    fn dma(&self, requester_id: u16) -> DmaAccessor;
    /// Where the VF with this requester id sends its MSI/MSI-X messages.
    fn msi_sink(&self, requester_id: u16) -> Arc<dyn MsiSink>;
}

/// A [`VfPlatform`] for a PF built without one: VFs reach memory through the PF's port and memory with their
/// own requester id, and their messages go to the PF's sink (which cannot tell them apart).
pub struct SharedPaths {
    pub dma: DmaAccessor,
    pub sink: Arc<dyn MsiSink>,
}

impl VfPlatform for SharedPaths {
    fn dma(&self, requester_id: u16) -> DmaAccessor {
        DmaAccessor::new(
            self.dma.port.clone(),
            self.dma.mem.clone(),
            u32::from(requester_id),
        )
    }

    fn msi_sink(&self, _requester_id: u16) -> Arc<dyn MsiSink> {
        self.sink.clone()
    }
}

#[cfg(test)]
mod tests;
