//! `hw-info`: IOMMU_GET_HW_INFO for the bound test device is VT-d with exactly the published CAP/ECAP, and those
//! registers say what the scenario configured: scalable mode with second-stage tables (SMTS, SLTS) always,
//! ECAP.FLTS exactly with `fl=on`, ECAP.NEST exactly with `nest=on`, CAP.FL5LP exactly with `fl5=on`, CAP.FL1GP
//! exactly with `fl1g=on` (an option the string does not name: FLTS and NEST must be there, the page-size bits
//! are only reported).

use firmware_tables::description::IommuInfo;

use super::super::context::Context;
use super::super::report::Report;
use super::cdev::check_hw_info;
use super::common::with_session;
use super::nest::setup::{Caps, CAP_FL1GP, CAP_FL5LP, ECAP_FLTS, ECAP_NEST, ECAP_SLTS, ECAP_SMTS};
use super::session::expected;

/// The value of `key=on|off` in an option string, if present.
pub fn option(options: &str, key: &str) -> Option<bool> {
    options
        .split(',')
        .filter_map(|o| o.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| match v {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        })
}

/// Checks the published registers against the option string.
pub fn check_caps(info: &IommuInfo, r: &mut Report) {
    let caps = match Caps::of(info) {
        Ok(c) => c,
        Err(e) => return r.fail(e),
    };
    for (bit, name) in [(ECAP_SMTS, "SMTS"), (ECAP_SLTS, "SLTS")] {
        if caps.ecap & bit == 0 {
            r.fail(format!("the published ECAP {:#x} lacks {name}", caps.ecap));
        }
    }
    let checks = [
        ("fl", caps.ecap, ECAP_FLTS, "ECAP.FLTS", Some(true)),
        ("nest", caps.ecap, ECAP_NEST, "ECAP.NEST", Some(true)),
        ("fl5", caps.cap, CAP_FL5LP, "CAP.FL5LP", None),
        ("fl1g", caps.cap, CAP_FL1GP, "CAP.FL1GP", None),
    ];
    for (key, reg, bit, name, unnamed) in checks {
        let has = reg & bit != 0;
        match option(&info.options, key).or(unnamed) {
            Some(want) if want != has => r.fail(format!(
                "{name} is {}, but the IOMMU was configured with {key}={}",
                u8::from(has),
                if want { "on" } else { "off" }
            )),
            Some(_) => r.diag(format!("{name} = {} as configured", u8::from(has))),
            None => r.diag(format!(
                "{name} = {} ({key} not in the options)",
                u8::from(has)
            )),
        }
    }
}

pub fn run(ctx: &Context) -> Report {
    let info = match expected(ctx) {
        Ok(i) => i.clone(),
        Err(e) => return Report::failure(e),
    };
    with_session(ctx, |s, r| {
        let hw = s.iommufd.hw_info_vtd(s.dev_id)?;
        check_hw_info(&info, &hw, r);
        check_caps(&info, r);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(options: &str, cap: u64, ecap: u64) -> IommuInfo {
        IommuInfo {
            model: "vtd".into(),
            options: options.into(),
            base: 0xfed9_0000,
            id_registers: vec![cap, ecap],
            permitted_ranges: vec![],
            permitted_ranges_first_stage: vec![],
            test_device_bdf: "0000:00:03.0".into(),
        }
    }

    const NEST: u64 = ECAP_SMTS | ECAP_NEST | ECAP_FLTS | ECAP_SLTS;

    #[test]
    fn options_parse() {
        let o = "vtd,aw=57,fl=on,fl5=on,fl1g=off";
        assert_eq!(option(o, "fl5"), Some(true));
        assert_eq!(option(o, "fl1g"), Some(false));
        assert_eq!(option(o, "fl"), Some(true));
        assert_eq!(option(o, "nest"), None);
        assert_eq!(option("vtd,fl5=maybe", "fl5"), None);
    }

    #[test]
    fn caps_must_match_the_options() {
        let mut r = Report::new();
        check_caps(
            &info("vtd,fl5=on,fl1g=on", CAP_FL5LP | CAP_FL1GP, NEST),
            &mut r,
        );
        assert!(r.passed(), "{:?}", r.diagnostics);
        let mut r = Report::new();
        check_caps(&info("vtd,fl5=on,fl1g=off", CAP_FL1GP, NEST), &mut r);
        let d = r.diagnostics.join("\n");
        assert!(
            d.contains("CAP.FL5LP is 0, but the IOMMU was configured with fl5=on"),
            "{d}"
        );
        assert!(d.contains("CAP.FL1GP is 1, but"), "{d}");
        let mut r = Report::new();
        check_caps(&info("vtd", 0, ECAP_SMTS | ECAP_SLTS), &mut r);
        assert!(!r.passed());
        let d = r.diagnostics.join("\n");
        assert!(
            d.contains("ECAP.FLTS is 0, but the IOMMU was configured with fl=on"),
            "{d}"
        );
        assert!(d.contains("ECAP.NEST is 0"), "{d}");
        // First stage without nesting: exactly what the options say.
        let mut r = Report::new();
        let fs = ECAP_SMTS | ECAP_FLTS | ECAP_SLTS;
        check_caps(&info("vtd,fl=on,nest=off", 0, fs), &mut r);
        assert!(r.passed(), "{:?}", r.diagnostics);
        let mut r = Report::new();
        check_caps(&info("vtd,fl=on,nest=off", 0, NEST), &mut r);
        assert!(!r.passed());
        let mut r = Report::new();
        check_caps(
            &info("vtd,fl=off,nest=off", 0, ECAP_SMTS | ECAP_SLTS),
            &mut r,
        );
        assert!(r.passed(), "{:?}", r.diagnostics);
        let mut r = Report::new();
        check_caps(&info("vtd,fl=on", 0, ECAP_FLTS | ECAP_NEST), &mut r);
        assert!(r.diagnostics.join(" ").contains("lacks SMTS"));
    }
}
