//! Architected DMA-remapping fault reasons (VT-d 4.x section 7.1.3, "Non-recoverable Address Translation
//! Faults"): legacy-mode codes 0x1-0xE and scalable-mode codes 0x30-0x87. The condition ids in the
//! comments (LRT.2, SCT.6, ...) are the spec's; first-stage ones use the 3.x names (SFL.n, "first-level",
//! SFS.n in 4.x), whose codes and meanings are also Linux's table (drivers/iommu/intel/dmar.c,
//! `dma_remap_sm_fault_reasons`): 70h-73h first-stage walk, 74h-77h first-stage tables seen through
//! the second stage (nested), 78h-7Bh second-stage walk, 80h/81h/84h first-stage and nested general. Interrupt-remapping fault reasons 0x20-0x26 are those of
//! section 5.1.4.1 ("Interrupt Remapping Fault Conditions").

/// A fault reason this model can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultReason {
    // ---- Legacy mode ----
    /// LRT.2: root entry P clear.
    RootNotPresent,
    /// LCT.2: context entry P clear.
    ContextNotPresent,
    /// LCT.4: context entry programmed with an unsupported AW or TT, or the second-stage root table
    /// (SLPTPTR) could not be read.
    ContextInvalid,
    /// LGN.1: input address above 2^X - 1, X = min(MGAW, context AW).
    AddressBeyondAw,
    /// LGN.2: write request, W clear in a second-stage entry.
    WriteDenied,
    /// LGN.3: read request, R clear in a second-stage entry.
    ReadDenied,
    /// LSL.1: a lower-level second-stage entry could not be read.
    PagingEntryAccess,
    /// LRT.1: the root entry could not be read.
    RootTableAccess,
    /// LCT.1: the context entry could not be read.
    ContextTableAccess,
    /// LRT.3: reserved bit set in a present root entry.
    RootReserved,
    /// LCT.3: reserved bit set in a present context entry.
    ContextReserved,
    /// LSL.2: reserved bit set in a present (R or W) second-stage entry.
    PagingEntryReserved,
    /// LGN.4: the translated address falls in the interrupt address range.
    InterruptAddress,

    // ---- Scalable mode ----
    /// RTA.1: RTADDR_REG.TTM holds a reserved or unsupported table type.
    InvalidTtm,
    /// RTA.2: request with PASID while TTM selects legacy mode.
    TtmLegacyWithPasid,
    /// SRT.1: scalable-mode root entry could not be read.
    SmRootAccess,
    /// SRT.2: LP/UP of the scalable-mode root entry clear.
    SmRootNotPresent,
    /// SRT.3: reserved bit set in the scalable-mode root entry.
    SmRootReserved,
    /// SCT.1: scalable-mode context entry could not be read.
    SmContextAccess,
    /// SCT.2: scalable-mode context entry P clear.
    SmContextNotPresent,
    /// SCT.3: reserved bit set in the scalable-mode context entry.
    SmContextReserved,
    /// SCT.6: request with PASID, PASIDE clear.
    SmPasidDisabled,
    /// SCT.7: PASID beyond the PASID directory size (PDTS).
    SmPasidTooLarge,
    /// SCT.9: the RID_PASID used for a request without PASID is beyond the directory size.
    SmRidPasidInvalid,
    /// SPD.1: PASID directory entry could not be read.
    SmPasidDirAccess,
    /// SPD.2: PASID directory entry P clear.
    SmPasidDirNotPresent,
    /// SPD.3: reserved bit set in the PASID directory entry.
    SmPasidDirReserved,
    /// SPT.1: PASID table entry could not be read.
    SmPasidEntryAccess,
    /// SPT.2: PASID table entry P clear.
    SmPasidEntryNotPresent,
    /// SPT.3: reserved bit set in the PASID table entry.
    SmPasidEntryReserved,
    /// SPT.4: PASID table entry programmed with an unsupported PGTT, AW or FLPM.
    SmPasidEntryInvalid,
    /// SPT.6: a request with supervisor privilege while the PASID entry's SRE is clear.
    SmSupervisorDisabled,
    /// SFL.1: a first-stage entry below the top level could not be read.
    SmFsAccess,
    /// SFL.2: first-stage entry P clear.
    SmFsNotPresent,
    /// SFL.3: reserved bit set in a present first-stage entry.
    SmFsReserved,
    /// SFL.4: the top-level first-stage table (FSPTPTR) could not be read.
    SmFsTopAccess,
    /// SFL.5 (nested): a first-stage table address is beyond the second-stage input width.
    SmNestedFsBeyondAw,
    /// SFL.6 (nested): the second stage denies reading the top-level first-stage table.
    SmNestedFsTopReadDenied,
    /// SFL.7 (nested): the second stage denies reading a lower first-stage table.
    SmNestedFsReadDenied,
    /// SFL.8 (nested): the second stage denies the write an accessed/dirty update needs.
    SmNestedFsWriteDenied,
    /// SSL.4: the top-level second-stage table (SLPTPTR) could not be read.
    SmSsTopAccess,
    /// SGN.1: first-stage input address not canonical.
    SmNonCanonical,
    /// SGN.2: a user (unprivileged) request to a page with U/S clear at some first-stage level.
    SmUserSupervisor,
    /// SGN.5 (nested): the first-stage output is beyond the second-stage input width.
    SmNestedOutputBeyondAw,
    /// SSL.1: a second-stage entry could not be read.
    SmSsAccess,
    /// SSL.2: a second-stage entry is not present (R and W both clear).
    SmSsNotPresent,
    /// SSL.3: reserved bit set in a present second-stage entry.
    SmSsReserved,
    /// SGN.4: input address above the address width.
    SmAddressBeyondAw,
    /// SGN.6: write request without write permission.
    SmWriteDenied,
    /// SGN.7: read request without read permission.
    SmReadDenied,
    /// SGN.8: the translated address falls in the interrupt address range.
    SmInterruptAddress,

    // ---- Interrupt remapping (5.1.4.1) ----
    /// 20h: a reserved field is set in a remappable-format interrupt request.
    IrRequestReserved,
    /// 21h: the interrupt index is beyond the table size (IRTA.S), or its IRTE lies above HAW.
    IrIndexBeyondSize,
    /// 22h: the IRTE's P field is clear.
    IrEntryNotPresent,
    /// 23h: the IRTE could not be read through IRTA.
    IrTableAccess,
    /// 24h: a reserved (or conditionally reserved, wrongly programmed) field is set in a present IRTE.
    IrEntryReserved,
    /// 25h: a compatibility-format request while CFIS is clear or EIME is set.
    IrCompatBlocked,
    /// 26h: the requester's source id fails the IRTE's SVT/SQ/SID verification.
    IrSourceId,
}

