//! Metrics (issue: monitoring): what `--format prometheus` and the `deploy/` recipes give
//! to the real Prometheus tools, on loopback: promtool (rules, rule tests, metrics),
//! systemd-analyze (the units), node_exporter's textfile collector, and blackbox_exporter
//! probing the same targets as headprobe.
//!
//! A test without its tool skips, saying which Debian package has it. Tests that need
//! `--format prometheus` and `-o` in the binary skip, saying so, until `--help` shows
//! them; the same checks run now on the library's renderer (`report::prometheus`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use headprobe::proto::http::HeadParser;
use headprobe::report::error::{ErrorKind, ProbeError};
use headprobe::report::prometheus::{Metrics, RunFacts};
use headprobe::report::record::{CertInfo, ChainCert, Hop, Record, Timing, TlsInfo, TlsVersion};

use crate::util::peer::{tls_handler, Peer};
use crate::util::pki::{cacert, pem_of, pki, server_config, EARLY_NOT_AFTER};
use crate::util::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

// ---------------------------------------------------------------------------------------
// The exposition format, read back
// ---------------------------------------------------------------------------------------

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of an exposition text (comments and blank lines skipped), with label
/// values unescaped as the format says. Panics naming the line when one is malformed.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_sample(l).unwrap_or_else(|| panic!("not a sample line: {l:?}")))
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        loop {
            // `}` or `key="value"` then `,` or `}`.
            let (start, c) = chars.next()?;
            if c == '}' {
                rest = &inner[start + 1..];
                break;
            }
            let eq = inner[start..].find('=')? + start;
            let key = inner[start..eq].to_string();
            while chars.next()?.0 < eq {}
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        _ => return None,
                    },
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
            let (i, c) = chars.next()?;
            match c {
                ',' => continue,
                '}' => {
                    rest = &inner[i + 1..];
                    break;
                }
                _ => return None,
            }
        }
    }
    let mut fields = rest.split_whitespace();
    let value = match fields.next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The value of `name` whose labels include every one of `labels`.
