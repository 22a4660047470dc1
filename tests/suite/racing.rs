//! Connection racing (RFC 8305, Happy Eyeballs): a name with a dead address before a
//! live one answers in well under a second, from the live one; the attempt to the dead
//! one is dropped; when every address fails, the message says what happened to each.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::util::*;

/// A blackhole on 127.0.0.2 and a live server on 127.0.0.1, on one port (so that one
/// `--resolve` entry can name both).
fn dead_and_live(live: Behaviour) -> (Blackhole, Server) {
    for _ in 0..20 {
        let hole = blackhole_on("127.0.0.2:0".parse().unwrap()).expect("bind 127.0.0.2:0");
        let port = hole.addr().port();
        if let Ok(server) = Server::start_on(&format!("127.0.0.1:{port}"), live.clone()) {
            return (hole, server);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

/// Connections of this machine in SYN_SENT to `addr` (IPv4), from /proc/net/tcp.
fn syn_sent_to(addr: SocketAddr) -> usize {
    let SocketAddr::V4(v4) = addr else { return 0 };
    let ip = u32::from_le_bytes(v4.ip().octets());
    let want = format!("{ip:08X}:{:04X}", v4.port());
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == want && f[3] == "02"
        })
        .count()
}

#[test]
fn a_dead_first_address_costs_the_attempt_delay_not_the_budget() {
    let (hole, server) = dead_and_live(Behaviour::Respond(ok_response()));
    let port = server.addr().port();
    let name = format!("race.test:{port}");
    // Held open after the first record, so the run is still going when the test looks
    // for the dead attempt's socket.
    let holder = Server::start(Behaviour::Hold(ok_response()));
    let started = Instant::now();
    let mut run = headprobe()
        .args([
            "--format",
            "json",
            "--resolve",
            &format!("race.test:{port}:127.0.0.2,127.0.0.1"),
            &name,
            &holder.target(),
        ])
        .spawn();
    let line = run.next_line();
    let took = started.elapsed();
    let rec: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(rec["target"], name.as_str(), "{line}");
    assert_eq!(rec["ok"], true, "{line}");
    assert_eq!(rec["addr"], format!("127.0.0.1:{port}"), "{line}");
    assert_eq!(
        rec["resolved"],
        serde_json::json!(["127.0.0.2", "127.0.0.1"]),
        "{line}"
    );
    // The second attempt starts 250 ms after the first; the default budget is 5 s,
    // and trying in turn on equal shares took 2.5 s.
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert_eq!(
        syn_sent_to(hole.addr()),
        0,
        "the attempt to the dead address is still open after the race was won"
    );
    holder.release_all();
    let out = run.finish();
    out.expect_code(0);
}

#[test]
fn a_race_nobody_wins_names_every_address() {
    let hole = blackhole_on("127.0.0.2:0".parse().unwrap()).expect("bind 127.0.0.2:0");
    let port = hole.addr().port();
    // Nothing listens on 127.0.0.3 at that port: refused.
    let out = headprobe()
        .args([
            "--format",
            "json",
            "--connect-timeout",
            "600ms",
            "--resolve",
            &format!("dead.test:{port}:127.0.0.2,127.0.0.3"),
            &format!("dead.test:{port}"),
        ])
        .run();
    out.expect_code(1);
    let rec = out.only_json();
    let message = rec["error"]["message"].as_str().unwrap().to_string();
    assert_eq!(rec["error"]["kind"], "connect_timeout", "{message}");
    assert_eq!(
        message,
        format!(
            "no connection to any of 2 addresses within 600ms (--connect-timeout): \
             127.0.0.2:{port} did not answer, 127.0.0.3:{port} refused the connection"
        )
    );
    // The last address tried.
    assert_eq!(rec["addr"], format!("127.0.0.3:{port}"));
}

#[test]
fn every_address_refusing_is_refused_at_once() {
    let port = refused_addr().port();
    let started = Instant::now();
    let out = headprobe()
        .args([
            "--format",
            "json",
            "--resolve",
            &format!("gone.test:{port}:127.0.0.1,127.0.0.4"),
            &format!("gone.test:{port}"),
        ])
        .run();
    // A failure starts the next attempt at once: no 250 ms wait.
    assert!(started.elapsed() < Duration::from_secs(2));
    let rec = out.only_json();
    assert_eq!(rec["error"]["kind"], "refused");
    assert_eq!(
        rec["error"]["message"],
        format!(
            "no connection to any of 2 addresses within 5s (--connect-timeout): \
             127.0.0.1:{port} refused the connection, 127.0.0.4:{port} refused the connection"
        )
    );
}
