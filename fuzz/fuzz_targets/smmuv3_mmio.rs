//! Hostile guest against the SMMUv3 registers: 1/2/4/8-byte reads and writes at any offset of the
//! two 64 KiB pages (biased to the architected registers, both halves of the 64-bit ones), sometimes
//! after a Linux-order bring-up, interleaved with DMA translations, lookups and event injections,
//! over 4 MiB of memory whose low 256 KiB hold fuzz bytes (so stream tables, CD tables, page tables
//! and both queues are hostile wherever a base register points into that range).
//!
//! Checks: no panic; accesses that are not 4 or 8 bytes and naturally aligned read 0; the ID
//! registers never change; GERROR/GERRORN hold only architected bits, CR0ACK and IRQ_CTRLACK follow
//! their registers; every translation is well formed and every fault an architected event.
//!
//! Input: two configuration bytes, a flags byte (caching, bring-up first), a tile length (u16) and
//! that many bytes, then operations, each an opcode byte followed by its operands.
#![no_main]

#[path = "common/smmuv3.rs"]
mod common;

use common::{check_fault, check_registers, check_translation, config, Input, Placement, Unit};
use iommu::smmuv3::regs::*;
use iommu::DmaRequest;
use libfuzzer_sys::fuzz_target;

const MEM: u64 = 4 << 20;
const TILED: u64 = 256 << 10;

/// Registers worth hitting often (the 64-bit ones also through +4).
const HOT: [u64; 33] = [
    IDR0,
    IDR1,
    IDR5,
    CR0,
    CR0ACK,
    CR1,
    CR2,
    GBPA,
    IRQ_CTRL,
    GERROR,
    GERRORN,
    GERROR_IRQ_CFG0,
    GERROR_IRQ_CFG0 + 4,
    GERROR_IRQ_CFG1,
    GERROR_IRQ_CFG2,
    STRTAB_BASE,
    STRTAB_BASE + 4,
    STRTAB_BASE_CFG,
    CMDQ_BASE,
    CMDQ_BASE + 4,
    CMDQ_PROD,
    CMDQ_CONS,
    EVTQ_BASE,
    EVTQ_BASE + 4,
    EVTQ_PROD,
    EVTQ_CONS,
    PAGE1 + EVTQ_PROD,
    PAGE1 + EVTQ_CONS,
    EVTQ_IRQ_CFG0,
    EVTQ_IRQ_CFG0 + 4,
    EVTQ_IRQ_CFG1,
    EVTQ_IRQ_CFG2,
    STATUSR,
];

fn offset(inp: &mut Input) -> u64 {
    let sel = inp.u8();
    match sel & 7 {
        0 => inp.below(0x1_0000) + (u64::from(sel >> 3 & 1) << 16),
        1 => SMMUV3_MMIO_SIZE - 8 + inp.below(16),
        2 => u64::from(inp.u32()) | inp.u64() & (u64::from(sel >> 7) << 63),
        _ => HOT[usize::from(sel >> 3) % HOT.len()],
    }
}

/// A register value: an address inside the tiled range with low field bits, enable bits, or raw.
fn value(inp: &mut Input) -> u64 {
    match inp.u8() % 4 {
        0 => (u64::from(inp.u32()) % TILED) & !0x3f | u64::from(inp.u8() & 0x3f),
        1 => u64::from(inp.u8() & 0xf),
        _ => inp.u64(),
    }
}

fn size(inp: &mut Input) -> usize {
    [4, 8, 4, 8, 1, 2, 3, 16][usize::from(inp.u8() & 7)]
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let (c0, c1, flags) = (inp.u8(), inp.u8(), inp.u8());
    let u = Unit::new(config(c0, c1, flags & 1 != 0), MEM, (0, 0));
    let tile_len = usize::from(inp.u16() % 4097);
    let tile = inp.bytes(tile_len);
    if !tile.is_empty() {
        let mut fill = Vec::with_capacity(2 * TILED as usize);
        fill.extend_from_slice(tile);
        while fill.len() < TILED as usize {
            fill.extend_from_within(..);
        }
        fill.truncate(TILED as usize);
        u.mem.fill(0, &fill);
    }
    if flags & 2 != 0 {
        // Queues above the tiled range so the bring-up's own commands run; the stream table in it.
        u.bring_up(&Placement {
            strtab: u64::from(flags >> 2) << 12,
            strtab_cfg: if flags & 0x80 != 0 {
                1 << 16 | 8 << 6 | 16
            } else {
                8
            },
            cmdq: TILED,
            cmdq_log2: 6,
            evtq: TILED + 0x1000,
            evtq_log2: 4,
            evtq_on: true,
        });
    }
    let ids = [IDR0, IDR1, IDR2, IDR3, IDR4, IDR5, IIDR, AIDR].map(|r| u.r32(r));
    let oas = u.oas_bits();

    let mut ops = 0;
    while !inp.is_empty() && ops < 2048 {
        ops += 1;
        match inp.u8() % 16 {
            0..=7 => {
                let off = offset(&mut inp);
                let n = size(&mut inp);
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&value(&mut inp).to_le_bytes());
                b[8..].copy_from_slice(&inp.u64().to_le_bytes());
                u.smmu.mmio_write(off, &b[..n]);
            }
            8 | 9 => {
                let off = offset(&mut inp);
                let n = size(&mut inp);
                let mut b = [0xa5u8; 16];
                u.smmu.mmio_read(off, &mut b[..n]);
                let architected = matches!(n, 4 | 8)
                    && off % n as u64 == 0
                    && off
                        .checked_add(n as u64)
                        .is_some_and(|e| e <= SMMUV3_MMIO_SIZE);
                if !architected {
                    assert!(
                        b[..n].iter().all(|&x| x == 0),
                        "{n} bytes at {off:#x}: {b:x?}"
                    );
                }
            }
            10..=13 => {
                let f = inp.u8();
                let sid = match f & 3 {
                    0 => inp.u32(),
                    _ => u32::from(inp.u8()),
                };
                let ssid = (f & 4 != 0).then(|| inp.u32() >> (inp.u8() % 32));
                let iova = match inp.u8() % 4 {
                    0 => inp.u64(),
                    _ => u64::from(inp.u32()) << 12 | u64::from(inp.u16() & 0xfff),
                };
                let req: DmaRequest = common::request(sid, ssid, iova, f);
                match u.translate(&req) {
                    Ok(t) => check_translation(&req, &t, oas),
                    Err(e) => check_fault(&req, &e),
                }
            }
            14 => {
                let sid = u32::from(inp.u8());
                let l = u
                    .smmu
                    .lookup(sid, None, u64::from(inp.u32()) << 12, req_access(&mut inp));
                assert_eq!(l.sid, sid);
            }
            _ => u
                .smmu
                .inject_event(u32::from(inp.u8()), inp.u8(), u32::from(inp.u8() & 3)),
        }
        check_registers(&u);
    }
    let now = [IDR0, IDR1, IDR2, IDR3, IDR4, IDR5, IIDR, AIDR].map(|r| u.r32(r));
    assert_eq!(ids, now, "ID registers changed");
    let _ = u.smmu.stats();
});

fn req_access(inp: &mut Input) -> iommu::Access {
    if inp.bool() {
        iommu::Access::Write
    } else {
        iommu::Access::Read
    }
}
