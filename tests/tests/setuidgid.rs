//! setuidgid: accounts, supplementary groups, --caps (kept exactly, bounding set included),
//! exec failures, and SIGPIPE given back to the program.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use custos_tests::{bin, is_real_root, skip, tempdir, write_file};

fn setuidgid(args: &[&str]) -> Output {
    Command::new(bin("setuidgid"))
        .args(args)
        .output()
        .expect("run setuidgid")
}

fn show(cmd: &str, out: &Output) -> String {
    format!(
        "{cmd}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `(uid, gid)` of `name` in /etc/passwd.
fn passwd(name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

fn uid_in_passwd(uid: u32) -> bool {
    let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    text.lines()
        .any(|l| l.split(':').nth(2) == Some(&uid.to_string()))
}

/// The gids of the /etc/group entries that list `name` as a member.
fn member_of(name: &str) -> BTreeSet<u32> {
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[3].split(',').any(|m| m == name)).then(|| f[2].parse().ok())?
        })
        .collect()
}

fn ids(out: &Output) -> BTreeSet<u32> {
    stdout(out)
        .split_whitespace()
        .filter_map(|g| g.parse().ok())
        .collect()
}

fn cap_line(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn need_root(test: &str) -> bool {
    if is_real_root() {
        return true;
    }
    skip(test, "needs real root (uid 0 outside any user namespace)");
    false
}

#[test]
fn user_name_gets_its_ids_and_etc_group_groups() {
    if !need_root("user_name_gets_its_ids_and_etc_group_groups") {
        return;
    }
    let (uid, gid) = passwd("daemon").expect("daemon in /etc/passwd");
    let mut want = member_of("daemon");
    want.insert(gid);
    let out = setuidgid(&["daemon", "id", "-u"]);
    assert_eq!(
        stdout(&out),
        uid.to_string(),
        "{}",
        show("setuidgid daemon id -u", &out)
    );
    let out = setuidgid(&["daemon", "id", "-g"]);
    assert_eq!(
        stdout(&out),
        gid.to_string(),
        "{}",
        show("setuidgid daemon id -g", &out)
    );
    let out = setuidgid(&["daemon", "id", "-G"]);
    assert_eq!(ids(&out), want, "{}", show("setuidgid daemon id -G", &out));
    // the same by number: a lone uid with a passwd entry is that user
    let out = setuidgid(&[&uid.to_string(), "id", "-G"]);
    assert_eq!(ids(&out), want, "{}", show("setuidgid UID id -G", &out));
    assert!(out.status.success());
}

#[test]
fn numeric_ids_need_no_passwd_entry() {
    if !need_root("numeric_ids_need_no_passwd_entry") {
        return;
    }
    assert!(
        !uid_in_passwd(12345),
        "pick another uid: 12345 is in /etc/passwd"
    );
    let out = setuidgid(&["12345:23456", "id"]);
    assert!(
        out.status.success(),
        "{}",
        show("setuidgid 12345:23456 id", &out)
    );
    let text = stdout(&out);
    assert!(
        text.starts_with("uid=12345 gid=23456 groups=23456"),
        "{text}"
    );
    // a lone uid without a passwd entry: gid = uid, and that group only
    let out = setuidgid(&["12345", "sh", "-c", "echo $(id -u) $(id -g) $(id -G)"]);
    assert_eq!(
        stdout(&out),
        "12345 12345 12345",
        "{}",
        show("setuidgid 12345", &out)
    );
    // root's groups are all gone
    let out = setuidgid(&["0:12345", "id", "-G"]);
    assert_eq!(
        stdout(&out),
        "12345",
        "{}",
        show("setuidgid 0:12345 id -G", &out)
    );
}

/// An image with numeric ids only (no /etc at all), then one with /etc/passwd but no
/// /etc/group: the static binary works in both.
#[test]
fn works_without_etc_group() {
    if !need_root("works_without_etc_group") {
        return;
    }
    let root = tempdir("setuidgid-chroot");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::copy("/usr/bin/busybox", root.join("bin/busybox")).expect("copy busybox (static)");
    std::fs::copy(bin("setuidgid"), root.join("setuidgid")).expect("copy setuidgid");
    let chroot = |args: &[&str]| {
        Command::new("chroot")
            .arg(&root)
            .arg("/setuidgid")
            .args(args)
            .output()
            .expect("run chroot")
    };
    let out = chroot(&[
        "12345:23456",
        "/bin/busybox",
        "sh",
        "-c",
        "echo $(id -u) $(id -g) $(id -G)",
    ]);
    assert_eq!(
        stdout(&out),
        "12345 23456 23456",
        "{}",
        show("chroot setuidgid 12345:23456", &out)
    );
    let out = chroot(&["app", "/bin/busybox", "true"]);
    assert_eq!(
        out.status.code(),
        Some(100),
        "{}",
        show("chroot setuidgid app", &out)
    );
    assert_eq!(stderr(&out), "setuidgid: fatal: unknown account: app\n");

    write_file(
        &root.join("etc/passwd"),
        "root:x:0:0::/:/bin/sh\napp:x:4000:4001::/:/bin/sh\n",
        0o644,
    );
    let out = chroot(&[
        "app",
        "/bin/busybox",
        "sh",
        "-c",
        "echo $(id -u) $(id -g) $(id -G)",
    ]);
    assert_eq!(
        stdout(&out),
        "4000 4001 4001",
        "{}",
        show("chroot setuidgid app", &out)
    );
    let out = chroot(&["app:staff", "/bin/busybox", "true"]);
    assert_eq!(
        out.status.code(),
        Some(100),
        "{}",
        show("chroot setuidgid app:staff", &out)
    );
    assert_eq!(stderr(&out), "setuidgid: fatal: unknown group: staff\n");

    write_file(
        &root.join("etc/group"),
        "root:x:0:\napp:x:4001:\nstaff:x:50:app\nother:x:60:root\n",
        0o644,
    );
    let out = chroot(&["app", "/bin/busybox", "sh", "-c", "echo $(id -g) $(id -G)"]);
    assert_eq!(
        stdout(&out),
        "4001 4001 50",
        "{}",
        show("chroot setuidgid app", &out)
    );
    let out = chroot(&[
        "app:staff",
        "/bin/busybox",
        "sh",
        "-c",
        "echo $(id -g) $(id -G)",
    ]);
    assert_eq!(
        stdout(&out),
        "50 50",
        "{}",
        show("chroot setuidgid app:staff", &out)
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn unknown_account_exits_100_naming_it() {
    let out = setuidgid(&["custos-no-such-user", "true"]);
    assert_eq!(
        out.status.code(),
        Some(100),
        "{}",
        show("setuidgid custos-no-such-user", &out)
    );
    assert_eq!(
        stderr(&out),
        "setuidgid: fatal: unknown account: custos-no-such-user\n"
    );
    let out = setuidgid(&["root:custos-no-such-group", "true"]);
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        stderr(&out),
        "setuidgid: fatal: unknown group: custos-no-such-group\n"
    );
    for bad in ["root,1:1", "a:b:c", ":0", "4294967296"] {
        let out = setuidgid(&[bad, "true"]);
        assert_eq!(out.status.code(), Some(100), "{}", show(bad, &out));
        assert!(
            stderr(&out).starts_with(&format!("setuidgid: fatal: invalid account: {bad} (")),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn caps_keep_exactly_net_bind_service() {
    if !need_root("caps_keep_exactly_net_bind_service") {
        return;
    }
    for spelling in [
        "cap_net_bind_service",
        "CAP_NET_BIND_SERVICE",
        "net_bind_service",
    ] {
        let out = setuidgid(&["--caps", spelling, "nobody", "cat", "/proc/self/status"]);
        assert!(out.status.success(), "{}", show("setuidgid --caps", &out));
        let status = stdout(&out);
        for set in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
            assert_eq!(
                cap_line(&status, set),
                "0000000000000400",
                "{spelling}: {set}\n{status}"
            );
        }
        assert!(cap_line(&status, "Uid").starts_with("65534"), "{status}");
    }
    let python = "/usr/bin/python3";
    if !Path::new(python).exists() {
        skip(
            "caps_keep_exactly_net_bind_service (bind)",
            "no /usr/bin/python3",
        );
        return;
    }
    // EADDRINUSE comes after the permission check: it proves the capability as well
    let bind = "import socket, errno\ns = socket.socket()\ntry:\n    s.bind(('127.0.0.1', 80))\nexcept OSError as e:\n    if e.errno != errno.EADDRINUSE: raise\nprint('bound')";
    let out = setuidgid(&["--caps=cap_net_bind_service", "nobody", python, "-c", bind]);
    assert_eq!(
        stdout(&out),
        "bound",
        "{}",
        show("setuidgid --caps cap_net_bind_service nobody python3", &out)
    );
    // inherited: a child of PROG binds too (ambient set)
    let out = setuidgid(&[
        "--caps",
        "net_bind_service",
        "nobody",
        "sh",
        "-c",
        &format!("{python} -c \"$1\""),
        "sh",
        bind,
    ]);
    assert_eq!(stdout(&out), "bound", "{}", show("child of PROG", &out));

    let start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    if start <= 80 {
        skip(
            "caps_keep_exactly_net_bind_service (no caps)",
            "ip_unprivileged_port_start lets anyone bind port 80",
        );
        return;
    }
    let out = setuidgid(&["nobody", python, "-c", bind]);
    assert!(
        !out.status.success(),
        "{}",
        show("setuidgid nobody python3 (no --caps)", &out)
    );
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        show("no --caps", &out)
    );
}

#[test]
fn without_caps_nothing_is_kept() {
    if !need_root("without_caps_nothing_is_kept") {
        return;
    }
    let out = setuidgid(&["nobody", "cat", "/proc/self/status"]);
    let status = stdout(&out);
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(
            cap_line(&status, set),
            "0000000000000000",
            "{set}\n{status}"
        );
    }
}

#[test]
fn unknown_capability_exits_100_naming_it() {
    let out = setuidgid(&["--caps", "cap_net_bind_service,cap_fly", "nobody", "true"]);
    assert_eq!(
        out.status.code(),
        Some(100),
        "{}",
        show("setuidgid --caps cap_fly", &out)
    );
    assert_eq!(
        stderr(&out),
        "setuidgid: fatal: unknown capability: cap_fly\n"
    );
    let out = setuidgid(&["--caps", "", "nobody", "true"]);
    assert_eq!(
        out.status.code(),
        Some(100),
        "{}",
        show("setuidgid --caps ''", &out)
    );
}

#[test]
fn exec_failures_are_127_and_126() {
    let me = format!("{}:{}", nix::unistd::geteuid(), nix::unistd::getegid());
    let out = setuidgid(&[&me, "/custos/no/such/program"]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "{}",
        show("setuidgid missing", &out)
    );
    assert_eq!(
        stderr(&out),
        "setuidgid: fatal: unable to exec /custos/no/such/program: No such file or directory\n"
    );
    let out = setuidgid(&[&me, "custos-no-such-program-in-path"]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "{}",
        show("setuidgid missing in PATH", &out)
    );

    let dir = tempdir("setuidgid-noexec");
    let file = dir.join("script");
    write_file(&file, "#!/bin/sh\necho hi\n", 0o644);
    let out = setuidgid(&[&me, file.to_str().unwrap_or_default()]);
    assert_eq!(
        out.status.code(),
        Some(126),
        "{}",
        show("setuidgid non-executable", &out)
    );
    assert_eq!(
        stderr(&out),
        format!(
            "setuidgid: fatal: unable to exec {}: Permission denied\n",
            file.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn prog_gets_its_arguments_and_sigpipe_default() {
    let me = format!("{}:{}", nix::unistd::geteuid(), nix::unistd::getegid());
    let out = setuidgid(&[
        &me,
        "sh",
        "-c",
        "printf '%s|' \"$@\"",
        "sh",
        "--caps",
        "-x",
        "a b",
    ]);
    assert_eq!(stdout(&out), "--caps|-x|a b|", "{}", show("args", &out));
    // SIGPIPE (13) must not be ignored in PROG: bit 12 of SigIgn
    let out = setuidgid(&[&me, "cat", "/proc/self/status"]);
    let ign = u64::from_str_radix(&cap_line(&stdout(&out), "SigIgn"), 16).expect("SigIgn");
    assert_eq!(
        ign & (1 << 12),
        0,
        "SIGPIPE ignored in PROG: SigIgn {ign:x}"
    );
    let out = setuidgid(&[&me, "sh", "-c", "yes | head -n 1"]);
    assert_eq!(stdout(&out), "y", "{}", show("yes | head", &out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn not_root_may_become_itself_only() {
    if !need_root("not_root_may_become_itself_only") {
        return;
    }
    let inner = bin("setuidgid");
    let inner = inner.to_str().unwrap_or_default();
    let out = setuidgid(&["65534:65534", inner, "65534:65534", "id", "-u"]);
    assert_eq!(
        stdout(&out),
        "65534",
        "{}",
        show("nobody becoming nobody", &out)
    );
    let out = setuidgid(&["65534:65534", inner, "0:0", "true"]);
    assert_eq!(
        out.status.code(),
        Some(111),
        "{}",
        show("nobody becoming root", &out)
    );
    assert_eq!(
        stderr(&out),
        "setuidgid: fatal: unable to set supplementary groups to 0: Operation not permitted\n"
    );
    let out = setuidgid(&[
        "65534:65534",
        inner,
        "--caps",
        "net_bind_service",
        "65534:65534",
        "true",
    ]);
    assert_eq!(
        out.status.code(),
        Some(111),
        "{}",
        show("nobody keeping a capability", &out)
    );
    assert!(stderr(&out).starts_with(
        "setuidgid: fatal: unable to keep cap_net_bind_service: Operation not permitted ("
    ));
}

#[test]
fn usage_help_and_version() {
    for args in [
        &[][..],
        &["nobody"][..],
        &["--caps"][..],
        &["--bogus", "nobody", "true"][..],
    ] {
        let out = setuidgid(args);
        assert_eq!(
            out.status.code(),
            Some(100),
            "{}",
            show(&format!("{args:?}"), &out)
        );
        assert_eq!(
            stderr(&out),
            "setuidgid: usage: setuidgid [--caps CAP,...] ACCOUNT PROG [ARGS...]\n"
        );
    }
    let out = setuidgid(&["--help"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("usage: setuidgid [--caps CAP,...] ACCOUNT PROG [ARGS...]"));
    let out = setuidgid(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        format!("setuidgid {}", env!("CARGO_PKG_VERSION"))
    );
}
