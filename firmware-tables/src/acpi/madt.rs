//! MADT ("APIC"): Multiple APIC Description Table, ACPI 6.5 section 5.2.12.
//!
//! Contents: one Processor Local APIC per vCPU (UID = APIC id = index, enabled), the I/O APIC, the ISA
//! override IRQ0 -> GSI 2 and one Local APIC NMI on LINT1 for all processors.
//!
//! `PCAT_COMPAT` is set: KVM's in-kernel irqchip (KVM_CREATE_IRQCHIP) really does contain the dual 8259 pair,
//! and the flag is what tells an OS that those exist and must be masked before using the APICs. Linux only
//! uses it to skip probing for the PIC; on a hardware-reduced platform it replaces the PIC with
//! `null_legacy_pic` anyway, so the flag cannot make Linux drive the 8259s.

use acpi_tables::madt::{EnabledStatus, IoApic as MadtIoApic, ProcessorLocalApic};
use acpi_tables::sdt::Sdt;
use acpi_tables::Aml;

use super::{AcpiPlatform, OEM_ID, OEM_REVISION, OEM_TABLE_ID};

/// MADT revision of ACPI 6.3..6.5 ("5"); Linux does not look at it.
const MADT_REVISION: u8 = 5;
/// MADT flags bit 0 (table 5.20).
pub(crate) const PCAT_COMPAT: u32 = 1;

/// Interrupt Controller Structure types (table 5.21).
#[cfg(test)]
pub(crate) const TYPE_LOCAL_APIC: u8 = 0;
#[cfg(test)]
pub(crate) const TYPE_IO_APIC: u8 = 1;
pub(crate) const TYPE_INTERRUPT_SOURCE_OVERRIDE: u8 = 2;
pub(crate) const TYPE_LOCAL_APIC_NMI: u8 = 4;

/// MPS INTI flags (table 5.26): polarity in bits 1:0 (01 = active high), trigger mode in bits 3:2 (01 = edge).
pub(crate) const INTI_EDGE_HIGH: u16 = 0b0101;
/// "Conforms to the bus specification" for both polarity and trigger.
pub(crate) const INTI_CONFORMS: u16 = 0;

/// Interrupt Source Override (section 5.2.12.5, 10 bytes): bus 0 = ISA, source IRQ, GSI, flags.
fn interrupt_source_override(source: u8, gsi: u32, flags: u16) -> Vec<u8> {
    let mut s = vec![TYPE_INTERRUPT_SOURCE_OVERRIDE, 10, 0, source];
    s.extend_from_slice(&gsi.to_le_bytes());
    s.extend_from_slice(&flags.to_le_bytes());
    s
}

/// Local APIC NMI (section 5.2.12.7, 6 bytes): processor UID (0xFF = all), flags, LINT# input.
fn local_apic_nmi(processor_uid: u8, flags: u16, lint: u8) -> Vec<u8> {
    let mut s = vec![TYPE_LOCAL_APIC_NMI, 6, processor_uid];
    s.extend_from_slice(&flags.to_le_bytes());
    s.push(lint);
    s
}

fn aml_bytes(a: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    a.to_aml_bytes(&mut v);
    v
}

/// Builds the MADT.
pub(crate) fn build_madt(p: &AcpiPlatform) -> Vec<u8> {
    // 36-byte header + Local Interrupt Controller Address (offset 36) + Flags (offset 40).
    let mut madt = Sdt::new(
        *b"APIC",
        44,
        MADT_REVISION,
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
    );
    madt.write_u32(36, p.lapic_address);
    madt.write_u32(40, PCAT_COMPAT);

    for cpu in 0..p.cpus {
        madt.append_slice(&aml_bytes(&ProcessorLocalApic::new(
            cpu,
            cpu,
            EnabledStatus::Enabled,
        )));
    }
    madt.append_slice(&aml_bytes(&MadtIoApic::new(
        p.ioapic.id,
        p.ioapic.address,
        p.ioapic.gsi_base,
    )));
    // The PIT's IRQ0 is wired to IOAPIC pin 2 (the PC/AT convention KVM's irqchip follows).
    madt.append_slice(&interrupt_source_override(0, 2, INTI_EDGE_HIGH));
    // NMI arrives on LINT1 of every processor (Linux warns if it is not LINT1).
    madt.append_slice(&local_apic_nmi(0xFF, INTI_CONFORMS, 1));
    madt.as_slice().to_vec()
}

