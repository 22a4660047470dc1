//! The target grammar: every form reaches the right address with the right request, and
//! anything else is an `invalid_target` record while the run goes on.
//!
//! Names are only ever `localhost` (answered by /etc/hosts) pinned with `--resolve`, so
//! no lookup can leave the machine.

use serde_json::{json, Value};

use crate::util::*;

/// Probes `args` in json format against `server`, expecting one ok record and one request.
fn probe_ok(server: &Server, args: &[&str]) -> (Value, String) {
    let out = headprobe().args(["--format", "json"]).args(args).run();
    out.expect_code(0);
    let record = out.only_json();
    assert_eq!(record["ok"], true, "{record}");
    assert_eq!(record["status"], 200, "{record}");
    (record, server.request_text())
}

#[test]
fn ipv4_with_port() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let target = server.target();
    let port = server.port();
    let (r, req) = probe_ok(&server, &[&target]);
    assert_eq!(r["target"], target);
    assert_eq!(r["scheme"], "http");
    assert_eq!(r["host"], "127.0.0.1");
    assert_eq!(r["port"], port);
    assert_eq!(r["path"], "/");
    assert_eq!(r["addr"], target);
    assert!(
        req.starts_with(&format!("GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n")),
        "{req:?}"
    );
}

#[test]
fn ipv4_without_port_uses_port_option() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let port = server.port().to_string();
    let (r, req) = probe_ok(&server, &["-p", &port, "127.0.0.1"]);
    assert_eq!(r["target"], "127.0.0.1");
    assert_eq!(r["host"], "127.0.0.1");
    assert_eq!(r["port"], server.port());
    assert_eq!(r["addr"], server.target());
    assert!(
        req.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
        "{req:?}"
    );
}

#[test]
fn name_with_port_via_resolve() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let port = server.port();
    let target = format!("localhost:{port}");
    let pin = format!("localhost:{port}:127.0.0.1");
    let (r, req) = probe_ok(&server, &["--resolve", &pin, &target]);
    assert_eq!(r["target"], target);
    assert_eq!(r["host"], "localhost");
    assert_eq!(r["port"], port);
    assert_eq!(r["addr"], server.target());
    assert!(
        req.contains(&format!("\r\nHost: localhost:{port}\r\n")),
        "{req:?}"
    );
}

#[test]
fn name_without_port_uses_port_option() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let port = server.port();
    let pin = format!("localhost:{port}:127.0.0.1");
    let (r, req) = probe_ok(
        &server,
        &["--resolve", &pin, "-p", &port.to_string(), "localhost"],
    );
    assert_eq!(r["target"], "localhost");
    assert_eq!(r["host"], "localhost");
    assert_eq!(r["port"], port);
    assert!(
        req.contains(&format!("\r\nHost: localhost:{port}\r\n")),
        "{req:?}"
    );
}

/// `localhost` is 127.0.0.1 in /etc/hosts and nothing of ours listens there on this
/// port: only `--resolve` can send the probe to ::1.
fn resolve_overrides_lookup(addr_form: &str) {
    let Some(server) = Server::start_v6(Behaviour::Respond(ok_response())) else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let port = server.port();
    let target = format!("localhost:{port}");
    let pin = format!("localhost:{port}:{addr_form}");
    let (r, req) = probe_ok(&server, &["--resolve", &pin, &target]);
    assert_eq!(r["addr"], format!("[::1]:{port}"));
    assert_eq!(r["host"], "localhost");
    assert!(
        req.contains(&format!("\r\nHost: localhost:{port}\r\n")),
        "{req:?}"
    );
}

#[test]
fn resolve_overrides_lookup_bracketed_ipv6() {
    resolve_overrides_lookup("[::1]");
}

#[test]
fn resolve_overrides_lookup_bare_ipv6() {
    resolve_overrides_lookup("::1");
}

#[test]
fn ipv6_bracketed_with_port() {
    let Some(server) = Server::start_v6(Behaviour::Respond(ok_response())) else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let target = server.target();
    let port = server.port();
    let (r, req) = probe_ok(&server, &[&target]);
    assert_eq!(r["target"], target);
    assert_eq!(r["host"], "::1");
    assert_eq!(r["port"], port);
    assert_eq!(r["addr"], target);
    assert!(
        req.contains(&format!("\r\nHost: [::1]:{port}\r\n")),
        "{req:?}"
    );
}

