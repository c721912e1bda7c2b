//! supervise on its own (no /init): a live service folder in a temp dir, commands written to
//! `supervise/control`, `supervise/status` read back. Restart pacing, finish arguments and
//! exit 125, down files, timeout-kill, down-signal, readiness, once/restart/pause, helpers
//! stopped with the service, adoption after a SIGKILLed supervise, log prefixing and the
//! descriptors given to run. (The `essential` report to init is tested through /init.)

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use custos_tests::{bin, tempdir, wait_until, write_file};
use libcustos::status::{self, LastEnd, State, Status};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const T: Duration = Duration::from_secs(10);

/// One test's folder (`root`), its live service folder (`root/svc`), and the supervise
/// processes started on it. Drop kills them and every process still working in `root`.
struct Sv {
    root: PathBuf,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Sv {
    /// A live folder with `run` written in it directly.
    fn new(name: &str, run: &str) -> Sv {
        let root = tempdir(&format!("supervise-{name}"));
        let root = root.canonicalize().expect("canonical temp dir");
        let dir = root.join("svc");
        write_file(&dir.join("run"), run, 0o755);
        Sv {
            root,
            dir,
            children: Vec::new(),
        }
    }

    fn file(&self, rel: &str, content: &str, mode: u32) {
        write_file(&self.dir.join(rel), content, mode);
    }

    fn log(&self) -> PathBuf {
        self.root.join("supervise.log")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("open log");
        let mut c = Command::new(bin("supervise"));
        c.args(args).arg(&self.dir).stdin(Stdio::null());
        c.stdout(log.try_clone().expect("dup log")).stderr(log);
        c
    }

    /// Starts supervise with `args` and waits until it has written its first status.
    fn start(&mut self, args: &[&str]) {
        let c = self.cmd(args).spawn().expect("spawn supervise");
        self.started(c);
    }

    fn started(&mut self, c: Child) {
        self.children.push(c);
        let lock_dir = self.dir.clone();
        let ok = wait_until(T, || {
            libcustos::lock::is_held(&lock_dir) && self.try_status().is_some()
        });
        assert!(ok, "supervise did not start\n{}", self.show());
    }

    fn try_status(&self) -> Option<Status> {
        status::read(&self.dir).ok().flatten()
    }

    fn status(&self) -> Status {
        self.try_status()
            .unwrap_or_else(|| panic!("no status\n{}", self.show()))
    }

    /// Waits until the status satisfies `cond`; fails with everything known otherwise.
    fn wait(&self, what: &str, cond: impl Fn(&Status) -> bool) -> Status {
        let mut last = None;
        let ok = wait_until(T, || {
            last = self.try_status();
            last.as_ref().is_some_and(&cond)
        });
        assert!(
            ok,
            "timed out waiting for {what}; last status {last:?}\n{}",
            self.show()
        );
        last.unwrap_or_else(|| panic!("no status"))
    }

    fn wait_up(&self) -> Status {
        self.wait("up", |s| s.state == State::Up && s.pid != 0)
    }

    fn send(&self, bytes: &[u8]) {
        let fifo = self.dir.join("supervise/control");
        libcustos::control::send(&fifo, bytes)
            .unwrap_or_else(|e| panic!("send {bytes:?}: {e:?}\n{}", self.show()));
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap_or_default()
    }

    fn wait_file(&self, rel: &str, cond: impl Fn(&str) -> bool) -> String {
        let ok = wait_until(T, || cond(&self.read(rel)));
        assert!(
            ok,
            "timed out waiting for {rel}: {:?}\n{}",
            self.read(rel),
            self.show()
        );
        self.read(rel)
    }

    fn show(&self) -> String {
        format!(
            "supervise log:\n{}\nstatus: {:?}",
            self.read("supervise.log"),
            self.try_status()
        )
    }

    /// The first supervise's exit code, waiting for it.
    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + T;
        let child = self.children.first_mut()?;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st.code();
            }
            assert!(
                Instant::now() < deadline,
                "supervise did not exit\n{}",
                self.show()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Pids of the processes whose working directory is the service folder.
    fn procs_in_dir(&self) -> Vec<i32> {
        procs_with_cwd(|cwd| cwd == self.dir)
    }
}

impl Drop for Sv {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for _ in 0..3 {
            for pid in procs_with_cwd(|cwd| cwd.starts_with(&self.root)) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

fn procs_with_cwd(f: impl Fn(&Path) -> bool) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) {
            if f(&cwd) && !is_zombie(pid) {
                out.push(pid);
            }
        }
    }
    out
}

