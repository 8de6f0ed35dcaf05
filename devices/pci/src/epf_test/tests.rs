use super::crc::checksum;
use super::*;
use crate::capability::id;
use crate::config::{command, reg};
use crate::msi::{msi_reg, MsiMessage, RecordingSink};
use crate::test_device::testutil::{noise, PagePort, PAGE, RO};
use iommu::mem::TestMemory;
use iommu::{Access, DmaMemory, DmaPort, IdentityPort, Perms};

const SOURCE_ID: u32 = 0x0020;
const MSI_ADDR: u32 = 0xfee0_0000;
const MSI_DATA: u16 = 0x40;

struct Rig {
    dev: EpfTest,
    sink: Arc<RecordingSink>,
    mem: Arc<TestMemory>,
}

fn rig(port: Arc<dyn DmaPort>, mem_size: usize) -> Rig {
    let sink = Arc::new(RecordingSink::default());
    let mem = Arc::new(TestMemory::new(mem_size));
    let dma = DmaAccessor::new(port, mem.clone(), SOURCE_ID);
    let dev = EpfTest::new(sink.clone(), dma).unwrap();
    Rig { dev, sink, mem }
}

/// 4 MiB of RAM, BME and MSI on (software asks for 4 vectors, gets the one offered): the state after probe.
fn ready(port: Arc<dyn DmaPort>) -> Rig {
    let mut r = rig(port, 4 << 20);
    cfg_write(
        &mut r.dev,
        reg::COMMAND,
        &(command::MEMORY_SPACE | command::BUS_MASTER).to_le_bytes(),
    );
    enable_msi(&mut r.dev, 2);
    r
}

fn cfg_write(d: &mut EpfTest, off: usize, data: &[u8]) {
    d.config_write(off / 4, off % 4, data);
}

fn enable_msi(d: &mut EpfTest, mme: u16) {
    let msi = d.config().find_capability(id::MSI).unwrap();
    cfg_write(d, msi + msi_reg::ADDRESS_LO, &MSI_ADDR.to_le_bytes());
    cfg_write(d, msi + msi_reg::DATA, &MSI_DATA.to_le_bytes());
    cfg_write(d, msi + msi_reg::CONTROL, &(1 | mme << 4).to_le_bytes());
}

fn read32(d: &mut EpfTest, off: u64) -> u32 {
    let mut b = [0u8; 4];
    d.bar_read(REGS_BAR, off, &mut b);
    u32::from_le_bytes(b)
}

fn write32(d: &mut EpfTest, off: u64, v: u32) {
    d.bar_write(REGS_BAR, off, &v.to_le_bytes());
}

/// Programs the registers as pci_endpoint_test.c does (32-bit writes, IRQ_NUMBER 1) and returns STATUS.
fn command(d: &mut EpfTest, cmd: u32, src: u64, dst: u64, size: u32, irq_type: u32) -> u32 {
    write32(d, REG_SRC_LO, src as u32);
    write32(d, REG_SRC_HI, (src >> 32) as u32);
    write32(d, REG_DST_LO, dst as u32);
    write32(d, REG_DST_HI, (dst >> 32) as u32);
    write32(d, REG_SIZE, size);
    write32(d, REG_FLAGS, 0);
    write32(d, REG_IRQ_TYPE, irq_type);
    write32(d, REG_IRQ_NUMBER, 1);
    write32(d, REG_COMMAND, cmd);
    assert_eq!(read32(d, REG_COMMAND), 0, "the handler clears COMMAND");
    read32(d, REG_STATUS)
}

fn msi(vector: u32) -> MsiMessage {
    MsiMessage {
        address: u64::from(MSI_ADDR),
        data: u32::from(MSI_DATA) | vector,
    }
}

