//! Serves tools to agents: MCP over stdio and streamable HTTP ([`mcp`]),
//! the HTTP JSON API ([`http`]), metrics ([`metrics`]), hot reload
//! ([`reload`]). Every call from every protocol goes through
//! [`Server::call`]: gate → `Host::call` (runtime → sandbox → audit) →
//! output gate. Nothing else calls the host.

pub mod cli;
pub mod error;
pub mod formats;
pub mod http;
pub mod mcp;
pub mod metrics;
pub mod names;
pub mod oauth;
pub mod reload;
pub mod run;
pub mod stdio;
pub mod unauth;

use crate::config::{Config, ServerConfig};
use crate::error::CallError;
use crate::gate::{self, ApprovalNeed, Approvals, Caller, Gate, Refusal, TokenKey};
use crate::host::Host;
use crate::runtime::Cancel;
use axum::http::StatusCode;
pub use error::ApiError;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `[server]` checks that need no network.
pub fn validate_server_config(s: &ServerConfig) -> Result<(), String> {
    s.listen.parse::<std::net::SocketAddr>().map_err(|e| {
        format!("[server] listen = {:?} is not an address: {e}; use IP:PORT such as \"127.0.0.1:8080\"", s.listen)
    })?;
    if s.max_request_body_bytes < 1024 || s.max_request_body_bytes > (1 << 30) {
        return Err(format!("[server] max_request_body_bytes = {} is out of range; use 1024..=1073741824", s.max_request_body_bytes));
    }
    if s.max_sessions == 0 {
        return Err("[server] max_sessions = 0 would refuse every MCP session; use 1 or more".into());
    }
    if let Some(n) = s.max_sessions_per_token.filter(|n| *n == 0 || *n > s.max_sessions) {
        return Err(format!(
            "[server] max_sessions_per_token = {n} is out of range; use 1..={} (at most max_sessions)",
            s.max_sessions
        ));
    }
    if s.session_idle_timeout_ms < 1000 || s.session_idle_timeout_ms > 86_400_000 {
        return Err(format!("[server] session_idle_timeout_ms = {} is out of range; use 1000..=86400000 (1 s to 24 h)", s.session_idle_timeout_ms));
    }
    if s.unauthenticated_requests_per_minute == 0 || s.unauthenticated_requests_per_minute > 1_000_000 {
        return Err(format!("[server] unauthenticated_requests_per_minute = {} is out of range; use 1..=1000000", s.unauthenticated_requests_per_minute));
    }
    if s.unauthenticated_burst == 0 || s.unauthenticated_burst > 1_000_000 {
        return Err(format!("[server] unauthenticated_burst = {} is out of range; use 1..=1000000", s.unauthenticated_burst));
    }
    for (key, list) in [("cors_origins", &s.cors_origins), ("allowed_origins", &s.allowed_origins)] {
        for (i, o) in list.iter().enumerate() {
            if o != "null" && !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(format!("[server] {key}[{i}] = {o:?} is not an origin; write scheme://host[:port], e.g. \"https://app.example.com\""));
            }
        }
    }
    names::validate_separator(&s.tool_name_separator)?;
    for (i, h) in s.allowed_hosts.iter().enumerate() {
        if h.is_empty() || h.contains('/') || h.contains(' ') {
            return Err(format!("[server] allowed_hosts[{i}] = {h:?} is not a host name; write a name or name:port, e.g. \"localhost\""));
        }
    }
    Ok(())
}

/// A tool function as listed to agents.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolView {
    /// The canonical (dotted) name.
    pub name: String,
    /// The name MCP `tools/list` and `/v1/tools?format=openai|anthropic`
    /// show: valid for the model APIs (see [`names`]).
    pub mcp_name: String,
    pub description: Option<String>,
    pub input_schema: Value,
    pub output_schema: Value,
}

/// Shared state of a running server.
pub struct Server {
    pub host: Arc<Host>,
    gate: RwLock<Arc<Gate>>,
    pub approvals: Approvals,
    pub metrics: metrics::Metrics,
    pub tokens: TokenKey,
    pub peers: mcp::Peers,
    /// Whether the admin endpoint is served (approvals can be decided).
    approver_available: AtomicBool,
    pub config_path: PathBuf,
    /// Set when shutdown begins: new calls are refused.
    draining: AtomicBool,
    /// Cancelled when the shutdown grace period is over.
    stop_calls: CancellationToken,
    /// Refusals before authentication, aggregated per source.
    pub unauthenticated: unauth::Unauthenticated,
    /// Every accepted spelling of the loaded functions.
    names: names::Cache,
    /// `[server.oauth]`: JWT access tokens (read at start; restart to change).
    pub oauth: Option<oauth::OAuth>,
}

