use super::desc::*;
use super::*;
use crate::capability::id;
use crate::config::{command, reg};
use crate::msi::{msi_reg, MsiMessage, RecordingSink};
use crate::msix::{msix_reg, ENTRY_SIZE};
use crate::test_device::testutil::{noise, PagePort, PAGE, RO};
use iommu::mem::TestMemory;
use iommu::{Access, DmaMemory, DmaPort, IdentityPort, Perms};

/// Requester id of 00:06.0.
const SOURCE_ID: u32 = 0x30;
const MSIX_ADDR: u64 = 0xfee0_0000;
const MSIX_DATA: u32 = 0x41;
const MSI_ADDR: u32 = 0xfee0_1000;
const MSI_DATA: u16 = 0x52;

/// Guest memory layout of the tests (1 MiB of RAM).
const RAM: usize = 1 << 20;
const COMPL: u64 = 0x8000;
const RING: u64 = 0x1_0000;
const SRC: u64 = 0x2_0000;
const DST: u64 = 0x4_0000;

struct Rig {
    dev: Ioat,
    sink: Arc<RecordingSink>,
    mem: Arc<TestMemory>,
}

fn rig(port: Arc<dyn DmaPort>) -> Rig {
    let sink = Arc::new(RecordingSink::default());
    let mem = Arc::new(TestMemory::new(RAM));
    let dma = DmaAccessor::new(port, mem.clone(), SOURCE_ID);
    let dev = Ioat::new(sink.clone(), dma).unwrap();
    Rig { dev, sink, mem }
}

fn cfg_write(d: &mut Ioat, off: usize, data: &[u8]) {
    d.config_write(off / 4, off % 4, data);
}

fn cfg_read32(d: &mut Ioat, off: usize) -> u32 {
    let mut b = [0u8; 4];
    d.config_read(off / 4, off % 4, &mut b);
    u32::from_le_bytes(b)
}

fn read(d: &mut Ioat, off: u64, len: usize) -> u64 {
    let mut b = [0u8; 8];
    d.bar_read(REGS_BAR, off, &mut b[..len]);
    u64::from_le_bytes(b)
}

fn write(d: &mut Ioat, off: u64, len: usize, v: u64) {
    d.bar_write(REGS_BAR, off, &v.to_le_bytes()[..len]);
}

/// Channel 0 register `reg`.
fn ch(reg: u64) -> u64 {
    channel_reg(0, reg)
}

fn chansts(d: &mut Ioat) -> u64 {
    read(d, ch(CH_CHANSTS), 8)
}

fn status(d: &mut Ioat) -> u64 {
    chansts(d) & CHANSTS_STATUS
}

fn chanerr(d: &mut Ioat) -> u32 {
    read(d, ch(CH_CHANERR), 4) as u32
}

fn enable_bme(d: &mut Ioat) {
    cfg_write(
        d,
        reg::COMMAND,
        &(command::MEMORY_SPACE | command::BUS_MASTER).to_le_bytes(),
    );
}

fn msix_cap(d: &Ioat) -> usize {
    d.config().find_capability(id::MSIX).unwrap()
}

/// Programs MSI-X entry 0 and enables MSI-X (as `pci_enable_msix_exact` + `request_irq` leave it).
fn enable_msix(d: &mut Ioat) {
    let t = u64::from(MSIX_TABLE_OFFSET);
    write(d, t, 8, MSIX_ADDR);
    write(d, t + 8, 4, u64::from(MSIX_DATA));
    write(d, t + 12, 4, 0);
    let cap = msix_cap(d);
    cfg_write(d, cap + msix_reg::CONTROL, &0x8000u16.to_le_bytes());
}

fn enable_msi(d: &mut Ioat) {
    let msi = d.config().find_capability(id::MSI).unwrap();
    cfg_write(d, msi + msi_reg::ADDRESS_LO, &MSI_ADDR.to_le_bytes());
    cfg_write(d, msi + msi_reg::DATA, &MSI_DATA.to_le_bytes());
    cfg_write(d, msi + msi_reg::CONTROL, &1u16.to_le_bytes());
}

fn msix_msg() -> MsiMessage {
    MsiMessage {
        address: MSIX_ADDR,
        data: MSIX_DATA,
    }
}

fn msi_msg() -> MsiMessage {
    MsiMessage {
        address: u64::from(MSI_ADDR),
        data: u32::from(MSI_DATA),
    }
}

/// `ioat_reset_hw` for a version 3.2 device (what Linux makes of SKX): quiesce, clear CHANERR and the config
/// mirror, reset and wait for the reset bit to clear.
fn linux_reset_hw(d: &mut Ioat) {
    let s = status(d);
    if s == CHANSTS_ACTIVE || s == CHANSTS_DONE {
        write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_SUSPEND));
        let s = status(d);
        assert!(s != CHANSTS_ACTIVE && s != CHANSTS_DONE, "quiesce: {s}");
    }
    let e = chanerr(d);
    write(d, ch(CH_CHANERR), 4, u64::from(e));
    let e = cfg_read32(d, CFG_CHANERR_INT);
    cfg_write(d, CFG_CHANERR_INT, &e.to_le_bytes());
    write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_RESET));
    assert_eq!(
        read(d, ch(CH_CHANCMD), 1) as u8 & CHANCMD_RESET,
        0,
        "reset completes at once"
    );
}

/// The state after Linux's probe: BME, channel reset, MSI-X with INTRCTRL = MSIX_VECTOR_CONTROL | MASTER_INT_EN.
fn linux_probed(port: Arc<dyn DmaPort>) -> Rig {
    let mut r = rig(port);
    enable_bme(&mut r.dev);
    assert_eq!(read(&mut r.dev, REG_CBVER, 1), 0x33);
    assert_eq!(read(&mut r.dev, REG_CHANCNT, 1) & 0x1f, 1);
    linux_reset_hw(&mut r.dev);
    enable_msix(&mut r.dev);
    write(
        &mut r.dev,
        REG_INTRCTRL,
        1,
        u64::from(INTRCTRL_MSIX_VECTOR_CONTROL | INTRCTRL_MASTER_INT_EN),
    );
    r
}

fn put_desc(mem: &TestMemory, at: u64, d: &Descriptor) {
    mem.write(at, &d.to_bytes()).unwrap();
}

fn copy_desc(src: u64, dst: u64, len: u32, flags: u32, next: u64) -> Descriptor {
    Descriptor {
        size: len,
        ctl: ctl(OP_COPY, flags),
        src,
        dst,
        next,
    }
}

fn null_desc(flags: u32, next: u64) -> Descriptor {
    Descriptor {
        size: 1,
        ctl: ctl(OP_COPY, CTL_NULL | flags),
        src: 0,
        dst: 0,
        next,
    }
}

