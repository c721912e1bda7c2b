//! fix-attrs: recursive owners and modes, symbolic links never followed, hidden names,
//! FILE:LINE errors with nothing applied, missing paths, and running without privilege.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use custos_tests::{bin, is_real_root, skip, tempdir, write_file};

/// Runs fix-attrs with `args`, the HIDDEN settings unset except those in `env`.
fn fix_attrs(args: &[&Path], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin("fix-attrs"));
    cmd.args(args)
        .env_remove("CUSTOS_FIX_ATTRS_HIDDEN")
        .env_remove("S6_FIX_ATTRS_HIDDEN");
    cmd.env_remove("CUSTOS_VERBOSITY")
        .env_remove("S6_VERBOSITY");
    cmd.envs(env.iter().copied());
    cmd.output().expect("run fix-attrs")
}

fn show(out: &Output, dir: &Path) -> String {
    let listing = Command::new("ls")
        .arg("-lanR")
        .arg(dir)
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&listing)
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `(uid, gid, mode & 07777)` without following a link.
fn attrs(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

fn mkdir(p: &Path, mode: u32) {
    std::fs::create_dir_all(p).expect("mkdir");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn need_root(test: &str) -> bool {
    if is_real_root() {
        return true;
    }
    skip(test, "needs real root (chown to other ids)");
    false
}

fn conf(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    write_file(&p, text, 0o644);
    p
}

/// `(uid, gid)` of `name` in /etc/passwd.
fn passwd(name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

#[test]
fn recursive_owners_and_modes() {
    if !need_root("recursive_owners_and_modes") {
        return;
    }
    let dir = tempdir("fix-attrs-recursive");
    let tree = dir.join("tree");
    mkdir(&tree.join("sub/deeper"), 0o755);
    write_file(&tree.join("a"), "a", 0o644);
    write_file(&tree.join("sub/b"), "b", 0o4755);
    write_file(&tree.join("sub/deeper/c"), "c", 0o600);
    let flat = dir.join("flat");
    mkdir(&flat, 0o755);
    write_file(&flat.join("inner"), "x", 0o644);
    let named = dir.join("named");
    write_file(&named, "n", 0o644);
    let (duid, dgid) = passwd("daemon").expect("daemon in /etc/passwd");
    let f = conf(
        &dir,
        "01",
        &format!(
            "# comment\n\n{} true 2:2 0640 0750\n{} false 12345:23456 0600 0711\n{} false daemon,3:4 0400 0700\n",
            tree.display(),
            flat.display(),
            named.display()
        ),
    );
    let out = fix_attrs(&[&f], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out, &dir));
    assert_eq!(stderr(&out), "");
    for d in ["", "sub", "sub/deeper"] {
        assert_eq!(
            attrs(&tree.join(d)),
            (2, 2, 0o750),
            "{d}\n{}",
            show(&out, &dir)
        );
    }
    for p in ["a", "sub/b", "sub/deeper/c"] {
        assert_eq!(
            attrs(&tree.join(p)),
            (2, 2, 0o640),
            "{p}\n{}",
            show(&out, &dir)
        );
    }
    // RECURSE false: PATH only
    assert_eq!(attrs(&flat), (12345, 23456, 0o711));
    assert_eq!(attrs(&flat.join("inner")), (0, 0, 0o644));
    assert_eq!(attrs(&named), (duid, dgid, 0o400));

    // set-user-ID survives the chown that would clear it: chmod comes after chown
    let f2 = conf(
        &dir,
        "02",
        &format!("{} false 3:3 4755 0755\n", tree.join("a").display()),
    );
    let out = fix_attrs(&[&f2], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out, &dir));
    assert_eq!(attrs(&tree.join("a")), (3, 3, 0o4755));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn symbolic_links_are_never_followed() {
    if !need_root("symbolic_links_are_never_followed") {
        return;
    }
    let dir = tempdir("fix-attrs-symlinks");
    let tree = dir.join("tree");
    mkdir(&tree, 0o755);
    // targets outside the tree, owned by root, 0644 / 0755
    let target = dir.join("target");
    write_file(&target, "secret", 0o644);
    let outside = dir.join("outside");
    mkdir(&outside, 0o755);
    write_file(&outside.join("file"), "o", 0o644);
    let passwd_before = attrs(Path::new("/etc/passwd"));
    write_file(&tree.join("plain"), "p", 0o644);
    symlink(&target, tree.join("to-target")).expect("symlink");
    symlink("/etc/passwd", tree.join("to-passwd")).expect("symlink");
    symlink(&outside, tree.join("to-outside")).expect("symlink");
    symlink("../nowhere", tree.join("dangling")).expect("symlink");
    // PATH itself a link, to a file and to a folder, with RECURSE true
    let link_file = dir.join("link-file");
    symlink(&target, &link_file).expect("symlink");
    let link_dir = dir.join("link-dir");
    symlink(&outside, &link_dir).expect("symlink");
    let link_passwd = dir.join("link-passwd");
    symlink("/etc/passwd", &link_passwd).expect("symlink");
    let f = conf(
        &dir,
        "01",
        &format!(
            "{} true 2:2 0600 0700\n{} true 2:2 0600 0700\n{} true 2:2 0600 0700\n{} false 2:2 0600 0700\n",
            tree.display(),
            link_file.display(),
            link_dir.display(),
            link_passwd.display()
        ),
    );
    let out = fix_attrs(&[&f], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out, &dir));
    assert_eq!(stderr(&out), "");
    // the tree and its links changed (links: owner only)...
    assert_eq!(attrs(&tree), (2, 2, 0o700));
    assert_eq!(attrs(&tree.join("plain")), (2, 2, 0o600));
    for l in ["to-target", "to-passwd", "to-outside", "dangling"] {
        let (u, g, _) = attrs(&tree.join(l));
        assert_eq!((u, g), (2, 2), "{l}");
    }
    for l in [&link_file, &link_dir, &link_passwd] {
        let (u, g, _) = attrs(l);
        assert_eq!((u, g), (2, 2), "{}", l.display());
    }
    // ...and no target did
    assert_eq!(attrs(&target), (0, 0, 0o644), "{}", show(&out, &dir));
    assert_eq!(attrs(&outside), (0, 0, 0o755));
    assert_eq!(attrs(&outside.join("file")), (0, 0, 0o644));
    assert_eq!(attrs(Path::new("/etc/passwd")), passwd_before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hidden_names_skipped_unless_asked() {
    if !need_root("hidden_names_skipped_unless_asked") {
        return;
    }
    let cases: [(&[(&str, &str)], bool); 5] = [
        (&[], false),
        (&[("CUSTOS_FIX_ATTRS_HIDDEN", "1")], true),
        (&[("S6_FIX_ATTRS_HIDDEN", "1")], true),
        (
            &[
                ("CUSTOS_FIX_ATTRS_HIDDEN", "0"),
                ("S6_FIX_ATTRS_HIDDEN", "1"),
            ],
            false,
        ),
        (
            &[
                ("CUSTOS_FIX_ATTRS_HIDDEN", "1"),
                ("S6_FIX_ATTRS_HIDDEN", "0"),
            ],
            true,
        ),
    ];
    for (env, included) in cases {
        let dir = tempdir("fix-attrs-hidden");
        let tree = dir.join("tree");
        mkdir(&tree.join(".hdir"), 0o755);
        write_file(&tree.join(".hfile"), "h", 0o644);
        write_file(&tree.join(".hdir/inner"), "i", 0o644);
        write_file(&tree.join("seen"), "s", 0o644);
        // a hidden PATH named explicitly is applied
        let hidden_root = dir.join(".explicit");
        mkdir(&hidden_root, 0o755);
        let f = conf(
            &dir,
            "01",
            &format!(
                "{} true 2:2 0600 0700\n{} false 2:2 0600 0700\n",
                tree.display(),
                hidden_root.display()
            ),
        );
        let out = fix_attrs(&[&f], env);
        assert_eq!(out.status.code(), Some(0), "{env:?}\n{}", show(&out, &dir));
        assert_eq!(attrs(&tree.join("seen")), (2, 2, 0o600), "{env:?}");
        assert_eq!(attrs(&hidden_root), (2, 2, 0o700), "{env:?}");
        let want = if included {
            [(2, 2, 0o600), (2, 2, 0o700), (2, 2, 0o600)]
        } else {
            [(0, 0, 0o644), (0, 0, 0o755), (0, 0, 0o644)]
        };
        let got = [
            attrs(&tree.join(".hfile")),
            attrs(&tree.join(".hdir")),
            attrs(&tree.join(".hdir/inner")),
        ];
        assert_eq!(got, want, "{env:?}\n{}", show(&out, &dir));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn invalid_hidden_setting_exits_100() {
    let dir = tempdir("fix-attrs-hidden-bad");
    let f = conf(&dir, "01", "");
    let out = fix_attrs(&[&f], &[("CUSTOS_FIX_ATTRS_HIDDEN", "yes")]);
    assert_eq!(out.status.code(), Some(100), "{}", show(&out, &dir));
    assert_eq!(
        stderr(&out),
        "fix-attrs: fatal: CUSTOS_FIX_ATTRS_HIDDEN: invalid value: yes (expected 0 or 1)\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_lines_each_reported_and_nothing_applied() {
    let dir = tempdir("fix-attrs-malformed");
    let victim = dir.join("victim");
    write_file(&victim, "v", 0o644);
    let good = format!("{} false 0:0 0600 0700", victim.display());
    // (line, what its message starts with)
    let bad: [(&str, &str); 14] = [
        (
            "/x true 0:0 0644",
            "too few fields: 4 (expected 5: PATH RECURSE ACCOUNT FMODE DMODE)",
        ),
        (
            "/x true 0:0 0644 0755 more",
            "too many fields: 6 (expected 5: PATH RECURSE ACCOUNT FMODE DMODE)",
        ),
        (
            "relative/path true 0:0 0644 0755",
            "relative PATH: relative/path (expected an absolute path)",
        ),
        (
            "/x yes 0:0 0644 0755",
            "invalid RECURSE: yes (expected true or false)",
        ),
        (
            "/x true 0:0 0648 0755",
            "invalid FMODE: 0648 (expected an octal mode",
        ),
        (
            "/x true 0:0 0644 u+rwx",
            "invalid DMODE: u+rwx (expected an octal mode",
        ),
        (
            "/x true 0:0 10000 0755",
            "invalid FMODE: 10000 (expected an octal mode from 0 to 7777",
        ),
        ("/x true :0 0644 0755", "invalid account: :0 (empty name"),
        (
            "/x true root,3 0644 0755",
            "invalid account: root,3 (the fallback after the comma must be numeric uid:gid",
        ),
        (
            "/x true a:b:c 0644 0755",
            "invalid account: a:b:c (too many colons",
        ),
        (
            "/x true 99999999999 0644 0755",
            "invalid account: 99999999999 (99999999999 is out of range",
        ),
        (
            "/x true custos-no-such-user 0644 0755",
            "unknown account: custos-no-such-user (expected",
        ),
        (
            "/x true root:custos-no-such-group 0644 0755",
            "unknown group: custos-no-such-group (expected",
        ),
        (
            "/x true root,a:b 0644 0755",
            "invalid account: root,a:b (the fallback",
        ),
    ];
    let mut text = String::from("# bad lines, one good\n");
    text.push_str(&good);
    text.push('\n');
    for (line, _) in &bad {
        text.push_str(line);
        text.push('\n');
    }
    let f1 = conf(&dir, "01-bad", &text);
    // a second file: its good line is not applied either, its bad line is reported too
    let f2 = conf(&dir, "02-more", &format!("{good}\n\n/y false 0:0 0644\n"));
    let out = fix_attrs(&[&f1, &f2], &[]);
    assert_eq!(out.status.code(), Some(100), "{}", show(&out, &dir));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), bad.len() + 1, "{err}");
    for (i, (_, msg)) in bad.iter().enumerate() {
        let want = format!("fix-attrs: fatal: {}:{}: {msg}", f1.display(), i + 3);
        assert!(
            lines[i].starts_with(&want),
            "line {}: {}\nwanted: {want}",
            i + 3,
            lines[i]
        );
        assert!(
            lines[i].contains("(expected") || lines[i].contains("; expected"),
            "{}",
            lines[i]
        );
    }
    assert_eq!(
        lines[bad.len()],
        format!("fix-attrs: fatal: {}:3: too few fields: 4 (expected 5: PATH RECURSE ACCOUNT FMODE DMODE)", f2.display())
    );
    assert_eq!(attrs(&victim).2, 0o644, "nothing may be applied");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_path_is_a_warning() {
    let dir = tempdir("fix-attrs-missing");
    let there = dir.join("there");
    write_file(&there, "t", 0o644);
    let me = format!("{}:{}", nix::unistd::geteuid(), nix::unistd::getegid());
    let f = conf(
        &dir,
        "01",
        &format!(
            "{}/not-there true {me} 0600 0700\n{} false {me} 0600 0700\n",
            dir.display(),
            there.display()
        ),
    );
    let out = fix_attrs(&[&f], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out, &dir));
    assert_eq!(
        stderr(&out),
        format!(
            "fix-attrs: warning: {}:1: {}/not-there: No such file or directory\n",
            f.display(),
            dir.display()
        )
    );
    assert_eq!(attrs(&there).2, 0o600, "the next line is applied");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreadable_file_exits_111_and_applies_nothing() {
    let dir = tempdir("fix-attrs-unreadable");
    let victim = dir.join("victim");
    write_file(&victim, "v", 0o644);
    let f = conf(
        &dir,
        "01",
        &format!("{} false 0:0 0600 0700\n", victim.display()),
    );
    let missing = dir.join("02-missing");
    let out = fix_attrs(&[&f, &missing], &[]);
    assert_eq!(out.status.code(), Some(111), "{}", show(&out, &dir));
    assert_eq!(
        stderr(&out),
        format!(
            "fix-attrs: fatal: unable to read {}: No such file or directory\n",
            missing.display()
        )
    );
    assert_eq!(attrs(&victim).2, 0o644);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Not root: an entry that needs a privilege fix-attrs lacks is skipped with one warning
/// naming the file and line; the rest is applied; exit 0.
#[test]
fn without_privilege_entries_are_skipped_with_one_warning() {
    if !need_root("without_privilege_entries_are_skipped_with_one_warning") {
        return;
    }
    let dir = tempdir("fix-attrs-nonroot");
    mkdir(&dir, 0o755);
    let tree = dir.join("root-tree");
    mkdir(&tree, 0o755);
    write_file(&tree.join("a"), "a", 0o644);
    write_file(&tree.join("b"), "b", 0o644);
    let rootfile = dir.join("root-file");
    write_file(&rootfile, "r", 0o644);
    let mine = dir.join("mine");
    write_file(&mine, "m", 0o644);
    std::os::unix::fs::chown(&mine, Some(65534), Some(65534)).expect("chown");
    let f = conf(
        &dir,
        "01",
        &format!(
            "{} true 2:2 0600 0700\n{} false 65534:65534 0600 0700\n{} false 0:0 0644 0755\n{} false 65534:65534 0640 0750\n",
            tree.display(),
            mine.display(),
            rootfile.display(),
            rootfile.display(),
        ),
    );
    let out = Command::new(bin("setuidgid"))
        .arg("65534:65534")
        .arg(bin("fix-attrs"))
        .arg(&f)
        .env_remove("CUSTOS_FIX_ATTRS_HIDDEN")
        .env_remove("S6_FIX_ATTRS_HIDDEN")
        .output()
        .expect("run setuidgid fix-attrs");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out, &dir));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "one warning per skipped entry:\n{err}");
    assert_eq!(
        lines[0],
        format!(
            "fix-attrs: warning: {}:1: skipped: unable to chown {} to 2:2: Operation not permitted (fix-attrs runs as uid 65534, 2 more paths skipped)",
            f.display(),
            tree.display()
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "fix-attrs: warning: {}:4: skipped: unable to chown {} to 65534:65534: Operation not permitted (fix-attrs runs as uid 65534)",
            f.display(),
            rootfile.display()
        )
    );
    // applied where it could (line 2), untouched where it asked nothing new (line 3)
    assert_eq!(attrs(&mine), (65534, 65534, 0o600));
    assert_eq!(attrs(&rootfile), (0, 0, 0o644));
    assert_eq!(attrs(&tree.join("a")), (0, 0, 0o644));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without arguments: /etc/fix-attrs.d in lexical order, names starting with . skipped (in a
/// chroot, which also has no /proc: chmod still never follows a link).
#[test]
fn default_folder_in_lexical_order() {
    if !need_root("default_folder_in_lexical_order") {
        return;
    }
    let root = tempdir("fix-attrs-chroot");
    std::fs::copy(bin("fix-attrs"), root.join("fix-attrs")).expect("copy fix-attrs");
    mkdir(&root.join("data"), 0o755);
    write_file(&root.join("data/file"), "d", 0o644);
    write_file(&root.join("target"), "t", 0o644);
    symlink("/target", root.join("data/link")).expect("symlink");
    let d = root.join("etc/fix-attrs.d");
    conf(&d, "10-second", "/data true 5:5 0640 0750\n");
    conf(&d, "02-first", "/data true 4:4 0600 0700\n");
    conf(&d, ".hidden", "/data true 6:6 0666 0777\n");
    conf(&d, "20-missing", "/nothere false 1:1 0600 0700\n");
    let out = Command::new("chroot")
        .arg(&root)
        .arg("/fix-attrs")
        .env_remove("CUSTOS_FIX_ATTRS_HIDDEN")
        .output()
        .expect("chroot");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out, &root));
    assert_eq!(
        stderr(&out),
        "fix-attrs: warning: /etc/fix-attrs.d/20-missing:1: /nothere: No such file or directory\n"
    );
    assert_eq!(attrs(&root.join("data")), (5, 5, 0o750));
    assert_eq!(attrs(&root.join("data/file")), (5, 5, 0o640));
    let (u, g, _) = attrs(&root.join("data/link"));
    assert_eq!((u, g), (5, 5));
    assert_eq!(attrs(&root.join("target")), (0, 0, 0o644));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn usage_help_and_version() {
    let out = Command::new(bin("fix-attrs"))
        .arg("--bogus")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(stderr(&out), "fix-attrs: usage: fix-attrs [FILE...]\n");
    let out = Command::new(bin("fix-attrs"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: fix-attrs [FILE...]"));
    let out = Command::new(bin("fix-attrs"))
        .arg("--version")
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("fix-attrs {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A failure that is not a lack of privilege (here a read-only file system): reported with
/// FILE:LINE, the other entries still applied, exit 111 at the end.
#[test]
fn other_failures_exit_111_after_the_rest() {
    if !need_root("other_failures_exit_111_after_the_rest") {
        return;
    }
    let dir = tempdir("fix-attrs-erofs");
    let ro = dir.join("ro");
    mkdir(&ro, 0o755);
    write_file(&ro.join("file"), "f", 0o644);
    let rw = dir.join("rw");
    write_file(&rw, "w", 0o644);
    let f = conf(
        &dir,
        "01",
        &format!(
            "{} true 2:2 0600 0700\n{} false 2:2 0600 0700\n",
            ro.display(),
            rw.display()
        ),
    );
    // a private mount namespace, so the read-only bind mount is seen by fix-attrs only
    let script = format!(
        "mount --bind '{ro}' '{ro}' && mount -o remount,bind,ro '{ro}' && exec '{fa}' '{f}'",
        ro = ro.display(),
        fa = bin("fix-attrs").display(),
        f = f.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_remove("CUSTOS_FIX_ATTRS_HIDDEN")
        .env_remove("S6_FIX_ATTRS_HIDDEN")
        .output()
        .expect("run unshare");
    assert_eq!(out.status.code(), Some(111), "{}", show(&out, &dir));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(
        lines.first().copied().unwrap_or_default(),
        format!(
            "fix-attrs: warning: {}:1: unable to chown {} to 2:2: Read-only file system (1 more paths failed)",
            f.display(),
            ro.display()
        ),
        "{err}"
    );
    assert_eq!(
        lines.last().copied().unwrap_or_default(),
        format!("fix-attrs: fatal: unable to apply {}:1", f.display())
    );
    assert_eq!(attrs(&rw), (2, 2, 0o600), "the next entry is applied");
    assert_eq!(attrs(&ro.join("file")), (0, 0, 0o644));
    let _ = std::fs::remove_dir_all(&dir);
}
