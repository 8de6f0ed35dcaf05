//! `monitor-check` (guest half): with nested tables installed and not yet used, the guest prints
//!
//! `iovmm-guest: monitor-check source=00:03.0 iova=0x... expect-output=0x... expect-levels=N [pasid=N]`
//!
//! (`pasid=`, decimal, only when the walk is for a PASID / SMMUv3 SubstreamID: the runner passes it on as
//! `--pasid`; the SMMUv3 guest test `smmuv3-monitor` uses the same line and wait.)
//!
//! and waits [`MONITOR_WAIT`] with the tables in place. The runner (host or test-host script) sees the line,
//! asks the VMM's monitor to walk that IOVA (`iovmm debug translate`) and prints `iovmm-monitor-check: ok` or
//! `... not ok <why>`, which becomes its own JUnit case. `expect-output` is the guest-physical address our
//! stage 1 + stage 2 imply (stage 2 from /proc/self/pagemap), `expect-levels` the number of stage-1 levels the
//! walk reads.
//!
//! Afterwards the guest checks that the walk had no side effects (the table pages are byte-for-byte unchanged:
//! no accessed flag set) and that DMA through the same IOVA still works.

use std::time::Duration;

use super::super::super::context::Context;
use super::super::super::dma_engine::compare;
use super::super::super::dmabuf::{DmaBuffer, PAGE};
use super::super::super::report::Report;
use super::super::super::sys;
use super::super::session::{expected, full_bdf};
use super::ad::{self, Used};
use super::setup::{Nest, Tables};
use super::stage1::{LeafFlags, SIZE_4K, TABLE_BYTES};
use super::{filled, with_nest};

/// How long the tables stay installed after the line is printed.
pub const MONITOR_WAIT: Duration = Duration::from_secs(5);
/// Marker of the request line.
pub const MARKER: &str = "iovmm-guest: monitor-check ";

pub const V: u64 = 0x6_0000_0000;
pub const OFFSET: u64 = 0x2a8;
pub const A_IOAS: u64 = 0x7700_0000;

/// What the guest asks the runner to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `bb:dd.f`.
    pub source: String,
    pub iova: u64,
    pub output: u64,
    pub levels: u8,
    /// PASID (SMMUv3: SubstreamID) of the walk; none for requests without one.
    pub pasid: Option<u32>,
}

impl Request {
    pub fn line(&self) -> String {
        let pasid = self.pasid.map_or(String::new(), |p| format!(" pasid={p}"));
        format!(
            "{MARKER}source={} iova={:#x} expect-output={:#x} expect-levels={}{pasid}",
            self.source, self.iova, self.output, self.levels
        )
    }

    /// Parses a console line carrying the request (anything before the marker is ignored).
    pub fn parse(line: &str) -> Option<Self> {
        let rest = &line[line.find(MARKER)? + MARKER.len()..];
        let mut req = Request {
            source: String::new(),
            iova: 0,
            output: 0,
            levels: 0,
            pasid: None,
        };
        let mut seen = 0;
        for w in rest.split_whitespace() {
            let (k, v) = w.split_once('=')?;
            let hex = || u64::from_str_radix(v.strip_prefix("0x")?, 16).ok();
            match k {
                "source" => req.source = v.to_string(),
                "iova" => req.iova = hex()?,
                "expect-output" => req.output = hex()?,
                "expect-levels" => req.levels = v.parse().ok()?,
                "pasid" => {
                    req.pasid = Some(v.parse().ok()?);
                    continue;
                }
                _ => continue,
            }
            seen += 1;
        }
        (seen == 4 && !req.source.is_empty()).then_some(req)
    }
}

/// `bb:dd.f` of a BDF with or without segment.
pub fn short_bdf(bdf: &str) -> String {
    let full = full_bdf(bdf);
    full.split_once(':')
        .map_or(full.clone(), |(_, s)| s.to_string())
}

fn snapshot(t: &Tables) -> Vec<u8> {
    let used = t.used_pages() * TABLE_BYTES as usize;
    t.store().0.snapshot()[..used].to_vec()
}

fn body(n: &mut Nest, source: &str, r: &mut Report) -> Result<(), String> {
    let a = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    n.map(&a, A_IOAS)?;
    let mut t = n.tables()?;
    t.map(V, A_IOAS, SIZE_4K, LeafFlags::RW)?;
    n.attach_tables(&t)?;
    r.diag(n.describe(&t));
    let req = Request {
        source: source.to_string(),
        iova: V + OFFSET,
        output: a.phys_addr(&n.s.pagemap, OFFSET as usize)?,
        levels: t.levels(),
        pasid: None,
    };
    let before = snapshot(&t);
    sys::out(&req.line());
    std::thread::sleep(MONITOR_WAIT);
    compare(
        "stage-1 table pages across the monitor's walk (must be side-effect free)",
        &snapshot(&t),
        &before,
    )?;
    r.diag(format!(
        "asked the runner to check {:#x} -> {:#x} ({} stage-1 levels); tables unchanged after {:?}",
        req.iova, req.output, req.levels, MONITOR_WAIT
    ));
    let e = n.s.engine();
    let c0 = e.completions()?;
    let pat = 0x6d6f_6e69_746f_7221u64;
    e.fill(V, PAGE, pat)?
        .expect_done("fill through the checked IOVA", PAGE, c0)?;
    compare(
        "page behind the checked IOVA",
        &a.snapshot(),
        &filled(pat, PAGE as usize),
    )?;
    r.fail_all(ad::check(&t, "checked IOVA", V, Used::Written));
    Ok(())
}

pub fn run(ctx: &Context) -> Report {
    let source = match expected(ctx) {
        Ok(i) => short_bdf(&i.test_device_bdf),
        Err(e) => return Report::failure(e),
    };
    with_nest(ctx, |n, r| body(n, &source, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_round_trips() {
        let q = Request {
            source: "00:03.0".into(),
            iova: 0x6_0000_02a8,
            output: 0x1234_52a8,
            levels: 5,
            pasid: None,
        };
        let l = q.line();
        assert_eq!(
            l,
            "iovmm-guest: monitor-check source=00:03.0 iova=0x6000002a8 expect-output=0x123452a8 expect-levels=5"
        );
        assert_eq!(Request::parse(&l), Some(q.clone()));
        // Console noise before it and a carriage return after it.
        assert_eq!(Request::parse(&format!("[  3.1] {l}\r")), Some(q.clone()));
        assert!(Request::parse("iovmm-guest: monitor-check source=00:03.0 iova=0x1").is_none());
        assert!(Request::parse("iovmm-guest: monitor-check iova=zz").is_none());
        assert!(Request::parse("nothing").is_none());
        // An optional decimal PASID at the end (or anywhere); a malformed one spoils the line.
        let p = Request {
            pasid: Some(5),
            ..q.clone()
        };
        assert_eq!(p.line(), format!("{l} pasid=5"));
        assert_eq!(Request::parse(&format!("{}\r", p.line())), Some(p.clone()));
        assert_eq!(
            Request::parse(&l.replace(" iova=", " pasid=5 iova=")),
            Some(p)
        );
        assert!(Request::parse(&format!("{l} pasid=0x5")).is_none());
    }

    #[test]
    fn short_bdfs() {
        assert_eq!(short_bdf("0000:00:03.0"), "00:03.0");
        assert_eq!(short_bdf("00:03.0"), "00:03.0");
    }
}
