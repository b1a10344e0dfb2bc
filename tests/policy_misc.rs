//! The rest of the policy end to end: environment (nothing inherited,
//! sensitive keys refused at load), subprocess (grant, allowlist, argv, env,
//! timeout), `sandbox_violation_action = "log"`, embedded interpreters under
//! `allow_eval_exec`, import checks, and grants outside the operator's
//! ceiling. Each denial is checked both as the guest or operator saw it and
//! as an audit row.

mod common;
mod policy_support;

use common::{tool_path, TestDir};
use policy_support::*;
use serde_json::json;
use std::path::PathBuf;

const ENV_ALL: &str = "hostile.caps.env-all";
const ENV_GET: &str = "hostile.caps.env-get";

const SECRET_VAR: &str = "WASMWARD_TEST_SECRET";

fn set_host_secret() {
    // Every test that sets it sets the same value; tests run in parallel.
    std::env::set_var(SECRET_VAR, "hunter2");
}

// ------------------------------------------------------------------ env

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_sees_only_the_policy_env() {
    set_host_secret();
    assert_eq!(std::env::var(SECRET_VAR).as_deref(), Ok("hunter2"));
    let dir = TestDir::new();
    let tools = [
        tool("hostile", "hostile", "", Some("env = { APP_MODE = \"test\", LANG = \"C.UTF-8\" }")),
        tool("bare", "hostile", "", None),
    ]
    .concat();
    let host = open(&dir, &tools).await;
    let all = call(&host, ENV_ALL, json!({})).await;
    let secret = call(&host, ENV_GET, json!({"key": SECRET_VAR})).await;
    let path = call(&host, ENV_GET, json!({"key": "PATH"})).await;
    let mode = call(&host, ENV_GET, json!({"key": "APP_MODE"})).await;
    let bare = call(&host, "bare.caps.env-all", json!({})).await;
    host.shutdown().await.unwrap();

    let want: std::collections::BTreeMap<String, String> =
        [("APP_MODE", "test"), ("LANG", "C.UTF-8")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    assert_eq!(env_map(ok(&all)), want);
    assert_eq!(ok(&all).as_array().unwrap().len(), 2);
    assert_eq!(ok(&secret), &json!(null));
    assert_eq!(ok(&path), &json!(null));
    assert_eq!(ok(&mode), &json!("test"));
    assert_eq!(ok(&bare), &json!([]));

    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 5);
    assert!(calls.iter().all(|a| a.call.outcome == "ok" && a.denials.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sensitive_env_key_in_a_policy_is_a_config_error() {
    let dir = TestDir::new();
    let e = open_err(&dir, &tool("hostile", "hostile", "", Some("env = { OPENAI_API_KEY = \"sk-123\" }"))).await;
    assert!(e.contains("tool \"hostile\": policy.env.OPENAI_API_KEY"), "{e}");
    assert!(e.contains("sensitive prefix OPENAI_"), "{e}");
    assert!(e.contains("Fix: "), "{e}");
    assert!(!e.contains("sk-123"), "the secret value must not be echoed: {e}");

    let e = open_err(&dir, &tool("hostile", "hostile", "", Some("env = { DEPLOY_TOKEN = \"t\" }"))).await;
    assert!(e.contains("policy.env.DEPLOY_TOKEN") && e.contains("sensitive suffix _TOKEN") && e.contains("Fix: "), "{e}");
}

// ----------------------------------------------------------- subprocess

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subprocess_needs_the_grant_and_the_allowlist() {
    set_host_secret();
    let dir = TestDir::new();
    let granted = "allow_subprocess = true\n\
                   subprocess_allowlist = [\"echo\", { program = \"env\", allow_shell = true }, \"sleep\"]\n\
                   subprocess_timeout_ms = 300\n\
                   env = { APP_MODE = \"test\", LANG = \"C\" }";
    let tools = [tool("noproc", "hostile", "", None), tool("proc", "hostile", "", Some(granted))].concat();
    let host = open(&dir, &tools).await;
    let no_grant = call(&host, "noproc.caps.spawn", json!({"program": "echo", "args": ["hi"]})).await;
    let not_listed = call(&host, "proc.caps.spawn", json!({"program": "ls", "args": ["/"]})).await;
    let shell = call(&host, "proc.caps.spawn", json!({"program": "/bin/sh", "args": ["-c", "echo pwned"]})).await;
    let echo = call(&host, "proc.caps.spawn", json!({"program": "echo", "args": ["hello", "two words", "$HOME;id"]})).await;
    let env = call(&host, "proc.caps.spawn", json!({"program": "env", "args": []})).await;
    let slow = call(&host, "proc.caps.spawn", json!({"program": "sleep", "args": ["5"]})).await;
    host.shutdown().await.unwrap();

    assert_eq!(guest_err(&no_grant), "denied: echo: allow_subprocess is false");
    assert_eq!(guest_err(&not_listed), "denied: ls: not on subprocess_allowlist");
    assert_eq!(guest_err(&shell), "denied: /bin/sh: not on subprocess_allowlist");
    // argv reaches the program as given: no shell expands anything.
    assert_eq!(ok(&echo), &json!("hello two words $HOME;id\n"));
    let mut lines: Vec<&str> = ok(&env).as_str().unwrap().lines().collect();
    lines.sort();
    // The policy's env plus TMPDIR, the run's private temp dir (issue 9).
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[2].starts_with("TMPDIR=") && lines[2].contains("wasmward-run-"), "{lines:?}");
    assert_eq!(lines[..2], ["APP_MODE=test", "LANG=C"], "the program's env is the policy's alone");
    assert_eq!(guest_err(&slow), "timeout: the program was killed");

    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 6);
    assert_call(&calls[0], "noproc.caps.spawn", "denied", &[deny("process", "spawn", "echo hi", "allow_subprocess is false")]);
    assert_call(&calls[1], "proc.caps.spawn", "denied", &[deny("process", "spawn", "ls /", "not on subprocess_allowlist")]);
    assert_call(&calls[2], "proc.caps.spawn", "denied", &[deny("process", "spawn", "/bin/sh -c echo pwned", "not on subprocess_allowlist")]);
    assert_call(&calls[3], "proc.caps.spawn", "ok", &[]);
    assert_call(&calls[4], "proc.caps.spawn", "ok", &[]);
    // A run killed at its timeout is an audit event (issue 9).
    assert_call(&calls[5], "proc.caps.spawn", "denied", &[deny("process", "kill", "sleep 5", "subprocess_timeout_ms: process group killed")]);
}

// ------------------------------------------------------------- log mode

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_mode_lets_network_through_but_not_programs_files_or_private_ips() {
    let tcp = EchoServer::start(b"pong\n").await;
    let web = http_server().await;
    let dir = TestDir::new();
    let rw = dir.path().canonicalize().unwrap().join("rw");
    std::fs::create_dir(&rw).unwrap();
    let base = format!(
        "sandbox_violation_action = \"log\"\nallowed_network_hosts = [\"example.com\"]\nallowed_write_paths = [{}]",
        q(&rw)
    );
    let tools = [
        tool("disco", "hostile", "", Some(&format!("{base}\nblock_private_ips = false"))),
        tool("discopriv", "hostile", "", Some(&base)),
    ]
    .concat();
    let host = open(&dir, &tools).await;
    let tcp_addr = format!("127.0.0.1:{}", tcp.port);
    let url = format!("http://127.0.0.1:{}/", web.port);
    let outside = dir.path().canonicalize().unwrap().join("outside.txt").display().to_string();

    let connect = call(&host, "disco.caps.tcp-connect", json!({"addr": tcp_addr})).await;
    let lookup = call(&host, "disco.caps.resolve", json!({"name": "localhost"})).await;
    let spawn = call(&host, "disco.caps.spawn", json!({"program": "echo", "args": ["discovered"]})).await;
    let http = call(&host, "disco.caps.http-get", json!({"url": url})).await;
    let file = call(&host, "disco.caps.write-file", json!({"path": outside, "contents": "x"})).await;
    let inside = call(&host, "disco.caps.write-file", json!({"path": rw.join("ok.txt").display().to_string(), "contents": "fine"})).await;
    let private_tcp = call(&host, "discopriv.caps.tcp-connect", json!({"addr": tcp_addr})).await;
    let private_http = call(&host, "discopriv.caps.http-get", json!({"url": url})).await;
    host.shutdown().await.unwrap();

    assert_eq!(ok(&connect), &json!("pong\n"));
    assert!(ok(&lookup).as_array().unwrap().contains(&json!("127.0.0.1")), "{lookup:?}");
    // The subprocess allowlist holds in log mode too (issue 8).
    assert_eq!(guest_err(&spawn), "denied: echo: allow_subprocess is false");
    assert_eq!(ok(&http), &json!(200));
    assert_eq!(guest_err(&file), "write: Permission denied (os error 2)");
    assert!(!std::path::Path::new(&outside).exists());
    assert_eq!(ok(&inside), &json!(null));
    assert_eq!(guest_err(&private_tcp), "connect: Permission denied (os error 2)");
    assert_eq!(guest_err(&private_http), "request failed: ErrorCode::DestinationIpProhibited");
    assert_eq!(tcp.connections(), 1, "only the log-mode connect with private IPs allowed got through");
    assert_eq!(web.connections(), 1);

    let not_listed = "address is neither on allowed_network_hosts nor resolved from an allowed name in this call";
    let host_rule = "`127.0.0.1` matches no allowed_network_hosts entry";
    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 8);
    assert_call(&calls[0], "disco.caps.tcp-connect", "ok", &[logged("net", "connect", &tcp_addr, not_listed)]);
    assert_call(&calls[1], "disco.caps.resolve", "ok", &[logged("net", "lookup", "localhost", "name is not on allowed_network_hosts")]);
    assert_call(&calls[2], "disco.caps.spawn", "denied", &[deny("process", "spawn", "echo discovered", "allow_subprocess is false")]);
    assert_call(&calls[3], "disco.caps.http-get", "ok", &[logged("http", "GET", &format!("http://127.0.0.1:{}", web.port), host_rule)]);
    assert_call(&calls[4], "disco.caps.write-file", "denied", &[deny("fs", "create", &outside, "outside every mount")]);
    assert_call(&calls[5], "disco.caps.write-file", "ok", &[]);
    assert_call(&calls[6], "discopriv.caps.tcp-connect", "denied", &[deny("net", "connect", &tcp_addr, "block_private_ips: loopback 127.0.0.0/8")]);
    assert_call(
        &calls[7],
        "discopriv.caps.http-get",
        "denied",
        &[
            logged("http", "GET", &format!("http://127.0.0.1:{}", web.port), host_rule),
            deny("http", "GET", &format!("http://127.0.0.1:{} (127.0.0.1)", web.port), "block_private_ips: loopback 127.0.0.0/8"),
        ],
    );
}

