//! `kernel-dma`: an in-kernel DMA user. Linux's own PCI endpoint test host driver (`pci_endpoint_test`) drives
//! iovmm's endpoint test function (`104c:b500`): for each transfer the driver allocates kernel buffers, maps
//! them with the DMA API (`dma_map_single`, i.e. the device's default IOMMU domain, or direct DMA without an
//! IOMMU), programs the device and CRC-checks the data itself. Each ioctl returns 1 only if the data moved
//! correctly: `PCITEST_WRITE` (device reads host memory and checks the host's CRC), `PCITEST_READ` (device
//! writes, the driver checks the device's CRC), `PCITEST_COPY` (device copies, the driver compares CRCs).
//! Every transfer waits for the device's MSI, so interrupt delivery (remapped when the IOMMU does that) is
//! exercised too.
//!
//! With an IOMMU the device's `iommu_group/type` must be a translating DMA domain (`DMA` or `DMA-FQ`), so the
//! data went through the model's tables (first-stage ones in the first-stage scenarios); without one the
//! device must have no IOMMU group (direct DMA).

use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::Duration;

use super::context::Context;
use super::kmsg;
use super::report::Report;
use super::vfio::current_driver;
use super::vtd::default_domain::default_stage;
use super::vtd::nest::setup::Caps;

/// The driver's misc device node.
pub const DEV_NODE: &str = "dev/pci-endpoint-test.0";
/// Its sysfs class entry (the `device` link leads to the PCI function).
pub const CLASS_DIR: &str = "sys/class/misc/pci-endpoint-test.0";
/// The driver name the function must be bound to.
pub const DRIVER: &str = "pci-endpoint-test";

/// Transfer sizes: one page, 64 KiB, 1 MiB (several IOMMU pages; the driver adds 4 KiB for alignment).
pub const SIZES: [u64; 3] = [4 << 10, 64 << 10, 1 << 20];

/// `IRQ_TYPE_MSI` of the driver's PCITEST_SET_IRQTYPE / GET_IRQTYPE.
pub const IRQ_TYPE_MSI: u64 = 1;

/// Longest wait for one ioctl: the driver waits for the device's interrupt without a timeout, so a lost
/// interrupt would otherwise hang the whole run.
pub const IOCTL_LIMIT: Duration = Duration::from_secs(60);

const fn io(nr: u64) -> u64 {
    (b'P' as u64) << 8 | nr
}

const fn iow(nr: u64, size: u64) -> u64 {
    1 << 30 | size << 16 | (b'P' as u64) << 8 | nr
}

/// uapi `include/uapi/linux/pcitest.h` (6.12).
pub const PCITEST_BAR: u64 = io(0x1);
pub const PCITEST_MSI: u64 = iow(0x3, 4);
pub const PCITEST_WRITE: u64 = iow(0x4, 8);
pub const PCITEST_READ: u64 = iow(0x5, 8);
pub const PCITEST_COPY: u64 = iow(0x6, 8);
pub const PCITEST_SET_IRQTYPE: u64 = iow(0x8, 4);
pub const PCITEST_GET_IRQTYPE: u64 = io(0x9);
pub const PCITEST_CLEAR_IRQ: u64 = io(0x10);

/// What a successful PCITEST_* ioctl returns. Up to Linux 6.12 the driver returned a `bool` (1 = the transfer
/// checked out, 0 = it did not); later kernels (7.3 does) return 0 on success and a negative errno otherwise.
/// The test asks the running kernel instead of trusting its version: PCITEST_CLEAR_IRQ cannot fail in either
/// form, so its return value (1 or 0) names the convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// `true` (1) on success.
    Bool,
    /// 0 on success, `-errno` on failure.
    Errno,
}

impl Convention {
    /// The convention PCITEST_CLEAR_IRQ's return value shows.
    pub fn from_clear_irq(rc: i64) -> Result<Self, String> {
        match rc {
            1 => Ok(Convention::Bool),
            0 => Ok(Convention::Errno),
            other => Err(format!(
                "PCITEST_CLEAR_IRQ returned {other}: neither the bool (1) nor the errno (0) convention"
            )),
        }
    }

    pub fn success(self) -> i64 {
        match self {
            Convention::Bool => 1,
            Convention::Errno => 0,
        }
    }
}

/// `struct pci_endpoint_test_xfer_param { unsigned long size; unsigned char flags; }`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XferParam {
    pub size: libc::c_ulong,
    pub flags: u8,
}

/// One ioctl the test issues: its name, request, argument (a value, or a transfer size passed by pointer)
/// and the return value that means success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub request: u64,
    pub arg: Arg,
    pub want: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    Value(u64),
    Xfer(u64),
}

