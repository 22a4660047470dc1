//! The README's recipes, run as a user would paste them, against loopback stand-ins.
//!
//! The convention (README.md, for whoever adds a recipe):
//!
//! - Every fenced block tagged `sh` or `console` has a marker on the nearest non-blank
//!   line above it: `<!-- run -->` (this test runs it) or `<!-- not run: REASON -->`
//!   (it needs the internet, root, a daemon, a signal's timing...). A block without one
//!   fails the test, so each new recipe is a decision.
//! - A run marker may carry clauses, `;`-separated: `exit N [N ...]`, the exit status of
//!   each command in order (the last one repeats; 0 when not given), and
//!   `needs TOOL [TOOL ...]`, tools that must be on the PATH (else the block is skipped
//!   with a message). Example: `<!-- run: exit 1; needs jq -->`.
//! - A `sh` block runs as one `sh` script; its exit status is checked.
//! - A `console` block is commands (`$ ` lines, continued by a trailing `\`), each
//!   followed by what it prints (standard output and error, in one stream). The lines
//!   are compared as a multiset (output of concurrent probes comes in any order); a line
//!   `...` allows more lines than those shown. A status record's milliseconds,
//!   JSON numbers under `timing_ms`, and the values of Prometheus samples named
//!   `*_seconds` may differ; every other byte must be as shown.
//! - `$ cat FILE`, when FILE does not exist yet, creates FILE from the lines shown
//!   below it (that is how a recipe's target list gets made).
//! - Addresses: only the stand-ins below, on 127.0.0.1. Their README port numbers are
//!   replaced by the real ones wherever they stand as a number of their own in commands
//!   and files (so `--resolve www.example.test:8080:127.0.0.1` works too), and back in
//!   the output. A recipe naming another `127.0.0.1:` port fails. `headprobe` is a
//!   wrapper on the PATH that points `--resolver` at a DNS server of the test's, which
//!   answers nobody: a recipe that needs DNS fails (use IP literals or `--resolve`).
//!
//! The stand-ins (README address: what answers there):
//!
//! - 127.0.0.1:8080: a web server with nginx's head (fixed Date): `/` 200, `/missing`
//!   404, `/old` 301 to `/`; an absolute-form (proxy) request is answered as for its path.
//! - 127.0.0.1:8000: the same, adding `X-Origin: yes` (a proxy check's origin).
//! - 127.0.0.1:8081: accepts and never answers.
//! - 127.0.0.1:8082: HTTP/2 in clear text (`--http2-prior-knowledge`): 200, nginx's fields.
//! - 127.0.0.1:8443: HTTPS, HTTP/1.1, nginx's head. The certificate (probe.test,
//!   localhost, 127.0.0.1) is issued by the CA in `ca.pem`, in the recipes' directory.
//! - 127.0.0.1:8444: HTTPS offering h2 in ALPN, the same certificate: HTTP/2 200 and
//!   nginx's fields with `--http2`.
//! - 127.0.0.1:3128: an HTTP proxy. 127.0.0.1:1080: a SOCKS5 proxy.
//! - 127.0.0.1:3199: nothing listens (refused).
//!
//! Each headprobe run inside a recipe is also checked on its own: a usage error (exit
//! 2: an option that no longer exists) fails the recipe even inside `if` or a pipe.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use futures_rustls::rustls;
use serde_json::Value;

use crate::util::dns::{Action, DnsServer};
use crate::util::h2::{head, hello, writes, H2Peer};
use crate::util::peer::{tls_handler, Peer};
use crate::util::pki::{pki, server_config};
use crate::util::proxy::{dead, Dead, HttpProxy, ScriptedProxy, Socks5};
use crate::util::{close_and_drain, read_head, temp_file, Behaviour, Server};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn readme() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("read README.md")
}

// ---------------------------------------------------------------------------------------
// The README's blocks
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Marker {
    Run { exits: Vec<i32>, needs: Vec<String> },
    NotRun,
    Missing,
}

#[derive(Clone, Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    marker: Marker,
    body: Vec<String>,
}

