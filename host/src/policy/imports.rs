//! WIT import checks made at load, before any tool code runs.
//!
//! Patterns are WIT import names with `*` matching any run of characters:
//! `wasi:sockets/*`, `wasi:http/outgoing-handler@0.2.*`, `*`. A pattern
//! without `@` matches every version (and unversioned names).
//!
//! ```ignore
//! let p = ImportPattern::parse("wasi:sockets/*").unwrap();
//! assert!(p.matches("wasi:sockets/tcp@0.2.6"));
//! let rules = ImportRules { allowed: None, blocked: vec![p] };
//! assert!(matches!(rules.check_import("wasi:sockets/udp@0.2.0"), ImportVerdict::Blocked(_)));
//! ```

use std::fmt;

use regex::Regex;

use super::effective::EffectivePolicy;
use super::error::{ErrorKind, Problem};

/// One `allowed_imports` / `blocked_imports` entry.
#[derive(Debug, Clone)]
pub struct ImportPattern {
    raw: String,
    re: Regex,
}

impl PartialEq for ImportPattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl Eq for ImportPattern {}

impl fmt::Display for ImportPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(n, _)| n)
}

impl ImportPattern {
    /// Parses a pattern; the error says how to write it.
    pub fn parse(s: &str) -> Result<ImportPattern, Problem> {
        let bad = |problem: String, fix: String| Problem::new(ErrorKind::Malformed, problem, fix);
        if s.is_empty() {
            return Err(bad(
                "empty import pattern".into(),
                "write e.g. `wasi:sockets/*`, or remove the entry".into(),
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-:/@.*_+".contains(*c)))
        {
            return Err(bad(
                format!("invalid character {c:?}"),
                "write a WIT name such as `wasi:http/outgoing-handler@0.2.*`".into(),
            ));
        }
        if s.matches('@').count() > 1 || s.ends_with('@') {
            return Err(bad(
                "malformed version".into(),
                "write at most one `@VERSION` at the end".into(),
            ));
        }
        let name = unversioned(s);
        if name.contains(':') && !name.contains('/') && !name.contains('*') {
            return Err(bad(
                "names a package, not an interface".into(),
                format!("write `{name}/*` for every interface of the package"),
            ));
        }
        let body: Vec<String> = s.split('*').map(regex::escape).collect();
        let re = Regex::new(&format!("^{}$", body.join(".*")))
            .expect("escaped pattern is a valid regex");
        Ok(ImportPattern {
            raw: s.to_string(),
            re,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    fn versioned(&self) -> bool {
        self.raw.contains('@')
    }

    /// Whether `name` (e.g. `wasi:sockets/tcp@0.2.6`) matches.
    pub fn matches(&self, name: &str) -> bool {
        self.re.is_match(if self.versioned() {
            name
        } else {
            unversioned(name)
        })
    }

    /// True when every name `other` matches, `self` matches too. (`other`'s
    /// `*` can only be absorbed by a `*` here, so matching its text is exact.)
    pub fn covers(&self, other: &ImportPattern) -> bool {
        match (self.versioned(), other.versioned()) {
            (true, false) => false,
            (true, true) => self.re.is_match(&other.raw),
            (false, _) => self.re.is_match(unversioned(&other.raw)),
        }
    }
}

/// The outcome of checking one import against the patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportVerdict {
    /// No pattern refuses it.
    Allowed,
    /// A `blocked_imports` entry matches (this one).
    Blocked(String),
    /// `allowed_imports` is set and no entry matches.
    NotAllowed,
}

impl fmt::Display for ImportVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportVerdict::Allowed => f.write_str("allowed"),
            ImportVerdict::Blocked(p) => write!(f, "blocked by blocked_imports entry `{p}`"),
            ImportVerdict::NotAllowed => f.write_str("matches no allowed_imports entry"),
        }
    }
}

/// Effective import patterns. `allowed: None` = no allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRules {
    /// When set, only matching imports pass.
    pub allowed: Option<Vec<ImportPattern>>,
    /// Matching imports never pass (wins over `allowed`).
    pub blocked: Vec<ImportPattern>,
}

impl ImportRules {
    /// Blocked wins; with an allow-list, everything it misses is refused.
    pub fn check_import(&self, name: &str) -> ImportVerdict {
        if let Some(p) = self.blocked.iter().find(|p| p.matches(name)) {
            return ImportVerdict::Blocked(p.raw.clone());
        }
        match &self.allowed {
            Some(allowed) if !allowed.iter().any(|p| p.matches(name)) => ImportVerdict::NotAllowed,
            _ => ImportVerdict::Allowed,
        }
    }
}

/// Why `policy` can never satisfy import `name`, naming the field to change;
/// `None` when it can, or when the import is not a capability we gate.
pub fn grantable(name: &str, policy: &EffectivePolicy) -> Option<String> {
    let iface = unversioned(name);
    let no_net = policy.network.is_empty();
    let why = match iface {
        "wasi:sockets/udp" | "wasi:sockets/udp-create-socket" if !policy.allow_udp => {
            "needs UDP, and allow_udp is false"
        }
        "wasi:sockets/tcp"
        | "wasi:sockets/tcp-create-socket"
        | "wasi:sockets/network"
        | "wasi:sockets/instance-network"
            if no_net && !policy.allow_listen =>
        {
            "needs the network, and allowed_network_hosts grants no host (nor is allow_listen set)"
        }
        "wasi:sockets/ip-name-lookup" | "wasi:sockets/udp" | "wasi:sockets/udp-create-socket"
            if no_net =>
        {
            "needs the network, and allowed_network_hosts grants no host"
        }
        "wasi:http/outgoing-handler" if no_net => {
            "makes HTTP requests, and allowed_network_hosts grants no host"
        }
        "wasi:filesystem/types" | "wasi:filesystem/preopens" if policy.mounts.is_empty() => {
            "needs files, and neither allowed_read_paths nor allowed_write_paths grants a mount"
        }
        "wasmward:tool/process" if !policy.subprocess.allowed => {
            "runs programs, and allow_subprocess is false"
        }
        "wasmward:tool/process" if policy.subprocess.programs.is_empty() => {
            "runs programs, and subprocess_allowlist is empty"
        }
        _ => return None,
    };
    Some(why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (pattern, import name, matches)
    const MATCH: &[(&str, &str, bool)] = &[
        ("wasi:sockets/*", "wasi:sockets/tcp@0.2.6", true),
        ("wasi:sockets/*", "wasi:sockets/ip-name-lookup", true),
        ("wasi:sockets/*", "wasi:http/types@0.2.6", false),
        ("wasi:sockets/tcp", "wasi:sockets/tcp@0.2.12", true),
        (
            "wasi:sockets/tcp",
            "wasi:sockets/tcp-create-socket@0.2.0",
            false,
        ),
        (
            "wasi:http/outgoing-handler@0.2.*",
            "wasi:http/outgoing-handler@0.2.6",
            true,
        ),
        (
            "wasi:http/outgoing-handler@0.2.*",
            "wasi:http/outgoing-handler@0.3.0",
            false,
        ),
        (
            "wasi:http/outgoing-handler@0.2.*",
            "wasi:http/outgoing-handler",
            false,
        ),
        ("wasi:*", "wasi:cli/environment@0.2.0", true),
        ("*", "anything", true),
        ("*", "wasi:io/streams@0.2.0", true),
        ("*:tool/*", "wasmward:tool/process@0.1.0", true),
        (
            "wasi:filesystem/types@0.2.6",
            "wasi:filesystem/types@0.2.6",
            true,
        ),
        (
            "wasi:filesystem/types@0.2.6",
            "wasi:filesystem/types@0.2.60",
            false,
        ),
        ("log", "log", true),
    ];

    #[test]
    fn match_table() {
        for &(pat, name, want) in MATCH {
            assert_eq!(
                ImportPattern::parse(pat).unwrap().matches(name),
                want,
                "{pat} ~ {name}"
            );
        }
    }

    /// (pattern, Ok or Err(problem substring))
    const PARSE: &[(&str, Result<(), &str>)] = &[
        ("wasi:sockets/*", Ok(())),
        ("wasi:http/outgoing-handler@0.2.*", Ok(())),
        ("*", Ok(())),
        ("wasi:*", Ok(())),
        ("", Err("empty")),
        ("wasi:sockets", Err("names a package")),
        ("wasi:sockets@0.2.0", Err("names a package")),
        ("wasi:sockets/tcp@", Err("malformed version")),
        ("a@1@2", Err("malformed version")),
        ("wasi sockets", Err("invalid character")),
        ("wasi:sockets/(tcp)", Err("invalid character")),
    ];

    #[test]
    fn parse_table() {
        for &(pat, want) in PARSE {
            match (ImportPattern::parse(pat), want) {
                (Ok(_), Ok(())) => {}
                (Err(p), Err(w)) => assert!(p.problem.contains(w), "{pat}: {p}"),
                (got, _) => panic!("{pat}: {got:?}, want {want:?}"),
            }
        }
    }

    /// (wider, narrower, covers)
    const COVERS: &[(&str, &str, bool)] = &[
        ("*", "wasi:sockets/*", true),
        ("wasi:*", "wasi:sockets/*", true),
        ("wasi:sockets/*", "wasi:sockets/tcp", true),
        ("wasi:sockets/*", "wasi:sockets/tcp@0.2.6", true),
        ("wasi:sockets/*", "wasi:*", false),
        ("wasi:sockets/tcp@0.2.*", "wasi:sockets/tcp@0.2.6", true),
        ("wasi:sockets/tcp@0.2.*", "wasi:sockets/tcp", false),
        ("wasi:sockets/tcp@0.2.6", "wasi:sockets/tcp@0.2.*", false),
        ("wasi:http/*", "wasi:sockets/tcp", false),
    ];

    #[test]
    fn covers_table() {
        for &(a, b, want) in COVERS {
            let (pa, pb) = (
                ImportPattern::parse(a).unwrap(),
                ImportPattern::parse(b).unwrap(),
            );
            assert_eq!(pa.covers(&pb), want, "{a} covers {b}");
        }
    }

    /// (allowed (None = unset), blocked, import, verdict)
    type VerdictCase = (
        Option<&'static [&'static str]>,
        &'static [&'static str],
        &'static str,
        &'static str,
    );
    const VERDICTS: &[VerdictCase] = &[
        (None, &[], "wasi:sockets/tcp@0.2.6", "allowed"),
        (
            None,
            &["wasi:sockets/*"],
            "wasi:sockets/tcp@0.2.6",
            "blocked by blocked_imports entry `wasi:sockets/*`",
        ),
        (
            Some(&["wasi:cli/*"]),
            &[],
            "wasi:cli/stdout@0.2.6",
            "allowed",
        ),
        (
            Some(&["wasi:cli/*"]),
            &[],
            "wasi:sockets/tcp@0.2.6",
            "matches no allowed_imports entry",
        ),
        (
            Some(&["wasi:*"]),
            &["wasi:sockets/*"],
            "wasi:sockets/udp@0.2.0",
            "blocked by blocked_imports entry `wasi:sockets/*`",
        ),
        (
            Some(&[]),
            &[],
            "wasi:cli/stdout@0.2.6",
            "matches no allowed_imports entry",
        ),
    ];

