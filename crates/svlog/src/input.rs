//! Standard input, read so that a SIGKILL loses nothing that was in the pipe.
//!
//! When stdin is a pipe (the normal case: supervise holds the pipe between a service and its
//! logger, so it outlives both), svlog does not read it: it *peeks*. tee(2) copies what the
//! pipe holds into a private pipe without consuming it; svlog reads that copy, writes every
//! complete line to every destination, and only then consumes exactly those bytes from stdin.
//! So bytes leave the input pipe only after they are written. A partial line stays in the
//! pipe until its newline arrives; a logger killed at any moment leaves every unwritten byte in
//! the pipe for the next one. Killed between the write and the consume, the next logger writes
//! that batch again: delivery is at least once, and the window is two system calls wide.
//!
//! Waiting for the rest of a partial line must not spin on a pipe that stays readable, so the
//! wait is an edge-triggered epoll, bounded by a short, growing timeout (logger.rs,
//! `wait_partial`, says why).
//!
//! A line longer than half the pipe's capacity cannot wait in the pipe (the writer would block
//! on a full pipe): its beginning is read into memory (`held`), and only those bytes are at
//! risk on SIGKILL. When stdin is not a pipe (a file, a terminal, a socket), svlog reads it,
//! keeping the partial line in memory, and writes every complete line before reading again.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, tee, FcntlArg, OFlag, SpliceFFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{fstat, SFlag};

/// What a fill brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Fill {
    /// `data()` holds something new (maybe no complete line yet).
    Data,
    /// Nothing to read now.
    Again,
    /// End of input: no writer left and nothing in the pipe.
    Eof,
}

enum Mode {
    Peek {
        copy_r: OwnedFd,
        copy_w: OwnedFd,
        capacity: usize,
    },
    Read,
}

pub struct Input {
    mode: Mode,
    /// Peek mode: `held` bytes already consumed from the pipe, then a copy of what the pipe
    /// holds. Read mode: bytes read and not yet written.
    buf: Vec<u8>,
    held: usize,
    /// `buf` ends with a newline svlog added (final partial line): not in the pipe.
    added_newline: bool,
    scratch: Vec<u8>,
}

const READ_SIZE: usize = 256 * 1024;
/// How big the private pipe (and so a batch) may be.
const COPY_PIPE_SIZE: i32 = 1 << 20;

fn stdin() -> BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the whole life of the process; it is only borrowed.
    unsafe { BorrowedFd::borrow_raw(0) }
}

impl Input {
    pub fn new() -> Input {
        let mode = Self::peek_mode().unwrap_or(Mode::Read);
        Input {
            mode,
            buf: Vec::with_capacity(READ_SIZE),
            held: 0,
            added_newline: false,
            scratch: Vec::new(),
        }
    }

    fn peek_mode() -> Option<Mode> {
        let st = fstat(0).ok()?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFIFO {
            return None;
        }
        let (copy_r, copy_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).ok()?;
        let _ = fcntl(copy_w.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(COPY_PIPE_SIZE));
        let copy_size = fcntl(copy_w.as_raw_fd(), FcntlArg::F_GETPIPE_SZ).ok()? as usize;
        // A bigger input pipe means bigger batches, a writer that blocks less often (see
        // logger.rs, wait_partial) and more lines kept safe in the pipe. Best effort: an
        // unprivileged user may not go past /proc/sys/fs/pipe-max-size.
        let in_size = fcntl(0, FcntlArg::F_GETPIPE_SZ).ok()? as usize;
        if in_size < COPY_PIPE_SIZE as usize {
            let _ = fcntl(0, FcntlArg::F_SETPIPE_SZ(COPY_PIPE_SIZE));
        }
        let in_size = fcntl(0, FcntlArg::F_GETPIPE_SZ).ok()? as usize;
        // tee works on this pipe? (it always does on Linux pipes and FIFOs)
        match tee(stdin(), copy_w.as_fd(), 0, SpliceFFlags::SPLICE_F_NONBLOCK) {
            Ok(_) | Err(Errno::EAGAIN) => {}
            Err(_) => return None,
        }
        Some(Mode::Peek {
            copy_r,
            copy_w,
            capacity: in_size.min(copy_size),
        })
    }

    pub fn is_peeking(&self) -> bool {
        matches!(self.mode, Mode::Peek { .. })
    }

    /// Everything available: complete lines, then maybe a partial one.
    pub fn data(&self) -> &[u8] {
        &self.buf
    }

