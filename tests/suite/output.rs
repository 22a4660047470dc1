//! Where results go: `-o FILE` replaces a regular FILE whole or not at all and writes
//! through anything else (a device, a FIFO, a symlink's target), exit status 3 when
//! results are lost, and the locks that keep two runs off one file.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::util::*;

fn scratch(name: &str) -> PathBuf {
    let dir = temp_file(&format!("{name}.marker"), b"")
        .parent()
        .unwrap()
        .join(format!("out-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_reader_sees_the_old_file_or_the_new_one_never_half() {
    let dir = scratch("atomic");
    let file = dir.join("results.tsv");
    let old = "old results\n".repeat(50);
    fs::write(&file, &old).unwrap();
    let quick = Server::start(Behaviour::Respond(ok_response()));
    let held = Server::start(Behaviour::Hold(ok_response()));
    // Many quick targets (their records are written as they come) and one held back.
    let mut args: Vec<String> = vec!["--format".into(), "status".into(), "-o".into()];
    args.push(file.to_string_lossy().into_owned());
    args.extend((0..200).map(|_| quick.target()));
    args.push(held.target());
    let run = headprobe().args(&args).spawn();
    held.next_request();
    // Every quick record is written by now or soon; the reader polls FILE meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (file, stop) = (file.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < WATCHDOG {
                if let Ok(text) = fs::read_to_string(&file) {
                    seen.insert(text);
                }
            }
            seen
        })
    };
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        old,
        "FILE changed mid-run"
    );
    held.release_all();
    let out = run.finish();
    stop.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();
    out.expect_code(0);
    assert!(out.stdout.is_empty(), "stdout carries nothing with -o");
    let new = fs::read_to_string(&file).unwrap();
    assert_eq!(new.lines().count(), 201);
    for text in &seen {
        assert!(text == &old || text == &new, "a reader saw a partial file");
    }
    // No temporary or lock file left behind.
    assert_eq!(names_in(&dir), ["results.tsv"]);
}

#[test]
fn ctrl_c_keeps_the_old_file_and_the_json_so_far_as_partial() {
    let dir = scratch("interrupt");
    let file = dir.join("out.jsonl");
    fs::write(&file, "old\n").unwrap();
    let quick = Server::start(Behaviour::Respond(ok_response()));
    let held = Server::start(Behaviour::Hold(ok_response()));
    let run = headprobe()
        .args(["--format", "json", "--ordered", "-o"])
        .arg(&file)
        .args([quick.target(), held.target()])
        .spawn();
    held.next_request();
    quick.next_request();
    // The quick record is written (to the temporary file) before the interrupt: the
    // server having the request does not mean the probe has read the answer.
    let written = std::time::Instant::now();
    loop {
        let temp_lines = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .map(|p| fs::read_to_string(p).unwrap_or_default())
            .any(|text| text.ends_with('\n'));
        if temp_lines {
            break;
        }
        assert!(
            written.elapsed() < std::time::Duration::from_secs(10),
            "the quick record was never written"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    run.interrupt();
    let out = run.finish();
    out.expect_code(130);
    assert_eq!(fs::read_to_string(&file).unwrap(), "old\n");
    let partial = dir.join("out.jsonl.partial");
    let kept = fs::read_to_string(&partial).expect("FILE.partial");
    let records: Vec<serde_json::Value> = kept
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{kept}");
    assert_eq!(records[0]["ok"], true);
    assert_eq!(records[1]["error"]["kind"], "cancelled");
    let err = out.err();
    assert!(
        err.contains(&format!(
            "interrupted: {} was left as it was; the results so far are in {}",
            file.display(),
            partial.display()
        )),
        "{err}"
    );
}

#[test]
fn an_unwritable_directory_is_a_usage_error_before_probing() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let out = headprobe()
        .args(["-o", "/nonexistent/headprobe/out.prom", &server.target()])
        .run();
    out.expect_code(2);
    assert_eq!(
        out.err().lines().next().unwrap(),
        "headprobe: cannot write -o /nonexistent/headprobe/out.prom: its directory \
         /nonexistent/headprobe: No such file or directory"
    );
    assert_eq!(server.accepted(), 0);
}

#[test]
fn resume_into_the_same_output_file_completes_it_in_place() {
    let dir = scratch("resume-o");
    let file = dir.join("out.jsonl");
    let a = Server::start(Behaviour::Respond(ok_response()));
    let b = Server::start(Behaviour::Respond(ok_response()));
    headprobe()
        .args(["--format", "json", "-o"])
        .arg(&file)
        .arg(a.target())
        .run()
        .expect_code(0);
    let out = headprobe()
        .args(["--format", "json", "--resume"])
        .arg(&file)
        .arg("-o")
        .arg(&file)
        .args([a.target(), b.target()])
        .run();
    out.expect_code(0);
    let text = fs::read_to_string(&file).unwrap();
    let indices: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(indices, [0, 1], "{text}");
    assert_eq!(a.accepted(), 1, "the resumed target was probed again");
    assert_eq!(b.accepted(), 1);
}

#[test]
fn a_full_stdout_is_exit_status_3() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut cmd = headprobe().arg(server.target()).command();
    cmd.stdout(full).stderr(Stdio::piped()).stdin(Stdio::null());
    let child = cmd.output().unwrap();
    assert_eq!(child.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&child.stderr)
            .lines()
            .next()
            .unwrap_or(""),
        "headprobe: writing the results to standard output: No space left on device"
    );
}

