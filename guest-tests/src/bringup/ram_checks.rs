//! What the suites check in RAM after the test device's DMA: every byte of a region against what a fill, a
//! copy or nothing at all must have left there.

use super::cases::CaseDriver;
use super::testdev::pattern_byte;

/// Compares RAM at `pa` with `expected`, every byte.
pub fn verify_bytes<D: CaseDriver>(d: &mut D, pa: u64, expected: &[u8]) -> Result<(), String> {
    let mut got = vec![0u8; expected.len()];
    d.backend().mem_read(pa, &mut got)?;
    let bad: Vec<usize> = (0..got.len()).filter(|&i| got[i] != expected[i]).collect();
    if let Some(&first) = bad.first() {
        return Err(format!(
            "RAM at {pa:#x}+{:#x}: {} of {} bytes differ, first at +{first:#x}: {:#04x}, expected {:#04x}",
            expected.len(),
            bad.len(),
            expected.len(),
            got[first],
            expected[first]
        ));
    }
    Ok(())
}

/// Compares RAM at `pa` with a fill of `pattern`, every byte.
pub fn verify_fill<D: CaseDriver>(
    d: &mut D,
    pa: u64,
    len: u64,
    pattern: u64,
) -> Result<(), String> {
    let expected: Vec<u8> = (0..len).map(|i| pattern_byte(pattern, i)).collect();
    verify_bytes(d, pa, &expected)
}

/// RAM at `pa` must still be zero (no DMA reached it).
pub fn verify_zero<D: CaseDriver>(d: &mut D, pa: u64, len: u64) -> Result<(), String> {
    verify_bytes(d, pa, &vec![0u8; len as usize])
        .map_err(|e| format!("expected untouched (zero) memory: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bringup::backend::Backend;
    use crate::bringup::cases::Outcome;
    use crate::bringup::host::{HostBackend, RAM_BASE};

    struct Plain(HostBackend, Vec<String>);

    impl CaseDriver for Plain {
        fn backend(&mut self) -> &mut dyn Backend {
            &mut self.0
        }
        fn notes(&mut self) -> &mut Vec<String> {
            &mut self.1
        }
        fn start_case(&mut self) -> Result<(), String> {
            Ok(())
        }
        fn finish_case(&mut self, r: Result<Outcome, String>) -> Result<Outcome, String> {
            r
        }
    }

    #[test]
    fn every_byte_is_compared() {
        let mut d = Plain(HostBackend::new(Default::default()).unwrap(), vec![]);
        let pa = RAM_BASE + 0x1000;
        verify_zero(&mut d, pa, 0x20).unwrap();
        d.0.mem_write(pa, &0x0807_0605_0403_0201u64.to_le_bytes())
            .unwrap();
        d.0.mem_write(pa + 8, &0x0807_0605_0403_0201u64.to_le_bytes())
            .unwrap();
        verify_fill(&mut d, pa, 16, 0x0807_0605_0403_0201).unwrap();
        let e = verify_fill(&mut d, pa, 17, 0x0807_0605_0403_0201).unwrap_err();
        assert!(
            e.contains("1 of 17 bytes differ, first at +0x10: 0x00, expected 0x01"),
            "{e}"
        );
        let e = verify_zero(&mut d, pa + 4, 8).unwrap_err();
        assert!(e.starts_with("expected untouched (zero) memory"), "{e}");
        assert!(e.contains("8 of 8 bytes differ"), "{e}");
        // Outside the driver's RAM window: the read's error.
        assert!(verify_zero(&mut d, 0, 8).is_err());
    }
}
