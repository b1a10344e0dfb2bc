//! The policy as plain data plus the matching logic: host patterns, IP
//! classes, path rules, import patterns, and how a tool's policy is bounded
//! by the operator's ceiling. No wasmtime here; `sandbox/` and `component/`
//! turn an [`EffectivePolicy`] into capabilities.
//!
//! ```ignore
//! let ceiling: PolicySpec = toml::from_str(r#"allowed_network_hosts = ["*.example.com"]"#)?;
//! let tool: PolicySpec = toml::from_str(r#"allowed_network_hosts = ["api.example.com"]"#)?;
//! let p = EffectivePolicy::resolve(Some(&ceiling), Some(&tool), "fetch")?;
//! assert!(p.network.check_url("https", "api.example.com", 443).is_ok());
//! ```

pub mod effective;
pub mod env;
pub mod error;
pub mod hosts;
pub mod imports;
pub mod ip;
mod narrow;
pub mod paths;
pub mod process;
pub mod spec;
mod warnings;


use serde::{Deserialize, Serialize};

pub use self::effective::{EffectivePolicy, ImportProblem};
pub use self::env::{is_sensitive, Sensitive};
pub use self::error::{ErrorKind, PolicyError, Problem, Scope, Warning};
pub use self::hosts::{HostDenial, HostMatch, HostPattern, HostRules, PortMatch, Scheme};
pub use self::imports::{grantable, ImportPattern, ImportRules, ImportVerdict};
pub use self::ip::{classify, Embedding, PrivateRange};
pub use self::paths::{FsOp, Mount, MountMode, MountTable, PathMiss};
pub use self::process::{Program, SubprocessPolicy};
pub use self::spec::{MountEntry, MountSpec, PolicySpec, ProgramEntry, ProgramSpec};

/// `sandbox_violation_action`: what happens when a tool oversteps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViolationAction {
    /// Refuse and record (default).
    #[default]
    Deny,
    /// Discovery mode: let network uses through, record them. Programs
    /// still need the subprocess allowlist.
    Log,
}

impl ViolationAction {
    /// The action actually taken for a denial of `kind`: `log` only lets
    /// network uses through. Files outside the mounts have nothing behind
    /// them, a program off the allowlist could be anything on the host's
    /// PATH (a shell, a downloader), and load-time checks never pass in
    /// `log`.
    ///
    /// ```ignore
    /// assert_eq!(ViolationAction::Log.for_kind(DenialKind::Fs), ViolationAction::Deny);
    /// ```
    pub fn for_kind(self, kind: DenialKind) -> ViolationAction {
        match (self, kind) {
            (ViolationAction::Log, DenialKind::Net | DenialKind::Http) => ViolationAction::Log,
            _ => ViolationAction::Deny,
        }
    }

    /// `"deny"` or `"log"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationAction::Deny => "deny",
            ViolationAction::Log => "log",
        }
    }
}

/// Which capability a denial concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenialKind {
    /// `wasi:filesystem`.
    Fs,
    /// `wasi:sockets` (lookup, connect, bind, UDP) and private IPs.
    Net,
    /// `wasi:http` outgoing requests.
    Http,
    /// Env (a sensitive or unlisted key).
    Env,
    /// `wasmward:tool/process`.
    Process,
    /// A component embedding an interpreter.
    Eval,
    /// A WIT import refused at load.
    Import,
}

impl DenialKind {
    /// Lowercase name for audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialKind::Fs => "fs",
            DenialKind::Net => "net",
            DenialKind::Http => "http",
            DenialKind::Env => "env",
            DenialKind::Process => "process",
            DenialKind::Eval => "eval",
            DenialKind::Import => "import",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (configured action, kind, action taken)
    const ACTIONS: &[(ViolationAction, DenialKind, ViolationAction)] = &[
        (
            ViolationAction::Deny,
            DenialKind::Net,
            ViolationAction::Deny,
        ),
        (ViolationAction::Deny, DenialKind::Fs, ViolationAction::Deny),
        (ViolationAction::Log, DenialKind::Net, ViolationAction::Log),
        (ViolationAction::Log, DenialKind::Http, ViolationAction::Log),
        (
            ViolationAction::Log,
            DenialKind::Process,
            ViolationAction::Deny,
        ),
        (ViolationAction::Log, DenialKind::Fs, ViolationAction::Deny),
        (ViolationAction::Log, DenialKind::Env, ViolationAction::Deny),
        (
            ViolationAction::Log,
            DenialKind::Eval,
            ViolationAction::Deny,
        ),
        (
            ViolationAction::Log,
            DenialKind::Import,
            ViolationAction::Deny,
        ),
    ];

    #[test]
    fn action_table() {
        for &(configured, kind, want) in ACTIONS {
            assert_eq!(configured.for_kind(kind), want, "{configured:?} {kind:?}");
        }
    }
}
