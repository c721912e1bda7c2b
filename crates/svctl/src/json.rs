//! `svctl status --json`: one JSON document for tools. The schema is documented in
//! docs/svctl.md and checked by the tests below; change both together.
//!
//! ```text
//! {"services":[{"name","path","supervised","state","pid","seconds","since","ready",
//!               "declares_readiness","wanted","paused","last","restarts"}]}
//! ```

use std::time::SystemTime;

use libcustos::signal;
use libcustos::status::{LastEnd, Status};
use serde_json::{json, Value};

use crate::status::{path_text, seconds_since, state_word, Entry};

/// `{"exit":N}`, `{"signal":"TERM","number":15}`, `{"unknown":true}`, or null before run
/// has ended once.
pub fn last(last: LastEnd) -> Value {
    match last {
        LastEnd::None => Value::Null,
        LastEnd::Exited(code) => json!({ "exit": code }),
        LastEnd::Killed(sig) => json!({ "signal": signal::name_of_number(sig), "number": sig }),
        LastEnd::Unknown => json!({ "unknown": true }),
    }
}

/// One service. Without a status (not supervised, or supervise just started) every field that
/// comes from the status is null, `ready` and `paused` are false, and `declares_readiness`
/// says whether the folder has a notification-fd file.
pub fn service(e: &Entry, now: SystemTime) -> Value {
    let mut v = json!({
        "name": e.target.name,
        "path": path_text(&e.target.path),
        "supervised": e.supervised,
        "state": null,
        "pid": null,
        "seconds": null,
        "since": null,
        "ready": false,
        "declares_readiness": e.has_notification_fd,
        "wanted": null,
        "paused": false,
        "last": null,
        "restarts": null,
    });
    if let (Some(s), true) = (&e.status, e.supervised) {
        fill(&mut v, s, now);
    }
    v
}

fn fill(v: &mut Value, s: &Status, now: SystemTime) {
    v["state"] = json!(state_word(s.state));
    v["pid"] = if s.pid == 0 {
        Value::Null
    } else {
        json!(s.pid)
    };
    v["seconds"] = json!(seconds_since(s.since, now));
    v["since"] = json!(humantime::format_rfc3339_seconds(s.since).to_string());
    v["ready"] = json!(s.is_ready());
    v["declares_readiness"] = json!(s.declares_readiness);
    v["wanted"] = json!(if s.wanted_up { "up" } else { "down" });
    v["paused"] = json!(s.paused);
    v["last"] = last(s.last);
    v["restarts"] = json!(s.restarts);
}

/// The whole document: `{"services":[...]}`, in the order of `entries`.
pub fn document(entries: &[Entry], now: SystemTime) -> Value {
    json!({ "services": entries.iter().map(|e| service(e, now)).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;
    use libcustos::status::State;
    use std::time::{Duration, UNIX_EPOCH};

    fn entry(supervised: bool, status: Option<Status>) -> Entry {
        Entry {
            target: Target {
                name: "nginx".into(),
                path: "/run/service/nginx".into(),
            },
            supervised,
            status,
            has_notification_fd: true,
        }
    }

    #[test]
    fn shape_of_a_running_service() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let s = Status {
            state: State::Up,
            wanted_up: true,
            ready: true,
            paused: false,
            declares_readiness: true,
            last: LastEnd::Killed(15),
            pid: 123,
            since: UNIX_EPOCH + Duration::new(1_700_000_000, 500),
            ready_since: None,
            pid_start_ticks: 1,
            restarts: 4,
        };
        let doc = document(&[entry(true, Some(s))], now);
        assert_eq!(
            doc,
            json!({"services": [{
                "name": "nginx",
                "path": "/run/service/nginx",
                "supervised": true,
                "state": "up",
                "pid": 123,
                "seconds": 99, // whole seconds, rounded down
                "since": "2023-11-14T22:13:20Z",
                "ready": true,
                "declares_readiness": true,
                "wanted": "up",
                "paused": false,
                "last": {"signal": "TERM", "number": 15},
                "restarts": 4,
            }]})
        );
        let down = Status {
            state: State::Down,
            pid: 0,
            wanted_up: false,
            last: LastEnd::Exited(3),
            ..s
        };
        let v = service(&entry(true, Some(down)), now);
        assert_eq!(v["state"], "down");
        assert_eq!(v["pid"], Value::Null);
        assert_eq!(v["ready"], false);
        assert_eq!(v["wanted"], "down");
        assert_eq!(v["last"], json!({"exit": 3}));
        let v = service(
            &entry(
                true,
                Some(Status {
                    last: LastEnd::Unknown,
                    ..s
                }),
            ),
            now,
        );
        assert_eq!(v["last"], json!({"unknown": true}));
        let v = service(
            &entry(
                true,
                Some(Status {
                    last: LastEnd::None,
                    ..s
                }),
            ),
            now,
        );
        assert_eq!(v["last"], Value::Null);
    }

    #[test]
    fn shape_without_a_status() {
        let v = service(&entry(false, None), SystemTime::now());
        for k in [
            "state", "pid", "seconds", "since", "wanted", "last", "restarts",
        ] {
            assert_eq!(v[k], Value::Null, "{k}");
        }
        assert_eq!(v["supervised"], false);
        assert_eq!(v["ready"], false);
        assert_eq!(v["declares_readiness"], true);
        assert_eq!(v.as_object().unwrap().len(), 13);
    }
}
