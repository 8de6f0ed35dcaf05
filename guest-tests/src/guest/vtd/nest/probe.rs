//! `nested-probe`: the device's translate probe (DMA_CMD_TRANSLATE) of a nested IOVA returns the
//! guest-physical address our own stage 1 (the tables we built) and stage 2 (the IOAS mapping, resolved with
//! /proc/self/pagemap) imply, the smaller of the two page sizes, and the intersection of the rights.

use super::super::super::context::Context;
use super::super::super::dmabuf::{DmaBuffer, HUGE_2M, PAGE};
use super::super::super::report::Report;
use super::super::translate::{check_denied, check_xlate};
use super::setup::{Nest, CAP_SLLPS_2M};
use super::stage1::{LeafFlags, SIZE_1G, SIZE_2M, SIZE_4K};
use super::with_nest;
use pci::test_device::regs::{XLATE_PERM_READ, XLATE_PERM_WRITE};

pub const V_RW: u64 = 0x5_0000_0000;
pub const V_RO: u64 = 0x5_0000_1000;
pub const V_NP: u64 = 0x5_0000_2000;
pub const V_2M: u64 = 0x5_0020_0000;
pub const V_1G: u64 = 0x5_4000_0000;
pub const A_IOAS: u64 = 0x7600_0000;
pub const BIG_IOAS: u64 = 0x7620_0000;
pub const GIGA_IOAS: u64 = 0xc0_0000_0000;
/// The one page mapped under the 1 GiB leaf, and the offset probed in it.
pub const GIGA_PAGE: u64 = 0x1234_5000;
pub const GIGA_PROBE: u64 = GIGA_PAGE + 0x678;

const RW: u32 = XLATE_PERM_READ | XLATE_PERM_WRITE;

/// Stage 2's page size for a 2 MiB IOAS mapping of `buf`: 2 MiB only when the pinned memory is one aligned,
/// physically contiguous 2 MiB and CAP.SLLPS allows it (as in `translate-probe`).
fn s2_size(buf: &DmaBuffer, pagemap: &std::path::Path, cap: u64) -> Result<u64, String> {
    let base = buf.phys_addr(pagemap, 0)?;
    let large = buf.phys_contiguous(pagemap)? && base % HUGE_2M == 0 && cap & CAP_SLLPS_2M != 0;
    Ok(if large { HUGE_2M } else { PAGE })
}

fn body(n: &mut Nest, r: &mut Report) -> Result<(), String> {
    let pm = n.s.pagemap.clone();
    let a = DmaBuffer::new(2 * PAGE as usize, PAGE as usize)?;
    let big = DmaBuffer::new(HUGE_2M as usize, HUGE_2M as usize)?;
    let giga = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    n.map(&a, A_IOAS)?;
    n.map(&big, BIG_IOAS)?;
    n.map(&giga, GIGA_IOAS + GIGA_PAGE)?;
    let mut t = n.tables()?;
    t.map(V_RW, A_IOAS, SIZE_4K, LeafFlags::RW)?;
    t.map(V_RO, A_IOAS + PAGE, SIZE_4K, LeafFlags::RO)?;
    t.map(V_2M, BIG_IOAS, SIZE_2M, LeafFlags::RW)?;
    if n.caps.fl1g() {
        t.map(V_1G, GIGA_IOAS, SIZE_1G, LeafFlags::RW)?;
    }
    n.attach_tables(&t)?;
    r.diag(n.describe(&t));
    let e = n.s.engine();

    let cases = [
        (
            "read probe, RW leaf",
            V_RW + 0x123,
            false,
            a.phys_addr(&pm, 0x123)?,
            RW,
        ),
        (
            "write probe, RW leaf",
            V_RW + 0xff8,
            true,
            a.phys_addr(&pm, 0xff8)?,
            RW,
        ),
        (
            "read probe, RO leaf",
            V_RO + 0x40,
            false,
            a.phys_addr(&pm, PAGE as usize + 0x40)?,
            XLATE_PERM_READ,
        ),
    ];
    for (what, iova, write, phys, perms) in cases {
        let (x, _) = e.translate(iova, write)?;
        r.diag(format!(
            "{what}: {iova:#x} -> {:#x} size {:#x} perms {:#x} (expected {phys:#x})",
            x.out, x.size, x.perms
        ));
        r.fail_all(check_xlate(what, &x, phys, PAGE, perms));
    }
    let (x, _) = e.translate(V_RO, true)?;
    r.fail_all(check_denied("write probe, RO leaf", &x, XLATE_PERM_WRITE));
    let (x, _) = e.translate(V_NP, false)?;
    r.fail_all(check_denied("probe of an absent leaf", &x, RW));

    let off = 0x12_3456u64;
    let size = s2_size(&big, &pm, n.caps.cap)?.min(SIZE_2M);
    let (x, _) = e.translate(V_2M + off, false)?;
    r.diag(format!(
        "2 MiB stage-1 leaf: {:#x} -> {:#x} size {:#x} (expected size {size:#x})",
        V_2M + off,
        x.out,
        x.size
    ));
    r.fail_all(check_xlate(
        "probe in a 2 MiB stage-1 leaf",
        &x,
        big.phys_addr(&pm, off as usize)?,
        size,
        RW,
    ));
    if n.caps.fl1g() {
        let (x, _) = e.translate(V_1G + GIGA_PROBE, true)?;
        let phys = giga.phys_addr(&pm, (GIGA_PROBE - GIGA_PAGE) as usize)?;
        r.diag(format!(
            "1 GiB stage-1 leaf: {:#x} -> {:#x} size {:#x} (expected {phys:#x}, 4 KiB)",
            V_1G + GIGA_PROBE,
            x.out,
            x.size
        ));
        r.fail_all(check_xlate(
            "probe in a 1 GiB stage-1 leaf",
            &x,
            phys,
            PAGE,
            RW,
        ));
        let (x, _) = e.translate(V_1G, false)?;
        r.fail_all(check_denied(
            "probe under the 1 GiB leaf where stage 2 maps nothing",
            &x,
            RW,
        ));
    } else {
        r.diag("CAP.FL1GP clear: no 1 GiB stage-1 probe");
    }
    Ok(())
}

pub fn run(ctx: &Context) -> Report {
    with_nest(ctx, body)
}
