//! A log directory: `current`, the archives `@<TAI64N>.s`, and `lock`.
//!
//! The on-disk conventions are s6-log's, so either program can take over a directory left by
//! the other: `current` is mode 0644 while a logger writes it and 0744 once it was closed
//! cleanly; an archive is a former `current`, fsynced, made 0744 and renamed to
//! `@<TAI64N of the rotation>.s`, so that archive names sort by time. `lock` is held
//! (flock) by the one logger that writes the directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libcustos::error::{errno_of, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::timestamp::Timestamp;

const CURRENT: &str = "current";
const LOCK: &str = "lock";
const MODE_WRITING: u32 = 0o644;
const MODE_COMPLETE: u32 = 0o744;

/// A failed write or rotation: `unable to WHAT: errno`, to retry later.
#[derive(Debug)]
pub struct Failure {
    pub what: String,
    pub errno: Errno,
}

impl Failure {
    fn io(what: String, err: &std::io::Error) -> Failure {
        Failure {
            what,
            errno: errno_of(err),
        }
    }
}

pub struct LogDir {
    path: PathBuf,
    dir: File,
    /// None after a rotation that could not open the new `current`; reopened on the next write.
    current: Option<File>,
    size: u64,
    keep: u32,
    max_size: u64,
    last_archive: Option<String>,
    _lock: Flock<File>,
}

impl LogDir {
    /// Creates the directory if needed (with its parents), takes its lock and opens `current`
    /// for appending. An existing `current` is resumed: its size counts, and a last line
    /// without its newline (a logger killed in the middle of a write) is cut off.
    pub fn open(path: &Path, keep: u32, max_size: u64) -> Result<LogDir> {
        let shown = path.display();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(|e| Error::io(format_args!("create {shown}"), &e))?;
        let dir = File::open(path).map_err(|e| Error::io(format_args!("open {shown}"), &e))?;
        let lock_path = path.join(LOCK);
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|e| Error::io(format_args!("open {}", lock_path.display()), &e))?;
        let lock =
            Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
                let mut err = Error::sys(format_args!("lock {}", lock_path.display()), errno);
                if errno == Errno::EWOULDBLOCK {
                    err.message
                        .push_str(" (another logger is writing to this directory)");
                }
                err
            })?;
        let mut logdir = LogDir {
            path: path.to_path_buf(),
            dir,
            current: None,
            size: 0,
            keep,
            max_size,
            last_archive: None,
            _lock: lock,
        };
        logdir
            .open_current()
            .map_err(|f| Error::sys(f.what, f.errno))?;
        let archives = logdir.archives().map_err(|f| Error::sys(f.what, f.errno))?;
        logdir.last_archive = archives.last().cloned();
        logdir.purge(archives);
        Ok(logdir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    fn current_path(&self) -> PathBuf {
        self.path.join(CURRENT)
    }

    fn open_current(&mut self) -> std::result::Result<(), Failure> {
        let path = self.current_path();
        let what = |verb: &str| format!("{verb} {}", path.display());
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(MODE_WRITING)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Failure::io(what("open"), &e))?;
        file.set_permissions(std::fs::Permissions::from_mode(MODE_WRITING))
            .map_err(|e| Failure::io(what("chmod"), &e))?;
        let mut size = file
            .metadata()
            .map_err(|e| Failure::io(what("stat"), &e))?
            .len();
        if size > 0 {
            // a logger killed in the middle of a write leaves the start of a line behind. That
            // line is still in the input pipe (bytes leave it only once written whole), so the
            // next logger writes it again: the fragment goes, and no cut line stays in the log
            let keep =
                complete_lines_len(&mut file, size).map_err(|e| Failure::io(what("read"), &e))?;
            if keep < size {
                file.set_len(keep)
                    .map_err(|e| Failure::io(what("truncate"), &e))?;
                size = keep;
            }
        }
        self.current = Some(file);
        self.size = size;
        Ok(())
    }

    /// Writes as much of `bytes` as one write(2) takes, to `current`. The caller decides where
    /// lines go (see `output.rs`); this only counts.
    pub fn write(&mut self, bytes: &[u8]) -> std::result::Result<usize, Failure> {
        if self.current.is_none() {
            self.open_current()?;
        }
        let Some(file) = self.current.as_mut() else {
            return Err(Failure {
                what: format!("open {}", self.current_path().display()),
                errno: Errno::EBADF,
            });
        };
        loop {
            match file.write(bytes) {
                Ok(0) if !bytes.is_empty() => {
                    return Err(Failure {
                        what: format!("write to {}", self.current_path().display()),
                        errno: Errno::ENOSPC,
                    })
                }
                Ok(n) => {
                    self.size += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Failure::io(
                        format!("write to {}", self.current_path().display()),
                        &e,
                    ))
                }
            }
        }
    }

    /// fsync `current`, mark it complete, rename it to `@<TAI64N>.s`, fsync the directory,
    /// open a new empty `current`, then remove the oldest archives beyond `nN`.
    /// The line boundary is the caller's: it rotates only between two lines.
    pub fn rotate(&mut self) -> std::result::Result<(), Failure> {
        let cur = self.current_path();
        if let Some(file) = self.current.as_ref() {
            file.sync_all()
                .map_err(|e| Failure::io(format!("fsync {}", cur.display()), &e))?;
            file.set_permissions(std::fs::Permissions::from_mode(MODE_COMPLETE))
                .map_err(|e| Failure::io(format!("chmod {}", cur.display()), &e))?;
        }
        let mut name = Timestamp::now().archive_name();
        // names must keep increasing even if the clock steps back
        if let Some(last) = self.last_archive.as_deref() {
            if name.as_str() <= last {
                if let Some(t) = parse_archive_stamp(last) {
                    name = t.next().archive_name();
                }
            }
        }
        let archive = self.path.join(&name);
        std::fs::rename(&cur, &archive).map_err(|e| {
            Failure::io(
                format!("rename {} to {}", cur.display(), archive.display()),
                &e,
            )
        })?;
        self.current = None;
        self.size = 0;
        self.last_archive = Some(name);
        if let Err(e) = self.dir.sync_all() {
            libcustos::warn!(
                "unable to fsync {}: {}",
                self.path.display(),
                errno_of(&e).desc()
            );
        }
        self.open_current()?;
        if let Ok(archives) = self.archives() {
            self.purge(archives);
        }
        Ok(())
    }

    /// The archives (`@*.s`, and s6-log's `@*.u`), oldest first.
    fn archives(&self) -> std::result::Result<Vec<String>, Failure> {
        let rd = std::fs::read_dir(&self.path)
            .map_err(|e| Failure::io(format!("read directory {}", self.path.display()), &e))?;
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with('@') && (n.ends_with(".s") || n.ends_with(".u")))
            .collect();
        names.sort();
        Ok(names)
    }

    fn purge(&self, archives: Vec<String>) {
        let excess = archives.len().saturating_sub(self.keep as usize);
        for name in &archives[..excess] {
            let p = self.path.join(name);
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    libcustos::warn!("unable to remove {}: {}", p.display(), errno_of(&e).desc());
                }
            }
        }
    }

    /// On a clean exit: fsync `current` and mark it complete (0744), as s6-log does.
    pub fn close(&mut self) {
        if let Some(file) = self.current.take() {
            let cur = self.current_path();
            if let Err(e) = file.sync_all() {
                libcustos::warn!("unable to fsync {}: {}", cur.display(), errno_of(&e).desc());
            }
            if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(MODE_COMPLETE)) {
                libcustos::warn!("unable to chmod {}: {}", cur.display(), errno_of(&e).desc());
            }
        }
    }
}

