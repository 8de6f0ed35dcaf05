//! `translate-probe`: the device's translate probe (DMA_CMD_TRANSLATE) returns, for a mapped IOVA, the
//! guest-physical address the guest kernel pinned behind it (read from /proc/self/pagemap), the leaf page size
//! and the mapping's permissions; a read-only mapping grants no write, an unmapped IOVA grants nothing.

use super::super::context::Context;
use super::super::dma_engine::{status_name, Xlate};
use super::super::dmabuf::{DmaBuffer, HUGE_2M, PAGE};
use super::super::iommufd::MapPerms;
use super::super::report::Report;
use super::common::{map_buf, unmap, with_session};
use super::session::{expected, Session};
use pci::test_device::regs::{STATUS_DONE, STATUS_FAULT, XLATE_PERM_READ, XLATE_PERM_WRITE};

pub const RW_IOVA: u64 = 0x6000_0000;
pub const RO_IOVA: u64 = 0x6010_0000;
pub const NONE_IOVA: u64 = 0x6020_0000;
pub const BIG_IOVA: u64 = 0x6040_0000;

// The probe IOVAs are distinct and the 2 MiB one is aligned.
const _: () = assert!(
    RW_IOVA + 2 * PAGE <= RO_IOVA
        && RO_IOVA + PAGE <= NONE_IOVA
        && NONE_IOVA < BIG_IOVA
        && BIG_IOVA.is_multiple_of(HUGE_2M)
);

/// CAP.SLLPS bit for 2 MiB second-stage pages.
pub const CAP_SLLPS_2M: u64 = 1 << 34;

/// Checks one successful probe.
pub fn check_xlate(what: &str, x: &Xlate, phys: u64, size: u64, perms: u32) -> Vec<String> {
    let mut errs = Vec::new();
    if x.status != STATUS_DONE {
        errs.push(format!(
            "{what}: status {} ({}), expected DONE",
            x.status,
            status_name(x.status)
        ));
        return errs;
    }
    if x.out != phys {
        errs.push(format!(
            "{what}: XLATE_OUT {:#x}, pagemap says {phys:#x}",
            x.out
        ));
    }
    if x.size != size {
        errs.push(format!(
            "{what}: XLATE_SIZE {:#x}, expected {size:#x}",
            x.size
        ));
    }
    if x.perms & (XLATE_PERM_READ | XLATE_PERM_WRITE) != perms {
        errs.push(format!(
            "{what}: XLATE_PERMS {:#x}, expected R/W bits {perms:#x}",
            x.perms
        ));
    }
    errs
}

/// A probe that must not grant `perm`: either refused or granted without it.
pub fn check_denied(what: &str, x: &Xlate, perm: u32) -> Vec<String> {
    match x.status {
        STATUS_FAULT => vec![],
        STATUS_DONE if x.perms & perm == 0 => vec![],
        STATUS_DONE => vec![format!("{what}: granted perms {:#x}", x.perms)],
        s => vec![format!("{what}: status {s} ({})", status_name(s))],
    }
}

