//! `dma-fault` and `dma-readonly`: DMA the IOMMU must refuse. The device reports STATUS_FAULT with the IOVA,
//! access kind and architected reason, memory stays untouched, the device keeps working afterwards, and the
//! guest's driver logs the fault (through the fault event interrupt) with the same page, direction and reason.

use super::super::context::Context;
use super::super::dma_engine::{compare, fill_byte, pattern_bytes, DmaOutcome};
use super::super::dmabuf::{DmaBuffer, PAGE};
use super::super::iommufd::MapPerms;
use super::super::report::Report;
use super::common::{
    check_fault_line, kmsg_mark, map_buf, pace_fault, unmap, wait_fault_line, with_session,
};
use super::log::scalable_mode;
use super::session::{expected, Session};
use pci::test_device::regs::{FAULT_ACCESS_READ, FAULT_ACCESS_WRITE};

/// IOVAs used here.
pub const FAULT_IOVA: u64 = 0x2000_0000;
pub const GOOD_IOVA: u64 = 0x2010_0000;
pub const UNMAPPED_IOVA: u64 = 0x2020_0000;
pub const RO_IOVA: u64 = 0x2030_0000;

/// A fault a test provokes: what it was, where, and the kernel log position before it.
pub struct Provoked<'a> {
    pub what: &'a str,
    pub iova: u64,
    pub write: bool,
    pub mark: u64,
}

/// Checks the device's fault report and the matching log line.
fn expect_logged_fault(
    ctx: &Context,
    s: &Session,
    p: &Provoked,
    o: &DmaOutcome,
    r: &mut Report,
) -> Result<(), String> {
    let what = p.what;
    let access = if p.write {
        FAULT_ACCESS_WRITE
    } else {
        FAULT_ACCESS_READ
    };
    o.expect_fault(what, p.iova, access)?;
    r.diag(format!(
        "{what}: device reports FAULT at {:#x}, reason {:#04x}, {} bytes moved",
        o.fault_iova, o.fault_reason, o.bytes
    ));
    if o.bytes != 0 {
        r.fail(format!(
            "{what}: {} bytes moved before a fault on the first byte",
            o.bytes
        ));
    }
    let scalable = expected(ctx).map(|i| scalable_mode(&i.options))?;
    let line = wait_fault_line(ctx, s, p.mark, p.iova)?;
    r.diag(format!("{what}: logged {line:?}"));
    r.fail_all(
        check_fault_line(&line, p.write, o.fault_reason, scalable)
            .into_iter()
            .map(|e| format!("{what}: {e}")),
    );
    Ok(())
}

fn unmapped(ctx: &Context, s: &Session, r: &mut Report) -> Result<(), String> {
    let e = s.engine();
    let buf = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    let good = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    map_buf(s, &buf, FAULT_IOVA, MapPerms::RW)?;
    map_buf(s, &good, GOOD_IOVA, MapPerms::RW)?;
    let pat = 0x0102_0304_0506_0708u64;
    let c0 = e.completions()?;
    e.fill(FAULT_IOVA, 64, pat)?
        .expect_done("fill while mapped", 64, c0)?;
    unmap(s, s.ioas, FAULT_IOVA, PAGE)?;
    let before = buf.snapshot();

    // Write to the unmapped page.
    let mark = kmsg_mark(ctx)?;
    let o = e.fill(FAULT_IOVA, 64, !pat)?;
    expect_logged_fault(
        ctx,
        s,
        &Provoked {
            what: "fill of an unmapped IOVA",
            iova: FAULT_IOVA,
            write: true,
            mark,
        },
        &o,
        r,
    )?;
    compare("buffer behind the unmapped IOVA", &buf.snapshot(), &before)?;

    // Mapped again, the same IOVA works at once (a fault must not leave a cached not-present entry behind).
    map_buf(s, &buf, FAULT_IOVA, MapPerms::RW)?;
    let c0 = e.completions()?;
    e.fill(FAULT_IOVA, 64, !pat)?
        .expect_done("fill after re-mapping the faulted IOVA", 64, c0)?;
    let want: Vec<u8> = (0..64).map(|i| fill_byte(!pat, i)).collect();
    compare("re-mapped buffer", &buf.snapshot()[..64], &want)?;

    // Read from an IOVA that was never mapped into a mapped page: nothing may be written.
    let good_before = good.snapshot();
    let mark = kmsg_mark(ctx)?;
    let o = e.copy(UNMAPPED_IOVA, GOOD_IOVA, 64)?;
    expect_logged_fault(
        ctx,
        s,
        &Provoked {
            what: "copy from an unmapped IOVA",
            iova: UNMAPPED_IOVA,
            write: false,
            mark,
        },
        &o,
        r,
    )?;
    compare(
        "copy destination after a source fault",
        &good.snapshot(),
        &good_before,
    )?;

    // The device still works.
    let c0 = e.completions()?;
    e.fill(GOOD_IOVA, PAGE, pat)?
        .expect_done("fill after the faults", PAGE, c0)?;
    let want: Vec<u8> = (0..PAGE as usize).map(|i| fill_byte(pat, i)).collect();
    compare("fill after the faults", &good.snapshot(), &want)
}

