//! The kernel's `crc32_le(~0, buf, len)`: reflected CRC-32 (polynomial 0xEDB88320), initial value `!0` and
//! **no** final inversion. This is what both `pci_endpoint_test.c` and `pci-epf-test.c` put in the CHECKSUM
//! register; it equals the bitwise NOT of the usual zlib/IEEE CRC-32.

const POLY: u32 = 0xedb8_8320;

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Continues the little-endian CRC `crc` over `buf` (the kernel's `crc32_le(crc, buf, len)`).
pub fn crc32_le(mut crc: u32, buf: &[u8]) -> u32 {
    for &b in buf {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// The checksum the endpoint test protocol uses: `crc32_le(~0, buf, len)`.
pub fn checksum(buf: &[u8]) -> u32 {
    crc32_le(!0, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_is_the_inverted_ieee_crc() {
        // The IEEE CRC-32 check value of "123456789" is 0xCBF43926 (with the final inversion).
        assert_eq!(checksum(b"123456789"), !0xcbf4_3926);
        assert_eq!(checksum(b"123456789"), 0x340b_c6d9);
    }

    #[test]
    fn empty_buffer_keeps_the_seed() {
        assert_eq!(checksum(&[]), 0xffff_ffff);
    }

    #[test]
    fn bitwise_reference_agrees_and_streaming_composes() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        let mut bitwise = !0u32;
        for &b in &data {
            bitwise ^= u32::from(b);
            for _ in 0..8 {
                bitwise = if bitwise & 1 != 0 {
                    (bitwise >> 1) ^ POLY
                } else {
                    bitwise >> 1
                };
            }
        }
        assert_eq!(checksum(&data), bitwise);
        let (a, b) = data.split_at(333);
        assert_eq!(crc32_le(crc32_le(!0, a), b), checksum(&data));
    }
}
