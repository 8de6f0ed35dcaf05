//! `ir-up`: the guest's intel-iommu driver turned interrupt remapping on and the interrupts of the test device
//! arrive through it.
//!
//! - Log: `DMAR-IR: Enabled IRQ remapping in x2apic mode` (xapic mode when ECAP.EIM is clear), the IOAPIC under
//!   the unit (`DMAR-IR: IOAPIC id N under DRHD base  0x...`), x2APIC in use (`x2apic enabled` or
//!   `Switched APIC routing to: ... x2apic`) with EIM, no `DMAR-IR` message at warning level or worse and no
//!   `[INTR-REMAP]` fault.
//! - Every online CPU (all the published vCPUs, more than one) and every IO-APIC interrupt on the remapping chip
//!   (`IR-IO-APIC` in /proc/interrupts).
//! - The test device bound through the iommufd cdev *without* `iommufd.allow_unsafe_interrupts` (the bind
//!   requires MSI isolation, i.e. remapping); MSI and MSI-X vector 0 routed to an eventfd with
//!   VFIO_DEVICE_SET_IRQS: three doorbells each arrive exactly once, nothing extra, the device counts them
//!   sent, and /proc/interrupts shows the vector on an `IR-PCI-MSI*` chip counting exactly three.

use vfio_bindings::bindings::vfio::{
    VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
};

use firmware_tables::description::IommuInfo;

use super::super::context::Context;
use super::super::cpus::count_cpu_list;
use super::super::kmsg::{self, KmsgRecord, WORST_ALLOWED_BELOW};
use super::super::msi::{check_counts, IrqKind, IRQ_TIMEOUT, QUIET_PERIOD, RINGS};
use super::super::report::Report;
use super::super::{testdev, vfio};
use super::common::with_session;
use super::nest::setup::Caps;
use super::session::{expected, Session};

/// ECAP.EIM (bit 4).
pub const ECAP_EIM: u64 = 1 << 4;

/// The line intel_setup_irq_remapping prints.
pub fn enabled_line(x2apic: bool) -> String {
    format!(
        "DMAR-IR: Enabled IRQ remapping in {} mode",
        if x2apic { "x2apic" } else { "xapic" }
    )
}

/// Checks the kernel log for interrupt remapping being up.
pub fn check_log(records: &[KmsgRecord], x2apic: bool, base: u64, r: &mut Report) {
    let msgs: Vec<&str> = records.iter().map(|x| x.message.as_str()).collect();
    let want = enabled_line(x2apic);
    if !msgs.contains(&want.as_str()) {
        let ir: Vec<&&str> = msgs.iter().filter(|m| m.contains("DMAR-IR")).collect();
        r.fail(format!("no {want:?} line; DMAR-IR lines: {ir:?}"));
    }
    let ioapic = format!("under DRHD base  {base:#x}");
    match msgs
        .iter()
        .find(|m| m.starts_with("DMAR-IR: IOAPIC id ") && m.contains(&ioapic))
    {
        Some(l) => r.diag(*l),
        None => r.fail(format!("no \"DMAR-IR: IOAPIC id N {ioapic} ...\" line")),
    }
    if x2apic {
        let apic: Vec<&&str> = msgs
            .iter()
            .filter(|m| {
                **m == "x2apic enabled"
                    || (m.starts_with("Switched APIC routing to: ") && m.contains("x2apic"))
            })
            .collect();
        if apic.is_empty() {
            r.fail("no \"x2apic enabled\" / \"Switched APIC routing to: ... x2apic\" line");
        } else {
            r.diag(format!("x2APIC: {apic:?}"));
        }
    }
    for rec in records {
        let bad_level = rec.level <= WORST_ALLOWED_BELOW && rec.message.contains("DMAR-IR");
        if bad_level || rec.message.contains("[INTR-REMAP]") {
            r.fail(format!("interrupt remapping: {}", kmsg::describe(rec)));
        }
    }
}

/// One interrupt line of /proc/interrupts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrqLine {
    pub irq: String,
    /// Sum over the CPUs.
    pub count: u64,
    pub chip: String,
    /// The rest: hwirq/trigger and the action names.
    pub rest: String,
}

/// Parses /proc/interrupts (numbered lines only).
pub fn parse_interrupts(text: &str) -> Vec<IrqLine> {
    let mut lines = text.lines();
    let cpus = lines.next().map_or(0, |h| {
        h.split_whitespace()
            .filter(|w| w.starts_with("CPU"))
            .count()
    });
    lines
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let irq = w.next()?.strip_suffix(':')?;
            if !irq.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let mut count = 0u64;
            for _ in 0..cpus {
                count = count.saturating_add(w.next()?.parse::<u64>().ok()?);
            }
            let chip = w.next()?.to_string();
            Some(IrqLine {
                irq: irq.to_string(),
                count,
                chip,
                rest: w.collect::<Vec<_>>().join(" "),
            })
        })
        .collect()
}

