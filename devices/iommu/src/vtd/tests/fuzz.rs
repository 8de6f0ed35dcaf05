//! A deterministic hostile-guest fuzz: random register writes (biased towards the registers that do
//! things), random reads and random DMA against random table memory. It must never panic and must
//! finish in bounded time.

use std::time::{Duration, Instant};

use super::*;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Registers worth hitting often.
const HOT: [u64; 16] = [
    regs::GCMD,
    regs::RTADDR,
    regs::CCMD,
    regs::FSTS,
    regs::FECTL,
    regs::IQT,
    regs::IQA,
    regs::ICS,
    regs::IECTL,
    regs::IVA,
    regs::IOTLB,
    regs::FRO_OFFSET,
    regs::FRO_OFFSET + 8,
    regs::FRO_OFFSET + 12,
    regs::FEDATA,
    regs::IQH,
];

/// A value that is often meaningful for the register: a RAM address, command bits, small offsets.
fn value(r: &mut XorShift) -> u64 {
    match r.below(6) {
        0 => r.below(RAM >> 12) << 12 | r.below(4) << 10 | r.below(8),
        1 => 1 << (63 - r.below(8)) | r.below(4) << 60 | r.below(0x10000) << 32,
        2 => r.below(0x2000) << 4,
        3 => u64::from(u32::MAX) << 32 | r.next() >> 40,
        4 => 0,
        _ => r.next(),
    }
}

/// Valid tables for a few devices (second-stage, pass-through, scalable PASIDs), some leaves and
/// next-table pointers aimed into the random "garbage" region.
fn build_tables(fx: &Fx, r: &mut XorShift, scalable: bool) -> u64 {
    let root = fx.alloc();
    let dir = fx.alloc();
    // The widest AGAW the unit supports: 1 (39-bit), 2 (48-bit) or 3 (57-bit).
    let aw_code = (((fx.r64(regs::CAP) >> 16) & 0x3f) + 1 - 30) / 9;
    let levels = aw_code as u32 + 2;
    for (i, sid) in [SID, 0x20, 0x100, 0x80].into_iter().enumerate() {
        let top = fx.alloc();
        let did = i as u64 + 1;
        if scalable {
            fx.set_sm_context(root, sid, [dir | 1 << 3 | 1, i as u64, 0, 0]);
            let pgtt = if i == 2 { 4 } else { 2 };
            fx.set_pasid_entry(
                dir,
                i as u32,
                [top | pgtt << 6 | aw_code << 2 | 1, did, 0, 0, 0, 0, 0, 0],
            );
        } else {
            let tt = if i == 2 { 2 << 2 } else { 0 };
            fx.set_legacy_context(root, sid, top | tt | 1, aw_code | did << 8);
        }
        for _ in 0..64 {
            let iova = r.below(1 << 26) & !0xfff;
            let shift = [12, 12, 12, 21][r.below(4) as usize];
            let pa = r.below(RAM >> shift) << shift;
            fx.map(
                top,
                levels,
                iova & !((1 << shift) - 1),
                pa,
                shift,
                (r.below(4) != 0, r.below(3) != 0),
            );
        }
        // A next-table pointer into garbage.
        fx.set_entry(
            top,
            levels,
            0x800_0000 + (i as u64) * 0x20_0000,
            21,
            (GARBAGE + r.below(0x200) * 0x1000) | 3,
        );
    }
    root
}

/// Random bytes live here; valid tables are allocated below it.
const GARBAGE: u64 = 0x80_0000;

