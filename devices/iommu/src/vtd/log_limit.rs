//! Rate limit for the per-fault host log lines: a hostile guest can raise faults as fast as it can
//! clear the fault recording registers, and each would otherwise be a `log::warn!` line.
//!
//! The first [`BURST`] faults are logged; after that at most one line per [`INTERVAL`], which also says
//! how many faults went unlogged since the previous line. Only the log is limited: fault records,
//! FSTS, interrupts and counters are exact.

use std::time::{Duration, Instant};

/// Faults logged before the limit applies.
pub(crate) const BURST: u64 = 64;
/// At most one line per interval after the burst.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// Whether to write a fault's line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write it; `suppressed` faults were not logged since the previous line.
    Log { suppressed: u64 },
    /// Do not write it.
    Suppress,
}

impl Verdict {
    /// The suffix a logged line carries for the faults suppressed before it.
    pub fn suffix(self) -> String {
        match self {
            Verdict::Log { suppressed } if suppressed > 0 => {
                format!(" ({suppressed} more faults suppressed)")
            }
            _ => String::new(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct LogLimiter {
    logged: u64,
    /// Not logged since the last line.
    pending: u64,
    last_line: Option<Instant>,
}

impl LogLimiter {
    /// Decides about one fault happening at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let due = self.logged < BURST
            || self
                .last_line
                .is_none_or(|t| now.saturating_duration_since(t) >= INTERVAL);
        if !due {
            self.pending += 1;
            return Verdict::Suppress;
        }
        self.logged += 1;
        self.last_line = Some(now);
        Verdict::Log {
            suppressed: std::mem::take(&mut self.pending),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_line_per_second_with_the_count() {
        let mut l = LogLimiter::default();
        let t0 = Instant::now();
        for i in 0..BURST {
            assert_eq!(
                l.check(t0 + Duration::from_micros(i)),
                Verdict::Log { suppressed: 0 },
                "fault {i} of the burst"
            );
        }
        // The flood goes on: 1000 faults in the next 0.9 s are not logged.
        let start = t0 + Duration::from_micros(BURST);
        for i in 0..1000u64 {
            assert_eq!(
                l.check(start + Duration::from_micros(900 * i)),
                Verdict::Suppress
            );
        }
        // One second after the last line: a line, carrying the count.
        let v = l.check(t0 + Duration::from_micros(BURST - 1) + INTERVAL);
        assert_eq!(v, Verdict::Log { suppressed: 1000 });
        assert_eq!(v.suffix(), " (1000 more faults suppressed)");
        // Then nothing for another second, whatever the rate.
        let t1 = t0 + Duration::from_micros(BURST - 1) + INTERVAL;
        assert_eq!(l.check(t1 + Duration::from_millis(999)), Verdict::Suppress);
        assert_eq!(
            l.check(t1 + INTERVAL),
            Verdict::Log { suppressed: 1 },
            "one suppressed since"
        );
        // A quiet period: the next fault is logged at once, with nothing suppressed.
        let t2 = t1 + Duration::from_secs(60);
        let v = l.check(t2);
        assert_eq!(v, Verdict::Log { suppressed: 0 });
        assert_eq!(v.suffix(), "");
        // A clock that goes backwards (it cannot with Instant, but saturate anyway) suppresses.
        assert_eq!(l.check(t0), Verdict::Suppress);
    }
}
