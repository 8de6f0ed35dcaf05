//! `smmuv3-monitor`: the SMMUv3 twin of the VT-d `monitor-check`. Our bring-up driver installs a nested stream
//! for the test device (`crate::bringup::smmuv3::monitor`: STE S1+S2, CD and 4-level 4K stage 1 in IPA space
//! under stage 2, an SSID when the SMMU has substreams, one stage-1 leaf with AF=0 under CD.HA), prints the
//! same request line as VT-d (`iovmm-guest: monitor-check source=.. iova=.. expect-output=.. expect-levels=4
//! pasid=N`) and waits [`MONITOR_WAIT`] while the runner walks it through `iovmm debug translate`. Afterwards
//! every byte the driver owns must be unchanged (no AF written by the lookup, no event recorded), and a real DMA
//! through the same IOVA must work and set AF.

use super::context::Context;
use super::report::Report;
use super::smmuv3::expectations;
use super::sys;
use super::vtd::nest::monitor::{short_bdf, Request, MONITOR_WAIT};
use crate::bringup::devmem::DevMem;
use crate::bringup::smmuv3::driver::{Driver, Options};
use crate::bringup::smmuv3::monitor::Nested;
use crate::bringup::testdev;

/// `bb:dd.f` of a StreamID that is a PCI requester ID.
pub fn sid_bdf(sid: u32) -> String {
    format!(
        "{:02x}:{:02x}.{}",
        (sid >> 8) & 0xff,
        (sid >> 3) & 0x1f,
        sid & 7
    )
}

/// The request line for a nested stream as installed.
pub fn request(n: &Nested) -> Result<Request, String> {
    Ok(Request {
        source: sid_bdf(n.sid),
        iova: n.iova,
        output: n.output,
        levels: u8::try_from(n.levels).map_err(|_| format!("{} levels", n.levels))?,
        pasid: n.ssid,
    })
}

/// Fails if the event queue holds records.
fn no_events(d: &mut Driver, when: &str) -> Result<(), String> {
    let ev = d.read_events()?;
    if ev.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{when}: {} event(s): {}",
            ev.len(),
            ev.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}

fn body(ctx: &Context, r: &mut Report) -> Result<(), String> {
    let (cfg, idr) = expectations(ctx)?;
    let published_bdf = ctx
        .expect
        .as_ref()
        .ok()
        .and_then(|e| e.iommu.as_ref())
        .map(|i| short_bdf(&i.test_device_bdf));
    let backend = DevMem::open(&ctx.root, Some(cfg), (!idr.is_empty()).then_some(idr))?;
    let mut d = Driver::probe(Box::new(backend)).map_err(|e| format!("probe: {e}"))?;
    d.bring_up(Options::default())
        .map_err(|e| format!("bring-up: {e}"))?;
    testdev::enable_pasid(&mut *d.b, false)?;
    let n = Nested::install(&mut d)?;
    r.diag(n.describe());
    let req = request(&n)?;
    if let Some(b) = published_bdf {
        if b != req.source {
            return Err(format!(
                "the test device is published as {b}, its StreamID {:#x} says {}",
                n.sid, req.source
            ));
        }
    }
    let before = n.snapshot(&mut d)?;
    sys::out(&req.line());
    std::thread::sleep(MONITOR_WAIT);
    let now = n.snapshot(&mut d)?;
    n.check_unchanged(&before, &now)
        .map_err(|e| format!("across the monitor's walk (must be side-effect free): {e}"))?;
    no_events(&mut d, "after the monitor's walk")?;
    r.diag(format!(
        "asked the runner to check {:#x} (SSID {}) -> {:#x} ({} stage-1 levels); {:#x} bytes of driver memory \
         (STE, CD, both stages' tables, queues) unchanged after {:?}, leaf still {:#x}",
        req.iova,
        req.pasid.map_or("none".into(), |p| p.to_string()),
        req.output,
        req.levels,
        before.len(),
        MONITOR_WAIT,
        n.leaf
    ));
    r.diag(n.dma_sets_af(&mut d)?);
    no_events(&mut d, "after the DMA")?;
    let g = d.active_gerror();
    if g != 0 {
        return Err(format!("GERROR ^ GERRORN = {g:#x} after the test"));
    }
    Ok(())
}

pub fn run(ctx: &Context) -> Report {
    let mut r = Report::new();
    if let Err(e) = body(ctx, &mut r) {
        r.fail(e);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bringup::host::HostBackend;

    #[test]
    fn stream_ids_are_bdfs() {
        assert_eq!(sid_bdf(0x18), "00:03.0");
        assert_eq!(sid_bdf(0x20), "00:04.0");
        assert_eq!(sid_bdf(0x1_23), "01:04.3");
    }

    /// The line the guest prints for the driver's own nested stream, and the runner's parse of it.
    #[test]
    fn request_line_for_the_nested_stream() {
        let mut d = Driver::probe(Box::new(HostBackend::new(Default::default()).unwrap())).unwrap();
        d.bring_up(Options::default()).unwrap();
        let n = Nested::install(&mut d).unwrap();
        let q = request(&n).unwrap();
        let l = q.line();
        assert!(
            l.starts_with(
                "iovmm-guest: monitor-check source=00:03.0 iova=0x5ab4c3d5e2a8 expect-output=0x"
            ),
            "{l}"
        );
        assert!(l.ends_with(" expect-levels=4 pasid=5"), "{l}");
        assert_eq!(Request::parse(&l), Some(q));
    }

    #[test]
    fn without_dev_mem_it_fails_with_the_reason() {
        let ctx = Context {
            root: std::path::PathBuf::from("/nonexistent-guest-root"),
            expect: Err("no expect.json".into()),
            scenario: "smmuv3".into(),
        };
        let r = run(&ctx);
        assert!(!r.passed());
        assert!(
            r.diagnostics[0].contains("no expect.json"),
            "{:?}",
            r.diagnostics
        );
    }
}
