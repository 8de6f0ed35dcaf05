//! `Smmuv3::dump`: every leaf mapping a stream (and SubstreamID) reaches, for the monitor.
//!
//! Side-effect free like [`Smmuv3::lookup`]: it runs the same pipeline in lookup mode over the
//! configuration's input windows (see [`Smmuv3::permitted_ranges`], before reserved holes), one
//! transaction per page: a translated page is a mapping and the scan continues after it; a walk fault
//! skips the whole region the faulting descriptor covers (an invalid level-0 entry skips 512 GiB at
//! 4 KiB granule). Stage 1 table addresses and outputs go through stage 2 when nested, so the result is
//! the combined mapping. Contiguous pages with contiguous output and equal permissions and page size
//! are coalesced. Bounded: at most `limit` mappings and [`MAX_DUMP_WALKS`] walks (`truncated`).

use serde::Serialize;

use super::events::{event_name, F_PERMISSION};
use super::pagetable::Mode;
use super::trace::Ctx;
use super::translate::{self, Failure, Path};
use super::Smmuv3;
use crate::request::{Access, DmaRequest, RequestKind};

/// Most transactions one dump walks.
pub const MAX_DUMP_WALKS: u64 = 1 << 16;

/// A coalesced run of a stream's pages; `perms` are what an unprivileged request may do.
pub use crate::mapping::Mapping as DumpMapping;

/// A stream's mappings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Smmuv3Dump {
    pub sid: u32,
    pub ssid: Option<u32>,
    /// How the stream is translated (None when its configuration aborts or raises an event).
    pub path: Option<Path>,
    /// The configuration's problem, when it has one: the event name, or why it aborts.
    pub config_error: Option<String>,
    pub mappings: Vec<DumpMapping>,
    /// Walks done.
    pub walks: u64,
    /// A bound (`limit` or [`MAX_DUMP_WALKS`]) stopped the dump early.
    pub truncated: bool,
}

impl Smmuv3 {
    /// Every leaf mapping reachable by `sid`/`ssid`, at most `limit` (coalesced) mappings.
    pub fn dump(&self, sid: u32, ssid: Option<u32>, limit: usize) -> Smmuv3Dump {
        let setup = self.lock().setup(&self.hw);
        let mut out = Smmuv3Dump {
            sid,
            ssid,
            path: None,
            config_error: None,
            mappings: Vec::new(),
            walks: 0,
            truncated: false,
        };
        let req = |iova: u64, access: Access| DmaRequest {
            source_id: sid,
            pasid: ssid,
            iova,
            access,
            privileged: false,
            kind: RequestKind::Untranslated,
        };
        let mem = self.mem.as_ref();
        let mut ctx = Ctx::new(mem, &self.hw, Mode::Lookup, &req(0, Access::Read));
        let resolved = match translate::resolve(&mut ctx, &setup, None, None) {
            Ok(r) => r,
            Err(f) => {
                out.config_error = Some(f.describe());
                return out;
            }
        };
        for w in self.windows(&resolved) {
            let mut addr = w.first;
            loop {
                if out.walks >= MAX_DUMP_WALKS || out.mappings.len() > limit {
                    out.truncated = true;
                    break;
                }
                out.walks += 1;
                let run = |access| {
                    let mut ctx = Ctx::new(mem, &self.hw, Mode::Lookup, &req(addr, access));
                    let r = translate::translate(&mut ctx, &setup, None, None);
                    (r, ctx.skip)
                };
                let (mut r, mut skip) = run(Access::Read);
                if matches!(&r, Err(f) if f.id() == F_PERMISSION) {
                    // Write-only (stage 2 S2AP = 0b10) pages: still mappings.
                    (r, skip) = run(Access::Write);
                }
                let next = match r {
                    Ok(d) => {
                        out.path.get_or_insert(d.path);
                        let t = d.translation;
                        let last = t
                            .iova
                            .saturating_add(t.page_size.saturating_sub(1))
                            .min(w.last);
                        let m = DumpMapping {
                            iova: addr,
                            last,
                            output: t.translate(addr),
                            page_size: t.page_size,
                            perms: t.perms,
                        };
                        push(&mut out.mappings, m);
                        last.checked_add(1)
                    }
                    Err(Failure::Event { event, .. }) if skip.is_some() => {
                        let _ = event_name(event.id);
                        let size = skip.unwrap_or(1 << 12).max(1 << 12);
                        (addr & !(size - 1)).checked_add(size)
                    }
                    Err(f) => {
                        out.config_error = Some(f.describe());
                        return out;
                    }
                };
                match next {
                    Some(n) if n <= w.last && n > addr => addr = n,
                    _ => break,
                }
            }
            if out.truncated {
                break;
            }
        }
        if out.mappings.len() > limit {
            out.mappings.truncate(limit);
            out.truncated = true;
        }
        out
    }
}

/// Appends `m`, merging it into the previous mapping when it continues it.
fn push(v: &mut Vec<DumpMapping>, m: DumpMapping) {
    if !v.last_mut().is_some_and(|p| p.absorb(&m)) {
        v.push(m);
    }
}
