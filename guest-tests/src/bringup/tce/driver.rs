//! The TCE bring-up driver over the hardware view: program translation validation entries (TVEs) with TCE
//! tables we build in the driver's RAM window — one level or several, the index bits split most-significant
//! level first as Linux's powernv `pnv_tce` walks them (arch/powerpc/platforms/powernv/pci-ioda-tce.c: each
//! non-leaf entry is the next table's address | TCE_PCI_READ | TCE_PCI_WRITE) — write big-endian TCEs, kill the
//! TCE cache by range or all, and read / reset the PE's EEH state.

use std::collections::BTreeMap;

use super::super::alloc::{zalloc, PageAlloc};
use super::super::backend::Backend;
use super::regs::*;

/// Page shifts the TVE format can carry that a window may use (4K, 64K, 2M, 16M, 256M, 1G).
pub const KNOWN_PAGE_SHIFTS: [u8; 6] = [12, 16, 21, 24, 28, 30];

/// How one window is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowCfg {
    /// Table levels, 1..=5.
    pub levels: u8,
    /// log2 of the TCE page size.
    pub page_shift: u8,
    /// log2 of the bytes of each level table (12..=30).
    pub table_shift: u8,
    /// IOBA of the window's first byte.
    pub base: u64,
    /// Window size in bytes.
    pub size: u64,
}

impl WindowCfg {
    pub fn page_size(&self) -> u64 {
        1 << self.page_shift
    }

    /// Index bits each level table resolves.
    pub fn bits_per_level(&self) -> u32 {
        u32::from(self.table_shift) - 3
    }

    /// Number of TCEs the window needs.
    pub fn entries(&self) -> u64 {
        self.size >> self.page_shift
    }

    /// Whether `iova` lies inside the window.
    pub fn contains(&self, iova: u64) -> bool {
        iova >= self.base && iova - self.base < self.size
    }

    /// The last IOBA of the window.
    pub fn last(&self) -> u64 {
        self.base + (self.size - 1)
    }

    /// The index of each level for TCE index `idx`, top level first (pnv_tce).
    pub fn level_indices(&self, idx: u64) -> Vec<u64> {
        let b = self.bits_per_level();
        let mask = (1u64 << b) - 1;
        (0..u32::from(self.levels))
            .rev()
            .map(|l| idx.checked_shr(l * b).unwrap_or(0) & mask)
            .collect()
    }
}

/// A window as the driver programmed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub index: usize,
    pub cfg: WindowCfg,
    /// Top-level table.
    pub table: u64,
    pub liobn: u32,
    /// Lower-level tables by (level below the top, TCE index bits above that level).
    pub tables: BTreeMap<(u8, u64), u64>,
}

/// What the ID registers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident {
    pub id: u64,
    pub windows: usize,
    pub page_sizes: u64,
}

impl Ident {
    pub fn offers(&self, page_shift: u8) -> bool {
        page_shift < 64 && self.page_sizes & (1 << page_shift) != 0
    }
}

/// The first error since the last PE reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrLog {
    pub ioba: u64,
    pub info: ErrInfo,
    pub count: u64,
}

/// The driver.
pub struct Driver {
    pub b: Box<dyn Backend>,
    pub alloc: PageAlloc,
    pub ident: Ident,
    pub windows: [Option<Window>; 2],
    /// Notes a case leaves for the report.
    pub notes: Vec<String>,
}

impl Driver {
    /// Reads the ID registers; touches no state.
    pub fn probe(mut b: Box<dyn Backend>) -> Result<Driver, String> {
        let id = b.mmio_read64(TCE_ID);
        if id as u32 != ID_MAGIC {
            return Err(format!(
                "TCE_ID reads {id:#x}: no \"TCE1\" ({ID_MAGIC:#x}) in bits 31:0 on {}",
                b.name()
            ));
        }
        let windows = ((id >> 32) & 0xff) as usize;
        if !(1..=2).contains(&windows) {
            return Err(format!("TCE_ID says {windows} windows (1 or 2 expected)"));
        }
        let ident = Ident {
            id,
            windows,
            page_sizes: b.mmio_read64(TCE_PAGE_SIZES),
        };
        let alloc = PageAlloc::new(b.mem_base(), b.mem_size());
        Ok(Driver {
            b,
            alloc,
            ident,
            windows: [None, None],
            notes: Vec::new(),
        })
    }

    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// A fresh start: PE reset, both TVEs disabled, the TCE cache killed, the allocator emptied.
    pub fn reset(&mut self) -> Result<(), String> {
        self.pe_reset();
        for w in 0..self.ident.windows {
            self.disable_window(w)?;
        }
        self.kill_all();
        self.alloc.reset();
        Ok(())
    }

    // ---- EEH ----

    /// Writes TCE_PE_CTRL.reset: unfreezes the PE and clears its error log.
    pub fn pe_reset(&mut self) {
        self.b.mmio_write64(TCE_PE_CTRL, PE_CTRL_RESET);
    }