/// Counts a call task in flight (for shutdown) from before it is spawned
/// until it has recorded everything.
struct CallGuard(Arc<Server>);

impl CallGuard {
    fn enter(server: Arc<Server>) -> CallGuard {
        server.metrics.enter();
        CallGuard(server)
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.metrics.leave();
    }
}

impl Server {
    /// Opens the host (loading every tool) and the token key.
    pub async fn open(config_path: PathBuf) -> anyhow::Result<Arc<Server>> {
        let cfg = Config::load(&config_path)?;
        let gate = Gate::new(&cfg.gate).map_err(|m| anyhow::anyhow!("{}: {m}", cfg.source))?;
        let tokens = TokenKey::open_or_create(&cfg.resolve_path(&cfg.gate.token_key)).map_err(|m| anyhow::anyhow!("{}: [gate] token_key: {m}", cfg.source))?;
        let cfg_server = cfg.server.clone();
        let oauth = match &cfg.server.oauth {
            Some(o) => {
                let tls = cfg.runtime.tls_config().map_err(|m| anyhow::anyhow!("{}: {m}", cfg.source))?;
                Some(oauth::OAuth::open(o.clone(), &cfg.base_dir, tls).await.map_err(|m| anyhow::anyhow!("{}: {m}", cfg.source))?)
            }
            None => None,
        };
        let host = Host::open(cfg).await?;
        Ok(Arc::new(Server {
            host: Arc::new(host),
            gate: RwLock::new(Arc::new(gate)),
            approvals: Approvals::default(),
            metrics: metrics::Metrics::default(),
            tokens,
            peers: mcp::Peers::default(),
            approver_available: AtomicBool::new(false),
            config_path,
            draining: AtomicBool::new(false),
            stop_calls: CancellationToken::new(),
            unauthenticated: unauth::Unauthenticated::new(&cfg_server),
            names: names::Cache::default(),
            oauth,
        }))
    }

