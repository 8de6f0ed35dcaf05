//! A KTAP v1 parser for console output that also carries kernel, test-host and VMM lines.
//!
//! Everything before `KTAP version 1` is ignored. After it, top-level lines count: the plan `1..N`,
//! `# diagnostic` lines (attached to the next result), `ok N name [# SKIP reason]` and `not ok N name`. Indented
//! lines form the nested KTAP block of the next top-level result (its subtests, parsed the same way after the
//! block's own indentation is removed; its `KTAP version 1` and `# Subtest: name` header lines are not
//! diagnostics). Lines of any other shape (interleaved noise) are ignored. Carriage returns and ANSI escape
//! sequences are removed first.

/// The result of one test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip(String),
}

/// One result line with the diagnostics printed before it, and the subtests of its nested block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResult {
    pub number: u32,
    pub name: String,
    pub status: Status,
    pub diagnostics: Vec<String>,
    /// The results of the nested block printed before this result (empty when there was none).
    pub subtests: Vec<TestResult>,
    /// The nested block's plan `1..N`.
    pub subtest_plan: Option<u32>,
}

/// What the parser found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ktap {
    /// A `KTAP version 1` line was seen.
    pub found: bool,
    /// The plan's test count.
    pub plan: Option<u32>,
    pub results: Vec<TestResult>,
    /// Diagnostics after the last result.
    pub trailing_diagnostics: Vec<String>,
    /// A second `KTAP version 1` header appeared (the guest ran twice); everything after it was ignored.
    pub restarted: bool,
}

impl Ktap {
    pub fn result(&self, number: u32) -> Option<&TestResult> {
        self.results.iter().find(|r| r.number == number)
    }
}

/// Removes ANSI CSI/OSC escape sequences and other control characters except tab.
fn strip_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    // CSI: parameters then one final byte in 0x40..=0x7e.
                    for n in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&n) {
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            }
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

/// Normalises one console line: text after the last carriage return (what a terminal would show), without
/// escape sequences or trailing whitespace.
pub fn normalize(line: &str) -> String {
    let line = line.trim_end_matches(['\r', '\n']);
    let visible = match line.rfind('\r') {
        Some(i) => &line[i + 1..],
        None => line,
    };
    strip_controls(visible).trim_end().to_string()
}

/// Parses `ok N name # directive` (after `ok ` / `not ok `). Returns number, name, directive.
fn parse_result_tail(tail: &str) -> Option<(Option<u32>, String, Option<String>)> {
    let (body, directive) = match tail.split_once(" # ") {
        Some((b, d)) => (b, Some(d.trim().to_string())),
        None => match tail.strip_suffix(" #") {
            Some(b) => (b, Some(String::new())),
            None => (tail, None),
        },
    };
    let body = body.trim();
    let (number, name) = match body.split_once(' ') {
        Some((n, rest)) => match n.parse::<u32>() {
            Ok(n) => (Some(n), rest.trim().trim_start_matches("- ").to_string()),
            Err(_) => (None, body.to_string()),
        },
        None => match body.parse::<u32>() {
            Ok(n) => (Some(n), String::new()),
            Err(_) => (None, body.to_string()),
        },
    };
    Some((number, name, directive))
}

/// Parses a sequence of console lines.
pub fn parse<I, S>(lines: I) -> Ktap
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    parse_document(lines.into_iter().map(|l| normalize(l.as_ref())), false)
}

/// The number of leading blanks (spaces, tabs) of `line`.
fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

/// The subtests of a nested block: its lines without the first line's indentation.
fn parse_nested(block: &[String]) -> Ktap {
    let indent = block.first().map_or(0, |l| indentation(l));
    let dedented = block.iter().map(|l| {
        let strip = indentation(l).min(indent);
        l[strip..].to_string()
    });
    parse_document(dedented, true)
}