/// The line whose action is `action` (e.g. `vfio-msix[0](0000:00:03.0)`).
pub fn find_action<'a>(lines: &'a [IrqLine], action: &str) -> Option<&'a IrqLine> {
    lines
        .iter()
        .find(|l| l.rest.split_whitespace().any(|w| w == action))
}

/// IO-APIC interrupts not on the remapping chip.
pub fn unremapped_ioapic(lines: &[IrqLine]) -> Vec<&IrqLine> {
    lines
        .iter()
        .filter(|l| l.chip.contains("IO-APIC") && l.chip != "IR-IO-APIC")
        .collect()
}

fn interrupts(ctx: &Context) -> Result<Vec<IrqLine>, String> {
    Ok(parse_interrupts(&ctx.read("proc/interrupts")?))
}

fn check_system(ctx: &Context, info: &IommuInfo, r: &mut Report) -> Result<(), String> {
    let expect = ctx.expect.as_ref().map_err(|e| e.clone())?;
    let caps = Caps::of(info)?;
    let x2apic = caps.ecap & ECAP_EIM != 0;
    check_log(
        &kmsg::read_all(&ctx.path("dev/kmsg"))?,
        x2apic,
        info.base,
        r,
    );
    let online = ctx.read("sys/devices/system/cpu/online")?;
    let n = count_cpu_list(&online)?;
    r.diag(format!(
        "online CPUs {:?} ({n}), published {}",
        online.trim(),
        expect.cpus
    ));
    if n != u32::from(expect.cpus) {
        r.fail(format!("{n} CPUs online, {} published", expect.cpus));
    }
    if x2apic && expect.cpus < 2 {
        r.fail("x2APIC remapping wants more than one vCPU to mean anything (scenario has 1)");
    }
    let lines = interrupts(ctx)?;
    let io: Vec<&IrqLine> = lines
        .iter()
        .filter(|l| l.chip.contains("IO-APIC"))
        .collect();
    r.diag(format!(
        "{} IO-APIC interrupts in /proc/interrupts",
        io.len()
    ));
    for l in unremapped_ioapic(&lines) {
        r.fail(format!("IRQ {} on {} (not remapped)", l.irq, l.chip));
    }
    let cmdline = ctx.read("proc/cmdline")?;
    if cmdline.contains("allow_unsafe_interrupts") {
        r.fail("the guest command line allows unsafe interrupts: the iommufd bind proves nothing");
    }
    Ok(())
}

fn vectors(ctx: &Context, s: &Session, kind: IrqKind, r: &mut Report) -> Result<(), String> {
    let (index, action, name) = match kind {
        IrqKind::Msi => (VFIO_PCI_MSI_IRQ_INDEX, "vfio-msi", "MSI"),
        IrqKind::Msix => (VFIO_PCI_MSIX_IRQ_INDEX, "vfio-msix", "MSI-X"),
    };
    let action = format!("{action}[0]({})", s.bdf);
    let dev = &s.dev;
    if dev.irq_count(index)? == 0 {
        return Err(format!("VFIO reports no {name} vectors"));
    }
    let efd = vfio::eventfd()?;
    dev.set_irq_eventfd(index, &efd)?;
    let bar0 = dev.region(VFIO_PCI_BAR0_REGION_INDEX)?;
    let line0 = find_action(&interrupts(ctx)?, &action).cloned();
    let before = testdev::counters(dev, &bar0)?;
    let mut per_ring = Vec::new();
    for _ in 0..RINGS {
        testdev::ring_doorbell(dev, &bar0, 0)?;
        per_ring.push(vfio::wait_eventfd(&efd, IRQ_TIMEOUT)?);
    }
    let extra = vfio::wait_eventfd(&efd, QUIET_PERIOD)?;
    let after = testdev::counters(dev, &bar0)?;
    r.fail_all(check_counts(kind, &per_ring, extra));
    r.fail_all(after.check_since(&before, RINGS as u32));
    match (line0, find_action(&interrupts(ctx)?, &action)) {
        (Some(a), Some(b)) => {
            r.diag(format!(
                "{name}: IRQ {} on {} counted {} -> {}",
                b.irq, b.chip, a.count, b.count
            ));
            if !b.chip.starts_with("IR-PCI-MSI") {
                r.fail(format!(
                    "{name} vector on chip {}, expected IR-PCI-MSI*",
                    b.chip
                ));
            }
            if b.count.wrapping_sub(a.count) != RINGS {
                r.fail(format!(
                    "{name}: /proc/interrupts counted {} interrupts, expected {RINGS}",
                    b.count.wrapping_sub(a.count)
                ));
            }
        }
        _ => r.fail(format!("no {action} line in /proc/interrupts")),
    }
    dev.disable_irqs(index)
}

