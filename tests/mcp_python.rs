//! MCP with the official Python SDK (`mcp` from PyPI) against a real
//! `wasmward serve`, over stdio and streamable HTTP. The test creates a
//! venv under the cargo target dir and installs `mcp` into it once; the
//! checks themselves are in tests/mcp_client/session_check.py.

mod serve_common;

use serve_common::{example_wasm, repo_root, TestConfig, TestServer, BIN};
use std::path::PathBuf;
use std::process::Command;


/// `wasmward inspect --json` of the text tool, written for the script.
fn inspect_file(cfg: &TestConfig) -> PathBuf {
    let out = Command::new(BIN).args(["inspect", "--json"]).arg(example_wasm("text")).output().unwrap();
    assert!(out.status.success());
    let path = cfg.dir.path().join("inspect.json");
    std::fs::write(&path, out.stdout).unwrap();
    path
}

fn run_script(args: &[&str]) {
    let script = repo_root().join("tests/mcp_client/session_check.py");
    let out = Command::new(serve_common::python_with_mcp()).arg(&script).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success() && stdout.contains("ALL OK"), "python MCP client failed:\n{stdout}\n--- stderr ---\n{stderr}");
}

const GATE: &str = "[gate]\ndenied_tools = [\"hostile.loop-forever\"]\n";

/// The config the script reloads to: the same gate plus a second tool.
fn write_reload_config(cfg: &TestConfig) -> std::path::PathBuf {
    let reload = cfg.dir.path().join("reload.toml");
    let extra = format!("{GATE}\n[[tool]]\nname = \"text2\"\npath = {:?}\n", example_wasm("text").display().to_string());
    std::fs::write(&reload, serve_common::base_config(&extra)).unwrap();
    reload
}

#[test]
fn python_sdk_over_stdio() {
    let cfg = TestConfig::new(GATE);
    let inspect = inspect_file(&cfg);
    let reload = write_reload_config(&cfg);
    run_script(&[
        "stdio",
        "--bin",
        BIN,
        "--config",
        cfg.path.to_str().unwrap(),
        "--inspect",
        inspect.to_str().unwrap(),
        "--reload-config",
        reload.to_str().unwrap(),
    ]);
}

#[test]
fn python_sdk_over_streamable_http() {
    let cfg = TestConfig::new(GATE);
    let inspect = inspect_file(&cfg);
    let s = TestServer::start(&cfg);
    let token = cfg.token("py-agent", "*", &[]);
    let reload = write_reload_config(&cfg);
    run_script(&[
        "http",
        "--url",
        &s.url("/mcp"),
        "--token",
        &token,
        "--config",
        cfg.path.to_str().unwrap(),
        "--inspect",
        inspect.to_str().unwrap(),
        "--reload-config",
        reload.to_str().unwrap(),
    ]);
}
