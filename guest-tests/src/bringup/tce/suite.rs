//! The shared TCE assertions: named cases run in-process against the model (`cargo test`, tests/tce_harness.rs)
//! and in the guest over /dev/mem (`guest::tce`). Every case starts from [`Driver::reset`] (PE reset, both TVEs
//! disabled, TCE cache killed) and must leave the PE unfrozen.
//!
//! EEH: in freeze mode the first bad DMA freezes the PE, and while it is frozen the machine makes the test
//! device's BAR0 read all ones and drops its writes — so the device's own result registers are read back
//! after the PE reset, and "further DMA is blocked" is checked in memory.

use pci::test_device::regs::{
    FAULT_ACCESS_READ, FAULT_ACCESS_WRITE, ID_MAGIC as TESTDEV_ID, REG_DMA_FAULT_ACCESS,
    REG_DMA_FAULT_IOVA, REG_DMA_FAULT_REASON, REG_DMA_STATUS, REG_ID, STATUS_FAULT,
    XLATE_PERM_READ, XLATE_PERM_WRITE,
};

use super::super::backend::Backend;
use super::super::cases::{Case, CaseDriver, Outcome};
use super::super::ram_checks::{verify_bytes, verify_fill, verify_zero};
use super::super::testdev::{self, pattern_byte, DmaResult};
use super::driver::{Driver, WindowCfg, KNOWN_PAGE_SHIFTS};
use super::regs::*;
use iommu::tce::reason;
use iommu::tce::regs::tve_error;

/// Every case starts from [`Driver::reset`]; a PE left frozen afterwards fails it (and is reset).
impl CaseDriver for Driver {
    fn backend(&mut self) -> &mut dyn Backend {
        &mut *self.b
    }

    fn notes(&mut self) -> &mut Vec<String> {
        &mut self.notes
    }

    fn start_case(&mut self) -> Result<(), String> {
        self.reset().map_err(|e| format!("reset: {e}"))
    }

    fn finish_case(&mut self, result: Result<Outcome, String>) -> Result<Outcome, String> {
        if !self.frozen() {
            return result;
        }
        self.pe_reset();
        result.and(Err("the PE was left frozen".into()))
    }
}

/// Every case, in order.
pub const CASES: &[Case<Driver>] = &[
    Case { name: "id", summary: "TCE_ID \"TCE1\" with 2 windows, offered page sizes, EEH mode, TVE LIOBNs, nothing frozen after reset", run: id },
    Case { name: "one-level-4k", summary: "1 GiB window at 0 with a one-level table of 4K TCEs: fill/copy land on the TCEs' pages, every byte; probe = TCE", run: one_level_4k },
    Case { name: "multi-level", summary: "3-level table (4 KiB level tables, lazy lower levels): DMA across level boundaries and at the window's last page", run: multi_level },
    Case { name: "big-pages", summary: "64K and 2M TCE pages in a window at bus offset 0x800000000000000: DMA across pages, probe size and offset", run: big_pages },
    Case { name: "readonly", summary: "read-only TCE: the device reads it, a write faults (EEH: frozen / reported) with the write bit in TCE_ERR_INFO", run: readonly },
    Case { name: "kill", summary: "TCE rewritten in memory: stale until TCE_KILL (if the unit caches); range kill of other IOBAs keeps it, range/all kill drop it", run: kill },
    Case { name: "ranges", summary: "enabled windows read back from the TVEs and equal the permitted ranges; first/last IOBA translate, one past faults", run: ranges },
    Case { name: "tve-validate", summary: "TVE refuses page sizes not offered, bad levels/table sizes, windows too big for their index bits or overlapping", run: tve_validate },
    Case { name: "eeh-outside", summary: "DMA outside both windows: PE frozen, TCE_ERR_* right, BAR0 all ones, DMA blocked; PE reset clears it, DMA works", run: eeh_outside },
    Case { name: "eeh-invalid", summary: "an invalid TCE and a multi-level entry pointing outside RAM freeze the PE (or report) with their reasons", run: eeh_invalid },
];

/// The seed's default windows as (LIOBN, bus offset, size): what the unit comes up with.
pub const SEED_WINDOWS: [(u32, u64, u64); 2] = [
    (0x8000_0000, 0, 1 << 30),
    (0x8000_0001, DMA64_START, 1 << 45),
];

