//! `nested-replace`: two nested HWPTs over the same parent with different stage-1 tables. The device is attached
//! to the first, then re-attached to the second while attached (a replace), to the plain IOAS (stage 2 only),
//! and back to the first: DMA follows whichever is attached. An IOVA only the second tables map faults on the
//! first with a first-stage reason.

use super::super::super::context::Context;
use super::super::super::dma_engine::compare;
use super::super::super::dmabuf::{DmaBuffer, PAGE};
use super::super::super::report::Report;
use super::super::common::kmsg_mark;
use super::setup::Nest;
use super::stage1::{LeafFlags, SIZE_4K};
use super::{expect_fault, filled, with_nest, Expected, FS_NOT_PRESENT};

/// S1 IOVA both tables map (to A and to B); one only the second maps (to C).
pub const V: u64 = 0x4_0000_0000;
pub const W: u64 = 0x4_0000_1000;
pub const A_IOAS: u64 = 0x7500_0000;
pub const B_IOAS: u64 = 0x7501_0000;
pub const C_IOAS: u64 = 0x7502_0000;

fn fill(n: &Nest, iova: u64, pat: u64, what: &str) -> Result<(), String> {
    let e = n.s.engine();
    let c0 = e.completions()?;
    e.fill(iova, PAGE, pat)?.expect_done(what, PAGE, c0)
}

fn body(ctx: &Context, n: &mut Nest, r: &mut Report) -> Result<(), String> {
    let page = PAGE as usize;
    let bufs: Vec<DmaBuffer> = (0..3)
        .map(|_| DmaBuffer::new(page, page))
        .collect::<Result<_, _>>()?;
    let (a, b, c) = (&bufs[0], &bufs[1], &bufs[2]);
    n.map(a, A_IOAS)?;
    n.map(b, B_IOAS)?;
    n.map(c, C_IOAS)?;
    let mut t1 = n.tables()?;
    t1.map(V, A_IOAS, SIZE_4K, LeafFlags::RW)?;
    let mut t2 = n.tables()?;
    t2.map(V, B_IOAS, SIZE_4K, LeafFlags::RW)?;
    t2.map(W, C_IOAS, SIZE_4K, LeafFlags::RW)?;
    let h1 = n.alloc_nested(&t1)?;
    let h2 = n.alloc_nested(&t2)?;
    r.diag(format!(
        "HWPT {h1}: tables at IOAS {:#x} (V -> A); HWPT {h2}: tables at IOAS {:#x} (V -> B, W -> C)",
        t1.root(),
        t2.root()
    ));
    let (p1, p2, p3, p4, p5) = (0x11u64, 0x22u64, 0x33u64, 0x44u64, 0x55u64);

    n.attach(h1)?;
    fill(n, V, p1, "fill on the first nested HWPT")?;
    compare("A on the first", &a.snapshot(), &filled(p1, page))?;

    n.attach(h2)?;
    fill(
        n,
        V,
        p2,
        "fill on the second nested HWPT (replaced while attached)",
    )?;
    fill(n, W, p3, "fill of W on the second nested HWPT")?;
    compare("B on the second", &b.snapshot(), &filled(p2, page))?;
    compare("C on the second", &c.snapshot(), &filled(p3, page))?;
    compare("A on the second", &a.snapshot(), &filled(p1, page))?;

    // Stage 2 only: the IOAS IOVA itself reaches the buffer.
    n.attach(n.s.ioas)?;
    fill(n, A_IOAS, p4, "fill of an IOAS IOVA on the plain IOAS")?;
    compare("A on the IOAS", &a.snapshot(), &filled(p4, page))?;

    n.attach(h1)?;
    fill(n, V, p5, "fill back on the first nested HWPT")?;
    compare("A back on the first", &a.snapshot(), &filled(p5, page))?;
    compare("B back on the first", &b.snapshot(), &filled(p2, page))?;
    let mark = kmsg_mark(ctx)?;
    let o = n.s.engine().fill(W, PAGE, p1)?;
    expect_fault(
        ctx,
        n.s,
        &o,
        &Expected {
            what: "W (mapped only by the second tables) on the first",
            iova: W,
            write: true,
            reasons: &[FS_NOT_PRESENT],
            mark,
        },
        r,
    )?;
    compare("C after the refused fill", &c.snapshot(), &filled(p3, page))?;
    r.diag("DMA followed the attachment: nested 1, nested 2, IOAS, nested 1");
    Ok(())
}

pub fn run(ctx: &Context) -> Report {
    with_nest(ctx, |n, r| body(ctx, n, r))
}
