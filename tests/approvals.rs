//! Approvals a person can decide, against a real `wasmward serve`: the
//! approver sees the arguments redacted as the audit log redacts them, the
//! function's description and the policy it runs under (CLI `approve list`,
//! `--json`, and `GET /v1/admin/approvals`); the call's audit row carries
//! the approval id and the approval gate event shares the call's id (allow,
//! deny, timeout); an MCP client that sent a progressToken gets progress
//! notifications while it waits, which keep a client with a short,
//! progress-reset timeout waiting (rmcp `reset_timeout_on_progress`); the
//! official Python SDK's `progress_callback` sees them too.

mod serve_common;

use reqwest::StatusCode;
use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest, ProgressNotificationParam, ServerResult};
use rmcp::service::{NotificationContext, PeerRequestOptions};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};
use serve_common::{example_wasm, TestConfig, TestServer};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An Anthropic-style key: the audit's redaction replaces it.
const SECRET: &str = "sk-ant-api03-Zq8vN2xR7tLw4pKs9mYd3bHc6fJg1eUa";

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(90)).build().unwrap()
}

/// The `files` tool under approval, writing to `<dir>/data` seen as `/data`.
fn config(approval: &str) -> TestConfig {
    let cfg = TestConfig::new("");
    let data = cfg.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    cfg.rewrite(&format!(
        "[gate]\n{approval}\n\n[[tool]]\nname = \"files\"\npath = {:?}\nrequire_approval = true\n[tool.limits]\ntimeout_ms = 4000\n[tool.policy]\nallowed_write_paths = [{{ host = {:?}, guest = \"/data\" }}]\n",
        example_wasm("files").display().to_string(),
        data.display().to_string(),
    ));
    cfg
}

fn write_args(contents: &str) -> Value {
    json!({"path": "/data/notes.txt", "contents": contents})
}

