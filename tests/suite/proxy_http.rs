//! Proxies (issue: proxies), HTTP forward proxies: `--proxy http://` for plain http
//! targets in absolute form and for https targets through a CONNECT tunnel, every
//! refusal of one, proxies that are unreachable or stall (HTTP and SOCKS5), and tinyproxy
//! as a real peer. The proxies are the loopback ones of `util::proxy`; names never reach
//! DNS.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::pki::*;
use crate::util::proxy::*;
use crate::util::*;

// ---------------------------------------------------------------------------------------
// HTTP proxy: plain http targets in absolute form
// ---------------------------------------------------------------------------------------

#[test]
fn http_target_through_an_http_proxy_is_sent_in_absolute_form() {
    let origin = origin_server();
    let proxy = HttpProxy::default().start();
    let url = format!("http://127.0.0.1:{}/a/b?c=d", origin.port());
    let (out, r) = json_run(&["--proxy", &proxy.url("http"), &url]);
    out.expect_code(0);

    let seen = proxy.seen();
    assert_eq!(
        seen.text(),
        default_request(&url, &format!("127.0.0.1:{}", origin.port()), &[]),
        "the request line the proxy received"
    );
    assert_eq!(seen.upstream, Some(origin.addr()));
    // The proxy relayed it: the origin got it (in origin form, from the proxy).
    assert!(
        origin
            .request_text()
            .starts_with("GET /a/b?c=d HTTP/1.0\r\n"),
        "origin request"
    );

    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert!(
        r["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["X-Origin", "yes"])),
        "the origin's headers came through the proxy: {r}"
    );
    assert_eq!(r["target"], url.as_str());
    assert_eq!(r["scheme"], "http");
    assert_eq!(r["host"], "127.0.0.1");
    assert_eq!(r["port"], origin.port());
    assert_eq!(
        r["path"],
        url.as_str(),
        "path is the request target as sent"
    );
    assert_eq!(r["addr"], proxy.hostport(), "addr is where we connected");
    assert_eq!(r["proxy"], proxy.url("http"));
    assert_eq!(r["url"], Value::Null);
    assert_eq!(r["tunnel"], Value::Null);
    assert_eq!(r["tls"], Value::Null);
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["timing_ms"]["proxy"], Value::Null, "no tunnel: {r}");
    assert!(ms(&r["timing_ms"]["connect"]) <= ms(&r["timing_ms"]["headers"]));
}

#[test]
fn absolute_form_omits_port_80_and_leaves_names_to_the_proxy() {
    let origin = origin_server();
    let proxy = HttpProxy {
        route: Some(origin.addr()),
        ..HttpProxy::default()
    }
    .start();
    // origin.test is in no DNS: only the proxy can make sense of it.
    let (out, r) = json_run(&["--proxy", &proxy.url("http"), "http://origin.test/x"]);
    out.expect_code(0);
    assert_eq!(
        proxy.seen().text(),
        default_request("http://origin.test/x", "origin.test", &[])
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["host"], "origin.test");
    assert_eq!(r["port"], 80);
    assert_eq!(r["path"], "http://origin.test/x");
    assert_eq!(r["timing_ms"]["dns"], Value::Null, "nothing resolved: {r}");
}

#[test]
fn http_proxy_credentials_are_sent_as_basic_and_percent_decoded() {
    let origin = origin_server();
    let proxy = HttpProxy {
        auth: Some(basic("al@ice", "open sesame")),
        ..HttpProxy::default()
    }
    .start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let proxy_url = proxy.url_with("http", "al%40ice", "open%20sesame");
    let (out, r) = json_run(&["--proxy", &proxy_url, &url]);
    out.expect_code(0);
    // base64("al@ice:open sesame"), worked out by hand.
    assert_eq!(
        basic("al@ice", "open sesame"),
        "Basic YWxAaWNlOm9wZW4gc2VzYW1l"
    );
    assert_eq!(
        proxy.seen().text(),
        default_request(
            &url,
            &format!("127.0.0.1:{}", origin.port()),
            &["Proxy-Authorization: Basic YWxAaWNlOm9wZW4gc2VzYW1l"]
        )
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["proxy"], proxy.url("http"), "no credentials in `proxy`");
}

