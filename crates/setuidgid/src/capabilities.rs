//! `--caps`: capability names, and keeping exactly those across the change of user.
//!
//! The kernel's rules this follows (capabilities(7)): with PR_SET_KEEPCAPS, setresuid away
//! from root keeps the permitted set (the effective set is emptied); the ambient set may only
//! hold what is both permitted and inheritable, and it is what survives execve of a program
//! without file capabilities, into PROG and every descendant that does not drop it.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;

use libcustos::error::{Error, Result};

/// `cap_net_bind_service,NET_RAW,...` → capabilities (case-insensitive, `cap_` optional).
pub fn parse(list: &str) -> Result<Vec<Capability>> {
    let mut out = Vec::new();
    for name in list.split(',') {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid(format!(
                "--caps: invalid capability list: {list} (expected names separated by commas, e.g. cap_net_bind_service)"
            )));
        }
        match Capability::from_str(&caps::to_canonical(name)) {
            Ok(c) if !out.contains(&c) => out.push(c),
            Ok(_) => {}
            Err(_) => return Err(Error::invalid(format!("unknown capability: {name}"))),
        }
    }
    Ok(out)
}

/// The lowercase name users write: `cap_net_bind_service`.
pub fn name(c: Capability) -> String {
    c.to_string().to_lowercase()
}

/// The errno of the capability call that just failed. The caps crate words its errors as
/// strings; errno is still that of the failed syscall, as nothing between it and us fails.
fn failed(what: String, err: caps::errors::CapsError) -> Error {
    match Errno::last() {
        Errno::UnknownErrno => Error {
            code: libcustos::exit::SYSTEM,
            message: format!("unable to {what}: {err}"),
        },
        e => Error::sys(what, e),
    }
}

/// Before anything changes: every capability to keep must be held (permitted and in the
/// bounding set), or it could not be kept. Said up front, with the fix.
pub fn check_held(keep: &[Capability]) -> Result<()> {
    let permitted = caps::read(None, CapSet::Permitted)
        .map_err(|e| failed("read the permitted capabilities".into(), e))?;
    for &c in keep {
        let bounded = caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false);
        if !permitted.contains(&c) || !bounded {
            let short = name(c).trim_start_matches("cap_").to_uppercase();
            return Err(Error {
                code: libcustos::exit::SYSTEM,
                message: format!(
                    "unable to keep {}: Operation not permitted (setuidgid does not hold it; give it to the container, e.g. docker run --cap-add {short})",
                    name(c)
                ),
            });
        }
    }
    Ok(())
}

/// Drops every capability but `keep` from the bounding set (needs CAP_SETPCAP: do it while
/// still root).
pub fn limit_bounding(keep: &[Capability]) -> Result<()> {
    for c in caps::runtime::thread_all_supported() {
        if keep.contains(&c) || !caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
            continue;
        }
        caps::drop(None, CapSet::Bounding, c)
            .map_err(|e| failed(format!("drop {} from the bounding set", name(c)), e))?;
    }
    Ok(())
}

/// After the uid change: effective, permitted and inheritable become exactly `keep`, then the
/// ambient set too, so the capabilities survive execve.
pub fn set_exactly(keep: &[Capability]) -> Result<()> {
    let set: CapsHashSet = keep.iter().copied().collect::<HashSet<_>>();
    let list = || keep.iter().map(|&c| name(c)).collect::<Vec<_>>().join(",");
    // effective first: it must stay within permitted at every step
    for (cset, which) in [
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
        (CapSet::Inheritable, "inheritable"),
    ] {
        caps::set(None, cset, &set)
            .map_err(|e| failed(format!("set the {which} capabilities to {}", list()), e))?;
    }
    caps::clear(None, CapSet::Ambient)
        .map_err(|e| failed("clear the ambient capabilities".into(), e))?;
    for &c in keep {
        caps::raise(None, CapSet::Ambient, c)
            .map_err(|e| failed(format!("raise the ambient capability {}", name(c)), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let ok = [
            (
                "cap_net_bind_service",
                vec![Capability::CAP_NET_BIND_SERVICE],
            ),
            (
                "CAP_NET_BIND_SERVICE",
                vec![Capability::CAP_NET_BIND_SERVICE],
            ),
            ("net_bind_service", vec![Capability::CAP_NET_BIND_SERVICE]),
            ("Net_Bind_Service", vec![Capability::CAP_NET_BIND_SERVICE]),
            (
                "cap_net_bind_service,NET_RAW",
                vec![Capability::CAP_NET_BIND_SERVICE, Capability::CAP_NET_RAW],
            ),
            ("chown,cap_chown", vec![Capability::CAP_CHOWN]),
        ];
        for (list, want) in ok {
            assert_eq!(
                parse(list).unwrap_or_else(|e| panic!("{list}: {e}")),
                want,
                "{list}"
            );
        }
        assert_eq!(
            name(Capability::CAP_NET_BIND_SERVICE),
            "cap_net_bind_service"
        );
    }

    #[test]
    fn bad_names() {
        let bad = [
            ("cap_bogus", "unknown capability: cap_bogus"),
            ("net_bind_service,fly", "unknown capability: fly"),
            ("", "--caps: invalid capability list:  (expected"),
            (
                "chown,,kill",
                "--caps: invalid capability list: chown,,kill (expected",
            ),
        ];
        for (list, msg) in bad {
            let e = parse(list).expect_err(list);
            assert!(e.message.starts_with(msg), "{list}: {}", e.message);
            assert_eq!(e.code, 100);
        }
    }
}