/// Checks the windows the unit came up with, before any case reprograms the TVEs: the seed's two windows,
/// enabled, with their LIOBNs, 4K pages in window 0 and the configured `page64` in window 1, nothing frozen;
/// and, read back from the TVEs, they equal the permitted ranges `published` by the VMM (and the model's,
/// when the backend can ask it). Returns notes.
pub fn check_boot_windows(
    d: &mut Driver,
    published: Option<Vec<(u64, u64)>>,
) -> Result<Vec<String>, String> {
    let back = d.read_back_windows();
    let want: Vec<(usize, u64, u64)> = SEED_WINDOWS
        .iter()
        .enumerate()
        .map(|(w, &(_, base, size))| (w, base, size))
        .collect();
    if back != want {
        return Err(format!(
            "the TVEs came up as {back:x?}, expected the seed's windows {want:x?}"
        ));
    }
    let page64 = match d.b.iommu_options() {
        Some(o) => Some(
            o.parse::<iommu::tce::TceConfig>()
                .map_err(|e| format!("options {o:?}: {e}"))?
                .page64_shift,
        ),
        None => None,
    };
    for (w, &(liobn, _, _)) in SEED_WINDOWS.iter().enumerate() {
        let got = d.b.mmio_read64(tve(w, TVE_LIOBN));
        if got != u64::from(liobn) {
            return Err(format!("TVE{w}_LIOBN {got:#x}, expected {liobn:#x}"));
        }
        let shift = ((d.b.mmio_read64(tve(w, TVE_CFG)) >> 8) & 0xff) as u8;
        let want_shift = if w == 0 { Some(12) } else { page64 };
        if want_shift.is_some_and(|s| s != shift) || !d.ident.offers(shift) {
            return Err(format!(
                "TVE{w} page shift {shift}, expected {want_shift:?} (offered {:#x})",
                d.ident.page_sizes
            ));
        }
    }
    if d.frozen() {
        return Err(format!("frozen at boot: TCE_PE_STATE {:#x}", d.pe_state()));
    }
    let ranges: Vec<(u64, u64)> = back.iter().map(|&(_, b, s)| (b, b + (s - 1))).collect();
    let mut notes = vec![format!("boot windows {ranges:x?}")];
    for (who, r) in [
        ("published", published),
        ("the model's", d.b.iommu_permitted_ranges(sid(d))),
    ] {
        match r {
            Some(r) if r != ranges => {
                return Err(format!(
                    "{who} permitted ranges {r:x?} differ from the TVEs' windows {ranges:x?}"
                ))
            }
            Some(_) => notes.push(format!("{who} permitted ranges equal the windows")),
            None => {}
        }
    }
    Ok(notes)
}

// ---- helpers ----

const K4: u64 = 0x1000;
const RW: u64 = TCE_READ | TCE_WRITE;
/// The seed's 64-bit window bus offset (QEMU SPAPR_PCI_DMA64_START).
pub const DMA64_START: u64 = 0x0800_0000_0000_0000;

fn sid(d: &Driver) -> u32 {
    d.b.testdev_sid()
}

fn win0_1level() -> WindowCfg {
    // The seed's 32-bit window: 1 GiB at 0 of 4 KiB pages; one level of 2^18 TCEs = a 2 MiB table.
    WindowCfg {
        levels: 1,
        page_shift: 12,
        table_shift: 21,
        base: 0,
        size: 1 << 30,
    }
}

fn win0_3level() -> WindowCfg {
    WindowCfg {
        levels: 3,
        page_shift: 12,
        table_shift: 12,
        base: 0,
        size: 1 << 32,
    }
}

fn fill(d: &mut Driver, iova: u64, len: u64, pattern: u64) -> DmaResult {
    testdev::fill(&mut *d.b, iova, len, pattern, None)
}

fn fill_ok(d: &mut Driver, iova: u64, len: u64, pattern: u64) -> Result<(), String> {
    fill(d, iova, len, pattern).expect_done(&format!("fill {iova:#x}+{len:#x}"))
}

fn probe(d: &mut Driver, iova: u64, write: bool) -> DmaResult {
    testdev::translate(&mut *d.b, iova, write, None)
}

/// The translate probe (read) of `iova` must give `pa`, a page of `size` bytes and `perms`.
fn expect_probe(d: &mut Driver, iova: u64, pa: u64, size: u64, perms: u32) -> Result<(), String> {
    expect_probe_as(d, iova, false, pa, size, perms)
}

/// [`expect_probe`] with a write probe when `write`.
fn expect_probe_as(
    d: &mut Driver,
    iova: u64,
    write: bool,
    pa: u64,
    size: u64,
    perms: u32,
) -> Result<(), String> {
    let r = probe(d, iova, write);
    if !r.done() || r.xlate_out != pa || r.xlate_size != size || r.xlate_perms != perms {
        return Err(format!(
            "probe {iova:#x}: expected {pa:#x} size {size:#x} perms {perms:#x}, got out {:#x} size {:#x} perms {:#x} ({r})",
            r.xlate_out, r.xlate_size, r.xlate_perms
        ));
    }
    Ok(())
}

/// The device's result registers as they are (no new command).
fn last_result(d: &mut Driver) -> (u32, u64, u32, u32) {
    let b = &mut *d.b;
    (
        b.testdev_read32(REG_DMA_STATUS),
        b.testdev_read64(REG_DMA_FAULT_IOVA),
        b.testdev_read32(REG_DMA_FAULT_REASON),
        b.testdev_read32(REG_DMA_FAULT_ACCESS),
    )
}

/// What a bad DMA must leave behind.
struct BadDma {
    what: &'static str,
    iova: u64,
    write: bool,
    reason: u8,
    /// The window the IOBA falls in (`None`: outside both).
    window: Option<usize>,
}

/// A page the case mapped and may DMA to, to show DMA is blocked while frozen and works after the reset.
struct Probe {
    iova: u64,
    pa: u64,
}

