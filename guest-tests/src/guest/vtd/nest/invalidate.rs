//! `nested-invalidate`: after an edit of the stage-1 tables and IOMMU_HWPT_INVALIDATE, DMA follows the new
//! tables: a leaf pointed at another buffer (page-selective, leaf-only invalidation of two entries), pointed back
//! (invalidate everything), and a page-directory entry switched to another page table (non-leaf invalidation:
//! the paging-structure caches must drop it too). Without the invalidation the IOMMU may keep using the old
//! entries (caching=on) or not (caching=off); that is not asserted.

use super::super::super::context::Context;
use super::super::super::dma_engine::compare;
use super::super::super::dmabuf::{DmaBuffer, PAGE};
use super::super::super::hwpt::S1Invalidation;
use super::super::super::report::Report;
use super::setup::Nest;
use super::stage1::{
    LeafFlags, Slot, Stage1, TableStore, FS_A, FS_ADDR_MASK, FS_D, SIZE_2M, SIZE_4K,
};
use super::{filled, with_nest};

/// S1 IOVA whose mapping is edited, and a second one 2 MiB above it (same page-table index, its own table).
pub const V: u64 = 0x2_0000_5000;
pub const V_ALT: u64 = V + SIZE_2M;
pub const A_IOAS: u64 = 0x7300_0000;
pub const B_IOAS: u64 = 0x7301_0000;

fn slot<S: TableStore>(t: &Stage1<S>, iova: u64, level: u8) -> Result<Slot, String> {
    t.slot(iova, level)
        .ok_or_else(|| format!("no level-{level} entry for {iova:#x}"))
}

fn dma(n: &Nest, pat: u64, what: &str) -> Result<(), String> {
    let e = n.s.engine();
    let c0 = e.completions()?;
    e.fill(V, PAGE, pat)?.expect_done(what, PAGE, c0)
}

fn body(n: &mut Nest, r: &mut Report) -> Result<(), String> {
    let mut t = n.tables()?;
    let a = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    let b = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    n.map(&a, A_IOAS)?;
    n.map(&b, B_IOAS)?;
    t.map(V, A_IOAS, SIZE_4K, LeafFlags::RW)?;
    t.map(V_ALT, B_IOAS, SIZE_4K, LeafFlags::RW)?;
    let h = n.attach_tables(&t)?;
    r.diag(n.describe(&t));
    let (p1, p2, p3, p4) = (
        0x1111_0000_0000_1111u64,
        0x2222_0000_0000_2222u64,
        0x3333_0000_0000_3333u64,
        0x4444_0000_0000_4444u64,
    );
    let page = PAGE as usize;

    dma(n, p1, "fill through the original leaf")?;
    compare("buffer A (original leaf)", &a.snapshot(), &filled(p1, page))?;
    compare("buffer B (original leaf)", &b.snapshot(), &vec![0; page])?;

    // Leaf -> B, leaf-only invalidation of V (and V_ALT, to pass an array of two).
    let leaf = slot(&t, V, 1)?;
    let old = t.read(leaf);
    t.write(leaf, (old & !FS_ADDR_MASK & !(FS_A | FS_D)) | B_IOAS);
    n.invalidate(
        h,
        &[
            S1Invalidation::leaves(V, 1),
            S1Invalidation::leaves(V_ALT, 1),
        ],
    )?;
    dma(n, p2, "fill after re-pointing the leaf at B")?;
    compare(
        "buffer B (leaf re-pointed)",
        &b.snapshot(),
        &filled(p2, page),
    )?;
    compare(
        "buffer A (leaf re-pointed)",
        &a.snapshot(),
        &filled(p1, page),
    )?;

    // Back to A, invalidate everything.
    t.write(leaf, (old & !(FS_A | FS_D)) | (old & FS_ADDR_MASK));
    n.invalidate(h, &[S1Invalidation::ALL])?;
    dma(n, p3, "fill after pointing the leaf back at A")?;
    compare("buffer A (leaf back)", &a.snapshot(), &filled(p3, page))?;
    compare("buffer B (leaf back)", &b.snapshot(), &filled(p2, page))?;

    // Non-leaf: V's page-directory entry takes V_ALT's page table, whose entry at V's index maps B.
    let pde = slot(&t, V, 2)?;
    let alt = t.read(slot(&t, V_ALT, 2)?);
    t.write(pde, alt);
    n.invalidate(
        h,
        &[S1Invalidation {
            addr: V & !(SIZE_2M - 1),
            npages: SIZE_2M / PAGE,
            flags: 0,
        }],
    )?;
    dma(n, p4, "fill after switching the page-directory entry")?;
    compare(
        "buffer B (page table switched)",
        &b.snapshot(),
        &filled(p4, page),
    )?;
    compare(
        "buffer A (page table switched)",
        &a.snapshot(),
        &filled(p3, page),
    )?;
    r.diag(format!(
        "HWPT {h}: leaf A->B (2 leaf entries), B->A (all), PDE -> other page table (non-leaf, 2 MiB): \
         DMA followed each edit"
    ));
    Ok(())
}

pub fn run(ctx: &Context) -> Report {
    with_nest(ctx, body)
}

#[cfg(test)]
mod tests {
    use super::super::stage1::{index, VecStore, FS_P};
    use super::*;

    #[test]
    fn switching_the_pde_reaches_b_at_the_same_index() {
        assert_eq!(index(V, 1), index(V_ALT, 1));
        assert_ne!(index(V, 2), index(V_ALT, 2));
        let mut t = Stage1::new(VecStore::new(8), 0x7000_0000, 4).unwrap();
        t.map(V, A_IOAS, SIZE_4K, LeafFlags::RW).unwrap();
        t.map(V_ALT, B_IOAS, SIZE_4K, LeafFlags::RW).unwrap();
        assert_eq!(t.walk(V).result.unwrap().output, A_IOAS);
        let pde = slot(&t, V, 2).unwrap();
        let alt = t.read(slot(&t, V_ALT, 2).unwrap());
        t.write(pde, alt);
        assert_eq!(t.walk(V + 8).result.unwrap().output, B_IOAS + 8);
        let leaf = slot(&t, V, 1).unwrap();
        assert_ne!(t.read(leaf) & FS_P, 0);
    }
}
