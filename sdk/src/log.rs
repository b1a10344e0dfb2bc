//! Levelled, structured logging into the host's log.
//!
//! Log lines go to the host's `tracing` output, never to the agent's
//! protocol stream, and are never part of the tool's result.

use crate::bindings::wasmward::tool::log as host;

pub use host::Level;

/// Record `message` at `level` with key/value `fields`.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    host::log(level, message, &fields);
}

/// Record `message` at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message, &[]);
}

/// Record `message` at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

/// Record `message` at info level.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// Record `message` at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

/// Record `message` at error level.
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}
