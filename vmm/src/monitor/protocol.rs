//! Monitor protocol: one JSON object per line each way.
//!
//! Request: `{"cmd": "permitted-ranges", "source": "00:03.0"}`. Response: `{"ok": true, "result": ...}` or
//! `{"ok": false, "error": "message"}`. The same types back `iovmm debug`.

use serde::{Deserialize, Serialize};

/// Longest request line accepted (bytes, without the newline). Longer lines are answered with an error and
/// skipped up to their newline; the connection stays usable.
pub const MAX_LINE: usize = 64 * 1024;

/// A monitor request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The IOMMUs of this VM, their options, id registers and the sources behind them.
    QueryIommus,
    /// Permitted IOVA windows for one source (BDF "00:03.0" / stream id / LIOBN).
    PermittedRanges { source: String },
    /// Side-effect-free walk of the live tables for one IOVA.
    Translate {
        source: String,
        #[serde(default)]
        pasid: Option<u32>,
        iova: u64,
        #[serde(default)]
        write: bool,
    },
    /// Every mapping of a source (IOVA ranges -> output, page sizes, permissions); `dot` adds Graphviz.
    DumpTables {
        source: String,
        #[serde(default)]
        pasid: Option<u32>,
        #[serde(default)]
        dot: bool,
    },
    /// Counters: IOTLB hits/misses/evictions, walks, faults by reason, invalidations by type.
    Stats,
    /// Exercise driver error paths: make the next `count` translations of `source` fail with `reason`
    /// (architected code), and/or hold invalidation-wait completion for `hold_invalidations_ms`.
    InjectFault {
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        reason: Option<u32>,
        #[serde(default = "one")]
        count: u32,
        #[serde(default)]
        hold_invalidations_ms: Option<u64>,
    },
}

/// A monitor response line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn ok(result: serde_json::Value) -> Self {
        Self {
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    pub fn error(msg: impl Into<String>) -> Self {
        Self {
            ok: false,
            result: None,
            error: Some(msg.into()),
        }
    }
}

fn one() -> u32 {
    1
}

/// Parses a PCI BDF "BB:DD.F" or "SSSS:BB:DD.F" (segment 0 only) into a 16-bit requester id.
pub fn parse_bdf(s: &str) -> Result<u16, String> {
    let err = || format!("bad source {s:?}: expected a PCI BDF like 00:03.0");
    let rest = match s.split(':').count() {
        3 => {
            let (seg, rest) = s.split_once(':').ok_or_else(err)?;
            if u16::from_str_radix(seg, 16).map_err(|_| err())? != 0 {
                return Err(format!("bad source {s:?}: only PCI segment 0 exists"));
            }
            rest
        }
        2 => s,
        _ => return Err(err()),
    };
    let (bus, devfn) = rest.split_once(':').ok_or_else(err)?;
    let (dev, func) = devfn.split_once('.').ok_or_else(err)?;
    let bus = u8::from_str_radix(bus, 16).map_err(|_| err())?;
    let dev = u8::from_str_radix(dev, 16).map_err(|_| err())?;
    let func = u8::from_str_radix(func, 16).map_err(|_| err())?;
    if dev > 31 || func > 7 {
        return Err(err());
    }
    Ok(u16::from(bus) << 8 | u16::from(dev) << 3 | u16::from(func))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let r: Request =
            serde_json::from_str(r#"{"cmd":"translate","source":"00:03.0","iova":4096}"#).unwrap();
        assert_eq!(
            r,
            Request::Translate {
                source: "00:03.0".into(),
                pasid: None,
                iova: 4096,
                write: false
            }
        );
        let s = serde_json::to_string(&Request::Stats).unwrap();
        assert_eq!(s, r#"{"cmd":"stats"}"#);
        assert!(serde_json::from_str::<Request>(
            r#"{"cmd":"translate","source":"00:03.0","iova":1,"x":1}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
        let r: Request =
            serde_json::from_str(r#"{"cmd":"inject-fault","source":"00:03.0","reason":121}"#)
                .unwrap();
        let expected = Request::InjectFault {
            source: Some("00:03.0".into()),
            reason: Some(121),
            count: 1,
            hold_invalidations_ms: None,
        };
        assert_eq!(r, expected);
    }

    #[test]
    fn bdf_parsing() {
        assert_eq!(parse_bdf("00:03.0"), Ok(0x18));
        assert_eq!(parse_bdf("0000:01:1f.7"), Ok(0x1ff));
        assert!(parse_bdf("0001:00:03.0").unwrap_err().contains("segment"));
        for bad in ["", "3", "00:20.0", "00:03.8", "zz:00.0", "00:03"] {
            assert!(parse_bdf(bad).is_err(), "{bad}");
        }
    }
}
