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
    /// A pending call with no decision by then is denied. The default
    /// (45 s) plus a tool's default `timeout_ms` (10 s) stays under the
    /// 60 s request timeout of the MCP TypeScript SDK.
    #[serde(default = "default_approval_timeout_ms")]
    pub approval_timeout_ms: u64,
    /// How often a waiting MCP call that sent a `progressToken` is told
    /// it still waits (`notifications/progress`).
    #[serde(default = "default_approval_progress_interval_ms")]
    pub approval_progress_interval_ms: u64,
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
            approval_progress_interval_ms: default_approval_progress_interval_ms(),
            blocked_input_patterns: Vec::new(),
            blocked_output_patterns: Vec::new(),
            output_action: OutputAction::Strip,
            max_input_bytes: None,
            max_output_bytes: None,
            token_key: default_token_key(),
        }
    }
}

/// Below the common MCP client request timeouts: the TypeScript SDK's
/// `DEFAULT_REQUEST_TIMEOUT_MSEC` is 60 s (and counts the tool's run after
/// the approval too), so 45 s + the default 10 s `timeout_ms` still fits.
pub const DEFAULT_APPROVAL_TIMEOUT_MS: u64 = 45_000;

/// The TypeScript SDK's default request timeout; `wasmward check` warns
/// when an approval wait can reach it.
pub const TS_SDK_REQUEST_TIMEOUT_MS: u64 = 60_000;

fn default_approval_timeout_ms() -> u64 {
    DEFAULT_APPROVAL_TIMEOUT_MS
}

fn default_approval_progress_interval_ms() -> u64 {
    5_000
}

fn default_token_key() -> PathBuf {
    PathBuf::from("wasmward-tokens.key")
}

impl GateConfig {
    /// `wasmward check` warnings about approval waits that MCP clients
    /// give up on first. `gated`: (tool, its `timeout_ms`) for each tool
    /// whose calls wait for approval.
    pub fn approval_warnings(&self, gated: &[(String, u64)]) -> Vec<String> {
        let t = self.approval_timeout_ms;
        let mut out = Vec::new();
        if t >= TS_SDK_REQUEST_TIMEOUT_MS {
            out.push(format!(
                "[gate] approval_timeout_ms = {t} is not below 60000, the MCP TypeScript SDK's default request timeout: its clients give up (error -32001 Request timed out) before a decision that late can reach them. Lower it (default {DEFAULT_APPROVAL_TIMEOUT_MS}), or have clients pass a longer `timeout` or `resetTimeoutOnProgress: true` with a progressToken"
            ));
        } else {
            for (tool, timeout_ms) in gated {
                if t + timeout_ms >= TS_SDK_REQUEST_TIMEOUT_MS {
                    out.push(format!(
                        "[gate] approval_timeout_ms = {t} plus tool {tool:?}'s timeout_ms = {timeout_ms} reaches 60000, the MCP TypeScript SDK's default request timeout: a call approved late can outlast the client's wait. Lower one of them, or have clients pass a longer `timeout` or `resetTimeoutOnProgress: true`"
                    ));
                }
            }
        }
        out
    }

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
        if !(100..=60_000).contains(&self.approval_progress_interval_ms) {
            return Err(format!("[gate] approval_progress_interval_ms = {} is out of range; use 100..=60000 (a few seconds keeps clients with short timeouts waiting)", self.approval_progress_interval_ms));
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
