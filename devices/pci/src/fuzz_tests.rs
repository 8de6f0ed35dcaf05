//! Deterministic random accesses at a populated segment: nothing the guest does may panic, and no DMA command
//! makes the device allocate more than one [`DMA_MAX_LEN`] buffer.

use crate::bus::{PciSegment, ECAM_SIZE};
use crate::config::command;
use crate::msi::RecordingSink;
use crate::test_alloc::track;
use crate::test_device::regs::*;
use crate::test_device::TestDevice;
use iommu::mem::TestMemory;
use iommu::{DmaAccessor, DmaFault, DmaPort, DmaRequest, Perms, Translation};
use std::collections::BTreeSet;
use std::sync::Arc;

/// RAM behind the fuzzed devices.
const RAM: usize = 2 << 20;

/// Below 4 GiB: 4 KiB pages scattered over (and past the end of) RAM, every 5th read-only, every 11th
/// unmapped. From 4 GiB: 2 MiB read/write pages all aliasing the start of RAM, so long transfers succeed.
struct FuzzPort;

impl DmaPort for FuzzPort {
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        const BIG: u64 = 2 << 20;
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

/// One access aimed at the DMA engine of device 3 or 31: programs a register, toggles bus mastering or PASID,
/// or runs a command and checks the result registers.
fn dma_access(s: &mut PciSegment, r: &mut XorShift, stats: &mut DmaStats) {
    let base = [0xc000_0000u64, 0xc000_1000][r.below(2) as usize];
    let ecam = [3u64, 31][r.below(2) as usize] << 15;
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

#[test]
fn random_accesses_never_panic() {
    let sink = Arc::new(RecordingSink::default());
    let dma = DmaAccessor::new(Arc::new(FuzzPort), Arc::new(TestMemory::new(RAM)), 0x18);
    let mut s = PciSegment::new();
    s.add_device(
        3,
        Box::new(TestDevice::new(sink.clone(), dma.clone()).unwrap()),
    )
    .unwrap();
    s.add_device(31, Box::new(TestDevice::new(sink.clone(), dma).unwrap()))
        .unwrap();
    s.allocate_bars((0xc000_0000, 0x2000_0000), (0x40_0000_0000, 0x10_0000_0000))
        .unwrap();
    let bases = [
        0xc000_0000u64,
        0xc000_1000,
        0x40_0000_0000,
        0x40_0000_1000,
        0xd000_0000,
    ];
    let mut r = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; 16];
    let (mut routed, mut messages) = (0u32, 0usize);
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
            match r.below(7) {
                0 => {
                    // CF8/CFC: sometimes reprogram the address register with a random or plausible value.
                    if r.below(3) == 0 {
                        let a = if r.below(2) == 0 {
                            r.next() as u32
                        } else {
                            0x8000_0000 | (r.below(32) as u32) << 11 | (r.below(0x100) as u32)
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
                    // ECAM, mostly bus 0 / devices present, sometimes anywhere (including past the window).
                    let off = match r.below(4) {
                        0 => r.next(),
                        1 => r.below(ECAM_SIZE + 0x1000),
                        _ => [0u64, 3, 31][r.below(3) as usize] << 15 | r.below(0x1000),
                    };
                    if write {
                        s.ecam_write(off, &data[..len]);
                    } else {
                        s.ecam_read(off, &mut buf[..len]);
                    }
                }
                6 => dma_access(&mut s, &mut r, &mut dma),
                _ => {
                    let gpa = match r.below(5) {
                        0 => r.next(),
                        _ => bases[r.below(bases.len() as u64) as usize] + r.below(0x1010),
                    };
                    let hit = if write {
                        s.mmio_write(gpa, &data[..len])
                    } else {
                        s.mmio_read(gpa, &mut buf[..len])
                    };
                    routed += u32::from(hit);
                }
            }
            if i % 1024 == 0 {
                // Keep the sink from growing without bound; its content is arbitrary here.
                messages += sink.take().len();
            }
            if i % 4096 == 0 {
                // Put BARs and COMMAND.MEM back now and then so that MMIO keeps reaching the devices.
                s.allocate_bars((0xc000_0000, 0x2000_0000), (0x40_0000_0000, 0x10_0000_0000))
                    .unwrap();
            }
        }
    });
    eprintln!(
        "fuzz: {routed} routed MMIO accesses, {messages} messages, {} DMA commands, statuses {:?}, {alloc:?}",
        dma.commands, dma.statuses
    );
    // No command allocated more than one DMA_MAX_LEN buffer, and long commands did run.
    let max = DMA_MAX_LEN as usize;
    assert!(alloc.largest <= max, "{alloc:?}");
    assert!(alloc.largest > 1 << 20, "no long copy ran: {alloc:?}");
    assert!(alloc.peak_live <= (max + (1 << 20)) as isize, "{alloc:?}");
    // Every outcome was reached (IDLE aside), and the engines counted every command.
    assert_eq!(
        dma.statuses,
        BTreeSet::from([
            STATUS_DONE,
            STATUS_FAULT,
            STATUS_OUTSIDE_RAM,
            STATUS_BAD_COMMAND,
            STATUS_NO_BUS_MASTER
        ])
    );
    s.allocate_bars((0xc000_0000, 0x2000_0000), (0x40_0000_0000, 0x10_0000_0000))
        .unwrap();
    let completions: u32 = [0xc000_0000u64, 0xc000_1000]
        .iter()
        .map(|&b| read_u32(&mut s, b + REG_DMA_COMPLETIONS).unwrap())
        .sum();
    assert!(dma.commands > 1000 && completions >= dma.commands);
    // The storm reached the devices (not only absent functions).
    assert!(routed > 1000, "only {routed} MMIO accesses were routed");
    // The segment still answers sanely after the storm: the host bridge identity is read-only.
    let mut id = [0u8; 4];
    s.ecam_read(0, &mut id);
    assert_eq!(u32::from_le_bytes(id), 0x0008_1b36);
    let d = s.describe();
    assert_eq!(d.len(), 3);
    assert_eq!(d[1].vendor_id, 0x7e57);
}
