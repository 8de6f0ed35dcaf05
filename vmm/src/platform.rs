//! The machine's platform, built without KVM: e820 map, PCI segment with its devices, ACPI tables.
//! `run`, `describe` and `tables` all build it the same way, so what the guest gets is what the tools print.

use std::sync::{Arc, Mutex};

use firmware_tables::acpi::{self, AcpiPlatform, AcpiTables, IoApic, PciHostBridge};
use firmware_tables::description::{E820Entry, MachineDescription};
use iommu::mem::TestMemory;
use iommu::{DmaAccessor, DmaMemory, DmaPort, IdentityPort, InterruptSink};
use pci::{MsiError, MsiMessage, MsiSink};
use thiserror::Error;

use crate::bus::{lock, Bus, BusDevice, BusError};
use crate::interrupts::{MsiRouter, RawMsi};
use crate::iommus::{IommuConfig, IommuOptionError, IommuUnit};
use crate::layout;
use crate::memory::{self, MemoryError};
use crate::x86::cpuid::PagingLimits;

/// Errors building the platform.
#[derive(Debug, Error)]
pub enum PlatformError {
    #[error("{0} vCPUs requested: iovmm offers 1..={max} vCPUs", max = layout::MAX_VCPUS)]
    BadCpuCount(u8),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("ACPI: {0}")]
    Acpi(#[from] acpi::AcpiError),
    #[error("PCI: {0}")]
    Pci(String),
    #[error(transparent)]
    Iommu(#[from] IommuOptionError),
    #[error("IOMMU tables: {0}")]
    IommuTables(acpi::AcpiError),
    #[error("IOMMU firmware blob: {0}")]
    IommuFirmware(String),
}

/// Options that shape the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    pub memory_mib: u64,
    pub cpus: u8,
    /// The IOMMU in front of the PCI segment, if any.
    pub iommu: Option<IommuConfig>,
}

impl MachineConfig {
    /// Checks the options against what the VMM offers.
    pub fn validate(&self) -> Result<(), PlatformError> {
        if !(1..=layout::MAX_VCPUS).contains(&self.cpus) {
            return Err(PlatformError::BadCpuCount(self.cpus));
        }
        memory::ram_regions(self.memory_mib)?;
        Ok(())
    }

    /// The paging modes the vCPUs may show (see [`IommuConfig::cpu_paging_limits`]).
    pub fn vcpu_paging_limits(&self) -> PagingLimits {
        self.iommu
            .as_ref()
            .map_or(PagingLimits::NONE, IommuConfig::cpu_paging_limits)
    }
}

/// An MSI sink for platforms that never run (describe, tables): messages are dropped.
pub struct DiscardMsi;

impl MsiSink for DiscardMsi {
    fn send(&self, _msg: MsiMessage) -> Result<(), MsiError> {
        Ok(())
    }
}

impl InterruptSink for DiscardMsi {
    fn msi(&self, _address: u64, _data: u32) {}
}

impl RawMsi for DiscardMsi {
    fn signal(&self, _address: u64, _data: u32) -> Result<(), MsiError> {
        Ok(())
    }
}

/// Where a built platform's interrupts end up and what memory its DMA reaches.
pub struct PlatformIo {
    /// Final delivery of (remapped) device and IOAPIC interrupts.
    pub msi: Arc<dyn RawMsi>,
    /// The IOMMU's own interrupts (not subject to remapping).
    pub iommu_irq: Arc<dyn InterruptSink>,
    pub mem: Arc<dyn DmaMemory>,
}

impl PlatformIo {
    /// For platforms that never run (describe, tables): no memory, interrupts dropped.
    pub fn detached() -> Self {
        Self {
            msi: Arc::new(DiscardMsi),
            iommu_irq: Arc::new(DiscardMsi),
            mem: Arc::new(TestMemory::new(0)),
        }
    }
}

/// The DMA test device's requester id (BDF 00:03.0).
pub fn test_device_bdf() -> u16 {
    u16::from(pci::test_device::DEFAULT_DEVICE_NUMBER) << 3
}

