//! Helpers shared by the issue-3 end-to-end tests (`policy_fs`, `policy_net`,
//! `policy_misc`, `audit_integrity`): configs that keep everything in a temp
//! dir, the audit log read back as one group per call (the call row plus the
//! denial rows sharing its call_id), and exact assertions on both.

#![allow(dead_code)]

use crate::common::{tool_path, TestDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use wasmward::audit::{AuditEvent, CallEvent, DenialEvent, LimitEvent, StoredEvent};
use wasmward::config::Config;
use wasmward::host::Host;
use wasmward::{CallError, CallRecord};

/// Config text: `[runtime]` and `[audit]` in `dir`, with a small instance
/// pool (`max_concurrent_calls`), then `audit_extra` lines in `[audit]`,
/// then `rest` (tools, defaults).
pub fn config_text(dir: &TestDir, concurrency: u32, audit_extra: &str, rest: &str) -> String {
    format!(
        "[runtime]\ncache_dir = {cache:?}\nmax_concurrent_calls = {concurrency}\n\n[audit]\npath = {audit:?}\n{audit_extra}\n\n{rest}",
        cache = dir.cache_dir().display().to_string(),
        audit = dir.audit_db().display().to_string(),
    )
}

pub fn parse(dir: &TestDir, text: &str) -> Config {
    Config::parse(text, "test.toml", dir.path()).unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"))
}

/// Opens a host for `rest` (tools, defaults) in `dir`.
pub async fn open(dir: &TestDir, rest: &str) -> Host {
    let text = config_text(dir, 8, "", rest);
    Host::open(parse(dir, &text)).await.unwrap_or_else(|e| panic!("Host::open failed: {e:#}\n{text}"))
}

/// Opens a host for `rest` that must fail; returns the error text (with its
/// context chain).
pub async fn open_err(dir: &TestDir, rest: &str) -> String {
    let text = config_text(dir, 8, "", rest);
    match Config::parse(&text, "test.toml", dir.path()) {
        Err(e) => e.to_string(),
        Ok(cfg) => match Host::open(cfg).await {
            Ok(_) => panic!("Host::open succeeded but should have failed:\n{text}"),
            Err(e) => format!("{e:#}"),
        },
    }
}

/// A `[[tool]]` for example tool `example` named `name`, with `[tool.limits]`
/// lines `limits` (may be empty) and `[tool.policy]` lines `policy` (`None`:
/// no policy table at all).
pub fn tool(name: &str, example: &str, limits: &str, policy: Option<&str>) -> String {
    tool_at(name, &tool_path(example), limits, policy)
}

pub fn tool_at(name: &str, path: &Path, limits: &str, policy: Option<&str>) -> String {
    let mut s = format!("[[tool]]\nname = {name:?}\npath = {:?}\n", path.display().to_string());
    if !limits.is_empty() {
        s.push_str(&format!("[tool.limits]\n{limits}\n"));
    }
    if let Some(p) = policy {
        s.push_str(&format!("[tool.policy]\n{p}\n"));
    }
    s.push('\n');
    s
}

/// A TOML string literal for a path.
pub fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Calls `function` (full name) as caller `test`.
pub async fn call(host: &Host, function: &str, args: Value) -> CallRecord {
    host.call(function, &args, "test").await
}

/// The tool's own `err` string (what the guest observed), or panics. After
/// a sandbox refusal the call is `denied`, with the tool's error as cause.
pub fn guest_err(r: &CallRecord) -> String {
    let cause = match &r.outcome {
        Err(CallError::Denied { cause, .. }) => Err(cause.as_ref()),
        other => other.as_ref(),
    };
    match cause {
        Err(CallError::ToolError { value: Value::String(s) }) => s.clone(),
        other => panic!("{}: expected the tool's own error string, got {other:?} (stderr: {})", r.function, r.stderr),
    }
}

/// The successful result, or panics.
pub fn ok(r: &CallRecord) -> &Value {
    match &r.outcome {
        Ok(v) => v,
        Err(e) => panic!("{}: expected success, got {e:?} (stderr: {})", r.function, r.stderr),
    }
}

/// Every row of the audit log at `db`, oldest first.
pub fn rows(db: &Path) -> Vec<StoredEvent> {
    let rows = wasmward::audit::tail(db, u64::MAX >> 1).unwrap_or_else(|e| panic!("read audit log {}: {e}", db.display()));
    let mut seq = 0;
    rows.iter()
        .map(|r| {
            assert!(r.seq > seq, "rows out of order");
            seq = r.seq;
            r.event().expect("audit row parses")
        })
        .collect()
}

/// One call as audited: its `call` row and the `denial` rows with its call_id.
#[derive(Debug, Clone)]
pub struct Audited {
    pub call_id: String,
    pub call: CallEvent,
    pub denials: Vec<DenialEvent>,
    pub limits: Vec<LimitEvent>,
}

/// Groups the rows by call: each `call` row followed by its denial rows.
/// Checks that every denial row's call_id matches a call row, that the
/// denials of a call are the rows right after it, that their tool and
/// function are the call's, and that the call row's `denials` count is the
/// number of denials its rows stand for (a summary row counts `count`).
/// `limit` rows are attached to their call the same way. Load refusals (function `<load>`) are
/// returned separately.
pub fn audited(db: &Path) -> (Vec<Audited>, Vec<DenialEvent>) {
    let mut calls: Vec<Audited> = Vec::new();
    let mut load = Vec::new();
    for row in rows(db) {
        match row.event {
            AuditEvent::Call(c) => calls.push(Audited { call_id: row.call_id, call: c, denials: Vec::new(), limits: Vec::new() }),
            AuditEvent::Denial(d) if d.function == "<load>" => load.push(d),
            AuditEvent::Denial(d) => {
                let last = calls.last_mut().unwrap_or_else(|| panic!("denial row {} before any call row: {d:?}", row.seq));
                assert_eq!(row.call_id, last.call_id, "denial row {} does not follow its call row: {d:?}", row.seq);
                assert_eq!((&d.tool, &d.function), (&last.call.tool, &last.call.function), "denial row {}", row.seq);
                last.denials.push(d);
            }
            AuditEvent::Limit(l) => {
                let last = calls.last_mut().unwrap_or_else(|| panic!("limit row {} before any call row: {l:?}", row.seq));
                assert_eq!(row.call_id, last.call_id, "limit row {} does not follow its call row: {l:?}", row.seq);
                assert_eq!((&l.tool, &l.function), (&last.call.tool, &last.call.function), "limit row {}", row.seq);
                last.limits.push(l);
            }
            AuditEvent::Gate(g) => panic!("unexpected gate row {g:?}"),
        }
    }
    for a in &calls {
        let stood_for: u64 = a.denials.iter().map(|d| d.count.unwrap_or(1)).sum();
        assert_eq!(a.call.denials as u64, stood_for, "call row's denial count for {} ({})", a.call.function, a.call_id);
        assert_eq!(a.call.caller, "test");
    }
    (calls, load)
}

/// The expected parts of one denial row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    pub capability: String,
    pub op: String,
    pub target: String,
    pub rule: String,
    pub action: String,
}