/// The ioctls, in order: interrupt setup and test, BAR0, then WRITE/READ/COPY for each size; success is what
/// `conv` says (GET_IRQTYPE returns the type in both).
pub fn steps(conv: Convention) -> Vec<Step> {
    let ok = conv.success();
    let mut v = vec![
        Step {
            name: "SET_IRQTYPE MSI",
            request: PCITEST_SET_IRQTYPE,
            arg: Arg::Value(IRQ_TYPE_MSI),
            want: ok,
        },
        Step {
            name: "GET_IRQTYPE",
            request: PCITEST_GET_IRQTYPE,
            arg: Arg::Value(0),
            want: IRQ_TYPE_MSI as i64,
        },
        Step {
            name: "MSI 1",
            request: PCITEST_MSI,
            arg: Arg::Value(1),
            want: ok,
        },
        Step {
            name: "BAR 0",
            request: PCITEST_BAR,
            arg: Arg::Value(0),
            want: ok,
        },
    ];
    for size in SIZES {
        for (name, request) in [
            ("WRITE", PCITEST_WRITE),
            ("READ", PCITEST_READ),
            ("COPY", PCITEST_COPY),
        ] {
            v.push(Step {
                name,
                request,
                arg: Arg::Xfer(size),
                want: ok,
            });
        }
    }
    v
}

/// Issues one step on `fd`: the ioctl's return value, or the errno text.
fn issue(fd: libc::c_int, s: &Step) -> Result<i64, String> {
    let rc = match s.arg {
        // SAFETY: these requests take a plain integer argument; no memory is passed.
        Arg::Value(v) => unsafe { libc::ioctl(fd, s.request as _, v as libc::c_ulong) },
        Arg::Xfer(size) => {
            let p = XferParam {
                size: size as libc::c_ulong,
                flags: 0,
            };
            // SAFETY: the driver copies sizeof(struct pci_endpoint_test_xfer_param) bytes from the pointer,
            // which is `p`'s repr(C) layout, alive for the whole call.
            unsafe { libc::ioctl(fd, s.request as _, &p as *const XferParam) }
        }
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error().to_string())
    } else {
        Ok(i64::from(rc))
    }
}

fn label(s: &Step) -> String {
    match s.arg {
        Arg::Xfer(size) => format!("{} {} KiB", s.name, size >> 10),
        Arg::Value(_) => s.name.to_string(),
    }
}

