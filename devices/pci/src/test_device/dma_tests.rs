//! DMA engine tests: every byte checked, faults exact, requests as the IOMMU sees them.

use super::testutil::*;
use super::*;
use crate::capability::id;
use crate::config::{command, reg};
use crate::msi::MsiMessage;
use crate::msix::msix_reg;
use iommu::mem::TestMemory;
use iommu::{Access, DmaMemory, DmaRequest, IdentityPort, Perms, RequestKind};

fn snapshot(mem: &TestMemory, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    mem.read(0, &mut v).unwrap();
    v
}

/// The result registers after a command: (status, bytes, fault iova, fault reason, fault access).
fn result(d: &mut TestDevice) -> (u32, u64, u64, u32, u32) {
    (
        read32(d, REG_DMA_STATUS),
        read64(d, REG_DMA_BYTES),
        read64(d, REG_DMA_FAULT_IOVA),
        read32(d, REG_DMA_FAULT_REASON),
        read32(d, REG_DMA_FAULT_ACCESS),
    )
}

fn untranslated(iova: u64, access: Access) -> DmaRequest {
    DmaRequest::new(0x18, iova, access)
}

#[test]
fn copy_through_identity_moves_every_byte() {
    let Rig { mut dev, mem, .. } = rig(Arc::new(IdentityPort), 0x1_0000);
    mem.write(0, &noise(0x1_0000, 0x5a)).unwrap();
    enable_bme(&mut dev);
    assert_eq!(read32(&mut dev, REG_DMA_STATUS), STATUS_IDLE);
    let before = snapshot(&mem, 0x1_0000);
    assert_eq!(
        run(&mut dev, DMA_CMD_COPY, 0x1003, 0x8001, 0x2345, 0),
        STATUS_DONE
    );
    let mut expected = before.clone();
    expected[0x8001..0x8001 + 0x2345].copy_from_slice(&before[0x1003..0x1003 + 0x2345]);
    assert_eq!(snapshot(&mem, 0x1_0000), expected);
    assert_eq!(result(&mut dev), (STATUS_DONE, 0x2345, 0, 0, 0));
    assert_eq!(read32(&mut dev, REG_DMA_COMPLETIONS), 1);
    // Overlapping ranges behave like memmove: the whole source is read before anything is written.
    let before = snapshot(&mem, 0x1_0000);
    assert_eq!(
        run(&mut dev, DMA_CMD_COPY, 0x2000, 0x2800, 0x1800, 0),
        STATUS_DONE
    );
    let mut expected = before.clone();
    expected[0x2800..0x4000].copy_from_slice(&before[0x2000..0x3800]);
    assert_eq!(snapshot(&mem, 0x1_0000), expected);
    assert_eq!(read32(&mut dev, REG_DMA_COMPLETIONS), 2);
    assert_eq!(dev.dma_registers().bytes, 0x1800);
}

#[test]
fn fill_writes_the_pattern_in_order() {
    let Rig { mut dev, mem, .. } = rig(Arc::new(IdentityPort), 0x4_0000);
    mem.write(0, &noise(0x4_0000, 3)).unwrap();
    enable_bme(&mut dev);
    write64(&mut dev, REG_DMA_PATTERN, 0x0807_0605_0403_0201);
    let before = snapshot(&mem, 0x4_0000);
    // Longer than one fill piece, starting at an odd address: the phase follows the region, not the address.
    let (dst, len) = (0x1005usize, 0x1_2345usize);
    assert!(len > dma::FILL_CHUNK);
    assert_eq!(
        run(&mut dev, DMA_CMD_FILL, 0, dst as u64, len as u64, 0),
        STATUS_DONE
    );
    let mut expected = before;
    for (i, b) in expected[dst..dst + len].iter_mut().enumerate() {
        *b = (i % 8) as u8 + 1;
    }
    assert_eq!(snapshot(&mem, 0x4_0000), expected);
    assert_eq!(result(&mut dev), (STATUS_DONE, len as u64, 0, 0, 0));
}

