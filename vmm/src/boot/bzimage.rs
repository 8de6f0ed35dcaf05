//! Loading a bzImage with linux-loader, after checking it speaks the 64-bit boot protocol
//! (Documentation/arch/x86/boot.rst, "64-bit BOOT PROTOCOL").

use std::io::{Read, Seek, SeekFrom};

use linux_loader::bootparam::setup_header;
use linux_loader::loader::{bzimage::BzImage, KernelLoader};
use thiserror::Error;
use vm_memory::{ByteValued, GuestAddress, GuestMemoryMmap};

use crate::layout;

/// `HdrS` at offset 0x202.
const HDRS_MAGIC: u32 = 0x5372_6448;
/// Offset of the setup header in the image (and in boot_params).
pub const SETUP_HEADER_OFFSET: u64 = 0x1f1;
/// Boot protocol 2.12 introduced `xloadflags` and XLF_KERNEL_64.
pub const MIN_BOOT_PROTOCOL: u16 = 0x020c;
/// xloadflags bit 0: the kernel has the legacy 64-bit entry point at 0x200.
const XLF_KERNEL_64: u16 = 1 << 0;
/// loadflags bit 0: protected-mode code loaded at 0x100000 (a bzImage).
const LOADED_HIGH: u8 = 1 << 0;
/// Offset of the 64-bit entry point from the start of the protected-mode kernel.
pub const ENTRY_64_OFFSET: u64 = 0x200;

/// Errors loading a kernel image.
#[derive(Debug, Error)]
pub enum BzImageError {
    #[error("cannot read the kernel image: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a bzImage: no 'HdrS' boot header (is it a vmlinux ELF or a corrupt file?)")]
    NotBzImage,
    #[error("bzImage boot protocol {major}.{minor:02} is too old: iovmm needs 2.12 or later (64-bit entry)", major = .0 >> 8, minor = .0 & 0xff)]
    OldProtocol(u16),
    #[error("bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)")]
    No64BitEntry,
    #[error("kernel does not fit in guest memory: it needs {needed:#x} bytes from {start:#x}")]
    TooBig { start: u64, needed: u64 },
    #[error("linux-loader: {0}")]
    Loader(#[from] linux_loader::loader::Error),
}

/// What the rest of boot needs to know about the loaded kernel.
#[derive(Clone, Copy, Debug)]
pub struct LoadedKernel {
    /// The image's setup header (copied into boot_params).
    pub header: setup_header,
    /// Where the protected-mode kernel starts.
    pub load_addr: u64,
    /// 64-bit entry point.
    pub entry: u64,
    /// Memory the kernel needs from `load_addr` while it decompresses and boots (setup_header.init_size).
    pub init_size: u64,
}

/// Reads and checks the setup header without loading anything.
pub fn read_header<F: Read + Seek>(image: &mut F) -> Result<setup_header, BzImageError> {
    let mut header = setup_header::default();
    image.seek(SeekFrom::Start(SETUP_HEADER_OFFSET))?;
    image.read_exact(header.as_mut_slice()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            BzImageError::NotBzImage
        } else {
            BzImageError::Io(e)
        }
    })?;
    let (magic, version, loadflags, xloadflags) = (
        header.header,
        header.version,
        header.loadflags,
        header.xloadflags,
    );
    if magic != HDRS_MAGIC || loadflags & LOADED_HIGH == 0 {
        return Err(BzImageError::NotBzImage);
    }
    if version < MIN_BOOT_PROTOCOL {
        return Err(BzImageError::OldProtocol(version));
    }
    if xloadflags & XLF_KERNEL_64 == 0 {
        return Err(BzImageError::No64BitEntry);
    }
    Ok(header)
}

