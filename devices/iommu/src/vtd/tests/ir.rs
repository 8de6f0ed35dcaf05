//! Interrupt remapping (VT-d 4.x chapter 5) driven the way Linux's intel irq_remapping.c drives it:
//! bring-up, remappable MSIs from the test device and the I/OxAPIC, every fault condition of 5.1.4.1 as
//! the fault log records it, the interrupt entry cache and its invalidation, pass-through.

use super::*;
use crate::vtd::RemappedMsi;

const FRO: u64 = regs::FRO_OFFSET;
/// The I/OxAPIC's requester id (its DMAR device scope: bus 0xff, 00.0).
const IOAPIC_SID: u16 = 0xff00;
/// Linux's IRTA size field: 2^(15+1) = 65536 entries (1 MiB).
const S_MAX: u64 = 0xf;

/// A unit with interrupt remapping brought up.
struct Ir {
    fx: Fx,
    q: Queue,
    table: u64,
}

impl Ir {
    /// Linux's bring-up (intel_setup_irq_remapping, iommu_set_irq_remapping, iommu_enable_irq_remapping):
    /// QI on, IRTA <- table | EIME | S, GCMD.SIRTP and poll IRTPS, global IEC invalidation (CAP.ESIRTPS
    /// is 0), GCMD.IRE and poll IRES, clear CFI if CFIS. Then the fault event MSI, unmasked.
    fn new(opts: &str, eime: bool, s: u64) -> Self {
        let fx = Fx::new(opts);
        let smts = fx.r64(regs::ECAP) & regs::ECAP_SMTS != 0;
        assert_ne!(fx.r64(regs::ECAP) & regs::ECAP_IR, 0);
        assert_eq!(fx.r64(regs::CAP) & regs::CAP_ESIRTPS, 0);
        let mut q = fx.enable_qi(smts);
        // 2^(s+1) entries of 16 bytes, contiguous pages.
        let table = fx.alloc();
        for _ in 1..((2u64 << s) * 16).div_ceil(0x1000) {
            fx.alloc();
        }
        let irta = table | if eime { regs::IRTA_EIME } else { 0 } | s;
        fx.w64(regs::IRTA, irta);
        assert_eq!(fx.r64(regs::IRTA), irta);
        assert_eq!(fx.r32(regs::GSTS) & regs::GSTS_IRTPS, 0);
        fx.gcmd(0, 0, regs::GCMD_SIRTP);
        assert_ne!(fx.r32(regs::GSTS) & regs::GSTS_IRTPS, 0);
        fx.sync(&mut q, &[iec_global()]);
        fx.gcmd(regs::GCMD_IRE, 0, 0);
        let sts = fx.r32(regs::GSTS);
        assert_ne!(sts & regs::GSTS_IRES, 0);
        if sts & regs::GSTS_CFIS != 0 {
            fx.gcmd(0, regs::GCMD_CFI, 0);
        }
        assert_eq!(fx.r32(regs::GSTS) & regs::GSTS_CFIS, 0);
        fx.w32(regs::FEDATA, 0x31);
        fx.w32(regs::FEADDR, 0xfee0_0000);
        fx.w32(regs::FECTL, 0);
        Self { fx, q, table }
    }

    fn set(&self, index: u64, [lo, hi]: [u64; 2]) {
        self.fx.wr(self.table + index * 16, lo);
        self.fx.wr(self.table + index * 16 + 8, hi);
    }

    fn remap(&self, sid: u16, address: u64, data: u32) -> Result<RemappedMsi, DmaFault> {
        self.fx.vtd.remap_msi(sid, address, data)
    }

    /// Remaps and returns the fault reason, or 0 for success.
    fn reason(&self, sid: u16, address: u64, data: u32) -> u32 {
        self.remap(sid, address, data)
            .map_or_else(|f| f.reason, |_| 0)
    }

    /// Linux's dmar_fault(): records from FRI until F is clear, cleared; (FR, SID, FI, T) of each.
    fn drain(&self) -> Vec<(u8, u16, u64, bool)> {
        let fx = &self.fx;
        let nfr = ((fx.r64(regs::CAP) >> 40) & 0xff) + 1;
        let mut out = Vec::new();
        let fsts = fx.r32(regs::FSTS);
        if fsts & regs::FSTS_PPF != 0 {
            let mut i = u64::from(fsts >> 8 & 0xff);
            loop {
                let hi = fx.r64(FRO + i * 16 + 8);
                if hi & regs::FRCD_F == 0 {
                    break;
                }
                let lo = fx.r64(FRO + i * 16);
                out.push(((hi >> 32) as u8, hi as u16, lo, hi & regs::FRCD_T1 != 0));
                fx.w32(FRO + i * 16 + 12, 1 << 31);
                i = (i + 1) % nfr;
            }
        }
        fx.w32(regs::FSTS, regs::FSTS_PFO | regs::FSTS_PPF);
        out
    }
}

