//! Protocol edges against a real `wasmward serve` (issue 10): shutdown
//! with MCP calls in flight (streamable HTTP and stdio with stdin held
//! open), JSON-RPC errors for malformed input, the JSON shape and the audit
//! rows of every refusal of the HTTP layer, hints that list only what the
//! caller may call, session DELETE as the SDKs expect, and the stdio parent
//! outside the rate limits. Each test asserts what the client saw and what
//! the audit log (and `/metrics`) recorded.

mod serve_common;

use reqwest::StatusCode;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use serve_common::{example_wasm, repo_root, TestConfig, TestServer, BIN};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// The `edges` tool (its `deny-then-sleep` sleeps as long as asked).
fn edges(extra: &str) -> String {
    format!("[[tool]]\nname = \"edges\"\npath = {:?}\n[tool.limits]\ntimeout_ms = 60000\n\n{extra}\n", example_wasm("edges").display().to_string())
}

const OUTSIDE: &str = "/etc/wasmward-mcp-edges-test";

type Mcp = RunningService<RoleClient, ()>;

async fn mcp_client(url: &str, token: &str) -> Mcp {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).auth_header(token.to_string());
    ().serve(StreamableHttpClientTransport::from_config(config)).await.expect("MCP initialize over HTTP")
}

fn params(name: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_string()).with_arguments(args.as_object().cloned().unwrap_or_default())
}

fn text_of(r: &rmcp::model::CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.clone()).collect::<Vec<_>>().join("\n")
}

fn calls<'a>(events: &'a [Value], function: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == "call" && e["function"] == function).collect()
}

fn transport_rows(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["kind"] == "gate" && e["stage"] == "transport").collect()
}

