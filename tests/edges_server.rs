//! The edges of the boundary, against a real `wasmward serve` on loopback
//! with real clients (reqwest, rmcp): every call that started is recorded
//! whatever the caller does (disconnect, MCP cancel, SIGTERM); one
//! canonical name per function before the gate; bounded unauthenticated
//! floods; sessions per token; guest code never starves the server; the
//! output policy on every path back to the agent. Each test asserts what
//! the agent saw and the audit rows.

mod serve_common;

use reqwest::StatusCode;
use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
use rmcp::service::{PeerRequestOptions, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use serve_common::{example_wasm, TestConfig, TestServer};
use std::time::{Duration, Instant};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// The `edges` tool's `[[tool]]` table, then `extra`.
fn edges(extra: &str) -> String {
    format!("[[tool]]\nname = \"edges\"\npath = {:?}\n[tool.limits]\ntimeout_ms = 30000\n\n{extra}\n", example_wasm("edges").display().to_string())
}

async fn call(s: &TestServer, token: &str, name: &str, args: Value) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = client().post(s.url(&format!("/v1/tools/{name}/call"))).bearer_auth(token).json(&args).send().await.unwrap();
    let (st, h) = (r.status(), r.headers().clone());
    (st, h, r.json().await.unwrap_or(Value::Null))
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// Polls the audit log (read while the server runs) until `done` holds.
async fn wait_audit(cfg: &TestConfig, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = cfg.audit_events();
        if done(&events) {
            return events;
        }
        assert!(Instant::now() < deadline, "audit never showed {what}:\n{events:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn call_row<'a>(events: &'a [Value], function: &str) -> Option<&'a Value> {
    events.iter().find(|e| e["kind"] == "call" && e["function"] == function)
}

fn denial_rows<'a>(events: &'a [Value], function: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == "denial" && e["function"] == function).collect()
}

type Mcp = RunningService<RoleClient, ()>;

async fn mcp_client(s: &TestServer, token: &str) -> Mcp {
    let config = StreamableHttpClientTransportConfig::with_uri(s.url("/mcp")).auth_header(token.to_string());
    ().serve(StreamableHttpClientTransport::from_config(config)).await.expect("MCP initialize over HTTP")
}

fn params(name: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_string()).with_arguments(args.as_object().cloned().unwrap_or_default())
}

fn mcp_text(r: &rmcp::model::CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.clone()).collect::<Vec<_>>().join("\n")
}

const OUTSIDE: &str = "/etc/wasmward-edges-test";

// ---------------------------------------------------------------------------
// A call that started is always recorded.

#[tokio::test]
async fn http_client_that_gives_up_still_gets_its_call_and_denial_recorded() {
    let cfg = TestConfig::new(&edges(""));
    let s = TestServer::start(&cfg);
    let tok = cfg.token("impatient", "*", &[]);

    let quick = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    let sent = Instant::now();
    let r = quick.post(s.url("/v1/tools/edges.deny-then-sleep/call")).bearer_auth(&tok).json(&json!({"path": OUTSIDE, "ms": 1000})).send().await;
    let err = r.expect_err("the client gives up after 100 ms, long before the call ends");
    assert!(err.is_timeout(), "{err}");
    println!("client gave up after {} ms", sent.elapsed().as_millis());

    let events = wait_audit(&cfg, "the call row", |e| call_row(e, "edges.deny-then-sleep").is_some()).await;
    let c = call_row(&events, "edges.deny-then-sleep").unwrap();
    // It ran to its end (the 1 s sleep), not cut when the client left.
    assert_eq!(c["outcome"], "ok", "{c}");
    assert_eq!(c["denials"], 1, "{c}");
    assert!(c["duration_us"].as_u64().unwrap() >= 900_000, "{c}");
    assert!(c["caller"].as_str().unwrap().starts_with("impatient#"), "{c}");
    let d = denial_rows(&events, "edges.deny-then-sleep");
    assert_eq!(d.len(), 1, "{events:#?}");
    assert!(d[0]["target"].as_str().unwrap().contains(OUTSIDE), "{}", d[0]);
    assert_eq!(d[0]["capability"], "fs", "{}", d[0]);
}

