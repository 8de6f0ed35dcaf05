//! The first-stage walker (VT-d 4.x sections 3.6 and 9.7: IA-32e-format tables, 4- or 5-level) and its
//! nested form (3.8: every first-stage table address is a second-stage input).
//!
//! Rules, as this model reads the spec (the fault codes are those of Linux's `dma_remap_sm_fault_reasons`):
//! - The input must be canonical for the paging mode (bits 63:N-1 equal, N = 48 or 57): else 80h.
//! - Each entry: P clear: 71h. Reserved bits (address bits 51:HAW; PS in PML5E/PML4E; PS in a PDPE
//!   without CAP.FL1GP; bits 29:13 of a 1 GiB or 20:13 of a 2 MiB leaf, bit 12 being PAT): 72h.
//!   An unreadable entry: 73h in the table FSPTPTR names, 70h below it.
//! - Permissions accumulate over the levels: R/W (bit 1), U/S (bit 2), XD (bit 63; execute requests are
//!   not modelled, ECAP.ERS=0, so XD only shapes the reported `exec` permission).
//!   A user request needs U/S at every level (81h); its writes need R/W at every level (85h). A
//!   supervisor request (needs the PASID entry's SRE, checked by the caller: 5Dh) may read any present
//!   page; it may write a read-only one unless the PASID entry's WPE is set (85h) — like CR0.WP.
//! - Accessed/dirty: A is set in every entry used, D in the leaf for writes, atomically and only once
//!   the whole translation has succeeded (no flag changes on a fault). This walker only collects them.
//! - Nested: the table address (FSPTPTR, then each entry's address) goes through the second stage
//!   (tables named by the PASID entry's SLPTPTR and AW). Second-stage faults there use the second-stage
//!   reasons (78h-7Bh); an address beyond the second-stage width is 74h; a second-stage mapping without
//!   read permission is 75h for the top table, 76h below; an A/D update needs second-stage write
//!   permission on the table's page (77h). The caller translates the first-stage output likewise (84h
//!   for the width, then 78h-7Bh and 85h/86h).
//!
//! Bounded: at most 5 first-stage reads, each after at most 5 second-stage reads.

use super::lookup::{self, decode, AdUpdate, SecondStagePurpose, Structure, Trace};
use super::reason::FaultReason;
use super::walk::{self, Leaf, WalkConfig, WalkFault};
use crate::mem::DmaMemory;
use crate::request::Perms;

/// Accessed flag.
pub(crate) const A: u64 = 1 << 5;
/// Dirty flag (leaves).
pub(crate) const D: u64 = 1 << 6;
pub(crate) const PS: u64 = 1 << 7;
pub(crate) const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// What the first-stage entries grant, accumulated over the levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FsAttrs {
    /// R/W set at every level.
    pub write: bool,
    /// U/S set at every level.
    pub user: bool,
    /// XD clear at every level.
    pub exec: bool,
    /// The leaf's D flag is set (or being set by this translation).
    pub dirty: bool,
}

/// The request as the first stage sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FsRequest {
    pub iova: u64,
    pub write: bool,
    /// Supervisor privilege (only requests with PASID carry it; the caller checked SRE).
    pub privileged: bool,
    /// The PASID entry's WPE.
    pub wpe: bool,
}

/// The first-stage tables and the hardware's first-stage capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FsConfig {
    /// FSPTPTR: host-physical, or a second-stage input address when nested.
    pub root: u64,
    /// 4 or 5 (the PASID entry's FLPM).
    pub levels: u32,
    /// Address bits 51:haw of an entry are reserved.
    pub haw: u32,
    /// CAP.FL1GP: PS is allowed in a PDPE.
    pub large_1g: bool,
}

/// The second stage under a nested first stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Nesting {
    pub s2: WalkConfig,
    /// Second-stage input width: min(MGAW, the PASID entry's AW).
    pub width: u32,
}

/// A first-stage leaf: the naturally aligned page containing the input address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FsLeaf {
    pub page_shift: u32,
    /// The page's first-stage output (guest-physical when nested).
    pub output: u64,
    pub attrs: FsAttrs,
    /// Accessed/dirty bits to set once the translation succeeds.
    pub updates: Vec<AdUpdate>,
}

