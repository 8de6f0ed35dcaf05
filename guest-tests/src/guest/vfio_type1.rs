//! `vfio-type1`: the legacy VFIO API (group + container with the type1 v2 IOMMU backend) in front of the VT-d
//! model, the path every kernel without iommufd offers (Debian builds its kernels without IOMMUFD). The test
//! device bound to vfio-pci; VFIO_IOMMU_GET_INFO's IOVA ranges equal the ranges the VMM published for the stage
//! of the domain the kernel attached (asked of the hardware); a mapping past the aperture or in the MSI window is
//! refused; DMA through a read-only source and a writable destination copies every byte; a write into the
//! read-only mapping and a copy into an unmapped IOVA fault on the device, memory untouched. Attaching the group
//! needs interrupt remapping (or `allow_unsafe_interrupts`, never given): the attach itself proves MSI isolation.

use std::fs::File;

use firmware_tables::description::{IommuInfo, IovaRange};
use pci::test_device::regs::{FAULT_ACCESS_WRITE, ID_MAGIC, REG_ID};
use vfio_bindings::bindings::vfio::{
    vfio_info_cap_header, vfio_iommu_type1_dma_map, vfio_iommu_type1_dma_unmap,
    vfio_iommu_type1_info, VFIO_BASE, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE,
    VFIO_IOMMU_INFO_CAPS, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_TYPE,
};
use vmm_sys_util::ioctl::{ioctl_with_mut_ptr, ioctl_with_mut_ref, ioctl_with_ref};
use vmm_sys_util::ioctl_io_nr;

use super::context::Context;
use super::dma_engine::{compare, pattern_bytes, DmaEngine};
use super::dmabuf::{DmaBuffer, PAGE};
use super::report::Report;
use super::vfio::{self, VfioDevice};
use super::vfio_cdev::MappedRegion;
use super::vtd::iova::{self, show};
use super::vtd::session::{domain_stage, expected, full_bdf, NODE_TIMEOUT};

ioctl_io_nr!(VFIO_IOMMU_GET_INFO, VFIO_TYPE as u32, VFIO_BASE + 12);
ioctl_io_nr!(VFIO_IOMMU_MAP_DMA, VFIO_TYPE as u32, VFIO_BASE + 13);
ioctl_io_nr!(VFIO_IOMMU_UNMAP_DMA, VFIO_TYPE as u32, VFIO_BASE + 14);

