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

pub use approvals::{Approvals, Decision, PendingView};
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
}

impl Caller {
    /// The parent process on stdio, unscoped.
    pub fn stdio() -> Caller {
        Caller { name: "stdio".into(), token_id: None, scopes: None, admin: false }
    }

    pub fn from_claims(c: &Claims) -> Caller {
        Caller { name: c.name.clone(), token_id: Some(c.id.clone()), scopes: Some(c.tools.clone()), admin: c.admin }
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
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Token => "token",
            Stage::Filter => "filter",
            Stage::RateLimit => "rate_limit",
            Stage::Approval => "approval",
            Stage::Content => "content",
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
    /// Set when an approver allowed the call.
    pub approved_by: Option<String>,
}

/// Inputs to the approval stage that come from the loaded tool.
pub struct ApprovalNeed {
    /// Why approval is needed (`None`: it is not).
    pub reason: Option<String>,
    /// Whether anyone can reach the admin endpoint.
    pub approver_available: bool,
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
    ) -> Result<Option<String>, Refusal> {
        let Some(reason) = &need.reason else { return Ok(None) };
        let view = PendingView {
            id: String::new(),
            tool: name.to_string(),
            caller: caller.audit_name(),
            reason: reason.clone(),
            args_digest: crate::audit::args_digest(args),
            created_ms: 0,
            expires_ms: 0,
        };
        let timeout = Duration::from_millis(self.config.approval_timeout_ms);
        let refuse = |code, m: String| Err(Refusal::new(Stage::Approval, code, m));
        match approvals.wait(view, timeout, need.approver_available).await {
            Decision::Allowed { approver } => Ok(Some(approver)),
            Decision::Denied { approver } => refuse("approval_denied", format!("`{name}` needs approval ({reason}) and {approver} denied it")),
            Decision::TimedOut => refuse(
                "approval_timeout",
                format!("`{name}` needs approval ({reason}) and none came within [gate] approval_timeout_ms = {}", self.config.approval_timeout_ms),
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
        let approved_by = self.check_approval(approvals, caller, name, args, need).await?;
        self.check_input(args)?;
        Ok(Admitted { approved_by })
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
        ApprovalNeed { reason: None, approver_available: true }
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
        let scoped = Caller { name: "a".into(), token_id: Some("01".into()), scopes: Some(vec!["text.*".into()]), admin: false };
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
        let (a, b) = (Caller::stdio(), Caller { name: "b".into(), ..Caller::stdio() });
        let now = Instant::now();
        assert!(g.check_rate(&a, "t.f", now).is_ok());
        let r = g.check_rate(&b, "t.f", now).unwrap_err();
        assert_eq!(r.code, "rate_limited");
        assert!(r.retry_after.unwrap() > Duration::from_secs(59), "{r:?}");
        assert!(r.message.contains("tool_requests_per_minute"), "{}", r.message);
        assert!(g.check_rate(&b, "t.other", now).is_ok());
    }

    #[tokio::test]
    async fn approval_fails_closed() {
        let g = gate("approval_timeout_ms = 30\n");
        let a = Approvals::default();
        let need = |avail| ApprovalNeed { reason: Some("require_approval = true".into()), approver_available: avail };
        let r = g.admit(&a, &Caller::stdio(), "t.f", &json!({}), &need(false)).await.unwrap_err();
        assert_eq!((r.code, r.stage), ("approval_denied", Stage::Approval));
        assert!(r.message.contains("no approver"), "{}", r.message);
        let r = g.admit(&a, &Caller::stdio(), "t.f", &json!({}), &need(true)).await.unwrap_err();
        assert_eq!(r.code, "approval_timeout");
        assert!(r.message.contains("approval_timeout_ms = 30"), "{}", r.message);
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
            ("max_output_bytes = 0", "max_output_bytes = 0"),
        ];
        for (text, needle) in cases {
            let cfg: GateConfig = toml::from_str(text).unwrap();
            let e = Gate::new(&cfg).err().unwrap();
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert!(toml::from_str::<GateConfig>("output_action = \"drop\"").is_err());
        assert!(toml::from_str::<GateConfig>("colour = 1").is_err());
    }
}