/// The PCI endpoint test function's requester id (BDF 00:04.0): the guest kernel's pci_endpoint_test driver
/// does DMA with it through the DMA API (the IOMMU's default domain).
pub fn epf_test_bdf() -> u16 {
    u16::from(pci::epf_test::DEFAULT_DEVICE_NUMBER) << 3
}

/// The I/OAT DMA engine's requester id (BDF 00:06.0): the guest kernel's ioatdma driver (and VFIO's ioat
/// selftest driver) copies memory with it through the IOMMU.
pub fn ioat_bdf() -> u16 {
    u16::from(pci::ioat::DEFAULT_DEVICE_NUMBER) << 3
}

/// Requester ids of the test device's SR-IOV Virtual Functions (00:03.1..00:03.4): they exist only while the
/// guest has VF Enable set, but each has its own IOMMU context when it does.
pub fn test_device_vf_bdfs() -> Vec<u16> {
    use pci::test_device::regs::{TOTAL_VFS, VF_OFFSET, VF_STRIDE};
    (0..TOTAL_VFS)
        .map(|i| test_device_bdf() + VF_OFFSET + VF_STRIDE * i)
        .collect()
}

/// Requester ids of every DMA-capable function behind the IOMMU (the monitor accepts these as sources): the
/// test device, the endpoint test function, the I/OAT engine, then the test device's VFs.
pub fn dma_sources() -> Vec<u16> {
    let mut v = vec![test_device_bdf(), epf_test_bdf(), ioat_bdf()];
    v.extend(test_device_vf_bdfs());
    v
}

/// What the test device's Virtual Functions get when the guest enables them: the same IOMMU port and memory
/// as the PF with their own requester id, and interrupts through the router (remapping checks their id).
struct VfPaths {
    port: Arc<dyn DmaPort>,
    mem: Arc<dyn DmaMemory>,
    router: Arc<MsiRouter>,
}

impl pci::sriov::VfPlatform for VfPaths {
    fn dma(&self, requester_id: u16) -> DmaAccessor {
        DmaAccessor::new(self.port.clone(), self.mem.clone(), u32::from(requester_id))
    }

    fn msi_sink(&self, requester_id: u16) -> Arc<dyn MsiSink> {
        self.router.for_device(requester_id)
    }
}

/// Everything the guest is given besides RAM and the CPU.
pub struct Platform {
    pub config: MachineConfig,
    pub e820: Vec<E820Entry>,
    pub pci: Arc<Mutex<pci::PciSegment>>,
    pub acpi: AcpiTables,
    pub iommu: Option<IommuUnit>,
    /// Device and IOAPIC interrupts go here (through interrupt remapping when the IOMMU has it).
    pub router: Arc<MsiRouter>,
}

