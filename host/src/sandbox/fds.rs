//! Process-wide file descriptors: every call's files and sockets share the
//! process's RLIMIT_NOFILE with the server's listener, its connections and
//! the audit database.
//!
//! - At start the soft limit is raised to the hard limit
//!   ([`raise_nofile_limit`]).
//! - Each call holds at most `max_handles` resources (its own table cap).
//! - Before a call opens a file or creates a socket, [`check_reserve`]
//!   refuses it when the process is within [`FD_RESERVE`] descriptors of the
//!   soft limit, so the server can always accept a connection and write the
//!   audit log. The check is the lowest free descriptor number (the kernel
//!   always hands out the lowest one, so when it is that high nearly every
//!   descriptor below it is in use); it costs two syscalls and never refuses
//!   while the process is far from the limit.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Descriptors kept free for the server (accept, audit, logs) whatever the
/// calls in flight hold.
pub const FD_RESERVE: u64 = 256;

/// The soft RLIMIT_NOFILE after [`raise_nofile_limit`]; 0 until known.
static SOFT_LIMIT: AtomicU64 = AtomicU64::new(0);

/// A call's file or socket refused because a handle limit was reached.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HandleLimitExceeded {
    /// `max_handles` or `process_fd_reserve`.
    pub limit: &'static str,
    /// The configured value (handles, or the soft RLIMIT_NOFILE).
    pub configured: u64,
    /// What the refused request would have reached.
    pub requested: u64,
    pub message: String,
}

// `rlim_t` is not u64 on every platform.
#[allow(clippy::unnecessary_cast)]
fn current_limit() -> Option<(u64, u64)> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0).then_some((r.rlim_cur as u64, r.rlim_max as u64))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (once per process) and
/// returns (soft, hard) as they are afterwards.
pub fn raise_nofile_limit() -> Option<(u64, u64)> {
    static DONE: OnceLock<Option<(u64, u64)>> = OnceLock::new();
    *DONE.get_or_init(|| {
        let (soft, hard) = current_limit()?;
        if soft < hard {
            let r = libc::rlimit { rlim_cur: hard as libc::rlim_t, rlim_max: hard as libc::rlim_t };
            // SAFETY: setrlimit reads the struct we own.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
                tracing::warn!(soft, hard, error = %std::io::Error::last_os_error(), "cannot raise the open file limit to its hard limit");
            }
        }
        let (soft, hard) = current_limit()?;
        SOFT_LIMIT.store(soft, Ordering::Relaxed);
        tracing::debug!(soft, hard, reserve = FD_RESERVE, "open file limit");
        Some((soft, hard))
    })
}

/// The lowest descriptor number the kernel would hand out now.
pub fn lowest_free_fd() -> Option<u64> {
    static PROBE: OnceLock<Option<std::fs::File>> = OnceLock::new();
    let probe = PROBE.get_or_init(|| std::fs::File::open("/dev/null").ok()).as_ref()?;
    // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor we own; the copy is
    // closed right away.
    let fd = unsafe { libc::fcntl(probe.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        // EMFILE: no descriptor is free at all.
        return Some(u64::MAX);
    }
    // SAFETY: `fd` is the copy made above, owned by nobody else.
    unsafe { libc::close(fd) };
    Some(fd as u64)
}

/// Refuses a new file or socket when the process is within [`FD_RESERVE`]
/// descriptors of its soft limit.
pub fn check_reserve() -> Result<(), HandleLimitExceeded> {
    let soft = match SOFT_LIMIT.load(Ordering::Relaxed) {
        0 => match raise_nofile_limit() {
            Some((soft, _)) => soft,
            None => return Ok(()),
        },
        s => s,
    };
    check_against(lowest_free_fd(), soft)
}

fn check_against(lowest_free: Option<u64>, soft: u64) -> Result<(), HandleLimitExceeded> {
    let Some(lowest) = lowest_free else { return Ok(()) };
    if lowest.saturating_add(FD_RESERVE) < soft {
        return Ok(());
    }
    Err(HandleLimitExceeded {
        limit: "process_fd_reserve",
        configured: soft,
        requested: lowest.saturating_add(1),
        message: format!(
            "the host process is within {FD_RESERVE} descriptors of its open file limit ({soft}); the call's new file or socket was refused to keep the server able to accept and audit. Lower [tool.limits] max_handles or [runtime] max_concurrent_calls, or raise the hard RLIMIT_NOFILE (ulimit -Hn)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_refuses_only_near_the_soft_limit() {
        // (lowest free fd, soft limit, allowed)
        let cases = [
            (Some(3), 1024, true),
            (Some(767), 1024, true),
            (Some(768), 1024, false),
            (Some(u64::MAX), 1024, false),
            (Some(10), 100, false),
            (None, 1024, true),
        ];
        for (lowest, soft, ok) in cases {
            let r = check_against(lowest, soft);
            assert_eq!(r.is_ok(), ok, "lowest {lowest:?} soft {soft}");
            if let Err(e) = r {
                assert_eq!(e.limit, "process_fd_reserve");
                assert!(e.message.contains("max_handles") && e.message.contains(&soft.to_string()), "{}", e.message);
            }
        }
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let (soft, hard) = raise_nofile_limit().expect("getrlimit works on this platform");
        // Linux lets an unprivileged process raise its soft limit to the hard one.
        assert_eq!(soft, hard);
        let lowest = lowest_free_fd().expect("/dev/null opens");
        assert!(lowest < soft);
        assert!(check_reserve().is_ok(), "a test process is far from its limit");
    }
}