fn probes(s: &Session, cap: u64, r: &mut Report) -> Result<(), String> {
    let e = s.engine();
    let pm = &s.pagemap;
    let rw = DmaBuffer::new(2 * PAGE as usize, PAGE as usize)?;
    let ro = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    map_buf(s, &rw, RW_IOVA, MapPerms::RW)?;
    map_buf(s, &ro, RO_IOVA, MapPerms::RO)?;
    let cases = [
        (
            "read probe of a RW page",
            RW_IOVA + 0x123,
            false,
            &rw,
            0x123usize,
            XLATE_PERM_READ | XLATE_PERM_WRITE,
        ),
        (
            "write probe of a RW page",
            RW_IOVA + 0x1ff8,
            true,
            &rw,
            0x1ff8,
            XLATE_PERM_READ | XLATE_PERM_WRITE,
        ),
        (
            "read probe of a RO page",
            RO_IOVA + 0x40,
            false,
            &ro,
            0x40,
            XLATE_PERM_READ,
        ),
    ];
    for (what, iova, write, buf, off, perms) in cases {
        let (x, _) = e.translate(iova, write)?;
        let phys = buf.phys_addr(pm, off)?;
        r.diag(format!(
            "{what}: {iova:#x} -> {:#x} size {:#x} perms {:#x}",
            x.out, x.size, x.perms
        ));
        r.fail_all(check_xlate(what, &x, phys, PAGE, perms));
    }
    let (x, _) = e.translate(RO_IOVA, true)?;
    r.fail_all(check_denied(
        "write probe of a RO page",
        &x,
        XLATE_PERM_WRITE,
    ));
    let (x, _) = e.translate(NONE_IOVA, false)?;
    r.fail_all(check_denied(
        "probe of an unmapped IOVA",
        &x,
        XLATE_PERM_READ | XLATE_PERM_WRITE,
    ));

    // 2 MiB: a large page only when the pinned memory happens to be one (THP) and CAP.SLLPS allows it.
    let big = DmaBuffer::new(HUGE_2M as usize, HUGE_2M as usize)?;
    map_buf(s, &big, BIG_IOVA, MapPerms::RW)?;
    let base = big.phys_addr(pm, 0)?;
    let contiguous = big.phys_contiguous(pm)?;
    let large = contiguous && base % HUGE_2M == 0 && cap & CAP_SLLPS_2M != 0;
    let size = if large { HUGE_2M } else { PAGE };
    let off = 0x12_3456usize;
    let (x, _) = e.translate(BIG_IOVA + off as u64, false)?;
    r.diag(format!(
        "2 MiB buffer at {base:#x} ({}contiguous): probe size {:#x}, expected {size:#x}",
        if contiguous { "" } else { "not " },
        x.size
    ));
    r.fail_all(check_xlate(
        "probe in the 2 MiB mapping",
        &x,
        big.phys_addr(pm, off)?,
        size,
        XLATE_PERM_READ | XLATE_PERM_WRITE,
    ));
    unmap(s, s.ioas, RW_IOVA, 2 * PAGE)?;
    unmap(s, s.ioas, RO_IOVA, PAGE)?;
    unmap(s, s.ioas, BIG_IOVA, HUGE_2M)
}

pub fn run(ctx: &Context) -> Report {
    let cap = match expected(ctx) {
        Ok(i) => i.id_registers.first().copied().unwrap_or(0),
        Err(e) => return Report::failure(e),
    };
    with_session(ctx, |s, r| probes(s, cap, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(status: u32, out: u64, size: u64, perms: u32) -> Xlate {
        Xlate {
            status,
            out,
            size,
            perms,
        }
    }

    #[test]
    fn probe_must_match_pagemap_size_and_perms() {
        assert!(check_xlate(
            "t",
            &x(STATUS_DONE, 0x1234_5123, PAGE, 3),
            0x1234_5123,
            PAGE,
            3
        )
        .is_empty());
        // An execute bit beside R/W does not matter.
        assert!(check_xlate("t", &x(STATUS_DONE, 0x10, PAGE, 7), 0x10, PAGE, 3).is_empty());
        let e = check_xlate("t", &x(STATUS_DONE, 0x11, HUGE_2M, 1), 0x10, PAGE, 3);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("XLATE_OUT 0x11, pagemap says 0x10"));
        let e = check_xlate("t", &x(STATUS_FAULT, 0, 0, 0), 0x10, PAGE, 3);
        assert_eq!(e, vec!["t: status 2 (FAULT), expected DONE"]);
    }

    #[test]
    fn denied_means_refused_or_without_the_permission() {
        assert!(check_denied("t", &x(STATUS_FAULT, 0, 0, 0), XLATE_PERM_WRITE).is_empty());
        assert!(check_denied(
            "t",
            &x(STATUS_DONE, 0, 0, XLATE_PERM_READ),
            XLATE_PERM_WRITE
        )
        .is_empty());
        assert_eq!(
            check_denied("t", &x(STATUS_DONE, 0, 0, 3), XLATE_PERM_WRITE).len(),
            1
        );
        assert_eq!(check_denied("t", &x(4, 0, 0, 0), XLATE_PERM_WRITE).len(), 1);
    }
}
