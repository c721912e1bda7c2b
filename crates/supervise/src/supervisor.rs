//! The event loop: one poll(2) over the self-pipe (signals), the control FIFO, the
//! notification pipe, pidfds of adopted processes and the prefixed log pipes, bounded by the
//! nearest timer. Every wakeup is turned into `state::Event`s; the actions `state::step`
//! returns are performed here, and `supervise/status` is rewritten when what it says changed.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use libcustos::control::{self, Command};
use libcustos::error::{Error, Result};
use libcustos::servicedir::{self, ServiceDef};
use libcustos::status::{self, LastEnd, Status};
use libcustos::{debug, info, paths, warn};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::adopt::{self, Orphan};
use crate::child::{self, Launch};
use crate::prefix::Stream;
use crate::state::{self, Action, Cmd, Event, Phase, Settings, Sig, Target, Timer, Want};

/// What main parsed.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub name: String,
    pub hold: bool,
    pub stdio: [Option<RawFd>; 3],
    pub prefix_fds: Option<(RawFd, RawFd)>,
    pub clean_env: bool,
    /// Arguments given to run before anything else (init's catch-all logger).
    pub run_args: Vec<std::ffi::OsString>,
}

/// A process we watch: run or finish.
#[derive(Debug)]
struct Proc {
    pid: i32,
    start_ticks: u64,
    /// Set for an adopted process (not our child): readable when it exits.
    pidfd: Option<OwnedFd>,
    /// Adopted without a pidfd (old kernel): checked once a second through /proc.
    polled: bool,
}

impl Proc {
    fn adopted(&self) -> bool {
        self.pidfd.is_some() || self.polled
    }
}

struct Supervisor {
    launch: Launch,
    state: state::State,
    /// The service folder as loaded for the current (or last) start.
    def: ServiceDef,
    timers: [(Timer, Option<Instant>); 3],
    run: Option<Proc>,
    finish: Option<Proc>,
    /// The process groups of run (each run is a session leader: group = its pid), oldest
    /// first, kept after run ends for the helpers left in them, until they are empty.
    groups: Vec<i32>,
    /// The group of the latest run, for finish's PGID argument.
    last_group: i32,
    notify: Option<OwnedFd>,
    control: File,
    leftover: Option<u8>,
    selfpipe: UnixStream,
    term: Arc<AtomicBool>,
    prefix: Vec<Stream>,
    since: SystemTime,
    ready_since: Option<SystemTime>,
    restarts: u32,
    started_once: bool,
    written: Option<[u8; status::STATUS_SIZE]>,
    queue: VecDeque<Event>,
    exit: bool,
    /// Held for as long as supervise runs: "supervised" means "this lock is held".
    _lock: File,
}

fn settings_of(def: &ServiceDef) -> Settings {
    Settings {
        timeout_finish: def.timeout_finish,
        timeout_kill: def.timeout_kill,
        essential: def.essential,
    }
}