/// The state letter of /proc/PID/stat (R, S, T, Z...), None when the process is gone.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn is_zombie(pid: i32) -> bool {
    proc_state(pid) == Some('Z')
}

fn gone(pid: i32) -> bool {
    matches!(proc_state(pid), None | Some('Z'))
}

const SLEEPER: &str = "#!/bin/sh\necho $$ >> ../pids\nexec sleep 1000\n";

#[test]
fn crash_loop_is_paced_at_one_start_a_second() {
    let mut sv = Sv::new("crash", "#!/bin/sh\ndate +%s%N >> ../starts\nexit 1\n");
    sv.start(&[]);
    let starts = sv.wait_file("starts", |s| s.lines().count() >= 5);
    let t: Vec<u128> = starts
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for w in t.windows(2) {
        let gap_ms = (w[1] - w[0]) / 1_000_000;
        assert!(gap_ms >= 950, "starts {gap_ms} ms apart: {t:?}");
    }
    // 5 starts take 4 to 5 seconds: 4 to 6 starts in any 5 seconds
    let span_ms = (t[4] - t[0]) / 1_000_000;
    assert!(span_ms < 5000, "5 starts took {span_ms} ms: {t:?}");
    let st = sv.status();
    assert!(st.restarts >= 4, "{st:?}");
    assert!(st.wanted_up);
}

#[test]
fn finish_gets_exit_code_signal_dir_and_pgid() {
    let mut sv = Sv::new(
        "finish",
        "#!/bin/sh\necho $$ >> ../pids\n[ -e ../second ] && exec sleep 1000\ntouch ../second\nexit 3\n",
    );
    sv.file("finish", "#!/bin/sh\necho \"$@\" >> ../finish.out\n", 0o755);
    sv.start(&[]);
    let out = sv.wait_file("finish.out", |s| !s.is_empty());
    let first_pid = sv
        .read("pids")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(out, format!("3 0 {} {first_pid}\n", sv.dir.display()));
    let st = sv.wait("restarted", |s| s.state == State::Up && s.restarts == 1);
    assert_eq!(st.last, LastEnd::Exited(3));
    sv.send(b"d");
    let out = sv.wait_file("finish.out", |s| s.lines().count() == 2);
    let line = out.lines().nth(1).unwrap_or_default().to_string();
    assert_eq!(line, format!("256 15 {} {}", sv.dir.display(), st.pid));
    let st = sv.wait("down", |s| s.state == State::Down);
    assert_eq!(st.last, LastEnd::Killed(15));
    assert!(!st.wanted_up);
}

#[test]
fn finish_exit_125_keeps_it_down() {
    let mut sv = Sv::new("f125", "#!/bin/sh\nexit 0\n");
    sv.file("finish", "#!/bin/sh\nexit 125\n", 0o755);
    sv.start(&[]);
    let st = sv.wait("down for good", |s| {
        s.state == State::Down && s.last == LastEnd::Exited(0)
    });
    assert!(!st.wanted_up, "{st:?}");
    assert_eq!(st.restarts, 0);
}

#[test]
fn finish_state_and_timeout_finish() {
    // ends at once the first time, stays up the second
    let mut sv = Sv::new(
        "ftimeout",
        "#!/bin/sh\n[ -e ../second ] && exec sleep 1000\ntouch ../second\nexit 0\n",
    );
    sv.file(
        "finish",
        "#!/bin/sh\necho $$ > ../finish.pid\nexec sleep 1000\n",
        0o755,
    );
    sv.file("timeout-finish", "300\n", 0o644);
    sv.start(&[]);
    let st = sv.wait("finishing", |s| s.state == State::Finishing);
    let fpid: i32 = sv
        .wait_file("finish.pid", |s| !s.is_empty())
        .trim()
        .parse()
        .unwrap_or(0);
    assert_eq!(st.pid, fpid as u64, "pid is finish's while finishing");
    let st = sv.wait("restarted after finish was killed", |s| {
        s.state == State::Up && s.restarts >= 1
    });
    assert!(st.since.duration_since(UNIX_EPOCH).is_ok());
    assert!(gone(fpid));
    assert!(
        sv.read("supervise.log").contains("timeout-finish"),
        "{}",
        sv.show()
    );
}