/// Parses normalised lines. A nested document starts at once (its header is optional and `# Subtest:` names it);
/// a top-level one after its `KTAP version 1` header.
fn parse_document<I: Iterator<Item = String>>(lines: I, nested: bool) -> Ktap {
    let mut k = Ktap {
        found: nested,
        ..Ktap::default()
    };
    let mut pending: Vec<String> = Vec::new();
    let mut block: Vec<String> = Vec::new();
    for line in lines {
        if !k.found {
            if line.ends_with("KTAP version 1") {
                k.found = true;
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            block.push(line); // the next result's nested block
            continue;
        }
        if line == "KTAP version 1" {
            if nested && k.results.is_empty() && k.plan.is_none() {
                continue; // the nested block's own header
            }
            k.restarted = true;
            break;
        }
        if nested && line.starts_with("# Subtest:") {
            continue;
        }
        if let Some(n) = line.strip_prefix("1..") {
            if k.plan.is_none() {
                if let Some(n) = n
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    k.plan = Some(n);
                }
            }
            continue;
        }
        if line == "#" {
            pending.push(String::new());
            continue;
        }
        if let Some(d) = line.strip_prefix("# ") {
            pending.push(d.to_string());
            continue;
        }
        let (ok, tail) = if let Some(t) = line.strip_prefix("ok ") {
            (true, t)
        } else if let Some(t) = line.strip_prefix("not ok ") {
            (false, t)
        } else {
            continue; // noise
        };
        let Some((number, name, directive)) = parse_result_tail(tail) else {
            continue;
        };
        let skip = directive.as_deref().and_then(|d| {
            let upper = d.to_ascii_uppercase();
            upper.starts_with("SKIP").then(|| d[4..].trim().to_string())
        });
        let status = match (ok, skip) {
            (_, Some(reason)) => Status::Skip(reason),
            (true, None) => Status::Pass,
            (false, None) => Status::Fail,
        };
        let number = number.unwrap_or(k.results.len() as u32 + 1);
        let sub = if block.is_empty() {
            Ktap::default()
        } else {
            parse_nested(&std::mem::take(&mut block))
        };
        k.results.push(TestResult {
            number,
            name,
            status,
            diagnostics: std::mem::take(&mut pending),
            subtests: sub.results,
            subtest_plan: sub.plan,
        });
    }
    k.trailing_diagnostics = pending;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_document() {
        let k = parse([
            "KTAP version 1",
            "1..3",
            "# expected 2 cpus",
            "ok 1 cpus",
            "# missing [0x0-0x9ffff] System RAM",
            "# second line",
            "not ok 2 memory-map",
            "ok 3 msi # SKIP no test device",
        ]);
        assert!(k.found);
        assert_eq!(k.plan, Some(3));
        assert_eq!(k.results.len(), 3);
        assert_eq!(k.results[0].status, Status::Pass);
        assert_eq!(k.results[0].diagnostics, vec!["expected 2 cpus"]);
        assert_eq!(k.results[1].name, "memory-map");
        assert_eq!(k.results[1].status, Status::Fail);
        assert_eq!(k.results[1].diagnostics.len(), 2);
        assert_eq!(k.results[2].status, Status::Skip("no test device".into()));
        assert!(!k.restarted);
    }

    #[test]
    fn interleaved_noise_and_carriage_returns() {
        let k = parse([
            "\u{1b}c\u{1b}[2JSeaBIOS (version 1.16)",
            "ok 9 not-yet-ktap",
            "[    1.234] Run /init as init process\r",
            "iovmm-guest: userspace up\r\r",
            "KTAP version 1\r",
            "1..2\r",
            "iovmm-testhost: something",
            "[    5.000000] kvm: some host message",
            "ok 1 cpus\r\r",
            "garbage\rnot ok 2 kernel-log",
            "iovmm-testhost: exit-status=1",
        ]);
        assert_eq!(k.plan, Some(2));
        let names: Vec<(&str, &Status)> = k
            .results
            .iter()
            .map(|r| (r.name.as_str(), &r.status))
            .collect();
        assert_eq!(
            names,
            vec![("cpus", &Status::Pass), ("kernel-log", &Status::Fail)]
        );
    }

    #[test]
    fn nested_subtests_belong_to_the_next_result() {
        let k = parse([
            "KTAP version 1",
            "1..2",
            "    KTAP version 1",
            "    # Subtest: inner",
            "    1..3",
            "    # mmap() failed",
            "    ok 1 inner.a # SKIP mmap() failed: Cannot allocate memory (12)",
            "[   12.5] vfio-pci 0000:00:03.0: noise between nested lines",
            "    # assertion failed",
            "    not ok 2 inner.b",
            "    ok 3 inner.c",
            "# 1 of 3 cases failed",
            "not ok 1 inner",
            "ok 2 plain",
        ]);
        assert_eq!(k.results.len(), 2);
        let outer = &k.results[0];
        assert_eq!(
            (outer.name.as_str(), &outer.status),
            ("inner", &Status::Fail)
        );
        assert_eq!(outer.diagnostics, vec!["1 of 3 cases failed"]);
        assert_eq!(outer.subtest_plan, Some(3));
        let subs: Vec<(&str, &Status, &[String])> = outer
            .subtests
            .iter()
            .map(|r| (r.name.as_str(), &r.status, r.diagnostics.as_slice()))
            .collect();
        assert_eq!(
            subs,
            vec![
                (
                    "inner.a",
                    &Status::Skip("mmap() failed: Cannot allocate memory (12)".into()),
                    &["mmap() failed".to_string()][..]
                ),
                (
                    "inner.b",
                    &Status::Fail,
                    &["assertion failed".to_string()][..]
                ),
                ("inner.c", &Status::Pass, &[][..]),
            ]
        );
        // The nested block's header is neither a diagnostic nor a restart.
        assert!(!k.restarted);
        assert!(k.results[1].subtests.is_empty());
        assert_eq!(k.results[1].subtest_plan, None);
    }

    #[test]
    fn deeper_nesting_and_tabs() {
        let k = parse([
            "KTAP version 1",
            "1..1",
            "\t1..1",
            "\t\t1..1",
            "\t\tok 1 leaf",
            "\tok 1 middle",
            "ok 1 top",
        ]);
        let top = &k.results[0];
        assert_eq!(top.subtests[0].name, "middle");
        assert_eq!(top.subtests[0].subtests[0].name, "leaf");
    }

    #[test]
    fn missing_results_and_no_ktap() {
        let k = parse(["KTAP version 1", "1..3", "ok 1 a", "# dying"]);
        assert_eq!(k.plan, Some(3));
        assert_eq!(k.results.len(), 1);
        assert!(k.result(2).is_none());
        assert_eq!(k.trailing_diagnostics, vec!["dying"]);

        let k = parse(["ok 1 a", "1..1"]);
        assert!(!k.found);
        assert!(k.results.is_empty());
    }

    #[test]
    fn second_header_stops_parsing() {
        let k = parse([
            "KTAP version 1",
            "1..1",
            "ok 1 a",
            "KTAP version 1",
            "1..1",
            "not ok 1 a",
        ]);
        assert!(k.restarted);
        assert_eq!(k.results.len(), 1);
        assert_eq!(k.results[0].status, Status::Pass);
    }

    #[test]
    fn directives_and_odd_shapes() {
        let k = parse([
            "KTAP version 1",
            "ok 1 - dashed name",
            "not ok 2 skipped-fail # skip lower case",
            "ok unnumbered",
            "ok 4 todo # TODO later",
        ]);
        assert_eq!(k.plan, None);
        assert_eq!(k.results[0].name, "dashed name");
        assert_eq!(k.results[1].status, Status::Skip("lower case".into()));
        assert_eq!(k.results[2].number, 3);
        assert_eq!(k.results[2].name, "unnumbered");
        assert_eq!(k.results[3].status, Status::Pass);
    }

    #[test]
    fn normalize_strips_escapes() {
        assert_eq!(normalize("\u{1b}[0;32mok 1 x\u{1b}[0m\r\n"), "ok 1 x");
        assert_eq!(normalize("abc\rok 1 y"), "ok 1 y");
    }
}
