//! Environment keys that look like secrets. A tool's `env` may not set them,
//! even when listed, so a config copied from a shell never leaks a key.
//!
//! ```ignore
//! assert_eq!(is_sensitive("AWS_REGION", &[]).unwrap().to_string(), "sensitive prefix AWS_");
//! assert!(is_sensitive("LANG", &[]).is_none());
//! ```

use std::fmt;

use super::error::{ErrorKind, Problem};

/// Built-in prefixes; `sensitive_env_prefixes` adds to these.
pub const SENSITIVE_PREFIXES: &[&str] = &["AWS_", "OPENAI_", "ANTHROPIC_", "AZURE_"];
/// Built-in exact names.
pub const SENSITIVE_NAMES: &[&str] =
    &["GITHUB_TOKEN", "GH_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS"];
/// Built-in suffixes.
pub const SENSITIVE_SUFFIXES: &[&str] = &["_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_CREDENTIALS"];

/// Which rule made a key sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitive<'a> {
    /// Starts with this prefix (built-in or configured).
    Prefix(&'a str),
    /// Is exactly this name.
    Name(&'static str),
    /// Ends with this suffix.
    Suffix(&'static str),
}

impl fmt::Display for Sensitive<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sensitive::Prefix(p) => write!(f, "sensitive prefix {p}"),
            Sensitive::Name(n) => write!(f, "sensitive name {n}"),
            Sensitive::Suffix(s) => write!(f, "sensitive suffix {s}"),
        }
    }
}

/// Why `key` looks like a secret, or `None`. Case-insensitive; `extra` are
/// the policy's `sensitive_env_prefixes`.
pub fn is_sensitive<'a>(key: &str, extra: &'a [String]) -> Option<Sensitive<'a>> {
    let upper = key.to_ascii_uppercase();
    if let Some(n) = SENSITIVE_NAMES.iter().find(|n| upper == **n) {
        return Some(Sensitive::Name(n));
    }
    let builtin = SENSITIVE_PREFIXES.iter().copied();
    if let Some(p) = builtin
        .chain(extra.iter().map(String::as_str))
        .find(|p| upper.starts_with(&p.to_ascii_uppercase()))
    {
        return Some(Sensitive::Prefix(p));
    }
    SENSITIVE_SUFFIXES
        .iter()
        .find(|s| upper.ends_with(**s))
        .map(|s| Sensitive::Suffix(s))
}

/// Checks one `env` entry: a well-formed key that is not sensitive, and a
/// value the OS can pass.
pub fn check_entry(key: &str, value: &str, extra: &[String]) -> Result<(), Problem> {
    if key.is_empty() || key.contains(['=', '\0']) {
        return Err(Problem::new(
            ErrorKind::Malformed,
            "invalid env key",
            "use a key without `=` or NUL, e.g. `LANG`",
        ));
    }
    if value.contains('\0') {
        return Err(Problem::new(
            ErrorKind::Malformed,
            "env value contains NUL",
            "remove the NUL byte",
        ));
    }
    if let Some(why) = is_sensitive(key, extra) {
        return Err(Problem::new(
            ErrorKind::SensitiveEnv,
            format!("key has a {why}: secrets are never passed to tools"),
            "remove the entry; give the tool what it needs through a host capability instead",
        ));
    }
    Ok(())
}

/// Checks a `sensitive_env_prefixes` entry.
pub fn check_prefix(prefix: &str) -> Result<(), Problem> {
    if prefix.is_empty() {
        return Err(Problem::new(
            ErrorKind::Malformed,
            "empty prefix would match every key",
            "remove the entry",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (key, expected reason or None)
    const CASES: &[(&str, Option<&str>)] = &[
        ("AWS_ACCESS_KEY_ID", Some("sensitive prefix AWS_")),
        ("aws_region", Some("sensitive prefix AWS_")),
        ("OPENAI_API_KEY", Some("sensitive prefix OPENAI_")),
        ("ANTHROPIC_BASE_URL", Some("sensitive prefix ANTHROPIC_")),
        ("AZURE_TENANT", Some("sensitive prefix AZURE_")),
        ("GITHUB_TOKEN", Some("sensitive name GITHUB_TOKEN")),
        ("GH_TOKEN", Some("sensitive name GH_TOKEN")),
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            Some("sensitive name GOOGLE_APPLICATION_CREDENTIALS"),
        ),
        ("STRIPE_KEY", Some("sensitive suffix _KEY")),
        ("SLACK_TOKEN", Some("sensitive suffix _TOKEN")),
        ("CLIENT_SECRET", Some("sensitive suffix _SECRET")),
        ("DB_PASSWORD", Some("sensitive suffix _PASSWORD")),
        ("gcp_credentials", Some("sensitive suffix _CREDENTIALS")),
        ("MYCO_SETTING", Some("sensitive prefix MYCO_")),
        ("LANG", None),
        ("PATH", None),
        ("TZ", None),
        ("KEYBOARD", None),
        ("TOKENIZER", None),
        ("AWSOME", None),
        ("GITHUB_USER", None),
    ];

    #[test]
    fn sensitive_table() {
        let extra = vec!["MYCO_".to_string()];
        for &(key, want) in CASES {
            let got = is_sensitive(key, &extra).map(|s| s.to_string());
            assert_eq!(got.as_deref(), want, "{key}");
        }
    }

    /// (key, value, Ok or Err(kind))
    const ENTRIES: &[(&str, &str, Result<(), ErrorKind>)] = &[
        ("LANG", "C.UTF-8", Ok(())),
        ("EMPTY", "", Ok(())),
        ("", "x", Err(ErrorKind::Malformed)),
        ("A=B", "x", Err(ErrorKind::Malformed)),
        ("A", "x\0y", Err(ErrorKind::Malformed)),
        ("API_KEY", "x", Err(ErrorKind::SensitiveEnv)),
    ];

    #[test]
    fn entry_table() {
        for &(key, value, want) in ENTRIES {
            assert_eq!(
                check_entry(key, value, &[]).map_err(|p| p.kind),
                want,
                "{key}={value:?}"
            );
        }
    }
}
