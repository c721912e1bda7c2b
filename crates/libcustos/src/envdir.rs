//! Environment folders: one file per variable.
//!
//! `container_environment/` is written as s6-overlay writes it: the file's name is the variable,
//! its content the value followed by one newline. Whoever reads a file takes its content less
//! one trailing newline, if there is one, so `echo v > X` and `printf v > X` both mean `X=v`
//! and every value round-trips byte for byte (newlines, `=`, non-UTF-8 bytes). A service's
//! `env/` folder is read the same way.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// A name that can be a file name in an env folder: not empty, no `/`, not `.` or `..`,
/// and no `=` (it could not come back as a variable).
pub fn storable_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b != b"."
        && b != b".."
        && !b.contains(&b'/')
        && !b.contains(&b'=')
        && !b.contains(&0)
}

/// Writes every variable into `dir` (which must exist). Returns the names that cannot be files.
pub fn write_all<I>(dir: &Path, vars: I) -> Result<Vec<OsString>>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut skipped = Vec::new();
    for (name, value) in vars {
        if !storable_name(&name) {
            skipped.push(name);
            continue;
        }
        write_one(dir, &name, &value)?;
    }
    Ok(skipped)
}

/// Writes one variable file: VALUE followed by a newline.
pub fn write_one(dir: &Path, name: &OsStr, value: &OsStr) -> Result<()> {
    let path = dir.join(name);
    let mut content = Vec::with_capacity(value.len() + 1);
    content.extend_from_slice(value.as_bytes());
    content.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&path)
        .map_err(|e| Error::io(format_args!("create {}", path.display()), &e))?;
    f.write_all(&content)
        .map_err(|e| Error::io(format_args!("write {}", path.display()), &e))
}

/// The value stored in a file's content: the content less one trailing newline.
pub fn value_of(mut content: Vec<u8>) -> OsString {
    if content.last() == Some(&b'\n') {
        content.pop();
    }
    OsString::from_vec(content)
}

/// Reads every variable of `dir`, sorted by name. Names beginning with `.` are skipped
/// (editors' and tools' temporary files), and so is anything that is not a regular file (a
/// FIFO there must never block PID 1).
pub fn read_all(dir: &Path) -> Result<Vec<(OsString, OsString)>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format_args!("read {}", dir.display()), &e))?;
    let mut vars = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(format_args!("read {}", dir.display()), &e))?;
        let name = entry.file_name();
        if name.as_bytes().first() == Some(&b'.') || !storable_name(&name) {
            continue;
        }
        let path = entry.path();
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let content = std::fs::read(&path)
            .map_err(|e| Error::io(format_args!("read {}", path.display()), &e))?;
        vars.push((name, value_of(content)));
    }
    vars.sort();
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_byte_exact() {
        let dir = std::env::temp_dir().join(format!("libcustos-envdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let values: Vec<(OsString, OsString)> = vec![
            ("PLAIN".into(), "v".into()),
            ("EMPTY".into(), "".into()),
            ("NEWLINES".into(), "a\nb\n\n".into()),
            ("EQUALS".into(), "a=b=c".into()),
            ("BYTES".into(), OsString::from_vec(vec![0xff, 0xfe, b'x'])),
        ];
        let skipped = write_all(
            &dir,
            values
                .clone()
                .into_iter()
                .chain([("A/B".into(), "x".into())]),
        )
        .unwrap();
        assert_eq!(skipped, vec![OsString::from("A/B")]);
        let mut expected = values;
        expected.sort();
        assert_eq!(read_all(&dir).unwrap(), expected);
        nix::unistd::mkfifo(
            &dir.join("FIFO"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::fs::write(dir.join("ECHO"), "v\n").unwrap();
        std::fs::write(dir.join("PRINTF"), "v").unwrap();
        let got = read_all(&dir).unwrap();
        assert!(got.contains(&("ECHO".into(), "v".into())));
        assert!(got.contains(&("PRINTF".into(), "v".into())));
        assert!(
            !got.iter().any(|(k, _)| k == "FIFO"),
            "a FIFO is skipped, never read"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names() {
        assert!(storable_name(OsStr::new("PATH")));
        for bad in ["", ".", "..", "a/b", "a=b"] {
            assert!(!storable_name(OsStr::new(bad)), "{bad}");
        }
    }
}
