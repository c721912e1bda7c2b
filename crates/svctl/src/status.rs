//! `svctl status`: what each service is doing, as a table for people or JSON for tools.
//!
//! Everything comes from `supervise/status` (readable by anyone) and `supervise/lock` (held
//! while a supervise process runs), so status works for any user.

use std::path::Path;
use std::time::SystemTime;

use libcustos::error::Result;
use libcustos::status::{self, LastEnd, State, Status};
use libcustos::{lock, paths, signal};

use crate::json;
use crate::target::{self, Roots, Target};

/// One service as svctl sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub target: Target,
    /// A supervise process holds the lock of the folder.
    pub supervised: bool,
    /// The status supervise wrote; None when not supervised or not written yet.
    pub status: Option<Status>,
    /// The folder has a `notification-fd` file (used when there is no status to say so).
    pub has_notification_fd: bool,
}

/// Reads the state of `target`. A status left behind by a supervise that is gone is ignored.
pub fn entry(target: Target) -> Result<Entry> {
    let supervised = lock::is_held(&target.path);
    let status = if supervised {
        status::read(&target.path)?
    } else {
        None
    };
    let has_notification_fd = target.path.join(paths::NOTIFICATION_FD).exists();
    Ok(Entry {
        target,
        supervised,
        status,
        has_notification_fd,
    })
}

pub fn entries(names: &[String], roots: &Roots) -> Result<Vec<Entry>> {
    target::targets(names, roots)?
        .into_iter()
        .map(entry)
        .collect()
}

/// Whole seconds from `since` to `now` (0 if the clock went back).
pub fn seconds_since(since: SystemTime, now: SystemTime) -> u64 {
    now.duration_since(since).map(|d| d.as_secs()).unwrap_or(0)
}

/// `12s`, `3m4s`, `2h1m`, `3d4h`: two units at most, the largest first.
pub fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

pub fn state_word(state: State) -> &'static str {
    match state {
        State::Down => "down",
        State::Up => "up",
        State::Finishing => "finishing",
    }
}

/// `exit 3`, `signal TERM`, `unknown`; None when run has not ended yet.
pub fn last_words(last: LastEnd) -> Option<String> {
    match last {
        LastEnd::None => None,
        LastEnd::Exited(code) => Some(format!("exit {code}")),
        LastEnd::Killed(sig) => Some(format!("signal {}", signal::name_of_number(sig))),
        LastEnd::Unknown => Some("unknown".to_string()),
    }
}

const HEADER: [&str; 9] = [
    "NAME", "STATE", "PID", "TIME", "READY", "WANTED", "LAST", "RESTARTS", "PAUSED",
];

/// The table row of one service.
pub fn row(e: &Entry, now: SystemTime) -> Vec<String> {
    let dash = || "-".to_string();
    let mut r = vec![e.target.name.clone()];
    let s = match (&e.status, e.supervised) {
        (_, false) => {
            r.push("not supervised".to_string());
            r.extend(std::iter::repeat_with(dash).take(HEADER.len() - 2));
            return r;
        }
        (None, true) => {
            // supervise has taken its lock but not written its first status yet
            r.push("starting".to_string());
            r.extend(std::iter::repeat_with(dash).take(HEADER.len() - 2));
            return r;
        }
        (Some(s), true) => s,
    };
    r.push(state_word(s.state).to_string());
    r.push(if s.pid == 0 {
        dash()
    } else {
        s.pid.to_string()
    });
    r.push(human_duration(seconds_since(s.since, now)));
    r.push(match (s.declares_readiness, s.is_ready()) {
        (false, _) => dash(),
        (true, true) => "ready".to_string(),
        (true, false) => "not ready".to_string(),
    });
    r.push(if s.wanted_up { "up" } else { "down" }.to_string());
    r.push(last_words(s.last).unwrap_or_else(dash));
    r.push(s.restarts.to_string());
    r.push(if s.paused { "yes" } else { "no" }.to_string());
    r
}

