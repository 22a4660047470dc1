//! Where results go, and the lock that keeps two runs off one file.
//!
//! `-o FILE` writes through whatever FILE is, and replaces only what is ours to replace:
//! - a regular FILE, or none yet: results go to a temporary file beside it (same
//!   directory, so the rename is atomic), flushed to disk and renamed over FILE when the
//!   run ends, so a reader (node_exporter's textfile collector, a dashboard, `jq`) sees
//!   the old FILE or the new one, never half of one. A stopped run or a failed write
//!   leaves FILE as it was; a stopped run's JSON results are kept as `FILE.partial` for
//!   `--resume`. With `--resume`, the records resumed from go into the new FILE first,
//!   so that `-o out.jsonl --resume out.jsonl` completes the file in place.
//! - a symlink is followed: the file it points to is the one replaced (the temporary
//!   file goes beside it, the lock is on it) and the link stays a link.
//! - a character or block device, a FIFO or a socket is written in place, as the
//!   shell's `>` writes it: opened (connected, for a socket), never replaced or removed,
//!   and not locked (two runs may write to `/dev/null`).
//! - `-` is standard output (the command line reads it so; nothing here sees it).
//!
//! An `-o` or `--resume` that is one of the input files is a usage error: the results
//! would overwrite the targets.
//!
//! Locks are advisory (`flock`) on a hidden `.NAME.lock` beside the real file (symlinks
//! followed), one per file whichever option names it: `-o FILE` takes it, and so does a
//! run appending its standard output to its own `--resume FILE` (`>> FILE`). A second
//! run on the same file is a usage error naming the process that holds it. The lock
//! file is removed when the run ends; one left by a killed run is taken over (the
//! kernel released its lock), never a cause of failure.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::report::error::os_text;
use crate::run::options::RunOptions;
use crate::run::signals::Tidy;
use crate::run::usage::UsageError;

/// How many symlinks are followed before giving up, as the kernel's `ELOOP` limit.
const MAX_LINKS: usize = 40;

/// `-o FILE`, open.
pub struct Output {
    /// FILE as given, for messages.
    shown: String,
    /// Where the writer writes: the temporary file, or FILE itself when written in place.
    handle: Handle,
    /// What is left to do at the end: `None` when FILE is written in place (or an exit
    /// that could not wait has tidied up).
    replacing: Arc<Mutex<Option<Replacing>>>,
}

/// A handle to write results through.
enum Handle {
    File(File),
    #[cfg(unix)]
    Socket(std::os::unix::net::UnixStream),
}

/// A regular FILE being replaced: the temporary file and the lock.
struct Replacing {
    temp: PathBuf,
    file: File,
    /// The real file the temporary one is renamed over.
    target: PathBuf,
    /// Where a stopped run's JSON results are kept.
    partial: PathBuf,
    _lock: Lock,
}

/// How the run ended, as far as its output file cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every record was written: FILE is replaced.
    Complete,
    /// A signal stopped the run (`how` says so in messages: `interrupted`): FILE stays;
    /// JSON results are kept as `FILE.partial` when `keep_partial`.
    Stopped {
        how: &'static str,
        keep_partial: bool,
    },
    /// A write failed: FILE stays, the temporary file goes.
    WriteFailed,
}

