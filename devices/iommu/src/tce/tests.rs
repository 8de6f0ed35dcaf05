//! Whole-unit tests: the seed's windows, hypercalls and DMA, the hardware view, EEH.

use crate::RegisterWindow;
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

/// The seed's two windows.
pub(super) fn seed_ranges() -> PermittedRanges {
    PermittedRanges::from_windows([
        IovaWindow {
            first: 0x0,
            last: 0x3fffffff,
        },
        IovaWindow {
            first: 0x800000000000000,
            last: 0x8001fffffffffff,
        },
    ])
}

fn w64(t: &Tce, off: u64, v: u64) {
    t.write64(off, v);
}

fn r64(t: &Tce, off: u64) -> u64 {
    t.read64(off)
}

fn be(mem: &TestMemory, addr: u64, v: u64) {
    mem.write(addr, &v.to_be_bytes()).unwrap();
}

fn req(iova: u64, access: Access) -> DmaRequest {
    DmaRequest::new(0x18, iova, access)
}

/// Window 0 reprogrammed by the hardware view: 2 levels at 0x10000 -> 0x11000, 4 KiB pages, 1 GiB;
/// TCE 1 -> 0x80000 RW, TCE 2 -> 0x81000 R.
fn hw_unit(opts: &str) -> (Tce, Arc<TestMemory>) {
    let (t, mem) = unit(opts, 0x20_0000);
    w64(&t, 0x108, 0);
    w64(&t, 0x100, 0x10000);
    be(&mem, 0x10000, 0x11003);
    be(&mem, 0x11008, 0x80003);
    be(&mem, 0x11010, 0x81001);
    w64(&t, 0x108, 0x0c0c05);
    assert_eq!(r64(&t, 0x128), 1);
    (t, mem)
}

fn registers(t: &Tce) -> Vec<u64> {
    (0..TCE_MMIO_SIZE / 8).map(|i| r64(t, i * 8)).collect()
}

#[test]
fn lookup_has_no_side_effects() {
    let (t, mem) = hw_unit("tce");
    t.translate(&req(0x1000, Access::Read)).unwrap();
    be(&mem, 0x11008, 0x90003); // stale in the cache now
    let ram = |m: &TestMemory| {
        let mut v = vec![0u8; 0x20_0000];
        m.read(0, &mut v).unwrap();
        v
    };
    let (ram0, regs0, stats0, dump0) = (ram(&mem), registers(&t), t.stats(), t.dump(100));
    for iova in [
        0x1000,
        0x2000,
        0x3000,
        0x4000_0000,
        1 << 40,
        0x800000000000000,
    ] {
        for a in [Access::Read, Access::Write] {
            let l = t.lookup(0x18, iova, a);
            assert!(!l.frozen);
        }
    }
    let l = t.lookup(0x18, 0x1234, Access::Write);
    assert_eq!(l.cached, Some(0x80003), "the cache's stale copy");
    assert_eq!(l.tce, Some(0x90003), "memory's TCE");
    assert_eq!(l.levels.len(), 2);
    assert_eq!(l.levels[0].address, 0x10000);
    assert_eq!(l.levels[1].address, 0x11008);
    assert!(
        matches!(l.outcome, LookupOutcome::Translation { translation } if translation.output == 0x80000)
    );
    let f = t.lookup(0x18, 0x2000, Access::Write);
    assert!(matches!(f.outcome, LookupOutcome::Fault { reason: 4, .. }));
    assert_eq!(ram(&mem), ram0);
    assert_eq!(registers(&t), regs0);
    assert_eq!(t.stats(), stats0);
    assert_eq!(t.dump(100), dump0);
    assert!(!t.is_frozen(), "a faulting lookup does not freeze");
    // The DMA agrees with the lookup (cache hit, stale output).
    assert_eq!(
        t.translate(&req(0x1234, Access::Write)).unwrap().output,
        0x80000
    );
}