/// Waits for one pending approval via `wasmward approve list --json`.
async fn pending(cfg: &TestConfig, s: &TestServer) -> Value {
    for _ in 0..400 {
        let (st, out, err) = cfg.cli(&["approve", "list", "--json", "--url", &s.base]);
        assert_eq!(st, 0, "approve list: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        if let Some(p) = v["pending"].as_array().and_then(|a| a.first()) {
            return p.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no call became pending:\n{}", s.log());
}

/// Starts an HTTP API call in the background.
fn call_http(s: &TestServer, tok: &str, args: Value) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let (url, tok) = (s.url("/v1/tools/files.fs.write/call"), tok.to_string());
    tokio::spawn(async move {
        let r = client().post(url).bearer_auth(tok).json(&args).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
    })
}

/// The approval gate events (`stage = "approval"`) whose reason names `id`.
fn approval_events(events: &[Value], id: &str) -> Vec<Value> {
    events.iter().filter(|e| e["kind"] == "gate" && e["stage"] == "approval" && e["reason"].as_str().unwrap_or("").contains(id)).cloned().collect()
}

#[tokio::test]
async fn approver_sees_redacted_arguments_description_and_policy_and_the_audit_links_the_decision() {
    let cfg = config("approval_timeout_ms = 30000");
    let s = TestServer::start(&cfg);
    let agent = cfg.token("agent", "*", &[]);
    let admin = cfg.token("ops", "*", &["--admin"]);

    // --- allow ---
    let call = call_http(&s, &agent, write_args(&format!("token {SECRET} for bob")));
    let p = pending(&cfg, &s).await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["tool"], "files.fs.write");
    assert_eq!(p["caller"].as_str().unwrap().split('#').next(), Some("agent"));
    // Redacted as the audit log is: the secret is gone, the rest is shown.
    assert_eq!(p["arguments"], json!({"path": "/data/notes.txt", "contents": "token [REDACTED:anthropic_key] for bob"}), "{p:#}");
    assert_eq!(p["args_digest"].as_str().map(str::len), Some(64));
    assert!(p["description"].as_str().unwrap_or("").contains("Create or replace a file"), "{p:#}");
    let data = std::fs::canonicalize(cfg.dir.path().join("data")).unwrap();
    assert_eq!(p["policy"]["write"], json!([{"guest": "/data", "host": data.display().to_string()}]), "{p:#}");
    assert_eq!((p["policy"]["read"].clone(), p["policy"]["hosts"].clone(), p["policy"]["programs"].clone()), (json!([]), json!([]), json!([])));
    assert_eq!(p["policy"]["limits"]["timeout_ms"], 4000, "{p:#}");
    assert!(p["expires_ms"].as_u64().unwrap() > p["created_ms"].as_u64().unwrap());

    // The same view over HTTP, for admins only.
    let r = client().get(s.url("/v1/admin/approvals")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["pending"][0]["arguments"], p["arguments"]);
    assert_eq!(listed["pending"][0]["policy"], p["policy"]);
    let r = client().get(s.url("/v1/admin/approvals")).bearer_auth(&agent).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "agents do not see pending calls");

    // The human listing says the same, and never the secret.
    let (st, out, err) = cfg.cli(&["approve", "list", "--url", &s.base]);
    assert_eq!(st, 0, "{err}");
    for needle in [id.as_str(), "files.fs.write", "[REDACTED:anthropic_key]", "/notes.txt", "Create or replace a file", "write:    /data (host ", "timeout_ms = 4000", "wasmward approve allow"] {
        assert!(out.contains(needle), "`approve list` lacks {needle:?}:\n{out}");
    }
    assert!(!out.contains(SECRET) && !listed.to_string().contains(SECRET) && !p.to_string().contains(SECRET));

    let (st, _, err) = cfg.cli(&["approve", "allow", &id, "--url", &s.base]);
    assert_eq!(st, 0, "{err}");
    let (st, v) = call.await.unwrap();
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(std::fs::read_to_string(data.join("notes.txt")).unwrap(), format!("token {SECRET} for bob"));

    // --- deny ---
    let call = call_http(&s, &agent, write_args("second"));
    let denied_id = pending(&cfg, &s).await["id"].as_str().unwrap().to_string();
    let (st, _, err) = cfg.cli(&["approve", "deny", &denied_id, "--url", &s.base]);
    assert_eq!(st, 0, "{err}");
    let (st, v) = call.await.unwrap();
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("approval_denied")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains(&denied_id), "the caller learns which approval: {v}");
    assert_eq!(std::fs::read_to_string(data.join("notes.txt")).unwrap(), format!("token {SECRET} for bob"), "a denied call does not run");
    drop(s);

    let events = cfg.audit_events();
    // Allowed: the call row carries the approval id; the gate event has its call id.
    let calls: Vec<&Value> = events.iter().filter(|e| e["kind"] == "call" && e["tool"] == "files").collect();
    assert_eq!(calls.len(), 1, "only the allowed call ran: {events:#?}");
    let row = calls[0];
    assert_eq!((row["approval_id"].as_str(), row["outcome"].as_str()), (Some(id.as_str()), Some("ok")), "{row:#}");
    let allow = approval_events(&events, &id);
    assert_eq!(allow.len(), 1, "{events:#?}");
    assert_eq!((allow[0]["decision"].as_str(), &allow[0]["call_id"]), (Some("allow"), &row["call_id"]), "{allow:#?}");
    assert!(allow[0]["reason"].as_str().unwrap().contains("approved by approve-cli@"), "{allow:#?}");
    assert_eq!(row["args_digest"], p["args_digest"], "the approver saw the digest of what ran");
    // Denied: one gate event naming the approval, linked by its own call id
    // to nothing that ran.
    let deny = approval_events(&events, &denied_id);
    assert_eq!(deny.len(), 1, "{events:#?}");
    assert_eq!(deny[0]["decision"], "deny");
    assert_ne!(deny[0]["call_id"], row["call_id"]);
    assert!(!events.iter().any(|e| e["kind"] == "call" && e["call_id"] == deny[0]["call_id"]), "{events:#?}");
    // The audit log never held the secret (arguments are not recorded by default).
    assert!(!events.iter().any(|e| e.to_string().contains(SECRET)));
    // And it verifies.
    let (st, out, err) = cfg.cli(&["audit", "verify"]);
    assert_eq!(st, 0, "audit verify: {out}{err}");
    // `audit tail` shows both rows of the allowed call under one call id.
    let (st, out, _) = cfg.cli(&["audit", "tail", "-n", "50"]);
    assert_eq!(st, 0);
    let linked = out.lines().filter(|l| l.contains(row["call_id"].as_str().unwrap())).count();
    assert_eq!(linked, 2, "{out}");
}

