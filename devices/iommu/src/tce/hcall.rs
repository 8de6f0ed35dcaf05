//! The sPAPR TCE hypercalls (LoPAR "Translation Control Entry" hcalls; QEMU hw/ppc/spapr_iommu.c
//! h_put_tce / h_get_tce / h_stuff_tce / h_put_tce_indirect; Linux KVM
//! arch/powerpc/kvm/book3s_64_vio.c for the stricter argument checks this model follows).
//!
//! Arguments are the guest's r4.. registers (missing ones read as 0); the result is
//! `[status, ret...]` with negative statuses as two's-complement u64 (H_PARAMETER = -4 =
//! 0xffff_ffff_ffff_fffc).
//!
//! | condition | status |
//! |---|---|
//! | success | H_SUCCESS (0) |
//! | LIOBN not an enabled window of this PE | H_PARAMETER (-4) |
//! | LIOBN of a window programmed through the hardware view (see below) | H_PARAMETER |
//! | IOBA not aligned to the window's TCE page size (KVM kvmppc_ioba_validate) | H_PARAMETER |
//! | IOBA (+ npages pages) outside the window, or the arithmetic overflows | H_PARAMETER |
//! | a TCE with R or W whose address is not page aligned, not guest RAM, or in the table pool | H_PARAMETER |
//! | H_PUT_TCE_INDIRECT: npages > 512, list not 4 KiB aligned, list not in RAM | H_PARAMETER |
//! | the pool has no room for a table level (tables are allocated on first use) | H_NO_MEM (-9) |
//! | pool memory cannot be written (a pool configured past the end of RAM) | H_HARDWARE (-1) |
//! | unknown opcode | H_FUNCTION (-2) |
//!
//! **Only hypervisor windows take hypercalls.** The TCE hcalls operate on the hypervisor's own
//! tables: LoPAR gives the partition a LIOBN for a window whose TCE table the hypervisor manages,
//! and in QEMU (spapr_tce_table) and KVM (kvmppc_spapr_tce_table) that table is host memory, never
//! the guest's. A window whose TVE the guest programmed through the hardware view has a table in
//! guest memory that the guest owns (and may shape as it likes, loops included); it is not a
//! hypervisor table, so its LIOBN is refused with H_PARAMETER, as a LIOBN without a hypervisor
//! table is. Any TVE_CFG write hands a window to the hardware view; ibm,create-pe-dma-window and
//! ibm,reset-pe-dma-window make hypervisor windows again (fresh pool tables, never shared: a pool
//! block belongs to one window until that window drops it).
//!
//! Each hcall's work is bounded by the pool, whatever npages is and whatever the guest wrote into
//! pool memory ([`super::hvtable`]): H_STUFF_TCE goes one leaf table at a time and skips missing
//! subtrees arithmetically. The hypervisor updates its TCE cache itself; because a hardware-view
//! window may read pool memory through pointers the guest chose, a hypercall that writes a
//! hypervisor table also drops the cached TCEs of the hardware-view windows (the guest cannot kill
//! for writes it did not make), so caching on and off always agree.

use super::hvtable::{self, PutError};
use super::pool::Pool;
use super::state::State;
use super::table::{valid, TCE_ADDR_MASK};
use super::window::Window;
use crate::mem::DmaMemory;

pub const H_SUCCESS: i64 = 0;
pub const H_HARDWARE: i64 = -1;
pub const H_FUNCTION: i64 = -2;
pub const H_PARAMETER: i64 = -4;
pub const H_NO_MEM: i64 = -9;

pub const H_GET_TCE: u64 = 0x1c;
pub const H_PUT_TCE: u64 = 0x20;
pub const H_STUFF_TCE: u64 = 0x138;
pub const H_PUT_TCE_INDIRECT: u64 = 0x13c;

/// Most TCEs in one H_PUT_TCE_INDIRECT list (one 4 KiB page of 8-byte TCEs; LoPAR, QEMU
/// h_put_tce_indirect, KVM kvmppc_h_put_tce_indirect).
pub const MAX_INDIRECT: u64 = 512;