impl FaultReason {
    /// Every reason, legacy first, then scalable-mode, then interrupt remapping.
    pub const ALL: [FaultReason; 58] = {
        use FaultReason::*;
        [
            RootNotPresent,
            ContextNotPresent,
            ContextInvalid,
            AddressBeyondAw,
            WriteDenied,
            ReadDenied,
            PagingEntryAccess,
            RootTableAccess,
            ContextTableAccess,
            RootReserved,
            ContextReserved,
            PagingEntryReserved,
            InterruptAddress,
            InvalidTtm,
            TtmLegacyWithPasid,
            SmRootAccess,
            SmRootNotPresent,
            SmRootReserved,
            SmContextAccess,
            SmContextNotPresent,
            SmContextReserved,
            SmPasidDisabled,
            SmPasidTooLarge,
            SmRidPasidInvalid,
            SmPasidDirAccess,
            SmPasidDirNotPresent,
            SmPasidDirReserved,
            SmPasidEntryAccess,
            SmPasidEntryNotPresent,
            SmPasidEntryReserved,
            SmPasidEntryInvalid,
            SmSupervisorDisabled,
            SmFsAccess,
            SmFsNotPresent,
            SmFsReserved,
            SmFsTopAccess,
            SmNestedFsBeyondAw,
            SmNestedFsTopReadDenied,
            SmNestedFsReadDenied,
            SmNestedFsWriteDenied,
            SmSsTopAccess,
            SmNonCanonical,
            SmUserSupervisor,
            SmNestedOutputBeyondAw,
            SmSsAccess,
            SmSsNotPresent,
            SmSsReserved,
            SmAddressBeyondAw,
            SmWriteDenied,
            SmReadDenied,
            SmInterruptAddress,
            IrRequestReserved,
            IrIndexBeyondSize,
            IrEntryNotPresent,
            IrTableAccess,
            IrEntryReserved,
            IrCompatBlocked,
            IrSourceId,
        ]
    };

