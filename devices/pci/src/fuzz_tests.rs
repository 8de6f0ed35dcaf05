//! Deterministic random accesses at a populated segment: nothing the guest does may panic, no DMA command
//! makes the device allocate more than one [`DMA_MAX_LEN`] buffer, and SR-IOV state stays what PCIe allows
//! (VFs exist exactly while VF Enable is set with a valid NumVFs; read-only fields stay put) through random
//! enables, NumVFs and page-size writes, VF BAR moves and Function Level Resets of PFs and VFs.

use crate::bus::{PciSegment, ECAM_SIZE};
use crate::capability::id;
use crate::config::command;
use crate::msi::RecordingSink;
use crate::pcie::pcie_reg;
use crate::sriov::{sriov_reg, SUPPORTED_PAGE_SIZES};
use crate::test_alloc::track;
use crate::test_device::regs::*;
use crate::test_device::TestDevice;
use iommu::mem::TestMemory;
use iommu::{DmaAccessor, DmaFault, DmaPort, DmaRequest, Perms, Translation};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// RAM behind the fuzzed devices.
const RAM: usize = 2 << 20;

/// Below 4 GiB: 4 KiB pages scattered over (and past the end of) RAM, every 5th read-only, every 11th
/// unmapped. From 4 GiB: 2 MiB read/write pages all aliasing the start of RAM, so long transfers succeed.
/// Records the requester ids it saw.
#[derive(Default)]
struct FuzzPort {
    sources: Mutex<BTreeSet<u32>>,
}

impl DmaPort for FuzzPort {
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        const BIG: u64 = 2 << 20;
        if let Ok(mut s) = self.sources.lock() {
            s.insert(req.source_id);
        }
        if req.iova >= 1 << 32 {
            return Ok(Translation {
                iova: req.iova & !(BIG - 1),
                output: 0,
                page_size: BIG,
                perms: Perms::RW,
            });
        }
        let page = req.iova >> 12;
        let perms = Perms {
            read: true,
            write: !page.is_multiple_of(5),
            exec: false,
        };
        if page.is_multiple_of(11) || !perms.allows(req.access) {
            return Err(DmaFault {
                model: "fuzz".into(),
                reason: 5,
                description: "refused".into(),
                iova: req.iova,
                recorded: true,
            });
        }
        Ok(Translation {
            iova: page << 12,
            output: (page * 7 % 600) << 12,
            page_size: 0x1000,
            perms,
        })
    }
}

/// xorshift64* (Vigna): tiny, seeded, deterministic.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pick_len(r: &mut XorShift) -> usize {
    match r.below(8) {
        0 => 1,
        1 => 2,
        2 | 3 => 4,
        4 => 8,
        5 => 3,
        6 => 0,
        _ => r.below(17) as usize,
    }
}

fn pick_value(r: &mut XorShift) -> u64 {
    match r.below(4) {
        0 => 0,
        1 => u64::MAX,
        _ => r.next(),
    }
}

fn pick_dma_addr(r: &mut XorShift) -> u64 {
    match r.below(4) {
        0 => r.below(0x20_0000),
        1 => (1 << 32) + r.below(64 << 20),
        2 => r.next(),
        _ => u64::MAX - r.below(0x2000),
    }
}

fn pick_dma_len(r: &mut XorShift) -> u64 {
    match r.below(32) {
        0 => 0,
        1 => r.below(DMA_MAX_LEN + 0x2000),
        2 => r.next(),
        3 => DMA_MAX_LEN,
        _ => r.below(0x4000),
    }
}

fn read_u32(s: &mut PciSegment, gpa: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    s.mmio_read(gpa, &mut b).then_some(u32::from_le_bytes(b))
}

/// What the DMA part of the storm did.
#[derive(Default)]
struct DmaStats {
    commands: u32,
    statuses: BTreeSet<u32>,
}

/// The two PFs of the storm (device numbers).
const PFS: [u8; 2] = [3, 31];

/// Where the storm aims: each PF's BAR0 and BAR2, and its VF BAR0 and VF BAR2 apertures.
struct Targets {
    /// (base, size) of every BAR and aperture.
    mmio: Vec<(u64, u64)>,
    /// BAR0 of each PF, with the function's ECAM offset.
    pf_engines: Vec<(u64, u64)>,
    /// BAR0 of each potential VF, with the function's ECAM offset.
    vf_engines: Vec<(u64, u64)>,
}

