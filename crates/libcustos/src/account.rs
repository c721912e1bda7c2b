//! Accounts as users write them, for `setuidgid` and `fix-attrs`.
//!
//! Grammar: `user[:group][,uid:gid]`. `user` and `group` are each a name or a number; the
//! optional `,uid:gid` fallback supplies what a name lookup does not find (fix-attrs; setuidgid
//! accepts only `user`, `user:group`, `uid:gid` and `uid`). Resolution (SPEC section 5):
//!
//! - user: a number is taken as is; a name is looked up in /etc/passwd, else the fallback uid,
//!   else the error `unknown account: NAME`.
//! - group: a number is taken as is; a name is looked up in /etc/group, else the fallback gid,
//!   else `unknown group: NAME`. Without a group: the user's primary group from /etc/passwd,
//!   else the fallback gid, else a gid equal to the uid (numeric ids with no passwd entry).
//!
//! Names are looked up through the [`Lookup`] trait, so the rules are testable without the
//! host's /etc/passwd; [`System`] is the libc one (musl reads the files, glibc asks NSS).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use nix::errno::Errno;
use nix::unistd::{Gid, Group, Uid, User};

use crate::error::{Error, Result};

/// One side of an account: a name to look up, or a number taken as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    Name(String),
    Num(u32),
}

/// An account as written: `user[:group][,uid:gid]`, not yet looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub user: Id,
    pub group: Option<Id>,
    /// The `,uid:gid` part: what a failed name lookup falls back to.
    pub fallback: Option<(u32, u32)>,
}

/// An account resolved to numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    /// The passwd name whose /etc/group memberships are the supplementary groups; None when
    /// the ids were given as numbers (or came from the fallback): then the only group is `gid`.
    pub member: Option<String>,
}

/// Name service lookups, behind a trait so tests need no /etc/passwd.
pub trait Lookup {
    /// `(uid, primary gid)` of the user named `name`, if there is one.
    fn user_by_name(&self, name: &str) -> Result<Option<(u32, u32)>>;
    /// `(name, primary gid)` of the user with uid `uid`, if there is one.
    fn user_by_uid(&self, uid: u32) -> Result<Option<(String, u32)>>;
    /// The gid of the group named `name`, if there is one.
    fn group_by_name(&self, name: &str) -> Result<Option<u32>>;
}

/// The system's name service: /etc/passwd and /etc/group.
pub struct System;

/// A missing /etc/passwd or /etc/group (an image with numeric ids only) finds nothing.
fn absent_is_none<T>(r: std::result::Result<Option<T>, Errno>, file: &str) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(v),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) | Err(Errno::ESRCH) => Ok(None),
        Err(e) => Err(Error::sys(format_args!("read {file}"), e)),
    }
}

impl Lookup for System {
    fn user_by_name(&self, name: &str) -> Result<Option<(u32, u32)>> {
        let u = absent_is_none(User::from_name(name), "/etc/passwd")?;
        Ok(u.map(|u| (u.uid.as_raw(), u.gid.as_raw())))
    }

    fn user_by_uid(&self, uid: u32) -> Result<Option<(String, u32)>> {
        let u = absent_is_none(User::from_uid(Uid::from_raw(uid)), "/etc/passwd")?;
        Ok(u.map(|u| (u.name, u.gid.as_raw())))
    }

    fn group_by_name(&self, name: &str) -> Result<Option<u32>> {
        let g = absent_is_none(Group::from_name(name), "/etc/group")?;
        Ok(g.map(|g| g.gid.as_raw()))
    }
}

const EXPECTED: &str = "expected user[:group][,uid:gid]";

/// A number as an id: decimal digits only, and never -1 (which chown reads as "no change").
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

