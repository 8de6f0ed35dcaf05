//! Helpers shared by the VT-d DMA tests: running a test body on a fresh session, mapping guarded by results,
//! and waiting for the driver's fault line in the kernel log.

use std::time::{Duration, Instant};

use super::super::context::Context;
use super::super::dmabuf::DmaBuffer;
use super::super::iommufd::MapPerms;
use super::super::kmsg;
use super::super::report::Report;
use super::log::{self, FaultLine};
use super::session::Session;

/// How long the fault interrupt has to reach the driver's log.
pub const FAULT_LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a session and runs `body` on it; setup and body errors become failures.
pub fn with_session(
    ctx: &Context,
    body: impl FnOnce(&Session, &mut Report) -> Result<(), String>,
) -> Report {
    let s = match Session::open(ctx) {
        Ok(s) => s,
        Err(e) => return Report::failure(e),
    };
    let mut r = Report::new();
    for n in &s.notes {
        r.diag(n.clone());
    }
    if let Err(e) = body(&s, &mut r) {
        r.fail(e);
    }
    r
}

/// Maps all of `buf` at `iova` in the session's IOAS.
pub fn map_buf(s: &Session, buf: &DmaBuffer, iova: u64, perms: MapPerms) -> Result<(), String> {
    s.iommufd
        .map(s.ioas, buf.va(), buf.len() as u64, iova, perms)
}

/// Unmaps `len` bytes at `iova` and checks the kernel unmapped exactly that much.
pub fn unmap(s: &Session, ioas: u32, iova: u64, len: u64) -> Result<(), String> {
    let n = s.iommufd.unmap(ioas, iova, len)?;
    if n != len {
        return Err(format!(
            "IOMMU_IOAS_UNMAP at {iova:#x} unmapped {n:#x} bytes, expected {len:#x}"
        ));
    }
    Ok(())
}

/// The intel-iommu fault handler (6.12 `dmar_fault`) logs through one ratelimit of 10 messages per 5 s and
/// spends three per fault interrupt ("handling fault status", the record, the loop's final empty slot), so a
/// fourth fault within one window loses its line. Every fault a test provokes goes through [`pace_fault`],
/// which keeps it to [`FAULTS_PER_WINDOW`] faults per [`FAULT_WINDOW`].
pub const FAULT_WINDOW: Duration = Duration::from_millis(5500);
pub const FAULTS_PER_WINDOW: usize = 3;

static RECENT_FAULTS: std::sync::Mutex<Vec<Instant>> = std::sync::Mutex::new(Vec::new());

/// How long to wait before one more fault, given the times of earlier faults (`now` included in none).
pub fn pace_delay(recent: &[Instant], now: Instant) -> Duration {
    let mut live: Vec<Instant> = recent
        .iter()
        .copied()
        .filter(|t| now.saturating_duration_since(*t) < FAULT_WINDOW)
        .collect();
    if live.len() < FAULTS_PER_WINDOW {
        return Duration::ZERO;
    }
    live.sort();
    // Wait until all but FAULTS_PER_WINDOW - 1 of them have left the window.
    let oldest_to_expire = live[live.len() - FAULTS_PER_WINDOW];
    FAULT_WINDOW.saturating_sub(now.saturating_duration_since(oldest_to_expire))
}

/// Call right before provoking a DMA fault: waits as long as the driver's log ratelimit needs.
pub fn pace_fault() {
    let mut recent = RECENT_FAULTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let d = pace_delay(&recent, Instant::now());
    if !d.is_zero() {
        std::thread::sleep(d);
    }
    let now = Instant::now();
    recent.retain(|t| now.saturating_duration_since(*t) < FAULT_WINDOW);
    recent.push(now);
}

/// Call right before provoking a DMA fault whose log line is checked: paces the fault ([`pace_fault`]) and
/// returns the sequence number of the newest kernel log record (0 if there is none).
pub fn kmsg_mark(ctx: &Context) -> Result<u64, String> {
    pace_fault();
    Ok(kmsg::read_all(&ctx.path("dev/kmsg"))?
        .last()
        .map_or(0, |r| r.seq))
}

/// Finds, among `records` newer than `after`, the fault line for device `(bus, dev, func)` at page `addr`.
pub fn find_fault(
    records: &[kmsg::KmsgRecord],
    after: u64,
    bdf: (u8, u8, u8),
    addr: u64,
) -> Option<FaultLine> {
    records
        .iter()
        .filter(|r| r.seq > after)
        .filter_map(|r| log::parse_fault(&r.message))
        .find(|f| f.segment == 0 && (f.bus, f.dev, f.func) == bdf && f.addr == addr)
}

/// Waits for the driver to log a fault for the session's device at the page of `iova`, newer than `after`.
pub fn wait_fault_line(
    ctx: &Context,
    s: &Session,
    after: u64,
    iova: u64,
) -> Result<FaultLine, String> {
    let bdf = s
        .bdf_parts()
        .ok_or_else(|| format!("cannot parse BDF {}", s.bdf))?;
    wait_fault_line_for(ctx, bdf, after, iova)
}

