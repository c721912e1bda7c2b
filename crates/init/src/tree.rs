//! The supervision tree: one supervise process per service (and per logger), started in
//! dependency order, restarted if it dies, stopped dependents-first with loggers last.
//! init holds both ends of every service-to-logger pipe (and of the prefix pipes), so a
//! restart of either side, or of a supervise, loses no line.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcustos::control::{self, Command};
use libcustos::error::Error;
use libcustos::servicedir::{self, ServiceDef};
use libcustos::status::{self, Status};
use libcustos::{info, paths, warn};
use nix::unistd::Pid;

use crate::events::Termination;
use crate::spawn::{self, Spec};

/// How soon a supervise that died may be started again.
const RESPAWN_DELAY: Duration = Duration::from_secs(1);

pub struct Service {
    /// `nginx`, or `nginx/log` for a logger.
    pub name: String,
    /// The live folder, /run/service/NAME.
    pub live: PathBuf,
    pub def: ServiceDef,
    /// For a logger: the service it logs for.
    pub logger_of: Option<usize>,
    /// Started with --hold: its dependencies must be ready before it is told to go up.
    pub held: bool,
    pub up_sent: bool,
    /// The supervise process, while it runs.
    pub supervise: Option<Pid>,
    pub last_spawn: Option<Instant>,
    /// Told to exit (stage 3).
    pub stopping: bool,
    /// Its supervise has exited for good (stage 3).
    pub gone: bool,
    pub status: Option<Status>,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    prefix: Option<(OwnedFd, OwnedFd)>,
    /// The catch-all logger (CUSTOS_LOGGING): stops after everything else.
    pub is_catchall: bool,
    /// Arguments for run (the catch-all logger only).
    run_args: Vec<OsString>,
}

pub struct Tree {
    pub services: Vec<Service>,
    /// The write end of the catch-all logger's pipe: the stdout and stderr of every supervise
    /// (and so of every service without a logger of its own), and of CMD with CUSTOS_LOGGING=2.
    pub catchall_write: Option<OwnedFd>,
    verbosity: u8,
    clean_env: bool,
}

/// Options from the settings that shape how supervise processes start.
pub struct TreeOptions {
    pub verbosity: u8,
    pub keep_env: bool,
    pub log_prefix: bool,
    /// CUSTOS_LOGGING: 1 or 2 add the catch-all logger.
    pub logging: u8,
    pub logging_script: Vec<String>,
}

/// The name of the catch-all logger's service (CUSTOS_LOGGING 1 and 2).
pub const CATCHALL: &str = "custos-uncaught-logs";

impl Tree {
    pub fn empty() -> Tree {
        Tree {
            services: Vec::new(),
            catchall_write: None,
            verbosity: 1,
            clean_env: false,
        }
    }

