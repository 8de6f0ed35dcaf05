//! Driving the test device's DMA engine through its mmapped BAR0: copy, fill and the translate probe, and the
//! outcome registers read back after each command.

use super::vfio_cdev::MappedRegion;
use pci::test_device::regs::{
    DMA_CMD_COPY, DMA_CMD_FILL, DMA_CMD_TRANSLATE, DMA_FLAG_PROBE_WRITE, FAULT_ACCESS_READ,
    FAULT_ACCESS_WRITE, REG_DMA_BYTES, REG_DMA_CMD, REG_DMA_COMPLETIONS, REG_DMA_DST,
    REG_DMA_FAULT_ACCESS, REG_DMA_FAULT_IOVA, REG_DMA_FAULT_REASON, REG_DMA_FLAGS, REG_DMA_LEN,
    REG_DMA_PASID, REG_DMA_PATTERN, REG_DMA_SRC, REG_DMA_STATUS, REG_DMA_XLATE_OUT,
    REG_DMA_XLATE_PERMS, REG_DMA_XLATE_SIZE, STATUS_BAD_COMMAND, STATUS_DONE, STATUS_FAULT,
    STATUS_IDLE, STATUS_NO_BUS_MASTER, STATUS_OUTSIDE_RAM,
};

/// What the device reported after one command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaOutcome {
    pub status: u32,
    pub fault_iova: u64,
    pub fault_reason: u32,
    pub fault_access: u32,
    pub bytes: u64,
    pub completions: u32,
}

/// What the translate probe reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Xlate {
    pub status: u32,
    pub out: u64,
    pub size: u64,
    pub perms: u32,
}

/// A status code's name.
pub fn status_name(s: u32) -> &'static str {
    match s {
        STATUS_IDLE => "IDLE",
        STATUS_DONE => "DONE",
        STATUS_FAULT => "FAULT",
        STATUS_OUTSIDE_RAM => "OUTSIDE_RAM",
        STATUS_BAD_COMMAND => "BAD_COMMAND",
        STATUS_NO_BUS_MASTER => "NO_BUS_MASTER",
        _ => "unknown",
    }
}

impl DmaOutcome {
    /// Ok when the command completed with STATUS_DONE having moved `len` bytes, exactly one completion after
    /// `completions_before`.
    pub fn expect_done(&self, what: &str, len: u64, completions_before: u32) -> Result<(), String> {
        let mut errs = Vec::new();
        if self.status != STATUS_DONE {
            errs.push(format!(
                "status {} ({}), expected DONE",
                self.status,
                status_name(self.status)
            ));
            if self.status == STATUS_FAULT {
                errs.push(format!(
                    "fault at IOVA {:#x}, reason {:#x}, access {}",
                    self.fault_iova,
                    self.fault_reason,
                    access_name(self.fault_access)
                ));
            }
        }
        if self.bytes != len {
            errs.push(format!("moved {} bytes, expected {len}", self.bytes));
        }
        let n = self.completions.wrapping_sub(completions_before);
        if n != 1 {
            errs.push(format!("completion counter advanced by {n}, expected 1"));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(format!("{what}: {}", errs.join("; ")))
        }
    }

    /// Ok when the command faulted at `iova` for an access of kind `access`.
    pub fn expect_fault(&self, what: &str, iova: u64, access: u32) -> Result<(), String> {
        let mut errs = Vec::new();
        if self.status != STATUS_FAULT {
            errs.push(format!(
                "status {} ({}), expected FAULT",
                self.status,
                status_name(self.status)
            ));
        }
        if self.fault_iova != iova {
            errs.push(format!(
                "FAULT_IOVA {:#x}, expected {iova:#x}",
                self.fault_iova
            ));
        }
        if self.fault_access != access {
            errs.push(format!(
                "FAULT_ACCESS {} ({}), expected {}",
                self.fault_access,
                access_name(self.fault_access),
                access_name(access)
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(format!("{what}: {}", errs.join("; ")))
        }
    }
}

/// "read" / "write" for a FAULT_ACCESS value.
pub fn access_name(a: u32) -> &'static str {
    match a {
        FAULT_ACCESS_READ => "read",
        FAULT_ACCESS_WRITE => "write",
        _ => "unknown",
    }
}

/// The DMA engine behind a mapped BAR0.
pub struct DmaEngine<'a> {
    pub bar: &'a MappedRegion,
}

