use super::*;
use crate::config::{command, reg};
use crate::msi::RecordingSink;
use crate::test_device::testutil::identity_dma;
use crate::test_device::{regs, TestDevice};
use std::sync::Arc;

const TEST_DEV: u8 = crate::test_device::DEFAULT_DEVICE_NUMBER;
const MMIO32: (u64, u64) = (0xc000_0000, 0x2000_0000);
const MMIO64: (u64, u64) = (0x40_0000_0000, 0x10_0000_0000);

fn segment() -> (PciSegment, Arc<RecordingSink>) {
    let sink = Arc::new(RecordingSink::default());
    let mut s = PciSegment::new();
    s.add_device(
        TEST_DEV,
        Box::new(TestDevice::new(sink.clone(), identity_dma()).unwrap()),
    )
    .unwrap();
    (s, sink)
}

fn cf8(bus: u32, dev: u32, func: u32, reg: u32) -> u32 {
    0x8000_0000 | bus << 16 | dev << 11 | func << 8 | (reg & 0xfc)
}

fn ecam(bus: u64, dev: u64, func: u64, reg: u64) -> u64 {
    bus << 20 | dev << 15 | func << 12 | reg
}

fn pio_cfg_read(s: &mut PciSegment, dev: u32, reg: u32, len: usize) -> u32 {
    s.pio_write(0, &cf8(0, dev, 0, reg).to_le_bytes());
    let mut b = [0u8; 4];
    s.pio_read(4 + u64::from(reg & 3), &mut b[..len]);
    u32::from_le_bytes(b)
}

fn pio_cfg_write(s: &mut PciSegment, dev: u32, reg: u32, data: &[u8]) {
    s.pio_write(0, &cf8(0, dev, 0, reg).to_le_bytes());
    s.pio_write(4 + u64::from(reg & 3), data);
}

fn ecam_u32(s: &mut PciSegment, dev: u64, reg: u64) -> u32 {
    let mut b = [0u8; 4];
    s.ecam_read(ecam(0, dev, 0, reg), &mut b);
    u32::from_le_bytes(b)
}

#[test]
fn config_address_register() {
    let (mut s, _) = segment();
    // Linux's pci_check_type1(): a byte write to 0xCFB must not disturb CONFIG_ADDRESS.
    s.pio_write(3, &[0x01]);
    s.pio_write(0, &0x8000_0000u32.to_le_bytes());
    let mut b = [0u8; 4];
    s.pio_read(0, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x8000_0000);
    s.pio_write(3, &[0x01]);
    s.pio_write(0, &[0x12, 0x34]);
    s.pio_read(0, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x8000_0000);
    // Reserved bits (30:24, 1:0) do not stick; narrower reads return the matching bytes.
    s.pio_write(0, &0xffff_ffffu32.to_le_bytes());
    s.pio_read(0, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x80ff_fffc);
    let mut h = [0u8; 2];
    s.pio_read(2, &mut h);
    assert_eq!(u16::from_le_bytes(h), 0x80ff);
}

#[test]
fn cf8_all_widths_and_offsets() {
    let (mut s, _) = segment();
    let id = u32::from(regs::DEVICE_ID) << 16 | u32::from(regs::VENDOR_ID);
    for off in 0..4u32 {
        for len in [1usize, 2, 4] {
            let got = pio_cfg_read(&mut s, u32::from(TEST_DEV), off, len);
            // Bytes inside CONFIG_DATA come from the register; bytes past 0xCFF read all ones.
            let mut want = [0xffu8; 4];
            for (i, w) in want.iter_mut().enumerate().take(len) {
                if off as usize + i < 4 {
                    *w = id.to_le_bytes()[off as usize + i];
                }
            }
            for w in want.iter_mut().skip(len) {
                *w = 0;
            }
            assert_eq!(got, u32::from_le_bytes(want), "offset {off} len {len}");
        }
    }
    // Host bridge at 00:00.0.
    assert_eq!(pio_cfg_read(&mut s, 0, 0, 4), 0x0008_1b36);
    assert_eq!(pio_cfg_read(&mut s, 0, 0x0a, 2), 0x0600);
}