#[test]
fn identity_matches_the_host_drivers_default_data_entry() {
    let r = rig(Arc::new(IdentityPort), 0x1000);
    let c = r.dev.config();
    assert_eq!((c.vendor_id(), c.device_id()), (0x104c, 0xb500));
    assert_eq!(c.class_code(), 0xff_0000);
    assert_eq!(c.read_u8(reg::INTERRUPT_PIN), 0);
    assert!(r.dev.has_msi());
    assert_eq!(r.dev.msix_vectors(), 0);
    let bars = r.dev.bars();
    assert_eq!(bars.len(), 1);
    assert_eq!(
        (bars[0].index, bars[0].bar_type, bars[0].size),
        (0, BarType::Mem32, 0x1000)
    );
    assert!(c.find_capability(id::PCI_EXPRESS).is_some());
    let msi = c.find_capability(id::MSI).unwrap();
    assert_eq!(
        c.read_u16(msi + msi_reg::CONTROL) >> 1 & 7,
        0,
        "one MSI vector (MMC 0)"
    );
}

#[test]
fn register_offsets_are_the_packed_epf_layout() {
    // struct pci_epf_test_reg { u32 magic, command, status; u64 src, dst; u32 size, checksum, irq_type,
    // irq_number, flags } __packed.
    let offsets = [
        REG_MAGIC,
        REG_COMMAND,
        REG_STATUS,
        REG_SRC_LO,
        REG_SRC_HI,
        REG_DST_LO,
        REG_DST_HI,
        REG_SIZE,
        REG_CHECKSUM,
        REG_IRQ_TYPE,
        REG_IRQ_NUMBER,
        REG_FLAGS,
    ];
    for (i, &o) in offsets.iter().enumerate() {
        assert_eq!(o, 4 * i as u64);
    }
}

#[test]
fn bar0_is_memory_and_out_of_range_is_all_ones() {
    let mut r = rig(Arc::new(IdentityPort), 0x1000);
    write32(&mut r.dev, REG_MAGIC, 0xa0a0_a0a0);
    assert_eq!(read32(&mut r.dev, REG_MAGIC), 0xa0a0_a0a0);
    // Byte writes and unaligned reads hit the same storage.
    r.dev.bar_write(REGS_BAR, REG_CHECKSUM + 1, &[0x5a]);
    assert_eq!(read32(&mut r.dev, REG_CHECKSUM), 0x5a00);
    write32(&mut r.dev, 0xffc, 0x1234_5678);
    assert_eq!(read32(&mut r.dev, 0xffc), 0x1234_5678);
    // Straddling the end: the in-range bytes read back, the rest are all ones; writes past the end are dropped.
    let mut b = [0u8; 8];
    r.dev.bar_read(REGS_BAR, 0xffc, &mut b);
    assert_eq!(b, [0x78, 0x56, 0x34, 0x12, 0xff, 0xff, 0xff, 0xff]);
    r.dev.bar_write(REGS_BAR, 0x1000, &[1, 2, 3, 4]);
    r.dev.bar_write(REGS_BAR, u64::MAX, &[1, 2, 3, 4]);
    r.dev.bar_read(REGS_BAR, u64::MAX - 1, &mut b);
    assert_eq!(b, [0xff; 8]);
    r.dev.bar_read(1, 0, &mut b);
    assert_eq!(b, [0xff; 8]);
}

#[test]
fn device_read_verifies_the_hosts_checksum() {
    let mut r = ready(Arc::new(IdentityPort));
    let data = noise(0x3000, 7);
    r.mem.write(0x10_0000, &data).unwrap();
    write32(&mut r.dev, REG_CHECKSUM, checksum(&data));
    let st = command(&mut r.dev, COMMAND_READ, 0x10_0000, 0, 0x3000, IRQ_TYPE_MSI);
    assert_eq!(st, STATUS_READ_SUCCESS | STATUS_IRQ_RAISED);
    assert_eq!(r.sink.take(), vec![msi(0)]);
    assert_eq!(r.dev.stats().bytes_read, 0x3000);

    // One flipped byte: the checksum no longer matches.
    r.mem.write(0x10_1234, &[data[0x1234] ^ 1]).unwrap();
    let st = command(&mut r.dev, COMMAND_READ, 0x10_0000, 0, 0x3000, IRQ_TYPE_MSI);
    assert_eq!(st, STATUS_READ_FAIL | STATUS_IRQ_RAISED);
    assert_eq!(r.sink.take(), vec![msi(0)], "an interrupt even on failure");
}

