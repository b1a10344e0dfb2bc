//! Shared helpers for the end-to-end tests: build the example tools once per
//! test binary, and make configs, hosts and audit readers that only touch
//! temporary directories.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use wasmward::config::Config;
use wasmward::host::Host;

/// The repository root (the parent of `host/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// Builds the example tools once per test binary, unless
/// `WASMWARD_EXAMPLE_TOOLS_BUILT=1` says they are already built.
pub fn ensure_tools_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var("WASMWARD_EXAMPLE_TOOLS_BUILT").as_deref() == Ok("1") {
            return;
        }
        let script = repo_root().join("scripts").join("build-tools.sh");
        let out = Command::new("bash")
            .arg(&script)
            .current_dir(repo_root())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Path of the built example tool `name` (`text`, `files`, `fetch`, `shell`,
/// `hostile`), building the tools first if needed.
pub fn tool_path(name: &str) -> PathBuf {
    ensure_tools_built();
    let p = repo_root().join("example-tools/target/wasm32-wasip2/release").join(format!("{name}.wasm"));
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// A temporary directory for one test: audit db, compile cache, config.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir { dir: tempfile::Builder::new().prefix("wasmward-test-").tempdir().expect("temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn audit_db(&self) -> PathBuf {
        self.path().join("audit.db")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.path().join("cache")
    }

    /// The `[runtime]` and `[audit]` tables that keep everything in this
    /// directory, followed by `rest` (tools, defaults).
    pub fn config_text(&self, rest: &str) -> String {
        format!(
            "[runtime]\ncache_dir = {cache:?}\n\n[audit]\npath = {audit:?}\n\n{rest}",
            cache = self.cache_dir().display().to_string(),
            audit = self.audit_db().display().to_string(),
        )
    }

    /// Parses `config_text(rest)` as `test.toml` in this directory.
    pub fn config(&self, rest: &str) -> Config {
        let text = self.config_text(rest);
        Config::parse(&text, "test.toml", self.path()).unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"))
    }

    /// Writes `config_text(rest)` to `wasmward.toml` here and returns its path.
    pub fn write_config(&self, rest: &str) -> PathBuf {
        let p = self.path().join("wasmward.toml");
        std::fs::write(&p, self.config_text(rest)).expect("write config");
        p
    }

    /// Opens a host for `config(rest)`.
    pub async fn host(&self, rest: &str) -> Host {
        Host::open(self.config(rest)).await.unwrap_or_else(|e| panic!("Host::open failed: {e:#}"))
    }

    /// The `call` rows of the audit log: (tool, function, outcome), oldest
    /// first. Read after `host.shutdown().await`.
    pub fn audit_calls(&self) -> Vec<AuditCall> {
        audit_calls(&self.audit_db())
    }
}

/// One `call` row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCall {
    pub tool: String,
    pub function: String,
    pub outcome: String,
}

pub fn audit_calls(db: &Path) -> Vec<AuditCall> {
    use wasmward::audit::AuditEvent;
    let rows = wasmward::audit::tail(db, u64::MAX >> 1).unwrap_or_else(|e| panic!("read audit log {}: {e}", db.display()));
    rows.iter()
        .filter_map(|r| match r.event().expect("audit row parses").event {
            AuditEvent::Call(c) => Some(AuditCall { tool: c.tool, function: c.function, outcome: c.outcome }),
            _ => None,
        })
        .collect()
}

/// `[[tool]]` table for an example tool, with extra lines (limits) after it.
pub fn tool_entry(name: &str, example: &str, extra: &str) -> String {
    format!("[[tool]]\nname = {name:?}\npath = {:?}\n{extra}\n", tool_path(example).display().to_string())
}

/// The `wasmward` binary, run in `dir` with every cache and data dir inside it.
pub fn wasmward(dir: &TestDir) -> std::process::Command {
    wasmward_with_cache(dir, &dir.cache_dir())
}

pub fn wasmward_with_cache(dir: &TestDir, cache: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wasmward"));
    c.current_dir(dir.path())
        .env("WASMWARD_CACHE_DIR", cache)
        .env("XDG_DATA_HOME", dir.path().join("xdg-data"))
        .env("XDG_CACHE_HOME", dir.path().join("xdg-cache"))
        .env_remove("RUST_LOG")
        .env_remove("WASMWARD_AUDIT_KEY");
    c
}

pub fn run(cmd: &mut std::process::Command) -> std::process::Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}