impl Output {
    /// Opens FILE as its kind says (see the module). For a regular file: checks the
    /// directory, takes the lock and creates the temporary file. Every problem is a
    /// usage error, before anything is probed. A FIFO without a reader waits for one,
    /// as the shell's `>` does.
    pub fn open(path: &str) -> Result<Output, UsageError> {
        let cannot = |why: String| UsageError(format!("cannot write -o {path}: {why}"));
        let given = Path::new(path);
        if path.ends_with('/') || given.file_name().is_none() {
            return Err(cannot("it names a directory, not a file".into()));
        }
        let existing = fs::metadata(given).ok();
        match &existing {
            Some(m) if m.is_dir() => return Err(cannot("it is a directory".into())),
            Some(m) if !m.is_file() => {
                return Ok(Output {
                    shown: path.to_string(),
                    handle: open_in_place(given, m).map_err(|e| cannot(os_text(&e)))?,
                    replacing: Arc::default(),
                })
            }
            _ => {}
        }
        let target = real_path(given).map_err(cannot)?;
        let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(cannot("it names a directory, not a file".into()));
        };
        let lock = Lock::take(&target, &format!("-o {path}")).map_err(|refused| match refused {
            Refused::Held(usage) => usage,
            Refused::Cannot(why) => cannot(why),
        })?;
        let name = name.to_string_lossy();
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
        let is_link = fs::symlink_metadata(given).is_ok_and(|m| m.file_type().is_symlink());
        // Beside the file renamed into, so that keeping it is a rename too.
        let partial = match is_link {
            true => PathBuf::from(format!("{}.partial", target.display())),
            false => PathBuf::from(format!("{path}.partial")),
        };
        let handle = Handle::File(
            file.try_clone()
                .map_err(|e| cannot(format!("{}: {}", temp.display(), os_text(&e))))?,
        );
        Ok(Output {
            shown: path.to_string(),
            handle,
            replacing: Arc::new(Mutex::new(Some(Replacing {
                temp,
                file,
                target,
                partial,
                _lock: lock,
            }))),
        })
    }

    /// FILE as given.
    pub fn path(&self) -> &Path {
        Path::new(&self.shown)
    }

    /// A handle for the writer thread.
    pub fn writer(&self) -> io::Result<Box<dyn Write + Send>> {
        Ok(match &self.handle {
            Handle::File(file) => Box::new(file.try_clone()?),
            #[cfg(unix)]
            Handle::Socket(socket) => Box::new(socket.try_clone()?),
        })
    }

    /// What an exit that cannot wait for the run does with the temporary file: keeps
    /// it as `FILE.partial` (`keep_partial`, JSON) or removes it; the lock goes too.
    pub fn tidy(&self, keep_partial: bool) -> Tidy {
        let (replacing, shown) = (Arc::clone(&self.replacing), self.shown.clone());
        Box::new(move || {
            let rep = replacing.lock().ok()?.take()?;
            if keep_partial && fs::rename(&rep.temp, &rep.partial).is_ok() {
                return Some(format!(
                    "{shown} was left as it was; the results written so far are in {}",
                    rep.partial.display()
                ));
            }
            let _ = fs::remove_file(&rep.temp);
            Some(format!("{shown} was left as it was"))
        })
    }

    /// Ends the output as `ending` says. `Ok` carries a note for stderr, if any; `Err`
    /// a problem (the results could not all be written: exit status 3).
    pub fn finish(self, ending: Ending) -> Result<Option<String>, String> {
        let shown = &self.shown;
        // Held to the end, so that an exit that cannot wait finds the work done.
        let Ok(mut slot) = self.replacing.lock() else {
            return Ok(None);
        };
        let Some(rep) = slot.take() else {
            // Written in place: every write has gone out already.
            return Ok(None);
        };
        match ending {
            Ending::Complete => {
                let done = rep
                    .file
                    .sync_all()
                    .and_then(|()| fs::rename(&rep.temp, &rep.target));
                match done {
                    Ok(()) => {
                        // The rename itself to disk: a crash now keeps the new FILE.
                        if let Some(dir) = rep.target.parent() {
                            let _ = File::open(dir).and_then(|d| d.sync_all());
                        }
                        Ok(None)
                    }
                    Err(e) => {
                        let _ = fs::remove_file(&rep.temp);
                        Err(format!(
                            "writing the results to {shown}: {}; {shown} was left as it was",
                            os_text(&e)
                        ))
                    }
                }
            }
            Ending::Stopped {
                how,
                keep_partial: true,
            } => {
                let partial = &rep.partial;
                let kept = rep
                    .file
                    .sync_all()
                    .and_then(|()| fs::rename(&rep.temp, partial));
                match kept {
                    Ok(()) => Ok(Some(format!(
                        "{how}: {shown} was left as it was; the results so far are in {} \
                         (resume with --resume {} -o {shown})",
                        partial.display(),
                        partial.display()
                    ))),
                    Err(e) => {
                        let _ = fs::remove_file(&rep.temp);
                        Err(format!(
                            "{how}, and the results so far could not be kept in {}: {}",
                            partial.display(),
                            os_text(&e)
                        ))
                    }
                }
            }
            Ending::Stopped {
                how,
                keep_partial: false,
            } => {
                let _ = fs::remove_file(&rep.temp);
                Ok(Some(format!("{how}: {shown} was left as it was")))
            }
            Ending::WriteFailed => {
                let _ = fs::remove_file(&rep.temp);
                Ok(Some(format!("{shown} was left as it was")))
            }
        }
    }
}

