//! `nested-faults`: DMA the nested translation must refuse, each with the device's report and the driver's log
//! line agreeing on page, direction and reason:
//!
//! | case | expected reason |
//! |---|---|
//! | stage-1 leaf not present | 0x71 (first-stage P clear) |
//! | stage-1 leaf with U/S clear (requests without PASID are user requests) | 0x81 |
//! | write through a read-only stage-1 leaf (the read works) | 0x85 |
//! | non-canonical input address (bit addr_width-1 set, upper bits clear) | 0x80 |
//! | stage-1 leaf onto an IOAS page that was unmapped after DMA used it | 0x79 (second-stage) |
//! | a stage-1 page table whose IOAS page was unmapped after DMA used it | 0x76 or 0x79 |
//!
//! The last two also check that unmapping in the IOAS (the nest parent) invalidates what the IOMMU cached for
//! the nested HWPT, and that re-mapping makes the same DMA work again. Faulting DMA writes nothing; the device
//! keeps working.

use super::super::super::context::Context;
use super::super::super::dma_engine::{compare, DmaOutcome};
use super::super::super::dmabuf::{DmaBuffer, PAGE};
use super::super::super::report::Report;
use super::super::common::{kmsg_mark, unmap};
use super::setup::{Nest, Tables};
use super::stage1::{LeafFlags, SIZE_4K};
use super::{
    expect_fault, filled, first_stage_reason, second_stage_reason, with_nest, Expected,
    FS_NOT_PRESENT, NESTED_FS_READ, NON_CANONICAL, SS_NOT_PRESENT, USER_SUPERVISOR, WRITE_DENIED,
};

/// S1 IOVAs (one 2 MiB region share a page table; V_T has its own).
pub const V_OK: u64 = 0x3_0000_0000;
pub const V_NP: u64 = 0x3_0000_1000;
pub const V_SUP: u64 = 0x3_0000_2000;
pub const V_RO: u64 = 0x3_0000_3000;
pub const V_S2: u64 = 0x3_0000_4000;
pub const V_T: u64 = 0x3_0020_0000;
/// IOAS IOVAs of the target pages.
pub const A_IOAS: u64 = 0x7400_0000;
pub const C_IOAS: u64 = 0x7401_0000;

const PAT: u64 = 0x5151_5151_a5a5_a5a5;

struct Case<'a> {
    what: &'a str,
    iova: u64,
    reasons: &'a [u8],
}

/// Fills 64 bytes at `c.iova`, expects the fault, and returns the device's reason.
fn provoke(ctx: &Context, n: &Nest, c: &Case, r: &mut Report) -> Result<u32, String> {
    let mark = kmsg_mark(ctx)?;
    let o: DmaOutcome = n.s.engine().fill(c.iova, 64, PAT)?;
    expect_fault(
        ctx,
        n.s,
        &o,
        &Expected {
            what: c.what,
            iova: c.iova,
            write: true,
            reasons: c.reasons,
            mark,
        },
        r,
    )?;
    Ok(o.fault_reason)
}

fn works(n: &Nest, iova: u64, pat: u64, what: &str) -> Result<(), String> {
    let e = n.s.engine();
    let c0 = e.completions()?;
    e.fill(iova, PAGE, pat)?.expect_done(what, PAGE, c0)
}