/// Source IOVA pages 0x10_0000.. and destination pages 0x20_0000.. scattered over GPA pages.
fn scattered() -> PagePort {
    PagePort::default()
        .map(0x10_0000, 0x5000, Perms::RW)
        .map(0x10_1000, 0x2000, Perms::RW)
        .map(0x10_2000, 0x9000, RO)
        .map(0x20_0000, 0x7000, Perms::RW)
        .map(0x20_1000, 0x1000, Perms::RW)
        .map(0x20_2000, 0xb000, Perms::RW)
}

fn gpa(port_pages: &[(u64, u64)], iova: u64) -> usize {
    let page = iova & !(PAGE - 1);
    let (_, g) = port_pages.iter().find(|(i, _)| *i == page).unwrap();
    (g + (iova - page)) as usize
}

const SCATTER: [(u64, u64); 6] = [
    (0x10_0000, 0x5000),
    (0x10_1000, 0x2000),
    (0x10_2000, 0x9000),
    (0x20_0000, 0x7000),
    (0x20_1000, 0x1000),
    (0x20_2000, 0xb000),
];

#[test]
fn copy_across_pages_through_a_non_identity_port() {
    let port = Arc::new(scattered());
    let Rig { mut dev, mem, .. } = rig(port.clone(), 0x1_0000);
    mem.write(0, &noise(0x1_0000, 9)).unwrap();
    enable_bme(&mut dev);
    let before = snapshot(&mem, 0x1_0000);
    let (src, dst, len) = (0x10_0800u64, 0x20_0400u64, 0x2000u64);
    assert_eq!(run(&mut dev, DMA_CMD_COPY, src, dst, len, 0), STATUS_DONE);
    let mut expected = before.clone();
    for i in 0..len {
        expected[gpa(&SCATTER, dst + i)] = before[gpa(&SCATTER, src + i)];
    }
    assert_eq!(snapshot(&mem, 0x1_0000), expected);
    assert_eq!(result(&mut dev), (STATUS_DONE, len, 0, 0, 0));
    // One request per page, all reads before any write, as requester 0x18 without PASID.
    assert_eq!(
        port.take(),
        vec![
            untranslated(0x10_0800, Access::Read),
            untranslated(0x10_1000, Access::Read),
            untranslated(0x10_2000, Access::Read),
            untranslated(0x20_0400, Access::Write),
            untranslated(0x20_1000, Access::Write),
            untranslated(0x20_2000, Access::Write),
        ]
    );
}

#[test]
fn copy_write_fault_keeps_the_pages_before_it() {
    let port = Arc::new(
        PagePort::default()
            .map(0x10_0000, 0x1000, Perms::RW)
            .map(0x10_1000, 0x2000, Perms::RW)
            .map(0x10_2000, 0x3000, Perms::RW)
            .map(0x20_0000, 0x5000, Perms::RW)
            .map(0x20_1000, 0x6000, Perms::RW),
    );
    let Rig { mut dev, mem, .. } = rig(port.clone(), 0x1_0000);
    mem.write(0, &noise(0x1_0000, 1)).unwrap();
    enable_bme(&mut dev);
    let before = snapshot(&mem, 0x1_0000);
    let status = run(&mut dev, DMA_CMD_COPY, 0x10_0000, 0x20_0100, 0x2800, 0);
    assert_eq!(status, STATUS_FAULT);
    assert_eq!(
        result(&mut dev),
        (
            STATUS_FAULT,
            0x1f00,
            0x20_2000,
            REASON_NO_WRITE,
            FAULT_ACCESS_WRITE
        )
    );
    let mut expected = before.clone();
    expected[0x5100..0x7000].copy_from_slice(&before[0x1000..0x2f00]);
    assert_eq!(snapshot(&mem, 0x1_0000), expected);
    let reqs = port.take();
    assert_eq!(reqs.last(), Some(&untranslated(0x20_2000, Access::Write)));
    assert_eq!(reqs.len(), 6);
}

