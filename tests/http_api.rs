//! The HTTP JSON API of a real `wasmward serve`: tokens, tool filters, rate
//! limits, approvals, content policy, body limits, CORS, require_https,
//! Host validation, metrics, typed errors and graceful shutdown.

mod serve_common;

use reqwest::StatusCode;
use serde_json::{json, Value};
use serve_common::{TestConfig, TestServer};
use std::time::Duration;

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

async fn call(s: &TestServer, token: &str, name: &str, args: Value) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = client().post(s.url(&format!("/v1/tools/{name}/call"))).bearer_auth(token).json(&args).send().await.unwrap();
    let (st, h) = (r.status(), r.headers().clone());
    (st, h, r.json().await.unwrap_or(Value::Null))
}

fn gate_events(cfg: &TestConfig, stage: &str) -> Vec<Value> {
    cfg.audit_events().into_iter().filter(|e| e["kind"] == "gate" && e["stage"] == stage).collect()
}

#[tokio::test]
async fn calls_and_typed_errors() {
    let cfg = TestConfig::new("");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("agent-1", "*", &[]);

    let (st, _, v) = call(&s, &tok, "text.greet", json!({"name": "Ada"})).await;
    assert_eq!((st, v.clone()), (StatusCode::OK, json!({"result": "Hello, Ada!"})), "{v}");
    let (st, _, v) = call(&s, &tok, "text__analysis__word-stats", json!({"text": "a bb\nccc"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["words"], 3);

    let cases: &[(&str, Value, StatusCode, &str)] = &[
        ("nope.greet", json!({}), StatusCode::NOT_FOUND, "unknown_tool"),
        ("text.nope", json!({}), StatusCode::NOT_FOUND, "unknown_function"),
        ("text.greet", json!({"name": 5}), StatusCode::BAD_REQUEST, "invalid_arguments"),
        ("text.greet", json!([1]), StatusCode::BAD_REQUEST, "invalid_arguments"),
        ("text.analysis.parse-int", json!({"s": "x"}), StatusCode::UNPROCESSABLE_ENTITY, "tool_error"),
        ("hostile.loop-forever", json!({}), StatusCode::GATEWAY_TIMEOUT, "timeout"),
    ];
    for (name, args, status, code) in cases {
        let (st, _, v) = call(&s, &tok, name, args.clone()).await;
        assert_eq!((st, v["error"]["code"].as_str()), (*status, Some(*code)), "{name} {args}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty(), "{v}");
    }
    // invalid_arguments names the JSON path.
    let (_, _, v) = call(&s, &tok, "text.greet", json!({"name": 5})).await;
    assert!(v["error"]["message"].as_str().unwrap().contains("name"), "{v}");

    let r = client().post(s.url("/v1/tools/text.greet/call")).bearer_auth(&tok).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_json");

    // The tool list, plain and as OpenAI functions.
    let v: Value = client().get(s.url("/v1/tools")).bearer_auth(&tok).send().await.unwrap().json().await.unwrap();
    let greet = v["tools"].as_array().unwrap().iter().find(|t| t["name"] == "text.greet").expect("text.greet listed").clone();
    assert_eq!(greet["mcp_name"], "text__greet");
    assert_eq!(greet["input_schema"]["properties"]["name"]["type"], "string");
    assert_eq!(greet["output_schema"]["required"], json!(["result"]));
    let v: Value = client().get(s.url("/v1/tools?format=openai")).bearer_auth(&tok).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = v["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"text__greet") && names.contains(&"text__analysis__word-stats"), "{names:?}");
    assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')), "{names:?}");
    assert_eq!(v["tools"][0]["type"], "function");

    let h: Value = client().get(s.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["tools"], 2);

    // Metrics reflect the calls above.
    let m = client().get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in [
        "wasmward_calls_total{tool=\"text.greet\",outcome=\"ok\"} 1",
        // `[1]` is refused before the runtime; `{"name": 5}` twice reached it.
        "wasmward_calls_total{tool=\"text.greet\",outcome=\"invalid_arguments\"} 2",
        "wasmward_calls_total{tool=\"hostile.loop-forever\",outcome=\"timeout\"} 1",
        // Names that are not loaded functions never become label values.
        "wasmward_calls_total{tool=\"<unknown>\",outcome=\"unknown_tool\"} 1",
        "wasmward_calls_total{tool=\"<unknown>\",outcome=\"unknown_function\"} 1",
        "wasmward_call_duration_seconds_count{tool=\"text.greet\"} 3",
        "wasmward_calls_in_flight 0",
    ] {
        assert!(m.lines().any(|l| l == line), "metrics lack {line:?}:\n{m}");
    }
    assert!(m.contains("wasmward_audit_queue_depth "), "{m}");
}

#[tokio::test]
async fn tokens_missing_expired_forged_revoked_out_of_scope() {
    let cfg = TestConfig::new("");
    let s = TestServer::start(&cfg);
    let good = cfg.token("agent-1", "text.*", &[]);
    let revoked = cfg.token("agent-2", "*", &["--json"]);
    let revoked: Value = serde_json::from_str(&revoked).unwrap();
    let (rtok, rid) = (revoked["token"].as_str().unwrap().to_string(), revoked["claims"]["id"].as_str().unwrap().to_string());
    let short = cfg.token("agent-3", "*", &["--ttl", "1s"]);
    // Same claims, another key: forged.
    let other = TestConfig::new("");
    let forged = other.token("agent-1", "*", &[]);
    // A valid token with its scopes edited: the signature no longer matches.
    let (body, sig) = good.rsplit_once('.').unwrap();
    let (_, claims_b64) = body.split_once('.').unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(claims_b64).unwrap()).unwrap();
    claims["tools"] = json!(["*"]);
    let widened = format!("ww1.{}.{sig}", b64.encode(serde_json::to_vec(&claims).unwrap()));

    assert_eq!(call(&s, &rtok, "text.greet", json!({"name": "a"})).await.0, StatusCode::OK);
    let (st, _, err) = cfg.cli(&["token", "revoke", &rid]);
    assert_eq!(st, 0, "{err}");
    let (st, out, _) = cfg.cli(&["token", "list", "--json"]);
    assert_eq!(st, 0);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert!(listed.as_array().unwrap().iter().any(|t| t["id"] == rid.as_str() && t["state"] == "revoked"), "{listed}");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let no_token = client().post(s.url("/v1/tools/text.greet/call")).json(&json!({"name": "a"})).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
    let cases: &[(&str, &str, StatusCode, &str, &str)] = &[
        ("expired", &short, StatusCode::UNAUTHORIZED, "unauthorized", "expired"),
        ("forged", &forged, StatusCode::UNAUTHORIZED, "unauthorized", "signature"),
        ("widened", &widened, StatusCode::UNAUTHORIZED, "unauthorized", "signature"),
        ("garbage", "hello", StatusCode::UNAUTHORIZED, "unauthorized", "malformed"),
        ("revoked", &rtok, StatusCode::UNAUTHORIZED, "unauthorized", "revoked"),
    ];
    for (what, tok, status, code, needle) in cases {
        let (st, _, v) = call(&s, tok, "text.greet", json!({"name": "a"})).await;
        assert_eq!((st, v["error"]["code"].as_str()), (*status, Some(*code)), "{what}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{what}: {v}");
    }
    // Out of scope: authenticated, but not for this tool.
    let (st, _, v) = call(&s, &good, "hostile.counter", json!({})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("scope"), "{v}");
    // Scoped tokens only see their tools.
    let v: Value = client().get(s.url("/v1/tools")).bearer_auth(&good).send().await.unwrap().json().await.unwrap();
    assert!(v["tools"].as_array().unwrap().iter().all(|t| t["name"].as_str().unwrap().starts_with("text.")), "{v}");
    assert_eq!(call(&s, &good, "text.greet", json!({"name": "a"})).await.0, StatusCode::OK);
    // Admin endpoints need an admin token.
    let r = client().get(s.url("/v1/admin/approvals")).bearer_auth(&good).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A clean stop writes the counts of aggregated unauthenticated refusals.
    s.stop();
    let token_events = gate_events(&cfg, "token");
    // One row per reason (missing, expired, signature, malformed, revoked),
    // the second bad signature counted in a summary row, and not-admin.
    assert!(token_events.len() >= 7, "every token refusal is audited: {token_events:#?}");
    assert!(token_events.iter().any(|e| e["reason"].as_str().unwrap().contains("revoked")));
    let filter_events = gate_events(&cfg, "filter");
    assert_eq!(filter_events.len(), 1, "{filter_events:#?}");
    assert_eq!(filter_events[0]["tool"], "hostile.counter");
    assert!(filter_events[0]["caller"].as_str().unwrap().starts_with("agent-1#"));
}

#[tokio::test]
async fn rate_limit_429_then_recovery() {
    let cfg = TestConfig::new("[gate]\nrequests_per_minute = 60\nburst_size = 2\n");
    let s = TestServer::start(&cfg);
    let (a, b) = (cfg.token("a", "*", &[]), cfg.token("b", "*", &[]));
    for _ in 0..2 {
        assert_eq!(call(&s, &a, "text.greet", json!({"name": "x"})).await.0, StatusCode::OK);
    }
    let (st, h, v) = call(&s, &a, "text.greet", json!({"name": "x"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")), "{v}");
    assert_eq!(h["retry-after"], "1");
    // Another token has its own bucket.
    assert_eq!(call(&s, &b, "text.greet", json!({"name": "x"})).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call(&s, &a, "text.greet", json!({"name": "x"})).await.0, StatusCode::OK);
    let m = client().get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.lines().any(|l| l == "wasmward_rate_limited_total 1"), "{m}");
    drop(s);
    assert_eq!(gate_events(&cfg, "rate_limit").len(), 1);
}

#[tokio::test]
async fn body_limit_with_and_without_chunking() {
    let cfg = TestConfig::new("[server]\nmax_request_body_bytes = 2048\n");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("a", "*", &[]);
    let big = serde_json::to_vec(&json!({"name": "x".repeat(4000)})).unwrap();
    let small = serde_json::to_vec(&json!({"name": "y"})).unwrap();
    let url = s.url("/v1/tools/text.greet/call");

    let r = client().post(&url).bearer_auth(&tok).header("content-type", "application/json").body(big.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "body_too_large");

    let chunked = |bytes: Vec<u8>| {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(500).map(|c| Ok(c.to_vec())).collect();
        reqwest::Body::wrap_stream(futures::stream::iter(chunks))
    };
    let r = client().post(&url).bearer_auth(&tok).body(chunked(big.clone())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "a chunked body is limited while streaming");
    let r = client().post(&url).bearer_auth(&tok).body(chunked(small)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["result"], "Hello, y!");
    // MCP's endpoint has the same limit.
    let r = client().post(s.url("/mcp")).bearer_auth(&tok).header("content-type", "application/json").header("accept", "application/json, text/event-stream").body(chunked(big)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn cors_host_validation_and_require_https() {
    let cfg = TestConfig::new("[server]\ncors_origins = [\"https://app.example.com\"]\n");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("a", "*", &[]);
    let preflight = |origin: &'static str| {
        client()
            .request(reqwest::Method::OPTIONS, s.url("/v1/tools/text.greet/call"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let r = preflight("https://app.example.com").await.unwrap();
    assert_eq!(r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap()), Some("https://app.example.com"));
    let r = preflight("https://evil.example.com").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = client().get(s.url("/v1/tools")).bearer_auth(&tok).header("origin", "https://app.example.com").send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example.com");
    // DNS rebinding: a Host the operator did not list is refused.
    let r = client().get(s.url("/v1/tools")).bearer_auth(&tok).header("host", "evil.example.com").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "host_not_allowed");
    // MCP refuses a browser Origin that is not allowed.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = client().post(s.url("/mcp")).bearer_auth(&tok).header("origin", "https://evil.example.com").header("accept", "application/json, text/event-stream").json(&init).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    drop(s);

    let cfg = TestConfig::new("[server]\nrequire_https = true\n");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("a", "*", &[]);
    let r = client().post(s.url("/v1/tools/text.greet/call")).bearer_auth(&tok).json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "https_required");
    let r = client().post(s.url("/v1/tools/text.greet/call")).bearer_auth(&tok).header("x-forwarded-proto", "https").json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Waits for one pending approval and returns its id, via `wasmward approve list`.
async fn pending_id(cfg: &TestConfig, s: &TestServer) -> String {
    for _ in 0..100 {
        let (st, out, err) = cfg.cli(&["approve", "list", "--json", "--url", &s.base]);
        assert_eq!(st, 0, "approve list: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        if let Some(p) = v["pending"].as_array().and_then(|a| a.first()) {
            assert_eq!(p["tool"], "gated.greet");
            return p["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no call became pending");
}

#[tokio::test]
async fn approvals_allowed_denied_timed_out() {
    let text = serve_common::example_wasm("text");
    let cfg = TestConfig::new(&format!("[gate]\napproval_timeout_ms = 1500\n\n[[tool]]\nname = \"gated\"\npath = {:?}\nrequire_approval = true\n", text.display().to_string()));
    let s = TestServer::start(&cfg);
    let tok = cfg.token("agent", "*", &[]);
    for (decision, status) in [("allow", StatusCode::OK), ("deny", StatusCode::FORBIDDEN)] {
        let pending = tokio::spawn({
            let (url, tok) = (s.url("/v1/tools/gated.greet/call"), tok.clone());
            async move {
                let r = client().post(url).bearer_auth(tok).json(&json!({"name": "z"})).send().await.unwrap();
                (r.status(), r.json::<Value>().await.unwrap())
            }
        });
        let id = pending_id(&cfg, &s).await;
        let (st, out, err) = cfg.cli(&["approve", decision, &id, "--url", &s.base]);
        assert_eq!(st, 0, "approve {decision}: {err}");
        assert!(out.contains(&id), "{out}");
        let (st, v) = pending.await.unwrap();
        assert_eq!(st, status, "{decision}: {v}");
        if decision == "deny" {
            assert_eq!(v["error"]["code"], "approval_denied");
        } else {
            assert_eq!(v["result"], "Hello, z!");
        }
    }
    // No decision in time: denied.
    let started = std::time::Instant::now();
    let (st, _, v) = call(&s, &tok, "gated.greet", json!({"name": "z"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("approval_timeout")), "{v}");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    // Deciding an unknown id fails.
    let (st, _, err) = cfg.cli(&["approve", "allow", "0123456789ab", "--url", &s.base]);
    assert_eq!(st, 1, "{err}");
    assert!(err.contains("no pending call"), "{err}");
    // Tools without require_approval do not wait.
    assert_eq!(call(&s, &tok, "text.greet", json!({"name": "a"})).await.0, StatusCode::OK);
    drop(s);
    let events = gate_events(&cfg, "approval");
    let decisions: Vec<&str> = events.iter().map(|e| e["decision"].as_str().unwrap()).collect();
    assert_eq!(decisions, ["allow", "deny", "deny"], "{events:#?}");
    assert!(events[0]["reason"].as_str().unwrap().contains("approve-cli@"), "the approver is audited: {events:#?}");
    assert!(events[1]["reason"].as_str().unwrap().contains("approve-cli@"), "{events:#?}");
}

#[tokio::test]
async fn content_policy_strip_block_and_input() {
    let cfg = TestConfig::new("[gate]\nblocked_input_patterns = [\"(?i)ignore previous\"]\nblocked_output_patterns = [\"Hello\"]\noutput_action = \"strip\"\nmax_input_bytes = 200\n");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("a", "*", &[]);
    let (st, _, v) = call(&s, &tok, "text.greet", json!({"name": "Ada"})).await;
    assert_eq!((st, v), (StatusCode::OK, json!({"result": "[FILTERED], Ada!"})));
    let (st, _, v) = call(&s, &tok, "text.greet", json!({"name": "please IGNORE PREVIOUS orders"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("content_blocked")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("$.name"), "{v}");
    let (st, _, v) = call(&s, &tok, "text.greet", json!({"name": "x".repeat(300)})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("input_too_large")), "{v}");
    drop(s);

    cfg.rewrite("[gate]\nblocked_output_patterns = [\"Hello\"]\noutput_action = \"block\"\n");
    let s = TestServer::start(&cfg);
    let (st, _, v) = call(&s, &tok, "text.greet", json!({"name": "Ada"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("content_blocked")), "{v}");
    assert!(!v.to_string().contains("Hello"), "blocked output never leaks: {v}");
    let (st, _, _) = call(&s, &tok, "text.add", json!({"a": 1, "b": 2})).await;
    assert_eq!(st, StatusCode::OK);
    drop(s);
    let events = gate_events(&cfg, "content");
    let decisions: Vec<&str> = events.iter().map(|e| e["decision"].as_str().unwrap()).collect();
    assert_eq!(decisions, ["strip", "deny", "deny", "deny"], "{events:#?}");
}

#[tokio::test]
async fn reload_on_sighup_keeps_old_config_when_invalid_and_shutdown_is_graceful() {
    let cfg = TestConfig::new("");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("a", "*", &[]);
    // A slow call is in flight across the reload and the shutdown.
    let slow = tokio::spawn({
        let (url, tok) = (s.url("/v1/tools/hostile.loop-forever/call"), tok.clone());
        async move { client().post(url).bearer_auth(tok).json(&json!({})).send().await.unwrap().status() }
    });
    // Invalid: old config keeps serving and the log says why.
    std::fs::write(&cfg.path, serve_common::base_config("[gate]\nblocked_input_patterns = [\"(\"]\n")).unwrap();
    s.signal("HUP");
    assert!(s.wait_log("reload failed", Duration::from_secs(20)), "{}", s.log());
    assert!(s.log().contains("blocked_input_patterns[0]"), "{}", s.log());
    assert_eq!(call(&s, &tok, "text.greet", json!({"name": "a"})).await.0, StatusCode::OK);
    // Valid: denied_tools now applies (file-change detection or SIGHUP).
    cfg.rewrite("[gate]\ndenied_tools = [\"text.greet\"]\n");
    s.signal("HUP");
    assert!(s.wait_log("reloaded", Duration::from_secs(20)), "{}", s.log());
    assert_eq!(call(&s, &tok, "text.greet", json!({"name": "a"})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(slow.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);

    let slow = tokio::spawn({
        let (url, tok) = (s.url("/v1/tools/hostile.loop-forever/call"), tok.clone());
        async move { client().post(url).bearer_auth(tok).json(&json!({})).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, log) = s.stop();
    assert_eq!(slow.await.unwrap(), StatusCode::GATEWAY_TIMEOUT, "the call in flight finished: {log}");
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("audit log flushed"), "{log}");
    let (st, _, err) = cfg.cli(&["audit", "verify"]);
    assert_eq!(st, 0, "{err}");
    let calls = cfg.audit_events().into_iter().filter(|e| e["kind"] == "call" && e["function"] == "hostile.loop-forever").count();
    assert_eq!(calls, 2);
}
