//! The command line: `svctl SUBCOMMAND [OPTIONS] [ARGS...]`, parsed into a `Cmd` and nothing
//! done yet, so every argument is checked before anything is read or sent.

use std::ffi::OsString;
use std::time::Duration;

use libcustos::control::Command;
use libcustos::error::Error;
use libcustos::settings::parse_duration;
use libcustos::signal;
use nix::sys::signal::Signal;

use crate::halt;
use crate::wait::Condition;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Help,
    Version,
    Status {
        json: bool,
        names: Vec<String>,
    },
    /// up, down, once, restart, kill, pause, cont.
    Control {
        command: Command,
        names: Vec<String>,
    },
    Wait {
        cond: Condition,
        timeout: Option<Duration>,
        names: Vec<String>,
    },
    Check {
        names: Vec<String>,
    },
    Halt {
        code: Option<u8>,
    },
}

/// Why the command line was refused (both exit 100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// Wrong usage: print the usage line.
    Usage,
    /// A value is invalid: print the message.
    Invalid(Error),
}

impl From<lexopt::Error> for ArgError {
    fn from(_: lexopt::Error) -> ArgError {
        ArgError::Usage
    }
}

fn text(v: OsString) -> Result<String, ArgError> {
    v.into_string().map_err(|v| {
        ArgError::Invalid(Error::invalid(format!(
            "{}: not valid UTF-8",
            v.to_string_lossy()
        )))
    })
}

fn invalid(e: Error) -> ArgError {
    ArgError::Invalid(e)
}

