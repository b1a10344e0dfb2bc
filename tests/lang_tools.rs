//! Python (componentize-py) and JavaScript (componentize-js) tools: listed
//! with the right schemas, called through `Host::call` and the CLI with the
//! same results as the Rust tool, refused unless `allow_eval_exec` (also
//! when every custom section is stripped), refused below their memory
//! floor, and loaded from the compile cache on a restart.

mod lang_support;

use lang_support::strip::{count_custom_sections, strip_custom_sections};
use lang_support::*;
use serde_json::{json, Value};
use std::process::Command;
use wasmward::component::{eval, metadata};

const EVAL: &str = "allow_eval_exec = true";
const FUNCTIONS: [&str; 7] = ["area", "change-case", "connect", "fetch", "greet", "word-stats", "write-file"];

fn ok(rec: &wasmward::CallRecord) -> &Value {
    match &rec.outcome {
        Ok(v) => v,
        Err(e) => panic!("{}.{} failed: {e}\nstderr: {}", rec.tool, rec.function, rec.stderr),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn both_tools_are_listed_with_their_schemas_and_no_plumbing() {
    let dir = TestDir::new();
    let host = open(dir.config(&both_tools(EVAL))).await;
    for name in ["py", "js"] {
        let tool = host.tools().get(name).cloned().unwrap_or_else(|| panic!("{name} not loaded"));
        let mut names: Vec<&str> = tool.loaded.functions.iter().map(|f| f.function.as_str()).collect();
        names.sort();
        assert_eq!(names, FUNCTIONS, "{name}: exactly the WIT exports are tools");
        assert!(tool.loaded.functions.iter().all(|f| f.interface.is_none()), "{name}: no runtime interface is a tool");
        let f = |n: &str| tool.loaded.functions.iter().find(|f| f.function == n).expect("function");
        assert_eq!(f("greet").description.as_deref(), Some("Say hello."), "{name}: docs come from the embedded WIT");
        assert_eq!(f("greet").input_schema["properties"]["name"]["description"], "who to greet.");
        let style = &f("change-case").input_schema["properties"]["style"];
        assert_eq!(style["enum"], json!(["upper", "lower", "title"]), "{name}: enum");
        assert_eq!(f("change-case").input_schema["properties"]["words"]["items"]["type"], "string");
        let shape = &f("area").input_schema["properties"]["s"]["oneOf"];
        assert_eq!(shape.as_array().map(Vec::len), Some(3), "{name}: variant cases: {shape}");
        let fetch = &f("fetch").input_schema;
        assert_eq!(fetch["required"], json!(["url"]), "{name}: option param is not required: {fetch}");
        let stats = &f("word-stats").output_schema["properties"]["result"];
        assert_eq!(stats["required"], json!(["words", "lines", "chars"]), "{name}: option fields are optional");
        assert!(stats["properties"]["longest-word"]["anyOf"].to_string().contains("null"));
    }
    let py = host.tools().get("py").cloned().expect("py");
    let plumbing: Vec<&str> = py.loaded.skipped.iter().map(|s| s.export.as_str()).collect();
    assert_eq!(plumbing, ["exports"], "componentize-py's `exports` instance (init) is skipped, not listed");
    host.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn pure_functions_give_the_same_results_in_rust_python_and_js() {
    let dir = TestDir::new();
    let rust = tool_entry("rs", &rust_text(), "");
    let host = open(dir.config(&(both_tools(EVAL) + "\n" + &rust))).await;
    let greet = json!({"name": "wasmward"});
    assert_eq!(ok(&host.call("rs.greet", &greet, "test").await), "Hello, wasmward!");
    for t in ["py", "js"] {
        let call = |f: &str, args: Value| {
            let host = &host;
            let full = format!("{t}.{f}");
            async move { host.call(&full, &args, "test").await }
        };
        assert_eq!(ok(&call("greet", greet.clone()).await), "Hello, wasmward!", "{t}");
        let stats = call("word-stats", json!({"text": "the cat saw The dog\nend"})).await;
        assert_eq!(
            ok(&stats),
            &json!({"words": 6, "lines": 2, "chars": 23, "longest-word": "the", "most-common": ["the", 2]}),
            "{t}"
        );
        let empty = call("word-stats", json!({"text": ""})).await;
        assert_eq!(ok(&empty), &json!({"words": 0, "lines": 0, "chars": 0, "longest-word": null, "most-common": null}), "{t}");
        let cased = call("change-case", json!({"words": ["hello", "wORLD"], "style": "title"})).await;
        assert_eq!(ok(&cased), &json!(["Hello", "World"]), "{t}");
        let area = call("area", json!({"s": {"tag": "rectangle", "value": [2.0, 3.5]}})).await;
        assert_eq!(ok(&area), &json!(7.0), "{t}");
        let point = call("area", json!({"s": {"tag": "point"}})).await;
        assert_eq!(ok(&point), &json!(0.0), "{t}");
        let bad = call("area", json!({"s": {"tag": "circle", "value": -1.0}})).await;
        match &bad.outcome {
            Err(wasmward::CallError::ToolError { value }) => assert!(value.as_str().is_some_and(|s| s.starts_with("negative radius")), "{t}: {value}"),
            other => panic!("{t}: a negative radius is the tool's own error, got {other:?}"),
        }
    }
    host.shutdown().await.expect("shutdown");
    let calls = audit_bodies(&dir.audit_db()).into_iter().filter(|b| b["kind"] == "call").count();
    assert_eq!(calls, 1 + 2 * 7, "every call is audited");
}

#[test]
fn the_cli_calls_python_and_js_tools() {
    let dir = TestDir::new();
    let _ = dir.config(&both_tools(EVAL));
    for t in ["py", "js"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmward"))
            .current_dir(dir.path())
            .args(["call", t, "greet", "--args", r#"{"name":"cli"}"#])
            .env_remove("RUST_LOG")
            .output()
            .expect("run wasmward");
        assert!(out.status.success(), "{t}: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        assert_eq!(v, "Hello, cli!", "{t}");
        let out = Command::new(env!("CARGO_BIN_EXE_wasmward"))
            .current_dir(dir.path())
            .args(["call", t, "area", "--args", r#"{"s":{"tag":"rectangle","value":[-1,2]}}"#])
            .output()
            .expect("run wasmward");
        assert_eq!(out.status.code(), Some(1), "{t}: the tool's err exits 1");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(r#""code":"tool_error""#) && err.contains("negative size"), "{t}: {err}");
    }
}

#[test]
fn embedded_interpreters_are_detected_with_every_custom_section_stripped() {
    for (tool, runtime) in [("python-text", "CPython"), ("js-text", "SpiderMonkey (StarlingMonkey)")] {
        let bytes = std::fs::read(lang_tool(tool)).expect("read tool");
        assert!(count_custom_sections(&bytes) > 0, "{tool}: the build has custom sections to strip");
        let stripped = strip_custom_sections(&bytes);
        assert_eq!(count_custom_sections(&stripped), 0, "{tool}: all custom sections removed");
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&stripped)
            .unwrap_or_else(|e| panic!("{tool}: the stripped copy is still a valid component: {e}"));
        let m = metadata::read(&stripped).expect("metadata");
        assert!(m.producers.is_empty() && m.core_module_names.is_empty(), "{tool}: no producers or names left");
        let found = eval::detect(&m).unwrap_or_else(|| panic!("{tool}: interpreter not detected once stripped"));
        assert_eq!(found.runtime, runtime, "{tool}: {found:?}");
        assert!(!found.evidence.iter().any(|e| e.starts_with("producers")), "{tool}: {found:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interpreters_are_refused_and_audited_unless_allow_eval_exec() {
    for (tool, runtime) in [("python-text", "CPython"), ("js-text", "SpiderMonkey")] {
        let dir = TestDir::new();
        let cfg = dir.config(&tool_entry("t", &lang_tool(tool), ""));
        let err = match wasmward::host::Host::open(cfg).await {
            Ok(_) => panic!("{tool} loaded without allow_eval_exec"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("embeds an interpreter") && err.contains(runtime), "{tool}: {err}");
        assert!(err.contains("allow_eval_exec = true"), "{tool}: says how to allow it: {err}");
        let rows = denials(&dir.audit_db(), "eval");
        assert_eq!(rows.len(), 1, "{tool}: one eval denial row: {rows:?}");
        assert_eq!(rows[0]["op"], "load");
        assert_eq!(rows[0]["rule"], "allow_eval_exec = false");
        assert!(rows[0]["target"].as_str().is_some_and(|t| t.contains(runtime)), "{rows:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_limit_below_the_runtime_floor_names_both_sizes_and_the_field() {
    for (tool, floor_mib) in [("python-text", 14), ("js-text", 12)] {
        let dir = TestDir::new();
        let entry = tool_entry("t", &lang_tool(tool), EVAL) + "[tool.limits]\nmemory_mb = 8\n";
        let err = match wasmward::host::Host::open(dir.config(&entry)).await {
            Ok(_) => panic!("{tool} loaded with memory_mb = 8"),
            Err(e) => format!("{e:#}"),
        };
        let needs = format!("needs {floor_mib} MiB");
        assert!(err.contains(&needs) && err.contains("memory_mb = 8"), "{tool}: {err}");
        assert!(err.contains(&format!("raise [tool.limits] memory_mb to at least {floor_mib}")), "{tool}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_loads_large_components_from_the_compile_cache() {
    let dir = TestDir::new();
    let cfg = dir.config(&both_tools(EVAL));
    // The first open compiles unless an earlier test already did.
    open(cfg.clone()).await.shutdown().await.expect("shutdown");
    let host = open(cfg).await;
    for t in ["py", "js"] {
        let tool = host.tools().get(t).cloned().expect("loaded");
        assert_eq!(tool.loaded.cache, wasmward::component::cache::CacheOutcome::Hit, "{t}");
        // A compile takes seconds; a cache hit milliseconds (the bench has
        // the figure). This bound only tells the two apart.
        assert!(tool.loaded.load_time.as_millis() < 1000, "{t}: cache hit took {:?}", tool.loaded.load_time);
    }
    host.shutdown().await.expect("shutdown");
}

/// `wasmward new NAME --lang python|js`, built with the documented command
/// (using the toolchains build-lang-tools.sh installed), loads and runs.
#[tokio::test(flavor = "multi_thread")]
async fn scaffolded_python_and_js_tools_build_with_one_command_and_run() {
    let _ = lang_tool("python-text"); // the toolchains are installed
    let dir = TestDir::new();
    let root = repo_root();
    for (name, lang) in [("pyscaf", "python"), ("jsscaf", "js")] {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmward"))
            .current_dir(dir.path())
            .args(["new", name, "--lang", lang])
            .output()
            .expect("run wasmward new");
        assert!(out.status.success(), "{lang}: {}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8_lossy(&out.stdout);
        let tool_dir = dir.path().join(name);
        let mut build = if lang == "python" {
            assert!(printed.contains(".venv/bin/python build.py"), "{printed}");
            let mut c = Command::new(root.join("target/lang/venv/bin/python"));
            c.arg("build.py");
            c
        } else {
            assert!(printed.contains("npm run build"), "{printed}");
            // `npm install` from the scaffold's lock, without the network.
            std::os::unix::fs::symlink(root.join("target/lang/js/node_modules"), tool_dir.join("node_modules")).expect("link node_modules");
            let mut c = Command::new("npm");
            c.args(["run", "--silent", "build"]);
            c
        };
        let built = build.current_dir(&tool_dir).output().expect("run the build");
        assert!(built.status.success(), "{lang} build: {}{}", String::from_utf8_lossy(&built.stdout), String::from_utf8_lossy(&built.stderr));
        assert!(tool_dir.join(format!("{name}.wasm")).exists(), "{lang}: {name}.wasm written");
    }
    let entries = tool_entry("pyscaf", &dir.path().join("pyscaf/pyscaf.wasm"), EVAL)
        + &tool_entry("jsscaf", &dir.path().join("jsscaf/jsscaf.wasm"), EVAL);
    let host = open(dir.config(&entries)).await;
    for t in ["pyscaf", "jsscaf"] {
        assert_eq!(ok(&host.call(&format!("{t}.greet"), &json!({"name": "new"}), "test").await), "Hello, new!", "{t}");
        let f = host.tools()[t].function("status-of").expect("status-of").clone();
        assert!(f.description.as_deref().is_some_and(|d| d.starts_with("Fetch a URL")), "{t}: docs embedded: {:?}", f.description);
    }
    host.shutdown().await.expect("shutdown");
}