fn targets(s: &PciSegment) -> Targets {
    let mut mmio = Vec::new();
    let mut pf_engines = Vec::new();
    let mut vf_engines = Vec::new();
    for dev in PFS {
        let Some(d) = s.device(dev) else { continue };
        let ecam = u64::from(dev) << 15;
        for b in d.bars().into_iter().chain(d.iov_bars()) {
            mmio.push((b.address, b.size));
        }
        if let Some(b0) = d.config().bar(REGS_BAR) {
            pf_engines.push((b0.address, ecam));
        }
        if let Some(a0) = d.iov_bars().into_iter().find(|b| b.index == REGS_BAR) {
            for vf in 0..u64::from(TOTAL_VFS) {
                vf_engines.push((a0.address + vf * VF_BAR0_SIZE, ecam | (vf + 1) << 12));
            }
        }
    }
    Targets {
        mmio,
        pf_engines,
        vf_engines,
    }
}

/// One access aimed at the DMA engine of a PF or a VF: programs a register, toggles bus mastering or PASID,
/// or runs a command and checks the result registers.
fn dma_access(s: &mut PciSegment, r: &mut XorShift, t: &Targets, stats: &mut DmaStats) {
    let engines = if r.below(2) == 0 {
        &t.pf_engines
    } else {
        &t.vf_engines
    };
    let (base, ecam) = engines[r.below(engines.len() as u64) as usize];
    match r.below(16) {
        0 => {
            let c = if r.below(4) == 0 {
                command::MEMORY_SPACE
            } else {
                command::MEMORY_SPACE | command::BUS_MASTER
            };
            s.ecam_write(ecam | 0x04, &c.to_le_bytes());
        }
        1 => {
            let ctrl = r.below(8) as u16;
            s.ecam_write(ecam | (PASID_CAP_OFFSET as u64 + 6), &ctrl.to_le_bytes());
        }
        2..=5 => {
            let cmd = if r.below(8) == 0 {
                r.next() as u32
            } else {
                r.below(5) as u32
            };
            if !s.mmio_write(base + REG_DMA_CMD, &cmd.to_le_bytes()) {
                return;
            }
            stats.commands += 1;
            if let Some(st) = read_u32(s, base + REG_DMA_STATUS) {
                assert!(st <= STATUS_NO_BUS_MASTER, "status {st}");
                stats.statuses.insert(st);
                if st != STATUS_IDLE {
                    let done = read_u32(s, base + REG_DMA_COMPLETIONS).unwrap_or(0);
                    assert_ne!(done, 0, "a command completed");
                }
            }
            let lo = read_u32(s, base + REG_DMA_BYTES).unwrap_or(0);
            let hi = read_u32(s, base + REG_DMA_BYTES + 4).unwrap_or(0);
            assert!(u64::from(hi) << 32 | u64::from(lo) <= DMA_MAX_LEN);
        }
        _ => {
            let (off, v) = match r.below(6) {
                0 => (REG_DMA_SRC, pick_dma_addr(r)),
                1 => (REG_DMA_DST, pick_dma_addr(r)),
                2 => (REG_DMA_LEN, pick_dma_len(r)),
                3 => (REG_DMA_PATTERN, r.next()),
                4 => (REG_DMA_PASID, r.next() & 0xffff_ffff),
                _ => (REG_DMA_FLAGS, r.below(16)),
            };
            let b = v.to_le_bytes();
            if matches!(off, REG_DMA_PASID | REG_DMA_FLAGS) {
                s.mmio_write(base + off, &b[..4]);
            } else if r.below(2) == 0 {
                s.mmio_write(base + off, &b);
            } else {
                s.mmio_write(base + off + 4, &b[4..]);
                s.mmio_write(base + off, &b[..4]);
            }
        }
    }
}

