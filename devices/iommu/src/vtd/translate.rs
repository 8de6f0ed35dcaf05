//! DMA-remapping of one request (VT-d 4.x chapter 3): request -> root entry -> context entry ->
//! [PASID directory -> PASID table entry] -> second-stage, first-stage or nested walk, or pass-through,
//! each failure mapped to its architected fault reason.
//!
//! One walker serves both [`crate::DmaPort::translate`] and the side-effect-free [`super::Vtd::lookup`]:
//! a [`Session`] in translate mode uses and fills the caches, counts, and sets accessed/dirty flags; in
//! lookup mode it reads memory only and records every entry it reads.

use super::cache::{CachedContext, Caches, IotlbEntry, IotlbKey, NO_PASID};
use super::config::Hw;
use super::first_stage::{self, FsConfig, FsRequest, Nesting, Where};
use super::lookup::{self, decode, AdUpdate, SecondStagePurpose, Structure, Trace};
use super::reason::FaultReason;
use super::regs;
use super::state::State;
use super::stats::VtdStats;
use super::structures::{
    self, input_width, levels, Bad, LegacyContext, LegacyTt, PasidEntry, Pgtt, ScalableContext,
};
use super::walk::{self, Stage, WalkConfig, WalkFault};
use crate::mem::DmaMemory;
use crate::request::{Access, DmaFault, DmaRequest, Perms, RequestKind, Translation};

/// Pass-through translations are handed out in 1 GiB pages.
pub(super) const PT_PAGE_SHIFT: u32 = 30;

/// A successful remapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Remapped {
    pub translation: Translation,
    /// The stage that produced it; `None` for pass-through or translation disabled.
    pub stage: Option<Stage>,
}

/// Why a request was not remapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// An architected fault; `fpd` if a Fault Processing Disable bit covers it; `at` says where in a
    /// first-stage or nested walk it arose.
    Fault {
        reason: FaultReason,
        fpd: bool,
        at: Option<Where>,
    },
    /// A request without PASID to the interrupt address range: an interrupt, never DMA (3.14).
    InterruptRange,
}

impl Failure {
    /// The fault's description: the reason's, plus the walk position for first-stage/nested faults
    /// (which always names the stage).
    pub fn describe(reason: FaultReason, at: Option<Where>) -> String {
        match at {
            None => reason.description().to_string(),
            Some(w) => format!("{} ({w})", reason.description()),
        }
    }
}

pub(super) fn fault(reason: FaultReason, fpd: bool) -> Failure {
    Failure::Fault {
        reason,
        fpd,
        at: None,
    }
}

/// Maps a bad entry to (reason if not present, if reserved, if invalid).
fn bad(b: Bad, fpd: bool, r: [FaultReason; 3]) -> Failure {
    match b {
        Bad::NotPresent { fpd: e } => fault(r[0], fpd || e),
        // A malformed entry's own FPD cannot be trusted.
        Bad::Reserved { .. } => fault(r[1], fpd),
        Bad::Invalid { fpd: e } => fault(r[2], fpd || e),
    }
}

fn read_qwords<const N: usize>(mem: &dyn DmaMemory, addr: u64) -> Option<[u64; N]> {
    let mut out = [0u64; N];
    for (i, q) in out.iter_mut().enumerate() {
        *q = mem.read_u64(addr.checked_add(8 * i as u64)?).ok()?;
    }
    Some(out)
}

fn identity(iova: u64, shift: u32) -> Translation {
    let base = iova & !((1u64 << shift) - 1);
    Translation {
        iova: base,
        output: base,
        page_size: 1 << shift,
        perms: Perms::RW,
    }
}

pub(super) fn in_msi_range(addr: u64) -> bool {
    (regs::MSI_FIRST..=regs::MSI_LAST).contains(&addr)
}

