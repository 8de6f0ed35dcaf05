//! `nested-dma`: DMA through guest-built stage-1 tables over the IOAS (stage 2) lands in the right buffers,
//! every byte checked, with 4 KiB, 2 MiB and 1 GiB stage-1 pages; the IOMMU sets the accessed/dirty flags the
//! use implies.
//!
//! - 4 KiB: a 16 KiB copy from four read-only stage-1 pages into four pages mapped in reverse order, then an
//!   unaligned fill across them.
//! - 2 MiB: stage-1 2 MiB leaves onto 2 MiB IOAS ranges (stage 2 maps them with whatever pages the kernel
//!   chose): fill one, copy it to the other.
//! - 1 GiB: one stage-1 1 GiB leaf onto a 1 GiB-aligned IOAS range where only three pages are mapped (first,
//!   middle, last); DMA touches only those. Without CAP.FL1GP the PS bit of a PDPTE is reserved: the DMA must
//!   fault with reason 0x72 instead.

use super::super::super::context::Context;
use super::super::super::dma_engine::{compare, fill_byte, pattern_bytes};
use super::super::super::dmabuf::{DmaBuffer, HUGE_2M, PAGE};
use super::super::super::report::Report;
use super::super::common::kmsg_mark;
use super::super::copy::{buffer_from_iova_view, PAGES};
use super::ad::{self, Used};
use super::setup::{Nest, Tables};
use super::stage1::{LeafFlags, SIZE_1G, SIZE_2M, SIZE_4K};
use super::{expect_fault, filled, with_nest, Expected, FS_RESERVED};

pub const SRC_S1: u64 = 0x1_0000_0000;
pub const DST_S1: u64 = 0x1_0010_0000;
pub const SRC_IOAS: u64 = 0x7100_0000;
pub const DST_IOAS: u64 = 0x7110_0000;
pub const BIG_A_S1: u64 = 0x1_0020_0000;
pub const BIG_B_S1: u64 = 0x1_0040_0000;
pub const BIG_A_IOAS: u64 = 0x7200_0000;
pub const BIG_B_IOAS: u64 = 0x7240_0000;
pub const GIGA_S1: u64 = 0x1_4000_0000;
pub const GIGA_IOAS: u64 = 0x80_0000_0000;
/// Offsets inside the 1 GiB page that are mapped in stage 2 (first, middle, last page).
pub const GIGA_OFFSETS: [u64; 3] = [0, 0x1234_5000, SIZE_1G - PAGE];

const _: () = assert!(
    SRC_S1.is_multiple_of(SIZE_2M)
        && BIG_A_S1.is_multiple_of(SIZE_2M)
        && BIG_B_S1.is_multiple_of(SIZE_2M)
        && BIG_A_IOAS.is_multiple_of(SIZE_2M)
        && BIG_B_IOAS.is_multiple_of(SIZE_2M)
        && GIGA_S1.is_multiple_of(SIZE_1G)
        && GIGA_IOAS.is_multiple_of(SIZE_1G)
        && DST_S1 + PAGES as u64 * PAGE <= BIG_A_S1
        && BIG_A_S1 + SIZE_2M <= BIG_B_S1
        && BIG_B_S1 + SIZE_2M <= GIGA_S1
);

/// The buffers of the three parts, mapped in the IOAS and in stage 1 before the device is attached (tables are
/// complete before the IOMMU ever sees them: no invalidation needed).
struct Buffers {
    src: DmaBuffer,
    dst: DmaBuffer,
    data: Vec<u8>,
    big_a: DmaBuffer,
    big_b: DmaBuffer,
    giga: Vec<DmaBuffer>,
}