/// The opcodes and their names.
pub const HCALLS: [(u64, &str); 4] = [
    (H_GET_TCE, "H_GET_TCE"),
    (H_PUT_TCE, "H_PUT_TCE"),
    (H_STUFF_TCE, "H_STUFF_TCE"),
    (H_PUT_TCE_INDIRECT, "H_PUT_TCE_INDIRECT"),
];

pub fn hcall_name(opcode: u64) -> Option<&'static str> {
    HCALLS.iter().find(|(o, _)| *o == opcode).map(|(_, n)| *n)
}

/// A status as the register value.
pub fn status(s: i64) -> u64 {
    s as u64
}

type HResult<T> = Result<T, i64>;

/// The hypervisor window of `liobn` and the first TCE index of `npages` pages at `ioba`, all
/// checked. A hardware-view window is not a hypervisor table: H_PARAMETER (module docs).
fn target(st: &State, liobn: u64, ioba: u64, npages: u64) -> HResult<(usize, u64)> {
    let wi = st.window_by_liobn(liobn).ok_or(H_PARAMETER)?;
    let w = &st.windows[wi];
    if !w.hypervisor {
        return Err(H_PARAMETER);
    }
    let page = w.page_size();
    if page == 0 || ioba & (page - 1) != 0 || ioba < w.base {
        return Err(H_PARAMETER);
    }
    let first = w.index(ioba);
    let end = first.checked_add(npages).ok_or(H_PARAMETER)?;
    if end > w.entries() {
        return Err(H_PARAMETER);
    }
    Ok((wi, first))
}

/// LoPAR: a TCE that grants access must name a page of the partition's memory, aligned to the TCE
/// page size (KVM kvmppc_tce_validate / iommu_tce_check_gpa). The hypervisor's table pool is not
/// partition memory: a device must never be able to rewrite TCE tables. TCEs without R or W are
/// accepted as they are (KVM: "allow userspace to poison TCE table").
fn check_tce(pool: &Pool, w: &Window, mem: &dyn DmaMemory, tce: u64) -> HResult<()> {
    if !valid(tce) {
        return Ok(());
    }
    let page = w.page_size();
    let addr = tce & TCE_ADDR_MASK;
    let mut b = [0u8; 1];
    if page == 0
        || addr & (page - 1) != 0
        || mem.read(addr, &mut b).is_err()
        || pool.overlaps(addr, page)
    {
        return Err(H_PARAMETER);
    }
    Ok(())
}

fn hv_status(e: PutError) -> i64 {
    match e {
        PutError::NoMem => H_NO_MEM,
        PutError::Hardware => H_HARDWARE,
    }
}

/// Stores `value` into TCEs `first..first + n` of hypervisor window `wi` and drops their cached
/// copies (the hypervisor owns the table: it updates its cache itself).
fn store(
    st: &mut State,
    mem: &dyn DmaMemory,
    wi: usize,
    first: u64,
    n: u64,
    value: u64,
) -> HResult<()> {
    let State {
        windows,
        pool,
        cache,
        ..
    } = st;
    let win = &mut windows[wi];
    // Whatever happens below, no cached TCE of the range survives.
    if n == 1 {
        cache.invalidate(wi, first);
    } else if n > 1 {
        let (base, shift) = (win.base, u32::from(win.page_shift));
        let start = win.iova_of(first);
        let end = n
            .checked_shl(shift)
            .and_then(|len| start.checked_add(len))
            .unwrap_or(u64::MAX);
        cache.invalidate_range(
            wi,
            |i| base.wrapping_add(i.wrapping_shl(shift)),
            win.page_size(),
            start,
            end,
        );
    }
    hvtable::stuff(win, pool, mem, first, n, value).map_err(hv_status)
}

fn h_put_tce(st: &mut State, mem: &dyn DmaMemory, a: [u64; 4]) -> HResult<Vec<u64>> {
    let (liobn, ioba, tce) = (a[0], a[1], a[2]);
    let (wi, index) = target(st, liobn, ioba, 1)?;
    check_tce(&st.pool, &st.windows[wi], mem, tce)?;
    store(st, mem, wi, index, 1, tce)?;
    Ok(vec![])
}

