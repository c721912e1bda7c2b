//! `supervise/lock`: held (flock, exclusive) by the supervise process of a service for as
//! long as it runs. "Supervised" means "the lock is held": a dead supervise leaves nothing
//! stale behind, unlike a pid file.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::paths;

/// Takes the lock of the live service folder `dir`. Ok(None) when another process holds it.
/// The returned file must be kept open (it is close-on-exec).
pub fn take(dir: &Path) -> Result<Option<File>> {
    let path = dir.join(paths::SUPERVISE_LOCK);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::io(format_args!("open {}", path.display()), &e))?;
    // SAFETY: plain syscall on a descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(Some(f));
    }
    match Errno::last() {
        Errno::EWOULDBLOCK => Ok(None),
        e => Err(Error::sys(format_args!("lock {}", path.display()), e)),
    }
}

/// Whether a supervise process holds the lock of `dir` (any user may ask).
pub fn is_held(dir: &Path) -> bool {
    let path = dir.join(paths::SUPERVISE_LOCK);
    let Ok(f) = File::open(&path) else {
        return false;
    };
    // SAFETY: plain syscall on a descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    r != 0 && Errno::last() == Errno::EWOULDBLOCK
}
