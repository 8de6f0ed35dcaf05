//! `dmatest`: Linux's own dmaengine test client (`drivers/dma/dmatest.c`) over the I/OAT engine's channel, once
//! per default-domain type the VT-d unit allows: strict (`DMA`: every unmap invalidates at once), lazy (`DMA-FQ`:
//! flush queue) and `identity` (pass-through, where ECAP.PT says the unit has it). For each type the test
//! unbinds ioatdma, writes the type to the device's `iommu_group/type`, binds ioatdma again (its probe self-test
//! then runs through the new domain), runs dmatest's memcpy test on the re-registered channel and checks its
//! summary line: every iteration ran, 0 failures (dmatest compares every byte of source and destination).
//! Nothing else may log at warning level meanwhile, except ioatdma's own `Removing dma and dca services`, which
//! its remove path prints at error level whenever it is unbound.

use std::time::{Duration, Instant};

use super::context::Context;
use super::ioat::{self, DRIVER};
use super::kmsg::{self, KmsgRecord};
use super::report::Report;
use super::vfio::current_driver;

/// Copies per domain type (each of random size up to `test_buf_size`, at random offsets, fully verified).
pub const ITERATIONS: u32 = 200;
/// dmatest's buffer size (its default is 16 KiB; the engine moves at most 4 KiB per descriptor, so 16 KiB takes
/// several descriptors).
pub const TEST_BUF_SIZE: u32 = 16384;
/// Longest wait for one type's run.
pub const RUN_LIMIT: Duration = Duration::from_secs(300);
/// The line ioatdma's remove path prints at error level on every unbind.
pub const IOAT_REMOVE_LINE: &str = "Removing dma and dca services";
/// VT-d ECAP.PT (bit 6): pass-through, so an identity domain is possible.
const ECAP_PT: u64 = 1 << 6;

const PARAMS: &str = "sys/module/dmatest/parameters";

/// The domain types to try on this unit.
pub fn domain_types(ecap: Option<u64>) -> Vec<&'static str> {
    let mut v = vec!["DMA", "DMA-FQ"];
    if ecap.is_some_and(|e| e & ECAP_PT != 0) {
        v.push("identity");
    }
    v
}

/// Parses dmatest's summary line: `<thread>: summary <tests> tests, <failures> failures ...` → (thread, tests,
/// failures).
pub fn parse_summary(msg: &str) -> Option<(String, u32, u32)> {
    let msg = msg.trim().strip_prefix("dmatest: ").unwrap_or(msg.trim());
    let (thread, rest) = msg.split_once(": summary ")?;
    let (tests, rest) = rest.split_once(" tests, ")?;
    let (failures, _) = rest.split_once(" failures")?;
    Some((
        thread.to_string(),
        tests.trim().parse().ok()?,
        failures.trim().parse().ok()?,
    ))
}

fn write(ctx: &Context, rel: &str, value: &str) -> Result<(), String> {
    let p = ctx.path(rel);
    std::fs::write(&p, value).map_err(|e| format!("write {value:?} to {}: {e}", p.display()))
}

fn last_seq(ctx: &Context) -> Result<u64, String> {
    Ok(kmsg::read_all(&ctx.path("dev/kmsg"))?
        .last()
        .map_or(0, |r| r.seq))
}

