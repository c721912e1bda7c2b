//! The supervision tree through the real /init, supervise and svctl, as PID 1 of fresh
//! namespaces: service folders, dependency order, loggers, readiness, essential, halt.

use std::time::{Duration, Instant};

use custos_tests::sandbox::{Running, Sandbox};
use custos_tests::{skip, wait_until};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(20);

fn sandbox(test: &str) -> Option<Sandbox> {
    custos_tests::sandbox::for_test(test)
}

fn service(sb: &Sandbox, name: &str, run: &str) {
    sb.write(
        &format!("etc/services.d/{name}/run"),
        &format!("#!/bin/sh\n{run}\n"),
        0o755,
    );
}

/// `svctl status --json NAME` inside the container, parsed.
fn status(run: &Running, name: &str) -> serde_json::Value {
    let out = run.exec(&["svctl", "status", "--json", name]);
    assert_eq!(out.code, 0, "svctl status: {}", out.stderr);
    let doc: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    doc["services"][0].clone()
}

/// Gives service `name` a `log/run` of `svlog` into /var/log/NAME and starts /init.
fn with_svlog_logger(sb: &Sandbox, name: &str) -> Running {
    sb.write(
        &format!("etc/services.d/{name}/log/run"),
        &format!("#!/bin/sh\nexec svlog s100000000 /var/log/{name}\n"),
        0o755,
    );
    sb.init().spawn()
}

/// How many lines /var/log/NAME/current holds.
fn log_lines(sb: &Sandbox, name: &str) -> usize {
    sb.read(&format!("var/log/{name}/current"))
        .map(|c| c.lines().count())
        .unwrap_or(0)
}

