//! DMA requests, translations and faults: the vocabulary every IOMMU model speaks.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a request does with memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    Read,
    Write,
}

/// Permissions of a mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Perms {
    pub const RW: Perms = Perms {
        read: true,
        write: true,
        exec: false,
    };

    /// Whether these permissions allow `access`.
    pub fn allows(self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
        }
    }

    /// Permissions of two stages combined (both must allow).
    pub fn intersect(self, other: Perms) -> Perms {
        Perms {
            read: self.read && other.read,
            write: self.write && other.write,
            exec: self.exec && other.exec,
        }
    }
}

/// How the device asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestKind {
    /// An ordinary DMA access: a failed translation is a recorded/reported fault.
    Untranslated,
    /// An ATS-style translation request: the result (or failure) is returned to the device and nothing is
    /// recorded as a fault (PCIe ATS; VT-d 4.x section 4.2.3 "Translation Requests").
    TranslationRequest,
}

/// One DMA request as the IOMMU receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmaRequest {
    /// Requester: PCI BDF (bus << 8 | dev << 3 | fn) for VT-d, stream id for SMMUv3, LIOBN-routed for TCE.
    pub source_id: u32,
    /// PASID / SubstreamID, when the request carries one.
    pub pasid: Option<u32>,
    /// Input address.
    pub iova: u64,
    pub access: Access,
    /// Privileged (supervisor) request.
    pub privileged: bool,
    pub kind: RequestKind,
}

impl DmaRequest {
    /// An untranslated, unprivileged request without PASID.
    pub fn new(source_id: u32, iova: u64, access: Access) -> Self {
        Self {
            source_id,
            pasid: None,
            iova,
            access,
            privileged: false,
            kind: RequestKind::Untranslated,
        }
    }
}

/// A successful translation: the naturally aligned page containing the request's IOVA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    /// First IOVA of the page (aligned to `page_size`).
    pub iova: u64,
    /// Output (guest-physical) address of the page.
    pub output: u64,
    /// Page size in bytes (a power of two; `1 << 64` cannot be expressed, so identity uses 1 << 63).
    pub page_size: u64,
    pub perms: Perms,
}

impl Translation {
    /// The output address of `iova`, which must lie in this page.
    pub fn translate(&self, iova: u64) -> u64 {
        self.output + (iova - self.iova)
    }

    /// Bytes from `iova` to the end of this page.
    pub fn remaining(&self, iova: u64) -> u64 {
        self.page_size - (iova - self.iova)
    }

    /// Whether this translation's page contains `iova` (and is not empty).
    pub fn covers(&self, iova: u64) -> bool {
        self.page_size != 0 && iova >= self.iova && iova - self.iova < self.page_size
    }
}

/// A translation failure as the model reports it back to the device.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
#[error("{model} fault {reason:#x} ({description}) at IOVA {iova:#x}")]
pub struct DmaFault {
    /// Which model produced it ("vtd", "smmuv3", "tce", ...).
    pub model: String,
    /// The architected reason / event code (VT-d fault reason, SMMU event id, ...).
    pub reason: u32,
    /// Short human description of the reason.
    pub description: String,
    pub iova: u64,
    /// Whether the model recorded/reported it (false if suppressed, e.g. FPD, or for translation requests).
    pub recorded: bool,
}

/// The translation interface a device's DMA engine uses.
pub trait DmaPort: Send + Sync {
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault>;
}

/// No IOMMU: every address maps to itself, read/write.
pub struct IdentityPort;

impl DmaPort for IdentityPort {
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        const PAGE: u64 = 1 << 63;
        let iova = req.iova & !(PAGE - 1);
        Ok(Translation {
            iova,
            output: iova,
            page_size: PAGE,
            perms: Perms::RW,
        })
    }
}

/// Where a model's own interrupts (fault events, invalidation-wait completions) go: an MSI (address, data).
pub trait InterruptSink: Send + Sync {
    fn msi(&self, address: u64, data: u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_port_maps_everything() {
        let t = IdentityPort
            .translate(&DmaRequest::new(0x18, 0xdead_beef, Access::Write))
            .unwrap();
        assert_eq!(t.translate(0xdead_beef), 0xdead_beef);
        assert!(t.remaining(0xdead_beef) > 1 << 40);
        let hi = IdentityPort
            .translate(&DmaRequest::new(0, u64::MAX, Access::Read))
            .unwrap();
        assert_eq!(hi.translate(u64::MAX), u64::MAX);
        assert_eq!(hi.remaining(u64::MAX), 1);
    }

    #[test]
    fn perms() {
        let ro = Perms {
            read: true,
            ..Default::default()
        };
        assert!(ro.allows(Access::Read) && !ro.allows(Access::Write));
        assert_eq!(Perms::RW.intersect(ro), ro);
    }
}
