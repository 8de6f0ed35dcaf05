//! Runs a child process, streaming its output live to the terminal and a log while recording each line with
//! its arrival time, under a wall-clock limit (the child is killed on expiry).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One output line (without its `\n`) and when it arrived, relative to the spawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub at: Duration,
    pub stderr: bool,
    pub text: String,
}

/// How the child ended.
#[derive(Clone, Debug)]
pub struct Captured {
    pub lines: Vec<Line>,
    /// Exit code; `None` when killed by a signal (including our timeout kill).
    pub code: Option<i32>,
    pub timed_out: bool,
    /// Spawn to exit.
    pub elapsed: Duration,
}

impl Captured {
    /// Arrival time of the first line containing `needle`.
    pub fn first(&self, needle: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|l| l.text.contains(needle))
            .map(|l| l.at)
    }

    pub fn texts(&self) -> impl Iterator<Item = &str> + Clone {
        self.lines.iter().map(|l| l.text.as_str())
    }
}

/// Where output goes besides the returned lines.
pub struct Sink<'a> {
    /// Echo to our stdout/stderr.
    pub echo: bool,
    pub log: Option<&'a mut dyn Write>,
}

fn reader<R: Read + Send + 'static>(
    r: R,
    stderr: bool,
    tx: mpsc::Sender<(bool, Vec<u8>, Instant)>,
) {
    std::thread::spawn(move || {
        let mut br = BufReader::new(r);
        loop {
            let mut buf = Vec::new();
            match br.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send((stderr, buf, Instant::now())).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

fn kill(child: &mut Child) {
    // Our own direct child, by its handle.
    let _ = child.kill();
}

/// Echoes and logs one output chunk; returns it as a line without its newline.
fn emit(sink: &mut Sink<'_>, is_err: bool, bytes: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if text.ends_with('\n') {
        text.pop();
    }
    if sink.echo {
        if is_err {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(bytes);
            if !bytes.ends_with(b"\n") {
                let _ = e.write_all(b"\n");
            }
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(bytes);
            if !bytes.ends_with(b"\n") {
                let _ = o.write_all(b"\n");
            }
            let _ = o.flush();
        }
    }
    if let Some(log) = sink.log.as_mut() {
        let _ = writeln!(log, "{text}");
    }
    text
}

/// Spawns `cmd` (stdin closed, stdout/stderr piped) and collects its output until it exits or `timeout`.
pub fn run(cmd: Command, timeout: Duration, sink: &mut Sink<'_>) -> Result<Captured, String> {
    run_watched(cmd, timeout, sink, &mut |_| None)
}

/// [`run`], calling `watch` with every stdout line as it arrives; a line it returns is recorded (and echoed,
/// logged) right after, as if the child had printed it. The child keeps running meanwhile.
pub fn run_watched(
    mut cmd: Command,
    timeout: Duration,
    sink: &mut Sink<'_>,
    watch: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<Captured, String> {
    let prog = format!("{:?}", cmd.get_program());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {prog}: {e}"))?;
    let (tx, rx) = mpsc::channel();
    if let Some(o) = child.stdout.take() {
        reader(o, false, tx.clone());
    }
    if let Some(e) = child.stderr.take() {
        reader(e, true, tx.clone());
    }
    drop(tx);

    let deadline = start + timeout;
    let mut lines = Vec::new();
    let mut timed_out = false;
    let mut exited: Option<(Option<i32>, Instant)> = None;
    loop {
        let now = Instant::now();
        // After the child exits, give the readers a moment to drain what is left in the pipes.
        let limit = match exited {
            Some((_, t)) => t + Duration::from_secs(2),
            None => deadline,
        };
        if now >= limit {
            if exited.is_none() {
                timed_out = true;
                kill(&mut child);
                let status = child.wait().ok();
                exited = Some((status.and_then(|s| s.code()), Instant::now()));
                continue;
            }
            break;
        }
        let wait = (limit - now).min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok((is_err, bytes, at)) => {
                let text = emit(sink, is_err, &bytes);
                let answer = if is_err { None } else { watch(&text) };
                lines.push(Line {
                    at: at.saturating_duration_since(start),
                    stderr: is_err,
                    text,
                });
                if let Some(a) = answer {
                    let text = emit(sink, false, format!("{a}\n").as_bytes());
                    lines.push(Line {
                        at: Instant::now().saturating_duration_since(start),
                        stderr: false,
                        text,
                    });
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if exited.is_none() {
                    // Pipes closed: wait for the exit under the deadline.
                    let left = deadline.saturating_duration_since(Instant::now());
                    match wait_with_timeout(&mut child, left)? {
                        Some(code) => exited = Some((code, Instant::now())),
                        None => {
                            timed_out = true;
                            kill(&mut child);
                            let status = child.wait().ok();
                            exited = Some((status.and_then(|s| s.code()), Instant::now()));
                        }
                    }
                }
                break;
            }
        }
        if exited.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some((status.code(), Instant::now()));
            }
        }
    }
    let (code, end) = match exited {
        Some(e) => e,
        None => {
            let status = child.wait().map_err(|e| format!("wait for {prog}: {e}"))?;
            (status.code(), Instant::now())
        }
    };
    Ok(Captured {
        lines,
        code,
        timed_out,
        elapsed: end.saturating_duration_since(start),
    })
}

/// Polls for the child's exit for up to `timeout`; `Ok(None)` when it is still running.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<Option<Option<i32>>, String> {
    let end = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Ok(Some(s.code())),
            Ok(None) if Instant::now() >= end => return Ok(None),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Sink<'static> {
        Sink {
            echo: false,
            log: None,
        }
    }

    #[test]
    fn captures_lines_streams_and_exit_code() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one; echo two >&2; printf 'three'; exit 3"]);
        let mut log = Vec::new();
        let mut sink = Sink {
            echo: false,
            log: Some(&mut log),
        };
        let c = run(cmd, Duration::from_secs(10), &mut sink).unwrap();
        assert_eq!(c.code, Some(3));
        assert!(!c.timed_out);
        let mut texts: Vec<(&str, bool)> = c
            .lines
            .iter()
            .map(|l| (l.text.as_str(), l.stderr))
            .collect();
        texts.sort();
        assert_eq!(texts, vec![("one", false), ("three", false), ("two", true)]);
        assert!(c.first("thr").is_some());
        let log = String::from_utf8(log).unwrap();
        assert!(log.contains("one\n") && log.contains("two\n") && log.contains("three\n"));
    }

    #[test]
    fn timeout_kills_the_child() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 30"]);
        let t0 = Instant::now();
        let c = run(cmd, Duration::from_millis(500), &mut quiet()).unwrap();
        assert!(c.timed_out);
        assert_eq!(c.code, None);
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert!(c.first("started").is_some());
    }

    #[test]
    fn watch_answers_lines_in_place() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo ask 7; echo other >&2; echo ask 8; echo done"]);
        let mut log = Vec::new();
        let mut sink = Sink {
            echo: false,
            log: Some(&mut log),
        };
        let mut seen = Vec::new();
        let c = run_watched(cmd, Duration::from_secs(10), &mut sink, &mut |l| {
            seen.push(l.to_string());
            l.strip_prefix("ask ").map(|n| format!("answer {n}"))
        })
        .unwrap();
        let out: Vec<&str> = c
            .lines
            .iter()
            .filter(|l| !l.stderr)
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(out, vec!["ask 7", "answer 7", "ask 8", "answer 8", "done"]);
        // stderr lines are not shown to the watcher.
        assert_eq!(seen, vec!["ask 7", "ask 8", "done"]);
        assert!(String::from_utf8(log)
            .unwrap()
            .contains("ask 8\nanswer 8\n"));
    }

    #[test]
    fn missing_program_is_an_error() {
        let cmd = Command::new("/nonexistent/program");
        assert!(run(cmd, Duration::from_secs(1), &mut quiet()).is_err());
    }
}
