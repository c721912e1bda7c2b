//! Stage 1: settings, subreaper mode, /run/custos, the saved container environment.

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libcustos::error::Error;
use libcustos::settings::{self, Settings};
use libcustos::{envdir, fatal, info, msg, paths, warn};
use nix::errno::Errno;

use crate::events::Events;

/// What stage 1 hands to stage 2.
pub struct Booted {
    pub settings: Settings,
    pub events: Events,
    pub is_pid1: bool,
    /// The folder /init was started in (the image's WORKDIR): CMD runs there.
    pub cwd: PathBuf,
}

pub fn run() -> Result<Booted, u8> {
    let is_pid1 = std::process::id() == 1;
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let parsed = match settings::parse(&env) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                fatal!("{e}");
            }
            fatal!(
                "invalid settings: nothing was started (the accepted values are in docs/init.md)"
            );
            return Err(libcustos::exit::USAGE);
        }
    };
    let settings = parsed.settings;
    msg::set_verbosity(settings.verbosity);
    // PID 1 never blocks on a stderr nobody reads
    msg::use_nonblocking_stderr();
    for w in &parsed.warnings {
        warn!("{w}");
    }
    // signal handlers before any child exists
    let events = Events::new().map_err(|e| {
        fatal!("{e}");
        libcustos::exit::SYSTEM
    })?;
    if !is_pid1 {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if r != 0 {
            warn!(
                "not PID 1 and unable to become a child subreaper: {} (orphans will not be reaped by init)",
                Errno::last().desc()
            );
        } else {
            info!(
                "not PID 1 (pid {}): running as a child subreaper",
                std::process::id()
            );
        }
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    prepare_run().map_err(|e| {
        fatal!("{e}");
        e.code
    })?;
    let mut events = events;
    match libcustos::control::open_fifo(Path::new(paths::INIT_CONTROL)) {
        Ok(fifo) => events.set_control(fifo),
        Err(e) => warn!("{e} (svctl halt and essential services will not work)"),
    }
    let skipped = envdir::write_all(Path::new(paths::CONTAINER_ENV), env).map_err(|e| {
        fatal!("{e}");
        e.code
    })?;
    for name in skipped {
        warn!(
            "environment variable {:?} cannot be saved in {} (its name is not a file name)",
            name,
            paths::CONTAINER_ENV
        );
    }
    info!("stage 1 done");
    Ok(Booted {
        settings,
        events,
        is_pid1,
        cwd,
    })
}

/// Creates /run/custos (clearing what a previous run left) and /run/service, and the
/// /run/s6/container_environment link; fails with advice when /run is not writable.
fn prepare_run() -> Result<(), Error> {
    let uid = nix::unistd::geteuid();
    for dir in [paths::RUN_DIR, paths::SCAN_DIR] {
        owned_dir(Path::new(dir), uid.as_raw())?;
    }
    let env_dir = Path::new(paths::CONTAINER_ENV);
    clear_dir(Path::new(paths::RUN_DIR))?;
    clear_dir(Path::new(paths::SCAN_DIR))?;
    std::fs::create_dir(env_dir)
        .map_err(|e| Error::io(format_args!("create {}", env_dir.display()), &e))?;
    let compat = Path::new(paths::S6_COMPAT_DIR);
    let link = Path::new(paths::S6_COMPAT_ENV);
    // for scripts written for s6-overlay: best effort, never a reason to stop
    match owned_dir(compat, uid.as_raw()) {
        Ok(()) => {
            let _ = std::fs::remove_file(link);
            let _ = std::fs::remove_dir_all(link);
            if let Err(e) = std::os::unix::fs::symlink(env_dir, link) {
                warn!(
                    "unable to create {}: {}",
                    link.display(),
                    libcustos::error::errno_of(&e).desc()
                );
            }
        }
        Err(e) => warn!("{e}"),
    }
    Ok(())
}

/// Makes sure `dir` exists, mode 0755, owned by `uid`; refuses a folder owned by another user.
fn owned_dir(dir: &Path, uid: u32) -> Result<(), Error> {
    match std::fs::create_dir(dir) {
        Ok(()) => {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(not_writable(&format!("create {}", dir.display()), &e, uid)),
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::io(format_args!("stat {}", dir.display()), &e))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "{}: exists and is not a folder (remove it)",
            dir.display()
        )));
    }
    if meta.uid() == uid && meta.permissions().mode() & 0o7777 != 0o755 {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    }
    if meta.uid() != uid {
        return Err(Error::invalid(format!(
            "{}: owned by uid {}, not by init's uid {uid}: refusing to use it (remove it, or run as uid {})",
            dir.display(),
            meta.uid(),
            meta.uid()
        )));
    }
    Ok(())
}

/// Removes everything inside `dir` (what a previous run of the same container left).
fn clear_dir(dir: &Path) -> Result<(), Error> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format_args!("read {}", dir.display()), &e))?;
    for entry in rd.flatten() {
        let p = entry.path();
        let r = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
            _ => std::fs::remove_file(&p),
        };
        if let Err(e) = r {
            return Err(Error::io(
                format_args!("remove the stale {}", p.display()),
                &e,
            ));
        }
    }
    Ok(())
}

/// The error for /run not being writable, with how to fix it. Other errors keep their words.
fn not_writable(what: &str, e: &std::io::Error, uid: u32) -> Error {
    let errno = libcustos::error::errno_of(e);
    if !matches!(errno, Errno::EROFS | Errno::EACCES | Errno::EPERM) {
        return Error::sys(what, errno);
    }
    let docker = if uid == 0 {
        "docker run --tmpfs /run".to_string()
    } else {
        format!(
            "docker run --tmpfs /run:uid={uid},gid={}",
            nix::unistd::getegid()
        )
    };
    Error {
        code: libcustos::exit::SYSTEM,
        message: format!(
            "unable to {what}: {} (/run must be writable by init's uid {uid}: use {docker}, or in Kubernetes an emptyDir volume mounted on /run)",
            errno.desc()
        ),
    }
}