/// Rejects an output address in the interrupt range (LGN.4 / SGN.8), and narrows a page that overlaps
/// the range to the 4 KiB page actually used, so no later access through the page can reach it.
fn check_output(
    t: Translation,
    iova: u64,
    reason: FaultReason,
    fpd: bool,
) -> Result<Translation, Failure> {
    let last = t.output.saturating_add(t.page_size - 1);
    if last < regs::MSI_FIRST || t.output > regs::MSI_LAST {
        return Ok(t);
    }
    let out = t.translate(iova);
    if in_msi_range(out) {
        return Err(fault(reason, fpd));
    }
    Ok(Translation {
        iova: iova & !0xfff,
        output: out & !0xfff,
        page_size: 0x1000,
        perms: t.perms,
    })
}

/// The reasons a mode uses for the second-stage walk and its result.
pub(super) struct SsReasons {
    pub top_access: FaultReason,
    pub access: FaultReason,
    pub not_present_read: FaultReason,
    pub not_present_write: FaultReason,
    pub reserved: FaultReason,
    pub read: FaultReason,
    pub write: FaultReason,
    pub interrupt: FaultReason,
}

pub(super) const LEGACY_SS: SsReasons = SsReasons {
    // LCT.4 covers an unreadable table named by SLPTPTR; LSL.1 the lower levels.
    top_access: FaultReason::ContextInvalid,
    access: FaultReason::PagingEntryAccess,
    not_present_read: FaultReason::ReadDenied,
    not_present_write: FaultReason::WriteDenied,
    reserved: FaultReason::PagingEntryReserved,
    read: FaultReason::ReadDenied,
    write: FaultReason::WriteDenied,
    interrupt: FaultReason::InterruptAddress,
};

pub(super) const SCALABLE_SS: SsReasons = SsReasons {
    // SSL.4 covers the table named by SLPTPTR ("invalid second-level page table pointer"), SSL.1 the
    // lower levels.
    top_access: FaultReason::SmSsTopAccess,
    access: FaultReason::SmSsAccess,
    not_present_read: FaultReason::SmSsNotPresent,
    not_present_write: FaultReason::SmSsNotPresent,
    reserved: FaultReason::SmSsReserved,
    read: FaultReason::SmReadDenied,
    write: FaultReason::SmWriteDenied,
    interrupt: FaultReason::SmInterruptAddress,
};

/// The domain a second-stage walk runs in.
struct Domain {
    did: u16,
    pasid: u32,
    root: u64,
    aw_code: u64,
    fpd: bool,
}

impl State {
    /// The DmaPort entry point: translate, and on failure record/report the fault.
    pub(crate) fn dma(
        &mut self,
        mem: &dyn DmaMemory,
        req: &DmaRequest,
    ) -> Result<Translation, DmaFault> {
        self.stats.translations += 1;
        let Ok(sid) = u16::try_from(req.source_id) else {
            return Err(DmaFault {
                model: "vtd".into(),
                reason: 0,
                description: "source id is not a PCI requester id".into(),
                iova: req.iova,
                recorded: false,
            });
        };
        let is_dma = !(req.pasid.is_none() && in_msi_range(req.iova));
        if req.kind == RequestKind::Untranslated && is_dma {
            if let Some(reason) = self.take_injection(sid) {
                self.stats.faults_injected += 1;
                return Err(self.report(req, sid, reason, false, false, true));
            }
        }
        match self.translate(mem, sid, req) {
            Ok(r) => {
                log::trace!(
                    "vtd: {} iova {:#x} -> {:#x} ({:?})",
                    super::config::Bdf(sid),
                    req.iova,
                    r.translation.translate(req.iova),
                    r.stage
                );
                Ok(r.translation)
            }
            Err(Failure::InterruptRange) => Err(DmaFault {
                model: "vtd".into(),
                reason: 0,
                description: "interrupt address range: not a DMA target".into(),
                iova: req.iova,
                recorded: false,
            }),
            Err(Failure::Fault { reason, fpd, at }) => {
                let tr = req.kind == RequestKind::TranslationRequest;
                let mut f = self.report(req, sid, reason, fpd, tr, false);
                f.description = Failure::describe(reason, at);
                Err(f)
            }
        }
    }

