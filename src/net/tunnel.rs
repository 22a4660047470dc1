//! Proxy tunnels: HTTP CONNECT and the SOCKS5, SOCKS4 and SOCKS4a handshakes over any
//! futures-io stream.
//!
//! The message bytes are built and parsed in `proto::proxy`; this drives them over the
//! socket. Each handshake tells a peer that does not speak its protocol at all
//! (`Unspoken`: protocol detection moves on) from a proxy that spoke it and refused.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::net::wire::{read_head, HeadEnd};
use crate::proto::http::{HeadError, HeadParser};
use crate::proto::proxy::{
    parse_socks4_reply, parse_socks5_auth_reply, parse_socks5_choice, parse_socks5_reply,
    socks4_reply_text, socks4_request, socks5_auth_request, socks5_greeting, socks_connect_request,
    socks_reply_text, Proxy, Reply, Socks4Dest, SocksError, SOCKS4_GRANTED,
};
use crate::proto::request;
use crate::proto::target::{Host, Target};
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::sanitize::escape;

/// Peer bytes for a message: `\xNN`-escaped as in the output, at most 32 of them.
pub fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(32)];
    let mut text = escape(cut, true);
    if cut.len() < bytes.len() {
        text.push_str("...");
    }
    text
}

/// A SOCKS parser's complaint as a phrase: `answered "\x48\x54", not SOCKS5`.
pub fn describe(e: &SocksError) -> String {
    match e {
        SocksError::NotSocks5(got) => format!("answered \"{}\", not SOCKS5", shown(got)),
        SocksError::NotSocks4(got) => format!("answered \"{}\", not SOCKS4", shown(got)),
        SocksError::AddressType(t) => format!("answered with an unknown address type {t}"),
    }
}

/// What a peer did instead of speaking the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It closed the connection without a byte.
    Closed,
    /// It reset the connection without a byte.
    Reset,
    /// It sent these bytes (the start of its answer).
    Sent(Vec<u8>),
    /// It said nothing for this long (detection gives each protocol a share).
    Silent(std::time::Duration),
    /// The attempt could not be made (a SOCKS4 request needs the target's IPv4
    /// address, which did not resolve here): why.
    NotSent(String),
}

impl fmt::Display for Answer {
    /// A phrase for messages; the peer's bytes `\xNN`-escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Closed => f.write_str("closed the connection without answering"),
            Answer::Reset => f.write_str("reset the connection without answering"),
            Answer::Sent(bytes) => write!(f, "answered \"{}\"", shown(bytes)),
            Answer::NotSent(why) => write!(f, "could not be sent ({why})"),
            Answer::Silent(d) => write!(
                f,
                "stayed silent for {}",
                crate::report::duration::human(*d)
            ),
        }
    }
}

/// Why a tunnel was not opened.
#[derive(Debug)]
pub enum TunnelError {
    /// The peer does not speak the protocol: it closed, reset or answered something else
    /// before its first message in it.
    Unspoken(ProbeError, Answer),
    /// The proxy spoke the protocol, then refused or failed.
    Refused(ProbeError),
    /// The handshake broke off before the peer could say anything (an I/O error, or a
    /// request the protocol cannot carry).
    Broken(ProbeError),
}

impl From<TunnelError> for ProbeError {
    fn from(e: TunnelError) -> ProbeError {
        match e {
            TunnelError::Unspoken(e, _) | TunnelError::Refused(e) | TunnelError::Broken(e) => e,
        }
    }
}

fn refused(message: String) -> ProbeError {
    ProbeError::new(ErrorKind::Proxy, message)
}

/// The proxy spoke, and refused.
fn failed(message: String) -> TunnelError {
    TunnelError::Refused(refused(message))
}

/// Nothing could be asked of the proxy.
fn cannot(message: String) -> TunnelError {
    TunnelError::Broken(refused(message))
}