    /// The length of the complete lines at the start of `data()`.
    pub fn complete_len(&self) -> usize {
        self.buf[self.held..]
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|i| self.held + i + 1)
            .unwrap_or(0)
    }

    /// Gets what stdin holds, without blocking in peek mode; read mode blocks (the caller
    /// polls first).
    pub fn fill(&mut self) -> Result<Fill, Errno> {
        match &self.mode {
            Mode::Peek {
                copy_r,
                copy_w,
                capacity,
            } => {
                // a fresh copy of the pipe's contents after what is held
                self.buf.truncate(self.held);
                self.added_newline = false;
                let n = match tee(
                    stdin(),
                    copy_w.as_fd(),
                    *capacity,
                    SpliceFFlags::SPLICE_F_NONBLOCK,
                ) {
                    Ok(0) => return Ok(Fill::Eof),
                    Ok(n) => n,
                    Err(Errno::EAGAIN) => return Ok(Fill::Again),
                    Err(Errno::EINTR) => return Ok(Fill::Again),
                    Err(e) => return Err(e),
                };
                let start = self.buf.len();
                self.buf.resize(start + n, 0);
                let mut got = 0;
                while got < n {
                    match nix::unistd::read(copy_r.as_raw_fd(), &mut self.buf[start + got..]) {
                        Ok(0) => break,
                        Ok(k) => got += k,
                        Err(Errno::EINTR) => continue,
                        Err(e) => return Err(e),
                    }
                }
                self.buf.truncate(start + got);
                Ok(Fill::Data)
            }
            Mode::Read => {
                let start = self.buf.len();
                self.buf.resize(start + READ_SIZE, 0);
                let r = nix::unistd::read(0, &mut self.buf[start..]);
                match r {
                    Ok(0) => {
                        self.buf.truncate(start);
                        Ok(Fill::Eof)
                    }
                    Ok(n) => {
                        self.buf.truncate(start + n);
                        Ok(Fill::Data)
                    }
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {
                        self.buf.truncate(start);
                        Ok(Fill::Again)
                    }
                    Err(e) => {
                        self.buf.truncate(start);
                        Err(e)
                    }
                }
            }
        }
    }

    /// The first `len` bytes of `data()` are written: drop them (consuming them from the pipe
    /// in peek mode).
    pub fn consume(&mut self, len: usize) -> Result<(), Errno> {
        match self.mode {
            Mode::Peek { .. } => {
                let mut from_pipe = len.saturating_sub(self.held);
                if self.added_newline && len == self.buf.len() {
                    from_pipe = from_pipe.saturating_sub(1);
                }
                self.discard_from_pipe(from_pipe)?;
                // what is left of the copy is still in the pipe: peek it again next time
                self.buf.clear();
                self.held = 0;
            }
            Mode::Read => {
                self.buf.drain(..len.min(self.buf.len()));
            }
        }
        self.added_newline = false;
        Ok(())
    }

    /// Peek mode: no newline in sight and the copy fills half the pipe or more, so the writer
    /// may soon block: take the partial line out of the pipe into memory.
    /// Also when the pipe holds more than the peek could copy (the copy is limited by the
    /// private pipe's slots too): a line that long does not fit the pipe either.
    pub fn must_hold(&self) -> bool {
        match self.mode {
            Mode::Peek { capacity, .. } => {
                let peeked = self.buf.len() - self.held;
                peeked >= capacity / 2 || pipe_bytes().is_some_and(|n| n > peeked)
            }
            Mode::Read => false,
        }
    }

    pub fn hold(&mut self) -> Result<(), Errno> {
        let n = self.buf.len() - self.held;
        self.discard_from_pipe(n)?;
        self.held = self.buf.len();
        Ok(())
    }

    /// Bytes of a partial line held in memory (consumed from the pipe in peek mode).
    pub fn held_partial(&self) -> usize {
        match self.mode {
            Mode::Peek { .. } => self.held,
            Mode::Read => self.buf.len(),
        }
    }

    /// Reads and drops `n` bytes from stdin: they are in the pipe, so this does not block.
    fn discard_from_pipe(&mut self, n: usize) -> Result<(), Errno> {
        let mut left = n;
        self.scratch.resize(left.min(READ_SIZE), 0);
        while left > 0 {
            let want = left.min(self.scratch.len());
            match nix::unistd::read(0, &mut self.scratch[..want]) {
                Ok(0) => return Err(Errno::EIO),
                Ok(k) => left -= k,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Peek mode: no writer is left on the pipe (what it holds is all there will be).
    pub fn writers_gone(&self) -> bool {
        let mut fds = [PollFd::new(stdin(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
            Err(_) => false,
        }
    }

    /// Adds the newline a final partial line lacks.
    pub fn terminate_partial(&mut self) {
        if self.buf.last().is_some_and(|&b| b != b'\n') {
            self.buf.push(b'\n');
            self.added_newline = true;
        }
    }
}

/// How many bytes stdin (a pipe) holds: FIONREAD.
fn pipe_bytes() -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD on fd 0 writes one int through the pointer, which points to `n`.
    let r = unsafe { libc::ioctl(0, libc::FIONREAD, &mut n as *mut libc::c_int) };
    (r == 0 && n >= 0).then_some(n as usize)
}