/// Runs the steps on a worker thread (a lost interrupt blocks an ioctl for good) and checks each result.
fn drive(file: std::fs::File, r: &mut Report) {
    let clear = Step {
        name: "CLEAR_IRQ",
        request: PCITEST_CLEAR_IRQ,
        arg: Arg::Value(0),
        want: 0,
    };
    let conv = match issue(file.as_raw_fd(), &clear).and_then(Convention::from_clear_irq) {
        Ok(c) => c,
        Err(e) => {
            r.fail(format!("CLEAR_IRQ: {e}"));
            return;
        }
    };
    r.diag(format!(
        "the driver's ioctls return {} on success ({conv:?} convention)",
        conv.success()
    ));
    let steps = steps(conv);
    let (tx, rx) = mpsc::channel();
    let work = steps.clone();
    let spawned = std::thread::Builder::new()
        .name("kernel-dma".into())
        .spawn(move || {
            for s in &work {
                if tx.send(issue(file.as_raw_fd(), s)).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        r.fail(format!("cannot start the ioctl thread: {e}"));
        return;
    }
    for s in &steps {
        match rx.recv_timeout(IOCTL_LIMIT) {
            Ok(Ok(v)) if v == s.want => r.diag(format!("{}: ok", label(s))),
            Ok(Ok(v)) => r.fail(format!(
                "{}: returned {v}, expected {} (driver check failed)",
                label(s),
                s.want
            )),
            Ok(Err(e)) => r.fail(format!("{}: {e}", label(s))),
            Err(_) => {
                r.fail(format!(
                    "{}: no answer within {} s (device interrupt lost?); later steps not run",
                    label(s),
                    IOCTL_LIMIT.as_secs()
                ));
                return;
            }
        }
    }
}

/// The function's BDF, from the class device's `device` link.
fn function_bdf(ctx: &Context) -> Result<String, String> {
    let link = ctx.path(&format!("{CLASS_DIR}/device"));
    let target =
        std::fs::read_link(&link).map_err(|e| format!("cannot read {}: {e}", link.display()))?;
    target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{} points nowhere", link.display()))
}

/// Checks the function's DMA domain against the machine: translated with an IOMMU, direct without.
fn check_domain(ctx: &Context, bdf: &str, r: &mut Report) {
    let iommu = ctx.expect.as_ref().ok().and_then(|e| e.iommu.as_ref());
    let group_type = ctx.read(&format!("sys/bus/pci/devices/{bdf}/iommu_group/type"));
    match (iommu, group_type) {
        (Some(info), Ok(t)) if matches!(t.trim(), "DMA" | "DMA-FQ") => {
            r.diag(format!(
                "{bdf} default domain type {}: DMA translated by the {}",
                t.trim(),
                info.model
            ));
            if let Ok(c) = Caps::of(info) {
                r.diag(format!(
                    "the DMA-API domain uses {} tables",
                    default_stage(c.ecap).0
                ));
            }
        }
        (Some(_), Ok(t)) => r.fail(format!(
            "{bdf} default domain type {:?}, expected DMA or DMA-FQ",
            t.trim()
        )),
        (Some(_), Err(e)) => r.fail(format!("{bdf} has no IOMMU group behind the IOMMU: {e}")),
        (None, Err(_)) => r.diag(format!("{bdf}: no IOMMU, direct DMA")),
        (None, Ok(t)) => r.fail(format!(
            "{bdf} has an IOMMU group ({}) on a machine without an IOMMU",
            t.trim()
        )),
    }
}

pub fn run(ctx: &Context) -> Report {
    let mut r = Report::new();
    let node = ctx.path(DEV_NODE);
    if !node.exists() {
        r.skip(format!(
            "{} absent (no endpoint test function, or a kernel without CONFIG_PCI_ENDPOINT_TEST)",
            node.display()
        ));
        return r;
    }
    let bdf = match function_bdf(ctx) {
        Ok(b) => b,
        Err(e) => return Report::failure(e),
    };
    match current_driver(&ctx.path(&format!("sys/bus/pci/devices/{bdf}"))) {
        Some(d) if d == DRIVER => r.diag(format!("{bdf} bound to {d}")),
        other => r.fail(format!("{bdf} driver {other:?}, expected {DRIVER}")),
    }
    check_domain(ctx, &bdf, &mut r);
    let mark = kmsg::read_all(&ctx.path("dev/kmsg"))
        .ok()
        .and_then(|v| v.last().map(|x| x.seq));
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&node)
    {
        Ok(f) => f,
        Err(e) => {
            r.fail(format!("cannot open {}: {e}", node.display()));
            return r;
        }
    };
    drive(file, &mut r);
    // The driver reports failures (mapping errors, bad IRQ type) at error level; the IOMMU logs faults.
    if let (Some(mark), Ok(recs)) = (mark, kmsg::read_all(&ctx.path("dev/kmsg"))) {
        let new: Vec<_> = recs.into_iter().filter(|x| x.seq > mark).collect();
        r.fail_all(
            kmsg::offenders(&new)
                .into_iter()
                .map(|x| format!("kernel log: {}", kmsg::describe(x))),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::fake_root::FakeRoot;

    #[test]
    fn ioctl_numbers_match_the_uapi_header() {
        // _IO('P', 1), _IOW('P', 3, int), _IOW('P', 4..6, unsigned long), _IOW('P', 8, int), _IO('P', 9).
        assert_eq!(PCITEST_BAR, 0x5001);
        assert_eq!(PCITEST_MSI, 0x4004_5003);
        assert_eq!(PCITEST_WRITE, 0x4008_5004);
        assert_eq!(PCITEST_READ, 0x4008_5005);
        assert_eq!(PCITEST_COPY, 0x4008_5006);
        assert_eq!(PCITEST_SET_IRQTYPE, 0x4004_5008);
        assert_eq!(PCITEST_GET_IRQTYPE, 0x5009);
        assert_eq!(std::mem::size_of::<XferParam>(), 16);
    }

    #[test]
    fn convention_from_clear_irq() {
        assert_eq!(Convention::from_clear_irq(1), Ok(Convention::Bool));
        assert_eq!(Convention::from_clear_irq(0), Ok(Convention::Errno));
        assert!(Convention::from_clear_irq(2).is_err());
        assert_eq!(PCITEST_CLEAR_IRQ, 0x5010);
        let s = steps(Convention::Errno);
        assert!(s
            .iter()
            .all(|x| x.want == 0 || x.request == PCITEST_GET_IRQTYPE));
    }

    #[test]
    fn every_transfer_at_every_size() {
        let s = steps(Convention::Bool);
        for size in SIZES {
            for req in [PCITEST_WRITE, PCITEST_READ, PCITEST_COPY] {
                assert_eq!(
                    s.iter()
                        .filter(|x| x.request == req && x.arg == Arg::Xfer(size))
                        .count(),
                    1
                );
            }
        }
        assert_eq!(s[0].request, PCITEST_SET_IRQTYPE, "interrupt type first");
        assert!(s
            .iter()
            .all(|x| x.want == 1 || x.request == PCITEST_GET_IRQTYPE));
    }

    #[test]
    fn skips_without_the_device_node() {
        let root = FakeRoot::new("kernel_dma_skip");
        let ctx = Context {
            root: root.path().to_path_buf(),
            expect: Err("none".into()),
            scenario: "boot".into(),
        };
        let r = run(&ctx);
        assert!(
            r.skip
                .as_deref()
                .unwrap_or("")
                .contains("pci-endpoint-test.0"),
            "{r:?}"
        );
        assert!(r.passed());
    }

    #[test]
    fn domain_must_match_the_machine() {
        let root = FakeRoot::new("kernel_dma_domain");
        let bdf = "0000:00:04.0";
        let ctx = Context {
            root: root.path().to_path_buf(),
            expect: Err("none".into()),
            scenario: "boot".into(),
        };
        let mut r = Report::new();
        check_domain(&ctx, bdf, &mut r);
        assert!(r.passed(), "no IOMMU, no group: direct DMA");
        root.write(
            &format!("sys/bus/pci/devices/{bdf}/iommu_group/type"),
            "identity\n",
        );
        let mut r = Report::new();
        check_domain(&ctx, bdf, &mut r);
        assert!(!r.passed(), "a group on a machine without an IOMMU");
    }
}
