//! fix-attrs: applies fix-attrs.d files (ownership and modes), never following symbolic links.
//!
//! init runs it as a child in stage 2 with no argument. Every file is parsed, and every
//! account looked up, before anything is changed: one bad line anywhere and nothing is
//! applied (`parse`). Then each entry is applied in order (`apply`).
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod apply;
mod parse;

use std::ffi::OsString;
use std::path::PathBuf;

use libcustos::error::{errno_of, Error};
use libcustos::{exit, msg, paths};

const PROG: &str = "fix-attrs";
const USAGE: &str = "fix-attrs [FILE...]";
const HELP: &str = "usage: fix-attrs [FILE...]

Applies fix-attrs files: each FILE, or else every file in /etc/fix-attrs.d in lexical order
(names starting with . are skipped). One entry a line, blank lines and # comments ignored:

  PATH RECURSE ACCOUNT FMODE DMODE

  PATH     an absolute path; a symbolic link is never followed (it gets lchown only)
  RECURSE  true (PATH and everything below it) or false (PATH only)
  ACCOUNT  user[:group][,uid:gid]: names are looked up, the uid:gid fallback supplies
           what is not found
  FMODE    octal mode for files
  DMODE    octal mode for folders

Every line of every file is checked first; if one is wrong, nothing is applied.

Environment:
  CUSTOS_FIX_ATTRS_HIDDEN=1  (or S6_FIX_ATTRS_HIDDEN) recurse into names starting with . too

Options:
  --help     print this help and exit
  --version  print the version and exit

Exit codes: 0 done (missing paths and entries lacking a privilege are warnings),
100 wrong usage or a bad line, 111 a system call failed.";

fn main() {
    msg::set_prog(PROG);
    msg::help_or_version(std::env::args_os().nth(1).as_deref(), HELP);
    let files = parse_args();
    set_verbosity();
    let hidden = hidden_setting().unwrap_or_else(|e| msg::die(&e));
    let files = match files {
        Some(f) => f,
        None => default_files().unwrap_or_else(|e| msg::die(&e)),
    };

    // every line of every file first: one bad line and nothing is applied
    let entries = parse::parse_files(&files).unwrap_or_else(|code| std::process::exit(code as i32));
    let failed = apply::apply_all(&entries, hidden);
    if !failed.is_empty() {
        libcustos::fatal!("unable to apply {}", failed.join(", "));
        std::process::exit(exit::SYSTEM as i32)
    }
}

fn parse_args() -> Option<Vec<PathBuf>> {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    } else if args
        .iter()
        .any(|a| a.as_encoded_bytes().starts_with(b"-") && a != "-")
    {
        msg::die_usage(USAGE)
    }
    (!args.is_empty()).then(|| args.into_iter().map(PathBuf::from).collect())
}

/// Every file of /etc/fix-attrs.d in lexical (byte) order, skipping names starting with `.`;
/// no such folder, nothing to do.
fn default_files() -> libcustos::error::Result<Vec<PathBuf>> {
    let dir = paths::FIX_ATTRS_DIR;
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if errno_of(&e) == nix::errno::Errno::ENOENT => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format_args!("read folder {dir}"), &e)),
    };
    let mut files = Vec::new();
    for item in rd {
        let item = item.map_err(|e| Error::io(format_args!("read folder {dir}"), &e))?;
        if item.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = item.path();
        if path.is_dir() {
            libcustos::warn!("{}: is a folder, skipped (expected a file)", path.display());
            continue;
        }
        files.push(path);
    }
    files.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(files)
}

/// CUSTOS_FIX_ATTRS_HIDDEN, or its alias S6_FIX_ATTRS_HIDDEN; CUSTOS_ wins if both are set.
/// Read here directly; it mirrors SPEC section 6 (libcustos::settings, for init).
fn hidden_setting() -> libcustos::error::Result<bool> {
    for var in ["CUSTOS_FIX_ATTRS_HIDDEN", "S6_FIX_ATTRS_HIDDEN"] {
        match std::env::var_os(var) {
            None => continue,
            Some(v) if v.is_empty() => continue,
            Some(v) if v == "1" => return Ok(true),
            Some(v) if v == "0" => return Ok(false),
            Some(v) => {
                return Err(Error::invalid(format!(
                    "{var}: invalid value: {} (expected 0 or 1)",
                    v.to_string_lossy()
                )))
            }
        }
    }
    Ok(false)
}

/// CUSTOS_VERBOSITY (or S6_VERBOSITY), as init passes it on; init has validated it.
fn set_verbosity() {
    for var in ["CUSTOS_VERBOSITY", "S6_VERBOSITY"] {
        if let Some(level) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            if let Ok(n) = level.parse::<u8>() {
                msg::set_verbosity(n);
            }
            return;
        }
    }
}
