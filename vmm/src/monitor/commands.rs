//! What monitor requests do, against the VM's live IOMMU.

use std::sync::Arc;

use serde_json::json;

use super::protocol::{parse_bdf, Request, Response};
use crate::iommus::IommuUnit;

/// The part of a running VM the monitor may look at.
pub struct MonitorTarget {
    pub iommu: Option<IommuUnit>,
    /// Requester ids of the devices behind the IOMMU.
    pub sources: Vec<u16>,
}

fn bdf_string(id: u16) -> String {
    format!("{:02x}:{:02x}.{}", id >> 8, (id >> 3) & 0x1f, id & 7)
}

impl MonitorTarget {
    pub fn new(iommu: Option<IommuUnit>, sources: Vec<u16>) -> Self {
        Self { iommu, sources }
    }

    /// A target over a detached unit (no guest), for tests and `iovmm debug ranges`.
    pub fn detached(options: &str) -> Result<Self, String> {
        let config: crate::iommus::IommuConfig = options.parse().map_err(|e| format!("{e}"))?;
        let unit = IommuUnit::new(
            &config,
            Arc::new(iommu::mem::TestMemory::new(0)),
            Arc::new(crate::platform::DiscardMsi),
        );
        Ok(Self::new(Some(unit), crate::platform::dma_sources()))
    }

    #[cfg(test)]
    pub fn for_tests(options: &str) -> Self {
        Self::detached(options).expect("valid options")
    }

    fn unit(&self) -> Result<&IommuUnit, String> {
        self.iommu
            .as_ref()
            .ok_or_else(|| "this VM has no IOMMU (start it with --iommu)".to_string())
    }

    fn source(&self, s: &str) -> Result<u16, String> {
        let id = parse_bdf(s)?;
        if !self.sources.contains(&id) {
            let known: Vec<String> = self.sources.iter().map(|&s| bdf_string(s)).collect();
            return Err(format!(
                "no device {s} behind the IOMMU (known: {})",
                known.join(", ")
            ));
        }
        Ok(id)
    }

    /// Answers one request.
    pub fn handle(&self, req: &Request) -> Response {
        match self.try_handle(req) {
            Ok(v) => Response::ok(v),
            Err(e) => Response::error(e),
        }
    }

