//! DMA windows (LoPAR "DMA window"; IODA2 TVE): LIOBN, bus offset, size, TCE page size and the TCE
//! table that translates it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::pool::Block;
use super::regs::{tve_error, TveCfg};
use crate::mem::DmaMemory;
use crate::ranges::IovaWindow;

/// At most two windows per PE (LoPAR DDW: the default window plus one dynamic window; QEMU
/// SPAPR_PCI_DMA_MAX_WINDOWS).
pub const MAX_WINDOWS: usize = 2;
/// Deepest multi-level table (pnv: POWERNV_IOMMU_MAX_LEVELS = 5).
pub const MAX_LEVELS: u8 = 5;
/// LIOBNs of the two windows (QEMU SPAPR_PCI_LIOBN(0, n) for PHB 0 is 0x80000000 | n).
pub const LIOBNS: [u32; MAX_WINDOWS] = [0x8000_0000, 0x8000_0001];
/// Bus offset of the default 64-bit window and of dynamic windows (QEMU SPAPR_PCI_DMA64_START).
pub const DMA64_START: u64 = 0x0800_0000_0000_0000;
/// The default 32-bit window: 1 GiB at 0 with 4 KiB pages (the seed's 0x00000000..0x3fffffff).
pub const DEFAULT_DMA32: (u64, u64, u8) = (0, 1 << 30, 12);
/// Size of the default 64-bit window: 2^45 bytes (the seed's 0x800000000000000..0x8001fffffffffff).
pub const DEFAULT_DMA64_SIZE: u64 = 1 << 45;
/// log2 of the bytes per level of the hypervisor's own tables (4 KiB: 512 entries, 9 index bits).
pub const HV_TABLE_SHIFT: u8 = 12;
/// Most index bits a hypervisor table can have (5 levels of 512 entries).
pub const HV_MAX_INDEX_BITS: u32 = MAX_LEVELS as u32 * (HV_TABLE_SHIFT as u32 - 3);

/// One window (a TVE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub liobn: u32,
    pub enabled: bool,
    /// Top-level table (TVE_TABLE); `None` until the hypervisor allocates it lazily.
    pub table: Option<u64>,
    pub levels: u8,
    pub page_shift: u8,
    /// log2(bytes per level table).
    pub table_shift: u8,
    /// Bus offset: IOBA of the window's first byte.
    pub base: u64,
    pub size: u64,
    /// TVE_STATUS error code of the last refused enable (0 = none).
    pub error: u8,
    /// A hypervisor window: created by the defaults or ibm,create-pe-dma-window and not
    /// reprogrammed through the hardware view since (any TVE_CFG write hands the window to the
    /// hardware view for good). Only hypervisor windows take hypercalls ([`super::hcall`]).
    pub hypervisor: bool,
    /// Pool blocks this window's hypervisor tables use (freed when the window goes away or its
    /// TVE_TABLE is reprogrammed; kept while the TVE may still point at them, so a block is never
    /// handed to another window while this one can reach it).
    pub owned: Vec<Block>,
    /// The hypervisor table's lower levels, kept on the host side: (level >= 1, TCE index prefix
    /// above that level's table) -> level table address ([`super::hvtable`]). The hypercalls never
    /// follow pointers read from the pool, which is guest-physical memory.
    pub lower: BTreeMap<(u8, u64), u64>,
}

/// The walk parameters of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub table: Option<u64>,
    pub levels: u8,
    /// Index bits per level (log2 entries per level table).
    pub entry_bits: u32,
}

/// A window as the monitor, dump and firmware tables see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct WindowInfo {
    pub index: usize,
    pub liobn: u32,
    pub enabled: bool,
    pub base: u64,
    pub size: u64,
    pub page_shift: u8,
    pub levels: u8,
    pub table_shift: u8,
    pub table: Option<u64>,
    /// Managed by the hypervisor (takes hypercalls), not programmed through the hardware view.
    pub hypervisor: bool,
}

/// Levels a hypervisor table needs for `index_bits` bits with 4 KiB level tables (at least 1).
pub fn hv_levels(index_bits: u32) -> u8 {
    let per = u32::from(HV_TABLE_SHIFT) - 3;
    index_bits.div_ceil(per).clamp(1, u32::from(MAX_LEVELS)) as u8
}

impl Window {
    /// A disabled window with nothing programmed.
    pub fn empty(liobn: u32) -> Self {
        Self {
            liobn,
            enabled: false,
            table: None,
            levels: 0,
            page_shift: 0,
            table_shift: 0,
            base: 0,
            size: 0,
            error: 0,
            hypervisor: false,
            owned: Vec::new(),
            lower: BTreeMap::new(),
        }
    }

