//! Where results go, and the locks that keep two runs off one file.
//!
//! `-o FILE`: results are written to a temporary file beside FILE (same directory, so
//! the rename is atomic), flushed to disk and renamed over FILE when the run ends, so a
//! reader (node_exporter's textfile collector, a dashboard, `jq`) sees the old FILE or
//! the new one, never half of one. An interrupted run or a failed write leaves FILE as
//! it was; interrupted JSON results are kept as `FILE.partial` for `--resume`. With
//! `--resume`, the records resumed from go into the new FILE first, so that
//! `-o out.jsonl --resume out.jsonl` completes the file in place.
//!
//! Locks are advisory (`flock`), held until the process ends: `-o FILE` locks a hidden
//! `.FILE.lock` beside it (FILE itself is replaced by each run); a run appending its
//! standard output to its own `--resume FILE` (`>> FILE`) locks FILE. A second run on
//! the same file is a usage error naming the process that holds it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::report::error::os_text;
use crate::run::usage::UsageError;

/// `-o FILE`, open: the temporary file being written and the lock held.
#[derive(Debug)]
pub struct Output {
    path: PathBuf,
    temp: PathBuf,
    file: File,
    _lock: File,
}

/// How the run ended, as far as its output file cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every record was written: FILE is replaced.
    Complete,
    /// Ctrl-C: FILE stays; JSON results are kept as `FILE.partial` when `keep_partial`.
    Interrupted { keep_partial: bool },
    /// A write failed: FILE stays, the temporary file goes.
    WriteFailed,
}

impl Output {
    /// Checks FILE's directory, takes the lock and creates the temporary file: every
    /// problem is a usage error, before anything is probed.
    pub fn open(path: &str) -> Result<Output, UsageError> {
        let cannot = |why: String| UsageError(format!("cannot write -o {path}: {why}"));
        let file_path = PathBuf::from(path);
        let name = match file_path.file_name() {
            Some(name) if !path.ends_with('/') => name.to_string_lossy().into_owned(),
            _ => return Err(cannot("it names a directory, not a file".into())),
        };
        let dir = match file_path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(cannot(format!("{} is not a directory", dir.display()))),
            Err(e) => {
                return Err(cannot(format!(
                    "its directory {}: {}",
                    dir.display(),
                    os_text(&e)
                )))
            }
        }
        let existing = fs::metadata(&file_path).ok();
        if existing.as_ref().is_some_and(|m| m.is_dir()) {
            return Err(cannot("it is a directory".into()));
        }
        let lock_path = dir.join(format!(".{name}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| cannot(format!("{}: {}", lock_path.display(), os_text(&e))))?;
        lock_exclusive(&lock, &format!("-o {path}"))?;
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| cannot(format!("{}: {}", temp.display(), os_text(&e))))?;
        if let Some(m) = existing {
            // The new FILE keeps the old one's permissions.
            let _ = fs::set_permissions(&temp, m.permissions());
        }
        Ok(Output {
            path: file_path,
            temp,
            file,
            _lock: lock,
        })
    }

