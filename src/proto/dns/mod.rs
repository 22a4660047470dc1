//! Sans-IO pieces of name resolution: DNS messages (one question, A and AAAA answers),
//! `/etc/resolv.conf` and `/etc/hosts`, and the search list. No sockets, no clock.

pub mod conf;
pub mod message;