    /// The reason with architected code `code`, if this model knows it.
    pub fn from_code(code: u8) -> Option<FaultReason> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// An interrupt-remapping fault (20h-26h), as opposed to a DMA-remapping one.
    pub fn is_interrupt(self) -> bool {
        (0x20..=0x26).contains(&self.code())
    }

    /// The architected code written to the fault record's FR field.
    pub fn code(self) -> u8 {
        use FaultReason::*;
        match self {
            RootNotPresent => 0x01,
            ContextNotPresent => 0x02,
            ContextInvalid => 0x03,
            AddressBeyondAw => 0x04,
            WriteDenied => 0x05,
            ReadDenied => 0x06,
            PagingEntryAccess => 0x07,
            RootTableAccess => 0x08,
            ContextTableAccess => 0x09,
            RootReserved => 0x0a,
            ContextReserved => 0x0b,
            PagingEntryReserved => 0x0c,
            InterruptAddress => 0x0e,
            InvalidTtm => 0x30,
            TtmLegacyWithPasid => 0x31,
            SmRootAccess => 0x38,
            SmRootNotPresent => 0x39,
            SmRootReserved => 0x3a,
            SmContextAccess => 0x40,
            SmContextNotPresent => 0x41,
            SmContextReserved => 0x42,
            SmPasidDisabled => 0x45,
            SmPasidTooLarge => 0x46,
            SmRidPasidInvalid => 0x48,
            SmPasidDirAccess => 0x50,
            SmPasidDirNotPresent => 0x51,
            SmPasidDirReserved => 0x52,
            SmPasidEntryAccess => 0x58,
            SmPasidEntryNotPresent => 0x59,
            SmPasidEntryReserved => 0x5a,
            SmPasidEntryInvalid => 0x5b,
            SmSupervisorDisabled => 0x5d,
            SmFsAccess => 0x70,
            SmFsNotPresent => 0x71,
            SmFsReserved => 0x72,
            SmFsTopAccess => 0x73,
            SmNestedFsBeyondAw => 0x74,
            SmNestedFsTopReadDenied => 0x75,
            SmNestedFsReadDenied => 0x76,
            SmNestedFsWriteDenied => 0x77,
            SmSsTopAccess => 0x7b,
            SmNonCanonical => 0x80,
            SmUserSupervisor => 0x81,
            SmNestedOutputBeyondAw => 0x84,
            SmSsAccess => 0x78,
            SmSsNotPresent => 0x79,
            SmSsReserved => 0x7a,
            SmAddressBeyondAw => 0x83,
            SmWriteDenied => 0x85,
            SmReadDenied => 0x86,
            SmInterruptAddress => 0x87,
            IrRequestReserved => 0x20,
            IrIndexBeyondSize => 0x21,
            IrEntryNotPresent => 0x22,
            IrTableAccess => 0x23,
            IrEntryReserved => 0x24,
            IrCompatBlocked => 0x25,
            IrSourceId => 0x26,
        }
    }

