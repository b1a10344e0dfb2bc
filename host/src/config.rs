//! The operator's file, `wasmward.toml`: tools, their limits and policies,
//! server, runtime and audit settings. Unknown keys are errors, and every
//! error names the file, the line and the key, and says how to fix it.

use crate::audit::AuditConfig;
use crate::policy::PolicySpec;
use crate::sandbox::Limits;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config file error: where, and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub gate: crate::gate::GateConfig,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default, rename = "tool")]
    pub tools: Vec<ToolConfig>,
    /// Directory the relative paths in the file are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
    #[serde(skip)]
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address for MCP at /mcp and the HTTP API.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Browser origins allowed by CORS (and as MCP `Origin`s); none by default.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Refuse requests whose `X-Forwarded-Proto` is not `https` (403).
    #[serde(default)]
    pub require_https: bool,
    /// Largest request body, enforced while streaming (chunked too).
    #[serde(default = "default_max_body")]
    pub max_request_body_bytes: usize,
    /// Concurrent MCP streamable-HTTP sessions; more get 503.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// `Host` header values accepted (DNS-rebinding protection); a name
    /// without a port matches any port.
    #[serde(default = "default_allowed_hosts")]
    pub allowed_hosts: Vec<String>,
    /// `Origin`s accepted on /mcp besides `cors_origins`; a request with any
    /// other `Origin` is refused (403). Requests without `Origin` pass.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// How long shutdown waits for calls in flight.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// MCP sessions one token (or caller) may hold open at once; unset:
    /// 8, or `max_sessions` if that is smaller.
    pub max_sessions_per_token: Option<usize>,
    /// An MCP session with no traffic for this long is closed.
    #[serde(default = "default_session_idle_timeout_ms")]
    pub session_idle_timeout_ms: u64,
    /// Requests refused before authentication, per source address, per
    /// minute; past the burst they get 429.
    #[serde(default = "default_unauthenticated_rpm")]
    pub unauthenticated_requests_per_minute: u32,
    #[serde(default = "default_unauthenticated_burst")]
    pub unauthenticated_burst: u32,
    /// What replaces the dots of a canonical function name in the names
    /// agents see (MCP `tools/list`, `/v1/tools?format=openai|anthropic`):
    /// `text.analysis.word-stats` is listed as `text__analysis__word-stats`.
    #[serde(default = "default_tool_name_separator")]
    pub tool_name_separator: String,
    /// OAuth 2.1 resource server: JWT access tokens from one issuer.
    pub oauth: Option<crate::server::oauth::OAuthConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            cors_origins: Vec::new(),
            require_https: false,
            max_request_body_bytes: default_max_body(),
            max_sessions: default_max_sessions(),
            allowed_hosts: default_allowed_hosts(),
            allowed_origins: Vec::new(),
            shutdown_grace_ms: default_shutdown_grace_ms(),
            max_sessions_per_token: None,
            session_idle_timeout_ms: default_session_idle_timeout_ms(),
            unauthenticated_requests_per_minute: default_unauthenticated_rpm(),
            unauthenticated_burst: default_unauthenticated_burst(),
            tool_name_separator: default_tool_name_separator(),
            oauth: None,
        }
    }
}

impl ServerConfig {
    /// `max_sessions_per_token` as applied.
    pub fn sessions_per_token(&self) -> usize {
        self.max_sessions_per_token.unwrap_or(8).min(self.max_sessions).max(1)
    }
}

fn default_session_idle_timeout_ms() -> u64 {
    300_000
}

fn default_unauthenticated_rpm() -> u32 {
    60
}

fn default_unauthenticated_burst() -> u32 {
    20
}

fn default_tool_name_separator() -> String {
    crate::server::names::DEFAULT_SEPARATOR.into()
}

fn default_max_body() -> usize {
    1 << 20
}

fn default_max_sessions() -> usize {
    64
}

fn default_allowed_hosts() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