#[test]
fn cf8_absent_and_disabled_read_all_ones() {
    let (mut s, _) = segment();
    for dev in [1u32, 2, 4, 31] {
        assert_eq!(pio_cfg_read(&mut s, dev, 0, 4), 0xffff_ffff);
    }
    let mut b = [0u8; 4];
    for addr in [
        cf8(1, 0, 0, 0),
        cf8(0, u32::from(TEST_DEV), 1, 0),
        cf8(0, 0, 7, 0),
    ] {
        s.pio_write(0, &addr.to_le_bytes());
        s.pio_read(4, &mut b);
        assert_eq!(b, [0xff; 4]);
    }
    // Enable bit clear.
    s.pio_write(0, &(cf8(0, 0, 0, 0) & !0x8000_0000).to_le_bytes());
    s.pio_read(4, &mut b);
    assert_eq!(b, [0xff; 4]);
    // Ports beyond 0xCFF.
    s.pio_read(8, &mut b);
    assert_eq!(b, [0xff; 4]);
    // Writes to absent functions are ignored and do not disturb present ones.
    pio_cfg_write(&mut s, 5, 0x04, &[0xff, 0xff]);
    assert_eq!(pio_cfg_read(&mut s, u32::from(TEST_DEV), 0x04, 2), 0);
}

#[test]
fn cf8_writes_at_all_widths() {
    let (mut s, _) = segment();
    let dev = u32::from(TEST_DEV);
    // Interrupt line (0x3c) is a plain RW byte.
    pio_cfg_write(&mut s, dev, 0x3c, &[0x0a]);
    assert_eq!(pio_cfg_read(&mut s, dev, 0x3c, 1), 0x0a);
    // COMMAND is RW; STATUS (reached with a 2-byte write at 0xCFE) has only RW1C bits.
    pio_cfg_write(&mut s, dev, 0x04, &command::MEMORY_SPACE.to_le_bytes());
    assert_eq!(
        pio_cfg_read(&mut s, dev, 0x04, 2),
        u32::from(command::MEMORY_SPACE)
    );
    pio_cfg_write(&mut s, dev, 0x06, &[0xff, 0xff]);
    assert_eq!(
        pio_cfg_read(&mut s, dev, 0x04, 4),
        u32::from(command::MEMORY_SPACE) | 0x10 << 16
    );
    // A write at 0xCFF reaches only byte 3 of the dword: the interrupt line in the next dword is untouched.
    s.pio_write(0, &cf8(0, dev, 0, 0x38).to_le_bytes());
    s.pio_write(7, &[0x11, 0x22, 0x33, 0x44]);
    assert_eq!(pio_cfg_read(&mut s, dev, 0x3c, 1), 0x0a);
    // A 2-byte read at 0xCFF returns byte 3 and one all-ones byte.
    s.pio_write(0, &cf8(0, dev, 0, 0x3c).to_le_bytes());
    let mut b = [0u8; 2];
    s.pio_read(7, &mut b);
    assert_eq!(b, [0x00, 0xff]);
    // A BAR programmed through CF8 reads back.
    pio_cfg_write(&mut s, dev, 0x10, &0xc000_0000u32.to_le_bytes());
    assert_eq!(pio_cfg_read(&mut s, dev, 0x10, 4), 0xc000_0000);
}

#[test]
fn ecam_matches_cf8() {
    let (mut s, _) = segment();
    s.allocate_bars(MMIO32, MMIO64).unwrap();
    for dev in [0u8, TEST_DEV, 1, 31] {
        for reg in (0..0x100u32).step_by(4) {
            let a = pio_cfg_read(&mut s, u32::from(dev), reg, 4);
            let b = ecam_u32(&mut s, u64::from(dev), u64::from(reg));
            assert_eq!(a, b, "dev {dev} reg {reg:#x}");
        }
    }
    // Sub-dword reads agree too.
    for reg in 0..0x40u32 {
        let a = pio_cfg_read(&mut s, u32::from(TEST_DEV), reg, 1);
        let mut b = [0u8; 1];
        s.ecam_read(ecam(0, u64::from(TEST_DEV), 0, u64::from(reg)), &mut b);
        assert_eq!(a, u32::from(b[0]));
    }
    // A write through ECAM is visible through CF8.
    s.ecam_write(ecam(0, u64::from(TEST_DEV), 0, 0x3c), &[0x05]);
    assert_eq!(pio_cfg_read(&mut s, u32::from(TEST_DEV), 0x3c, 1), 5);
}