fn id(part: &str, all: &str) -> Result<Id> {
    if part.is_empty() {
        return Err(Error::invalid(format!(
            "invalid account: {all} (empty name; {EXPECTED})"
        )));
    }
    if part
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(Error::invalid(format!(
            "invalid account: {all} (blank in a name; {EXPECTED})"
        )));
    }
    if part.bytes().all(|b| b.is_ascii_digit()) {
        return match number(part) {
            Some(n) => Ok(Id::Num(n)),
            None => Err(Error::invalid(format!(
                "invalid account: {all} ({part} is out of range; expected ids from 0 to 4294967294)"
            ))),
        };
    }
    Ok(Id::Name(part.to_string()))
}

/// Parses `user[:group][,uid:gid]`.
pub fn parse(s: &str) -> Result<Spec> {
    let (main, fallback) = match s.split_once(',') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let fallback = match fallback {
        None => None,
        Some(f) => {
            let pair = f.split_once(':');
            match pair.and_then(|(u, g)| Some((number(u)?, number(g)?))) {
                Some(p) => Some(p),
                None => {
                    return Err(Error::invalid(format!(
                        "invalid account: {s} (the fallback after the comma must be numeric uid:gid; {EXPECTED})"
                    )))
                }
            }
        }
    };
    let (user, group) = match main.split_once(':') {
        Some((u, g)) => {
            if g.contains(':') {
                return Err(Error::invalid(format!(
                    "invalid account: {s} (too many colons; {EXPECTED})"
                )));
            }
            (id(u, s)?, Some(id(g, s)?))
        }
        None => (id(main, s)?, None),
    };
    Ok(Spec {
        user,
        group,
        fallback,
    })
}

impl Spec {
    /// Resolves the names (see the module doc for the rules).
    pub fn resolve(&self, db: &dyn Lookup) -> Result<Account> {
        let fb = self.fallback;
        // (uid, primary gid if known, passwd name for supplementary groups)
        let (uid, primary, member) = match &self.user {
            Id::Num(n) => match db.user_by_uid(*n)? {
                Some((name, g)) => (*n, Some(g), Some(name)),
                None => (*n, None, None),
            },
            Id::Name(name) => match db.user_by_name(name)? {
                Some((u, g)) => (u, Some(g), Some(name.clone())),
                None => match fb {
                    Some((u, _)) => (u, None, None),
                    None => return Err(Error::invalid(format!("unknown account: {name}"))),
                },
            },
        };
        let gid = match &self.group {
            Some(Id::Num(g)) => *g,
            Some(Id::Name(name)) => match db.group_by_name(name)? {
                Some(g) => g,
                None => match fb {
                    Some((_, g)) => g,
                    None => return Err(Error::invalid(format!("unknown group: {name}"))),
                },
            },
            None => primary.or(fb.map(|(_, g)| g)).unwrap_or(uid),
        };
        // numbers given for both sides are taken exactly: no memberships are added
        let member = match (&self.user, &self.group) {
            (Id::Num(_), Some(_)) => None,
            _ => member,
        };
        Ok(Account { uid, gid, member })
    }
}

