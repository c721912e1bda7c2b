//! /init's stages, run as PID 1 of fresh namespaces: order, environment, stage-2 failures,
//! /run handling, settings.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use custos_tests::sandbox::Sandbox;
use custos_tests::skip;
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(20);

fn sandbox(test: &str) -> Option<Sandbox> {
    custos_tests::sandbox::for_test(test)
}

/// fix-attrs, then cont-init.d in lexical order one at a time, then CMD; at stop CMD is
/// TERMed first, then cont-finish.d in lexical order.
#[test]
fn stage_order() {
    let Some(sb) = sandbox("stage_order") else {
        return;
    };
    sb.write("data/file", "x", 0o644);
    sb.write(
        "etc/fix-attrs.d/01-data",
        "/data/file false root 0600 0700\n",
        0o644,
    );
    let log = "/tmp/order";
    sb.write(
        "etc/cont-init.d/20-second",
        &format!("#!/bin/sh\necho cont-init-20 >> {log}\n"),
        0o755,
    );
    sb.write(
        "etc/cont-init.d/10-first",
        &format!("#!/bin/sh\nstat -c cont-init-10-saw-%a /data/file >> {log}\nsleep 0.2\necho cont-init-10-done >> {log}\n"),
        0o755,
    );
    sb.write(
        "etc/cont-finish.d/20-b",
        &format!("#!/bin/sh\necho finish-20 >> {log}\n"),
        0o755,
    );
    sb.write(
        "etc/cont-finish.d/10-a",
        &format!("#!/bin/sh\necho finish-10 >> {log}\n"),
        0o755,
    );
    let cmd = format!("trap 'echo cmd-term >> {log}; exit 0' TERM; echo cmd-start >> {log}; echo ready; while :; do sleep 0.05; done");
    let run = sb.init().args(&["sh", "-c", &cmd]).spawn();
    assert!(run.wait_output("ready", T), "{}", run.stderr());
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = sb.read("tmp/order").unwrap_or_default();
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            "cont-init-10-saw-600",
            "cont-init-10-done",
            "cont-init-20",
            "cmd-start",
            "cmd-term",
            "finish-10",
            "finish-20"
        ],
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn environment_is_byte_exact() {
    let Some(sb) = sandbox("environment") else {
        return;
    };
    sb.write(
        "etc/cont-init.d/10-add",
        "#!/bin/sh\nprintf 'from-cont-init' > /run/custos/container_environment/ADDED\n",
        0o755,
    );
    sb.write(
        "tmp/shebang",
        "#!/usr/bin/with-contenv sh\nprintf '%s' \"$WEIRD\" > /tmp/v-shebang\nprintf '%s' \"$ADDED\" > /tmp/added-shebang\n",
        0o755,
    );
    let weird: &[u8] = b"a=b\nline two\n\xff\xfe end ";
    let cmd = "printf '%s' \"$WEIRD\" > /tmp/v-cmd; printf '%s' \"$ADDED\" > /tmp/added-cmd; \
               env -i /usr/bin/with-contenv sh -c 'printf %s \"$WEIRD\" > /tmp/v-contenv'; env -i /tmp/shebang";
    let out = sb
        .init()
        .env_os(OsStr::new("WEIRD"), OsStr::from_bytes(weird))
        .args(&["sh", "-c", cmd])
        .run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for f in ["tmp/v-cmd", "tmp/v-contenv", "tmp/v-shebang"] {
        let got = std::fs::read(sb.root().join(f)).unwrap_or_default();
        assert_eq!(got, weird, "{f}");
    }
    for f in ["tmp/added-cmd", "tmp/added-shebang"] {
        assert_eq!(sb.read(f).as_deref(), Some("from-cont-init"), "{f}");
    }
    let saved = std::fs::read(sb.root().join("tmp/v-cmd")).unwrap_or_default();
    assert_eq!(saved, weird);
}