#[test]
fn ecam_extended_space_absent_and_out_of_window() {
    let (mut s, _) = segment();
    // Extended space is reachable only through ECAM: the test device's PASID capability (id 0x1b, version 1,
    // next 0x108).
    assert_eq!(ecam_u32(&mut s, u64::from(TEST_DEV), 0x100), 0x1081_001b);
    let mut b = [0u8; 4];
    s.ecam_read(ecam(1, 0, 0, 0), &mut b);
    assert_eq!(b, [0xff; 4]);
    s.ecam_read(ecam(0, u64::from(TEST_DEV), 2, 0), &mut b);
    assert_eq!(b, [0xff; 4]);
    s.ecam_read(ECAM_SIZE, &mut b);
    assert_eq!(b, [0xff; 4]);
    s.ecam_read(u64::MAX - 1, &mut b);
    assert_eq!(b, [0xff; 4]);
    // An unaligned access crossing a dword is split: bytes 0x02..0x06 of the test device.
    let mut u = [0u8; 4];
    s.ecam_read(ecam(0, u64::from(TEST_DEV), 0, 2), &mut u);
    assert_eq!(u16::from_le_bytes([u[0], u[1]]), regs::DEVICE_ID);
    assert_eq!(u16::from_le_bytes([u[2], u[3]]), 0, "COMMAND");
    // A read straddling the end of a function's space reaches into the next (absent) function.
    s.ecam_read(ecam(0, u64::from(TEST_DEV), 0, 0xffe), &mut u);
    assert_eq!(u, [0, 0, 0xff, 0xff]);
}

#[test]
fn bar_sizing_through_config_cycles() {
    let (mut s, _) = segment();
    s.allocate_bars(MMIO32, MMIO64).unwrap();
    let dev = u32::from(TEST_DEV);
    let bar0 = pio_cfg_read(&mut s, dev, 0x10, 4);
    pio_cfg_write(&mut s, dev, 0x10, &[0xff; 4]);
    assert_eq!(pio_cfg_read(&mut s, dev, 0x10, 4), 0xffff_e000, "8 KiB");
    pio_cfg_write(&mut s, dev, 0x10, &bar0.to_le_bytes());
    assert_eq!(pio_cfg_read(&mut s, dev, 0x10, 4), bar0);
    let lo = ecam_u32(&mut s, u64::from(TEST_DEV), 0x18);
    let hi = ecam_u32(&mut s, u64::from(TEST_DEV), 0x1c);
    assert_eq!(lo & 0xf, 0b1100, "64-bit prefetchable");
    s.ecam_write(ecam(0, u64::from(TEST_DEV), 0, 0x18), &[0xff; 4]);
    s.ecam_write(ecam(0, u64::from(TEST_DEV), 0, 0x1c), &[0xff; 4]);
    assert_eq!(ecam_u32(&mut s, u64::from(TEST_DEV), 0x18), 0xffff_f00c);
    assert_eq!(ecam_u32(&mut s, u64::from(TEST_DEV), 0x1c), 0xffff_ffff);
    s.ecam_write(ecam(0, u64::from(TEST_DEV), 0, 0x18), &lo.to_le_bytes());
    s.ecam_write(ecam(0, u64::from(TEST_DEV), 0, 0x1c), &hi.to_le_bytes());
    let b2 = s.device(TEST_DEV).unwrap().config().bar(2).unwrap();
    assert_eq!(b2.address, u64::from(hi) << 32 | u64::from(lo & !0xf));
    // Unimplemented BARs and the expansion ROM read 0 even after all-ones writes.
    for reg in [0x14u32, 0x20, 0x24, 0x30] {
        pio_cfg_write(&mut s, dev, reg, &[0xff; 4]);
        assert_eq!(pio_cfg_read(&mut s, dev, reg, 4), 0, "reg {reg:#x}");
    }
}

fn read_reg(s: &mut PciSegment, gpa: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    s.mmio_read(gpa, &mut b).then(|| u32::from_le_bytes(b))
}

