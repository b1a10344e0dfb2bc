//! MCP over stdio: the transport rmcp serves on. rmcp's own line transport
//! drops a line that is not JSON without a word; JSON-RPC 2.0 answers it
//! with a parse error (-32700, `id: null`). This reads the lines itself
//! and answers what rmcp cannot decode:
//!
//! - not JSON: -32700 with `id: null`;
//! - JSON that is no JSON-RPC message: -32600 with the request's `id`
//!   when it has one (a notification, which has none, is never answered);
//! - a line over [`MAX_LINE`]: -32600 with `id: null`, the line dropped.
//!
//! Everything else goes to rmcp, except `tools/call` on the fast path
//! ([`FastCalls`]): once rmcp has answered `initialize` with a protocol
//! version that has the initialize lifecycle, a `tools/call` request whose
//! `_meta` negotiates no version of its own goes straight from the reader
//! to the call, in one task, and its response line is written from there:
//! the same bytes rmcp would write (the same [`super::mcp::tool_call`], the
//! same result types and serialisation), without rmcp's queue, service loop
//! and two extra tasks per request. `notifications/cancelled` of such a
//! call cancels it and drops its response, as rmcp does; the session's end
//! waits for the calls in flight as rmcp's drain does, then cancels them.
//!
//! Writes (rmcp's messages and these answers) go out whole, one line each,
//! under one lock. Standard input is read on the IO reactor when it is a
//! pipe, so a server whose parent keeps stdin open can still exit.

use super::Server;
use crate::gate::Caller;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, GetMeta, JsonRpcRequest, ProgressNotification,
    RequestId, ServerJsonRpcMessage, ServerNotification, ServerResult,
};
use rmcp::transport::Transport;
use rmcp::RoleServer;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

/// Longest line accepted (as rmcp's stdio transport and HTTP client).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// How long the end of the session waits for fast-path calls in flight to
/// answer before cancelling them (rmcp's drain after end of input).
const DRAIN: Duration = Duration::from_secs(5);

/// The stdio transport: lines in through a reader task, messages out.
pub struct LineTransport<W> {
    rx: mpsc::Receiver<ClientJsonRpcMessage>,
    out: Arc<Mutex<W>>,
    reader: tokio::task::JoinHandle<()>,
    fast: Option<Arc<FastCalls>>,
}

/// The transport on this process's stdin and stdout, with `tools/call` on
/// the fast path to `server` as `caller`.
pub fn stdio(server: Arc<Server>, caller: Caller) -> LineTransport<rmcp::transport::StdioWriter> {
    let (r, w) = rmcp::transport::stdio_pipes();
    LineTransport::with_fast_calls(r, w, MAX_LINE, Some(FastCalls::new(server, caller)))
}

impl<W: AsyncWrite + Unpin + Send + 'static> LineTransport<W> {
    /// Every message to rmcp (no fast path).
    pub fn new<R: AsyncRead + Unpin + Send + 'static>(read: R, write: W, max_line: usize) -> LineTransport<W> {
        LineTransport::with_fast_calls(read, write, max_line, None)
    }

    pub fn with_fast_calls<R: AsyncRead + Unpin + Send + 'static>(read: R, write: W, max_line: usize, fast: Option<FastCalls>) -> LineTransport<W> {
        let out = Arc::new(Mutex::new(write));
        let (tx, rx) = mpsc::channel(64);
        let fast = fast.map(Arc::new);
        let reader = tokio::spawn(read_lines(read, out.clone(), tx, max_line, fast.clone()));
        LineTransport { rx, out, reader, fast }
    }
}

/// Writes `bytes` and a newline as one piece, then flushes.
async fn write_line<W: AsyncWrite + Unpin>(out: &Mutex<W>, mut bytes: Vec<u8>) -> io::Result<()> {
    bytes.push(b'\n');
    let mut w = out.lock().await;
    w.write_all(&bytes).await?;
    w.flush().await
}

/// Where the session is for the fast path.
const BEFORE: u8 = 0;
/// `initialize` went to rmcp; its answer decides.
const AWAIT_INIT: u8 = 1;
const ON: u8 = 2;
/// The session started otherwise, or negotiated a version without the
/// initialize lifecycle: every request goes to rmcp.
const OFF: u8 = 3;