#[test]
fn copy_read_fault_writes_nothing() {
    let port = Arc::new(
        PagePort::default()
            .map(0x10_0000, 0x1000, Perms::RW)
            .map(0x20_0000, 0x5000, Perms::RW)
            .map(0x20_1000, 0x6000, Perms::RW),
    );
    let Rig { mut dev, mem, .. } = rig(port.clone(), 0x1_0000);
    mem.write(0, &noise(0x1_0000, 2)).unwrap();
    enable_bme(&mut dev);
    let before = snapshot(&mem, 0x1_0000);
    let status = run(&mut dev, DMA_CMD_COPY, 0x10_0800, 0x20_0000, 0x1800, 0);
    assert_eq!(status, STATUS_FAULT);
    assert_eq!(
        result(&mut dev),
        (
            STATUS_FAULT,
            0,
            0x10_1000,
            REASON_NO_READ,
            FAULT_ACCESS_READ
        )
    );
    assert_eq!(snapshot(&mem, 0x1_0000), before);
    assert!(port.take().iter().all(|r| r.access == Access::Read));
}

#[test]
fn write_to_a_read_only_page_faults_with_access_write() {
    let port = Arc::new(scattered());
    let Rig { mut dev, mem, .. } = rig(port.clone(), 0x1_0000);
    mem.write(0, &noise(0x1_0000, 4)).unwrap();
    enable_bme(&mut dev);
    write64(&mut dev, REG_DMA_PATTERN, u64::MAX);
    let before = snapshot(&mem, 0x1_0000);
    // 0x10_1000 is writable (GPA 0x2000), 0x10_2000 read-only (GPA 0x9000).
    let status = run(&mut dev, DMA_CMD_FILL, 0, 0x10_1ff0, 0x20, 0);
    assert_eq!(status, STATUS_FAULT);
    assert_eq!(
        result(&mut dev),
        (
            STATUS_FAULT,
            0x10,
            0x10_2000,
            REASON_NO_WRITE,
            FAULT_ACCESS_WRITE
        )
    );
    let mut expected = before.clone();
    expected[0x2ff0..0x3000].fill(0xff);
    assert_eq!(snapshot(&mem, 0x1_0000), expected);
    // Reading the read-only page is fine.
    let status = run(&mut dev, DMA_CMD_COPY, 0x10_2000, 0x20_0000, 0x100, 0);
    assert_eq!(status, STATUS_DONE);
    let mut out = [0u8; 0x100];
    mem.read(0x7000, &mut out).unwrap();
    assert_eq!(&out[..], &before[0x9000..0x9100]);
    // A later successful command clears the fault registers.
    assert_eq!(result(&mut dev), (STATUS_DONE, 0x100, 0, 0, 0));
}

#[test]
fn translated_outside_ram() {
    let port = Arc::new(PagePort::default().map(0x20_0000, 0x1000, Perms::RW).map(
        0x20_1000,
        0x10_0000,
        Perms::RW,
    ));
    let Rig { mut dev, mem, .. } = rig(port, 0x1_0000);
    enable_bme(&mut dev);
    write64(&mut dev, REG_DMA_PATTERN, 0x1111_1111_1111_1111);
    let status = run(&mut dev, DMA_CMD_FILL, 0, 0x20_0800, 0x1000, 0);
    assert_eq!(status, STATUS_OUTSIDE_RAM);
    assert_eq!(
        result(&mut dev),
        (STATUS_OUTSIDE_RAM, 0x800, 0x20_1000, 0, FAULT_ACCESS_WRITE)
    );
    let mut b = [0u8; 0x801];
    mem.read(0x17ff, &mut b).unwrap();
    assert_eq!(b[0], 0);
    assert!(b[1..].iter().all(|&x| x == 0x11));
    let status = run(&mut dev, DMA_CMD_COPY, 0x20_1000, 0x20_0000, 8, 0);
    assert_eq!(status, STATUS_OUTSIDE_RAM);
    assert_eq!(
        result(&mut dev),
        (STATUS_OUTSIDE_RAM, 0, 0x20_1000, 0, FAULT_ACCESS_READ)
    );
}