#[test]
fn device_write_stores_data_and_its_checksum() {
    let mut r = ready(Arc::new(IdentityPort));
    let st = command(
        &mut r.dev,
        COMMAND_WRITE,
        0,
        0x20_0000,
        0x1_0000,
        IRQ_TYPE_MSI,
    );
    assert_eq!(st, STATUS_WRITE_SUCCESS | STATUS_IRQ_RAISED);
    let mut got = vec![0u8; 0x1_0000];
    r.mem.read(0x20_0000, &mut got).unwrap();
    assert_eq!(checksum(&got), read32(&mut r.dev, REG_CHECKSUM));
    assert!(got.iter().any(|&b| b != 0));
    // Bytes after the buffer are untouched.
    let mut after = [0u8; 16];
    r.mem.read(0x21_0000, &mut after).unwrap();
    assert_eq!(after, [0; 16]);
    assert_eq!(r.sink.take(), vec![msi(0)]);

    // A second write produces fresh data.
    let first = read32(&mut r.dev, REG_CHECKSUM);
    command(
        &mut r.dev,
        COMMAND_WRITE,
        0,
        0x20_0000,
        0x1_0000,
        IRQ_TYPE_MSI,
    );
    assert_ne!(read32(&mut r.dev, REG_CHECKSUM), first);
}

#[test]
fn device_copy_moves_the_source() {
    let mut r = ready(Arc::new(IdentityPort));
    let data = noise(0x2_0000, 3);
    r.mem.write(0x4000, &data).unwrap();
    let st = command(
        &mut r.dev,
        COMMAND_COPY,
        0x4000,
        0x30_0000,
        0x2_0000,
        IRQ_TYPE_MSI,
    );
    assert_eq!(st, STATUS_COPY_SUCCESS | STATUS_IRQ_RAISED);
    let mut got = vec![0u8; data.len()];
    r.mem.read(0x30_0000, &mut got).unwrap();
    assert_eq!(got, data);
    // Overlapping: the whole source is read before writing.
    let st = command(
        &mut r.dev,
        COMMAND_COPY,
        0x30_0000,
        0x30_0800,
        0x1000,
        IRQ_TYPE_MSI,
    );
    assert_eq!(st, STATUS_COPY_SUCCESS | STATUS_IRQ_RAISED);
    let mut got = vec![0u8; 0x1000];
    r.mem.read(0x30_0800, &mut got).unwrap();
    assert_eq!(got, &data[..0x1000]);
}

/// Scattered IOVA pages: IOVA 0x1000_0000 + n pages -> GPA 0x8000 * (n + 1); page 3 read-only.
fn scattered() -> Arc<PagePort> {
    let mut p = PagePort::default();
    for n in 0..4u64 {
        let perms = if n == 3 { RO } else { Perms::RW };
        p = p.map(0x1000_0000 + n * PAGE, 0x8000 * (n + 1), perms);
    }
    Arc::new(p)
}

#[test]
fn dma_goes_through_the_port_with_the_functions_source_id() {
    let port = scattered();
    let mut r = ready(port.clone());
    let st = command(
        &mut r.dev,
        COMMAND_WRITE,
        0,
        0x1000_0000,
        3 * PAGE as u32,
        IRQ_TYPE_MSI,
    );
    assert_eq!(st, STATUS_WRITE_SUCCESS | STATUS_IRQ_RAISED);
    let reqs = port.take();
    assert_eq!(reqs.len(), 3, "one translation per 4 KiB page");
    assert!(reqs
        .iter()
        .all(|q| q.source_id == SOURCE_ID && q.access == Access::Write));
    // The data landed page by page at the translated addresses.
    let mut whole = Vec::new();
    for n in 0..3u64 {
        let mut page = vec![0u8; PAGE as usize];
        r.mem.read(0x8000 * (n + 1), &mut page).unwrap();
        whole.extend_from_slice(&page);
    }
    assert_eq!(checksum(&whole), read32(&mut r.dev, REG_CHECKSUM));

    // The host reads it back through the same IOVAs: the device verifies the checksum it computed.
    let st = command(
        &mut r.dev,
        COMMAND_READ,
        0x1000_0000,
        0,
        3 * PAGE as u32,
        IRQ_TYPE_MSI,
    );
    assert_eq!(st, STATUS_READ_SUCCESS | STATUS_IRQ_RAISED);

    // Copy pages 0..2 -> 1..3 crosses into the read-only page: the IOMMU refuses, the command fails.
    let st = command(
        &mut r.dev,
        COMMAND_COPY,
        0x1000_0000,
        0x1000_1000,
        3 * PAGE as u32,
        IRQ_TYPE_MSI,
    );
    assert_eq!(st, STATUS_COPY_FAIL | STATUS_IRQ_RAISED);
    let last = port.take().pop().unwrap();
    assert_eq!((last.iova, last.access), (0x1000_3000, Access::Write));
    assert_eq!(r.dev.stats().dma_failures, 1);
    // An unmapped source fails the read.
    let st = command(&mut r.dev, COMMAND_READ, 0x2000_0000, 0, 16, IRQ_TYPE_MSI);
    assert_eq!(st, STATUS_READ_FAIL | STATUS_IRQ_RAISED);
    assert_eq!(r.sink.take().len(), 4, "every command interrupts");
}