#[test]
fn frozen_lookup_reports_frozen_and_the_walk() {
    let (t, _) = hw_unit("tce");
    let f = t.translate(&req(0x2000, Access::Write)).unwrap_err();
    assert_eq!((f.model.as_str(), f.reason, f.recorded), ("tce", 4, true));
    assert!(t.is_frozen());
    let l = t.lookup(0x18, 0x1000, Access::Read);
    assert!(l.frozen);
    assert_eq!(l.tce, Some(0x80003));
    assert!(matches!(l.outcome, LookupOutcome::Fault { reason: 7, .. }));
}

/// Runs the same guest actions on a unit and returns every DMA outcome and the final registers.
fn scenario(opts: &str) -> (Vec<Result<Translation, u32>>, Vec<u64>, TceDump) {
    let (t, mem) = hw_unit(opts);
    let mut out = Vec::new();
    let mut dma = |t: &Tce, iova: u64, a: Access| {
        out.push(t.translate(&req(iova, a)).map_err(|f| f.reason));
    };
    for _ in 0..2 {
        dma(&t, 0x1000, Access::Read);
        dma(&t, 0x2000, Access::Read);
    }
    // Rewrite a TCE, then kill it by range: both units must see the new one.
    be(&mem, 0x11008, 0x90003);
    w64(&t, 0x48, 0x1000);
    w64(&t, 0x50, 0x2000);
    w64(&t, 0x40, 1 << 62);
    dma(&t, 0x1000, Access::Write);
    be(&mem, 0x11010, 0);
    w64(&t, 0x40, 1 << 63);
    dma(&t, 0x2000, Access::Read);
    dma(&t, 0x1000, Access::Read);
    w64(&t, 0x18, 1);
    // Hypercalls on a hardware-view window are refused (its table is the guest's, not a
    // hypervisor table): nothing changes.
    let hp = hcall::status(hcall::H_PARAMETER);
    assert_eq!(
        t.hcall(hcall::H_PUT_TCE, &[0x8000_0000, 0x1000, 0xa0001]),
        [hp]
    );
    assert_eq!(
        t.hcall(hcall::H_STUFF_TCE, &[0x8000_0000, 0x1000, 0, 1]),
        [hp]
    );
    dma(&t, 0x1000, Access::Read);
    dma(&t, 0x1000, Access::Write);
    (out, registers(&t), t.dump(64))
}

#[test]
fn caching_off_gives_identical_results() {
    let on = scenario("tce");
    let off = scenario("tce,caching=off");
    assert_eq!(on.0, off.0);
    assert_eq!(on.1, off.1);
    assert_eq!(on.2, off.2);
    let outputs: Vec<_> = on.0.iter().map(|r| r.map(|t| t.output)).collect();
    assert_eq!(
        outputs,
        [
            Ok(0x80000),
            Ok(0x81000),
            Ok(0x80000),
            Ok(0x81000),
            Ok(0x90000),
            Err(2),
            Err(7),
            Ok(0x90000),
            Ok(0x90000),
        ]
    );
}

#[test]
fn caching_counts_hits_and_misses() {
    let (t, _) = hw_unit("tce");
    t.translate(&req(0x1000, Access::Read)).unwrap();
    t.translate(&req(0x1800, Access::Read)).unwrap();
    let s = t.stats();
    assert_eq!(
        (s.cache_misses, s.cache_hits, s.walks, s.cache_entries),
        (1, 1, 1, 1)
    );
    let (u, _) = hw_unit("tce,caching=off");
    u.translate(&req(0x1000, Access::Read)).unwrap();
    u.translate(&req(0x1800, Access::Read)).unwrap();
    let s = u.stats();
    assert_eq!(
        (s.cache_misses, s.cache_hits, s.walks, s.cache_entries),
        (2, 0, 2, 0)
    );
}

