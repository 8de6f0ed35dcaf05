//! The translation pipeline (IHI0070 §3.2 "Translation"): GBPA when SMMUEN = 0, the stream table,
//! STE.Config, SubstreamID/CD selection, the stage 1 and stage 2 walks (the walker in `pagetable`),
//! nesting, and the TLB / configuration cache. One code path serves `translate()` (Mode::Translate,
//! caches and counters when given) and `lookup()` / `dump()` (Mode::Lookup, no caches, no counters,
//! no access/dirty updates, steps recorded).

use super::cache::{Caches, TlbEntry, TlbKind, TlbTag};
use super::cd::{self, Cd, CdSelect};
use super::events::{
    Event, EventClass, C_BAD_STREAMID, C_BAD_SUBSTREAMID, F_ACCESS, F_ADDR_SIZE, F_PERMISSION,
    F_STREAM_DISABLED, F_TRANSLATION, F_WALK_EABT,
};
use super::pagetable::{
    self, FaultClass, Stage, WalkConfig, WalkFault, WalkFaultKind, WalkOutcome, WalkStep,
};
use super::stats::Smmuv3Stats;
use super::ste::{self, Ste, SteConfig, StrtabCfg};
use super::trace::{Ctx, WalkPurpose};
use crate::request::{Access, Perms, Translation};

/// Why a transaction was not translated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// An event; `record` is false when the configuration says not to record it (CD.R / STE.S2R for
    /// translation-class faults, CR2.RECINVSID for C_BAD_STREAMID).
    Event { event: Box<Event>, record: bool },
    /// Terminated without any event: STE.Config = abort, GBPA.ABORT while SMMUEN = 0, or a bypassed
    /// address beyond the OAS.
    Abort { why: &'static str },
}

impl Failure {
    pub fn event(event: Event, record: bool) -> Self {
        Failure::Event {
            event: Box::new(event),
            record,
        }
    }

    /// The event number (0 for an abort without event).
    pub fn id(&self) -> u8 {
        match self {
            Failure::Event { event, .. } => event.id,
            Failure::Abort { .. } => 0,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Failure::Event { event, .. } => event.name.to_string(),
            Failure::Abort { why } => format!("terminated without event: {why}"),
        }
    }
}

/// How the transaction was translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    /// SMMUEN = 0 with GBPA bypass.
    GlobalBypass,
    /// STE.Config = bypass (or stage 1 bypassed by S1DSS with stage 2 disabled).
    Bypass,
    S1,
    S2,
    Nested,
}

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    pub translation: Translation,
    pub path: Path,
    /// Served by the TLB.
    pub tlb_hit: bool,
}

/// The register state a translation depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub smmuen: bool,
    pub gbpa_abort: bool,
    pub strtab: StrtabCfg,
    pub recinvsid: bool,
}

fn class_of(c: FaultClass) -> EventClass {
    match c {
        FaultClass::CD => EventClass::Cd,
        FaultClass::TT => EventClass::Tt,
        FaultClass::IN => EventClass::In,
    }
}

/// The event for a walk fault (§7.3.12-§7.3.15, F_WALK_EABT §7.3.11). Translation-class faults are
/// recorded per CD.R (stage 1) or STE.S2R (stage 2); external aborts always.
fn walk_failure(ctx: &Ctx, f: &WalkFault, s1_record: bool, s2_record: bool) -> Failure {
    let id = match f.kind {
        WalkFaultKind::Translation => F_TRANSLATION,
        WalkFaultKind::AddressSize => F_ADDR_SIZE,
        WalkFaultKind::AccessFlag => F_ACCESS,
        WalkFaultKind::Permission => F_PERMISSION,
        WalkFaultKind::ExternalAbort => F_WALK_EABT,
    };
    let mut e = ctx.event(id);
    e.s2 = f.stage == Stage::S2;
    e.class = class_of(f.class);
    e.ipa = f.ipa;
    e.fetch_addr = f.fetch_addr;
    let record = match id {
        F_WALK_EABT => true,
        _ if e.s2 => s2_record,
        _ => s1_record,
    };
    Failure::event(e, record)
}

/// The input region one descriptor at `level` covers with `cfg`'s granule (level 3 and deeper: a
/// page).
fn region(cfg: &WalkConfig, level: u8) -> u64 {
    let g = cfg.granule.page_shift();
    let shift = g + u32::from(3u8.saturating_sub(level)) * (g - 3);
    1u64 << shift.min(63)
}

fn no_xlate(_: u64) -> Result<u64, WalkFault> {
    Ok(0)
}

