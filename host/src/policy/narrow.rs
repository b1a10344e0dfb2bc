//! Resolution of a tool's policy under the operator's ceiling
//! (`[defaults.policy]`). The rules, field by field:
//!
//! | field | tool unset | with a ceiling, the tool may... |
//! |---|---|---|
//! | `allowed_read_paths` | no mounts | mount a host dir under any ceiling mount |
//! | `allowed_write_paths` | no mounts | mount a host dir under a ceiling `rw` mount |
//! | `quota_bytes` (on a write mount) | none, or the ceiling's | set at most the quota of the ceiling mount(s) it is under (the smallest); unset, it inherits it |
//! | `allowed_network_hosts` | no network | list entries each covered by the ceiling's (per scheme, by one entry) |
//! | `allow_udp`, `allow_listen`, `allow_symlinks`, `allow_subprocess`, `allow_eval_exec` | false | set true only if the ceiling does |
//! | `subprocess_allowlist` | none | list programs on the ceiling's list (same path, or same name and same file) |
//! | `subprocess_*` limits | ceiling's, else built-in | set at most the ceiling's value |
//! | `env` | empty | set only key = value pairs the ceiling's `env` has (intersection) |
//! | `sensitive_env_prefixes` | ceiling's | add prefixes (union) |
//! | `block_private_ips` | ceiling's, else true | not turn it off when the ceiling has it on |
//! | `strict_imports` | ceiling's, else false | not turn it off when the ceiling has it on |
//! | `sandbox_violation_action` | ceiling's, else deny | not choose `log` under `deny` |
//! | `allowed_imports` | ceiling's | list patterns each covered by a ceiling pattern |
//! | `blocked_imports` | ceiling's | add patterns (union) |
//!
//! A ceiling field left unset takes its safe default, so it grants nothing:
//! with a `[defaults.policy]` table present, every grant must appear in it.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;

use super::effective::EffectivePolicy;
use super::env::{check_entry, check_prefix};
use super::error::{ErrorKind, PolicyError, Problem, Scope};
use super::hosts::HostRules;
use super::imports::{ImportPattern, ImportRules};
use super::paths::{host_dir, normalize_guest, Mount, MountMode, MountTable};
use super::process::{self, resolve_program, Program, SubprocessPolicy};
use super::spec::{MountSpec, PolicySpec};
use super::ViolationAction;

pub(super) fn resolve(
    ceiling: Option<&PolicySpec>,
    tool: Option<&PolicySpec>,
    tool_name: &str,
) -> Result<EffectivePolicy, PolicyError> {
    let ceiling = match ceiling {
        Some(spec) => Some(
            Cx {
                scope: Scope::Defaults,
                ceiling: None,
            }
            .build(spec, "defaults")?,
        ),
        None => None,
    };
    let empty = PolicySpec::default();
    let spec = tool.unwrap_or(&empty);
    let mut policy = Cx {
        scope: Scope::Tool(tool_name.into()),
        ceiling: ceiling.as_ref(),
    }
    .build(spec, tool_name)?;
    policy.warnings = super::warnings::collect(spec, &policy);
    Ok(policy)
}

struct Cx<'a> {
    scope: Scope,
    ceiling: Option<&'a EffectivePolicy>,
}

fn outside(problem: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem::new(ErrorKind::OutsideCeiling, problem, fix)
}