    /// Remaps one request, with the caches, counters and accessed/dirty updates. No fault is recorded
    /// here.
    pub(crate) fn translate(
        &mut self,
        mem: &dyn DmaMemory,
        sid: u16,
        req: &DmaRequest,
    ) -> Result<Remapped, Failure> {
        let (root, enabled, hw) = (self.root, self.gsts & regs::GSTS_TES != 0, self.hw);
        let caches = if hw.caching {
            Some(&mut self.caches)
        } else {
            None
        };
        Session::translate(mem, hw, caches, &mut self.stats).remap(root, enabled, sid, req)
    }
}

/// One remapping walk, in translate mode (caches, counters, A/D updates) or lookup mode (memory reads
/// and a trace only).
pub(crate) struct Session<'a> {
    mem: &'a dyn DmaMemory,
    hw: Hw,
    /// The caches to use and fill; None with caching off, and in lookup mode.
    caches: Option<&'a mut Caches>,
    /// The counters; None in lookup mode.
    stats: Option<&'a mut VtdStats>,
    /// Set accessed/dirty flags (translate) or only list them (lookup).
    write_ad: bool,
    /// The entries read (lookup mode).
    pub trace: Trace,
    /// Accessed/dirty updates made (translate) or that translate would make (lookup).
    pub ad: Vec<AdUpdate>,
    /// The IOTLB tag (DID, PASID) of the request, once known.
    pub tag: Option<(u16, u32)>,
}

impl<'a> Session<'a> {
    pub fn translate(
        mem: &'a dyn DmaMemory,
        hw: Hw,
        caches: Option<&'a mut Caches>,
        stats: &'a mut VtdStats,
    ) -> Self {
        Self {
            mem,
            hw,
            caches,
            stats: Some(stats),
            write_ad: true,
            trace: Trace::off(),
            ad: Vec::new(),
            tag: None,
        }
    }

    pub fn lookup(mem: &'a dyn DmaMemory, hw: Hw) -> Self {
        Self {
            mem,
            hw,
            caches: None,
            stats: None,
            write_ad: false,
            trace: Trace::on(),
            ad: Vec::new(),
            tag: None,
        }
    }

    fn count(&mut self, f: impl FnOnce(&mut VtdStats)) {
        if let Some(s) = self.stats.as_deref_mut() {
            f(s);
        }
    }

    /// Reads an N-qword entry, recording it (or its unreadability, blamed) in the trace.
    fn read_entry<const N: usize>(
        &mut self,
        structure: Structure,
        address: u64,
        index: u64,
        decoded: impl FnOnce(&[u64; N]) -> String,
    ) -> Option<[u64; N]> {
        match read_qwords::<N>(self.mem, address) {
            Some(q) => {
                self.trace
                    .step(|| lookup::step(structure, address, index, &q, decoded(&q)));
                Some(q)
            }
            None => {
                self.trace.unreadable(structure, address, index);
                None
            }
        }
    }

    /// A fault caused by the latest entry read.
    fn blame(&mut self, f: Failure) -> Failure {
        self.trace.blame();
        f
    }

    /// Remaps `req` from requester `sid`, given the latched root table (RTADDR at the last SRTP) and
    /// whether translation is enabled (GSTS.TES).
    pub fn remap(
        &mut self,
        root: u64,
        enabled: bool,
        sid: u16,
        req: &DmaRequest,
    ) -> Result<Remapped, Failure> {
        if req.pasid.is_none() && in_msi_range(req.iova) {
            return Err(Failure::InterruptRange);
        }
        if !enabled {
            // Translation disabled: DMA passes through untouched.
            return Ok(Remapped {
                translation: identity(req.iova, 63),
                stage: None,
            });
        }
        match (root >> regs::RTADDR_TTM_SHIFT) & 3 {
            regs::TTM_LEGACY if req.pasid.is_some() => {
                Err(fault(FaultReason::TtmLegacyWithPasid, false))
            }
            regs::TTM_LEGACY => self.translate_legacy(root, sid, req),
            regs::TTM_SCALABLE if self.hw.smts => self.translate_scalable(root, sid, req),
            // TTM 10b is reserved, 11b (abort-DMA mode) needs ECAP.ADMS, 01b needs ECAP.SMTS.
            _ => Err(fault(FaultReason::InvalidTtm, false)),
        }
    }