/// Interrupt entry cache invalidation descriptors (6.5.2.7).
fn iec_global() -> [u64; 4] {
    [4, 0, 0, 0]
}

fn iec_index(index: u16, im: u64) -> [u64; 4] {
    [4 | 1 << 4 | im << 27 | u64::from(index) << 32, 0, 0, 0]
}

/// An IRTE as Linux's intel_irq_remapping_prepare_irte() builds it: present, fixed delivery, edge,
/// physical destination, RH=1, destination IRTE_DEST(dest); then set_irte_sid(SVT 1, SQ 0, sid).
fn irte(vector: u8, dest: u32, eime: bool, sid: u16) -> [u64; 2] {
    let dst = if eime { dest } else { dest << 8 };
    [
        1 | 1 << 3 | u64::from(vector) << 16 | u64::from(dst) << 32,
        u64::from(sid) | 1 << 18,
    ]
}

/// Linux's fill_msi_msg(): remappable format, SHV set (the subhandle goes in the data).
fn msi_address(index: u32) -> u64 {
    0xfee0_0000 | u64::from(index & 0x7fff) << 5 | 1 << 4 | 1 << 3 | u64::from(index >> 15) << 2
}

/// What an I/OxAPIC sends for a remappable RTE (5.1.5.1): SHV clear, data = RTE vector | trigger mode.
fn ioapic_address(index: u32) -> u64 {
    0xfee0_0000 | u64::from(index & 0x7fff) << 5 | 1 << 4 | u64::from(index >> 15) << 2
}

fn fixed(dest_id: u32, vector: u8) -> RemappedMsi {
    RemappedMsi {
        dest_id,
        vector,
        delivery_mode: 0,
        dest_mode_logical: false,
        trigger_level: false,
        redirection_hint: true,
    }
}

#[test]
fn linux_bringup_and_full_state_gcmd() {
    let ir = Ir::new("vtd", true, S_MAX);
    let fx = &ir.fx;
    assert_eq!(fx.vtd.stats().invalidations["iec_global"], 1);
    assert_eq!(fx.vtd.stats().qi_errors, 0);
    let sts = fx.r32(regs::GSTS);
    assert_eq!(
        sts,
        regs::GSTS_QIES | regs::GSTS_IRTPS | regs::GSTS_IRES,
        "{sts:#x}"
    );
    // Later the DMA side: root table and TE; the persistent IRE stays on.
    let root = fx.alloc();
    fx.w64(regs::RTADDR, root | 1 << 10);
    fx.gcmd(0, 0, regs::GCMD_SRTP);
    fx.gcmd(regs::GCMD_TE, 0, 0);
    assert_eq!(
        fx.r32(regs::GSTS),
        sts | regs::GSTS_RTPS | regs::GSTS_TES,
        "TE keeps IRES and QIES"
    );
    // CFI is persistent too: a write of GCMD's top byte alone keeps CFIS (bit 23, byte 2).
    fx.gcmd(regs::GCMD_CFI, 0, 0);
    assert_ne!(fx.r32(regs::GSTS) & regs::GSTS_CFIS, 0);
    fx.vtd.mmio_write(regs::GCMD + 3, &[0x80 | 0x04 | 0x02]);
    assert_eq!(
        fx.r32(regs::GSTS) & (regs::GSTS_CFIS | regs::GSTS_IRES | regs::GSTS_TES),
        regs::GSTS_CFIS | regs::GSTS_IRES | regs::GSTS_TES
    );
    // Linux's disable path: GCMD without IRE.
    fx.gcmd(0, regs::GCMD_IRE | regs::GCMD_CFI, 0);
    assert_eq!(fx.r32(regs::GSTS) & (regs::GSTS_IRES | regs::GSTS_CFIS), 0);
    assert_ne!(fx.r32(regs::GSTS) & regs::GSTS_TES, 0);
    // IRTA: bits 10:4 reserved, bits above HAW (48) not implemented.
    fx.w64(
        regs::IRTA,
        1 << 50 | 0x12_3000 | 0x7f0 | regs::IRTA_EIME | 3,
    );
    assert_eq!(fx.r64(regs::IRTA), 0x12_3000 | regs::IRTA_EIME | 3);
    // Without ECAP.EIM, EIME is reserved-zero.
    let fx = Fx::new("vtd,eim=off");
    assert_eq!(
        fx.r64(regs::ECAP) & (regs::ECAP_IR | regs::ECAP_EIM),
        regs::ECAP_IR
    );
    fx.w64(regs::IRTA, 0x12_3000 | regs::IRTA_EIME | 0xf);
    assert_eq!(fx.r64(regs::IRTA), 0x12_300f);
    assert!(fx.msis().is_empty());
}

