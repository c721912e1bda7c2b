//! The message grammar: `PROG: fatal: ...`, `PROG: warning: ...`, `PROG: info: ...`,
//! `PROG: debug: ...`, one line each, each line one write(2) to stderr.
//!
//! PID 1 must never block on a stderr nobody reads, so init calls `use_nonblocking_stderr`:
//! messages then go through a fresh open of /proc/self/fd/2 with O_NONBLOCK (a new open file
//! description, so CMD's inherited stderr stays blocking), and a line that does not fit in the
//! pipe is dropped and counted. Lines up to PIPE_BUF bytes are written whole or not at all.

use std::io::Write;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;

use crate::error::Error;

static PROG: OnceLock<String> = OnceLock::new();
static VERBOSITY: AtomicU8 = AtomicU8::new(1);
static STDERR_FD: AtomicI32 = AtomicI32::new(2);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Sets the program name used as the prefix of every message (once; later calls are ignored).
pub fn set_prog(prog: &str) {
    let _ = PROG.set(prog.to_string());
}

pub fn prog() -> &'static str {
    PROG.get().map(String::as_str).unwrap_or("custos")
}

/// 0 errors only; 1 warnings (default); 2 info; 3 and more debug.
pub fn set_verbosity(level: u8) {
    VERBOSITY.store(level, Ordering::Relaxed);
}

pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// Messages from now on go through a non-blocking descriptor of their own (see module doc).
/// Only pipes and terminals can block; a regular file stays on fd 2 (a new open of it would
/// start at offset 0 and overwrite it). Without /proc, stays on the blocking fd 2.
pub fn use_nonblocking_stderr() {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::{fstat, Mode, SFlag};
    let kind = fstat(2).map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT);
    if !matches!(kind, Ok(k) if k == SFlag::S_IFIFO || k == SFlag::S_IFCHR) {
        return;
    }
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    if let Ok(fd) = open("/proc/self/fd/2", flags, Mode::empty()) {
        STDERR_FD.store(fd, Ordering::Relaxed);
    }
}

/// How many lines were dropped because stderr was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Writes `PROG: LEVEL: TEXT\n` in one write(2).
pub fn emit(level: &str, text: &str) {
    let mut line = String::with_capacity(prog().len() + level.len() + text.len() + 5);
    line.push_str(prog());
    line.push_str(": ");
    line.push_str(level);
    line.push_str(": ");
    // one message is one line, whatever the text holds
    for c in text.chars() {
        line.push(if c == '\n' { ' ' } else { c });
    }
    line.push('\n');
    write_line(STDERR_FD.load(Ordering::Relaxed), line.as_bytes());
}

fn write_line(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: fd is 2 or a descriptor this module opened and never closes.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let e = nix::errno::Errno::last();
            if e == nix::errno::Errno::EINTR {
                continue;
            }
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

pub fn fatal(text: &str) {
    emit("fatal", text);
}

pub fn warn(text: &str) {
    if verbosity() >= 1 {
        emit("warning", text);
    }
}

pub fn info(text: &str) {
    if verbosity() >= 2 {
        emit("info", text);
    }
}

pub fn debug(text: &str) {
    if verbosity() >= 3 {
        emit("debug", text);
    }
}

/// `PROG: usage: USAGE` and exit 100.
pub fn die_usage(usage: &str) -> ! {
    emit("usage", usage);
    std::process::exit(crate::exit::USAGE as i32)
}

/// Prints the error as fatal and exits with its code.
pub fn die(err: &Error) -> ! {
    fatal(&err.message);
    std::process::exit(err.code as i32)
}

#[macro_export]
macro_rules! fatal { ($($a:tt)*) => { $crate::msg::fatal(&format!($($a)*)) } }
#[macro_export]
macro_rules! warn { ($($a:tt)*) => { $crate::msg::warn(&format!($($a)*)) } }
#[macro_export]
macro_rules! info { ($($a:tt)*) => { if $crate::msg::verbosity() >= 2 { $crate::msg::info(&format!($($a)*)) } } }
#[macro_export]
macro_rules! debug { ($($a:tt)*) => { if $crate::msg::verbosity() >= 3 { $crate::msg::debug(&format!($($a)*)) } } }

/// Handles `--help` and `--version` the same way in every binary: prints to stdout, exits 0.
/// Call it with the program's first argument.
pub fn help_or_version(arg: Option<&std::ffi::OsStr>, help: &str) {
    match arg.and_then(|a| a.to_str()) {
        // a closed stdout (`--help | head -1`) is not worth a panic
        Some("--help") | Some("-h") => {
            let _ = writeln!(std::io::stdout(), "{help}");
            std::process::exit(0)
        }
        Some("--version") | Some("-V") => {
            let _ = writeln!(
                std::io::stdout(),
                "{} {}",
                prog(),
                env!("CARGO_PKG_VERSION")
            );
            std::process::exit(0)
        }
        _ => {}
    }
}