    /// Reads /etc/services.d, checks every folder and the dependency graph, and prepares
    /// /run/service. Err: every problem found, each naming the service.
    pub fn load(src: &Path, scan: &Path, opts: &TreeOptions) -> Result<Tree, Vec<Error>> {
        let (names, mut errors) = match servicedir::list(src) {
            Ok(x) => x,
            Err(e) => return Err(vec![e]),
        };
        let mut defs = Vec::new();
        for name in &names {
            let dir = src.join(name);
            match servicedir::load(name, &dir) {
                Ok(def) => {
                    let log = if def.has_log {
                        match servicedir::load(&format!("{name}/log"), &dir.join(paths::LOG)) {
                            Ok(l) => Some(l),
                            Err(e) => {
                                errors.push(e);
                                None
                            }
                        }
                    } else {
                        None
                    };
                    defs.push((def, log));
                }
                Err(e) => errors.push(e),
            }
        }
        if opts.logging > 0 && names.iter().any(|n| n == CATCHALL) {
            errors.push(Error::invalid(format!(
                "service {CATCHALL}: the name is taken by the catch-all logger of CUSTOS_LOGGING (rename the service)"
            )));
        }
        let known: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        for (def, _) in &defs {
            for dep in &def.dependencies {
                if !known.contains(dep.as_str()) {
                    errors.push(Error::invalid(format!(
                        "service {}: depends on {dep}, which is not in {}",
                        def.name,
                        src.display()
                    )));
                }
            }
        }
        if errors.is_empty() {
            if let Some(cycle) = find_cycle(&defs.iter().map(|(d, _)| d).collect::<Vec<_>>()) {
                errors.push(Error::invalid(format!(
                    "dependency cycle: {}",
                    cycle.join(" -> ")
                )));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut tree = Tree {
            services: Vec::new(),
            catchall_write: None,
            verbosity: opts.verbosity,
            clean_env: !opts.keep_env,
        };
        for (def, log) in defs {
            let live = scan.join(&def.name);
            if let Err(e) = prepare_live_dir(&def.dir, &live) {
                return Err(vec![e]);
            }
            let held = !def.dependencies.is_empty();
            let index = tree.services.len();
            tree.services.push(Service::new(
                def.name.clone(),
                live.clone(),
                def,
                None,
                held,
            ));
            if let Some(log) = log {
                let live_log = live.join(paths::LOG);
                if let Err(e) = prepare_live_dir(&log.dir, &live_log) {
                    return Err(vec![e]);
                }
                tree.services.push(Service::new(
                    log.name.clone(),
                    live_log,
                    log,
                    Some(index),
                    false,
                ));
            }
        }
        if let Err(e) = tree.make_pipes(opts.log_prefix) {
            return Err(vec![e]);
        }
        if opts.logging > 0 {
            tree.add_catchall(scan, opts).map_err(|e| vec![e])?;
        }
        Ok(tree)
    }

    /// The catch-all logger: svlog with CUSTOS_LOGGING_SCRIPT into UNCAUGHT_LOGS, run as
    /// nobody (65534:65534 where there is no such account) when init is root.
    fn add_catchall(&mut self, scan: &Path, opts: &TreeOptions) -> Result<(), Error> {
        let live = scan.join(CATCHALL);
        let mkdir = |p: &Path| match std::fs::create_dir(p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::io(format_args!("create {}", p.display()), &e)),
        };
        mkdir(&live)?;
        mkdir(&live.join(paths::SUPERVISE))?;
        let logs = Path::new(paths::UNCAUGHT_LOGS);
        if let Err(e) = std::fs::create_dir_all(logs) {
            warn!(
                "unable to create {}: {} (the catch-all logger will retry)",
                logs.display(),
                libcustos::error::errno_of(&e).desc()
            );
        }
        let root = nix::unistd::geteuid().is_root();
        let (account, uid, gid) = nobody();
        let mut run_args: Vec<OsString> = Vec::new();
        let program = if root {
            if let Err(e) = nix::unistd::chown(logs, Some(uid.into()), Some(gid.into())) {
                warn!(
                    "unable to give {} to {account}: {}",
                    logs.display(),
                    e.desc()
                );
            }
            run_args.push(account.into());
            run_args.push(paths::SVLOG_BIN.into());
            "/usr/bin/setuidgid"
        } else {
            paths::SVLOG_BIN
        };
        run_args.extend(opts.logging_script.iter().map(OsString::from));
        run_args.push(logs.as_os_str().to_owned());
        let run = live.join(paths::RUN);
        let _ = std::fs::remove_file(&run);
        std::os::unix::fs::symlink(program, &run)
            .map_err(|e| Error::io(format_args!("create the symlink {}", run.display()), &e))?;
        let def = ServiceDef {
            name: CATCHALL.to_string(),
            dir: live.clone(),
            down: false,
            has_finish: false,
            notification_fd: None,
            timeout_finish: servicedir::DEFAULT_TIMEOUT_FINISH,
            timeout_kill: None,
            down_signal: nix::sys::signal::Signal::SIGTERM,
            has_log: false,
            dependencies: Vec::new(),
            essential: false,
        };
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::sys("create a pipe", e))?;
        let mut s = Service::new(CATCHALL.to_string(), live, def, None, false);
        s.stdin = Some(r);
        s.run_args = run_args;
        s.is_catchall = true;
        self.services.push(s);
        self.catchall_write = Some(w);
        Ok(())
    }