#[test]
fn remappable_msi_from_the_test_device() {
    let ir = Ir::new("vtd", true, S_MAX);
    ir.set(5, irte(0x41, 3, true, SID));
    let m = ir.remap(SID, msi_address(5), 0).unwrap();
    assert_eq!(m, fixed(3, 0x41));
    assert_eq!(m.to_msi(), (0xfee0_3008, 0x41));
    // Delivery, trigger and destination mode come from the IRTE, not the request.
    let [lo, hi] = irte(0x42, 1, true, SID);
    ir.set(6, [lo | 1 << 2 | 1 << 4 | 1 << 5, hi]);
    let m = ir.remap(SID, msi_address(6), 0).unwrap();
    assert_eq!(
        m,
        RemappedMsi {
            dest_id: 1,
            vector: 0x42,
            delivery_mode: 1,
            dest_mode_logical: true,
            trigger_level: true,
            redirection_hint: true,
        }
    );
    assert_eq!(m.to_msi(), (0xfee0_100c, 0xc142));
    let st = ir.fx.vtd.stats();
    assert_eq!(st.interrupts_remapped, 2);
    assert_eq!(st.interrupts_passed_through, 0);
    assert_eq!(ir.fx.r32(regs::FSTS), 0);
    assert!(ir.fx.msis().is_empty());
}

#[test]
fn subhandles_and_the_ioapic() {
    let ir = Ir::new("vtd", true, S_MAX);
    for i in 0..4u64 {
        ir.set(8 + i, irte(0x50 + i as u8, 0, true, SID));
    }
    // Multi-vector MSI: handle 8, subhandle i in the data.
    for i in 0..4u32 {
        let m = ir.remap(SID, msi_address(8), i).unwrap();
        assert_eq!(m.vector, 0x50 + i as u8);
    }
    // Without SHV the data is not a subhandle.
    let no_shv = msi_address(8) & !(1 << 3);
    assert_eq!(ir.remap(SID, no_shv, 3).unwrap().vector, 0x50);
    // The I/OxAPIC: its source id, SHV clear, its vector and trigger mode in the data; the IRTE decides.
    let [lo, hi] = irte(0x61, 2, true, IOAPIC_SID);
    ir.set(0x20, [lo | 1 << 4, hi]);
    let m = ir.remap(IOAPIC_SID, ioapic_address(0x20), 1 << 15).unwrap();
    assert_eq!((m.vector, m.dest_id, m.trigger_level), (0x61, 2, true));
    // The IOAPIC's entry refuses the test device and vice versa.
    assert_eq!(ir.reason(SID, ioapic_address(0x20), 0), 0x26);
    assert_eq!(ir.reason(IOAPIC_SID, msi_address(8), 0), 0x26);
    // Handle bit 15 (address bit 2) reaches the upper half of a 65536-entry table.
    ir.set(0x8003, irte(0x70, 1, true, SID));
    assert_eq!(ir.remap(SID, msi_address(0x8000), 3).unwrap().vector, 0x70);
    assert_eq!(
        ir.remap(SID, ioapic_address(0x8003), 0).unwrap().vector,
        0x70
    );
}

#[test]
fn index_beyond_the_table_size() {
    // S=0: two entries.
    let ir = Ir::new("vtd", true, 0);
    ir.set(1, irte(0x30, 0, true, SID));
    assert_eq!(ir.reason(SID, msi_address(1), 0), 0);
    let f = ir.remap(SID, msi_address(2), 0).unwrap_err();
    assert_eq!((f.reason, f.recorded, f.iova), (0x21, true, msi_address(2)));
    assert_eq!(
        ir.reason(SID, msi_address(0), 2),
        0x21,
        "handle + subhandle"
    );
    // handle 0xffff + subhandle 0xffff: the index overflows 16 bits; FI keeps its low 16 bits.
    assert_eq!(ir.reason(SID, msi_address(0xffff), 0xffff), 0x21);
    assert_eq!(
        ir.drain(),
        vec![
            (0x21, SID, 2 << 48, false),
            (0x21, SID, 2 << 48, false),
            (0x21, SID, 0xfffe << 48, false)
        ]
    );
    // 21h is not qualified: always recorded.
    assert!(ir.remap(SID, msi_address(3), 0).unwrap_err().recorded);
}

#[test]
fn not_present_and_fpd() {
    let ir = Ir::new("vtd", true, S_MAX);
    let f = ir.remap(SID, msi_address(7), 0).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0x22, true));
    assert_eq!(f.model, "vtd");
    assert!(!f.description.is_empty());
    assert_eq!(ir.fx.msis(), vec![(0xfee0_0000, 0x31)], "fault event");
    // P=0 with FPD=1 (evaluated irrespective of P): not recorded, still blocked.
    ir.set(9, [2, 0]);
    let f = ir.remap(SID, msi_address(9), 0).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0x22, false));
    let st = ir.fx.vtd.stats();
    assert_eq!(st.faults_by_reason["0x22"], 2);
    assert_eq!((st.faults_recorded, st.faults_suppressed), (1, 1));
    assert_eq!(ir.drain(), vec![(0x22, SID, 7 << 48, false)]);
}

