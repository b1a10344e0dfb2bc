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
//! Everything else goes to rmcp unchanged. Writes (rmcp's messages and
//! these answers) go out whole, one line each, under one lock. Standard
//! input is read on the IO reactor when it is a pipe, so a server whose
//! parent keeps stdin open can still exit.

use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleServer;
use serde_json::{json, Value};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, Mutex};

/// Longest line accepted (as rmcp's stdio transport and HTTP client).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// The stdio transport: lines in through a reader task, messages out.
pub struct LineTransport<W> {
    rx: mpsc::Receiver<ClientJsonRpcMessage>,
    out: Arc<Mutex<W>>,
    reader: tokio::task::JoinHandle<()>,
}

/// The transport on this process's stdin and stdout.
pub fn stdio() -> LineTransport<rmcp::transport::StdioWriter> {
    let (r, w) = rmcp::transport::stdio_pipes();
    LineTransport::new(r, w, MAX_LINE)
}

impl<W: AsyncWrite + Unpin + Send + 'static> LineTransport<W> {
    pub fn new<R: AsyncRead + Unpin + Send + 'static>(read: R, write: W, max_line: usize) -> LineTransport<W> {
        let out = Arc::new(Mutex::new(write));
        let (tx, rx) = mpsc::channel(64);
        let reader = tokio::spawn(read_lines(read, out.clone(), tx, max_line));
        LineTransport { rx, out, reader }
    }
}

/// Writes `bytes` and a newline as one piece, then flushes.
async fn write_line<W: AsyncWrite + Unpin>(out: &Mutex<W>, mut bytes: Vec<u8>) -> io::Result<()> {
    bytes.push(b'\n');
    let mut w = out.lock().await;
    w.write_all(&bytes).await?;
    w.flush().await
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

async fn read_lines<R, W>(read: R, out: Arc<Mutex<W>>, tx: mpsc::Sender<ClientJsonRpcMessage>, max_line: usize)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
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
        match serde_json::from_slice::<ClientJsonRpcMessage>(line) {
            Ok(msg) => {
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
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Transport<RoleServer> for LineTransport<W> {
    type Error = io::Error;

    fn send(&mut self, item: ServerJsonRpcMessage) -> impl std::future::Future<Output = Result<(), io::Error>> + Send + 'static {
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
