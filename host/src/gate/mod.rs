//! The gate: what stands between an agent's request and `Host::call`.
//! Applied in this order on every protocol, each refusal an audit `gate`
//! event (recorded by the server, the one caller of [`Gate::admit`]):
//!
//! 1. token (checked by the transport: [`tokens`]),
//! 2. tool filters ([`filter`]): operator lists and token scopes,
//! 3. rate limits ([`rate`]): per caller and per function,
//! 4. approvals ([`approvals`]): fail closed,
//! 5. content ([`content`]): input patterns and size; output on the way back.
//!
//! Everything here is policy over plain data; no wasmtime, no HTTP.

pub mod approvals;
pub mod config;
pub mod content;
pub mod filter;
pub mod rate;
pub mod tokens;

pub use approvals::{Approvals, Decision, PendingView, PolicySummary, Progress, WaitProgress};
pub use config::{GateConfig, OutputAction};
pub use tokens::{Claims, TokenError, TokenKey};

use crate::audit::{AuditEvent, GateEvent};
use content::ContentPolicy;
use filter::ToolFilter;
use rate::RateLimiter;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Who is calling, as established by the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub token_id: Option<String>,
    /// Token scopes; `None` = unscoped (stdio without `--token`).
    pub scopes: Option<Vec<String>>,
    pub admin: bool,
    /// The process that started `serve --stdio` (with or without `--token`):
    /// one trusted client, outside the rate limits unless `[gate]
    /// rate_limit_stdio = true`.
    pub stdio_parent: bool,
}

impl Caller {
    /// The parent process on stdio, unscoped.
    pub fn stdio() -> Caller {
        Caller { name: "stdio".into(), token_id: None, scopes: None, admin: false, stdio_parent: true }
    }

    pub fn from_claims(c: &Claims) -> Caller {
        Caller { name: c.name.clone(), token_id: Some(c.id.clone()), scopes: Some(c.tools.clone()), admin: c.admin, stdio_parent: false }
    }

    /// As recorded in the audit log: `name` or `name#token-id`.
    pub fn audit_name(&self) -> String {
        match &self.token_id {
            Some(id) => format!("{}#{id}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A gate stage, as named in audit events and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Token,
    Filter,
    RateLimit,
    Approval,
    Content,
    /// Refused by the HTTP layer before any call: `Host`, `Origin`, body
    /// size, MCP session limits.
    Transport,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Token => "token",
            Stage::Filter => "filter",
            Stage::RateLimit => "rate_limit",
            Stage::Approval => "approval",
            Stage::Content => "content",
            Stage::Transport => "transport",
        }
    }
}

/// A refusal: the stage, a stable code, and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub stage: Stage,
    /// `unauthorized`, `forbidden`, `rate_limited`, `approval_denied`,
    /// `approval_timeout`, `content_blocked`, `input_too_large`,
    /// `output_too_large`.
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl Refusal {
    fn new(stage: Stage, code: &'static str, message: String) -> Refusal {
        Refusal { stage, code, message, retry_after: None }
    }

    /// The audit event for this refusal.
    pub fn event(&self, tool: &str, caller: &str) -> AuditEvent {
        gate_event(tool, caller, self.stage, "deny", &self.message)
    }
}

pub fn gate_event(tool: &str, caller: &str, stage: Stage, decision: &str, reason: &str) -> AuditEvent {
    AuditEvent::Gate(GateEvent {
        tool: tool.into(),
        caller: caller.into(),
        stage: stage.as_str().into(),
        decision: decision.into(),
        reason: reason.into(),
    })
}

/// A refusal from a bad token.
pub fn token_refusal(e: &TokenError) -> Refusal {
    let code = match e {
        TokenError::NotAdmin { .. } => "forbidden",
        // The issuer's keys cannot be read: the server's fault, not the token's.
        TokenError::Jwt { reason: "jwt_keys_unavailable", .. } => "oauth_unavailable",
        _ => "unauthorized",
    };
    Refusal::new(Stage::Token, code, e.to_string())
}

/// What the gate let through, and what to record about it.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Set when an approver allowed the call: who, and the approval's id
    /// (for the call's audit row).
    pub approved: Option<Approved>,
}

/// An approval that let a call through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub id: String,
    pub approver: String,
}

/// Inputs to the approval stage that come from the loaded tool.
pub struct ApprovalNeed {
    /// Why approval is needed (`None`: it is not).
    pub reason: Option<String>,
    /// The approval's id (empty: the gate makes one), known before the
    /// wait so that a call cancelled while pending can name it.
    pub id: String,
    /// Whether anyone can reach the admin endpoint.
    pub approver_available: bool,
    /// What the approver is shown beside the arguments.
    pub shown: ApprovalContext,
    /// Told while the call waits (MCP progress notifications).
    pub progress: Option<Progress>,
}

