//! setuidgid: run a program as another user, optionally keeping some capabilities.
//!
//! Resolves ACCOUNT (libcustos::account), changes identity in the order of s6-applyuidgid
//! (`privs`), then execs PROG through execvp. Nothing is changed before everything given on
//! the command line has been checked.
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod capabilities;
mod privs;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use libcustos::error::{errno_of, Error};
use libcustos::{account, exit, msg};

const PROG: &str = "setuidgid";
const USAGE: &str = "setuidgid [--caps CAP,...] ACCOUNT PROG [ARGS...]";
const HELP: &str = "usage: setuidgid [--caps CAP,...] ACCOUNT PROG [ARGS...]

Runs PROG as ACCOUNT: sets the supplementary groups, the gid, then the uid, and execs PROG
(searched in PATH).

ACCOUNT:
  user          a user of /etc/passwd, with its primary group and its /etc/group groups
  user:group    that user, with that group (names or numbers) and the user's groups
  uid:gid       exactly those ids, and no other group (no passwd entry needed)
  uid           that uid; its passwd entry's groups if it has one, else gid = uid

Options:
  --caps CAP,...  keep exactly these capabilities (effective, permitted, inheritable and
                  ambient, so PROG and its children have them); every other capability is
                  dropped, bounding set included. Names are case-insensitive, with or
                  without cap_: cap_net_bind_service, NET_BIND_SERVICE
  --help          print this help and exit
  --version       print the version and exit

Exit codes: 100 wrong usage or unknown account or capability, 111 a system call failed,
126 PROG cannot be executed, 127 PROG not found; otherwise PROG's own.";

struct Args {
    caps: Option<String>,
    account: String,
    prog: OsString,
    args: Vec<OsString>,
}

fn main() {
    msg::set_prog(PROG);
    let args = parse_args();
    let keep = args
        .caps
        .as_deref()
        .map(capabilities::parse)
        .transpose()
        .unwrap_or_else(|e| msg::die(&e));
    let account = account_of(&args.account).unwrap_or_else(|e| msg::die(&e));
    if let Err(e) = privs::become_account(&account, keep.as_deref()) {
        msg::die(&e)
    }
    // Command::exec searches PATH like execvp and puts SIGPIPE back to SIG_DFL first.
    let err = std::process::Command::new(&args.prog)
        .args(&args.args)
        .exec();
    let errno = errno_of(&err);
    let e = Error::sys(format_args!("exec {}", args.prog.to_string_lossy()), errno);
    libcustos::fatal!("{}", e.message);
    std::process::exit(exit::exec_failure(errno) as i32)
}

/// ACCOUNT as setuidgid accepts it: no `,uid:gid` fallback.
fn account_of(s: &str) -> libcustos::error::Result<account::Account> {
    let spec = account::parse(s)
        .ok()
        .filter(|spec| spec.fallback.is_none())
        .ok_or_else(|| {
            Error::invalid(format!(
                "invalid account: {s} (expected user, user:group, uid:gid or uid)"
            ))
        })?;
    spec.resolve(&account::System)
}

fn parse_args() -> Args {
    use lexopt::prelude::*;
    msg::help_or_version(std::env::args_os().nth(1).as_deref(), HELP);
    let mut parser = lexopt::Parser::from_env();
    let mut caps = None;
    let account = loop {
        match parser.next() {
            Ok(Some(Long("caps"))) => match parser.value().map(OsString::into_string) {
                Ok(Ok(v)) => caps = Some(v),
                Ok(Err(v)) => msg::die(&Error::invalid(format!(
                    "--caps: invalid capability list: {}",
                    v.to_string_lossy()
                ))),
                Err(_) => msg::die_usage(USAGE),
            },
            Ok(Some(Long(o @ ("help" | "version")))) => {
                msg::help_or_version(Some(std::ffi::OsStr::new(&format!("--{o}"))), HELP)
            }
            Ok(Some(Value(v))) => match v.into_string() {
                Ok(s) => break s,
                Err(v) => msg::die(&Error::invalid(format!(
                    "unknown account: {}",
                    v.to_string_lossy()
                ))),
            },
            _ => msg::die_usage(USAGE),
        }
    };
    let mut rest = parser
        .raw_args()
        .map(|r| r.collect::<Vec<OsString>>())
        .unwrap_or_default();
    if rest.is_empty() {
        msg::die_usage(USAGE)
    }
    let prog = rest.remove(0);
    Args {
        caps,
        account,
        prog,
        args: rest,
    }
}
