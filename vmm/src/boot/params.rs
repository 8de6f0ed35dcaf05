//! The zero page (`struct boot_params`) handed to the kernel in %rsi: setup header, command line, initrd, e820
//! and the RSDP address (Documentation/arch/x86/zero-page.rst, boot.rst).

use firmware_tables::description::E820Entry;
use linux_loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use thiserror::Error;

/// `type_of_loader` 0xff: "undefined" boot loader (boot.rst: assigned ids only for real boot loaders).
const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// loadflags bit 7: `heap_end_ptr` is valid.
const CAN_USE_HEAP: u8 = 1 << 7;
/// boot.rst: "heap_end_ptr ... Set this field to the offset (from the beginning of the real-mode code) of the end
/// of the setup stack/heap, minus 0x0200".
const HEAP_END_PTR: u16 = 0xfe00;
/// Boot protocol 2.14 introduced `acpi_rsdp_addr`.
const PROTOCOL_ACPI_RSDP: u16 = 0x020e;
/// Size of `boot_params.e820_table`.
pub const E820_MAX_ENTRIES: usize = 128;

/// Errors building boot_params.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParamsError {
    #[error("too many e820 entries ({0}, at most {E820_MAX_ENTRIES})")]
    TooManyE820(usize),
    #[error("command line is {len} bytes; this kernel accepts at most {max}")]
    CmdlineTooLong { len: usize, max: usize },
}

/// Inputs to the zero page.
pub struct BootParamsInput<'a> {
    pub header: setup_header,
    pub cmdline_addr: u64,
    /// Command line length without the terminating NUL.
    pub cmdline_len: usize,
    pub initrd: Option<(u64, u64)>,
    pub e820: &'a [E820Entry],
    pub rsdp_addr: u64,
}

/// Builds the zero page.
pub fn build(input: &BootParamsInput) -> Result<boot_params, ParamsError> {
    let mut params = boot_params {
        hdr: input.header,
        ..Default::default()
    };
    let hdr = &mut params.hdr;
    let version = hdr.version;
    // cmdline_size exists from 2.06; our minimum protocol is 2.12.
    let max = hdr.cmdline_size as usize;
    if input.cmdline_len > max {
        return Err(ParamsError::CmdlineTooLong {
            len: input.cmdline_len,
            max,
        });
    }
    hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    hdr.loadflags |= CAN_USE_HEAP;
    hdr.heap_end_ptr = HEAP_END_PTR;
    hdr.cmd_line_ptr = input.cmdline_addr as u32;
    params.ext_cmd_line_ptr = (input.cmdline_addr >> 32) as u32;
    if let Some((addr, size)) = input.initrd {
        params.hdr.ramdisk_image = addr as u32;
        params.hdr.ramdisk_size = size as u32;
        params.ext_ramdisk_image = (addr >> 32) as u32;
        params.ext_ramdisk_size = (size >> 32) as u32;
    }
    if input.e820.len() > E820_MAX_ENTRIES {
        return Err(ParamsError::TooManyE820(input.e820.len()));
    }
    for (slot, e) in params.e820_table.iter_mut().zip(input.e820) {
        *slot = boot_e820_entry {
            addr: e.start,
            size: e.end - e.start + 1,
            r#type: e.kind.e820_type(),
        };
    }
    params.e820_entries = input.e820.len() as u8;
    if version >= PROTOCOL_ACPI_RSDP {
        params.acpi_rsdp_addr = input.rsdp_addr;
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_tables::description::E820Kind;

    fn header(version: u16) -> setup_header {
        setup_header {
            version,
            cmdline_size: 2047,
            loadflags: 1,
            ..Default::default()
        }
    }

    fn e820() -> Vec<E820Entry> {
        vec![
            E820Entry {
                start: 0,
                end: 0x9_fbff,
                kind: E820Kind::Ram,
            },
            E820Entry {
                start: 0x10_0000,
                end: 0x1fff_ffff,
                kind: E820Kind::Ram,
            },
        ]
    }

    #[test]
    fn fills_header_and_tables() {
        let map = e820();
        let p = build(&BootParamsInput {
            header: header(0x020f),
            cmdline_addr: 0x2_0000,
            cmdline_len: 10,
            initrd: Some((0x1f00_0000, 0x12_3456)),
            e820: &map,
            rsdp_addr: 0xe_0000,
        })
        .unwrap();
        let (loader, loadflags, cmd, rd, rd_size, heap) = (
            p.hdr.type_of_loader,
            p.hdr.loadflags,
            p.hdr.cmd_line_ptr,
            p.hdr.ramdisk_image,
            p.hdr.ramdisk_size,
            p.hdr.heap_end_ptr,
        );
        assert_eq!(loader, 0xff);
        assert_eq!(loadflags, 1 | CAN_USE_HEAP);
        assert_eq!(heap, 0xfe00);
        assert_eq!(cmd, 0x2_0000);
        assert_eq!((rd, rd_size), (0x1f00_0000, 0x12_3456));
        assert_eq!(p.e820_entries, 2);
        let (a, s, t) = (
            p.e820_table[1].addr,
            p.e820_table[1].size,
            p.e820_table[1].r#type,
        );
        assert_eq!((a, s, t), (0x10_0000, 0x1ff0_0000, 1));
        let rsdp = p.acpi_rsdp_addr;
        assert_eq!(rsdp, 0xe_0000);
    }

    #[test]
    fn rsdp_only_for_protocol_2_14() {
        let map = e820();
        let p = build(&BootParamsInput {
            header: header(0x020c),
            cmdline_addr: 0x2_0000,
            cmdline_len: 0,
            initrd: None,
            e820: &map,
            rsdp_addr: 0xe_0000,
        })
        .unwrap();
        let rsdp = p.acpi_rsdp_addr;
        assert_eq!(rsdp, 0);
        let rd = p.hdr.ramdisk_image;
        assert_eq!(rd, 0);
    }

    #[test]
    fn rejects_long_cmdline_and_huge_e820() {
        let map = e820();
        let mut input = BootParamsInput {
            header: header(0x020f),
            cmdline_addr: 0x2_0000,
            cmdline_len: 2048,
            initrd: None,
            e820: &map,
            rsdp_addr: 0,
        };
        assert_eq!(
            build(&input).unwrap_err(),
            ParamsError::CmdlineTooLong {
                len: 2048,
                max: 2047
            }
        );
        input.cmdline_len = 1;
        let big = vec![map[0].clone(); 129];
        input.e820 = &big;
        assert_eq!(build(&input).unwrap_err(), ParamsError::TooManyE820(129));
    }
}
