//! FADT ("FACP"): Fixed ACPI Description Table, ACPI 6.5 section 5.2.9, for a hardware-reduced platform.
//!
//! Choices (checked against Linux 6.12 `drivers/acpi/acpica/tbfadt.c` and `arch/x86/kernel/acpi/boot.c`):
//! - `HW_REDUCED_ACPI`: no PM1/PM timer/GPE blocks, no SCI, no FACS. ACPICA stops validating the legacy
//!   register blocks after converting the DSDT address when this flag is set, so they may all be zero; Linux
//!   x86 then uses `null_legacy_pic` and skips PIT setup.
//! - `PWR_BUTTON` and `SLP_BUTTON`: "no fixed-feature buttons". With these clear Linux would create the
//!   LNXPWRBN/LNXSLPBN fixed-event devices, which a hardware-reduced platform cannot back.
//! - `RESET_REG_SUP` plus an 8-bit system-I/O RESET_REG and RESET_VALUE when the VMM implements a reset port.
//! - IAPC_BOOT_ARCH (section 5.2.9.3): `VGA Not Present` and `CMOS RTC Not Present` always; the `8042` bit is
//!   clear (the VMM only decodes the 0xFE reset command, not a keyboard controller, so Linux's i8042 driver
//!   should not probe); `LEGACY_DEVICES` is set only when a COM1 is present (it is an OS-driven ISA device).
//!   MSI is supported and ASPM is left to the OS (no devices have ASPM capabilities anyway).
//! - Only X_DSDT is filled (DSDT = 0), so ACPICA never sees a 32/64-bit mismatch.
//! - Preferred_PM_Profile is 0, "Unspecified" (section 5.2.9, table 5.10): a VM is neither a desktop, a laptop
//!   nor a server. Linux's amd-pstate keys its default on it: with the `_CPC` of processors.rs present, an
//!   unspecified profile makes it stop with the info-level "driver load is disabled, boot with specific mode
//!   to enable this" (6.12 and 7.x `amd_pstate_init`). A server profile would do the same before family 0x1A
//!   but not on 0x1A+ in 7.x, and a client profile would make it try to enable CPPC and fail at error level
//!   ("failed to enable driver mode"): the `_CPC` has no Enable/Desired registers for a driver to write.

use acpi_tables::fadt::{FADTBuilder, Flags, PmProfile};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::Aml;