#[test]
fn eeh_freeze_and_report_modes() {
    let (t, _) = hw_unit("tce");
    assert_eq!(
        t.translate(&req(0x4000_0000, Access::Read))
            .unwrap_err()
            .reason,
        1
    );
    assert!(t.is_frozen());
    assert_eq!(r64(&t, 0x10), 0x1_0101);
    let blocked = t.translate(&req(0x1000, Access::Read)).unwrap_err();
    assert_eq!((blocked.reason, blocked.recorded), (7, false));
    assert_eq!(t.stats().freezes, 1);
    assert_eq!(t.stats().faults["FROZEN"], 1);
    t.reset_pe();
    assert!(!t.is_frozen());
    assert_eq!(t.eeh_state(), EehState::default());
    assert!(t.translate(&req(0x1000, Access::Read)).is_ok());

    let (r, _) = hw_unit("tce,eeh=report");
    for _ in 0..3 {
        assert_eq!(
            r.translate(&req(0x2000, Access::Write)).unwrap_err().reason,
            4
        );
    }
    assert!(!r.is_frozen());
    assert_eq!(r64(&r, 0x10), 0, "report mode: bit 16 clear, never frozen");
    assert_eq!(r64(&r, 0x30), 3);
    assert_eq!(r64(&r, 0x20), 0x2000);
    assert!(r.translate(&req(0x1000, Access::Read)).is_ok());
}

#[test]
fn translation_requests_record_nothing() {
    let (t, _) = hw_unit("tce");
    let mut q = req(0x2000, Access::Write);
    q.kind = RequestKind::TranslationRequest;
    let f = t.translate(&q).unwrap_err();
    assert_eq!((f.reason, f.recorded), (4, false));
    assert!(!t.is_frozen());
    assert_eq!(r64(&t, 0x30), 0);
}

#[test]
fn dma_through_the_unit_with_2m_pages() {
    let (t, mem) = unit("tce,pool=0x100000+0x10000", 0x80_0000);
    let t = Arc::new(t);
    assert_eq!(
        t.hcall(
            hcall::H_PUT_TCE,
            &[0x8000_0001, 0x800000000000000, 0x40_0003]
        ),
        [0]
    );
    let dma = crate::DmaAccessor::new(t.clone(), mem.clone(), 0x18);
    dma.write(0x800000000000000 + 0x1f_fffe, None, &[1, 2])
        .unwrap();
    let mut b = [0u8; 2];
    mem.read(0x5f_fffe, &mut b).unwrap();
    assert_eq!(b, [1, 2]);
    // Crossing into the unmapped next 2 MiB page faults there.
    let e = dma
        .write(0x800000000000000 + 0x1f_ffff, None, &[1, 2])
        .unwrap_err();
    assert!(
        matches!(e, crate::DmaError::Fault(ref f) if f.iova == 0x800000000200000 && f.reason == 2)
    );
}

#[test]
fn mmio_garbage_never_panics_and_bad_accesses_read_zero() {
    let (t, mem) = unit("tce,pool=0x100000+0x4000", 0x20_0000);
    let mut b = [0xffu8; 8];
    t.mmio_read(0x2, &mut b[..4]);
    assert_eq!(b[..4], [0; 4], "misaligned");
    let mut three = [0xffu8; 3];
    t.mmio_read(0, &mut three);
    assert_eq!(three, [0; 3]);
    t.mmio_read(TCE_MMIO_SIZE - 4, &mut b);
    assert_eq!(b, [0; 8], "past the end");
    t.mmio_read(u64::MAX - 3, &mut b[..4]);
    let mut x: u64 = 0xdead_beef_cafe_f00d;
    for i in 0..20_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = if i % 2 == 0 {
            ((x >> 20) % 0x200) & !3
        } else {
            x >> 40
        };
        let len = [4usize, 8, 1, 2, 3, 16][(x % 6) as usize];
        let data = x.to_le_bytes().repeat(2);
        t.mmio_write(off, &data[..len.min(16)]);
        let mut r = vec![0u8; len];
        t.mmio_read(off, &mut r);
        let _ = t.translate(&req(x >> 30, Access::Read));
        if i % 1000 == 0 {
            t.reset_pe();
            // Scribble the pool and a few table pages too.
            mem.write(0x100000 + ((x % 0x4000) & !7), &x.to_be_bytes())
                .unwrap();
        }
    }
    assert!(t.permitted_ranges(0).windows().len() <= 2);
    assert_eq!(r64(&t, 0) & 0xffff_ffff, 0x5443_4531, "ID survives");
}

