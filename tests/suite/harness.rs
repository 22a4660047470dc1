//! Checks of the harness itself: if these fail, the other failures mean nothing.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::*;

fn send_request(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    s
}

#[test]
fn server_records_the_request_and_answers() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let mut s = send_request(server.addr());
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, ok_response());
    assert_eq!(server.next_request(), b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(server.next_closed_within(WAIT));
}

#[test]
fn reset_behaviour_sends_an_rst() {
    let server = Server::start(Behaviour::Reset);
    let mut s = send_request(server.addr());
    server.next_request();
    let mut buf = [0u8; 16];
    let err = s.read(&mut buf).expect_err("expected a reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn close_immediately_is_a_clean_close_without_data() {
    let server = Server::start(Behaviour::CloseImmediately);
    let mut s = send_request(server.addr());
    let mut buf = Vec::new();
    assert_eq!(s.read_to_end(&mut buf).unwrap(), 0);
}

#[test]
fn silent_connection_ends_when_the_client_closes() {
    let server = Server::start(Behaviour::Silent);
    let s = send_request(server.addr());
    server.next_request();
    assert!(!server.next_closed_within(Duration::from_millis(100)));
    drop(s);
    assert!(server.next_closed_within(WAIT));
}

#[test]
fn banner_is_sent_before_any_request() {
    let server = Server::start(Behaviour::Banner(b"SSH-2.0-test\r\n".to_vec()));
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 14];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"SSH-2.0-test\r\n");
}

#[test]
fn oversized_lines_are_twenty_bytes() {
    assert_eq!(fill_line(0).len(), 20);
    assert_eq!(fill_line(12_345).len(), 20);
}

#[test]
fn hold_counts_open_connections_until_released() {
    let server = Server::start(Behaviour::Hold(ok_response()));
    let a = send_request(server.addr());
    let b = send_request(server.addr());
    server.requests(2);
    assert_eq!(server.max_open(), 2);
    server.release_all();
    for mut s in [a, b] {
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, ok_response());
    }
}

#[test]
fn blackhole_makes_connects_hang() {
    let hole = blackhole_listener();
    let err = TcpStream::connect_timeout(&hole.addr(), Duration::from_millis(300))
        .expect_err("a connect to the blackhole succeeded");
    assert_eq!(err.kind(), ErrorKind::TimedOut);
}

#[test]
fn refused_addr_refuses() {
    let err = TcpStream::connect(refused_addr()).expect_err("connected");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn key_order_reads_nested_keys_in_order() {
    let keys = key_order(r#"{"b":1,"a":{"z":null,"y":[1,{"q":2}]},"c":"x"}"#);
    assert_eq!(
        keys,
        vec![
            ("b".to_string(), vec![]),
            ("a".to_string(), vec!["z".to_string(), "y".to_string()]),
            ("c".to_string(), vec![]),
        ]
    );
}
