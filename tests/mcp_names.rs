//! Names the model APIs accept, against a real `wasmward serve`: MCP
//! `tools/list` (rmcp client) and `/v1/tools` in every format list names
//! matching `^[a-zA-Z0-9_-]{1,64}$`; every spelling of a function reaches
//! the same function and the audit row keeps its canonical name; names past
//! 64 characters get a short form that is the same after a restart; the
//! `[server] tool_name_separator` setting works and bad values are refused
//! by `wasmward check`; `?format=openai` schemas are strict-mode schemas
//! whose values the call path takes.

mod serve_common;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use serde_json::{json, Value};
use serve_common::{example_wasm, TestConfig, TestServer, BIN};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::time::Duration;

/// A tool name of 59 characters: every function name built on it is over 64.
const LONG: &str = "a-tool-name-that-is-long-enough-to-need-the-short-form-0001";

fn long_tool() -> String {
    format!("[[tool]]\nname = {LONG:?}\npath = {:?}\n", example_wasm("text").display().to_string())
}

fn model_api_valid(n: &str) -> bool {
    (1..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The listed name of `canonical` as the README documents it: the short
/// form past 64 characters.
fn short_form(canonical: &str, sep: &str) -> String {
    let long = canonical.replace('.', sep);
    if long.len() <= 64 {
        return long;
    }
    format!("{}_{}", &long[..53], &hex::encode(Sha256::digest(canonical.as_bytes()))[..10])
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

async fn get(s: &TestServer, tok: &str, path: &str) -> (reqwest::StatusCode, Value) {
    let r = client().get(s.url(path)).bearer_auth(tok).send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn http_client(s: &TestServer, tok: &str) -> RunningService<RoleClient, ()> {
    let config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(s.url("/mcp")).auth_header(tok.to_string());
    ().serve(StreamableHttpClientTransport::from_config(config)).await.expect("MCP initialize over HTTP")
}

async fn stdio_client(cfg: &TestConfig) -> RunningService<RoleClient, ()> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["serve", "--stdio", "--config"]).arg(&cfg.path);
    let (transport, _) = TokioChildProcess::builder(cmd).stderr(std::process::Stdio::inherit()).spawn().unwrap();
    ().serve(transport).await.expect("MCP initialize over stdio")
}

async fn call(c: &RunningService<RoleClient, ()>, name: &str, args: Value) -> CallToolResult {
    let params = CallToolRequestParams::new(name.to_string()).with_arguments(args.as_object().cloned().unwrap_or_default());
    tokio::time::timeout(Duration::from_secs(60), c.call_tool(params)).await.expect("call timed out").expect("call_tool is never a protocol error")
}

fn text(r: &CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.clone()).collect::<Vec<_>>().join("\n")
}

/// Call rows of the audit log: (function, outcome, caller).
fn call_rows(cfg: &TestConfig) -> Vec<(String, String, String)> {
    cfg.audit_events()
        .into_iter()
        .filter(|e| e["kind"] == "call")
        .map(|e| (e["function"].as_str().unwrap_or("").to_string(), e["outcome"].as_str().unwrap_or("").to_string(), e["caller"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// Keywords or shapes OpenAI's strict mode refuses, anywhere in `s`.
fn strict_violations(s: &Value, path: &str, out: &mut Vec<String>) {
    const OK: &[&str] = &[
        "type", "description", "enum", "anyOf", "properties", "required", "additionalProperties", "items", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "pattern", "format",
    ];
    let Some(o) = s.as_object() else {
        out.push(format!("{path}: not a schema object"));
        return;
    };
    for (k, v) in o {
        if !OK.contains(&k.as_str()) {
            out.push(format!("{path}.{k}"));
        }
        match k.as_str() {
            "properties" => v.as_object().unwrap().iter().for_each(|(n, p)| strict_violations(p, &format!("{path}.{n}"), out)),
            "anyOf" => v.as_array().unwrap().iter().enumerate().for_each(|(i, p)| strict_violations(p, &format!("{path}.anyOf[{i}]"), out)),
            "items" => strict_violations(v, &format!("{path}.items"), out),
            _ => {}
        }
    }
    if o.get("type") == Some(&json!("object")) {
        let props: BTreeSet<&str> = o["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let req: BTreeSet<&str> = o["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        if props != req {
            out.push(format!("{path}: required {req:?} is not every property {props:?}"));
        }
        if o.get("additionalProperties") != Some(&json!(false)) {
            out.push(format!("{path}: additionalProperties is not false"));
        }
    }
}

#[tokio::test]
async fn every_list_shows_model_api_names_and_every_spelling_reaches_one_function() {
    let cfg = TestConfig::new(&long_tool());
    let s = TestServer::start(&cfg);
    let tok = cfg.token("names-agent", "*", &[]);
    let mcp = http_client(&s, &tok).await;

    // MCP tools/list.
    let tools = mcp.list_all_tools().await.unwrap();
    let mcp_names: BTreeSet<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert!(mcp_names.iter().all(|n| model_api_valid(n)), "{mcp_names:?}");
    for want in ["text__greet", "text__analysis__word-stats", "hostile__caps__spawn", "hostile__loop-forever"] {
        assert!(mcp_names.contains(want), "{want} not in {mcp_names:?}");
    }
    assert!(!mcp_names.iter().any(|n| n.contains('.')), "{mcp_names:?}");

    // /v1/tools natively (snake_case, canonical name + listed name) and in each format.
    let (st, native) = get(&s, &tok, "/v1/tools").await;
    assert_eq!(st, 200);
    let native = native["tools"].as_array().unwrap().clone();
    let listed: BTreeSet<String> = native.iter().map(|t| t["mcp_name"].as_str().unwrap().to_string()).collect();
    assert_eq!(listed, mcp_names);
    for t in &native {
        assert!(t["name"].as_str().unwrap().contains('.'), "{t}");
        assert!(t.get("input_schema").is_some() && t.get("output_schema").is_some() && t.get("inputSchema").is_none(), "{t}");
    }
    let (_, as_json) = get(&s, &tok, "/v1/tools?format=json").await;
    assert_eq!(as_json["tools"].as_array().unwrap(), &native);

    let (st, v) = get(&s, &tok, "/v1/tools?format=mcp").await;
    assert_eq!(st, 200);
    for t in v["tools"].as_array().unwrap() {
        let m = tools.iter().find(|x| x.name == t["name"].as_str().unwrap()).unwrap_or_else(|| panic!("{t}"));
        assert_eq!(t["inputSchema"], Value::Object((*m.input_schema).clone()), "{t}");
        assert!(t.get("input_schema").is_none() && t.get("outputSchema").is_some(), "{t}");
    }

    let (st, v) = get(&s, &tok, "/v1/tools?format=openai").await;
    assert_eq!(st, 200);
    let openai = v["tools"].as_array().unwrap();
    let names: BTreeSet<String> = openai.iter().map(|t| t["function"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, mcp_names);
    for t in openai {
        assert_eq!((&t["type"], &t["function"]["strict"]), (&json!("function"), &json!(true)), "{t}");
        let mut bad = Vec::new();
        strict_violations(&t["function"]["parameters"], "$", &mut bad);
        assert!(bad.is_empty(), "{}: {bad:?}", t["function"]["name"]);
    }

    let (st, v) = get(&s, &tok, "/v1/tools?format=anthropic").await;
    assert_eq!(st, 200);
    for t in v["tools"].as_array().unwrap() {
        let keys: BTreeSet<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["name", "description", "input_schema"]), "{t}");
        let m = tools.iter().find(|x| x.name == t["name"].as_str().unwrap()).unwrap_or_else(|| panic!("{t}"));
        assert_eq!(t["input_schema"], Value::Object((*m.input_schema).clone()));
    }

    let (st, v) = get(&s, &tok, "/v1/tools?format=gemini").await;
    assert_eq!((st.as_u16(), v["error"]["code"].as_str()), (400, Some("invalid_query")), "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(["\"gemini\"", "json", "mcp", "openai", "anthropic"].iter().all(|w| msg.contains(w)), "{msg}");

    // The long tool: short forms of exactly 64 characters.
    let long_canonical = format!("{LONG}.analysis.word-stats");
    let short = short_form(&long_canonical, "__");
    assert!(mcp_names.contains(&short), "{short} not in {mcp_names:?}");
    assert_eq!(short.len(), 64);
    assert!(mcp_names.iter().filter(|n| n.starts_with("a-tool-name")).all(|n| n.len() == 64), "{mcp_names:?}");

    // Every spelling, over MCP and HTTP, reaches the one function; the audit
    // rows carry only canonical names.
    let spellings: Vec<(String, &str)> = vec![
        ("text__analysis__word-stats".into(), "text.analysis.word-stats"),
        ("text.analysis.word-stats".into(), "text.analysis.word-stats"),
        ("text.text.analysis.word-stats".into(), "text.analysis.word-stats"),
        ("text.word-stats".into(), "text.analysis.word-stats"),
        (short.clone(), &long_canonical),
        (long_canonical.replace('.', "__"), &long_canonical),
        (long_canonical.clone(), &long_canonical),
        (format!("{LONG}.word-stats"), &long_canonical),
    ];
    let before = call_rows(&cfg).len();
    for (i, (name, _)) in spellings.iter().enumerate() {
        let words = "w ".repeat(i + 1);
        let r = call(&mcp, name, json!({"text": words})).await;
        assert_eq!(r.is_error, Some(false), "{name}: {}", text(&r));
        assert_eq!(r.structured_content.as_ref().unwrap()["result"]["words"], i + 1, "{name}");
        let url = s.url(&format!("/v1/tools/{name}/call"));
        let v: Value = client().post(url).bearer_auth(&tok).json(&json!({"text": words})).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["result"]["words"], i + 1, "{name}: {v}");
    }
    let rows = call_rows(&cfg);
    let new: Vec<&(String, String, String)> = rows[before..].iter().collect();
    assert_eq!(new.len(), 2 * spellings.len(), "{new:?}");
    for (i, (name, canonical)) in spellings.iter().enumerate() {
        let (mcp_row, http_row) = (new[2 * i], new[2 * i + 1]);
        for row in [mcp_row, http_row] {
            assert_eq!((row.0.as_str(), row.1.as_str()), (*canonical, "ok"), "{name}");
            assert!(row.2.starts_with("names-agent#"), "{row:?}");
        }
    }

    // Metrics count every spelling under the canonical name.
    let m = client().get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let want = format!("wasmward_calls_total{{tool=\"text.analysis.word-stats\",outcome=\"ok\"}} {}", 2 * 4);
    assert!(m.contains(&want), "{want} not in\n{m}");
    let want = format!("wasmward_calls_total{{tool=\"{long_canonical}\",outcome=\"ok\"}} {}", 2 * 4);
    assert!(m.contains(&want), "{want} not in\n{m}");
    assert!(!m.contains(&short) && !m.contains("text__analysis"), "{m}");

    // Names that are no function: a typed error; the row never carries the
    // caller's string.
    for (name, code) in [("text__nope", "unknown_function: "), ("nope__greet", "unknown_tool: "), ("text__greet__x", "unknown_function: ")] {
        let r = call(&mcp, name, json!({})).await;
        assert_eq!(r.is_error, Some(true), "{name}");
        assert!(text(&r).starts_with(code), "{name}: {}", text(&r));
    }
    let rows = call_rows(&cfg);
    assert!(rows.iter().all(|r| !r.0.contains("__") && !r.0.contains("nope")), "{rows:?}");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn a_scope_or_filter_on_the_canonical_name_holds_for_every_spelling() {
    let cfg = TestConfig::new("[gate]\ndenied_tools = [\"text.analysis.*\"]\n");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("scoped", "text.*", &[]);
    let mcp = http_client(&s, &tok).await;
    let names: BTreeSet<String> = mcp.list_all_tools().await.unwrap().iter().map(|t| t.name.to_string()).collect();
    assert!(names.contains("text__greet") && !names.iter().any(|n| n.starts_with("hostile") || n.contains("analysis")), "{names:?}");
    for name in ["text__analysis__word-stats", "text.word-stats", "text.text.analysis.word-stats", "text.analysis.word-stats"] {
        let r = call(&mcp, name, json!({"text": "a"})).await;
        assert!(r.is_error == Some(true) && text(&r).starts_with("forbidden: "), "{name}: {}", text(&r));
    }
    for name in ["hostile__counter", "hostile.hostile.counter"] {
        let r = call(&mcp, name, json!({})).await;
        assert!(r.is_error == Some(true) && text(&r).starts_with("forbidden: "), "{name}: {}", text(&r));
    }
    let gate: Vec<Value> = cfg.audit_events().into_iter().filter(|e| e["kind"] == "gate").collect();
    let tools: BTreeSet<&str> = gate.iter().map(|e| e["tool"].as_str().or(e["function"].as_str()).unwrap_or("")).collect();
    assert_eq!(gate.len(), 6, "{gate:#?}");
    assert_eq!(tools, BTreeSet::from(["text.analysis.word-stats", "hostile.counter"]), "{gate:#?}");
    assert!(call_rows(&cfg).is_empty(), "nothing ran");
    mcp.cancel().await.unwrap();
}

#[tokio::test]
async fn short_forms_are_the_same_after_a_restart_and_in_another_directory() {
    let mut lists = Vec::new();
    for _ in 0..2 {
        let cfg = TestConfig::new(&long_tool());
        let c = stdio_client(&cfg).await;
        let names: Vec<String> = c.list_all_tools().await.unwrap().iter().map(|t| t.name.to_string()).filter(|n| n.starts_with("a-tool")).collect();
        let r = call(&c, &short_form(&format!("{LONG}.greet"), "__"), json!({"name": "again"})).await;
        assert_eq!(text(&r), "Hello, again!");
        c.cancel().await.unwrap();
        let rows = call_rows(&cfg);
        assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), [format!("{LONG}.greet")]);
        lists.push(names);
    }
    assert_eq!(lists[0].len(), 5, "{:?}", lists[0]);
    assert_eq!(lists[0], lists[1]);
    // `…-0001__add` is 64 characters: it stays whole.
    assert!(lists[0].contains(&format!("{LONG}__add")), "{:?}", lists[0]);
    let want: BTreeSet<String> = ["greet", "add", "echo-all", "analysis.word-stats", "analysis.parse-int"].iter().map(|f| short_form(&format!("{LONG}.{f}"), "__")).collect();
    assert_eq!(lists[0].iter().cloned().collect::<BTreeSet<_>>(), want);
}

#[tokio::test]
async fn the_separator_setting_works_and_bad_values_are_refused() {
    let cfg = TestConfig::new("[server]\ntool_name_separator = \"-\"\n");
    let (st, out, err) = cfg.cli(&["check"]);
    assert_eq!(st, 0, "{err}");
    assert!(out.contains("text.analysis.word-stats  (listed to agents as text-analysis-word-stats)"), "{out}");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("dash", "*", &[]);
    let mcp = http_client(&s, &tok).await;
    let names: BTreeSet<String> = mcp.list_all_tools().await.unwrap().iter().map(|t| t.name.to_string()).collect();
    assert!(names.contains("text-analysis-word-stats") && names.contains("hostile-caps-spawn"), "{names:?}");
    assert!(names.iter().all(|n| model_api_valid(n) && !n.contains("__")), "{names:?}");
    let (_, v) = get(&s, &tok, "/v1/tools?format=openai").await;
    let openai: BTreeSet<String> = v["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(openai, names);
    // The listed form, the `__` form and the canonical name all work.
    for name in ["text-analysis-word-stats", "text__analysis__word-stats", "text.analysis.word-stats"] {
        let r = call(&mcp, name, json!({"text": "x y"})).await;
        assert_eq!(r.structured_content.as_ref().map(|v| v["result"]["words"].clone()), Some(json!(2)), "{name}: {}", text(&r));
    }
    assert!(call_rows(&cfg).iter().all(|r| r.0 == "text.analysis.word-stats"));
    mcp.cancel().await.unwrap();
    drop(s);

    // Values that would leave the model APIs' alphabet, or an unknown key.
    for (server, needle) in [
        ("tool_name_separator = \".\"", "[server] tool_name_separator = \".\""),
        ("tool_name_separator = \"\"", "[server] tool_name_separator = \"\""),
        ("tool_name_separator = \"::\"", "^[a-zA-Z0-9_-]"),
        ("tool_name_seperator = \"-\"", "unknown field `tool_name_seperator`"),
    ] {
        let bad = TestConfig::new(&format!("[server]\n{server}\n"));
        let (st, _, err) = bad.cli(&["check"]);
        assert_eq!(st, 2, "{server}: {err}");
        assert!(err.contains(needle), "{server}: {err}");
        assert!(err.contains("wasmward.toml"), "{err}");
    }

    // Two functions that would be listed under one name are refused at
    // load, naming both and the fix; `serve` refuses the same way.
    let clash = TestConfig::new(&format!(
        "[server]\ntool_name_separator = \"-\"\n[[tool]]\nname = \"hostile-caps-http\"\npath = {:?}\n",
        example_wasm("fetch").display().to_string()
    ));
    let (st, _, err) = clash.cli(&["check"]);
    assert_eq!(st, 2, "{err}");
    assert!(err.contains("hostile-caps-http.get, hostile.caps.http-get") && err.contains("\"hostile-caps-http-get\"") && err.contains("tool_name_separator"), "{err}");
    let out = std::process::Command::new(BIN).args(["serve", "--stdio", "--config"]).arg(&clash.path).stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    // With the default separator the same tools load.
    let fine = TestConfig::new(&format!("[[tool]]\nname = \"hostile-caps-http\"\npath = {:?}\n", example_wasm("fetch").display().to_string()));
    let (st, out, err) = fine.cli(&["check"]);
    assert_eq!(st, 0, "{err}");
    assert!(out.contains("hostile-caps-http.get  (listed to agents as hostile-caps-http__get)"), "{out}");
}

#[tokio::test]
async fn values_the_strict_openai_schema_allows_are_accepted_by_the_call() {
    let cfg = TestConfig::new("");
    let s = TestServer::start(&cfg);
    let tok = cfg.token("strict", "text.*", &[]);
    let (_, v) = get(&s, &tok, "/v1/tools?format=openai").await;
    let echo = v["tools"].as_array().unwrap().iter().find(|t| t["function"]["name"] == "text__echo-all").expect("echo-all listed").clone();
    let x = &echo["function"]["parameters"]["properties"]["x"];
    // What strict mode makes of `everything`: every field required, the
    // option nullable, the tuple an array of two, variant and result as anyOf.
    assert_eq!(x["required"].as_array().unwrap().len(), 20, "{x:#}");
    assert_eq!(x["properties"]["an-option"]["anyOf"][1], json!({"type": "null"}));
    assert_eq!((&x["properties"]["a-tuple"]["type"], &x["properties"]["a-tuple"]["minItems"], &x["properties"]["a-tuple"]["maxItems"]), (&json!("array"), &json!(2), &json!(2)));
    assert!(x["properties"]["a-variant"]["anyOf"].is_array() && x["properties"]["a-result"]["anyOf"].is_array(), "{x:#}");
    let value = json!({
        "a-u8": 255, "a-u16": 1, "a-u32": 2, "a-u64": 3, "a-s8": -1, "a-s16": -2, "a-s32": -3, "a-s64": -4,
        "a-f32": 1.5, "a-f64": 2.5, "a-char": "é", "a-bool": true, "a-string": "s", "a-list": [1, 2],
        "a-tuple": ["t", 7], "an-option": null, "an-enum": "green", "some-flags": ["read"],
        "a-variant": {"tag": "rectangle", "value": [1.0, 2.0]}, "a-result": {"err": "e"},
    });
    let mcp = http_client(&s, &tok).await;
    let r = call(&mcp, "text__echo-all", json!({"x": value})).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let back = &r.structured_content.as_ref().unwrap()["result"];
    assert_eq!((&back["an-option"], &back["a-tuple"], &back["a-variant"]), (&Value::Null, &json!(["t", 7]), &json!({"tag": "rectangle", "value": [1.0, 2.0]})));
    // A value in the wrong tuple position, which the looser strict schema
    // lets through, is named by the call.
    let mut wrong = value.clone();
    wrong["a-tuple"] = json!([7, "t"]);
    let r = call(&mcp, "text__echo-all", json!({"x": wrong})).await;
    assert!(r.is_error == Some(true) && text(&r).starts_with("invalid_arguments: ") && text(&r).contains("a-tuple"), "{}", text(&r));
    mcp.cancel().await.unwrap();
}

#[derive(Clone, Default)]
struct Watcher {
    list_changed: Arc<AtomicUsize>,
}

impl ClientHandler for Watcher {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_reload_that_changes_the_separator_relists_the_tools() {
    let cfg = TestConfig::new("");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["serve", "--stdio", "--config"]).arg(&cfg.path);
    let (transport, _) = TokioChildProcess::builder(cmd).stderr(std::process::Stdio::inherit()).spawn().unwrap();
    let c = Watcher::default().serve(transport).await.expect("MCP initialize over stdio");
    let names = |tools: Vec<rmcp::model::Tool>| tools.iter().map(|t| t.name.to_string()).collect::<BTreeSet<_>>();
    assert!(names(c.list_all_tools().await.unwrap()).contains("text__analysis__word-stats"));
    cfg.rewrite("[server]\ntool_name_separator = \"-\"\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while c.service().list_changed.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "no notifications/tools/list_changed after the separator changed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = names(c.list_all_tools().await.unwrap());
    assert!(after.contains("text-analysis-word-stats") && !after.iter().any(|n| n.contains("__")), "{after:?}");
    let params = CallToolRequestParams::new("text-greet").with_arguments(json!({"name": "dash"}).as_object().cloned().unwrap());
    let r = c.call_tool(params).await.unwrap();
    assert_eq!(text(&r), "Hello, dash!");
    c.cancel().await.unwrap();
    assert_eq!(call_rows(&cfg).iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["text.greet"]);
}
