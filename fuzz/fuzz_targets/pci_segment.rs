//! Hostile guest against the PCI segment: random CF8/CFC, ECAM and BAR accesses of every size, including the
//! test device's DMA engine (through an identity port onto 1 MiB of test memory). Must never panic.
#![no_main]

use std::sync::Arc;

use iommu::mem::TestMemory;
use iommu::{DmaAccessor, IdentityPort};
use libfuzzer_sys::fuzz_target;
use pci::{PciSegment, RecordingSink};

fn segment() -> PciSegment {
    let dma = DmaAccessor::new(
        Arc::new(IdentityPort),
        Arc::new(TestMemory::new(1 << 20)),
        0x18,
    );
    let dev = pci::TestDevice::new(Arc::new(RecordingSink::default()), dma).expect("test device");
    let mut seg = PciSegment::new();
    seg.add_device(pci::test_device::DEFAULT_DEVICE_NUMBER, Box::new(dev))
        .expect("add");
    seg.allocate_bars((0xc000_0000, 0x2000_0000), (0x40_0000_0000, 0x10_0000_0000))
        .expect("bars");
    seg
}

fuzz_target!(|data: &[u8]| {
    let mut seg = segment();
    // Each op: kind (1 byte), size selector (1), address (8), value (8).
    for op in data.chunks_exact(18) {
        let size = [1usize, 2, 4, 8][usize::from(op[1] & 3)];
        let addr = u64::from_le_bytes(op[2..10].try_into().unwrap());
        let value = op[10..18].to_vec();
        let mut buf = vec![0u8; size];
        match op[0] % 6 {
            0 => seg.pio_read(addr % 8, &mut buf),
            1 => seg.pio_write(addr % 8, &value[..size]),
            2 => seg.ecam_read(addr % pci::ECAM_SIZE, &mut buf),
            3 => seg.ecam_write(addr % pci::ECAM_SIZE, &value[..size]),
            4 => {
                let _ = seg.mmio_read(0xc000_0000 + addr % 0x2000, &mut buf);
            }
            _ => {
                let _ = seg.mmio_write(0xc000_0000 + addr % 0x2000, &value[..size]);
            }
        }
    }
});
