//! Interrupt delivery: device MSIs and IOAPIC messages go through the IOMMU's interrupt remapping (when it
//! has one) and then to KVM's in-kernel LAPICs with KVM_SIGNAL_MSI. The IOMMU's own interrupts (fault
//! events, invalidation completion) are not subject to remapping and go straight to KVM.

use std::sync::Arc;

use kvm_bindings::kvm_msi;
use kvm_ioctls::VmFd;
use pci::{MsiError, MsiMessage, MsiSink};

use crate::devices::ioapic::IrqDelivery;

/// Translates an interrupt request (source id, MSI address, data) into the message to deliver, or `None`
/// when the remapping hardware blocks it (it records the fault itself).
pub trait InterruptRemapper: Send + Sync {
    fn remap(&self, source_id: u16, address: u64, data: u32) -> Option<(u64, u32)>;
}

/// Delivers a final (already remapped) MSI to the vCPUs.
pub trait RawMsi: Send + Sync {
    fn signal(&self, address: u64, data: u32) -> Result<(), MsiError>;
}

/// Raw delivery with KVM_SIGNAL_MSI.
pub struct KvmMsiSink {
    vm: Arc<VmFd>,
}

impl KvmMsiSink {
    pub fn new(vm: Arc<VmFd>) -> Self {
        Self { vm }
    }
}

impl RawMsi for KvmMsiSink {
    fn signal(&self, address: u64, data: u32) -> Result<(), MsiError> {
        let msi = kvm_msi {
            address_lo: address as u32,
            address_hi: (address >> 32) as u32,
            data,
            ..Default::default()
        };
        match self.vm.signal_msi(msi) {
            // 0 means the guest blocked it (e.g. masked at the LAPIC): still delivered as far as PCI goes.
            Ok(_) => Ok(()),
            Err(e) => {
                log::warn!("KVM_SIGNAL_MSI {address:#x}/{data:#x} failed: {e}");
                Err(MsiError::Delivery(e.to_string()))
            }
        }
    }
}

impl MsiSink for KvmMsiSink {
    fn send(&self, msg: MsiMessage) -> Result<(), MsiError> {
        self.signal(msg.address, msg.data)
    }
}

impl iommu::InterruptSink for KvmMsiSink {
    fn msi(&self, address: u64, data: u32) {
        // Errors are logged by `signal`; an IOMMU has no way to report a failed interrupt write either.
        let _ = self.signal(address, data);
    }
}

/// Routes requests through the remapper (if any) to KVM.
pub struct MsiRouter {
    raw: Arc<dyn RawMsi>,
    remapper: Option<Arc<dyn InterruptRemapper>>,
}

impl MsiRouter {
    pub fn new(raw: Arc<dyn RawMsi>, remapper: Option<Arc<dyn InterruptRemapper>>) -> Self {
        Self { raw, remapper }
    }

    fn route(&self, source_id: u16, address: u64, data: u32) -> Result<(), MsiError> {
        let (address, data) = match &self.remapper {
            Some(r) => match r.remap(source_id, address, data) {
                Some(m) => m,
                None => {
                    return Err(MsiError::Blocked(format!(
                        "interrupt from {source_id:#06x} blocked by remapping"
                    )))
                }
            },
            None => (address, data),
        };
        self.raw.signal(address, data)
    }

    /// An MSI sink for one PCI function (its requester id is the source id).
    pub fn for_device(self: &Arc<Self>, source_id: u16) -> Arc<dyn MsiSink> {
        Arc::new(DeviceMsi {
            router: self.clone(),
            source_id,
        })
    }
}

impl IrqDelivery for MsiRouter {
    fn deliver(&self, source_id: u16, address: u64, data: u32) {
        let _ = self.route(source_id, address, data);
    }
}

struct DeviceMsi {
    router: Arc<MsiRouter>,
    source_id: u16,
}

impl MsiSink for DeviceMsi {
    fn send(&self, msg: MsiMessage) -> Result<(), MsiError> {
        self.router.route(self.source_id, msg.address, msg.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u64, u32)>>);

    impl RawMsi for Recorder {
        fn signal(&self, address: u64, data: u32) -> Result<(), MsiError> {
            self.0.lock().unwrap().push((address, data));
            Ok(())
        }
    }

    /// Blocks source 0x18, rewrites everything else to vector 0x99.
    struct Remap;

    impl InterruptRemapper for Remap {
        fn remap(&self, source_id: u16, address: u64, _data: u32) -> Option<(u64, u32)> {
            (source_id != 0x18).then_some((address, 0x99))
        }
    }

    #[test]
    fn routes_through_the_remapper() {
        let raw = Arc::new(Recorder::default());
        let router = Arc::new(MsiRouter::new(raw.clone(), Some(Arc::new(Remap))));
        let blocked = router.for_device(0x18).send(MsiMessage {
            address: 0xfee0_0000,
            data: 0x30,
        });
        assert!(matches!(blocked, Err(MsiError::Blocked(_))));
        router.deliver(0xff00, 0xfee0_1000, 0x24);
        assert_eq!(raw.0.lock().unwrap().as_slice(), &[(0xfee0_1000, 0x99)]);
    }

    #[test]
    fn passes_through_without_remapper() {
        let raw = Arc::new(Recorder::default());
        let router = Arc::new(MsiRouter::new(raw.clone(), None));
        router
            .for_device(0x18)
            .send(MsiMessage {
                address: 0xfee0_0000,
                data: 0x30,
            })
            .unwrap();
        assert_eq!(raw.0.lock().unwrap().as_slice(), &[(0xfee0_0000, 0x30)]);
    }
}
