//! Capability list builder and walker.
//!
//! Standard capabilities are chained from the capabilities pointer (0x34), placed from 0x40 upward, dword
//! aligned, each starting with `id, next`. PCI Express extended capabilities start at 0x100 with a 32-bit header
//! `id[15:0] | version[19:16] | next[31:20]`. All pointers and headers are read-only for the guest.

use crate::config::{reg, status, ConfigSpace, CONFIG_SPACE_SIZE, LEGACY_CONFIG_SIZE};
use thiserror::Error;

/// First offset used for standard capabilities (after the type 0 header).
pub const FIRST_STD_CAP: usize = 0x40;
/// Offset of the first PCI Express extended capability.
pub const FIRST_EXT_CAP: usize = 0x100;
/// Upper bound on list walks; enough for any well-formed list (64 dwords of standard space, 960 of extended).
const MAX_WALK: usize = 1024;

/// Standard capability IDs used in this crate.
pub mod id {
    pub const POWER_MANAGEMENT: u8 = 0x01;
    pub const MSI: u8 = 0x05;
    pub const PCI_EXPRESS: u8 = 0x10;
    pub const MSIX: u8 = 0x11;
}

/// PCI Express extended capability IDs used in this crate.
pub mod ext_id {
    /// Address Translation Services.
    pub const ATS: u16 = 0x000f;
    /// Single Root I/O Virtualization (PCIe Base 6.0 §9.3.3).
    pub const SRIOV: u16 = 0x0010;
    /// Process Address Space ID.
    pub const PASID: u16 = 0x001b;
}

/// Errors of the capability builder.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CapabilityError {
    #[error("capability {id:#x} of {len} bytes does not fit in the remaining configuration space")]
    NoSpace { id: u16, len: usize },
    #[error("capability {id:#x}: length {len} is smaller than its header")]
    TooShort { id: u16, len: usize },
}

/// Where the next capability goes and which one is last in each list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CapState {
    std_next: usize,
    std_last: Option<usize>,
    ext_next: usize,
    ext_last: Option<usize>,
}

impl Default for CapState {
    fn default() -> Self {
        CapState {
            std_next: FIRST_STD_CAP,
            std_last: None,
            ext_next: FIRST_EXT_CAP,
            ext_last: None,
        }
    }
}

/// One entry found by a list walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityInfo {
    pub id: u16,
    /// Capability version (extended capabilities only; 0 for standard ones).
    pub version: u8,
    pub offset: usize,
}

