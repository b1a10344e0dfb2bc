//! Typed call failures. Each has a stable code for agents and scripts; none
//! is a host panic.

use crate::sandbox::Denial;
use serde::Serialize;
use serde_json::Value;

/// Why a call did not produce a result.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum CallError {
    /// `hint`: what the caller may call instead ("tools: a, b"), or empty.
    #[error("unknown tool `{tool}`{}", if .hint.is_empty() { String::new() } else { format!("; {}", .hint) })]
    UnknownTool { tool: String, hint: String },
    #[error("tool `{tool}` has no function `{function}`; available: {available}")]
    UnknownFunction { tool: String, function: String, available: String },
    #[error("invalid arguments: {message}")]
    InvalidArguments { message: String },
    #[error("call exceeded timeout_ms = {timeout_ms}")]
    Timeout { timeout_ms: u64 },
    #[error("call exceeded memory_mb = {limit_mb} (tried to grow to {requested_bytes} bytes)")]
    MemoryLimit { limit_mb: u64, requested_bytes: u64 },
    #[error("call ran out of fuel (fuel = {fuel})")]
    FuelExhausted { fuel: u64 },
    #[error("result is {size} bytes, over max_output_bytes = {limit}")]
    OutputLimit { size: u64, limit: u64 },
    #[error("tool trapped: {message}")]
    Trap { message: String },
    #[error("tool returned an error: {value}")]
    ToolError { value: Value },
    /// The call failed (tool error, trap or exit) after the sandbox refused
    /// it something: `denials` lists the refusals (the first 32 of the
    /// call; `total` counts all), `cause` is how the call then failed,
    /// with the tool's own error text.
    #[error("policy denied: {message}")]
    Denied { message: String, denials: Vec<Denial>, total: u64, cause: Box<CallError> },
    /// `max_write_bytes` (no `mount`), or the `quota_bytes` of the write
    /// mount at guest path `mount`: `requested` is then what the mount
    /// would have held.
    #[error("{}", write_limit_message(*limit, *requested, mount.as_deref()))]
    WriteLimit {
        limit: u64,
        requested: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mount: Option<String>,
    },
    /// `limit` is `max_handles` (raise it in `[tool.limits]`) or
    /// `process_fd_reserve` (the process is near its descriptor limit).
    #[error("{message}")]
    HandleLimit { limit: String, configured: u64, message: String },
    /// The guest called `wasi:cli/exit` before returning a value. WASI 0.2
    /// carries only success or failure, so `status` is 0 or 1.
    #[error("tool exited with status {status} before returning a value")]
    Exited { status: i32 },
    #[error("host error: {message}")]
    Host { message: String },
    /// Stopped before it finished: the caller cancelled it (MCP
    /// `notifications/cancelled`) or the server shut down.
    #[error("call cancelled: {reason}")]
    Cancelled { reason: String },
}

fn write_limit_message(limit: u64, requested: u64, mount: Option<&str>) -> String {
    match mount {
        None => format!(
            "call exceeded max_write_bytes = {limit} (tried to reach {requested} bytes written); raise [tool.limits] max_write_bytes"
        ),
        Some(m) => format!(
            "mount {m} is full: quota_bytes = {limit} (the write would make it hold {requested} bytes); free space in it, or raise quota_bytes on that mount in [tool.policy].allowed_write_paths"
        ),
    }
}

impl CallError {
    /// Stable machine-readable code, the same as the serialized `code`.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::UnknownTool { .. } => "unknown_tool",
            CallError::UnknownFunction { .. } => "unknown_function",
            CallError::InvalidArguments { .. } => "invalid_arguments",
            CallError::Timeout { .. } => "timeout",
            CallError::MemoryLimit { .. } => "memory_limit",
            CallError::FuelExhausted { .. } => "fuel_exhausted",
            CallError::OutputLimit { .. } => "output_limit",
            CallError::Trap { .. } => "trap",
            CallError::ToolError { .. } => "tool_error",
            CallError::Denied { .. } => "denied",
            CallError::WriteLimit { .. } => "write_limit",
            CallError::HandleLimit { .. } => "handle_limit",
            CallError::Exited { .. } => "exited",
            CallError::Host { .. } => "host_error",
            CallError::Cancelled { .. } => "cancelled",
        }
    }
}