    fn make_pipes(&mut self, log_prefix: bool) -> Result<(), Error> {
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| Error::sys("create a pipe", e))
        };
        for i in 0..self.services.len() {
            if let Some(owner) = self.services[i].logger_of {
                let (r, w) = pipe()?;
                self.services[i].stdin = Some(r);
                self.services[owner].stdout = Some(w);
            }
        }
        if log_prefix {
            for s in &mut self.services {
                let (r_err, w_err) = pipe()?;
                s.stderr = Some(w_err);
                let r_out = if s.stdout.is_none() {
                    let (r, w) = pipe()?;
                    s.stdout = Some(w);
                    r
                } else {
                    // stdout goes to the logger: only stderr is prefixed; a pipe nobody writes
                    let (r, _w) = pipe()?;
                    r
                };
                s.prefix = Some((r_out, r_err));
            }
        }
        Ok(())
    }

    /// Starts every supervise process: loggers and services without dependencies go up at
    /// once, the others are held until their dependencies are ready.
    pub fn start(&mut self) {
        for i in 0..self.services.len() {
            self.spawn_supervise(i);
        }
    }

    fn spawn_supervise(&mut self, i: usize) {
        let s = &self.services[i];
        // a respawned supervise keeps a service the user had brought down, down
        let hold = (s.held && !s.up_sent) || s.status.is_some_and(|st| !st.wanted_up);
        let mut spec = Spec::new(paths::SUPERVISE_BIN);
        spec.args = vec![
            "--name".into(),
            s.name.clone().into(),
            "--verbosity".into(),
            self.verbosity.to_string().into(),
        ];
        if hold {
            spec.args.push("--hold".into());
        }
        if self.clean_env {
            spec.args.push("--clean-env".into());
        }
        let mut next_fd = 3;
        let mut pass = |spec: &mut Spec, fd: &Option<OwnedFd>, flag: &str| {
            if let Some(fd) = fd {
                spec.fds.push((fd.as_raw_fd(), next_fd));
                spec.args.push(flag.into());
                spec.args.push(next_fd.to_string().into());
                next_fd += 1;
            }
        };
        pass(&mut spec, &s.stdin, "--stdin-fd");
        pass(&mut spec, &s.stdout, "--stdout-fd");
        pass(&mut spec, &s.stderr, "--stderr-fd");
        if let Some((r_out, r_err)) = &s.prefix {
            spec.fds.push((r_out.as_raw_fd(), next_fd));
            spec.fds.push((r_err.as_raw_fd(), next_fd + 1));
            spec.args.push("--prefix-fds".into());
            spec.args
                .push(format!("{},{}", next_fd, next_fd + 1).into());
        }
        for a in &s.run_args {
            spec.args.push("--run-arg".into());
            spec.args.push(a.clone());
        }
        if let (Some(w), false) = (&self.catchall_write, s.is_catchall) {
            // supervise's own stdout and stderr, and so its service's where no logger has them
            spec.fds.push((w.as_raw_fd(), 1));
            spec.fds.push((w.as_raw_fd(), 2));
        }
        spec.args.push(s.live.clone().into_os_string());
        spec.env = vec![(OsString::from("PATH"), OsString::from(crate::DEFAULT_PATH))];
        spec.stdin_null = s.stdin.is_none();
        let name = s.name.clone();
        let s = &mut self.services[i];
        s.last_spawn = Some(Instant::now());
        match spawn::spawn(&spec) {
            Ok(pid) => {
                s.supervise = Some(pid);
                if !hold && s.held {
                    s.up_sent = true;
                }
            }
            Err(e) => {
                warn!(
                    "unable to start supervise for {name}: {}",
                    libcustos::error::errno_of(&e).desc()
                )
            }
        }
    }

    /// Reads every status again (after a supervise said one changed).
    pub fn refresh(&mut self) {
        for s in &mut self.services {
            if let Ok(st) = status::read(&s.live) {
                s.status = st;
            }
        }
    }

    fn is_ready(&self, name: &str) -> bool {
        self.services
            .iter()
            .any(|s| s.name == name && s.status.is_some_and(|st| st.is_ready()))
    }

    /// Whether a service still waits for its dependencies to be ready.
    pub fn has_held(&self) -> bool {
        self.services
            .iter()
            .any(|s| s.held && !s.up_sent && !s.stopping && !s.def.down && s.supervise.is_some())
    }

    /// Tells every held service whose dependencies are all ready to go up.
    pub fn release_held(&mut self) {
        for i in 0..self.services.len() {
            let s = &self.services[i];
            if !s.held || s.up_sent || s.stopping || s.def.down || s.supervise.is_none() {
                continue;
            }
            if s.def.dependencies.iter().all(|d| self.is_ready(d)) {
                let fifo = s.live.join(paths::SUPERVISE_CONTROL);
                if control::send(&fifo, &Command::Up.encode()).is_ok() {
                    info!("starting {}: its dependencies are ready", s.name);
                    self.services[i].up_sent = true;
                }
            }
        }
    }

    /// The services CMD waits for that are not up and ready yet: not those with a `down`
    /// file, nor those that wait, directly or not, for one that is still down.
    pub fn not_ready(&self) -> Vec<String> {
        self.services
            .iter()
            .filter(|s| !s.def.down && !self.waits_for_a_down_service(&s.def.dependencies, 0))
            .filter(|s| !s.status.is_some_and(|st| st.is_ready()))
            .map(|s| s.name.clone())
            .collect()
    }

    fn waits_for_a_down_service(&self, deps: &[String], depth: usize) -> bool {
        // the graph has no cycle (checked at load); the depth bound is a second guard
        depth < self.services.len()
            && deps.iter().any(|d| {
                self.services.iter().filter(|s| &s.name == d).any(|s| {
                    (s.def.down && !s.status.is_some_and(|st| st.wanted_up))
                        || self.waits_for_a_down_service(&s.def.dependencies, depth + 1)
                })
            })
    }

    /// A reaped pid: if it was a supervise, note it (and start a new one outside stage 3).
    /// Returns true when the pid was ours.
    pub fn reaped(&mut self, pid: Pid, how: Termination, stage3: bool) -> bool {
        let Some(i) = self.services.iter().position(|s| s.supervise == Some(pid)) else {
            return false;
        };
        self.services[i].supervise = None;
        if stage3 || self.services[i].stopping {
            self.services[i].gone = true;
            self.close_pipes_of(i);
            return true;
        }
        warn!(
            "supervise for {} {}: starting a new one",
            self.services[i].name,
            how.describe()
        );
        self.services[i].status = status::read(&self.services[i].live).ok().flatten();
        true
    }

    /// Starts a new supervise for every service that lost its own, at most once a second.
    /// Returns the next moment one is due, if any is waiting.
    pub fn respawn_due(&mut self, stage3: bool) -> Option<Instant> {
        if stage3 {
            return None;
        }
        let mut next = None;
        for i in 0..self.services.len() {
            let s = &self.services[i];
            if s.supervise.is_some() || s.gone {
                continue;
            }
            let due = s
                .last_spawn
                .map(|t| t + RESPAWN_DELAY)
                .unwrap_or_else(Instant::now);
            if due <= Instant::now() {
                self.spawn_supervise(i);
            } else {
                next = Some(next.map_or(due, |n: Instant| n.min(due)));
            }
        }
        next
    }

    fn close_pipes_of(&mut self, i: usize) {
        let s = &mut self.services[i];
        s.stdout = None;
        s.stderr = None;
        s.prefix = None;
        if s.logger_of.is_some() || s.is_catchall {
            s.stdin = None;
        }
    }

    /// Stage 3, step 2, one round: tells down (and to exit) every service none of whose
    /// dependents is still running; a logger once its service is gone (its pipe is then
    /// closed by every writer, so it reads what is left and ends at EOF).
    pub fn advance_stop(&mut self, cmd_gone: bool) {
        for i in 0..self.services.len() {
            let s = &self.services[i];
            if s.stopping || s.gone {
                continue;
            }
            let ready_to_stop = if s.is_catchall {
                self.services
                    .iter()
                    .all(|o| o.is_catchall || o.gone || o.supervise.is_none())
                    && cmd_gone
            } else {
                match s.logger_of {
                    Some(owner) => {
                        self.services[owner].gone || self.services[owner].supervise.is_none()
                    }
                    None => !self.services.iter().any(|o| {
                        o.logger_of.is_none()
                            && !o.gone
                            && o.supervise.is_some()
                            && o.def.dependencies.contains(&s.name)
                    }),
                }
            };
            if !ready_to_stop {
                continue;
            }
            let bytes: &[u8] = if s.logger_of.is_some() || s.is_catchall {
                b"x"
            } else {
                b"dx"
            };
            if s.is_catchall {
                // every other writer is gone: EOF lets it write what is left and end
                self.catchall_write = None;
            }
            self.tell(i, bytes);
        }
    }

    /// Stage 3 when the grace time has run out: every remaining supervise is told to bring
    /// its service down now.
    pub fn force_down(&mut self) {
        for i in 0..self.services.len() {
            if !self.services[i].gone {
                self.tell(i, b"dx");
            }
        }
    }

    fn tell(&mut self, i: usize, bytes: &[u8]) {
        let s = &mut self.services[i];
        s.stopping = true;
        if s.supervise.is_none() {
            s.gone = true;
            self.close_pipes_of(i);
            return;
        }
        info!("stopping {}", s.name);
        let fifo = s.live.join(paths::SUPERVISE_CONTROL);
        if let Err(e) = control::send(&fifo, bytes) {
            // no reader: the supervise is on its way out; its exit is reaped as usual
            libcustos::debug!("{}: control: {:?}", s.name, e);
        }
    }

    pub fn all_gone(&self) -> bool {
        self.services
            .iter()
            .all(|s| s.gone || s.supervise.is_none())
    }
}

