//! with-contenv: exec a program with the container environment
//! (/run/custos/container_environment) as its whole environment. Works as a shebang:
//! `#!/usr/bin/with-contenv sh` runs `with-contenv sh SCRIPT`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;

use libcustos::{envdir, exit, fatal, msg, paths};

const PROG: &str = "with-contenv";
const USAGE: &str = "with-contenv PROG [ARGS...]";
const HELP: &str = "with-contenv PROG [ARGS...]

Runs PROG with the container environment saved by /init in
/run/custos/container_environment as its whole environment (each file a variable, its content
less one trailing newline the value). As a shebang: #!/usr/bin/with-contenv sh

Exit codes: PROG's own; 100 wrong usage; 111 the environment could not be read;
126 PROG is not executable; 127 PROG was not found.";

fn main() {
    msg::set_prog(PROG);
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    msg::help_or_version(args.first().map(OsString::as_os_str), HELP);
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    } else if let Some(opt) = args
        .first()
        .and_then(|a| a.to_str())
        .filter(|a| a.starts_with('-'))
    {
        fatal!("unknown option {opt} (use -- before a program whose name begins with -)");
        msg::die_usage(USAGE);
    }
    if args.is_empty() {
        msg::die_usage(USAGE);
    }
    let vars = match envdir::read_all(Path::new(paths::CONTAINER_ENV)) {
        Ok(v) => v,
        Err(e) => {
            fatal!("{e} (is /init running? with-contenv reads what it saved)");
            std::process::exit(exit::SYSTEM as i32)
        }
    };
    let program = args.remove(0);
    // exec through Command: it restores SIGPIPE's default disposition, which Rust ignores
    let err = std::process::Command::new(&program)
        .args(&args)
        .env_clear()
        .envs(vars)
        .exec();
    let errno = libcustos::error::errno_of(&err);
    fatal!(
        "unable to exec {}: {}",
        program.to_string_lossy(),
        errno.desc()
    );
    std::process::exit(exit::exec_failure(errno) as i32)
}