fn prepare(n: &Nest, t: &mut Tables, r: &mut Report) -> Result<Buffers, String> {
    let len = PAGES * PAGE as usize;
    let data = pattern_bytes(0x5a, len);
    let mut src = DmaBuffer::new(len, PAGE as usize)?;
    src.as_mut_slice().copy_from_slice(&data);
    let dst = DmaBuffer::new(len, PAGE as usize)?;
    n.map(&src, SRC_IOAS)?;
    n.map(&dst, DST_IOAS)?;
    for i in 0..PAGES as u64 {
        t.map(
            SRC_S1 + i * PAGE,
            SRC_IOAS + i * PAGE,
            SIZE_4K,
            LeafFlags::RO,
        )?;
        let back = PAGES as u64 - 1 - i;
        t.map(
            DST_S1 + i * PAGE,
            DST_IOAS + back * PAGE,
            SIZE_4K,
            LeafFlags::RW,
        )?;
    }
    let big = HUGE_2M as usize;
    let big_a = DmaBuffer::new(big, big)?;
    let big_b = DmaBuffer::new(big, big)?;
    n.map(&big_a, BIG_A_IOAS)?;
    n.map(&big_b, BIG_B_IOAS)?;
    t.map(BIG_A_S1, BIG_A_IOAS, SIZE_2M, LeafFlags::RW)?;
    t.map(BIG_B_S1, BIG_B_IOAS, SIZE_2M, LeafFlags::RW)?;
    let giga: Vec<DmaBuffer> = GIGA_OFFSETS
        .iter()
        .map(|_| DmaBuffer::new(PAGE as usize, PAGE as usize))
        .collect::<Result<_, _>>()?;
    for (p, off) in giga.iter().zip(GIGA_OFFSETS) {
        n.map(p, GIGA_IOAS + off)?;
    }
    t.map(GIGA_S1, GIGA_IOAS, SIZE_1G, LeafFlags::RW)?;
    r.diag(format!(
        "S1 {SRC_S1:#x} -> IOAS {SRC_IOAS:#x} (4 KiB, read-only), S1 {DST_S1:#x} -> IOAS {DST_IOAS:#x} \
         (4 KiB, reversed), S1 {BIG_A_S1:#x}/{BIG_B_S1:#x} -> IOAS {BIG_A_IOAS:#x}/{BIG_B_IOAS:#x} (2 MiB), \
         S1 {GIGA_S1:#x} -> IOAS {GIGA_IOAS:#x} (1 GiB; stage 2 only at +{:#x}, +{:#x}, +{:#x})",
        GIGA_OFFSETS[0],
        GIGA_OFFSETS[1],
        GIGA_OFFSETS[2]
    ));
    Ok(Buffers {
        src,
        dst,
        data,
        big_a,
        big_b,
        giga,
    })
}

fn run_small(n: &Nest, t: &Tables, b: &Buffers, r: &mut Report) -> Result<(), String> {
    let e = n.s.engine();
    let len = b.data.len() as u64;
    let c0 = e.completions()?;
    e.copy(SRC_S1, DST_S1, len)?
        .expect_done("nested 4 KiB copy", len, c0)?;
    let mut view = b.data.clone();
    compare(
        "nested 4 KiB copy destination",
        &b.dst.snapshot(),
        &buffer_from_iova_view(&view),
    )?;
    compare("nested 4 KiB copy source", &b.src.snapshot(), &b.data)?;
    let (off, flen, pat) = (5usize, 2 * PAGE as usize + 77, 0x0bad_cafe_f00d_1234u64);
    let c0 = e.completions()?;
    e.fill(DST_S1 + off as u64, flen as u64, pat)?.expect_done(
        "nested unaligned fill",
        flen as u64,
        c0,
    )?;
    for (i, v) in view[off..off + flen].iter_mut().enumerate() {
        *v = fill_byte(pat, i);
    }
    compare(
        "nested fill destination",
        &b.dst.snapshot(),
        &buffer_from_iova_view(&view),
    )?;
    for i in 0..PAGES as u64 {
        r.fail_all(ad::check(t, "4 KiB source", SRC_S1 + i * PAGE, Used::Read));
        r.fail_all(ad::check(
            t,
            "4 KiB destination",
            DST_S1 + i * PAGE,
            Used::Written,
        ));
    }
    r.diag("4 KiB: copy and fill landed in the reverse-mapped pages; A/D flags as used");
    Ok(())
}

fn run_big(n: &Nest, t: &Tables, b: &Buffers, r: &mut Report) -> Result<(), String> {
    let e = n.s.engine();
    let len = HUGE_2M as usize;
    let pat = 0x2222_0000_ffff_1111u64;
    let c0 = e.completions()?;
    e.fill(BIG_A_S1, HUGE_2M, pat)?.expect_done(
        "fill through a stage-1 2 MiB page",
        HUGE_2M,
        c0,
    )?;
    compare(
        "2 MiB buffer A after the fill",
        &b.big_a.snapshot(),
        &filled(pat, len),
    )?;
    let c0 = e.completions()?;
    e.copy(BIG_A_S1, BIG_B_S1, HUGE_2M)?.expect_done(
        "copy between stage-1 2 MiB pages",
        HUGE_2M,
        c0,
    )?;
    compare(
        "2 MiB buffer B after the copy",
        &b.big_b.snapshot(),
        &filled(pat, len),
    )?;
    r.fail_all(ad::check(t, "2 MiB page A", BIG_A_S1, Used::Written));
    r.fail_all(ad::check(t, "2 MiB page B", BIG_B_S1, Used::Written));
    r.diag("2 MiB: fill and copy through stage-1 2 MiB pages checked");
    Ok(())
}