    /// FILE as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle on the temporary file, for the writer thread.
    pub fn writer(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// Ends the output as `ending` says. `Ok` carries a note for stderr, if any; `Err`
    /// a problem (the results could not all be written: exit status 3).
    pub fn finish(self, ending: Ending) -> Result<Option<String>, String> {
        let shown = self.path.display().to_string();
        match ending {
            Ending::Complete => {
                let done = self
                    .file
                    .sync_all()
                    .and_then(|()| fs::rename(&self.temp, &self.path));
                match done {
                    Ok(()) => {
                        // The rename itself to disk: a crash now keeps the new FILE.
                        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
                        {
                            let _ = File::open(dir).and_then(|d| d.sync_all());
                        }
                        Ok(None)
                    }
                    Err(e) => {
                        let _ = fs::remove_file(&self.temp);
                        Err(format!(
                            "writing the results to {shown}: {}; {shown} was left as it was",
                            os_text(&e)
                        ))
                    }
                }
            }
            Ending::Interrupted { keep_partial: true } => {
                let partial = PathBuf::from(format!("{shown}.partial"));
                let kept = self
                    .file
                    .sync_all()
                    .and_then(|()| fs::rename(&self.temp, &partial));
                match kept {
                    Ok(()) => Ok(Some(format!(
                        "interrupted: {shown} was left as it was; the results so far are in \
                         {} (resume with --resume {} -o {shown})",
                        partial.display(),
                        partial.display()
                    ))),
                    Err(e) => {
                        let _ = fs::remove_file(&self.temp);
                        Err(format!(
                            "interrupted, and the results so far could not be kept in {}: {}",
                            partial.display(),
                            os_text(&e)
                        ))
                    }
                }
            }
            Ending::Interrupted {
                keep_partial: false,
            } => {
                let _ = fs::remove_file(&self.temp);
                Ok(Some(format!("interrupted: {shown} was left as it was")))
            }
            Ending::WriteFailed => {
                let _ = fs::remove_file(&self.temp);
                Ok(Some(format!("{shown} was left as it was")))
            }
        }
    }
}

/// Takes an exclusive advisory lock on `file` without waiting; `what` names it
/// (`-o FILE`, `--resume FILE`) in the usage error when another process holds it.
pub fn lock_exclusive(file: &File, what: &str) -> Result<(), UsageError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => {
            let holder = file
                .metadata()
                .ok()
                .and_then(|m| lock_holder(m.dev(), m.ino()))
                .map(|pid| format!(" (process {pid})"))
                .unwrap_or_default();
            Err(UsageError(format!(
                "{what}: another headprobe run{holder} is writing it; wait for it to end, \
                 or give another file"
            )))
        }
        Err(fs::TryLockError::Error(e)) => Err(UsageError(format!(
            "{what}: cannot lock it: {}",
            os_text(&e)
        ))),
    }
}

/// The process holding a lock on the file (`dev`, `ino`), from /proc/locks
/// (`1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF`).
fn lock_holder(dev: u64, ino: u64) -> Option<u32> {
    let (major, minor) = (libc_major(dev), libc_minor(dev));
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    let locks = fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A blocked waiter's line has "->" after the number.
        let fields = if fields.get(1) == Some(&"->") {
            &fields[1..]
        } else {
            &fields[..]
        };
        let id = fields.get(5)?;
        let same = id.eq_ignore_ascii_case(&want) || same_id(id, major, minor, ino);
        if same {
            fields.get(4)?.parse().ok()
        } else {
            None
        }
    })
}

/// `MAJ:MIN:INO` with the numbers in any width.
fn same_id(id: &str, major: u64, minor: u64, ino: u64) -> bool {
    let mut parts = id.split(':');
    let (Some(a), Some(b), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    u64::from_str_radix(a, 16) == Ok(major)
        && u64::from_str_radix(b, 16) == Ok(minor)
        && c.parse() == Ok(ino)
}

/// Linux's encoding of a device number (glibc's `gnu_dev_major` / `gnu_dev_minor`).
fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)
}

fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)
}

/// When standard output is appended to `--resume FILE` itself (`>> FILE`), locks FILE,
/// so that an overlapping run (cron) on it stops at once instead of probing everything
/// again. Returns the lock to hold for the run.
pub fn lock_resume_if_appending(path: &str) -> Result<Option<File>, UsageError> {
    let Ok(file) = File::open(path) else {
        // Resume::load reports an unreadable FILE.
        return Ok(None);
    };
    let (Ok(ours), Ok(stdout)) = (file.metadata(), stdout_metadata()) else {
        return Ok(None);
    };
    if ours.dev() != stdout.dev() || ours.ino() != stdout.ino() {
        return Ok(None);
    }
    lock_exclusive(&file, &format!("--resume {path}"))?;
    Ok(Some(file))
}

/// Standard output's file, as `fstat(1)` sees it.
fn stdout_metadata() -> io::Result<fs::Metadata> {
    fs::metadata("/proc/self/fd/1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_split_as_glibc_does() {
        // makedev(8, 1) and makedev(259, 65536).
        assert_eq!((libc_major(0x801), libc_minor(0x801)), (8, 1));
        let dev = 0x1001_0300;
        assert_eq!((libc_major(dev), libc_minor(dev)), (259, 65536));
    }

    #[test]
    fn a_lock_id_matches_in_any_width() {
        assert!(same_id("fd:01:1234", 0xfd, 1, 1234));
        assert!(same_id("00:2a:77", 0, 0x2a, 77));
        assert!(!same_id("fd:01:1235", 0xfd, 1, 1234));
        assert!(!same_id("junk", 0, 0, 0));
    }
}
