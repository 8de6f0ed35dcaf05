//! The host half of the guest's `monitor-check` (VT-d) and `smmuv3-monitor` (SMMUv3): when the guest prints
//! `iovmm-guest: monitor-check source=.. iova=.. expect-output=.. expect-levels=N [pasid=N]` (its nested tables
//! stay installed for a few seconds), ask the running VMM's monitor to walk that IOVA
//! (`iovmm debug translate --monitor SOCK --source .. [--pasid N] --iova .. --json`) and compare the walk's final
//! output address (`.result.output`) and its number of first-stage steps (VT-d `"first-stage Ln"`, SMMUv3
//! `"stage-1 Ln"`) with the expectation. The answer is one line,
//! `iovmm-monitor-check: ok ...` or `iovmm-monitor-check: not ok <why>`, which the verdict turns into the
//! JUnit case [`CASE`] (no line at all is a failure).
//!
//! Native mode does this in Rust ([`answer`]); inside the TCG test host a busybox-sh loop in `run.sh` does the
//! same with sed and grep ([`shell_function`]), since the test host has no Rust tooling and no jq.

use std::path::Path;
use std::process::Command;

use crate::guest::vtd::nest::monitor::Request;

/// Prefix of the answer line.
pub const RESULT: &str = "iovmm-monitor-check:";
/// The JUnit case the answer becomes.
pub const CASE: &str = "monitor-walk";
/// Where the monitor socket lives inside the test host.
pub const HOST_SOCKET: &str = "/tmp/iovmm.sock";

/// What the walk said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walked {
    pub output: Option<u64>,
    pub first_stage_steps: usize,
}

/// Whether a step's `structure` names a first-stage paging entry: VT-d `"first-stage L4"`, SMMUv3
/// `"stage-1 L0"` (the stage-2 walks of the tables' addresses are `"second-stage Ln"` / `"stage-2 Ln"`; the
/// raw lookup's `{"kind": ..}` objects are not steps of the answer).
fn is_first_stage(structure: &serde_json::Value) -> bool {
    structure
        .as_str()
        .is_some_and(|s| s.starts_with("first-stage") || s.starts_with("stage-1 L"))
}

/// Reads `iovmm debug translate --json` output.
pub fn parse_walk(json: &str) -> Result<Walked, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("translate answer is not JSON: {e}"))?;
    let steps = v["steps"]
        .as_array()
        .ok_or_else(|| "translate answer has no steps array".to_string())?;
    Ok(Walked {
        output: v["result"]["output"].as_u64(),
        first_stage_steps: steps
            .iter()
            .filter(|s| is_first_stage(&s["structure"]))
            .count(),
    })
}

/// Compares a walk with the request; the answer line.
pub fn judge(req: &Request, walked: &Walked, json: &str) -> String {
    let mut why = Vec::new();
    match walked.output {
        Some(o) if o == req.output => {}
        Some(o) => why.push(format!("output {o:#x}, expected {:#x}", req.output)),
        None => why.push(format!(
            "no result.output (fault?): {}",
            json.split_whitespace()
                .collect::<String>()
                .chars()
                .take(300)
                .collect::<String>()
        )),
    }
    if walked.first_stage_steps != usize::from(req.levels) {
        why.push(format!(
            "{} first-stage steps, expected {}",
            walked.first_stage_steps, req.levels
        ));
    }
    if why.is_empty() {
        format!(
            "{RESULT} ok {:#x} -> {:#x} in {} first-stage steps",
            req.iova, req.output, req.levels
        )
    } else {
        format!("{RESULT} not ok {}", why.join("; "))
    }
}

/// The `iovmm debug translate` arguments for `req`.
pub fn translate_args(socket: &str, req: &Request) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "debug".into(),
        "translate".into(),
        "--monitor".into(),
        socket.into(),
        "--source".into(),
        req.source.clone(),
    ];
    if let Some(p) = req.pasid {
        v.extend(["--pasid".into(), p.to_string()]);
    }
    v.extend(["--iova".into(), format!("{:#x}", req.iova), "--json".into()]);
    v
}

/// Native mode: answers a console line if it is a monitor-check request.
pub fn answer(iovmm: &Path, socket: &Path, line: &str) -> Option<String> {
    let req = Request::parse(line)?;
    let out = Command::new(iovmm)
        .args(translate_args(&socket.display().to_string(), &req))
        .output();
    Some(match out {
        Err(e) => format!("{RESULT} not ok cannot run {}: {e}", iovmm.display()),
        Ok(o) if !o.status.success() => format!(
            "{RESULT} not ok iovmm debug translate failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(o) => {
            let json = String::from_utf8_lossy(&o.stdout);
            match parse_walk(&json) {
                Ok(w) => judge(&req, &w, &json),
                Err(e) => format!("{RESULT} not ok {e}"),
            }
        }
    })
}