#[test]
fn dump_lists_valid_tces_bounded() {
    let (t, _) = hw_unit("tce");
    let d = t.dump(10);
    let w0 = &d.windows[0];
    assert_eq!(w0.window.liobn, 0x8000_0000);
    let iovas: Vec<(u64, u64, &str)> = w0
        .mappings
        .iter()
        .map(|m| (m.iova, m.output, m.perms))
        .collect();
    assert_eq!(iovas, [(0x1000, 0x80000, "rw"), (0x2000, 0x81000, "r")]);
    assert!(d.windows[1].mappings.is_empty(), "no pool: no table");
    assert!(!d.truncated);
    let d1 = t.dump(1);
    assert_eq!(d1.windows[0].mappings.len(), 1);
    assert!(d1.truncated);
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["windows"][0]["mappings"][0]["perms"], "rw");
}

#[test]
fn windows_and_default_register_view() {
    let (t, _) = unit("tce,page64=16,pool=0x100000+0x4000", 0x20_0000);
    let w = t.windows();
    assert_eq!((w[0].base, w[0].size, w[0].page_shift), (0, 1 << 30, 12));
    assert_eq!(
        (w[1].base, w[1].size, w[1].page_shift, w[1].levels),
        (0x800000000000000, 1 << 45, 16, 4)
    );
    assert_eq!(r64(&t, 0x148), 0x0c1009);
    assert_eq!(r64(&t, 0x160), 0x8000_0001);
    assert_eq!(t.config().page64_shift, 16);
}

const HP: u64 = hcall::H_PARAMETER as u64;

/// Programs TVE `w` through the hardware view and returns TVE_STATUS.
fn program_tve(t: &Tce, w: u64, table: u64, base: u64, size: u64, cfg: u64) -> u64 {
    let o = 0x100 + 0x40 * w;
    w64(t, o + 8, 0);
    w64(t, o, table);
    w64(t, o + 0x10, base);
    w64(t, o + 0x18, size);
    w64(t, o + 8, cfg);
    r64(t, o + 0x28)
}

/// Fuzz finding (hang): H_STUFF_TCE over 2^45 TCEs of a guest-programmed 5-level table whose one
/// page points at itself walked index by index under the state lock. The window is the guest's,
/// not a hypervisor table: every hcall on it is refused at once.
#[test]
fn stuff_on_a_looping_guest_table_is_refused() {
    let (t, mem) = unit("tce", 0x10000);
    for i in 0..512u64 {
        be(&mem, 0x1000 + 8 * i, 0x1003);
    }
    let cfg = 1 | 5 << 1 | 12 << 8 | 12 << 16;
    assert_eq!(program_tve(&t, 0, 0x1000, 0, 1 << 57, cfg), 1, "enabled");
    assert_eq!(
        t.hcall(hcall::H_STUFF_TCE, &[0x8000_0000, 0, 0x1003, 1 << 45]),
        [HP]
    );
    assert_eq!(
        t.hcall(hcall::H_STUFF_TCE, &[0x8000_0000, 0, 0, 1 << 45]),
        [HP]
    );
    assert_eq!(t.hcall(hcall::H_GET_TCE, &[0x8000_0000, 0]), [HP]);
    // DMA still walks the guest's table (bounded at five levels).
    assert_eq!(
        t.translate(&req(0x1234, Access::Read)).map(|x| x.output),
        Ok(0x1000)
    );
}

/// H_STUFF_TCE of the whole default 64-bit window (2^45 bytes, 2^24 TCEs of 2 MiB) fills it one
/// leaf table at a time (32768 leaf tables from the pool); then every TCE reads back.
#[test]
fn stuffing_the_whole_default_64_bit_window() {
    let (t, _) = unit("tce,pool=0x1000000+0x8100000", 0x920_0000);
    let l1 = u64::from(window::LIOBNS[1]);
    let base = window::DMA64_START;
    assert_eq!(
        t.hcall(hcall::H_STUFF_TCE, &[l1, base, 0x20_0003, 1 << 24]),
        [0]
    );
    let last = base + (1u64 << 45) - (2 << 20);
    for ioba in [base, base + (0x1234 << 21), last] {
        assert_eq!(t.hcall(hcall::H_GET_TCE, &[l1, ioba]), [0, 0x20_0003]);
    }
    assert_eq!(
        t.translate(&req(last + 0x5678, Access::Write))
            .map(|x| x.output),
        Ok(0x20_0000)
    );
    assert_eq!(t.stats().pool_pages_used, 1 + 1 + 64 + 32768);
    // Clearing it all returns every TCE to 0 (the tables stay allocated).
    assert_eq!(t.hcall(hcall::H_STUFF_TCE, &[l1, base, 0, 1 << 24]), [0]);
    assert_eq!(t.hcall(hcall::H_GET_TCE, &[l1, last]), [0, 0]);
}

