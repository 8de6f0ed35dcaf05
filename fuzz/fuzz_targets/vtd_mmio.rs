//! Hostile guest against one VT-d unit: 1/2/4/8-byte register reads and writes at any offset (biased to
//! the architected registers), interleaved with DMA translations, over 4 MiB of memory whose contents
//! are fuzz-chosen, so root, context, PASID and page tables and the invalidation queue are all hostile.
//! Must never panic; every successful translation is well formed; CAP/ECAP/VER never change.
//!
//! Input: a configuration byte, an options byte (interrupt remapping on/off), a tile length (u16) and
//! that many bytes, tiled over the first 256 KiB of memory (so any table pointer into that range finds
//! fuzz data at every index), then operations, each an opcode byte followed by its operands.
#![no_main]

#[path = "common/vtd.rs"]
mod common;

use common::{check_translation, config, Input, Unit, HOT};
use iommu::vtd::regs;
use iommu::{DmaMemory, DmaPort, DmaRequest};
use libfuzzer_sys::fuzz_target;

const MEM: u64 = 4 << 20;
const TILED: u64 = 256 << 10;

/// A register offset: mostly an architected register (either half), sometimes anywhere in or just
/// past the window.
fn offset(inp: &mut Input) -> u64 {
    let sel = inp.u8();
    if sel & 3 != 0 {
        HOT[usize::from(sel >> 2) % HOT.len()] + if sel & 0x80 != 0 { 4 } else { 0 }
    } else {
        inp.below(0x1100)
    }
}

/// A register value: often a memory address with low flag bits, or command bits, or raw.
fn value(inp: &mut Input) -> u64 {
    match inp.u8() % 4 {
        0 => (u64::from(inp.u32()) % MEM) & !0xfff | u64::from(inp.u16() & 0xfff),
        1 => u64::from(inp.u8()) << 56 | u64::from(inp.u32()),
        _ => inp.u64(),
    }
}

fn size(inp: &mut Input) -> usize {
    [1, 2, 4, 8][usize::from(inp.u8() & 3)]
}

fn addr_in_mem(inp: &mut Input) -> u64 {
    u64::from(inp.u32()) % MEM
}

fn request(inp: &mut Input, mapped: u64) -> DmaRequest {
    let flags = inp.u8();
    let source_id = match flags & 7 {
        0 => inp.u32(),
        1 | 2 => u32::from(inp.u16()),
        _ => 0x18,
    };
    let pasid = match (flags >> 3) & 3 {
        0 => Some(inp.u32() & 0xf_ffff),
        1 => Some(inp.u32() & 7),
        _ => None,
    };
    let iova = match inp.u8() % 4 {
        0 => inp.u64(),
        1 => u64::from(inp.u32()) << (inp.u8() % 28),
        _ => mapped + u64::from(inp.u16() & 0xfff),
    };
    common::request(source_id, pasid, iova, flags)
}

/// What the driver would have set up for 00:03.0 before enabling translation, in the pages from `root`
/// up: root table, context table, (scalable) PASID directory and table for RID_PASID 0 in domain 1,
/// then a second-stage table of the unit's widest AGAW mapping `iova` to `out` read/write.
fn driver_tables(unit: &Unit, root: u64, scalable: bool, iova: u64, out: u64) {
    const SID: u64 = 0x18;
    let page = |i: u64| root + i * 0x1000;
    let aw = unit.max_aw_code();
    let top = page(4);
    unit.wr(root, page(1) | 1);
    if scalable {
        unit.wr(page(1) + (SID & 0x7f) * 32, page(2) | 1 << 3 | 1);
        unit.wr(page(2), page(3) | 1);
        unit.wr(page(3), top | 2 << 6 | aw << 2 | 1);
        unit.wr(page(3) + 8, 1);
    } else {
        unit.wr(page(1) + SID * 16, top | 1);
        unit.wr(page(1) + SID * 16 + 8, aw | 1 << 8);
    }
    let mut table = top;
    for level in (1..=aw + 2).rev() {
        let slot = table + ((iova >> (12 + 9 * (level - 1))) & 0x1ff) * 8;
        if level == 1 {
            unit.wr(slot, out | 3);
        } else {
            table += 0x1000;
            unit.wr(slot, table | 3);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let cfg = inp.u8();
    let extra = match inp.u8() % 4 {
        0 => "ir=on",
        1 => "ir=on,eim=on",
        _ => "",
    };
    let unit = Unit::new(config(cfg, extra), MEM);
    let tile_len = usize::from(inp.u16() % 4097);
    let tile = inp.bytes(tile_len);
    if !tile.is_empty() {
        // Doubling keeps this cheap whatever the tile length.
        let mut fill = Vec::with_capacity(2 * TILED as usize);
        fill.extend_from_slice(tile);
        while fill.len() < TILED as usize {
            fill.extend_from_within(..);
        }
        fill.truncate(TILED as usize);
        unit.mem
            .write(0, &fill)
            .expect("the tiled range is inside memory");
    }
    let (ver, cap, ecap) = (
        unit.r32(regs::VER),
        unit.r64(regs::CAP),
        unit.r64(regs::ECAP),
    );

    // The IOVA the last driver_tables mapped.
    let mut mapped = 0u64;
    let mut ops = 0;
    while !inp.is_empty() && ops < 4096 {
        ops += 1;
        match inp.u8() % 16 {
            0..=5 => {
                let off = offset(&mut inp);
                let n = size(&mut inp);
                let v = value(&mut inp).to_le_bytes();
                unit.vtd.mmio_write(off, &v[..n]);
            }
            6 | 7 => {
                let off = offset(&mut inp);
                let mut b = [0u8; 8];
                let n = size(&mut inp);
                unit.vtd.mmio_read(off, &mut b[..n]);
                if off >= regs::VTD_MMIO_SIZE {
                    assert_eq!(&b[..n], &[0xff; 8][..n], "beyond the window reads all ones");
                }
            }
            8..=11 => {
                let req = request(&mut inp, mapped);
                if let Ok(t) = unit.vtd.translate(&req) {
                    check_translation(&req, &t);
                }
            }
            12 => {
                let a = addr_in_mem(&mut inp) & !7;
                unit.wr(a, inp.u64());
            }
            13 => {
                // The driver's bring-up with a fuzz-chosen queue and root table, often with a valid
                // chain of tables for 00:03.0 in it (later operations may corrupt them).
                let queue = addr_in_mem(&mut inp) & !0xfff;
                let root = addr_in_mem(&mut inp) & !0xfff;
                let scalable = inp.bool();
                if inp.u8() % 4 != 3 {
                    mapped = u64::from(inp.u32()) << 12;
                    let out = u64::from(inp.u32()) << 12;
                    driver_tables(&unit, root, scalable, mapped, out);
                }
                unit.bring_up(queue, root, scalable);
            }
            14 => {
                // Descriptors at the tail, as the driver queues them.
                let n = 1 + usize::from(inp.u8() % 4);
                let descs: Vec<[u64; 2]> = (0..n).map(|_| [inp.u64(), value(&mut inp)]).collect();
                unit.submit(&descs);
            }
            _ => {
                // Fault service, like the driver's interrupt handler.
                for i in 0..16 {
                    unit.w32(regs::FRO_OFFSET + i * 16 + 12, 1 << 31);
                }
                unit.w32(regs::FSTS, inp.u32());
                unit.w32(regs::ICS, 1);
            }
        }
    }
    assert_eq!(unit.r32(regs::VER), ver);
    assert_eq!(unit.r64(regs::CAP), cap);
    assert_eq!(unit.r64(regs::ECAP), ecap);
});
