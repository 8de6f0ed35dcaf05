//! `Vtd::dump`: every mode's mappings (checked against translate()), coalescing, the interrupt window,
//! fault ranges, the table tree, bounds against hostile tables, no side effects, and the dot output.

use std::sync::Arc;

use super::fs_util::*;
use super::*;
use crate::request::Perms;
use crate::vtd::{dump_dot, Dump, FaultRange, Mapping, Stage, VtdStats, MAX_TABLES};

const R: Perms = Perms {
    read: true,
    write: false,
    exec: false,
};
const RW_: Perms = Perms::RW;
/// First-stage user RW page: execute too (XD clear).
const URWX: Perms = Perms {
    read: true,
    write: true,
    exec: true,
};

fn m(iova: u64, last: u64, output: u64, page_size: u64, perms: Perms) -> Mapping {
    Mapping {
        iova,
        last,
        output,
        page_size,
        perms,
    }
}

/// Everything translate() could change: counters, RAM, registers, interrupts.
type Snapshot = (VtdStats, Vec<u8>, Vec<u8>, Vec<(u64, u32)>);

fn snapshot(fx: &Fx) -> Snapshot {
    let mut ram = vec![0u8; RAM as usize];
    fx.mem.read(0, &mut ram).unwrap();
    let mut regs = vec![0u8; regs::VTD_MMIO_SIZE as usize];
    fx.vtd.mmio_read(0, &mut regs);
    (fx.vtd.stats(), ram, regs, fx.msis())
}

/// A dump that changed nothing.
fn dump(fx: &Fx, pasid: Option<u32>, limit: usize) -> Dump {
    let before = snapshot(fx);
    let d = fx.vtd.dump(SID, pasid, limit);
    let after = snapshot(fx);
    assert_eq!(after.0, before.0, "statistics");
    assert!(after.1 == before.1, "guest memory");
    assert_eq!(after.2, before.2, "registers");
    assert_eq!(after.3, before.3, "interrupts");
    serde_json::to_value(&d).expect("serializable");
    d
}

/// Every mapping agrees with translate() at its first, second-page and last addresses; every fault
/// range faults there with its reason.
fn check_against_translate(fx: &Fx, d: &Dump) {
    for mp in &d.mappings {
        let second = mp.iova.saturating_add(mp.page_size).min(mp.last);
        for iova in [mp.iova, second, mp.last] {
            let access = if mp.perms.read {
                Access::Read
            } else {
                Access::Write
            };
            match fx.xlate(SID, d.pasid, iova, access) {
                Ok(t) => {
                    assert_eq!(
                        t.translate(iova),
                        mp.output + (iova - mp.iova),
                        "{mp:x?} @ {iova:#x}"
                    );
                    assert_eq!(t.page_size, mp.page_size, "{mp:x?} @ {iova:#x}");
                    if t.perms != mp.perms {
                        // Only where a write needs a dirty-flag update the second stage forbids:
                        // translate() reports W for a read, the write itself faults 77h.
                        assert_eq!(
                            t.perms,
                            Perms {
                                write: true,
                                ..mp.perms
                            },
                            "{mp:x?}"
                        );
                        let w = fx.xlate(SID, d.pasid, iova, Access::Write);
                        assert_eq!(w.map_err(|f| f.reason), Err(0x77), "{mp:x?}");
                    }
                }
                Err(f) => assert!(
                    !mp.perms.read && !mp.perms.write,
                    "{mp:x?} @ {iova:#x}: {f}"
                ),
            }
        }
    }
    for f in &d.faults {
        for iova in [f.iova, f.last] {
            let got = fx
                .xlate(SID, d.pasid, iova, Access::Read)
                .map_err(|e| e.reason);
            assert_eq!(got, Err(u32::from(f.reason)), "{f:x?} @ {iova:#x}");
        }
    }
}

fn legacy(opts: &str) -> (Fx, u64) {
    let fx = Fx::new(opts);
    let root = fx.alloc();
    linux_bringup(&fx, root, false);
    let top = fx.alloc();
    fx.set_legacy_context(root, SID, top | 1, 2 | 1 << 8);
    (fx, top)
}