fn h_get_tce(st: &State, mem: &dyn DmaMemory, a: [u64; 4]) -> HResult<Vec<u64>> {
    let (wi, index) = target(st, a[0], a[1], 1)?;
    let tce = hvtable::get(&st.windows[wi], mem, index).map_err(hv_status)?;
    Ok(vec![tce])
}

fn h_stuff_tce(st: &mut State, mem: &dyn DmaMemory, a: [u64; 4]) -> HResult<Vec<u64>> {
    let (liobn, ioba, value, npages) = (a[0], a[1], a[2], a[3]);
    let (wi, first) = target(st, liobn, ioba, npages)?;
    check_tce(&st.pool, &st.windows[wi], mem, value)?;
    store(st, mem, wi, first, npages, value)?;
    Ok(vec![])
}

fn h_put_tce_indirect(st: &mut State, mem: &dyn DmaMemory, a: [u64; 4]) -> HResult<Vec<u64>> {
    let (liobn, ioba, list, npages) = (a[0], a[1], a[2], a[3]);
    if npages > MAX_INDIRECT {
        return Err(H_PARAMETER);
    }
    let (wi, first) = target(st, liobn, ioba, npages)?;
    if list & 0xfff != 0 {
        return Err(H_PARAMETER);
    }
    // npages <= 512: the list is at most one page, inside the aligned page at `list`.
    let mut bytes = vec![0u8; (npages * 8) as usize];
    mem.read(list, &mut bytes).map_err(|_| H_PARAMETER)?;
    let tces: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_be_bytes(b)
        })
        .collect();
    // Validate all before writing any, as KVM kvmppc_h_put_tce_indirect does.
    for tce in &tces {
        check_tce(&st.pool, &st.windows[wi], mem, *tce)?;
    }
    for (i, tce) in tces.into_iter().enumerate() {
        store(st, mem, wi, first + i as u64, 1, tce)?;
    }
    Ok(vec![])
}