/// Points CHANCMP at `COMPL` and CHAINADDR at `chain` with two 32-bit writes each, as Linux does.
fn load_chain(d: &mut Ioat, chain: u64) {
    write(d, ch(CH_CHANCMP), 4, COMPL & 0xffff_ffff);
    write(d, ch(CH_CHANCMP) + 4, 4, COMPL >> 32);
    write(d, ch(CH_CHAINADDR), 4, chain & 0xffff_ffff);
    write(d, ch(CH_CHAINADDR) + 4, 4, chain >> 32);
}

fn doorbell(d: &mut Ioat, count: u16) {
    write(d, ch(CH_DMACOUNT), 2, u64::from(count));
}

fn completion(mem: &TestMemory) -> u64 {
    let mut b = [0u8; 8];
    mem.read(COMPL, &mut b).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn identity_capabilities_and_general_registers() {
    let mut r = rig(Arc::new(IdentityPort));
    let d = &mut r.dev;
    let c = d.config();
    assert_eq!((c.vendor_id(), c.device_id()), (0x8086, 0x2021));
    assert_eq!(c.class_code(), 0x08_8000);
    assert_eq!(c.read_u8(reg::REVISION_ID), 4);
    assert_eq!(c.read_u8(reg::INTERRUPT_PIN), 0);
    assert!(d.has_msi());
    assert_eq!(d.msix_vectors(), 1, "one MSI-X vector per channel");
    let bars = d.bars();
    assert_eq!(bars.len(), 1);
    assert_eq!(
        (
            bars[0].index,
            bars[0].bar_type,
            bars[0].size,
            bars[0].prefetchable
        ),
        (0, BarType::Mem64, 0x4000, false)
    );
    let pcie = c.find_capability(id::PCI_EXPRESS).unwrap();
    assert_eq!(c.read_u16(pcie + 2) >> 4 & 0xf, 0x9, "RCiEP");
    assert!(c.find_capability(id::POWER_MANAGEMENT).is_some());
    let msix = msix_cap(d);
    assert_eq!(c.read_u32(msix + msix_reg::TABLE), 0x2000);
    assert_eq!(c.read_u32(msix + msix_reg::PBA), 0x3000);
    // No extended capability list: Linux must not find AER/ATS/PASID here.
    assert_eq!(c.read_u32(0x100), 0);

    assert_eq!(read(d, REG_CHANCNT, 1), 1);
    assert_eq!(read(d, REG_XFERCAP, 1), 12);
    assert_eq!(read(d, REG_CBVER, 1), 0x33);
    assert_eq!(read(d, REG_PERPORTOFFSET, 2), 0x80);
    assert_eq!(read(d, REG_CSSTATUS, 2), 0);
    let cap = read(d, REG_DMACAPABILITY, 4) as u32;
    assert_eq!(cap & (CAP_DCA | CAP_XOR | CAP_PQ), 0, "memcpy only");
    assert_eq!(read(d, REG_DCAOFFSET, 2), 0, "no DCA registers");
    assert_eq!(read(d, REG_INTRCTRL, 1), 0);
    assert_eq!(read(d, ch(CH_DMACOMP), 2), u64::from(DMA_COMP_V2));
    // One qword read of the first eight bytes: CHANCNT, XFERCAP, GENCTRL, INTRCTRL, ATTNSTATUS.
    assert_eq!(read(d, 0, 8), 0x0c01);
    // Read-only registers ignore writes.
    for (off, len) in [
        (REG_CHANCNT, 1),
        (REG_XFERCAP, 1),
        (REG_CBVER, 1),
        (REG_DMACAPABILITY, 4),
        (REG_DCAOFFSET, 2),
    ] {
        let before = read(d, off, len);
        write(d, off, len, u64::MAX);
        assert_eq!(read(d, off, len), before, "{off:#x}");
    }
    // GENCTRL and INTRDELAY keep their writable bits only; COALESCE_SUPPORT reads 0.
    write(d, REG_GENCTRL, 1, 0xff);
    assert_eq!(read(d, REG_GENCTRL, 1), 1);
    write(d, REG_INTRDELAY, 2, 0xffff);
    assert_eq!(read(d, REG_INTRDELAY, 2), 0x3fff);
}

#[test]
fn register_offsets_are_registers_h() {
    // drivers/dma/ioat/registers.h, channel registers relative to reg_base + 0x80 * (idx + 1).
    assert_eq!(ch(CH_CHANCTRL), 0x80);
    assert_eq!(ch(CH_CHANCMD), 0x84);
    assert_eq!(ch(CH_DMACOUNT), 0x86);
    assert_eq!(ch(CH_CHANSTS), 0x88);
    assert_eq!(ch(CH_CHAINADDR), 0x90);
    assert_eq!(ch(CH_CHANCMP), 0x98);
    assert_eq!(ch(CH_CDAR), 0xa0);
    assert_eq!(ch(CH_CHANERR), 0xa8);
    assert_eq!(ch(CH_CHANERRMSK), 0xac);
    assert_eq!(ch(CH_DCACTRL), 0xb0);
    assert_eq!(CHANCTRL_RUN, 0x1d);
    assert_eq!((CFG_CHANERR_INT, CFG_DMAUNCERRSTS), (0x180, 0x148));
}

#[test]
fn power_on_state_and_reset_handshake() {
    let mut r = rig(Arc::new(IdentityPort));
    let d = &mut r.dev;
    assert_eq!(chansts(d), CHANSTS_HALTED, "halted, completed address 0");
    enable_bme(d);
    // Make the channel dirty: a completed chain, registers, a pending error bit.
    put_desc(&r.mem, RING, &null_desc(CTL_COMPL_WRITE, RING));
    load_chain(d, RING);
    write(d, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_ERR_INT_EN));
    write(d, ch(CH_CHANERRMSK), 4, 0x55);
    write(d, ch(CH_DCACTRL), 4, 0xffff_ffff);
    doorbell(d, 3);
    assert_eq!(chansts(d), RING | CHANSTS_DONE);
    // Linux's reset handshake: RESET, poll until the bit clears; the selftest then expects HALTED.
    write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_RESET));
    assert_eq!(read(d, ch(CH_CHANCMD), 1), 0);
    assert_eq!(chansts(d), CHANSTS_HALTED);
    for (reg, len) in [
        (CH_CHANCTRL, 2),
        (CH_DMACOUNT, 2),
        (CH_CHAINADDR, 8),
        (CH_CHANCMP, 8),
        (CH_CDAR, 8),
        (CH_CHANERR, 4),
        (CH_CHANERRMSK, 4),
        (CH_DCACTRL, 4),
    ] {
        assert_eq!(read(d, ch(reg), len), 0, "{reg:#x}");
    }
    // After the reset the descriptor counter starts again at 0: DMACOUNT 1 runs exactly one descriptor.
    let before = d.stats().descriptors;
    load_chain(d, RING);
    assert_eq!(status(d), CHANSTS_ARMED);
    doorbell(d, 1);
    assert_eq!(d.stats().descriptors, before + 1);
}