    #[test]
    fn verdict_table() {
        let parse = |v: &[&str]| {
            v.iter()
                .map(|p| ImportPattern::parse(p).unwrap())
                .collect::<Vec<_>>()
        };
        for &(allowed, blocked, name, want) in VERDICTS {
            let rules = ImportRules {
                allowed: allowed.map(parse),
                blocked: parse(blocked),
            };
            assert_eq!(rules.check_import(name).to_string(), want, "{name}");
        }
    }
}

#[cfg(test)]
mod grantable_tests {
    use super::super::narrow::tests::tree;
    use super::super::spec::PolicySpec;
    use super::*;

    /// (tool TOML, import, Some(reason substring) when it can never be granted)
    const CASES: &[(&str, &str, Option<&str>)] = &[
        (
            "",
            "wasi:sockets/tcp@0.2.6",
            Some("allowed_network_hosts grants no host"),
        ),
        (
            "",
            "wasi:sockets/ip-name-lookup@0.2.6",
            Some("allowed_network_hosts"),
        ),
        ("", "wasi:sockets/udp@0.2.6", Some("allow_udp is false")),
        (
            "",
            "wasi:http/outgoing-handler@0.2.6",
            Some("allowed_network_hosts"),
        ),
        (
            "",
            "wasi:filesystem/preopens@0.2.6",
            Some("allowed_read_paths nor allowed_write_paths"),
        ),
        (
            "",
            "wasmward:tool/process",
            Some("allow_subprocess is false"),
        ),
        ("", "wasi:cli/environment@0.2.6", None),
        ("", "wasi:http/types@0.2.6", None),
        ("", "wasi:io/streams@0.2.6", None),
        ("allow_listen = true", "wasi:sockets/tcp@0.2.6", None),
        (
            "allowed_network_hosts = [\"x.com\"]",
            "wasi:sockets/tcp@0.2.6",
            None,
        ),
        (
            "allowed_network_hosts = [\"x.com\"]",
            "wasi:sockets/udp@0.2.6",
            Some("allow_udp is false"),
        ),
        (
            "allowed_network_hosts = [\"x.com\"]\nallow_udp = true",
            "wasi:sockets/udp@0.2.6",
            None,
        ),
        (
            "allow_udp = true",
            "wasi:sockets/udp@0.2.6",
            Some("allowed_network_hosts"),
        ),
        (
            "allowed_network_hosts = [\"x.com\"]",
            "wasi:http/outgoing-handler@0.2.6",
            None,
        ),
        (
            "allowed_read_paths = [\"{T}/data\"]",
            "wasi:filesystem/types@0.2.6",
            None,
        ),
        (
            "allow_subprocess = true",
            "wasmward:tool/process@0.1.0",
            Some("subprocess_allowlist is empty"),
        ),
        (
            "allow_subprocess = true\nsubprocess_allowlist = [{ program = \"sh\", allow_shell = true }]",
            "wasmward:tool/process@0.1.0",
            None,
        ),
    ];

