//! Real containers, where a Docker engine answers `docker info`.
//!
//! There is no registry: every image comes from `docker import` of a busybox folder
//! (`sandbox::busybox_rootfs`, the same layout as a sandbox without custos), and the release
//! tarball is `ADD`ed on top, as a user's Dockerfile would. Images are tagged by content hash,
//! so concurrent test binaries share them; builds are serialized by an flock on
//! `/tmp/custos-docker-build.lock`. `Container` is a guard: Drop is `docker rm -f`.

use std::fs::File;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::sandbox::{busybox_rootfs, command_output, Output};
use crate::{tarball, tempdir, wait_until, write_file};

/// How long a docker command that should be quick (inspect, exec, logs, rm) may take.
const GUARD: Duration = Duration::from_secs(60);

/// How long an image build may take.
const BUILD_GUARD: Duration = Duration::from_secs(300);

fn docker() -> Command {
    let mut cmd = Command::new("docker");
    // the legacy builder: no buildx plugin needed, and ADD auto-extracts tar.xz either way
    cmd.env("DOCKER_BUILDKIT", "0").stdin(Stdio::null());
    cmd
}

/// Runs a docker command to completion within `timeout`; panics on timeout.
fn docker_out(args: &[&str], timeout: Duration) -> Output {
    let mut cmd = docker();
    cmd.args(args);
    match command_output(&mut cmd, timeout) {
        Ok(out) => out,
        Err(out) => panic!(
            "docker {args:?} did not finish within {timeout:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            out.stdout, out.stderr
        ),
    }
}

/// Runs a docker command that must succeed; returns its trimmed stdout.
fn docker_ok(args: &[&str], timeout: Duration) -> String {
    let out = docker_out(args, timeout);
    assert_eq!(
        out.code, 0,
        "docker {args:?} failed (exit {})\n--- stdout:\n{}\n--- stderr:\n{}",
        out.code, out.stdout, out.stderr
    );
    out.stdout.trim().to_string()
}

/// `Ok` when a Docker engine answers `docker info` (checked once); else the reason.
pub fn available() -> Result<(), String> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let mut cmd = docker();
            cmd.args(["info", "--format", "{{.ServerVersion}}"]);
            match command_output(&mut cmd, Duration::from_secs(30)) {
                Ok(out) if out.code == 0 && !out.stdout.trim().is_empty() => Ok(()),
                Ok(out) => Err(format!(
                    "no Docker engine answers `docker info`: {}",
                    out.stderr.trim()
                )),
                Err(_) => Err("`docker info` did not answer within 30 s".to_string()),
            }
            .map_err(|e| {
                if e.contains("No such file") {
                    "docker is not installed".to_string()
                } else {
                    e
                }
            })
        })
        .clone()
}

