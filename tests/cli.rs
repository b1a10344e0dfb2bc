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
    // The printed next steps call the function the template really exports.
    assert!(stdout(&o).contains("wasmward call --config wasmward.toml my-tool greet --args"), "{}", stdout(&o));
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

/// A built Python or JS example tool (`python-text`, `js-text`), or None
/// when the language toolchains were not set up (build-lang-tools.sh).
fn lang_tool(name: &str) -> std::path::PathBuf {
    let p = repo_root().join("example-tools/target/lang").join(format!("{name}.wasm"));
    assert!(p.exists(), "{} missing: run scripts/build-lang-tools.sh", p.display());
    p
}

/// The compile cache lang_tools shares, so a 15 MB runtime compiles once.
fn lang_cache() -> std::path::PathBuf {
    repo_root().join("target/lang/test-compile-cache")
}

#[test]
fn an_interpreted_tool_by_path_needs_allow_eval_which_warns() {
    let dir = TestDir::new();
    for (tool, summary, language) in
        [("python-text", "CPython (componentize-py)", "Python"), ("js-text", "SpiderMonkey/StarlingMonkey (componentize-js)", "JavaScript")]
    {
        let wasm = lang_tool(tool);
        let o = run(wasmward_with_cache(&dir, &lang_cache()).args(["call", path_str(&wasm), "greet", "--args", r#"{"name":"eval"}"#]));
        assert_status(&o, 2);
        let err = stderr(&o);
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{err}"));
        assert!(line.contains(&format!("embeds an interpreter, {summary},")), "{tool}: one line names the runtime: {err}");
        assert!(line.contains("--allow-eval") && line.contains("allow_eval_exec = true"), "{tool}: the fix names both: {err}");
        assert!(!err.contains("core module") && !err.contains("embedded `"), "{tool}: the evidence is for inspect: {err}");

        let o = run(wasmward_with_cache(&dir, &lang_cache()).args(["call", "--allow-eval", path_str(&wasm), "greet", "--args", r#"{"name":"eval"}"#]));
        assert_status(&o, 0);
        assert_eq!(stdout(&o), "\"Hello, eval!\"\n", "{tool}");
        let err = stderr(&o);
        assert!(err.contains("warning: --allow-eval") && err.contains(summary), "{tool}: {err}");
        // Not a terminal: no progress line, no compile note.
        assert!(!err.contains("compiling") && !err.contains('\r'), "{tool}: {err}");

        // inspect keeps the evidence and names the author's language.
        let o = run(wasmward_with_cache(&dir, &lang_cache()).args(["inspect", path_str(&wasm), "--json"]));
        assert_status(&o, 0);
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        let langs: Vec<&str> = v["languages"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(langs.len(), 1, "{tool}: {langs:?}");
        assert!(langs[0].starts_with(language), "{tool}: {langs:?}");
        assert!(v["interpreter"]["evidence"].as_array().is_some_and(|e| e.len() > 1), "{tool}: {}", v["interpreter"]);
        let o = run(wasmward_with_cache(&dir, &lang_cache()).args(["inspect", path_str(&wasm)]));
        let out = stdout(&o);
        assert!(out.contains(&format!("language {language}")) && out.contains("evidence:"), "{tool}: {out}");
    }
    // A config's tool follows its policy, not the flag.
    let cfg = dir.write_config(&tool_entry("text", "text", ""));
    let o = run(wasmward(&dir).args(["call", "--allow-eval", "--config", path_str(&cfg), "text", "greet"]));
    assert_status(&o, 2);
    assert!(stderr(&o).contains("[tool.policy]"), "{}", stderr(&o));
}

/// A config whose tools `bad-file` (missing), `bad-pin` (wrong sha256) and
/// `bad-policy` (a relative mount) cannot load, beside a good `text`.
fn config_with_broken_tools(dir: &TestDir) -> std::path::PathBuf {
    let rest = [
        tool_entry("text", "text", ""),
        "[[tool]]\nname = \"bad-file\"\npath = \"nowhere/missing.wasm\"\n".to_string(),
        tool_entry("bad-pin", "text", &format!("sha256 = {:?}", "00".repeat(32))),
        tool_entry("bad-policy", "text", "[tool.policy]\nallowed_read_paths = [\"relative/dir\"]"),
    ]
    .concat();
    dir.write_config(&rest)
}

#[test]
fn call_loads_only_its_tool_and_check_reports_every_broken_one() {
    let dir = TestDir::new();
    let cfg = config_with_broken_tools(&dir);
    let o = run(wasmward(&dir).args(["call", "--config", path_str(&cfg), "text", "greet", "--args", r#"{"name":"alone"}"#]));
    assert_status(&o, 0);
    assert_eq!(stdout(&o), "\"Hello, alone!\"\n");
    // Calling a broken tool names its own problem.
    let o = run(wasmward(&dir).args(["call", "--config", path_str(&cfg), "bad-pin", "greet"]));
    assert_status(&o, 2);
    assert!(stderr(&o).contains("sha256 mismatch") && !stderr(&o).contains("missing.wasm"), "{}", stderr(&o));

    let o = run(wasmward(&dir).args(["check", "--config", path_str(&cfg)]));
    assert_status(&o, 2);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(out.contains("tool text: 5 function(s)"), "the good tool is still checked: {out}");
    for (tool, why) in [("bad-file", "missing.wasm"), ("bad-pin", "sha256 mismatch"), ("bad-policy", "relative")] {
        let line = err.lines().find(|l| l.contains(&format!("tool {tool:?}"))).unwrap_or_else(|| panic!("{tool} not reported:\n{err}"));
        assert!(line.contains(why), "{tool}: {line}");
    }
    assert!(err.contains("3 of 4 tool(s) failed to load: bad-file, bad-pin, bad-policy"), "{err}");
}

#[test]
fn check_prints_limits_as_config_keys() {
    let dir = TestDir::new();
    let cfg = dir.write_config(&tool_entry("text", "text", "[tool.limits]\ntimeout_ms = 5000\nmemory_mb = 32"));
    let o = run(wasmward(&dir).args(["check", "--config", path_str(&cfg)]));
    assert_status(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("limits timeout_ms = 5000, memory_mb = 32, max_output_bytes = "), "{out}");
    assert!(!out.contains("secs") && !out.contains("nanos"), "{out}");
}

#[test]
fn args_come_inline_from_a_file_or_stdin_with_clear_errors() {
    let dir = TestDir::new();
    let text = tool_path("text");
    std::fs::write(dir.path().join("args.json"), r#"{"a": 2, "b": 40}"#).unwrap();
    let o = run(wasmward(&dir).args(["call", path_str(&text), "add", "--args", "@args.json"]));
    assert_status(&o, 0);
    assert_eq!(stdout(&o), "42\n");

    let mut child = wasmward(&dir)
        .args(["call", path_str(&text), "greet", "--args", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Large: well past what a shell argument may hold on some systems.
    let big = "x".repeat(300_000);
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!(r#"{{"name":"{big}"}}"#).as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_status(&o, 0);
    assert_eq!(stdout(&o).len(), big.len() + "\"Hello, !\"\n".len());

    let o = run(wasmward(&dir).args(["call", path_str(&text), "greet", "--args", "@nope.json"]));
    assert_status(&o, 2);
    assert!(stderr(&o).contains("--args @nope.json: cannot read nope.json"), "{}", stderr(&o));

    std::fs::write(dir.path().join("bad.json"), "{\n  \"a\": 2,\n  \"b\": ]\n}").unwrap();
    let o = run(wasmward(&dir).args(["call", path_str(&text), "add", "--args", "@bad.json"]));
    assert_status(&o, 2);
    assert!(stderr(&o).contains("--args @bad.json: bad.json is not valid JSON") && stderr(&o).contains("line 3 column"), "{}", stderr(&o));

    let mut child = wasmward(&dir)
        .args(["call", path_str(&text), "add", "--args", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"{\"a\": 1,").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_status(&o, 2);
    assert!(stderr(&o).contains("--args - (stdin) is not valid JSON") && stderr(&o).contains("line 1 column"), "{}", stderr(&o));

    // An integral float is an integer; 1.5 is not.
    let o = run(wasmward(&dir).args(["call", path_str(&text), "add", "--args", r#"{"a": 2.0, "b": 40}"#]));
    assert_status(&o, 0);
    assert_eq!(stdout(&o), "42\n");
    let o = run(wasmward(&dir).args(["call", path_str(&text), "add", "--args", r#"{"a": 1.5, "b": 40}"#]));
    assert_status(&o, 1);
    assert!(error_json(&o)["message"].as_str().unwrap().contains("args.a: expected integer"), "{}", stderr(&o));
}

#[test]
fn field_and_case_docs_reach_the_schemas() {
    let dir = TestDir::new();
    let o = run(wasmward(&dir).args(["inspect", path_str(&tool_path("text")), "--json"]));
    assert_status(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let f = |name: &str| v["functions"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap().clone();
    let stats = &f("text.analysis.word-stats")["output_schema"]["properties"]["result"];
    assert_eq!(stats["description"], "Counts for a piece of text.", "{stats}");
    assert_eq!(stats["properties"]["words"]["description"], "Whitespace-separated words.");
    assert_eq!(stats["properties"]["longest-word"]["description"], "The longest word, the first one on a tie; none for empty text.");
    let x = &f("text.echo-all")["input_schema"]["properties"]["x"];
    assert_eq!(x["description"], "the value to echo.", "the parameter's own doc wins");
    let shape = &x["properties"]["a-variant"];
    assert_eq!(shape["description"], "A shape: one case without a payload, two with.");
    assert_eq!(shape["oneOf"][1]["description"], "A circle with this radius.");
    assert_eq!(x["properties"]["an-enum"]["description"], "A colour.");
}

/// Names `wasmward new` refuses, with the rule and a suggestion that it
/// accepts; and names it accepts, whose WIT (every language's template)
/// parses.
#[test]
fn new_validates_names_so_the_scaffold_wit_parses() {
    let dir = TestDir::new();
    let refused = [
        ("my_tool", "my-tool"),
        ("1tool", "tool1"),
        ("My-Tool", "my-tool"),
        ("tool-2nd", "tool2nd"),
        ("-x", "x"),
        ("a--b", "a-b"),
        ("string", "string-tool"),
        ("world", "world-tool"),
        ("fn", "fn-tool"),
        ("123", "tool123"),
    ];
    for (name, suggestion) in refused {
        let o = run(wasmward(&dir).args(["new", "--", name]));
        assert_status(&o, 2);
        let err = stderr(&o);
        assert!(err.contains("lowercase kebab-case words") && err.contains("each word starting with a letter"), "{name}: the rule: {err}");
        assert!(err.contains(&format!("Try: wasmward new {suggestion}")), "{name}: {err}");
        assert!(!dir.path().join(name).exists(), "{name}: nothing created");
        assert!(wasmward::scaffold::validate_new_name(suggestion).is_ok(), "{name}: the suggestion {suggestion} is accepted");
    }
    for name in ["a", "my-tool", "tool1", "x2-y3", "string-tool", "hello-rs"] {
        for lang in ["rust", "python", "js"] {
            let dest = format!("{name}-{lang}-dir");
            let o = run(wasmward(&dir).args(["new", name, "--lang", lang, "--dir", &dest]));
            assert_status(&o, 0);
            let wit = std::fs::read_to_string(dir.path().join(&dest).join("wit/world.wit")).unwrap();
            if let Err((_, e)) = wit_parser::UnresolvedPackageGroup::parse("world.wit", &wit) {
                panic!("{name} ({lang}): the scaffold's WIT does not parse: {e}\n{wit}");
            }
        }
    }
}
