//! Accessed/dirty flags of stage-1 entries. The tables are built with A and D clear; the IOMMU sets A in every
//! first-stage entry a translation uses and D in the leaf when it translates a write (VT-d 3.x section 3.6.2,
//! like IA-32 paging), writing them through stage 2. Nothing else may set them: D never on a read.

use super::stage1::{Stage1, TableStore, FS_A, FS_D};

/// What a leaf was used for since the tables were built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Used {
    Read,
    Written,
}

/// Checks the flags along the walk of `iova` after DMA of kind `used`; returns the failures.
pub fn check<S: TableStore>(t: &Stage1<S>, what: &str, iova: u64, used: Used) -> Vec<String> {
    let w = t.walk(iova);
    let mut errs = Vec::new();
    if let Err(e) = w.result {
        errs.push(format!("{what}: stage-1 walk of {iova:#x}: {e}"));
        return errs;
    }
    let last = w.steps.len().saturating_sub(1);
    for (i, s) in w.steps.iter().enumerate() {
        if s.raw & FS_A == 0 {
            errs.push(format!(
                "{what}: level-{} entry {:#x} for {iova:#x} has A clear after DMA through it",
                s.level, s.raw
            ));
        }
        if i == last {
            let dirty = s.raw & FS_D != 0;
            match used {
                Used::Written if !dirty => errs.push(format!(
                    "{what}: leaf {:#x} for {iova:#x} has D clear after a DMA write",
                    s.raw
                )),
                Used::Read if dirty => errs.push(format!(
                    "{what}: leaf {:#x} for {iova:#x} has D set, but was only read",
                    s.raw
                )),
                _ => {}
            }
        }
    }
    errs
}

/// Whether no entry on the walk of `iova` has A or D set (tables nobody has used yet).
pub fn untouched<S: TableStore>(t: &Stage1<S>, iova: u64) -> bool {
    t.walk(iova)
        .steps
        .iter()
        .all(|s| s.raw & (FS_A | FS_D) == 0)
}

#[cfg(test)]
mod tests {
    use super::super::stage1::{LeafFlags, VecStore, SIZE_4K};
    use super::*;

    #[test]
    fn flags_must_follow_use() {
        let mut t = Stage1::new(VecStore::new(8), 0x7000_0000, 4).unwrap();
        t.map(0x1000, 0x7100_0000, SIZE_4K, LeafFlags::RW).unwrap();
        assert!(untouched(&t, 0x1000));
        let e = check(&t, "x", 0x1000, Used::Read);
        assert_eq!(e.len(), 4, "{e:?}");
        // The IOMMU set A everywhere.
        for s in t.walk(0x1000).steps {
            t.write(s.slot, s.raw | FS_A);
        }
        assert!(!untouched(&t, 0x1000));
        assert!(check(&t, "x", 0x1000, Used::Read).is_empty());
        let e = check(&t, "x", 0x1000, Used::Written);
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("D clear after a DMA write"), "{e:?}");
        let leaf = t.slot(0x1000, 1).unwrap();
        t.write(leaf, t.read(leaf) | FS_D);
        assert!(check(&t, "x", 0x1000, Used::Written).is_empty());
        assert!(check(&t, "x", 0x1000, Used::Read)[0].contains("only read"));
        assert!(check(&t, "x", 0x2000, Used::Read)[0].contains("not present"));
    }
}
