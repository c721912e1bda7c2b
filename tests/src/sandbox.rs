//! Runs the real `/init` as PID 1 of fresh pid+mount namespaces, chrooted into a busybox root
//! filesystem that holds the release tarball: a container without a container engine.
//!
//! `Sandbox::new` builds the root (STYLE §9); `Sandbox::init()` returns an `InitBuilder` for one
//! run; `spawn` starts it under
//! `unshare [--user --map-root-user] --pid --fork --mount --kill-child --mount-proc=ROOT/proc`,
//! whose child is a host `sh` that binds `/dev`, mounts a tmpfs on `/run` (noexec, nosuid, as
//! Docker's `--tmpfs /run`), optionally remounts the root read-only, then execs
//! `env -i ENV... unshare --root=ROOT --wd=DIR [-S U -G G] -- /init ARGS...`, so the program
//! keeps the pid (1) and gets exactly the environment asked for. As real root no user namespace
//! is used, so setuidgid, chown and capabilities work inside.
//!
//! `Running` is the guard: Drop SIGKILLs `unshare`, and `--kill-child` then takes the whole
//! namespace down. Every wait is a deadline poll; a timed-out wait kills and panics with the
//! output so far and a listing of the sandbox's `/run`.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{extract_tarball, is_real_root, tempdir, wait_until, write_file};

/// The PATH of the container's environment (Docker's default).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long `exec`/`exec_as` may take before they are killed and the test fails.
const EXEC_GUARD: Duration = Duration::from_secs(20);

/// How long `init_pid()` waits for the program to appear (setup mounts, then two execs).
const FIND_INIT: Duration = Duration::from_secs(10);

/// The setup run by the host's sh inside the new namespaces, before the chroot. Everything
/// comes in as positional parameters (never interpolated): ROOT, READ_ONLY (0|1), RUN
/// (`disk` or a tmpfs mode), then the command to exec.
const SETUP: &str = r#"set -e
root=$1 ro=$2 run=$3
shift 3
if [ "$ro" = 1 ]; then mount --rbind "$root" "$root"; fi
mount --rbind /dev "$root/dev"
if [ "$run" != disk ]; then mount -t tmpfs -o "noexec,nosuid,nodev,mode=$run" tmpfs "$root/run"; fi
if [ "$ro" = 1 ]; then mount -o remount,bind,ro "$root"; fi
exec "$@""#;

/// What the not-PID-1 wrapper runs: PID 1 is a shell that runs the program as its child
/// (as under `docker run --init` or a shared pid namespace).
const OTHER_PID1: &str = r#""$@"; exit $?"#;

/// The contents of /etc/passwd in every sandbox and base image.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:2:2:daemon:/sbin:/bin/false\n\
www:x:1000:1000:www:/home/www:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

/// The contents of /etc/group in every sandbox and base image.
pub const GROUP: &str = "root:x:0:\n\
daemon:x:2:\n\
www:x:1000:\n\
extra:x:3000:daemon\n\
nogroup:x:65534:\n";

/// The result of one run: of `/init`, of an `exec`, of a docker command.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code, or 128+N when killed by signal N.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// From spawn to exit.
    pub elapsed: Duration,
    /// From the last `Running::signal()` call to exit, if one was made.
    pub since_signal: Option<Duration>,
}

fn exit_code(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code()
        .or_else(|| st.signal().map(|n| 128 + n))
        .unwrap_or(-1)
}

/// Facts about an ELF file, read from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFacts {
    /// `e_machine`: 62 for x86_64, 183 for aarch64.
    pub machine: u16,
    /// A PT_INTERP program header: dynamically linked.
    pub has_interp: bool,
    /// A SHT_SYMTAB section: not stripped.
    pub has_symtab: bool,
}

/// Parses a 64-bit little-endian ELF header, program headers and section headers.
pub fn elf_facts(bytes: &[u8]) -> Result<ElfFacts, String> {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or("truncated")
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .ok_or("truncated")
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .ok_or("truncated")
    };
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err(format!(
            "not a 64-bit little-endian ELF (class {}, data {})",
            bytes[4], bytes[5]
        ));
    }
    let machine = u16_at(18)?;
    let (phoff, phentsize, phnum) = (
        u64_at(32)? as usize,
        u16_at(54)? as usize,
        u16_at(56)? as usize,
    );
    let (shoff, shentsize, shnum) = (
        u64_at(40)? as usize,
        u16_at(58)? as usize,
        u16_at(60)? as usize,
    );
    let mut has_interp = false;
    for i in 0..phnum {
        if u32_at(phoff + i * phentsize)? == 3 {
            has_interp = true;
        }
    }
    let mut has_symtab = false;
    for i in 0..shnum {
        if u32_at(shoff + i * shentsize + 4)? == 2 {
            has_symtab = true;
        }
    }
    Ok(ElfFacts {
        machine,
        has_interp,
        has_symtab,
    })
}