/// Walks the interrupt controller structures of a MADT: (type, bytes of the structure).
#[cfg(test)]
pub(crate) fn structures(madt: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut off = 44;
    while off + 2 <= madt.len() {
        let len = madt[off + 1] as usize;
        assert!(
            len >= 2 && off + len <= madt.len(),
            "bad MADT entry at {off}"
        );
        out.push((madt[off], &madt[off..off + len]));
        off += len;
    }
    assert_eq!(off, madt.len());
    out
}

#[cfg(test)]
mod tests {
    use super::super::byte_sum;
    use super::super::test_support::{le, sample_platform};
    use super::*;

    #[test]
    fn header_fields() {
        let m = build_madt(&sample_platform());
        assert_eq!(&m[0..4], b"APIC");
        assert_eq!(le(&m, 4, 4), m.len() as u64);
        assert_eq!(m[8], MADT_REVISION);
        assert_eq!(le(&m, 36, 4), 0xFEE0_0000);
        assert_eq!(le(&m, 40, 4), 1);
        assert_eq!(byte_sum(&m), 0);
    }

    #[test]
    fn one_enabled_lapic_per_cpu() {
        for cpus in [1u8, 2, 8] {
            let mut p = sample_platform();
            p.cpus = cpus;
            let m = build_madt(&p);
            let lapics: Vec<_> = structures(&m)
                .into_iter()
                .filter(|(t, _)| *t == TYPE_LOCAL_APIC)
                .map(|(_, s)| s)
                .collect();
            assert_eq!(lapics.len(), cpus as usize);
            for (i, s) in lapics.iter().enumerate() {
                // Section 5.2.12.2: type, length 8, ACPI processor UID, APIC ID, flags (bit 0 = enabled).
                assert_eq!(s.len(), 8);
                assert_eq!(s[2] as usize, i, "processor UID");
                assert_eq!(s[3] as usize, i, "APIC ID");
                assert_eq!(le(s, 4, 4), 1, "enabled");
            }
            assert_eq!(byte_sum(&m), 0);
        }
    }

    #[test]
    fn ioapic_override_and_nmi() {
        let m = build_madt(&sample_platform());
        let s = structures(&m);
        let ioapic: Vec<_> = s.iter().filter(|(t, _)| *t == TYPE_IO_APIC).collect();
        assert_eq!(ioapic.len(), 1);
        let io = ioapic[0].1;
        // Section 5.2.12.3: type, length 12, IOAPIC ID, reserved, address, GSI base.
        assert_eq!(io.len(), 12);
        assert_eq!(io[2], 0);
        assert_eq!(le(io, 4, 4), 0xFEC0_0000);
        assert_eq!(le(io, 8, 4), 0);

        let iso: Vec<_> = s
            .iter()
            .filter(|(t, _)| *t == TYPE_INTERRUPT_SOURCE_OVERRIDE)
            .collect();
        assert_eq!(iso.len(), 1);
        assert_eq!(iso[0].1, &[2, 10, 0, 0, 2, 0, 0, 0, 0x05, 0][..]);

        let nmi: Vec<_> = s
            .iter()
            .filter(|(t, _)| *t == TYPE_LOCAL_APIC_NMI)
            .collect();
        assert_eq!(nmi.len(), 1);
        assert_eq!(nmi[0].1, &[4, 6, 0xFF, 0, 0, 1][..]);
    }
}