impl ApprovalNeed {
    /// No approval needed.
    pub fn none() -> ApprovalNeed {
        ApprovalNeed { reason: None, id: String::new(), approver_available: false, shown: ApprovalContext::default(), progress: None }
    }
}

/// What an approver sees about the function, from the loaded tool and the
/// audit settings.
#[derive(Default)]
pub struct ApprovalContext {
    pub description: Option<String>,
    pub policy: PolicySummary,
    /// The audit log's redactor (`[audit] redact_patterns`, `redact_ipv4`).
    pub redactor: crate::audit::Redactor,
}

/// The gate built from one `[gate]` table. Rebuilt on reload.
pub struct Gate {
    pub config: GateConfig,
    filter: ToolFilter,
    caller_rate: Option<RateLimiter>,
    tool_rate: Option<RateLimiter>,
    content: ContentPolicy,
}

impl Gate {
    pub fn new(cfg: &GateConfig) -> Result<Gate, String> {
        cfg.validate()?;
        Ok(Gate {
            config: cfg.clone(),
            filter: ToolFilter { allowed: cfg.allowed_tools.clone(), denied: cfg.denied_tools.clone() },
            caller_rate: cfg.requests_per_minute.map(|r| RateLimiter::new(r, cfg.burst_size)),
            tool_rate: cfg.tool_requests_per_minute.map(|r| RateLimiter::new(r, cfg.tool_burst_size)),
            content: ContentPolicy::new(cfg)?,
        })
    }

    /// Whether `caller` may see `name` in a tool list.
    pub fn visible(&self, caller: &Caller, name: &str) -> bool {
        self.filter.check(caller.scopes.as_deref(), name).is_ok()
    }

    pub fn check_filter(&self, caller: &Caller, name: &str) -> Result<(), Refusal> {
        self.filter
            .check(caller.scopes.as_deref(), name)
            .map_err(|d| Refusal::new(Stage::Filter, "forbidden", format!("`{name}` is {d}")))
    }

    /// The caller's bucket, then `name`'s (an empty `name`: the caller's
    /// only, for names that are no function).
    pub fn check_rate(&self, caller: &Caller, name: &str, now: Instant) -> Result<(), Refusal> {
        if caller.stdio_parent && !self.config.rate_limit_stdio {
            return Ok(());
        }
        let key = caller.token_id.clone().unwrap_or_else(|| caller.name.clone());
        let limited = |scope: &str, key_cfg: &str, wait: Duration| Refusal {
            stage: Stage::RateLimit,
            code: "rate_limited",
            message: format!(
                "rate limit for {scope} exceeded ([gate] {key_cfg}); retry in {} s",
                rate::retry_after_secs(wait)
            ),
            retry_after: Some(wait),
        };
        if let Some(r) = &self.caller_rate {
            r.try_take(&key, now).map_err(|w| limited(&format!("caller {}", caller.name), "requests_per_minute", w))?;
        }
        if name.is_empty() {
            return Ok(());
        }
        if let Some(r) = &self.tool_rate {
            r.try_take(name, now).map_err(|w| limited(&format!("`{name}`"), "tool_requests_per_minute", w))?;
        }
        Ok(())
    }

    pub async fn check_approval(
        &self,
        approvals: &Approvals,
        caller: &Caller,
        name: &str,
        args: &Value,
        need: &ApprovalNeed,
    ) -> Result<Option<Approved>, Refusal> {
        let Some(reason) = &need.reason else { return Ok(None) };
        let mut arguments = args.clone();
        need.shown.redactor.redact_json(&mut arguments);
        let id = if need.id.is_empty() { Approvals::new_id() } else { need.id.clone() };
        let view = PendingView {
            id: id.clone(),
            tool: name.to_string(),
            description: need.shown.description.clone(),
            caller: caller.audit_name(),
            reason: reason.clone(),
            arguments,
            args_digest: crate::audit::args_digest(args),
            policy: need.shown.policy.clone(),
            created_ms: 0,
            expires_ms: 0,
        };
        let timeout = Duration::from_millis(self.config.approval_timeout_ms);
        let every = Duration::from_millis(self.config.approval_progress_interval_ms);
        let refuse = |code, m: String| Err(Refusal::new(Stage::Approval, code, m));
        match approvals.wait(view, timeout, need.approver_available, need.progress.as_ref().map(|p| (p, every))).await {
            Decision::Allowed { approver } => Ok(Some(Approved { id, approver })),
            Decision::Denied { approver } => refuse("approval_denied", format!("`{name}` needs approval ({reason}) and {approver} denied it (approval {id})")),
            Decision::TimedOut => refuse(
                "approval_timeout",
                format!("`{name}` needs approval ({reason}) and none came within [gate] approval_timeout_ms = {} (approval {id})", self.config.approval_timeout_ms),
            ),
            Decision::NoApprover => refuse(
                "approval_denied",
                format!("`{name}` needs approval ({reason}) but no approver can be reached: approvals are decided over the HTTP admin endpoint, so serve with --listen"),
            ),
        }
    }