#[tokio::test]
async fn mcp_cancel_stops_the_guest_and_records_cancelled_with_its_denial() {
    let cfg = TestConfig::new(&edges(""));
    let s = TestServer::start(&cfg);
    let tok = cfg.token("canceller", "*", &[]);
    let mcp = mcp_client(&s, &tok).await;

    let req = ClientRequest::CallToolRequest(CallToolRequest::new(params("edges.deny-then-sleep", json!({"path": OUTSIDE, "ms": 20000}))));
    let handle = mcp.peer().send_cancellable_request(req, PeerRequestOptions::no_options()).await.expect("send tools/call");
    // Wait until the call is in the guest (its denial happens first).
    let m = wait_in_flight(&s, 1).await;
    assert!(m >= 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled_at = Instant::now();
    handle.cancel(Some("test cancels".into())).await.expect("send notifications/cancelled");

    let events = wait_audit(&cfg, "the cancelled call", |e| call_row(e, "edges.deny-then-sleep").is_some()).await;
    println!("call recorded {} ms after the cancel", cancelled_at.elapsed().as_millis());
    let c = call_row(&events, "edges.deny-then-sleep").unwrap();
    assert_eq!(c["outcome"], "cancelled", "{c}");
    assert_eq!(c["denials"], 1, "{c}");
    assert!(c["error"].as_str().unwrap().contains("caller cancelled"), "{c}");
    // Stopped, not run to the end of its 20 s sleep.
    assert!(c["duration_us"].as_u64().unwrap() < 10_000_000, "{c}");
    assert_eq!(denial_rows(&events, "edges.deny-then-sleep").len(), 1, "{events:#?}");
    // The server is fine and serves the next call on the same session.
    let r = mcp.call_tool(params("text.greet", json!({"name": "after"}))).await.unwrap();
    assert_eq!(r.structured_content, Some(json!({"result": "Hello, after!"})));
    let h: Value = client().get(s.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["in_flight"], 0, "{h}");
}

/// Waits until `/healthz` shows at least `n` calls in flight.
async fn wait_in_flight(s: &TestServer, n: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h: Value = client().get(s.url("/healthz")).send().await.unwrap().json().await.unwrap();
        let now = h["in_flight"].as_i64().unwrap_or(0);
        if now >= n {
            return now;
        }
        assert!(Instant::now() < deadline, "never {n} calls in flight: {h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sigterm_lets_calls_finish_within_the_grace_then_cancels_and_records_the_rest() {
    let cfg = TestConfig::new(&edges("[server]\nshutdown_grace_ms = 1500\n"));
    let s = TestServer::start(&cfg);
    let tok = cfg.token("agent", "*", &[]);
    let (url, url2) = (s.url("/v1/tools/edges.deny-then-sleep/call"), s.url("/v1/tools/edges.edges.deny-then-sleep/call"));
    let (t1, t2) = (tok.clone(), tok.clone());
    // One call ends inside the grace period, one would sleep for 20 s.
    let short = tokio::spawn(async move { client().post(url).bearer_auth(t1).json(&json!({"path": OUTSIDE, "ms": 600})).send().await });
    let long = tokio::spawn(async move { client().post(url2).bearer_auth(t2).json(&json!({"path": OUTSIDE, "ms": 20000})).send().await });
    wait_in_flight(&s, 2).await;
    let stopped = Instant::now();
    s.signal("TERM");

    let short = short.await.unwrap().expect("the short call is answered");
    assert_eq!(short.status(), StatusCode::OK, "a call that ends within shutdown_grace_ms is answered");
    let long = long.await.unwrap().expect("the long call is answered");
    let long_status = long.status();
    let body: Value = long.json().await.unwrap();
    assert_eq!((long_status, body["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("cancelled")), "{body}");
    let (code, log) = s.stop();
    println!("server exited {} ms after SIGTERM", stopped.elapsed().as_millis());
    assert_eq!(code, Some(0), "{log}");
    assert!(stopped.elapsed() < Duration::from_secs(15), "{log}");

    let events = cfg.audit_events();
    let calls: Vec<&Value> = of_kind(&events, "call").into_iter().filter(|c| c["function"] == "edges.deny-then-sleep").collect();
    let outcomes: Vec<&str> = calls.iter().map(|c| c["outcome"].as_str().unwrap()).collect();
    assert_eq!(calls.len(), 2, "{events:#?}");
    assert!(outcomes.contains(&"ok") && outcomes.contains(&"cancelled"), "{outcomes:?}");
    for c in &calls {
        assert_eq!(c["denials"], 1, "{c}");
    }
    let cancelled = calls.iter().find(|c| c["outcome"] == "cancelled").unwrap();
    assert!(cancelled["error"].as_str().unwrap().contains("shut down"), "{cancelled}");
    assert_eq!(denial_rows(&events, "edges.deny-then-sleep").len(), 2, "{events:#?}");
    let (st, out, err) = cfg.cli(&["audit", "verify"]);
    assert_eq!(st, 0, "the chain verifies after shutdown: {out}{err}");
}

// ---------------------------------------------------------------------------
// One canonical name per function, before the gate.

#[tokio::test]
async fn every_alias_of_a_denied_function_is_refused_and_audited_under_its_canonical_name() {
    let files = format!("[[tool]]\nname = \"files\"\npath = {:?}\n", example_wasm("files").display().to_string());
    let gate = "[gate]\ndenied_tools = [\"files.fs.write\"]\ntool_requests_per_minute = 1\ntool_burst_size = 2\n";
    let cfg = TestConfig::new(&format!("{files}\n{}\n{gate}", edges("")));
    let s = TestServer::start(&cfg);
    let tok = cfg.token("aliaser", "*", &[]);
    let args = json!({"path": "/tmp/x", "contents": "pwned"});

    let http_aliases = ["files.fs.write", "files.files.fs.write", "files.write", "files__fs__write"];
    for name in http_aliases {
        let (st, _, v) = call(&s, &tok, name, args.clone()).await;
        assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{name}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("`files.fs.write`"), "{name}: {v}");
    }
    let mcp = mcp_client(&s, &tok).await;
    let mcp_aliases = ["files.write", "files.files.fs.write", "files__fs__write"];
    for name in mcp_aliases {
        let r = mcp.call_tool(params(name, args.clone())).await.unwrap();
        assert_eq!(r.is_error, Some(true), "{name}");
        assert!(mcp_text(&r).starts_with("forbidden: `files.fs.write`"), "{name}: {}", mcp_text(&r));
    }

    // The per-function bucket (burst 2) is shared by every spelling.
    let greet = json!({"name": "x"});
    let spellings = [("text.greet", 200), ("text.text.greet", 200), ("text__greet", 429), ("text.greet", 429), ("text.text.greet", 429)];
    for (name, want) in spellings {
        let (st, _, v) = call(&s, &tok, name, greet.clone()).await;
        assert_eq!(st.as_u16(), want, "{name}: {v}");
        if want == 429 {
            assert!(v["error"]["message"].as_str().unwrap().contains("`text.greet`"), "{v}");
        }
    }

    // An alias that fits two functions is no function; the full names work.
    let (st, _, v) = call(&s, &tok, "edges.dup", json!({})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_function")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("more than one"), "{v}");
    for (name, want) in [("edges.left.dup", "left"), ("edges.edges.right.dup", "right"), ("edges__right__dup", "right")] {
        let (st, _, v) = call(&s, &tok, name, json!({})).await;
        assert_eq!((st, v["result"].as_str()), (StatusCode::OK, Some(want)), "{name}: {v}");
    }

    // Unknown names: refused, recorded under fixed labels, echoed capped.
    let long_fn = format!("text.{}", "x".repeat(60_000));
    let long_tool = format!("nope{}.greet", "y".repeat(60_000));
    let (st, _, v) = call(&s, &tok, &long_fn, json!({})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_function")), "{}", v.to_string().len());
    assert!(v.to_string().len() < 2000, "the error echoes a capped name: {} bytes", v.to_string().len());
    let (st, _, v) = call(&s, &tok, &long_tool, json!({})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_tool")), "{}", v.to_string().len());
    assert!(v.to_string().len() < 2000, "{} bytes", v.to_string().len());

    let m = client().get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.lines().any(|l| l == "wasmward_calls_total{tool=\"text.greet\",outcome=\"ok\"} 2"), "{m}");
    assert!(m.lines().any(|l| l == "wasmward_gate_refusals_total{tool=\"files.fs.write\",stage=\"filter\"} 7"), "{m}");
    assert!(!m.contains("text.text.greet") && !m.contains("files.write\"") && !m.contains("xxxxxxxx"), "{m}");
    drop(mcp);
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");

    let events = cfg.audit_events();
    let gate_rows = of_kind(&events, "gate");
    let filter: Vec<_> = gate_rows.iter().filter(|e| e["stage"] == "filter").collect();
    assert_eq!(filter.len(), http_aliases.len() + mcp_aliases.len(), "{filter:#?}");
    assert!(filter.iter().all(|e| e["tool"] == "files.fs.write"), "{filter:#?}");
    let rate: Vec<_> = gate_rows.iter().filter(|e| e["stage"] == "rate_limit").collect();
    assert_eq!(rate.len(), 3, "{rate:#?}");
    assert!(rate.iter().all(|e| e["tool"] == "text.greet"), "{rate:#?}");
    let calls = of_kind(&events, "call");
    assert!(!calls.iter().any(|c| c["tool"] == "files"), "a refused call never reaches the runtime: {calls:#?}");
    let text_calls: Vec<_> = calls.iter().filter(|c| c["tool"] == "text").map(|c| c["function"].as_str().unwrap()).collect();
    assert_eq!(text_calls, ["text.greet", "text.greet", "<unknown>"], "aliases are recorded under the canonical name");
    let unknown: Vec<_> = calls.iter().filter(|c| c["function"] == "<unknown>").collect();
    assert_eq!(unknown.len(), 3, "edges.dup and the two long names: {unknown:#?}");
    for c in &unknown {
        assert!(c["tool"] == "text" || c["tool"] == "edges" || c["tool"] == "<unknown>", "{c}");
        assert!(c.to_string().len() < 2000, "a recorded row is capped: {} bytes", c.to_string().len());
    }
    assert!(events.iter().all(|e| e.to_string().len() < 4000), "no row carries the 60 kB names");
}

// ---------------------------------------------------------------------------
// Unauthenticated floods.

#[tokio::test]
async fn unauthenticated_flood_is_rate_limited_and_audited_in_aggregate() {
    let cfg = TestConfig::new("[server]\nunauthenticated_requests_per_minute = 60\nunauthenticated_burst = 20\n");
    let s = TestServer::start(&cfg);
    let good = cfg.token("legit", "*", &[]);
    let path = format!("/v1/tools/{}/call", "p".repeat(60_000));
    let c = client();
    let (mut n401, mut n429) = (0, 0);
    let mut retry_after = None;
    for _ in 0..300 {
        let r = c.post(s.url(&path)).bearer_auth("ww1.forged.token").json(&json!({})).send().await.unwrap();
        match r.status() {
            StatusCode::UNAUTHORIZED => n401 += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                n429 += 1;
                retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            }
            other => panic!("unexpected {other}"),
        }
    }
    println!("300 bad-token requests: {n401} x 401, {n429} x 429");
    assert!((20..=40).contains(&n401), "the burst (20, plus 1/s refill) gets 401: {n401}");
    assert_eq!(n401 + n429, 300);
    assert!(retry_after.is_some(), "429 carries Retry-After");
    // A valid token from the same source is not locked out.
    let (st, _, v) = call(&s, &good, "text.greet", json!({"name": "ok"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");

    let events = cfg.audit_events();
    let token_rows: Vec<_> = of_kind(&events, "gate").into_iter().filter(|e| e["stage"] == "token").collect();
    println!("token rows: {}", token_rows.len());
    // First 401 row, first 429 row, and one count row for each.
    assert_eq!(token_rows.len(), 4, "{token_rows:#?}");
    let mut total = 0u64;
    for r in &token_rows {
        let reason = r["reason"].as_str().unwrap();
        assert!(r.to_string().len() < 2000, "a row is capped: {}", r.to_string().len());
        assert!(r["caller"].as_str().unwrap().starts_with("anonymous@127.0.0.1"), "{r}");
        total += match reason.strip_prefix("count=") {
            Some(rest) => rest.split(':').next().unwrap().parse::<u64>().unwrap(),
            None => 1,
        };
    }
    assert_eq!(total, 300, "every refusal is counted: {token_rows:#?}");
    let size: u64 = ["audit.db", "audit.db-wal"].iter().filter_map(|f| std::fs::metadata(cfg.dir.path().join(f)).ok()).map(|m| m.len()).sum();
    println!("audit db + wal: {size} bytes");
    assert!(size < 2 << 20, "the flood did not grow the audit log: {size} bytes");
}

// ---------------------------------------------------------------------------
// Sessions per token, idle timeout.

async fn open_session(s: &TestServer, token: &str) -> (StatusCode, Option<String>, String) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = client()
        .post(s.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status();
    let id = r.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_string());
    let text = if st.is_success() { String::new() } else { r.text().await.unwrap_or_default() };
    (st, id, text)
}

#[tokio::test]
async fn one_token_cannot_take_every_session_and_idle_sessions_close() {
    let cfg = TestConfig::new("[server]\nmax_sessions = 10\nmax_sessions_per_token = 2\nsession_idle_timeout_ms = 1500\n");
    let s = TestServer::start(&cfg);
    let (a, b) = (cfg.token("a", "*", &[]), cfg.token("b", "*", &[]));
    let mut a_ids = Vec::new();
    for _ in 0..2 {
        let (st, id, text) = open_session(&s, &a).await;
        assert_eq!(st, StatusCode::OK, "{text}");
        a_ids.push(id.expect("session id"));
    }
    let (st, id, text) = open_session(&s, &a).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(id.is_none());
    assert!(text.contains("too_many_sessions") && text.contains("max_sessions_per_token = 2"), "{text}");
    // Another token still gets a session.
    let (st, id, text) = open_session(&s, &b).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    assert!(id.is_some());
    // Closing one frees a slot.
    let r = client().delete(s.url("/mcp")).bearer_auth(&a).header("mcp-session-id", &a_ids[0]).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (st, _, text) = open_session(&s, &a).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    assert_eq!(open_session(&s, &a).await.0, StatusCode::TOO_MANY_REQUESTS);
    // session_idle_timeout_ms: idle sessions close and free their slots.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    for _ in 0..2 {
        let (st, _, text) = open_session(&s, &a).await;
        assert_eq!(st, StatusCode::OK, "idle sessions were closed: {text}");
    }
    let r = client()
        .post(s.url("/mcp"))
        .bearer_auth(&a)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &a_ids[1])
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "an idled-out session is gone");
}

// ---------------------------------------------------------------------------
// Guest code never starves the server.

#[tokio::test]
async fn spinning_guests_do_not_starve_the_server_and_time_out_on_time() {
    // `max_concurrent_calls` is 5 and 4 guests spin: calls beyond the cap
    // wait for a permit by design (backpressure), so the trivial call gets
    // the fifth permit; what is measured is that the spinning guests do not
    // hold the server's threads. hostile's timeout is 1 s.
    const SPINNERS: usize = 4;
    let cfg = TestConfig::new_with("max_concurrent_calls = 5", "");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("spin", "*", &[]);
    let mcp = mcp_client(&s, &tok).await;
    mcp.list_all_tools().await.unwrap();

    let mut spinners = Vec::new();
    for _ in 0..SPINNERS {
        let (url, tok) = (s.url("/v1/tools/hostile.loop-forever/call"), tok.clone());
        spinners.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client().post(url).bearer_auth(tok).json(&json!({})).send().await.unwrap();
            let st = r.status();
            let v: Value = r.json().await.unwrap();
            (st, v, t.elapsed())
        }));
    }
    wait_in_flight(&s, SPINNERS as i64).await;
    tokio::time::sleep(Duration::from_millis(150)).await;

    let t = Instant::now();
    let h = client().get(s.url("/healthz")).send().await.unwrap();
    let healthz = t.elapsed();
    assert_eq!(h.status(), StatusCode::OK);
    let t = Instant::now();
    let tools = mcp.list_all_tools().await.unwrap();
    let list = t.elapsed();
    assert!(tools.iter().any(|t| t.name == "text__greet"));
    let t = Instant::now();
    let (st, _, v) = call(&s, &tok, "text.greet", json!({"name": "x"})).await;
    let greet = t.elapsed();
    assert_eq!(st, StatusCode::OK, "{v}");
    let h: Value = client().get(s.url("/healthz")).send().await.unwrap().json().await.unwrap();
    println!("with {SPINNERS} spinning guests in flight: /healthz {healthz:?}, tools/list {list:?}, text.greet {greet:?} (in flight then: {})", h["in_flight"]);
    // Generous bounds for a noisy 2-core machine; unstarved these take ms.
    for (what, d) in [("/healthz", healthz), ("tools/list", list), ("text.greet", greet)] {
        assert!(d < Duration::from_secs(1), "{what} took {d:?} with guests spinning");
    }
    for j in spinners {
        let (st, v, took) = j.await.unwrap();
        println!("spinning call ended after {took:?} (timeout 1 s): {}", v["error"]["code"]);
        assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::GATEWAY_TIMEOUT, Some("timeout")), "{v}");
        // 1.5x the timeout, generous for a loaded machine (the target is 1.1x).
        assert!(took < Duration::from_millis(1500), "a 1 s timeout fired after {took:?}");
    }
    drop(mcp);
    drop(s);
    let events = cfg.audit_events();
    let timeouts = of_kind(&events, "call").into_iter().filter(|c| c["function"] == "hostile.loop-forever" && c["outcome"] == "timeout").count();
    assert_eq!(timeouts, SPINNERS);
}

