//! Policy load errors and `wasmward check` warnings. Each names where the
//! problem is (`tool "files": policy.allowed_write_paths[1]`), the value,
//! what is wrong and how to fix it.

use std::fmt;

use serde::Serialize;

/// Which policy table a problem is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `[defaults.policy]`, the operator's ceiling.
    Defaults,
    /// `[tool.policy]` of the named tool.
    Tool(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Defaults => f.write_str("defaults.policy"),
            Scope::Tool(name) => write!(f, "tool {name:?}: policy"),
        }
    }
}

/// What kind of problem a [`PolicyError`] reports, for callers and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// A value that does not parse (host pattern, import pattern, env key).
    Malformed,
    /// A relative path where an absolute one is needed.
    RelativePath,
    /// A host path that does not exist or cannot be read.
    MissingPath,
    /// A mount's host path that is itself a symlink.
    SymlinkPath,
    /// Two mounts whose guest paths collide or nest, or a mount at `/`.
    MountConflict,
    /// An env key that looks like a secret.
    SensitiveEnv,
    /// A subprocess program not found or not executable.
    UnresolvedProgram,
    /// A tool grant that `[defaults.policy]` does not allow.
    OutsideCeiling,
    /// A tool relaxing a safety setting the ceiling fixes.
    RelaxesCeiling,
    /// A component import the policy blocks or can never grant.
    Import,
}

/// A policy error: `scope.field = value: problem. Fix: fix`.
///
/// ```text
/// tool "files": policy.allowed_write_paths[1] = "/nope": host path does not exist (No such file or directory). Fix: create it, or remove the entry
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{scope}.{field} = {value:?}: {problem}. Fix: {fix}")]
pub struct PolicyError {
    /// Which policy table.
    pub scope: Scope,
    /// Field with index, e.g. `allowed_write_paths[1]` or `env.AWS_KEY`.
    pub field: String,
    /// The offending value as written.
    pub value: String,
    /// Machine-readable kind.
    pub kind: ErrorKind,
    /// What is wrong.
    pub problem: String,
    /// How to fix it. (Boxed to keep `Result<_, PolicyError>` small.)
    pub fix: Box<str>,
}

/// A grant with no effect, or a setting worth a second look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Field with index, e.g. `subprocess_allowlist`.
    pub field: String,
    /// What has no effect and why.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy.{}: {}", self.field, self.message)
    }
}

/// A problem found by a low-level parser, before the caller adds the scope
/// and field. Keeps hosts/paths/imports free of policy context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Kind of problem.
    pub kind: ErrorKind,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl Problem {
    /// A new problem.
    pub fn new(kind: ErrorKind, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            kind,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// Adds where it was found.
    pub fn at(
        self,
        scope: &Scope,
        field: impl Into<String>,
        value: impl Into<String>,
    ) -> PolicyError {
        PolicyError {
            scope: scope.clone(),
            field: field.into(),
            value: value.into(),
            kind: self.kind,
            problem: self.problem,
            fix: self.fix.into_boxed_str(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}. Fix: {}", self.problem, self.fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASES: &[(Option<&str>, &str, &str, &str)] = &[
        (
            Some("files"),
            "allowed_write_paths[1]",
            "/nope",
            "tool \"files\": policy.allowed_write_paths[1] = \"/nope\": gone. Fix: do it",
        ),
        (
            None,
            "env.AWS_X",
            "AWS_X",
            "defaults.policy.env.AWS_X = \"AWS_X\": gone. Fix: do it",
        ),
    ];

    #[test]
    fn error_message_names_scope_field_value_and_fix() {
        for &(tool, field, value, want) in CASES {
            let scope = tool.map_or(Scope::Defaults, |t| Scope::Tool(t.into()));
            let e = Problem::new(ErrorKind::Malformed, "gone", "do it").at(&scope, field, value);
            assert_eq!(e.to_string(), want);
        }
    }
}
