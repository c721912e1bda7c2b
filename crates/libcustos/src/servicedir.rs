//! Service folders (SPEC section 4): `/etc/services.d/NAME/` and their live copies
//! `/run/service/NAME/`. `load` reads every setting file and reports a bad one naming the file
//! and the value; supervise loads its folder again before each start, as s6-supervise does,
//! so an edited `timeout-kill` or `down-signal` applies at the next start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::{paths, signal};

pub const DEFAULT_TIMEOUT_FINISH: Duration = Duration::from_millis(5000);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDef {
    pub name: String,
    pub dir: PathBuf,
    /// `down`: supervised but not started automatically.
    pub down: bool,
    pub has_finish: bool,
    pub notification_fd: Option<i32>,
    pub timeout_finish: Duration,
    /// None: never SIGKILL after the down signal (outside stage 3).
    pub timeout_kill: Option<Duration>,
    pub down_signal: Signal,
    /// `log/` is a logger service of its own.
    pub has_log: bool,
    /// Names from `dependencies.d/`, sorted.
    pub dependencies: Vec<String>,
    pub essential: bool,
}

/// A service name: letters, digits, `.`, `_`, `-`, `@`; not beginning with `.`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{name:?}: invalid service name (use letters, digits, '.', '_', '-' and '@', not beginning with '.')"
        )))
    }
}

fn read_setting(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format_args!("read {}", path.display()), &e)),
    }
}

fn read_ms(dir: &Path, file: &str) -> Result<Option<Duration>> {
    match read_setting(dir, file)? {
        None => Ok(None),
        Some(t) => t
            .parse::<u64>()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| {
                Error::invalid(format!(
                    "{}: invalid value {t:?} (expected a number of milliseconds)",
                    dir.join(file).display()
                ))
            }),
    }
}

/// Reads the service folder `dir` (named `name`). Errors name the file and what is wrong.
pub fn load(name: &str, dir: &Path) -> Result<ServiceDef> {
    let run = dir.join(paths::RUN);
    match std::fs::metadata(&run) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(Error::invalid(format!(
                "{}: not a regular file",
                run.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::invalid(format!(
                "{}: missing (every service needs a run file)",
                run.display()
            )))
        }
        Err(e) => return Err(Error::io(format_args!("stat {}", run.display()), &e)),
    }
    let notification_fd = match read_setting(dir, paths::NOTIFICATION_FD)? {
        None => None,
        Some(t) => match t.parse::<i32>() {
            Ok(n) if n >= 3 => Some(n),
            _ => {
                return Err(Error::invalid(format!(
                    "{}: invalid value {t:?} (expected a descriptor number of 3 or more)",
                    dir.join(paths::NOTIFICATION_FD).display()
                )))
            }
        },
    };
    let down_signal = match read_setting(dir, paths::DOWN_SIGNAL)? {
        None => Signal::SIGTERM,
        Some(t) => signal::parse(&t).map_err(|e| {
            Error::invalid(format!(
                "{}: {}",
                dir.join(paths::DOWN_SIGNAL).display(),
                e.message
            ))
        })?,
    };
    let timeout_finish = read_ms(dir, paths::TIMEOUT_FINISH)?.unwrap_or(DEFAULT_TIMEOUT_FINISH);
    let timeout_kill = read_ms(dir, paths::TIMEOUT_KILL)?.filter(|d| !d.is_zero());
    let mut dependencies = Vec::new();
    let deps_dir = dir.join(paths::DEPENDENCIES);
    if deps_dir.is_dir() {
        let rd = std::fs::read_dir(&deps_dir)
            .map_err(|e| Error::io(format_args!("read {}", deps_dir.display()), &e))?;
        for entry in rd.flatten() {
            let dep = entry.file_name().to_string_lossy().to_string();
            if dep.starts_with('.') {
                continue;
            }
            validate_name(&dep)
                .map_err(|e| Error::invalid(format!("{}: {}", deps_dir.display(), e.message)))?;
            dependencies.push(dep);
        }
        dependencies.sort();
    }
    let log = dir.join(paths::LOG);
    Ok(ServiceDef {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        down: dir.join(paths::DOWN).exists(),
        has_finish: dir.join(paths::FINISH).is_file(),
        notification_fd,
        timeout_finish,
        timeout_kill,
        down_signal,
        has_log: log.is_dir(),
        dependencies,
        essential: dir.join(paths::ESSENTIAL).exists(),
    })
}

/// Lists the service names in `dir` (names beginning with `.` skipped), sorted. Entries with an
/// invalid name are returned as errors; a missing `dir` means no services.
pub fn list(dir: &Path) -> Result<(Vec<String>, Vec<Error>)> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(Error::io(format_args!("read {}", dir.display()), &e)),
    };
    let mut names = Vec::new();
    let mut bad = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        match validate_name(&name) {
            Ok(()) => names.push(name),
            Err(e) => bad.push(Error::invalid(format!("{}: {}", dir.display(), e.message))),
        }
    }
    names.sort();
    Ok((names, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("libcustos-sd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn names() {
        for good in ["nginx", "a.b_c-d@1", "X9"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a b", "a/b", "é"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_and_settings() {
        let d = tmp("settings");
        assert!(load("x", &d).unwrap_err().message.contains("run: missing"));
        std::fs::write(d.join("run"), "#!/bin/sh\n").unwrap();
        let def = load("x", &d).unwrap();
        assert_eq!(def.down_signal, Signal::SIGTERM);
        assert_eq!(def.timeout_finish, DEFAULT_TIMEOUT_FINISH);
        assert_eq!(def.timeout_kill, None);
        assert_eq!(def.notification_fd, None);
        assert!(!def.down && !def.essential && !def.has_log && !def.has_finish);

        std::fs::write(d.join("down-signal"), "HUP\n").unwrap();
        std::fs::write(d.join("timeout-kill"), "250\n").unwrap();
        std::fs::write(d.join("timeout-finish"), "100").unwrap();
        std::fs::write(d.join("notification-fd"), "3\n").unwrap();
        std::fs::write(d.join("down"), "").unwrap();
        std::fs::write(d.join("essential"), "").unwrap();
        std::fs::create_dir_all(d.join("dependencies.d")).unwrap();
        std::fs::write(d.join("dependencies.d/b"), "").unwrap();
        std::fs::write(d.join("dependencies.d/a"), "").unwrap();
        std::fs::create_dir_all(d.join("log")).unwrap();
        let def = load("x", &d).unwrap();
        assert_eq!(def.down_signal, Signal::SIGHUP);
        assert_eq!(def.timeout_kill, Some(Duration::from_millis(250)));
        assert_eq!(def.timeout_finish, Duration::from_millis(100));
        assert_eq!(def.notification_fd, Some(3));
        assert!(def.down && def.essential && def.has_log);
        assert_eq!(def.dependencies, vec!["a", "b"]);
    }

    #[test]
    fn bad_values_name_the_file() {
        let d = tmp("bad");
        std::fs::write(d.join("run"), "").unwrap();
        for (file, value) in [
            ("down-signal", "NOPE"),
            ("timeout-kill", "3s"),
            ("notification-fd", "1"),
        ] {
            std::fs::write(d.join(file), value).unwrap();
            let e = load("x", &d).unwrap_err();
            assert!(
                e.message.contains(file) && e.message.contains(value),
                "{}",
                e.message
            );
            std::fs::remove_file(d.join(file)).unwrap();
        }
    }
}