#[tokio::test]
async fn a_call_with_no_decision_times_out_and_is_audited_with_its_approval_id() {
    let cfg = config("approval_timeout_ms = 1500");
    let s = TestServer::start(&cfg);
    let agent = cfg.token("agent", "*", &[]);
    let started = Instant::now();
    let call = call_http(&s, &agent, write_args("late"));
    let id = pending(&cfg, &s).await["id"].as_str().unwrap().to_string();
    let (st, v) = call.await.unwrap();
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("approval_timeout")), "{v}");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert!(v["error"]["message"].as_str().unwrap().contains(&id), "{v}");
    // Too late: the id is gone.
    let (st, _, err) = cfg.cli(&["approve", "allow", &id, "--url", &s.base]);
    assert_eq!(st, 1, "{err}");
    assert!(err.contains("no pending call"), "{err}");
    drop(s);
    let events = cfg.audit_events();
    let timeout = approval_events(&events, &id);
    assert_eq!(timeout.len(), 1, "{events:#?}");
    assert_eq!(timeout[0]["decision"], "deny");
    assert!(timeout[0]["reason"].as_str().unwrap().contains("approval_timeout_ms = 1500"), "{timeout:#?}");
    assert!(!events.iter().any(|e| e["kind"] == "call" && e["tool"] == "files"), "the call never ran: {events:#?}");
    assert!(!cfg.dir.path().join("data/notes.txt").exists());
}

#[derive(Clone, Default)]
struct ProgressClient {
    seen: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for ProgressClient {
    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.seen.lock().unwrap().push(params);
    }
}

