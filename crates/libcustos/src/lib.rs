//! libcustos: everything more than one custos binary needs to agree on.
//!
//! The on-disk names (`paths`), the wire formats (`status`, `control`), the parsers shared by
//! several binaries (`servicedir`, `envdir`, `settings`, `account`, `signal`), the message
//! grammar (`msg`) and the exit-code vocabulary (`exit`). It prints nothing except through
//! `msg`, and its errors carry the offending file, line or value so the caller can word them.
//!
//! Waiters are woken by events; nobody sleeps in a loop. svctl wait watches a service's
//! `supervise/` folder with inotify (supervise replaces `supervise/status` by rename, which
//! raises `IN_MOVED_TO`). /init is told instead: supervise writes `s` to init's control FIFO
//! after each status write, so PID 1 holds no inotify instance (whose teardown at exit waits
//! for an RCU grace period: measured at up to 16 ms of every `docker stop`).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod account;
pub mod control;
pub mod envdir;
pub mod error;
pub mod exit;
pub mod lock;
pub mod msg;
pub mod paths;
pub mod script;
pub mod servicedir;
pub mod settings;
pub mod signal;
pub mod status;
