//! The control channels: `supervise/control` of each service and init's
//! `/run/custos/control`, FIFOs of mode 0600 owned by the owner of the supervision tree (so
//! nobody else can control), each held open for reading and writing by its reader (so it never
//! sees EOF). A command is one byte; unknown bytes are ignored.
//!
//! Service commands (as s6-svc):
//! ```text
//! u up      d down     o once     r restart (down signal, stays wanted up)
//! x exit supervise once the service is down (stage 3)
//! p pause (SIGSTOP)    c continue (SIGCONT)
//! a ALRM  b ABRT  q QUIT  h HUP  k KILL  t TERM  i INT  1 USR1  2 USR2  w WINCH
//! s N     any other signal: 's' followed by one byte, the signal number
//! ```
//! init commands: `h` + one byte: halt (stage 3) with that exit code; `H`: halt keeping the
//! code the container would otherwise have; `e` + one byte: an essential service ended with
//! that code (sent by its supervise); `s`: some service's status changed (sent by supervise
//! after each status write, so init needs no inotify of its own).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::error::{errno_of, Error};

/// The byte supervise writes to init's FIFO after each status change.
pub const INIT_STATUS_CHANGED: u8 = b's';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Up,
    Down,
    Once,
    Restart,
    Exit,
    Pause,
    Cont,
    Signal(Signal),
}

const NAMED_SIGNALS: [(u8, Signal); 10] = [
    (b'a', Signal::SIGALRM),
    (b'b', Signal::SIGABRT),
    (b'q', Signal::SIGQUIT),
    (b'h', Signal::SIGHUP),
    (b'k', Signal::SIGKILL),
    (b't', Signal::SIGTERM),
    (b'i', Signal::SIGINT),
    (b'1', Signal::SIGUSR1),
    (b'2', Signal::SIGUSR2),
    (b'w', Signal::SIGWINCH),
];

impl Command {
    /// The bytes of the command on the wire.
    pub fn encode(self) -> Vec<u8> {
        match self {
            Command::Up => vec![b'u'],
            Command::Down => vec![b'd'],
            Command::Once => vec![b'o'],
            Command::Restart => vec![b'r'],
            Command::Exit => vec![b'x'],
            Command::Pause => vec![b'p'],
            Command::Cont => vec![b'c'],
            Command::Signal(sig) => match NAMED_SIGNALS.iter().find(|(_, s)| *s == sig) {
                Some((b, _)) => vec![*b],
                None => vec![b's', sig as i32 as u8],
            },
        }
    }

    /// Decodes a run of bytes read from the FIFO; unknown bytes are ignored. A trailing `s`
    /// without its number is returned as the leftover to prepend to the next read.
    pub fn decode(bytes: &[u8]) -> (Vec<Command>, Option<u8>) {
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            let cmd = match b {
                b'u' => Some(Command::Up),
                b'd' => Some(Command::Down),
                b'o' => Some(Command::Once),
                b'r' => Some(Command::Restart),
                b'x' => Some(Command::Exit),
                b'p' => Some(Command::Pause),
                b'c' => Some(Command::Cont),
                b's' => {
                    let Some(&n) = bytes.get(i) else {
                        return (out, Some(b's'));
                    };
                    i += 1;
                    Signal::try_from(n as i32).ok().map(Command::Signal)
                }
                _ => NAMED_SIGNALS
                    .iter()
                    .find(|(c, _)| *c == b)
                    .map(|(_, s)| Command::Signal(*s)),
            };
            out.extend(cmd);
        }
        (out, None)
    }
}

/// Why a command could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Nobody reads the FIFO, or it does not exist: nothing supervises that folder.
    NotSupervised,
    /// The FIFO belongs to another user.
    PermissionDenied,
    Other(Error),
}

/// Writes `bytes` to the control FIFO at `fifo` without blocking.
pub fn send(fifo: &Path, bytes: &[u8]) -> Result<(), SendError> {
    let open = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(fifo);
    let mut f = match open {
        Ok(f) => f,
        Err(e) => {
            return Err(match errno_of(&e) {
                Errno::ENXIO | Errno::ENOENT | Errno::ENOTDIR => SendError::NotSupervised,
                Errno::EACCES | Errno::EPERM => SendError::PermissionDenied,
                other => {
                    SendError::Other(Error::sys(format_args!("open {}", fifo.display()), other))
                }
            })
        }
    };
    f.write_all(bytes)
        .map_err(|e| SendError::Other(Error::io(format_args!("write to {}", fifo.display()), &e)))
}

/// Creates the FIFO `path` with mode 0600 (replacing anything already there) and opens it
/// for reading and writing, non-blocking and close-on-exec: the reader's end.
pub fn open_fifo(path: &Path) -> crate::error::Result<std::fs::File> {
    use nix::sys::stat::Mode;
    let _ = std::fs::remove_file(path);
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::sys(format_args!("mkfifo {}", path.display()), e))?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(format_args!("open {}", path.display()), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips() {
        let mut all = vec![
            Command::Up,
            Command::Down,
            Command::Once,
            Command::Restart,
            Command::Exit,
            Command::Pause,
            Command::Cont,
        ];
        for n in 1..=31 {
            if let Ok(s) = Signal::try_from(n) {
                all.push(Command::Signal(s));
            }
        }
        let bytes: Vec<u8> = all.iter().flat_map(|c| c.encode()).collect();
        assert_eq!(Command::decode(&bytes), (all, None));
    }

    #[test]
    fn unknown_bytes_are_ignored() {
        assert_eq!(Command::decode(b"Z?u\n"), (vec![Command::Up], None));
        assert_eq!(Command::decode(b"ds"), (vec![Command::Down], Some(b's')));
        assert_eq!(Command::decode(&[b's', 0]), (vec![], None));
    }
}
