//! The RTAS calls of Dynamic DMA Windows (LoPAR "ibm,query-pe-dma-window",
//! "ibm,create-pe-dma-window", "ibm,remove-pe-dma-window", "ibm,reset-pe-dma-window"; QEMU
//! hw/ppc/spapr_rtas_ddw.c; the caller is Linux arch/powerpc/platforms/pseries/iommu.c query_ddw /
//! create_ddw / remove_dma_window / reset_dma_window).
//!
//! Inputs and outputs are 32-bit RTAS cells; the result is `[status, outputs...]` with negative
//! statuses as two's-complement u32 (-3 = 0xffff_fffd).
//!
//! | call | inputs | outputs after status |
//! |---|---|---|
//! | query | config_addr, BUID hi, BUID lo | windows available, largest block hi, lo (TCEs), page size mask, migration mask (0) |
//! | create | config_addr, BUID hi, BUID lo, page shift, window shift | LIOBN, bus offset hi, lo |
//! | remove | LIOBN | — |
//! | reset | config_addr, BUID hi, BUID lo | — |
//!
//! | condition | status |
//! |---|---|
//! | success | 0 |
//! | wrong number of inputs, BUID not this PHB's, unknown call | -3 (parameter error) |
//! | create: page shift not offered or not expressible, window shift < page shift, window too large (> 2^45 TCEs or past 2^64) | -3 |
//! | create: two windows exist already (QEMU: "windows == SPAPR_PCI_DMA_MAX_WINDOWS" -> hw_error_exit) | -1 (hardware error) |
//! | create: no room for it in the bus address space, or the pool cannot hold its top-level table | -1 |
//! | remove: LIOBN not an enabled window | -3 |
//!
//! Query uses the 6-output form (LoPAR 2.8; `ibm,ddw-extensions` index 2 = 1, see
//! [`DDW_EXTENSIONS`]) so the largest block is 64 bits; like QEMU it reports all ones, because
//! tables are allocated lazily and the pool only limits mappings, not windows.

use super::config::TceConfig;
use super::state::State;
use super::window::{Window, DMA64_START, HV_MAX_INDEX_BITS, MAX_WINDOWS};
use crate::mem::DmaMemory;

pub const RTAS_SUCCESS: i32 = 0;
pub const RTAS_HARDWARE_ERROR: i32 = -1;
pub const RTAS_PARAMETER_ERROR: i32 = -3;

pub const QUERY: &str = "ibm,query-pe-dma-window";
pub const CREATE: &str = "ibm,create-pe-dma-window";
pub const REMOVE: &str = "ibm,remove-pe-dma-window";
pub const RESET: &str = "ibm,reset-pe-dma-window";

/// RTAS tokens of the four calls (the device tree's `ibm,ddw-applicable` holds query, create and
/// remove; `ibm,ddw-extensions` holds reset). The numbers are this VMM's choice.
pub const RTAS_CALLS: [(&str, u32); 4] = [
    (QUERY, 0x2020),
    (CREATE, 0x2021),
    (REMOVE, 0x2022),
    (RESET, 0x2023),
];

/// `ibm,ddw-extensions`: [count = 2, reset-pe-dma-window token, query output size = 1 (6
/// outputs)] (Linux DDW_EXT_SIZE / DDW_EXT_RESET_DMA_WIN / DDW_EXT_QUERY_OUT_SIZE).
pub const DDW_EXTENSIONS: [u32; 3] = [2, 0x2023, 1];

/// The PHB's BUID (QEMU SPAPR_PCI_BASE_BUID for PHB 0).
pub const TCE_BUID: u64 = 0x0800_0000_2000_0000;

/// The name of an RTAS token.
pub fn rtas_name(token: u32) -> Option<&'static str> {
    RTAS_CALLS
        .iter()
        .find(|(_, t)| *t == token)
        .map(|(n, _)| *n)
}

/// LoPAR "IO Page Sizes" bits of ibm,query-pe-dma-window (Linux iommu_get_page_shift: 4K, 64K,
/// 16M, 32M, 64M, 128M, 256M, 16G, then 2M "out of order"), as page shifts.
pub const QUERY_PAGE_SHIFTS: [u8; 9] = [12, 16, 24, 25, 26, 27, 28, 34, 21];

/// The query mask of the offered page sizes (1 GiB has no bit: offered to the hardware view only).
pub fn query_mask(page_sizes: u64) -> u32 {
    QUERY_PAGE_SHIFTS
        .iter()
        .enumerate()
        .filter(|(_, s)| page_sizes & (1u64 << **s) != 0)
        .fold(0, |m, (bit, _)| m | 1 << bit)
}

/// The status as an RTAS cell.
pub fn cell(s: i32) -> u32 {
    s as u32
}

type RResult = Result<Vec<u32>, i32>;

