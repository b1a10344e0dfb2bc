//! Issue 8, bounded floods and refusal causes, end to end with the `flood`
//! tool: a loop of refused stats (denial rows capped, targets truncated),
//! a 5 MB tool error (cut in the call row), writes past `max_write_bytes`
//! (every write path), a mount quota across calls (and renames into it),
//! socket creation without a network grant, the handle
//! cap, `exit`, a refused allocation the guest handles, and a failure after
//! a sandbox refusal (reported as `denied`). Each test asserts what the
//! guest or agent saw and the audit rows.

mod common;
mod policy_support;

use common::TestDir;
use policy_support::*;
use serde_json::{json, Value};
use std::fs;
use std::path::PathBuf;
use wasmward::audit::LimitEvent;
use wasmward::{CallError, CallRecord};

const STAT_LOOP: &str = "flood.stat-loop";
const WRITE_BYTES: &str = "flood.write-bytes";
const CREATE_SOCKETS: &str = "flood.create-sockets";
const OPEN_FILES: &str = "flood.open-files";
const EXIT_WITH: &str = "flood.exit-with";
const ALLOC_MIB: &str = "flood.alloc-mib";
const FAIL_AFTER_WRITE: &str = "flood.fail-after-write";
const BIG_ERROR: &str = "flood.big-error";

const MIB: u64 = 1 << 20;

fn flood(limits: &str, policy: Option<&str>) -> String {
    tool("flood", "flood", limits, policy)
}

/// A temp dir with a read-write `out/` mounted at `/out`.
fn with_out_mount(dir: &TestDir) -> (PathBuf, String) {
    let out = dir.path().canonicalize().unwrap().join("out");
    fs::create_dir(&out).unwrap();
    let policy = format!("allowed_write_paths = [{{ host = {}, guest = \"/out\" }}]", q(&out));
    (out, policy)
}

fn err(r: &CallRecord) -> &CallError {
    match &r.outcome {
        Err(e) => e,
        Ok(v) => panic!("{}: expected an error, got {v} (stderr: {})", r.function, r.stderr),
    }
}

fn limit(l: &str, requested: u64, configured: u64, count: u64) -> LimitEvent {
    LimitEvent {
        tool: "flood".into(),
        function: String::new(),
        caller: "test".into(),
        limit: l.into(),
        mount: None,
        requested,
        configured,
        count,
    }
}

/// The limit rows of `a` without tool/function (checked by `audited`).
fn limits_of(a: &Audited) -> Vec<LimitEvent> {
    a.limits.iter().map(|l| LimitEvent { function: String::new(), ..l.clone() }).collect()
}

// ------------------------------------------------------------ denial floods

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_of_refused_stats_writes_32_rows_and_one_summary() {
    let dir = TestDir::new();
    let host = open(&dir, &flood("timeout_ms = 60000", None)).await;
    let r1 = call(&host, STAT_LOOP, json!({"path-len": 1024, "count": 20000})).await;
    // 1 MiB paths: each kept target is cut to 1 kB and notes the length.
    let r2 = call(&host, STAT_LOOP, json!({"path-len": MIB, "count": 40})).await;
    host.shutdown().await.unwrap();

    // The guest saw every stat fail; nothing stopped the call.
    assert_eq!(ok(&r1), &json!(20000));
    assert_eq!(ok(&r2), &json!(40));
    assert_eq!((r1.denials.len(), r1.denials_total), (32, 20000));
    assert_eq!((r2.denials.len(), r2.denials_total), (32, 40));

    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 2);
    let path_1k = format!("/nope/{}", "a".repeat(1024 - 6));
    let mut want: Vec<Deny> = vec![deny("fs", "read", &path_1k, "outside every mount"); 32];
    want.push(deny("fs", "read", &path_1k, "outside every mount"));
    assert_call(&calls[0], STAT_LOOP, "ok", &want);
    assert_eq!(calls[0].call.denials, 20000, "the call row has the true total");
    let counts: Vec<Option<u64>> = calls[0].denials.iter().map(|d| d.count).collect();
    assert_eq!(counts, [vec![None; 32], vec![Some(20000 - 32)]].concat(), "32 rows in full, then one summary");

    let cut = format!("/nope/{}…[truncated, {MIB} bytes]", "a".repeat(1024 - 6));
    let mut want: Vec<Deny> = vec![deny("fs", "read", &cut, "outside every mount"); 32];
    want.push(deny("fs", "read", &cut, "outside every mount"));
    assert_call(&calls[1], STAT_LOOP, "ok", &want);
    assert_eq!(calls[1].denials[32].count, Some(8));
    assert_eq!(calls[1].call.denials, 40);

    // The whole log stays small: 2 calls, 66 denial rows of ~1 kB each.
    let bytes: usize = rows(&dir.audit_db()).iter().map(|r| serde_json::to_string(r).unwrap().len()).sum();
    assert!(bytes < 200_000, "audit rows take {bytes} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_mb_tool_error_is_cut_in_the_call_row_with_its_size() {
    let dir = TestDir::new();
    let host = open(&dir, &flood("max_output_bytes = 10000000", None)).await;
    let r = call(&host, BIG_ERROR, json!({"bytes": 5 * MIB})).await;
    let small = call(&host, BIG_ERROR, json!({"bytes": 10})).await;
    host.shutdown().await.unwrap();

    let full = err(&r).to_string();
    assert!(matches!(err(&r), CallError::ToolError { value: Value::String(s) } if s.len() == 5 * MIB as usize));
    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], BIG_ERROR, "tool_error", &[]);
    let recorded = calls[0].call.error.as_deref().unwrap();
    assert_eq!(recorded, format!("{}…[truncated, {} bytes]", &full[..4096], full.len()));
    assert_eq!(calls[0].call.error_bytes, Some(full.len() as u64));
    // A short error is kept whole, without a size.
    assert_eq!(calls[1].call.error.as_deref(), Some("tool returned an error: \"eeeeeeeeee\""));
    assert_eq!(calls[1].call.error_bytes, None);
    assert_eq!(small.outcome.as_ref().unwrap_err().code(), "tool_error");
}