/// One stage 2 walk of `ipa` (no stage 1 tables involved).
fn s2_walk(
    ctx: &mut Ctx,
    cfg: &WalkConfig,
    ipa: u64,
    access: Access,
    purpose: WalkPurpose,
) -> Result<WalkOutcome, WalkFault> {
    let mut ident = |a: u64| no_xlate(a).map(|_| a);
    let r = pagetable::walk(
        ctx.mem,
        cfg,
        ipa,
        access,
        ctx.privileged,
        ctx.mode,
        &mut ident,
    );
    let steps = match &r {
        Ok(o) => &o.steps,
        Err(f) => &f.steps,
    };
    let steps = steps.clone();
    ctx.push_walk(2, purpose, ipa, &steps);
    r
}

/// Address of `input` inside a walk outcome's page.
fn out_addr(o: &WalkOutcome, input: u64) -> u64 {
    let mask = o.page_size.wrapping_sub(1);
    (o.output & !mask) | (input & mask)
}

/// Stage 2 translation of a structure address (a CD or L1CD fetch; class CD): a read.
pub fn s2_translate(
    ctx: &mut Ctx,
    cfg: &WalkConfig,
    ipa: u64,
    class: EventClass,
    s2r: bool,
) -> Result<u64, Failure> {
    match s2_walk(ctx, cfg, ipa, Access::Read, WalkPurpose::CdFetch) {
        Ok(o) => Ok(out_addr(&o, ipa)),
        Err(mut f) => {
            f.stage = Stage::S2;
            f.ipa = Some(ipa);
            let mut fail = walk_failure(ctx, &f, true, s2r);
            if let Failure::Event { event, .. } = &mut fail {
                event.class = class;
            }
            Err(fail)
        }
    }
}

/// Whether `addr` is below 2^`bits` (any address is, for 64 bits or more).
fn fits(addr: u64, bits: u32) -> bool {
    addr.checked_shr(bits).unwrap_or(0) == 0
}

/// The stage 1 walk of `iova` under `cd`, with its table addresses (and output) translated by stage
/// 2 when `s2` is given. Returns the stage 1 outcome and, nested, the stage 2 outcome of its output.
fn s1_walk(
    ctx: &mut Ctx,
    cd: &Cd,
    s2: Option<&WalkConfig>,
    s2r: bool,
) -> Result<(WalkOutcome, Option<WalkOutcome>), Failure> {
    let iova = ctx.iova;
    let ia0 = 64 - u32::from(cd.t0sz.min(63));
    let ia1 = 64 - u32::from(cd.t1sz.min(63));
    // TTB0 covers [0, 2^(64-T0SZ)), TTB1 [2^64 - 2^(64-T1SZ), 2^64) (§5.4; TBI is not modelled).
    // T0SZ/T1SZ = 0 give a 64-bit range: a shift by 64 would overflow, hence `fits` (a CD whose EPDx
    // disables a range is not rejected for that range's TxSZ, so any value reaches here).
    let (cfg, input) = if fits(iova, ia0) {
        (cd.ttb0.as_ref(), iova)
    } else if ia1 < 64 && fits(!iova, ia1) {
        (cd.ttb1.as_ref(), iova & ((1u64 << ia1) - 1))
    } else {
        (None, iova)
    };
    let Some(cfg) = cfg else {
        // Outside both ranges, or in a range whose walks are disabled (EPDx): stage 1 translation
        // fault.
        let mut e = ctx.event(F_TRANSLATION);
        e.class = EventClass::In;
        let bits = if fits(iova, ia0) { ia0 } else { ia1 };
        ctx.skip = Some(1u64 << bits.min(63));
        return Err(Failure::event(e, cd.record));
    };
    let mem = ctx.mem;
    let mode = ctx.mode;
    let (access, privileged) = (ctx.access, ctx.privileged);
    let mut groups: Vec<(u64, Vec<WalkStep>)> = Vec::new();
    let r = match s2 {
        None => {
            let mut ident = |a: u64| no_xlate(a).map(|_| a);
            pagetable::walk(mem, cfg, input, access, privileged, mode, &mut ident)
        }
        Some(s2cfg) => {
            let tracing = ctx.lookup();
            let mut xlate = |ipa: u64| -> Result<u64, WalkFault> {
                let mut ident = |a: u64| no_xlate(a).map(|_| a);
                let r = pagetable::walk(mem, s2cfg, ipa, Access::Read, false, mode, &mut ident);
                if tracing {
                    let steps = match &r {
                        Ok(o) => o.steps.clone(),
                        Err(f) => f.steps.clone(),
                    };
                    groups.push((ipa, steps));
                }
                match r {
                    Ok(o) => Ok(out_addr(&o, ipa)),
                    Err(mut f) => {
                        f.stage = Stage::S2;
                        f.class = FaultClass::TT;
                        f.ipa = Some(ipa);
                        Err(f)
                    }
                }
            };
            pagetable::walk(mem, cfg, input, access, privileged, mode, &mut xlate)
        }
    };
    if ctx.lookup() {
        let s1_steps = match &r {
            Ok(o) => o.steps.clone(),
            Err(f) => f.steps.clone(),
        };
        // The k-th stage 2 walk translated the k-th stage 1 table: interleave them.
        let mut groups = groups.into_iter();
        for s in &s1_steps {
            if let Some((ipa, g)) = groups.next() {
                ctx.push_walk(2, WalkPurpose::S1Table, ipa, &g);
            }
            ctx.push_walk(1, WalkPurpose::Input, iova, std::slice::from_ref(s));
        }
        for (ipa, g) in groups {
            ctx.push_walk(2, WalkPurpose::S1Table, ipa, &g);
        }
    }
    let o1 = r.map_err(|f| {
        ctx.skip = Some(if f.stage == Stage::S1 {
            region(cfg, f.level)
        } else {
            region(cfg, 3)
        });
        walk_failure(ctx, &f, cd.record, s2r)
    })?;
    let Some(s2cfg) = s2 else {
        return Ok((o1, None));
    };
    let ipa = out_addr(&o1, input);
    match s2_walk(ctx, s2cfg, ipa, access, WalkPurpose::S1Output) {
        Ok(o2) => Ok((o1, Some(o2))),
        Err(mut f) => {
            f.stage = Stage::S2;
            f.class = FaultClass::IN;
            f.ipa = Some(ipa);
            ctx.skip = Some(region(cfg, 3));
            Err(walk_failure(ctx, &f, cd.record, s2r))
        }
    }
}

