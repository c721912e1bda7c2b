//! svctl, standalone: the supervise side is faked by the test. A live service folder is built
//! by hand (`supervise/status` written with libcustos, `supervise/lock` held with flock,
//! `supervise/control` a FIFO the test reads), and svctl is run on it by path. Covers every
//! subcommand, its exit codes, the `--json` shape, wait's wake-ups and timeout, check, and
//! refusal for a user who does not own the tree.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use custos_tests::{bin, is_real_root, skip, tempdir, wait_until};
use libcustos::status::{LastEnd, State, Status};

/// A service folder that looks supervised: status, held lock, control FIFO.
struct Live {
    dir: PathBuf,
    _lock: File,
    fifo: File,
}

impl Live {
    fn new(parent: &Path, name: &str, status: Status) -> Live {
        let dir = parent.join(name);
        std::fs::create_dir_all(dir.join("supervise")).expect("mkdir supervise");
        let lock = libcustos::lock::take(&dir)
            .expect("take lock")
            .expect("lock free");
        libcustos::status::write(&dir, &status).expect("write status");
        let fifo = libcustos::control::open_fifo(&dir.join("supervise/control")).expect("mkfifo");
        Live {
            dir,
            _lock: lock,
            fifo,
        }
    }

    fn set(&self, status: Status) {
        libcustos::status::write(&self.dir, &status).expect("write status");
    }

    /// Everything svctl wrote to the FIFO so far.
    fn sent(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        let mut fifo = &self.fifo;
        loop {
            match fifo.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read fifo: {e}"),
            }
        }
        out
    }

    fn arg(&self) -> &str {
        self.dir.to_str().expect("utf-8 path")
    }
}

fn up(pid: u64) -> Status {
    Status {
        state: State::Up,
        pid,
        since: SystemTime::now(),
        ..Status::new(true)
    }
}

fn svctl(args: &[&str]) -> Output {
    Command::new(bin("svctl"))
        .args(args)
        .output()
        .expect("run svctl")
}

