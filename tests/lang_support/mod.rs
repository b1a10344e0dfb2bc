//! Helpers for the Python/JS tool tests: build the tools once per test
//! binary, configs and hosts in temp dirs, audit rows as JSON, and a
//! recursive custom-section stripper.

#![allow(dead_code)]

pub mod strip;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use wasmward::config::Config;
use wasmward::host::Host;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

fn run_script(name: &str) {
    let script = repo_root().join("scripts").join(name);
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(out.status.success(), "{} failed ({}):\n{}", script.display(), out.status, String::from_utf8_lossy(&out.stderr));
}

/// Builds the Rust, Python and JS example tools once per test binary,
/// unless `WASMWARD_EXAMPLE_TOOLS_BUILT=1` (scripts/test.sh built them),
/// then compiles the Python and JS tools into the shared cache once, so
/// that tests running in parallel do not each compile them (seconds each).
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var("WASMWARD_EXAMPLE_TOOLS_BUILT").as_deref() != Ok("1") {
            run_script("build-tools.sh");
            run_script("build-lang-tools.sh");
        }
        let rt = wasmward::Runtime::new(wasmward::RuntimeOptions { max_concurrent_calls: 4, cache_dir: Some(shared_cache()), ..Default::default() })
            .expect("runtime");
        for tool in ["python-text", "js-text"] {
            let path = repo_root().join("example-tools/target/lang").join(format!("{tool}.wasm"));
            let plan = wasmward::sandbox::SandboxPlan::deny_all("warm", Default::default());
            if let Err(e) = rt.load_tool(plan, &path, None) {
                panic!("{tool} does not load: {e}");
            }
        }
    });
}

/// `python-text` or `js-text`, built.
pub fn lang_tool(name: &str) -> PathBuf {
    ensure_built();
    let p = repo_root().join("example-tools/target/lang").join(format!("{name}.wasm"));
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// The Rust `text` example tool, built.
pub fn rust_text() -> PathBuf {
    ensure_built();
    let p = repo_root().join("example-tools/target/wasm32-wasip2/release/text.wasm");
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// A compile cache shared by every test: a 15 MB component takes seconds
/// to compile, and entries are keyed by digest and engine, so sharing is
/// safe.
pub fn shared_cache() -> PathBuf {
    repo_root().join("target/lang/test-compile-cache")
}

/// A temp dir holding one test's audit log and config.
pub struct TestDir(pub tempfile::TempDir);

impl TestDir {
    pub fn new() -> TestDir {
        TestDir(tempfile::Builder::new().prefix("wasmward-lang-").tempdir().expect("temp dir"))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn audit_db(&self) -> PathBuf {
        self.path().join("audit.db")
    }

    /// A config with the shared compile cache and this dir's audit log,
    /// then `rest`; also written to `wasmward.toml`.
    pub fn config(&self, rest: &str) -> Config {
        let text = format!(
            "[runtime]\ncache_dir = {:?}\n\n[audit]\npath = {:?}\n\n{rest}",
            shared_cache().display().to_string(),
            self.audit_db().display().to_string()
        );
        let file = self.path().join("wasmward.toml");
        std::fs::write(&file, &text).expect("write config");
        Config::load(&file).unwrap_or_else(|e| panic!("config does not load: {e}\n{text}"))
    }
}

/// A `[[tool]]` entry for `path` with `policy` lines under `[tool.policy]`.
pub fn tool_entry(name: &str, path: &Path, policy: &str) -> String {
    format!("[[tool]]\nname = {name:?}\npath = {:?}\n[tool.policy]\n{policy}\n", path.display().to_string())
}

/// Both example tools, as `py` and `js`, with `policy`.
pub fn both_tools(policy: &str) -> String {
    tool_entry("py", &lang_tool("python-text"), policy) + "\n" + &tool_entry("js", &lang_tool("js-text"), policy)
}

pub async fn open(cfg: Config) -> Host {
    match Host::open(cfg).await {
        Ok(h) => h,
        Err(e) => panic!("host does not open: {e:#}"),
    }
}

/// Every audit row's body (the signed event), oldest first.
pub fn audit_bodies(db: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    wasmward::audit::export_jsonl(db, &mut out).expect("export audit log");
    String::from_utf8(out)
        .expect("utf-8 export")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")["body"].clone())
        .collect()
}

/// The denial rows of `capability`.
pub fn denials(db: &Path, capability: &str) -> Vec<Value> {
    audit_bodies(db).into_iter().filter(|b| b["kind"] == "denial" && b["capability"] == capability).collect()
}