/// Binds `bdf` to ioatdma and waits for its channel to register; returns the channel name.
fn bind(ctx: &Context, bdf: &str) -> Result<String, String> {
    write(ctx, &format!("sys/bus/pci/drivers/{DRIVER}/bind"), bdf)?;
    let t0 = Instant::now();
    loop {
        if let Some(c) = ioat::channels(ctx, bdf)?.into_iter().next() {
            return Ok(c);
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "{bdf}: no DMA channel 10 s after binding {DRIVER} (self-test failed? see the kernel log)"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs dmatest on `chan` and returns its summary (tests, failures).
fn run_dmatest(ctx: &Context, chan: &str) -> Result<(u32, u32), String> {
    let mark = last_seq(ctx)?;
    write(
        ctx,
        &format!("{PARAMS}/iterations"),
        &ITERATIONS.to_string(),
    )?;
    write(ctx, &format!("{PARAMS}/threads_per_chan"), "1")?;
    write(
        ctx,
        &format!("{PARAMS}/test_buf_size"),
        &TEST_BUF_SIZE.to_string(),
    )?;
    write(ctx, &format!("{PARAMS}/timeout"), "10000")?;
    write(ctx, &format!("{PARAMS}/channel"), chan)?;
    write(ctx, &format!("{PARAMS}/run"), "1")?;
    let t0 = Instant::now();
    loop {
        let recs = kmsg::read_all(&ctx.path("dev/kmsg"))?;
        let summary = recs
            .iter()
            .filter(|r| r.seq > mark)
            .filter_map(|r| parse_summary(&r.message))
            .find(|(thread, _, _)| thread.starts_with(&format!("{chan}-copy")));
        if let Some((_, tests, failures)) = summary {
            // `run=0` makes dmatest stop its threads and release the channel: ioatdma may be unbound next, and
            // a channel a client still holds would be freed under it.
            write(ctx, &format!("{PARAMS}/run"), "0")?;
            return Ok((tests, failures));
        }
        if t0.elapsed() > RUN_LIMIT {
            return Err(format!(
                "no dmatest summary for {chan} within {} s",
                RUN_LIMIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kernel records after `mark` at warning level or worse, except ioatdma's remove line.
fn offenders(ctx: &Context, mark: u64) -> Result<Vec<String>, String> {
    let recs: Vec<KmsgRecord> = kmsg::read_all(&ctx.path("dev/kmsg"))?
        .into_iter()
        .filter(|r| r.seq > mark && !r.message.contains(IOAT_REMOVE_LINE))
        .collect();
    Ok(kmsg::offenders(&recs)
        .into_iter()
        .map(kmsg::describe)
        .collect())
}

fn one_type(ctx: &Context, bdf: &str, ty: &str, r: &mut Report) -> Result<(), String> {
    let mark = last_seq(ctx)?;
    if current_driver(&ctx.path(&format!("sys/bus/pci/devices/{bdf}"))).is_some() {
        write(ctx, &format!("sys/bus/pci/drivers/{DRIVER}/unbind"), bdf)?;
    }
    write(
        ctx,
        &format!("sys/bus/pci/devices/{bdf}/iommu_group/type"),
        ty,
    )?;
    let got = ctx.read(&format!("sys/bus/pci/devices/{bdf}/iommu_group/type"))?;
    if got.trim() != ty {
        return Err(format!(
            "iommu_group/type reads {:?} after writing {ty:?}",
            got.trim()
        ));
    }
    let chan = bind(ctx, bdf)?;
    let (tests, failures) = run_dmatest(ctx, &chan)?;
    r.diag(format!(
        "{ty}: {chan} (self-test passed at bind): dmatest {tests} tests, {failures} failures"
    ));
    if tests != ITERATIONS || failures != 0 {
        r.fail(format!(
            "{ty}: dmatest on {chan} ran {tests} of {ITERATIONS} tests with {failures} failures"
        ));
    }
    for o in offenders(ctx, mark)? {
        r.fail(format!("{ty}: kernel log: {o}"));
    }
    Ok(())
}

pub fn run(ctx: &Context) -> Report {
    let mut r = Report::new();
    if !ctx.path(PARAMS).is_dir() {
        return Report::failure(format!(
            "{} absent: a kernel without CONFIG_DMATEST",
            ctx.path(PARAMS).display()
        ));
    }
    let bdf = match ioat::find(ctx) {
        Ok(b) => b,
        Err(e) => return Report::failure(e),
    };
    let ecap = ctx
        .expect
        .as_ref()
        .ok()
        .and_then(|e| e.iommu.as_ref())
        .filter(|i| i.model == "vtd")
        .and_then(|i| i.id_registers.get(1).copied());
    if ecap.is_none() {
        return Report::failure("dmatest compares domain types: the machine needs a VT-d unit");
    }
    for ty in domain_types(ecap) {
        if let Err(e) = one_type(ctx, &bdf, ty, &mut r) {
            r.fail(format!("{ty}: {e}"));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_as_dmatest_prints_them() {
        // pr_info("%s: summary %u tests, %u failures %llu.%02llu iops %llu KB/s (%d)\n", current->comm, ...),
        // with pr_fmt "dmatest: ".
        assert_eq!(
            parse_summary("dmatest: dma0chan0-copy0: summary 200 tests, 0 failures 1234.56 iops 5678 KB/s (0)"),
            Some(("dma0chan0-copy0".to_string(), 200, 0))
        );
        assert_eq!(
            parse_summary("dma3chan0-copy0: summary 10 tests, 2 failures 1.00 iops 4 KB/s (0)"),
            Some(("dma3chan0-copy0".to_string(), 10, 2))
        );
        assert_eq!(
            parse_summary("dmatest: Added 1 threads using dma0chan0"),
            None
        );
        assert_eq!(
            parse_summary("dmatest: x: summary many tests, 0 failures"),
            None
        );
    }

    #[test]
    fn identity_only_with_pass_through() {
        assert_eq!(domain_types(Some(0)), ["DMA", "DMA-FQ"]);
        assert_eq!(domain_types(Some(ECAP_PT)), ["DMA", "DMA-FQ", "identity"]);
        assert_eq!(domain_types(None), ["DMA", "DMA-FQ"]);
    }
}