#[test]
fn translate_probe_results_and_faults_without_side_effects() {
    let port = Arc::new(
        PagePort::default()
            .map(0x30_0000, 0x7000, Perms::RW)
            .map(0x30_1000, 0x8000, RO),
    );
    let Rig { mut dev, mem, .. } = rig(port.clone(), 0x1_0000);
    mem.write(0, &noise(0x1_0000, 6)).unwrap();
    enable_bme(&mut dev);
    let before = snapshot(&mem, 0x1_0000);
    let probe = |d: &mut TestDevice, iova: u64, flags: u32| {
        // SRC and LEN are ignored by the probe, even absurd ones.
        let s = run(d, DMA_CMD_TRANSLATE, u64::MAX, iova, u64::MAX, flags);
        (
            s,
            read64(d, REG_DMA_XLATE_OUT),
            read64(d, REG_DMA_XLATE_SIZE),
            read32(d, REG_DMA_XLATE_PERMS),
        )
    };
    assert_eq!(
        probe(&mut dev, 0x30_0123, 0),
        (
            STATUS_DONE,
            0x7123,
            0x1000,
            XLATE_PERM_READ | XLATE_PERM_WRITE
        )
    );
    assert_eq!(result(&mut dev), (STATUS_DONE, 0, 0, 0, 0));
    assert_eq!(
        probe(&mut dev, 0x30_1abc, 0),
        (STATUS_DONE, 0x8abc, 0x1000, XLATE_PERM_READ)
    );
    // Write probe of the read-only page: refused; the probe registers are cleared.
    assert_eq!(
        probe(&mut dev, 0x30_1abc, DMA_FLAG_PROBE_WRITE),
        (STATUS_FAULT, 0, 0, 0)
    );
    assert_eq!(
        result(&mut dev),
        (
            STATUS_FAULT,
            0,
            0x30_1abc,
            REASON_NO_WRITE,
            FAULT_ACCESS_WRITE
        )
    );
    assert_eq!(
        probe(&mut dev, 0x40_0008, DMA_FLAG_PRIVILEGED),
        (STATUS_FAULT, 0, 0, 0)
    );
    assert_eq!(
        result(&mut dev),
        (
            STATUS_FAULT,
            0,
            0x40_0008,
            REASON_NO_READ,
            FAULT_ACCESS_READ
        )
    );
    let req = |iova, access, privileged| DmaRequest {
        source_id: 0x18,
        pasid: None,
        iova,
        access,
        privileged,
        kind: RequestKind::TranslationRequest,
    };
    assert_eq!(
        port.take(),
        vec![
            req(0x30_0123, Access::Read, false),
            req(0x30_1abc, Access::Read, false),
            req(0x30_1abc, Access::Write, false),
            req(0x40_0008, Access::Read, true),
        ]
    );
    assert_eq!(snapshot(&mem, 0x1_0000), before, "probes touch no memory");
    assert_eq!(read32(&mut dev, REG_DMA_COMPLETIONS), 4);
}

