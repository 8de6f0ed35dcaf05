//! Nested translation through iommufd: guest user space builds VT-d stage-1 tables (IA-32e format) inside
//! IOAS-mapped memory, allocates a nest parent over the IOAS and a VT-d stage-1 HWPT over it, attaches the test
//! device, and checks that DMA goes through stage 1 and then stage 2 (the IOAS) exactly as the tables say.
//!
//! Address names used throughout: an *S1 IOVA* is what the device puts on the bus (stage-1 input); an *IOAS
//! IOVA* is a stage-2 input address (what stage-1 entries hold); the guest-physical address behind an IOAS IOVA
//! comes from /proc/self/pagemap of the buffer mapped there.

pub mod ad;
pub mod dma;
pub mod faults;
pub mod invalidate;
pub mod monitor;
pub mod probe;
pub mod replace;
pub mod setup;
pub mod stage1;

use super::super::context::Context;
use super::super::dma_engine::{fill_byte, DmaOutcome};
use super::super::report::Report;
use super::common::{check_fault_line, wait_fault_line};
use super::session::{expected, Session};
use pci::test_device::regs::{FAULT_ACCESS_READ, FAULT_ACCESS_WRITE};
use setup::Nest;

/// First-stage fault reasons of scalable mode (VT-d 7.1.3; Linux dmar.c's table): 0x70-0x72 stage-1 entry
/// access / not present / reserved.
pub const FS_NOT_PRESENT: u8 = 0x71;
pub const FS_RESERVED: u8 = 0x72;
/// Nested: a stage-1 table cannot be read through stage 2 (top level, lower levels).
pub const NESTED_FS_TOP_READ: u8 = 0x75;
pub const NESTED_FS_READ: u8 = 0x76;
/// Second stage: entry not present / no permission.
pub const SS_NOT_PRESENT: u8 = 0x79;
/// Input address not canonical; user request to a supervisor page.
pub const NON_CANONICAL: u8 = 0x80;
pub const USER_SUPERVISOR: u8 = 0x81;
/// A write to a page without write permission.
pub const WRITE_DENIED: u8 = 0x85;

/// Whether `reason` is one of the first-stage family (0x70-0x77 and 0x80/0x81).
pub fn first_stage_reason(reason: u32) -> bool {
    (0x70..=0x77).contains(&reason) || reason == 0x80 || reason == 0x81
}

/// Whether `reason` is one of the second-stage family (0x78-0x7c).
pub fn second_stage_reason(reason: u32) -> bool {
    (0x78..=0x7c).contains(&reason)
}

/// `len` bytes of a fill with `pattern`.
pub fn filled(pattern: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| fill_byte(pattern, i)).collect()
}

/// Opens a session, puts a nest parent on its IOAS, runs `body`, then detaches and destroys the HWPTs.
pub fn with_nest(
    ctx: &Context,
    body: impl FnOnce(&mut Nest, &mut Report) -> Result<(), String>,
) -> Report {
    let info = match expected(ctx) {
        Ok(i) => i.clone(),
        Err(e) => return Report::failure(e),
    };
    let s = match Session::open(ctx) {
        Ok(s) => s,
        Err(e) => return Report::failure(e),
    };
    let mut r = Report::new();
    for n in &s.notes {
        r.diag(n.clone());
    }
    let mut nest = match Nest::new(&s, &info) {
        Ok(n) => n,
        Err(e) => {
            r.fail(e);
            return r;
        }
    };
    if let Err(e) = body(&mut nest, &mut r) {
        r.fail(e);
    }
    nest.finish(&mut r);
    r
}

/// A fault a nested test provokes on purpose.
pub struct Expected<'a> {
    pub what: &'a str,
    pub iova: u64,
    pub write: bool,
    /// Acceptable architected reasons (the first is the one the spec names most directly).
    pub reasons: &'a [u8],
    /// Kernel log position before the DMA.
    pub mark: u64,
}

/// Checks the device's fault report (status, IOVA, access, no bytes moved, reason) and the driver's log line.
pub fn expect_fault(
    ctx: &Context,
    s: &Session,
    o: &DmaOutcome,
    x: &Expected,
    r: &mut Report,
) -> Result<(), String> {
    let access = if x.write {
        FAULT_ACCESS_WRITE
    } else {
        FAULT_ACCESS_READ
    };
    o.expect_fault(x.what, x.iova, access)?;
    r.diag(format!(
        "{}: device FAULT at {:#x}, reason {:#04x}, {} bytes moved",
        x.what, o.fault_iova, o.fault_reason, o.bytes
    ));
    if o.bytes != 0 {
        r.fail(format!(
            "{}: {} bytes moved before the fault",
            x.what, o.bytes
        ));
    }
    if !x.reasons.iter().any(|&c| u32::from(c) == o.fault_reason) {
        r.fail(format!(
            "{}: fault reason {:#04x}, expected {}",
            x.what,
            o.fault_reason,
            x.reasons
                .iter()
                .map(|c| format!("{c:#04x}"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    let line = wait_fault_line(ctx, s, x.mark, x.iova)?;
    r.diag(format!(
        "{}: logged reason {:#04x} for {:#x}",
        x.what, line.reason, line.addr
    ));
    r.fail_all(
        check_fault_line(&line, x.write, o.fault_reason, true)
            .into_iter()
            .map(|e| format!("{}: {e}", x.what)),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_families() {
        for c in [0x70, 0x71, 0x72, 0x75, 0x76, 0x77, 0x80, 0x81] {
            assert!(first_stage_reason(c), "{c:#x}");
            assert!(!second_stage_reason(c), "{c:#x}");
        }
        for c in [0x78, 0x79, 0x7a, 0x7b] {
            assert!(second_stage_reason(c), "{c:#x}");
            assert!(!first_stage_reason(c), "{c:#x}");
        }
        assert!(!first_stage_reason(0x59) && !second_stage_reason(0x85));
    }

    #[test]
    fn with_nest_fails_cleanly_without_expectations() {
        let ctx = Context {
            root: std::path::PathBuf::from("/nonexistent-guest-root"),
            expect: Err("no expect.json".into()),
            scenario: "vtd-nested".into(),
        };
        let r = with_nest(&ctx, |_, _| Ok(()));
        assert!(!r.passed());
        assert!(r.diagnostics[0].contains("no expect.json"));
    }
}