    pub(super) fn legacy_context(&mut self, root: u64, sid: u16) -> Result<LegacyContext, Failure> {
        if let Some(cached) = self.caches.as_deref().map(|c| c.context.get(sid)) {
            if let Some(CachedContext::Legacy(c)) = cached {
                self.count(|s| s.context_cache_hits += 1);
                return Ok(c);
            }
            self.count(|s| s.context_cache_misses += 1);
        }
        let bus = u64::from(sid >> 8);
        let ra = (root & !0xfff) + bus * 16;
        let [lo, hi] = self
            .read_entry::<2>(Structure::RootEntry, ra, bus, |q| decode::legacy_root(q[0]))
            .ok_or(fault(FaultReason::RootTableAccess, false))?;
        let ctp = structures::legacy_root(lo, hi, &self.hw).map_err(|b| {
            self.blame(bad(
                b,
                false,
                [
                    FaultReason::RootNotPresent,
                    FaultReason::RootReserved,
                    FaultReason::RootReserved,
                ],
            ))
        })?;
        let devfn = u64::from(sid & 0xff);
        let [lo, hi] = self
            .read_entry::<2>(Structure::ContextEntry, ctp + devfn * 16, devfn, |q| {
                decode::legacy_context(q[0], q[1])
            })
            .ok_or(fault(FaultReason::ContextTableAccess, false))?;
        let ctx = structures::legacy_context(lo, hi, &self.hw).map_err(|b| {
            self.blame(bad(
                b,
                false,
                [
                    FaultReason::ContextNotPresent,
                    FaultReason::ContextReserved,
                    FaultReason::ContextInvalid,
                ],
            ))
        })?;
        if let Some(c) = self.caches.as_deref_mut() {
            c.context.insert(sid, CachedContext::Legacy(ctx));
        }
        Ok(ctx)
    }

    fn translate_legacy(
        &mut self,
        root: u64,
        sid: u16,
        req: &DmaRequest,
    ) -> Result<Remapped, Failure> {
        let ctx = self.legacy_context(root, sid)?;
        if req.iova >> input_width(ctx.aw_code, &self.hw) != 0 {
            return Err(fault(FaultReason::AddressBeyondAw, ctx.fpd));
        }
        match ctx.tt {
            LegacyTt::PassThrough => {
                let t = identity(req.iova, PT_PAGE_SHIFT);
                Ok(Remapped {
                    translation: check_output(t, req.iova, FaultReason::InterruptAddress, ctx.fpd)?,
                    stage: None,
                })
            }
            LegacyTt::MultiLevel => {
                let d = Domain {
                    did: ctx.did,
                    pasid: NO_PASID,
                    root: ctx.slptptr,
                    aw_code: ctx.aw_code,
                    fpd: ctx.fpd,
                };
                self.second_stage(&d, req, &LEGACY_SS)
            }
        }
    }

