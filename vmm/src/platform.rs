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

/// Requester ids of every DMA-capable device behind the IOMMU.
pub fn dma_sources() -> Vec<u16> {
    vec![test_device_bdf(), epf_test_bdf(), ioat_bdf()]
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
        let ioat_dma = DmaAccessor::new(port, io.mem.clone(), u32::from(ioat_bdf()));
        let remapper = iommu.as_ref().and_then(IommuUnit::remapper);
        let router = Arc::new(MsiRouter::new(io.msi, remapper));
        let mut segment = pci::PciSegment::new();
        let test_device =
            pci::test_device::TestDevice::new(router.for_device(test_device_bdf()), dma)
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
