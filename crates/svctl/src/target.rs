//! Service names as users write them, resolved to live service folders.
//!
//! A NAME is either a name under the scan folder (`nginx`, or `nginx/log` for its logger) or a
//! path to a service folder (anything with a `/` that exists as a folder: `./x`,
//! `/run/service/nginx`). A path under `/etc/services.d/NAME` is taken as
//! `/run/service/NAME`: the source folder holds no live state, its copy in the scan folder does.

use std::path::{Component, Path, PathBuf};

use libcustos::error::{Error, Result};
use libcustos::{paths, servicedir};

/// Where names are looked up: the scan folder and the source folder it is copied from.
#[derive(Debug, Clone)]
pub struct Roots {
    /// The live service folders (`/run/service`).
    pub scan: PathBuf,
    /// The source service folders (`/etc/services.d`), mapped onto `scan`.
    pub src: PathBuf,
}

impl Roots {
    /// The SPEC's folders.
    pub fn system() -> Roots {
        Roots {
            scan: PathBuf::from(paths::SCAN_DIR),
            src: PathBuf::from(paths::SERVICES_SRC),
        }
    }
}

/// A live service folder and the name to show for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The NAME as the user gave it, or as listed (`nginx`, `nginx/log`).
    pub name: String,
    /// The live service folder.
    pub path: PathBuf,
}

/// `NAME` or `NAME/log` with a valid NAME: the forms looked up in the scan folder.
fn is_name_form(arg: &str) -> bool {
    let arg = arg.strip_suffix('/').unwrap_or(arg);
    let mut parts = arg.split('/');
    let first = parts.next().unwrap_or("");
    let ok = servicedir::validate_name(first).is_ok();
    match (parts.next(), parts.next()) {
        (None, _) => ok,
        (Some(paths::LOG), None) => ok,
        _ => false,
    }
}

fn no_such(arg: &str) -> Error {
    Error::invalid(format!("{arg}: no such service"))
}

/// Resolves one NAME. Errors (exit 100): `NAME: no such service`.
pub fn resolve(arg: &str, roots: &Roots) -> Result<Target> {
    if arg.is_empty() {
        return Err(Error::invalid("empty service name"));
    }
    if is_name_form(arg) {
        let path = roots.scan.join(arg.strip_suffix('/').unwrap_or(arg));
        if path.is_dir() {
            return Ok(Target {
                name: arg.to_string(),
                path,
            });
        }
        if !arg.contains('/') {
            return Err(no_such(arg));
        }
        // `x/log` not in the scan folder: maybe a relative path
    }
    if !arg.contains('/') {
        return Err(no_such(arg));
    }
    let given = Path::new(arg);
    if !given.is_dir() {
        return Err(no_such(arg));
    }
    if let Some(live) = live_copy(given, roots) {
        return Ok(Target {
            name: arg.to_string(),
            path: live,
        });
    }
    let path = if given.is_absolute() {
        given.to_path_buf()
    } else {
        let cwd = std::env::current_dir().map_err(|e| Error::io("find the current folder", &e))?;
        cwd.join(given)
    };
    Ok(Target {
        name: arg.to_string(),
        path: normalize(&path),
    })
}

/// `/etc/services.d/NAME[/REST]` → `/run/service/NAME[/REST]` (symbolic links resolved on both
/// sides); None for any other folder.
fn live_copy(given: &Path, roots: &Roots) -> Option<PathBuf> {
    let real = std::fs::canonicalize(given).ok()?;
    let src = std::fs::canonicalize(&roots.src).unwrap_or_else(|_| roots.src.clone());
    let rest = real.strip_prefix(&src).ok()?;
    if rest.as_os_str().is_empty() {
        return None;
    }
    Some(roots.scan.join(rest))
}

