//! The settings of /init (SPEC section 6): `CUSTOS_X`, or its s6-overlay alias `S6_X`
//! (`CUSTOS_X` wins when both are set). Every invalid value is reported at once, each message
//! naming the variable the user actually set and what is accepted.

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// 0 continue silently, 1 warn and continue, 2 stop the container.
    pub behaviour_if_stage2_fails: u8,
    pub cmd_wait_for_services: bool,
    /// None: no limit.
    pub cmd_wait_for_services_maxtime: Option<Duration>,
    pub cmd_gracetime: Duration,
    pub services_gracetime: Duration,
    pub kill_finish_maxtime: Duration,
    pub kill_gracetime: Duration,
    /// Words put before CMD.
    pub cmd_arg0: Vec<OsString>,
    pub cmd_receive_signals: bool,
    pub fix_attrs_hidden: bool,
    pub log_prefix: bool,
    /// 0 all output to the container; 1 services without a logger to the catch-all logger;
    /// 2 CMD too.
    pub logging: u8,
    pub logging_script: Vec<String>,
    pub keep_env: bool,
    pub sync_disks: bool,
    pub verbosity: u8,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            behaviour_if_stage2_fails: 2,
            cmd_wait_for_services: true,
            cmd_wait_for_services_maxtime: Some(Duration::from_millis(5000)),
            cmd_gracetime: Duration::from_millis(3000),
            services_gracetime: Duration::from_millis(3000),
            kill_finish_maxtime: Duration::from_millis(5000),
            kill_gracetime: Duration::from_millis(3000),
            cmd_arg0: Vec::new(),
            cmd_receive_signals: false,
            fix_attrs_hidden: false,
            log_prefix: false,
            logging: 0,
            logging_script: vec!["n20".into(), "s1000000".into(), "T".into()],
            keep_env: true,
            sync_disks: false,
            verbosity: 1,
        }
    }
}

/// The settings custos reads, by the part after `CUSTOS_` / `S6_`.
pub const KNOWN: [&str; 16] = [
    "BEHAVIOUR_IF_STAGE2_FAILS",
    "CMD_WAIT_FOR_SERVICES",
    "CMD_WAIT_FOR_SERVICES_MAXTIME",
    "CMD_GRACETIME",
    "SERVICES_GRACETIME",
    "KILL_FINISH_MAXTIME",
    "KILL_GRACETIME",
    "CMD_ARG0",
    "CMD_RECEIVE_SIGNALS",
    "FIX_ATTRS_HIDDEN",
    "LOG_PREFIX",
    "LOGGING",
    "LOGGING_SCRIPT",
    "KEEP_ENV",
    "SYNC_DISKS",
    "VERBOSITY",
];

/// s6-overlay variables custos does not need: accepted without a word.
const S6_SILENT: [&str; 3] = [
    "S6_READ_ONLY_ROOT",
    "S6_SERVICES_READYTIME",
    "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES",
];

/// s6-overlay variables custos does not implement, and the custos way to do the same.
const S6_ADVICE: [(&str, &str); 5] = [
    (
        "S6_CMD_USE_TERMINAL",
        "custos gives CMD the terminal whenever stdin is one",
    ),
    (
        "S6_STAGE2_HOOK",
        "put the hook in /etc/cont-init.d, which runs at the same point",
    ),
    (
        "S6_GLOBAL_PATH",
        "set PATH in the container environment (ENV PATH=... in the Dockerfile)",
    ),
    (
        "S6_CATCHALL_USER",
        "the catch-all logger always runs as nobody",
    ),
    ("S6_LOGGING_FILTER", "filter in a service's own log/run"),
];

/// Parsed settings, plus the warnings to print (unknown or unimplemented variables).
#[derive(Debug)]
pub struct Parsed {
    pub settings: Settings,
    pub warnings: Vec<String>,
}

struct Lookup<'a> {
    env: &'a [(OsString, OsString)],
    errors: Vec<String>,
}

impl Lookup<'_> {
    /// (the name the user set, its value) for setting `key`.
    fn get(&self, key: &str) -> Option<(String, String)> {
        for prefix in ["CUSTOS_", "S6_"] {
            let name = format!("{prefix}{key}");
            if let Some((_, v)) = self
                .env
                .iter()
                .find(|(k, _)| k.as_os_str() == OsStr::new(&name))
            {
                return Some((name, v.to_string_lossy().into_owned()));
            }
        }
        None
    }

    fn choice(&mut self, key: &str, max: u8, default: u8, meaning: &str) -> u8 {
        let Some((name, v)) = self.get(key) else {
            return default;
        };
        match v.trim().parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                self.errors
                    .push(format!("{name}: invalid value {v:?} (expected {meaning})"));
                default
            }
        }
    }

    fn flag(&mut self, key: &str, default: bool) -> bool {
        self.choice(key, 1, default as u8, "0 or 1") == 1
    }

    fn level(&mut self, key: &str, default: u8) -> u8 {
        let Some((name, v)) = self.get(key) else {
            return default;
        };
        v.trim().parse::<u8>().unwrap_or_else(|_| {
            self.errors.push(format!(
                "{name}: invalid value {v:?} (expected a number from 0 to 5)"
            ));
            default
        })
    }

    fn duration(&mut self, key: &str, default: Duration) -> Duration {
        let Some((name, v)) = self.get(key) else {
            return default;
        };
        parse_duration(&v).unwrap_or_else(|_| {
            self.errors.push(format!(
                "{name}: invalid duration {v:?} (expected milliseconds like 3000, or 3s, 500ms, 1m)"
            ));
            default
        })
    }
}