/// One access aimed at SR-IOV: the PF's SR-IOV capability (mostly plausible values), a VF's config space, or
/// a Function Level Reset of a PF or a VF.
fn sriov_access(s: &mut PciSegment, r: &mut XorShift) {
    let dev = PFS[r.below(2) as usize];
    let pf = u64::from(dev) << 15;
    let cap = pf | SRIOV_CAP_OFFSET as u64;
    match r.below(12) {
        0 | 1 => {
            let ctrl: u16 = match r.below(4) {
                0 => r.next() as u16,
                1 => 0,
                _ => (sriov_reg::CTRL_VF_ENABLE | sriov_reg::CTRL_VF_MSE) & r.next() as u16,
            };
            s.ecam_write(cap + sriov_reg::CTRL as u64, &ctrl.to_le_bytes());
        }
        2 => {
            // What Linux's sriov_enable does: NumVFs (mostly valid), then VF Enable and VF MSE.
            let n: u16 = match r.below(8) {
                0 => 0,
                1 => TOTAL_VFS + 1 + r.below(3) as u16,
                _ => 1 + r.below(u64::from(TOTAL_VFS)) as u16,
            };
            s.ecam_write(cap + sriov_reg::CTRL as u64, &0u16.to_le_bytes());
            s.ecam_write(cap + sriov_reg::NUM_VFS as u64, &n.to_le_bytes());
            let ctrl = sriov_reg::CTRL_VF_ENABLE | sriov_reg::CTRL_VF_MSE;
            s.ecam_write(cap + sriov_reg::CTRL as u64, &ctrl.to_le_bytes());
            // And what a VF driver does: memory and bus mastering (only BME sticks), MSI-X enabled.
            for vf in 1..=u64::from(n.min(TOTAL_VFS)) {
                let f = pf | vf << 12;
                let c = command::MEMORY_SPACE | command::BUS_MASTER;
                s.ecam_write(f | 0x04, &c.to_le_bytes());
                if let Some(msix) = s
                    .function_by_rid((u16::from(dev) << 3) + vf as u16)
                    .and_then(|v| v.config().find_capability(id::MSIX))
                {
                    s.ecam_write(f | (msix as u64 + 2), &0x8000u16.to_le_bytes());
                }
            }
        }
        3 | 4 => {
            let n: u16 = if r.below(4) == 0 {
                r.next() as u16
            } else {
                r.below(6) as u16
            };
            s.ecam_write(cap + sriov_reg::NUM_VFS as u64, &n.to_le_bytes());
        }
        5 => {
            let p: u32 = if r.below(2) == 0 {
                1 << r.below(12)
            } else {
                r.next() as u32
            };
            s.ecam_write(cap + sriov_reg::SYS_PGSIZE as u64, &p.to_le_bytes());
        }
        6 => {
            // VF BAR registers: sizing, or anything.
            let reg = sriov_reg::VF_BAR0 as u64 + 4 * r.below(6);
            let v = if r.below(2) == 0 {
                u32::MAX
            } else {
                r.next() as u32
            };
            s.ecam_write(cap + reg, &v.to_le_bytes());
        }
        7 => {
            // Anywhere in the capability, any width.
            let len = pick_len(r).min(4);
            let v = pick_value(r).to_le_bytes();
            s.ecam_write(
                cap + r.below(sriov_reg::VF_MIGRATION_STATE as u64 + 4),
                &v[..len],
            );
        }
        8..=10 => {
            // A VF's config space (functions 1..7: VFs 0..3 and beyond), any register or COMMAND / MSI-X.
            let f = pf | (r.below(7) + 1) << 12;
            let off = match r.below(3) {
                0 => 0x04,
                1 => r.below(0x1000),
                _ => r.below(0x100),
            };
            let len = pick_len(r).min(4);
            let v = pick_value(r).to_le_bytes();
            s.ecam_write(f | off, &v[..len]);
            let mut b = [0u8; 4];
            s.ecam_read(f | r.below(0x1000), &mut b[..len]);
        }
        _ => {
            // FLR of the PF (rarely: it clears the BARs) or of a VF: Initiate FLR with whatever else the write
            // holds.
            let f = if r.below(32) == 0 {
                pf
            } else {
                pf | (r.below(5) + 1) << 12
            };
            let Some(pcie) = s
                .device(dev)
                .and_then(|d| d.config().find_capability(id::PCI_EXPRESS))
            else {
                return;
            };
            let v = (r.next() as u16) | 0x8000;
            s.ecam_write(f | (pcie + pcie_reg::DEVCTL) as u64, &v.to_le_bytes());
        }
    }
}

