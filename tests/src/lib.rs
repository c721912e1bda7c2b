//! The integration-test harness: runs the real release binaries.
//!
//! `./release.sh` must have been run first: the harness extracts the newest
//! `dist/custos-*-<arch>.tar.xz` once per test process into an image root and runs the binaries
//! from there, so every test exercises exactly what ships. `sandbox` builds a busybox root
//! filesystem with that tarball in it and runs `/init` as PID 1 of fresh namespaces;
//! `docker` does the same in real containers where an engine answers.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod docker;
pub mod sandbox;

/// The repository's top folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Docker's name for this machine's architecture.
pub fn arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

/// The newest release tarball in dist/ (or in $CUSTOS_DIST_DIR, where release.sh wrote it).
pub fn tarball() -> PathBuf {
    let dist = std::env::var_os("CUSTOS_DIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist"));
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dist)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.file_name().and_then(OsStr::to_str).unwrap_or("");
                    n.starts_with("custos-") && n.ends_with(&format!("-{}.tar.xz", arch()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    match found.pop() {
        Some(p) => p,
        None => panic!(
            "no release tarball in {}: run ./release.sh first",
            dist.display()
        ),
    }
}

/// A fresh, unique temporary folder (kept on failure for inspection; tests remove it on success
/// when they care).
pub fn tempdir(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base = std::env::var_os("CUSTOS_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("custos-test-{}-{}-{}", std::process::id(), name, n));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The release tarball extracted once per test process: the binaries as they ship.
pub fn image_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = tempdir("image");
        extract_tarball(&dir);
        dir
    })
}

/// Extracts the release tarball into `dir`.
pub fn extract_tarball(dir: &Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-xJf")
        .arg(tarball())
        .arg("--no-same-owner")
        .status()
        .expect("run tar");
    assert!(st.success(), "tar -xJf {} failed", tarball().display());
}

/// The path of a shipped binary: `bin("svlog")`, `bin("init")`, `bin("supervise")`.
pub fn bin(name: &str) -> PathBuf {
    let root = image_root();
    match name {
        "init" => root.join("init"),
        "supervise" => root.join("usr/libexec/custos/supervise"),
        other => root.join("usr/bin").join(other),
    }
}

/// True when this process is real root (uid 0 in the initial user namespace): what setuidgid,
/// supplementary groups, capabilities and chown to arbitrary ids need.
pub fn is_real_root() -> bool {
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    nix::unistd::geteuid().is_root()
        && uid_map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
}

/// Prints why a test is skipped; fails instead when CUSTOS_TEST_REQUIRE_ALL=1 (CI sets it),
/// so nothing passes silently where everything should run.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("CUSTOS_TEST_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{test}: cannot run here: {why} (CUSTOS_TEST_REQUIRE_ALL=1)");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// Polls `cond` until it is true or `timeout` passes; returns whether it became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Writes `content` to `path` with mode `mode`, creating parent folders.
pub fn write_file(path: &Path, content: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent");
    }
    std::fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