#[test]
fn command_validation() {
    let port = Arc::new(PagePort::default().map(0x1000, 0x1000, Perms::RW));
    let Rig { mut dev, mem, .. } = rig(port.clone(), 0x1_0000);
    mem.write(0, &noise(0x1_0000, 7)).unwrap();
    let before = snapshot(&mem, 0x1_0000);
    // Bus mastering off: nothing is requested, whatever the command.
    for cmd in [DMA_CMD_COPY, DMA_CMD_FILL, DMA_CMD_TRANSLATE] {
        assert_eq!(
            run(&mut dev, cmd, 0x1000, 0x1800, 0x10, 0),
            STATUS_NO_BUS_MASTER
        );
        assert_eq!(result(&mut dev), (STATUS_NO_BUS_MASTER, 0, 0, 0, 0));
    }
    enable_bme(&mut dev);
    // A successful command first, so that the checks below must reset BYTES.
    assert_eq!(run(&mut dev, DMA_CMD_FILL, 0, 0x1000, 0x10, 0), STATUS_DONE);
    port.take();
    // Length 0: done, nothing requested, whatever the addresses.
    for cmd in [DMA_CMD_COPY, DMA_CMD_FILL] {
        assert_eq!(run(&mut dev, cmd, u64::MAX, u64::MAX, 0, 0), STATUS_DONE);
        assert_eq!(result(&mut dev), (STATUS_DONE, 0, 0, 0, 0));
    }
    // Too long, or wrapping the address space.
    for (cmd, src, dst, len) in [
        (DMA_CMD_COPY, 0x1000, 0x1000, DMA_MAX_LEN + 1),
        (DMA_CMD_FILL, 0x1000, 0x1000, DMA_MAX_LEN + 1),
        (DMA_CMD_FILL, 0, 0x1000, u64::MAX),
        (DMA_CMD_FILL, 0, u64::MAX - 0xf, 0x11),
        (DMA_CMD_COPY, u64::MAX, 0x1000, 2),
        (DMA_CMD_COPY, 0x1000, u64::MAX - 2, 4),
    ] {
        assert_eq!(
            run(&mut dev, cmd, src, dst, len, 0),
            STATUS_BAD_COMMAND,
            "{cmd} {src:#x} {dst:#x} {len:#x}"
        );
        assert_eq!(result(&mut dev), (STATUS_BAD_COMMAND, 0, 0, 0, 0));
    }
    // The last byte of the address space is reachable (and faults in this port).
    assert_eq!(
        run(&mut dev, DMA_CMD_FILL, 0, u64::MAX - 0xf, 0x10, 0),
        STATUS_FAULT
    );
    assert_eq!(read64(&mut dev, REG_DMA_FAULT_IOVA), u64::MAX - 0xf);
    port.take();
    // Unknown commands.
    for cmd in [0, 4, 5, 0x101, u32::MAX] {
        assert_eq!(
            run(&mut dev, cmd, 0x1000, 0x1000, 0x10, 0),
            STATUS_BAD_COMMAND
        );
    }
    assert!(port.take().is_empty(), "no request for rejected commands");
    // A partial write of CMD runs nothing.
    let n = read32(&mut dev, REG_DMA_COMPLETIONS);
    dev.bar_write(REGS_BAR, REG_DMA_CMD, &[DMA_CMD_FILL as u8]);
    assert_eq!(read32(&mut dev, REG_DMA_COMPLETIONS), n);
    assert_eq!(n, 3 + 1 + 2 + 6 + 1 + 5);
    let mut expected = before;
    expected[0x1000..0x1010].fill(0);
    assert_eq!(snapshot(&mem, 0x1_0000), expected);
}

