//! The progress line on a real terminal (a pty read through a vt100 screen), in a log
//! file, and what Ctrl-C leaves on the screen.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::*;

/// A pty of `cols` columns: (master, slave).
fn pty(cols: u16) -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 60,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors into the given ints; null name and termios.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    // SAFETY: both descriptors were just opened by openpty and are owned here alone.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Everything written to the terminal, as it arrives.
struct Screen {
    bytes: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
    cols: u16,
}

impl Screen {
    fn watch(master: &OwnedFd, cols: u16) -> Screen {
        let mut reader = std::fs::File::from(master.try_clone().expect("dup master"));
        let (tx, bytes) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every slave descriptor is closed.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Screen {
            bytes,
            seen: Vec::new(),
            cols,
        }
    }

    /// Waits until `needle` has been written `times` times.
    fn wait_for(&mut self, needle: &str, times: usize) {
        let deadline = Instant::now() + WAIT;
        while count(&self.seen, needle.as_bytes()) < times {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.bytes.recv_timeout(left) {
                Ok(b) => self.seen.extend(b),
                Err(_) => panic!(
                    "{needle:?} not written {times} times: {:?}",
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }

    /// The screen's lines once the writer is gone.
    fn rows(mut self) -> Vec<String> {
        while let Ok(b) = self.bytes.recv_timeout(WAIT) {
            self.seen.extend(b);
        }
        let nonzero = |n| std::num::NonZeroU16::new(n).expect("a screen has a size");
        let mut parser = vt100::Parser::new(nonzero(1000), nonzero(self.cols), 0);
        parser.process(&self.seen);
        // Rows the terminal wrapped are joined back into the line that was written.
        let screen = parser.screen();
        let mut lines: Vec<String> = Vec::new();
        let mut continued = false;
        for (i, row) in screen.rows(0, self.cols).enumerate() {
            match lines.last_mut() {
                Some(last) if continued => last.push_str(&row),
                _ => lines.push(row),
            }
            continued = screen.row_wrapped(i as u16);
        }
        lines
            .into_iter()
            .map(|r| r.trim_end().to_string())
            .filter(|r| !r.is_empty())
            .collect()
    }
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// headprobe with stdout and stderr on the pty's slave side.
fn on_terminal(slave: &OwnedFd, args: &[String]) -> Command {
    let mut cmd = headprobe().args(args).command();
    cmd.env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    cmd
}

fn held_targets(server: &Server, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("http://{}/{i}", server.target()))
        .collect()
}

/// Results and the progress line on one terminal: each result line starts its own row,
/// in a wide and in a narrow terminal, and no stale progress text is left behind.
#[test]
fn results_never_run_into_the_progress_line() {
    for cols in [200, 24] {
        let server = Server::start(Behaviour::Hold(ok_response()));
        let (master, slave) = pty(cols);
        let mut screen = Screen::watch(&master, cols);
        let mut args = vec!["--progress".to_string(), "-c".into(), "8".into()];
        args.extend(held_targets(&server, 8));
        let mut child = on_terminal(&slave, &args).spawn().expect("spawn headprobe");
        drop(slave);
        server.requests(8);
        // Some redraws first, then results arrive one by one under the line.
        screen.wait_for("done", 3);
        for _ in 0..8 {
            server.release(1);
            assert!(server.next_closed_within(WAIT));
        }
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(0));
        let rows = screen.rows();
        let results: Vec<&String> = rows.iter().filter(|r| r.contains("header >")).collect();
        assert_eq!(results.len(), 8 * 3, "{cols} columns: {rows:#?}");
        for row in &results {
            assert!(
                row.starts_with(&format!("http://{}/", server.target())),
                "{cols} columns: a result shares its row: {row:?}\n{rows:#?}"
            );
        }
        assert!(
            !rows.iter().any(|r| r.contains("done")),
            "{cols} columns: stale progress text: {rows:#?}"
        );
        assert!(rows.iter().any(|r| r.starts_with("probed 8 ")), "{rows:#?}");
    }
}

/// In a log file the progress line is plain text: no carriage returns, no escapes.
#[test]
fn progress_into_a_file_has_no_escape_sequences() {
    let server = Server::start(Behaviour::Script(vec![
        Step::Sleep(Duration::from_millis(700)),
        Step::Write(ok_response()),
    ]));
    let out = headprobe().args(["--progress", &server.target()]).run();
    out.expect_code(0);
    let err = out.err();
    assert!(!err.contains('\r') && !err.contains('\x1b'), "{err:?}");
    assert!(err.starts_with("probed 1 "), "{err:?}");
}

/// Ctrl-C typed on the terminal: the echoed ^C keeps its own line.
#[test]
fn records_flushed_after_ctrl_c_start_on_a_fresh_line() {
    let server = Server::start(Behaviour::Hold(ok_response()));
    let (master, slave) = pty(120);
    let mut screen = Screen::watch(&master, 120);
    let mut cmd = on_terminal(&slave, &held_targets(&server, 3));
    // SAFETY: setsid and ioctl are async-signal-safe; this makes the pty the child's
    // controlling terminal so that ^C typed on it sends SIGINT, as in a shell.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(1, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn headprobe");
    drop(slave);
    server.requests(3);
    let mut typing = std::fs::File::from(master.try_clone().unwrap());
    std::io::Write::write_all(&mut typing, b"\x03").unwrap();
    screen.wait_for("^C", 1);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    let rows = screen.rows();
    assert!(rows.iter().any(|r| r == "^C"), "{rows:#?}");
    let cancelled: Vec<&String> = rows.iter().filter(|r| r.contains("cancelled")).collect();
    assert_eq!(cancelled.len(), 3, "{rows:#?}");
    for row in cancelled {
        assert!(row.starts_with("http://"), "{row:?}");
    }
    let _ = master.as_raw_fd();
}

/// With `-f FILE` from a regular file, the progress line shows the total and an ETA,
/// also when the file is shorter than `-c` (it was `8 done, ...` with no total).
#[test]
fn progress_over_a_regular_file_shows_its_total() {
    let server = Server::start(Behaviour::Hold(ok_response()));
    let list: String = held_targets(&server, 8)
        .iter()
        .map(|t| format!("{t}\n# a comment\n\n"))
        .collect();
    let file = temp_file("progress-total.txt", list.as_bytes());
    let (master, slave) = pty(200);
    let mut screen = Screen::watch(&master, 200);
    let args = vec![
        "--progress".to_string(),
        "--format".into(),
        "status".into(),
        "-f".into(),
        file.to_string_lossy().into_owned(),
    ];
    let mut child = on_terminal(&slave, &args).spawn().expect("spawn headprobe");
    drop(slave);
    server.requests(8);
    server.release(3);
    screen.wait_for("3/8 done", 1);
    server.release_all();
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}