#[test]
fn down_file_then_up() {
    let mut sv = Sv::new("downfile", SLEEPER);
    sv.file("down", "", 0o644);
    sv.start(&[]);
    let st = sv.status();
    assert_eq!((st.state, st.wanted_up, st.pid), (State::Down, false, 0));
    assert_eq!(sv.read("pids"), "");
    sv.send(b"u");
    let st = sv.wait_up();
    assert!(st.wanted_up);
    assert_eq!(
        sv.wait_file("pids", |s| !s.is_empty()).trim(),
        st.pid.to_string()
    );
}

#[test]
fn hold_waits_for_up_whatever_down_says() {
    let mut sv = Sv::new("hold", SLEEPER);
    sv.start(&["--hold"]);
    let st = sv.status();
    assert_eq!((st.state, st.wanted_up), (State::Down, false));
    sv.send(b"u");
    sv.wait_up();
}

#[test]
fn timeout_kill_kills_a_run_that_ignores_term() {
    let mut sv = Sv::new(
        "tkill",
        "#!/bin/sh\ntrap '' TERM\necho $$ >> ../pids\nexec sleep 1000\n",
    );
    sv.file("timeout-kill", "300\n", 0o644);
    sv.start(&[]);
    sv.wait_up();
    sv.wait_file("pids", |s| !s.is_empty());
    let t0 = Instant::now();
    sv.send(b"d");
    let st = sv.wait("killed", |s| s.state == State::Down);
    assert_eq!(st.last, LastEnd::Killed(9));
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "killed after {:?}",
        t0.elapsed()
    );
}

#[test]
fn without_timeout_kill_a_term_ignoring_run_stays_up() {
    let mut sv = Sv::new(
        "notkill",
        "#!/bin/sh\ntrap '' TERM\necho $$ >> ../pids\nexec sleep 1000\n",
    );
    sv.start(&[]);
    let up = sv.wait_up();
    sv.wait_file("pids", |s| !s.is_empty());
    sv.send(b"d");
    let st = sv.wait("wanted down", |s| !s.wanted_up);
    assert_eq!((st.state, st.pid), (State::Up, up.pid));
    // a k command does it
    sv.send(b"k");
    let st = sv.wait("down", |s| s.state == State::Down);
    assert_eq!(st.last, LastEnd::Killed(9));
}

#[test]
fn down_signal_is_used() {
    let mut sv = Sv::new("downsig", SLEEPER);
    sv.file("down-signal", "HUP\n", 0o644);
    sv.start(&[]);
    sv.wait_up();
    sv.send(b"d");
    let st = sv.wait("down", |s| s.state == State::Down);
    assert_eq!(st.last, LastEnd::Killed(1));
}

#[test]
fn notification_fd_readiness() {
    let mut sv = Sv::new(
        "notify",
        "#!/bin/sh\nwhile [ ! -e ../go ]; do sleep 0.02; done\necho >&3\nexec sleep 1000\n",
    );
    sv.file("notification-fd", "3\n", 0o644);
    sv.start(&[]);
    let st = sv.wait_up();
    assert!(
        st.declares_readiness && !st.ready && st.ready_since.is_none(),
        "{st:?}"
    );
    assert!(!st.is_ready());
    std::fs::write(sv.root.join("go"), "").expect("write go");
    let st = sv.wait("ready", |s| s.ready);
    assert!(st.is_ready() && st.ready_since.is_some(), "{st:?}");
    // without notification-fd: ready when up (custos rule), ready flag itself unset
    let mut plain = Sv::new("notify-plain", SLEEPER);
    plain.start(&[]);
    let st = plain.wait_up();
    assert!(!st.declares_readiness && st.is_ready(), "{st:?}");
}

#[test]
fn once_runs_once() {
    let mut sv = Sv::new("once", "#!/bin/sh\necho x >> ../starts\nexit 0\n");
    sv.file("down", "", 0o644);
    sv.start(&[]);
    sv.send(b"o");
    let st = sv.wait("ran once", |s| {
        s.state == State::Down && s.last == LastEnd::Exited(0)
    });
    assert!(!st.wanted_up, "once leaves it wanted down: {st:?}");
    assert_eq!(sv.read("starts"), "x\n");
}