fn check_buid(args: &[u32], n: usize) -> Result<(), i32> {
    if args.len() != n {
        return Err(RTAS_PARAMETER_ERROR);
    }
    let buid = u64::from(args[1]) << 32 | u64::from(args[2]);
    if buid != TCE_BUID {
        return Err(RTAS_PARAMETER_ERROR);
    }
    Ok(())
}

fn query(st: &State, cfg: &TceConfig, args: &[u32]) -> RResult {
    check_buid(args, 3)?;
    let avail = (MAX_WINDOWS - st.enabled_count()) as u32;
    Ok(vec![
        avail,
        u32::MAX,
        u32::MAX,
        query_mask(cfg.page_sizes),
        0,
    ])
}

/// Where a new window of `size` bytes goes: QEMU puts the first window at the 32-bit window's
/// address (0) and a second at SPAPR_PCI_DMA64_START; when that is taken (the default 64-bit
/// window remains) the other place is used. `None` if neither is free.
fn placement(st: &State, size: u64) -> Option<u64> {
    let order = if st.enabled_count() == 0 {
        [0, DMA64_START]
    } else {
        [DMA64_START, 0]
    };
    order.into_iter().find(|&base| {
        let Some(last) = base.checked_add(size - 1) else {
            return false;
        };
        st.windows
            .iter()
            .filter_map(Window::range)
            .all(|r| last < r.first || base > r.last)
    })
}

fn create(st: &mut State, cfg: &TceConfig, mem: &dyn DmaMemory, args: &[u32]) -> RResult {
    check_buid(args, 5)?;
    let (page_shift, window_shift) = (args[3], args[4]);
    let offered = page_shift < 64
        && cfg.page_sizes & (1u64 << page_shift) != 0
        && QUERY_PAGE_SHIFTS.contains(&(page_shift as u8));
    if !offered || window_shift < page_shift || window_shift >= 64 {
        return Err(RTAS_PARAMETER_ERROR);
    }
    if window_shift - page_shift > HV_MAX_INDEX_BITS {
        return Err(RTAS_PARAMETER_ERROR);
    }
    let slot = st
        .windows
        .iter()
        .position(|w| !w.enabled)
        .ok_or(RTAS_HARDWARE_ERROR)?;
    let size = 1u64 << window_shift;
    let base = placement(st, size).ok_or(RTAS_HARDWARE_ERROR)?;
    st.remove_window(slot);
    let liobn = st.windows[slot].liobn;
    st.windows[slot] = Window::hypervisor(liobn, base, size, page_shift as u8);
    if !st.alloc_top(slot, mem) {
        st.remove_window(slot);
        return Err(RTAS_HARDWARE_ERROR);
    }
    Ok(vec![liobn, (base >> 32) as u32, base as u32])
}

fn remove(st: &mut State, args: &[u32]) -> RResult {
    if args.len() != 1 {
        return Err(RTAS_PARAMETER_ERROR);
    }
    let w = st
        .window_by_liobn(u64::from(args[0]))
        .ok_or(RTAS_PARAMETER_ERROR)?;
    st.remove_window(w);
    Ok(vec![])
}

fn reset(st: &mut State, cfg: &TceConfig, mem: &dyn DmaMemory, args: &[u32]) -> RResult {
    check_buid(args, 3)?;
    st.restore_defaults(cfg, mem);
    Ok(vec![])
}