#[test]
fn legacy_second_stage_coalesces_and_lists_the_tree() {
    let (fx, top) = legacy("vtd,sm=off");
    for i in 0..3u64 {
        fx.map(
            top,
            4,
            0x1000 + (i << 12),
            0x20_0000 + (i << 12),
            12,
            (true, true),
        );
    }
    fx.map(top, 4, 0x4000, 0x20_3000, 12, (true, false)); // contiguous output, other perms
    fx.map(top, 4, 0x6000, 0x20_4000, 12, (true, true)); // a gap in the IOVA
    fx.map(top, 4, 0x4000_0000, 0x60_0000, 21, (true, true));
    fx.map(top, 4, 0x4020_0000, 0x80_0000, 21, (true, true)); // contiguous 2M
    fx.map(top, 4, 0x8000_0000, 0x4000_0000, 30, (true, true));
    let d = dump(&fx, None, 100);
    assert_eq!(d.mode, "legacy second-stage");
    assert_eq!(
        (d.did, d.pasid_entry, d.truncated, d.revisits),
        (Some(1), None, false, 0)
    );
    assert_eq!(
        d.mappings,
        vec![
            m(0x1000, 0x3fff, 0x20_0000, 0x1000, RW_),
            m(0x4000, 0x4fff, 0x20_3000, 0x1000, R),
            m(0x6000, 0x6fff, 0x20_4000, 0x1000, RW_),
            m(0x4000_0000, 0x403f_ffff, 0x60_0000, 1 << 21, RW_),
            m(0x8000_0000, 0xbfff_ffff, 0x4000_0000, 1 << 30, RW_),
        ]
    );
    assert!(d.faults.is_empty());
    check_against_translate(&fx, &d);
    // L4 -> L3 -> {L2 -> L1, L2'}: five tables, the top first.
    assert_eq!(d.tables.len(), 5);
    let t = |a: u64| d.tables.iter().find(|t| t.address == a).unwrap();
    let top_node = &d.tables[0];
    assert_eq!(
        (top_node.address, top_node.level, top_node.stage),
        (top, 4, Stage::Second)
    );
    assert_eq!(top_node.present_entries, 1);
    let l3 = t(top_node.children[0]);
    assert_eq!((l3.level, l3.present_entries, l3.children.len()), (3, 3, 2));
    assert_eq!(
        (l3.leaves, l3.first_input, l3.last_input),
        (1, Some(0x8000_0000), Some(0xbfff_ffff))
    );
    let l1 = d.tables.iter().find(|t| t.level == 1).unwrap();
    assert_eq!((l1.present_entries, l1.leaves), (5, 5));
    assert_eq!(
        (l1.first_input, l1.last_input),
        (Some(0x1000), Some(0x6fff))
    );
    // The limit truncates.
    let d2 = dump(&fx, None, 2);
    assert_eq!(d2.mappings, d.mappings[..2].to_vec());
    assert!(d2.truncated);
    let d0 = dump(&fx, None, 0);
    assert!(d0.mappings.is_empty() && d0.truncated);
}

#[test]
fn interrupt_window_and_broken_entries() {
    let (fx, top) = legacy("vtd,sm=off");
    // A 2 MiB page whose output starts in the interrupt range: the overlap faults (0Eh), the rest
    // is used as 4 KiB pages.
    fx.map(top, 4, 0x40_0000, 0xfee0_0000, 21, (true, true));
    // A 1 GiB page over the IOVA interrupt window: requests there are interrupts, not DMA.
    fx.map(top, 4, 0xc000_0000, 0x4000_0000, 30, (true, true));
    // Reserved bit 62 in a leaf (0Ch) and an L1 table outside RAM (07h).
    fx.set_entry(top, 4, 0x1_0000_0000, 12, 0x5000 | 1 << 62 | 3);
    fx.set_entry(top, 4, 0x1_4000_0000, 21, RAM | 3);
    let d = dump(&fx, None, 100);
    assert_eq!(
        d.mappings,
        vec![
            m(0x50_0000, 0x5f_ffff, 0xfef0_0000, 0x1000, RW_),
            m(0xc000_0000, 0xfedf_ffff, 0x4000_0000, 1 << 30, RW_),
            m(0xfef0_0000, 0xffff_ffff, 0x7ef0_0000, 1 << 30, RW_),
        ]
    );
    let f = |iova, last, reason| (iova, last, reason);
    let got: Vec<(u64, u64, u8)> = d
        .faults
        .iter()
        .map(|x| (x.iova, x.last, x.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            f(0x40_0000, 0x4f_ffff, 0x0e),
            f(0x1_0000_0000, 0x1_0000_0fff, 0x0c),
            f(0x1_4000_0000, 0x1_401f_ffff, 0x07),
        ]
    );
    let FaultRange {
        address,
        description,
        ..
    } = &d.faults[2];
    assert!(description.contains("not readable"), "{description}");
    assert_eq!(*address & 0xfff, 0, "the L2 entry at index 0");
    check_against_translate(&fx, &d);
}