    pub(super) fn scalable_context(
        &mut self,
        root: u64,
        sid: u16,
    ) -> Result<ScalableContext, Failure> {
        if let Some(cached) = self.caches.as_deref().map(|c| c.context.get(sid)) {
            if let Some(CachedContext::Scalable(c)) = cached {
                self.count(|s| s.context_cache_hits += 1);
                return Ok(c);
            }
            self.count(|s| s.context_cache_misses += 1);
        }
        let bus = u64::from(sid >> 8);
        let devfn = (sid & 0xff) as u8;
        let upper = devfn >= 0x80;
        let [lo, hi] = self
            .read_entry::<2>(Structure::RootEntry, (root & !0xfff) + bus * 16, bus, |q| {
                decode::scalable_root(q[0], q[1], upper)
            })
            .ok_or(fault(FaultReason::SmRootAccess, false))?;
        let ctp = structures::scalable_root(lo, hi, devfn, &self.hw).map_err(|b| {
            self.blame(bad(
                b,
                false,
                [
                    FaultReason::SmRootNotPresent,
                    FaultReason::SmRootReserved,
                    FaultReason::SmRootReserved,
                ],
            ))
        })?;
        let index = u64::from(devfn & 0x7f);
        let q = self
            .read_entry::<4>(
                Structure::ContextEntry,
                ctp + index * 32,
                u64::from(devfn),
                decode::scalable_context,
            )
            .ok_or(fault(FaultReason::SmContextAccess, false))?;
        let ctx = structures::scalable_context(q, &self.hw).map_err(|b| {
            self.blame(bad(
                b,
                false,
                [
                    FaultReason::SmContextNotPresent,
                    FaultReason::SmContextReserved,
                    FaultReason::SmContextReserved,
                ],
            ))
        })?;
        if let Some(c) = self.caches.as_deref_mut() {
            c.context.insert(sid, CachedContext::Scalable(ctx));
        }
        Ok(ctx)
    }

    /// The PASID table entry for (sid, pasid); its `fpd` includes the directory entry's.
    pub(super) fn pasid_entry(
        &mut self,
        sid: u16,
        ctx: &ScalableContext,
        pasid: u32,
    ) -> Result<PasidEntry, Failure> {
        if let Some(cached) = self.caches.as_deref().map(|c| c.pasid.get(sid, pasid)) {
            if let Some(e) = cached {
                self.count(|s| s.pasid_cache_hits += 1);
                return Ok(e);
            }
            self.count(|s| s.pasid_cache_misses += 1);
        }
        let fpd = ctx.fpd;
        let dir_index = u64::from(pasid >> 6);
        let [dir] = self
            .read_entry::<1>(
                Structure::PasidDirectory,
                ctx.pasid_dir + dir_index * 8,
                dir_index,
                |q| decode::pasid_dir(q[0]),
            )
            .ok_or(fault(FaultReason::SmPasidDirAccess, fpd))?;
        let (dir_fpd, table) = structures::pasid_dir_entry(dir, &self.hw).map_err(|b| {
            self.blame(bad(
                b,
                fpd,
                [
                    FaultReason::SmPasidDirNotPresent,
                    FaultReason::SmPasidDirReserved,
                    FaultReason::SmPasidDirReserved,
                ],
            ))
        })?;
        let fpd = fpd || dir_fpd;
        let index = u64::from(pasid & 0x3f);
        let q = self
            .read_entry::<8>(
                Structure::PasidTable,
                table + index * 64,
                index,
                decode::pasid_entry,
            )
            .ok_or(fault(FaultReason::SmPasidEntryAccess, fpd))?;
        let mut e = structures::pasid_entry(q, &self.hw).map_err(|b| {
            self.blame(bad(
                b,
                fpd,
                [
                    FaultReason::SmPasidEntryNotPresent,
                    FaultReason::SmPasidEntryReserved,
                    FaultReason::SmPasidEntryInvalid,
                ],
            ))
        })?;
        e.fpd |= dir_fpd;
        if let Some(c) = self.caches.as_deref_mut() {
            c.pasid.insert(sid, pasid, e);
        }
        Ok(e)
    }

    /// The PASID whose entry a request uses: its own, or the context entry's RID_PASID.
    pub(super) fn select_pasid(
        &mut self,
        ctx: &ScalableContext,
        pasid: Option<u32>,
    ) -> Result<u32, Failure> {
        let fpd = ctx.fpd;
        match pasid {
            Some(_) if !ctx.pasid_enable => {
                Err(self.blame(fault(FaultReason::SmPasidDisabled, fpd)))
            }
            // PASIDs beyond ECAP.PSS (20 bits) or the directory size (PDTS).
            Some(p) if p > 0xf_ffff || p >> 6 >= ctx.dir_entries => {
                Err(self.blame(fault(FaultReason::SmPasidTooLarge, fpd)))
            }
            Some(p) => Ok(p),
            None if ctx.rid_pasid >> 6 >= ctx.dir_entries => {
                Err(self.blame(fault(FaultReason::SmRidPasidInvalid, fpd)))
            }
            None => Ok(ctx.rid_pasid),
        }
    }