#[test]
fn linux_probe_self_test_and_free() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    let d = &mut r.dev;
    // ioat_alloc_chan_resources: CHANCTRL RUN, CHANCMP (two writel), then ioat_start_null_desc.
    write(d, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_RUN));
    let ring: Vec<u64> = (0..4).map(|i| RING + 64 * i).collect();
    for (i, &a) in ring.iter().enumerate() {
        put_desc(
            &r.mem,
            a,
            &null_desc(0, ring[(i + 1) % ring.len()]), // linked ring, contents filled in below
        );
    }
    put_desc(
        &r.mem,
        ring[0],
        &null_desc(CTL_INT_EN | CTL_COMPL_WRITE, ring[1]),
    );
    load_chain(d, ring[0]);
    doorbell(d, 1);
    // "check that we got off the ground": active or idle.
    assert_eq!(chansts(d), ring[0] | CHANSTS_DONE);
    assert_eq!(completion(&r.mem), ring[0] | CHANSTS_DONE);
    assert_eq!(r.sink.take(), vec![msix_msg()]);
    assert_eq!(
        read(d, ch(CH_CHANCTRL), 2) & 1,
        1,
        "disarmed until re-armed"
    );
    // The tasklet: cleanup, then CHANCTRL RUN again.
    write(d, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_RUN));
    assert_eq!(read(d, ch(CH_CHANCTRL), 2), u64::from(CHANCTRL_RUN & !1));

    // The self-test memcpy: 2000 bytes, DMA_PREP_INTERRUPT.
    let data = noise(2000, 9);
    r.mem.write(SRC, &data).unwrap();
    put_desc(
        &r.mem,
        ring[1],
        &copy_desc(SRC, DST, 2000, CTL_INT_EN | CTL_COMPL_WRITE, ring[2]),
    );
    doorbell(d, 2);
    let mut got = vec![0u8; 2000];
    r.mem.read(DST, &mut got).unwrap();
    assert_eq!(got, data);
    assert_eq!(completion(&r.mem), ring[1] | CHANSTS_DONE);
    assert_eq!(r.sink.take(), vec![msix_msg()]);
    write(d, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_RUN));

    // ioat_free_chan_resources -> ioat_reset_hw: quiesce (SUSPEND from DONE), then reset.
    linux_reset_hw(d);
    assert_eq!(chansts(d), CHANSTS_HALTED);
    assert!(r.sink.take().is_empty());
    assert_eq!(cfg_read32(d, CFG_CHANERR_INT), 0);
    let s = d.stats();
    assert_eq!((s.descriptors, s.bytes_copied), (2, 2000));
    assert_eq!((s.irqs_sent, s.irqs_dropped, s.channel_errors), (2, 0, 0));
}

#[test]
fn single_copy_of_xfercap_bytes() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    let data = noise(MAX_TRANSFER as usize, 1);
    r.mem.write(SRC + 3, &data).unwrap();
    put_desc(
        &r.mem,
        RING,
        &copy_desc(SRC + 3, DST + 5, MAX_TRANSFER, CTL_COMPL_WRITE, RING + 64),
    );
    load_chain(&mut r.dev, RING);
    doorbell(&mut r.dev, 1);
    let mut got = vec![0u8; data.len() + 2];
    r.mem.read(DST + 4, &mut got).unwrap();
    assert_eq!(got[0], 0, "byte before untouched");
    assert_eq!(&got[1..=data.len()], &data[..]);
    assert_eq!(got[data.len() + 1], 0, "byte after untouched");
    assert_eq!(chansts(&mut r.dev), RING | CHANSTS_DONE);
    assert_eq!(read(&mut r.dev, ch(CH_CDAR), 8), RING);
    assert!(r.sink.take().is_empty(), "no int_en, no interrupt");
}

#[test]
fn chained_copies_wrap_the_ring_and_dmacount() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    // A 4-entry ring of NULL descriptors linked in a circle.
    let ring: Vec<u64> = (0..4).map(|i| RING + 64 * i).collect();
    for (i, &a) in ring.iter().enumerate() {
        put_desc(&r.mem, a, &null_desc(0, ring[(i + 1) % 4]));
    }
    load_chain(&mut r.dev, ring[0]);
    // 65534 descriptors in one doorbell: around the ring 16383.5 times.
    doorbell(&mut r.dev, 65534);
    assert_eq!(chansts(&mut r.dev), ring[1] | CHANSTS_DONE);
    assert_eq!(r.dev.stats().descriptors, 65534);
    // Now real copies in the next four slots; DMACOUNT wraps from 65534 to 2.
    let data = noise(4 * 100, 4);
    r.mem.write(SRC, &data).unwrap();
    for k in 0..4u64 {
        let slot = ring[((2 + k) % 4) as usize];
        put_desc(
            &r.mem,
            slot,
            &copy_desc(
                SRC + 100 * k,
                DST + 100 * k,
                100,
                CTL_COMPL_WRITE,
                ring[((3 + k) % 4) as usize],
            ),
        );
    }
    doorbell(&mut r.dev, 2);
    let mut got = vec![0u8; 400];
    r.mem.read(DST, &mut got).unwrap();
    assert_eq!(got, data);
    assert_eq!(chansts(&mut r.dev), ring[1] | CHANSTS_DONE);
    assert_eq!(completion(&r.mem), ring[1] | CHANSTS_DONE);
    assert_eq!(r.dev.stats().descriptors, 65538);
    // The same DMACOUNT again releases nothing.
    doorbell(&mut r.dev, 2);
    assert_eq!(r.dev.stats().descriptors, 65538);
}

#[test]
fn null_descriptor_moves_nothing() {
    // Only the ring and the completion page are mapped: any data access would fault.
    let port = PagePort::default().map(RING, RING, Perms::RW).map(
        COMPL & !(PAGE - 1),
        COMPL & !(PAGE - 1),
        Perms::RW,
    );
    let port = Arc::new(port);
    let mut r = linux_probed(port.clone());
    write(&mut r.dev, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_RUN));
    let mut d = null_desc(CTL_INT_EN | CTL_COMPL_WRITE, RING + 64);
    d.src = 0xdead_0000;
    d.dst = 0xbeef_0000;
    d.size = 0;
    put_desc(&r.mem, RING, &d);
    load_chain(&mut r.dev, RING);
    port.take();
    doorbell(&mut r.dev, 1);
    assert_eq!(chansts(&mut r.dev), RING | CHANSTS_DONE);
    assert_eq!(completion(&r.mem), RING | CHANSTS_DONE);
    assert_eq!(r.sink.take(), vec![msix_msg()]);
    let reqs = port.take();
    assert_eq!(
        reqs.len(),
        2,
        "descriptor fetch and completion write: {reqs:?}"
    );
    assert!(reqs.iter().all(|q| q.source_id == SOURCE_ID));
    assert_eq!((reqs[0].iova, reqs[0].access), (RING, Access::Read));
    assert_eq!((reqs[1].iova, reqs[1].access), (COMPL, Access::Write));
}

