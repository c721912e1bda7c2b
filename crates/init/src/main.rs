//! /init: PID 1 for containers (SPEC section 3).
//!
//! Stage 1 reads the settings and prepares /run/custos; stage 2 applies fix-attrs.d, runs
//! cont-init.d, starts the supervision tree and CMD, then supervises until told to stop;
//! stage 3 stops CMD, the services (dependents first, loggers last), runs cont-finish.d,
//! ends every remaining process and exits with the container's code. All of it is one
//! single-threaded event loop (`events`) that never sleeps and never panics.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod events;
mod pid1;
mod scripts;
mod spawn;
mod stage1;
mod stage2;
mod stage3;
mod tree;

use std::ffi::OsString;

use libcustos::msg;

const PROG: &str = "init";
const USAGE: &str = "/init [CMD [ARGS...]]";
const HELP: &str =
    "The custos init: PID 1 of a container (ENTRYPOINT [\"/init\"]). Docker passes the image's CMD
as arguments. Stage 1 reads the CUSTOS_* settings and prepares /run/custos; stage 2 applies
/etc/fix-attrs.d, runs /etc/cont-init.d, supervises /etc/services.d and runs CMD; stage 3
stops everything in reverse order and exits with CMD's code. See docs/init.md.

--help and --version are understood only when /init is not PID 1 (as PID 1, every argument
is CMD's).";

/// PATH for children when the container environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn main() {
    msg::set_prog(PROG);
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if std::process::id() != 1 && args.len() == 1 {
        msg::help_or_version(
            args.first().map(OsString::as_os_str),
            &format!("{USAGE}\n\n{HELP}"),
        );
    }
    let code = match stage1::run() {
        Ok(booted) => {
            let mut init = pid1::Init::new(booted);
            stage2::run(&mut init, args);
            stage3::run(&mut init)
        }
        Err(code) => code,
    };
    std::process::exit(code as i32)
}
