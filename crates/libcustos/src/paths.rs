//! Every fixed on-disk name custos uses, defined once (SPEC sections 1 and 2).

/// Source service directories, read-only to custos.
pub const SERVICES_SRC: &str = "/etc/services.d";
pub const CONT_INIT: &str = "/etc/cont-init.d";
pub const CONT_FINISH: &str = "/etc/cont-finish.d";
pub const FIX_ATTRS_DIR: &str = "/etc/fix-attrs.d";

/// custos's own state.
pub const RUN_DIR: &str = "/run/custos";
pub const CONTAINER_ENV: &str = "/run/custos/container_environment";
/// init's control FIFO (`svctl halt`).
pub const INIT_CONTROL: &str = "/run/custos/control";
/// The live service directories.
pub const SCAN_DIR: &str = "/run/service";
/// s6-overlay compatibility: a symlink to CONTAINER_ENV.
pub const S6_COMPAT_DIR: &str = "/run/s6";
pub const S6_COMPAT_ENV: &str = "/run/s6/container_environment";

/// The binaries, at their SPEC paths.
pub const SUPERVISE_BIN: &str = "/usr/libexec/custos/supervise";
pub const FIX_ATTRS_BIN: &str = "/usr/bin/fix-attrs";
pub const SVLOG_BIN: &str = "/usr/bin/svlog";
pub const WITH_CONTENV_BIN: &str = "/usr/bin/with-contenv";

/// The catch-all logger (CUSTOS_LOGGING 1 and 2).
pub const UNCAUGHT_LOGS: &str = "/var/log/custos-uncaught-logs";

/// Inside a service directory (s6 names, never translated).
pub const RUN: &str = "run";
pub const FINISH: &str = "finish";
pub const DOWN: &str = "down";
pub const NOTIFICATION_FD: &str = "notification-fd";
pub const TIMEOUT_FINISH: &str = "timeout-finish";
pub const TIMEOUT_KILL: &str = "timeout-kill";
pub const DOWN_SIGNAL: &str = "down-signal";
pub const LOG: &str = "log";
pub const DEPENDENCIES: &str = "dependencies.d";
pub const ENV: &str = "env";
pub const ESSENTIAL: &str = "essential";

/// Inside a live service directory.
pub const SUPERVISE: &str = "supervise";
pub const SUPERVISE_LOCK: &str = "supervise/lock";
pub const SUPERVISE_CONTROL: &str = "supervise/control";
pub const SUPERVISE_STATUS: &str = "supervise/status";
pub const STATUS_FILE: &str = "status";
