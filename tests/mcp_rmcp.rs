//! MCP with the Rust SDK's client (rmcp) against a real `wasmward serve`:
//! stdio (with a guest that prints fake JSON-RPC to stdout) and
//! streamable HTTP with a bearer token; list_changed after a reload.

mod serve_common;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};
use serve_common::{TestConfig, TestServer, BIN};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Default)]
struct Client {
    list_changed: Arc<AtomicUsize>,
}

impl ClientHandler for Client {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.fetch_add(1, Ordering::SeqCst);
    }
}

async fn call(c: &RunningService<RoleClient, Client>, name: &str, args: Value) -> CallToolResult {
    let params = CallToolRequestParams::new(name.to_string()).with_arguments(args.as_object().cloned().unwrap_or_default());
    tokio::time::timeout(Duration::from_secs(60), c.call_tool(params)).await.expect("call timed out").expect("call_tool is never a protocol error")
}

fn text(r: &CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.clone()).collect::<Vec<_>>().join("\n")
}

async fn stdio_client(cfg: &TestConfig) -> RunningService<RoleClient, Client> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["serve", "--stdio", "--config"]).arg(&cfg.path);
    let (transport, _) = TokioChildProcess::builder(cmd).stderr(std::process::Stdio::inherit()).spawn().unwrap();
    Client::default().serve(transport).await.expect("MCP initialize over stdio")
}

/// `wasmward inspect --json` schemas for `file`, by function name.
fn inspect(file: &std::path::Path) -> Vec<Value> {
    let out = std::process::Command::new(BIN).args(["inspect", "--json"]).arg(file).output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["functions"].as_array().unwrap().clone()
}

#[tokio::test]
async fn stdio_session_lists_calls_errors_and_survives_fake_jsonrpc() {
    let cfg = TestConfig::new("[gate]\ndenied_tools = [\"hostile.loop-forever\"]\n");
    let client = stdio_client(&cfg).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("wasmward"));
    assert!(info.capabilities.tools.as_ref().and_then(|t| t.list_changed).unwrap_or(false));

    let tools = client.list_all_tools().await.unwrap();
    for f in inspect(&serve_common::example_wasm("text")) {
        // Listed under the model-API form of the canonical name.
        let name = f["name"].as_str().unwrap().replace('.', "__");
        let t = tools.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} not listed"));
        assert_eq!(Value::Object((*t.input_schema).clone()), f["input_schema"], "{name}");
        assert_eq!(t.output_schema.as_ref().map(|s| Value::Object((**s).clone())), Some(f["output_schema"].clone()), "{name}");
    }
    assert!(!tools.iter().any(|t| t.name == "hostile__loop-forever"), "denied tools are not listed");

    let r = call(&client, "text.greet", json!({"name": "Ada"})).await;
    assert_eq!(r.is_error, Some(false));
    assert_eq!(r.structured_content, Some(json!({"result": "Hello, Ada!"})));
    assert_eq!(text(&r), "Hello, Ada!");
    let r = call(&client, "text.analysis.word-stats", json!({"text": "one two"})).await;
    assert_eq!(r.structured_content.unwrap()["result"]["words"], 2);

    // Typed errors are isError results with code and message.
    let cases = [
        ("text.greet", json!({"name": 5}), "invalid_arguments: "),
        ("text.greet", json!({}), "invalid_arguments: "),
        ("nope.x", json!({}), "unknown_tool: "),
        ("text.analysis.parse-int", json!({"s": "x"}), "tool_error: "),
        ("hostile.loop-forever", json!({}), "forbidden: "),
        // A policy denial inside the sandbox: no process capability granted.
        ("hostile.caps.spawn", json!({"program": "ls", "args": []}), "denied: "),
    ];
    for (name, args, prefix) in cases {
        let r = call(&client, name, args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{name} {args}");
        assert!(text(&r).starts_with(prefix), "{name} {args}: {}", text(&r));
        assert_eq!(r.structured_content, None, "{name}: an error result carries no structuredContent");
        assert_eq!(r.meta.as_ref().unwrap().0["wasmward/error"]["code"], prefix.trim_end_matches(": "));
    }

    // The guest writes a JSON-RPC response to its stdout; it never reaches ours.
    for _ in 0..3 {
        let r = call(&client, "hostile.fake-jsonrpc", json!({})).await;
        assert_eq!(r.structured_content, Some(json!({"result": "ok"})));
        let r = call(&client, "hostile.print-flood", json!({"megabytes": 2})).await;
        assert_eq!(r.is_error, Some(false), "{}", text(&r));
        let r = call(&client, "text.greet", json!({"name": "again"})).await;
        assert_eq!(text(&r), "Hello, again!");
    }
    client.cancel().await.unwrap();
    let denials = cfg.audit_events().into_iter().filter(|e| e["kind"] == "denial" && e["function"] == "hostile.caps.spawn" && e["rule"] == "allow_subprocess is false").count();
    assert!(denials >= 1, "the sandbox denial is audited");
}

#[tokio::test]
async fn stdio_list_changed_after_reload() {
    let cfg = TestConfig::new("");
    let client = stdio_client(&cfg).await;
    let before = client.list_all_tools().await.unwrap();
    assert!(!before.iter().any(|t| t.name.starts_with("text2__")));
    cfg.rewrite(&format!("[[tool]]\nname = \"text2\"\npath = {:?}\n", serve_common::example_wasm("text").display().to_string()));
    let handler = client.service().clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while handler.list_changed.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "no notifications/tools/list_changed after the config changed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = client.list_all_tools().await.unwrap();
    assert!(after.iter().any(|t| t.name == "text2__greet"), "{:?}", after.iter().map(|t| &t.name).collect::<Vec<_>>());
    let r = call(&client, "text2.greet", json!({"name": "new"})).await;
    assert_eq!(text(&r), "Hello, new!");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn streamable_http_with_token() {
    let cfg = TestConfig::new("");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("rmcp-agent", "text.*", &[]);
    let config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(s.url("/mcp")).auth_header(tok);
    let client = Client::default().serve(StreamableHttpClientTransport::from_config(config)).await.expect("MCP initialize over HTTP");
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().all(|t| t.name.starts_with("text__")), "scoped token lists only its tools");
    assert!(tools.iter().any(|t| t.name == "text__greet"));
    let r = call(&client, "text.greet", json!({"name": "http"})).await;
    assert_eq!(r.structured_content, Some(json!({"result": "Hello, http!"})));
    let r = call(&client, "hostile.counter", json!({})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).starts_with("forbidden: "), "{}", text(&r));
    client.cancel().await.unwrap();

    // Without a token the MCP endpoint refuses to start a session.
    let plain = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(s.url("/mcp"));
    assert!(Client::default().serve(StreamableHttpClientTransport::from_config(plain)).await.is_err());
}
