//! Direct Linux boot: bzImage, initrd, command line and zero page.

pub mod bzimage;
pub mod initrd;
pub mod params;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use firmware_tables::description::E820Entry;
use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::layout;

/// Errors loading the guest's kernel, initrd and command line.
#[derive(Debug, Error)]
pub enum BootError {
    #[error("kernel: {0}")]
    Kernel(#[from] bzimage::BzImageError),
    #[error("initrd: {0}")]
    Initrd(#[from] initrd::InitrdError),
    #[error("cannot read the initrd: {0}")]
    InitrdRead(std::io::Error),
    #[error("cannot load the initrd into guest memory: {0}")]
    InitrdLoad(vm_memory::GuestMemoryError),
    #[error("command line: {0}")]
    Params(#[from] params::ParamsError),
    #[error("command line contains a NUL byte")]
    CmdlineNul,
    #[error("cannot write boot data to guest memory: {0}")]
    Memory(#[from] vm_memory::GuestMemoryError),
}

/// Where the boot vCPU starts.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    pub entry: u64,
}

fn low_ram_end(mem: &GuestMemoryMmap) -> u64 {
    mem.iter()
        .find(|r| r.start_addr().0 == 0)
        .map(|r| r.len())
        .unwrap_or(0)
}

/// Loads kernel, initrd and command line and writes the zero page.
pub fn load_linux(
    mem: &GuestMemoryMmap,
    e820: &[E820Entry],
    kernel: &mut File,
    initrd: Option<File>,
    cmdline: &str,
    rsdp_addr: u64,
) -> Result<BootInfo, BootError> {
    let low_end = low_ram_end(mem);
    let kernel = bzimage::load(mem, low_end, kernel)?;

    let initrd = match initrd {
        Some(mut f) => {
            let size = f.seek(SeekFrom::End(0)).map_err(BootError::InitrdRead)?;
            f.seek(SeekFrom::Start(0)).map_err(BootError::InitrdRead)?;
            let kernel_end = kernel.load_addr + kernel.init_size;
            let addr = initrd::place(
                size,
                kernel_end,
                low_end,
                u64::from(kernel.header.initrd_addr_max),
            )?;
            let mut buf = Vec::with_capacity(size as usize);
            f.read_to_end(&mut buf).map_err(BootError::InitrdRead)?;
            mem.write_slice(&buf, GuestAddress(addr))
                .map_err(BootError::InitrdLoad)?;
            Some((addr, buf.len() as u64))
        }
        None => None,
    };

    if cmdline.as_bytes().contains(&0) {
        return Err(BootError::CmdlineNul);
    }
    let params = params::build(&params::BootParamsInput {
        header: kernel.header,
        cmdline_addr: layout::CMDLINE_START,
        cmdline_len: cmdline.len(),
        initrd,
        e820,
        rsdp_addr,
    })?;
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    mem.write_slice(&bytes, GuestAddress(layout::CMDLINE_START))?;
    mem.write_obj(params, GuestAddress(layout::ZERO_PAGE_START))?;
    Ok(BootInfo {
        entry: kernel.entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(name: &str, bytes: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!("iovmm-boot-{}-{name}", std::process::id()));
        File::create(&path).unwrap().write_all(bytes).unwrap();
        File::open(&path).unwrap()
    }

    #[test]
    fn loads_kernel_initrd_cmdline_and_zero_page() {
        let mem = crate::memory::create_guest_memory(128).unwrap();
        let e820 = crate::memory::e820_map(128).unwrap();
        let mut kernel = temp_file("k", &bzimage::tests::fake_bzimage(0x020f, 1, 8192));
        let initrd = temp_file("i", &[0x5a; 5000]);
        let info = load_linux(
            &mem,
            &e820,
            &mut kernel,
            Some(initrd),
            "console=ttyS0",
            0xe_0000,
        )
        .unwrap();
        assert_eq!(info.entry, 0x10_0200);
        let p: linux_loader::bootparam::boot_params =
            mem.read_obj(GuestAddress(layout::ZERO_PAGE_START)).unwrap();
        let (rd, rd_size, cmd) = (p.hdr.ramdisk_image, p.hdr.ramdisk_size, p.hdr.cmd_line_ptr);
        assert_eq!(rd_size, 5000);
        assert!(u64::from(rd) + 5000 <= 128 << 20);
        assert_eq!(
            mem.read_obj::<u8>(GuestAddress(u64::from(rd) + 4999))
                .unwrap(),
            0x5a
        );
        let mut c = [0u8; 14];
        mem.read_slice(&mut c, GuestAddress(u64::from(cmd)))
            .unwrap();
        assert_eq!(&c, b"console=ttyS0\0");
        assert_eq!(usize::from(p.e820_entries), e820.len());
    }

    #[test]
    fn memory_too_small_for_initrd() {
        let mem = crate::memory::create_guest_memory(64).unwrap();
        let e820 = crate::memory::e820_map(64).unwrap();
        let mut kernel = temp_file("k2", &bzimage::tests::fake_bzimage(0x020f, 1, 4096));
        let initrd = temp_file("i2", &vec![0u8; 62 << 20]);
        let err = load_linux(&mem, &e820, &mut kernel, Some(initrd), "", 0).unwrap_err();
        assert!(err.to_string().contains("memory too small"), "{err}");
    }

    #[test]
    fn rejects_nul_in_cmdline() {
        let mem = crate::memory::create_guest_memory(64).unwrap();
        let mut kernel = temp_file("k3", &bzimage::tests::fake_bzimage(0x020f, 1, 4096));
        let err = load_linux(&mem, &[], &mut kernel, None, "a\0b", 0).unwrap_err();
        assert!(matches!(err, BootError::CmdlineNul));
    }
}
