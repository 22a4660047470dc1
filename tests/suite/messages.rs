//! Messages are sentences for a person: peer bytes in the output's `\xNN` escaping,
//! whole sentences, and the option that actually fired.

use crate::util::*;

#[test]
fn a_non_http_reply_is_quoted_in_output_escaping() {
    let server = Server::start(Behaviour::Banner(
        b"\x16\x03\x01\x00\xff\xfeSSH\tx\r\n".to_vec(),
    ));
    let r = failing(&[&server.target()], "not_http");
    let m = message(&r);
    assert_eq!(
        m,
        format!(
            "{} did not answer with an HTTP status line; it sent \"\\x16\\x03\\x01\\x00\\xff\\xfeSSH\\x09x\"",
            server.target()
        ),
        "{r}"
    );
    assert!(!m.contains("\\u{"), "Rust escapes in {m}");
}

#[test]
fn a_reset_message_is_a_whole_sentence() {
    let server = Server::start(Behaviour::Reset);
    let r = failing(&[&server.target()], "reset");
    let m = message(&r);
    assert!(
        m.starts_with(&format!("connection reset by {} while ", server.target()))
            && m.ends_with(" it"),
        "{m}"
    );
}

#[test]
fn a_connect_cut_short_by_timeout_names_timeout() {
    let hole = blackhole_listener();
    let r = failing(&["-t", "500ms", &hole.target()], "connect_timeout");
    assert_eq!(
        message(&r),
        format!(
            "no connection to {} within 500ms (--timeout)",
            hole.target()
        )
    );
    let r = failing(
        &["--connect-timeout", "300ms", &hole.target()],
        "connect_timeout",
    );
    assert_eq!(
        message(&r),
        format!(
            "no connection to {} within 300ms (--connect-timeout)",
            hole.target()
        )
    );
}

#[test]
fn a_stalled_tls_handshake_names_the_limit_that_fired() {
    let server = Server::start(Behaviour::Banner(Vec::new()));
    let url = format!("https://{}/", server.target());
    let r = failing(&["-t", "400ms", &url], "timeout");
    assert_eq!(
        message(&r),
        "TLS handshake not finished within 400ms (--timeout)",
        "{r}"
    );
}
