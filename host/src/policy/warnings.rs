//! Warnings for `wasmward check`: grants that have no effect, and settings
//! that weaken the sandbox in ways an operator should see spelled out.

use super::effective::EffectivePolicy;
use super::error::Warning;
use super::hosts::HostMatch;
use super::paths::MountMode;
use super::spec::PolicySpec;
use super::ViolationAction;

fn warn(out: &mut Vec<Warning>, field: impl Into<String>, message: impl Into<String>) {
    out.push(Warning {
        field: field.into(),
        message: message.into(),
    });
}

/// All warnings for a resolved policy; `spec` tells what the tool wrote.
pub(super) fn collect(spec: &PolicySpec, p: &EffectivePolicy) -> Vec<Warning> {
    let mut out = Vec::new();
    subprocess(spec, p, &mut out);
    network(spec, p, &mut out);
    mounts(p, &mut out);
    env(p, &mut out);
    imports(p, &mut out);
    if p.violation_action == ViolationAction::Log {
        warn(
            &mut out,
            "sandbox_violation_action",
            "\"log\" is discovery mode: network uses outside the policy are allowed and only recorded (programs still need subprocess_allowlist)",
        );
    }
    out
}

fn subprocess(spec: &PolicySpec, p: &EffectivePolicy, out: &mut Vec<Warning>) {
    let sp = &p.subprocess;
    if !sp.allowed {
        if !sp.programs.is_empty() {
            warn(
                out,
                "subprocess_allowlist",
                "has no effect: allow_subprocess is false",
            );
        }
        let limits = [
            (
                "subprocess_timeout_ms",
                spec.subprocess_timeout_ms.is_some(),
            ),
            (
                "subprocess_max_output_bytes",
                spec.subprocess_max_output_bytes.is_some(),
            ),
            (
                "subprocess_max_concurrent",
                spec.subprocess_max_concurrent.is_some(),
            ),
        ];
        for (field, _) in limits.iter().filter(|(_, set)| *set) {
            warn(out, *field, "has no effect: allow_subprocess is false");
        }
    } else if sp.run_as == 0 {
        warn(
            out,
            "subprocess_run_as",
            "0 keeps programs running as root when the host is root: the kernel does not enforce subprocess_max_processes for root",
        );
    }
    if sp.allowed && sp.programs.is_empty() {
        warn(
            out,
            "allow_subprocess",
            "has no effect: subprocess_allowlist is empty, so no program can run",
        );
    }
    if sp.allowed && sp.run_as != 0 && !sp.programs.is_empty() {
        for m in p.mounts.mounts() {
            if let Some(why) = unreachable_by(&m.host, sp.run_as, m.mode == MountMode::Rw) {
                warn(
                    out,
                    "subprocess_run_as",
                    format!(
                        "when the host runs as root, programs run as uid {} and cannot use the mount {} ({}): {why}; make it reachable (chmod/chown) or pick another subprocess_run_as",
                        sp.run_as,
                        m.guest,
                        m.host.display()
                    ),
                );
            }
        }
    }
    for (i, prog) in sp.programs.iter().enumerate() {
        if sp.allowed && sp.run_as != 0 {
            if let Some(why) = unreachable_by(&prog.path, sp.run_as, false) {
                warn(
                    out,
                    format!("subprocess_allowlist[{i}]"),
                    format!(
                        "when the host runs as root, programs run as uid {} and cannot start {}: {why}; allowlist a path that uid can reach (e.g. /usr/bin/...)",
                        sp.run_as,
                        prog.path.display()
                    ),
                );
            }
        }
        if sp.allowed && prog.allow_shell {
            warn(
                out,
                format!("subprocess_allowlist[{i}]"),
                format!(
                    "{} is a shell or interpreter (allow_shell = true): the tool can run any code its sandbox lets a program run",
                    prog.name
                ),
            );
        }
        if let Some(j) = sp.programs[..i].iter().position(|q| q.path == prog.path) {
            warn(
                out,
                format!("subprocess_allowlist[{i}]"),
                format!("has no effect: same program as subprocess_allowlist[{j}]"),
            );
        }
    }
}

