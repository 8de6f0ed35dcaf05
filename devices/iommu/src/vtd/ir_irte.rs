//! Interrupt-remapping formats, decoded without touching memory: interrupt requests (VT-d 4.x section
//! 5.1.2, compatibility and remappable format), the 128-bit Interrupt Remapping Table Entry for remapped
//! interrupts (section 9.9) with its reserved-field checks, and source-id verification (SVT/SQ/SID,
//! section 9.9 and 5.1.4).

/// The interrupt address range's fixed bits 31:20 (0xFEE).
const INTERRUPT_ADDRESS: u32 = 0xfee0_0000;
/// Address bit 4: Interrupt Format (1 = remappable).
const ADDR_REMAPPABLE: u64 = 1 << 4;
/// Address bit 3: SubHandle Valid (remappable format) / Redirection Hint (compatibility format).
const ADDR_SHV: u64 = 1 << 3;
/// Address bit 2: Interrupt Handle bit 15 (remappable format) / Destination Mode (compatibility format).
const ADDR_HANDLE15: u64 = 1 << 2;

/// The interrupt a request or an IRTE describes, ready for delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemappedMsi {
    /// APIC destination id: 8 bits in xAPIC mode, 32 bits in x2APIC mode (EIME).
    pub dest_id: u32,
    pub vector: u8,
    /// Delivery mode (0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT).
    pub delivery_mode: u8,
    pub dest_mode_logical: bool,
    pub trigger_level: bool,
    pub redirection_hint: bool,
}

impl RemappedMsi {
    /// Decodes a compatibility-format request (5.1.2.1; Intel SDM "Message Address/Data Register
    /// Format"): destination id bits 7:0 in address bits 19:12, RH bit 3, DM bit 2; vector, delivery
    /// mode and trigger mode in the data. Address bits 63:40 are taken as destination id bits 31:8,
    /// KVM's x2APIC convention (see [`RemappedMsi::to_msi`]), so that decoding is the inverse of
    /// `to_msi`. The caller checks that the address is an interrupt address.
    pub fn from_compat(address: u64, data: u32) -> Self {
        let low = ((address >> 12) & 0xff) as u32;
        let high = ((address >> 40) & 0xff_ffff) as u32;
        Self {
            dest_id: high << 8 | low,
            vector: data as u8,
            delivery_mode: ((data >> 8) & 7) as u8,
            dest_mode_logical: address & ADDR_HANDLE15 != 0,
            trigger_level: data & (1 << 15) != 0,
            redirection_hint: address & ADDR_SHV != 0,
        }
    }

    /// The compatibility-format message (address, data) that delivers this interrupt, for KVM's
    /// KVM_SIGNAL_MSI / MSI routes.
    ///
    /// Address: 0xFEE0_0000 | destination id bits 7:0 << 12 | RH << 3 | DM << 2, and destination id
    /// bits 31:8 in address bits 63:40 (`address_hi` bits 31:8). That is KVM's extended destination:
    /// with KVM_CAP_X2APIC_API and KVM_X2APIC_API_USE_32BIT_IDS enabled, KVM reads the destination as
    /// `address_lo[19:12] | address_hi[31:8] << 8`; `address_hi` bits 7:0 stay 0 (KVM rejects routes
    /// with them set). For destination ids below 256 the upper half is 0, a plain xAPIC message.
    ///
    /// Data: vector | delivery mode << 8 | trigger mode << 15, with the level (assert) bit 14 set for
    /// level-triggered interrupts.
    pub fn to_msi(&self) -> (u64, u32) {
        let address = u64::from(INTERRUPT_ADDRESS)
            | u64::from(self.dest_id & 0xff) << 12
            | u64::from(self.redirection_hint) << 3
            | u64::from(self.dest_mode_logical) << 2
            | u64::from(self.dest_id >> 8) << 40;
        let level = if self.trigger_level {
            1 << 15 | 1 << 14
        } else {
            0
        };
        let data = u32::from(self.vector) | u32::from(self.delivery_mode & 7) << 8 | level;
        (address, data)
    }
}

/// What an interrupt request asks for (5.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Not an interrupt: address bits 31:20 are not 0xFEE.
    NotInterrupt,
    /// Compatibility format (address bit 4 clear).
    Compat,
    /// Remappable format; `reserved` if a reserved field is set (address bits 63:32, or data bits 31:16
    /// when SHV is set). `index` is handle + subhandle (up to 0x1fffe) even then, for the fault record.
    Remappable { index: u32, reserved: bool },
}