/// Decodes and runs one hypercall. Never panics, whatever the registers hold.
pub(super) fn dispatch(st: &mut State, mem: &dyn DmaMemory, opcode: u64, args: &[u64]) -> Vec<u64> {
    let mut a = [0u64; 4];
    for (slot, v) in a.iter_mut().zip(args) {
        *slot = *v;
    }
    let r = match opcode {
        H_PUT_TCE => h_put_tce(st, mem, a),
        H_GET_TCE => h_get_tce(st, mem, a),
        H_STUFF_TCE => h_stuff_tce(st, mem, a),
        H_PUT_TCE_INDIRECT => h_put_tce_indirect(st, mem, a),
        _ => Err(H_FUNCTION),
    };
    let writer = matches!(opcode, H_PUT_TCE | H_STUFF_TCE | H_PUT_TCE_INDIRECT);
    if writer && !matches!(r, Err(H_PARAMETER)) {
        // A hypervisor table may have changed (even part way through a failed call).
        st.drop_hardware_view_caches();
    }
    let ok = r.is_ok();
    st.stats.hcall(hcall_name(opcode).unwrap_or("unknown"), ok);
    match r {
        Ok(rets) => std::iter::once(status(H_SUCCESS)).chain(rets).collect(),
        Err(s) => vec![status(s)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tce::tests::unit;
    use crate::tce::window::{DMA64_START, LIOBNS};

    const L0: u64 = LIOBNS[0] as u64;
    const L1: u64 = LIOBNS[1] as u64;
    const HP: u64 = H_PARAMETER as u64;

    #[test]
    fn put_get_stuff_round_trip() {
        let (t, _) = unit("tce,pool=0x100000+0x10000", 0x20_0000);
        assert_eq!(t.hcall(H_PUT_TCE, &[L0, 0x5000, 0x8003]), [0]);
        assert_eq!(t.hcall(H_GET_TCE, &[L0, 0x5000]), [0, 0x8003]);
        assert_eq!(t.hcall(H_GET_TCE, &[L0, 0x6000]), [0, 0]);
        assert_eq!(t.hcall(H_STUFF_TCE, &[L0, 0x4000, 0, 3]), [0]);
        assert_eq!(t.hcall(H_GET_TCE, &[L0, 0x5000]), [0, 0]);
        // Stuffing a valid value maps every page to the same one (LoPAR / QEMU).
        assert_eq!(t.hcall(H_STUFF_TCE, &[L0, 0x4000, 0x9001, 2]), [0]);
        assert_eq!(t.hcall(H_GET_TCE, &[L0, 0x5000]), [0, 0x9001]);
        let s = t.stats();
        assert_eq!(s.hcalls["H_STUFF_TCE"], 2);
        assert_eq!(s.hcall_failures, 0);
    }

    #[test]
    fn every_argument_error() {
        let (t, mem) = unit("tce,pool=0x100000+0x10000", 0x20_0000);
        let cases: [(u64, [u64; 4], u64); 16] = [
            (H_PUT_TCE, [L0 + 7, 0, 0x8003, 0], HP),
            (H_PUT_TCE, [L0, 0x801, 0x8003, 0], HP),
            (H_PUT_TCE, [L0, 1 << 30, 0x8003, 0], HP),
            (H_PUT_TCE, [L1, DMA64_START + 0x1000, 0x20_0003, 0], HP),
            (H_PUT_TCE, [L1, DMA64_START, 0x20_1003, 0], HP),
            (H_PUT_TCE, [L0, 0, 0x40_0003, 0], HP),
            (H_PUT_TCE, [L0, 0, 0x10_0003, 0], HP),
            (H_GET_TCE, [L0, !0xfff, 0, 0], HP),
            (H_STUFF_TCE, [L0, 0x3fff_f000, 0, 2], HP),
            (H_STUFF_TCE, [L0, 0, 0, u64::MAX], HP),
            (H_PUT_TCE_INDIRECT, [L0, 0, 0x1000, 513], HP),
            (H_PUT_TCE_INDIRECT, [L0, 0, 0x1008, 1], HP),
            (H_PUT_TCE_INDIRECT, [L0, 0, 0x20_0000, 1], HP),
            (H_PUT_TCE_INDIRECT, [L0, 0x3fff_f000, 0x1000, 2], HP),
            (H_PUT_TCE_INDIRECT, [L0 + 5, 0, 0x1000, 1], HP),
            (0x4, [0; 4], H_FUNCTION as u64),
        ];
        for (op, args, want) in cases {
            assert_eq!(t.hcall(op, &args), [want], "{op:#x} {args:x?}");
        }
        // A list with one bad TCE writes nothing (KVM validates the whole list first).
        mem.write(0x2000, &0x8003u64.to_be_bytes()).unwrap();
        mem.write(0x2008, &0x40_0003u64.to_be_bytes()).unwrap();
        assert_eq!(t.hcall(H_PUT_TCE_INDIRECT, &[L0, 0, 0x2000, 2]), [HP]);
        assert_eq!(t.hcall(H_GET_TCE, &[L0, 0]), [0, 0]);
        assert_eq!(t.stats().hcall_failures, 17);
        // Missing registers read as 0: LIOBN 0 does not exist.
        assert_eq!(t.hcall(H_PUT_TCE, &[]), [HP]);
    }

    #[test]
    fn pool_exhaustion_is_h_no_mem_and_unwritable_pool_h_hardware() {
        // Two pages: the two top levels. Any mapping needs a lower level.
        let (t, _) = unit("tce,pool=0x100000+0x2000", 0x20_0000);
        assert_eq!(t.hcall(H_PUT_TCE, &[L0, 0, 0x8003]), [H_NO_MEM as u64]);
        assert_eq!(
            t.hcall(H_PUT_TCE, &[L0, 0, 0]),
            [0],
            "clearing needs nothing"
        );
        assert_eq!(t.stats().pool_pages_used, 2);
        // A pool whose second page is past the end of RAM: window 1's top level cannot be zeroed.
        let (t, _) = unit("tce,pool=0x3ff000+0x2000", 0x40_0000);
        assert_eq!(t.stats().pool_pages_used, 1);
        assert_eq!(
            t.hcall(H_PUT_TCE, &[L1, DMA64_START, 0x3]),
            [H_HARDWARE as u64],
            "the only free page cannot be zeroed"
        );
        assert_eq!(t.stats().pool_pages_used, 1, "and went back to the pool");
        assert_eq!(t.hcall(H_GET_TCE, &[L1, DMA64_START]), [0, 0]);
    }

    #[test]
    fn hardware_view_windows_take_no_hcalls() {
        let (t, mem) = unit("tce,pool=0x100000+0x10000", 0x40_0000);
        assert_eq!(t.hcall(H_PUT_TCE, &[L0, 0x1000, 0x8003]), [0]);
        // The guest reprograms window 0 through the hardware view: its own 2-level table.
        mem.write(0x3000, &0x4003u64.to_be_bytes()).unwrap();
        mem.write(0x4008, &0x9003u64.to_be_bytes()).unwrap();
        t.mmio_write(0x108, &0u64.to_le_bytes());
        t.mmio_write(0x100, &0x3000u64.to_le_bytes());
        t.mmio_write(0x108, &0x0c0c05u64.to_le_bytes());
        assert!(t.windows()[0].enabled && !t.windows()[0].hypervisor);
        assert_eq!(
            t.stats().pool_pages_used,
            1,
            "window 0's two pool tables went back (its TVE_TABLE moved); window 1's top stays"
        );
        let used = t.stats().pool_pages_used;
        let cases: [(u64, [u64; 4]); 5] = [
            (H_PUT_TCE, [L0, 0x1000, 0x8003, 0]),
            (H_PUT_TCE, [L0, 0x1000, 0, 0]),
            (H_GET_TCE, [L0, 0x1000, 0, 0]),
            (H_STUFF_TCE, [L0, 0, 0, 8]),
            (H_PUT_TCE_INDIRECT, [L0, 0, 0x5000, 1]),
        ];
        for (op, args) in cases {
            assert_eq!(t.hcall(op, &args), [HP], "{op:#x} {args:x?}");
        }
        assert_eq!(t.stats().pool_pages_used, used, "nothing allocated");
        let mut b = [0u8; 8];
        mem.read(0x4008, &mut b).unwrap();
        assert_eq!(
            u64::from_be_bytes(b),
            0x9003,
            "the guest's table is untouched"
        );
        // Window 1 is still the hypervisor's.
        assert_eq!(t.hcall(H_PUT_TCE, &[L1, DMA64_START, 0x20_0003]), [0]);
        // A TVE_CFG write alone (same table, even the same config) hands a window over too.
        let mut cfg1 = [0u8; 8];
        t.mmio_read(0x148, &mut cfg1);
        t.mmio_write(0x148, &cfg1);
        assert!(t.windows()[1].enabled && !t.windows()[1].hypervisor);
        assert_eq!(t.hcall(H_GET_TCE, &[L1, DMA64_START]), [HP]);
        // ibm,reset-pe-dma-window makes the defaults hypervisor windows again.
        let reset = t.rtas(crate::tce::rtas::RESET, &[0, 0x0800_0000, 0x2000_0000]);
        assert_eq!(reset, [0]);
        assert!(t.windows().iter().all(|w| w.hypervisor));
        assert_eq!(t.hcall(H_GET_TCE, &[L0, 0x1000]), [0, 0]);
        assert_eq!(t.hcall(H_PUT_TCE, &[L0, 0x1000, 0x8003]), [0]);
    }

    #[test]
    fn the_decoder_never_panics() {
        let (t, mem) = unit("tce,pool=0x100000+0x8000", 0x20_0000);
        // A TCE list page full of garbage.
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        mem.write(0x3000, &garbage).unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let interesting = [
            0,
            1,
            0x1000,
            0x3000,
            L0,
            L1,
            DMA64_START,
            512,
            513,
            u64::MAX,
            1 << 63,
            0x3fff_f000,
        ];
        for _ in 0..3000 {
            let op =
                [H_PUT_TCE, H_GET_TCE, H_STUFF_TCE, H_PUT_TCE_INDIRECT, 0x8][(next() % 5) as usize];
            let args: Vec<u64> = (0..(next() % 6))
                .map(|_| match next() % 3 {
                    0 => interesting[(next() % interesting.len() as u64) as usize],
                    1 => next() & 0x3f_ffff,
                    _ => next(),
                })
                .collect();
            let r = t.hcall(op, &args);
            assert!(!r.is_empty() && r.len() <= 2);
        }
        assert!(t.stats().pool_pages_used <= 8);
    }
}