#[test]
fn completion_write_back_contents() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    // desc0 writes its completion (ACTIVE: more descriptors follow); desc1 copies that value away, then
    // writes its own completion (DONE: last released descriptor).
    put_desc(&r.mem, RING, &null_desc(CTL_COMPL_WRITE, RING + 64));
    put_desc(
        &r.mem,
        RING + 64,
        &copy_desc(COMPL, DST, 8, CTL_COMPL_WRITE, RING + 128),
    );
    load_chain(&mut r.dev, RING);
    doorbell(&mut r.dev, 2);
    let mut first = [0u8; 8];
    r.mem.read(DST, &mut first).unwrap();
    assert_eq!(u64::from_le_bytes(first), RING | CHANSTS_ACTIVE);
    assert_eq!(completion(&r.mem), (RING + 64) | CHANSTS_DONE);
    assert_eq!(r.dev.stats().completion_writes, 2);
    // Without compl_write nothing is written.
    r.mem.write(COMPL, &[0; 8]).unwrap();
    put_desc(&r.mem, RING + 128, &null_desc(0, RING));
    doorbell(&mut r.dev, 3);
    assert_eq!(completion(&r.mem), 0);
    assert_eq!(chansts(&mut r.dev), (RING + 128) | CHANSTS_DONE);
}

#[test]
fn msix_vector_mask_latches_and_unmask_delivers() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    let d = &mut r.dev;
    put_desc(&r.mem, RING, &null_desc(CTL_INT_EN, RING));
    load_chain(d, RING);
    // Mask vector 0: the interrupt is latched in the PBA.
    let t = u64::from(MSIX_TABLE_OFFSET);
    write(d, t + 12, 4, 1);
    doorbell(d, 1);
    assert!(r.sink.take().is_empty());
    assert_eq!(read(d, u64::from(MSIX_PBA_OFFSET), 8), 1);
    write(d, t + 12, 4, 0);
    assert_eq!(r.sink.take(), vec![msix_msg()]);
    assert_eq!(read(d, u64::from(MSIX_PBA_OFFSET), 8), 0);
    // Function mask: the same through the capability.
    write(d, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_INT_REARM));
    let cap = msix_cap(d);
    cfg_write(d, cap + msix_reg::CONTROL, &0xc000u16.to_le_bytes());
    doorbell(d, 2);
    assert!(r.sink.take().is_empty());
    cfg_write(d, cap + msix_reg::CONTROL, &0x8000u16.to_le_bytes());
    assert_eq!(r.sink.take(), vec![msix_msg()]);
    let s = d.stats();
    assert_eq!((s.irqs_sent, s.irqs_latched, s.irqs_dropped), (2, 2, 0));
    // Table bytes: address, data, mask as written; the PBA is read-only.
    assert_eq!(read(d, t, 8), MSIX_ADDR);
    assert_eq!(read(d, t + 8, 4), u64::from(MSIX_DATA));
    write(d, u64::from(MSIX_PBA_OFFSET), 8, u64::MAX);
    assert_eq!(read(d, u64::from(MSIX_PBA_OFFSET), 8), 0);
    assert_eq!(ENTRY_SIZE, 16);
}

#[test]
fn interrupt_rearm_protocol() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    let d = &mut r.dev;
    for i in 0..3 {
        put_desc(
            &r.mem,
            RING + 64 * i,
            &null_desc(CTL_INT_EN, RING + 64 * (i + 1)),
        );
    }
    load_chain(d, RING);
    doorbell(d, 1);
    assert_eq!(r.sink.take().len(), 1);
    // Not re-armed: the next completions are remembered, not signalled...
    doorbell(d, 2);
    doorbell(d, 3);
    assert!(r.sink.take().is_empty());
    assert_eq!(read(d, ch(CH_CHANCTRL), 2) & 1, 1);
    // ...and signalled once at the re-arm.
    write(d, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_INT_REARM));
    assert_eq!(r.sink.take(), vec![msix_msg()]);
    assert_eq!(
        read(d, ch(CH_CHANCTRL), 2) & 1,
        1,
        "that signal disarmed it again"
    );
    write(d, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_INT_REARM));
    assert!(r.sink.take().is_empty(), "nothing left to signal");
    assert_eq!(read(d, ch(CH_CHANCTRL), 2) & 1, 0);
    // Writing 0 to bit 0 does not re-arm.
    put_desc(&r.mem, RING + 192, &null_desc(CTL_INT_EN, RING));
    doorbell(d, 4);
    assert_eq!(r.sink.take().len(), 1);
    write(d, ch(CH_CHANCTRL), 2, 0);
    assert_eq!(read(d, ch(CH_CHANCTRL), 2) & 1, 1);
}

#[test]
fn msi_mode_attnstatus_and_master_enable() {
    // ioat_interrupt_style=msi: MSI, INTRCTRL = MASTER_INT_EN, the single-vector handler.
    let mut r = rig(Arc::new(IdentityPort));
    let d = &mut r.dev;
    enable_bme(d);
    linux_reset_hw(d);
    enable_msi(d);
    write(d, REG_INTRCTRL, 1, u64::from(INTRCTRL_MASTER_INT_EN));
    write(d, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_RUN));
    put_desc(&r.mem, RING, &null_desc(CTL_INT_EN, RING + 64));
    put_desc(&r.mem, RING + 64, &null_desc(CTL_INT_EN, RING));
    load_chain(d, RING);
    doorbell(d, 1);
    assert_eq!(r.sink.take(), vec![msi_msg()]);
    // ioat_dma_do_interrupt: INTRCTRL shows INT_STATUS and INT, ATTNSTATUS has bit 0 and clears on read.
    let intrctrl = read(d, REG_INTRCTRL, 1) as u8;
    assert_eq!(
        intrctrl,
        INTRCTRL_MASTER_INT_EN | INTRCTRL_INT_STATUS | INTRCTRL_INT
    );
    assert_eq!(read(d, REG_ATTNSTATUS, 4), 1);
    assert_eq!(read(d, REG_ATTNSTATUS, 4), 0);
    write(d, REG_INTRCTRL, 1, u64::from(intrctrl));
    assert_eq!(read(d, REG_INTRCTRL, 1) as u8, INTRCTRL_MASTER_INT_EN);
    write(d, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_RUN));
    // Master enable off: the channel's signal goes nowhere (counted as dropped) but ATTNSTATUS records it.
    write(d, REG_INTRCTRL, 1, 0);
    doorbell(d, 2);
    assert!(r.sink.take().is_empty());
    assert_eq!(read(d, REG_INTRCTRL, 1) as u8, INTRCTRL_INT_STATUS);
    assert_eq!(d.stats().irqs_dropped, 1);
}

