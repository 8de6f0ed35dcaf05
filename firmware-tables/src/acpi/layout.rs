//! Placing the tables in guest memory: RSDP first, then XSDT, FACP, DSDT, APIC, MCFG and the extra tables,
//! each 8-byte aligned.

use super::dsdt::build_dsdt;
use super::fadt::build_fadt;
use super::madt::build_madt;
use super::mcfg::build_mcfg;
use super::rsdp::{build_rsdp, RSDP_LEN};
use super::xsdt::{build_xsdt, xsdt_len};
use super::{byte_sum, AcpiError, AcpiPlatform};
use crate::description::{fnv1a64, AcpiTableInfo};

/// One table and the guest physical address it belongs at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiTable {
    /// The 4-character signature ("FACP", "APIC", ...); "RSDP" for the root pointer.
    pub signature: String,
    pub address: u64,
    pub bytes: Vec<u8>,
}

/// All tables of one guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiTables {
    pub rsdp: AcpiTable,
    /// XSDT first, then FACP, DSDT, APIC, MCFG and the extra tables in the order given.
    pub tables: Vec<AcpiTable>,
}

impl AcpiTables {
    /// The RSDP followed by every other table, in address order: what the VMM copies into guest memory.
    pub fn all(&self) -> impl Iterator<Item = &AcpiTable> {
        std::iter::once(&self.rsdp).chain(self.tables.iter())
    }

    /// One past the last byte used (the e820 "ACPI Tables" range is `rsdp.address..end()`).
    pub fn end(&self) -> u64 {
        self.all()
            .map(|t| t.address + t.bytes.len() as u64)
            .max()
            .unwrap_or(self.rsdp.address)
    }

    /// Signature, length and FNV-1a-64 of every table (RSDP included), for the machine description.
    pub fn infos(&self) -> Vec<AcpiTableInfo> {
        self.all()
            .map(|t| AcpiTableInfo {
                signature: t.signature.clone(),
                length: t.bytes.len() as u32,
                fnv1a64: fnv1a64(&t.bytes),
            })
            .collect()
    }
}

fn align8(x: u64) -> Option<u64> {
    x.checked_add(7).map(|v| v & !7)
}

/// Signature of a table as a string (non-ASCII bytes shown as '?').
fn signature_of(bytes: &[u8]) -> String {
    bytes[..4]
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// Checks that an extra table has a header, a matching length field and a valid checksum.
fn check_extra(index: usize, t: &[u8]) -> Result<(), AcpiError> {
    let bad = |reason: String| AcpiError::BadExtraTable { index, reason };
    if t.len() < 36 {
        return Err(bad(format!(
            "{} bytes is shorter than a table header",
            t.len()
        )));
    }
    let len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
    if len as usize != t.len() {
        return Err(bad(format!("length field {len} but {} bytes", t.len())));
    }
    if !t[..4]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return Err(bad("signature is not 4 ASCII characters".into()));
    }
    if byte_sum(t) != 0 {
        return Err(bad("checksum does not sum to zero".into()));
    }
    Ok(())
}

/// Builds every table and lays them out: the RSDP at `rsdp_addr` (16-byte aligned, as ACPI 6.5 section
/// 5.2.5.1 requires), the others packed after it at 8-byte aligned addresses. Everything must end within
/// `limit` bytes of `rsdp_addr`.
///
/// The VMM copies [`AcpiTables::all`] into guest memory, marks `rsdp_addr..end()` as e820 "ACPI Tables", and
/// passes `rsdp_addr` in `boot_params.acpi_rsdp_addr` (Linux also finds it by scanning 0xE0000..0xFFFFF).
pub fn build_acpi(p: &AcpiPlatform, rsdp_addr: u64, limit: u64) -> Result<AcpiTables, AcpiError> {
    if rsdp_addr & 0xF != 0 {
        return Err(AcpiError::RsdpMisaligned(rsdp_addr));
    }
    p.validate()?;
    for (i, t) in p.extra_tables.iter().enumerate() {
        check_extra(i, t)?;
    }

    // Everything but the FADT and XSDT is independent of where it lands.
    let dsdt = build_dsdt(p);
    let madt = build_madt(p);
    let mcfg = build_mcfg(&p.pci);
    let fadt_len = build_fadt(p, 0).len();
    let xsdt_entries = 3 + p.extra_tables.len();

    // Addresses in XSDT order: XSDT, FACP, DSDT, APIC, MCFG, extras.
    let sizes: Vec<usize> = [
        xsdt_len(xsdt_entries),
        fadt_len,
        dsdt.len(),
        madt.len(),
        mcfg.len(),
    ]
    .into_iter()
    .chain(p.extra_tables.iter().map(Vec::len))
    .collect();
    let mut addrs = Vec::with_capacity(sizes.len());
    let mut next = rsdp_addr
        .checked_add(RSDP_LEN as u64)
        .ok_or(AcpiError::AddressOverflow)?;
    for size in &sizes {
        let at = align8(next).ok_or(AcpiError::AddressOverflow)?;
        addrs.push(at);
        next = at
            .checked_add(*size as u64)
            .ok_or(AcpiError::AddressOverflow)?;
    }
    let needed = next - rsdp_addr;
    if needed > limit {
        return Err(AcpiError::DoesNotFit { needed, limit });
    }

    let (xsdt_addr, fadt_addr, dsdt_addr) = (addrs[0], addrs[1], addrs[2]);
    let mut listed = vec![fadt_addr];
    listed.extend_from_slice(&addrs[3..]);
    let xsdt = build_xsdt(&listed);
    let fadt = build_fadt(p, dsdt_addr);

    let mut bodies = vec![xsdt, fadt, dsdt, madt, mcfg];
    bodies.extend(p.extra_tables.iter().cloned());
    let tables = bodies
        .into_iter()
        .zip(addrs)
        .map(|(bytes, address)| AcpiTable {
            signature: signature_of(&bytes),
            address,
            bytes,
        })
        .collect();
    Ok(AcpiTables {
        rsdp: AcpiTable {
            signature: "RSDP".into(),
            address: rsdp_addr,
            bytes: build_rsdp(xsdt_addr),
        },
        tables,
    })
}

