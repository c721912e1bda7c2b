//! /init's PID 1 duties, run as PID 1 of fresh namespaces: exit codes, reaping, signals,
//! subreaper mode.

use std::time::{Duration, Instant};

use custos_tests::sandbox::Sandbox;
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(20);

fn sandbox(test: &str) -> Option<Sandbox> {
    custos_tests::sandbox::for_test(test)
}

#[test]
fn cmd_exit_code_for_every_value() {
    let Some(sb) = sandbox("exit_codes") else {
        return;
    };
    for code in 0..=255 {
        let out = sb
            .init()
            .args(&["sh", "-c", &format!("exit {code}")])
            .run(T);
        assert_eq!(out.code, code, "exit {code}: stderr: {}", out.stderr);
    }
}

#[test]
fn cmd_killed_by_signal_gives_128_plus_n() {
    let Some(sb) = sandbox("signal_codes") else {
        return;
    };
    for (name, n) in [("TERM", 15), ("KILL", 9), ("HUP", 1), ("USR1", 10)] {
        let out = sb
            .init()
            .args(&["sh", "-c", &format!("kill -{name} $$")])
            .run(T);
        assert_eq!(out.code, 128 + n, "SIG{name}: stderr: {}", out.stderr);
    }
}

#[test]
fn cmd_exec_failures_give_126_and_127_with_a_message() {
    let Some(sb) = sandbox("exec_failures") else {
        return;
    };
    let out = sb.init().args(&["/no/such/program"]).run(T);
    assert_eq!(out.code, 127, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("init: fatal: unable to run CMD /no/such/program: No such file or directory"),
        "{}",
        out.stderr
    );
    sb.write("tmp/not-executable", "#!/bin/sh\necho hi\n", 0o644);
    let out = sb.init().args(&["/tmp/not-executable"]).run(T);
    assert_eq!(out.code, 126, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("unable to run CMD /tmp/not-executable: Permission denied"),
        "{}",
        out.stderr
    );
}

/// CMD leaves 2000 orphans that exit; a second later no zombie is left, and /init exits as
/// soon as CMD has.
#[test]
fn zombie_storm_is_reaped() {
    let Some(sb) = sandbox("zombie_storm") else {
        return;
    };
    let script = r#"
i=0
while [ $i -lt 2000 ]; do ( true & ) ; i=$((i+1)); done
sleep 1
"#
    .to_string()
        + custos_tests::sandbox::COUNT_ZOMBIES;
    let out = sb
        .init()
        .args(&["sh", "-c", &script])
        .run(Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("zombies=0"),
        "stdout: {} stderr: {}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn init_exits_as_soon_as_cmd_has() {
    let Some(sb) = sandbox("prompt_exit") else {
        return;
    };
    // a background helper that ignores nothing: init must TERM it and not wait for its sleep
    let out = sb
        .init()
        .args(&["sh", "-c", "sleep 100 & echo started; exit 3"])
        .run(T);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.elapsed < Duration::from_secs(2),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn usr1_and_usr2_reach_cmd() {
    let Some(sb) = sandbox("forward_usr") else {
        return;
    };
    let run = sb
        .init()
        .args(&["sh", "-c", "trap 'echo got-usr1' USR1; trap 'echo got-usr2; exit 5' USR2; echo ready; while :; do sleep 0.05; done"])
        .spawn();
    assert!(run.wait_output("ready", T), "{}", run.stderr());
    run.signal(Signal::SIGUSR1);
    assert!(run.wait_output("got-usr1", T), "{}", run.stderr());
    run.signal(Signal::SIGUSR2);
    let out = run.wait(T);
    assert!(out.stdout.contains("got-usr2"), "{}", out.stdout);
    assert_eq!(out.code, 5);
}

#[test]
fn term_goes_to_cmd_with_receive_signals() {
    let Some(sb) = sandbox("receive_signals") else {
        return;
    };
    let run = sb
        .init()
        .env("CUSTOS_CMD_RECEIVE_SIGNALS", "1")
        .args(&[
            "sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .spawn();
    assert!(run.wait_output("ready", T));
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    assert!(out.stdout.contains("got-term"), "{}", out.stdout);
    assert_eq!(out.code, 42, "{}", out.stderr);
}

#[test]
fn term_stops_a_cmd_that_exits_on_term_at_once() {
    let Some(sb) = sandbox("term_fast") else {
        return;
    };
    let run = sb.init().args(&["sleep", "100"]).spawn();
    assert!(
        custos_tests::wait_until(T, || run.exec(&["pidof", "sleep"]).code == 0),
        "{}",
        run.stderr()
    );
    let t0 = Instant::now();
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "stop took {:?}",
        t0.elapsed()
    );
}

/// A CMD that ignores TERM is killed at CMD_GRACETIME + KILL_GRACETIME, never later; a second
/// TERM during stage 3 skips the rest.
#[test]
fn grace_times_and_the_second_signal() {
    let Some(sb) = sandbox("grace") else { return };
    let ignore = "trap '' TERM; echo ready; while :; do sleep 0.05; done";
    let run = sb
        .init()
        .env("CUSTOS_CMD_GRACETIME", "400")
        .env("CUSTOS_KILL_GRACETIME", "300")
        .args(&["sh", "-c", ignore])
        .spawn();
    assert!(run.wait_output("ready", T));
    let t0 = Instant::now();
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    let took = t0.elapsed();
    assert_eq!(out.code, 137, "{}", out.stderr);
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(1000),
        "took {took:?}"
    );

    let run = sb
        .init()
        .env("CUSTOS_CMD_GRACETIME", "20s")
        .env("CUSTOS_VERBOSITY", "2")
        .args(&["sh", "-c", ignore])
        .spawn();
    assert!(run.wait_output("ready", T));
    let t0 = Instant::now();
    run.signal(Signal::SIGTERM);
    assert!(run.wait_output("stage 3: stopping", T), "{}", run.stderr());
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "second TERM did not hurry: {:?}",
        t0.elapsed()
    );
    assert!(
        out.stderr.contains("skipping the remaining grace times"),
        "{}",
        out.stderr
    );
}

/// /init under another PID 1 (docker run --init, a shared pid namespace): a subreaper, the
/// same behaviour, orphans reaped.
#[test]
fn not_pid1_still_reaps_orphans() {
    let Some(sb) = sandbox("not_pid1") else {
        return;
    };
    let script = r#"
i=0
while [ $i -lt 200 ]; do ( true & ) ; i=$((i+1)); done
sleep 0.5
"#
    .to_string()
        + custos_tests::sandbox::COUNT_ZOMBIES
        + "\nexit 9\n";
    let out = sb
        .init()
        .under_other_pid1()
        .args(&["sh", "-c", &script])
        .run(T);
    assert_eq!(out.code, 9, "{}", out.stderr);
    assert!(out.stdout.contains("zombies=0"), "{}", out.stdout);
}

/// HUP and QUIT start stage 3 like TERM (CMD then gets SIGTERM).
#[test]
fn hup_and_quit_stop_the_container() {
    let Some(sb) = sandbox("hup_quit") else {
        return;
    };
    for sig in [Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGINT] {
        let run = sb
            .init()
            .args(&[
                "sh",
                "-c",
                "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.02; done",
            ])
            .spawn();
        assert!(run.wait_output("ready", T));
        run.signal(sig);
        let out = run.wait(T);
        assert_eq!(out.code, 0, "{sig}: {}", out.stderr);
        assert!(
            out.stdout.contains("got-term"),
            "{sig}: CMD got SIGTERM in stage 3: {}",
            out.stdout
        );
    }
}
