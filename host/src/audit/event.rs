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

use super::redact::Redactor;

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
    let mut out = Vec::with_capacity(64);
    write_canonical(&mut out, value);
    // Only whole JSON strings and ASCII punctuation were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the canonical JSON of `value` (compact, object keys sorted
/// recursively) to `out`: the bytes of `sort_all_objects` + `to_string`,
/// without cloning the value.
pub(super) fn write_canonical(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                put_json_str(out, k);
                out.push(b':');
                write_canonical(out, v);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, v);
            }
            out.push(b']');
        }
        // Scalars: serde_json's own formatting (escapes, numbers).
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

/// `s` as a JSON string, escaped exactly as serde_json escapes it.
fn put_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes one object's members in the order given, which must be sorted by
/// key (the canonical order); keys are plain identifiers, needing no escape.
struct Members<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Members<'o> {
    fn open(out: &'o mut Vec<u8>) -> Members<'o> {
        out.push(b'{');
        Members { out, first: true }
    }

    fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn num(&mut self, k: &str, n: u64) {
        put_u64(self.key(k), n);
    }

    fn opt_num(&mut self, k: &str, n: Option<u64>) {
        if let Some(n) = n {
            self.num(k, n);
        }
    }

    /// A string the host fixes (the kind tag): not redacted.
    fn fixed(&mut self, k: &str, s: &str) {
        put_json_str(self.key(k), s);
    }

    /// A string value, redacted.
    fn text(&mut self, k: &str, s: &str, r: &Redactor) {
        let s = r.redact_str(s);
        put_json_str(self.key(k), &s);
    }

    fn opt_text(&mut self, k: &str, s: Option<&str>, r: &Redactor) {
        if let Some(s) = s {
            self.text(k, s, r);
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// Appends the signed body of a row to `out`: the canonical JSON of the
/// [`StoredEvent`] `{seq, ts_ms, call_id, ..event}` with every string value
/// but the `kind` tag redacted, in one pass and without building a
/// `serde_json::Value` tree (only recorded `args` go through one).
///
/// Byte for byte what the earlier path wrote (`to_value`, `redact_json`,
/// `sort_all_objects`, `to_string`), so logs written before and after
/// verify alike; members are listed here in sorted key order, which the
/// tests check against that path. Returns the redacted `call_id` (the
/// row's `call_id` column).
pub(super) fn write_body<'a>(
    out: &mut Vec<u8>,
    seq: u64,
    ts_ms: u64,
    call_id: &'a str,
    event: &AuditEvent,
    r: &Redactor,
) -> std::borrow::Cow<'a, str> {
    let call_id = r.redact_str(call_id);
    let mut m = Members::open(out);
    match event {
        AuditEvent::Call(c) => {
            m.opt_text("approval_id", c.approval_id.as_deref(), r);
            if let Some(args) = &c.args {
                let mut args = args.clone();
                r.redact_json(&mut args);
                write_canonical(m.key("args"), &args);
            }
            m.text("args_digest", &c.args_digest, r);
            put_json_str(m.key("call_id"), &call_id);
            m.text("caller", &c.caller, r);
            m.num("denials", u64::from(c.denials));
            m.num("duration_us", c.duration_us);
            m.opt_text("error", c.error.as_deref(), r);
            m.opt_num("error_bytes", c.error_bytes);
            m.opt_num("fuel_used", c.fuel_used);
            m.text("function", &c.function, r);
            m.fixed("kind", "call");
            m.opt_num("memory_bytes", c.memory_bytes);
            m.text("outcome", &c.outcome, r);
            m.num("seq", seq);
            m.text("tool", &c.tool, r);
            m.num("ts_ms", ts_ms);
        }
        AuditEvent::Denial(d) => {
            m.text("action", &d.action, r);
            put_json_str(m.key("call_id"), &call_id);
            m.text("caller", &d.caller, r);
            m.text("capability", &d.capability, r);
            m.opt_num("count", d.count);
            m.text("function", &d.function, r);
            m.fixed("kind", "denial");
            m.text("op", &d.op, r);
            m.text("rule", &d.rule, r);
            m.num("seq", seq);
            m.text("target", &d.target, r);
            m.text("tool", &d.tool, r);
            m.num("ts_ms", ts_ms);
        }
        AuditEvent::Gate(g) => {
            put_json_str(m.key("call_id"), &call_id);
            m.text("caller", &g.caller, r);
            m.text("decision", &g.decision, r);
            m.fixed("kind", "gate");
            m.text("reason", &g.reason, r);
            m.num("seq", seq);
            m.text("stage", &g.stage, r);
            m.text("tool", &g.tool, r);
            m.num("ts_ms", ts_ms);
        }
        AuditEvent::Limit(l) => {
            put_json_str(m.key("call_id"), &call_id);
            m.text("caller", &l.caller, r);
            m.num("configured", l.configured);
            m.num("count", l.count);
            m.text("function", &l.function, r);
            m.fixed("kind", "limit");
            m.text("limit", &l.limit, r);
            m.opt_text("mount", l.mount.as_deref(), r);
            m.num("requested", l.requested);
            m.num("seq", seq);
            m.text("tool", &l.tool, r);
            m.num("ts_ms", ts_ms);
        }
    }
    m.close();
    call_id
}

/// sha256 hex of the canonical JSON of `args`.
///
/// ```
/// use serde_json::json;
/// let a = wasmward::audit::args_digest(&json!({"b": 1, "a": 2}));
/// assert_eq!(a, wasmward::audit::args_digest(&json!({"a": 2, "b": 1})));
/// ```
pub fn args_digest(args: &Value) -> String {
    let mut out = Vec::with_capacity(64);
    write_canonical(&mut out, args);
    let mut hex = String::with_capacity(64);
    super::key::hex_into(&Sha256::digest(&out), &mut hex);
    hex
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

    /// The body the writer signed before it had its own serialiser: a
    /// `serde_json::Value` tree, redacted (keys included), sorted, printed.
    fn old_body(seq: u64, ts_ms: u64, call_id: &str, event: &AuditEvent, r: &Redactor) -> String {
        let stored = StoredEvent { seq, ts_ms, call_id: call_id.into(), event: event.clone() };
        let mut v = serde_json::to_value(&stored).unwrap();
        r.redact_json(&mut v);
        v.sort_all_objects();
        v.to_string()
    }

    fn body_cases() -> Vec<(String, AuditEvent)> {
        let full = CallEvent {
            tool: "files".into(),
            function: "files.read-all".into(),
            caller: "agent bob@example.com".into(),
            args_digest: "ab".repeat(32),
            args: Some(json!({
                "z": [1, -2, 1.5, 1e300, u64::MAX, i64::MIN, null, true],
                "a": {"y": "ssn 123-45-6789", "carol@example.com": "k", "x": {"\u{1F600}": "é\u{0}\t\"\\"}},
                "é": "\u{7f}\u{1b}[31m\u{2028}",
            })),
            outcome: outcome::TOOL_ERROR.into(),
            error: Some("boom: card 4111 1111 1111 1111, tab\there\nnewline \u{0} \u{1f} \"q\" \\ ü 漢字 \u{10FFFF}".into()),
            error_bytes: Some(u64::MAX),
            duration_us: u64::MAX,
            fuel_used: Some(0),
            memory_bytes: Some(1 << 40),
            denials: u32::MAX,
            approval_id: Some("ap-1 +14155550100".into()),
        };
        let bare = CallEvent { args: None, error: None, error_bytes: None, fuel_used: None, memory_bytes: None, approval_id: None, ..full.clone() };
        let no_args_with_error = CallEvent { args: None, ..full.clone() };
        let empty_args = CallEvent { args: Some(json!({})), ..bare.clone() };
        let scalar_args = CallEvent { args: Some(json!("sk-abcdefghijklmnop1234567890ABCD")), ..bare.clone() };
        let gate_deny = GateEvent {
            tool: "t".into(),
            caller: "c\u{0}".into(),
            stage: "approval".into(),
            decision: "deny".into(),
            reason: "token ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123 revoked".into(),
        };
        let limit = LimitEvent {
            tool: "t".into(),
            function: "f".into(),
            caller: "c".into(),
            limit: "quota_bytes".into(),
            mount: Some("/out/ünï".into()),
            requested: u64::MAX,
            configured: 0,
            count: 1,
        };
        let limit_no_mount = LimitEvent { mount: None, ..limit.clone() };
        let denial_net = DenialEvent { target: "10.0.0.1:80".into(), count: Some(u64::MAX), ..denial() };
        let denial_unicode = DenialEvent { target: "/tmp/\u{202e}evil\u{0}.txt".into(), rule: "١٢٣-٤٥-٦٧٨٩".into(), ..denial() };
        let ids = ["0123456789abcdef0123456789abcdef", "", "call-1 a@b.io", "ключ\n\u{1}"];
        let events = [
            AuditEvent::Call(full),
            AuditEvent::Call(bare),
            AuditEvent::Call(no_args_with_error),
            AuditEvent::Call(empty_args),
            AuditEvent::Call(scalar_args),
            AuditEvent::Denial(denial()),
            AuditEvent::Denial(denial_net),
            AuditEvent::Denial(denial_unicode),
            AuditEvent::Gate(gate_deny),
            AuditEvent::Limit(limit),
            AuditEvent::Limit(limit_no_mount),
        ];
        let mut out = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            out.push((ids[i % ids.len()].to_string(), ev.clone()));
        }
        out
    }

    #[test]
    fn body_is_byte_identical_to_the_value_tree_path() {
        let redactors = [
            Redactor::new(&[]).unwrap(),
            Redactor::new(&[]).unwrap().with_ipv4(true),
            Redactor::new(&["acct-\\d+".into(), "(?i)files".into(), "漢".into()]).unwrap(),
        ];
        let mut n = 0;
        for r in &redactors {
            for (call_id, ev) in body_cases() {
                for (seq, ts) in [(1, 0), (u64::MAX, u64::MAX), (123_456, 1_795_000_000_000)] {
                    let want = old_body(seq, ts, &call_id, &ev, r);
                    let mut got = b"prefix".to_vec();
                    let id = write_body(&mut got, seq, ts, &call_id, &ev, r);
                    assert_eq!(std::str::from_utf8(&got[6..]).unwrap(), want, "{ev:?}");
                    let parsed: Value = serde_json::from_str(&want).unwrap();
                    assert_eq!(parsed["call_id"].as_str().unwrap(), id);
                    n += 1;
                }
            }
        }
        assert_eq!(n, 3 * 11 * 3);
        // The table does exercise redaction.
        let (id, ev) = &body_cases()[0];
        let body = old_body(1, 1, id, ev, &redactors[0]);
        for want in ["[REDACTED:card]", "[REDACTED:email]", "[REDACTED:ssn]", "[REDACTED:phone]"] {
            assert!(body.contains(want), "{want} in {body}");
        }
    }

    #[test]
    fn canonical_writer_matches_sort_and_print() {
        let values = [
            json!({"b": 1, "a": {"d": [{"z": 1, "y": null}], "c": "\u{0}é"}, "": 1.25, "\u{1F600}": -0}),
            json!([u64::MAX, i64::MIN, 1e-7, "x"]),
            json!(null),
        ];
        for v in values {
            let mut sorted = v.clone();
            sorted.sort_all_objects();
            assert_eq!(canonical_json(&v), sorted.to_string());
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
