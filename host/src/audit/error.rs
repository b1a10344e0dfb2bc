//! One error type for the audit module; messages say what to do.

use std::path::PathBuf;

pub type Result<T, E = AuditError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit key: {0}")]
    Key(String),
    #[error(
        "audit key file {} is readable by group or others (mode {mode:03o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("audit.redact_patterns[{index}] `{pattern}` is not a valid regex: {source}")]
    BadPattern {
        index: usize,
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("audit config: {0}")]
    Config(String),
    #[error("audit head checkpoint {}: {reason}", path.display())]
    Checkpoint { path: PathBuf, reason: String },
    #[error("audit writer: {0}")]
    Write(String),
    #[error("audit log is shut down; the event was not recorded")]
    Closed,
    #[error("refusing to prune: {0}; run `wasmward audit verify`")]
    PruneRefused(String),
    #[error("audit event JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub(super) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AuditError {
    let path = path.into();
    move |source| AuditError::Io { path, source }
}