impl Service {
    fn new(
        name: String,
        live: PathBuf,
        def: ServiceDef,
        logger_of: Option<usize>,
        held: bool,
    ) -> Service {
        Service {
            name,
            live,
            def,
            logger_of,
            held,
            up_sent: false,
            supervise: None,
            last_spawn: None,
            stopping: false,
            gone: false,
            status: None,
            stdin: None,
            stdout: None,
            stderr: None,
            prefix: None,
            run_args: Vec::new(),
            is_catchall: false,
        }
    }
}

/// The account of the catch-all logger: nobody from /etc/passwd, else 65534:65534.
fn nobody() -> (String, u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[0] == "nobody" {
            if let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) {
                return ("nobody".into(), uid, gid);
            }
        }
    }
    ("65534:65534".into(), 65534, 65534)
}

/// Makes the live folder: a symlink to every entry of the source folder but `log` and
/// `supervise`, and an empty `supervise/`. Nothing in it is executed (supervise runs the
/// symlinks' targets), so /run may be noexec.
fn prepare_live_dir(src: &Path, live: &Path) -> Result<(), Error> {
    let mkdir = |p: &Path| match std::fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(format_args!("create {}", p.display()), &e)),
    };
    mkdir(live)?;
    mkdir(&live.join(paths::SUPERVISE))?;
    let rd = std::fs::read_dir(src)
        .map_err(|e| Error::io(format_args!("read {}", src.display()), &e))?;
    for entry in rd.flatten() {
        let name = entry.file_name();
        if name == paths::LOG || name == paths::SUPERVISE {
            continue;
        }
        let link = live.join(&name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(entry.path(), &link)
            .map_err(|e| Error::io(format_args!("create the symlink {}", link.display()), &e))?;
    }
    Ok(())
}

