//! Deterministic random accesses at a populated segment: nothing the guest does may panic.

use crate::bus::{PciSegment, ECAM_SIZE};
use crate::msi::RecordingSink;
use crate::test_device::TestDevice;
use std::sync::Arc;

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

#[test]
fn random_accesses_never_panic() {
    let sink = Arc::new(RecordingSink::default());
    let mut s = PciSegment::new();
    s.add_device(3, Box::new(TestDevice::new(sink.clone()).unwrap()))
        .unwrap();
    s.add_device(31, Box::new(TestDevice::new(sink.clone()).unwrap()))
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
    for i in 0..200_000u32 {
        let len = pick_len(&mut r);
        let value = pick_value(&mut r).to_le_bytes();
        let mut data = [0u8; 16];
        for (j, b) in data.iter_mut().enumerate().take(len) {
            *b = value[j % 8];
        }
        let write = r.below(2) == 0;
        match r.below(6) {
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
    eprintln!("fuzz: {routed} routed MMIO accesses, {messages} messages");
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
