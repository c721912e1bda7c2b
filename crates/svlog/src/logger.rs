//! The main loop: read a batch of complete lines, hand a copy to every action, write them all,
//! and only then take the next batch. Single-threaded; SIGTERM, SIGHUP and SIGINT arrive
//! through a signalfd (the kernel's self-pipe: the signals are blocked and read as data), so
//! they are seen between two batches and never interrupt one.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use libcustos::error::{Error, Result};
use nix::errno::Errno;
use nix::poll::{poll, ppoll, PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;

use crate::input::{Fill, Input};
use crate::logdir::{Failure, LogDir};
use crate::output::{Output, Sink};
use crate::script::{Action, Target};
use crate::timestamp::Timestamp;

/// How long to wait before writing again after a failed write.
const RETRY: Duration = Duration::from_secs(1);
/// While a partial line waits in the pipe, svlog looks again after these pauses, doubling
/// from the first to the last (see `wait_partial`).
const PARTIAL_FIRST: Duration = Duration::from_micros(50);
const PARTIAL_LAST: Duration = Duration::from_secs(1);

fn stdin() -> BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the whole life of the process; it is only borrowed.
    unsafe { BorrowedFd::borrow_raw(0) }
}

struct Logger {
    outputs: Vec<Output>,
    input: Input,
    signals: SignalFd,
    /// Peek mode only: stdin edge-triggered, and the signalfd.
    epoll: Option<Epoll>,
    signalled: bool,
    prefix: Vec<u8>,
    /// The next pause of `wait_partial`.
    partial_pause: Duration,
}

/// A batch could not be written and a signal asked svlog to stop.
struct Stuck(Failure);

/// Runs the script until end of input or a signal. Returns the exit code.
pub fn run(actions: Vec<Action>) -> Result<u8> {
    let mut mask = SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT] {
        mask.add(sig);
    }
    mask.thread_block()
        .map_err(|e| Error::sys("block signals", e))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| Error::sys("create a signalfd", e))?;

    let mut outputs = Vec::with_capacity(actions.len());
    for action in actions {
        let sink = match action.target {
            Target::Stdout => Sink::Stdout,
            Target::Dir {
                path,
                keep,
                max_size,
            } => Sink::Dir(LogDir::open(&path, keep, max_size)?),
        };
        outputs.push(Output::new(sink, action.stamp));
    }

    let input = Input::new();
    let epoll = if input.is_peeking() {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Error::sys("create an epoll", e))?;
        epoll
            .add(
                stdin(),
                EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, 0),
            )
            .map_err(|e| Error::sys("watch stdin", e))?;
        epoll
            .add(signals.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 1))
            .map_err(|e| Error::sys("watch the signalfd", e))?;
        Some(epoll)
    } else {
        None
    };
    let mut logger = Logger {
        outputs,
        input,
        signals,
        epoll,
        signalled: false,
        prefix: Vec::new(),
        partial_pause: PARTIAL_FIRST,
    };
    logger.main_loop()
}

impl Logger {
    fn main_loop(&mut self) -> Result<u8> {
        let mut final_view = false;
        loop {
            if self.check_signals() {
                return self.shutdown();
            }
            if self.epoll.is_none() {
                // read mode: block in poll, not in read, so a signal gets through
                self.wait(None);
                if self.check_signals() {
                    return self.shutdown();
                }
            }
            let fill = match self.input.fill() {
                Ok(f) => f,
                Err(e) => {
                    libcustos::warn!("unable to read stdin: {}", e.desc());
                    Fill::Eof
                }
            };
            match fill {
                Fill::Eof => {
                    // a final line without its newline gets one
                    if !self.input.data().is_empty() {
                        self.input.terminate_partial();
                        let len = self.input.data().len();
                        self.write_batch(len)?;
                    }
                    self.close();
                    return Ok(0);
                }
                Fill::Again => self.wait(None),
                Fill::Data => {
                    let len = self.input.complete_len();
                    if len > 0 {
                        self.write_batch(len)?;
                    } else if self.input.is_peeking() {
                        // only the start of a line: it waits in the pipe, unless it is long
                        // or nobody is left to finish it
                        if self.input.must_hold() {
                            self.input.hold().map_err(|e| Error::sys("read stdin", e))?;
                        } else if final_view {
                            // the writers were gone before this peek: no newline will come
                            self.input.terminate_partial();
                            let len = self.input.data().len();
                            self.write_batch(len)?;
                        } else if self.input.writers_gone() {
                            // peek again: what was written between the peek and now is in the
                            // pipe, and nothing more can come
                            final_view = true;
                        } else {
                            self.wait_partial();
                        }
                    }
                }
            }
        }
    }

