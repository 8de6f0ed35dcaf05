//! `permitted_ranges`: the input aperture of the configuration a stream would use, minus the
//! configured reserved holes.

use super::pagetable::Mode;
use super::trace::Ctx;
use super::translate::{self, Resolved};
use super::Smmuv3;
use crate::ranges::{IovaWindow, PermittedRanges};
use crate::request::{Access, DmaRequest, RequestKind};

impl Smmuv3 {
    /// The IOVA windows `sid`/`ssid` may use under the configuration that applies now (side-effect
    /// free): stage 1 — TTB0's [0, 2^(64-T0SZ)) unless EPD0, and TTB1's [2^64 - 2^(64-T1SZ), 2^64)
    /// unless EPD1; stage 2 only — [0, 2^(64-S2T0SZ)); bypass (STE or GBPA) — [0, 2^OAS); nothing
    /// for abort or a configuration that raises an event. Minus `cfg.reserved`.
    pub fn permitted_ranges(&self, sid: u32, ssid: Option<u32>) -> PermittedRanges {
        let setup = self.lock().setup(&self.hw);
        let req = DmaRequest {
            source_id: sid,
            pasid: ssid,
            iova: 0,
            access: Access::Read,
            privileged: false,
            kind: RequestKind::Untranslated,
        };
        let mut ctx = Ctx::new(self.mem.as_ref(), &self.hw, Mode::Lookup, &req);
        let windows = match translate::resolve(&mut ctx, &setup, None, None) {
            Ok(r) => self.windows(&r),
            Err(_) => Vec::new(),
        };
        self.hw.cfg.reserved.iter().fold(
            PermittedRanges::from_windows(windows),
            |acc, &(first, last)| match IovaWindow::new(first, last) {
                Some(hole) => acc.subtract(hole),
                None => acc,
            },
        )
    }

    /// The input windows of a resolved configuration (before reserved holes).
    pub(crate) fn windows(&self, r: &Resolved) -> Vec<IovaWindow> {
        let ia = |tsz: u8| 64 - u32::from(tsz.min(63));
        match r {
            Resolved::GlobalAbort | Resolved::Abort => Vec::new(),
            Resolved::GlobalBypass | Resolved::Bypass => {
                vec![IovaWindow::aperture(u32::from(self.hw.cfg.oas_bits))]
            }
            Resolved::Translate { ste, cd, .. } => match cd {
                Some(cd) => {
                    let mut v = Vec::new();
                    if cd.ttb0.is_some() {
                        v.push(IovaWindow::aperture(ia(cd.t0sz)));
                    }
                    if cd.ttb1.is_some() {
                        let bits = ia(cd.t1sz);
                        let first = if bits >= 64 { 0 } else { !0u64 << bits };
                        v.push(IovaWindow {
                            first,
                            last: u64::MAX,
                        });
                    }
                    v
                }
                None => match &ste.s2 {
                    Some(s2) => vec![IovaWindow::aperture(ia(s2.tsz))],
                    None => vec![IovaWindow::aperture(u32::from(self.hw.cfg.oas_bits))],
                },
            },
        }
    }
}