impl Platform {
    /// Builds the platform; `io` says where interrupts go and what memory DMA reaches.
    pub fn build(config: &MachineConfig, io: PlatformIo) -> Result<Self, PlatformError> {
        config.validate()?;
        let reserved = config
            .iommu
            .as_ref()
            .map(IommuConfig::reserved_ranges)
            .unwrap_or_default();
        let e820 = memory::e820_map_with_reserved(config.memory_mib, &reserved)?;
        let iommu = config
            .iommu
            .as_ref()
            .map(|c| IommuUnit::new(c, io.mem.clone(), io.iommu_irq.clone()));
        let port: Arc<dyn DmaPort> = match &iommu {
            Some(unit) => unit.port(),
            None => Arc::new(IdentityPort),
        };
        let dma = DmaAccessor::new(port.clone(), io.mem.clone(), u32::from(test_device_bdf()));
        let epf_dma = DmaAccessor::new(port.clone(), io.mem.clone(), u32::from(epf_test_bdf()));
        let ioat_dma = DmaAccessor::new(port.clone(), io.mem.clone(), u32::from(ioat_bdf()));
        let remapper = iommu.as_ref().and_then(IommuUnit::remapper);
        let router = Arc::new(MsiRouter::new(io.msi, remapper));
        let vf_paths = Arc::new(VfPaths {
            port,
            mem: io.mem.clone(),
            router: router.clone(),
        });
        let mut segment = pci::PciSegment::new();
        let test_device = pci::test_device::TestDevice::with_vf_platform(
            router.for_device(test_device_bdf()),
            dma,
            vf_paths,
        )
        .map_err(|e| PlatformError::Pci(e.to_string()))?;
        segment
            .add_device(
                pci::test_device::DEFAULT_DEVICE_NUMBER,
                Box::new(test_device),
            )
            .map_err(|e| PlatformError::Pci(e.to_string()))?;
        let epf = pci::epf_test::EpfTest::new(router.for_device(epf_test_bdf()), epf_dma)
            .map_err(|e| PlatformError::Pci(e.to_string()))?;
        segment
            .add_device(pci::epf_test::DEFAULT_DEVICE_NUMBER, Box::new(epf))
            .map_err(|e| PlatformError::Pci(e.to_string()))?;
        let ioat = pci::ioat::Ioat::new(router.for_device(ioat_bdf()), ioat_dma)
            .map_err(|e| PlatformError::Pci(e.to_string()))?;
        segment
            .add_device(pci::ioat::DEFAULT_DEVICE_NUMBER, Box::new(ioat))
            .map_err(|e| PlatformError::Pci(e.to_string()))?;
        segment
            .allocate_bars(
                (layout::PCI_MMIO32_START, layout::PCI_MMIO32_SIZE),
                (layout::PCI_MMIO64_START, layout::PCI_MMIO64_SIZE),
            )
            .map_err(|e| PlatformError::Pci(e.to_string()))?;
        let mut platform = acpi_platform(config);
        if let Some(c) = &config.iommu {
            platform.extra_tables = c.acpi_tables().map_err(PlatformError::IommuTables)?;
        }
        let acpi = acpi::build_acpi(&platform, layout::ACPI_START, layout::ACPI_SIZE)?;
        Ok(Self {
            config: config.clone(),
            e820,
            pci: Arc::new(Mutex::new(segment)),
            acpi,
            iommu,
            router,
        })
    }

    /// The machine description `iovmm describe` prints and guest tests compare against.
    pub fn describe(config: &MachineConfig) -> Result<MachineDescription, PlatformError> {
        let p = Self::build(config, PlatformIo::detached())?;
        let acpi_tables = p.acpi.infos();
        let pci = lock(&p.pci).describe();
        Ok(MachineDescription {
            cpus: config.cpus,
            memory_mib: config.memory_mib,
            e820: p.e820,
            acpi_tables,
            pci,
            iommu: p.iommu.as_ref().map(|u| u.info(test_device_bdf())),
        })
    }

    /// Raw table files for `iovmm tables`: every ACPI table, then the IOMMU's non-ACPI blobs (a device tree).
    pub fn table_files(&self) -> Result<Vec<(String, Vec<u8>)>, PlatformError> {
        let mut files: Vec<(String, Vec<u8>)> = acpi::table_files(&self.acpi)
            .into_iter()
            .map(|(name, bytes)| (name, bytes.to_vec()))
            .collect();
        if let Some(c) = &self.config.iommu {
            files.extend(c.extra_files().map_err(PlatformError::IommuFirmware)?);
        }
        Ok(files)
    }

    /// Puts the PCI host bridge on the buses: CF8/CFC, ECAM, and the two BAR windows.
    pub fn attach(&self, io_bus: &mut Bus, mmio_bus: &mut Bus) -> Result<(), BusError> {
        let pci = &self.pci;
        io_bus.insert(
            Arc::new(Mutex::new(PciPio(pci.clone()))),
            u64::from(layout::PCI_CONFIG_IO_START),
            u64::from(layout::PCI_CONFIG_IO_SIZE),
        )?;
        mmio_bus.insert(
            Arc::new(Mutex::new(PciEcam(pci.clone()))),
            layout::PCI_ECAM_START,
            layout::PCI_ECAM_SIZE,
        )?;
        if let Some(unit) = &self.iommu {
            unit.attach(mmio_bus)?;
        }
        for (base, size) in [
            (layout::PCI_MMIO32_START, layout::PCI_MMIO32_SIZE),
            (layout::PCI_MMIO64_START, layout::PCI_MMIO64_SIZE),
        ] {
            mmio_bus.insert(
                Arc::new(Mutex::new(PciBars {
                    segment: pci.clone(),
                    base,
                    iommu: self.iommu.clone(),
                })),
                base,
                size,
            )?;
        }
        Ok(())
    }
}

