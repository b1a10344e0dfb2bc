//! Issue 8, the operator's edges: symlinks and mount roots, overlapping
//! mounts, temp-dir leftovers, refusals that must be denial rows (unspecified
//! and private peers), the subprocess allowlist in `log` mode, `--config`
//! typos, private audit files, policy warnings at call time, extra CA
//! certificates for outgoing HTTPS, and an audit log that fails closed when
//! its database is full. Each test asserts what the guest (or the operator)
//! saw and the audit rows.

mod common;
mod policy_support;

use common::{run, tool_path, wasmward, TestDir};
use policy_support::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use wasmward::audit::{AuditEvent, AuditKey, GateEvent};
use wasmward::CallError;

const SYMLINK: &str = "caps.symlink-escape";
const EACCES: &str = "Permission denied (os error 2)";

fn root_of(dir: &TestDir) -> PathBuf {
    dir.path().canonicalize().unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

// ------------------------------------------------------------- symlinks

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_are_off_by_default_and_never_lead_out_of_the_mount_when_allowed() {
    let dir = TestDir::new();
    let root = root_of(&dir);
    let rw = root.join("rw");
    fs::create_dir_all(rw.join("d1/d2/d3/d4/d5")).unwrap();
    fs::write(rw.join("f.txt"), "inside").unwrap();
    // A link the operator left in the mount, to an absolute path, and one
    // that climbs to the mount root (from where it is).
    symlink("/etc", rw.join("opt")).unwrap();
    symlink("..", rw.join("d1/up")).unwrap();
    let mount = format!("allowed_write_paths = [{}]", q(&rw));
    let tools = [
        tool("nolinks", "hostile", "", Some(&mount)),
        tool("links", "hostile", "", Some(&format!("{mount}\nallow_symlinks = true"))),
    ]
    .concat();
    let host = open(&dir, &tools).await;
    let p = |rel: &str| rw.join(rel).display().to_string();
    let link = |tool: &str, at: &str, target: &str| {
        let (host, at, target) = (&host, p(at), target.to_string());
        let f = format!("{tool}.{SYMLINK}");
        async move { call(host, &f, json!({"link-path": at, "target": target})).await }
    };
    let off = link("nolinks", "plain", "f.txt").await;
    // The issue's chain: `s` deep inside climbs to the mount root (inside,
    // lexically), `t` goes through it and out.
    let chain_s = link("links", "d1/d2/d3/d4/d5/s", "../../../../..").await;
    let chain_t = link("links", "t", "d1/d2/d3/d4/d5/s/../../../../../../etc").await;
    // The same chain built the other way round: the downward link first
    // (dangling), then the climbing link it would pass through.
    let down = link("links", "t2", "d1/d2/s2/passwd").await;
    let climb = link("links", "d1/d2/s2", "../../..").await;
    let absolute = link("links", "abs", "/etc/passwd").await;
    let through_operator_link = link("links", "via", "opt/passwd").await;
    let fine = link("links", "ok", "f.txt").await;
    // Moving the climbing link up a level would make it point above the mount.
    let moved = call(&host, "nolinks.caps.rename", json!({"from": p("d1/up"), "to": p("up")})).await;
    host.shutdown().await.unwrap();

    assert_eq!(guest_err(&off), format!("symlink: {}", "Operation not permitted (os error 63)"));
    for r in [&chain_s, &chain_t, &climb, &absolute, &through_operator_link] {
        let e = guest_err(r);
        assert!(e.starts_with("symlink: "), "refused at creation: {e}");
    }
    assert!(guest_err(&down).starts_with("read: "), "a dangling downward link is created: {down:?}");
    assert_eq!(ok(&fine), &json!("inside"));
    for refused in ["plain", "d1/d2/d3/d4/d5/s", "t", "d1/d2/s2", "abs", "via"] {
        assert!(fs::symlink_metadata(rw.join(refused)).is_err(), "{refused} was created on the host");
    }
    assert_eq!(fs::read_link(rw.join("t2")).unwrap(), Path::new("d1/d2/s2/passwd"));
    assert_eq!(fs::read_link(rw.join("ok")).unwrap(), Path::new("f.txt"));
    assert_eq!(guest_err(&moved), "rename: Operation not permitted (os error 63)");
    assert!(fs::symlink_metadata(rw.join("up")).is_err() && fs::symlink_metadata(rw.join("d1/up")).is_ok());

    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 9);
    let dotdot = |t: &str| format!("symlink target `{t}` leaves its mount, or could once a directory is renamed: `..` is refused in symlink targets");
    let f = |tool: &str| format!("{tool}.{SYMLINK}");
    assert_call(&calls[0], &f("nolinks"), "denied", &[deny("fs", "create", &p("plain"), "symlink creation is off (allow_symlinks = false)")]);
    assert_call(&calls[1], &f("links"), "denied", &[deny("fs", "create", &p("d1/d2/d3/d4/d5/s"), &dotdot("../../../../.."))]);
    assert_call(&calls[2], &f("links"), "denied", &[deny("fs", "create", &p("t"), &dotdot("d1/d2/d3/d4/d5/s/../../../../../../etc"))]);
    assert_call(&calls[3], &f("links"), "tool_error", &[]);
    assert_call(&calls[4], &f("links"), "denied", &[deny("fs", "create", &p("d1/d2/s2"), &dotdot("../../.."))]);
    assert_call(
        &calls[5],
        &f("links"),
        "denied",
        &[deny("fs", "create", &p("abs"), "symlink target `/etc/passwd` leaves its mount: absolute targets are refused")],
    );
    assert_call(
        &calls[6],
        &f("links"),
        "denied",
        &[deny("fs", "create", &p("via"), "symlink target `opt/passwd` leaves its mount: it passes through opt, a symlink to the absolute path /etc")],
    );
    assert_call(&calls[7], &f("links"), "ok", &[]);
    assert_call(
        &calls[8],
        "nolinks.caps.rename",
        "denied",
        &[deny("fs", "create", &p("up"), &format!("moving the symlink `{}` (target `..`) could point it out of its mount: only links without `..` may move", p("d1/up")))],
    );
}