/// Decodes the format of a request (5.1.2.1, 5.1.2.2): the interrupt handle is address bits 19:5 with
/// bit 15 in address bit 2; with SHV the data's low 16 bits are a subhandle added to it. Address bits
/// 1:0 are don't-care. Without SHV the data is ignored (an I/OxAPIC sends its RTE vector and trigger
/// mode there, section 5.1.5.1).
pub(crate) fn decode_request(address: u64, data: u32) -> Request {
    if (address as u32) & 0xfff0_0000 != INTERRUPT_ADDRESS {
        return Request::NotInterrupt;
    }
    if address & ADDR_REMAPPABLE == 0 {
        return Request::Compat;
    }
    let handle = ((address >> 5) & 0x7fff) as u32 | u32::from(address & ADDR_HANDLE15 != 0) << 15;
    let shv = address & ADDR_SHV != 0;
    let index = if shv {
        handle + (data & 0xffff)
    } else {
        handle
    };
    let reserved = address >> 32 != 0 || (shv && data >> 16 != 0);
    Request::Remappable { index, reserved }
}

/// Source-id verification (IRTE SVT/SQ/SID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceCheck {
    /// SVT 00b: none.
    None,
    /// SVT 01b: the requester id must equal SID, ignoring the bits SQ masks (SQ 01b bit 2, 10b bits
    /// 2:1, 11b bits 2:0).
    Sid { sid: u16, ignore: u16 },
    /// SVT 10b: the requester's bus must lie in [SID[15:8], SID[7:0]] (start bus, end bus).
    BusRange { first: u8, last: u8 },
}

impl SourceCheck {
    pub fn allows(self, requester: u16) -> bool {
        match self {
            SourceCheck::None => true,
            SourceCheck::Sid { sid, ignore } => requester & !ignore == sid & !ignore,
            SourceCheck::BusRange { first, last } => {
                (first..=last).contains(&((requester >> 8) as u8))
            }
        }
    }
}

/// A present, well-formed IRTE for a remapped interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Irte {
    pub fpd: bool,
    pub msi: RemappedMsi,
    pub source: SourceCheck,
}

/// Why an IRTE cannot be used. `fpd` is the entry's FPD, which is evaluated irrespective of P (9.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IrteBad {
    NotPresent { fpd: bool },
    Reserved { fpd: bool },
}

/// Low qword: bits 14:12 and 31:24 are reserved; bit 15 (IM) selects the posted format, which this
/// model does not support (CAP.PI=0), so it is reserved too. Bits 11:8 (AVAIL) are ignored.
const LO_RESERVED: u64 = 0x7000 | 0x8000 | 0xff00_0000;
/// In xAPIC mode (EIME=0) the destination id is DST bits 15:8 (IRTE bits 47:40); DST bits 7:0 and
/// 31:16 (IRTE bits 39:32 and 63:48) are reserved.
const LO_RESERVED_XAPIC: u64 = 0x0000_00ff_0000_0000 | 0xffff_0000_0000_0000;
/// High qword: bits 127:84 are reserved.
const HI_RESERVED: u64 = !0xf_ffff;

