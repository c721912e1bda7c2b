//! Smoke tests of the harness itself (sandbox and docker plumbing), with a trivial PID 1
//! instead of /init, so they hold whatever state /init is in.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use custos_tests::sandbox::{namespaces_available, Sandbox, PATH};
use custos_tests::{docker, is_real_root, skip, wait_until};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(20);

fn sandbox(test: &str) -> Option<Sandbox> {
    if let Err(why) = namespaces_available() {
        skip(test, &why);
        return None;
    }
    Some(Sandbox::new(test))
}

#[test]
fn rootfs_layout() {
    let Some(sb) = sandbox("rootfs_layout") else {
        return;
    };
    for f in [
        "init",
        "usr/bin/svctl",
        "usr/libexec/custos/supervise",
        "bin/busybox",
        "bin/sh",
        "bin/sleep",
        "etc/services.d",
    ] {
        assert!(
            sb.root().join(f).exists(),
            "{f} missing in {}",
            sb.root().display()
        );
    }
    let passwd = sb.read("etc/passwd").unwrap();
    assert!(passwd.contains("www:x:1000:1000:"), "{passwd}");
    assert!(sb
        .read("/etc/group")
        .unwrap()
        .contains("extra:x:3000:daemon"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sb.root().join("tmp"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o1777);
}

#[test]
fn program_is_pid_1_and_its_exit_code_is_returned() {
    let Some(sb) = sandbox("pid1") else { return };
    let out = sb
        .init()
        .program("/bin/sh")
        .args(&["-c", "echo $$; echo err >&2; exit 7"])
        .run(T);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(out.stdout, "1\n", "{out:?}");
    assert_eq!(out.stderr, "err\n", "{out:?}");
    // from inside, PID 1 is immune even to SIGKILL; from outside, SIGKILL kills it
    let run = sb
        .init()
        .program("/bin/sh")
        .args(&[
            "-c",
            "kill -KILL $$; echo survived; while :; do sleep 0.05; done",
        ])
        .spawn();
    assert!(run.wait_output("survived", T), "{}", run.stderr());
    run.signal(Signal::SIGKILL);
    let out = run.wait(T);
    assert_eq!(out.code, 137, "{out:?}");
}

#[test]
fn exec_signal_and_drop() {
    let Some(sb) = sandbox("exec") else { return };
    let run = sb
        .init()
        .program("/bin/sh")
        .env("MARK", "m1")
        .args(&[
            "-c",
            "trap 'echo got-usr1; exit 3' USR1; echo ready; while :; do sleep 0.05; done",
        ])
        .spawn();
    assert!(run.wait_output("ready", T), "{}", run.stderr());
    let out = run.exec(&["cat", "/proc/1/cmdline"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("/bin/sh\0-c\0"), "{:?}", out.stdout);
    let out = run.exec(&["sh", "-c", "echo $MARK; pwd; test $$ != 1"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "m1\n/\n"), "{out:?}");
    assert_eq!(run.exec(&["false"]).code, 1);
    run.signal(Signal::SIGUSR1);
    let out = run.wait(T);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains("got-usr1"));
    assert!(out.since_signal.unwrap() <= out.elapsed);

    // Drop kills the whole namespace
    let run = sb
        .init()
        .program("/bin/sh")
        .args(&[
            "-c",
            "sleep 1000 & echo ready; while :; do sleep 0.05; done",
        ])
        .spawn();
    assert!(run.wait_output("ready", T));
    let init = run.init_pid();
    let sleeper = run.exec(&["pidof", "sleep"]);
    assert_eq!(sleeper.code, 0, "{sleeper:?}");
    drop(run);
    assert!(
        wait_until(T, || !std::path::Path::new(&format!("/proc/{init}"))
            .exists()),
        "pid {init} survived"
    );
}

#[test]
fn environment_is_exactly_what_was_asked() {
    let Some(sb) = sandbox("env") else { return };
    let weird: &[u8] = b"a\nb\xff c=d\n";
    // cat, not sh: busybox sh rewrites its own /proc/self/environ (adds PWD, SHLVL)
    let mut run = sb
        .init()
        .program("/bin/cat")
        .env_os(OsStr::new("WEIRD"), OsStr::from_bytes(weird))
        .env("A", "1")
        .args(&["/proc/self/environ"])
        .spawn();
    let out = run.try_wait(T).expect("cat exits");
    assert_eq!(out.code, 0, "{out:?}");
    let got = run.stdout_bytes();
    let got: BTreeSet<&[u8]> = got.split(|b| *b == 0).filter(|e| !e.is_empty()).collect();
    let mut weird_entry = b"WEIRD=".to_vec();
    weird_entry.extend_from_slice(weird);
    let path = format!("PATH={PATH}");
    let want: BTreeSet<&[u8]> = [weird_entry.as_slice(), b"A=1".as_slice(), path.as_bytes()]
        .into_iter()
        .collect();
    assert_eq!(got, want);
}

#[test]
fn read_only_root_and_noexec_run() {
    let Some(sb) = sandbox("ro") else { return };
    let script = "touch /x 2>/dev/null && echo root-writable; touch /run/x && echo run-writable; grep ' /run ' /proc/mounts";
    let out = sb
        .init()
        .program("/bin/sh")
        .read_only_root()
        .args(&["-c", script])
        .run(T);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("root-writable"), "{out:?}");
    assert!(out.stdout.contains("run-writable"), "{out:?}");
    assert!(
        out.stdout.contains("noexec") && out.stdout.contains("nosuid"),
        "{out:?}"
    );
    assert!(!sb.root().join("x").exists() && !sb.root().join("run/x").exists());
    let run = sb
        .init()
        .program("/bin/sh")
        .read_only_root()
        .args(&["-c", "echo ready; while :; do sleep 0.05; done"])
        .spawn();
    assert!(run.wait_output("ready", T), "{}", run.stderr());
    let out = run.exec(&["sh", "-c", "touch /run/from-exec && ls /run; touch /y"]);
    assert_eq!(out.stdout, "from-exec\n", "{out:?}");
    assert_ne!(out.code, 0, "{out:?}");
    drop(run);

    // /run on disk: what a run leaves there is still there (and visible to the host)
    let out = sb
        .init()
        .program("/bin/sh")
        .run_on_disk()
        .args(&["-c", "echo left > /run/left"])
        .run(T);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(sb.read("run/left").as_deref(), Some("left\n"));
    let out = sb
        .init()
        .program("/bin/sh")
        .read_only_root()
        .run_on_disk()
        .args(&["-c", "cat /run/left; touch /run/y"])
        .run(T);
    assert_eq!(out.stdout, "left\n", "{out:?}");
    assert_ne!(
        out.code, 0,
        "/run on a read-only root is read-only: {out:?}"
    );
}

#[test]
fn workdir_and_stdin() {
    let Some(sb) = sandbox("workdir") else { return };
    sb.mkdir("srv/app");
    let out = sb
        .init()
        .program("/bin/sh")
        .workdir("/srv/app")
        .args(&["-c", "pwd"])
        .run(T);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "/srv/app\n"),
        "{out:?}"
    );
    let run = sb.init().program("/bin/cat").stdin_piped().spawn();
    run.write_stdin(b"through stdin\n");
    run.close_stdin();
    let out = run.wait(T);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "through stdin\n"),
        "{out:?}"
    );
}