async fn metrics(base: &str) -> String {
    client().get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap()
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

/// Waits until `/healthz` shows at least `n` calls in flight.
async fn wait_in_flight(base: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h: Value = client().get(format!("{base}/healthz")).send().await.unwrap().json().await.unwrap();
        if h["in_flight"].as_i64().unwrap_or(0) >= n {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} calls in flight: {h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the child to exit; returns its status code and how long it took.
fn wait_exit(child: &mut Child, within: Duration) -> (Option<i32>, Duration) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st.code(), t0.elapsed());
        }
        if t0.elapsed() > within {
            let _ = child.kill();
            panic!("wasmward did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Shutdown.

/// Calls ending together at shutdown (their results race the end of the
/// sessions).
const SHORT_CALLS: usize = 16;

#[tokio::test]
async fn sigterm_delivers_the_results_of_mcp_calls_in_flight_over_http() {
    let cfg = TestConfig::new(&edges("[server]\nshutdown_grace_ms = 4000\n"));
    let mut s = TestServer::start(&cfg);
    let tok = cfg.token("agent", "*", &[]);
    // Calls that end inside the grace period (several, on several sessions,
    // ending together: their results race the end of the sessions); one
    // would sleep for 60 s and is cancelled at the end of the grace period.
    // Every answer must reach its client.
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(mcp_client(&s.url("/mcp"), &tok).await);
    }
    let mut shorts = Vec::new();
    for i in 0..SHORT_CALLS {
        let p = clients[i % 4].peer().clone();
        shorts.push(tokio::spawn(async move { p.call_tool(params("edges.deny-then-sleep", json!({"path": OUTSIDE, "ms": 2000}))).await }));
    }
    let p = clients[0].peer().clone();
    let long = tokio::spawn(async move { p.call_tool(params("edges.deny-then-sleep", json!({"path": OUTSIDE, "ms": 60000}))).await });
    wait_in_flight(&s.base, SHORT_CALLS as i64 + 1).await;
    let signalled = Instant::now();
    s.signal("TERM");

    for short in shorts {
        let short = short.await.unwrap().expect("the short call's result reaches the client after SIGTERM");
        assert_ne!(short.is_error, Some(true), "{short:?}");
        assert!(!text_of(&short).is_empty(), "{short:?}");
    }
    let long = long.await.unwrap().expect("the cancelled call's answer reaches the client too");
    assert_eq!(long.is_error, Some(true), "{long:?}");
    assert!(text_of(&long).starts_with("cancelled: "), "{}", text_of(&long));
    assert!(text_of(&long).contains("shut down"), "{}", text_of(&long));

    let (code, took) = wait_exit(&mut s.child, Duration::from_secs(30));
    println!("exited {} ms after SIGTERM", signalled.elapsed().as_millis());
    assert_eq!(code, Some(0), "{}", s.log());
    assert!(took < Duration::from_secs(20), "{}", s.log());
    assert!(!s.log().contains("MCP responses still being sent"), "{}", s.log());

    let events = cfg.audit_events();
    let rows = calls(&events, "edges.deny-then-sleep");
    let mut outcomes: Vec<&str> = rows.iter().map(|c| c["outcome"].as_str().unwrap()).collect();
    outcomes.sort();
    assert_eq!(outcomes.len(), SHORT_CALLS + 1, "{events:#?}");
    assert_eq!(outcomes.iter().filter(|o| **o == "ok").count(), SHORT_CALLS, "{events:#?}");
    assert_eq!(outcomes.last(), Some(&"ok"));
    assert_eq!(outcomes[0], "cancelled", "{events:#?}");
    let (st, out, err) = cfg.cli(&["audit", "verify"]);
    assert_eq!(st, 0, "{out}{err}");
}

/// `serve --stdio --listen 127.0.0.1:0` with stdin and stdout piped; the
/// HTTP side only shows calls in flight. Returns the child, its stdout
/// lines, and the HTTP base URL.
fn spawn_stdio(cfg: &TestConfig) -> (Child, mpsc::Receiver<String>, String, std::sync::Arc<std::sync::Mutex<String>>) {
    let mut child = spawn_piped(&["--log-level", "info", "serve", "--stdio", "--listen", "127.0.0.1:0", "--config"], cfg);
    let rx = lines(child.stdout.take().unwrap());
    let (atx, arx) = mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let log2 = log.clone();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = atx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
            log2.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let addr = arx.recv_timeout(Duration::from_secs(120)).expect("serve --stdio --listen started");
    (child, rx, format!("http://{addr}"), log)
}

/// `wasmward ARGS CONFIG` with stdin, stdout and stderr piped.
fn spawn_piped(args: &[&str], cfg: &TestConfig) -> Child {
    Command::new(BIN).args(args).arg(&cfg.path).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// The lines of a child's output, read on their own thread.
fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

fn send(child: &mut Child, msg: &str) {
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(msg.as_bytes()).unwrap();
    stdin.write_all(b"\n").unwrap();
    stdin.flush().unwrap();
}

/// The next stdout line that is the answer to `id` (notifications skipped).
fn answer(rx: &mpsc::Receiver<String>, id: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no answer to id {id}"));
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        if v.get("method").is_none() && &v["id"] == id {
            return v;
        }
    }
}

fn initialize(child: &mut Child, rx: &mpsc::Receiver<String>) {
    send(child, r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#);
    let init = answer(rx, &json!(0));
    assert!(init["result"]["serverInfo"]["name"] == "wasmward", "{init}");
    send(child, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
}

fn call_line(id: u64, name: &str, args: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}}).to_string()
}

#[tokio::test]
async fn sigterm_ends_serve_stdio_with_stdin_held_open_after_answering_calls_in_flight() {
    let cfg = TestConfig::new(&edges("[server]\nshutdown_grace_ms = 3000\n"));
    let (mut child, rx, base, log) = spawn_stdio(&cfg);
    initialize(&mut child, &rx);
    send(&mut child, &call_line(1, "edges.deny-then-sleep", json!({"path": OUTSIDE, "ms": 1500})));
    send(&mut child, &call_line(2, "edges.deny-then-sleep", json!({"path": OUTSIDE, "ms": 60000})));
    wait_in_flight(&base, 2).await;
    let signalled = Instant::now();
    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    // stdin stays open (the pipe is held by `child.stdin`) the whole time.
    let short = answer(&rx, &json!(1));
    assert_eq!(short["result"]["isError"], json!(false), "{short}");
    let long = answer(&rx, &json!(2));
    assert_eq!(long["result"]["isError"], json!(true), "{long}");
    assert!(long["result"]["content"][0]["text"].as_str().unwrap().starts_with("cancelled: "), "{long}");
    let (code, _) = wait_exit(&mut child, Duration::from_secs(30));
    let took = signalled.elapsed();
    println!("serve --stdio exited {} ms after SIGTERM with stdin open", took.as_millis());
    assert!(child.stdin.is_some(), "stdin was held open");
    assert_eq!(code, Some(0), "{}", log.lock().unwrap());
    assert!(took >= Duration::from_millis(2500), "the grace period was given to the long call: {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");

    let events = cfg.audit_events();
    let mut outcomes: Vec<&str> = calls(&events, "edges.deny-then-sleep").iter().map(|c| c["outcome"].as_str().unwrap()).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["cancelled", "ok"], "{events:#?}");
}

