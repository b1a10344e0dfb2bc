//! Tamper-evident audit log: one `call` event per tool call and one `denial`
//! event per refused capability use, in a single HMAC hash chain stored in
//! SQLite.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wasmward::audit::{AuditConfig, AuditEvent, AuditLog, CallEvent};
//! let log = AuditLog::open(&AuditConfig::default())?;
//! let call = CallEvent::new("files", "read", "agent-1", &serde_json::json!({"path": "/a"}));
//! log.record(vec![AuditEvent::Call(call)]).await?; // committed when it resolves
//! log.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Files: `event` (types + canonical JSON), `redact` (PII/secret scrubbing),
//! `key` (HMAC key), `store` (schema, chain append, head checkpoint),
//! `writer` (batched async writer), `verify`, `prune`, `read` (tail/export),
//! `config`.

mod config;
mod error;
mod event;
mod key;
mod prune;
mod read;
mod redact;
mod store;
mod verify;
mod writer;

pub use config::{AuditConfig, Durability};
pub use error::{AuditError, Result};
pub use event::{
    args_digest, canonical_json, outcome, AuditEvent, CallEvent, DenialEvent, GateEvent, LimitEvent,
    MAX_RECORDED_STRING_BYTES,
    StoredEvent,
};
pub use key::{AuditKey, KEY_ENV};
pub use prune::{prune, PruneReport};
pub use read::{export_jsonl, tail, Follow, Record};
pub use redact::Redactor;
pub use store::{head_path, key_path};
pub use verify::{verify, Tamper, TamperKind, VerifyReport};
pub use writer::{new_call_id, AuditLog};

#[cfg(test)]
mod tests;
