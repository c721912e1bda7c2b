//! `supervise/status`: what supervise says about its service, in a small fixed-size,
//! big-endian, versioned layout, replaced atomically (write `status.new`, rename), so a reader
//! never sees half a status and waiters watching the folder get one IN_MOVED_TO per change.
//!
//! Layout (STATUS_SIZE bytes):
//! ```text
//!  0  u8   format version (1)
//!  1  u8   state: 0 down, 1 up, 2 finishing
//!  2  u8   flags: 1 wanted up, 2 ready, 4 paused, 8 declares readiness (notification-fd)
//!  3  u8   last end: 0 none yet, 1 exited (code), 2 killed (signal), 3 unknown (adopted pid)
//!  4  i32  last exit code or signal number
//!  8  u64  pid of run (0 when none)
//! 16  i64  since: seconds of the wall clock when the state last changed
//! 24  u32  since: nanoseconds
//! 28  i64  ready since: seconds (0 when not ready)
//! 36  u32  ready since: nanoseconds
//! 40  u64  start time of pid, in clock ticks after boot (/proc/PID/stat field 22), to
//!          recognise the same process after a supervise restart
//! 48  u32  restarts: how many times run was started again after the first start
//! ```

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::paths;

pub const STATUS_SIZE: usize = 52;
pub const STATUS_VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// run is not running.
    Down,
    /// run is running.
    Up,
    /// run has exited and finish is running.
    Finishing,
}

/// How run last ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastEnd {
    /// run has not ended since supervise started.
    None,
    /// exit(code).
    Exited(i32),
    /// killed by signal number.
    Killed(i32),
    /// an adopted run ended; its status went to init, not to us.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub wanted_up: bool,
    pub ready: bool,
    pub paused: bool,
    /// The service has a notification-fd, so "ready" is its own word, not "up".
    pub declares_readiness: bool,
    pub last: LastEnd,
    pub pid: u64,
    pub since: SystemTime,
    pub ready_since: Option<SystemTime>,
    pub pid_start_ticks: u64,
    pub restarts: u32,
}

impl Status {
    /// A service that has never run.
    pub fn new(wanted_up: bool) -> Status {
        Status {
            state: State::Down,
            wanted_up,
            ready: false,
            paused: false,
            declares_readiness: false,
            last: LastEnd::None,
            pid: 0,
            since: SystemTime::now(),
            ready_since: None,
            pid_start_ticks: 0,
            restarts: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }

    /// Up, and ready where the service declares readiness (a service without
    /// notification-fd is ready when it is up: a custos rule).
    pub fn is_ready(&self) -> bool {
        self.is_up() && (self.ready || !self.declares_readiness)
    }

    pub fn pack(&self) -> [u8; STATUS_SIZE] {
        let mut b = [0u8; STATUS_SIZE];
        b[0] = STATUS_VERSION;
        b[1] = match self.state {
            State::Down => 0,
            State::Up => 1,
            State::Finishing => 2,
        };
        b[2] = (self.wanted_up as u8)
            | (self.ready as u8) << 1
            | (self.paused as u8) << 2
            | (self.declares_readiness as u8) << 3;
        let (kind, code) = match self.last {
            LastEnd::None => (0, 0),
            LastEnd::Exited(c) => (1, c),
            LastEnd::Killed(s) => (2, s),
            LastEnd::Unknown => (3, 0),
        };
        b[3] = kind;
        b[4..8].copy_from_slice(&code.to_be_bytes());
        b[8..16].copy_from_slice(&self.pid.to_be_bytes());
        let (s, n) = stamp(self.since);
        b[16..24].copy_from_slice(&s.to_be_bytes());
        b[24..28].copy_from_slice(&n.to_be_bytes());
        let (s, n) = self.ready_since.map(stamp).unwrap_or((0, 0));
        b[28..36].copy_from_slice(&s.to_be_bytes());
        b[36..40].copy_from_slice(&n.to_be_bytes());
        b[40..48].copy_from_slice(&self.pid_start_ticks.to_be_bytes());
        b[48..52].copy_from_slice(&self.restarts.to_be_bytes());
        b
    }

    pub fn unpack(b: &[u8]) -> Option<Status> {
        if b.len() != STATUS_SIZE || b[0] != STATUS_VERSION {
            return None;
        }
        let state = match b[1] {
            0 => State::Down,
            1 => State::Up,
            2 => State::Finishing,
            _ => return None,
        };
        let code = i32::from_be_bytes(b[4..8].try_into().ok()?);
        let last = match b[3] {
            0 => LastEnd::None,
            1 => LastEnd::Exited(code),
            2 => LastEnd::Killed(code),
            3 => LastEnd::Unknown,
            _ => return None,
        };
        let u64_at = |i: usize| b[i..i + 8].try_into().ok().map(u64::from_be_bytes);
        let i64_at = |i: usize| b[i..i + 8].try_into().ok().map(i64::from_be_bytes);
        let u32_at = |i: usize| b[i..i + 4].try_into().ok().map(u32::from_be_bytes);
        let ready_secs = i64_at(28)?;
        Some(Status {
            state,
            wanted_up: b[2] & 1 != 0,
            ready: b[2] & 2 != 0,
            paused: b[2] & 4 != 0,
            declares_readiness: b[2] & 8 != 0,
            last,
            pid: u64_at(8)?,
            since: unstamp(i64_at(16)?, u32_at(24)?),
            ready_since: if ready_secs == 0 {
                None
            } else {
                Some(unstamp(ready_secs, u32_at(36)?))
            },
            pid_start_ticks: u64_at(40)?,
            restarts: u32_at(48)?,
        })
    }
}

fn stamp(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(_) => (0, 0),
    }
}