    fn translate_scalable(
        &mut self,
        root: u64,
        sid: u16,
        req: &DmaRequest,
    ) -> Result<Remapped, Failure> {
        let ctx = self.scalable_context(root, sid)?;
        let fpd = ctx.fpd;
        let pasid = self.select_pasid(&ctx, req.pasid)?;
        let pe = self.pasid_entry(sid, &ctx, pasid)?;
        let fpd = fpd || pe.fpd;
        match pe.pgtt {
            Pgtt::PassThrough => {
                if req.iova >> self.hw.aw_bits != 0 {
                    return Err(fault(FaultReason::SmAddressBeyondAw, fpd));
                }
                let t = identity(req.iova, PT_PAGE_SHIFT);
                Ok(Remapped {
                    translation: check_output(t, req.iova, FaultReason::SmInterruptAddress, fpd)?,
                    stage: None,
                })
            }
            Pgtt::SecondStage => {
                if req.iova >> input_width(pe.aw_code, &self.hw) != 0 {
                    return Err(fault(FaultReason::SmAddressBeyondAw, fpd));
                }
                let d = Domain {
                    did: pe.did,
                    pasid,
                    root: pe.slptptr,
                    aw_code: pe.aw_code,
                    fpd,
                };
                self.second_stage(&d, req, &SCALABLE_SS)
            }
            Pgtt::FirstStage | Pgtt::Nested => self.first_stage(&pe, pasid, req, fpd),
        }
    }

    /// The IOTLB entry for `iova` if caching and `usable` accepts it (a cached entry that does not
    /// allow the access is not trusted: the caller walks again, which gives the same answer as no cache).
    fn iotlb_get(
        &mut self,
        did: u16,
        pasid: u32,
        iova: u64,
        usable: impl Fn(&IotlbEntry) -> bool,
    ) -> Option<(u32, IotlbEntry)> {
        let hit = self
            .caches
            .as_deref()?
            .iotlb
            .lookup(did, pasid, iova)
            .filter(|(_, e)| usable(e))
            .map(|(k, e)| (k.shift, e));
        if hit.is_some() {
            self.count(|s| s.iotlb_hits += 1);
        } else {
            self.count(|s| s.iotlb_misses += 1);
        }
        hit
    }

    fn iotlb_put(&mut self, key: IotlbKey, e: IotlbEntry) {
        if let Some(c) = self.caches.as_deref_mut() {
            let evicted = c.iotlb.insert(key, e);
            self.count(|s| s.iotlb_evictions += evicted);
        }
    }

    pub(super) fn second_stage_config(&self, root: u64, aw_code: u64) -> WalkConfig {
        WalkConfig {
            root,
            levels: levels(aw_code),
            haw: self.hw.aw_bits,
            large_2m: self.hw.large_2m,
            large_1g: self.hw.large_1g,
            snoop: self.hw.snoop,
        }
    }