#[test]
fn maximum_length_copy_and_fill() {
    // Every IOVA aliases into 4 MiB of RAM, so 16 MiB transfers fit.
    let Rig { mut dev, mem, .. } = rig(Arc::new(AliasPort { window: 4 << 20 }), 4 << 20);
    enable_bme(&mut dev);
    write64(&mut dev, REG_DMA_PATTERN, 0xa1a2_a3a4_a5a6_a7a8);
    assert_eq!(
        run(&mut dev, DMA_CMD_FILL, 0, 0, DMA_MAX_LEN, 0),
        STATUS_DONE
    );
    assert_eq!(read64(&mut dev, REG_DMA_BYTES), DMA_MAX_LEN);
    let m = snapshot(&mem, 4 << 20);
    let pat = 0xa1a2_a3a4_a5a6_a7a8u64.to_le_bytes();
    assert!(m.iter().enumerate().all(|(i, &b)| b == pat[i % 8]));
    mem.write(0, &noise(4 << 20, 8)).unwrap();
    let before = snapshot(&mem, 4 << 20);
    // Source and destination alias the same RAM: the result must be what was read.
    assert_eq!(
        run(&mut dev, DMA_CMD_COPY, 0x1000, 0x100_0000, DMA_MAX_LEN, 0),
        STATUS_DONE
    );
    assert_eq!(read64(&mut dev, REG_DMA_BYTES), DMA_MAX_LEN);
    let after = snapshot(&mem, 4 << 20);
    // Destination byte k lands at RAM k mod 4 MiB and holds RAM (0x1000 + k) mod 4 MiB as read before any
    // write; the last pass (k = o + 12 MiB) wins.
    let w = 4usize << 20;
    assert!((0..w).all(|o| after[o] == before[(o + 0x1000) % w]));
}

#[test]
fn pasid_and_privilege_plumbing() {
    let port = Arc::new(PagePort::default().map(0x1000, 0x1000, Perms::RW));
    let Rig { mut dev, .. } = rig(port.clone(), 0x1_0000);
    enable_bme(&mut dev);
    write32(
        &mut dev,
        REG_DMA_PASID,
        DMA_PASID_VALID | 0x7ff0_0000 | 0x1_2345,
    );
    assert_eq!(
        read32(&mut dev, REG_DMA_PASID),
        DMA_PASID_VALID | 0x1_2345,
        "bits 30:20 read 0"
    );
    let pasids =
        |port: &PagePort| -> Vec<Option<u32>> { port.take().iter().map(|r| r.pasid).collect() };
    // PASID capability disabled: the valid PASID register is not used.
    assert_eq!(run(&mut dev, DMA_CMD_FILL, 0, 0x1000, 8, 0), STATUS_DONE);
    assert_eq!(pasids(&port), vec![None]);
    cfg_write(
        &mut dev,
        PASID_CAP_OFFSET + 6,
        &crate::ats::pasid_reg::CTRL_ENABLE.to_le_bytes(),
    );
    assert_eq!(run(&mut dev, DMA_CMD_FILL, 0, 0x1000, 8, 0), STATUS_DONE);
    assert_eq!(pasids(&port), vec![Some(0x1_2345)]);
    assert_eq!(
        run(
            &mut dev,
            DMA_CMD_COPY,
            0x1000,
            0x1800,
            8,
            DMA_FLAG_PRIVILEGED
        ),
        STATUS_DONE
    );
    let reqs = port.take();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.pasid == Some(0x1_2345)
        && !r.privileged
        && r.kind == RequestKind::Untranslated));
    assert_eq!(
        run(
            &mut dev,
            DMA_CMD_TRANSLATE,
            0,
            0x1000,
            0,
            DMA_FLAG_PRIVILEGED
        ),
        STATUS_DONE
    );
    let reqs = port.take();
    assert_eq!(
        reqs,
        vec![DmaRequest {
            source_id: 0x18,
            pasid: Some(0x1_2345),
            iova: 0x1000,
            access: Access::Read,
            privileged: true,
            kind: RequestKind::TranslationRequest,
        }]
    );
    // Valid bit clear: no PASID even though the capability is enabled.
    write32(&mut dev, REG_DMA_PASID, 0x1_2345);
    assert_eq!(run(&mut dev, DMA_CMD_FILL, 0, 0x1000, 8, 0), STATUS_DONE);
    assert_eq!(pasids(&port), vec![None]);
    // Any 20-bit PASID; then the capability disabled again.
    write32(&mut dev, REG_DMA_PASID, DMA_PASID_VALID | 0xf_ffff);
    assert_eq!(run(&mut dev, DMA_CMD_FILL, 0, 0x1000, 8, 0), STATUS_DONE);
    assert_eq!(pasids(&port), vec![Some(0xf_ffff)]);
    cfg_write(&mut dev, PASID_CAP_OFFSET + 6, &[0, 0]);
    assert_eq!(run(&mut dev, DMA_CMD_FILL, 0, 0x1000, 8, 0), STATUS_DONE);
    assert_eq!(pasids(&port), vec![None]);
}