/// The sha256 of `data`, in hex (through sha256sum: no crate needed).
fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("sha256sum output");
    writer.join().unwrap().expect("write to sha256sum");
    assert!(out.status.success(), "sha256sum failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Holds the cross-process build lock while alive (the flock goes with the descriptor).
struct BuildLock(#[allow(dead_code)] File);

fn build_lock() -> BuildLock {
    let path = "/tmp/custos-docker-build.lock";
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: flock on a descriptor we own; it blocks until the lock is ours
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {path}: {}", std::io::Error::last_os_error());
    BuildLock(file)
}

fn image_exists(tag: &str) -> bool {
    docker_out(&["image", "inspect", "--format", "{{.Id}}", tag], GUARD).code == 0
}

/// The base image for this tarball: an imported busybox root with the tarball `ADD`ed and
/// `ENTRYPOINT ["/init"]`. Built once per tarball (its tag holds the first 12 hex digits of
/// the tarball's sha256).
pub fn base_image() -> String {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        if let Err(why) = available() {
            panic!("docker::base_image: {why} (gate the test on docker::available())");
        }
        let tar = tarball();
        let bytes = std::fs::read(&tar).unwrap_or_else(|e| panic!("read {}: {e}", tar.display()));
        let hash = sha256_hex(&bytes);
        let short = &hash[..12];
        let tag = format!("custos-test-base:{short}");
        if image_exists(&tag) {
            return tag;
        }
        let _lock = build_lock();
        if image_exists(&tag) {
            return tag;
        }
        let work = tempdir("docker-base");
        let rootfs = work.join("rootfs");
        std::fs::create_dir_all(&rootfs).expect("mkdir rootfs");
        busybox_rootfs(&rootfs);
        let bare = format!("custos-test-busybox:{short}");
        let rootfs_tar = work.join("rootfs.tar");
        let st = Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&rootfs_tar)
            .arg(".")
            .status()
            .expect("run tar");
        assert!(st.success(), "tar of {} failed", rootfs.display());
        let rootfs_tar = rootfs_tar.to_str().expect("UTF-8 temp path");
        docker_ok(
            &[
                "import",
                "--message",
                "custos test busybox",
                rootfs_tar,
                &bare,
            ],
            BUILD_GUARD,
        );

        let ctx = work.join("context");
        std::fs::create_dir_all(&ctx).expect("mkdir context");
        let name = tar
            .file_name()
            .and_then(|n| n.to_str())
            .expect("tarball name")
            .to_string();
        std::fs::copy(&tar, ctx.join(&name))
            .unwrap_or_else(|e| panic!("copy {}: {e}", tar.display()));
        write_file(
            &ctx.join("Dockerfile"),
            &format!("FROM {bare}\nADD {name} /\nENTRYPOINT [\"/init\"]\n"),
            0o644,
        );
        build(&tag, &ctx);
        let _ = std::fs::remove_dir_all(&work);
        tag
    })
    .clone()
}

fn build(tag: &str, ctx: &Path) {
    let ctx = ctx.to_str().expect("UTF-8 context path");
    let out = docker_out(
        &["build", "--quiet", "--pull=false", "-t", tag, ctx],
        BUILD_GUARD,
    );
    assert_eq!(
        out.code, 0,
        "docker build -t {tag} {ctx} failed\n--- stdout:\n{}\n--- stderr:\n{}",
        out.stdout, out.stderr
    );
}

/// An image `FROM base_image()` with extra files (path in the image, content, mode) copied in,
/// then extra Dockerfile lines. Cached by a hash of all of it.
pub fn image(files: &[(&str, &str, u32)], dockerfile_lines: &[&str]) -> String {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let base = base_image();
    let mut dockerfile = format!("FROM {base}\n");
    if !files.is_empty() {
        dockerfile.push_str("COPY files/ /\n");
    }
    for line in dockerfile_lines {
        dockerfile.push_str(line);
        dockerfile.push('\n');
    }
    let mut key = dockerfile.clone().into_bytes();
    for (path, content, mode) in files {
        key.extend_from_slice(format!("\0{path}\0{mode:o}\0{}\0", content.len()).as_bytes());
        key.extend_from_slice(content.as_bytes());
    }
    let tag = format!("custos-test-image:{}", &sha256_hex(&key)[..16]);
    if BUILT.lock().unwrap().contains(&tag) || image_exists(&tag) {
        return tag;
    }
    let _lock = build_lock();
    if !image_exists(&tag) {
        let ctx = tempdir("docker-image");
        std::fs::create_dir_all(ctx.join("files")).expect("mkdir files");
        for (path, content, mode) in files {
            write_file(
                &ctx.join("files").join(path.trim_start_matches('/')),
                content,
                *mode,
            );
        }
        write_file(&ctx.join("Dockerfile"), &dockerfile, 0o644);
        build(&tag, &ctx);
        let _ = std::fs::remove_dir_all(&ctx);
    }
    BUILT.lock().unwrap().push(tag.clone());
    tag
}

fn unique_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "custos-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A container; Drop removes it (`docker rm -f`).
pub struct Container {
    pub id: String,
}

