//! How to run a script file (cont-init.d, cont-finish.d, run, finish): directly when it is
//! executable, and through the interpreter on its `#!` line when it lost its execute bit
//! (images built from a checkout that lost its modes keep working; the caller warns).

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

use crate::error::{Error, Result};

/// What to execute for a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The program to exec.
    pub program: PathBuf,
    /// Arguments that come before the caller's own (argv[1..]): the script path when run
    /// through its interpreter.
    pub args: Vec<OsString>,
    /// True when the script lacks its execute bit and runs through its `#!` line.
    pub via_interpreter: bool,
}

/// Decides how to run `path`.
pub fn plan(path: &Path) -> Result<Plan> {
    if access(path, AccessFlags::X_OK).is_ok() {
        return Ok(Plan {
            program: path.to_path_buf(),
            args: Vec::new(),
            via_interpreter: false,
        });
    }
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| Error::io(format_args!("read {}", path.display()), &e))?;
    let head = &head[..n];
    let Some(line) = head.strip_prefix(b"#!") else {
        return Err(Error::invalid(format!(
            "{}: not executable and has no #! line (chmod +x it)",
            path.display()
        )));
    };
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let text = std::ffi::OsStr::from_bytes(line)
        .to_string_lossy()
        .trim()
        .to_string();
    // as the kernel does: the interpreter, then at most one argument (the rest of the line)
    let (interp, arg) = match text.split_once([' ', '\t']) {
        Some((i, a)) => (i.to_string(), Some(a.trim().to_string())),
        None => (text.clone(), None),
    };
    if interp.is_empty() {
        return Err(Error::invalid(format!("{}: empty #! line", path.display())));
    }
    let mut args: Vec<OsString> = arg
        .into_iter()
        .filter(|a| !a.is_empty())
        .map(OsString::from)
        .collect();
    args.push(path.as_os_str().to_owned());
    Ok(Plan {
        program: PathBuf::from(interp),
        args,
        via_interpreter: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn executable_or_shebang() {
        let d = std::env::temp_dir().join(format!("libcustos-script-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("s");
        std::fs::write(&p, "#!/bin/sh -e\necho hi\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!plan(&p).unwrap().via_interpreter);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        // root may execute anything with any x bit; with none, access(X_OK) fails even for root
        let pl = plan(&p).unwrap();
        assert!(pl.via_interpreter);
        assert_eq!(pl.program, PathBuf::from("/bin/sh"));
        assert_eq!(
            pl.args,
            vec![OsString::from("-e"), p.clone().into_os_string()]
        );
        std::fs::write(&p, "echo no shebang\n").unwrap();
        assert!(plan(&p).unwrap_err().message.contains("no #! line"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
