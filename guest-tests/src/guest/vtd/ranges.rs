//! `iova-ranges`: IOMMU_IOAS_IOVA_RANGES on the IOAS the test device is attached to equals the ranges the VMM
//! published for it; a fresh IOAS is unrestricted; the holes below the aperture are exactly the device group's
//! enforced reserved regions (sysfs); mapping just past the aperture and inside the MSI window fails while a
//! mapping inside the ranges works.

use firmware_tables::description::{IommuInfo, IovaRange};

use super::super::context::Context;
use super::super::dmabuf::{DmaBuffer, PAGE};
use super::super::iommufd::MapPerms;
use super::super::report::Report;
use super::common::unmap;
use super::iova::{self, show};
use super::log;
use super::session::{expected, Session};

/// Start of the x86 MSI window, always reserved by intel-iommu.
pub const MSI_WINDOW: u64 = 0xfee0_0000;
/// A harmless permitted IOVA for the positive control.
pub const CONTROL_IOVA: u64 = 0x1000_0000;

/// Compares the IOAS's ranges with the published ones.
pub fn check_ranges(got: &[IovaRange], want: &[IovaRange], r: &mut Report) {
    if got == want {
        r.diag(format!("IOVA ranges {}", show(got)));
    } else {
        r.fail(format!(
            "IOMMU_IOAS_IOVA_RANGES {}, published {}",
            show(got),
            show(want)
        ));
    }
}

/// The group's enforced reserved regions must be the holes of the published ranges.
pub fn check_reserved(text: &str, want: &[IovaRange], r: &mut Report) {
    match iova::parse_reserved_regions(text) {
        Ok(regions) => {
            let enforced = iova::enforced(&regions);
            let holes = iova::holes(want);
            if enforced != holes {
                r.fail(format!(
                    "iommu_group/reserved_regions enforce {}, but the published ranges leave holes {}",
                    show(&enforced),
                    show(&holes)
                ));
            }
        }
        Err(e) => r.fail(e),
    }
}

fn probe_maps(
    s: &Session,
    info: &IommuInfo,
    want: &[IovaRange],
    r: &mut Report,
) -> Result<(), String> {
    let buf = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    let len = PAGE;
    if !iova::permits(want, CONTROL_IOVA, len) {
        return Err(format!(
            "control IOVA {CONTROL_IOVA:#x} is not in the published ranges"
        ));
    }
    s.iommufd
        .map(s.ioas, buf.va(), len, CONTROL_IOVA, MapPerms::RW)
        .map_err(|e| format!("positive control failed: {e}"))?;
    let n = s.iommufd.unmap(s.ioas, CONTROL_IOVA, len)?;
    if n != len {
        r.fail(format!(
            "unmap of the control mapping returned {n:#x} bytes, expected {len:#x}"
        ));
    }
    let mut bad = vec![("inside the MSI window", MSI_WINDOW)];
    if let Some(past) = iova::first_past_aperture(want) {
        bad.push(("just past the aperture", past));
    }
    for (what, iova) in bad {
        if iova::permits(want, iova, len) {
            r.fail(format!("published ranges permit {iova:#x} ({what})"));
            continue;
        }
        match s.iommufd.map(s.ioas, buf.va(), len, iova, MapPerms::RW) {
            Ok(()) => {
                r.fail(format!("IOMMU_IOAS_MAP at {iova:#x} ({what}) succeeded"));
                let _ = s.iommufd.unmap(s.ioas, iova, len);
            }
            Err(e) => r.diag(format!("map {what} refused as expected: {e}")),
        }
    }
    // RMRRs: an IOVA inside one is mappable exactly when the published ranges say so (an RMRR of another
    // device leaves the test device's IOVA space alone; one of its own would be a hole).
    for rm in log::rmrr_options(&info.options)? {
        let iova = rm.base & !(PAGE - 1);
        let allowed = iova::permits(want, iova, len);
        let res = s.iommufd.map(s.ioas, buf.va(), len, iova, MapPerms::RW);
        match (&res, allowed) {
            (Ok(()), true) => {
                r.diag(format!("IOVA {iova:#x} inside the RMRR of {} is mappable", rm.bdf));
                unmap(s, s.ioas, iova, len)?;
            }
            (Err(e), false) => r.diag(format!("IOVA {iova:#x} inside the RMRR of {} refused: {e}", rm.bdf)),
            (Ok(()), false) => {
                r.fail(format!(
                    "IOVA {iova:#x} inside the RMRR of {} mapped, but the published ranges exclude it",
                    rm.bdf
                ));
                let _ = s.iommufd.unmap(s.ioas, iova, len);
            }
            (Err(e), true) => r.fail(format!(
                "IOVA {iova:#x} inside the RMRR of {} is published as permitted but mapping failed: {e}",
                rm.bdf
            )),
        }
    }
    Ok(())
}

