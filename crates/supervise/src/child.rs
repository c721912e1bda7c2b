//! Spawning `run` and `finish`: everything (paths, argv, environment, descriptors) is
//! prepared before fork; between fork and exec the child makes only async-signal-safe calls
//! (setsid, dup2, fcntl, signal dispositions, sigprocmask). std's Command does the fork and
//! exec (it puts SIGPIPE back to SIG_DFL and reports exec errors to us), but only the pid is
//! kept: the loop reaps every child with waitpid(-1), never through `Child`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use libcustos::error::{Error, Result};
use libcustos::status::LastEnd;
use libcustos::{envdir, paths, script};

/// PATH when the container environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What every start of run and finish shares.
#[derive(Debug, Clone)]
pub struct Launch {
    pub name: String,
    /// The live service folder: working directory, and the folder scripts are resolved in.
    pub dir: PathBuf,
    /// Descriptors given to the child as 0, 1, 2 (None: supervise's own).
    pub stdio: [Option<RawFd>; 3],
    /// CUSTOS_KEEP_ENV=0: PATH and env/ only.
    pub clean_env: bool,
    /// Where the container environment lives (paths::CONTAINER_ENV).
    pub container_env: PathBuf,
    /// Arguments run gets before anything else (`--run-arg`).
    pub run_args: Vec<OsString>,
}

/// A spawned child.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    /// The read end of the notification-fd pipe, for run with a notification-fd.
    pub notify: Option<OwnedFd>,
}

/// The arguments finish gets after run ended: `EXIT SIG` (s6's convention, plus -1 0 for an
/// adopted run whose exit status went to init).
pub fn finish_args(last: LastEnd) -> (i32, i32) {
    match last {
        LastEnd::Exited(code) => (code, 0),
        LastEnd::Killed(sig) => (256, sig),
        LastEnd::None | LastEnd::Unknown => (-1, 0),
    }
}

/// The environment of a start: the container environment (read now, so what cont-init.d
/// scripts wrote is seen; supervise's own when there is none), or only its PATH with
/// `clean_env`; then the service's `env/` folder on top.
pub fn environment(launch: &Launch) -> Result<Vec<(OsString, OsString)>> {
    let mut env: BTreeMap<OsString, OsString> = BTreeMap::new();
    let container = if launch.container_env.is_dir() {
        Some(envdir::read_all(&launch.container_env)?)
    } else {
        None
    };
    if launch.clean_env {
        let path = container
            .as_ref()
            .and_then(|vars| {
                vars.iter()
                    .find(|(k, _)| k == "PATH")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| OsString::from(DEFAULT_PATH));
        env.insert("PATH".into(), path);
    } else {
        match container {
            Some(vars) => env.extend(vars),
            None => env.extend(std::env::vars_os()),
        }
    }
    let own = launch.dir.join(paths::ENV);
    if own.is_dir() {
        env.extend(envdir::read_all(&own)?);
    }
    Ok(env.into_iter().collect())
}

/// Spawns `script` (`run` or `finish`) of the service as a session leader, in the service
/// folder, with `args` after the script, and `notification_fd` as the write end of a pipe
/// whose read end is returned.
pub fn spawn(
    launch: &Launch,
    script: &str,
    args: &[OsString],
    notification_fd: Option<i32>,
) -> Result<Spawned> {
    let link = launch.dir.join(script);
    // /run may be noexec: exec what the symlink points to, never the link in /run
    let target = std::fs::canonicalize(&link)
        .map_err(|e| Error::io(format_args!("resolve {}", link.display()), &e))?;
    let plan = script::plan(&target)?;
    if plan.via_interpreter {
        libcustos::warn!(
            "{}: ./{script} is not executable: running it through {}",
            launch.name,
            plan.program.display()
        );
    }
    let env = environment(launch)?;

    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.args);
    if script == libcustos::paths::RUN {
        cmd.args(&launch.run_args);
    }
    cmd.args(args)
        .env_clear()
        .envs(env)
        .current_dir(&launch.dir);
    let [stdin, stdout, stderr] = launch.stdio;
    if let Some(fd) = stdin {
        cmd.stdin(dup_stdio(fd, "stdin")?);
    }
    if let Some(fd) = stdout {
        cmd.stdout(dup_stdio(fd, "stdout")?);
    }
    if let Some(fd) = stderr {
        cmd.stderr(dup_stdio(fd, "stderr")?);
    }

    let pipe = match notification_fd {
        Some(n) => {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| Error::sys("create the notification-fd pipe", e))?;
            Some((r, w, n))
        }
        None => None,
    };
    let notify_write: Option<(RawFd, RawFd)> = pipe.as_ref().map(|(_, w, n)| (w.as_raw_fd(), *n));

    // SAFETY: the closure runs in the child between fork and exec; it only makes
    // async-signal-safe system calls and allocates nothing (its captures are two integers).
    unsafe {
        cmd.pre_exec(move || child_setup(notify_write));
    }
    let child = cmd
        .spawn()
        .map_err(|e| Error::io(format_args!("spawn {}", target.display()), &e))?;
    let pid = child.id() as i32;
    // never waited through Child: the loop's waitpid(-1) reaps it
    drop(child);
    Ok(Spawned {
        pid,
        notify: pipe.map(|(r, _w, _)| r),
    })
}

