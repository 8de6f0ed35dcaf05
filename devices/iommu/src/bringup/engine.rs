//! Runs a validated script against a target: one step at a time, stopping at the first mismatch.

use serde_json::Value;

use super::memory::MsiLog;
use super::report::{Failure, Report, StepReport};
use super::script::{
    parse_perms, perms_string, Call, Data, Dma, ExpectMsi, MemExpect, MemFill, MemWrite,
    MmioExpect, MmioPoll, MmioWrite, ScriptKind, Step,
};
use super::target::BringupTarget;
use crate::mem::DmaMemory;
use crate::request::{DmaRequest, RequestKind, Translation};

/// Why a step did not match.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Mismatch {
    pub expected: String,
    pub actual: String,
    pub walk: Option<Value>,
}

impl Mismatch {
    fn new(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self {
            expected: expected.into(),
            actual: actual.into(),
            walk: None,
        }
    }
}

pub(super) struct Engine<'a> {
    pub target: &'a dyn BringupTarget,
    pub mem: &'a dyn DmaMemory,
    pub msis: &'a MsiLog,
}

fn size_name(size: u64) -> String {
    match size {
        s if s >= 1 << 50 && s.is_power_of_two() => format!("2^{} bytes", s.trailing_zeros()),
        s if s >= 1 << 40 && s % (1 << 40) == 0 => format!("{} TiB", s >> 40),
        s if s >= 1 << 30 && s % (1 << 30) == 0 => format!("{} GiB", s >> 30),
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s:#x} bytes"),
    }
}

fn describe_translation(iova: u64, t: &Translation) -> String {
    format!(
        "{iova:#x} -> {:#x} (page {:#x} -> {:#x}, {}, {})",
        t.translate(iova),
        t.iova,
        t.output,
        size_name(t.page_size),
        perms_string(t.perms)
    )
}

fn show(values: &[u64], width: usize) -> String {
    let digits = width * 2;
    let v: Vec<String> = values
        .iter()
        .map(|x| format!("{x:#0w$x}", w = digits + 2))
        .collect();
    format!("[{}]", v.join(", "))
}