/// The host's busybox, checked to be statically linked (busybox-static), so it runs in a
/// root with no libc.
pub fn host_busybox() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = ["/bin/busybox", "/usr/bin/busybox"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or("no /bin/busybox: install busybox-static")?;
            let bytes =
                std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
            match elf_facts(&bytes) {
                Ok(f) if !f.has_interp => Ok(path),
                Ok(_) => Err(format!(
                    "{} is dynamically linked: install busybox-static",
                    path.display()
                )),
                Err(e) => Err(format!("{}: {e}", path.display())),
            }
        })
        .clone()
}

fn applets() -> &'static [String] {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        let bb = host_busybox().unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new(&bb)
            .arg("--list")
            .output()
            .expect("run busybox --list");
        assert!(
            out.status.success(),
            "busybox --list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
            .map(String::from)
            .collect()
    })
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

/// Fills `root` with a busybox root filesystem (no custos): /bin/busybox with every applet
/// linked in /bin, /etc/passwd and /etc/group (see `PASSWD`, `GROUP`), /tmp (1777), /proc,
/// /dev, /run, /var/log, /root. Shared by `Sandbox::new` and `docker::base_image`.
pub fn busybox_rootfs(root: &Path) {
    let bb = host_busybox().unwrap_or_else(|e| panic!("{e}"));
    for dir in [
        "bin", "etc", "tmp", "proc", "dev", "run", "var/log", "root", "home/www",
    ] {
        std::fs::create_dir_all(root.join(dir))
            .unwrap_or_else(|e| panic!("mkdir {}/{dir}: {e}", root.display()));
    }
    set_mode(&root.join("tmp"), 0o1777);
    set_mode(&root.join("root"), 0o700);
    let target = root.join("bin/busybox");
    std::fs::copy(&bb, &target)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", bb.display(), target.display()));
    set_mode(&target, 0o755);
    for applet in applets() {
        let link = root.join("bin").join(applet);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink("busybox", &link)
                .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        }
    }
    write_file(&root.join("etc/passwd"), PASSWD, 0o644);
    write_file(&root.join("etc/group"), GROUP, 0o644);
    if is_real_root() {
        let _ = std::os::unix::fs::chown(root.join("home/www"), Some(1000), Some(1000));
    }
}

/// Checks once that fresh namespaces work here (and that busybox-static, unshare and nsenter
/// are present); `Err` says why not, for `skip()`.
pub fn namespaces_available() -> Result<(), String> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            host_busybox()?;
            for tool in ["unshare", "nsenter", "mount", "env"] {
                let found = Command::new(tool)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok();
                if !found {
                    return Err(format!("{tool} not found (install util-linux)"));
                }
            }
            let dir = tempdir("ns-check");
            let mut cmd = Command::new("unshare");
            if !is_real_root() {
                cmd.args(["--user", "--map-root-user"]);
            }
            cmd.args([
                "--pid",
                "--fork",
                "--mount",
                "--kill-child",
                "--mount-proc",
                "--",
                "/bin/sh",
                "-c",
            ])
            .arg(r#"mount -t tmpfs -o noexec,nosuid tmpfs "$1" && echo "$$""#)
            .arg("sh")
            .arg(&dir)
            .env_clear()
            .env("PATH", PATH)
            .stdin(Stdio::null());
            let res = match command_output(&mut cmd, Duration::from_secs(20)) {
                Ok(out) if out.code == 0 && out.stdout.trim() == "1" => Ok(()),
                Ok(out) => Err(format!(
                    "unshare cannot create pid+mount namespaces here (exit {}): {}",
                    out.code,
                    out.stderr.trim()
                )),
                Err(_) => Err("unshare did not answer within 20 s".to_string()),
            };
            let _ = std::fs::remove_dir_all(&dir);
            res
        })
        .clone()
}