#[test]
fn http_proxy_answering_407_is_kind_proxy() {
    let proxy = HttpProxy {
        auth: Some(basic("alice", "right")),
        ..HttpProxy::default()
    }
    .start();
    let url = "http://127.0.0.1:9/";
    for (proxy_url, why) in [
        (proxy.url("http"), "credentials required"),
        (
            proxy.url_with("http", "alice", "wrong"),
            "credentials rejected",
        ),
    ] {
        let r = failing(&["--proxy", &proxy_url, url], "proxy");
        proxy.seen();
        let m = message(&r);
        assert!(m.contains("407"), "message: {m}");
        assert!(m.contains(why), "message: {m}");
        assert!(m.contains(&proxy.url("http")), "names the proxy: {m}");
        assert_eq!(r["status"], 407, "what was read is kept: {r}");
        assert_eq!(r["tunnel"], Value::Null, "{r}");
        assert_eq!(r["addr"], proxy.hostport());

        let out = headprobe()
            .args(["--format", "status", "--proxy", &proxy_url, url])
            .run();
        out.expect_code(1);
        proxy.seen();
        let rows = out.status_rows();
        assert_eq!(rows.len(), 1, "{out:?}");
        assert_eq!(rows[0][0], url);
        assert_eq!(rows[0][1], "proxy");
        assert_eq!(rows[0][3], proxy.hostport());
        assert!(rows[0][4].contains(why), "{out:?}");
    }
}

// ---------------------------------------------------------------------------------------
// HTTP proxy: https targets through CONNECT
// ---------------------------------------------------------------------------------------

#[test]
fn https_target_goes_through_a_connect_tunnel_then_tls() {
    let origin = tls_origin();
    let proxy = HttpProxy::default().start();
    let url = format!("https://probe.test:{}/secure", origin.port());
    let ca = cacert();
    let (out, r) = json_run(&["--proxy", &proxy.url("http"), "--cacert", &ca, &url]);
    out.expect_code(0);

    let authority = format!("probe.test:{}", origin.port());
    let seen = proxy.seen();
    assert_eq!(
        seen.text(),
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n")
    );
    assert_eq!(seen.upstream, Some(origin.addr()));
    let tls = origin.seen();
    assert_eq!(
        tls.sni.as_deref(),
        Some("probe.test"),
        "SNI through the tunnel"
    );
    assert_eq!(
        tls.text(),
        default_request("/secure", &authority, &[]),
        "origin form inside the tunnel"
    );

    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert_eq!(r["path"], "/secure");
    assert_eq!(r["addr"], proxy.hostport());
    assert_eq!(r["proxy"], proxy.url("http"));
    assert_eq!(
        r["tunnel"],
        json!({"status": 200, "reason": "Connection established",
               "headers": [["Proxy-Agent", "headprobe-test"]]})
    );
    let t = &r["timing_ms"];
    assert!(ms(&t["connect"]) <= ms(&t["proxy"]), "{t}");
    assert!(ms(&t["proxy"]) <= ms(&t["tls"]), "{t}");
    assert!(ms(&t["tls"]) <= ms(&t["headers"]), "{t}");
}

#[test]
fn connect_carries_proxy_authorization() {
    let origin = tls_origin();
    let proxy = HttpProxy {
        auth: Some(basic("bob", "pw")),
        ..HttpProxy::default()
    }
    .start();
    let url = format!("https://127.0.0.1:{}/", origin.port());
    let ca = cacert();
    let (out, r) = json_run(&[
        "--proxy",
        &proxy.url_with("http", "bob", "pw"),
        "--cacert",
        &ca,
        &url,
    ]);
    out.expect_code(0);
    let authority = format!("127.0.0.1:{}", origin.port());
    assert_eq!(
        proxy.seen().text(),
        format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {}\r\n\r\n",
            basic("bob", "pw")
        )
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(origin.seen().sni, None, "no SNI for an IP literal");
}

