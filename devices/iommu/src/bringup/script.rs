//! The script format (serde, JSON). See the module documentation of [`super`] for a summary and
//! `devices/iommu/bringup/*.json` for complete examples.
//!
//! Every struct refuses unknown fields, so a misspelt key is an error rather than a silently skipped
//! check. Every step accepts an optional `note`, echoed in the report.

use serde::{Deserialize, Serialize};

use super::num::{HexBytes, Num};
use crate::request::{Access, Perms};

/// A whole script.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The model and its options, as `--iommu` takes them: `"vtd,sm=off"`, `"smmuv3,caching=off"`.
    pub model: String,
    /// Guest RAM: disjoint regions, the rest of the address space is not memory.
    #[serde(default)]
    pub memory: Vec<MemRegion>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemRegion {
    pub base: Num,
    pub size: Num,
}

/// One step. Externally tagged: `{"mmio_write": {"offset": "0x18", "size": 4, "value": 0}}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Store values in guest memory (little-endian).
    MemWrite(MemWrite),
    /// Fill `len` bytes with `byte`.
    MemFill(MemFill),
    /// Compare guest memory with values, under an optional mask.
    MemExpect(MemExpect),
    /// A register write of 4 or 8 bytes.
    MmioWrite(MmioWrite),
    /// A register read compared with `value` under an optional mask.
    MmioExpect(MmioExpect),
    /// Read a register until `(read & mask) == value`, at most `max_reads` times.
    MmioPoll(MmioPoll),
    /// One DMA request through the model's translation port, with the expected translation or fault.
    Dma(Dma),
    /// The oldest interrupt the model sent that no step has checked yet must be this one.
    ExpectMsi(ExpectMsi),
    /// The model sent no interrupt that no step has checked yet.
    ExpectNoMsi(NoteOnly),
    /// A model-specific interface that is not MMIO (hypercalls, firmware calls, test hooks).
    Call(Call),
    /// Run `steps` `times` times.
    Repeat(Repeat),
}

impl Step {
    /// The step's tag, as written in scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::MemWrite(_) => "mem_write",
            Step::MemFill(_) => "mem_fill",
            Step::MemExpect(_) => "mem_expect",
            Step::MmioWrite(_) => "mmio_write",
            Step::MmioExpect(_) => "mmio_expect",
            Step::MmioPoll(_) => "mmio_poll",
            Step::Dma(_) => "dma",
            Step::ExpectMsi(_) => "expect_msi",
            Step::ExpectNoMsi(_) => "expect_no_msi",
            Step::Call(_) => "call",
            Step::Repeat(_) => "repeat",
        }
    }

    pub fn note(&self) -> Option<&str> {
        match self {
            Step::MemWrite(s) => s.note.as_deref(),
            Step::MemFill(s) => s.note.as_deref(),
            Step::MemExpect(s) => s.note.as_deref(),
            Step::MmioWrite(s) => s.note.as_deref(),
            Step::MmioExpect(s) => s.note.as_deref(),
            Step::MmioPoll(s) => s.note.as_deref(),
            Step::Dma(s) => s.note.as_deref(),
            Step::ExpectMsi(s) => s.note.as_deref(),
            Step::ExpectNoMsi(s) => s.note.as_deref(),
            Step::Call(s) => s.note.as_deref(),
            Step::Repeat(s) => s.note.as_deref(),
        }
    }
}

/// Values for memory: exactly one of `u64s`, `u32s` (each must fit 32 bits) or `bytes` (hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    U64s(Vec<u64>),
    U32s(Vec<u32>),
    Bytes(Vec<u8>),
}

impl Data {
    /// Element width in bytes.
    pub fn width(&self) -> usize {
        match self {
            Data::U64s(_) => 8,
            Data::U32s(_) => 4,
            Data::Bytes(_) => 1,
        }
    }

    /// The values as little-endian bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Data::U64s(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U32s(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bytes(v) => v.clone(),
        }
    }

    /// The values widened to u64 (bytes one by one).
    pub fn values(&self) -> Vec<u64> {
        match self {
            Data::U64s(v) => v.clone(),
            Data::U32s(v) => v.iter().map(|x| u64::from(*x)).collect(),
            Data::Bytes(v) => v.iter().map(|x| u64::from(*x)).collect(),
        }
    }
}

/// The three spellings of memory contents, as they appear in a step (checked by [`MemValues::data`]).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemValues {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u64s: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u32s: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<HexBytes>,
}