/// The work of one hcall is bounded by the pool even over 2^33 TCEs (page64=12) and even when the
/// guest rewrote the pool so that the top level points at itself: the hypervisor never follows
/// pointers read from guest memory.
#[test]
fn hcall_work_is_bounded_by_the_pool_whatever_it_holds() {
    let (t, mem) = unit("tce,page64=12,pool=0x100000+0x8000", 0x20_0000);
    let l1 = u64::from(window::LIOBNS[1]);
    let base = window::DMA64_START;
    let top = t.windows()[1].table.unwrap();
    assert_eq!(t.windows()[1].levels, 4, "33 index bits");
    // Clearing the whole window: nothing is allocated below the top, nothing to visit.
    assert_eq!(t.hcall(hcall::H_STUFF_TCE, &[l1, base, 0, 1 << 33]), [0]);
    // A mapping at the far end, then a guest scribble: every top entry -> the top table.
    let far = base + (1u64 << 45) - 0x1000;
    assert_eq!(t.hcall(hcall::H_PUT_TCE, &[l1, far, 0x8003]), [0]);
    for i in 0..512 {
        be(&mem, top + 8 * i, top | 3);
    }
    assert_eq!(t.hcall(hcall::H_GET_TCE, &[l1, far]), [0, 0x8003]);
    assert_eq!(t.hcall(hcall::H_GET_TCE, &[l1, base]), [0, 0]);
    // Filling all 2^33 TCEs runs out of the 8-page pool after a few leaf tables.
    assert_eq!(
        t.hcall(hcall::H_STUFF_TCE, &[l1, base, 0x9003, 1 << 33]),
        [hcall::status(hcall::H_NO_MEM)]
    );
    assert_eq!(t.stats().pool_pages_used, 8);
    assert_eq!(t.hcall(hcall::H_GET_TCE, &[l1, base + 0x1000]), [0, 0x9003]);
    // Clearing all of it again visits only the allocated leaf tables.
    assert_eq!(t.hcall(hcall::H_STUFF_TCE, &[l1, base, 0, 1 << 33]), [0]);
    assert_eq!(t.hcall(hcall::H_GET_TCE, &[l1, base + 0x1000]), [0, 0]);
    assert_eq!(t.hcall(hcall::H_GET_TCE, &[l1, far]), [0, 0]);
}

/// Fuzz finding (caching divergence), the repro's shape: two hardware-view windows share one
/// table; an hcall through one of them used to update only its own cache entry. Now the hcall is
/// refused and caching on and off agree. A hardware-view window that reads a hypervisor table in
/// the pool also agrees across an hcall that rewrites it.
#[test]
fn shared_tables_caching_on_and_off_agree() {
    let run = |caching: &str| {
        let (t, mem) = unit(&format!("tce,caching={caching}"), 0x10000);
        be(&mem, 0x1000, 0x5003);
        let cfg = 1 | 1 << 1 | 12 << 8 | 12 << 16;
        for (w, base) in [(0, 0), (1, 0x1000_0000)] {
            assert_eq!(program_tve(&t, w, 0x1000, base, 0x20_0000, cfg), 1);
        }
        let d = |t: &Tce| {
            t.translate(&req(0x1000_0000, Access::Read))
                .map(|x| x.output)
        };
        let before = d(&t);
        let r = t.hcall(hcall::H_PUT_TCE, &[0x8000_0000, 0, 0x6003]);
        (before, r, d(&t))
    };
    let on = run("on");
    assert_eq!(on, run("off"));
    assert_eq!(on, (Ok(0x5000), vec![HP], Ok(0x5000)));

    let alias = |caching: &str| {
        let (t, _) = unit(
            &format!("tce,caching={caching},pool=0x100000+0x8000"),
            0x20_0000,
        );
        let l0 = u64::from(window::LIOBNS[0]);
        assert_eq!(t.hcall(hcall::H_PUT_TCE, &[l0, 0x1000, 0x8003]), [0]);
        // Window 1 (hardware view) reads window 0's hypervisor table: 2 levels, 1 GiB at 2^40.
        let top = t.windows()[0].table.unwrap();
        let cfg = 1 | 2 << 1 | 12 << 8 | 12 << 16;
        assert_eq!(program_tve(&t, 1, top, 1 << 40, 1 << 30, cfg), 1);
        let d = |t: &Tce| {
            t.translate(&req((1 << 40) + 0x1000, Access::Read))
                .map(|x| x.output)
        };
        let before = d(&t);
        assert_eq!(t.hcall(hcall::H_PUT_TCE, &[l0, 0x1000, 0x9003]), [0]);
        (before, d(&t))
    };
    let on = alias("on");
    assert_eq!(on, alias("off"));
    assert_eq!(on, (Ok(0x8000), Ok(0x9000)));
}

