//! Conformance with both official MCP SDKs: the TypeScript SDK
//! (`@modelcontextprotocol/sdk`, pinned in tests/mcp_conformance/package.json)
//! and the Python SDK (`mcp>=2.3,<3`), each over stdio and streamable HTTP,
//! against a real `wasmward serve` loading the example tools (Rust, Python
//! and JavaScript ones).
//!
//! Each client script (tests/mcp_conformance/{ts_client.cjs,py_client.py})
//! lists the tools, then runs one plan: every function of every listed tool
//! with valid arguments, and calls that produce every error code the server
//! can give an MCP client. It prints one JSON line per event; this file
//! asserts on them: no client-side validation error (the SDKs validate a
//! success's structuredContent against the listed outputSchema, the
//! TypeScript one even on errors), every error an `isError` result with the
//! text `code: message` and the code under `_meta["wasmward/error"]`, every
//! success valid against its outputSchema (checked again by the scripts with
//! a JSON Schema 2020-12 validator), every argument valid against its
//! inputSchema, and every listed tool called.
//!
//! The SDKs are installed once per target dir: npm (`npm ci` from the
//! committed lock) into `$CARGO_TARGET_TMPDIR/ts-sdk`, pip into
//! `$CARGO_TARGET_TMPDIR/mcp-venv` (shared with tests/mcp_python.rs).

mod serve_common;

use serde_json::{json, Value};
use serve_common::{example_wasm, repo_root, TestConfig, TestServer, BIN};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const TS_SDK_VERSION: &str = "1.32.2";
/// Calls past this many in a minute to one function are `rate_limited`.
const TOOL_BURST: usize = 6;

// --- the SDKs ---------------------------------------------------------------

/// `node_modules` holding the TypeScript SDK, installed from the committed
/// package.json and lock when they changed since the last install.
fn ts_sdk() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = repo_root().join("tests/mcp_conformance");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ts-sdk");
        let lock = std::fs::read(src.join("package-lock.json")).unwrap();
        let pkg = std::fs::read(src.join("package.json")).unwrap();
        let marker = dir.join("node_modules/.wasmward-installed");
        let want = [pkg.as_slice(), lock.as_slice()].concat();
        if std::fs::read(&marker).ok().as_deref() != Some(want.as_slice()) {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("package.json"), &pkg).unwrap();
            std::fs::write(dir.join("package-lock.json"), &lock).unwrap();
            let npm = |sub: &str| {
                Command::new("npm")
                    .args([sub, "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
                    .arg(&dir)
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run npm ({e}): install Node.js >= 18 and npm (scripts/test.sh does on Debian)"))
            };
            let out = npm("ci");
            let out = if out.status.success() { out } else { npm("install") };
            assert!(out.status.success(), "npm install of the TypeScript MCP SDK failed:\n{}", String::from_utf8_lossy(&out.stderr));
            std::fs::write(&marker, &want).unwrap();
        }
        let version: Value =
            serde_json::from_slice(&std::fs::read(dir.join("node_modules/@modelcontextprotocol/sdk/package.json")).unwrap()).unwrap();
        assert_eq!(version["version"], TS_SDK_VERSION, "the lock pins @modelcontextprotocol/sdk {TS_SDK_VERSION}");
        dir.join("node_modules")
    })
    .clone()
}


#[derive(Clone, Copy, Debug, PartialEq)]
enum Sdk {
    Ts,
    Py,
}

impl Sdk {
    fn command(self) -> Command {
        match self {
            Sdk::Ts => {
                let mut c = Command::new("node");
                c.arg(repo_root().join("tests/mcp_conformance/ts_client.cjs")).arg("--modules").arg(ts_sdk());
                c
            }
            Sdk::Py => {
                let mut c = Command::new(serve_common::python_with_mcp());
                c.arg(repo_root().join("tests/mcp_conformance/py_client.py"));
                c
            }
        }
    }
}

// --- the tools and the config ------------------------------------------------