/// What PCIe allows the PFs' SR-IOV state to be, after any access.
fn check_sriov_invariants(s: &mut PciSegment) {
    for dev in PFS {
        let Some(d) = s.device(dev) else { continue };
        let c = d.config();
        let o = SRIOV_CAP_OFFSET;
        assert_eq!(c.read_u16(o + sriov_reg::TOTAL_VFS), TOTAL_VFS);
        assert_eq!(c.read_u16(o + sriov_reg::INITIAL_VFS), TOTAL_VFS);
        assert_eq!(c.read_u16(o + sriov_reg::VF_OFFSET), VF_OFFSET);
        assert_eq!(c.read_u16(o + sriov_reg::VF_STRIDE), VF_STRIDE);
        assert_eq!(c.read_u16(o + sriov_reg::VF_DEVICE_ID), VF_DEVICE_ID);
        assert_eq!(c.read_u32(o + sriov_reg::SUP_PGSIZE), SUPPORTED_PAGE_SIZES);
        let page = c.read_u32(o + sriov_reg::SYS_PGSIZE);
        assert!(
            page.count_ones() == 1 && page & SUPPORTED_PAGE_SIZES != 0,
            "{page:#x}"
        );
        let ctrl = c.read_u16(o + sriov_reg::CTRL);
        assert_eq!(ctrl & !0x19, 0, "RsvdP control bits: {ctrl:#x}");
        let n = c.read_u16(o + sriov_reg::NUM_VFS);
        let expect = if ctrl & sriov_reg::CTRL_VF_ENABLE != 0 && (1..=TOTAL_VFS).contains(&n) {
            n
        } else {
            0
        };
        assert_eq!(d.num_vfs(), expect, "ctrl {ctrl:#x} NumVFs {n}");
        for i in 0..d.num_vfs() {
            let v = d.vf(i).expect("VF");
            assert_eq!(v.config().vendor_id(), 0xffff);
            assert_eq!(v.os_ids(), (VENDOR_ID, VF_DEVICE_ID));
        }
    }
}