    /// IOTLB lookup, else a second-stage walk; then the permission and interrupt-range checks.
    fn second_stage(
        &mut self,
        d: &Domain,
        req: &DmaRequest,
        r: &SsReasons,
    ) -> Result<Remapped, Failure> {
        self.tag = Some((d.did, d.pasid));
        let allowed = |perms: Perms| perms.allows(req.access);
        let hit = self.iotlb_get(d.did, d.pasid, req.iova, |e| {
            e.stage == Stage::Second && allowed(e.perms)
        });
        let (shift, output, perms) = match hit {
            Some((shift, e)) => (shift, e.output, e.perms),
            None => {
                self.count(|s| s.walks += 1);
                let cfg = self.second_stage_config(d.root, d.aw_code);
                let leaf = walk::walk_traced(
                    self.mem,
                    &cfg,
                    req.iova,
                    &mut self.trace,
                    SecondStagePurpose::Request,
                )
                .map_err(|w| match w {
                    WalkFault::Access { top: true, .. } => fault(r.top_access, d.fpd),
                    WalkFault::Access { .. } => fault(r.access, d.fpd),
                    WalkFault::NotPresent { .. } => match req.access {
                        Access::Read => fault(r.not_present_read, d.fpd),
                        Access::Write => fault(r.not_present_write, d.fpd),
                    },
                    WalkFault::Reserved { .. } => fault(r.reserved, d.fpd),
                })?;
                if !allowed(leaf.perms) {
                    let reason = match req.access {
                        Access::Read => r.read,
                        Access::Write => r.write,
                    };
                    return Err(self.blame(fault(reason, d.fpd)));
                }
                let key = IotlbKey {
                    did: d.did,
                    pasid: d.pasid,
                    shift: leaf.page_shift,
                    page: req.iova >> leaf.page_shift,
                };
                let entry = IotlbEntry {
                    output: leaf.output,
                    perms: leaf.perms,
                    stage: Stage::Second,
                    fs: None,
                };
                self.iotlb_put(key, entry);
                (leaf.page_shift, leaf.output, leaf.perms)
            }
        };
        let t = Translation {
            iova: req.iova & !((1u64 << shift) - 1),
            output,
            page_size: 1 << shift,
            perms,
        };
        Ok(Remapped {
            translation: check_output(t, req.iova, r.interrupt, d.fpd)?,
            stage: Some(Stage::Second),
        })
    }

