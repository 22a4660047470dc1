//! The network layer: the only code that touches the runtime (async-std, async-io):
//! sockets, timers, TLS, proxy tunnels, the read loop, and one probe end to end.
//!
//! Its rooms, in the order a probe walks through them: `options` (what the layer above
//! asks for), `probe` (one probe, redirects included), `resolve`, `connect`,
//! `conversation` (TLS, then the protocol: `http1`), `detect` and `tunnel` (proxies),
//! `redirect`; `http3` for https targets over QUIC (`--http3`, `--http3-only`).
//! `hop` is what they share; `wire` and `rt` sit under all of them.

mod connect;
mod conversation;
pub mod detect;
mod hop;
mod http1;
mod http2;
mod http3;
pub mod options;
pub mod probe;
mod redirect;
pub mod resolve;
pub mod rt;
pub mod tls;
pub mod tunnel;
pub mod wire;

pub use hop::LineSink;
pub use options::{ConnectTo, Http2, Http3, ProbeOptions, ProxyCheck, Source};