#[test]
fn random_accesses_never_panic() {
    let sink = Arc::new(RecordingSink::default());
    let port = Arc::new(FuzzPort::default());
    let mem = Arc::new(TestMemory::new(RAM));
    let dma = |rid: u32| DmaAccessor::new(port.clone(), mem.clone(), rid);
    let mut s = PciSegment::new();
    for dev in PFS {
        let d = TestDevice::new(sink.clone(), dma(u32::from(dev) << 3)).unwrap();
        s.add_device(dev, Box::new(d)).unwrap();
    }
    let windows = ((0xc000_0000, 0x2000_0000), (0x40_0000_0000, 0x10_0000_0000));
    s.allocate_bars(windows.0, windows.1).unwrap();
    let t = targets(&s);
    assert_eq!(t.mmio.len(), 8, "2 BARs and 2 apertures per PF");
    let mut r = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; 16];
    let (mut routed, mut messages, mut vfs_seen) = (0u32, 0usize, 0u32);
    let mut dma = DmaStats::default();
    let ((), alloc) = track(|| {
        for i in 0..200_000u32 {
            let len = pick_len(&mut r);
            let value = pick_value(&mut r).to_le_bytes();
            let mut data = [0u8; 16];
            for (j, b) in data.iter_mut().enumerate().take(len) {
                *b = value[j % 8];
            }
            let write = r.below(2) == 0;
            match r.below(8) {
                0 => {
                    // CF8/CFC: sometimes reprogram the address register with a random or plausible value.
                    if r.below(3) == 0 {
                        let a = if r.below(2) == 0 {
                            r.next() as u32
                        } else {
                            0x8000_0000
                                | (r.below(32) as u32) << 11
                                | (r.below(8) as u32) << 8
                                | (r.below(0x100) as u32)
                        };
                        s.pio_write(0, &a.to_le_bytes());
                    }
                    let port = r.below(10);
                    if write {
                        s.pio_write(port, &data[..len]);
                    } else {
                        s.pio_read(port, &mut buf[..len]);
                    }
                }
                1 | 2 => {
                    // ECAM, mostly bus 0 / functions present, sometimes anywhere (including past the window).
                    let off = match r.below(4) {
                        0 => r.next(),
                        1 => r.below(ECAM_SIZE + 0x1000),
                        _ => {
                            [0u64, 3, 31][r.below(3) as usize] << 15
                                | r.below(5) << 12
                                | r.below(0x1000)
                        }
                    };
                    if write {
                        s.ecam_write(off, &data[..len]);
                    } else {
                        s.ecam_read(off, &mut buf[..len]);
                    }
                }
                6 => dma_access(&mut s, &mut r, &t, &mut dma),
                7 => sriov_access(&mut s, &mut r),
                _ => {
                    let gpa = match r.below(5) {
                        0 => r.next(),
                        _ => {
                            let (base, size) = t.mmio[r.below(t.mmio.len() as u64) as usize];
                            base + r.below(size + 0x10)
                        }
                    };
                    let hit = if write {
                        s.mmio_write(gpa, &data[..len])
                    } else {
                        s.mmio_read(gpa, &mut buf[..len])
                    };
                    routed += u32::from(hit);
                }
            }
            check_sriov_invariants(&mut s);
            vfs_seen += PFS
                .iter()
                .filter_map(|&d| s.device(d))
                .map(|d| u32::from(d.num_vfs()))
                .sum::<u32>();
            if i % 1024 == 0 {
                // Keep the sink from growing without bound; its content is arbitrary here.
                messages += sink.take().len();
            }
            if i % 4096 == 0 {
                // Put BARs and COMMAND.MEM back now and then so that MMIO keeps reaching the devices.
                s.allocate_bars(windows.0, windows.1).unwrap();
            }
        }
    });
    let sources = port.sources.lock().unwrap().clone();
    eprintln!(
        "fuzz: {routed} routed MMIO accesses, {messages} messages, {} DMA commands, statuses {:?}, \
         {vfs_seen} VF-steps, requester ids {sources:x?}, {alloc:?}",
        dma.commands, dma.statuses
    );
    // No command allocated more than one DMA_MAX_LEN buffer, and long commands did run.
    let max = DMA_MAX_LEN as usize;
    assert!(alloc.largest <= max, "{alloc:?}");
    assert!(alloc.largest > 1 << 20, "no long copy ran: {alloc:?}");
    assert!(alloc.peak_live <= (max + (1 << 20)) as isize, "{alloc:?}");
    // Every outcome was reached (IDLE aside: an FLR or a BAR moved onto reserved space reads it).
    for st in [
        STATUS_DONE,
        STATUS_FAULT,
        STATUS_OUTSIDE_RAM,
        STATUS_BAD_COMMAND,
        STATUS_NO_BUS_MASTER,
    ] {
        assert!(dma.statuses.contains(&st), "{:?}", dma.statuses);
    }
    assert!(dma.commands > 1000);
    // The storm reached the devices (not only absent functions), VFs existed for a good part of it and did
    // DMA with their own requester ids.
    assert!(routed > 1000, "only {routed} MMIO accesses were routed");
    assert!(
        vfs_seen > 10_000,
        "VFs existed for only {vfs_seen} VF-steps"
    );
    for rid in [0x18u32, 0xf8] {
        assert!(sources.contains(&rid), "{sources:x?}");
    }
    assert!(
        sources
            .iter()
            .any(|s| (0x19..=0x1c).contains(s) || (0xf9..=0xfc).contains(s)),
        "no VF did DMA: {sources:x?}"
    );
    assert!(sources.iter().all(|s| [0x18, 0xf8].contains(&(s & !7))));
    // The segment still answers sanely after the storm: the host bridge identity is read-only, and the
    // description lists both PFs and exactly the VFs that exist.
    let mut id = [0u8; 4];
    s.ecam_read(0, &mut id);
    assert_eq!(u32::from_le_bytes(id), 0x0008_1b36);
    let d = s.describe();
    let vfs: usize = PFS
        .iter()
        .filter_map(|&d| s.device(d))
        .map(|d| usize::from(d.num_vfs()))
        .sum();
    assert_eq!(d.len(), 3 + vfs);
    assert_eq!(d[1].vendor_id, 0x7e57);
    assert_eq!(
        d.iter().filter(|f| f.device_id == VF_DEVICE_ID).count(),
        vfs
    );
}