use super::{AcpiPlatform, OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// IAPC_BOOT_ARCH bits (ACPI 6.5 table 5.11).
pub(crate) const IAPC_LEGACY_DEVICES: u16 = 1 << 0;
#[cfg(test)]
pub(crate) const IAPC_8042: u16 = 1 << 1;
pub(crate) const IAPC_VGA_NOT_PRESENT: u16 = 1 << 2;
pub(crate) const IAPC_CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;

/// "Hypervisor Vendor Identity" (FADT offset 268, ACPI 6.0+).
pub(crate) const HYPERVISOR_VENDOR_ID: [u8; 8] = *b"IOVMM   ";

/// Byte offsets of FADT fields (ACPI 6.5 table 5.9).
#[cfg(test)]
pub(crate) mod offsets {
    pub const PREFERRED_PM_PROFILE: usize = 45;
    pub const IAPC_BOOT_ARCH: usize = 109;
    pub const FLAGS: usize = 112;
    pub const RESET_REG: usize = 116;
    pub const RESET_VALUE: usize = 128;
    pub const MINOR_VERSION: usize = 131;
    pub const X_DSDT: usize = 140;
    pub const HYPERVISOR_ID: usize = 268;
    pub const LENGTH: usize = 276;
}

/// Builds the FADT pointing at the DSDT at `dsdt_addr`.
pub(crate) fn build_fadt(p: &AcpiPlatform, dsdt_addr: u64) -> Vec<u8> {
    let mut fadt = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt_addr)
        .preferred_pm_profile(PmProfile::Unspecified)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton);

    let mut boot_arch = IAPC_VGA_NOT_PRESENT | IAPC_CMOS_RTC_NOT_PRESENT;
    if p.serial_com1.is_some() {
        boot_arch |= IAPC_LEGACY_DEVICES;
    }
    fadt.iapc_boot_arch = boot_arch.into();

    if let Some((port, value)) = p.reset {
        fadt = fadt.flag(Flags::ResetRegSup);
        // Section 5.2.9: RESET_REG must be 8 bits wide at bit offset 0.
        fadt.reset_reg = GAS::new(
            AddressSpace::SystemIo,
            8,
            0,
            AccessSize::ByteAccess,
            u64::from(port),
        );
        fadt.reset_value = value;
    }
    fadt.hypervisor_vendor_identity = u64::from_le_bytes(HYPERVISOR_VENDOR_ID).into();

    let mut bytes = Vec::new();
    fadt.finalize().to_aml_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::super::byte_sum;
    use super::super::test_support::{le, sample_platform};
    use super::*;

    const HW_REDUCED: u64 = 1 << 20;
    const RESET_REG_SUP: u64 = 1 << 10;

    #[test]
    fn header_and_checksum() {
        let f = build_fadt(&sample_platform(), 0xE_1000);
        assert_eq!(f.len(), offsets::LENGTH);
        assert_eq!(&f[0..4], b"FACP");
        assert_eq!(le(&f, 4, 4), offsets::LENGTH as u64);
        assert_eq!(f[8], 6, "FADT major revision");
        assert_eq!(f[offsets::MINOR_VERSION], 5, "FADT minor revision");
        assert_eq!(&f[10..16], b"IOVMM ");
        assert_eq!(&f[16..24], b"IOVMMTBL");
        assert_eq!(byte_sum(&f), 0);
    }

    #[test]
    fn pm_profile_is_unspecified() {
        // amd-pstate's quiet "driver load is disabled" path (see the module documentation).
        let f = build_fadt(&sample_platform(), 0xE_1000);
        assert_eq!(
            f[offsets::PREFERRED_PM_PROFILE],
            PmProfile::Unspecified as u8
        );
        assert_eq!(f[offsets::PREFERRED_PM_PROFILE], 0);
    }

    #[test]
    fn hw_reduced_with_dsdt_and_reset() {
        let f = build_fadt(&sample_platform(), 0xE_1000);
        let flags = le(&f, offsets::FLAGS, 4);
        assert_ne!(flags & HW_REDUCED, 0);
        assert_ne!(flags & RESET_REG_SUP, 0);
        assert_eq!(le(&f, 40, 4), 0, "32-bit DSDT stays zero");
        assert_eq!(le(&f, offsets::X_DSDT, 8), 0xE_1000);
        // RESET_REG generic address (section 5.2.3.2): system I/O, 8 bits, offset 0, byte access, port 0x64.
        assert_eq!(
            &f[offsets::RESET_REG..offsets::RESET_REG + 4],
            &[1, 8, 0, 1]
        );
        assert_eq!(le(&f, offsets::RESET_REG + 4, 8), 0x64);
        assert_eq!(f[offsets::RESET_VALUE], 0xFE);
        assert_eq!(
            &f[offsets::HYPERVISOR_ID..offsets::HYPERVISOR_ID + 8],
            b"IOVMM   "
        );
        // No FACS, no SCI, no PM blocks.
        assert_eq!(le(&f, 36, 4), 0, "FIRMWARE_CTRL");
        assert_eq!(le(&f, 46, 2), 0, "SCI_INT");
        assert_eq!(le(&f, 132, 8), 0, "X_FIRMWARE_CTRL");
    }

    #[test]
    fn boot_arch_flags() {
        let mut p = sample_platform();
        let f = build_fadt(&p, 0);
        let arch = le(&f, offsets::IAPC_BOOT_ARCH, 2) as u16;
        assert_eq!(
            arch,
            IAPC_LEGACY_DEVICES | IAPC_VGA_NOT_PRESENT | IAPC_CMOS_RTC_NOT_PRESENT
        );
        assert_eq!(arch & IAPC_8042, 0);

        p.serial_com1 = None;
        p.reset = None;
        let f = build_fadt(&p, 0);
        assert_eq!(
            le(&f, offsets::IAPC_BOOT_ARCH, 2) as u16 & IAPC_LEGACY_DEVICES,
            0
        );
        assert_eq!(le(&f, offsets::FLAGS, 4) & RESET_REG_SUP, 0);
        assert_eq!(&f[offsets::RESET_REG..offsets::RESET_VALUE + 1], &[0u8; 13]);
        assert_eq!(byte_sum(&f), 0);
    }
}