/// Checks the PE after the bad DMA `r`: frozen (freeze mode) or only reported (report mode), the error log,
/// BAR0 all ones and DMA blocked while frozen; then resets the PE and checks the device's own result, a clean
/// log, BAR0 and DMA working again.
fn expect_bad_dma(d: &mut Driver, r: DmaResult, bad: &BadDma, ok: &Probe) -> Result<(), String> {
    let what = bad.what;
    let want_info = ErrInfo {
        reason: bad.reason,
        source: sid(d) as u16,
        write: bad.write,
        valid: true,
        window: bad.window,
    };
    let log = d.err_log();
    if log.ioba != bad.iova || log.info != want_info || log.count == 0 {
        return Err(format!(
            "{what}: TCE_ERR_IOBA {:#x} INFO {} COUNT {}; expected IOBA {:#x} INFO {want_info}, COUNT >= 1",
            log.ioba, log.info, log.count, bad.iova
        ));
    }
    let state = d.pe_state();
    let frozen_mode = d.freeze_mode();
    if frozen_mode {
        if state & PE_STATE_FROZEN == 0 || (state >> PE_STATE_REASON_SHIFT) as u8 != bad.reason {
            return Err(format!(
                "{what}: TCE_PE_STATE {state:#x}, expected FROZEN with reason {:#x}",
                bad.reason
            ));
        }
        if log.count != 1 {
            return Err(format!(
                "{what}: TCE_ERR_COUNT {} after one bad DMA",
                log.count
            ));
        }
        // The device's registers read all ones while its PE is frozen: the status of the command too.
        if r.status != u32::MAX {
            return Err(format!(
                "{what}: the device's status read {:#x} while frozen, expected all ones",
                r.status
            ));
        }
        let id = d.b.testdev_read32(REG_ID);
        let id64 = d.b.testdev_read64(REG_ID);
        if id != u32::MAX || id64 != u64::MAX {
            return Err(format!(
                "{what}: BAR0 ID reads {id:#x} / {id64:#x} while frozen, expected all ones"
            ));
        }
        // Further DMA is blocked: a fill of a mapped page changes nothing.
        let before = {
            let mut v = vec![0u8; K4 as usize];
            d.b.mem_read(ok.pa, &mut v)?;
            v
        };
        let _ = fill(d, ok.iova, K4, 0x5151_5151_5151_5151);
        verify_bytes(d, ok.pa, &before).map_err(|e| format!("{what}: DMA while frozen: {e}"))?;
        if !d.frozen() || d.err_log().ioba != bad.iova {
            return Err(format!(
                "{what}: the PE unfroze or the first error changed without a reset"
            ));
        }
    } else {
        if state & PE_STATE_FROZEN != 0 {
            return Err(format!("{what}: report mode froze the PE: {state:#x}"));
        }
        if r.status != STATUS_FAULT
            || r.fault_iova != bad.iova
            || r.fault_reason != u32::from(bad.reason)
        {
            return Err(format!(
                "{what}: expected a device fault at {:#x} reason {:#x}, got {r}",
                bad.iova, bad.reason
            ));
        }
        if d.b.testdev_read32(REG_ID) != TESTDEV_ID {
            return Err(format!("{what}: BAR0 unreadable in report mode"));
        }
    }
    d.pe_reset();
    let state = d.pe_state();
    let log = d.err_log();
    if state & PE_STATE_FROZEN != 0 || log.info.valid || log.count != 0 {
        return Err(format!(
            "{what}: after PE reset: STATE {state:#x}, ERR_INFO {} COUNT {}",
            log.info, log.count
        ));
    }
    if d.b.testdev_read32(REG_ID) != TESTDEV_ID {
        return Err(format!(
            "{what}: BAR0 ID still unreadable after the PE reset"
        ));
    }
    let (status, iova, reason, access) = last_result(d);
    let want_access = if bad.write {
        FAULT_ACCESS_WRITE
    } else {
        FAULT_ACCESS_READ
    };
    let first = status == STATUS_FAULT
        && iova == bad.iova
        && reason == u32::from(bad.reason)
        && access == want_access;
    // A machine that drops the frozen device's BAR writes (the VMM, the host backend) never started the
    // blocked fill, so the device still holds the bad DMA's fault. One that only makes BAR reads all ones
    // lets the fill start; the unit then blocks it with reason FROZEN at the mapped page.
    let blocked = frozen_mode
        && status == STATUS_FAULT
        && iova == ok.iova
        && reason == u32::from(reason::FROZEN)
        && access == FAULT_ACCESS_WRITE;
    if !first && !blocked {
        return Err(format!(
            "{what}: the device recorded status {status} iova {iova:#x} reason {reason:#x} access {access}; \
             expected a fault at {:#x} reason {:#x} access {want_access}",
            bad.iova, bad.reason
        ));
    }
    if blocked {
        d.note(format!(
            "{what}: BAR writes reached the frozen device; the unit blocked its DMA (FROZEN)"
        ));
    }
    fill_ok(d, ok.iova, K4, 0x0a0b_0c0d_0e0f_1011)
        .map_err(|e| format!("{what}: DMA after the PE reset: {e}"))?;
    verify_fill(d, ok.pa, K4, 0x0a0b_0c0d_0e0f_1011)
}

// ---- cases ----

