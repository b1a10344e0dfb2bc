//! MCP with the official Rust SDK (rmcp): `tools/list` and `tools/call`
//! over stdio and streamable HTTP. Failures are `isError` results with the
//! text `code: message` and the HTTP API's error object under
//! `_meta["wasmward/error"]`, never protocol errors or dropped connections.
//! After a reload every connected client gets
//! `notifications/tools/list_changed`.

use super::{ApiError, Server, ToolView};
use crate::gate::Caller;
use crate::runtime::Cancel;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ServerCapabilities, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// Connected MCP clients, told when the tool list changes.
#[derive(Default)]
pub struct Peers {
    peers: Mutex<Vec<Peer<RoleServer>>>,
}

impl Peers {
    pub fn add(&self, peer: Peer<RoleServer>) {
        let mut p = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        p.retain(|x| !x.is_transport_closed());
        p.push(peer);
    }

    /// Sends `notifications/tools/list_changed` to every live client.
    pub async fn notify_tools_changed(&self) {
        let peers: Vec<_> = {
            let mut p = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            p.retain(|x| !x.is_transport_closed());
            p.clone()
        };
        for peer in peers {
            if let Err(e) = peer.notify_tool_list_changed().await {
                tracing::debug!(error = %e, "could not notify an MCP client of the tool list change");
            }
        }
    }
}

/// Where the caller's identity comes from.
#[derive(Clone)]
pub enum Mode {
    /// The parent process, optionally scoped by `--token`.
    Stdio(Caller),
    /// Per request, set by the HTTP auth layer.
    Http,
}

#[derive(Clone)]
pub struct McpHandler {
    server: Arc<Server>,
    mode: Mode,
}

impl McpHandler {
    pub fn new(server: Arc<Server>, mode: Mode) -> McpHandler {
        McpHandler { server, mode }
    }

    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Option<Caller> {
        match &self.mode {
            Mode::Stdio(c) => Some(c.clone()),
            Mode::Http => ctx.extensions.get::<axum::http::request::Parts>().and_then(|p| p.extensions.get::<Caller>()).cloned(),
        }
    }
}

/// The MCP `Tool` for a function.
pub fn mcp_tool(v: &ToolView) -> Tool {
    let obj = |s: &Value| Arc::new(s.as_object().cloned().unwrap_or_default());
    let mut t = Tool::new_with_raw(v.mcp_name.clone(), v.description.clone().map(Into::into), obj(&v.input_schema));
    t = t.with_raw_output_schema(obj(&v.output_schema));
    t
}

/// A successful result: `{"result": value}` plus a text rendering.
pub fn success(value: Value) -> CallToolResult {
    let text = match &value {
        Value::String(s) => s.clone(),
        v => serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()),
    };
    let mut r = CallToolResult::structured(json!({ "result": value }));
    r.content = vec![ContentBlock::text(text)];
    r
}

/// The `_meta` key of an error result's machine-readable error.
pub const ERROR_META_KEY: &str = "wasmward/error";

/// A failure the agent can read: `isError` with the text `code: message`,
/// and the error object of the HTTP API (`code`, `message`, the details,
/// `retry_after_secs`) under `_meta["wasmward/error"]`. There is no
/// `structuredContent`: it would have to match the tool's `outputSchema`
/// (the TypeScript SDK validates it even on errors), and that schema
/// describes the success value.
pub fn failure(e: &ApiError) -> CallToolResult {
    // The message says when to retry (`retry in N s`); the delay is not
    // repeated in the text.
    let text = format!("{}: {}", e.code, e.message);
    let error = e.body()["error"].as_object().cloned().unwrap_or_default();
    let mut meta = serde_json::Map::new();
    meta.insert(ERROR_META_KEY.into(), Value::Object(error));
    let mut r = CallToolResult::error(vec![ContentBlock::text(text)]);
    r.meta = Some(rmcp::model::MetaObject(meta));
    r
}

/// Methods rmcp decodes into typed requests: one that reaches
/// `on_custom_request` had params rmcp could not decode.
const TYPED_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
];

