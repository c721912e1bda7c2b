//! Stage 2: fix-attrs.d, cont-init.d, the supervision tree, CMD; then supervise until a stop
//! is asked for.

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use libcustos::error::errno_of;
use libcustos::{fatal, info, paths, warn};

use crate::events::Termination;
use crate::pid1::Init;
use crate::scripts::{self, Outcome};
use crate::spawn::{self, Group, Spec};
use crate::tree::{Tree, TreeOptions};

pub fn run(init: &mut Init, cmd: Vec<OsString>) {
    if !fix_attrs(init) || !cont_init(init) || !services(init) {
        return;
    }
    if init.stop_requested {
        return;
    }
    info!("stage 2 done");
    if !cmd.is_empty() {
        init.waiting_for_services = true;
        wait_for_services(init);
        init.waiting_for_services = false;
        if !init.stop_requested {
            start_cmd(init, cmd);
        }
    }
    while !init.stop_requested {
        init.pump(None);
    }
}

/// A stage-2 failure, handled per CUSTOS_BEHAVIOUR_IF_STAGE2_FAILS. Returns false when the
/// container stops.
fn failed(init: &mut Init, what: &str, code: u8) -> bool {
    match init.settings.behaviour_if_stage2_fails {
        0 => true,
        1 => {
            warn!("{what} (continuing: CUSTOS_BEHAVIOUR_IF_STAGE2_FAILS=1)");
            true
        }
        _ => {
            fatal!("{what}: stopping the container (CUSTOS_BEHAVIOUR_IF_STAGE2_FAILS=2)");
            init.stage2_code.get_or_insert(code);
            init.stop_requested = true;
            false
        }
    }
}

fn outcome_failure(path: &Path, outcome: Outcome) -> Option<(String, u8)> {
    match outcome {
        Outcome::Ended(Termination::Exited(0)) => None,
        Outcome::Ended(t) => Some((format!("{} {}", path.display(), t.describe()), t.code())),
        Outcome::NotStarted(why) => Some((why, libcustos::exit::SYSTEM)),
        Outcome::TimedOut => Some((
            format!("{} was killed", path.display()),
            libcustos::exit::signaled(9),
        )),
    }
}

/// Step 1: /usr/bin/fix-attrs applies /etc/fix-attrs.d (as a child: a bug there cannot take
/// PID 1 down).
fn fix_attrs(init: &mut Init) -> bool {
    if scripts::list(Path::new(paths::FIX_ATTRS_DIR)).is_empty() {
        return true;
    }
    let bin = Path::new(paths::FIX_ATTRS_BIN);
    if !bin.exists() {
        return failed(
            init,
            &format!(
                "{} is not empty but {} is missing",
                paths::FIX_ATTRS_DIR,
                bin.display()
            ),
            111,
        );
    }
    // fix-attrs reads CUSTOS_FIX_ATTRS_HIDDEN and CUSTOS_VERBOSITY: it always gets the
    // whole environment (KEEP_ENV is about scripts)
    let outcome = scripts::run_one(init, bin, None, true);
    match outcome_failure(bin, outcome) {
        None => true,
        // a bad fix-attrs.d line is a failure of a data file, not of a script: code 1
        Some((what, code)) => failed(
            init,
            &what,
            if code == libcustos::exit::SYSTEM {
                code
            } else {
                1
            },
        ),
    }
}

/// Step 2: every cont-init.d script, in lexical order, one at a time.
fn cont_init(init: &mut Init) -> bool {
    for path in scripts::list(Path::new(paths::CONT_INIT)) {
        if init.stop_requested {
            return false;
        }
        let outcome = scripts::run_one(init, &path, None, init.settings.keep_env);
        if let Some((what, code)) = outcome_failure(&path, outcome) {
            if init.stop_requested && init.stage2_code.is_none() && init.halt_code.is_none() {
                // ended because we asked it to stop: not a failure of its own
                return false;
            }
            if !failed(init, &what, code) {
                return false;
            }
        }
    }
    true
}

/// Step 3: /run/service and one supervise per service.
fn services(init: &mut Init) -> bool {
    let opts = TreeOptions {
        verbosity: init.settings.verbosity,
        keep_env: init.settings.keep_env,
        log_prefix: init.settings.log_prefix,
        logging: init.settings.logging,
        logging_script: init.settings.logging_script.clone(),
    };
    match Tree::load(
        Path::new(paths::SERVICES_SRC),
        Path::new(paths::SCAN_DIR),
        &opts,
    ) {
        Ok(tree) => {
            init.tree = tree;
            init.tree.start();
            true
        }
        Err(errors) => {
            let n = errors.len();
            for e in &errors[..n.saturating_sub(1)] {
                match init.settings.behaviour_if_stage2_fails {
                    0 => {}
                    1 => warn!("{e}"),
                    _ => fatal!("{e}"),
                }
            }
            let last = errors.last().map(|e| e.message.clone()).unwrap_or_default();
            // the services that are valid are not started when any is invalid: a half tree
            // would start dependents without what they depend on
            failed(init, &format!("{last} (no service was started)"), 1)
        }
    }
}

/// Step 4, first half: wait until the services are up and ready, at most the maxtime.
fn wait_for_services(init: &mut Init) {
    if !init.settings.cmd_wait_for_services {
        return;
    }
    let deadline = init
        .settings
        .cmd_wait_for_services_maxtime
        .map(|d| Instant::now() + d);
    init.tree.refresh();
    init.tree.release_held();
    loop {
        let missing = init.tree.not_ready();
        if missing.is_empty() || init.stop_requested {
            return;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            warn!(
                "starting CMD although these services are not ready after CUSTOS_CMD_WAIT_FOR_SERVICES_MAXTIME: {}",
                missing.join(", ")
            );
            return;
        }
        init.pump(deadline);
    }
}

/// Step 4, second half: CMD as the container's main process.
fn start_cmd(init: &mut Init, cmd: Vec<OsString>) {
    let mut words: Vec<OsString> = init.settings.cmd_arg0.clone();
    words.extend(cmd);
    let program = words.remove(0);
    let mut spec = Spec::new(&program);
    spec.args = words;
    spec.env = init.child_env(true);
    spec.cwd = Some(init.cwd.clone());
    if let (2, Some(w)) = (init.settings.logging, &init.tree.catchall_write) {
        use std::os::fd::AsRawFd;
        spec.fds.push((w.as_raw_fd(), 1));
        spec.fds.push((w.as_raw_fd(), 2));
    }
    spec.group = if nix::unistd::isatty(0).unwrap_or(false) {
        Group::Foreground
    } else {
        Group::Own
    };
    match spawn::spawn(&spec) {
        Ok(pid) => {
            info!("CMD started: {} (pid {pid})", program.to_string_lossy());
            init.cmd = Some(pid);
        }
        Err(e) => {
            let errno = errno_of(&e);
            let code = libcustos::exit::exec_failure(errno);
            fatal!(
                "unable to run CMD {}: {}",
                program.to_string_lossy(),
                errno.desc()
            );
            init.cmd_result = Some(Termination::Exited(code as i32));
            init.stop_requested = true;
        }
    }
}
