//! `svctl wait [--up|--ready|--down|--finished] [--timeout DURATION] NAME...`: blocks until
//! every service named is in the state asked for, as s6-svwait -u/-U/-d/-D.
//!
//! Nobody sleeps in a loop: supervise replaces `supervise/status` by rename on every change,
//! so an inotify watch on each `supervise/` folder (IN_MOVED_TO, IN_CREATE, IN_CLOSE_WRITE)
//! wakes us; we then read every status again. Watches are set before the first read, so a
//! change between the two is never missed. A service whose `supervise/` does not exist yet
//! (supervise not started) is watched through its own folder until it appears.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use libcustos::error::{Error, Result};
use libcustos::paths;
use libcustos::status::{State, Status};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::status;
use crate::target::{self, Roots, Target};

/// The state waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// run is running (s6-svwait -u).
    Up,
    /// up, and ready where the service declares readiness (-U).
    Ready,
    /// run is not running: down or finishing (-d).
    Down,
    /// down and finish has run (-D).
    Finished,
}

impl Condition {
    /// How the timeout message says it: `to be up`.
    pub fn words(self) -> &'static str {
        match self {
            Condition::Up => "up",
            Condition::Ready => "up and ready",
            Condition::Down => "down",
            Condition::Finished => "down and finished",
        }
    }

    /// Whether a service is in this state. Not supervised counts as down and finished (and so
    /// never as up); supervised with no status yet counts as nothing at all.
    pub fn reached(self, supervised: bool, status: Option<&Status>) -> bool {
        if !supervised {
            return matches!(self, Condition::Down | Condition::Finished);
        }
        let Some(s) = status else { return false };
        match self {
            Condition::Up => s.is_up(),
            Condition::Ready => s.is_ready(),
            Condition::Down => !s.is_up(),
            Condition::Finished => s.state == State::Down,
        }
    }
}

const SUPERVISE_MASK: AddWatchFlags = AddWatchFlags::IN_MOVED_TO
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_CLOSE_WRITE);
const DIR_MASK: AddWatchFlags = AddWatchFlags::IN_CREATE.union(AddWatchFlags::IN_MOVED_TO);

struct Watched {
    target: Target,
    /// The watch on DIR/supervise.
    supervise: Option<WatchDescriptor>,
    /// The watch on DIR, while DIR/supervise does not exist.
    dir: Option<WatchDescriptor>,
}

/// Watches DIR/supervise, or DIR until DIR/supervise appears.
fn arm(ino: &Inotify, w: &mut Watched) -> Result<()> {
    if w.supervise.is_some() {
        return Ok(());
    }
    let sup = w.target.path.join(paths::SUPERVISE);
    match ino.add_watch(&sup, SUPERVISE_MASK) {
        Ok(wd) => {
            w.supervise = Some(wd);
            Ok(())
        }
        Err(Errno::ENOENT | Errno::ENOTDIR) => {
            if w.dir.is_none() {
                let wd = ino.add_watch(&w.target.path, DIR_MASK).map_err(|e| {
                    Error::sys(format_args!("watch {}", w.target.path.display()), e)
                })?;
                w.dir = Some(wd);
            }
            // it may have appeared before the watch on DIR was in place
            if let Ok(wd) = ino.add_watch(&sup, SUPERVISE_MASK) {
                w.supervise = Some(wd);
            }
            Ok(())
        }
        Err(e) => Err(Error::sys(format_args!("watch {}", sup.display()), e)),
    }
}

fn pending(cond: Condition, watched: &[Watched]) -> Result<Vec<&Target>> {
    let mut out = Vec::new();
    for w in watched {
        let e = status::entry(w.target.clone())?;
        if !cond.reached(e.supervised, e.status.as_ref()) {
            out.push(&w.target);
        }
    }
    Ok(out)
}

/// Milliseconds to `deadline`, rounded up so that we never wake just before it.
fn poll_timeout(left: Duration) -> PollTimeout {
    let ms = left.as_nanos().div_ceil(1_000_000);
    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
}

/// Waits; Ok(0) when every service reached `cond`, Ok(99) on timeout (after saying which did
/// not). `timeout` None: no limit.
pub fn run(
    cond: Condition,
    timeout: Option<Duration>,
    names: &[String],
    roots: &Roots,
) -> Result<u8> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let targets = names
        .iter()
        .map(|n| target::resolve(n, roots))
        .collect::<Result<Vec<_>>>()?;
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|e| Error::sys("create an inotify instance", e))?;
    let mut watched: Vec<Watched> = targets
        .into_iter()
        .map(|target| Watched {
            target,
            supervise: None,
            dir: None,
        })
        .collect();
    for w in watched.iter_mut() {
        arm(&ino, w)?;
    }
    loop {
        let left = pending(cond, &watched)?;
        if left.is_empty() {
            return Ok(libcustos::exit::OK);
        }
        let wait = match deadline {
            None => PollTimeout::NONE,
            Some(d) => match d
                .checked_duration_since(Instant::now())
                .filter(|l| !l.is_zero())
            {
                Some(l) => poll_timeout(l),
                None => {
                    let names: Vec<&str> = left.iter().map(|t| t.name.as_str()).collect();
                    libcustos::fatal!(
                        "timed out after {} waiting for {} to be {}",
                        humantime::format_duration(timeout.unwrap_or_default()),
                        names.join(", "),
                        cond.words()
                    );
                    return Ok(libcustos::exit::TIMEOUT);
                }
            },
        };
        let mut fds = [PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, wait) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll the inotify instance", e)),
        }
        loop {
            match ino.read_events() {
                Ok(events) => {
                    for ev in events {
                        if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                            // the folder went away (supervise/ removed): watch again
                            for w in watched.iter_mut() {
                                if w.supervise == Some(ev.wd) {
                                    w.supervise = None;
                                }
                                if w.dir == Some(ev.wd) {
                                    w.dir = None;
                                }
                            }
                        }
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("read inotify events", e)),
            }
        }
        for w in watched.iter_mut() {
            arm(&ino, w)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcustos::status::LastEnd;

    #[test]
    fn conditions() {
        let mut s = Status::new(true);
        use Condition::*;
        let check = |s: &Status, want: [bool; 4]| {
            let got = [Up, Ready, Down, Finished].map(|c| c.reached(true, Some(s)));
            assert_eq!(got, want, "{s:?}");
        };
        check(&s, [false, false, true, true]);
        s.state = State::Up;
        check(&s, [true, true, false, false]);
        s.declares_readiness = true;
        check(&s, [true, false, false, false]);
        s.ready = true;
        check(&s, [true, true, false, false]);
        s.state = State::Finishing;
        s.last = LastEnd::Exited(1);
        check(&s, [false, false, true, false]);
        for c in [Up, Ready] {
            assert!(!c.reached(false, Some(&s)));
            assert!(!c.reached(true, None));
        }
        for c in [Down, Finished] {
            assert!(c.reached(false, None));
            assert!(!c.reached(true, None));
        }
    }

    #[test]
    fn timeouts_round_up() {
        assert_eq!(i32::from(poll_timeout(Duration::from_micros(1))), 1);
        assert_eq!(i32::from(poll_timeout(Duration::from_millis(1500))), 1500);
        assert_eq!(
            i32::from(poll_timeout(Duration::from_secs(u64::MAX / 4))),
            i32::MAX
        );
    }
}
