//! The state of PID 1 across stages 2 and 3, and how each event changes it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use libcustos::settings::Settings;
use libcustos::{debug, envdir, info, paths, warn};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::events::{Events, Termination};
use crate::stage1::Booted;
use crate::tree::Tree;

pub struct Init {
    pub settings: Settings,
    pub events: Events,
    pub is_pid1: bool,
    pub cwd: PathBuf,
    pub tree: Tree,
    /// CMD's pid (and process group) while it runs.
    pub cmd: Option<Pid>,
    pub cmd_result: Option<Termination>,
    /// CMD ended because stage 3 stopped it (not on its own).
    pub cmd_stopped_by_us: bool,
    /// CMD is waiting for the services to be ready (stage 2, step 4).
    pub waiting_for_services: bool,
    /// Stage 3 was asked for (signal, CMD exit, halt, essential, stage-2 failure).
    pub stop_requested: bool,
    pub in_stage3: bool,
    /// A second TERM or INT: skip the remaining grace times.
    pub hurry: bool,
    /// Stop signals (TERM, INT, HUP, QUIT) received and not forwarded to CMD.
    stop_signals: u32,
    pub halt_code: Option<u8>,
    pub essential_code: Option<u8>,
    pub stage2_code: Option<u8>,
    /// Exits of children someone waits for (scripts, fix-attrs), by pid.
    pub finished: HashMap<Pid, Termination>,
    /// Pids someone waits for.
    pub waited: Vec<Pid>,
    control_leftover: Option<u8>,
}

impl Init {
    pub fn new(b: Booted) -> Init {
        Init {
            settings: b.settings,
            events: b.events,
            is_pid1: b.is_pid1,
            cwd: b.cwd,
            tree: Tree::empty(),
            cmd: None,
            cmd_result: None,
            cmd_stopped_by_us: false,
            waiting_for_services: false,
            stop_requested: false,
            in_stage3: false,
            hurry: false,
            stop_signals: 0,
            halt_code: None,
            essential_code: None,
            stage2_code: None,
            finished: HashMap::new(),
            waited: Vec::new(),
            control_leftover: None,
        }
    }

    /// Waits for the next events, at most until `deadline`, and handles them.
    pub fn pump(&mut self, deadline: Option<Instant>) {
        let respawn = self.tree.respawn_due(self.in_stage3);
        let deadline = match (deadline, respawn) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let batch = self.events.pump(deadline);
        for sig in batch.signals {
            self.on_signal(sig);
        }
        for (pid, how) in batch.exits {
            self.on_exit(pid, how);
        }
        let mut status_changed = false;
        if !batch.control.is_empty() {
            status_changed = self.on_control(batch.control);
        }
        // statuses matter only while a service is held behind its dependencies or CMD waits
        // for readiness: otherwise PID 1 does not read N status files per change
        let interested = self.waiting_for_services || self.tree.has_held();
        if status_changed && interested && !self.in_stage3 && !self.stop_requested {
            self.tree.refresh();
            self.tree.release_held();
        }
    }

    fn on_signal(&mut self, sig: Signal) {
        let stopping = matches!(
            sig,
            Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP | Signal::SIGQUIT
        );
        if stopping {
            if let Some(cmd) = self
                .cmd
                .filter(|_| self.settings.cmd_receive_signals && !self.in_stage3)
            {
                debug!("forwarding SIG{} to CMD", libcustos::signal::name(sig));
                signal_group(cmd, sig);
            } else {
                // the first stop signal stops; a second TERM or INT (whatever started the
                // stop: CMD's exit, halt, an essential service) says hurry
                let again = self.stop_signals > 0;
                self.stop_signals += 1;
                if again && matches!(sig, Signal::SIGTERM | Signal::SIGINT) {
                    if !self.hurry {
                        warn!(
                            "SIG{} again: skipping the remaining grace times",
                            libcustos::signal::name(sig)
                        );
                    }
                    self.hurry = true;
                } else if !self.stop_requested {
                    info!("SIG{} received: stopping", libcustos::signal::name(sig));
                } else {
                    info!(
                        "SIG{} received: already stopping (a second SIGTERM or SIGINT skips the remaining grace times)",
                        libcustos::signal::name(sig)
                    );
                }
                self.stop_requested = true;
            }
            return;
        }
        if let Some(cmd) = self.cmd {
            debug!("forwarding SIG{} to CMD", libcustos::signal::name(sig));
            signal_group(cmd, sig);
        }
    }