/// `ir-kernel`: interrupt remapping up as the kernel alone shows it (the log, the CPUs, every IO-APIC interrupt
/// on the remapping chip), for kernels without iommufd where the VFIO half of `ir-up` cannot run (distribution
/// kernels: a device driver's own MSI-X through remapping is checked by `ioat-dma`).
pub fn run_kernel(ctx: &Context) -> Report {
    let info = match expected(ctx) {
        Ok(i) => i.clone(),
        Err(e) => return Report::failure(e),
    };
    let mut r = Report::new();
    if let Err(e) = check_system(ctx, &info, &mut r) {
        r.fail(e);
    }
    r
}

pub fn run(ctx: &Context) -> Report {
    let info = match expected(ctx) {
        Ok(i) => i.clone(),
        Err(e) => return Report::failure(e),
    };
    let mut pre = Report::new();
    if let Err(e) = check_system(ctx, &info, &mut pre) {
        pre.fail(e);
    }
    let mut r = with_session(ctx, |s, r| {
        r.diag("VFIO_DEVICE_BIND_IOMMUFD succeeded without allow_unsafe_interrupts");
        vectors(ctx, s, IrqKind::Msi, r)?;
        vectors(ctx, s, IrqKind::Msix, r)
    });
    pre.diagnostics.append(&mut r.diagnostics);
    pre.failed |= r.failed;
    pre
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::kmsg::parse_record;

    const INTERRUPTS: &str = "           CPU0       CPU1       \n\
  0:         44          0   IO-APIC   2-edge      timer\n\
  4:        120          3  IR-IO-APIC    4-edge      ttyS0\n\
 24:          0          0  DMAR-MSI   0-edge      dmar0\n\
 25:          2          1  IR-PCI-MSIX-0000:00:03.0    0-edge      vfio-msix[0](0000:00:03.0)\n\
NMI:          0          0   Non-maskable interrupts\n\
ERR:          0\n";

    #[test]
    fn parses_proc_interrupts() {
        let l = parse_interrupts(INTERRUPTS);
        assert_eq!(l.len(), 4);
        assert_eq!(l[1].count, 123);
        assert_eq!(l[1].chip, "IR-IO-APIC");
        let v = find_action(&l, "vfio-msix[0](0000:00:03.0)").unwrap();
        assert_eq!((v.irq.as_str(), v.count), ("25", 3));
        assert!(v.chip.starts_with("IR-PCI-MSI"));
        assert!(find_action(&l, "vfio-msi[0](0000:00:03.0)").is_none());
        let bad = unremapped_ioapic(&l);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].irq, "0");
    }

    fn recs(lines: &[&str]) -> Vec<KmsgRecord> {
        lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| parse_record(&l.replacen("SEQ", &i.to_string(), 1)))
            .collect()
    }

    #[test]
    fn log_checks() {
        let good = recs(&[
            "6,SEQ,1,-;DMAR-IR: IOAPIC id 0 under DRHD base  0xfed90000 IOMMU 0",
            "6,SEQ,2,-;DMAR-IR: Enabled IRQ remapping in x2apic mode",
            "6,SEQ,3,-;x2apic enabled",
            "6,SEQ,4,-;Switched APIC routing to: physical x2apic",
        ]);
        let mut r = Report::new();
        check_log(&good, true, 0xfed9_0000, &mut r);
        assert!(r.passed(), "{:?}", r.diagnostics);
        // xapic mode expected but x2apic logged; an IR fault; the IOAPIC under another unit.
        let mut bad = good.clone();
        bad.extend(recs(&[
            "3,SEQ,5,-;DMAR: [INTR-REMAP] Request device [00:03.0] fault index 0x4 [fault reason 0x22] x",
        ]));
        let mut r = Report::new();
        check_log(&bad, false, 0xfed8_0000, &mut r);
        let d = r.diagnostics.join("\n");
        assert!(
            d.contains("no \"DMAR-IR: Enabled IRQ remapping in xapic mode\""),
            "{d}"
        );
        assert!(d.contains("under DRHD base  0xfed80000"), "{d}");
        assert!(d.contains("[INTR-REMAP]"), "{d}");
        let mut r = Report::new();
        check_log(&good[..2], true, 0xfed9_0000, &mut r);
        assert!(r
            .diagnostics
            .iter()
            .any(|d| d.contains("no \"x2apic enabled\"")));
    }

    #[test]
    fn enabled_line_wording() {
        assert_eq!(
            enabled_line(false),
            "DMAR-IR: Enabled IRQ remapping in xapic mode"
        );
    }
}