pub(crate) fn find(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[test]
fn the_exposition_parser_reads_escapes_and_rejects_garbage() {
    let text = "# HELP a b\n# TYPE a gauge\na 1\nb{x=\"q\\\"\\\\\\n\",y=\"\"} -2.5e+09\nc{} NaN\n";
    let s = parse_exposition(text);
    assert_eq!(s.len(), 3);
    assert_eq!((s[0].name.as_str(), s[0].value), ("a", 1.0));
    assert_eq!(s[1].labels["x"], "q\"\\\n");
    assert_eq!(s[1].labels["y"], "");
    assert_eq!(s[1].value, -2.5e9);
    assert!(s[2].value.is_nan());
    for bad in ["a", "a{x=\"1} 2", "a{x=1} 2", "a{x=\"\\q\"} 1", "a one"] {
        assert!(parse_sample(bad).is_none(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------
// Tools and the processes they run as
// ---------------------------------------------------------------------------------------

/// Whether the binary has `--format prometheus` and `-o`; if not, says the test skips.
fn prometheus_wired() -> bool {
    let help = headprobe().arg("--help").run().out();
    let wired = help.contains("prometheus") && help.contains("--output");
    if !wired {
        eprintln!("skipped: needs --format prometheus and -o, which --help does not show yet");
    }
    wired
}

/// A daemon started by a test, killed and reaped on drop; its stderr lines are kept.
struct Daemon {
    child: Child,
    port: u16,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts `cmd` (which listens on `port`) and waits, at most `WAIT`, for the log
    /// line saying it listens.
    fn start(cmd: Command, port: u16, what: &str) -> Daemon {
        Daemon::start_until(cmd, port, what, "Listening on")
    }

    /// Starts `cmd` and waits, at most `WAIT`, for a log line containing `ready`.
    fn start_until(mut cmd: Command, port: u16, what: &str, ready: &str) -> Daemon {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon {
            child,
            port,
            lines,
            log: Vec::new(),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match daemon.lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.contains(ready);
                    daemon.log.push(line);
                    if ready {
                        return daemon;
                    }
                }
                Err(_) => panic!("{what} did not start:\n{}", daemon.log.join("\n")),
            }
        }
    }

    /// The log so far (lines that arrive within a moment of asking).
    fn log(&mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
        self.log.join("\n")
    }

    /// GET `path` on the daemon, HTTP/1.0; the body.
    fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the daemon");
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).expect("read the daemon's answer");
        let text = String::from_utf8(all).expect("UTF-8 answer");
        let (head, body) = text.split_once("\r\n\r\n").expect("a whole HTTP answer");
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        body.to_string()
    }
}

fn node_exporter(binary: &Path, dir: &Path) -> Daemon {
    let port = free_port();
    let mut cmd = Command::new(binary);
    cmd.args(["--collector.disable-defaults", "--collector.textfile"])
        .arg(format!("--collector.textfile.directory={}", dir.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    Daemon::start(cmd, port, "node_exporter")
}

/// `promtool check metrics` on `text`: its exit status and what it said.
pub(crate) fn promtool_check_metrics(promtool: &Path, text: &[u8]) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    let mut stdin = child.stdin.take().unwrap();
    let input = text.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = wait_output(child, "promtool check metrics");
    let _ = writer.join();
    (out.0, format!("{}{}", out.1, out.2))
}

/// Waits (at most `WATCHDOG`, then kills) for a tool's exit: success, stdout, stderr.
fn wait_output(child: Child, what: &str) -> (bool, String, String) {
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(WATCHDOG) {
        Ok(out) => out.expect("wait for the tool"),
        Err(_) => {
            // SAFETY: kill(2) on our own child, not yet reaped (wait_with_output runs).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{what} still running after {WATCHDOG:?}; killed it");
        }
    };
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn run_tool(cmd: &mut Command, what: &str) -> (bool, String, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    wait_output(child, what)
}

pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = temp_file(name, b"");
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------
// The recipes: alert rules and systemd units
// ---------------------------------------------------------------------------------------

#[test]
fn promtool_checks_and_tests_the_alert_rules() {
    let Some(promtool) = tool("/usr/bin/promtool", "prometheus") else {
        return;
    };
    let dir = Path::new(ROOT).join("deploy/prometheus");
    let (ok, out, err) = run_tool(
        Command::new(&promtool)
            .args(["check", "rules", "headprobe-rules.yml"])
            .current_dir(&dir),
        "promtool check rules",
    );
    assert!(ok, "promtool check rules:\n{out}{err}");
    assert!(out.contains("SUCCESS: 4 rules found"), "{out}");
    let (ok, out, err) = run_tool(
        Command::new(&promtool)
            .args(["test", "rules", "headprobe-rules.test.yml"])
            .current_dir(&dir),
        "promtool test rules",
    );
    assert!(ok, "promtool test rules:\n{out}{err}");

    // The rule tests can fail: with "down" meaning one run, the 6m case catches it.
    let copy = scratch_dir("rules");
    let rules = std::fs::read_to_string(dir.join("headprobe-rules.yml")).unwrap();
    assert!(rules.contains("for: 7m"), "the SiteDown rule changed");
    std::fs::write(
        copy.join("headprobe-rules.yml"),
        rules.replace("for: 7m", "for: 2m"),
    )
    .unwrap();
    std::fs::copy(
        dir.join("headprobe-rules.test.yml"),
        copy.join("headprobe-rules.test.yml"),
    )
    .unwrap();
    let (ok, out, err) = run_tool(
        Command::new(&promtool)
            .args(["test", "rules", "headprobe-rules.test.yml"])
            .current_dir(&copy),
        "promtool test rules",
    );
    let out = out + &err;
    assert!(!ok, "a one-run SiteDown passed the rule tests:\n{out}");
    assert!(out.contains("alertname: SiteDown, time: 6m"), "{out}");
    let _ = std::fs::remove_dir_all(&copy);
}

#[test]
fn systemd_accepts_the_units_and_they_are_hardened() {
    let Some(analyze) = tool("/usr/bin/systemd-analyze", "systemd") else {
        return;
    };
    let dir = scratch_dir("units");
    let service =
        std::fs::read_to_string(Path::new(ROOT).join("deploy/systemd/headprobe.service")).unwrap();
    // verify wants ExecStart's binary to exist: the one just built stands in.
    assert!(
        service.contains("ExecStart=/usr/local/bin/headprobe "),
        "{service}"
    );
    let service = service.replace("/usr/local/bin/headprobe", env!("CARGO_BIN_EXE_headprobe"));
    std::fs::write(dir.join("headprobe.service"), service).unwrap();
    std::fs::copy(
        Path::new(ROOT).join("deploy/systemd/headprobe.timer"),
        dir.join("headprobe.timer"),
    )
    .unwrap();
    let (ok, out, err) = run_tool(
        Command::new(&analyze)
            .args([
                "verify",
                "--man=no",
                "./headprobe.service",
                "./headprobe.timer",
            ])
            .current_dir(&dir),
        "systemd-analyze verify",
    );
    // Unknown keys are only warned about: any warning is a mistake in the unit.
    assert!(
        ok && err.trim().is_empty(),
        "systemd-analyze verify:\n{out}{err}"
    );
    let (ok, out, err) = run_tool(
        Command::new(&analyze)
            .args([
                "security",
                "--offline=yes",
                "--threshold=25",
                "./headprobe.service",
            ])
            .current_dir(&dir),
        "systemd-analyze security",
    );
    let overall = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_default()
        .to_string();
    assert!(ok, "exposure above 2.5:\n{overall}\n{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// The renderer against the real readers (runs now, without the CLI)
// ---------------------------------------------------------------------------------------

fn head(bytes: &[u8]) -> HeadParser {
    let mut head = HeadParser::new(65536);
    let _ = head.feed(bytes);
    head
}

/// Records of every shape the issue names, built as the probe would fill them.
fn mixed_records() -> Vec<Record> {
    let ms = Duration::from_millis;
    let rec = |index: u64, token: &[u8], response: Option<&[u8]>, kind: Option<ErrorKind>| {
        let mut r = Record::failed(
            index,
            index,
            token.to_vec(),
            None,
            ProbeError::new(ErrorKind::Io, "unused"),
        );
        r.error = kind.map(|k| ProbeError::new(k, "what went wrong"));
        r.head = response.map(head);
        r.addr = Some("127.0.0.1:8080".parse().unwrap());
        r.timing = Timing {
            dns: Some(ms(1)),
            connect: Some(ms(2)),
            tls: None,
            proxy: None,
            first_byte: Some(ms(4)),
            headers: Some(ms(5)),
            total: ms(6),
        };
        r.attempts = 1;
        r
    };
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let mut tls = rec(4, b"https://probe.test:8443/", Some(ok), None);
    tls.tls = Some(Box::new(TlsInfo {
        version: Some(TlsVersion::Tls13),
        cipher: Some("TLS_AES_128_GCM_SHA256".into()),
        verified: true,
        alpn: None,
        cert: Some(CertInfo {
            subject: "CN=probe.test".into(),
            issuer: "CN=headprobe test CA".into(),
            not_before: 1_614_834_367,
            not_after: 3_787_009_445,
            san: vec!["probe.test".into()],
            sha256: "00".into(),
            days_left: 23_000,
            expired: false,
            serial: "01".into(),
            // Label escaping: a quote and a backslash in a name.
            subject_rfc2253: "CN=probe.test,O=\\\"q\\\"".into(),
            issuer_rfc2253: "CN=headprobe test CA".into(),
        }),
        chain: vec![ChainCert {
            subject: "CN=probe.test".into(),
            issuer: "CN=headprobe test CA".into(),
            not_after: 3_787_009_445,
            sha256: "00".into(),
        }],
    }));
    let mut redirect = rec(5, b"http://127.0.0.1:8080/old", Some(ok), None);
    redirect.redirects = vec![Hop {
        url: "http://127.0.0.1:8080/old".into(),
        status: 301,
        location: "/new".into(),
        head: None,
    }];
    vec![
        rec(0, b"http://127.0.0.1:8080/", Some(ok), None),
        rec(
            1,
            b"http://127.0.0.1:8080/missing",
            Some(b"HTTP/1.1 404 Not Found\r\n\r\n"),
            None,
        ),
        rec(2, b"http://127.0.0.1:9/", None, Some(ErrorKind::Refused)),
        rec(
            3,
            b"http://127.0.0.1:8081/",
            Some(b"HTTP/1.1 200 OK\r\n"),
            Some(ErrorKind::Timeout),
        ),
        tls,
        redirect,
        rec(
            6,
            b"http://127.0.0.1:8080/mismatch",
            Some(ok),
            Some(ErrorKind::HeaderMismatch),
        ),
        rec(7, b"http://127.0.0.1:8080/q\"b\\s\xff\xfe", Some(ok), None),
        rec(8, b"http://127.0.0.1:8080/", Some(ok), None),
    ]
}

fn render(records: &[Record]) -> Vec<u8> {
    let mut m = Metrics::new();
    // As probes finish: not in input order.
    for r in records.iter().rev() {
        m.add(r);
    }
    let mut out = Vec::new();
    let run = RunFacts {
        duration: Duration::from_millis(1234),
        finished_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        probe_timeout: Duration::from_secs(10),
    };
    m.render(&mut out, &run).unwrap();
    out
}

#[test]
fn promtool_accepts_the_rendered_metrics_and_rejects_a_broken_file() {
    let Some(promtool) = tool("/usr/bin/promtool", "prometheus") else {
        return;
    };
    let text = render(&mixed_records());
    let (ok, said) = promtool_check_metrics(&promtool, &text);
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
    // promtool does catch what the renderer avoids: a family given twice.
    let text = String::from_utf8(text).unwrap();
    let broken = format!(
        "{text}# HELP probe_success again\n# TYPE probe_success gauge\nprobe_success{{target=\"late\"}} 1\n"
    );
    let (ok, said) = promtool_check_metrics(&promtool, broken.as_bytes());
    assert!(!ok, "promtool accepted a family given twice:\n{said}");
}

/// The escaped label reads back as the token in the output's `\xNN` escaping.
#[test]
fn hostile_targets_read_back_as_written() {
    let samples = parse_exposition(std::str::from_utf8(&render(&mixed_records())).unwrap());
    let target = "http://127.0.0.1:8080/q\"b\\s\\xff\\xfe";
    assert_eq!(
        find(&samples, "probe_success", &[("target", target)]),
        Some(1.0)
    );
    // The duplicate (index 8) is left out and counted.
    let first = "http://127.0.0.1:8080/";
    let n = samples
        .iter()
        .filter(|s| s.name == "probe_success" && s.labels["target"] == first)
        .count();
    assert_eq!(n, 1);
    assert_eq!(
        find(&samples, "headprobe_duplicate_targets", &[]),
        Some(1.0)
    );
    assert_eq!(
        find(&samples, "headprobe_targets", &[("result", "ok")]),
        Some(6.0)
    );
}

#[test]
fn node_exporter_serves_the_rendered_file() {
    let Some(binary) = tool(
        "/usr/bin/prometheus-node-exporter",
        "prometheus-node-exporter",
    ) else {
        return;
    };
    let dir = scratch_dir("textfile");
    let text = render(&mixed_records());
    std::fs::write(dir.join("headprobe.prom"), &text).unwrap();
    let mut node = node_exporter(&binary, &dir);
    let served = node.get("/metrics");
    assert_node_serves(&served, &text, &node.get("/metrics"), &node.log());

    // What the check catches: two samples with one name and labels.
    let mut twice = text.clone();
    twice.extend_from_slice(b"probe_success{target=\"http://127.0.0.1:9/\"} 1\n");
    std::fs::write(dir.join("headprobe.prom"), &twice).unwrap();
    let _ = node.get("/metrics");
    let again = parse_exposition(&node.get("/metrics"));
    let gathering = [("cause", "gathering")];
    assert_eq!(
        find(&again, "promhttp_metric_handler_errors_total", &gathering),
        Some(1.0),
        "node_exporter took a duplicate sample"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every sample of `file` is in node_exporter's answer (`served`), and neither the
/// collector nor the gathering saw an error (`next`: the scrape after, which counts the
/// errors of `served`'s).
fn assert_node_serves(served: &str, file: &[u8], next: &str, log: &str) {
    let served = parse_exposition(served);
    let next = parse_exposition(next);
    let gathering = [("cause", "gathering")];
    assert_eq!(
        find(&next, "promhttp_metric_handler_errors_total", &gathering),
        Some(0.0),
        "node_exporter could not gather the file:\n{log}"
    );
    let ours = parse_exposition(std::str::from_utf8(file).unwrap());
    assert!(ours.len() > 20, "{ours:?}");
    for s in &ours {
        assert!(
            served
                .iter()
                .any(|n| n.name == s.name && n.labels == s.labels && n.value == s.value),
            "node_exporter does not serve {s:?}"
        );
    }
    assert_eq!(find(&served, "node_textfile_scrape_error", &[]), Some(0.0));
    assert!(
        served
            .iter()
            .any(|s| s.name == "node_textfile_mtime_seconds"
                && s.labels
                    .get("file")
                    .is_some_and(|f| f.ends_with("headprobe.prom"))),
        "no mtime for the file"
    );
    assert!(
        !log.contains("level=error"),
        "node_exporter logged an error:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------
// The binary (needs --format prometheus and -o)
// ---------------------------------------------------------------------------------------

/// A TLS peer on 127.0.0.1 serving the CA-signed `good` certificate.
fn tls_peer(answer: Vec<u8>) -> Peer {
    Peer::start(tls_handler(
        server_config(&pki().good, futures_rustls::rustls::ALL_VERSIONS),
        answer,
    ))
}

fn ok_11() -> Vec<u8> {
    response(
        "HTTP/1.1 200 OK",
        &["Content-Length: 0", "X-Check: yes", "Connection: close"],
    )
}

/// The mixed run, as `-f FILE`: ok, 404, refused, timeout, TLS, a redirect with
/// -L, a failed --expect-header, and a target with a quote, a backslash and bytes that
/// are not UTF-8. Returns the servers (kept alive) and the arguments.
fn mixed_run() -> (Vec<Server>, Peer, Vec<String>, Vec<u8>) {
    let ok = Server::start(Behaviour::Respond(ok_11()));
    let missing = Server::start(Behaviour::Respond(response(
        "HTTP/1.1 404 Not Found",
        &["Content-Length: 0", "X-Check: yes"],
    )));
    let silent = Server::start(Behaviour::Silent);
    let moved = Server::start(Behaviour::Respond(response(
        "HTTP/1.1 301 Moved Permanently",
        &[
            &format!("Location: http://{}/", ok.addr()),
            "Content-Length: 0",
        ],
    )));
    let mismatch = Server::start(Behaviour::Respond(response(
        "HTTP/1.1 200 OK",
        &["Content-Length: 0", "X-Check: no"],
    )));
    let tls = tls_peer(ok_11());
    let mut list = Vec::new();
    for t in [
        format!("http://{}/", ok.addr()),
        format!("http://{}/missing", missing.addr()),
        format!("http://{}/", refused_addr()),
        format!("http://{}/", silent.addr()),
        format!("https://127.0.0.1:{}/", tls.port()),
        format!("http://{}/", moved.addr()),
        format!("http://{}/", mismatch.addr()),
    ] {
        list.extend_from_slice(t.as_bytes());
        list.push(b'\n');
    }
    // Probed (a quote and a backslash are fine in a path), and not a target at all.
    list.extend_from_slice(format!("http://{}/q\"b\\s\n", ok.addr()).as_bytes());
    list.extend_from_slice(format!("http://{}/bytes", ok.addr()).as_bytes());
    list.extend_from_slice(b"\xff\xfe\n");
    let args: Vec<String> = [
        "--format",
        "prometheus",
        "-L",
        "-t",
        "2s",
        "--expect-header",
        "X-Check: ^yes$",
        "--cacert",
        &cacert(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    (vec![ok, missing, silent, moved, mismatch], tls, args, list)
}

#[test]
fn promtool_accepts_a_mixed_runs_output() {
    let Some(promtool) = tool("/usr/bin/promtool", "prometheus") else {
        return;
    };
    if !prometheus_wired() {
        return;
    }
    let (_servers, _tls, args, list) = mixed_run();
    let file = temp_file("mixed.txt", &list);
    let out = headprobe().args(&args).arg("-f").arg(&file).run();
    out.expect_code(1);
    let (ok, said) = promtool_check_metrics(&promtool, &out.stdout);
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n{}",
        out.out()
    );
    let samples = parse_exposition(&out.out());
    let kinds: BTreeMap<String, String> = samples
        .iter()
        .filter(|s| s.name == "headprobe_probe_error")
        .map(|s| (s.labels["target"].clone(), s.labels["kind"].clone()))
        .collect();
    let mut kinds: Vec<&str> = kinds.values().map(String::as_str).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["header_mismatch", "invalid_target", "refused", "timeout"],
        "{}",
        out.out()
    );
    assert_eq!(
        samples.iter().filter(|s| s.name == "probe_success").count(),
        9,
        "{}",
        out.out()
    );
    assert!(samples
        .iter()
        .any(|s| s.name == "probe_http_redirects" && s.value == 1.0));
    assert!(samples
        .iter()
        .any(|s| s.name == "probe_ssl_earliest_cert_expiry" && s.value == 3_787_009_445.0));
    let label = |end: &str| {
        samples
            .iter()
            .find(|s| s.name == "probe_success" && s.labels["target"].ends_with(end))
            .map(|s| s.value)
    };
    assert_eq!(label("/q\"b\\s"), Some(1.0), "{}", out.out());
    assert_eq!(label("/bytes\\xff\\xfe"), Some(0.0), "{}", out.out());
}

#[test]
fn node_exporter_serves_a_runs_output_file() {
    let Some(binary) = tool(
        "/usr/bin/prometheus-node-exporter",
        "prometheus-node-exporter",
    ) else {
        return;
    };
    if !prometheus_wired() {
        return;
    }
    let (_servers, _tls, args, list) = mixed_run();
    let list = temp_file("mixed.txt", &list);
    let dir = scratch_dir("textfile");
    let prom = dir.join("headprobe.prom");
    let out = headprobe()
        .args(&args)
        .arg("-o")
        .arg(&prom)
        .arg("-f")
        .arg(&list)
        .run();
    out.expect_code(1);
    assert!(out.stdout.is_empty(), "-o still printed: {}", out.out());
    let text = std::fs::read(&prom).expect("the -o file");
    // node_exporter runs as another user: the file is as readable as any new file.
    use std::os::unix::fs::PermissionsExt;
    let plain = dir.join("plain");
    std::fs::write(&plain, b"").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&prom), mode(&plain), "the -o file's mode");
    std::fs::remove_file(&plain).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // No temporary or lock file is left (a lock file does not outlive its run).
    assert_eq!(names, ["headprobe.prom"], "files left beside the output");
    let mut node = node_exporter(&binary, &dir);
    let served = node.get("/metrics");
    assert_node_serves(&served, &text, &node.get("/metrics"), &node.log());
    let _ = std::fs::remove_dir_all(&dir);
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The comparison's targets: ok, 404, refused, https with the test CA's certificate, a
/// redirect to the ok one; the servers stay up while they live.
struct FiveTargets {
    _servers: Vec<Server>,
    _tls: Peer,
    urls: [String; 5],
}

fn five_targets() -> FiveTargets {
    let ok = Server::start(Behaviour::Respond(ok_11()));
    let missing = Server::start(Behaviour::Respond(response(
        "HTTP/1.1 404 Not Found",
        &["Content-Length: 0"],
    )));
    let moved = Server::start(Behaviour::Respond(response(
        "HTTP/1.1 302 Found",
        &[
            &format!("Location: http://{}/landed", ok.addr()),
            "Content-Length: 0",
        ],
    )));
    let tls = tls_peer(ok_11());
    let urls = [
        format!("http://{}/", ok.addr()),
        format!("http://{}/missing", missing.addr()),
        format!("http://{}/", refused_addr()),
        format!("https://127.0.0.1:{}/", tls.port()),
        format!("http://{}/", moved.addr()),
    ];
    FiveTargets {
        _servers: vec![ok, missing, moved],
        _tls: tls,
        urls,
    }
}

/// The families both tools must agree on.
const COMPARED: [&str; 6] = [
    "probe_success",
    "probe_http_status_code",
    "probe_http_version",
    "probe_http_ssl",
    "probe_http_redirects",
    "probe_ssl_earliest_cert_expiry",
];

/// blackbox_exporter's answer for each URL (module http_2xx, IPv4, redirects followed,
/// the test CA trusted).
fn blackbox_probes(binary: &Path, urls: &[String]) -> Vec<Vec<Sample>> {
    let config = temp_file(
        "blackbox.yml",
        format!(
            "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      \
             preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n      \
             follow_redirects: true\n      tls_config:\n        ca_file: {}\n",
            cacert()
        )
        .as_bytes(),
    );
    let port = free_port();
    let mut cmd = Command::new(binary);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let blackbox = Daemon::start(cmd, port, "blackbox_exporter");
    urls.iter()
        .map(|url| {
            let path = format!("/probe?module=http_2xx&target={}", percent_encode(url));
            parse_exposition(&blackbox.get(&path))
        })
        .collect()
}

/// What blackbox says about the five, so the comparison below compares something.
#[test]
fn blackbox_exporter_sees_the_five_targets_as_expected() {
    let Some(binary) = tool(
        "/usr/bin/prometheus-blackbox-exporter",
        "prometheus-blackbox-exporter",
    ) else {
        return;
    };
    let five = five_targets();
    let theirs = blackbox_probes(&binary, &five.urls);
    let expiry = Some(3_787_009_445.0); // pki's good: 2090-01-02T03:04:05Z
    #[rustfmt::skip]
    let want: [[Option<f64>; 6]; 5] = [
        // success  status      version     ssl         redirects   expiry
        [Some(1.0), Some(200.0), Some(1.1), Some(0.0), Some(0.0), None],
        [Some(0.0), Some(404.0), Some(1.1), Some(0.0), Some(0.0), None],
        [Some(0.0), Some(0.0), Some(0.0), Some(0.0), Some(0.0), None],
        [Some(1.0), Some(200.0), Some(1.1), Some(1.0), Some(0.0), expiry],
        [Some(1.0), Some(200.0), Some(1.1), Some(0.0), Some(1.0), None],
    ];
    for ((url, samples), want) in five.urls.iter().zip(&theirs).zip(want) {
        let got: Vec<Option<f64>> = COMPARED.iter().map(|n| find(samples, n, &[])).collect();
        assert_eq!(got, want, "blackbox_exporter on {url}: {samples:?}");
    }
}

#[test]
fn blackbox_exporter_and_headprobe_agree_on_five_targets() {
    let Some(binary) = tool(
        "/usr/bin/prometheus-blackbox-exporter",
        "prometheus-blackbox-exporter",
    ) else {
        return;
    };
    if !prometheus_wired() {
        return;
    }
    let five = five_targets();
    let theirs = blackbox_probes(&binary, &five.urls);
    // blackbox's defaults: 2xx is success, redirects followed, HTTP/1.1.
    let out = headprobe()
        .args(["--format", "prometheus", "-L", "--http-version", "1.1"])
        .args([
            "--expect-status",
            "200-299",
            "-t",
            "5s",
            "--cacert",
            &cacert(),
        ])
        .args(&five.urls)
        .run();
    out.expect_code(1);
    let ours = parse_exposition(&out.out());
    for (url, theirs) in five.urls.iter().zip(&theirs) {
        for name in COMPARED {
            let want = find(theirs, name, &[]);
            let got = find(&ours, name, &[("target", url)]);
            assert_eq!(got, want, "{name} for {url}\nheadprobe:\n{}", out.out());
        }
    }
}

// ---------------------------------------------------------------------------------------
// -o: atomic replacement
// ---------------------------------------------------------------------------------------

/// Reads `path` over and over on a thread until stopped; every distinct content seen.
struct Poller {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Poller {
    fn start(path: PathBuf) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (Arc::clone(&stop), Arc::clone(&seen));
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + WATCHDOG;
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Ok(bytes) = std::fs::read(&path) {
                    let mut v = v.lock().unwrap();
                    if v.last() != Some(&bytes) {
                        v.push(bytes);
                    }
                }
                thread::yield_now();
            }
        });
        Poller {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut self.seen.lock().unwrap())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

const OLD: &[u8] = b"# HELP old_run A previous run\n# TYPE old_run gauge\nold_run 1\n";

#[test]
fn a_reader_sees_the_old_file_or_the_new_one_whole() {
    if !prometheus_wired() {
        return;
    }
    let ok = Server::start(Behaviour::Respond(ok_11()));
    let held = Server::start(Behaviour::Hold(ok_11()));
    let dir = scratch_dir("atomic");
    let prom = dir.join("headprobe.prom");
    std::fs::write(&prom, OLD).unwrap();
    let poller = Poller::start(prom.clone());
    let targets: Vec<String> = (0..50)
        .map(|i| format!("http://{}/{i}", ok.addr()))
        .chain([format!("http://{}/held", held.addr())])
        .collect();
    let run = headprobe()
        .args(["--format", "prometheus", "-t", "20s", "-o"])
        .arg(&prom)
        .args(&targets)
        .spawn();
    held.next_request();
    // Everything but the held probe is done, and the file is still the old one.
    ok.requests(50);
    assert_eq!(std::fs::read(&prom).unwrap(), OLD);
    held.release_all();
    run.finish().expect_code(0);
    let seen = poller.finish();
    let new = std::fs::read(&prom).unwrap();
    assert_ne!(new, OLD);
    assert!(new.ends_with(b"\n"));
    let samples = parse_exposition(std::str::from_utf8(&new).unwrap());
    assert_eq!(
        samples.iter().filter(|s| s.name == "probe_success").count(),
        51
    );
    for content in &seen {
        assert!(
            content == OLD || *content == new,
            "a reader saw neither file whole:\n{}",
            String::from_utf8_lossy(content)
        );
    }
    assert_eq!(seen.first().map(Vec::as_slice), Some(OLD));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_keeps_the_old_file() {
    if !prometheus_wired() {
        return;
    }
    let silent = Server::start(Behaviour::Silent);
    let dir = scratch_dir("interrupted");
    let prom = dir.join("headprobe.prom");
    std::fs::write(&prom, OLD).unwrap();
    let run = headprobe()
        .args(["--format", "prometheus", "-t", "20s", "-o"])
        .arg(&prom)
        .arg(format!("http://{}/", silent.addr()))
        .spawn();
    silent.next_request();
    run.interrupt();
    let out = run.finish();
    assert_ne!(out.code, Some(0), "{out:?}");
    assert_eq!(std::fs::read(&prom).unwrap(), OLD, "{out:?}");
    assert!(
        out.err().contains(&prom.display().to_string()),
        "the interruption does not name the file it left alone:\n{}",
        out.err()
    );
    // node_exporter reads every *.prom in the directory: nothing half-written is left.
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".prom") && n != "headprobe.prom")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_output_directory_that_does_not_exist_is_a_usage_error() {
    if !prometheus_wired() {
        return;
    }
    let server = Server::start(Behaviour::Respond(ok_11()));
    let dir = scratch_dir("missing-parent");
    let prom = dir.join("no/such/dir/headprobe.prom");
    let out = headprobe()
        .args(["--format", "prometheus", "-o"])
        .arg(&prom)
        .arg(server.target())
        .run();
    out.expect_code(2);
    assert!(out.err().contains("no/such/dir"), "{}", out.err());
    assert!(server
        .next_request_within(Duration::from_millis(200))
        .is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// The recipe's command line and blackbox_exporter's http_2xx, on nginx
// ---------------------------------------------------------------------------------------

/// The systemd unit's `ExecStart` as shipped, with this machine's paths: the binary under
/// test, `-o` into `out`, `-f` reading `sites`, every other word as it is.
fn recipe_args(out: &Path, sites: &Path) -> Vec<String> {
    let service = std::fs::read_to_string(Path::new(ROOT).join("deploy/systemd/headprobe.service"))
        .expect("the unit");
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let mut words: Vec<String> = exec.split_whitespace().map(String::from).collect();
    for i in 1..words.len() {
        match words[i - 1].as_str() {
            "-o" => words[i] = out.display().to_string(),
            "-f" => words[i] = sites.display().to_string(),
            _ => {}
        }
    }
    words.remove(0);
    words
}

/// nginx's sites: plain http (`/` a file, `/moved` 301 to it, `/missing` 404, `/broken`
/// 500, `/down` 503), and `/` over TLS 1.3 and over TLS 1.2, each suite pinned, serving
/// pki's `early_intermediate` with its intermediate (which expires first).
struct Nginx {
    _daemon: Daemon,
    dir: PathBuf,
    http: u16,
    tls13: u16,
    tls12: u16,
}

const TLS13_SUITE: &str = "TLS_AES_128_GCM_SHA256";
const TLS12_SUITE: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";

fn nginx() -> Option<Nginx> {
    let binary = tool("/usr/sbin/nginx", "nginx")?;
    let dir = scratch_dir("nginx");
    std::fs::create_dir(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/index.html"), "<p>index</p>\n").unwrap();
    let leaf = &pki().early_intermediate;
    let chain: String = leaf.full_chain().iter().map(|c| pem_of(c)).collect();
    let cert = dir.join("chain.pem");
    std::fs::write(&cert, chain).unwrap();
    let (http, tls13, tls12) = (free_port(), free_port(), free_port());
    let d = dir.display();
    let tls = |port: u16, protocols: &str, suites: &str| {
        format!(
            " server {{\n  listen 127.0.0.1:{port} ssl;\n  ssl_certificate {cert};\n  \
             ssl_certificate_key {key};\n  ssl_protocols {protocols};\n  {suites}\n  \
             root {d}/www;\n }}\n",
            cert = cert.display(),
            key = leaf.key_pem_file(),
        )
    };
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log stderr notice;\nevents {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         server {{\n  listen 127.0.0.1:{http};\n  root {d}/www;\n\
         location = /moved {{ return 301 /; }}\n  location = /missing {{ return 404; }}\n\
         location = /broken {{ return 500; }}\n  location = /down {{ return 503; }}\n }}\n\
         {t13}{t12}}}\n",
        t13 = tls(
            tls13,
            "TLSv1.3",
            &format!("ssl_conf_command Ciphersuites {TLS13_SUITE};")
        ),
        t12 = tls(
            tls12,
            "TLSv1.2",
            "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;"
        ),
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut cmd = Command::new(binary);
    cmd.arg("-p")
        .arg(format!("{d}/"))
        .arg("-e")
        .arg("stderr")
        .arg("-c")
        .arg(dir.join("nginx.conf"));
    // Logged once the listening sockets are open, when the event loop starts.
    let daemon = Daemon::start_until(cmd, http, "nginx", "event method");
    Some(Nginx {
        _daemon: daemon,
        dir,
        http,
        tls13,
        tls12,
    })
}

/// blackbox_exporter with module http_2xx at its defaults (`prober: http`, nothing else);
/// the test CA is trusted through Go's `SSL_CERT_FILE`, as `--cacert` does for headprobe.
fn blackbox_http_2xx(binary: &Path) -> Daemon {
    let config = temp_file(
        "blackbox-defaults.yml",
        b"modules:\n  http_2xx:\n    prober: http\n",
    );
    let port = free_port();
    let mut cmd = Command::new(binary);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .env("SSL_CERT_FILE", cacert());
    Daemon::start(cmd, port, "blackbox_exporter")
}

/// `openssl x509 -noout OPTIONS` on a PEM file: what follows the `=`.
fn openssl_x509(pem: &Path, option: &str) -> Option<String> {
    let openssl = tool("/usr/bin/openssl", "openssl")?;
    let (ok, out, err) = run_tool(
        Command::new(openssl)
            .args(["x509", "-noout", "-nameopt", "RFC2253"])
            .args(option.split(' '))
            .arg("-in")
            .arg(pem),
        "openssl x509",
    );
    assert!(ok, "openssl x509 {option}: {err}");
    Some(
        out.trim()
            .split_once('=')
            .expect("NAME=value")
            .1
            .to_string(),
    )
}

#[test]
fn blackbox_exporter_and_the_recipes_command_line_agree_on_nginx() {
    let (Some(blackbox), Some(promtool)) = (
        tool(
            "/usr/bin/prometheus-blackbox-exporter",
            "prometheus-blackbox-exporter",
        ),
        tool("/usr/bin/promtool", "prometheus"),
    ) else {
        return;
    };
    let Some(nginx) = nginx() else {
        return;
    };
    let http = |path: &str| format!("http://127.0.0.1:{}{path}", nginx.http);
    let urls = [
        http("/"),
        http("/moved"),
        http("/missing"),
        http("/broken"),
        http("/down"),
        format!("https://127.0.0.1:{}/", nginx.tls13),
        format!("https://127.0.0.1:{}/", nginx.tls12),
    ];
    let sites = temp_file("sites.txt", (urls.join("\n") + "\n").as_bytes());
    let out_file = nginx.dir.join("headprobe.prom");
    let out = headprobe()
        .args(recipe_args(&out_file, &sites))
        .args(["--cacert", &cacert()])
        .run();
    out.expect_code(1);
    let text = std::fs::read_to_string(&out_file).expect("the -o file");
    let (ok, said) = promtool_check_metrics(&promtool, text.as_bytes());
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n{text}"
    );
    let ours = parse_exposition(&text);

    let exporter = blackbox_http_2xx(&blackbox);
    let has_cipher_family = std::cell::Cell::new(false);
    for url in &urls {
        let path = format!("/probe?module=http_2xx&target={}", percent_encode(url));
        let theirs = parse_exposition(&exporter.get(&path));
        let mine: Vec<Sample> = ours
            .iter()
            .filter(|s| s.labels.get("target") == Some(url))
            .map(|s| {
                let mut s = s.clone();
                s.labels.remove("target");
                s
            })
            .collect();
        // Families with one unlabelled sample: the values agree (absent in both too).
        for name in [
            "probe_success",
            "probe_http_status_code",
            "probe_http_redirects",
            "probe_http_content_length",
            "probe_http_ssl",
            "probe_http_version",
            "probe_http_last_modified_timestamp_seconds",
            "probe_ssl_earliest_cert_expiry",
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            "probe_ip_addr_hash",
        ] {
            assert_eq!(
                find(&mine, name, &[]),
                find(&theirs, name, &[]),
                "{name} for {url}\nheadprobe:\n{text}\nblackbox:\n{theirs:?}"
            );
        }
        // Labelled families: the same label sets (blackbox 0.23 has no cipher family
        // and no serialnumber label yet; where it has them they must agree).
        for name in [
            "probe_tls_version_info",
            "probe_tls_cipher_info",
            "probe_ssl_last_chain_info",
        ] {
            let labels = |samples: &[Sample]| -> Vec<BTreeMap<String, String>> {
                samples
                    .iter()
                    .filter(|s| s.name == name)
                    .map(|s| s.labels.clone())
                    .collect()
            };
            let (mut m, t) = (labels(&mine), labels(&theirs));
            if name == "probe_tls_cipher_info" && t.is_empty() {
                continue;
            }
            if name == "probe_tls_cipher_info" {
                has_cipher_family.set(true);
            }
            if let Some(theirs) = t.first() {
                for l in &mut m {
                    l.retain(|k, _| theirs.contains_key(k));
                }
            }
            assert_eq!(m, t, "{name} for {url}\nheadprobe:\n{text}");
        }
    }
    if !has_cipher_family.get() {
        eprintln!("note: this blackbox_exporter has no probe_tls_cipher_info; checked against nginx's pinned suites");
    }

    // What each site is, so the agreement above is about something.
    let at = |url: &str, name: &str| find(&ours, name, &[("target", url)]);
    let expect: [(&str, f64, f64, f64); 5] = [
        ("/", 1.0, 200.0, 0.0),
        ("/moved", 1.0, 200.0, 1.0),
        ("/missing", 0.0, 404.0, 0.0),
        ("/broken", 0.0, 500.0, 0.0),
        ("/down", 0.0, 503.0, 0.0),
    ];
    for (path, success, status, redirects) in expect {
        let url = http(path);
        assert_eq!(at(&url, "probe_success"), Some(success), "{url}\n{text}");
        assert_eq!(
            at(&url, "probe_http_status_code"),
            Some(status),
            "{url}\n{text}"
        );
        assert_eq!(
            at(&url, "probe_http_redirects"),
            Some(redirects),
            "{url}\n{text}"
        );
    }
    let index_len = "<p>index</p>\n".len() as f64;
    assert_eq!(at(&http("/"), "probe_http_content_length"), Some(index_len));
    assert!(at(&http("/"), "probe_http_last_modified_timestamp_seconds").is_some());
    // The intermediate expires first (2080-06-01): that is the earliest expiry.
    for (url, suite, version) in [
        (&urls[5], TLS13_SUITE, "TLS 1.3"),
        (&urls[6], TLS12_SUITE, "TLS 1.2"),
    ] {
        assert_eq!(
            at(url, "probe_ssl_earliest_cert_expiry"),
            Some(EARLY_NOT_AFTER as f64),
            "{url}\n{text}"
        );
        assert_eq!(at(url, "probe_success"), Some(1.0), "{url}\n{text}");
        let cipher = [("target", url.as_str()), ("cipher", suite)];
        assert_eq!(
            find(&ours, "probe_tls_cipher_info", &cipher),
            Some(1.0),
            "{text}"
        );
        let v = [("target", url.as_str()), ("version", version)];
        assert_eq!(
            find(&ours, "probe_tls_version_info", &v),
            Some(1.0),
            "{text}"
        );
    }

    // The leaf's labels as openssl reads the certificate.
    let leaf_pem = temp_file("leaf.pem", pem_of(&pki().early_intermediate.der).as_bytes());
    let Some(fingerprint) = openssl_x509(&leaf_pem, "-fingerprint -sha256") else {
        return;
    };
    let fingerprint = fingerprint.replace(':', "").to_lowercase();
    let serial = openssl_x509(&leaf_pem, "-serial").unwrap().to_lowercase();
    let subject = openssl_x509(&leaf_pem, "-subject").unwrap();
    let issuer = openssl_x509(&leaf_pem, "-issuer").unwrap();
    for url in &urls[5..] {
        let info = [
            ("target", url.as_str()),
            ("fingerprint_sha256", fingerprint.as_str()),
            ("serialnumber", serial.as_str()),
            ("subject", subject.as_str()),
            ("issuer", issuer.as_str()),
            ("subjectalternative", "localhost,probe.test"),
        ];
        assert_eq!(
            find(&ours, "probe_ssl_last_chain_info", &info),
            Some(1.0),
            "{info:?}\n{text}"
        );
    }
}

/// `--only-failed` leaves out the samples of ok targets, not their counts: the run-wide
/// families cover every target (two of five ok read `result="ok"` 0 before).
#[test]
fn only_failed_writes_failed_targets_and_counts_every_one() {
    let ok = Server::start(Behaviour::Respond(ok_11()));
    let mut urls = vec![
        format!("http://{}/a", ok.addr()),
        format!("http://{}/b", ok.addr()),
    ];
    urls.extend((0..3).map(|i| format!("http://{}/{i}", refused_addr())));
    let out = headprobe()
        .args(["--format", "prometheus", "--only-failed"])
        .args(&urls)
        .run();
    out.expect_code(1);
    let text = out.out();
    let samples = parse_exposition(&text);
    let count = |name: &str, labels: &[(&str, &str)]| find(&samples, name, labels);
    assert_eq!(
        count("headprobe_targets", &[("result", "ok")]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        count("headprobe_targets", &[("result", "failed")]),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        count("headprobe_target_errors", &[("kind", "refused")]),
        Some(3.0),
        "{text}"
    );
    let written: Vec<&str> = samples
        .iter()
        .filter(|s| s.name == "probe_success")
        .map(|s| s.labels["target"].as_str())
        .collect();
    assert_eq!(written, &urls[2..], "{text}");
}
