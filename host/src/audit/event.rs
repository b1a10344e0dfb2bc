//! Audit event types and the canonical JSON the chain signs.
//!
//! ```
//! use wasmward::audit::{AuditEvent, DenialEvent};
//! let ev = AuditEvent::Denial(DenialEvent {
//!     tool: "fetch".into(), function: "get".into(), caller: "agent".into(),
//!     capability: "net".into(), op: "connect".into(), target: "10.0.0.1:80".into(),
//!     rule: "block_private_ips: 10.0.0.0/8".into(), action: "denied".into(),
//!     count: None,
//! });
//! let json = serde_json::to_value(&ev).unwrap();
//! assert_eq!(json["kind"], "denial");
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Outcome strings used in [`CallEvent::outcome`]; other values are allowed.
pub mod outcome {
    pub const OK: &str = "ok";
    pub const TOOL_ERROR: &str = "tool_error";
    pub const DENIED: &str = "denied";
    pub const TIMEOUT: &str = "timeout";
    pub const MEMORY_LIMIT: &str = "memory_limit";
    pub const FUEL_EXHAUSTED: &str = "fuel_exhausted";
    pub const OUTPUT_LIMIT: &str = "output_limit";
    pub const TRAP: &str = "trap";
    pub const INVALID_ARGUMENTS: &str = "invalid_arguments";
    pub const WRITE_LIMIT: &str = "write_limit";
    pub const HANDLE_LIMIT: &str = "handle_limit";
    pub const EXITED: &str = "exited";
}

/// Longest string a `call` row keeps (error text and anything else the tool
/// controls); longer ones are cut and their original size recorded.
pub const MAX_RECORDED_STRING_BYTES: usize = 4096;

/// One audit event, tagged by `kind` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    Call(CallEvent),
    Denial(DenialEvent),
    Gate(GateEvent),
    Limit(LimitEvent),
}

impl AuditEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::Call(_) => "call",
            AuditEvent::Denial(_) => "denial",
            AuditEvent::Gate(_) => "gate",
            AuditEvent::Limit(_) => "limit",
        }
    }
}

/// One tool call. `args` is kept only with `record_arguments = true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    pub tool: String,
    pub function: String,
    pub caller: String,
    /// sha256 hex of the canonical JSON of the arguments.
    pub args_digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// See [`outcome`].
    pub outcome: String,
    /// Cut to [`MAX_RECORDED_STRING_BYTES`] (see `error_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The size of the error text before it was cut; absent when whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_bytes: Option<u64>,
    pub duration_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    pub denials: u32,
    /// The approval that let the call run (`wasmward approve`); its
    /// `gate` event (stage `approval`) has the same `call_id`. Absent for
    /// calls that needed none, so rows written before this field existed
    /// read and verify unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
}

impl CallEvent {
    /// A successful call with the digest (and a copy) of `args`; the writer
    /// drops the copy unless `record_arguments` is set.
    pub fn new(tool: &str, function: &str, caller: &str, args: &Value) -> CallEvent {
        CallEvent {
            tool: tool.into(),
            function: function.into(),
            caller: caller.into(),
            args_digest: args_digest(args),
            args: Some(args.clone()),
            outcome: outcome::OK.into(),
            error: None,
            error_bytes: None,
            duration_us: 0,
            fuel_used: None,
            memory_bytes: None,
            denials: 0,
            approval_id: None,
        }
    }
}

/// One refused (or, in `log` mode, would-be refused) capability use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenialEvent {
    pub tool: String,
    pub function: String,
    pub caller: String,
    /// "fs" | "net" | "http" | "dns" | "env" | "process" | "eval" | "import" | ...
    pub capability: String,
    /// e.g. "write", "connect", "lookup".
    pub op: String,
    /// Guest path, host:port, IP or program.
    pub target: String,
    /// Why: the policy field or range that refused it.
    pub rule: String,
    /// "denied" | "logged".
    pub action: String,
    /// Set on a summary row: it stands for `count` denials of this
    /// capability and op, past the first 32 of the call, that were not
    /// recorded one by one; `target` and `rule` are the last one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// A per-call limit that refused something the tool asked for (whatever