#[test]
fn sigterm_ends_an_idle_serve_stdio_whose_stdin_stays_open_before_and_after_initialize() {
    let cfg = TestConfig::new("");
    for initialized in [false, true] {
        let mut child = spawn_piped(&["serve", "--stdio", "--config"], &cfg);
        let rx = lines(child.stdout.take().unwrap());
        let erx = lines(child.stderr.take().unwrap());
        if initialized {
            initialize(&mut child, &rx);
        } else {
            // A supervisor stops a server no client has talked to yet.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !erx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("the server started").contains("tool(s) ready") {}
            std::thread::sleep(Duration::from_millis(300));
        }
        let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(st.success());
        let (code, took) = wait_exit(&mut child, Duration::from_secs(30));
        assert!(child.stdin.is_some());
        assert_eq!(code, Some(0), "initialized: {initialized}");
        assert!(took < Duration::from_secs(10), "initialized: {initialized}: {took:?}");
    }
}

// ---------------------------------------------------------------------------
// JSON-RPC errors for malformed input.

#[tokio::test]
async fn stdio_answers_a_non_json_line_with_a_parse_error_and_non_object_arguments_with_invalid_params() {
    let cfg = TestConfig::new("");
    let (mut child, rx, _base, _log) = spawn_stdio(&cfg);
    initialize(&mut child, &rx);

    send(&mut child, "this is not JSON {");
    let parse = answer(&rx, &Value::Null);
    assert_eq!(parse["jsonrpc"], "2.0", "{parse}");
    assert_eq!(parse["error"]["code"], -32700, "{parse}");
    assert!(parse.as_object().unwrap().contains_key("id"), "JSON-RPC 2.0: `id: null` is present: {parse}");

    send(&mut child, &call_line(5, "text.greet", json!(["A"])));
    let bad = answer(&rx, &json!(5));
    assert_eq!(bad["error"]["code"], -32602, "invalid params, not method not found: {bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("params.arguments must be a JSON object"), "{bad}");

    send(&mut child, &json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "text.greet", "arguments": "A"}}).to_string());
    assert_eq!(answer(&rx, &json!(6))["error"]["code"], -32602);

    // The session goes on.
    send(&mut child, &call_line(7, "text.greet", json!({"name": "A"})));
    let ok = answer(&rx, &json!(7));
    assert_eq!(ok["result"]["isError"], json!(false), "{ok}");
    assert_eq!(ok["result"]["content"][0]["text"], "Hello, A!", "{ok}");
    drop(child.stdin.take());
    let (code, _) = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(0));

    // Nothing malformed reached the gate: one call row, the good one.
    let events = cfg.audit_events();
    let rows: Vec<&Value> = events.iter().filter(|e| e["kind"] == "call").collect();
    assert_eq!(rows.len(), 1, "{events:#?}");
    assert_eq!((rows[0]["function"].as_str(), rows[0]["outcome"].as_str()), (Some("text.greet"), Some("ok")));
}

