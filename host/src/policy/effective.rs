//! `EffectivePolicy`: one tool's resolved, validated policy: what the
//! sandbox enforces and what `wasmward check` prints.
//!
//! Resolution (see [`EffectivePolicy::resolve`]) and its narrowing rules live
//! in `narrow.rs`; no-effect warnings in `warnings.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Serialize, Serializer};

use super::error::{PolicyError, Warning};
use super::hosts::HostRules;
use super::imports::{grantable, ImportRules, ImportVerdict};
use super::ip::{classify, PrivateRange};
use super::paths::{MountMode, MountTable};
use super::process::SubprocessPolicy;
use super::spec::{MountEntry, MountSpec, PolicySpec, ProgramEntry, ProgramSpec};
use super::ViolationAction;

/// A tool's policy after defaults, validation and the ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePolicy {
    /// The tool's name (`defaults` for the ceiling itself).
    pub tool: String,
    /// Preopens, canonical host paths.
    pub mounts: MountTable,
    /// `allowed_network_hosts`; empty = no network.
    pub network: HostRules,
    /// Refuse non-public addresses after DNS.
    pub block_private_ips: bool,
    /// UDP sockets to allowed hosts.
    pub allow_udp: bool,
    /// TCP bind/listen.
    pub allow_listen: bool,
    /// Symlink creation in write mounts (targets still checked).
    pub allow_symlinks: bool,
    /// The tool's whole environment.
    pub env: BTreeMap<String, String>,
    /// Configured sensitive prefixes (ceiling's and tool's), beyond the built-ins.
    pub sensitive_env_prefixes: Vec<String>,
    /// `wasmward:tool/process` grant.
    pub subprocess: SubprocessPolicy,
    /// Components embedding an interpreter may load.
    pub allow_eval_exec: bool,
    /// `allowed_imports` / `blocked_imports`.
    pub imports: ImportRules,
    /// Ungrantable imports are load errors.
    pub strict_imports: bool,
    /// `deny` or `log`.
    pub violation_action: ViolationAction,
    pub(super) warnings: Vec<Warning>,
}

/// One import a component may not have under this policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportProblem {
    /// The WIT import name.
    pub import: String,
    /// Why, naming the field to change.
    pub reason: String,
    /// True when the load must fail (blocked, or ungrantable under `strict_imports`).
    pub fatal: bool,
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "import `{}`: {}", self.import, self.reason)
    }
}

impl EffectivePolicy {
    /// Resolves one tool's policy.
    ///
    /// - `tool = None`: the tool gets nothing (no mounts, network, env,
    ///   process or eval); safety settings come from the ceiling or defaults.
    /// - `ceiling = None`: the tool's grants stand; unset fields take the
    ///   safe defaults.
    /// - With a ceiling, every tool grant must lie inside it, and the tool
    ///   cannot relax its safety settings; see `narrow.rs` for each field.
    ///
    /// ```ignore
    /// let p = EffectivePolicy::resolve(None, None, "echo")?;
    /// assert!(p.network.is_empty() && p.mounts.is_empty() && p.block_private_ips);
    /// ```
    pub fn resolve(
        ceiling: Option<&PolicySpec>,
        tool: Option<&PolicySpec>,
        tool_name: &str,
    ) -> Result<EffectivePolicy, PolicyError> {
        super::narrow::resolve(ceiling, tool, tool_name)
    }

    /// Grants with no effect and settings worth a look, for `wasmward check`.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The range `ip` falls in when `block_private_ips` refuses it.
    pub fn blocked_ip(&self, ip: IpAddr) -> Option<PrivateRange> {
        self.block_private_ips.then(|| classify(ip)).flatten()
    }

    /// Checks a component's imports: blocked or not allowed (always fatal),
    /// and ones the policy can never grant (fatal under `strict_imports`).
    ///
    /// ```ignore
    /// let problems = policy.vet_imports(["wasi:sockets/tcp@0.2.6"]);
    /// if problems.iter().any(|p| p.fatal) { /* refuse the component */ }
    /// ```
    pub fn vet_imports<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<ImportProblem> {
        let mut out = Vec::new();
        for name in names {
            let problem = match self.imports.check_import(name) {
                ImportVerdict::Allowed => {
                    grantable(name, self).map(|why| (why, self.strict_imports))
                }
                refused => Some((refused.to_string(), true)),
            };
            if let Some((reason, fatal)) = problem {
                out.push(ImportProblem {
                    import: name.to_string(),
                    reason,
                    fatal,
                });
            }
        }
        out
    }