#[test]
fn ipv6_bracketed_without_port_uses_port_option() {
    let Some(server) = Server::start_v6(Behaviour::Respond(ok_response())) else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let port = server.port();
    let (r, req) = probe_ok(&server, &["-p", &port.to_string(), "[::1]"]);
    assert_eq!(r["target"], "[::1]");
    assert_eq!(r["port"], port);
    assert_eq!(r["addr"], server.target());
    assert!(
        req.contains(&format!("\r\nHost: [::1]:{port}\r\n")),
        "{req:?}"
    );
}

#[test]
fn bare_ipv6_literal_is_one_host() {
    let Some(server) = Server::start_v6(Behaviour::Respond(ok_response())) else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let port = server.port();
    let (r, req) = probe_ok(&server, &["-p", &port.to_string(), "::1"]);
    assert_eq!(r["target"], "::1");
    assert_eq!(r["host"], "::1");
    assert_eq!(r["port"], port);
    assert_eq!(r["addr"], server.target());
    assert!(
        req.contains(&format!("\r\nHost: [::1]:{port}\r\n")),
        "{req:?}"
    );
}

#[test]
fn url_with_path_and_query() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let port = server.port();
    let target = format!("http://127.0.0.1:{port}/a/b?c=d");
    let (r, req) = probe_ok(&server, &[&target]);
    assert_eq!(r["target"], target);
    assert_eq!(r["scheme"], "http");
    assert_eq!(r["host"], "127.0.0.1");
    assert_eq!(r["port"], port);
    assert_eq!(r["path"], "/a/b?c=d");
    assert!(
        req.starts_with(&format!(
            "GET /a/b?c=d HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n"
        )),
        "{req:?}"
    );
}

#[test]
fn url_path_wins_over_path_option() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let target = format!("http://{}/from-url", server.target());
    let (r, req) = probe_ok(&server, &["--path", "/from-option", &target]);
    assert_eq!(r["path"], "/from-url");
    assert!(req.starts_with("GET /from-url HTTP/1.0\r\n"), "{req:?}");
}

#[test]
fn url_without_path_requests_root() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let target = format!("http://{}", server.target());
    let (r, req) = probe_ok(&server, &[&target]);
    assert_eq!(r["path"], "/");
    assert!(req.starts_with("GET / HTTP/1.0\r\n"), "{req:?}");
}

#[test]
fn url_with_ipv6_host() {
    let Some(server) = Server::start_v6(Behaviour::Respond(ok_response())) else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let port = server.port();
    let target = format!("http://[::1]:{port}/v6?x=1");
    let (r, req) = probe_ok(&server, &[&target]);
    assert_eq!(r["host"], "::1");
    assert_eq!(r["path"], "/v6?x=1");
    assert_eq!(r["addr"], server.target());
    assert!(
        req.starts_with(&format!("GET /v6?x=1 HTTP/1.0\r\nHost: [::1]:{port}\r\n")),
        "{req:?}"
    );
}

#[test]
fn url_with_name_via_resolve() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let port = server.port();
    let target = format!("http://localhost:{port}/n");
    let pin = format!("localhost:{port}:127.0.0.1");
    let (r, req) = probe_ok(&server, &["--resolve", &pin, &target]);
    assert_eq!(r["host"], "localhost");
    assert_eq!(r["path"], "/n");
    assert!(
        req.starts_with(&format!("GET /n HTTP/1.0\r\nHost: localhost:{port}\r\n")),
        "{req:?}"
    );
}

#[test]
fn invalid_tokens_are_records_and_the_run_goes_on() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let good = server.target();
    // Spaces and control characters go in the path of a URL whose host is an IP
    // literal, so that a parser lax about them would probe our server, not ask DNS.
    let with_space = format!("http://{good}/a b");
    let with_control = format!("http://{good}/a\u{1}b");
    let with_del = format!("http://{good}/a\u{7f}b");
    let bad = [
        "ftp://127.0.0.1/",
        "gopher://127.0.0.1:70/",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:99999",
        "127.0.0.1:abc",
        "http://127.0.0.1:0/",
        "[::1]:70000",
        ":80",
        "http://",
        "http://:80/",
        &with_space,
        &with_control,
        &with_del,
    ];
    let out = headprobe()
        .args(["--format", "json", "--ordered"])
        .args(bad)
        .arg(&good)
        .run();
    out.expect_code(1);
    let records = out.json();
    assert_eq!(records.len(), bad.len() + 1, "{out:?}");
    for (token, r) in bad.iter().zip(&records) {
        assert_eq!(r["target"], *token, "{r}");
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(r["error"]["kind"], "invalid_target", "{token:?}: {r}");
        assert_eq!(r["addr"], Value::Null, "{r}");
        assert_eq!(r["status"], Value::Null, "{r}");
    }
    let last = &records[bad.len()];
    assert_eq!(last["target"], json!(good));
    assert_eq!(last["ok"], true, "{last}");
    // Only the valid target reached the server.
    server.next_request();
    assert!(server
        .next_request_within(std::time::Duration::from_millis(200))
        .is_none());
}

