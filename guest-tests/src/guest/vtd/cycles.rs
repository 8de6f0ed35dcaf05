//! `map-cycles`: many map / DMA / verify / unmap rounds where consecutive rounds map a *different* buffer at the
//! *same* IOVA. A translation cached across an unmap (missing or wrong IOTLB invalidation in the model, or a
//! cached not-present entry surviving a map) sends the device's write to the previous buffer or faults, and the
//! byte checks catch it. Each round first probes the IOVA while it is unmapped (a cached not-present answer
//! would break the following DMA) and reads the page back through a second, long-lived mapping.

use std::time::Instant;

use pci::test_device::regs::{XLATE_PERM_READ, XLATE_PERM_WRITE};

use super::super::context::Context;
use super::super::dma_engine::{compare, fill_byte};
use super::super::dmabuf::{DmaBuffer, PAGE};
use super::super::iommufd::MapPerms;
use super::super::report::Report;
use super::common::{map_buf, unmap, with_session};
use super::session::Session;
use super::translate::check_denied;

fn perms_rw() -> u32 {
    XLATE_PERM_READ | XLATE_PERM_WRITE
}

/// Rounds.
pub const CYCLES: usize = 200;
/// Distinct IOVA slots reused by the rounds.
pub const SLOTS: u64 = 8;
/// First slot; slot k is at `SLOT_BASE + k * SLOT_STRIDE`.
pub const SLOT_BASE: u64 = 0x3000_0000;
/// Stride between slots (also crosses page-table boundaries: 2 MiB + 1 page).
pub const SLOT_STRIDE: u64 = 0x20_1000;
/// Where the read-back page is mapped for the whole test.
pub const READBACK_IOVA: u64 = 0x2f00_0000;

/// IOVA and buffer (0 or 1) of round `i`: rounds 2k and 2k+1 share an IOVA and use different buffers.
pub fn round(i: usize) -> (u64, usize) {
    let slot = (i as u64 / 2) % SLOTS;
    (SLOT_BASE + slot * SLOT_STRIDE, i % 2)
}

/// Fill pattern of round `i`.
pub fn pattern(i: usize) -> u64 {
    0x5a00_0000_0000_0000 ^ ((i as u64) << 32) ^ (i as u64).wrapping_mul(0x0101_0101)
}

fn cycles(s: &Session, r: &mut Report) -> Result<(), String> {
    let e = s.engine();
    let mut bufs = [
        DmaBuffer::new(PAGE as usize, PAGE as usize)?,
        DmaBuffer::new(PAGE as usize, PAGE as usize)?,
    ];
    let back = DmaBuffer::new(PAGE as usize, PAGE as usize)?;
    map_buf(s, &back, READBACK_IOVA, MapPerms::RW)?;
    let t0 = Instant::now();
    for i in 0..CYCLES {
        let (iova, which) = round(i);
        let other = 1 - which;
        let marker = [0xc3u8 ^ i as u8; PAGE as usize];
        bufs[which].as_mut_slice().copy_from_slice(&marker);
        let other_before = bufs[other].snapshot();
        let buf = &bufs[which];
        // Probe the IOVA while it is unmapped: a model that caches the not-present answer (forbidden without
        // CAP.CM, and the driver never invalidates on map) then fails this round's DMA.
        let (x, _) = e.translate(iova, true)?;
        if let Some(err) = check_denied(
            &format!("round {i}: probe of unmapped {iova:#x}"),
            &x,
            perms_rw(),
        )
        .pop()
        {
            return Err(err);
        }
        map_buf(s, buf, iova, MapPerms::RW).map_err(|e| format!("round {i}: {e}"))?;
        let pat = pattern(i);
        let c0 = e.completions()?;
        e.fill(iova, PAGE, pat)?
            .expect_done(&format!("round {i}: fill at {iova:#x}"), PAGE, c0)?;
        let want: Vec<u8> = (0..PAGE as usize).map(|k| fill_byte(pat, k)).collect();
        compare(
            &format!("round {i}: buffer {which} at {iova:#x}"),
            &buf.snapshot(),
            &want,
        )?;
        compare(
            &format!("round {i}: buffer {other} (mapped at this IOVA last round)"),
            &bufs[other].snapshot(),
            &other_before,
        )?;
        let c0 = e.completions()?;
        e.copy(iova, READBACK_IOVA, PAGE)?.expect_done(
            &format!("round {i}: read back"),
            PAGE,
            c0,
        )?;
        compare(&format!("round {i}: read back"), &back.snapshot(), &want)?;
        unmap(s, s.ioas, iova, PAGE).map_err(|e| format!("round {i}: {e}"))?;
    }
    r.diag(format!(
        "{CYCLES} rounds over {SLOTS} IOVAs in {:.2} s",
        t0.elapsed().as_secs_f64()
    ));
    unmap(s, s.ioas, READBACK_IOVA, PAGE)
}

pub fn run(ctx: &Context) -> Report {
    with_session(ctx, cycles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_rounds_reuse_the_iova_with_the_other_buffer() {
        for k in 0..CYCLES / 2 {
            let (a, ba) = round(2 * k);
            let (b, bb) = round(2 * k + 1);
            assert_eq!(a, b);
            assert_ne!(ba, bb);
            assert_eq!(a % PAGE, 0);
            assert!(a + PAGE <= READBACK_IOVA || a >= READBACK_IOVA + PAGE);
        }
        let iovas: std::collections::BTreeSet<u64> = (0..CYCLES).map(|i| round(i).0).collect();
        assert_eq!(iovas.len() as u64, SLOTS);
    }

    #[test]
    fn patterns_differ_between_rounds() {
        let p: std::collections::BTreeSet<u64> = (0..CYCLES).map(pattern).collect();
        assert_eq!(p.len(), CYCLES);
    }
}