/// What svlog accepts in a script: `nN`, `sBYTES`, `t`, `T`, `1`, or a folder (`/...`, `./...`).
fn is_log_directive(w: &str) -> bool {
    let number = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    matches!(w, "t" | "T" | "1")
        || w.strip_prefix('n').is_some_and(number)
        || w.strip_prefix('s')
            .is_some_and(|t| number(t) && t.parse::<u64>().is_ok_and(|n| n > 0))
        || w.starts_with('/')
        || w.starts_with('.')
}

/// Milliseconds (`3000`) or a human duration (`3s`, `500ms`, `1m`, `1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    // humantime would also take "3 s" and "3 seconds 5 ms": keep one compact form
    let compact = !t.is_empty() && !t.contains(char::is_whitespace);
    compact
        .then(|| humantime::parse_duration(t).ok())
        .flatten()
        .ok_or_else(|| {
            Error::invalid(format!(
                "{t:?}: invalid duration (expected milliseconds like 3000, or 3s, 500ms, 1m)"
            ))
        })
}

/// Reads the settings from the environment `env`. Err: every invalid value, one message each.
pub fn parse(env: &[(OsString, OsString)]) -> Result<Parsed, Vec<String>> {
    let mut l = Lookup {
        env,
        errors: Vec::new(),
    };
    let d = Settings::default();
    let maxtime = l.duration("CMD_WAIT_FOR_SERVICES_MAXTIME", Duration::from_millis(5000));
    let settings = Settings {
        behaviour_if_stage2_fails: l.choice(
            "BEHAVIOUR_IF_STAGE2_FAILS",
            2,
            d.behaviour_if_stage2_fails,
            "0 continue silently, 1 warn and continue, or 2 stop the container",
        ),
        cmd_wait_for_services: l.flag("CMD_WAIT_FOR_SERVICES", d.cmd_wait_for_services),
        cmd_wait_for_services_maxtime: if maxtime.is_zero() { None } else { Some(maxtime) },
        cmd_gracetime: l.duration("CMD_GRACETIME", d.cmd_gracetime),
        services_gracetime: l.duration("SERVICES_GRACETIME", d.services_gracetime),
        kill_finish_maxtime: l.duration("KILL_FINISH_MAXTIME", d.kill_finish_maxtime),
        kill_gracetime: l.duration("KILL_GRACETIME", d.kill_gracetime),
        cmd_arg0: l
            .get("CMD_ARG0")
            .map(|(_, v)| v.split_whitespace().map(OsString::from).collect())
            .unwrap_or_default(),
        cmd_receive_signals: l.flag("CMD_RECEIVE_SIGNALS", d.cmd_receive_signals),
        fix_attrs_hidden: l.flag("FIX_ATTRS_HIDDEN", d.fix_attrs_hidden),
        log_prefix: l.flag("LOG_PREFIX", d.log_prefix),
        logging: l.choice(
            "LOGGING",
            2,
            d.logging,
            "0 all output to the container, 1 services to /var/log/custos-uncaught-logs, or 2 CMD too",
        ),
        logging_script: match l.get("LOGGING_SCRIPT") {
            None => d.logging_script.clone(),
            Some((name, v)) => {
                let words: Vec<String> = v.split_whitespace().map(String::from).collect();
                if words.is_empty() {
                    l.errors.push(format!("{name}: empty (expected svlog directives like \"n20 s1000000 T\")"));
                }
                for w in words.iter().filter(|w| !is_log_directive(w)) {
                    l.errors.push(format!(
                        "{name}: {w:?} is not an svlog directive (expected nN, sBYTES, t, T, 1 or a folder)"
                    ));
                }
                words
            }
        },
        keep_env: l.flag("KEEP_ENV", d.keep_env),
        sync_disks: l.flag("SYNC_DISKS", d.sync_disks),
        verbosity: l.level("VERBOSITY", d.verbosity),
    };
    if !l.errors.is_empty() {
        return Err(l.errors);
    }
    Ok(Parsed {
        settings,
        warnings: unknown_variables(env),
    })
}

