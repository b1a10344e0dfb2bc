//! `PolicySpec`: a `[defaults.policy]` or `[tool.policy]` table as written.
//! Every field is optional: unset means "grant nothing" for grants, and
//! "inherit the ceiling, else the safe default" for safety settings.
//!
//! ```toml
//! [tool.policy]
//! allowed_read_paths = ["/srv/data", { host = "/srv/models", guest = "/models" }]
//! allowed_write_paths = [{ host = "/var/tmp/out", guest = "/out" }]
//! allowed_network_hosts = ["api.example.com", "*.cdn.example.com:*"]
//! env = { LANG = "C.UTF-8" }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::paths::MountMode;
use super::ViolationAction;

/// One policy table, as written. Unknown keys are errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Read-only mounts. `mode = "rw"` here is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_read_paths: Option<Vec<MountSpec>>,
    /// Read-write mounts (`mode` defaults to `"rw"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_write_paths: Option<Vec<MountSpec>>,
    /// Host patterns, see [`super::hosts`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_network_hosts: Option<Vec<String>>,
    /// Refuse private, loopback, link-local... addresses after DNS (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_private_ips: Option<bool>,
    /// Allow UDP sockets to allowed hosts (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_udp: Option<bool>,
    /// Allow TCP bind/listen (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_listen: Option<bool>,
    /// Allow the tool to create symlinks in its write mounts (default
    /// false). Even then a target must be relative, without `..`, and
    /// resolve inside the link's mount on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_symlinks: Option<bool>,
    /// The tool's whole environment; nothing is inherited from the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Extra env key prefixes refused as secrets (adds to the built-ins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive_env_prefixes: Option<Vec<String>>,
    /// Allow `wasmward:tool/process` (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_subprocess: Option<bool>,
    /// Programs `process` may run: names (looked up in PATH at load) or
    /// absolute paths, or tables `{ program, args, allow_shell, extra_read_paths }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprocess_allowlist: Option<Vec<ProgramSpec>>,
    /// Per-run timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprocess_timeout_ms: Option<u64>,
    /// Cap on stdout + stderr captured per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprocess_max_output_bytes: Option<u64>,
    /// Programs running at once, per tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprocess_max_concurrent: Option<u32>,
    /// Address-space limit (RLIMIT_AS) of a run, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprocess_max_memory_bytes: Option<u64>,
    /// Processes the run's uid may have (RLIMIT_NPROC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprocess_max_processes: Option<u64>,
    /// Largest file a run may write (RLIMIT_FSIZE), bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprocess_max_file_bytes: Option<u64>,
    /// Open files per process of a run (RLIMIT_NOFILE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprocess_max_open_files: Option<u64>,
    /// Uid (and gid) a run drops to when the host runs as root (default 65534).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprocess_run_as: Option<u32>,
    /// Allow components that embed an interpreter (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_eval_exec: Option<bool>,
    /// When set, only these WIT imports may be linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_imports: Option<Vec<String>>,
    /// These WIT imports are refused at load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_imports: Option<Vec<String>>,
    /// An import the policy can never grant is an error, not a warning (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_imports: Option<bool>,
    /// `"deny"` (default) or `"log"` (discovery mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_violation_action: Option<ViolationAction>,
}

/// A mount as written: `"/abs/path"` (same path inside), or a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MountSpec {
    /// Host path, mounted at the same guest path.
    Path(String),
    /// `{ host = "...", guest = "...", mode = "ro"|"rw", quota_bytes = N }`.
    Table(MountEntry),
}

/// The table form of a mount. `guest` defaults to `host`; `mode` to the
/// list's mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountEntry {
    /// Host directory.
    pub host: String,
    /// Path seen inside the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<String>,
    /// Access mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MountMode>,
    /// Write mounts only: the bytes the mount's host directory may hold
    /// (regular files' sizes, measured when a call starts). Signed so that
    /// a negative value is reported with the tool, field and index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<i64>,
}

impl MountSpec {
    /// (host, guest, mode) as written.
    pub fn parts(&self) -> (&str, &str, Option<MountMode>) {
        match self {
            MountSpec::Path(p) => (p, p, None),
            MountSpec::Table(t) => (&t.host, t.guest.as_deref().unwrap_or(&t.host), t.mode),
        }
    }

    /// `quota_bytes` as written (only the table form has one).
    pub fn quota_bytes(&self) -> Option<i64> {
        match self {
            MountSpec::Path(_) => None,
            MountSpec::Table(t) => t.quota_bytes,
        }
    }
}

// Hand-written so a bad table reports its own key, not "did not match any variant".
/// One `subprocess_allowlist` entry: `"git"` or
/// `{ program = "git", args = ["^status$", "^--porcelain$"] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ProgramSpec {
    Name(String),
    Table(ProgramEntry),
}

/// The table form of an allowlist entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramEntry {
    /// A name looked up in PATH at load, or an absolute path.
    pub program: String,
    /// One regex per argument: argv must have exactly this many arguments,
    /// and argument `i` must match `args[i]` whole. Unset: any argv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Lets a shell or interpreter (sh, python3, env, find, ...) on the list.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_shell: bool,
    /// More host paths the program may read (and execute), e.g. its data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_read_paths: Vec<String>,
}

