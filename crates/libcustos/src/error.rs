//! The error type the library returns: a message already worded in the s6 grammar's WHAT: WHY
//! form (naming the file, line or value), and the exit code it maps to.

use std::fmt;

use nix::errno::Errno;

use crate::exit;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The exit code this error maps to (100 invalid input, 111 system call).
    pub code: u8,
    /// `WHAT: WHY`, without the `PROG: fatal: ` prefix.
    pub message: String,
}

impl Error {
    /// Invalid input or usage: exit 100.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    /// A failed system call: `unable to WHAT: REASON`, exit 111.
    pub fn sys(what: impl fmt::Display, errno: Errno) -> Error {
        Error {
            code: exit::SYSTEM,
            message: format!("unable to {what}: {}", errno.desc()),
        }
    }

    /// A failed std::io call, worded like `sys` (no " (os error N)" suffix).
    pub fn io(what: impl fmt::Display, err: &std::io::Error) -> Error {
        Error::sys(what, errno_of(err))
    }
}

/// The errno behind an io::Error (EIO when it has none).
pub fn errno_of(err: &std::io::Error) -> Errno {
    err.raw_os_error()
        .map(Errno::from_raw)
        .unwrap_or(Errno::EIO)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