/// Rows aligned in columns two spaces apart, with a header; no trailing spaces.
pub fn table(rows: &[Vec<String>]) -> String {
    let header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    let all: Vec<&Vec<String>> = std::iter::once(&header).chain(rows.iter()).collect();
    let mut widths = vec![0; HEADER.len()];
    for r in &all {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in all {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            line.push_str(cell);
            line.extend(std::iter::repeat(' ').take(widths[i] - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `svctl status [--json] [NAME...]`.
pub fn run(json_out: bool, names: &[String], roots: &Roots) -> Result<u8> {
    let entries = entries(names, roots)?;
    let now = SystemTime::now();
    let text = if json_out {
        let mut t = json::document(&entries, now).to_string();
        t.push('\n');
        t
    } else {
        let rows: Vec<Vec<String>> = entries.iter().map(|e| row(e, now)).collect();
        table(&rows)
    };
    crate::print(&text)?;
    Ok(libcustos::exit::OK)
}

/// The display path of a service folder.
pub fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        for (secs, text) in [
            (0, "0s"),
            (12, "12s"),
            (59, "59s"),
            (60, "1m0s"),
            (184, "3m4s"),
            (3599, "59m59s"),
            (3600, "1h0m"),
            (7260, "2h1m"),
            (86399, "23h59m"),
            (86400, "1d0h"),
            (3 * 86400 + 4 * 3600 + 5, "3d4h"),
        ] {
            assert_eq!(human_duration(secs), text, "{secs}");
        }
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(seconds_since(t, t + Duration::from_millis(2500)), 2);
        assert_eq!(seconds_since(t + Duration::from_secs(5), t), 0);
    }

    pub fn sample(now: SystemTime) -> Status {
        Status {
            state: State::Up,
            wanted_up: true,
            ready: false,
            paused: false,
            declares_readiness: true,
            last: LastEnd::Exited(3),
            pid: 42,
            since: now - Duration::from_secs(184),
            ready_since: None,
            pid_start_ticks: 0,
            restarts: 2,
        }
    }

    fn entry_of(name: &str, status: Option<Status>, supervised: bool) -> Entry {
        Entry {
            target: Target {
                name: name.into(),
                path: format!("/run/service/{name}").into(),
            },
            supervised,
            status,
            has_notification_fd: false,
        }
    }

    #[test]
    fn rows_and_table() {
        let now = SystemTime::now();
        let s = sample(now);
        assert_eq!(
            row(&entry_of("app", Some(s), true), now),
            [
                "app",
                "up",
                "42",
                "3m4s",
                "not ready",
                "up",
                "exit 3",
                "2",
                "no"
            ]
        );
        let down = Status {
            state: State::Down,
            pid: 0,
            wanted_up: false,
            declares_readiness: false,
            last: LastEnd::Killed(15),
            paused: true,
            ..s
        };
        assert_eq!(
            row(&entry_of("db", Some(down), true), now),
            [
                "db",
                "down",
                "-",
                "3m4s",
                "-",
                "down",
                "signal TERM",
                "2",
                "yes"
            ]
        );
        let gone = row(&entry_of("x", Some(s), false), now);
        assert_eq!(gone[1], "not supervised");
        assert!(gone[2..].iter().all(|c| c == "-"));
        let t = table(&[row(&entry_of("app", Some(s), true), now), gone]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("NAME  STATE           PID  TIME  READY"),
            "{t}"
        );
        assert!(
            lines[1].starts_with("app   up              42   3m4s  not ready"),
            "{t}"
        );
        assert!(lines[2].starts_with("x     not supervised  -"), "{t}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
        // every column starts at the same offset on every line
        let col = lines[0].find("WANTED").unwrap();
        assert_eq!(&lines[1][col..col + 2], "up");
    }

    #[test]
    fn last_end_words() {
        assert_eq!(last_words(LastEnd::None), None);
        assert_eq!(last_words(LastEnd::Exited(0)).unwrap(), "exit 0");
        assert_eq!(last_words(LastEnd::Killed(9)).unwrap(), "signal KILL");
        assert_eq!(last_words(LastEnd::Unknown).unwrap(), "unknown");
    }
}