/// Sets supervise up (errors here are fatal: 100 or 111), then loops until `x`.
pub fn run(opts: Options) -> Result<()> {
    let dir = &opts.dir;
    if !dir.is_dir() {
        return Err(Error::invalid(format!(
            "{}: not a directory",
            dir.display()
        )));
    }
    let def = servicedir::load(&opts.name, dir)?;
    for fd in opts
        .stdio
        .iter()
        .flatten()
        .chain(opts.prefix_fds.iter().flat_map(|(a, b)| [a, b]))
    {
        // SAFETY: fcntl on an integer; no memory involved.
        if unsafe { libc::fcntl(*fd, libc::F_GETFD) } < 0 {
            return Err(Error::invalid(format!(
                "descriptor {fd}: not open (given by an option)"
            )));
        }
        // given to children through a copy, never as is
        // SAFETY: as above.
        unsafe { libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }

    let sdir = dir.join(paths::SUPERVISE);
    if let Err(e) = std::fs::create_dir(&sdir) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(Error::io(format_args!("create {}", sdir.display()), &e));
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&sdir, std::fs::Permissions::from_mode(0o755));
    }
    let lock = match libcustos::lock::take(dir)? {
        Some(f) => f,
        None => {
            return Err(Error::invalid(format!(
                "{}: already supervised",
                dir.display()
            )))
        }
    };

    // signals first, before anything is spawned
    let (selfpipe, wake) = UnixStream::pair().map_err(|e| Error::io("create the self-pipe", &e))?;
    selfpipe
        .set_nonblocking(true)
        .map_err(|e| Error::io("set up the self-pipe", &e))?;
    wake.set_nonblocking(true)
        .map_err(|e| Error::io("set up the self-pipe", &e))?;
    let term = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        let w = wake
            .try_clone()
            .map_err(|e| Error::io("set up the self-pipe", &e))?;
        signal_hook::low_level::pipe::register(sig, w)
            .map_err(|e| Error::io(format_args!("catch signal {sig}"), &e))?;
    }
    signal_hook::flag::register(libc::SIGTERM, Arc::clone(&term))
        .map_err(|e| Error::io("catch SIGTERM", &e))?;
    drop(wake);
    // helpers left by run are reparented to us, and reaped by us
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        warn!(
            "{}: unable to become a child subreaper: {}",
            opts.name,
            Errno::last().desc()
        );
    }

    let previous = status::read(dir).ok().flatten();
    let control = control::open_fifo(&dir.join(paths::SUPERVISE_CONTROL))?;

    let prefix = match opts.prefix_fds {
        Some((r1, r2)) => vec![
            Stream::new(&opts.name, r1, 1),
            Stream::new(&opts.name, r2, 2),
        ],
        None => Vec::new(),
    };

    let orphan = adopt::orphan(previous);
    let want = if opts.hold {
        Want::Down
    } else if let Some(Orphan::Run(st) | Orphan::Finish(st)) = orphan {
        if st.wanted_up {
            Want::Up
        } else {
            Want::Down
        }
    } else if def.down {
        Want::Down
    } else {
        Want::Up
    };

    let mut sv = Supervisor {
        launch: Launch {
            name: opts.name.clone(),
            dir: dir.clone(),
            stdio: opts.stdio,
            clean_env: opts.clean_env,
            run_args: opts.run_args.clone(),
            container_env: PathBuf::from(paths::CONTAINER_ENV),
        },
        state: state::State::new(want),
        def,
        timers: [
            (Timer::StartGuard, None),
            (Timer::Finish, None),
            (Timer::Kill, None),
        ],
        run: None,
        finish: None,
        groups: Vec::new(),
        last_group: 0,
        notify: None,
        control,
        leftover: None,
        selfpipe,
        term,
        prefix,
        since: SystemTime::now(),
        ready_since: None,
        restarts: 0,
        started_once: false,
        written: None,
        queue: VecDeque::new(),
        exit: false,
        _lock: lock,
    };
    match orphan {
        Some(o) => sv.adopt(o),
        None => sv.feed(Event::Boot),
    }
    sv.main_loop();
    Ok(())
}

impl Supervisor {
    fn name(&self) -> &str {
        &self.launch.name
    }