/// `tools/call` answered without rmcp's service loop (see the module doc).
pub struct FastCalls {
    server: Arc<Server>,
    caller: Caller,
    state: AtomicU8,
    /// Calls in flight by request id, with a sequence number (a client may
    /// reuse an id): `notifications/cancelled` removes the entry.
    in_flight: std::sync::Mutex<HashMap<RequestId, (u64, CancellationToken)>>,
    seq: AtomicU64,
    /// Call tasks running, and a wake-up when that drops to zero.
    tasks: AtomicUsize,
    idle: tokio::sync::Notify,
    /// Fired when the session is over: calls still running are cancelled
    /// and their responses dropped (as rmcp does after its drain).
    session_end: CancellationToken,
}

impl FastCalls {
    pub fn new(server: Arc<Server>, caller: Caller) -> FastCalls {
        FastCalls {
            server,
            caller,
            state: AtomicU8::new(BEFORE),
            in_flight: Default::default(),
            seq: AtomicU64::new(0),
            tasks: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            session_end: CancellationToken::new(),
        }
    }

    /// Sees a request on its way to rmcp or the fast path: the first one
    /// (other than `ping`) decides whether the session can use the fast
    /// path at all.
    fn saw_request(&self, r: &ClientRequest) {
        if self.state.load(Ordering::Acquire) != BEFORE {
            return;
        }
        let next = match r {
            ClientRequest::PingRequest(_) => return,
            ClientRequest::InitializeRequest(_) => AWAIT_INIT,
            _ => OFF,
        };
        let _ = self.state.compare_exchange(BEFORE, next, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Sees a message rmcp sends: its answer to `initialize` turns the
    /// fast path on when the negotiated version has the initialize
    /// lifecycle (before 2026-07-28: no per-request metadata, results
    /// without `resultType`).
    fn saw_sent(&self, m: &ServerJsonRpcMessage) {
        if self.state.load(Ordering::Acquire) != AWAIT_INIT {
            return;
        }
        let next = match m {
            ServerJsonRpcMessage::Response(r) => match &r.result {
                ServerResult::InitializeResult(init) if init.protocol_version.has_initialize() => ON,
                _ => OFF,
            },
            ServerJsonRpcMessage::Error(_) => OFF,
            _ => return,
        };
        let _ = self.state.compare_exchange(AWAIT_INIT, next, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Takes a `tools/call` request if the fast path can answer it;
    /// otherwise hands it back for rmcp.
    fn take<W: AsyncWrite + Unpin + Send + 'static>(self: &Arc<Self>, msg: ClientJsonRpcMessage, out: &Arc<Mutex<W>>) -> Option<ClientJsonRpcMessage> {
        let ClientJsonRpcMessage::Request(JsonRpcRequest { id, mut request, .. }) = msg else {
            return Some(msg);
        };
        self.saw_request(&request);
        let eligible = self.state.load(Ordering::Acquire) == ON
            && matches!(request, ClientRequest::CallToolRequest(_))
            && request.get_meta().protocol_version().is_none();
        if !eligible {
            return Some(ClientJsonRpcMessage::request(request, id));
        }
        let meta = std::mem::take(request.get_meta_mut());
        let ClientRequest::CallToolRequest(call) = request else { unreachable!("checked above") };
        self.spawn_call(id, call.params.name.to_string(), call.params.arguments, meta.get_progress_token(), out);
        None
    }

    /// Whether a `tools/call` may take the fast path now.
    fn on(&self) -> bool {
        self.state.load(Ordering::Acquire) == ON
    }

    /// Runs one `tools/call` in its own task and writes its answer.
    fn spawn_call<W: AsyncWrite + Unpin + Send + 'static>(
        self: &Arc<Self>,
        id: RequestId,
        name: String,
        arguments: Option<rmcp::model::JsonObject>,
        progress_token: Option<rmcp::model::ProgressToken>,
        out: &Arc<Mutex<W>>,
    ) {
        // Cancelled by `notifications/cancelled` or the end of the session.
        let ct = self.session_end.child_token();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), (seq, ct.clone()));
        let progress = progress_token.map(|token| {
            let out = out.clone();
            super::mcp::approval_progress(token, move |param| {
                let msg = ServerJsonRpcMessage::notification(ServerNotification::ProgressNotification(ProgressNotification::new(param)));
                let out = out.clone();
                tokio::spawn(async move {
                    let sent = match serde_json::to_vec(&msg) {
                        Ok(bytes) => write_line(&out, bytes).await,
                        Err(e) => Err(io::Error::other(e)),
                    };
                    if let Err(e) = sent {
                        tracing::debug!(error = %e, "could not send an approval progress notification");
                    }
                });
            })
        });
        let (this, out) = (self.clone(), out.clone());
        self.tasks.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            let _running = Running(&this);
            let result = super::mcp::tool_call(&this.server, Some(this.caller.clone()), name, arguments, progress, &ct, true).await;
            let answered = {
                let mut f = this.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                match f.get(&id) {
                    Some((s, _)) if *s == seq => f.remove(&id).is_some(),
                    _ => false,
                }
            };
            if !answered || this.session_end.is_cancelled() {
                tracing::debug!(%id, "dropping the response of a cancelled request");
                return;
            }
            let mut result = ServerResult::CallToolResult(result);
            result.strip_result_type_for_legacy_peer();
            let sent = match serde_json::to_vec(&ServerJsonRpcMessage::response(result, id)) {
                Ok(bytes) => write_line(&out, bytes).await,
                Err(e) => Err(io::Error::other(e)),
            };
            if let Err(e) = sent {
                tracing::error!(error = %e, "fail to response message");
            }
        });
    }

    /// `notifications/cancelled` of a fast-path call: cancel it (unless
    /// the server drains) and drop its response. The notification still
    /// goes on to rmcp, which finds no request of its own under the id.
    fn cancelled(&self, n: &ClientNotification) {
        let ClientNotification::CancelledNotification(c) = n else { return };
        let Some(id) = &c.params.request_id else { return };
        let removed = self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        if let Some((_, ct)) = removed {
            tracing::info!(%id, reason = c.params.reason, "cancelled");
            if !self.server.draining() {
                ct.cancel();
            }
        }
    }

    /// The end of the session: waits up to [`DRAIN`] for the calls in
    /// flight to answer, then cancels the rest (their responses dropped).
    async fn close(&self) {
        let idle = async {
            loop {
                let woken = self.idle.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                if self.tasks.load(Ordering::Acquire) == 0 {
                    return;
                }
                woken.await;
            }
        };
        if tokio::time::timeout(DRAIN, idle).await.is_err() {
            tracing::warn!("timed out draining in-flight responses");
        }
        self.session_end.cancel();
    }
}

