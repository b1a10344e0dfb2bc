//! The HTTP side: the JSON API under `/v1`, MCP streamable HTTP at `/mcp`,
//! `/healthz` and `/metrics`, behind Host validation (DNS rebinding),
//! `require_https`, CORS, bearer tokens and body limits.

use super::{names, unauth, ApiError, Server};
use crate::config::ServerConfig;
use crate::gate::{self, Caller};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AppState {
    pub server: Arc<Server>,
    pub cfg: Arc<ServerConfig>,
    sessions: Arc<LocalSessionManager>,
    owners: Arc<Mutex<SessionOwners>>,
}

/// Which token opened each MCP session, and sessions being opened now.
#[derive(Default)]
struct SessionOwners {
    by_session: HashMap<String, String>,
    opening: HashMap<String, usize>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body())).into_response();
        if let Some(d) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&gate::rate::retry_after_secs(d).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// The whole HTTP application. `ct` stops MCP sessions on shutdown.
pub fn router(server: Arc<Server>, cfg: ServerConfig, ct: CancellationToken) -> Router {
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(Duration::from_millis(cfg.session_idle_timeout_ms));
    let sessions = Arc::new(sessions);
    let origins: Vec<String> = cfg.cors_origins.iter().chain(&cfg.allowed_origins).cloned().collect();
    let mut mcp_cfg = StreamableHttpServerConfig::default()
        .with_cancellation_token(ct)
        .with_max_request_body_bytes(cfg.max_request_body_bytes)
        .with_allowed_origins(origins)
        .enforce_origin_validation();
    mcp_cfg = if cfg.allowed_hosts.is_empty() { mcp_cfg.disable_allowed_hosts() } else { mcp_cfg.with_allowed_hosts(cfg.allowed_hosts.clone()) };
    let factory_server = server.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(super::mcp::McpHandler::new(factory_server.clone(), super::mcp::Mode::Http)),
        sessions.clone(),
        mcp_cfg,
    );
    let state = AppState { server, cfg: Arc::new(cfg), sessions, owners: Arc::default() };
    let mcp = tower::Layer::layer(&middleware::from_fn_with_state(state.clone(), mcp_edges), mcp);

    // Two middleware calls per request, not one per check: `edge` around
    // the whole router (error shape, Host, HTTPS), `authenticate` around the
    // routes that need a token (it also applies the MCP session limits).
    // Each `from_fn` layer costs a clone of the service below it, boxed,
    // and a boxed future per request.
    let authed = Router::new()
        .route("/v1/tools", get(list_tools))
        .route("/v1/tools/{name}/call", post(call_tool))
        .route("/v1/admin/approvals", get(list_approvals))
        .route("/v1/admin/approvals/{id}/{decision}", post(decide_approval))
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let inner = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/.well-known/oauth-protected-resource", get(protected_resource))
        .route("/.well-known/oauth-protected-resource/{*path}", get(protected_resource))
        .merge(authed)
        .fallback(not_found)
        .with_state(state.clone());
    let checked = tower::Layer::layer(&middleware::from_fn_with_state(state.clone(), edge), inner);
    let mut app = Router::new().fallback_service(checked);
    if !state.cfg.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = state.cfg.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        let cors = tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("mcp-session-id"),
                header::HeaderName::from_static("mcp-protocol-version"),
                header::HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::HeaderName::from_static("mcp-session-id"), header::RETRY_AFTER]);
        app = app.layer(cors);
    }
    app
}

/// What every request passes first, in this order: the JSON error shape
/// around everything ([`json_errors`]), then the `Host` check
/// ([`check_host`]), then `require_https`.
async fn edge(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let resp = if let Some((e, events)) = check_host(&st, &req) {
        for event in events {
            st.server.audit_gate(event).await;
        }
        e.into_response()
    } else if let Some(refused) = require_https(&st, &req) {
        refused
    } else {
        next.run(req).await
    };
    json_errors(resp).await
}

/// DNS-rebinding protection: the `Host` must be one the operator listed.
/// The refusal, if any, and the audit events to record for it.
fn check_host(st: &AppState, req: &Request) -> Option<(ApiError, Vec<crate::audit::AuditEvent>)> {
    if st.cfg.allowed_hosts.is_empty() {
        return None;
    }
    let host: Option<std::borrow::Cow<'_, str>> = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(std::borrow::Cow::Borrowed)
        .or_else(|| req.uri().authority().map(|a| a.to_string().into()));
    match host {
        Some(h) if host_allowed(&st.cfg.allowed_hosts, &h) => None,
        other => {
            let e = ApiError::new(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                format!("Host {:?} is not in [server] allowed_hosts; add it there to serve this name", names::capped(&other.unwrap_or_default())),
            );
            // Before authentication: recorded in aggregate per source.
            let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
            let source = unauth::source_key(ip);
            st.server.metrics.record_http_refusal(&e.code);
            let events = st.server.unauthenticated.note_at(gate::Stage::Transport, &source, "host_not_allowed", &e.message, req.uri().path(), Instant::now());
            Some((e, events))
        }
    }
}

