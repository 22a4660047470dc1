//! Proxies (issues: proxies, 14), SOCKS: `--proxy socks5://` (RFC 1928, RFC 1929) with
//! names, IPv4 and IPv6 literals, authentication and every reply code, `socks5h://` as
//! SOCKS5, `socks4://` and `socks4a://` with their replies and limits, and microsocks as a
//! real peer. The proxies are the loopback ones of `util::proxy`; names never reach DNS.

use std::net::Ipv6Addr;

use serde_json::Value;

use crate::util::peer::*;
use crate::util::pki::*;
use crate::util::proxy::*;
use crate::util::*;

// ---------------------------------------------------------------------------------------
// SOCKS5
// ---------------------------------------------------------------------------------------

/// RFC 1928 §6, by reply code.
const SOCKS_REPLY_TEXT: [&str; 9] = [
    "succeeded",
    "general SOCKS server failure",
    "connection not allowed by ruleset",
    "network unreachable",
    "host unreachable",
    "connection refused",
    "TTL expired",
    "command not supported",
    "address type not supported",
];

/// Asserts the common shape of a record that went through a SOCKS5 proxy and succeeded.
#[track_caller]
fn assert_socks_ok(r: &Value, socks: &Peer, path: &str) {
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["path"], path, "origin form through SOCKS: {r}");
    assert_eq!(r["addr"], socks.hostport());
    assert_eq!(r["proxy"], socks.url("socks5"));
    assert_eq!(r["tunnel"], Value::Null, "no CONNECT reply for SOCKS: {r}");
    let t = &r["timing_ms"];
    assert!(ms(&t["connect"]) <= ms(&t["proxy"]), "{t}");
    assert!(ms(&t["proxy"]) <= ms(&t["headers"]), "{t}");
}

#[test]
fn socks5_sends_names_for_the_proxy_to_resolve() {
    let origin = origin_server();
    let socks = Socks5::default().start();
    let url = format!("http://origin.test:{}/s", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url("socks5"), &url]);
    out.expect_code(0);

    let seen = socks.seen();
    let mut want = vec![5, 1, 0];
    want.extend(socks_name_request("origin.test", origin.port()));
    assert_eq!(
        seen.bytes, want,
        "greeting [5,1,0], CONNECT with address type 3"
    );
    assert_eq!(seen.upstream, Some(origin.addr()));
    assert_eq!(
        origin.request_text(),
        default_request("/s", &format!("origin.test:{}", origin.port()), &[])
    );
    assert_socks_ok(&r, &socks, "/s");
    assert_eq!(r["host"], "origin.test");
    assert_eq!(r["timing_ms"]["dns"], Value::Null, "nothing resolved: {r}");
}

#[test]
fn socks5_sends_ipv4_literals_as_address_type_1() {
    let origin = origin_server();
    let socks = Socks5::default().start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url("socks5"), &url]);
    out.expect_code(0);
    let seen = socks.seen();
    let mut want = vec![5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1];
    want.extend(origin.port().to_be_bytes());
    assert_eq!(seen.bytes, want);
    assert_eq!(seen.upstream, Some(origin.addr()));
    assert_socks_ok(&r, &socks, "/");
}

#[test]
fn socks5_sends_ipv6_literals_as_address_type_4() {
    let Some(origin) = Server::start_v6(Behaviour::Respond(ok_response())) else {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    };
    let socks = Socks5::default().start();
    let url = format!("http://[::1]:{}/v6", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url("socks5"), &url]);
    out.expect_code(0);
    let seen = socks.seen();
    let mut want = vec![5, 1, 0, 5, 1, 0, 4];
    want.extend(Ipv6Addr::LOCALHOST.octets());
    want.extend(origin.port().to_be_bytes());
    assert_eq!(seen.bytes, want);
    assert_eq!(seen.upstream, Some(origin.addr()));
    // The reply's bound address is an IPv6 one too (16 bytes to skip).
    assert_socks_ok(&r, &socks, "/v6");
    assert_eq!(r["host"], "::1");
}