/// File names and contents for dumping the tables (`iovmm tables --out DIR`): `RSDP.dat`, `XSDT.dat`,
/// `FACP.dat`, ...; a signature that occurs more than once gets `SIG1.dat`, `SIG2.dat`, ... (the way Linux
/// names them in /sys/firmware/acpi/tables). `iasl -d FILE.dat` disassembles each.
pub fn table_files(t: &AcpiTables) -> Vec<(String, &[u8])> {
    let all: Vec<&AcpiTable> = t.all().collect();
    let mut seen: Vec<(&str, usize)> = Vec::new();
    all.iter()
        .map(|table| {
            let sig = table.signature.as_str();
            let safe: String = sig
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let total = all.iter().filter(|o| o.signature == sig).count();
            let name = if total > 1 {
                let n = match seen.iter_mut().find(|(s, _)| *s == sig) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        seen.push((sig, 1));
                        1
                    }
                };
                format!("{safe}{n}.dat")
            } else {
                format!("{safe}.dat")
            };
            (name, table.bytes.as_slice())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::madt::{structures, TYPE_LOCAL_APIC};
    use super::super::test_support::{le, sample_platform, LIMIT, RSDP_ADDR};
    use super::*;

    fn sample() -> AcpiTables {
        build_acpi(&sample_platform(), RSDP_ADDR, LIMIT).unwrap()
    }

    /// A minimal valid table with the given signature and payload.
    fn extra(sig: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut t = sig.to_vec();
        t.extend_from_slice(&((36 + payload.len()) as u32).to_le_bytes());
        t.extend_from_slice(&[1, 0]);
        t.extend_from_slice(b"IOVMM IOVMMTBL");
        t.extend_from_slice(&[0; 12]);
        t.extend_from_slice(payload);
        t[9] = super::super::checksum_byte(&t);
        t
    }

    #[test]
    fn order_and_signatures() {
        let t = sample();
        let sigs: Vec<&str> = t.tables.iter().map(|t| t.signature.as_str()).collect();
        assert_eq!(sigs, ["XSDT", "FACP", "DSDT", "APIC", "MCFG"]);
        assert_eq!(t.rsdp.signature, "RSDP");
        assert_eq!(t.rsdp.address, RSDP_ADDR);
    }

    #[test]
    fn every_checksum_is_valid() {
        let t = sample();
        for table in &t.tables {
            assert_eq!(byte_sum(&table.bytes), 0, "{}", table.signature);
            assert_eq!(
                le(&table.bytes, 4, 4),
                table.bytes.len() as u64,
                "{}",
                table.signature
            );
        }
        assert_eq!(byte_sum(&t.rsdp.bytes[..20]), 0);
        assert_eq!(byte_sum(&t.rsdp.bytes), 0);
    }

    #[test]
    fn pointers_point_at_the_tables() {
        let t = sample();
        let addr_of = |sig: &str| {
            t.tables
                .iter()
                .find(|x| x.signature == sig)
                .unwrap()
                .address
        };
        // RSDP -> XSDT (offset 24, ACPI 6.5 table 5.3).
        assert_eq!(le(&t.rsdp.bytes, 24, 8), addr_of("XSDT"));
        // XSDT -> FACP, APIC, MCFG (entries from offset 36).
        let xsdt = &t.tables[0].bytes;
        let entries: Vec<u64> = (36..xsdt.len())
            .step_by(8)
            .map(|o| le(xsdt, o, 8))
            .collect();
        assert_eq!(entries, [addr_of("FACP"), addr_of("APIC"), addr_of("MCFG")]);
        // FACP -> DSDT (X_DSDT at offset 140).
        assert_eq!(le(&t.tables[1].bytes, 140, 8), addr_of("DSDT"));
    }

    #[test]
    fn packed_aligned_and_non_overlapping() {
        let t = sample();
        let all: Vec<&AcpiTable> = t.all().collect();
        for pair in all.windows(2) {
            let end = pair[0].address + pair[0].bytes.len() as u64;
            assert_eq!(pair[1].address % 8, 0);
            assert!(pair[1].address >= end);
            assert!(pair[1].address < end + 8, "tables are packed");
        }
        assert!(t.end() <= RSDP_ADDR + LIMIT);
        assert_eq!(
            t.end(),
            all.last()
                .map(|l| l.address + l.bytes.len() as u64)
                .unwrap()
        );
    }

    #[test]
    fn madt_has_the_cpus() {
        let t = sample();
        let madt = &t
            .tables
            .iter()
            .find(|x| x.signature == "APIC")
            .unwrap()
            .bytes;
        let n = structures(madt)
            .iter()
            .filter(|(ty, _)| *ty == TYPE_LOCAL_APIC)
            .count();
        assert_eq!(n, 2);
    }

    #[test]
    fn limit_is_enforced() {
        let t = sample();
        let needed = t.end() - RSDP_ADDR;
        assert!(build_acpi(&sample_platform(), RSDP_ADDR, needed).is_ok());
        assert_eq!(
            build_acpi(&sample_platform(), RSDP_ADDR, needed - 1),
            Err(AcpiError::DoesNotFit {
                needed,
                limit: needed - 1
            })
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(
            build_acpi(&sample_platform(), RSDP_ADDR + 8, LIMIT),
            Err(AcpiError::RsdpMisaligned(RSDP_ADDR + 8))
        );
        assert_eq!(
            build_acpi(&sample_platform(), u64::MAX - 15, u64::MAX),
            Err(AcpiError::AddressOverflow)
        );
        let mut p = sample_platform();
        p.cpus = 0;
        assert!(matches!(
            build_acpi(&p, RSDP_ADDR, LIMIT),
            Err(AcpiError::InvalidPlatform(_))
        ));
    }

    #[test]
    fn extra_tables_are_appended_and_listed() {
        let mut p = sample_platform();
        let dmar = extra(b"DMAR", &[0x26, 1, 0, 0]);
        let ssdt1 = extra(b"SSDT", &[]);
        let ssdt2 = extra(b"SSDT", &[0xA3]);
        p.extra_tables = vec![dmar.clone(), ssdt1, ssdt2];
        let t = build_acpi(&p, RSDP_ADDR, LIMIT).unwrap();
        assert_eq!(t.tables.len(), 8);
        assert_eq!(t.tables[5].bytes, dmar);
        assert_eq!(t.tables[5].signature, "DMAR");
        let xsdt = &t.tables[0].bytes;
        assert_eq!(xsdt.len(), 36 + 6 * 8);
        for (i, table) in t.tables[5..].iter().enumerate() {
            assert_eq!(le(xsdt, 36 + (3 + i) * 8, 8), table.address);
        }
        let names: Vec<String> = table_files(&t).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "RSDP.dat",
                "XSDT.dat",
                "FACP.dat",
                "DSDT.dat",
                "APIC.dat",
                "MCFG.dat",
                "DMAR.dat",
                "SSDT1.dat",
                "SSDT2.dat"
            ]
        );
    }

    #[test]
    fn malformed_extra_tables_are_rejected() {
        let good = extra(b"DMAR", &[1, 2, 3]);
        let mut short = good.clone();
        short.truncate(20);
        let mut bad_len = good.clone();
        bad_len.push(0);
        let mut bad_sum = good.clone();
        bad_sum[37] ^= 1;
        let mut bad_sig = good.clone();
        bad_sig[0] = 0;
        bad_sig[9] = bad_sig[9].wrapping_add(b'D');
        for (i, t) in [short, bad_len, bad_sum, bad_sig].into_iter().enumerate() {
            let mut p = sample_platform();
            p.extra_tables = vec![good.clone(), t];
            assert!(
                matches!(
                    build_acpi(&p, RSDP_ADDR, LIMIT),
                    Err(AcpiError::BadExtraTable { index: 1, .. })
                ),
                "case {i}"
            );
        }
    }

    #[test]
    fn infos_match_the_bytes() {
        let t = sample();
        let infos = t.infos();
        assert_eq!(infos.len(), 6);
        assert_eq!(infos[0].signature, "RSDP");
        assert_eq!(infos[0].length, 36);
        let dsdt = &t.tables[2];
        assert_eq!(infos[3].signature, "DSDT");
        assert_eq!(infos[3].length as usize, dsdt.bytes.len());
        assert_eq!(infos[3].fnv1a64, fnv1a64(&dsdt.bytes));
    }
}