pub fn run(ctx: &Context) -> Report {
    let info = match expected(ctx) {
        Ok(i) => i,
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
    // Nothing is mapped yet, so the control IOVA tells which tables the kernel gave the IOAS.
    let want = match s.attached_stage(CONTROL_IOVA) {
        Ok(stage) => {
            r.diag(format!("the IOAS's domain uses {} tables", stage.name()));
            stage.published(info)
        }
        Err(e) => return Report::failure(e),
    };
    match s.iommufd.iova_ranges(s.ioas) {
        Ok((got, align)) => {
            check_ranges(&got, want, &mut r);
            if !align.is_power_of_two() || align > PAGE {
                r.fail(format!("IOVA alignment {align:#x}"));
            }
        }
        Err(e) => r.fail(e),
    }
    match s.iommufd.ioas_alloc() {
        Ok(fresh) => {
            match s.iommufd.iova_ranges(fresh) {
                Ok((got, _)) => {
                    let full = [IovaRange {
                        first: 0,
                        last: u64::MAX,
                    }];
                    if got != full {
                        r.fail(format!(
                            "a fresh IOAS permits {}, expected {}",
                            show(&got),
                            show(&full)
                        ));
                    }
                }
                Err(e) => r.fail(e),
            }
            if let Err(e) = s.iommufd.destroy(fresh) {
                r.fail(e);
            }
        }
        Err(e) => r.fail(e),
    }
    let rr = format!("sys/bus/pci/devices/{}/iommu_group/reserved_regions", s.bdf);
    match ctx.read(&rr) {
        Ok(text) => {
            r.diag(format!(
                "reserved_regions: {}",
                text.trim().replace('\n', "; ")
            ));
            check_reserved(&text, want, &mut r);
        }
        Err(e) => r.fail(e),
    }
    if let Err(e) = probe_maps(&s, info, want, &mut r) {
        r.fail(e);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(p: &[(u64, u64)]) -> Vec<IovaRange> {
        p.iter()
            .map(|&(first, last)| IovaRange { first, last })
            .collect()
    }

    #[test]
    fn ranges_must_match_exactly() {
        let want = v(&[(0, 0xfedf_ffff), (0xfef0_0000, 0xffff_ffff_ffff)]);
        let mut r = Report::new();
        check_ranges(&want, &want, &mut r);
        assert!(r.passed());
        let mut r = Report::new();
        check_ranges(
            &v(&[(0, 0xfedf_ffff), (0xfef0_0000, 0x7f_ffff_ffff)]),
            &want,
            &mut r,
        );
        assert!(!r.passed());
        assert!(
            r.diagnostics[0].contains("0xfef00000-0x7fffffffff"),
            "{:?}",
            r.diagnostics
        );
    }

    #[test]
    fn reserved_regions_must_be_the_holes() {
        let want = v(&[(0, 0xfedf_ffff), (0xfef0_0000, 0xffff_ffff_ffff)]);
        let mut r = Report::new();
        check_reserved("0x00000000fee00000 0x00000000feefffff msi\n", &want, &mut r);
        assert!(r.passed(), "{:?}", r.diagnostics);
        // An RMRR on the device itself ("direct") would have to show up as a hole too.
        let mut r = Report::new();
        check_reserved(
            "0x0000000007f00000 0x0000000007ffffff direct\n0x00000000fee00000 0x00000000feefffff msi\n",
            &want,
            &mut r,
        );
        assert!(!r.passed());
        let mut r = Report::new();
        check_reserved("garbage\n", &want, &mut r);
        assert!(!r.passed());
    }

    #[test]
    fn run_fails_cleanly_without_expectations() {
        let ctx = Context {
            root: std::path::PathBuf::from("/nonexistent-guest-root"),
            expect: Err("no expect.json".into()),
            scenario: "vtd".into(),
        };
        let r = run(&ctx);
        assert!(!r.passed());
        assert!(r.diagnostics[0].contains("no expect.json"));
    }
}