    /// Takes over what a previous supervise left running.
    fn adopt(&mut self, orphan: Orphan) {
        let (st, is_run) = match orphan {
            Orphan::Run(st) => (st, true),
            Orphan::Finish(st) => (st, false),
        };
        let pid = st.pid as i32;
        let (pidfd, polled) = match adopt::pidfd_open(pid) {
            Ok(fd) => (Some(fd), false),
            Err(e) => {
                warn!(
                    "{}: unable to watch pid {pid} through a pidfd: {} (checking it every second)",
                    self.name(),
                    e.desc()
                );
                (None, true)
            }
        };
        let proc = Proc {
            pid,
            start_ticks: st.pid_start_ticks,
            pidfd,
            polled,
        };
        info!(
            "{}: adopting {} (pid {pid}) left by a previous supervise",
            self.name(),
            if is_run { "run" } else { "finish" }
        );
        self.since = st.since;
        self.restarts = st.restarts;
        self.started_once = true;
        self.state.last = st.last;
        let settings = settings_of(&self.def);
        if is_run {
            self.ready_since = if st.ready { st.ready_since } else { None };
            self.last_group = adopt::pgid_of(pid);
            self.groups = vec![self.last_group];
            self.run = Some(proc);
            let guard = adopt::guard_left(st.since, SystemTime::now());
            if let Some(left) = guard {
                self.arm(Timer::StartGuard, left);
            }
            // the state changes, but `since` and `ready_since` stay the adopted run's
            let (since, ready_since) = (self.since, self.ready_since);
            self.queue.push_back(Event::Adopted {
                settings,
                ready: st.ready,
                paused: st.paused,
                guard: guard.is_some(),
            });
            self.run_queue();
            self.since = since;
            if self.state.ready {
                self.ready_since = ready_since;
            }
            self.write_status();
        } else {
            self.finish = Some(proc);
            let since = self.since;
            self.queue.push_back(Event::AdoptedFinish(settings));
            self.run_queue();
            self.since = since;
            self.write_status();
        }
    }

    fn arm(&mut self, timer: Timer, after: Duration) {
        for t in &mut self.timers {
            if t.0 == timer {
                t.1 = Some(Instant::now() + after);
            }
        }
    }

    fn disarm(&mut self, timer: Timer) {
        for t in &mut self.timers {
            if t.0 == timer {
                t.1 = None;
            }
        }
    }

    /// Runs an event and everything it leads to through the machine, then writes the status.
    fn feed(&mut self, ev: Event) {
        self.queue.push_back(ev);
        self.settle();
    }

    /// Runs the queued events through the machine, then writes the status.
    fn settle(&mut self) {
        self.run_queue();
        self.write_status();
    }

    fn run_queue(&mut self) {
        while let Some(ev) = self.queue.pop_front() {
            let before = self.state;
            let (after, actions) = state::step(before, ev);
            self.state = after;
            if after.phase != before.phase {
                self.since = SystemTime::now();
            }
            if after.ready && !before.ready {
                self.ready_since = Some(SystemTime::now());
                info!("{}: ready", self.name());
            } else if !after.ready {
                self.ready_since = None;
            }
            for a in actions {
                self.perform(a);
            }
            if self.queue.is_empty() {
                self.check_group();
            }
        }
    }

    /// Process groups that emptied are forgotten (their numbers may be reused); when none is
    /// left (run's own group counts while run runs), the machine hears of it.
    fn check_group(&mut self) {
        if self.groups.is_empty() {
            return;
        }
        let current = self.run.as_ref().map(|r| r.pid);
        self.groups.retain(|&g| {
            g > 1 && (Some(g) == current || kill(Pid::from_raw(-g), None) != Err(Errno::ESRCH))
        });
        if self.groups.is_empty() {
            self.queue.push_back(Event::GroupGone);
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::StartRun => self.start_run(),
            Action::StartFinish(last) => self.start_finish(last),
            Action::KillFinish => {
                if let Some(f) = self.finish.as_ref().filter(|f| f.pid > 1) {
                    warn!(
                        "{}: ./finish ran longer than timeout-finish ({} ms): killing it",
                        self.name(),
                        self.state.settings.timeout_finish.as_millis()
                    );
                    let _ = kill(Pid::from_raw(-f.pid), Signal::SIGKILL);
                    let _ = kill(Pid::from_raw(f.pid), Signal::SIGKILL);
                }
            }
            Action::Signal(target, sig) => {
                let sig = match sig {
                    Sig::Down => self.def.down_signal,
                    Sig::Plain(s) => s,
                };
                let pids: Vec<i32> = match target {
                    Target::Run => self.run.as_ref().map(|r| r.pid).into_iter().collect(),
                    // never -1 (everything) or 0 (our own group)
                    Target::Group => self.groups.iter().filter(|g| **g > 1).map(|g| -g).collect(),
                };
                for pid in pids {
                    debug!(
                        "{}: sending {} to {}",
                        self.name(),
                        libcustos::signal::name(sig),
                        pid
                    );
                    match kill(Pid::from_raw(pid), sig) {
                        Ok(()) | Err(Errno::ESRCH) => {}
                        Err(e) => warn!(
                            "{}: unable to send {} to {pid}: {}",
                            self.name(),
                            libcustos::signal::name(sig),
                            e.desc()
                        ),
                    }
                }
            }
            Action::Arm(t, d) => self.arm(t, d),
            Action::Disarm(t) => self.disarm(t),
            Action::NotifyInit(code) => {
                info!(
                    "{}: essential service ended: telling init to stop the container with {code}",
                    self.name()
                );
                match control::send(std::path::Path::new(paths::INIT_CONTROL), &[b'e', code]) {
                    Ok(()) => {}
                    Err(control::SendError::NotSupervised) => {
                        debug!(
                            "{}: no init listens on {}",
                            self.name(),
                            paths::INIT_CONTROL
                        )
                    }
                    Err(e) => warn!(
                        "{}: unable to tell init the service ended: {e:?}",
                        self.name()
                    ),
                }
            }
            Action::Exit => self.exit = true,
        }
    }