#[test]
fn connect_refusals_are_kind_proxy_and_keep_the_reply() {
    for (code, reason) in [
        (403, "Forbidden"),
        (407, "Proxy Authentication Required"),
        (502, "Bad Gateway"),
    ] {
        let proxy = HttpProxy {
            refuse_connect: Some(refusal(code, reason)),
            ..HttpProxy::default()
        }
        .start();
        let url = "https://probe.test:8443/";
        let r = failing(&["--proxy", &proxy.url("http"), url], "proxy");
        assert_eq!(
            proxy.seen().text(),
            "CONNECT probe.test:8443 HTTP/1.1\r\nHost: probe.test:8443\r\n\r\n"
        );
        let m = message(&r);
        assert!(
            m.contains(&format!("{code} {reason}")),
            "the proxy's answer in the message: {m}"
        );
        assert!(m.contains(&proxy.url("http")), "names the proxy: {m}");
        if code == 407 {
            assert!(m.contains("credentials required"), "message: {m}");
        }
        assert_eq!(
            r["tunnel"],
            json!({"status": code, "reason": reason,
                   "headers": [["X-Refused-By", "headprobe-test"], ["Content-Length", "0"]]}),
            "{r}"
        );
        assert_eq!(r["status"], Value::Null, "{r}");
        assert_eq!(r["tls"], Value::Null, "{r}");
        assert_eq!(r["addr"], proxy.hostport());
        assert_eq!(r["timing_ms"]["proxy"], Value::Null, "no tunnel: {r}");
        assert_eq!(r["timing_ms"]["tls"], Value::Null, "{r}");

        let out = headprobe().args(["--proxy", &proxy.url("http"), url]).run();
        out.expect_code(1);
        proxy.seen();
        assert_eq!(out.lines(), [format!("{url} error > proxy: {m}")], "text");

        let out = headprobe()
            .args(["--format", "status", "--proxy", &proxy.url("http"), url])
            .run();
        out.expect_code(1);
        proxy.seen();
        let rows = out.status_rows();
        assert_eq!(rows.len(), 1, "{out:?}");
        assert_eq!(
            (
                &rows[0][0][..],
                &rows[0][1][..],
                &rows[0][3][..],
                &rows[0][4][..]
            ),
            (url, "proxy", &proxy.hostport()[..], &m[..]),
            "status"
        );
    }
}

#[test]
fn connect_with_wrong_credentials_says_they_were_rejected() {
    let proxy = HttpProxy {
        auth: Some(basic("bob", "right")),
        ..HttpProxy::default()
    }
    .start();
    let r = failing(
        &[
            "--proxy",
            &proxy.url_with("http", "bob", "wrong"),
            "https://probe.test:8443/",
        ],
        "proxy",
    );
    let m = message(&r);
    assert!(
        m.contains("407") && m.contains("credentials rejected"),
        "{m}"
    );
    assert_eq!(r["tunnel"]["status"], 407, "{r}");
    assert!(
        r["tunnel"]["headers"].as_array().unwrap().contains(&json!([
            "Proxy-Authenticate",
            "Basic realm=\"headprobe-test\""
        ])),
        "{r}"
    );
}

#[test]
fn connect_brackets_ipv6_literals() {
    let proxy = HttpProxy {
        refuse_connect: Some(refusal(403, "Forbidden")),
        ..HttpProxy::default()
    }
    .start();
    failing(
        &["--proxy", &proxy.url("http"), "https://[::1]:8443/"],
        "proxy",
    );
    assert_eq!(
        proxy.seen().text(),
        "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"
    );
}