/// Runs `script` in a private mount namespace (so a tmpfs can be mounted); `None`
/// when this machine cannot (no unshare, not root).
fn in_mount_namespace(script: &str, env: &[(&str, &str)]) -> Option<std::process::Output> {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().ok()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("unshare failed") || err.contains("Operation not permitted") {
        return None;
    }
    Some(out)
}

#[test]
fn an_output_file_system_that_fills_is_exit_status_3_and_keeps_the_old_file() {
    let server = Server::start(Behaviour::Respond(ok_response()));
    let dir = scratch("tmpfs");
    let targets = temp_file(
        "tmpfs-targets.txt",
        (0..400)
            .map(|_| format!("{}\n", server.target()))
            .collect::<String>()
            .as_bytes(),
    );
    let script = r#"mount -t tmpfs -o size=12k tmpfs "$DIR" || exit 97
        printf 'old\n' > "$DIR/out.txt"
        "$HP" -f "$TARGETS" -o "$DIR/out.txt"; echo "rc=$?"
        cat "$DIR/out.txt"; ls -a "$DIR""#;
    let Some(out) = in_mount_namespace(
        script,
        &[
            ("DIR", dir.to_str().unwrap()),
            ("HP", env!("CARGO_BIN_EXE_headprobe")),
            ("TARGETS", targets.to_str().unwrap()),
        ],
    ) else {
        eprintln!("skipped: cannot unshare a mount namespace here (needs root and unshare)");
        return;
    };
    if out.status.code() == Some(97) {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"rc=3"), "{stdout}{stderr}");
    assert_eq!(lines.get(1), Some(&"old"), "{stdout}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        !stdout.contains(".tmp"),
        "a temporary file was left: {stdout}"
    );
}

#[test]
fn a_second_run_on_the_same_output_file_stops_at_once() {
    let dir = scratch("lock-o");
    let file = dir.join("out.prom");
    let held = Server::start(Behaviour::Hold(ok_response()));
    let first = headprobe().arg("-o").arg(&file).arg(held.target()).spawn();
    held.next_request();
    let other = Server::start(Behaviour::Respond(ok_response()));
    let second = headprobe().arg("-o").arg(&file).arg(other.target()).run();
    second.expect_code(2);
    assert_eq!(
        second.err().lines().next().unwrap(),
        format!(
            "headprobe: -o {}: another headprobe run (process {}) is writing it; wait for it \
             to end, or give another file",
            file.display(),
            first.pid()
        )
    );
    assert_eq!(other.accepted(), 0);
    held.release_all();
    first.finish().expect_code(0);
}