/// One random descriptor for the I/OAT storm: mostly plausible copies and NULLs chained inside the aliased
/// window (IOVAs from 4 GiB map onto RAM offset for offset), sometimes anything at all.
fn ioat_descriptor(r: &mut XorShift) -> crate::ioat::desc::Descriptor {
    use crate::ioat::desc::*;
    use crate::ioat::regs::MAX_TRANSFER;
    let aliased = |r: &mut XorShift| (1 << 32) + 0x4_0000 + r.below(0x10_0000);
    if r.below(2) == 0 {
        // A valid descriptor: COPY, FILL or NULL of 1..=XFERCAP bytes inside the aliased window.
        let op = [OP_COPY, OP_COPY, OP_FILL][r.below(3) as usize];
        let null = if r.below(4) == 0 { CTL_NULL } else { 0 };
        return Descriptor {
            size: r.below(u64::from(MAX_TRANSFER)) as u32 + 1,
            ctl: ctl(
                op,
                null | (r.next() as u32 & (CTL_INT_EN | CTL_COMPL_WRITE | CTL_FENCE)),
            ),
            src: aliased(r),
            dst: aliased(r),
            next: (1 << 32) + r.below(64) * 64,
        };
    }
    let op = match r.below(8) {
        0..=4 => OP_COPY,
        5 => OP_FILL,
        _ => r.next() as u8,
    };
    let mut flags = r.next() as u32 & 0x7ff;
    if r.below(4) != 0 {
        flags &= !(CTL_SRC_BRK | CTL_DEST_BRK);
    }
    let size = match r.below(8) {
        0 => 0,
        1 => MAX_TRANSFER,
        2 => MAX_TRANSFER + 1,
        3 => r.next() as u32,
        _ => r.below(512) as u32 + 1,
    };
    let next = match r.below(16) {
        0 => r.next(),
        1 => (1 << 32) + r.below(0x1_0000) * 64 + 8,
        _ => (1 << 32) + r.below(64) * 64,
    };
    let addr = |r: &mut XorShift| {
        if r.below(2) == 0 {
            aliased(r)
        } else {
            pick_dma_addr(r)
        }
    };
    Descriptor {
        size,
        ctl: ctl(op, flags),
        src: addr(r),
        dst: addr(r),
        next,
    }
}