fn first_stage_cases(ctx: &Context, n: &Nest, t: &Tables, r: &mut Report) -> Result<(), String> {
    let mut reasons = Vec::new();
    reasons.push(provoke(
        ctx,
        n,
        &Case {
            what: "stage-1 leaf not present",
            iova: V_NP,
            reasons: &[FS_NOT_PRESENT],
        },
        r,
    )?);
    reasons.push(provoke(
        ctx,
        n,
        &Case {
            what: "stage-1 leaf with U/S clear",
            iova: V_SUP,
            reasons: &[USER_SUPERVISOR],
        },
        r,
    )?);
    // The read-only leaf can be read.
    let e = n.s.engine();
    let c0 = e.completions()?;
    e.copy(V_RO, V_OK + 128, 64)?
        .expect_done("copy from a read-only stage-1 leaf", 64, c0)?;
    reasons.push(provoke(
        ctx,
        n,
        &Case {
            what: "write through a read-only stage-1 leaf",
            iova: V_RO,
            reasons: &[WRITE_DENIED],
        },
        r,
    )?);
    let non_canonical = 1u64 << (t.addr_width() - 1);
    reasons.push(provoke(
        ctx,
        n,
        &Case {
            what: "non-canonical stage-1 input address",
            iova: non_canonical,
            reasons: &[NON_CANONICAL],
        },
        r,
    )?);
    for (i, &x) in reasons.iter().enumerate() {
        if i != 2 && !first_stage_reason(x) {
            r.fail(format!("reason {x:#04x} is not a first-stage reason"));
        }
    }
    r.diag(format!(
        "first-stage cases' reasons: {}",
        reasons
            .iter()
            .map(|x| format!("{x:#04x}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

fn second_stage_cases(
    ctx: &Context,
    n: &Nest,
    t: &Tables,
    c: &DmaBuffer,
    r: &mut Report,
) -> Result<(), String> {
    // The data page: used, unmapped from the IOAS, refused, mapped again, used.
    works(n, V_S2, 1, "fill before unmapping its IOAS page")?;
    unmap(n.s, n.s.ioas, C_IOAS, PAGE)?;
    let before = c.snapshot();
    let data = provoke(
        ctx,
        n,
        &Case {
            what: "stage-1 leaf onto an unmapped IOAS page",
            iova: V_S2,
            reasons: &[SS_NOT_PRESENT],
        },
        r,
    )?;
    compare("page C while unmapped", &c.snapshot(), &before)?;
    n.map(c, C_IOAS)?;
    works(n, V_S2, 2, "fill after re-mapping its IOAS page")?;
    compare("page C re-mapped", &c.snapshot(), &filled(2, PAGE as usize))?;

    // A page table: used, its IOAS page unmapped, refused, mapped again, used.
    works(n, V_T, 3, "fill before unmapping its page table")?;
    let pt = t
        .slot(V_T, 1)
        .ok_or_else(|| format!("no page table for {V_T:#x}"))?;
    let pt_iova = t.table_iova(pt.page);
    let pt_va = t.store().0.va() + pt.page as u64 * PAGE;
    unmap(n.s, n.s.ioas, pt_iova, PAGE)?;
    let table = provoke(
        ctx,
        n,
        &Case {
            what: "stage-1 page table unmapped from the IOAS",
            iova: V_T,
            reasons: &[NESTED_FS_READ, SS_NOT_PRESENT],
        },
        r,
    )?;
    n.s.iommufd.map(
        n.s.ioas,
        pt_va,
        PAGE,
        pt_iova,
        super::super::super::iommufd::MapPerms::RW,
    )?;
    works(n, V_T, 4, "fill after re-mapping its page table")?;
    if !second_stage_reason(data) {
        r.fail(format!(
            "data page: reason {data:#04x} is not a second-stage reason"
        ));
    }
    r.diag(format!(
        "second-stage reasons: data page {data:#04x}, page table at IOAS {pt_iova:#x} {table:#04x}"
    ));
    Ok(())
}

fn body(ctx: &Context, n: &mut Nest, r: &mut Report) -> Result<(), String> {
    let mut t = n.tables()?;
    let a = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    let c = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    n.map(&a, A_IOAS)?;
    n.map(&c, C_IOAS)?;
    t.map(V_OK, A_IOAS, SIZE_4K, LeafFlags::RW)?;
    t.map(
        V_SUP,
        A_IOAS,
        SIZE_4K,
        LeafFlags {
            write: true,
            user: false,
        },
    )?;
    t.map(V_RO, A_IOAS, SIZE_4K, LeafFlags::RO)?;
    t.map(V_S2, C_IOAS, SIZE_4K, LeafFlags::RW)?;
    t.map(V_T, A_IOAS, SIZE_4K, LeafFlags::RW)?;
    n.attach_tables(&t)?;
    r.diag(n.describe(&t));

    works(n, V_OK, PAT, "fill before the faults")?;
    let want = filled(PAT, PAGE as usize);
    compare("page A before the faults", &a.snapshot(), &want)?;
    first_stage_cases(ctx, n, &t, r)?;
    // The read-only copy wrote its 64 bytes at +128 (same pattern, so A is unchanged); faults wrote nothing.
    compare("page A after the first-stage faults", &a.snapshot(), &want)?;
    second_stage_cases(ctx, n, &t, &c, r)?;
    works(n, V_OK, !PAT, "fill after all faults")?;
    compare(
        "page A after all faults",
        &a.snapshot(),
        &filled(!PAT, PAGE as usize),
    )
}

pub fn run(ctx: &Context) -> Report {
    with_nest(ctx, |n, r| body(ctx, n, r))
}

#[cfg(test)]
mod tests {
    use super::super::stage1::{index, Stage1, VecStore};
    use super::*;

    #[test]
    fn the_table_case_has_its_own_page_table() {
        let mut t = Stage1::new(VecStore::new(8), 0x7000_0000, 4).unwrap();
        for v in [V_OK, V_SUP, V_RO, V_S2, V_T] {
            t.map(v, A_IOAS, SIZE_4K, LeafFlags::RW).unwrap();
        }
        let pt = |v| t.slot(v, 1).unwrap().page;
        assert_eq!(pt(V_OK), pt(V_S2));
        assert_ne!(pt(V_OK), pt(V_T));
        assert_eq!(index(V_NP, 2), index(V_OK, 2));
        assert!(t.walk(V_NP).result.is_err());
    }
}