fn run_giga(
    ctx: &Context,
    n: &Nest,
    t: &Tables,
    b: &Buffers,
    r: &mut Report,
) -> Result<(), String> {
    let e = n.s.engine();
    if !n.caps.fl1g() {
        let mark = kmsg_mark(ctx)?;
        let o = e.fill(GIGA_S1, 64, 1)?;
        expect_fault(
            ctx,
            n.s,
            &o,
            &Expected {
                what: "1 GiB stage-1 leaf without CAP.FL1GP",
                iova: GIGA_S1,
                write: true,
                reasons: &[FS_RESERVED],
                mark,
            },
            r,
        )?;
        compare(
            "page under the refused 1 GiB leaf",
            &b.giga[0].snapshot(),
            &[0; PAGE as usize],
        )?;
        r.diag("1 GiB: CAP.FL1GP clear, the PDPTE's PS bit is reserved and refused");
        return Ok(());
    }
    for (k, (p, off)) in b.giga.iter().zip(GIGA_OFFSETS).enumerate() {
        let pat = 0x1010_1010_0000_0000u64 | k as u64;
        let c0 = e.completions()?;
        e.fill(GIGA_S1 + off, PAGE, pat)?.expect_done(
            &format!("fill at +{off:#x} in a stage-1 1 GiB page"),
            PAGE,
            c0,
        )?;
        compare(
            &format!("page at +{off:#x} of the 1 GiB page"),
            &p.snapshot(),
            &filled(pat, PAGE as usize),
        )?;
    }
    let (first, last) = (GIGA_OFFSETS[0], GIGA_OFFSETS[2]);
    let c0 = e.completions()?;
    e.copy(GIGA_S1 + first + 16, GIGA_S1 + last + 32, 1000)?
        .expect_done("copy inside the 1 GiB page", 1000, c0)?;
    let mut want = filled(0x1010_1010_0000_0002, PAGE as usize);
    want[32..1032].copy_from_slice(&b.giga[0].snapshot()[16..1016]);
    compare("last page after the copy", &b.giga[2].snapshot(), &want)?;
    r.fail_all(ad::check(t, "1 GiB page", GIGA_S1, Used::Written));
    r.diag("1 GiB: fills at the first, a middle and the last page and a copy between them checked");
    Ok(())
}

fn body(ctx: &Context, n: &mut Nest, r: &mut Report) -> Result<(), String> {
    let mut t = n.tables()?;
    let b = prepare(n, &mut t, r)?;
    n.attach_tables(&t)?;
    r.diag(n.describe(&t));
    if !ad::untouched(&t, SRC_S1) || !ad::untouched(&t, GIGA_S1) {
        r.fail("stage-1 entries have A/D set before any DMA (the tables were built clear)");
    }
    run_small(n, &t, &b, r)?;
    run_big(n, &t, &b, r)?;
    run_giga(ctx, n, &t, &b, r)
}

pub fn run(ctx: &Context) -> Report {
    with_nest(ctx, |n, r| body(ctx, n, r))
}

#[cfg(test)]
mod tests {
    use super::super::stage1::{index, Stage1, VecStore};
    use super::*;

    #[test]
    fn layout_shares_tables_where_expected() {
        let mut t = Stage1::new(VecStore::new(32), 0x7000_0000, 4).unwrap();
        for i in 0..PAGES as u64 {
            t.map(
                SRC_S1 + i * PAGE,
                SRC_IOAS + i * PAGE,
                SIZE_4K,
                LeafFlags::RO,
            )
            .unwrap();
            t.map(
                DST_S1 + i * PAGE,
                DST_IOAS + (3 - i) * PAGE,
                SIZE_4K,
                LeafFlags::RW,
            )
            .unwrap();
        }
        t.map(BIG_A_S1, BIG_A_IOAS, SIZE_2M, LeafFlags::RW).unwrap();
        t.map(BIG_B_S1, BIG_B_IOAS, SIZE_2M, LeafFlags::RW).unwrap();
        t.map(GIGA_S1, GIGA_IOAS, SIZE_1G, LeafFlags::RW).unwrap();
        // PML4 + PDPT + PD + one PT shared by SRC and DST (one 2 MiB region); the 2 MiB and 1 GiB leaves
        // need no further tables.
        assert_eq!(t.used_pages(), 4);
        assert_eq!(index(SRC_S1, 3), 4);
        assert_eq!(index(GIGA_S1, 3), 5);
        let w = t.walk(GIGA_S1 + GIGA_OFFSETS[1] + 0x123);
        assert_eq!(w.steps.len(), 2);
        assert_eq!(
            w.result.unwrap().output,
            GIGA_IOAS + GIGA_OFFSETS[1] + 0x123
        );
        let w = t.walk(DST_S1 + PAGE);
        assert_eq!(w.result.unwrap().output, DST_IOAS + 2 * PAGE);
        assert!(w.result.unwrap().write);
        assert!(!t.walk(SRC_S1).result.unwrap().write);
    }
}
