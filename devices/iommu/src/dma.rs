//! DMA through an IOMMU port: splits an access at translation boundaries and moves bytes.

use std::sync::Arc;

use thiserror::Error;

use crate::mem::DmaMemory;
use crate::request::{Access, DmaFault, DmaPort, DmaRequest, RequestKind};

/// Why a DMA access stopped.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DmaError {
    /// The IOMMU refused the translation of `fault.iova`.
    #[error(transparent)]
    Fault(DmaFault),
    /// The translated address is not guest RAM.
    #[error("IOVA {iova:#x} translated to {gpa:#x}, which is not guest RAM")]
    OutsideRam { iova: u64, gpa: u64 },
    /// The IOVA range wraps around the end of the address space.
    #[error("DMA range {iova:#x}+{len:#x} wraps the address space")]
    Wrap { iova: u64, len: u64 },
    /// The port returned a translation that does not contain the requested IOVA (a model bug, contained).
    #[error("IOMMU returned a translation that does not cover IOVA {iova:#x}")]
    BadTranslation { iova: u64 },
}

/// A device's view of memory: its port plus guest RAM.
#[derive(Clone)]
pub struct DmaAccessor {
    pub port: Arc<dyn DmaPort>,
    pub mem: Arc<dyn DmaMemory>,
    pub source_id: u32,
}

impl DmaAccessor {
    pub fn new(port: Arc<dyn DmaPort>, mem: Arc<dyn DmaMemory>, source_id: u32) -> Self {
        Self {
            port,
            mem,
            source_id,
        }
    }

    /// Calls `f(gpa, offset_in_buffer, len)` for each translated chunk of `[iova, iova + len)`.
    fn for_each_chunk(
        &self,
        iova: u64,
        len: u64,
        pasid: Option<u32>,
        access: Access,
        mut f: impl FnMut(u64, usize, usize) -> Result<(), crate::mem::MemError>,
    ) -> Result<(), DmaError> {
        if len == 0 {
            return Ok(());
        }
        iova.checked_add(len - 1)
            .ok_or(DmaError::Wrap { iova, len })?;
        let mut done: u64 = 0;
        while done < len {
            let cur = iova + done;
            let req = DmaRequest {
                source_id: self.source_id,
                pasid,
                iova: cur,
                access,
                privileged: false,
                kind: RequestKind::Untranslated,
            };
            let t = self.port.translate(&req).map_err(DmaError::Fault)?;
            if !t.covers(cur) {
                return Err(DmaError::BadTranslation { iova: cur });
            }
            let chunk = t.remaining(cur).min(len - done);
            let gpa = t.translate(cur);
            f(gpa, done as usize, chunk as usize)
                .map_err(|_| DmaError::OutsideRam { iova: cur, gpa })?;
            done += chunk;
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `iova`.
    pub fn read(&self, iova: u64, pasid: Option<u32>, buf: &mut [u8]) -> Result<(), DmaError> {
        let mem = self.mem.clone();
        self.for_each_chunk(
            iova,
            buf.len() as u64,
            pasid,
            Access::Read,
            |gpa, off, n| mem.read(gpa, &mut buf[off..off + n]),
        )
    }

    /// Writes `buf` at `iova`.
    pub fn write(&self, iova: u64, pasid: Option<u32>, buf: &[u8]) -> Result<(), DmaError> {
        let mem = self.mem.clone();
        self.for_each_chunk(
            iova,
            buf.len() as u64,
            pasid,
            Access::Write,
            |gpa, off, n| mem.write(gpa, &buf[off..off + n]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::TestMemory;
    use crate::request::{IdentityPort, Perms, Translation};

    /// Maps IOVA page n (4 KiB) to GPA page (n ^ 1) for n < 4, read-only for page 2; faults elsewhere.
    struct Swizzle;

    impl DmaPort for Swizzle {
        fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
            let page = req.iova >> 12;
            let perms = if page == 2 {
                Perms {
                    read: true,
                    ..Default::default()
                }
            } else {
                Perms::RW
            };
            if page >= 4 || !perms.allows(req.access) {
                return Err(DmaFault {
                    model: "test".into(),
                    reason: 1,
                    description: "unmapped".into(),
                    iova: req.iova,
                    recorded: true,
                });
            }
            Ok(Translation {
                iova: page << 12,
                output: (page ^ 1) << 12,
                page_size: 4096,
                perms,
            })
        }
    }

    fn accessor(port: Arc<dyn DmaPort>) -> (DmaAccessor, Arc<TestMemory>) {
        let mem = Arc::new(TestMemory::new(0x8000));
        (DmaAccessor::new(port, mem.clone(), 0x18), mem)
    }

    #[test]
    fn splits_at_page_boundaries() {
        let (dma, mem) = accessor(Arc::new(Swizzle));
        let data: Vec<u8> = (0..0x1800u32).map(|i| i as u8).collect();
        dma.write(0x800, None, &data).unwrap();
        let mut check = vec![0u8; 0x800];
        mem.read(0x1800, &mut check).unwrap();
        assert_eq!(
            &check[..],
            &data[..0x800],
            "IOVA page 0 lands in GPA page 1"
        );
        mem.read(0x0, &mut check).unwrap();
        assert_eq!(
            &check[..],
            &data[0x800..0x1000],
            "IOVA page 1 lands in GPA page 0"
        );
        let mut back = vec![0u8; data.len()];
        dma.read(0x800, None, &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn faults_report_the_first_bad_iova() {
        let (dma, _) = accessor(Arc::new(Swizzle));
        let err = dma.write(0x1ff0, None, &[0u8; 0x20]).unwrap_err();
        assert!(
            matches!(err, DmaError::Fault(ref f) if f.iova == 0x2000),
            "{err:?}"
        );
        let err = dma.read(0x3ff0, None, &mut [0u8; 0x20]).unwrap_err();
        assert!(
            matches!(err, DmaError::Fault(ref f) if f.iova == 0x4000),
            "{err:?}"
        );
    }

    /// A broken port: returns a page that does not contain the request, or an empty page.
    struct Broken(u64);

    impl DmaPort for Broken {
        fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
            Ok(Translation {
                iova: req.iova.wrapping_add(0x1000),
                output: 0,
                page_size: self.0,
                perms: Perms::RW,
            })
        }
    }

    #[test]
    fn broken_translations_are_contained() {
        for size in [0, 0x1000] {
            let (dma, _) = accessor(Arc::new(Broken(size)));
            assert!(matches!(
                dma.read(0x100, None, &mut [0; 4]),
                Err(DmaError::BadTranslation { iova: 0x100 })
            ));
        }
    }

    #[test]
    fn zero_length_wrap_and_outside_ram() {
        let (dma, _) = accessor(Arc::new(IdentityPort));
        dma.write(u64::MAX, None, &[]).unwrap();
        assert!(matches!(
            dma.write(u64::MAX, None, &[1, 2]),
            Err(DmaError::Wrap { .. })
        ));
        assert!(matches!(
            dma.read(0x7fff, None, &mut [0; 2]),
            Err(DmaError::OutsideRam { iova: 0x7fff, .. })
        ));
    }
}