    /// The policy with every field explicit, in config vocabulary: canonical
    /// host paths, absolute program paths, canonical host patterns.
    /// Resolving it again without a ceiling gives the same policy.
    pub fn to_spec(&self) -> PolicySpec {
        let mounts = |mode: MountMode, list_default: MountMode| -> Vec<MountSpec> {
            self.mounts
                .mounts()
                .iter()
                .filter(|m| m.mode == mode)
                .map(|m| {
                    let host = m.host.to_string_lossy().into_owned();
                    if host == m.guest && mode == list_default && m.quota_bytes.is_none() {
                        MountSpec::Path(host)
                    } else {
                        MountSpec::Table(MountEntry {
                            host,
                            guest: Some(m.guest.clone()),
                            mode: None,
                            quota_bytes: m.quota_bytes.map(|q| q as i64),
                        })
                    }
                })
                .collect()
        };
        let strings = |v: &[super::imports::ImportPattern]| {
            v.iter().map(|p| p.to_string()).collect::<Vec<_>>()
        };
        let sp = &self.subprocess;
        PolicySpec {
            allowed_read_paths: Some(mounts(MountMode::Ro, MountMode::Ro)),
            allowed_write_paths: Some(mounts(MountMode::Rw, MountMode::Rw)),
            allowed_network_hosts: Some(
                self.network
                    .patterns()
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
            ),
            block_private_ips: Some(self.block_private_ips),
            allow_udp: Some(self.allow_udp),
            allow_listen: Some(self.allow_listen),
            allow_symlinks: Some(self.allow_symlinks),
            env: Some(self.env.clone()),
            sensitive_env_prefixes: Some(self.sensitive_env_prefixes.clone()),
            allow_subprocess: Some(sp.allowed),
            subprocess_allowlist: Some(
                sp.programs
                    .iter()
                    .map(|p| {
                        let program = p.path.to_string_lossy().into_owned();
                        if p.args.is_none() && !p.allow_shell && p.extra_read_paths.is_empty() {
                            return ProgramSpec::Name(program);
                        }
                        ProgramSpec::Table(ProgramEntry {
                            program,
                            args: p.args.as_ref().map(|a| a.iter().map(|x| x.source.clone()).collect()),
                            allow_shell: p.allow_shell,
                            extra_read_paths: p.extra_read_paths.iter().map(|x| x.to_string_lossy().into_owned()).collect(),
                        })
                    })
                    .collect(),
            ),
            subprocess_timeout_ms: Some(sp.timeout_ms),
            subprocess_max_output_bytes: Some(sp.max_output_bytes),
            subprocess_max_concurrent: Some(sp.max_concurrent),
            subprocess_max_memory_bytes: Some(sp.max_memory_bytes),
            subprocess_max_processes: Some(sp.max_processes),
            subprocess_max_file_bytes: Some(sp.max_file_bytes),
            subprocess_max_open_files: Some(sp.max_open_files),
            subprocess_run_as: Some(sp.run_as),
            allow_eval_exec: Some(self.allow_eval_exec),
            allowed_imports: self.imports.allowed.as_deref().map(strings),
            blocked_imports: Some(strings(&self.imports.blocked)),
            strict_imports: Some(self.strict_imports),
            sandbox_violation_action: Some(self.violation_action),
        }
    }
}

/// Serialises as the explicit [`PolicySpec`] ([`EffectivePolicy::to_spec`]).
impl Serialize for EffectivePolicy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_spec().serialize(s)
    }
}

/// Prints the explicit policy as the body of a `[tool.policy]` table, one
/// `key = value` line per field (inline tables, so it can be pasted back).
impl fmt::Display for EffectivePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let serde_json::Value::Object(fields) =
            serde_json::to_value(self.to_spec()).map_err(|_| fmt::Error)?
        else {
            return Err(fmt::Error);
        };
        for (key, value) in fields {
            let value = toml::Value::try_from(value).map_err(|_| fmt::Error)?;
            writeln!(f, "{key} = {value}")?;
        }
        Ok(())
    }
}