/// Decodes an IRTE for a remapped interrupt (9.9). `eime` is IRTA.EIME as latched by SIRTP.
///
/// Reserved fields include the conditionally reserved ones: the xAPIC-mode destination bits, IM=1
/// (posted), the reserved delivery modes 011b and 110b, and SVT 11b.
pub(crate) fn decode_irte(lo: u64, hi: u64, eime: bool) -> Result<Irte, IrteBad> {
    let fpd = lo & 2 != 0;
    if lo & 1 == 0 {
        return Err(IrteBad::NotPresent { fpd });
    }
    let delivery_mode = ((lo >> 5) & 7) as u8;
    let svt = (hi >> 18) & 3;
    let mut reserved = lo & LO_RESERVED != 0 || hi & HI_RESERVED != 0;
    reserved |= !eime && lo & LO_RESERVED_XAPIC != 0;
    reserved |= matches!(delivery_mode, 3 | 6) || svt == 3;
    if reserved {
        return Err(IrteBad::Reserved { fpd });
    }
    let dst = (lo >> 32) as u32;
    let sid = hi as u16;
    let source = match svt {
        0 => SourceCheck::None,
        1 => SourceCheck::Sid {
            sid,
            ignore: [0, 0b100, 0b110, 0b111][((hi >> 16) & 3) as usize],
        },
        _ => SourceCheck::BusRange {
            first: (sid >> 8) as u8,
            last: sid as u8,
        },
    };
    Ok(Irte {
        fpd,
        msi: RemappedMsi {
            dest_id: if eime { dst } else { (dst >> 8) & 0xff },
            vector: (lo >> 16) as u8,
            delivery_mode,
            dest_mode_logical: lo & (1 << 2) != 0,
            trigger_level: lo & (1 << 4) != 0,
            redirection_hint: lo & (1 << 3) != 0,
        },
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IRTE the way Linux's prepare_irte() + set_irte_sid() build one.
    fn linux_irte(vector: u8, dest: u32, eime: bool, svt: u64, sq: u64, sid: u16) -> (u64, u64) {
        let dst = if eime { dest } else { dest << 8 };
        let lo = 1 | u64::from(vector) << 16 | u64::from(dst) << 32;
        let hi = u64::from(sid) | sq << 16 | svt << 18;
        (lo, hi)
    }

    #[test]
    fn request_formats() {
        assert_eq!(decode_request(0xfee0_0000, 0x30), Request::Compat);
        assert_eq!(decode_request(0xfed0_0000, 0), Request::NotInterrupt);
        assert_eq!(decode_request(0x1_0000_0000, 0), Request::NotInterrupt);
        // Linux's fill_msi_msg(): SHV always set, subhandle in the data.
        let addr = 0xfee0_0000 | 0x123 << 5 | 1 << 4 | 1 << 3;
        assert_eq!(
            decode_request(addr, 2),
            Request::Remappable {
                index: 0x125,
                reserved: false
            }
        );
        // Handle bit 15 lives in address bit 2; bits 1:0 are don't-care.
        assert_eq!(
            decode_request(0xfee0_0000 | 0x7fff << 5 | 1 << 4 | 1 << 2 | 3, 0),
            Request::Remappable {
                index: 0xffff,
                reserved: false
            }
        );
        // Without SHV the data is ignored (an IOAPIC's vector and trigger mode).
        assert_eq!(
            decode_request(0xfee0_0000 | 7 << 5 | 1 << 4, 0x8000_80ff),
            Request::Remappable {
                index: 7,
                reserved: false
            }
        );
        // Reserved: data bits 31:16 with SHV, address bits 63:32.
        assert!(matches!(
            decode_request(addr, 0x1_0000),
            Request::Remappable { reserved: true, .. }
        ));
        assert!(matches!(
            decode_request(1 << 32 | addr, 0),
            Request::Remappable { reserved: true, .. }
        ));
        // handle + subhandle may exceed 16 bits.
        assert_eq!(
            decode_request(0xfee0_0000 | 0x7fff << 5 | 0x1c, 0xffff),
            Request::Remappable {
                index: 0x1fffe,
                reserved: false
            }
        );
    }

    #[test]
    fn irte_fields_xapic_and_x2apic() {
        let (lo, hi) = linux_irte(0x41, 3, false, 1, 0, 0x18);
        let e = decode_irte(lo | 1 << 4 | 1 << 2 | 1 << 3 | 1 << 5, hi, false).unwrap();
        assert_eq!(
            e.msi,
            RemappedMsi {
                dest_id: 3,
                vector: 0x41,
                delivery_mode: 1,
                dest_mode_logical: true,
                trigger_level: true,
                redirection_hint: true,
            }
        );
        assert_eq!(
            e.source,
            SourceCheck::Sid {
                sid: 0x18,
                ignore: 0
            }
        );
        assert!(!e.fpd);
        // x2APIC: all 32 bits of DST.
        let (lo, hi) = linux_irte(0xec, 0x1234_5678, true, 0, 0, 0);
        let e = decode_irte(lo, hi, true).unwrap();
        assert_eq!((e.msi.dest_id, e.msi.vector), (0x1234_5678, 0xec));
        assert_eq!(e.source, SourceCheck::None);
        // The same entry in xAPIC mode has reserved DST bits set.
        assert_eq!(
            decode_irte(lo, hi, false),
            Err(IrteBad::Reserved { fpd: false })
        );
        // AVAIL bits 11:8 are ignored.
        let (lo, hi) = linux_irte(0x30, 1, false, 0, 0, 0);
        assert!(decode_irte(lo | 0xf00, hi, false).is_ok());
    }

    #[test]
    fn not_present_and_reserved_keep_fpd() {
        assert_eq!(
            decode_irte(0, 0, true),
            Err(IrteBad::NotPresent { fpd: false })
        );
        assert_eq!(
            decode_irte(2, !0, true),
            Err(IrteBad::NotPresent { fpd: true })
        );
        let (lo, hi) = linux_irte(0x30, 1, true, 1, 0, 0x18);
        for (l, h) in [
            (lo | 1 << 12, hi),
            (lo | 1 << 14, hi),
            (lo | 1 << 15, hi), // IM=1: posted
            (lo | 1 << 24, hi),
            (lo | 1 << 31, hi),
            (lo | 3 << 5, hi), // delivery mode 011b
            (lo | 6 << 5, hi), // delivery mode 110b
            (lo, hi | 1 << 20),
            (lo, hi | 1 << 63),
            (lo, hi | 3 << 18), // SVT 11b
        ] {
            assert_eq!(
                decode_irte(l, h, true),
                Err(IrteBad::Reserved { fpd: false }),
                "{l:#x} {h:#x}"
            );
            assert_eq!(
                decode_irte(l | 2, h, true),
                Err(IrteBad::Reserved { fpd: true }),
                "{l:#x} {h:#x}"
            );
        }
        // Valid delivery modes.
        for dm in [0u64, 1, 2, 4, 5, 7] {
            assert_eq!(
                decode_irte(lo | dm << 5, hi, true)
                    .unwrap()
                    .msi
                    .delivery_mode,
                dm as u8
            );
        }
    }

    #[test]
    fn source_verification() {
        let sq = |sq: u64, sid: u16| {
            let (lo, hi) = linux_irte(0x30, 0, true, 1, sq, sid);
            decode_irte(lo, hi, true).unwrap().source
        };
        assert!(sq(0, 0x18).allows(0x18));
        assert!(!sq(0, 0x18).allows(0x1c));
        assert!(!sq(0, 0x18).allows(0x118));
        // SQ 01b ignores bit 2, 10b bits 2:1, 11b bits 2:0.
        assert!(sq(1, 0x18).allows(0x1c) && !sq(1, 0x18).allows(0x1a));
        assert!(sq(2, 0x18).allows(0x1e) && !sq(2, 0x18).allows(0x19));
        assert!(sq(3, 0x18).allows(0x1f) && !sq(3, 0x18).allows(0x20));
        // The IOAPIC's requester id 0xff00 (bus 0xff, 00.0), as Linux's set_ioapic_sid() programs it.
        assert!(sq(0, 0xff00).allows(0xff00) && !sq(0, 0xff00).allows(0x18));
        // SVT 10b: start bus in SID[15:8], end bus in SID[7:0] (Linux's set_irte_verify_bus()).
        let (lo, hi) = linux_irte(0x30, 0, true, 2, 3, 0x0204);
        let bus = decode_irte(lo, hi, true).unwrap().source;
        assert_eq!(bus, SourceCheck::BusRange { first: 2, last: 4 });
        assert!(bus.allows(0x0200) && bus.allows(0x04ff) && bus.allows(0x0318));
        assert!(!bus.allows(0x01ff) && !bus.allows(0x0500));
        // An empty range (start > end) allows nothing.
        let (lo, hi) = linux_irte(0x30, 0, true, 2, 0, 0x0402);
        assert!(!decode_irte(lo, hi, true).unwrap().source.allows(0x0300));
    }

    #[test]
    fn to_msi_and_from_compat_are_inverse() {
        let cases = [
            RemappedMsi {
                dest_id: 3,
                vector: 0x41,
                delivery_mode: 0,
                dest_mode_logical: false,
                trigger_level: false,
                redirection_hint: false,
            },
            RemappedMsi {
                dest_id: 0xff,
                vector: 0xef,
                delivery_mode: 1,
                dest_mode_logical: true,
                trigger_level: true,
                redirection_hint: true,
            },
            RemappedMsi {
                dest_id: 0xdead_beef,
                vector: 0x20,
                delivery_mode: 4,
                dest_mode_logical: false,
                trigger_level: false,
                redirection_hint: false,
            },
        ];
        for m in cases {
            let (address, data) = m.to_msi();
            assert_eq!(address as u32 & 0xfff0_0000, 0xfee0_0000);
            assert_eq!(
                address >> 32 & 0xff,
                0,
                "address_hi bits 7:0 stay 0 for KVM"
            );
            assert_eq!(decode_request(address, data), Request::Compat);
            assert_eq!(RemappedMsi::from_compat(address, data), m);
        }
        assert_eq!(cases[0].to_msi(), (0xfee0_3000, 0x41));
        assert_eq!(cases[1].to_msi(), (0xfeef_f00c, 0xc1ef));
        assert_eq!(cases[2].to_msi(), (0xdead_be00_feee_f000, 0x420));
    }
}