/// Drops `.` components and trailing slashes (never `..`: that would cross symbolic links).
fn normalize(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Every service of the scan folder, sorted, each followed by its `log/` sub-service if it has
/// one. Folders with an invalid name are left out with a warning; a missing scan folder means
/// no services.
pub fn list(roots: &Roots) -> Result<Vec<Target>> {
    let (names, bad) = servicedir::list(&roots.scan)?;
    for e in bad {
        libcustos::warn!("{} (left out)", e.message);
    }
    let mut out = Vec::new();
    for name in names {
        let path = roots.scan.join(&name);
        let log = path.join(paths::LOG);
        out.push(Target {
            name: name.clone(),
            path,
        });
        if log.is_dir() {
            out.push(Target {
                name: format!("{name}/{}", paths::LOG),
                path: log,
            });
        }
    }
    Ok(out)
}

/// The named services, or every service when none is named. Every NAME is checked before
/// anything else happens.
pub fn targets(names: &[String], roots: &Roots) -> Result<Vec<Target>> {
    if names.is_empty() {
        list(roots)
    } else {
        names.iter().map(|n| resolve(n, roots)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(tag: &str) -> (PathBuf, Roots) {
        let base = std::env::temp_dir().join(format!("svctl-target-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let roots = Roots {
            scan: base.join("run/service"),
            src: base.join("etc/services.d"),
        };
        for d in [
            "run/service/nginx/log",
            "run/service/db",
            "run/service/.hidden",
            "etc/services.d/nginx/log",
            "other/x",
        ] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::write(base.join("run/service/afile"), "").unwrap();
        (base, roots)
    }

    #[test]
    fn names_and_paths() {
        let (base, roots) = fixture("resolve");
        let scan = &roots.scan;
        let ok = |arg: &str, path: PathBuf| {
            assert_eq!(
                resolve(arg, &roots),
                Ok(Target {
                    name: arg.to_string(),
                    path
                }),
                "{arg}"
            );
        };
        ok("nginx", scan.join("nginx"));
        ok("nginx/log", scan.join("nginx/log"));
        ok("nginx/", scan.join("nginx"));
        ok("db", scan.join("db"));
        let other = base.join("other/x");
        ok(other.to_str().unwrap(), other.clone());
        ok(scan.join("nginx").to_str().unwrap(), scan.join("nginx"));
        // the source folder maps onto its live copy
        ok(
            roots.src.join("nginx").to_str().unwrap(),
            scan.join("nginx"),
        );
        ok(
            roots.src.join("nginx/log").to_str().unwrap(),
            scan.join("nginx/log"),
        );
        ok(
            &format!("{}/./nginx", roots.src.display()),
            scan.join("nginx"),
        );

        for bad in [
            "",
            "nope",
            "db/log",
            ".hidden",
            "afile",
            "nginx/log/x",
            "../nope",
            "/nonexistent/x",
        ] {
            let e = resolve(bad, &roots).unwrap_err();
            assert_eq!(e.code, 100, "{bad}");
            if !bad.is_empty() {
                assert_eq!(e.message, format!("{bad}: no such service"));
            }
        }
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn relative_paths_are_made_absolute() {
        let t = resolve(
            "./src",
            &Roots {
                scan: "/nonexistent".into(),
                src: "/nonexistent2".into(),
            },
        )
        .unwrap();
        assert!(t.path.is_absolute() && t.path.ends_with("src"), "{t:?}");
        assert_eq!(t.name, "./src");
        assert!(!t.path.to_string_lossy().contains("/./"));
    }

    #[test]
    fn listing() {
        let (base, roots) = fixture("list");
        let names: Vec<String> = list(&roots).unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["db", "nginx", "nginx/log"]);
        let none = Roots {
            scan: base.join("missing"),
            src: base.join("missing2"),
        };
        assert!(list(&none).unwrap().is_empty());
        let named = targets(&["nginx/log".into(), "db".into()], &roots).unwrap();
        assert_eq!(named[0].path, roots.scan.join("nginx/log"));
        assert!(targets(&["db".into(), "nope".into()], &roots).is_err());
        let _ = std::fs::remove_dir_all(base);
    }
}
