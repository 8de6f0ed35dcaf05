//! EEH-style error handling (LoPAR "Enhanced I/O Error Handling"; QEMU spapr_pci EEH): the first
//! bad DMA freezes the PE and is logged; while frozen every DMA of the PE fails (and the VMM makes
//! the PE's BAR reads return all ones); only a PE reset (TCE_PE_CTRL, [`super::Tce::reset_pe`])
//! unfreezes. In `eeh=report` mode the fault is logged and returned and nothing freezes.

use serde::Serialize;

use super::config::EehMode;

/// Freeze / fault reason codes: `DmaFault.reason`, TCE_PE_STATE bits 15:8, TCE_ERR_INFO bits 7:0.
pub mod reason {
    /// The IOBA is outside every enabled window.
    pub const NO_WINDOW: u8 = 0x01;
    /// The leaf TCE has neither TCE_PCI_READ nor TCE_PCI_WRITE (not mapped).
    pub const INVALID_TCE: u8 = 0x02;
    /// The TCE's real page number is not aligned to the window's page size.
    pub const MISALIGNED_TCE: u8 = 0x03;
    /// The TCE does not allow the access (a device write without TCE_PCI_WRITE, or a read without
    /// TCE_PCI_READ).
    pub const PERMISSION: u8 = 0x04;
    /// A non-leaf entry of a multi-level table has neither R nor W: no lower table.
    pub const LEVEL_INVALID: u8 = 0x05;
    /// A table entry (any level) is outside guest RAM: a bad table pointer.
    pub const TABLE_OUTSIDE_RAM: u8 = 0x06;
    /// The PE is frozen: the DMA was blocked (not logged again).
    pub const FROZEN: u8 = 0x07;

    /// Short name of a reason code.
    pub fn name(code: u8) -> &'static str {
        match code {
            NO_WINDOW => "NO_WINDOW",
            INVALID_TCE => "INVALID_TCE",
            MISALIGNED_TCE => "MISALIGNED_TCE",
            PERMISSION => "PERMISSION",
            LEVEL_INVALID => "LEVEL_INVALID",
            TABLE_OUTSIDE_RAM => "TABLE_OUTSIDE_RAM",
            FROZEN => "FROZEN",
            _ => "UNKNOWN",
        }
    }

    /// One-line description.
    pub fn describe(code: u8) -> &'static str {
        match code {
            NO_WINDOW => "IOBA outside every DMA window",
            INVALID_TCE => "TCE not valid (neither read nor write)",
            MISALIGNED_TCE => "TCE real address not aligned to the TCE page size",
            PERMISSION => "TCE does not permit the access",
            LEVEL_INVALID => "multi-level table entry not valid",
            TABLE_OUTSIDE_RAM => "TCE table entry outside guest RAM",
            FROZEN => "PE frozen by an earlier error (EEH)",
            _ => "unknown",
        }
    }
}

/// The first error since the last PE reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorLog {
    pub iova: u64,
    pub reason: u8,
    pub source_id: u32,
    pub write: bool,
    /// Window the IOBA selected (`None` = outside every window).
    pub window: Option<usize>,
}

/// The PE's error state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EehState {
    pub frozen: bool,
    /// Reason of the freeze (0 when not frozen).
    pub freeze_reason: u8,
    pub first_error: Option<ErrorLog>,
    /// Errors since the last reset (saturating; blocked DMAs while frozen are not errors).
    pub errors: u64,
}

impl EehState {
    /// Records an error; freezes the PE in `Freeze` mode. Returns true if this froze the PE.
    pub fn record(&mut self, mode: EehMode, log: ErrorLog) -> bool {
        self.errors = self.errors.saturating_add(1);
        if self.first_error.is_none() {
            self.first_error = Some(log);
        }
        if mode == EehMode::Freeze && !self.frozen {
            self.frozen = true;
            self.freeze_reason = log.reason;
            return true;
        }
        false
    }

    /// PE reset: unfreeze and clear the log.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// TCE_PE_STATE.
    pub fn pe_state(&self, mode: EehMode) -> u64 {
        u64::from(self.frozen)
            | u64::from(if self.frozen { self.freeze_reason } else { 0 }) << 8
            | u64::from(mode == EehMode::Freeze) << 16
    }

    /// TCE_ERR_IOBA.
    pub fn err_ioba(&self) -> u64 {
        self.first_error.map_or(0, |l| l.iova)
    }

    /// TCE_ERR_INFO.
    pub fn err_info(&self) -> u64 {
        self.first_error.map_or(0, |l| {
            u64::from(l.reason)
                | u64::from(l.source_id & 0xffff) << 16
                | u64::from(l.write) << 32
                | 1 << 33
                | l.window.map_or(0, |w| (w as u64 + 1) & 3) << 40
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(reason: u8) -> ErrorLog {
        ErrorLog {
            iova: 0x4000_0000,
            reason,
            source_id: 0x18,
            write: true,
            window: Some(1),
        }
    }

    #[test]
    fn freeze_keeps_the_first_error() {
        let mut s = EehState::default();
        assert!(s.record(EehMode::Freeze, log(reason::PERMISSION)));
        assert!(!s.record(EehMode::Freeze, log(reason::NO_WINDOW)));
        assert_eq!(s.pe_state(EehMode::Freeze), 0x1_0401);
        assert_eq!(s.err_ioba(), 0x4000_0000);
        assert_eq!(
            s.err_info(),
            0x2_0000_0000 | 1 << 32 | 0x18 << 16 | 0x04 | 2 << 40
        );
        assert_eq!(s.errors, 2);
        s.reset();
        assert_eq!(
            (s.pe_state(EehMode::Freeze), s.err_info(), s.errors),
            (0x1_0000, 0, 0)
        );
    }

    #[test]
    fn report_mode_logs_without_freezing() {
        let mut s = EehState::default();
        assert!(!s.record(EehMode::Report, log(reason::INVALID_TCE)));
        assert!(!s.frozen);
        assert_eq!(s.pe_state(EehMode::Report), 0);
        assert_eq!(s.err_info() & 0xff, 2);
        s.errors = u64::MAX;
        s.record(EehMode::Report, log(1));
        assert_eq!(s.errors, u64::MAX, "saturates");
        assert_eq!(reason::name(reason::FROZEN), "FROZEN");
        assert_eq!(reason::name(0x99), "UNKNOWN");
    }
}
