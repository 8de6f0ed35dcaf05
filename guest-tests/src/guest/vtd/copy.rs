//! `dma-copy`: the device copies and fills through the guest's own second-stage tables: 4 KiB mappings with
//! the destination pages mapped in reverse order (every page translated on its own), a fill with unaligned
//! start and length, and 2 MiB copies between a 2 MiB-aligned low IOVA and the top of the aperture. Every byte is
//! checked, and bytes outside the DMA's range must be untouched.

use super::super::context::Context;
use super::super::dma_engine::{compare, fill_byte, pattern_bytes};
use super::super::dmabuf::{DmaBuffer, HUGE_2M, PAGE};
use super::super::iommufd::MapPerms;
use super::super::report::Report;
use super::common::{map_buf, unmap, with_session};
use super::iova;
use super::session::Session;

/// IOVAs of the 4 KiB part.
pub const SRC_IOVA: u64 = 0x1000_0000;
pub const DST_IOVA: u64 = 0x1010_0000;
/// Pages in the 4 KiB part.
pub const PAGES: usize = 4;
/// Low 2 MiB-aligned IOVA of the 2 MiB part.
pub const BIG_IOVA: u64 = 0x4000_0000;

/// Buffer page that IOVA page `i` of the reversed destination maps.
pub fn reversed_page(i: usize) -> usize {
    PAGES - 1 - i
}

/// The destination buffer's contents given the bytes seen through the reversed IOVA window.
pub fn buffer_from_iova_view(view: &[u8]) -> Vec<u8> {
    let p = PAGE as usize;
    let mut out = vec![0u8; view.len()];
    for i in 0..view.len() / p {
        let b = reversed_page(i);
        out[b * p..(b + 1) * p].copy_from_slice(&view[i * p..(i + 1) * p]);
    }
    out
}

fn small(s: &Session, r: &mut Report) -> Result<(), String> {
    let len = PAGES * PAGE as usize;
    let data = pattern_bytes(0x4b, len);
    let mut src = DmaBuffer::new(len, PAGE as usize)?;
    src.as_mut_slice().copy_from_slice(&data);
    let dst = DmaBuffer::new(len, PAGE as usize)?;
    map_buf(s, &src, SRC_IOVA, MapPerms::RW)?;
    for b in 0..PAGES {
        let iova = DST_IOVA + (reversed_page(b) as u64) * PAGE;
        s.iommufd
            .map(s.ioas, dst.va() + b as u64 * PAGE, PAGE, iova, MapPerms::RW)?;
    }
    let e = s.engine();
    let c0 = e.completions()?;
    e.copy(SRC_IOVA, DST_IOVA, len as u64)?
        .expect_done("4 KiB copy", len as u64, c0)?;
    let mut view = data.clone();
    compare(
        "4 KiB copy destination",
        &dst.snapshot(),
        &buffer_from_iova_view(&view),
    )?;
    compare("4 KiB copy source", &src.snapshot(), &data)?;

    // Fill across page boundaries with an unaligned start and length.
    let (off, flen, pat) = (3usize, 2 * PAGE as usize + 100, 0x1122_3344_5566_7788u64);
    let c0 = e.completions()?;
    e.fill(DST_IOVA + off as u64, flen as u64, pat)?
        .expect_done("fill", flen as u64, c0)?;
    for (i, v) in view[off..off + flen].iter_mut().enumerate() {
        *v = fill_byte(pat, i);
    }
    compare(
        "fill destination",
        &dst.snapshot(),
        &buffer_from_iova_view(&view),
    )?;
    r.diag(format!(
        "4 KiB: copied {len} bytes into {PAGES} reverse-mapped pages, filled {flen} bytes at +{off}"
    ));
    unmap(s, s.ioas, SRC_IOVA, len as u64)?;
    unmap(s, s.ioas, DST_IOVA, len as u64)
}

fn big(s: &Session, r: &mut Report) -> Result<(), String> {
    let len = HUGE_2M as usize;
    let (ranges, _) = s.iommufd.iova_ranges(s.ioas)?;
    let high = iova::highest(&ranges, HUGE_2M, HUGE_2M)
        .ok_or_else(|| format!("no 2 MiB IOVA in {}", iova::show(&ranges)))?;
    if !iova::permits(&ranges, BIG_IOVA, HUGE_2M) {
        return Err(format!(
            "{BIG_IOVA:#x} is not permitted: {}",
            iova::show(&ranges)
        ));
    }
    let data = pattern_bytes(0x2d, len);
    let mut a = DmaBuffer::new(len, len)?;
    a.as_mut_slice().copy_from_slice(&data);
    let b = DmaBuffer::new(len, len)?;
    map_buf(s, &a, BIG_IOVA, MapPerms::RW)?;
    map_buf(s, &b, high, MapPerms::RW)?;
    for (name, buf) in [("low", &a), ("high", &b)] {
        match buf.phys_contiguous(&s.pagemap) {
            Ok(c) => r.diag(format!(
                "2 MiB {name} buffer is {}physically contiguous",
                if c { "" } else { "not " }
            )),
            Err(e) => r.diag(format!("2 MiB {name} buffer: {e}")),
        }
    }
    let e = s.engine();
    let c0 = e.completions()?;
    e.copy(BIG_IOVA, high, HUGE_2M)?
        .expect_done("2 MiB copy low -> high", HUGE_2M, c0)?;
    compare("2 MiB copy destination", &b.snapshot(), &data)?;
    let pat = 0xa5a5_0f0f_1234_5678u64;
    let c0 = e.completions()?;
    e.fill(BIG_IOVA, HUGE_2M, pat)?
        .expect_done("2 MiB fill", HUGE_2M, c0)?;
    let filled: Vec<u8> = (0..len).map(|i| fill_byte(pat, i)).collect();
    compare("2 MiB fill", &a.snapshot(), &filled)?;
    let c0 = e.completions()?;
    e.copy(high, BIG_IOVA, HUGE_2M)?
        .expect_done("2 MiB copy high -> low", HUGE_2M, c0)?;
    compare("2 MiB copy back", &a.snapshot(), &data)?;
    r.diag(format!(
        "2 MiB: copied between {BIG_IOVA:#x} and {high:#x} both ways, filled"
    ));
    unmap(s, s.ioas, BIG_IOVA, HUGE_2M)?;
    unmap(s, s.ioas, high, HUGE_2M)
}

pub fn run(ctx: &Context) -> Report {
    with_session(ctx, |s, r| {
        small(s, r)?;
        big(s, r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_view_maps_pages_back() {
        let p = PAGE as usize;
        let view: Vec<u8> = (0..PAGES * p).map(|i| (i / p) as u8).collect();
        let buf = buffer_from_iova_view(&view);
        // IOVA page 0 is the buffer's last page.
        assert_eq!(buf[(PAGES - 1) * p], 0);
        assert_eq!(buf[0], (PAGES - 1) as u8);
        assert_eq!(buffer_from_iova_view(&buf), view);
    }

    #[test]
    fn iovas_do_not_overlap() {
        let len = (PAGES as u64) * PAGE;
        assert!(SRC_IOVA + len <= DST_IOVA);
        assert!(DST_IOVA + len <= BIG_IOVA);
        assert_eq!(BIG_IOVA % HUGE_2M, 0);
    }
}