pub fn deny(capability: &str, op: &str, target: &str, rule: &str) -> Deny {
    Deny { capability: capability.into(), op: op.into(), target: target.into(), rule: rule.into(), action: "denied".into() }
}

pub fn logged(capability: &str, op: &str, target: &str, rule: &str) -> Deny {
    Deny { action: "logged".into(), ..deny(capability, op, target, rule) }
}

impl From<&DenialEvent> for Deny {
    fn from(d: &DenialEvent) -> Deny {
        Deny { capability: d.capability.clone(), op: d.op.clone(), target: d.target.clone(), rule: d.rule.clone(), action: d.action.clone() }
    }
}

/// Asserts that call `a` is `function` with `outcome` and exactly the
/// denials `want`, in order.
pub fn assert_call(a: &Audited, function: &str, outcome: &str, want: &[Deny]) {
    assert_eq!(a.call.function, function, "call row {}", a.call_id);
    assert_eq!(a.call.outcome, outcome, "outcome of {function}");
    let got: Vec<Deny> = a.denials.iter().map(Deny::from).collect();
    assert_eq!(got, want, "denial rows of {function}");
}

/// The calls of `calls` whose function is `function`.
pub fn of<'a>(calls: &'a [Audited], function: &str) -> Vec<&'a Audited> {
    calls.iter().filter(|a| a.call.function == function).collect()
}

/// `[("K","V"), ...]` as a sorted map, from an `env-all` result.
pub fn env_map(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|kv| (kv[0].as_str().unwrap().to_string(), kv[1].as_str().unwrap().to_string()))
        .collect()
}

/// Accepts TCP connections on 127.0.0.1 in the background and answers each
/// first read with `reply`; counts connections.
pub struct EchoServer {
    pub port: u16,
    pub connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl EchoServer {
    pub async fn start(reply: &'static [u8]) -> EchoServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else { return };
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(reply).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        EchoServer { port, connections }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A minimal HTTP/1.1 server on 127.0.0.1 answering every request with 200
/// and body `ok`; counts requests (connections).
pub async fn http_server() -> EchoServer {
    EchoServer::start(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nok").await
}