/// A container root filesystem under a temp dir: busybox plus the release tarball. Removed on
/// Drop unless the thread is panicking (kept for inspection).
pub struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    /// A fresh rootfs under `tempdir(name)`: `busybox_rootfs` plus the release tarball
    /// extracted at /.
    pub fn new(name: &str) -> Sandbox {
        let root = tempdir(name);
        busybox_rootfs(&root);
        extract_tarball(&root);
        Sandbox { root }
    }

    /// The root folder on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of `rel` (a path inside the root; a leading `/` is allowed).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Writes ROOT/rel with `content` and `mode`, creating folders.
    pub fn write(&self, rel: &str, content: &str, mode: u32) {
        write_file(&self.path(rel), content, mode);
    }

    /// Creates ROOT/rel and its parents.
    pub fn mkdir(&self, rel: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }

    /// ROOT/rel as text (lossy), or None if it cannot be read.
    pub fn read(&self, rel: &str) -> Option<String> {
        self.read_bytes(rel)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// ROOT/rel as bytes, or None if it cannot be read.
    pub fn read_bytes(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(rel)).ok()
    }

    /// A builder for one run of `/init` in this root.
    pub fn init(&self) -> InitBuilder {
        InitBuilder {
            root: self.root.clone(),
            program: "/init".into(),
            args: Vec::new(),
            env: Vec::new(),
            other_pid1: false,
            read_only: false,
            run_tmpfs: true,
            user: None,
            workdir: "/".into(),
            stdin_piped: false,
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// One run of `/init` (or, for the harness's own tests, another `program`).
#[must_use]
pub struct InitBuilder {
    root: PathBuf,
    program: String,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    other_pid1: bool,
    read_only: bool,
    run_tmpfs: bool,
    user: Option<(u32, u32)>,
    workdir: String,
    stdin_piped: bool,
}

impl InitBuilder {
    /// Runs `path` (inside the root) instead of `/init`: for the harness's own tests only.
    pub fn program(mut self, path: &str) -> Self {
        self.program = path.into();
        self
    }

    /// Appends one CMD argument.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }

    /// Appends CMD arguments.
    pub fn args(mut self, a: &[&str]) -> Self {
        self.args.extend(a.iter().map(OsString::from));
        self
    }

    /// Appends one CMD argument, byte for byte.
    pub fn arg_os(mut self, a: &OsStr) -> Self {
        self.args.push(a.to_owned());
        self
    }

    /// Adds a variable to the container environment, which is exactly these plus `PATH` (the
    /// builder's own PATH, if given, replaces the default).
    pub fn env(self, k: &str, v: &str) -> Self {
        self.env_os(OsStr::new(k), OsStr::new(v))
    }

    /// Like `env`, byte-exact (non-UTF-8, newlines).
    pub fn env_os(mut self, k: &OsStr, v: &OsStr) -> Self {
        self.env.retain(|(name, _)| name != k);
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// `/init` is not PID 1: PID 1 is `/bin/sh -c '"$@"; exit $?'` running it as its child.
    pub fn under_other_pid1(mut self) -> Self {
        self.other_pid1 = true;
        self
    }

    /// The root is bind-mounted on itself and remounted read-only (/run still gets its tmpfs,
    /// unless `run_on_disk`).
    pub fn read_only_root(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// /run is a tmpfs mounted noexec,nosuid,nodev (the default, as Docker's `--tmpfs /run`).
    pub fn run_noexec(mut self) -> Self {
        self.run_tmpfs = true;
        self
    }

    /// /run is ROOT/run, a plain folder of the root: a later run finds what this one left, and
    /// the host can read it after the run.
    pub fn run_on_disk(mut self) -> Self {
        self.run_tmpfs = false;
        self
    }

    /// Runs the program as `uid:gid`, with no supplementary groups; the /run tmpfs is then
    /// mode 1777. Needs real root (`is_real_root()`).
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.user = Some((uid, gid));
        self
    }

    /// The working directory of the program, inside the root (default `/`).
    pub fn workdir(mut self, dir: &str) -> Self {
        self.workdir = dir.into();
        self
    }

    /// Stdin is /dev/null (the default).
    pub fn stdin_null(mut self) -> Self {
        self.stdin_piped = false;
        self
    }

    /// Stdin is a pipe: see `Running::write_stdin` and `Running::close_stdin`.
    pub fn stdin_piped(mut self) -> Self {
        self.stdin_piped = true;
        self
    }

    fn container_env(&self) -> Vec<(OsString, OsString)> {
        let mut env = self.env.clone();
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), PATH.into()));
        }
        env
    }

    /// The full command line, for messages.
    fn describe(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.env {
            s.push_str(&format!(
                "{}={:?} ",
                k.to_string_lossy(),
                v.to_string_lossy()
            ));
        }
        s.push_str(&self.program);
        for a in &self.args {
            s.push_str(&format!(" {:?}", a.to_string_lossy()));
        }
        s
    }

    /// Starts the run.
    pub fn spawn(self) -> Running {
        let userns = !is_real_root();
        if self.user.is_some() && userns {
            panic!("InitBuilder::user() needs real root: gate the test on custos_tests::is_real_root()");
        }
        let root = self
            .root
            .canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", self.root.display()));
        let mut cmd = Command::new("unshare");
        if userns {
            cmd.args(["--user", "--map-root-user"]);
        }
        cmd.args(["--pid", "--fork", "--mount", "--kill-child"]);
        cmd.arg(format!("--mount-proc={}", root.join("proc").display()));
        cmd.args(["--", "/bin/sh", "-c", SETUP, "sh"]);
        cmd.arg(&root);
        cmd.arg(if self.read_only { "1" } else { "0" });
        cmd.arg(match (self.run_tmpfs, self.user) {
            (false, _) => "disk",
            (true, None) => "0755",
            (true, Some(_)) => "1777",
        });
        // the final step: exactly the container environment, then chroot+chdir(+setuid) and exec
        cmd.args(["env", "-i", "--"]);
        for (k, v) in self.container_env() {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cmd.arg(OsString::from_vec(kv));
        }
        cmd.arg("unshare");
        cmd.arg(format!("--root={}", root.display()));
        cmd.arg(format!("--wd={}", self.workdir));
        if let Some((uid, gid)) = self.user {
            cmd.args(["-S", &uid.to_string(), "-G", &gid.to_string()]);
        }
        cmd.arg("--");
        if self.other_pid1 {
            cmd.args(["/bin/sh", "-c", OTHER_PID1, "sh"]);
        }
        cmd.arg(&self.program);
        cmd.args(&self.args);
        cmd.env_clear().env("PATH", PATH);
        cmd.stdin(if self.stdin_piped {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());

        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn unshare for {}: {e}", self.describe()));
        let stdout = Capture::start(child.stdout.take());
        let stderr = Capture::start(child.stderr.take());
        let stdin = child.stdin.take();
        Running {
            unshare_pid: child.id() as i32,
            child: Some(child),
            describe: self.describe(),
            env: self.container_env(),
            root,
            program: self.program,
            other_pid1: self.other_pid1,
            userns,
            stdout,
            stderr,
            stdin: Mutex::new(stdin),
            started,
            last_signal: Mutex::new(None),
            init_pid: OnceLock::new(),
        }
    }

    /// `spawn` then `wait(timeout)`.
    pub fn run(self, timeout: Duration) -> Output {
        self.spawn().wait(timeout)
    }
}