// ------------------------------------------------------------ mount roots

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_mount_root_is_refused_at_load() {
    let dir = TestDir::new();
    let root = root_of(&dir);
    fs::create_dir(root.join("real")).unwrap();
    symlink(root.join("real"), root.join("link")).unwrap();
    let e = open_err(&dir, &tool("t", "hostile", "", Some(&format!("allowed_read_paths = [{}]", q(&root.join("link")))))).await;
    let want = format!(
        "tool \"t\": policy.allowed_read_paths[0] = {:?}: host path is a symlink (to {}). Fix: mount the directory it points to by its own path",
        root.join("link").display().to_string(),
        root.join("real").display()
    );
    assert!(e.contains(&want), "{e}\nwant: {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_root_swapped_for_a_symlink_after_load_fails_the_call() {
    let dir = TestDir::new();
    let root = root_of(&dir);
    for d in ["m", "p/m2", "secret"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("m/a.txt"), "mounted").unwrap();
    fs::write(root.join("p/m2/a.txt"), "mounted too").unwrap();
    fs::write(root.join("secret/a.txt"), "top secret").unwrap();
    let policy = format!(
        "allowed_read_paths = [{{ host = {}, guest = \"/m\" }}, {{ host = {}, guest = \"/m2\" }}]",
        q(&root.join("m")),
        q(&root.join("p/m2"))
    );
    let host = open(&dir, &tool("t", "hostile", "", Some(&policy))).await;
    let before = call(&host, "t.caps.read-file", json!({"path": "/m/a.txt"})).await;
    // The root itself, then a parent of another root, become symlinks.
    fs::rename(root.join("m"), root.join("m-old")).unwrap();
    symlink(root.join("secret"), root.join("m")).unwrap();
    let root_swapped = call(&host, "t.caps.read-file", json!({"path": "/m/a.txt"})).await;
    fs::remove_file(root.join("m")).unwrap();
    fs::rename(root.join("m-old"), root.join("m")).unwrap();
    fs::create_dir_all(root.join("elsewhere/m2")).unwrap();
    fs::write(root.join("elsewhere/m2/a.txt"), "top secret").unwrap();
    fs::rename(root.join("p"), root.join("p-old")).unwrap();
    symlink(root.join("elsewhere"), root.join("p")).unwrap();
    let parent_swapped = call(&host, "t.caps.read-file", json!({"path": "/m2/a.txt"})).await;
    host.shutdown().await.unwrap();

    assert_eq!(ok(&before), &json!("mounted"));
    for (r, link) in [(&root_swapped, root.join("m")), (&parent_swapped, root.join("p"))] {
        match &r.outcome {
            Err(CallError::Host { message }) => {
                assert!(message.contains(&format!("{} is a symlink", link.display())), "{message}");
                assert!(message.contains("no symlink at or above it"), "{message}");
            }
            other => panic!("expected a host error, got {other:?}"),
        }
    }
    let (calls, _) = audited(&dir.audit_db());
    let outcomes: Vec<&str> = calls.iter().map(|a| a.call.outcome.as_str()).collect();
    assert_eq!(outcomes, ["ok", "host_error", "host_error"]);
    assert!(calls.iter().all(|a| a.denials.is_empty()));
}

// ----------------------------------------------------------------- CLI


fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_status(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr));
}