impl Drop for Output {
    /// An output never finished (a usage error after it was opened) leaves nothing.
    fn drop(&mut self) {
        if let Some(rep) = self.replacing.lock().ok().and_then(|mut slot| slot.take()) {
            let _ = fs::remove_file(&rep.temp);
        }
    }
}

/// A device, FIFO or socket, opened to be written as it is: never created, truncated,
/// replaced or removed.
fn open_in_place(path: &Path, meta: &fs::Metadata) -> io::Result<Handle> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            return std::os::unix::net::UnixStream::connect(path).map(Handle::Socket);
        }
    }
    let _ = meta;
    OpenOptions::new().write(true).open(path).map(Handle::File)
}

/// The file `path` names once symlinks are followed, absolute; it may not exist yet
/// (then its directory must). `Err` is why not, in words.
fn real_path(path: &Path) -> Result<PathBuf, String> {
    let parent = |p: &Path| match p.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut path = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&path)
                    .map_err(|e| format!("{}: {}", path.display(), os_text(&e)))?;
                // A relative link is relative to the link's directory.
                path = parent(&path).join(to);
            }
            Ok(_) => {
                return fs::canonicalize(&path)
                    .map_err(|e| format!("{}: {}", path.display(), os_text(&e)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = parent(&path);
                let name = path
                    .file_name()
                    .ok_or_else(|| format!("{} names a directory, not a file", path.display()))?;
                return match fs::canonicalize(&dir) {
                    Ok(real) if real.is_dir() => Ok(real.join(name)),
                    Ok(_) => Err(format!("{} is not a directory", dir.display())),
                    Err(e) => Err(format!("its directory {}: {}", dir.display(), os_text(&e))),
                };
            }
            Err(e) => return Err(format!("{}: {}", path.display(), os_text(&e))),
        }
    }
    Err(format!(
        "{}: too many levels of symbolic links",
        path.display()
    ))
}

/// Whether two metadata are of one file.
#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    false
}

/// Refuses an `-o` or `--resume` that is one of the input files (`-f PATH`, or the file
/// standard input reads when it is read): the results would overwrite the targets.
/// Compared by the real file (`./x`, `x` and a link to x are one file); only regular
/// files count (`-f /dev/stdin -o /dev/stdout` on a terminal overwrites nothing).
pub fn refuse_input_files(cfg: &RunOptions) -> Result<(), UsageError> {
    let mut inputs: Vec<(String, fs::Metadata)> = cfg
        .files
        .iter()
        .filter(|f| *f != "-")
        .filter_map(|f| Some((format!("-f {f}"), fs::metadata(f).ok()?)))
        .collect();
    let reads_stdin = (cfg.targets.is_empty() && cfg.files.is_empty())
        || cfg.files.iter().chain(&cfg.targets).any(|f| f == "-");
    if reads_stdin {
        if let Ok(m) = stdio_metadata(Stdio::In) {
            inputs.push(("standard input".into(), m));
        }
    }
    let named = |path: &str| -> Option<String> {
        let ours = fs::metadata(path).ok().filter(|m| m.is_file())?;
        inputs
            .iter()
            .find(|(_, m)| m.is_file() && same_file(m, &ours))
            .map(|(name, _)| name.clone())
    };
    if let Some(path) = &cfg.output {
        if let Some(input) = named(path) {
            return Err(UsageError(format!(
                "-o {path} is an input file ({input}): the results would overwrite the \
                 targets; give -o another file"
            )));
        }
    }
    if let Some(path) = &cfg.resume {
        if let Some(input) = named(path) {
            return Err(UsageError(format!(
                "--resume {path} is an input file ({input}): --resume takes an earlier run's \
                 JSON output (--format json), not the list of targets"
            )));
        }
    }
    Ok(())
}

/// A lock on a real file, through `.NAME.lock` beside it (or, where that cannot be
/// made, on the file itself). The lock file is removed when the lock is dropped, or by
/// `tidy`, whichever comes first.
pub struct Lock {
    held: Arc<Mutex<Option<LockFile>>>,
}

struct LockFile {
    _file: File,
    /// The lock file to remove, unless the lock is on the file itself.
    path: Option<PathBuf>,
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Removed while still locked: a run that opened it meanwhile finds it locked,
        // or (once it is unlocked) no longer at its path, and opens the path again.
        if let Some(path) = &self.path {
            let _ = fs::remove_file(path);
        }
    }
}

