//! What a lookup's questions come to: addresses, a definite no, or why there is no
//! answer. The resolver's parts all speak in these.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The answer to one question.
#[derive(Debug, Clone)]
pub(super) enum Answer {
    /// Addresses, with the TTL to keep them for.
    Addrs(Arc<[IpAddr]>, Option<u32>),
    NxDomain(Option<u32>),
    /// The name exists but has no records of this type.
    NoData(Option<u32>),
    Failed(Failure),
}

/// Why a question has no answer.
#[derive(Debug, Clone)]
pub(super) enum Failure {
    Rcode {
        code: u8,
        server: SocketAddr,
    },
    NoAnswer {
        servers: Vec<SocketAddr>,
        tries: u32,
    },
    Malformed {
        server: SocketAddr,
        replies: u32,
    },
    Unreachable {
        server: SocketAddr,
        error: String,
    },
    /// ICMP port unreachable: nothing listens on the server's port.
    PortClosed {
        server: SocketAddr,
    },
    Truncated {
        server: SocketAddr,
        error: String,
    },
    Socket {
        error: String,
    },
    NoSlot,
    NoServer,
    BadName,
}
