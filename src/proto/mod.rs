//! Sans-IO protocol code: bytes and strings in, values or typed errors out. No sockets,
//! no clock, no runtime; driven by unit tests, property tests, benches and fuzzers.

pub mod dns;
pub mod hpack;
pub mod http;
pub mod http2;
pub mod http3;
pub mod httpdate;
pub mod location;
pub mod proxy;
pub mod qpack;
pub mod request;
pub mod target;

use proxy::Proxy;
use target::Target;

/// What a token asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Probe this target (through `--proxy` if set).
    Target(Target),
    /// `--proxy-check`: request the check URL through this proxy.
    Proxy(Proxy),
}
