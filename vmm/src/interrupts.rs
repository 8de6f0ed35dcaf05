//! MSI delivery through KVM's in-kernel irqchip (KVM_SIGNAL_MSI).

use std::sync::Arc;

use kvm_bindings::kvm_msi;
use kvm_ioctls::VmFd;
use pci::{MsiError, MsiMessage, MsiSink};

/// Delivers MSIs with KVM_SIGNAL_MSI.
pub struct KvmMsiSink {
    vm: Arc<VmFd>,
}

impl KvmMsiSink {
    pub fn new(vm: Arc<VmFd>) -> Self {
        Self { vm }
    }
}

impl MsiSink for KvmMsiSink {
    fn send(&self, msg: MsiMessage) -> Result<(), MsiError> {
        let msi = kvm_msi {
            address_lo: msg.address as u32,
            address_hi: (msg.address >> 32) as u32,
            data: msg.data,
            ..Default::default()
        };
        match self.vm.signal_msi(msi) {
            // 0 means the guest blocked it (e.g. masked at the LAPIC): still delivered as far as PCI goes.
            Ok(_) => Ok(()),
            Err(e) => {
                log::warn!(
                    "KVM_SIGNAL_MSI {:#x}/{:#x} failed: {e}",
                    msg.address,
                    msg.data
                );
                Err(MsiError::Delivery(e.to_string()))
            }
        }
    }
}

impl iommu::InterruptSink for KvmMsiSink {
    fn msi(&self, address: u64, data: u32) {
        // Errors are logged by `send`; an IOMMU has no way to report a failed interrupt write either.
        let _ = MsiSink::send(self, MsiMessage { address, data });
    }
}