#[test]
fn vfio_selftest_driver_sequence() {
    // tools/testing/selftests/vfio/lib/drivers/ioat/ioat.c against a 2 MiB driver region.
    let mut port = PagePort::default();
    for p in 0..(RAM as u64 / PAGE) {
        port = port.map(p * PAGE, p * PAGE, Perms::RW);
    }
    let mut r = rig(Arc::new(port));
    let d = &mut r.dev;
    // ioat_init: COMMAND = MEMORY | MASTER | INTX_DISABLE, ioat_reset, INTRCTRL = MSIX_VECTOR_CONTROL only.
    cfg_write(
        d,
        reg::COMMAND,
        &(command::MEMORY_SPACE | command::BUS_MASTER | command::INTX_DISABLE).to_le_bytes(),
    );
    let selftest_reset = |d: &mut Ioat| {
        let e = cfg_read32(d, CFG_CHANERR_INT);
        cfg_write(d, CFG_CHANERR_INT, &e.to_le_bytes());
        let e = cfg_read32(d, CFG_DMAUNCERRSTS);
        cfg_write(d, CFG_CHANERR_INT, &e.to_le_bytes());
        let e = chanerr(d);
        write(d, ch(CH_CHANERR), 4, u64::from(e));
        write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_RESET));
        assert_eq!(read(d, ch(CH_CHANCMD), 1) as u8 & CHANCMD_RESET, 0);
        assert_eq!(status(d), CHANSTS_HALTED);
    };
    selftest_reset(d);
    write(d, REG_INTRCTRL, 1, u64::from(INTRCTRL_MSIX_VECTOR_CONTROL));
    enable_msix(d);
    let max = 1u64 << read(d, REG_XFERCAP, 1);
    assert_eq!(max, 4096);
    let desc_iova = RING;
    // __ioat_memcpy_start + ioat_memcpy_wait.
    let memcpy =
        |d: &mut Ioat, mem: &TestMemory, src: u64, dst: u64, size: u64, count: u16, irq: bool| {
            let flags = if irq { CTL_INT_EN } else { 0 };
            put_desc(
                mem,
                desc_iova,
                &copy_desc(src, dst, size as u32, flags, desc_iova),
            );
            write(d, ch(CH_CHAINADDR), 8, desc_iova);
            write(
                d,
                ch(CH_CHANCTRL),
                2,
                u64::from(CHANCTRL_INT_REARM | CHANCTRL_ANY_ERR_ABORT_EN),
            );
            write(d, ch(CH_DMACOUNT), 2, u64::from(count));
            let s = status(d);
            if s == CHANSTS_HALTED {
                return Err(chanerr(d));
            }
            assert_eq!(s, CHANSTS_DONE);
            write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_SUSPEND));
            assert_eq!(status(d), CHANSTS_SUSPENDED);
            Ok(())
        };
    // memcpy_success: 4 * max bytes in max-sized chunks, count 1 each time.
    let size = 4 * max;
    let data = noise(size as usize, 2);
    r.mem.write(SRC, &data).unwrap();
    for off in (0..size).step_by(max as usize) {
        memcpy(d, &r.mem, SRC + off, DST + off, max, 1, false).unwrap();
    }
    let mut got = vec![0u8; size as usize];
    r.mem.read(DST, &mut got).unwrap();
    assert_eq!(got, data);
    assert!(r.sink.take().is_empty(), "ASSERT_NO_MSI");
    // send_msi: an 8-byte copy with int_en -> exactly one message on vector 0.
    memcpy(d, &r.mem, COMPL, COMPL + 8, 8, 1, true).unwrap();
    assert_eq!(r.sink.take(), vec![msix_msg()]);
    // memcpy from an unmapped IOVA: HALTED with a read data error, no interrupt (no ERR_INT_EN).
    let unmapped = 0x4000_0000;
    assert_eq!(
        memcpy(d, &r.mem, unmapped, DST, max, 1, false),
        Err(CHANERR_READ_DATA)
    );
    assert_eq!(cfg_read32(d, CFG_CHANERR_INT), CHANERR_READ_DATA);
    assert!(r.sink.take().is_empty());
    selftest_reset(d);
    assert_eq!(cfg_read32(d, CFG_CHANERR_INT), 0);
    // ... and to an unmapped IOVA: a write data error.
    assert_eq!(
        memcpy(d, &r.mem, SRC, unmapped, max, 1, false),
        Err(CHANERR_WRITE_DATA)
    );
    selftest_reset(d);
    // mix_and_match goes on working after the resets, send_msi included.
    memcpy(d, &r.mem, SRC, DST, max, 1, false).unwrap();
    memcpy(d, &r.mem, COMPL, COMPL + 8, 8, 1, true).unwrap();
    assert_eq!(r.sink.take(), vec![msix_msg()]);
    // memcpy_storm: max_memcpy_count (65535) copies of max_memcpy_size through the self-linked descriptor.
    let before = d.stats().descriptors;
    memcpy(d, &r.mem, SRC, DST, max, u16::MAX, false).unwrap();
    assert_eq!(d.stats().descriptors - before, 65535);
    assert!(r.sink.take().is_empty());
    // ioat_remove: reset.
    selftest_reset(d);
}

/// One error case: how to provoke it and what the channel must report.
struct ErrorCase {
    name: &'static str,
    /// CHANERR (and CHANERR_INT) afterwards.
    bits: u32,
    /// CHANSTS address afterwards: the last completed descriptor (0: none since the reset).
    completed: u64,
    /// Whether the error completion write-back and the error MSI-X message can happen (not with BME off).
    bus_master: bool,
    /// Sets up memory / registers and returns (chain address, descriptors to release).
    setup: fn(&mut Rig) -> (u64, u16),
}

fn one_copy(r: &mut Rig, d: Descriptor) -> (u64, u16) {
    put_desc(&r.mem, RING, &d);
    (RING, 1)
}

/// A good first descriptor, then `d`: CHANSTS must still name the first one after the error.
fn second_bad(r: &mut Rig, d: Descriptor) -> (u64, u16) {
    put_desc(&r.mem, RING, &copy_desc(SRC, DST, 16, 0, RING + 64));
    put_desc(&r.mem, RING + 64, &d);
    (RING, 2)
}

const fn case(
    name: &'static str,
    bits: u32,
    completed: u64,
    setup: fn(&mut Rig) -> (u64, u16),
) -> ErrorCase {
    ErrorCase {
        name,
        bits,
        completed,
        bus_master: true,
        setup,
    }
}

