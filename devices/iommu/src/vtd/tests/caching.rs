//! Caches: exact invalidation semantics, and caching=off giving the same results as caching=on.

use super::*;

/// Legacy unit, SID in domain 1 with 16 pages at IOVA 0 mapped to 0x40_0000 + i pages.
fn sixteen_pages(opts: &str) -> (Fx, u64, Queue) {
    let fx = Fx::new(opts);
    let root = fx.alloc();
    let q = linux_bringup(&fx, root, false);
    let top = fx.alloc();
    fx.set_legacy_context(root, SID, top | 1, 2 | 1 << 8);
    for i in 0..16u64 {
        fx.map(top, 4, i << 12, 0x40_0000 + (i << 12), 12, (true, true));
    }
    for i in 0..16u64 {
        assert_eq!(
            fx.out(SID, None, i << 12, Access::Read),
            Ok(0x40_0000 + (i << 12))
        );
    }
    (fx, top, q)
}

#[test]
fn page_selective_invalidation_with_am_drops_exactly_the_range() {
    for (caching, wide) in [(true, false), (true, true), (false, false)] {
        let opts = match (caching, wide) {
            (true, false) => "vtd,sm=off",
            (true, true) => "vtd",
            _ => "vtd,sm=off,caching=off",
        };
        let (fx, top, mut q) = sixteen_pages(opts);
        // Remap every page without telling the unit: cached translations stay stale (allowed).
        for i in 0..16u64 {
            fx.map(top, 4, i << 12, 0x80_0000 + (i << 12), 12, (true, true));
        }
        // PSI at 0x5000 with AM=2 covers pages 4-7; a PSI for another domain covers nothing here.
        fx.sync(&mut q, &[iotlb_page(1, 0x5000, 2), iotlb_page(2, 0, 4)]);
        for i in 0..16u64 {
            let fresh = 0x80_0000 + (i << 12);
            let stale = 0x40_0000 + (i << 12);
            let want = if !caching || (4..8).contains(&i) {
                fresh
            } else {
                stale
            };
            assert_eq!(
                fx.out(SID, None, i << 12, Access::Read),
                Ok(want),
                "{opts} page {i}"
            );
        }
        // Domain-selective then drops the rest.
        fx.sync(&mut q, &[iotlb_domain(1)]);
        for i in 0..16u64 {
            assert_eq!(
                fx.out(SID, None, i << 12, Access::Read),
                Ok(0x80_0000 + (i << 12))
            );
        }
        let st = fx.vtd.stats();
        if caching {
            assert!(st.iotlb_hits >= 12);
            assert_eq!(st.iotlb_entries, 16);
        } else {
            assert_eq!(
                (st.iotlb_hits, st.iotlb_misses, st.iotlb_entries),
                (0, 0, 0)
            );
            assert_eq!(st.walks, 48);
        }
    }
}

#[test]
fn context_and_pasid_caches_follow_their_invalidations() {
    let fx = Fx::new("vtd");
    let root = fx.alloc();
    let mut q = linux_bringup(&fx, root, true);
    let dir = fx.alloc();
    let (top_a, top_b) = (fx.alloc(), fx.alloc());
    fx.map(top_a, 4, 0, 0xa000, 12, (true, true));
    fx.map(top_b, 4, 0, 0xb000, 12, (true, true));
    fx.set_sm_context(root, SID, [dir | 1, 0, 0, 0]);
    let entry = |top: u64, did: u64| [top | 2 << 6 | 2 << 2 | 1, did, 0, 0, 0, 0, 0, 0];
    fx.set_pasid_entry(dir, 0, entry(top_a, 1));
    assert_eq!(fx.out(SID, None, 0, Access::Read), Ok(0xa000));
    // Point the PASID entry at domain 2 without invalidating: the cached entry still says domain 1.
    fx.set_pasid_entry(dir, 0, entry(top_b, 2));
    assert_eq!(fx.out(SID, None, 0, Access::Read), Ok(0xa000));
    // A PASID-cache invalidation for another PASID or domain changes nothing.
    fx.sync(&mut q, &[pc_pasid(1, 5), pc_pasid(2, 0)]);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Ok(0xa000));
    fx.sync(&mut q, &[pc_pasid(1, 0)]);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Ok(0xb000));
    // The context cache: clear P, invalidate another device, then this one.
    fx.set_sm_context(root, SID, [0; 4]);
    fx.sync(&mut q, &[cc_device(0, 0x20)]);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Ok(0xb000));
    fx.sync(&mut q, &[cc_device(0, SID)]);
    assert_eq!(fx.out(SID, None, 0, Access::Read), Err(0x41));
    let st = fx.vtd.stats();
    assert!(st.context_cache_hits > 0 && st.pasid_cache_hits > 0);
    assert_eq!(st.invalidations["context_device"], 2);
    assert_eq!(st.invalidations["pasid_cache_pasid"], 3);
}

