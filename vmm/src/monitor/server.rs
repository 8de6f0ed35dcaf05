//! The monitor server: a Unix socket, one thread per client, JSON lines.
//!
//! Hostile or broken clients are contained: malformed JSON gets an error line, over-long lines get an error and
//! are skipped up to their newline, and a client that disconnects mid-line just ends its thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::commands::MonitorTarget;
use super::protocol::{Request, Response, MAX_LINE};

/// Most clients served at once; further connections get an error line and are closed.
const MAX_CLIENTS: usize = 16;

/// Binds `path` (replacing a stale socket file) and serves `target` on a background thread.
pub fn spawn(path: &Path, target: Arc<MonitorTarget>) -> std::io::Result<PathBuf> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("monitor".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if active.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                    active.fetch_sub(1, Ordering::SeqCst);
                    let _ =
                        write_response(&mut stream, &Response::error("too many monitor clients"));
                    continue;
                }
                let (target, active) = (target.clone(), active.clone());
                let spawned = std::thread::Builder::new()
                    .name("monitor-client".into())
                    .spawn(move || {
                        serve(stream, &target);
                        active.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    log::warn!("monitor: cannot start a client thread");
                }
            }
        })?;
    Ok(path.to_path_buf())
}

fn write_response(w: &mut impl Write, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r)
        .unwrap_or_else(|_| br#"{"ok":false,"error":"unserializable"}"#.to_vec());
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Reads one line of at most `MAX_LINE` bytes. `Ok(None)` at EOF; `Err(())` for an over-long line (skipped).
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<Result<(), ()>>> {
    buf.clear();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(Ok(())));
    }
    if buf.len() <= MAX_LINE {
        return Ok(Some(Ok(()))); // last line without newline
    }
    // Too long: discard through the next newline.
    let mut sink = Vec::new();
    loop {
        sink.clear();
        let n = r
            .by_ref()
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut sink)?;
        if n == 0 || sink.last() == Some(&b'\n') {
            return Ok(Some(Err(())));
        }
    }
}

/// Serves one client until it disconnects.
pub fn serve(stream: UnixStream, target: &MonitorTarget) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        let response = match read_line(&mut reader, &mut buf) {
            Ok(None) | Err(_) => return,
            Ok(Some(Err(()))) => {
                Response::error(format!("request line longer than {MAX_LINE} bytes"))
            }
            Ok(Some(Ok(()))) if buf.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(Some(Ok(()))) => match serde_json::from_slice::<Request>(&buf) {
                Ok(req) => target.handle(&req),
                Err(e) => Response::error(format!("bad request: {e}")),
            },
        };
        if write_response(&mut writer, &response).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn roundtrip(target: Arc<MonitorTarget>, input: &[u8]) -> Vec<Response> {
        let (client, server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || serve(server, &target));
        let mut c = client.try_clone().unwrap();
        c.write_all(input).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let lines: Vec<Response> = BufReader::new(client)
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
        t.join().unwrap();
        lines
    }

    #[test]
    fn survives_garbage_huge_lines_and_eof_mid_line() {
        let target = Arc::new(MonitorTarget::for_tests("vtd,aw=48"));
        let mut input = b"not json\n\n{\"cmd\":\"stats\"}\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend(b"\n{\"cmd\":\"query-iommus\"}\n{\"cmd\":\"sta");
        let r = roundtrip(target, &input);
        assert_eq!(r.len(), 5, "{r:?}");
        assert!(!r[0].ok && r[0].error.as_deref().unwrap().contains("bad request"));
        assert!(r[1].ok);
        assert!(!r[2].ok && r[2].error.as_deref().unwrap().contains("longer than"));
        assert!(r[3].ok);
        assert!(!r[4].ok, "truncated last line is a bad request, not a hang");
    }

    #[test]
    fn serves_over_a_real_socket() {
        let dir = std::env::temp_dir().join(format!("iovmm-mon-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mon.sock");
        spawn(&path, Arc::new(MonitorTarget::for_tests("vtd,aw=39"))).unwrap();
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(b"{\"cmd\":\"permitted-ranges\",\"source\":\"00:03.0\"}\n")
            .unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        let r: Response = serde_json::from_str(&line).unwrap();
        assert!(r.ok, "{line}");
        assert_eq!(r.result.unwrap()["windows"][1]["last"], 0x7f_ffff_ffffu64);
    }
}