    fn start_run(&mut self) {
        let name = self.name().to_string();
        match servicedir::load(&name, &self.launch.dir) {
            Ok(def) => self.def = def,
            Err(e) => {
                warn!("{name}: {} (retrying in 1 second)", e.message);
                self.queue.push_back(Event::SpawnFailed);
                return;
            }
        }
        match child::spawn(&self.launch, paths::RUN, &[], self.def.notification_fd) {
            Ok(sp) => {
                if self.started_once {
                    self.restarts = self.restarts.saturating_add(1);
                }
                self.started_once = true;
                let ticks = status::pid_start_ticks(sp.pid as u64).unwrap_or(0);
                info!("{name}: started ./run, pid {}", sp.pid);
                self.run = Some(Proc {
                    pid: sp.pid,
                    start_ticks: ticks,
                    pidfd: None,
                    polled: false,
                });
                self.last_group = sp.pid;
                self.groups.push(sp.pid);
                self.notify = sp.notify;
                self.queue.push_back(Event::Started(settings_of(&self.def)));
            }
            Err(e) => {
                warn!("{name}: {} (retrying in 1 second)", e.message);
                self.queue.push_back(Event::SpawnFailed);
            }
        }
    }

    fn start_finish(&mut self, last: LastEnd) {
        self.notify = None;
        if !self.launch.dir.join(paths::FINISH).is_file() {
            self.queue
                .push_back(Event::FinishExited { stay_down: false });
            return;
        }
        let (code, sig) = child::finish_args(last);
        let args: Vec<OsString> = vec![
            code.to_string().into(),
            sig.to_string().into(),
            self.launch.dir.clone().into_os_string(),
            self.last_group.to_string().into(),
        ];
        match child::spawn(&self.launch, paths::FINISH, &args, None) {
            Ok(sp) => {
                info!(
                    "{}: started ./finish {code} {sig}, pid {}",
                    self.name(),
                    sp.pid
                );
                let ticks = status::pid_start_ticks(sp.pid as u64).unwrap_or(0);
                self.finish = Some(Proc {
                    pid: sp.pid,
                    start_ticks: ticks,
                    pidfd: None,
                    polled: false,
                });
                self.queue.push_back(Event::FinishStarted);
            }
            Err(e) => {
                warn!("{}: {}", self.name(), e.message);
                self.queue
                    .push_back(Event::FinishExited { stay_down: false });
            }
        }
    }

    fn status(&self) -> Status {
        let (pid, ticks) = match self.state.phase {
            Phase::Up => self
                .run
                .as_ref()
                .map(|p| (p.pid as u64, p.start_ticks))
                .unwrap_or((0, 0)),
            Phase::Finishing => self
                .finish
                .as_ref()
                .map(|p| (p.pid as u64, p.start_ticks))
                .unwrap_or((0, 0)),
            Phase::Down => (0, 0),
        };
        Status {
            state: match self.state.phase {
                Phase::Down => status::State::Down,
                Phase::Up => status::State::Up,
                Phase::Finishing => status::State::Finishing,
            },
            wanted_up: self.state.want != Want::Down,
            ready: self.state.ready,
            paused: self.state.paused,
            declares_readiness: self.def.notification_fd.is_some(),
            last: self.state.last,
            pid,
            since: self.since,
            ready_since: self.ready_since,
            pid_start_ticks: ticks,
            restarts: self.restarts,
        }
    }