/// Opens a CONNECT tunnel to `target`; the proxy's reply (status line and headers) is
/// kept in `reply`. A non-2xx reply is kind `proxy`.
pub async fn http_connect<S>(
    stream: &mut S,
    proxy: &Proxy,
    target: &Target,
    max_header_bytes: usize,
    reply: &mut Option<Box<HeadParser>>,
) -> Result<(), TunnelError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let authority = request::connect_authority(target);
    let connect = request::connect(target, proxy.authorization().as_deref());
    stream.write_all(&connect).await.map_err(|e| {
        TunnelError::Broken(ProbeError::from_io(
            &e,
            "sending CONNECT to",
            format!("proxy {proxy}"),
        ))
    })?;

    let head = reply.insert(Box::new(HeadParser::new(max_header_bytes)));
    let read = read_head(stream, head, |_| {}).await;
    // No status line yet: this peer has not spoken HTTP.
    let spoke = !head.blocks().is_empty();
    let unspoken = |why: String, answer: Answer| {
        Err(TunnelError::Unspoken(
            refused(format!("proxy {proxy} {why}")),
            answer,
        ))
    };
    match read {
        Ok(()) => {}
        Err(HeadEnd::Io(e)) if !spoke && head.is_empty() => {
            let err = ProbeError::from_io(
                &e,
                "reading the CONNECT reply from",
                format!("proxy {proxy}"),
            );
            let answer = match err.kind {
                ErrorKind::Reset => Answer::Reset,
                _ => return Err(TunnelError::Broken(err)),
            };
            return Err(TunnelError::Unspoken(err, answer));
        }
        Err(HeadEnd::Io(e)) => {
            let what = "reading the CONNECT reply from";
            return Err(TunnelError::Refused(ProbeError::from_io(
                &e,
                what,
                format!("proxy {proxy}"),
            )));
        }
        Err(HeadEnd::Eof) if head.is_empty() => {
            return unspoken(
                "closed the connection before answering CONNECT".into(),
                Answer::Closed,
            )
        }
        Err(HeadEnd::Eof) if !spoke => {
            let sent = head.banner().to_vec();
            return unspoken(
                format!(
                    "closed the connection inside its answer to CONNECT, \"{}\"",
                    shown(&sent)
                ),
                Answer::Sent(sent),
            );
        }
        Err(HeadEnd::Eof) => {
            return Err(failed(format!(
                "proxy {proxy} closed the connection inside its reply to CONNECT"
            )))
        }
        Err(HeadEnd::Head(HeadError::NotHttp)) => {
            let sent = head.banner().to_vec();
            return unspoken(
                format!(
                    "did not answer CONNECT with HTTP; it sent \"{}\"",
                    shown(&sent)
                ),
                Answer::Sent(sent),
            );
        }
        Err(HeadEnd::Head(HeadError::TooLarge)) => {
            let too_large = if spoke { failed } else { cannot };
            return Err(too_large(format!(
                "proxy {proxy} sent a CONNECT reply larger than {max_header_bytes} bytes \
                 (--max-header-bytes)"
            )));
        }
    }
    let Some(block) = head.final_block() else {
        return Err(failed(format!(
            "proxy {proxy} sent no final reply to CONNECT"
        )));
    };
    let code = block.status.code;
    if (200..300).contains(&code) {
        return Ok(());
    }
    let reason = shown(head.reason(block));
    let why = match code {
        407 if proxy.has_credentials() => " (credentials rejected)",
        407 => " (credentials required)",
        _ => "",
    };
    Err(failed(
        format!("proxy {proxy} refused CONNECT {authority}: {code} {reason}{why}")
            .trim_end()
            .to_string(),
    ))
}

/// Why reading a SOCKS message stopped short.
enum ReadEnd {
    /// The peer closed after sending these bytes of the message (maybe none).
    Eof(Vec<u8>),
    Io(io::Error, Vec<u8>),
    Bad(SocksError),
}

