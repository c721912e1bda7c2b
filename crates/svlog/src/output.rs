//! One action of the script: where its copy of the lines goes, with its timestamps.
//!
//! Lines are formatted into `pending` (prefixes and all) and written with as few write(2)
//! calls as possible: one per batch, or one per file when the batch crosses a rotation. The
//! rotation point is always a line boundary: a line goes whole into the file that has room
//! for it; a line longer than `sBYTES` goes whole into an empty `current`, which is rotated
//! before the next line. A short write (disk full, signal) leaves the rest of its line for the
//! same file: rotation never happens in the middle of a line.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::logdir::{Failure, LogDir};
use crate::script::Stamp;
use crate::timestamp::Timestamp;

pub enum Sink {
    Stdout,
    Dir(LogDir),
}

pub struct Output {
    pub sink: Sink,
    stamp: Stamp,
    /// Formatted lines not yet written, each ending with a newline.
    pending: Vec<u8>,
    /// How much of `pending` is written.
    done: usize,
    /// The last write stopped inside a line.
    mid_line: bool,
    /// Stdout went away (EPIPE): stop copying there.
    disabled: bool,
    /// The failure being retried, to warn once per streak.
    pub failing: Option<String>,
}

impl Output {
    pub fn new(sink: Sink, stamp: Stamp) -> Output {
        Output {
            sink,
            stamp,
            pending: Vec::new(),
            done: 0,
            mid_line: false,
            disabled: false,
            failing: None,
        }
    }

    pub fn name(&self) -> String {
        match &self.sink {
            Sink::Stdout => "stdout".to_string(),
            Sink::Dir(d) => d.path().display().to_string(),
        }
    }

    /// Queues every line of `lines` (complete lines: it ends with a newline) with this
    /// action's prefixes, timestamped `now`. `prefix` is scratch space for the caller to reuse.
    pub fn queue(&mut self, lines: &[u8], now: Timestamp, prefix: &mut Vec<u8>) {
        if self.disabled || lines.is_empty() {
            return;
        }
        if !self.stamp.tai64n && !self.stamp.iso8601 {
            self.pending.extend_from_slice(lines);
            return;
        }
        prefix.clear();
        if self.stamp.tai64n {
            now.push_tai64n(prefix);
            prefix.push(b' ');
        }
        if self.stamp.iso8601 {
            now.push_iso8601(prefix);
            prefix.push(b' ');
        }
        self.pending
            .reserve(lines.len() + prefix.len() * (lines.len() / 16 + 1));
        for line in lines.split_inclusive(|&b| b == b'\n') {
            self.pending.extend_from_slice(prefix);
            self.pending.extend_from_slice(line);
        }
    }

    /// Writes everything pending. On failure, what was written stays written and the rest is
    /// kept for the next call.
    pub fn flush(&mut self) -> Result<(), Failure> {
        if self.disabled {
            self.pending.clear();
            self.done = 0;
            return Ok(());
        }
        while self.done < self.pending.len() {
            let n = match &mut self.sink {
                Sink::Stdout => match write_stdout(&self.pending[self.done..]) {
                    Ok(n) => n,
                    Err(Errno::EPIPE) => {
                        libcustos::warn!(
                            "unable to write to stdout: {} (no longer copying lines there)",
                            Errno::EPIPE.desc()
                        );
                        self.disabled = true;
                        break;
                    }
                    Err(errno) => {
                        return Err(Failure {
                            what: "write to stdout".to_string(),
                            errno,
                        })
                    }
                },
                Sink::Dir(dir) => {
                    let rest = &self.pending[self.done..];
                    let end = if self.mid_line {
                        // the rest of a line goes to the file that has its start
                        line_end(rest, 0)
                    } else {
                        let room = dir.max_size().saturating_sub(dir.size());
                        if rest.len() as u64 <= room {
                            rest.len()
                        } else {
                            let window = &rest[..room as usize];
                            match window.iter().rposition(|&b| b == b'\n') {
                                Some(i) => i + 1,
                                None if dir.size() == 0 => line_end(rest, room as usize),
                                None => {
                                    dir.rotate()?;
                                    continue;
                                }
                            }
                        }
                    };
                    dir.write(&rest[..end])?
                }
            };
            self.done += n;
            self.mid_line = self.pending[self.done - 1] != b'\n';
        }
        self.pending.clear();
        self.done = 0;
        self.mid_line = false;
        Ok(())
    }

    /// On a clean exit.
    pub fn close(&mut self) {
        if let Sink::Dir(d) = &mut self.sink {
            d.close();
        }
    }
}

/// The length of the first line of `bytes` that ends at or after `from`.
fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| from + i + 1)
        .unwrap_or(bytes.len())
}

fn write_stdout(bytes: &[u8]) -> Result<usize, Errno> {
    // SAFETY: fd 1 stays open for the whole life of the process; it is only borrowed here.
    let fd = unsafe { BorrowedFd::borrow_raw(1) };
    loop {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            // a non-blocking stdout someone gave us: wait until it drains
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
}