/// `<!-- run ... -->` or `<!-- not run: ... -->`, or None for any other line.
fn marker(line: &str) -> Option<Result<Marker, String>> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    if inner.starts_with("not run") {
        return Some(Ok(Marker::NotRun));
    }
    let rest = inner.strip_prefix("run")?;
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let (mut exits, mut needs) = (Vec::new(), Vec::new());
    for clause in rest.split(';').map(str::trim).filter(|c| !c.is_empty()) {
        let mut words = clause.split_whitespace();
        match words.next() {
            Some("exit") => {
                for w in words {
                    match w.parse() {
                        Ok(n) => exits.push(n),
                        Err(_) => return Some(Err(format!("bad exit status {w:?}"))),
                    }
                }
            }
            Some("needs") => needs.extend(words.map(String::from)),
            _ => return Some(Err(format!("unknown clause {clause:?}"))),
        }
    }
    Some(Ok(Marker::Run { exits, needs }))
}

/// The `sh` and `console` blocks, each with its marker.
fn blocks(text: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let lang = info.split_whitespace().next().unwrap_or("").to_string();
        let open = i;
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && lines[i].trim() != "```" {
            body.push(lines[i].to_string());
            i += 1;
        }
        i += 1;
        if lang != "sh" && lang != "console" {
            continue;
        }
        let marker = match last_text_before(&lines, open).and_then(|l| marker(lines[l])) {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(format!("README.md:{}: {e}", open)),
            None => Marker::Missing,
        };
        out.push(Block {
            line: open + 1,
            lang,
            marker,
            body,
        });
    }
    Ok(out)
}

fn last_text_before(lines: &[&str], i: usize) -> Option<usize> {
    (0..i).rev().find(|&j| !lines[j].trim().is_empty())
}