#[test]
fn check_warns_when_two_tools_mounts_overlap() {
    let dir = TestDir::new();
    let root = root_of(&dir);
    fs::create_dir_all(root.join("shared/sub")).unwrap();
    fs::create_dir_all(root.join("alone")).unwrap();
    let rest = [
        tool("writer", "hostile", "", Some(&format!("allowed_write_paths = [{}]", q(&root.join("shared"))))),
        tool("reader", "hostile", "", Some(&format!("allowed_read_paths = [{{ host = {}, guest = \"/in\" }}]", q(&root.join("shared/sub"))))),
        tool("other", "hostile", "", Some(&format!("allowed_read_paths = [{}]", q(&root.join("alone"))))),
    ]
    .concat();
    let config = dir.write_config(&rest);
    let o = run(wasmward(&dir).args(["check", "--config"]).arg(&config));
    assert_status(&o, 0);
    let out = text(&o.stdout);
    let warnings: Vec<&str> = out.lines().filter(|l| l.contains("mounts overlap")).collect();
    assert_eq!(warnings.len(), 1, "{out}");
    let want = format!(
        "warning: mounts overlap: tool \"writer\" {shared} (rw, at {shared}) and tool \"reader\" {sub} (ro, at /in)",
        shared = root.join("shared").display(),
        sub = root.join("shared/sub").display()
    );
    assert!(warnings[0].starts_with(&want), "{}\nwant: {want}", warnings[0]);
    assert!(out.contains("3 tool(s) OK"), "{out}");
}