    pub fn pe_state(&mut self) -> u64 {
        self.b.mmio_read64(TCE_PE_STATE)
    }

    pub fn frozen(&mut self) -> bool {
        self.pe_state() & PE_STATE_FROZEN != 0
    }

    /// Whether the unit freezes the PE on errors (else it only reports them).
    pub fn freeze_mode(&mut self) -> bool {
        self.pe_state() & PE_STATE_EEH_FREEZE != 0
    }

    pub fn err_log(&mut self) -> ErrLog {
        ErrLog {
            ioba: self.b.mmio_read64(TCE_ERR_IOBA),
            info: ErrInfo::decode(self.b.mmio_read64(TCE_ERR_INFO)),
            count: self.b.mmio_read64(TCE_ERR_COUNT),
        }
    }

    /// Whether the unit caches TCEs, from the configuration the backend knows (`None`: unknown).
    pub fn caching(&self) -> Option<bool> {
        let opts = self.b.iommu_options()?;
        opts.parse::<iommu::tce::TceConfig>()
            .ok()
            .map(|c| c.caching)
    }

    // ---- TCE cache ----

    pub fn kill_all(&mut self) {
        self.b.mmio_write64(TCE_KILL, KILL_ALL);
    }

    /// Kills the cached TCEs of IOBAs `[start, end)`.
    pub fn kill_range(&mut self, start: u64, end: u64) {
        self.b.mmio_write64(TCE_KILL_START, start);
        self.b.mmio_write64(TCE_KILL_END, end);
        self.b.mmio_write64(TCE_KILL, KILL_RANGE);
    }

    // ---- windows ----

    /// Writes TVE `w`'s registers as given (CFG last) and returns TVE_STATUS. No checks: for the
    /// validation tests too.
    pub fn program_tve(&mut self, w: usize, table: u64, cfg: &WindowCfg, enable: bool) -> u64 {
        self.b.mmio_write64(tve(w, TVE_CFG), 0);
        self.b.mmio_write64(tve(w, TVE_TABLE), table);
        self.b.mmio_write64(tve(w, TVE_WINDOW_BASE), cfg.base);
        self.b.mmio_write64(tve(w, TVE_WINDOW_SIZE), cfg.size);
        self.b.mmio_write64(
            tve(w, TVE_CFG),
            tve_cfg(enable, cfg.levels, cfg.page_shift, cfg.table_shift),
        );
        self.b.mmio_read64(tve(w, TVE_STATUS))
    }

    pub fn disable_window(&mut self, w: usize) -> Result<(), String> {
        self.b.mmio_write64(tve(w, TVE_CFG), 0);
        let st = self.b.mmio_read64(tve(w, TVE_STATUS));
        if st & STATUS_ENABLED != 0 {
            return Err(format!("TVE{w}: STATUS {st:#x} still enabled after CFG=0"));
        }
        self.windows[w] = None;
        Ok(())
    }

    /// Allocates a zeroed top-level table, programs TVE `w` with it, checks TVE_STATUS says enabled and
    /// kills the TCE cache (a new table replaces whatever the cache remembers of the window).
    pub fn enable_window(&mut self, w: usize, cfg: WindowCfg) -> Result<(), String> {
        if w >= self.ident.windows {
            return Err(format!(
                "no TVE{w}: the unit has {} windows",
                self.ident.windows
            ));
        }
        let bits = u64::from(cfg.levels) * u64::from(cfg.bits_per_level());
        if bits < 64 && cfg.entries() > 1 << bits {
            return Err(format!(
                "{cfg:?}: {} TCEs do not fit {} levels of {} bits",
                cfg.entries(),
                cfg.levels,
                cfg.bits_per_level()
            ));
        }
        let tsize = 1u64 << cfg.table_shift;
        let table = zalloc(&mut *self.b, &mut self.alloc, tsize, tsize.min(1 << 16))?;
        let st = self.program_tve(w, table, &cfg, true);
        if st & STATUS_ENABLED == 0 || st & STATUS_CONFIG_ERROR != 0 {
            return Err(format!(
                "TVE{w} refused {cfg:?} with table {table:#x}: STATUS {st:#x} (error code {:#x})",
                (st >> 8) & 0xff
            ));
        }
        let liobn = self.b.mmio_read64(tve(w, TVE_LIOBN)) as u32;
        self.kill_all();
        self.windows[w] = Some(Window {
            index: w,
            cfg,
            table,
            liobn,
            tables: BTreeMap::new(),
        });
        Ok(())
    }

