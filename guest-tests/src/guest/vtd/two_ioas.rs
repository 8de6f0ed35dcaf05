//! `two-ioas`: two IOAS map the same IOVA to different buffers. DMA follows the IOAS the device is attached to:
//! first the session's, then (VFIO_DEVICE_ATTACH_IOMMUFD_PT again: a replace) the second one, then back. An
//! IOVA mapped only in the second IOAS faults once the device is back on the first.

use firmware_tables::description::IommuInfo;

use super::super::context::Context;
use super::super::dma_engine::{compare, fill_byte};
use super::super::dmabuf::{DmaBuffer, PAGE};
use super::super::iommufd::MapPerms;
use super::super::report::Report;
use super::super::vfio_cdev::attach_pt;
use super::common::{pace_fault, unmap, with_session};
use super::iova::show;
use super::session::{expected, Session};
use pci::test_device::regs::FAULT_ACCESS_WRITE;

/// The IOVA both IOAS map.
pub const SHARED_IOVA: u64 = 0x5000_0000;
/// An IOVA only the second IOAS maps.
pub const ONLY_B_IOVA: u64 = 0x5010_0000;
/// An IOVA neither IOAS maps.
pub const UNMAPPED_IOVA: u64 = 0x4000_0000;

// Page aligned and on different pages.
const _: () = assert!(
    SHARED_IOVA.is_multiple_of(PAGE)
        && ONLY_B_IOVA.is_multiple_of(PAGE)
        && ONLY_B_IOVA - SHARED_IOVA >= PAGE
);

fn filled(pat: u64) -> Vec<u8> {
    (0..PAGE as usize).map(|i| fill_byte(pat, i)).collect()
}

fn two(s: &Session, info: &IommuInfo, r: &mut Report) -> Result<(), String> {
    let e = s.engine();
    let fd = &s.iommufd;
    let (a_ioas, b_ioas) = (s.ioas, fd.ioas_alloc()?);
    let a = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    let b = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    let b2 = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    fd.map(a_ioas, a.va(), PAGE, SHARED_IOVA, MapPerms::RW)?;
    fd.map(b_ioas, b.va(), PAGE, SHARED_IOVA, MapPerms::RW)?;
    fd.map(b_ioas, b2.va(), PAGE, ONLY_B_IOVA, MapPerms::RW)?;
    let zero = vec![0u8; PAGE as usize];

    let (p1, p2, p3) = (
        0x1111_1111_aaaa_aaaau64,
        0x2222_2222_bbbb_bbbbu64,
        0x3333_3333_cccc_ccccu64,
    );
    let c0 = e.completions()?;
    e.fill(SHARED_IOVA, PAGE, p1)?
        .expect_done("fill on IOAS A", PAGE, c0)?;
    compare(
        "buffer A after the fill on IOAS A",
        &a.snapshot(),
        &filled(p1),
    )?;
    compare("buffer B after the fill on IOAS A", &b.snapshot(), &zero)?;

    let hwpt = attach_pt(&s.dev, b_ioas)?;
    let (ranges, _) = fd.iova_ranges(b_ioas)?;
    // IOAS B maps nothing below SHARED_IOVA: the refusal there names the tables of B's domain.
    let stage = s.attached_stage(UNMAPPED_IOVA)?;
    let want = stage.published(info);
    r.diag(format!(
        "re-attached from IOAS {a_ioas} (HWPT {}) to IOAS {b_ioas} (HWPT {hwpt}, {} tables); its ranges {}",
        s.hwpt,
        stage.name(),
        show(&ranges)
    ));
    if ranges != want {
        r.fail(format!(
            "IOAS {b_ioas} after the attach permits {}, published {}",
            show(&ranges),
            show(want)
        ));
    }
    let c0 = e.completions()?;
    e.fill(SHARED_IOVA, PAGE, p2)?
        .expect_done("fill on IOAS B", PAGE, c0)?;
    compare(
        "buffer B after the fill on IOAS B",
        &b.snapshot(),
        &filled(p2),
    )?;
    compare(
        "buffer A after the fill on IOAS B",
        &a.snapshot(),
        &filled(p1),
    )?;
    let c0 = e.completions()?;
    e.fill(ONLY_B_IOVA, PAGE, p3)?
        .expect_done("fill of the IOVA only IOAS B maps", PAGE, c0)?;
    compare("buffer B2", &b2.snapshot(), &filled(p3))?;

    attach_pt(&s.dev, a_ioas)?;
    pace_fault();
    let o = e.fill(ONLY_B_IOVA, PAGE, p1)?;
    o.expect_fault(
        "fill of the IOVA only IOAS B maps, back on IOAS A",
        ONLY_B_IOVA,
        FAULT_ACCESS_WRITE,
    )?;
    compare(
        "buffer B2 after the refused fill",
        &b2.snapshot(),
        &filled(p3),
    )?;
    let c0 = e.completions()?;
    e.fill(SHARED_IOVA, PAGE, p3)?
        .expect_done("fill back on IOAS A", PAGE, c0)?;
    compare("buffer A back on IOAS A", &a.snapshot(), &filled(p3))?;
    compare("buffer B back on IOAS A", &b.snapshot(), &filled(p2))?;
    r.diag("DMA followed the attached IOAS: A, B, A");

    unmap(s, b_ioas, SHARED_IOVA, PAGE)?;
    unmap(s, b_ioas, ONLY_B_IOVA, PAGE)?;
    fd.destroy(b_ioas)
}

pub fn run(ctx: &Context) -> Report {
    let info = match expected(ctx) {
        Ok(i) => i.clone(),
        Err(e) => return Report::failure(e),
    };
    with_session(ctx, |s, r| two(s, &info, r))
}