#[test]
fn under_other_pid1() {
    let Some(sb) = sandbox("other_pid1") else {
        return;
    };
    let run = sb
        .init()
        .program("/bin/busybox")
        .under_other_pid1()
        .args(&[
            "sh",
            "-c",
            "echo pid=$$; trap 'exit 4' USR1; while :; do sleep 0.05; done",
        ])
        .spawn();
    assert!(run.wait_output("pid=", T), "{}", run.stderr());
    let pid1 = run.exec(&["cat", "/proc/1/cmdline"]);
    assert!(pid1.stdout.starts_with("/bin/sh\0"), "{pid1:?}");
    assert_ne!(run.stdout().trim(), "pid=1");
    let init = run.init_pid();
    let cmdline = std::fs::read(format!("/proc/{init}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(b"/bin/busybox\0sh\0"),
        "{:?}",
        String::from_utf8_lossy(&cmdline)
    );
    run.signal(Signal::SIGUSR1);
    let out = run.wait(T);
    assert_eq!(out.code, 4, "PID 1 sh passes the code on: {out:?}");
}

#[test]
fn runs_as_another_user() {
    let Some(sb) = sandbox("user") else { return };
    if !is_real_root() {
        skip("runs_as_another_user", "needs real root to switch users");
        return;
    }
    let run = sb
        .init()
        .program("/bin/sh")
        .user(1000, 1000)
        .args(&[
            "-c",
            "id -u; id -g; stat -c %a /run; echo ready; while :; do sleep 0.05; done",
        ])
        .spawn();
    assert!(run.wait_output("ready", T), "{}", run.stderr());
    assert_eq!(
        run.stdout().split_whitespace().collect::<Vec<_>>(),
        ["1000", "1000", "1777", "ready"]
    );
    let out = run.exec_as(2, 2, &["id", "-u"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "2\n"), "{out:?}");
    let out = run.exec(&["id", "-u"]);
    assert_eq!(out.stdout, "0\n", "{out:?}");
}

#[test]
fn a_timed_out_wait_fails_with_the_output() {
    let Some(sb) = sandbox("timeout") else { return };
    let run = sb
        .init()
        .program("/bin/sh")
        .args(&[
            "-c",
            "echo still-here; mkdir /run/marker; while :; do sleep 0.05; done",
        ])
        .spawn();
    assert!(run.wait_output("still-here", T));
    let init = run.init_pid();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run.wait(Duration::from_millis(200))
    }))
    .expect_err("wait must panic on timeout");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("timed out") && msg.contains("still-here") && msg.contains("marker"),
        "{msg}"
    );
    assert!(
        wait_until(T, || !std::path::Path::new(&format!("/proc/{init}"))
            .exists()),
        "pid {init} survived"
    );
}

