//! `kernel-log`: no kernel message of priority warning (4) or worse in /dev/kmsg.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use super::context::Context;
use super::report::Report;

/// Worst console level allowed: messages with level <= this (emerg..warning) are offenders.
pub const WORST_ALLOWED_BELOW: u8 = 4;

/// At most this many offenders are listed as diagnostics.
pub const MAX_LISTED: usize = 100;

/// One /dev/kmsg record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsgRecord {
    /// Log level (`prio & 7`): 0 emerg .. 7 debug.
    pub level: u8,
    pub facility: u32,
    pub seq: u64,
    /// Timestamp in microseconds since boot.
    pub ts_us: u64,
    pub message: String,
}

/// Parses a record `prio,seq,ts,flags[,...];message\n[ KEY=value\n...]`.
pub fn parse_record(rec: &str) -> Option<KmsgRecord> {
    let (head, rest) = rec.split_once(';')?;
    let mut f = head.split(',');
    let prio: u32 = f.next()?.trim().parse().ok()?;
    let seq: u64 = f.next()?.parse().ok()?;
    let ts_us: u64 = f.next()?.parse().ok()?;
    let message = rest.split('\n').next().unwrap_or("").to_string();
    Some(KmsgRecord {
        level: (prio & 7) as u8,
        facility: prio >> 3,
        seq,
        ts_us,
        message,
    })
}

/// The records at warning level or worse.
pub fn offenders(records: &[KmsgRecord]) -> Vec<&KmsgRecord> {
    records
        .iter()
        .filter(|r| r.level <= WORST_ALLOWED_BELOW)
        .collect()
}

fn level_name(level: u8) -> &'static str {
    match level {
        0 => "emerg",
        1 => "alert",
        2 => "crit",
        3 => "err",
        4 => "warn",
        5 => "notice",
        6 => "info",
        _ => "debug",
    }
}

/// Formats an offender as a diagnostic line.
pub fn describe(r: &KmsgRecord) -> String {
    format!(
        "[{:>5}.{:06}] <{}> {}",
        r.ts_us / 1_000_000,
        r.ts_us % 1_000_000,
        level_name(r.level),
        r.message
    )
}

/// Reads every record currently in the kernel log buffer (non-blocking, from the first record).
pub fn read_all(path: &std::path::Path) -> Result<Vec<KmsgRecord>, String> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    // Bounded: the buffer holds a finite number of records; this guards against a log that grows forever.
    for _ in 0..1_000_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                if let Some(r) = parse_record(&text) {
                    out.push(r);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // EPIPE: the record we were about to read was overwritten; the next read continues.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A regular file (unit tests) ends with 0; anything else is a real error.
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        }
    }
    Ok(out)
}

pub fn run(ctx: &Context) -> Report {
    let records = match read_all(&ctx.path("dev/kmsg")) {
        Ok(r) => r,
        Err(e) => return Report::failure(e),
    };
    let mut r = Report::new();
    if records.is_empty() {
        r.fail("/dev/kmsg returned no records");
        return r;
    }
    let bad = offenders(&records);
    r.diag(format!(
        "{} kernel messages, {} at warning level or worse",
        records.len(),
        bad.len()
    ));
    for b in bad.iter().take(MAX_LISTED) {
        r.fail(describe(b));
    }
    if bad.len() > MAX_LISTED {
        r.fail(format!("... and {} more", bad.len() - MAX_LISTED));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records() {
        let r = parse_record("6,339,5140900,-;NET: Registered PF_INET protocol family\n").unwrap();
        assert_eq!(r.level, 6);
        assert_eq!(r.facility, 0);
        assert_eq!(r.seq, 339);
        assert_eq!(r.ts_us, 5_140_900);
        assert_eq!(r.message, "NET: Registered PF_INET protocol family");

        let r = parse_record("12,1,2,c,caller=T1;user warning\n SUBSYSTEM=pci\n").unwrap();
        assert_eq!(r.level, 4);
        assert_eq!(r.facility, 1);
        assert_eq!(r.message, "user warning");

        assert!(parse_record("garbage").is_none());
        assert!(parse_record("x,1,2,-;m").is_none());
    }

    #[test]
    fn offenders_are_warning_or_worse() {
        let recs: Vec<KmsgRecord> = [
            "6,1,10,-;info",
            "4,2,20,-;warn",
            "3,3,30,-;err",
            "5,4,40,-;notice",
        ]
        .iter()
        .filter_map(|s| parse_record(s))
        .collect();
        let bad: Vec<&str> = offenders(&recs)
            .iter()
            .map(|r| r.message.as_str())
            .collect();
        assert_eq!(bad, vec!["warn", "err"]);
        assert_eq!(describe(&recs[1]), "[    0.000020] <warn> warn");
    }
}
