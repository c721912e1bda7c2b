//! The supervision state machine: s6-supervise's state × event table as one pure function,
//! `step(State, Event) -> (State, Vec<Action>)`. It knows no pids, no clocks and no files:
//! the event loop (`supervisor.rs`) turns what happens into events, and performs the actions
//! it gets back. Timers are named and armed with a duration; the loop feeds `Event::Timer`
//! when one runs out.
//!
//! Legend of the phases (the `state` byte of `supervise/status`):
//! ```text
//! Down       neither run nor finish is running
//! Up         run is running (spawned by us, or adopted from a previous supervise)
//! Finishing  run has ended and finish is running
//! ```

use std::time::Duration;

use libcustos::status::LastEnd;
use nix::sys::signal::Signal;

/// How long a start of run keeps the next one away (SPEC section 4).
pub const START_GUARD: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Neither run nor finish is running.
    Down,
    /// run is running.
    Up,
    /// run has ended; finish is running.
    Finishing,
}

/// What the service should be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Stay down.
    Down,
    /// Be up; restart run whenever it ends.
    Up,
    /// Be up, but do not restart run when it ends (`o`).
    Once,
}

/// The timers the machine arms; the loop keeps one deadline per timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// One second since the last start of run: no start before it runs out.
    StartGuard,
    /// `timeout-finish` since finish started: SIGKILL finish.
    Finish,
    /// `timeout-kill` since the down signal: SIGKILL run's process group.
    Kill,
}

/// Whom a signal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// run's pid.
    Run,
    /// run's process group (run and its helpers), and the groups of earlier runs that still
    /// hold helpers they left behind.
    Group,
}

/// Which signal to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// The service's `down-signal` (TERM by default).
    Down,
    /// Any other signal.
    Plain(Signal),
}

/// The settings of the current start of run that the machine needs (the service folder is
/// loaded again before each start, so they may change between starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub timeout_finish: Duration,
    /// None: no SIGKILL after the down signal.
    pub timeout_kill: Option<Duration>,
    pub essential: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            timeout_finish: libcustos::servicedir::DEFAULT_TIMEOUT_FINISH,
            timeout_kill: None,
            essential: false,
        }
    }
}

/// Everything the machine remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub phase: Phase,
    pub want: Want,
    /// `x` was received: exit once the service is down, and never start it again.
    pub exit_asked: bool,
    /// run was stopped with `p` (SIGSTOP) and not continued since.
    pub paused: bool,
    /// run wrote its readiness newline (meaningful while Up).
    pub ready: bool,
    /// Less than one second since the last start of run: a start must wait for the guard.
    pub guard: bool,
    /// The current run was told to end (`d` or `r`): its end is not "on its own".
    pub asked_to_end: bool,
    /// A SIGKILL to run's process group is due when the Kill timer runs out.
    pub kill_pending: bool,
    /// A process group of run (current or earlier) may still hold processes worth
    /// signalling on `d`.
    pub group_known: bool,
    /// An essential run ended on its own: the code to give init once finish has run.
    pub essential_end: Option<u8>,
    /// How run last ended.
    pub last: LastEnd,
    pub settings: Settings,
}

impl State {
    /// A supervise that has not started anything yet.
    pub fn new(want: Want) -> State {
        State {
            phase: Phase::Down,
            want,
            exit_asked: false,
            paused: false,
            ready: false,
            guard: false,
            asked_to_end: false,
            kill_pending: false,
            group_known: false,
            essential_end: None,
            last: LastEnd::None,
            settings: Settings::default(),
        }
    }
}