/// Records a refusal of the HTTP layer (an authenticated caller's, or
/// `anonymous`) in the audit log and metrics, and returns it.
async fn refuse_transport(st: &AppState, caller: Option<&Caller>, path: &str, e: ApiError) -> Response {
    let who = caller.map_or_else(|| "anonymous".to_string(), Caller::audit_name);
    tracing::info!(caller = %who, code = %e.code, reason = %e.message, "HTTP layer refused a request");
    st.server.metrics.record_http_refusal(&e.code);
    st.server.audit_gate(gate::gate_event(&names::capped(path), &who, gate::Stage::Transport, "deny", &format!("{}: {}", e.code, e.message))).await;
    e.into_response()
}

/// Whether a response body is JSON (an API error or a JSON-RPC message)
/// or an SSE stream.
fn is_json_or_sse(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        let ct = ct.trim_start().to_ascii_lowercase();
        ct.starts_with("application/json") || ct.starts_with("text/event-stream")
    })
}

/// The documented error for an error response that came without one
/// (rmcp's plain-text refusals, axum's rejections): a code by status, and
/// the original text.
pub fn error_for_status(status: StatusCode, text: &str) -> ApiError {
    let text = names::cap(text.trim(), 512);
    let said = if text.is_empty() { String::new() } else { format!(" ({text})") };
    // rmcp answers a POST body that is no JSON-RPC message with 415.
    if status == StatusCode::UNSUPPORTED_MEDIA_TYPE && text.starts_with("fail to deserialize") {
        return ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("the request body is not a JSON-RPC 2.0 message{said}"));
    }
    let (code, message) = match status.as_u16() {
        400 => ("bad_request", format!("the request is malformed{said}")),
        403 => ("forbidden", format!("the request was refused{said}")),
        404 => ("not_found", format!("not found{said}")),
        405 => ("method_not_allowed", format!("this endpoint does not take that method{said}")),
        406 => ("not_acceptable", format!("the Accept header does not allow what this endpoint sends{said}")),
        413 => ("body_too_large", format!("the request body is too large{said}")),
        415 => ("unsupported_media_type", format!("the request body is not what this endpoint takes{said}")),
        s if s < 500 => ("bad_request", format!("the request was refused{said}")),
        _ => ("internal_error", format!("the server failed to answer{said}")),
    };
    ApiError::new(status, code, message)
}

/// Every error response on every route has the documented JSON shape:
/// anything else (a plain-text or empty error body) is replaced by
/// [`error_for_status`], headers such as `Allow` kept.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json_or_sse(resp.headers()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let fresh = error_for_status(status, &text).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (fresh_parts, fresh_body) = fresh.into_parts();
    parts.status = fresh_parts.status;
    for (k, v) in &fresh_parts.headers {
        parts.headers.insert(k, v.clone());
    }
    Response::from_parts(parts, fresh_body)
}

/// Counts an MCP POST response until its body is sent or dropped.
struct ResponseGuard(Arc<Server>);

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        self.0.metrics.mcp_response_done();
    }
}

/// `/mcp`, around rmcp: counts POST responses until they are sent (so
/// shutdown delivers the results of calls in flight before closing
/// sessions); gives rmcp's refusals the documented JSON shape and records
/// the `Origin` and body-size ones (gate events, stage `transport`); answers
/// a session DELETE with 204 No Content (what the SDKs expect).
async fn mcp_edges(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let origin = req.headers().get(header::ORIGIN).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let caller = req.extensions().get::<Caller>().cloned();
    let path = format!("/mcp{}", req.uri().path().trim_start_matches("/mcp"));
    let guard = (method == Method::POST).then(|| {
        st.server.metrics.mcp_response_started();
        ResponseGuard(st.server.clone())
    });
    let resp = next.run(req).await;
    let status = resp.status();
    if method == Method::DELETE && status == StatusCode::ACCEPTED {
        let (mut parts, _) = resp.into_parts();
        parts.status = StatusCode::NO_CONTENT;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    if (status == StatusCode::FORBIDDEN || status == StatusCode::PAYLOAD_TOO_LARGE) && !is_json_or_sse(resp.headers()) {
        let e = if status == StatusCode::PAYLOAD_TOO_LARGE {
            let limit = st.cfg.max_request_body_bytes;
            ApiError::new(status, "body_too_large", format!("request body is over [server] max_request_body_bytes = {limit}; send less, or raise the limit"))
        } else if let Some(o) = origin {
            ApiError::new(
                status,
                "origin_not_allowed",
                format!("Origin {:?} may not call /mcp; add it to [server] allowed_origins (or cors_origins) to allow it", names::capped(&o)),
            )
        } else {
            ApiError::new(status, "host_not_allowed", "the Host header was refused by the MCP transport; check [server] allowed_hosts")
        };
        return refuse_transport(&st, caller.as_ref(), &path, e).await;
    }
    match guard {
        None => resp,
        Some(guard) => {
            let (parts, body) = resp.into_parts();
            let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
                let _sending = &guard;
                chunk
            }));
            Response::from_parts(parts, body)
        }
    }
}