    /// An enabled hypervisor-managed window (tables from the pool, 4 KiB levels, lazily allocated).
    /// The caller has checked that `size` is a power of two >= the page size and fits the levels.
    pub fn hypervisor(liobn: u32, base: u64, size: u64, page_shift: u8) -> Self {
        let index_bits = size.trailing_zeros().saturating_sub(u32::from(page_shift));
        Self {
            liobn,
            enabled: true,
            table: None,
            levels: hv_levels(index_bits),
            page_shift,
            table_shift: HV_TABLE_SHIFT,
            base,
            size,
            error: 0,
            hypervisor: true,
            owned: Vec::new(),
            lower: BTreeMap::new(),
        }
    }

    pub fn page_size(&self) -> u64 {
        1u64.checked_shl(u32::from(self.page_shift)).unwrap_or(0)
    }

    /// The IOVAs this window covers, if enabled and well formed.
    pub fn range(&self) -> Option<IovaWindow> {
        if !self.enabled {
            return None;
        }
        IovaWindow::from_base_size(self.base, self.size)
    }

    pub fn contains(&self, iova: u64) -> bool {
        self.range().is_some_and(|r| r.contains(iova))
    }

    /// TCE index of `iova` (which the window contains).
    pub fn index(&self, iova: u64) -> u64 {
        iova.wrapping_sub(self.base)
            .checked_shr(u32::from(self.page_shift))
            .unwrap_or(0)
    }

    /// Number of TCEs.
    pub fn entries(&self) -> u64 {
        self.size
            .checked_shr(u32::from(self.page_shift))
            .unwrap_or(0)
    }

    /// IOBA of TCE `index`.
    pub fn iova_of(&self, index: u64) -> u64 {
        self.base
            .wrapping_add(index.checked_shl(u32::from(self.page_shift)).unwrap_or(0))
    }

    pub fn geometry(&self) -> Geometry {
        Geometry {
            table: self.table,
            levels: self.levels.clamp(1, MAX_LEVELS),
            entry_bits: u32::from(self.table_shift.clamp(12, 30)) - 3,
        }
    }

    pub fn cfg(&self) -> TveCfg {
        TveCfg {
            enable: self.enabled,
            levels: self.levels,
            page_shift: self.page_shift,
            table_shift: self.table_shift,
        }
    }

    pub fn info(&self, index: usize) -> WindowInfo {
        WindowInfo {
            index,
            liobn: self.liobn,
            enabled: self.enabled,
            base: self.base,
            size: self.size,
            page_shift: self.page_shift,
            levels: self.levels,
            table_shift: self.table_shift,
            table: self.table,
            hypervisor: self.hypervisor,
        }
    }

    /// Checks the whole entry as TVE_CFG.ENABLE does: page size offered (`offered` is TCE_PAGE_SIZES),
    /// levels, level table size, table base (4 KiB aligned, top level in RAM), window alignment and
    /// size, index bits, no overlap with `other` (the other window, if enabled). Returns the
    /// [`tve_error`] code.
    pub fn validate(
        &self,
        offered: u64,
        other: Option<&Window>,
        mem: &dyn DmaMemory,
    ) -> Result<(), u8> {
        if self.page_shift >= 64 || offered & (1u64 << self.page_shift) == 0 {
            return Err(tve_error::PAGE_SIZE);
        }
        if !(1..=MAX_LEVELS).contains(&self.levels) {
            return Err(tve_error::LEVELS);
        }
        if !(12..=30).contains(&self.table_shift) {
            return Err(tve_error::TABLE_SIZE);
        }
        if let Some(t) = self.table {
            let bytes = 1u64 << self.table_shift;
            let mut b = [0u8; 8];
            let in_ram = t.checked_add(bytes - 8).is_some()
                && mem.read(t, &mut b).is_ok()
                && mem.read(t + bytes - 8, &mut b).is_ok();
            if !t.is_multiple_of(0x1000) || !in_ram {
                return Err(tve_error::TABLE_BASE);
            }
        }
        let page = self.page_size();
        if !self.base.is_multiple_of(page) {
            return Err(tve_error::WINDOW_BASE);
        }
        if !self.size.is_power_of_two()
            || self.size < page
            || IovaWindow::from_base_size(self.base, self.size).is_none()
        {
            return Err(tve_error::WINDOW_SIZE);
        }
        let index_bits = self.size.trailing_zeros() - u32::from(self.page_shift);
        let capacity = u32::from(self.levels) * (u32::from(self.table_shift) - 3);
        if index_bits > capacity {
            return Err(tve_error::INDEX_BITS);
        }
        if let (Some(o), Some(me)) = (other.and_then(Window::range), self.enabled_range()) {
            if o.first <= me.last && me.first <= o.last {
                return Err(tve_error::OVERLAP);
            }
        }
        Ok(())
    }

