//! `vfio-cdev`: the test device, bound to vfio-pci, opens as a VFIO device cdev, binds to an iommufd, attaches
//! to an IOAS, and IOMMU_GET_HW_INFO reports a VT-d unit with the published CAP and ECAP.

use super::super::context::Context;
use super::super::iommufd::{VtdHwInfo, HW_INFO_TYPE_VTD};
use super::super::report::Report;
use super::dmar_up::check_id_registers;
use super::session::{expected, Session};

/// Checks GET_HW_INFO's answer against the published registers.
pub fn check_hw_info(
    info: &firmware_tables::description::IommuInfo,
    hw: &VtdHwInfo,
    r: &mut Report,
) {
    r.diag(format!(
        "IOMMU_GET_HW_INFO: type {}, flags {:#x}, cap {:#x}, ecap {:#x}",
        hw.data_type, hw.flags, hw.cap, hw.ecap
    ));
    if hw.data_type != HW_INFO_TYPE_VTD {
        r.fail(format!(
            "hw info type {}, expected {HW_INFO_TYPE_VTD} (IOMMU_HW_INFO_TYPE_INTEL_VTD)",
            hw.data_type
        ));
        return;
    }
    check_id_registers(info, "IOMMU_GET_HW_INFO", hw.cap, hw.ecap, r);
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
    match s.iommufd.hw_info_vtd(s.dev_id) {
        Ok(hw) => check_hw_info(info, &hw, &mut r),
        Err(e) => r.fail(e),
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_tables::description::IommuInfo;

    fn info() -> IommuInfo {
        IommuInfo {
            model: "vtd".into(),
            options: "vtd".into(),
            base: 0xfed9_0000,
            id_registers: vec![0x10, 0x20],
            permitted_ranges: vec![],
            permitted_ranges_first_stage: vec![],
            test_device_bdf: "0000:00:03.0".into(),
        }
    }

    #[test]
    fn hw_info_must_be_vtd_with_the_published_registers() {
        let good = VtdHwInfo {
            data_type: 1,
            flags: 1,
            cap: 0x10,
            ecap: 0x20,
        };
        let mut r = Report::new();
        check_hw_info(&info(), &good, &mut r);
        assert!(r.passed(), "{:?}", r.diagnostics);

        let mut r = Report::new();
        check_hw_info(
            &info(),
            &VtdHwInfo {
                data_type: 2,
                ..good
            },
            &mut r,
        );
        assert!(r.diagnostics[1].contains("type 2"), "{:?}", r.diagnostics);

        let mut r = Report::new();
        check_hw_info(&info(), &VtdHwInfo { cap: 0x11, ..good }, &mut r);
        assert!(!r.passed());
        assert!(r.diagnostics[1].contains("CAP 0x11, published 0x10"));
    }
}
