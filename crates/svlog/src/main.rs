//! svlog: reads lines on stdin and writes them per a logging script of s6-log directives
//! (SPEC section 5; docs/svlog.md).
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod input;
mod logdir;
mod logger;
mod output;
mod script;
mod timestamp;

use std::ffi::OsString;

const PROG: &str = "svlog";
const USAGE: &str = "svlog [ nN | sBYTES | t | T | 1 | DIR ]...";
const HELP: &str = "usage: svlog [ nN | sBYTES | t | T | 1 | DIR ]...

Reads lines on stdin and writes them per the logging script, one directive an argument:
  nN       keep at most N archives in the directories that follow (default 10)
  sBYTES   rotate current before it would pass BYTES bytes (default 99999)
  t        prefix the next action's lines with a TAI64N timestamp
  T        prefix the next action's lines with an ISO 8601 UTC timestamp
  1        copy the lines to stdout
  DIR      log into DIR/current and its archives DIR/@<TAI64N>.s (DIR starts with / or .)

Exits 0 at end of input or on SIGTERM/SIGHUP/SIGINT, 100 on an invalid script,
111 when a directory cannot be set up. See docs/svlog.md.";

fn main() {
    libcustos::msg::set_prog(PROG);
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    libcustos::msg::help_or_version(args.first().map(OsString::as_os_str), HELP);
    if args.is_empty() {
        libcustos::msg::die_usage(USAGE);
    }
    let actions = match script::parse(&args) {
        Ok(a) => a,
        Err(e) => libcustos::msg::die(&e),
    };
    match logger::run(actions) {
        Ok(code) => std::process::exit(i32::from(code)),
        Err(e) => libcustos::msg::die(&e),
    }
}