impl MemValues {
    pub fn data(&self) -> Result<Data, String> {
        match (&self.u64s, &self.u32s, &self.bytes) {
            (Some(v), None, None) => Ok(Data::U64s(v.iter().map(|n| n.0).collect())),
            (None, Some(v), None) => v
                .iter()
                .map(|n| {
                    u32::try_from(n.0).map_err(|_| format!("u32s value {n} does not fit 32 bits"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Data::U32s),
            (None, None, Some(b)) => Ok(Data::Bytes(b.0.clone())),
            _ => Err("give exactly one of `u64s`, `u32s` or `bytes`".into()),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemWrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub addr: Num,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u64s: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u32s: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<HexBytes>,
}

impl MemWrite {
    pub fn values(&self) -> MemValues {
        MemValues {
            u64s: self.u64s.clone(),
            u32s: self.u32s.clone(),
            bytes: self.bytes.clone(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemFill {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub addr: Num,
    pub len: Num,
    #[serde(default)]
    pub byte: Num,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub addr: Num,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u64s: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u32s: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<HexBytes>,
    /// Applied to every element (so at most as wide as one): only the bits set are compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Num>,
}

impl MemExpect {
    pub fn values(&self) -> MemValues {
        MemValues {
            u64s: self.u64s.clone(),
            u32s: self.u32s.clone(),
            bytes: self.bytes.clone(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MmioWrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub offset: Num,
    pub size: u8,
    pub value: Num,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MmioExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub offset: Num,
    pub size: u8,
    pub value: Num,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Num>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MmioPoll {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub offset: Num,
    pub size: u8,
    pub value: Num,
    pub mask: Num,
    pub max_reads: Num,
}

/// `"read"` or `"write"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptAccess {
    Read,
    Write,
}

impl From<ScriptAccess> for Access {
    fn from(a: ScriptAccess) -> Access {
        match a {
            ScriptAccess::Read => Access::Read,
            ScriptAccess::Write => Access::Write,
        }
    }
}

/// `"untranslated"` (the default: a DMA access, faults are recorded) or `"translation_request"` (ATS
/// style: the result goes back to the device, nothing is recorded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptKind {
    #[default]
    Untranslated,
    TranslationRequest,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dma {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// VT-d: PCI requester id; SMMUv3: StreamID.
    pub source_id: Num,
    /// VT-d: PASID; SMMUv3: SubstreamID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pasid: Option<Num>,
    pub iova: Num,
    pub access: ScriptAccess,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub kind: ScriptKind,
    pub expect: DmaExpect,
}

/// Either `output` (with optional `page_size` and `perms`) or `fault`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DmaExpect {
    /// The output address of the request's IOVA (not of its page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<Num>,
    /// Letters of the translation's permissions: `"rw"`, `"r"`, `"w"`, `"rwx"`, ... or `"none"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultExpect>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultExpect {
    /// The architected code: VT-d fault reason, SMMUv3 event id.
    pub reason: Num,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<bool>,
}

/// Parses permission letters (`r`, `w`, `x`, in any order, each at most once; `none` or `-` for none).
pub fn parse_perms(s: &str) -> Result<Perms, String> {
    let mut p = Perms::default();
    if s == "none" || s == "-" {
        return Ok(p);
    }
    if s.is_empty() {
        return Err("perms: empty (write \"none\" for no permission)".into());
    }
    for c in s.chars() {
        let slot = match c {
            'r' => &mut p.read,
            'w' => &mut p.write,
            'x' => &mut p.exec,
            _ => return Err(format!("perms `{s}`: `{c}` is not r, w or x")),
        };
        if *slot {
            return Err(format!("perms `{s}`: `{c}` given twice"));
        }
        *slot = true;
    }
    Ok(p)
}

/// Formats permissions as [`parse_perms`] reads them.
pub fn perms_string(p: Perms) -> String {
    let s: String = [(p.read, 'r'), (p.write, 'w'), (p.exec, 'x')]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect();
    if s.is_empty() {
        "none".into()
    } else {
        s
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectMsi {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub address: Num,
    pub data: Num,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoteOnly {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub name: String,
    #[serde(default)]
    pub args: Vec<Num>,
    /// Absent: the call must succeed, whatever it returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<CallExpect>,
}

/// Exactly one of `values` (the call succeeds and returns exactly these) or `error` (the call fails
/// with a message containing this text).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CallExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub times: Num,
    pub steps: Vec<Step>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_round_trip() {
        for s in ["r", "w", "rw", "rwx", "x", "none"] {
            assert_eq!(perms_string(parse_perms(s).unwrap()), s);
        }
        assert_eq!(parse_perms("wr").unwrap(), Perms::RW);
        assert!(parse_perms("rr").unwrap_err().contains("twice"));
        assert!(parse_perms("q").is_err());
        assert!(parse_perms("").is_err());
    }

    #[test]
    fn steps_parse_with_notes_and_refuse_unknown_fields() {
        let s: Step = serde_json::from_str(
            r#"{"mmio_write": {"note": "GCMD.TE", "offset": "0x18", "size": 4, "value": "0x80000000"}}"#,
        )
        .unwrap();
        assert_eq!(s.kind(), "mmio_write");
        assert_eq!(s.note(), Some("GCMD.TE"));
        let e =
            serde_json::from_str::<Step>(r#"{"mmio_write": {"offset": 0, "size": 4, "vaule": 1}}"#)
                .unwrap_err()
                .to_string();
        assert!(e.contains("vaule"), "{e}");
        let e = serde_json::from_str::<Step>(r#"{"mmio_wirte": {}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mmio_wirte"), "{e}");
    }

    #[test]
    fn mem_values_need_exactly_one_spelling() {
        let v = MemValues {
            u32s: Some(vec![Num(1), Num(0xffff_ffff)]),
            ..Default::default()
        };
        assert_eq!(v.data(), Ok(Data::U32s(vec![1, 0xffff_ffff])));
        assert_eq!(
            v.data().unwrap().to_bytes(),
            [1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]
        );
        let too_big = MemValues {
            u32s: Some(vec![Num(1 << 32)]),
            ..Default::default()
        };
        assert!(too_big.data().unwrap_err().contains("32 bits"));
        assert!(MemValues::default().data().is_err());
        let two = MemValues {
            u64s: Some(vec![]),
            bytes: Some(HexBytes(vec![])),
            ..Default::default()
        };
        assert!(two.data().is_err());
    }
}
