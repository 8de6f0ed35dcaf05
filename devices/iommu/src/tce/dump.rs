//! `dump`: every window with its valid TCEs (bounded), for the monitor.

use serde::Serialize;

use super::eeh::EehState;
use super::state::State;
use super::table::{read_entry, valid, TCE_ADDR_MASK, TCE_READ, TCE_WRITE};
use super::window::{WindowInfo, MAX_LEVELS};
use crate::mem::DmaMemory;

/// Most table entries one dump reads (a 2^24-entry window is never scanned entry by entry).
pub const MAX_DUMP_READS: u64 = 1 << 20;

/// One valid TCE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DumpMapping {
    pub iova: u64,
    pub output: u64,
    pub page_size: u64,
    /// "r", "w" or "rw".
    pub perms: &'static str,
    /// The raw TCE.
    pub entry: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WindowDump {
    pub window: WindowInfo,
    pub mappings: Vec<DumpMapping>,
}

/// The whole unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TceDump {
    pub eeh: EehState,
    pub windows: Vec<WindowDump>,
    pub pool_pages: u64,
    pub pool_pages_used: u64,
    /// The mapping limit or [`MAX_DUMP_READS`] stopped the listing early.
    pub truncated: bool,
}

struct Walker<'a> {
    mem: &'a dyn DmaMemory,
    reads: u64,
    limit: usize,
    truncated: bool,
}

impl Walker<'_> {
    /// Lists valid leaves under the table at `table` (level `level` of `levels`), indexes from
    /// `prefix`.
    #[allow(clippy::too_many_arguments)]
    fn table(
        &mut self,
        out: &mut Vec<DumpMapping>,
        w: &super::window::Window,
        table: u64,
        level: u8,
        levels: u8,
        entry_bits: u32,
        prefix: u64,
    ) {
        let per_level = 1u64 << entry_bits;
        // Entries of this table that can hold indexes of the window.
        let span_bits = u32::from(levels - 1 - level) * entry_bits;
        let max_index = w.entries();
        for i in 0..per_level {
            let index = prefix | i.checked_shl(span_bits).unwrap_or(0);
            if index >= max_index || (i > 0 && index == prefix) {
                return;
            }
            if out.len() >= self.limit || self.reads >= MAX_DUMP_READS {
                self.truncated = true;
                return;
            }
            self.reads += 1;
            let Some(entry) = table
                .checked_add(i * 8)
                .and_then(|a| read_entry(self.mem, a))
            else {
                return;
            };
            if !valid(entry) {
                continue;
            }
            if level + 1 == levels {
                let perms = match (entry & TCE_READ != 0, entry & TCE_WRITE != 0) {
                    (true, true) => "rw",
                    (true, false) => "r",
                    _ => "w",
                };
                out.push(DumpMapping {
                    iova: w.iova_of(index),
                    output: entry & TCE_ADDR_MASK,
                    page_size: w.page_size(),
                    perms,
                    entry,
                });
            } else {
                self.table(
                    out,
                    w,
                    entry & TCE_ADDR_MASK,
                    level + 1,
                    levels,
                    entry_bits,
                    index,
                );
            }
        }
    }
}

pub(super) fn dump(st: &State, mem: &dyn DmaMemory, limit: usize) -> TceDump {
    let mut walker = Walker {
        mem,
        reads: 0,
        limit,
        truncated: false,
    };
    let windows = st
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut mappings = Vec::new();
            let geo = w.geometry();
            if let (true, Some(t)) = (w.enabled, geo.table) {
                let levels = geo.levels.clamp(1, MAX_LEVELS);
                walker.table(&mut mappings, w, t, 0, levels, geo.entry_bits, 0);
            }
            WindowDump {
                window: w.info(i),
                mappings,
            }
        })
        .collect();
    TceDump {
        eeh: st.eeh,
        windows,
        pool_pages: st.pool.total_pages(),
        pool_pages_used: st.pool.used_pages(),
        truncated: walker.truncated,
    }
}