    pub fn window(&self, w: usize) -> Result<&Window, String> {
        self.windows
            .get(w)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("window {w} is not enabled"))
    }

    /// Physical address of the TCE for `iova` in window `w`; lower-level tables are allocated (and linked with
    /// R|W) on the way when `alloc`, else a missing level gives `None`.
    pub fn tce_addr(&mut self, w: usize, iova: u64, alloc: bool) -> Result<Option<u64>, String> {
        let win = self.window(w)?.clone();
        let cfg = win.cfg;
        if !cfg.contains(iova) {
            return Err(format!(
                "IOVA {iova:#x} is outside window {w} ({:#x}..={:#x})",
                cfg.base,
                cfg.last()
            ));
        }
        let idx = (iova - cfg.base) >> cfg.page_shift;
        let levels = cfg.level_indices(idx);
        let b = cfg.bits_per_level();
        let mut table = win.table;
        for (depth, &n) in levels.iter().enumerate() {
            let entry = table + n * 8;
            if depth + 1 == levels.len() {
                return Ok(Some(entry));
            }
            let below = cfg.levels as usize - 1 - depth; // levels still below this entry's table
            let key = (
                (depth + 1) as u8,
                idx.checked_shr(below as u32 * b).unwrap_or(0),
            );
            let raw = self.read_be64(entry)?;
            table = if raw & (TCE_READ | TCE_WRITE) != 0 {
                raw & TCE_RPN_MASK
            } else if alloc {
                let tsize = 1u64 << cfg.table_shift;
                let t = zalloc(&mut *self.b, &mut self.alloc, tsize, tsize.min(1 << 16))?;
                self.write_be64(entry, t | TCE_READ | TCE_WRITE)?;
                if let Some(win) = self.windows[w].as_mut() {
                    win.tables.insert(key, t);
                }
                t
            } else {
                return Ok(None);
            };
        }
        Err("a window without levels".into())
    }

    /// Maps the page of `iova` to the page at `pa` with `perms` (TCE_READ / TCE_WRITE). No cache kill.
    pub fn map(&mut self, w: usize, iova: u64, pa: u64, perms: u64) -> Result<(), String> {
        let page = self.window(w)?.cfg.page_size();
        if !pa.is_multiple_of(page) {
            return Err(format!(
                "{pa:#x} is not aligned to the {page:#x}-byte TCE page"
            ));
        }
        let at = self
            .tce_addr(w, iova, true)?
            .ok_or("no TCE slot after allocation")?;
        self.write_be64(at, pa | (perms & (TCE_READ | TCE_WRITE)))
    }

    /// Writes a raw TCE (any value) for `iova`.
    pub fn set_raw_tce(&mut self, w: usize, iova: u64, raw: u64) -> Result<(), String> {
        let at = self
            .tce_addr(w, iova, true)?
            .ok_or("no TCE slot after allocation")?;
        self.write_be64(at, raw)
    }

    /// The TCE for `iova` as stored in memory (0 when a level is missing).
    pub fn read_tce(&mut self, w: usize, iova: u64) -> Result<u64, String> {
        match self.tce_addr(w, iova, false)? {
            Some(at) => self.read_be64(at),
            None => Ok(0),
        }
    }

    /// Big-endian u64 at `pa` (TCE tables are big-endian whatever the CPU).
    pub fn read_be64(&mut self, pa: u64) -> Result<u64, String> {
        let mut b = [0u8; 8];
        self.b.mem_read(pa, &mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    pub fn write_be64(&mut self, pa: u64, v: u64) -> Result<(), String> {
        self.b.mem_write(pa, &v.to_be_bytes())
    }

    /// A zeroed buffer of `size` bytes aligned to `align` in the driver's RAM window.
    pub fn buffer(&mut self, size: u64, align: u64) -> Result<u64, String> {
        zalloc(&mut *self.b, &mut self.alloc, size, align)
    }

    /// The windows TVE_STATUS says are enabled, read back from the TVEs: (window, base, size).
    pub fn read_back_windows(&mut self) -> Vec<(usize, u64, u64)> {
        let mut v = Vec::new();
        for w in 0..self.ident.windows {
            if self.b.mmio_read64(tve(w, TVE_STATUS)) & STATUS_ENABLED != 0 {
                let base = self.b.mmio_read64(tve(w, TVE_WINDOW_BASE));
                let size = self.b.mmio_read64(tve(w, TVE_WINDOW_SIZE));
                v.push((w, base, size));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_split_is_most_significant_first() {
        let cfg = WindowCfg {
            levels: 3,
            page_shift: 12,
            table_shift: 12,
            base: 0,
            size: 1 << 32,
        };
        assert_eq!(cfg.bits_per_level(), 9);
        // idx = 0b000000011_000000010_000000001
        assert_eq!(cfg.level_indices((3 << 18) | (2 << 9) | 1), [3, 2, 1]);
        assert_eq!(cfg.level_indices(0xfffff), [3, 511, 511]);
        let one = WindowCfg { levels: 1, ..cfg };
        assert_eq!(one.level_indices(0x1ff), [0x1ff]);
        assert!(cfg.contains(0xffff_ffff) && !cfg.contains(1 << 32));
        assert_eq!(cfg.entries(), 1 << 20);
    }
}