#[test]
fn socks5_carries_https_by_name_with_sni() {
    let origin = tls_origin();
    let socks = Socks5::default().start();
    let url = format!("https://probe.test:{}/", origin.port());
    let ca = cacert();
    let (out, r) = json_run(&["--proxy", &socks.url("socks5"), "--cacert", &ca, &url]);
    out.expect_code(0);
    let seen = socks.seen();
    let mut want = vec![5, 1, 0];
    want.extend(socks_name_request("probe.test", origin.port()));
    assert_eq!(seen.bytes, want);
    assert_eq!(origin.seen().sni.as_deref(), Some("probe.test"));
    assert_socks_ok(&r, &socks, "/");
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert!(ms(&r["timing_ms"]["proxy"]) <= ms(&r["timing_ms"]["tls"]));
}

#[test]
fn socks5_username_password_authentication() {
    let origin = origin_server();
    let socks = Socks5 {
        auth: Some(("alice".into(), "s3cret".into())),
        // Exercises skipping a bound address given as a name.
        bound_as_name: true,
        ..Socks5::default()
    }
    .start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let (out, r) = json_run(&[
        "--proxy",
        &socks.url_with("socks5", "alice", "s3cret"),
        &url,
    ]);
    out.expect_code(0);
    let mut want = vec![5, 2, 0, 2, 1, 5];
    want.extend(b"alice");
    want.push(6);
    want.extend(b"s3cret");
    want.extend([5, 1, 0, 1, 127, 0, 0, 1]);
    want.extend(origin.port().to_be_bytes());
    assert_eq!(
        socks.seen().bytes,
        want,
        "greeting offers [0, 2], then RFC 1929, then CONNECT"
    );
    assert_socks_ok(&r, &socks, "/");
}

#[test]
fn socks5_without_auth_accepts_a_client_that_has_credentials() {
    let origin = origin_server();
    let socks = Socks5::default().start();
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url_with("socks5", "u", "p"), &url]);
    out.expect_code(0);
    let seen = socks.seen();
    assert_eq!(&seen.bytes[..4], [5, 2, 0, 2], "offers both methods");
    assert_eq!(
        &seen.bytes[4..8],
        [5, 1, 0, 1],
        "no RFC 1929 when 0 is chosen"
    );
    assert_socks_ok(&r, &socks, "/");
}

#[test]
fn socks5_reply_codes_are_kind_proxy_with_their_meaning() {
    for code in 1..=8u8 {
        let socks = Socks5 {
            reply: code,
            ..Socks5::default()
        }
        .start();
        let r = failing(
            &["--proxy", &socks.url("socks5"), "http://origin.test:8080/"],
            "proxy",
        );
        let seen = socks.seen();
        assert!(
            seen.bytes
                .ends_with(&socks_name_request("origin.test", 8080)),
            "{seen:?}"
        );
        let m = message(&r);
        let want = format!("{} (reply {code})", SOCKS_REPLY_TEXT[usize::from(code)]);
        assert!(m.contains(&want), "reply {code}: {m:?} lacks {want:?}");
        assert!(m.contains(&socks.url("socks5")), "names the proxy: {m}");
        assert_eq!(r["addr"], socks.hostport());
        assert_eq!(r["status"], Value::Null);
        assert_eq!(r["tunnel"], Value::Null);
        assert_eq!(r["timing_ms"]["proxy"], Value::Null, "{r}");
    }
}

#[test]
fn socks5_authentication_failures_are_kind_proxy() {
    let socks = Socks5 {
        auth: Some(("alice".into(), "right".into())),
        ..Socks5::default()
    }
    .start();
    let url = "http://origin.test:8080/";

    let r = failing(
        &["--proxy", &socks.url_with("socks5", "alice", "wrong"), url],
        "proxy",
    );
    socks.seen();
    let m = message(&r);
    assert!(m.contains("rejected"), "wrong password: {m}");
    assert_eq!(r["timing_ms"]["proxy"], Value::Null);

    let r = failing(&["--proxy", &socks.url("socks5"), url], "proxy");
    assert_eq!(socks.seen().bytes, [5, 1, 0], "no-auth greeting only");
    let m = message(&r);
    assert!(
        m.contains("authentication") && m.contains(&socks.url("socks5")),
        "no credentials for a proxy that needs them: {m}"
    );
}

