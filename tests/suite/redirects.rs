//! `-L` (redirect chains) and `--retry` (transient failures), against scripted servers.

use std::time::{Duration, Instant};

use futures_rustls::rustls;
use serde_json::{json, Value};

use crate::util::peer::{tls_handler, Peer};
use crate::util::pki::{cacert, pki, server_config};
use crate::util::*;

fn redirect(status: &str, location: &str) -> Vec<u8> {
    response(
        status,
        &[&format!("Location: {location}"), "Content-Length: 0"],
    )
}

fn hops(r: &Value) -> Vec<(String, u64, String)> {
    r["redirects"]
        .as_array()
        .unwrap_or_else(|| panic!("no redirects array: {r}"))
        .iter()
        .map(|h| {
            (
                h["url"].as_str().unwrap().to_string(),
                h["status"].as_u64().unwrap(),
                h["location"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_two_hop_chain_relative_then_absolute_ends_at_the_last_answer() {
    let end = Server::start(Behaviour::ByPath(vec![("/end".into(), ok_response())]));
    let far = format!("http://{}/end", end.target());
    let start = Server::start(Behaviour::ByPath(vec![
        (
            "/".into(),
            redirect("HTTP/1.1 301 Moved Permanently", "/hop"),
        ),
        ("/hop".into(), redirect("HTTP/1.1 302 Found", &far)),
    ]));
    let t = start.target();
    let (_, r) = json_run(&["-L", &t]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["final_url"], far.as_str(), "{r}");
    assert_eq!(r["addr"], end.target(), "{r}");
    assert_eq!(
        hops(&r),
        [
            (format!("http://{t}/"), 301, "/hop".to_string()),
            (format!("http://{t}/hop"), 302, far.clone()),
        ]
    );
    assert_eq!(r["attempts"], 1);
    let hop_request = String::from_utf8(start.requests(2).pop().unwrap()).unwrap();
    assert!(
        hop_request.starts_with("GET /hop HTTP/1.0\r\n"),
        "{hop_request}"
    );
    assert!(end
        .request_text()
        .contains(&format!("Host: {}\r\n", end.target())));

    // Text: every hop's lines as they came, a redirect line between hops; the same
    // whether streamed or written in order at the end.
    let want = format!(
        "{t} header > HTTP/1.1 301 Moved Permanently\n{t} header > Location: /hop\n\
         {t} header > Content-Length: 0\n{t} redirect > http://{t}/hop\n\
         {t} header > HTTP/1.1 302 Found\n{t} header > Location: {far}\n\
         {t} header > Content-Length: 0\n{t} redirect > {far}\n\
         {t} header > HTTP/1.0 200 OK\n{t} header > Server: loopback\n\
         {t} header > Content-Length: 0\n"
    );
    for ordered in [false, true] {
        let mut cmd = headprobe().args(["-L", &t]);
        if ordered {
            cmd = cmd.arg("--ordered");
        }
        let out = cmd.run();
        out.expect_code(0);
        assert_eq!(out.out(), want, "ordered: {ordered}");
    }
}

#[test]
fn without_location_a_redirect_is_the_answer() {
    let server = Server::start(Behaviour::ByPath(vec![
        (
            "/".into(),
            response("HTTP/1.1 302 Found", &["Content-Length: 0"]),
        ),
        (
            "/ftp".into(),
            redirect("HTTP/1.1 301 Moved", "ftp://127.0.0.1/file"),
        ),
        ("/ctl".into(), redirect("HTTP/1.1 301 Moved", "/a\x01b")),
    ]));
    for path in ["/", "/ftp", "/ctl"] {
        let url = format!("http://{}{path}", server.target());
        let (out, r) = json_run(&["-L", &url]);
        out.expect_code(0);
        assert_eq!(r["ok"], true, "{path}: {r}");
        assert_eq!(r["status"].as_u64().unwrap() / 100, 3, "{path}: {r}");
        assert_eq!(r["redirects"], json!([]), "{path}: {r}");
        assert_eq!(r["final_url"], url.as_str(), "{path}: {r}");
    }
    // Three probes, no hop followed.
    assert_eq!(server.accepted(), 3);
}

#[test]
fn a_loop_is_too_many_redirects_after_max_redirs_hops() {
    let server = Server::start(Behaviour::Respond(redirect("HTTP/1.1 302 Found", "/")));
    let r = failing(
        &["-L", "--max-redirs", "3", &server.target()],
        "too_many_redirects",
    );
    assert_eq!(hops(&r).len(), 3, "{r}");
    assert!(message(&r).contains("--max-redirs"), "{r}");
    assert_eq!(r["status"], 302);
    assert_eq!(server.accepted(), 4);
    // Without -L the 302 is simply the answer.
    let (out, r) = json_run(&[&server.target()]);
    out.expect_code(0);
    assert_eq!(r["redirects"], json!([]));
    assert_eq!(r["final_url"], Value::Null);
}

#[test]
fn see_other_turns_put_into_get_and_head_stays_head() {
    let end = Server::start(Behaviour::Respond(ok_response()));
    let to_end = format!("http://{}/done", end.target());
    let start = Server::start(Behaviour::Respond(redirect(
        "HTTP/1.1 303 See Other",
        &to_end,
    )));
    let out = headprobe().args(["-L", "-X", "PUT", &start.target()]).run();
    out.expect_code(0);
    assert!(start.request_text().starts_with("PUT / "));
    assert!(end.request_text().starts_with("GET /done "));

    let start = Server::start(Behaviour::Respond(redirect(
        "HTTP/1.1 307 Temporary",
        &to_end,
    )));
    headprobe()
        .args(["-L", "-X", "HEAD", &start.target()])
        .run()
        .expect_code(0);
    assert!(start.request_text().starts_with("HEAD / "));
    assert!(end.request_text().starts_with("HEAD /done "));
}

#[test]
fn a_redirect_from_http_to_https_verifies_the_new_host() {
    let tls = Peer::start(tls_handler(
        server_config(&pki().good, rustls::ALL_VERSIONS),
        ok_response(),
    ));
    let to_tls = format!("https://probe.test:{}/secure", tls.port());
    let start = Server::start(Behaviour::Respond(redirect("HTTP/1.1 301 Moved", &to_tls)));
    let resolve = format!("probe.test:{}:127.0.0.1", tls.port());
    let (out, r) = json_run(&[
        "-L",
        "--cacert",
        &cacert(),
        "--resolve",
        &resolve,
        &start.target(),
    ]);
    out.expect_code(0);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["tls"]["verified"], true, "{r}");
    assert_eq!(r["final_url"], to_tls.as_str());
    let seen = tls.seen();
    assert_eq!(seen.sni.as_deref(), Some("probe.test"));
    assert!(seen.text().starts_with("GET /secure HTTP/1.0\r\n"));
}

/// The final head is the one `curl -sL --http1.0 -D -` shows last.
#[test]
fn the_final_head_matches_curls() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let end = Server::start(Behaviour::ByPath(vec![(
        "/b/c".into(),
        response("HTTP/1.1 200 OK", &["X-End: yes", "Content-Length: 0"]),
    )]));
    let start = Server::start(Behaviour::ByPath(vec![
        ("/".into(), redirect("HTTP/1.1 301 Moved", "/a/x")),
        (
            "/a/x".into(),
            redirect(
                "HTTP/1.1 302 Found",
                &format!("http://{}/b/./d/../c", end.target()),
            ),
        ),
    ]));
    let url = format!("http://{}/", start.target());
    let curl = std::process::Command::new("curl")
        .args([
            "-sL",
            "--http1.0",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "--max-time",
            "10",
            &url,
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&curl.stdout).replace('\r', "");
    let last: Vec<&str> = text
        .trim_end()
        .split("\n\n")
        .last()
        .unwrap()
        .lines()
        .collect();
    let out = headprobe().args(["-L", &url]).run();
    out.expect_code(0);
    let ours: Vec<String> = out.lines();
    let tail: Vec<&str> = ours[ours.len() - last.len()..]
        .iter()
        .map(|l| l.split_once(" header > ").map_or("", |(_, line)| line))
        .collect();
    assert_eq!(tail, last, "curl said:\n{text}");
}

#[test]
fn a_503_then_200_is_retried_and_recorded_as_two_attempts() {
    let server = Server::start(Behaviour::Sequence(vec![
        Behaviour::Respond(response("HTTP/1.1 503 Service Unavailable", &[])),
        Behaviour::Respond(ok_response()),
    ]));
    let (out, r) = json_run(&["--retry", "2", "--retry-delay", "50ms", &server.target()]);
    out.expect_code(0);
    assert_eq!(
        (r["status"].clone(), r["attempts"].clone()),
        (json!(200), json!(2)),
        "{r}"
    );
    assert_eq!(server.accepted(), 2);
    // Text shows the failed attempt, then why and when it is tried again.
    let server = Server::start(Behaviour::Sequence(vec![
        Behaviour::Respond(response("HTTP/1.1 503 Busy", &[])),
        Behaviour::Respond(ok_response()),
    ]));
    let t = server.target();
    let out = headprobe()
        .args(["--retry", "1", "--retry-delay", "50ms", &t])
        .run();
    out.expect_code(0);
    assert_eq!(
        out.out(),
        format!(
            "{t} header > HTTP/1.1 503 Busy\n\
             {t} retry > attempt 1 of 2 failed (503 Busy); trying again in 50ms\n\
             {t} header > HTTP/1.0 200 OK\n{t} header > Server: loopback\n\
             {t} header > Content-Length: 0\n"
        )
    );
}

#[test]
fn a_reset_then_an_answer_is_retried() {
    let server = Server::start(Behaviour::Sequence(vec![
        Behaviour::Reset,
        Behaviour::Respond(ok_response()),
    ]));
    let (out, r) = json_run(&["--retry", "1", "--retry-delay", "10ms", &server.target()]);
    out.expect_code(0);
    assert_eq!(r["attempts"], 2, "{r}");
    // The last attempt fails too: the record is that attempt's.
    let server = Server::start(Behaviour::Reset);
    let r = failing(
        &["--retry", "2", "--retry-delay", "10ms", &server.target()],
        "reset",
    );
    assert_eq!(r["attempts"], 3, "{r}");
    assert_eq!(server.accepted(), 3);
}

#[test]
fn retry_after_is_honoured() {
    let server = Server::start(Behaviour::Sequence(vec![
        Behaviour::Respond(response("HTTP/1.1 503 Busy", &["Retry-After: 1"])),
        Behaviour::Respond(ok_response()),
    ]));
    let started = Instant::now();
    let (out, r) = json_run(&["--retry", "1", "--retry-delay", "10ms", &server.target()]);
    out.expect_code(0);
    assert_eq!(r["attempts"], 2, "{r}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 not waited for: {:?}",
        started.elapsed()
    );
}

#[test]
fn answers_are_not_retried() {
    let not_found = Server::start(Behaviour::Respond(response("HTTP/1.1 404 Not Found", &[])));
    let (out, r) = json_run(&["--retry", "3", "--retry-delay", "10ms", &not_found.target()]);
    out.expect_code(0);
    assert_eq!(r["attempts"], 1, "{r}");
    assert_eq!(not_found.accepted(), 1);
    let r = failing(
        &[
            "--retry",
            "3",
            "--retry-delay",
            "10ms",
            &refused_addr().to_string(),
        ],
        "refused",
    );
    assert_eq!(r["attempts"], 1, "{r}");
}

#[test]
fn hundreds_of_retries_at_a_small_concurrency_keep_one_record_each_and_the_bound() {
    let server = Server::start(Behaviour::FirstThen(
        response("HTTP/1.1 503 Busy", &[]),
        ok_response(),
    ));
    let list: Vec<String> = (0..300)
        .map(|i| format!("http://{}/{i}", server.target()))
        .collect();
    let file = temp_file("retry-many.txt", list.join("\n").as_bytes());
    let out = headprobe()
        .args([
            "--retry",
            "1",
            "--retry-delay",
            "100ms",
            "-c",
            "8",
            "--ordered",
        ])
        .args(["--format", "json", "-f"])
        .arg(&file)
        .run();
    out.expect_code(0);
    let records = out.json();
    assert_eq!(records.len(), list.len());
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["target"], list[i].as_str(), "record {i} out of order");
        assert_eq!(
            (r["status"].clone(), r["attempts"].clone()),
            (json!(200), json!(2))
        );
    }
    assert_eq!(server.accepted(), 600);
    assert!(
        server.max_open() <= 8,
        "{} connections at once with -c 8",
        server.max_open()
    );
}
