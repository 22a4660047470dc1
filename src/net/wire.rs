//! Reading a response head off any futures-io stream (TCP, TLS, a proxy tunnel).
//!
//! The one read loop shared by probes and CONNECT replies; runtime-agnostic.

use std::io;

use futures_lite::{AsyncRead, AsyncReadExt};

use crate::proto::http::{HeadError, HeadParser, Progress};

/// Why reading a head stopped short.
#[derive(Debug)]
pub enum HeadEnd {
    /// The peer closed the connection first.
    Eof,
    Io(io::Error),
    Head(HeadError),
}

/// Reads into `head` until its final blank line, the cap, an error or end of stream.
/// `after_read` sees the parser after every read that brought bytes.
pub async fn read_head<S, F>(
    stream: &mut S,
    head: &mut HeadParser,
    mut after_read: F,
) -> Result<(), HeadEnd>
where
    S: AsyncRead + Unpin,
    F: FnMut(&HeadParser),
{
    loop {
        let buf = head.read_buf();
        if buf.is_empty() {
            return Err(HeadEnd::Head(HeadError::TooLarge));
        }
        let n = match stream.read(buf).await {
            Ok(n) => n,
            Err(e) => {
                head.commit(0).ok();
                return Err(HeadEnd::Io(e));
            }
        };
        if n == 0 {
            head.commit(0).ok();
            return Err(match head.at_eof() {
                Some(e) => HeadEnd::Head(e),
                None => HeadEnd::Eof,
            });
        }
        let progress = head.commit(n);
        after_read(head);
        match progress {
            Ok(Progress::Partial) => continue,
            Ok(Progress::Complete) => return Ok(()),
            Err(e) => return Err(HeadEnd::Head(e)),
        }
    }
}