#[test]
fn bar_move_routes_to_new_address_only() {
    let (mut s, _) = segment();
    s.allocate_bars(MMIO32, MMIO64).unwrap();
    let old = s.device(TEST_DEV).unwrap().config().bar(0).unwrap().address;
    assert_eq!(read_reg(&mut s, old + regs::REG_ID), Some(regs::ID_MAGIC));
    let new = 0xd000_0000u64;
    pio_cfg_write(
        &mut s,
        u32::from(TEST_DEV),
        0x10,
        &(new as u32).to_le_bytes(),
    );
    assert_eq!(read_reg(&mut s, old + regs::REG_ID), None);
    assert!(!s.mmio_write(old + regs::REG_SCRATCH, &[1, 2, 3, 4]));
    assert_eq!(read_reg(&mut s, new + regs::REG_ID), Some(regs::ID_MAGIC));
    assert!(s.mmio_write(new + regs::REG_SCRATCH, &0xfeed_beefu32.to_le_bytes()));
    assert_eq!(read_reg(&mut s, new + regs::REG_SCRATCH), Some(0xfeed_beef));
    // The 64-bit BAR moves too, high dword included.
    let b2 = s.device(TEST_DEV).unwrap().config().bar(2).unwrap().address;
    assert_eq!(
        read_reg(&mut s, b2 + 12),
        Some(1),
        "MSI-X vector 0 control: masked"
    );
    let moved = 0x48_0000_0000u64;
    s.ecam_write(
        ecam(0, u64::from(TEST_DEV), 0, 0x18),
        &(moved as u32 | 0xc).to_le_bytes(),
    );
    s.ecam_write(
        ecam(0, u64::from(TEST_DEV), 0, 0x1c),
        &((moved >> 32) as u32).to_le_bytes(),
    );
    assert_eq!(read_reg(&mut s, b2 + 12), None);
    assert_eq!(read_reg(&mut s, moved + 12), Some(1));
}

#[test]
fn command_mem_off_stops_routing() {
    let (mut s, _) = segment();
    s.allocate_bars(MMIO32, MMIO64).unwrap();
    let bar0 = s.device(TEST_DEV).unwrap().config().bar(0).unwrap().address;
    assert!(s.device(TEST_DEV).unwrap().memory_enabled());
    assert_eq!(read_reg(&mut s, bar0), Some(regs::ID_MAGIC));
    pio_cfg_write(&mut s, u32::from(TEST_DEV), reg::COMMAND as u32, &[0, 0]);
    assert!(!s.device(TEST_DEV).unwrap().memory_enabled());
    assert_eq!(read_reg(&mut s, bar0), None);
    assert!(!s.mmio_write(bar0 + regs::REG_SCRATCH, &[1; 4]));
    pio_cfg_write(
        &mut s,
        u32::from(TEST_DEV),
        reg::COMMAND as u32,
        &[command::MEMORY_SPACE as u8, 0],
    );
    assert_eq!(
        read_reg(&mut s, bar0 + regs::REG_SCRATCH),
        Some(0),
        "the write while disabled was dropped"
    );
    // Addresses outside every BAR are not claimed.
    assert_eq!(read_reg(&mut s, bar0 + regs::BAR0_SIZE + 0x10_0000), None);
}

#[test]
fn allocation_is_aligned_and_inside_windows() {
    let (mut s, _) = segment();
    let sink = Arc::new(RecordingSink::default());
    s.add_device(4, Box::new(TestDevice::new(sink, identity_dma()).unwrap()))
        .unwrap();
    // Odd window bases force alignment work.
    s.allocate_bars((0xc000_0800, 0x1_0000), (0x40_0000_0100, 0x1_0000))
        .unwrap();
    let mut seen = Vec::new();
    for dev in [TEST_DEV, 4] {
        let d = s.device(dev).unwrap();
        assert!(d.memory_enabled());
        assert!(!d.config().bus_master_enabled());
        for b in d.bars() {
            assert_eq!(b.address % b.size, 0, "natural alignment");
            let (base, size) = match b.bar_type {
                BarType::Mem32 => (0xc000_0800, 0x1_0000),
                BarType::Mem64 => (0x40_0000_0100, 0x1_0000),
            };
            assert!(b.address >= base && b.address + b.size <= base + size);
            seen.push((b.address, b.size));
        }
    }
    seen.sort();
    for w in seen.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "no overlap: {seen:x?}");
    }
    assert_eq!(seen.len(), 4);
}

