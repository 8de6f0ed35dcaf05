//! Script scalars: numbers written as JSON integers or as strings (`"0x1000_0000"`, `"4096"`), and byte
//! strings written in hex (`"de ad be ef"`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A 64-bit value: a non-negative JSON integer, or a string holding `0x`-prefixed hex or decimal digits
/// (underscores allowed between digits, as in Rust literals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Num(pub u64);

impl Num {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Parses `0x...` hex or decimal, with `_` separators.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, radix) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (t, 10),
    };
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return Err(format!(
            "`{s}` is not a number (write 0x1f, 31 or a JSON integer)"
        ));
    }
    u64::from_str_radix(&clean, radix).map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => format!("`{s}` does not fit in 64 bits"),
        _ => format!("`{s}` is not a number (write 0x1f, 31 or a JSON integer)"),
    })
}

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:#x}", self.0))
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or a string like \"0x1000\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                u64::try_from(v)
                    .map(Num)
                    .map_err(|_| E::custom(format!("{v} is negative")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Err(E::custom(format!(
                    "{v} is not an integer (large values: write a hex string, \"0x...\")"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                parse_u64(v).map(Num).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Bytes written as a hex string; whitespace between bytes is allowed (`"00 11 22"`, `"001122"`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

pub fn parse_hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("hex bytes `{s}` have an odd number of digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text: String = pair.iter().collect();
            u8::from_str_radix(&text, 16)
                .map_err(|_| format!("`{text}` in `{s}` is not a hex byte"))
        })
        .collect()
}

/// Formats bytes as space-separated hex pairs.
pub fn hex_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex_string(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex_bytes(&s).map(HexBytes).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(json: &str) -> Result<u64, String> {
        serde_json::from_str::<Num>(json)
            .map(Num::get)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_from_integers_and_strings() {
        assert_eq!(num("4096"), Ok(4096));
        assert_eq!(num("\"0x1000\""), Ok(0x1000));
        assert_eq!(num("\"0X1000_0000\""), Ok(0x1000_0000));
        assert_eq!(num("\"0xffffffffffffffff\""), Ok(u64::MAX));
        assert_eq!(num("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(num("\"1_000\""), Ok(1000));
        for bad in [
            "-1", "1.5", "\"0x\"", "\"0x1g\"", "\"ten\"", "\"\"", "\"0x_1\"", "true",
        ] {
            assert!(num(bad).is_err(), "{bad} accepted");
        }
        let e = num("\"0x1_0000_0000_0000_0000\"").unwrap_err();
        assert!(e.contains("64 bits"), "{e}");
        assert_eq!(serde_json::to_string(&Num(255)).unwrap(), "\"0xff\"");
    }

    #[test]
    fn hex_bytes() {
        assert_eq!(
            parse_hex_bytes("de ad\nBE ef"),
            Ok(vec![0xde, 0xad, 0xbe, 0xef])
        );
        assert_eq!(parse_hex_bytes(""), Ok(vec![]));
        assert!(parse_hex_bytes("abc").unwrap_err().contains("odd"));
        assert!(parse_hex_bytes("zz").unwrap_err().contains("zz"));
        assert_eq!(hex_string(&[1, 0xab]), "01 ab");
    }
}