    /// Writes the first `len` bytes of the input (complete lines) to every output, retrying
    /// failed writes, then consumes them from the input.
    fn write_batch(&mut self, len: usize) -> Result<()> {
        let now = Timestamp::now();
        let lines = &self.input.data()[..len];
        for o in &mut self.outputs {
            o.queue(lines, now, &mut self.prefix);
        }
        if let Err(Stuck(f)) = self.flush_all() {
            let fate = if self.input.is_peeking() {
                "the unwritten lines stay in the pipe for the next logger".to_string()
            } else {
                format!("{len} bytes not written")
            };
            return Err(Error {
                code: libcustos::exit::SYSTEM,
                message: format!(
                    "unable to {}: {} (stopping on signal; {fate})",
                    f.what,
                    f.errno.desc()
                ),
            });
        }
        self.partial_pause = PARTIAL_FIRST;
        self.input
            .consume(len)
            .map_err(|e| Error::sys("read stdin", e))
    }

    /// Flushes every output; while one fails, warns (once per streak) and retries every
    /// second. Gives up only when a signal asks svlog to stop.
    fn flush_all(&mut self) -> std::result::Result<(), Stuck> {
        loop {
            let mut failure = None;
            for o in &mut self.outputs {
                match o.flush() {
                    Ok(()) => {
                        if o.failing.take().is_some() {
                            libcustos::warn!("{}: writing again", o.name());
                        }
                    }
                    Err(f) => {
                        if o.failing.is_none() {
                            libcustos::warn!(
                                "unable to {}: {} (retrying every second)",
                                f.what,
                                f.errno.desc()
                            );
                        }
                        o.failing = Some(f.what.clone());
                        failure = Some(f);
                    }
                }
            }
            let Some(f) = failure else { return Ok(()) };
            if self.wait_signal(RETRY) {
                return Err(Stuck(f));
            }
        }
    }

    /// On SIGTERM, SIGHUP or SIGINT: write the complete lines the input holds now, then a
    /// partial line svlog already took out of the pipe (with a newline added), and exit 0.
    /// A partial line still in the pipe stays there for the next logger.
    fn shutdown(&mut self) -> Result<u8> {
        let ready = if self.epoll.is_some() {
            true
        } else {
            self.stdin_readable()
        };
        if ready {
            if let Ok(Fill::Data) = self.input.fill() {
                let len = self.input.complete_len();
                if len > 0 {
                    self.write_batch(len)?;
                }
            }
        }
        if self.input.held_partial() > 0 {
            self.input.terminate_partial();
            let len = self.input.data().len();
            self.write_batch(len)?;
        }
        self.close();
        Ok(0)
    }

    fn close(&mut self) {
        for o in &mut self.outputs {
            o.close();
        }
    }

    /// True once SIGTERM, SIGHUP or SIGINT arrived.
    fn check_signals(&mut self) -> bool {
        if !self.signalled {
            while let Ok(Some(_)) = self.signals.read_signal() {
                self.signalled = true;
            }
        }
        self.signalled
    }

    /// Sleeps until stdin may have something new or a signal arrives (or `timeout`).
    fn wait(&mut self, timeout: Option<Duration>) {
        let timeout = timeout
            .and_then(|t| PollTimeout::try_from(t).ok())
            .unwrap_or(PollTimeout::NONE);
        if let Some(epoll) = &self.epoll {
            let mut events = [EpollEvent::empty(); 2];
            let t: EpollTimeout = timeout;
            match epoll.wait(&mut events, t) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => libcustos::warn!("unable to wait on stdin: {}", e.desc()),
            }
        } else {
            let mut fds = [
                PollFd::new(stdin(), PollFlags::POLLIN),
                PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            ];
            let _ = poll(&mut fds, timeout);
        }
    }

    /// Peek mode, the pipe holds only the start of a line: sleep until more may have come.
    ///
    /// Every write into the pipe that completes wakes the edge-triggered epoll (Linux 5.16 and
    /// later), but a writer that blocks in the middle of a big write (the pipe full) wakes
    /// readers only if the pipe was empty when it started, and ours is not: it holds the
    /// partial line. So the sleep is also bounded, 50 us at first (the writer blocked
    /// mid-write refills the pipe at once after svlog consumed a batch), doubling up to 1 s
    /// while nothing comes.
    fn wait_partial(&mut self) {
        let Some(epoll) = &self.epoll else { return };
        let pause = TimeSpec::from_duration(self.partial_pause);
        self.partial_pause = (self.partial_pause * 2).min(PARTIAL_LAST);
        let mut fds = [
            PollFd::new(epoll.0.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
        ];
        if let Ok(n) = ppoll(&mut fds, Some(pause), None) {
            if n > 0
                && fds[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLIN))
            {
                // take the edge event off epoll's ready list
                let mut events = [EpollEvent::empty(); 2];
                let _ = epoll.wait(&mut events, EpollTimeout::ZERO);
            }
        }
    }

    /// Sleeps `timeout` or until a signal; true if one came.
    fn wait_signal(&mut self, timeout: Duration) -> bool {
        if self.check_signals() {
            return true;
        }
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, timeout);
        self.check_signals()
    }

    fn stdin_readable(&self) -> bool {
        let mut fds = [PollFd::new(stdin(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            && fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN))
    }
}
