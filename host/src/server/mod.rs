//! Serves tools to agents: MCP over stdio and streamable HTTP ([`mcp`]),
//! the HTTP JSON API ([`http`]), metrics ([`metrics`]), hot reload
//! ([`reload`]). Every call from every protocol goes through
//! [`Server::call`]: gate → `Host::call` (runtime → sandbox → audit) →
//! output gate. Nothing else calls the host.

pub mod cli;
pub mod error;
pub mod http;
pub mod mcp;
pub mod metrics;
pub mod reload;
pub mod run;

use crate::config::{Config, ServerConfig};
use crate::gate::{self, ApprovalNeed, Approvals, Caller, Gate, Refusal, TokenKey};
use crate::host::Host;
pub use error::ApiError;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
    for (key, list) in [("cors_origins", &s.cors_origins), ("allowed_origins", &s.allowed_origins)] {
        for (i, o) in list.iter().enumerate() {
            if o != "null" && !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(format!("[server] {key}[{i}] = {o:?} is not an origin; write scheme://host[:port], e.g. \"https://app.example.com\""));
            }
        }
    }
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
    pub name: String,
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
}

impl Server {
    /// Opens the host (loading every tool) and the token key.
    pub async fn open(config_path: PathBuf) -> anyhow::Result<Arc<Server>> {
        let cfg = Config::load(&config_path)?;
        let gate = Gate::new(&cfg.gate).map_err(|m| anyhow::anyhow!("{}: {m}", cfg.source))?;
        let tokens = TokenKey::open_or_create(&cfg.resolve_path(&cfg.gate.token_key)).map_err(|m| anyhow::anyhow!("{}: [gate] token_key: {m}", cfg.source))?;
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
        }))
    }

    pub fn gate(&self) -> Arc<Gate> {
        self.gate.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_approver_available(&self, yes: bool) {
        self.approver_available.store(yes, Ordering::SeqCst);
    }

    /// Every function `caller` may call, in name order.
    pub fn list_tools(&self, caller: &Caller) -> Vec<ToolView> {
        let gate = self.gate();
        let mut out = Vec::new();
        for tool in self.host.tools().values() {
            for f in &tool.loaded.functions {
                if gate.visible(caller, &f.name) {
                    out.push(ToolView {
                        name: f.name.clone(),
                        description: f.description.clone(),
                        input_schema: f.input_schema.clone(),
                        output_schema: f.output_schema.clone(),
                    });
                }
            }
        }
        out
    }

    /// Why a call to `name` needs approval, if it does.
    fn approval_need(&self, name: &str) -> ApprovalNeed {
        let cfg = self.host.config();
        let tool_name = name.split_once('.').map_or(name, |(t, _)| t);
        let mut reason = None;
        if cfg.tools.iter().any(|t| t.name == tool_name && t.require_approval) {
            reason = Some(format!("[[tool]] {tool_name} has require_approval = true"));
        } else if cfg.gate.approve_process {
            if let Some(t) = self.host.tools().get(tool_name) {
                let imports_process = t.loaded.imports.iter().any(|i| i.starts_with("wasmward:tool/process"));
                if t.plan.policy.subprocess.allowed && imports_process {
                    reason = Some(format!("{tool_name} may run processes and [gate] approve_process = true"));
                }
            }
        }
        ApprovalNeed { reason, approver_available: self.approver_available.load(Ordering::SeqCst) }
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
        let tool = name.split_once('.').map_or(name, |(t, _)| t);
        match self.host.tools().get(tool) {
            Some(t) if t.loaded.functions.iter().any(|f| f.name == name) => name.to_string(),
            _ => "<unknown>".to_string(),
        }
    }

    /// Records a refusal in the audit log and metrics, and returns it as
    /// the caller's error.
    pub async fn refuse(&self, r: &Refusal, tool: &str, caller: &str) -> ApiError {
        tracing::info!(tool, caller, stage = r.stage.as_str(), reason = %r.message, "gate refused a request");
        self.metrics.record_refusal(&self.metric_label(tool), r.stage.as_str());
        self.audit_gate(r.event(tool, caller)).await;
        ApiError::from(r)
    }

    /// One call, whatever the protocol: gate, host, output gate.
    pub async fn call(&self, caller: &Caller, name: &str, args: &Value) -> Result<Value, ApiError> {
        let _in_flight = self.metrics.start_call();
        let who = caller.audit_name();
        let gate = self.gate();
        let admitted = match gate.admit(&self.approvals, caller, name, args, &self.approval_need(name)).await {
            Ok(a) => a,
            Err(r) => return Err(self.refuse(&r, name, &who).await),
        };
        if let Some(approver) = &admitted.approved_by {
            self.audit_gate(gate::gate_event(name, &who, gate::Stage::Approval, "allow", &format!("approved by {approver}"))).await;
        }
        let started = Instant::now();
        let record = self.host.call(name, args, &who).await;
        let outcome = record.outcome.as_ref().map_or_else(|e| e.code(), |_| "ok");
        let label = if record.outcome.is_ok() { name.to_string() } else { self.metric_label(name) };
        self.metrics.record_call(&label, outcome, started.elapsed(), record.denials.iter().map(|d| d.kind.as_str()));
        if !record.stdout.is_empty() || !record.stderr.is_empty() {
            tracing::debug!(tool = name, stdout = %record.stdout, stderr = %record.stderr, "guest output");
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
            Err(e) => Err(ApiError::from(&e)),
        }
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
        json!({"status": status, "audit_error": audit, "tools": self.host.tools().len(), "in_flight": self.metrics.in_flight()})
    }
}
