//! The `[gate]` table: who may call what, how often, with which approval,
//! and what content may pass in and out.

use serde::Deserialize;
use std::path::PathBuf;

/// `[gate]` as written in `wasmward.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Glob patterns over full function names (`text.*`); unset = every
    /// tool, `[]` = none.
    pub allowed_tools: Option<Vec<String>>,
    /// Glob patterns that are refused even if allowed; deny wins.
    #[serde(default)]
    pub denied_tools: Vec<String>,
    /// Per caller (token): sustained rate; unset = no limit.
    pub requests_per_minute: Option<u32>,
    /// Per caller: calls allowed at once before the rate applies
    /// (default: `requests_per_minute`, at least 1).
    pub burst_size: Option<u32>,
    /// Per function, across all callers; unset = no limit.
    pub tool_requests_per_minute: Option<u32>,
    pub tool_burst_size: Option<u32>,
    /// Apply `requests_per_minute` and `tool_requests_per_minute` to the
    /// parent of `serve --stdio` too (default: it is one trusted client and
    /// is not rate-limited; `--token` scopes still apply).
    #[serde(default)]
    pub rate_limit_stdio: bool,
    /// Calls to tools granted the `process` capability wait for approval.
    #[serde(default)]
    pub approve_process: bool,
    /// A pending call with no decision by then is denied.
    #[serde(default = "default_approval_timeout_ms")]
    pub approval_timeout_ms: u64,
    /// Regexes refused in any string (or key) of the arguments.
    #[serde(default)]
    pub blocked_input_patterns: Vec<String>,
    /// Regexes looked for in every string of a result.
    #[serde(default)]
    pub blocked_output_patterns: Vec<String>,
    /// `strip` replaces matches with `[FILTERED]`; `block` refuses the result.
    #[serde(default)]
    pub output_action: OutputAction,
    /// Largest arguments (as JSON) accepted.
    pub max_input_bytes: Option<usize>,
    /// Largest result (as JSON) returned.
    pub max_output_bytes: Option<usize>,
    /// HMAC key for bearer tokens; revocations and the issue log live
    /// beside it (`.revoked`, `.issued`). Relative to the config file.
    #[serde(default = "default_token_key")]
    pub token_key: PathBuf,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OutputAction {
    #[default]
    Strip,
    Block,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            allowed_tools: None,
            denied_tools: Vec::new(),
            requests_per_minute: None,
            burst_size: None,
            tool_requests_per_minute: None,
            tool_burst_size: None,
            rate_limit_stdio: false,
            approve_process: false,
            approval_timeout_ms: default_approval_timeout_ms(),
            blocked_input_patterns: Vec::new(),
            blocked_output_patterns: Vec::new(),
            output_action: OutputAction::Strip,
            max_input_bytes: None,
            max_output_bytes: None,
            token_key: default_token_key(),
        }
    }
}

fn default_approval_timeout_ms() -> u64 {
    60_000
}

fn default_token_key() -> PathBuf {
    PathBuf::from("wasmward-tokens.key")
}

impl GateConfig {
    /// Every check that does not need the tools: patterns compile, numbers
    /// are in range. Errors name the key and say how to fix it.
    pub fn validate(&self) -> Result<(), String> {
        for (key, pats) in [("allowed_tools", self.allowed_tools.as_deref().unwrap_or(&[])), ("denied_tools", &self.denied_tools[..])] {
            for (i, p) in pats.iter().enumerate() {
                super::filter::validate_pattern(p).map_err(|m| format!("[gate] {key}[{i}] = {p:?}: {m}"))?;
            }
        }
        for (key, rate, burst) in [
            ("requests_per_minute", self.requests_per_minute, self.burst_size),
            ("tool_requests_per_minute", self.tool_requests_per_minute, self.tool_burst_size),
        ] {
            if rate == Some(0) {
                return Err(format!("[gate] {key} = 0 would refuse every call; remove it for no limit, or deny tools with denied_tools"));
            }
            if burst == Some(0) {
                return Err(format!("[gate] the burst size for {key} is 0, which would refuse every call; use 1 or more"));
            }
            if rate.is_none() && burst.is_some() {
                return Err(format!("[gate] a burst size is set without {key}; set {key} too, or remove the burst size"));
            }
        }
        if self.approval_timeout_ms == 0 || self.approval_timeout_ms > 86_400_000 {
            return Err(format!("[gate] approval_timeout_ms = {} is out of range; use 1..=86400000", self.approval_timeout_ms));
        }
        super::content::compile_patterns(&self.blocked_input_patterns, "blocked_input_patterns")?;
        super::content::compile_patterns(&self.blocked_output_patterns, "blocked_output_patterns")?;
        for (key, v) in [("max_input_bytes", self.max_input_bytes), ("max_output_bytes", self.max_output_bytes)] {
            if v == Some(0) {
                return Err(format!("[gate] {key} = 0 would refuse every call; remove it for no limit"));
            }
        }
        Ok(())
    }
}