// ---------------------------------------------------------------------------
// The output policy on every path back to the agent.

#[tokio::test]
async fn errors_traps_and_big_errors_go_through_the_output_policy() {
    let gate = "[gate]\nblocked_output_patterns = [\"SECRET-[0-9]+\"]\nmax_output_bytes = 65536\n";
    let cfg = TestConfig::new(&format!("{}\n{gate}", edges("")));
    let s = TestServer::start(&cfg);
    let tok = cfg.token("reader", "*", &[]);

    // A tool's `err` value with a secret: stripped.
    let (st, _, v) = call(&s, &tok, "edges.return-err", json!({"text": "key=SECRET-4242 end"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("tool_error")), "{v}");
    assert!(!v.to_string().contains("SECRET-4242"), "{v}");
    assert_eq!(v["error"]["value"], "key=[FILTERED] end", "{v}");
    // A panic carrying a secret: the trap text is stripped.
    let (st, _, v) = call(&s, &tok, "hostile.panic-now", json!({"msg": "leak SECRET-4242"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("trap")), "{v}");
    assert!(!v.to_string().contains("SECRET-4242"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("[FILTERED]"), "{v}");
    // A 10 MB `err`: over the tool's max_output_bytes (1 MiB), refused.
    let (st, _, v) = call(&s, &tok, "edges.err-of-size", json!({"bytes": 10_000_000})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("output_limit")), "{}", v.to_string().len());
    assert!(v.to_string().len() < 2000, "{} bytes", v.to_string().len());
    // A 100 kB `err`: under the tool's limit, over [gate] max_output_bytes.
    let (st, _, v) = call(&s, &tok, "edges.err-of-size", json!({"bytes": 100_000})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("output_too_large")), "{}", v.to_string().len());
    assert!(v["error"]["message"].as_str().unwrap().contains("error is"), "{v}");
    // The same over MCP.
    let mcp = mcp_client(&s, &tok).await;
    let r = mcp.call_tool(params("edges.return-err", json!({"text": "SECRET-1 and SECRET-2"}))).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    let all = format!("{} {:?} {:?}", mcp_text(&r), r.structured_content, r.meta);
    assert!(!all.contains("SECRET-1") && !all.contains("SECRET-2") && all.contains("[FILTERED]"), "{all}");
    drop(mcp);
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");

    let events = cfg.audit_events();
    let content: Vec<_> = of_kind(&events, "gate").into_iter().filter(|e| e["stage"] == "content").collect();
    let rows = |tool: &str, decision: &str| content.iter().filter(|e| e["tool"] == tool && e["decision"] == decision).count();
    assert_eq!(rows("edges.return-err", "strip"), 2, "{content:#?}");
    assert_eq!(rows("hostile.panic-now", "strip"), 1, "{content:#?}");
    assert_eq!(rows("edges.err-of-size", "deny"), 2, "{content:#?}");

    // With output_action = "block" the error is refused instead.
    let gate = "[gate]\nblocked_output_patterns = [\"SECRET-[0-9]+\"]\noutput_action = \"block\"\n";
    let cfg = TestConfig::new(&format!("{}\n{gate}", edges("")));
    let s = TestServer::start(&cfg);
    let tok = cfg.token("reader", "*", &[]);
    let (st, _, v) = call(&s, &tok, "edges.return-err", json!({"text": "SECRET-4242"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("content_blocked")), "{v}");
    assert!(!v.to_string().contains("SECRET-4242"), "{v}");
    let (st, _, v) = call(&s, &tok, "hostile.panic-now", json!({"msg": "SECRET-4242"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("content_blocked")), "{v}");
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    let events = cfg.audit_events();
    let denied = of_kind(&events, "gate").into_iter().filter(|e| e["stage"] == "content" && e["decision"] == "deny").count();
    assert_eq!(denied, 2, "{events:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_call_s_error_goes_through_the_output_policy_too() {
    // `denied` carries the tool's own `err` as its cause: the same limits
    // and patterns apply to it as to a plain `tool_error`.
    let tool = format!("[[tool]]\nname = \"flood\"\npath = {:?}\n[tool.limits]\nmax_output_bytes = 4096\n", example_wasm("flood").display().to_string());
    let gate = "[gate]\nblocked_output_patterns = [\"SECRET-[0-9]+\"]\n";
    let cfg = TestConfig::new(&format!("{tool}\n{gate}"));
    let s = TestServer::start(&cfg);
    let tok = cfg.token("reader", "*", &[]);

    let (st, _, v) = call(&s, &tok, "flood.big-error-after-write", json!({"path": "/etc/x", "prefix": "SECRET-99 ", "bytes": 100})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("denied")), "{v}");
    assert!(!v.to_string().contains("SECRET-99"), "{v}");
    assert_eq!(v["error"]["cause"]["code"], "tool_error", "{v}");
    assert!(v["error"]["denials"][0]["target"].as_str().unwrap().contains("/etc/x"), "{v}");

    let (st, _, v) = call(&s, &tok, "flood.big-error-after-write", json!({"path": "/etc/x", "prefix": "", "bytes": 2_000_000})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("denied")), "{v}");
    assert_eq!(v["error"]["cause"]["code"], "output_limit", "{v}");
    assert!(v.to_string().len() < 4000, "{} bytes", v.to_string().len());
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");

    let events = cfg.audit_events();
    let content: Vec<_> = of_kind(&events, "gate").into_iter().filter(|e| e["stage"] == "content").collect();
    let rows = |decision: &str| content.iter().filter(|e| e["decision"] == decision).count();
    assert_eq!((rows("strip"), rows("deny")), (1, 1), "{content:#?}");
    let calls = of_kind(&events, "call");
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert!(calls.iter().all(|c| c["outcome"] == "denied" && c["denials"] == 1), "{calls:#?}");
    // The call row keeps at most 4 kB of the error and its size.
    assert!(calls[1]["error"].as_str().unwrap().len() <= 4200, "{}", calls[1]["error"].as_str().unwrap().len());
}