fn acpi_platform(config: &MachineConfig) -> AcpiPlatform {
    AcpiPlatform {
        cpus: config.cpus,
        lapic_address: layout::LAPIC_START as u32,
        ioapic: IoApic {
            id: 0,
            address: layout::IOAPIC_START as u32,
            gsi_base: 0,
        },
        pci: PciHostBridge {
            segment: 0,
            ecam_base: layout::PCI_ECAM_START,
            bus_start: layout::PCI_BUS_START,
            bus_end: layout::PCI_BUS_END,
            mmio32: (layout::PCI_MMIO32_START, layout::PCI_MMIO32_SIZE),
            mmio64: (layout::PCI_MMIO64_START, layout::PCI_MMIO64_SIZE),
            io: (layout::PCI_IO_START, layout::PCI_IO_SIZE),
        },
        serial_com1: Some((layout::COM1_PORT, layout::COM1_IRQ as u8)),
        reset: Some((layout::I8042_COMMAND_PORT, layout::I8042_RESET_COMMAND)),
        extra_tables: Vec::new(),
    }
}

/// CF8/CFC configuration mechanism on the I/O bus.
struct PciPio(Arc<Mutex<pci::PciSegment>>);

impl BusDevice for PciPio {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        lock(&self.0).pio_read(offset, data);
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        lock(&self.0).pio_write(offset, data);
    }
}

/// ECAM on the MMIO bus.
struct PciEcam(Arc<Mutex<pci::PciSegment>>);

impl BusDevice for PciEcam {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        lock(&self.0).ecam_read(offset, data);
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        lock(&self.0).ecam_write(offset, data);
    }
}

/// One BAR window on the MMIO bus: accesses go to whichever BAR currently decodes the address.
struct PciBars {
    segment: Arc<Mutex<pci::PciSegment>>,
    base: u64,
    /// The IOMMU, which can block MMIO to the devices behind it (a frozen TCE PE).
    iommu: Option<IommuUnit>,
}

impl PciBars {
    fn blocked(&self) -> bool {
        self.iommu.as_ref().is_some_and(IommuUnit::mmio_blocked)
    }
}