/// `docker run -d ARGS IMAGE CMD`.
pub fn run_detached(args: &[&str], image: &str, cmd: &[&str]) -> Container {
    let name = unique_name();
    let mut all = vec!["run", "-d", "--name", &name];
    all.extend_from_slice(args);
    all.push(image);
    all.extend_from_slice(cmd);
    let out = docker_out(&all, GUARD);
    if out.code != 0 {
        let _ = docker_out(&["rm", "-f", &name], GUARD);
        panic!(
            "docker {all:?} failed (exit {})\n--- stderr:\n{}",
            out.code, out.stderr
        );
    }
    Container {
        id: out.stdout.trim().to_string(),
    }
}

/// `docker run --rm ARGS IMAGE CMD` in the foreground; on timeout the container is removed and
/// the test fails with what it printed.
pub fn run(args: &[&str], image: &str, cmd: &[&str], timeout: Duration) -> Output {
    let name = unique_name();
    let mut all = vec!["run", "--rm", "--name", &name];
    all.extend_from_slice(args);
    all.push(image);
    all.extend_from_slice(cmd);
    let mut command = docker();
    command.args(&all);
    match command_output(&mut command, timeout) {
        Ok(out) => out,
        Err(out) => {
            let _ = docker_out(&["rm", "-f", &name], GUARD);
            panic!("docker {all:?} did not finish within {timeout:?}\n--- stdout:\n{}\n--- stderr:\n{}", out.stdout, out.stderr);
        }
    }
}

impl Container {
    /// `docker exec [args]` (options, then the command), guarded by a timeout.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec"];
        // options that take a value (-u U, -e K=V, -w DIR) keep it beside them
        let mut i = 0;
        let mut opts = Vec::new();
        while i < args.len() && args[i].starts_with('-') {
            opts.push(args[i]);
            if matches!(
                args[i],
                "-u" | "--user" | "-e" | "--env" | "-w" | "--workdir"
            ) && i + 1 < args.len()
            {
                opts.push(args[i + 1]);
                i += 1;
            }
            i += 1;
        }
        all.extend_from_slice(&opts);
        all.push(&self.id);
        all.extend_from_slice(&args[i..]);
        docker_out(&all, GUARD)
    }

    /// Everything the container wrote so far: (stdout, stderr).
    pub fn logs(&self) -> (String, String) {
        let out = docker_out(&["logs", &self.id], GUARD);
        (out.stdout, out.stderr)
    }

    /// Waits until the logs (stdout or stderr) contain `needle`.
    pub fn wait_logs(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || {
            let (o, e) = self.logs();
            o.contains(needle) || e.contains(needle)
        })
    }

    /// `docker stop -t SECS`; returns how long it took.
    pub fn stop(&self, secs: u32) -> Duration {
        let t0 = Instant::now();
        docker_ok(
            &["stop", "-t", &secs.to_string(), &self.id],
            GUARD + Duration::from_secs(secs.into()),
        );
        t0.elapsed()
    }

    /// Waits for the container to exit (`docker wait`) and returns its exit code; on timeout
    /// fails the test showing its logs.
    pub fn wait(&self, timeout: Duration) -> i32 {
        let mut cmd = docker();
        cmd.args(["wait", &self.id]);
        match command_output(&mut cmd, timeout) {
            Ok(out) if out.code == 0 => out
                .stdout
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("docker wait printed {:?}", out.stdout)),
            Ok(out) => panic!("docker wait {} failed: {}", self.id, out.stderr),
            Err(_) => {
                let (o, e) = self.logs();
                panic!(
                    "container {} still {} after {timeout:?}\n--- stdout:\n{o}\n--- stderr:\n{e}",
                    self.id,
                    self.state()
                );
            }
        }
    }

    /// `docker kill -s SIG`.
    pub fn kill(&self, sig: &str) {
        docker_ok(&["kill", "-s", sig, &self.id], GUARD);
    }

    /// `.State.Status`: created, running, exited, ...
    pub fn state(&self) -> String {
        self.inspect("{{.State.Status}}")
    }

    /// `docker inspect --format FORMAT`, trimmed.
    pub fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "--format", format, &self.id], GUARD)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let mut cmd = docker();
        cmd.args(["rm", "-f", &self.id]);
        let _ = command_output(&mut cmd, GUARD);
    }
}
