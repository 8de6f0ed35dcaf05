//! A vCPU thread: runs KVM_RUN and dispatches port I/O and MMIO exits to the buses.

use std::sync::Arc;

use kvm_ioctls::{VcpuExit, VcpuFd};

use crate::bus::Bus;
use crate::devices::{ExitReason, ExitSender};

/// KVM_SYSTEM_EVENT_* types (include/uapi/linux/kvm.h).
const SYSTEM_EVENT_SHUTDOWN: u32 = 1;
const SYSTEM_EVENT_RESET: u32 = 2;
const SYSTEM_EVENT_CRASH: u32 = 3;

/// One vCPU and what it dispatches to.
pub struct Vcpu {
    pub fd: VcpuFd,
    pub id: u8,
    pub io_bus: Arc<Bus>,
    pub mmio_bus: Arc<Bus>,
    pub events: ExitSender,
}

impl Vcpu {
    /// Runs until the VM stops; the reason goes to `events`.
    pub fn run(mut self) {
        let reason = self.run_loop();
        let _ = self.events.send(reason);
    }

    fn run_loop(&mut self) -> ExitReason {
        loop {
            match self.fd.run() {
                Ok(exit) => match exit {
                    VcpuExit::IoIn(port, data) => {
                        if !self.io_bus.read(u64::from(port), data) {
                            log::debug!(
                                "vcpu{}: unassigned port read {port:#x} size {}",
                                self.id,
                                data.len()
                            );
                            data.fill(0xff);
                        }
                    }
                    VcpuExit::IoOut(port, data) => {
                        if !self.io_bus.write(u64::from(port), data) {
                            log::debug!(
                                "vcpu{}: unassigned port write {port:#x} {data:02x?}",
                                self.id
                            );
                        }
                    }
                    VcpuExit::MmioRead(addr, data) => {
                        if !self.mmio_bus.read(addr, data) {
                            log::debug!(
                                "vcpu{}: unassigned MMIO read {addr:#x} size {}",
                                self.id,
                                data.len()
                            );
                            data.fill(0xff);
                        }
                    }
                    VcpuExit::MmioWrite(addr, data) => {
                        if !self.mmio_bus.write(addr, data) {
                            log::debug!(
                                "vcpu{}: unassigned MMIO write {addr:#x} {data:02x?}",
                                self.id
                            );
                        }
                    }
                    // Only for level-triggered IOAPIC routes, which our edge-only IOAPIC never installs.
                    VcpuExit::IoapicEoi(vector) => {
                        log::debug!("vcpu{}: IOAPIC EOI for vector {vector:#x}", self.id);
                    }
                    VcpuExit::Hlt => {
                        return ExitReason::Error(format!(
                            "vcpu{} halted with interrupts off",
                            self.id
                        ))
                    }
                    VcpuExit::Shutdown => {
                        return ExitReason::Reset {
                            what: "triple fault",
                        }
                    }
                    VcpuExit::SystemEvent(kind, _) => {
                        return match kind {
                            SYSTEM_EVENT_SHUTDOWN => ExitReason::PowerOff,
                            SYSTEM_EVENT_RESET => ExitReason::Reset {
                                what: "KVM reset event",
                            },
                            SYSTEM_EVENT_CRASH => ExitReason::Reset {
                                what: "KVM crash event",
                            },
                            other => ExitReason::Error(format!(
                                "vcpu{}: unknown system event {other}",
                                self.id
                            )),
                        };
                    }
                    VcpuExit::FailEntry(reason, cpu) => {
                        return ExitReason::Error(format!(
                            "vcpu{}: VM entry failed (hardware reason {reason:#x}, cpu {cpu})",
                            self.id
                        ));
                    }
                    VcpuExit::InternalError => {
                        return ExitReason::Error(format!("vcpu{}: KVM internal error", self.id));
                    }
                    other => {
                        return ExitReason::Error(format!(
                            "vcpu{}: unexpected exit {other:?}",
                            self.id
                        ))
                    }
                },
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
                Err(e) => {
                    return ExitReason::Error(format!("vcpu{}: KVM_RUN failed: {e}", self.id))
                }
            }
        }
    }
}