#[test]
fn reserved_fields_in_the_irte_and_posted_mode() {
    let ir = Ir::new("vtd", true, S_MAX);
    let [lo, hi] = irte(0x30, 1, true, SID);
    let bad = [
        [lo | 1 << 12, hi],
        [lo | 1 << 15, hi], // IM=1: posted format, not supported (CAP.PI=0)
        [lo | 1 << 24, hi],
        [lo | 3 << 5, hi],  // delivery mode 011b
        [lo, hi | 1 << 20], // IRTE bit 84
        [lo, hi | 3 << 18], // SVT 11b
    ];
    for (i, e) in bad.iter().enumerate() {
        ir.set(16 + i as u64, *e);
        assert_eq!(
            ir.reason(SID, msi_address(16 + i as u32), 0),
            0x24,
            "{e:x?}"
        );
        // 24h is qualified: the entry's FPD suppresses it.
        ir.set(16 + i as u64, [e[0] | 2, e[1]]);
        let f = ir.remap(SID, msi_address(16 + i as u32), 0).unwrap_err();
        assert_eq!((f.reason, f.recorded), (0x24, false));
    }
    assert_eq!(ir.fx.vtd.stats().faults_recorded, bad.len() as u64);
    // A posted-format entry as Linux would write it for a vCPU (IM=1, urgent, PDA): refused.
    ir.set(
        30,
        [
            1 | 1 << 15 | 1 << 14 | 0x51 << 16 | 0x12345 << 38,
            0x18 | 1 << 18 | 0x1 << 32,
        ],
    );
    assert_eq!(ir.reason(SID, msi_address(30), 0), 0x24);
}

#[test]
fn xapic_mode_destinations() {
    let ir = Ir::new("vtd,eim=off", false, S_MAX);
    assert_eq!(ir.fx.r64(regs::IRTA) & regs::IRTA_EIME, 0);
    // IRTE_DEST(dest) = dest << 8 in xAPIC mode.
    ir.set(1, irte(0x30, 0xfe, false, SID));
    assert_eq!(ir.remap(SID, msi_address(1), 0).unwrap().dest_id, 0xfe);
    // An x2APIC-style destination sets bits that are reserved in xAPIC mode.
    ir.set(2, irte(0x30, 5, true, SID));
    assert_eq!(ir.reason(SID, msi_address(2), 0), 0x24);
    ir.set(3, irte(0x30, 0x100, false, SID));
    assert_eq!(ir.reason(SID, msi_address(3), 0), 0x24);
}

#[test]
fn x2apic_32_bit_destinations_and_eime_latching() {
    let mut ir = Ir::new("vtd", true, S_MAX);
    ir.set(1, irte(0x45, 0x1234_5678, true, SID));
    let m = ir.remap(SID, msi_address(1), 0).unwrap();
    assert_eq!(m.dest_id, 0x1234_5678);
    // KVM's 32-bit destination: address_hi bits 31:8 = destination bits 31:8.
    assert_eq!(m.to_msi(), (0x1234_5600_fee7_8008, 0x45));
    // EIME takes effect at SIRTP, not when IRTA is written.
    ir.fx.w64(regs::IRTA, ir.table | S_MAX);
    assert_eq!(
        ir.remap(SID, msi_address(1), 0).unwrap().dest_id,
        0x1234_5678
    );
    ir.fx.gcmd(0, 0, regs::GCMD_SIRTP);
    ir.fx.sync(&mut ir.q, &[iec_global()]);
    assert_eq!(
        ir.reason(SID, msi_address(1), 0),
        0x24,
        "reserved in xAPIC mode"
    );
    ir.set(2, irte(0x46, 7, false, SID));
    assert_eq!(ir.remap(SID, msi_address(2), 0).unwrap().dest_id, 7);
}

