//! `iovmm debug ...`: a human client for the monitor (readable text by default, `--json` for the raw result).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::protocol::{Request, Response};

/// Sends one request to the monitor at `path` and returns its response.
pub fn call(path: &Path, req: &Request) -> Result<Response, String> {
    let mut s = UnixStream::connect(path)
        .map_err(|e| format!("cannot connect to monitor {}: {e}", path.display()))?;
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    s.write_all(&line)
        .map_err(|e| format!("monitor write: {e}"))?;
    let mut answer = String::new();
    BufReader::new(s)
        .read_line(&mut answer)
        .map_err(|e| format!("monitor read: {e}"))?;
    serde_json::from_str(&answer).map_err(|e| format!("bad monitor answer {answer:?}: {e}"))
}

/// Renders a successful result for people.
pub fn render(req: &Request, result: &serde_json::Value) -> String {
    match req {
        Request::PermittedRanges { .. } => render_ranges(result),
        Request::Translate { .. } => render_lookup(result),
        Request::DumpTables { dot: true, .. } => {
            result["dot"].as_str().unwrap_or_default().to_string()
        }
        Request::DumpTables { .. } => render_dump(result),
        _ => serde_json::to_string_pretty(result).unwrap_or_default(),
    }
}

fn hex(v: &serde_json::Value) -> String {
    v.as_u64()
        .map(|n| format!("{n:#x}"))
        .unwrap_or_else(|| v.to_string())
}

fn render_ranges(r: &serde_json::Value) -> String {
    let mut out = format!(
        "permitted IOVA ranges for {} (inclusive):\n",
        r["source"].as_str().unwrap_or("?")
    );
    for w in r["windows"].as_array().into_iter().flatten() {
        out += &format!("  {:>18} ..= {}\n", hex(&w["first"]), hex(&w["last"]));
    }
    out
}

fn render_lookup(r: &serde_json::Value) -> String {
    let mut out = String::new();
    for step in r["steps"].as_array().into_iter().flatten() {
        let indent = "  ".repeat(step["depth"].as_u64().unwrap_or(0) as usize + 1);
        out += &format!(
            "{indent}{:<22} @ {:>14} [{:>3}] = {:<40} {}\n",
            step["structure"].as_str().unwrap_or("?"),
            hex(&step["address"]),
            step["index"],
            step["raw"].as_array().map_or_else(
                || hex(&step["raw"]),
                |a| a.iter().map(hex).collect::<Vec<_>>().join(" ")
            ),
            step["decoded"].as_str().unwrap_or_default(),
        );
    }
    match (&r["result"], &r["fault"]) {
        (t, _) if !t.is_null() => {
            out += &format!(
                "=> IOVA {} -> {} (page {} bytes, {}, {} stage)\n",
                hex(&r["iova"]),
                hex(&t["output"]),
                t["page_size"],
                t["perms"].as_str().unwrap_or_default(),
                t["stage"].as_str().unwrap_or("no")
            )
        }
        (_, f) if !f.is_null() => {
            out += &format!("=> fault {} ({})\n", hex(&f["reason"]), f["description"])
        }
        _ => {}
    }
    out
}

fn perms(p: &serde_json::Value) -> String {
    let bit = |k: &str, c: char| if p[k].as_bool() == Some(true) { c } else { '-' };
    format!(
        "{}{}{}",
        bit("read", 'r'),
        bit("write", 'w'),
        bit("exec", 'x')
    )
}

fn render_dump(r: &serde_json::Value) -> String {
    let mut out = format!(
        "source {} pasid {} mode: {}{}\n",
        r["source_id"],
        r["pasid"],
        r["mode"].as_str().unwrap_or("?"),
        if r["truncated"].as_bool() == Some(true) {
            " (truncated)"
        } else {
            ""
        }
    );
    out += "        IOVA first           IOVA last  ->          output        page  perms\n";
    for m in r["mappings"].as_array().into_iter().flatten() {
        out += &format!(
            "{:>18} {:>19}  -> {:>15} {:>11}  {}\n",
            hex(&m["iova"]),
            hex(&m["last"]),
            hex(&m["output"]),
            hex(&m["page_size"]),
            perms(&m["perms"])
        );
    }
    for f in r["faults"].as_array().into_iter().flatten() {
        out += &format!(
            "{:>18} {:>19}  fault {} ({})\n",
            hex(&f["iova"]),
            hex(&f["last"]),
            hex(&f["reason"]),
            f["description"].as_str().unwrap_or_default()
        );
    }
    out
}