/// The busybox-sh function `run.sh` calls with a request line (see the module doc). The JSON is
/// pretty-printed (two-space indent) with sorted keys and carries, besides `steps` and `result`, the model's raw
/// `lookup` (whose translation has its own page-base `output` — the SMMUv3's sits in a `"result"` object of its
/// own — and whose steps name structures as `{"kind": ..}` objects). So: the output is the numeric `"output":`
/// one level inside the top-level `"result": {` object (anchored by indentation), and first-stage steps are the
/// `"structure": "first-stage ..."` (VT-d) or `"structure": "stage-1 L.."` (SMMUv3) strings of `steps`.
pub fn shell_function(iovmm: &str) -> String {
    format!(
        r#"monitor_check() {{
    l=$(printf '%s' "$1" | tr -d '\r')
    src=$(printf '%s\n' "$l" | sed -n 's/.* source=\([^ ]*\).*/\1/p')
    iova=$(printf '%s\n' "$l" | sed -n 's/.* iova=\(0x[0-9a-f]*\).*/\1/p')
    want=$(printf '%s\n' "$l" | sed -n 's/.* expect-output=\(0x[0-9a-f]*\).*/\1/p')
    levels=$(printf '%s\n' "$l" | sed -n 's/.* expect-levels=\([0-9]*\).*/\1/p')
    pasid=$(printf '%s\n' "$l" | sed -n 's/.* pasid=\([0-9][0-9]*\).*/\1/p')
    if [ -z "$src" ] || [ -z "$iova" ] || [ -z "$want" ] || [ -z "$levels" ]; then
        echo "{RESULT} not ok cannot parse the request: $l"
        return
    fi
    if ! {iovmm} debug translate --monitor {HOST_SOCKET} --source "$src" ${{pasid:+--pasid $pasid}} --iova "$iova" --json \
            >${{TMPDIR:-/tmp}}/monitor-check.json 2>${{TMPDIR:-/tmp}}/monitor-check.err; then
        echo "{RESULT} not ok iovmm debug translate failed: $(tr '\n' ' ' <${{TMPDIR:-/tmp}}/monitor-check.err | cut -c1-300)"
        return
    fi
    out=$(sed -n '/^  "result": *{{/,/^  }}/s/^    "output": *\([0-9][0-9]*\).*/\1/p' ${{TMPDIR:-/tmp}}/monitor-check.json | head -n 1)
    fs=$(grep -oE '"structure": *"(first-stage|stage-1 L)' ${{TMPDIR:-/tmp}}/monitor-check.json | wc -l)
    fs=$((fs))
    why=""
    if [ -z "$out" ]; then
        why="no result.output (fault?): $(tr -d ' \n' <${{TMPDIR:-/tmp}}/monitor-check.json | cut -c1-300)"
    elif [ "$((out))" != "$((want))" ]; then
        why="output $(printf '%#x' "$out"), expected $want"
    fi
    if [ "$fs" != "$levels" ]; then
        why="${{why:+$why; }}$fs first-stage steps, expected $levels"
    fi
    # The same walk for people, into the run log (README shows one).
    walk=$({iovmm} debug translate --monitor {HOST_SOCKET} --source "$src" ${{pasid:+--pasid $pasid}} --iova "$iova" 2>&1)
    printf '%s\n' "$walk" | sed 's/^/iovmm-monitor-walk: /'
    if [ -z "$why" ]; then
        echo "{RESULT} ok $iova -> $want in $levels first-stage steps"
    else
        echo "{RESULT} not ok $why"
    fi
}}
"#
    )
}