#[test]
fn source_id_verification() {
    let mut ir = Ir::new("vtd", true, S_MAX);
    let with = |index: u64, svt: u64, sq: u64, sid: u16| {
        let [lo, _] = irte(0x30, 0, true, 0);
        ir.set(index, [lo, u64::from(sid) | sq << 16 | svt << 18]);
        msi_address(index as u32)
    };
    // SVT 01b, SQ 00b..11b.
    let a = with(1, 1, 0, 0x18);
    assert_eq!((ir.reason(0x18, a, 0), ir.reason(0x1c, a, 0)), (0, 0x26));
    let a = with(2, 1, 1, 0x18);
    assert_eq!((ir.reason(0x1c, a, 0), ir.reason(0x1a, a, 0)), (0, 0x26));
    let a = with(3, 1, 2, 0x18);
    assert_eq!((ir.reason(0x1e, a, 0), ir.reason(0x19, a, 0)), (0, 0x26));
    let a = with(4, 1, 3, 0x18);
    assert_eq!((ir.reason(0x1f, a, 0), ir.reason(0x20, a, 0)), (0, 0x26));
    // SVT 10b: buses 2..=4 (start bus in SID[15:8]); SQ is ignored.
    let a = with(5, 2, 3, 0x0204);
    for (sid, reason) in [(0x0200, 0), (0x0418, 0), (0x0100, 0x26), (0x0500, 0x26)] {
        assert_eq!(ir.reason(sid, a, 0), reason, "{sid:#x}");
    }
    // SVT 00b: anyone.
    let a = with(6, 0, 0, 0x1234);
    assert_eq!((ir.reason(0x18, a, 0), ir.reason(IOAPIC_SID, a, 0)), (0, 0));
    // 26h is qualified by the entry's FPD; it is recorded with the requester's id.
    ir.drain();
    let [lo, hi] = irte(0x30, 0, true, 0x18);
    ir.set(7, [lo | 2, hi]);
    let f = ir.remap(0x20, msi_address(7), 0).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0x26, false));
    // The entry is cached: the change counts once invalidated.
    ir.set(7, [lo, hi]);
    assert!(!ir.remap(0x20, msi_address(7), 0).unwrap_err().recorded);
    ir.fx.sync(&mut ir.q, &[iec_index(7, 0)]);
    assert!(ir.remap(0x20, msi_address(7), 0).unwrap_err().recorded);
    assert_eq!(ir.drain(), vec![(0x26, 0x20, 7 << 48, false)]);
}

#[test]
fn compatibility_format_blocked_or_passed() {
    let ir = Ir::new("vtd,eim=off", false, S_MAX);
    let (addr, data) = (0xfee0_1004, 0x8031);
    // CFIS clear (Linux cleared CFI): blocked with 25h, FI 0.
    let f = ir.remap(SID, addr, data).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0x25, true));
    assert_eq!(ir.drain(), vec![(0x25, SID, 0, false)]);
    // CFI set, xAPIC mode: passed through unchanged.
    ir.fx.gcmd(regs::GCMD_CFI, 0, 0);
    assert_ne!(ir.fx.r32(regs::GSTS) & regs::GSTS_CFIS, 0);
    let m = ir.remap(SID, addr, data).unwrap();
    assert_eq!(m, RemappedMsi::from_compat(addr, data));
    assert_eq!(
        (m.dest_id, m.vector, m.dest_mode_logical, m.trigger_level),
        (1, 0x31, true, true)
    );
    assert_eq!(ir.fx.vtd.stats().interrupts_passed_through, 1);
    // x2APIC mode (EIME latched) blocks them whatever CFIS says.
    let ir = Ir::new("vtd", true, S_MAX);
    ir.fx.gcmd(regs::GCMD_CFI, 0, 0);
    assert_eq!(ir.reason(SID, addr, data), 0x25);
}

#[test]
fn reserved_fields_in_the_request() {
    let ir = Ir::new("vtd", true, S_MAX);
    ir.set(1, irte(0x30, 0, true, SID));
    // Address bits 63:32 in a remappable request.
    assert_eq!(ir.reason(SID, 1 << 32 | msi_address(1), 0), 0x20);
    // Data bits 31:16 with SHV; without SHV the data is ignored.
    assert_eq!(ir.reason(SID, msi_address(1), 0x1_0000), 0x20);
    assert_eq!(ir.reason(SID, ioapic_address(1), 0xffff_ffff), 0);
    assert_eq!(
        ir.drain(),
        vec![(0x20, SID, 1 << 48, false), (0x20, SID, 1 << 48, false)]
    );
    // Not an interrupt address at all: refused, not recorded.
    let f = ir.remap(SID, 0xfed0_0010, 0).unwrap_err();
    assert_eq!((f.reason, f.recorded), (0, false));
    assert_eq!(ir.fx.r32(regs::FSTS), 0);
}