/// Reads one SOCKS message, never past its end, and parses it.
async fn read_message<S, T>(
    stream: &mut S,
    parse: impl Fn(&[u8]) -> Result<Reply<T>, SocksError>,
) -> Result<T, ReadEnd>
where
    S: AsyncRead + Unpin,
{
    let mut buf = Vec::with_capacity(16);
    loop {
        match parse(&buf) {
            Ok(Reply::Done(t)) => return Ok(t),
            Err(e) => return Err(ReadEnd::Bad(e)),
            Ok(Reply::Need(n)) => {
                let have = buf.len();
                // `Need` only grows past what is there; a parser that asks for less is a
                // bug, not the peer's doing: stop rather than loop.
                if n <= have {
                    return Err(ReadEnd::Eof(buf));
                }
                buf.resize(n, 0);
                match stream.read(&mut buf[have..]).await {
                    Ok(0) => {
                        buf.truncate(have);
                        return Err(ReadEnd::Eof(buf));
                    }
                    Ok(got) => buf.truncate(have + got),
                    Err(e) => {
                        buf.truncate(have);
                        return Err(ReadEnd::Io(e, buf));
                    }
                }
            }
        }
    }
}

/// The first message of a SOCKS handshake failed: did the peer speak at all?
fn first_reply_failed(end: ReadEnd, proxy: &Proxy, step: &str) -> TunnelError {
    let (answer, err) = match end {
        ReadEnd::Eof(got) if got.is_empty() => (
            Answer::Closed,
            refused(format!(
                "proxy {proxy} closed the connection without answering the {step}"
            )),
        ),
        ReadEnd::Eof(got) => (
            Answer::Sent(got.clone()),
            refused(format!(
                "proxy {proxy} closed the connection after answering the {step} with \"{}\"",
                shown(&got)
            )),
        ),
        ReadEnd::Io(e, got) => {
            let err = ProbeError::from_io(
                &e,
                &format!("reading the {step} answer from"),
                format!("proxy {proxy}"),
            );
            match (err.kind, got.is_empty()) {
                (ErrorKind::Reset, true) => (Answer::Reset, err),
                _ => return TunnelError::Broken(err),
            }
        }
        ReadEnd::Bad(e) => {
            let sent = match &e {
                SocksError::NotSocks5(b) | SocksError::NotSocks4(b) => b.clone(),
                SocksError::AddressType(_) => Vec::new(),
            };
            (
                Answer::Sent(sent),
                refused(format!("proxy {proxy} {} (to the {step})", describe(&e))),
            )
        }
    };
    TunnelError::Unspoken(err, answer)
}

/// A later message of a handshake failed: the proxy spoke, then broke off.
fn later_reply_failed(end: ReadEnd, proxy: &Proxy, step: &str) -> TunnelError {
    TunnelError::Refused(match end {
        ReadEnd::Eof(_) => refused(format!(
            "proxy {proxy} closed the connection during the {step}"
        )),
        ReadEnd::Io(e, _) => ProbeError::from_io(
            &e,
            &format!("exchanging the {step} with"),
            format!("proxy {proxy}"),
        ),
        ReadEnd::Bad(e) => refused(format!("proxy {proxy} {} (to the {step})", describe(&e))),
    })
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    proxy: &Proxy,
    step: &str,
) -> Result<(), TunnelError> {
    stream.write_all(bytes).await.map_err(|e| {
        TunnelError::Broken(ProbeError::from_io(
            &e,
            &format!("sending the {step} to"),
            format!("proxy {proxy}"),
        ))
    })
}