    /// The range the window would cover if enabled.
    fn enabled_range(&self) -> Option<IovaWindow> {
        IovaWindow::from_base_size(self.base, self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::TestMemory;

    fn offered() -> u64 {
        super::super::config::supported_mask()
    }

    #[test]
    fn hypervisor_windows_levels() {
        let w32 = Window::hypervisor(LIOBNS[0], 0, 1 << 30, 12);
        assert_eq!(w32.levels, 2, "18 index bits, 9 per level");
        let w64 = Window::hypervisor(LIOBNS[1], DMA64_START, DEFAULT_DMA64_SIZE, 21);
        assert_eq!(w64.levels, 3, "24 index bits");
        assert_eq!(hv_levels(0), 1);
        assert_eq!(hv_levels(9), 1);
        assert_eq!(hv_levels(10), 2);
        assert_eq!(hv_levels(45), 5);
        assert_eq!(hv_levels(200), 5);
        assert_eq!(w64.range().unwrap().last, 0x8001fffffffffff);
        assert_eq!(w64.index(DMA64_START + 0x60_0000), 3);
        assert_eq!(w64.iova_of(3), DMA64_START + 0x60_0000);
        assert_eq!(w64.entries(), 1 << 24);
    }

    #[test]
    fn validation_codes() {
        let mem = TestMemory::new(0x10000);
        let good = Window {
            table: Some(0x1000),
            levels: 1,
            page_shift: 12,
            table_shift: 12,
            base: 0,
            size: 1 << 21,
            ..Window::empty(1)
        };
        assert_eq!(good.validate(offered(), None, &mem), Ok(()));
        let with = |f: &dyn Fn(&mut Window)| {
            let mut w = good.clone();
            f(&mut w);
            w.validate(offered(), None, &mem)
        };
        assert_eq!(with(&|w| w.page_shift = 13), Err(tve_error::PAGE_SIZE));
        assert_eq!(with(&|w| w.page_shift = 200), Err(tve_error::PAGE_SIZE));
        assert_eq!(with(&|w| w.levels = 0), Err(tve_error::LEVELS));
        assert_eq!(with(&|w| w.levels = 6), Err(tve_error::LEVELS));
        assert_eq!(with(&|w| w.table_shift = 11), Err(tve_error::TABLE_SIZE));
        assert_eq!(with(&|w| w.table_shift = 31), Err(tve_error::TABLE_SIZE));
        assert_eq!(
            with(&|w| w.table = Some(0x1008)),
            Err(tve_error::TABLE_BASE)
        );
        assert_eq!(with(&|w| w.table = Some(0xf000)), Ok(()));
        assert_eq!(
            with(&|w| w.table = Some(0x10000)),
            Err(tve_error::TABLE_BASE)
        );
        assert_eq!(
            with(&|w| {
                w.table = Some(0xf000);
                w.table_shift = 13
            }),
            Err(tve_error::TABLE_BASE),
            "the top-level table straddles the end of RAM"
        );
        assert_eq!(
            with(&|w| w.table = Some(!0xfff)),
            Err(tve_error::TABLE_BASE)
        );
        assert_eq!(with(&|w| w.base = 0x800), Err(tve_error::WINDOW_BASE));
        assert_eq!(with(&|w| w.size = 3 << 20), Err(tve_error::WINDOW_SIZE));
        assert_eq!(with(&|w| w.size = 0x800), Err(tve_error::WINDOW_SIZE));
        assert_eq!(with(&|w| w.size = 0), Err(tve_error::WINDOW_SIZE));
        assert_eq!(
            with(&|w| {
                w.base = !0xfff;
                w.size = 0x2000
            }),
            Err(tve_error::WINDOW_SIZE)
        );
        assert_eq!(with(&|w| w.size = 1 << 22), Err(tve_error::INDEX_BITS));
        assert_eq!(
            with(&|w| {
                w.size = 1 << 22;
                w.levels = 2
            }),
            Ok(())
        );
        let other = Window {
            enabled: true,
            base: 0x10_0000,
            size: 0x1000,
            ..good.clone()
        };
        assert_eq!(
            good.validate(offered(), Some(&other), &mem),
            Err(tve_error::OVERLAP)
        );
        let disabled = Window {
            enabled: false,
            ..other
        };
        assert_eq!(good.validate(offered(), Some(&disabled), &mem), Ok(()));
    }
}