/// IOVAs the test uses (inside every published aperture, below the MSI window).
pub const SRC_IOVA: u64 = 0x2000_0000;
pub const DST_IOVA: u64 = 0x3000_0000;
/// Nothing maps it: the stage probe's address.
pub const UNMAPPED_IOVA: u64 = 0x4000_0000;
/// Bytes per buffer: four pages, so the copy crosses IOMMU pages.
pub const LEN: u64 = 4 * PAGE;
/// Start of the x86 MSI window.
pub const MSI_WINDOW: u64 = 0xfee0_0000;

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// The IOVA ranges in a VFIO_IOMMU_GET_INFO reply `buf` (the `vfio_iommu_type1_info` header and its capability
/// chain), from the IOVA_RANGE capability. Every offset is checked against the buffer.
pub fn parse_iova_ranges(buf: &[u8]) -> Result<Vec<IovaRange>, String> {
    let u32_at = |o: usize| -> Option<u32> {
        buf.get(o..o + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| -> Option<u64> {
        buf.get(o..o + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_ne_bytes(a)
        })
    };
    let flags = u32_at(4).ok_or("GET_INFO reply shorter than its header")?;
    if flags & VFIO_IOMMU_INFO_CAPS == 0 {
        return Err(
            "VFIO_IOMMU_GET_INFO reports no capabilities (no IOVA range capability)".into(),
        );
    }
    let header = std::mem::size_of::<vfio_info_cap_header>();
    let mut off = u32_at(16).ok_or("GET_INFO reply has no cap_offset")? as usize;
    // The chain is finite: each hop must move forward inside the buffer.
    while off != 0 {
        if off + header > buf.len() {
            return Err(format!(
                "capability at {off:#x} outside the {}-byte reply",
                buf.len()
            ));
        }
        let id = u16::from_ne_bytes([buf[off], buf[off + 1]]);
        let next = u32_at(off + 4).unwrap_or(0) as usize;
        if u32::from(id) == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE {
            let n = u32_at(off + header).ok_or("IOVA range capability truncated")? as usize;
            let first = off + header + 8;
            return (0..n)
                .map(|i| {
                    let o = first + i * 16;
                    match (u64_at(o), u64_at(o + 8)) {
                        (Some(first), Some(last)) => Ok(IovaRange { first, last }),
                        _ => Err(format!("IOVA range {i} of {n} outside the reply")),
                    }
                })
                .collect();
        }
        if next != 0 && next <= off {
            return Err(format!("capability chain loops at {off:#x} -> {next:#x}"));
        }
        off = next;
    }
    Err("no VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE capability".into())
}

/// VFIO_IOMMU_GET_INFO with its capability chain: the IOVA ranges.
fn iova_ranges(container: &File) -> Result<Vec<IovaRange>, String> {
    let head = std::mem::size_of::<vfio_iommu_type1_info>();
    let mut info = vfio_iommu_type1_info {
        argsz: head as u32,
        ..Default::default()
    };
    // SAFETY: `info` is a properly sized vfio_iommu_type1_info the kernel fills in (argsz says how much).
    if unsafe { ioctl_with_mut_ref(container, VFIO_IOMMU_GET_INFO(), &mut info) } < 0 {
        return Err(os_err("VFIO_IOMMU_GET_INFO"));
    }
    let need = (info.argsz as usize).clamp(head, 1 << 16);
    // u64 words keep the buffer 8-byte aligned for the kernel's structures.
    let mut words = vec![0u64; need.div_ceil(8)];
    let bytes = words.len() * 8;
    words[0] = u64::from(bytes as u32);
    // SAFETY: the buffer is `bytes` long, at least the header, and argsz (its first u32, little-endian in the
    // low half of word 0) says so; the kernel writes at most argsz bytes.
    if unsafe { ioctl_with_mut_ptr(container, VFIO_IOMMU_GET_INFO(), words.as_mut_ptr()) } < 0 {
        return Err(os_err("VFIO_IOMMU_GET_INFO (with capabilities)"));
    }
    let buf: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    parse_iova_ranges(&buf)
}

fn map(container: &File, buf: &DmaBuffer, iova: u64, write: bool) -> Result<(), String> {
    let flags = VFIO_DMA_MAP_FLAG_READ | if write { VFIO_DMA_MAP_FLAG_WRITE } else { 0 };
    let m = vfio_iommu_type1_dma_map {
        argsz: std::mem::size_of::<vfio_iommu_type1_dma_map>() as u32,
        flags,
        vaddr: buf.va(),
        iova,
        size: buf.len() as u64,
    };
    // SAFETY: `m` is a complete vfio_iommu_type1_dma_map; the kernel pins [vaddr, vaddr + size), which `buf`
    // owns and keeps alive until after the unmap (or the container closes).
    if unsafe { ioctl_with_ref(container, VFIO_IOMMU_MAP_DMA(), &m) } < 0 {
        return Err(os_err(&format!(
            "VFIO_IOMMU_MAP_DMA(iova {iova:#x}, {:#x} bytes)",
            buf.len()
        )));
    }
    Ok(())
}

fn unmap(container: &File, iova: u64, len: u64) -> Result<(), String> {
    let mut u = vfio_iommu_type1_dma_unmap {
        argsz: std::mem::size_of::<vfio_iommu_type1_dma_unmap>() as u32,
        iova,
        size: len,
        ..Default::default()
    };
    // SAFETY: `u` is a complete vfio_iommu_type1_dma_unmap (no flags, so no data array); the kernel writes the
    // unmapped size back into it.
    if unsafe { ioctl_with_mut_ref(container, VFIO_IOMMU_UNMAP_DMA(), &mut u) } < 0 {
        return Err(os_err(&format!("VFIO_IOMMU_UNMAP_DMA(iova {iova:#x})")));
    }
    if u.size != len {
        return Err(format!(
            "VFIO_IOMMU_UNMAP_DMA at {iova:#x} unmapped {:#x} bytes, expected {len:#x}",
            u.size
        ));
    }
    Ok(())
}

fn dma(info: &IommuInfo, dev: &VfioDevice, container: &File, r: &mut Report) -> Result<(), String> {
    let region = dev.region(VFIO_PCI_BAR0_REGION_INDEX)?;
    let bar = MappedRegion::map(dev, &region)?;
    let id = bar.read32(REG_ID)?;
    if id != ID_MAGIC {
        return Err(format!(
            "BAR0 ID register reads {id:#010x}, expected {ID_MAGIC:#010x}"
        ));
    }
    dev.enable_mem_and_bus_master()?;
    let e = DmaEngine { bar: &bar };

    let got = iova_ranges(container)?;
    let stage = domain_stage(&e, UNMAPPED_IOVA)?;
    let want = stage.published(info);
    if got == want {
        r.diag(format!(
            "type1 IOVA ranges {} ({} tables), as published",
            show(&got),
            stage.name()
        ));
    } else {
        r.fail(format!(
            "VFIO_IOMMU_GET_INFO IOVA ranges {}, published for {} tables {}",
            show(&got),
            stage.name(),
            show(want)
        ));
    }

    let mut src = DmaBuffer::new(LEN as usize, PAGE as usize)?;
    let dst = DmaBuffer::new(LEN as usize, PAGE as usize)?;
    let data = pattern_bytes(0x7e57_0001, LEN as usize);
    src.as_mut_slice().copy_from_slice(&data);
    for (what, iova) in [("inside the MSI window", MSI_WINDOW)]
        .into_iter()
        .chain(iova::first_past_aperture(want).map(|p| ("just past the aperture", p)))
    {
        match map(container, &src, iova, false) {
            Ok(()) => {
                r.fail(format!(
                    "VFIO_IOMMU_MAP_DMA at {iova:#x} ({what}) succeeded"
                ));
                let _ = unmap(container, iova, LEN);
            }
            Err(e) => r.diag(format!("map {what} refused as expected: {e}")),
        }
    }
    map(container, &src, SRC_IOVA, false)?;
    map(container, &dst, DST_IOVA, true)?;

    let c0 = e.completions()?;
    e.copy(SRC_IOVA, DST_IOVA, LEN)?.expect_done(
        "copy from the read-only to the writable mapping",
        LEN,
        c0,
    )?;
    compare("destination after the copy", &dst.snapshot(), &data)?;
    r.diag(format!(
        "copied {LEN} bytes {SRC_IOVA:#x} -> {DST_IOVA:#x}, every byte checked"
    ));

    e.fill(SRC_IOVA, PAGE, 0x5555_5555_5555_5555)?
        .expect_fault(
            "fill of the read-only mapping",
            SRC_IOVA,
            FAULT_ACCESS_WRITE,
        )?;
    compare(
        "read-only source after the refused fill",
        &src.snapshot(),
        &data,
    )?;
    r.diag("a write into the read-only mapping faults, memory unchanged");

    unmap(container, DST_IOVA, LEN)?;
    let before = dst.snapshot();
    e.copy(SRC_IOVA, DST_IOVA, PAGE)?.expect_fault(
        "copy into the unmapped destination",
        DST_IOVA,
        FAULT_ACCESS_WRITE,
    )?;
    compare(
        "destination after the refused copy",
        &dst.snapshot(),
        &before,
    )?;
    r.diag("a copy into the unmapped IOVA faults, memory unchanged");
    unmap(container, SRC_IOVA, LEN)
}

pub fn run(ctx: &Context) -> Report {
    let mut r = Report::new();
    let info = match expected(ctx) {
        Ok(i) => i.clone(),
        Err(e) => return Report::failure(e),
    };
    let result = (|| -> Result<(), String> {
        let bdf = full_bdf(&info.test_device_bdf);
        let sys = ctx.path("sys");
        let dev_root = ctx.path("dev");
        vfio::bind_vfio_pci(&sys, &bdf)?;
        let group = vfio::group_path(&sys, &dev_root, &bdf)?;
        vfio::wait_for(&group, NODE_TIMEOUT)?;
        let dev = VfioDevice::open_type1(&dev_root, &group, &bdf)?;
        r.diag(format!(
            "{bdf}: vfio-pci, group {}, type1 v2 container (no allow_unsafe_interrupts)",
            group.display()
        ));
        let container = dev.container().ok_or("the type1 device has no container")?;
        dma(&info, &dev, container, &mut r)
    })();
    if let Err(e) = result {
        r.fail(e);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GET_INFO reply: header (argsz, flags, pgsizes, cap_offset, pad), then caps.
    fn reply(caps: &[(u16, u32, Vec<u8>)], flags: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&0x1000u64.to_ne_bytes());
        b.extend_from_slice(&(if caps.is_empty() { 0u32 } else { 24 }).to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        for (id, next, body) in caps {
            b.extend_from_slice(&id.to_ne_bytes());
            b.extend_from_slice(&1u16.to_ne_bytes());
            b.extend_from_slice(&next.to_ne_bytes());
            b.extend_from_slice(body);
        }
        let n = b.len() as u32;
        b[..4].copy_from_slice(&n.to_ne_bytes());
        b
    }

    fn iova_cap(ranges: &[(u64, u64)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(ranges.len() as u32).to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        for (s, e) in ranges {
            b.extend_from_slice(&s.to_ne_bytes());
            b.extend_from_slice(&e.to_ne_bytes());
        }
        b
    }

    #[test]
    fn ranges_from_the_capability_chain() {
        let ranges = [(0u64, 0xfedf_ffffu64), (0xfef0_0000, 0x7fff_ffff_ffff)];
        // A migration capability (id 2, 16 bytes of body) first, then the IOVA ranges.
        let first_len = 8 + 16;
        let caps = [
            (2u16, (24 + first_len) as u32, vec![0u8; 16]),
            (1u16, 0, iova_cap(&ranges)),
        ];
        let got = parse_iova_ranges(&reply(&caps, VFIO_IOMMU_INFO_CAPS)).unwrap();
        assert_eq!(
            got,
            ranges
                .iter()
                .map(|&(first, last)| IovaRange { first, last })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn hostile_replies_are_errors() {
        assert!(parse_iova_ranges(&reply(&[], 0)).is_err());
        assert!(parse_iova_ranges(&[0u8; 3]).is_err());
        // A chain that points back at itself.
        assert!(parse_iova_ranges(&reply(&[(2, 24, vec![])], VFIO_IOMMU_INFO_CAPS)).is_err());
        // More ranges claimed than present.
        let mut cap = iova_cap(&[(0, 1)]);
        cap[..4].copy_from_slice(&5u32.to_ne_bytes());
        assert!(parse_iova_ranges(&reply(&[(1, 0, cap)], VFIO_IOMMU_INFO_CAPS)).is_err());
        // A cap offset past the end.
        let mut b = reply(&[], VFIO_IOMMU_INFO_CAPS);
        b[16..20].copy_from_slice(&4096u32.to_ne_bytes());
        assert!(parse_iova_ranges(&b).is_err());
    }

    #[test]
    fn ioctl_numbers_match_the_uapi() {
        // _IO(';', 100 + 12..14)
        assert_eq!(VFIO_IOMMU_GET_INFO(), 0x3b70);
        assert_eq!(VFIO_IOMMU_MAP_DMA(), 0x3b71);
        assert_eq!(VFIO_IOMMU_UNMAP_DMA(), 0x3b72);
    }
}
