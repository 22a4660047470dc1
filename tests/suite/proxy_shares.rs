//! Proxy detection shares the budget between the protocols, so a port silent to one
//! cannot starve the others; and a proxy given with a scheme that answers in another
//! protocol is told so, with the scheme that would work.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use crate::util::*;

/// A port that answers a SOCKS5 greeting with "no acceptable methods" (`05 ff`) and
/// stays silent to anything else until the client gives up.
fn silent_to_http_socks5_to_refuse() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(8) {
            let Ok(mut s) = conn else { return };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(WATCHDOG));
                let mut first = [0u8; 1];
                if s.read_exact(&mut first).is_ok() && first[0] == 0x05 {
                    let _ = s.write_all(&[0x05, 0xff]);
                    return;
                }
                // Silence: read until the client closes.
                let mut sink = [0u8; 512];
                while matches!(s.read(&mut sink), Ok(1..)) {}
            });
        }
    });
    addr
}

#[test]
fn a_port_silent_to_http_is_still_tried_as_socks5() {
    let port = silent_to_http_socks5_to_refuse();
    let started = Instant::now();
    let out = headprobe()
        .args(["--format", "json", "-t", "3s"])
        .args(["--proxy-check", "http://127.0.0.1:9/", &port.to_string()])
        .run();
    let r = out.only_json();
    // It used to spend the whole --timeout on the HTTP attempt: a plain timeout.
    assert_eq!(r["error"]["kind"], "proxy", "{r}");
    assert_eq!(r["proxy"], format!("socks5://{port}"), "{r}");
    assert_eq!(r["detected"], true, "{r}");
    assert!(started.elapsed() < Duration::from_secs(3), "{r}");
}

#[test]
fn a_port_silent_to_every_protocol_names_none_of_them() {
    let server = Server::start(Behaviour::Silent);
    let out = headprobe()
        .args(["--format", "json", "-t", "1500ms"])
        .args(["--proxy-check", "http://127.0.0.1:9/", &server.target()])
        .run();
    let r = out.only_json();
    assert_eq!(r["error"]["kind"], "timeout", "{r}");
    assert_eq!(r["proxy"], serde_json::Value::Null, "{r}");
    let m = message(&r);
    assert!(
        m.starts_with(&format!(
            "{} answered none of HTTP, SOCKS5 and SOCKS4: to an HTTP proxy request it stayed \
             silent for ",
            server.target()
        )),
        "{m}"
    );
    assert!(
        m.contains("; to a SOCKS5 greeting it stayed silent for "),
        "{m}"
    );
    assert!(
        m.contains("; to a SOCKS4 request it stayed silent for "),
        "{m}"
    );
    assert!(!m.contains("socks5://") && !m.contains("http://"), "{m}");
}

#[test]
fn an_http_proxy_that_answers_in_socks5_is_told_which_scheme_works() {
    let server = Server::start(Behaviour::Respond(vec![0x05, 0xff]));
    let t = server.target();
    let r = failing(
        &["--proxy", &format!("http://{t}"), "http://127.0.0.1:9/"],
        "proxy",
    );
    assert_eq!(
        message(&r),
        format!(
            "http://{t} answered in SOCKS5, not HTTP (it sent \"\\x05\\xff\"); try socks5://{t}"
        )
    );
}

#[test]
fn a_socks5_proxy_that_answers_in_http_is_told_which_scheme_works() {
    let server = Server::start(Behaviour::Banner(
        b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
    ));
    let t = server.target();
    let r = failing(
        &["--proxy", &format!("socks5://{t}"), "http://127.0.0.1:9/"],
        "proxy",
    );
    assert_eq!(
        message(&r),
        format!("socks5://{t} answered in HTTP, not SOCKS5 (it sent \"HT\"); try http://{t}")
    );
}