/// A control command (one byte on `supervise/control`, or SIGTERM to supervise): the wire
/// alphabet's own type.
pub use libcustos::control::Command as Cmd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// supervise has set itself up and adopted nothing: start run if it is wanted up.
    Boot,
    /// A command arrived.
    Command(Cmd),
    /// The loop spawned run (after an `Action::StartRun`).
    Started(Settings),
    /// The loop could not spawn run (bad service folder, exec failure): retried after the guard.
    SpawnFailed,
    /// A run left by a previous supervise is alive and now watched (pidfd).
    Adopted {
        settings: Settings,
        ready: bool,
        paused: bool,
        guard: bool,
    },
    /// A finish left by a previous supervise is alive and now watched.
    AdoptedFinish(Settings),
    /// run has ended (reaped, or an adopted run's pidfd became readable).
    RunExited(LastEnd),
    /// run wrote a newline on its notification-fd.
    Ready,
    /// The loop spawned finish (after an `Action::StartFinish`).
    FinishStarted,
    /// finish has ended, or there is none, or it could not be spawned; `stay_down`: it exited 125.
    FinishExited { stay_down: bool },
    /// A timer ran out.
    Timer(Timer),
    /// run's process group is empty: nothing is left to SIGKILL.
    GroupGone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Load the service folder again, spawn run, then feed `Started` or `SpawnFailed`.
    StartRun,
    /// Spawn finish with run's end, then feed `FinishStarted`, or `FinishExited` when there
    /// is no finish or it cannot be spawned.
    StartFinish(LastEnd),
    /// SIGKILL finish's process group.
    KillFinish,
    /// Send a signal (ESRCH is fine: it may have just ended).
    Signal(Target, Sig),
    Arm(Timer, Duration),
    Disarm(Timer),
    /// Tell init an essential service ended, with this code.
    NotifyInit(u8),
    /// Exit supervise, 0.
    Exit,
}

/// The code an essential service gives the container: exit code, or 128+N for signal N.
/// An adopted run's end is unknown: 1, a plain failure.
pub fn end_code(last: LastEnd) -> u8 {
    match last {
        LastEnd::Exited(c) => (c & 0xff) as u8,
        LastEnd::Killed(n) => libcustos::exit::signaled(n),
        LastEnd::None | LastEnd::Unknown => 1,
    }
}

/// The transition function: the whole supervision policy.
pub fn step(mut s: State, ev: Event) -> (State, Vec<Action>) {
    let mut out = Vec::new();
    match ev {
        Event::Boot => start_if_due(&mut s, &mut out),
        Event::Command(cmd) => command(&mut s, cmd, &mut out),
        Event::Started(settings) => {
            s.phase = Phase::Up;
            s.settings = settings;
            s.ready = false;
            s.paused = false;
            s.asked_to_end = false;
            s.group_known = true;
            s.essential_end = None;
        }
        Event::SpawnFailed => {
            // counts as a start that ended at once: the guard is running, the retry follows it
            if s.want == Want::Once {
                s.want = Want::Down;
            }
            exit_if_done(&s, &mut out);
        }
        Event::Adopted {
            settings,
            ready,
            paused,
            guard,
        } => {
            s.phase = Phase::Up;
            s.settings = settings;
            s.ready = ready;
            s.paused = paused;
            s.guard = guard;
            s.asked_to_end = false;
            s.group_known = true;
            if s.want == Want::Down {
                // the previous supervise was bringing it down: go on doing so
                bring_down(&mut s, &mut out);
            }
        }
        Event::AdoptedFinish(settings) => {
            s.phase = Phase::Finishing;
            s.settings = settings;
            s.ready = false;
            s.paused = false;
            out.push(Action::Arm(Timer::Finish, settings.timeout_finish));
        }
        Event::RunExited(last) => {
            if s.phase != Phase::Up {
                return (s, out);
            }
            s.last = last;
            s.ready = false;
            s.paused = false;
            if s.settings.essential && s.want != Want::Down && !s.asked_to_end {
                s.essential_end = Some(end_code(last));
            }
            if s.want == Want::Once {
                s.want = Want::Down;
            }
            s.phase = Phase::Finishing;
            out.push(Action::StartFinish(last));
        }
        Event::Ready => {
            if s.phase == Phase::Up {
                s.ready = true;
            }
        }
        Event::FinishStarted => {
            if s.phase == Phase::Finishing {
                out.push(Action::Arm(Timer::Finish, s.settings.timeout_finish));
            }
        }
        Event::FinishExited { stay_down } => {
            if s.phase != Phase::Finishing {
                return (s, out);
            }
            out.push(Action::Disarm(Timer::Finish));
            s.phase = Phase::Down;
            if stay_down {
                s.want = Want::Down;
            }
            if let Some(code) = s.essential_end.take() {
                s.want = Want::Down;
                out.push(Action::NotifyInit(code));
            }
            if !exit_if_done(&s, &mut out) {
                start_if_due(&mut s, &mut out);
            }
        }
        Event::Timer(Timer::StartGuard) => {
            s.guard = false;
            start_if_due(&mut s, &mut out);
        }
        Event::Timer(Timer::Finish) => {
            if s.phase == Phase::Finishing {
                out.push(Action::KillFinish);
            }
        }
        Event::Timer(Timer::Kill) => {
            if s.kill_pending {
                s.kill_pending = false;
                out.push(Action::Signal(Target::Group, Sig::Plain(Signal::SIGKILL)));
                exit_if_done(&s, &mut out);
            }
        }
        Event::GroupGone => {
            s.group_known = false;
            if s.kill_pending {
                s.kill_pending = false;
                out.push(Action::Disarm(Timer::Kill));
                exit_if_done(&s, &mut out);
            }
        }
    }
    (s, out)
}

