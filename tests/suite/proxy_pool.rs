//! Proxies (issue: proxies), pool checks: `--proxy-check URL` over a pool of proxy
//! tokens, the records that describe each proxy, a pool of 200 loopback proxies of every
//! kind and fate checked in bounded time, and `--ordered` status output for awk.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::peer::*;
use crate::util::pki::*;
use crate::util::proxy::*;
use crate::util::*;

#[test]
fn proxy_check_records_describe_the_proxy() {
    let origin = origin_server();
    let http = HttpProxy::default().start();
    let http_auth = HttpProxy {
        auth: Some(basic("bob", "pw1")),
        ..HttpProxy::default()
    }
    .start();
    let socks = Socks5::default().start();
    let socks_auth = Socks5 {
        auth: Some(("carol".into(), "pw2".into())),
        ..Socks5::default()
    }
    .start();
    let url = format!("http://origin.test:{}/check?q=1", origin.port());
    let tokens = [
        http.hostport(),
        http_auth.url_with("http", "bob", "pw1"),
        socks.url("socks5"),
        socks_auth.url_with("socks5", "carol", "pw2"),
    ];
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--proxy-check", &url])
        .args(&tokens)
        .run();
    out.expect_code(0);
    let records = out.json();
    assert_eq!(records.len(), 4, "{out:?}");

    let expect = [
        (&http, http.hostport(), "http", true),
        (
            &http_auth,
            format!("http://bob:***@{}", http_auth.addr()),
            "http",
            true,
        ),
        (&socks, socks.url("socks5"), "socks5", false),
        (
            &socks_auth,
            format!("socks5://carol:***@{}", socks_auth.addr()),
            "socks5",
            false,
        ),
    ];
    for (r, (peer, target, scheme, absolute)) in records.iter().zip(expect) {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["target"], target, "{r}");
        assert_eq!(r["scheme"], scheme, "the proxy's scheme: {r}");
        assert_eq!(r["host"], "127.0.0.1", "{r}");
        assert_eq!(r["port"], peer.port(), "{r}");
        assert_eq!(r["addr"], peer.hostport(), "{r}");
        assert_eq!(r["url"], url.as_str(), "{r}");
        assert_eq!(r["final_url"], url.as_str(), "the URL requested: {r}");
        assert_eq!(r["proxy"], peer.url(scheme), "{r}");
        assert_eq!(r["tunnel"], Value::Null, "{r}");
        let path = if absolute { url.as_str() } else { "/check?q=1" };
        assert_eq!(r["path"], path, "request target as sent: {r}");
        assert_eq!(
            r["timing_ms"]["proxy"].is_null(),
            absolute,
            "timing_ms.proxy only with a tunnel: {r}"
        );
        let seen = peer.seen();
        if absolute {
            assert!(
                seen.text().starts_with(&format!("GET {url} HTTP/1.0\r\n")),
                "{seen:?}"
            );
        } else {
            assert!(
                seen.bytes
                    .ends_with(&socks_name_request("origin.test", origin.port())),
                "{seen:?}"
            );
        }
    }
    assert_eq!(origin.requests(4).len(), 4);
}

#[test]
fn proxy_check_of_an_https_url_tunnels_through_each_kind() {
    let origin = tls_origin();
    let http = HttpProxy::default().start();
    let socks = Socks5::default().start();
    let url = format!("https://probe.test:{}/", origin.port());
    let ca = cacert();
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--cacert", &ca])
        .args([
            "--proxy-check",
            &url,
            &http.url("http"),
            &socks.url("socks5"),
        ])
        .run();
    out.expect_code(0);
    let records = out.json();
    assert_eq!(records.len(), 2, "{out:?}");
    let (h, s) = (&records[0], &records[1]);
    for r in [h, s] {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["tls"]["verified"], true, "{r}");
        assert_eq!(r["path"], "/", "{r}");
        assert_eq!(r["url"], url.as_str(), "{r}");
        assert!(
            ms(&r["timing_ms"]["proxy"]) <= ms(&r["timing_ms"]["tls"]),
            "{r}"
        );
    }
    assert_eq!(h["scheme"], "http");
    assert_eq!(h["tunnel"]["status"], 200, "{h}");
    assert_eq!(s["scheme"], "socks5");
    assert_eq!(s["tunnel"], Value::Null, "{s}");
    let authority = format!("probe.test:{}", origin.port());
    assert_eq!(
        http.seen().text(),
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n")
    );
    let mut want = vec![5, 1, 0];
    want.extend(socks_name_request("probe.test", origin.port()));
    assert_eq!(socks.seen().bytes, want);
    for _ in 0..2 {
        assert_eq!(origin.seen().sni.as_deref(), Some("probe.test"));
    }
}