fn id(d: &mut Driver) -> Result<Outcome, String> {
    let ident = d.ident;
    if ident.windows != 2 {
        return Err(format!(
            "TCE_ID {:#x}: {} windows, expected 2",
            ident.id, ident.windows
        ));
    }
    if !ident.offers(12) {
        return Err(format!("TCE_PAGE_SIZES {:#x} lacks 4K", ident.page_sizes));
    }
    let known = KNOWN_PAGE_SHIFTS.iter().fold(0u64, |m, s| m | 1 << s);
    if ident.page_sizes & !known != 0 {
        return Err(format!(
            "TCE_PAGE_SIZES {:#x} offers shifts outside {KNOWN_PAGE_SHIFTS:?}",
            ident.page_sizes
        ));
    }
    let mut cfg = None;
    if let Some(opts) = d.b.iommu_options() {
        let c: iommu::tce::TceConfig = opts
            .parse()
            .map_err(|e| format!("published options {opts:?}: {e}"))?;
        if ident.page_sizes != c.page_sizes {
            return Err(format!(
                "TCE_PAGE_SIZES {:#x}, the configuration offers {:#x}",
                ident.page_sizes, c.page_sizes
            ));
        }
        cfg = Some(c);
    }
    let freeze = d.freeze_mode();
    if let Some(c) = &cfg {
        if freeze != (c.eeh == iommu::tce::EehMode::Freeze) {
            return Err(format!(
                "TCE_PE_STATE EEH mode bit {freeze}, configured {:?}",
                c.eeh
            ));
        }
    }
    let state = d.pe_state();
    if state & PE_STATE_FROZEN != 0 {
        return Err(format!("frozen after a PE reset: {state:#x}"));
    }
    let log = d.err_log();
    if log.info.valid || log.count != 0 {
        return Err(format!(
            "error log after reset: {} count {}",
            log.info, log.count
        ));
    }
    for (w, liobn) in [(0usize, 0x8000_0000u64), (1, 0x8000_0001)] {
        let got = d.b.mmio_read64(tve(w, TVE_LIOBN));
        if got != liobn {
            return Err(format!("TVE{w}_LIOBN {got:#x}, expected {liobn:#x}"));
        }
        let st = d.b.mmio_read64(tve(w, TVE_STATUS));
        if st & STATUS_ENABLED != 0 {
            return Err(format!("TVE{w} enabled after CFG=0: STATUS {st:#x}"));
        }
    }
    // ID registers are read-only.
    d.b.mmio_write64(TCE_ID, 0);
    d.b.mmio_write64(tve(0, TVE_LIOBN), 7);
    if d.b.mmio_read64(TCE_ID) != ident.id || d.b.mmio_read64(tve(0, TVE_LIOBN)) != 0x8000_0000 {
        return Err("TCE_ID or TVE_LIOBN changed on a write".into());
    }
    d.note(format!(
        "TCE_ID {:#x}, page sizes {:#x}, EEH {}, caching {:?}",
        ident.id,
        ident.page_sizes,
        if freeze { "freeze" } else { "report" },
        d.caching()
    ));
    Ok(Outcome::Pass)
}

fn one_level_4k(d: &mut Driver) -> Result<Outcome, String> {
    d.enable_window(0, win0_1level())?;
    // Four physical pages, mapped in reverse order at scattered IOBAs (first, second, middle, last page).
    let phys = d.buffer(4 * K4, K4)?;
    let guard = d.buffer(K4, K4)?;
    let iovas = [0u64, K4, 0x1234_5000, (1 << 30) - K4];
    for (i, &iova) in iovas.iter().enumerate() {
        d.map(0, iova, phys + (3 - i as u64) * K4, RW)?;
    }
    // Fill across the first two IOBA pages: they are physical pages 3 and 2.
    let p = 0x1122_3344_5566_7788;
    fill_ok(d, 0x800, 0x1000, p)?;
    verify_zero(d, phys + 3 * K4, 0x800)?;
    // Bytes 0x800..0x1000 of IOBA page 0 -> phys page 3 at +0x800; 0x1000..0x1800 -> phys page 2 at +0.
    let expect_hi: Vec<u8> = (0..0x800).map(|i| pattern_byte(p, i)).collect();
    let expect_lo: Vec<u8> = (0x800..0x1000).map(|i| pattern_byte(p, i)).collect();
    verify_bytes(d, phys + 3 * K4 + 0x800, &expect_hi)?;
    verify_bytes(d, phys + 2 * K4, &expect_lo)?;
    verify_zero(d, phys + 2 * K4 + 0x800, 0x800)?;
    // Copy IOBA 0x1234_5000 (phys page 1, filled first) to the last page (phys page 0).
    let q = 0xa5a4_a3a2_a1a0_9f9e;
    fill_ok(d, 0x1234_5000, K4, q)?;
    verify_fill(d, phys + K4, K4, q)?;
    testdev::copy(&mut *d.b, 0x1234_5000, (1 << 30) - K4, K4, None)
        .expect_done("copy to the last page")?;
    verify_fill(d, phys, K4, q)?;
    verify_zero(d, guard, K4)?;
    for (i, &iova) in iovas.iter().enumerate() {
        let pa = phys + (3 - i as u64) * K4;
        expect_probe(
            d,
            iova + 0x123,
            pa + 0x123,
            K4,
            XLATE_PERM_READ | XLATE_PERM_WRITE,
        )?;
        // The table holds exactly that TCE, big-endian.
        let raw = d.read_tce(0, iova)?;
        if raw != pa | RW {
            return Err(format!(
                "TCE of {iova:#x} reads {raw:#x}, expected {:#x}",
                pa | RW
            ));
        }
    }
    let table = d.window(0)?.table;
    let mut first = [0u8; 8];
    d.b.mem_read(table, &mut first)?;
    if first != ((phys + 3 * K4) | RW).to_be_bytes() {
        return Err(format!("TCE 0 in memory is {first:02x?}: not big-endian"));
    }
    Ok(Outcome::Pass)
}