/// Why `uid` (with gid = uid, no other groups) could not reach `path`
/// through the usual permission bits, if it could not: every ancestor needs
/// search (x), the mount read (r, x) and, when writable, write (w).
fn unreachable_by(path: &std::path::Path, uid: u32, writable: bool) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let allows = |meta: &std::fs::Metadata, bits: u32| {
            let mode = meta.mode();
            let shift = if meta.uid() == uid {
                6
            } else if meta.gid() == uid {
                3
            } else {
                0
            };
            (mode >> shift) & bits == bits
        };
        for anc in path.ancestors().skip(1) {
            let meta = std::fs::metadata(anc).ok()?;
            if !allows(&meta, 0o1) {
                return Some(format!("{} is mode {:o} and not searchable by it", anc.display(), meta.mode() & 0o7777));
            }
        }
        let meta = std::fs::metadata(path).ok()?;
        let need = match (meta.is_dir(), writable) {
            (true, true) => 0o7,
            (true, false) => 0o5,
            (false, true) => 0o6,
            (false, false) => 0o4,
        };
        if !allows(&meta, need) {
            return Some(format!("it is mode {:o}, owner {}", meta.mode() & 0o7777, meta.uid()));
        }
        None
    }
    #[cfg(not(unix))]
    {
        let _ = (path, uid, writable);
        None
    }
}

fn network(spec: &PolicySpec, p: &EffectivePolicy, out: &mut Vec<Warning>) {
    let pats = p.network.patterns();
    for (i, a) in pats.iter().enumerate() {
        // Equal entries: warn about the later one only.
        let by = pats
            .iter()
            .enumerate()
            .find(|&(j, b)| j != i && b.covers(a) && (j < i || !a.covers(b)));
        if let Some((j, b)) = by {
            warn(
                out,
                format!("allowed_network_hosts[{i}]"),
                format!("has no effect: `{a}` is covered by `{b}` (allowed_network_hosts[{j}])"),
            );
        }
        if let HostMatch::Subdomains(d) = &a.host {
            if !d.contains('.') {
                warn(
                    out,
                    format!("allowed_network_hosts[{i}]"),
                    format!("`{a}` allows every name under the top-level domain .{d}"),
                );
            }
        }
    }
    if p.network.is_empty() {
        if p.allow_udp {
            warn(
                out,
                "allow_udp",
                "has no effect: allowed_network_hosts grants no host",
            );
        }
        if spec.block_private_ips == Some(false) {
            warn(
                out,
                "block_private_ips",
                "has no effect: allowed_network_hosts grants no host",
            );
        }
    } else if !p.block_private_ips {
        warn(
            out,
            "block_private_ips",
            "is false: allowed hosts may resolve to loopback, private and cloud-metadata addresses",
        );
    }
}

fn mounts(p: &EffectivePolicy, out: &mut Vec<Warning>) {
    let ms = p.mounts.mounts();
    if p.allow_symlinks && !ms.iter().any(|m| m.mode == MountMode::Rw) {
        warn(out, "allow_symlinks", "has no effect: allowed_write_paths grants no mount to create them in");
    }
    for a in ms {
        for b in ms.iter().filter(|b| *b != a && a.host.starts_with(&b.host)) {
            let msg = if a.mode == MountMode::Ro && b.mode == MountMode::Rw {
                format!(
                    "read-only mount {} is writable through mount {}",
                    a.guest, b.guest
                )
            } else {
                format!(
                    "host path of mount {} is also reachable through mount {}",
                    a.guest, b.guest
                )
            };
            warn(out, "allowed_read_paths/allowed_write_paths", msg);
        }
    }
}

fn env(p: &EffectivePolicy, out: &mut Vec<Warning>) {
    let keys: Vec<&String> = p.env.keys().collect();
    for (i, a) in keys.iter().enumerate() {
        if let Some(b) = keys[..i].iter().find(|b| b.eq_ignore_ascii_case(a)) {
            warn(
                out,
                format!("env.{a}"),
                format!("differs from env.{b} only in case; programs may see either"),
            );
        }
    }
}