#[test]
fn failed_cli_calls_leave_no_empty_root_behind() {
    let dir = TestDir::new();
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let hostile = tool_path("hostile");
    for _ in 0..3 {
        let o = run(wasmward(&dir)
            .env("TMPDIR", &tmp)
            .args(["call"])
            .arg(&hostile)
            .args(["caps.read-file", "--args", r#"{"path": "/nope.txt"}"#]));
        assert_status(&o, 1);
        assert!(text(&o.stderr).contains("read: "), "{}", text(&o.stderr));
    }
    let left: Vec<_> = fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn a_missing_config_file_is_an_error_for_every_command() {
    let dir = TestDir::new();
    // A real config in the working directory, whose log has rows.
    dir.write_config("");
    let o = run(wasmward(&dir).args(["call"]).arg(tool_path("hostile")).args(["counter"]));
    assert_status(&o, 0);
    let before = audited_rows(&dir.audit_db());
    assert_eq!(before, 1);
    let typo = dir.path().join("wasmwrad.toml");
    let hostile = tool_path("hostile");
    let commands: Vec<Vec<&std::ffi::OsStr>> = vec![
        vec!["audit".as_ref(), "verify".as_ref(), "--config".as_ref(), typo.as_os_str()],
        vec!["audit".as_ref(), "prune".as_ref(), "--config".as_ref(), typo.as_os_str(), "--max-records".as_ref(), "0".as_ref(), "--retention-days".as_ref(), "0".as_ref()],
        vec!["audit".as_ref(), "tail".as_ref(), "--config".as_ref(), typo.as_os_str()],
        vec!["audit".as_ref(), "export".as_ref(), "--config".as_ref(), typo.as_os_str()],
        vec!["call".as_ref(), "--config".as_ref(), typo.as_os_str(), hostile.as_os_str(), "counter".as_ref()],
        vec!["check".as_ref(), "--config".as_ref(), typo.as_os_str()],
        vec!["token".as_ref(), "list".as_ref(), "--config".as_ref(), typo.as_os_str()],
    ];
    for args in commands {
        let o = run(wasmward(&dir).args(&args));
        assert_status(&o, 2);
        let err = text(&o.stderr);
        assert!(err.contains(&typo.display().to_string()), "{args:?}: {err}");
        assert!(text(&o.stdout).is_empty(), "{args:?} printed: {}", text(&o.stdout));
    }
    assert_eq!(audited_rows(&dir.audit_db()), before, "nothing was pruned or written");
    // Without --config, ./wasmward.toml is used.
    let o = run(wasmward(&dir).args(["audit", "verify"]));
    assert_status(&o, 0);
    assert!(text(&o.stdout).starts_with("OK: 1 rows"), "{}", text(&o.stdout));
}

fn audited_rows(db: &Path) -> usize {
    wasmward::audit::tail(db, 1 << 40).unwrap().len()
}

#[test]
fn policy_warnings_are_logged_when_a_call_runs() {
    let dir = TestDir::new();
    let config = dir.write_config(&tool("t", "hostile", "", Some("allow_udp = true")));
    let o = run(wasmward(&dir).args(["call", "--config"]).arg(&config).args(["t", "counter"]));
    assert_status(&o, 0);
    // Without the terminal colours tracing adds.
    let err = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap().replace_all(&text(&o.stderr), "").into_owned();
    assert!(
        err.lines().any(|l| l.contains("WARN") && l.contains("policy warning: has no effect") && l.contains("tool=t") && l.contains("field=allow_udp")),
        "{err}"
    );
}

// ------------------------------------------------ refusals are denial rows

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unspecified_and_invalid_peers_are_denial_rows() {
    let dir = TestDir::new();
    let tools = [
        tool("net", "hostile", "", Some("allowed_network_hosts = [\"example.com\"]\nallow_udp = true")),
        tool("open", "hostile", "", Some("allowed_network_hosts = [\"example.com\"]\nblock_private_ips = false")),
        tool("zero", "hostile", "", Some("allowed_network_hosts = [\"0.0.0.0/8:*\", \"224.0.0.0/4:*\"]\nblock_private_ips = false")),
    ]
    .concat();
    let host = open(&dir, &tools).await;
    // (function, addr, guest error, rule)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("net.caps.tcp-connect", "0.0.0.0:80", EACCES, "block_private_ips: this-network 0.0.0.0/8"),
        ("net.caps.tcp-connect", "[::]:80", EACCES, "block_private_ips: unspecified ::/128"),
        ("net.caps.tcp-connect", "[::ffff:0.0.0.0]:80", EACCES, "block_private_ips: this-network 0.0.0.0/8 (embedded in ipv4-mapped ::ffff:0.0.0.0/96)"),
        ("net.caps.tcp-connect", "224.0.0.1:80", EACCES, "block_private_ips: multicast 224.0.0.0/4"),
        ("net.caps.tcp-connect", "255.255.255.255:80", EACCES, "block_private_ips: broadcast 255.255.255.255/32"),
        ("net.caps.udp-send", "0.0.0.0:53", EACCES, "block_private_ips: this-network 0.0.0.0/8"),
        ("net.caps.udp-send", "[::]:53", EACCES, "block_private_ips: unspecified ::/128"),
        ("open.caps.tcp-connect", "0.0.0.0:80", EACCES, "address is neither on allowed_network_hosts nor resolved from an allowed name in this call"),
        ("zero.caps.tcp-connect", "0.0.0.0:80", "Invalid argument (os error 28)", "invalid peer address: unspecified address"),
        ("zero.caps.tcp-connect", "224.0.0.1:80", "Invalid argument (os error 28)", "invalid peer address: multicast address"),
    ];
    let mut results = Vec::new();
    for (f, addr, ..) in cases {
        let args = if f.ends_with("udp-send") { json!({"addr": addr, "msg": "x"}) } else { json!({"addr": addr}) };
        results.push(call(&host, f, args).await);
    }
    host.shutdown().await.unwrap();

    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), cases.len());
    for ((r, a), (f, addr, err, rule)) in results.iter().zip(&calls).zip(cases) {
        let op = if f.ends_with("udp-send") { "send" } else { "connect" };
        let target: std::net::SocketAddr = addr.parse().unwrap();
        let e = guest_err(r);
        assert!(e.ends_with(err) && (e.starts_with("connect: ") || e.starts_with("send: ")), "{f} {addr}: {e}");
        assert_call(a, f, "denied", &[deny("net", op, &target.to_string(), rule)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_connect_peers_are_checked_like_sends() {
    let dir = TestDir::new();
    let tools = [
        tool_at("probe", &tool_path("ops_probe"), "", Some("allowed_network_hosts = [\"example.com\"]\nallow_udp = true")),
        tool_at("zero", &tool_path("ops_probe"), "", Some("allowed_network_hosts = [\"0.0.0.0/8:*\"]\nallow_udp = true\nblock_private_ips = false")),
    ]
    .concat();
    let host = open(&dir, &tools).await;
    let cases: &[(&str, &str, &str, &str)] = &[
        ("probe.udp-connect", "0.0.0.0:53", EACCES, "block_private_ips: this-network 0.0.0.0/8"),
        ("probe.udp-connect", "[::ffff:127.0.0.1]:53", EACCES, "block_private_ips: loopback 127.0.0.0/8 (embedded in ipv4-mapped ::ffff:0.0.0.0/96)"),
        ("probe.udp-connect", "192.0.2.1:53", EACCES, "block_private_ips: documentation 192.0.2.0/24"),
        ("zero.udp-connect", "0.0.0.0:53", "Invalid argument (os error 28)", "invalid peer address: unspecified address"),
    ];
    let mut results = Vec::new();
    for (f, addr, ..) in cases {
        results.push(call(&host, f, json!({"addr": addr})).await);
    }
    host.shutdown().await.unwrap();
    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), cases.len());
    for ((r, a), (f, addr, err, rule)) in results.iter().zip(&calls).zip(cases) {
        assert_eq!(guest_err(r), format!("connect: {err}"), "{f} {addr}");
        let target: std::net::SocketAddr = addr.parse().unwrap();
        assert_call(a, f, "denied", &[deny("net", "connect", &target.to_string(), rule)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bind_addresses_are_denial_rows() {
    let dir = TestDir::new();
    // `nolisten` may connect (so it may create a socket) but not listen.
    let tools = [
        tool("nolisten", "hostile", "", Some("allowed_network_hosts = [\"example.com\"]")),
        tool("listen", "hostile", "", Some("allow_listen = true")),
    ]
    .concat();
    let host = open(&dir, &tools).await;
    let mapped = call(&host, "nolisten.caps.tcp-listen", json!({"addr": "[::ffff:127.0.0.1]:0"})).await;
    let multicast = call(&host, "listen.caps.tcp-listen", json!({"addr": "224.0.0.1:0"})).await;
    host.shutdown().await.unwrap();

    assert_eq!(guest_err(&mapped), format!("listen: {EACCES}"));
    assert_eq!(guest_err(&multicast), "listen: Invalid argument (os error 28)");
    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], "nolisten.caps.tcp-listen", "denied", &[deny("net", "listen", "[::ffff:127.0.0.1]:0", "allow_listen = false")]);
    assert_call(&calls[1], "listen.caps.tcp-listen", "denied", &[deny("net", "bind", "224.0.0.1:0", "invalid local address: multicast address")]);
}

// ------------------------------------------------------- log mode, process

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_mode_still_enforces_the_subprocess_allowlist() {
    let dir = TestDir::new();
    let policy = "sandbox_violation_action = \"log\"\nallow_subprocess = true\nsubprocess_allowlist = [\"echo\"]";
    let host = open(&dir, &tool("disco", "hostile", "", Some(policy))).await;
    let shell = call(&host, "disco.caps.spawn", json!({"program": "sh", "args": ["-c", "echo pwned > /tmp/pwned-by-log-mode"]})).await;
    let curl = call(&host, "disco.caps.spawn", json!({"program": "/usr/bin/env", "args": ["id"]})).await;
    let echo = call(&host, "disco.caps.spawn", json!({"program": "echo", "args": ["listed"]})).await;
    host.shutdown().await.unwrap();

    assert_eq!(guest_err(&shell), "denied: sh: not on subprocess_allowlist");
    assert_eq!(guest_err(&curl), "denied: /usr/bin/env: not on subprocess_allowlist");
    assert_eq!(ok(&echo), &json!("listed\n"));
    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], "disco.caps.spawn", "denied", &[deny("process", "spawn", "sh -c echo pwned > /tmp/pwned-by-log-mode", "not on subprocess_allowlist")]);
    assert_call(&calls[1], "disco.caps.spawn", "denied", &[deny("process", "spawn", "/usr/bin/env id", "not on subprocess_allowlist")]);
    assert_call(&calls[2], "disco.caps.spawn", "ok", &[]);
}

// ------------------------------------------------------ private audit files

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_files_are_private() {
    let dir = TestDir::new();
    let logs = dir.path().join("logs");
    let db = logs.join("audit.db");
    let text = format!(
        "[runtime]\ncache_dir = {:?}\n[audit]\npath = {:?}\n\n{}",
        dir.cache_dir().display().to_string(),
        db.display().to_string(),
        tool("t", "hostile", "", None)
    );
    let host = wasmward::host::Host::open(parse(&dir, &text)).await.unwrap();
    let r = call(&host, "t.counter", json!({})).await;
    ok(&r);
    let suffixes = ["", "-wal", "-shm", ".key", ".head"];
    let file = |s: &str| PathBuf::from(format!("{}{s}", db.display()));
    for s in suffixes {
        assert_eq!(mode(&file(s)), 0o600, "audit.db{s}");
    }
    assert_eq!(mode(&logs), 0o700);
    host.shutdown().await.unwrap();

    // A log made world-readable by hand is tightened on the next open.
    for s in ["", "-wal", "-shm"] {
        if file(s).exists() {
            fs::set_permissions(file(s), fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let host = wasmward::host::Host::open(parse(&dir, &text)).await.unwrap();
    call(&host, "t.counter", json!({})).await;
    for s in ["", "-wal", "-shm"] {
        assert_eq!(mode(&file(s)), 0o600, "audit.db{s} after reopen");
    }
    host.shutdown().await.unwrap();

    // A directory everyone may write is refused, with the fix.
    fs::set_permissions(&logs, fs::Permissions::from_mode(0o777)).unwrap();
    let e = match wasmward::host::Host::open(parse(&dir, &text)).await {
        Ok(_) => panic!("opened an audit log in a world-writable directory"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("writable by everyone (mode 777)") && e.contains(&format!("chmod o-w {}", logs.display())), "{e}");
    fs::set_permissions(&logs, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(audited_rows(&db), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_compile_cache_is_refused() {
    let dir = TestDir::new();
    fs::create_dir(dir.cache_dir()).unwrap();
    fs::set_permissions(dir.cache_dir(), fs::Permissions::from_mode(0o775)).unwrap();
    let e = open_err(&dir, &tool("t", "hostile", "", None)).await;
    assert!(e.contains("writable by group or others (mode 775)") && e.contains(&format!("chmod 700 {}", dir.cache_dir().display())), "{e}");
    assert_eq!(fs::read_dir(dir.cache_dir()).unwrap().count(), 0, "nothing was compiled into it");
}

// ------------------------------------------------------ HTTPS with own CAs

/// A CA and a server certificate for 127.0.0.1 signed by it, made with the
/// `openssl` command line: (ca.pem, server chain pem, server key pem).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let sh = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
        assert!(o.status.success(), "openssl {args:?}: {}", text(&o.stderr));
    };
    sh(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=wasmward test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    sh(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
    sh(&["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

/// An HTTPS server on 127.0.0.1 answering `200 ok`; returns its port.
async fn tls_server(cert: &Path, key: &Path) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert).unwrap().map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else { return };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_trusts_the_operators_ca_certificates() {
    let certs = TestDir::new();
    let (ca, cert, key) = make_certs(certs.path());
    let port = tls_server(&cert, &key).await;
    let url = format!("https://127.0.0.1:{port}/");
    // Loopback: block_private_ips must be off for this tool.
    let policy = format!("allowed_network_hosts = [\"https://127.0.0.1:{port}\"]\nblock_private_ips = false");
    let rest = tool("web", "hostile", "", Some(&policy));

    let plain = TestDir::new();
    let host = open(&plain, &rest).await;
    let untrusted = call(&host, "web.caps.http-get", json!({"url": url})).await;
    host.shutdown().await.unwrap();

    let corp = TestDir::new();
    let text = config_text(&corp, 4, "", &rest).replace("[runtime]\n", &format!("[runtime]\nca_certificates = [{}]\n", q(&ca)));
    let host = wasmward::host::Host::open(parse(&corp, &text)).await.unwrap();
    let trusted = call(&host, "web.caps.http-get", json!({"url": url})).await;
    host.shutdown().await.unwrap();

    let e = guest_err(&untrusted);
    assert!(e.contains("TLS certificate for 127.0.0.1 not trusted: UnknownIssuer; add the CA to [runtime] ca_certificates"), "{e}");
    assert_eq!(ok(&trusted), &json!(200));
    let (calls, _) = audited(&plain.audit_db());
    assert_call(&calls[0], "web.caps.http-get", "tool_error", &[]);
    let (calls, _) = audited(&corp.audit_db());
    assert_call(&calls[0], "web.caps.http-get", "ok", &[]);

    // A bad entry is a load error naming the key and the file.
    let bad = config_text(&corp, 4, "", &rest).replace("[runtime]\n", &format!("[runtime]\nca_certificates = [{}]\n", q(&key)));
    let e = wasmward::config::Config::parse(&bad, "test.toml", corp.path()).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("runtime.ca_certificates[0]") && e.contains("server.key") && e.contains("holds no `-----BEGIN CERTIFICATE-----` block"), "{e}");
}

// ----------------------------------------------------- audit fails closed

fn gate_event(reason: String) -> AuditEvent {
    AuditEvent::Gate(GateEvent { tool: "filler".into(), caller: "test".into(), stage: "token".into(), decision: "deny".into(), reason })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_audit_database_stops_calls_until_it_can_be_written() {
    let dir = TestDir::new();
    let root = root_of(&dir);
    let rw = root.join("rw");
    fs::create_dir(&rw).unwrap();
    let rest = tool("t", "hostile", "", Some(&format!("allowed_write_paths = [{}]", q(&rw))));
    let config = dir.path().join("wasmward.toml");
    fs::write(&config, config_text(&dir, 4, "max_db_mb = 1", &rest)).unwrap();
    let server = wasmward::server::Server::open(config).await.unwrap();
    let host = server.host.clone();
    // `/healthz` over real HTTP, from the server's own router.
    let app = wasmward::server::http::router(server.clone(), server.host.config().server.clone(), tokio_util::sync::CancellationToken::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let healthz = format!("http://{}/healthz", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let health = || {
        let url = healthz.clone();
        async move {
            let r = reqwest::get(&url).await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let write = |name: &str| {
        let (host, path) = (host.clone(), rw.join(name).display().to_string());
        async move { host.call("t.caps.write-file", &json!({"path": path, "contents": "x"}), "test").await }
    };
    let before = write("before.txt").await;
    ok(&before);
    let (code, body) = health().await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")), "{body}");

    // Fill the database (1 MiB) with 64 kB rows until a batch fails: SQLite
    // reports the database full, as on a full disk.
    let filler = "y".repeat(64 << 10);
    let mut failed = None;
    for i in 0..64 {
        if let Err(e) = host.audit().record(vec![gate_event(format!("filler {i} {filler}"))]).await {
            failed = Some(i);
            assert!(e.to_string().contains("full"), "{e}");
            break;
        }
    }
    let held = failed.expect("the database filled up");
    let why = host.audit().unavailable().expect("the log says it cannot be written");
    assert!(why.contains("database or disk is full"), "{why}");
    let (code, body) = health().await;
    assert_eq!((code, body["status"].as_str()), (503, Some("audit_unavailable")), "{body}");
    assert!(body["audit_error"].as_str().unwrap().contains("database or disk is full"), "{body}");

    let during = write("during.txt").await;
    match &during.outcome {
        Err(CallError::Host { message }) => {
            assert!(message.starts_with("audit log unavailable, calls are refused until it can be written: "), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!rw.join("during.txt").exists(), "the tool must not run while the log cannot record it");

    // Make room (as an operator would with `audit prune`): the held batch
    // goes in on the writer's next retry, and calls are accepted again.
    let db = dir.audit_db();
    wasmward::audit::prune(&db, &AuditKey::load(&db).unwrap(), 0, 1).unwrap();
    let start = std::time::Instant::now();
    while host.audit().unavailable().is_some() {
        assert!(start.elapsed().as_secs() < 20, "the log never recovered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (code, body) = health().await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")), "{body}");
    let after = write("after.txt").await;
    ok(&after);
    host.audit().clone().shutdown().await.unwrap();

    let rows = wasmward::audit::tail(&db, 1 << 40).unwrap();
    let events: Vec<AuditEvent> = rows.iter().map(|r| r.event().unwrap().event).collect();
    let held_row = events.iter().position(|e| matches!(e, AuditEvent::Gate(g) if g.reason.starts_with(&format!("filler {held} "))));
    let calls: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match e {
            AuditEvent::Call(c) => Some((c.function.clone(), c.outcome.clone())),
            _ => None,
        })
        .collect();
    assert!(held_row.is_some(), "the batch that failed was written later, not dropped");
    let f = "t.caps.write-file".to_string();
    assert_eq!(calls, [(f.clone(), "host_error".to_string()), (f, "ok".to_string())]);
    let report = wasmward::audit::verify(&db, &AuditKey::load(&db).unwrap()).unwrap();
    assert!(report.is_ok(), "{report}");
}
