//! Notices a closed standard output while nothing is being written: `headprobe ... |
//! head -1` with silent targets ends when `head` exits, not when the next record is
//! written (which may be `--timeout` later). The writer thread still notices at its next
//! write wherever this watcher does not run.

use std::sync::Arc;

use super::cancel::Cancel;

/// A running watcher; dropping it stops its thread.
pub struct StdoutWatch {
    /// Held for its `Drop`, which stops the thread.
    #[cfg(unix)]
    _running: unix::Watch,
}

/// Watches standard output when it is a pipe or a socket (never a terminal or a file):
/// once its reader has gone, the run is cancelled as by a closed pipe (quietly, exit 0).
/// `None` where it cannot watch (not a pipe or socket, not a Unix).
pub fn stdout(cancel: &Arc<Cancel>) -> Option<StdoutWatch> {
    #[cfg(unix)]
    {
        unix::start(Arc::clone(cancel)).map(|running| StdoutWatch { _running: running })
    }
    #[cfg(not(unix))]
    {
        let _ = cancel;
        None
    }
}

#[cfg(unix)]
mod unix {
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::thread::JoinHandle;

    use crate::run::cancel::{Cancel, StopReason};

    pub(super) struct Watch {
        /// Written to (or dropped) to wake the thread and end it.
        stop: UnixStream,
        thread: Option<JoinHandle<()>>,
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            let _ = self.stop.shutdown(std::net::Shutdown::Both);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    pub(super) fn start(cancel: Arc<Cancel>) -> Option<Watch> {
        let out: OwnedFd = io::stdout().as_fd().try_clone_to_owned().ok()?;
        let out = File::from(out);
        let kind = out.metadata().ok()?.file_type();
        if !(kind.is_fifo() || kind.is_socket()) {
            return None;
        }
        let (stop, woken) = UnixStream::pair().ok()?;
        let thread = std::thread::Builder::new()
            .name("headprobe-stdout".into())
            .spawn(move || watch(&out, &woken, &cancel))
            .ok()?;
        Some(Watch {
            stop,
            thread: Some(thread),
        })
    }

    /// Waits, asking for no event on `out`: poll(2) reports POLLERR on a pipe whose
    /// reader has gone, and POLLHUP on a socket whose peer has closed, whatever is asked.
    pub(super) fn watch(out: &File, woken: &UnixStream, cancel: &Cancel) {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: out.as_raw_fd(),
                    events: 0,
                    revents: 0,
                },
                libc::pollfd {
                    fd: woken.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfd for the length given, and both
            // descriptors stay open (borrowed from `out` and `woken`) for the call.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if ready < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            if fds[1].revents != 0 {
                return;
            }
            let seen = fds[0].revents;
            if seen & (libc::POLLERR | libc::POLLHUP) != 0 {
                cancel.cancel(StopReason::BrokenPipe);
                return;
            }
            if seen & libc::POLLNVAL != 0 {
                return;
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::fs::File;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    use super::*;
    use crate::run::cancel::StopReason;

    /// Runs the watcher on one end of a socket pair; `end` then closes the other end
    /// (the reader going away) or the watcher's stop socket.
    fn watched(close_reader: bool) -> Option<StopReason> {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let (stop, woken) = UnixStream::pair().unwrap();
        let cancel = Arc::new(Cancel::default());
        let c = Arc::clone(&cancel);
        let out = File::from(OwnedFd::from(ours));
        let thread = std::thread::spawn(move || unix::watch(&out, &woken, &c));
        if close_reader {
            drop(theirs);
            thread.join().unwrap();
            drop(stop);
        } else {
            drop(stop);
            thread.join().unwrap();
            drop(theirs);
        }
        cancel.reason()
    }

    #[test]
    fn a_reader_gone_cancels_the_run_and_a_stopped_watch_does_not() {
        assert_eq!(watched(true), Some(StopReason::BrokenPipe));
        assert_eq!(watched(false), None);
    }
}
