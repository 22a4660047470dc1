//! Proxy tunnels: HTTP CONNECT and the SOCKS5 handshake over any futures-io stream.
//!
//! The message bytes come from `proto::proxy`; this drives them over the socket.

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::net::wire::{read_head, HeadEnd};
use crate::proto::http::{HeadError, HeadParser};
use crate::proto::proxy::{socks_connect_request, socks_reply_text, Proxy};
use crate::proto::request;
use crate::proto::target::Target;
use crate::report::error::{ErrorKind, ProbeError};

/// Opens a CONNECT tunnel to `target`; returns the proxy's reply (status line and
/// headers). A non-2xx reply is kind `proxy`, and the reply comes back with it.
pub async fn http_connect<S>(
    stream: &mut S,
    proxy: &Proxy,
    target: &Target,
    max_header_bytes: usize,
    reply: &mut Option<Box<HeadParser>>,
) -> Result<(), ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let authority = request::connect_authority(target);
    let connect = request::connect(target, proxy.authorization().as_deref());
    stream
        .write_all(&connect)
        .await
        .map_err(|e| ProbeError::from_io(&e, "sending CONNECT to", format!("proxy {proxy}")))?;

    let head = reply.insert(Box::new(HeadParser::new(max_header_bytes)));
    let read = read_head(stream, head, |_| {}).await;
    let failed = |why: String| Err(refused(format!("proxy {proxy} {why}")));
    match read {
        Ok(()) => {}
        Err(HeadEnd::Io(e)) => {
            let what = "reading the CONNECT reply from";
            return Err(ProbeError::from_io(&e, what, format!("proxy {proxy}")));
        }
        Err(HeadEnd::Eof) => {
            return failed("closed the connection before answering CONNECT".into())
        }
        Err(HeadEnd::Head(HeadError::NotHttp)) => {
            let banner: String = String::from_utf8_lossy(head.banner())
                .chars()
                .take(60)
                .collect();
            return failed(format!(
                "did not answer CONNECT with HTTP; it sent {banner:?}"
            ));
        }
        Err(HeadEnd::Head(HeadError::TooLarge)) => {
            return failed("sent an oversized CONNECT reply".into())
        }
    }
    let Some(block) = head.final_block() else {
        return failed("sent no final reply to CONNECT".into());
    };
    let code = block.status.code;
    if (200..300).contains(&code) {
        return Ok(());
    }
    let reason = String::from_utf8_lossy(head.reason(block)).into_owned();
    let why = match code {
        407 if proxy.auth.is_some() => " (credentials rejected)",
        407 => " (credentials required)",
        _ => "",
    };
    Err(refused(
        format!("proxy {proxy} refused CONNECT {authority}: {code} {reason}{why}")
            .trim_end()
            .to_string(),
    ))
}

fn refused(message: String) -> ProbeError {
    ProbeError::new(ErrorKind::Proxy, message)
}

/// Runs the SOCKS5 greeting, optional RFC 1929 authentication, and CONNECT.
pub async fn socks5_connect<S>(
    stream: &mut S,
    proxy: &Proxy,
    target: &Target,
) -> Result<(), ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = |what: &'static str| move |e: std::io::Error| socks_io(e, what, proxy);
    let greeting: &[u8] = if proxy.auth.is_some() {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    stream.write_all(greeting).await.map_err(io("greeting"))?;
    let mut choice = [0u8; 2];
    stream
        .read_exact(&mut choice)
        .await
        .map_err(io("greeting"))?;
    if choice[0] != 5 {
        return Err(refused(format!(
            "{proxy} is not a SOCKS5 proxy (it answered {:?})",
            String::from_utf8_lossy(&choice)
        )));
    }
    match (choice[1], &proxy.auth) {
        (0, _) => {}
        (2, Some((user, pass))) => {
            let mut auth = vec![1, user.len() as u8];
            auth.extend_from_slice(user.as_bytes());
            auth.push(pass.len() as u8);
            auth.extend_from_slice(pass.as_bytes());
            stream
                .write_all(&auth)
                .await
                .map_err(io("authentication"))?;
            let mut status = [0u8; 2];
            stream
                .read_exact(&mut status)
                .await
                .map_err(io("authentication"))?;
            if status[1] != 0 {
                return Err(refused(format!(
                    "SOCKS5 proxy {proxy} rejected the user name and password"
                )));
            }
        }
        (0xff, _) | (2, None) => {
            let need = if proxy.auth.is_some() {
                ""
            } else {
                " (it may need a user name and password)"
            };
            return Err(refused(format!(
                "SOCKS5 proxy {proxy} accepts none of our authentication methods{need}"
            )));
        }
        (m, _) => {
            return Err(refused(format!(
                "SOCKS5 proxy {proxy} chose an unknown authentication method {m}"
            )))
        }
    }

    let request = socks_connect_request(&target.host, target.port).map_err(refused)?;
    stream.write_all(&request).await.map_err(io("CONNECT"))?;
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).await.map_err(io("CONNECT"))?;
    if reply[1] != 0 {
        return Err(refused(format!(
            "SOCKS5 proxy {proxy} could not connect to {}:{}: {} (reply {})",
            target.host.authority_form(),
            target.port,
            socks_reply_text(reply[1]),
            reply[1]
        )));
    }
    // The bound address: skip it.
    let skip = match reply[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await.map_err(io("CONNECT"))?;
            usize::from(len[0]) + 2
        }
        t => {
            return Err(refused(format!(
                "SOCKS5 proxy {proxy} answered with an unknown address type {t}"
            )))
        }
    };
    let mut bound = [0u8; 18];
    let mut rest = vec![0u8; skip];
    let buf: &mut [u8] = if skip <= bound.len() {
        &mut bound[..skip]
    } else {
        &mut rest
    };
    stream.read_exact(buf).await.map_err(io("CONNECT"))?;
    Ok(())
}

fn socks_io(e: std::io::Error, what: &str, proxy: &Proxy) -> ProbeError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        refused(format!(
            "SOCKS5 proxy {proxy} closed the connection during {what}"
        ))
    } else {
        ProbeError::from_io(
            &e,
            &format!("exchanging the SOCKS5 {what} with"),
            format!("proxy {proxy}"),
        )
    }
}
