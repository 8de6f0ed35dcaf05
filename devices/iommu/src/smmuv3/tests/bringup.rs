//! Linux-order bring-up, register semantics and GBPA.

use super::*;
use crate::smmuv3::SMMUV3_MMIO_SIZE;

#[test]
fn linux_order_bringup_and_register_rules() {
    let rig = Rig::new(Smmuv3Config::default());
    // Probe: IDRs as the configuration says.
    let idr0 = rig.r32(IDR0);
    assert_eq!(idr0 & 3, 3);
    assert_eq!((idr0 >> 27) & 3, 1, "2-level stream table");
    assert_eq!(rig.r32(IDR5) & 7, 5);
    assert_eq!(rig.r32(AIDR), 2, "SMMUv3.2");
    rig.bringup(true);
    assert_eq!(rig.r32(CR0ACK), CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    assert_eq!(rig.r64(STRTAB_BASE), STRTAB | STRTAB_BASE_RA);
    // 64-bit registers read back as two 32-bit halves too.
    assert_eq!(rig.r32(CMDQ_BASE), (CMDQ as u32) | CMDQ_LOG2);
    assert_eq!(rig.r32(CMDQ_BASE + 4), 1 << 30);
    // Locked while enabled: stream table while SMMUEN, queue bases while the queue is on.
    rig.w64(STRTAB_BASE, 0x1234_0000);
    rig.w64(CMDQ_BASE, 0x5000);
    rig.w64(EVTQ_BASE, 0x6000);
    rig.w32(CMDQ_CONS, 7);
    assert_eq!(rig.r64(STRTAB_BASE), STRTAB | STRTAB_BASE_RA);
    assert_eq!(rig.r64(CMDQ_BASE) & Q_BASE_ADDR_MASK, CMDQ);
    assert_eq!(rig.r64(EVTQ_BASE) & Q_BASE_ADDR_MASK, EVTQ);
    assert_ne!(rig.r32(CMDQ_CONS), 7);
    // The page 0 alias of the event queue registers.
    assert_eq!(rig.r32(EVTQ_PROD), rig.r32(PAGE1 + EVTQ_PROD));
    // Odd sizes, misalignment and out-of-window accesses: no effect, reads 0.
    let mut b = [0xffu8; 2];
    rig.smmu.mmio_read(IDR0, &mut b);
    assert_eq!(b, [0, 0]);
    rig.smmu.mmio_write(CR0 + 1, &[0; 4]);
    rig.smmu.mmio_write(SMMUV3_MMIO_SIZE - 4, &[0xff; 8]);
    rig.smmu.mmio_write(u64::MAX - 3, &[0xff; 4]);
    let mut q = [0xffu8; 8];
    rig.smmu.mmio_read(u64::MAX - 7, &mut q);
    assert_eq!(q, [0; 8]);
    assert_eq!(rig.r32(CR0), CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    assert_eq!(rig.r32(PAGE1 + IDR0), 0, "page 1 has no IDR0");
    // Disable: the stream table becomes writable again.
    rig.cr0(0);
    rig.w64(STRTAB_BASE, 0x20_0040);
    assert_eq!(rig.r64(STRTAB_BASE), 0x20_0040);
}

#[test]
fn gbpa_bypass_abort_and_update_handshake() {
    let rig = Rig::new(Smmuv3Config::default());
    // Reset: bypass while SMMUEN = 0.
    assert_eq!(rig.r32(GBPA) & GBPA_ABORT, 0);
    assert_eq!(rig.pa(0x18, None, 0x1234_5678, Access::Write), 0x1234_5678);
    // Beyond the OAS there is nothing to bypass to.
    assert_eq!(
        rig.translate(0x18, None, 1 << 48, Access::Read)
            .unwrap_err()
            .reason,
        0
    );
    // Without Update nothing changes; with it the new value applies and Update reads 0.
    rig.w32(GBPA, GBPA_ABORT);
    assert_eq!(rig.r32(GBPA) & GBPA_ABORT, 0);
    rig.w32(GBPA, GBPA_UPDATE | GBPA_ABORT);
    assert_eq!(rig.r32(GBPA) & (GBPA_UPDATE | GBPA_ABORT), GBPA_ABORT);
    let f = rig.translate(0x18, None, 0x1000, Access::Read).unwrap_err();
    assert!(!f.recorded && f.reason == 0, "{f:?}");
    assert_eq!(rig.smmu.stats().aborts, 2, "beyond OAS + GBPA abort");
    // The gbpa=abort option sets the reset value.
    let rig = Rig::new("smmuv3,gbpa=abort".parse().unwrap());
    assert!(rig.translate(0x18, None, 0x1000, Access::Read).is_err());
    assert!(rig.smmu.permitted_ranges(0x18, None).windows().is_empty());
}

#[test]
fn gerror_toggle_and_irq_ctrl() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    // An event queue in no RAM: the event is lost and EVTQ_ABT_ERR becomes active.
    rig.cr0(CR0_CMDQEN | CR0_SMMUEN);
    rig.w64(EVTQ_BASE, 0x7_0000_0000 | u64::from(EVTQ_LOG2));
    rig.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    rig.write_ste(0x19, [ste0(0b001), 0, 0, 0, 0, 0, 0, 0]); // reserved Config: C_BAD_STE
    assert!(rig.translate(0x19, None, 0, Access::Read).is_err());
    let active = rig.r32(GERROR) ^ rig.r32(GERRORN);
    assert_eq!(active, GERROR_EVTQ_ABT_ERR);
    assert!(rig.irq.0.lock().unwrap().contains(&(GERROR_MSI, 0x41)));
    // Still active: a second failure does not toggle again.
    let g = rig.r32(GERROR);
    assert!(rig.translate(0x19, None, 0, Access::Read).is_err());
    assert_eq!(rig.r32(GERROR), g);
    // Acknowledge by copying GERROR into GERRORN.
    rig.w32(GERRORN, g);
    assert_eq!(rig.r32(GERROR) ^ rig.r32(GERRORN), 0);
    assert_eq!(rig.smmu.stats().gerrors, 1);
    assert_eq!(rig.smmu.stats().events_lost, 2);
}

#[test]
fn hostile_guest_never_panics_or_hangs() {
    // xorshift: deterministic garbage.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..4 {
        let rig = Rig::new(Smmuv3Config {
            caching: round % 2 == 0,
            ..Default::default()
        });
        rig.bringup(round < 2);
        // Garbage in the stream table, CD/table pool and command queue.
        for _ in 0..20_000 {
            let a = (STRTAB + next() % 0x40_0000) & !7;
            rig.mem.write_u64(a, next()).unwrap();
        }
        for i in 0..3000u64 {
            let v = next();
            match i % 4 {
                0 => rig.w32(((v >> 32) % 0x200) & !3, v as u32),
                1 => rig.w64(((v >> 40) % 0x100) & !7, next()),
                2 => rig.w32(CMDQ_PROD, v as u32),
                _ => rig.w32(GERRORN, rig.r32(GERROR)),
            }
            let sid = (next() % 0x400) as u32;
            let ssid = (v & 1 != 0).then_some((next() % 0x10_0000) as u32);
            let access = if v & 2 != 0 {
                Access::Read
            } else {
                Access::Write
            };
            let _ = rig.translate(sid, ssid, next(), access);
            if i % 100 == 0 {
                let _ = rig.smmu.lookup(sid, ssid, next(), access);
                let _ = rig.smmu.permitted_ranges(sid, ssid);
                let _ = rig.smmu.dump(sid, ssid, 64);
            }
        }
        let _ = rig.smmu.stats();
    }
}