impl ProgramSpec {
    /// The table form (a bare name is `{ program = name }`).
    pub fn entry(&self) -> ProgramEntry {
        match self {
            ProgramSpec::Name(n) => ProgramEntry { program: n.clone(), ..Default::default() },
            ProgramSpec::Table(e) => e.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for ProgramSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_or_table(d, "a program name or a table { program, args, allow_shell, extra_read_paths }", ProgramSpec::Name, ProgramSpec::Table)
    }
}

impl<'de> Deserialize<'de> for MountSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_or_table(d, "a path string or a table { host, guest, mode, quota_bytes }", MountSpec::Path, MountSpec::Table)
    }
}

/// An entry written either as a string or as a table (`"jq"` or
/// `{ program = "jq", ... }`); the table keeps its own unknown-field checks.
fn string_or_table<'de, D, S, T>(d: D, expecting: &'static str, name: fn(String) -> S, table: fn(T) -> S) -> Result<S, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<S, T> {
        expecting: &'static str,
        name: fn(String) -> S,
        table: fn(T) -> S,
    }
    impl<'de, S, T: Deserialize<'de>> Visitor<'de> for V<S, T> {
        type Value = S;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<S, E> {
            Ok((self.name)(v.to_string()))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(self.table)
        }
    }
    d.deserialize_any(V { expecting, name, table })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (TOML, Ok(()) if it parses and round-trips, or Err(substring of the error))
    const CASES: &[(&str, Result<(), &str>)] = &[
        ("", Ok(())),
        (
            r#"allowed_read_paths = ["/srv/data", { host = "/srv/m", guest = "/m", mode = "ro" }]
               allowed_write_paths = [{ host = "/tmp/out", guest = "/out" }, { host = "/tmp/q", quota_bytes = 1048576 }]
               allowed_network_hosts = ["api.example.com", "*.cdn.example.com:*"]
               block_private_ips = true
               allow_udp = false
               allow_listen = false
               allow_symlinks = true
               env = { LANG = "C.UTF-8", TZ = "UTC" }
               sensitive_env_prefixes = ["MYCO_"]
               allow_subprocess = true
               subprocess_allowlist = ["git", { program = "/usr/bin/python3", allow_shell = true, args = ["^-c$", ".*"], extra_read_paths = ["/srv/py"] }]
               subprocess_timeout_ms = 5000
               subprocess_max_output_bytes = 65536
               subprocess_max_concurrent = 2
               allow_eval_exec = false
               allowed_imports = ["wasi:*"]
               blocked_imports = ["wasi:sockets/udp"]
               strict_imports = true
               sandbox_violation_action = "log""#,
            Ok(()),
        ),
        (
            "allowed_hosts = [\"x\"]",
            Err("unknown field `allowed_hosts`"),
        ),
        (
            "block_private_ip = true",
            Err("unknown field `block_private_ip`"),
        ),
        (
            "sandbox_violation_action = \"warn\"",
            Err("unknown variant `warn`"),
        ),
        (
            "allowed_write_paths = [{ host = \"/x\", mod = \"rw\" }]",
            Err("unknown field `mod`"),
        ),
        (
            "allowed_write_paths = [{ host = \"/x\", mode = \"rx\" }]",
            Err("unknown variant `rx`"),
        ),
        (
            "allowed_write_paths = [{ guest = \"/x\" }]",
            Err("missing field `host`"),
        ),
        (
            "allowed_write_paths = [42]",
            Err("a path string or a table"),
        ),
        (
            "allowed_write_paths = [{ host = \"/x\", quota = 10 }]",
            Err("unknown field `quota`"),
        ),
        (
            "allowed_write_paths = [{ host = \"/x\", quota_bytes = \"1M\" }]",
            Err("invalid type"),
        ),
        ("allow_subprocess = \"yes\"", Err("invalid type")),
        ("subprocess_allowlist = [{ program = \"git\", arg = [] }]", Err("unknown field `arg`")),
        ("subprocess_allowlist = [{ args = [] }]", Err("missing field `program`")),
        ("subprocess_allowlist = [1]", Err("a program name or a table")),
        ("subprocess_timeout_ms = -1", Err("invalid value")),
    ];

    #[test]
    fn toml_table() {
        for &(src, want) in CASES {
            let got = toml::from_str::<PolicySpec>(src);
            match (got, want) {
                (Ok(spec), Ok(())) => {
                    let back = toml::to_string(&spec).unwrap();
                    let again: PolicySpec = toml::from_str(&back).unwrap();
                    assert_eq!(again, spec, "round trip of {src}\n---\n{back}");
                }
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{src}: {e}"),
                (got, _) => panic!("{src}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn unset_fields_are_none_and_not_serialized() {
        let spec: PolicySpec = toml::from_str("allow_udp = true").unwrap();
        assert_eq!(
            spec,
            PolicySpec {
                allow_udp: Some(true),
                ..Default::default()
            }
        );
        assert_eq!(toml::to_string(&spec).unwrap().trim(), "allow_udp = true");
    }

    #[test]
    fn mount_forms() {
        let spec: PolicySpec =
            toml::from_str(r#"allowed_read_paths = ["/a", { host = "/b" }, { host = "/c", guest = "/d", mode = "ro" }]"#)
                .unwrap();
        let parts: Vec<_> = spec
            .allowed_read_paths
            .unwrap()
            .iter()
            .map(|m| {
                let (h, g, mode) = m.parts();
                (h.to_string(), g.to_string(), mode)
            })
            .collect();
        assert_eq!(
            parts,
            vec![
                ("/a".into(), "/a".into(), None),
                ("/b".into(), "/b".into(), None),
                ("/c".into(), "/d".into(), Some(MountMode::Ro)),
            ]
        );
    }
}