#[test]
fn restart_starts_a_new_run() {
    let mut sv = Sv::new("restart", SLEEPER);
    sv.start(&[]);
    let first = sv.wait_up();
    sv.send(b"r");
    let st = sv.wait("restarted", |s| s.state == State::Up && s.pid != first.pid);
    assert_eq!(st.last, LastEnd::Killed(15));
    assert_eq!(st.restarts, 1);
    assert!(st.wanted_up);
    assert!(gone(first.pid as i32));
}

#[test]
fn pause_and_continue() {
    let mut sv = Sv::new("pause", SLEEPER);
    sv.start(&[]);
    let up = sv.wait_up();
    // once run has exec'ed sleep, so its state letters are sleep's
    sv.wait_file("pids", |s| !s.is_empty());
    assert!(wait_until(T, || std::fs::read_to_string(format!(
        "/proc/{}/comm",
        up.pid
    ))
    .is_ok_and(|c| c.trim() == "sleep")));
    sv.send(b"p");
    sv.wait("paused", |s| s.paused);
    assert!(wait_until(T, || proc_state(up.pid as i32) == Some('T')));
    sv.send(b"c");
    sv.wait("continued", |s| !s.paused);
    assert!(wait_until(T, || proc_state(up.pid as i32) == Some('S')));
    // a paused service still goes down
    sv.send(b"pd");
    sv.wait("down", |s| s.state == State::Down && !s.paused);
}

#[test]
fn a_background_helper_is_stopped_with_the_service() {
    let mut sv = Sv::new(
        "helper",
        "#!/bin/sh\nsleep 1000 &\necho $! > ../helper\nexec sleep 1000\n",
    );
    sv.start(&[]);
    sv.wait_up();
    let helper: i32 = sv
        .wait_file("helper", |s| !s.trim().is_empty())
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(!gone(helper));
    sv.send(b"d");
    sv.wait("down", |s| s.state == State::Down);
    assert!(
        wait_until(T, || gone(helper)),
        "helper {helper} survived\n{}",
        sv.show()
    );
    assert!(sv.procs_in_dir().is_empty(), "{:?}", sv.procs_in_dir());
}

#[test]
fn helpers_left_after_run_ended_are_signalled_on_down() {
    // run ends at once and leaves a helper behind in its group; d stops that helper
    let mut sv = Sv::new(
        "leftover",
        "#!/bin/sh\nsleep 1000 &\necho $! > ../helper\nexit 0\n",
    );
    sv.file("finish", "#!/bin/sh\nexit 125\n", 0o755);
    sv.start(&[]);
    let helper: i32 = sv
        .wait_file("helper", |s| !s.trim().is_empty())
        .trim()
        .parse()
        .unwrap_or(0);
    sv.wait("down", |s| s.state == State::Down && !s.wanted_up);
    assert!(!gone(helper));
    sv.send(b"d");
    assert!(
        wait_until(T, || gone(helper)),
        "helper {helper} survived\n{}",
        sv.show()
    );
}

#[test]
fn helpers_of_a_crashed_run_are_stopped_with_the_service() {
    // the first run leaves a helper and crashes; the second stays up with a helper of its own
    let mut sv = Sv::new(
        "crashhelpers",
        "#!/bin/sh\nsleep 1000 &\necho $! >> ../helpers\n[ -e ../second ] && exec sleep 1000\ntouch ../second\nexit 1\n",
    );
    sv.start(&[]);
    let helpers = sv.wait_file("helpers", |s| s.lines().count() == 2);
    sv.wait("restarted", |s| s.state == State::Up && s.restarts == 1);
    let helpers: Vec<i32> = helpers
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(helpers.iter().all(|h| !gone(*h)));
    sv.send(b"d");
    sv.wait("down", |s| s.state == State::Down);
    assert!(
        wait_until(T, || helpers.iter().all(|h| gone(*h))),
        "{helpers:?}\n{}",
        sv.show()
    );
    assert!(sv.procs_in_dir().is_empty(), "{:?}", sv.procs_in_dir());
}