/// Why the params of a known method did not decode (JSON-RPC -32602), or
/// `None` for a method that is not known (-32601).
pub fn invalid_params(method: &str, params: Option<&Value>) -> Option<String> {
    if !TYPED_METHODS.contains(&method) {
        return None;
    }
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    if method != "tools/call" {
        return Some(format!("Invalid params for {method}: they do not match the MCP schema of {method}"));
    }
    let why = match params {
        None => "params are missing; send {\"name\": \"tool\", \"arguments\": {...}}".to_string(),
        Some(p) if !p.is_object() => format!("params must be an object {{\"name\", \"arguments\"}}, not {}", kind(p)),
        Some(p) => match (p.get("name"), p.get("arguments")) {
            (Some(n), _) if !n.is_string() => format!("params.name must be a string, not {}", kind(n)),
            (None, _) => "params.name (the tool to call) is missing".to_string(),
            (_, Some(a)) if !a.is_object() && !a.is_null() => {
                format!("params.arguments must be a JSON object of named arguments, such as {{\"text\": \"hi\"}}, not {}", kind(a))
            }
            _ => "params do not match the MCP schema of tools/call".to_string(),
        },
    };
    Some(format!("Invalid params for tools/call: {why}"))
}

/// While a call waits for approval, `notifications/progress` to a client
/// that sent a `progressToken`: at once, then every `[gate]
/// approval_progress_interval_ms`, with `progress`/`total` in seconds and
/// the message `waiting for approval <id> (N s left)`. Clients that reset
/// their request timeout on progress (TypeScript SDK
/// `resetTimeoutOnProgress`) keep waiting. `send` delivers one
/// notification without blocking.
pub fn approval_progress(token: ProgressToken, send: impl Fn(ProgressNotificationParam) + Send + Sync + 'static) -> crate::gate::Progress {
    Arc::new(move |p: &crate::gate::WaitProgress| {
        send(ProgressNotificationParam::new(token.clone(), p.waited.as_secs_f64()).with_total(p.timeout.as_secs_f64()).with_message(p.message()));
    })
}

/// [`approval_progress`] through rmcp's peer.
fn peer_progress(peer: Peer<RoleServer>, token: ProgressToken) -> crate::gate::Progress {
    approval_progress(token, move |param| {
        let peer = peer.clone();
        tokio::spawn(async move {
            if let Err(e) = peer.notify_progress(param).await {
                tracing::debug!(error = %e, "could not send an approval progress notification");
            }
        });
    })
}

/// Why a call's wait for its result ended early.
pub const CANCELLED_BY_CLIENT: &str = "the caller cancelled it (MCP notifications/cancelled, or its session ended)";

/// One `tools/call`, whichever way it came: the call, its result or its
/// failure as an `isError` result. `ct` firing (`notifications/cancelled`,
/// the session ending) cancels the call: the guest is stopped and the call
/// recorded `cancelled`; while the server drains, calls run on until the
/// grace period ends. `in_task` runs the call in this task (see
/// [`Server::call_in_task`]).
pub async fn tool_call(
    server: &Arc<Server>,
    caller: Option<Caller>,
    name: String,
    arguments: Option<rmcp::model::JsonObject>,
    progress: Option<crate::gate::Progress>,
    ct: &tokio_util::sync::CancellationToken,
    in_task: bool,
) -> CallToolResult {
    let Some(caller) = caller else {
        return failure(&ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "unauthorized", "no authenticated caller on this request"));
    };
    let args = Value::Object(arguments.unwrap_or_default());
    let cancel = Cancel::new();
    let call = async {
        if in_task {
            server.call_in_task(caller, name, args, cancel.clone(), progress).await
        } else {
            server.call_with_progress(caller, name, args, Some(cancel.clone()), progress).await
        }
    };
    tokio::pin!(call);
    let outcome = tokio::select! {
        r = &mut call => r,
        _ = ct.cancelled() => {
            if !server.draining() {
                cancel.cancel(CANCELLED_BY_CLIENT);
            }
            call.await
        }
    };
    match outcome {
        Ok(v) => success(v),
        Err(e) => failure(&e),
    }
}

