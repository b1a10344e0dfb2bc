//! Typed call failures. Each has a stable code for agents and scripts; none
//! is a host panic.

use serde::Serialize;
use serde_json::Value;

/// Why a call did not produce a result.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum CallError {
    #[error("unknown tool `{tool}`{hint}")]
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
    #[error("policy denied: {message}")]
    Denied { message: String },
    #[error("host error: {message}")]
    Host { message: String },
    /// Stopped before it finished: the caller cancelled it (MCP
    /// `notifications/cancelled`) or the server shut down.
    #[error("call cancelled: {reason}")]
    Cancelled { reason: String },
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
            CallError::Host { .. } => "host_error",
            CallError::Cancelled { .. } => "cancelled",
        }
    }
}