impl BusDevice for PciBars {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let gpa = self.base + offset;
        if self.blocked() {
            // EEH: loads from a frozen PE's MMIO return all ones (LoPAR "Enhanced I/O Error Handling").
            data.fill(0xff);
            return;
        }
        if !lock(&self.segment).mmio_read(gpa, data) {
            log::debug!("unclaimed PCI MMIO read {gpa:#x} size {}", data.len());
            data.fill(0xff);
        }
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        let gpa = self.base + offset;
        if self.blocked() {
            // ... and stores to it are dropped.
            return;
        }
        if !lock(&self.segment).mmio_write(gpa, data) {
            log::debug!("unclaimed PCI MMIO write {gpa:#x} {data:02x?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MachineConfig {
        MachineConfig {
            memory_mib: 512,
            cpus: 2,
            iommu: None,
        }
    }

    #[test]
    fn rejects_bad_cpu_counts() {
        for cpus in [0, 9, 255] {
            let c = MachineConfig { cpus, ..config() };
            assert!(matches!(c.validate(), Err(PlatformError::BadCpuCount(n)) if n == cpus));
        }
        assert!(config().validate().is_ok());
    }

    #[test]
    fn description_lists_tables_and_pci() {
        let d = Platform::describe(&config()).unwrap();
        let sigs: Vec<&str> = d.acpi_tables.iter().map(|t| t.signature.as_str()).collect();
        for sig in ["RSDP", "XSDT", "FACP", "DSDT", "APIC", "MCFG"] {
            assert!(sigs.contains(&sig), "{sig} missing from {sigs:?}");
        }
        assert_eq!(d.cpus, 2);
        assert_eq!(d.e820, memory::e820_map(512).unwrap());
        assert!(
            d.pci.iter().any(|f| f.bdf == "0000:00:00.0"),
            "host bridge missing: {:?}",
            d.pci
        );
        // Every BAR sits inside one of the windows published in _CRS.
        for f in &d.pci {
            for b in &f.bars {
                let in32 = b.start >= layout::PCI_MMIO32_START
                    && b.end < layout::PCI_MMIO32_START + layout::PCI_MMIO32_SIZE;
                let in64 = b.start >= layout::PCI_MMIO64_START
                    && b.end < layout::PCI_MMIO64_START + layout::PCI_MMIO64_SIZE;
                assert!(in32 || in64, "{b:?}");
            }
        }
    }

    #[test]
    fn description_is_deterministic() {
        assert_eq!(
            Platform::describe(&config()).unwrap(),
            Platform::describe(&config()).unwrap()
        );
    }

    #[test]
    fn vf_requester_ids_are_dma_sources() {
        assert_eq!(test_device_vf_bdfs(), vec![0x19, 0x1a, 0x1b, 0x1c]);
        let s = dma_sources();
        assert_eq!(&s[..3], &[0x18, 0x20, 0x30], "the test device first");
        assert!(s.ends_with(&test_device_vf_bdfs()));
        // 00:05.0 stays empty (vtd-rmrr puts an RMRR on it), and no id is used twice.
        assert!(s.iter().all(|&r| r >> 3 != 5));
        let mut u = s.clone();
        u.sort_unstable();
        u.dedup();
        assert_eq!(u.len(), s.len());
    }

    /// Records raw MSIs.
    #[derive(Default)]
    struct RawRecorder(Mutex<Vec<(u64, u32)>>);

    impl RawMsi for RawRecorder {
        fn signal(&self, address: u64, data: u32) -> Result<(), MsiError> {
            self.0.lock().unwrap().push((address, data));
            Ok(())
        }
    }

    /// The guest enables two VFs of the test device through ECAM: they answer config and MMIO on the
    /// platform's buses, raise MSI-X through the router and do DMA into guest memory.
    #[test]
    fn test_device_vfs_come_alive() {
        use pci::test_device::regs::*;
        let raw = Arc::new(RawRecorder::default());
        let mem = Arc::new(TestMemory::new(0x1_0000));
        let io = PlatformIo {
            msi: raw.clone(),
            iommu_irq: Arc::new(DiscardMsi),
            mem: mem.clone(),
        };
        let p = Platform::build(&config(), io).unwrap();
        let mut io_bus = Bus::new();
        let mut mmio = Bus::new();
        p.attach(&mut io_bus, &mut mmio).unwrap();
        let boot = lock(&p.pci).describe();
        assert!(boot
            .iter()
            .all(|f| !f.bdf.starts_with("0000:00:03.") || f.bdf.ends_with(".0")));
        assert!(boot.iter().all(|f| f.bdf != "0000:00:05.0"));
        let ecam = |f: u64, reg: usize| layout::PCI_ECAM_START | 3 << 15 | f << 12 | reg as u64;
        let w16 = |addr: u64, v: u16| assert!(mmio.write(addr, &v.to_le_bytes()));
        let r32 = |addr: u64| {
            let mut b = [0u8; 4];
            assert!(mmio.read(addr, &mut b), "{addr:#x} unclaimed");
            u32::from_le_bytes(b)
        };
        w16(ecam(0, SRIOV_CAP_OFFSET + 0x10), 2);
        w16(ecam(0, SRIOV_CAP_OFFSET + 0x08), 0x9);
        assert_eq!(r32(ecam(1, 0x08)), CLASS_CODE << 8 | u32::from(REVISION));
        assert_eq!(r32(ecam(3, 0x08)), u32::MAX, "no third VF");
        let iov = lock(&p.pci).device(3).unwrap().iov_bars();
        let (vf_bar0, vf_bar2) = (iov[0].address, iov[1].address);
        assert_eq!(r32(vf_bar0 + REG_ID), ID_MAGIC);
        assert_eq!(r32(vf_bar0 + 0x1000 + REG_FEATURES), VF_FEATURES);
        // VF 1: bus mastering, MSI-X vector 0, a fill with a completion interrupt.
        w16(ecam(2, 0x04), 0x4);
        let msix = lock(&p.pci)
            .function_by_rid(0x1a)
            .and_then(|v| v.config().find_capability(0x11))
            .unwrap();
        w16(ecam(2, msix + 2), 0x8000);
        let table = vf_bar2 + 0x1000;
        assert!(mmio.write(table, &0xfee0_0000u64.to_le_bytes()));
        assert!(mmio.write(table + 8, &0x45u32.to_le_bytes()));
        assert!(mmio.write(table + 12, &0u32.to_le_bytes()));
        let regs = vf_bar0 + 0x1000;
        assert!(mmio.write(regs + REG_DMA_DST, &0x800u64.to_le_bytes()));
        assert!(mmio.write(regs + REG_DMA_LEN, &16u64.to_le_bytes()));
        assert!(mmio.write(
            regs + REG_DMA_PATTERN,
            &0x1122_3344_5566_7788u64.to_le_bytes()
        ));
        assert!(mmio.write(regs + REG_DMA_FLAGS, &DMA_FLAG_IRQ.to_le_bytes()));
        assert!(mmio.write(regs + REG_DMA_CMD, &DMA_CMD_FILL.to_le_bytes()));
        assert_eq!(r32(regs + REG_DMA_STATUS), STATUS_DONE);
        let mut got = [0u8; 16];
        mem.read(0x800, &mut got).unwrap();
        assert_eq!(&got[..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(raw.0.lock().unwrap().as_slice(), &[(0xfee0_0000, 0x45)]);
        let now: Vec<String> = lock(&p.pci).describe().into_iter().map(|f| f.bdf).collect();
        assert!(
            now.contains(&"0000:00:03.1".to_string()) && now.contains(&"0000:00:03.2".to_string())
        );
        // VF Enable off: gone again.
        w16(ecam(0, SRIOV_CAP_OFFSET + 0x08), 0);
        assert_eq!(r32(ecam(1, 0x08)), u32::MAX);
        assert_eq!(lock(&p.pci).describe(), boot);
    }

    /// A VF's DMA and MSIs carry its own requester id into the IOMMU port and the interrupt remapper.
    #[test]
    fn vf_paths_carry_the_vf_requester_id() {
        use crate::interrupts::InterruptRemapper;
        use iommu::{DmaFault, DmaRequest, Translation};
        use pci::sriov::VfPlatform;

        #[derive(Default)]
        struct Ids(Mutex<Vec<u32>>);
        impl DmaPort for Ids {
            fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
                self.0.lock().unwrap().push(req.source_id);
                IdentityPort.translate(req)
            }
        }
        impl InterruptRemapper for Ids {
            fn remap(&self, source_id: u16, address: u64, data: u32) -> Option<(u64, u32)> {
                self.0.lock().unwrap().push(u32::from(source_id));
                Some((address, data))
            }
        }
        let port = Arc::new(Ids::default());
        let remap = Arc::new(Ids::default());
        let paths = VfPaths {
            port: port.clone(),
            mem: Arc::new(TestMemory::new(0x1000)),
            router: Arc::new(MsiRouter::new(Arc::new(DiscardMsi), Some(remap.clone()))),
        };
        paths.dma(0x1b).write(0x10, None, &[1, 2, 3]).unwrap();
        paths
            .msi_sink(0x1b)
            .send(MsiMessage {
                address: 0xfee0_0000,
                data: 0x30,
            })
            .unwrap();
        assert_eq!(port.0.lock().unwrap().as_slice(), &[0x1b]);
        assert_eq!(remap.0.lock().unwrap().as_slice(), &[0x1b]);
    }

    #[test]
    fn acpi_tables_fit_the_reserved_area() {
        let p = Platform::build(
            &MachineConfig {
                cpus: 8,
                ..config()
            },
            PlatformIo::detached(),
        )
        .unwrap();
        for t in p.acpi.all() {
            assert!(t.address >= layout::ACPI_START);
            assert!(t.address + t.bytes.len() as u64 <= layout::ACPI_START + layout::ACPI_SIZE);
        }
        assert_eq!(p.acpi.rsdp.address, layout::ACPI_START);
    }
}

#[cfg(test)]
mod iommu_tests {
    use super::*;
    use firmware_tables::description::E820Kind;

    fn vtd(options: &str) -> MachineConfig {
        MachineConfig {
            memory_mib: 512,
            cpus: 1,
            iommu: Some(options.parse().unwrap()),
        }
    }

    #[test]
    fn vtd_platform_publishes_dmar_and_ranges() {
        let d = Platform::describe(&vtd("vtd,aw=48")).unwrap();
        assert!(d.acpi_tables.iter().any(|t| t.signature == "DMAR"));
        let info = d.iommu.unwrap();
        assert_eq!(info.model, "vtd");
        assert_eq!(info.base, layout::VTD_START);
        assert_eq!(info.test_device_bdf, "0000:00:03.0");
        let r: Vec<(u64, u64)> = info
            .permitted_ranges
            .iter()
            .map(|r| (r.first, r.last))
            .collect();
        assert_eq!(r, vec![(0, 0xfedf_ffff), (0xfef0_0000, 0xffff_ffff_ffff)]);
    }

    #[test]
    fn rmrr_is_reserved_in_e820() {
        let d = Platform::describe(&vtd("vtd,rmrr=0x1000000-0x100ffff@00:05.0")).unwrap();
        assert!(d
            .e820
            .iter()
            .any(|e| e.start == 0x100_0000 && e.end == 0x100_ffff && e.kind == E820Kind::Reserved));
    }

    #[test]
    fn tce_platform_has_the_seed_windows_and_a_reserved_pool() {
        let d = Platform::describe(&vtd("tce")).unwrap();
        let info = d.iommu.unwrap();
        assert_eq!(info.model, "tce");
        assert_eq!(info.base, layout::TCE_START);
        let r: Vec<(u64, u64)> = info
            .permitted_ranges
            .iter()
            .map(|r| (r.first, r.last))
            .collect();
        // The seed email's POWER example, literally.
        assert_eq!(
            r,
            vec![
                (0, 0x3fff_ffff),
                (0x800_0000_0000_0000, 0x800_1fff_ffff_ffff)
            ]
        );
        let (base, size) = crate::iommus::TCE_DEFAULT_POOL;
        assert!(d
            .e820
            .iter()
            .any(|e| e.start == base && e.end == base + size - 1 && e.kind == E820Kind::Reserved));
        assert!(d
            .acpi_tables
            .iter()
            .all(|t| t.signature != "DMAR" && t.signature != "IORT"));
        let p = Platform::build(&vtd("tce"), PlatformIo::detached()).unwrap();
        let files = p.table_files().unwrap();
        let dtb = files.iter().find(|(n, _)| n == "tce.dtb").expect("tce.dtb");
        assert_eq!(&dtb.1[..4], &[0xd0, 0x0d, 0xfe, 0xed], "FDT magic");
    }

    /// EEH: once a bad DMA froze the PE, the test device's BAR reads all ones and writes are dropped; a PE
    /// reset brings it back.
    #[test]
    fn frozen_tce_pe_reads_all_ones() {
        use iommu::{Access, DmaRequest};
        let p = Platform::build(&vtd("tce"), PlatformIo::detached()).unwrap();
        let mut io = Bus::new();
        let mut mmio = Bus::new();
        p.attach(&mut io, &mut mmio).unwrap();
        let bar0 = lock(&p.pci)
            .describe()
            .into_iter()
            .find(|f| f.bdf == "0000:00:03.0")
            .and_then(|f| f.bars.into_iter().find(|b| b.index == 0))
            .expect("test device BAR0")
            .start;
        let read_id = || {
            let mut b = [0u8; 4];
            assert!(mmio.read(bar0 + pci::test_device::regs::REG_ID, &mut b));
            u32::from_le_bytes(b)
        };
        assert_eq!(read_id(), pci::test_device::regs::ID_MAGIC);
        let unit = p.iommu.as_ref().unwrap();
        // 0x4000_0000 is past the 1 GiB 32-bit window and below the 64-bit one: no window.
        let bad = DmaRequest::new(u32::from(test_device_bdf()), 0x4000_0000, Access::Write);
        assert!(unit.port().translate(&bad).is_err());
        assert!(unit.mmio_blocked());
        assert_eq!(read_id(), 0xffff_ffff);
        let IommuUnit::Tce(t) = unit else {
            panic!("not a TCE unit")
        };
        t.reset_pe();
        assert!(!unit.mmio_blocked());
        assert_eq!(read_id(), pci::test_device::regs::ID_MAGIC);
    }
}
