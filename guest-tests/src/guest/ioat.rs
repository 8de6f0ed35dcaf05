//! `ioat-dma`: a driver the distribution ships moves data through the kernel's DMA-API domain. Linux's own
//! `ioatdma` driver binds iovmm's I/OAT DMA engine (8086:2021, CBDMA 3.3) and, before it registers a single
//! channel, runs its probe-time self-test (`ioat_dma_self_test`): a memcpy of a kernel buffer through the
//! DMA API, completed by the channel's interrupt and compared byte for byte; a failed test unbinds the driver.
//! So a registered channel (`/sys/class/dma/dmaNchanM` under the function) means translated DMA worked.
//!
//! Checked: the function is bound to `ioatdma`; it has at least one registered DMA channel; with an IOMMU its
//! `iommu_group/type` is a translating DMA domain (`DMA` or `DMA-FQ`: the data went through the model's tables),
//! without one it has no group; its MSI-X vector (`ioat-msix`) fired at least once and, where the unit remaps
//! interrupts (VT-d ECAP.IR), sits on an `IR-PCI-MSI*` chip.

use super::context::Context;
use super::report::Report;
use super::vfio::current_driver;
use super::vtd::ir::parse_interrupts;

/// The I/OAT engine iovmm emulates (Intel Skylake-X CBDMA, `PCI_DEVICE_ID_INTEL_IOAT_SKX`).
pub const VENDOR_ID: u16 = 0x8086;
pub const DEVICE_ID: u16 = 0x2021;
/// The driver that must bind it.
pub const DRIVER: &str = "ioatdma";
/// The action name ioatdma gives its MSI-X interrupts (`ioat_dma_setup_interrupts`).
pub const MSIX_ACTION: &str = "ioat-msix";
/// VT-d ECAP.IR (bit 3): the unit remaps interrupts.
const ECAP_IR: u64 = 1 << 3;

/// The engine's BDF in the machine description.
pub fn find(ctx: &Context) -> Result<String, String> {
    let expect = ctx
        .expect
        .as_ref()
        .map_err(|e| format!("no expectations: {e}"))?;
    expect
        .pci
        .iter()
        .find(|f| f.vendor_id == VENDOR_ID && f.device_id == DEVICE_ID)
        .map(|f| f.bdf.clone())
        .ok_or_else(|| format!("the machine has no {VENDOR_ID:04x}:{DEVICE_ID:04x} I/OAT engine"))
}

/// The DMA channels registered for PCI function `bdf` (`/sys/class/dma/*/device` pointing at it).
pub fn channels(ctx: &Context, bdf: &str) -> Result<Vec<String>, String> {
    let dir = ctx.path("sys/class/dma");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        // No dmaengine channel at all: the class directory may not exist.
        Err(_) => return Ok(Vec::new()),
    };
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path().join("device"))
                .ok()
                .and_then(|t| t.file_name().map(|n| n == bdf))
                .unwrap_or(false)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    Ok(out)
}

/// Whether the machine's IOMMU remaps interrupts.
fn remapping(ctx: &Context) -> bool {
    ctx.expect
        .as_ref()
        .ok()
        .and_then(|e| e.iommu.as_ref())
        .is_some_and(|i| {
            i.model == "vtd" && i.id_registers.get(1).is_some_and(|e| e & ECAP_IR != 0)
        })
}