fn multi_level(d: &mut Driver) -> Result<Outcome, String> {
    d.enable_window(0, win0_3level())?;
    let phys = d.buffer(4 * K4, K4)?;
    // Pages 511 and 512 sit in different leaf tables; 0x4000_0000 and the last page in other top entries.
    let iovas = [0x1ff_000u64, 0x200_000, 0x4000_0000, 0xffff_f000];
    for (i, &iova) in iovas.iter().enumerate() {
        d.map(0, iova, phys + i as u64 * K4, RW)?;
    }
    let lower = d.window(0)?.tables.len();
    // Second-level tables under top entries 0, 1, 3 and leaf tables (0,0), (0,1), (1,0), (3,511):
    // 0x1ff000 and 0x200000 share the second-level table, not the leaf.
    if lower != 7 {
        return Err(format!("{lower} lower-level tables allocated, expected 7"));
    }
    let p = 0x0102_0304_0506_0708;
    fill_ok(d, 0x1ff_800, 0x1000, p)?;
    let expect_a: Vec<u8> = (0..0x800).map(|i| pattern_byte(p, i)).collect();
    let expect_b: Vec<u8> = (0x800..0x1000).map(|i| pattern_byte(p, i)).collect();
    verify_zero(d, phys, 0x800)?;
    verify_bytes(d, phys + 0x800, &expect_a)?;
    verify_bytes(d, phys + K4, &expect_b)?;
    verify_zero(d, phys + K4 + 0x800, 0x800)?;
    fill_ok(d, 0x4000_0000, K4, !p)?;
    verify_fill(d, phys + 2 * K4, K4, !p)?;
    testdev::copy(&mut *d.b, 0x4000_0000, 0xffff_f000, K4, None)
        .expect_done("copy to the last page")?;
    verify_fill(d, phys + 3 * K4, K4, !p)?;
    for (i, &iova) in iovas.iter().enumerate() {
        expect_probe(
            d,
            iova + 8,
            phys + i as u64 * K4 + 8,
            K4,
            XLATE_PERM_READ | XLATE_PERM_WRITE,
        )?;
    }
    // Non-leaf entries carry the next table's address | R | W, big-endian.
    let top = d.window(0)?.table;
    let e = d.read_be64(top + 8)?;
    if e & RW != RW || e & TCE_RPN_MASK == 0 {
        return Err(format!(
            "top-level entry 1 is {e:#x}, expected a table address | R | W"
        ));
    }
    Ok(Outcome::Pass)
}

fn big_pages(d: &mut Driver) -> Result<Outcome, String> {
    let shifts: Vec<u8> = [16u8, 21]
        .into_iter()
        .filter(|&s| d.ident.offers(s))
        .collect();
    if shifts.is_empty() {
        return Ok(Outcome::Skip(
            "neither 64K nor 2M TCE pages are offered".into(),
        ));
    }
    for shift in shifts {
        d.reset()?;
        let page = 1u64 << shift;
        // 2^24 TCEs: three levels of 4 KiB tables (27 index bits); 2M pages give the seed's 2^45 window.
        let cfg = WindowCfg {
            levels: 3,
            page_shift: shift,
            table_shift: 12,
            base: DMA64_START,
            size: page << 24,
        };
        d.enable_window(1, cfg)?;
        let pa = d.buffer(2 * page, page)?;
        // Two adjacent IOBA pages mapped to physical pages in reverse, and one far away in another top entry.
        let i0 = DMA64_START + 5 * page;
        let far = DMA64_START + (page << 23) + 7 * page;
        d.map(1, i0, pa + page, RW)?;
        d.map(1, i0 + page, pa, RW)?;
        d.map(1, far, pa, TCE_READ)?;
        let p = 0x7766_5544_3322_1100 ^ u64::from(shift);
        fill_ok(d, i0 + page - 0x800, 0x1000, p)
            .map_err(|e| format!("{}K pages: {e}", page >> 10))?;
        let a: Vec<u8> = (0..0x800).map(|i| pattern_byte(p, i)).collect();
        let b: Vec<u8> = (0x800..0x1000).map(|i| pattern_byte(p, i)).collect();
        verify_bytes(d, pa + 2 * page - 0x800, &a)?;
        verify_bytes(d, pa, &b)?;
        verify_zero(d, pa + 0x800, 0x800)?;
        verify_zero(d, pa + page, 0x1000)?;
        expect_probe(
            d,
            i0 + 0x4321,
            pa + page + 0x4321,
            page,
            XLATE_PERM_READ | XLATE_PERM_WRITE,
        )?;
        expect_probe(
            d,
            i0 + page + page - 8,
            pa + page - 8,
            page,
            XLATE_PERM_READ | XLATE_PERM_WRITE,
        )?;
        expect_probe(d, far + 0x10, pa + 0x10, page, XLATE_PERM_READ)?;
        // A read through the far, read-only page sees the data.
        let dst_iova = i0 + page + 0x1000;
        testdev::copy(&mut *d.b, far, dst_iova, 0x800, None)
            .expect_done("copy from read-only page")?;
        let mut src = vec![0u8; 0x800];
        d.b.mem_read(pa, &mut src)?;
        verify_bytes(d, pa + 0x1000, &src)?;
        // A TCE whose address is not aligned to the page size is not valid: the page faults.
        let bad_tce = (pa + K4) | RW;
        {
            d.set_raw_tce(1, i0, bad_tce)?;
            d.kill_all();
            let r = fill(d, i0, 8, 1);
            expect_bad_dma(
                d,
                r,
                &BadDma {
                    what: "TCE not aligned to the page size",
                    iova: i0,
                    write: true,
                    reason: reason::MISALIGNED_TCE,
                    window: Some(1),
                },
                &Probe {
                    iova: i0 + page,
                    pa,
                },
            )?;
        }
        d.note(format!("{}K pages at {DMA64_START:#x}: ok", page >> 10));
    }
    Ok(Outcome::Pass)
}