fn readonly(ctx: &Context, s: &Session, r: &mut Report) -> Result<(), String> {
    let e = s.engine();
    let data = pattern_bytes(0x70, PAGE as usize);
    let mut ro = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    ro.as_mut_slice().copy_from_slice(&data);
    let rw = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    map_buf(s, &ro, RO_IOVA, MapPerms::RO)?;
    map_buf(s, &rw, GOOD_IOVA, MapPerms::RW)?;

    // Reading through the read-only mapping works.
    let c0 = e.completions()?;
    e.copy(RO_IOVA, GOOD_IOVA, PAGE)?
        .expect_done("copy from the read-only mapping", PAGE, c0)?;
    compare("copy from the read-only mapping", &rw.snapshot(), &data)?;

    // Writing does not.
    let mark = kmsg_mark(ctx)?;
    let o = e.fill(RO_IOVA, PAGE, 0)?;
    expect_logged_fault(
        ctx,
        s,
        &Provoked {
            what: "fill of a read-only IOVA",
            iova: RO_IOVA,
            write: true,
            mark,
        },
        &o,
        r,
    )?;
    compare("read-only buffer after the fill", &ro.snapshot(), &data)?;

    // A copy into it reads its (good) source first, then faults on the write.
    pace_fault();
    let o = e.copy(GOOD_IOVA, RO_IOVA, 128)?;
    o.expect_fault("copy into a read-only IOVA", RO_IOVA, FAULT_ACCESS_WRITE)?;
    compare("read-only buffer after the copy", &ro.snapshot(), &data)?;
    r.diag("read-only mapping: read allowed, fill and copy into it refused");
    unmap(s, s.ioas, RO_IOVA, PAGE)?;
    unmap(s, s.ioas, GOOD_IOVA, PAGE)
}

pub fn run_fault(ctx: &Context) -> Report {
    with_session(ctx, |s, r| unmapped(ctx, s, r))
}

pub fn run_readonly(ctx: &Context) -> Report {
    with_session(ctx, |s, r| readonly(ctx, s, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iovas_are_distinct_pages() {
        let v = [FAULT_IOVA, GOOD_IOVA, UNMAPPED_IOVA, RO_IOVA];
        for (i, a) in v.iter().enumerate() {
            assert_eq!(a % PAGE, 0);
            for b in &v[i + 1..] {
                assert!(a.abs_diff(*b) >= PAGE);
            }
        }
    }

    #[test]
    fn both_fail_cleanly_without_expectations() {
        let ctx = Context {
            root: std::path::PathBuf::from("/nonexistent-guest-root"),
            expect: Err("no expect.json".into()),
            scenario: "vtd".into(),
        };
        assert!(!run_fault(&ctx).passed());
        assert!(!run_readonly(&ctx).passed());
    }
}