impl Engine<'_> {
    /// Runs the top-level steps; the report lists each one until the first failure.
    pub fn run(&self, steps: &[Step]) -> (Vec<StepReport>, Option<Failure>) {
        let mut reports = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            let at = format!("steps[{index}]");
            match self.step(step, &at) {
                Ok(summary) => reports.push(StepReport {
                    index,
                    kind: step.kind().into(),
                    note: step.note().map(str::to_string),
                    passed: true,
                    summary,
                }),
                Err(failure) => {
                    reports.push(StepReport {
                        index,
                        kind: step.kind().into(),
                        note: step.note().map(str::to_string),
                        passed: false,
                        summary: format!("expected {}, got {}", failure.expected, failure.actual),
                    });
                    return (reports, Some(*failure));
                }
            }
        }
        (reports, None)
    }

    /// Runs one step (a whole repeat included) at path `at`.
    fn step(&self, step: &Step, at: &str) -> Result<String, Box<Failure>> {
        if let Step::Repeat(r) = step {
            let times = r.times.0;
            for iteration in 1..=times {
                let prefix = format!("{at} (iteration {iteration} of {times})");
                for (i, inner) in r.steps.iter().enumerate() {
                    self.step(inner, &format!("{prefix}.steps[{i}]"))?;
                }
            }
            return Ok(format!(
                "{} step(s) x {times} iteration(s) matched",
                r.steps.len()
            ));
        }
        self.leaf(step).map_err(|m| {
            Box::new(Failure {
                at: at.into(),
                kind: step.kind().into(),
                note: step.note().map(str::to_string),
                expected: m.expected,
                actual: m.actual,
                walk: m.walk,
            })
        })
    }

    fn leaf(&self, step: &Step) -> Result<String, Mismatch> {
        match step {
            Step::MemWrite(s) => self.mem_write(s),
            Step::MemFill(s) => self.mem_fill(s),
            Step::MemExpect(s) => self.mem_expect(s),
            Step::MmioWrite(s) => Ok(self.mmio_write(s)),
            Step::MmioExpect(s) => self.mmio_expect(s),
            Step::MmioPoll(s) => self.mmio_poll(s),
            Step::Dma(s) => self.dma(s),
            Step::ExpectMsi(s) => self.expect_msi(s),
            Step::ExpectNoMsi(_) => match self.msis.pending().as_slice() {
                [] => Ok("no MSI".into()),
                list => Err(Mismatch::new("no MSI", msi_list(list))),
            },
            Step::Call(s) => self.call(s),
            // Handled by `step`.
            Step::Repeat(_) => Ok(String::new()),
        }
    }

    fn mem_write(&self, s: &MemWrite) -> Result<String, Mismatch> {
        let data = s
            .values()
            .data()
            .map_err(|e| Mismatch::new("valid data", e))?;
        let bytes = data.to_bytes();
        self.mem
            .write(s.addr.0, &bytes)
            .map_err(|e| Mismatch::new("a write to guest RAM", e.to_string()))?;
        Ok(format!(
            "{:#x} <- {}",
            s.addr.0,
            show(&data.values(), data.width())
        ))
    }

    fn mem_fill(&self, s: &MemFill) -> Result<String, Mismatch> {
        const CHUNK: u64 = 0x10000;
        let chunk = vec![s.byte.0 as u8; CHUNK as usize];
        let mut done = 0;
        while done < s.len.0 {
            let n = (s.len.0 - done).min(CHUNK);
            self.mem
                .write(s.addr.0 + done, &chunk[..n as usize])
                .map_err(|e| Mismatch::new("a write to guest RAM", e.to_string()))?;
            done += n;
        }
        Ok(format!(
            "[{:#x}, {:#x}) filled with {:#04x}",
            s.addr.0,
            s.addr.0 + s.len.0,
            s.byte.0
        ))
    }

    fn mem_expect(&self, s: &MemExpect) -> Result<String, Mismatch> {
        let want = s
            .values()
            .data()
            .map_err(|e| Mismatch::new("valid data", e))?;
        let mut got = vec![0u8; want.to_bytes().len()];
        self.mem
            .read(s.addr.0, &mut got)
            .map_err(|e| Mismatch::new("a read of guest RAM", e.to_string()))?;
        let width = want.width();
        let got_values: Vec<u64> = got.chunks(width).map(crate::registers::from_le).collect();
        let mask = s.mask.map_or(u64::MAX, |m| m.0);
        let want_values = want.values();
        let differs = want_values
            .iter()
            .zip(&got_values)
            .position(|(w, g)| w & mask != g & mask);
        let masked = if s.mask.is_some() {
            format!(" under mask {mask:#x}")
        } else {
            String::new()
        };
        match differs {
            None => Ok(format!(
                "{:#x} holds {}{masked}",
                s.addr.0,
                show(&got_values, width)
            )),
            Some(i) => Err(Mismatch::new(
                format!("{} at {:#x}{masked}", show(&want_values, width), s.addr.0),
                format!(
                    "{} (first difference: element {i} at {:#x}{})",
                    show(&got_values, width),
                    s.addr.0 + (i * width) as u64,
                    match want {
                        Data::Bytes(_) => " (bytes)",
                        _ => "",
                    }
                ),
            )),
        }
    }

    fn mmio_write(&self, s: &MmioWrite) -> String {
        self.target.mmio_write(s.offset.0, s.size, s.value.0);
        format!(
            "[{:#x}] <- {:#0w$x}",
            s.offset.0,
            s.value.0,
            w = usize::from(s.size) * 2 + 2
        )
    }

    fn mmio_expect(&self, s: &MmioExpect) -> Result<String, Mismatch> {
        let got = self.target.mmio_read(s.offset.0, s.size);
        let w = usize::from(s.size) * 2 + 2;
        let mask = s.mask.map_or(u64::MAX, |m| m.0);
        let masked = if s.mask.is_some() {
            format!(" & {mask:#x}")
        } else {
            String::new()
        };
        if got & mask == s.value.0 & mask {
            Ok(match s.mask {
                Some(_) => format!(
                    "[{:#x}] = {got:#0w$x} ({} = {:#x})",
                    s.offset.0,
                    masked.trim_start(),
                    got & mask
                ),
                None => format!("[{:#x}] = {got:#0w$x}", s.offset.0),
            })
        } else {
            Err(Mismatch::new(
                format!("[{:#x}]{masked} = {:#0w$x}", s.offset.0, s.value.0 & mask),
                format!("{got:#0w$x} (masked: {:#0w$x})", got & mask),
            ))
        }
    }

    fn mmio_poll(&self, s: &MmioPoll) -> Result<String, Mismatch> {
        let w = usize::from(s.size) * 2 + 2;
        let mut last = 0;
        for read in 1..=s.max_reads.0 {
            last = self.target.mmio_read(s.offset.0, s.size);
            if last & s.mask.0 == s.value.0 {
                return Ok(format!(
                    "[{:#x}] & {:#x} = {:#x} after {read} read(s)",
                    s.offset.0, s.mask.0, s.value.0
                ));
            }
        }
        Err(Mismatch::new(
            format!(
                "[{:#x}] & {:#x} = {:#x} within {} read(s)",
                s.offset.0, s.mask.0, s.value.0, s.max_reads.0
            ),
            format!("last read {last:#0w$x}"),
        ))
    }

    fn dma(&self, s: &Dma) -> Result<String, Mismatch> {
        let req = DmaRequest {
            source_id: s.source_id.0 as u32,
            pasid: s.pasid.map(|p| p.0 as u32),
            iova: s.iova.0,
            access: s.access.into(),
            privileged: s.privileged,
            kind: match s.kind {
                ScriptKind::Untranslated => RequestKind::Untranslated,
                ScriptKind::TranslationRequest => RequestKind::TranslationRequest,
            },
        };
        let result = self.target.translate(&req);
        let iova = req.iova;
        let mismatch = |expected: String, actual: String| Mismatch {
            expected,
            actual,
            walk: Some(self.target.explain(&req)),
        };
        let e = &s.expect;
        match (&e.fault, result) {
            (None, Ok(t)) => {
                let out = e.output.map_or(0, |o| o.0);
                let perms = match &e.perms {
                    Some(p) => Some(parse_perms(p).map_err(|m| Mismatch::new("valid perms", m))?),
                    None => None,
                };
                let mut want = format!("{iova:#x} -> {out:#x}");
                if let Some(ps) = e.page_size {
                    want.push_str(&format!(", {}", size_name(ps.0)));
                }
                if let Some(p) = perms {
                    want.push_str(&format!(", {}", perms_string(p)));
                }
                let ok = t.covers(iova)
                    && t.translate(iova) == out
                    && e.page_size.is_none_or(|ps| ps.0 == t.page_size)
                    && perms.is_none_or(|p| p == t.perms);
                if ok {
                    Ok(describe_translation(iova, &t))
                } else {
                    Err(mismatch(want, describe_translation(iova, &t)))
                }
            }
            (None, Err(fault)) => Err(mismatch(
                format!("{iova:#x} -> {:#x}", e.output.map_or(0, |o| o.0)),
                format!("fault {fault}, recorded: {}", fault.recorded),
            )),
            (Some(f), Ok(t)) => Err(mismatch(
                format!("fault {:#x}", f.reason.0),
                describe_translation(iova, &t),
            )),
            (Some(f), Err(fault)) => {
                let reason_ok = u64::from(fault.reason) == f.reason.0;
                let recorded_ok = f.recorded.is_none_or(|r| r == fault.recorded);
                let actual = format!("fault {fault}, recorded: {}", fault.recorded);
                if reason_ok && recorded_ok {
                    Ok(actual)
                } else {
                    let mut want = format!("fault {:#x}", f.reason.0);
                    if let Some(r) = f.recorded {
                        want.push_str(&format!(", recorded: {r}"));
                    }
                    Err(mismatch(want, actual))
                }
            }
        }
    }

    fn expect_msi(&self, s: &ExpectMsi) -> Result<String, Mismatch> {
        let want = format!("MSI {:#x}/{:#x}", s.address.0, s.data.0);
        match self.msis.pop() {
            Some((a, d)) if a == s.address.0 && u64::from(d) == s.data.0 => Ok(want),
            Some((a, d)) => {
                let mut actual = format!("MSI {a:#x}/{d:#x}");
                let rest = self.msis.pending();
                if !rest.is_empty() {
                    actual.push_str(&format!(", then {}", msi_list(&rest)));
                }
                Err(Mismatch::new(want, actual))
            }
            None => Err(Mismatch::new(want, "no MSI")),
        }
    }

    fn call(&self, s: &Call) -> Result<String, Mismatch> {
        let args: Vec<u64> = s.args.iter().map(|a| a.0).collect();
        let shown = |v: &[u64]| {
            v.iter()
                .map(|x| format!("{x:#x}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let head = format!("{}({})", s.name, shown(&args));
        let result = self.target.call(&s.name, &args);
        let want_values = s
            .expect
            .as_ref()
            .and_then(|e| e.values.as_ref())
            .map(|v| v.iter().map(|n| n.0).collect::<Vec<u64>>());
        let want_error = s.expect.as_ref().and_then(|e| e.error.as_deref());
        match (result, want_error) {
            (Ok(v), None) => match want_values {
                Some(w) if w != v => Err(Mismatch::new(
                    format!("{head} = [{}]", shown(&w)),
                    format!("[{}]", shown(&v)),
                )),
                _ => Ok(format!("{head} = [{}]", shown(&v))),
            },
            (Ok(v), Some(err)) => Err(Mismatch::new(
                format!("{head} fails with `{err}`"),
                format!("[{}]", shown(&v)),
            )),
            (Err(msg), Some(err)) if msg.contains(err) => Ok(format!("{head} failed: {msg}")),
            (Err(msg), Some(err)) => Err(Mismatch::new(
                format!("{head} fails with `{err}`"),
                format!("failed: {msg}"),
            )),
            (Err(msg), None) => Err(Mismatch::new(
                format!("{head} succeeds"),
                format!("failed: {msg}"),
            )),
        }
    }
}

fn msi_list(list: &[(u64, u32)]) -> String {
    list.iter()
        .map(|(a, d)| format!("MSI {a:#x}/{d:#x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the report of a run.
pub(super) fn report(
    name: &str,
    description: &str,
    model: String,
    total_steps: usize,
    run: (Vec<StepReport>, Option<Failure>),
    msis: &MsiLog,
) -> Report {
    let (steps, failure) = run;
    Report {
        name: name.into(),
        description: description.into(),
        model,
        passed: failure.is_none(),
        not_run: total_steps - steps.len(),
        steps,
        failure,
        unchecked_msis: msis
            .pending()
            .into_iter()
            .map(|(a, d)| (format!("{a:#x}"), format!("{d:#x}")))
            .collect(),
    }
}