#[test]
fn connect_answered_with_non_http_is_described_in_escapes() {
    let server = Server::start(Behaviour::Banner(b"\x16\x03\x01\x00\xff\xfeSSH".to_vec()));
    let r = failing(
        &[
            "--proxy",
            &format!("http://{}", server.target()),
            "https://127.0.0.1:9/",
        ],
        "proxy",
    );
    let m = message(&r);
    assert!(m.contains(r#""\x16\x03\x01\x00\xff\xfeSSH""#), "{m}");
    assert!(!m.contains("\\u{") && !m.contains('\u{fffd}'), "{m}");
}

// ---------------------------------------------------------------------------------------
// Unreachable and stalled proxies
// ---------------------------------------------------------------------------------------

#[test]
fn dead_proxy_is_refused() {
    let dead = dead();
    for scheme in ["http", "socks5"] {
        for url in ["http://origin.test:8080/", "https://origin.test:8443/"] {
            let proxy = format!("{scheme}://{}", dead.addr);
            let r = failing(&["--proxy", &proxy, url], "refused");
            assert_eq!(r["addr"], dead.addr.to_string(), "{r}");
            assert_eq!(r["proxy"], proxy, "{r}");
            assert_eq!(r["timing_ms"]["connect"], Value::Null, "{r}");
            assert_eq!(r["timing_ms"]["proxy"], Value::Null, "{r}");
        }
    }
}

#[test]
fn proxy_stalling_in_the_tunnel_times_out_within_connect_timeout() {
    let stall = stalling();
    for (scheme, url, sent) in [
        (
            "socks5",
            "http://origin.test:8080/",
            b"\x05\x01\x00".to_vec(),
        ),
        (
            "http",
            "https://origin.test:8443/",
            b"CONNECT origin.test:8443 HTTP/1.1\r\nHost: origin.test:8443\r\n\r\n".to_vec(),
        ),
    ] {
        let started = Instant::now();
        let r = failing(
            &[
                "--connect-timeout",
                "1s",
                "-t",
                "20s",
                "--proxy",
                &stall.url(scheme),
                url,
            ],
            "timeout",
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(4),
            "{scheme}: took {took:?}, --connect-timeout is 1s"
        );
        let total = ms(&r["timing_ms"]["total"]);
        assert!((990.0..3000.0).contains(&total), "{scheme}: total {total}");
        assert!(
            message(&r).contains("--connect-timeout"),
            "{scheme}: {}",
            message(&r)
        );
        assert_eq!(r["timing_ms"]["proxy"], Value::Null, "{r}");
        assert_eq!(r["tunnel"], Value::Null, "{r}");
        assert_eq!(r["addr"], stall.hostport());
        assert_eq!(stall.seen().bytes, sent, "{scheme}: what the proxy got");
    }
}

#[test]
fn http_proxy_stalling_on_an_absolute_form_request_times_out_within_timeout() {
    let stall = stalling();
    let started = Instant::now();
    let r = failing(
        &[
            "--connect-timeout",
            "1s",
            "-t",
            "2s",
            "--proxy",
            &stall.url("http"),
            "http://origin.test:8080/",
        ],
        "timeout",
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}, -t is 2s");
    let total = ms(&r["timing_ms"]["total"]);
    assert!((1990.0..4000.0).contains(&total), "total {total}");
    assert!(message(&r).contains("--timeout"), "{}", message(&r));
    assert_eq!(
        stall.seen().text(),
        default_request("http://origin.test:8080/", "origin.test:8080", &[])
    );
}

// ---------------------------------------------------------------------------------------
// A real peer: tinyproxy
// ---------------------------------------------------------------------------------------

#[test]
fn tinyproxy_as_a_real_peer() {
    let Some(binary) = tinyproxy_binary() else {
        eprintln!("skipped: tinyproxy is not installed (apt-get install tinyproxy)");
        return;
    };
    let origin = origin_server();
    let tls = tls_origin();
    let proxy = start_tinyproxy(&binary);
    let plain = format!("http://127.0.0.1:{}/tiny", origin.port());
    let secure = format!("https://127.0.0.1:{}/", tls.port());
    let ca = cacert();
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--cacert", &ca])
        .args(["--proxy", &proxy_url, &plain, &secure])
        .run();
    out.expect_code(0);
    let records = out.json();
    assert_eq!(records.len(), 2, "{out:?}");
    let (p, s) = (&records[0], &records[1]);
    assert_eq!(p["ok"], true, "{p}");
    assert_eq!(p["status"], 200, "{p}");
    assert!(
        p["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["X-Origin", "yes"])),
        "{p}"
    );
    assert_eq!(p["path"], plain.as_str());
    assert_eq!(p["tunnel"], Value::Null);
    assert!(
        origin.request_text().starts_with("GET /tiny HTTP/1.0\r\n"),
        "tinyproxy forwarded in origin form"
    );

    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(s["tls"]["verified"], true, "{s}");
    assert_eq!(s["tunnel"]["status"], 200, "{s}");
    assert!(!s["timing_ms"]["proxy"].is_null(), "{s}");
    assert!(tls.seen().bytes.starts_with(b"GET / HTTP/1.0\r\n"));
}

/// `--http2-prior-knowledge` through an HTTP proxy: the proxy is asked in HTTP/1 (the
/// absolute form), never sent the HTTP/2 preface, as curl does ("Ignoring HTTP/2 prior
/// knowledge due to proxy"); curl's request is compared where curl is installed.
#[test]
fn http2_prior_knowledge_through_an_http_proxy_asks_the_proxy_in_http1() {
    let origin = origin_server();
    let proxy = HttpProxy::default().start();
    let url = format!("http://127.0.0.1:{}/h2pk", origin.port());
    let (out, r) = json_run(&[
        "--http2-prior-knowledge",
        "--proxy",
        &proxy.url("http"),
        &url,
    ]);
    out.expect_code(0);
    let seen = proxy.seen();
    assert_eq!(
        seen.text(),
        default_request(&url, &format!("127.0.0.1:{}", origin.port()), &[]),
        "the proxy was sent the HTTP/1 absolute form"
    );
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["version"], "HTTP/1.0", "{r}");

    let curl = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "--http2-prior-knowledge",
        ])
        .args(["--proxy", &proxy.url("http"), &url])
        .status();
    match curl {
        Ok(status) => {
            assert!(status.success(), "curl through the test proxy: {status}");
            let theirs = proxy.seen();
            assert!(
                theirs
                    .text()
                    .starts_with(&format!("GET {url} HTTP/1.1\r\n")),
                "curl asked the proxy in HTTP/1 too: {theirs:?}"
            );
        }
        Err(_) => eprintln!("curl not installed: not compared with curl"),
    }
}