/// A raw MCP session over HTTP: (session id).
async fn raw_session(base: &str, token: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let r = mcp_post(base, token, None, &init).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;
    let r = mcp_post(base, token, Some(&id), &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    id
}

fn mcp_post(base: &str, token: &str, session: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
    let mut b = client()
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(body);
    if let Some(s) = session {
        b = b.header("mcp-session-id", s);
    }
    b
}

/// The JSON-RPC messages in an SSE body.
fn sse_messages(body: &str) -> Vec<Value> {
    body.lines().filter_map(|l| l.strip_prefix("data:")).filter_map(|d| serde_json::from_str(d.trim()).ok()).collect()
}

#[tokio::test]
async fn http_answers_non_object_arguments_with_invalid_params() {
    let cfg = TestConfig::new("");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("agent", "*", &[]);
    let session = raw_session(&s.base, &tok).await;
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "text.greet", "arguments": [1, 2]}});
    let r = mcp_post(&s.base, &tok, Some(&session), &body).send().await.unwrap();
    let text = r.text().await.unwrap();
    let msgs = sse_messages(&text);
    let err = msgs.iter().find(|m| m["id"] == 9).unwrap_or_else(|| panic!("no answer to id 9: {text}"));
    assert_eq!(err["error"]["code"], -32602, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("not an array"), "{err}");
    assert!(calls(&cfg.audit_events(), "text.greet").is_empty(), "nothing reached the gate");
}

// ---------------------------------------------------------------------------
// Refusals of the HTTP layer: the JSON shape, audit rows, metrics.

fn assert_error_shape(status: StatusCode, body: &str, want_status: StatusCode, want_code: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{want_code}: the body is not JSON ({e}): {body:?}"));
    assert_eq!(status, want_status, "{body}");
    assert_eq!(v["error"]["code"], want_code, "{body}");
    assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty(), "{body}");
    v
}