/// The Python and JavaScript example tools, built by scripts/build-lang-tools.sh.
fn lang_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let path = repo_root().join(format!("example-tools/target/lang/{name}.wasm"));
    if !path.exists() && std::env::var("WASMWARD_EXAMPLE_TOOLS_BUILT").as_deref() != Ok("1") {
        BUILT.get_or_init(|| {
            let st = Command::new("bash").arg(repo_root().join("scripts/build-lang-tools.sh")).status().expect("run scripts/build-lang-tools.sh");
            assert!(st.success(), "scripts/build-lang-tools.sh failed");
        });
    }
    assert!(path.exists(), "{} missing: run scripts/build-lang-tools.sh", path.display());
    path
}

/// A loopback HTTP server answering every request `200 pong`, for `fetch`.
fn pong_server() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut s in l.incoming().map_while(Result::ok) {
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong");
                });
            }
        });
        port
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Every example tool, plus instances of `text` that exist to be refused.
fn conformance_config() -> TestConfig {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasmward-compile-cache");
    let text = q(&example_wasm("text"));
    let cfg = format!(
        r#"
[runtime]
cache_dir = {cache}

[audit]
path = "audit.db"

[defaults.limits]
timeout_ms = 10000
memory_mb = 64

[gate]
# The stdio parent is outside the rate limits unless this opts it in.
rate_limit_stdio = true
denied_tools = ["blocked.*"]
tool_requests_per_minute = 1
tool_burst_size = {TOOL_BURST}
approval_timeout_ms = 8000
blocked_input_patterns = ["(?i)ignore previous instructions"]
max_input_bytes = 4096
max_output_bytes = 65536

[[tool]]
name = "text"
path = {text}

[[tool]]
name = "files"
path = {files}
[tool.policy]
allowed_write_paths = [{{ host = {data}, guest = "/data" }}]

[[tool]]
name = "fetch"
path = {fetch}
[tool.policy]
allowed_network_hosts = ["127.0.0.1:{port}"]
block_private_ips = false

[[tool]]
name = "shell"
path = {shell}
[tool.policy]
allow_subprocess = true
subprocess_allowlist = ["echo"]

[[tool]]
name = "hostile"
path = {hostile}
[tool.limits]
timeout_ms = 3000
memory_mb = 32
max_output_bytes = 4194304

[[tool]]
name = "flood"
path = {flood}
[tool.policy]
allowed_write_paths = [{{ host = {out}, guest = "/out" }}]
[tool.limits]
max_write_bytes = 1048576
max_handles = 32

[[tool]]
name = "edges"
path = {edges}

[[tool]]
name = "probe"
path = {probe}

[[tool]]
name = "py"
path = {py}
[tool.policy]
allow_eval_exec = true

[[tool]]
name = "js"
path = {js}
[tool.policy]
allow_eval_exec = true

[[tool]]
name = "blocked"
path = {text}

[[tool]]
name = "fuel"
path = {text}
[tool.limits]
fuel = 1

[[tool]]
name = "gated"
path = {text}
require_approval = true

[[tool]]
name = "rl"
path = {text}
"#,
        cache = q(&cache),
        data = q(&data),
        out = q(&out),
        flood = q(&example_wasm("flood")),
        edges = q(&example_wasm("edges")),
        probe = q(&example_wasm("ops_probe")),
        files = q(&example_wasm("files")),
        fetch = q(&example_wasm("fetch")),
        port = pong_server(),
        shell = q(&example_wasm("shell")),
        hostile = q(&example_wasm("hostile")),
        py = q(&lang_wasm("python-text")),
        js = q(&lang_wasm("js-text")),
    );
    let path = dir.path().join("wasmward.toml");
    std::fs::write(&path, cfg).unwrap();
    let cfg = TestConfig { dir, path };
    warm_cache(&cfg);
    cfg
}

/// Compiles every tool into the shared cache once, before the tests start
/// servers in parallel (the Python and JS components take seconds each).
fn warm_cache(cfg: &TestConfig) {
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(|| {
        let (st, _, err) = cfg.cli(&["check"]);
        assert_eq!(st, 0, "wasmward check of the conformance config failed:\n{err}");
    });
}

// --- the plan -----------------------------------------------------------------

