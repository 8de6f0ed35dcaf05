//! Queued invalidation under a hostile driver: fuzz-chosen descriptors (mostly well formed, some with
//! reserved bits, unknown types, wait descriptors writing anywhere) in queue memory, IQA writes (base,
//! width, size), IQT writes of every size and value, QI enable/disable, and IQE recovery (Linux's:
//! overwrite the bad descriptor at IQH, clear FSTS.IQE), mixed with register-based invalidations and
//! translations.
//!
//! Checks after every operation: no panic; IQH is a 16-byte-aligned offset inside the largest queue;
//! while QI is enabled (and IQA was not changed under it, which software must not do) IQH lies inside
//! the queue IQA describes, on a descriptor boundary, and unless a queue error is pending it has
//! caught up with IQT (the queue runs synchronously). A batch ending in the harness's own wait
//! descriptor, with no fuzz wait descriptor in it (those could rewrite the queue), either writes the
//! status or leaves a queue error.
#![no_main]

#[path = "common/vtd.rs"]
mod common;

use common::{config, Input, Unit};
use iommu::vtd::regs;
use iommu::{Access, DmaPort, DmaRequest, RequestKind};
use libfuzzer_sys::fuzz_target;

const MEM: u64 = 1 << 20;
const STATUS: u64 = 0xf_f000;

struct Harness {
    u: Unit,
    smts: bool,
    /// IQA was written while QI was enabled: IQH is only bounds-checked until QI is enabled again.
    dirty: bool,
    token: u32,
}

impl Harness {
    fn qies(&self) -> bool {
        self.u.gsts() & regs::GSTS_QIES != 0
    }

    /// Every register write goes through here, to notice IQA changing under an enabled queue.
    fn write(&mut self, off: u64, bytes: &[u8]) {
        let before = self.qies();
        let end = off.saturating_add(bytes.len() as u64);
        if before && off < regs::IQA + 8 && end > regs::IQA {
            self.dirty = true;
        }
        self.u.vtd.mmio_write(off, bytes);
        if !before && self.qies() {
            // Enabling QI starts again at IQH 0 with the IQA now in force.
            self.dirty = false;
        }
    }

    fn w32(&mut self, off: u64, v: u32) {
        self.write(off, &v.to_le_bytes());
    }

    fn w64(&mut self, off: u64, v: u64) {
        self.write(off, &v.to_le_bytes());
    }

    fn queue(&self) -> (u64, u64, u64) {
        let iqa = self.u.r64(regs::IQA);
        let size = if iqa & regs::IQA_DW != 0 { 32 } else { 16 };
        (
            iqa & regs::IQA_BASE_MASK,
            0x1000u64 << (iqa & regs::IQA_QS_MASK),
            size,
        )
    }

    fn check(&self) {
        let iqh = self.u.r64(regs::IQH);
        assert_eq!(
            iqh & !regs::IQ_OFFSET_MASK,
            0,
            "IQH {iqh:#x} is not a queue offset"
        );
        if !self.qies() || self.dirty {
            return;
        }
        let iqa = self.u.r64(regs::IQA);
        let (_, bytes, size) = self.queue();
        assert!(iqh < bytes, "IQH {iqh:#x} outside a {bytes:#x}-byte queue");
        if self.smts && size == 32 {
            assert_eq!(iqh % 32, 0, "IQH {iqh:#x} splits a 256-bit descriptor");
        }
        let fsts = self.u.r32(regs::FSTS);
        let iqt = self.u.r64(regs::IQT) & regs::IQ_OFFSET_MASK;
        if fsts & regs::FSTS_IQE == 0 {
            assert_eq!(iqh, iqt, "queue not drained (IQA {iqa:#x}, FSTS {fsts:#x})");
        }
    }
}