fn unstamp(secs: i64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos.min(999_999_999))
}

/// Reads the status of the live service folder `dir`. Ok(None): no status yet, or unreadable
/// layout (an older or newer format).
pub fn read(dir: &Path) -> Result<Option<Status>> {
    let path = dir.join(paths::SUPERVISE_STATUS);
    match std::fs::read(&path) {
        Ok(b) => Ok(Status::unpack(&b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format_args!("read {}", path.display()), &e)),
    }
}

/// Replaces the status of `dir` atomically (readable by everyone: status is public).
pub fn write(dir: &Path, status: &Status) -> Result<()> {
    let path = dir.join(paths::SUPERVISE_STATUS);
    let tmp = dir.join(paths::SUPERVISE).join("status.new");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(|e| Error::io(format_args!("create {}", tmp.display()), &e))?;
    f.write_all(&status.pack())
        .map_err(|e| Error::io(format_args!("write {}", tmp.display()), &e))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        Error::io(
            format_args!("rename {} to {}", tmp.display(), path.display()),
            &e,
        )
    })
}

/// The start time of a process in clock ticks after boot, from /proc/PID/stat (field 22),
/// or None when the process is gone.
pub fn pid_start_ticks(pid: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            state: State::Up,
            wanted_up: true,
            ready: true,
            paused: false,
            declares_readiness: true,
            last: LastEnd::Killed(15),
            pid: 4242,
            since: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
            ready_since: Some(UNIX_EPOCH + Duration::new(1_700_000_001, 7)),
            pid_start_ticks: 99,
            restarts: 3,
        }
    }

    #[test]
    fn round_trip() {
        let s = sample();
        assert_eq!(Status::unpack(&s.pack()), Some(s));
        for last in [
            LastEnd::None,
            LastEnd::Exited(0),
            LastEnd::Exited(255),
            LastEnd::Unknown,
        ] {
            let t = Status {
                last,
                ready_since: None,
                state: State::Finishing,
                ..s
            };
            assert_eq!(Status::unpack(&t.pack()), Some(t));
        }
    }

    #[test]
    fn golden_bytes() {
        let b = sample().pack();
        let expected: [u8; STATUS_SIZE] = [
            1, 1, 0b1011, 2, 0, 0, 0, 15, // version, up, flags, killed by 15
            0, 0, 0, 0, 0, 0, 0x10, 0x92, // pid 4242
            0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 5, // since
            0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x01, 0, 0, 0, 7, // ready since
            0, 0, 0, 0, 0, 0, 0, 99, // start ticks
            0, 0, 0, 3, // restarts
        ];
        assert_eq!(b, expected);
    }

    #[test]
    fn rejects_other_layouts() {
        let mut b = sample().pack();
        b[0] = 2;
        assert_eq!(Status::unpack(&b), None);
        assert_eq!(Status::unpack(&b[..10]), None);
    }

    #[test]
    fn readiness_rule() {
        let mut s = Status::new(true);
        s.state = State::Up;
        assert!(s.is_ready(), "no notification-fd: ready when up");
        s.declares_readiness = true;
        assert!(!s.is_ready());
        s.ready = true;
        assert!(s.is_ready());
    }

    #[test]
    fn own_start_time() {
        assert!(pid_start_ticks(std::process::id() as u64).is_some());
    }
}