/// A console block's commands, each with the lines it is shown to print.
fn commands(body: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if let Some(cmd) = body[i].strip_prefix("$ ") {
            let mut cmd = cmd.to_string();
            while cmd.ends_with('\\') && i + 1 < body.len() {
                i += 1;
                cmd.push('\n');
                cmd.push_str(&body[i]);
            }
            out.push((cmd, Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(body[i].clone());
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------
// The stand-ins
// ---------------------------------------------------------------------------------------

/// A web server answering as nginx's default site does, with a fixed Date so that the
/// README can show its head as it is.
fn site(origin: bool) -> Peer {
    Peer::start(Arc::new(move |mut s: TcpStream, _| {
        let head = read_head(&mut s);
        let text = String::from_utf8_lossy(&head);
        let target = text.split(' ').nth(1).unwrap_or("/");
        // An absolute-form request (a proxy's) is answered as for its path, as nginx does.
        let path = match target.strip_prefix("http://") {
            Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => target,
        };
        let local = s.local_addr().unwrap();
        let (status, extra) = match path {
            "/missing" => ("404 Not Found", String::new()),
            "/old" => (
                "301 Moved Permanently",
                format!("Location: http://{local}/\r\n"),
            ),
            _ => ("200 OK", String::new()),
        };
        let origin = if origin { "X-Origin: yes\r\n" } else { "" };
        let _ = s.write_all(nginx_head(status, &format!("{extra}{origin}")).as_bytes());
        close_and_drain(&mut s);
    }))
}

/// nginx's head for this status, with `extra` header lines before `Connection`.
fn nginx_head(status: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nServer: nginx/1.22.1\r\nDate: Tue, 08 Dec 2026 01:00:00 GMT\r\n\
         Content-Type: text/html\r\nContent-Length: 615\r\n{extra}Connection: close\r\n\r\n"
    )
}

/// nginx's fields over HTTP/2 (lower-case names, no Connection).
const H2_FIELDS: [(&str, &str); 4] = [
    ("server", "nginx/1.22.1"),
    ("date", "Tue, 08 Dec 2026 01:00:00 GMT"),
    ("content-type", "text/html"),
    ("content-length", "615"),
];

/// The stand-ins, the scratch directory recipes run in, and the `headprobe` wrapper.
struct Lab {
    dir: PathBuf,
    bin: PathBuf,
    log: PathBuf,
    dns: DnsServer,
    /// (README port, real port).
    ports: Vec<(u16, u16)>,
    _peers: Vec<Peer>,
    _silent: Server,
    _dead: Dead,
}

impl Lab {
    fn start() -> Lab {
        let web = site(false);
        let origin = site(true);
        let silent = Server::start(Behaviour::Silent);
        let h2 = H2Peer::clear(writes([hello(), head("200", &H2_FIELDS)].concat()));
        let https = Peer::start(tls_handler(
            server_config(&pki().good, rustls::ALL_VERSIONS),
            nginx_head("200 OK", "").into_bytes(),
        ));
        let https_h2 = H2Peer::tls(
            &["h2", "http/1.1"],
            writes([hello(), head("200", &H2_FIELDS)].concat()),
        );
        let http_proxy = HttpProxy::default().start();
        let socks5 = Socks5::default().start();
        let dead = dead();
        let ports = vec![
            (8080, web.port()),
            (8000, origin.port()),
            (8081, silent.port()),
            (8082, h2.peer.port()),
            (8443, https.port()),
            (8444, https_h2.peer.port()),
            (3128, http_proxy.port()),
            (1080, socks5.port()),
            (3199, dead.addr.port()),
        ];
        // Nobody's resolver: every question is refused, and counted.
        let dns = DnsServer::scripted(&[], |_| Action::Rcode(5));
        let dir = temp_file("readme", b"");
        std::fs::remove_file(&dir).unwrap();
        let bin = dir.join(".bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(&pki().ca_file, dir.join("ca.pem")).unwrap();
        let log = dir.join(".headprobe-runs");
        let wrapper = bin.join("headprobe");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n'{}' --resolver {} \"$@\"\nrc=$?\necho \"$rc\" >> '{}'\nexit $rc\n",
                env!("CARGO_BIN_EXE_headprobe"),
                dns.arg(),
                log.display()
            ),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&wrapper, perms).unwrap();
        Lab {
            dir,
            bin,
            log,
            dns,
            ports,
            _peers: vec![
                web,
                origin,
                h2.peer,
                https,
                https_h2.peer,
                http_proxy,
                socks5,
            ],
            _silent: silent,
            _dead: dead,
        }
    }

    /// README ports to the stand-ins' ports; fails on a loopback port it does not serve.
    fn to_real(&self, text: &str) -> Result<String, String> {
        for (i, _) in text.match_indices("127.0.0.1:") {
            let port: String = text[i + 10..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if !self.ports.iter().any(|(r, _)| r.to_string() == port) {
                return Err(format!(
                    "127.0.0.1:{port} is none of the test's stand-ins (see tests/suite/readme.rs)"
                ));
            }
        }
        let mut text = text.to_string();
        for (readme, real) in &self.ports {
            text = replace_number(&text, *readme, *real);
        }
        Ok(text)
    }

    /// The stand-ins' ports back to the README's.
    fn to_readme(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (readme, real) in &self.ports {
            text = replace_number(&text, *real, *readme);
        }
        text
    }

    /// Runs `script` with `sh` in the scratch directory: exit status and output (both
    /// streams in one). Also fails when a headprobe inside exited 2 unless `exit` is 2,
    /// or when anything asked DNS.
    fn sh(&self, script: &str, exit: i32) -> Result<(i32, String), String> {
        let _ = std::fs::remove_file(&self.log);
        let asked = self.dns.total();
        let out = Command::new("timeout")
            .args(["60", "sh", "-c", &format!("exec 2>&1\n{script}")])
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("LC_ALL", "C")
            .env("HOME", &self.dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run sh: {e}"))?;
        let code = out.status.code().unwrap_or(-1);
        let output = self.to_readme(&String::from_utf8_lossy(&out.stdout));
        let runs = std::fs::read_to_string(&self.log).unwrap_or_default();
        if exit != 2 && runs.lines().any(|rc| rc.trim() == "2") {
            return Err(format!("headprobe exited 2 (a usage error):\n{output}"));
        }
        let questions = self.dns.log();
        if questions.len() > asked {
            let names: Vec<String> = questions[asked..].iter().map(|q| q.name.clone()).collect();
            return Err(format!(
                "the recipe asked DNS for {names:?}: use IP literals or --resolve"
            ));
        }
        if code == 124 {
            return Err(format!("did not end within 60s:\n{output}"));
        }
        Ok((code, output))
    }

    /// `$ cat FILE` makes FILE from the lines shown, unless it exists.
    fn fixture(&self, cmd: &str, shown: &[String]) -> Result<(), String> {
        let file = cmd.strip_prefix("cat ").filter(|f| {
            !f.is_empty()
                && f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        });
        let Some(path) = file.map(|f| self.dir.join(f)) else {
            return Ok(());
        };
        if !path.exists() {
            let content = self.to_real(&(shown.join("\n") + "\n"))?;
            std::fs::write(&path, content).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn run(&self, block: &Block) -> Result<(), String> {
        let Marker::Run { exits, needs } = &block.marker else {
            return Ok(());
        };
        let exit_of = |i: usize| exits.get(i).or(exits.last()).copied().unwrap_or(0);
        if let Some(tool) = needs.iter().find(|t| !on_path(t)) {
            eprintln!(
                "skipped: README.md:{} needs {tool}, which is not installed",
                block.line
            );
            return Ok(());
        }
        if block.lang == "sh" {
            let script = self.to_real(&block.body.join("\n"))?;
            let (code, output) = self.sh(&script, exit_of(0))?;
            if code != exit_of(0) {
                return Err(format!(
                    "exit status {code}, the README says {}:\n{output}",
                    exit_of(0)
                ));
            }
            return Ok(());
        }
        for (i, (cmd, shown)) in commands(&block.body).iter().enumerate() {
            self.fixture(cmd, shown)?;
            let real = self.to_real(cmd)?;
            let (code, output) = self
                .sh(&real, exit_of(i))
                .map_err(|e| format!("$ {cmd}\n{e}"))?;
            if code != exit_of(i) {
                return Err(format!(
                    "$ {cmd}\nexit status {code}, the README says {}:\n{output}",
                    exit_of(i)
                ));
            }
            let got: Vec<String> = output.lines().map(String::from).collect();
            compare(shown, &got).map_err(|e| format!("$ {cmd}\n{e}\nit printed:\n{output}"))?;
        }
        Ok(())
    }
}

/// `text` with every `from` that stands as a number of its own (no digit either side)
/// replaced by `to`.
fn replace_number(text: &str, from: u16, to: u16) -> String {
    let from = from.to_string();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(&from) {
        let end = i + from.len();
        let before = i > 0 && bytes[i - 1].is_ascii_digit();
        let after = end < bytes.len() && bytes[end].is_ascii_digit();
        if before || after || i < last {
            continue;
        }
        out.push_str(&text[last..i]);
        out.push_str(&to.to_string());
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

fn on_path(tool: &str) -> bool {
    ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

// ---------------------------------------------------------------------------------------
// Comparing output
// ---------------------------------------------------------------------------------------

/// Every shown line matches a line printed, each printed line used once; without a
/// `...` line, nothing else was printed.
fn compare(shown: &[String], got: &[String]) -> Result<(), String> {
    let more_allowed = shown.iter().any(|l| l.trim() == "...");
    let mut used = vec![false; got.len()];
    let mut missing = Vec::new();
    for want in shown.iter().filter(|l| l.trim() != "...") {
        match (0..got.len()).find(|&j| !used[j] && line_matches(want, &got[j])) {
            Some(j) => used[j] = true,
            None => missing.push(want.clone()),
        }
    }
    let extra: Vec<&String> = (0..got.len())
        .filter(|&j| !used[j])
        .map(|j| &got[j])
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the README shows lines it did not print: {missing:#?}"
        ));
    }
    if !more_allowed && !extra.is_empty() {
        return Err(format!(
            "it printed lines the README does not show: {extra:#?}"
        ));
    }
    Ok(())
}

fn line_matches(want: &str, got: &str) -> bool {
    if want == got {
        return true;
    }
    let (w, g): (Vec<&str>, Vec<&str>) = (want.split('\t').collect(), got.split('\t').collect());
    if w.len() == 5 && g.len() == 5 {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        return (0..5).all(|i| {
            if i == 2 {
                digits(w[i]) && digits(g[i])
            } else {
                w[i] == g[i]
            }
        });
    }
    if want.starts_with('{') {
        if let (Ok(w), Ok(g)) = (
            serde_json::from_str::<Value>(want),
            serde_json::from_str::<Value>(got),
        ) {
            return same_shape(&w, &g, false);
        }
    }
    sample_matches(want, got)
}

/// Equal JSON, except that numbers under `timing_ms` may differ.
fn same_shape(want: &Value, got: &Value, any_number: bool) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            w.len() == g.len()
                && w.iter().all(|(k, v)| {
                    g.get(k)
                        .is_some_and(|gv| same_shape(v, gv, any_number || k == "timing_ms"))
                })
        }
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| same_shape(a, b, any_number))
        }
        (Value::Number(_), Value::Number(_)) if any_number => true,
        _ => want == got,
    }
}

/// A Prometheus sample whose family is a time (`*_seconds`): any value.
fn sample_matches(want: &str, got: &str) -> bool {
    let (Some((wk, wv)), Some((gk, gv))) = (want.rsplit_once(' '), got.rsplit_once(' ')) else {
        return false;
    };
    let family = wk.split('{').next().unwrap_or(wk);
    wk == gk
        && family.ends_with("_seconds")
        && !family.contains(' ')
        && wv.parse::<f64>().is_ok()
        && gv.parse::<f64>().is_ok()
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[test]
fn every_shell_block_says_whether_the_test_runs_it() {
    let blocks = blocks(&readme()).unwrap_or_else(|e| panic!("{e}"));
    let unmarked: Vec<usize> = blocks
        .iter()
        .filter(|b| b.marker == Marker::Missing)
        .map(|b| b.line)
        .collect();
    assert!(
        unmarked.is_empty(),
        "README.md blocks at lines {unmarked:?} need <!-- run --> or <!-- not run: why --> \
         on the line above (see tests/suite/readme.rs)"
    );
    assert!(
        blocks
            .iter()
            .filter(|b| matches!(b.marker, Marker::Run { .. }))
            .count()
            >= 5,
        "the README runs next to none of its recipes"
    );
}

#[test]
fn the_readme_recipes_run_as_shown() {
    let blocks = blocks(&readme()).unwrap_or_else(|e| panic!("{e}"));
    let lab = Lab::start();
    let failures: Vec<String> = blocks
        .iter()
        .filter_map(|b| {
            lab.run(b)
                .err()
                .map(|e| format!("README.md:{}:\n{e}", b.line))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The check itself: a recipe whose option was renamed (as a README left behind by a
/// rename would show it) fails, in a console block and inside a script's `if`.
#[test]
fn a_recipe_with_an_option_that_does_not_exist_fails() {
    let blocks = blocks(&readme()).unwrap_or_else(|e| panic!("{e}"));
    let lab = Lab::start();
    for lang in ["console", "sh"] {
        let at = blocks
            .iter()
            .position(|b| {
                b.lang == lang
                    && matches!(&b.marker, Marker::Run { needs, .. } if needs.is_empty())
                    && b.body.iter().any(|l| l.contains("headprobe -"))
            })
            .unwrap_or_else(|| panic!("no runnable {lang} block with an option"));
        // The files the blocks before it make with `$ cat FILE`.
        for b in blocks[..at].iter().filter(|b| b.lang == "console") {
            for (cmd, shown) in commands(&b.body) {
                lab.fixture(&cmd, &shown).unwrap();
            }
        }
        let mut block = blocks[at].clone();
        assert_eq!(lab.run(&block), Ok(()), "README.md:{}", block.line);
        for line in &mut block.body {
            *line = line.replace("headprobe -", "headprobe --no-such-option -");
        }
        let err = lab
            .run(&block)
            .expect_err("a renamed option must fail the recipe");
        assert!(err.contains("no-such-option"), "{err}");
    }
}

#[test]
fn output_comparison_allows_only_what_varies() {
    let s = |v: &[&str]| v.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    let status = "127.0.0.1:8080\t200\t1\t127.0.0.1:8080\tOK";
    assert!(compare(
        &s(&[status]),
        &s(&["127.0.0.1:8080\t200\t17\t127.0.0.1:8080\tOK"])
    )
    .is_ok());
    assert!(compare(
        &s(&[status]),
        &s(&["127.0.0.1:8080\t404\t1\t127.0.0.1:8080\tOK"])
    )
    .is_err());
    assert!(compare(&s(&["a", "b"]), &s(&["b", "a"])).is_ok());
    assert!(compare(&s(&["a"]), &s(&["a", "b"])).is_err());
    assert!(compare(&s(&["a", "..."]), &s(&["a", "b"])).is_ok());
    assert!(compare(&s(&["a", "b"]), &s(&["a"])).is_err());
    let json = r#"{"status":200,"timing_ms":{"connect":0.1,"dns":null}}"#;
    assert!(line_matches(
        json,
        r#"{"status":200,"timing_ms":{"connect":3.5,"dns":null}}"#
    ));
    assert!(!line_matches(
        json,
        r#"{"status":201,"timing_ms":{"connect":0.1,"dns":null}}"#
    ));
    assert!(!line_matches(
        json,
        r#"{"status":200,"timing_ms":{"connect":0.1}}"#
    ));
    assert!(line_matches(
        r#"probe_duration_seconds{target="a"} 0.001"#,
        r#"probe_duration_seconds{target="a"} 0.0042"#
    ));
    assert!(!line_matches(
        r#"probe_success{target="a"} 1"#,
        r#"probe_success{target="a"} 0"#
    ));
    assert_eq!(
        replace_number("127.0.0.1:8080 18080 8080", 8080, 41234),
        "127.0.0.1:41234 18080 41234"
    );
}