/// A `tools/call` request in its plainest shape: `jsonrpc`, `id`,
/// `method`, and params of `name`, `arguments` and at most a
/// `progressToken` in `_meta`, nothing else. rmcp decodes such a line to
/// the same request; decoding it directly skips rmcp's untagged message
/// enum (buffering the line and trying each kind of message in turn). Any
/// other line takes rmcp's decoding.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainCall {
    jsonrpc: String,
    id: RequestId,
    method: String,
    params: PlainParams,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainParams {
    name: String,
    #[serde(default)]
    arguments: Option<rmcp::model::JsonObject>,
    #[serde(rename = "_meta", default)]
    meta: Option<PlainMeta>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainMeta {
    #[serde(rename = "progressToken")]
    progress_token: Option<rmcp::model::ProgressToken>,
}

impl PlainCall {
    fn parse(line: &[u8]) -> Option<PlainCall> {
        let c: PlainCall = serde_json::from_slice(line).ok()?;
        (c.jsonrpc == "2.0" && c.method == "tools/call").then_some(c)
    }
}

/// Counts a fast-path call task until it ends.
struct Running<'a>(&'a FastCalls);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.0.tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The answer to a line rmcp could not decode, if it gets one.
pub fn answer(line: &[u8]) -> Option<Value> {
    let error = |id: Value, code: i64, message: String| Some(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}));
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return error(Value::Null, -32700, format!("Parse error: the line is not JSON ({e}); send one JSON-RPC 2.0 message per line")),
    };
    let why = match serde_json::from_value::<ClientJsonRpcMessage>(value.clone()) {
        Ok(_) => return None,
        Err(e) => e,
    };
    match value.get("id") {
        // A notification is never answered.
        None if value.get("method").is_some() => None,
        None => error(Value::Null, -32600, format!("Invalid Request: not a JSON-RPC 2.0 message ({why})")),
        Some(id) => {
            let id = if id.is_string() || id.is_number() { id.clone() } else { Value::Null };
            error(id, -32600, format!("Invalid Request: {why}"))
        }
    }
}