    /// A short human description.
    pub fn description(self) -> &'static str {
        use FaultReason::*;
        match self {
            RootNotPresent => "root entry not present",
            ContextNotPresent => "context entry not present",
            ContextInvalid => "invalid context entry",
            AddressBeyondAw => "address beyond the address width",
            WriteDenied => "write to a page without write permission",
            ReadDenied => "read of a page without read permission",
            PagingEntryAccess => "second-stage table not readable",
            RootTableAccess => "root table not readable",
            ContextTableAccess => "context table not readable",
            RootReserved => "reserved bit set in root entry",
            ContextReserved => "reserved bit set in context entry",
            PagingEntryReserved => "reserved bit set in second-stage entry",
            InterruptAddress => "translated address in the interrupt range",
            InvalidTtm => "invalid root table type (RTADDR.TTM)",
            TtmLegacyWithPasid => "request with PASID in legacy mode",
            SmRootAccess => "scalable root entry not readable",
            SmRootNotPresent => "scalable root entry not present",
            SmRootReserved => "reserved bit set in scalable root entry",
            SmContextAccess => "scalable context entry not readable",
            SmContextNotPresent => "scalable context entry not present",
            SmContextReserved => "reserved bit set in scalable context entry",
            SmPasidDisabled => "request with PASID but PASIDE clear",
            SmPasidTooLarge => "PASID beyond the PASID directory size",
            SmRidPasidInvalid => "RID_PASID beyond the PASID directory size",
            SmPasidDirAccess => "PASID directory entry not readable",
            SmPasidDirNotPresent => "PASID directory entry not present",
            SmPasidDirReserved => "reserved bit set in PASID directory entry",
            SmPasidEntryAccess => "PASID table entry not readable",
            SmPasidEntryNotPresent => "PASID table entry not present",
            SmPasidEntryReserved => "reserved bit set in PASID table entry",
            SmPasidEntryInvalid => "unsupported PGTT, AW or FLPM in PASID table entry",
            SmSupervisorDisabled => "supervisor request but SRE clear in PASID table entry",
            SmFsAccess => "first-stage table not readable",
            SmFsNotPresent => "first-stage entry not present",
            SmFsReserved => "reserved bit set in first-stage entry",
            SmFsTopAccess => "first-stage top-level table (FSPTPTR) not readable",
            SmNestedFsBeyondAw => "first-stage table address beyond the second-stage address width",
            SmNestedFsTopReadDenied => {
                "second stage denies reading the first-stage top-level table"
            }
            SmNestedFsReadDenied => "second stage denies reading a first-stage table",
            SmNestedFsWriteDenied => "second stage denies the first-stage accessed/dirty update",
            SmSsTopAccess => "second-stage top-level table (SLPTPTR) not readable",
            SmNonCanonical => "first-stage input address not canonical",
            SmUserSupervisor => "user request to a supervisor-only first-stage page",
            SmNestedOutputBeyondAw => "first-stage output beyond the second-stage address width",
            SmSsAccess => "second-stage table not readable",
            SmSsNotPresent => "second-stage entry not present",
            SmSsReserved => "reserved bit set in second-stage entry",
            SmAddressBeyondAw => "address beyond the address width",
            SmWriteDenied => "write to a page without write permission",
            SmReadDenied => "read of a page without read permission",
            SmInterruptAddress => "translated address in the interrupt range",
            IrRequestReserved => "reserved field set in remappable interrupt request",
            IrIndexBeyondSize => "interrupt index beyond the remapping table size",
            IrEntryNotPresent => "interrupt remapping table entry not present",
            IrTableAccess => "interrupt remapping table not readable",
            IrEntryReserved => "reserved field set in interrupt remapping table entry",
            IrCompatBlocked => "compatibility-format interrupt blocked",
            IrSourceId => "interrupt source-id verification failed",
        }
    }

    /// Whether an FPD bit can suppress it (a "qualified" fault, VT-d 4.x section 7.1.2). Faults found
    /// before a trustworthy FPD exists (root table, unreadable or malformed context entry) and
    /// unreadable PASID structures are always reported. Of the interrupt-remapping faults only 22h, 24h
    /// and 26h are qualified (by the IRTE's FPD; 5.1.4.1).
    pub fn qualified(self) -> bool {
        use FaultReason::*;
        !matches!(
            self,
            RootNotPresent
                | RootTableAccess
                | ContextTableAccess
                | RootReserved
                | ContextReserved
                | InvalidTtm
                | TtmLegacyWithPasid
                | SmRootAccess
                | SmRootNotPresent
                | SmRootReserved
                | SmContextAccess
                | SmContextReserved
                | SmPasidDirAccess
                | SmPasidEntryAccess
                | IrRequestReserved
                | IrIndexBeyondSize
                | IrTableAccess
                | IrCompatBlocked
        )
    }
}

