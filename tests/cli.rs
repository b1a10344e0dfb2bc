//! End-to-end tests of the `wasmward` binary: `call`, `inspect`, `check`,
//! `new`, exit statuses, config errors, digest pins and the compile cache.
//! Every command runs in a temp dir with the compile cache, the audit log and
//! the XDG dirs pointed inside it.

mod common;

use common::{repo_root, run, tool_entry, tool_path, wasmward, wasmward_with_cache, TestDir};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Command, Output};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_status(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

/// The `{"error": {...}}` line a failed call prints on stderr.
fn error_json(o: &Output) -> Value {
    let text = stderr(o);
    let line = text
        .lines()
        .find(|l| l.starts_with("{\"error\""))
        .unwrap_or_else(|| panic!("no JSON error line on stderr:\n{text}"));
    serde_json::from_str::<Value>(line).expect("error line is JSON")["error"].clone()
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn call_by_path_prints_the_json_result() {
    let dir = TestDir::new();
    let text = tool_path("text");
    let o = run(wasmward(&dir).args(["call", path_str(&text), "greet", "--args", r#"{"name":"cli"}"#]));
    assert_status(&o, 0);
    assert_eq!(stdout(&o), "\"Hello, cli!\"\n");

    let o = run(wasmward(&dir).args([
        "call",
        path_str(&text),
        "analysis.word-stats",
        "--args",
        r#"{"text":"one two"}"#,
    ]));
    assert_status(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v, json!({"words": 2, "lines": 1, "chars": 7, "bytes": 7, "longest-word": "one"}));
}

#[test]
fn call_by_config_name_prints_the_json_result_and_audits_it() {
    let dir = TestDir::new();
    let cfg = dir.write_config(&tool_entry("text", "text", ""));
    let o = run(wasmward(&dir).args(["call", "--config", path_str(&cfg), "text", "add", "--args", r#"{"a":2,"b":40}"#]));
    assert_status(&o, 0);
    assert_eq!(stdout(&o), "42\n");
    let rows = dir.audit_calls();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].tool.as_str(), rows[0].function.as_str(), rows[0].outcome.as_str()), ("text", "text.add", "ok"));
}

#[test]
fn failed_call_exits_1_with_a_json_error_code() {
    let dir = TestDir::new();
    let hostile = tool_path("hostile");
    let o = run(wasmward(&dir).args(["call", path_str(&hostile), "panic-now", "--args", r#"{"msg":"cli boom"}"#]));
    assert_status(&o, 1);
    assert_eq!(stdout(&o), "");
    let e = error_json(&o);
    assert_eq!(e["code"], "trap");
    assert!(e["message"].as_str().unwrap().contains("cli boom"), "{e}");

    let text = tool_path("text");
    let o = run(wasmward(&dir).args(["call", path_str(&text), "analysis.parse-int", "--args", r#"{"s":"x1"}"#]));
    assert_status(&o, 1);
    let e = error_json(&o);
    assert_eq!(e["code"], "tool_error");
    assert_eq!(e["value"], "not an integer: \"x1\": invalid digit found in string");

    let o = run(wasmward(&dir).args(["call", path_str(&text), "greet", "--args", r#"{"name":1}"#]));
    assert_status(&o, 1);
    let e = error_json(&o);
    assert_eq!(e["code"], "invalid_arguments");
    assert_eq!(e["message"], "invalid arguments: args.name: expected string, got 1");
}

#[test]
fn guest_stdout_never_reaches_the_cli_stdout() {
    let dir = TestDir::new();
    let hostile = tool_path("hostile");
    let o = run(wasmward(&dir).args(["call", path_str(&hostile), "fake-jsonrpc"]));
    assert_status(&o, 0);
    assert_eq!(stdout(&o), "\"ok\"\n");
    assert!(stderr(&o).contains("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}"), "{}", stderr(&o));
}

#[test]
fn unknown_tool_or_function_or_bad_args_json_exits_2() {
    let dir = TestDir::new();
    let cfg = dir.write_config(&tool_entry("text", "text", ""));
    let o = run(wasmward(&dir).args(["call", "--config", path_str(&cfg), "nosuch", "greet"]));
    assert_status(&o, 2);
    assert!(stderr(&o).contains("no tool named `nosuch`") && stderr(&o).contains("tools: text"), "{}", stderr(&o));

    let o = run(wasmward(&dir).args(["call", "--config", path_str(&cfg), "text", "shout"]));
    assert_status(&o, 2);
    assert_eq!(error_json(&o)["code"], "unknown_function");

    let o = run(wasmward(&dir).args(["call", "--config", path_str(&cfg), "text", "greet", "--args", "{name"]));
    assert_status(&o, 2);
    assert!(stderr(&o).contains("--args is not valid JSON"), "{}", stderr(&o));

    let o = run(wasmward(&dir).args(["call", path_str(&dir.path().join("missing.wasm")), "greet"]));
    assert_status(&o, 2);
    assert!(stderr(&o).contains("missing.wasm"), "{}", stderr(&o));
}

#[test]
fn bad_config_exits_2_naming_file_line_and_key() {
    let dir = TestDir::new();
    let rest = format!("{}colour = \"red\"\n", tool_entry("text", "text", ""));
    let cfg = dir.write_config(&rest);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let line = text.lines().position(|l| l.starts_with("colour")).unwrap() + 1;
    for args in [vec!["check", "--config", path_str(&cfg)], vec!["call", "--config", path_str(&cfg), "text", "greet"]] {
        let o = run(wasmward(&dir).args(&args));
        assert_status(&o, 2);
        let err = stderr(&o);
        assert!(err.contains(path_str(&cfg)), "{err}");
        assert!(err.contains(&format!("line {line}")), "{err}");
        assert!(err.contains("colour"), "{err}");
        assert!(err.contains("fix:"), "{err}");
    }
}

#[test]
fn inspect_json_reports_digest_functions_schemas_and_docs() {
    let dir = TestDir::new();
    let text = tool_path("text");
    let o = run(wasmward(&dir).args(["inspect", path_str(&text), "--json"]));
    assert_status(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("inspect --json prints JSON");
    assert_eq!(v["sha256"], sha256_hex(&text));
    assert_eq!(v["size_bytes"], std::fs::metadata(&text).unwrap().len());
    let names: Vec<&str> = v["functions"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["text.greet", "text.add", "text.echo-all", "text.analysis.word-stats", "text.analysis.parse-int"]
    );
    let greet = &v["functions"][0];
    assert_eq!(greet["description"], "Say hello.");
    assert_eq!(greet["input_schema"]["type"], "object");
    assert_eq!(greet["input_schema"]["properties"]["name"]["type"], "string");
    assert!(
        greet["input_schema"]["properties"]["name"]["description"].as_str().unwrap_or("").contains("who to greet"),
        "{greet}"
    );
    assert_eq!(greet["input_schema"]["required"], json!(["name"]));
    let add = &v["functions"][1];
    // An s64 argument: an integer, or the same as a decimal string.
    let a = &add["input_schema"]["properties"]["a"]["anyOf"];
    assert_eq!(a[0]["type"], "integer");
    assert_eq!(a[0]["minimum"], json!(i64::MIN));
    assert_eq!(a[0]["maximum"], json!(i64::MAX));
    assert_eq!(a[1]["type"], "string", "{add}");
    assert_eq!(add["output_schema"]["properties"]["result"]["type"], "integer", "results stay numbers: {add}");
    // A top-level result<s64, string>: the schema is the ok value's.
    let parse = &v["functions"][4];
    assert_eq!(parse["output_schema"]["properties"]["result"]["type"], "integer", "{parse}");
    assert!(v["imports"].as_array().is_some());
    assert!(v["languages"].as_array().unwrap().iter().any(|l| l.as_str().unwrap_or("").to_lowercase().contains("rust")), "{}", v["languages"]);
    assert_eq!(v["skipped"], json!([]));

    // The human form shows the same digest and names.
    let o = run(wasmward(&dir).args(["inspect", path_str(&text)]));
    assert_status(&o, 0);
    let out = stdout(&o);
    assert!(out.contains(&sha256_hex(&text)) && out.contains("text.analysis.parse-int"), "{out}");
}

#[test]
fn check_loads_every_tool_and_reports_ok() {
    let dir = TestDir::new();
    let cfg = dir.write_config(&[tool_entry("text", "text", ""), tool_entry("hostile", "hostile", "")].concat());
    let o = run(wasmward(&dir).args(["check", "--config", path_str(&cfg)]));
    assert_status(&o, 0);
    let out = stdout(&o);
    assert!(out.contains(&format!("tool text: 5 function(s), sha256 {}", sha256_hex(&tool_path("text")))), "{out}");
    assert!(out.contains("tool hostile:"), "{out}");
    assert!(out.contains("2 tool(s) OK"), "{out}");
}

#[test]
fn sha256_pin_mismatch_names_both_digests() {
    let dir = TestDir::new();
    let pinned = "ab".repeat(32);
    let cfg = dir.write_config(&tool_entry("text", "text", &format!("sha256 = {pinned:?}")));
    let actual = sha256_hex(&tool_path("text"));
    for args in [vec!["check", "--config", path_str(&cfg)], vec!["call", "--config", path_str(&cfg), "text", "greet"]] {
        let o = run(wasmward(&dir).args(&args));
        assert_status(&o, 2);
        let err = stderr(&o);
        assert!(err.contains("sha256 mismatch"), "{err}");
        assert!(err.contains(&pinned) && err.contains(&actual), "{err}");
    }

    // The right pin (in any case) loads.
    let cfg = dir.write_config(&tool_entry("text", "text", &format!("sha256 = {:?}", actual.to_uppercase())));
    let o = run(wasmward(&dir).args(["call", "--config", path_str(&cfg), "text", "greet", "--args", r#"{"name":"pinned"}"#]));
    assert_status(&o, 0);
    assert_eq!(stdout(&o), "\"Hello, pinned!\"\n");
}

#[test]
fn compile_cache_misses_then_hits_and_rebuilds_a_corrupt_entry() {
    let dir = TestDir::new();
    let cache = dir.path().join("own-cache");
    let text = tool_path("text");
    let inspect = |want: &str| {
        let o = run(wasmward_with_cache(&dir, &cache).args(["inspect", path_str(&text), "--json"]));
        assert_status(&o, 0);
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["compile_cache"], want, "compile_cache");
        assert_eq!(v["functions"].as_array().unwrap().len(), 5);
    };
    inspect("miss");
    inspect("hit");

    // Overwrite bytes in the middle of the artifact, keeping its length.
    let artifacts: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let mut bytes = std::fs::read(&artifacts[0]).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xa5;
    }
    std::fs::write(&artifacts[0], &bytes).unwrap();

    inspect("rebuilt");
    inspect("hit");

    // Truncated too.
    let len = std::fs::metadata(&artifacts[0]).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&artifacts[0]).unwrap().set_len(len / 3).unwrap();
    inspect("rebuilt");

    // A call through the same cache still works.
    let o = run(wasmward_with_cache(&dir, &cache).args(["call", path_str(&text), "greet", "--args", r#"{"name":"cache"}"#]));
    assert_status(&o, 0);
    assert_eq!(stdout(&o), "\"Hello, cache!\"\n");
}

/// Scaffolds a tool, builds it with the documented command, and calls it.
/// Slow (a wasm32-wasip2 release build); dependencies are kept in
/// `target/scaffold-test` between runs.
#[test]
fn new_scaffold_builds_to_a_component_and_can_be_called() {
    common::ensure_tools_built();
    let dir = TestDir::new();
    let o = run(wasmward(&dir).args(["new", "my-tool"]));
    assert_status(&o, 0);
    // The printed hint calls the function the template really exports.
    assert!(stdout(&o).contains("my_tool.wasm greet --args"), "{}", stdout(&o));
    let crate_dir = dir.path().join("my-tool");
    assert!(crate_dir.join("Cargo.toml").exists() && crate_dir.join("wit/world.wit").exists());

    // Same dependency versions as the example tools, so no registry lookup
    // is needed.
    std::fs::copy(repo_root().join("example-tools/Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let target = repo_root().join("target/scaffold-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = run(Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS"));
    assert_status(&o, 0);

    let wasm = target.join("wasm32-wasip2/release/my_tool.wasm");
    assert!(wasm.exists(), "{} missing", wasm.display());
    let o = run(wasmward(&dir).args(["call", path_str(&wasm), "greet", "--args", r#"{"name":"scaffold"}"#]));
    assert_status(&o, 0);
    assert_eq!(stdout(&o), "\"Hello, scaffold!\"\n");

    let o = run(wasmward(&dir).args(["inspect", path_str(&wasm), "--json"]));
    assert_status(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["functions"][0]["name"], "my_tool.greet");
    assert_eq!(v["functions"][0]["description"], "Greet someone by name.");

    // A second `new` into the same place refuses to overwrite.
    let o = run(wasmward(&dir).args(["new", "my-tool"]));
    assert_status(&o, 2);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
}