#[test]
fn overlapping_runs_appending_to_one_resume_file_do_not_double_it() {
    let dir = scratch("lock-resume");
    let file = dir.join("out.jsonl");
    fs::write(&file, "").unwrap();
    let held = Server::start(Behaviour::Hold(ok_response()));
    let append = |path: &Path| fs::OpenOptions::new().append(true).open(path).unwrap();
    let mut first = headprobe()
        .args(["--format", "json", "--resume"])
        .arg(&file)
        .arg(held.target())
        .command();
    first
        .stdout(append(&file))
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut first = first.spawn().unwrap();
    held.next_request();
    let started = Instant::now();
    let mut second = headprobe()
        .args(["--format", "json", "--resume"])
        .arg(&file)
        .arg(held.target())
        .command();
    second
        .stdout(append(&file))
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let second = second.output().unwrap();
    assert!(started.elapsed() < WAIT);
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(
        err.lines().next().unwrap_or(""),
        format!(
            "headprobe: --resume {}: another headprobe run (process {}) is writing it; wait \
             for it to end, or give another file",
            file.display(),
            first.id()
        )
    );
    held.release_all();
    assert_eq!(first.wait().unwrap().code(), Some(0));
    let mut text = String::new();
    fs::File::open(&file)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(held.accepted(), 1);
}

#[test]
fn only_failed_prints_the_targets_that_are_not_ok_in_every_format() {
    let up = Server::start(Behaviour::Respond(ok_response()));
    let down = refused_addr().to_string();
    for format in ["text", "status", "json"] {
        let out = headprobe()
            .args(["--only-failed", "--format", format, &up.target(), &down])
            .run();
        // The exit status still says a target failed.
        out.expect_code(1);
        let text = out.out();
        assert!(!text.contains(&up.target()), "{format}: {text}");
        assert_eq!(text.lines().count(), 1, "{format}: {text}");
        assert!(text.starts_with(&down) || text.contains(&format!("\"target\":\"{down}\"")));
    }
    // Nothing failed: nothing printed, exit 0.
    let out = headprobe().args(["--only-failed", &up.target()]).run();
    out.expect_code(0);
    assert_eq!(out.out(), "");
}

/// After the output closes (`| head -1`), the summary tells what was probed from what
/// the stop cut short: it said `probed 320 targets ...: 2 ok, 318 failed (cancelled
/// 318)`.
#[test]
fn the_summary_after_a_closed_output_separates_probed_from_cut_short() {
    use std::io::{BufRead, BufReader};
    let quick = Server::start(Behaviour::Respond(ok_response()));
    let held = Server::start(Behaviour::Hold(ok_response()));
    let mut cmd = headprobe()
        .args([
            "--progress",
            "--format",
            "status",
            "-c",
            "4",
            &quick.target(),
        ])
        .args((0..10).map(|i| format!("http://{}/{i}", held.target())))
        .command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with(&quick.target()), "{first}");
    // The reader is gone. On unix the run notices at once (the stdout watcher); elsewhere
    // the next record's write meets the closed pipe: one more record may be probed.
    held.requests(3);
    held.release(1);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let summary = err.lines().last().unwrap_or("");
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    // probed N targets in S.Ds: N ok, 0 failed; the output was closed: I cancelled in
    // flight, R not started
    assert!(summary.starts_with("probed "), "{err}");
    assert!(
        summary.contains(" ok, 0 failed; the output was closed: "),
        "{summary}"
    );
    assert_eq!(numbers.len(), 7, "{summary}");
    let (probed, ok, in_flight, not_started) = (numbers[0], numbers[3], numbers[5], numbers[6]);
    assert!((1..=2).contains(&probed), "{summary}");
    assert_eq!(probed, ok, "{summary}");
    assert!(in_flight >= 2, "in flight: {summary}");
    assert_eq!(probed + in_flight + not_started, 11, "{summary}");
}

/// Issue 32: as root, `-o /dev/null` replaced the machine's /dev/null with a regular
/// file. A device is written in place: it stays the device, nothing is made beside it.
/// (A stand-in made with mknod in a scratch directory, never /dev/null itself.)
#[test]
fn a_device_is_written_in_place_never_replaced() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let dir = scratch("device");
    let null = dir.join("null");
    let made = std::process::Command::new("mknod")
        .args(["-m", "666"])
        .arg(&null)
        .args(["c", "1", "3"])
        .output();
    if !made.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mknod a character device here (needs root)");
        return;
    }
    let server = Server::start(Behaviour::Respond(ok_response()));
    let out = headprobe()
        .args(["--format", "status", "-o"])
        .arg(&null)
        .arg(server.target())
        .run();
    out.expect_code(0);
    let meta = fs::symlink_metadata(&null).unwrap();
    assert!(meta.file_type().is_char_device(), "{meta:?}");
    assert_eq!(meta.rdev(), fs::metadata("/dev/null").unwrap().rdev());
    assert_eq!(
        names_in(&dir),
        ["null"],
        "something was made beside the device"
    );
    assert_eq!(server.accepted(), 1);
}

