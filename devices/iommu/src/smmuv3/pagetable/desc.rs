//! VMSAv8-64 descriptor fields (Arm ARM D8.3 "Translation table descriptor formats", D8.4 "Memory
//! access control"; the same layouts Linux's io-pgtable-arm.c writes) and the permission rules of
//! each stage.

use super::Granule;
use crate::request::{Access, Perms};

pub(super) const VALID: u64 = 1 << 0;
/// Table (levels 0..2) or page (level 3); clear at levels 0..2 means block.
pub(super) const TABLE_OR_PAGE: u64 = 1 << 1;
/// Stage 1 AP[1]: unprivileged (EL0) access allowed. Stage 2: S2AP[0], read allowed.
pub(super) const AP1: u64 = 1 << 6;
/// Stage 1 AP[2]: read-only. Stage 2: S2AP[1], write allowed.
pub(super) const AP2: u64 = 1 << 7;
/// Access flag.
pub(super) const AF: u64 = 1 << 10;
/// Dirty Bit Modifier (FEAT_HAFDBS).
pub(super) const DBM: u64 = 1 << 51;
/// Stage 1 PXN; stage 2 XN[0] (FEAT_XNX).
pub(super) const PXN: u64 = 1 << 53;
/// Stage 1 UXN; stage 2 XN[1].
pub(super) const UXN: u64 = 1 << 54;
/// Stage-1 table descriptor: PXNTable, UXNTable, APTable[0] (no EL0 access below), APTable[1] (no
/// write below).
pub(super) const PXN_TABLE: u64 = 1 << 59;
pub(super) const UXN_TABLE: u64 = 1 << 60;
pub(super) const AP_TABLE_NO_EL0: u64 = 1 << 61;
pub(super) const AP_TABLE_RO: u64 = 1 << 62;
/// Upper (63:50) and lower (11:2) attribute bits of a block/page descriptor.
pub(super) const ATTR_MASK: u64 = 0xfffc_0000_0000_0ffc;

/// The output address field of a descriptor mapping (or pointing at a table of) 2^`shift` bytes:
/// bits [47:shift]; with the 64K granule also bits [15:12] as OA[51:48] (FEAT_LPA, Arm ARM D8.3.1).
/// Without LPA2, a 4K/16K descriptor holds 48 address bits; its bits [51:48] are RES0 and ignored
/// ("output bits above the address are treated as zero", IHI0070 §5.4 CD.IPS, §5.2 STE.S2PS).
pub(super) fn output_address(desc: u64, granule: Granule, shift: u32) -> u64 {
    let field = (1u64 << 48) - 1;
    let low = u64::MAX.checked_shl(shift).unwrap_or(0);
    let mut oa = desc & field & low;
    if granule == Granule::G64K {
        oa |= ((desc >> 12) & 0xf) << 48;
    }
    oa
}

/// Restrictions stage-1 table descriptors impose on every level below them (Arm ARM D8.4.2
/// "Hierarchical permissions"). Stage-2 table descriptors have none (bits 63:59 are RES0 there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Hierarchical {
    pub no_el0: bool,
    pub read_only: bool,
    pub pxn: bool,
    pub uxn: bool,
}

impl Hierarchical {
    pub fn add(&mut self, table_desc: u64) {
        self.no_el0 |= table_desc & AP_TABLE_NO_EL0 != 0;
        self.read_only |= table_desc & AP_TABLE_RO != 0;
        self.pxn |= table_desc & PXN_TABLE != 0;
        self.uxn |= table_desc & UXN_TABLE != 0;
    }
}

/// What a leaf allows, and whether a write would be allowed after a dirty-state update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LeafPerms {
    pub perms: Perms,
    /// DBM page in writable-clean state whose only write restriction is AP[2] / S2AP[1]: a write
    /// with HTTU dirty update enabled makes it writable instead of faulting.
    pub writable_clean: bool,
}

/// Stage-1 permissions of `leaf` (Arm ARM D8.4.1 AP[2:1]; D8.4.2 APTable/XNTable; D8.4.6 DBM).
/// AP[1] = 0: no unprivileged access; AP[2] = 1: read-only. A privileged access may not execute
/// from an EL0-writable page.
pub(super) fn stage1(leaf: u64, privileged: bool, h: Hierarchical) -> LeafPerms {
    let el0 = leaf & AP1 != 0 && !h.no_el0;
    let ap_ro = leaf & AP2 != 0;
    let read = privileged || el0;
    let write = read && !ap_ro && !h.read_only;
    let exec = read
        && if privileged {
            let el0_writable = leaf & AP1 != 0 && !ap_ro;
            leaf & PXN == 0 && !h.pxn && !el0_writable
        } else {
            leaf & UXN == 0 && !h.uxn
        };
    LeafPerms {
        perms: Perms { read, write, exec },
        writable_clean: !write && read && ap_ro && !h.read_only && leaf & DBM != 0,
    }
}