#[test]
fn table_outside_ram_or_above_haw() {
    // Outside RAM: 23h.
    let ir = Ir::new("vtd", true, S_MAX);
    ir.fx.w64(regs::IRTA, RAM | regs::IRTA_EIME | S_MAX);
    ir.fx.gcmd(0, 0, regs::GCMD_SIRTP);
    assert_eq!(ir.reason(SID, msi_address(0), 0), 0x23);
    // A table straddling the end of RAM: the entries in RAM work.
    ir.fx
        .w64(regs::IRTA, (RAM - 0x1000) | regs::IRTA_EIME | S_MAX);
    ir.fx.gcmd(0, 0, regs::GCMD_SIRTP);
    ir.fx.wr(RAM - 0x1000 + 0xff0, irte(0x30, 0, true, SID)[0]);
    ir.fx.wr(RAM - 0x1000 + 0xff8, irte(0x30, 0, true, SID)[1]);
    assert_eq!(ir.reason(SID, msi_address(0xff), 0), 0);
    assert_eq!(ir.reason(SID, msi_address(0x100), 0), 0x23);
    // aw=39: a table at the top of the 39-bit space; entries above it are beyond HAW: 21h.
    let ir = Ir::new("vtd,aw=39", true, S_MAX);
    ir.fx
        .w64(regs::IRTA, ((1 << 39) - 0x1000) | regs::IRTA_EIME | S_MAX);
    ir.fx.gcmd(0, 0, regs::GCMD_SIRTP);
    assert_eq!(ir.reason(SID, msi_address(0xff), 0), 0x23);
    assert_eq!(ir.reason(SID, msi_address(0x100), 0), 0x21);
    let recs = ir.drain();
    assert_eq!(
        recs,
        vec![
            (0x23, SID, 0xff << 48, false),
            (0x21, SID, 0x100 << 48, false)
        ]
    );
}

#[test]
fn interrupt_entry_cache_and_its_invalidation() {
    let mut ir = Ir::new("vtd", true, S_MAX);
    ir.set(4, irte(0x40, 0, true, SID));
    ir.set(5, irte(0x50, 0, true, SID));
    assert_eq!(ir.remap(SID, msi_address(4), 0).unwrap().vector, 0x40);
    assert_eq!(ir.remap(SID, msi_address(5), 0).unwrap().vector, 0x50);
    assert_eq!(ir.fx.vtd.stats().iec_entries, 2);
    // Modified in memory: the cached copies stay until invalidated (Linux's modify_irte() flushes).
    ir.set(4, irte(0x41, 0, true, SID));
    ir.set(5, irte(0x51, 0, true, SID));
    assert_eq!(ir.remap(SID, msi_address(4), 0).unwrap().vector, 0x40);
    ir.fx.sync(&mut ir.q, &[iec_index(5, 0)]);
    assert_eq!(ir.remap(SID, msi_address(5), 0).unwrap().vector, 0x51);
    assert_eq!(
        ir.remap(SID, msi_address(4), 0).unwrap().vector,
        0x40,
        "not index 4"
    );
    // IM=1 covers the aligned pair 4..=5.
    ir.set(5, irte(0x52, 0, true, SID));
    ir.fx.sync(&mut ir.q, &[iec_index(5, 1)]);
    assert_eq!(ir.remap(SID, msi_address(4), 0).unwrap().vector, 0x41);
    assert_eq!(ir.remap(SID, msi_address(5), 0).unwrap().vector, 0x52);
    // Not-present entries are never cached: making one present needs no invalidation.
    assert_eq!(ir.reason(SID, msi_address(6), 0), 0x22);
    ir.set(6, irte(0x60, 0, true, SID));
    assert_eq!(ir.remap(SID, msi_address(6), 0).unwrap().vector, 0x60);
    // Clearing P of a cached entry takes effect after the invalidation only.
    ir.set(6, [0, 0]);
    assert_eq!(ir.reason(SID, msi_address(6), 0), 0);
    ir.fx.sync(&mut ir.q, &[iec_index(6, 0)]);
    assert_eq!(ir.reason(SID, msi_address(6), 0), 0x22);
    // No ESIRTPS: SIRTP to a new table keeps cached entries until the global invalidation.
    let other = ir.fx.alloc();
    ir.fx.wr(other + 4 * 16, irte(0x44, 0, true, SID)[0]);
    ir.fx.wr(other + 4 * 16 + 8, irte(0x44, 0, true, SID)[1]);
    ir.fx.w64(regs::IRTA, other | regs::IRTA_EIME | 2);
    ir.fx.gcmd(0, 0, regs::GCMD_SIRTP);
    assert_eq!(ir.remap(SID, msi_address(4), 0).unwrap().vector, 0x41);
    ir.fx.sync(&mut ir.q, &[iec_global()]);
    assert_eq!(ir.remap(SID, msi_address(4), 0).unwrap().vector, 0x44);
    assert_eq!(
        ir.reason(SID, msi_address(5), 0),
        0x22,
        "new table is empty there"
    );
    let st = ir.fx.vtd.stats();
    assert!(st.iec_hits >= 4 && st.iec_misses >= 6, "{st:?}");
    assert_eq!(st.invalidations["iec_global"], 2);
    assert_eq!(st.invalidations["iec_index"], 3);
    // Reserved bits in the descriptor: queue error.
    ir.fx.submit(&mut ir.q, &[[4 | 1 << 5, 0, 0, 0]]);
    assert_eq!(ir.fx.r64(regs::IQERCD) & 0xf, regs::IQEI_RESERVED);
}