/// [`wait_fault_line`] for device `(bus, dev, func)`.
pub fn wait_fault_line_for(
    ctx: &Context,
    bdf: (u8, u8, u8),
    after: u64,
    iova: u64,
) -> Result<FaultLine, String> {
    let page = iova & !0xfff;
    let t0 = Instant::now();
    loop {
        let recs = kmsg::read_all(&ctx.path("dev/kmsg"))?;
        if let Some(f) = find_fault(&recs, after, bdf, page) {
            return Ok(f);
        }
        if t0.elapsed() > FAULT_LOG_TIMEOUT {
            let seen: Vec<String> = recs
                .iter()
                .filter(|r| r.seq > after && log::is_iommu_message(&r.message))
                .map(|r| r.message.clone())
                .take(6)
                .collect();
            return Err(format!(
                "no \"DMAR: [DMA ...] Request device [{:02x}:{:02x}.{}] fault addr {page:#x}\" line within {:?} \
                 (fault event interrupt lost?); IOMMU lines since: {seen:?}",
                bdf.0, bdf.1, bdf.2, FAULT_LOG_TIMEOUT
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks a logged fault against what the device reported.
pub fn check_fault_line(
    line: &FaultLine,
    write: bool,
    device_reason: u32,
    scalable: bool,
) -> Vec<String> {
    let mut errs = Vec::new();
    if line.write != write {
        errs.push(format!(
            "log says DMA {}, the device did a {}",
            if line.write { "Write" } else { "Read" },
            if write { "write" } else { "read" }
        ));
    }
    if u32::from(line.reason) != device_reason {
        errs.push(format!(
            "log fault reason {:#04x}, the device reported {device_reason:#04x}",
            line.reason
        ));
    }
    if line.pasid.is_some() {
        errs.push(format!(
            "log shows PASID {:?} for a request without PASID",
            line.pasid
        ));
    }
    // VT-d 7.1.3 / 7.2.3: legacy-mode translation faults use reasons 0x1-0xd, scalable mode 0x30 and up.
    let plausible = if scalable {
        (0x30..=0x9f).contains(&line.reason)
    } else {
        (0x1..=0xd).contains(&line.reason)
    };
    if !plausible {
        errs.push(format!(
            "fault reason {:#04x} is not a {} translation fault reason",
            line.reason,
            if scalable {
                "scalable-mode"
            } else {
                "legacy-mode"
            }
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::kmsg::parse_record;

    fn line(write: bool, reason: u8) -> FaultLine {
        FaultLine {
            write,
            segment: 0,
            pasid: None,
            bus: 0,
            dev: 3,
            func: 0,
            addr: 0x2000_0000,
            reason,
        }
    }

    #[test]
    fn finds_only_newer_lines_for_the_device_and_page() {
        let recs: Vec<_> = [
            "3,10,1,-;DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x20000000 [fault reason 0x05] x",
            "3,11,1,-;DMAR: [DMA Write NO_PASID] Request device [00:04.0] fault addr 0x20000000 [fault reason 0x05] x",
            "3,12,1,-;DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr 0x20001000 [fault reason 0x06] x",
            // Linux 7.x names the segment; another segment's device is not ours.
            "3,13,1,-;DMAR: [DMA Read NO_PASID] Request device [0001:00:03.0] fault addr 0x20002000 [fault reason 0x06] x",
            "3,14,1,-;DMAR: [DMA Read NO_PASID] Request device [0000:00:03.0] fault addr 0x20003000 [fault reason 0x06] x",
        ]
        .iter()
        .filter_map(|s| parse_record(s))
        .collect();
        assert_eq!(
            find_fault(&recs, 9, (0, 3, 0), 0x2000_0000).map(|f| f.reason),
            Some(5)
        );
        assert!(find_fault(&recs, 10, (0, 3, 0), 0x2000_0000).is_none());
        assert_eq!(
            find_fault(&recs, 0, (0, 3, 0), 0x2000_1000).map(|f| f.write),
            Some(false)
        );
        assert!(find_fault(&recs, 0, (0, 3, 0), 0x2000_2000).is_none());
        assert!(find_fault(&recs, 0, (0, 3, 0), 0x2000_3000).is_some());
    }

    #[test]
    fn faults_are_paced_to_the_log_ratelimit() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(pace_delay(&[], t0), Duration::ZERO);
        let two = [t0, t0 + s(1)];
        assert_eq!(pace_delay(&two, t0 + s(2)), Duration::ZERO);
        // A fourth within the window waits until the first has left it.
        let three = [t0, t0 + s(1), t0 + s(2)];
        assert_eq!(pace_delay(&three, t0 + s(3)), FAULT_WINDOW - s(3));
        // Old ones do not count.
        assert_eq!(pace_delay(&three, t0 + s(6)), Duration::ZERO);
        assert_eq!(
            pace_delay(&[t0, t0 + s(1), t0 + s(2), t0 + s(3)], t0 + s(4)),
            FAULT_WINDOW - s(3)
        );
    }

    #[test]
    fn fault_line_must_agree_with_the_device() {
        assert!(check_fault_line(&line(true, 5), true, 5, false).is_empty());
        assert!(check_fault_line(&line(true, 0x79), true, 0x79, true).is_empty());
        let e = check_fault_line(&line(false, 5), true, 6, true);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("log says DMA Read"));
        assert!(e[1].contains("reason 0x05, the device reported 0x06"));
        assert!(e[2].contains("not a scalable-mode"));
    }
}
