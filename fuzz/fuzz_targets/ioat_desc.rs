//! Hostile guest against the I/OAT DMA engine's descriptor processing: fuzz-built descriptors (any op, size,
//! control bits, `next` pointers that loop, point into holes, outside RAM or at misaligned addresses) in 64 KiB
//! of guest memory behind an IOMMU port that refuses some pages (read-only, absent) and maps others far away;
//! then a fuzz-chosen sequence of register accesses (CHAINADDR, DMACOUNT doorbells, CHANCMD, CHANCMP, CHANERR,
//! CHANCTRL, INTRCTRL), config writes (COMMAND, MSI-X, the error mirrors, FLR-less resets) and raw BAR accesses.
//!
//! Invariants checked after every step: nothing panics or hangs (work per doorbell is bounded: at most 65535
//! descriptors); the channel state CHANSTS reports is one the device defines; CHANERR holds only implemented
//! bits; the DMA the engine did never went anywhere the port refused (the port counts refusals and the
//! engine's failure counter must count them); a halted channel with errors ignores doorbells.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use iommu::mem::TestMemory;
use iommu::{DmaAccessor, DmaFault, DmaMemory, DmaPort, DmaRequest, Perms, Translation};
use libfuzzer_sys::fuzz_target;
use pci::ioat::desc::DESC_SIZE;
use pci::ioat::regs::*;
use pci::ioat::{ChannelState, Ioat};
use pci::{PciDevice, RecordingSink};

#[path = "common/input.rs"]
mod input;
use input::Input;

const RAM: u64 = 64 << 10;
const PAGE: u64 = 4096;

/// Pages 0..16 of IOVA space map onto RAM; `perm` bits per page come from the input (absent, RO, RW); IOVAs at
/// 1 GiB map onto RAM too (an alias); everything else is refused.
struct FuzzPort {
    pages: [u8; 16],
    refused: AtomicU64,
}

impl DmaPort for FuzzPort {
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        let refuse = |reason| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Err(DmaFault {
                model: "fuzz".into(),
                reason,
                description: "refused".into(),
                iova: req.iova,
                recorded: true,
            })
        };
        let page = req.iova / PAGE;
        let (output, perms) = if page < 16 {
            let perms = match self.pages[page as usize] % 3 {
                0 => return refuse(1),
                1 => Perms {
                    read: true,
                    write: false,
                    exec: false,
                },
                _ => Perms::RW,
            };
            (page * PAGE, perms)
        } else if (1 << 30..(1 << 30) + RAM).contains(&req.iova) {
            ((req.iova - (1 << 30)) & !(PAGE - 1), Perms::RW)
        } else {
            return refuse(2);
        };
        if !perms.allows(req.access) {
            return refuse(3);
        }
        Ok(Translation {
            iova: req.iova & !(PAGE - 1),
            output,
            page_size: PAGE,
            perms,
        })
    }
}

/// A descriptor from the input: mostly well-formed copies/fills/NULLs, with fuzz-chosen fields everywhere.
fn descriptor(inp: &mut Input) -> [u8; DESC_SIZE] {
    let mut d = [0u8; DESC_SIZE];
    let size: u32 = match inp.u8() % 4 {
        0 => 0,
        1 => u32::from(inp.u16()) % 4097,
        2 => MAX_TRANSFER,
        _ => inp.u32(),
    };
    let op: u32 = match inp.u8() % 4 {
        0 => 0x00,   // copy
        1 => 0x01,   // fill
        2 => 1 << 5, // NULL (ctl bit 5), op copy
        _ => u32::from(inp.u8()) << 24 | inp.u32() & 0xff_ffff,
    };
    let ctl = (op & 0xff00_0000) | (op & 0x00ff_ffff) | (u32::from(inp.u8()) & 0x1f);
    let addr = |inp: &mut Input| match inp.u8() % 4 {
        0 => inp.below(RAM),
        1 => (1 << 30) + inp.below(RAM),
        2 => inp.u64(),
        _ => RAM - inp.below(64),
    };
    let (src, dst) = (addr(inp), addr(inp));
    let next = match inp.u8() % 4 {
        0 => inp.below(RAM / DESC_SIZE as u64) * DESC_SIZE as u64,
        1 => inp.below(RAM),
        2 => inp.u64(),
        _ => 0,
    };
    d[0..4].copy_from_slice(&size.to_le_bytes());
    d[4..8].copy_from_slice(&ctl.to_le_bytes());
    d[8..16].copy_from_slice(&src.to_le_bytes());
    d[16..24].copy_from_slice(&dst.to_le_bytes());
    d[24..32].copy_from_slice(&next.to_le_bytes());
    d
}