#[test]
fn caching_off_sees_every_change_and_legacy_descriptors_work() {
    let mut ir = Ir::new("vtd,sm=off,caching=off", true, S_MAX);
    assert!(!ir.q.wide);
    ir.set(4, irte(0x40, 0, true, SID));
    assert_eq!(ir.remap(SID, msi_address(4), 0).unwrap().vector, 0x40);
    ir.set(4, irte(0x41, 0, true, SID));
    assert_eq!(ir.remap(SID, msi_address(4), 0).unwrap().vector, 0x41);
    let st = ir.fx.vtd.stats();
    assert_eq!((st.iec_entries, st.iec_hits, st.iec_misses), (0, 0, 0));
    // 128-bit IEC descriptors on a legacy unit.
    ir.fx.sync(&mut ir.q, &[iec_index(4, 0), iec_global()]);
    assert_eq!(ir.fx.vtd.stats().qi_errors, 0);
}

#[test]
fn pass_through_while_remapping_is_off() {
    let fx = Fx::new("vtd");
    // Reset state: IRES clear, every interrupt passes unchanged, even a remappable-format one.
    for (addr, data) in [
        (0xfee0_1000, 0x31),
        (msi_address(5), 0),
        (0x200_fee0_3000, 0x4041),
    ] {
        let m = fx.vtd.remap_msi(SID, addr, data).unwrap();
        assert_eq!(m, RemappedMsi::from_compat(addr, data));
    }
    // Destination bits 31:8 in address bits 63:40 (KVM's convention, the inverse of to_msi).
    let m = fx.vtd.remap_msi(SID, 0x200_fee0_3000, 0x4041).unwrap();
    assert_eq!((m.dest_id, m.vector, m.delivery_mode), (0x203, 0x41, 0));
    assert_eq!(m.to_msi(), (0x200_fee0_3000, 0x41));
    assert_eq!(fx.vtd.remap_msi(SID, 0x1000, 0).unwrap_err().reason, 0);
    assert_eq!(fx.vtd.stats().interrupts_passed_through, 4);
    assert_eq!(fx.r32(regs::FSTS), 0);
}

#[test]
fn without_ecap_ir() {
    let fx = Fx::new("vtd,ir=off");
    assert_eq!(fx.r64(regs::ECAP) & (regs::ECAP_IR | regs::ECAP_EIM), 0);
    fx.w64(regs::IRTA, 0x10_0000 | 0xf);
    assert_eq!(fx.r64(regs::IRTA), 0, "reserved");
    fx.gcmd(regs::GCMD_IRE | regs::GCMD_CFI, 0, regs::GCMD_SIRTP);
    assert_eq!(fx.r32(regs::GSTS), 0);
    let m = fx.vtd.remap_msi(SID, msi_address(5), 0).unwrap();
    assert_eq!(m, RemappedMsi::from_compat(msi_address(5), 0));
    let mut q = fx.enable_qi(true);
    fx.submit(&mut q, &[iec_global()]);
    assert_eq!(fx.r64(regs::IQERCD) & 0xf, regs::IQEI_INVALID_TYPE);
}

#[test]
fn fault_events_are_not_remapped() {
    // Remapping on, compatibility format blocked: the unit's own fault event MSI (compatibility format)
    // still reaches the sink, untouched.
    let ir = Ir::new("vtd", true, S_MAX);
    ir.fx.w32(regs::FEDATA, 0x4d);
    ir.fx.w32(regs::FEADDR, 0xfee0_2000);
    assert_eq!(ir.reason(SID, msi_address(1), 0), 0x22);
    assert_eq!(ir.fx.msis(), vec![(0xfee0_2000, 0x4d)]);
    assert_eq!(ir.fx.r32(regs::FSTS), regs::FSTS_PPF);
    // Interrupt and DMA faults share the log and the single pending interrupt.
    let hi = ir.fx.r64(FRO + 8);
    assert_eq!(
        hi,
        regs::FRCD_F | 0x22 << 32 | u64::from(SID),
        "T=0, no PASID"
    );
    assert_eq!(ir.fx.r64(FRO), 1 << 48);
}

#[test]
fn remap_msi_from_many_threads() {
    let ir = Ir::new("vtd", true, S_MAX);
    for i in 0..64 {
        ir.set(i, irte(0x30 + i as u8, i as u32, true, SID));
    }
    let vtd = &ir.fx.vtd;
    std::thread::scope(|s| {
        for t in 0..4u32 {
            s.spawn(move || {
                for n in 0..500u32 {
                    let i = (n * 7 + t) % 64;
                    let m = vtd.remap_msi(SID, msi_address(i), 0).unwrap();
                    assert_eq!((m.vector, m.dest_id), (0x30 + i as u8, i));
                }
            });
        }
    });
    assert_eq!(vtd.stats().interrupts_remapped, 2000);
}

