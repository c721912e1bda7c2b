//! Signal names as users write them: `TERM`, `SIGTERM`, `term`, `15`.

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parses a signal name or number (case-insensitive, with or without `SIG`).
pub fn parse(text: &str) -> Result<Signal> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| Error::invalid(format!("{t}: not a signal number")));
    }
    let upper = t.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<Signal>().map_err(|_| {
        Error::invalid(format!(
            "{t}: unknown signal (expected a name like TERM or HUP, or a number)"
        ))
    })
}

/// `TERM` for SIGTERM: the name without `SIG`.
pub fn name(sig: Signal) -> &'static str {
    let s = sig.as_str();
    s.strip_prefix("SIG").unwrap_or(s)
}

/// The short name of a signal number, or the number itself when it has none.
pub fn name_of_number(n: i32) -> String {
    Signal::try_from(n)
        .map(|s| name(s).to_string())
        .unwrap_or_else(|_| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for (text, sig) in [
            ("TERM", Signal::SIGTERM),
            ("SIGTERM", Signal::SIGTERM),
            ("term", Signal::SIGTERM),
            ("15", Signal::SIGTERM),
            ("hup", Signal::SIGHUP),
            ("SIGUSR1", Signal::SIGUSR1),
            (" 9\n", Signal::SIGKILL),
        ] {
            assert_eq!(parse(text), Ok(sig), "{text}");
        }
        assert!(parse("BOGUS").unwrap_err().message.contains("BOGUS"));
        assert!(parse("0").is_err());
        assert!(parse("99").is_err());
        assert_eq!(name(Signal::SIGQUIT), "QUIT");
        assert_eq!(name_of_number(10), "USR1");
    }
}
