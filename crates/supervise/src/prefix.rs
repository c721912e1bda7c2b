//! `--prefix-fds R1,R2` (CUSTOS_LOG_PREFIX=1): the service writes into pipes held by init;
//! supervise reads their other ends and writes every complete line as `[NAME] line\n` to its
//! own fd 1 (from R1) and fd 2 (from R2), one write(2) per line, so lines from several
//! services never cut into each other.
//!
//! A partial line waits in a buffer for its newline. A line longer than `MAX_LINE` without a
//! newline is written out at that size as a line of its own (and what follows it as another),
//! so a service that never writes a newline cannot make supervise grow without bound.

use std::os::fd::RawFd;

use nix::errno::Errno;

/// The longest line kept whole: 1 MiB.
pub const MAX_LINE: usize = 1 << 20;

/// The pure part: bytes in, prefixed lines out.
#[derive(Debug)]
pub struct LineBuffer {
    prefix: Vec<u8>,
    partial: Vec<u8>,
    max: usize,
}

impl LineBuffer {
    pub fn new(name: &str, max: usize) -> LineBuffer {
        LineBuffer {
            prefix: format!("[{name}] ").into_bytes(),
            partial: Vec::new(),
            max,
        }
    }

    /// Adds `bytes`; returns the complete lines, each prefixed and ending in a newline.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.take_line(&rest[..i], &mut out);
                    rest = &rest[i + 1..];
                }
                None => {
                    let room = self.max.saturating_sub(self.partial.len());
                    if rest.len() <= room {
                        self.partial.extend_from_slice(rest);
                        rest = &[];
                    } else {
                        // the cap: write what fills it as a line of its own
                        self.take_line(&rest[..room], &mut out);
                        rest = &rest[room..];
                    }
                }
            }
        }
        out
    }

    /// At end of file: the partial line, if any, with a newline added.
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        if self.partial.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        self.take_line(&[], &mut out);
        out.pop()
    }

    fn take_line(&mut self, tail: &[u8], out: &mut Vec<Vec<u8>>) {
        let mut line = Vec::with_capacity(self.prefix.len() + self.partial.len() + tail.len() + 1);
        line.extend_from_slice(&self.prefix);
        line.append(&mut self.partial);
        line.extend_from_slice(tail);
        line.push(b'\n');
        out.push(line);
    }
}

/// One prefixed stream: a pipe read end and the descriptor its lines go to.
#[derive(Debug)]
pub struct Stream {
    pub from: RawFd,
    pub to: RawFd,
    pub buf: LineBuffer,
    /// The pipe reached end of file (init closed the last write end): no more polling.
    pub eof: bool,
}

impl Stream {
    pub fn new(name: &str, from: RawFd, to: RawFd) -> Stream {
        set_nonblocking(from);
        Stream {
            from,
            to,
            buf: LineBuffer::new(name, MAX_LINE),
            eof: false,
        }
    }

    /// Reads what is there (the fd is non-blocking) and writes out every complete line.
    pub fn pump(&mut self) {
        let mut chunk = [0u8; 65536];
        // bounded, so one chatty service cannot starve the supervision loop
        for _ in 0..16 {
            // SAFETY: reading into a buffer we own, from a descriptor we were given.
            let n = unsafe { libc::read(self.from, chunk.as_mut_ptr().cast(), chunk.len()) };
            if n < 0 {
                match Errno::last() {
                    Errno::EINTR => continue,
                    Errno::EAGAIN => return,
                    _ => {
                        self.end();
                        return;
                    }
                }
            }
            if n == 0 {
                self.end();
                return;
            }
            for line in self.buf.push(&chunk[..n as usize]) {
                write_line(self.to, &line);
            }
        }
    }

    fn end(&mut self) {
        if let Some(line) = self.buf.flush() {
            write_line(self.to, &line);
        }
        self.eof = true;
    }
}

/// One write(2) per line; blocking, as the service's own write would have been. Continues
/// after a short write (a signal), so nothing is lost.
fn write_line(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing a buffer we own to our own stdout/stderr.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we were given; no memory involved.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn lines(v: Vec<Vec<u8>>) -> Vec<String> {
        v.into_iter()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .collect()
    }

    #[test]
    fn whole_lines_are_prefixed() {
        let mut b = LineBuffer::new("web", MAX_LINE);
        assert_eq!(lines(b.push(b"one\ntwo\n")), ["[web] one\n", "[web] two\n"]);
        assert_eq!(lines(b.push(b"\n")), ["[web] \n"]);
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let mut b = LineBuffer::new("a", MAX_LINE);
        assert!(b.push(b"hel").is_empty());
        assert!(b.push(b"lo, ").is_empty());
        assert_eq!(lines(b.push(b"world\nnext")), ["[a] hello, world\n"]);
        assert_eq!(
            b.flush().map(|l| String::from_utf8_lossy(&l).into_owned()),
            Some("[a] next\n".into())
        );
        assert_eq!(b.flush(), None);
    }

    #[test]
    fn long_lines_stay_whole_up_to_the_cap() {
        let mut b = LineBuffer::new("a", MAX_LINE);
        let long = vec![b'x'; 200_000];
        assert!(b.push(&long).is_empty());
        let out = b.push(b"\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), 4 + 200_000 + 1);
        // past the cap: cut at the cap
        let mut b = LineBuffer::new("a", 10);
        assert_eq!(lines(b.push(b"0123456789")), Vec::<String>::new());
        assert_eq!(
            lines(b.push(b"\n")),
            ["[a] 0123456789\n"],
            "exactly the cap: still whole"
        );
        assert_eq!(lines(b.push(b"01234")), Vec::<String>::new());
        assert_eq!(lines(b.push(b"56789abc")), ["[a] 0123456789\n"]);
        assert_eq!(lines(b.push(b"\n")), ["[a] abc\n"]);
    }
}