#[test]
fn allocation_window_exhaustion() {
    let (mut s, _) = segment();
    let sink = Arc::new(RecordingSink::default());
    s.add_device(4, Box::new(TestDevice::new(sink, identity_dma()).unwrap()))
        .unwrap();
    // Room for one 8 KiB BAR0 only (the window's start is unaligned, so it holds one 8 KiB block).
    let err = s.allocate_bars((0xc000_1800, 0x2800), MMIO64).unwrap_err();
    assert_eq!(
        err,
        SegmentError::WindowExhausted {
            bdf: "0000:00:04.0".into(),
            bar: 0,
            size: 0x2000,
            window: "32-bit",
        }
    );
    // Room for both BAR0s but not for the VF BAR0 apertures, which come after every BAR.
    let err = s.allocate_bars((0xc000_0000, 0x8000), MMIO64).unwrap_err();
    assert_eq!(
        err,
        SegmentError::VfWindowExhausted {
            bdf: "0000:00:04.0".into(),
            bar: 0,
            size: regs::VF_BAR0_SIZE * u64::from(regs::TOTAL_VFS),
            window: "32-bit",
        }
    );
    let err = s.allocate_bars(MMIO32, (0x40_0000_0000, 0)).unwrap_err();
    assert!(matches!(
        err,
        SegmentError::WindowExhausted {
            window: "64-bit",
            bar: 2,
            ..
        }
    ));
    // A window at the very top of the address space does not overflow.
    let err = s
        .allocate_bars(MMIO32, (u64::MAX - 0xfff, 0x1000))
        .unwrap_err();
    assert!(matches!(
        err,
        SegmentError::WindowExhausted {
            window: "64-bit",
            ..
        }
    ));
}

#[test]
fn add_device_errors() {
    let (mut s, _) = segment();
    let sink = Arc::new(RecordingSink::default());
    assert_eq!(
        s.add_device(
            0,
            Box::new(TestDevice::new(sink.clone(), identity_dma()).unwrap())
        ),
        Err(SegmentError::Occupied(0))
    );
    assert_eq!(
        s.add_device(32, Box::new(TestDevice::new(sink, identity_dma()).unwrap())),
        Err(SegmentError::InvalidDeviceNumber(32))
    );
}

#[test]
fn describe_lists_functions_with_assigned_bars() {
    let (mut s, _) = segment();
    s.allocate_bars(MMIO32, MMIO64).unwrap();
    let d = s.describe();
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[0],
        PciFunctionInfo {
            bdf: "0000:00:00.0".into(),
            vendor_id: 0x1b36,
            device_id: 0x0008,
            class: 0x06_0000,
            bars: vec![],
            msi: false,
            msix_vectors: 0,
        }
    );
    let t = &d[1];
    assert_eq!(t.bdf, "0000:00:03.0");
    assert_eq!(
        (t.vendor_id, t.device_id, t.class),
        (0x7e57, 0x0001, 0xff_0000)
    );
    assert!(t.msi);
    assert_eq!(t.msix_vectors, 4);
    assert_eq!(
        t.bars,
        vec![
            BarInfo {
                index: 0,
                kind: BarKind::Mem32,
                prefetchable: false,
                start: 0xc000_0000,
                end: 0xc000_1fff
            },
            BarInfo {
                index: 2,
                kind: BarKind::Mem64,
                prefetchable: true,
                start: 0x40_0000_0000,
                end: 0x40_0000_0fff
            },
        ]
    );
}

#[test]
fn mmio_doorbell_end_to_end() {
    let (mut s, sink) = segment();
    s.allocate_bars(MMIO32, MMIO64).unwrap();
    let dev = u32::from(TEST_DEV);
    let msix = s
        .device(TEST_DEV)
        .unwrap()
        .config()
        .find_capability(0x11)
        .unwrap() as u32;
    // Enable MSI-X and bus mastering, program and unmask vector 2, ring the doorbell.
    pio_cfg_write(
        &mut s,
        dev,
        0x04,
        &(command::MEMORY_SPACE | command::BUS_MASTER).to_le_bytes(),
    );
    pio_cfg_write(&mut s, dev, msix + 2, &0x8000u16.to_le_bytes());
    let table = 0x40_0000_0000u64;
    assert!(s.mmio_write(table + 32, &0xfee0_0000u32.to_le_bytes()));
    assert!(s.mmio_write(table + 36, &0u32.to_le_bytes()));
    assert!(s.mmio_write(table + 40, &0x0000_4042u32.to_le_bytes()));
    assert!(s.mmio_write(table + 44, &0u32.to_le_bytes()));
    assert!(s.mmio_write(0xc000_0000 + regs::REG_IRQ_DOORBELL, &2u32.to_le_bytes()));
    assert_eq!(
        sink.take(),
        vec![crate::MsiMessage {
            address: 0xfee0_0000,
            data: 0x4042
        }]
    );
    assert_eq!(read_reg(&mut s, 0xc000_0000 + regs::REG_IRQ_SENT), Some(1));
}

fn test_device() -> Box<TestDevice> {
    Box::new(TestDevice::new(Arc::new(RecordingSink::default()), identity_dma()).unwrap())
}