#[test]
fn modes_without_tables() {
    // Translation disabled: identity, except the interrupt window without PASID.
    let fx = Fx::new("vtd");
    let d = dump(&fx, None, 10);
    assert_eq!(d.mode, "translation disabled");
    assert_eq!(
        d.mappings,
        vec![
            m(0, 0xfedf_ffff, 0, 1 << 63, RW_),
            m(0xfef0_0000, u64::MAX, 0xfef0_0000, 1 << 63, RW_)
        ]
    );
    assert_eq!(
        dump(&fx, Some(1), 10).mappings,
        vec![m(0, u64::MAX, 0, 1 << 63, RW_)]
    );
    // Blocked: no context entry; a PASID in legacy mode.
    let fx = Fx::new("vtd,sm=off");
    let root = fx.alloc();
    linux_bringup(&fx, root, false);
    let d = dump(&fx, None, 10);
    assert_eq!(d.mode, "blocked: root entry not present (fault 0x01)");
    assert!(d.mappings.is_empty() && d.tables.is_empty());
    assert_eq!(
        dump(&fx, Some(1), 10).mode,
        "blocked: request with PASID in legacy mode (fault 0x31)"
    );
    // Scalable pass-through (PGTT 100b) as RID_PASID and as PASID 7, on a 45-bit unit.
    let Sm { fx, dir, .. } = sm_setup("vtd,aw=45");
    fx.set_pasid_entry(dir, 0, [4 << 6 | 1, 2, 0, 0, 0, 0, 0, 0]);
    fx.set_pasid_entry(dir, 7, [4 << 6 | 1, 3, 0, 0, 0, 0, 0, 0]);
    let pt = vec![
        m(0, 0xbfff_ffff, 0, 1 << 30, RW_),
        m(0xc000_0000, 0xfedf_ffff, 0xc000_0000, 0x1000, RW_),
        m(0xfef0_0000, 0xffff_ffff, 0xfef0_0000, 0x1000, RW_),
        m(0x1_0000_0000, 0x1fff_ffff_ffff, 0x1_0000_0000, 1 << 30, RW_),
    ];
    let d = dump(&fx, None, 10);
    assert_eq!(
        (d.mode.as_str(), d.pasid_entry, d.did),
        ("pass-through", Some(0), Some(2))
    );
    assert_eq!(d.mappings, pt);
    assert!(
        d.faults.is_empty(),
        "the interrupt window is not DMA without PASID"
    );
    check_against_translate(&fx, &d);
    let d = dump(&fx, Some(7), 10);
    assert_eq!(d.mappings, pt);
    assert_eq!(d.faults.len(), 1);
    assert_eq!(
        (d.faults[0].iova, d.faults[0].last, d.faults[0].reason),
        (0xfee0_0000, 0xfeef_ffff, 0x87)
    );
    check_against_translate(&fx, &d);
    // A PASID the context does not allow.
    let d = dump(&fx, Some(1 << 20), 10);
    assert!(d.mode.starts_with("blocked: PASID beyond"), "{}", d.mode);
}

#[test]
fn second_stage_stops_at_the_address_width() {
    // aw=45 with 4-level tables: entries for 2^45 and above exist but are never used.
    let (fx, top) = legacy("vtd,sm=off,aw=45");
    fx.map(top, 4, (1 << 45) - 0x1000, 0x7000, 12, (true, true));
    fx.map(top, 4, 1 << 45, 0x8000, 12, (true, true));
    fx.map(top, 4, 1 << 47, 0x9000, 12, (true, true));
    let d = dump(&fx, None, 10);
    assert_eq!(
        d.mappings,
        vec![m((1 << 45) - 0x1000, (1 << 45) - 1, 0x7000, 0x1000, RW_)]
    );
    assert_eq!(d.tables.len(), 4, "only the tables below 2^45 are walked");
    check_against_translate(&fx, &d);
}