/// The answer lines in a run's output: `Ok(summary)` for `ok`, `Err(why)` for `not ok`.
pub fn results<'a, I: IntoIterator<Item = &'a str>>(lines: I) -> Vec<Result<String, String>> {
    lines
        .into_iter()
        .filter_map(|l| {
            let l = crate::runner::ktap::normalize(l);
            let rest = l[l.find(RESULT)? + RESULT.len()..].trim().to_string();
            Some(match rest.strip_prefix("not ok") {
                Some(why) => Err(why.trim().to_string()),
                None => Ok(rest.strip_prefix("ok").unwrap_or(&rest).trim().to_string()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Request {
        Request {
            source: "00:03.0".into(),
            iova: 0x6_0000_02a8,
            output: 0x1234_52a8,
            levels: 4,
            pasid: None,
        }
    }

    /// A walk in the shape `iovmm debug translate --json` prints (vmm `lookup_to_json`, pretty JSON with sorted
    /// keys): `steps` with string structures and a `detail` object, the model's raw `lookup` (sorted before
    /// `result`, with its own page-base `output` and `{"kind": "first-stage"}` structures), `fs` first-stage
    /// steps interleaved with the second-stage walks of their tables.
    fn walk_json(output: Option<u64>, fs: u32) -> String {
        let mut steps = vec![
            serde_json::json!({"structure": "root entry", "depth": 0, "address": 4096, "index": 0, "raw": [1, 0], "decoded": "P", "detail": {"kind": "root-entry"}}),
            serde_json::json!({"structure": "PASID table", "depth": 0, "address": 8192, "index": 0, "raw": [1], "decoded": "PGTT nested", "detail": {"kind": "pasid-table"}}),
        ];
        let mut raw_steps = Vec::new();
        for l in (1..=fs).rev() {
            steps.push(serde_json::json!({"structure": "second-stage L1", "depth": 1, "address": 1, "index": 1, "raw": [3], "decoded": "R W first-stage table", "detail": {"kind": "second-stage", "level": 1, "input": 1, "purpose": {"first-stage-table": l}}}));
            steps.push(serde_json::json!({"structure": format!("first-stage L{l}"), "depth": 0, "address": 1, "index": 1, "raw": [7], "decoded": "P RW US", "detail": {"kind": "first-stage", "level": l}}));
            raw_steps.push(serde_json::json!({"structure": {"kind": "first-stage", "level": l}}));
        }
        let result = output.map(|o| serde_json::json!({"output": o, "page_iova": 0x6_0000_0000u64, "page_output": o & !0xfff, "page_size": 4096, "perms": "rw", "stage": "nested"}));
        let lookup = serde_json::json!({
            "outcome": {"result": "translated", "translation": {"iova": 0x6_0000_0000u64, "output": output.unwrap_or(0) & !0xfff}},
            "steps": raw_steps,
        });
        serde_json::to_string_pretty(&serde_json::json!({
            "access": "read",
            "fault": serde_json::Value::Null,
            "iova": 0x6_0000_02a8u64,
            "lookup": lookup,
            "result": result,
            "steps": steps,
        }))
        .unwrap()
    }

    #[test]
    fn judges_walks() {
        let j = walk_json(Some(0x1234_52a8), 4);
        let w = parse_walk(&j).unwrap();
        assert_eq!(
            w,
            Walked {
                output: Some(0x1234_52a8),
                first_stage_steps: 4
            }
        );
        assert_eq!(
            judge(&req(), &w, &j),
            "iovmm-monitor-check: ok 0x6000002a8 -> 0x123452a8 in 4 first-stage steps"
        );
        let j = walk_json(Some(0x1234_5000), 5);
        let l = judge(&req(), &parse_walk(&j).unwrap(), &j);
        assert_eq!(
            l,
            "iovmm-monitor-check: not ok output 0x12345000, expected 0x123452a8; 5 first-stage steps, expected 4"
        );
        let j = walk_json(None, 2);
        assert!(judge(&req(), &parse_walk(&j).unwrap(), &j).contains("not ok no result.output"));
        assert!(parse_walk("{").is_err());
        assert!(parse_walk("{}").is_err());
        // Object-shaped structures (the raw lookup's) do not count.
        let w = parse_walk(
            r#"{"steps":[{"structure":"first-stage L4"},{"structure":{"kind":"first-stage"}}],"result":{"output":5}}"#,
        )
        .unwrap();
        assert_eq!((w.output, w.first_stage_steps), (Some(5), 1));
    }

    #[test]
    fn parses_answer_lines() {
        let r = results([
            "noise",
            "iovmm-monitor-check: ok 0x1 -> 0x2 in 4 first-stage steps\r",
            "[ 1.0] iovmm-monitor-check: not ok output 0x1, expected 0x2",
        ]);
        assert_eq!(
            r,
            vec![
                Ok("0x1 -> 0x2 in 4 first-stage steps".to_string()),
                Err("output 0x1, expected 0x2".to_string())
            ]
        );
    }

    #[test]
    fn native_answers_only_requests() {
        let none = Path::new("/nonexistent/iovmm");
        let sock = Path::new("/nonexistent/sock");
        assert_eq!(answer(none, sock, "ok 3 nested-dma"), None);
        let a = answer(none, sock, &req().line()).unwrap();
        assert!(
            a.starts_with("iovmm-monitor-check: not ok cannot run /nonexistent/iovmm"),
            "{a}"
        );
        // A VMM that refuses: its stderr is the reason.
        let a = answer(Path::new("/bin/false"), sock, &req().line()).unwrap();
        assert!(a.contains("not ok iovmm debug translate failed"), "{a}");
    }

    #[test]
    fn translate_command_line() {
        assert_eq!(
            translate_args("/tmp/s", &req()).join(" "),
            "debug translate --monitor /tmp/s --source 00:03.0 --iova 0x6000002a8 --json"
        );
        let with = Request {
            pasid: Some(5),
            ..req()
        };
        assert_eq!(
            translate_args("/tmp/s", &with).join(" "),
            "debug translate --monitor /tmp/s --source 00:03.0 --pasid 5 --iova 0x6000002a8 --json"
        );
    }

    fn busybox() -> Option<&'static str> {
        let b = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        if b.is_none() {
            eprintln!("busybox not installed: skipping the shell check");
        }
        b
    }

    /// Runs the busybox function on request `req` against a fake iovmm that prints `json` (and exits 8 unless
    /// it was given `--pasid` exactly when `req` has one); returns the answer line(s), checking the walk for
    /// people went to the log.
    fn shell_answer(busybox: &str, dir: &Path, name: &str, req: &Request, json: &str) -> String {
        let jf = dir.join(format!("{name}.json"));
        std::fs::write(&jf, json).unwrap();
        let fake = dir.join(format!("{name}-iovmm"));
        let pasid_check = match req.pasid {
            Some(p) => format!("case \"$*\" in *' --pasid {p} '*) ;; *) exit 8 ;; esac\n"),
            None => "case \"$*\" in *--pasid*) exit 8 ;; esac\n".to_string(),
        };
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\n[ \"$1 $2 $3 $4\" = 'debug translate --monitor {HOST_SOCKET}' ] || exit 9\n{pasid_check}cat {}\n",
                jf.display()
            ),
        )
        .unwrap();
        let script = format!(
            "{}monitor_check \"$(printf '[ 12.5] %s\\r' '{}')\"\n",
            // Run the fake through sh (no exec of a freshly written file: ETXTBSY under parallel tests).
            shell_function(&format!("{busybox} sh {}", fake.display())),
            req.line()
        );
        let out = Command::new(busybox)
            .args(["sh", "-c", &script])
            .env("TMPDIR", dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        // The walk for people goes to the log as `iovmm-monitor-walk:` lines; the answer is the rest.
        assert!(
            stdout.contains("iovmm-monitor-walk: "),
            "{name}: {stdout:?}"
        );
        stdout
            .lines()
            .filter(|l| !l.starts_with("iovmm-monitor-walk:"))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string()
    }

    /// Shell and Rust agree on `json` for `req`, and both say `want_ok`.
    fn shell_agrees(
        busybox: &str,
        dir: &Path,
        name: &str,
        req: &Request,
        json: &str,
        want_ok: bool,
    ) {
        let text = shell_answer(busybox, dir, name, req, json);
        let rust = judge(req, &parse_walk(json).unwrap(), json);
        assert_eq!(results([text.as_str()]).len(), 1, "{name}: {text:?}");
        assert_eq!(
            results([text.as_str()])[0].is_ok(),
            want_ok,
            "{name}: shell {text:?}, rust {rust:?}"
        );
        assert_eq!(
            results([rust.as_str()])[0].is_ok(),
            want_ok,
            "{name}: rust {rust:?}"
        );
        if want_ok {
            assert_eq!(text, rust, "{name}");
        }
    }

    fn scratch_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("guest-tests-mc-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The busybox function against a fake iovmm that prints a canned walk: same verdicts as [`judge`].
    #[test]
    fn shell_function_agrees_with_judge() {
        let Some(busybox) = busybox() else {
            return;
        };
        let dir = scratch_dir("vtd");
        for (name, json, want_ok) in [
            ("good", walk_json(Some(0x1234_52a8), 4), true),
            ("wrong", walk_json(Some(0x1234_5000), 4), false),
            ("levels", walk_json(Some(0x1234_52a8), 5), false),
            ("fault", walk_json(None, 1), false),
        ] {
            shell_agrees(busybox, &dir, name, &req(), &json, want_ok);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A real SMMUv3 answer: the bring-up driver installs its nested stream (STE, CD and 4-level stage 1 in IPA
    /// space under stage 2) on the model, and the VMM's own monitor code (`IommuUnit::lookup_json`) walks it,
    /// printed as `iovmm debug translate --json` prints it.
    fn smmuv3_answer(cfg: &str) -> (Request, String, serde_json::Value) {
        use crate::bringup::host::HostBackend;
        use crate::bringup::smmuv3::driver::{Driver, Options};
        use crate::bringup::smmuv3::monitor::Nested;
        let b = HostBackend::new(cfg.parse().unwrap()).unwrap();
        let unit = vmm::iommus::IommuUnit::Smmuv3(b.model.clone());
        let mut d = Driver::probe(Box::new(b)).unwrap();
        d.bring_up(Options::default()).unwrap();
        let n = Nested::install(&mut d).unwrap();
        let req = Request {
            source: "00:03.0".into(),
            iova: n.iova,
            output: n.output,
            levels: n.levels as u8,
            pasid: n.ssid,
        };
        let v = unit
            .lookup_json(n.sid as u16, n.ssid, n.iova, false)
            .unwrap();
        (req, serde_json::to_string_pretty(&v).unwrap(), v)
    }

    #[test]
    fn counts_smmuv3_stage1_steps() {
        for cfg in ["smmuv3", "smmuv3,ssidbits=0,caching=off"] {
            let (req, json, v) = smmuv3_answer(cfg);
            assert_eq!(req.pasid.is_some(), cfg == "smmuv3");
            let w = parse_walk(&json).unwrap();
            assert_eq!(
                w,
                Walked {
                    output: Some(req.output),
                    first_stage_steps: 4
                },
                "{cfg}: {json}"
            );
            assert!(
                judge(&req, &w, &json).starts_with("iovmm-monitor-check: ok "),
                "{cfg}"
            );
            // The shape counted: STE and CD, "stage-1 L0".."stage-1 L3" at depth 0, and the stage-2 walks of the
            // CD's and tables' IPAs at depth 1, which do not count.
            let steps = v["steps"].as_array().unwrap();
            let named = |p: &str| {
                steps
                    .iter()
                    .filter(|s| s["structure"].as_str().is_some_and(|n| n.starts_with(p)))
                    .collect::<Vec<_>>()
            };
            assert_eq!(named("STE").len(), 1);
            assert_eq!(named("CD").len(), 1);
            let s1: Vec<&str> = named("stage-1 L")
                .iter()
                .map(|s| s["structure"].as_str().unwrap())
                .collect();
            assert_eq!(s1, ["stage-1 L0", "stage-1 L1", "stage-1 L2", "stage-1 L3"]);
            assert!(named("stage-1").iter().all(|s| s["depth"] == 0));
            let s2 = named("stage-2 L");
            assert!(s2.len() >= 5, "{cfg}: CD + 4 tables + output: {json}");
            assert!(s2.iter().any(|s| s["depth"] == 1));
            assert_eq!(v["pasid"].as_u64(), req.pasid.map(u64::from));
            // The model's step objects in `lookup` do not count either.
            assert!(json.contains("\"kind\": \"walk\""), "{cfg}");
            // A wrong expectation is caught.
            let wrong = Request {
                levels: 3,
                ..req.clone()
            };
            assert!(judge(&wrong, &w, &json).contains("4 first-stage steps, expected 3"));
        }
    }

    /// The busybox function on the real SMMUv3 answer: same count and verdict as Rust, `--pasid` passed on.
    #[test]
    fn shell_function_counts_smmuv3_walks() {
        let Some(busybox) = busybox() else {
            return;
        };
        let dir = scratch_dir("smmuv3");
        for (name, cfg) in [("ssid", "smmuv3"), ("nossid", "smmuv3,ssidbits=0")] {
            let (req, json, _) = smmuv3_answer(cfg);
            shell_agrees(busybox, &dir, name, &req, &json, true);
            let wrong = Request {
                output: req.output + 0x1000,
                ..req.clone()
            };
            shell_agrees(
                busybox,
                &dir,
                &format!("{name}-wrong"),
                &wrong,
                &json,
                false,
            );
            let text = shell_answer(
                busybox,
                &dir,
                &format!("{name}-levels"),
                &Request { levels: 5, ..req },
                &json,
            );
            assert!(text.ends_with("4 first-stage steps, expected 5"), "{text}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