    pub fn gate(&self) -> Arc<Gate> {
        self.gate.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_approver_available(&self, yes: bool) {
        self.approver_available.store(yes, Ordering::SeqCst);
    }

    /// The names of the functions loaded now.
    pub fn names(&self) -> Arc<names::Index> {
        self.names.get(self.host.tools(), &self.host.config().server.tool_name_separator)
    }

    /// Every function `caller` may call, in name order.
    pub fn list_tools(&self, caller: &Caller) -> Vec<ToolView> {
        let gate = self.gate();
        let names = self.names();
        let mut out = Vec::new();
        for tool in self.host.tools().values() {
            for f in &tool.loaded.functions {
                if gate.visible(caller, &f.name) {
                    out.push(ToolView {
                        name: f.name.clone(),
                        mcp_name: names.listed(&f.name),
                        description: f.description.clone(),
                        input_schema: f.input_schema.clone(),
                        output_schema: f.output_schema.clone(),
                    });
                }
            }
        }
        out
    }

    /// Why a call to `name` needs approval, if it does, and what its
    /// approver is shown: the function's description, the tool's
    /// effective policy and limits, and the audit log's redactor for the
    /// arguments.
    fn approval_need(&self, name: &str, progress: Option<gate::Progress>) -> ApprovalNeed {
        let cfg = self.host.config();
        let tool_name = name.split_once('.').map_or(name, |(t, _)| t);
        let tools = self.host.tools();
        let tool = tools.get(tool_name);
        let mut reason = None;
        if cfg.tools.iter().any(|t| t.name == tool_name && t.require_approval) {
            reason = Some(format!("[[tool]] {tool_name} has require_approval = true"));
        } else if cfg.gate.approve_process {
            if let Some(t) = tool {
                let imports_process = t.loaded.imports.iter().any(|i| i.starts_with("wasmward:tool/process"));
                if t.plan.policy.subprocess.allowed && imports_process {
                    reason = Some(format!("{tool_name} may run processes and [gate] approve_process = true"));
                }
            }
        }
        let mut shown = gate::ApprovalContext::default();
        if reason.is_some() {
            if let Some(t) = tool {
                shown.description = t.loaded.functions.iter().find(|f| f.name == name).and_then(|f| f.description.clone());
                shown.policy = gate::PolicySummary::of(&t.plan.policy, &t.plan.limits);
            }
            // The audit settings were validated at load; the built-in rules
            // apply whatever happens.
            shown.redactor = cfg.audit.redactor().unwrap_or_else(|e| {
                tracing::error!(error = %e, "[audit] redaction settings unusable; approvers see arguments with the built-in redaction only");
                crate::audit::Redactor::default()
            });
        }
        let id = if reason.is_some() { gate::Approvals::new_id() } else { String::new() };
        ApprovalNeed { reason, id, approver_available: self.approver_available.load(Ordering::SeqCst), shown, progress }
    }

    /// Records a gate event; a failed audit write is logged (the request is
    /// refused anyway).
    pub async fn audit_gate(&self, event: crate::audit::AuditEvent) {
        if let Err(e) = self.host.audit().record(vec![event]).await {
            tracing::error!(error = %e, "could not audit a gate event");
        }
    }

    /// The metrics label for a requested name: the name if it is a loaded
    /// function, else `<unknown>`, so callers cannot mint label values.
    pub fn metric_label(&self, name: &str) -> String {
        match self.names().resolve(name) {
            names::Resolved::Function(f) if f == name => f,
            _ => names::UNKNOWN.to_string(),
        }
    }

    /// Records a refusal in the audit log and metrics, and returns it as
    /// the caller's error. `tool` is a canonical name or a fixed label.
    pub async fn refuse(&self, r: &Refusal, tool: &str, caller: &str) -> ApiError {
        self.refuse_call(r, tool, caller, &crate::audit::new_call_id()).await
    }

    /// [`Server::refuse`] of one call: the gate event gets the call's id.
    async fn refuse_call(&self, r: &Refusal, tool: &str, caller: &str, call_id: &str) -> ApiError {
        tracing::info!(tool, caller, stage = r.stage.as_str(), reason = %r.message, "gate refused a request");
        self.metrics.record_refusal(&self.metric_label(tool), r.stage.as_str());
        self.audit_gate_call(call_id, r.event(tool, caller)).await;
        ApiError::from(r)
    }

    /// Records a gate event of one call under the call's id (the one its
    /// `call` row gets), so `audit tail` links them.
    async fn audit_gate_call(&self, call_id: &str, event: crate::audit::AuditEvent) {
        if let Err(e) = self.host.audit().record_with_id(call_id, vec![event]).await {
            tracing::error!(error = %e, "could not audit a gate event");
        }
    }

    /// Whether shutdown has begun (new calls are refused).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Starts shutdown: new calls are refused with 503; calls in flight go on.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Cancels every call still in flight; each is recorded `cancelled`.
    pub fn cancel_calls(&self) {
        self.stop_calls.cancel();
    }

    /// Waits until no call task is left or `deadline` passes; true if none is.
    pub async fn wait_calls(&self, deadline: Instant) -> bool {
        while self.metrics.in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.metrics.in_flight() == 0
    }

    /// One call, whatever the protocol: name resolution, gate, host, output
    /// gate. It runs in its own task, so it finishes and is recorded
    /// whatever happens to the caller's request (a disconnect drops only
    /// the wait for it). `cancel` stops it (MCP `notifications/cancelled`);
    /// so does server shutdown after `shutdown_grace_ms`.
    pub async fn call(self: &Arc<Self>, caller: Caller, name: String, args: Value, cancel: Option<Cancel>) -> Result<Value, ApiError> {
        self.call_with_progress(caller, name, args, cancel, None).await
    }

    /// [`Server::call`] whose approval wait, if any, reports to `progress`
    /// (MCP `notifications/progress` for a request with a `progressToken`).
    pub async fn call_with_progress(self: &Arc<Self>, caller: Caller, name: String, args: Value, cancel: Option<Cancel>, progress: Option<gate::Progress>) -> Result<Value, ApiError> {
        if self.draining() {
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down and takes no new calls; retry on another instance or after it restarts"));
        }
        let guard = CallGuard::enter(self.clone());
        let task = tokio::spawn(Self::guarded_call(guard, caller, name, args, cancel.unwrap_or_default(), progress));
        match task.await {
            Ok(r) => r,
            Err(e) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "host_error", format!("the call task failed: {e}"))),
        }
    }

    /// [`Server::call_with_progress`] in the caller's own task, without a
    /// task of its own: for a caller that is itself a task that runs until
    /// the call ends whatever happens to the client (the MCP stdio fast
    /// path), so the call is finished and recorded all the same.
    pub async fn call_in_task(self: &Arc<Self>, caller: Caller, name: String, args: Value, cancel: Cancel, progress: Option<gate::Progress>) -> Result<Value, ApiError> {
        if self.draining() {
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down and takes no new calls; retry on another instance or after it restarts"));
        }
        Self::guarded_call(CallGuard::enter(self.clone()), caller, name, args, cancel, progress).await
    }

    /// A call counted in flight by `guard` until it has recorded
    /// everything; server shutdown past the grace period cancels it.
    async fn guarded_call(guard: CallGuard, caller: Caller, name: String, args: Value, cancel: Cancel, progress: Option<gate::Progress>) -> Result<Value, ApiError> {
        let server = guard.0.clone();
        let work = server.run_call(&caller, &name, &args, &cancel, progress);
        tokio::pin!(work);
        let result = tokio::select! {
            r = &mut work => r,
            _ = server.stop_calls.cancelled() => {
                cancel.cancel("the server shut down before the call finished ([server] shutdown_grace_ms)");
                work.await
            }
        };
        drop(guard);
        result
    }

    /// The body of [`Server::call`], in the call's own task.
    async fn run_call(&self, caller: &Caller, requested: &str, args: &Value, cancel: &Cancel, progress: Option<gate::Progress>) -> Result<Value, ApiError> {
        let who = caller.audit_name();
        let gate = self.gate();
        let name = match self.canonical(&gate, caller, requested) {
            Ok(n) => n,
            Err(e) => return Err(self.unknown_name(&gate, caller, &who, requested, e).await),
        };
        let name = name.as_str();
        // One id for the call's gate events and its `call` row.
        let call_id = crate::audit::new_call_id();
        let need = self.approval_need(name, progress);
        let admit = gate.admit(&self.approvals, caller, name, args, &need);
        let admitted = tokio::select! {
            r = admit => match r {
                Ok(a) => a,
                Err(r) => return Err(self.refuse_call(&r, name, &who, &call_id).await),
            },
            _ = cancel.cancelled() => {
                let mut reason = format!("cancelled before it ran: {}", cancel.reason());
                if need.reason.is_some() {
                    reason.push_str(&format!(" (approval {}, withdrawn)", need.id));
                }
                self.audit_gate_call(&call_id, gate::gate_event(name, &who, gate::Stage::Approval, "deny", &reason)).await;
                return Err(ApiError::from(&CallError::Cancelled { reason: cancel.reason() }));
            }
        };
        if let Some(gate::Approved { id, approver }) = &admitted.approved {
            let reason = format!("approved by {approver} (approval {id})");
            self.audit_gate_call(&call_id, gate::gate_event(name, &who, gate::Stage::Approval, "allow", &reason)).await;
        }
        let started = Instant::now();
        let (tool, function) = name.split_once('.').unwrap_or((name, ""));
        let record = self.host.call_tool_linked(tool, function, args, &who, Some(cancel.clone()), &call_id, admitted.approved.as_ref().map(|a| a.id.as_str())).await;
        let outcome = record.outcome.as_ref().map_or_else(|e| e.code(), |_| "ok");
        let denials = record.denials.iter().map(|d| (d.kind.as_str(), 1)).chain(record.denials_summarized.iter().map(|s| (s.kind.as_str(), s.count)));
        self.metrics.record_call(name, outcome, started.elapsed(), denials);
        if !record.stdout.is_empty() || !record.stderr.is_empty() {
            let (stdout, stderr) = (gate.redact_text(&record.stdout), gate.redact_text(&record.stderr));
            tracing::debug!(tool = name, stdout = %stdout, stderr = %stderr, "guest output");
        }
        match record.outcome {
            Ok(v) => match gate.filter_output(v) {
                Ok((v, stripped)) => {
                    if stripped > 0 {
                        self.audit_gate(gate::gate_event(name, &who, gate::Stage::Content, "strip", &format!("{stripped} string(s) of the result matched blocked_output_patterns"))).await;
                    }
                    Ok(v)
                }
                Err(r) => Err(self.refuse(&r, name, &who).await),
            },
            Err(e) => Err(self.filter_error(&gate, name, &who, &e).await),
        }
    }

    /// A call error as the agent will see it, through the same output policy
    /// as results: the tool's `max_output_bytes` on its `err` value, then
    /// `blocked_output_patterns` / `output_action` and `[gate]
    /// max_output_bytes` over the message and every detail (trap text with
    /// a guest's panic message, the `err` value).
    async fn filter_error(&self, gate: &Gate, name: &str, who: &str, e: &CallError) -> ApiError {
        // The tool's own `err` value, also when it came after a refusal
        // (`denied` carries it as its cause).
        let tool_err = match e {
            CallError::Denied { cause, .. } => cause.as_ref(),
            other => other,
        };
        let mut replaced = None;
        if let CallError::ToolError { value } = tool_err {
            let tool = name.split_once('.').map_or(name, |(t, _)| t);
            let limit = self.host.tools().get(tool).map(|t| t.plan.limits.max_output_bytes);
            let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
            if let Some(limit) = limit.filter(|l| size > *l) {
                let reason = format!("the tool's error value is {size} bytes, over max_output_bytes = {limit}; it was not returned");
                self.audit_gate(gate::gate_event(name, who, gate::Stage::Content, "deny", &reason)).await;
                let cut = CallError::OutputLimit { size: size as u64, limit: limit as u64 };
                replaced = Some(e.clone().with_cause(cut));
            }
        }
        let mut api = ApiError::from(replaced.as_ref().unwrap_or(e));
        let returned = json!({"message": api.message, "detail": api.detail});
        match gate.filter_returned(returned, "error") {
            Ok((v, stripped)) => {
                if stripped > 0 {
                    let reason = format!("{stripped} string(s) of the {} error matched blocked_output_patterns", api.code);
                    self.audit_gate(gate::gate_event(name, who, gate::Stage::Content, "strip", &reason)).await;
                    if let Value::Object(mut o) = v {
                        if let Some(Value::String(m)) = o.remove("message") {
                            api.message = m;
                        }
                        api.detail = o.remove("detail").filter(|d| !d.is_null());
                    }
                }
                api
            }
            Err(r) => self.refuse(&r, name, who).await,
        }
    }

    /// The canonical name for `requested`, or the error to return; an
    /// error lists only what `caller` may see.
    fn canonical(&self, gate: &Gate, caller: &Caller, requested: &str) -> Result<String, CallError> {
        let tools = self.host.tools();
        let visible_tools = || -> Vec<&str> { tools.keys().filter(|t| tools[*t].loaded.functions.iter().any(|f| gate.visible(caller, &f.name))).map(String::as_str).collect() };
        let unknown_tool = |tool: &str| {
            let visible = visible_tools();
            let hint = if visible.is_empty() { "this caller may call no tool".to_string() } else { format!("tools: {}", visible.join(", ")) };
            CallError::UnknownTool { tool: names::capped(tool), hint }
        };
        match self.names().resolve(requested) {
            names::Resolved::Function(n) => Ok(n),
            names::Resolved::UnknownTool => Err(unknown_tool(requested.split_once('.').map_or(requested, |(t, _)| t))),
            // A tool the caller may call nothing of is unknown to it: its
            // functions are not listed, nor is it said to exist.
            names::Resolved::UnknownFunction { tool, .. } if !visible_tools().contains(&tool.as_str()) => {
                Err(unknown_tool(requested.split_once('.').map_or(requested, |(t, _)| t)))
            }
            names::Resolved::UnknownFunction { tool, candidates } => {
                let available: Vec<&str> = tools.get(&tool).map(|t| t.loaded.functions.iter().map(|f| f.name.as_str()).filter(|n| gate.visible(caller, n)).collect()).unwrap_or_default();
                let function = if candidates.len() > 1 {
                    let seen: Vec<&str> = candidates.iter().map(String::as_str).filter(|n| gate.visible(caller, n)).collect();
                    format!("{} (it fits more than one function{}; use the full name)", names::capped(requested), if seen.is_empty() { String::new() } else { format!(": {}", seen.join(", ")) })
                } else {
                    names::capped(requested)
                };
                Err(CallError::UnknownFunction { tool, function, available: available.join(", ") })
            }
        }
    }

    /// A name that is no function: the caller's rate limit applies, and the
    /// call is recorded under fixed labels (never the caller's string).
    async fn unknown_name(&self, gate: &Gate, caller: &Caller, who: &str, requested: &str, e: CallError) -> ApiError {
        if let Err(r) = gate.check_rate(caller, "", Instant::now()) {
            return self.refuse(&r, names::UNKNOWN, who).await;
        }
        let tool = match &e {
            CallError::UnknownFunction { tool, .. } => tool.clone(),
            _ => names::UNKNOWN.to_string(),
        };
        tracing::info!(caller = who, requested = %names::capped(requested), code = e.code(), "call to a name that is no function");
        let record = crate::runtime::CallRecord::failed(&tool, names::UNKNOWN, e.clone());
        self.metrics.record_call(names::UNKNOWN, e.code(), Duration::ZERO, std::iter::empty());
        if let Err(err) = self.host.audit().record(crate::host::call_events(&record, &json!({}), who)).await {
            tracing::error!(error = %err, "could not audit a call to an unknown name");
        }
        ApiError::from(&e)
    }

    /// Re-reads the config file, validates it fully (gate, tools compiled),
    /// then swaps it in. On error the old config keeps serving.
    pub async fn reload(&self) -> Result<(), String> {
        let cfg = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        let gate = Gate::new(&cfg.gate).map_err(|m| format!("{}: {m}", cfg.source))?;
        let key_path = cfg.resolve_path(&cfg.gate.token_key);
        if key_path != self.tokens.path() {
            tracing::warn!(old = %self.tokens.path().display(), new = %key_path.display(), "[gate] token_key changed; restart the server to use the new key");
        }
        if cfg.server.oauth.as_ref() != self.oauth.as_ref().map(|o| &o.cfg) {
            tracing::warn!("[server.oauth] changed; restart the server to use the new settings");
        }
        self.host.reload(cfg).await.map_err(|e| format!("{e:#}"))?;
        *self.gate.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(gate);
        tracing::info!(tools = self.host.tools().len(), "reloaded the config");
        self.peers.notify_tools_changed().await;
        Ok(())
    }

    /// `/healthz` body.
    pub fn health(&self) -> Value {
        let audit = self.host.audit().unavailable();
        let status = if audit.is_some() { "audit_unavailable" } else { "ok" };
        let mut body = json!({"status": status, "audit_error": audit, "tools": self.host.tools().len(), "in_flight": self.metrics.in_flight()});
        if let Some(o) = &self.oauth {
            body["oauth"] = o.health();
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_keys_are_validated_with_a_fix() {
        let ok = ServerConfig::default();
        assert!(validate_server_config(&ok).is_ok());
        assert_eq!(ok.sessions_per_token(), 8);
        assert_eq!(ServerConfig { max_sessions: 3, ..ServerConfig::default() }.sessions_per_token(), 3);
        let cases: Vec<(ServerConfig, &str)> = vec![
            (ServerConfig { max_sessions_per_token: Some(0), ..ServerConfig::default() }, "max_sessions_per_token = 0"),
            (ServerConfig { max_sessions: 4, max_sessions_per_token: Some(5), ..ServerConfig::default() }, "use 1..=4"),
            (ServerConfig { session_idle_timeout_ms: 10, ..ServerConfig::default() }, "session_idle_timeout_ms = 10"),
            (ServerConfig { unauthenticated_requests_per_minute: 0, ..ServerConfig::default() }, "unauthenticated_requests_per_minute = 0"),
            (ServerConfig { unauthenticated_burst: 0, ..ServerConfig::default() }, "unauthenticated_burst = 0"),
        ];
        for (cfg, needle) in cases {
            let e = validate_server_config(&cfg).unwrap_err();
            assert!(e.contains(needle) && e.contains("[server]"), "{e}");
        }
        let e = crate::config::Config::parse("[server]\nmax_session_per_token = 2\n", "w.toml", std::path::Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