fn oas_bypass(ctx: &Ctx, path: Path) -> Result<Done, Failure> {
    let bits = u32::from(ctx.hw.cfg.oas_bits);
    if ctx.iova >> bits != 0 {
        return Err(Failure::Abort {
            why: "bypassed address beyond the OAS",
        });
    }
    Ok(Done {
        translation: Translation {
            iova: 0,
            output: 0,
            page_size: 1u64 << bits,
            perms: Perms::RW,
        },
        path,
        tlb_hit: false,
    })
}

/// The configuration a request resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    GlobalAbort,
    GlobalBypass,
    Abort,
    Bypass,
    /// Translated by stage 1 (`cd`), stage 2 (`ste.s2`), or both.
    Translate {
        ste: Box<Ste>,
        cd: Option<Box<Cd>>,
        vmid: u16,
    },
}

/// Resolves the STE and CD for the request in `ctx` (using and filling `caches` when given).
pub fn resolve(
    ctx: &mut Ctx,
    setup: &Setup,
    mut caches: Option<&mut Caches>,
    mut stats: Option<&mut Smmuv3Stats>,
) -> Result<Resolved, Failure> {
    if !setup.smmuen {
        return Ok(if setup.gbpa_abort {
            Resolved::GlobalAbort
        } else {
            Resolved::GlobalBypass
        });
    }
    let sid = ctx.sid;
    let cached = caches.as_ref().and_then(|c| c.ste(sid).cloned());
    if let Some(s) = stats.as_deref_mut() {
        if caches.is_some() {
            if cached.is_some() {
                s.ste_cache_hits += 1;
            } else {
                s.ste_cache_misses += 1;
            }
        }
    }
    let ste = match cached {
        Some(s) => s,
        None => {
            let s = ste::fetch(ctx, setup.strtab, sid).map_err(|e| {
                let mut ev = ctx.event(e.id);
                ev.fetch_addr = e.fetch;
                let record = e.id != C_BAD_STREAMID || setup.recinvsid;
                Failure::event(ev, record)
            })?;
            if let Some(c) = caches.as_deref_mut() {
                c.insert_ste(sid, s.clone());
            }
            s
        }
    };
    let vmid = if ctx.hw.cfg.stage2 { ste.s2vmid } else { 0 };
    match ste.config {
        SteConfig::Abort => return Ok(Resolved::Abort),
        SteConfig::Bypass => {
            if ctx.ssid.is_some() {
                return Err(Failure::event(ctx.event(C_BAD_SUBSTREAMID), true));
            }
            return Ok(Resolved::Bypass);
        }
        SteConfig::S2 => {
            if ctx.ssid.is_some() {
                return Err(Failure::event(ctx.event(C_BAD_SUBSTREAMID), true));
            }
            return Ok(Resolved::Translate {
                ste: Box::new(ste),
                cd: None,
                vmid,
            });
        }
        SteConfig::S1 | SteConfig::Nested => {}
    }
    let index = match cd::select(&ste, ctx.ssid, ctx.hw) {
        CdSelect::Index(i) => i,
        CdSelect::BadSsid => return Err(Failure::event(ctx.event(C_BAD_SUBSTREAMID), true)),
        CdSelect::Terminate => return Err(Failure::event(ctx.event(F_STREAM_DISABLED), true)),
        CdSelect::BypassS1 => {
            return Ok(if ste.s2.is_some() {
                Resolved::Translate {
                    ste: Box::new(ste),
                    cd: None,
                    vmid,
                }
            } else {
                Resolved::Bypass
            })
        }
    };
    let cached = caches.as_ref().and_then(|c| c.cd(sid, index).cloned());
    if let Some(s) = stats {
        if caches.is_some() {
            if cached.is_some() {
                s.cd_cache_hits += 1;
            } else {
                s.cd_cache_misses += 1;
            }
        }
    }
    let cd = match cached {
        Some(c) => c,
        None => {
            let c = cd::fetch(ctx, &ste, index)?;
            if let Some(cache) = caches {
                cache.insert_cd(sid, index, c.clone(), ste.s1cdmax == 0);
            }
            c
        }
    };
    Ok(Resolved::Translate {
        ste: Box::new(ste),
        cd: Some(Box::new(cd)),
        vmid,
    })
}