/// Where a first-stage or nested fault arose (for its description).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Where {
    FirstStage {
        level: u32,
    },
    /// `level` None: the input was beyond the second-stage width, nothing was walked.
    SecondStage {
        level: Option<u32>,
        input: u64,
        purpose: SecondStagePurpose,
    },
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Where::FirstStage { level } => write!(f, "first-stage level {level}"),
            Where::SecondStage {
                level,
                input,
                purpose,
            } => {
                let what = match purpose {
                    SecondStagePurpose::Request => "the request".to_string(),
                    SecondStagePurpose::FirstStageTable(l) => {
                        format!("the first-stage level-{l} table")
                    }
                    SecondStagePurpose::FirstStageOutput => "the first-stage output".to_string(),
                };
                match level {
                    Some(l) => write!(
                        f,
                        "second-stage level {l}, translating {input:#x} for {what}"
                    ),
                    None => write!(f, "second-stage input {input:#x} for {what}"),
                }
            }
        }
    }
}

/// A first-stage or nested fault.
pub(crate) type FsFault = (FaultReason, Option<Where>);

/// Whether `addr` is canonical for a `width`-bit linear address (bits 63:width-1 all equal).
pub(crate) fn canonical(addr: u64, width: u32) -> bool {
    let unused = 64 - width.clamp(1, 64);
    (((addr << unused) as i64) >> unused) as u64 == addr
}

/// The access check of a translated page (3.6.1 "Access Rights"), for walks and IOTLB hits alike.
pub(crate) fn check_access(
    a: FsAttrs,
    write: bool,
    privileged: bool,
    wpe: bool,
) -> Result<(), FaultReason> {
    if !privileged && !a.user {
        return Err(FaultReason::SmUserSupervisor);
    }
    if write && !a.write && (!privileged || wpe) {
        return Err(FaultReason::SmWriteDenied);
    }
    Ok(())
}

/// The permissions a page grants a requester of this privilege (before any second stage).
pub(crate) fn effective_perms(a: FsAttrs, privileged: bool, wpe: bool) -> Perms {
    let reach = privileged || a.user;
    Perms {
        read: reach,
        write: reach && (a.write || (privileged && !wpe)),
        exec: reach && a.exec,
    }
}

/// Reserved bits of a present first-stage entry (9.7, the IA-32e formats). Bits 11:8 and 62:52 are
/// ignored (no EAFS, no protection keys); bit 63 is XD.
pub(super) fn reserved_mask(level: u32, leaf_shift: Option<u32>, haw: u32) -> u64 {
    let haw = haw.min(52);
    let mut m = ((1u64 << 52) - 1) & !((1u64 << haw) - 1);
    if level >= 4 {
        m |= PS;
    }
    if let Some(shift) = leaf_shift {
        if shift > 12 {
            // Bit 12 is PAT in a large leaf; the address bits below the page size are reserved.
            m |= ((1u64 << shift) - 1) & !0x1fff;
        }
    }
    m
}

impl Nesting {
    /// Translates a guest-physical address through the second stage for a nested walk; faults carry
    /// the nested reasons. Permissions are the caller's to check.
    pub fn translate(
        &self,
        mem: &dyn DmaMemory,
        gpa: u64,
        purpose: SecondStagePurpose,
        trace: &mut Trace,
    ) -> Result<Leaf, FsFault> {
        if self.width < 64 && gpa >> self.width != 0 {
            // The address came from the latest step (a first-stage entry, or the PASID entry's FSPTPTR).
            trace.blame();
            let reason = match purpose {
                SecondStagePurpose::FirstStageOutput => FaultReason::SmNestedOutputBeyondAw,
                _ => FaultReason::SmNestedFsBeyondAw,
            };
            let at = Where::SecondStage {
                level: None,
                input: gpa,
                purpose,
            };
            return Err((reason, Some(at)));
        }
        walk::walk_traced(mem, &self.s2, gpa, trace, purpose).map_err(|f| {
            let reason = match f {
                WalkFault::Access { top: true, .. } => FaultReason::SmSsTopAccess,
                WalkFault::Access { .. } => FaultReason::SmSsAccess,
                WalkFault::NotPresent { .. } => FaultReason::SmSsNotPresent,
                WalkFault::Reserved { .. } => FaultReason::SmSsReserved,
            };
            let at = Where::SecondStage {
                level: Some(f.level()),
                input: gpa,
                purpose,
            };
            (reason, Some(at))
        })
    }
}