#[test]
fn keep_env_0_gives_scripts_path_only() {
    let Some(sb) = sandbox("keep_env") else {
        return;
    };
    sb.write(
        "etc/cont-init.d/10-env",
        "#!/bin/sh\nenv | grep -v '^PWD=' | grep -v '^SHLVL=' | cut -d= -f1 | sort > /tmp/plain\nwith-contenv sh -c 'echo $SECRET' > /tmp/contenv\n",
        0o755,
    );
    let out = sb
        .init()
        .env("CUSTOS_KEEP_ENV", "0")
        .env("SECRET", "s3")
        .args(&["sh", "-c", "echo $SECRET"])
        .run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(sb.read("tmp/plain").unwrap_or_default().trim(), "PATH");
    assert_eq!(sb.read("tmp/contenv").unwrap_or_default().trim(), "s3");
    assert_eq!(
        out.stdout.trim(),
        "s3",
        "CMD always gets the container environment"
    );
}

#[test]
fn stage2_failure_behaviours() {
    let Some(sb) = sandbox("stage2_fails") else {
        return;
    };
    sb.write("etc/cont-init.d/10-fail", "#!/bin/sh\nexit 3\n", 0o755);
    sb.write(
        "etc/cont-init.d/20-after",
        "#!/bin/sh\necho after >> /tmp/after\n",
        0o755,
    );
    sb.write(
        "etc/cont-finish.d/10-f",
        "#!/bin/sh\necho finished >> /tmp/finished\n",
        0o755,
    );

    let out = sb.init().args(&["sh", "-c", "echo cmd-ran"]).run(T);
    assert_eq!(
        out.code, 3,
        "default 2: the failing script's code; {}",
        out.stderr
    );
    assert!(!out.stdout.contains("cmd-ran"));
    assert!(
        out.stderr.contains("/etc/cont-init.d/10-fail exited 3"),
        "{}",
        out.stderr
    );
    assert!(
        sb.read("tmp/after").is_none(),
        "nothing after the failure runs"
    );
    assert_eq!(
        sb.read("tmp/finished").as_deref(),
        Some("finished\n"),
        "cont-finish.d runs"
    );

    let out = sb
        .init()
        .env("CUSTOS_BEHAVIOUR_IF_STAGE2_FAILS", "1")
        .args(&["sh", "-c", "echo cmd-ran"])
        .run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("cmd-ran"));
    assert!(
        out.stderr
            .contains("init: warning: /etc/cont-init.d/10-fail exited 3"),
        "{}",
        out.stderr
    );

    let out = sb
        .init()
        .env("S6_BEHAVIOUR_IF_STAGE2_FAILS", "0")
        .args(&["sh", "-c", "echo cmd-ran"])
        .run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("cmd-ran"));
    assert!(
        !out.stderr.contains("10-fail"),
        "0 is silent: {}",
        out.stderr
    );
    assert_eq!(sb.read("tmp/after").as_deref(), Some("after\nafter\n"));
}

#[test]
fn scripts_without_execute_bit_run_through_their_shebang() {
    let Some(sb) = sandbox("no_exec_bit") else {
        return;
    };
    sb.write(
        "etc/cont-init.d/10-plain",
        "#!/bin/sh\necho plain-ran > /tmp/plain\n",
        0o644,
    );
    let out = sb.init().args(&["true"]).run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(sb.read("tmp/plain").as_deref(), Some("plain-ran\n"));
    assert!(
        out.stderr
            .contains("/etc/cont-init.d/10-plain is not executable: running it through /bin/sh"),
        "{}",
        out.stderr
    );
}

#[test]
fn invalid_setting_stops_before_anything_starts() {
    let Some(sb) = sandbox("invalid_setting") else {
        return;
    };
    sb.write(
        "etc/cont-init.d/10-mark",
        "#!/bin/sh\ntouch /tmp/started\n",
        0o755,
    );
    let out = sb
        .init()
        .env("CUSTOS_KILL_GRACETIME", "3 s")
        .env("S6_LOGGING", "7")
        .args(&["sh", "-c", "touch /tmp/cmd"])
        .run(T);
    assert_eq!(out.code, 100, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("init: fatal: CUSTOS_KILL_GRACETIME: invalid duration \"3 s\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("init: fatal: S6_LOGGING: invalid value \"7\""),
        "{}",
        out.stderr
    );
    assert!(sb.read("tmp/started").is_none() && sb.read("tmp/cmd").is_none());
}

