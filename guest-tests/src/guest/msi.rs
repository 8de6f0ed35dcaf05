//! `msi` and `msix`: the test device, driven from user space through VFIO no-IOMMU mode, raises exactly the
//! interrupts it is asked for and each one arrives on the eventfd VFIO routes its vector to.

use std::time::Duration;

use vfio_bindings::bindings::vfio::{
    VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
};

use super::context::Context;
use super::report::Report;
use super::{testdev, vfio};

/// How many interrupts each test asks for.
pub const RINGS: u64 = 3;
/// How long to wait for one interrupt.
pub const IRQ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to watch for interrupts nobody asked for.
pub const QUIET_PERIOD: Duration = Duration::from_millis(200);

/// Which interrupt mechanism a test uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqKind {
    Msi,
    Msix,
}

impl IrqKind {
    fn vfio_index(self) -> u32 {
        match self {
            IrqKind::Msi => VFIO_PCI_MSI_IRQ_INDEX,
            IrqKind::Msix => VFIO_PCI_MSIX_IRQ_INDEX,
        }
    }

    fn name(self) -> &'static str {
        match self {
            IrqKind::Msi => "MSI",
            IrqKind::Msix => "MSI-X",
        }
    }
}

/// Checks the interrupt counts observed per ring and afterwards; returns the failures.
pub fn check_counts(kind: IrqKind, per_ring: &[u64], extra: u64) -> Vec<String> {
    let mut errs = Vec::new();
    for (i, &n) in per_ring.iter().enumerate() {
        if n != 1 {
            errs.push(format!(
                "{} ring {}: {n} interrupts arrived, expected exactly 1",
                kind.name(),
                i + 1
            ));
        }
    }
    if extra != 0 {
        errs.push(format!(
            "{} interrupts arrived that nobody asked for: {extra}",
            kind.name()
        ));
    }
    errs
}

fn run_kind(ctx: &Context, kind: IrqKind) -> Report {
    let expect = match &ctx.expect {
        Ok(e) => e,
        Err(e) => return Report::failure(format!("no expectations: {e}")),
    };
    let mut r = Report::new();
    let Some(dev) = testdev::find(expect) else {
        r.skip("no test device in the machine description");
        return r;
    };
    match kind {
        IrqKind::Msi if !dev.msi => {
            r.skip("the test device offers no MSI capability");
            return r;
        }
        IrqKind::Msix if dev.msix_vectors == 0 => {
            r.skip("the test device offers no MSI-X capability");
            return r;
        }
        _ => {}
    }
    if let Err(e) = exercise(ctx, &dev.bdf, kind, &mut r) {
        r.fail(e);
    }
    r
}

fn exercise(ctx: &Context, bdf: &str, kind: IrqKind, r: &mut Report) -> Result<(), String> {
    let sys = ctx.path("sys");
    let dev_root = ctx.path("dev");
    let dir = sys.join("bus/pci/devices").join(bdf);
    if !dir.is_dir() {
        return Err(format!("test device {bdf} is not in {}", dir.display()));
    }
    vfio::bind_vfio_pci(&sys, bdf)?;
    let group = vfio::noiommu_group_path(&sys, &dev_root, bdf)?;
    vfio::wait_for(&group, Duration::from_secs(2))?;
    vfio::wait_for(&dev_root.join("vfio/vfio"), Duration::from_secs(2))?;
    let dev = vfio::VfioDevice::open(&dev_root, &group, bdf)?;
    let cmd = dev.enable_mem_and_bus_master()?;
    r.diag(format!(
        "{bdf} bound to vfio-pci via {}, command {cmd:#06x}",
        group.display()
    ));

    let index = kind.vfio_index();
    let vectors = dev.irq_count(index)?;
    if vectors == 0 {
        return Err(format!("VFIO reports no {} vectors", kind.name()));
    }
    let efd = vfio::eventfd()?;
    dev.set_irq_eventfd(index, &efd)?;
    let bar0 = dev.region(VFIO_PCI_BAR0_REGION_INDEX)?;
    if bar0.size == 0 {
        return Err("BAR0 region is empty".into());
    }
    testdev::check_id(&dev, &bar0)?;
    let before = testdev::counters(&dev, &bar0)?;
    let mut per_ring = Vec::new();
    for _ in 0..RINGS {
        testdev::ring_doorbell(&dev, &bar0, 0)?;
        per_ring.push(vfio::wait_eventfd(&efd, IRQ_TIMEOUT)?);
    }
    let extra = vfio::wait_eventfd(&efd, QUIET_PERIOD)?;
    let after = testdev::counters(&dev, &bar0)?;
    r.diag(format!(
        "{}: {} vectors; eventfd per ring {per_ring:?}, extra {extra}; device counters {after:?}",
        kind.name(),
        vectors
    ));
    r.fail_all(check_counts(kind, &per_ring, extra));
    r.fail_all(after.check_since(&before, RINGS as u32));
    if let Err(e) = dev.disable_irqs(index) {
        r.fail(e);
    }
    Ok(())
}

pub fn run_msi(ctx: &Context) -> Report {
    run_kind(ctx, IrqKind::Msi)
}

pub fn run_msix(ctx: &Context) -> Report {
    run_kind(ctx, IrqKind::Msix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_tables::description::{MachineDescription, PciFunctionInfo};
    use std::path::PathBuf;

    fn ctx_with(pci: Vec<PciFunctionInfo>) -> Context {
        Context {
            root: PathBuf::from("/nonexistent-guest-root"),
            expect: Ok(MachineDescription {
                cpus: 1,
                memory_mib: 64,
                e820: vec![],
                acpi_tables: vec![],
                pci,
                iommu: None,
            }),
            scenario: "boot".into(),
        }
    }

    fn testdev(msi: bool, msix_vectors: u16) -> PciFunctionInfo {
        PciFunctionInfo {
            bdf: "0000:00:01.0".into(),
            vendor_id: testdev::VENDOR_ID,
            device_id: testdev::DEVICE_ID,
            class: 0xff0000,
            bars: vec![],
            msi,
            msix_vectors,
        }
    }

    #[test]
    fn counts_must_be_exact() {
        assert!(check_counts(IrqKind::Msi, &[1, 1, 1], 0).is_empty());
        let errs = check_counts(IrqKind::Msix, &[1, 0, 2], 1);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("MSI-X ring 2: 0 interrupts"));
        assert!(errs[2].contains("nobody asked for: 1"));
    }

    #[test]
    fn skipped_without_test_device_or_capability() {
        let r = run_msi(&ctx_with(vec![]));
        assert!(r.passed());
        assert!(r.skip.as_deref().unwrap().contains("no test device"));
        let r = run_msix(&ctx_with(vec![testdev(true, 0)]));
        assert!(r.skip.as_deref().unwrap().contains("no MSI-X"));
    }

    #[test]
    fn fails_when_vfio_is_unavailable() {
        let r = run_msi(&ctx_with(vec![testdev(true, 2)]));
        assert!(!r.passed());
        assert!(r.skip.is_none());
    }
}
