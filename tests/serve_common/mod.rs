//! Shared by the server tests: the example tools, a temp config, and a
//! real `wasmward serve` process on a free loopback port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_wasmward");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The example tool `name`, built once per test run if missing.
pub fn example_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let path = repo_root().join(format!("example-tools/target/wasm32-wasip2/release/{name}.wasm"));
    if !path.exists() {
        BUILT.get_or_init(|| {
            let st = Command::new(repo_root().join("scripts/build-tools.sh")).status().expect("run scripts/build-tools.sh");
            assert!(st.success(), "scripts/build-tools.sh failed");
        });
    }
    assert!(path.exists(), "{} missing after building the example tools", path.display());
    path
}

/// A temp dir holding `wasmward.toml` (tools `text` and `hostile` plus
/// `extra`), the audit db and the token key. The compile cache is shared
/// across tests so tools compile once.
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn base_config(extra: &str) -> String {
    base_config_with("", extra)
}

/// [`base_config`] with extra `[runtime]` keys (`runtime`), which cannot
/// come after the tools.
pub fn base_config_with(runtime: &str, extra: &str) -> String {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasmward-compile-cache");
    format!(
        r#"
[runtime]
cache_dir = {cache:?}
{runtime}

[audit]
path = "audit.db"

[defaults.limits]
timeout_ms = 5000
memory_mb = 64

[[tool]]
name = "text"
path = {text:?}

[[tool]]
name = "hostile"
path = {hostile:?}
[tool.limits]
timeout_ms = 1000
memory_mb = 32

{extra}
"#,
        cache = cache.display().to_string(),
        text = example_wasm("text").display().to_string(),
        hostile = example_wasm("hostile").display().to_string(),
    )
}

impl TestConfig {
    pub fn new(extra: &str) -> TestConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wasmward.toml");
        std::fs::write(&path, base_config(extra)).unwrap();
        TestConfig { dir, path }
    }

    /// A config with extra `[runtime]` keys.
    pub fn new_with(runtime: &str, extra: &str) -> TestConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wasmward.toml");
        std::fs::write(&path, base_config_with(runtime, extra)).unwrap();
        TestConfig { dir, path }
    }

    pub fn rewrite(&self, extra: &str) {
        std::fs::write(&self.path, base_config(extra)).unwrap();
    }

    /// Runs the CLI against this config; returns (status, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--config").arg(&self.path).env_remove("WASMWARD_ADMIN_TOKEN").env_remove("WASMWARD_TOKEN");
        let out = cmd.output().expect("run wasmward");
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// `wasmward token issue` → the token.
    pub fn token(&self, name: &str, tools: &str, extra: &[&str]) -> String {
        let mut args = vec!["token", "issue", "--name", name, "--tools", tools];
        args.extend_from_slice(extra);
        let (st, out, err) = self.cli(&args);
        assert_eq!(st, 0, "token issue failed: {err}");
        out.trim().to_string()
    }

    /// Every audit event's body, via `wasmward audit export`.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        let (st, out, err) = self.cli(&["audit", "export"]);
        assert_eq!(st, 0, "audit export failed: {err}");
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["body"].clone())
            .collect()
    }
}

/// A running `wasmward serve --listen 127.0.0.1:0`.
pub struct TestServer {
    pub child: Child,
    pub base: String,
    pub stderr: Arc<Mutex<String>>,
}

impl TestServer {
    pub fn start(cfg: &TestConfig) -> TestServer {
        let mut child = Command::new(BIN)
            .args(["--log-level", "info", "serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&cfg.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wasmward serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start:\n{}", stderr.lock().unwrap());
            }
        };
        TestServer { child, base: format!("http://{addr}"), stderr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(st.success());
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (st.code(), self.log());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Python from a venv under the cargo target dir with the official MCP SDK
/// (`mcp` from PyPI) installed; pip runs once per target dir.
pub fn python_with_mcp() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mcp-venv");
        let py = venv.join("bin/python");
        let marker = venv.join(".mcp-installed");
        if !marker.exists() {
            let st = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 -m venv (install python3 and python3-venv)");
            assert!(st.success(), "python3 -m venv {} failed", venv.display());
            let out = Command::new(&py).args(["-m", "pip", "install", "--quiet", "mcp>=2.3,<3"]).output().expect("pip");
            assert!(out.status.success(), "pip install mcp failed:\n{}", String::from_utf8_lossy(&out.stderr));
            std::fs::write(&marker, "").unwrap();
        }
        py
    })
    .clone()
}