fn check(ctx: &Context, r: &mut Report) -> Result<(), String> {
    let bdf = find(ctx)?;
    let dev = ctx.path(&format!("sys/bus/pci/devices/{bdf}"));
    match current_driver(&dev) {
        Some(d) if d == DRIVER => r.diag(format!("{bdf} bound to {d}")),
        other => {
            return Err(format!(
                "{bdf} driver {other:?}, expected {DRIVER} (module missing, or the probe or its self-test failed: see the kernel log)"
            ))
        }
    }
    let chans = channels(ctx, &bdf)?;
    if chans.is_empty() {
        r.fail(format!(
            "{bdf} registered no DMA channel: ioatdma registers them only after its self-test copy passed"
        ));
    } else {
        r.diag(format!(
            "{bdf}: channels {} registered after the self-test",
            chans.join(", ")
        ));
    }
    let iommu = ctx.expect.as_ref().ok().and_then(|e| e.iommu.as_ref());
    match (
        iommu,
        ctx.read(&format!("sys/bus/pci/devices/{bdf}/iommu_group/type")),
    ) {
        (Some(info), Ok(t)) if matches!(t.trim(), "DMA" | "DMA-FQ") => r.diag(format!(
            "{bdf} DMA-API domain type {}: the self-test's DMA was translated by the {}",
            t.trim(),
            info.model
        )),
        (Some(_), Ok(t)) => r.fail(format!(
            "{bdf} domain type {:?}, expected DMA or DMA-FQ",
            t.trim()
        )),
        (Some(_), Err(e)) => r.fail(format!("{bdf} has no IOMMU group behind the IOMMU: {e}")),
        (None, Err(_)) => r.diag(format!("{bdf}: no IOMMU, direct DMA")),
        (None, Ok(t)) => r.fail(format!(
            "{bdf} has an IOMMU group ({}) on a machine without an IOMMU",
            t.trim()
        )),
    }
    let lines = parse_interrupts(&ctx.read("proc/interrupts")?);
    let ours: Vec<_> = lines
        .iter()
        .filter(|l| l.rest.split_whitespace().any(|w| w == MSIX_ACTION) && l.chip.contains(&bdf))
        .collect();
    if ours.is_empty() {
        return Err(format!(
            "no {MSIX_ACTION} interrupt of {bdf} in /proc/interrupts"
        ));
    }
    let want_ir = remapping(ctx);
    for l in ours {
        r.diag(format!(
            "IRQ {} on {}: {} interrupts",
            l.irq, l.chip, l.count
        ));
        if l.count == 0 {
            r.fail(format!(
                "{MSIX_ACTION} IRQ {} never fired: the self-test completed without its interrupt",
                l.irq
            ));
        }
        if want_ir != l.chip.starts_with("IR-PCI-MSI") {
            r.fail(format!(
                "{MSIX_ACTION} IRQ {} on chip {}, but the IOMMU {} interrupts",
                l.irq,
                l.chip,
                if want_ir { "remaps" } else { "does not remap" }
            ));
        }
    }
    Ok(())
}

pub fn run(ctx: &Context) -> Report {
    let mut r = Report::new();
    if let Err(e) = check(ctx, &mut r) {
        r.fail(e);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::fake_root::FakeRoot;

    #[test]
    fn no_engine_in_the_description_fails() {
        let root = FakeRoot::new("ioat_none");
        let ctx = Context {
            root: root.path().to_path_buf(),
            expect: Err("none".into()),
            scenario: "distro-legacy".into(),
        };
        let r = run(&ctx);
        assert!(!r.passed());
    }

    #[test]
    fn channels_follow_the_device_links() {
        let root = FakeRoot::new("ioat_channels");
        let base = root.path().join("sys/class/dma");
        for (chan, dev) in [("dma0chan0", "0000:00:06.0"), ("dma1chan0", "0000:00:07.0")] {
            std::fs::create_dir_all(base.join(chan)).unwrap();
            std::os::unix::fs::symlink(
                format!("../../../devices/pci0000:00/{dev}"),
                base.join(chan).join("device"),
            )
            .unwrap();
        }
        let ctx = Context {
            root: root.path().to_path_buf(),
            expect: Err("none".into()),
            scenario: "x".into(),
        };
        assert_eq!(channels(&ctx, "0000:00:06.0").unwrap(), ["dma0chan0"]);
        assert!(channels(&ctx, "0000:00:05.0").unwrap().is_empty());
    }
}
