//! Static checks of a parsed script, before anything runs: every memory access inside declared RAM,
//! every register access inside the model's window and naturally aligned, values that fit their
//! width, and bounded loops. A script that passes runs without a [`BringupError`].

use super::error::BringupError;
use super::memory::Layout;
use super::script::{Data, Step};

/// Most iterations of one `repeat`.
pub const MAX_REPEAT: u64 = 100_000;
/// Most reads of one `mmio_poll`.
pub const MAX_POLL_READS: u64 = 1_000_000;
/// Deepest nesting of `repeat` steps.
pub const MAX_DEPTH: usize = 16;
/// Most work one script may ask for: one unit per step run, per poll read and per 4 KiB filled, with
/// repeats multiplied out. Bounds a run to seconds whatever the script says.
pub const MAX_WORK: u64 = 20_000_000;

/// Checks `steps` (at `path`, e.g. `steps`) and returns the work they ask for.
pub(super) fn validate(
    origin: &str,
    steps: &[Step],
    layout: &Layout,
    mmio_size: u64,
) -> Result<u64, BringupError> {
    let v = Validator {
        origin,
        layout,
        mmio_size,
    };
    let work = v.steps(steps, "steps", 0)?;
    if work > MAX_WORK {
        return Err(v.err(
            "steps",
            format!(
                "the script asks for about {work} steps, reads and pages in all (repeats multiplied out); \
                 at most {MAX_WORK}"
            ),
        ));
    }
    Ok(work)
}

struct Validator<'a> {
    origin: &'a str,
    layout: &'a Layout,
    mmio_size: u64,
}

