//! The fix-attrs.d line format: `PATH RECURSE ACCOUNT FMODE DMODE`, whitespace separated;
//! blank lines and lines starting with `#` are ignored, and so is anything from a field that
//! starts with `#`. Every error carries `FILE:LINE` and says what was expected.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use libcustos::account::{self, Account, Lookup};
use libcustos::error::Error;

const FIELDS: &str = "PATH RECURSE ACCOUNT FMODE DMODE";

/// One entry, its account resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it was written: `FILE:LINE`.
    pub origin: String,
    pub path: PathBuf,
    pub recurse: bool,
    pub account: Account,
    /// Applied to everything that is not a folder (or a symbolic link).
    pub fmode: u32,
    /// Applied to folders.
    pub dmode: u32,
}

/// A line as written, before its account is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub path: PathBuf,
    pub recurse: bool,
    pub account: account::Spec,
    pub fmode: u32,
    pub dmode: u32,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An octal mode from 0 to 7777.
fn mode(field: &[u8], which: &str) -> Result<u32, String> {
    let s = std::str::from_utf8(field)
        .ok()
        .filter(|s| s.bytes().all(|b| (b'0'..=b'7').contains(&b)));
    match s
        .and_then(|s| u32::from_str_radix(s, 8).ok())
        .filter(|&m| m <= 0o7777)
    {
        Some(m) => Ok(m),
        None => Err(format!(
            "invalid {which}: {} (expected an octal mode from 0 to 7777, e.g. 0644)",
            text(field)
        )),
    }
}

/// Parses one line: Ok(None) for a blank or comment line; Err is the message without
/// `FILE:LINE: `.
pub fn parse_line(line: &[u8]) -> Result<Option<Line>, String> {
    let mut fields: Vec<&[u8]> = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .collect();
    if let Some(i) = fields.iter().position(|f| f.starts_with(b"#")) {
        fields.truncate(i);
    }
    if fields.is_empty() {
        return Ok(None);
    }
    if fields.len() != 5 {
        let how = if fields.len() < 5 {
            "too few"
        } else {
            "too many"
        };
        return Err(format!(
            "{how} fields: {} (expected 5: {FIELDS})",
            fields.len()
        ));
    }
    let (path, recurse, account, fmode, dmode) =
        (fields[0], fields[1], fields[2], fields[3], fields[4]);
    if !path.starts_with(b"/") {
        return Err(format!(
            "relative PATH: {} (expected an absolute path)",
            text(path)
        ));
    }
    if path.contains(&0) {
        return Err(format!(
            "invalid PATH: {} (expected no NUL byte)",
            text(path)
        ));
    }
    let recurse = match recurse {
        b"true" => true,
        b"false" => false,
        other => {
            return Err(format!(
                "invalid RECURSE: {} (expected true or false)",
                text(other)
            ))
        }
    };
    let account = match std::str::from_utf8(account) {
        Ok(s) => account::parse(s).map_err(|e| e.message)?,
        Err(_) => {
            return Err(format!(
                "invalid account: {} (expected user[:group][,uid:gid])",
                text(account)
            ))
        }
    };
    Ok(Some(Line {
        path: PathBuf::from(OsStr::from_bytes(path)),
        recurse,
        account,
        fmode: mode(fmode, "FMODE")?,
        dmode: mode(dmode, "DMODE")?,
    }))
}

/// Parses a whole file and resolves its accounts. Returns the entries and one error per bad
/// line (all of them, not just the first).
pub fn parse_file(name: &str, content: &[u8], db: &dyn Lookup) -> (Vec<Entry>, Vec<Error>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in content.split(|&b| b == b'\n').enumerate() {
        let origin = format!("{name}:{}", i + 1);
        let line = match parse_line(raw) {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(why) => {
                errors.push(Error::invalid(format!("{origin}: {why}")));
                continue;
            }
        };
        match line.account.resolve(db) {
            Ok(account) => entries.push(Entry {
                origin,
                path: line.path,
                recurse: line.recurse,
                account,
                fmode: line.fmode,
                dmode: line.dmode,
            }),
            Err(mut e) => {
                if e.code == libcustos::exit::USAGE {
                    e.message.push_str(
                        " (expected a name known to the system, a number, or a ,uid:gid fallback)",
                    );
                }
                e.message = format!("{origin}: {}", e.message);
                errors.push(e);
            }
        }
    }
    (entries, errors)
}