#[test]
fn read_only_root_with_noexec_run() {
    let Some(sb) = sandbox("read_only") else {
        return;
    };
    sb.write(
        "etc/cont-init.d/10-x",
        "#!/bin/sh\necho cont-init-ran\n",
        0o755,
    );
    let out = sb
        .init()
        .read_only_root()
        .args(&["sh", "-c", "touch /should-fail 2>/dev/null && echo writable; cat /run/custos/container_environment/HOME_MARK"])
        .env("HOME_MARK", "here")
        .run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("cont-init-ran") && out.stdout.contains("here"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("writable"));
}

#[test]
fn stale_run_custos_is_reused() {
    let Some(sb) = sandbox("stale_run") else {
        return;
    };
    let out = sb
        .init()
        .run_on_disk()
        .env("FIRST", "1")
        .args(&["true"])
        .run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(sb
        .root()
        .join("run/custos/container_environment/FIRST")
        .exists());
    let out = sb
        .init()
        .run_on_disk()
        .args(&["sh", "-c", "ls /run/custos/container_environment"])
        .run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stdout.contains("FIRST"),
        "the stale environment was cleared: {}",
        out.stdout
    );
}

#[test]
fn unwritable_run_says_how_to_fix_it() {
    let Some(sb) = sandbox("unwritable_run") else {
        return;
    };
    let out = sb
        .init()
        .read_only_root()
        .run_on_disk()
        .args(&["true"])
        .run(T);
    assert_eq!(out.code, 111, "{}", out.stderr);
    assert!(
        out.stderr.contains("unable to create /run/custos"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--tmpfs /run"), "{}", out.stderr);
    assert!(out.stderr.contains("emptyDir"), "{}", out.stderr);
}

#[test]
fn runs_as_a_non_root_user() {
    let Some(sb) = sandbox("non_root") else {
        return;
    };
    if !custos_tests::is_real_root() {
        skip("runs_as_a_non_root_user", "needs real root to switch users");
        return;
    }
    sb.write(
        "etc/cont-init.d/10-who",
        "#!/bin/sh\nid -u > /tmp/who\n",
        0o755,
    );
    let out = sb
        .init()
        .user(1000, 1000)
        .args(&["sh", "-c", "id -u; stat -c %u /run/custos"])
        .run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["1000", "1000"],
        "{}",
        out.stderr
    );
}

/// Stage 3 started by CMD's exit: the first SIGTERM is not a "second" one; a second one
/// hurries, and cont-finish.d still runs (its limit is not a grace time).
#[test]
fn only_a_second_stop_signal_hurries() {
    let Some(sb) = sandbox("second_signal") else {
        return;
    };
    sb.write(
        "etc/services.d/stubborn/run",
        "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.05; done\n",
        0o755,
    );
    sb.write(
        "etc/cont-finish.d/10-f",
        "#!/bin/sh\necho finished > /tmp/finished\n",
        0o755,
    );
    let run = sb
        .init()
        .env("CUSTOS_VERBOSITY", "2")
        .env("CUSTOS_SERVICES_GRACETIME", "20s")
        .args(&["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.02; done"])
        .spawn();
    assert!(custos_tests::wait_until(T, || run
        .exec(&["svctl", "wait", "--up", "-t", "1s", "stubborn"])
        .code
        == 0));
    sb.write("tmp/go", "", 0o644);
    assert!(run.wait_output("stage 3: stopping", T), "{}", run.stderr());
    let t0 = std::time::Instant::now();
    run.signal(Signal::SIGTERM);
    assert!(
        run.wait_output("SIGTERM received: already stopping", T),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("again"), "{}", run.stderr());
    run.signal(Signal::SIGTERM);
    let out = run.wait(T);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the second TERM hurried: {:?}",
        t0.elapsed()
    );
    assert!(
        out.stderr
            .contains("SIGTERM again: skipping the remaining grace times"),
        "{}",
        out.stderr
    );
    assert_eq!(
        sb.read("tmp/finished").as_deref(),
        Some("finished\n"),
        "cont-finish.d ran"
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn fix_attrs_sees_its_settings_with_keep_env_0() {
    let Some(sb) = sandbox("fix_attrs_env") else {
        return;
    };
    sb.write("hid/.h/f", "x", 0o644);
    sb.write("etc/fix-attrs.d/01", "/hid true 2:2 0600 0700\n", 0o644);
    let out = sb
        .init()
        .env("CUSTOS_KEEP_ENV", "0")
        .env("CUSTOS_FIX_ATTRS_HIDDEN", "1")
        .args(&["stat", "-c", "%u:%g %a", "/hid/.h", "/hid/.h/f"])
        .run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    if custos_tests::is_real_root() {
        assert_eq!(out.stdout, "2:2 700\n2:2 600\n", "{}", out.stderr);
    }
}

#[test]
fn a_bad_fix_attrs_line_stops_with_code_1() {
    let Some(sb) = sandbox("fix_attrs_bad") else {
        return;
    };
    sb.write("etc/fix-attrs.d/01", "/tmp true root 0600\n", 0o644);
    let out = sb.init().args(&["true"]).run(T);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("/etc/fix-attrs.d/01:1"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_fifo_in_the_container_environment_does_not_block_init() {
    let Some(sb) = sandbox("env_fifo") else {
        return;
    };
    sb.write(
        "etc/cont-init.d/10-fifo",
        "#!/bin/sh\nmkfifo /run/custos/container_environment/TRAP\n",
        0o755,
    );
    let out = sb.init().args(&["sh", "-c", "echo cmd-ran"]).run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("cmd-ran"));
}

#[test]
fn invalid_logging_script_is_a_setting_error() {
    let Some(sb) = sandbox("bad_logging_script") else {
        return;
    };
    let out = sb
        .init()
        .env("CUSTOS_LOGGING", "1")
        .env("CUSTOS_LOGGING_SCRIPT", "n20 bogus")
        .args(&["true"])
        .run(T);
    assert_eq!(out.code, 100, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("CUSTOS_LOGGING_SCRIPT: \"bogus\" is not an svlog directive"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_interpreter_is_named() {
    let Some(sb) = sandbox("missing_interp") else {
        return;
    };
    sb.write("etc/cont-init.d/10-x", "#!/bin/nonexistent\necho\n", 0o755);
    let out = sb.init().args(&["true"]).run(T);
    assert_eq!(out.code, 111, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "unable to run /etc/cont-init.d/10-x: its interpreter /bin/nonexistent was not found"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn run_custos_owned_by_another_user_is_refused() {
    let Some(sb) = sandbox("foreign_run") else {
        return;
    };
    if !custos_tests::is_real_root() {
        skip(
            "run_custos_owned_by_another_user_is_refused",
            "needs real root to chown",
        );
        return;
    }
    sb.mkdir("run/custos");
    nix::unistd::chown(
        &sb.root().join("run/custos"),
        Some(1000.into()),
        Some(1000.into()),
    )
    .expect("chown");
    sb.write(
        "etc/cont-init.d/10-mark",
        "#!/bin/sh\ntouch /tmp/started\n",
        0o755,
    );
    let out = sb.init().run_on_disk().args(&["true"]).run(T);
    assert_eq!(out.code, 100, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("/run/custos: owned by uid 1000, not by init's uid 0: refusing to use it"),
        "{}",
        out.stderr
    );
    assert!(sb.read("tmp/started").is_none());
}

#[test]
fn cmd_arg0_and_workdir() {
    let Some(sb) = sandbox("arg0_workdir") else {
        return;
    };
    sb.mkdir("srv/app");
    let out = sb
        .init()
        .workdir("/srv/app")
        .env("CUSTOS_CMD_ARG0", "/bin/sh -c")
        .args(&["echo \"$0 $(pwd)\"", "from-arg0"])
        .run(T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "from-arg0 /srv/app\n", "{}", out.stderr);
}