fn write(dev: &mut Ioat, off: u64, size: usize, value: u64) {
    dev.bar_write(REGS_BAR, off, &value.to_le_bytes()[..size]);
}

fn read(dev: &mut Ioat, off: u64, size: usize) -> u64 {
    let mut b = [0u8; 8];
    dev.bar_read(REGS_BAR, off, &mut b[..size]);
    u64::from_le_bytes(b)
}

fn ch(reg: u64) -> u64 {
    CHANNEL_BASE + reg
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mut pages = [0u8; 16];
    pages.copy_from_slice(&{
        let mut p = [2u8; 16];
        let b = inp.bytes(16);
        p[..b.len()].copy_from_slice(b);
        p
    });
    let port = Arc::new(FuzzPort {
        pages,
        refused: AtomicU64::new(0),
    });
    let mem = Arc::new(TestMemory::new(RAM as usize));
    let dma = DmaAccessor::new(port.clone(), mem.clone(), 0x30);
    let Ok(mut dev) = Ioat::new(Arc::new(RecordingSink::default()), dma) else {
        return;
    };
    // COMMAND: memory space and bus mastering (the driver's first step).
    dev.config_write(1, 0, &6u16.to_le_bytes());
    for slot in 0..inp.below(64) {
        let d = descriptor(&mut inp);
        let at = (slot * DESC_SIZE as u64) % RAM;
        let _ = mem.write(at, &d);
    }
    let mut steps = 0;
    while !inp.is_empty() && steps < 256 {
        steps += 1;
        let failures_before = dev.stats().dma_failures;
        let refused_before = port.refused.load(Ordering::Relaxed);
        let halted_with_error =
            dev.channel_state() == ChannelState::Halted && read(&mut dev, ch(CH_CHANERR), 4) != 0;
        let descriptors_before = dev.stats().descriptors;
        match inp.u8() % 12 {
            0 => write(&mut dev, ch(CH_CHAINADDR), 8, inp.below(RAM) & !0x3f),
            1 => write(&mut dev, ch(CH_CHAINADDR), 8, inp.u64()),
            2 | 3 => {
                write(&mut dev, ch(CH_DMACOUNT), 2, u64::from(inp.u16()));
                let ran = dev.stats().descriptors - descriptors_before;
                assert!(ran <= 65535, "{ran} descriptors for one doorbell");
                if halted_with_error {
                    assert_eq!(ran, 0, "a halted channel with errors ran descriptors");
                }
            }
            4 => write(&mut dev, ch(CH_CHANCMD), 1, u64::from(inp.u8())),
            5 => write(&mut dev, ch(CH_CHANCMP), 8, inp.u64()),
            6 => write(&mut dev, ch(CH_CHANERR), 4, u64::from(inp.u32())),
            7 => write(&mut dev, ch(CH_CHANCTRL), 2, u64::from(inp.u16())),
            8 => write(&mut dev, REG_INTRCTRL, 1, u64::from(inp.u8())),
            9 => {
                let d = descriptor(&mut inp);
                let _ = mem.write(inp.below(RAM / DESC_SIZE as u64) * DESC_SIZE as u64, &d);
            }
            10 => {
                let off = inp.below(0x1000) as usize;
                let v = inp.u32();
                let len = 1 + inp.below(4) as usize;
                dev.config_write(off / 4, off % 4, &v.to_le_bytes()[..len.min(4 - off % 4)]);
            }
            _ => {
                let off = inp.below(BAR0_SIZE + 64);
                let size = [1usize, 2, 4, 8][inp.below(4) as usize];
                if inp.bool() {
                    write(&mut dev, off, size, inp.u64());
                } else {
                    read(&mut dev, off, size);
                }
            }
        }
        let sts = read(&mut dev, ch(CH_CHANSTS), 8) & CHANSTS_STATUS;
        assert!(
            [
                CHANSTS_ACTIVE,
                CHANSTS_DONE,
                CHANSTS_SUSPENDED,
                CHANSTS_HALTED,
                CHANSTS_ARMED
            ]
            .contains(&sts),
            "CHANSTS state {sts}"
        );
        let err = read(&mut dev, ch(CH_CHANERR), 4) as u32;
        assert_eq!(err & !CHANERR_IMPLEMENTED, 0, "CHANERR {err:#x}");
        // Every refusal the port gave was a failed DMA of the engine (none went through anyway).
        let refused = port.refused.load(Ordering::Relaxed) - refused_before;
        let failed = dev.stats().dma_failures - failures_before;
        if refused > 0 {
            assert!(
                failed > 0,
                "the port refused {refused} requests but no DMA failure was counted"
            );
        }
    }
});