#[test]
fn completion_interrupt_through_msi() {
    let Rig {
        mut dev, mem, sink, ..
    } = rig(Arc::new(IdentityPort), 0x1_0000);
    enable_bme(&mut dev);
    enable_msi(&mut dev, 1);
    let msg = MsiMessage {
        address: 0xfee0_0000,
        data: 0x30,
    };
    assert_eq!(
        run(&mut dev, DMA_CMD_FILL, 0, 0x100, 0x10, DMA_FLAG_IRQ),
        STATUS_DONE
    );
    assert_eq!(sink.take(), vec![msg]);
    assert_eq!(read32(&mut dev, REG_IRQ_LAST), IRQ_LAST_SENT);
    // No flag: no interrupt.
    assert_eq!(run(&mut dev, DMA_CMD_FILL, 0, 0x100, 0x10, 0), STATUS_DONE);
    assert!(sink.take().is_empty());
    // Failed and rejected commands complete too.
    let end = 0x1_0000 - 8;
    assert_eq!(
        run(&mut dev, DMA_CMD_FILL, 0, end, 0x10, DMA_FLAG_IRQ),
        STATUS_OUTSIDE_RAM
    );
    assert_eq!(run(&mut dev, 9, 0, 0, 0, DMA_FLAG_IRQ), STATUS_BAD_COMMAND);
    assert_eq!(sink.take(), vec![msg, msg]);
    let c = dev.irq_counters();
    assert_eq!((c.raised, c.sent, c.dropped), (3, 3, 0));
    assert_eq!(read32(&mut dev, REG_DMA_COMPLETIONS), 4);
    // Without bus mastering the completion interrupt cannot be written either.
    cfg_write(&mut dev, reg::COMMAND, &command::MEMORY_SPACE.to_le_bytes());
    assert_eq!(
        run(&mut dev, DMA_CMD_FILL, 0, 0x100, 0x10, DMA_FLAG_IRQ),
        STATUS_NO_BUS_MASTER
    );
    assert!(sink.take().is_empty());
    assert_eq!(read32(&mut dev, REG_IRQ_LAST), IRQ_LAST_BUS_MASTER_OFF);
    assert_eq!(read32(&mut dev, REG_IRQ_DROPPED), 1);
    let mut b = [0u8; 0x10];
    mem.read(0x100, &mut b).unwrap();
    assert_eq!(b, [0; 0x10]);
}

#[test]
fn completion_interrupt_through_msix() {
    let Rig { mut dev, sink, .. } = rig(Arc::new(IdentityPort), 0x1_0000);
    enable_bme(&mut dev);
    enable_msi(&mut dev, 0);
    let msix = dev.config().find_capability(id::MSIX).unwrap();
    cfg_write(&mut dev, msix + msix_reg::CONTROL, &0x8000u16.to_le_bytes());
    let t = u64::from(MSIX_TABLE_OFFSET);
    dev.bar_write(MSIX_BAR, t, &0xfee0_3000u64.to_le_bytes());
    dev.bar_write(MSIX_BAR, t + 8, &0x61u32.to_le_bytes());
    // Vector 0 still masked: latched, delivered on unmask.
    assert_eq!(
        run(&mut dev, DMA_CMD_COPY, 0, 0x100, 0x10, DMA_FLAG_IRQ),
        STATUS_DONE
    );
    assert!(sink.take().is_empty());
    assert_eq!(read32(&mut dev, REG_IRQ_LAST), IRQ_LAST_PENDING);
    dev.bar_write(MSIX_BAR, t + 12, &0u32.to_le_bytes());
    let msg = MsiMessage {
        address: 0xfee0_3000,
        data: 0x61,
    };
    assert_eq!(sink.take(), vec![msg]);
    assert_eq!(
        run(&mut dev, DMA_CMD_TRANSLATE, 0, 0x100, 0, DMA_FLAG_IRQ),
        STATUS_DONE
    );
    assert_eq!(sink.take(), vec![msg], "MSI-X preferred over MSI");
    let c = dev.irq_counters();
    assert_eq!((c.raised, c.sent, c.dropped), (2, 2, 0));
}

