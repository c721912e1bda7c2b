//! The logging script: s6-log directives, one per argument, read left to right.
//!
//! Control directives set what the next actions will do; action directives (`1`, a
//! directory) take a copy of every line. As in s6-log, `nN` and `sBYTES` stay in force for
//! every directory that follows until another `n`/`s` changes them, while `t` and `T` apply to
//! the next action only.

use std::ffi::OsString;
use std::path::PathBuf;

use libcustos::error::{Error, Result};

/// s6-log's default number of archives.
pub const DEFAULT_KEEP: u32 = 10;
/// s6-log's default size of `current`.
pub const DEFAULT_MAX_SIZE: u64 = 99_999;

/// Which timestamps prefix a line, TAI64N first when both are asked for (as s6-log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    pub tai64n: bool,
    pub iso8601: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `1`: copy to standard output.
    Stdout,
    /// A log directory, with its `nN` and `sBYTES`.
    Dir {
        path: PathBuf,
        keep: u32,
        max_size: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub target: Target,
    pub stamp: Stamp,
}

/// Parses the arguments into actions. A script without any action is invalid.
pub fn parse(args: &[OsString]) -> Result<Vec<Action>> {
    let mut keep = DEFAULT_KEEP;
    let mut max_size = DEFAULT_MAX_SIZE;
    let mut stamp = Stamp::default();
    let mut actions = Vec::new();
    let mut args = args;
    // `svlog -- SCRIPT` as `s6-log -- SCRIPT`
    if args.first().is_some_and(|a| a == "--") {
        args = &args[1..];
    }
    for arg in args {
        let Some(text) = arg.to_str() else {
            if arg
                .as_encoded_bytes()
                .first()
                .is_some_and(|&b| b == b'/' || b == b'.')
            {
                actions.push(Action {
                    target: Target::Dir {
                        path: PathBuf::from(arg),
                        keep,
                        max_size,
                    },
                    stamp,
                });
                stamp = Stamp::default();
                continue;
            }
            return Err(Error::invalid(format!(
                "unknown directive: {}",
                arg.to_string_lossy()
            )));
        };
        match text.as_bytes().first() {
            Some(b'/') | Some(b'.') => {
                actions.push(Action { target: Target::Dir { path: PathBuf::from(text), keep, max_size }, stamp });
                stamp = Stamp::default();
            }
            Some(b'n') => keep = number(text, "number of archives")?,
            Some(b's') => {
                max_size = number(text, "file size")?;
                if max_size == 0 {
                    return Err(Error::invalid(format!("{text}: file size must be at least 1 byte")));
                }
            }
            Some(b't') if text == "t" => stamp.tai64n = true,
            Some(b'T') if text == "T" => stamp.iso8601 = true,
            Some(b'1') if text == "1" => {
                actions.push(Action { target: Target::Stdout, stamp });
                stamp = Stamp::default();
            }
            _ if is_s6_log_directive(text) => {
                return Err(Error::invalid(format!(
                    "unsupported directive: {text} (svlog knows nN, sBYTES, t, T, 1 and directories)"
                )))
            }
            _ => {
                return Err(Error::invalid(format!(
                    "unknown directive: {text} (svlog knows nN, sBYTES, t, T, 1 and directories starting with / or .)"
                )))
            }
        }
    }
    if actions.is_empty() {
        return Err(Error::invalid(
            "the logging script has no action: give a directory (starting with / or .) or 1",
        ));
    }
    Ok(actions)
}