/// A dependency cycle, as the list of names that form it (first name repeated at the end).
fn find_cycle(defs: &[&ServiceDef]) -> Option<Vec<String>> {
    let deps: BTreeMap<&str, &[String]> = defs
        .iter()
        .map(|d| (d.name.as_str(), d.dependencies.as_slice()))
        .collect();
    // 0 unvisited, 1 on the current path, 2 done
    let mut mark: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'a>(
        n: &'a str,
        deps: &BTreeMap<&'a str, &'a [String]>,
        mark: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match mark.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == n).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        mark.insert(n, 1);
        path.push(n);
        for d in deps.get(n).copied().unwrap_or_default() {
            if let Some(c) = visit(d.as_str(), deps, mark, path) {
                return Some(c);
            }
        }
        path.pop();
        mark.insert(n, 2);
        None
    }
    for d in defs {
        let mut path = Vec::new();
        if let Some(c) = visit(d.name.as_str(), &deps, &mut mark, &mut path) {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, deps: &[&str]) -> ServiceDef {
        ServiceDef {
            name: name.into(),
            dir: PathBuf::new(),
            down: false,
            has_finish: false,
            notification_fd: None,
            timeout_finish: Duration::ZERO,
            timeout_kill: None,
            down_signal: nix::sys::signal::Signal::SIGTERM,
            has_log: false,
            dependencies: deps.iter().map(|s| s.to_string()).collect(),
            essential: false,
        }
    }

    #[test]
    fn cycles() {
        let (a, b, c) = (def("a", &[]), def("b", &["a"]), def("c", &["b"]));
        assert_eq!(find_cycle(&[&a, &b, &c]), None);
        let (a, b, c) = (def("a", &["c"]), def("b", &["a"]), def("c", &["b"]));
        assert_eq!(
            find_cycle(&[&a, &b, &c]),
            Some(vec!["a".into(), "c".into(), "b".into(), "a".into()])
        );
        let s = def("s", &["s"]);
        assert_eq!(find_cycle(&[&s]), Some(vec!["s".into(), "s".into()]));
    }
}