#[test]
fn first_stage_halves_permissions_and_scalable_second_stage() {
    let Sm { fx, dir, .. } = sm_setup("vtd");
    let fl_top = fx.alloc();
    fx.set_pasid_entry(dir, 5, fl_entry(fl_top, 4, false));
    fs_map(&fx, fl_top, 4, 0x1000, 0xa0_1000, 12, RW | US);
    fs_map(&fx, fl_top, 4, 0x2000, 0xa0_2000, 12, RW | US | A | D);
    fs_map(&fx, fl_top, 4, 0x3000, 0xa0_3000, 12, RW); // supervisor only
    fs_map(&fx, fl_top, 4, 0x4000, 0xa0_4000, 12, US | XD); // read-only, no execute
    fs_map(&fx, fl_top, 4, 0x20_0000, 0x40_0000, 21, RW | US);
    let upper = 0xffff_8000_0000_0000;
    fs_map(&fx, fl_top, 4, upper, 0xb0_0000, 12, RW | US);
    let d = dump(&fx, Some(5), 100);
    assert_eq!((d.mode.as_str(), d.did), ("first-stage", Some(4)));
    let none = Perms::default();
    let ro = Perms {
        read: true,
        ..Perms::default()
    };
    assert_eq!(
        d.mappings,
        vec![
            m(0x1000, 0x2fff, 0xa0_1000, 0x1000, URWX),
            m(0x3000, 0x3fff, 0xa0_3000, 0x1000, none),
            m(0x4000, 0x4fff, 0xa0_4000, 0x1000, ro),
            m(0x20_0000, 0x3f_ffff, 0x40_0000, 1 << 21, URWX),
            m(upper, upper + 0xfff, 0xb0_0000, 0x1000, URWX),
        ]
    );
    assert!(d.tables.iter().all(|t| t.stage == Stage::First));
    check_against_translate(&fx, &d);
    // A first-stage pointer outside RAM: both canonical halves fault 73h.
    fx.set_pasid_entry(dir, 9, fl_entry(RAM, 4, false));
    let d = dump(&fx, Some(9), 100);
    let got: Vec<(u64, u64, u8)> = d
        .faults
        .iter()
        .map(|f| (f.iova, f.last, f.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, (1 << 47) - 1, 0x73),
            (0xffff_8000_0000_0000, u64::MAX, 0x73)
        ]
    );
    assert!(d.mappings.is_empty() && d.tables.is_empty());
    // Reserved PS in a PML4E: 72h over its 512 GiB.
    fx.wr(fl_top + 8, 0x5000 | PS | P);
    let d = dump(&fx, Some(5), 100);
    let bad: Vec<(u64, u64, u8)> = d
        .faults
        .iter()
        .map(|f| (f.iova, f.last, f.reason))
        .collect();
    assert_eq!(bad, vec![(1 << 39, (2 << 39) - 1, 0x72)]);
    check_against_translate(&fx, &d);
    // PGTT 010b through the scalable reasons.
    let ss_top = fx.alloc();
    fx.set_pasid_entry(dir, 6, [ss_top | 2 << 6 | 2 << 2 | 1, 5, 0, 0, 0, 0, 0, 0]);
    fx.map(ss_top, 4, 0x7000, 0xc0_7000, 12, (false, true));
    fx.set_entry(ss_top, 4, 0x4000_0000, 21, 0x1234_5000 | 0x83); // misaligned 2M: reserved
    let d = dump(&fx, Some(6), 100);
    assert_eq!(d.mode, "second-stage");
    let wo = Perms {
        write: true,
        ..Perms::default()
    };
    assert_eq!(d.mappings, vec![m(0x7000, 0x7fff, 0xc0_7000, 0x1000, wo)]);
    assert_eq!(d.faults.len(), 1);
    assert_eq!((d.faults[0].iova, d.faults[0].reason), (0x4000_0000, 0x7a));
    check_against_translate(&fx, &d);
}

