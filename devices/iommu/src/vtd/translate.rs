//! DMA-remapping of one request (VT-d 4.x chapter 3): request -> root entry -> context entry ->
//! [PASID directory -> PASID table entry] -> second-stage walk or pass-through, each failure mapped to its
//! architected fault reason.

use super::cache::{CachedContext, IotlbEntry, IotlbKey, NO_PASID};
use super::reason::FaultReason;
use super::regs;
use super::state::State;
use super::structures::{
    self, input_width, levels, Bad, LegacyContext, LegacyTt, PasidEntry, Pgtt, ScalableContext,
};
use super::walk::{self, Stage, WalkConfig, WalkFault};
use crate::mem::DmaMemory;
use crate::request::{Access, DmaFault, DmaRequest, Perms, RequestKind, Translation};

/// Pass-through translations are handed out in 1 GiB pages.
const PT_PAGE_SHIFT: u32 = 30;

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
    /// An architected fault; `fpd` if a Fault Processing Disable bit covers it.
    Fault { reason: FaultReason, fpd: bool },
    /// A request without PASID to the interrupt address range: an interrupt, never DMA (3.14).
    InterruptRange,
}

fn fault(reason: FaultReason, fpd: bool) -> Failure {
    Failure::Fault { reason, fpd }
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

fn in_msi_range(addr: u64) -> bool {
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
struct SsReasons {
    top_access: FaultReason,
    access: FaultReason,
    not_present_read: FaultReason,
    not_present_write: FaultReason,
    reserved: FaultReason,
    read: FaultReason,
    write: FaultReason,
    interrupt: FaultReason,
}

const LEGACY_SS: SsReasons = SsReasons {
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

const SCALABLE_SS: SsReasons = SsReasons {
    top_access: FaultReason::SmSsAccess,
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
            Err(Failure::Fault { reason, fpd }) => {
                let tr = req.kind == RequestKind::TranslationRequest;
                Err(self.report(req, sid, reason, fpd, tr))
            }
        }
    }

    /// Remaps one request. No fault is recorded here.
    pub(crate) fn translate(
        &mut self,
        mem: &dyn DmaMemory,
        sid: u16,
        req: &DmaRequest,
    ) -> Result<Remapped, Failure> {
        if req.pasid.is_none() && in_msi_range(req.iova) {
            return Err(Failure::InterruptRange);
        }
        if self.gsts & regs::GSTS_TES == 0 {
            // Translation disabled: DMA passes through untouched.
            return Ok(Remapped {
                translation: identity(req.iova, 63),
                stage: None,
            });
        }
        match (self.root >> regs::RTADDR_TTM_SHIFT) & 3 {
            regs::TTM_LEGACY if req.pasid.is_some() => {
                Err(fault(FaultReason::TtmLegacyWithPasid, false))
            }
            regs::TTM_LEGACY => self.translate_legacy(mem, sid, req),
            regs::TTM_SCALABLE if self.hw.smts => self.translate_scalable(mem, sid, req),
            // TTM 10b is reserved, 11b (abort-DMA mode) needs ECAP.ADMS, 01b needs ECAP.SMTS.
            _ => Err(fault(FaultReason::InvalidTtm, false)),
        }
    }

    fn legacy_context(&mut self, mem: &dyn DmaMemory, sid: u16) -> Result<LegacyContext, Failure> {
        if self.hw.caching {
            if let Some(CachedContext::Legacy(c)) = self.caches.context.get(sid) {
                self.stats.context_cache_hits += 1;
                return Ok(c);
            }
            self.stats.context_cache_misses += 1;
        }
        let rta = self.root & !0xfff;
        let [lo, hi] = read_qwords::<2>(mem, rta + u64::from(sid >> 8) * 16)
            .ok_or(fault(FaultReason::RootTableAccess, false))?;
        let ctp = structures::legacy_root(lo, hi, &self.hw).map_err(|b| {
            bad(
                b,
                false,
                [
                    FaultReason::RootNotPresent,
                    FaultReason::RootReserved,
                    FaultReason::RootReserved,
                ],
            )
        })?;
        let [lo, hi] = read_qwords::<2>(mem, ctp + u64::from(sid & 0xff) * 16)
            .ok_or(fault(FaultReason::ContextTableAccess, false))?;
        let ctx = structures::legacy_context(lo, hi, &self.hw).map_err(|b| {
            bad(
                b,
                false,
                [
                    FaultReason::ContextNotPresent,
                    FaultReason::ContextReserved,
                    FaultReason::ContextInvalid,
                ],
            )
        })?;
        if self.hw.caching {
            self.caches.context.insert(sid, CachedContext::Legacy(ctx));
        }
        Ok(ctx)
    }

    fn translate_legacy(
        &mut self,
        mem: &dyn DmaMemory,
        sid: u16,
        req: &DmaRequest,
    ) -> Result<Remapped, Failure> {
        let ctx = self.legacy_context(mem, sid)?;
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
                self.second_stage(mem, &d, req, &LEGACY_SS)
            }
        }
    }

    fn scalable_context(
        &mut self,
        mem: &dyn DmaMemory,
        sid: u16,
    ) -> Result<ScalableContext, Failure> {
        if self.hw.caching {
            if let Some(CachedContext::Scalable(c)) = self.caches.context.get(sid) {
                self.stats.context_cache_hits += 1;
                return Ok(c);
            }
            self.stats.context_cache_misses += 1;
        }
        let rta = self.root & !0xfff;
        let devfn = (sid & 0xff) as u8;
        let [lo, hi] = read_qwords::<2>(mem, rta + u64::from(sid >> 8) * 16)
            .ok_or(fault(FaultReason::SmRootAccess, false))?;
        let ctp = structures::scalable_root(lo, hi, devfn, &self.hw).map_err(|b| {
            bad(
                b,
                false,
                [
                    FaultReason::SmRootNotPresent,
                    FaultReason::SmRootReserved,
                    FaultReason::SmRootReserved,
                ],
            )
        })?;
        let q = read_qwords::<4>(mem, ctp + u64::from(devfn & 0x7f) * 32)
            .ok_or(fault(FaultReason::SmContextAccess, false))?;
        let ctx = structures::scalable_context(q, &self.hw).map_err(|b| {
            bad(
                b,
                false,
                [
                    FaultReason::SmContextNotPresent,
                    FaultReason::SmContextReserved,
                    FaultReason::SmContextReserved,
                ],
            )
        })?;
        if self.hw.caching {
            self.caches
                .context
                .insert(sid, CachedContext::Scalable(ctx));
        }
        Ok(ctx)
    }

    /// The PASID table entry for (sid, pasid); its `fpd` includes the directory entry's.
    fn pasid_entry(
        &mut self,
        mem: &dyn DmaMemory,
        sid: u16,
        ctx: &ScalableContext,
        pasid: u32,
    ) -> Result<PasidEntry, Failure> {
        if self.hw.caching {
            if let Some(e) = self.caches.pasid.get(sid, pasid) {
                self.stats.pasid_cache_hits += 1;
                return Ok(e);
            }
            self.stats.pasid_cache_misses += 1;
        }
        let fpd = ctx.fpd;
        let dir = read_qwords::<1>(mem, ctx.pasid_dir + u64::from(pasid >> 6) * 8)
            .ok_or(fault(FaultReason::SmPasidDirAccess, fpd))?;
        let (dir_fpd, table) = structures::pasid_dir_entry(dir[0], &self.hw).map_err(|b| {
            bad(
                b,
                fpd,
                [
                    FaultReason::SmPasidDirNotPresent,
                    FaultReason::SmPasidDirReserved,
                    FaultReason::SmPasidDirReserved,
                ],
            )
        })?;
        let fpd = fpd || dir_fpd;
        let q = read_qwords::<8>(mem, table + u64::from(pasid & 0x3f) * 64)
            .ok_or(fault(FaultReason::SmPasidEntryAccess, fpd))?;
        let mut e = structures::pasid_entry(q, &self.hw).map_err(|b| {
            bad(
                b,
                fpd,
                [
                    FaultReason::SmPasidEntryNotPresent,
                    FaultReason::SmPasidEntryReserved,
                    FaultReason::SmPasidEntryInvalid,
                ],
            )
        })?;
        e.fpd |= dir_fpd;
        if self.hw.caching {
            self.caches.pasid.insert(sid, pasid, e);
        }
        Ok(e)
    }

    fn translate_scalable(
        &mut self,
        mem: &dyn DmaMemory,
        sid: u16,
        req: &DmaRequest,
    ) -> Result<Remapped, Failure> {
        let ctx = self.scalable_context(mem, sid)?;
        let fpd = ctx.fpd;
        let pasid = match req.pasid {
            Some(_) if !ctx.pasid_enable => return Err(fault(FaultReason::SmPasidDisabled, fpd)),
            Some(p) if p > 0xf_ffff || p >> 6 >= ctx.dir_entries => {
                return Err(fault(FaultReason::SmPasidTooLarge, fpd))
            }
            Some(p) => p,
            None if ctx.rid_pasid >> 6 >= ctx.dir_entries => {
                return Err(fault(FaultReason::SmRidPasidInvalid, fpd))
            }
            None => ctx.rid_pasid,
        };
        let pe = self.pasid_entry(mem, sid, &ctx, pasid)?;
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
                self.second_stage(mem, &d, req, &SCALABLE_SS)
            }
        }
    }

    /// IOTLB lookup, else a second-stage walk; then the permission and interrupt-range checks.
    fn second_stage(
        &mut self,
        mem: &dyn DmaMemory,
        d: &Domain,
        req: &DmaRequest,
        r: &SsReasons,
    ) -> Result<Remapped, Failure> {
        let allowed = |perms: Perms| perms.allows(req.access);
        let mut cached = None;
        if self.hw.caching {
            match self.caches.iotlb.lookup(d.did, d.pasid, req.iova) {
                // A cached entry that denies the access is not trusted: walk again.
                Some((k, e)) if allowed(e.perms) => cached = Some((k.shift, e)),
                _ => {}
            }
            if cached.is_some() {
                self.stats.iotlb_hits += 1;
            } else {
                self.stats.iotlb_misses += 1;
            }
        }
        let (shift, output, perms) = match cached {
            Some((shift, e)) => (shift, e.output, e.perms),
            None => {
                self.stats.walks += 1;
                let cfg = WalkConfig {
                    stage: Stage::Second,
                    root: d.root,
                    levels: levels(d.aw_code),
                    haw: self.hw.aw_bits,
                    large_2m: self.hw.large_2m,
                    large_1g: self.hw.large_1g,
                    snoop: self.hw.snoop,
                };
                let leaf = walk::walk(mem, &cfg, req.iova).map_err(|w| match w {
                    WalkFault::Access { top: true, .. } => fault(r.top_access, d.fpd),
                    WalkFault::Access { .. } | WalkFault::Unsupported => fault(r.access, d.fpd),
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
                    return Err(fault(reason, d.fpd));
                }
                if self.hw.caching {
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
                    };
                    self.stats.iotlb_evictions += self.caches.iotlb.insert(key, entry);
                }
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
}
