//! Whole-unit tests: the seed's windows, hypercalls and DMA, the hardware view, EEH.

use std::sync::Arc;

use super::*;
use crate::mem::TestMemory;
use crate::ranges::IovaWindow;

pub(super) struct NoIrq;
impl InterruptSink for NoIrq {
    fn msi(&self, _: u64, _: u32) {}
}

pub(super) fn unit(opts: &str, ram: usize) -> (Tce, Arc<TestMemory>) {
    let mem = Arc::new(TestMemory::new(ram));
    let cfg: TceConfig = opts.parse().unwrap();
    (Tce::new(cfg, mem.clone(), Arc::new(NoIrq)), mem)
}

#[test]
fn seed_default_windows_are_the_permitted_ranges() {
    let (t, _) = unit("tce", 0x1000);
    let r = t.permitted_ranges(0x18);
    assert_eq!(
        r.windows(),
        &[
            IovaWindow {
                first: 0x0,
                last: 0x3fffffff
            },
            IovaWindow {
                first: 0x800000000000000,
                last: 0x8001fffffffffff
            }
        ]
    );
    assert_eq!(r, t.permitted_ranges(0x20), "one PE: every source alike");
}
