//! `iovmm bringup SCRIPT`: drive an IOMMU model from a JSON script, with no guest, and report the first
//! step whose result differs from the script's expectation — for a DMA step with the model's own walk
//! of the request.
//!
//! A script is documentation too: it lays out tables in memory, programs registers in the order a
//! driver does, and checks translations, faults, fault records, event queues and interrupts, each step
//! with a note citing the specification. The scripts shipped in `devices/iommu/bringup/` run in the
//! test suite.
//!
//! # Format
//! ```json
//! { "name": "vtd-legacy", "description": "...", "model": "vtd,sm=off",
//!   "memory": [{"base": 0, "size": "0x1000000"}],
//!   "steps": [
//!     {"mem_write":   {"note": "root entry, bus 0", "addr": "0x100000", "u64s": ["0x101001", 0]}},
//!     {"mmio_write":  {"offset": "0x20", "size": 8, "value": "0x100000"}},
//!     {"mmio_poll":   {"offset": "0x1c", "size": 4, "value": "0x40000000", "mask": "0x40000000", "max_reads": 10}},
//!     {"dma":         {"source_id": "0x18", "iova": "0x12345678", "access": "read",
//!                      "expect": {"output": "0x800678", "page_size": "0x1000", "perms": "rw"}}},
//!     {"dma":         {"source_id": "0x18", "iova": "0x7000", "access": "write", "expect": {"fault": {"reason": 5}}}},
//!     {"expect_msi":  {"address": "0xfee00000", "data": "0x31"}}
//!   ] }
//! ```
//! Numbers are JSON integers or strings (`"0x1000_0000"`, `"4096"`). Steps: `mem_write {addr, u64s |
//! u32s | bytes}`, `mem_fill {addr, len, byte}`, `mem_expect {addr, u64s | u32s | bytes, mask?}`,
//! `mmio_write {offset, size: 4|8, value}`, `mmio_expect {offset, size, value, mask?}`,
//! `mmio_poll {offset, size, value, mask, max_reads}`, `dma {source_id, pasid?, iova, access,
//! privileged?, kind?, expect: {output, page_size?, perms?} | {fault: {reason, recorded?}}}`,
//! `expect_msi {address, data}`, `expect_no_msi {}`, `call {name, args, expect?: {values} | {error}}`,
//! `repeat {times, steps}`. Every step takes an optional `note`.
//!
//! A script that cannot run (bad JSON, unknown step or field, bad number, memory regions overlapping
//! or over 1 GiB, accesses outside RAM or the register window, unbounded loops) is a
//! [`BringupError`], found before any step runs.
//!
//! # Use
//! ```no_run
//! let report = iommu::bringup::run_file("devices/iommu/bringup/vtd-legacy.json")?;
//! println!("{report}");                       // or serde_json::to_string(&report)
//! std::process::exit(if report.passed() { 0 } else { 1 });
//! # Ok::<(), iommu::bringup::BringupError>(())
//! ```

mod engine;
mod error;
mod memory;
mod num;
mod report;
mod script;
mod smmuv3;
mod target;
mod tce;
mod validate;
mod vtd;

use std::path::Path;
use std::sync::Arc;

pub use error::BringupError;
pub use memory::{Layout, MsiLog, MAX_MEMORY};
pub use num::{HexBytes, Num};
pub use report::{Failure, Report, StepReport};
pub use script::{
    Call, CallExpect, Data, Dma, DmaExpect, ExpectMsi, FaultExpect, MemExpect, MemFill, MemRegion,
    MemValues, MemWrite, MmioExpect, MmioPoll, MmioWrite, NoteOnly, Repeat, Script, ScriptAccess,
    ScriptKind, Step,
};
pub use target::{build_target, hexify, BringupTarget, MODELS};
pub use validate::{MAX_DEPTH, MAX_POLL_READS, MAX_REPEAT, MAX_WORK};

use crate::mem::DmaMemory;
use crate::request::InterruptSink;

/// Largest script file read.
pub const MAX_SCRIPT_BYTES: u64 = 16 << 20;

/// Reads, checks and runs the script at `path` on the model it names.
pub fn run_file(path: impl AsRef<Path>) -> Result<Report, BringupError> {
    let path = path.as_ref();
    let origin = path.display().to_string();
    let io = |source| BringupError::Io {
        path: origin.clone(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_SCRIPT_BYTES {
        return Err(BringupError::Parse {
            origin,
            message: format!("{len} bytes; scripts are at most {MAX_SCRIPT_BYTES} bytes"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    run_str(&text, &origin)
}

/// Parses and runs a script held in memory; `origin` names it in errors.
pub fn run_str(json: &str, origin: &str) -> Result<Report, BringupError> {
    run_script(&parse(json, origin)?, origin)
}

/// Parses a script (no semantic checks: see [`run_script`]).
pub fn parse(json: &str, origin: &str) -> Result<Script, BringupError> {
    serde_json::from_str(json).map_err(|e| BringupError::Parse {
        origin: origin.into(),
        message: e.to_string(),
    })
}

/// Checks and runs `script` on the model its `model` string names ([`build_target`]).
pub fn run_script(script: &Script, origin: &str) -> Result<Report, BringupError> {
    run_with(script, origin, |mem, irq| {
        build_target(&script.model, mem, irq)
    })
}

/// Checks and runs `script` on a target built by `build` over the script's memory and interrupt log:
/// for models not in [`build_target`] yet, and for tests.
pub fn run_with(
    script: &Script,
    origin: &str,
    build: impl FnOnce(
        Arc<dyn DmaMemory>,
        Arc<dyn InterruptSink>,
    ) -> Result<Box<dyn BringupTarget>, String>,
) -> Result<Report, BringupError> {
    let layout = Layout::new(&script.memory).map_err(|message| BringupError::Memory {
        origin: origin.into(),
        message,
    })?;
    let mem = layout.build().map_err(|message| BringupError::Memory {
        origin: origin.into(),
        message,
    })?;
    let msis = Arc::new(MsiLog::default());
    let target = build(mem.clone(), msis.clone()).map_err(|message| BringupError::Model {
        origin: origin.into(),
        model: script.model.clone(),
        message,
    })?;
    validate::validate(origin, &script.steps, &layout, target.mmio_size())?;
    let engine = engine::Engine {
        target: target.as_ref(),
        mem: mem.as_ref(),
        msis: &msis,
    };
    let run = engine.run(&script.steps);
    Ok(engine::report(
        &script.name,
        &script.description,
        target.option_string(),
        script.steps.len(),
        run,
        &msis,
    ))
}

#[cfg(test)]
mod tests;
