//! Stage 3: stop in the reverse of the start order, each wait a deadline that ends the
//! moment its condition holds; a second TERM or INT skips what is left of the grace times.

use std::path::Path;
use std::time::{Duration, Instant};

use libcustos::{info, paths, warn};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::pid1::{signal_group, Init};
use crate::scripts;

pub fn run(init: &mut Init) -> u8 {
    init.in_stage3 = true;
    info!("stage 3: stopping");
    stop_cmd(init);
    stop_services(init);
    cont_finish(init);
    end_everything(init);
    if init.settings.sync_disks {
        nix::unistd::sync();
    }
    let code = init.exit_code();
    info!("exiting with code {code}");
    if libcustos::msg::dropped() > 0 {
        // best effort: stderr was full, this line may be dropped too
        warn!(
            "{} messages were dropped because stderr was not read",
            libcustos::msg::dropped()
        );
    }
    code
}

/// Waits until `done` holds, `deadline` passes or a second signal says hurry.
fn wait_until(init: &mut Init, deadline: Instant, mut done: impl FnMut(&Init) -> bool) -> bool {
    loop {
        if done(init) {
            return true;
        }
        if init.hurry || Instant::now() >= deadline {
            return false;
        }
        init.pump(Some(deadline));
    }
}

/// Step 1: CMD started last, so it stops first.
fn stop_cmd(init: &mut Init) {
    let Some(cmd) = init.cmd else { return };
    signal_group(cmd, Signal::SIGTERM);
    signal_group(cmd, Signal::SIGCONT);
    let deadline = Instant::now() + init.settings.cmd_gracetime;
    if !wait_until(init, deadline, |i| i.cmd.is_none()) {
        warn!("CMD still running after CUSTOS_CMD_GRACETIME: going on");
    }
}

/// Step 2: dependents before what they depend on; loggers after their service.
fn stop_services(init: &mut Init) {
    if init.tree.services.is_empty() {
        return;
    }
    let deadline = Instant::now() + init.settings.services_gracetime;
    loop {
        let cmd_gone = init.cmd.is_none();
        init.tree.advance_stop(cmd_gone);
        if init.tree.all_gone() {
            return;
        }
        if init.hurry || Instant::now() >= deadline {
            break;
        }
        init.pump(Some(deadline));
    }
    let left: Vec<String> = init
        .tree
        .services
        .iter()
        .filter(|s| !s.gone && s.supervise.is_some())
        .map(|s| s.name.clone())
        .collect();
    warn!(
        "services still up at the end of CUSTOS_SERVICES_GRACETIME (or told to hurry): {}",
        left.join(", ")
    );
    init.tree.force_down();
}

/// Step 3: cont-finish.d, each script at most CUSTOS_KILL_FINISH_MAXTIME.
fn cont_finish(init: &mut Init) {
    for path in scripts::list(Path::new(paths::CONT_FINISH)) {
        let keep_env = init.settings.keep_env;
        match scripts::run_one(
            init,
            &path,
            Some(init.settings.kill_finish_maxtime),
            keep_env,
        ) {
            scripts::Outcome::Ended(t) if t.code() != 0 => {
                warn!("{} {}", path.display(), t.describe())
            }
            scripts::Outcome::NotStarted(why) => warn!("{why}"),
            _ => {}
        }
    }
}

/// Step 4: SIGTERM to every remaining process, SIGKILL to what is left after the grace time.
fn end_everything(init: &mut Init) {
    if !has_children() {
        return;
    }
    signal_all(init.is_pid1, Signal::SIGTERM);
    signal_all(init.is_pid1, Signal::SIGCONT);
    let deadline = Instant::now() + init.settings.kill_gracetime;
    if wait_until(init, deadline, |_| !has_children()) {
        return;
    }
    signal_all(init.is_pid1, Signal::SIGKILL);
    // SIGKILL cannot be refused: wait for the kernel, bounded in case of an unkillable process
    let deadline = Instant::now() + Duration::from_secs(5);
    init.hurry = false;
    if !wait_until(init, deadline, |_| !has_children()) {
        warn!("some processes survived SIGKILL (stuck in the kernel): exiting anyway");
    }
}

/// Whether init still has a child (alive or not yet reaped).
fn has_children() -> bool {
    // SAFETY: waitid with WNOWAIT only peeks; info is a plain struct we own.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    !(r == -1 && Errno::last() == Errno::ECHILD)
}

/// Signals every process but init: all of the pid namespace as PID 1, else every
/// descendant (never the host's other processes).
fn signal_all(is_pid1: bool, sig: Signal) {
    if is_pid1 {
        let _ = kill(Pid::from_raw(-1), sig);
        return;
    }
    for pid in descendants(std::process::id() as i32) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// Every descendant of `root`, from /proc.
fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|s| s.parse::<i32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid) in &parent_of {
            if *ppid == p && !out.contains(pid) {
                out.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    out
}
