//! The coalesced mappings the VT-d and SMMUv3 dumps list.

use serde::Serialize;

use crate::request::Perms;

/// Input addresses `iova..=last` map to `output..` in pages of `page_size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub iova: u64,
    /// Inclusive.
    pub last: u64,
    pub output: u64,
    pub page_size: u64,
    /// What an unprivileged request may do (each model's dump says how it derives them).
    pub perms: Perms,
}

impl Mapping {
    /// Extends `self` to cover `next` when `next` continues it: the next input address, the output
    /// contiguous, the same page size and permissions. Whether it did.
    pub(crate) fn absorb(&mut self, next: &Mapping) -> bool {
        let contiguous = self.last.checked_add(1) == Some(next.iova)
            && self
                .output
                .checked_add(self.last - self.iova)
                .and_then(|o| o.checked_add(1))
                == Some(next.output);
        let same = self.page_size == next.page_size && self.perms == next.perms;
        if contiguous && same {
            self.last = next.last;
        }
        contiguous && same
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(iova: u64, last: u64, output: u64) -> Mapping {
        Mapping {
            iova,
            last,
            output,
            page_size: 0x1000,
            perms: Perms::RW,
        }
    }

    #[test]
    fn absorbs_only_what_continues() {
        let mut a = m(0x1000, 0x1fff, 0x8000);
        assert!(a.absorb(&m(0x2000, 0x3fff, 0x9000)));
        assert_eq!(a, m(0x1000, 0x3fff, 0x8000));
        assert!(!a.absorb(&m(0x5000, 0x5fff, 0xb000)), "input gap");
        assert!(!a.absorb(&m(0x4000, 0x4fff, 0xc000)), "output gap");
        let mut b = m(0x4000, 0x4fff, 0xb000);
        b.perms.write = false;
        assert!(!a.absorb(&b), "other perms");
        b.perms = Perms::RW;
        b.page_size = 0x20_0000;
        assert!(!a.absorb(&b), "other page size");
        assert_eq!(a, m(0x1000, 0x3fff, 0x8000));
        let mut top = m(u64::MAX - 0xfff, u64::MAX, 0);
        assert!(!top.absorb(&m(0, 0xfff, 0x1000)), "no wrap");
    }
}