impl CallError {
    /// `cause`, reported as `denied` when the sandbox refused the call
    /// something before it failed: a tool error, a trap or an exit after a
    /// refusal is most likely its consequence, and the agent needs the
    /// refusals to understand it. Other failures (limits, timeouts) and
    /// refusals only logged (`sandbox_violation_action = "log"`) are kept
    /// as they are.
    pub fn after_denials(cause: CallError, denials: &[Denial], total: u64) -> CallError {
        let denied: Vec<Denial> = denials.iter().filter(|d| d.action == "denied").cloned().collect();
        let fails_after = matches!(cause, CallError::ToolError { .. } | CallError::Trap { .. } | CallError::Exited { .. });
        if denied.is_empty() || !fails_after {
            return cause;
        }
        let message = denied_message(&denied, total, &cause);
        CallError::Denied { message, denials: denied, total, cause: Box::new(cause) }
    }

    /// A `denied` error with its cause replaced (the message follows);
    /// any other error becomes `cause`.
    pub fn with_cause(self, cause: CallError) -> CallError {
        match self {
            CallError::Denied { denials, total, .. } => {
                let message = denied_message(&denials, total, &cause);
                CallError::Denied { message, denials, total, cause: Box::new(cause) }
            }
            _ => cause,
        }
    }
}

/// The first refusals, how many more, and the failure after them. The
/// cause's text is cut to 1 kB here (it is whole in `cause`).
fn denied_message(denied: &[Denial], total: u64, cause: &CallError) -> String {
    const SHOWN: usize = 3;
    const CAUSE_BYTES: usize = 1024;
    let mut message: String = denied.iter().take(SHOWN).map(ToString::to_string).collect::<Vec<_>>().join("; ");
    let more = total.saturating_sub(SHOWN.min(denied.len()) as u64);
    if more > 0 {
        message.push_str(&format!("; and {more} more"));
    }
    message.push_str("; then ");
    message.push_str(&crate::sandbox::denials::truncate_text(&cause.to_string(), CAUSE_BYTES));
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DenialKind, ViolationAction};
    use serde_json::json;

    fn d(op: &str, target: &str, action: ViolationAction) -> Denial {
        Denial::new(DenialKind::Fs, op, target.into(), "read-only mount /ro".into(), action)
    }

    #[test]
    fn failures_after_a_refusal_are_reported_as_denied() {
        let tool_err = CallError::ToolError { value: json!("write: Read-only file system") };
        let deny = d("write", "/ro/x", ViolationAction::Deny);
        let log = d("write", "/ro/x", ViolationAction::Log);
        // (cause, denials, total, want code)
        let cases = [
            (tool_err.clone(), vec![deny.clone()], 1, "denied"),
            (CallError::Trap { message: "unreachable".into() }, vec![deny.clone()], 1, "denied"),
            (CallError::Exited { status: 1 }, vec![deny.clone()], 1, "denied"),
            (tool_err.clone(), vec![], 0, "tool_error"),
            (tool_err.clone(), vec![log.clone()], 1, "tool_error"),
            (CallError::Timeout { timeout_ms: 5 }, vec![deny.clone()], 1, "timeout"),
            (CallError::WriteLimit { limit: 1, requested: 2, mount: None }, vec![deny.clone()], 1, "write_limit"),
        ];
        for (cause, denials, total, want) in cases {
            let e = CallError::after_denials(cause.clone(), &denials, total);
            assert_eq!(e.code(), want, "{cause:?} after {denials:?}");
        }
    }

    #[test]
    fn denied_lists_the_refusals_and_keeps_the_tools_error() {
        let denials: Vec<Denial> = (0..5).map(|i| d("write", &format!("/ro/{i}"), ViolationAction::Deny)).collect();
        let cause = CallError::ToolError { value: json!("write: Read-only file system") };
        let e = CallError::after_denials(cause, &denials, 40);
        assert_eq!(
            e.to_string(),
            "policy denied: denied fs write /ro/0: read-only mount /ro; denied fs write /ro/1: read-only mount /ro; \
             denied fs write /ro/2: read-only mount /ro; and 37 more; then tool returned an error: \"write: Read-only file system\""
        );
        let body = serde_json::to_value(&e).unwrap();
        assert_eq!(body["code"], "denied");
        assert_eq!(body["total"], 40);
        assert_eq!(body["denials"].as_array().unwrap().len(), 5);
        assert_eq!(body["denials"][0], json!({"kind": "fs", "op": "write", "target": "/ro/0", "rule": "read-only mount /ro", "action": "denied"}));
        assert_eq!(body["cause"], json!({"code": "tool_error", "value": "write: Read-only file system"}));
    }
}
