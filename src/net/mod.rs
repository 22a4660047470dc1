//! The network layer: the only code that touches the runtime (async-std, async-io):
//! sockets, timers, TLS, proxy tunnels, the read loop, and one probe end to end.

pub mod detect;
pub mod probe;
pub mod resolve;
pub mod rt;
pub mod tls;
pub mod tunnel;
pub mod wire;
