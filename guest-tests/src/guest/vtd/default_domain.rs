//! `default-domain`: what can be observed of the kernel's own DMA-API domain of the test device.
//!
//! No kernel driver in the guest does DMA (no disk, no network; the test device has no driver), so nothing is
//! ever mapped in that domain and no in-kernel DMA can be checked. What is observable: the device's default
//! domain is a translating DMA domain (`iommu_group/type` DMA or DMA-FQ), and a DMA the device issues while
//! only that domain is attached (no driver, or vfio-pci not opened; BAR0 through sysfs `resource0`, bus
//! mastering through sysfs `config`) is refused with a reason of the stage the domain's tables use: with
//! ECAP.FLTS and SLTS both set Linux builds DMA-API domains with first-stage tables (`first_level_by_default`),
//! so the reason must be first-stage (0x71: P clear in the first-stage entry); with SLTS only, second-stage
//! (0x79). In legacy mode the tables are second-stage by construction and a write through an absent entry is
//! legacy reason 0x5 (VT-d 7.1.3: the entry's W field is 0).

use std::os::unix::fs::FileExt;

use super::super::context::Context;
use super::super::dma_engine::DmaEngine;
use super::super::kmsg;
use super::super::report::Report;
use super::super::vfio::{current_driver, PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY};
use super::super::vfio_cdev::MappedRegion;
use super::common::{check_fault_line, kmsg_mark, wait_fault_line_for};
use super::log::parse_bdf_short;
use super::nest::setup::{Caps, ECAP_FLTS, ECAP_SMTS};
use super::nest::{FS_NOT_PRESENT, SS_NOT_PRESENT};
use super::session::{expected, full_bdf};
use pci::test_device::regs::{FAULT_ACCESS_WRITE, ID_MAGIC, REG_ID};

/// An IOVA nothing maps in the default domain (no driver ever mapped anything).
pub const PROBE_IOVA: u64 = 0xdead_0000;

/// Legacy-mode reason of a write through a second-stage entry with W = 0 (an absent entry has R = W = 0).
pub const LEGACY_WRITE_DENIED: u8 = 0x5;

/// Which tables the kernel's DMA domain uses, from the published ECAP, and the reason a write to an unmapped
/// IOVA gets.
pub fn default_stage(ecap: u64) -> (&'static str, u8) {
    if ecap & ECAP_SMTS == 0 {
        return ("legacy-mode second-stage", LEGACY_WRITE_DENIED);
    }
    // first_level_by_default: FLTS alone, or FLTS with SLTS for DMA-API (not UNMANAGED) domains.
    if ecap & ECAP_FLTS != 0 {
        ("first-stage", FS_NOT_PRESENT)
    } else {
        ("second-stage", SS_NOT_PRESENT)
    }
}

fn read_cmd(cfg: &std::fs::File) -> Result<u16, String> {
    let mut b = [0u8; 2];
    cfg.read_exact_at(&mut b, PCI_COMMAND)
        .map_err(|e| format!("read config command: {e}"))?;
    Ok(u16::from_le_bytes(b))
}

fn write_cmd(cfg: &std::fs::File, v: u16) -> Result<(), String> {
    cfg.write_all_at(&v.to_le_bytes(), PCI_COMMAND)
        .map_err(|e| format!("write config command: {e}"))
}

