//! `svctl check [NAME...]`: the health check of the container (Docker HEALTHCHECK, Kubernetes
//! exec probe). Healthy when every service that is wanted up is up, and ready where it
//! declares readiness. Each unhealthy service gets one line on stdout saying why; the answer
//! is the exit code: 0 healthy, 1 not.

use std::time::SystemTime;

use libcustos::error::Result;
use libcustos::exit;
use libcustos::status::State;

use crate::status::{human_duration, last_words, seconds_since, state_word, Entry};
use crate::target::Roots;

/// Why `e` is unhealthy, or None when it is healthy.
pub fn problem(e: &Entry, now: SystemTime) -> Option<String> {
    if !e.supervised {
        return Some("not supervised".to_string());
    }
    let Some(s) = &e.status else {
        return Some("supervised, but no status yet".to_string());
    };
    if !s.wanted_up {
        return None;
    }
    if s.state != State::Up {
        let mut why = Vec::new();
        why.extend(last_words(s.last));
        match s.restarts {
            0 => {}
            1 => why.push("restarted once".to_string()),
            n => why.push(format!("restarted {n} times")),
        }
        let mut text = state_word(s.state).to_string();
        if !why.is_empty() {
            text.push_str(&format!(" ({})", why.join(", ")));
        }
        return Some(text);
    }
    if !s.is_ready() {
        return Some(format!(
            "up {} but not ready",
            human_duration(seconds_since(s.since, now))
        ));
    }
    None
}

/// The lines of the report, one per unhealthy service: `svctl: NAME: WHY`.
pub fn report(entries: &[Entry], now: SystemTime) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| {
            problem(e, now).map(|why| format!("{}: {}: {why}", crate::PROG, e.target.name))
        })
        .collect()
}

pub fn run(names: &[String], roots: &Roots) -> Result<u8> {
    let entries = crate::status::entries(names, roots)?;
    let lines = report(&entries, SystemTime::now());
    if lines.is_empty() {
        return Ok(exit::OK);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    crate::print(&text)?;
    Ok(exit::NEGATIVE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;
    use libcustos::status::{LastEnd, Status};
    use std::time::Duration;

    fn entry(name: &str, supervised: bool, status: Option<Status>) -> Entry {
        Entry {
            target: Target {
                name: name.into(),
                path: name.into(),
            },
            supervised,
            status,
            has_notification_fd: false,
        }
    }

    #[test]
    fn reasons() {
        let now = SystemTime::now();
        let up = Status {
            state: State::Up,
            pid: 5,
            since: now - Duration::from_secs(3),
            ..Status::new(true)
        };
        let crashed = Status {
            state: State::Down,
            last: LastEnd::Exited(1),
            restarts: 4,
            pid: 0,
            ..up
        };
        let finishing = Status {
            state: State::Finishing,
            last: LastEnd::Killed(9),
            restarts: 1,
            ..up
        };
        let not_ready = Status {
            declares_readiness: true,
            ready: false,
            ..up
        };
        let ready = Status {
            ready: true,
            ..not_ready
        };
        let off = Status {
            wanted_up: false,
            ..crashed
        };
        let never = Status::new(true);
        let table: [(Entry, Option<&str>); 9] = [
            (entry("a", true, Some(up)), None),
            (entry("b", true, Some(ready)), None),
            (entry("c", true, Some(off)), None),
            (
                entry("nginx", true, Some(crashed)),
                Some("down (exit 1, restarted 4 times)"),
            ),
            (
                entry("e", true, Some(finishing)),
                Some("finishing (signal KILL, restarted once)"),
            ),
            (
                entry("db", true, Some(not_ready)),
                Some("up 3s but not ready"),
            ),
            (entry("app", false, None), Some("not supervised")),
            (
                entry("h", true, None),
                Some("supervised, but no status yet"),
            ),
            (entry("i", true, Some(never)), Some("down")),
        ];
        for (e, want) in &table {
            assert_eq!(problem(e, now).as_deref(), *want, "{}", e.target.name);
        }
        let entries: Vec<Entry> = table.into_iter().map(|(e, _)| e).collect();
        let lines = report(&entries, now);
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0], "svctl: nginx: down (exit 1, restarted 4 times)");
        assert!(report(&entries[..3], now).is_empty());
    }
}