fn command(s: &mut State, cmd: Cmd, out: &mut Vec<Action>) {
    match cmd {
        Cmd::Up => {
            s.want = Want::Up;
            start_if_due(s, out);
        }
        Cmd::Once => {
            s.want = Want::Once;
            start_if_due(s, out);
        }
        Cmd::Down => {
            s.want = Want::Down;
            bring_down(s, out);
            exit_if_done(s, out);
        }
        Cmd::Restart => {
            if s.phase == Phase::Up {
                s.want = Want::Up;
                s.asked_to_end = true;
                s.paused = false;
                send_down_signal(s, out);
            }
        }
        Cmd::Exit => {
            s.exit_asked = true;
            exit_if_done(s, out);
        }
        Cmd::Pause => {
            if s.phase == Phase::Up {
                s.paused = true;
                out.push(Action::Signal(Target::Run, Sig::Plain(Signal::SIGSTOP)));
            }
        }
        Cmd::Cont => {
            if s.phase == Phase::Up {
                s.paused = false;
                out.push(Action::Signal(Target::Run, Sig::Plain(Signal::SIGCONT)));
            }
        }
        Cmd::Signal(sig) => {
            if s.phase == Phase::Up {
                out.push(Action::Signal(Target::Run, Sig::Plain(sig)));
            }
        }
    }
}

/// `d`: signal run's group while run is up, or the helpers run left behind when it is not.
fn bring_down(s: &mut State, out: &mut Vec<Action>) {
    match s.phase {
        Phase::Up => {
            s.asked_to_end = true;
            s.paused = false;
            send_down_signal(s, out);
        }
        Phase::Down | Phase::Finishing => {
            if s.group_known {
                send_down_signal(s, out);
            }
        }
    }
}

/// The down signal and SIGCONT to the group, and SIGKILL after timeout-kill when it is set.
fn send_down_signal(s: &mut State, out: &mut Vec<Action>) {
    out.push(Action::Signal(Target::Group, Sig::Down));
    out.push(Action::Signal(Target::Group, Sig::Plain(Signal::SIGCONT)));
    if let Some(t) = s.settings.timeout_kill {
        s.kill_pending = true;
        out.push(Action::Arm(Timer::Kill, t));
    }
}

fn start_if_due(s: &mut State, out: &mut Vec<Action>) {
    if s.phase != Phase::Down || s.want == Want::Down || s.guard || s.exit_asked {
        return;
    }
    if s.kill_pending {
        // helpers of the previous run that were told to go down: they go now, not later
        // among the new run's processes
        s.kill_pending = false;
        out.push(Action::Disarm(Timer::Kill));
        out.push(Action::Signal(Target::Group, Sig::Plain(Signal::SIGKILL)));
    }
    s.guard = true;
    out.push(Action::Arm(Timer::StartGuard, START_GUARD));
    out.push(Action::StartRun);
}