// ------------------------------------------------------------------- disk

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_max_write_bytes_are_refused_on_every_path() {
    let dir = TestDir::new();
    let (out, policy) = with_out_mount(&dir);
    let host = open(&dir, &flood("max_write_bytes = 1048576", Some(&policy))).await;
    let ten = 10 * MIB;
    let write = call(&host, WRITE_BYTES, json!({"path": "/out/w", "bytes": ten, "chunk": 65536, "mode": "write"})).await;
    let append = call(&host, WRITE_BYTES, json!({"path": "/out/a", "bytes": ten, "chunk": 65536, "mode": "append"})).await;
    let pwrite = call(&host, WRITE_BYTES, json!({"path": "/out/p", "bytes": ten, "chunk": 65536, "mode": "pwrite"})).await;
    let grow = call(&host, WRITE_BYTES, json!({"path": "/out/s", "bytes": ten, "chunk": 1, "mode": "set-size"})).await;
    // Within the budget (which is per call): written whole.
    let fits = call(&host, WRITE_BYTES, json!({"path": "/out/ok", "bytes": 512 * 1024, "chunk": 65536, "mode": "write"})).await;
    let fits_again = call(&host, WRITE_BYTES, json!({"path": "/out/ok2", "bytes": MIB, "chunk": 65536, "mode": "write"})).await;
    host.shutdown().await.unwrap();

    for r in [&write, &append, &pwrite, &grow] {
        match err(r) {
            CallError::WriteLimit { limit, requested, mount: None } => {
                assert_eq!(*limit, MIB);
                assert!(*requested > MIB, "{requested}");
            }
            e => panic!("{}: expected write_limit, got {e:?}", r.function),
        }
        let text = err(r).to_string();
        assert!(text.contains("max_write_bytes = 1048576") && text.contains("raise [tool.limits] max_write_bytes"), "{text}");
    }
    // Nothing past the budget reached the disk.
    assert_eq!(fs::metadata(out.join("w")).unwrap().len(), MIB);
    assert_eq!(fs::metadata(out.join("a")).unwrap().len(), MIB);
    assert_eq!(fs::metadata(out.join("p")).unwrap().len(), MIB);
    assert_eq!(fs::metadata(out.join("s")).unwrap().len(), 0);
    assert_eq!(ok(&fits), &json!(512 * 1024));
    assert_eq!(ok(&fits_again), &json!(MIB));
    assert_eq!(fs::metadata(out.join("ok2")).unwrap().len(), MIB);

    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 6);
    for a in &calls[..4] {
        assert_call(a, WRITE_BYTES, "write_limit", &[]);
        assert_eq!(a.limits.len(), 1, "{a:?}");
        let l = &a.limits[0];
        assert_eq!((l.limit.as_str(), l.configured, l.count >= 1), ("max_write_bytes", MIB, true));
        assert!(l.requested > MIB);
    }
    assert_eq!(limits_of(&calls[3]), vec![limit("max_write_bytes", ten, MIB, 1)], "set-size asks for the growth");
    for a in &calls[4..] {
        assert_call(a, WRITE_BYTES, "ok", &[]);
        assert!(a.limits.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_quota_bounds_what_the_mount_holds_across_calls() {
    let dir = TestDir::new();
    let root = dir.path().canonicalize().unwrap();
    let (qdir, free) = (root.join("q"), root.join("free"));
    fs::create_dir_all(qdir.join("sub")).unwrap();
    fs::create_dir(&free).unwrap();
    const KIB: u64 = 1024;
    // Nearly full before the first call: 900 KiB of a 1 MiB quota, one file
    // in a subdirectory; a symlink to a big file outside counts nothing.
    fs::write(qdir.join("sub/old"), vec![0u8; 900 * KIB as usize]).unwrap();
    fs::write(free.join("big"), vec![0u8; 2 * MIB as usize]).unwrap();
    std::os::unix::fs::symlink(free.join("big"), qdir.join("link")).unwrap();
    let policy = format!(
        "allowed_write_paths = [{{ host = {}, guest = \"/q\", quota_bytes = {MIB} }}, {{ host = {}, guest = \"/free\" }}]",
        q(&qdir),
        q(&free)
    );
    let host = open(&dir, &flood("", Some(&policy))).await;
    let fits = call(&host, WRITE_BYTES, json!({"path": "/q/a", "bytes": 100 * KIB, "chunk": 4096, "mode": "write"})).await;
    // The second call starts with 1000 KiB in the mount: 24 KiB are left.
    let over = call(&host, WRITE_BYTES, json!({"path": "/q/b", "bytes": 100 * KIB, "chunk": 4096, "mode": "append"})).await;
    let grow = call(&host, WRITE_BYTES, json!({"path": "/q/c", "bytes": 100 * KIB, "chunk": 1, "mode": "set-size"})).await;
    // Another mount of the same tool has no quota.
    let elsewhere = call(&host, WRITE_BYTES, json!({"path": "/free/x", "bytes": 3 * MIB, "chunk": 65536, "mode": "write"})).await;
    host.shutdown().await.unwrap();

    assert_eq!(ok(&fits), &json!(100 * KIB));
    assert_eq!(fs::metadata(qdir.join("a")).unwrap().len(), 100 * KIB);
    for r in [&over, &grow] {
        match err(r) {
            CallError::WriteLimit { limit, requested, mount: Some(m) } => {
                assert_eq!((*limit, m.as_str()), (MIB, "/q"));
                assert!(*requested > MIB && *requested <= MIB + 100 * KIB, "{requested}");
            }
            e => panic!("{}: expected write_limit on /q, got {e:?}", r.function),
        }
        let text = err(r).to_string();
        assert!(text.contains("mount /q is full: quota_bytes = 1048576") && text.contains("raise quota_bytes on that mount"), "{text}");
    }
    // What fitted landed; nothing of the refused write did.
    assert_eq!(fs::metadata(qdir.join("b")).unwrap().len(), 24 * KIB);
    assert_eq!(fs::metadata(qdir.join("c")).unwrap().len(), 0);
    assert_eq!(ok(&elsewhere), &json!(3 * MIB));

    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 4);
    assert_call(&calls[0], WRITE_BYTES, "ok", &[]);
    assert!(calls[0].limits.is_empty());
    assert_call(&calls[1], WRITE_BYTES, "write_limit", &[]);
    assert_call(&calls[2], WRITE_BYTES, "write_limit", &[]);
    let quota_row = |requested: u64| LimitEvent { mount: Some("/q".into()), ..limit("quota_bytes", requested, MIB, 1) };
    assert_eq!(limits_of(&calls[1]), vec![quota_row(MIB + 4 * KIB)], "1024 KiB held, then the next 4 KiB chunk");
    assert_eq!(limits_of(&calls[2]), vec![quota_row(MIB + 100 * KIB)], "set-size asks for its growth");
    assert!(calls[1].call.error.as_deref().unwrap().contains("mount /q is full"));
    assert_call(&calls[3], WRITE_BYTES, "ok", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_into_a_quota_mount_from_another_mount_is_cross_device() {
    let dir = TestDir::new();
    let root = dir.path().canonicalize().unwrap();
    let (qdir, free) = (root.join("q"), root.join("free"));
    fs::create_dir(&qdir).unwrap();
    fs::create_dir(&free).unwrap();
    fs::write(free.join("big"), vec![0u8; 4096]).unwrap();
    fs::write(qdir.join("mine"), b"x").unwrap();
    let policy = format!(
        "allowed_write_paths = [{{ host = {}, guest = \"/q\", quota_bytes = 100 }}, {{ host = {}, guest = \"/free\" }}]",
        q(&qdir),
        q(&free)
    );
    let host = open(&dir, &tool("hostile", "hostile", "", Some(&policy))).await;
    const RENAME: &str = "hostile.caps.rename";
    let into = call(&host, RENAME, json!({"from": "/free/big", "to": "/q/big"})).await;
    let within = call(&host, RENAME, json!({"from": "/q/mine", "to": "/q/moved"})).await;
    let out_of = call(&host, RENAME, json!({"from": "/q/moved", "to": "/free/moved"})).await;
    host.shutdown().await.unwrap();

    let e = guest_err(&into);
    assert!(e.starts_with("rename: ") && e.to_lowercase().contains("cross-device"), "{e}");
    assert_eq!(fs::metadata(free.join("big")).unwrap().len(), 4096);
    assert!(!qdir.join("big").exists());
    assert!(within.outcome.is_ok(), "{:?}", within.outcome);
    assert!(out_of.outcome.is_ok(), "{:?}", out_of.outcome);
    assert_eq!(fs::read(free.join("moved")).unwrap(), b"x");

    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], RENAME, "tool_error", &[]);
    assert!(calls[0].limits.is_empty());
}

// ------------------------------------------------------ file descriptors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_without_a_network_grant_are_refused_at_creation() {
    let dir = TestDir::new();
    let tools = format!("{}{}", flood("", None), tool("granted", "flood", "", Some("allowed_network_hosts = [\"example.com\"]\nallow_udp = true")));
    let host = open(&dir, &tools).await;
    let tcp = call(&host, CREATE_SOCKETS, json!({"count": 3000, "udp": false})).await;
    let udp = call(&host, CREATE_SOCKETS, json!({"count": 3000, "udp": true})).await;
    let granted = call(&host, "granted.create-sockets", json!({"count": 20, "udp": false})).await;
    let granted_udp = call(&host, "granted.create-sockets", json!({"count": 20, "udp": true})).await;
    host.shutdown().await.unwrap();

    // The first socket was refused; the call is `denied`, naming it, with
    // the tool's own error kept.
    assert_eq!(guest_err(&tcp), "socket after 0: Permission denied (os error 2)");
    assert_eq!(guest_err(&udp), "socket after 0: Permission denied (os error 2)");
    let CallError::Denied { message, denials, total, .. } = err(&tcp) else { panic!("{:?}", tcp.outcome) };
    assert_eq!((denials.len(), *total), (1, 1));
    assert!(message.contains("denied net create tcp/ipv4 socket") && message.contains("socket after 0"), "{message}");
    assert_eq!(ok(&granted), &json!(20));
    assert_eq!(ok(&granted_udp), &json!(20));

    let (calls, _) = audited(&dir.audit_db());
    let rule = "no network grant (allowed_network_hosts is empty and allow_listen = false)";
    assert_call(&calls[0], CREATE_SOCKETS, "denied", &[deny("net", "create", "tcp/ipv4 socket", rule)]);
    assert_call(&calls[1], CREATE_SOCKETS, "denied", &[deny("net", "create", "udp/ipv4 socket", "allow_udp = false")]);
    assert_call(&calls[2], "granted.create-sockets", "ok", &[]);
    assert_call(&calls[3], "granted.create-sockets", "ok", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_cap_is_a_limit_that_names_its_field() {
    let dir = TestDir::new();
    let (out, policy) = with_out_mount(&dir);
    fs::write(out.join("f"), "x").unwrap();
    let policy = format!("{policy}\nallowed_network_hosts = [\"example.com\"]");
    let host = open(&dir, &flood("max_handles = 64", Some(&policy))).await;
    let files = call(&host, OPEN_FILES, json!({"path": "/out/f", "count": 1000})).await;
    let sockets = call(&host, CREATE_SOCKETS, json!({"count": 1000, "udp": false})).await;
    // Under the cap, and the cap is per call.
    let few = call(&host, OPEN_FILES, json!({"path": "/out/f", "count": 20})).await;
    host.shutdown().await.unwrap();

    for r in [&files, &sockets] {
        match err(r) {
            CallError::HandleLimit { limit, configured, message } => {
                assert_eq!((limit.as_str(), *configured), ("max_handles", 64));
                assert!(message.contains("max_handles = 64") && message.contains("raise [tool.limits] max_handles"), "{message}");
            }
            e => panic!("{}: expected handle_limit, got {e:?}", r.function),
        }
    }
    assert_eq!(ok(&few), &json!(20));
    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 3);
    for a in &calls[..2] {
        assert_eq!(a.call.outcome, "handle_limit");
        assert!(a.call.error.as_deref().unwrap().contains("max_handles = 64"));
        assert_eq!(limits_of(a), vec![limit("max_handles", 65, 64, 1)]);
    }
    assert_call(&calls[2], OPEN_FILES, "ok", &[]);
    assert!(calls[2].limits.is_empty());
}

// --------------------------------------------------------- refusal causes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_is_reported_with_its_status_not_as_a_trap() {
    let dir = TestDir::new();
    let host = open(&dir, &flood("", None)).await;
    let zero = call(&host, EXIT_WITH, json!({"status": 0})).await;
    let three = call(&host, EXIT_WITH, json!({"status": 3})).await;
    host.shutdown().await.unwrap();

    assert!(matches!(err(&zero), CallError::Exited { status: 0 }), "{:?}", zero.outcome);
    assert_eq!(err(&zero).to_string(), "tool exited with status 0 before returning a value");
    // WASI 0.2's exit carries only success or failure.
    assert!(matches!(err(&three), CallError::Exited { status: 1 }), "{:?}", three.outcome);
    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], EXIT_WITH, "exited", &[]);
    assert_call(&calls[1], EXIT_WITH, "exited", &[]);
    assert_eq!(calls[1].call.error.as_deref(), Some("tool exited with status 1 before returning a value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_allocation_the_guest_handles_is_a_limit_row() {
    let dir = TestDir::new();
    let host = open(&dir, &flood("memory_mb = 64", None)).await;
    let big = call(&host, ALLOC_MIB, json!({"mib": 100})).await;
    let small = call(&host, ALLOC_MIB, json!({"mib": 8})).await;
    host.shutdown().await.unwrap();

    assert_eq!(ok(&big), &json!("refused"));
    assert_eq!(ok(&small), &json!("allocated"));
    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], ALLOC_MIB, "ok", &[]);
    assert_eq!(calls[0].limits.len(), 1);
    let l = &calls[0].limits[0];
    // The guest's allocator may retry the growth once; each refusal counts.
    assert_eq!((l.limit.as_str(), l.configured), ("memory_mb", 64 * MIB));
    assert!((1..=4).contains(&l.count), "{l:?}");
    assert!(l.requested > 100 * MIB && l.requested < 110 * MIB, "asked for {}", l.requested);
    assert_call(&calls[1], ALLOC_MIB, "ok", &[]);
    assert!(calls[1].limits.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_a_refusal_is_denied_and_lists_it() {
    let dir = TestDir::new();
    let (_out, policy) = with_out_mount(&dir);
    let host = open(&dir, &flood("", Some(&policy))).await;
    let refused = call(&host, FAIL_AFTER_WRITE, json!({"path": "/etc/wasmward-flood"})).await;
    // The same failure without a refusal stays the tool's own error.
    let plain = call(&host, FAIL_AFTER_WRITE, json!({"path": "/out/x"})).await;
    host.shutdown().await.unwrap();

    let CallError::Denied { message, denials, total, cause } = err(&refused) else { panic!("{:?}", refused.outcome) };
    assert_eq!(*total, 1);
    assert_eq!(denials.len(), 1);
    assert_eq!((denials[0].op.as_str(), denials[0].target.as_str(), denials[0].rule.as_str()), ("create", "/etc/wasmward-flood", "outside every mount"));
    assert!(matches!(cause.as_ref(), CallError::ToolError { value } if value == "write: Permission denied (os error 2)"), "{cause:?}");
    assert_eq!(
        message,
        "denied fs create /etc/wasmward-flood: outside every mount; then tool returned an error: \"write: Permission denied (os error 2)\""
    );
    let body = serde_json::to_value(err(&refused)).unwrap();
    assert_eq!(body["code"], "denied");
    assert_eq!(body["denials"][0], json!({"kind": "fs", "op": "create", "target": "/etc/wasmward-flood", "rule": "outside every mount", "action": "denied"}));
    assert_eq!(body["cause"], json!({"code": "tool_error", "value": "write: Permission denied (os error 2)"}));
    assert_eq!(guest_err(&plain), "wrote it, failing anyway");

    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], FAIL_AFTER_WRITE, "denied", &[deny("fs", "create", "/etc/wasmward-flood", "outside every mount")]);
    assert_eq!(calls[0].call.error.as_deref(), Some(format!("policy denied: {message}").as_str()));
    assert_call(&calls[1], FAIL_AFTER_WRITE, "tool_error", &[]);
}