#[test]
fn register_access_rules() {
    let (mut d, _) = device();
    write64(&mut d, REG_DMA_SRC, 0x1122_3344_5566_7788);
    assert_eq!(read64(&mut d, REG_DMA_SRC), 0x1122_3344_5566_7788);
    assert_eq!(read32(&mut d, REG_DMA_SRC + 4), 0x1122_3344);
    // Two 4-byte writes, high half first.
    write32(&mut d, REG_DMA_DST + 4, 0xdead_beef);
    write32(&mut d, REG_DMA_DST, 0x0bad_f00d);
    assert_eq!(read64(&mut d, REG_DMA_DST), 0xdead_beef_0bad_f00d);
    write32(&mut d, REG_DMA_DST + 4, 0);
    assert_eq!(read64(&mut d, REG_DMA_DST), 0x0bad_f00d);
    // Partial writes of DMA registers are ignored.
    write64(&mut d, REG_DMA_LEN, 0x40);
    d.bar_write(REGS_BAR, REG_DMA_LEN, &[0xff, 0xff]);
    d.bar_write(REGS_BAR, REG_DMA_LEN + 5, &[0xff]);
    assert_eq!(read64(&mut d, REG_DMA_LEN), 0x40);
    // Unaligned reads return the addressed bytes.
    let mut b = [0u8; 3];
    d.bar_read(REGS_BAR, REG_DMA_SRC + 3, &mut b);
    assert_eq!(b, [0x55, 0x44, 0x33]);
    write32(&mut d, REG_DMA_FLAGS, u32::MAX);
    assert_eq!(read32(&mut d, REG_DMA_FLAGS), DMA_FLAGS_MASK);
    write64(&mut d, REG_DMA_PATTERN, u64::MAX);
    assert_eq!(read64(&mut d, REG_DMA_PATTERN), u64::MAX);
    // Read-only and write-only registers.
    for off in [
        REG_DMA_STATUS,
        REG_DMA_FAULT_IOVA,
        REG_DMA_FAULT_IOVA + 4,
        REG_DMA_FAULT_REASON,
        REG_DMA_FAULT_ACCESS,
        REG_DMA_XLATE_OUT,
        REG_DMA_XLATE_SIZE + 4,
        REG_DMA_XLATE_PERMS,
        REG_DMA_COMPLETIONS,
        REG_DMA_BYTES,
        DMA_REGS_END,
        0xffc,
    ] {
        write32(&mut d, off, 0x5a5a_5a5a);
        assert_eq!(read32(&mut d, off), 0, "{off:#x}");
    }
    assert_eq!(read32(&mut d, REG_DMA_CMD), 0);
    // An 8-byte write at FLAGS sets the flags and then runs the command in the high half.
    write64(&mut d, REG_DMA_LEN, 0);
    write64(
        &mut d,
        REG_DMA_FLAGS,
        u64::from(DMA_CMD_FILL) << 32 | u64::from(DMA_FLAG_PROBE_WRITE),
    );
    assert_eq!(read32(&mut d, REG_DMA_FLAGS), DMA_FLAG_PROBE_WRITE);
    assert_eq!(read32(&mut d, REG_DMA_COMPLETIONS), 1);
    assert_eq!(read32(&mut d, REG_DMA_STATUS), STATUS_NO_BUS_MASTER);
    assert_eq!(d.dma_registers().completions, 1);
}
