//! The HTTP side: the JSON API under `/v1`, MCP streamable HTTP at `/mcp`,
//! `/healthz` and `/metrics`, behind Host validation (DNS rebinding),
//! `require_https`, CORS, bearer tokens and body limits.

use super::{unauth, ApiError, Server, ToolView};
use crate::config::ServerConfig;
use crate::gate::{self, Caller};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
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

    let authed = Router::new()
        .route("/v1/tools", get(list_tools))
        .route("/v1/tools/{name}/call", post(call_tool))
        .route("/v1/admin/approvals", get(list_approvals))
        .route("/v1/admin/approvals/{id}/{decision}", post(decide_approval))
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(state.clone(), limit_sessions))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/.well-known/oauth-protected-resource", get(protected_resource))
        .route("/.well-known/oauth-protected-resource/{*path}", get(protected_resource))
        .merge(authed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_https))
        .layer(middleware::from_fn_with_state(state.clone(), check_host));
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
    app.with_state(state)
}

/// DNS-rebinding protection: the `Host` must be one the operator listed.
async fn check_host(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if st.cfg.allowed_hosts.is_empty() {
        return next.run(req).await;
    }
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string).or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(h) if host_allowed(&st.cfg.allowed_hosts, &h) => next.run(req).await,
        other => ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            format!("Host {:?} is not in [server] allowed_hosts; add it there to serve this name", other.unwrap_or_default()),
        )
        .into_response(),
    }
}

/// `host` (`name`, `name:port`, `[v6]:port`) against the allowed list: an
/// entry without a port matches any port.
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let (name, port) = split_host(&host);
    allowed.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        let (an, ap) = split_host(&a);
        an == name && (ap.is_none() || ap == port)
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

async fn require_https(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if st.cfg.require_https && req.uri().path() != "/healthz" {
        let proto = req.headers().get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !proto.eq_ignore_ascii_case("https") {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "https_required",
                "this server requires HTTPS ([server] require_https = true); connect through the TLS proxy that sets X-Forwarded-Proto: https",
            )
            .into_response();
        }
    }
    next.run(req).await
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
            let mut resp = next.run(req).await;
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
/// caller's token already holds `max_sessions_per_token`.
async fn limit_sessions(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !(req.uri().path().starts_with("/mcp") && req.method() == Method::POST && !req.headers().contains_key("mcp-session-id")) {
        return next.run(req).await;
    }
    let live: HashSet<String> = st.sessions.sessions.read().await.keys().map(|k| k.to_string()).collect();
    let open = live.len();
    if open >= st.cfg.max_sessions {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_sessions",
            format!("{open} MCP sessions are open, the [server] max_sessions limit; close one (DELETE /mcp) or retry later"),
        )
        .into_response();
    }
    let owner = req.extensions().get::<Caller>().map(|c| c.token_id.clone().unwrap_or_else(|| c.name.clone())).unwrap_or_default();
    let cap = st.cfg.sessions_per_token();
    {
        let mut o = st.owners.lock().unwrap_or_else(|e| e.into_inner());
        o.by_session.retain(|id, _| live.contains(id));
        let held = o.by_session.values().filter(|v| **v == owner).count() + o.opening.get(&owner).copied().unwrap_or(0);
        if held >= cap {
            tracing::info!(token = %owner, held, "refused an MCP session: the token holds max_sessions_per_token");
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                format!("this token holds {held} MCP sessions, the [server] max_sessions_per_token = {cap} limit; close one (DELETE /mcp) or let it idle out"),
            )
            .into_response();
        }
        *o.opening.entry(owner.clone()).or_default() += 1;
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

/// OpenAI function names allow only `[a-zA-Z0-9_-]`: `.` becomes `__`.
pub fn openai_name(name: &str) -> String {
    name.replace('.', "__")
}

pub fn openai_function(v: &ToolView) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": openai_name(&v.name),
            "description": v.description.clone().unwrap_or_default(),
            "parameters": v.input_schema,
        }
    })
}

async fn list_tools(State(st): State<AppState>, axum::Extension(caller): axum::Extension<Caller>, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let tools = st.server.list_tools(&caller);
    match q.format.as_deref() {
        None | Some("mcp") | Some("json") => Ok(Json(json!({ "tools": tools }))),
        Some("openai") => Ok(Json(json!({ "tools": tools.iter().map(openai_function).collect::<Vec<_>>() }))),
        Some(other) => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", format!("format={other:?} is not known; use format=openai or leave it out"))),
    }
}

async fn call_tool(
    State(st): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let limit = st.cfg.max_request_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is over [server] max_request_body_bytes = {limit} ({e})"),
        )
    })?;
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
    Ok(Json(json!({ "result": result })))
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

    #[test]
    fn openai_names_are_valid() {
        let re = regex::Regex::new("^[a-zA-Z0-9_-]{1,64}$").unwrap();
        for n in ["text.greet", "text.analysis.word-stats"] {
            assert!(re.is_match(&openai_name(n)), "{n}");
        }
        assert_eq!(openai_name("text.analysis.word-stats"), "text__analysis__word-stats");
    }
}