#[test]
fn socks5h_is_socks5() {
    let origin = origin_server();
    let socks = Socks5::default().start();
    let url = format!("http://origin.test:{}/", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url("socks5h"), &url]);
    out.expect_code(0);
    assert_eq!(r["proxy"], socks.url("socks5"), "{r}");
    assert!(socks
        .seen()
        .bytes
        .ends_with(&socks_name_request("origin.test", origin.port())));
}

// ---------------------------------------------------------------------------------------
// SOCKS4 and 4a
// ---------------------------------------------------------------------------------------

#[test]
fn socks4_sends_the_ipv4_address_resolved_here_and_the_user_id() {
    let origin = origin_server();
    for vn in [0, 4] {
        let socks = Socks4 {
            vn,
            ..Socks4::default()
        }
        .start();
        let url = format!("http://origin.test:{}/four", origin.port());
        let proxy = format!("socks4://bob@{}", socks.addr());
        let (out, r) = json_run(&[
            "--proxy",
            &proxy,
            "--resolve",
            &format!("origin.test:{}:127.0.0.1", origin.port()),
            &url,
        ]);
        out.expect_code(0);
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["proxy"], socks.url("socks4"), "{r}");
        assert_eq!(r["detected"], Value::Null, "only pool checks detect: {r}");
        assert!(!r["timing_ms"]["proxy"].is_null(), "{r}");
        let seen = socks.seen();
        assert_eq!(
            seen.bytes,
            socks4_request(origin.port(), [127, 0, 0, 1], "bob", None),
            "the name is resolved here (--resolve), the user id sent"
        );
        assert!(origin
            .request_text()
            .starts_with("GET /four HTTP/1.0\r\nHost: origin.test:"));
    }
}

#[test]
fn socks4a_sends_names_for_the_proxy_to_resolve() {
    let origin = origin_server();
    let socks = Socks4::default().start();
    let url = format!("http://origin.test:{}/", origin.port());
    let (out, r) = json_run(&["--proxy", &socks.url("socks4a"), &url]);
    out.expect_code(0);
    assert_eq!(r["proxy"], socks.url("socks4a"), "{r}");
    assert_eq!(
        socks.seen().bytes,
        socks4_request(origin.port(), [0, 0, 0, 1], "", Some("origin.test"))
    );
    // An IPv4 literal goes as an address even with socks4a.
    let url = format!("http://127.0.0.1:{}/", origin.port());
    let (out, _) = json_run(&["--proxy", &socks.url("socks4a"), &url]);
    out.expect_code(0);
    assert_eq!(
        socks.seen().bytes,
        socks4_request(origin.port(), [127, 0, 0, 1], "", None)
    );
}

#[test]
fn socks4_carries_https_with_the_name_in_sni() {
    let tls = tls_origin();
    let socks = Socks4::default().start();
    let ca = cacert();
    let mut args = vec![
        "--cacert".to_string(),
        ca,
        "--proxy".into(),
        socks.url("socks4"),
    ];
    args.extend(tls.resolve("probe.test"));
    args.push(tls.https_url("probe.test"));
    let (out, r) = json_run(&args);
    out.expect_code(0);
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert_eq!(tls.seen().sni.as_deref(), Some("probe.test"));
}

#[test]
fn socks4_cannot_carry_ipv6_targets() {
    let socks = Socks4::default().start();
    let proxy = socks.url("socks4");
    for (target, resolve) in [
        ("http://[::1]:9/", None),
        ("http://v6only.test:9/", Some("v6only.test:9:[::1]")),
    ] {
        let mut args = vec!["--proxy", &proxy, target];
        if let Some(entry) = resolve {
            args.extend(["--resolve", entry]);
        }
        let r = failing(&args, "proxy");
        let m = message(&r);
        assert!(
            m.contains("IPv4") && m.contains("IPv6") && m.contains("socks4a://"),
            "{m}"
        );
    }
    // socks4a cannot either, for an IPv6 literal; SOCKS5 can.
    let r = failing(
        &["--proxy", &socks.url("socks4a"), "http://[::1]:9/"],
        "proxy",
    );
    assert!(message(&r).contains("socks5://"), "{r}");
}

