//! `svctl up|down|once|restart|kill|pause|cont`: one command byte (libcustos::control) to
//! each service's `supervise/control` FIFO, as s6-svc does.
//!
//! Every NAME is checked first (it exists, it is supervised, its FIFO is ours to write), so
//! a typo in the third name does not leave the first two already told.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use libcustos::control::{self, Command, SendError};
use libcustos::error::{Error, Result};
use libcustos::{lock, paths};
use nix::errno::Errno;
use nix::unistd::{access, AccessFlags};

use crate::target::{self, Roots, Target};

pub fn not_supervised(name: &str) -> Error {
    Error::invalid(format!("{name}: not supervised"))
}

/// `NAME: permission denied: only the owner of the supervision tree (uid U) may WHAT`, U being
/// the owner of the FIFO.
pub fn permission_denied(name: &str, fifo: &Path, what: &str) -> Error {
    let owner = std::fs::metadata(fifo)
        .map(|m| m.uid().to_string())
        .unwrap_or_else(|_| "?".into());
    Error::invalid(format!(
        "{name}: permission denied: only the owner of the supervision tree (uid {owner}) may {what}"
    ))
}

/// What a failed send means for NAME.
pub fn send_error(name: &str, fifo: &Path, what: &str, e: SendError) -> Error {
    match e {
        SendError::NotSupervised => not_supervised(name),
        SendError::PermissionDenied => permission_denied(name, fifo, what),
        SendError::Other(e) => e,
    }
}

/// Refuses, before anything is sent, a service that nobody supervises or whose FIFO we may
/// not write.
fn check_controllable(t: &Target) -> Result<()> {
    if !lock::is_held(&t.path) {
        return Err(not_supervised(&t.name));
    }
    let fifo = t.path.join(paths::SUPERVISE_CONTROL);
    match access(&fifo, AccessFlags::W_OK) {
        Ok(()) => Ok(()),
        Err(Errno::EACCES | Errno::EPERM | Errno::EROFS) => {
            Err(permission_denied(&t.name, &fifo, "control it"))
        }
        Err(Errno::ENOENT | Errno::ENOTDIR) => Err(not_supervised(&t.name)),
        Err(e) => Err(Error::sys(format_args!("access {}", fifo.display()), e)),
    }
}

/// Sends `command` to every service named.
pub fn run(command: Command, names: &[String], roots: &Roots) -> Result<u8> {
    let targets = names
        .iter()
        .map(|n| target::resolve(n, roots))
        .collect::<Result<Vec<_>>>()?;
    for t in &targets {
        check_controllable(t)?;
    }
    let bytes = command.encode();
    for t in &targets {
        let fifo = t.path.join(paths::SUPERVISE_CONTROL);
        control::send(&fifo, &bytes).map_err(|e| send_error(&t.name, &fifo, "control it", e))?;
    }
    Ok(libcustos::exit::OK)
}