#[test]
fn nested_splits_where_the_second_stage_changes() {
    let Sm { fx, dir, .. } = sm_setup("vtd,aw=57");
    let gs = GpaSpace::with_levels(&fx, 4);
    let s1_top = gs.table();
    fx.set_pasid_entry(dir, 0, nested_entry(gs.s2_top, 2, s1_top, 3, (true, false)));
    // A 2 MiB first-stage page over GPAs of which the second stage maps four 4 KiB pages.
    let gpa = 0x2_0000_0000;
    fs_map(&gs, s1_top, 4, 0x20_0000, gpa, 21, RW | US);
    for i in 0..4u64 {
        gs.map(gpa + (i << 12), 0x90_0000 + (i << 12), (true, i != 3));
    }
    // A page whose GPA the second stage does not map (79h), one beyond its width (84h).
    fs_map(&gs, s1_top, 4, 0x1000, 0x3_0000_0000, 12, RW | US);
    fs_map(&gs, s1_top, 4, 0x2000, 1 << 48, 12, RW | US);
    let d = dump(&fx, None, 100);
    assert_eq!(
        (d.mode.as_str(), d.did, d.pasid_entry),
        ("nested", Some(3), Some(0))
    );
    let rx = Perms {
        read: true,
        write: false,
        exec: true,
    };
    assert_eq!(
        d.mappings,
        vec![
            m(0x20_0000, 0x20_2fff, 0x90_0000, 0x1000, URWX),
            m(0x20_3000, 0x20_3fff, 0x90_3000, 0x1000, rx),
        ]
    );
    let got: Vec<(u64, u64, u8)> = d
        .faults
        .iter()
        .map(|f| (f.iova, f.last, f.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            (0x1000, 0x1fff, 0x79),
            (0x2000, 0x2fff, 0x84),
            (0x20_4000, 0x3f_ffff, 0x79),
        ]
    );
    check_against_translate(&fx, &d);
    // Both stages' tables: first-stage ones at their guest addresses, read where the second stage
    // puts them.
    let s1: Vec<_> = d
        .tables
        .iter()
        .filter(|t| t.stage == Stage::First)
        .collect();
    assert_eq!(s1.len(), 4, "PML4, PDPT, PD (with the 2M leaf), PT");
    assert_eq!(s1[0].guest_address, Some(s1_top));
    assert_eq!(s1[0].address, gs.hpa(s1_top));
    assert!(s1
        .iter()
        .all(|t| t.guest_address.is_some_and(|g| gs.hpa(g) == t.address)));
    let s2 = d.tables.iter().filter(|t| t.stage == Stage::Second).count();
    assert!(s2 >= 4, "the nest parent's tables");
    assert_eq!(
        d.tables
            .iter()
            .filter(|t| t.stage == Stage::Second && t.level == 4)
            .count(),
        1
    );
    // The dot output names every table once and links each child.
    let dot = dump_dot(&d);
    assert!(dot.starts_with("digraph vtd_dump {") && dot.ends_with("}\n"));
    for t in &d.tables {
        let id = format!(
            "s{}_{:x}",
            if t.stage == Stage::First { 1 } else { 2 },
            t.address
        );
        assert_eq!(dot.matches(&format!("  {id} [label=")).count(), 1, "{id}");
        for c in &t.children {
            let cid = format!("s{}_{:x}", if t.stage == Stage::First { 1 } else { 2 }, c);
            assert!(dot.contains(&format!("  {id} -> {cid};")), "{id} -> {cid}");
        }
    }
    assert!(dot.contains("entry -> s1_") && dot.contains("entry -> s2_"));
    assert!(dot.contains("nested"));
    // A first-stage table the second stage lets the unit write but not read: 76h for its range.
    let pt = s1.iter().find(|t| t.level == 1).unwrap();
    let (pt_gpa, pt_hpa) = (pt.guest_address.unwrap(), pt.address);
    gs.map(pt_gpa, pt_hpa, (false, true));
    let d = dump(&fx, None, 100);
    let got: Vec<(u64, u64, u8)> = d
        .faults
        .iter()
        .map(|f| (f.iova, f.last, f.reason))
        .collect();
    assert_eq!(got[0], (0, 0x1f_ffff, 0x76));
    assert_eq!(d.mappings.len(), 2, "the 2M page is not under that table");
    check_against_translate(&fx, &d);
    // The PD read-only in the second stage: the unit cannot update accessed/dirty flags there.
    // The checks above translated the 2M page, setting its A (not D): reads work, writes would
    // need D (77h); the L1 pointer entry still has A clear (its walks failed): 77h.
    let pd = s1.iter().find(|t| t.level == 2).unwrap();
    let (pd_gpa, pd_hpa) = (pd.guest_address.unwrap(), pd.address);
    gs.map(pd_gpa, pd_hpa, (true, false));
    let slot = fs_slot(&gs, s1_top, 4, 0x20_0000, 21);
    assert_eq!(gs.get(slot) & (A | D), A);
    let d = dump(&fx, None, 100);
    let got: Vec<(u64, u64, u8)> = d
        .faults
        .iter()
        .map(|f| (f.iova, f.last, f.reason))
        .collect();
    assert_eq!(
        got,
        vec![(0, 0x1f_ffff, 0x77), (0x20_4000, 0x3f_ffff, 0x79)]
    );
    assert_eq!(
        d.mappings,
        vec![m(0x20_0000, 0x20_3fff, 0x90_0000, 0x1000, rx)]
    );
    check_against_translate(&fx, &d);
    assert_eq!(fx.out(SID, None, 0x20_0000, Access::Write), Err(0x77));
    // With A clear too, nothing under the PD is usable.
    gs.set(slot, gs.get(slot) & !A);
    let d = dump(&fx, None, 100);
    let got: Vec<(u64, u64, u8)> = d
        .faults
        .iter()
        .map(|f| (f.iova, f.last, f.reason))
        .collect();
    assert_eq!(got, vec![(0, 0x3f_ffff, 0x77)]);
    assert!(d.mappings.is_empty());
    check_against_translate(&fx, &d);
}

