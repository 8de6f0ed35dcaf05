//! The AArch64 (VMSAv8-64) translation-table walker of the SMMUv3 model: one stage per call, 4K/16K/64K
//! granules, levels 0..=3, block and page leaves, stage-1 AP/APTable and stage-2 S2AP permissions,
//! hardware Access-flag and dirty-state updates (HTTU), and the address-size checks of IHI0070 §3.4.
//!
//! Pure and KVM-free: the walker reads descriptors through [`DmaMemory`](crate::mem::DmaMemory), writes
//! them only for HTTU (one `compare_exchange_u64` per update, [`Mode::Translate`] only), and reaches
//! every table through the caller's `table_xlate` hook, which is how a nested stage 1 puts each of its
//! table reads through stage 2 (IHI0070 §3.2 / §3.4.1). Bounded by construction: at most four levels,
//! plus at most [`MAX_HTTU_RETRIES`] re-evaluations of a leaf that changed under an update; no
//! recursion on guest data; no panic or overflow whatever the descriptors, `tsz`, `sl0` or address.
//!
//! Assumptions (the caller's side of the contract):
//! - The caller selects TTB0/TTB1 and checks the input address against IAS/VAS. The walker checks only
//!   `iova < 2^(64 - tsz)`; a TTB1 address must be passed with its upper (all-ones) bits stripped.
//! - `ttb` is already masked to the table alignment; the walker only checks it against `oas_bits`.
//! - The model implements IDR3.STT = 0 (T0SZ at most 39), IDR5.VAX = 0 (48-bit VA), no LPA2 (DS = 0)
//!   and FEAT_LPA with the 64K granule when the output size is 52 bits.

mod config;
mod desc;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_httu;
#[cfg(test)]
mod tests_random;
#[cfg(test)]
mod tests_s2;

pub use config::{ConfigError, Granule, WalkConfig, MAX_TSZ, MIN_TSZ};
pub use walk::{walk, MAX_HTTU_RETRIES};

use crate::request::Perms;
use serde::Serialize;
use thiserror::Error;

/// Which translation stage a configuration or a fault belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Stage {
    S1,
    S2,
}

/// Whether the walk may write descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Mode {
    /// A real translation: sets AF / dirty state through `DmaMemory::compare_exchange_u64` when HTTU is
    /// enabled.
    Translate,
    /// A side-effect-free inspection: never writes memory, and reports what `Translate` would return
    /// (an update HTTU would make is assumed made).
    Lookup,
}

/// One descriptor read by a walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalkStep {
    pub level: u8,
    /// Base of the table read at this level, in the walk's own address space (an IPA for a nested
    /// stage 1, as the TTB / table descriptor gave it).
    pub table: u64,
    /// Entry index in that table (beyond 2^stride for concatenated stage-2 start tables).
    pub index: u64,
    /// Physical address the descriptor was read from (after `table_xlate`).
    pub desc_addr: u64,
    /// The address before `table_xlate` when it differs from `desc_addr` (a nested stage 1's IPA).
    pub desc_ipa: Option<u64>,
    /// The descriptor as read (before any HTTU update).
    pub desc: u64,
    /// "table", "block", "page" or "invalid" (invalid, reserved, or a block where the granule allows
    /// none).
    pub kind: &'static str,
}

/// A successful walk: the block or page containing the input address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalkOutcome {
    /// Output address of the page/block base (an IPA for stage 1 of a nested translation).
    pub output: u64,
    /// Size of the leaf's region (page or block), a power of two.
    pub page_size: u64,
    /// Effective permissions: the leaf's AP/S2AP with stage-1 APTable restrictions applied, as the
    /// descriptor stands after this walk's HTTU update (or would, in [`Mode::Lookup`]).
    pub perms: Perms,
    /// Level of the leaf descriptor.
    pub level: u8,
    pub steps: Vec<WalkStep>,
    /// The leaf's attribute bits (upper 63:50, lower 11:2) after any HTTU update.
    pub attrs: u64,
    /// Dirty-bit-modifier page in writable-clean state: `perms.write` is false, but a write request
    /// would make it writable (HTTU dirty update) instead of faulting. A TLB holding this outcome must
    /// re-walk on a write rather than report a Permission fault.
    pub writable_clean: bool,
    /// Whether this walk wrote the leaf (AF and/or dirty update; never in [`Mode::Lookup`]).
    pub updated: bool,
}

impl WalkOutcome {
    /// The output address of `iova`, which this outcome maps.
    pub fn address(&self, iova: u64) -> u64 {
        self.output | (iova & self.page_size.wrapping_sub(1))
    }
}

/// Fault types of a walk (IHI0070 §7.3: F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION,
/// F_WALK_EABT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum WalkFaultKind {
    Translation,
    AddressSize,
    AccessFlag,
    Permission,
    /// A descriptor fetch (or HTTU update) failed: outside RAM.
    ExternalAbort,
}

/// Event record CLASS (IHI0070 §7.3): which stage-1 access a stage-2 fault was taken on.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum FaultClass {
    /// CD fetch (0b00).
    CD,
    /// Stage-1 translation table fetch (0b01).
    TT,
    /// The input address of the transaction (0b10).
    IN,
}

impl FaultClass {
    /// The event record's CLASS field value.
    pub fn bits(self) -> u8 {
        match self {
            FaultClass::CD => 0b00,
            FaultClass::TT => 0b01,
            FaultClass::IN => 0b10,
        }
    }
}

/// Why a walk stopped.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize)]
#[error("{stage:?} {kind:?} fault at level {level}")]
pub struct WalkFault {
    pub kind: WalkFaultKind,
    pub stage: Stage,
    /// Level of the descriptor the fault is about (the start level for an input address out of
    /// range, a TTB beyond the output size, or an invalid configuration: 0).
    pub level: u8,
    /// Descriptors read up to and including the one the fault is about.
    pub steps: Vec<WalkStep>,
    /// Stage-2 faults: the IPA that failed (the stage-2 walk's input address).
    pub ipa: Option<u64>,
    /// IN for faults on this walk's own input; TT when `table_xlate` (stage 2 of a stage-1 table
    /// read) failed. The caller sets CD for a stage-2 fault on a CD fetch.
    pub class: FaultClass,
    /// ExternalAbort: the physical address that could not be read or updated (None if it does not
    /// exist: beyond 2^64).
    pub fetch_addr: Option<u64>,
}