/// The s6-log directives svlog does not implement (selection, processors, other outputs).
fn is_s6_log_directive(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |rest: &[u8]| !rest.is_empty() && rest.iter().all(u8::is_ascii_digit);
    match b.first() {
        Some(b'+' | b'-' | b'!' | b'=' | b'?') => true,
        Some(b'S' | b'l' | b'r') => digits(&b[1..]),
        _ => matches!(text, "e" | "E" | "2" | "f"),
    }
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T> {
    let digits = &text[1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(format!(
            "{text}: invalid {what} (expected {}N with N a decimal number)",
            &text[..1]
        )));
    }
    digits
        .parse()
        .map_err(|_| Error::invalid(format!("{text}: {what} too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Vec<Action>> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    fn dir(path: &str, keep: u32, max_size: u64, tai64n: bool, iso8601: bool) -> Action {
        Action {
            target: Target::Dir {
                path: path.into(),
                keep,
                max_size,
            },
            stamp: Stamp { tai64n, iso8601 },
        }
    }

    fn out(tai64n: bool, iso8601: bool) -> Action {
        Action {
            target: Target::Stdout,
            stamp: Stamp { tai64n, iso8601 },
        }
    }

    #[test]
    fn valid_scripts() {
        let table: Vec<(&[&str], Vec<Action>)> = vec![
            (
                &["/var/log/x"],
                vec![dir("/var/log/x", 10, 99_999, false, false)],
            ),
            (&["./log"], vec![dir("./log", 10, 99_999, false, false)]),
            (&["."], vec![dir(".", 10, 99_999, false, false)]),
            (&["1"], vec![out(false, false)]),
            (&["--", "1"], vec![out(false, false)]),
            (
                &["n20", "s1000000", "T", "/l"],
                vec![dir("/l", 20, 1_000_000, false, true)],
            ),
            (&["t", "/l"], vec![dir("/l", 10, 99_999, true, false)]),
            (&["t", "T", "1"], vec![out(true, true)]),
            (&["n0", "s1", "/l"], vec![dir("/l", 0, 1, false, false)]),
            // t/T apply to the next action only; n/s stay for later directories
            (
                &["T", "1", "n3", "/a", "s500", "t", "/b", "n4", "/c"],
                vec![
                    out(false, true),
                    dir("/a", 3, 99_999, false, false),
                    dir("/b", 3, 500, true, false),
                    dir("/c", 4, 500, false, false),
                ],
            ),
            // trailing control directives are allowed and do nothing
            (&["1", "n5", "T"], vec![out(false, false)]),
        ];
        for (args, want) in table {
            assert_eq!(p(args).unwrap(), want, "{args:?}");
        }
    }

    #[test]
    fn invalid_scripts() {
        let table: &[(&[&str], &str)] = &[
            (&[], "has no action"),
            (&["n5", "T"], "has no action"),
            (&["x"], "unknown directive: x"),
            (&["log"], "unknown directive: log"),
            (&["tt", "1"], "unknown directive: tt"),
            (&["11"], "unknown directive: 11"),
            (&["--x"], "unsupported directive: --x"),
            (&["S5000", "1"], "unsupported directive: S5000"),
            (&["l100", "1"], "unsupported directive: l100"),
            (&["r3", "1"], "unsupported directive: r3"),
            (&["f", "1"], "unsupported directive: f"),
            (&["=/x", "1"], "unsupported directive: =/x"),
            (&["n", "1"], "n: invalid number of archives"),
            (&["nx", "1"], "nx: invalid number of archives"),
            (&["n-1", "1"], "n-1: invalid number of archives"),
            (
                &["n99999999999", "1"],
                "n99999999999: number of archives too large",
            ),
            (&["s", "1"], "s: invalid file size"),
            (&["s10k", "1"], "s10k: invalid file size"),
            (&["s0", "1"], "s0: file size must be at least 1 byte"),
            (&["+foo", "1"], "unsupported directive: +foo"),
            (&["e"], "unsupported directive: e"),
            (&["2"], "unsupported directive: 2"),
            (&["!gzip"], "unsupported directive: !gzip"),
            (&[""], "unknown directive: "),
        ];
        for (args, want) in table {
            let err = p(args).unwrap_err();
            assert_eq!(err.code, 100, "{args:?}");
            assert!(err.message.contains(want), "{args:?}: {}", err.message);
        }
    }
}