/// The rmcp client sends a progressToken with every request. With a 3 s
/// request timeout reset on progress, the call survives a 6 s approval
/// wait only because the server reports progress while it waits.
#[tokio::test]
async fn mcp_progress_notifications_keep_a_short_timeout_client_waiting() {
    let cfg = config("approval_timeout_ms = 30000\napproval_progress_interval_ms = 500");
    let s = TestServer::start(&cfg);
    let agent = cfg.token("agent", "*", &[]);
    let handler = ProgressClient::default();
    let seen = handler.seen.clone();
    let transport = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(s.url("/mcp")).auth_header(agent);
    let mcp = handler.serve(StreamableHttpClientTransport::from_config(transport)).await.expect("MCP initialize over HTTP");

    let request = |contents: &str| {
        let params = CallToolRequestParams::new("files.fs.write").with_arguments(write_args(contents).as_object().cloned().unwrap());
        ClientRequest::CallToolRequest(CallToolRequest::new(params))
    };

    // Without progress resetting it, a 2 s timeout gives up: rmcp sends
    // notifications/cancelled, and the pending call is withdrawn.
    let handle = mcp.peer().send_request_with_option(request("given up"), PeerRequestOptions::with_timeout(Duration::from_secs(2))).await.unwrap();
    let gave_up = tokio::spawn(handle.await_response());
    let withdrawn = pending(&cfg, &s).await["id"].as_str().unwrap().to_string();
    assert!(gave_up.await.unwrap().is_err(), "the client timed out");
    let mut left = true;
    for _ in 0..200 {
        let (_, out, _) = cfg.cli(&["approve", "list", "--json", "--url", &s.base]);
        left = !serde_json::from_str::<Value>(&out).unwrap()["pending"].as_array().unwrap().is_empty();
        if !left {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!left, "the cancelled call is no longer pending");
    let (st, _, err) = cfg.cli(&["approve", "allow", &withdrawn, "--url", &s.base]);
    assert_eq!(st, 1, "{err}");
    assert!(err.contains("no pending call"), "{err}");
    let request = request("via mcp");
    let options = PeerRequestOptions::with_timeout(Duration::from_secs(3)).reset_timeout_on_progress();
    let handle = mcp.peer().send_request_with_option(request, options).await.expect("send tools/call");
    let token = handle.progress_token.clone();
    let response = tokio::spawn(handle.await_response());

    let id = pending(&cfg, &s).await["id"].as_str().unwrap().to_string();
    // Longer than the client's timeout: only progress keeps it waiting.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (st, _, err) = cfg.cli(&["approve", "allow", &id, "--url", &s.base]);
    assert_eq!(st, 0, "{err}");
    let result = response.await.unwrap().expect("the call outlived its 3 s timeout thanks to progress");
    let ServerResult::CallToolResult(result) = result else { panic!("not a tool result: {result:?}") };
    assert_eq!(result.is_error, Some(false), "{result:?}");
    // 7 bytes written (`{"ok": 7}` until results of `result<T, E>` are unwrapped).
    let written = result.structured_content.as_ref().map(|v| v["result"].clone()).unwrap_or_default();
    assert!(written == json!(7) || written == json!({"ok": 7}), "{result:?}");
    assert_eq!(std::fs::read_to_string(cfg.dir.path().join("data/notes.txt")).unwrap(), "via mcp");

    // A notification of the given-up call may still arrive late; each one
    // names its own approval.
    let (seen, late): (Vec<_>, Vec<_>) = seen.lock().unwrap().clone().into_iter().partition(|p| p.progress_token == token);
    assert!(late.iter().all(|p| p.message.as_deref().unwrap_or("").contains(&withdrawn)), "{late:?}");
    assert!(seen.len() >= 4, "progress every 500 ms over 6 s: {seen:?}");
    assert!(seen.iter().all(|p| p.total == Some(30.0) && p.message.as_deref().unwrap_or("").contains(&id)), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[1].progress > w[0].progress), "progress increases: {seen:?}");
    let first = seen[0].message.clone().unwrap_or_default();
    assert!(first.starts_with(&format!("waiting for approval {id} (")) && first.ends_with(" s left)"), "{first}");
    mcp.cancel().await.ok();
    drop(s);
    let events = cfg.audit_events();
    let row = events.iter().find(|e| e["kind"] == "call" && e["tool"] == "files").expect("the call row");
    assert_eq!(row["approval_id"].as_str(), Some(id.as_str()));
    assert_eq!(approval_events(&events, &id)[0]["call_id"], row["call_id"]);
    let gone = approval_events(&events, &withdrawn);
    assert_eq!(gone.len(), 1, "{events:#?}");
    assert_eq!(gone[0]["decision"], "deny");
    assert!(gone[0]["reason"].as_str().unwrap().contains("cancelled before it ran"), "{gone:#?}");
}


/// The Python SDK's `progress_callback` gets the notifications while the
/// call waits, and the result once it is allowed.
#[tokio::test]
async fn python_sdk_progress_callback_sees_the_wait() {
    let py = tokio::task::spawn_blocking(serve_common::python_with_mcp).await.unwrap();
    let cfg = config("approval_timeout_ms = 30000\napproval_progress_interval_ms = 300");
    let s = TestServer::start(&cfg);
    let agent = cfg.token("py-agent", "*", &[]);
    let script = serve_common::repo_root().join("tests/mcp_client/approval_progress.py");
    let child = tokio::process::Command::new(py)
        .arg(script)
        .args(["--url", &s.url("/mcp"), "--token", &agent, "--name", "files.fs.write", "--args", &write_args("via python").to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let id = pending(&cfg, &s).await["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (st, _, err) = cfg.cli(&["approve", "allow", &id, "--url", &s.base]);
    assert_eq!(st, 0, "{err}");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.expect("the script ended").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n--- stderr ---\n{}", String::from_utf8_lossy(&out.stderr));
    let progress: Vec<Value> = stdout.lines().filter_map(|l| l.strip_prefix("PROGRESS ")).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(progress.len() >= 2, "{stdout}");
    for p in &progress {
        let m = p["message"].as_str().unwrap_or("");
        assert!(m.starts_with(&format!("waiting for approval {id} (")) && m.ends_with(" s left)"), "{p}");
        assert_eq!(p["total"], 30.0, "{p}");
    }
    let result: Value = serde_json::from_str(stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("a RESULT line")).unwrap();
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(std::fs::read_to_string(cfg.dir.path().join("data/notes.txt")).unwrap(), "via python");
}
