//! JUnit XML output: one `<testsuite>` per scenario, one `<testcase>` per test.

use std::fmt::Write;

/// How one test case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseOutcome {
    Pass,
    /// `message` goes in the attribute, `details` (diagnostics) in the element text.
    Fail {
        message: String,
        details: String,
    },
    Skip {
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub classname: String,
    pub outcome: CaseOutcome,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Suite {
    pub name: String,
    pub time_secs: f64,
    pub cases: Vec<Case>,
    /// Extra text for `<system-out>` (e.g. the host mode and log path).
    pub system_out: Option<String>,
}

impl Suite {
    pub fn failures(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, CaseOutcome::Fail { .. }))
            .count()
    }

    pub fn skipped(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, CaseOutcome::Skip { .. }))
            .count()
    }
}

/// Escapes text for XML attributes and element content; drops characters XML 1.0 cannot carry.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Renders the XML document.
pub fn render(suites: &[Suite]) -> String {
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(Suite::failures).sum();
    let skipped: usize = suites.iter().map(Suite::skipped).sum();
    let time: f64 = suites.iter().map(|s| s.time_secs).sum();
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">"
    );
    for s in suites {
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
            escape(&s.name),
            s.cases.len(),
            s.failures(),
            s.skipped(),
            s.time_secs
        );
        for c in &s.cases {
            let open = format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
                escape(&c.name),
                escape(&c.classname)
            );
            match &c.outcome {
                CaseOutcome::Pass => {
                    let _ = writeln!(x, "{open}/>");
                }
                CaseOutcome::Fail { message, details } => {
                    let _ = writeln!(
                        x,
                        "{open}>\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(message),
                        escape(details)
                    );
                }
                CaseOutcome::Skip { message } => {
                    let _ = writeln!(
                        x,
                        "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(message)
                    );
                }
            }
        }
        if let Some(out) = &s.system_out {
            let _ = writeln!(x, "    <system-out>{}</system-out>", escape(out));
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite() -> Suite {
        Suite {
            name: "boot".into(),
            time_secs: 1.5,
            cases: vec![
                Case {
                    name: "cpus".into(),
                    classname: "iovmm.boot".into(),
                    outcome: CaseOutcome::Pass,
                },
                Case {
                    name: "memory-map".into(),
                    classname: "iovmm.boot".into(),
                    outcome: CaseOutcome::Fail {
                        message: "missing <RAM> & \"ACPI\"".into(),
                        details: "line1\nline2 \u{1b}[0m".into(),
                    },
                },
                Case {
                    name: "msi".into(),
                    classname: "iovmm.boot".into(),
                    outcome: CaseOutcome::Skip {
                        message: "no device".into(),
                    },
                },
            ],
            system_out: Some("host mode: tcg".into()),
        }
    }

    #[test]
    fn subtest_cases_carry_their_test_in_the_classname() {
        let s = Suite {
            name: "upstream-vfio-legacy".into(),
            time_secs: 2.0,
            cases: vec![
                Case {
                    name:
                        "vfio_dma_mapping_test.vfio_type1_iommu_anonymous_hugetlb_1gb.dma_map_unmap"
                            .into(),
                    classname: "iovmm.upstream-vfio-legacy.vfio_dma_mapping_test".into(),
                    outcome: CaseOutcome::Skip {
                        message: "mmap() failed: Cannot allocate memory (12)".into(),
                    },
                },
                Case {
                    name: "vfio_dma_mapping_test.iommufd_anonymous.dma_map_unmap".into(),
                    classname: "iovmm.upstream-vfio-legacy.vfio_dma_mapping_test".into(),
                    outcome: CaseOutcome::Pass,
                },
            ],
            system_out: None,
        };
        let x = render(&[s]);
        assert!(
            x.contains("tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains(
            "<testcase name=\"vfio_dma_mapping_test.iommufd_anonymous.dma_map_unmap\" \
             classname=\"iovmm.upstream-vfio-legacy.vfio_dma_mapping_test\" time=\"0\"/>"
        ));
        assert!(x.contains("<skipped message=\"mmap() failed: Cannot allocate memory (12)\"/>"));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("x\u{1}\u{1b}y\nz"), "xy\nz");
    }

    #[test]
    fn counts_and_elements() {
        let x = render(&[suite()]);
        assert!(x.starts_with("<?xml version=\"1.0\""));
        assert!(x.contains(
            "<testsuites tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"1.500\">"
        ));
        assert!(x.contains(
            "<testsuite name=\"boot\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""
        ));
        assert!(x.contains("<testcase name=\"cpus\" classname=\"iovmm.boot\" time=\"0\"/>"));
        assert!(x.contains(
            "<failure message=\"missing &lt;RAM&gt; &amp; &quot;ACPI&quot;\">line1\nline2 [0m</failure>"
        ));
        assert!(x.contains("<skipped message=\"no device\"/>"));
        assert!(x.contains("<system-out>host mode: tcg</system-out>"));
        assert_eq!(x.matches("<testcase ").count(), 3);
        assert_eq!(x.matches("</testcase>").count(), 2);
        assert!(x.trim_end().ends_with("</testsuites>"));
    }
}