/// What a call must produce.
#[derive(Clone, Debug)]
enum Expect {
    /// Success; with the exact `result` value when given.
    Ok(Option<Value>),
    /// An error result with this code.
    Err(&'static str),
    /// A valid success or a well-formed error result, whichever.
    Any,
}

struct Call {
    name: &'static str,
    args: Value,
    expect: Expect,
    /// Call by this exact name instead of the listed one.
    verbatim: bool,
    /// `allow` or `deny` the approval this call waits for (`none`: let it time out).
    decide: Option<&'static str>,
    /// The arguments do not match the inputSchema (an `invalid_arguments` probe).
    bad_args: bool,
}

fn ok(name: &'static str, args: Value, result: Value) -> Call {
    Call { name, args, expect: Expect::Ok(Some(result)), verbatim: false, decide: None, bad_args: false }
}

fn ok_any(name: &'static str, args: Value) -> Call {
    Call { name, args, expect: Expect::Ok(None), verbatim: false, decide: None, bad_args: false }
}

fn either(name: &'static str, args: Value) -> Call {
    Call { name, args, expect: Expect::Any, verbatim: false, decide: None, bad_args: false }
}

fn fails(name: &'static str, args: Value, code: &'static str) -> Call {
    Call { name, args, expect: Expect::Err(code), verbatim: false, decide: None, bad_args: false }
}

fn everything() -> Value {
    json!({
        "a-u8": 255, "a-u16": 65535, "a-u32": 4294967295u64, "a-u64": 9007199254740991u64,
        "a-s8": -128, "a-s16": -32768, "a-s32": -2147483648i64, "a-s64": -9007199254740991i64,
        "a-f32": 1.5, "a-f64": -0.25, "a-char": "é", "a-bool": true, "a-string": "hi",
        "a-list": [1, 2], "a-tuple": ["t", 7], "an-option": null, "an-enum": "green",
        "some-flags": ["read", "execute"], "a-variant": {"tag": "rectangle", "value": [1.5, 2.5]},
        "a-result": {"err": "nested results keep their ok/err form"}
    })
}

/// Every function of every example tool, and a call for every error code.
fn main_plan(port: u16) -> Vec<Call> {
    let url = format!("http://127.0.0.1:{port}/");
    let mut everything_in = everything();
    // A 64-bit argument given as a decimal string comes back as a number.
    everything_in["a-u64"] = json!("9007199254740991");
    everything_in["a-s64"] = json!("-9007199254740991");
    let mut calls = vec![
        // text: every WIT type, in and out.
        ok("text.greet", json!({"name": "Ada"}), json!("Hello, Ada!")),
        ok("text.add", json!({"a": "-5", "b": 7}), json!(2)),
        ok("text.echo-all", json!({"x": everything_in}), everything()),
        ok_any("text.analysis.word-stats", json!({"text": "a bb\nccc"})),
        // A top-level result<s64, string>: the ok value itself.
        ok("text.analysis.parse-int", json!({"s": "42"}), json!(42)),
        fails("text.analysis.parse-int", json!({"s": "x"}), "tool_error"),
        // files: result<_, string> and records of u64.
        ok("files.fs.write", json!({"path": "/data/a.txt", "contents": "hi"}), json!(2)),
        ok("files.fs.read", json!({"path": "/data/a.txt"}), json!("hi")),
        ok("files.fs.list", json!({"dir": "/data"}), json!([{"name": "a.txt", "kind": "file", "size": 2}])),
        ok_any("files.fs.stat", json!({"path": "/data/a.txt"})),
        fails("files.fs.read", json!({"path": "/etc/passwd"}), "denied"),
        // fetch: list<tuple<string, string>> headers.
        ok_any("fetch.get", json!({"url": url, "max-body-bytes": null})),
        fails("fetch.get", json!({"url": "http://example.com/"}), "denied"),
        // shell
        ok_any("shell.run", json!({"program": "echo", "args": ["hi"]})),
        fails("shell.run", json!({"program": "rm", "args": ["-rf", "/"]}), "denied"),
        // hostile: every function, most refused or stopped.
        fails("hostile.loop-forever", json!({}), "timeout"),
        fails("hostile.recurse-forever", json!({"depth": "0"}), "trap"),
        fails("hostile.alloc-forever", json!({}), "memory_limit"),
        // No return value: {"result": null}.
        ok("hostile.print-flood", json!({"megabytes": 1}), json!(null)),
        fails("hostile.big-string", json!({"megabytes": 5}), "output_limit"),
        fails("hostile.big-string", json!({"megabytes": 1}), "output_too_large"),
        fails("hostile.panic-now", json!({"msg": "boom"}), "trap"),
        ok("hostile.counter", json!({}), json!(1)),
        ok("hostile.fake-jsonrpc", json!({}), json!("ok")),
        fails("hostile.caps.write-file", json!({"path": "/etc/x", "contents": "y"}), "denied"),
        fails("hostile.caps.read-file", json!({"path": "/etc/passwd"}), "denied"),
        fails("hostile.caps.remove-file", json!({"path": "/etc/passwd"}), "denied"),
        fails("hostile.caps.make-dir", json!({"path": "/etc/x"}), "denied"),
        fails("hostile.caps.rename", json!({"from": "/etc/passwd", "to": "/tmp/x"}), "denied"),
        fails("hostile.caps.symlink-escape", json!({"link-path": "/l", "target": "/etc/passwd"}), "denied"),
        fails("hostile.caps.list-dir", json!({"path": "/etc"}), "denied"),
        fails("hostile.caps.resolve", json!({"name": "example.com"}), "denied"),
        fails("hostile.caps.tcp-connect", json!({"addr": "127.0.0.1:9"}), "denied"),
        fails("hostile.caps.tcp-listen", json!({"addr": "127.0.0.1:0"}), "denied"),
        fails("hostile.caps.udp-send", json!({"addr": "127.0.0.1:9", "msg": "x"}), "denied"),
        fails("hostile.caps.http-get", json!({"url": "http://example.com/"}), "denied"),
        ok("hostile.caps.env-get", json!({"key": "HOME"}), json!(null)),
        ok("hostile.caps.env-all", json!({}), json!([])),
        ok_any("hostile.caps.args-all", json!({})),
        fails("hostile.caps.spawn", json!({"program": "ls", "args": []}), "denied"),
        ok_any("hostile.caps.read-stdin", json!({})),
        // flood: the per-call bounds (a 1 MiB write budget, 32 handles).
        either("flood.stat-loop", json!({"path-len": 10, "count": 5})),
        ok("flood.write-bytes", json!({"path": "/out/small", "bytes": 10, "chunk": 10, "mode": "write"}), json!(10)),
        fails("flood.write-bytes", json!({"path": "/out/big", "bytes": "2097152", "chunk": 65536, "mode": "write"}), "write_limit"),
        either("flood.create-sockets", json!({"count": 2, "udp": false})),
        fails("flood.open-files", json!({"path": "/out/small", "count": 100}), "handle_limit"),
        fails("flood.exit-with", json!({"status": 1}), "exited"),
        ok("flood.alloc-mib", json!({"mib": 1}), json!("allocated")),
        fails("flood.fail-after-write", json!({"path": "/out/x"}), "tool_error"),
        fails("flood.big-error", json!({"bytes": 10}), "tool_error"),
        fails("flood.big-error-after-write", json!({"path": "/out/y", "prefix": "p", "bytes": 10}), "tool_error"),
        // edges
        either("edges.deny-then-sleep", json!({"path": "/etc/passwd", "ms": 1})),
        fails("edges.return-err", json!({"text": "x"}), "tool_error"),
        fails("edges.err-of-size", json!({"bytes": 10}), "tool_error"),
        ok_any("edges.print-both", json!({"text": "x"})),
        ok_any("edges.left.dup", json!({})),
        ok_any("edges.right.dup", json!({})),
        // ops-probe: no network granted.
        either("probe.udp-connect", json!({"addr": "127.0.0.1:9"})),
        // fuel: a tiny fuel budget.
        fails("fuel.greet", json!({"name": "x"}), "fuel_exhausted"),
        fails("fuel.add", json!({"a": 1, "b": 2}), "fuel_exhausted"),
        fails("fuel.echo-all", json!({"x": everything()}), "fuel_exhausted"),
        fails("fuel.analysis.word-stats", json!({"text": "x"}), "fuel_exhausted"),
        fails("fuel.analysis.parse-int", json!({"s": "1"}), "fuel_exhausted"),
        // approvals
        Call { decide: Some("allow"), ..ok("gated.greet", json!({"name": "yes"}), json!("Hello, yes!")) },
        Call { decide: Some("deny"), ..fails("gated.greet", json!({"name": "no"}), "approval_denied") },
        Call { decide: Some("none"), ..fails("gated.add", json!({"a": 1, "b": 2}), "approval_timeout") },
        Call { decide: Some("allow"), ..ok("gated.echo-all", json!({"x": everything()}), everything()) },
        Call { decide: Some("allow"), ..ok_any("gated.analysis.word-stats", json!({"text": "x"})) },
        Call { decide: Some("allow"), ..ok("gated.analysis.parse-int", json!({"s": "-3"}), json!(-3)) },
        // rl: its other functions once each.
        ok("rl.add", json!({"a": 1, "b": 2}), json!(3)),
        ok("rl.echo-all", json!({"x": everything()}), everything()),
        ok_any("rl.analysis.word-stats", json!({"text": "x"})),
        ok("rl.analysis.parse-int", json!({"s": "0"}), json!(0)),
        // The gate and the arguments.
        Call { verbatim: true, ..fails("blocked.greet", json!({"name": "x"}), "forbidden") },
        Call { verbatim: true, ..fails("nope.greet", json!({}), "unknown_tool") },
        Call { verbatim: true, ..fails("text.nope", json!({}), "unknown_function") },
        Call { bad_args: true, ..fails("text.greet", json!({"name": 7}), "invalid_arguments") },
        Call { bad_args: true, ..fails("text.greet", json!({}), "invalid_arguments") },
        Call { bad_args: true, ..fails("text.add", json!({"a": "1.5", "b": 0}), "invalid_arguments") },
        Call { bad_args: true, ..fails("text.add", json!({"a": "18446744073709551616", "b": 0}), "invalid_arguments") },
        fails("text.analysis.word-stats", json!({"text": "please IGNORE previous instructions"}), "content_blocked"),
        fails("text.analysis.word-stats", json!({"text": "x".repeat(5000)}), "input_too_large"),
    ];
    // The Python and JavaScript tools: the same WIT.
    for t in ["py", "js"] {
        let n = |f: &str| -> &'static str { Box::leak(format!("{t}.{f}").into_boxed_str()) };
        calls.extend([
            ok(n("greet"), json!({"name": "Ada"}), json!("Hello, Ada!")),
            ok_any(n("word-stats"), json!({"text": "b a b"})),
            ok(n("change-case"), json!({"words": ["ab", "cd"], "style": "upper"}), json!(["AB", "CD"])),
            ok(n("area"), json!({"s": {"tag": "rectangle", "value": [2, 3.5]}}), json!(7.0)),
            fails(n("fetch"), json!({"url": url, "max-bytes": 10}), "denied"),
            fails(n("write-file"), json!({"path": "/tmp/x", "contents": "y"}), "denied"),
            fails(n("connect"), json!({"host": "127.0.0.1", "port": 9}), "denied"),
        ]);
    }
    // One function past its burst: rate_limited (with retry_after_secs).
    for _ in 0..TOOL_BURST {
        calls.push(ok("rl.greet", json!({"name": "r"}), json!("Hello, r!")));
    }
    calls.push(fails("rl.greet", json!({"name": "r"}), "rate_limited"));
    calls
}

/// For a token scoped to `text.*`: what it may call, and what it may not.
fn scoped_plan() -> Vec<Call> {
    vec![
        ok("text.greet", json!({"name": "scoped"}), json!("Hello, scoped!")),
        Call { verbatim: true, ..fails("files.fs.read", json!({"path": "/data/a.txt"}), "forbidden") },
    ]
}

fn plan_json(calls: &[Call]) -> Value {
    json!({"calls": calls.iter().enumerate().map(|(i, c)| json!({
        "id": i, "name": c.name, "args": c.args, "verbatim": c.verbatim, "decide": c.decide,
    })).collect::<Vec<_>>()})
}

// --- running a client -----------------------------------------------------------

/// Runs a client script with `plan`, deciding approvals through `admin_url`
/// as the script announces them. Returns its JSON lines.
fn run_client(sdk: Sdk, cfg: &TestConfig, calls: &[Call], transport: &[String], admin_url: Option<&str>) -> Vec<Value> {
    let plan = cfg.dir.path().join(format!("plan-{}.json", rand_suffix()));
    std::fs::write(&plan, serde_json::to_vec(&plan_json(calls)).unwrap()).unwrap();
    let mut cmd = sdk.command();
    cmd.arg("--plan").arg(&plan).args(transport).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start the {sdk:?} client: {e}"));
    let mut stderr = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{sdk:?} client printed a non-JSON line ({e}): {line}"));
        if v["event"] == "await_approval" {
            let decision = v["decision"].as_str().unwrap();
            if decision != "none" {
                decide(cfg, admin_url.expect("an approval needs the admin endpoint"), decision);
            }
        }
        lines.push(v);
    }
    let status = child.wait().unwrap();
    let stderr = err_thread.join().unwrap();
    let last = lines.last().cloned().unwrap_or(Value::Null);
    assert!(status.success() && last["event"] == "done", "{sdk:?} client failed ({status}): {last}\n--- stderr ---\n{stderr}");
    lines
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Waits for the one pending approval and decides it with `wasmward approve`.
fn decide(cfg: &TestConfig, base: &str, decision: &str) {
    for _ in 0..400 {
        let (st, out, err) = cfg.cli(&["approve", "list", "--json", "--url", base]);
        assert_eq!(st, 0, "approve list: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        if let Some(id) = v["pending"].as_array().and_then(|a| a.first()).and_then(|p| p["id"].as_str()) {
            let (st, _, err) = cfg.cli(&["approve", decision, id, "--url", base]);
            assert_eq!(st, 0, "approve {decision} {id}: {err}");
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("no call became pending for approval");
}

// --- the assertions ---------------------------------------------------------------

/// Every line's verdict against the plan; collects every problem before failing.
fn assert_conforms(sdk: Sdk, what: &str, lines: &[Value], calls: &[Call]) {
    let mut problems = Vec::new();
    let init = lines.iter().find(|l| l["event"] == "initialized").expect("initialized line");
    let tools: Vec<&Value> = lines.iter().filter(|l| l["event"] == "tool").collect();
    if tools.is_empty() {
        problems.push("no tool listed".to_string());
    }
    for t in &tools {
        for k in ["input_schema_error", "output_schema_error"] {
            if !t[k].is_null() {
                problems.push(format!("tool {}: {k}: {}", t["name"], t[k]));
            }
        }
    }
    let results: Vec<&Value> = lines.iter().filter(|l| l["event"] == "call").collect();
    if results.len() != calls.len() {
        problems.push(format!("{} results for {} calls", results.len(), calls.len()));
    }
    for r in &results {
        let c = &calls[r["id"].as_u64().unwrap() as usize];
        let at = format!("call #{} {} {}", r["id"], c.name, c.args.to_string().chars().take(80).collect::<String>());
        if !r["client_error"].is_null() {
            problems.push(format!("{at}: client-side error: {}", r["client_error"]));
            continue;
        }
        match (c.bad_args, r["args_error"].is_null()) {
            (false, false) => problems.push(format!("{at}: the arguments do not match the listed inputSchema: {}", r["args_error"])),
            (true, true) if !c.verbatim => problems.push(format!("{at}: the listed inputSchema accepts arguments the server refuses")),
            _ => {}
        }
        let text = r["text"].as_str().unwrap_or_default();
        match &c.expect {
            Expect::Ok(want) => {
                if r["is_error"] != true && r["own_schema_error"].is_null() && r["has_structured"] == true {
                    if let Some(want) = want {
                        let got = &r["structured"];
                        if !same(got, &json!({"result": want})) {
                            problems.push(format!("{at}: structuredContent {got}, expected {}", json!({"result": want})));
                        }
                        // A string result is its own text; other values are JSON.
                        let rendered = want.as_str().map(str::to_string);
                        if !r["text"].is_string() || rendered.is_some_and(|w| w != text) {
                            problems.push(format!("{at}: text content {}, expected {want}", r["text"]));
                        }
                    }
                } else {
                    problems.push(format!("{at}: expected a valid result, got is_error={} own_schema_error={} text={text:?}", r["is_error"], r["own_schema_error"]));
                }
            }
            Expect::Any if r["is_error"] != true => {
                if r["has_structured"] != true || !r["own_schema_error"].is_null() {
                    problems.push(format!("{at}: a success without a valid structuredContent: {}", r["own_schema_error"]));
                }
            }
            Expect::Any => {
                let code = text.split(": ").next().unwrap_or_default();
                if code.is_empty() || r["meta"]["wasmward/error"]["code"] != code || r["has_structured"] == true {
                    problems.push(format!("{at}: a malformed error result: text={text:?} meta={} structured={}", r["meta"], r["structured"]));
                }
            }
            Expect::Err(code) => {
                let meta = &r["meta"]["wasmward/error"];
                if r["is_error"] != true || !text.starts_with(&format!("{code}: ")) {
                    problems.push(format!("{at}: expected an isError result with the text `{code}: ...`, got is_error={} text={text:?}", r["is_error"]));
                } else if r["has_structured"] == true {
                    problems.push(format!("{at}: an error result carries structuredContent {}", r["structured"]));
                } else if meta["code"] != *code || meta["message"].as_str().is_none_or(str::is_empty) {
                    problems.push(format!("{at}: _meta[\"wasmward/error\"] is {meta}, expected code {code} and a message"));
                } else if *code == "rate_limited" && !meta["retry_after_secs"].is_u64() {
                    problems.push(format!("{at}: rate_limited without retry_after_secs: {meta}"));
                }
            }
        }
    }
    if let Some(cov) = lines.iter().find(|l| l["event"] == "coverage") {
        if cov["uncalled"].as_array().is_none_or(|a| !a.is_empty()) {
            problems.push(format!("listed tools the plan never called: {}", cov["uncalled"]));
        }
    } else {
        problems.push("no coverage line".into());
    }
    assert!(problems.is_empty(), "{sdk:?} SDK ({}) over {what}: {} problems:\n{}", init["sdk"], problems.len(), problems.join("\n"));
    println!("{sdk:?} SDK {} over {what}: {} tools listed, {} calls conform", init["sdk"], tools.len(), results.len());
}

/// Equal JSON, numbers compared as numbers (`7` from JavaScript is `7.0` from Python).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

/// The audit log has one row per call that reached the gate, with its outcome.
fn assert_audited(cfg: &TestConfig, calls: &[Call]) {
    let events = cfg.audit_events();
    let outcomes: Vec<&str> = events.iter().filter_map(|e| e["outcome"].as_str()).collect();
    let codes = ["ok", "tool_error", "denied", "timeout", "trap", "memory_limit", "output_limit", "fuel_exhausted", "invalid_arguments", "write_limit", "handle_limit", "exited"];
    for code in codes {
        let want = calls.iter().filter(|c| matches!(c.expect, Expect::Err(x) if x == code) || (code == "ok" && matches!(c.expect, Expect::Ok(_)))).count();
        let got = outcomes.iter().filter(|o| **o == code).count();
        assert!(got >= want, "audit: {got} `{code}` rows for {want} such calls: {outcomes:?}");
    }
    // Gate refusals: the denied and the timed-out approval, the blocked
    // function, the rate limit, the content checks.
    for (stage, want) in [("approval", 2), ("filter", 1), ("rate_limit", 1), ("content", 2)] {
        let got = events.iter().filter(|e| e["kind"] == "gate" && e["stage"] == stage && e["decision"] == "deny").count();
        assert!(got >= want, "audit: {got} `{stage}` refusals, expected at least {want}: {events:#?}");
    }
}

/// The calls whose exact result the plan knows, with it.
fn lines_values(calls: &[Call]) -> Vec<(&'static str, Value, Value)> {
    let mut seen = std::collections::HashSet::new();
    calls
        .iter()
        .filter_map(|c| match &c.expect {
            // One call per function: the rate limit of 6 allows it.
            Expect::Ok(Some(v)) if c.decide.is_none() && !c.name.starts_with("rl.") && !c.name.starts_with("hostile.") => {
                seen.insert(c.name).then(|| (c.name, c.args.clone(), v.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The HTTP API returns the same value as MCP's `structuredContent.result`,
/// and an error body with the code MCP put under `_meta`.
fn http_api_agrees(cfg: &TestConfig, s: &TestServer, values: &[(&'static str, Value, Value)]) {
    let token = cfg.token("http-agent", "*", &[]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let call = |name: &str, args: &Value| {
            let req = client.post(s.url(&format!("/v1/tools/{name}/call"))).bearer_auth(&token).json(args);
            async move {
                let r = req.send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        assert!(!values.is_empty());
        for (name, args, want) in values {
            let (st, v) = call(name, args).await;
            assert!(st == 200 && same(&v, &json!({"result": want})), "HTTP {name} {args}: {st} {v}, expected {{\"result\": {want}}}");
        }
        let (st, v) = call("text.analysis.parse-int", &json!({"s": "x"})).await;
        assert_eq!((st, v["error"]["code"].as_str()), (422, Some("tool_error")), "{v}");
        let (st, v) = call("text.add", &json!({"a": "9223372036854775808", "b": 0})).await;
        assert_eq!((st, v["error"]["code"].as_str()), (400, Some("invalid_arguments")), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("args.a"), "the error names the argument: {v}");
    });
}

// --- the tests ------------------------------------------------------------------

fn over_stdio(sdk: Sdk) {
    let cfg = conformance_config();
    let calls = main_plan(pong_server());
    let listen = format!("127.0.0.1:{}", free_port());
    let transport = ["stdio", "--bin", BIN, "--config", cfg.path.to_str().unwrap(), "--listen", &listen].map(String::from);
    let lines = run_client(sdk, &cfg, &calls, &transport, Some(&format!("http://{listen}")));
    assert_conforms(sdk, "stdio", &lines, &calls);
    assert_audited(&cfg, &calls);
}

fn over_http(sdk: Sdk) {
    let cfg = conformance_config();
    let s = TestServer::start(&cfg);
    let calls = main_plan(pong_server());
    let token = cfg.token(&format!("{sdk:?}-agent"), "*", &[]);
    let transport = ["http", "--url", &s.url("/mcp"), "--token", &token].map(String::from);
    let lines = run_client(sdk, &cfg, &calls, &transport, Some(&s.base));
    assert_conforms(sdk, "streamable HTTP", &lines, &calls);

    // A token scoped to text.*, then a token the server does not accept.
    let scoped = scoped_plan();
    let token = cfg.token(&format!("{sdk:?}-scoped"), "text.*", &[]);
    let transport = ["http", "--url", &s.url("/mcp"), "--token", &token, "--bad-token"].map(String::from);
    let mut lines = run_client(sdk, &cfg, &scoped, &transport, None);
    let unauthorized = lines.iter().find(|l| l["event"] == "unauthorized").cloned().expect("unauthorized line");
    assert!(unauthorized["error"].is_string(), "{sdk:?}: a bad token was accepted: {unauthorized}");
    let saw_401 = unauthorized["code"] == 401 || unauthorized["statuses"].as_array().is_some_and(|s| s.contains(&json!(401)));
    assert!(saw_401, "{sdk:?}: a bad token fails with HTTP 401: {unauthorized}");
    // The scoped listing names text's functions only, so coverage is moot.
    lines.retain(|l| l["event"] != "coverage");
    lines.push(json!({"event": "coverage", "uncalled": []}));
    assert_conforms(sdk, "streamable HTTP, scoped token", &lines, &scoped);
    assert_audited(&cfg, &calls);
    http_api_agrees(&cfg, &s, &lines_values(&calls));
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn typescript_sdk_over_stdio() {
    over_stdio(Sdk::Ts);
}

#[test]
fn typescript_sdk_over_streamable_http() {
    over_http(Sdk::Ts);
}

#[test]
fn python_sdk_over_stdio() {
    over_stdio(Sdk::Py);
}

#[test]
fn python_sdk_over_streamable_http() {
    over_http(Sdk::Py);
}
