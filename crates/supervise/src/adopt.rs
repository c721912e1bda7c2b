//! Adoption: when a supervise dies (even by SIGKILL), init starts a new one on the same
//! folder, and the new one must never start a second copy of the service. The old
//! `supervise/status` names the pid of run (or of finish, while finishing) and its start time
//! in clock ticks; when /proc still shows that pid with that start time, it is the same
//! process, and the new supervise watches it through a pidfd instead of starting run.
//! The adopted process is not our child (init reaps it), so its exit status is unknown.

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, SystemTime};

use libcustos::status::{self, State as Phase, Status};
use nix::errno::Errno;

/// What the previous supervise left running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphan {
    /// run, still alive.
    Run(Status),
    /// finish, still alive.
    Finish(Status),
}

/// Decides from the previous status (and /proc) whether a process is to be adopted.
pub fn orphan(previous: Option<Status>) -> Option<Orphan> {
    let st = previous?;
    if st.pid == 0
        || st.pid_start_ticks == 0
        || status::pid_start_ticks(st.pid) != Some(st.pid_start_ticks)
    {
        return None;
    }
    match st.state {
        Phase::Up => Some(Orphan::Run(st)),
        Phase::Finishing => Some(Orphan::Finish(st)),
        Phase::Down => None,
    }
}

/// A descriptor that becomes readable when `pid` exits (Linux 5.3 and later).
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: a plain system call; on success the kernel gives us a new descriptor we own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: r is a fresh descriptor returned by pidfd_open (close-on-exec by default).
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Whether the adopted `pid` is still the process that started at `ticks` (the fallback
/// check when pidfds are missing).
pub fn still_alive(pid: u64, ticks: u64) -> bool {
    status::pid_start_ticks(pid) == Some(ticks)
}

/// What is left of the 1-second start guard for a run that started at `since`.
pub fn guard_left(since: SystemTime, now: SystemTime) -> Option<Duration> {
    let age = now.duration_since(since).unwrap_or(Duration::ZERO);
    crate::state::START_GUARD
        .checked_sub(age)
        .filter(|d| !d.is_zero())
}

/// The process group of `pid` (run is a session leader, so normally `pid` itself).
pub fn pgid_of(pid: i32) -> i32 {
    // SAFETY: a plain system call.
    let g = unsafe { libc::getpgid(pid) };
    if g > 0 {
        g
    } else {
        pid
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_pid_with_the_same_start_time_is_adopted() {
        let me = std::process::id() as u64;
        let ticks = status::pid_start_ticks(me).unwrap();
        let mut st = Status::new(true);
        st.state = Phase::Up;
        st.pid = me;
        st.pid_start_ticks = ticks;
        assert_eq!(orphan(Some(st)), Some(Orphan::Run(st)));
        st.state = Phase::Finishing;
        assert_eq!(orphan(Some(st)), Some(Orphan::Finish(st)));
        st.state = Phase::Down;
        assert_eq!(orphan(Some(st)), None);
        st.state = Phase::Up;
        st.pid_start_ticks = ticks + 1;
        assert_eq!(orphan(Some(st)), None, "a reused pid is not adopted");
        st.pid_start_ticks = 0;
        assert_eq!(orphan(Some(st)), None);
        assert_eq!(orphan(None), None);
    }

    #[test]
    fn guard() {
        let now = SystemTime::now();
        assert_eq!(guard_left(now - Duration::from_secs(5), now), None);
        assert_eq!(
            guard_left(now - Duration::from_millis(300), now),
            Some(Duration::from_millis(700))
        );
        assert_eq!(
            guard_left(now + Duration::from_secs(5), now),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn pidfd_of_self() {
        assert!(pidfd_open(std::process::id() as i32).is_ok());
    }
}