    #[test]
    fn grantable_table() {
        let root = tree();
        for &(src, import, want) in CASES {
            let spec: PolicySpec =
                toml::from_str(&src.replace("{T}", root.to_str().unwrap())).unwrap();
            let p = EffectivePolicy::resolve(None, Some(&spec), "t").unwrap();
            let got = grantable(import, &p);
            match (&got, want) {
                (None, None) => {}
                (Some(g), Some(w)) => assert!(g.contains(w), "{src} / {import}: {g}"),
                _ => panic!("{src} / {import}: {got:?}, want {want:?}"),
            }
        }
    }

    /// (tool TOML, imports, expected (import, fatal) problems)
    type VetCase = (
        &'static str,
        &'static [&'static str],
        &'static [(&'static str, bool)],
    );
    const VET: &[VetCase] = &[
        (
            "",
            &["wasi:cli/stdout@0.2.6", "wasi:sockets/tcp@0.2.6"],
            &[("wasi:sockets/tcp@0.2.6", false)],
        ),
        (
            "strict_imports = true",
            &["wasi:sockets/tcp@0.2.6"],
            &[("wasi:sockets/tcp@0.2.6", true)],
        ),
        (
            "blocked_imports = [\"wasi:cli/*\"]",
            &["wasi:cli/stdout@0.2.6"],
            &[("wasi:cli/stdout@0.2.6", true)],
        ),
        (
            "allowed_imports = [\"wasi:io/*\"]",
            &["wasi:io/streams@0.2.6", "wasi:cli/stdout@0.2.6"],
            &[("wasi:cli/stdout@0.2.6", true)],
        ),
    ];

    #[test]
    fn vet_table() {
        for &(src, imports, want) in VET {
            let spec: PolicySpec = toml::from_str(src).unwrap();
            let p = EffectivePolicy::resolve(None, Some(&spec), "t").unwrap();
            let got: Vec<(String, bool)> = p
                .vet_imports(imports.iter().copied())
                .into_iter()
                .map(|p| (p.import, p.fatal))
                .collect();
            let want: Vec<(String, bool)> = want.iter().map(|&(i, f)| (i.to_string(), f)).collect();
            assert_eq!(got, want, "{src}");
        }
    }
}