fn readonly(d: &mut Driver) -> Result<Outcome, String> {
    d.enable_window(0, win0_1level())?;
    let phys = d.buffer(3 * K4, K4)?;
    let (ro, wo, rw) = (0x10_0000u64, 0x20_0000u64, 0x30_0000u64);
    d.map(0, ro, phys, TCE_READ)?;
    d.map(0, wo, phys + K4, TCE_WRITE)?;
    d.map(0, rw, phys + 2 * K4, RW)?;
    d.write_be64(phys, 0xfeed_face_cafe_beef)?;
    expect_probe(d, ro, phys, K4, XLATE_PERM_READ)?;
    // A read probe of the write-only page would fault (and freeze the PE): probe it for write.
    expect_probe_as(d, wo, true, phys + K4, K4, XLATE_PERM_WRITE)?;
    // Read from the read-only page works; the write-only page takes writes.
    testdev::copy(&mut *d.b, ro, rw, 8, None).expect_done("copy from read-only")?;
    verify_bytes(d, phys + 2 * K4, &0xfeed_face_cafe_beefu64.to_be_bytes())?;
    fill_ok(d, wo, K4, 0x3c3c)?;
    verify_fill(d, phys + K4, K4, 0x3c3c)?;
    let ok = Probe {
        iova: rw,
        pa: phys + 2 * K4,
    };
    let r = fill(d, ro + 0x40, 8, 0xdead);
    expect_bad_dma(
        d,
        r,
        &BadDma {
            what: "write to a read-only TCE",
            iova: ro + 0x40,
            write: true,
            reason: reason::PERMISSION,
            window: Some(0),
        },
        &ok,
    )?;
    verify_bytes(d, phys, &0xfeed_face_cafe_beefu64.to_be_bytes())?;
    let r = testdev::copy(&mut *d.b, wo + 0x80, rw, 8, None);
    expect_bad_dma(
        d,
        r,
        &BadDma {
            what: "read of a write-only TCE",
            iova: wo + 0x80,
            write: false,
            reason: reason::PERMISSION,
            window: Some(0),
        },
        &ok,
    )?;
    Ok(Outcome::Pass)
}

fn kill(d: &mut Driver) -> Result<Outcome, String> {
    let caching = d.caching();
    d.enable_window(0, win0_1level())?;
    let phys = d.buffer(4 * K4, K4)?;
    let (a, b, c, other) = (phys, phys + K4, phys + 2 * K4, phys + 3 * K4);
    let x = 0x0abc_d000u64;
    d.map(0, x, a, RW)?;
    d.map(0, x + K4, other, RW)?;
    fill_ok(d, x, K4, 1)?;
    verify_fill(d, a, K4, 1)?;
    // Rewrite the TCE in memory without a kill.
    d.map(0, x, b, RW)?;
    let stale = |d: &mut Driver, want: u64, what: &str| -> Result<(), String> {
        expect_probe(d, x, want, K4, XLATE_PERM_READ | XLATE_PERM_WRITE)
            .map_err(|e| format!("{what}: {e}"))
    };
    match caching {
        Some(true) => stale(d, a, "cached TCE before any kill")?,
        Some(false) => stale(d, b, "uncached unit: the new TCE at once")?,
        None => d.note("caching unknown: stale-entry results not asserted"),
    }
    // A range kill of other IOBAs (the next page, and the same index in the other window) keeps it.
    d.kill_range(x + K4, x + 2 * K4);
    d.kill_range(DMA64_START + x, DMA64_START + x + K4);
    if caching == Some(true) {
        stale(d, a, "after killing other IOBAs")?;
        fill_ok(d, x, K4, 2)?;
        verify_fill(d, a, K4, 2)?;
        verify_zero(d, b, K4)?;
    }
    // A range kill covering it (end exclusive, starting mid-page) drops it.
    d.kill_range(x + 0x800, x + 0x801);
    stale(d, b, "after TCE_KILL range")?;
    fill_ok(d, x, K4, 3)?;
    verify_fill(d, b, K4, 3)?;
    // The neighbour's TCE was cached too and is still right.
    fill_ok(d, x + K4, K4, 4)?;
    verify_fill(d, other, K4, 4)?;
    // Kill all.
    d.map(0, x, c, RW)?;
    if caching == Some(true) {
        stale(d, b, "rewritten again, before kill all")?;
    }
    d.kill_all();
    stale(d, c, "after TCE_KILL all")?;
    fill_ok(d, x, K4, 5)?;
    verify_fill(d, c, K4, 5)?;
    // Unmapping (TCE = 0) + kill: the IOBA faults.
    d.map(0, x, 0, 0)?;
    d.kill_range(x, x + K4);
    let r = fill(d, x, 8, 6);
    expect_bad_dma(
        d,
        r,
        &BadDma {
            what: "DMA through a killed, cleared TCE",
            iova: x,
            write: true,
            reason: reason::INVALID_TCE,
            window: Some(0),
        },
        &Probe {
            iova: x + K4,
            pa: other,
        },
    )?;
    verify_fill(d, c, K4, 5)?;
    Ok(Outcome::Pass)
}

