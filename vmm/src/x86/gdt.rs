//! The boot GDT. The 64-bit boot protocol wants __BOOT_CS = 0x10 (64-bit code) and __BOOT_DS = 0x18
//! (Documentation/arch/x86/boot.rst, "64-bit BOOT PROTOCOL").

use kvm_bindings::kvm_segment;

/// Packs a GDT descriptor from flags (bits 15:12 of the high flags nibble + access byte), base and limit.
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << (56 - 24))
        | ((flags as u64 & 0x0000_f0ff) << 40)
        | ((limit as u64 & 0x000f_0000) << (48 - 16))
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
}

/// The boot GDT: null, null, code64 (0x10), data (0x18), TSS (0x20).
pub const BOOT_GDT: [u64; 5] = [
    0,
    0,
    gdt_entry(0xa09b, 0, 0xfffff), // CODE: present, DPL 0, execute/read, accessed, L=1, G=1
    gdt_entry(0xc093, 0, 0xfffff), // DATA: present, read/write, accessed, D/B=1, G=1
    gdt_entry(0x808b, 0, 0xfffff), // TSS: present, busy 64-bit TSS
];
pub const CODE_INDEX: u16 = 2;
pub const DATA_INDEX: u16 = 3;
pub const TSS_INDEX: u16 = 4;

/// Decodes a GDT descriptor into the segment register form KVM takes.
pub fn segment_from_gdt(entry: u64, table_index: u16) -> kvm_segment {
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let limit_raw = (entry & 0xffff) | ((entry >> 32) & 0xf_0000);
    let g = ((entry >> 55) & 1) as u8;
    // With G set the limit counts 4 KiB units.
    let limit = if g == 1 {
        (limit_raw << 12) | 0xfff
    } else {
        limit_raw
    };
    kvm_segment {
        base,
        limit: limit as u32,
        selector: table_index * 8,
        type_: ((entry >> 40) & 0xf) as u8,
        present: ((entry >> 47) & 1) as u8,
        dpl: ((entry >> 45) & 3) as u8,
        db: ((entry >> 54) & 1) as u8,
        s: ((entry >> 44) & 1) as u8,
        l: ((entry >> 53) & 1) as u8,
        g,
        avl: ((entry >> 52) & 1) as u8,
        unusable: u8::from((entry >> 47) & 1 == 0),
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_segment_is_long_mode() {
        let cs = segment_from_gdt(BOOT_GDT[CODE_INDEX as usize], CODE_INDEX);
        assert_eq!(cs.selector, 0x10);
        assert_eq!((cs.l, cs.db, cs.present, cs.s, cs.type_), (1, 0, 1, 1, 0xb));
        assert_eq!(cs.limit, 0xffff_ffff);
        assert_eq!(cs.unusable, 0);
    }

    #[test]
    fn data_segment_and_known_encodings() {
        let ds = segment_from_gdt(BOOT_GDT[DATA_INDEX as usize], DATA_INDEX);
        assert_eq!(ds.selector, 0x18);
        assert_eq!((ds.l, ds.db, ds.type_), (0, 1, 3));
        // Encodings every x86 VMM uses for these flat segments.
        assert_eq!(BOOT_GDT[2], 0x00af_9b00_0000_ffff);
        assert_eq!(BOOT_GDT[3], 0x00cf_9300_0000_ffff);
    }

    #[test]
    fn base_and_limit_round_trip() {
        let e = gdt_entry(0x0093, 0x1234_5678, 0xabcde);
        let s = segment_from_gdt(e, 1);
        assert_eq!(s.base, 0x1234_5678);
        assert_eq!(s.limit, 0xabcde);
        assert_eq!(s.g, 0);
        assert_eq!(segment_from_gdt(0, 0).unusable, 1);
    }
}