/// A close-on-exec copy of one of the descriptors given to every child, for Command (which
/// closes what it is given): the original stays open for later starts.
fn dup_stdio(fd: RawFd, what: &str) -> Result<Stdio> {
    // SAFETY: fd was checked to be open at startup and is never closed by supervise.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let owned = borrowed
        .try_clone_to_owned()
        .map_err(|e| Error::io(format_args!("duplicate the {what} descriptor {fd}"), &e))?;
    Ok(Stdio::from(owned))
}

/// In the child, after fork: a session of its own, the notification pipe at its number,
/// default signal dispositions and an empty mask.
fn child_setup(notify: Option<(RawFd, RawFd)>) -> std::io::Result<()> {
    // SAFETY: async-signal-safe system calls on integers only.
    unsafe {
        if libc::setsid() < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if let Some((w, n)) = notify {
            if w == n {
                // dup2 onto itself keeps close-on-exec: clear it by hand
                libc::fcntl(n, libc::F_SETFD, 0);
            } else if libc::dup2(w, n) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        for sig in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGCHLD,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGALRM,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGTSTP,
            libc::SIGWINCH,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn finish_arguments_follow_s6() {
        assert_eq!(finish_args(LastEnd::Exited(3)), (3, 0));
        assert_eq!(finish_args(LastEnd::Killed(15)), (256, 15));
        assert_eq!(finish_args(LastEnd::Unknown), (-1, 0));
    }

    #[test]
    fn environment_layers() {
        let base =
            std::env::temp_dir().join(format!("custos-supervise-env-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("svc");
        let cenv = base.join("cenv");
        std::fs::create_dir_all(dir.join("env")).unwrap();
        std::fs::create_dir_all(&cenv).unwrap();
        std::fs::write(cenv.join("A"), "container\n").unwrap();
        std::fs::write(cenv.join("B"), "kept").unwrap();
        std::fs::write(cenv.join("PATH"), "/cpath\n").unwrap();
        std::fs::write(dir.join("env/A"), "service\n").unwrap();
        let mut launch = Launch {
            name: "svc".into(),
            dir: dir.clone(),
            stdio: [None; 3],
            clean_env: false,
            run_args: Vec::new(),
            container_env: cenv.clone(),
        };
        let get = |env: &[(OsString, OsString)], k: &str| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        let env = environment(&launch).unwrap();
        assert_eq!(get(&env, "A"), Some("service".into()));
        assert_eq!(get(&env, "B"), Some("kept".into()));
        launch.clean_env = true;
        let env = environment(&launch).unwrap();
        assert_eq!(env.len(), 2, "{env:?}");
        assert_eq!(get(&env, "PATH"), Some("/cpath".into()));
        std::fs::remove_file(cenv.join("PATH")).unwrap();
        assert_eq!(
            get(&environment(&launch).unwrap(), "PATH"),
            Some(DEFAULT_PATH.into())
        );
        // no container environment: supervise's own
        launch.clean_env = false;
        launch.container_env = base.join("none");
        let env = environment(&launch).unwrap();
        assert_eq!(get(&env, "A"), Some("service".into()));
        assert!(env.len() > 1);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