/// Runs the SOCKS5 greeting, optional RFC 1929 authentication, and CONNECT. `heard` is
/// set once the greeting is answered: the peer speaks SOCKS5, whatever follows.
pub async fn socks5_connect<S>(
    stream: &mut S,
    proxy: &Proxy,
    target: &Target,
    heard: &std::cell::Cell<bool>,
) -> Result<(), TunnelError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let credentials = proxy.socks5_credentials();
    send(
        stream,
        socks5_greeting(credentials.is_some()),
        proxy,
        "SOCKS5 greeting",
    )
    .await?;
    let method = read_message(stream, parse_socks5_choice)
        .await
        .map_err(|end| first_reply_failed(end, proxy, "SOCKS5 greeting"))?;
    heard.set(true);
    match (method, credentials) {
        (0, _) => {}
        (2, Some((user, pass))) => {
            let request = socks5_auth_request(user, pass).map_err(cannot)?;
            send(stream, &request, proxy, "SOCKS5 authentication").await?;
            let accepted = read_message(stream, |b| Ok(parse_socks5_auth_reply(b)))
                .await
                .map_err(|end| later_reply_failed(end, proxy, "SOCKS5 authentication"))?;
            if !accepted {
                return Err(failed(format!(
                    "SOCKS5 proxy {proxy} rejected the user name and password"
                )));
            }
        }
        (0xff, _) | (2, None) => {
            let need = if credentials.is_some() {
                ""
            } else {
                " (it may need a user name and password)"
            };
            return Err(failed(format!(
                "SOCKS5 proxy {proxy} accepts none of our authentication methods{need}"
            )));
        }
        (m, _) => {
            return Err(failed(format!(
                "SOCKS5 proxy {proxy} chose an unknown authentication method {m}"
            )))
        }
    }

    let request = socks_connect_request(&target.host, target.port).map_err(cannot)?;
    send(stream, &request, proxy, "SOCKS5 CONNECT").await?;
    let reply = read_message(stream, parse_socks5_reply)
        .await
        .map_err(|end| later_reply_failed(end, proxy, "SOCKS5 CONNECT"))?;
    if reply.code != 0 {
        return Err(failed(format!(
            "SOCKS5 proxy {proxy} could not connect to {}:{}: {} (reply {})",
            target.host.authority_form(),
            target.port,
            socks_reply_text(reply.code),
            reply.code
        )));
    }
    Ok(())
}

/// Runs a SOCKS4 CONNECT to `ip` (SOCKS4), or to the target's name for the proxy to
/// resolve (SOCKS4a: `ip` is `None`).
pub async fn socks4_connect<S>(
    stream: &mut S,
    proxy: &Proxy,
    target: &Target,
    ip: Option<Ipv4Addr>,
) -> Result<(), TunnelError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name;
    let dest = match (ip, &target.host) {
        (Some(ip), _) => Socks4Dest::Ip(ip),
        (None, Host::Ip(IpAddr::V4(ip))) => Socks4Dest::Ip(*ip),
        (None, Host::Name(n)) => {
            name = n.as_str();
            Socks4Dest::Name(name)
        }
        (None, Host::Ip(IpAddr::V6(_))) => {
            return Err(cannot(format!(
                "SOCKS4 proxy {proxy} cannot carry the IPv6 address {} (use socks5://)",
                target.host
            )))
        }
    };
    let request = socks4_request(dest, target.port, proxy.socks4_user()).map_err(cannot)?;
    send(stream, &request, proxy, "SOCKS4 request").await?;
    let code = read_message(stream, parse_socks4_reply)
        .await
        .map_err(|end| first_reply_failed(end, proxy, "SOCKS4 request"))?;
    if code != SOCKS4_GRANTED {
        let shown_dest = match dest {
            Socks4Dest::Ip(ip) => ip.to_string(),
            Socks4Dest::Name(name) => name.to_string(),
        };
        return Err(failed(format!(
            "SOCKS4 proxy {proxy} could not connect to {shown_dest}:{}: {} (reply 0x{code:02x})",
            target.port,
            socks4_reply_text(code),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_bytes_are_escaped_in_messages() {
        let e = SocksError::NotSocks4(b"\x16\x03\x01\x00\xff ok".to_vec());
        assert_eq!(
            describe(&e),
            r#"answered "\x16\x03\x01\x00\xff ok", not SOCKS4"#
        );
        assert_eq!(shown(&[b'a'; 40]), format!("{}...", "a".repeat(32)));
        assert_eq!(
            Answer::Sent(b"SSH-2.0\r\n".to_vec()).to_string(),
            r#"answered "SSH-2.0\x0d\x0a""#
        );
    }
}