/// Checks `image` and loads its protected-mode kernel at [`layout::KERNEL_START`].
pub fn load<F: Read + Seek + vm_memory::ReadVolatile>(
    mem: &GuestMemoryMmap,
    low_ram_end: u64,
    image: &mut F,
) -> Result<LoadedKernel, BzImageError> {
    let header = read_header(image)?;
    let init_size = u64::from(header.init_size);
    let start = layout::KERNEL_START;
    if start.saturating_add(init_size) > low_ram_end {
        return Err(BzImageError::TooBig {
            start,
            needed: init_size,
        });
    }
    let result = BzImage::load(
        mem,
        Some(GuestAddress(start)),
        image,
        Some(GuestAddress(layout::HIMEM_START)),
    )?;
    // linux-loader returns the header with code32_start pointing at the load address.
    let header = result.setup_header.unwrap_or(header);
    let load_addr = result.kernel_load.0;
    Ok(LoadedKernel {
        header,
        load_addr,
        entry: load_addr + ENTRY_64_OFFSET,
        init_size,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// A synthetic bzImage: a setup area of `setup_sects` sectors with a valid header, then `payload` bytes.
    pub(crate) fn fake_bzimage(version: u16, xloadflags: u16, payload: usize) -> Vec<u8> {
        let setup_sects = 4u8;
        let mut img = vec![0u8; (usize::from(setup_sects) + 1) * 512 + payload];
        let mut h = setup_header {
            setup_sects,
            header: HDRS_MAGIC,
            version,
            loadflags: LOADED_HIGH,
            xloadflags,
            code32_start: 0x10_0000,
            init_size: 0x40_0000,
            initrd_addr_max: 0x7fff_ffff,
            cmdline_size: 2047,
            ..Default::default()
        };
        h.boot_flag = 0xaa55;
        let off = SETUP_HEADER_OFFSET as usize;
        img[off..off + std::mem::size_of::<setup_header>()].copy_from_slice(h.as_slice());
        img
    }

    #[test]
    fn accepts_a_64bit_protocol_image() {
        let h = read_header(&mut Cursor::new(fake_bzimage(0x020f, 1, 4096))).unwrap();
        let version = h.version;
        assert_eq!(version, 0x020f);
    }

    #[test]
    fn rejects_old_protocol() {
        let err = read_header(&mut Cursor::new(fake_bzimage(0x0206, 0, 4096))).unwrap_err();
        assert!(matches!(err, BzImageError::OldProtocol(0x0206)));
        assert!(err.to_string().contains("2.06"), "{err}");
    }

    #[test]
    fn rejects_missing_64bit_entry() {
        let err = read_header(&mut Cursor::new(fake_bzimage(0x020f, 0, 4096))).unwrap_err();
        assert!(matches!(err, BzImageError::No64BitEntry));
    }

    #[test]
    fn rejects_garbage_and_truncated_files() {
        assert!(matches!(
            read_header(&mut Cursor::new(vec![0x7fu8; 8192])),
            Err(BzImageError::NotBzImage)
        ));
        assert!(matches!(
            read_header(&mut Cursor::new(vec![0u8; 100])),
            Err(BzImageError::NotBzImage)
        ));
        assert!(matches!(
            read_header(&mut Cursor::new(Vec::new())),
            Err(BzImageError::NotBzImage)
        ));
    }

    #[test]
    fn loads_payload_at_one_mib() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let mut img = fake_bzimage(0x020f, 1, 8192);
        let payload_start = 5 * 512;
        img[payload_start] = 0xab;
        let k = load(&mem, 64 << 20, &mut Cursor::new(img)).unwrap();
        assert_eq!(k.load_addr, 0x10_0000);
        assert_eq!(k.entry, 0x10_0200);
        assert_eq!(k.init_size, 0x40_0000);
        use vm_memory::Bytes;
        assert_eq!(mem.read_obj::<u8>(GuestAddress(0x10_0000)).unwrap(), 0xab);
    }

    #[test]
    fn refuses_kernel_larger_than_memory() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 2 << 20)]).unwrap();
        let err = load(
            &mem,
            2 << 20,
            &mut Cursor::new(fake_bzimage(0x020f, 1, 4096)),
        )
        .unwrap_err();
        assert!(matches!(err, BzImageError::TooBig { .. }), "{err}");
    }
}
