//! The event loop of PID 1: one poll over the signal self-pipe and init's control FIFO (where
//! each supervise also says when its service's status changed), bounded by the nearest
//! deadline. Every wakeup drains the self-pipe, reaps every child that has exited (orphans
//! included) and routes each pid to its role. Nothing sleeps: a wait is `pump(deadline)` until
//! its condition holds.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Instant;

use libcustos::{msg, warn};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// How a child ended, with the shell's code for it (128+N for signal N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    Signaled(i32),
}

impl Termination {
    pub fn code(self) -> u8 {
        match self {
            Termination::Exited(c) => (c & 0xff) as u8,
            Termination::Signaled(s) => libcustos::exit::signaled(s),
        }
    }

    pub fn describe(self) -> String {
        match self {
            Termination::Exited(c) => format!("exited {c}"),
            Termination::Signaled(s) => {
                format!("killed by SIG{}", libcustos::signal::name_of_number(s))
            }
        }
    }
}

/// The signals init takes through its self-pipe. SIGCHLD for reaping; TERM, INT, HUP, QUIT
/// start stage 3; the others are forwarded to CMD's process group.
pub const CAUGHT: [Signal; 19] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGURG,
    Signal::SIGIO,
    Signal::SIGPWR,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGSTKFLT,
];

/// What one wakeup brought.
#[derive(Debug, Default)]
pub struct Batch {
    pub signals: Vec<Signal>,
    pub exits: Vec<(Pid, Termination)>,
    pub control: Vec<u8>,
}

pub struct Events {
    pipe_read: OwnedFd,
    control: Option<File>,
}

static SELF_PIPE_WRITE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

fn write_signal_byte(sig: i32) {
    let fd = SELF_PIPE_WRITE.load(std::sync::atomic::Ordering::Relaxed);
    let b = [sig as u8];
    // SAFETY: write(2) is async-signal-safe; a full pipe just loses a duplicate wakeup.
    unsafe {
        libc::write(fd, b.as_ptr().cast(), 1);
    }
}

impl Events {
    /// Installs the signal handlers (before any child exists) and the self-pipe.
    pub fn new() -> Result<Events, libcustos::error::Error> {
        use libcustos::error::Error;
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| Error::sys("create the signal pipe", e))?;
        SELF_PIPE_WRITE.store(w.as_raw_fd(), std::sync::atomic::Ordering::Relaxed);
        // the write end lives as long as the process
        std::mem::forget(w);
        for sig in CAUGHT {
            let n = sig as i32;
            // SAFETY: the action only calls write(2), which is async-signal-safe.
            unsafe { signal_hook::low_level::register(n, move || write_signal_byte(n)) }.map_err(
                |e| {
                    Error::io(
                        format_args!("catch SIG{}", libcustos::signal::name(sig)),
                        &e,
                    )
                },
            )?;
        }
        // a background write or read on the terminal must never stop PID 1
        for sig in [Signal::SIGTTIN, Signal::SIGTTOU] {
            // SAFETY: SIG_IGN has no handler code.
            let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) };
        }
        Ok(Events {
            pipe_read: r,
            control: None,
        })
    }

    pub fn set_control(&mut self, fifo: File) {
        self.control = Some(fifo);
    }

    /// Waits for events until `deadline` (None: no limit), handles nothing itself and
    /// returns what came: signals, reaped children, control bytes, status changes.
    pub fn pump(&mut self, deadline: Option<Instant>) -> Batch {
        let mut batch = Batch::default();
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // round up so a deadline is never woken for a hair early and spun on
                let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let pipe = self.pipe_read.as_fd();
        let control_fd = self.control.as_ref().map(|f| f.as_raw_fd());
        let mut fds = vec![PollFd::new(pipe, PollFlags::POLLIN)];
        // SAFETY: both descriptors are owned by self and outlive this call.
        let borrow = |fd: RawFd| unsafe { BorrowedFd::borrow_raw(fd) };
        if let Some(fd) = control_fd {
            fds.push(PollFd::new(borrow(fd), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => warn!("poll: {}", e.desc()),
        }
        drop(fds);
        self.drain_signals(&mut batch);
        if let Some(f) = self.control.as_mut() {
            let mut buf = [0u8; 256];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => batch.control.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
        }
        // reap on every wakeup, not only on SIGCHLD: signals coalesce
        reap_all(&mut batch.exits);
        batch
    }

    fn drain_signals(&mut self, batch: &mut Batch) {
        let mut buf = [0u8; 64];
        loop {
            match nix::unistd::read(self.pipe_read.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    for &b in &buf[..n] {
                        if let Ok(sig) = Signal::try_from(b as i32) {
                            if sig != Signal::SIGCHLD {
                                batch.signals.push(sig);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Reaps every child that has exited: waitpid(-1, WNOHANG) until none is left to reap.
pub fn reap_all(out: &mut Vec<(Pid, Termination)>) {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out.push((pid, Termination::Exited(code))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                out.push((pid, Termination::Signaled(sig as i32)))
            }
            Ok(WaitStatus::StillAlive) => return,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return,
            Err(e) => {
                msg::warn(&format!("waitpid: {}", e.desc()));
                return;
            }
        }
    }
}