#[test]
fn oversized_transfers_fail_without_dma() {
    let port = Arc::new(PagePort::default());
    let mut r = ready(port.clone());
    let big = MAX_TRANSFER + 1;
    let st = command(&mut r.dev, COMMAND_READ, 0, 0, big, IRQ_TYPE_MSI);
    assert_eq!(
        st,
        STATUS_SRC_ADDR_INVALID | STATUS_READ_FAIL | STATUS_IRQ_RAISED
    );
    let st = command(&mut r.dev, COMMAND_WRITE, 0, 0, u32::MAX, IRQ_TYPE_MSI);
    assert_eq!(
        st,
        STATUS_DST_ADDR_INVALID | STATUS_WRITE_FAIL | STATUS_IRQ_RAISED
    );
    let st = command(&mut r.dev, COMMAND_COPY, 0, 0, big, IRQ_TYPE_MSI);
    assert_eq!(
        st,
        STATUS_SRC_ADDR_INVALID | STATUS_COPY_FAIL | STATUS_IRQ_RAISED
    );
    assert!(port.take().is_empty(), "no request reached the IOMMU");
    assert_eq!(r.sink.take().len(), 3);
}

#[test]
fn zero_size_is_an_empty_transfer() {
    let port = Arc::new(PagePort::default());
    let mut r = ready(port.clone());
    write32(&mut r.dev, REG_CHECKSUM, 0xffff_ffff);
    assert_eq!(
        command(&mut r.dev, COMMAND_READ, 0, 0, 0, IRQ_TYPE_MSI),
        STATUS_READ_SUCCESS | STATUS_IRQ_RAISED
    );
    assert_eq!(
        command(&mut r.dev, COMMAND_WRITE, 0, 0, 0, IRQ_TYPE_MSI),
        STATUS_WRITE_SUCCESS | STATUS_IRQ_RAISED
    );
    assert_eq!(read32(&mut r.dev, REG_CHECKSUM), 0xffff_ffff);
    assert!(port.take().is_empty());
}

#[test]
fn no_bus_master_no_dma_and_no_interrupt() {
    let mut r = rig(Arc::new(IdentityPort), 1 << 20);
    cfg_write(
        &mut r.dev,
        reg::COMMAND,
        &command::MEMORY_SPACE.to_le_bytes(),
    );
    enable_msi(&mut r.dev, 0);
    let st = command(&mut r.dev, COMMAND_WRITE, 0, 0x1000, 0x100, IRQ_TYPE_MSI);
    assert_eq!(st, STATUS_WRITE_FAIL | STATUS_IRQ_RAISED);
    let mut got = [0u8; 0x100];
    r.mem.read(0x1000, &mut got).unwrap();
    assert_eq!(got, [0; 0x100], "nothing written");
    // MSI is a memory write too: blocked without BME.
    assert!(r.sink.take().is_empty());
    assert_eq!(r.dev.stats().irqs_dropped, 1);
    assert_eq!(r.dev.stats().dma_failures, 1);
}