/// A descriptor (qw0, qw1): mostly one of the architected types with fuzz-chosen fields.
fn descriptor(inp: &mut Input) -> [u64; 2] {
    let g = u64::from(inp.u8() & 3) << 4;
    let did = if inp.bool() {
        u64::from(inp.u16())
    } else {
        inp.below(4)
    } << 16;
    let pasid = inp.below(8) << 32;
    let addr = u64::from(inp.u32()) << 12 | inp.below(20);
    let d = match inp.u8() % 10 {
        0 => [
            1 | g | did | u64::from(inp.u16()) << 32 | inp.below(4) << 48,
            0,
        ],
        1 | 2 => [2 | g | did | inp.below(4) << 6, addr],
        3 => [6 | g | did | pasid, addr],
        4 => [7 | g | did | pasid, 0],
        5 => {
            let status = if inp.bool() {
                u64::from(inp.u32()) % MEM
            } else {
                inp.u64()
            };
            [5 | inp.below(8) << 4 | u64::from(inp.u32()) << 32, status]
        }
        6 => [[3, 4, 8][inp.below(3) as usize] | g | did, addr],
        7 => [inp.below(16) | inp.below(8) << 9 | g, addr],
        _ => [inp.u64(), inp.u64()],
    };
    [d[0] ^ inp.noise(), d[1] ^ inp.noise()]
}

/// Whether a fuzz descriptor could be a wait descriptor (whose status write may rewrite the queue).
fn may_write_memory(d: &[u64; 2]) -> bool {
    d[0] & 0xf == 5
}