/// A FIFO's reader gets the records (the FIFO used to be replaced by a file).
#[test]
fn a_fifo_is_written_in_place_and_its_reader_gets_the_records() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    let dir = scratch("fifo");
    let fifo = dir.join("results.fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || tx.send(fs::read_to_string(&fifo).unwrap()));
    }
    let server = Server::start(Behaviour::Respond(ok_response()));
    let t = server.target();
    let out = headprobe()
        .args(["--format", "status", "-o"])
        .arg(&fifo)
        .args([&t, &t, &t])
        .run();
    out.expect_code(0);
    // A FIFO replaced by a file leaves the reader waiting for a writer forever.
    let got = rx
        .recv_timeout(WAIT)
        .expect("the FIFO's reader got nothing");
    assert_eq!(got.lines().count(), 3, "{got:?}");
    assert!(
        got.lines().all(|l| l.starts_with(&format!("{t}\t200\t"))),
        "{got}"
    );
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(names_in(&dir), ["results.fifo"]);
}

/// A symlink (into node_exporter's textfile directory, say) is followed: its target
/// gets the results, the link stays a link, no temporary or lock file is left on
/// either side. A link to a file not made yet makes it.
#[test]
fn a_symlink_is_followed_and_stays_a_link() {
    let links = scratch("links");
    let textfiles = scratch("textfiles");
    let target = textfiles.join("sites.prom");
    fs::write(&target, "old\n").unwrap();
    let link = links.join("sites.prom");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // A relative link to a file not there yet.
    let later = links.join("later.prom");
    let relative = Path::new("..")
        .join(textfiles.file_name().unwrap())
        .join("new.prom");
    std::os::unix::fs::symlink(&relative, &later).unwrap();
    let server = Server::start(Behaviour::Respond(ok_response()));
    for path in [&link, &later] {
        headprobe()
            .args(["--format", "status", "-o"])
            .arg(path)
            .arg(server.target())
            .run()
            .expect_code(0);
    }
    for (path, points_to) in [(&link, target.clone()), (&later, relative)] {
        let meta = fs::symlink_metadata(path).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "{} was replaced",
            path.display()
        );
        assert_eq!(fs::read_link(path).unwrap(), points_to);
    }
    for file in [&target, &textfiles.join("new.prom")] {
        let text = fs::read_to_string(file).unwrap();
        assert!(
            text.starts_with(&format!("{}\t200\t", server.target())),
            "{text}"
        );
    }
    assert_eq!(names_in(&links), ["later.prom", "sites.prom"]);
    assert_eq!(names_in(&textfiles), ["new.prom", "sites.prom"]);
}

/// `-o -` is standard output, not a file named `-`.
#[test]
fn dash_is_standard_output() {
    let dir = scratch("dash");
    let server = Server::start(Behaviour::Respond(ok_response()));
    let out = headprobe()
        .args(["--format", "status", "-o", "-", &server.target()])
        .command()
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("{}\t200\t", server.target())),
        "{text}"
    );
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
}

/// `-f sites.txt -o sites.txt` overwrote the target list. An `-o` or `--resume` that is
/// an input file, however it is spelled (`./x`, a link to it), is a usage error before
/// anything is probed, and the file is left alone.
#[test]
fn an_output_or_resume_naming_an_input_file_is_a_usage_error() {
    let dir = scratch("input");
    let server = Server::start(Behaviour::Respond(ok_response()));
    let list = format!("{}\n", server.target());
    let sites = dir.join("sites.txt");
    fs::write(&sites, &list).unwrap();
    std::os::unix::fs::symlink("sites.txt", dir.join("alias.txt")).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-f", "sites.txt", "-o", "sites.txt"],
            "-o sites.txt is an input file (-f sites.txt)",
        ),
        (
            &["-f", "./sites.txt", "-o", "alias.txt"],
            "-o alias.txt is an input file (-f ./sites.txt)",
        ),
        (
            &[
                "--format",
                "json",
                "-f",
                "sites.txt",
                "--resume",
                "alias.txt",
            ],
            "--resume alias.txt is an input file (-f sites.txt)",
        ),
    ];
    for (args, message) in cases {
        let out = headprobe()
            .args(*args)
            .command()
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("headprobe: {message}")),
            "{args:?}: {err}"
        );
        assert_eq!(fs::read_to_string(&sites).unwrap(), list);
    }
    // Standard input read from the file counts too.
    let out = headprobe()
        .args(["-o", "sites.txt"])
        .command()
        .current_dir(&dir)
        .stdin(fs::File::open(&sites).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(standard input)"));
    assert_eq!(fs::read_to_string(&sites).unwrap(), list);
    assert_eq!(names_in(&dir), ["alias.txt", "sites.txt"]);
    assert_eq!(server.accepted(), 0);
}