/// Translates the request in `ctx` end to end.
pub fn translate(
    ctx: &mut Ctx,
    setup: &Setup,
    mut caches: Option<&mut Caches>,
    mut stats: Option<&mut Smmuv3Stats>,
) -> Result<Done, Failure> {
    let resolved = resolve(ctx, setup, caches.as_deref_mut(), stats.as_deref_mut())?;
    let (ste, cd, vmid) = match resolved {
        Resolved::GlobalAbort => {
            return Err(Failure::Abort {
                why: "GBPA.ABORT with SMMUEN=0",
            })
        }
        Resolved::GlobalBypass => return oas_bypass(ctx, Path::GlobalBypass),
        Resolved::Abort => {
            return Err(Failure::Abort {
                why: "STE.Config=abort",
            })
        }
        Resolved::Bypass => return oas_bypass(ctx, Path::Bypass),
        Resolved::Translate { ste, cd, vmid } => (ste, cd, vmid),
    };
    let (kind, path, asid) = match (&cd, &ste.s2) {
        (Some(cd), Some(_)) => (TlbKind::Nested, Path::Nested, cd.asid),
        (Some(cd), None) => (TlbKind::S1, Path::S1, cd.asid),
        (None, _) => (TlbKind::S2, Path::S2, 0),
    };
    let tag = TlbTag { vmid, asid, kind };
    if let Some(c) = caches.as_deref() {
        let hit = c.tlb_lookup(tag, ctx.privileged, ctx.iova, ctx.access);
        if let Some(s) = stats.as_deref_mut() {
            if hit.is_some() {
                s.tlb_hits += 1;
            } else {
                s.tlb_misses += 1;
            }
        }
        if let Some((base, shift, e)) = hit {
            return Ok(Done {
                translation: Translation {
                    iova: base,
                    output: e.output,
                    page_size: 1u64 << shift,
                    perms: e.perms,
                },
                path,
                tlb_hit: true,
            });
        }
    }
    if let Some(s) = stats {
        s.walks += 1;
    }
    let iova = ctx.iova;
    let (page_size, out, perms) = match (&cd, &ste.s2) {
        (Some(cd), s2) => {
            let (o1, o2) = s1_walk(ctx, cd, s2.as_ref(), ste.s2r)?;
            match o2 {
                None => (o1.page_size, out_addr(&o1, iova), o1.perms),
                Some(o2) => {
                    let ipa = out_addr(&o1, iova);
                    (
                        o1.page_size.min(o2.page_size),
                        out_addr(&o2, ipa),
                        o1.perms.intersect(o2.perms),
                    )
                }
            }
        }
        (None, Some(s2)) => {
            let o = s2_walk(ctx, s2, iova, ctx.access, WalkPurpose::Input).map_err(|mut f| {
                f.stage = Stage::S2;
                f.ipa = Some(iova);
                f.class = FaultClass::IN;
                ctx.skip = Some(region(s2, f.level));
                walk_failure(ctx, &f, true, ste.s2r)
            })?;
            (o.page_size, out_addr(&o, iova), o.perms)
        }
        (None, None) => return oas_bypass(ctx, Path::Bypass),
    };
    if !page_size.is_power_of_two() {
        return Err(Failure::Abort {
            why: "walker returned a bad page size",
        });
    }
    let mask = page_size - 1;
    let translation = Translation {
        iova: iova & !mask,
        output: out & !mask,
        page_size,
        perms,
    };
    if let Some(c) = caches {
        c.tlb_insert(
            tag,
            ctx.privileged,
            iova,
            page_size.trailing_zeros() as u8,
            TlbEntry {
                output: translation.output,
                perms,
                by_write: ctx.access == Access::Write,
            },
        );
    }
    Ok(Done {
        translation,
        path,
        tlb_hit: false,
    })
}