/// Walks the first stage for `req`, through `nest` when nested. Checks canonicality, every entry and
/// the access rights; returns the leaf with the A/D updates to make.
pub(crate) fn walk(
    mem: &dyn DmaMemory,
    cfg: &FsConfig,
    nest: Option<&Nesting>,
    req: &FsRequest,
    trace: &mut Trace,
) -> Result<FsLeaf, FsFault> {
    let levels = if cfg.levels >= 5 { 5 } else { 4 };
    if !canonical(req.iova, 12 + 9 * levels) {
        return Err((FaultReason::SmNonCanonical, None));
    }
    let mut table = cfg.root & ADDR_MASK;
    let mut attrs = FsAttrs {
        write: true,
        user: true,
        exec: true,
        dirty: false,
    };
    let mut updates: Vec<AdUpdate> = Vec::new();
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let index = (req.iova >> shift) & 0x1ff;
        let top = level == levels;
        let at = Some(Where::FirstStage { level });
        let input = table + index * 8;
        // Nested: where the entry really is, and whether the second stage lets the unit write it.
        let (address, writable) = match nest {
            None => (input, true),
            Some(n) => {
                let purpose = SecondStagePurpose::FirstStageTable(level);
                let leaf = n.translate(mem, input, purpose, trace)?;
                if !leaf.perms.read {
                    trace.blame();
                    let reason = if top {
                        FaultReason::SmNestedFsTopReadDenied
                    } else {
                        FaultReason::SmNestedFsReadDenied
                    };
                    return Err((reason, at));
                }
                (leaf.translate(input), leaf.perms.write)
            }
        };
        let structure = Structure::FirstStage { level };
        let Ok(e) = mem.read_u64(address) else {
            trace.unreadable(structure, address, index);
            let reason = if top {
                FaultReason::SmFsTopAccess
            } else {
                FaultReason::SmFsAccess
            };
            return Err((reason, at));
        };
        trace.step(|| {
            lookup::step(
                structure,
                address,
                index,
                &[e],
                decode::first_stage(e, level),
            )
        });
        if e & 1 == 0 {
            trace.blame();
            return Err((FaultReason::SmFsNotPresent, at));
        }
        let ps = e & PS != 0;
        let is_leaf = level == 1 || (ps && (level == 2 || (level == 3 && cfg.large_1g)));
        if (ps && level > 1 && !is_leaf)
            || e & reserved_mask(level, is_leaf.then_some(shift), cfg.haw) != 0
        {
            trace.blame();
            return Err((FaultReason::SmFsReserved, at));
        }
        attrs.write &= e & 2 != 0;
        attrs.user &= e & 4 != 0;
        attrs.exec &= e >> 63 == 0;
        let mut set = if e & A == 0 { A } else { 0 };
        if is_leaf {
            if let Err(reason) = check_access(attrs, req.write, req.privileged, req.wpe) {
                trace.blame();
                return Err((reason, at));
            }
            if req.write && e & D == 0 {
                set |= D;
            }
            attrs.dirty = req.write || e & D != 0;
        }
        if set != 0 {
            if !writable {
                trace.blame();
                return Err((FaultReason::SmNestedFsWriteDenied, at));
            }
            // One update per entry, even if hostile tables reuse an entry at several levels.
            match updates.iter_mut().find(|u| u.address == address) {
                Some(u) => u.bits |= set,
                None => updates.push(AdUpdate {
                    address,
                    old: e,
                    bits: set,
                }),
            }
        }
        let next = e & ADDR_MASK;
        if is_leaf {
            return Ok(FsLeaf {
                page_shift: shift,
                output: next & !((1u64 << shift) - 1),
                attrs,
                updates,
            });
        }
        table = next;
    }
    // Unreachable: level 1 is always a leaf.
    Err((FaultReason::SmFsReserved, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::TestMemory;

    const P: u64 = 1;
    const RW: u64 = 2;
    const US: u64 = 4;

    fn cfg(root: u64, levels: u32) -> FsConfig {
        FsConfig {
            root,
            levels,
            haw: 48,
            large_1g: true,
        }
    }

    fn user(iova: u64, write: bool) -> FsRequest {
        FsRequest {
            iova,
            write,
            privileged: false,
            wpe: false,
        }
    }

    fn go(m: &TestMemory, c: &FsConfig, r: &FsRequest) -> Result<FsLeaf, FaultReason> {
        walk(m, c, None, r, &mut Trace::off()).map_err(|(reason, _)| reason)
    }

    #[test]
    fn canonical_addresses() {
        assert!(canonical(0x7fff_ffff_ffff, 48));
        assert!(canonical(0xffff_8000_0000_0000, 48));
        assert!(!canonical(0x8000_0000_0000, 48));
        assert!(!canonical(0xfff0_0000_0000_0000, 48));
        assert!(canonical(0x00ff_ffff_ffff_ffff, 57));
        assert!(!canonical(0x0100_0000_0000_0000, 57));
        assert!(canonical(0xff00_0000_0000_0000, 57));
    }

    #[test]
    fn four_and_five_level_with_large_pages() {
        let m = TestMemory::new(0x20_0000);
        // 4-level: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000.
        m.write_u64(0x1000, 0x2000 | P | RW | US).unwrap();
        m.write_u64(0x2000, 0x3000 | P | RW | US).unwrap();
        m.write_u64(0x3000, 0x4000 | P | RW | US).unwrap();
        m.write_u64(0x4000 + 3 * 8, 0x9000 | P | RW | US).unwrap();
        let leaf = go(&m, &cfg(0x1000, 4), &user(0x3abc, false)).unwrap();
        assert_eq!((leaf.page_shift, leaf.output), (12, 0x9000));
        assert_eq!(leaf.updates.len(), 4, "A on every level");
        assert!(leaf.updates.iter().all(|u| u.bits == A));
        // 2 MiB at PD index 1 (PAT bit 12 is allowed), 1 GiB at PDPT index 1.
        m.write_u64(0x3008, 0x4000_0000 | 1 << 12 | PS | P | US)
            .unwrap();
        let l2 = go(&m, &cfg(0x1000, 4), &user(0x2f_f0f0, false)).unwrap();
        assert_eq!((l2.page_shift, l2.output), (21, 0x4000_0000));
        assert!(!l2.attrs.write);
        m.write_u64(0x2008, 0x8000_0000 | PS | P | RW | US).unwrap();
        let l3 = go(&m, &cfg(0x1000, 4), &user(0x7fff_ffff, true)).unwrap();
        assert_eq!((l3.page_shift, l3.output), (30, 0x8000_0000));
        assert_eq!(l3.updates.last().unwrap().bits, A | D, "leaf gets A and D");
        // Without FL1GP the PDPT PS bit is reserved.
        let mut no1g = cfg(0x1000, 4);
        no1g.large_1g = false;
        assert_eq!(
            go(&m, &no1g, &user(0x4000_0000, false)),
            Err(FaultReason::SmFsReserved)
        );
        // 5-level: PML5 0x5000 index 1 -> the same PML4.
        m.write_u64(0x5008, 0x1000 | P | RW | US).unwrap();
        let l5 = go(&m, &cfg(0x5000, 5), &user(1 << 48 | 0x3000, false)).unwrap();
        assert_eq!(l5.output, 0x9000);
        assert_eq!(
            go(&m, &cfg(0x5000, 5), &user(1 << 57, false)),
            Err(FaultReason::SmNonCanonical)
        );
        assert_eq!(
            go(&m, &cfg(0x1000, 4), &user(1 << 47, false)),
            Err(FaultReason::SmNonCanonical)
        );
    }

    #[test]
    fn reserved_bits_and_faults() {
        let m = TestMemory::new(0x10_0000);
        m.write_u64(0x1000, 0x2000 | P | RW | US).unwrap();
        m.write_u64(0x2000, 0x3000 | P | RW | US).unwrap();
        m.write_u64(0x3000, 0x4000 | P | RW | US).unwrap();
        let c = cfg(0x1000, 4);
        for (pte, want) in [
            (0, FaultReason::SmFsNotPresent),
            (RW | US, FaultReason::SmFsNotPresent),
            (1 << 48 | P, FaultReason::SmFsReserved),
            // PTE bit 7 is PAT, bits 11:8 and 62:52 are ignored: fine.
        ] {
            m.write_u64(0x4000, pte).unwrap();
            assert_eq!(go(&m, &c, &user(0, false)), Err(want), "{pte:#x}");
        }
        m.write_u64(0x4000, 0x7000 | 1 << 62 | 0xf00 | PS | P | US)
            .unwrap();
        assert!(go(&m, &c, &user(0, false)).is_ok());
        // PS in the PML4E, a misaligned 2 MiB leaf, a misaligned 1 GiB leaf.
        m.write_u64(0x1000, 0x2000 | PS | P | US).unwrap();
        assert_eq!(go(&m, &c, &user(0, false)), Err(FaultReason::SmFsReserved));
        m.write_u64(0x1000, 0x2000 | P | RW | US).unwrap();
        m.write_u64(0x3008, 0x20_2000 | PS | P | US).unwrap();
        assert_eq!(
            go(&m, &c, &user(0x20_0000, false)),
            Err(FaultReason::SmFsReserved)
        );
        m.write_u64(0x2008, 0x4010_0000 | PS | P | US).unwrap();
        assert_eq!(
            go(&m, &c, &user(0x4000_0000, false)),
            Err(FaultReason::SmFsReserved)
        );
        // Unreadable tables: the top one (FSPTPTR) and a lower one.
        assert_eq!(
            go(&m, &cfg(0x20_0000, 4), &user(0, false)),
            Err(FaultReason::SmFsTopAccess)
        );
        m.write_u64(0x2010, 0x40_0000 | P | US).unwrap();
        assert_eq!(
            go(&m, &c, &user(0x8000_0000, false)),
            Err(FaultReason::SmFsAccess)
        );
    }

    #[test]
    fn access_rights() {
        let attrs = |write, user| FsAttrs {
            write,
            user,
            exec: true,
            dirty: false,
        };
        use FaultReason::{SmUserSupervisor as Us, SmWriteDenied as Wd};
        // (write, user page, request write, privileged, wpe) -> result
        let cases = [
            (true, true, true, false, false, Ok(())),
            (false, true, false, false, false, Ok(())),
            (false, true, true, false, false, Err(Wd)),
            (true, false, false, false, false, Err(Us)),
            (true, false, true, false, false, Err(Us)),
            // Supervisor: any present page readable; RO pages writable unless WPE.
            (true, false, true, true, false, Ok(())),
            (false, false, true, true, false, Ok(())),
            (false, false, true, true, true, Err(Wd)),
            (false, true, false, true, true, Ok(())),
        ];
        for (w, u, write, privileged, wpe, want) in cases {
            assert_eq!(
                check_access(attrs(w, u), write, privileged, wpe),
                want,
                "{w} {u} {write} {privileged} {wpe}"
            );
            // The reported permissions agree with the checks.
            let p = effective_perms(attrs(w, u), privileged, wpe);
            assert_eq!(
                p.write,
                check_access(attrs(w, u), true, privileged, wpe).is_ok()
            );
            assert_eq!(
                p.read,
                check_access(attrs(w, u), false, privileged, wpe).is_ok()
            );
        }
        let p = effective_perms(attrs(false, false), false, false);
        assert_eq!(
            p,
            Perms::default(),
            "a supervisor page grants a user nothing"
        );
        let mut xd = attrs(true, true);
        xd.exec = false;
        assert!(!effective_perms(xd, false, false).exec);
        assert!(effective_perms(attrs(true, true), false, false).exec);
    }

    #[test]
    fn self_referencing_tables_merge_their_updates() {
        let m = TestMemory::new(0x2000);
        for i in 0..512u64 {
            m.write_u64(0x1000 + i * 8, 0x1000 | P | RW | US).unwrap();
        }
        let leaf = go(&m, &cfg(0x1000, 5), &user(0, true)).unwrap();
        assert_eq!(leaf.output, 0x1000);
        assert_eq!(leaf.updates.len(), 1);
        assert_eq!(leaf.updates[0].bits, A | D);
    }
}