/// A reader thread collecting one pipe.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    done: Arc<AtomicBool>,
    _thread: Option<JoinHandle<()>>,
}

impl Capture {
    fn start<R: Read + Send + 'static>(pipe: Option<R>) -> Capture {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(pipe.is_none()));
        let thread = pipe.map(|mut pipe| {
            let (buf, done) = (buf.clone(), done.clone());
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                done.store(true, Ordering::SeqCst);
            })
        });
        Capture {
            buf,
            done,
            _thread: thread,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    fn bytes(&self) -> Vec<u8> {
        self.buf.lock().unwrap().clone()
    }

    fn finished(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

/// After a process has exited, waits a little for its pipes to reach EOF (a grandchild outside
/// our control may still hold them; we do not wait for it forever).
fn drain(a: &Capture, b: &Capture) {
    wait_until(Duration::from_secs(5), || a.finished() && b.finished());
}

/// Runs `cmd` with piped stdout/stderr (stdin as set on `cmd`, else /dev/null); `Err` carries
/// what was captured when `timeout` passed (the process is then SIGKILLed and reaped).
pub fn command_output(cmd: &mut Command, timeout: Duration) -> Result<Output, Output> {
    let started = Instant::now();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = Capture::start(child.stdout.take());
    let err = Capture::start(child.stderr.take());
    let mut status = None;
    wait_until(timeout, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let timed_out = status.is_none();
    let status = match status {
        Some(st) => st,
        None => {
            let _ = child.kill();
            child.wait().expect("reap a killed child")
        }
    };
    drain(&out, &err);
    let output = Output {
        code: exit_code(status),
        stdout: out.text(),
        stderr: err.text(),
        elapsed: started.elapsed(),
        since_signal: None,
    };
    if timed_out {
        Err(output)
    } else {
        Ok(output)
    }
}

/// A running sandbox. Drop SIGKILLs the `unshare` process (its `--kill-child` takes the whole
/// namespace down) and reaps it.
pub struct Running {
    child: Option<Child>,
    unshare_pid: i32,
    describe: String,
    env: Vec<(OsString, OsString)>,
    root: PathBuf,
    program: String,
    other_pid1: bool,
    userns: bool,
    stdout: Capture,
    stderr: Capture,
    stdin: Mutex<Option<ChildStdin>>,
    started: Instant,
    last_signal: Mutex<Option<Instant>>,
    init_pid: OnceLock<i32>,
}

fn children_of(pid: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            kids.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    kids
}

fn argv0(pid: i32) -> Option<Vec<u8>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(raw.split(|b| *b == 0).next().unwrap_or_default().to_vec())
}

impl Running {
    /// The host pid of `unshare`.
    pub fn unshare_pid(&self) -> i32 {
        self.unshare_pid
    }

    /// The sandbox root on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the program has been exec'd in the chroot: argv[0] is it, and its root is ROOT
    /// (before that, the same pid is the setup sh, then env, then unshare).
    fn is_program(&self, pid: i32) -> bool {
        argv0(pid).as_deref() == Some(self.program.as_bytes())
            && std::fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r == self.root)
    }

    fn find_init(&self) -> Option<i32> {
        let pid1 = *children_of(self.unshare_pid).first()?;
        if !self.other_pid1 {
            return self.is_program(pid1).then_some(pid1);
        }
        if argv0(pid1).as_deref() != Some(b"/bin/sh".as_slice())
            || std::fs::read_link(format!("/proc/{pid1}/root")).map_or(true, |r| r != self.root)
        {
            return None;
        }
        let mut todo = children_of(pid1);
        while let Some(pid) = todo.pop() {
            if self.is_program(pid) {
                return Some(pid);
            }
            todo.extend(children_of(pid));
        }
        None
    }

    /// The host pid of `/init` (of the program): the child of `unshare` once it has exec'd in
    /// the chroot; under `under_other_pid1`, that child's descendant. Waits for it; panics if
    /// it does not appear.
    pub fn init_pid(&self) -> i32 {
        *self.init_pid.get_or_init(|| {
            let mut found = None;
            if !wait_until(FIND_INIT, || {
                found = self.find_init();
                found.is_some()
            }) {
                panic!(
                    "{} did not start within {FIND_INIT:?} in {}\n--- stdout:\n{}\n--- stderr:\n{}",
                    self.program,
                    self.root.display(),
                    self.stdout(),
                    self.stderr()
                );
            }
            found.unwrap()
        })
    }

    /// Sends `sig` to `/init` from outside (per pid_namespaces(7), PID 1 only gets the signals
    /// it has a handler for, SIGKILL excepted).
    pub fn signal(&self, sig: Signal) {
        let pid = self.init_pid();
        *self.last_signal.lock().unwrap() = Some(Instant::now());
        kill(Pid::from_raw(pid), sig)
            .unwrap_or_else(|e| panic!("kill -{sig} {pid}: {e}\n--- stderr:\n{}", self.stderr()));
    }

    fn nsenter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.init_pid().to_string())
            .args(["-p", "-m", "-r", "-w"]);
        if self.userns {
            cmd.args(["-U", "--preserve-credentials"]);
        }
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    }

    fn run_exec(&self, mut cmd: Command, what: &[&str]) -> Output {
        cmd.arg("--").args(what);
        match command_output(&mut cmd, EXEC_GUARD) {
            Ok(out) => out,
            Err(out) => panic!(
                "exec {what:?} did not finish within {EXEC_GUARD:?}\n--- stdout:\n{}\n--- stderr:\n{}",
                out.stdout, out.stderr
            ),
        }
    }

    /// Like `docker exec`: runs `cmd` in the sandbox's namespaces, root and working directory,
    /// with the container environment; killed (and the test failed) after 20 s.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let ns = self.nsenter();
        self.run_exec(ns, cmd)
    }

    /// `exec` as `uid:gid` (no supplementary groups).
    pub fn exec_as(&self, uid: u32, gid: u32, cmd: &[&str]) -> Output {
        let mut ns = self.nsenter();
        ns.args(["-S", &uid.to_string(), "-G", &gid.to_string()]);
        self.run_exec(ns, cmd)
    }

    /// Writes to the program's stdin (`stdin_piped()` only).
    pub fn write_stdin(&self, data: &[u8]) {
        let mut stdin = self.stdin.lock().unwrap();
        let pipe = stdin
            .as_mut()
            .expect("write_stdin needs stdin_piped() and a stdin not yet closed");
        pipe.write_all(data)
            .unwrap_or_else(|e| panic!("write to stdin: {e}"));
    }

    /// Closes the program's stdin (EOF).
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap().take();
    }

    /// Stdout so far (lossy text).
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// Stderr so far (lossy text).
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Stdout so far, as bytes.
    pub fn stdout_bytes(&self) -> Vec<u8> {
        self.stdout.bytes()
    }

    /// Waits until stdout or stderr contains `needle`.
    pub fn wait_output(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.stdout().contains(needle) || self.stderr().contains(needle)
        })
    }

    /// Whether the run has ended (without reaping it).
    pub fn has_exited(&self) -> bool {
        self.child.is_none()
            || std::fs::read_to_string(format!("/proc/{}/stat", self.unshare_pid))
                .map_or(true, |s| s.contains(") Z "))
    }

    /// Waits up to `timeout` for the run to end; None if it is still running.
    pub fn try_wait(&mut self, timeout: Duration) -> Option<Output> {
        let child = self.child.as_mut()?;
        let mut status = None;
        wait_until(timeout, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        let status = status?;
        self.child = None;
        self.close_stdin();
        drain(&self.stdout, &self.stderr);
        let since_signal = self.last_signal.lock().unwrap().map(|t| t.elapsed());
        let mut code = exit_code(status);
        let mut stderr = self.stderr();
        // XXX: unshare (util-linux 2.38) re-raises its child's fatal signal on itself, but
        // signal(SIGKILL, SIG_DFL) fails, so a SIGKILLed child shows as this line and exit 1.
        const SIGKILL_QUIRK: &str = "unshare: sigprocmask unblock failed: Invalid argument\n";
        if code == 1 && stderr.ends_with(SIGKILL_QUIRK) {
            code = 128 + Signal::SIGKILL as i32;
            stderr.truncate(stderr.len() - SIGKILL_QUIRK.len());
        }
        Some(Output {
            code,
            stdout: self.stdout(),
            stderr,
            elapsed: self.started.elapsed(),
            since_signal,
        })
    }

    /// Waits for the run to end; on timeout, kills it and panics with its output and a listing
    /// of its /run.
    pub fn wait(mut self, timeout: Duration) -> Output {
        if let Some(out) = self.try_wait(timeout) {
            return out;
        }
        let listing = self.listing();
        self.kill_now();
        drain(&self.stdout, &self.stderr);
        panic!(
            "timed out after {timeout:?}: {}\n--- stdout:\n{}\n--- stderr:\n{}\n--- /run:\n{}",
            self.describe,
            self.stdout(),
            self.stderr(),
            listing
        );
    }

    /// `ls -laR /run` as the sandbox sees it (through /proc/PID/root, so a tmpfs is seen too),
    /// at most 200 lines.
    pub fn listing(&self) -> String {
        let run = match self.find_init() {
            Some(pid) => PathBuf::from(format!("/proc/{pid}/root/run")),
            None => self.root.join("run"),
        };
        let out = Command::new("ls")
            .arg("-laR")
            .arg(&run)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) => {
                let text = String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr);
                text.lines().take(200).collect::<Vec<_>>().join("\n")
            }
            Err(e) => format!("ls {}: {e}", run.display()),
        }
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            // unshare's --kill-child does not outlive a change of user (the kernel clears the
            // parent-death signal on setuid), so the namespace's PID 1 is killed by hand: with it
            // goes every process of the namespace
            let u = child.id();
            let children =
                std::fs::read_to_string(format!("/proc/{u}/task/{u}/children")).unwrap_or_default();
            for pid in children
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// A fresh sandbox for `test`, or None (after `skip` said why) where namespaces do not work.
pub fn for_test(test: &str) -> Option<Sandbox> {
    if let Err(why) = namespaces_available() {
        crate::skip(test, &why);
        return None;
    }
    Some(Sandbox::new(test))
}

/// A busybox sh snippet that prints `zombies=N`: the processes of the pid namespace in state Z.
pub const COUNT_ZOMBIES: &str = r#"z=0
for s in /proc/[0-9]*/stat; do
  read -r line < "$s" 2>/dev/null || continue
  set -- ${line##*) }
  [ "$1" = Z ] && z=$((z+1))
done
echo "zombies=$z""#;