/// One lock per file, whichever option names it: a `-o lk.jsonl` run and a `--resume
/// lk.jsonl >> lk.jsonl` run used to both proceed, one's records vanishing.
#[test]
fn output_and_resume_on_one_file_take_the_same_lock() {
    let dir = scratch("lock-shared");
    let file = dir.join("lk.jsonl");
    fs::write(&file, "").unwrap();
    let held = Server::start(Behaviour::Hold(ok_response()));
    let other = Server::start(Behaviour::Respond(ok_response()));
    let appending = |path: &Path| fs::OpenOptions::new().append(true).open(path).unwrap();
    let resume_run = |target: String| {
        let mut cmd = headprobe()
            .args(["--format", "json", "--resume"])
            .arg(&file)
            .arg(target)
            .command();
        cmd.stdout(appending(&file))
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        cmd
    };

    // -o first, then --resume >> on the same file.
    let first = headprobe()
        .args(["--format", "json", "-o"])
        .arg(&file)
        .arg(held.target())
        .spawn();
    held.next_request();
    let second = resume_run(other.target()).output().unwrap();
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.starts_with(&format!(
            "headprobe: --resume {}: another headprobe run (process {}) is writing it",
            file.display(),
            first.pid()
        )),
        "{err}"
    );
    held.release(1);
    first.finish().expect_code(0);

    // --resume >> first, then -o on the same file (emptied: the record of the run
    // above would make the resume run skip its target).
    fs::write(&file, "").unwrap();
    let mut first = resume_run(format!("http://{}/again", held.target()))
        .spawn()
        .unwrap();
    held.next_request();
    let second = headprobe()
        .args(["--format", "json", "-o"])
        .arg(&file)
        .arg(other.target())
        .run();
    second.expect_code(2);
    assert!(
        second.err().starts_with(&format!(
            "headprobe: -o {}: another headprobe run (process {}) is writing it",
            file.display(),
            first.id()
        )),
        "{}",
        second.err()
    );
    held.release(1);
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(other.accepted(), 0);
    assert_eq!(names_in(&dir), ["lk.jsonl"], "a lock file outlived its run");
}

/// A lock file left by a killed run is taken over, and removed at the end.
#[test]
fn a_stale_lock_file_is_taken_over() {
    let dir = scratch("stale");
    let file = dir.join("out.prom");
    fs::write(dir.join(".out.prom.lock"), "").unwrap();
    let server = Server::start(Behaviour::Respond(ok_response()));
    headprobe()
        .args(["--format", "prometheus", "-o"])
        .arg(&file)
        .arg(server.target())
        .run()
        .expect_code(0);
    assert_eq!(names_in(&dir), ["out.prom"]);
}

/// `-q` is about standard output: `-q -o FILE` used to rename an empty file over FILE.
#[test]
fn quiet_does_not_change_what_the_output_file_gets() {
    let dir = scratch("quiet");
    let file = dir.join("out.tsv");
    fs::write(&file, "old\n").unwrap();
    let server = Server::start(Behaviour::Respond(ok_response()));
    let out = headprobe()
        .args(["-q", "--format", "status", "-o"])
        .arg(&file)
        .arg(server.target())
        .run();
    out.expect_code(0);
    assert!(out.stdout.is_empty());
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with(&format!("{}\t200\t", server.target())),
        "{text:?}"
    );
    // With -o -, -q keeps standard output quiet as before.
    let out = headprobe().args(["-q", "-o", "-", &server.target()]).run();
    out.expect_code(0);
    assert!(out.stdout.is_empty());
}