async fn read_lines<R, W>(read: R, out: Arc<Mutex<W>>, tx: mpsc::Sender<ClientJsonRpcMessage>, max_line: usize, fast: Option<Arc<FastCalls>>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut r = BufReader::new(read);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = match (&mut r).take(max_line as u64 + 1).read_until(b'\n', &mut buf).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "cannot read MCP messages from stdin");
                return;
            }
        };
        if n == 0 {
            return; // EOF: rmcp sees the stream end.
        }
        if !buf.ends_with(b"\n") && buf.len() > max_line {
            // Drop the rest of the oversized line, then say so.
            loop {
                buf.clear();
                match (&mut r).take(64 * 1024).read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) if buf.ends_with(b"\n") => break,
                    Ok(_) => {}
                }
            }
            tracing::warn!(max_line, "dropped an MCP message over the stdio line limit");
            let e = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": format!("Invalid Request: the line is over {max_line} bytes and was dropped")}});
            if write_line(&out, e.to_string().into_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        let mut line: &[u8] = &buf;
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(f) = fast.as_ref().filter(|f| f.on()) {
            if let Some(c) = PlainCall::parse(line) {
                let token = c.params.meta.and_then(|m| m.progress_token);
                f.spawn_call(c.id, c.params.name, c.params.arguments, token, &out);
                continue;
            }
        }
        match serde_json::from_slice::<ClientJsonRpcMessage>(line) {
            Ok(msg) => {
                let msg = match &fast {
                    Some(f) => {
                        if let ClientJsonRpcMessage::Notification(n) = &msg {
                            f.cancelled(&n.notification);
                        }
                        match f.take(msg, &out) {
                            Some(m) => m,
                            None => continue,
                        }
                    }
                    None => msg,
                };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
            Err(_) => match answer(line) {
                Some(e) => {
                    tracing::info!(code = %e["error"]["code"], "answered a line on stdin that is no MCP message");
                    if write_line(&out, e.to_string().into_bytes()).await.is_err() {
                        return;
                    }
                }
                None => tracing::debug!("ignored a notification on stdin that is no MCP message"),
            },
        }
    }
}

