//! The change of identity, in s6-applyuidgid's order: supplementary groups, gid, (bounding
//! set and PR_SET_KEEPCAPS with --caps), uid, then the kept capabilities. Each step that
//! fails stops everything with `unable to STEP: REASON` (111).

use std::collections::BTreeSet;

use caps::Capability;
use nix::unistd::{Gid, Uid};

use libcustos::account::Account;
use libcustos::error::{Error, Result};

use crate::capabilities as keep_caps;

pub fn become_account(account: &Account, keep: Option<&[Capability]>) -> Result<()> {
    let groups = account.groups()?;
    if let Some(keep) = keep {
        keep_caps::check_held(keep)?;
    }
    set_groups(&groups, account.gid)?;
    let gid = Gid::from_raw(account.gid);
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| Error::sys(format_args!("set gid to {gid}"), e))?;
    if let Some(keep) = keep {
        // while still privileged: dropping from the bounding set needs CAP_SETPCAP
        keep_caps::limit_bounding(keep)?;
        nix::sys::prctl::set_keepcaps(true).map_err(|e| {
            Error::sys(
                "keep capabilities across the uid change (PR_SET_KEEPCAPS)",
                e,
            )
        })?;
    }
    let uid = Uid::from_raw(account.uid);
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| Error::sys(format_args!("set uid to {uid}"), e))?;
    if let Some(keep) = keep {
        keep_caps::set_exactly(keep)?;
    }
    Ok(())
}

/// setgroups, unless the process already has exactly those groups: a user who is not root
/// may "become" itself (setgroups needs CAP_SETGID even to change nothing).
fn set_groups(groups: &[Gid], gid: u32) -> Result<()> {
    let wanted: BTreeSet<u32> = groups.iter().map(|g| g.as_raw()).collect();
    if !nix::unistd::geteuid().is_root() {
        if let Ok(current) = nix::unistd::getgroups() {
            // what access checks will see once the gid is set: gid plus the supplementary list
            let mut current: BTreeSet<u32> = current.iter().map(|g| g.as_raw()).collect();
            current.insert(gid);
            let mut wanted = wanted;
            wanted.insert(gid);
            if current == wanted {
                return Ok(());
            }
        }
    }
    let list = groups
        .iter()
        .map(|g| g.to_string())
        .collect::<Vec<_>>()
        .join(",");
    nix::unistd::setgroups(groups)
        .map_err(|e| Error::sys(format_args!("set supplementary groups to {list}"), e))
}