/// `--timeout`: milliseconds or a human duration; 0 means no limit (as s6-svwait -t0).
pub fn parse_timeout(t: &str) -> Result<Option<Duration>, Error> {
    let d = parse_duration(t).map_err(|e| Error::invalid(format!("--timeout: {}", e.message)))?;
    Ok((!d.is_zero()).then_some(d))
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cmd, ArgError> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let sub = match p.next()? {
        Some(Long("help") | Short('h')) => return Ok(Cmd::Help),
        Some(Long("version") | Short('V')) => return Ok(Cmd::Version),
        Some(Value(v)) => text(v)?,
        _ => return Err(ArgError::Usage),
    };
    let control = match sub.as_str() {
        "up" => Some(Command::Up),
        "down" => Some(Command::Down),
        "once" => Some(Command::Once),
        "restart" => Some(Command::Restart),
        "pause" => Some(Command::Pause),
        "cont" => Some(Command::Cont),
        "kill" => Some(Command::Signal(Signal::SIGTERM)),
        "status" | "wait" | "check" | "halt" => None,
        _ => return Err(ArgError::Usage),
    };
    let mut json = false;
    let mut sig = None;
    let mut cond = Condition::Up;
    let mut timeout = None;
    let mut names = Vec::new();
    while let Some(arg) = p.next()? {
        match (sub.as_str(), arg) {
            (_, Long("help")) => return Ok(Cmd::Help),
            ("status", Long("json")) => json = true,
            ("kill", Short('s') | Long("signal")) => {
                let v = text(p.value()?)?;
                sig = Some(signal::parse(&v).map_err(invalid)?);
            }
            ("wait", Long("up") | Short('u')) => cond = Condition::Up,
            ("wait", Long("ready") | Short('U')) => cond = Condition::Ready,
            ("wait", Long("down") | Short('d')) => cond = Condition::Down,
            ("wait", Long("finished") | Short('D')) => cond = Condition::Finished,
            ("wait", Long("timeout") | Short('t')) => {
                timeout = parse_timeout(&text(p.value()?)?).map_err(invalid)?;
            }
            (_, Value(v)) => names.push(text(v)?),
            _ => return Err(ArgError::Usage),
        }
    }
    Ok(match (sub.as_str(), control) {
        ("status", _) => Cmd::Status { json, names },
        ("check", _) => Cmd::Check { names },
        ("halt", _) => match names.as_slice() {
            [] => Cmd::Halt { code: None },
            [c] => Cmd::Halt {
                code: Some(halt::parse_code(c).map_err(invalid)?),
            },
            _ => return Err(ArgError::Usage),
        },
        _ if names.is_empty() => return Err(ArgError::Usage),
        ("wait", _) => Cmd::Wait {
            cond,
            timeout,
            names,
        },
        (_, Some(Command::Signal(_))) => Cmd::Control {
            command: Command::Signal(sig.unwrap_or(Signal::SIGTERM)),
            names,
        },
        (_, Some(command)) => Cmd::Control { command, names },
        (_, None) => return Err(ArgError::Usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal as Sig;

    fn p(line: &str) -> Result<Cmd, ArgError> {
        parse(line.split_whitespace().map(OsString::from))
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn subcommands() {
        use Command::*;
        let table: Vec<(&str, Cmd)> = vec![
            ("--help", Cmd::Help),
            ("-h", Cmd::Help),
            ("--version", Cmd::Version),
            ("status --help", Cmd::Help),
            (
                "status",
                Cmd::Status {
                    json: false,
                    names: vec![],
                },
            ),
            (
                "status --json a b/log",
                Cmd::Status {
                    json: true,
                    names: names(&["a", "b/log"]),
                },
            ),
            (
                "status a --json",
                Cmd::Status {
                    json: true,
                    names: names(&["a"]),
                },
            ),
            (
                "up a b",
                Cmd::Control {
                    command: Up,
                    names: names(&["a", "b"]),
                },
            ),
            (
                "down a",
                Cmd::Control {
                    command: Down,
                    names: names(&["a"]),
                },
            ),
            (
                "once a",
                Cmd::Control {
                    command: Once,
                    names: names(&["a"]),
                },
            ),
            (
                "restart a",
                Cmd::Control {
                    command: Restart,
                    names: names(&["a"]),
                },
            ),
            (
                "pause a",
                Cmd::Control {
                    command: Pause,
                    names: names(&["a"]),
                },
            ),
            (
                "cont a",
                Cmd::Control {
                    command: Cont,
                    names: names(&["a"]),
                },
            ),
            (
                "kill a",
                Cmd::Control {
                    command: Command::Signal(Sig::SIGTERM),
                    names: names(&["a"]),
                },
            ),
            (
                "kill -s HUP a",
                Cmd::Control {
                    command: Command::Signal(Sig::SIGHUP),
                    names: names(&["a"]),
                },
            ),
            (
                "kill -sKILL a",
                Cmd::Control {
                    command: Command::Signal(Sig::SIGKILL),
                    names: names(&["a"]),
                },
            ),
            (
                "kill --signal=10 a",
                Cmd::Control {
                    command: Command::Signal(Sig::SIGUSR1),
                    names: names(&["a"]),
                },
            ),
            (
                "kill a -s SIGQUIT",
                Cmd::Control {
                    command: Command::Signal(Sig::SIGQUIT),
                    names: names(&["a"]),
                },
            ),
            (
                "up -- -odd",
                Cmd::Control {
                    command: Up,
                    names: names(&["-odd"]),
                },
            ),
            (
                "wait a",
                Cmd::Wait {
                    cond: Condition::Up,
                    timeout: None,
                    names: names(&["a"]),
                },
            ),
            (
                "wait --ready a b",
                Cmd::Wait {
                    cond: Condition::Ready,
                    timeout: None,
                    names: names(&["a", "b"]),
                },
            ),
            (
                "wait --down a",
                Cmd::Wait {
                    cond: Condition::Down,
                    timeout: None,
                    names: names(&["a"]),
                },
            ),
            (
                "wait -D a",
                Cmd::Wait {
                    cond: Condition::Finished,
                    timeout: None,
                    names: names(&["a"]),
                },
            ),
            (
                "wait --up --finished a",
                Cmd::Wait {
                    cond: Condition::Finished,
                    timeout: None,
                    names: names(&["a"]),
                },
            ),
            (
                "wait --timeout 3s a",
                Cmd::Wait {
                    cond: Condition::Up,
                    timeout: Some(Duration::from_secs(3)),
                    names: names(&["a"]),
                },
            ),
            (
                "wait --timeout=3000 --ready a",
                Cmd::Wait {
                    cond: Condition::Ready,
                    timeout: Some(Duration::from_secs(3)),
                    names: names(&["a"]),
                },
            ),
            (
                "wait -t 0 a",
                Cmd::Wait {
                    cond: Condition::Up,
                    timeout: None,
                    names: names(&["a"]),
                },
            ),
            ("check", Cmd::Check { names: vec![] }),
            (
                "check a",
                Cmd::Check {
                    names: names(&["a"]),
                },
            ),
            ("halt", Cmd::Halt { code: None }),
            ("halt 3", Cmd::Halt { code: Some(3) }),
            ("halt 255", Cmd::Halt { code: Some(255) }),
        ];
        for (line, want) in table {
            assert_eq!(p(line), Ok(want), "{line}");
        }
    }

    #[test]
    fn refusals() {
        for line in [
            "",
            "frobnicate",
            "up",
            "kill",
            "kill -s",
            "wait",
            "wait --timeout",
            "status --bogus",
            "up --json a",
            "halt 1 2",
            "halt -1",
            "check --json",
            "wait --json a",
        ] {
            assert_eq!(p(line), Err(ArgError::Usage), "{line:?}");
        }
        for (line, msg) in [
            ("kill -s BOGUS a", "BOGUS: unknown signal"),
            ("wait --timeout 3x a", "--timeout: \"3x\": invalid duration"),
            ("halt 256", "256: invalid exit code"),
        ] {
            match p(line) {
                Err(ArgError::Invalid(e)) => {
                    assert_eq!(e.code, 100);
                    assert!(e.message.starts_with(msg), "{line}: {}", e.message);
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn durations() {
        for (t, ms) in [
            ("3000", 3000),
            ("3s", 3000),
            ("500ms", 500),
            ("1m", 60_000),
            ("1m30s", 90_000),
        ] {
            assert_eq!(parse_timeout(t), Ok(Some(Duration::from_millis(ms))), "{t}");
        }
        assert_eq!(parse_timeout("0"), Ok(None));
        for bad in ["", "x", "3 s", "-1", "3 seconds"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }
}