/// Reads and parses every file, printing one fatal message per bad line or unreadable file.
/// Err is the exit code (100 for bad lines, 111 if a file could not be read).
pub fn parse_files(files: &[PathBuf]) -> Result<Vec<Entry>, u8> {
    let mut entries = Vec::new();
    let mut worst = 0u8;
    for file in files {
        let name = file.to_string_lossy();
        let content = match std::fs::read(file) {
            Ok(c) => c,
            Err(e) => {
                libcustos::fatal!("{}", Error::io(format_args!("read {name}"), &e).message);
                worst = worst.max(libcustos::exit::SYSTEM);
                continue;
            }
        };
        let (mut found, errors) = parse_file(&name, &content, &account::System);
        for e in &errors {
            libcustos::fatal!("{}", e.message);
            worst = worst.max(e.code);
        }
        entries.append(&mut found);
    }
    if worst != 0 {
        return Err(worst);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcustos::account::Account;
    use libcustos::error::Result;

    struct Fixture;

    impl Lookup for Fixture {
        fn user_by_name(&self, name: &str) -> Result<Option<(u32, u32)>> {
            Ok((name == "daemon").then_some((2, 2)))
        }
        fn user_by_uid(&self, uid: u32) -> Result<Option<(String, u32)>> {
            Ok((uid == 2).then(|| ("daemon".to_string(), 2)))
        }
        fn group_by_name(&self, name: &str) -> Result<Option<u32>> {
            Ok((name == "daemon").then_some(2))
        }
    }

    #[test]
    fn good_lines() {
        let (entries, errors) = parse_file(
            "f",
            b"# a comment\n\n   \n/var/log/app true daemon 0644 0755\n\t/srv false 12:34,1:1 600 700 # trailing\r\n  # indented comment\n/x false unexisting:daemon,3:4 4755 2775",
            &Fixture,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            entries,
            vec![
                Entry {
                    origin: "f:4".into(),
                    path: "/var/log/app".into(),
                    recurse: true,
                    account: Account {
                        uid: 2,
                        gid: 2,
                        member: Some("daemon".into())
                    },
                    fmode: 0o644,
                    dmode: 0o755,
                },
                Entry {
                    origin: "f:5".into(),
                    path: "/srv".into(),
                    recurse: false,
                    account: Account {
                        uid: 12,
                        gid: 34,
                        member: None
                    },
                    fmode: 0o600,
                    dmode: 0o700,
                },
                Entry {
                    origin: "f:7".into(),
                    path: "/x".into(),
                    recurse: false,
                    account: Account {
                        uid: 3,
                        gid: 2,
                        member: None
                    },
                    fmode: 0o4755,
                    dmode: 0o2775,
                },
            ]
        );
    }

    #[test]
    fn bad_lines() {
        // (line, start of the message after "f:1: ", a word of what is expected)
        let table: [(&[u8], &str, &str); 16] = [
            (
                b"/x true daemon 0644",
                "too few fields: 4",
                "expected 5: PATH RECURSE",
            ),
            (b"/x", "too few fields: 1", "expected 5"),
            (
                b"/x true daemon 0644 0755 extra",
                "too many fields: 6",
                "expected 5",
            ),
            (
                b"x true daemon 0644 0755",
                "relative PATH: x",
                "expected an absolute path",
            ),
            (
                b"/x yes daemon 0644 0755",
                "invalid RECURSE: yes",
                "expected true or false",
            ),
            (
                b"/x TRUE daemon 0644 0755",
                "invalid RECURSE: TRUE",
                "expected true or false",
            ),
            (
                b"/x true daemon 0648 0755",
                "invalid FMODE: 0648",
                "expected an octal mode",
            ),
            (
                b"/x true daemon 0644 rwx",
                "invalid DMODE: rwx",
                "expected an octal mode",
            ),
            (
                b"/x true daemon 17777 0755",
                "invalid FMODE: 17777",
                "from 0 to 7777",
            ),
            (
                b"/x true daemon -644 0755",
                "invalid FMODE: -644",
                "expected an octal mode",
            ),
            (
                b"/x true :daemon 0644 0755",
                "invalid account: :daemon",
                "expected user[:group][,uid:gid]",
            ),
            (
                b"/x true daemon,3 0644 0755",
                "invalid account: daemon,3",
                "expected user[:group][,uid:gid]",
            ),
            (
                b"/x true a:b:c 0644 0755",
                "invalid account: a:b:c",
                "too many colons",
            ),
            (
                b"/x true unexisting 0644 0755",
                "unknown account: unexisting",
                "fallback",
            ),
            (
                b"/x true daemon:nogroup 0644 0755",
                "unknown group: nogroup",
                "fallback",
            ),
            (
                b"/x true 4294967296 0644 0755",
                "invalid account: 4294967296",
                "out of range",
            ),
        ];
        for (line, msg, expected) in table {
            let (entries, errors) = parse_file("f", line, &Fixture);
            let shown = String::from_utf8_lossy(line);
            assert!(entries.is_empty(), "{shown}");
            assert_eq!(errors.len(), 1, "{shown}");
            let m = &errors[0].message;
            assert!(m.starts_with(&format!("f:1: {msg}")), "{shown}: {m}");
            assert!(m.contains(expected), "{shown}: {m}");
            assert!(m.contains("expected"), "{shown}: {m}");
            assert_eq!(errors[0].code, 100, "{shown}");
        }
    }

    #[test]
    fn every_bad_line_is_reported() {
        let (entries, errors) = parse_file(
            "/etc/fix-attrs.d/01",
            b"/a true daemon 0644 0755\n/b maybe daemon 0644 0755\n\n/c true daemon 9 0755\n",
            &Fixture,
        );
        assert_eq!(entries.len(), 1);
        let lines: Vec<&str> = errors
            .iter()
            .map(|e| e.message.split(' ').next().unwrap_or(""))
            .collect();
        assert_eq!(lines, ["/etc/fix-attrs.d/01:2:", "/etc/fix-attrs.d/01:4:"]);
    }
}
