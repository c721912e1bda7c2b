//! cont-init.d and cont-finish.d: every file of a folder in lexical order, one at a time,
//! each to completion (cont-finish.d: at most CUSTOS_KILL_FINISH_MAXTIME each).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcustos::error::errno_of;
use libcustos::{info, script, warn};
use nix::sys::signal::Signal;

use crate::events::Termination;
use crate::pid1::{signal_group, Init};
use crate::spawn::{self, Group, Spec};

/// The scripts of `dir`, sorted; names beginning with `.` and folders are skipped.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// How one script ended.
pub enum Outcome {
    Ended(Termination),
    /// It could not be started (the reason, worded).
    NotStarted(String),
    /// Killed at its deadline.
    TimedOut,
}

/// Runs one script to completion (or until `limit`). A stop request while it runs sends it
/// SIGTERM (its whole process group) and waits for it, at most CUSTOS_CMD_GRACETIME.
/// `keep_env`: the whole container environment (else PATH only, CUSTOS_KEEP_ENV=0).
pub fn run_one(init: &mut Init, path: &Path, limit: Option<Duration>, keep_env: bool) -> Outcome {
    let plan = match script::plan(path) {
        Ok(p) => p,
        Err(e) => return Outcome::NotStarted(e.message),
    };
    if plan.via_interpreter {
        warn!(
            "{} is not executable: running it through {} (chmod +x it)",
            path.display(),
            plan.program.display()
        );
    }
    info!("running {}", path.display());
    let mut spec = Spec::new(&plan.program);
    spec.args = plan.args;
    spec.env = init.child_env(keep_env);
    spec.cwd = Some(PathBuf::from("/"));
    spec.stdin_null = true;
    spec.group = Group::Own;
    let pid = match spawn::spawn(&spec) {
        Ok(pid) => pid,
        Err(e) => {
            let errno = errno_of(&e);
            // ENOENT for a file that is there: its #! interpreter is missing
            let why = match (errno, missing_interpreter(path)) {
                (nix::errno::Errno::ENOENT, Some(interp)) => {
                    format!("its interpreter {interp} was not found")
                }
                _ => errno.desc().to_string(),
            };
            return Outcome::NotStarted(format!("unable to run {}: {why}", path.display()));
        }
    };
    init.waited.push(pid);
    let mut deadline = limit.map(|l| Instant::now() + l);
    let mut termed = false;
    loop {
        if let Some(t) = init.finished.remove(&pid) {
            return Outcome::Ended(t);
        }
        if init.stop_requested && !init.in_stage3 && !termed {
            warn!("stopping: sending SIGTERM to {}", path.display());
            signal_group(pid, Signal::SIGTERM);
            signal_group(pid, Signal::SIGCONT);
            termed = true;
            let grace = Instant::now() + init.settings.cmd_gracetime;
            deadline = Some(deadline.map_or(grace, |d| d.min(grace)));
        }
        // a script we stopped (stage 2) loses its grace time on a second signal; cont-finish.d
        // scripts keep their own limit, which is not a grace time
        if deadline.is_some_and(|d| Instant::now() >= d) || (init.hurry && termed) {
            warn!(
                "{}: still running at its time limit: killing it",
                path.display()
            );
            signal_group(pid, Signal::SIGKILL);
            let _ = init.wait_for(pid, Some(Instant::now() + Duration::from_secs(5)));
            return Outcome::TimedOut;
        }
        init.pump(deadline);
    }
}

/// The interpreter named on `path`'s `#!` line, when that interpreter does not exist.
fn missing_interpreter(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let line = head[..n]
        .strip_prefix(b"#!")?
        .split(|&b| b == b'\n')
        .next()?;
    let interp = String::from_utf8_lossy(line)
        .split_whitespace()
        .next()?
        .to_string();
    (!Path::new(&interp).exists()).then_some(interp)
}
