//! The shared SMMUv3 assertions: named cases run in-process against the model (`cargo test`) and in the
//! guest over /dev/mem. Every case starts from a fresh default bring-up (the [`CaseDriver`] impl below) and
//! ends with no global error active.

use super::super::alloc::zalloc;
use super::super::backend::Backend;
use super::super::cases::{Case, CaseDriver, Outcome};
use super::super::pgtable::{Granule, PageTable, Perm, Stage};
use super::super::ram_checks::{verify_bytes, verify_fill};
use super::super::testdev::{self, pattern_byte, DmaResult};
use super::commands::{self, SyncSignal};
use super::driver::{
    cd_for, scratch, ste_abort, ste_bypass, ste_nested, ste_s1, ste_s2, CdTable, Driver, Options,
    StrtabFmt,
};
use super::events::Event;
use super::regs::*;
use pci::test_device::regs::STATUS_FAULT;

/// Every case starts from a default bring-up with PASID disabled; a global error left active afterwards
/// fails it.
impl CaseDriver for Driver {
    fn backend(&mut self) -> &mut dyn Backend {
        &mut *self.b
    }

    fn notes(&mut self) -> &mut Vec<String> {
        &mut self.log.lines
    }

    fn start_case(&mut self) -> Result<(), String> {
        self.bring_up(Options::default())
            .map_err(|e| format!("bring-up: {e}"))
            .and_then(|()| testdev::enable_pasid(&mut *self.b, false))
    }

    fn finish_case(&mut self, result: Result<Outcome, String>) -> Result<Outcome, String> {
        let outcome = result?;
        match self.active_gerror() {
            0 => Ok(outcome),
            g => Err(format!("GERROR ^ GERRORN = {g:#x} after the case")),
        }
    }
}

/// Every case, in order.
pub const CASES: &[Case<Driver>] = &[
    Case { name: "bringup", summary: "probe, reset, queues, stream table, SMMUEN: ACKs, IDRs as configured, no GERROR", run: bringup },
    Case { name: "gbpa", summary: "SMMUEN=0: GBPA bypass lets DMA through untranslated, GBPA.ABORT stops it without an event", run: gbpa },
    Case { name: "strtab-linear", summary: "linear stream table: bypass and abort STEs of SID 0x18 take effect", run: strtab_linear },
    Case { name: "strtab-2lvl", summary: "two-level stream table (lazy level-2 table): bypass and abort STEs take effect", run: strtab_2lvl },
    Case { name: "bypass", summary: "bypass STE: fill/copy land at the physical addresses, every byte; the probe is identity", run: bypass },
    Case { name: "abort", summary: "abort STE: DMA refused, nothing written, no event (IHI0070 5.2 Config 0b000)", run: abort },
    Case { name: "bad-ste", summary: "STE.V=0, an unimplemented stage, S2AA64=0: C_BAD_STE with the StreamID", run: bad_ste },
    Case { name: "s1-4k", summary: "stage 1, 4K granule: pages, a 2M block, read-only page; DMA and probe follow the tables", run: s1_4k },
    Case { name: "s1-granule", summary: "stage 1 with a 64K (else 16K) granule: DMA and probe page size", run: s1_big_granule },
    Case { name: "s1-ssid", summary: "SSIDs select CDs (linear and two-level CD tables), S1DSS=SSID0, C_BAD_CD, C_BAD_SUBSTREAMID", run: s1_ssid },
    Case { name: "s2", summary: "stage 2 only: pages, a 2M block; DMA and probe follow the tables", run: s2_only },
    Case { name: "nested", summary: "nested S1+S2 with the CD table and stage-1 tables in IPA space; stage-2 fault reports the IPA", run: nested },
    Case { name: "readonly", summary: "write to a read-only page: F_PERMISSION with SID, SSID, InputAddr, RnW=0 (stage 1 and stage 2)", run: readonly },
    Case { name: "unmapped", summary: "unmapped IOVAs: F_TRANSLATION with RnW per side; the device reports the event id", run: unmapped },
    Case { name: "tlb-invalidate", summary: "PTE change: stale until TLBI (if caching), new after TLBI_NH_VA / NH_ASID / S2_IPA / S12_VMALL", run: tlb_invalidate },
    Case { name: "cfg-invalidate", summary: "STE and CD changes: stale until CFGI_STE / CFGI_CD (if caching), new after", run: cfg_invalidate },
    Case { name: "cmd-sync-msi", summary: "CMD_SYNC with CS=SIG_IRQ writes MSIData to MSIAddr in RAM; CS=NONE completes", run: cmd_sync_msi },
    Case { name: "cmd-illegal", summary: "unknown opcode: GERROR.CMDQ_ERR, CONS.ERR=CERROR_ILL at the command; skip it, ack GERRORN, continue", run: cmd_illegal },
    Case { name: "evtq-irq", summary: "an event record raises the event-queue MSI (a RAM write of the programmed data)", run: evtq_irq },
    Case { name: "evtq-overflow", summary: "a full event queue sets PROD.OVFLG and drops records; acked via CONS.OVACKFLG, recording resumes", run: evtq_overflow },
    Case { name: "disable-reenable", summary: "SMMUEN off: untranslated (GBPA); back on: the STE translates again", run: disable_reenable },
];

// ---- helpers ----

const IOVA_A: u64 = 0x1_0000_0000;
const IOVA_BLOCK: u64 = 0x2_0000_0000;
const PAGE: u64 = 0x1000;

fn sid(d: &Driver) -> u32 {
    d.b.testdev_sid()
}

fn buf(d: &mut Driver, size: u64, align: u64) -> Result<u64, String> {
    zalloc(&mut *d.b, &mut d.alloc, size, align)
}

/// Whether the model caches (None when unknown: then stale results are not asserted).
fn caching(d: &Driver) -> Option<bool> {
    d.b.expected_config().map(|c| c.caching)
}

fn expect_fault(r: &DmaResult, what: &str, iova: u64, reason: u8) -> Result<(), String> {
    if r.status != STATUS_FAULT || r.fault_iova != iova || r.fault_reason != u32::from(reason) {
        return Err(format!(
            "{what}: expected a fault at {iova:#x} with reason {:#x} ({}), got {r}",
            reason,
            evt::name(reason)
        ));
    }
    Ok(())
}

/// Drains the event queue; fails if it held anything.
fn expect_no_events(d: &mut Driver, what: &str) -> Result<(), String> {
    let ev = d.read_events()?;
    if !ev.is_empty() {
        return Err(format!("{what}: unexpected events: {}", list(&ev)));
    }
    Ok(())
}

/// `[0x1, 0x2]` on one line (KTAP diagnostics are single lines).
fn hex_list(v: impl IntoIterator<Item = u64>) -> String {
    let items: Vec<String> = v.into_iter().map(|x| format!("{x:#x}")).collect();
    format!("[{}]", items.join(", "))
}