#[tokio::test]
async fn every_refusal_has_the_json_shape_and_host_origin_body_and_session_refusals_are_audited() {
    let cfg = TestConfig::new("[server]\nallowed_origins = [\"https://app.example.com\"]\nmax_request_body_bytes = 4096\nmax_sessions = 1\n");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("agent", "*", &[]);
    let b = &s.base;

    // Origin (rmcp's check on /mcp): an authenticated caller from another site.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let r = mcp_post(b, &tok, None, &init).header("origin", "https://evil.example").send().await.unwrap();
    let st = r.status();
    let v = assert_error_shape(st, &r.text().await.unwrap(), StatusCode::FORBIDDEN, "origin_not_allowed");
    assert!(v["error"]["message"].as_str().unwrap().contains("allowed_origins"), "{v}");
    // The listed origin passes.
    let r = mcp_post(b, &tok, None, &init).header("origin", "https://app.example.com").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;

    // Host (DNS rebinding), before authentication.
    let r = client().get(format!("{b}/v1/tools")).bearer_auth(&tok).header("host", "rebound.example").send().await.unwrap();
    let st = r.status();
    assert_error_shape(st, &r.text().await.unwrap(), StatusCode::FORBIDDEN, "host_not_allowed");

    // Body size, on /mcp (rmcp's limit) and on /v1.
    let big = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "text.greet", "arguments": {"name": "x".repeat(8000)}}});
    let r = mcp_post(b, &tok, Some(&session), &big).send().await.unwrap();
    let st = r.status();
    let v = assert_error_shape(st, &r.text().await.unwrap(), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    assert!(v["error"]["message"].as_str().unwrap().contains("max_request_body_bytes = 4096"), "{v}");
    let r = client().post(format!("{b}/v1/tools/text.greet/call")).bearer_auth(&tok).json(&json!({"name": "x".repeat(8000)})).send().await.unwrap();
    let st = r.status();
    assert_error_shape(st, &r.text().await.unwrap(), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    // Session limit (max_sessions = 1, one is open).
    let r = mcp_post(b, &tok, None, &init).send().await.unwrap();
    let st = r.status();
    assert_error_shape(st, &r.text().await.unwrap(), StatusCode::SERVICE_UNAVAILABLE, "too_many_sessions");

    // rmcp's and axum's other refusals are JSON too (not audited: client bugs).
    let r = mcp_post(b, &tok, Some("no-such-session"), &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})).send().await.unwrap();
    let st = r.status();
    assert_error_shape(st, &r.text().await.unwrap(), StatusCode::NOT_FOUND, "not_found");
    let r = client().post(format!("{b}/mcp")).bearer_auth(&tok).header("accept", "text/plain").header("mcp-session-id", &session).json(&init).send().await.unwrap();
    let st = r.status();
    assert_error_shape(st, &r.text().await.unwrap(), StatusCode::NOT_ACCEPTABLE, "not_acceptable");
    let r = client()
        .post(format!("{b}/mcp"))
        .bearer_auth(&tok)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", &session)
        .body("this is not JSON")
        .send()
        .await
        .unwrap();
    let st = r.status();
    assert_error_shape(st, &r.text().await.unwrap(), StatusCode::BAD_REQUEST, "invalid_json");
    let r = client().get(format!("{b}/v1/tools/text.greet/call")).bearer_auth(&tok).send().await.unwrap();
    let (st, allow) = (r.status(), r.headers().get("allow").cloned());
    assert_error_shape(st, &r.text().await.unwrap(), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(allow.is_some(), "the Allow header is kept");
    let r = client().put(format!("{b}/mcp")).bearer_auth(&tok).send().await.unwrap();
    let st = r.status();
    assert_error_shape(st, &r.text().await.unwrap(), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    // Audit: one transport row per audited refusal, with who and why.
    let m = metrics(b).await;
    let events = cfg.audit_events();
    let rows = transport_rows(&events);
    let reasons: Vec<&str> = rows.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    for code in ["origin_not_allowed", "host_not_allowed", "too_many_sessions"] {
        assert_eq!(reasons.iter().filter(|r| r.contains(code)).count(), 1, "{code}: {rows:#?}");
    }
    assert_eq!(reasons.iter().filter(|r| r.contains("body_too_large")).count(), 2, "{rows:#?}");
    for r in &rows {
        assert_eq!(r["decision"], "deny", "{r}");
        let who = r["caller"].as_str().unwrap();
        if r["reason"].as_str().unwrap().contains("host_not_allowed") {
            assert_eq!(who, "anonymous@127.0.0.1", "before authentication, by source: {r}");
        } else {
            assert!(who.starts_with("agent#"), "{r}");
        }
    }
    let origin_row = rows.iter().find(|r| r["reason"].as_str().unwrap().contains("origin_not_allowed")).unwrap();
    assert!(origin_row["reason"].as_str().unwrap().contains("https://evil.example"), "{origin_row}");
    assert!(calls(&events, "text.greet").is_empty(), "no refused request reached a tool: {events:#?}");

    // Metrics, by code.
    for (code, n) in [("origin_not_allowed", 1.0), ("host_not_allowed", 1.0), ("body_too_large", 2.0), ("too_many_sessions", 1.0)] {
        assert_eq!(metric(&m, &format!("wasmward_http_refusals_total{{code=\"{code}\"}}")), Some(n), "{code}:\n{m}");
    }
}

// ---------------------------------------------------------------------------
// Hints list only what the caller may call; the rate-limit text.

#[tokio::test]
async fn unknown_names_hint_only_at_what_the_caller_may_call() {
    let cfg = TestConfig::new(&edges("[gate]\ndenied_tools = [\"hostile.*\", \"text.add\"]\n"));
    let s = TestServer::start(&cfg);
    let tok = cfg.token("scoped", "text.*", &[]);
    let c = mcp_client(&s.url("/mcp"), &tok).await;
    let call = |name: &'static str| {
        let p = c.peer().clone();
        async move { p.call_tool(params(name, json!({}))).await.expect("a result, not a protocol error") }
    };
    // An unknown tool: the hint lists `text` only (hostile is denied, edges
    // is outside the token's scopes), with no stray separator.
    let r = call("nope.f").await;
    let t = text_of(&r);
    assert_eq!(r.is_error, Some(true));
    assert_eq!(t, "unknown_tool: unknown tool `nope`; tools: text", "{t}");
    // A tool the caller may call nothing of is unknown to it, not listed.
    for (name, tool) in [("edges.nope", "edges"), ("hostile.nope", "hostile")] {
        let t = text_of(&call(name).await);
        assert_eq!(t, format!("unknown_tool: unknown tool `{tool}`; tools: text"), "{name}");
    }
    // An unknown function of a visible tool lists its visible functions only.
    let t = text_of(&call("text.nope").await);
    assert!(t.starts_with("unknown_function: "), "{t}");
    assert!(t.contains("text.greet") && !t.contains("text.add"), "{t}");
    assert!(!t.contains("; ;") && !t.trim_end().ends_with(';'), "{t}");
    // Over HTTP the same, and the hint field has no separator.
    let r = client().post(s.url("/v1/tools/nope.f/call")).bearer_auth(&tok).json(&json!({})).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["hint"], "tools: text", "{v}");

    let events = cfg.audit_events();
    let unknown: Vec<&str> = events.iter().filter(|e| e["kind"] == "call" && e["function"] == "<unknown>").map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(unknown.iter().filter(|o| **o == "unknown_tool").count(), 4, "{events:#?}");
    assert_eq!(unknown.iter().filter(|o| **o == "unknown_function").count(), 1, "{events:#?}");
}

