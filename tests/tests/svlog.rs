//! svlog: rotation never splits or loses a line, timestamps, `1`, long lines, resume, TERM and
//! SIGKILL in the middle of a stream (SPEC section 5).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use custos_tests::{bin, tempdir, wait_until, write_file};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const DEADLINE: Duration = Duration::from_secs(20);

fn svlog(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("svlog"));
    cmd.args(args);
    cmd
}

/// Runs svlog with `input` on a pipe as stdin; returns its output.
fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = svlog(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn svlog");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = wait_output(child);
    match writer.join().expect("writer thread") {
        // svlog refused to start and never read
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && !out.status.success() => {}
        r => r.expect("write to svlog"),
    }
    out
}

/// Waits for the child with a deadline (SIGKILL and panic past it).
fn wait_output(child: Child) -> Output {
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("wait for svlog"),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("svlog did not exit within {DEADLINE:?}");
        }
    }
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "svlog failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The archives of a log directory, oldest first, then `current`.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut archives: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read log dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('@'))
        })
        .collect();
    archives.sort();
    archives.push(dir.join("current"));
    archives
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every line of the log, oldest first.
fn log_lines(dir: &Path) -> Vec<String> {
    log_files(dir)
        .iter()
        .flat_map(|p| read(p).lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

fn numbered(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("line {i:06}\n")).collect()
}

fn number_of(line: &str) -> usize {
    let n = line
        .strip_prefix("line ")
        .unwrap_or_else(|| panic!("not a numbered line: {line:?}"));
    assert_eq!(n.len(), 6, "split or damaged line: {line:?}");
    n.parse()
        .unwrap_or_else(|_| panic!("split or damaged line: {line:?}"))
}

/// The numbers of the log's lines with replays dropped (a line whose number is not above every
/// number before it: svlog's documented at-least-once delivery after a SIGKILL), checking that
/// each replay repeats a line already there.
fn numbers_without_replays(lines: &[String]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for l in lines {
        let n = number_of(l);
        match out.last() {
            Some(&last) if n <= last => {
                assert!(out.binary_search(&n).is_ok(), "line {n} out of order")
            }
            _ => out.push(n),
        }
    }
    out
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn is_archive_name(name: &str) -> bool {
    name.len() == 27
        && name.starts_with("@4000")
        && name.ends_with(".s")
        && name[1..25]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn rotation_never_splits_or_loses_a_line() {
    let tmp = tempdir("svlog-rotate");
    let dir = tmp.join("log");
    let total = 200_000;
    let out = run(
        &["s100000", "n5", dir.to_str().expect("utf-8 path")],
        numbered(0..total).as_bytes(),
    );
    assert_ok(&out);
    let files = log_files(&dir);
    assert_eq!(files.len(), 6, "5 archives and current: {files:?}");
    for f in &files[..5] {
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(is_archive_name(name), "archive name {name}");
        assert_eq!(
            std::fs::metadata(f).expect("stat").permissions().mode() & 0o777,
            0o744,
            "{name}"
        );
    }
    for f in &files {
        let content = read(f);
        assert!(
            content.len() <= 100_000,
            "{} has {} bytes",
            f.display(),
            content.len()
        );
        assert!(
            content.ends_with('\n'),
            "{} ends inside a line",
            f.display()
        );
    }
    let numbers: Vec<usize> = log_lines(&dir).iter().map(|l| number_of(l)).collect();
    assert!(
        numbers.len() > 5 * 100_000 / 12,
        "too few lines kept: {}",
        numbers.len()
    );
    let first = numbers[0];
    assert_eq!(
        numbers,
        (first..total).collect::<Vec<_>>(),
        "not a contiguous suffix of the input"
    );
    // clean exit: current marked complete, as s6-log does
    assert_eq!(
        std::fs::metadata(dir.join("current"))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777,
        0o744
    );
}

#[test]
fn tai64n_and_iso8601_timestamps() {
    let tmp = tempdir("svlog-stamps");
    let dir = tmp.join("log");
    let before = now();
    let out = run(
        &["t", "T", "1", "t", dir.to_str().expect("path")],
        b"hello world\nsecond\n",
    );
    assert_ok(&out);
    let after = now();
    // stdout: TAI64N then ISO 8601, each followed by a space
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, text) in lines.iter().zip(["hello world", "second"]) {
        let (tai, rest) = line.split_once(' ').expect("tai64n then space");
        let secs = check_tai64n(tai);
        assert!(before <= secs && secs <= after, "tai64n {tai} not now");
        let (iso, rest) = rest.split_once(' ').expect("iso8601 then space");
        let isecs = parse_iso8601(iso);
        assert!(before <= isecs && isecs <= after, "iso8601 {iso} not now");
        assert_eq!(isecs, secs, "both stamps are the same moment");
        assert_eq!(rest, text);
    }
    // the directory: TAI64N only (t and T apply to the next action only)
    for (line, text) in read(&dir.join("current"))
        .lines()
        .zip(["hello world", "second"])
    {
        let (tai, rest) = line.split_once(' ').expect("tai64n then space");
        check_tai64n(tai);
        assert_eq!(rest, text);
    }
}

/// Checks `@` + 24 hex digits; returns the Unix seconds (TAI64 label - 2^62 - 37 leap seconds).
fn check_tai64n(s: &str) -> i64 {
    assert_eq!(s.len(), 25, "{s}");
    let hex = s.strip_prefix('@').expect("@");
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{s}"
    );
    let label = u64::from_str_radix(&hex[..16], 16).expect("hex");
    let nanos = u32::from_str_radix(&hex[16..], 16).expect("hex");
    assert!(nanos < 1_000_000_000, "{s}");
    (label - (1u64 << 62) - 37) as i64
}

/// `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ` to Unix seconds.
fn parse_iso8601(s: &str) -> i64 {
    let b = s.as_bytes();
    assert_eq!(b.len(), 30, "{s}");
    for (i, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (29, b'Z'),
    ] {
        assert_eq!(b[i], c, "{s}");
    }
    let num = |r: std::ops::Range<usize>| -> i64 { s[r].parse().unwrap_or_else(|_| panic!("{s}")) };
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{s}");
    let _nanos = num(20..29);
    // days from civil (proleptic Gregorian), an independent check of svlog's calendar
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19)
}