fn docker_ready(test: &str) -> bool {
    if let Err(why) = docker::available() {
        skip(test, &why);
        return false;
    }
    true
}

#[test]
fn docker_base_image() {
    if !docker_ready("docker_base_image") {
        return;
    }
    let base = docker::base_image();
    let out = docker::run(
        &["--entrypoint", "/bin/busybox"],
        &base,
        &["echo", "hi"],
        Duration::from_secs(60),
    );
    assert_eq!((out.code, out.stdout.as_str()), (0, "hi\n"), "{out:?}");
    let out = docker::run(
        &["--entrypoint", "/bin/sh"],
        &base,
        &["-c", "stat -c '%a %u:%g %n' /init /usr/bin/svctl /usr/libexec/custos/supervise /tmp; grep www /etc/passwd"],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "755 0:0 /init\n755 0:0 /usr/bin/svctl\n755 0:0 /usr/libexec/custos/supervise\n1777 0:0 /tmp\nwww:x:1000:1000:www:/home/www:/bin/sh\n"
    );
    let image = docker::image(&[("/etc/hello", "hello\n", 0o600)], &["ENV GREETING=hi"]);
    let out = docker::run(
        &["--entrypoint", "/bin/sh"],
        &image,
        &[
            "-c",
            "stat -c %a /etc/hello; cat /etc/hello; echo $GREETING",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.stdout, "600\nhello\nhi\n", "{out:?}");
    assert_eq!(
        docker::image(&[("/etc/hello", "hello\n", 0o600)], &["ENV GREETING=hi"]),
        image,
        "cached by content"
    );
}

#[test]
fn docker_container_guard() {
    if !docker_ready("docker_container_guard") {
        return;
    }
    let base = docker::base_image();
    let c = docker::run_detached(
        &["--entrypoint", "/bin/sh", "--tmpfs", "/run"],
        &base,
        &[
            "-c",
            "trap 'echo bye; exit 3' TERM; echo ready; while :; do sleep 0.05; done",
        ],
    );
    assert!(
        c.wait_logs("ready", Duration::from_secs(30)),
        "{:?}",
        c.logs()
    );
    assert_eq!(c.state(), "running");
    let out = c.exec(&["-u", "1000", "id", "-u"]);
    assert_eq!(out.stdout, "1000\n", "{out:?}");
    let took = c.stop(10);
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    assert_eq!(c.wait(Duration::from_secs(10)), 3);
    assert_eq!(c.state(), "exited");
    assert!(c.logs().0.contains("bye"));
    let id = c.id.clone();
    drop(c);
    let gone = std::process::Command::new("docker")
        .args(["inspect", &id])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "container {id} survived Drop");
}