/// The service's state, or "none" while /init has not set its live folder up yet (tests poll
/// this from the moment /init starts).
fn state(run: &Running, name: &str) -> String {
    if run
        .exec(&["test", "-d", &format!("/run/service/{name}/supervise")])
        .code
        != 0
    {
        return "none".to_string();
    }
    status(run, name)["state"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

fn pid(run: &Running, name: &str) -> i64 {
    status(run, name)["pid"].as_i64().unwrap_or(0)
}

#[test]
fn run_starts_in_its_live_folder_with_env_overrides() {
    let Some(sb) = sandbox("svc_run") else { return };
    service(&sb, "app", "echo \"cwd=$(pwd) sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$ GREETING=$GREETING ONLY=$ONLY\" > /tmp/app.out\nexec sleep 1000");
    sb.write("etc/services.d/app/env/GREETING", "from-env-dir\n", 0o644);
    sb.write("etc/services.d/app/env/ONLY", "x", 0o644);
    let run = sb.init().env("GREETING", "from-container").spawn();
    assert!(
        wait_until(T, || sb.read("tmp/app.out").is_some()),
        "{}",
        run.stderr()
    );
    let out = sb.read("tmp/app.out").unwrap_or_default();
    let pid = out
        .split("pid=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or("?");
    assert!(out.starts_with("cwd=/run/service/app "), "{out}");
    assert!(
        out.contains(&format!("sid={pid} ")),
        "run is a session leader: {out}"
    );
    assert!(out.contains("GREETING=from-env-dir ONLY=x"), "{out}");
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn crash_loop_restarts_at_most_once_a_second_and_finish_gets_its_arguments() {
    let Some(sb) = sandbox("svc_crash") else {
        return;
    };
    service(&sb, "crash", "echo start >> /tmp/starts\nexit 3");
    sb.write(
        "etc/services.d/crash/finish",
        "#!/bin/sh\necho \"$1 $2 $3 $4\" >> /tmp/finish\n",
        0o755,
    );
    let run = sb.init().spawn();
    assert!(
        wait_until(T, || sb.read("tmp/starts").is_some()),
        "{}",
        run.stderr()
    );
    let t0 = Instant::now();
    let first = sb.read("tmp/starts").unwrap_or_default().lines().count();
    assert!(wait_until(T, || t0.elapsed() >= Duration::from_secs(5)));
    let starts = sb.read("tmp/starts").unwrap_or_default().lines().count() - first;
    assert!((4..=6).contains(&starts), "{starts} starts in 5 s");
    let finish = sb.read("tmp/finish").unwrap_or_default();
    let line = finish.lines().next().unwrap_or_default().to_string();
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(&f[..3], ["3", "0", "/run/service/crash"], "{finish}");
    assert!(f[3].parse::<i32>().is_ok_and(|p| p > 1), "{finish}");
    let out = run.exec(&["svctl", "status", "crash"]);
    assert!(out.stdout.contains("exit 3"), "{}", out.stdout);
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[test]
fn finish_after_a_kill_and_125_keeps_it_down() {
    let Some(sb) = sandbox("svc_finish") else {
        return;
    };
    service(&sb, "a", "exec sleep 1000");
    sb.write(
        "etc/services.d/a/finish",
        "#!/bin/sh\necho \"$1 $2 $3\" >> /tmp/finish\nexit 125\n",
        0o755,
    );
    let run = sb.init().spawn();
    assert!(
        wait_until(T, || state(&run, "a") == "up"),
        "{}",
        run.stderr()
    );
    assert_eq!(run.exec(&["svctl", "kill", "-s", "TERM", "a"]).code, 0);
    assert!(wait_until(T, || sb
        .read("tmp/finish")
        .is_some_and(|f| f.contains('\n'))));
    assert_eq!(
        sb.read("tmp/finish").unwrap_or_default(),
        "256 15 /run/service/a\n"
    );
    assert!(wait_until(T, || state(&run, "a") == "down"));
    let s = status(&run, "a");
    assert_eq!(s["wanted"], "down", "{s}");
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[test]
fn down_file_then_svctl_up() {
    let Some(sb) = sandbox("svc_down") else {
        return;
    };
    service(&sb, "lazy", "exec sleep 1000");
    sb.write("etc/services.d/lazy/down", "", 0o644);
    // CMD does not wait for a service with a down file
    let run = sb
        .init()
        .args(&["sh", "-c", "echo cmd-started; exec sleep 1000"])
        .spawn();
    assert!(run.wait_output("cmd-started", T), "{}", run.stderr());
    let s = status(&run, "lazy");
    assert_eq!(
        (s["state"].as_str(), s["wanted"].as_str()),
        (Some("down"), Some("down")),
        "{s}"
    );
    assert_eq!(run.exec(&["svctl", "up", "lazy"]).code, 0);
    assert_eq!(
        run.exec(&["svctl", "wait", "--up", "--timeout", "10s", "lazy"])
            .code,
        0
    );
    assert_eq!(state(&run, "lazy"), "up");
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[test]
fn cmd_does_not_wait_for_what_waits_for_a_down_service() {
    let Some(sb) = sandbox("svc_down_dep") else {
        return;
    };
    service(&sb, "lazy", "exec sleep 1000");
    sb.write("etc/services.d/lazy/down", "", 0o644);
    service(&sb, "user", "exec sleep 1000");
    sb.write("etc/services.d/user/dependencies.d/lazy", "", 0o644);
    let out = sb
        .init()
        .env("CUSTOS_CMD_WAIT_FOR_SERVICES_MAXTIME", "0")
        .args(&["sh", "-c", "echo cmd-ran"])
        .run(T);
    assert!(out.stdout.contains("cmd-ran"), "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(5));
}

#[test]
fn timeout_kill_and_down_signal() {
    let Some(sb) = sandbox("svc_kill") else {
        return;
    };
    service(
        &sb,
        "stubborn",
        "trap '' TERM\nwhile :; do sleep 0.05; done",
    );
    sb.write("etc/services.d/stubborn/timeout-kill", "300\n", 0o644);
    service(
        &sb,
        "hup",
        "trap 'echo got-hup > /tmp/hup; exit 0' HUP\nwhile :; do sleep 0.05; done",
    );
    sb.write("etc/services.d/hup/down-signal", "HUP\n", 0o644);
    let run = sb.init().spawn();
    assert!(
        wait_until(T, || state(&run, "stubborn") == "up"
            && state(&run, "hup") == "up"),
        "{}",
        run.stderr()
    );
    let t0 = Instant::now();
    assert_eq!(run.exec(&["svctl", "down", "stubborn"]).code, 0);
    assert_eq!(
        run.exec(&["svctl", "wait", "--down", "--timeout", "5s", "stubborn"])
            .code,
        0
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "took {took:?}"
    );
    assert!(
        status(&run, "stubborn")["last"]["signal"] == "KILL",
        "{}",
        status(&run, "stubborn")
    );
    assert_eq!(run.exec(&["svctl", "down", "hup"]).code, 0);
    assert!(wait_until(T, || sb.read("tmp/hup").as_deref() == Some("got-hup\n")));
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[test]
fn readiness_through_notification_fd_gates_cmd_and_svctl_wait() {
    let Some(sb) = sandbox("svc_ready") else {
        return;
    };
    service(
        &sb,
        "db",
        "while [ ! -e /tmp/go ]; do sleep 0.02; done\necho > /proc/self/fd/5\nexec sleep 1000",
    );
    sb.write("etc/services.d/db/notification-fd", "5\n", 0o644);
    let run = sb
        .init()
        .args(&["sh", "-c", "echo cmd-started; exec sleep 1000"])
        .spawn();
    assert!(
        wait_until(T, || state(&run, "db") == "up"),
        "{}",
        run.stderr()
    );
    let s = status(&run, "db");
    assert_eq!(s["ready"], false, "{s}");
    assert_eq!(
        run.exec(&["svctl", "wait", "--ready", "--timeout", "200ms", "db"])
            .code,
        99
    );
    assert!(
        !run.stdout().contains("cmd-started"),
        "CMD waits for readiness"
    );
    sb.write("tmp/go", "", 0o644);
    assert_eq!(
        run.exec(&["svctl", "wait", "--ready", "--timeout", "10s", "db"])
            .code,
        0
    );
    assert!(run.wait_output("cmd-started", T));
    assert_eq!(status(&run, "db")["ready"], true);
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[test]
fn cmd_wait_gives_up_naming_the_service() {
    let Some(sb) = sandbox("svc_maxtime") else {
        return;
    };
    service(&sb, "never", "exec sleep 1000");
    sb.write("etc/services.d/never/notification-fd", "3\n", 0o644);
    let run = sb
        .init()
        .env("CUSTOS_CMD_WAIT_FOR_SERVICES_MAXTIME", "300ms")
        .args(&["sh", "-c", "echo cmd-started"])
        .spawn();
    let out = run.wait(T);
    assert!(out.stdout.contains("cmd-started"));
    assert!(
        out.stderr
            .contains("not ready after CUSTOS_CMD_WAIT_FOR_SERVICES_MAXTIME: never"),
        "{}",
        out.stderr
    );
}

/// A <- B <- C: each starts once what it depends on is ready; stop in reverse.
#[test]
fn dependency_chain_starts_in_order_and_stops_in_reverse() {
    let Some(sb) = sandbox("svc_deps") else {
        return;
    };
    for (name, dep) in [("c", Some("b")), ("b", Some("a")), ("a", None)] {
        service(
            &sb,
            name,
            &format!("echo start-{name} >> /tmp/order\necho >&3\ntrap 'echo stop-{name} >> /tmp/order; exit 0' TERM\nwhile :; do sleep 0.02; done"),
        );
        // ready once it has written its line: what depends on it starts after that
        sb.write(
            &format!("etc/services.d/{name}/notification-fd"),
            "3\n",
            0o644,
        );
        if let Some(dep) = dep {
            sb.write(
                &format!("etc/services.d/{name}/dependencies.d/{dep}"),
                "",
                0o644,
            );
        }
    }
    let run = sb
        .init()
        .args(&["sh", "-c", "echo cmd-started; exec sleep 1000"])
        .spawn();
    assert!(run.wait_output("cmd-started", T), "{}", run.stderr());
    assert_eq!(
        sb.read("tmp/order").unwrap_or_default(),
        "start-a\nstart-b\nstart-c\n"
    );
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert_eq!(
        sb.read("tmp/order").unwrap_or_default(),
        "start-a\nstart-b\nstart-c\nstop-c\nstop-b\nstop-a\n"
    );
}

#[test]
fn cycles_and_unknown_dependencies_name_the_services() {
    let Some(sb) = sandbox("svc_cycle") else {
        return;
    };
    service(&sb, "x", "exec sleep 1000");
    service(&sb, "y", "exec sleep 1000");
    sb.write("etc/services.d/x/dependencies.d/y", "", 0o644);
    sb.write("etc/services.d/y/dependencies.d/x", "", 0o644);
    let out = sb.init().args(&["true"]).run(T);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("dependency cycle: x -> y -> x"),
        "{}",
        out.stderr
    );

    let sb = Sandbox::new("svc_unknown_dep");
    service(&sb, "web", "exec sleep 1000");
    sb.write("etc/services.d/web/dependencies.d/dbx", "", 0o644);
    let out = sb.init().args(&["true"]).run(T);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("service web: depends on dbx, which is not in /etc/services.d"),
        "{}",
        out.stderr
    );
}

#[test]
fn essential_service_stops_the_container_with_its_code() {
    let Some(sb) = sandbox("svc_essential") else {
        return;
    };
    service(
        &sb,
        "core",
        "while [ ! -e /tmp/die ]; do sleep 0.02; done\nexit 7",
    );
    sb.write("etc/services.d/core/essential", "", 0o644);
    service(&sb, "other", "exec sleep 1000");
    let run = sb.init().spawn();
    assert!(
        wait_until(T, || state(&run, "core") == "up"),
        "{}",
        run.stderr()
    );
    sb.write("tmp/die", "", 0o644);
    let out = run.wait(T);
    assert_eq!(out.code, 7, "{}", out.stderr);
}

#[test]
fn essential_service_code_wins_over_the_cmd_it_stopped() {
    let Some(sb) = sandbox("svc_essential_cmd") else {
        return;
    };
    service(
        &sb,
        "core",
        "while [ ! -e /tmp/die ]; do sleep 0.02; done\nexit 9",
    );
    sb.write("etc/services.d/core/essential", "", 0o644);
    let run = sb
        .init()
        .args(&["sh", "-c", "echo ready; exec sleep 1000"])
        .spawn();
    assert!(run.wait_output("ready", T), "{}", run.stderr());
    sb.write("tmp/die", "", 0o644);
    let out = run.wait(T);
    assert_eq!(out.code, 9, "{}", out.stderr);
}

#[test]
fn svctl_halt_sets_the_exit_code_even_over_cmd() {
    let Some(sb) = sandbox("svc_halt") else {
        return;
    };
    service(&sb, "s", "exec sleep 1000");
    let run = sb
        .init()
        .args(&[
            "sh",
            "-c",
            "trap 'exit 0' TERM; echo ready; while :; do sleep 0.02; done",
        ])
        .spawn();
    assert!(run.wait_output("ready", T));
    assert_eq!(run.exec(&["svctl", "halt", "42"]).code, 0);
    let out = run.wait(T);
    assert_eq!(out.code, 42, "{}", out.stderr);
}

#[test]
fn helpers_in_the_process_group_are_gone_after_down() {
    let Some(sb) = sandbox("svc_helpers") else {
        return;
    };
    service(&sb, "forks", "sleep 997 &\nexec sleep 1000");
    let run = sb.init().spawn();
    assert!(
        wait_until(T, || run
            .exec(&["pidof", "sleep"])
            .stdout
            .split_whitespace()
            .count()
            == 2),
        "{}",
        run.stderr()
    );
    assert_eq!(run.exec(&["svctl", "down", "forks"]).code, 0);
    assert!(
        wait_until(T, || run.exec(&["pidof", "sleep"]).code != 0),
        "{}",
        run.exec(&["ps"]).stdout
    );
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[test]
fn sigkill_of_a_supervise_leaves_the_service_supervised_once() {
    let Some(sb) = sandbox("svc_sigkill") else {
        return;
    };
    service(&sb, "keep", "exec sleep 1000");
    let run = sb.init().spawn();
    assert!(
        wait_until(T, || state(&run, "keep") == "up"),
        "{}",
        run.stderr()
    );
    let before = pid(&run, "keep");
    let sup = run.exec(&["sh", "-c", "for p in /proc/[0-9]*; do grep -q '^/usr/libexec/custos/supervise' $p/cmdline 2>/dev/null && echo ${p#/proc/}; done"]);
    let sup_pid = sup
        .stdout
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert!(!sup_pid.is_empty(), "{}", sup.stdout);
    assert_eq!(run.exec(&["kill", "-KILL", &sup_pid]).code, 0);
    // a new supervise takes the lock again and keeps the same run
    assert!(
        wait_until(T, || {
            let s = run.exec(&["sh", "-c", "for p in /proc/[0-9]*; do grep -q '^/usr/libexec/custos/supervise' $p/cmdline 2>/dev/null && echo ${p#/proc/}; done"]);
            let now = s.stdout.split_whitespace().next().unwrap_or("").to_string();
            !now.is_empty() && now != sup_pid && status(&run, "keep")["supervised"] == true
        }),
        "{}",
        run.stderr()
    );
    assert_eq!(pid(&run, "keep"), before, "the running service was adopted");
    assert_eq!(
        run.exec(&["pidof", "sleep"])
            .stdout
            .split_whitespace()
            .count(),
        1,
        "exactly one copy"
    );
    // and it is supervised: a kill restarts it
    assert_eq!(run.exec(&["kill", "-KILL", &before.to_string()]).code, 0);
    assert!(
        wait_until(T, || {
            let p = pid(&run, "keep");
            p != 0 && p != before
        }),
        "{}",
        run.stderr()
    );
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[test]
fn control_is_refused_to_other_users_status_is_not() {
    let Some(sb) = sandbox("svc_refused") else {
        return;
    };
    if !custos_tests::is_real_root() {
        skip(
            "control_is_refused_to_other_users_status_is_not",
            "needs real root to switch users",
        );
        return;
    }
    service(&sb, "s", "exec sleep 1000");
    let run = sb.init().spawn();
    assert!(
        wait_until(T, || state(&run, "s") == "up"),
        "{}",
        run.stderr()
    );
    let out = run.exec_as(65534, 65534, &["svctl", "down", "s"]);
    assert_eq!(out.code, 100, "{}", out.stderr);
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
    let out = run.exec_as(65534, 65534, &["svctl", "status", "s"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(run.exec_as(65534, 65534, &["svctl", "check"]).code, 0);
    assert_eq!(state(&run, "s"), "up");
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[test]
fn svctl_check_names_unhealthy_services() {
    let Some(sb) = sandbox("svc_check") else {
        return;
    };
    service(&sb, "good", "exec sleep 1000");
    service(&sb, "bad", "exit 1");
    let run = sb.init().env("CUSTOS_CMD_WAIT_FOR_SERVICES", "0").spawn();
    assert!(
        wait_until(T, || state(&run, "good") == "up"),
        "{}",
        run.stderr()
    );
    let out = run.exec(&["svctl", "check"]);
    assert_eq!(out.code, 1, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("bad") && !out.stdout.contains("good"),
        "{}",
        out.stdout
    );
    assert_eq!(run.exec(&["svctl", "down", "bad"]).code, 0);
    assert!(wait_until(T, || run.exec(&["svctl", "check"]).code == 0));
    assert_eq!(run.exec(&["svctl", "status", "nosuch"]).code, 100);
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[test]
fn log_prefix_marks_service_lines_but_not_cmd() {
    let Some(sb) = sandbox("svc_prefix") else {
        return;
    };
    service(&sb, "talker", "echo hello out\necho hello err >&2\nprintf 'partial '; sleep 0.1; echo line\nexec sleep 1000");
    let run = sb
        .init()
        .env("CUSTOS_LOG_PREFIX", "1")
        .args(&[
            "sh",
            "-c",
            "while [ ! -e /tmp/done ]; do sleep 0.02; done; echo from-cmd",
        ])
        .spawn();
    assert!(
        run.wait_output("[talker] partial line", T),
        "{}\n{}",
        run.stdout(),
        run.stderr()
    );
    sb.write("tmp/done", "", 0o644);
    let out = run.wait(T);
    assert!(
        out.stdout.lines().any(|l| l == "[talker] hello out"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.lines().any(|l| l == "[talker] hello err"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.lines().any(|l| l == "from-cmd"),
        "{}",
        out.stdout
    );
}

/// The service writes 100,000 numbered lines while it and its logger are each restarted 5
/// times: every line arrives exactly once, in order.
#[test]
fn log_pipe_loses_nothing_across_restarts() {
    let Some(sb) = sandbox("svc_log") else { return };
    service(
        &sb,
        "app",
        "i=$(cat /tmp/n 2>/dev/null || echo 0)\nstop=\ntrap 'stop=1' TERM\n\
         while [ $i -lt 100000 ] && [ -z \"$stop\" ]; do\n  if echo \"line-$((i+1))\"; then i=$((i+1)); fi\n  \
         [ $((i % 2000)) = 0 ] && sleep 0.02\ndone\n\
         echo $i > /tmp/n.new && mv /tmp/n.new /tmp/n\n[ -n \"$stop\" ] && exit 0\nexec sleep 1000",
    );
    let run = with_svlog_logger(&sb, "app");
    // the writer paces itself (a short pause every 2000 lines) so the restarts fall while
    // lines flow; should it finish early anyway, the restarts still happen and count
    let finished = |sb: &Sandbox| sb.read("tmp/n").as_deref() == Some("100000\n");
    let lines = |sb: &Sandbox| log_lines(sb, "app");
    for round in 0..5 {
        let seen = lines(&sb);
        assert!(
            wait_until(T, || lines(&sb) > seen || finished(&sb)),
            "round {round}: no progress; {}",
            run.stderr()
        );
        assert_eq!(run.exec(&["svctl", "restart", "app"]).code, 0);
        let seen = lines(&sb);
        assert!(
            wait_until(T, || lines(&sb) > seen || finished(&sb)),
            "{}",
            run.stderr()
        );
        let logger = pid(&run, "app/log");
        assert_eq!(run.exec(&["svctl", "restart", "app/log"]).code, 0);
        assert!(
            wait_until(T, || {
                let p = pid(&run, "app/log");
                p != 0 && p != logger
            }),
            "{}",
            run.stderr()
        );
    }
    assert!(
        wait_until(Duration::from_secs(60), || lines(&sb) >= 100_000),
        "{} lines; {}",
        lines(&sb),
        run.stderr()
    );
    let restarts = status(&run, "app")["restarts"].as_i64().unwrap_or(0);
    assert!(restarts >= 5, "app restarted {restarts} times");
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let content = sb.read("var/log/app/current").unwrap_or_default();
    let got: Vec<&str> = content.lines().collect();
    assert_eq!(got.len(), 100_000, "every line exactly once");
    for (i, l) in got.iter().enumerate() {
        assert_eq!(*l, format!("line-{}", i + 1), "line {}", i + 1);
    }
}

/// 50 services brought down and up 20 times: no descriptor or zombie leak in init or supervise.
#[test]
fn no_leaks_over_many_down_up_cycles() {
    let Some(sb) = sandbox("svc_leaks") else {
        return;
    };
    let names: Vec<String> = (0..50).map(|i| format!("s{i:02}")).collect();
    for n in &names {
        service(&sb, n, "exec sleep 1000");
    }
    let run = sb.init().env("CUSTOS_CMD_WAIT_FOR_SERVICES", "0").spawn();
    let all_up = |run: &Running| {
        run.exec(&["svctl", "check"]).code == 0
            && run.exec(&["sh", "-c", "pidof sleep | wc -w"]).stdout.trim() == "50"
    };
    assert!(wait_until(T, || all_up(&run)), "{}", run.stderr());
    let fds = |run: &Running| {
        run.exec(&["sh", "-c", "n=0; for p in 1 $(for q in /proc/[0-9]*; do grep -q '^/usr/libexec/custos/supervise' $q/cmdline 2>/dev/null && echo ${q#/proc/}; done); do n=$((n + $(ls /proc/$p/fd | wc -l))); done; echo $n"])
            .stdout
            .trim()
            .to_string()
    };
    let before = fds(&run);
    // private dirty memory (heap, stack) of init and every supervise, in kB
    let memory = |run: &Running| -> u64 {
        run.exec(&["sh", "-c", "t=0; for p in 1 $(for q in /proc/[0-9]*; do grep -q '^/usr/libexec/custos/supervise' $q/cmdline 2>/dev/null && echo ${q#/proc/}; done); do k=$(awk '/^Private_Dirty:/ {print $2}' /proc/$p/smaps_rollup); t=$((t + k)); done; echo $t"])
            .stdout
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let mut warm = 0;
    let mut args = vec!["down"];
    args.extend(names.iter().map(String::as_str));
    for round in 0..20 {
        if round == 2 {
            // after two rounds the allocators have their working sets
            warm = memory(&run);
        }
        args[0] = "down";
        assert_eq!(run.exec(&[&["svctl"][..], &args[..]].concat()).code, 0);
        assert!(
            wait_until(T, || run.exec(&["pidof", "sleep"]).code != 0),
            "{}",
            run.stderr()
        );
        args[0] = "up";
        assert_eq!(run.exec(&[&["svctl"][..], &args[..]].concat()).code, 0);
        assert!(wait_until(T, || all_up(&run)), "{}", run.stderr());
    }
    assert_eq!(fds(&run), before, "descriptors of init and supervise");
    let after = memory(&run);
    eprintln!("private dirty memory of init + 50 supervise: {warm} kB after 2 rounds, {after} kB after 20");
    assert!(
        warm > 0 && after <= warm + 256,
        "memory of init and supervise grew from {warm} kB to {after} kB over 18 rounds"
    );
    let zombies = run.exec(&["sh", "-c", custos_tests::sandbox::COUNT_ZOMBIES]);
    assert_eq!(zombies.stdout.trim(), "zombies=0");
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// svlog as a log/run under supervise, killed with SIGKILL mid-stream three times: no line that
/// was in its pipe is lost (a line may be written twice: delivery after SIGKILL is at least once).
#[test]
fn svlog_killed_under_supervise_loses_no_line() {
    let Some(sb) = sandbox("svc_svlog_kill") else {
        return;
    };
    service(
        &sb,
        "app",
        "i=0\nwhile [ ! -e /tmp/stop ]; do if echo \"line-$((i+1))\"; then i=$((i+1)); fi; done\necho end\nexec sleep 1000",
    );
    let run = with_svlog_logger(&sb, "app");
    let lines = |sb: &Sandbox| log_lines(sb, "app");
    for round in 0..3 {
        let seen = lines(&sb);
        assert!(
            wait_until(T, || lines(&sb) > seen),
            "round {round}: no progress; {}",
            run.stderr()
        );
        let logger = pid(&run, "app/log");
        assert!(logger > 0);
        assert_eq!(run.exec(&["kill", "-KILL", &logger.to_string()]).code, 0);
        assert!(
            wait_until(T, || {
                let p = pid(&run, "app/log");
                p != 0 && p != logger
            }),
            "{}",
            run.stderr()
        );
    }
    sb.write("tmp/stop", "", 0o644);
    assert!(wait_until(Duration::from_secs(60), || sb
        .read("var/log/app/current")
        .is_some_and(|c| c.ends_with("end\n"))));
    let content = sb.read("var/log/app/current").unwrap_or_default();
    let mut expected = 1;
    for l in content.lines().filter(|l| *l != "end") {
        let n: u32 = l
            .strip_prefix("line-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad line {l:?}"));
        assert!(n <= expected, "line-{expected} is missing (next seen: {l})");
        if n == expected {
            expected += 1;
        }
    }
    assert!(expected > 1000, "only {expected} lines");
    run.signal(Signal::SIGTERM);
    run.wait(T);
}
