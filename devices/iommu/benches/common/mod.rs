//! What the translation benches share: the criterion settings, an interrupt sink for models whose cases
//! never fault, and the two timing loops with the counter checks that prove what each case measured.

#![allow(dead_code)] // each bench compiles this module and uses part of it

use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use iommu::InterruptSink;

/// Criterion settings of every translation bench (short: the machine is small and shared).
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

/// The model's own interrupts go nowhere (the cases never fault).
pub struct NoIrq;

impl InterruptSink for NoIrq {
    fn msi(&self, _address: u64, _data: u32) {}
}

/// The model counters a case checks: translations, table walks, and cache (TLB) hits.
#[derive(Clone, Copy, Debug)]
pub struct Counters {
    pub translations: u64,
    pub walks: u64,
    pub hits: u64,
}

/// Times `translate()` of one IOVA (run once first, so a caching model holds it before the clock starts);
/// checks the counters show cache hits only (`hit`) or a walk per call.
pub fn same_page<T>(
    c: &mut Criterion,
    name: &str,
    translate: impl Fn() -> T,
    counters: impl Fn() -> Counters,
    hit: bool,
) {
    translate();
    let before = counters();
    c.bench_function(name, |bn| bn.iter(|| black_box(translate())));
    let after = counters();
    let calls = after.translations - before.translations;
    if hit {
        assert_eq!(after.walks, before.walks, "{name}: hits never walk");
        assert_eq!(after.hits - before.hits, calls, "{name}: cache hits");
    } else {
        assert_eq!(
            after.walks - before.walks,
            calls,
            "{name}: every call walks"
        );
    }
}

/// Times `translate(n)` for n = `first`, `first + 1`, ... cycling below `pages` (enough pages that nothing
/// stays cached); checks every call walked and none hit.
pub fn sweep<T>(
    c: &mut Criterion,
    name: &str,
    first: u64,
    pages: u64,
    translate: impl Fn(u64) -> T,
    counters: impl Fn() -> Counters,
) {
    let i = Cell::new(first);
    let before = counters();
    c.bench_function(name, |bn| {
        bn.iter(|| {
            let n = i.get();
            i.set((n + 1) % pages);
            black_box(translate(black_box(n)))
        })
    });
    let after = counters();
    let calls = after.translations - before.translations;
    assert_eq!(
        after.walks - before.walks,
        calls,
        "{name}: every call walks"
    );
    assert_eq!(after.hits, before.hits, "{name}: no cache hit");
}
