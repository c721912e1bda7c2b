//! libcustos: everything more than one custos binary needs to agree on.
//!
//! The on-disk names (`paths`), the wire formats (`status`, `control`), the parsers shared by
//! several binaries (`servicedir`, `envdir`, `settings`, `account`, `signal`), the message
//! grammar (`msg`) and the exit-code vocabulary (`exit`). It prints nothing except through
//! `msg`, and its errors carry the offending file, line or value so the caller can word them.
//!
//! Waiters (svctl wait, /init waiting for readiness) are woken by inotify on a service's
//! `supervise/` folder: supervise replaces `supervise/status` by rename, which raises
//! `IN_MOVED_TO`; nobody sleeps in a loop.
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
