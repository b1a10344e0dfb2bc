//! End-to-end calls through the public API (`Host::call`): every function of
//! the `text` tool with exact results, precise argument errors, hostile
//! tools stopped by the right typed error while the host keeps serving, and
//! the capability tools denied everything without a policy. Each test also
//! checks that the audit log got one `call` row per call with its outcome.

mod common;

use common::{tool_entry, AuditCall, TestDir};
use serde_json::{json, Value};
use wasmward::host::Host;
use wasmward::{CallError, CallRecord};

fn ok(r: &CallRecord) -> &Value {
    match &r.outcome {
        Ok(v) => v,
        Err(e) => panic!("{}: expected success, got {e:?} (stderr: {})", r.function, r.stderr),
    }
}

fn err(r: &CallRecord) -> &CallError {
    match &r.outcome {
        Ok(v) => panic!("{}: expected an error, got {v}", r.function),
        Err(e) => e,
    }
}

fn row(tool: &str, function: &str, outcome: &str) -> AuditCall {
    AuditCall { tool: tool.into(), function: function.into(), outcome: outcome.into() }
}

/// Calls and returns the record, remembering the audit row it must leave.
struct Calls<'a> {
    host: &'a Host,
    expected_rows: Vec<AuditCall>,
}

impl<'a> Calls<'a> {
    fn new(host: &'a Host) -> Self {
        Calls { host, expected_rows: Vec::new() }
    }