/// `host` (`name`, `name:port`, `[v6]:port`) against the allowed list: an
/// entry without a port matches any port.
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    let (name, port) = split_host(host.trim());
    allowed.iter().any(|a| {
        let (an, ap) = split_host(a);
        an.eq_ignore_ascii_case(name) && (ap.is_none() || ap == port)
    })
}

fn split_host(h: &str) -> (&str, Option<&str>) {
    if let Some(rest) = h.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, tail)) => (name, tail.strip_prefix(':')),
            None => (h, None),
        };
    }
    match h.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (h, None),
    }
}

/// `require_https`: the refusal of a request that did not come through
/// the TLS proxy, if it is one.
fn require_https(st: &AppState, req: &Request) -> Option<Response> {
    if st.cfg.require_https && req.uri().path() != "/healthz" {
        let proto = req.headers().get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !proto.eq_ignore_ascii_case("https") {
            return Some(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "https_required",
                    "this server requires HTTPS ([server] require_https = true); connect through the TLS proxy that sets X-Forwarded-Proto: https",
                )
                .into_response(),
            );
        }
    }
    None
}

/// Bearer token → `Caller` in the request extensions. Refusals are
/// rate-limited per source (429 past the burst) and audited in aggregate:
/// see [`unauth`].
async fn authenticate(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = bearer(req.headers()).unwrap_or("").to_string();
    match super::oauth::authenticate(&st.server, &token, gate::tokens::now_secs()).await {
        Ok(caller) => {
            // A JWT caller refused for want of a scope is told which (RFC 6750).
            let more = st.server.oauth.as_ref().map(|o| (o, o.needed_scopes(&st.server, &caller, req.uri().path())));
            if let Some(o) = &st.server.oauth {
                req = match o.mcp_step_up(&st.server, &caller, req, st.cfg.max_request_body_bytes).await {
                    Ok(r) => r,
                    Err(refused) => return refused,
                };
            }
            req.extensions_mut().insert(caller);
            let mut resp = limit_sessions(&st, req, next).await;
            if let Some((o, scopes)) = more.filter(|(_, s)| !s.is_empty() && resp.status() == StatusCode::FORBIDDEN) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, o.scope_challenge(&scopes));
            }
            resp
        }
        Err(e) => {
            let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
            let source = unauth::source_key(ip);
            let now = Instant::now();
            let u = &st.server.unauthenticated;
            let (refusal, key) = match u.take(&source, now) {
                Ok(()) => (gate::token_refusal(&e), unauth::reason_key(&e)),
                Err(wait) => (
                    gate::Refusal {
                        stage: gate::Stage::Token,
                        code: "rate_limited",
                        message: format!(
                            "too many unauthenticated requests from {source} ([server] unauthenticated_requests_per_minute); retry in {} s with a valid token",
                            gate::rate::retry_after_secs(wait)
                        ),
                        retry_after: Some(wait),
                    },
                    "rate_limited",
                ),
            };
            st.server.metrics.record_refusal(super::names::UNKNOWN, refusal.stage.as_str());
            for event in u.note(&source, key, &refusal.message, req.uri().path(), now) {
                st.server.audit_gate(event).await;
            }
            let mut resp = ApiError::from(&refusal).into_response();
            if let Some(o) = st.server.oauth.as_ref().filter(|_| resp.status() == StatusCode::UNAUTHORIZED) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, o.unauthorized_challenge(&e));
            }
            resp
        }
    }
}