    fn try_handle(&self, req: &Request) -> Result<serde_json::Value, String> {
        match req {
            Request::QueryIommus => Ok(json!(self
                .iommu
                .iter()
                .map(|u| {
                    let mut info = serde_json::to_value(u.info(crate::platform::test_device_bdf()))
                        .map_err(|e| e.to_string())?;
                    info["sources"] = json!(self
                        .sources
                        .iter()
                        .map(|&s| bdf_string(s))
                        .collect::<Vec<_>>());
                    Ok(info)
                })
                .collect::<Result<Vec<_>, String>>()?)),
            Request::PermittedRanges { source } => {
                let id = self.source(source)?;
                let ranges = self.unit()?.permitted_ranges(id);
                Ok(json!({
                    "source": bdf_string(id),
                    "windows": ranges.windows(),
                    "text": ranges.to_string(),
                }))
            }
            Request::Stats => self.unit()?.stats_json(),
            Request::Translate {
                source,
                pasid,
                iova,
                write,
            } => {
                let id = self.source(source)?;
                self.unit()?.lookup_json(id, *pasid, *iova, *write)
            }
            Request::DumpTables { source, pasid, dot } => {
                let id = self.source(source)?;
                self.unit()?.dump_json(id, *pasid, *dot)
            }
            Request::InjectFault {
                source,
                reason,
                count,
                hold_invalidations_ms,
            } => {
                let unit = self.unit()?;
                let mut done = serde_json::Map::new();
                match (source, reason) {
                    (Some(source), Some(reason)) => {
                        let id = self.source(source)?;
                        unit.inject_fault(id, *reason, *count)?;
                        let fault =
                            json!({ "source": bdf_string(id), "reason": reason, "count": count });
                        done.insert("fault".into(), fault);
                    }
                    (None, None) => {}
                    _ => return Err("inject-fault: give both source and reason".into()),
                }
                if let Some(ms) = hold_invalidations_ms {
                    unit.hold_invalidations(std::time::Duration::from_millis(*ms))?;
                    done.insert("hold_invalidations_ms".into(), json!(ms));
                }
                if done.is_empty() {
                    return Err("inject-fault: nothing to do (give source and reason, and/or hold_invalidations_ms)".into());
                }
                Ok(serde_json::Value::Object(done))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_errors() {
        let t = MonitorTarget::for_tests("vtd,aw=48");
        let r = t.handle(&Request::PermittedRanges {
            source: "00:03.0".into(),
        });
        assert!(r.ok);
        assert_eq!(
            r.result.unwrap()["text"],
            "[0x0..=0xfedfffff, 0xfef00000..=0xffffffffffff]"
        );
        let r = t.handle(&Request::PermittedRanges {
            source: "00:04.0".into(),
        });
        assert!(r.ok, "the endpoint test function is behind the IOMMU too");
        let r = t.handle(&Request::PermittedRanges {
            source: "00:05.0".into(),
        });
        assert!(r.error.unwrap().contains("no device 00:05.0"));
        let none = MonitorTarget::new(None, vec![]);
        assert!(none
            .handle(&Request::Stats)
            .error
            .unwrap()
            .contains("no IOMMU"));
    }

    #[test]
    fn query_lists_the_unit() {
        let t = MonitorTarget::for_tests("vtd,sm=off");
        let r = t.handle(&Request::QueryIommus).result.unwrap();
        assert_eq!(r[0]["model"], "vtd");
        assert_eq!(r[0]["sources"][0], "00:03.0");
        assert!(r[0]["options"].as_str().unwrap().contains("sm=off"));
    }

    #[test]
    fn inject_fault_reaches_the_model() {
        let t = MonitorTarget::for_tests("vtd");
        let req = |source: Option<&str>, reason: Option<u32>, hold| Request::InjectFault {
            source: source.map(String::from),
            reason,
            count: 2,
            hold_invalidations_ms: hold,
        };
        assert!(t.handle(&req(Some("00:03.0"), Some(0x79), None)).ok);
        assert!(t.handle(&req(None, None, Some(5))).ok);
        assert!(
            !t.handle(&req(Some("00:03.0"), Some(0xee), None)).ok,
            "unknown reason"
        );
        assert!(!t.handle(&req(Some("00:03.0"), None, None)).ok);
        assert!(!t.handle(&req(None, None, None)).ok);
    }

    #[test]
    fn dump_and_translate_answer_without_a_guest() {
        // A detached unit has translation disabled: both commands still answer (and say so).
        let t = MonitorTarget::for_tests("vtd");
        let d = t.handle(&Request::DumpTables {
            source: "00:03.0".into(),
            pasid: None,
            dot: true,
        });
        let d = d.result.unwrap();
        assert!(
            d["mode"].is_string() && d["dot"].as_str().unwrap().contains("digraph"),
            "{d}"
        );
        let l = t.handle(&Request::Translate {
            source: "00:03.0".into(),
            pasid: None,
            iova: 0x1000,
            write: false,
        });
        let l = l.result.unwrap();
        assert!(
            l["steps"].is_array() && (l["result"].is_object() || l["fault"].is_object()),
            "{l}"
        );
    }

    #[test]
    fn stats_are_json() {
        let t = MonitorTarget::for_tests("vtd");
        let r = t.handle(&Request::Stats);
        assert!(r.ok && r.result.unwrap().is_object());
    }

    /// The SMMUv3 and TCE answers have the VT-d shape the CLI renders (steps, result or fault).
    #[test]
    fn smmuv3_and_tce_answer_every_verb() {
        let translate = |t: &MonitorTarget, iova| {
            t.handle(&Request::Translate {
                source: "00:03.0".into(),
                pasid: None,
                iova,
                write: true,
            })
            .result
            .unwrap()
        };
        // SMMUEN=0 and GBPA bypass: the identity, with no structure read.
        let s = MonitorTarget::for_tests("smmuv3");
        let l = translate(&s, 0x1234_5678);
        assert_eq!(l["result"]["output"], 0x1234_5678, "{l}");
        assert_eq!(l["result"]["stage"], "global-bypass", "{l}");
        assert_eq!(l["steps"].as_array().unwrap().len(), 0);
        let r = s.handle(&Request::QueryIommus).result.unwrap();
        assert_eq!(r[0]["model"], "smmuv3");
        assert!(s.handle(&Request::Stats).ok);
        assert!(
            s.handle(&Request::DumpTables {
                source: "00:03.0".into(),
                pasid: None,
                dot: false
            })
            .ok
        );

        // TCE: the seed's windows; with no RAM behind the pool the window has no table yet, so an IOBA inside
        // it faults and one outside every window is NO_WINDOW.
        let t = MonitorTarget::for_tests("tce");
        let r = t
            .handle(&Request::PermittedRanges {
                source: "00:03.0".into(),
            })
            .result
            .unwrap();
        assert_eq!(
            r["text"],
            "[0x0..=0x3fffffff, 0x800000000000000..=0x8001fffffffffff]"
        );
        let l = translate(&t, 0x1000);
        assert!(l["fault"].is_object(), "{l}");
        assert_eq!(l["lookup"]["window"]["liobn"], 0x8000_0000u32, "{l}");
        let l = translate(&t, 0x4000_0000);
        assert_eq!(l["fault"]["reason"], iommu::tce::reason::NO_WINDOW, "{l}");
        assert!(l["lookup"]["window"].is_null(), "{l}");
        let st = t.handle(&Request::Stats).result.unwrap();
        assert_eq!(st["eeh"]["frozen"], false, "lookups never freeze: {st}");
    }
}