#[test]
fn proxy_check_tokens_without_a_port_use_1080() {
    let out = headprobe()
        .args(["--format", "json", "--ordered", "--connect-timeout", "1s"])
        .args(["-t", "2s", "--proxy-check", "http://origin.test/"])
        .args(["127.0.0.1", "socks5://127.0.0.1", "http://127.0.0.1"])
        .run();
    let records = out.json();
    assert_eq!(records.len(), 3, "{out:?}");
    // Nothing listens there: the bare token's protocol stays unknown (null).
    for (r, scheme) in records.iter().zip([None, Some("socks5"), Some("http")]) {
        assert_eq!(r["port"], 1080, "{r}");
        assert_eq!(r["addr"], "127.0.0.1:1080", "{r}");
        assert_eq!(r["scheme"].as_str(), scheme, "{r}");
        let proxy = scheme.map(|s| format!("{s}://127.0.0.1:1080"));
        assert_eq!(r["proxy"].as_str(), proxy.as_deref(), "{r}");
        assert_eq!(r["detected"], scheme.is_none(), "{r}");
    }
}

/// The expected outcome of one proxy in a pool.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    GoodHttp,
    GoodHttpScheme,
    GoodHttpAuth,
    GoodSocks,
    GoodSocksAuth,
    SocksRefuses(u8),
    HttpAuthMissing,
    Http403,
    Dead,
    StalledHttp,
    StalledSocks,
}

impl Role {
    /// The CODE_OR_KIND column.
    fn expected(self) -> &'static str {
        match self {
            Role::GoodHttp
            | Role::GoodHttpScheme
            | Role::GoodHttpAuth
            | Role::GoodSocks
            | Role::GoodSocksAuth => "200",
            Role::SocksRefuses(_) | Role::HttpAuthMissing => "proxy",
            Role::Http403 => "403",
            Role::Dead => "refused",
            Role::StalledHttp | Role::StalledSocks => "timeout",
        }
    }
}

/// One proxy of a pool: the token to give, the target to expect back, and what keeps
/// it alive.
struct PoolProxy {
    role: Role,
    token: String,
    shown: String,
    addr: SocketAddr,
    peer: Option<Peer>,
    _dead: Option<Dead>,
}

fn pool_proxy(role: Role, index: usize) -> PoolProxy {
    let auth_http = || HttpProxy {
        auth: Some(basic("pool", POOL_PASSWORD)),
        ..HttpProxy::default()
    };
    let (peer, dead) = match role {
        Role::GoodHttp | Role::GoodHttpScheme => (Some(HttpProxy::default().start()), None),
        Role::GoodHttpAuth | Role::HttpAuthMissing => (Some(auth_http().start()), None),
        Role::GoodSocks => (Some(Socks5::default().start()), None),
        Role::GoodSocksAuth => (
            Some(
                Socks5 {
                    auth: Some(("pool".into(), POOL_PASSWORD.into())),
                    ..Socks5::default()
                }
                .start(),
            ),
            None,
        ),
        Role::SocksRefuses(code) => (
            Some(
                Socks5 {
                    reply: code,
                    ..Socks5::default()
                }
                .start(),
            ),
            None,
        ),
        Role::Http403 => (
            Some(
                HttpProxy {
                    answer: Some(refusal(403, "Forbidden")),
                    ..HttpProxy::default()
                }
                .start(),
            ),
            None,
        ),
        Role::Dead => (None, Some(dead())),
        Role::StalledHttp | Role::StalledSocks => (Some(stalling()), None),
    };
    let addr = match (&peer, &dead) {
        (Some(p), _) => p.addr(),
        (None, Some(d)) => d.addr,
        (None, None) => unreachable!(),
    };
    let (token, shown) = match role {
        Role::GoodHttp | Role::Http403 | Role::StalledHttp => (addr.to_string(), None),
        Role::GoodHttpScheme | Role::HttpAuthMissing => (format!("http://{addr}"), None),
        Role::GoodHttpAuth => (
            format!("http://pool:{POOL_PASSWORD}@{addr}"),
            Some(format!("http://pool:***@{addr}")),
        ),
        Role::GoodSocks | Role::SocksRefuses(_) | Role::StalledSocks => {
            (format!("socks5://{addr}"), None)
        }
        Role::GoodSocksAuth => (
            format!("socks5://pool:{POOL_PASSWORD}@{addr}"),
            Some(format!("socks5://pool:***@{addr}")),
        ),
        Role::Dead if index.is_multiple_of(2) => (addr.to_string(), None),
        Role::Dead => (format!("socks5://{addr}"), None),
    };
    let shown = shown.unwrap_or_else(|| token.clone());
    PoolProxy {
        role,
        token,
        shown,
        addr,
        peer,
        _dead: dead,
    }
}

