//! Where the initrd goes: as high as possible in low RAM, below the kernel's `initrd_addr_max`, and clear of the
//! memory the kernel uses while it decompresses (boot.rst: "initrd_addr_max").

use thiserror::Error;

const PAGE: u64 = 4096;

/// Errors placing the initrd.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum InitrdError {
    #[error("initrd is empty")]
    Empty,
    #[error(
        "guest memory too small for the initrd: {size:#x} bytes do not fit between the kernel's end ({lowest:#x}) \
         and {highest:#x}; give the guest more --memory"
    )]
    DoesNotFit {
        size: u64,
        lowest: u64,
        highest: u64,
    },
}

/// Picks the initrd's guest address. `kernel_end` is the end of the kernel's boot footprint
/// (load address + init_size), `low_ram_end` the end of RAM below 4 GiB (exclusive), `initrd_addr_max` the
/// highest address the kernel accepts for the initrd's last byte.
pub fn place(
    size: u64,
    kernel_end: u64,
    low_ram_end: u64,
    initrd_addr_max: u64,
) -> Result<u64, InitrdError> {
    if size == 0 {
        return Err(InitrdError::Empty);
    }
    let highest = low_ram_end.min(initrd_addr_max.saturating_add(1));
    let lowest = kernel_end.next_multiple_of(PAGE);
    let err = InitrdError::DoesNotFit {
        size,
        lowest,
        highest,
    };
    let start = highest.checked_sub(size).ok_or(err.clone())? & !(PAGE - 1);
    if start < lowest {
        return Err(err);
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_to_top_of_low_ram_page_aligned() {
        let addr = place(0x1234, 0x50_0000, 0x2000_0000, 0x7fff_ffff).unwrap();
        assert_eq!(addr, 0x1fff_e000);
        assert_eq!(addr % PAGE, 0);
        assert!(addr + 0x1234 <= 0x2000_0000);
    }

    #[test]
    fn respects_initrd_addr_max() {
        let addr = place(0x1000, 0x50_0000, 0xc000_0000, 0x37ff_ffff).unwrap();
        assert_eq!(addr, 0x37ff_f000);
    }

    #[test]
    fn refuses_when_it_would_overlap_the_kernel() {
        let err = place(0x100_0000, 0x3f0_0000, 0x400_0000, 0x7fff_ffff).unwrap_err();
        assert!(matches!(err, InitrdError::DoesNotFit { .. }));
        assert!(err.to_string().contains("memory too small"));
        assert!(place(u64::MAX, 0, 0x400_0000, 0x7fff_ffff).is_err());
        assert_eq!(
            place(0, 0, 0x400_0000, 0x7fff_ffff),
            Err(InitrdError::Empty)
        );
    }
}