fn default_shutdown_grace_ms() -> u64 {
    30_000
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Calls in flight at once; more wait.
    #[serde(default = "default_concurrency")]
    pub max_concurrent_calls: u32,
    /// Compile cache directory (default: the user cache dir).
    pub cache_dir: Option<PathBuf>,
    /// PEM files of extra CA certificates trusted by tools' outgoing HTTPS,
    /// besides the built-in web roots (a corporate proxy, an internal API).
    /// Relative paths are resolved against the config file's directory.
    #[serde(default)]
    pub ca_certificates: Vec<PathBuf>,
    /// The files of `ca_certificates`, read and checked at load.
    #[serde(skip)]
    pub ca_loaded: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig { max_concurrent_calls: default_concurrency(), cache_dir: None, ca_certificates: Vec::new(), ca_loaded: Vec::new() }
    }
}

impl RuntimeConfig {
    /// The outgoing HTTPS config with `ca_certificates` (`None`: the
    /// built-in web roots only).
    pub fn tls_config(&self) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, String> {
        crate::sandbox::http::client_config(&self.ca_loaded).map_err(|m| format!("runtime.ca_certificates: {m}"))
    }
}

fn default_concurrency() -> u32 {
    64
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The operator's ceiling for every tool.
    pub policy: Option<PolicySpec>,
}

/// Limits as written; unset fields fall back to `[defaults.limits]`, then
/// to the built-in defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub fuel: Option<u64>,
    pub max_output_bytes: Option<u64>,
    pub max_stdout_bytes: Option<u64>,
    /// Bytes a call may write to files (0: none).
    pub max_write_bytes: Option<u64>,
    /// Files, sockets, streams and other resources a call may hold at once.
    pub max_handles: Option<u64>,
}

impl LimitsConfig {
    /// `self` over `base` over the built-in defaults, validated. `at` names
    /// the table for errors (`tool "files".limits`).
    pub fn resolve(&self, base: &LimitsConfig, at: &str) -> Result<Limits, String> {
        let d = Limits::default();
        let pick = |a: Option<u64>, b: Option<u64>| a.or(b);
        let timeout_ms = pick(self.timeout_ms, base.timeout_ms).unwrap_or(d.timeout.as_millis() as u64);
        let memory_mb = pick(self.memory_mb, base.memory_mb).unwrap_or((d.memory_bytes >> 20) as u64);
        let max_mb = (crate::runtime::engine::MAX_MEMORY_BYTES >> 20) as u64;
        if timeout_ms == 0 || timeout_ms > 3_600_000 {
            return Err(format!("{at}.timeout_ms = {timeout_ms} is out of range; use 1..=3600000"));
        }
        if memory_mb == 0 || memory_mb > max_mb {
            return Err(format!("{at}.memory_mb = {memory_mb} is out of range; use 1..={max_mb}"));
        }
        let fuel = pick(self.fuel, base.fuel);
        if fuel == Some(0) {
            return Err(format!("{at}.fuel = 0 would stop every call; remove it for no fuel limit"));
        }
        let max_handles = pick(self.max_handles, base.max_handles).unwrap_or(d.max_handles as u64);
        if !(MIN_HANDLES..=MAX_HANDLES).contains(&max_handles) {
            return Err(format!("{at}.max_handles = {max_handles} is out of range; use {MIN_HANDLES}..={MAX_HANDLES}"));
        }
        Ok(Limits {
            max_write_bytes: pick(self.max_write_bytes, base.max_write_bytes).unwrap_or(d.max_write_bytes),
            max_handles: max_handles as usize,
            timeout: Duration::from_millis(timeout_ms),
            memory_bytes: (memory_mb << 20) as usize,
            fuel,
            max_output_bytes: pick(self.max_output_bytes, base.max_output_bytes).map_or(d.max_output_bytes, |v| v as usize),
            max_stdout_bytes: pick(self.max_stdout_bytes, base.max_stdout_bytes).map_or(d.max_stdout_bytes, |v| v as usize),
        })
    }
}

