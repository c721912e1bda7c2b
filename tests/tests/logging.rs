//! CUSTOS_LOGGING 1 and 2: the catch-all logger, supervised, running as nobody, writing
//! /var/log/custos-uncaught-logs with CUSTOS_LOGGING_SCRIPT.

use std::time::Duration;

use custos_tests::sandbox::Sandbox;
use custos_tests::wait_until;
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(20);

fn sandbox(test: &str) -> Option<Sandbox> {
    custos_tests::sandbox::for_test(test)
}

fn setup(sb: &Sandbox) {
    sb.write(
        "etc/services.d/chatty/run",
        "#!/bin/sh\necho svc-out\necho svc-err >&2\nexec sleep 1000\n",
        0o755,
    );
    sb.write(
        "etc/services.d/own/run",
        "#!/bin/sh\necho own-out\nexec sleep 1000\n",
        0o755,
    );
    sb.write(
        "etc/services.d/own/log/run",
        "#!/bin/sh\nexec svlog /var/log/own\n",
        0o755,
    );
}

#[test]
fn logging_1_catches_services_but_not_cmd() {
    let Some(sb) = sandbox("logging_1") else {
        return;
    };
    setup(&sb);
    let run = sb
        .init()
        .env("CUSTOS_LOGGING", "1")
        .env("CUSTOS_LOGGING_SCRIPT", "n3 s100000 T")
        .args(&["sh", "-c", "echo cmd-out; echo ready; exec sleep 1000"])
        .spawn();
    let current = "var/log/custos-uncaught-logs/current";
    assert!(
        wait_until(T, || sb
            .read(current)
            .is_some_and(|c| c.contains("svc-out") && c.contains("svc-err"))),
        "{:?}\n{}",
        sb.read(current),
        run.stderr()
    );
    assert!(run.wait_output("ready", T));
    // the logger is supervised and runs as nobody
    let status = run.exec(&["svctl", "status", "--json", "custos-uncaught-logs"]);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap_or_default();
    let pid = doc["services"][0]["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "{}", status.stdout);
    let uid = run
        .exec(&["sh", "-c", &format!("grep ^Uid: /proc/{pid}/status")])
        .stdout;
    if custos_tests::is_real_root() {
        assert!(uid.split_whitespace().nth(1) == Some("65534"), "{uid}");
    }
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    assert_eq!(out.code, 143, "CMD killed by TERM; {}", out.stderr);
    let log = sb.read(current).unwrap_or_default();
    for line in log.lines() {
        // T: an ISO 8601 stamp before each line
        assert!(
            line.len() > 20 && line.as_bytes()[4] == b'-' && line.contains('T'),
            "{line}"
        );
    }
    assert!(
        !log.contains("cmd-out") && !log.contains("own-out"),
        "{log}"
    );
    assert!(
        out.stdout.contains("cmd-out") && !out.stdout.contains("svc-out"),
        "{}",
        out.stdout
    );
    assert!(sb
        .read("var/log/own/current")
        .unwrap_or_default()
        .contains("own-out"));
}

#[test]
fn logging_2_catches_cmd_too() {
    let Some(sb) = sandbox("logging_2") else {
        return;
    };
    setup(&sb);
    let out = sb
        .init()
        .env("CUSTOS_LOGGING", "2")
        .args(&["sh", "-c", "echo cmd-out; echo cmd-err >&2; exit 4"])
        .run(T);
    assert_eq!(out.code, 4, "{}", out.stderr);
    let log = sb
        .read("var/log/custos-uncaught-logs/current")
        .unwrap_or_default();
    assert!(log.contains("cmd-out") && log.contains("cmd-err"), "{log}");
    assert!(!out.stdout.contains("cmd-out"), "{}", out.stdout);
}