const ERROR_CASES: &[ErrorCase] = &[
    case("unknown op", CHANERR_CONTROL, RING, |r| {
        second_bad(
            r,
            Descriptor {
                ctl: ctl(OP_XOR, 0),
                ..copy_desc(SRC, DST, 64, 0, RING)
            },
        )
    }),
    case(
        "page break without the capability",
        CHANERR_CONTROL,
        0,
        |r| one_copy(r, copy_desc(SRC, DST, 64, CTL_SRC_BRK, RING)),
    ),
    case("size 0", CHANERR_LENGTH, RING, |r| {
        second_bad(r, copy_desc(SRC, DST, 0, 0, RING))
    }),
    case("size above XFERCAP", CHANERR_LENGTH, 0, |r| {
        one_copy(r, copy_desc(SRC, DST, MAX_TRANSFER + 1, 0, RING))
    }),
    case("huge size", CHANERR_LENGTH, 0, |r| {
        one_copy(r, copy_desc(SRC, DST, u32::MAX, 0, RING))
    }),
    case("misaligned next", CHANERR_NEXT_DESC_ALIGN, RING, |r| {
        put_desc(&r.mem, RING, &copy_desc(SRC, DST, 16, 0, RING + 65));
        (RING, 2)
    }),
    case("misaligned CHAINADDR", CHANERR_CHAIN_ADDR_VALUE, 0, |r| {
        put_desc(&r.mem, RING, &copy_desc(SRC, DST, 16, 0, RING));
        (RING + 8, 1)
    }),
    case("source wraps", CHANERR_SRC_ADDR, 0, |r| {
        one_copy(r, copy_desc(u64::MAX - 7, DST, 16, 0, RING))
    }),
    case("destination wraps", CHANERR_DEST_ADDR, RING, |r| {
        second_bad(r, copy_desc(SRC, u64::MAX, 2, 0, RING))
    }),
    case("source outside RAM", CHANERR_READ_DATA, RING, |r| {
        second_bad(r, copy_desc(RAM as u64 - 8, DST, 16, 0, RING))
    }),
    case("destination outside RAM", CHANERR_WRITE_DATA, 0, |r| {
        one_copy(r, copy_desc(SRC, 1 << 40, 16, 0, RING))
    }),
    case("descriptor outside RAM", CHANERR_NEXT_ADDR, RING, |r| {
        put_desc(&r.mem, RING, &copy_desc(SRC, DST, 16, 0, 1 << 40));
        (RING, 2)
    }),
    // The copy completes; its completion write cannot happen, nor can the error's.
    case("misaligned CHANCMP", CHANERR_COMPLETION_ADDR, RING, |r| {
        write(&mut r.dev, ch(CH_CHANCMP), 8, COMPL + 4);
        one_copy(r, copy_desc(SRC, DST, 16, CTL_COMPL_WRITE, RING))
    }),
    ErrorCase {
        name: "bus mastering off",
        bits: CHANERR_NEXT_ADDR | CHANERR_COMPLETION_ADDR,
        completed: 0,
        bus_master: false,
        setup: |r| {
            cfg_write(
                &mut r.dev,
                reg::COMMAND,
                &command::MEMORY_SPACE.to_le_bytes(),
            );
            one_copy(r, copy_desc(SRC, DST, 16, 0, RING))
        },
    },
];

#[test]
fn each_error_sets_its_bit_halts_mirrors_and_interrupts() {
    for case in ERROR_CASES {
        let mut r = linux_probed(Arc::new(IdentityPort));
        write(&mut r.dev, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_RUN));
        write(&mut r.dev, ch(CH_CHANCMP), 8, COMPL);
        r.mem.write(COMPL, &[0xaa; 8]).unwrap();
        let (chain, count) = (case.setup)(&mut r);
        write(&mut r.dev, ch(CH_CHAINADDR), 8, chain);
        doorbell(&mut r.dev, count);
        let d = &mut r.dev;
        let (name, bits) = (case.name, case.bits);
        assert_eq!(chansts(d), case.completed | CHANSTS_HALTED, "{name}");
        assert_eq!(chanerr(d), bits, "{name}");
        assert_eq!(
            cfg_read32(d, CFG_CHANERR_INT),
            bits,
            "{name}: config mirror"
        );
        assert_eq!(d.stats().channel_errors, 1, "{name}");
        if case.bus_master {
            assert_eq!(r.sink.take(), vec![msix_msg()], "{name}: error interrupt");
        } else {
            assert!(r.sink.take().is_empty(), "{name}: no MSI without BME");
        }
        // ERR_COMPLETION_EN: the halted status was written back (when CHANCMP is usable).
        if bits & CHANERR_COMPLETION_ADDR == 0 {
            assert_eq!(
                completion(&r.mem),
                case.completed | CHANSTS_HALTED,
                "{name}"
            );
        } else {
            assert_eq!(completion(&r.mem), 0xaaaa_aaaa_aaaa_aaaa, "{name}");
        }
        enable_bme(d);
        // Halted: a doorbell and a CHAINADDR write change nothing while CHANERR is set.
        let before = d.stats().descriptors;
        doorbell(d, count.wrapping_add(5));
        write(d, ch(CH_CHAINADDR), 8, RING);
        doorbell(d, count.wrapping_add(6));
        assert_eq!(status(d), CHANSTS_HALTED, "{name}");
        assert_eq!(d.stats().descriptors, before, "{name}");
        // RW1C: writing 0 keeps, writing the bits clears; the mirror likewise.
        write(d, ch(CH_CHANERR), 4, 0);
        assert_eq!(chanerr(d), bits, "{name}");
        write(d, ch(CH_CHANERR), 4, u64::from(bits));
        assert_eq!(chanerr(d), 0, "{name}");
        cfg_write(d, CFG_CHANERR_INT, &0u32.to_le_bytes());
        assert_eq!(cfg_read32(d, CFG_CHANERR_INT), bits, "{name}");
        cfg_write(d, CFG_CHANERR_INT, &bits.to_le_bytes());
        assert_eq!(cfg_read32(d, CFG_CHANERR_INT), 0, "{name}");
    }
}

#[test]
fn errors_without_err_int_en_or_err_completion_en_are_quiet() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    let d = &mut r.dev;
    write(d, ch(CH_CHANCTRL), 2, u64::from(CHANCTRL_ANY_ERR_ABORT_EN));
    write(d, ch(CH_CHANCMP), 8, COMPL);
    r.mem.write(COMPL, &[0xaa; 8]).unwrap();
    put_desc(&r.mem, RING, &copy_desc(SRC, DST, 0, CTL_INT_EN, RING));
    load_chain(d, RING);
    doorbell(d, 1);
    assert_eq!(chanerr(d), CHANERR_LENGTH);
    assert!(r.sink.take().is_empty());
    assert_eq!(completion(&r.mem), 0xaaaa_aaaa_aaaa_aaaa);
}