/// the call's outcome: a guest may handle a refused allocation or write).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitEvent {
    pub tool: String,
    pub function: String,
    pub caller: String,
    /// The config field: "memory_mb" | "max_write_bytes" | "quota_bytes" |
    /// "max_handles" | "process_fd_reserve".
    pub limit: String,
    /// For "quota_bytes": the guest path of the mount that is full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// What the first refused request would have reached (bytes, handles).
    pub requested: u64,
    /// The configured value, in the same unit as `requested`.
    pub configured: u64,
    /// How many requests the limit refused in the call.
    pub count: u64,
}

/// A decision taken before the sandbox (token, rate limit, approval, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateEvent {
    pub tool: String,
    pub caller: String,
    pub stage: String,
    pub decision: String,
    pub reason: String,
}

/// An event as stored: the signed body of one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: u64,
    pub ts_ms: u64,
    /// Links a call's denials to its `call` event.
    pub call_id: String,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// Compact JSON with object keys sorted recursively, so the same value always
/// gives the same bytes (the HMAC input).
pub fn canonical_json(value: &Value) -> String {
    let mut v = value.clone();
    v.sort_all_objects();
    v.to_string()
}

/// sha256 hex of the canonical JSON of `args`.
///
/// ```
/// use serde_json::json;
/// let a = wasmward::audit::args_digest(&json!({"b": 1, "a": 2}));
/// assert_eq!(a, wasmward::audit::args_digest(&json!({"a": 2, "b": 1})));
/// ```
pub fn args_digest(args: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(args).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn denial() -> DenialEvent {
        DenialEvent {
            tool: "t".into(),
            function: "f".into(),
            caller: "c".into(),
            capability: "fs".into(),
            op: "write".into(),
            target: "/etc/passwd".into(),
            rule: "outside mounts".into(),
            action: "denied".into(),
            count: None,
        }
    }

    #[test]
    fn events_round_trip_through_stored_json() {
        let mut call = CallEvent::new("t", "f", "c", &json!({"x": [1, 2]}));
        call.fuel_used = Some(7);
        call.error = Some("boom".into());
        let gate = GateEvent {
            tool: "t".into(),
            caller: "c".into(),
            stage: "rate_limit".into(),
            decision: "deny".into(),
            reason: "10/s".into(),
        };
        let limit = LimitEvent {
            tool: "t".into(),
            function: "f".into(),
            caller: "c".into(),
            limit: "max_write_bytes".into(),
            mount: None,
            requested: 11,
            configured: 10,
            count: 2,
        };
        let summary = DenialEvent { count: Some(40), ..denial() };
        for ev in [
            AuditEvent::Call(call),
            AuditEvent::Denial(denial()),
            AuditEvent::Denial(summary),
            AuditEvent::Gate(gate),
            AuditEvent::Limit(limit),
        ] {
            let stored = StoredEvent {
                seq: 3,
                ts_ms: 9,
                call_id: "id".into(),
                event: ev,
            };
            let text = canonical_json(&serde_json::to_value(&stored).unwrap());
            let back: StoredEvent = serde_json::from_str(&text).unwrap();
            assert_eq!(back, stored);
            assert!(text.contains(&format!("\"kind\":\"{}\"", stored.event.kind())));
        }
    }

    #[test]
    fn canonical_json_sorts_keys_recursively() {
        let cases = [
            (
                json!({"b": 1, "a": {"d": 1, "c": 2}}),
                r#"{"a":{"c":2,"d":1},"b":1}"#,
            ),
            (json!([{"z": 1, "y": 2}]), r#"[{"y":2,"z":1}]"#),
            (json!("s"), r#""s""#),
            (json!({}), "{}"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_json(&input), want);
        }
    }

    #[test]
    fn digest_ignores_key_order_but_not_values() {
        assert_eq!(
            args_digest(&json!({"a": 1, "b": 2})),
            args_digest(&json!({"b": 2, "a": 1}))
        );
        assert_ne!(args_digest(&json!({"a": 1})), args_digest(&json!({"a": 2})));
        assert_eq!(args_digest(&json!(null)).len(), 64);
    }
}