fn ranges(d: &mut Driver) -> Result<Outcome, String> {
    let src = sid(d);
    if let Some(r) = d.b.iommu_permitted_ranges(src) {
        if !r.is_empty() {
            return Err(format!("permitted ranges with both TVEs disabled: {r:x?}"));
        }
    }
    let w0 = win0_1level();
    let w1 = WindowCfg {
        levels: 3,
        page_shift: 12,
        table_shift: 12,
        base: DMA64_START,
        size: 1 << 39,
    };
    d.enable_window(0, w0)?;
    d.enable_window(1, w1)?;
    let back = d.read_back_windows();
    let want = vec![(0, w0.base, w0.size), (1, w1.base, w1.size)];
    if back != want {
        return Err(format!("TVEs read back {back:x?}, programmed {want:x?}"));
    }
    for (w, cfg) in [(0usize, w0), (1, w1)] {
        let table = d.window(w)?.table;
        let got = (
            d.b.mmio_read64(tve(w, TVE_TABLE)),
            d.b.mmio_read64(tve(w, TVE_CFG)),
        );
        let exp = (
            table,
            tve_cfg(true, cfg.levels, cfg.page_shift, cfg.table_shift),
        );
        if got != exp {
            return Err(format!(
                "TVE{w} TABLE/CFG read back {got:x?}, programmed {exp:x?}"
            ));
        }
    }
    let want_ranges = vec![(w0.base, w0.last()), (w1.base, w1.last())];
    match d.b.iommu_permitted_ranges(src) {
        Some(r) if r != want_ranges => {
            return Err(format!("permitted ranges {r:x?}, windows {want_ranges:x?}"))
        }
        Some(_) => d.note(format!("permitted ranges = windows {want_ranges:x?}")),
        None => d.note("permitted ranges not visible here: checked by DMA at the edges"),
    }
    // The first and last page of each window translate; one byte past the end faults.
    let pages = d.buffer(4 * K4, K4)?;
    let edges = [
        w0.base,
        w0.last() & !(K4 - 1),
        w1.base,
        w1.last() & !(K4 - 1),
    ];
    for (i, &iova) in edges.iter().enumerate() {
        let w = usize::from(i >= 2);
        d.map(w, iova, pages + i as u64 * K4, RW)?;
    }
    for (i, &iova) in edges.iter().enumerate() {
        expect_probe(
            d,
            iova + 0xff8,
            pages + i as u64 * K4 + 0xff8,
            K4,
            XLATE_PERM_READ | XLATE_PERM_WRITE,
        )?;
        fill_ok(d, iova, K4, i as u64 + 1)?;
        verify_fill(d, pages + i as u64 * K4, K4, i as u64 + 1)?;
    }
    let ok = Probe {
        iova: w0.base,
        pa: pages,
    };
    for (what, iova) in [
        ("one past the 32-bit window", w0.last() + 1),
        ("one below the 64-bit window", w1.base - 1),
        ("one past the 64-bit window", w1.last() + 1),
    ] {
        let r = fill(d, iova, 1, 0x99);
        expect_bad_dma(
            d,
            r,
            &BadDma {
                what,
                iova,
                write: true,
                reason: reason::NO_WINDOW,
                window: None,
            },
            &ok,
        )?;
    }
    // Disabling window 1 leaves only window 0 permitted.
    d.disable_window(1)?;
    if d.read_back_windows() != vec![(0, w0.base, w0.size)] {
        return Err(format!(
            "after disabling TVE1: {:x?}",
            d.read_back_windows()
        ));
    }
    if let Some(r) = d.b.iommu_permitted_ranges(src) {
        if r != vec![(w0.base, w0.last())] {
            return Err(format!("permitted ranges after disabling TVE1: {r:x?}"));
        }
    }
    let r = fill(d, w1.base, 8, 0x77);
    expect_bad_dma(
        d,
        r,
        &BadDma {
            what: "DMA into the disabled window",
            iova: w1.base,
            write: true,
            reason: reason::NO_WINDOW,
            window: None,
        },
        &ok,
    )?;
    Ok(Outcome::Pass)
}