#[test]
fn hostile_tables_are_bounded() {
    // Every entry of the top table points back at it: listed once, never re-walked.
    let (fx, top) = legacy("vtd,sm=off");
    for i in 0..512u64 {
        fx.wr(top + i * 8, top | 3);
    }
    let d = dump(&fx, None, 100);
    assert_eq!(d.tables.len(), 1);
    assert_eq!(d.revisits, 512);
    assert!(d.mappings.is_empty() && !d.truncated);
    assert_eq!(d.tables[0].children, vec![top], "one edge, to itself");
    assert!(dump_dot(&d).contains(&format!("s2_{top:x} -> s2_{top:x};")));
    // First stage: a PML4 whose entries all point at one PDPT whose entries point at the PML4.
    let Sm { fx, dir, .. } = sm_setup("vtd");
    let (a, b) = (fx.alloc(), fx.alloc());
    fx.set_pasid_entry(dir, 5, fl_entry(a, 4, false));
    for i in 0..512u64 {
        fx.wr(a + i * 8, b | P | RW | US);
        fx.wr(b + i * 8, a | P | RW | US);
    }
    let d = dump(&fx, Some(5), 100);
    assert_eq!(d.tables.len(), 2);
    assert_eq!(d.revisits, 511 + 512);
    // More tables than the bound: 1 + 512 + 8 x 512 distinct tables in 24 MiB.
    let mem = Arc::new(TestMemory::new(24 << 20));
    let vtd = Vtd::new(
        "vtd,sm=off".parse().unwrap(),
        mem.clone(),
        Arc::new(Sink::default()),
    );
    let (root, ctx, l4) = (0x1000u64, 0x2000u64, 0x3000u64);
    let mut next = 0x4000u64;
    mem.write_u64(root, ctx | 1).unwrap();
    mem.write_u64(ctx + u64::from(SID & 0xff) * 16, l4 | 1)
        .unwrap();
    mem.write_u64(ctx + u64::from(SID & 0xff) * 16 + 8, 2 | 1 << 8)
        .unwrap();
    for i in 0..512u64 {
        let l3 = next;
        next += 0x1000;
        mem.write_u64(l4 + i * 8, l3 | 3).unwrap();
        for j in 0..8u64 {
            mem.write_u64(l3 + j * 8, next | 3).unwrap();
            next += 0x1000;
        }
    }
    vtd.mmio_write(regs::RTADDR, &root.to_le_bytes());
    vtd.mmio_write(regs::GCMD, &regs::GCMD_SRTP.to_le_bytes());
    vtd.mmio_write(regs::GCMD, &regs::GCMD_TE.to_le_bytes());
    let d = vtd.dump(SID, None, 100);
    assert_eq!(d.tables.len(), MAX_TABLES);
    assert!(d.truncated);
    assert!(d.mappings.is_empty());
}
