//! `[audit]` settings.
//!
//! ```
//! let cfg: wasmward::audit::AuditConfig =
//!     serde_json::from_str(r#"{"durability": "async", "redact_patterns": ["acct-\\d+"]}"#).unwrap();
//! cfg.validate().unwrap();
//! assert_eq!(cfg.retention_days, 90);
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use super::error::Result;
use super::redact::Redactor;

/// When `AuditLog::record` resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// After the batch holding the events is committed to the WAL and the
    /// head checkpoint written (`synchronous=NORMAL`): a call that replied
    /// survives a crash or SIGKILL of the host; an OS crash or power loss
    /// may lose the last batches. Group commit keeps this off the hot path.
    #[default]
    Commit,
    /// Like `commit`, and the WAL is fsynced before `record` resolves
    /// (`synchronous=FULL`): a call that replied survives power loss too,
    /// at the price of one fsync per batch on the call's latency.
    Fsync,
    /// After the events are queued (`synchronous=NORMAL`): survives a host
    /// crash once committed, but the last batches may be lost on power loss.
    Async,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Database file; `<path>.key` and `<path>.head` live beside it.
    pub path: PathBuf,
    pub durability: Durability,
    /// Rows older than this are pruned (0 = no age limit).
    pub retention_days: u32,
    /// At most this many rows are kept by prune (0 = no count limit).
    pub max_records: u64,
    /// Store call arguments (redacted) in addition to their digest.
    pub record_arguments: bool,
    /// Extra regexes whose matches are replaced by `[REDACTED:custom]`.
    pub redact_patterns: Vec<String>,
    pub redact_ipv4: bool,
    /// Bound of the writer queue, in `record` calls; a full queue makes
    /// callers wait (never drops).
    pub queue_capacity: usize,
    /// Largest size of the database file in MiB (SQLite `max_page_count`);
    /// unset = no limit. Reaching it is handled like a full disk: the host
    /// refuses calls until rows are pruned.
    pub max_db_mb: Option<u64>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            path: default_path(),
            durability: Durability::Commit,
            retention_days: 90,
            max_records: 100_000,
            record_arguments: false,
            redact_patterns: Vec::new(),
            redact_ipv4: false,
            queue_capacity: 4096,
            max_db_mb: None,
        }
    }
}

/// `<data dir>/wasmward/audit.db`, or `./wasmward-audit.db` without one.
pub fn default_path() -> PathBuf {
    match dirs::data_dir() {
        Some(d) => d.join("wasmward").join("audit.db"),
        None => PathBuf::from("wasmward-audit.db"),
    }
}

impl AuditConfig {
    /// Checks what serde cannot: the regexes and the queue size.
    pub fn validate(&self) -> Result<()> {
        self.redactor()?;
        if self.queue_capacity == 0 {
            return Err(super::AuditError::Config(
                "audit.queue_capacity must be at least 1".into(),
            ));
        }
        if self.max_db_mb == Some(0) {
            return Err(super::AuditError::Config(
                "audit.max_db_mb = 0 would refuse every call; remove it for no limit".into(),
            ));
        }
        Ok(())
    }

    /// The redactor these settings describe.
    pub fn redactor(&self) -> Result<Redactor> {
        Ok(Redactor::new(&self.redact_patterns)?.with_ipv4(self.redact_ipv4))
    }
}

#[cfg(test)]
mod tests {
    use super::super::AuditError;
    use super::*;

    #[test]
    fn defaults_and_parse_errors() {
        let cfg: AuditConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg.durability, Durability::Commit);
        assert_eq!(
            (cfg.retention_days, cfg.max_records, cfg.queue_capacity),
            (90, 100_000, 4096)
        );
        assert!(cfg.path.ends_with("audit.db") || cfg.path.ends_with("wasmward-audit.db"));

        let cases = [
            (r#"{"durabilty": "async"}"#, "unknown field"),
            (r#"{"durability": "sometimes"}"#, "unknown variant"),
            (r#"{"max_records": -1}"#, "invalid value"),
        ];
        for (input, want) in cases {
            let err = serde_json::from_str::<AuditConfig>(input)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn bad_pattern_names_index_and_pattern() {
        let cfg: AuditConfig =
            serde_json::from_str(r#"{"redact_patterns": ["ok\\d+", "(unclosed"]}"#).unwrap();
        let err = cfg.validate().unwrap_err();
        assert!(matches!(err, AuditError::BadPattern { index: 1, .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("redact_patterns[1]") && msg.contains("(unclosed"),
            "{msg}"
        );
    }
}
