//! Tell a policy refusal from an ordinary failure.
//!
//! When the operator's policy refuses something, the tool sees the
//! runtime's usual error for it, not a special one. What a denial looks
//! like, per capability:
//!
//! - files (`std::fs`): an [`std::io::Error`] of kind `PermissionDenied`
//!   or `ReadOnlyFilesystem` (wasi errno `access`, `not-permitted` or
//!   `read-only`);
//! - sockets (`std::net`): an [`std::io::Error`] of kind
//!   `PermissionDenied` (`wasi:sockets` error code `access-denied`);
//! - outgoing HTTP ([`crate::http`]): [`HttpError::Denied`] for a host off
//!   `allowed_network_hosts` (`wasi:http` error code `HTTP-request-denied`),
//!   or `HttpError::Failed(DestinationIpProhibited)` for a private address
//!   under `block_private_ips`;
//! - programs ([`crate::process`]): [`ProcessError::Denied`] (the
//!   `wasmward:tool/process` error `denied(rule)`).
//!
//! [`is_denied`] answers for any of them, and for a boxed error whose
//! source chain holds one. The host also writes an audit row for each
//! denial, whatever the tool does with the error. The helper cannot tell
//! a policy refusal from the host's own file permissions refusing inside
//! a granted directory (a file the host user cannot read): both reach the
//! tool as the same errno. That is rare, and the operator's concern.
//!
//! ```ignore
//! use wasmward_sdk::is_denied;
//! match std::fs::read_to_string("/data/notes.txt") {
//!     Ok(text) => Ok(text),
//!     Err(e) if is_denied(&e) => Err("not allowed to read /data/notes.txt; ask the operator to grant it".into()),
//!     Err(e) => Err(format!("cannot read /data/notes.txt: {e}")),
//! }
//! ```

use crate::http::HttpError;
use crate::process::ProcessError;
use std::io;

/// wasi-libc errno values (`wasi:filesystem` error codes as `std` sees
/// them): `access`, `not-permitted`, `read-only`.
#[cfg(target_os = "wasi")]
const DENIED_ERRNOS: [i32; 3] = [2, 63, 69];
/// The same errnos on a Unix build of the tool's own tests.
#[cfg(all(unix, not(target_os = "wasi")))]
const DENIED_ERRNOS: [i32; 3] = [13, 1, 30];
#[cfg(not(any(unix, target_os = "wasi")))]
const DENIED_ERRNOS: [i32; 0] = [];

/// An error that may be a policy denial. Implemented for
/// [`std::io::Error`], [`io::ErrorKind`], [`HttpError`], [`ProcessError`]
/// and `dyn std::error::Error` (which looks through the source chain).
pub trait Denial {
    /// True when the operator's policy refused the operation.
    fn is_denied(&self) -> bool;
}

impl Denial for io::ErrorKind {
    fn is_denied(&self) -> bool {
        matches!(self, io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem)
    }
}

impl Denial for io::Error {
    fn is_denied(&self) -> bool {
        if self.kind().is_denied() {
            return true;
        }
        if let Some(code) = self.raw_os_error() {
            return DENIED_ERRNOS.contains(&code);
        }
        // An io::Error wrapping one of ours (a helper that returns io).
        self.get_ref().is_some_and(|inner| {
            let inner: &(dyn std::error::Error + 'static) = inner;
            inner.is_denied()
        })
    }
}

impl Denial for HttpError {
    fn is_denied(&self) -> bool {
        // A private address refused under `block_private_ips` keeps its own
        // code (the tool may say which); it is a denial all the same.
        matches!(self, HttpError::Denied | HttpError::Failed(crate::bindings::wasi::http::types::ErrorCode::DestinationIpProhibited))
    }
}

impl Denial for ProcessError {
    fn is_denied(&self) -> bool {
        matches!(self, ProcessError::Denied(_))
    }
}

impl Denial for dyn std::error::Error + 'static {
    fn is_denied(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = next {
            let denied = if let Some(e) = e.downcast_ref::<io::Error>() {
                e.is_denied()
            } else if let Some(e) = e.downcast_ref::<HttpError>() {
                e.is_denied()
            } else if let Some(e) = e.downcast_ref::<ProcessError>() {
                e.is_denied()
            } else {
                false
            };
            if denied {
                return true;
            }
            next = e.source();
        }
        false
    }
}

impl Denial for dyn std::error::Error + Send + Sync + 'static {
    fn is_denied(&self) -> bool {
        let e: &(dyn std::error::Error + 'static) = self;
        e.is_denied()
    }
}

impl<T: Denial + ?Sized> Denial for Box<T> {
    fn is_denied(&self) -> bool {
        (**self).is_denied()
    }
}

impl<T: Denial + ?Sized> Denial for &T {
    fn is_denied(&self) -> bool {
        (**self).is_denied()
    }
}

/// True when `err` is the operator's policy refusing the operation (see
/// the [module docs](self) for what a denial looks like per capability).
///
/// ```ignore
/// match wasmward_sdk::http::get("https://example.com/") {
///     Err(e) if wasmward_sdk::is_denied(&e) => { /* the policy said no */ }
///     other => { /* a response, or an ordinary failure */ }
/// }
/// ```
pub fn is_denied<E: Denial + ?Sized>(err: &E) -> bool {
    err.is_denied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_told_from_ordinary_failures() {
        let io_cases = [
            (io::Error::from(io::ErrorKind::PermissionDenied), true),
            (io::Error::from(io::ErrorKind::ReadOnlyFilesystem), true),
            (io::Error::from_raw_os_error(DENIED_ERRNOS[0]), true),
            (io::Error::from(io::ErrorKind::NotFound), false),
            (io::Error::other("boom"), false),
            (io::Error::other(ProcessError::Denied("rule".into())), true),
            (io::Error::other(HttpError::Denied), true),
        ];
        for (e, want) in io_cases {
            assert_eq!(is_denied(&e), want, "{e:?}");
        }
        assert!(is_denied(&HttpError::Denied));
        assert!(is_denied(&HttpError::Failed(crate::bindings::wasi::http::types::ErrorCode::DestinationIpProhibited)));
        assert!(!is_denied(&HttpError::Failed(crate::bindings::wasi::http::types::ErrorCode::ConnectionRefused)));
        assert!(!is_denied(&HttpError::InvalidUrl("x".into())));
        assert!(is_denied(&ProcessError::Denied("not in subprocess_allowlist".into())));
        assert!(!is_denied(&ProcessError::Timeout));
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(is_denied(&boxed));
        let boxed: Box<dyn std::error::Error> = "plain".into();
        assert!(!is_denied(&boxed));
    }
}
