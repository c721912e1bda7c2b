//! Applying entries: lchown, then chmod (FMODE to files, DMODE to folders), on PATH and, with
//! RECURSE, on everything below it.
//!
//! Symbolic links are never followed: not as PATH, not below it. A link gets lchown only
//! (chmod would act on its target), and recursion never enters one. chmod itself goes through
//! fchmodat(AT_SYMLINK_NOFOLLOW), so a file swapped for a link after the lstat is not chmodded
//! either. What already has the wanted owner and mode is left alone, so an entry that asks for
//! nothing new needs no privilege.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::{fchmodat, FchmodatFlags, Mode};

use libcustos::error::errno_of;

use crate::parse::Entry;

/// How one entry went.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Paths changed.
    pub changed: usize,
    /// The first change refused for lack of privilege (EPERM, EACCES), and how many were.
    pub refused: Option<String>,
    pub refused_count: usize,
    /// The first other failure, worded `unable to ...: REASON`, and how many there were.
    pub failure: Option<String>,
    pub failure_count: usize,
    /// PATH itself does not exist (ENOENT, or ENOTDIR for a file's "child").
    pub missing: Option<Errno>,
}

impl Outcome {
    fn fail(&mut self, what: String, errno: Errno) {
        match errno {
            // raced away while we walked: nothing left to fix
            Errno::ENOENT => {}
            Errno::EPERM | Errno::EACCES => {
                self.refused_count += 1;
                if self.refused.is_none() {
                    self.refused = Some(format!("unable to {what}: {}", errno.desc()));
                }
            }
            _ => {
                self.failure_count += 1;
                if self.failure.is_none() {
                    self.failure = Some(format!("unable to {what}: {}", errno.desc()));
                }
            }
        }
    }
}

fn is_hidden(name: &OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Applies every entry in order, with at most one warning per entry and kind: PATH missing,
/// skipped for lack of privilege, failed otherwise (the first failure, and how many more).
/// Returns the `FILE:LINE` of the entries that failed (lack of privilege is no failure).
pub fn apply_all(entries: &[Entry], hidden: bool) -> Vec<&str> {
    let uid = nix::unistd::geteuid();
    let mut failed = Vec::new();
    for entry in entries {
        let out = apply(entry, hidden);
        let origin = &entry.origin;
        if let Some(errno) = out.missing {
            libcustos::warn!("{origin}: {}: {}", entry.path.display(), errno.desc());
        }
        if let Some(first) = &out.refused {
            let more = match out.refused_count {
                0 | 1 => String::new(),
                n => format!(", {} more paths skipped", n - 1),
            };
            libcustos::warn!("{origin}: skipped: {first} (fix-attrs runs as uid {uid}{more})");
        }
        if let Some(first) = &out.failure {
            let more = match out.failure_count {
                0 | 1 => String::new(),
                n => format!(" ({} more paths failed)", n - 1),
            };
            libcustos::warn!("{origin}: {first}{more}");
            failed.push(origin.as_str());
        }
        libcustos::info!(
            "{origin}: {}: {}:{} {:04o}/{:04o}, {} paths changed",
            entry.path.display(),
            entry.account.uid,
            entry.account.gid,
            entry.fmode,
            entry.dmode,
            out.changed
        );
    }
    failed
}

/// Applies one entry. `hidden`: recurse into names starting with `.` too.
pub fn apply(entry: &Entry, hidden: bool) -> Outcome {
    let mut out = Outcome::default();
    let meta = match std::fs::symlink_metadata(&entry.path) {
        Ok(m) => m,
        Err(e) if matches!(errno_of(&e), Errno::ENOENT | Errno::ENOTDIR) => {
            out.missing = Some(errno_of(&e));
            return out;
        }
        Err(e) => {
            out.fail(format!("stat {}", entry.path.display()), errno_of(&e));
            return out;
        }
    };
    if !entry.recurse || !meta.is_dir() {
        fix(&entry.path, &meta, entry, &mut out);
        return out;
    }
    let walk = walkdir::WalkDir::new(&entry.path)
        .follow_links(false)
        .follow_root_links(false)
        .into_iter()
        .filter_entry(|e| hidden || e.depth() == 0 || !is_hidden(e.file_name()));
    for item in walk {
        match item {
            Ok(e) => match e.metadata() {
                Ok(m) => fix(e.path(), &m, entry, &mut out),
                Err(err) => {
                    let errno = err.io_error().map(errno_of).unwrap_or(Errno::EIO);
                    out.fail(format!("stat {}", e.path().display()), errno);
                }
            },
            Err(err) => {
                let errno = err.io_error().map(errno_of).unwrap_or(Errno::EIO);
                let path = err.path().unwrap_or(&entry.path).display().to_string();
                out.fail(format!("read folder {path}"), errno);
            }
        }
    }
    out
}

/// lchown and, unless it is a symbolic link, chmod one path whose lstat is `meta`.
fn fix(path: &Path, meta: &Metadata, entry: &Entry, out: &mut Outcome) {
    let (uid, gid) = (entry.account.uid, entry.account.gid);
    let mut changed = false;
    if meta.uid() != uid || meta.gid() != gid {
        // lchown never follows a link, whatever the path became since the lstat
        if let Err(e) = std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
            out.fail(
                format!("chown {} to {uid}:{gid}", path.display()),
                errno_of(&e),
            );
            return;
        }
        changed = true;
    }
    if !meta.file_type().is_symlink() {
        let mode = if meta.is_dir() {
            entry.dmode
        } else {
            entry.fmode
        };
        // chown clears set-user-ID and set-group-ID bits: after a chown, always chmod
        if changed || meta.mode() & 0o7777 != mode {
            if let Err(errno) = chmod_nofollow(path, mode) {
                out.fail(format!("chmod {} to {mode:04o}", path.display()), errno);
                return;
            }
            changed = true;
        }
    }
    if changed {
        out.changed += 1;
    }
}

fn chmod_nofollow(path: &Path, mode: u32) -> Result<(), Errno> {
    let m = Mode::from_bits_truncate(mode);
    match fchmodat(None, path, m, FchmodatFlags::NoFollowSymlink) {
        // libc does AT_SYMLINK_NOFOLLOW with fchmodat2 (Linux 6.6) or else through
        // /proc/self/fd; without either, the path exists but libc says ENOENT: check it is
        // still no link, and chmod it by name
        Err(Errno::ENOENT) if !Path::new("/proc/self/fd").exists() => {
            match std::fs::symlink_metadata(path) {
                Ok(m2) if !m2.file_type().is_symlink() => {
                    fchmodat(None, path, m, FchmodatFlags::FollowSymlink)
                }
                Ok(_) => Ok(()),
                Err(e) => Err(errno_of(&e)),
            }
        }
        // the path turned into a symbolic link since the lstat: not ours to follow
        Err(Errno::EOPNOTSUPP) => Ok(()),
        r => r,
    }
}
