//! `--http3`: QUIC raced with TCP, as curl does. QUIC starts at once; TCP (and TLS,
//! and HTTP/1 or HTTP/2 as the other options say) starts `HEAD_START` later unless the
//! QUIC handshake has finished by then, or at once if QUIC has failed. The first
//! exchange to bring back a head is the probe's; the other is dropped (its connection
//! closed). A target with no QUIC listener so costs at most the head start.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use async_io::Timer;

use crate::net::connect::open;
use crate::net::conversation::converse;
use crate::net::hop::{Gathered, Visit};
use crate::proto::request::RequestTemplate;
use crate::report::error::ProbeError;
use crate::report::record::Streamed;

/// How long QUIC has before TCP starts too: curl's default (`--happy-eyeballs-timeout-ms`).
pub(crate) const HEAD_START: Duration = Duration::from_millis(200);

/// TCP's side, once started.
type Attempt<'a> = Pin<Box<dyn Future<Output = Result<(), ProbeError>> + 'a>>;

/// Which side of the race a result came from.
enum Won {
    Quic,
    Tcp,
}

/// Races QUIC against TCP for one hop; `got` ends up as the winner gathered it.
pub(crate) async fn race(
    visit: Visit<'_>,
    template: &RequestTemplate,
    addrs: &[std::net::SocketAddr],
    got: &mut Gathered,
) -> Result<(), ProbeError> {
    // Neither side streams lines while racing: only the winner's are printed, at the end.
    let quiet = Visit {
        lines: None,
        ..visit
    };
    let fresh = |got: &Gathered| Gathered {
        resolved: got.resolved.clone(),
        timing: got.timing.clone(),
        ..Gathered::default()
    };
    let (mut by_quic, mut by_tcp) = (fresh(got), fresh(got));
    let answered = AtomicBool::new(false);
    let mut quic = Box::pin(super::exchange(
        quiet,
        template,
        addrs,
        &mut by_quic,
        Some(&answered),
    ));
    let request = template.render(visit.target);
    let mut tcp: Option<Attempt<'_>> = None;
    let mut tcp_got = Some(&mut by_tcp);
    let mut head_start = Timer::after(HEAD_START);
    let (mut quic_result, mut tcp_result) = (None, None);
    let (won, result) = std::future::poll_fn(|cx| {
        if quic_result.is_none() {
            if let Poll::Ready(r) = quic.as_mut().poll(cx) {
                if r.is_ok() {
                    return Poll::Ready((Won::Quic, r));
                }
                quic_result = Some(r);
            }
        }
        if tcp.is_none() && !answered.load(Ordering::Relaxed) {
            let due = quic_result.is_some() || Pin::new(&mut head_start).poll(cx).is_ready();
            if let Some(tcp_got) = tcp_got.take_if(|_| due) {
                let request = &request;
                tcp = Some(Box::pin(async move {
                    let stream =
                        open(addrs, quiet.cfg.source.as_ref(), quiet.clock, tcp_got).await?;
                    converse(quiet, template, request, stream, tcp_got).await
                }));
            }
        }
        if let (Some(t), None) = (&mut tcp, &tcp_result) {
            if let Poll::Ready(r) = t.as_mut().poll(cx) {
                if r.is_ok() {
                    return Poll::Ready((Won::Tcp, r));
                }
                tcp_result = Some(r);
            }
        }
        match (&quic_result, &tcp_result) {
            // QUIC answered, then failed: TCP never started; QUIC's error is the answer.
            (Some(_), None) if tcp.is_none() => {
                Poll::Ready((Won::Quic, quic_result.take().expect("checked")))
            }
            (Some(_), Some(_)) => {
                // Both failed: TCP's error, the one an https probe would have, with
                // what QUIC met.
                let quic_error = quic_result.take().expect("checked").err();
                let mut e = tcp_result.take().expect("checked").expect_err("failed");
                if let Some(q) = quic_error {
                    e.message
                        .push_str(&format!(" (over HTTP/3: {})", q.message));
                }
                Poll::Ready((Won::Tcp, Err(e)))
            }
            _ => Poll::Pending,
        }
    })
    .await;
    drop(quic);
    drop(tcp);
    *got = match won {
        Won::Quic => by_quic,
        Won::Tcp => by_tcp,
    };
    if let Some(sink) = visit.lines {
        if let Some(tls) = &got.tls {
            sink(Streamed::Tls(tls.summary()));
        }
        if let Some(head) = &got.head {
            let lines: Vec<Vec<u8>> = head.lines().map(<[u8]>::to_vec).collect();
            if !lines.is_empty() {
                sink(Streamed::Lines(lines));
            }
            got.streamed = head.line_count();
        }
    }
    result
}