fn run(opts: &str, seed: u64, ops: usize) {
    let fx = Fx::new(opts);
    let mut r = XorShift(seed);
    for a in (GARBAGE..GARBAGE + 0x20_0000).step_by(8) {
        let v = match r.below(4) {
            0 => r.below(RAM >> 12) << 12 | r.below(8) | r.below(2) << 7,
            1 => 0,
            _ => r.next(),
        };
        fx.wr(a, v);
    }
    let scalable = fx.r64(regs::ECAP) & regs::ECAP_SMTS != 0;
    let root = build_tables(&fx, &mut r, scalable);
    let mut q = linux_bringup(&fx, root, scalable);
    let start = Instant::now();
    for op in 0..ops {
        if op % 2000 == 1999 {
            // Periodically put the unit back the way the driver set it up, so the fuzz keeps reaching
            // the tables after random register writes knocked them out.
            fx.w64(regs::RTADDR, root | if scalable { 1 << 10 } else { 0 });
            fx.w32(regs::GCMD, regs::GCMD_SRTP);
            fx.w32(regs::GCMD, regs::GCMD_TE | regs::GCMD_QIE);
            fx.w64(regs::CCMD, regs::CCMD_ICC | 1 << regs::CCMD_CIRG_SHIFT);
            fx.w64(regs::IOTLB, regs::IOTLB_IVT | 1 << regs::IOTLB_IIRG_SHIFT);
        }
        match r.below(20) {
            0..=2 => {
                let off = if r.below(3) == 0 {
                    r.below(0x1100)
                } else {
                    HOT[r.below(HOT.len() as u64) as usize] + r.below(2) * 4
                };
                let size = [1usize, 2, 4, 8][r.below(4) as usize];
                let v = value(&mut r).to_le_bytes();
                fx.vtd.mmio_write(off, &v[..size]);
            }
            3 => {
                let mut b = [0u8; 8];
                let size = 1 + r.below(8) as usize;
                fx.vtd.mmio_read(r.below(0x1100), &mut b[..size]);
            }
            4 => {
                // Corrupt a table (or garbage) qword.
                let addr = 0x10_0000 + r.below((GARBAGE + 0x20_0000 - 0x10_0000) / 8) * 8;
                fx.wr(addr, value(&mut r));
            }
            5 => {
                // Queue some descriptors, mostly well formed.
                let did = r.below(5) as u16;
                let d = match r.below(8) {
                    0 => cc_global(),
                    1 => cc_device(did, [SID, 0x20, 0x100][r.below(3) as usize]),
                    2 => iotlb_domain(did),
                    3 => iotlb_page(did, r.below(1 << 26) & !0xfff, r.below(20)),
                    4 => pc_pasid(did, r.below(4) as u32),
                    5 => wait(true, r.below(2) == 0, 1, 0x10_0000 + r.below(0x1000) * 8),
                    _ => [r.next(), r.next(), r.next(), r.next()],
                };
                fx.submit(&mut q, &[d]);
            }
            6 => {
                // Service faults and queue errors like the driver.
                for i in 0..16 {
                    fx.w32(regs::FRO_OFFSET + i * 16 + 12, 1 << 31);
                }
                fx.w32(regs::FSTS, regs::FSTS_PFO | regs::FSTS_IQE);
                fx.w32(regs::ICS, 1);
            }
            _ => {
                let iova = match r.below(6) {
                    0 => u64::MAX - r.below(0x10000),
                    1 => r.next(),
                    2 => 0x800_0000 + r.below(0x80_0000),
                    _ => r.below(1 << 26),
                };
                let sid = match r.below(6) {
                    0 => r.below(0x10010) as u32,
                    n => u32::from([SID, 0x20, 0x100, 0x80, SID][n as usize - 1]),
                };
                let req = DmaRequest {
                    source_id: sid,
                    pasid: (r.below(3) == 0)
                        .then(|| r.below(8) as u32 * (1 + r.below(2) * 0x1_0000) as u32),
                    iova,
                    access: if r.below(2) == 0 {
                        Access::Read
                    } else {
                        Access::Write
                    },
                    privileged: r.below(2) == 0,
                    kind: if r.below(8) == 0 {
                        RequestKind::TranslationRequest
                    } else {
                        RequestKind::Untranslated
                    },
                };
                if let Ok(t) = fx.vtd.translate(&req) {
                    // A translation always covers the request and is well formed.
                    assert!(t.page_size.is_power_of_two());
                    assert_eq!(t.iova & (t.page_size - 1), 0);
                    assert!(req.iova - t.iova < t.page_size);
                    let out = t.translate(req.iova);
                    assert!(!(0xfee0_0000..=0xfeef_ffff).contains(&out) || t.page_size == 1 << 63);
                }
            }
        }
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(60),
        "{opts}: {ops} ops took {elapsed:?}"
    );
    // The unit still works as a device: registers read back sanely.
    assert_eq!(fx.r32(regs::VER), 0x10);
    let st = fx.vtd.stats();
    assert!(st.translations > 0);
    assert!(st.walks > 0, "{opts}: the fuzz reaches the page tables");
    assert!(st.faults_by_reason.len() > 5, "{opts}: many kinds of fault");
}

#[test]
fn hostile_guest_fuzz() {
    for (i, opts) in [
        "vtd",
        "vtd,sm=off",
        "vtd,aw=57,nfr=1",
        "vtd,aw=39,caching=off",
    ]
    .into_iter()
    .enumerate()
    {
        run(opts, 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1), 100_000);
    }
}