#[test]
fn not_present_entries_are_never_cached() {
    // CM=0: making an entry present needs no invalidation.
    let fx = Fx::new("vtd,sm=off");
    let root = fx.alloc();
    linux_bringup(&fx, root, false);
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Err(0x1));
    let top = fx.alloc();
    fx.set_legacy_context(root, SID, 0, 0);
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Err(0x2));
    fx.set_legacy_context(root, SID, top | 1, 2 | 1 << 8);
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Err(0x6));
    fx.map(top, 4, 0x1000, 0x7000, 12, (true, false));
    assert_eq!(fx.out(SID, None, 0x1000, Access::Read), Ok(0x7000));
    assert_eq!(fx.out(SID, None, 0x1000, Access::Write), Err(0x5));
    // Upgrading R to RW is a change of a present entry: a cached read-only translation is not trusted
    // for a write, so the walk sees the new permission.
    fx.map(top, 4, 0x1000, 0x7000, 12, (true, true));
    assert_eq!(fx.out(SID, None, 0x1000, Access::Write), Ok(0x7000));
}

/// A deterministic Linux-like workload: map/unmap with correct invalidations, permission changes,
/// faults, pass-through switches. Returns every observable outcome.
fn workload(opts: &str, scalable: bool) -> Vec<String> {
    let fx = Fx::new(opts);
    let root = fx.alloc();
    let mut q = linux_bringup(&fx, root, scalable);
    let top = fx.alloc();
    let dir = fx.alloc();
    let did: u16 = 3;
    if scalable {
        fx.set_sm_context(root, SID, [dir | 1 << 3 | 1, 0, 0, 0]);
        fx.set_pasid_entry(
            dir,
            0,
            [top | 2 << 6 | 2 << 2 | 1, u64::from(did), 0, 0, 0, 0, 0, 0],
        );
    } else {
        fx.set_legacy_context(root, SID, top | 1, 2 | u64::from(did) << 8);
    }
    let mut out = Vec::new();
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut mapped = [false; 64];
    for step in 0..600 {
        if step % 150 == 149 {
            // Switch the device to pass-through and back, with the driver's invalidations.
            if scalable {
                fx.set_pasid_entry(dir, 0, [4 << 6 | 2 << 2 | 1, 9, 0, 0, 0, 0, 0, 0]);
                fx.sync(&mut q, &[pc_pasid(did, 0), iotlb_domain(did)]);
            } else {
                fx.set_legacy_context(root, SID, 2 << 2 | 1, 2 | 9 << 8);
                fx.sync(&mut q, &[cc_device(did, SID), iotlb_domain(did)]);
            }
            out.push(format!(
                "pt: {:?}",
                fx.out(SID, None, 0x3000, Access::Write)
            ));
            if scalable {
                fx.set_pasid_entry(
                    dir,
                    0,
                    [top | 2 << 6 | 2 << 2 | 1, u64::from(did), 0, 0, 0, 0, 0, 0],
                );
                fx.sync(&mut q, &[pc_pasid(9, 0)]);
            } else {
                fx.set_legacy_context(root, SID, top | 1, 2 | u64::from(did) << 8);
                fx.sync(&mut q, &[cc_device(9, SID)]);
            }
            continue;
        }
        let page = rnd() % 64;
        let iova = page << 12 | (rnd() & 0xff8);
        match rnd() % 6 {
            0 | 1 => {
                let access = if rnd() % 2 == 0 {
                    Access::Read
                } else {
                    Access::Write
                };
                let r = fx.xlate(SID, None, iova, access);
                out.push(format!(
                    "{step}: {iova:#x} {access:?} -> {:?}",
                    r.map(|t| (t.translate(iova), t.page_size, t.perms))
                        .map_err(|f| (f.reason, f.recorded))
                ));
            }
            2 if !mapped[page as usize] => {
                // Map (not-present -> present: no invalidation needed with CM=0).
                let w = rnd() % 3 != 0;
                fx.map(
                    top,
                    4,
                    page << 12,
                    0x80_0000 + ((rnd() % 256) << 12),
                    12,
                    (true, w),
                );
                mapped[page as usize] = true;
            }
            3 if mapped[page as usize] => {
                // Unmap a naturally aligned block of 2^am pages, then page-selective invalidation.
                let am = rnd() % 3;
                let first = page & !((1 << am) - 1);
                for p in first..first + (1 << am) {
                    fx.set_entry(top, 4, p << 12, 12, 0);
                    mapped[p as usize] = false;
                }
                fx.sync(&mut q, &[iotlb_page(did, first << 12, am)]);
            }
            4 => {
                // Drain recorded faults so recording never overflows differently.
                for i in 0..8 {
                    fx.w32(regs::FRO_OFFSET + i * 16 + 12, 1 << 31);
                }
                fx.w32(regs::FSTS, regs::FSTS_PFO);
            }
            _ => {}
        }
    }
    out
}

#[test]
fn caching_off_gives_the_same_results() {
    for scalable in [false, true] {
        let base = if scalable { "vtd" } else { "vtd,sm=off" };
        let on = workload(&format!("{base},caching=on"), scalable);
        let off = workload(&format!("{base},caching=off"), scalable);
        assert!(on.len() > 150, "the workload translates");
        assert!(on.iter().any(|l| l.contains("Ok(")) && on.iter().any(|l| l.contains("Err(")));
        assert_eq!(on, off, "scalable={scalable}");
    }
}