/// Stage-2 permissions of `leaf`: S2AP (bit 6 read, bit 7 write) and XN[1:0] (bits 54:53, FEAT_XNX:
/// 00 executable, 01 not at EL1, 10 never, 11 not at EL0).
pub(super) fn stage2(leaf: u64, privileged: bool) -> LeafPerms {
    let read = leaf & AP1 != 0;
    let write = leaf & AP2 != 0;
    let exec = match (leaf & UXN != 0, leaf & PXN != 0) {
        (false, false) => true,
        (false, true) => !privileged,
        (true, false) => false,
        (true, true) => privileged,
    };
    LeafPerms {
        perms: Perms { read, write, exec },
        writable_clean: !write && leaf & DBM != 0,
    }
}

/// Whether `perms` allow `access`, counting a writable-clean page as writable when `dirty` (HTTU
/// dirty-state update) is enabled; and whether that needs the update.
pub(super) fn allows(p: LeafPerms, access: Access, dirty: bool) -> (bool, bool) {
    match access {
        Access::Read => (p.perms.read, false),
        Access::Write if p.perms.write => (true, false),
        Access::Write => (dirty && p.writable_clean, dirty && p.writable_clean),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_address_fields() {
        let d = 0xffff_ffff_ffff_ffffu64;
        assert_eq!(output_address(d, Granule::G4K, 12), 0x0000_ffff_ffff_f000);
        assert_eq!(output_address(d, Granule::G4K, 30), 0x0000_ffff_c000_0000);
        assert_eq!(output_address(d, Granule::G16K, 14), 0x0000_ffff_ffff_c000);
        assert_eq!(output_address(d, Granule::G64K, 16), 0x000f_ffff_ffff_0000);
        // 64K: bits 15:12 are OA[51:48].
        assert_eq!(
            output_address(0x5000 | 0x1234_5678_0000, Granule::G64K, 16),
            0x0005_1234_5678_0000
        );
        // 4K/16K: bits 51:48 are not address bits.
        assert_eq!(output_address(0xf << 48, Granule::G4K, 12), 0);
        assert_eq!(output_address(d, Granule::G4K, 64), 0);
    }

    #[test]
    fn stage1_ap_matrix() {
        let none = Hierarchical::default();
        // AP[2:1]: 00 priv RW, 01 RW both, 10 priv RO, 11 RO both.
        for (ap, priv_rw, unpriv_rw) in [
            (0b00, (true, true), (false, false)),
            (0b01, (true, true), (true, true)),
            (0b10, (true, false), (false, false)),
            (0b11, (true, false), (true, false)),
        ] {
            let leaf = ap << 6;
            let p = stage1(leaf, true, none).perms;
            assert_eq!((p.read, p.write), priv_rw, "AP {ap:#b} privileged");
            let u = stage1(leaf, false, none).perms;
            assert_eq!((u.read, u.write), unpriv_rw, "AP {ap:#b} unprivileged");
        }
        // Privileged execute never from EL0-writable pages; PXN/UXN.
        assert!(!stage1(0b01 << 6, true, none).perms.exec);
        assert!(stage1(0b11 << 6, true, none).perms.exec);
        assert!(!stage1(0b11 << 6 | PXN, true, none).perms.exec);
        assert!(stage1(0b11 << 6 | PXN, false, none).perms.exec);
        assert!(!stage1(0b11 << 6 | UXN, false, none).perms.exec);
    }

    #[test]
    fn stage1_hierarchical_and_dbm() {
        let mut h = Hierarchical::default();
        h.add(AP_TABLE_RO);
        let p = stage1(0b01 << 6 | DBM, false, h);
        assert_eq!(
            (p.perms.read, p.perms.write, p.writable_clean),
            (true, false, false)
        );
        let mut h = Hierarchical::default();
        h.add(AP_TABLE_NO_EL0 | UXN_TABLE);
        assert!(!stage1(0b01 << 6, false, h).perms.read);
        assert!(stage1(0b01 << 6, true, h).perms.write);
        // Writable-clean: AP[2] set with DBM, but only where the access is otherwise allowed.
        let none = Hierarchical::default();
        assert!(stage1(0b11 << 6 | DBM, false, none).writable_clean);
        assert!(!stage1(0b10 << 6 | DBM, false, none).writable_clean);
        assert!(stage1(0b10 << 6 | DBM, true, none).writable_clean);
        let clean = stage1(0b10 << 6 | DBM, true, none);
        assert_eq!(allows(clean, Access::Write, true), (true, true));
        assert_eq!(allows(clean, Access::Write, false), (false, false));
        assert_eq!(allows(clean, Access::Read, true), (true, false));
    }

    #[test]
    fn stage2_s2ap_and_xn() {
        for s2ap in 0..4u64 {
            let p = stage2(s2ap << 6, false).perms;
            assert_eq!((p.read, p.write), (s2ap & 1 != 0, s2ap & 2 != 0));
        }
        let x = |xn: u64, privileged| stage2(0xc0 | xn << 53, privileged).perms.exec;
        assert_eq!([x(0, true), x(0, false)], [true, true]);
        assert_eq!([x(1, true), x(1, false)], [false, true]);
        assert_eq!([x(2, true), x(2, false)], [false, false]);
        assert_eq!([x(3, true), x(3, false)], [true, false]);
        assert!(stage2(0x40 | DBM, false).writable_clean);
        assert!(!stage2(0xc0 | DBM, false).writable_clean);
    }
}