#[test]
fn one_copies_lines_to_stdout() {
    let tmp = tempdir("svlog-stdout");
    let dir = tmp.join("log");
    let input = numbered(0..1000);
    let out = run(&["1", dir.to_str().expect("path")], input.as_bytes());
    assert_ok(&out);
    assert_eq!(String::from_utf8(out.stdout).expect("utf-8"), input);
    assert_eq!(read(&dir.join("current")), input);
    // without a directory, too
    let out = run(&["1"], b"a\nb\n");
    assert_ok(&out);
    assert_eq!(out.stdout, b"a\nb\n");
}

#[test]
fn final_partial_line_gets_a_newline() {
    let out = run(&["1"], b"a\nno newline");
    assert_ok(&out);
    assert_eq!(out.stdout, b"a\nno newline\n");
    // stdin a regular file (read, not peeked)
    let tmp = tempdir("svlog-file-stdin");
    let input = tmp.join("input");
    write_file(&input, "x\ny\nlast", 0o644);
    let child = svlog(&["1"])
        .stdin(File::open(&input).expect("open input"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_output(child);
    assert_ok(&out);
    assert_eq!(out.stdout, b"x\ny\nlast\n");
}

#[test]
fn a_line_longer_than_the_size_is_written_whole_in_a_file_of_its_own() {
    let tmp = tempdir("svlog-long");
    let dir = tmp.join("log");
    let long = "L".repeat(250);
    let input = format!("short1\nshort2\n{long}\nshort3\n");
    let out = run(&["s100", dir.to_str().expect("path")], input.as_bytes());
    assert_ok(&out);
    let contents: Vec<String> = log_files(&dir).iter().map(|p| read(p)).collect();
    assert_eq!(
        contents,
        vec![
            "short1\nshort2\n".to_string(),
            format!("{long}\n"),
            "short3\n".to_string()
        ]
    );
    // s1: every line in a file of its own
    let dir1 = tmp.join("log1");
    let out = run(
        &["s1", "n100", dir1.to_str().expect("path")],
        b"a\nbb\nccc\n",
    );
    assert_ok(&out);
    let contents: Vec<String> = log_files(&dir1).iter().map(|p| read(p)).collect();
    assert_eq!(contents, vec!["a\n", "bb\n", "ccc\n"]);
}

#[test]
fn a_line_longer_than_the_pipe_is_written_whole() {
    // longer than the pipe: svlog must take its start out of the pipe before the newline comes
    let tmp = tempdir("svlog-huge");
    let dir = tmp.join("log");
    for round in 0..5 {
        let _ = std::fs::remove_dir_all(&dir);
        let huge = "x".repeat(3_000_000 + round);
        let input = format!("a\n{huge}\nb\nno newline");
        let out = run(
            &["1", "s1000", "n10", dir.to_str().expect("path")],
            input.as_bytes(),
        );
        assert_ok(&out);
        assert_eq!(out.stdout.len(), input.len() + 1);
        assert!(
            out.stdout == format!("{input}\n").as_bytes(),
            "stdout differs"
        );
        let contents: Vec<String> = log_files(&dir).iter().map(|p| read(p)).collect();
        assert_eq!(contents.len(), 3, "round {round}");
        assert_eq!(contents[0], "a\n");
        assert!(
            contents[1] == format!("{huge}\n"),
            "round {round}: the long line was cut"
        );
        assert_eq!(contents[2], "b\nno newline\n");
    }
}

#[test]
fn an_existing_directory_is_resumed() {
    let tmp = tempdir("svlog-resume");
    let dir = tmp.join("log");
    let d = dir.to_str().expect("path");
    assert_ok(&run(&[d], b"old1\nold2\n"));
    assert_ok(&run(&[d], b"new1\n"));
    assert_eq!(read(&dir.join("current")), "old1\nold2\nnew1\n");
    assert_eq!(log_files(&dir).len(), 1, "no rotation yet");
    // a current left with the start of a line (a logger killed mid-write; the whole line is
    // still in the pipe and comes again) loses the fragment: no cut line stays in the log
    write_file(&dir.join("current"), "a\nha", 0o644);
    assert_ok(&run(&[d], b"half\nb\n"));
    assert_eq!(read(&dir.join("current")), "a\nhalf\nb\n");
    write_file(&dir.join("current"), "no newline at all", 0o644);
    assert_ok(&run(&[d], b"a\nhalf\nb\n"));
    assert_eq!(read(&dir.join("current")), "a\nhalf\nb\n");
    // its size counts: 9 bytes there, 5 more would pass s12
    assert_ok(&run(&["s12", d], b"next\n"));
    let contents: Vec<String> = log_files(&dir).iter().map(|p| read(p)).collect();
    assert_eq!(contents, vec!["a\nhalf\nb\n", "next\n"]);
}

#[test]
fn term_mid_stream_writes_everything_read_and_exits_0() {
    let tmp = tempdir("svlog-term");
    let dir = tmp.join("log");
    let (r, w) = cloexec_pipe();
    let keep_r = r.try_clone().expect("dup");
    let mut child = svlog(&["s100000", "n100", dir.to_str().expect("path")])
        .stdin(Stdio::from(r))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut w = File::from(w);
    let input = numbered(0..5000);
    w.write_all(input.as_bytes()).expect("write");
    w.write_all(b"partial").expect("write");
    assert!(
        wait_until(DEADLINE, || log_lines_lenient(&dir) == 5000),
        "lines did not reach the log: {}",
        log_lines_lenient(&dir)
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("kill");
    let status = wait_status(&mut child);
    assert!(status.success(), "{status:?}");
    let lines: Vec<usize> = log_lines(&dir).iter().map(|l| number_of(l)).collect();
    assert_eq!(lines, (0..5000).collect::<Vec<_>>());
    // the partial line stayed in the pipe for the next logger
    drop(w);
    let mut rest = String::new();
    File::from(keep_r)
        .read_to_string(&mut rest)
        .expect("read pipe");
    assert_eq!(rest, "partial");
}

fn wait_status(child: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    let done = wait_until(DEADLINE, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    if !done {
        let _ = child.kill();
        panic!("svlog did not exit within {DEADLINE:?}");
    }
    status.expect("status")
}

fn spawn_on(r: &OwnedFd, args: &[&str]) -> Child {
    svlog(args)
        .stdin(Stdio::from(r.try_clone().expect("dup")))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn")
}

#[test]
fn sigkill_loses_nothing_that_was_in_the_pipe() {
    let tmp = tempdir("svlog-kill");
    let dir = tmp.join("log");
    let d = dir.to_str().expect("path");
    let (r, w) = cloexec_pipe();
    let mut w = File::from(w);
    let mut child = spawn_on(&r, &[d]);
    w.write_all(numbered(0..1000).as_bytes()).expect("write");
    w.write_all(b"line 001").expect("write");
    assert!(
        wait_until(DEADLINE, || log_lines_lenient(&dir) == 1000),
        "lines did not reach the log"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    // the next logger, on the same pipe
    let child = spawn_on(&r, &[d]);
    drop(r);
    w.write_all(b"000\n").expect("write");
    w.write_all(numbered(1001..2000).as_bytes()).expect("write");
    drop(w);
    let out = wait_output(child);
    assert_ok(&out);
    let numbers = numbers_without_replays(&log_lines(&dir));
    assert_eq!(numbers, (0..2000).collect::<Vec<_>>());
}

#[test]
fn repeated_sigkill_under_load_loses_no_line() {
    let tmp = tempdir("svlog-kill-load");
    let dir = tmp.join("log");
    let d = dir.to_str().expect("path").to_string();
    let (r, w) = cloexec_pipe();
    let total = 300_000;
    // the writer cuts lines across writes, so partial lines sit in the pipe
    let writer = std::thread::spawn(move || {
        let mut w = File::from(w);
        let data = numbered(0..total);
        for chunk in data.as_bytes().chunks(1000) {
            w.write_all(chunk).expect("write");
        }
    });
    let args = ["s200000", "n1000", d.as_str()];
    for round in 1..=5 {
        let mut child = spawn_on(&r, &args);
        let want = round * total / 8;
        assert!(
            wait_until(DEADLINE, || log_lines_lenient(&dir) >= want),
            "round {round}: the log does not grow"
        );
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
    }
    let child = spawn_on(&r, &args);
    drop(r);
    writer.join().expect("writer");
    let out = wait_output(child);
    assert_ok(&out);
    let lines = log_lines(&dir);
    let numbers = numbers_without_replays(&lines);
    assert_eq!(numbers.len(), total, "lost lines");
    assert_eq!(numbers, (0..total).collect::<Vec<_>>());
    for f in log_files(&dir) {
        assert!(read(&f).len() <= 200_000, "{} too big", f.display());
    }
}

/// How many lines the log has now (racing with svlog: a file may vanish while we read).
fn log_lines_lenient(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "lock")
        .map(|e| {
            std::fs::read(e.path())
                .map(|c| c.iter().filter(|&&b| b == b'\n').count())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn a_second_logger_on_the_same_directory_is_refused() {
    let tmp = tempdir("svlog-lock");
    let dir = tmp.join("log");
    let d = dir.to_str().expect("path");
    let (r, w) = cloexec_pipe();
    let mut first = spawn_on(&r, &[d]);
    assert!(
        wait_until(DEADLINE, || dir.join("current").exists()),
        "no current"
    );
    let out = run(&[d], b"x\n");
    assert_eq!(out.status.code(), Some(111));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("svlog: fatal: unable to lock ") && stderr.contains("another logger"),
        "{stderr}"
    );
    drop(w);
    drop(r);
    assert!(wait_status(&mut first).success());
}

#[test]
fn usage_and_exit_codes() {
    let table: &[(&[&str], i32, &str)] = &[
        (&[], 100, "svlog: usage: svlog "),
        (&["bogus"], 100, "svlog: fatal: unknown directive: bogus"),
        (
            &["+regex", "1"],
            100,
            "svlog: fatal: unsupported directive: +regex",
        ),
        (
            &["s0", "1"],
            100,
            "svlog: fatal: s0: file size must be at least 1 byte",
        ),
        (
            &["n20", "T"],
            100,
            "svlog: fatal: the logging script has no action",
        ),
        (
            &["/proc/no/such/dir"],
            111,
            "svlog: fatal: unable to create /proc/no/such/dir: ",
        ),
    ];
    for (args, code, msg) in table {
        let out = run(args, b"");
        assert_eq!(out.status.code(), Some(*code), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(msg), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    let out = svlog(&["--help"]).output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("sBYTES"));
    let out = svlog(&["--version"]).output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("svlog "));
}

/// A pipe whose ends do not leak into the children other tests spawn meanwhile (a leaked
/// write end would keep svlog from ever seeing end of input).
fn cloexec_pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe")
}