impl Cx<'_> {
    fn build(&self, spec: &PolicySpec, name: &str) -> Result<EffectivePolicy, PolicyError> {
        let c = self.ceiling;
        let prefixes = self.prefixes(spec)?;
        let allow_udp = self.grant("allow_udp", spec.allow_udp, c.map(|c| c.allow_udp))?;
        let allow_listen =
            self.grant("allow_listen", spec.allow_listen, c.map(|c| c.allow_listen))?;
        let allow_symlinks =
            self.grant("allow_symlinks", spec.allow_symlinks, c.map(|c| c.allow_symlinks))?;
        let allow_eval_exec = self.grant(
            "allow_eval_exec",
            spec.allow_eval_exec,
            c.map(|c| c.allow_eval_exec),
        )?;
        let block_private_ips = self.safety(
            "block_private_ips",
            spec.block_private_ips,
            c.map(|c| c.block_private_ips),
            true,
        )?;
        let strict_imports = self.safety(
            "strict_imports",
            spec.strict_imports,
            c.map(|c| c.strict_imports),
            false,
        )?;
        Ok(EffectivePolicy {
            tool: name.to_string(),
            mounts: self.mounts(spec)?,
            network: self.network(spec)?,
            block_private_ips,
            allow_udp,
            allow_listen,
            allow_symlinks,
            env: self.env(spec, &prefixes)?,
            sensitive_env_prefixes: prefixes,
            subprocess: self.subprocess(spec)?,
            allow_eval_exec,
            imports: self.imports(spec)?,
            strict_imports,
            violation_action: self.action(spec)?,
            warnings: Vec::new(),
        })
    }

    /// A grant: off unless the tool sets it, and only if the ceiling has it.
    fn grant(
        &self,
        field: &str,
        tool: Option<bool>,
        ceiling: Option<bool>,
    ) -> Result<bool, PolicyError> {
        let v = tool.unwrap_or(false);
        if v && ceiling == Some(false) {
            return Err(outside(
                "defaults.policy does not grant it",
                format!("set {field} = true in [defaults.policy], or remove it here"),
            )
            .at(&self.scope, field, "true"));
        }
        Ok(v)
    }

    /// A safety setting: inherited; the tool may not turn off what the ceiling turns on.
    fn safety(
        &self,
        field: &str,
        tool: Option<bool>,
        ceiling: Option<bool>,
        default: bool,
    ) -> Result<bool, PolicyError> {
        if ceiling == Some(true) && tool == Some(false) {
            return Err(Problem::new(
                ErrorKind::RelaxesCeiling,
                "defaults.policy sets it to true, and a tool cannot relax it",
                format!("remove {field} here, or change it in [defaults.policy]"),
            )
            .at(&self.scope, field, "false"));
        }
        Ok(tool.or(ceiling).unwrap_or(default))
    }

    fn action(&self, spec: &PolicySpec) -> Result<ViolationAction, PolicyError> {
        let ceiling = self.ceiling.map(|c| c.violation_action);
        if ceiling == Some(ViolationAction::Deny)
            && spec.sandbox_violation_action == Some(ViolationAction::Log)
        {
            return Err(Problem::new(
                ErrorKind::RelaxesCeiling,
                "defaults.policy sets \"deny\", and a tool cannot relax it",
                "remove sandbox_violation_action here, or set \"log\" in [defaults.policy]",
            )
            .at(&self.scope, "sandbox_violation_action", "log"));
        }
        Ok(spec
            .sandbox_violation_action
            .or(ceiling)
            .unwrap_or_default())
    }

    /// A limit: inherited; at most the ceiling's; never zero.
    fn limit<T: Copy + Ord + Display + Default>(
        &self,
        field: &str,
        tool: Option<T>,
        ceiling: Option<T>,
        default: T,
    ) -> Result<T, PolicyError> {
        if let Some(t) = tool {
            if t == T::default() {
                return Err(Problem::new(
                    ErrorKind::Malformed,
                    "must be at least 1",
                    format!("raise {field}, or remove it"),
                )
                .at(&self.scope, field, t.to_string()));
            }
            if let Some(c) = ceiling.filter(|c| t > *c) {
                return Err(outside(
                    format!("exceeds defaults.policy's {c}"),
                    format!("lower it to at most {c}, or raise it in [defaults.policy]"),
                )
                .at(&self.scope, field, t.to_string()));
            }
        }
        Ok(tool.or(ceiling).unwrap_or(default))
    }

    fn prefixes(&self, spec: &PolicySpec) -> Result<Vec<String>, PolicyError> {
        let mut out: Vec<String> = self
            .ceiling
            .map(|c| c.sensitive_env_prefixes.clone())
            .unwrap_or_default();
        for (i, p) in spec.sensitive_env_prefixes.iter().flatten().enumerate() {
            check_prefix(p)
                .map_err(|e| e.at(&self.scope, format!("sensitive_env_prefixes[{i}]"), p))?;
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        Ok(out)
    }

    fn mounts(&self, spec: &PolicySpec) -> Result<MountTable, PolicyError> {
        let lists = [
            (
                "allowed_read_paths",
                &spec.allowed_read_paths,
                MountMode::Ro,
            ),
            (
                "allowed_write_paths",
                &spec.allowed_write_paths,
                MountMode::Rw,
            ),
        ];
        let mut mounts = Vec::new();
        let mut origin = Vec::new();
        for (list, entries, default_mode) in lists {
            for (i, entry) in entries.iter().flatten().enumerate() {
                let field = format!("{list}[{i}]");
                let mut mount = self
                    .mount(entry, default_mode, list)
                    .map_err(|(p, v)| p.at(&self.scope, &field, v))?;
                mount.quota_bytes = self
                    .quota(entry, &mount, list)
                    .map_err(|(p, v)| p.at(&self.scope, format!("{field}.quota_bytes"), v))?;
                origin.push((field, mount.guest.clone()));
                mounts.push(mount);
            }
        }
        // Bytes written through another write mount whose host directory
        // overlaps a quota mount's would land in it uncharged. (A ceiling
        // is never a sandbox: its mounts may overlap.)
        let is_tool = !matches!(self.scope, Scope::Defaults);
        for (i, m) in mounts.iter().enumerate().filter(|_| is_tool) {
            for (j, q) in mounts.iter().enumerate() {
                if i == j || q.quota_bytes.is_none() || m.mode != MountMode::Rw {
                    continue;
                }
                if m.host.starts_with(&q.host) || q.host.starts_with(&m.host) {
                    let later = i.max(j);
                    let p = Problem::new(
                        ErrorKind::MountConflict,
                        format!(
                            "write mount {} overlaps on the host with {}, which has quota_bytes: writes through one would escape the quota",
                            m.guest, q.guest
                        ),
                        "mount host directories that do not contain each other, or drop the quota",
                    );
                    return Err(p.at(&self.scope, &origin[later].0, &origin[later].1));
                }
            }
        }
        MountTable::new(mounts).map_err(|(i, p)| p.at(&self.scope, &origin[i].0, &origin[i].1))
    }

    /// One mount; the error carries the value it is about.
    fn mount(
        &self,
        entry: &MountSpec,
        default_mode: MountMode,
        list: &str,
    ) -> Result<Mount, (Problem, String)> {
        let (host, guest, mode) = entry.parts();
        let mode = mode.unwrap_or(default_mode);
        if default_mode == MountMode::Ro && mode == MountMode::Rw {
            let p = Problem::new(
                ErrorKind::Malformed,
                "mode = \"rw\" in allowed_read_paths",
                "move the entry to allowed_write_paths, or drop `mode`",
            );
            return Err((p, host.to_string()));
        }
        let host_c = host_dir(host).map_err(|p| (p, host.to_string()))?;
        let guest = normalize_guest(guest).map_err(|p| (p, guest.to_string()))?;
        if let Some(c) = self.ceiling {
            let under: Vec<&Mount> = c
                .mounts
                .mounts()
                .iter()
                .filter(|m| host_c.starts_with(&m.host))
                .collect();
            if !under
                .iter()
                .any(|m| mode == MountMode::Ro || m.mode == MountMode::Rw)
            {
                let shown = host_c.display();
                let p = if under.is_empty() {
                    outside(
                        format!("{shown} is under no defaults.policy mount"),
                        format!(
                            "add it (or a parent) to [defaults.policy].{list}, or remove it here"
                        ),
                    )
                } else {
                    outside(
                        format!("{shown} is read-only in defaults.policy"),
                        "move it to allowed_read_paths, or add it to [defaults.policy].allowed_write_paths",
                    )
                };
                return Err((p, host.to_string()));
            }
        }
        Ok(Mount {
            host: host_c,
            guest,
            mode,
            quota_bytes: None,
        })
    }

    /// A mount's `quota_bytes`: at least 1, on a write mount only, and at
    /// most the smallest quota of the ceiling write mounts it is under
    /// (inherited when the tool sets none). The error carries the value.
    fn quota(&self, entry: &MountSpec, mount: &Mount, list: &str) -> Result<Option<u64>, (Problem, String)> {
        let written = entry.quota_bytes();
        if let Some(q) = written {
            if mount.mode == MountMode::Ro {
                let p = Problem::new(
                    ErrorKind::Malformed,
                    format!("a quota on a read-only mount (in {list}) bounds nothing"),
                    "remove quota_bytes, or move the entry to allowed_write_paths",
                );
                return Err((p, q.to_string()));
            }
            if q < 1 {
                let p = Problem::new(
                    ErrorKind::Malformed,
                    "quota_bytes must be at least 1",
                    "set the bytes the mount may hold (e.g. quota_bytes = 104857600 for 100 MiB), or remove quota_bytes for no quota",
                );
                return Err((p, q.to_string()));
            }
        }
        let written = written.map(|q| q as u64);
        if mount.mode == MountMode::Ro {
            return Ok(None);
        }
        let ceiling = self.ceiling.and_then(|c| {
            c.mounts
                .mounts()
                .iter()
                .filter(|m| m.mode == MountMode::Rw && mount.host.starts_with(&m.host))
                .filter_map(|m| m.quota_bytes)
                .min()
        });
        match (written, ceiling) {
            (Some(q), Some(c)) if q > c => Err((
                outside(
                    format!("exceeds defaults.policy's quota_bytes = {c} on the mount it is under"),
                    format!("set quota_bytes to at most {c}, or raise it in [defaults.policy].allowed_write_paths"),
                ),
                q.to_string(),
            )),
            (Some(q), _) => Ok(Some(q)),
            (None, c) => Ok(c),
        }
    }

    fn network(&self, spec: &PolicySpec) -> Result<HostRules, PolicyError> {
        let entries = spec.allowed_network_hosts.as_deref().unwrap_or_default();
        let field = |i: usize| format!("allowed_network_hosts[{i}]");
        let rules =
            HostRules::parse(entries).map_err(|(i, p)| p.at(&self.scope, field(i), &entries[i]))?;
        if let Some(c) = self.ceiling {
            if let Some((i, p)) = rules
                .patterns()
                .iter()
                .enumerate()
                .find(|(_, p)| !c.network.covers(p))
            {
                return Err(outside(
                    format!("`{p}` is not covered by defaults.policy.allowed_network_hosts"),
                    "add it (or a wider entry such as `*.example.com` or `host:*`) to [defaults.policy].allowed_network_hosts, or remove it here",
                )
                .at(&self.scope, field(i), &entries[i]));
            }
        }
        Ok(rules)
    }

    fn env(
        &self,
        spec: &PolicySpec,
        prefixes: &[String],
    ) -> Result<BTreeMap<String, String>, PolicyError> {
        let env = spec.env.clone().unwrap_or_default();
        for (k, v) in &env {
            let at = |p: Problem| p.at(&self.scope, format!("env.{k}"), k);
            check_entry(k, v, prefixes).map_err(at)?;
            if let Some(c) = self.ceiling {
                match c.env.get(k) {
                    None => {
                        return Err(at(outside(
                            "defaults.policy.env does not list this key",
                            "add it to [defaults.policy].env, or remove it here",
                        )))
                    }
                    Some(cv) if cv != v => {
                        return Err(at(outside(
                            "defaults.policy.env gives this key a different value",
                            "use the value from [defaults.policy].env, or change it there",
                        )))
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(env)
    }

    fn subprocess(&self, spec: &PolicySpec) -> Result<SubprocessPolicy, PolicyError> {
        let c = self.ceiling.map(|c| &c.subprocess);
        let allowed = self.grant(
            "allow_subprocess",
            spec.allow_subprocess,
            c.map(|c| c.allowed),
        )?;
        if allowed {
            if let Some(why) = process::sandbox_unavailable() {
                return Err(Problem::new(
                    ErrorKind::Malformed,
                    why,
                    "run wasmward on a Linux kernel with Landlock, or set allow_subprocess = false",
                )
                .at(&self.scope, "allow_subprocess", "true"));
            }
        }
        let path_var = std::env::var_os("PATH");
        let mut programs: Vec<Program> = Vec::new();
        for (i, item) in spec.subprocess_allowlist.iter().flatten().enumerate() {
            let entry = item.entry();
            let name = &entry.program;
            let field = format!("subprocess_allowlist[{i}]");
            let path = resolve_program(name, path_var.as_deref())
                .map_err(|p| p.at(&self.scope, &field, name))?;
            if let Some(c) = c {
                if !c.programs.iter().any(|cp| same_program(&cp.path, &path)) {
                    return Err(outside(
                        format!(
                            "resolves to {}, which is not on defaults.policy.subprocess_allowlist",
                            path.display()
                        ),
                        "add it to [defaults.policy].subprocess_allowlist, or remove it here",
                    )
                    .at(&self.scope, &field, name));
                }
            }
            if process::is_shell_like(&path) && !entry.allow_shell {
                return Err(Problem::new(
                    ErrorKind::Malformed,
                    format!("{} is a shell or interpreter: it runs whatever its arguments say", path.display()),
                    format!(
                        "allowlist the program the tool really needs, pin its arguments with {{ program = {name:?}, args = [...] }}, or write {{ program = {name:?}, allow_shell = true }} if the tool must run code"
                    ),
                )
                .at(&self.scope, &field, name));
            }
            let mut args = None;
            if let Some(list) = &entry.args {
                let mut pats = Vec::new();
                for (j, a) in list.iter().enumerate() {
                    pats.push(process::ArgPattern::new(a).map_err(|e| {
                        Problem::new(
                            ErrorKind::Malformed,
                            format!("not a regex: {e}"),
                            "write a regex (https://docs.rs/regex) matching the whole argument",
                        )
                        .at(&self.scope, format!("{field}.args[{j}]"), a)
                    })?);
                }
                args = Some(pats);
            }
            let mut extra = Vec::new();
            for (j, x) in entry.extra_read_paths.iter().enumerate() {
                let f = format!("{field}.extra_read_paths[{j}]");
                let p = std::path::Path::new(x);
                if !p.is_absolute() {
                    return Err(Problem::new(ErrorKind::RelativePath, "relative path", "write an absolute host path")
                        .at(&self.scope, f, x));
                }
                if let Err(e) = p.metadata() {
                    return Err(Problem::new(
                        ErrorKind::MissingPath,
                        format!("host path cannot be read ({e})"),
                        "create it, or remove the entry",
                    )
                    .at(&self.scope, f, x));
                }
                extra.push(p.to_path_buf());
            }
            // Under a ceiling, the ceiling's entry for the program bounds
            // this one: its argument patterns are inherited (or must be
            // repeated as they are), its extra_read_paths are the most.
            if let Some(cp) = c.and_then(|c| c.programs.iter().find(|cp| same_program(&cp.path, &path))) {
                match (&args, &cp.args) {
                    (None, Some(ca)) => args = Some(ca.clone()),
                    (Some(a), Some(ca)) if a != ca => {
                        return Err(outside(
                            "args differ from the ceiling's entry for this program",
                            "remove args here (the ceiling's apply), or repeat them exactly",
                        )
                        .at(&self.scope, format!("{field}.args"), name));
                    }
                    _ => {}
                }
                if let Some(x) = extra.iter().find(|x| !cp.extra_read_paths.contains(x)) {
                    return Err(outside(
                        format!("extra_read_paths {} is not on the ceiling's entry for this program", x.display()),
                        "add it to the [defaults.policy] entry, or remove it here",
                    )
                    .at(&self.scope, format!("{field}.extra_read_paths"), name));
                }
            }
            programs.push(Program {
                name: name.clone(),
                path,
                args,
                allow_shell: entry.allow_shell,
                extra_read_paths: extra,
            });
        }
        Ok(SubprocessPolicy {
            allowed,
            programs,
            timeout_ms: self.limit(
                "subprocess_timeout_ms",
                spec.subprocess_timeout_ms,
                c.map(|c| c.timeout_ms),
                process::DEFAULT_TIMEOUT_MS,
            )?,
            max_output_bytes: self.limit(
                "subprocess_max_output_bytes",
                spec.subprocess_max_output_bytes,
                c.map(|c| c.max_output_bytes),
                process::DEFAULT_MAX_OUTPUT_BYTES,
            )?,
            max_concurrent: self.limit(
                "subprocess_max_concurrent",
                spec.subprocess_max_concurrent,
                c.map(|c| c.max_concurrent),
                process::DEFAULT_MAX_CONCURRENT,
            )?,
            max_memory_bytes: self.limit(
                "subprocess_max_memory_bytes",
                spec.subprocess_max_memory_bytes,
                c.map(|c| c.max_memory_bytes),
                process::DEFAULT_MAX_MEMORY_BYTES,
            )?,
            max_processes: self.limit(
                "subprocess_max_processes",
                spec.subprocess_max_processes,
                c.map(|c| c.max_processes),
                process::DEFAULT_MAX_PROCESSES,
            )?,
            max_file_bytes: self.limit(
                "subprocess_max_file_bytes",
                spec.subprocess_max_file_bytes,
                c.map(|c| c.max_file_bytes),
                process::DEFAULT_MAX_FILE_BYTES,
            )?,
            max_open_files: self.limit(
                "subprocess_max_open_files",
                spec.subprocess_max_open_files,
                c.map(|c| c.max_open_files),
                process::DEFAULT_MAX_OPEN_FILES,
            )?,
            run_as: self.run_as(spec.subprocess_run_as, c.map(|c| c.run_as))?,
        })
    }

    /// `subprocess_run_as`: a tool may not pick another uid than the
    /// ceiling's (uid 0, keeping root, only where the ceiling says so).
    fn run_as(&self, tool: Option<u32>, ceiling: Option<u32>) -> Result<u32, PolicyError> {
        let field = "subprocess_run_as";
        let c = ceiling.unwrap_or(process::DEFAULT_RUN_AS);
        match tool {
            Some(0) if c != 0 && !matches!(self.scope, Scope::Defaults) => Err(outside(
                "uid 0 keeps root for the program",
                "remove it (runs drop to an unprivileged uid), or set subprocess_run_as = 0 in [defaults.policy]".to_string(),
            )
            .at(&self.scope, field, "0")),
            Some(t) if ceiling.is_some() && t != c => Err(outside(
                format!("differs from defaults.policy's {c}"),
                format!("set it to {c}, or remove it"),
            )
            .at(&self.scope, field, t.to_string())),
            Some(t) => Ok(t),
            None => Ok(c),
        }
    }

    fn patterns(&self, field: &str, list: &[String]) -> Result<Vec<ImportPattern>, PolicyError> {
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                ImportPattern::parse(s).map_err(|p| p.at(&self.scope, format!("{field}[{i}]"), s))
            })
            .collect()
    }

    fn imports(&self, spec: &PolicySpec) -> Result<ImportRules, PolicyError> {
        let c = self.ceiling.map(|c| &c.imports);
        let mut blocked = c.map(|c| c.blocked.clone()).unwrap_or_default();
        for p in self.patterns(
            "blocked_imports",
            spec.blocked_imports.as_deref().unwrap_or_default(),
        )? {
            if !blocked.contains(&p) {
                blocked.push(p);
            }
        }
        let ceiling_allowed = c.and_then(|c| c.allowed.clone());
        let allowed = match spec.allowed_imports.as_deref() {
            None => ceiling_allowed,
            Some(list) => {
                let tool = self.patterns("allowed_imports", list)?;
                if let Some(wide) = &ceiling_allowed {
                    if let Some(i) = tool.iter().position(|t| !wide.iter().any(|w| w.covers(t))) {
                        return Err(outside(
                            "not covered by defaults.policy.allowed_imports",
                            "narrow it to a pattern inside [defaults.policy].allowed_imports, or remove it here",
                        )
                        .at(&self.scope, format!("allowed_imports[{i}]"), &list[i]));
                    }
                }
                Some(tool)
            }
        };
        Ok(ImportRules { allowed, blocked })
    }
}

/// Same allowlist entry: the same path, or the same name for the same file
/// (`/bin/sh` and `/usr/bin/sh`). Different names for one multi-call binary
/// (busybox `ls` and `rm`) stay different programs.
fn same_program(a: &Path, b: &Path) -> bool {
    a == b
        || (a.file_name() == b.file_name()
            && matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A temp tree: {T}/data, {T}/data/sub, {T}/out.
    pub(crate) fn tree() -> PathBuf {
        let root = std::env::temp_dir()
            .canonicalize()
            .unwrap()
            .join(format!("wasmward-policy-{}", std::process::id()));
        for d in ["data/sub", "out"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        // A mount root that is a symlink (to a directory inside the tree).
        let link = root.join("link-to-data");
        if std::fs::symlink_metadata(&link).is_err() {
            let _ = std::os::unix::fs::symlink(root.join("data"), &link);
        }
        root
    }

    type Want = Result<&'static [&'static str], (ErrorKind, &'static str)>;
    /// (ceiling TOML or None, tool TOML or None, Ok(lines in the printed policy) or Err((kind, text in the error)))
    const CASES: &[(Option<&str>, Option<&str>, Want)] = &[
        // No policy at all: nothing granted, safe defaults.
        (None, None, Ok(&["allowed_network_hosts = []", "allowed_read_paths = []", "block_private_ips = true",
            "allow_subprocess = false", "allow_eval_exec = false", "sandbox_violation_action = \"deny\"", "env = {}"])),
        // No ceiling: the tool's grants stand.
        (None, Some("block_private_ips = false\nallow_eval_exec = true"), Ok(&["block_private_ips = false", "allow_eval_exec = true"])),
        (None, Some("allowed_read_paths = [\"{T}/data\"]"), Ok(&["allowed_read_paths = [\"{T}/data\"]"])),
        (None, Some("allowed_write_paths = [{ host = \"{T}/out/.\", guest = \"/out/\" }]"),
            Ok(&["allowed_write_paths = [{ guest = \"/out\", host = \"{T}/out\" }]"])),
        (None, Some("allowed_network_hosts = [\"API.example.com.\"]"), Ok(&["allowed_network_hosts = [\"api.example.com\"]"])),
        (None, Some("sandbox_violation_action = \"log\""), Ok(&["sandbox_violation_action = \"log\""])),
        (None, Some("subprocess_timeout_ms = 50"), Ok(&["subprocess_timeout_ms = 50", "subprocess_max_concurrent = 4"])),
        // A tool with no policy gets nothing, even under a generous ceiling, but inherits its safety settings.
        (Some("allowed_network_hosts = [\"*.example.com:*\"]\nallow_subprocess = true\nblock_private_ips = false\nstrict_imports = true"), None,
            Ok(&["allowed_network_hosts = []", "allow_subprocess = false", "block_private_ips = false", "strict_imports = true"])),
        // Hosts.
        (Some("allowed_network_hosts = [\"*.example.com\"]"), Some("allowed_network_hosts = [\"api.example.com\"]"), Ok(&["allowed_network_hosts = [\"api.example.com\"]"])),
        (Some("allowed_network_hosts = [\"*.example.com\"]"), Some("allowed_network_hosts = [\"a.example.com\", \"example.com\"]"),
            Err((ErrorKind::OutsideCeiling, "tool \"t\": policy.allowed_network_hosts[1] = \"example.com\": `example.com` is not covered"))),
        (Some("allowed_network_hosts = [\"*.example.com\"]"), Some("allowed_network_hosts = [\"a.example.com:8443\"]"), Err((ErrorKind::OutsideCeiling, "allowed_network_hosts[0]"))),
        (Some(""), Some("allowed_network_hosts = [\"api.example.com\"]"), Err((ErrorKind::OutsideCeiling, "allowed_network_hosts[0]"))),
        (None, Some("allowed_network_hosts = [\"ok.com\", \"*\"]"), Err((ErrorKind::Malformed, "allowed_network_hosts[1] = \"*\": `*` would allow every host"))),
        (Some("allowed_network_hosts = [\"foo.*.com\"]"), None, Err((ErrorKind::Malformed, "defaults.policy.allowed_network_hosts[0]"))),
        // Safety settings.
        (Some(""), Some("block_private_ips = false"), Err((ErrorKind::RelaxesCeiling, "policy.block_private_ips = \"false\""))),
        (Some("block_private_ips = true"), Some("block_private_ips = true"), Ok(&["block_private_ips = true"])),
        (Some("block_private_ips = false"), Some(""), Ok(&["block_private_ips = false"])),
        (Some("block_private_ips = false"), Some("block_private_ips = true"), Ok(&["block_private_ips = true"])),
        (Some(""), Some("sandbox_violation_action = \"log\""), Err((ErrorKind::RelaxesCeiling, "sandbox_violation_action"))),
        (Some("sandbox_violation_action = \"log\""), Some(""), Ok(&["sandbox_violation_action = \"log\""])),
        (Some("sandbox_violation_action = \"log\""), Some("sandbox_violation_action = \"deny\""), Ok(&["sandbox_violation_action = \"deny\""])),
        (Some("strict_imports = true"), Some("strict_imports = false"), Err((ErrorKind::RelaxesCeiling, "strict_imports"))),
        (Some(""), Some("strict_imports = true"), Ok(&["strict_imports = true"])),
        // Grants.
        (Some(""), Some("allow_eval_exec = true"), Err((ErrorKind::OutsideCeiling, "policy.allow_eval_exec = \"true\": defaults.policy does not grant it"))),
        (Some("allow_subprocess = false"), Some("allow_subprocess = true"), Err((ErrorKind::OutsideCeiling, "allow_subprocess"))),
        (Some("allow_udp = true"), Some("allow_udp = true"), Ok(&["allow_udp = true"])),
        (Some(""), Some("allow_listen = true"), Err((ErrorKind::OutsideCeiling, "allow_listen"))),
        (None, None, Ok(&["allow_symlinks = false"])),
        (None, Some("allow_symlinks = true"), Ok(&["allow_symlinks = true"])),
        (Some("allow_symlinks = true"), Some(""), Ok(&["allow_symlinks = false"])),
        (Some(""), Some("allow_symlinks = true"), Err((ErrorKind::OutsideCeiling, "policy.allow_symlinks = \"true\": defaults.policy does not grant it"))),
        // Subprocess.
        (None, Some("allow_subprocess = true\nsubprocess_allowlist = [{ program = \"sh\", allow_shell = true }]"), Ok(&["allow_subprocess = true"])),
        (None, Some("subprocess_allowlist = [\"no-such-program-xyz\"]"), Err((ErrorKind::UnresolvedProgram, "subprocess_allowlist[0] = \"no-such-program-xyz\": not found in PATH"))),
        (None, Some("subprocess_allowlist = [\"./sh\"]"), Err((ErrorKind::RelativePath, "subprocess_allowlist[0]"))),
        (None, Some("subprocess_allowlist = [\"sh\"]"), Err((ErrorKind::Malformed, "subprocess_allowlist[0] = \"sh\": /"))),
        (None, Some("subprocess_allowlist = [\"cat\", \"env\"]"), Err((ErrorKind::Malformed, "subprocess_allowlist[1] = \"env\": /"))),
        (None, Some("subprocess_allowlist = [{ program = \"cat\", args = [\"(\"] }]"), Err((ErrorKind::Malformed, "subprocess_allowlist[0].args[0] = \"(\": not a regex"))),
        (None, Some("subprocess_allowlist = [{ program = \"cat\", extra_read_paths = [\"rel\"] }]"), Err((ErrorKind::RelativePath, "subprocess_allowlist[0].extra_read_paths[0]"))),
        (Some("allow_subprocess = true\nsubprocess_allowlist = [{ program = \"cat\", args = [\"a\"] }]"), Some("subprocess_allowlist = [{ program = \"cat\", args = [\"b\"] }]"),
            Err((ErrorKind::OutsideCeiling, "subprocess_allowlist[0].args = \"cat\": args differ"))),
        (Some("allow_subprocess = true\nsubprocess_allowlist = [{ program = \"sh\", allow_shell = true }]"), Some("allow_subprocess = true\nsubprocess_allowlist = [{ program = \"/bin/sh\", allow_shell = true }]"), Ok(&["allow_subprocess = true"])),
        (Some("allow_subprocess = true\nsubprocess_allowlist = [{ program = \"sh\", allow_shell = true }]"), Some("subprocess_allowlist = [{ program = \"sh\", allow_shell = true }, \"ls\"]"),
            Err((ErrorKind::OutsideCeiling, "subprocess_allowlist[1] = \"ls\": resolves to"))),
        (Some("subprocess_timeout_ms = 1000"), Some("subprocess_timeout_ms = 2000"), Err((ErrorKind::OutsideCeiling, "subprocess_timeout_ms = \"2000\": exceeds defaults.policy's 1000"))),
        (Some("subprocess_timeout_ms = 1000"), Some(""), Ok(&["subprocess_timeout_ms = 1000"])),
        (Some("subprocess_max_concurrent = 2"), Some("subprocess_max_concurrent = 1"), Ok(&["subprocess_max_concurrent = 1"])),
        (None, Some("subprocess_max_output_bytes = 0"), Err((ErrorKind::Malformed, "at least 1"))),
        (None, Some(""), Ok(&["subprocess_max_memory_bytes = 1073741824", "subprocess_max_processes = 64", "subprocess_max_file_bytes = 67108864", "subprocess_max_open_files = 256", "subprocess_run_as = 65534"])),
        (Some("subprocess_max_processes = 16"), Some("subprocess_max_processes = 32"), Err((ErrorKind::OutsideCeiling, "subprocess_max_processes = \"32\": exceeds defaults.policy's 16"))),
        (Some("subprocess_max_memory_bytes = 1000000"), Some(""), Ok(&["subprocess_max_memory_bytes = 1000000"])),
        (None, Some("subprocess_max_open_files = 0"), Err((ErrorKind::Malformed, "at least 1"))),
        (None, Some("subprocess_run_as = 0"), Err((ErrorKind::OutsideCeiling, "subprocess_run_as = \"0\": uid 0 keeps root"))),
        (Some("subprocess_run_as = 0"), Some("subprocess_run_as = 0"), Ok(&["subprocess_run_as = 0"])),
        (Some("subprocess_run_as = 1000"), Some("subprocess_run_as = 1001"), Err((ErrorKind::OutsideCeiling, "differs from defaults.policy's 1000"))),
        (None, Some("subprocess_run_as = 4242"), Ok(&["subprocess_run_as = 4242"])),
        // Env.
        (None, Some("env = { LANG = \"C\" }"), Ok(&["env = { LANG = \"C\" }"])),
        (None, Some("env = { AWS_REGION = \"eu\" }"), Err((ErrorKind::SensitiveEnv, "policy.env.AWS_REGION = \"AWS_REGION\": key has a sensitive prefix AWS_"))),
        (None, Some("env = { OPENAI_API_KEY = \"x\" }"), Err((ErrorKind::SensitiveEnv, "env.OPENAI_API_KEY"))),
        (None, Some("env = { DB_PASSWORD = \"x\" }"), Err((ErrorKind::SensitiveEnv, "sensitive suffix _PASSWORD"))),
        (Some("sensitive_env_prefixes = [\"MYCO_\"]\nenv = { MYCO_X = \"1\" }"), None, Err((ErrorKind::SensitiveEnv, "defaults.policy.env.MYCO_X"))),
        (Some("sensitive_env_prefixes = [\"MYCO_\"]"), Some("env = { MYCO_X = \"1\" }"), Err((ErrorKind::SensitiveEnv, "sensitive prefix MYCO_"))),
        (Some("env = { LANG = \"C\", TZ = \"UTC\" }"), Some("env = { LANG = \"C\" }"), Ok(&["env = { LANG = \"C\" }"])),
        (Some("env = { LANG = \"C\" }"), Some("env = { LANG = \"en_US\" }"), Err((ErrorKind::OutsideCeiling, "different value"))),
        (Some("env = { LANG = \"C\" }"), Some("env = { TZ = \"UTC\" }"), Err((ErrorKind::OutsideCeiling, "env.TZ"))),
        // Mounts.
        (None, Some("allowed_read_paths = [{ host = \"{T}/data\", mode = \"rw\" }]"), Err((ErrorKind::Malformed, "allowed_read_paths[0]"))),
        (None, Some("allowed_write_paths = [\"data\"]"), Err((ErrorKind::RelativePath, "allowed_write_paths[0] = \"data\": host path is relative"))),
        (None, Some("allowed_write_paths = [\"{T}/out\", \"{T}/missing\"]"), Err((ErrorKind::MissingPath, "allowed_write_paths[1] = \"{T}/missing\": host path cannot be opened"))),
        (None, Some("allowed_read_paths = [{ host = \"{T}/data\", guest = \"data\" }]"), Err((ErrorKind::RelativePath, "guest path is not absolute"))),
        (None, Some("allowed_read_paths = [{ host = \"{T}/data\", guest = \"/\" }]"), Err((ErrorKind::MountConflict, "reserved"))),
        (None, Some("allowed_read_paths = [\"{T}/data\"]\nallowed_write_paths = [{ host = \"{T}/out\", guest = \"{T}/data/x\" }]"),
            Err((ErrorKind::MountConflict, "allowed_write_paths[0] = \"{T}/data/x\""))),
        (None, Some("allowed_write_paths = [{ host = \"{T}/out\", mode = \"ro\" }]"), Ok(&["allowed_read_paths = [\"{T}/out\"]", "allowed_write_paths = []"])),
        (Some("allowed_write_paths = [\"{T}\"]"), Some("allowed_read_paths = [\"{T}/data/sub\"]\nallowed_write_paths = [\"{T}/out\"]"), Ok(&["allowed_write_paths = [\"{T}/out\"]"])),
        (Some("allowed_read_paths = [\"{T}/data\"]"), Some("allowed_write_paths = [\"{T}/data/sub\"]"), Err((ErrorKind::OutsideCeiling, "read-only in defaults.policy"))),
        (Some("allowed_read_paths = [\"{T}/data\"]"), Some("allowed_read_paths = [\"{T}/out\"]"), Err((ErrorKind::OutsideCeiling, "under no defaults.policy mount"))),
        (Some(""), Some("allowed_read_paths = [\"{T}/out\"]"), Err((ErrorKind::OutsideCeiling, "allowed_read_paths[0]"))),
        (Some("allowed_read_paths = [\"{T}/missing\"]"), None, Err((ErrorKind::MissingPath, "defaults.policy.allowed_read_paths[0]"))),
        // Quotas.
        (None, Some("allowed_write_paths = [{ host = \"{T}/out\", guest = \"/o\", quota_bytes = 1000 }]"),
            Ok(&["allowed_write_paths = [{ guest = \"/o\", host = \"{T}/out\", quota_bytes = 1000 }]"])),
        (None, Some("allowed_write_paths = [\"{T}/data\", { host = \"{T}/out\", quota_bytes = 0 }]"),
            Err((ErrorKind::Malformed, "tool \"t\": policy.allowed_write_paths[1].quota_bytes = \"0\": quota_bytes must be at least 1. Fix: set the bytes"))),
        (None, Some("allowed_write_paths = [{ host = \"{T}/out\", quota_bytes = -5 }]"),
            Err((ErrorKind::Malformed, "policy.allowed_write_paths[0].quota_bytes = \"-5\": quota_bytes must be at least 1"))),
        (None, Some("allowed_read_paths = [{ host = \"{T}/data\", quota_bytes = 10 }]"),
            Err((ErrorKind::Malformed, "policy.allowed_read_paths[0].quota_bytes = \"10\": a quota on a read-only mount (in allowed_read_paths) bounds nothing. Fix: remove quota_bytes"))),
        (None, Some("allowed_write_paths = [{ host = \"{T}/out\", mode = \"ro\", quota_bytes = 10 }]"),
            Err((ErrorKind::Malformed, "allowed_write_paths[0].quota_bytes = \"10\": a quota on a read-only mount"))),
        (Some("allowed_write_paths = [{ host = \"{T}/out\", quota_bytes = 0 }]"), None,
            Err((ErrorKind::Malformed, "defaults.policy.allowed_write_paths[0].quota_bytes = \"0\""))),
        (Some("allowed_write_paths = [{ host = \"{T}\", quota_bytes = 1000 }]"), Some("allowed_write_paths = [{ host = \"{T}/out\", quota_bytes = 500 }]"),
            Ok(&["allowed_write_paths = [{ guest = \"{T}/out\", host = \"{T}/out\", quota_bytes = 500 }]"])),
        (Some("allowed_write_paths = [{ host = \"{T}\", quota_bytes = 1000 }]"), Some("allowed_write_paths = [\"{T}/out\"]"),
            Ok(&["allowed_write_paths = [{ guest = \"{T}/out\", host = \"{T}/out\", quota_bytes = 1000 }]"])),
        (Some("allowed_write_paths = [{ host = \"{T}\", quota_bytes = 1000 }]"), Some("allowed_write_paths = [{ host = \"{T}/out\", quota_bytes = 1001 }]"),
            Err((ErrorKind::OutsideCeiling, "policy.allowed_write_paths[0].quota_bytes = \"1001\": exceeds defaults.policy's quota_bytes = 1000 on the mount it is under. Fix: set quota_bytes to at most 1000"))),
        (Some("allowed_write_paths = [\"{T}\", { host = \"{T}/out\", guest = \"/o\", quota_bytes = 100 }]"), Some("allowed_write_paths = [\"{T}/out\", \"{T}/data\"]"),
            Ok(&["allowed_write_paths = [{ guest = \"{T}/out\", host = \"{T}/out\", quota_bytes = 100 }, \"{T}/data\"]"])),
        (None, Some("allowed_write_paths = [{ host = \"{T}\", guest = \"/all\" }, { host = \"{T}/out\", guest = \"/o\", quota_bytes = 10 }]"),
            Err((ErrorKind::MountConflict, "allowed_write_paths[1] = \"/o\": write mount /all overlaps on the host with /o, which has quota_bytes"))),
        (None, Some("allowed_read_paths = [{ host = \"{T}/out\", guest = \"/r\" }]\nallowed_write_paths = [{ host = \"{T}/out\", guest = \"/o\", quota_bytes = 10 }]"),
            Ok(&["allowed_read_paths = [{ guest = \"/r\", host = \"{T}/out\" }]"])),
        (Some("allowed_write_paths = [{ host = \"{T}\", quota_bytes = 1000 }]"), Some("allowed_read_paths = [\"{T}/out\"]"),
            Ok(&["allowed_read_paths = [\"{T}/out\"]"])),
        // A mount root that is itself a symlink is refused; name the target instead.
        (None, Some("allowed_read_paths = [\"{T}/link-to-data\"]"),
            Err((ErrorKind::SymlinkPath, "allowed_read_paths[0] = \"{T}/link-to-data\": host path is a symlink (to {T}/data)"))),
        (None, Some("allowed_write_paths = [{ host = \"{T}/link-to-data/\", guest = \"/d\" }]"), Err((ErrorKind::SymlinkPath, "host path is a symlink"))),
        (None, Some("allowed_read_paths = [\"{T}/link-to-data/sub\"]"),
            Ok(&["allowed_read_paths = [{ guest = \"{T}/link-to-data/sub\", host = \"{T}/data/sub\" }]"])),
        // Imports.
        (Some("allowed_imports = [\"wasi:*\"]"), Some("allowed_imports = [\"wasi:cli/*\"]"), Ok(&["allowed_imports = [\"wasi:cli/*\"]"])),
        (Some("allowed_imports = [\"wasi:*\"]"), Some(""), Ok(&["allowed_imports = [\"wasi:*\"]"])),
        (Some("allowed_imports = [\"wasi:*\"]"), Some("allowed_imports = [\"*\"]"), Err((ErrorKind::OutsideCeiling, "allowed_imports[0]"))),
        (Some("blocked_imports = [\"wasi:sockets/*\"]"), Some("blocked_imports = [\"wasi:http/*\"]"), Ok(&["blocked_imports = [\"wasi:sockets/*\", \"wasi:http/*\"]"])),
        (None, Some("blocked_imports = [\"wasi:sockets\"]"), Err((ErrorKind::Malformed, "blocked_imports[0] = \"wasi:sockets\": names a package"))),
        (None, Some("sensitive_env_prefixes = [\"\"]"), Err((ErrorKind::Malformed, "sensitive_env_prefixes[0]"))),
    ];

    fn spec(src: Option<&str>, root: &str) -> Option<PolicySpec> {
        src.map(|s| toml::from_str(&s.replace("{T}", root)).unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn resolve_table() {
        let root = tree();
        let root = root.to_str().unwrap();
        for (ceiling, tool, want) in CASES {
            let (c, t) = (spec(*ceiling, root), spec(*tool, root));
            let got = EffectivePolicy::resolve(c.as_ref(), t.as_ref(), "t");
            match (got, want) {
                (Ok(p), Ok(lines)) => {
                    let text = p.to_string();
                    for line in *lines {
                        let line = line.replace("{T}", root);
                        assert!(
                            text.lines().any(|l| l == line),
                            "{ceiling:?} / {tool:?}: no line {line:?} in\n{text}"
                        );
                    }
                }
                (Err(e), Err((kind, msg))) => {
                    let msg = msg.replace("{T}", root);
                    assert_eq!(e.kind, *kind, "{ceiling:?} / {tool:?}: {e}");
                    assert!(
                        e.to_string().contains(&msg),
                        "{ceiling:?} / {tool:?}: {e}\nlacks {msg:?}"
                    );
                }
                (got, _) => panic!("{ceiling:?} / {tool:?}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn error_says_the_fix() {
        let c: PolicySpec = toml::from_str("allowed_network_hosts = [\"*.example.com\"]").unwrap();
        let t: PolicySpec = toml::from_str("allowed_network_hosts = [\"evil.io\"]").unwrap();
        let e = EffectivePolicy::resolve(Some(&c), Some(&t), "fetch").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tool \"fetch\": policy.allowed_network_hosts[0] = \"evil.io\": `evil.io` is not covered by \
             defaults.policy.allowed_network_hosts. Fix: add it (or a wider entry such as `*.example.com` or \
             `host:*`) to [defaults.policy].allowed_network_hosts, or remove it here"
        );
    }

    #[test]
    fn printed_policy_resolves_to_itself() {
        let root = tree();
        let src = r#"allowed_read_paths = ["{T}/data", { host = "{T}/out", guest = "/o" }]
            allowed_network_hosts = ["*.example.com:*", "10.0.0.0/8:5432"]
            env = { LANG = "C" }
            allow_subprocess = true
            subprocess_allowlist = [{ program = "sh", allow_shell = true }, { program = "true", args = ["-x", "[a-z]+"] }, "cat"]
            blocked_imports = ["wasi:sockets/udp"]"#;
        let t = spec(Some(src), root.to_str().unwrap());
        let p = EffectivePolicy::resolve(None, t.as_ref(), "t").unwrap();
        let again = EffectivePolicy::resolve(None, Some(&p.to_spec()), "t").unwrap();
        assert_eq!(again.to_spec(), p.to_spec());
        let reparsed: PolicySpec = toml::from_str(&p.to_string()).unwrap();
        assert_eq!(reparsed, p.to_spec());
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["allowed_network_hosts"][1], "10.0.0.0/8:5432");
    }
}