fn request(inp: &mut Input) -> DmaRequest {
    DmaRequest {
        source_id: u32::from(inp.u16()),
        pasid: inp.bool().then(|| inp.u32() & 0xf_ffff),
        iova: inp.u64() >> (inp.u8() % 64),
        access: if inp.bool() {
            Access::Write
        } else {
            Access::Read
        },
        privileged: false,
        kind: RequestKind::Untranslated,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let u = Unit::new(config(inp.u8(), if inp.bool() { "ir=on" } else { "" }), MEM);
    let smts = u.smts();
    let mut h = Harness {
        u,
        smts,
        dirty: false,
        token: 0,
    };
    // Start where Linux leaves the queue: enabled, empty, at a fuzz-chosen page.
    if inp.bool() {
        let base = inp.below(0xff) << 12;
        h.w32(regs::IQT, 0);
        let iqa = if smts { base | regs::IQA_DW | 1 } else { base };
        h.w64(regs::IQA, iqa);
        h.w32(regs::GCMD, regs::GCMD_QIE);
    }
    h.check();

    let mut ops = 0;
    while !inp.is_empty() && ops < 1024 {
        ops += 1;
        match inp.u8() % 14 {
            0 => {
                let base = match inp.u8() % 4 {
                    0 => MEM + (u64::from(inp.u16()) << 12),
                    1 => inp.u64(),
                    _ => inp.below(0x100) << 12,
                };
                let dw = if inp.u8() % 4 == 3 { !smts } else { smts };
                let qs = if inp.bool() {
                    u64::from(inp.u8() & 7)
                } else {
                    u64::from(dw)
                };
                let v = (base & regs::IQA_BASE_MASK) | if dw { regs::IQA_DW } else { 0 } | qs;
                if inp.bool() {
                    h.w64(regs::IQA, v);
                } else {
                    h.w32(regs::IQA, v as u32);
                    h.w32(regs::IQA + 4, (v >> 32) as u32);
                }
            }
            1 => {
                let v = match inp.u8() % 4 {
                    0 => 0,
                    1 => inp.u32(),
                    _ => regs::GCMD_QIE,
                };
                h.w32(regs::GCMD, v);
            }
            2..=4 => {
                // A batch at the tail, maybe ending in the harness's wait descriptor.
                let n = 1 + inp.below(8) as usize;
                let mut descs: Vec<[u64; 2]> = (0..n).map(|_| descriptor(&mut inp)).collect();
                let safe = !descs.iter().any(may_write_memory);
                let with_wait = inp.u8() % 4 != 3;
                h.token = h.token.wrapping_add(1);
                if with_wait {
                    descs.push([5 | 1 << 5 | u64::from(h.token) << 32, STATUS]);
                }
                h.u.wr(STATUS, 0);
                let (qies, dirty) = (h.qies(), h.dirty);
                h.u.submit(&descs);
                let iqe = h.u.r32(regs::FSTS) & regs::FSTS_IQE != 0;
                if with_wait && safe && qies && !dirty && !iqe {
                    assert_eq!(
                        h.u.rd(STATUS) & 0xffff_ffff,
                        u64::from(h.token),
                        "the batch ran without error but its wait descriptor did not write"
                    );
                }
            }
            5 => {
                let (_, bytes, size) = h.queue();
                let v = match inp.u8() % 4 {
                    0 => inp.u32(),
                    _ => (inp.below((bytes / size).max(1)) * size) as u32,
                };
                match inp.u8() % 4 {
                    0 => h.w64(regs::IQT, u64::from(v) | u64::from(inp.u32()) << 32),
                    1 => {
                        let n = 1 + inp.below(2) as usize;
                        let off = inp.below(4);
                        h.write(regs::IQT + off, &v.to_le_bytes()[..n]);
                    }
                    _ => h.w32(regs::IQT, v),
                }
            }
            6 => {
                // Linux's recovery (qi_check_fault): overwrite the descriptor at IQH, clear IQE.
                if h.u.r32(regs::FSTS) & regs::FSTS_IQE != 0 {
                    let (base, _, _) = h.queue();
                    let head = h.u.r64(regs::IQH);
                    let d = descriptor(&mut inp);
                    h.u.wr(base.wrapping_add(head), d[0]);
                    h.u.wr(base.wrapping_add(head).wrapping_add(8), d[1]);
                }
                h.w32(regs::FSTS, regs::FSTS_IQE);
            }
            7 => {
                let v = inp.u32();
                h.w32(regs::FSTS, v);
            }
            8 => {
                // Corrupt a queue slot behind the driver's back.
                let (base, bytes, _) = h.queue();
                let a = base.wrapping_add(inp.below(bytes / 8) * 8);
                h.u.wr(a, inp.u64());
            }
            9 => {
                let off = [
                    regs::ICS,
                    regs::IECTL,
                    regs::IEDATA,
                    regs::IEADDR,
                    regs::IEUADDR,
                ][inp.below(5) as usize];
                let v = inp.u32();
                h.w32(off, v);
            }
            10 => {
                // Any register access in or near the QI block, any size.
                let off = if inp.bool() {
                    0x78 + inp.below(0x48)
                } else {
                    inp.below(0x1010)
                };
                let n = [1, 2, 4, 8][inp.below(4) as usize];
                let v = inp.u64().to_le_bytes();
                if inp.bool() {
                    h.write(off, &v[..n]);
                } else {
                    let mut b = [0u8; 8];
                    h.u.vtd.mmio_read(off, &mut b[..n]);
                }
            }
            11 => {
                // Register-based invalidation next to the queue.
                let v = inp.u64();
                let off = [regs::CCMD, regs::IVA, regs::IOTLB][inp.below(3) as usize];
                h.w64(off, v);
            }
            12 => {
                let req = request(&mut inp);
                let _ = h.u.vtd.translate(&req);
            }
            _ => {
                // Translation on with a fuzz root, as the driver would before using the caches.
                let root = inp.below(0x100) << 12;
                h.w64(regs::RTADDR, root | u64::from(inp.u8() & 1) << 10);
                let qie = h.u.gsts() & regs::GSTS_QIES;
                h.w32(regs::GCMD, qie | regs::GCMD_SRTP);
                h.w32(regs::GCMD, qie | regs::GCMD_TE);
            }
        }
        h.check();
    }
});