impl DmaEngine<'_> {
    fn outcome(&self) -> Result<DmaOutcome, String> {
        Ok(DmaOutcome {
            status: self.bar.read32(REG_DMA_STATUS)?,
            fault_iova: self.bar.read64(REG_DMA_FAULT_IOVA)?,
            fault_reason: self.bar.read32(REG_DMA_FAULT_REASON)?,
            fault_access: self.bar.read32(REG_DMA_FAULT_ACCESS)?,
            bytes: self.bar.read64(REG_DMA_BYTES)?,
            completions: self.bar.read32(REG_DMA_COMPLETIONS)?,
        })
    }

    /// Commands completed so far.
    pub fn completions(&self) -> Result<u32, String> {
        self.bar.read32(REG_DMA_COMPLETIONS)
    }

    fn prepare(&self) -> Result<(), String> {
        // No PASID, no interrupt, unprivileged.
        self.bar.write32(REG_DMA_PASID, 0)?;
        self.bar.write32(REG_DMA_FLAGS, 0)
    }

    /// Copies `len` bytes from IOVA `src` to IOVA `dst`.
    pub fn copy(&self, src: u64, dst: u64, len: u64) -> Result<DmaOutcome, String> {
        self.prepare()?;
        self.bar.write64(REG_DMA_SRC, src)?;
        self.bar.write64(REG_DMA_DST, dst)?;
        self.bar.write64(REG_DMA_LEN, len)?;
        self.bar.write32(REG_DMA_CMD, DMA_CMD_COPY)?;
        self.outcome()
    }

    /// Fills `len` bytes at IOVA `dst` with `pattern`'s 8 little-endian bytes repeated.
    pub fn fill(&self, dst: u64, len: u64, pattern: u64) -> Result<DmaOutcome, String> {
        self.prepare()?;
        self.bar.write64(REG_DMA_DST, dst)?;
        self.bar.write64(REG_DMA_LEN, len)?;
        self.bar.write64(REG_DMA_PATTERN, pattern)?;
        self.bar.write32(REG_DMA_CMD, DMA_CMD_FILL)?;
        self.outcome()
    }

    /// Asks the IOMMU to translate `iova` (for write access if `write`).
    pub fn translate(&self, iova: u64, write: bool) -> Result<(Xlate, DmaOutcome), String> {
        self.prepare()?;
        if write {
            self.bar.write32(REG_DMA_FLAGS, DMA_FLAG_PROBE_WRITE)?;
        }
        self.bar.write64(REG_DMA_DST, iova)?;
        self.bar.write32(REG_DMA_CMD, DMA_CMD_TRANSLATE)?;
        let o = self.outcome()?;
        Ok((
            Xlate {
                status: o.status,
                out: self.bar.read64(REG_DMA_XLATE_OUT)?,
                size: self.bar.read64(REG_DMA_XLATE_SIZE)?,
                perms: self.bar.read32(REG_DMA_XLATE_PERMS)?,
            },
            o,
        ))
    }
}

/// The bytes a fill with `pattern` writes at byte offset `i` from its start.
pub fn fill_byte(pattern: u64, i: usize) -> u8 {
    pattern.to_le_bytes()[i % 8]
}

/// Compares `got` with `want`; describes the first few differing bytes.
pub fn compare(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: length {} != expected {}",
            got.len(),
            want.len()
        ));
    }
    let bad: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
    if bad.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = bad
        .iter()
        .take(4)
        .map(|&i| format!("[{i:#x}] {:#04x} != {:#04x}", got[i], want[i]))
        .collect();
    Err(format!(
        "{what}: {} of {} bytes differ, first {}",
        bad.len(),
        got.len(),
        shown.join(", ")
    ))
}

/// Deterministic test data: byte `i` of stream `seed` (a small xorshift so neighbouring pages differ).
pub fn pattern_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(bytes: u64, completions: u32) -> DmaOutcome {
        DmaOutcome {
            status: STATUS_DONE,
            bytes,
            completions,
            ..Default::default()
        }
    }

    #[test]
    fn done_needs_status_bytes_and_one_completion() {
        assert!(done(4096, 8).expect_done("copy", 4096, 7).is_ok());
        // Counter wraps.
        assert!(done(16, 0).expect_done("copy", 16, u32::MAX).is_ok());
        let e = done(4000, 9).expect_done("copy", 4096, 7).unwrap_err();
        assert!(e.contains("moved 4000 bytes"), "{e}");
        assert!(e.contains("advanced by 2"), "{e}");
        let f = DmaOutcome {
            status: STATUS_FAULT,
            fault_iova: 0x1000,
            fault_reason: 5,
            fault_access: FAULT_ACCESS_WRITE,
            bytes: 0,
            completions: 1,
        };
        let e = f.expect_done("fill", 8, 0).unwrap_err();
        assert!(e.contains("status 2 (FAULT)"), "{e}");
        assert!(
            e.contains("fault at IOVA 0x1000, reason 0x5, access write"),
            "{e}"
        );
    }

    #[test]
    fn fault_checks_iova_and_access() {
        let f = DmaOutcome {
            status: STATUS_FAULT,
            fault_iova: 0x2000,
            fault_access: FAULT_ACCESS_READ,
            ..Default::default()
        };
        assert!(f.expect_fault("copy", 0x2000, FAULT_ACCESS_READ).is_ok());
        let e = f
            .expect_fault("copy", 0x3000, FAULT_ACCESS_WRITE)
            .unwrap_err();
        assert!(e.contains("FAULT_IOVA 0x2000, expected 0x3000"), "{e}");
        assert!(e.contains("expected write"), "{e}");
        assert!(done(0, 0).expect_fault("x", 0, 0).is_err());
    }

    #[test]
    fn fill_bytes_repeat_the_pattern_little_endian() {
        let p = 0x0807_0605_0403_0201;
        let v: Vec<u8> = (0..10).map(|i| fill_byte(p, i)).collect();
        assert_eq!(v, vec![1, 2, 3, 4, 5, 6, 7, 8, 1, 2]);
    }

    #[test]
    fn compare_lists_differences() {
        assert!(compare("x", &[1, 2, 3], &[1, 2, 3]).is_ok());
        let e = compare("buf", &[1, 9, 3, 9], &[1, 2, 3, 4]).unwrap_err();
        assert_eq!(
            e,
            "buf: 2 of 4 bytes differ, first [0x1] 0x09 != 0x02, [0x3] 0x09 != 0x04"
        );
        assert!(compare("x", &[1], &[1, 2]).is_err());
    }

    #[test]
    fn pattern_streams_differ_by_seed_and_are_reproducible() {
        let a = pattern_bytes(1, 4096);
        assert_eq!(a.len(), 4096);
        assert_eq!(a, pattern_bytes(1, 4096));
        assert_ne!(a, pattern_bytes(2, 4096));
        assert_ne!(a[..2048], a[2048..]);
        assert_eq!(status_name(STATUS_NO_BUS_MASTER), "NO_BUS_MASTER");
    }
}