fn imports(p: &EffectivePolicy, out: &mut Vec<Warning>) {
    for (i, a) in p.imports.allowed.iter().flatten().enumerate() {
        if let Some(b) = p.imports.blocked.iter().find(|b| b.covers(a)) {
            warn(
                out,
                format!("allowed_imports[{i}]"),
                format!("has no effect: `{a}` is blocked by blocked_imports entry `{b}`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::narrow::tests::tree;
    use super::*;

    /// (tool TOML, the warnings expected: "field: text" substrings, in order)
    const CASES: &[(&str, &[&str])] = &[
        ("", &[]),
        ("allow_subprocess = true\nsubprocess_allowlist = [{ program = \"sh\", allow_shell = true }]", &["subprocess_allowlist[0]: sh is a shell or interpreter (allow_shell = true)"]),
        ("allow_subprocess = true\nsubprocess_allowlist = [\"cat\", { program = \"true\", args = [\"x\"] }]", &[]),
        ("subprocess_allowlist = [{ program = \"sh\", allow_shell = true }]", &["subprocess_allowlist: has no effect: allow_subprocess is false"]),
        ("subprocess_timeout_ms = 5", &["subprocess_timeout_ms: has no effect"]),
        ("allow_subprocess = true", &["allow_subprocess: has no effect: subprocess_allowlist is empty"]),
        ("allow_subprocess = true\nsubprocess_allowlist = [{ program = \"sh\", allow_shell = true }, { program = \"sh\", allow_shell = true }]", &["subprocess_allowlist[0]: sh is a shell", "subprocess_allowlist[1]: sh is a shell", "subprocess_allowlist[1]: has no effect: same program as subprocess_allowlist[0]"]),
        ("allowed_network_hosts = [\"a.example.com\", \"*.example.com\"]", &["allowed_network_hosts[0]: has no effect: `a.example.com` is covered by `*.example.com`"]),
        ("allowed_network_hosts = [\"x.com\", \"X.com.\"]", &["allowed_network_hosts[1]: has no effect"]),
        ("allowed_network_hosts = [\"x.com\", \"x.com:*\"]", &["allowed_network_hosts[0]: has no effect"]),
        ("allowed_network_hosts = [\"http://x.com\", \"https://x.com\"]", &[]),
        ("allowed_network_hosts = [\"*.io\"]", &["allowed_network_hosts[0]: `*.io` allows every name under the top-level domain .io"]),
        ("allow_udp = true", &["allow_udp: has no effect"]),
        ("block_private_ips = false", &["block_private_ips: has no effect"]),
        ("block_private_ips = false\nallowed_network_hosts = [\"x.com\"]", &["block_private_ips: is false"]),
        ("allowed_write_paths = [{ host = \"{T}\", guest = \"/all\" }]\nallowed_read_paths = [{ host = \"{T}/data\", guest = \"/d\" }]",
            &["read-only mount /d is writable through mount /all"]),
        ("allowed_read_paths = [{ host = \"{T}\", guest = \"/a\" }, { host = \"{T}/data\", guest = \"/b\" }]", &["host path of mount /b is also reachable through mount /a"]),
        ("env = { Lang = \"C\", LANG = \"C\" }", &["env.Lang: differs from env.LANG only in case"]),
        ("allowed_imports = [\"wasi:sockets/tcp\"]\nblocked_imports = [\"wasi:sockets/*\"]", &["allowed_imports[0]: has no effect"]),
        ("sandbox_violation_action = \"log\"", &["sandbox_violation_action: \"log\" is discovery mode"]),
        ("allow_symlinks = true", &["allow_symlinks: has no effect: allowed_write_paths grants no mount"]),
        ("allow_symlinks = true\nallowed_write_paths = [\"{T}/out\"]", &[]),
    ];

    #[test]
    fn warnings_table() {
        let root = tree();
        for (src, want) in CASES {
            let spec: PolicySpec =
                toml::from_str(&src.replace("{T}", root.to_str().unwrap())).unwrap();
            let p = EffectivePolicy::resolve(None, Some(&spec), "t")
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            let got: Vec<String> = p
                .warnings()
                .iter()
                .map(|w| format!("{}: {}", w.field, w.message))
                .collect();
            assert_eq!(got.len(), want.len(), "{src}: {got:#?}");
            for (g, w) in got.iter().zip(want.iter()) {
                assert!(g.contains(w), "{src}: {g:?} lacks {w:?}");
            }
        }
    }
}