impl Account {
    /// The supplementary groups: `gid` plus, for a passwd user, every /etc/group group that
    /// lists it (libc's getgrouplist). Without /etc/group, just `gid`.
    pub fn groups(&self) -> Result<Vec<Gid>> {
        let Some(name) = &self.member else {
            return Ok(vec![Gid::from_raw(self.gid)]);
        };
        let cname = std::ffi::CString::new(name.as_str())
            .map_err(|_| Error::invalid(format!("invalid account: {name} (NUL in the name)")))?;
        let mut groups = match nix::unistd::getgrouplist(&cname, Gid::from_raw(self.gid)) {
            Ok(g) => g,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => vec![Gid::from_raw(self.gid)],
            Err(e) => {
                return Err(Error::sys(
                    format_args!("read the groups of {name} in /etc/group"),
                    e,
                ))
            }
        };
        let mut seen = std::collections::HashSet::new();
        groups.retain(|g| seen.insert(*g));
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// daemon = uid 2, gid 2 (as in the SPEC, whatever the host says); no `unexisting`.
    struct Fixture;

    impl Lookup for Fixture {
        fn user_by_name(&self, name: &str) -> Result<Option<(u32, u32)>> {
            Ok(match name {
                "daemon" => Some((2, 2)),
                "root" => Some((0, 0)),
                "www" => Some((33, 34)),
                _ => None,
            })
        }
        fn user_by_uid(&self, uid: u32) -> Result<Option<(String, u32)>> {
            Ok(match uid {
                2 => Some(("daemon".to_string(), 2)),
                0 => Some(("root".to_string(), 0)),
                33 => Some(("www".to_string(), 34)),
                _ => None,
            })
        }
        fn group_by_name(&self, name: &str) -> Result<Option<u32>> {
            Ok(match name {
                "daemon" => Some(2),
                "root" => Some(0),
                "staff" => Some(50),
                _ => None,
            })
        }
    }

    fn resolve(s: &str) -> Result<Account> {
        parse(s)?.resolve(&Fixture)
    }

    #[test]
    fn spec_table() {
        // SPEC section 5, in order
        let table = [
            ("daemon", (2, 2)),
            ("daemon,3:4", (2, 2)),
            ("2:2,3:4", (2, 2)),
            ("daemon:11111,3:4", (2, 11111)),
            ("11111:daemon,3:4", (11111, 2)),
            ("daemon:daemon,3:4", (2, 2)),
            ("daemon:unexisting,3:4", (2, 4)),
            ("unexisting:daemon,3:4", (3, 2)),
            ("11111:11111,3:4", (11111, 11111)),
        ];
        for (spec, (uid, gid)) in table {
            let a = resolve(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!((a.uid, a.gid), (uid, gid), "{spec}");
        }
    }

    #[test]
    fn more_cases() {
        let table = [
            ("www", (33, 34), Some("www")),
            ("33", (33, 34), Some("www")),
            ("www:staff", (33, 50), Some("www")),
            ("www:0", (33, 0), Some("www")),
            ("33:50", (33, 50), None),
            ("12345:23456", (12345, 23456), None),
            ("12345", (12345, 12345), None),
            ("12345,3:4", (12345, 4), None),
            ("unexisting,3:4", (3, 4), None),
            ("0", (0, 0), Some("root")),
            ("root:staff", (0, 50), Some("root")),
        ];
        for (spec, (uid, gid), member) in table {
            let a = resolve(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!((a.uid, a.gid), (uid, gid), "{spec}");
            assert_eq!(a.member.as_deref(), member, "{spec}");
        }
    }

    #[test]
    fn unknown_names() {
        let table = [
            ("bob", "unknown account: bob"),
            ("bob:daemon", "unknown account: bob"),
            ("daemon:nogroup", "unknown group: nogroup"),
            ("12:nogroup", "unknown group: nogroup"),
        ];
        for (spec, msg) in table {
            let e = resolve(spec).expect_err(spec);
            assert_eq!(e.message, msg, "{spec}");
            assert_eq!(e.code, 100, "{spec}");
        }
    }

    #[test]
    fn malformed() {
        let table = [
            ("", "empty name"),
            (":daemon", "empty name"),
            ("daemon:", "empty name"),
            ("a:b:c", "too many colons"),
            ("daemon,3", "fallback"),
            ("daemon,a:b", "fallback"),
            ("daemon,3:", "fallback"),
            ("daemon,3:4:5", "fallback"),
            ("daemon,3:4,5:6", "fallback"),
            ("4294967295", "out of range"),
            ("99999999999", "out of range"),
            ("daemon,4294967295:0", "fallback"),
        ];
        for (spec, why) in table {
            let e = parse(spec).expect_err(spec);
            assert!(
                e.message.starts_with(&format!("invalid account: {spec} (")),
                "{spec}: {}",
                e.message
            );
            assert!(e.message.contains(why), "{spec}: {}", e.message);
            assert_eq!(e.code, 100);
        }
    }

    #[test]
    fn numeric_groups_without_lookup() {
        let a = Account {
            uid: 12345,
            gid: 23456,
            member: None,
        };
        assert_eq!(a.groups().unwrap(), vec![Gid::from_raw(23456)]);
    }
}