#[test]
fn exit_command_and_sigterm() {
    let mut sv = Sv::new("exit", SLEEPER);
    sv.start(&[]);
    let up = sv.wait_up();
    sv.send(b"dx");
    assert_eq!(sv.wait_exit(), Some(0), "{}", sv.show());
    assert!(gone(up.pid as i32));
    assert_eq!(sv.status().state, State::Down);

    let mut sv = Sv::new("sigterm", SLEEPER);
    sv.start(&[]);
    let up = sv.wait_up();
    let pid = sv.children[0].id() as i32;
    kill(Pid::from_raw(pid), Signal::SIGTERM).expect("kill");
    assert_eq!(sv.wait_exit(), Some(0), "{}", sv.show());
    assert!(gone(up.pid as i32));
    // SIGHUP and SIGINT are ignored
    let mut sv = Sv::new("sighup", SLEEPER);
    sv.start(&[]);
    let up = sv.wait_up();
    let pid = sv.children[0].id() as i32;
    kill(Pid::from_raw(pid), Signal::SIGHUP).expect("kill");
    kill(Pid::from_raw(pid), Signal::SIGINT).expect("kill");
    sv.send(b"d");
    let st = sv.wait("down", |s| s.state == State::Down);
    assert_eq!(st.last, LastEnd::Killed(15));
    assert!(
        sv.children[0].try_wait().ok().flatten().is_none(),
        "supervise died of HUP or INT"
    );
    assert!(gone(up.pid as i32));
}

