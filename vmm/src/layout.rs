//! The guest physical address map (x86-64): the one table every other part of the VMM reads.
//!
//! ```text
//! 0x0000_0000 ..           low RAM (boot structures below 1 MiB, kernel at 1 MiB)
//! 0x000E_0000 .. 0x000F_FFFF ACPI tables (RSDP first), reserved in e820
//! 0xC000_0000 .. 0xDFFF_FFFF 32-bit PCI MMIO window
//! 0xE000_0000 .. 0xEFFF_FFFF PCIe ECAM (MCFG), buses 0..=255
//! 0xFEA0_0000 .. 0xFEA1_FFFF SMMUv3 registers (pages 0 and 1), when --iommu smmuv3
//! 0xFEB0_0000                POWER TCE hardware view (TVEs, kill, EEH), when --iommu tce
//! 0xFEC0_0000                IOAPIC
//! 0xFED9_0000                VT-d remapping unit registers
//! 0xFEE0_0000                LAPIC / MSI window
//! 0x1_0000_0000 ..           high RAM (whatever does not fit below the hole)
//! 0x40_0000_0000 .. +64 GiB  64-bit PCI MMIO window
//! ```
//! Everything published in ACPI and e820 is derived from these constants.

/// GDT (boot protocol 64-bit entry needs __BOOT_CS 0x10 and __BOOT_DS 0x18).
pub const BOOT_GDT_START: u64 = 0x500;
/// Zero-length IDT used while entering the kernel.
pub const BOOT_IDT_START: u64 = 0x520;
/// Stack pointer handed to the kernel (it sets up its own immediately).
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// boot_params ("zero page").
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Identity-mapping page tables: PML4, one PDPT, four page directories (2 MiB pages, first 4 GiB).
pub const PML4_START: u64 = 0x9000;
pub const PDPTE_START: u64 = 0xa000;
pub const PDE_START: u64 = 0xb000;
/// Kernel command line.
pub const CMDLINE_START: u64 = 0x2_0000;
/// Largest command line we accept (Linux x86 COMMAND_LINE_SIZE).
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// End of conventional memory below the legacy VGA/BIOS area.
pub const EBDA_START: u64 = 0x9_fc00;
/// Legacy hole [640 KiB, 1 MiB): reserved in e820.
pub const LEGACY_HOLE_START: u64 = 0xa_0000;
/// RSDP (the other ACPI tables follow it).
pub const ACPI_START: u64 = 0xe_0000;
/// Size of the ACPI area.
pub const ACPI_SIZE: u64 = 0x2_0000;
/// Where the protected-mode kernel is loaded.
pub const KERNEL_START: u64 = 0x10_0000;
/// Start of the high-memory region as the boot protocol understands it.
pub const HIMEM_START: u64 = 0x10_0000;

/// Start of the 32-bit MMIO hole: RAM stops here and continues at 4 GiB.
pub const MMIO32_HOLE_START: u64 = 0xc000_0000;
/// First address above 4 GiB.
pub const RAM_HIGH_START: u64 = 0x1_0000_0000;

/// 32-bit PCI MMIO window.
pub const PCI_MMIO32_START: u64 = 0xc000_0000;
pub const PCI_MMIO32_SIZE: u64 = 0x2000_0000;
/// PCIe ECAM window: 256 buses of 1 MiB.
pub const PCI_ECAM_START: u64 = 0xe000_0000;
pub const PCI_ECAM_SIZE: u64 = 0x1000_0000;
pub const PCI_BUS_START: u8 = 0;
pub const PCI_BUS_END: u8 = 255;
/// 64-bit PCI MMIO window.
pub const PCI_MMIO64_START: u64 = 0x40_0000_0000;
pub const PCI_MMIO64_SIZE: u64 = 0x10_0000_0000;
/// PCI I/O window published in _CRS (no device uses I/O BARs today).
pub const PCI_IO_START: u16 = 0x1000;
pub const PCI_IO_SIZE: u16 = 0xf000;

/// Arm SMMUv3 register pages 0 and 1 (IHI0070 §6.2), 64 KiB each.
pub const SMMUV3_START: u64 = 0xfea0_0000;

/// POWER TCE unit's hardware view: translation validation entries, TCE kill, EEH state (4 KiB).
pub const TCE_START: u64 = 0xfeb0_0000;

/// IOAPIC (userspace, split irqchip).
pub const IOAPIC_START: u64 = 0xfec0_0000;
/// Size of the IOAPIC register window.
pub const IOAPIC_SIZE: u64 = 0x1000;
/// Number of IOAPIC pins (KVM reserves as many GSI routes for a split irqchip).
pub const IOAPIC_PINS: u32 = 24;
/// VT-d remapping hardware unit registers.
pub const VTD_START: u64 = 0xfed9_0000;
/// Local APIC.
pub const LAPIC_START: u64 = 0xfee0_0000;

/// COM1.
pub const COM1_PORT: u16 = 0x3f8;
pub const COM1_IRQ: u32 = 4;
/// PCI configuration mechanism #1 (CF8 address, CFC..CFF data).
pub const PCI_CONFIG_IO_START: u16 = 0xcf8;
pub const PCI_CONFIG_IO_SIZE: u16 = 8;
/// The iovmm exit device: a write of an 8/16/32-bit value ends the VM with that status (low 8 bits).
/// Same port as QEMU's `isa-debug-exit,iobase=0xf4` so one guest binary works on both.
pub const EXIT_DEVICE_PORT: u16 = 0xf4;
/// i8042 command port: 0xFE pulses the CPU reset line (Linux `reboot=k`).
pub const I8042_COMMAND_PORT: u16 = 0x64;
pub const I8042_RESET_COMMAND: u8 = 0xfe;

/// Largest memory size we accept, in MiB (keeps RAM below the 64-bit MMIO window).
pub const MAX_MEMORY_MIB: u64 = 64 * 1024;
/// Smallest memory size we accept, in MiB.
pub const MIN_MEMORY_MIB: u64 = 64;
/// Most vCPUs we offer.
pub const MAX_VCPUS: u8 = 8;