#[cfg(test)]
mod tests {
    use super::FaultReason::*;

    #[test]
    fn codes_match_the_spec_table() {
        let pairs = [
            (RootNotPresent, 0x1),
            (ContextNotPresent, 0x2),
            (ContextInvalid, 0x3),
            (AddressBeyondAw, 0x4),
            (WriteDenied, 0x5),
            (ReadDenied, 0x6),
            (PagingEntryAccess, 0x7),
            (RootTableAccess, 0x8),
            (ContextTableAccess, 0x9),
            (RootReserved, 0xa),
            (ContextReserved, 0xb),
            (PagingEntryReserved, 0xc),
            (SmRootNotPresent, 0x39),
            (SmContextNotPresent, 0x41),
            (SmPasidEntryNotPresent, 0x59),
            (SmPasidEntryInvalid, 0x5b),
            (SmSsNotPresent, 0x79),
            (SmWriteDenied, 0x85),
            (SmReadDenied, 0x86),
            (SmSupervisorDisabled, 0x5d),
            (SmFsAccess, 0x70),
            (SmFsNotPresent, 0x71),
            (SmFsReserved, 0x72),
            (SmFsTopAccess, 0x73),
            (SmNestedFsBeyondAw, 0x74),
            (SmNestedFsTopReadDenied, 0x75),
            (SmNestedFsReadDenied, 0x76),
            (SmNestedFsWriteDenied, 0x77),
            (SmSsTopAccess, 0x7b),
            (SmNonCanonical, 0x80),
            (SmUserSupervisor, 0x81),
            (SmNestedOutputBeyondAw, 0x84),
        ];
        for (r, code) in pairs {
            assert_eq!(r.code(), code, "{r:?}");
            assert!(!r.description().is_empty());
        }
        assert!(ContextNotPresent.qualified() && SmSsNotPresent.qualified());
        // First-stage and nested faults happen after the PASID entry (and its FPD) was found.
        assert!(SmFsNotPresent.qualified() && SmNestedFsWriteDenied.qualified());
        assert!(SmUserSupervisor.qualified() && SmSupervisorDisabled.qualified());
        // ALL lists each reason once, with distinct codes; from_code inverts code.
        let all = super::FaultReason::ALL;
        for (i, r) in all.iter().enumerate() {
            assert_eq!(super::FaultReason::from_code(r.code()), Some(*r));
            assert!(all[..i].iter().all(|o| o.code() != r.code()), "{r:?}");
            assert_eq!(r.is_interrupt(), (0x20..=0x26).contains(&r.code()));
        }
        for unknown in [0x00, 0x0d, 0x0f, 0x27, 0x32, 0x43, 0x7c, 0x82, 0x88, 0xff] {
            assert_eq!(super::FaultReason::from_code(unknown), None, "{unknown:#x}");
        }
        assert!(!RootNotPresent.qualified() && !ContextReserved.qualified());
        let ir = [
            (IrRequestReserved, 0x20, false),
            (IrIndexBeyondSize, 0x21, false),
            (IrEntryNotPresent, 0x22, true),
            (IrTableAccess, 0x23, false),
            (IrEntryReserved, 0x24, true),
            (IrCompatBlocked, 0x25, false),
            (IrSourceId, 0x26, true),
        ];
        for (r, code, qualified) in ir {
            assert_eq!(r.code(), code, "{r:?}");
            assert_eq!(r.qualified(), qualified, "{r:?}");
            assert!(!r.description().is_empty());
        }
    }
}