/// `x` is honoured once run and finish are gone and no SIGKILL is still due to helpers.
fn exit_if_done(s: &State, out: &mut Vec<Action>) -> bool {
    let done = s.exit_asked && s.phase == Phase::Down && !s.kill_pending;
    if done {
        out.push(Action::Exit);
    }
    done
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const KILL_MS: Duration = Duration::from_millis(300);

    fn settings(timeout_kill: Option<Duration>, essential: bool) -> Settings {
        Settings {
            timeout_finish: Duration::from_millis(5000),
            timeout_kill,
            essential,
        }
    }

    /// A machine with run up (spawned at least one second ago).
    fn up(want: Want, timeout_kill: Option<Duration>, essential: bool) -> State {
        let mut s = State::new(want);
        s.phase = Phase::Up;
        s.group_known = true;
        s.settings = settings(timeout_kill, essential);
        s
    }

    fn run(s: State, evs: &[Event]) -> (State, Vec<Action>) {
        let mut s = s;
        let mut all = Vec::new();
        for ev in evs {
            let (n, a) = step(s, *ev);
            s = n;
            all.extend(a);
        }
        (s, all)
    }

    const DOWN_SIGNALS: [Action; 2] = [
        Action::Signal(Target::Group, Sig::Down),
        Action::Signal(Target::Group, Sig::Plain(Signal::SIGCONT)),
    ];

    #[test]
    fn boot_starts_only_when_wanted_up() {
        let (s, a) = step(State::new(Want::Up), Event::Boot);
        assert_eq!(
            a,
            vec![
                Action::Arm(Timer::StartGuard, START_GUARD),
                Action::StartRun
            ]
        );
        assert!(s.guard);
        assert_eq!(
            s.phase,
            Phase::Down,
            "Up only once the loop says it started"
        );
        let (s, a) = step(State::new(Want::Down), Event::Boot);
        assert!(a.is_empty());
        assert_eq!(s.phase, Phase::Down);
    }

    #[test]
    fn started_resets_per_run_flags() {
        let mut s = State::new(Want::Up);
        s.ready = true;
        s.paused = true;
        s.asked_to_end = true;
        let (s, a) = step(s, Event::Started(settings(None, true)));
        assert!(a.is_empty());
        assert_eq!(s.phase, Phase::Up);
        assert!(!s.ready && !s.paused && !s.asked_to_end && s.group_known);
        assert!(s.settings.essential);
    }

    #[test]
    fn up_command() {
        // down, no guard: start now
        let (s, a) = step(State::new(Want::Down), Event::Command(Cmd::Up));
        assert_eq!(
            a,
            vec![
                Action::Arm(Timer::StartGuard, START_GUARD),
                Action::StartRun
            ]
        );
        assert_eq!(s.want, Want::Up);
        // down within the guard: wait for it
        let mut g = State::new(Want::Down);
        g.guard = true;
        let (g, a) = step(g, Event::Command(Cmd::Up));
        assert!(a.is_empty());
        let (_, a) = step(g, Event::Timer(Timer::StartGuard));
        assert_eq!(
            a,
            vec![
                Action::Arm(Timer::StartGuard, START_GUARD),
                Action::StartRun
            ]
        );
        // up: nothing but the wish
        let (s, a) = step(up(Want::Once, None, false), Event::Command(Cmd::Up));
        assert!(a.is_empty());
        assert_eq!(s.want, Want::Up);
        // finishing: starts after finish
        let mut f = up(Want::Down, None, false);
        f.phase = Phase::Finishing;
        let (f, a) = step(f, Event::Command(Cmd::Up));
        assert!(a.is_empty());
        let (_, a) = step(f, Event::FinishExited { stay_down: false });
        assert_eq!(
            a,
            vec![
                Action::Disarm(Timer::Finish),
                Action::Arm(Timer::StartGuard, START_GUARD),
                Action::StartRun
            ]
        );
    }

    #[test]
    fn down_command_signals_the_group() {
        let (s, a) = step(up(Want::Up, None, false), Event::Command(Cmd::Down));
        assert_eq!(a, DOWN_SIGNALS.to_vec());
        assert_eq!(s.want, Want::Down);
        assert!(s.asked_to_end && !s.kill_pending);
        // with timeout-kill: SIGKILL armed
        let (s, a) = step(
            up(Want::Up, Some(KILL_MS), false),
            Event::Command(Cmd::Down),
        );
        assert_eq!(
            a,
            [
                DOWN_SIGNALS.to_vec(),
                vec![Action::Arm(Timer::Kill, KILL_MS)]
            ]
            .concat()
        );
        assert!(s.kill_pending);
        let (s, a) = step(s, Event::Timer(Timer::Kill));
        assert_eq!(
            a,
            vec![Action::Signal(Target::Group, Sig::Plain(Signal::SIGKILL))]
        );
        assert!(!s.kill_pending);
        // a paused run is continued by the down signal's SIGCONT
        let mut p = up(Want::Up, None, false);
        p.paused = true;
        let (p, _) = step(p, Event::Command(Cmd::Down));
        assert!(!p.paused);
    }

    #[test]
    fn down_when_down_signals_leftover_helpers_only() {
        let mut s = State::new(Want::Up);
        s.group_known = true;
        let (s, a) = step(s, Event::Command(Cmd::Down));
        assert_eq!(a, DOWN_SIGNALS.to_vec());
        assert_eq!(s.want, Want::Down);
        let (_, a) = step(State::new(Want::Up), Event::Command(Cmd::Down));
        assert!(a.is_empty(), "never started: nothing to signal");
        let mut gone = State::new(Want::Up);
        gone.group_known = true;
        let (gone, _) = step(gone, Event::GroupGone);
        let (_, a) = step(gone, Event::Command(Cmd::Down));
        assert!(a.is_empty());
    }

    #[test]
    fn run_exit_runs_finish_then_restarts_after_the_guard() {
        let mut s = up(Want::Up, None, false);
        s.guard = true; // started less than a second ago
        s.ready = true;
        let (s, a) = step(s, Event::RunExited(LastEnd::Exited(3)));
        assert_eq!(a, vec![Action::StartFinish(LastEnd::Exited(3))]);
        assert_eq!(s.phase, Phase::Finishing);
        assert_eq!(s.last, LastEnd::Exited(3));
        assert!(!s.ready);
        let (s, a) = step(s, Event::FinishStarted);
        assert_eq!(
            a,
            vec![Action::Arm(Timer::Finish, Duration::from_millis(5000))]
        );
        let (s, a) = step(s, Event::FinishExited { stay_down: false });
        assert_eq!(
            a,
            vec![Action::Disarm(Timer::Finish)],
            "guard still running: no start yet"
        );
        assert_eq!(s.phase, Phase::Down);
        let (s, a) = step(s, Event::Timer(Timer::StartGuard));
        assert_eq!(
            a,
            vec![
                Action::Arm(Timer::StartGuard, START_GUARD),
                Action::StartRun
            ]
        );
        assert!(s.guard);
    }

    #[test]
    fn finish_timeout_kills_finish() {
        let mut s = up(Want::Up, None, false);
        s.phase = Phase::Finishing;
        let (s, a) = step(s, Event::Timer(Timer::Finish));
        assert_eq!(a, vec![Action::KillFinish]);
        let (s, _) = step(s, Event::FinishExited { stay_down: false });
        assert_eq!(s.phase, Phase::Down);
        // a stale finish timer is ignored
        let (_, a) = step(s, Event::Timer(Timer::Finish));
        assert!(a.is_empty());
    }

    #[test]
    fn finish_125_keeps_it_down() {
        let (s, _) = run(
            up(Want::Up, None, false),
            &[
                Event::RunExited(LastEnd::Killed(15)),
                Event::FinishExited { stay_down: true },
            ],
        );
        assert_eq!(s.want, Want::Down);
        assert_eq!(s.phase, Phase::Down);
        let (_, a) = step(s, Event::Timer(Timer::StartGuard));
        assert!(a.is_empty());
    }

    #[test]
    fn once_is_not_restarted() {
        let (s, a) = step(State::new(Want::Down), Event::Command(Cmd::Once));
        assert!(a.contains(&Action::StartRun));
        assert_eq!(s.want, Want::Once);
        let (s, _) = run(
            s,
            &[
                Event::Started(settings(None, false)),
                Event::RunExited(LastEnd::Exited(0)),
                Event::FinishExited { stay_down: false },
                Event::Timer(Timer::StartGuard),
            ],
        );
        assert_eq!(s.want, Want::Down);
        assert_eq!(s.phase, Phase::Down);
        // o on a running service: no restart when it ends
        let (s, _) = step(up(Want::Up, None, false), Event::Command(Cmd::Once));
        let (s, a) = run(
            s,
            &[
                Event::RunExited(LastEnd::Exited(0)),
                Event::FinishExited { stay_down: false },
            ],
        );
        assert!(!a.contains(&Action::StartRun));
        assert_eq!(s.want, Want::Down);
    }

    #[test]
    fn restart_signals_and_stays_wanted_up() {
        let (s, a) = step(up(Want::Up, None, false), Event::Command(Cmd::Restart));
        assert_eq!(a, DOWN_SIGNALS.to_vec());
        assert_eq!(s.want, Want::Up);
        let (s, a) = run(
            s,
            &[
                Event::RunExited(LastEnd::Killed(15)),
                Event::FinishExited { stay_down: false },
            ],
        );
        assert!(a.contains(&Action::StartRun));
        assert_eq!(s.want, Want::Up);
        // r on a down service does nothing
        let (s, a) = step(State::new(Want::Down), Event::Command(Cmd::Restart));
        assert!(a.is_empty());
        assert_eq!(s.want, Want::Down);
    }

    #[test]
    fn exit_waits_for_down() {
        let (s, a) = step(State::new(Want::Down), Event::Command(Cmd::Exit));
        assert_eq!(a, vec![Action::Exit]);
        assert!(s.exit_asked);
        // up: x alone waits for run to end on its own, and it is not restarted
        let (s, a) = step(up(Want::Up, None, false), Event::Command(Cmd::Exit));
        assert!(a.is_empty());
        let (s, a) = step(s, Event::RunExited(LastEnd::Exited(0)));
        assert_eq!(a, vec![Action::StartFinish(LastEnd::Exited(0))]);
        let (_, a) = step(s, Event::FinishExited { stay_down: false });
        assert_eq!(a, vec![Action::Disarm(Timer::Finish), Action::Exit]);
        // "dx" as init sends it in stage 3
        let (s, a) = run(
            up(Want::Up, None, false),
            &[Event::Command(Cmd::Down), Event::Command(Cmd::Exit)],
        );
        assert!(!a.contains(&Action::Exit));
        let (_, a) = run(
            s,
            &[
                Event::RunExited(LastEnd::Killed(15)),
                Event::FinishExited { stay_down: false },
            ],
        );
        assert_eq!(a.last(), Some(&Action::Exit));
        // u after x does not start anything
        let (s, _) = step(State::new(Want::Down), Event::Command(Cmd::Exit));
        let (_, a) = step(s, Event::Command(Cmd::Up));
        assert!(!a.contains(&Action::StartRun));
    }

    #[test]
    fn exit_waits_for_a_pending_group_kill() {
        let (s, _) = run(
            up(Want::Up, Some(KILL_MS), false),
            &[
                Event::Command(Cmd::Down),
                Event::Command(Cmd::Exit),
                Event::RunExited(LastEnd::Killed(15)),
            ],
        );
        let (s, a) = step(s, Event::FinishExited { stay_down: false });
        assert!(
            !a.contains(&Action::Exit),
            "a helper may still need its SIGKILL"
        );
        let (_, a) = step(s, Event::Timer(Timer::Kill));
        assert_eq!(
            a,
            vec![
                Action::Signal(Target::Group, Sig::Plain(Signal::SIGKILL)),
                Action::Exit
            ]
        );
        // or the group empties first
        let (s, _) = run(
            up(Want::Up, Some(KILL_MS), false),
            &[
                Event::Command(Cmd::Down),
                Event::Command(Cmd::Exit),
                Event::RunExited(LastEnd::Killed(15)),
                Event::FinishExited { stay_down: false },
            ],
        );
        let (_, a) = step(s, Event::GroupGone);
        assert_eq!(a, vec![Action::Disarm(Timer::Kill), Action::Exit]);
    }

    #[test]
    fn a_new_start_kills_helpers_still_due_a_sigkill() {
        let (s, _) = run(
            up(Want::Up, Some(KILL_MS), false),
            &[
                Event::Command(Cmd::Down),
                Event::RunExited(LastEnd::Killed(15)),
                Event::FinishExited { stay_down: false },
            ],
        );
        assert!(s.kill_pending);
        let mut s = s;
        s.guard = false;
        let (s, a) = step(s, Event::Command(Cmd::Up));
        assert_eq!(
            a,
            vec![
                Action::Disarm(Timer::Kill),
                Action::Signal(Target::Group, Sig::Plain(Signal::SIGKILL)),
                Action::Arm(Timer::StartGuard, START_GUARD),
                Action::StartRun
            ]
        );
        assert!(!s.kill_pending);
    }

    #[test]
    fn spawn_failure_retries_after_the_guard() {
        let (s, _) = step(State::new(Want::Up), Event::Boot);
        let (s, a) = step(s, Event::SpawnFailed);
        assert!(a.is_empty());
        assert_eq!(s.phase, Phase::Down);
        let (_, a) = step(s, Event::Timer(Timer::StartGuard));
        assert!(a.contains(&Action::StartRun));
        // once: a failed spawn uses it up
        let (s, _) = step(State::new(Want::Down), Event::Command(Cmd::Once));
        let (s, _) = step(s, Event::SpawnFailed);
        assert_eq!(s.want, Want::Down);
        // x while the spawn fails: exit
        let mut x = State::new(Want::Up);
        x.exit_asked = true;
        let (_, a) = step(x, Event::SpawnFailed);
        assert_eq!(a, vec![Action::Exit]);
    }

    #[test]
    fn pause_continue_and_signals_go_to_run_only_when_up() {
        let (s, a) = step(up(Want::Up, None, false), Event::Command(Cmd::Pause));
        assert_eq!(
            a,
            vec![Action::Signal(Target::Run, Sig::Plain(Signal::SIGSTOP))]
        );
        assert!(s.paused);
        let (s, a) = step(s, Event::Command(Cmd::Cont));
        assert_eq!(
            a,
            vec![Action::Signal(Target::Run, Sig::Plain(Signal::SIGCONT))]
        );
        assert!(!s.paused);
        let (_, a) = step(s, Event::Command(Cmd::Signal(Signal::SIGUSR1)));
        assert_eq!(
            a,
            vec![Action::Signal(Target::Run, Sig::Plain(Signal::SIGUSR1))]
        );
        for cmd in [Cmd::Pause, Cmd::Cont, Cmd::Signal(Signal::SIGKILL)] {
            let (s, a) = step(State::new(Want::Up), Event::Command(cmd));
            assert!(a.is_empty(), "{cmd:?}");
            assert!(!s.paused);
        }
    }

    #[test]
    fn readiness() {
        let (s, _) = step(up(Want::Up, None, false), Event::Ready);
        assert!(s.ready);
        let (s, _) = step(State::new(Want::Up), Event::Ready);
        assert!(!s.ready, "no run, no readiness");
    }

    #[test]
    fn essential_end_tells_init_after_finish_and_stays_down() {
        let (s, a) = step(
            up(Want::Up, None, true),
            Event::RunExited(LastEnd::Exited(7)),
        );
        assert_eq!(a, vec![Action::StartFinish(LastEnd::Exited(7))]);
        let (s, a) = step(s, Event::FinishExited { stay_down: false });
        assert_eq!(
            a,
            vec![Action::Disarm(Timer::Finish), Action::NotifyInit(7)]
        );
        assert_eq!(s.want, Want::Down);
        let (_, a) = step(s, Event::Timer(Timer::StartGuard));
        assert!(a.is_empty());
        // killed by a signal: 128+N
        let (_, a) = run(
            up(Want::Up, None, true),
            &[
                Event::RunExited(LastEnd::Killed(9)),
                Event::FinishExited { stay_down: false },
            ],
        );
        assert!(a.contains(&Action::NotifyInit(137)));
        // told to go down, or restarted: not "on its own"
        for cmd in [Cmd::Down, Cmd::Restart] {
            let (_, a) = run(
                up(Want::Up, None, true),
                &[
                    Event::Command(cmd),
                    Event::RunExited(LastEnd::Killed(15)),
                    Event::FinishExited { stay_down: false },
                ],
            );
            assert!(
                !a.iter().any(|x| matches!(x, Action::NotifyInit(_))),
                "{cmd:?}"
            );
        }
        // not essential: nothing
        let (_, a) = run(
            up(Want::Up, None, false),
            &[
                Event::RunExited(LastEnd::Exited(7)),
                Event::FinishExited { stay_down: false },
            ],
        );
        assert!(!a.iter().any(|x| matches!(x, Action::NotifyInit(_))));
        assert_eq!(end_code(LastEnd::Unknown), 1);
    }

    #[test]
    fn adoption() {
        // wanted up: just watch it
        let ev = Event::Adopted {
            settings: settings(None, false),
            ready: true,
            paused: false,
            guard: false,
        };
        let (s, a) = step(State::new(Want::Up), ev);
        assert!(a.is_empty());
        assert_eq!(s.phase, Phase::Up);
        assert!(s.ready);
        // its end is unknown; it is restarted as usual
        let (s, a) = step(s, Event::RunExited(LastEnd::Unknown));
        assert_eq!(a, vec![Action::StartFinish(LastEnd::Unknown)]);
        let (_, a) = step(s, Event::FinishExited { stay_down: false });
        assert!(a.contains(&Action::StartRun));
        // wanted down (the previous supervise was stopping it): signal it again
        let (s, a) = step(State::new(Want::Down), ev);
        assert_eq!(a, DOWN_SIGNALS.to_vec());
        assert!(s.asked_to_end);
        // adopted within a second of its start: the guard holds the restart
        let ev = Event::Adopted {
            settings: settings(None, false),
            ready: false,
            paused: true,
            guard: true,
        };
        let (s, _) = step(State::new(Want::Up), ev);
        assert!(s.paused);
        let (_, a) = run(
            s,
            &[
                Event::RunExited(LastEnd::Unknown),
                Event::FinishExited { stay_down: false },
            ],
        );
        assert!(!a.contains(&Action::StartRun));
        // an adopted finish
        let (s, a) = step(
            State::new(Want::Up),
            Event::AdoptedFinish(settings(None, false)),
        );
        assert_eq!(s.phase, Phase::Finishing);
        assert_eq!(
            a,
            vec![Action::Arm(Timer::Finish, Duration::from_millis(5000))]
        );
        let (_, a) = step(s, Event::FinishExited { stay_down: false });
        assert!(a.contains(&Action::StartRun));
    }

    #[test]
    fn stray_events_change_nothing() {
        let down = State::new(Want::Up);
        for ev in [
            Event::RunExited(LastEnd::Exited(0)),
            Event::FinishExited { stay_down: true },
            Event::FinishStarted,
            Event::Timer(Timer::Finish),
            Event::Timer(Timer::Kill),
            Event::Ready,
        ] {
            assert_eq!(step(down, ev), (down, vec![]), "{ev:?}");
        }
        let u = up(Want::Up, None, false);
        for ev in [
            Event::FinishExited { stay_down: true },
            Event::FinishStarted,
            Event::Timer(Timer::Kill),
        ] {
            assert_eq!(step(u, ev), (u, vec![]), "{ev:?}");
        }
    }
}