impl ConfigSpace {
    /// Appends a standard capability of `len` bytes (including the 2-byte `id, next` header) and returns its
    /// offset. The body is zero and read-only until the caller sets contents and masks.
    pub fn add_capability(&mut self, cap_id: u8, len: usize) -> Result<usize, CapabilityError> {
        let err_id = u16::from(cap_id);
        if len < 2 {
            return Err(CapabilityError::TooShort { id: err_id, len });
        }
        let offset = self.caps.std_next;
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= LEGACY_CONFIG_SIZE)
            .ok_or(CapabilityError::NoSpace { id: err_id, len })?;
        self.set_u8(offset, cap_id);
        self.set_u8(offset + 1, 0);
        match self.caps.std_last {
            Some(last) => self.set_u8(last + 1, offset as u8),
            None => self.set_u8(reg::CAPABILITIES_POINTER, offset as u8),
        }
        self.caps.std_last = Some(offset);
        self.caps.std_next = (end + 3) & !3;
        self.set_status_bits(status::CAPABILITIES_LIST);
        Ok(offset)
    }

    /// Appends a PCI Express extended capability of `len` bytes (including the 4-byte header) and returns its
    /// offset.
    pub fn add_ext_capability(
        &mut self,
        cap_id: u16,
        version: u8,
        len: usize,
    ) -> Result<usize, CapabilityError> {
        if len < 4 {
            return Err(CapabilityError::TooShort { id: cap_id, len });
        }
        let offset = self.caps.ext_next;
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= CONFIG_SPACE_SIZE)
            .ok_or(CapabilityError::NoSpace { id: cap_id, len })?;
        self.set_u32(offset, u32::from(cap_id) | u32::from(version & 0xf) << 16);
        if let Some(last) = self.caps.ext_last {
            let h = self.read_u32(last) & 0x000f_ffff;
            self.set_u32(last, h | (offset as u32) << 20);
        }
        self.caps.ext_last = Some(offset);
        self.caps.ext_next = (end + 3) & !3;
        Ok(offset)
    }

    /// Walks the standard capability list as a driver would (pointers masked to dwords, stopping at 0, at
    /// pointers into the header, or after a bounded number of steps so that a loop cannot hang).
    pub fn capabilities(&self) -> Vec<CapabilityInfo> {
        let mut out = Vec::new();
        if self.status() & status::CAPABILITIES_LIST == 0 {
            return out;
        }
        let mut ptr = usize::from(self.read_u8(reg::CAPABILITIES_POINTER)) & !3;
        while ptr >= FIRST_STD_CAP && out.len() < MAX_WALK {
            out.push(CapabilityInfo {
                id: u16::from(self.read_u8(ptr)),
                version: 0,
                offset: ptr,
            });
            ptr = usize::from(self.read_u8(ptr + 1)) & !3;
        }
        out
    }

    /// Walks the extended capability list from 0x100 (a zero or all-ones header ends it).
    pub fn ext_capabilities(&self) -> Vec<CapabilityInfo> {
        let mut out = Vec::new();
        let mut ptr = FIRST_EXT_CAP;
        while (FIRST_EXT_CAP..CONFIG_SPACE_SIZE).contains(&ptr) && out.len() < MAX_WALK {
            let h = self.read_u32(ptr);
            if h == 0 || h == u32::MAX {
                break;
            }
            out.push(CapabilityInfo {
                id: h as u16,
                version: ((h >> 16) & 0xf) as u8,
                offset: ptr,
            });
            ptr = (h >> 20) as usize & !3;
        }
        out
    }

    /// Offset of the first standard capability with this id.
    pub fn find_capability(&self, cap_id: u8) -> Option<usize> {
        self.capabilities()
            .into_iter()
            .find(|c| c.id == u16::from(cap_id))
            .map(|c| c.offset)
    }

    /// Offset of the first extended capability with this id.
    pub fn find_ext_capability(&self, cap_id: u16) -> Option<usize> {
        self.ext_capabilities()
            .into_iter()
            .find(|c| c.id == cap_id)
            .map(|c| c.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ConfigSpace {
        crate::config::test_config()
    }

    #[test]
    fn empty_lists() {
        let c = cfg();
        assert!(c.capabilities().is_empty());
        assert!(c.ext_capabilities().is_empty());
        assert_eq!(c.status() & status::CAPABILITIES_LIST, 0);
    }

    #[test]
    fn standard_list_is_chained_aligned_and_read_only() {
        let mut c = cfg();
        let a = c.add_capability(0x01, 8).unwrap();
        let b = c.add_capability(0x05, 0x0e).unwrap();
        let d = c.add_capability(0x11, 12).unwrap();
        assert_eq!((a, b, d), (0x40, 0x48, 0x58));
        assert_ne!(c.status() & status::CAPABILITIES_LIST, 0);
        assert_eq!(c.read_u8(reg::CAPABILITIES_POINTER), 0x40);
        let ids: Vec<_> = c.capabilities().iter().map(|x| (x.id, x.offset)).collect();
        assert_eq!(ids, vec![(0x01, 0x40), (0x05, 0x48), (0x11, 0x58)]);
        // The guest cannot rewire the list.
        c.write(reg::CAPABILITIES_POINTER, &[0x48]);
        c.write(0x41, &[0x40]);
        c.write(0x48, &[0x99, 0x00]);
        assert_eq!(c.capabilities().len(), 3);
        assert_eq!(c.find_capability(0x11), Some(0x58));
        assert_eq!(c.find_capability(0x10), None);
        // Every pointer is dword aligned and inside the standard space, and the last one is 0.
        for cap in c.capabilities() {
            assert_eq!(cap.offset % 4, 0);
            assert!(cap.offset >= FIRST_STD_CAP && cap.offset < LEGACY_CONFIG_SIZE);
        }
        assert_eq!(c.read_u8(0x59), 0);
    }

    #[test]
    fn standard_list_space_exhaustion() {
        let mut c = cfg();
        c.add_capability(0x09, 0xb0).unwrap();
        assert_eq!(
            c.add_capability(0x09, 0x20),
            Err(CapabilityError::NoSpace { id: 9, len: 0x20 })
        );
        assert!(c.add_capability(0x09, 0x10).is_ok());
        assert_eq!(
            c.add_capability(0x09, 1),
            Err(CapabilityError::TooShort { id: 9, len: 1 })
        );
    }

    #[test]
    fn extended_list_chain() {
        let mut c = cfg();
        let a = c.add_ext_capability(0x000f, 1, 8).unwrap();
        let b = c.add_ext_capability(0x001b, 1, 6).unwrap();
        assert_eq!((a, b), (0x100, 0x108));
        assert_eq!(c.read_u32(0x100), 0x1081_000f);
        let caps = c.ext_capabilities();
        assert_eq!(
            caps,
            vec![
                CapabilityInfo {
                    id: 0x0f,
                    version: 1,
                    offset: 0x100
                },
                CapabilityInfo {
                    id: 0x1b,
                    version: 1,
                    offset: 0x108
                },
            ]
        );
        assert_eq!(c.find_ext_capability(0x1b), Some(0x108));
        assert_eq!(c.find_ext_capability(0x10), None);
        c.write(0x100, &[0; 4]);
        assert_eq!(c.ext_capabilities().len(), 2, "headers are read-only");
        assert!(c.add_ext_capability(0x1, 1, 0xf00).is_err());
    }

    #[test]
    fn walk_terminates_on_a_loop() {
        let mut c = cfg();
        let a = c.add_capability(0x01, 8).unwrap();
        // Corrupt the list device-side into a self loop: the walk must still end.
        c.set_u8(a + 1, a as u8);
        assert_eq!(c.capabilities().len(), MAX_WALK);
        c.add_ext_capability(0x1, 1, 8).unwrap();
        c.set_u32(0x100, 0x1001_0001);
        assert_eq!(c.ext_capabilities().len(), MAX_WALK);
    }
}