// ---- A deterministic fuzz: random tables, requests and register writes ----

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A mostly plausible IRTE: valid ones, single wrong bits, garbage.
fn random_irte(r: &mut XorShift) -> [u64; 2] {
    let [lo, hi] = irte(
        r.next() as u8,
        r.next() as u32,
        r.below(2) == 0,
        r.next() as u16,
    );
    let hi = (hi & !(0xf << 16)) | r.below(16) << 16;
    match r.below(6) {
        0 => [r.next(), r.next()],
        1 => [lo ^ 1 << r.below(64), hi],
        2 => [lo, hi ^ 1 << r.below(64)],
        3 => [lo & !1, hi],
        _ => [lo | r.below(8) << 5 | r.below(8) << 2, hi],
    }
}

fn fuzz_run(opts: &str, seed: u64, ops: usize) {
    let mut ir = Ir::new(
        opts,
        opts.contains("eim=on") || !opts.contains("eim"),
        S_MAX,
    );
    let mut r = XorShift(seed);
    for i in 0..0x800 {
        ir.set(i, random_irte(&mut r));
    }
    let start = std::time::Instant::now();
    let (mut ok, mut faults) = (0u32, 0u32);
    for _ in 0..ops {
        match r.below(16) {
            0 => {
                let i = r.below(0x800);
                ir.set(i, random_irte(&mut r));
            }
            1 => {
                let v = match r.below(4) {
                    0 => r.next(),
                    _ => ir.table | r.below(2) << 11 | r.below(16),
                };
                ir.fx.w64(regs::IRTA, v);
            }
            2 => {
                let bits = [
                    regs::GCMD_SIRTP,
                    regs::GCMD_IRE,
                    regs::GCMD_CFI,
                    regs::GCMD_QIE,
                    regs::GCMD_TE,
                ];
                let mut v = 0;
                for b in bits {
                    if r.below(3) != 0 {
                        v |= b;
                    }
                }
                ir.fx.w32(regs::GCMD, v | regs::GCMD_QIE);
            }
            3 => {
                let d = match r.below(3) {
                    0 => iec_global(),
                    1 => iec_index(r.next() as u16, r.below(32)),
                    _ => [4 | r.next() << 4, r.next(), 0, 0],
                };
                ir.fx.submit(&mut ir.q, &[d]);
                ir.fx.w32(regs::FSTS, regs::FSTS_IQE);
            }
            4 => {
                ir.drain();
            }
            _ => {
                let index = r.below(0x900) as u32;
                let address = match r.below(8) {
                    0 => r.next(),
                    1 => 0xfee0_0000 | (r.next() & 0xf_ffff),
                    2 => ioapic_address(index),
                    3 => r.next() << 32 | msi_address(index),
                    _ => msi_address(index),
                };
                let data = match r.below(4) {
                    0 => r.next() as u32,
                    _ => r.below(4) as u32,
                };
                let sid = match r.below(4) {
                    0 => r.next() as u16,
                    1 => IOAPIC_SID,
                    _ => SID,
                };
                match ir.fx.vtd.remap_msi(sid, address, data) {
                    Ok(m) => {
                        ok += 1;
                        let (a, d) = m.to_msi();
                        assert_eq!(RemappedMsi::from_compat(a, d), m);
                        assert_eq!(a as u32 & 0xfff0_0000, 0xfee0_0000);
                    }
                    Err(f) => {
                        faults += 1;
                        assert!(f.reason == 0 || (0x20..=0x26).contains(&f.reason), "{f:?}");
                        assert!(f.reason != 0 || !f.recorded);
                    }
                }
            }
        }
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < std::time::Duration::from_secs(60),
        "{opts}: {elapsed:?}"
    );
    assert!(
        ok > 100 && faults > 100,
        "{opts}: {ok} remapped, {faults} faults"
    );
    let st = ir.fx.vtd.stats();
    let ir_reasons = st
        .faults_by_reason
        .keys()
        .filter(|k| k.starts_with("0x2"))
        .count();
    assert!(ir_reasons >= 5, "{opts}: {:?}", st.faults_by_reason);
    assert_eq!(ir.fx.r32(regs::VER), 0x10);
}

#[test]
fn hostile_guest_irte_fuzz() {
    for (i, opts) in ["vtd", "vtd,eim=off", "vtd,sm=off,caching=off,nfr=1"]
        .into_iter()
        .enumerate()
    {
        fuzz_run(opts, 0x2545_f491_4f6c_dd1d ^ (i as u64 + 1), 40_000);
    }
}
