//! VT-d register offsets and bit fields (Intel VT-d spec 4.x, chapter 11 "Register Descriptions").
//!
//! Offsets are relative to the unit's register window (`VTD_MMIO_SIZE` bytes).

/// Size of the register window (DRHD "size" field 0 = 4 KiB).
pub const VTD_MMIO_SIZE: u64 = 0x1000;

// ---- Offsets (11.4) ----
pub const VER: u64 = 0x00;
pub const CAP: u64 = 0x08;
pub const ECAP: u64 = 0x10;
pub const GCMD: u64 = 0x18;
pub const GSTS: u64 = 0x1c;
pub const RTADDR: u64 = 0x20;
pub const CCMD: u64 = 0x28;
pub const FSTS: u64 = 0x34;
pub const FECTL: u64 = 0x38;
pub const FEDATA: u64 = 0x3c;
pub const FEADDR: u64 = 0x40;
pub const FEUADDR: u64 = 0x44;
pub const IQH: u64 = 0x80;
pub const IQT: u64 = 0x88;
pub const IQA: u64 = 0x90;
pub const ICS: u64 = 0x9c;
pub const IECTL: u64 = 0xa0;
pub const IEDATA: u64 = 0xa4;
pub const IEADDR: u64 = 0xa8;
pub const IEUADDR: u64 = 0xac;
pub const IQERCD: u64 = 0xb0;
pub const IRTA: u64 = 0xb8;

/// Where this model places the IOTLB registers: IVA at `IRO_OFFSET`, IOTLB at `IRO_OFFSET + 8`
/// (ECAP.IRO = offset / 16). Chosen clear of every architected register (MTRRs end at 0x218).
pub const IRO_OFFSET: u64 = 0x300;
pub const IVA: u64 = IRO_OFFSET;
pub const IOTLB: u64 = IRO_OFFSET + 8;

/// Where this model places the primary fault recording registers (CAP.FRO = offset / 16).
pub const FRO_OFFSET: u64 = 0x400;
/// Bytes per fault recording register.
pub const FRCD_SIZE: u64 = 16;
/// Most fault recording registers this model offers: they must end before 0xc00 (clear of the
/// virtual-command registers at 0xe00), i.e. 128 x 16 bytes from `FRO_OFFSET`.
pub const MAX_NFR: u16 = 128;

/// VER_REG: major 1, minor 0.
pub const VERSION: u32 = 0x10;

// ---- CAP_REG (11.4.2) ----
pub const CAP_ND_SHIFT: u32 = 0;
pub const CAP_RWBF: u64 = 1 << 4;
pub const CAP_CM: u64 = 1 << 7;
pub const CAP_SAGAW_SHIFT: u32 = 8;
pub const CAP_MGAW_SHIFT: u32 = 16;
pub const CAP_FRO_SHIFT: u32 = 24;
pub const CAP_SLLPS_2M: u64 = 1 << 34;
pub const CAP_SLLPS_1G: u64 = 1 << 35;
pub const CAP_PSI: u64 = 1 << 39;
pub const CAP_NFR_SHIFT: u32 = 40;
pub const CAP_MAMV_SHIFT: u32 = 48;
/// FL1GP: 1 GiB first-stage pages.
pub const CAP_FL1GP: u64 = 1 << 56;
/// FL5LP: 5-level first-stage paging.
pub const CAP_FL5LP: u64 = 1 << 60;
pub const CAP_ESIRTPS: u64 = 1 << 62;
pub const CAP_ESRTPS: u64 = 1 << 63;

// ---- ECAP_REG (11.4.3) ----
pub const ECAP_C: u64 = 1 << 0;
pub const ECAP_QI: u64 = 1 << 1;
pub const ECAP_DT: u64 = 1 << 2;
pub const ECAP_IR: u64 = 1 << 3;
pub const ECAP_EIM: u64 = 1 << 4;
pub const ECAP_PT: u64 = 1 << 6;
pub const ECAP_SC: u64 = 1 << 7;
pub const ECAP_IRO_SHIFT: u32 = 8;
/// ECAP.MHMV (bits 23:20): maximum handle mask value of index-selective IEC invalidation (VT-d 10.4.3);
/// Linux refuses multi-vector MSI blocks whose handle mask exceeds it.
pub const ECAP_MHMV_SHIFT: u32 = 20;
/// The MHMV we offer: blocks of up to 2^15 entries (IEC invalidation honours any IM up to it).
pub const MHMV: u64 = 0xf;
pub const ECAP_NEST: u64 = 1 << 26;
pub const ECAP_PRS: u64 = 1 << 29;
pub const ECAP_SRS: u64 = 1 << 31;
pub const ECAP_PSS_SHIFT: u32 = 35;
pub const ECAP_PASID: u64 = 1 << 40;
pub const ECAP_SMTS: u64 = 1 << 43;
pub const ECAP_SLADS: u64 = 1 << 45;
pub const ECAP_SLTS: u64 = 1 << 46;
pub const ECAP_FLTS: u64 = 1 << 47;
pub const ECAP_SMPWC: u64 = 1 << 48;
pub const ECAP_RPS: u64 = 1 << 49;