#[test]
fn halted_channel_restarts_after_clearing_chanerr_or_reset() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    let d = &mut r.dev;
    put_desc(&r.mem, RING, &copy_desc(SRC, DST, 0, 0, RING + 64));
    put_desc(&r.mem, RING + 64, &copy_desc(SRC, DST, 32, 0, RING));
    load_chain(d, RING);
    doorbell(d, 1);
    assert_eq!(chanerr(d), CHANERR_LENGTH);
    // Linux's ioat_eh (non-abort path): clear CHANERR, then ioat_restart_channel: CHAINADDR at the next
    // descriptor and DMACOUNT counted from 0.
    write(d, ch(CH_CHANERR), 4, u64::from(CHANERR_LENGTH));
    load_chain(d, RING + 64);
    assert_eq!(status(d), CHANSTS_ARMED);
    doorbell(d, 1);
    assert_eq!(chansts(d), (RING + 64) | CHANSTS_DONE);
    // After an error and a reset (the abort path), likewise.
    put_desc(&r.mem, RING, &copy_desc(SRC, DST, 0, 0, RING + 64));
    doorbell(d, 2);
    assert_eq!(status(d), CHANSTS_HALTED);
    linux_reset_hw(d);
    load_chain(d, RING + 64);
    doorbell(d, 1);
    assert_eq!(status(d), CHANSTS_DONE);
}

#[test]
fn suspend_resume_and_abort() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    let d = &mut r.dev;
    for i in 0..4 {
        put_desc(
            &r.mem,
            RING + 64 * i,
            &null_desc(0, RING + 64 * ((i + 1) % 4)),
        );
    }
    load_chain(d, RING);
    doorbell(d, 1);
    assert_eq!(status(d), CHANSTS_DONE);
    write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_SUSPEND));
    assert_eq!(chansts(d), RING | CHANSTS_SUSPENDED);
    // A doorbell while suspended is recorded, not run...
    doorbell(d, 3);
    assert_eq!(d.stats().descriptors, 1);
    assert_eq!(read(d, ch(CH_DMACOUNT), 2), 3);
    // ...RESUME runs it.
    write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_RESUME));
    assert_eq!(chansts(d), (RING + 128) | CHANSTS_DONE);
    assert_eq!(d.stats().descriptors, 3);
    // SUSPEND of an armed channel, RESUME re-arms it.
    load_chain(d, RING + 64);
    write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_SUSPEND));
    assert_eq!(status(d), CHANSTS_SUSPENDED);
    write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_RESUME));
    assert_eq!(status(d), CHANSTS_ARMED);
    doorbell(d, 1);
    assert_eq!(chansts(d), (RING + 64) | CHANSTS_DONE);
    // RESUME of a channel that is not suspended does nothing; SUSPEND of a halted one neither.
    write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_RESUME));
    assert_eq!(status(d), CHANSTS_DONE);
    // ABORT halts without an error; a new chain address arms again.
    write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_ABORT));
    assert_eq!(status(d), CHANSTS_HALTED);
    assert_eq!(chanerr(d), 0);
    doorbell(d, 2);
    assert_eq!(status(d), CHANSTS_HALTED);
    write(d, ch(CH_CHANCMD), 1, u64::from(CHANCMD_SUSPEND));
    assert_eq!(status(d), CHANSTS_HALTED);
    load_chain(d, RING);
    doorbell(d, 2);
    assert_eq!(chansts(d), (RING + 64) | CHANSTS_DONE);
    // START/APPEND (version 1) are ignored; two commands at once are a CHANCMD error.
    write(
        d,
        ch(CH_CHANCMD),
        1,
        u64::from(CHANCMD_START | CHANCMD_APPEND),
    );
    assert_eq!(status(d), CHANSTS_DONE);
    write(
        d,
        ch(CH_CHANCMD),
        1,
        u64::from(CHANCMD_SUSPEND | CHANCMD_ABORT),
    );
    assert_eq!(status(d), CHANSTS_HALTED);
    assert_eq!(chanerr(d), CHANERR_CHANCMD);
    write(d, ch(CH_CHANCMD), 1, 0x80);
    assert_eq!(chanerr(d), CHANERR_CHANCMD);
    // RESET wins over whatever else is in the same write.
    write(d, ch(CH_CHANCMD), 1, 0xff);
    assert_eq!(chansts(d), CHANSTS_HALTED);
    assert_eq!(chanerr(d), 0);
}

#[test]
fn iommu_faults_on_each_access() {
    // Ring page RW, source page read-only, a destination page read-only, completion RW.
    let ro_dst = 0x5_0000;
    let port = Arc::new(
        PagePort::default()
            .map(RING, RING, Perms::RW)
            .map(SRC, SRC, RO)
            .map(DST, DST, Perms::RW)
            .map(ro_dst, ro_dst, RO)
            .map(COMPL & !(PAGE - 1), COMPL & !(PAGE - 1), Perms::RW),
    );
    let mut r = linux_probed(port.clone());
    let d = &mut r.dev;
    let data = noise(64, 5);
    r.mem.write(SRC, &data).unwrap();
    put_desc(
        &r.mem,
        RING,
        &copy_desc(SRC, DST, 64, CTL_COMPL_WRITE, RING + 64),
    );
    put_desc(
        &r.mem,
        RING + 64,
        &copy_desc(SRC, ro_dst, 64, 0, RING + 128),
    );
    load_chain(d, RING);
    port.take();
    doorbell(d, 2);
    assert_eq!(chanerr(d), CHANERR_WRITE_DATA);
    assert_eq!(chansts(d), RING | CHANSTS_HALTED);
    assert_eq!(read(d, ch(CH_CDAR), 8), RING + 64);
    let reqs = port.take();
    assert!(reqs.iter().all(|q| q.source_id == SOURCE_ID), "{reqs:?}");
    let last = reqs.last().unwrap();
    assert_eq!((last.iova, last.access), (ro_dst, Access::Write));
    assert_eq!(d.stats().dma_failures, 1);
    let mut got = [0u8; 64];
    r.mem.read(DST, &mut got).unwrap();
    assert_eq!(got.to_vec(), data, "the first copy completed");
    // A fault on the descriptor fetch itself.
    linux_reset_hw(d);
    load_chain(d, 0x9_0000);
    doorbell(d, 1);
    assert_eq!(chanerr(d), CHANERR_NEXT_ADDR);
    assert_eq!(read(d, ch(CH_CDAR), 8), 0x9_0000);
}