/// `wasmward call` under `ulimit -n LIMIT` (soft = hard, so the start-up
/// raise cannot help): its exit status, the error JSON on stderr (if any),
/// and stdout.
fn call_cli_with_fd_limit(dir: &TestDir, cfg: &std::path::Path, limit: u32, function: &str, args: Value) -> (Option<i32>, Value, String) {
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_wasmward"))
        .args(["call", "--config", cfg.to_str().unwrap(), "flood", function, "--args", &args.to_string()])
        .current_dir(dir.path())
        .env("XDG_DATA_HOME", dir.path().join("xdg-data"))
        .env("XDG_CACHE_HOME", dir.path().join("xdg-cache"))
        .env_remove("RUST_LOG")
        .env_remove("WASMWARD_AUDIT_KEY")
        .output()
        .expect("run wasmward call");
    let stderr = String::from_utf8_lossy(&o.stderr);
    let error = stderr
        .lines()
        .find(|l| l.starts_with("{\"error\""))
        .map(|l| serde_json::from_str::<Value>(l).expect("error line is JSON")["error"].clone())
        .unwrap_or(Value::Null);
    (o.status.code(), error, String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn a_call_cannot_take_the_process_descriptor_reserve() {
    let dir = TestDir::new();
    let (out, policy) = with_out_mount(&dir);
    fs::write(out.join("f"), "x").unwrap();
    let cfg = dir.path().join("wasmward.toml");
    fs::write(&cfg, config_text(&dir, 2, "", &flood("", Some(&policy)))).unwrap();
    // 320 descriptors in all, 256 of them kept for the server: max_handles
    // (256) would allow 200 opens, the reserve does not.
    let (status, error, _) = call_cli_with_fd_limit(&dir, &cfg, 320, "open-files", json!({"path": "/out/f", "count": 200}));
    assert_eq!(status, Some(1), "{error}");
    assert_eq!(error["code"], "handle_limit", "{error}");
    assert_eq!((error["limit"].as_str(), error["configured"].as_u64()), (Some("process_fd_reserve"), Some(320)), "{error}");
    assert!(error["message"].as_str().unwrap().contains("within 256 descriptors of its open file limit (320)"), "{error}");
    // A few opens fit under the same limit.
    let (status, error, stdout) = call_cli_with_fd_limit(&dir, &cfg, 320, "open-files", json!({"path": "/out/f", "count": 5}));
    assert_eq!(status, Some(0), "{error}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap(), json!(5));

    // The audit log (caller `cli`): the refused call, its limit row, the call that fit.
    let got: Vec<(String, String, Option<u64>)> = rows(&dir.audit_db())
        .into_iter()
        .map(|r| match r.event {
            wasmward::audit::AuditEvent::Call(c) => ("call".to_string(), c.outcome, None),
            wasmward::audit::AuditEvent::Limit(l) => ("limit".to_string(), l.limit, Some(l.configured)),
            other => panic!("unexpected row {other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("call".to_string(), "handle_limit".to_string(), None),
            ("limit".to_string(), "process_fd_reserve".to_string(), Some(320)),
            ("call".to_string(), "ok".to_string(), None),
        ]
    );    // The limit row is in the HMAC chain like every other row.
    let v = std::process::Command::new(env!("CARGO_BIN_EXE_wasmward"))
        .args(["audit", "verify", "--config", cfg.to_str().unwrap()])
        .env_remove("WASMWARD_AUDIT_KEY")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success() && out.starts_with("OK: 3 rows"), "{out}{}", String::from_utf8_lossy(&v.stderr));
}