impl ServerHandler for McpHandler {
    /// rmcp hands over a request whose params it could not decode as a
    /// custom request: a known method gets -32602 (invalid params) with
    /// what is wrong, an unknown one -32601.
    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, McpError> {
        match invalid_params(&request.method, request.params.as_ref()) {
            Some(message) => Err(McpError::invalid_params(message, None)),
            None => Err(McpError::new(rmcp::model::ErrorCode::METHOD_NOT_FOUND, request.method, None)),
        }
    }

    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().enable_tool_list_changed().build())
            .with_server_info(Implementation::new("wasmward", env!("CARGO_PKG_VERSION")))
            .with_instructions("Tools run as sandboxed WebAssembly components. Results are under structuredContent.result; failures are isError results whose text is `code: message`, with the error object under _meta[\"wasmward/error\"].")
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.server.peers.add(context.peer);
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let Some(caller) = self.caller(&context) else {
            return Err(McpError::invalid_request("no authenticated caller on this request", None));
        };
        let tools = self.server.list_tools(&caller).iter().map(mcp_tool).collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let progress = context.meta.get_progress_token().map(|t| peer_progress(context.peer.clone(), t));
        let caller = self.caller(&context);
        Ok(tool_call(&self.server, caller, request.name.to_string(), request.arguments, progress, &context.ct, false).await.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_params_of_known_methods_are_invalid_params() {
        let cases: &[(&str, Option<Value>, Option<&str>)] = &[
            ("tools/call", Some(json!({"name": "t.f", "arguments": [1, 2]})), Some("params.arguments must be a JSON object of named arguments, such as {\"text\": \"hi\"}, not an array")),
            ("tools/call", Some(json!({"name": "t.f", "arguments": "x"})), Some("not a string")),
            ("tools/call", Some(json!({"name": 5})), Some("params.name must be a string, not a number")),
            ("tools/call", Some(json!({"arguments": {}})), Some("params.name (the tool to call) is missing")),
            ("tools/call", Some(json!([1])), Some("params must be an object")),
            ("tools/call", None, Some("params are missing")),
            ("tools/list", Some(json!({"cursor": 5})), Some("Invalid params for tools/list")),
            ("no/such/method", Some(json!({})), None),
        ];
        for (method, params, want) in cases {
            let got = invalid_params(method, params.as_ref());
            match want {
                Some(w) => assert!(got.as_deref().is_some_and(|g| g.contains(w)), "{method} {params:?}: {got:?}"),
                None => assert_eq!(got, None, "{method}"),
            }
        }
    }

    #[test]
    fn results_wrap_the_value_and_render_text() {
        let r = success(json!("Hello, A!"));
        assert_eq!(r.structured_content, Some(json!({"result": "Hello, A!"})));
        assert_eq!(r.content[0].as_text().unwrap().text, "Hello, A!");
        assert_eq!(r.is_error, Some(false));
        let r = success(json!({"words": 2}));
        assert!(r.content[0].as_text().unwrap().text.contains("\"words\": 2"));
        let e = ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down");
        let e = ApiError { retry_after: Some(std::time::Duration::from_millis(1500)), ..e };
        let r = failure(&e);
        assert_eq!(r.is_error, Some(true));
        assert_eq!(r.content[0].as_text().unwrap().text, "rate_limited: slow down");
        assert_eq!(r.structured_content, None, "an error carries no structuredContent: it would not match the outputSchema");
        let meta = &r.meta.as_ref().unwrap().0[ERROR_META_KEY];
        assert_eq!(meta, &json!({"code": "rate_limited", "message": "slow down", "retry_after_secs": 2}));
        let wire = serde_json::to_value(&r).unwrap();
        assert_eq!(wire["_meta"]["wasmward/error"]["code"], "rate_limited", "{wire}");
        assert!(wire.get("structuredContent").is_none(), "{wire}");
        // Details (the tool's `err` value) travel in the meta object too.
        let r = failure(&ApiError::from(&crate::error::CallError::ToolError { value: json!({"reason": "x"}) }));
        let meta = &r.meta.as_ref().unwrap().0[ERROR_META_KEY];
        assert_eq!((meta["code"].as_str(), &meta["value"]), (Some("tool_error"), &json!({"reason": "x"})));
    }
}