#[test]
fn socks4_error_replies_are_kind_proxy_with_their_meaning() {
    let cases = [
        (0x5b, "rejected or failed"),
        (0x5c, "identd"),
        (0x5d, "different user id"),
    ];
    for (code, words) in cases {
        let socks = Socks4 {
            reply: code,
            ..Socks4::default()
        }
        .start();
        let r = failing(
            &["--proxy", &socks.url("socks4"), "http://127.0.0.1:9/"],
            "proxy",
        );
        let m = message(&r);
        assert!(m.contains(words), "{code:#x}: {m}");
        assert!(m.contains(&format!("0x{code:02x}")), "{m}");
        assert!(
            m.contains(&socks.url("socks4")) && m.contains("127.0.0.1:9"),
            "{m}"
        );
    }
}

#[test]
fn socks4_proxy_answering_garbage_is_described_in_escapes() {
    // A TLS server's alert where a SOCKS4 reply belongs.
    let server = Server::start(Behaviour::Banner(b"\x15\x03\x01\x00\x02\x02\x28".to_vec()));
    let r = failing(
        &[
            "--proxy",
            &format!("socks4://{}", server.target()),
            "http://127.0.0.1:9/",
        ],
        "proxy",
    );
    let m = message(&r);
    assert!(m.contains(r#""\x15\x03\x01\x00\x02\x02("#), "{m}");
    assert!(!m.contains("\\u{"), "{m}");
}

// ---------------------------------------------------------------------------------------
// A real SOCKS5 peer: microsocks
// ---------------------------------------------------------------------------------------

#[test]
fn microsocks_as_a_real_peer_with_and_without_auth() {
    let Some(binary) = microsocks_binary() else {
        eprintln!("skipped: microsocks is not installed (apt-get install microsocks)");
        return;
    };
    let origin = origin_server();
    let tls = tls_origin();
    let ca = cacert();
    let open = start_microsocks(&binary, None);
    let locked = start_microsocks(&binary, Some(("mu", "Zq7xMicro")));
    // IP literals only: microsocks resolves names with the system resolver.
    let plain = format!("http://127.0.0.1:{}/micro", origin.port());
    let secure = format!("https://127.0.0.1:{}/", tls.port());
    let good = [
        format!("socks5://{}", open.addr()),
        format!("socks5h://mu:Zq7xMicro@{}", locked.addr()),
    ];
    for proxy in &good {
        let out = headprobe()
            .args([
                "--format",
                "json",
                "--ordered",
                "--cacert",
                &ca,
                "--proxy",
                proxy,
            ])
            .args([&plain, &secure])
            .run();
        out.expect_code(0);
        let records = out.json();
        assert_eq!(records[0]["status"], 200, "{}", records[0]);
        assert_eq!(records[1]["tls"]["verified"], true, "{}", records[1]);
        assert!(!out.out().contains("Zq7x"), "{out:?}");
    }
    // Wrong or missing credentials: kind proxy. Detection finds it either way.
    for proxy in [
        format!("socks5://mu:Zq7xWrong@{}", locked.addr()),
        format!("socks5://{}", locked.addr()),
    ] {
        let r = failing(&["--proxy", &proxy, &plain], "proxy");
        assert!(!message(&r).contains("Zq7x"), "{r}");
    }
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--proxy-check", &plain])
        .args([
            open.addr().to_string(),
            format!("mu:Zq7xMicro@{}", locked.addr()),
        ])
        .run();
    out.expect_code(0);
    let records = out.json();
    check_detected(&records[0], Some(format!("socks5://{}", open.addr())), None);
    check_detected(
        &records[1],
        Some(format!("socks5://{}", locked.addr())),
        None,
    );
}
