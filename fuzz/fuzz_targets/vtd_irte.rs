//! VT-d interrupt remapping against hostile input: fuzzed interrupt remapping table contents (IRTE
//! decoding), fuzzed interrupt requests through `Vtd::remap_msi`, fuzzed IRTA/GCMD writes and interrupt
//! entry cache invalidations. Must never panic; results must be well formed.
#![no_main]

use iommu::RegisterWindow;
use std::sync::Arc;

use iommu::mem::TestMemory;
use iommu::vtd::{regs, RemappedMsi, Vtd, VtdConfig};
use iommu::{DmaMemory, InterruptSink};
use libfuzzer_sys::fuzz_target;

/// 64 KiB of guest RAM: the 4 KiB queue at 0, the status word at 0x1000, the table from 0x2000. Tables
/// bigger than the rest of RAM run off its end (IRTE access faults).
const RAM: usize = 0x1_0000;
const QUEUE: u64 = 0;
const STATUS: u64 = 0x1000;
const TABLE: u64 = 0x2000;

struct NullSink;

impl InterruptSink for NullSink {
    fn msi(&self, _address: u64, _data: u32) {}
}

fn u64_at(b: &[u8]) -> u64 {
    let mut q = [0u8; 8];
    q[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    u64::from_le_bytes(q)
}

fn w32(vtd: &Vtd, off: u64, v: u32) {
    vtd.write32(off, v);
}

fn w64(vtd: &Vtd, off: u64, v: u64) {
    vtd.write64(off, v);
}

fn r32(vtd: &Vtd, off: u64) -> u32 {
    vtd.read32(off)
}

fuzz_target!(|data: &[u8]| {
    let Some((hdr, ops)) = data.split_first_chunk::<2>() else {
        return;
    };
    let cfg = VtdConfig {
        scalable: hdr[0] & 1 != 0,
        caching: hdr[0] & 2 != 0,
        eim: hdr[0] & 4 != 0,
        ..Default::default()
    };
    let mem = Arc::new(TestMemory::new(RAM));
    let vtd = Vtd::new(cfg, mem.clone(), Arc::new(NullSink));
    // Linux-like bring-up: QI (128-bit descriptors), IRTA, SIRTP, IRE, optionally CFI.
    w64(&vtd, regs::IQA, QUEUE);
    w32(&vtd, regs::GCMD, regs::GCMD_QIE);
    let eime = if hdr[0] & 8 != 0 { regs::IRTA_EIME } else { 0 };
    w64(&vtd, regs::IRTA, TABLE | eime | u64::from(hdr[1] & 0xf));
    w32(&vtd, regs::GCMD, regs::GCMD_QIE | regs::GCMD_SIRTP);
    let cfi = if hdr[0] & 0x10 != 0 {
        regs::GCMD_CFI
    } else {
        0
    };
    w32(&vtd, regs::GCMD, regs::GCMD_QIE | regs::GCMD_IRE | cfi);
    let mut tail = 0u64;
    for op in ops.chunks_exact(16) {
        match op[0] % 8 {
            // Write an IRTE (one of the first 1024), half at a time.
            0 | 1 => {
                let index = u64::from(u16::from_le_bytes([op[1], op[2]]) & 0x3ff);
                let half = u64::from(op[0] >> 7) * 8;
                let _ = mem.write_u64(TABLE + index * 16 + half, u64_at(&op[3..11]));
            }
            // An interrupt request.
            2..=5 => {
                let sid = u16::from_le_bytes([op[1], op[2]]);
                let raw = u64_at(&op[3..11]);
                let address = match op[0] >> 6 {
                    // A remappable-format request from a small handle.
                    0 => 0xfee0_0010 | (raw & 0x3fef),
                    1 => 0xfee0_0000 | (raw & 0xf_ffff),
                    2 => (raw & !0xffff_ffff) | 0xfee0_0000 | (raw & 0xf_ffff),
                    _ => raw,
                };
                let data = u32::from_le_bytes([op[11], op[12], op[13], op[14]]);
                let ires = r32(&vtd, regs::GSTS) & regs::GSTS_IRES != 0;
                match vtd.remap_msi(sid, address, data) {
                    Ok(m) => {
                        let (a, d) = m.to_msi();
                        assert_eq!(a as u32 & 0xfff0_0000, 0xfee0_0000);
                        assert_eq!((a >> 32) & 0xff, 0);
                        assert_eq!(RemappedMsi::from_compat(a, d), m);
                        if !ires {
                            assert_eq!(m, RemappedMsi::from_compat(address, data));
                        }
                    }
                    Err(f) => {
                        assert_eq!(f.model, "vtd");
                        if f.reason == 0 {
                            assert!(!f.recorded);
                            assert_ne!(address as u32 & 0xfff0_0000, 0xfee0_0000);
                        } else {
                            assert!(ires, "a fault while remapping is off: {f:?}");
                            assert!((0x20..=0x26).contains(&f.reason), "{f:?}");
                        }
                    }
                }
            }
            // An interrupt entry cache invalidation (any qword 0), then a wait with a status write.
            6 => {
                let qw0 = if op[1] & 1 == 0 {
                    4 | (u64_at(&op[2..10]) & 0xffff_f800_0000_0010)
                } else {
                    u64_at(&op[2..10])
                };
                let _ = mem.write_u64(QUEUE + tail, qw0);
                let _ = mem.write_u64(QUEUE + tail + 8, 0);
                let _ = mem.write_u64(QUEUE + tail + 16, 5 | 1 << 5 | 2 << 32);
                let _ = mem.write_u64(QUEUE + tail + 24, STATUS);
                tail = (tail + 32) % 0x1000;
                w32(&vtd, regs::IQT, tail as u32);
                // Recover from a queue error like Linux: overwrite the bad descriptor, clear IQE.
                if r32(&vtd, regs::FSTS) & regs::FSTS_IQE != 0 {
                    let iqh = u64::from(r32(&vtd, regs::IQH));
                    let _ = mem.write_u64(QUEUE + iqh, 5);
                    let _ = mem.write_u64(QUEUE + iqh + 8, 0);
                    w32(&vtd, regs::FSTS, regs::FSTS_IQE);
                }
            }
            // A register write: GCMD (with QIE kept), IRTA, or a fault log service.
            _ => match op[1] % 3 {
                0 => w32(
                    &vtd,
                    regs::GCMD,
                    (u32::from_le_bytes([op[2], op[3], op[4], op[5]]) & 0xff80_0000)
                        | regs::GCMD_QIE,
                ),
                1 => w64(&vtd, regs::IRTA, u64_at(&op[2..10])),
                _ => {
                    for i in 0..8 {
                        w32(&vtd, regs::FRO_OFFSET + i * 16 + 12, 1 << 31);
                    }
                    w32(&vtd, regs::FSTS, regs::FSTS_PFO);
                }
            },
        }
    }
    assert_eq!(r32(&vtd, regs::VER), 0x10);
});