/// One warning per CUSTOS_ or S6_ variable custos does not read: nothing is ignored without a word.
fn unknown_variables(env: &[(OsString, OsString)]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (k, _) in env {
        let Some(name) = k.to_str() else { continue };
        if let Some(key) = name.strip_prefix("CUSTOS_") {
            if !KNOWN.contains(&key) {
                warnings.push(format!(
                    "{name}: unknown setting, ignored (the settings are listed in docs/init.md)"
                ));
            }
        } else if let Some(key) = name.strip_prefix("S6_") {
            if KNOWN.contains(&key) || S6_SILENT.contains(&name) {
                continue;
            }
            let advice = S6_ADVICE
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, a)| a.to_string())
                .unwrap_or_else(|| "see docs/migrating.md for the custos equivalent".into());
            warnings.push(format!(
                "{name}: not implemented by custos, ignored: {advice}"
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn defaults() {
        let p = parse(&env(&[("PATH", "/bin")])).unwrap();
        assert_eq!(p.settings, Settings::default());
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn durations() {
        for (text, ms) in [
            ("3000", 3000),
            ("3s", 3000),
            ("500ms", 500),
            ("1m", 60000),
            (" 0 ", 0),
            ("1m30s", 90000),
        ] {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_millis(ms),
                "{text}"
            );
        }
        for bad in ["", "3 s", "-1", "soon", "3x"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn custos_wins_over_s6() {
        let p = parse(&env(&[
            ("S6_KILL_GRACETIME", "100"),
            ("CUSTOS_KILL_GRACETIME", "2s"),
        ]))
        .unwrap();
        assert_eq!(p.settings.kill_gracetime, Duration::from_secs(2));
        let p = parse(&env(&[("S6_KILL_GRACETIME", "100")])).unwrap();
        assert_eq!(p.settings.kill_gracetime, Duration::from_millis(100));
    }

    #[test]
    fn every_invalid_value_at_once_naming_the_variable_set() {
        let errs = parse(&env(&[
            ("S6_BEHAVIOUR_IF_STAGE2_FAILS", "3"),
            ("CUSTOS_KILL_GRACETIME", "3 s"),
            ("CUSTOS_LOGGING", "x"),
            ("CUSTOS_KEEP_ENV", "yes"),
            ("CUSTOS_LOGGING_SCRIPT", "  "),
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 5, "{errs:?}");
        let bad_script = parse(&env(&[("CUSTOS_LOGGING_SCRIPT", "n20 bogus s0 T")])).unwrap_err();
        assert_eq!(bad_script.len(), 2, "{bad_script:?}");
        assert!(
            bad_script[0].contains("\"bogus\" is not an svlog directive"),
            "{bad_script:?}"
        );
        assert!(
            errs[0].starts_with("S6_BEHAVIOUR_IF_STAGE2_FAILS: invalid value \"3\""),
            "{errs:?}"
        );
        assert!(errs
            .iter()
            .any(|e| e.starts_with("CUSTOS_KILL_GRACETIME: invalid duration \"3 s\"")));
        assert!(errs
            .iter()
            .any(|e| e.starts_with("CUSTOS_KEEP_ENV") && e.contains("0 or 1")));
    }

    #[test]
    fn values() {
        let p = parse(&env(&[
            ("CUSTOS_CMD_WAIT_FOR_SERVICES_MAXTIME", "0"),
            ("CUSTOS_CMD_ARG0", "/usr/bin/tool --flag"),
            ("CUSTOS_LOGGING_SCRIPT", "n3 s100 t"),
            ("S6_VERBOSITY", "3"),
            ("CUSTOS_KEEP_ENV", "0"),
        ]))
        .unwrap();
        let s = p.settings;
        assert_eq!(s.cmd_wait_for_services_maxtime, None);
        assert_eq!(
            s.cmd_arg0,
            vec![OsString::from("/usr/bin/tool"), OsString::from("--flag")]
        );
        assert_eq!(s.logging_script, vec!["n3", "s100", "t"]);
        assert_eq!(s.verbosity, 3);
        assert!(!s.keep_env);
    }

    #[test]
    fn unknown_variables_are_named() {
        let p = parse(&env(&[
            ("S6_READ_ONLY_ROOT", "1"),
            ("S6_STAGE2_HOOK", "/x"),
            ("S6_SOMETHING", "1"),
            ("CUSTOS_TYPO", "1"),
            ("S6_KEEP_ENV", "1"),
        ]))
        .unwrap();
        assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
        assert!(
            p.warnings[0].starts_with("S6_STAGE2_HOOK: not implemented")
                && p.warnings[0].contains("cont-init.d")
        );
        assert!(p.warnings[1].contains("docs/migrating.md"));
        assert!(p.warnings[2].starts_with("CUSTOS_TYPO: unknown setting"));
    }
}