/// The moment in an archive name `@<TAI64N>.s`, back in Unix time (with today's TAI-UTC, right
/// for any label since 2017), used only to keep archive names increasing.
fn parse_archive_stamp(name: &str) -> Option<Timestamp> {
    let hex = name.strip_prefix('@')?.get(..24)?;
    let label = u64::from_str_radix(&hex[..16], 16).ok()?;
    let nanos = u32::from_str_radix(&hex[16..], 16).ok()?;
    // TAI-UTC at the label's time: try today's value, it is right for every recent label
    let offset = Timestamp {
        secs: 1_483_228_800,
        nanos: 0,
    }
    .tai64() as i64
        - 1_483_228_800;
    Some(Timestamp {
        secs: label as i64 - offset,
        nanos: nanos.min(999_999_999),
    })
}

/// The length of `file` up to and including its last newline (0 when it has none).
fn complete_lines_len(file: &mut File, size: u64) -> std::io::Result<u64> {
    let mut end = size;
    let mut buf = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_stamp_round_trips() {
        let t = Timestamp {
            secs: 1_795_436_081,
            nanos: 123,
        };
        assert_eq!(parse_archive_stamp(&t.archive_name()), Some(t));
        assert_eq!(parse_archive_stamp("@zz"), None);
        assert_eq!(parse_archive_stamp("current"), None);
    }
}