    fn on_exit(&mut self, pid: Pid, how: Termination) {
        if self.cmd == Some(pid) {
            info!("CMD {}", how.describe());
            self.cmd = None;
            self.cmd_result = Some(how);
            self.cmd_stopped_by_us = self.in_stage3;
            self.stop_requested = true;
        } else if self.tree.reaped(pid, how, self.in_stage3) {
        } else if self.waited.contains(&pid) {
            self.waited.retain(|p| *p != pid);
            self.finished.insert(pid, how);
        }
        // anything else was an orphan: reaped, nothing more to do
    }

    /// Handles init's control bytes; returns whether a supervise said a status changed.
    fn on_control(&mut self, mut bytes: Vec<u8>) -> bool {
        let mut status_changed = false;
        if let Some(b) = self.control_leftover.take() {
            bytes.insert(0, b);
        }
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'h' | b'e' => {
                    let Some(&code) = bytes.get(i + 1) else {
                        self.control_leftover = Some(bytes[i]);
                        return status_changed;
                    };
                    if bytes[i] == b'h' {
                        info!("halt requested with exit code {code}");
                        self.halt_code = Some(code);
                    } else {
                        info!("an essential service ended: stopping with exit code {code}");
                        self.essential_code.get_or_insert(code);
                    }
                    self.stop_requested = true;
                    i += 2;
                }
                b'H' => {
                    info!("halt requested");
                    self.stop_requested = true;
                    i += 1;
                }
                libcustos::control::INIT_STATUS_CHANGED => {
                    status_changed = true;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        status_changed
    }

    /// Waits until `pid` (which must be in `waited`) exits or `deadline` passes.
    pub fn wait_for(&mut self, pid: Pid, deadline: Option<Instant>) -> Option<Termination> {
        loop {
            if let Some(t) = self.finished.remove(&pid) {
                return Some(t);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            self.pump(deadline);
        }
    }

    /// The environment children get: the container environment as it now stands in
    /// container_environment/ (a cont-init script may have changed it), or with
    /// CUSTOS_KEEP_ENV=0 (`full` false) just its PATH.
    pub fn child_env(&self, full: bool) -> Vec<(OsString, OsString)> {
        let vars = envdir::read_all(Path::new(paths::CONTAINER_ENV)).unwrap_or_else(|e| {
            warn!("{e}: using init's own environment");
            std::env::vars_os().collect()
        });
        if full {
            return vars;
        }
        let path = vars
            .into_iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v)
            .unwrap_or_else(|| crate::DEFAULT_PATH.into());
        vec![("PATH".into(), path)]
    }

    /// The container's exit code: halt's, else CMD's, else an essential service's, else a
    /// stage-2 failure's, else 0. When an essential service's end stopped a CMD that was still
    /// running, the service's code is the honest one.
    pub fn exit_code(&self) -> u8 {
        let essential_first = self.essential_code.filter(|_| self.cmd_stopped_by_us);
        self.halt_code
            .or(essential_first)
            .or(self.cmd_result.map(Termination::code))
            .or(self.essential_code)
            .or(self.stage2_code)
            .unwrap_or(0)
    }
}

/// Signals a process group (led by `leader`); a group already gone is not an error.
pub fn signal_group(leader: Pid, sig: Signal) {
    if let Err(e) = kill(Pid::from_raw(-leader.as_raw()), sig) {
        if e != nix::errno::Errno::ESRCH {
            warn!(
                "unable to send SIG{} to process group {leader}: {}",
                libcustos::signal::name(sig),
                e.desc()
            );
        }
    }
}