#[test]
fn fill_writes_the_pattern() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    let d = &mut r.dev;
    assert_ne!(read(d, REG_DMACAPABILITY, 4) as u32 & CAP_FILL_BLOCK, 0);
    put_desc(
        &r.mem,
        RING,
        &Descriptor {
            size: 20,
            ctl: ctl(OP_FILL, CTL_COMPL_WRITE),
            src: 0x0807_0605_0403_0201,
            dst: DST + 1,
            next: RING + 64,
        },
    );
    load_chain(d, RING);
    doorbell(d, 1);
    let mut got = [0u8; 22];
    r.mem.read(DST, &mut got).unwrap();
    assert_eq!(
        got,
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 0]
    );
    assert_eq!(d.stats().bytes_copied, 20);
}

#[test]
fn split_and_wide_register_accesses() {
    let mut r = rig(Arc::new(IdentityPort));
    let d = &mut r.dev;
    // writeq and two writel of CHAINADDR agree; byte reads assemble the same value.
    write(d, ch(CH_CHAINADDR), 8, 0x1122_3344_5566_7788);
    assert_eq!(read(d, ch(CH_CHAINADDR), 8), 0x1122_3344_5566_7788);
    write(d, ch(CH_CHAINADDR) + 4, 4, 0xaabb_ccdd);
    assert_eq!(read(d, ch(CH_CHAINADDR), 8), 0xaabb_ccdd_5566_7788);
    assert_eq!(read(d, ch(CH_CHAINADDR) + 3, 2), 0xdd55);
    // One qword write spanning CHANCTRL..DMACOUNT: CHANCTRL stored bits, DMACOMP read-only, CHANCMD 0.
    write(d, ch(CH_CHANCTRL), 8, 0x0005_0000_ffff_0110);
    // ERR_INT_EN was set: the error below signalled (to nothing: no MSI enabled) and disarmed bit 0.
    assert_eq!(read(d, ch(CH_CHANCTRL), 2), 0x0111);
    assert_eq!(read(d, ch(CH_DMACOUNT), 2), 0x0005);
    assert_eq!(read(d, ch(CH_DMACOMP), 2), u64::from(DMA_COMP_V2));
    // The channel was armed (CHAINADDR written) and DMACOUNT 5 was rung at a misaligned chain address.
    assert_eq!(chanerr(d), CHANERR_CHAIN_ADDR_VALUE);
    // Unimplemented offsets read 0; past the BAR all ones; other BARs all ones.
    assert_eq!(read(d, 0x40, 8), 0);
    assert_eq!(read(d, 0x100, 8), 0, "no second channel");
    assert_eq!(read(d, 0x1000, 8), 0);
    let mut b = [0u8; 8];
    d.bar_read(REGS_BAR, BAR0_SIZE - 4, &mut b);
    assert_eq!(&b[4..], &[0xff; 4]);
    d.bar_read(REGS_BAR, u64::MAX - 2, &mut b);
    assert_eq!(b, [0xff; 8]);
    d.bar_read(2, 0, &mut b);
    assert_eq!(b, [0xff; 8]);
    d.bar_write(REGS_BAR, u64::MAX - 2, &[0xff; 8]);
    d.bar_write(2, 0, &[0xff; 8]);
}

#[test]
fn config_error_registers() {
    let mut r = rig(Arc::new(IdentityPort));
    let d = &mut r.dev;
    for off in [CFG_DMAUNCERRSTS, CFG_CHANERR_INT] {
        cfg_write(d, off, &u32::MAX.to_le_bytes());
        assert_eq!(cfg_read32(d, off), 0, "{off:#x} is RW1C");
    }
    cfg_write(d, CFG_CHANERRMSK_INT, &u32::MAX.to_le_bytes());
    assert_eq!(cfg_read32(d, CFG_CHANERRMSK_INT), CHANERR_IMPLEMENTED);
    cfg_write(d, CFG_DMAUNCERRMSK, &0x1234u32.to_le_bytes());
    assert_eq!(cfg_read32(d, CFG_DMAUNCERRMSK), 0x1234);
}

#[test]
fn self_looping_chain_is_bounded_by_dmacount() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    let d = &mut r.dev;
    // A descriptor whose next is itself, released 65535 times: exactly 65535 executions, then DONE.
    put_desc(&r.mem, RING, &copy_desc(SRC, DST, 64, 0, RING));
    load_chain(d, RING);
    doorbell(d, u16::MAX);
    assert_eq!(chansts(d), RING | CHANSTS_DONE);
    assert_eq!(d.stats().descriptors, 65535);
    assert_eq!(d.stats().bytes_copied, 65535 * 64);
    // A DMACOUNT below the completed count wraps: 65535 -> 0 releases one more.
    doorbell(d, 0);
    assert_eq!(d.stats().descriptors, 65536);
}

#[test]
fn random_register_writes_never_panic() {
    let mut r = linux_probed(Arc::new(IdentityPort));
    // Scatter plausible and implausible descriptors over the first 128 KiB of RAM.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for i in 0..2048u64 {
        let v = next();
        let d = Descriptor {
            size: (v % 5000) as u32,
            ctl: ctl((v >> 20) as u8 % 3, (v >> 32) as u32 & 0x7ff),
            src: next() % 0x2_0000,
            dst: (next() % 0x2_0000).wrapping_add(if v % 17 == 0 { u64::MAX - 0x1000 } else { 0 }),
            next: (next() % 2048) * 64 + if v % 13 == 0 { 4 } else { 0 },
        };
        put_desc(&r.mem, i * 64, &d);
    }
    let offsets = [
        ch(CH_CHANCTRL),
        ch(CH_CHANCMD),
        ch(CH_DMACOUNT),
        ch(CH_CHAINADDR),
        ch(CH_CHAINADDR) + 4,
        ch(CH_CHANCMP),
        ch(CH_CHANERR),
        REG_INTRCTRL,
        REG_ATTNSTATUS,
        u64::from(MSIX_TABLE_OFFSET) + 12,
    ];
    for i in 0..20_000u32 {
        let v = next();
        let len = [1usize, 2, 4, 8][(v & 3) as usize];
        let off = if v & 0x30 == 0 {
            (v >> 8) % (BAR0_SIZE + 16)
        } else {
            offsets[((v >> 8) % offsets.len() as u64) as usize]
        };
        let value = match (v >> 40) % 4 {
            0 => next() % 2048 * 64,
            1 => next() % 16,
            2 => u64::MAX,
            _ => next(),
        };
        write(&mut r.dev, off, len, value);
        let s = status(&mut r.dev);
        assert!(s <= CHANSTS_ARMED && s != CHANSTS_ACTIVE, "status {s}");
        if i % 997 == 0 {
            let cmd = if v & 1 == 0 { 0x20 } else { 0x04 };
            write(&mut r.dev, ch(CH_CHANCMD), 1, cmd);
            enable_bme(&mut r.dev);
        }
        r.sink.take();
    }
    let s = r.dev.stats();
    assert!(s.descriptors > 0 && s.channel_errors > 0, "{s:?}");
}