#[test]
fn raise_msi_sends_the_requested_message() {
    let mut r = ready(Arc::new(IdentityPort));
    write32(&mut r.dev, REG_IRQ_TYPE, IRQ_TYPE_MSI);
    write32(&mut r.dev, REG_IRQ_NUMBER, 1);
    write32(&mut r.dev, REG_COMMAND, COMMAND_RAISE_MSI_IRQ);
    assert_eq!(read32(&mut r.dev, REG_STATUS), STATUS_IRQ_RAISED);
    assert_eq!(r.sink.take(), vec![msi(0)]);
    // Message 0 and messages beyond the allocated vectors are invalid: status says raised, nothing is sent.
    for number in [0u32, 2, 5, u32::MAX] {
        write32(&mut r.dev, REG_IRQ_NUMBER, number);
        write32(&mut r.dev, REG_COMMAND, COMMAND_RAISE_MSI_IRQ);
        assert_eq!(read32(&mut r.dev, REG_STATUS), STATUS_IRQ_RAISED);
        assert!(r.sink.take().is_empty());
    }
    // No INTx pin, no MSI-X capability.
    for (t, c) in [
        (IRQ_TYPE_INTX, COMMAND_RAISE_INTX_IRQ),
        (IRQ_TYPE_MSIX, COMMAND_RAISE_MSIX_IRQ),
    ] {
        write32(&mut r.dev, REG_IRQ_TYPE, t);
        write32(&mut r.dev, REG_IRQ_NUMBER, 1);
        write32(&mut r.dev, REG_COMMAND, c);
        assert!(r.sink.take().is_empty());
    }
    // An unknown IRQ type makes the handler ignore the command (status cleared, no DMA, no interrupt).
    write32(&mut r.dev, REG_IRQ_TYPE, 3);
    write32(&mut r.dev, REG_COMMAND, COMMAND_WRITE);
    assert_eq!(read32(&mut r.dev, REG_STATUS), 0);
    assert_eq!(read32(&mut r.dev, REG_COMMAND), 0);
    // Unknown commands (several bits, unknown bits) are ignored too.
    write32(&mut r.dev, REG_IRQ_TYPE, IRQ_TYPE_MSI);
    write32(&mut r.dev, REG_COMMAND, COMMAND_READ | COMMAND_WRITE);
    write32(&mut r.dev, REG_COMMAND, 1 << 20);
    assert!(r.sink.take().is_empty());
}

#[test]
fn masked_vector_is_latched_and_sent_on_unmask() {
    let mut r = ready(Arc::new(IdentityPort));
    let cap = r.dev.config().find_capability(id::MSI).unwrap();
    cfg_write(&mut r.dev, cap + msi_reg::MASK, &1u32.to_le_bytes());
    write32(&mut r.dev, REG_IRQ_TYPE, IRQ_TYPE_MSI);
    write32(&mut r.dev, REG_IRQ_NUMBER, 1);
    write32(&mut r.dev, REG_COMMAND, COMMAND_RAISE_MSI_IRQ);
    assert!(r.sink.take().is_empty());
    cfg_write(&mut r.dev, cap + msi_reg::MASK, &0u32.to_le_bytes());
    assert_eq!(r.sink.take(), vec![msi(0)]);
}

#[test]
fn hostile_register_traffic_never_panics() {
    let mut r = ready(Arc::new(IdentityPort));
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let v = next();
        let off = match v % 4 {
            0 => v >> 8 & 0x3f,
            1 => v >> 8 & 0xfff,
            2 => v >> 8,
            _ => REG_COMMAND + (v >> 8 & 3),
        };
        if v % 16 == 0 {
            // Valid-looking commands on top of random addresses and sizes.
            write32(&mut r.dev, REG_IRQ_TYPE, IRQ_TYPE_MSI);
            write32(&mut r.dev, REG_SIZE, (v >> 8) as u32 % 0x2_0000);
            write32(&mut r.dev, REG_COMMAND, 1 << ((v >> 4) % 6));
            continue;
        }
        let len = (v >> 40 & 7) as usize + 1;
        let data = (next() % 0x40_0000).to_le_bytes();
        if v & 1 << 60 != 0 {
            r.dev.bar_write((v >> 61) as u8 & 1, off, &data[..len]);
        } else {
            let mut b = [0u8; 8];
            r.dev.bar_read((v >> 61) as u8 & 1, off, &mut b[..len]);
        }
    }
    assert!(r.dev.stats().commands > 0, "some commands ran");
}