/// RFC 9728 metadata, at the well-known path and under the resource's path.
async fn protected_resource(State(st): State<AppState>, req: Request) -> Response {
    let suffix = req.uri().path().trim_start_matches("/.well-known/oauth-protected-resource").trim_end_matches('/').to_string();
    match &st.server.oauth {
        Some(o) if suffix.is_empty() || suffix == o.cfg.resource_path() => Json(o.metadata()).into_response(),
        _ => not_found().await.into_response(),
    }
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, tok) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| tok.trim())
}

/// `max_sessions`: a new MCP session (a POST without `Mcp-Session-Id`)
/// is refused with 503 when the table is full, and with 429 when the
/// caller's token already holds `max_sessions_per_token`. Called by
/// [`authenticate`] once the caller is known.
async fn limit_sessions(st: &AppState, req: Request, next: Next) -> Response {
    if !(req.uri().path().starts_with("/mcp") && req.method() == Method::POST && !req.headers().contains_key("mcp-session-id")) {
        return next.run(req).await;
    }
    let live: HashSet<String> = st.sessions.sessions.read().await.keys().map(|k| k.to_string()).collect();
    let open = live.len();
    let caller = req.extensions().get::<Caller>().cloned();
    if open >= st.cfg.max_sessions {
        let e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_sessions",
            format!("{open} MCP sessions are open, the [server] max_sessions limit; close one (DELETE /mcp) or retry later"),
        );
        return refuse_transport(st, caller.as_ref(), "/mcp", e).await;
    }
    let owner = caller.as_ref().map(|c| c.token_id.clone().unwrap_or_else(|| c.name.clone())).unwrap_or_default();
    let cap = st.cfg.sessions_per_token();
    let refused = {
        let mut o = st.owners.lock().unwrap_or_else(|e| e.into_inner());
        o.by_session.retain(|id, _| live.contains(id));
        let held = o.by_session.values().filter(|v| **v == owner).count() + o.opening.get(&owner).copied().unwrap_or(0);
        if held >= cap {
            Some(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                format!("this token holds {held} MCP sessions, the [server] max_sessions_per_token = {cap} limit; close one (DELETE /mcp) or let it idle out"),
            ))
        } else {
            *o.opening.entry(owner.clone()).or_default() += 1;
            None
        }
    };
    if let Some(e) = refused {
        return refuse_transport(st, caller.as_ref(), "/mcp", e).await;
    }
    let opening = Opening { owners: st.owners.clone(), owner };
    let resp = next.run(req).await;
    if let Some(id) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
        let mut o = st.owners.lock().unwrap_or_else(|e| e.into_inner());
        o.by_session.insert(id.to_string(), opening.owner.clone());
    }
    drop(opening);
    resp
}

/// A session being opened, counted against its token until the response.
struct Opening {
    owners: Arc<Mutex<SessionOwners>>,
    owner: String,
}

impl Drop for Opening {
    fn drop(&mut self) {
        let mut o = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = o.opening.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                o.opening.remove(&self.owner);
            }
        }
    }
}

/// 200 when calls are accepted; 503 while the audit log cannot be written.
async fn healthz(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let body = st.server.health();
    let code = if body["status"] == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body))
}

async fn metrics(State(st): State<AppState>) -> Response {
    let text = st.server.metrics.render(st.server.host.audit().queue_depth(), st.server.host.tools().len());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint; see GET /v1/tools, POST /v1/tools/{name}/call, /mcp, /healthz, /metrics")
}

#[derive(serde::Deserialize)]
struct ListQuery {
    format: Option<String>,
}

/// `GET /v1/tools[?format=json|mcp|openai|anthropic]`: what the caller may
/// call, in the native `/v1` shape (snake_case) or the shape an API takes
/// (see [`super::formats`]).
async fn list_tools(State(st): State<AppState>, axum::Extension(caller): axum::Extension<Caller>, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let tools = st.server.list_tools(&caller);
    let list: Vec<Value> = match q.format.as_deref() {
        None | Some("json") => return Ok(Json(json!({ "tools": tools }))),
        Some("mcp") => tools.iter().map(|v| serde_json::to_value(super::mcp::mcp_tool(v)).unwrap_or(Value::Null)).collect(),
        Some("openai") => tools.iter().map(super::formats::openai_tool).collect(),
        Some("anthropic") => tools.iter().map(super::formats::anthropic_tool).collect(),
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("format={:?} is not known; use one of: {} (or leave it out for json)", super::names::capped(other), super::formats::FORMATS.join(", ")),
            ))
        }
    };
    Ok(Json(json!({ "tools": list })))
}