/// `max_handles` bounds: a call needs a few handles just to start (its
/// stdio streams, preopens); the top keeps one call from holding a large
/// share of the process's descriptors.
const MIN_HANDLES: u64 = 16;
const MAX_HANDLES: u64 = 65_536;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolConfig {
    pub name: String,
    pub path: PathBuf,
    pub sha256: Option<String>,
    /// Overrides the description taken from the component's WIT docs.
    pub description: Option<String>,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The operator's ceiling for every tool.
    pub policy: Option<PolicySpec>,
    /// Calls wait as pending until an operator allows them (`wasmward approve`).
    #[serde(default)]
    pub require_approval: bool,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            message: format!("cannot read the config file: {e}; pass --config FILE or create ./wasmward.toml (see `examples/wasmward.toml`)"),
        })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        Config::parse(&text, &file, &base)
    }

    /// Parses config text; `file` is only used in messages.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError { file: file.to_string(), message };
        let mut cfg: Config = toml::from_str(text).map_err(|e| err(describe_toml_error(&e, text)))?;
        cfg.base_dir = base_dir.to_path_buf();
        cfg.source = file.to_string();
        cfg.validate().map_err(err)?;
        cfg.runtime.ca_loaded = cfg.load_ca_certificates().map_err(err)?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.tools.iter().enumerate() {
            let at = format!("[[tool]] #{} (name = {:?})", i + 1, t.name);
            validate_tool_name(&t.name).map_err(|m| format!("{at}: name {m}"))?;
            if !seen.insert(t.name.as_str()) {
                return Err(format!("{at}: duplicate tool name; each [[tool]] needs a unique name"));
            }
            if let Some(s) = &t.sha256 {
                if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!("{at}: sha256 = {s:?} is not 64 hex digits; get it with `wasmward inspect {}`", t.path.display()));
                }
            }
            t.limits.resolve(&self.defaults.limits, &format!("tool {:?}.limits", t.name))?;
        }
        self.defaults.limits.resolve(&LimitsConfig::default(), "defaults.limits")?;
        self.audit.validate().map_err(|e| format!("[audit]: {e}"))?;
        crate::server::validate_server_config(&self.server)?;
        if let Some(o) = &self.server.oauth {
            o.check(&self.base_dir)?;
        }
        self.gate.validate()?;
        if self.runtime.max_concurrent_calls == 0 || self.runtime.max_concurrent_calls > 4096 {
            return Err(format!("runtime.max_concurrent_calls = {} is out of range; use 1..=4096", self.runtime.max_concurrent_calls));
        }
        Ok(())
    }

    /// Reads every `[runtime] ca_certificates` file; an error names the
    /// entry, the file and what is wrong with it.
    fn load_ca_certificates(&self) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
        let mut out = Vec::new();
        for (i, p) in self.runtime.ca_certificates.iter().enumerate() {
            let path = self.resolve_path(p);
            let certs = crate::sandbox::http::load_ca_file(&path).map_err(|m| {
                format!("runtime.ca_certificates[{i}] = {:?} ({}): {m}; fix: give a readable PEM file of CA certificates, or remove the entry", p.display().to_string(), path.display())
            })?;
            out.extend(certs);
        }
        Ok(out)
    }

    /// A path from the file, resolved against the file's directory.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// Tool names become MCP name prefixes (`name.function`), so they are kept
/// to lowercase letters, digits, `-` and `_`.
pub fn validate_tool_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is invalid; use 1-64 of a-z, 0-9, '-', '_', starting with a letter or digit"))
    }
}