// ---- GCMD_REG / GSTS_REG (11.4.4, 11.4.5): same bit positions ----
pub const GCMD_TE: u32 = 1 << 31;
pub const GCMD_SRTP: u32 = 1 << 30;
pub const GCMD_SFL: u32 = 1 << 29;
pub const GCMD_EAFL: u32 = 1 << 28;
pub const GCMD_WBF: u32 = 1 << 27;
pub const GCMD_QIE: u32 = 1 << 26;
pub const GCMD_IRE: u32 = 1 << 25;
pub const GCMD_SIRTP: u32 = 1 << 24;
pub const GCMD_CFI: u32 = 1 << 23;
pub const GSTS_TES: u32 = GCMD_TE;
pub const GSTS_RTPS: u32 = GCMD_SRTP;
pub const GSTS_QIES: u32 = GCMD_QIE;
pub const GSTS_IRES: u32 = GCMD_IRE;
pub const GSTS_IRTPS: u32 = GCMD_SIRTP;
pub const GSTS_CFIS: u32 = GCMD_CFI;

// ---- RTADDR_REG (11.4.6) ----
pub const RTADDR_TTM_SHIFT: u32 = 10;
pub const RTADDR_MASK: u64 = !0x3ff;
pub const TTM_LEGACY: u64 = 0;
pub const TTM_SCALABLE: u64 = 1;

// ---- CCMD_REG (11.4.7) ----
pub const CCMD_ICC: u64 = 1 << 63;
pub const CCMD_CIRG_SHIFT: u32 = 61;
pub const CCMD_CAIG_SHIFT: u32 = 59;
pub const CCMD_FM_SHIFT: u32 = 32;
pub const CCMD_SID_SHIFT: u32 = 16;
/// Writable CCMD bits: ICC, CIRG, FM, SID, DID.
pub const CCMD_WRITABLE: u64 =
    CCMD_ICC | (3 << CCMD_CIRG_SHIFT) | (3 << CCMD_FM_SHIFT) | 0xffff_ffff;

// ---- IOTLB_REG / IVA_REG (11.4.8) ----
pub const IOTLB_IVT: u64 = 1 << 63;
pub const IOTLB_IIRG_SHIFT: u32 = 60;
pub const IOTLB_IAIG_SHIFT: u32 = 57;
pub const IOTLB_DID_SHIFT: u32 = 32;
/// Writable IOTLB_REG bits: IVT, IIRG, DR, DW, DID.
pub const IOTLB_WRITABLE: u64 = IOTLB_IVT | (3 << IOTLB_IIRG_SHIFT) | (3 << 48) | (0xffff << 32);
pub const IVA_AM_MASK: u64 = 0x3f;
/// Writable IVA bits: ADDR, IH, AM.
pub const IVA_WRITABLE: u64 = !0xf80;

// ---- FSTS_REG (11.4.9.1) ----
pub const FSTS_PFO: u32 = 1 << 0;
pub const FSTS_PPF: u32 = 1 << 1;
pub const FSTS_IQE: u32 = 1 << 4;
pub const FSTS_ICE: u32 = 1 << 5;
pub const FSTS_ITE: u32 = 1 << 6;
pub const FSTS_FRI_SHIFT: u32 = 8;
/// Status bits that are a pending fault-event condition (PPF is derived from the F bits).
pub const FSTS_EVENT_BITS: u32 = FSTS_PFO | FSTS_PPF | FSTS_IQE | FSTS_ICE | FSTS_ITE;
/// Write-1-to-clear FSTS bits this model implements (no advanced fault logging).
pub const FSTS_W1C: u32 = FSTS_PFO | FSTS_IQE | FSTS_ICE | FSTS_ITE;

// ---- FECTL_REG / IECTL_REG (11.4.9.2, 11.4.9.7) ----
pub const CTL_IM: u32 = 1 << 31;
pub const CTL_IP: u32 = 1 << 30;

// ---- Fault recording register, upper qword (11.4.14) ----
pub const FRCD_F: u64 = 1 << 63;
pub const FRCD_T1: u64 = 1 << 62;
pub const FRCD_PV_SHIFT: u32 = 40;
pub const FRCD_FR_SHIFT: u32 = 32;
pub const FRCD_PP: u64 = 1 << 31;
pub const FRCD_PRIV: u64 = 1 << 29;

// ---- IRTA_REG (chapter 11, "Interrupt Remapping Table Address Register") ----
/// S: the table holds 2^(S+1) entries.
pub const IRTA_S_MASK: u64 = 0xf;
/// EIME: x2APIC mode (32-bit destination ids); RsvdZ without ECAP.EIM.
pub const IRTA_EIME: u64 = 1 << 11;
/// IRTA: the table's 4 KiB-aligned base (bits above HAW are not implemented).
pub const IRTA_BASE_MASK: u64 = !0xfff;

// ---- IQA_REG / IQH / IQT (11.4.9.3-5) ----
pub const IQA_QS_MASK: u64 = 0x7;
pub const IQA_DW: u64 = 1 << 11;
pub const IQA_BASE_MASK: u64 = !0xfff;
/// QH / QT field (bits 18:4), a byte offset into the queue.
pub const IQ_OFFSET_MASK: u64 = 0x7fff0;

// ---- ICS_REG (11.4.9.6) ----
pub const ICS_IWC: u32 = 1;

// ---- IQERCD_REG (11.4.9.9): IQEI values ----
pub const IQEI_TAIL_INVALID: u64 = 1;
pub const IQEI_FETCH_ERROR: u64 = 2;
pub const IQEI_INVALID_TYPE: u64 = 3;
pub const IQEI_RESERVED: u64 = 4;
pub const IQEI_INVALID_WIDTH: u64 = 5;
pub const IQEI_TAIL_MISALIGNED: u64 = 6;

/// The interrupt address range (VT-d 4.x section 3.14): requests here are interrupts, not DMA.
pub const MSI_FIRST: u64 = 0xfee0_0000;
pub const MSI_LAST: u64 = 0xfeef_ffff;