/// The pool's roles, interleaved by a fixed shuffle.
fn pool_roles() -> Vec<Role> {
    let mut roles = Vec::new();
    let mut add = |role: Role, n: usize| roles.resize(roles.len() + n, role);
    add(Role::GoodHttp, 30);
    add(Role::GoodHttpScheme, 20);
    add(Role::GoodHttpAuth, 10);
    add(Role::GoodSocks, 50);
    add(Role::GoodSocksAuth, 10);
    add(Role::HttpAuthMissing, 10);
    add(Role::Http403, 14);
    add(Role::Dead, 20);
    add(Role::StalledHttp, 10);
    add(Role::StalledSocks, 10);
    for code in 1..=8 {
        add(Role::SocksRefuses(code), 2);
    }
    // Fisher-Yates with a fixed LCG: the same interleaving every run.
    let mut state: u64 = 0x5eed_1234_abcd_ef01;
    for i in (1..roles.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (state >> 33) as usize % (i + 1);
        roles.swap(i, j);
    }
    roles
}

#[test]
fn pool_check_of_200_proxies_gives_200_correct_records_in_time() {
    let _ = rlimit::increase_nofile_limit(4096);
    let origin = origin_server();
    let roles = pool_roles();
    assert_eq!(roles.len(), 200);
    let pool: Vec<PoolProxy> = roles
        .iter()
        .enumerate()
        .map(|(i, &role)| pool_proxy(role, i))
        .collect();
    let list: String = pool.iter().map(|p| format!("{}\n", p.token)).collect();
    let file = temp_file("proxies.txt", list.as_bytes());
    let url = format!("http://origin.test:{}/pool", origin.port());

    let started = Instant::now();
    let out = headprobe()
        .args(["--proxy-check", &url, "-f"])
        .arg(&file)
        .args(["-c", "100", "--connect-timeout", "1s", "-t", "2s"])
        .args(["--format", "status"])
        .run();
    let took = started.elapsed();
    out.expect_code(1);

    // -t 2s bounds every probe; 200 probes at -c 100 are at most two waves of them.
    let bound = Duration::from_secs(2 * 2);
    let margin = Duration::from_secs(2);
    assert!(
        took < bound + margin,
        "took {took:?}, bound {bound:?} + {margin:?}"
    );

    let rows = out.status_rows();
    assert_eq!(rows.len(), 200, "one record per proxy\n{out:?}");
    let mut by_target = std::collections::HashMap::new();
    for row in &rows {
        assert_eq!(row.len(), 5, "{row:?}");
        assert!(
            by_target.insert(row[0].clone(), row.clone()).is_none(),
            "target {} twice",
            row[0]
        );
    }
    let mut counts = std::collections::BTreeMap::new();
    for p in &pool {
        let row = by_target
            .get(&p.shown)
            .unwrap_or_else(|| panic!("no record for {} ({:?})\n{out:?}", p.shown, p.role));
        assert_eq!(row[1], p.role.expected(), "{:?}: {row:?}", p.role);
        assert_eq!(row[3], p.addr.to_string(), "{:?}: {row:?}", p.role);
        *counts.entry(row[1].clone()).or_insert(0) += 1;
        let total: u64 = row[2].parse().expect("TOTAL_MS");
        match p.role {
            Role::StalledSocks => assert!(
                (990..1900).contains(&total),
                "stalled SOCKS5 is bounded by --connect-timeout 1s: {row:?}"
            ),
            Role::StalledHttp => assert!(
                (300..1900).contains(&total),
                "a port silent to every protocol is bounded by --connect-timeout 1s: {row:?}"
            ),
            Role::SocksRefuses(code) => assert!(
                row[4].contains(&format!("(reply {code})")),
                "{:?}: {row:?}",
                p.role
            ),
            Role::GoodHttp
            | Role::GoodHttpScheme
            | Role::GoodHttpAuth
            | Role::GoodSocks
            | Role::GoodSocksAuth => assert_eq!(row[4], "OK", "{row:?}"),
            _ => {}
        }
        if let (Some(peer), Role::GoodHttp | Role::GoodHttpScheme | Role::GoodHttpAuth) =
            (&p.peer, p.role)
        {
            let seen = peer.seen();
            assert!(
                seen.text().starts_with(&format!("GET {url} HTTP/1.0\r\n")),
                "{seen:?}"
            );
        }
        if let (Some(peer), Role::GoodSocks | Role::GoodSocksAuth) = (&p.peer, p.role) {
            let seen = peer.seen();
            assert!(
                seen.bytes
                    .ends_with(&socks_name_request("origin.test", origin.port())),
                "{seen:?}"
            );
        }
    }
    assert_eq!(
        counts,
        [
            ("200", 120),
            ("403", 14),
            ("proxy", 26),
            ("refused", 20),
            ("timeout", 20)
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into_iter()
        .collect(),
    );
    assert!(
        !out.out().contains(POOL_PASSWORD) && !out.err().contains(POOL_PASSWORD),
        "{out:?}"
    );
}

#[test]
fn ordered_status_lists_the_pool_in_input_order_for_awk() {
    let origin = origin_server();
    let stalled = stalling();
    let good_http = HttpProxy::default().start();
    let dead = dead();
    let good_socks = Socks5::default().start();
    let refusing = Socks5 {
        reply: 2,
        ..Socks5::default()
    }
    .start();
    let auth = HttpProxy {
        auth: Some(basic("x", "y")),
        ..HttpProxy::default()
    }
    .start();
    let good_http2 = HttpProxy::default().start();
    // The stalled one first: it finishes last, so completion order differs.
    let tokens = [
        stalled.url("socks5"),
        good_http.hostport(),
        dead.addr.to_string(),
        good_socks.url("socks5"),
        refusing.url("socks5"),
        auth.url("http"),
        good_http2.url("http"),
    ];
    let kinds = ["timeout", "200", "refused", "200", "proxy", "proxy", "200"];
    let url = format!("http://origin.test:{}/", origin.port());
    let run = |ordered: bool| {
        let mut cmd = headprobe()
            .args(["--proxy-check", &url, "--format", "status"])
            .args(["--connect-timeout", "1s", "-t", "3s"]);
        if ordered {
            cmd = cmd.arg("--ordered");
        }
        let out = cmd.args(&tokens).run();
        out.expect_code(1);
        out
    };

    let out = run(true);
    let rows = out.status_rows();
    let got: Vec<(&str, &str)> = rows.iter().map(|r| (&r[0][..], &r[1][..])).collect();
    let want: Vec<(&str, &str)> = tokens.iter().map(|t| &t[..]).zip(kinds).collect();
    assert_eq!(got, want, "--ordered: input order\n{out:?}");

    let mut awk = Command::new("awk")
        .arg("$2==200")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run awk");
    awk.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let awk = awk.wait_with_output().expect("awk output");
    let working: Vec<String> = String::from_utf8_lossy(&awk.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(
        working,
        [
            good_http.hostport(),
            good_socks.url("socks5"),
            good_http2.url("http")
        ],
        "awk '$2==200' lists exactly the working proxies, in input order"
    );

    // Without --ordered, as completed: the stalled proxy comes last.
    let out = run(false);
    let rows = out.status_rows();
    assert_eq!(rows.len(), tokens.len(), "{out:?}");
    assert_eq!(rows.last().unwrap()[0], tokens[0], "as completed\n{out:?}");
}
