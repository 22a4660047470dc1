//! Probe error kinds: the contract's stable names, and the message that goes with each.
//!
//! A failed probe is a value (`ProbeError`), never a panic or an early exit.

use std::fmt;
use std::io;

/// Why a probe is not ok. `name()` is the stable identifier scripts match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The input token is not a target.
    InvalidTarget,
    /// Name resolution failed or gave no address.
    Dns,
    /// Connection refused.
    Refused,
    /// Network or host unreachable.
    Unreachable,
    /// No TCP connection within `--connect-timeout`.
    ConnectTimeout,
    /// `--timeout` expired after connecting.
    Timeout,
    /// The peer reset the connection.
    Reset,
    /// The peer closed without sending a byte.
    Empty,
    /// The peer closed inside the header block.
    Incomplete,
    /// The first line is not an HTTP status line.
    NotHttp,
    /// The header block passed `--max-header-bytes`.
    HeadersTooLarge,
    /// The status is outside `--expect-status`.
    StatusMismatch,
    /// The run was interrupted before this probe finished.
    Cancelled,
    /// TLS handshake or certificate failure.
    Tls,
    /// The proxy refused or failed the tunnel.
    Proxy,
    /// `-L` met more than `--max-redirs` redirects.
    TooManyRedirects,
    /// A response header fails an `--expect-header`.
    HeaderMismatch,
    /// The certificate expires within `--expect-cert-days` days.
    CertExpiring,
    /// Any other I/O error.
    Io,
    /// The peer broke HTTP/2's or HTTP/3's (QUIC's) rules, or reset or refused the
    /// stream.
    Protocol,
}

impl ErrorKind {
    /// Every kind, in the contract's order (used for summaries and tests).
    pub const ALL: [ErrorKind; 20] = [
        ErrorKind::InvalidTarget,
        ErrorKind::Dns,
        ErrorKind::Refused,
        ErrorKind::Unreachable,
        ErrorKind::ConnectTimeout,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Empty,
        ErrorKind::Incomplete,
        ErrorKind::NotHttp,
        ErrorKind::HeadersTooLarge,
        ErrorKind::StatusMismatch,
        ErrorKind::Cancelled,
        ErrorKind::Tls,
        ErrorKind::Proxy,
        ErrorKind::TooManyRedirects,
        ErrorKind::HeaderMismatch,
        ErrorKind::CertExpiring,
        ErrorKind::Io,
        ErrorKind::Protocol,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidTarget => "invalid_target",
            ErrorKind::Dns => "dns",
            ErrorKind::Refused => "refused",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Empty => "empty",
            ErrorKind::Incomplete => "incomplete",
            ErrorKind::NotHttp => "not_http",
            ErrorKind::HeadersTooLarge => "headers_too_large",
            ErrorKind::StatusMismatch => "status_mismatch",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Tls => "tls",
            ErrorKind::Proxy => "proxy",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::HeaderMismatch => "header_mismatch",
            ErrorKind::CertExpiring => "cert_expiring",
            ErrorKind::Io => "io",
            ErrorKind::Protocol => "protocol",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A probe failure: its kind and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    pub kind: ErrorKind,
    pub message: String,
    /// The failure is an answer, not an accident (the name does not exist, or has no
    /// address): trying again cannot change it, so `--retry` does not.
    pub definite: bool,
}

impl ProbeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProbeError {
            kind,
            message: message.into(),
            definite: false,
        }
    }

    /// The same failure, marked as an answer that another try would not change.
    pub fn definite(self) -> Self {
        ProbeError {
            definite: true,
            ..self
        }
    }

    /// Classifies an I/O error met while talking to `addr`. `what` says which step, as
    /// a phrase ending in a preposition: "reading the response from".
    pub fn from_io(err: &io::Error, what: &str, addr: impl fmt::Display) -> Self {
        let kind = kind_of_io(err);
        let text = os_text(err);
        let message = match kind {
            ErrorKind::Refused => format!("connection refused by {addr}"),
            // `what` ends with a preposition ("reading the response from").
            ErrorKind::Reset => format!("connection reset by {addr} while {what} it"),
            ErrorKind::Unreachable => format!("{addr} is unreachable: {text}"),
            _ => format!("{what} {addr}: {text}"),
        };
        ProbeError::new(kind, message)
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Maps an OS error onto the contract's kinds; anything unnamed is `io`.
pub fn kind_of_io(err: &io::Error) -> ErrorKind {
    use io::ErrorKind as K;
    match err.kind() {
        K::ConnectionRefused => ErrorKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
        K::NetworkUnreachable | K::HostUnreachable => ErrorKind::Unreachable,
        K::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Io,
    }
}

/// The OS's own words for an error, without Rust's "(os error N)" suffix.
pub fn os_text(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_contracts() {
        let names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            [
                "invalid_target",
                "dns",
                "refused",
                "unreachable",
                "connect_timeout",
                "timeout",
                "reset",
                "empty",
                "incomplete",
                "not_http",
                "headers_too_large",
                "status_mismatch",
                "cancelled",
                "tls",
                "proxy",
                "too_many_redirects",
                "header_mismatch",
                "cert_expiring",
                "io",
                "protocol"
            ]
        );
    }

    #[test]
    fn io_errors_map_to_kinds() {
        let cases = [
            (io::ErrorKind::ConnectionRefused, ErrorKind::Refused),
            (io::ErrorKind::ConnectionReset, ErrorKind::Reset),
            (io::ErrorKind::BrokenPipe, ErrorKind::Reset),
            (io::ErrorKind::NetworkUnreachable, ErrorKind::Unreachable),
            (io::ErrorKind::HostUnreachable, ErrorKind::Unreachable),
            (io::ErrorKind::PermissionDenied, ErrorKind::Io),
        ];
        for (io_kind, kind) in cases {
            assert_eq!(kind_of_io(&io::Error::from(io_kind)), kind, "{io_kind:?}");
        }
    }

    #[test]
    fn os_text_drops_the_errno_suffix() {
        let err = io::Error::from_raw_os_error(111);
        assert_eq!(os_text(&err), "Connection refused");
    }

    /// Issue 11: "connection reset by 127.0.0.1:9020 while reading the response from".
    #[test]
    fn reset_messages_are_whole_sentences() {
        let err = io::Error::from(io::ErrorKind::ConnectionReset);
        for (what, want) in [
            (
                "reading the response from",
                "connection reset by 127.0.0.1:9 while reading the response from it",
            ),
            (
                "doing the TLS handshake with",
                "connection reset by 127.0.0.1:9 while doing the TLS handshake with it",
            ),
        ] {
            assert_eq!(ProbeError::from_io(&err, what, "127.0.0.1:9").message, want);
        }
    }

    #[test]
    fn unreachable_message_names_the_address() {
        let err = io::Error::from_raw_os_error(101); // ENETUNREACH
        let e = ProbeError::from_io(&err, "connecting to", "127.0.0.1:1");
        assert_eq!(e.kind, ErrorKind::Unreachable);
        assert_eq!(
            e.message,
            "127.0.0.1:1 is unreachable: Network is unreachable"
        );
    }
}
