//! Building and running a KVM VM: memory, irqchip, boot state, buses, vCPU threads.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvm_bindings::{
    kvm_enable_cap, kvm_userspace_memory_region, CpuId, KVM_CAP_SPLIT_IRQCHIP,
    KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Kvm, VmFd};
use thiserror::Error;
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};

use crate::boot::{self, BootError};
use crate::bus::Bus;
use crate::devices::exit::ExitDevice;
use crate::devices::i8042::I8042Reset;
use crate::devices::ioapic::{Ioapic, IoapicPin};
use crate::devices::serial::{ConsoleOut, SerialPort};
use crate::devices::ExitReason;
use crate::interrupts::KvmMsiSink;
use crate::layout;
use crate::monitor::MonitorTarget;
use crate::platform::{MachineConfig, Platform, PlatformError, PlatformIo};
use crate::vcpu::Vcpu;
use crate::x86::{cpuid, lapic, regs, xsetbv};

/// KVM_SET_TSS_ADDRESS: three pages Intel VMX needs for real-mode emulation, inside the MMIO hole.
const KVM_TSS_ADDRESS: usize = 0xfffb_d000;

/// Errors building or running a VM.
#[derive(Debug, Error)]
pub enum VmError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot use /dev/kvm: {0}")]
    Kvm(kvm_ioctls::Error),
    #[error("KVM {0} failed: {1}")]
    KvmCall(&'static str, kvm_ioctls::Error),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error(transparent)]
    Regs(#[from] regs::RegsError),
    #[error("cannot write ACPI tables: {0}")]
    AcpiWrite(vm_memory::GuestMemoryError),
    #[error("cannot start vCPU thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
    #[error(transparent)]
    XsetbvProbe(#[from] xsetbv::ProbeError),
    #[error("cannot serve the monitor on {path}: {source}")]
    Monitor {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What to boot.
pub struct RunConfig {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    pub timeout: Option<Duration>,
    /// Serve the monitor on this Unix socket.
    pub monitor: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    Exited(ExitReason),
    /// The guest printed Linux's panic banner before resetting.
    Panicked,
    Timeout,
}

fn open(path: &PathBuf) -> Result<File, VmError> {
    File::open(path).map_err(|source| VmError::Open {
        path: path.clone(),
        source,
    })
}

fn register_memory(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<(), VmError> {
    for (slot, region) in mem.iter().enumerate() {
        let host = mem.get_host_address(region.start_addr()).map_err(|_| {
            VmError::KvmCall(
                "SET_USER_MEMORY_REGION",
                kvm_ioctls::Error::new(libc::EFAULT),
            )
        })?;
        let kregion = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().raw_value(),
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the host range [host, host + len) is a live mmap owned by `mem`, which outlives the VM
        // (both live until the process exits), and slots do not overlap (regions of one GuestMemoryMmap).
        unsafe { vm.set_user_memory_region(kregion) }
            .map_err(|e| VmError::KvmCall("SET_USER_MEMORY_REGION", e))?;
    }
    Ok(())
}

fn write_acpi(mem: &GuestMemoryMmap, platform: &Platform) -> Result<(), VmError> {
    for t in platform.acpi.all() {
        mem.write_slice(&t.bytes, GuestAddress(t.address))
            .map_err(VmError::AcpiWrite)?;
    }
    Ok(())
}

/// Boots `run.kernel` on a new VM shaped by `machine` and waits until it stops.
pub fn run(machine: &MachineConfig, run: &RunConfig) -> Result<RunOutcome, VmError> {
    machine.validate()?;
    // Open the guest's files before touching KVM, so bad paths fail fast with a clear message.
    let mut kernel = open(&run.kernel)?;
    boot::bzimage::read_header(&mut kernel).map_err(BootError::from)?;
    let initrd = run.initrd.as_ref().map(open).transpose()?;

    let kvm = Kvm::new().map_err(VmError::Kvm)?;
    let vm = Arc::new(
        kvm.create_vm()
            .map_err(|e| VmError::KvmCall("CREATE_VM", e))?,
    );
    vm.set_tss_address(KVM_TSS_ADDRESS)
        .map_err(|e| VmError::KvmCall("SET_TSS_ADDR", e))?;
    // Split irqchip: LAPICs in KVM, the IOAPIC in userspace so its messages can go through interrupt
    // remapping. No PIC and no PIT: the platform is hardware-reduced ACPI (Linux uses the LAPIC timer).
    let split = kvm_enable_cap {
        cap: KVM_CAP_SPLIT_IRQCHIP,
        args: [u64::from(layout::IOAPIC_PINS), 0, 0, 0],
        ..Default::default()
    };
    vm.enable_cap(&split)
        .map_err(|e| VmError::KvmCall("ENABLE_CAP(SPLIT_IRQCHIP)", e))?;

    let mem =
        crate::memory::create_guest_memory(machine.memory_mib).map_err(PlatformError::from)?;
    register_memory(&vm, &mem)?;

    let sink = Arc::new(KvmMsiSink::new(vm.clone()));
    let io = PlatformIo {
        msi: sink.clone(),
        iommu_irq: sink,
        mem: Arc::new(mem.clone()),
    };
    let platform = Platform::build(machine, io)?;
    write_acpi(&mem, &platform)?;
    regs::write_boot_structures(&mem)?;
    let boot = boot::load_linux(
        &mem,
        &platform.e820,
        &mut kernel,
        initrd,
        &run.cmdline,
        platform.acpi.rsdp.address,
    )?;

    if let Some(path) = &run.monitor {
        let target = MonitorTarget::new(platform.iommu.clone(), crate::platform::dma_sources());
        crate::monitor::server::spawn(path, Arc::new(target)).map_err(|source| {
            VmError::Monitor {
                path: path.clone(),
                source,
            }
        })?;
        log::info!("monitor on {}", path.display());
    }

    let (events, exits) = mpsc::channel();
    let panicked = Arc::new(AtomicBool::new(false));
    let ioapic = Arc::new(Mutex::new(Ioapic::new(
        0,
        firmware_tables::acpi::PLATFORM_IOAPIC_SOURCE_ID,
        platform.router.clone(),
    )));
    let serial_irq = IoapicPin {
        ioapic: ioapic.clone(),
        pin: layout::COM1_IRQ as usize,
    };

    let mut io_bus = Bus::new();
    let console = ConsoleOut::new(std::io::stdout(), panicked.clone());
    io_bus.insert(
        Arc::new(Mutex::new(SerialPort::new(serial_irq, console))),
        u64::from(layout::COM1_PORT),
        8,
    )?;
    io_bus.insert(
        Arc::new(Mutex::new(ExitDevice::new(events.clone()))),
        u64::from(layout::EXIT_DEVICE_PORT),
        1,
    )?;
    io_bus.insert(
        Arc::new(Mutex::new(I8042Reset::new(events.clone()))),
        u64::from(layout::I8042_COMMAND_PORT),
        1,
    )?;
    let mut mmio_bus = Bus::new();
    mmio_bus.insert(ioapic, layout::IOAPIC_START, layout::IOAPIC_SIZE)?;
    platform.attach(&mut io_bus, &mut mmio_bus)?;
    let (io_bus, mmio_bus) = (Arc::new(io_bus), Arc::new(mmio_bus));

    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| VmError::KvmCall("GET_SUPPORTED_CPUID", e))?;
    let xsetbv_intercepted = xsetbv::probe(&kvm, &supported)?;
    if !xsetbv_intercepted {
        log::info!(
            "this KVM does not see its guests' XSETBV (nested under QEMU TCG?): XSAVE features limited to x87/SSE/AVX"
        );
    }
    let paging = machine.vcpu_paging_limits();
    let mut threads = Vec::new();
    for id in 0..machine.cpus {
        let fd = vm
            .create_vcpu(u64::from(id))
            .map_err(|e| VmError::KvmCall("CREATE_VCPU", e))?;
        let mut entries = cpuid::for_vcpu(&supported, id, machine.cpus, paging);
        if !xsetbv_intercepted {
            xsetbv::restrict(&mut entries);
        }
        let cpuid = CpuId::from_entries(&entries)
            .map_err(|_| VmError::KvmCall("SET_CPUID2", kvm_ioctls::Error::new(libc::E2BIG)))?;
        fd.set_cpuid2(&cpuid)
            .map_err(|e| VmError::KvmCall("SET_CPUID2", e))?;
        regs::set_xcr0(&fd, xsetbv::boot_xcr0(&entries, xsetbv_intercepted))?;
        regs::setup_common(&fd)?;
        let mut lapic_state = fd
            .get_lapic()
            .map_err(|e| VmError::KvmCall("GET_LAPIC", e))?;
        lapic::set_lint(&mut lapic_state);
        fd.set_lapic(&lapic_state)
            .map_err(|e| VmError::KvmCall("SET_LAPIC", e))?;
        if id == 0 {
            regs::setup_boot_vcpu(&fd, boot.entry)?;
        }
        let vcpu = Vcpu {
            fd,
            id,
            io_bus: io_bus.clone(),
            mmio_bus: mmio_bus.clone(),
            events: events.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("vcpu{id}"))
            .spawn(move || vcpu.run())
            .map_err(VmError::Thread)?;
        threads.push(handle);
    }
    drop(events);

    let reason = match run.timeout {
        Some(t) => exits.recv_timeout(t),
        None => exits.recv().map_err(|_| RecvTimeoutError::Disconnected),
    };
    // vCPU threads are not joined: the process exits right after reporting, which tears the VM down.
    Ok(match reason {
        Ok(ExitReason::Reset { .. }) if panicked.load(Ordering::SeqCst) => RunOutcome::Panicked,
        Ok(r) => RunOutcome::Exited(r),
        Err(RecvTimeoutError::Timeout) => RunOutcome::Timeout,
        Err(RecvTimeoutError::Disconnected) => RunOutcome::Exited(ExitReason::Error(
            "all vCPU threads ended without a reason".into(),
        )),
    })
}