fn probe(
    ctx: &Context,
    bdf: &str,
    reason: u8,
    scalable: bool,
    r: &mut Report,
) -> Result<(), String> {
    let dir = ctx.path(&format!("sys/bus/pci/devices/{bdf}"));
    let rw = |name: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(name))
            .map_err(|e| format!("cannot open {}/{name}: {e}", dir.display()))
    };
    let res = rw("resource0")?;
    let len = res.metadata().map_err(|e| format!("resource0: {e}"))?.len();
    let bar = MappedRegion::map_file(&res, 0, len as usize)?;
    let id = bar.read32(REG_ID)?;
    if id != ID_MAGIC {
        return Err(format!(
            "BAR0 ID {id:#010x} through resource0, expected {ID_MAGIC:#010x}"
        ));
    }
    let cfg = rw("config")?;
    let cmd0 = read_cmd(&cfg)?;
    write_cmd(&cfg, cmd0 | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)?;
    let e = DmaEngine { bar: &bar };
    let mark = kmsg_mark(ctx)?;
    let outcome = e.fill(PROBE_IOVA, 64, 0x0123_4567_89ab_cdef);
    let restore = write_cmd(&cfg, cmd0);
    let o = outcome?;
    restore?;
    o.expect_fault("DMA in the default domain", PROBE_IOVA, FAULT_ACCESS_WRITE)?;
    r.diag(format!(
        "device FAULT at {:#x}, reason {:#04x} (expected {reason:#04x})",
        o.fault_iova, o.fault_reason
    ));
    if o.fault_reason != u32::from(reason) {
        r.fail(format!(
            "default-domain fault reason {:#04x}, expected {reason:#04x}",
            o.fault_reason
        ));
    }
    let short = bdf.split_once(':').map_or(bdf, |(_, s)| s);
    let parts = parse_bdf_short(short).ok_or_else(|| format!("bad BDF {bdf}"))?;
    let line = wait_fault_line_for(ctx, parts, mark, PROBE_IOVA)?;
    r.diag(format!("logged reason {:#04x}", line.reason));
    r.fail_all(check_fault_line(&line, true, o.fault_reason, scalable));
    Ok(())
}

pub fn run(ctx: &Context) -> Report {
    let info = match expected(ctx) {
        Ok(i) => i.clone(),
        Err(e) => return Report::failure(e),
    };
    let mut r = Report::new();
    let caps = match Caps::of(&info) {
        Ok(c) => c,
        Err(e) => return Report::failure(e),
    };
    let bdf = full_bdf(&info.test_device_bdf);
    match ctx.read(&format!("sys/bus/pci/devices/{bdf}/iommu_group/type")) {
        Ok(t) if matches!(t.trim(), "DMA" | "DMA-FQ") => {
            r.diag(format!("{bdf} default domain type {}", t.trim()))
        }
        Ok(t) => r.fail(format!(
            "{bdf} default domain type {:?}, expected DMA or DMA-FQ",
            t.trim()
        )),
        Err(e) => r.fail(e),
    }
    let driver = current_driver(&ctx.path(&format!("sys/bus/pci/devices/{bdf}")));
    r.diag(format!(
        "driver: {}; no kernel driver maps DMA for it, so only a fault is observable",
        driver.as_deref().unwrap_or("none")
    ));
    let (stage, reason) = default_stage(caps.ecap);
    r.diag(format!(
        "ECAP {:#x}: the DMA-API domain uses {stage} tables",
        caps.ecap
    ));
    if let Some(d) = driver.filter(|d| d != "vfio-pci") {
        r.fail(format!(
            "{bdf} is bound to {d}; the test needs it driverless or on vfio-pci"
        ));
        return r;
    }
    if let Err(e) = probe(ctx, &bdf, reason, caps.ecap & ECAP_SMTS != 0, &mut r) {
        r.fail(e);
    }
    if let Ok(recs) = kmsg::read_all(&ctx.path("dev/kmsg")) {
        if let Some(l) = recs
            .iter()
            .find(|x| x.message.contains("IOMMU batching disallowed"))
        {
            r.diag(format!("log: {}", l.message));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::super::nest::setup::ECAP_SLTS;
    use super::*;

    #[test]
    fn stage_follows_ecap() {
        assert_eq!(default_stage(0), ("legacy-mode second-stage", 0x5));
        assert_eq!(
            default_stage(ECAP_SMTS | ECAP_SLTS | ECAP_FLTS),
            ("first-stage", 0x71)
        );
        assert_eq!(default_stage(ECAP_SMTS | ECAP_SLTS), ("second-stage", 0x79));
        assert_eq!(default_stage(ECAP_SMTS | ECAP_FLTS).0, "first-stage");
    }

    #[test]
    fn fails_cleanly_without_expectations() {
        let ctx = Context {
            root: std::path::PathBuf::from("/nonexistent-guest-root"),
            expect: Err("no expect.json".into()),
            scenario: "vtd-first-stage".into(),
        };
        assert!(!run(&ctx).passed());
    }
}