impl<W> Drop for LineTransport<W> {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(f) = &self.fast {
            f.session_end.cancel();
        }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Transport<RoleServer> for LineTransport<W> {
    type Error = io::Error;

    fn send(&mut self, item: ServerJsonRpcMessage) -> impl std::future::Future<Output = Result<(), io::Error>> + Send + 'static {
        if let Some(f) = &self.fast {
            f.saw_sent(&item);
        }
        let out = self.out.clone();
        async move {
            let bytes = serde_json::to_vec(&item).map_err(io::Error::other)?;
            write_line(&out, bytes).await
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        self.rx.recv().await
    }

    async fn close(&mut self) -> Result<(), io::Error> {
        self.reader.abort();
        if let Some(f) = &self.fast {
            f.close().await;
        }
        self.out.lock().await.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_rmcp_cannot_decode_get_json_rpc_answers() {
        let cases: &[(&str, Option<(i64, Value)>)] = &[
            ("this is not json", Some((-32700, Value::Null))),
            ("{\"jsonrpc\": \"2.0\", \"id\": 1, ", Some((-32700, Value::Null))),
            ("{\"jsonrpc\": \"2.0\", \"id\": 7}", Some((-32600, json!(7)))),
            ("{\"jsonrpc\": \"2.0\", \"id\": \"a\", \"result\": 5, \"error\": {}}", Some((-32600, json!("a")))),
            ("{\"jsonrpc\": \"2.0\", \"id\": {\"x\": 1}}", Some((-32600, Value::Null))),
            ("42", Some((-32600, Value::Null))),
            // A notification is never answered, even a malformed one.
            ("{\"jsonrpc\": \"2.0\", \"method\": \"notifications/initialized\", \"params\": 5}", None),
            // What rmcp decodes is not answered here.
            ("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"ping\"}", None),
            ("{\"jsonrpc\": \"2.0\", \"id\": 2, \"method\": \"tools/call\", \"params\": {\"name\": \"x\", \"arguments\": [1]}}", None),
        ];
        for (line, want) in cases {
            let got = answer(line.as_bytes()).map(|v| {
                assert_eq!(v["jsonrpc"], "2.0", "{line}");
                assert!(v.as_object().unwrap().contains_key("id"), "{line}: the id is present, null or not");
                (v["error"]["code"].as_i64().unwrap(), v["id"].clone())
            });
            assert_eq!(&got, want, "{line}");
        }
    }

    #[test]
    fn only_plain_tools_call_lines_skip_rmcps_decoding_and_they_decode_as_rmcp_does() {
        let plain = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"text.greet","arguments":{"name":"A"}}}"#,
            r#"{"method":"tools/call","params":{"arguments":{"b":[1,2.5,"x"],"a":{}},"name":"t.f"},"id":"s","jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t.f","arguments":null,"_meta":{"progressToken":7}}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t.f"}}"#,
        ];
        for line in plain {
            let c = PlainCall::parse(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
            let ClientJsonRpcMessage::Request(mut r) = serde_json::from_str::<ClientJsonRpcMessage>(line).unwrap() else { panic!("{line}") };
            let meta = std::mem::take(r.request.get_meta_mut());
            let ClientRequest::CallToolRequest(call) = r.request else { panic!("{line}") };
            assert_eq!(r.id, c.id, "{line}");
            assert_eq!(call.params.name, c.params.name, "{line}");
            assert_eq!(call.params.arguments, c.params.arguments, "{line}");
            assert_eq!(meta.get_progress_token(), c.params.meta.and_then(|m| m.progress_token), "{line}");
        }
        let other = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"t.f"}}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":"t.f"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"t.f"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t.f","arguments":[1]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t.f","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t.f","requestState":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t.f"},"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t.f","name":"t.g"}}"#,
        ];
        for line in other {
            assert!(PlainCall::parse(line.as_bytes()).is_none(), "{line}");
        }
    }

    /// Runs lines through the transport; returns what rmcp received and
    /// what was written back.
    async fn run(input: &[u8], max_line: usize) -> (Vec<ClientJsonRpcMessage>, Vec<Value>) {
        let (mut client_w, server_r) = tokio::io::duplex(1 << 16);
        let (server_w, mut client_r) = tokio::io::duplex(1 << 16);
        let mut t = LineTransport::new(server_r, server_w, max_line);
        client_w.write_all(input).await.unwrap();
        drop(client_w);
        let mut got = Vec::new();
        while let Some(m) = t.receive().await {
            got.push(m);
        }
        t.close().await.unwrap();
        drop(t);
        let mut text = String::new();
        client_r.read_to_string(&mut text).await.unwrap();
        (got, text.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
    }

    #[tokio::test]
    async fn good_lines_pass_and_bad_ones_are_answered_in_place() {
        let input = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n\nnot json\n\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n";
        let (got, out) = run(input, MAX_LINE).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0]["id"].clone(), out[0]["error"]["code"].as_i64()), (Value::Null, Some(-32700)));
    }

    #[tokio::test]
    async fn an_oversized_line_is_dropped_and_answered_and_the_next_one_passes() {
        let big = format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}\n", "y".repeat(5000));
        let input = format!("{big}{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}}\n");
        let (got, out) = run(input.as_bytes(), 1000).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0]["error"]["code"], -32600);
        assert!(out[0]["error"]["message"].as_str().unwrap().contains("over 1000 bytes"), "{out:?}");
    }
}