#[test]
fn invalid_target_in_text_format() {
    let out = headprobe().arg("127.0.0.1:0").run();
    out.expect_code(1);
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(
        lines[0].starts_with("127.0.0.1:0 error > invalid_target: "),
        "{out:?}"
    );
}

/// A pin only applies to its own HOST:PORT; other ports of the name resolve as usual
/// (here from /etc/hosts, so nothing leaves the machine).
#[test]
fn resolve_applies_to_its_port_only() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let port = server.port();
    let other = refused_addr().port();
    let pin = format!("localhost:{other}:[::1]");
    let (r, _) = probe_ok(&server, &["--resolve", &pin, &format!("localhost:{port}")]);
    assert_eq!(r["addr"], server.target());
}

/// Addresses are tried in order until one connects; `addr` is the last one tried.
#[test]
fn addresses_are_tried_in_order() {
    let Some(v6) = Server::start_v6(Behaviour::Respond(ok_response())) else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    // Nothing listens on 127.0.0.1 at the IPv6 server's port (checked: refused).
    let port = v6.port();
    if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        eprintln!("skipped: 127.0.0.1:{port} is taken");
        return;
    }
    let target = format!("localhost:{port}");
    let pin = format!("localhost:{port}:127.0.0.1,[::1]");
    let (r, _) = probe_ok(&v6, &["--resolve", &pin, &target]);
    assert_eq!(r["addr"], format!("[::1]:{port}"));

    // All refused: the record names the last address tried.
    let dead = refused_addr().port();
    let target = format!("localhost:{dead}");
    let pin = format!("localhost:{dead}:[::1],127.0.0.1");
    let out = headprobe()
        .args(["--format", "json", "--resolve", &pin, &target])
        .run();
    out.expect_code(1);
    let r = out.only_json();
    assert_eq!(r["error"]["kind"], "refused", "{r}");
    assert_eq!(r["addr"], format!("127.0.0.1:{dead}"), "{r}");
}

/// The request a target sends: (request line without the version, Host header).
fn request_of(server: &Server, args: &[&str]) -> (String, String) {
    let (_, req) = probe_ok(server, args);
    let mut lines = req.lines();
    let first = lines.next().unwrap_or_default();
    let target = first.rsplit_once(' ').map_or(first, |(t, _)| t).to_string();
    let host = lines
        .find_map(|l| l.strip_prefix("Host: "))
        .unwrap_or_default()
        .to_string();
    (target, host)
}

/// What curl sends for `url` to `server`: (request line without the version, Host).
fn curl_request(server: &Server, url: &str) -> Option<(String, String)> {
    let status = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "--noproxy",
            "*",
            url,
        ])
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let req = server.request_text();
    let mut lines = req.lines();
    let first = lines.next()?;
    let target = first.rsplit_once(' ').map_or(first, |(t, _)| t).to_string();
    let host = lines.find_map(|l| l.strip_prefix("Host: "))?.to_string();
    Some((target, host))
}

/// Targets as people paste them, and URLs as the WHATWG URL Standard reads them: each
/// sends what curl sends (compared in the test where curl is installed and takes the
/// form; `//HOST/PATH` it does not).
#[test]
fn pasted_forms_send_what_curl_sends() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let p = server.port();
    let host = format!("127.0.0.1:{p}");
    let cases: Vec<(String, &str, String)> = vec![
        (format!("127.0.0.1:{p}/path"), "GET /path", host.clone()),
        (
            format!("127.0.0.1:{p}/a/b?c=d"),
            "GET /a/b?c=d",
            host.clone(),
        ),
        (format!("127.0.0.1:{p}?q=1"), "GET /?q=1", host.clone()),
        (format!("//127.0.0.1:{p}/p"), "GET /p", host.clone()),
        (format!("http://127.1:{p}/"), "GET /", host.clone()),
        (format!("http://0x7f000001:{p}/"), "GET /", host.clone()),
        (format!("http://2130706433:{p}/x"), "GET /x", host.clone()),
    ];
    let curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok();
    if !curl {
        eprintln!("curl not installed: comparing with the expected requests only");
    }
    for (token, line, want_host) in &cases {
        let (got_line, got_host) = request_of(&server, &[token]);
        assert_eq!(
            (got_line.as_str(), got_host.as_str()),
            (*line, want_host.as_str()),
            "{token}"
        );
        if curl && !token.starts_with("//") {
            let theirs = curl_request(&server, token).unwrap_or_else(|| panic!("curl {token}"));
            assert_eq!(theirs, (got_line.clone(), got_host.clone()), "curl {token}");
        }
    }
    // An empty port is the scheme's (nothing listens on 127.0.0.9:80: refused, but
    // the record says where it went).
    let out = headprobe()
        .args(["--format", "json", "http://127.0.0.9:/"])
        .run();
    let r = out.only_json();
    assert_eq!(r["port"], 80, "{r}");
    assert_eq!(r["addr"], "127.0.0.9:80", "{r}");
}