fn list(ev: &[Event]) -> String {
    ev.iter()
        .map(Event::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads the events and requires exactly one, returning it.
fn one_event(d: &mut Driver, what: &str) -> Result<Event, String> {
    let ev = d.read_events()?;
    match ev.as_slice() {
        [e] => Ok(*e),
        _ => Err(format!(
            "{what}: expected one event, got {}: {}",
            ev.len(),
            list(&ev)
        )),
    }
}

/// Checks an event's identity fields.
fn check_event(e: &Event, what: &str, id: u8, sid: u32, ssid: Option<u32>) -> Result<(), String> {
    let ok =
        e.id == id && e.sid == sid && e.ssv == ssid.is_some() && ssid.is_none_or(|s| e.ssid == s);
    if !ok {
        return Err(format!(
            "{what}: expected {}({id:#x}) sid={sid:#x} ssid={ssid:?}, got {e}",
            evt::name(id)
        ));
    }
    Ok(())
}

fn check_fault_event(
    e: &Event,
    what: &str,
    id: u8,
    sid: u32,
    ssid: Option<u32>,
    input: u64,
    read: bool,
) -> Result<(), String> {
    check_event(e, what, id, sid, ssid)?;
    if e.input_addr != input || e.rnw != read {
        return Err(format!(
            "{what}: expected InputAddr {input:#x} RnW={}, got {e}",
            u8::from(read)
        ));
    }
    Ok(())
}

/// The IPS / PS the driver programs: the OAS, at most 48 bits (no 52-bit tables here).
fn out_bits(d: &Driver) -> u8 {
    d.feat.oas_bits.min(48)
}

/// A stage-1 CD table with one CD (S1CDMax 0) over new 4K tables; returns both.
fn s1_single(d: &mut Driver, asid: u16) -> Result<(PageTable, CdTable), String> {
    let pt = PageTable::new(&mut *d.b, &mut d.alloc, Stage::S1, Granule::K4, 48, 0)?;
    let mut cdt = d.new_cd_table(0, false, 0)?;
    let cd = cd_for(&pt, asid, out_bits(d));
    d.write_cd(&mut cdt, 0, &cd)?;
    Ok((pt, cdt))
}

fn need_s1(d: &Driver) -> Option<Outcome> {
    (!d.feat.s1).then(|| Outcome::Skip("stage 1 not implemented (IDR0.S1P=0)".into()))
}

fn need_s2(d: &Driver) -> Option<Outcome> {
    (!d.feat.s2).then(|| Outcome::Skip("stage 2 not implemented (IDR0.S2P=0)".into()))
}

fn map(
    d: &mut Driver,
    pt: &PageTable,
    iova: u64,
    out: u64,
    size: u64,
    perm: Perm,
) -> Result<u64, String> {
    pt.map(&mut *d.b, &mut d.alloc, iova, out, size, perm)
}

fn dma_fill(d: &mut Driver, dst: u64, len: u64, pattern: u64, pasid: Option<u32>) -> DmaResult {
    testdev::fill(&mut *d.b, dst, len, pattern, pasid)
}

// ---- cases ----

fn bringup(d: &mut Driver) -> Result<Outcome, String> {
    let mut errs = Vec::new();
    let cr0 = d.b.mmio_read32(CR0);
    let ack = d.b.mmio_read32(CR0ACK);
    let want = d.enables;
    if cr0 != want || ack != want {
        errs.push(format!(
            "CR0 {cr0:#x} CR0ACK {ack:#x}, expected both {want:#x}"
        ));
    }
    for (name, reg, v) in [
        ("STRTAB_BASE_CFG", STRTAB_BASE_CFG, None),
        (
            "IRQ_CTRLACK",
            IRQ_CTRLACK,
            Some(
                irq_ctrl::GERROR_IRQEN
                    | irq_ctrl::EVTQ_IRQEN
                    | if d.priq.is_some() {
                        irq_ctrl::PRIQ_IRQEN
                    } else {
                        0
                    },
            ),
        ),
    ] {
        let got = d.b.mmio_read32(reg);
        if let Some(v) = v {
            if got != v {
                errs.push(format!("{name} reads {got:#x}, expected {v:#x}"));
            }
        } else {
            d.log.lines.push(format!("{name} = {got:#x}"));
        }
    }
    let base = d.b.mmio_read64(STRTAB_BASE) & 0x000f_ffff_ffff_ffc0;
    if base != d.strtab.base {
        errs.push(format!(
            "STRTAB_BASE reads {base:#x}, programmed {:#x}",
            d.strtab.base
        ));
    }
    let cons = d.b.mmio_read32(CMDQ_CONS);
    if cons & d.cmdq.mask() != d.cmdq.prod || cons & q::CONS_ERR_MASK != 0 {
        errs.push(format!(
            "CMDQ_CONS {cons:#x}, expected {:#x} without error",
            d.cmdq.prod
        ));
    }
    let g = d.active_gerror();
    if g != 0 {
        errs.push(format!("GERROR active {g:#x}"));
    }
    let f = d.feat.clone();
    d.log.lines.push(format!(
        "IDR0..5 = {}; s1={} s2={} 2lvl={} cd2l={} msi={} pri={} httu={} sid={} ssid={} oas={} gran 4k/16k/64k={}/{}/{} ril={} cmdqs={} evtqs={}",
        hex_list(f.idr.iter().map(|&v| u64::from(v))), f.s1, f.s2, f.two_level_strtab, f.cd2l, f.msi, f.pri, f.httu, f.sid_bits, f.ssid_bits, f.oas_bits,
        f.gran4k, f.gran16k, f.gran64k, f.ril, f.cmdq_log2, f.evtq_log2
    ));
    if !f.gran4k {
        errs.push("IDR5.GRAN4K clear: Linux's default granule is missing".into());
    }
    if let Some(c) = d.b.expected_config() {
        let checks: [(&str, u64, u64); 8] = [
            ("IDR0.S1P", u64::from(f.s1), u64::from(c.stage1)),
            ("IDR0.S2P", u64::from(f.s2), u64::from(c.stage2)),
            (
                "IDR0.ST_LEVEL (2lvl)",
                u64::from(f.two_level_strtab),
                u64::from(c.two_level_strtab),
            ),
            ("IDR0.HTTU", u64::from(f.httu), u64::from(c.httu)),
            ("IDR1.SIDSIZE", u64::from(f.sid_bits), u64::from(c.sid_bits)),
            (
                "IDR1.SSIDSIZE",
                u64::from(f.ssid_bits),
                u64::from(c.ssid_bits),
            ),
            ("IDR3.RIL", u64::from(f.ril), u64::from(c.ril)),
            (
                "IDR5.OAS (bits)",
                u64::from(f.oas_bits),
                u64::from(c.oas_bits),
            ),
        ];
        for (name, got, want) in checks {
            if got != want {
                errs.push(format!(
                    "{name} = {got}, configured {want} ({})",
                    c.option_string()
                ));
            }
        }
    }
    if let Some(p) = d.b.published_id_registers() {
        let idr: Vec<u64> = f.idr.iter().map(|&v| u64::from(v)).collect();
        if p.len() == idr.len() {
            if p != idr {
                errs.push(format!(
                    "published ID registers {} differ from IDR0..5 {}",
                    hex_list(p.iter().copied()),
                    hex_list(idr.iter().copied())
                ));
            }
        } else {
            for v in &p {
                if !idr.contains(v) {
                    errs.push(format!(
                        "published ID register {v:#x} is none of IDR0..5 {}",
                        hex_list(idr.iter().copied())
                    ));
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(Outcome::Pass)
    } else {
        Err(errs.join("; "))
    }
}

fn gbpa(d: &mut Driver) -> Result<Outcome, String> {
    let base = d.b.mem_base();
    let target = buf(d, PAGE, PAGE)?;
    d.disable()?;
    d.update_gbpa(0, gbpa::ABORT)?;
    dma_fill(d, target, 0x100, 0x1122_3344_5566_7788, None).expect_done("GBPA bypass fill")?;
    verify_fill(d, target, 0x100, 0x1122_3344_5566_7788)?;
    d.update_gbpa(gbpa::ABORT, 0)?;
    let r = dma_fill(d, target + 0x100, 0x100, 0x99, None);
    if r.status != STATUS_FAULT || r.bytes != 0 {
        return Err(format!(
            "GBPA.ABORT with SMMUEN=0: expected the fill refused, got {r}"
        ));
    }
    verify_fill(d, target + 0x100, 0x100, 0)?;
    // The event queue is disabled with the SMMU; nothing may appear once it is back either.
    d.update_gbpa(0, gbpa::ABORT)?;
    d.bring_up(Options::default())?;
    expect_no_events(d, "after GBPA abort")?;
    d.log.lines.push(format!("window base {base:#x}"));
    Ok(Outcome::Pass)
}

/// Bypass then abort on SID 0x18 with the stream table in format `fmt`.
fn strtab_case(d: &mut Driver, fmt: StrtabFmt) -> Result<Outcome, String> {
    d.bring_up(Options {
        strtab: Some(fmt),
        ..Options::default()
    })?;
    let cfg = d.b.mmio_read32(STRTAB_BASE_CFG);
    let want_fmt = match fmt {
        StrtabFmt::Linear => strtab::FMT_LINEAR,
        StrtabFmt::TwoLevel => strtab::FMT_2LVL,
    };
    if (cfg >> strtab::FMT_SHIFT) & 3 != want_fmt {
        return Err(format!(
            "STRTAB_BASE_CFG reads {cfg:#x}, FMT should be {want_fmt}"
        ));
    }
    let target = buf(d, PAGE, PAGE)?;
    let s = sid(d);
    d.install_ste(s, &ste_bypass(), true)?;
    dma_fill(d, target, PAGE, 0xa5a5_5a5a_0102_0304, None).expect_done("bypass fill")?;
    verify_fill(d, target, PAGE, 0xa5a5_5a5a_0102_0304)?;
    d.install_ste(s, &ste_abort(), true)?;
    let r = dma_fill(d, target, PAGE, 0, None);
    if r.status != STATUS_FAULT {
        return Err(format!("abort STE: expected a fault, got {r}"));
    }
    verify_fill(d, target, PAGE, 0xa5a5_5a5a_0102_0304)?;
    expect_no_events(d, "bypass/abort")?;
    Ok(Outcome::Pass)
}

fn strtab_linear(d: &mut Driver) -> Result<Outcome, String> {
    strtab_case(d, StrtabFmt::Linear)
}

fn strtab_2lvl(d: &mut Driver) -> Result<Outcome, String> {
    if !d.feat.two_level_strtab {
        if d.b.expected_config().is_some_and(|c| c.two_level_strtab) {
            return Err("configured strtab=2lvl but IDR0.ST_LEVEL is linear".into());
        }
        return Ok(Outcome::Skip("IDR0.ST_LEVEL: linear only".into()));
    }
    strtab_case(d, StrtabFmt::TwoLevel)?;
    if d.strtab.l2.len() != 1 {
        return Err(format!(
            "expected one level-2 table, have {}",
            d.strtab.l2.len()
        ));
    }
    Ok(Outcome::Pass)
}

fn bypass(d: &mut Driver) -> Result<Outcome, String> {
    let a = buf(d, 4 * PAGE, PAGE)?;
    let s = sid(d);
    d.install_ste(s, &ste_bypass(), true)?;
    dma_fill(d, a + 0x10, 2 * PAGE, 0x0f1e_2d3c_4b5a_6978, None).expect_done("fill")?;
    verify_fill(d, a + 0x10, 2 * PAGE, 0x0f1e_2d3c_4b5a_6978)?;
    testdev::copy(
        &mut *d.b,
        a + 0x10,
        a + 2 * PAGE + 0x7,
        2 * PAGE - 0x20,
        None,
    )
    .expect_done("copy")?;
    verify_fill(
        d,
        a + 2 * PAGE + 0x7,
        2 * PAGE - 0x20,
        0x0f1e_2d3c_4b5a_6978,
    )?;
    let r = testdev::translate(&mut *d.b, a + 0x123, true, None);
    r.expect_done("probe")?;
    if r.xlate_out != a + 0x123 {
        return Err(format!(
            "bypass probe of {:#x} answered {:#x}",
            a + 0x123,
            r.xlate_out
        ));
    }
    expect_no_events(d, "bypass")?;
    Ok(Outcome::Pass)
}

fn abort(d: &mut Driver) -> Result<Outcome, String> {
    let a = buf(d, PAGE, PAGE)?;
    let s = sid(d);
    d.install_ste(s, &ste_abort(), true)?;
    let r = dma_fill(d, a, PAGE, 0x77, None);
    if r.status != STATUS_FAULT || r.bytes != 0 || r.fault_iova != a {
        return Err(format!(
            "abort STE: expected fault at {a:#x} with nothing written, got {r}"
        ));
    }
    if r.fault_reason != 0 {
        return Err(format!(
            "abort STE: no event exists, but the device was given reason {:#x}",
            r.fault_reason
        ));
    }
    verify_fill(d, a, PAGE, 0)?;
    let r = testdev::copy(&mut *d.b, a, a, 8, None);
    if r.status != STATUS_FAULT {
        return Err(format!("abort STE: read expected to fault, got {r}"));
    }
    // IHI0070 5.2, STE.Config 0b000: "abort ... no event is recorded".
    expect_no_events(d, "abort STE")?;
    Ok(Outcome::Pass)
}

fn bad_ste(d: &mut Driver) -> Result<Outcome, String> {
    let a = buf(d, PAGE, PAGE)?;
    let s = sid(d);
    let mut bad: Vec<(&str, [u64; 8])> = vec![("V=0", [0; 8])];
    let mut byp = ste_bypass();
    byp[0] &= !ste::V;
    bad.push(("bypass with V=0", byp));
    let ias = 40.min(u32::from(out_bits(d)));
    let pt = PageTable::new(&mut *d.b, &mut d.alloc, Stage::S2, Granule::K4, ias, 0)?;
    if d.feat.s2 {
        if d.feat.ttf == 2 {
            // S2AA64 = 0 selects AArch32 tables, which an AArch64-only SMMU (IDR0.TTF=2) cannot walk.
            let mut s2 = ste_s2(&pt, 1, out_bits(d));
            s2[2] &= !ste::S2AA64;
            bad.push(("S2AA64=0 on an AArch64-only SMMU", s2));
        }
    } else {
        bad.push((
            "stage 2 on an SMMU without S2P",
            ste_s2(&pt, 1, out_bits(d)),
        ));
    }
    if !d.feat.s1 {
        let cdt = d.new_cd_table(0, false, 0)?;
        bad.push(("stage 1 on an SMMU without S1P", ste_s1(&cdt, 0)));
    }
    for (what, ste) in bad {
        d.install_ste(s, &ste, true)?;
        let r = dma_fill(d, a, 0x40, 0x42, None);
        expect_fault(&r, what, a, evt::C_BAD_STE)?;
        let e = one_event(d, what)?;
        check_event(&e, what, evt::C_BAD_STE, s, None)?;
        verify_fill(d, a, 0x40, 0)?;
    }
    Ok(Outcome::Pass)
}

fn s1_4k(d: &mut Driver) -> Result<Outcome, String> {
    if let Some(o) = need_s1(d) {
        return Ok(o);
    }
    let s = sid(d);
    let (pt, cdt) = s1_single(d, 1)?;
    // Four IOVA pages onto four physical pages in reverse order.
    let pages = buf(d, 4 * PAGE, PAGE)?;
    for i in 0..4 {
        map(
            d,
            &pt,
            IOVA_A + i * PAGE,
            pages + (3 - i) * PAGE,
            PAGE,
            Perm::ReadWrite,
        )?;
    }
    let ro = buf(d, PAGE, PAGE)?;
    d.b.mem_write(ro, &[0x5c; PAGE as usize])?;
    map(d, &pt, IOVA_A + 8 * PAGE, ro, PAGE, Perm::ReadOnly)?;
    let block = buf(d, 2 << 20, 2 << 20)?;
    map(d, &pt, IOVA_BLOCK, block, 2 << 20, Perm::ReadWrite)?;
    d.install_ste(s, &ste_s1(&cdt, ste::S1DSS_TERMINATE), true)?;

    // A fill across all four pages, from an unaligned start.
    let pat = 0x8877_6655_4433_2211;
    dma_fill(d, IOVA_A + 0x80, 4 * PAGE - 0x100, pat, None).expect_done("S1 page fill")?;
    for i in 0..4u64 {
        let iova_lo = (IOVA_A + i * PAGE).max(IOVA_A + 0x80);
        let iova_hi = (IOVA_A + (i + 1) * PAGE).min(IOVA_A + 4 * PAGE - 0x80);
        let pa = pages + (3 - i) * PAGE + (iova_lo - IOVA_A - i * PAGE);
        let expected: Vec<u8> = (iova_lo..iova_hi)
            .map(|v| pattern_byte(pat, v - IOVA_A - 0x80))
            .collect();
        verify_bytes(d, pa, &expected).map_err(|e| format!("IOVA page {i}: {e}"))?;
    }
    // The whole 2M block.
    let pat2 = 0x0123_4567_89ab_cdef;
    dma_fill(d, IOVA_BLOCK, 2 << 20, pat2, None).expect_done("S1 block fill")?;
    verify_fill(d, block, 2 << 20, pat2)?;
    // Copy from the read-only page into the block: reading a read-only page is allowed.
    testdev::copy(
        &mut *d.b,
        IOVA_A + 8 * PAGE,
        IOVA_BLOCK + 0x1000,
        PAGE,
        None,
    )
    .expect_done("copy from RO page")?;
    verify_bytes(d, block + 0x1000, &[0x5c; PAGE as usize])?;
    // The probe answers the output address, page size and permissions.
    for (iova, out, size, write) in [
        (IOVA_A + 2 * PAGE + 0x18, pages + PAGE + 0x18, PAGE, true),
        (IOVA_BLOCK + 0x12_3456, block + 0x12_3456, 2 << 20, true),
        (IOVA_A + 8 * PAGE, ro, PAGE, false),
    ] {
        let r = testdev::translate(&mut *d.b, iova, false, None);
        r.expect_done("probe")?;
        let w = r.xlate_perms & pci::test_device::regs::XLATE_PERM_WRITE != 0;
        if r.xlate_out != out || r.xlate_size != size || w != write {
            return Err(format!(
                "probe of {iova:#x}: out {:#x} size {:#x} perms {:#x}, expected {out:#x} {size:#x} write={write}",
                r.xlate_out, r.xlate_size, r.xlate_perms
            ));
        }
    }
    expect_no_events(d, "S1 DMA")?;
    Ok(Outcome::Pass)
}

fn s1_big_granule(d: &mut Driver) -> Result<Outcome, String> {
    if let Some(o) = need_s1(d) {
        return Ok(o);
    }
    let g = if d.feat.gran64k {
        Granule::K64
    } else if d.feat.gran16k {
        Granule::K16
    } else {
        return Ok(Outcome::Skip(
            "IDR5 advertises neither 64K nor 16K granules".into(),
        ));
    };
    d.log.lines.push(format!("granule {g:?}"));
    let s = sid(d);
    let gs = g.size();
    let pt = PageTable::new(&mut *d.b, &mut d.alloc, Stage::S1, g, 48, 0)?;
    let mut cdt = d.new_cd_table(0, false, 0)?;
    let cd = cd_for(&pt, 2, out_bits(d));
    d.write_cd(&mut cdt, 0, &cd)?;
    let pages = buf(d, 2 * gs, gs)?;
    map(d, &pt, IOVA_A, pages + gs, gs, Perm::ReadWrite)?;
    map(d, &pt, IOVA_A + gs, pages, gs, Perm::ReadWrite)?;
    d.install_ste(s, &ste_s1(&cdt, ste::S1DSS_TERMINATE), true)?;
    let pat = 0x1357_9bdf_2468_ace0;
    dma_fill(d, IOVA_A + gs - 0x100, 0x200, pat, None)
        .expect_done("fill across the granule boundary")?;
    verify_fill(d, pages + 2 * gs - 0x100, 0x100, pat)?;
    let second: Vec<u8> = (0x100..0x200).map(|i| pattern_byte(pat, i)).collect();
    verify_bytes(d, pages, &second)?;
    let r = testdev::translate(&mut *d.b, IOVA_A + 0x1234, true, None);
    r.expect_done("probe")?;
    if r.xlate_out != pages + gs + 0x1234 || r.xlate_size != gs {
        return Err(format!(
            "probe: out {:#x} size {:#x}, expected {:#x} {gs:#x}",
            r.xlate_out,
            r.xlate_size,
            pages + gs + 0x1234
        ));
    }
    expect_no_events(d, "big granule")?;
    Ok(Outcome::Pass)
}

fn s1_ssid(d: &mut Driver) -> Result<Outcome, String> {
    if let Some(o) = need_s1(d) {
        return Ok(o);
    }
    if d.feat.ssid_bits == 0 {
        return Ok(Outcome::Skip("IDR1.SSIDSIZE = 0: no substreams".into()));
    }
    testdev::enable_pasid(&mut *d.b, true)?;
    let s = sid(d);
    let mut layouts = vec![(false, d.feat.ssid_bits.min(3))];
    if d.feat.cd2l {
        layouts.push((true, d.feat.ssid_bits.min(8)));
    }
    for (layout, (two_level, bits)) in layouts.into_iter().enumerate() {
        let what = if two_level {
            "two-level CD table"
        } else {
            "linear CD table"
        };
        let mut cdt = d.new_cd_table(bits, two_level, 0)?;
        // SSIDs to give CDs: 0 (the S1DSS=SSID0 target), 1, and the last one (another L1 entry if two-level).
        let last = (1u32 << bits) - 1;
        let ssids = [0u32, 1, last];
        let target = buf(d, 4 * PAGE, PAGE)?;
        for (i, &ssid) in ssids.iter().enumerate() {
            let pt = PageTable::new(&mut *d.b, &mut d.alloc, Stage::S1, Granule::K4, 48, 0)?;
            map(
                d,
                &pt,
                IOVA_A,
                target + i as u64 * PAGE,
                PAGE,
                Perm::ReadWrite,
            )?;
            // ASIDs unique across layouts: a TLB entry of the previous layout's tables must not match.
            let cd = cd_for(&pt, 10 + 4 * layout as u16 + i as u16, out_bits(d));
            d.write_cd(&mut cdt, ssid, &cd)?;
        }
        d.install_ste(s, &ste_s1(&cdt, ste::S1DSS_SSID0), true)?;
        for (i, pasid) in [None, Some(1), Some(last)].into_iter().enumerate() {
            let pat = 0x1111_1111_1111_1111u64 * (i as u64 + 1);
            dma_fill(d, IOVA_A, 0x80, pat, pasid)
                .expect_done(&format!("{what}: fill with PASID {pasid:?}"))?;
            verify_fill(d, target + i as u64 * PAGE, 0x80, pat)
                .map_err(|e| format!("{what}: PASID {pasid:?}: {e}"))?;
        }
        expect_no_events(d, what)?;
        // An SSID inside the table whose CD is invalid (V=0): C_BAD_CD.
        if last > 2 {
            let r = dma_fill(d, IOVA_A, 0x40, 0, Some(2));
            expect_fault(
                &r,
                &format!("{what}: SSID 2 without CD"),
                IOVA_A,
                evt::C_BAD_CD,
            )?;
            let e = one_event(d, what)?;
            check_event(
                &e,
                &format!("{what}: SSID 2 without CD"),
                evt::C_BAD_CD,
                s,
                Some(2),
            )?;
        }
        // An SSID beyond S1CDMax: C_BAD_SUBSTREAMID.
        if bits < d.feat.ssid_bits {
            let beyond = 1u32 << bits;
            let r = dma_fill(d, IOVA_A, 0x40, 0, Some(beyond));
            expect_fault(
                &r,
                &format!("{what}: SSID {beyond:#x} beyond S1CDMax"),
                IOVA_A,
                evt::C_BAD_SUBSTREAMID,
            )?;
            let e = one_event(d, what)?;
            check_event(&e, what, evt::C_BAD_SUBSTREAMID, s, Some(beyond))?;
        }
        verify_fill(d, target + 3 * PAGE, PAGE, 0)?;
    }
    testdev::enable_pasid(&mut *d.b, false)?;
    Ok(Outcome::Pass)
}

/// Stage-2 tables sized for this SMMU: input = output size (at most 48 bits), 4K granule.
fn s2_table(d: &mut Driver) -> Result<PageTable, String> {
    let ias = u32::from(out_bits(d));
    PageTable::new(&mut *d.b, &mut d.alloc, Stage::S2, Granule::K4, ias, 0)
}

fn s2_only(d: &mut Driver) -> Result<Outcome, String> {
    if let Some(o) = need_s2(d) {
        return Ok(o);
    }
    let s = sid(d);
    let pt = s2_table(d)?;
    let ipa = 0x8000_0000u64;
    let ipa_block = 0xc000_0000u64;
    let pages = buf(d, 2 * PAGE, PAGE)?;
    map(d, &pt, ipa, pages + PAGE, PAGE, Perm::ReadWrite)?;
    map(d, &pt, ipa + PAGE, pages, PAGE, Perm::ReadWrite)?;
    let block = buf(d, 2 << 20, 2 << 20)?;
    map(d, &pt, ipa_block, block, 2 << 20, Perm::ReadWrite)?;
    d.install_ste(s, &ste_s2(&pt, 1, out_bits(d)), true)?;
    let pat = 0xfeed_face_cafe_beef;
    dma_fill(d, ipa + 0x800, PAGE, pat, None).expect_done("S2 fill")?;
    verify_fill(d, pages + PAGE + 0x800, 0x800, pat)?;
    let rest: Vec<u8> = (0x800..0x1000).map(|i| pattern_byte(pat, i)).collect();
    verify_bytes(d, pages, &rest)?;
    dma_fill(d, ipa_block, 2 << 20, !pat, None).expect_done("S2 block fill")?;
    verify_fill(d, block, 2 << 20, !pat)?;
    let r = testdev::translate(&mut *d.b, ipa_block + 0x1f_fff8, true, None);
    r.expect_done("probe")?;
    if r.xlate_out != block + 0x1f_fff8 || r.xlate_size != 2 << 20 {
        return Err(format!(
            "S2 block probe: out {:#x} size {:#x}",
            r.xlate_out, r.xlate_size
        ));
    }
    expect_no_events(d, "S2 DMA")?;
    Ok(Outcome::Pass)
}

/// IPA where the nested case's stage 2 shows the driver's RAM window.
const NESTED_IPA_BASE: u64 = 0x4000_0000;

fn nested(d: &mut Driver) -> Result<Outcome, String> {
    if !(d.feat.s1 && d.feat.s2) {
        return Ok(Outcome::Skip("nesting needs both stages".into()));
    }
    let s = sid(d);
    let base = d.b.mem_base();
    let size = d.b.mem_size();
    let off = NESTED_IPA_BASE.wrapping_sub(base);
    // Stage 2: the whole RAM window at NESTED_IPA_BASE, 2M blocks.
    let s2 = s2_table(d)?;
    let mut o = 0;
    while o < size {
        map(
            d,
            &s2,
            NESTED_IPA_BASE + o,
            base + o,
            2 << 20,
            Perm::ReadWrite,
        )?;
        o += 2 << 20;
    }
    // Stage 1 tables and the CD table addressed by IPA.
    let s1 = PageTable::new(&mut *d.b, &mut d.alloc, Stage::S1, Granule::K4, 48, off)?;
    let mut cdt = d.new_cd_table(0, false, off)?;
    let cd = cd_for(&s1, 3, out_bits(d));
    d.write_cd(&mut cdt, 0, &cd)?;
    let pages = buf(d, 2 * PAGE, PAGE)?;
    map(d, &s1, IOVA_A, pages + PAGE + off, PAGE, Perm::ReadWrite)?;
    map(d, &s1, IOVA_A + PAGE, pages + off, PAGE, Perm::ReadWrite)?;
    // A stage-1 leaf whose IPA stage 2 does not map.
    let hole_ipa = NESTED_IPA_BASE + size + 0x20_0000;
    map(d, &s1, IOVA_A + 4 * PAGE, hole_ipa, PAGE, Perm::ReadWrite)?;
    d.install_ste(
        s,
        &ste_nested(&cdt, ste::S1DSS_TERMINATE, &s2, 2, out_bits(d)),
        true,
    )?;
    let pat = 0x2468_1357_0000_ffff;
    dma_fill(d, IOVA_A + 0x100, 2 * PAGE - 0x200, pat, None).expect_done("nested fill")?;
    let first: Vec<u8> = (0..PAGE - 0x100).map(|i| pattern_byte(pat, i)).collect();
    verify_bytes(d, pages + PAGE + 0x100, &first)?;
    let second: Vec<u8> = (PAGE - 0x100..2 * PAGE - 0x200)
        .map(|i| pattern_byte(pat, i))
        .collect();
    verify_bytes(d, pages, &second)?;
    let r = testdev::translate(&mut *d.b, IOVA_A + 0x10, false, None);
    r.expect_done("nested probe")?;
    if r.xlate_out != pages + PAGE + 0x10 {
        return Err(format!(
            "nested probe answered {:#x}, expected PA {:#x}",
            r.xlate_out,
            pages + PAGE + 0x10
        ));
    }
    expect_no_events(d, "nested DMA")?;
    // Stage-2 fault on the leaf's output: F_TRANSLATION, S2=1, IPA reported.
    let r = dma_fill(d, IOVA_A + 4 * PAGE, 0x40, 0, None);
    expect_fault(
        &r,
        "nested stage-2 hole",
        IOVA_A + 4 * PAGE,
        evt::F_TRANSLATION,
    )?;
    let e = one_event(d, "nested stage-2 hole")?;
    check_fault_event(
        &e,
        "nested stage-2 hole",
        evt::F_TRANSLATION,
        s,
        None,
        IOVA_A + 4 * PAGE,
        false,
    )?;
    if !e.s2 || e.ipa & !0xfff != hole_ipa {
        return Err(format!(
            "nested stage-2 fault: expected S2=1 and IPA {hole_ipa:#x}, got {e}"
        ));
    }
    Ok(Outcome::Pass)
}

fn readonly(d: &mut Driver) -> Result<Outcome, String> {
    let s = sid(d);
    let mut ran = false;
    if d.feat.s1 {
        ran = true;
        // With a PASID when substreams exist, so the record's SSV/SSID are checked too.
        let ssid = (d.feat.ssid_bits > 0).then_some(3u32);
        let bits = d.feat.ssid_bits.min(2);
        let pt = PageTable::new(&mut *d.b, &mut d.alloc, Stage::S1, Granule::K4, 48, 0)?;
        let mut cdt = d.new_cd_table(bits, false, 0)?;
        let cd = cd_for(&pt, 4, out_bits(d));
        d.write_cd(&mut cdt, ssid.unwrap_or(0), &cd)?;
        if ssid.is_some() {
            testdev::enable_pasid(&mut *d.b, true)?;
        }
        let page = buf(d, PAGE, PAGE)?;
        d.b.mem_write(page, &[0x3c; PAGE as usize])?;
        map(d, &pt, IOVA_A, page, PAGE, Perm::ReadOnly)?;
        d.install_ste(s, &ste_s1(&cdt, ste::S1DSS_TERMINATE), true)?;
        let r = dma_fill(d, IOVA_A + 0x20, 0x40, 0, ssid);
        expect_fault(
            &r,
            "S1 write to read-only page",
            IOVA_A + 0x20,
            evt::F_PERMISSION,
        )?;
        let e = one_event(d, "S1 read-only")?;
        check_fault_event(
            &e,
            "S1 read-only",
            evt::F_PERMISSION,
            s,
            ssid,
            IOVA_A + 0x20,
            false,
        )?;
        if e.s2 {
            return Err(format!("stage-1 permission fault reported as stage 2: {e}"));
        }
        verify_bytes(d, page, &[0x3c; PAGE as usize])?;
        testdev::enable_pasid(&mut *d.b, false)?;
    }
    if d.feat.s2 {
        ran = true;
        let pt = s2_table(d)?;
        let page = buf(d, PAGE, PAGE)?;
        map(d, &pt, 0x8000_0000, page, PAGE, Perm::ReadOnly)?;
        d.install_ste(s, &ste_s2(&pt, 5, out_bits(d)), true)?;
        let r = dma_fill(d, 0x8000_0100, 0x10, 0xff, None);
        expect_fault(
            &r,
            "S2 write to read-only page",
            0x8000_0100,
            evt::F_PERMISSION,
        )?;
        let e = one_event(d, "S2 read-only")?;
        check_fault_event(
            &e,
            "S2 read-only",
            evt::F_PERMISSION,
            s,
            None,
            0x8000_0100,
            false,
        )?;
        if !e.s2 {
            return Err(format!("stage-2 permission fault without S2=1: {e}"));
        }
        verify_fill(d, page, PAGE, 0)?;
    }
    if !ran {
        return Ok(Outcome::Skip("no stage implemented".into()));
    }
    Ok(Outcome::Pass)
}

fn unmapped(d: &mut Driver) -> Result<Outcome, String> {
    if let Some(o) = need_s1(d) {
        return Ok(o);
    }
    let s = sid(d);
    let (pt, cdt) = s1_single(d, 6)?;
    let page = buf(d, PAGE, PAGE)?;
    map(d, &pt, IOVA_A, page, PAGE, Perm::ReadWrite)?;
    d.install_ste(s, &ste_s1(&cdt, ste::S1DSS_TERMINATE), true)?;
    // Read side: copy from an unmapped source.
    let src = IOVA_A + 0x10_0000;
    let r = testdev::copy(&mut *d.b, src, IOVA_A, 0x40, None);
    expect_fault(&r, "copy from unmapped", src, evt::F_TRANSLATION)?;
    let e = one_event(d, "unmapped read")?;
    check_fault_event(&e, "unmapped read", evt::F_TRANSLATION, s, None, src, true)?;
    // Write side: a fill running off the mapped page stops at the next page.
    let r = dma_fill(d, IOVA_A + PAGE - 0x20, 0x40, 0xabab, None);
    expect_fault(&r, "fill off the page", IOVA_A + PAGE, evt::F_TRANSLATION)?;
    if r.bytes != 0x20 {
        return Err(format!(
            "fill off the page: {} bytes written, expected 0x20",
            r.bytes
        ));
    }
    let e = one_event(d, "unmapped write")?;
    check_fault_event(
        &e,
        "unmapped write",
        evt::F_TRANSLATION,
        s,
        None,
        IOVA_A + PAGE,
        false,
    )?;
    verify_fill(d, page + PAGE - 0x20, 0x20, 0xabab)?;
    // Beyond the 48-bit input range of the CD (T0SZ = 16).
    let high = 1u64 << 50;
    let r = dma_fill(d, high, 8, 1, None);
    if r.status != STATUS_FAULT {
        return Err(format!(
            "IOVA {high:#x} beyond T0SZ: expected a fault, got {r}"
        ));
    }
    let e = one_event(d, "beyond T0SZ")?;
    if e.id != evt::F_TRANSLATION || e.input_addr != high {
        return Err(format!(
            "IOVA beyond the CD's input range: expected F_TRANSLATION at {high:#x}, got {e}"
        ));
    }
    Ok(Outcome::Pass)
}

/// One stale/refresh round: `remap` rewrites the PTE at `slot` to point at `new_pa`; `inval` are the commands
/// that make the SMMU see it.
#[allow(clippy::too_many_arguments)]
fn stale_round(
    d: &mut Driver,
    what: &str,
    iova: u64,
    slot: u64,
    new_leaf: u64,
    old_pa: u64,
    new_pa: u64,
    inval: &[commands::Cmd],
) -> Result<(), String> {
    let s0 = 0x0101_0101_0101_0101u64;
    dma_fill(d, iova, 0x40, s0, None).expect_done(&format!("{what}: warm-up"))?;
    verify_fill(d, old_pa, 0x40, s0)?;
    d.b.mem_write_u64(slot, new_leaf)?;
    let s1 = 0x0202_0202_0202_0202u64;
    dma_fill(d, iova, 0x40, s1, None).expect_done(&format!("{what}: without invalidation"))?;
    match caching(d) {
        Some(true) => verify_fill(d, old_pa, 0x40, s1).map_err(|e| {
            format!("{what}: caching on, the stale translation should still be used: {e}")
        })?,
        Some(false) => verify_fill(d, new_pa, 0x40, s1)
            .map_err(|e| format!("{what}: caching off, the new PTE should be used at once: {e}"))?,
        None => d
            .log
            .lines
            .push(format!("{what}: caching unknown, stale result not checked")),
    }
    d.issue_sync(inval)?;
    let s2 = 0x0303_0303_0303_0303u64;
    dma_fill(d, iova, 0x40, s2, None).expect_done(&format!("{what}: after invalidation"))?;
    verify_fill(d, new_pa, 0x40, s2).map_err(|e| format!("{what}: after invalidation: {e}"))
}

/// The invalidation commands of one round, given the address it remapped.
type InvalFor = Box<dyn Fn(u64) -> Vec<commands::Cmd>>;

fn tlb_invalidate(d: &mut Driver) -> Result<Outcome, String> {
    let s = sid(d);
    let mut ran = Vec::new();
    if d.feat.s1 {
        let asid = 7u16;
        let (pt, cdt) = s1_single(d, asid)?;
        d.install_ste(s, &ste_s1(&cdt, ste::S1DSS_TERMINATE), true)?;
        let mut rounds: Vec<(&str, InvalFor)> = vec![
            (
                "TLBI_NH_VA",
                Box::new(move |va| vec![commands::tlbi_nh_va(0, asid, va, true)]),
            ),
            (
                "TLBI_NH_ASID",
                Box::new(move |_| vec![commands::tlbi_nh_asid(0, asid)]),
            ),
        ];
        if d.feat.ril {
            // TG = 4K, SCALE 0, NUM 1: two pages from the address.
            rounds.push((
                "TLBI_NH_VA range",
                Box::new(move |va| vec![commands::tlbi_nh_va_range(0, asid, va, 1, 0, 1)]),
            ));
        }
        for (i, (what, cmds)) in rounds.iter().enumerate() {
            let iova = IOVA_A + 0x10_0000 * i as u64;
            let a = buf(d, PAGE, PAGE)?;
            let b = buf(d, PAGE, PAGE)?;
            let slot = map(d, &pt, iova, a, PAGE, Perm::ReadWrite)?;
            stale_round(
                d,
                what,
                iova,
                slot,
                pt.leaf(b, 3, Perm::ReadWrite),
                a,
                b,
                &cmds(iova),
            )?;
            ran.push(*what);
        }
    }
    if d.feat.s2 {
        let vmid = 9u16;
        let pt = s2_table(d)?;
        d.install_ste(s, &ste_s2(&pt, vmid, out_bits(d)), true)?;
        let rounds: [(&str, Vec<commands::Cmd>); 2] = [
            (
                "TLBI_S2_IPA",
                vec![commands::tlbi_s2_ipa(vmid, 0x8000_0000, true)],
            ),
            ("TLBI_S12_VMALL", vec![commands::tlbi_s12_vmall(vmid)]),
        ];
        for (i, (what, cmds)) in rounds.iter().enumerate() {
            let ipa = 0x8000_0000 + 0x10_0000 * i as u64;
            let cmds: Vec<commands::Cmd> = if i == 0 {
                vec![commands::tlbi_s2_ipa(vmid, ipa, true)]
            } else {
                cmds.clone()
            };
            let a = buf(d, PAGE, PAGE)?;
            let b = buf(d, PAGE, PAGE)?;
            let slot = map(d, &pt, ipa, a, PAGE, Perm::ReadWrite)?;
            stale_round(
                d,
                what,
                ipa,
                slot,
                pt.leaf(b, 3, Perm::ReadWrite),
                a,
                b,
                &cmds,
            )?;
            ran.push(*what);
        }
    }
    if ran.is_empty() {
        return Ok(Outcome::Skip("no stage implemented".into()));
    }
    d.log.lines.push(format!("rounds: {}", ran.join(", ")));
    expect_no_events(d, "invalidation")?;
    Ok(Outcome::Pass)
}

fn cfg_invalidate(d: &mut Driver) -> Result<Outcome, String> {
    let s = sid(d);
    let a = buf(d, PAGE, PAGE)?;
    // STE: bypass -> abort.
    d.install_ste(s, &ste_bypass(), true)?;
    dma_fill(d, a, 0x40, 0x11, None).expect_done("bypass warm-up")?;
    d.install_ste(s, &ste_abort(), false)?;
    let r = dma_fill(d, a, 0x40, 0x22, None);
    match caching(d) {
        Some(true) if !r.done() => {
            return Err(format!(
                "caching on: the cached bypass STE should still apply before CFGI_STE, got {r}"
            ))
        }
        Some(false) if r.done() => {
            return Err("caching off: the abort STE should apply without CFGI_STE".into())
        }
        _ => d
            .log
            .lines
            .push(format!("STE change without CFGI_STE: {r}")),
    }
    d.issue_sync(&[commands::cfgi_ste(s)])?;
    let r = dma_fill(d, a, 0x40, 0x33, None);
    if r.status != STATUS_FAULT {
        return Err(format!("after CFGI_STE the abort STE must apply, got {r}"));
    }
    if !d.feat.s1 {
        return Ok(Outcome::Pass);
    }
    // CD: TTB0 switches to other tables.
    let (pt1, mut cdt) = s1_single(d, 8)?;
    let pt2 = PageTable::new(&mut *d.b, &mut d.alloc, Stage::S1, Granule::K4, 48, 0)?;
    let p1 = buf(d, PAGE, PAGE)?;
    let p2 = buf(d, PAGE, PAGE)?;
    map(d, &pt1, IOVA_A, p1, PAGE, Perm::ReadWrite)?;
    map(d, &pt2, IOVA_A, p2, PAGE, Perm::ReadWrite)?;
    d.install_ste(s, &ste_s1(&cdt, ste::S1DSS_TERMINATE), true)?;
    dma_fill(d, IOVA_A, 0x40, 0x44, None).expect_done("CD warm-up")?;
    verify_fill(d, p1, 0x40, 0x44)?;
    // New tables and a new ASID (so no TLB entry can stand in for the CD).
    let cd2 = cd_for(&pt2, 9, out_bits(d));
    d.write_cd(&mut cdt, 0, &cd2)?;
    dma_fill(d, IOVA_A, 0x40, 0x55, None).expect_done("CD change without CFGI_CD")?;
    match caching(d) {
        Some(true) => verify_fill(d, p1, 0x40, 0x55)
            .map_err(|e| format!("caching on: the cached CD should still apply: {e}"))?,
        Some(false) => verify_fill(d, p2, 0x40, 0x55)
            .map_err(|e| format!("caching off: the new CD should apply at once: {e}"))?,
        None => {}
    }
    d.issue_sync(&[commands::cfgi_cd(s, 0), commands::tlbi_nh_asid(0, 8)])?;
    dma_fill(d, IOVA_A, 0x40, 0x66, None).expect_done("after CFGI_CD")?;
    verify_fill(d, p2, 0x40, 0x66).map_err(|e| format!("after CFGI_CD: {e}"))?;
    // And CFGI_CD_ALL + CFGI_ALL are accepted.
    d.issue_sync(&[commands::cfgi_cd_all(s), commands::cfgi_all()])?;
    expect_no_events(d, "config invalidation")?;
    Ok(Outcome::Pass)
}

fn cmd_sync_msi(d: &mut Driver) -> Result<Outcome, String> {
    let word = d.scratch + scratch::SYNC_MSI;
    d.b.mem_write_u32(word, 0)?;
    let data = 0xc0ff_ee01;
    d.issue(&commands::cfgi_all())?;
    d.issue(&commands::cmd_sync(SyncSignal::Msi { addr: word, data }))?;
    d.poll("CMD_SYNC MSI data in RAM", |d| {
        Ok((d.b.mem_read_u32(word)? == data).then_some(()))
    })?;
    let next = d.b.mem_read_u32(word + 4)?;
    if next != 0 {
        return Err(format!(
            "the MSI wrote past its 32-bit word: {next:#x} at {:#x}",
            word + 4
        ));
    }
    // CS = NONE: completion is CONS passing the sync.
    d.issue(&commands::cmd_sync(SyncSignal::None))?;
    let prod = d.cmdq.prod;
    d.poll("CMDQ_CONS past a CS=NONE CMD_SYNC", |d| {
        let c = d.b.mmio_read32(CMDQ_CONS) & d.cmdq.mask();
        Ok((c == prod).then_some(()))
    })?;
    // Linux's form: the MSI overwrites the sync command itself.
    d.issue_sync(&[commands::tlbi_nsnh_all()])?;
    Ok(Outcome::Pass)
}

fn cmd_illegal(d: &mut Driver) -> Result<Outcome, String> {
    let gerr_word = d.scratch + scratch::GERROR_MSI;
    d.b.mem_write_u32(gerr_word, 0)?;
    let sync_word = d.scratch + scratch::SYNC_MSI;
    d.b.mem_write_u32(sync_word, 0)?;
    let bad_at = d.cmdq.prod;
    d.issue(&commands::illegal())?;
    d.issue_raw(&commands::cfgi_all())?;
    d.issue_raw(&commands::cmd_sync(SyncSignal::Msi {
        addr: sync_word,
        data: 0x5157,
    }))?;
    let (cons, err, gerror) = d.wait_cmdq_error()?;
    let mut errs = Vec::new();
    if cons & d.cmdq.mask() != bad_at {
        errs.push(format!(
            "CMDQ_CONS {cons:#x} should point at the illegal command (index {bad_at:#x})"
        ));
    }
    if err != q::CERROR_ILL {
        errs.push(format!("CMDQ_CONS.ERR = {err}, expected CERROR_ILL (1)"));
    }
    if gerror & gerror::CMDQ_ERR == 0 {
        errs.push(format!("GERROR {gerror:#x} lacks CMDQ_ERR"));
    }
    if d.b.mem_read_u32(sync_word)? != 0 {
        errs.push(
            "the commands after the illegal one ran before the error was acknowledged".into(),
        );
    }
    if d.feat.msi && d.opts.irqs {
        let v = d.b.mem_read_u32(gerr_word)?;
        if v != scratch::GERROR_MSI_DATA {
            errs.push(format!(
                "GERROR MSI: {v:#x} at {gerr_word:#x}, expected {:#x}",
                scratch::GERROR_MSI_DATA
            ));
        }
    }
    d.skip_cmdq_error()?;
    d.poll("the queued CMD_SYNC after recovery", |d| {
        Ok((d.b.mem_read_u32(sync_word)? == 0x5157).then_some(()))
    })?;
    if d.active_gerror() != 0 {
        errs.push(format!(
            "GERROR still active after GERRORN: {:#x}",
            d.active_gerror()
        ));
    }
    let c = d.b.mmio_read32(CMDQ_CONS);
    if c & q::CONS_ERR_MASK != 0 && c & d.cmdq.mask() == d.cmdq.prod {
        d.log
            .lines
            .push(format!("CMDQ_CONS keeps ERR after recovery: {c:#x}"));
    }
    d.issue_sync(&[commands::cfgi_all()])?;
    if errs.is_empty() {
        Ok(Outcome::Pass)
    } else {
        Err(errs.join("; "))
    }
}

/// Points SID 0x18 at stage-1 tables with nothing mapped (or abort-free C_BAD_STE if no stage 1).
fn faulting_ste(d: &mut Driver) -> Result<(), String> {
    let s = sid(d);
    if d.feat.s1 {
        let (_pt, cdt) = s1_single(d, 12)?;
        d.install_ste(s, &ste_s1(&cdt, ste::S1DSS_TERMINATE), true)
    } else {
        d.install_ste(s, &[0; 8], true)
    }
}

fn evtq_irq(d: &mut Driver) -> Result<Outcome, String> {
    if !d.feat.msi {
        return Ok(Outcome::Skip("IDR0.MSI = 0".into()));
    }
    let word = d.scratch + scratch::EVTQ_MSI;
    d.b.mem_write_u32(word, 0)?;
    faulting_ste(d)?;
    let r = dma_fill(d, IOVA_A, 8, 0, None);
    if r.status != STATUS_FAULT {
        return Err(format!("expected a fault, got {r}"));
    }
    d.poll("the event-queue MSI", |d| {
        Ok((d.b.mem_read_u32(word)? == scratch::EVTQ_MSI_DATA).then_some(()))
    })?;
    let ev = d.read_events()?;
    if ev.len() != 1 {
        return Err(format!("expected one event, got {}", list(&ev)));
    }
    Ok(Outcome::Pass)
}

fn evtq_overflow(d: &mut Driver) -> Result<Outcome, String> {
    d.bring_up(Options {
        evtq_log2: 1,
        ..Options::default()
    })?;
    if d.evtq.log2 != 1 {
        return Err(format!(
            "event queue log2 {} (IDR1.EVTQS {})",
            d.evtq.log2, d.feat.evtq_log2
        ));
    }
    faulting_ste(d)?;
    let s = sid(d);
    for i in 0..4u64 {
        let r = dma_fill(d, IOVA_A + i * PAGE, 8, 0, None);
        if r.status != STATUS_FAULT {
            return Err(format!("fault {i}: expected a fault, got {r}"));
        }
    }
    let prod = d.b.mmio_read32(EVTQ_PROD);
    let cons = d.b.mmio_read32(EVTQ_CONS);
    if (prod ^ cons) & q::OVF == 0 {
        return Err(format!("4 events into a 2-entry queue: EVTQ_PROD {prod:#x} EVTQ_CONS {cons:#x}, no overflow flagged"));
    }
    if d.evtq.used(prod & d.evtq.mask(), cons & d.evtq.mask()) != 2 {
        return Err(format!(
            "EVTQ_PROD {prod:#x} / CONS {cons:#x}: the queue should hold exactly 2 records"
        ));
    }
    let ev = d.read_events()?;
    let want_id = if d.feat.s1 {
        evt::F_TRANSLATION
    } else {
        evt::C_BAD_STE
    };
    if ev.len() != 2 || ev.iter().any(|e| e.id != want_id || e.sid != s) {
        return Err(format!("expected the first two records, got {}", list(&ev)));
    }
    if d.feat.s1 && (ev[0].input_addr, ev[1].input_addr) != (IOVA_A, IOVA_A + PAGE) {
        return Err(format!(
            "the queue should keep the two oldest records: {}",
            list(&ev)
        ));
    }
    if d.overflows != 1 {
        return Err(format!("driver saw {} overflows", d.overflows));
    }
    let cons = d.b.mmio_read32(EVTQ_CONS);
    let prod = d.b.mmio_read32(EVTQ_PROD);
    if (prod ^ cons) & q::OVF != 0 {
        return Err(format!(
            "CONS.OVACKFLG write did not acknowledge: PROD {prod:#x} CONS {cons:#x}"
        ));
    }
    // Recording resumes.
    let r = dma_fill(d, IOVA_A + 9 * PAGE, 8, 0, None);
    if r.status != STATUS_FAULT {
        return Err(format!("after overflow: expected a fault, got {r}"));
    }
    let e = one_event(d, "after the overflow")?;
    if d.feat.s1 && e.input_addr != IOVA_A + 9 * PAGE {
        return Err(format!("after the overflow: {e}"));
    }
    if d.overflows != 1 {
        return Err("a second overflow was flagged for one record in an empty queue".into());
    }
    Ok(Outcome::Pass)
}

fn disable_reenable(d: &mut Driver) -> Result<Outcome, String> {
    if let Some(o) = need_s1(d) {
        return Ok(o);
    }
    let s = sid(d);
    let (pt, cdt) = s1_single(d, 13)?;
    let page = buf(d, PAGE, PAGE)?;
    let plain = buf(d, PAGE, PAGE)?;
    // IOVA = the physical address of `plain`, mapped elsewhere: the two regimes are told apart.
    map(d, &pt, plain, page, PAGE, Perm::ReadWrite)?;
    d.install_ste(s, &ste_s1(&cdt, ste::S1DSS_TERMINATE), true)?;
    dma_fill(d, plain, 0x40, 0x61, None).expect_done("translated")?;
    verify_fill(d, page, 0x40, 0x61)?;
    verify_fill(d, plain, 0x40, 0)?;
    let enables = d.enables;
    d.disable()?;
    d.update_gbpa(0, gbpa::ABORT)?;
    dma_fill(d, plain, 0x40, 0x62, None).expect_done("SMMUEN=0, GBPA bypass")?;
    verify_fill(d, plain, 0x40, 0x62).map_err(|e| format!("SMMUEN=0: {e}"))?;
    verify_fill(d, page, 0x40, 0x61)?;
    // Back on: queues first, then SMMUEN, then invalidate everything (as after any reset).
    d.write_reg_sync(CR0, CR0ACK, enables & !cr0::SMMUEN)?;
    d.write_reg_sync(CR0, CR0ACK, enables)?;
    d.enables = enables;
    d.issue_sync(&[commands::cfgi_all(), commands::tlbi_nsnh_all()])?;
    dma_fill(d, plain, 0x40, 0x63, None).expect_done("re-enabled")?;
    verify_fill(d, page, 0x40, 0x63).map_err(|e| format!("re-enabled: {e}"))?;
    verify_fill(d, plain, 0x40, 0x62)?;
    expect_no_events(d, "disable/re-enable")?;
    Ok(Outcome::Pass)
}