async fn call_tool(
    State(st): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, Response> {
    let limit = st.cfg.max_request_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => {
            let e = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is over [server] max_request_body_bytes = {limit} ({e}); send less, or raise the limit"),
            );
            return Err(refuse_transport(&st, Some(&caller), &format!("/v1/tools/{}/call", names::capped(&name)), e).await);
        }
    };
    call_with_body(st, caller, name, bytes).await.map_err(IntoResponse::into_response)
}

/// `{"result": ...}`, serialised straight from the result.
#[derive(serde::Serialize)]
struct Answer<'a> {
    result: &'a Value,
}

async fn call_with_body(st: AppState, caller: Caller, name: String, bytes: axum::body::Bytes) -> Result<Response, ApiError> {
    let args: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("request body is not valid JSON: {e}; send the arguments as a JSON object"))
        })?
    };
    if !args.is_object() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_arguments", "arguments must be a JSON object of named parameters, e.g. {\"name\": \"x\"}"));
    }
    // The call runs in its own task: a client that goes away does not stop
    // it, and it is recorded either way. `name` may be any spelling; the
    // server resolves it to the canonical one before the gate.
    let result = st.server.call(caller, name, args, None).await?;
    Ok(Json(Answer { result: &result }).into_response())
}

async fn admin(st: &AppState, caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.admin {
        return Ok(());
    }
    let e = gate::TokenError::NotAdmin { id: caller.token_id.clone().unwrap_or_default() };
    Err(st.server.refuse(&gate::token_refusal(&e), what, &caller.audit_name()).await)
}

async fn list_approvals(State(st): State<AppState>, axum::Extension(caller): axum::Extension<Caller>) -> Result<Json<Value>, ApiError> {
    admin(&st, &caller, "<approvals>").await?;
    Ok(Json(json!({ "pending": st.server.approvals.list() })))
}

async fn decide_approval(
    State(st): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((id, decision)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    admin(&st, &caller, "<approvals>").await?;
    let allow = match decision.as_str() {
        "allow" => true,
        "deny" => false,
        other => return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("unknown decision {other:?}; POST .../allow or .../deny"))),
    };
    let approver = caller.audit_name();
    let view = st.server.approvals.decide(&id, allow, &approver).map_err(|m| ApiError::new(StatusCode::NOT_FOUND, "unknown_approval", m))?;
    if !allow {
        // The waiting call records its own refusal; this records who decided.
        tracing::info!(id, tool = %view.tool, approver, "approval denied");
    }
    Ok(Json(json!({ "decided": view, "decision": decision, "approver": approver })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let allowed: Vec<String> = ["localhost", "127.0.0.1", "::1", "example.com:8443"].iter().map(|s| s.to_string()).collect();
        let cases = [
            ("localhost", true),
            ("localhost:8080", true),
            ("LOCALHOST:1", true),
            ("127.0.0.1:9", true),
            ("[::1]:8080", true),
            ("[::1]", true),
            ("example.com:8443", true),
            ("example.com", false),
            ("example.com:80", false),
            ("evil.com", false),
            ("localhost.evil.com", false),
            ("127.0.0.2:8080", false),
            ("", false),
        ];
        for (h, want) in cases {
            assert_eq!(host_allowed(&allowed, h), want, "{h}");
        }
    }

    #[test]
    fn plain_error_responses_get_a_code_by_status() {
        let cases: &[(u16, &str, u16, &str)] = &[
            (400, "Bad Request: Session ID is required", 400, "bad_request"),
            (404, "Not Found: Session not found", 404, "not_found"),
            (405, "", 405, "method_not_allowed"),
            (406, "Not Acceptable: Client must accept both", 406, "not_acceptable"),
            (413, "Payload Too Large", 413, "body_too_large"),
            (415, "Unsupported Media Type: Content-Type must be application/json", 415, "unsupported_media_type"),
            (415, "fail to deserialize request body expected value at line 1", 400, "invalid_json"),
            (422, "x", 422, "bad_request"),
            (500, "Encounter an error when create session", 500, "internal_error"),
        ];
        for (status, text, want_status, want_code) in cases {
            let e = error_for_status(StatusCode::from_u16(*status).unwrap(), text);
            assert_eq!((e.status.as_u16(), e.code.as_str()), (*want_status, *want_code), "{status} {text}");
            assert!(e.message.contains(text.trim()), "{}", e.message);
        }
        let long = "y".repeat(5000);
        assert!(error_for_status(StatusCode::BAD_REQUEST, &long).message.len() < 700);
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  ww1.a.b "));
        assert_eq!(bearer(&h), Some("ww1.a.b"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer x"));
        assert_eq!(bearer(&h), Some("x"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic x"));
        assert_eq!(bearer(&h), None);
    }
}