// ----------------------------------------------------------------- eval

/// A copy of `text.wasm` with one more top-level `producers` custom section
/// saying `language: JavaScript`, the way componentize-js marks its output.
fn javascript_marked_text(dir: &TestDir) -> PathBuf {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn name(s: &str, out: &mut Vec<u8>) {
        leb(s.len(), out);
        out.extend_from_slice(s.as_bytes());
    }
    let mut payload = Vec::new();
    name("producers", &mut payload);
    leb(1, &mut payload); // one field
    name("language", &mut payload);
    leb(1, &mut payload); // one value
    name("JavaScript", &mut payload);
    name("", &mut payload); // version
    let mut bytes = std::fs::read(tool_path("text")).unwrap();
    bytes.push(0); // custom section id
    leb(payload.len(), &mut bytes);
    bytes.extend_from_slice(&payload);
    let out = dir.path().join("text-js.wasm");
    std::fs::write(&out, bytes).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interpreter_embedding_component_needs_allow_eval_exec() {
    let dir = TestDir::new();
    let wasm = javascript_marked_text(&dir);
    let e = open_err(&dir, &tool_at("jsy", &wasm, "", None)).await;
    assert!(e.contains("tool \"jsy\""), "{e}");
    assert!(e.contains("embeds an interpreter, SpiderMonkey/StarlingMonkey (componentize-js),"), "{e}");
    assert!(e.contains("allow_eval_exec = true"), "{e}");

    let (calls, load) = audited(&dir.audit_db());
    assert!(calls.is_empty());
    assert_eq!(load.len(), 1);
    let d = &load[0];
    assert_eq!((d.tool.as_str(), d.function.as_str(), d.caller.as_str()), ("jsy", "<load>", "operator"));
    assert_eq!(
        Deny::from(d),
        deny("eval", "load", "SpiderMonkey/StarlingMonkey (componentize-js)", "allow_eval_exec = false")
    );

    // Granted, the same component loads and runs.
    let dir2 = TestDir::new();
    let host = open(&dir2, &tool_at("jsy", &wasm, "", Some("allow_eval_exec = true"))).await;
    let r = call(&host, "jsy.greet", json!({"name": "eval"})).await;
    host.shutdown().await.unwrap();
    assert!(ok(&r).as_str().unwrap().contains("eval"), "{r:?}");
    let (calls, load) = audited(&dir2.audit_db());
    assert!(load.is_empty());
    assert_eq!(calls.len(), 1);
    assert_call(&calls[0], "jsy.greet", "ok", &[]);
}

// -------------------------------------------------------------- imports

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_imports_refuse_the_component_at_load() {
    let dir = TestDir::new();
    let e = open_err(&dir, &tool("hostile", "hostile", "", Some("blocked_imports = [\"wasi:sockets/*\"]"))).await;
    assert!(e.contains("tool \"hostile\""), "{e}");
    assert!(e.contains("import `wasi:sockets/"), "{e}");
    assert!(e.contains("blocked by blocked_imports entry `wasi:sockets/*`"), "{e}");
    assert!(e.contains("Fix: remove the matching blocked_imports entry"), "{e}");

    let (calls, load) = audited(&dir.audit_db());
    assert!(calls.is_empty());
    assert_eq!(load.len(), 1);
    let d = &load[0];
    assert_eq!((d.capability.as_str(), d.op.as_str(), d.action.as_str()), ("import", "import", "denied"));
    assert!(d.target.starts_with("wasi:sockets/") && e.contains(&format!("import `{}`", d.target)), "{d:?} / {e}");
    assert_eq!(d.rule, "blocked by blocked_imports entry `wasi:sockets/*`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_imports_turns_ungrantable_imports_into_errors() {
    // Without strict_imports the same policy loads (the imports are noted).
    let dir = TestDir::new();
    let host = open(&dir, &tool("hostile", "hostile", "", Some("strict_imports = false"))).await;
    host.shutdown().await.unwrap();

    let dir = TestDir::new();
    let e = open_err(&dir, &tool("hostile", "hostile", "", Some("strict_imports = true"))).await;
    assert!(e.contains("tool \"hostile\": import `"), "{e}");
    let fields = ["allowed_network_hosts", "allow_udp", "allow_subprocess", "subprocess_allowlist", "allowed_read_paths"];
    assert!(fields.iter().any(|f| e.contains(f)), "the error must name the field to change: {e}");
    assert!(e.contains("Fix: grant what it needs"), "{e}");
    let (_, load) = audited(&dir.audit_db());
    assert_eq!(load.len(), 1);
    assert_eq!((load[0].capability.as_str(), load[0].op.as_str()), ("import", "import"));
    assert!(e.contains(&format!("import `{}`: {}", load[0].target, load[0].rule)), "{e} / {:?}", load[0]);
}

// -------------------------------------------------------------- ceiling

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_outside_the_ceiling_are_config_errors() {
    let dir = TestDir::new();
    let ceiling = "[defaults.policy]\nallowed_network_hosts = [\"*.example.com\"]\nallow_subprocess = false\n\n";

    let e = open_err(&dir, &format!("{ceiling}{}", tool("hostile", "hostile", "", Some("allowed_network_hosts = [\"evil.com\"]")))).await;
    assert!(e.contains("tool \"hostile\": policy.allowed_network_hosts[0] = \"evil.com\""), "{e}");
    assert!(e.contains("Fix: "), "{e}");

    let e = open_err(&dir, &format!("{ceiling}{}", tool("hostile", "hostile", "", Some("allow_subprocess = true\nsubprocess_allowlist = [\"echo\"]")))).await;
    assert!(e.contains("tool \"hostile\": policy.allow_subprocess = \"true\""), "{e}");
    assert!(e.contains("Fix: "), "{e}");

    let e = open_err(&dir, &format!("{ceiling}{}", tool("hostile", "hostile", "", Some("block_private_ips = false")))).await;
    assert!(e.contains("tool \"hostile\": policy.block_private_ips = \"false\""), "{e}");

    // Inside the ceiling it loads.
    let host = open(&dir, &format!("{ceiling}{}", tool("hostile", "hostile", "", Some("allowed_network_hosts = [\"api.example.com\"]")))).await;
    host.shutdown().await.unwrap();
}