/// The I/OAT engine under a storm of register, descriptor and configuration writes behind the scattering,
/// faulting port: nothing panics, allocations stay bounded (one staging buffer, no per-descriptor growth),
/// CHANSTS never shows ACTIVE once a write has returned, and the errors and completions all happen.
#[test]
fn ioat_random_accesses_never_panic() {
    use crate::device::PciDevice;
    use crate::ioat::desc::DESC_SIZE;
    use crate::ioat::regs::*;
    use crate::ioat::Ioat;
    use iommu::DmaMemory;

    let sink = Arc::new(RecordingSink::default());
    let mem = Arc::new(TestMemory::new(RAM));
    let dma = DmaAccessor::new(Arc::new(FuzzPort::default()), mem.clone(), 0x30);
    let mut s = PciSegment::new();
    s.add_device(6, Box::new(Ioat::new(sink.clone(), dma).unwrap()))
        .unwrap();
    let windows = ((0xc000_0000, 0x2000_0000), (0x40_0000_0000, 0x10_0000_0000));
    s.allocate_bars(windows.0, windows.1).unwrap();
    let bar = 0x40_0000_0000u64;
    let ecam = 6u64 << 15;
    let chan = |reg: u64| bar + channel_reg(0, reg);
    let mut r = XorShift(0x0123_4567_89ab_cdef);
    // 64 descriptor slots at RAM offset 0 (IOVA 4 GiB), CHANCMP at IOVA 4 GiB + 0x3_0000.
    for slot in 0..64u64 {
        let d = ioat_descriptor(&mut r);
        mem.write(slot * DESC_SIZE as u64, &d.to_bytes()).unwrap();
    }
    // MSI-X as a driver leaves it: entry 0 programmed and unmasked, MSI-X enabled, bus mastering on.
    let msix = Ioat::new(
        sink.clone(),
        DmaAccessor::new(Arc::new(FuzzPort::default()), mem.clone(), 0x30),
    )
    .unwrap()
    .config()
    .find_capability(crate::capability::id::MSIX)
    .unwrap() as u64;
    let driver_setup = |s: &mut PciSegment| {
        let c = command::MEMORY_SPACE | command::BUS_MASTER;
        s.ecam_write(ecam | 0x04, &c.to_le_bytes());
        let table = bar + u64::from(MSIX_TABLE_OFFSET);
        s.mmio_write(table, &0xfee0_0000u64.to_le_bytes());
        s.mmio_write(table + 8, &0x30u32.to_le_bytes());
        s.mmio_write(table + 12, &0u32.to_le_bytes());
        s.ecam_write(ecam | (msix + 2), &0x8000u16.to_le_bytes());
        s.mmio_write(
            bar + REG_INTRCTRL,
            &[INTRCTRL_MSIX_VECTOR_CONTROL | INTRCTRL_MASTER_INT_EN],
        );
    };
    driver_setup(&mut s);
    let mut dmacount = 0u16;
    let (mut done, mut messages) = (0u32, 0usize);
    let mut errors_seen = 0u32;
    let ((), alloc) = track(|| {
        for i in 0..30_000u32 {
            match r.below(20) {
                0..=2 => {
                    let slot = r.below(64);
                    let d = ioat_descriptor(&mut r);
                    mem.write(slot * DESC_SIZE as u64, &d.to_bytes()).unwrap();
                }
                3 | 4 => {
                    let a = if r.below(8) == 0 {
                        r.next()
                    } else {
                        (1 << 32) + r.below(64) * 64
                    };
                    s.mmio_write(chan(CH_CHAINADDR), &a.to_le_bytes());
                }
                5 => {
                    let a = if r.below(4) == 0 {
                        r.next()
                    } else {
                        (1 << 32) + 0x3_0000 + r.below(4) * 8
                    };
                    s.mmio_write(chan(CH_CHANCMP), &a.to_le_bytes());
                }
                6..=10 => {
                    dmacount = match r.below(64) {
                        0 => r.next() as u16,
                        1 => dmacount.wrapping_add(0x8000),
                        _ => dmacount.wrapping_add(r.below(8) as u16 + 1),
                    };
                    s.mmio_write(chan(CH_DMACOUNT), &dmacount.to_le_bytes());
                }
                11 => {
                    let cmd = match r.below(6) {
                        0 => CHANCMD_RESET,
                        1 => CHANCMD_SUSPEND,
                        2 => CHANCMD_RESUME,
                        3 => CHANCMD_ABORT,
                        _ => r.next() as u8,
                    };
                    s.mmio_write(chan(CH_CHANCMD), &[cmd]);
                    if cmd & CHANCMD_RESET != 0 {
                        dmacount = 0;
                    }
                }
                12 => {
                    // Linux's restart: clear errors, reset, CHANCTRL, CHANCMP, CHAINADDR, a few descriptors.
                    s.mmio_write(chan(CH_CHANERR), &u32::MAX.to_le_bytes());
                    s.mmio_write(chan(CH_CHANCMD), &[CHANCMD_RESET]);
                    s.mmio_write(chan(CH_CHANCTRL), &CHANCTRL_RUN.to_le_bytes());
                    s.mmio_write(chan(CH_CHANCMP), &((1u64 << 32) + 0x3_0000).to_le_bytes());
                    let a = (1u64 << 32) + r.below(64) * 64;
                    s.mmio_write(chan(CH_CHAINADDR), &a.to_le_bytes());
                    dmacount = r.below(4) as u16 + 1;
                    s.mmio_write(chan(CH_DMACOUNT), &dmacount.to_le_bytes());
                }
                13 => {
                    let c = if r.below(2) == 0 {
                        CHANCTRL_RUN
                    } else {
                        r.next() as u16
                    };
                    s.mmio_write(chan(CH_CHANCTRL), &c.to_le_bytes());
                }
                14 => {
                    let e = if r.below(2) == 0 {
                        u32::MAX
                    } else {
                        r.next() as u32
                    };
                    s.mmio_write(chan(CH_CHANERR), &e.to_le_bytes());
                }
                15 => {
                    s.mmio_write(bar + REG_INTRCTRL, &[r.next() as u8]);
                }
                16 => {
                    // Anywhere in (and past) BAR0, any size; MSI-X table and PBA included.
                    let len = pick_len(&mut r);
                    let v = pick_value(&mut r).to_le_bytes();
                    let off = match r.below(3) {
                        0 => 0x2000 + r.below(0x20),
                        1 => 0x3000 + r.below(0x10),
                        _ => r.below(BAR0_SIZE + 0x10),
                    };
                    let data: Vec<u8> = (0..len).map(|j| v[j % 8]).collect();
                    s.mmio_write(bar + off, &data);
                }
                17 => {
                    let len = pick_len(&mut r);
                    let mut buf = [0u8; 16];
                    s.mmio_read(bar + r.below(BAR0_SIZE + 0x10), &mut buf[..len]);
                }
                18 => {
                    // Configuration space: COMMAND (BME off now and then), MSI/MSI-X control, error registers.
                    let off = match r.below(6) {
                        0 => 0x04,
                        1 => CFG_CHANERR_INT as u64,
                        2 => CFG_DMAUNCERRSTS as u64,
                        3 => msix + 2,
                        _ => r.below(0x200),
                    };
                    let len = pick_len(&mut r).min(4);
                    let v = pick_value(&mut r).to_le_bytes();
                    s.ecam_write(ecam | off, &v[..len]);
                }
                _ => driver_setup(&mut s),
            }
            let mut sts = [0u8; 8];
            if s.mmio_read(chan(CH_CHANSTS), &mut sts) {
                let sts = u64::from_le_bytes(sts);
                let state = sts & CHANSTS_STATUS;
                assert!(
                    matches!(
                        state,
                        CHANSTS_DONE | CHANSTS_SUSPENDED | CHANSTS_HALTED | CHANSTS_ARMED
                    ),
                    "CHANSTS {sts:#x} after access {i}"
                );
                done += u32::from(state == CHANSTS_DONE && sts & !0x3f != 0);
                let mut e = [0u8; 4];
                if s.mmio_read(chan(CH_CHANERR), &mut e) {
                    errors_seen |= u32::from_le_bytes(e);
                }
            }
            if i % 1024 == 0 {
                messages += sink.take().len();
                // Keep BAR0 decoded (random COMMAND writes turn memory space off).
                s.allocate_bars(windows.0, windows.1).unwrap();
                driver_setup(&mut s);
            }
        }
    });
    eprintln!(
        "ioat fuzz: {done} DONE states, {messages} messages, CHANERR bits seen {errors_seen:#x}, {alloc:?}"
    );
    // One staging buffer at construction (outside the tracked section); no command allocates more than the
    // storm's own bookkeeping (fault descriptions, the sink's message list).
    assert!(alloc.largest <= 64 << 10, "{alloc:?}");
    assert!(alloc.peak_live <= 1 << 20, "{alloc:?}");
    assert!(done > 1000, "only {done} completed chains");
    assert!(messages > 0);
    for bit in [
        CHANERR_SRC_ADDR,
        CHANERR_DEST_ADDR,
        CHANERR_NEXT_ADDR,
        CHANERR_NEXT_DESC_ALIGN,
        CHANERR_CHAIN_ADDR_VALUE,
        CHANERR_CHANCMD,
        CHANERR_READ_DATA,
        CHANERR_WRITE_DATA,
        CHANERR_CONTROL,
        CHANERR_LENGTH,
        CHANERR_COMPLETION_ADDR,
    ] {
        assert_ne!(errors_seen & bit, 0, "CHANERR bit {bit:#x} never reached");
    }
    assert_eq!(errors_seen & !CHANERR_IMPLEMENTED, 0);
    // The segment still answers sanely: the function is still there with its identity.
    assert!(s
        .describe()
        .iter()
        .any(|f| f.bdf == "0000:00:06.0" && (f.vendor_id, f.device_id) == (0x8086, 0x2021)));
}
