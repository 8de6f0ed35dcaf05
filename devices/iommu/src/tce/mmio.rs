//! Register reads and writes of the hardware view (see [`super::regs`]).

use super::config::TceConfig;
use super::regs::{self, Reg, TveCfg};
use super::state::State;
use super::window::MAX_WINDOWS;
use crate::mem::DmaMemory;

/// The 64-bit value of the register at 8-byte-aligned `offset` (write-only and unknown: 0).
pub(super) fn read64(st: &State, cfg: &TceConfig, offset: u64) -> u64 {
    match regs::decode(offset, MAX_WINDOWS) {
        Reg::Global(r) => match r {
            regs::TCE_ID => regs::ID_MAGIC | (MAX_WINDOWS as u64) << 32,
            regs::TCE_PAGE_SIZES => cfg.page_sizes,
            regs::TCE_PE_STATE => st.eeh.pe_state(cfg.eeh),
            regs::TCE_ERR_IOBA => st.eeh.err_ioba(),
            regs::TCE_ERR_INFO => st.eeh.err_info(),
            regs::TCE_ERR_COUNT => st.eeh.errors,
            regs::TCE_KILL_START => st.kill_start,
            regs::TCE_KILL_END => st.kill_end,
            _ => 0,
        },
        Reg::Tve { window, reg } => {
            let w = &st.windows[window];
            match reg {
                regs::TVE_TABLE => w.table.unwrap_or(0),
                regs::TVE_CFG => w.cfg().encode(),
                regs::TVE_BASE => w.base,
                regs::TVE_SIZE => w.size,
                regs::TVE_LIOBN => u64::from(w.liobn),
                regs::TVE_STATUS => {
                    let err = if w.error != 0 { regs::STATUS_ERROR } else { 0 };
                    u64::from(w.enabled) | err | u64::from(w.error) << 8
                }
                _ => 0,
            }
        }
        Reg::None => 0,
    }
}

/// A write of `value` (the full 64-bit register value after merging a 4-byte half) to the register
/// at 8-byte-aligned `offset`.
pub(super) fn write64(
    st: &mut State,
    cfg: &TceConfig,
    mem: &dyn DmaMemory,
    offset: u64,
    value: u64,
) {
    match regs::decode(offset, MAX_WINDOWS) {
        Reg::Global(regs::TCE_PE_CTRL) if value & regs::PE_CTRL_RESET != 0 => reset_pe(st),
        Reg::Global(regs::TCE_KILL) => kill(st, value),
        Reg::Global(regs::TCE_KILL_START) => st.kill_start = value,
        Reg::Global(regs::TCE_KILL_END) => st.kill_end = value,
        Reg::Tve { window, reg } => write_tve(st, cfg, mem, window, reg, value),
        _ => {}
    }
}

/// PE reset: unfreeze, clear the error log, drop the TCE cache.
pub(super) fn reset_pe(st: &mut State) {
    st.eeh.reset();
    st.cache.clear();
    st.stats.pe_resets += 1;
}

fn kill(st: &mut State, value: u64) {
    if value & regs::KILL_ALL != 0 {
        st.stats.killed_entries += st.cache.len() as u64;
        st.cache.clear();
        st.stats.kills_all += 1;
    } else if value & regs::KILL_RANGE != 0 {
        let (start, end) = (st.kill_start, st.kill_end);
        for wi in 0..MAX_WINDOWS {
            let w = &st.windows[wi];
            let (base, shift, page) = (w.base, w.page_shift, w.page_size());
            let n = st.cache.invalidate_range(
                wi,
                |i| base.wrapping_add(i.wrapping_shl(u32::from(shift))),
                page,
                start,
                end,
            );
            st.stats.killed_entries += n as u64;
        }
        st.stats.kills_range += 1;
    }
}

/// TVE writes. TABLE, BASE and SIZE only change while the window is disabled (program, then
/// enable, as for an IODA2 TVE); a TVE_CFG write with ENABLE validates the whole entry. Any TVE_CFG
/// write hands the window to the hardware view for good: hypercalls refuse its LIOBN from then on
/// (until ibm,create-pe-dma-window or ibm,reset-pe-dma-window makes a hypervisor window again).
fn write_tve(
    st: &mut State,
    cfg: &TceConfig,
    mem: &dyn DmaMemory,
    wi: usize,
    reg: u64,
    value: u64,
) {
    let enabled = st.windows[wi].enabled;
    match reg {
        regs::TVE_TABLE if !enabled && st.windows[wi].table != Some(value) => {
            st.release_tables(wi);
            st.windows[wi].table = Some(value);
        }
        regs::TVE_BASE if !enabled => st.windows[wi].base = value,
        regs::TVE_SIZE if !enabled => st.windows[wi].size = value,
        regs::TVE_CFG => {
            let c = TveCfg::decode(value);
            st.hand_to_hardware_view(wi);
            {
                let w = &mut st.windows[wi];
                w.levels = c.levels;
                w.page_shift = c.page_shift;
                w.table_shift = c.table_shift;
                w.enabled = false;
                w.error = 0;
            }
            if c.enable {
                let other = &st.windows[1 - wi];
                let other = other.enabled.then_some(other);
                match st.windows[wi].validate(cfg.page_sizes, other, mem) {
                    Ok(()) => st.windows[wi].enabled = true,
                    Err(code) => {
                        st.windows[wi].error = code;
                        st.stats.tve_refused += 1;
                    }
                }
            }
            st.cache.invalidate_window(wi);
        }
        _ => {}
    }
}