impl Validator<'_> {
    fn err(&self, at: &str, message: String) -> BringupError {
        BringupError::Step {
            origin: self.origin.into(),
            at: at.into(),
            message,
        }
    }

    fn steps(&self, steps: &[Step], path: &str, depth: usize) -> Result<u64, BringupError> {
        let mut work: u64 = 0;
        for (i, step) in steps.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let w = match step {
                Step::Repeat(r) => {
                    let here = |m: String| self.err(&format!("{at} (repeat)"), m);
                    if r.times.0 > MAX_REPEAT {
                        return Err(here(format!(
                            "times {} is more than {MAX_REPEAT}",
                            r.times.0
                        )));
                    }
                    if depth + 1 > MAX_DEPTH {
                        return Err(here(format!("repeats nest deeper than {MAX_DEPTH}")));
                    }
                    let inner = self.steps(&r.steps, &format!("{at}.steps"), depth + 1)?;
                    1u64.saturating_add(r.times.0.saturating_mul(inner))
                }
                _ => self
                    .leaf(step)
                    .map_err(|m| self.err(&format!("{at} ({})", step.kind()), m))?,
            };
            work = work.saturating_add(w);
        }
        Ok(work)
    }

    fn mem(&self, addr: u64, len: u64) -> Result<(), String> {
        if self.layout.contains(addr, len) {
            Ok(())
        } else {
            Err(format!(
                "{addr:#x}+{len:#x} is not inside one memory region (memory: {})",
                self.layout.describe()
            ))
        }
    }

    fn mmio(&self, offset: u64, size: u8, value: Option<(&str, u64)>) -> Result<(), String> {
        if size != 4 && size != 8 {
            return Err(format!("size {size}: MMIO accesses are 4 or 8 bytes"));
        }
        let size = u64::from(size);
        if !offset.is_multiple_of(size) {
            return Err(format!(
                "offset {offset:#x} is not aligned to the access size {size}"
            ));
        }
        if offset
            .checked_add(size)
            .is_none_or(|end| end > self.mmio_size)
        {
            return Err(format!(
                "offset {offset:#x}+{size} is beyond the model's register window (size {:#x})",
                self.mmio_size
            ));
        }
        if let Some((name, v)) = value {
            if size == 4 && v > u64::from(u32::MAX) {
                return Err(format!("{name} {v:#x} does not fit a 4-byte access"));
            }
        }
        Ok(())
    }

    /// Checks one step that is not a `repeat`; returns its work.
    fn leaf(&self, step: &Step) -> Result<u64, String> {
        match step {
            Step::MemWrite(s) => {
                let d = s.values().data()?;
                self.mem(s.addr.0, d.to_bytes().len() as u64)?;
                Ok(1)
            }
            Step::MemFill(s) => {
                if s.byte.0 > 0xff {
                    return Err(format!("byte {} is not a byte", s.byte));
                }
                self.mem(s.addr.0, s.len.0)?;
                Ok(1 + s.len.0 / 0x1000)
            }
            Step::MemExpect(s) => {
                let d = s.values().data()?;
                self.mem(s.addr.0, d.to_bytes().len() as u64)?;
                if let Some(m) = s.mask {
                    let width_max = match d {
                        Data::U64s(_) => u64::MAX,
                        Data::U32s(_) => u64::from(u32::MAX),
                        Data::Bytes(_) => 0xff,
                    };
                    if m.0 > width_max {
                        return Err(format!(
                            "mask {m} is wider than one element ({} bytes)",
                            d.width()
                        ));
                    }
                }
                Ok(1)
            }
            Step::MmioWrite(s) => {
                self.mmio(s.offset.0, s.size, Some(("value", s.value.0)))?;
                Ok(1)
            }
            Step::MmioExpect(s) => {
                self.mmio(s.offset.0, s.size, Some(("value", s.value.0)))?;
                if let Some(m) = s.mask {
                    self.mmio(s.offset.0, s.size, Some(("mask", m.0)))?;
                }
                Ok(1)
            }
            Step::MmioPoll(s) => {
                self.mmio(s.offset.0, s.size, Some(("value", s.value.0)))?;
                self.mmio(s.offset.0, s.size, Some(("mask", s.mask.0)))?;
                if s.max_reads.0 == 0 || s.max_reads.0 > MAX_POLL_READS {
                    return Err(format!(
                        "max_reads {} must be 1 to {MAX_POLL_READS}",
                        s.max_reads.0
                    ));
                }
                if s.value.0 & !s.mask.0 != 0 {
                    return Err(format!(
                        "value {} has bits outside mask {}: the poll could never succeed",
                        s.value, s.mask
                    ));
                }
                Ok(s.max_reads.0)
            }
            Step::Dma(s) => {
                if let Some(p) = s.pasid {
                    u32::try_from(p.0).map_err(|_| format!("pasid {p} does not fit 32 bits"))?;
                }
                u32::try_from(s.source_id.0)
                    .map_err(|_| format!("source_id {} does not fit 32 bits", s.source_id))?;
                let e = &s.expect;
                match (&e.output, &e.fault) {
                    (Some(_), None) => {}
                    (None, Some(f)) => {
                        if e.page_size.is_some() || e.perms.is_some() {
                            return Err(
                                "expect: `page_size` and `perms` go with `output`, not `fault`"
                                    .into(),
                            );
                        }
                        u32::try_from(f.reason.0).map_err(|_| {
                            format!("fault reason {} does not fit 32 bits", f.reason)
                        })?;
                    }
                    _ => return Err("expect: give exactly one of `output` or `fault`".into()),
                }
                if let Some(p) = &e.perms {
                    super::script::parse_perms(p)?;
                }
                Ok(1)
            }
            Step::ExpectMsi(s) => {
                u32::try_from(s.data.0)
                    .map_err(|_| format!("data {} does not fit 32 bits", s.data))?;
                Ok(1)
            }
            Step::ExpectNoMsi(_) => Ok(1),
            Step::Call(s) => {
                if s.name.is_empty() {
                    return Err("call: empty name".into());
                }
                if let Some(e) = &s.expect {
                    if e.values.is_some() == e.error.is_some() {
                        return Err("expect: give exactly one of `values` or `error`".into());
                    }
                }
                Ok(1)
            }
            Step::Repeat(_) => Ok(1),
        }
    }
}