/// Fuzz finding: two DDW windows that touch (2^59 bytes at 0, then 2^30 at 0x800000000000000)
/// were reported as one range, so a mapping across the boundary looked permitted. Each window is
/// its own range: a mapping cannot cross LIOBNs.
#[test]
fn touching_windows_are_separate_ranges() {
    use crate::tce::rtas::{CREATE, REMOVE};
    let (t, _) = unit("tce,pool=0x100000+0x10000", 0x20_0000);
    let (hi, lo) = (0x0800_0000u32, 0x2000_0000u32);
    assert_eq!(t.rtas(REMOVE, &[0x8000_0000]), [0]);
    assert_eq!(t.rtas(REMOVE, &[0x8000_0001]), [0]);
    assert_eq!(t.rtas(CREATE, &[0, hi, lo, 16, 59]), [0, 0x8000_0000, 0, 0]);
    assert_eq!(
        t.rtas(CREATE, &[0, hi, lo, 16, 30]),
        [0, 0x8000_0001, 0x0800_0000, 0]
    );
    let r = t.permitted_ranges(0x18);
    assert_eq!(
        r.windows(),
        &[
            IovaWindow::from_base_size(0, 1 << 59).unwrap(),
            IovaWindow::from_base_size(0x800000000000000, 1 << 30).unwrap(),
        ]
    );
    assert!(r.permits(0x7ff_ffff_ffff_0000, 0x1_0000));
    assert!(r.permits(0x800000000000000, 0x1_0000));
    assert!(
        !r.permits(0x7ff_ffff_ffff_0000, 0x2_0000),
        "across the boundary"
    );
}

/// Fuzz finding: a 4-byte write to the reserved high half of TVE_CFG after a refused enable
/// rewrote the register from its read-back (ENABLE clear) and cleared TVE_STATUS's error. The high
/// half alone is now ignored: no re-validation, the error stays, an enabled window stays enabled.
#[test]
fn tve_cfg_high_half_writes_are_ignored() {
    let (t, _) = unit("tce,pool=0x100000+0x4000", 0x20_0000);
    // Refused: page shift 13 is not offered.
    assert_eq!(program_tve(&t, 0, 0x1000, 0, 0x20_0000, 0xc0d03), 0x102);
    t.mmio_write(0x10c, &0xffff_ffffu32.to_le_bytes());
    assert_eq!(r64(&t, 0x128), 0x102, "the refusal stays visible");
    assert_eq!(r64(&t, 0x108), 0xc0d02, "CFG unchanged (ENABLE clear)");
    // An enabled hypervisor window: the high half does not disable or hand it over.
    t.mmio_write(0x14c, &0u32.to_le_bytes());
    assert_eq!(r64(&t, 0x168), 1);
    assert!(t.windows()[1].hypervisor);
    // The low half is a real TVE_CFG write.
    t.mmio_write(0x148, &0u32.to_le_bytes());
    assert_eq!(r64(&t, 0x168), 0);
    assert!(!t.windows()[1].hypervisor);
}
