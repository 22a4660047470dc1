//! Proxies (issue: proxies), credential redaction: passwords given in `--proxy`, in
//! `--proxy-check` tokens or in target tokens never appear in any output, in any format,
//! whether the proxy accepts them, refuses them, stalls or is not there.

use crate::util::peer::*;
use crate::util::pki::*;
use crate::util::proxy::*;
use crate::util::*;

#[test]
fn credentials_never_appear_in_any_output() {
    // Every password below contains this; the percent-encoded one too.
    const SECRET: &str = "Zq7x";
    let user = "alice";
    let pw = "Zq7xRight";
    let wrong = "Zq7xWrong";

    let origin = origin_server();
    let tls = tls_origin();
    let http = HttpProxy {
        auth: Some(basic(user, pw)),
        ..HttpProxy::default()
    }
    .start();
    let refusing = HttpProxy {
        auth: Some(basic(user, pw)),
        refuse_connect: Some(refusal(403, "Forbidden")),
        ..HttpProxy::default()
    }
    .start();
    let socks = Socks5 {
        auth: Some((user.into(), pw.into())),
        ..Socks5::default()
    }
    .start();
    let stalled = stalling();
    let dead = dead();
    let ca = cacert();
    let plain = format!("http://127.0.0.1:{}/", origin.port());
    let secure = format!("https://probe.test:{}/", tls.port());

    // Things that must not be printed: the passwords as given and decoded, and the
    // Basic credentials headprobe computes.
    let mut forbidden = vec![SECRET.to_string()];
    for p in [pw, wrong, "Zq7x@Enc"] {
        let basic = basic(user, p);
        forbidden.push(basic.trim_start_matches("Basic ").to_string());
    }

    let url_with = |peer: &Peer, scheme: &str, p: &str| peer.url_with(scheme, user, p);
    let dead_with = |scheme: &str| format!("{scheme}://{user}:{pw}@{}", dead.addr);
    // (--proxy URL, targets)
    let mut runs: Vec<Vec<String>> = Vec::new();
    for proxy in [
        url_with(&http, "http", pw),
        url_with(&http, "http", wrong),
        url_with(&http, "http", "Zq7x%40Enc"),
        url_with(&refusing, "http", pw),
        url_with(&socks, "socks5", pw),
        url_with(&socks, "socks5", wrong),
        url_with(&stalled, "http", pw),
        url_with(&stalled, "socks5", pw),
        dead_with("http"),
        dead_with("socks5"),
    ] {
        runs.push(vec!["--proxy".into(), proxy, plain.clone(), secure.clone()]);
    }
    // --proxy-check with credentials in the tokens, valid and not.
    runs.push(vec![
        "--proxy-check".into(),
        plain.clone(),
        url_with(&http, "http", pw),
        url_with(&http, "http", wrong),
        format!("{user}:{pw}@{}", http.addr()),
        url_with(&socks, "socks5", pw),
        url_with(&socks, "socks5", wrong),
        url_with(&stalled, "socks5", pw),
        dead_with("http"),
        dead_with("socks5"),
        format!("http://{user}:{pw}@127.0.0.1:0"),
        format!("ftp://{user}:{pw}@127.0.0.1:1"),
        format!("socks5://{user}:{pw}@127.0.0.1:1/path"),
        format!("http://{user}:{pw}@bad host:1"),
        format!("http://{user}:Zq7x%zz@127.0.0.1:1"),
    ]);
    runs.push(vec![
        "--proxy-check".into(),
        secure.clone(),
        url_with(&http, "http", pw),
        url_with(&refusing, "http", pw),
        url_with(&socks, "socks5", pw),
    ]);

    let check = |out: &Outcome, what: &str| {
        for bad in &forbidden {
            assert!(
                !out.out().contains(bad.as_str()) && !out.err().contains(bad.as_str()),
                "{bad:?} printed by {what}\n{out:?}"
            );
        }
    };
    for args in &runs {
        for format in ["text", "status", "json"] {
            let out = headprobe()
                .args(["--format", format, "--progress", "--cacert", &ca])
                .args(["--connect-timeout", "1s", "-t", "2s"])
                .args(args)
                .run();
            let what = format!("--format {format} {args:?}");
            assert!(
                out.code == Some(0) || out.code == Some(1),
                "{what}\n{out:?}"
            );
            assert!(!out.stdout.is_empty(), "{what}: no output\n{out:?}");
            check(&out, &what);
            if format == "json" && args[0] == "--proxy-check" {
                for r in out.json() {
                    let target = r["target"].as_str().unwrap();
                    if target.contains('@') {
                        assert!(target.contains(&format!("{user}:***@")), "{r}");
                    }
                }
            }
        }
    }

    // Usage errors that carry credentials.
    for args in [
        vec![
            "--proxy".to_string(),
            format!("http://{user}:{pw}@127.0.0.1:0"),
            plain.clone(),
        ],
        vec![
            "--proxy".to_string(),
            format!("ftp://{user}:{pw}@127.0.0.1:1"),
            plain.clone(),
        ],
        vec![
            "--proxy".to_string(),
            format!("socks5://{user}:{pw}@127.0.0.1:1/x"),
            plain.clone(),
        ],
        vec![
            "--proxy".to_string(),
            format!("http://{user}:{pw}%g@127.0.0.1:1"),
            plain.clone(),
        ],
        vec![
            "--proxy".to_string(),
            format!("http://{user}:{pw}@127.0.0.1:1"),
            "--proxy-check".to_string(),
            plain.clone(),
            "127.0.0.1:1".to_string(),
        ],
    ] {
        let out = headprobe().args(&args).run();
        out.expect_code(2);
        check(&out, &format!("{args:?}"));
    }
}

/// The contract: "Credentials never appear in any output: where a target token itself
/// carries `user:pass@`, its echo in `target` shows `user:***@`." That holds for the
/// probed targets too, not only for the proxies of `--proxy-check`.
#[test]
fn credentials_in_target_tokens_are_redacted_in_their_echo() {
    let proxy = HttpProxy::default().start();
    let proxy_url = proxy.url("http");
    let tokens = [
        "http://alice:Zq7xTarget@127.0.0.1:9/",
        "https://alice:Zq7xTarget@127.0.0.1:9/",
        "alice:Zq7xTarget@127.0.0.1:9",
    ];
    for with_proxy in [true, false] {
        for format in ["text", "status", "json"] {
            let mut cmd = headprobe().args(["--format", format]);
            if with_proxy {
                cmd = cmd.args(["--proxy", &proxy_url]);
            }
            let out = cmd.args(tokens).run();
            let what = format!("--format {format}, --proxy: {with_proxy}");
            assert_eq!(out.lines().len(), tokens.len(), "{what}\n{out:?}");
            assert!(
                !out.out().contains("Zq7x") && !out.err().contains("Zq7x"),
                "{what}: a password in a target token was echoed\n{out:?}"
            );
        }
    }
}