    /// First-stage (PGTT 001b) or nested (011b) translation: SRE and canonical checks, IOTLB lookup,
    /// else the first-stage walk (through the second stage when nested) and, nested, the second-stage
    /// translation of its output; then the interrupt-range check, the A/D updates and the IOTLB fill.
    fn first_stage(
        &mut self,
        pe: &PasidEntry,
        pasid: u32,
        req: &DmaRequest,
        fpd: bool,
    ) -> Result<Remapped, Failure> {
        self.tag = Some((pe.did, pasid));
        let nested = pe.pgtt == Pgtt::Nested;
        let stage = if nested { Stage::Nested } else { Stage::First };
        let fault_at = |reason, at| Failure::Fault { reason, fpd, at };
        // Only requests with PASID carry a privilege: requests without one take RID_PRIV from the
        // context entry (9.4), which needs ECAP.RPRIVS, not offered — so they are user requests.
        let privileged = req.pasid.is_some() && req.privileged;
        if privileged && !pe.sre {
            // SPT.6: the PASID entry is the one at fault.
            return Err(self.blame(fault(FaultReason::SmSupervisorDisabled, fpd)));
        }
        let levels = if pe.fs_levels >= 5 { 5 } else { 4 };
        if !first_stage::canonical(req.iova, 12 + 9 * levels) {
            return Err(fault_at(FaultReason::SmNonCanonical, None));
        }
        let write = req.access == Access::Write;
        let wpe = pe.wpe;
        // A cached translation serves only if it allows this access and, for a write, its D flag is
        // already set (else the walk sets it, as a processor TLB would).
        let hit = self.iotlb_get(pe.did, pasid, req.iova, |e| {
            e.stage == stage
                && e.perms.allows(req.access)
                && e.fs.is_some_and(|a| {
                    first_stage::check_access(a, write, privileged, wpe).is_ok()
                        && (a.dirty || !write)
                })
        });
        if let Some((shift, e)) = hit {
            if let Some(attrs) = e.fs {
                let perms = first_stage::effective_perms(attrs, privileged, wpe).intersect(e.perms);
                let t = Translation {
                    iova: req.iova & !((1u64 << shift) - 1),
                    output: e.output,
                    page_size: 1 << shift,
                    perms,
                };
                return Ok(Remapped {
                    translation: check_output(t, req.iova, FaultReason::SmInterruptAddress, fpd)?,
                    stage: Some(stage),
                });
            }
        }
        self.count(|s| s.walks += 1);
        let nest = nested.then(|| Nesting {
            s2: self.second_stage_config(pe.slptptr, pe.aw_code),
            width: input_width(pe.aw_code, &self.hw),
        });
        let cfg = FsConfig {
            root: pe.fsptptr,
            levels,
            haw: self.hw.aw_bits,
            large_1g: self.hw.fl1gp,
        };
        let fs_req = FsRequest {
            iova: req.iova,
            write,
            privileged,
            wpe,
        };
        let leaf = first_stage::walk(self.mem, &cfg, nest.as_ref(), &fs_req, &mut self.trace)
            .map_err(|(reason, at)| fault_at(reason, at))?;
        let fs_mask = (1u64 << leaf.page_shift) - 1;
        // The second-stage permissions the result is subject to (all, for first-stage only).
        let (shift, output, s2_perms) = match &nest {
            None => (
                leaf.page_shift,
                leaf.output,
                Perms {
                    read: true,
                    write: true,
                    exec: true,
                },
            ),
            Some(n) => {
                let gpa = leaf.output | (req.iova & fs_mask);
                let purpose = SecondStagePurpose::FirstStageOutput;
                let s2 = n
                    .translate(self.mem, gpa, purpose, &mut self.trace)
                    .map_err(|(reason, at)| fault_at(reason, at))?;
                if !s2.perms.allows(req.access) {
                    let reason = match req.access {
                        Access::Read => FaultReason::SmReadDenied,
                        Access::Write => FaultReason::SmWriteDenied,
                    };
                    let at = Where::SecondStage {
                        level: None,
                        input: gpa,
                        purpose,
                    };
                    return Err(self.blame(fault_at(reason, Some(at))));
                }
                // The translation is the smaller of the two pages, both naturally aligned.
                let shift = leaf.page_shift.min(s2.page_shift);
                let output = s2.translate(gpa) & !((1u64 << shift) - 1);
                // Second-stage execute permission is not modelled (no ECAP.SLEE): reads allow it.
                let perms = Perms {
                    exec: s2.perms.read,
                    ..s2.perms
                };
                (shift, output, perms)
            }
        };
        let perms = first_stage::effective_perms(leaf.attrs, privileged, wpe).intersect(s2_perms);
        let t = Translation {
            iova: req.iova & !((1u64 << shift) - 1),
            output,
            page_size: 1 << shift,
            perms,
        };
        let translation = check_output(t, req.iova, FaultReason::SmInterruptAddress, fpd)?;
        // Success: now the accessed/dirty flags, then the IOTLB (which only ever holds entries whose
        // A flag is set).
        self.apply_ad(leaf.updates);
        let key = IotlbKey {
            did: pe.did,
            pasid,
            shift,
            page: req.iova >> shift,
        };
        let entry = IotlbEntry {
            output,
            perms: s2_perms,
            stage,
            fs: Some(leaf.attrs),
        };
        self.iotlb_put(key, entry);
        Ok(Remapped {
            translation,
            stage: Some(stage),
        })
    }

    /// Sets the accessed/dirty flags a successful walk collected, each with an atomic compare-exchange
    /// (an entry software changed meanwhile is left alone: the walk used its old value, as if it had
    /// completed just before the change). In lookup mode they are only listed.
    fn apply_ad(&mut self, updates: Vec<AdUpdate>) {
        if self.write_ad {
            for u in &updates {
                match self
                    .mem
                    .compare_exchange_u64(u.address, u.old, u.old | u.bits)
                {
                    Ok(found) if found != u.old => log::debug!(
                        "vtd: first-stage entry at {:#x} changed during the walk; A/D not set",
                        u.address
                    ),
                    Err(e) => log::debug!("vtd: A/D update failed: {e}"),
                    Ok(_) => {}
                }
            }
        }
        self.ad = updates;
    }
}
