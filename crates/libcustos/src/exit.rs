//! The exit-code vocabulary shared by every custos binary (STYLE section 7).

/// Success.
pub const OK: u8 = 0;
/// A negative answer that is not an error (`svctl check`: unhealthy).
pub const NEGATIVE: u8 = 1;
/// A wait timed out (`svctl wait`, as s6-svwait).
pub const TIMEOUT: u8 = 99;
/// Wrong usage or invalid input, including "not supervised".
pub const USAGE: u8 = 100;
/// A bug: something that cannot happen did.
pub const INTERNAL: u8 = 101;
/// A system call failed.
pub const SYSTEM: u8 = 111;
/// `finish` exit code meaning "do not restart".
pub const FINISH_STAY_DOWN: i32 = 125;
/// exec failed: the file is there but cannot be executed.
pub const EXEC_NOT_EXECUTABLE: u8 = 126;
/// exec failed: the file is not there.
pub const EXEC_NOT_FOUND: u8 = 127;

/// The shell's rule for a process killed by signal `sig`.
pub fn signaled(sig: i32) -> u8 {
    (128 + sig).clamp(0, 255) as u8
}

/// The exit code for an exec that failed with `errno`.
pub fn exec_failure(errno: nix::errno::Errno) -> u8 {
    match errno {
        nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => EXEC_NOT_FOUND,
        _ => EXEC_NOT_EXECUTABLE,
    }
}