    async fn call(&mut self, full_name: &str, args: Value) -> CallRecord {
        let r = self.host.call(full_name, &args, "test").await;
        let outcome = match &r.outcome {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.expected_rows.push(row(&r.tool, &r.function, outcome));
        r
    }
}

/// Shuts the host down and checks the audit log holds exactly `expected`.
async fn assert_audited(dir: &TestDir, expected: Vec<AuditCall>, host: Host) {
    host.shutdown().await.expect("audit flush");
    assert_eq!(dir.audit_calls(), expected);
}

fn text_tool() -> String {
    tool_entry("text", "text", "")
}

/// One value of every WIT type of `everything`.
fn everything(a_f32: Value, a_f64: Value) -> Value {
    json!({
        "a-u8": 255,
        "a-u16": 65535,
        "a-u32": 4294967295u32,
        "a-u64": u64::MAX,
        "a-s8": -128,
        "a-s16": -32768,
        "a-s32": i32::MIN,
        "a-s64": i64::MIN,
        "a-f32": a_f32,
        "a-f64": a_f64,
        "a-char": "🦀",
        "a-bool": true,
        "a-string": "héllo \"wörld\"\n",
        "a-list": [0, 1, 4294967295u32],
        "a-tuple": ["pair", 7],
        "an-option": "present",
        "an-enum": "green",
        "some-flags": ["read", "execute"],
        "a-variant": {"tag": "rectangle", "value": [2.5, 4.0]},
        "a-result": {"err": "bad"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_functions_return_exact_results() {
    let dir = TestDir::new();
    let host = dir.host(&text_tool()).await;
    let mut c = Calls::new(&host);

    let r = c.call("text.greet", json!({"name": "world"})).await;
    assert_eq!(ok(&r), &json!("Hello, world!"));
    assert_eq!(r.function, "text.greet");

    let r = c.call("text.add", json!({"a": 40, "b": 2})).await;
    assert_eq!(ok(&r), &json!(42));
    let r = c.call("text.add", json!({"a": -5, "b": -7})).await;
    assert_eq!(ok(&r), &json!(-12));

    let r = c.call("text.analysis.word-stats", json!({"text": "héllo wörld\n🦀"})).await;
    assert_eq!(
        ok(&r),
        &json!({"words": 3, "lines": 2, "chars": 13, "bytes": 18, "longest-word": "héllo"})
    );
    let r = c.call("text.analysis.word-stats", json!({"text": ""})).await;
    assert_eq!(ok(&r), &json!({"words": 0, "lines": 0, "chars": 0, "bytes": 0, "longest-word": null}));

    let r = c.call("text.analysis.parse-int", json!({"s": "  -42 "})).await;
    assert_eq!(ok(&r), &json!(-42));

    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_wraps_on_overflow() {
    let dir = TestDir::new();
    let host = dir.host(&text_tool()).await;
    let mut c = Calls::new(&host);
    let r = c.call("text.add", json!({"a": i64::MAX, "b": 1})).await;
    assert_eq!(ok(&r), &json!(i64::MIN));
    let r = c.call("text.add", json!({"a": i64::MIN, "b": -1})).await;
    assert_eq!(ok(&r), &json!(i64::MAX));
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_all_round_trips_every_wit_type() {
    let dir = TestDir::new();
    let host = dir.host(&text_tool()).await;
    let mut c = Calls::new(&host);

    // Finite floats, NaN and both infinities (as strings) all come back.
    for (f32v, f64v) in [
        (json!(1.5), json!(-0.25)),
        (json!("NaN"), json!("Infinity")),
        (json!("-Infinity"), json!("NaN")),
    ] {
        let x = everything(f32v, f64v);
        let r = c.call("text.echo-all", json!({"x": x})).await;
        assert_eq!(ok(&r), &x);
    }

    // The other shapes of option, variant, result and flags.
    let mut x = everything(json!(0.0), json!(1e300));
    x["an-option"] = json!(null);
    x["a-variant"] = json!({"tag": "point"});
    x["a-result"] = json!({"ok": 7});
    x["some-flags"] = json!([]);
    x["an-enum"] = json!("blue");
    x["a-list"] = json!([]);
    let r = c.call("text.echo-all", json!({"x": x})).await;
    assert_eq!(ok(&r), &x);

    x["a-variant"] = json!({"tag": "circle", "value": 0.5});
    x["some-flags"] = json!(["read", "write", "execute"]);
    let r = c.call("text.echo-all", json!({"x": x})).await;
    assert_eq!(ok(&r), &x);

    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_come_back_in_declaration_order() {
    let dir = TestDir::new();
    let host = dir.host(&text_tool()).await;
    let mut c = Calls::new(&host);
    let mut x = everything(json!(1.0), json!(2.0));
    x["some-flags"] = json!(["execute", "read"]);
    let r = c.call("text.echo-all", json!({"x": x})).await;
    assert_eq!(ok(&r)["some-flags"], json!(["read", "execute"]));
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_err_result_is_a_typed_tool_error() {
    let dir = TestDir::new();
    let host = dir.host(&text_tool()).await;
    let mut c = Calls::new(&host);
    let r = c.call("text.analysis.parse-int", json!({"s": "abc"})).await;
    match err(&r) {
        CallError::ToolError { value } => {
            assert_eq!(value, &json!("not an integer: \"abc\": invalid digit found in string"))
        }
        e => panic!("expected ToolError, got {e:?}"),
    }
    assert_eq!(err(&r).code(), "tool_error");
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_arguments_name_the_json_path_type_and_range() {
    let dir = TestDir::new();
    let host = dir.host(&text_tool()).await;
    let mut c = Calls::new(&host);

    let x = everything(json!(1.0), json!(2.0));
    let bad = |field: &str, v: Value| {
        let mut y = x.clone();
        y[field] = v;
        json!({"x": y})
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("text.echo-all", bad("a-u8", json!(300)), "args.x.a-u8: expected integer 0..=255 (u8), got 300"),
        ("text.echo-all", bad("a-s8", json!(-129)), "args.x.a-s8: expected integer -128..=127 (s8), got -129"),
        (
            "text.echo-all",
            bad("a-u64", json!(-1)),
            "args.x.a-u64: expected integer 0..=18446744073709551615 (u64), got -1",
        ),
        ("text.echo-all", bad("a-u32", json!(1.5)), "args.x.a-u32: expected integer 0..=4294967295 (u32), got 1.5"),
        ("text.echo-all", bad("a-char", json!("ab")), "args.x.a-char: expected a one-character string (char), got \"ab\""),
        ("text.echo-all", bad("an-enum", json!("purple")), "args.x.an-enum: expected one of [red, green, blue], got \"purple\""),
        ("text.echo-all", bad("some-flags", json!(["read", "fly"])), "args.x.some-flags[1]: expected one of [read, write, execute], got \"fly\""),
        ("text.echo-all", bad("a-list", json!([1, "two"])), "args.x.a-list[1]: expected integer 0..=4294967295 (u32), got \"two\""),
        ("text.echo-all", bad("a-variant", json!({"tag": "hexagon"})), "args.x.a-variant.tag: expected one of [point, circle, rectangle], got \"hexagon\""),
        ("text.greet", json!({}), "args.name: missing required argument (expected string)"),
        ("text.greet", json!({"name": "a", "nmae": "b"}), "args.nmae: unknown argument; expected one of: name"),
        ("text.greet", json!({"name": 5}), "args.name: expected string, got 5"),
        ("text.greet", json!(["world"]), "args: expected an object of named arguments, got an array of 1 items"),
    ];
    for (func, args, want) in cases {
        let r = c.call(func, args.clone()).await;
        match err(&r) {
            CallError::InvalidArguments { message } => assert_eq!(message, want, "{func} {args}"),
            e => panic!("{func} {args}: expected InvalidArguments, got {e:?}"),
        }
        assert_eq!(err(&r).to_string(), format!("invalid arguments: {want}"));
    }
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_function_lists_the_available_names() {
    let dir = TestDir::new();
    let host = dir.host(&text_tool()).await;
    let mut c = Calls::new(&host);
    let r = c.call("text.shout", json!({})).await;
    match err(&r) {
        CallError::UnknownFunction { tool, function, available } => {
            assert_eq!((tool.as_str(), function.as_str()), ("text", "shout"));
            assert_eq!(
                available,
                "text.greet, text.add, text.echo-all, text.analysis.word-stats, text.analysis.parse-int"
            );
        }
        e => panic!("expected UnknownFunction, got {e:?}"),
    }
    // The short forms resolve to the same function.
    let r = c.call("text.word-stats", json!({"text": "a b"})).await;
    assert_eq!(ok(&r)["words"], json!(2));
    assert_eq!(r.function, "text.analysis.word-stats");

    let r = c.call("nosuch.greet", json!({})).await;
    match err(&r) {
        CallError::UnknownTool { tool, hint } => {
            assert_eq!(tool, "nosuch");
            assert!(hint.contains("text"), "{hint}");
        }
        e => panic!("expected UnknownTool, got {e:?}"),
    }
    assert_audited(&dir, c.expected_rows, host).await;
}

// ---------------------------------------------------------------- hostile

/// Hostile tools under different limits, plus `text` to show the host still
/// serves normal calls after each attack.
fn hostile_tools() -> String {
    [
        text_tool(),
        tool_entry("hostile", "hostile", "[tool.limits]\nmemory_mb = 512\ntimeout_ms = 60000"),
        tool_entry("hostile-quick", "hostile", "[tool.limits]\ntimeout_ms = 300"),
        tool_entry("hostile-small", "hostile", "[tool.limits]\nmemory_mb = 64"),
        tool_entry("hostile-fuel", "hostile", "[tool.limits]\nfuel = 5000000\ntimeout_ms = 60000"),
        tool_entry("hostile-flood", "hostile", "[tool.limits]\ntimeout_ms = 120000\nmax_stdout_bytes = 4096"),
    ]
    .concat()
}

/// A normal call right after an attack: the host keeps serving.
async fn still_serves(c: &mut Calls<'_>) {
    let r = c.call("text.greet", json!({"name": "after"})).await;
    assert_eq!(ok(&r), &json!("Hello, after!"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_forever_times_out() {
    let dir = TestDir::new();
    let host = dir.host(&hostile_tools()).await;
    let mut c = Calls::new(&host);
    let r = c.call("hostile-quick.loop-forever", json!({})).await;
    assert!(matches!(err(&r), CallError::Timeout { timeout_ms: 300 }), "{:?}", r.outcome);
    still_serves(&mut c).await;
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurse_forever_traps_on_stack_exhaustion() {
    let dir = TestDir::new();
    let host = dir.host(&hostile_tools()).await;
    let mut c = Calls::new(&host);
    let r = c.call("hostile.recurse-forever", json!({"depth": 0})).await;
    match err(&r) {
        CallError::Trap { message } => assert!(message.contains("stack"), "{message}"),
        e => panic!("expected Trap, got {e:?}"),
    }
    still_serves(&mut c).await;
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alloc_forever_hits_the_memory_limit() {
    let dir = TestDir::new();
    let host = dir.host(&hostile_tools()).await;
    let mut c = Calls::new(&host);
    let r = c.call("hostile-small.alloc-forever", json!({})).await;
    match err(&r) {
        CallError::MemoryLimit { limit_mb, requested_bytes } => {
            assert_eq!(*limit_mb, 64);
            assert!(*requested_bytes > 64 << 20, "{requested_bytes}");
        }
        e => panic!("expected MemoryLimit, got {e:?}"),
    }
    assert!(r.memory_peak_bytes <= 64 << 20, "{}", r.memory_peak_bytes);
    still_serves(&mut c).await;
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_limited_loop_runs_out_of_fuel() {
    let dir = TestDir::new();
    let host = dir.host(&hostile_tools()).await;
    let mut c = Calls::new(&host);
    let r = c.call("hostile-fuel.loop-forever", json!({})).await;
    assert!(matches!(err(&r), CallError::FuelExhausted { fuel: 5_000_000 }), "{:?}", r.outcome);
    assert_eq!(r.fuel_used, Some(5_000_000));
    still_serves(&mut c).await;
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_flood_is_truncated_to_max_stdout_bytes() {
    let dir = TestDir::new();
    let host = dir.host(&hostile_tools()).await;
    let mut c = Calls::new(&host);
    let r = c.call("hostile-flood.print-flood", json!({"megabytes": 100})).await;
    assert_eq!(ok(&r), &json!(null));
    assert!(r.stdout_truncated);
    assert_eq!(r.stdout.len(), 4096);
    assert!(r.stdout.starts_with(&"x".repeat(1023)));
    still_serves(&mut c).await;
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_string_exceeds_max_output_bytes() {
    let dir = TestDir::new();
    let host = dir.host(&hostile_tools()).await;
    let mut c = Calls::new(&host);
    let r = c.call("hostile.big-string", json!({"megabytes": 100})).await;
    match err(&r) {
        // 100 MiB of `x` plus the two quotes of the JSON string.
        CallError::OutputLimit { size, limit } => assert_eq!((*size, *limit), ((100 << 20) + 2, 1 << 20)),
        e => panic!("expected OutputLimit, got {e:?}"),
    }
    still_serves(&mut c).await;
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_is_a_trap_carrying_the_panic_message() {
    let dir = TestDir::new();
    let host = dir.host(&hostile_tools()).await;
    let mut c = Calls::new(&host);
    let r = c.call("hostile.panic-now", json!({"msg": "the tool gave up"})).await;
    match err(&r) {
        CallError::Trap { message } => assert!(message.contains("the tool gave up"), "{message}"),
        e => panic!("expected Trap, got {e:?}"),
    }
    assert!(r.stderr.contains("the tool gave up"), "{}", r.stderr);
    still_serves(&mut c).await;
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_is_one_on_every_call_so_no_state_survives() {
    let dir = TestDir::new();
    let host = dir.host(&hostile_tools()).await;
    let mut c = Calls::new(&host);
    for i in 0..20 {
        let r = c.call("hostile.counter", json!({})).await;
        assert_eq!(ok(&r), &json!(1), "call {i}");
    }
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_stdout_is_captured_in_the_record_only() {
    let dir = TestDir::new();
    let host = dir.host(&hostile_tools()).await;
    let mut c = Calls::new(&host);
    let r = c.call("hostile.fake-jsonrpc", json!({})).await;
    assert_eq!(ok(&r), &json!("ok"));
    assert_eq!(r.stdout, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n");
    assert!(!r.stdout_truncated);
    assert_eq!(r.stderr, "");
    assert_audited(&dir, c.expected_rows, host).await;
}

#[test]
fn two_hundred_concurrent_calls_all_succeed() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = TestDir::new();
        let host = std::sync::Arc::new(dir.host(&text_tool()).await);
        let calls = (0..200).map(|i| {
            let host = host.clone();
            async move { (i, host.call("text.greet", &json!({"name": format!("n{i}")}), "test").await) }
        });
        let results = futures::future::join_all(calls).await;
        assert_eq!(results.len(), 200);
        for (i, r) in &results {
            assert_eq!(ok(r), &json!(format!("Hello, n{i}!")));
        }
        drop(results);
        let host = std::sync::Arc::into_inner(host).expect("no other host handles");
        host.shutdown().await.unwrap();
        let rows = dir.audit_calls();
        assert_eq!(rows.len(), 200);
        assert!(rows.iter().all(|r| *r == row("text", "text.greet", "ok")), "{rows:?}");
    });
}

// ------------------------------------------------- capabilities, no policy

fn capability_tools() -> String {
    [tool_entry("files", "files", ""), tool_entry("fetch", "fetch", "[tool.limits]\ntimeout_ms = 5000"), tool_entry("shell", "shell", "")].concat()
}

/// The tool's own error text; after a sandbox refusal the call is
/// `denied` with the tool's error as its cause.
fn tool_error_text(r: &CallRecord) -> String {
    let e = match err(r) {
        CallError::Denied { cause, .. } => cause.as_ref(),
        e => e,
    };
    match e {
        CallError::ToolError { value } => value.as_str().unwrap_or_else(|| panic!("string error, got {value}")).to_string(),
        e => panic!("{}: expected ToolError, got {e:?}", r.function),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_without_a_policy_sees_nothing() {
    let dir = TestDir::new();
    let host = dir.host(&capability_tools()).await;
    let mut c = Calls::new(&host);

    // Nothing is mounted: listing the root fails (or, with an empty virtual
    // root, is empty) and no host file can be read.
    let r = c.call("files.fs.list", json!({"dir": "/"})).await;
    match &r.outcome {
        Ok(v) => assert_eq!(v, &json!([])),
        Err(CallError::ToolError { .. } | CallError::Denied { .. }) => {}
        Err(e) => panic!("expected a tool error, got {e:?}"),
    }
    for path in ["/etc/passwd", "/etc/hostname", "relative.txt"] {
        let r = c.call("files.fs.read", json!({"path": path})).await;
        tool_error_text(&r);
    }
    let r = c.call("files.fs.stat", json!({"path": "/etc"})).await;
    tool_error_text(&r);
    let r = c.call("files.fs.write", json!({"path": "/tmp/wasmward-must-not-exist", "contents": "x"})).await;
    tool_error_text(&r);
    assert!(!std::path::Path::new("/tmp/wasmward-must-not-exist").exists());

    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_without_a_policy_is_denied() {
    let dir = TestDir::new();
    let host = dir.host(&capability_tools()).await;
    let mut c = Calls::new(&host);
    let r = c.call("shell.run", json!({"program": "ls", "args": ["/"]})).await;
    let text = tool_error_text(&r);
    assert!(text.starts_with("denied:"), "{text}");
    assert_audited(&dir, c.expected_rows, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_without_a_policy_gets_an_error() {
    let dir = TestDir::new();
    let host = dir.host(&capability_tools()).await;
    let mut c = Calls::new(&host);
    for url in ["http://example.com/", "https://example.com/", "http://127.0.0.1:9/"] {
        let r = c.call("fetch.get", json!({"url": url})).await;
        let text = tool_error_text(&r);
        assert!(!text.is_empty(), "{url}");
    }
    assert_audited(&dir, c.expected_rows, host).await;
}
