//! HTTP/2 against the servers users meet (issue 23): nginx with its HTTP/2 module and
//! nghttpd (nghttp2's server), each started by the test on a loopback port. For every
//! path, `headprobe --http2` must give the status and header list that
//! `curl --http2 -sS -D - -o /dev/null` gives for the same URL, in the same order (the
//! `date` values aside, as a second may tick between the two).
//!
//! Each test skips, saying why, when its server or curl is not installed (`.ci/run`
//! installs them).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::pki::pki;
use crate::util::{free_port, headprobe, tool, WAIT, WATCHDOG};

/// A (status, [(name, value)]) head, with `date` values blanked.
type Head = (u16, Vec<(String, String)>);

/// A fresh directory for one server's files.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "headprobe-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(dir.join("www/dir")).expect("make the server's directory");
    std::fs::write(dir.join("www/index.html"), "<p>index</p>\n").unwrap();
    std::fs::write(dir.join("www/dir/index.html"), "<p>dir</p>\n").unwrap();
    dir
}

/// A server process, killed and reaped on drop.
struct Daemon {
    child: Child,
    port: u16,
    what: &'static str,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts `cmd`, which listens on 127.0.0.1:`port`, and waits (at most `WAIT`) until
    /// the port takes connections. Neither server says on stdout when it is ready.
    fn start(mut cmd: Command, port: u16, what: &'static str) -> Daemon {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let mut daemon = Daemon { child, port, what };
        let deadline = Instant::now() + WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("{what} exited at start: {status}");
            }
            let addr = ("127.0.0.1", port);
            if TcpStream::connect(addr).is_ok() {
                return daemon;
            }
            assert!(Instant::now() < deadline, "{what} did not listen on {port}");
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

/// Response fields nginx adds to `/many`: enough to fill several HPACK strings and
/// Huffman-coded values.
const MANY: usize = 60;

fn nginx() -> Option<Daemon> {
    let binary = tool("/usr/sbin/nginx", "nginx")?;
    let dir = scratch("nginx");
    let d = dir.display();
    let port = free_port();
    let leaf = &pki().good;
    let many: String = (0..MANY)
        .map(|i| {
            format!(
                "add_header x-many-{i:02} \"value {i}{}\";\n",
                " v".repeat(i)
            )
        })
        .collect();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         server {{\n  listen 127.0.0.1:{port} ssl http2;\n\
         ssl_certificate {cert};\n  ssl_certificate_key {key};\n  root {d}/www;\n\
         location /moved {{ return 301 /; }}\n\
         location /many {{\n{many} return 200 \"many\\n\";\n }}\n }}\n}}\n",
        cert = leaf.pem_file(),
        key = leaf.key_pem_file(),
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut cmd = Command::new(binary);
    cmd.arg("-p")
        .arg(format!("{d}/"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"));
    Some(Daemon::start(cmd, port, "nginx"))
}

/// nghttpd serving `www/` (`/dir` answers 301 to `/dir/`); over TLS or, with `clear`,
/// HTTP/2 in clear text (prior knowledge).
fn nghttpd(clear: bool) -> Option<Daemon> {
    let binary = tool("/usr/sbin/nghttpd", "nghttp2-server")?;
    let dir = scratch("nghttpd");
    let port = free_port();
    let leaf = &pki().good;
    let mut cmd = Command::new(binary);
    cmd.arg(format!("--htdocs={}", dir.join("www").display()))
        .args(["-a", "127.0.0.1"]);
    if clear {
        cmd.arg("--no-tls").arg(port.to_string());
    } else {
        cmd.arg(port.to_string())
            .arg(leaf.key_pem_file())
            .arg(leaf.pem_file());
    }
    Some(Daemon::start(cmd, port, "nghttpd"))
}

fn curl() -> Option<PathBuf> {
    tool("/usr/bin/curl", "curl")
}

fn blank_date((name, value): (String, String)) -> (String, String) {
    if name.eq_ignore_ascii_case("date") {
        (name, "(date)".into())
    } else {
        (name, value)
    }
}

/// Every head curl prints for `url`: `curl -sS -D - -o /dev/null` with `extra`.
fn curl_heads(curl: &Path, url: &str, extra: &[&str]) -> Vec<Head> {
    let out = Command::new("timeout")
        .arg(WATCHDOG.as_secs().to_string())
        .arg(curl)
        .args(["-sS", "-k", "-D", "-", "-o", "/dev/null"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {url}: {out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8 from curl");
    text.split("\r\n\r\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut lines = block.split("\r\n");
            let status_line = lines.next().unwrap();
            let status = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("curl's status line {status_line:?}"));
            let fields = lines
                .map(|l| {
                    let (n, v) = l.split_once(": ").unwrap_or_else(|| panic!("{l:?}"));
                    blank_date((n.to_string(), v.to_string()))
                })
                .collect();
            (status, fields)
        })
        .collect()
}

/// headprobe's JSON record for `url` with `-k` and `extra`.
fn probe(url: &str, extra: &[&str]) -> Value {
    let out = headprobe()
        .args(["--format", "json", "-k"])
        .args(extra)
        .arg(url)
        .run();
    out.only_json()
}

fn head_of(r: &Value) -> Head {
    let status = r["status"].as_u64().unwrap_or_else(|| panic!("{r}")) as u16;
    let fields = r["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| blank_date((p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into())))
        .collect();
    (status, fields)
}

/// headprobe `--http2` (or `flag`) and curl agree on `url`'s final head and on the
/// statuses of the hops before it; returns the record.
#[track_caller]
fn agree(curl: &Path, url: &str, flag: &str, follow: bool) -> Value {
    let extra: &[&str] = if follow { &["-L"] } else { &[] };
    let heads = curl_heads(curl, url, &[&[flag], extra].concat());
    let r = probe(url, &[&[flag], extra].concat());
    assert_eq!(r["version"], "HTTP/2", "{url}: {r}");
    assert_eq!(
        &head_of(&r),
        heads.last().unwrap(),
        "{url}: headprobe, then curl"
    );
    let hops: Vec<u64> = r["redirects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_u64().unwrap())
        .collect();
    let curl_hops: Vec<u64> = heads[..heads.len() - 1]
        .iter()
        .map(|h| u64::from(h.0))
        .collect();
    assert_eq!(hops, curl_hops, "{url}: the redirects");
    r
}

#[test]
fn nginx_h2_heads_equal_curls() {
    let (Some(curl), Some(nginx)) = (curl(), nginx()) else {
        return;
    };
    let r = agree(&curl, &nginx.url("https", "/"), "--http2", false);
    assert_eq!(r["status"], 200);
    assert_eq!(r["tls"]["alpn"], "h2");
    let r = agree(&curl, &nginx.url("https", "/missing"), "--http2", false);
    assert_eq!(r["status"], 404);
    let r = agree(&curl, &nginx.url("https", "/moved"), "--http2", true);
    assert_eq!(r["status"], 200);
    assert_eq!(r["redirects"][0]["status"], 301);
    let r = agree(&curl, &nginx.url("https", "/many"), "--http2", false);
    let many = head_of(&r).1;
    assert_eq!(
        many.iter()
            .filter(|(n, _)| n.starts_with("x-many-"))
            .count(),
        MANY,
        "{many:?}"
    );

    // The same server over HTTP/1.1: the same fields, but names as nginx writes them
    // and a `Connection: close`, which HTTP/2 forbids.
    let h1 = probe(&nginx.url("https", "/"), &[]);
    assert_eq!(h1["tls"]["alpn"], "http/1.1", "{h1}");
    let h2 = probe(&nginx.url("https", "/"), &["--http2"]);
    let lower = |r: &Value| -> Vec<String> {
        head_of(r)
            .1
            .into_iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect()
    };
    let h1_names: Vec<String> = lower(&h1)
        .into_iter()
        .filter(|n| n != "connection")
        .collect();
    assert_eq!(lower(&h2), h1_names, "h2 {h2}\nHTTP/1.1 {h1}");
    assert!(
        head_of(&h1).1.iter().any(|(n, _)| n == "Connection"),
        "{h1}"
    );
    assert!(head_of(&h2)
        .1
        .iter()
        .all(|(n, _)| *n == n.to_ascii_lowercase()));
}

#[test]
fn nghttpd_h2_heads_equal_curls() {
    let (Some(curl), Some(server)) = (curl(), nghttpd(false)) else {
        return;
    };
    let r = agree(&curl, &server.url("https", "/"), "--http2", false);
    assert_eq!(r["status"], 200);
    assert_eq!(r["tls"]["alpn"], "h2");
    let r = agree(&curl, &server.url("https", "/missing"), "--http2", false);
    assert_eq!(r["status"], 404);
    let r = agree(&curl, &server.url("https", "/dir"), "--http2", true);
    assert_eq!(r["status"], 200);
    assert_eq!(r["redirects"][0]["status"], 301);
    assert_eq!(r["final_url"], server.url("https", "/dir/"));
}

#[test]
fn nghttpd_in_clear_text_with_prior_knowledge_equals_curl() {
    let (Some(curl), Some(server)) = (curl(), nghttpd(true)) else {
        return;
    };
    let flag = "--http2-prior-knowledge";
    let r = agree(&curl, &server.url("http", "/"), flag, false);
    assert_eq!(r["status"], 200);
    assert_eq!(r["tls"], Value::Null);
    agree(&curl, &server.url("http", "/missing"), flag, false);
    // curl 7.88 fails to follow this redirect in clear text ("Error in the HTTP2
    // framing layer"), so the hops are compared one by one.
    let r = agree(&curl, &server.url("http", "/dir"), flag, false);
    assert_eq!(r["status"], 301);
    agree(&curl, &server.url("http", "/dir/"), flag, false);
    let r = probe(&server.url("http", "/dir"), &[flag, "-L"]);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["final_url"], server.url("http", "/dir/"));
}

#[test]
fn nginx_header_list_over_the_cap_is_headers_too_large() {
    let Some(nginx) = nginx() else {
        return;
    };
    let r = probe(
        &nginx.url("https", "/many"),
        &["--http2", "--max-header-bytes", "1024"],
    );
    assert_eq!(
        r["error"]["kind"], "headers_too_large",
        "{}: {r}",
        nginx.what
    );
}
