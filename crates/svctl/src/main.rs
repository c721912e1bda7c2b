//! svctl: the control and status tool of custos, for people (`docker exec c svctl status`)
//! and for probes (`svctl check`).
//!
//! It talks to the supervision tree only through the files of SPEC section 2: it reads each
//! service's `supervise/status` and `supervise/lock`, writes command bytes to its
//! `supervise/control` FIFO, and writes to init's `/run/custos/control` for `halt`. Arguments
//! are parsed (`args`) and every NAME resolved (`target`) before anything is sent.
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod args;
mod check;
mod control;
mod halt;
mod json;
mod status;
mod target;
mod wait;

use std::io::Write;

use libcustos::error::{Error, Result};
use libcustos::{exit, msg};

use crate::args::{ArgError, Cmd};
use crate::target::Roots;

const PROG: &str = "svctl";
const USAGE: &str = "svctl status [--json] [NAME...] | up|down|once|restart|pause|cont NAME... | \
kill [-s SIG] NAME... | wait [--up|--ready|--down|--finished] [--timeout DURATION] NAME... | \
check [NAME...] | halt [CODE]";
const HELP: &str = "usage: svctl SUBCOMMAND [OPTIONS] [ARGS...]

Controls and reports on the services of a custos container.

Subcommands:
  status [--json] [NAME...]  state of every service (or of those named): up/down/finishing,
                             pid, time in that state, readiness, wanted up or down, last exit
                             code or signal, restarts, paused
      --json                 one JSON document for tools (schema in docs/svctl.md)
  up NAME...                 start, and restart whenever it exits (s6-svc -u)
  down NAME...               stop with its down signal, and keep it down (s6-svc -d)
  once NAME...               start, but do not restart it when it exits (s6-svc -o)
  restart NAME...            send its down signal; it starts again (s6-svc -r)
  kill [-s SIG] NAME...      send a signal to the service (s6-svc -s)
      -s, --signal SIG       the signal, by name or number (default TERM)
  pause NAME...              send SIGSTOP (s6-svc -p)
  cont NAME...               send SIGCONT (s6-svc -c)
  wait [COND] [--timeout DURATION] NAME...
                             wait until every service named is in state COND (s6-svwait)
      -u, --up               up (default)
      -U, --ready            up and ready (ready when up, without notification-fd)
      -d, --down             not up (down, or its finish script running)
      -D, --finished         down and its finish script done
      -t, --timeout DURATION give up after DURATION: milliseconds (3000) or 3s, 500ms, 1m;
                             0 means no limit (the default)
  check [NAME...]            health check: every service wanted up is up (and ready where
                             it declares readiness); prints each unhealthy one on stdout
  halt [CODE]                stop the container gracefully, exiting with CODE (0-255)

  --help                     print this help and exit
  --version                  print the version and exit

NAME is a name under /run/service (nginx, nginx/log) or a path to a service folder.
status, wait and check work for any user; the others need the owner of the supervision tree.

Exit codes: 0 success; 1 check: unhealthy; 99 wait: timed out; 100 wrong usage, invalid input,
unknown or unsupervised service, or permission denied; 111 a system call failed.";

/// Writes `text` to stdout in one go. A reader that went away (`svctl status | head -1`) is
/// not an error.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("write to stdout", &e))
        }
        _ => Ok(()),
    }
}

fn run(cmd: Cmd, roots: &Roots) -> Result<u8> {
    match cmd {
        Cmd::Help => print(&format!("{HELP}\n")).map(|()| exit::OK),
        Cmd::Version => {
            print(&format!("{PROG} {}\n", env!("CARGO_PKG_VERSION"))).map(|()| exit::OK)
        }
        Cmd::Status { json, names } => status::run(json, &names, roots),
        Cmd::Control { command, names } => control::run(command, &names, roots),
        Cmd::Wait {
            cond,
            timeout,
            names,
        } => wait::run(cond, timeout, &names, roots),
        Cmd::Check { names } => check::run(&names, roots),
        Cmd::Halt { code } => halt::run(code),
    }
}

fn main() {
    msg::set_prog(PROG);
    let cmd = match args::parse(std::env::args_os().skip(1)) {
        Ok(cmd) => cmd,
        Err(ArgError::Usage) => msg::die_usage(USAGE),
        Err(ArgError::Invalid(e)) => msg::die(&e),
    };
    match run(cmd, &Roots::system()) {
        Ok(code) => std::process::exit(code as i32),
        Err(e) => msg::die(&e),
    }
}
