//! Signals: SIGINT, SIGTERM and SIGHUP end a run the same way (every target read gets its
//! record, output flushed, `-o`'s files tidied), each with its own exit status; signals
//! that come together count as one; a second one a second or more later ends the
//! process at once, still writing what is already formatted.

use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::*;

/// Sends `sig` to our own child `pid`.
fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({sig}) failed");
}

fn scratch(name: &str) -> PathBuf {
    let dir = temp_file(&format!("{name}.marker"), b"")
        .parent()
        .unwrap()
        .join(format!("sig-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// GNU `timeout -s INT` signals the child and then its process group: two SIGINTs
/// microseconds apart. They are one interrupt: every record is written, with
/// `--ordered` and without. The pair comes while standard output is a full pipe (the
/// records cannot all be out yet), so that a second SIGINT taken as "exit now" loses
/// records every time, not only when the exit wins a race with the printer.
#[test]
fn a_pair_of_sigints_loses_no_record() {
    for ordered in [false, true] {
        let silent = Server::start(Behaviour::Silent);
        // Stall: a connection ends when the client closes it, once it has its answer.
        let fast = Server::start(Behaviour::Stall(ok_response()));
        // Long paths make long lines: twenty records are many times the pipe.
        let long = "p".repeat(2000);
        let mut targets: Vec<String> = (0..10)
            .map(|i| format!("http://{}/fast{i}/{long}", fast.target()))
            .collect();
        targets.extend((0..10).map(|i| format!("http://{}/silent{i}/{long}", silent.target())));
        let mut cmd = headprobe()
            .args(["--format", "status", "-t", "20s"])
            .args(ordered.then_some("--ordered"))
            .args(&targets)
            .command();
        let (read, write) = pipe();
        set_pipe_capacity(&read, 4096);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let pid = child.id() as i32;
        silent.requests(10);
        fast.requests(10);
        for _ in 0..10 {
            assert!(fast.next_closed_within(WAIT));
        }
        let started = Instant::now();
        while !writer_blocked_on_a_pipe(pid) {
            assert!(
                started.elapsed() < WAIT,
                "the writer never blocked on the pipe"
            );
            thread::sleep(Duration::from_millis(5));
        }
        // The second once the first is delivered: two sent at once may be merged by
        // the kernel into one, as a signal already pending is not queued again.
        signal(pid, libc::SIGINT);
        wait_delivered(pid, libc::SIGINT);
        signal(pid, libc::SIGINT);
        let text = read_all_within(read, WATCHDOG).expect("headprobe did not end");
        let status = child.wait().unwrap();
        let text = String::from_utf8_lossy(&text);
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(status.code(), Some(130), "ordered: {ordered}");
        assert_eq!(rows.len(), 20, "ordered: {ordered}: {} records", rows.len());
        let cancelled: Vec<&Vec<&str>> = rows.iter().filter(|r| r[1] == "cancelled").collect();
        assert_eq!(cancelled.len(), 10, "ordered: {ordered}");
        assert!(cancelled.iter().all(|r| r[0].contains("/silent")));
        if ordered {
            let order: Vec<&str> = rows.iter().map(|r| r[0]).collect();
            assert_eq!(order, targets, "not in input order");
        }
    }
}

/// Waits until `sig`, sent to process `pid`, is no longer pending (its handler ran).
fn wait_delivered(pid: i32, sig: libc::c_int) {
    let started = Instant::now();
    loop {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let pending = status
            .lines()
            .find_map(|l| l.strip_prefix("ShdPnd:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok());
        match pending {
            Some(mask) if mask & (1 << (sig - 1)) != 0 => {}
            _ => return,
        }
        assert!(started.elapsed() < WAIT, "signal {sig} was never delivered");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Reads `pipe` to its end on a thread; `None` if that takes longer than `limit`.
fn read_all_within(pipe: fs::File, limit: Duration) -> Option<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut pipe = pipe;
        let mut text = Vec::new();
        let _ = pipe.read_to_end(&mut text);
        let _ = tx.send(text);
    });
    rx.recv_timeout(limit).ok()
}

fn set_pipe_capacity(pipe: &fs::File, bytes: libc::c_int) {
    // SAFETY: fcntl(F_SETPIPE_SZ) on a pipe we own.
    let rc = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) };
    assert!(rc > 0, "F_SETPIPE_SZ");
}

/// SIGTERM (systemd, Kubernetes) and SIGHUP end a run as SIGINT does, with 143 and 129:
/// records flushed, `-o`'s temporary file removed (JSON kept as FILE.partial), no
/// temporary or lock file left.
#[test]
fn sigterm_and_sighup_end_the_run_as_sigint_does() {
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        // To standard output.
        let silent = Server::start(Behaviour::Silent);
        let fast = Server::start(Behaviour::Respond(ok_response()));
        let mut run = headprobe()
            .args(["--format", "status", "-t", "20s"])
            .args([fast.target(), silent.target(), silent.target()])
            .spawn();
        silent.requests(2);
        let first = run.next_line();
        assert!(first.starts_with(&fast.target()), "{first}");
        signal(run.pid(), sig);
        let out = run.finish();
        out.expect_code(code);
        let rows = out.status_rows();
        assert_eq!(rows.len(), 3, "signal {sig}: {out:?}");
        assert_eq!(rows[1][1], "cancelled", "{out:?}");
        assert_eq!(rows[2][1], "cancelled", "{out:?}");

        // To -o FILE, as JSON.
        let dir = scratch(&format!("term-{sig}"));
        let file = dir.join("out.jsonl");
        fs::write(&file, "old\n").unwrap();
        let run = headprobe()
            .args(["--format", "json", "--ordered", "-t", "20s", "-o"])
            .arg(&file)
            .args([fast.target(), silent.target()])
            .spawn();
        silent.next_request();
        wait_for_a_record_in_a_temporary_file(&dir);
        signal(run.pid(), sig);
        let out = run.finish();
        out.expect_code(code);
        assert_eq!(fs::read_to_string(&file).unwrap(), "old\n");
        let partial = dir.join("out.jsonl.partial");
        let kept = fs::read_to_string(&partial).expect("FILE.partial");
        let records = parse_json_lines(&kept);
        assert_eq!(records.len(), 2, "{kept}");
        assert_eq!(records[0]["ok"], true);
        assert_eq!(records[1]["error"]["kind"], "cancelled");
        assert_eq!(
            names_in(&dir),
            ["out.jsonl", "out.jsonl.partial"],
            "a temporary or lock file was left"
        );
        assert!(
            out.err().contains("the results so far are in"),
            "{}",
            out.err()
        );

        // To -o FILE, as status lines: nothing kept but FILE.
        fs::remove_file(&partial).unwrap();
        let run = headprobe()
            .args(["--format", "status", "-t", "20s", "-o"])
            .arg(&file)
            .args([fast.target(), silent.target()])
            .spawn();
        silent.next_request();
        wait_for_a_record_in_a_temporary_file(&dir);
        signal(run.pid(), sig);
        run.finish().expect_code(code);
        assert_eq!(fs::read_to_string(&file).unwrap(), "old\n");
        assert_eq!(names_in(&dir), ["out.jsonl"], "a file was left");
    }
}

/// Waits until a temporary file in `dir` holds a whole record: the quick target's
/// record is written before the signal (the server having the request does not mean
/// the probe has read the answer).
fn wait_for_a_record_in_a_temporary_file(dir: &Path) {
    let started = Instant::now();
    loop {
        let written = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .any(|p| fs::read_to_string(p).unwrap_or_default().ends_with('\n'));
        if written {
            return;
        }
        assert!(started.elapsed() < WAIT, "no record was written in time");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A second interrupt a second or more after the first ends the process at once, and
/// even then what was already formatted is written: here the first cannot end the run
/// (standard output is a full pipe nobody reads); after the second, headprobe says it
/// is ending, the test starts reading and gets whole lines, more than the pipe held
/// (the old handler exited at once, cutting the output wherever the pipe had filled).
#[test]
fn a_second_interrupt_a_second_later_ends_the_process_writing_what_is_formatted() {
    let headers: Vec<String> = (0..20)
        .map(|i| format!("X-Filler-{i:02}: {}", "f".repeat(40)))
        .collect();
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let server = Server::start(Behaviour::Respond(response("HTTP/1.0 200 OK", &refs)));
    let (read, write) = pipe();
    let mut cmd = headprobe()
        .args(["--format", "text", "-c", "8"])
        .args(vec![server.target(); 2000])
        .command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // The command keeps its copy of the write end: without dropping it no read ends.
    drop(cmd);
    let pid = child.id() as i32;
    let (err_tx, err_lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if err_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The pipe is full: the writer is blocked, and so, soon, is the run.
    let started = Instant::now();
    while !writer_blocked_on_a_pipe(pid) {
        assert!(
            started.elapsed() < WAIT,
            "the writer never blocked on the pipe ({} bytes in it, {:?})",
            bytes_in(&read),
            child.try_wait()
        );
        thread::sleep(Duration::from_millis(5));
    }
    signal(pid, libc::SIGINT);
    // The contract's "a second or more after the first".
    thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first interrupt ended the process with the output blocked"
    );
    let before = bytes_in(&read);
    signal(pid, libc::SIGINT);
    // Read only once headprobe says it is ending: what comes after that was written by
    // the exit that could not wait, not by a run racing it.
    let said = std::iter::from_fn(|| err_lines.recv_timeout(WAIT).ok())
        .find(|line| line.contains("signalled again: ending now"));
    assert!(said.is_some(), "headprobe never said it was ending");
    let text = read_all_within(read, WATCHDOG)
        .expect("the process did not end after the second interrupt");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        text.len() > before,
        "nothing was written after the second interrupt ({} bytes)",
        text.len()
    );
    assert!(text.ends_with(b"\n"), "the output was cut mid-line");
}

/// A pipe, both ends as files.
fn pipe() -> (fs::File, fs::File) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe(2) writes two fresh descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    use std::os::fd::FromRawFd;
    // SAFETY: both descriptors were just made by pipe(2) and are owned here alone.
    unsafe { (fs::File::from_raw_fd(fds[0]), fs::File::from_raw_fd(fds[1])) }
}

/// Whether headprobe's writer thread is asleep in a write to a full pipe, as the
/// kernel tells (`wchan`: `pipe_write`, `anon_pipe_write`).
fn writer_blocked_on_a_pipe(pid: i32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).any(|task| {
        let read = |name: &str| fs::read_to_string(task.path().join(name)).unwrap_or_default();
        // The thread's name cut to 15 bytes: "headprobe-output".
        read("comm").starts_with("headprobe-outpu") && read("wchan").contains("pipe_write")
    })
}

fn bytes_in(pipe: &fs::File) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes an int through the pointer.
    let rc = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD");
    n as usize
}

/// A signal before the run has started (here: opening `-f FIFO` waits for a writer that
/// never comes) ends the process at once, and `-o`'s temporary and lock files go with
/// it (SIGTERM used to leave `.NAME.PID.tmp` and `.NAME.lock` behind).
#[test]
fn a_signal_before_the_run_starts_leaves_no_file_behind() {
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch("early");
    let fifo = dir.join("targets.fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let file = dir.join("out.prom");
    fs::write(&file, "old\n").unwrap();
    let run = headprobe()
        .args(["--format", "prometheus", "-f"])
        .arg(&fifo)
        .arg("-o")
        .arg(&file)
        .spawn();
    let started = Instant::now();
    while !names_in(&dir).iter().any(|n| n.ends_with(".tmp")) {
        assert!(started.elapsed() < WAIT, "no temporary file was made");
        thread::sleep(Duration::from_millis(5));
    }
    signal(run.pid(), libc::SIGTERM);
    let out = run.finish();
    out.expect_code(143);
    assert_eq!(fs::read_to_string(&file).unwrap(), "old\n");
    assert_eq!(names_in(&dir), ["out.prom", "targets.fifo"]);
}