/// The toml error (which carries line, column and key) plus a fix.
fn describe_toml_error(e: &toml::de::Error, _text: &str) -> String {
    let msg = e.to_string();
    let hint = if msg.contains("unknown field") {
        "\nfix: remove or rename the key; the message lists the keys this table accepts"
    } else if msg.contains("missing field") {
        "\nfix: add the missing key to that table"
    } else if msg.contains("invalid type") {
        "\nfix: give the key a value of the expected type"
    } else {
        ""
    };
    format!("{}{hint}", msg.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, "wasmward.toml", Path::new("/etc/ww")).map_err(|e| e.to_string())
    }

    #[test]
    fn ca_certificate_files_are_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).unwrap();
        };
        write("empty.pem", "");
        write("junk.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
        write("notcert.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        // (entry, Err substring or None for ok)
        let cases: &[(&str, &str)] = &[
            ("empty.pem", "holds no `-----BEGIN CERTIFICATE-----` block"),
            ("junk.pem", "not valid PEM"),
            ("notcert.pem", "certificate #1 is not a usable CA certificate"),
            ("nope.pem", "cannot read it"),
        ];
        for (entry, want) in cases {
            let text = format!("[runtime]\nca_certificates = [{entry:?}]\n");
            let e = Config::parse(&text, "w.toml", dir.path()).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("runtime.ca_certificates[0]") && e.contains(entry), "{entry}: {e}");
        }
    }

    #[test]
    fn good_configs_parse() {
        let cfg = parse(
            r#"
[runtime]
max_concurrent_calls = 8
[defaults.limits]
timeout_ms = 500
[[tool]]
name = "text"
path = "tools/text.wasm"
[tool.limits]
memory_mb = 32
max_write_bytes = 0
"#,
        )
        .unwrap();
        assert_eq!(cfg.tools.len(), 1);
        assert_eq!(cfg.resolve_path(&cfg.tools[0].path), PathBuf::from("/etc/ww/tools/text.wasm"));
        let limits = cfg.tools[0].limits.resolve(&cfg.defaults.limits, "t").unwrap();
        assert_eq!(limits.timeout, Duration::from_millis(500));
        assert_eq!(limits.memory_bytes, 32 << 20);
        assert_eq!((limits.max_write_bytes, limits.max_handles), (0, 256));
        let d = LimitsConfig::default().resolve(&LimitsConfig { max_handles: Some(64), ..Default::default() }, "t").unwrap();
        assert_eq!((d.max_write_bytes, d.max_handles), (256 << 20, 64));
        assert!(parse("").unwrap().tools.is_empty());
    }

    #[test]
    fn bad_configs_name_file_line_key_and_fix() {
        let cases: &[(&str, &[&str])] = &[
            ("[[tool]]\nname = \"a\"\npath = \"a.wasm\"\ncolour = 1\n", &["wasmward.toml", "line 4", "unknown field `colour`", "fix:"]),
            ("[[tool]]\nname = \"a\"\n", &["missing field `path`", "fix: add"]),
            ("[runtime]\nmax_concurrent_calls = \"x\"\n", &["line 2", "invalid type", "fix:"]),
            ("[[tool]]\nname = \"Bad Name\"\npath = \"a.wasm\"\n", &["name \"Bad Name\" is invalid", "a-z"]),
            ("[[tool]]\nname = \"a\"\npath = \"a.wasm\"\n[[tool]]\nname = \"a\"\npath = \"b.wasm\"\n", &["#2", "duplicate tool name"]),
            ("[[tool]]\nname = \"a\"\npath = \"a.wasm\"\nsha256 = \"abc\"\n", &["not 64 hex digits", "wasmward inspect a.wasm"]),
            ("[[tool]]\nname = \"a\"\npath = \"a.wasm\"\n[tool.limits]\nmemory_mb = 0\n", &["tool \"a\".limits.memory_mb = 0", "use 1..="]),
            ("[defaults.limits]\ntimeout_ms = 0\n", &["defaults.limits.timeout_ms = 0"]),
            ("[defaults.limits]\nfuel = 0\n", &["fuel = 0", "remove it"]),
            ("[defaults.limits]\nmax_handles = 4\n", &["defaults.limits.max_handles = 4 is out of range", "use 16..=65536"]),
            ("[[tool]]\nname = \"a\"\npath = \"a.wasm\"\n[tool.limits]\nmax_handles = 100000\n", &["tool \"a\".limits.max_handles = 100000"]),
            ("[defaults.limits]\nmax_write_bytes = -1\n", &["max_write_bytes", "invalid value"]),
            ("[runtime]\nmax_concurrent_calls = 0\n", &["max_concurrent_calls = 0"]),
            ("[server]\nlisten = 5\n", &["invalid type"]),
            ("[runtime]\nca_certificates = [\"missing-ca.pem\"]\n", &["runtime.ca_certificates[0] = \"missing-ca.pem\" (/etc/ww/missing-ca.pem)", "cannot read it", "fix:"]),
            ("[runtime]\nca_certificate = [\"x.pem\"]\n", &["unknown field `ca_certificate`"]),
        ];
        for (text, needles) in cases {
            let e = parse(text).expect_err(text);
            for n in *needles {
                assert!(e.contains(n), "error for {text:?} lacks {n:?}: {e}");
            }
        }
    }
}