    pub fn check_input(&self, args: &Value) -> Result<(), Refusal> {
        self.content.check_input(args).map_err(|r| {
            let code = if matches!(r, content::ContentRefusal::InputTooLarge { .. }) { "input_too_large" } else { "content_blocked" };
            Refusal::new(Stage::Content, code, r.to_string())
        })
    }

    /// The result after `blocked_output_patterns` and `max_output_bytes`.
    pub fn filter_output(&self, v: Value) -> Result<(Value, usize), Refusal> {
        self.filter_returned(v, "result")
    }

    /// Anything returned to the agent (`what`: "result", "error") after
    /// `blocked_output_patterns`, `output_action` and `max_output_bytes`.
    pub fn filter_returned(&self, v: Value, what: &'static str) -> Result<(Value, usize), Refusal> {
        self.content.filter_value(v, what).map_err(|r| {
            let code = if matches!(r, content::ContentRefusal::OutputTooLarge { .. }) { "output_too_large" } else { "content_blocked" };
            Refusal::new(Stage::Content, code, r.to_string())
        })
    }

    /// `text` (guest output that is logged) with `blocked_output_patterns`
    /// matches replaced.
    pub fn redact_text(&self, text: &str) -> String {
        self.content.redact_text(text)
    }

    /// Stages 2-5 (the token was checked by the transport), in order.
    pub async fn admit(
        &self,
        approvals: &Approvals,
        caller: &Caller,
        name: &str,
        args: &Value,
        need: &ApprovalNeed,
    ) -> Result<Admitted, Refusal> {
        self.check_filter(caller, name)?;
        self.check_rate(caller, name, Instant::now())?;
        let approved = self.check_approval(approvals, caller, name, args, need).await?;
        self.check_input(args)?;
        Ok(Admitted { approved })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gate(toml_text: &str) -> Gate {
        let cfg: GateConfig = toml::from_str(toml_text).unwrap();
        Gate::new(&cfg).unwrap()
    }

    fn no_approval() -> ApprovalNeed {
        ApprovalNeed { approver_available: true, ..ApprovalNeed::none() }
    }

    #[tokio::test]
    async fn stages_in_order_with_stable_codes() {
        let g = gate(
            r#"
allowed_tools = ["text.*", "shell.*"]
denied_tools = ["text.secret"]
requests_per_minute = 60
burst_size = 2
blocked_input_patterns = ["(?i)password"]
"#,
        );
        let a = Approvals::default();
        let scoped = Caller { name: "a".into(), token_id: Some("01".into()), scopes: Some(vec!["text.*".into()]), admin: false, stdio_parent: false };
        let cases: Vec<(&Caller, &str, Value, Result<(), (&str, Stage)>)> = vec![
            (&scoped, "shell.run", json!({}), Err(("forbidden", Stage::Filter))),
            (&scoped, "text.secret", json!({}), Err(("forbidden", Stage::Filter))),
            (&scoped, "other.x", json!({}), Err(("forbidden", Stage::Filter))),
            // Filter refusals do not spend rate tokens; these two do.
            (&scoped, "text.greet", json!({"name": "my PASSWORD"}), Err(("content_blocked", Stage::Content))),
            (&scoped, "text.greet", json!({"name": "x"}), Ok(())),
            (&scoped, "text.greet", json!({"name": "x"}), Err(("rate_limited", Stage::RateLimit))),
        ];
        for (caller, name, args, want) in cases {
            let got = g.admit(&a, caller, name, &args, &no_approval()).await.map(|_| ()).map_err(|r| (r.code, r.stage));
            assert_eq!(got, want, "{name} {args}");
        }
        // The stdio caller is unscoped and has its own bucket.
        assert!(g.admit(&a, &Caller::stdio(), "shell.run", &json!({}), &no_approval()).await.is_ok());
    }

    #[tokio::test]
    async fn rate_refusals_carry_retry_after_and_per_tool_limits_apply_across_callers() {
        let g = gate("tool_requests_per_minute = 1\n");
        let (a, b) = (Caller { stdio_parent: false, ..Caller::stdio() }, Caller { name: "b".into(), stdio_parent: false, ..Caller::stdio() });
        let now = Instant::now();
        assert!(g.check_rate(&a, "t.f", now).is_ok());
        let r = g.check_rate(&b, "t.f", now).unwrap_err();
        assert_eq!(r.code, "rate_limited");
        assert!(r.retry_after.unwrap() > Duration::from_secs(59), "{r:?}");
        assert!(r.message.contains("tool_requests_per_minute"), "{}", r.message);
        assert!(g.check_rate(&b, "t.other", now).is_ok());
    }

    #[test]
    fn the_stdio_parent_is_outside_the_rate_limits_unless_configured() {
        let scoped_parent = Caller { scopes: Some(vec!["text.*".into()]), token_id: Some("01".into()), ..Caller::stdio() };
        let cases: &[(&str, &Caller, bool)] = &[
            ("requests_per_minute = 1\ntool_requests_per_minute = 1\n", &Caller::stdio(), true),
            ("requests_per_minute = 1\n", &scoped_parent, true),
            ("requests_per_minute = 1\nrate_limit_stdio = true\n", &Caller::stdio(), false),
            ("tool_requests_per_minute = 1\nrate_limit_stdio = true\n", &scoped_parent, false),
        ];
        for (cfg, caller, exempt) in cases {
            let g = gate(cfg);
            let now = Instant::now();
            let ok = (0..50).filter(|_| g.check_rate(caller, "text.greet", now).is_ok()).count();
            assert_eq!(ok == 50, *exempt, "{cfg}: {ok} of 50 allowed");
        }
        // Scopes still apply to a parent that passed --token.
        assert!(g_filter_refuses(&scoped_parent));
    }

    fn g_filter_refuses(c: &Caller) -> bool {
        gate("").check_filter(c, "shell.run").is_err()
    }

    #[tokio::test]
    async fn approval_fails_closed() {
        let g = gate("approval_timeout_ms = 30\n");
        let a = Approvals::default();
        let need = |avail| ApprovalNeed { reason: Some("require_approval = true".into()), approver_available: avail, ..ApprovalNeed::none() };
        let r = g.admit(&a, &Caller::stdio(), "t.f", &json!({}), &need(false)).await.unwrap_err();
        assert_eq!((r.code, r.stage), ("approval_denied", Stage::Approval));
        assert!(r.message.contains("no approver"), "{}", r.message);
        let r = g.admit(&a, &Caller::stdio(), "t.f", &json!({}), &need(true)).await.unwrap_err();
        assert_eq!(r.code, "approval_timeout");
        assert!(r.message.contains("approval_timeout_ms = 30"), "{}", r.message);
        assert!(a.list().is_empty());
    }

    /// What the approver sees: redacted arguments (the audit's redactor,
    /// custom patterns included), the unredacted digest, description and
    /// policy; allowing returns the approval id; progress is reported.
    #[tokio::test]
    async fn approvers_see_redacted_arguments_and_allowing_returns_the_id() {
        let g = std::sync::Arc::new(gate("approval_timeout_ms = 10000\napproval_progress_interval_ms = 100\n"));
        let a = std::sync::Arc::new(Approvals::default());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<WaitProgress>::new()));
        let sink = seen.clone();
        let progress: Progress = std::sync::Arc::new(move |p: &WaitProgress| sink.lock().unwrap().push(p.clone()));
        let redactor = crate::audit::Redactor::new(&["acct-[0-9]+".to_string()]).unwrap();
        let args = json!({"path": "/data/notes.txt", "contents": "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "acct": "acct-42"});
        let need = ApprovalNeed {
            reason: Some("require_approval = true".into()),
            id: String::new(),
            approver_available: true,
            shown: ApprovalContext { description: Some("Write a file.".into()), policy: PolicySummary { hosts: vec!["api.example.com".into()], ..PolicySummary::default() }, redactor },
            progress: Some(progress),
        };
        let waiter = tokio::spawn({
            let (g, a, args) = (g.clone(), a.clone(), args.clone());
            async move { g.admit(&a, &Caller::stdio(), "files.fs.write", &args, &need).await }
        });
        let view = loop {
            if let Some(v) = a.list().pop() {
                break v;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(view.arguments, json!({"path": "/data/notes.txt", "contents": "key [REDACTED:anthropic_key]", "acct": "[REDACTED:custom]"}));
        assert_eq!(view.args_digest, crate::audit::args_digest(&args), "the digest is of the real arguments, as in the audit row");
        assert_eq!(view.description.as_deref(), Some("Write a file."));
        assert_eq!(view.policy.hosts, ["api.example.com"]);
        assert_eq!(view.expires_ms - view.created_ms, 10_000);
        // Progress: at once, then every interval, with growing `waited`.
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.lock().unwrap().len() < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        a.decide(&view.id, true, "ops").unwrap();
        let admitted = waiter.await.unwrap().unwrap();
        let approved = admitted.approved.unwrap();
        assert_eq!((approved.id.as_str(), approved.approver.as_str()), (view.id.as_str(), "ops"));
        let seen = seen.lock().unwrap().clone();
        assert!(seen.len() >= 3, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[1].waited > w[0].waited), "{seen:?}");
        assert!(seen.iter().all(|p| p.id == view.id && p.timeout == Duration::from_secs(10)));
        assert!(seen[0].message().starts_with(&format!("waiting for approval {} (", view.id)), "{}", seen[0].message());
    }

    #[test]
    fn output_stage_and_events() {
        let g = gate("blocked_output_patterns = [\"tok-[0-9]+\"]\nmax_output_bytes = 40\n");
        assert_eq!(g.filter_output(json!({"result": "id tok-123"})).unwrap().0, json!({"result": "id [FILTERED]"}));
        let r = g.filter_output(json!({"result": "x".repeat(50)})).unwrap_err();
        assert_eq!(r.code, "output_too_large");
        let AuditEvent::Gate(e) = r.event("t.f", "a#01") else { panic!() };
        assert_eq!((e.stage.as_str(), e.decision.as_str(), e.tool.as_str()), ("content", "deny", "t.f"));
        assert!(e.reason.contains("max_output_bytes = 40"));
    }

    #[test]
    fn config_errors_name_the_key() {
        let cases: &[(&str, &str)] = &[
            ("blocked_input_patterns = [\"(\"]", "blocked_input_patterns[0]"),
            ("requests_per_minute = 0", "requests_per_minute = 0"),
            ("burst_size = 5", "without requests_per_minute"),
            ("allowed_tools = [\"a b\"]", "allowed_tools[0]"),
            ("approval_timeout_ms = 0", "approval_timeout_ms = 0"),
            ("approval_progress_interval_ms = 50", "approval_progress_interval_ms = 50"),
            ("approval_progress_interval_ms = 60001", "use 100..=60000"),
            ("max_output_bytes = 0", "max_output_bytes = 0"),
        ];
        for (text, needle) in cases {
            let cfg: GateConfig = toml::from_str(text).unwrap();
            let e = Gate::new(&cfg).err().unwrap();
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert!(toml::from_str::<GateConfig>("output_action = \"drop\"").is_err());
        assert!(toml::from_str::<GateConfig>("colour = 1").is_err());
        // The default approval wait plus a tool's default timeout stays
        // under the TypeScript SDK's 60 s request timeout.
        let d = GateConfig::default();
        assert!(d.approval_timeout_ms + 10_000 < config::TS_SDK_REQUEST_TIMEOUT_MS, "{d:?}");
        assert_eq!(toml::from_str::<GateConfig>("").unwrap(), d);
    }

    /// `wasmward check` warns when a client with the TypeScript SDK's
    /// default 60 s request timeout gives up before the approval (and the
    /// call after it) can finish.
    #[test]
    fn approval_timeouts_near_client_timeouts_warn() {
        let gated = |t: u64| vec![("files".to_string(), t)];
        let cases: &[(u64, Vec<(String, u64)>, &[&str])] = &[
            (45_000, gated(10_000), &[]),
            (45_000, vec![], &[]),
            (59_999, vec![], &[]),
            (60_000, vec![], &["approval_timeout_ms = 60000 is not below 60000", "resetTimeoutOnProgress"]),
            (600_000, gated(10_000), &["approval_timeout_ms = 600000 is not below 60000"]),
            (45_000, gated(15_000), &["plus tool \"files\"'s timeout_ms = 15000 reaches 60000"]),
        ];
        for (timeout, gated, want) in cases {
            let cfg = GateConfig { approval_timeout_ms: *timeout, ..GateConfig::default() };
            let got = cfg.approval_warnings(gated);
            assert_eq!(got.len(), want.len().min(1), "{timeout} {gated:?}: {got:?}");
            for needle in *want {
                assert!(got[0].contains(needle), "{needle:?} in {got:?}");
            }
        }
    }
}
