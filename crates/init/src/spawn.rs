//! Starting children. Everything is prepared before fork; between fork and exec the child
//! only makes async-signal-safe calls (setsid/setpgid, tcsetpgrp, fcntl/dup2, signal
//! dispositions). std's Command is used for the fork/exec (it restores SIGPIPE and reports
//! exec errors to the parent), but only the pid is kept: the reaper owns waitpid.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::unistd::Pid;

/// Where the child's process group goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Stay in init's process group.
    Inherit,
    /// A process group of its own (signals to the group reach it and its children only).
    Own,
    /// A process group of its own that becomes the terminal's foreground group (CMD on a tty).
    Foreground,
}

pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    pub stdin_null: bool,
    pub group: Group,
    /// (descriptor in init, number it gets in the child); all others stay close-on-exec.
    pub fds: Vec<(RawFd, RawFd)>,
}

impl Spec {
    pub fn new(program: impl Into<PathBuf>) -> Spec {
        Spec {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin_null: false,
            group: Group::Inherit,
            fds: Vec::new(),
        }
    }
}

/// Forks and execs; returns the child's pid, or the exec's error.
pub fn spawn(spec: &Spec) -> std::io::Result<Pid> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    if spec.stdin_null {
        cmd.stdin(Stdio::null());
    }
    let group = spec.group;
    let fds = spec.fds.clone();
    // SAFETY: the closure runs in the child between fork and exec and only makes
    // async-signal-safe system calls; it allocates nothing (fds was cloned before fork).
    unsafe {
        cmd.pre_exec(move || {
            match group {
                Group::Inherit => {}
                Group::Own => {
                    libc::setpgid(0, 0);
                }
                Group::Foreground => {
                    libc::setpgid(0, 0);
                    // SIGTTOU is still ignored here (inherited from init), so a group that is
                    // not yet in the foreground may take the terminal
                    libc::tcsetpgrp(0, libc::getpid());
                }
            }
            libc::signal(libc::SIGTTOU, libc::SIG_DFL);
            libc::signal(libc::SIGTTIN, libc::SIG_DFL);
            // move every source out of the way first, so a target never clobbers a source
            let mut high = [0 as RawFd; 16];
            for (i, (src, _)) in fds.iter().enumerate().take(16) {
                high[i] = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, 64);
                if high[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, (_, target)) in fds.iter().enumerate().take(16) {
                if libc::dup2(high[i], *target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok(Pid::from_raw(child.id() as i32))
}