fn show(args: &[&str], out: &Output) -> String {
    format!(
        "svctl {}: exit {:?}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn expect(args: &[&str], code: i32) -> Output {
    let out = svctl(args);
    assert_eq!(out.status.code(), Some(code), "{}", show(args, &out));
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn status_table_and_json() {
    let base = tempdir("svctl-status");
    let now = SystemTime::now();
    let web = Live::new(
        &base,
        "web",
        Status {
            declares_readiness: true,
            ready: true,
            last: LastEnd::Exited(3),
            restarts: 2,
            since: now - Duration::from_secs(184),
            ..up(4242)
        },
    );
    let db = Live::new(
        &base,
        "db",
        Status {
            wanted_up: false,
            paused: true,
            last: LastEnd::Killed(15),
            since: now - Duration::from_secs(7260),
            ..Status::new(false)
        },
    );
    let gone = base.join("gone");
    std::fs::create_dir_all(gone.join("supervise")).unwrap();
    let gone = gone.to_str().unwrap();

    let args = ["status", web.arg(), db.arg(), gone];
    let out = expect(&args, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        head,
        ["NAME", "STATE", "PID", "TIME", "READY", "WANTED", "LAST", "RESTARTS", "PAUSED"]
    );
    let cells = |l: &str| {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        cells(lines[1])[1..],
        ["up", "4242", "3m4s", "ready", "up", "exit 3", "2", "no"],
        "{text}"
    );
    assert_eq!(
        cells(lines[2])[1..],
        ["down", "-", "2h1m", "-", "down", "signal TERM", "0", "yes"],
        "{text}"
    );
    assert_eq!(cells(lines[3])[1], "not supervised", "{text}");
    // aligned: every column starts at the header's offset
    let col = lines[0].find("WANTED").unwrap();
    assert_eq!(&lines[1][col..col + 3], "up ", "{text}");
    assert_eq!(&lines[2][col..col + 4], "down", "{text}");

    let args = ["status", "--json", web.arg(), db.arg(), gone];
    let out = expect(&args, 0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let s = doc["services"].as_array().expect("services array");
    assert_eq!(s.len(), 3);
    assert_eq!(s[0]["name"], web.arg());
    assert_eq!(s[0]["path"], web.arg());
    assert_eq!(s[0]["supervised"], true);
    assert_eq!(s[0]["state"], "up");
    assert_eq!(s[0]["pid"], 4242);
    let secs = s[0]["seconds"].as_u64().unwrap();
    assert!((184..190).contains(&secs), "{secs}");
    let since = s[0]["since"].as_str().unwrap();
    let parsed = humantime_parse(since);
    assert!(
        parsed.abs_diff(unix(now - Duration::from_secs(184))) <= 1,
        "{since}"
    );
    assert_eq!(s[0]["ready"], true);
    assert_eq!(s[0]["declares_readiness"], true);
    assert_eq!(s[0]["wanted"], "up");
    assert_eq!(s[0]["paused"], false);
    assert_eq!(s[0]["last"], serde_json::json!({"exit": 3}));
    assert_eq!(s[0]["restarts"], 2);
    assert_eq!(s[1]["state"], "down");
    assert_eq!(s[1]["pid"], serde_json::Value::Null);
    assert_eq!(s[1]["wanted"], "down");
    assert_eq!(s[1]["paused"], true);
    assert_eq!(
        s[1]["last"],
        serde_json::json!({"signal": "TERM", "number": 15})
    );
    assert_eq!(s[2]["supervised"], false);
    assert_eq!(s[2]["state"], serde_json::Value::Null);
    assert_eq!(s[2]["restarts"], serde_json::Value::Null);
    for svc in s {
        assert_eq!(svc.as_object().unwrap().len(), 13, "{svc}");
    }
    let _ = std::fs::remove_dir_all(base);
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ` (days from civil, no crate needed).
fn humantime_parse(t: &str) -> u64 {
    assert!(
        t.len() == 20 && t.ends_with('Z') && &t[10..11] == "T",
        "not RFC 3339 UTC: {t}"
    );
    let n = |a: usize, b: usize| t[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    (days * 86400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)) as u64
}

#[test]
fn control_commands_send_their_byte() {
    let base = tempdir("svctl-control");
    let a = Live::new(&base, "a", up(10));
    let b = Live::new(&base, "b", up(11));
    let table: [(&[&str], &[u8]); 13] = [
        (&["up"], b"u"),
        (&["down"], b"d"),
        (&["once"], b"o"),
        (&["restart"], b"r"),
        (&["pause"], b"p"),
        (&["cont"], b"c"),
        (&["kill"], b"t"),
        (&["kill", "-s", "HUP"], b"h"),
        (&["kill", "-s", "SIGKILL"], b"k"),
        (&["kill", "-s", "usr1"], b"1"),
        (&["kill", "--signal", "3"], b"q"),
        (&["kill", "-s", "CHLD"], &[b's', 17]),
        (&["kill", "-s", "PWR"], &[b's', 30]),
    ];
    for (cmd, bytes) in table {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push(a.arg());
        args.push(b.arg());
        expect(&args, 0);
        assert_eq!(a.sent(), bytes, "{args:?}");
        assert_eq!(b.sent(), bytes, "{args:?}");
    }
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn every_name_is_checked_before_anything_is_sent() {
    let base = tempdir("svctl-refuse");
    let a = Live::new(&base, "a", up(10));
    let idle = base.join("idle");
    std::fs::create_dir_all(idle.join("supervise")).unwrap();
    let idle = idle.to_str().unwrap();
    let missing = base.join("missing");
    let missing = missing.to_str().unwrap();

    let out = expect(&["up", a.arg(), missing], 100);
    assert_eq!(
        stderr(&out),
        format!("svctl: fatal: {missing}: no such service\n")
    );
    let out = expect(&["down", a.arg(), idle], 100);
    assert_eq!(
        stderr(&out),
        format!("svctl: fatal: {idle}: not supervised\n")
    );
    let out = expect(&["kill", "-s", "BOGUS", a.arg()], 100);
    assert!(
        stderr(&out).starts_with("svctl: fatal: BOGUS: unknown signal"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        a.sent(),
        b"",
        "nothing may be sent when one NAME is refused"
    );

    // a name, not a path, is looked up in /run/service
    let out = expect(&["up", "no-such-service-here"], 100);
    assert_eq!(
        stderr(&out),
        "svctl: fatal: no-such-service-here: no such service\n"
    );
    let out = expect(&["status", missing], 100);
    assert!(stderr(&out).contains("no such service"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn usage_help_and_version() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["up"],
        &["kill", "-s"],
        &["wait"],
        &["status", "--bogus"],
        &["halt", "1", "2"],
    ] {
        let out = expect(args, 100);
        assert!(
            stderr(&out).starts_with("svctl: usage: svctl status"),
            "{}",
            show(args, &out)
        );
    }
    let out = expect(&["--help"], 0);
    for sub in [
        "status",
        "--json",
        "up",
        "down",
        "once",
        "restart",
        "kill",
        "-s",
        "pause",
        "cont",
        "wait",
        "--up",
        "--ready",
        "--down",
        "--finished",
        "--timeout",
        "check",
        "halt",
    ] {
        assert!(stdout(&out).contains(sub), "--help lacks {sub}");
    }
    let out = expect(&["--version"], 0);
    assert!(stdout(&out).starts_with("svctl "), "{}", stdout(&out));
    let out = expect(&["wait", "--timeout", "3 s", "x"], 100);
    assert!(
        stderr(&out).contains("invalid duration"),
        "{}",
        stderr(&out)
    );
    let out = expect(&["halt", "256"], 100);
    assert!(
        stderr(&out).contains("256: invalid exit code"),
        "{}",
        stderr(&out)
    );
}

/// svctl, started in the background.
struct Running {
    child: Child,
    args: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let child = Command::new(bin("svctl"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn svctl");
        Running {
            child,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Waits until svctl sleeps in poll(2) on its inotify descriptor: it has read every
    /// status once and waits for a change.
    fn until_blocked(&mut self) {
        let pid = self.child.id();
        let ok = wait_until(Duration::from_secs(10), || {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            blocked_in_poll(pid)
        });
        assert!(ok, "svctl {:?} never blocked", self.args);
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("svctl {:?} exited early: {st}", self.args);
        }
    }

    /// Exit code and stderr, killing svctl if it runs past `limit`.
    fn finish(mut self, limit: Duration) -> (i32, String) {
        let done = wait_until(limit, || matches!(self.child.try_wait(), Ok(Some(_))));
        if !done {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("wait svctl");
        let mut err = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut err);
        }
        assert!(
            done,
            "svctl {:?} still running after {limit:?}; stderr: {err}",
            self.args
        );
        (status.code().unwrap_or(-1), err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.try_wait();
    }
}

/// How many times `pid` went to sleep (voluntary context switches).
fn wakeups(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether `pid` is asleep in poll/ppoll with an inotify descriptor that has watches.
fn blocked_in_poll(pid: u32) -> bool {
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let sleeping = state
        .rsplit(')')
        .next()
        .is_some_and(|r| r.trim_start().starts_with('S'));
    let watching = std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .map(|rd| {
            rd.flatten()
                .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("inotify wd:")))
        })
        .unwrap_or(false);
    // the syscall it sleeps in, where we may read it (poll 7 / ppoll 271 on x86_64, ppoll 73
    // on aarch64); without that, sleeping with watches set has to do
    let in_poll = match std::fs::read_to_string(format!("/proc/{pid}/syscall")) {
        Ok(t) => {
            let nr = t
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<i64>().ok());
            let polls: &[i64] = if cfg!(target_arch = "aarch64") {
                &[73]
            } else {
                &[7, 271]
            };
            nr.is_some_and(|n| polls.contains(&n))
        }
        Err(_) => true,
    };
    sleeping && watching && in_poll
}

#[test]
fn wait_wakes_on_each_condition() {
    let base = tempdir("svctl-wait");
    let now = SystemTime::now;
    let down = || Status {
        state: State::Down,
        since: now(),
        ..Status::new(true)
    };
    let not_ready = || Status {
        declares_readiness: true,
        ..up(7)
    };
    let finishing = || Status {
        state: State::Finishing,
        last: LastEnd::Exited(0),
        since: now(),
        ..Status::new(true)
    };
    // (flag, status at start, status that must not end the wait, status that must)
    let cases: [(&str, Status, Status, Status); 4] = [
        ("--up", down(), finishing(), up(7)),
        (
            "--ready",
            down(),
            not_ready(),
            Status {
                ready: true,
                ..not_ready()
            },
        ),
        ("--down", up(7), not_ready(), finishing()),
        ("--finished", up(7), finishing(), down()),
    ];
    for (flag, first, middle, last) in cases {
        let svc = Live::new(&base, &flag[2..], first);
        let args = ["wait", flag, "--timeout", "20s", svc.arg()];
        let mut w = Running::start(&args);
        w.until_blocked();
        let woken = wakeups(w.child.id());
        svc.set(middle);
        // it wakes, reads the new status and sleeps again
        let pid = w.child.id();
        assert!(
            wait_until(Duration::from_secs(10), || wakeups(pid) > woken),
            "{flag}: never woke"
        );
        w.until_blocked();
        assert!(
            matches!(w.child.try_wait(), Ok(None)),
            "{flag}: ended on a status that does not satisfy it"
        );
        let t = Instant::now();
        svc.set(last);
        let (code, err) = w.finish(Duration::from_secs(10));
        assert_eq!(code, 0, "{flag}: {err}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{flag}: woke late: {:?}",
            t.elapsed()
        );
    }
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn wait_returns_at_once_when_already_there_and_waits_for_all() {
    let base = tempdir("svctl-wait-all");
    let a = Live::new(&base, "a", up(1));
    let b = Live::new(&base, "b", Status::new(true));
    expect(&["wait", "--up", a.arg()], 0);
    expect(&["wait", "--ready", a.arg()], 0);
    expect(&["wait", "--finished", b.arg()], 0);
    let mut w = Running::start(&["wait", "-t", "20000", a.arg(), b.arg()]);
    w.until_blocked();
    b.set(up(2));
    let (code, err) = w.finish(Duration::from_secs(10));
    assert_eq!(code, 0, "{err}");
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn wait_follows_a_supervise_folder_that_appears_later() {
    let base = tempdir("svctl-wait-late");
    let dir = base.join("late");
    std::fs::create_dir_all(&dir).unwrap();
    let mut w = Running::start(&["wait", "--up", "--timeout", "20s", dir.to_str().unwrap()]);
    w.until_blocked();
    // what supervise does when it starts: folder, lock, status
    std::fs::create_dir(dir.join("supervise")).unwrap();
    let _lock = libcustos::lock::take(&dir).unwrap().unwrap();
    libcustos::status::write(&dir, &up(3)).unwrap();
    let (code, err) = w.finish(Duration::from_secs(10));
    assert_eq!(code, 0, "{err}");
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn wait_times_out_with_99_naming_the_laggards() {
    let base = tempdir("svctl-wait-timeout");
    let a = Live::new(&base, "a", up(1));
    let b = Live::new(&base, "b", Status::new(true));
    let t = Instant::now();
    let out = expect(
        &["wait", "--up", "--timeout", "300ms", a.arg(), b.arg()],
        99,
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "gave up late: {took:?}");
    assert_eq!(
        stderr(&out),
        format!(
            "svctl: fatal: timed out after 300ms waiting for {} to be up\n",
            b.arg()
        )
    );
    let out = expect(&["wait", "--ready", "--timeout", "200", b.arg()], 99);
    assert!(
        stderr(&out).contains("to be up and ready"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn check_healthy_and_unhealthy() {
    let base = tempdir("svctl-check");
    let now = SystemTime::now();
    let ok = Live::new(&base, "ok", up(1));
    let ready = Live::new(
        &base,
        "ready",
        Status {
            declares_readiness: true,
            ready: true,
            ..up(2)
        },
    );
    let off = Live::new(
        &base,
        "off",
        Status {
            last: LastEnd::Exited(1),
            ..Status::new(false)
        },
    );
    let out = expect(&["check", ok.arg(), ready.arg(), off.arg()], 0);
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "");

    let crashed = Live::new(
        &base,
        "crashed",
        Status {
            last: LastEnd::Exited(1),
            restarts: 4,
            since: now,
            ..Status::new(true)
        },
    );
    let slow = Live::new(
        &base,
        "slow",
        Status {
            declares_readiness: true,
            since: now - Duration::from_secs(3),
            ..up(3)
        },
    );
    let idle = base.join("idle");
    std::fs::create_dir_all(&idle).unwrap();
    let idle = idle.to_str().unwrap();
    let out = expect(&["check", ok.arg(), crashed.arg(), slow.arg(), idle], 1);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        format!("svctl: {}: down (exit 1, restarted 4 times)", crashed.arg())
    );
    // 3s, or 4s on a slow machine
    assert!(
        lines[1].starts_with(&format!("svctl: {}: up ", slow.arg())),
        "{text}"
    );
    assert!(lines[1].ends_with("s but not ready"), "{text}");
    assert_eq!(lines[2], format!("svctl: {idle}: not supervised"));

    // the whole container: /run/service of this machine, when it has none
    if !Path::new("/run/service").exists() {
        let out = expect(&["check"], 0);
        assert_eq!(stdout(&out), "");
        let out = expect(&["status"], 0);
        assert_eq!(stdout(&out).lines().count(), 1, "header only");
        let out = expect(&["status", "--json"], 0);
        assert_eq!(stdout(&out).trim(), r#"{"services":[]}"#);
    }
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn halt_without_init_is_refused() {
    if Path::new("/run/custos/control").exists() {
        return skip(
            "halt_without_init_is_refused",
            "this machine has a /run/custos/control",
        );
    }
    let out = expect(&["halt", "3"], 100);
    assert!(
        stderr(&out).starts_with("svctl: fatal: /run/custos/control: init is not listening"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn only_the_owner_may_control() {
    if !is_real_root() {
        return skip(
            "only_the_owner_may_control",
            "needs real root (to run svctl as another user)",
        );
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        return skip(
            "only_the_owner_may_control",
            "setpriv (util-linux) is missing",
        );
    }
    let base = tempdir("svctl-owner");
    let svc = Live::new(&base, "svc", up(5));
    // the FIFO is root's, mode 0600, as supervise makes it
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(bin("svctl"))
            .args(args)
            .output()
            .expect("run setpriv")
    };
    let out = as_nobody(&["down", svc.arg()]);
    assert_eq!(out.status.code(), Some(100), "{}", show(&["down"], &out));
    assert_eq!(
        stderr(&out),
        format!(
            "svctl: fatal: {}: permission denied: only the owner of the supervision tree (uid 0) may control it\n",
            svc.arg()
        )
    );
    assert_eq!(svc.sent(), b"");
    let out = as_nobody(&["status", svc.arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&["status"], &out));
    assert!(
        stdout(&out)
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains(" up ")),
        "{}",
        stdout(&out)
    );
    let out = as_nobody(&["check", svc.arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&["check"], &out));
    let out = as_nobody(&["wait", "--up", svc.arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&["wait"], &out));
    // and root may
    expect(&["down", svc.arg()], 0);
    assert_eq!(svc.sent(), b"d");
    let _ = std::fs::remove_dir_all(base);
}