/// A Unicode name goes out in its IDNA (punycode) form, and --resolve entries are read
/// the same way: given in Unicode or ASCII, with or without a trailing dot.
#[test]
fn unicode_names_are_sent_in_punycode() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let p = server.port();
    for resolve in [
        format!("bücher.test:{p}:127.0.0.1"),
        format!("xn--bcher-kva.test:{p}:127.0.0.1"),
        format!("xn--bcher-kva.test.:{p}:127.0.0.1"),
    ] {
        let (r, req) = probe_ok(
            &server,
            &["--resolve", &resolve, &format!("bücher.test:{p}")],
        );
        assert_eq!(r["host"], "xn--bcher-kva.test", "{r}");
        assert_eq!(
            r["target"],
            format!("bücher.test:{p}"),
            "the token as written: {r}"
        );
        assert!(
            req.contains(&format!("\r\nHost: xn--bcher-kva.test:{p}\r\n")),
            "{req}"
        );
    }
    // A trailing dot on the target matches the entry without it.
    let (_, req) = probe_ok(
        &server,
        &[
            "--resolve",
            &format!("dot.test:{p}:127.0.0.1"),
            &format!("http://dot.test.:{p}/"),
        ],
    );
    assert!(req.starts_with("GET / HTTP/1.0\r\n"), "{req}");
}

/// `--path` applies to a URL that gives no path, query or not.
#[test]
fn path_option_applies_before_a_query() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let (line, _) = request_of(
        &server,
        &["--path", "/foo", &format!("http://{}?x=1", server.target())],
    );
    assert_eq!(line, "GET /foo?x=1");
}

/// A token that is no host name never reaches DNS: `--format` given after `--`, labels
/// that start or end with '-'. The test server records every question.
#[test]
fn junk_hosts_are_invalid_before_any_lookup() {
    let dns = crate::util::dns::DnsServer::zone(&[("ok.test", &["127.0.0.1"])]);
    let out = headprobe()
        .args(["--format", "status", "--ordered", "--resolver", &dns.arg()])
        .args([
            "--",
            "--format",
            "-a.test",
            "a-.test:81",
            "http://b-.test/x",
        ])
        .run();
    out.expect_code(1);
    for row in out.status_rows() {
        assert_eq!(row[1], "invalid_target", "{row:?}");
        assert!(row[4].contains("cannot start or end with '-'"), "{row:?}");
    }
    assert_eq!(out.status_rows().len(), 4);
    assert_eq!(dns.total(), 0, "questions were sent: {:?}", dns.log());
}

/// A special scheme's slashes, one short, one too many or backward, are skipped as the
/// URL Standard and curl skip them: `http:/127.0.0.1:PORT/` is `http://127.0.0.1:PORT/`,
/// not a host named `http` on port 80 (the test resolver would see that question).
#[test]
fn a_scheme_with_slashes_missing_or_extra_is_still_the_url() {
    let dns = crate::util::dns::DnsServer::zone(&[]);
    let server = Server::start(Behaviour::Respond(ok_response()));
    let p = server.port();
    let host = format!("127.0.0.1:{p}");
    let curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok();
    // (token, request line, whether curl takes the form)
    let cases = [
        (format!("http:/127.0.0.1:{p}/one"), "GET /one", true),
        (format!("http:///127.0.0.1:{p}/two?x"), "GET /two?x", true),
        (format!("HTTP:127.0.0.1:{p}/three"), "GET /three", false),
        (format!("http:\\\\127.0.0.1:{p}/four"), "GET /four", false),
    ];
    for (token, line, curl_takes_it) in &cases {
        let (got_line, got_host) = request_of(&server, &["--resolver", &dns.arg(), token]);
        assert_eq!(
            (got_line.as_str(), got_host.as_str()),
            (*line, host.as_str()),
            "{token}"
        );
        if curl && *curl_takes_it {
            let theirs = curl_request(&server, token).unwrap_or_else(|| panic!("curl {token}"));
            assert_eq!(theirs, (got_line.clone(), got_host.clone()), "curl {token}");
        }
    }
    assert_eq!(dns.total(), 0, "questions were sent: {:?}", dns.log());
}
