//! Reading input one line at a time with a cap on what is kept: the one line reader of
//! target lists and `--resume` files.

use std::io::{self, BufRead};

/// How a line read by `read_line` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineEnd {
    /// The line's whole length, without its LF and a CR before it.
    pub len: usize,
    /// False when the input ended without one.
    pub newline: bool,
}

/// Reads one line (without its LF) into `line`, keeping at most `cap` bytes and skipping
/// the rest unstored. `None` at end of input.
pub fn read_line<R: BufRead + ?Sized>(
    r: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<LineEnd>> {
    line.clear();
    let mut len = 0usize;
    let mut last = 0u8;
    loop {
        let buf = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((len > 0).then(|| LineEnd {
                len: len - usize::from(last == b'\r'),
                newline: false,
            }));
        }
        let (chunk, used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = cap.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        len += chunk.len();
        if let Some(&b) = chunk.last() {
            last = b;
        }
        r.consume(used);
        if done {
            return Ok(Some(LineEnd {
                len: len - usize::from(last == b'\r'),
                newline: true,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn long_lines_are_capped_and_measured() {
        let text = format!("{}\nok\r\n{}\r\n\r\nlast", "x".repeat(100), "y".repeat(10));
        // A tiny buffer, so lines cross many fills.
        let mut r = BufReader::with_capacity(3, io::Cursor::new(text.into_bytes()));
        let mut line = Vec::new();
        let end = |len, newline| Some(LineEnd { len, newline });
        assert_eq!(read_line(&mut r, &mut line, 10).unwrap(), end(100, true));
        assert_eq!(line.len(), 10);
        assert_eq!(read_line(&mut r, &mut line, 10).unwrap(), end(2, true));
        assert_eq!(line, b"ok\r");
        // Exactly the cap once the CR is left out.
        assert_eq!(read_line(&mut r, &mut line, 10).unwrap(), end(10, true));
        assert_eq!(read_line(&mut r, &mut line, 10).unwrap(), end(0, true));
        assert_eq!(read_line(&mut r, &mut line, 10).unwrap(), end(4, false));
        assert_eq!(line, b"last");
        assert_eq!(read_line(&mut r, &mut line, 10).unwrap(), None);
    }
}
