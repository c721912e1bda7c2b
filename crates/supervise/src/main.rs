//! supervise: the supervisor of one service, started by /init for each live service folder
//! (`/run/service/NAME`, and `/run/service/NAME/log` for its logger). It starts `run`, restarts
//! it when it ends (after `finish`, at most once a second), obeys the one-byte commands
//! written to `supervise/control`, and keeps `supervise/status` up to date, as s6-supervise
//! does. Not meant to be called by hand.
//!
//! Modules: `state` (the pure state machine), `supervisor` (the event loop that performs its
//! actions), `child` (spawning run and finish), `adopt` (taking over what a killed supervise
//! left running), `prefix` (the `[NAME] ` log prefix).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod adopt;
mod child;
mod prefix;
mod state;
mod supervisor;

use std::os::fd::RawFd;
use std::path::PathBuf;

use libcustos::msg;

const PROG: &str = "supervise";
const USAGE: &str =
    "supervise [--name NAME] [--hold] [--clean-env] [--stdin-fd N] [--stdout-fd N] \
[--stderr-fd N] [--prefix-fds R1,R2] [--run-arg ARG]... [--verbosity N] DIR";
const HELP: &str = "supervise [OPTIONS] DIR

Supervises the service in the live service folder DIR (started by /init; not meant to be
called by hand): runs DIR/run, restarts it when it ends, obeys DIR/supervise/control and
writes DIR/supervise/status.

Options:
  --name NAME          name used in messages and as the log prefix (default: DIR's last
                       component, NAME/log for a logger)
  --hold               start wanted down, whatever DIR/down says, and wait for a `u`
  --clean-env          run and finish get PATH and DIR/env/ only (CUSTOS_KEEP_ENV=0)
  --stdin-fd N         give descriptor N to run and finish as their stdin
  --stdout-fd N        ... as their stdout
  --stderr-fd N        ... as their stderr
  --prefix-fds R1,R2   read lines from R1 and R2 and write them as `[NAME] line` to
                       supervise's stdout and stderr (CUSTOS_LOG_PREFIX=1)
  --run-arg ARG        an argument run gets before any other (repeatable; init's
                       catch-all logger runs svlog this way)
  --verbosity N        0 errors, 1 warnings (default), 2 info, 3 debug

Exit codes: 0 after `x` (or SIGTERM); 100 wrong usage, invalid DIR, already supervised;
111 a system call failed while starting.";

fn main() {
    msg::set_prog(PROG);
    msg::help_or_version(std::env::args_os().nth(1).as_deref(), HELP);
    let opts = match parse() {
        Ok(o) => o,
        Err(text) => {
            libcustos::fatal!("{text}");
            msg::die_usage(USAGE)
        }
    };
    // like init: a stderr nobody reads must never freeze supervision (lines are dropped)
    msg::use_nonblocking_stderr();
    if let Err(e) = supervisor::run(opts) {
        msg::die(&e);
    }
    std::process::exit(0)
}

fn parse() -> Result<supervisor::Options, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let mut name: Option<String> = None;
    let mut dir: Option<PathBuf> = None;
    let mut hold = false;
    let mut clean_env = false;
    let mut run_args = Vec::new();
    let mut stdio: [Option<RawFd>; 3] = [None; 3];
    let mut prefix_fds = None;
    let fd = |parser: &mut lexopt::Parser, flag: &str| -> Result<RawFd, String> {
        let v = parser.value().map_err(|e| e.to_string())?;
        let t = v.to_string_lossy().to_string();
        t.parse::<RawFd>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{flag}: invalid descriptor {t:?}"))
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("name") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                name = Some(v.to_string_lossy().to_string());
            }
            Long("hold") => hold = true,
            Long("clean-env") => clean_env = true,
            Long("run-arg") => run_args.push(parser.value().map_err(|e| e.to_string())?),
            Long("stdin-fd") => stdio[0] = Some(fd(&mut parser, "--stdin-fd")?),
            Long("stdout-fd") => stdio[1] = Some(fd(&mut parser, "--stdout-fd")?),
            Long("stderr-fd") => stdio[2] = Some(fd(&mut parser, "--stderr-fd")?),
            Long("prefix-fds") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                let t = v.to_string_lossy().to_string();
                let pair = t
                    .split_once(',')
                    .and_then(|(a, b)| Some((a.parse::<RawFd>().ok()?, b.parse::<RawFd>().ok()?)));
                match pair {
                    Some((a, b)) if a >= 0 && b >= 0 => prefix_fds = Some((a, b)),
                    _ => {
                        return Err(format!(
                            "--prefix-fds: invalid value {t:?} (expected R1,R2)"
                        ))
                    }
                }
            }
            Long("verbosity") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                let t = v.to_string_lossy().to_string();
                let n = t
                    .parse::<u8>()
                    .map_err(|_| format!("--verbosity: invalid value {t:?}"))?;
                msg::set_verbosity(n);
            }
            Value(v) if dir.is_none() => dir = Some(PathBuf::from(v)),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let dir = dir.ok_or_else(|| "missing DIR".to_string())?;
    let dir = std::path::absolute(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = name.unwrap_or_else(|| default_name(&dir));
    Ok(supervisor::Options {
        dir,
        name,
        hold,
        stdio,
        prefix_fds,
        clean_env,
        run_args,
    })
}

/// DIR's last component, or `NAME/log` for a logger's folder.
fn default_name(dir: &std::path::Path) -> String {
    let last = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| dir.display().to_string());
    match dir.parent().and_then(|p| p.file_name()) {
        Some(parent) if last == "log" => format!("{}/log", parent.to_string_lossy()),
        _ => last,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            default_name(std::path::Path::new("/run/service/web")),
            "web"
        );
        assert_eq!(
            default_name(std::path::Path::new("/run/service/web/log")),
            "web/log"
        );
    }
}