#[test]
fn multi_function_devices() {
    let mut s = PciSegment::new();
    s.add_function(7, 0, Box::new(crate::root::HostBridge::new()))
        .unwrap();
    s.add_function(7, 5, Box::new(crate::root::HostBridge::new()))
        .unwrap();
    // Both functions of device 7 report a multi-function device; the bridge at 00:00.0 does not.
    for f in [0u32, 5] {
        s.pio_write(0, &cf8(0, 7, f, 0x0c).to_le_bytes());
        let mut b = [0u8; 4];
        s.pio_read(4, &mut b);
        assert_eq!(b[2], 0x80, "00:07.{f} header type");
    }
    assert_eq!(pio_cfg_read(&mut s, 0, 0x0e, 1), 0);
    let mut b = [0u8; 4];
    s.ecam_read(ecam(0, 7, 3, 0), &mut b);
    assert_eq!(b, [0xff; 4], "00:07.3 absent");
    assert!(s.function_at(7, 5).is_some() && s.function_at(7, 8).is_none());
    assert!(s.function_at(32, 0).is_none() && s.function_at_mut(7, 9).is_none());
    let bdfs: Vec<String> = s.describe().into_iter().map(|f| f.bdf).collect();
    assert_eq!(bdfs, ["0000:00:00.0", "0000:00:07.0", "0000:00:07.5"]);
    assert_eq!(
        s.add_function(7, 8, Box::new(crate::root::HostBridge::new())),
        Err(SegmentError::InvalidFunctionNumber(8))
    );
    assert_eq!(
        s.add_function(7, 5, Box::new(crate::root::HostBridge::new())),
        Err(SegmentError::FunctionOccupied("0000:00:07.5".into()))
    );
}

/// A PF's VFs may never land on a placed function or on another PF's VFs, whichever is added first.
#[test]
fn vf_routing_ids_are_reserved() {
    let (mut s, _) = segment();
    // The test device at 00:03.0 may have VFs at 00:03.1..00:03.4.
    let err = s
        .add_function(TEST_DEV, 2, Box::new(crate::root::HostBridge::new()))
        .unwrap_err();
    assert_eq!(
        err,
        SegmentError::RoutingIdCollision {
            rid: "0000:00:03.2".into(),
            first: "VF 1 of 0000:00:03.0".into(),
            second: "0000:00:03.2".into(),
        }
    );
    s.add_function(TEST_DEV, 5, Box::new(crate::root::HostBridge::new()))
        .unwrap();
    // A PF whose VF 0 would be a placed function.
    s.add_function(9, 1, Box::new(crate::root::HostBridge::new()))
        .unwrap();
    assert_eq!(
        s.add_device(9, test_device()),
        Err(SegmentError::RoutingIdCollision {
            rid: "0000:00:09.1".into(),
            first: "0000:00:09.1".into(),
            second: "VF 0 of 0000:00:09.0".into(),
        })
    );
    // Two PFs far enough apart are fine; the PF added at 00:05.0 must stay empty on the real platform, but
    // here nothing stops it.
    s.add_device(0x1f, test_device()).unwrap();
    assert!(s.device(9).is_none());
}

#[test]
fn iov_apertures_follow_every_bar() {
    let (mut s, _) = segment();
    s.add_device(4, test_device()).unwrap();
    s.allocate_bars(MMIO32, MMIO64).unwrap();
    let mut bars = Vec::new();
    let mut apertures = Vec::new();
    for dev in [TEST_DEV, 4] {
        let d = s.device(dev).unwrap();
        bars.extend(d.bars().into_iter().map(|b| (b.address, b.size)));
        apertures.extend(d.iov_bars().into_iter().map(|b| (b.address, b.size)));
    }
    assert_eq!(apertures.len(), 4);
    for &(a, size) in &apertures {
        assert_eq!(a % size, 0, "aligned");
        for &(b, bsize) in bars
            .iter()
            .filter(|(b, _)| (*b >> 32 == 0) == (a >> 32 == 0))
        {
            assert!(
                a >= b + bsize,
                "after every BAR of its window: {a:#x} vs {b:#x}"
            );
        }
    }
    let mut all: Vec<(u64, u64)> = bars.iter().chain(&apertures).copied().collect();
    all.sort();
    for w in all.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "no overlap: {all:x?}");
    }
    // VF MSE stays off: firmware enables nothing of SR-IOV.
    let c = s.device(TEST_DEV).unwrap().config();
    assert_eq!(c.read_u16(regs::SRIOV_CAP_OFFSET + 8), 0);
}