/// Why a lock was not taken.
enum Refused {
    /// Another run holds it.
    Held(UsageError),
    /// The lock file cannot be made: the path and why.
    Cannot(String),
}

impl Lock {
    /// Locks `real` (absolute, symlinks followed) without waiting; `what` names it in
    /// the usage error when another run holds it.
    fn take(real: &Path, what: &str) -> Result<Lock, Refused> {
        let name = real.file_name().unwrap_or_default().to_string_lossy();
        let path = real.with_file_name(format!(".{name}.lock"));
        // A run ending now removes the file we may have just opened: try again, a few
        // times (each try means another run ended meanwhile).
        for _ in 0..16 {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Refused::Cannot(format!("{}: {}", path.display(), os_text(&e))))?;
            lock_exclusive(&file, what).map_err(Refused::Held)?;
            let current = (fs::metadata(&path), file.metadata());
            if let (Ok(at_path), Ok(ours)) = current {
                if same_file(&at_path, &ours) || cfg!(not(unix)) {
                    return Ok(Lock::holding(file, Some(path)));
                }
            }
        }
        Err(Refused::Cannot(format!(
            "{}: another run keeps replacing it",
            path.display()
        )))
    }

    fn holding(file: File, path: Option<PathBuf>) -> Lock {
        Lock {
            held: Arc::new(Mutex::new(Some(LockFile { _file: file, path }))),
        }
    }

    /// Removes the lock file on an exit that cannot wait for the run.
    pub fn tidy(&self) -> Tidy {
        let held = Arc::clone(&self.held);
        Box::new(move || {
            drop(held.lock().ok()?.take());
            None
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Ok(mut held) = self.held.lock() {
            drop(held.take());
        }
    }
}

/// Takes an exclusive advisory lock on `file` without waiting; `what` names it
/// (`-o FILE`, `--resume FILE`) in the usage error when another process holds it.
fn lock_exclusive(file: &File, what: &str) -> Result<(), UsageError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => {
            let holder = file
                .metadata()
                .ok()
                .and_then(|m| holder_of(&m))
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

/// The process holding a lock on the file, where the system says (Linux).
#[cfg(unix)]
fn holder_of(m: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    lock_holder(m.dev(), m.ino())
}

#[cfg(not(unix))]
fn holder_of(_: &fs::Metadata) -> Option<u32> {
    None
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

/// When standard output is appended to `--resume FILE` itself (`>> FILE`), locks FILE
/// (the lock `-o FILE` takes), so that an overlapping run (cron) on it stops at once
/// instead of probing everything again. Returns the lock to hold for the run.
pub fn lock_resume_if_appending(path: &str) -> Result<Option<Lock>, UsageError> {
    let Ok(file) = File::open(path) else {
        // Resume::load reports an unreadable FILE.
        return Ok(None);
    };
    let (Ok(ours), Ok(stdout)) = (file.metadata(), stdio_metadata(Stdio::Out)) else {
        return Ok(None);
    };
    if !same_file(&ours, &stdout) {
        return Ok(None);
    }
    let what = format!("--resume {path}");
    let Ok(real) = real_path(Path::new(path)) else {
        return Ok(None);
    };
    match Lock::take(&real, &what) {
        Ok(lock) => Ok(Some(lock)),
        Err(Refused::Held(usage)) => Err(usage),
        // No lock file can be made beside FILE (a directory this user cannot write,
        // where -o cannot write either): FILE itself is the lock.
        Err(Refused::Cannot(_)) => {
            lock_exclusive(&file, &what)?;
            Ok(Some(Lock::holding(file, None)))
        }
    }
}

enum Stdio {
    In,
    Out,
}

/// Standard input's or output's file, as `fstat` sees it.
#[cfg(unix)]
fn stdio_metadata(which: Stdio) -> io::Result<fs::Metadata> {
    use std::os::fd::AsFd;
    let fd = match which {
        Stdio::In => io::stdin().as_fd().try_clone_to_owned()?,
        Stdio::Out => io::stdout().as_fd().try_clone_to_owned()?,
    };
    File::from(fd).metadata()
}

#[cfg(not(unix))]
fn stdio_metadata(_: Stdio) -> io::Result<fs::Metadata> {
    Err(io::ErrorKind::Unsupported.into())
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