/// Runs one RTAS call by name. Never panics.
pub(super) fn dispatch(
    st: &mut State,
    cfg: &TceConfig,
    mem: &dyn DmaMemory,
    name: &str,
    args: &[u32],
) -> Vec<u32> {
    let r = match name {
        QUERY => query(st, cfg, args),
        CREATE => create(st, cfg, mem, args),
        REMOVE => remove(st, args),
        RESET => reset(st, cfg, mem, args),
        _ => Err(RTAS_PARAMETER_ERROR),
    };
    let known = RTAS_CALLS.iter().any(|(n, _)| *n == name);
    st.stats
        .rtas(if known { name } else { "unknown" }, r.is_ok());
    match r {
        Ok(out) => std::iter::once(cell(RTAS_SUCCESS)).chain(out).collect(),
        Err(s) => vec![cell(s)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_mask_bits() {
        let all = super::super::config::supported_mask();
        // 4K 0x1, 64K 0x2, 16M 0x4, 256M 0x40, 2M 0x100.
        assert_eq!(query_mask(all), 0x147);
        assert_eq!(query_mask(1 << 12), 1);
        assert_eq!(query_mask(1 << 30), 0, "1 GiB has no query bit");
        assert_eq!(rtas_name(0x2023), Some(RESET));
        assert_eq!(rtas_name(7), None);
        assert_eq!(DDW_EXTENSIONS[1], RTAS_CALLS[3].1);
    }

    use crate::tce::tests::unit;
    const HI: u32 = (TCE_BUID >> 32) as u32;
    const LO: u32 = TCE_BUID as u32;
    const P: u32 = RTAS_PARAMETER_ERROR as u32;
    const HW: u32 = RTAS_HARDWARE_ERROR as u32;

    #[test]
    fn at_most_two_windows_and_the_architected_failures() {
        let (t, _) = unit("tce,pool=0x100000+0x10000", 0x20_0000);
        assert_eq!(t.rtas(QUERY, &[0x1800, HI, LO]), [0, 0, !0, !0, 0x147, 0]);
        assert_eq!(
            t.rtas(CREATE, &[0x1800, HI, LO, 16, 30]),
            [HW],
            "two windows exist"
        );
        assert_eq!(
            t.rtas(CREATE, &[0x1800, HI, LO, 13, 30]),
            [P],
            "page size not offered"
        );
        assert_eq!(t.rtas(CREATE, &[0x1800, HI, LO, 64, 70]), [P]);
        assert_eq!(t.rtas(CREATE, &[0x1800, HI, LO, 21, 20]), [P]);
        assert_eq!(
            t.rtas(CREATE, &[0x1800, HI, LO, 12, 58]),
            [P],
            "46 index bits"
        );
        assert_eq!(t.rtas(CREATE, &[0x1800, HI, LO, 21, 64]), [P]);
        assert_eq!(t.rtas(REMOVE, &[0x8000_0000]), [0]);
        assert_eq!(t.rtas(REMOVE, &[0x8000_0000]), [P]);
        assert_eq!(t.rtas(REMOVE, &[]), [P]);
        assert_eq!(t.rtas(QUERY, &[0x1800, HI, LO])[1], 1);
        // Second window while the default 64-bit one stays: placed at 0, LIOBN of the free slot.
        assert_eq!(
            t.rtas(CREATE, &[0x1800, HI, LO, 16, 31]),
            [0, 0x8000_0000, 0, 0]
        );
        assert_eq!(
            t.rtas(CREATE, &[0x1800, HI, LO, 16, 31]),
            [HW],
            "a third window"
        );
        assert_eq!(t.permitted_ranges(0).windows().len(), 2);
        assert_eq!(t.permitted_ranges(0).windows()[0].last, 0x7fff_ffff);
        // Both removed: the next window goes at 0 (QEMU's first-window address).
        assert_eq!(t.rtas(REMOVE, &[0x8000_0000]), [0]);
        assert_eq!(t.rtas(REMOVE, &[0x8000_0001]), [0]);
        assert!(t.permitted_ranges(0).windows().is_empty());
        assert_eq!(
            t.rtas(CREATE, &[0x1800, HI, LO, 24, 40]),
            [0, 0x8000_0000, 0, 0]
        );
        assert_eq!(
            t.rtas(CREATE, &[0x1800, HI, LO, 24, 40]),
            [0, 0x8000_0001, 0x0800_0000, 0]
        );
        assert_eq!(t.rtas(RESET, &[0x1800, HI, LO]), [0]);
        assert_eq!(t.permitted_ranges(0), crate::tce::tests::seed_ranges());
        let s = t.stats();
        assert_eq!(s.rtas_calls[CREATE], 10);
        assert_eq!(s.rtas_failures, 9);
    }

    #[test]
    fn bad_buids_argument_counts_and_names() {
        let (t, _) = unit("tce,pool=0x100000+0x10000", 0x20_0000);
        assert_eq!(t.rtas(QUERY, &[0x1800, HI, LO + 1]), [P]);
        assert_eq!(t.rtas(QUERY, &[0x1800, HI]), [P]);
        assert_eq!(
            t.rtas(RESET, &[0x1800, HI, LO, 1]),
            [P],
            "no limited-address-mode extension"
        );
        assert_eq!(t.rtas("ibm,get-config-addr-info2", &[1, 2, 3]), [P]);
        assert_eq!(t.stats().rtas_calls["unknown"], 1);
    }

    #[test]
    fn an_empty_pool_refuses_create_with_a_hardware_error() {
        let (t, _) = unit("tce", 0x10000);
        assert_eq!(t.rtas(REMOVE, &[0x8000_0001]), [0]);
        assert_eq!(t.rtas(CREATE, &[0x1800, HI, LO, 21, 40]), [HW]);
        assert_eq!(
            t.permitted_ranges(0).windows().len(),
            1,
            "nothing half-created"
        );
    }

    #[test]
    fn rtas_never_panics() {
        let (t, _) = unit("tce,pool=0x100000+0x4000", 0x20_0000);
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..2000 {
            let name = [QUERY, CREATE, REMOVE, RESET, "x"][(next() % 5) as usize];
            let n = (next() % 7) as usize;
            let args: Vec<u32> = (0..n)
                .map(|i| match (i, next() % 4) {
                    (1, 0) => HI,
                    (2, 0) => LO,
                    (_, 1) => next() % 70,
                    (_, 2) => 0x8000_0000 | (next() & 3),
                    _ => next(),
                })
                .collect();
            let r = t.rtas(name, &args);
            assert!(!r.is_empty());
            assert!(t.permitted_ranges(0).windows().len() <= 2);
        }
    }
}
