//! The one error shape agents see on every protocol: a stable `code`, a
//! message, and the HTTP status it maps to.

use crate::error::CallError;
use crate::gate::Refusal;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Extra fields (the tool's `err` value, limits).
    pub detail: Option<Value>,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.into(), message: message.into(), detail: None, retry_after: None }
    }

    /// `{"error": {"code", "message", ...detail}}`.
    pub fn body(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let (Some(Value::Object(extra)), Some(obj)) = (&self.detail, e.as_object_mut()) {
            for (k, v) in extra {
                if k != "code" && k != "message" {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
        if let (Some(d), Some(obj)) = (self.retry_after, e.as_object_mut()) {
            obj.insert("retry_after_secs".into(), json!(crate::gate::rate::retry_after_secs(d)));
        }
        json!({ "error": e })
    }
}

/// HTTP status for each call error code.
pub fn status_for_call_error(e: &CallError) -> StatusCode {
    match e {
        CallError::UnknownTool { .. } | CallError::UnknownFunction { .. } => StatusCode::NOT_FOUND,
        CallError::InvalidArguments { .. } => StatusCode::BAD_REQUEST,
        CallError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        CallError::Denied { .. } => StatusCode::FORBIDDEN,
        CallError::ToolError { .. } | CallError::MemoryLimit { .. } | CallError::FuelExhausted { .. } | CallError::OutputLimit { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        CallError::WriteLimit { .. } | CallError::HandleLimit { .. } | CallError::Exited { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        CallError::Trap { .. } => StatusCode::BAD_GATEWAY,
        CallError::Host { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        CallError::Cancelled { .. } => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<&CallError> for ApiError {
    fn from(e: &CallError) -> ApiError {
        ApiError {
            status: status_for_call_error(e),
            code: e.code().into(),
            message: e.to_string(),
            detail: serde_json::to_value(e).ok(),
            retry_after: None,
        }
    }
}

impl From<&Refusal> for ApiError {
    fn from(r: &Refusal) -> ApiError {
        let status = match r.code {
            "unauthorized" => StatusCode::UNAUTHORIZED,
            "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
            "oauth_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "input_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "output_too_large" => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::FORBIDDEN,
        };
        ApiError {
            status,
            code: r.code.into(),
            message: r.message.clone(),
            detail: Some(json!({"stage": r.stage.as_str()})),
            retry_after: r.retry_after,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_stable() {
        let cases: Vec<(CallError, u16, &str)> = vec![
            (CallError::UnknownTool { tool: "x".into(), hint: String::new() }, 404, "unknown_tool"),
            (CallError::InvalidArguments { message: "$.name: expected a string".into() }, 400, "invalid_arguments"),
            (CallError::Timeout { timeout_ms: 5 }, 504, "timeout"),
            (CallError::Denied { message: "m".into(), denials: vec![], total: 1, cause: Box::new(CallError::ToolError { value: json!("x") }) }, 403, "denied"),
            (CallError::WriteLimit { limit: 1, requested: 2, mount: None }, 422, "write_limit"),
            (CallError::Exited { status: 0 }, 422, "exited"),
            (CallError::ToolError { value: json!("bad") }, 422, "tool_error"),
            (CallError::Trap { message: "unreachable".into() }, 502, "trap"),
            (CallError::Host { message: "m".into() }, 500, "host_error"),
        ];
        for (e, status, code) in cases {
            let a = ApiError::from(&e);
            assert_eq!((a.status.as_u16(), a.code.as_str()), (status, code), "{e}");
            assert_eq!(a.body()["error"]["code"], code);
            assert!(!a.body()["error"]["message"].as_str().unwrap().is_empty());
        }
        let tool_err = ApiError::from(&CallError::ToolError { value: json!({"reason": "x"}) });
        assert_eq!(tool_err.body()["error"]["value"], json!({"reason": "x"}));
    }
}