fn tve_validate(d: &mut Driver) -> Result<Outcome, String> {
    let table = d.buffer(1 << 16, 1 << 16)?;
    let good = WindowCfg {
        levels: 1,
        page_shift: 12,
        table_shift: 16,
        base: 0,
        size: 1 << 25, // 2^13 TCEs = 64 KiB
    };
    let unoffered = KNOWN_PAGE_SHIFTS
        .iter()
        .copied()
        .find(|&s| !d.ident.offers(s))
        .unwrap_or(13);
    let bad: Vec<(&str, u64, WindowCfg, u8)> = vec![
        (
            "page shift 13 (not a TCE size)",
            table,
            WindowCfg {
                page_shift: 13,
                ..good
            },
            tve_error::PAGE_SIZE,
        ),
        (
            "page shift not offered",
            table,
            WindowCfg {
                page_shift: unoffered,
                size: 1 << (u32::from(unoffered) + 4),
                ..good
            },
            tve_error::PAGE_SIZE,
        ),
        (
            "0 levels",
            table,
            WindowCfg { levels: 0, ..good },
            tve_error::LEVELS,
        ),
        (
            "6 levels",
            table,
            WindowCfg { levels: 6, ..good },
            tve_error::LEVELS,
        ),
        (
            "table size 2^11",
            table,
            WindowCfg {
                table_shift: 11,
                size: 1 << 20,
                ..good
            },
            tve_error::TABLE_SIZE,
        ),
        (
            "table size 2^31",
            table,
            WindowCfg {
                table_shift: 31,
                ..good
            },
            tve_error::TABLE_SIZE,
        ),
        (
            "unaligned table",
            table + 0x800,
            good,
            tve_error::TABLE_BASE,
        ),
        (
            "table outside RAM",
            0x7fff_ffff_0000,
            good,
            tve_error::TABLE_BASE,
        ),
        (
            "window base not page aligned",
            table,
            WindowCfg {
                base: 0x800,
                ..good
            },
            tve_error::WINDOW_BASE,
        ),
        (
            "window size not a power of two",
            table,
            WindowCfg {
                size: 3 << 20,
                ..good
            },
            tve_error::WINDOW_SIZE,
        ),
        (
            "window size 0",
            table,
            WindowCfg { size: 0, ..good },
            tve_error::WINDOW_SIZE,
        ),
        (
            "window wraps",
            table,
            WindowCfg {
                base: u64::MAX - (1 << 25) + 1,
                size: 1 << 26,
                levels: 2,
                ..good
            },
            tve_error::WINDOW_SIZE,
        ),
        (
            "window larger than its index bits",
            table,
            WindowCfg {
                size: 1 << 26,
                ..good
            },
            tve_error::INDEX_BITS,
        ),
    ];
    let mut refused = Vec::new();
    for (what, t, cfg, code) in &bad {
        let st = d.program_tve(0, *t, cfg, true);
        if st & STATUS_ENABLED != 0 || st & STATUS_CONFIG_ERROR == 0 || (st >> 8) as u8 != *code {
            return Err(format!(
                "TVE0 with {what} ({cfg:x?}, table {t:#x}): STATUS {st:#x}, expected refused with code {code:#x} ({})",
                tve_error::name(*code)
            ));
        }
        refused.push(format!("{what}: {code}"));
    }
    // Overlap: window 1 over window 0.
    d.enable_window(0, good)?;
    let st = d.program_tve(
        1,
        table,
        &WindowCfg {
            base: 1 << 24,
            size: 1 << 24,
            ..good
        },
        true,
    );
    if st & STATUS_ENABLED != 0
        || st & STATUS_CONFIG_ERROR == 0
        || (st >> 8) as u8 != tve_error::OVERLAP
    {
        return Err(format!(
            "TVE1 with a window overlapping TVE0: STATUS {st:#x}, expected OVERLAP"
        ));
    }
    refused.push(format!("overlap: {}", tve_error::OVERLAP));
    if let Some(r) = d.b.iommu_permitted_ranges(sid(d)) {
        if r != vec![(0, (1 << 25) - 1)] {
            return Err(format!(
                "a refused TVE changed the permitted ranges: {r:x?}"
            ));
        }
    }
    // A good configuration clears the error.
    let st = d.program_tve(
        1,
        table,
        &WindowCfg {
            base: 1 << 32,
            ..good
        },
        true,
    );
    if st & STATUS_ENABLED == 0 || st & STATUS_CONFIG_ERROR != 0 || (st >> 8) & 0xff != 0 {
        return Err(format!(
            "TVE1 refused a good window (or kept the error): STATUS {st:#x}"
        ));
    }
    d.note(format!("refused with codes: {}", refused.join("; ")));
    Ok(Outcome::Pass)
}

fn eeh_outside(d: &mut Driver) -> Result<Outcome, String> {
    d.enable_window(0, win0_1level())?;
    let pa = d.buffer(K4, K4)?;
    d.map(0, 0x5000, pa, RW)?;
    let ok = Probe { iova: 0x5000, pa };
    let iova = 0x1_0000_0000u64;
    let r = fill(d, iova, 8, 0x1234);
    expect_bad_dma(
        d,
        r,
        &BadDma {
            what: "write outside both windows",
            iova,
            write: true,
            reason: reason::NO_WINDOW,
            window: None,
        },
        &ok,
    )?;
    let r = testdev::copy(&mut *d.b, 0x4000_0000, 0x5000, 8, None);
    expect_bad_dma(
        d,
        r,
        &BadDma {
            what: "read just past the 32-bit window",
            iova: 0x4000_0000,
            write: false,
            reason: reason::NO_WINDOW,
            window: None,
        },
        &ok,
    )?;
    // Report mode only: several errors count; the first is the one logged.
    if !d.freeze_mode() {
        let _ = fill(d, 0x2_0000_0000, 8, 0);
        let _ = fill(d, 0x3_0000_0000, 8, 0);
        let log = d.err_log();
        if log.ioba != 0x2_0000_0000 || log.count != 2 {
            return Err(format!(
                "report mode: two errors logged as IOBA {:#x} count {}",
                log.ioba, log.count
            ));
        }
        d.pe_reset();
    }
    Ok(Outcome::Pass)
}

fn eeh_invalid(d: &mut Driver) -> Result<Outcome, String> {
    d.enable_window(0, win0_3level())?;
    let pa = d.buffer(K4, K4)?;
    d.map(0, 0x5000, pa, RW)?;
    let ok = Probe { iova: 0x5000, pa };
    // Inside the window, no TCE (the leaf table exists, the entry is 0).
    let r = fill(d, 0x6000, 8, 1);
    expect_bad_dma(
        d,
        r,
        &BadDma {
            what: "invalid (zero) TCE",
            iova: 0x6000,
            write: true,
            reason: reason::INVALID_TCE,
            window: Some(0),
        },
        &ok,
    )?;
    // A missing lower level (top-level entry 0) is an invalid TCE too.
    let r = fill(d, 0x8000_0000, 8, 1);
    expect_bad_dma(
        d,
        r,
        &BadDma {
            what: "missing lower-level table",
            iova: 0x8000_0000,
            write: true,
            reason: reason::LEVEL_INVALID,
            window: Some(0),
        },
        &ok,
    )?;
    // A top-level entry pointing outside guest RAM.
    let top = d.window(0)?.table;
    d.write_be64(top + 3 * 8, 0x7fff_ffff_f000 | RW)?;
    d.kill_all();
    let r = testdev::copy(&mut *d.b, 0xc000_0000, 0x5000, 8, None);
    expect_bad_dma(
        d,
        r,
        &BadDma {
            what: "multi-level entry pointing outside RAM",
            iova: 0xc000_0000,
            write: false,
            reason: reason::TABLE_OUTSIDE_RAM,
            window: Some(0),
        },
        &ok,
    )?;
    Ok(Outcome::Pass)
}