    fn write_status(&mut self) {
        let st = self.status();
        let packed = st.pack();
        if self.written == Some(packed) {
            return;
        }
        match status::write(&self.launch.dir, &st) {
            Ok(()) => {
                self.written = Some(packed);
                // tell init (dependency order, CMD's readiness wait); nobody listening, or a
                // FIFO already full of the same news, is fine
                let _ = libcustos::control::send(
                    std::path::Path::new(libcustos::paths::INIT_CONTROL),
                    &[libcustos::control::INIT_STATUS_CHANGED],
                );
            }
            Err(e) => warn!("{}: {}", self.name(), e.message),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.timers.iter().filter_map(|t| t.1).min();
        let polled = [&self.run, &self.finish]
            .into_iter()
            .flatten()
            .any(|p| p.polled);
        if polled {
            let tick = Instant::now() + Duration::from_secs(1);
            next = Some(next.map_or(tick, |n| n.min(tick)));
        }
        next
    }

    fn main_loop(&mut self) {
        while !self.exit {
            self.wait_and_dispatch();
        }
        self.write_status();
        info!("{}: exiting", self.name());
    }

    fn wait_and_dispatch(&mut self) {
        // legend of `fds`: 0 self-pipe, 1 control, then optional entries tagged in `kinds`
        #[derive(Clone, Copy)]
        enum Kind {
            Notify,
            RunPidfd,
            FinishPidfd,
            Prefix(usize),
        }
        let mut fds = vec![
            libc::pollfd {
                fd: self.selfpipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.control.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let mut kinds = vec![];
        let mut add = |fd: RawFd, kind: Kind, fds: &mut Vec<libc::pollfd>| {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
            kinds.push(kind);
        };
        if let Some(n) = &self.notify {
            add(n.as_raw_fd(), Kind::Notify, &mut fds);
        }
        if let Some(fd) = self.run.as_ref().and_then(|p| p.pidfd.as_ref()) {
            add(fd.as_raw_fd(), Kind::RunPidfd, &mut fds);
        }
        if let Some(fd) = self.finish.as_ref().and_then(|p| p.pidfd.as_ref()) {
            add(fd.as_raw_fd(), Kind::FinishPidfd, &mut fds);
        }
        for (i, s) in self.prefix.iter().enumerate() {
            if !s.eof {
                add(s.from, Kind::Prefix(i), &mut fds);
            }
        }
        let timeout = match self.next_deadline() {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // round up, so a timer is never found early and polled again at once
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        // SAFETY: fds is a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 && Errno::last() != Errno::EINTR {
            warn!("{}: poll failed: {}", self.name(), Errno::last().desc());
        }

        // signals: drain the pipe first, then act
        let mut buf = [0u8; 64];
        while matches!((&self.selfpipe).read(&mut buf), Ok(k) if k > 0) {}
        if self.term.swap(false, Ordering::Relaxed) {
            info!(
                "{}: SIGTERM: bringing the service down, then exiting",
                self.name()
            );
            self.feed(Event::Command(Cmd::Down));
            self.feed(Event::Command(Cmd::Exit));
        }
        self.reap();

        if n > 0 {
            if fds[1].revents != 0 {
                self.read_control();
            }
            for (pfd, kind) in fds[2..].iter().zip(kinds) {
                if pfd.revents == 0 {
                    continue;
                }
                match kind {
                    Kind::Notify => self.read_notify(),
                    Kind::RunPidfd => {
                        if self.run.as_ref().is_some_and(|p| p.pidfd.is_some()) {
                            self.adopted_run_ended();
                        }
                    }
                    Kind::FinishPidfd => {
                        if self.finish.as_ref().is_some_and(|p| p.pidfd.is_some()) {
                            self.finish = None;
                            self.feed(Event::FinishExited { stay_down: false });
                        }
                    }
                    Kind::Prefix(i) => {
                        if let Some(s) = self.prefix.get_mut(i) {
                            s.pump();
                        }
                    }
                }
            }
        }

        // adopted without a pidfd: look at /proc
        if let Some(p) = &self.run {
            if p.polled && !adopt::still_alive(p.pid as u64, p.start_ticks) {
                self.adopted_run_ended();
            }
        }
        if let Some(p) = &self.finish {
            if p.polled && !adopt::still_alive(p.pid as u64, p.start_ticks) {
                self.finish = None;
                self.feed(Event::FinishExited { stay_down: false });
            }
        }

        let now = Instant::now();
        for i in 0..self.timers.len() {
            if let (t, Some(at)) = self.timers[i] {
                if at <= now {
                    self.timers[i].1 = None;
                    self.feed(Event::Timer(t));
                }
            }
        }
    }

    fn adopted_run_ended(&mut self) {
        info!(
            "{}: the adopted ./run has ended (its exit status went to init)",
            self.name()
        );
        self.run = None;
        self.notify = None;
        self.feed(Event::RunExited(LastEnd::Unknown));
    }

    /// Reaps every child that has ended: run, finish, and orphans reparented to us.
    fn reap(&mut self) {
        loop {
            let (pid, end) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), LastEnd::Exited(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    (pid.as_raw(), LastEnd::Killed(sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    warn!("{}: waitpid failed: {}", self.name(), e.desc());
                    return;
                }
            };
            if self
                .run
                .as_ref()
                .is_some_and(|p| p.pid == pid && !p.adopted())
            {
                info!("{}: ./run (pid {pid}) {}", self.name(), describe(end));
                self.run = None;
                self.notify = None;
                self.feed(Event::RunExited(end));
            } else if self
                .finish
                .as_ref()
                .is_some_and(|p| p.pid == pid && !p.adopted())
            {
                debug!("{}: ./finish (pid {pid}) {}", self.name(), describe(end));
                self.finish = None;
                let stay_down = end == LastEnd::Exited(libcustos::exit::FINISH_STAY_DOWN);
                self.feed(Event::FinishExited { stay_down });
            } else {
                debug!("{}: reaped pid {pid}", self.name());
                // a helper of run's group may have been the last one
                self.check_group();
                self.settle();
            }
        }
    }

    fn read_control(&mut self) {
        let mut buf = [0u8; 256];
        loop {
            let n = match (&self.control).read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let mut bytes = Vec::with_capacity(n + 1);
            bytes.extend(self.leftover.take());
            bytes.extend_from_slice(&buf[..n]);
            let (cmds, leftover) = Command::decode(&bytes);
            self.leftover = leftover;
            for c in cmds {
                debug!("{}: command {:?}", self.name(), c);
                self.feed(Event::Command(c));
            }
        }
    }

    /// s6 readiness: a newline on the notification-fd. End of file before it: not ready;
    /// either way the pipe is closed.
    fn read_notify(&mut self) {
        let Some(fd) = &self.notify else { return };
        let mut buf = [0u8; 512];
        // SAFETY: reading into a buffer we own from a descriptor we own.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            if Errno::last() != Errno::EINTR && Errno::last() != Errno::EAGAIN {
                self.notify = None;
            }
            return;
        }
        if n == 0 {
            self.notify = None;
            return;
        }
        if buf[..n as usize].contains(&b'\n') {
            self.notify = None;
            self.feed(Event::Ready);
        }
    }
}

fn describe(end: LastEnd) -> String {
    match end {
        LastEnd::Exited(c) => format!("exited {c}"),
        LastEnd::Killed(s) => format!("was killed by SIG{}", libcustos::signal::name_of_number(s)),
        LastEnd::None | LastEnd::Unknown => "ended".into(),
    }
}