#[tokio::test]
async fn the_mcp_rate_limit_text_says_the_delay_once() {
    let cfg = TestConfig::new("[gate]\nrequests_per_minute = 1\nburst_size = 1\n");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("agent", "*", &[]);
    let c = mcp_client(&s.url("/mcp"), &tok).await;
    let first = c.peer().call_tool(params("text.greet", json!({"name": "A"}))).await.unwrap();
    assert_ne!(first.is_error, Some(true));
    let r = c.peer().call_tool(params("text.greet", json!({"name": "A"}))).await.unwrap();
    let t = text_of(&r);
    assert_eq!(r.is_error, Some(true));
    assert!(t.starts_with("rate_limited: "), "{t}");
    assert_eq!(t.matches("retry").count(), 1, "the delay is said once: {t}");
    let events = cfg.audit_events();
    assert!(events.iter().any(|e| e["kind"] == "gate" && e["stage"] == "rate_limit" && e["tool"] == "text.greet"), "{events:#?}");
}

// ---------------------------------------------------------------------------
// Session DELETE.

#[tokio::test]
async fn session_delete_answers_204_and_the_session_is_gone() {
    let cfg = TestConfig::new("");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("agent", "*", &[]);
    let session = raw_session(&s.base, &tok).await;
    let r = client().delete(s.url("/mcp")).bearer_auth(&tok).header("mcp-session-id", &session).header("mcp-protocol-version", "2025-06-18").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.text().await.unwrap().is_empty());
    let r = mcp_post(&s.base, &tok, Some(&session), &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "the session was closed");
}


#[test]
fn the_python_sdk_closes_a_session_without_a_warning() {
    let cfg = TestConfig::new("");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("py", "*", &[]);
    let out = Command::new(serve_common::python_with_mcp())
        .arg(repo_root().join("tests/mcp_client/edges_check.py"))
        .args(["--url", &s.url("/mcp"), "--token", &tok])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
    assert!(out.status.success() && stdout.contains("ALL OK"), "{stdout}\n--- stderr ---\n{stderr}");
    assert!(!stderr.contains("Session termination failed"), "{stderr}");
    let events = cfg.audit_events();
    assert_eq!(calls(&events, "text.greet").len(), 1, "{events:#?}");
}

