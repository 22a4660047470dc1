//! Name resolution, without a single packet leaving this machine.
//!
//! A failing lookup runs inside a fresh network namespace (`unshare --net`): it has no
//! route at all (not even an up loopback), so the query fails with "network unreachable"
//! before anything is sent. The resolv.conf it reads names 127.0.0.1, so the machine's
//! own resolver is never the one asked. Checked by hand with
//! `unshare --net -- strace -f -e trace=network headprobe nonexistent.test`: the only
//! network calls are UDP connects to the resolver, each refused with ENETUNREACH.
//!
//! `--resolve` is tested with the name `localhost`, which `/etc/hosts` answers with
//! 127.0.0.1: if `--resolve` were ignored the probe would go to 127.0.0.1, not ask DNS,
//! and it would fail, as the pinned servers listen elsewhere in 127.0.0.0/8.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use serde_json::Value;

use crate::util::*;

/// Why a namespace cannot keep the lookup on this machine, if it cannot.
fn namespace_unusable() -> Option<String> {
    let unshare = Command::new("unshare")
        .args(["--net", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(unshare, Ok(s) if s.success()) {
        return Some("`unshare --net true` fails (not root, or no namespaces)".into());
    }
    // Lookups handed over a Unix socket to a daemon outside the namespace would be sent
    // from there: nscd, or NSS modules such as `resolve` (systemd-resolved) or mdns.
    if std::path::Path::new("/var/run/nscd/socket").exists() {
        return Some("nscd is running: lookups would leave through it".into());
    }
    let nss = std::fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let hosts = nss
        .lines()
        .find_map(|l| l.trim().strip_prefix("hosts:"))
        .unwrap_or("files dns");
    if let Some(module) = hosts
        .split_whitespace()
        .find(|m| !matches!(*m, "files" | "dns" | "myhostname") && !m.starts_with('['))
    {
        return Some(format!(
            "NSS hosts module '{module}' may resolve outside the namespace"
        ));
    }
    None
}

/// Runs headprobe with `args` in a new network namespace with no route.
fn in_empty_netns(args: &[&str]) -> Outcome {
    let mut cmd = Command::new("unshare");
    // The resolver asked is on loopback, never the machine's own, so no query could
    // leave even outside the namespace (where loopback is down, the send fails).
    let conf = temp_file("netns-resolv.conf", b"nameserver 127.0.0.1\n");
    cmd.args(["--net", "--", env!("CARGO_BIN_EXE_headprobe")])
        .args(args)
        .env_clear()
        .env("HEADPROBE_RESOLV_CONF", &conf)
        .env("LC_ALL", "C")
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("run unshare");
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(WATCHDOG) {
        Ok(out) => out.expect("wait for unshare"),
        Err(_) => {
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("headprobe still running after {WATCHDOG:?} in the namespace, killed it");
        }
    };
    use std::os::unix::process::ExitStatusExt;
    Outcome {
        code: out.status.code(),
        signal: out.status.signal(),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

#[test]
fn an_unresolvable_name_is_a_dns_record() {
    if let Some(why) = namespace_unusable() {
        eprintln!("skipped: {why}");
        return;
    }
    let host = "nonexistent.test";

    let out = in_empty_netns(&["--format", "json", host]);
    out.expect_code(1);
    let r = out.only_json();
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["kind"], "dns", "{r}");
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(host),
        "the message does not name the host: {r}"
    );
    assert_eq!(r["addr"], Value::Null, "{r}");
    assert_eq!(r["host"], host, "{r}");
    assert_eq!(r["status"], Value::Null, "{r}");
    assert_eq!(r["timing_ms"]["connect"], Value::Null, "{r}");

    let out = in_empty_netns(&[host]);
    out.expect_code(1);
    assert_eq!(out.lines().len(), 1, "{out:?}");
    assert!(
        out.lines()[0].starts_with(&format!("{host} error > dns: ")),
        "{out:?}"
    );

    let out = in_empty_netns(&["--format", "status", host]);
    out.expect_code(1);
    let rows = out.status_rows();
    assert_eq!(rows.len(), 1, "{out:?}");
    assert_eq!(rows[0].len(), 5, "{out:?}");
    assert_eq!(rows[0][0], host);
    assert_eq!(rows[0][1], "dns");
    assert_eq!(rows[0][3], "-", "ADDR must be '-' when none was tried");
    assert!(rows[0][4].contains(host), "{out:?}");
}

/// `--resolve localhost:PORT:A,B` where nothing listens at A: B answers, and `addr` is B.
#[test]
fn resolve_with_several_addresses_tries_the_next_after_a_refusal() {
    let Ok(server) = Server::start_on("127.0.0.2:0", Behaviour::Respond(ok_response())) else {
        eprintln!("skipped: cannot bind 127.0.0.2");
        return;
    };
    let port = server.port();
    let pin = format!("localhost:{port}:127.0.0.3,127.0.0.2");
    let target = format!("localhost:{port}");
    let out = headprobe()
        .args(["--format", "json", "--resolve", &pin, &target])
        .run();
    out.expect_code(0);
    let r = out.only_json();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["addr"], format!("127.0.0.2:{port}"), "{r}");
    assert!(server
        .request_text()
        .contains(&format!("Host: localhost:{port}\r\n")));

    let out = headprobe()
        .args(["--format", "status", "--resolve", &pin, &target])
        .run();
    out.expect_code(0);
    let rows = out.status_rows();
    assert_eq!(rows.len(), 1, "{out:?}");
    assert_eq!(rows[0][1], "200", "{out:?}");
    assert_eq!(rows[0][3], format!("127.0.0.2:{port}"), "{out:?}");
}

/// Every pinned address refuses: `refused`, and `addr` is the last one tried, so both
/// were tried, in order.
#[test]
fn resolve_with_every_address_refusing_reports_the_last() {
    let port = refused_addr().port();
    let free = |ip: &str| -> bool {
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        std::net::TcpStream::connect_timeout(&addr, WAIT).is_err()
    };
    assert!(
        free("127.0.0.3") && free("127.0.0.4"),
        "port {port} is taken"
    );
    let pin = format!("localhost:{port}:127.0.0.3,127.0.0.4");
    let out = headprobe()
        .args(["--format", "json", "--resolve", &pin])
        .arg(format!("localhost:{port}"))
        .run();
    out.expect_code(1);
    let r = out.only_json();
    assert_eq!(r["error"]["kind"], "refused", "{r}");
    assert_eq!(r["addr"], format!("127.0.0.4:{port}"), "{r}");
}