#[test]
fn usage_and_refusals() {
    let sv = Sv::new("usage", SLEEPER);
    let out = Command::new(bin("supervise")).output().expect("run");
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr).contains("supervise: usage:"));
    let out = Command::new(bin("supervise"))
        .arg(sv.root.join("nope"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(100),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let empty = sv.root.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = Command::new(bin("supervise"))
        .arg(&empty)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run: missing"));
    let out = Command::new(bin("supervise"))
        .arg("--version")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_second_supervise_is_refused() {
    let mut sv = Sv::new("twice", SLEEPER);
    sv.start(&[]);
    let up = sv.wait_up();
    let out = sv
        .cmd(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already supervised"));
    assert_eq!(sv.status().pid, up.pid);
    assert_eq!(sv.procs_in_dir(), vec![up.pid as i32]);
}

#[test]
fn adoption_after_supervise_is_killed() {
    let mut sv = Sv::new("adopt", SLEEPER);
    sv.file("notification-fd", "3\n", 0o644);
    // ready at once
    sv.file(
        "run",
        "#!/bin/sh\necho $$ >> ../pids\necho >&3\nexec sleep 1000\n",
        0o755,
    );
    sv.start(&[]);
    let up = sv.wait("up and ready", |s| s.state == State::Up && s.ready);
    let first = sv.children.remove(0);
    let mut first = first;
    first.kill().expect("SIGKILL supervise");
    first.wait().expect("wait supervise");
    sv.start(&[]);
    // the same run, kept: one run process, same pid, start time and readiness
    let st = sv.status();
    assert_eq!(st.state, State::Up, "{}", sv.show());
    assert_eq!(
        (st.pid, st.pid_start_ticks, st.since),
        (up.pid, up.pid_start_ticks, up.since)
    );
    assert!(
        st.ready && st.ready_since == up.ready_since,
        "{st:?} vs {up:?}"
    );
    assert_eq!(sv.procs_in_dir(), vec![up.pid as i32]);
    assert_eq!(sv.read("pids").lines().count(), 1);
    // its end is seen through the pidfd, and it is restarted
    kill(Pid::from_raw(up.pid as i32), Signal::SIGTERM).expect("kill run");
    let st = sv.wait("restarted", |s| s.state == State::Up && s.pid != up.pid);
    assert_eq!(st.last, LastEnd::Unknown);
    assert_eq!(sv.procs_in_dir(), vec![st.pid as i32]);
    // and commands work on it as usual
    sv.send(b"d");
    sv.wait("down", |s| s.state == State::Down);
    assert!(sv.procs_in_dir().is_empty());
}

#[test]
fn adopted_service_wanted_down_is_brought_down() {
    // run ignores TERM (the default down signal) and ends on HUP
    let mut sv = Sv::new(
        "adopt-down",
        "#!/bin/sh\ntrap '' TERM\ntrap 'exit 0' HUP\necho $$ >> ../pids\nwhile :; do sleep 0.05; done\n",
    );
    sv.start(&[]);
    let up = sv.wait_up();
    sv.wait_file("pids", |s| !s.is_empty());
    sv.send(b"d");
    sv.wait("wanted down", |s| !s.wanted_up);
    // supervise dies while run is still on its way down; the new one goes on stopping it
    sv.file("down-signal", "HUP\n", 0o644);
    let mut first = sv.children.remove(0);
    first.kill().expect("SIGKILL supervise");
    first.wait().expect("wait");
    sv.start(&[]);
    let st = sv.wait("down", |s| s.state == State::Down);
    assert_eq!(st.last, LastEnd::Unknown);
    assert!(!st.wanted_up);
    assert!(wait_until(T, || gone(up.pid as i32)));
}

#[test]
fn symlinked_live_folder_runs_the_targets() {
    let mut sv = Sv::new("symlinks", "");
    let src = sv.root.join("src");
    // run without its execute bit: run through its #! line, with a warning
    write_file(
        &src.join("run"),
        "#!/bin/sh\necho \"$0\" > ../arg0\npwd > ../cwd\nexec sleep 1000\n",
        0o644,
    );
    write_file(
        &src.join("finish"),
        "#!/bin/sh\necho \"$1 $2\" > ../finish.out\n",
        0o755,
    );
    write_file(&src.join("down-signal"), "INT\n", 0o644);
    std::fs::remove_file(sv.dir.join("run")).expect("rm run");
    for f in ["run", "finish", "down-signal"] {
        std::os::unix::fs::symlink(src.join(f), sv.dir.join(f)).expect("symlink");
    }
    sv.start(&["--name", "web"]);
    sv.wait_up();
    assert_eq!(
        sv.wait_file("arg0", |s| !s.is_empty()).trim(),
        src.join("run").display().to_string()
    );
    assert_eq!(
        sv.wait_file("cwd", |s| !s.is_empty()).trim(),
        sv.dir.display().to_string()
    );
    assert!(
        sv.read("supervise.log").contains(
            "supervise: warning: web: ./run is not executable: running it through /bin/sh"
        ),
        "{}",
        sv.show()
    );
    sv.send(b"d");
    assert_eq!(sv.wait_file("finish.out", |s| !s.is_empty()), "256 2\n");
}

#[test]
fn spawn_failure_is_retried() {
    let mut sv = Sv::new("spawnfail", "no shebang and no execute bit\n");
    std::fs::set_permissions(
        sv.dir.join("run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    sv.start(&["--name", "broken"]);
    let ok = wait_until(T, || {
        sv.read("supervise.log")
            .contains("supervise: warning: broken:")
    });
    assert!(ok, "{}", sv.show());
    assert_eq!(sv.status().state, State::Down);
    sv.file("run", SLEEPER, 0o755);
    sv.wait_up();
}

#[test]
fn environment_container_and_env_folder() {
    let mut sv = Sv::new("env", "#!/bin/sh\nenv > ../env.out\nexec sleep 1000\n");
    sv.file("env/FROM_DIR", "dir value\n", 0o644);
    sv.file("env/OVERRIDE", "from env/\n", 0o644);
    let mut c = sv.cmd(&[]);
    c.env("FROM_SUPERVISE", "yes")
        .env("OVERRIDE", "from supervise");
    let child = c.spawn().expect("spawn");
    sv.started(child);
    let env = sv.wait_file("env.out", |s| s.contains("FROM_DIR"));
    assert!(env.lines().any(|l| l == "FROM_DIR=dir value"), "{env}");
    assert!(env.lines().any(|l| l == "OVERRIDE=from env/"), "{env}");
    assert!(env.lines().any(|l| l == "FROM_SUPERVISE=yes"), "{env}");

    let mut sv = Sv::new("cleanenv", "#!/bin/sh\nenv > ../env.out\nexec sleep 1000\n");
    sv.file("env/ONLY", "this\n", 0o644);
    let mut c = sv.cmd(&["--clean-env"]);
    c.env("FROM_SUPERVISE", "yes");
    let child = c.spawn().expect("spawn");
    sv.started(child);
    let env = sv.wait_file("env.out", |s| s.contains("ONLY"));
    assert!(!env.contains("FROM_SUPERVISE"), "{env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
}

/// A pipe whose two ends are close-on-exec.
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe")
}

/// Runs supervise with `fds[i]` at descriptor 3+i (and only there).
fn start_with_fds(sv: &mut Sv, args: &[&str], fds: &[&OwnedFd]) {
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut c = sv.cmd(args);
    // SAFETY: dup2 and fcntl only, between fork and exec.
    unsafe {
        c.pre_exec(move || {
            // first out of the way (above any target), then into place
            let mut tmp = Vec::new();
            for &fd in &raw {
                let t = libc::fcntl(fd, libc::F_DUPFD, 100);
                if t < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                tmp.push(t);
            }
            for (i, &t) in tmp.iter().enumerate() {
                if libc::dup2(t, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(t);
            }
            Ok(())
        });
    }
    let child = c.spawn().expect("spawn supervise");
    sv.started(child);
}

fn read_available(fd: &OwnedFd, into: &mut Vec<u8>) {
    let mut buf = [0u8; 65536];
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 0) } <= 0 {
            return;
        }
        // SAFETY: read into our own buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
        into.extend_from_slice(&buf[..n as usize]);
    }
}

#[test]
fn stdin_stdout_stderr_descriptors() {
    let mut sv = Sv::new(
        "stdio",
        "#!/bin/sh\nread line\necho \"out $line\"\necho \"err $line\" >&2\necho $$ >> ../pids\nexec sleep 1000\n",
    );
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    start_with_fds(
        &mut sv,
        &["--stdin-fd", "3", "--stdout-fd", "4", "--stderr-fd", "5"],
        &[&in_r, &out_w, &err_w],
    );
    nix::unistd::write(&in_w, b"first\nsecond\n").expect("write stdin");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let ok = wait_until(T, || {
        read_available(&out_r, &mut out);
        read_available(&err_r, &mut err);
        out.ends_with(b"\n") && err.ends_with(b"\n")
    });
    assert!(
        ok,
        "out {:?} err {:?}\n{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err),
        sv.show()
    );
    assert_eq!(String::from_utf8_lossy(&out), "out first\n");
    assert_eq!(String::from_utf8_lossy(&err), "err first\n");
    // a restart gets the same descriptors: the next line of stdin is still there
    let first = sv.wait_up();
    sv.send(b"r");
    sv.wait("restarted", |s| s.state == State::Up && s.pid != first.pid);
    out.clear();
    let ok = wait_until(T, || {
        read_available(&out_r, &mut out);
        out.ends_with(b"\n")
    });
    assert!(ok, "{}", sv.show());
    assert_eq!(String::from_utf8_lossy(&out), "out second\n");
}

#[test]
fn prefix_fds_prefix_every_line() {
    let mut sv = Sv::new(
        "prefix",
        "#!/bin/sh\nprintf 'hel'\nsleep 0.05\necho lo\necho oops >&2\nhead -c 100000 /dev/zero | tr '\\0' a\necho\necho $$ >> ../pids\nexec sleep 1000\n",
    );
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    start_with_fds(
        &mut sv,
        &[
            "--name",
            "web",
            "--stdout-fd",
            "3",
            "--stderr-fd",
            "4",
            "--prefix-fds",
            "5,6",
        ],
        &[&w1, &w2, &r1, &r2],
    );
    drop((r1, r2));
    let long = format!("[web] {}\n", "a".repeat(100_000));
    let log = sv.wait_file("supervise.log", |s| {
        s.contains(&long) && s.contains("[web] oops\n")
    });
    assert!(log.contains("[web] hello\n"), "{log:.300}");
    assert_eq!(log.matches("[web] ").count(), 3, "{log:.300}");
}

#[test]
fn status_since_changes_with_the_state() {
    let mut sv = Sv::new("since", SLEEPER);
    sv.file("down", "", 0o644);
    let t0 = SystemTime::now();
    sv.start(&[]);
    sv.send(b"u");
    let up = sv.wait_up();
    assert!(up.since >= t0 - Duration::from_secs(1));
    sv.send(b"d");
    let down = sv.wait("down", |s| s.state == State::Down);
    assert!(down.since >= up.since);
    assert_eq!((down.pid, down.pid_start_ticks), (0, 0));
}