#[tokio::test]
async fn sigterm_delivers_the_result_of_a_python_sdk_call_in_flight() {
    let cfg = TestConfig::new(&edges("[server]\nshutdown_grace_ms = 10000\n"));
    let mut s = TestServer::start(&cfg);
    let tok = cfg.token("py", "*", &[]);
    let py = Command::new(serve_common::python_with_mcp())
        .arg(repo_root().join("tests/mcp_client/edges_check.py"))
        .args(["--url", &s.url("/mcp"), "--token", &tok, "--slow-call", "2500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_in_flight(&s.base, 1).await;
    s.signal("TERM");
    let out = tokio::task::spawn_blocking(move || py.wait_with_output()).await.unwrap().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
    assert!(out.status.success() && stdout.contains("RESULT ok"), "the Python SDK got the result after SIGTERM:\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(!stderr.contains("SSE stream ended"), "{stderr}");
    let (code, _) = wait_exit(&mut s.child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{}", s.log());
    let events = cfg.audit_events();
    let rows = calls(&events, "edges.deny-then-sleep");
    assert_eq!(rows.len(), 1, "{events:#?}");
    assert_eq!(rows[0]["outcome"], "ok");
}

// ---------------------------------------------------------------------------
// The stdio parent and the rate limits.

async fn stdio_client(cfg: &TestConfig, token: Option<&str>) -> Mcp {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["serve", "--stdio", "--config"]).arg(&cfg.path);
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    let (transport, _) = TokioChildProcess::builder(cmd).stderr(Stdio::null()).spawn().unwrap();
    ().serve(transport).await.expect("MCP initialize over stdio")
}

/// Calls text.greet `n` times; returns how many succeeded and the first error text.
async fn greet_many(c: &Mcp, n: usize) -> (usize, Option<String>) {
    let (mut ok, mut first_err) = (0, None);
    for i in 0..n {
        let r = c.peer().call_tool(params("text.greet", json!({"name": format!("n{i}")}))).await.unwrap();
        if r.is_error == Some(true) {
            first_err.get_or_insert_with(|| text_of(&r));
        } else {
            ok += 1;
        }
    }
    (ok, first_err)
}

#[tokio::test]
async fn the_stdio_parent_is_outside_the_rate_limits_unless_configured_and_scopes_still_apply() {
    let limits = "requests_per_minute = 60\nburst_size = 5\ntool_requests_per_minute = 60\ntool_burst_size = 5\n";
    // Default: exempt, with and without --token.
    let cfg = TestConfig::new(&format!("[gate]\n{limits}"));
    let tok = cfg.token("parent", "text.*", &[]);
    for token in [None, Some(tok.as_str())] {
        let c = stdio_client(&cfg, token).await;
        let (ok, err) = greet_many(&c, 40).await;
        assert_eq!((ok, err), (40, None), "token {token:?}");
        if token.is_some() {
            // The token's scopes still apply.
            let r = c.peer().call_tool(params("hostile.loop-forever", json!({}))).await.unwrap();
            assert!(text_of(&r).starts_with("forbidden: "), "{}", text_of(&r));
        }
        c.cancel().await.unwrap();
    }
    let events = cfg.audit_events();
    assert_eq!(calls(&events, "text.greet").len(), 80);
    assert!(!events.iter().any(|e| e["kind"] == "gate" && e["stage"] == "rate_limit"), "{events:#?}");
    assert!(events.iter().any(|e| e["kind"] == "gate" && e["stage"] == "filter" && e["caller"].as_str().unwrap().starts_with("parent#")), "{events:#?}");

    // Opted back in: the limits apply to the parent.
    let cfg = TestConfig::new(&format!("[gate]\n{limits}rate_limit_stdio = true\n"));
    let c = stdio_client(&cfg, None).await;
    let (ok, err) = greet_many(&c, 12).await;
    assert!((5..=7).contains(&ok), "{ok} calls passed a burst of 5");
    assert!(err.as_deref().is_some_and(|e| e.starts_with("rate_limited: ")), "{err:?}");
    c.cancel().await.unwrap();
    let events = cfg.audit_events();
    assert!(events.iter().any(|e| e["kind"] == "gate" && e["stage"] == "rate_limit" && e["caller"] == "stdio"), "{events:#?}");
}

// ---------------------------------------------------------------------------
// The stdio fast path for tools/call (issue 11): the same answers as rmcp's
// path, cancellation as rmcp does it.

/// Over stdio `tools/call` skips rmcp's service loop; over streamable HTTP
/// it goes through it. The `result` of every kind of answer (success, the
/// tool's `err`, invalid arguments, unknown names, a request with a
/// progressToken) is the same JSON on both, and an answer line is one
/// compact JSON-RPC message with the id as sent.
#[tokio::test]
async fn stdio_tools_call_answers_are_those_of_the_rmcp_path() {
    let cfg = TestConfig::new(&edges(""));
    let (mut child, rx, base, _log) = spawn_stdio(&cfg);
    initialize(&mut child, &rx);
    let tok = cfg.token("agent", "*", &[]);
    let session = raw_session(&base, &tok).await;
    let cases: Vec<Value> = vec![
        json!({"name": "text.greet", "arguments": {"name": "A"}}),
        json!({"name": "text.greet", "arguments": {"name": "A"}, "_meta": {"progressToken": "p1"}}),
        json!({"name": "edges.return-err", "arguments": {"text": "boom"}}),
        json!({"name": "text.greet", "arguments": {"name": 5}}),
        json!({"name": "text.greet"}),
        json!({"name": "text.no-such-function", "arguments": {}}),
        json!({"name": "nosuch.tool", "arguments": {}}),
    ];
    for (i, params) in cases.iter().enumerate() {
        let id = 100 + i as u64;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        send(&mut child, &msg.to_string());
        let line = loop {
            let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no answer to {params}"));
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("method").is_none() && v["id"] == json!(id) {
                break line;
            }
        };
        let r = mcp_post(&base, &tok, Some(&session), &msg).send().await.unwrap();
        let text = r.text().await.unwrap();
        // The same bytes as rmcp writes into the SSE event.
        let over_http = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .find(|d| serde_json::from_str::<Value>(d).is_ok_and(|m| m["id"] == json!(id)))
            .unwrap_or_else(|| panic!("no HTTP answer to {params}: {text}"));
        assert_eq!(line, over_http, "{params}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `notifications/cancelled` of a call on the stdio fast path stops the
/// guest (the call is recorded `cancelled`) and its answer is dropped, as
/// rmcp does; the session goes on.
#[tokio::test]
async fn stdio_notifications_cancelled_stops_the_call_and_drops_its_answer() {
    let cfg = TestConfig::new(&edges(""));
    let (mut child, rx, base, log) = spawn_stdio(&cfg);
    initialize(&mut child, &rx);
    send(&mut child, &call_line(1, "edges.deny-then-sleep", json!({"path": OUTSIDE, "ms": 60000})));
    wait_in_flight(&base, 1).await;
    send(&mut child, r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"the test gave up"}}"#);
    // The guest stops: nothing is in flight any more.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h: Value = client().get(format!("{base}/healthz")).send().await.unwrap().json().await.unwrap();
        if h["in_flight"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the cancelled call still runs: {h}\n{}", log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    send(&mut child, &call_line(2, "text.greet", json!({"name": "B"})));
    let next = answer(&rx, &json!(2));
    assert_eq!(next["result"]["structuredContent"]["result"], "Hello, B!", "{next}");
    // Answers come in order of completion: the cancelled call ended before
    // call 2 began, so an answer to it would have come first.
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(line) = rx.try_recv() {
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_ne!(v["id"], json!(1), "the cancelled call was answered: {line}");
    }
    let events = cfg.audit_events();
    let outcomes: Vec<&str> = calls(&events, "edges.deny-then-sleep").iter().map(|c| c["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["cancelled"], "{events:#?}");
    let _ = child.kill();
    let _ = child.wait();
}
